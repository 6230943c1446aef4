//! `snapshot restore`: a keel or etcd snapshot file becomes the data
//! directory of one member of a new cluster (etcd 3.4 `etcdctl snapshot
//! restore`, etcdutl 3.5). Every member of the new cluster restores the
//! same file with its own `--name`; the cluster id comes from
//! `--initial-cluster` and `--initial-cluster-token` as at bootstrap, the
//! keys, revisions, leases, users and roles from the file.

use std::path::{Path, PathBuf};

use keel_kernel::apply::{StateMachine, StateMachineConfig, StateParts};
use keel_kernel::membership::{Cluster, Member, parse_initial_cluster};

use crate::datadir::{self, NewCluster};
use crate::error::SnapshotError;
use crate::etcd;
use crate::format::{self, SnapshotFormat};
use crate::keel_file;

/// A restore step, reported to [`RestoreOptions::progress`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RestoreStep {
    /// The file was read (`bytes` long).
    Read {
        /// Size of the file in bytes.
        bytes: u64,
    },
    /// The snapshot was decoded and checked (`keys` keys).
    Decoded {
        /// Keys in the store.
        keys: u64,
    },
    /// The data directory was written and synced.
    Written,
}

/// Called after each [`RestoreStep`].
pub type ProgressFn = Box<dyn Fn(RestoreStep) + Send + Sync>;

/// etcd's `snapshot restore` flags.
pub struct RestoreOptions {
    /// `--data-dir`: must not exist, or be empty (etcd's default is
    /// `<name>.etcd`; see [`RestoreOptions::new`]).
    pub data_dir: PathBuf,
    /// `--name`: this member's name in `initial_cluster`.
    pub name: String,
    /// `--initial-cluster`: `name=peer-url,...` of every member.
    pub initial_cluster: String,
    /// `--initial-cluster-token`.
    pub initial_cluster_token: String,
    /// `--initial-advertise-peer-urls`: this member's peer URLs; must equal
    /// its URLs in `initial_cluster`.
    pub initial_advertise_peer_urls: Vec<String>,
    /// `--skip-hash-check`: accept a file without (or with a wrong)
    /// appended SHA-256, such as a copied `member/snap/db`.
    pub skip_hash_check: bool,
    /// Told about each step (for a progress bar); `None` for silence.
    pub progress: Option<ProgressFn>,
}

impl RestoreOptions {
    /// etcd's defaults: name `default`, data dir `default.etcd`, initial
    /// cluster `default=http://localhost:2380`, token `etcd-cluster`,
    /// peer URL `http://localhost:2380`, hash checked.
    pub fn new() -> RestoreOptions {
        RestoreOptions {
            data_dir: PathBuf::from("default.etcd"),
            name: "default".to_owned(),
            initial_cluster: "default=http://localhost:2380".to_owned(),
            initial_cluster_token: "etcd-cluster".to_owned(),
            initial_advertise_peer_urls: vec!["http://localhost:2380".to_owned()],
            skip_hash_check: false,
            progress: None,
        }
    }

    fn report(&self, step: RestoreStep) {
        if let Some(progress) = &self.progress {
            progress(step);
        }
    }
}

impl Default for RestoreOptions {
    fn default() -> RestoreOptions {
        RestoreOptions::new()
    }
}

/// What [`restore`] wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RestoreReport {
    /// The kind of file restored.
    pub format: SnapshotFormat,
    /// The data directory written.
    pub data_dir: PathBuf,
    /// The restored member's id.
    pub member_id: u64,
    /// The new cluster's id.
    pub cluster_id: u64,
    /// The store's revision.
    pub revision: i64,
    /// Keys in the store.
    pub total_keys: u64,
    /// Raft index of the snapshot written (= number of members).
    pub snapshot_index: u64,
}

