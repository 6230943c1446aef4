//! Segmented write-ahead log: written by its issue.
