//! `lock`, `elect` and `move-leader` (etcdctl/ctlv3/command/
//! {lock,elect,move_leader}_command.go). A lock or election holds a
//! session: a lease kept alive until the command ends; SIGINT or SIGTERM
//! releases the lock (resigns) and exits.

use std::time::Duration;

use clap::Args;
use etcd_client::{Client, LockOptions, ResignOptions};

use super::endpoint::only;
use crate::cli::GlobalArgs;
use crate::client::{Ctl, connect};
use crate::error::{CtlError, client_message};
use crate::output::{Format, Printer, emit, fields, json, simple};

/// etcd's default session TTL (concurrency.NewSession), in seconds.
pub const SESSION_TTL_S: i64 = 60;

/// `lock <lockname> [exec-command arg1 arg2 ...]`.
#[derive(Debug, Clone, Args)]
pub struct LockArgs {
    /// timeout for session
    #[arg(long, default_value_t = 10)]
    pub ttl: i64,
    /// <lockname> [exec-command arg1 arg2 ...]
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub args: Vec<String>,
}

/// `elect <election-name> [proposal]`.
#[derive(Debug, Clone, Args)]
pub struct ElectArgs {
    /// observation mode
    #[arg(short, long)]
    pub listen: bool,
    /// <election-name> [proposal]
    pub args: Vec<String>,
}

/// `move-leader <transferee-member-id>`.
#[derive(Debug, Clone, Args)]
pub struct MoveLeaderArgs {
    /// <transferee-member-id>
    pub args: Vec<String>,
}

/// A lease kept alive in the background for as long as the value lives.
struct Session {
    id: i64,
    keeper: tokio::task::JoinHandle<()>,
}

impl Session {
    async fn start(client: &Client, ttl_s: i64) -> Result<Session, CtlError> {
        let mut lease = client.lease_client();
        let id = lease.grant(ttl_s, None).await?.0.id;
        let (mut keeper, mut stream) = lease.keep_alive(id).await?;
        let period = Duration::from_millis(u64::try_from(ttl_s.max(1)).unwrap_or(1) * 1000 / 3);
        let keeper = tokio::spawn(async move {
            loop {
                tokio::time::sleep(period).await;
                if keeper.keep_alive().await.is_err() {
                    return;
                }
                if !matches!(stream.message().await, Ok(Some(_))) {
                    return;
                }
            }
        });
        Ok(Session { id, keeper })
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.keeper.abort();
    }
}

/// Waits for SIGINT or SIGTERM.
async fn interrupted() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut terminate) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = terminate.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

/// Prints `key` as etcdctl's `display.Get` of a fresh read of it.
async fn print_key(ctl: &Ctl, printer: Printer, key: &[u8]) -> Result<bool, CtlError> {
    let mut kv = ctl.client.kv_client();
    let r = kv.get(key.to_vec(), None).await?.0;
    if r.kvs.is_empty() {
        return Ok(false);
    }
    print_range(printer, &r)?;
    Ok(true)
}

fn print_range(printer: Printer, r: &etcd_client::proto::PbRangeResponse) -> Result<(), CtlError> {
    let mut out = String::new();
    match printer.format {
        Format::Simple => simple::range(&mut out, printer.hex, false, r),
        Format::Fields => fields::range(&mut out, r),
        Format::Json => out = json::line(&json::range(r)),
        Format::Table => return Err(printer.format.unsupported()),
    }
    emit(&out);
    Ok(())
}

fn canceled(e: etcd_client::Error) -> CtlError {
    CtlError::error(client_message(&e))
}

/// Runs `lock`.
///
/// # Errors
/// No lock name (exit 128), connection and server errors, `context
/// canceled` when interrupted while waiting, a failing command.
pub async fn lock(global: &GlobalArgs, args: LockArgs) -> Result<(), CtlError> {
    let Some(name) = args.args.first() else {
        return Err(CtlError::bad_args(
            "lock takes a lock name argument and an optional command to execute",
        ));
    };
    let printer = super::printer(global)?;
    let ctl = connect(global).await?;
    let session = Session::start(&ctl.client, args.ttl).await?;
    let mut locks = ctl.client.lock_client();
    let options = LockOptions::new().with_lease(session.id);
    let locked = tokio::select! {
        r = locks.lock(name.as_str(), Some(options)) => r.map_err(canceled)?,
        () = interrupted() => return Err(CtlError::error("context canceled")),
    };
    let key = locked.0.key.clone();
    // cobra drops a `--` before the command; clap keeps it.
    let command = match &args.args[1..] {
        [dashes, rest @ ..] if dashes == "--" => rest,
        rest => rest,
    };
    if let Some((program, rest)) = command.split_first() {
        let revision = locked.0.header.as_ref().map_or(0, |h| h.revision);
        let status = tokio::process::Command::new(program)
            .args(rest)
            .env("ETCD_LOCK_KEY", String::from_utf8_lossy(&key).as_ref())
            .env("ETCD_LOCK_REV", revision.to_string())
            .status()
            .await;
        locks.unlock(key).await.map_err(canceled)?;
        return match status {
            Ok(s) if s.success() => Ok(()),
            Ok(s) => Err(CtlError::error(format!("{s}"))),
            Err(e) => Err(CtlError::error(format!("exec: {e}"))),
        };
    }
    if !print_key(&ctl, printer, &key).await? {
        return Err(CtlError::error("lock lost on init"));
    }
    interrupted().await;
    locks.unlock(key).await.map_err(canceled)?;
    Ok(())
}

