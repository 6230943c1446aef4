//! `compaction [--physical] <revision>`
//! (etcdctl/ctlv3/command/compaction_command.go).

use clap::Args;
use etcd_client::CompactionOptions;

use crate::cli::GlobalArgs;
use crate::client::connect;
use crate::error::CtlError;
use crate::output::emit;

/// `compaction [options] <revision>`.
#[derive(Debug, Clone, Args)]
pub struct CompactionArgs {
    /// 'true' to wait for compaction to physically remove all old revisions
    #[arg(long)]
    pub physical: bool,
    /// <revision>
    pub args: Vec<String>,
}

/// Runs `compaction`; prints `compacted revision N` in every format, as
/// etcdctl does.
///
/// # Errors
/// Wrong arguments (exit 128), a bad revision (exit 1, Go's message),
/// connection and server errors.
pub async fn run(global: &GlobalArgs, args: CompactionArgs) -> Result<(), CtlError> {
    let [revision] = args.args.as_slice() else {
        return Err(CtlError::bad_args("compaction command needs 1 argument"));
    };
    let revision: i64 = revision.parse().map_err(|_| {
        CtlError::error(format!(
            "strconv.ParseInt: parsing {}: invalid syntax",
            crate::output::go::quote(revision.as_bytes())
        ))
    })?;
    super::printer(global)?;
    let ctl = connect(global).await?;
    let mut options = CompactionOptions::new();
    if args.physical {
        options = options.with_physical();
    }
    let mut kv = ctl.client.kv_client();
    ctl.call(kv.compact(revision, Some(options))).await?;
    emit(&format!("compacted revision {revision}\n"));
    Ok(())
}
