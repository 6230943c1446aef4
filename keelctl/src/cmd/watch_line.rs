//! One `watch [options] <key or prefix> [range_end] [-- <exec-command>]`
//! request line of `watch -i`, parsed as etcdctl 3.4's
//! `parseWatchArgs(..., interactive=true)` does with a fresh pflag set
//! (etcdctl/ctlv3/command/watch_command.go): flags anywhere before `--`
//! (`--prefix`, `--prev-kv`, `--rev N`, `--rev=N`, `-i`), the words after
//! `--` as the command to run on each event.

use crate::error::CtlError;

/// A parsed request line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WatchLine {
    /// `--prefix`.
    pub prefix: bool,
    /// `--rev`: the revision to start at (0: now).
    pub rev: i64,
    /// `--prev-kv`.
    pub prev_kv: bool,
    /// Key and range end (or more words, which etcdctl ignores).
    pub keys: Vec<String>,
    /// The command after `--` (empty: none).
    pub exec: Vec<String>,
}

/// `bad number of arguments (found separator --, but no commands)`.
pub const SEPARATOR_WITHOUT_COMMAND: &str =
    "bad number of arguments (found separator --, but no commands)";

/// Parses the words after `watch` of one line; `env_key` is
/// `ETCDCTL_WATCH_KEY` (a key from the environment forbids one on the
/// line).
///
/// # Errors
/// etcdctl's fatal errors (it exits 128 on them): `--` without a
/// command, an unknown flag, a bad `--rev`, no key, a key conflicting
/// with the environment's.
pub fn parse(words: &[String], env_key: &str) -> Result<WatchLine, CtlError> {
    let separator = words.iter().position(|w| w == "--");
    if separator == Some(words.len().saturating_sub(1)) && !words.is_empty() {
        return Err(CtlError::bad_args(SEPARATOR_WITHOUT_COMMAND));
    }
    let (before, exec) = match separator {
        Some(at) => (&words[..at], words[at + 1..].to_vec()),
        None => (words, Vec::new()),
    };
    let mut line = WatchLine {
        exec,
        ..WatchLine::default()
    };
    let mut rest = before.iter();
    while let Some(word) = rest.next() {
        if let Some(flag) = word.strip_prefix("--") {
            flag_long(&mut line, flag, &mut rest)?;
        } else if let Some(short) = word.strip_prefix('-').filter(|s| !s.is_empty()) {
            flag_short(short)?;
        } else {
            line.keys.push(word.clone());
        }
    }
    if separator.is_none() && env_key.is_empty() && line.keys.is_empty() {
        return Err(CtlError::bad_args("bad number of arguments"));
    }
    if separator.is_none() && !env_key.is_empty() && !line.keys.is_empty() {
        return Err(CtlError::bad_args(
            "bad number of arguments (found conflicting environment key)",
        ));
    }
    Ok(line)
}

fn flag_long<'a>(
    line: &mut WatchLine,
    flag: &str,
    rest: &mut impl Iterator<Item = &'a String>,
) -> Result<(), CtlError> {
    let (name, value) = match flag.split_once('=') {
        Some((name, value)) => (name, Some(value.to_owned())),
        None => (flag, None),
    };
    match name {
        "prefix" => line.prefix = boolean(name, value.as_deref())?,
        "prev-kv" => line.prev_kv = boolean(name, value.as_deref())?,
        "interactive" => {
            boolean(name, value.as_deref())?;
        }
        "rev" => {
            let value = match value {
                Some(value) => value,
                None => rest.next().cloned().ok_or_else(|| {
                    CtlError::bad_args("flag needs an argument: --rev".to_owned())
                })?,
            };
            line.rev = value.parse().map_err(|_| {
                CtlError::bad_args(format!(
                    "invalid argument \"{value}\" for \"--rev\" flag: strconv.ParseInt: parsing \"{value}\": invalid syntax"
                ))
            })?;
        }
        _ => return Err(CtlError::bad_args(format!("unknown flag: --{name}"))),
    }
    Ok(())
}

/// pflag's `strconv.ParseBool` values of a boolean flag.
fn boolean(name: &str, value: Option<&str>) -> Result<bool, CtlError> {
    match value {
        None | Some("1" | "t" | "T" | "true" | "TRUE" | "True") => Ok(true),
        Some("0" | "f" | "F" | "false" | "FALSE" | "False") => Ok(false),
        Some(other) => Err(CtlError::bad_args(format!(
            "invalid argument \"{other}\" for \"--{name}\" flag: strconv.ParseBool: parsing \"{other}\": invalid syntax"
        ))),
    }
}

/// `-i` is the only shorthand of `watch`.
fn flag_short(short: &str) -> Result<(), CtlError> {
    match short.chars().find(|&c| c != 'i') {
        None => Ok(()),
        Some(c) => Err(CtlError::bad_args(format!(
            "unknown shorthand flag: '{c}' in -{short}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(line: &str) -> Vec<String> {
        line.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn flags_anywhere_and_exec_after_separator() {
        let line = parse(&words("a --prefix --rev 3 --prev-kv -- echo hi"), "");
        assert_eq!(
            line,
            Ok(WatchLine {
                prefix: true,
                rev: 3,
                prev_kv: true,
                keys: vec!["a".to_owned()],
                exec: words("echo hi"),
            })
        );
        let line = parse(&words("--rev=2 a b"), "");
        assert_eq!(line.map(|l| (l.rev, l.keys)), Ok((2, words("a b"))));
    }

    #[test]
    fn etcdctls_fatal_errors() {
        let cases = [
            ("a --", SEPARATOR_WITHOUT_COMMAND),
            ("a --bogus", "unknown flag: --bogus"),
            ("a -x", "unknown shorthand flag: 'x' in -x"),
            ("--prefix", "bad number of arguments"),
            ("a --rev", "flag needs an argument: --rev"),
        ];
        for (line, message) in cases {
            assert_eq!(
                parse(&words(line), "").map_err(|e| e.message),
                Err(message.to_owned()),
                "{line}"
            );
        }
        assert!(parse(&words("a"), "env").is_err());
        assert_eq!(parse(&words("--prefix"), "env").map(|l| l.prefix), Ok(true));
    }
}
