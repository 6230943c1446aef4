//! The Election service's Observe stream (etcd `concurrency.Election.
//! observe`): the current leader of an election, then every new value it
//! proclaims, then, once its key is deleted, the next leader, for as long
//! as the client listens. Without a leader the stream waits for the first
//! candidate's key.
//!
//! The stream task follows the applied-events broadcast. When it misses
//! events (a lagging stream) or the state is replaced by a leader's
//! snapshot, it reads the leader again; a leader already sent (same key and
//! modification revision) is not sent twice.

use keel_kernel::auth::AuthInfo;
use keel_kernel::mvcc::{EventType, KeyValue, SortOrder, prefix_range_end};
use tokio::sync::broadcast::Receiver;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::mpsc;
use tonic::Status;

use super::convert::key_value;
use super::header::header;
use super::lock::first_created;
use super::status::apply_error;
use super::{ResponseStream, response_stream};
use crate::proto::v3electionpb as pb;
use crate::replica::{AppliedEvents, Replica};

/// Responses an Observe stream buffers for a slow client.
pub const OBSERVE_BUFFER: usize = 16;

/// Starts the Observe stream of the election whose keys are under
/// `prefix`; returns once its first response (the current leader, or the
/// first candidate) is ready.
///
/// Errors: the first read's refusal (permission), the node stopped.
pub async fn observe<B: Replica>(
    replica: B,
    prefix: Vec<u8>,
    auth: AuthInfo,
) -> Result<ResponseStream<pb::LeaderResponse>, Status> {
    let (sender, receiver) = mpsc::channel(OBSERVE_BUFFER);
    tokio::spawn(async move {
        let observer = Observer {
            replica,
            prefix,
            auth,
            sender,
            last_sent: None,
        };
        if let Err(stop) = observer.run().await {
            // The client learns why the stream ended (if it still listens).
            stop.send_to().await;
        }
    });
    response_stream(receiver).await
}

/// Why the observer stopped: the client left, or a status to send it.
enum Stop {
    ClientGone,
    Failed(Status, mpsc::Sender<Result<pb::LeaderResponse, Status>>),
}

impl Stop {
    async fn send_to(self) {
        if let Stop::Failed(status, sender) = self {
            let _ = sender.send(Err(status)).await;
        }
    }
}

struct Observer<B> {
    replica: B,
    prefix: Vec<u8>,
    auth: AuthInfo,
    sender: mpsc::Sender<Result<pb::LeaderResponse, Status>>,
    /// `(key, mod_revision)` of the last leader value sent.
    last_sent: Option<(bytes::Bytes, i64)>,
}

/// What following the events produced.
enum Next {
    /// A value of the followed key (or the first candidate) at a revision.
    Value(KeyValue, i64),
    /// The followed key was deleted: find the next leader.
    Deleted,
    /// Events were missed or the state replaced: read again.
    Reread,
}

impl<B: Replica> Observer<B> {
    async fn run(mut self) -> Result<(), Stop> {
        loop {
            let mut events = self.replica.subscribe_events();
            let (leader, revision) = self.read_leader().await?;
            let (leader, at) = match leader {
                Some(kv) => (kv, revision),
                None => match self
                    .until_client_leaves(first_candidate(&mut events, &self.prefix, revision))
                    .await?
                {
                    Next::Value(kv, at) => (kv, at),
                    Next::Deleted | Next::Reread => continue,
                },
            };
            self.send(leader.clone(), at).await?;
            self.follow(&mut events, &leader.key, at).await?;
        }
    }

    /// The first-created key under the prefix and the read's revision.
    async fn read_leader(&self) -> Result<(Option<KeyValue>, i64), Stop> {
        let failed = |status: Status| Stop::Failed(status, self.sender.clone());
        let barrier = self.replica.linearizable_barrier().await;
        barrier.map_err(|err| failed(err.into()))?;
        let first = first_created(&self.prefix, SortOrder::Ascend, 0);
        let found = self
            .replica
            .with_state(|state| state.range(Some(&self.auth), &first))
            .map_err(|err| failed(apply_error(&err)))?;
        Ok((found.kvs.into_iter().next(), found.revision))
    }

    /// Sends every new value of `key` until it is deleted (returns) or the
    /// events are lost (returns, the caller reads again).
    async fn follow(
        &mut self,
        events: &mut Receiver<AppliedEvents>,
        key: &[u8],
        revision: i64,
    ) -> Result<(), Stop> {
        loop {
            match self
                .until_client_leaves(next_change(events, key, revision))
                .await?
            {
                Next::Value(kv, at) => self.send(kv, at).await?,
                Next::Deleted | Next::Reread => return Ok(()),
            }
        }
    }

    /// `wait`'s outcome, or [`Stop::ClientGone`] as soon as the client
    /// drops the stream (a quiet election must not keep the task alive).
    async fn until_client_leaves<T>(&self, wait: impl Future<Output = T>) -> Result<T, Stop> {
        crate::replayable_select::replayable_select! {
            value = wait => Ok(value),
            () = self.sender.closed() => Err(Stop::ClientGone),
        }
    }

    async fn send(&mut self, kv: KeyValue, revision: i64) -> Result<(), Stop> {
        let sent = (kv.key.clone(), kv.mod_revision);
        if self.last_sent.as_ref() == Some(&sent) {
            return Ok(());
        }
        let response = pb::LeaderResponse {
            header: header(&self.replica, revision),
            kv: Some(key_value(kv)),
        };
        self.sender
            .send(Ok(response))
            .await
            .map_err(|_| Stop::ClientGone)?;
        self.last_sent = Some(sent);
        Ok(())
    }
}

/// Waits for the first key put under `prefix` after `revision`.
async fn first_candidate(
    events: &mut Receiver<AppliedEvents>,
    prefix: &[u8],
    revision: i64,
) -> Next {
    let end = prefix_range_end(prefix);
    let under = |key: &[u8]| key >= prefix && (end == [0] || key < end.as_slice());
    loop {
        let applied = match received(events).await {
            Ok(applied) => applied,
            Err(next) => return next,
        };
        let put = applied.events.into_iter().find(|e| {
            e.event_type == EventType::Put && e.kv.mod_revision > revision && under(&e.kv.key)
        });
        if let Some(event) = put {
            return Next::Value(event.kv, applied.revision);
        }
    }
}

/// Waits for the next change of `key` after `revision`.
async fn next_change(events: &mut Receiver<AppliedEvents>, key: &[u8], revision: i64) -> Next {
    loop {
        let applied = match received(events).await {
            Ok(applied) => applied,
            Err(next) => return next,
        };
        let change = applied
            .events
            .into_iter()
            .find(|e| e.kv.key == key && e.kv.mod_revision > revision);
        match change {
            Some(e) if e.event_type == EventType::Delete => return Next::Deleted,
            Some(e) => return Next::Value(e.kv, applied.revision),
            None => {}
        }
    }
}

/// The next applied batch, or [`Next::Reread`] when events were missed,
/// the state was replaced, or the node stopped (the read that follows
/// reports it).
async fn received(events: &mut Receiver<AppliedEvents>) -> Result<AppliedEvents, Next> {
    match events.recv().await {
        Ok(applied) if applied.restored => Err(Next::Reread),
        Ok(applied) => Ok(applied),
        Err(RecvError::Lagged(_)) => Err(Next::Reread),
        Err(RecvError::Closed) => Err(Next::Reread),
    }
}
