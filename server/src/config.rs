//! keel's configuration: etcd's command-line flags, with the same names,
//! defaults and meanings, each also read from its `ETCD_*` environment
//! variable (a flag given on the command line wins over the environment).
//!
//! [`Flags`] is the raw clap parse; [`Flags::validate`] turns it into a typed
//! [`Config`] or a [`ConfigError`] naming the bad flag. Sources: etcd v3.4/v3.5
//! `etcdmain/config.go`, `embed/config.go` and the etcd configuration docs.

mod file;
mod operations;
mod retention;
mod tls;
mod urls;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;
use url::Url;

pub use file::{CONFIG_FILE_ENV, FileArgs, config_file_path, read_config_file};
pub use operations::{AuthTokenSpec, JwtSpec, OperationFlags, Operations, parse_auth_token};
pub use retention::{AutoCompaction, AutoCompactionMode};
pub use tls::{SELF_SIGNED_CERT_VALIDITY_YEARS_MAX, TlsConfig, TlsFlags, TlsInfo, TlsUrls};
pub use urls::{bind_addr, parse_initial_cluster, parse_url_list};

/// etcd's default `--max-request-bytes`: 1.5 MiB.
pub const MAX_REQUEST_BYTES_DEFAULT: u64 = keel_kernel::limits::DEFAULT_MAX_REQUEST_BYTES;
/// Backend quota used when `--quota-backend-bytes` is 0 (etcd: 2 GiB).
pub const QUOTA_BACKEND_BYTES_DEFAULT: u64 = 2 * 1024 * 1024 * 1024;
/// Longest election timeout etcd accepts, in milliseconds.
pub const ELECTION_TIMEOUT_MS_MAX: u64 = 50_000;
/// `--snapshot-count` used when the flag is 0 (etcd's default).
pub const SNAPSHOT_COUNT_DEFAULT: u64 = 100_000;

