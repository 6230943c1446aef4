//! In-process tests of every service: a loopback tonic server mounted with
//! [`add_services`] over a [`TestReplica`], driven by the generated tonic
//! clients as etcd clients would drive it.

use std::time::Duration;

use bytes::Bytes;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::Code;
use tonic::transport::Channel;

use super::test_replica::TestReplica;
use super::{ApiLimits, ETCD_VERSION, add_services};
use crate::proto::etcdserverpb as pb;
use crate::proto::mvccpb;
use crate::replica::Replica;
use keel_kernel::apply::Request;
use keel_kernel::mvcc::PutRequest;

/// Starts a server on an ephemeral loopback port; returns its channel.
pub(super) async fn start(replica: TestReplica, limits: ApiLimits) -> Channel {
    let url = start_serving(replica, limits).await;
    Channel::from_shared(url).unwrap().connect().await.unwrap()
}

/// Starts a server on an ephemeral loopback port; returns its URL.
async fn start_serving(replica: TestReplica, limits: ApiLimits) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let router = add_services(&mut super::client_server(), replica, limits);
    tokio::spawn(router.serve_with_incoming(TcpListenerStream::new(listener)));
    format!("http://{address}")
}

pub(super) fn bytes(s: &str) -> Bytes {
    Bytes::from(s.to_string())
}

async fn put(kv: &mut pb::kv_client::KvClient<Channel>, key: &str, value: &str) -> i64 {
    let resp = kv
        .put(pb::PutRequest {
            key: bytes(key),
            value: bytes(value),
            ..pb::PutRequest::default()
        })
        .await
        .unwrap()
        .into_inner();
    resp.header.unwrap().revision
}

fn prefix_end(prefix: &str) -> Bytes {
    Bytes::from(keel_kernel::mvcc::prefix_range_end(prefix.as_bytes()))
}

