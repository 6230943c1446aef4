//! Unit tests of flag parsing and validation. Environment variables are tested
//! in `tests/config_env.rs`, which runs a child process with a prepared
//! environment (changing this process's environment would race other tests).

use super::*;

fn parse(args: &[&str]) -> Result<Config, ConfigError> {
    Config::from_args(std::iter::once("keel").chain(args.iter().copied()))
}

fn err_text(args: &[&str]) -> String {
    parse(args).expect_err("should be rejected").to_string()
}

#[test]
fn no_flags_gives_etcds_defaults() {
    let cfg = parse(&[]).unwrap();
    assert_eq!(cfg.name, "default");
    assert_eq!(cfg.data_dir, PathBuf::from("default.keel"));
    assert_eq!(
        cfg.client_bind_addrs().unwrap(),
        vec!["127.0.0.1:2379".parse().unwrap()]
    );
    assert_eq!(
        cfg.peer_bind_addrs().unwrap(),
        vec!["127.0.0.1:2380".parse().unwrap()]
    );
    assert_eq!(
        cfg.advertise_client_urls[0].as_str(),
        "http://localhost:2379/"
    );
    assert_eq!(cfg.initial_cluster.len(), 1);
    assert_eq!(
        cfg.initial_cluster["default"][0].as_str(),
        "http://localhost:2380/"
    );
    assert_eq!(cfg.initial_cluster_state, ClusterState::New);
    assert_eq!(cfg.initial_cluster_token, "etcd-cluster");
    assert_eq!(
        (cfg.heartbeat_interval_ms, cfg.election_timeout_ms),
        (100, 1000)
    );
    assert_eq!(cfg.snapshot_count, 100_000);
    assert_eq!(cfg.max_request_bytes, 1_572_864);
    assert_eq!(cfg.quota_backend_bytes, Some(2 * 1024 * 1024 * 1024));
    assert_eq!(cfg.auto_compaction, AutoCompaction::Disabled);
    assert_eq!(cfg.log_level, LogLevel::Info);
}

#[test]
fn name_sets_data_dir_and_default_initial_cluster() {
    let cfg = parse(&["--name", "infra1"]).unwrap();
    assert_eq!(cfg.data_dir, PathBuf::from("infra1.keel"));
    assert!(cfg.initial_cluster.contains_key("infra1"));
}

#[test]
fn etcd_documented_three_member_command_line_parses() {
    let cfg = parse(&[
        "--name",
        "infra0",
        "--initial-advertise-peer-urls",
        "http://10.0.1.10:2380",
        "--listen-peer-urls",
        "http://10.0.1.10:2380",
        "--listen-client-urls",
        "http://10.0.1.10:2379,http://127.0.0.1:2379",
        "--advertise-client-urls",
        "http://10.0.1.10:2379",
        "--initial-cluster-token",
        "etcd-cluster-1",
        "--initial-cluster",
        "infra0=http://10.0.1.10:2380,infra1=http://10.0.1.11:2380,infra2=http://10.0.1.12:2380",
        "--initial-cluster-state",
        "new",
    ])
    .unwrap();
    assert_eq!(cfg.initial_cluster.len(), 3);
    assert_eq!(cfg.client_bind_addrs().unwrap().len(), 2);
    assert_eq!(cfg.initial_cluster_token, "etcd-cluster-1");
}

#[test]
fn every_flag_is_read() {
    let cfg = parse(&[
        "--data-dir=/var/lib/keel",
        "--initial-cluster-state=existing",
        "--heartbeat-interval=50",
        "--election-timeout=500",
        "--snapshot-count=10",
        "--max-request-bytes=100",
        "--quota-backend-bytes=-1",
        "--auto-compaction-mode=revision",
        "--auto-compaction-retention=1000",
        "--log-level=debug",
    ])
    .unwrap();
    assert_eq!(cfg.data_dir, PathBuf::from("/var/lib/keel"));
    assert_eq!(cfg.initial_cluster_state, ClusterState::Existing);
    assert_eq!(
        (cfg.heartbeat_interval_ms, cfg.election_timeout_ms),
        (50, 500)
    );
    assert_eq!((cfg.snapshot_count, cfg.max_request_bytes), (10, 100));
    assert_eq!(cfg.quota_backend_bytes, None);
    assert_eq!(
        cfg.auto_compaction,
        AutoCompaction::Revision {
            retention_revisions: 1000
        }
    );
    assert_eq!(cfg.log_level, LogLevel::Debug);
}

