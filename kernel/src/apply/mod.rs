//! apply: written by its issue (see ../../shared/DESIGN.md).