#[tokio::test]
async fn kv_put_range_delete_txn_compact() {
    let replica = TestReplica::new(64);
    let channel = start(replica.clone(), ApiLimits::default()).await;
    let mut kv = pb::kv_client::KvClient::new(channel);
    assert_eq!(put(&mut kv, "a/1", "x").await, 2);
    assert_eq!(put(&mut kv, "a/2", "y").await, 3);
    assert_eq!(put(&mut kv, "b", "z").await, 4);

    let range = kv
        .range(pb::RangeRequest {
            key: bytes("a/"),
            range_end: prefix_end("a/"),
            ..pb::RangeRequest::default()
        })
        .await
        .unwrap()
        .into_inner();
    let header = range.header.unwrap();
    assert_eq!(header.revision, 4);
    assert_eq!(header.member_id, replica.status().member_id);
    assert_eq!(range.count, 2);
    assert_eq!(range.kvs[1].value, bytes("y"));

    let old = kv
        .range(pb::RangeRequest {
            key: bytes("a/1"),
            revision: 1,
            serializable: true,
            ..pb::RangeRequest::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(old.count, 0);

    let deleted = kv
        .delete_range(pb::DeleteRangeRequest {
            key: bytes("a/"),
            range_end: prefix_end("a/"),
            prev_kv: true,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(deleted.deleted, 2);
    assert_eq!(deleted.prev_kvs.len(), 2);

    use pb::compare::{CompareResult, CompareTarget, TargetUnion};
    let txn = kv
        .txn(pb::TxnRequest {
            compare: vec![pb::Compare {
                result: CompareResult::Equal as i32,
                target: CompareTarget::Value as i32,
                key: bytes("b"),
                range_end: Bytes::new(),
                target_union: Some(TargetUnion::Value(bytes("z"))),
            }],
            success: vec![pb::RequestOp {
                request: Some(pb::request_op::Request::RequestPut(pb::PutRequest {
                    key: bytes("c"),
                    value: bytes("1"),
                    ..pb::PutRequest::default()
                })),
            }],
            failure: Vec::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(txn.succeeded);
    assert_eq!(txn.header.unwrap().revision, 6);

    kv.compact(pb::CompactionRequest {
        revision: 5,
        physical: true,
    })
    .await
    .unwrap();
    let compacted = kv
        .range(pb::RangeRequest {
            key: bytes("b"),
            revision: 3,
            ..pb::RangeRequest::default()
        })
        .await
        .unwrap_err();
    assert_eq!(compacted.code(), Code::OutOfRange);
    assert_eq!(
        compacted.message(),
        "etcdserver: mvcc: required revision has been compacted"
    );
    let future = kv
        .range(pb::RangeRequest {
            key: bytes("b"),
            revision: 100,
            ..pb::RangeRequest::default()
        })
        .await
        .unwrap_err();
    assert_eq!(
        future.message(),
        "etcdserver: mvcc: required revision is a future revision"
    );
}

#[tokio::test]
async fn kv_bad_input_gets_etcds_errors() {
    let limits = ApiLimits {
        request: keel_kernel::Limits {
            max_request_bytes: 1024,
            ..keel_kernel::Limits::default()
        },
        ..ApiLimits::default()
    };
    let channel = start(TestReplica::new(64), limits).await;
    let mut kv = pb::kv_client::KvClient::new(channel);
    let empty = kv.put(pb::PutRequest::default()).await.unwrap_err();
    assert_eq!(
        (empty.code(), empty.message()),
        (Code::InvalidArgument, "etcdserver: key is not provided")
    );
    let large = kv
        .put(pb::PutRequest {
            key: bytes("k"),
            value: Bytes::from(vec![0u8; 2048]),
            ..pb::PutRequest::default()
        })
        .await
        .unwrap_err();
    assert_eq!(large.message(), "etcdserver: request is too large");
    let op = pb::RequestOp {
        request: Some(pb::request_op::Request::RequestRange(pb::RangeRequest {
            key: bytes("k"),
            ..pb::RangeRequest::default()
        })),
    };
    let many = kv
        .txn(pb::TxnRequest {
            success: vec![op; 129],
            ..pb::TxnRequest::default()
        })
        .await
        .unwrap_err();
    assert_eq!(
        many.message(),
        "etcdserver: too many operations in txn request"
    );
    let lease = kv
        .put(pb::PutRequest {
            key: bytes("k"),
            lease: 12345,
            ..pb::PutRequest::default()
        })
        .await
        .unwrap_err();
    assert_eq!(
        (lease.code(), lease.message()),
        (Code::NotFound, "etcdserver: requested lease not found")
    );
}

/// A watch stream's responses as a task reads them. The call returns only
/// with its first response (as etcd's does), which comes once a request
/// was sent, so the call runs beside the test.
pub(super) struct WatchOut(tokio::sync::mpsc::Receiver<Result<pb::WatchResponse, tonic::Status>>);

impl WatchOut {
    /// The next response; `None` once the stream ended.
    pub(super) async fn message(&mut self) -> Result<Option<pb::WatchResponse>, tonic::Status> {
        self.0.recv().await.transpose()
    }
}

/// Opens a watch stream: the sender of its requests and its responses.
pub(super) async fn open_watch(
    channel: Channel,
) -> (tokio::sync::mpsc::Sender<pb::WatchRequest>, WatchOut) {
    let (sender, receiver) = tokio::sync::mpsc::channel(16);
    let (response_tx, responses) = tokio::sync::mpsc::channel(1024);
    let mut client = pb::watch_client::WatchClient::new(channel);
    let requests = tokio_stream::wrappers::ReceiverStream::new(receiver);
    tokio::spawn(async move {
        let mut stream = match client.watch(requests).await {
            Ok(call) => call.into_inner(),
            Err(status) => {
                let _ = response_tx.send(Err(status)).await;
                return;
            }
        };
        loop {
            let item = stream.message().await.transpose();
            let last = !matches!(item, Some(Ok(_)));
            let sent = match item {
                Some(item) => response_tx.send(item).await.is_ok(),
                None => false,
            };
            if last || !sent {
                return;
            }
        }
    });
    (sender, WatchOut(responses))
}

/// The watch stream request that creates `create`.
pub(super) fn create_request(create: pb::WatchCreateRequest) -> pb::WatchRequest {
    pb::WatchRequest {
        request_union: Some(pb::watch_request::RequestUnion::CreateRequest(create)),
    }
}

fn create(key: &str, range_end: Bytes, start_revision: i64) -> pb::WatchRequest {
    create_request(pb::WatchCreateRequest {
        key: bytes(key),
        range_end,
        start_revision,
        ..pb::WatchCreateRequest::default()
    })
}

/// The next watch response, within 10 s.
pub(super) async fn next(responses: &mut WatchOut) -> pb::WatchResponse {
    tokio::time::timeout(Duration::from_secs(10), responses.message())
        .await
        .expect("a watch response in time")
        .unwrap()
        .unwrap()
}

#[tokio::test]
async fn watch_live_history_cancel_and_progress() {
    let replica = TestReplica::new(64);
    let channel = start(replica, ApiLimits::default()).await;
    let mut kv = pb::kv_client::KvClient::new(channel.clone());
    put(&mut kv, "w/a", "1").await; // revision 2
    let (requests, mut responses) = open_watch(channel).await;

    requests
        .send(create("w/", prefix_end("w/"), 2))
        .await
        .unwrap();
    let created = next(&mut responses).await;
    assert!(created.created);
    let id = created.watch_id;
    let replayed = next(&mut responses).await;
    assert_eq!(replayed.events.len(), 1);
    assert_eq!(replayed.events[0].kv.as_ref().unwrap().mod_revision, 2);

    put(&mut kv, "w/b", "2").await; // revision 3
    kv.delete_range(pb::DeleteRangeRequest {
        key: bytes("w/a"),
        ..pb::DeleteRangeRequest::default()
    })
    .await
    .unwrap(); // revision 4
    let mut seen = Vec::new();
    while seen.len() < 2 {
        let resp = next(&mut responses).await;
        assert_eq!(resp.watch_id, id);
        seen.extend(resp.events);
    }
    assert_eq!(seen[0].kv.as_ref().unwrap().mod_revision, 3);
    assert_eq!(seen[1].r#type, mvccpb::event::EventType::Delete as i32);

    requests
        .send(pb::WatchRequest {
            request_union: Some(pb::watch_request::RequestUnion::ProgressRequest(
                pb::WatchProgressRequest {},
            )),
        })
        .await
        .unwrap();
    let progress = next(&mut responses).await;
    assert_eq!(progress.watch_id, super::watch::INVALID_WATCH_ID);
    assert!(progress.events.is_empty());
    assert_eq!(progress.header.unwrap().revision, 4);

    requests
        .send(pb::WatchRequest {
            request_union: Some(pb::watch_request::RequestUnion::CancelRequest(
                pb::WatchCancelRequest { watch_id: id },
            )),
        })
        .await
        .unwrap();
    let canceled = next(&mut responses).await;
    assert!(canceled.canceled);
    assert_eq!(canceled.watch_id, id);
}

#[tokio::test]
async fn watch_from_compacted_revision_is_canceled() {
    let channel = start(TestReplica::new(64), ApiLimits::default()).await;
    let mut kv = pb::kv_client::KvClient::new(channel.clone());
    for i in 0..4 {
        put(&mut kv, "k", &i.to_string()).await;
    }
    kv.compact(pb::CompactionRequest {
        revision: 4,
        physical: false,
    })
    .await
    .unwrap();
    let (requests, mut responses) = open_watch(channel).await;
    requests.send(create("k", Bytes::new(), 2)).await.unwrap();
    assert!(next(&mut responses).await.created);
    let canceled = next(&mut responses).await;
    assert!(canceled.canceled);
    assert_eq!(canceled.compact_revision, 4);
}

/// A stream whose event channel overflows (capacity 2, 300 writes while it
/// cannot read) still sends every revision exactly once, in order.
#[tokio::test]
async fn lagging_watch_stream_catches_up_from_history() {
    let replica = TestReplica::new(2);
    let limits = ApiLimits {
        stream_buffer_responses: 1,
        watch_max_events_per_response: 7,
        ..ApiLimits::default()
    };
    let channel = start(replica.clone(), limits).await;
    let mut kv = pb::kv_client::KvClient::new(channel.clone());
    let (requests, mut responses) = open_watch(channel).await;
    requests.send(create("k", Bytes::new(), 0)).await.unwrap();
    assert!(next(&mut responses).await.created);
    // Written straight to the replica without yielding: on this
    // single-threaded runtime the stream task cannot read meanwhile, so
    // its event channel overflows (Lagged) for certain.
    let writes = 300;
    for i in 0..writes {
        let request = Request::Put(PutRequest {
            key: b"k".to_vec(),
            value: i.to_string().into_bytes(),
            ..PutRequest::default()
        });
        replica.propose(request, None).await.unwrap();
    }
    put(&mut kv, "k", "last").await;
    let writes = writes + 1;
    let mut revisions = Vec::new();
    while revisions.len() < writes {
        let resp = next(&mut responses).await;
        revisions.extend(
            resp.events
                .iter()
                .map(|e| e.kv.as_ref().unwrap().mod_revision),
        );
    }
    let expected: Vec<i64> = (2..2 + writes as i64).collect();
    assert_eq!(revisions, expected);
}

#[tokio::test]
async fn lease_grant_keepalive_ttl_revoke() {
    let channel = start(TestReplica::new(64), ApiLimits::default()).await;
    let mut lease = pb::lease_client::LeaseClient::new(channel.clone());
    let mut kv = pb::kv_client::KvClient::new(channel);
    let granted = lease
        .lease_grant(pb::LeaseGrantRequest { ttl: 60, id: 0 })
        .await
        .unwrap()
        .into_inner();
    assert!(granted.id > 0);
    assert_eq!(granted.ttl, 60);
    kv.put(pb::PutRequest {
        key: bytes("leased"),
        value: bytes("v"),
        lease: granted.id,
        ..pb::PutRequest::default()
    })
    .await
    .unwrap();

    let ttl = lease
        .lease_time_to_live(pb::LeaseTimeToLiveRequest {
            id: granted.id,
            keys: true,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ttl.granted_ttl, 60);
    assert_eq!(ttl.keys, vec![bytes("leased")]);
    let unknown = lease
        .lease_time_to_live(pb::LeaseTimeToLiveRequest { id: 7, keys: false })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(unknown.ttl, -1);

    // The call returns with its first answer, as etcd's: ask first.
    let (sender, receiver) = tokio::sync::mpsc::channel(4);
    sender
        .send(pb::LeaseKeepAliveRequest { id: granted.id })
        .await
        .unwrap();
    let mut answers = lease
        .lease_keep_alive(tokio_stream::wrappers::ReceiverStream::new(receiver))
        .await
        .unwrap()
        .into_inner();
    let kept = answers.message().await.unwrap().unwrap();
    assert_eq!((kept.id, kept.ttl), (granted.id, 60));
    sender
        .send(pb::LeaseKeepAliveRequest { id: 7 })
        .await
        .unwrap();
    let missing = answers.message().await.unwrap().unwrap();
    assert_eq!((missing.id, missing.ttl), (7, 0));

    let listed = lease
        .lease_leases(pb::LeaseLeasesRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.leases, vec![pb::LeaseStatus { id: granted.id }]);
    lease
        .lease_revoke(pb::LeaseRevokeRequest { id: granted.id })
        .await
        .unwrap();
    let gone = kv
        .range(pb::RangeRequest {
            key: bytes("leased"),
            ..pb::RangeRequest::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(gone.count, 0);
    let again = lease
        .lease_revoke(pb::LeaseRevokeRequest { id: granted.id })
        .await
        .unwrap_err();
    assert_eq!(
        (again.code(), again.message()),
        (Code::NotFound, "etcdserver: requested lease not found")
    );
}

#[tokio::test]
async fn maintenance_and_cluster() {
    let replica = TestReplica::new(64);
    let channel = start(replica.clone(), ApiLimits::default()).await;
    let mut kv = pb::kv_client::KvClient::new(channel.clone());
    put(&mut kv, "k", "v").await;
    let mut maintenance = pb::maintenance_client::MaintenanceClient::new(channel.clone());
    let status = maintenance
        .status(pb::StatusRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(status.version, ETCD_VERSION);
    assert_eq!(status.leader, replica.status().member_id);
    assert!(status.raft_index > 0);

    let hash = maintenance
        .hash_kv(pb::HashKvRequest { revision: 0 })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(hash.hash_revision, 2);

    let mut chunks = maintenance
        .snapshot(pb::SnapshotRequest {})
        .await
        .unwrap()
        .into_inner();
    let mut blobs = Vec::new();
    while let Some(chunk) = chunks.message().await.unwrap() {
        blobs.push(chunk);
    }
    let (digest, body) = blobs.split_last().unwrap();
    let data: Vec<u8> = body.iter().flat_map(|c| c.blob.to_vec()).collect();
    // The body is the replica's state as an etcd 3.4 bbolt file (what
    // etcdctl's `snapshot status` and `restore` read).
    let expected = super::maintenance::etcd_snapshot_body(&replica.snapshot()).unwrap();
    assert_eq!(data, expected.to_vec());
    assert_eq!(
        keel_snapshot::format::detect(&data).unwrap(),
        keel_snapshot::SnapshotFormat::Etcd
    );
    assert_eq!(data.len() % 512, 0);
    use sha2::Digest;
    assert_eq!(digest.blob.to_vec(), sha2::Sha256::digest(&data).to_vec());

    let alarms = maintenance
        .alarm(pb::AlarmRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(alarms.alarms.is_empty());

    let mut cluster = pb::cluster_client::ClusterClient::new(channel);
    let members = cluster
        .member_list(pb::MemberListRequest { linearizable: true })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(members.members.len(), 1);
    assert_eq!(members.members[0].peer_ur_ls, vec!["http://127.0.0.1:2380"]);
}

/// Maintenance.Downgrade over gRPC: etcd 3.5's answers for a cluster at
/// its only version (`downgrade.rs`).
#[tokio::test]
async fn downgrade_answers_as_etcd_for_a_cluster_at_its_only_version() {
    use pb::downgrade_request::DowngradeAction;
    let channel = start(TestReplica::new(64), ApiLimits::default()).await;
    let mut maintenance = pb::maintenance_client::MaintenanceClient::new(channel);
    let mut call = async |action: DowngradeAction, version: &str| {
        let request = pb::DowngradeRequest {
            action: action as i32,
            version: version.to_owned(),
        };
        match maintenance.downgrade(request).await {
            Ok(response) => format!("ok {}", response.into_inner().version),
            Err(status) => format!("{:?} {}", status.code(), status.message()),
        }
    };
    assert_eq!(call(DowngradeAction::Validate, "3.4").await, "ok 3.5.0");
    assert_eq!(
        call(DowngradeAction::Validate, "3.3").await,
        "InvalidArgument etcdserver: invalid downgrade target version"
    );
    assert_eq!(
        call(DowngradeAction::Enable, "3.x").await,
        "InvalidArgument etcdserver: wrong downgrade target version format"
    );
    assert_eq!(
        call(DowngradeAction::Enable, "3.4").await,
        "InvalidArgument etcdserver: invalid downgrade target version"
    );
    assert_eq!(
        call(DowngradeAction::Cancel, "").await,
        "FailedPrecondition etcdserver: no inflight downgrade job"
    );
}

pub(super) fn with_token<T>(message: T, token: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request
        .metadata_mut()
        .insert(super::TOKEN_METADATA_KEY, token.parse().unwrap());
    request
}

#[tokio::test]
async fn auth_enable_login_and_token_checks() {
    let channel = start(TestReplica::new(64), ApiLimits::default()).await;
    let mut auth = pb::auth_client::AuthClient::new(channel.clone());
    let mut kv = pb::kv_client::KvClient::new(channel);
    auth.user_add(pb::AuthUserAddRequest {
        name: "root".into(),
        password: "rootpw".into(),
        ..pb::AuthUserAddRequest::default()
    })
    .await
    .unwrap();
    auth.user_grant_role(pb::AuthUserGrantRoleRequest {
        user: "root".into(),
        role: "root".into(),
    })
    .await
    .unwrap();
    auth.auth_enable(pb::AuthEnableRequest {}).await.unwrap();

    let anonymous = kv
        .put(pb::PutRequest {
            key: bytes("k"),
            value: bytes("v"),
            ..pb::PutRequest::default()
        })
        .await
        .unwrap_err();
    assert_eq!(anonymous.message(), "etcdserver: user name is empty");
    let wrong = auth
        .authenticate(pb::AuthenticateRequest {
            name: "root".into(),
            password: "nope".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(wrong.code(), Code::InvalidArgument);
    let token = auth
        .authenticate(pb::AuthenticateRequest {
            name: "root".into(),
            password: "rootpw".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .token;
    let put = pb::PutRequest {
        key: bytes("k"),
        value: bytes("v"),
        ..pb::PutRequest::default()
    };
    kv.put(with_token(put.clone(), &token)).await.unwrap();
    let bad = kv.put(with_token(put, "bogus.1")).await.unwrap_err();
    assert_eq!(
        (bad.code(), bad.message()),
        (Code::Unauthenticated, "etcdserver: invalid auth token")
    );
    let status = auth
        .auth_status(with_token(pb::AuthStatusRequest {}, &token))
        .await
        .unwrap()
        .into_inner();
    assert!(status.enabled);
    let users = auth
        .user_list(with_token(pb::AuthUserListRequest {}, &token))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(users.users, vec!["root".to_string()]);
}

#[tokio::test]
async fn watch_filters_prev_kv_and_progress_notify() {
    let limits = ApiLimits {
        watch_progress_notify_interval_ms: 50,
        ..ApiLimits::default()
    };
    let channel = start(TestReplica::new(64), limits).await;
    let mut kv = pb::kv_client::KvClient::new(channel.clone());
    put(&mut kv, "f", "1").await; // revision 2
    let (requests, mut responses) = open_watch(channel).await;
    let create = pb::WatchCreateRequest {
        key: bytes("f"),
        prev_kv: true,
        progress_notify: true,
        filters: vec![pb::watch_create_request::FilterType::Noput as i32],
        ..pb::WatchCreateRequest::default()
    };
    requests.send(create_request(create)).await.unwrap();
    let created = next(&mut responses).await;
    assert!(created.created);
    put(&mut kv, "f", "2").await; // revision 3, filtered out
    kv.delete_range(pb::DeleteRangeRequest {
        key: bytes("f"),
        ..pb::DeleteRangeRequest::default()
    })
    .await
    .unwrap(); // revision 4
    let deleted = loop {
        let resp = next(&mut responses).await;
        if !resp.events.is_empty() {
            break resp;
        }
        // Progress notifications may come first; they never go back.
        assert!(resp.header.unwrap().revision >= 2);
    };
    assert_eq!(deleted.events.len(), 1);
    let event = &deleted.events[0];
    assert_eq!(event.r#type, mvccpb::event::EventType::Delete as i32);
    assert_eq!(event.prev_kv.as_ref().unwrap().value, bytes("2"));
    // With nothing more to send, progress notifications carry revision 4.
    let progress = loop {
        let resp = next(&mut responses).await;
        assert!(resp.events.is_empty());
        if resp.header.unwrap().revision == 4 {
            break resp;
        }
    };
    assert_eq!(progress.watch_id, created.watch_id);
}

#[tokio::test]
async fn refused_watch_creates_are_created_and_canceled() {
    let channel = start(TestReplica::new(64), ApiLimits::default()).await;
    let (requests, mut responses) = open_watch(channel).await;
    let with_id = |watch_id| {
        create_request(pb::WatchCreateRequest {
            key: bytes("k"),
            watch_id,
            ..pb::WatchCreateRequest::default()
        })
    };
    requests.send(with_id(5)).await.unwrap();
    assert_eq!(next(&mut responses).await.watch_id, 5);
    requests.send(with_id(5)).await.unwrap();
    let refused = next(&mut responses).await;
    assert!(refused.created && refused.canceled);
    assert_eq!(refused.watch_id, super::watch::INVALID_WATCH_ID);
    assert_eq!(
        refused.cancel_reason,
        "mvcc: duplicate watch ID provided on the WatchStream"
    );
}

/// Contenders for one lock name in [`lock_is_held_by_one_contender_at_a_time`].
const LOCK_CONTENDERS: usize = 8;
/// Times each contender takes the lock.
const LOCK_ROUNDS: usize = 5;

/// Many contenders take and release one lock, each several times: the
/// lock must never have two holders at once, and every request is granted.
/// Exclusion is checked by the holders themselves (a shared "held" flag set
/// while a contender holds the lock), not by a sleep.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lock_is_held_by_one_contender_at_a_time() {
    use crate::proto::v3lockpb;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    let (_node, channel) = super::node_tests::real_node().await;
    let held = Arc::new(AtomicBool::new(false));
    let grants = Arc::new(AtomicUsize::new(0));
    let mut contenders = Vec::new();
    for _ in 0..LOCK_CONTENDERS {
        let (channel, held, grants) = (channel.clone(), held.clone(), grants.clone());
        contenders.push(tokio::spawn(async move {
            let mut lease = pb::lease_client::LeaseClient::new(channel.clone());
            let request = pb::LeaseGrantRequest { ttl: 60, id: 0 };
            let id = lease.lease_grant(request).await.unwrap().into_inner().id;
            let mut locks = v3lockpb::lock_client::LockClient::new(channel);
            for _ in 0..LOCK_ROUNDS {
                let request = v3lockpb::LockRequest {
                    name: bytes("m"),
                    lease: id,
                };
                let key = locks.lock(request).await.unwrap().into_inner().key;
                assert_eq!(key, Bytes::from(format!("m/{id:x}")));
                assert!(!held.swap(true, Ordering::SeqCst), "two holders at once");
                grants.fetch_add(1, Ordering::SeqCst);
                // Holding a while widens the window a second holder would hit.
                tokio::time::sleep(Duration::from_millis(2)).await;
                held.store(false, Ordering::SeqCst);
                locks.unlock(v3lockpb::UnlockRequest { key }).await.unwrap();
            }
        }));
    }
    for contender in contenders {
        tokio::time::timeout(Duration::from_secs(30), contender)
            .await
            .expect("every lock request granted in time")
            .unwrap();
    }
    assert_eq!(grants.load(Ordering::SeqCst), LOCK_CONTENDERS * LOCK_ROUNDS);
}

/// A follower that installs its leader's snapshot jumps past revisions it
/// never offered as events: its watchers get them from the new store's
/// history (etcd `watchableStore.Restore`), they are not skipped.
#[tokio::test]
async fn watchers_resume_from_history_after_a_snapshot_install() {
    let follower = TestReplica::new(64);
    let leader = TestReplica::new(64);
    let channel = start(follower.clone(), ApiLimits::default()).await;
    let (requests, mut responses) = open_watch(channel.clone()).await;
    requests.send(create("k", Bytes::new(), 0)).await.unwrap();
    assert!(next(&mut responses).await.created);
    for i in 0..5 {
        let request = Request::Put(PutRequest {
            key: b"k".to_vec(),
            value: i.to_string().into_bytes(),
            ..PutRequest::default()
        });
        leader.propose(request, None).await.unwrap();
    }
    follower.install_snapshot_of(&leader);
    let mut kv = pb::kv_client::KvClient::new(channel);
    let last = put(&mut kv, "k", "after").await;
    let mut revisions = Vec::new();
    while revisions.last().is_none_or(|r| *r < last) {
        let response = next(&mut responses).await;
        assert!(!response.canceled, "{response:?}");
        revisions.extend(
            response
                .events
                .iter()
                .map(|e| e.kv.as_ref().unwrap().mod_revision),
        );
    }
    assert_eq!(revisions, (2..=last).collect::<Vec<i64>>());
}

/// A call still waiting when the client's deadline (`grpc-timeout`)
/// passes is answered `DEADLINE_EXCEEDED` "context deadline exceeded", as
/// grpc-go (etcd) answers it, not tonic's `CANCELLED` "Timeout expired".
#[tokio::test]
async fn an_expired_deadline_is_deadline_exceeded() {
    use crate::proto::v3lockpb;
    let url = start_serving(TestReplica::new(64), ApiLimits::default()).await;
    let channel = Channel::from_shared(url.clone()).unwrap().connect().await;
    let channel = channel.unwrap();
    let mut lease = pb::lease_client::LeaseClient::new(channel.clone());
    let mut leases = Vec::new();
    for _ in 0..2 {
        let request = pb::LeaseGrantRequest { ttl: 60, id: 0 };
        leases.push(lease.lease_grant(request).await.unwrap().into_inner().id);
    }
    let lock = |lease| v3lockpb::LockRequest {
        name: bytes("m"),
        lease,
    };
    let mut locks = v3lockpb::lock_client::LockClient::new(channel);
    locks.lock(lock(leases[0])).await.unwrap();
    // The lock is held: the second request waits until its deadline. A
    // plain HTTP/2 client sends it: tonic's channel would also time the
    // call out itself (CANCELLED) and, on a busy machine, first.
    let http2 = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .http2_only(true)
        .build_http();
    let mut locks = v3lockpb::lock_client::LockClient::with_origin(http2, url.parse().unwrap());
    let mut waiting = tonic::Request::new(lock(leases[1]));
    waiting.set_timeout(Duration::from_millis(300));
    let expired = locks.lock(waiting).await.unwrap_err();
    assert_eq!(
        (expired.code(), expired.message()),
        (Code::DeadlineExceeded, "context deadline exceeded")
    );
}

#[tokio::test]
async fn watch_keeps_sending_after_the_client_closes_its_side() {
    let channel = start(TestReplica::new(64), ApiLimits::default()).await;
    let mut kv = pb::kv_client::KvClient::new(channel.clone());
    let (requests, mut responses) = open_watch(channel).await;
    requests.send(create("h", Bytes::new(), 0)).await.unwrap();
    drop(requests);
    assert!(next(&mut responses).await.created);
    put(&mut kv, "h", "v").await;
    let event = next(&mut responses).await;
    assert_eq!(event.events[0].kv.as_ref().unwrap().value, bytes("v"));
}
