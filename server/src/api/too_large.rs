//! A request over the gRPC message limit answered as etcd answers it.
//!
//! etcd (grpc-go) refuses a request message larger than its receive limit
//! (`--max-request-bytes` plus 512 KiB) with `RESOURCE_EXHAUSTED` "grpc:
//! received message larger than max (<found> vs. <limit>)"; tonic's decoder
//! answers `OUT_OF_RANGE` "Error, decoded message length too large: found
//! <found> bytes, the limit is: <limit> bytes". Clients branch on the code
//! (Go's clientv3 and python `etcd3` treat `RESOURCE_EXHAUSTED` as a
//! request that must be made smaller), so [`rewrite`] turns tonic's answer
//! into etcd's. Only answers sent as headers are rewritten
//! (unary calls, and streams refused before their first message); a
//! stream's later refusal travels in trailers and keeps tonic's status.

use tonic::Status;
use tonic::body::Body;

/// The response as etcd would send it: tonic's "message too large" status
/// (carried in the headers of a trailers-only response) replaced by
/// grpc-go's; any other response unchanged. The client server maps every
/// response through it (`tower::util::MapResponseLayer`).
pub fn rewrite(response: http::Response<Body>) -> http::Response<Body> {
    let refused =
        Status::from_header_map(response.headers()).and_then(|status| etcd_status(&status));
    match refused {
        Some(status) => status.into_http(),
        None => response,
    }
}

/// etcd's status for tonic's "decoded message length too large" status;
/// `None` for any other status.
pub fn etcd_status(status: &Status) -> Option<Status> {
    if status.code() != tonic::Code::OutOfRange {
        return None;
    }
    let (found, limit) = too_large_sizes(status.message())?;
    Some(Status::resource_exhausted(format!(
        "grpc: received message larger than max ({found} vs. {limit})"
    )))
}

/// The two sizes of tonic's message "Error, decoded message length too
/// large: found <found> bytes, the limit is: <limit> bytes".
fn too_large_sizes(message: &str) -> Option<(u64, u64)> {
    let rest = message.strip_prefix("Error, decoded message length too large: found ")?;
    let (found, rest) = rest.split_once(" bytes, the limit is: ")?;
    let limit = rest.strip_suffix(" bytes")?;
    Some((found.parse().ok()?, limit.parse().ok()?))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn tonic_too_large_becomes_grpc_go_resource_exhausted() {
        let tonic = Status::out_of_range(
            "Error, decoded message length too large: found 2097230 bytes, the limit is: 2097152 bytes",
        );
        let etcd = etcd_status(&tonic).unwrap();
        assert_eq!(etcd.code(), tonic::Code::ResourceExhausted);
        assert_eq!(
            etcd.message(),
            "grpc: received message larger than max (2097230 vs. 2097152)"
        );
    }

    #[test]
    fn other_statuses_are_left_alone() {
        let compacted =
            Status::out_of_range("etcdserver: mvcc: required revision has been compacted");
        assert!(etcd_status(&compacted).is_none());
        assert!(etcd_status(&Status::resource_exhausted("x")).is_none());
    }
}
