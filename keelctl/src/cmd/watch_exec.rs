//! `watch ... -- <exec-command>`: runs the command once per event, after
//! the response is printed, with `ETCD_WATCH_REVISION`,
//! `ETCD_WATCH_EVENT_TYPE`, `ETCD_WATCH_KEY` and `ETCD_WATCH_VALUE` set as
//! etcdctl 3.4's `printWatchCh` sets them (the revision in decimal, the
//! others as Go's `%q`: `"PUT"`, `"key"`); its stdout and stderr are
//! keelctl's. A failed command prints `command ["cmd" "arg"] error
//! (exit status N)` on stderr and ends keelctl with exit 1, as etcdctl.

use etcd_client::proto::{PbEvent, PbWatchResponse};

use crate::error::{CtlError, EXIT_ERROR};
use crate::output::{emit_err, go};

/// Whether keelctl's own command line has a `--` after the `watch`
/// command word (clap drops a trailing `--` that has no command after it;
/// etcdctl refuses it).
pub fn separator_in_argv() -> bool {
    std::env::args()
        .skip_while(|a| a != "watch")
        .skip(1)
        .any(|a| a == "--")
}

/// The environment one event's command runs with.
pub fn event_env(revision: i64, event: &PbEvent) -> Vec<(&'static str, String)> {
    let event_type = match event.r#type {
        1 => "DELETE",
        _ => "PUT",
    };
    let (key, value) = event
        .kv
        .as_ref()
        .map_or((&[][..], &[][..]), |kv| (&kv.key[..], &kv.value[..]));
    vec![
        ("ETCD_WATCH_REVISION", revision.to_string()),
        ("ETCD_WATCH_EVENT_TYPE", go::quote(event_type.as_bytes())),
        ("ETCD_WATCH_KEY", go::quote(key)),
        ("ETCD_WATCH_VALUE", go::quote(value)),
    ]
}

/// Runs `exec` once for each event of `response`, waiting for each.
///
/// # Errors
/// A command that cannot start or exits unsuccessfully: its error is
/// printed as etcdctl prints it, and the returned error (exit 1) carries
/// no further message.
pub async fn run_on_events(exec: &[String], response: &PbWatchResponse) -> Result<(), CtlError> {
    let Some((program, args)) = exec.split_first() else {
        return Ok(());
    };
    let revision = response.header.as_ref().map_or(0, |h| h.revision);
    for event in &response.events {
        let status = tokio::process::Command::new(program)
            .args(args)
            .envs(event_env(revision, event))
            .status()
            .await;
        let failure = match status {
            Ok(status) if status.success() => continue,
            Ok(status) => exit_text(status),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => format!(
                "exec: {}: executable file not found in $PATH",
                go::quote(program.as_bytes())
            ),
            Err(e) => format!("fork/exec {program}: {e}"),
        };
        emit_err(&format!(
            "command {} error ({failure})\n",
            quoted_list(exec)
        ));
        return Err(CtlError::new(EXIT_ERROR, ""));
    }
    Ok(())
}

/// Whether `error` is a failed exec command (already reported on stderr).
pub fn is_exec_failure(error: &CtlError) -> bool {
    error.code == EXIT_ERROR && error.message.is_empty()
}

/// Go's `%q` of a `[]string`: `["a" "b"]`.
fn quoted_list(words: &[String]) -> String {
    let quoted: Vec<String> = words.iter().map(|w| go::quote(w.as_bytes())).collect();
    format!("[{}]", quoted.join(" "))
}

/// Go's `*exec.ExitError` text: `exit status N` or `signal: <name>`.
fn exit_text(status: std::process::ExitStatus) -> String {
    if let Some(code) = status.code() {
        return format!("exit status {code}");
    }
    use std::os::unix::process::ExitStatusExt;
    match status.signal() {
        Some(9) => "signal: killed".to_owned(),
        Some(15) => "signal: terminated".to_owned(),
        Some(signal) => format!("signal: {signal}"),
        None => "exit status unknown".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use etcd_client::proto::PbKeyValue;

    #[test]
    fn env_quotes_as_go_does() {
        let event = PbEvent {
            r#type: 0,
            kv: Some(PbKeyValue {
                key: b"k 1".to_vec(),
                value: b"v\n".to_vec(),
                ..PbKeyValue::default()
            }),
            prev_kv: None,
        };
        assert_eq!(
            event_env(7, &event),
            vec![
                ("ETCD_WATCH_REVISION", "7".to_owned()),
                ("ETCD_WATCH_EVENT_TYPE", "\"PUT\"".to_owned()),
                ("ETCD_WATCH_KEY", "\"k 1\"".to_owned()),
                ("ETCD_WATCH_VALUE", "\"v\\n\"".to_owned()),
            ]
        );
        assert_eq!(
            quoted_list(&["sh".to_owned(), "-c".to_owned()]),
            "[\"sh\" \"-c\"]"
        );
    }
}
