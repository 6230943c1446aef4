//! The Maintenance service (etcd `etcdserverpb.Maintenance`): Status, Hash,
//! HashKV, Snapshot, Alarm, Defragment, MoveLeader, and Downgrade as etcd
//! 3.5 answers it for a cluster at its only version (`downgrade.rs`).

use bytes::Bytes;
use keel_kernel::apply::{AlarmAction, AlarmMember, AlarmType, Request, Response, StateMachine};
use keel_kernel::auth::{AuthInfo, MemberCall};
use sha2::{Digest, Sha256};
use tonic::{Request as GrpcRequest, Response as GrpcResponse, Status};

use super::header::{current, from_status, header};
use super::status::{apply_error, mvcc_error};
use super::{
    ApiLimits, ETCD_VERSION, ResponseStream, convert, propose, request_auth, response_stream,
    unexpected,
};
use crate::proto::etcdserverpb as pb;
use crate::replica::{NodeStatus, Replica};

/// The Maintenance service over a replica.
#[derive(Clone, Debug)]
pub struct MaintenanceService<B> {
    replica: B,
    limits: ApiLimits,
}

impl<B: Replica> MaintenanceService<B> {
    /// A Maintenance service over `replica`.
    pub fn new(replica: B, limits: ApiLimits) -> MaintenanceService<B> {
        MaintenanceService { replica, limits }
    }

    /// Checks that the caller of `request` may make `call` (etcd's
    /// maintenance auth: hashes, snapshots and defragment need the `root`
    /// role while auth is enabled; the kernel's [`MemberCall::needs`]).
    fn check_call<T>(&self, request: &GrpcRequest<T>, call: MemberCall) -> Result<(), Status> {
        let auth = request_auth(&self.replica, request)?;
        self.authorize(&auth, call)
    }

    /// Checks that `auth` may make `call` ([`MemberCall::needs`]).
    fn authorize(&self, auth: &AuthInfo, call: MemberCall) -> Result<(), Status> {
        self.replica
            .with_state(|state| state.authorize_call(auth, call))
            .map_err(|err| apply_error(&err))
    }
}

/// Snapshot bodies are a multiple of this: etcdctl 3.4 only accepts a
/// download whose size is `k * 512 + 32` (a bbolt file plus the SHA-256),
/// "sha256 checksum not found" otherwise. bbolt images are whole pages
/// already; [`pad_snapshot`] pads anything else with zeros (keel's own
/// `KEELSNAP` encoding is self-delimiting, so a reader finds its end
/// before the padding).
pub const SNAPSHOT_PAD_BYTES: usize = 512;

/// `data` padded with zeros to a multiple of [`SNAPSHOT_PAD_BYTES`].
pub fn pad_snapshot(data: Bytes) -> Bytes {
    let rest = data.len() % SNAPSHOT_PAD_BYTES;
    if rest == 0 {
        return data;
    }
    let mut padded = Vec::with_capacity(data.len() + SNAPSHOT_PAD_BYTES - rest);
    padded.extend_from_slice(&data);
    padded.resize(data.len() + SNAPSHOT_PAD_BYTES - rest, 0);
    Bytes::from(padded)
}

/// The body of a snapshot stream: the replica's state-machine snapshot
/// written as an etcd 3.4 backend (a bbolt database, 4096-byte pages, so a
/// multiple of [`SNAPSHOT_PAD_BYTES`]) that etcdctl's `snapshot status` and
/// `snapshot restore` and etcd itself read (`keel_snapshot::etcd::export`).
///
/// Errors: `INTERNAL` when the state-machine snapshot does not decode or
/// cannot be written as bbolt (neither happens to a snapshot keel made).
pub fn etcd_snapshot_body(keel_snapshot: &[u8]) -> Result<Bytes, Status> {
    keel_snapshot::etcd::export::from_keel_snapshot(keel_snapshot)
        .map(|image| pad_snapshot(Bytes::from(image)))
        .map_err(|err| Status::internal(format!("snapshot: {err}")))
}

