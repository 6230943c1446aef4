//! `watch [--prefix] [--rev N] [--prev-kv] <key> [range_end] [-- <exec-command>]`
//! and `watch -i` (etcdctl/ctlv3/command/watch_command.go): prints events
//! as they come until the server cancels the watch, then exits 5 as
//! etcdctl does. With `-- <exec-command>` the command runs once per event
//! ([`super::watch_exec`]); `-i` reads request lines from stdin
//! ([`super::watch_interactive`]).

use clap::Args;
use etcd_client::proto::PbWatchResponse;
use etcd_client::{WatchOptions, WatchResponseStream};
use serde_json::Value;

use crate::cli::GlobalArgs;
use crate::client::connect;
use crate::error::{CtlError, EXIT_INTERRUPTED};
use crate::output::json::{self, Object};
use crate::output::{Format, Printer, emit, emit_err, fields, simple};

/// `watch [options] [key or prefix] [range_end] [--] [exec-command arg1 arg2 ...]`.
#[derive(Debug, Clone, Args)]
pub struct WatchArgs {
    /// Interactive mode
    #[arg(short = 'i', long)]
    pub interactive: bool,
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
    /// The command to run on each event, after `--`
    #[arg(last = true)]
    pub exec: Vec<String>,
}

/// What one watch asks the server for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WatchSpec {
    /// `--prefix`.
    pub prefix: bool,
    /// `--rev`.
    pub rev: i64,
    /// `--prev-kv`.
    pub prev_kv: bool,
}

/// `ETCDCTL_WATCH_KEY` and `ETCDCTL_WATCH_RANGE_END`.
///
/// # Errors
/// A range end without a key (exit 128), as etcdctl.
pub fn env_keys() -> Result<(String, String), CtlError> {
    let key = std::env::var("ETCDCTL_WATCH_KEY").unwrap_or_default();
    let range_end = std::env::var("ETCDCTL_WATCH_RANGE_END").unwrap_or_default();
    if key.is_empty() && !range_end.is_empty() {
        return Err(CtlError::bad_args(format!(
            "ETCDCTL_WATCH_KEY is empty but got ETCDCTL_WATCH_RANGE_END={}",
            crate::output::go::quote(range_end.as_bytes())
        )));
    }
    Ok((key, range_end))
}

/// The environment's key and range end (when set) before `keys`.
pub fn with_env_keys(keys: &[String], env_key: &str, env_range_end: &str) -> Vec<String> {
    if env_key.is_empty() {
        return keys.to_vec();
    }
    let mut all = vec![env_key.to_owned()];
    if !env_range_end.is_empty() {
        all.push(env_range_end.to_owned());
    }
    all.extend_from_slice(keys);
    all
}

/// Key and options (etcdctl's `getWatchChan`): the first word is the key,
/// a second one the range end; etcdctl ignores any further words.
///
/// # Errors
/// No key, or a range end with `--prefix` (exit 128).
pub fn watch_options(
    keys: &[String],
    spec: &WatchSpec,
) -> Result<(Vec<u8>, WatchOptions), CtlError> {
    let Some(key) = keys.first() else {
        return Err(CtlError::bad_args("bad number of arguments"));
    };
    let mut options = WatchOptions::new().with_start_revision(spec.rev);
    if keys.len() == 2 {
        if spec.prefix {
            return Err(CtlError::bad_args(
                "`range_end` and `--prefix` are mutually exclusive",
            ));
        }
        options = options.with_range(keys[1].as_bytes().to_vec());
    }
    if spec.prefix {
        options = options.with_prefix();
    }
    if spec.prev_kv {
        options = options.with_prev_key();
    }
    Ok((key.as_bytes().to_vec(), options))
}

/// Runs `watch` until the server cancels it (exit 5) or the stream ends.
///
/// # Errors
/// Arguments (exit 128), connection errors, cancellation by the server,
/// a failed exec command (exit 1).
pub async fn run(global: &GlobalArgs, args: WatchArgs) -> Result<(), CtlError> {
    let (env_key, env_range_end) = env_keys()?;
    let printer = super::printer(global)?;
    if args.interactive {
        return super::watch_interactive::run(global, printer, &env_key, &env_range_end).await;
    }
    if args.exec.is_empty() && super::watch_exec::separator_in_argv() {
        return Err(CtlError::bad_args(
            super::watch_line::SEPARATOR_WITHOUT_COMMAND,
        ));
    }
    if !env_key.is_empty() && !args.args.is_empty() {
        return Err(CtlError::bad_args(
            "bad number of arguments (found conflicting environment key)",
        ));
    }
    let keys = with_env_keys(&args.args, &env_key, &env_range_end);
    let spec = WatchSpec {
        prefix: args.prefix,
        rev: args.rev,
        prev_kv: args.prev_kv,
    };
    let (key, options) = watch_options(&keys, &spec)?;
    let ctl = connect(global).await?;
    let mut client = ctl.client.watch_client();
    let stream = ctl.call(client.watch(key, Some(options))).await?;
    let (_requests, responses) = stream.split();
    follow(responses, printer, &args.exec).await?;
    Err(CtlError::new(
        EXIT_INTERRUPTED,
        "watch is canceled by the server",
    ))
}

/// Prints every response of `responses` (and runs `exec` on each event)
/// until the server cancels the watch or ends the stream. The caller
/// keeps the request side of the stream open meanwhile.
///
/// # Errors
/// A broken stream, or a failed exec command (exit 1, message printed).
pub async fn follow(
    mut responses: WatchResponseStream,
    printer: Printer,
    exec: &[String],
) -> Result<(), CtlError> {
    loop {
        let message = responses.message().await.map_err(CtlError::from)?;
        let Some(response) = message else {
            return Ok(());
        };
        let response = response.0;
        if response.created && !response.canceled {
            continue;
        }
        print(printer, &response)?;
        if !exec.is_empty() {
            super::watch_exec::run_on_events(exec, &response).await?;
        }
        if response.canceled {
            return Ok(());
        }
    }
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
