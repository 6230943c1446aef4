//! The commands, one module per group; [`run`] dispatches.

pub mod argify;
pub mod auth;
pub mod auth_status;
pub mod check;
pub mod compaction;
pub mod concurrency;
pub mod endpoint;
pub mod keys;
pub mod kv;
pub mod lease;
pub mod maintenance;
pub mod member;
pub mod snapshot;
pub mod snapshot_file;
pub mod txn;
pub mod user;
pub mod watch;
pub mod watch_exec;
pub mod watch_interactive;
pub mod watch_line;

use crate::cli::{Cli, Command};
use crate::error::CtlError;
use crate::output::{Format, Printer};

/// Runs the command named on the command line.
///
/// # Errors
/// Whatever the command fails with; the caller prints it as etcdctl does.
pub async fn run(cli: Cli) -> Result<(), CtlError> {
    let global = &cli.global;
    match cli.command {
        Command::Get(args) => kv::get(global, args).await,
        Command::Put(args) => kv::put(global, args).await,
        Command::Del(args) => kv::del(global, args).await,
        Command::Txn(args) => txn::run(global, args).await,
        Command::Compaction(args) => compaction::run(global, args).await,
        Command::Watch(args) => watch::run(global, args).await,
        Command::Lease(command) => lease::run(global, command).await,
        Command::Member(command) => member::run(global, command).await,
        Command::Endpoint(command) => endpoint::run(global, command).await,
        Command::Alarm(command) => maintenance::alarm(global, command).await,
        Command::Defrag(args) => maintenance::defrag(global, args).await,
        Command::Auth(command) => auth::auth(global, command).await,
        Command::Role(command) => auth::role(global, command).await,
        Command::User(command) => user::run(global, command).await,
        Command::Lock(args) => concurrency::lock(global, args).await,
        Command::Elect(args) => concurrency::elect(global, args).await,
        Command::MoveLeader(args) => concurrency::move_leader(global, args).await,
        Command::Snapshot(command) => snapshot::run(global, command).await,
        Command::Check(command) => check::run(global, command).await,
    }
}

/// The printer `--write-out` and `--hex` ask for.
///
/// # Errors
/// An unknown format (exit 4).
pub fn printer(global: &crate::cli::GlobalArgs) -> Result<Printer, CtlError> {
    Ok(Printer {
        format: Format::parse(&global.write_out)?,
        hex: global.hex,
        value_only: false,
    })
}
