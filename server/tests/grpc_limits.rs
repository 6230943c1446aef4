//! Requests over keel's size limits, answered as etcd 3.4 answers them
//! (same flags, same client, compared): a put over `--max-request-bytes`
//! but within the gRPC message limit is `INVALID_ARGUMENT` "etcdserver:
//! request is too large"; a put over the gRPC message limit
//! (`--max-request-bytes` + 512 KiB) is grpc-go's `RESOURCE_EXHAUSTED`
//! "grpc: received message larger than max (<found> vs. <limit>)". The
//! member keeps serving after both.
#![cfg(not(madsim))]
#![allow(clippy::unwrap_used)] // tests may unwrap

mod support;

use keel_server::proto::etcdserverpb::kv_client::KvClient;
use keel_server::proto::etcdserverpb::{PutRequest, RangeRequest};
use support::cluster::{Cluster, Flavor};
use tonic::Code;

/// etcd's default `--max-request-bytes`.
const MAX_REQUEST_BYTES: usize = 1536 * 1024;

async fn put_of(url: &str, value_bytes: usize) -> (Code, String) {
    let mut kv = KvClient::connect(url.to_owned()).await.unwrap();
    let request = PutRequest {
        key: b"big".to_vec().into(),
        value: vec![b'x'; value_bytes].into(),
        ..PutRequest::default()
    };
    match kv.put(request).await {
        Ok(_) => (Code::Ok, String::new()),
        Err(status) => (status.code(), status.message().to_owned()),
    }
}

async fn oversized_answers(flavor: Flavor) -> Vec<(Code, String)> {
    let cluster = Cluster::start(flavor, 1).unwrap();
    let url = cluster.members()[0].client_url.clone();
    let answers = vec![
        put_of(&url, MAX_REQUEST_BYTES + 1024).await,
        put_of(&url, 2 * 1024 * 1024).await,
        put_of(&url, 1024).await,
    ];
    let mut kv = KvClient::connect(url).await.unwrap();
    let range = RangeRequest {
        key: b"big".to_vec().into(),
        ..RangeRequest::default()
    };
    let stored = kv.range(range).await.unwrap().into_inner();
    assert_eq!(
        stored.kvs.len(),
        1,
        "{}: the small put after the refusals",
        flavor.name()
    );
    answers
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_requests_get_etcds_codes() {
    if !support::require_etcd("grpc_limits") {
        return;
    }
    let etcd = oversized_answers(Flavor::Etcd).await;
    let keel = oversized_answers(Flavor::Keel).await;
    assert_eq!(
        etcd[0],
        (
            Code::InvalidArgument,
            "etcdserver: request is too large".to_owned()
        )
    );
    assert_eq!(etcd[1].0, Code::ResourceExhausted, "etcd: {:?}", etcd[1]);
    assert_eq!(keel, etcd);
}
