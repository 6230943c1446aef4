//! What the node driver needs from the configuration, with URLs as plain
//! strings (as etcd prints them, no trailing `/`), so simulated clusters can
//! build it without parsing flags.

use std::collections::BTreeMap;
use std::time::Duration;

use keel_kernel::Limits;
use keel_kernel::membership::Member;
use keel_wal::WalOptions;
use url::Url;

use crate::config::{AutoCompaction, ClusterState, Config, Operations};
use crate::observe::Observer;
use crate::transport::dial::PeerDialer;

/// Settings of one member's node driver.
#[derive(Debug, Clone)]
pub struct NodeSettings {
    /// This member's name (`--name`).
    pub name: String,
    /// This member's peer URLs (`--initial-advertise-peer-urls`).
    pub peer_urls: Vec<String>,
    /// This member's client URLs (`--advertise-client-urls`), published
    /// through Raft after start.
    pub client_urls: Vec<String>,
    /// Member name -> peer URLs (`--initial-cluster`).
    pub initial_cluster: BTreeMap<String, Vec<String>>,
    /// `--initial-cluster-state`.
    pub initial_cluster_state: ClusterState,
    /// `--initial-cluster-token`.
    pub initial_cluster_token: String,
    /// Raft heartbeat interval in milliseconds (one Raft tick).
    pub heartbeat_interval_ms: u64,
    /// Raft election timeout in milliseconds.
    pub election_timeout_ms: u64,
    /// Applied entries between state-machine snapshots.
    pub snapshot_count: u64,
    /// Request limits (`--max-request-bytes`, the txn operation limit):
    /// the one value the API's early checks and the state machine read.
    pub limits: Limits,
    /// Entries kept in the log behind a snapshot for slow followers (etcd: 5000).
    pub snapshot_catchup_entries: u64,
    /// The WAL's options: [`WalOptions::default`] (etcd's 64 MiB segments)
    /// except in tests and simulations, which use small segments to cut,
    /// purge and reuse them often.
    pub wal: WalOptions,
    /// Mixed into Raft's election-timeout randomness.
    pub seed: u64,
    /// Automatic history compaction.
    pub auto_compaction: AutoCompaction,
    /// State size that raises the NOSPACE alarm; `None` when disabled.
    pub quota_backend_bytes: Option<u64>,
    /// How this member dials its peers (TLS for `https://` peer URLs);
    /// plain unless the binary sets up peer TLS (`crate::tls::MemberTls`).
    pub peer_dialer: PeerDialer,
    /// Auth token, lease checkpoint settings (`config/operations.rs`).
    pub operations: Operations,
    /// The JWT keys read from `--auth-token jwt,...` files (by the binary,
    /// at start); `None`: simple tokens.
    pub jwt: Option<std::sync::Arc<crate::api::jwt::JwtTokens>>,

    /// Where the node reports measured durations (WAL fsyncs, snapshot
    /// files, peer round trips); ignores them by default. A running
    /// member's `/metrics` installs its own ([`crate::node::serve`]).
    pub observer: Observer,
}

/// A URL as etcd prints it: without the trailing `/` the url crate adds.
pub fn url_text(url: &Url) -> String {
    url.as_str().trim_end_matches('/').to_owned()
}

impl NodeSettings {
    /// The settings of a validated [`Config`].
    pub fn from_config(config: &Config) -> NodeSettings {
        let texts = |urls: &[Url]| urls.iter().map(url_text).collect::<Vec<_>>();
        NodeSettings {
            name: config.name.clone(),
            peer_urls: texts(&config.initial_advertise_peer_urls),
            client_urls: texts(&config.advertise_client_urls),
            initial_cluster: config
                .initial_cluster
                .iter()
                .map(|(name, urls)| (name.clone(), texts(urls)))
                .collect(),
            initial_cluster_state: config.initial_cluster_state,
            initial_cluster_token: config.initial_cluster_token.clone(),
            heartbeat_interval_ms: config.heartbeat_interval_ms,
            election_timeout_ms: config.election_timeout_ms,
            snapshot_count: config.snapshot_count,
            limits: config.limits(),
            snapshot_catchup_entries: config.operations.snapshot_catchup_entries,
            wal: WalOptions::default(),
            seed: 0,
            auto_compaction: config.auto_compaction,
            quota_backend_bytes: config.quota_backend_bytes,
            peer_dialer: PeerDialer::plain(),
            operations: config.operations.clone(),
            jwt: None,
            observer: Observer::default(),
        }
    }

    /// A single-member cluster `name` at `peer_url` with etcd's defaults
    /// (token `etcd-cluster`, 100 ms heartbeat, 1 s election timeout).
    pub fn single(name: &str, peer_url: &str) -> NodeSettings {
        NodeSettings {
            name: name.to_owned(),
            peer_urls: vec![peer_url.to_owned()],
            client_urls: vec!["http://localhost:2379".to_owned()],
            initial_cluster: BTreeMap::from([(name.to_owned(), vec![peer_url.to_owned()])]),
            initial_cluster_state: ClusterState::New,
            initial_cluster_token: "etcd-cluster".to_owned(),
            heartbeat_interval_ms: 100,
            election_timeout_ms: 1000,
            snapshot_count: crate::config::SNAPSHOT_COUNT_DEFAULT,
            limits: Limits::default(),
            snapshot_catchup_entries: 5000,
            wal: WalOptions::default(),
            seed: 0,
            auto_compaction: AutoCompaction::Disabled,
            quota_backend_bytes: Some(crate::config::QUOTA_BACKEND_BYTES_DEFAULT),
            peer_dialer: PeerDialer::plain(),
            operations: Operations::default(),
            jwt: None,
            observer: Observer::default(),
        }
    }

    /// This member's id, derived from its peer URLs and the token as etcd does.
    pub fn member_id(&self) -> u64 {
        Member::compute_id(&self.peer_urls, &self.initial_cluster_token, None)
    }

    /// Raft ticks per election timeout (at least 2).
    pub fn election_ticks(&self) -> u64 {
        (self.election_timeout_ms / self.heartbeat_interval_ms.max(1)).max(2)
    }

    /// How long a client waits for its request to be applied: 5 s plus two
    /// election timeouts, as etcd's `ReqTimeout`.
    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(5_000 + 2 * self.election_timeout_ms)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    #[test]
    fn from_default_config_matches_etcd_defaults() {
        let config = Config::from_args(["keel"]).unwrap();
        let settings = NodeSettings::from_config(&config);
        assert_eq!(settings.peer_urls, vec!["http://localhost:2380"]);
        assert_eq!(
            settings.initial_cluster["default"],
            vec!["http://localhost:2380"]
        );
        assert_eq!(settings.member_id(), 0x8e9e05c52164694d);
        assert_eq!(settings.election_ticks(), 10);
        assert_eq!(settings.request_timeout(), Duration::from_secs(7));
    }
}
