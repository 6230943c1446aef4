//! `snapshot status <filename>` and `snapshot restore <filename>`
//! (etcdctl 3.4's offline snapshot commands, `etcdutl` in 3.5): both read a
//! file on this machine, keel's own snapshot or an etcd v3 snapshot, through
//! keel-snapshot; no server is contacted.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use keel_snapshot::{RestoreOptions, RestoreStep, WriteOut};

use crate::cli::GlobalArgs;
use crate::error::{CtlError, EXIT_ERROR};
use crate::output::{Format, emit};

/// `snapshot status <filename>`.
#[derive(Debug, Clone, Args)]
pub struct StatusArgs {
    /// <filename>
    pub args: Vec<String>,
}

/// `snapshot restore <filename> [flags]`, etcdctl 3.4's flags and defaults.
#[derive(Debug, Clone, Args)]
pub struct RestoreArgs {
    /// <filename>
    pub args: Vec<String>,
    /// Path to the data directory
    #[arg(long = "data-dir", default_value = "")]
    pub data_dir: String,
    /// Human-readable name for this member
    #[arg(long, default_value = "default")]
    pub name: String,
    /// Initial cluster configuration for restore bootstrap
    #[arg(
        long = "initial-cluster",
        default_value = "default=http://localhost:2380"
    )]
    pub initial_cluster: String,
    /// Initial cluster token for the etcd cluster during restore bootstrap
    #[arg(long = "initial-cluster-token", default_value = "etcd-cluster")]
    pub initial_cluster_token: String,
    /// List of this member's peer URLs to advertise to the rest of the cluster
    #[arg(
        long = "initial-advertise-peer-urls",
        default_value = "http://localhost:2380"
    )]
    pub initial_advertise_peer_urls: String,
    /// Ignore snapshot integrity hash value (required if copied from data directory)
    #[arg(long = "skip-hash-check")]
    pub skip_hash_check: bool,
}

/// Runs `snapshot status`: prints hash, revision, total keys and size in
/// the `--write-out` format, as etcdctl does.
///
/// # Errors
/// Wrong arguments (exit 128); an unreadable, truncated, corrupt or
/// foreign file (exit 1, with keel-snapshot's reason, e.g. "invalid
/// database").
pub fn status(global: &GlobalArgs, args: StatusArgs) -> Result<(), CtlError> {
    let [path] = args.args.as_slice() else {
        return Err(CtlError::bad_args(
            "snapshot status requires exactly one argument",
        ));
    };
    let write_out = match Format::parse(&global.write_out)? {
        Format::Simple => WriteOut::Simple,
        Format::Json => WriteOut::Json,
        Format::Table => WriteOut::Table,
        Format::Fields => WriteOut::Fields,
    };
    // etcdctl stats the file first; its message names the call.
    if let Err(err) = std::fs::metadata(path) {
        let reason = super::snapshot::go_io_error(&err);
        return Err(CtlError::new(EXIT_ERROR, format!("stat {path}: {reason}")));
    }
    let status = keel_snapshot::status(Path::new(path)).map_err(failed)?;
    emit(&keel_snapshot::render_status(&status, write_out));
    Ok(())
}

/// Runs `snapshot restore`: builds the data directory of one member of a
/// new cluster from the file; a progress bar goes to stderr when it is a
/// terminal.
///
/// # Errors
/// Wrong arguments (exit 128); every refusal of keel-snapshot (exit 1): a
/// data dir that is not empty, a name missing from `--initial-cluster`, a
/// missing or wrong hash, a corrupt or truncated file.
pub fn restore(args: RestoreArgs) -> Result<(), CtlError> {
    let [path] = args.args.as_slice() else {
        return Err(CtlError::bad_args(
            "snapshot restore requires exactly one argument",
        ));
    };
    let data_dir = if args.data_dir.is_empty() {
        PathBuf::from(format!("{}.etcd", args.name))
    } else {
        PathBuf::from(&args.data_dir)
    };
    let bar = progress_bar();
    let mut options = RestoreOptions::new();
    options.data_dir = data_dir.clone();
    options.name = args.name;
    options.initial_cluster = args.initial_cluster;
    options.initial_cluster_token = args.initial_cluster_token;
    options.initial_advertise_peer_urls = split_urls(&args.initial_advertise_peer_urls);
    options.skip_hash_check = args.skip_hash_check;
    if let Some(bar) = bar.clone() {
        options.progress = Some(Box::new(move |step| show(&bar, step)));
    }
    let report = keel_snapshot::restore(Path::new(path), &options).map_err(failed);
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let report = report?;
    eprintln!(
        "restored snapshot (revision {}, {} keys) into {}",
        report.revision,
        report.total_keys,
        data_dir.display()
    );
    Ok(())
}

fn failed(err: keel_snapshot::SnapshotError) -> CtlError {
    CtlError::new(EXIT_ERROR, err.to_string())
}

fn split_urls(urls: &str) -> Vec<String> {
    urls.split(',')
        .map(str::trim)
        .filter(|url| !url.is_empty())
        .map(str::to_owned)
        .collect()
}

fn progress_bar() -> Option<ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = ProgressBar::new(3);
    if let Ok(style) = ProgressStyle::with_template("{bar:30} {msg}") {
        bar.set_style(style);
    }
    Some(bar)
}

fn show(bar: &ProgressBar, step: RestoreStep) {
    let message = match step {
        RestoreStep::Read { bytes } => format!("read {bytes} bytes"),
        RestoreStep::Decoded { keys } => format!("checked {keys} keys"),
        RestoreStep::Written => "data dir written and synced".to_owned(),
    };
    bar.inc(1);
    bar.set_message(message);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_urls_split_on_commas() {
        assert_eq!(
            split_urls("http://a:1, http://b:2,"),
            vec!["http://a:1".to_owned(), "http://b:2".to_owned()]
        );
    }
}