/// The command line as etcd spells it. Defaults are etcd's, except that the
/// data directory is `<name>.keel` instead of `<name>.etcd`.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "keel",
    // keel's version and the etcd API version it serves (`api::ETCD_VERSION`,
    // checked by a test).
    version = concat!(env!("CARGO_PKG_VERSION"), " (etcd API 3.5.0)"),
    about = "keel: an etcd-compatible, strongly consistent key-value store"
)]
pub struct Flags {
    /// Path to a YAML configuration file (keys named as these flags); when
    /// given, every other flag and `ETCD_*` variable is ignored, as in etcd.
    #[arg(long, env = "ETCD_CONFIG_FILE")]
    pub config_file: Option<PathBuf>,
    /// Human-readable name for this member.
    #[arg(long, env = "ETCD_NAME", default_value = "default")]
    pub name: String,
    /// Path to the data directory [default: <name>.keel].
    #[arg(long, env = "ETCD_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// List of URLs to listen on for client traffic.
    #[arg(
        long,
        env = "ETCD_LISTEN_CLIENT_URLS",
        default_value = "http://localhost:2379"
    )]
    pub listen_client_urls: String,
    /// List of this member's client URLs to advertise to the public.
    #[arg(
        long,
        env = "ETCD_ADVERTISE_CLIENT_URLS",
        default_value = "http://localhost:2379"
    )]
    pub advertise_client_urls: String,
    /// List of URLs to listen on for peer traffic.
    ///
    /// keel only: when one is a loopback IP (e.g. 127.0.0.11), this member
    /// dials its loopback peers from that IP instead of 127.0.0.1.
    #[arg(
        long,
        env = "ETCD_LISTEN_PEER_URLS",
        default_value = "http://localhost:2380"
    )]
    pub listen_peer_urls: String,
    /// List of this member's peer URLs to advertise to the rest of the cluster.
    #[arg(
        long,
        env = "ETCD_INITIAL_ADVERTISE_PEER_URLS",
        default_value = "http://localhost:2380"
    )]
    pub initial_advertise_peer_urls: String,
    /// Initial cluster configuration for bootstrapping, `name=peer-url,...`
    /// [default: <name>=<initial-advertise-peer-urls>, i.e. default=http://localhost:2380].
    #[arg(long, env = "ETCD_INITIAL_CLUSTER")]
    pub initial_cluster: Option<String>,
    /// Initial cluster state: `new` or `existing`.
    #[arg(
        long,
        env = "ETCD_INITIAL_CLUSTER_STATE",
        value_enum,
        default_value = "new"
    )]
    pub initial_cluster_state: ClusterState,
    /// Initial cluster token, distinguishing clusters bootstrapped on the same URLs.
    #[arg(
        long,
        env = "ETCD_INITIAL_CLUSTER_TOKEN",
        default_value = "etcd-cluster"
    )]
    pub initial_cluster_token: String,
    /// Time (in milliseconds) of a heartbeat interval.
    #[arg(long, env = "ETCD_HEARTBEAT_INTERVAL", default_value_t = 100)]
    pub heartbeat_interval: u64,
    /// Time (in milliseconds) for an election to timeout.
    #[arg(long, env = "ETCD_ELECTION_TIMEOUT", default_value_t = 1000)]
    pub election_timeout: u64,
    /// Number of committed transactions to trigger a snapshot to disk.
    #[arg(long, env = "ETCD_SNAPSHOT_COUNT", default_value_t = SNAPSHOT_COUNT_DEFAULT)]
    pub snapshot_count: u64,
    /// Maximum client request size in bytes the server will accept.
    #[arg(long, env = "ETCD_MAX_REQUEST_BYTES", default_value_t = MAX_REQUEST_BYTES_DEFAULT)]
    pub max_request_bytes: u64,
    /// Raise alarms when backend size exceeds the given quota (0 defaults to
    /// 2 GiB, a negative value disables the quota).
    #[arg(
        long,
        env = "ETCD_QUOTA_BACKEND_BYTES",
        default_value_t = 0,
        allow_negative_numbers = true
    )]
    pub quota_backend_bytes: i64,
    /// List of URLs to listen on for the metrics and health endpoints
    /// (`/metrics`, `/health`) alone, over plain HTTP; none by default.
    #[arg(long, env = "ETCD_LISTEN_METRICS_URLS", default_value = "")]
    pub listen_metrics_urls: String,

    /// Interpret auto-compaction-retention as `periodic` (hours or a duration) or `revision`.
    #[arg(
        long,
        env = "ETCD_AUTO_COMPACTION_MODE",
        value_enum,
        default_value = "periodic"
    )]
    pub auto_compaction_mode: AutoCompactionMode,
    /// Auto compaction retention for the mvcc key value store; 0 disables it.
    #[arg(long, env = "ETCD_AUTO_COMPACTION_RETENTION", default_value = "0")]
    pub auto_compaction_retention: String,
    /// Log level: debug, info, warn, error, panic or fatal.
    #[arg(long, env = "ETCD_LOG_LEVEL", value_enum, default_value = "info")]
    pub log_level: LogLevel,

    /// Client and peer TLS (`--cert-file`, `--peer-cert-file`, ...).
    #[command(flatten)]
    pub tls: TlsFlags,
    /// Auth token, lease checkpoint and snapshot catch-up flags.
    #[command(flatten)]
    pub operations: OperationFlags,
}

/// `--initial-cluster-state`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ClusterState {
    /// Bootstrap a new cluster from `--initial-cluster`.
    New,
    /// Join a cluster that already exists (the member was added with MemberAdd).
    Existing,
}

/// `--log-level`, as etcd names the levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogLevel {
    /// Everything, including per-request detail.
    Debug,
    /// Notable events (the default).
    Info,
    /// Warnings and errors.
    Warn,
    /// Errors only.
    Error,
    /// etcd's panic level: treated as error.
    Panic,
    /// etcd's fatal level: treated as error.
    Fatal,
}

