//! `watch [--prefix] [--rev N] [--prev-kv] <key> [range_end]`
//! (etcdctl/ctlv3/command/watch_command.go): prints events as they come
//! until the server cancels the watch, then exits 5 as etcdctl does.

use clap::Args;
use etcd_client::WatchOptions;
use etcd_client::proto::PbWatchResponse;
use serde_json::Value;

use crate::cli::GlobalArgs;
use crate::client::connect;
use crate::error::{CtlError, EXIT_INTERRUPTED};
use crate::output::json::{self, Object};
use crate::output::{Format, Printer, emit, emit_err, fields, simple};

/// `watch [options] [key or prefix] [range_end]`.
#[derive(Debug, Clone, Args)]
pub struct WatchArgs {
    /// Watch on a prefix if prefix is set
    #[arg(long)]
    pub prefix: bool,
    /// Revision to start watching
    #[arg(long, default_value_t = 0)]
    pub rev: i64,
    /// get the previous key-value pair before the event happens
    #[arg(long = "prev-kv")]
    pub prev_kv: bool,
    /// [key or prefix] [range_end] (also `ETCDCTL_WATCH_KEY`,
    /// `ETCDCTL_WATCH_RANGE_END`)
    pub args: Vec<String>,
}

impl WatchArgs {
    /// Key and options (etcdctl's `getWatchChan`).
    ///
    /// # Errors
    /// etcdctl's argument errors (exit 128).
    pub fn op(&self) -> Result<(Vec<u8>, WatchOptions), CtlError> {
        let env_key = std::env::var("ETCDCTL_WATCH_KEY").unwrap_or_default();
        let env_range = std::env::var("ETCDCTL_WATCH_RANGE_END").unwrap_or_default();
        if env_key.is_empty() && !env_range.is_empty() {
            return Err(CtlError::bad_args(format!(
                "ETCDCTL_WATCH_KEY is empty but got ETCDCTL_WATCH_RANGE_END={}",
                crate::output::go::quote(env_range.as_bytes())
            )));
        }
        if !env_key.is_empty() && !self.args.is_empty() {
            return Err(CtlError::bad_args(
                "bad number of arguments (found conflicting environment key)",
            ));
        }
        let args: Vec<String> = if env_key.is_empty() {
            self.args.clone()
        } else {
            [env_key, env_range]
                .into_iter()
                .filter(|s| !s.is_empty())
                .collect()
        };
        let Some(key) = args.first() else {
            return Err(CtlError::bad_args("bad number of arguments"));
        };
        let mut options = WatchOptions::new().with_start_revision(self.rev);
        if let Some(end) = args.get(1) {
            if self.prefix {
                return Err(CtlError::bad_args(
                    "`range_end` and `--prefix` are mutually exclusive",
                ));
            }
            options = options.with_range(end.as_bytes().to_vec());
        }
        if self.prefix {
            options = options.with_prefix();
        }
        if self.prev_kv {
            options = options.with_prev_key();
        }
        Ok((key.as_bytes().to_vec(), options))
    }
}

/// Runs `watch` until the server cancels it (exit 5) or the stream ends.
///
/// # Errors
/// Arguments (exit 128), connection errors, cancellation by the server.
pub async fn run(global: &GlobalArgs, args: WatchArgs) -> Result<(), CtlError> {
    let (key, options) = args.op()?;
    let printer = super::printer(global)?;
    let ctl = connect(global).await?;
    let mut client = ctl.client.watch_client();
    let mut stream = ctl.call(client.watch(key, Some(options))).await?;
    loop {
        let message = stream.message().await.map_err(CtlError::from)?;
        let Some(response) = message else { break };
        let response = response.0;
        if response.created && !response.canceled {
            continue;
        }
        print(printer, &response)?;
        if response.canceled {
            break;
        }
    }
    Err(CtlError::new(
        EXIT_INTERRUPTED,
        "watch is canceled by the server",
    ))
}

/// Prints one watch response as etcdctl's `printWatchCh` does.
fn print(printer: Printer, r: &PbWatchResponse) -> Result<(), CtlError> {
    if r.canceled {
        let reason = if r.compact_revision != 0 {
            "etcdserver: mvcc: required revision has been compacted".to_owned()
        } else {
            r.cancel_reason.clone()
        };
        emit_err(&format!("watch was canceled ({reason})\n"));
    }
    let revision = r.header.as_ref().map_or(0, |h| h.revision);
    let mut out = String::new();
    if r.events.is_empty() && !r.canceled && !r.created && r.compact_revision == 0 && revision != 0
    {
        out.push_str(&format!("progress notify: {revision}\n"));
    }
    match printer.format {
        Format::Simple => simple::events(&mut out, printer.hex, &r.events),
        Format::Fields => fields::watch(&mut out, r),
        Format::Json => out.push_str(&json::line(&watch_json(r))),
        Format::Table => return Err(printer.format.unsupported()),
    }
    emit(&out);
    Ok(())
}

/// clientv3's `WatchResponse` as `encoding/json` prints it: Go field
/// names, no `omitempty` on its own fields.
fn watch_json(r: &PbWatchResponse) -> Value {
    let events: Vec<Value> = r
        .events
        .iter()
        .map(|e| {
            Object::new()
                .int("type", i64::from(e.r#type))
                .object("kv", e.kv.as_ref().map(json::kv))
                .object("prev_kv", e.prev_kv.as_ref().map(json::kv))
                .value()
        })
        .collect();
    let events = if events.is_empty() {
        Value::Null
    } else {
        Value::Array(events)
    };
    Object::new()
        .always("Header", json::header_fields(r.header.as_ref()).value())
        .always("Events", events)
        .always("CompactRevision", Value::from(r.compact_revision))
        .always("Canceled", Value::Bool(r.canceled))
        .always("Created", Value::Bool(r.created))
        .value()
}
