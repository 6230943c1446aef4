//! `lease grant|revoke|timetolive|list|keep-alive`
//! (etcdctl/ctlv3/command/lease_command.go), printed as etcdctl's
//! printers do for clientv3's lease response wrappers.

use clap::{Args, Subcommand};
use etcd_client::LeaseTimeToLiveOptions;
use etcd_client::proto::PbResponseHeader;
use serde_json::Value;

use super::kv::parse_lease_hex;
use crate::cli::GlobalArgs;
use crate::client::{Ctl, connect};
use crate::error::{CtlError, EXIT_BAD_CONNECTION, client_message};
use crate::output::json::{self, Object};
use crate::output::{Format, Printer, emit, fields, go};

/// The lease commands.
#[derive(Debug, Subcommand)]
pub enum LeaseCommand {
    /// Creates leases
    Grant(LeaseArgs),
    /// Revokes leases
    Revoke(LeaseArgs),
    /// Get lease information
    Timetolive(TimeToLiveArgs),
    /// List all active leases
    List(LeaseArgs),
    /// Keeps leases alive (renew)
    #[command(name = "keep-alive")]
    KeepAlive(KeepAliveArgs),
}

/// Positional arguments of a lease command.
#[derive(Debug, Clone, Args)]
pub struct LeaseArgs {
    /// <ttl> or <leaseID>
    pub args: Vec<String>,
}

/// `lease timetolive [--keys] <leaseID>`.
#[derive(Debug, Clone, Args)]
pub struct TimeToLiveArgs {
    /// Get keys attached to this lease
    #[arg(long)]
    pub keys: bool,
    /// <leaseID>
    pub args: Vec<String>,
}

/// `lease keep-alive [--once] <leaseID>`.
#[derive(Debug, Clone, Args)]
pub struct KeepAliveArgs {
    /// Resets the keep-alive time to its original value and exits immediately
    #[arg(long)]
    pub once: bool,
    /// <leaseID>
    pub args: Vec<String>,
}

/// Runs a lease command.
///
/// # Errors
/// etcdctl's argument errors, connection and server errors.
pub async fn run(global: &GlobalArgs, command: LeaseCommand) -> Result<(), CtlError> {
    match command {
        LeaseCommand::Grant(args) => grant(global, &args.args).await,
        LeaseCommand::Revoke(args) => revoke(global, &args.args).await,
        LeaseCommand::Timetolive(args) => time_to_live(global, &args).await,
        LeaseCommand::List(_) => list(global).await,
        LeaseCommand::KeepAlive(args) => keep_alive(global, &args).await,
    }
}

/// etcdctl's `leaseFromArgs`.
fn lease_id(arg: &str) -> Result<i64, CtlError> {
    parse_lease_hex(arg)
        .map_err(|e| CtlError::bad_args(format!("bad lease ID arg ({e}), expecting ID in Hex")))
}

fn one_arg<'a>(args: &'a [String], usage: &str) -> Result<&'a str, CtlError> {
    match args {
        [one] => Ok(one),
        _ => Err(CtlError::bad_args(usage)),
    }
}

async fn grant(global: &GlobalArgs, args: &[String]) -> Result<(), CtlError> {
    let ttl = one_arg(args, "lease grant command needs TTL argument")?;
    let ttl: i64 = ttl.parse().map_err(|_| {
        CtlError::bad_args(format!(
            "bad TTL (strconv.ParseInt: parsing {}: invalid syntax)",
            go::quote(ttl.as_bytes())
        ))
    })?;
    let printer = super::printer(global)?;
    let ctl = connect(global).await?;
    let mut lease = ctl.client.lease_client();
    let r = ctl
        .call(lease.grant(ttl, None))
        .await
        .map_err(|e| CtlError::error(format!("failed to grant lease ({})", e.message)))?
        .0;
    let text = match printer.format {
        Format::Simple => format!("lease {:016x} granted with TTL({}s)\n", r.id, r.ttl),
        Format::Fields => {
            let mut out = String::new();
            fields::header(&mut out, r.header.as_ref());
            out + &format!("\"ID\" : {}\n\"TTL\" : {}\n", r.id, r.ttl)
        }
        Format::Json => json::line(
            &json::header_fields(r.header.as_ref())
                .always("ID", Value::from(r.id))
                .always("TTL", Value::from(r.ttl))
                .always("Error", Value::from(r.error.as_str()))
                .value(),
        ),
        Format::Table => return Err(printer.format.unsupported()),
    };
    emit(&text);
    Ok(())
}

