//! The benchmark report: latencies in an HDR histogram (nanoseconds, 3
//! significant digits), summarised and printed the way etcd's benchmark
//! prints it (etcd v3.4.27 `pkg/report/report.go`: Summary, Response time
//! histogram, Latency distribution, Error distribution), or as JSON.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

/// Percentiles etcd's report lists (`pctls` in `report.go`).
pub const PERCENTILES: [f64; 8] = [10.0, 25.0, 50.0, 75.0, 90.0, 95.0, 99.0, 99.9];
/// Buckets of the text histogram (etcd's `bc`, plus the slowest bucket).
const HISTOGRAM_BUCKETS: usize = 10;
/// Width of the longest histogram bar, in characters (as etcd's).
const BAR_WIDTH_MAX: u64 = 40;
/// Longest latency the histogram tells apart (1 hour, in ns); longer ones
/// are recorded as this.
const LATENCY_MAX_NS: u64 = 3_600_000_000_000;
/// Error messages kept verbatim; later distinct messages are counted as
/// "other errors" (bounds memory when every error differs).
const ERROR_KINDS_MAX: usize = 64;

/// Latencies and errors of one kind of request, as they arrive.
#[derive(Clone, Debug)]
pub struct Recorder {
    latency_ns: Histogram<u64>,
    errors: BTreeMap<String, u64>,
}

impl Default for Recorder {
    fn default() -> Self {
        Recorder::new()
    }
}

impl Recorder {
    /// An empty recorder.
    pub fn new() -> Recorder {
        Recorder {
            latency_ns: Histogram::new_with_bounds(1, LATENCY_MAX_NS, 3)
                .expect("1 ns to 1 hour at 3 significant digits is valid"),
            errors: BTreeMap::new(),
        }
    }

    /// Records one successful request's latency.
    pub fn record(&mut self, latency: Duration) {
        let ns = u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX).max(1);
        self.latency_ns.saturating_record(ns);
    }

    /// Records one failed request by its error message.
    pub fn record_error(&mut self, message: &str) {
        if self.errors.len() < ERROR_KINDS_MAX || self.errors.contains_key(message) {
            *self.errors.entry(message.to_string()).or_default() += 1;
        } else {
            *self.errors.entry("other errors".to_string()).or_default() += 1;
        }
    }

    /// Adds `other`'s latencies and errors to these.
    pub fn merge(&mut self, other: &Recorder) {
        // Both histograms have the same bounds, so adding cannot fail.
        let _ = self.latency_ns.add(&other.latency_ns);
        for (message, count) in &other.errors {
            *self.errors.entry(message.clone()).or_default() += count;
        }
    }

    /// Failed requests recorded.
    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }

    /// Successful requests recorded.
    pub fn count(&self) -> u64 {
        self.latency_ns.len()
    }

    /// The summary of what was recorded over `total` (the run's wall time).
    pub fn summary(&self, total: Duration) -> Summary {
        let h = &self.latency_ns;
        let secs = |ns: f64| ns / 1e9;
        let count = h.len();
        let total_secs = total.as_secs_f64();
        Summary {
            total_secs,
            count,
            slowest_secs: secs(h.max() as f64),
            fastest_secs: secs(h.min() as f64),
            average_secs: secs(h.mean()),
            stddev_secs: secs(h.stdev()),
            requests_per_sec: if total_secs > 0.0 {
                count as f64 / total_secs
            } else {
                0.0
            },
            percentiles: PERCENTILES
                .iter()
                .map(|&p| Percentile {
                    percent: p,
                    secs: secs(h.value_at_percentile(p) as f64),
                })
                .collect(),
            histogram: buckets(h),
            errors: self.errors.clone(),
        }
    }
}

/// One latency percentile.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Percentile {
    /// The percentile, 0..100.
    pub percent: f64,
    /// Latency at that percentile, seconds.
    pub secs: f64,
}

/// One bar of the response time histogram.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Bucket {
    /// Upper bound of the bucket, seconds (inclusive).
    pub upper_secs: f64,
    /// Requests with a latency in the bucket.
    pub count: u64,
}

/// What one run measured, in seconds; printed by [`Summary::to_text`] or
/// serialized for `--json`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Summary {
    /// Wall time of the run, seconds.
    pub total_secs: f64,
    /// Successful requests.
    pub count: u64,
    /// Slowest request, seconds.
    pub slowest_secs: f64,
    /// Fastest request, seconds.
    pub fastest_secs: f64,
    /// Mean latency, seconds.
    pub average_secs: f64,
    /// Standard deviation of the latency, seconds.
    pub stddev_secs: f64,
    /// Successful requests per second of wall time.
    pub requests_per_sec: f64,
    /// Latency at [`PERCENTILES`].
    pub percentiles: Vec<Percentile>,
    /// Response time histogram: ten equal buckets from fastest to slowest
    /// and one at the slowest (etcd's layout).
    pub histogram: Vec<Bucket>,
    /// Failed requests by error message.
    pub errors: BTreeMap<String, u64>,
}