#[test]
fn quota_and_snapshot_count_zero_mean_defaults() {
    let cfg = parse(&["--quota-backend-bytes", "4096", "--snapshot-count", "0"]).unwrap();
    assert_eq!(cfg.quota_backend_bytes, Some(4096));
    assert_eq!(cfg.snapshot_count, SNAPSHOT_COUNT_DEFAULT);
}

#[test]
fn election_timeout_must_cover_five_heartbeats() {
    let err = err_text(&["--heartbeat-interval", "300", "--election-timeout", "1000"]);
    assert_eq!(
        err,
        "--election-timeout[1000ms] should be at least as 5 times as --heartbeat-interval[300ms]"
    );
    assert!(err_text(&["--heartbeat-interval", "0"]).contains("--heartbeat-interval"));
    assert!(err_text(&["--election-timeout", "60000"]).contains("is too long"));
}

#[test]
fn name_must_be_in_initial_cluster() {
    let err = err_text(&[
        "--name",
        "a",
        "--initial-cluster",
        "b=http://localhost:2380",
    ]);
    assert_eq!(
        err,
        "couldn't find local name \"a\" in the initial cluster configuration"
    );
}

#[test]
fn advertise_peer_urls_must_match_initial_cluster() {
    let err = err_text(&[
        "--initial-cluster",
        "default=http://localhost:2380",
        "--initial-advertise-peer-urls",
        "http://127.0.0.1:9999",
    ]);
    assert_eq!(
        err,
        "--initial-cluster has default=http://localhost:2380 but missing from \
         --initial-advertise-peer-urls=http://127.0.0.1:9999"
    );
}

#[test]
fn default_initial_cluster_follows_advertise_peer_urls() {
    let cfg = parse(&[
        "--name",
        "n1",
        "--initial-advertise-peer-urls",
        "http://127.0.0.1:9999",
    ])
    .unwrap();
    assert_eq!(cfg.initial_cluster["n1"], cfg.initial_advertise_peer_urls);
}

#[test]
fn bad_values_are_rejected_with_the_flag_named() {
    let cases: [(&[&str], &str); 8] = [
        (
            &["--listen-client-urls", "localhost:2379"],
            "--listen-client-urls",
        ),
        (
            &["--listen-peer-urls", "http://example.com:2380"],
            "expected IP in URL for binding",
        ),
        (&["--advertise-client-urls", "http://h"], "host:port"),
        (&["--initial-cluster", "default"], "--initial-cluster"),
        (&["--initial-cluster-state", "old"], "invalid value 'old'"),
        (&["--heartbeat-interval", "fast"], "invalid value 'fast'"),
        (
            &["--auto-compaction-retention", "soon"],
            "invalid auto-compaction-retention",
        ),
        (&["--max-request-bytes", "0"], "--max-request-bytes"),
    ];
    for (args, expected) in cases {
        let err = err_text(args);
        assert!(err.contains(expected), "{args:?}: {err}");
    }
    assert!(err_text(&["--name", ""]).contains("--name"));
    assert!(err_text(&["--no-such-flag"]).contains("--no-such-flag"));
}

/// A YAML file as etcd's docs write it configures the member alone: the
/// flags beside `--config-file` are ignored, as in etcd.
#[test]
fn a_config_file_sets_the_flags_and_others_are_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keel.yml");
    let yaml = "name: 'infra0'\n\
                data-dir: /var/lib/infra0\n\
                listen-client-urls: http://127.0.0.1:12379\n\
                advertise-client-urls: http://127.0.0.1:12379\n\
                listen-peer-urls: http://127.0.0.1:12380\n\
                initial-advertise-peer-urls: http://127.0.0.1:12380\n\
                initial-cluster: infra0=http://127.0.0.1:12380\n\
                initial-cluster-state: 'new'\n\
                heartbeat-interval: 50\n\
                election-timeout: 500\n\
                enable-v2: false\n\
                client-transport-security:\n  cert-file:\n";
    std::fs::write(&path, yaml).unwrap();
    let path_text = path.to_str().unwrap();
    let cfg = Config::from_args(["keel", "--name", "cli", "--config-file", path_text]).unwrap();
    assert_eq!(cfg.name, "infra0");
    assert_eq!(cfg.data_dir.to_str(), Some("/var/lib/infra0"));
    assert_eq!(cfg.heartbeat_interval_ms, 50);
    assert_eq!(cfg.election_timeout_ms, 500);
    assert_eq!(
        cfg.listen_client_urls[0].as_str(),
        "http://127.0.0.1:12379/"
    );
    assert_eq!(cfg.config_file_ignored, ["enable-v2"]);

    std::fs::write(&path, "heartbeat-interval: fast\n").unwrap();
    assert!(Config::from_args(["keel", "--config-file", path_text]).is_err());
    let missing = dir.path().join("missing.yml");
    let err = Config::from_args(["keel", &format!("--config-file={}", missing.display())]);
    assert!(matches!(err, Err(ConfigError::ConfigFile { .. })));
}

