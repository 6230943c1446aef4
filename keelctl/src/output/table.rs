//! `--write-out=table`: the ASCII tables etcdctl draws with
//! olekukonko/tablewriter (etcdctl/ctlv3/command/printer_table.go):
//! upper-case centred headers, right-aligned cells, a rule under the
//! header and none between rows.

use comfy_table::{Cell, CellAlignment, ContentArrangement, Table};

/// tablewriter's default frame in comfy-table's preset notation: borders
/// `|`, rules `-`, intersections `+`; the row separators (positions 10-13)
/// are blank, which comfy-table takes as "none".
const TABLEWRITER_STYLE: &str = "||--+-++|    ++++++";

/// Renders `header` and `rows` as etcdctl's table, ending in a newline.
pub fn render(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut table = Table::new();
    let titles: Vec<String> = header
        .iter()
        .map(|h| h.to_uppercase().replace('_', " "))
        .collect();
    let widths: Vec<usize> = titles
        .iter()
        .enumerate()
        .map(|(i, title)| {
            rows.iter()
                .filter_map(|row| row.get(i))
                .map(|cell| cell.chars().count())
                .chain([title.chars().count()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    table
        .load_preset(TABLEWRITER_STYLE)
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header(
            titles
                .iter()
                .zip(&widths)
                .map(|(title, width)| Cell::new(centred(title, *width))),
        );
    for row in rows {
        table.add_row(
            row.iter()
                .map(|c| Cell::new(c).set_alignment(CellAlignment::Right)),
        );
    }
    format!("{table}\n")
}

/// tablewriter's `Pad`: the smaller half of the gap on the left.
fn centred(text: &str, width: usize) -> String {
    let gap = width.saturating_sub(text.chars().count());
    let left = gap / 2;
    format!("{}{text}{}", " ".repeat(left), " ".repeat(gap - left))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_tablewriter() {
        let text = render(
            &["endpoint", "hash"],
            &[
                vec!["127.0.0.1:23790".to_owned(), "75384089".to_owned()],
                vec!["b".to_owned(), "1".to_owned()],
            ],
        );
        let expected = "\
+-----------------+----------+
|    ENDPOINT     |   HASH   |
+-----------------+----------+
| 127.0.0.1:23790 | 75384089 |
|               b |        1 |
+-----------------+----------+
";
        assert_eq!(text, expected);
    }
}
