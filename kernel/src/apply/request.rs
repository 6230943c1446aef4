//! What a normal Raft entry carries: one client or server request with its
//! id and the caller's identity (etcd `InternalRaftRequest` with its
//! `RequestHeader`).

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::{AlarmRequest, ApplyError, AuthRequest};
use crate::auth::AuthInfo;
use crate::lease::{LeaseCheckpoint, LeaseId};
use crate::mvcc::{CompactionRequest, DeleteRangeRequest, PutRequest, TxnRequest};

/// Format version written first in every encoded [`RequestEnvelope`].
const REQUEST_FORMAT_VERSION: u8 = 1;

/// Largest encoded request accepted, in bytes (etcd's default
/// `--max-request-bytes` is 1.5 MiB; this leaves room for txn overhead).
pub const MAX_REQUEST_SIZE_BYTES: usize = 8 * 1024 * 1024;

/// One replicated request (etcd `InternalRaftRequest`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    /// KV put.
    Put(PutRequest),
    /// KV delete of a key or range.
    DeleteRange(DeleteRangeRequest),
    /// KV transaction.
    Txn(TxnRequest),
    /// History compaction.
    Compaction(CompactionRequest),
    /// Grant a lease; `id` is never 0 here (the server assigns one first).
    LeaseGrant {
        /// Lease id.
        id: LeaseId,
        /// Requested TTL in seconds.
        ttl_secs: i64,
    },
    /// Revoke a lease and delete its keys in one revision.
    LeaseRevoke {
        /// Lease id.
        id: LeaseId,
    },
    /// Record remaining TTLs (leader-issued).
    LeaseCheckpoint(Vec<LeaseCheckpoint>),
    /// Raise, clear or list alarms.
    Alarm(AlarmRequest),
    /// User, role and login requests.
    Auth(AuthRequest),
    /// A started member publishes its name and client URLs.
    MemberAttrSet {
        /// Member id.
        member_id: u64,
        /// Member name.
        name: String,
        /// Client URLs.
        client_urls: Vec<String>,
    },
    /// Replace a member's peer URLs (etcd `MemberUpdate`).
    MemberUpdate {
        /// Member id.
        member_id: u64,
        /// New peer URLs.
        peer_urls: Vec<String>,
    },
}

/// A request as proposed: `id` lets the proposer match the apply result to
/// the waiting client (0: nobody waits); `auth` is the caller's identity,
/// `None` only for requests the server makes itself (lease expiry,
/// checkpoints, alarms, member attributes), which skip permission checks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestEnvelope {
    /// Proposer-unique request id.
    pub id: u64,
    /// The caller, or `None` for the server's own requests.
    pub auth: Option<AuthInfo>,
    /// The request.
    pub request: Request,
}

impl RequestEnvelope {
    /// Encodes the envelope for a normal entry's data: a version byte, then
    /// the postcard encoding (deterministic).
    ///
    /// Errors: encoding failure or a result above
    /// [`MAX_REQUEST_SIZE_BYTES`] → [`ApplyError::RequestTooLarge`].
    pub fn encode(&self) -> Result<Bytes, ApplyError> {
        let data = postcard::to_extend(self, vec![REQUEST_FORMAT_VERSION])
            .map_err(|_| ApplyError::RequestTooLarge)?;
        if data.len() > MAX_REQUEST_SIZE_BYTES {
            return Err(ApplyError::RequestTooLarge);
        }
        Ok(Bytes::from(data))
    }

    /// Decodes data written by [`RequestEnvelope::encode`].
    ///
    /// Errors: oversized, wrong version, undecodable or trailing bytes →
    /// [`ApplyError::BadEntry`].
    pub fn decode(data: &[u8]) -> Result<RequestEnvelope, ApplyError> {
        if data.len() > MAX_REQUEST_SIZE_BYTES {
            return Err(ApplyError::BadEntry("request too large".into()));
        }
        match data.split_first() {
            Some((&REQUEST_FORMAT_VERSION, body)) => match postcard::take_from_bytes(body) {
                Ok((envelope, [])) => Ok(envelope),
                Ok((_, rest)) => Err(ApplyError::BadEntry(format!(
                    "{} trailing bytes after the request",
                    rest.len()
                ))),
                Err(err) => Err(ApplyError::BadEntry(format!("undecodable request: {err}"))),
            },
            Some((version, _)) => Err(ApplyError::BadEntry(format!(
                "unknown request format version {version}"
            ))),
            None => Err(ApplyError::BadEntry("empty request".into())),
        }
    }
}
