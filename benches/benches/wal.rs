//! wal benchmark: written by its issue.

fn main() {}