/// The body of a snapshot stream built from `state`, a clone of the
/// replica's applied state (cheap: the store's index is copy-on-write), as
/// [`etcd_snapshot_body`] builds it from the encoded state, without
/// encoding and decoding the keel snapshot on the way. Runs on the blocking
/// pool (inline under madsim), off the async workers and with no lock held.
///
/// Errors: `INTERNAL` when the image cannot be built (it does not happen to
/// a consistent state) or the job building it died.
pub async fn etcd_snapshot_body_of(state: StateMachine) -> Result<Bytes, Status> {
    let build = move || {
        keel_snapshot::etcd::export::to_bolt(&state.into_parts())
            .map(|image| pad_snapshot(Bytes::from(image)))
            .map_err(|err| Status::internal(format!("snapshot: {err}")))
    };
    off_the_runtime(build).await?
}

/// Runs `work` on tokio's blocking pool and waits for it.
/// Errors: `INTERNAL` when the job died (panicked).
#[cfg(not(madsim))]
async fn off_the_runtime<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, Status> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|err| Status::internal(format!("snapshot: the job building it died: {err}")))
}

/// Runs `work` inline under madsim, which forbids threads of its own.
#[cfg(madsim)]
async fn off_the_runtime<T>(work: impl FnOnce() -> T) -> Result<T, Status> {
    Ok(work())
}

/// Splits a snapshot body into etcd's stream: chunks of at most
/// `chunk_bytes` with the bytes still to come in `remaining_bytes`, then
/// one message holding the SHA-256 of the whole body (remaining 0), which
/// etcdctl checks.
pub fn snapshot_chunks(
    data: &Bytes,
    chunk_bytes: usize,
    header: Option<pb::ResponseHeader>,
) -> Vec<pb::SnapshotResponse> {
    let chunk_bytes = chunk_bytes.max(1);
    let total = data.len();
    let mut sent = 0;
    let mut chunks = Vec::with_capacity(total / chunk_bytes + 2);
    while sent < total {
        let end = total.min(sent + chunk_bytes);
        chunks.push(pb::SnapshotResponse {
            header,
            remaining_bytes: (total - end) as u64,
            blob: data.slice(sent..end),
            version: ETCD_VERSION.to_string(),
        });
        sent = end;
    }
    chunks.push(pb::SnapshotResponse {
        header,
        remaining_bytes: 0,
        blob: Bytes::from(Sha256::digest(data).to_vec()),
        version: ETCD_VERSION.to_string(),
    });
    chunks
}

/// The alarms a member reports: those applied through Raft, plus its own
/// NOSPACE while its disk is full and that alarm could not be applied yet
/// (see `node/disk_full.rs`).
fn reported_alarms(mut applied: Vec<AlarmMember>, node: &NodeStatus) -> Vec<AlarmMember> {
    let local = AlarmMember {
        member_id: node.member_id,
        alarm: AlarmType::NoSpace,
    };
    if node.disk_full && !applied.contains(&local) {
        applied.push(local);
    }
    applied
}

#[tonic::async_trait]
impl<B: Replica> pb::maintenance_server::Maintenance for MaintenanceService<B> {
    async fn alarm(
        &self,
        request: GrpcRequest<pb::AlarmRequest>,
    ) -> Result<GrpcResponse<pb::AlarmResponse>, Status> {
        let auth = request_auth(&self.replica, &request)?;
        let alarm = convert::alarm_request(request.get_ref());
        let node = self.replica.status();
        if alarm.action == AlarmAction::Get && node.disk_full {
            self.authorize(&auth, MemberCall::AlarmList)?;
            // Raft is frozen while the disk is full: answer from here.
            let (revision, applied) = self
                .replica
                .with_state(|state| (state.store().current_revision(), state.alarms().list()));
            let alarms = reported_alarms(applied, &node)
                .into_iter()
                .filter(|a| alarm.alarm == AlarmType::None || a.alarm == alarm.alarm);
            return Ok(GrpcResponse::new(pb::AlarmResponse {
                header: Some(from_status(&node, revision)),
                alarms: alarms.map(convert::alarm_member).collect(),
            }));
        }
        match propose(&self.replica, Request::Alarm(alarm), auth).await? {
            (Response::Alarm(alarms), revision) => Ok(GrpcResponse::new(pb::AlarmResponse {
                header: header(&self.replica, revision),
                alarms: alarms.into_iter().map(convert::alarm_member).collect(),
            })),
            (other, _) => Err(unexpected(&other)),
        }
    }