/// A validated configuration. URLs are parsed, the initial cluster is a map,
/// timing flags carry their units in their names.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// This member's name.
    pub name: String,
    /// Where the WAL and snapshots live.
    pub data_dir: PathBuf,
    /// URLs to serve clients on.
    pub listen_client_urls: Vec<Url>,
    /// Client URLs told to clients (MemberList).
    pub advertise_client_urls: Vec<Url>,
    /// URLs to serve peers on.
    pub listen_peer_urls: Vec<Url>,
    /// Peer URLs told to other members.
    pub initial_advertise_peer_urls: Vec<Url>,
    /// Member name -> peer URLs for bootstrapping; contains `name`.
    pub initial_cluster: BTreeMap<String, Vec<Url>>,
    /// Bootstrap a new cluster or join an existing one.
    pub initial_cluster_state: ClusterState,
    /// Token mixed into the cluster id of a new cluster.
    pub initial_cluster_token: String,
    /// Raft heartbeat interval in milliseconds.
    pub heartbeat_interval_ms: u64,
    /// Raft election timeout in milliseconds.
    pub election_timeout_ms: u64,
    /// Applied entries between state-machine snapshots.
    pub snapshot_count: u64,
    /// Largest accepted client request, in bytes.
    pub max_request_bytes: u64,
    /// Backend size that raises the NOSPACE alarm; `None` when disabled.
    pub quota_backend_bytes: Option<u64>,
    /// Extra URLs serving `/metrics` and `/health` alone (empty: none).
    pub listen_metrics_urls: Vec<Url>,

    /// Automatic compaction policy.
    pub auto_compaction: AutoCompaction,
    /// Log verbosity.
    pub log_level: LogLevel,
    /// Keys of `--config-file` that keel does not know and ignored (to be
    /// logged as warnings).
    pub config_file_ignored: Vec<String>,

    /// Client and peer TLS settings.
    pub tls: TlsConfig,
    /// Auth token, lease checkpoint and snapshot catch-up settings.
    pub operations: Operations,
}

/// Why a configuration was rejected; every variant names the flag concerned.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The command line or environment did not parse (unknown flag, bad number,
    /// bad enum value); also `--help`/`--version`, which clap reports this way.
    #[error(transparent)]
    Flags(#[from] clap::Error),
    /// A URL in a URL-list flag is malformed.
    #[error("{flag}: {reason}: {url}")]
    BadUrl {
        /// The flag that held the URL.
        flag: &'static str,
        /// The offending text.
        url: String,
        /// etcd's wording of the problem.
        reason: String,
    },
    /// `--initial-cluster` is malformed.
    #[error("--initial-cluster: {0}")]
    BadInitialCluster(String),
    /// This member's name is missing from `--initial-cluster`.
    #[error("couldn't find local name {0:?} in the initial cluster configuration")]
    NameNotInInitialCluster(String),
    /// `--initial-cluster` and `--initial-advertise-peer-urls` disagree for this member.
    #[error(
        "--initial-cluster has {name}={cluster_urls} but missing from --initial-advertise-peer-urls={advertise_urls}"
    )]
    AdvertisePeerUrlsMismatch {
        /// This member's name.
        name: String,
        /// Its URLs in `--initial-cluster`.
        cluster_urls: String,
        /// `--initial-advertise-peer-urls`.
        advertise_urls: String,
    },
    /// A timing, size or name flag is out of range.
    #[error("{0}")]
    OutOfRange(String),
    /// `--auto-compaction-retention` does not fit `--auto-compaction-mode`.
    #[error("invalid auto-compaction-retention {text:?} ({reason})")]
    BadRetention {
        /// The offending text.
        text: String,
        /// What was expected.
        reason: String,
    },
    /// The TLS flags are inconsistent (a certificate without its key, an
    /// `https://` URL without a certificate, ...).
    #[error("{0}")]
    Tls(String),
    /// `--config-file` cannot be read or does not describe settings.
    #[error("--config-file {path}: {reason}")]
    ConfigFile {
        /// The file.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
}

impl Config {
    /// The request limits this configuration sets: `--max-request-bytes`,
    /// and etcd's txn operation limit (not a flag in keel: the state
    /// machine applies it, so every member must use the same value).
    pub fn limits(&self) -> keel_kernel::Limits {
        keel_kernel::Limits {
            max_request_bytes: self.max_request_bytes,
            ..keel_kernel::Limits::default()
        }
    }

