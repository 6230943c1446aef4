//! One register operation through the real etcd gRPC API, and how its
//! response (or error) maps to a history outcome.

use std::time::Duration;

use bytes::Bytes;
use keel_jepsen::{Op, Outcome, Ret, Value};
use keel_server::proto::etcdserverpb::kv_client::KvClient;
use keel_server::proto::etcdserverpb::{
    Compare, DeleteRangeRequest, PutRequest, RangeRequest, RequestOp, TxnRequest, compare,
    request_op,
};
use tonic::transport::Channel;

use crate::NodeAddr;

/// A KV client of one member, connected on first use and dropped after
/// an error so that the next operation reconnects.
#[derive(Default)]
pub struct MemberClient {
    client: Option<KvClient<Channel>>,
}

impl MemberClient {
    /// Runs `op` through member `index` within `timeout_ms`. A failed
    /// connect is [`Outcome::Fail`] (nothing was sent); an error or a
    /// timeout after sending is [`Outcome::Unknown`].
    pub async fn execute(&mut self, index: u8, op: &Op, timeout_ms: u64) -> Outcome {
        let timeout = Duration::from_millis(timeout_ms);
        let mut client = match self.client.take() {
            Some(client) => client,
            None => {
                let url = NodeAddr::member(index).client_url();
                match madsim::time::timeout(timeout, KvClient::connect(url)).await {
                    Ok(Ok(client)) => client,
                    _ => return Outcome::Fail,
                }
            }
        };
        match madsim::time::timeout(timeout, request(&mut client, op)).await {
            Ok(Ok(ret)) => {
                self.client = Some(client);
                Outcome::Ok(ret)
            }
            _ => Outcome::Unknown,
        }
    }
}

fn bytes_of(text: &str) -> Bytes {
    Bytes::copy_from_slice(text.as_bytes())
}

fn value_bytes(value: Value) -> Bytes {
    Bytes::from(value.to_string())
}

/// A value read back; bytes the workload never writes read as
/// `Value::MAX`, which no write produces, so the checker flags them.
fn parse_value(bytes: &[u8]) -> Value {
    std::str::from_utf8(bytes)
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(Value::MAX)
}

fn put_request(key: &str, value: Value) -> PutRequest {
    PutRequest {
        key: bytes_of(key),
        value: value_bytes(value),
        ..PutRequest::default()
    }
}

async fn request(client: &mut KvClient<Channel>, op: &Op) -> Result<Ret, tonic::Status> {
    match op {
        Op::Read { key } => {
            let request = RangeRequest {
                key: bytes_of(key),
                ..RangeRequest::default()
            };
            let response = client.range(request).await?.into_inner();
            Ok(Ret::Read(
                response.kvs.first().map(|kv| parse_value(&kv.value)),
            ))
        }
        Op::Write { key, value } => {
            let response = client.put(put_request(key, *value)).await?.into_inner();
            Ok(Ret::Write {
                revision: response.header.map(|h| h.revision),
            })
        }
        Op::Cas { key, expected, new } => {
            let request = TxnRequest {
                compare: vec![Compare {
                    result: compare::CompareResult::Equal as i32,
                    target: compare::CompareTarget::Value as i32,
                    key: bytes_of(key),
                    target_union: Some(compare::TargetUnion::Value(value_bytes(*expected))),
                    ..Compare::default()
                }],
                success: vec![RequestOp {
                    request: Some(request_op::Request::RequestPut(put_request(key, *new))),
                }],
                failure: vec![],
            };
            let response = client.txn(request).await?.into_inner();
            Ok(Ret::Cas {
                succeeded: response.succeeded,
            })
        }
        Op::Delete { key } => {
            let request = DeleteRangeRequest {
                key: bytes_of(key),
                ..DeleteRangeRequest::default()
            };
            let response = client.delete_range(request).await?.into_inner();
            Ok(Ret::Delete {
                deleted: u64::try_from(response.deleted).unwrap_or(u64::MAX),
            })
        }
    }
}