/// Restores the snapshot at `path` into `opts.data_dir`.
///
/// Errors: [`SnapshotError::DataDirExists`] (checked first, nothing
/// written); [`SnapshotError::BadOptions`]; [`SnapshotError::Io`] reading
/// the file; [`SnapshotError::NotASnapshot`], [`SnapshotError::MissingHash`],
/// [`SnapshotError::HashMismatch`], [`SnapshotError::Truncated`] and the
/// corruption variants for a bad file; [`SnapshotError::Write`] for the data
/// directory (what was written is removed again).
pub fn restore(path: &Path, opts: &RestoreOptions) -> Result<RestoreReport, SnapshotError> {
    if datadir::is_taken(&opts.data_dir)? {
        return Err(SnapshotError::DataDirExists(opts.data_dir.clone()));
    }
    let (cluster, member_id) = new_cluster(opts)?;
    let bytes = std::fs::read(path).map_err(|e| SnapshotError::io("read", path, e))?;
    opts.report(RestoreStep::Read {
        bytes: bytes.len() as u64,
    });
    let snapshot_format = format::detect(&bytes)?;
    let data = format::strip_hash(&bytes, opts.skip_hash_check)?;
    let parts = match snapshot_format {
        SnapshotFormat::Keel => keel_file::decode(data, config())?.into_parts(),
        SnapshotFormat::Etcd => etcd::convert::to_parts(data)?,
    };
    let state = rebase(parts, &cluster, snapshot_format)?;
    let (revision, total_keys) = (
        state.store().current_revision(),
        state.store().key_count() as u64,
    );
    opts.report(RestoreStep::Decoded { keys: total_keys });
    let members: Vec<Member> = cluster.members().into_iter().cloned().collect();
    let new = NewCluster {
        members: &members,
        cluster_id: cluster.cluster_id(),
        member_id,
    };
    let existed = opts.data_dir.exists();
    if let Err(err) = datadir::write(&opts.data_dir, &new, state.snapshot()) {
        remove_partial(&opts.data_dir, existed);
        return Err(err);
    }
    opts.report(RestoreStep::Written);
    Ok(RestoreReport {
        format: snapshot_format,
        data_dir: opts.data_dir.clone(),
        member_id,
        cluster_id: cluster.cluster_id(),
        revision,
        total_keys,
        snapshot_index: members.len() as u64,
    })
}

/// The state-machine settings used to decode and re-encode (they are not
/// part of the snapshot; the restored member uses its own flags).
fn config() -> StateMachineConfig {
    StateMachineConfig::new(1000)
}

/// The new cluster from the options, and this member's id.
fn new_cluster(opts: &RestoreOptions) -> Result<(Cluster, u64), SnapshotError> {
    let bad = |why: String| SnapshotError::BadOptions(why);
    let urls_map = parse_initial_cluster(&opts.initial_cluster)
        .map_err(|e| bad(format!("--initial-cluster {:?}: {e}", opts.initial_cluster)))?;
    let Some(own_urls) = urls_map.get(&opts.name) else {
        return Err(bad(format!(
            "couldn't find local name {:?} in the initial cluster configuration",
            opts.name
        )));
    };
    let (mut own, mut advertised) = (own_urls.clone(), opts.initial_advertise_peer_urls.clone());
    own.sort();
    advertised.sort();
    if own != advertised {
        return Err(bad(format!(
            "--initial-cluster has {}={} but missing from --initial-advertise-peer-urls={}",
            opts.name,
            own.join(","),
            advertised.join(",")
        )));
    }
    let cluster = Cluster::from_initial_cluster(&opts.initial_cluster, &opts.initial_cluster_token)
        .map_err(|e| bad(format!("--initial-cluster: {e}")))?;
    let member_id = Member::compute_id(&own, &opts.initial_cluster_token, None);
    Ok((cluster, member_id))
}

/// The restored state for the new cluster: its membership, no alarms
/// (they name the old members), applied index = number of members, term 1.
fn rebase(
    mut parts: StateParts,
    cluster: &Cluster,
    snapshot_format: SnapshotFormat,
) -> Result<StateMachine, SnapshotError> {
    parts.cluster = cluster.snapshot();
    parts.alarms.clear();
    parts.applied_index = cluster.members().len() as u64;
    parts.applied_term = 1;
    let invalid = |why: String| match snapshot_format {
        SnapshotFormat::Keel => SnapshotError::CorruptKeel(why),
        SnapshotFormat::Etcd => SnapshotError::InvalidEtcd(why),
    };
    let state = StateMachine::from_parts(config(), parts).map_err(|e| invalid(e.to_string()))?;
    state
        .check_invariants()
        .map_err(|e| invalid(format!("{e:?}")))?;
    Ok(state)
}

/// Removes what a failed restore wrote: the whole directory if restore
/// created it, else only `member/` (the directory was empty before).
fn remove_partial(data_dir: &Path, existed: bool) {
    let _ = if existed {
        std::fs::remove_dir_all(data_dir.join("member"))
    } else {
        std::fs::remove_dir_all(data_dir)
    };
}