    /// Parses a full command line (`args[0]` is the program name) plus the
    /// `ETCD_*` environment, then validates it.
    ///
    /// Errors: any [`ConfigError`]; for `--help`/`--version` a
    /// [`ConfigError::Flags`] whose `exit()` prints and exits as clap does.
    pub fn from_args<I, T>(args: I) -> Result<Config, ConfigError>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        let args: Vec<std::ffi::OsString> = args.into_iter().map(Into::into).collect();
        let env = std::env::var_os(CONFIG_FILE_ENV);
        let Some(path) = config_file_path(&args, env) else {
            return Flags::try_parse_from(args)?.validate();
        };
        Config::from_file(&path)
    }

    /// The configuration of the YAML file at `path` alone: as etcd, other
    /// flags and `ETCD_*` variables are ignored when a file is given.
    ///
    /// Errors: [`ConfigError::ConfigFile`], or any error its settings give
    /// as flags.
    pub fn from_file(path: &std::path::Path) -> Result<Config, ConfigError> {
        use clap::{CommandFactory, FromArgMatches};
        let command = Flags::command().mut_args(|arg| arg.env(None));
        let known = |key: &str| command.get_arguments().any(|a| a.get_long() == Some(key));
        let file = read_config_file(path, known)?;
        let matches = command.clone().try_get_matches_from(file.args)?;
        let mut config = Flags::from_arg_matches(&matches)?.validate()?;
        config.config_file_ignored = file.ignored;
        Ok(config)
    }

    /// Socket addresses to bind for clients (`localhost` binds 127.0.0.1).
    ///
    /// Errors: [`ConfigError::BadUrl`] when a host is a name other than `localhost`.
    pub fn client_bind_addrs(&self) -> Result<Vec<SocketAddr>, ConfigError> {
        self.listen_client_urls
            .iter()
            .map(|u| bind_addr("--listen-client-urls", u))
            .collect()
    }

    /// Socket addresses to bind for `--listen-metrics-urls` (`localhost`
    /// binds 127.0.0.1); empty when none are given.
    ///
    /// Errors: [`ConfigError::BadUrl`] when a host is a name other than `localhost`.
    pub fn metrics_bind_addrs(&self) -> Result<Vec<SocketAddr>, ConfigError> {
        self.listen_metrics_urls
            .iter()
            .map(|u| bind_addr(METRICS_URLS_FLAG, u))
            .collect()
    }

    /// Socket addresses to bind for peers (`localhost` binds 127.0.0.1).
    ///
    /// Errors: [`ConfigError::BadUrl`] when a host is a name other than `localhost`.
    pub fn peer_bind_addrs(&self) -> Result<Vec<SocketAddr>, ConfigError> {
        self.listen_peer_urls
            .iter()
            .map(|u| bind_addr("--listen-peer-urls", u))
            .collect()
    }
}

impl Flags {
    /// Checks every flag and builds the typed [`Config`].
    ///
    /// Rules (etcd's): URLs are `http(s)://host:port`; listen URLs bind an IP or
    /// `localhost`; this member is in `--initial-cluster` with exactly its
    /// `--initial-advertise-peer-urls`; heartbeat > 0; election timeout at
    /// least 5 heartbeats and at most 50 s; `--max-request-bytes` > 0;
    /// retention fits the compaction mode. `--snapshot-count 0` means the default.
    pub fn validate(self) -> Result<Config, ConfigError> {
        if self.name.trim().is_empty() {
            return Err(ConfigError::OutOfRange(
                "--name must not be empty".to_owned(),
            ));
        }
        check_timing(self.heartbeat_interval, self.election_timeout)?;
        if self.max_request_bytes == 0 {
            return Err(ConfigError::OutOfRange(
                "--max-request-bytes must be greater than 0".to_owned(),
            ));
        }
        let listen_metrics_urls = metrics_urls(&self.listen_metrics_urls)?;
        let listen_client_urls = parse_url_list("--listen-client-urls", &self.listen_client_urls)?;
        let listen_peer_urls = parse_url_list("--listen-peer-urls", &self.listen_peer_urls)?;
        for url in &listen_client_urls {
            bind_addr("--listen-client-urls", url)?;
        }
        for url in &listen_peer_urls {
            bind_addr("--listen-peer-urls", url)?;
        }
        let initial_advertise_peer_urls = parse_url_list(
            "--initial-advertise-peer-urls",
            &self.initial_advertise_peer_urls,
        )?;
        let initial_cluster = match &self.initial_cluster {
            Some(text) => parse_initial_cluster(text)?,
            None => BTreeMap::from([(self.name.clone(), initial_advertise_peer_urls.clone())]),
        };
        check_self_in_cluster(&self.name, &initial_cluster, &initial_advertise_peer_urls)?;
        let tls = self.tls.validate(&TlsUrls {
            listen_client: &listen_client_urls,
            listen_peer: &listen_peer_urls,
        })?;
        let operations = self.operations.validate()?;
        Ok(Config {
            data_dir: self
                .data_dir
                .clone()
                .unwrap_or_else(|| PathBuf::from(format!("{}.keel", self.name))),
            advertise_client_urls: parse_url_list(
                "--advertise-client-urls",
                &self.advertise_client_urls,
            )?,
            auto_compaction: retention::parse_auto_compaction(
                self.auto_compaction_mode,
                &self.auto_compaction_retention,
            )?,
            quota_backend_bytes: match self.quota_backend_bytes {
                q if q < 0 => None,
                0 => Some(QUOTA_BACKEND_BYTES_DEFAULT),
                q => Some(q.unsigned_abs()),
            },
            snapshot_count: if self.snapshot_count == 0 {
                SNAPSHOT_COUNT_DEFAULT
            } else {
                self.snapshot_count
            },
            name: self.name,
            listen_metrics_urls,
            listen_client_urls,
            listen_peer_urls,
            initial_advertise_peer_urls,
            initial_cluster,
            initial_cluster_state: self.initial_cluster_state,
            initial_cluster_token: self.initial_cluster_token,
            heartbeat_interval_ms: self.heartbeat_interval,
            election_timeout_ms: self.election_timeout,
            max_request_bytes: self.max_request_bytes,
            log_level: self.log_level,
            config_file_ignored: Vec::new(),
            tls,
            operations,
        })
    }
}

