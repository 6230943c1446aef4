//! The command line of `keel-jepsen` (clap), and its parse into a typed
//! [`crate::nemesis::NemesisPlan`] and server choice.

use std::path::PathBuf;

use clap::{Parser, ValueEnum};

pub use crate::member_network::NetworkChoice;

/// Which server program the runner starts when no `--endpoints` is given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ServerKind {
    /// keel (the binary from `--keel-bin`, default: next to `keel-jepsen`).
    Keel,
    /// etcd (the binary from `--etcd-bin`, default `etcd` on PATH).
    Etcd,
}

impl ServerKind {
    /// Lower-case name used in messages and log file names.
    pub fn name(self) -> &'static str {
        match self {
            ServerKind::Keel => "keel",
            ServerKind::Etcd => "etcd",
        }
    }
}

/// Which workload the clients run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum WorkloadKind {
    /// Read / write / compare-and-set of single keys, checked for
    /// linearizability (Wing–Gong–Lowe, per key).
    Register,
    /// Transactions that read some keys and append unique elements to
    /// others (Jepsen's list-append), checked for strict serializability
    /// Elle-style (G0, G1a/b/c, G-single, G2-item, real-time).
    Append,
    /// etcd's lease-based lock (Lock with a kept-alive lease); measures how
    /// often two clients held it at once.
    Lock,
    /// Writers put unique values under a prefix; one watcher per member
    /// (resuming after breaks) must see every acknowledged write, in order,
    /// the same sequence as the other watchers.
    Watch,
}

impl WorkloadKind {
    /// Lower-case name used in messages, file and directory names.
    pub fn name(self) -> &'static str {
        match self {
            WorkloadKind::Register => "register",
            WorkloadKind::Append => "append",
            WorkloadKind::Lock => "lock",
            WorkloadKind::Watch => "watch",
        }
    }
}

/// Runs client workloads against an etcd-compatible cluster under faults and
/// checks the history. Prints one line: `valid`, `invalid` or `unknown`.
/// Exit code: 0 valid, 1 invalid, 2 unknown or run error.
#[derive(Debug, Clone, Parser)]
#[command(name = "keel-jepsen", version)]
pub struct Args {
    /// How long the workload runs, in seconds.
    #[arg(long, default_value_t = 30)]
    pub time_limit: u64,
    /// Faults to inject, comma-separated: kill, pause, partition, member
    /// (remove and re-add as a new member), disk (damage a stopped member's
    /// WAL tail), leader (`leader` aims the other faults at the current
    /// leader; alone it means kill,pause of the leader). `none` runs without
    /// faults. `clock` restarts a member with its Raft ticks slowed or sped
    /// up (`--heartbeat-interval`/`--election-timeout` scaled together).
    #[arg(long, value_delimiter = ',', default_value = "none")]
    pub nemesis: Vec<String>,
    /// Seconds a fault lasts, and seconds of calm between two faults.
    #[arg(long, default_value_t = 3)]
    pub nemesis_interval: u64,
    /// The workload.
    #[arg(long, value_enum, default_value = "register")]
    pub workload: WorkloadKind,
    /// Members to start (3 or 5).
    #[arg(long, default_value_t = 3)]
    pub nodes: usize,
    /// Which server to start.
    #[arg(long, value_enum, default_value = "keel")]
    pub server: ServerKind,
    /// The keel binary [default: `keel` next to this executable].
    #[arg(long)]
    pub keel_bin: Option<PathBuf>,
    /// The etcd binary.
    #[arg(long, default_value = "etcd")]
    pub etcd_bin: PathBuf,
    /// Test an already running cluster at these client URLs (comma-separated)
    /// instead of starting one; process and network faults are refused then.
    #[arg(long, value_delimiter = ',')]
    pub endpoints: Vec<String>,
    /// Concurrent clients (each bound to one member, round robin).
    #[arg(long, default_value_t = 10)]
    pub concurrency: usize,
    /// Client operation timeout in milliseconds; an operation that times
    /// out is recorded with an unknown outcome.
    #[arg(long, default_value_t = 1000)]
    pub op_timeout_ms: u64,
    /// Keys written at the same time (register and append workloads).
    #[arg(long, default_value_t = 8)]
    pub keys: usize,
    /// Operations (append: transactions) per key before the workload moves
    /// on to fresh keys (keeps each key's linearizability search, or list,
    /// small).
    #[arg(long, default_value_t = 150)]
    pub ops_per_key: usize,
    /// Where the run's directory is created (history, verdicts, logs).
    #[arg(long, default_value = "store")]
    pub results: PathBuf,
    /// Keep the members' data directories even when the run is valid.
    #[arg(long)]
    pub keep_data: bool,
    /// Seconds the cluster may take to recover after the faults are healed.
    #[arg(long, default_value_t = 30)]
    pub recovery_timeout: u64,
    /// Bound on the linearizability search, in states per key.
    #[arg(long, default_value_t = 5_000_000)]
    pub check_states_max: u64,
    /// How members are wired for the partition fault: `namespaces` (one
    /// network namespace per member; root and `ip`), `proxy` (one loopback
    /// address and TCP proxy per member; no root, keel only), or `auto`
    /// (namespaces when the run partitions and they can be made, else
    /// proxies; plain loopback without `partition`). The run prints and
    /// records which it used (`network: ...`).
    #[arg(long, value_enum, default_value = "auto")]
    pub network: NetworkChoice,
}