    /// Open to every user (etcd 3.6.9+ `requireAuthInfo`).
    async fn status(
        &self,
        request: GrpcRequest<pb::StatusRequest>,
    ) -> Result<GrpcResponse<pb::StatusResponse>, Status> {
        let auth = super::caller::request_auth_on_learner(&self.replica, &request)?;
        self.authorize(&auth, MemberCall::Status)?;
        let node = self.replica.status();
        let (revision, alarms) = self
            .replica
            .with_state(|state| (state.store().current_revision(), state.alarms().list()));
        let db_size = i64::try_from(node.db_size_bytes).unwrap_or(i64::MAX);
        Ok(GrpcResponse::new(pb::StatusResponse {
            header: Some(from_status(&node, revision)),
            version: ETCD_VERSION.to_string(),
            db_size,
            leader: node.leader_id,
            raft_index: node.raft_index,
            raft_term: node.raft_term,
            raft_applied_index: node.raft_applied_index,
            errors: reported_alarms(alarms, &node)
                .into_iter()
                .map(convert::alarm_error)
                .collect(),
            db_size_in_use: db_size,
            is_learner: node.is_learner,
            storage_version: ETCD_VERSION.to_string(),
            db_size_quota: i64::try_from(node.db_size_quota_bytes).unwrap_or(i64::MAX),
            downgrade_info: None,
        }))
    }

    async fn defragment(
        &self,
        request: GrpcRequest<pb::DefragmentRequest>,
    ) -> Result<GrpcResponse<pb::DefragmentResponse>, Status> {
        // The store lives in memory: there is nothing to defragment.
        self.check_call(&request, MemberCall::Defragment)?;
        Ok(GrpcResponse::new(pb::DefragmentResponse {
            header: current(&self.replica),
        }))
    }

    async fn hash(
        &self,
        request: GrpcRequest<pb::HashRequest>,
    ) -> Result<GrpcResponse<pb::HashResponse>, Status> {
        self.check_call(&request, MemberCall::Hash)?;
        let (revision, hashed) = self.replica.with_state(|state| {
            let store = state.store();
            (store.current_revision(), store.hash_kv(0))
        });
        let (hash, _) = hashed.map_err(|err| mvcc_error(&err))?;
        Ok(GrpcResponse::new(pb::HashResponse {
            header: header(&self.replica, revision),
            hash,
        }))
    }

    async fn hash_kv(
        &self,
        request: GrpcRequest<pb::HashKvRequest>,
    ) -> Result<GrpcResponse<pb::HashKvResponse>, Status> {
        self.check_call(&request, MemberCall::HashKv)?;
        let asked = request.get_ref().revision;
        let (current_revision, hashed) = self.replica.with_state(|state| {
            let store = state.store();
            (store.current_revision(), store.hash_kv(asked))
        });
        let (hash, compact_revision) = hashed.map_err(|err| mvcc_error(&err))?;
        let hash_revision = if asked > 0 { asked } else { current_revision };
        Ok(GrpcResponse::new(pb::HashKvResponse {
            header: header(&self.replica, current_revision),
            hash,
            compact_revision,
            hash_revision,
        }))
    }

    type SnapshotStream = ResponseStream<pb::SnapshotResponse>;

    async fn snapshot(
        &self,
        request: GrpcRequest<pb::SnapshotRequest>,
    ) -> Result<GrpcResponse<Self::SnapshotStream>, Status> {
        self.check_call(&request, MemberCall::Snapshot)?;
        let frozen = self.replica.with_state(StateMachine::clone);
        let data = etcd_snapshot_body_of(frozen).await?;
        let chunks = snapshot_chunks(
            &data,
            self.limits.snapshot_chunk_bytes,
            current(&self.replica),
        );
        let (sender, receiver) = tokio::sync::mpsc::channel(self.limits.stream_buffer_responses);
        tokio::spawn(async move {
            for chunk in chunks {
                if sender.send(Ok(chunk)).await.is_err() {
                    break;
                }
            }
        });
        Ok(GrpcResponse::new(response_stream(receiver).await?))
    }

    /// etcd `MoveLeader`: only the leader hands leadership over, to a
    /// voting member, and answers once the transferee leads. Auth-free, as
    /// in etcd 3.4 and 3.5.
    async fn move_leader(
        &self,
        request: GrpcRequest<pb::MoveLeaderRequest>,
    ) -> Result<GrpcResponse<pb::MoveLeaderResponse>, Status> {
        let transferee = request.into_inner().target_id;
        self.replica.move_leader(transferee).await?;
        Ok(GrpcResponse::new(pb::MoveLeaderResponse {
            header: current(&self.replica),
        }))
    }

