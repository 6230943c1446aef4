//! `snapshot save <filename>` (etcdctl/ctlv3/command/snapshot_command.go,
//! clientv3/snapshot's `Save`): streams Maintenance.Snapshot into
//! `<filename>.part` (mode 0600), checks the sha256 the server appends to
//! the stream (the last 32 bytes hash everything before them), fsyncs and
//! renames the file into place. A progress bar goes to stderr when it is
//! a terminal. `snapshot status` and `snapshot restore` read files through
//! keel-snapshot (`snapshot_file.rs`).

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use sha2::{Digest, Sha256};

use crate::cli::GlobalArgs;
use crate::client::connect;
use crate::error::{CtlError, EXIT_INTERRUPTED};
use crate::output::emit;

/// Length of the sha256 etcd (and keel) append to a snapshot stream.
pub const SHA256_LEN_BYTES: usize = 32;

/// The snapshot commands.
#[derive(Debug, Subcommand)]
pub enum SnapshotCommand {
    /// Stores an etcd node backend snapshot to a given file
    Save(SaveArgs),
    /// Gets backend snapshot status of a given file
    Status(super::snapshot_file::StatusArgs),
    /// Restores an etcd member snapshot to an etcd directory
    Restore(super::snapshot_file::RestoreArgs),
}

/// `snapshot save <filename>`.
#[derive(Debug, Clone, Args)]
pub struct SaveArgs {
    /// <filename>
    pub args: Vec<String>,
}

/// Runs a snapshot command.
///
/// # Errors
/// See [`save`], [`super::snapshot_file::status`] and
/// [`super::snapshot_file::restore`].
pub async fn run(global: &GlobalArgs, command: SnapshotCommand) -> Result<(), CtlError> {
    match command {
        SnapshotCommand::Save(args) => save(global, args).await,
        SnapshotCommand::Status(args) => super::snapshot_file::status(global, args),
        SnapshotCommand::Restore(args) => super::snapshot_file::restore(args),
    }
}

/// Runs `snapshot save`.
///
/// # Errors
/// Wrong arguments or more than one endpoint (exit 128); a failed stream,
/// a bad trailing hash or a file error (exit 5, as etcdctl); the partial
/// file is removed.
pub async fn save(global: &GlobalArgs, args: SaveArgs) -> Result<(), CtlError> {
    let [path] = args.args.as_slice() else {
        return Err(CtlError::bad_args("snapshot save expects one argument"));
    };
    if global.endpoints.len() != 1 {
        return Err(CtlError::bad_args(format!(
            "snapshot must be requested to one selected node, not multiple [{}]",
            global.endpoints.join(" ")
        )));
    }
    let ctl = connect(global).await?;
    let part = PathBuf::from(format!("{path}.part"));
    let result = download(&ctl.client, &part).await;
    let result = result.and_then(|()| {
        std::fs::rename(&part, path)
            .map_err(|e| format!("could not rename {} to {path} ({e})", part.display()))
    });
    if let Err(message) = result {
        let _ = std::fs::remove_file(&part);
        return Err(CtlError::new(EXIT_INTERRUPTED, message));
    }
    emit(&format!("Snapshot saved at {path}\n"));
    Ok(())
}

fn create_private(path: &Path) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)
}

/// Streams the snapshot into `part`, checks its hash and fsyncs it.
async fn download(client: &etcd_client::Client, part: &Path) -> Result<(), String> {
    let mut file = create_private(part).map_err(|e| {
        let name = part.display();
        format!("could not open {name} (open {name}: {})", go_io_error(&e))
    })?;
    let mut maintenance = client.maintenance_client();
    let mut stream = maintenance
        .snapshot()
        .await
        .map_err(|e| crate::error::client_message(&e))?;
    let progress = progress_bar();
    let mut hasher = Sha256::new();
    // The last 32 bytes seen so far: the trailer once the stream ends.
    let mut tail: Vec<u8> = Vec::with_capacity(2 * SHA256_LEN_BYTES);
    let mut received_bytes = 0u64;
    while let Some(chunk) = stream
        .message()
        .await
        .map_err(|e| crate::error::client_message(&e))?
    {
        let blob = &chunk.0.blob;
        file.write_all(blob)
            .map_err(|e| format!("write {}: {e}", part.display()))?;
        received_bytes += blob.len() as u64;
        tail.extend_from_slice(blob);
        if tail.len() > SHA256_LEN_BYTES {
            let spill = tail.len() - SHA256_LEN_BYTES;
            hasher.update(&tail[..spill]);
            tail.drain(..spill);
        }
        if let Some(bar) = &progress {
            bar.set_length(received_bytes + chunk.0.remaining_bytes);
            bar.set_position(received_bytes);
        }
    }
    if let Some(bar) = progress {
        bar.finish_and_clear();
    }
    if tail.len() < SHA256_LEN_BYTES {
        return Err(format!(
            "snapshot stream too short ({received_bytes} bytes) to end in a sha256"
        ));
    }
    if hasher.finalize().as_slice() != tail.as_slice() {
        return Err("snapshot's trailing sha256 does not match its contents".to_owned());
    }
    file.sync_all()
        .map_err(|e| format!("fsync {}: {e}", part.display()))?;
    Ok(())
}

/// Go's wording of common file errors (`no such file or directory`).
pub(super) fn go_io_error(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file or directory".to_owned(),
        std::io::ErrorKind::PermissionDenied => "permission denied".to_owned(),
        _ => e.to_string(),
    }
}

fn progress_bar() -> Option<ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = ProgressBar::new(0);
    if let Ok(style) =
        ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} ({bytes_per_sec})")
    {
        bar.set_style(style);
    }
    Some(bar)
}
