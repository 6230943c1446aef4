//! The run's event log: what the nemesis did and what the cluster was
//! seen to do (faults, heals, leader changes, phase changes), with the
//! simulated time of each, printed when a run fails.

use std::fmt;

/// One entry: when (simulated milliseconds since the run started) and what.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LogEntry {
    /// Simulated milliseconds since the run started.
    pub at_ms: u64,
    /// What happened.
    pub text: String,
}

/// A bounded event log: past `entries_max` entries it counts what it drops.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct EventLog {
    entries: Vec<LogEntry>,
    entries_max: usize,
    dropped: u64,
}

impl EventLog {
    /// An empty log that keeps at most `entries_max` entries.
    pub fn new(entries_max: usize) -> EventLog {
        EventLog {
            entries: Vec::new(),
            entries_max,
            dropped: 0,
        }
    }

    /// Appends `text` at `at_ms` (or counts it as dropped when full).
    pub fn push(&mut self, at_ms: u64, text: impl Into<String>) {
        if self.entries.len() < self.entries_max {
            self.entries.push(LogEntry {
                at_ms,
                text: text.into(),
            });
        } else {
            self.dropped += 1;
        }
    }

    /// The entries kept, oldest first.
    pub fn entries(&self) -> &[LogEntry] {
        &self.entries
    }
}

impl fmt::Display for EventLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for entry in &self.entries {
            writeln!(f, "  {:>9.3}s  {}", entry.at_ms as f64 / 1000.0, entry.text)?;
        }
        if self.dropped > 0 {
            writeln!(f, "  ({} later entries dropped)", self.dropped)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_is_bounded_and_prints_seconds() {
        let mut log = EventLog::new(1);
        log.push(1500, "partition");
        log.push(2000, "heal");
        assert_eq!(log.entries().len(), 1);
        let text = log.to_string();
        assert!(text.contains("1.500s  partition"), "{text}");
        assert!(text.contains("1 later entries dropped"), "{text}");
    }
}