async fn revoke(global: &GlobalArgs, args: &[String]) -> Result<(), CtlError> {
    let id = lease_id(one_arg(args, "lease revoke command needs 1 argument")?)?;
    let printer = super::printer(global)?;
    let ctl = connect(global).await?;
    let mut lease = ctl.client.lease_client();
    let r = ctl
        .call(lease.revoke(id))
        .await
        .map_err(|e| CtlError::error(format!("failed to revoke lease ({})", e.message)))?
        .0;
    let text = match printer.format {
        Format::Simple => format!("lease {id:016x} revoked\n"),
        Format::Fields => {
            let mut out = String::new();
            fields::header(&mut out, r.header.as_ref());
            out
        }
        Format::Json => json::line(
            &Object::new()
                .object("header", json::header(r.header.as_ref()))
                .value(),
        ),
        Format::Table => return Err(printer.format.unsupported()),
    };
    emit(&text);
    Ok(())
}

/// A request etcdctl makes without a deadline and whose failure exits 2.
async fn unbounded<T>(
    request: impl std::future::Future<Output = Result<T, etcd_client::Error>>,
) -> Result<T, CtlError> {
    request
        .await
        .map_err(|e| CtlError::new(EXIT_BAD_CONNECTION, client_message(&e)))
}

async fn time_to_live(global: &GlobalArgs, args: &TimeToLiveArgs) -> Result<(), CtlError> {
    let id = lease_id(one_arg(
        &args.args,
        "lease timetolive command needs lease ID as argument",
    )?)?;
    let printer = super::printer(global)?;
    let ctl = connect(global).await?;
    let mut lease = ctl.client.lease_client();
    let options = args.keys.then(|| LeaseTimeToLiveOptions::new().with_keys());
    let r = unbounded(lease.time_to_live(id, options)).await?.0;
    let text = match printer.format {
        Format::Simple => {
            simple_time_to_live(r.id, r.granted_ttl, r.ttl, args.keys.then_some(&r.keys))
        }
        Format::Fields => {
            let mut out = String::new();
            fields::header(&mut out, r.header.as_ref());
            out.push_str(&format!(
                "\"ID\" : {}\n\"TTL\" : {}\n\"GrantedTTL\" : {}\n",
                r.id, r.ttl, r.granted_ttl
            ));
            for key in &r.keys {
                out.push_str(&format!("\"Key\" : {}\n", go::quote(key)));
            }
            out
        }
        Format::Json => {
            let keys = if r.keys.is_empty() {
                Value::Null
            } else {
                Value::Array(
                    r.keys
                        .iter()
                        .map(|k| Object::new().bytes("k", k).value()["k"].clone())
                        .collect(),
                )
            };
            json::line(
                &json::header_fields(r.header.as_ref())
                    .always("id", Value::from(r.id))
                    .always("ttl", Value::from(r.ttl))
                    .always("granted-ttl", Value::from(r.granted_ttl))
                    .always("keys", keys)
                    .value(),
            )
        }
        Format::Table => return Err(printer.format.unsupported()),
    };
    emit(&text);
    Ok(())
}

fn simple_time_to_live(id: i64, granted: i64, ttl: i64, keys: Option<&Vec<Vec<u8>>>) -> String {
    if granted == 0 && ttl == -1 {
        return format!("lease {id:016x} already expired\n");
    }
    let mut text = format!("lease {id:016x} granted with TTL({granted}s), remaining({ttl}s)");
    if let Some(keys) = keys {
        let names: Vec<String> = keys
            .iter()
            .map(|k| String::from_utf8_lossy(k).into_owned())
            .collect();
        text.push_str(&format!(", attached keys([{}])", names.join(" ")));
    }
    text + "\n"
}