impl Summary {
    /// Latency at `percent` (one of [`PERCENTILES`]), seconds.
    pub fn percentile_secs(&self, percent: f64) -> Option<f64> {
        self.percentiles
            .iter()
            .find(|p| p.percent == percent)
            .map(|p| p.secs)
    }

    /// etcd's text report: `%4.4f` numbers, or Rust's shortest exact
    /// float form when `precise` (etcd's `%g`).
    pub fn to_text(&self, precise: bool) -> String {
        let num = |x: f64| {
            if precise {
                format!("{x}")
            } else {
                format!("{x:.4}")
            }
        };
        let mut s = String::new();
        if self.count > 0 {
            let _ = writeln!(s, "\nSummary:");
            let _ = writeln!(s, "  Total:\t{} secs.", num(self.total_secs));
            let _ = writeln!(s, "  Slowest:\t{} secs.", num(self.slowest_secs));
            let _ = writeln!(s, "  Fastest:\t{} secs.", num(self.fastest_secs));
            let _ = writeln!(s, "  Average:\t{} secs.", num(self.average_secs));
            let _ = writeln!(s, "  Stddev:\t{} secs.", num(self.stddev_secs));
            let _ = writeln!(s, "  Requests/sec:\t{}", num(self.requests_per_sec));
            let _ = writeln!(s, "\nResponse time histogram:");
            let tallest = self.histogram.iter().map(|b| b.count).max().unwrap_or(0);
            for bucket in &self.histogram {
                let bar = (bucket.count * BAR_WIDTH_MAX)
                    .checked_div(tallest)
                    .unwrap_or(0);
                let _ = writeln!(
                    s,
                    "  {} [{}]\t|{}",
                    num(bucket.upper_secs),
                    bucket.count,
                    "∎".repeat(bar as usize)
                );
            }
            let _ = writeln!(s, "\nLatency distribution:");
            for p in self.percentiles.iter().filter(|p| p.secs > 0.0) {
                let _ = writeln!(s, "  {}% in {} secs.", p.percent, num(p.secs));
            }
        }
        if !self.errors.is_empty() {
            let _ = writeln!(s, "\nError distribution:");
            for (message, count) in &self.errors {
                let _ = writeln!(s, "  [{count}]\t{message}");
            }
        }
        s
    }
}

/// etcd's histogram layout over an HDR histogram: bucket `i < 10` ends at
/// `fastest + i * (slowest - fastest) / 10`, the last at `slowest`; a
/// latency falls in the first bucket whose end is not below it.
fn buckets(h: &Histogram<u64>) -> Vec<Bucket> {
    if h.is_empty() {
        return Vec::new();
    }
    let (fastest, slowest) = (h.min() as f64, h.max() as f64);
    let step = (slowest - fastest) / HISTOGRAM_BUCKETS as f64;
    let mut uppers: Vec<f64> = (0..HISTOGRAM_BUCKETS)
        .map(|i| fastest + step * i as f64)
        .collect();
    uppers.push(slowest);
    let mut counts = vec![0u64; uppers.len()];
    for value in h.iter_recorded() {
        // The lowest value of the HDR bucket, as `min()` reports the fastest.
        let ns = (h.lowest_equivalent(value.value_iterated_to()) as f64).clamp(fastest, slowest);
        let i = uppers
            .iter()
            .position(|&upper| ns <= upper)
            .unwrap_or(uppers.len() - 1);
        counts[i] += value.count_at_value();
    }
    uppers
        .into_iter()
        .zip(counts)
        .map(|(upper, count)| Bucket {
            upper_secs: upper / 1e9,
            count,
        })
        .collect()
}

/// One kind of request's measurements in a run.
#[derive(Clone, Debug)]
pub struct Part {
    /// Title (`Requests`, `Read`, `Write`, `Watch creation`, `Events`...).
    pub title: String,
    /// Latencies and errors.
    pub recorder: Recorder,
    /// Wall time the requests' rate is taken over.
    pub elapsed: Duration,
}

/// A run's report: one part per kind of request (`txn-mixed` has a read
/// and a write part; `watch` creation, put and event parts; the others
/// one).
#[derive(Clone, Debug)]
pub struct Report {
    /// The command that ran (`put`, `range`, ...).
    pub command: String,
    /// Parts in print order.
    pub parts: Vec<Part>,
}

