//! The progress bar: indicatif on a terminal's stderr, hidden otherwise
//! (output piped, `--json`, or `compare`, which prints its own lines).

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressStyle};

/// A bar of `length` steps (a spinner when `None`), shown only when `show`
/// and stderr is a terminal.
pub fn bar(length: Option<u64>, show: bool) -> ProgressBar {
    if !show || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    match length {
        Some(length) => {
            let bar = ProgressBar::new(length);
            if let Ok(style) = ProgressStyle::with_template(
                "{bar:40} {pos}/{len} [{elapsed_precise}, {per_sec}, eta {eta}]",
            ) {
                bar.set_style(style);
            }
            bar
        }
        None => ProgressBar::new_spinner(),
    }
}
