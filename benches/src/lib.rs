//! Shared helpers for keel benchmarks and measurement binaries.