impl Report {
    /// The part titled `title`.
    pub fn part(&self, title: &str) -> Option<&Part> {
        self.parts.iter().find(|p| p.title == title)
    }

    /// The text report: each part under its title when there are
    /// several, else etcd's plain layout.
    pub fn to_text(&self, precise: bool) -> String {
        let titled = self.parts.len() > 1;
        let mut s = String::new();
        for part in &self.parts {
            if titled {
                let _ = write!(s, "\n{} summary:", part.title);
            }
            s.push_str(&part.recorder.summary(part.elapsed).to_text(precise));
        }
        s
    }

    /// The report as one JSON object: `command`, and `summaries` by title.
    pub fn to_json(&self) -> String {
        let summaries: BTreeMap<&str, Summary> = self
            .parts
            .iter()
            .map(|part| (part.title.as_str(), part.recorder.summary(part.elapsed)))
            .collect();
        let value = serde_json::json!({ "command": self.command, "summaries": summaries });
        serde_json::to_string_pretty(&value).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 90 requests of 1 ms and 10 of 10 ms over 1 s, and two errors.
    fn synthetic() -> Recorder {
        let mut recorder = Recorder::new();
        for _ in 0..90 {
            recorder.record(Duration::from_millis(1));
        }
        for _ in 0..10 {
            recorder.record(Duration::from_millis(10));
        }
        recorder.record_error("boom");
        recorder.record_error("boom");
        recorder
    }

    #[test]
    fn summary_of_a_synthetic_histogram() {
        let summary = synthetic().summary(Duration::from_secs(1));
        assert_eq!(summary.count, 100);
        assert!((summary.requests_per_sec - 100.0).abs() < 1e-9);
        assert!((summary.fastest_secs - 0.001).abs() < 0.001 * 0.002);
        assert!((summary.slowest_secs - 0.010).abs() < 0.010 * 0.002);
        assert!((summary.average_secs - 0.0019).abs() < 0.0019 * 0.002);
        let p50 = summary.percentile_secs(50.0).expect("listed");
        let p99 = summary.percentile_secs(99.0).expect("listed");
        assert!((p50 - 0.001).abs() < 0.001 * 0.002, "{p50}");
        assert!((p99 - 0.010).abs() < 0.010 * 0.002, "{p99}");
        assert_eq!(summary.histogram.len(), 11);
        assert_eq!(summary.histogram[0].count, 90);
        assert_eq!(summary.histogram[10].count, 10);
        assert_eq!(summary.histogram.iter().map(|b| b.count).sum::<u64>(), 100);
        assert_eq!(summary.errors.get("boom"), Some(&2));
    }

    #[test]
    fn text_report_has_etcds_layout() {
        let text = synthetic().summary(Duration::from_secs(1)).to_text(false);
        for line in [
            "\nSummary:\n",
            "  Total:\t1.0000 secs.\n",
            "  Fastest:\t0.0010 secs.\n",
            "  Slowest:\t0.0100 secs.\n",
            "  Requests/sec:\t100.0000\n",
            "\nResponse time histogram:\n",
            "  0.0010 [90]\t|",
            "  0.0100 [10]\t|∎∎∎∎\n",
            "\nLatency distribution:\n",
            "  10% in 0.0010 secs.\n",
            "  99% in 0.0100 secs.\n",
            "\nError distribution:\n  [2]\tboom\n",
        ] {
            assert!(text.contains(line), "{line:?} not in:\n{text}");
        }
        assert!(
            text.contains(&format!("[90]\t|{}\n", "∎".repeat(40))),
            "{text}"
        );
    }

    #[test]
    fn json_report_has_every_part() {
        let report = Report {
            command: "txn-mixed".to_string(),
            parts: ["Read", "Write"]
                .map(|title| Part {
                    title: title.to_string(),
                    recorder: synthetic(),
                    elapsed: Duration::from_secs(2),
                })
                .to_vec(),
        };
        let value: serde_json::Value = serde_json::from_str(&report.to_json()).expect("JSON");
        assert_eq!(value["command"], "txn-mixed");
        assert_eq!(value["summaries"]["Read"]["count"], 100);
        assert_eq!(value["summaries"]["Write"]["requests_per_sec"], 50.0);
        assert!(report.to_text(true).contains("\nWrite summary:\nSummary:"));
    }

    #[test]
    fn merged_recorders_add_up() {
        let mut merged = synthetic();
        merged.merge(&synthetic());
        assert_eq!(merged.count(), 200);
        assert_eq!(merged.error_count(), 4);
    }

    #[test]
    fn an_empty_report_prints_nothing() {
        assert_eq!(
            Recorder::new()
                .summary(Duration::from_secs(1))
                .to_text(false),
            ""
        );
    }
}
