//! `--auto-compaction-mode` and `--auto-compaction-retention`, parsed as etcd
//! v3.4/v3.5 parses them (etcd `embed/config.go`, `etcdserver/api/v3compactor`).

use std::time::Duration;

use super::ConfigError;

/// How history is compacted automatically.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AutoCompaction {
    /// Retention "0": no automatic compaction.
    Disabled,
    /// Keep roughly this much wall-clock history (etcd "periodic" mode).
    Periodic {
        /// Length of history kept.
        retention: Duration,
    },
    /// Keep this many revisions of history (etcd "revision" mode).
    Revision {
        /// Number of revisions kept.
        retention_revisions: u64,
    },
}

/// The `--auto-compaction-mode` values etcd accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AutoCompactionMode {
    /// Retention is a duration (`"1h"`, `"30m"`) or a whole number of hours.
    Periodic,
    /// Retention is a number of revisions.
    Revision,
}

/// Longest duration string accepted (guards the parser's loop).
const DURATION_TEXT_BYTES_MAX: usize = 64;

/// Interprets the retention text for a mode.
///
/// Periodic: a whole number means hours (etcd's rule), otherwise a Go duration
/// such as `"1h30m"`, `"90s"`, `"1.5h"`. Revision: a whole number. `"0"` (or a
/// zero duration) disables compaction. Errors: [`ConfigError::BadRetention`]
/// with etcd's wording `invalid auto-compaction-retention "<text>"`.
pub fn parse_auto_compaction(
    mode: AutoCompactionMode,
    text: &str,
) -> Result<AutoCompaction, ConfigError> {
    let bad = |why: &str| ConfigError::BadRetention {
        text: text.to_owned(),
        reason: why.to_owned(),
    };
    let text = text.trim();
    let whole: Option<u64> = text.parse().ok();
    let parsed = match (mode, whole) {
        (AutoCompactionMode::Revision, Some(n)) => AutoCompaction::Revision {
            retention_revisions: n,
        },
        (AutoCompactionMode::Revision, None) => {
            return Err(bad("revision mode needs a whole number"));
        }
        (AutoCompactionMode::Periodic, Some(hours)) => {
            let secs = hours.checked_mul(3600).ok_or_else(|| bad("too long"))?;
            AutoCompaction::Periodic {
                retention: Duration::from_secs(secs),
            }
        }
        (AutoCompactionMode::Periodic, None) => AutoCompaction::Periodic {
            retention: parse_go_duration(text).map_err(|e| bad(&e))?,
        },
    };
    Ok(match parsed {
        AutoCompaction::Revision {
            retention_revisions: 0,
        } => AutoCompaction::Disabled,
        AutoCompaction::Periodic { retention } if retention.is_zero() => AutoCompaction::Disabled,
        other => other,
    })
}

/// Parses a non-negative Go `time.ParseDuration` string: one or more
/// `<decimal><unit>` terms, unit one of ns, us, µs, ms, s, m, h.
pub(super) fn parse_go_duration(text: &str) -> Result<Duration, String> {
    if text.is_empty() || text.len() > DURATION_TEXT_BYTES_MAX {
        return Err("expected a duration such as 1h or 30m".to_owned());
    }
    let mut rest = text;
    let mut total_nanos: f64 = 0.0;
    // Each iteration consumes at least one byte, so the loop is bounded by the text length.
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let unit_len = rest[number_len..]
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len() - number_len);
        let number: f64 = rest[..number_len]
            .parse()
            .map_err(|_| format!("bad number in {text:?}"))?;
        let unit_nanos = match &rest[number_len..number_len + unit_len] {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            unit => return Err(format!("unknown unit {unit:?} in duration {text:?}")),
        };
        total_nanos += number * unit_nanos;
        rest = &rest[number_len + unit_len..];
    }
    if !total_nanos.is_finite() || total_nanos > u64::MAX as f64 {
        return Err(format!("duration {text:?} is too long"));
    }
    Ok(Duration::from_nanos(total_nanos as u64))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    fn periodic(text: &str) -> AutoCompaction {
        parse_auto_compaction(AutoCompactionMode::Periodic, text).unwrap()
    }

    #[test]
    fn periodic_whole_numbers_are_hours() {
        assert_eq!(
            periodic("1"),
            AutoCompaction::Periodic {
                retention: Duration::from_secs(3600)
            }
        );
        assert_eq!(periodic("0"), AutoCompaction::Disabled);
    }

    #[test]
    fn periodic_accepts_go_durations() {
        assert_eq!(
            periodic("30m"),
            AutoCompaction::Periodic {
                retention: Duration::from_secs(1800)
            }
        );
        assert_eq!(
            periodic("1h30m"),
            AutoCompaction::Periodic {
                retention: Duration::from_secs(5400)
            }
        );
        assert_eq!(
            periodic("1.5h"),
            AutoCompaction::Periodic {
                retention: Duration::from_secs(5400)
            }
        );
        assert_eq!(
            periodic("250ms"),
            AutoCompaction::Periodic {
                retention: Duration::from_millis(250)
            }
        );
        assert_eq!(periodic("0s"), AutoCompaction::Disabled);
    }

    #[test]
    fn revision_mode_takes_counts() {
        let got = parse_auto_compaction(AutoCompactionMode::Revision, "1000").unwrap();
        assert_eq!(
            got,
            AutoCompaction::Revision {
                retention_revisions: 1000
            }
        );
        assert!(parse_auto_compaction(AutoCompactionMode::Revision, "1h").is_err());
    }

    #[test]
    fn bad_retention_is_rejected_with_etcds_words() {
        for text in ["", "h", "1x", "-1", "1..2h", "1h-", &"9".repeat(80)] {
            let err = parse_auto_compaction(AutoCompactionMode::Periodic, text).unwrap_err();
            assert!(
                err.to_string()
                    .contains("invalid auto-compaction-retention"),
                "{text:?}: {err}"
            );
        }
    }
}