/// etcd's TLS flags: both forms of the booleans, the `ETCD_*` spelling in
/// a config file, and the checks against the URLs.
#[test]
fn tls_flags_are_read_and_checked() {
    let cfg = parse(&[
        "--listen-client-urls",
        "https://127.0.0.1:12379",
        "--cert-file",
        "/c.pem",
        "--key-file",
        "/k.pem",
        "--trusted-ca-file",
        "/ca.pem",
        "--client-cert-auth",
        "--peer-auto-tls=true",
    ])
    .unwrap();
    assert_eq!(cfg.tls.client.cert_file.as_deref(), Some("/c.pem".as_ref()));
    assert!(cfg.tls.client.client_cert_auth && cfg.tls.client.requires_client_cert());
    assert!(cfg.tls.peer.auto_tls && !cfg.tls.peer.has_cert());
    assert_eq!(cfg.tls.self_signed_cert_validity_years, 1);
    assert_eq!(
        parse(&[]).unwrap().tls,
        crate::config::TlsConfig {
            self_signed_cert_validity_years: 1,
            ..Default::default()
        }
    );

    let https = ["--listen-client-urls", "https://127.0.0.1:12379"];
    assert_eq!(
        err_text(&https),
        "TLS key/cert (--cert-file, --key-file) must be provided for client url \
         https://127.0.0.1:12379 with HTTPS scheme"
    );
    let peer = ["--listen-peer-urls", "https://127.0.0.1:12380"];
    assert!(err_text(&peer).contains("(--peer-cert-file, --peer-key-file)"));
    assert!(parse(&["--listen-client-urls", "https://127.0.0.1:1", "--auto-tls"]).is_ok());
    assert!(err_text(&["--cert-file", "/c.pem"]).contains("must both be present"));
    assert!(err_text(&["--peer-client-cert-auth"]).contains("--peer-trusted-ca-file"));
    assert!(err_text(&["--self-signed-cert-validity", "0"]).contains("validity"));
}

/// `--listen-metrics-urls` (and its `--config-file` key) as etcd's: none by
/// default, a comma-separated list of `http://` URLs binding IPs or
/// `localhost`.
#[test]
fn metrics_urls_come_from_the_flag_or_the_config_file() {
    assert!(parse(&[]).unwrap().metrics_bind_addrs().unwrap().is_empty());
    let cfg =
        parse(&["--listen-metrics-urls=http://127.0.0.1:2381,http://localhost:2382"]).unwrap();
    assert_eq!(
        cfg.metrics_bind_addrs().unwrap(),
        vec![
            "127.0.0.1:2381".parse().unwrap(),
            "127.0.0.1:2382".parse().unwrap()
        ]
    );
    for bad in [
        "https://127.0.0.1:2381",
        "http://127.0.0.1",
        "http://example.com:2381",
    ] {
        let text = err_text(&["--listen-metrics-urls", bad]);
        assert!(text.contains("--listen-metrics-urls"), "{bad}: {text}");
    }

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keel.yml");
    std::fs::write(&path, "listen-metrics-urls: http://127.0.0.1:12381\n").unwrap();
    let cfg = Config::from_file(&path).unwrap();
    assert_eq!(
        cfg.metrics_bind_addrs().unwrap(),
        vec!["127.0.0.1:12381".parse().unwrap()]
    );
    assert!(cfg.config_file_ignored.is_empty());
}

/// `keel --version` names keel's version and the etcd API version it
/// serves (the one Maintenance.Status reports).
#[test]
fn the_version_names_the_etcd_api_version() {
    use clap::CommandFactory;
    let command = Flags::command();
    let version = command.get_version().unwrap_or_default();
    assert!(version.starts_with(env!("CARGO_PKG_VERSION")), "{version}");
    assert!(
        version.contains(&format!("etcd API {}", crate::api::ETCD_VERSION)),
        "{version}"
    );
}
