//! `compare`'s table: per case, both servers' rates and p99s and keel's
//! ratios (comfy-table).

use comfy_table::{Table, presets::ASCII_MARKDOWN};

use super::results::CaseResult;

/// The table of `results`, Markdown-compatible.
pub fn render(results: &[CaseResult]) -> String {
    let mut table = Table::new();
    table.load_preset(ASCII_MARKDOWN);
    table.set_header([
        "workload",
        "members",
        "clients",
        "keel/s",
        "keel p99 ms",
        "etcd/s",
        "etcd p99 ms",
        "keel/etcd rate",
        "keel/etcd p99",
    ]);
    for r in results {
        table.add_row([
            r.case.workload.name().to_string(),
            r.case.members.to_string(),
            r.case.clients.to_string(),
            format!("{:.0}", r.keel.rate_per_sec),
            format!("{:.2}", r.keel.p99_ms),
            format!("{:.0}", r.etcd.rate_per_sec),
            format!("{:.2}", r.etcd.p99_ms),
            format!("{:.2}x", r.rate_ratio),
            format!("{:.2}x", r.p99_ratio),
        ]);
    }
    table.to_string()
}
