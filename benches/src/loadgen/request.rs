//! One request of a closed-loop workload (`put`, `range`, `txn-put`,
//! `txn-mixed`, `lease-keepalive`): what request number `n` sends, issued
//! and timed on one client.

use std::time::{Duration, Instant};

use anyhow::{Result, anyhow};
use etcd_client::{Client, GetOptions, LeaseKeepAliveStream, LeaseKeeper, Txn, TxnOp};

use super::keys::KeyGen;
use crate::mix;

/// Kind label of the requests of every workload but `txn-mixed`.
pub const LABEL_REQUESTS: usize = 0;
/// `txn-mixed`'s read transactions.
pub const LABEL_READ: usize = 0;
/// `txn-mixed`'s write transactions.
pub const LABEL_WRITE: usize = 1;
/// TTL of the leases `lease-keepalive` grants (etcd's tool: 100 s).
pub const LEASE_TTL_SECS: i64 = 100;

/// What a closed-loop workload sends.
#[derive(Clone, Debug)]
pub enum Workload {
    /// `put`: one key from `keys`, `value`.
    Put {
        /// Key of request `n`.
        keys: KeyGen,
        /// Every put's value.
        value: Vec<u8>,
    },
    /// `range`: a read of `key` (to `end` when given).
    Range {
        /// First key.
        key: Vec<u8>,
        /// End of the range (exclusive).
        end: Option<Vec<u8>>,
        /// Serializable instead of linearizable.
        serializable: bool,
    },
    /// A read of one key from `keys` that must exist: a response without
    /// the key counts as a failed request (`scale` reads back what it
    /// loaded).
    GetExisting {
        /// Key of request `n`.
        keys: KeyGen,
        /// Serializable instead of linearizable.
        serializable: bool,
    },
    /// `txn-put`: transactions of `ops_per_txn` puts.
    TxnPut {
        /// Keys of the puts (request `n`'s `j`-th put uses `n * ops + j`).
        keys: KeyGen,
        /// Every put's value.
        value: Vec<u8>,
        /// Puts per transaction.
        ops_per_txn: usize,
    },
    /// `txn-mixed`: a read transaction of `key..end` with probability
    /// `rw_ratio / (rw_ratio + 1)`, else a write transaction of one put.
    TxnMixed {
        /// Keys of the puts.
        keys: KeyGen,
        /// Every put's value.
        value: Vec<u8>,
        /// First key read.
        key: Vec<u8>,
        /// End of the reads' range (exclusive).
        end: Option<Vec<u8>>,
        /// Most keys a read returns.
        limit: i64,
        /// Serializable reads.
        serializable: bool,
        /// Reads per write.
        rw_ratio: f64,
    },
    /// `lease-keepalive`: keep-alives of one lease per client.
    LeaseKeepalive,
    /// The puts of `watch` and `watch-latency`: request `n` puts
    /// `keys[n % keys.len()]` with a `value_size_bytes` value that starts
    /// with its send time (see [`stamp`]).
    PutStamped {
        /// Keys put in turn (not empty).
        keys: Vec<Vec<u8>>,
        /// Bytes of each value (at least 8).
        value_size_bytes: usize,
        /// The clock the stamps count from.
        base: Instant,
    },
}

/// A value of `size_bytes` (at least 8) whose first 8 bytes are the
/// nanoseconds from `base` to now, big-endian: a watcher receiving it knows
/// when it was sent.
pub fn stamp(base: Instant, size_bytes: usize) -> Vec<u8> {
    let ns = u64::try_from(base.elapsed().as_nanos()).unwrap_or(u64::MAX);
    let mut value = vec![b'w'; size_bytes.max(8)];
    value[..8].copy_from_slice(&ns.to_be_bytes());
    value
}

/// The time from the stamp in `value` (see [`stamp`]) to now, or `None`
/// when `value` carries no stamp.
pub fn since_stamp(base: Instant, value: &[u8]) -> Option<Duration> {
    let bytes: [u8; 8] = value.get(..8)?.try_into().ok()?;
    let sent = Duration::from_nanos(u64::from_be_bytes(bytes));
    Some(base.elapsed().saturating_sub(sent))
}

impl Workload {
    /// Labels of the kinds of request this workload reports.
    pub fn labels(&self) -> Vec<String> {
        match self {
            Workload::TxnMixed { .. } => vec!["Read".to_string(), "Write".to_string()],
            _ => vec!["Requests".to_string()],
        }
    }
}

/// A client ready to send one workload's requests.
pub struct Session {
    client: Client,
    lease: Option<(i64, LeaseKeeper, LeaseKeepAliveStream)>,
}

/// One request's outcome: its kind label and latency, or an error message.
pub type Outcome = (usize, Result<Duration, String>);

