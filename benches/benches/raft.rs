//! raft benchmark: written by its issue.

fn main() {}
