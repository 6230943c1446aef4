//! keel-server: the shell around keel's consensus kernel, and the `keel`
//! binary (`src/bin/keel.rs`).
//!
//! - [`config`]: etcd's command-line flags and `ETCD_*` environment variables,
//!   validated into a typed [`config::Config`].
//! - [`node`]: the node driver (Raft + WAL + state machine, group commit,
//!   ReadIndex, snapshots, leases) and [`node::serve`], a whole member.
//! - [`replica`]: the seam between the driver and the API layer.
//! - [`api`]: etcd's v3 gRPC services (KV, Watch, Lease, Cluster,
//!   Maintenance, Auth, Lock) with etcd's error codes and messages.
//! - `gateway`: etcd's HTTP/JSON gateway, `/version`, `/health` and
//!   `/metrics` on the client port beside gRPC.
//! - [`transport`]: the member-to-member transport (Raft message batches,
//!   chunked snapshots, forwarded lease requests).
//! - `tls`: TLS on the client and peer ports (rustls), and the peer
//!   transport's TLS connector.
//! - [`observe`]: the seam through which the node reports durations
//!   (WAL fsync, snapshot files, peer round trips) to `/metrics`.
//! - [`huge_pages`]: the `keel` binary's heap on transparent huge pages.
//! - `h2_authority`: repairs the `:authority` etcdctl 3.4 sends as a URL,
//!   which tonic's HTTP/2 layer would refuse.
//! - [`proto`]: keel's etcd v3 wire API (`etcdserverpb`, `mvccpb`, `authpb`,
//!   `v3lockpb`, `v3electionpb`) and the peer protocol.
//!
//! tokio and tonic are taken through `madsim-tokio`/`madsim-tonic`: the same
//! code runs on real sockets or, built with `RUSTFLAGS="--cfg madsim"`, inside
//! madsim's deterministic simulator.

pub mod api;
mod blocking;
pub mod config;
#[cfg(not(madsim))]
pub mod gateway;
#[cfg(not(madsim))]
pub mod h2_authority;
pub mod huge_pages;
pub mod node;
pub mod observe;
pub mod proto;
mod replayable_select;
pub mod replica;
#[cfg(not(madsim))]
pub mod tls;
pub mod transport;