impl Session {
    /// Prepares `client` for `workload`: `lease-keepalive` grants a lease
    /// and opens a keep-alive stream (etcd's tool grants per client too).
    pub async fn start(mut client: Client, workload: &Workload) -> Result<Session> {
        let lease = match workload {
            Workload::LeaseKeepalive => {
                let id = client.lease_grant(LEASE_TTL_SECS, None).await?.id();
                let (keeper, stream) = client.lease_keep_alive(id).await?;
                Some((id, keeper, stream))
            }
            _ => None,
        };
        Ok(Session { client, lease })
    }

    /// Sends request `n` of `workload` and times it (the request is built
    /// before the clock starts).
    pub async fn issue(&mut self, workload: &Workload, n: u64) -> Outcome {
        let (label, request) = build(workload, n);
        let start = Instant::now();
        let result = self.send(request).await;
        (
            label,
            result.map(|()| start.elapsed()).map_err(|e| e.to_string()),
        )
    }

    async fn send(&mut self, request: Request) -> Result<()> {
        match request {
            Request::Put(key, value) => self.client.put(key, value, None).await.map(|_| ())?,
            Request::Get(key, options) => self.client.get(key, Some(options)).await.map(|_| ())?,
            Request::GetExisting(key, options) => {
                // One message for every missing key, so they count as one kind.
                let response = self.client.get(key, Some(options)).await?;
                if response.kvs().is_empty() {
                    return Err(anyhow!("key not found"));
                }
            }
            Request::Txn(txn) => self.client.txn(txn).await.map(|_| ())?,
            Request::KeepAlive => {
                let (_, keeper, stream) = self
                    .lease
                    .as_mut()
                    .ok_or_else(|| anyhow!("no lease granted"))?;
                keeper.keep_alive().await?;
                match stream.message().await? {
                    Some(response) if response.ttl() > 0 => {}
                    Some(_) => return Err(anyhow!("lease expired")),
                    None => return Err(anyhow!("keep-alive stream closed")),
                }
            }
        }
        Ok(())
    }
}

/// A request, built.
enum Request {
    Put(Vec<u8>, Vec<u8>),
    Get(Vec<u8>, GetOptions),
    GetExisting(Vec<u8>, GetOptions),
    Txn(Txn),
    KeepAlive,
}

/// Request `n` of `workload` and its kind label.
fn build(workload: &Workload, n: u64) -> (usize, Request) {
    match workload {
        Workload::Put { keys, value } => (LABEL_REQUESTS, Request::Put(keys.key(n), value.clone())),
        Workload::Range {
            key,
            end,
            serializable,
        } => (
            LABEL_REQUESTS,
            Request::Get(key.clone(), get_options(end, *serializable, 0)),
        ),
        Workload::GetExisting { keys, serializable } => (
            LABEL_REQUESTS,
            Request::GetExisting(keys.key(n), get_options(&None, *serializable, 0)),
        ),
        Workload::TxnPut {
            keys,
            value,
            ops_per_txn,
        } => {
            let ops = (0..*ops_per_txn as u64)
                .map(|j| TxnOp::put(keys.key(n * *ops_per_txn as u64 + j), value.clone(), None))
                .collect::<Vec<_>>();
            (LABEL_REQUESTS, Request::Txn(Txn::new().and_then(ops)))
        }
        Workload::TxnMixed {
            keys,
            value,
            key,
            end,
            limit,
            serializable,
            rw_ratio,
        } => {
            // A fixed pseudo-random draw in [0, 1): read with probability
            // rw_ratio / (rw_ratio + 1), as etcd's `rand.Float64() < ratio/(ratio+1)`.
            let draw = (mix(n ^ 0x5eed) >> 11) as f64 / (1u64 << 53) as f64;
            if draw < rw_ratio / (rw_ratio + 1.0) {
                let get = TxnOp::get(key.clone(), Some(get_options(end, *serializable, *limit)));
                (LABEL_READ, Request::Txn(Txn::new().and_then([get])))
            } else {
                let put = TxnOp::put(keys.key(n), value.clone(), None);
                (LABEL_WRITE, Request::Txn(Txn::new().and_then([put])))
            }
        }
        Workload::LeaseKeepalive => (LABEL_REQUESTS, Request::KeepAlive),
        Workload::PutStamped {
            keys,
            value_size_bytes,
            base,
        } => {
            let key = keys
                .get((n % keys.len().max(1) as u64) as usize)
                .cloned()
                .unwrap_or_default();
            (
                LABEL_REQUESTS,
                Request::Put(key, stamp(*base, *value_size_bytes)),
            )
        }
    }
}

/// Range options: `end`, serializable, `limit` (0: none).
fn get_options(end: &Option<Vec<u8>>, serializable: bool, limit: i64) -> GetOptions {
    let mut options = GetOptions::new();
    if let Some(end) = end {
        options = options.with_range(end.clone());
    }
    if serializable {
        options = options.with_serializable();
    }
    if limit > 0 {
        options = options.with_limit(limit);
    }
    options
}