async fn list(global: &GlobalArgs) -> Result<(), CtlError> {
    let printer = super::printer(global)?;
    let ctl = connect(global).await?;
    let mut lease = ctl.client.lease_client();
    let r = unbounded(lease.leases()).await?.0;
    let text = match printer.format {
        Format::Simple => {
            let mut out = format!("found {} leases\n", r.leases.len());
            for l in &r.leases {
                out.push_str(&format!("{:016x}\n", l.id));
            }
            out
        }
        Format::Fields => {
            let mut out = String::new();
            fields::header(&mut out, r.header.as_ref());
            for l in &r.leases {
                out.push_str(&format!("\"ID\" : {}\n", l.id));
            }
            out
        }
        Format::Json => {
            let leases = r
                .leases
                .iter()
                .map(|l| Object::new().always("id", Value::from(l.id)).value())
                .collect();
            json::line(
                &json::header_fields(r.header.as_ref())
                    .always("leases", Value::Array(leases))
                    .value(),
            )
        }
        Format::Table => return Err(printer.format.unsupported()),
    };
    emit(&text);
    Ok(())
}

fn keep_alive_text(
    printer: Printer,
    header: Option<&PbResponseHeader>,
    id: i64,
    ttl: i64,
) -> Result<String, CtlError> {
    Ok(match printer.format {
        Format::Simple => format!("lease {id:016x} keepalived with TTL({ttl})\n"),
        Format::Fields => {
            let mut out = String::new();
            fields::header(&mut out, header);
            out + &format!("\"ID\" : {id}\n\"TTL\" : {ttl}\n")
        }
        Format::Json => json::line(
            &json::header_fields(header)
                .always("ID", Value::from(id))
                .always("TTL", Value::from(ttl))
                .value(),
        ),
        Format::Table => return Err(printer.format.unsupported()),
    })
}

async fn keep_alive(global: &GlobalArgs, args: &KeepAliveArgs) -> Result<(), CtlError> {
    let id = lease_id(one_arg(
        &args.args,
        "lease keep-alive command needs lease ID as argument",
    )?)?;
    let printer = super::printer(global)?;
    let ctl = connect(global).await?;
    if args.once {
        return keep_alive_once(&ctl, printer, id).await;
    }
    let mut lease = ctl.client.lease_client();
    // etcd-client reads the first answer itself and reports a lease the
    // server does not have as its own error; clientv3 then just closes
    // the channel, and etcdctl says the lease expired.
    let (mut keeper, mut stream) = match lease.keep_alive(id).await {
        Ok(pair) => pair,
        Err(etcd_client::Error::LeaseKeepAliveError(_)) => return expired(printer, id),
        Err(e) => return Err(CtlError::new(EXIT_BAD_CONNECTION, client_message(&e))),
    };
    loop {
        unbounded(keeper.keep_alive()).await?;
        let Ok(Some(r)) = stream.message().await else {
            break;
        };
        let r = r.0;
        if r.ttl <= 0 {
            break;
        }
        emit(&keep_alive_text(printer, r.header.as_ref(), r.id, r.ttl)?);
        let wait_ms = u64::try_from(r.ttl).unwrap_or(1).saturating_mul(1000) / 3;
        tokio::time::sleep(std::time::Duration::from_millis(wait_ms.max(500))).await;
    }
    expired(printer, id)
}

fn expired(printer: Printer, id: i64) -> Result<(), CtlError> {
    if printer.format == Format::Simple {
        emit(&format!("lease {id:016x} expired or revoked.\n"));
    }
    Ok(())
}

async fn keep_alive_once(ctl: &Ctl, printer: Printer, id: i64) -> Result<(), CtlError> {
    let not_found = || CtlError::new(EXIT_BAD_CONNECTION, "etcdserver: requested lease not found");
    let mut lease = ctl.client.lease_client();
    let (mut keeper, mut stream) = match lease.keep_alive(id).await {
        Ok(pair) => pair,
        Err(etcd_client::Error::LeaseKeepAliveError(_)) => return Err(not_found()),
        Err(e) => return Err(CtlError::new(EXIT_BAD_CONNECTION, client_message(&e))),
    };
    // etcd-client kept the first answer to itself: ask once more to have
    // one to print (the lease is renewed twice, to the same TTL).
    unbounded(keeper.keep_alive()).await?;
    // etcd-client reports a lease the server no longer has as its own
    // error; etcdctl names etcd's.
    let response = stream.message().await.ok().flatten();
    let Some(r) = response.map(|r| r.0).filter(|r| r.ttl > 0) else {
        return Err(not_found());
    };
    emit(&keep_alive_text(printer, r.header.as_ref(), r.id, r.ttl)?);
    Ok(())
}
