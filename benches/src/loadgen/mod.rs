//! `keel-bench`'s load generator: etcd's `benchmark` tool's commands
//! (etcd v3.4.27 `tools/benchmark/cmd/`, `txn-mixed` from v3.6) over the v3
//! gRPC API through the `etcd-client` crate, so it drives keel and etcd
//! alike.
//!
//! - [`cli`]: the command line (commands, flags and etcd's defaults);
//! - [`keys`]: keys and values the way etcd's tool makes them;
//! - [`connect`]: connections, shared by clients round-robin;
//! - [`request`]: one request of a workload, issued and timed;
//! - [`runner`]: closed-loop clients, rate limit, stop rule, collector;
//! - [`watch`]: `watch` and `watch-latency`;
//! - [`report`]: HDR histogram, etcd's text report and `--json`;
//! - [`progress`]: the progress bar on a terminal;
//! - [`command`]: runs one parsed command.

pub mod cli;
pub mod command;
pub mod connect;
pub mod keys;
pub mod progress;
pub mod report;
pub mod request;
pub mod runner;
pub mod watch;
