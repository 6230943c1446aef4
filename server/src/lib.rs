//! keel-server: the shell around keel's consensus kernel.
//!
//! What is here so far (the server itself arrives with issue 5):
//! - [`proto`]: keel's etcd v3 wire API (`etcdserverpb`, `mvccpb`, `authpb`,
//!   `v3lockpb`, `v3electionpb`) and the member-to-member transport protocol.
//! - [`config`]: etcd's command-line flags and `ETCD_*` environment variables,
//!   validated into a typed [`config::Config`].
//! - [`transport`]: the peer transport's receive side (a tonic service that
//!   delivers Raft message batches and snapshots to the node driver) and its
//!   send side (batching and snapshot chunking).
//!
//! tokio and tonic are taken through `madsim-tokio`/`madsim-tonic`: the same
//! code runs on real sockets or, built with `RUSTFLAGS="--cfg madsim"`, inside
//! madsim's deterministic simulator.

pub mod api;
pub mod backend;
pub mod config;
pub mod node;
pub mod proto;
pub mod transport;