/// The flag naming the metrics listeners.
const METRICS_URLS_FLAG: &str = "--listen-metrics-urls";

/// `--listen-metrics-urls`: none when empty, else `http://` URLs that bind
/// an IP or `localhost`. `https://` is refused: the metrics listener
/// serves plain HTTP only.
fn metrics_urls(text: &str) -> Result<Vec<Url>, ConfigError> {
    if text.trim().is_empty() {
        return Ok(Vec::new());
    }
    let urls = parse_url_list(METRICS_URLS_FLAG, text)?;
    for url in &urls {
        if url.scheme() != "http" {
            return Err(ConfigError::BadUrl {
                flag: METRICS_URLS_FLAG,
                url: url.to_string(),
                reason: "keel serves metrics over plain HTTP only (http://)".to_owned(),
            });
        }
        bind_addr(METRICS_URLS_FLAG, url)?;
    }
    Ok(urls)
}

fn check_timing(heartbeat_ms: u64, election_ms: u64) -> Result<(), ConfigError> {
    if heartbeat_ms == 0 {
        return Err(ConfigError::OutOfRange(
            "--heartbeat-interval must be greater than 0".to_owned(),
        ));
    }
    if heartbeat_ms.saturating_mul(5) > election_ms {
        return Err(ConfigError::OutOfRange(format!(
            "--election-timeout[{election_ms}ms] should be at least as 5 times as --heartbeat-interval[{heartbeat_ms}ms]"
        )));
    }
    if election_ms > ELECTION_TIMEOUT_MS_MAX {
        return Err(ConfigError::OutOfRange(format!(
            "--election-timeout[{election_ms}ms] is too long, and should be set less than {ELECTION_TIMEOUT_MS_MAX}ms"
        )));
    }
    Ok(())
}

fn check_self_in_cluster(
    name: &str,
    cluster: &BTreeMap<String, Vec<Url>>,
    advertise: &[Url],
) -> Result<(), ConfigError> {
    let own = cluster
        .get(name)
        .ok_or_else(|| ConfigError::NameNotInInitialCluster(name.to_owned()))?;
    let mut own_sorted: Vec<&str> = own.iter().map(Url::as_str).collect();
    let mut advertise_sorted: Vec<&str> = advertise.iter().map(Url::as_str).collect();
    own_sorted.sort_unstable();
    own_sorted.dedup();
    advertise_sorted.sort_unstable();
    advertise_sorted.dedup();
    if own_sorted != advertise_sorted {
        return Err(ConfigError::AdvertisePeerUrlsMismatch {
            name: name.to_owned(),
            cluster_urls: urls::join_urls(own),
            advertise_urls: urls::join_urls(advertise),
        });
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests;
