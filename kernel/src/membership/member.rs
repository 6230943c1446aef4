//! One cluster member and etcd's member-id derivation.

use serde::{Deserialize, Serialize};
use sha1::{Digest, Sha1};

/// A cluster member (etcd `membership.Member`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Member {
    /// Member id (also its Raft node id); never 0.
    pub id: u64,
    /// Human-readable name (`--name`); empty until the member publishes it.
    pub name: String,
    /// URLs peers reach it at, ascending.
    pub peer_urls: Vec<String>,
    /// URLs clients reach it at (published by the member once started).
    pub client_urls: Vec<String>,
    /// True for a non-voting learner.
    pub is_learner: bool,
}

impl Member {
    /// A member whose id is derived from its peer URLs, as etcd's
    /// `NewMember`: see [`Member::compute_id`]. `unix_secs` is `None` for
    /// the initial cluster and the wall-clock second for `member add`.
    pub fn new(
        name: &str,
        peer_urls: &[String],
        cluster_token: &str,
        unix_secs: Option<u64>,
        is_learner: bool,
    ) -> Member {
        let mut peer_urls = peer_urls.to_vec();
        peer_urls.sort();
        Member {
            id: Member::compute_id(&peer_urls, cluster_token, unix_secs),
            name: name.to_string(),
            peer_urls,
            client_urls: Vec::new(),
            is_learner,
        }
    }

    /// etcd's member id: the first 8 bytes (big-endian) of
    /// `sha1(sorted peer URLs concatenated + cluster token [+ decimal unix
    /// seconds])`. Never 0 (a zero hash prefix is mapped to 1).
    pub fn compute_id(peer_urls: &[String], cluster_token: &str, unix_secs: Option<u64>) -> u64 {
        let mut sorted: Vec<&str> = peer_urls.iter().map(String::as_str).collect();
        sorted.sort_unstable();
        let mut hasher = Sha1::new();
        for url in sorted {
            hasher.update(url.as_bytes());
        }
        hasher.update(cluster_token.as_bytes());
        if let Some(secs) = unix_secs {
            hasher.update(secs.to_string().as_bytes());
        }
        first_u64(&hasher.finalize()).max(1)
    }
}

/// The first 8 bytes of a digest as a big-endian integer.
pub(super) fn first_u64(digest: &[u8]) -> u64 {
    let mut prefix = [0u8; 8];
    for (slot, byte) in prefix.iter_mut().zip(digest) {
        *slot = *byte;
    }
    u64::from_be_bytes(prefix)
}
