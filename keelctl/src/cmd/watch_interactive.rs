//! `watch -i`: reads request lines from stdin, as etcdctl 3.4's
//! `watchInteractiveFunc` (etcdctl/ctlv3/command/watch_command.go):
//!
//! - `watch [options] <key or prefix> [range_end] [-- <exec-command>]`
//!   starts a watch whose events print as they come (each watch on a
//!   stream of its own, all open until keelctl ends);
//! - `progress` asks every open watch for a progress notification;
//! - anything else prints `Invalid command ...` on stderr and is skipped.
//!
//! End of input ends keelctl with exit 3 (`Error reading watch request
//! line: EOF`), as etcdctl.

use etcd_client::WatchRequestSender;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::mpsc;

use super::watch::{WatchSpec, follow, watch_options, with_env_keys};
use super::watch_line;
use crate::cli::GlobalArgs;
use crate::client::{Ctl, connect};
use crate::error::CtlError;
use crate::output::{Printer, emit_err};

/// Most watches one session keeps open.
pub const WATCHES_MAX: usize = 1024;

/// Longest request line, in bytes.
pub const LINE_SIZE_BYTES_MAX: usize = 64 * 1024;

/// Runs the interactive session until end of input or a fatal error.
///
/// # Errors
/// End of input (exit 3), a request line etcdctl refuses fatally
/// (exit 128), a failed exec command (exit 1), a failed progress request.
pub async fn run(
    global: &GlobalArgs,
    printer: Printer,
    env_key: &str,
    env_range_end: &str,
) -> Result<(), CtlError> {
    let ctl = connect(global).await?;
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let mut session = Session {
        ctl,
        printer,
        senders: Vec::new(),
        fatal: mpsc::channel(1),
    };
    loop {
        let line = tokio::select! {
            line = lines.next_line() => line,
            Some(error) = session.fatal.1.recv() => return Err(error),
        };
        let line = match line {
            Ok(Some(line)) => line,
            Ok(None) => return Err(read_error("EOF")),
            Err(e) => return Err(read_error(&e.to_string())),
        };
        if line.len() > LINE_SIZE_BYTES_MAX {
            return Err(read_error("line too long"));
        }
        session.handle(&line, env_key, env_range_end).await?;
    }
}

fn read_error(reason: &str) -> CtlError {
    CtlError::invalid_input(format!("Error reading watch request line: {reason}"))
}

struct Session {
    ctl: Ctl,
    printer: Printer,
    /// The request side of every open watch (kept open: closing it ends
    /// the watch on the server).
    senders: Vec<WatchRequestSender>,
    /// Fatal errors of the watch tasks (a failed exec command).
    fatal: (mpsc::Sender<CtlError>, mpsc::Receiver<CtlError>),
}

impl Session {
    async fn handle(
        &mut self,
        line: &str,
        env_key: &str,
        env_range_end: &str,
    ) -> Result<(), CtlError> {
        // A bad double-quoted word ends the session (exit 3), as etcdctl.
        let words = super::argify::argify(line).map_err(CtlError::invalid_input)?;
        match words.first().map(String::as_str) {
            None => emit_err(&format!(
                "Invalid command: {line} (watch and progress supported)\n"
            )),
            Some("watch") => {
                if words.len() < 2 && env_key.is_empty() {
                    emit_err(&format!(
                        "Invalid command {line} (command type or key is not provided)\n"
                    ));
                    return Ok(());
                }
                let request = watch_line::parse(&words[1..], env_key)?;
                self.start(line, request, env_key, env_range_end).await?;
            }
            Some("progress") => {
                for sender in &mut self.senders {
                    self.ctl.call(sender.request_progress()).await?;
                }
            }
            Some(_) => emit_err(&format!("Invalid command {line} (only support watch)\n")),
        }
        Ok(())
    }

    async fn start(
        &mut self,
        line: &str,
        request: watch_line::WatchLine,
        env_key: &str,
        env_range_end: &str,
    ) -> Result<(), CtlError> {
        let keys = with_env_keys(&request.keys, env_key, env_range_end);
        let spec = WatchSpec {
            prefix: request.prefix,
            rev: request.rev,
            prev_kv: request.prev_kv,
        };
        let (key, options) = match watch_options(&keys, &spec) {
            Ok(pair) => pair,
            Err(e) => {
                emit_err(&format!("Invalid command {line} ({})\n", e.message));
                return Ok(());
            }
        };
        if self.senders.len() >= WATCHES_MAX {
            emit_err(&format!(
                "Invalid command {line} (more than {WATCHES_MAX} watches)\n"
            ));
            return Ok(());
        }
        let mut client = self.ctl.client.watch_client();
        let stream = self.ctl.call(client.watch(key, Some(options))).await?;
        let (sender, responses) = stream.split();
        self.senders.push(sender);
        let printer = self.printer;
        let fatal = self.fatal.0.clone();
        tokio::spawn(async move {
            // etcdctl ends the whole session only for a failed command; a
            // watch whose stream ends just stops printing.
            if let Err(error) = follow(responses, printer, &request.exec).await
                && super::watch_exec::is_exec_failure(&error)
            {
                let _ = fatal.try_send(error);
            }
        });
        Ok(())
    }
}
