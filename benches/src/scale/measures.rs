//! The rows of `scale`'s table for one number of keys: each measure for
//! keel and etcd, keel's over etcd's, and the goal of issue 26 it has.

use serde::Serialize;

use super::goals::{self, GoalCheck};
use super::results::ServerFigures;

/// Bytes in the table's MB (10^6, as the table).
const MB: f64 = 1e6;

/// One row: a measure of both servers.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Measure {
    /// What is measured, with its unit.
    pub name: &'static str,
    /// keel's value.
    pub keel: f64,
    /// etcd's value.
    pub etcd: f64,
    /// keel's over etcd's (0 when etcd's is 0).
    pub ratio: f64,
    /// Decimals the table prints.
    #[serde(skip)]
    pub decimals: usize,
    /// The goal of issue 26 on this measure, if any, and whether keel meets it.
    pub goal: Option<GoalCheck>,
}

/// How a row picks its value out of one server's figures.
type Pick = fn(&ServerFigures) -> f64;

/// `bytes` in MB.
fn mb(bytes: u64) -> f64 {
    bytes as f64 / MB
}

/// The rows: name with unit, decimals printed, value.
const ROWS: [(&str, usize, Pick); 17] = [
    ("load rate (puts/s)", 0, |f| f.load.figures.rate_per_sec),
    ("put p50 (ms)", 2, |f| f.load.figures.p50_ms),
    ("put p99 (ms)", 2, |f| f.load.figures.p99_ms),
    ("put max (ms)", 1, |f| f.load.max_ms),
    ("disk write_bytes per put (B)", 0, |f| f.write_bytes_per_put),
    ("wchar per put (B)", 0, |f| f.wchar_bytes_per_put),
    ("RssAnon after load (MB)", 0, |f| {
        mb(f.memory_after_load.rss_anon_bytes)
    }),
    ("RssFile after load (MB)", 0, |f| {
        mb(f.memory_after_load.rss_file_bytes)
    }),
    ("RSS after load (MB)", 0, |f| {
        mb(f.memory_after_load.rss_bytes())
    }),
    ("data dir, file sizes (MB)", 0, |f| {
        mb(f.data_dir.apparent_bytes)
    }),
    ("data dir, allocated (MB)", 0, |f| {
        mb(f.data_dir.allocated_bytes)
    }),
    ("restart to serving (s)", 2, |f| f.restart_secs),
    ("gets after restart (gets/s)", 0, |f| {
        f.gets.figures.rate_per_sec
    }),
    ("get p99 (ms)", 2, |f| f.gets.figures.p99_ms),
    ("RssAnon after gets (MB)", 0, |f| {
        mb(f.memory_after_gets.rss_anon_bytes)
    }),
    ("RssFile after gets (MB)", 0, |f| {
        mb(f.memory_after_gets.rss_file_bytes)
    }),
    ("failed puts + gets", 0, |f| {
        (f.load.figures.errors + f.gets.figures.errors) as f64
    }),
];

/// Every row for `keel` and `etcd`, goals attached; `entry_bytes` is one
/// put's key + value size.
pub fn measures(keel: &ServerFigures, etcd: &ServerFigures, entry_bytes: usize) -> Vec<Measure> {
    ROWS.iter()
        .map(|&(name, decimals, pick)| {
            let (k, e) = (pick(keel), pick(etcd));
            let mut measure = Measure {
                name,
                keel: k,
                etcd: e,
                ratio: if e > 0.0 { k / e } else { 0.0 },
                decimals,
                goal: None,
            };
            measure.goal = goal(&measure, entry_bytes);
            measure
        })
        .collect()
}

/// The goal of issue 26 on `measure`, checked, if it has one.
fn goal(measure: &Measure, entry_bytes: usize) -> Option<GoalCheck> {
    match measure.name {
        "put max (ms)" => Some(goals::max_put_latency(measure.keel)),
        "disk write_bytes per put (B)" => Some(goals::bytes_per_put(measure.keel, entry_bytes)),
        "RSS after load (MB)" | "data dir, file sizes (MB)" => {
            Some(goals::at_most_etcd(measure.keel, measure.etcd))
        }
        "restart to serving (s)" => Some(goals::restart(measure.keel)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scale::goals::Verdict;

    #[test]
    fn ratios_and_goals_fill_the_rows() {
        let mut keel = ServerFigures::default();
        let mut etcd = ServerFigures::default();
        keel.load.figures.rate_per_sec = 30_000.0;
        etcd.load.figures.rate_per_sec = 20_000.0;
        keel.load.max_ms = 254.0;
        keel.restart_secs = 2.0;
        keel.data_dir.apparent_bytes = 1_205_000_000;
        etcd.data_dir.apparent_bytes = 786_000_000;
        let rows = measures(&keel, &etcd, 272);
        let row = |name: &str| rows.iter().find(|m| m.name == name).expect(name).clone();
        assert_eq!(row("load rate (puts/s)").ratio, 1.5);
        assert_eq!(row("load rate (puts/s)").goal, None);
        let verdict = |name: &str| row(name).goal.expect("has a goal").verdict;
        assert_eq!(verdict("put max (ms)"), Verdict::BoundOnly);
        assert_eq!(verdict("restart to serving (s)"), Verdict::Met);
        assert_eq!(verdict("data dir, file sizes (MB)"), Verdict::NotMet);
        assert_eq!(row("data dir, file sizes (MB)").keel, 1205.0);
        assert_eq!(rows.iter().filter(|m| m.goal.is_some()).count(), 5);
    }
}
