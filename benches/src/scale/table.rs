//! `scale`'s text output: one Markdown table per number of keys (comfy-table).

use comfy_table::{Table, presets::ASCII_MARKDOWN};

use super::results::ScaleRun;

/// The table of `run`: one row per measure with keel's and etcd's values,
/// keel/etcd, and the goal of issue 26 with met / NOT MET.
pub fn render(run: &ScaleRun) -> String {
    let mut table = Table::new();
    table.load_preset(ASCII_MARKDOWN);
    table.set_header([
        "measure",
        "keel",
        "etcd",
        "keel/etcd",
        "issue 26 goal (keel)",
    ]);
    for m in &run.measures {
        let ratio = if m.etcd > 0.0 {
            format!("{:.2}x", m.ratio)
        } else {
            "-".to_string()
        };
        table.add_row([
            m.name.to_string(),
            format!("{:.*}", m.decimals, m.keel),
            format!("{:.*}", m.decimals, m.etcd),
            ratio,
            m.goal.as_ref().map(|g| g.text()).unwrap_or_default(),
        ]);
    }
    format!("N = {} keys\n\n{table}\n", run.keys)
}