/// Runs `elect`.
///
/// # Errors
/// Wrong arguments (exit 128), connection and server errors.
pub async fn elect(global: &GlobalArgs, args: ElectArgs) -> Result<(), CtlError> {
    let (name, proposal) = match args.args.as_slice() {
        [name] => (name.clone(), None),
        [name, proposal] => (name.clone(), Some(proposal.clone())),
        _ => {
            return Err(CtlError::bad_args(
                "elect takes one election name argument and an optional proposal argument",
            ));
        }
    };
    match (&proposal, args.listen) {
        (None, false) => return Err(CtlError::bad_args("no proposal argument but -l not set")),
        (Some(_), true) => return Err(CtlError::bad_args("proposal given but -l is set")),
        _ => {}
    }
    let printer = super::printer(global)?;
    let ctl = connect(global).await?;
    let Some(proposal) = proposal else {
        return observe(&ctl, printer, &name).await;
    };
    let session = Session::start(&ctl.client, SESSION_TTL_S).await?;
    let mut election = ctl.client.election_client();
    let campaign = tokio::select! {
        r = election.campaign(name.as_str(), proposal.as_str(), session.id) => r.map_err(canceled)?,
        () = interrupted() => return Err(CtlError::error("context canceled")),
    };
    let Some(leader) = campaign.leader().cloned() else {
        return Err(CtlError::error(
            "elect: no leader key in the campaign's answer",
        ));
    };
    if !print_key(&ctl, printer, leader.key()).await? {
        return Err(CtlError::error("elect: session expired"));
    }
    interrupted().await;
    let options = ResignOptions::new().with_leader(leader);
    election.resign(Some(options)).await.map_err(canceled)?;
    Ok(())
}

async fn observe(ctl: &Ctl, printer: Printer, name: &str) -> Result<(), CtlError> {
    let mut election = ctl.client.election_client();
    let mut stream = election.observe(name).await.map_err(canceled)?;
    loop {
        tokio::select! {
            message = stream.message() => {
                let Ok(Some(leader)) = message else {
                    return Err(CtlError::error("elect: observer lost"));
                };
                let r = etcd_client::proto::PbRangeResponse {
                    header: leader.0.header,
                    kvs: leader.0.kv.clone().into_iter().collect(),
                    more: false,
                    count: 1,
                };
                print_range(printer, &r)?;
            }
            () = interrupted() => return Ok(()),
        }
    }
}

/// Runs `move-leader`: finds the leader among the endpoints and asks it
/// to hand leadership to the given member.
///
/// # Errors
/// A bad member ID (exit 128), no leader among the endpoints (exit 128),
/// connection and server errors.
pub async fn move_leader(global: &GlobalArgs, args: MoveLeaderArgs) -> Result<(), CtlError> {
    let [target] = args.args.as_slice() else {
        return Err(CtlError::bad_args("move-leader command needs 1 argument"));
    };
    let target = u64::from_str_radix(target, 16).map_err(|_| {
        CtlError::bad_args(format!(
            "strconv.ParseUint: parsing {}: invalid syntax",
            crate::output::go::quote(target.as_bytes())
        ))
    })?;
    let printer = super::printer(global)?;
    let endpoints = crate::client::endpoint_urls(global);
    for endpoint in &endpoints {
        let ctl = connect(&only(global, endpoint)).await?;
        let mut maintenance = ctl.client.maintenance_client();
        let status = ctl.call(maintenance.status()).await?.0;
        let member = status.header.as_ref().map_or(0, |h| h.member_id);
        if member != status.leader {
            continue;
        }
        ctl.call(maintenance.move_leader(target)).await?;
        return match printer.format {
            Format::Simple => {
                emit(&format!(
                    "Leadership transferred from {member:x} to {target:x}\n"
                ));
                Ok(())
            }
            other => Err(other.unsupported()),
        };
    }
    Err(CtlError::bad_args(format!(
        "no leader endpoint given at [{}]",
        global.endpoints.join(" ")
    )))
}
