//! `ETCD_*` environment variables feed the same flags as the command line.
//!
//! Changing this process's environment would race other tests (and is
//! `unsafe` in edition 2024), so each case re-runs this test binary as a
//! child with a prepared environment and checks its verdict.
#![cfg(not(madsim))]
#![allow(clippy::unwrap_used)] // tests may unwrap

use std::process::Command;

use keel_server::config::{AutoCompaction, ClusterState, Config, LogLevel};

const CASE_VAR: &str = "KEEL_CONFIG_ENV_CASE";

/// Runs test `name` of this binary in a child with `env` set; returns whether it passed.
fn run_child(name: &str, case: &str, env: &[(&str, &str)]) -> bool {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args(["--exact", name, "--nocapture", "--test-threads=1"])
        .env(CASE_VAR, case);
    for (key, _) in std::env::vars() {
        if key.starts_with("ETCD_") {
            command.env_remove(key);
        }
    }
    command.envs(env.iter().copied());
    let output = command.output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    eprintln!("{stdout}{}", String::from_utf8_lossy(&output.stderr));
    // The child must have run exactly the one test, not zero.
    output.status.success() && stdout.contains("test result: ok. 1 passed")
}

#[test]
fn environment_sets_flags_and_command_line_wins() {
    if std::env::var(CASE_VAR).as_deref() == Ok("good") {
        let cfg = Config::from_args(["keel"]).unwrap();
        assert_eq!(cfg.name, "env-member");
        assert_eq!(cfg.data_dir.to_str(), Some("/tmp/env-data"));
        assert_eq!(
            cfg.client_bind_addrs().unwrap(),
            vec!["127.0.0.1:12379".parse().unwrap()]
        );
        assert_eq!(cfg.initial_cluster_state, ClusterState::Existing);
        assert_eq!(
            (cfg.heartbeat_interval_ms, cfg.election_timeout_ms),
            (50, 600)
        );
        assert_eq!(
            cfg.auto_compaction,
            AutoCompaction::Revision {
                retention_revisions: 5
            }
        );
        assert_eq!(cfg.log_level, LogLevel::Warn);
        let cfg = Config::from_args(["keel", "--heartbeat-interval", "20", "--log-level", "error"])
            .unwrap();
        assert_eq!(
            (cfg.heartbeat_interval_ms, cfg.log_level),
            (20, LogLevel::Error)
        );
        return;
    }
    assert!(run_child(
        "environment_sets_flags_and_command_line_wins",
        "good",
        &[
            ("ETCD_NAME", "env-member"),
            ("ETCD_DATA_DIR", "/tmp/env-data"),
            ("ETCD_LISTEN_CLIENT_URLS", "http://127.0.0.1:12379"),
            ("ETCD_INITIAL_CLUSTER_STATE", "existing"),
            ("ETCD_HEARTBEAT_INTERVAL", "50"),
            ("ETCD_ELECTION_TIMEOUT", "600"),
            ("ETCD_AUTO_COMPACTION_MODE", "revision"),
            ("ETCD_AUTO_COMPACTION_RETENTION", "5"),
            ("ETCD_LOG_LEVEL", "warn"),
        ],
    ));
}

#[test]
fn bad_environment_value_is_an_error() {
    if std::env::var(CASE_VAR).as_deref() == Ok("bad") {
        let err = Config::from_args(["keel"]).unwrap_err().to_string();
        assert!(err.contains("--election-timeout[100ms]"), "{err}");
        return;
    }
    assert!(run_child(
        "bad_environment_value_is_an_error",
        "bad",
        &[("ETCD_ELECTION_TIMEOUT", "100")]
    ));
}
