//! Request and response bodies in grpc-gateway's JSON mapping, through the
//! serde impls `pbjson-build` generates for the etcd protos (see
//! `server/build.rs`): proto field names, 64-bit integers as strings, bytes
//! as base64, enums by name, default values omitted, unknown fields
//! ignored — what etcd 3.4's `runtime.JSONPb{OrigName: true}` reads and
//! writes.

use serde::Serialize;
use serde::de::DeserializeOwned;
use tonic::Status;

/// The request message in `body`. An empty (or all-whitespace) body is the
/// default message, as grpc-gateway treats `io.EOF` from its decoder.
///
/// Errors: invalid JSON, a wrong type, bad base64 →
/// `INVALID_ARGUMENT` with the decoder's message (etcd answers these with
/// code 3 and HTTP 400).
pub fn decode<T: DeserializeOwned + Default>(body: &[u8]) -> Result<T, Status> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(|err| Status::invalid_argument(err.to_string()))
}

/// `message` as a JSON document.
///
/// Errors: serialization failed (not expected for generated impls) →
/// `INTERNAL`.
pub fn encode<T: Serialize>(message: &T) -> Result<Vec<u8>, Status> {
    serde_json::to_vec(message).map_err(|err| Status::internal(err.to_string()))
}

/// `message` wrapped as one streamed line, `{"result":<message>}\n`, as
/// grpc-gateway writes each message of a server stream.
///
/// Errors: as [`encode`].
pub fn result_line<T: Serialize>(message: &T) -> Result<Vec<u8>, Status> {
    #[derive(Serialize)]
    struct Chunk<'a, T> {
        result: &'a T,
    }
    let mut line = encode(&Chunk { result: message })?;
    line.push(b'\n');
    Ok(line)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::proto::etcdserverpb as pb;
    use crate::proto::mvccpb;

    #[test]
    fn range_request_reads_etcds_json() {
        let request: pb::RangeRequest =
            decode(br#"{"key":"Zm9v","limit":"2","sort_order":"DESCEND","bogus":1}"#).unwrap();
        assert_eq!(&request.key[..], b"foo");
        assert_eq!(request.limit, 2);
        assert_eq!(
            request.sort_order,
            pb::range_request::SortOrder::Descend as i32
        );
    }

    #[test]
    fn empty_body_is_the_default_message() {
        let request: pb::StatusRequest = decode(b" \n").unwrap();
        assert_eq!(request, pb::StatusRequest::default());
    }

    #[test]
    fn bad_base64_and_bad_json_are_invalid_argument() {
        let bad = decode::<pb::PutRequest>(br#"{"key":"!!!"}"#).unwrap_err();
        assert_eq!(bad.code(), tonic::Code::InvalidArgument);
        let bad = decode::<pb::PutRequest>(br#"{"key":"Zm9v""#).unwrap_err();
        assert_eq!(bad.code(), tonic::Code::InvalidArgument);
    }

    #[test]
    fn range_response_writes_etcds_json() {
        let response = pb::RangeResponse {
            header: Some(pb::ResponseHeader {
                cluster_id: 1,
                member_id: 2,
                revision: 3,
                raft_term: 4,
            }),
            kvs: vec![mvccpb::KeyValue {
                key: "foo".into(),
                create_revision: 2,
                mod_revision: 3,
                version: 2,
                value: "bar".into(),
                lease: 0,
            }],
            more: false,
            count: 1,
        };
        assert_eq!(
            String::from_utf8(encode(&response).unwrap()).unwrap(),
            r#"{"header":{"cluster_id":"1","member_id":"2","revision":"3","raft_term":"4"},"kvs":[{"key":"Zm9v","create_revision":"2","mod_revision":"3","version":"2","value":"YmFy"}],"count":"1"}"#
        );
    }
}