    /// etcd 3.5's answers for a cluster at keel's only version (see
    /// `downgrade.rs`), after a linearizable barrier as etcd reads its
    /// downgrade state.
    async fn downgrade(
        &self,
        request: GrpcRequest<pb::DowngradeRequest>,
    ) -> Result<GrpcResponse<pb::DowngradeResponse>, Status> {
        let request = request.into_inner();
        self.replica.linearizable_barrier().await?;
        let version = super::downgrade::answer(request.action, &request.version)?;
        Ok(GrpcResponse::new(pb::DowngradeResponse {
            header: current(&self.replica),
            version,
        }))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_stream_counts_down_and_ends_with_sha256() {
        let data = Bytes::from((0..100u8).collect::<Vec<u8>>());
        let chunks = snapshot_chunks(&data, 32, None);
        assert_eq!(chunks.len(), 5);
        let remaining: Vec<u64> = chunks.iter().map(|c| c.remaining_bytes).collect();
        assert_eq!(remaining, vec![68, 36, 4, 0, 0]);
        let body: Vec<u8> = chunks[..4].iter().flat_map(|c| c.blob.to_vec()).collect();
        assert_eq!(body, data.to_vec());
        assert_eq!(chunks[4].blob.to_vec(), Sha256::digest(&data).to_vec());
        assert!(chunks.iter().all(|c| c.version == ETCD_VERSION));
    }

    #[test]
    fn padded_snapshots_have_etcdctls_size() {
        let padded = pad_snapshot(Bytes::from(vec![1u8; 1300]));
        assert_eq!(padded.len(), 1536);
        assert_eq!(&padded[..1300], &[1u8; 1300][..]);
        assert!(padded[1300..].iter().all(|b| *b == 0));
        let exact = Bytes::from(vec![2u8; 1024]);
        assert_eq!(pad_snapshot(exact.clone()), exact);
        let chunks = snapshot_chunks(&padded, 32 * 1024, None);
        let total: usize = chunks.iter().map(|c| c.blob.len()).sum();
        assert_eq!(total % 512, 32, "etcdctl's hasChecksum");
    }

    #[test]
    fn the_snapshot_body_is_an_etcd_bbolt_database() {
        use keel_kernel::apply::{StateMachine, StateMachineConfig};
        use keel_kernel::membership::Cluster;
        let keel = StateMachine::new(StateMachineConfig::new(1000), Cluster::empty(3)).snapshot();
        let body = etcd_snapshot_body(&keel).unwrap();
        assert_eq!(body.len() % 4096, 0);
        assert_eq!(
            keel_snapshot::format::detect(&body).unwrap(),
            keel_snapshot::SnapshotFormat::Etcd
        );
        let status = keel_snapshot::status_of(&body).unwrap();
        assert_eq!(status.total_size_bytes, body.len() as u64);
        let refused = etcd_snapshot_body(b"not a keel snapshot").unwrap_err();
        assert_eq!(refused.code(), tonic::Code::Internal);
    }

    #[tokio::test]
    async fn a_body_built_from_a_clone_equals_the_one_built_from_the_encoding() {
        use keel_kernel::apply::StateMachineConfig;
        use keel_kernel::membership::Cluster;
        use keel_kernel::raft::{Entry, EntryType};
        let mut state = StateMachine::new(StateMachineConfig::new(1000), Cluster::empty(3));
        for index in 1..=50u64 {
            let put = Request::Put(keel_kernel::mvcc::PutRequest {
                key: format!("k{index}").into_bytes(),
                value: vec![b'v'; 100],
                ..keel_kernel::mvcc::PutRequest::default()
            });
            let envelope = keel_kernel::apply::RequestEnvelope {
                id: index,
                auth: None,
                request: put,
            };
            let entry_type = EntryType::Normal;
            let data = envelope.encode().unwrap();
            state.apply(&Entry {
                term: 1,
                index,
                entry_type,
                data,
            });
        }
        assert_eq!(state.store().key_count(), 50, "the puts were applied");
        let expected = etcd_snapshot_body(&state.snapshot()).unwrap();
        assert_eq!(etcd_snapshot_body_of(state).await.unwrap(), expected);
    }

    #[test]
    fn empty_snapshot_is_just_the_checksum() {
        let chunks = snapshot_chunks(&Bytes::new(), 0, None);
        assert_eq!(chunks.len(), 1);
        assert_eq!(chunks[0].blob.len(), 32);
    }
}
