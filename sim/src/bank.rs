//! The bank workload: multi-key transactions. A few account keys start
//! with [`INITIAL_BALANCE`] each (one txn creates them all, guarded by
//! `create_revision(acct0) == 0`); clients move money between two accounts
//! in one txn guarded by both accounts' `mod_revision` compares (the
//! values they read), and read every account in one read-only txn
//! (linearizable). [`check_bank`] holds every read to the invariants a
//! serializable store keeps: all accounts or none exist, no balance is
//! negative, and the balances sum to `ACCOUNTS * INITIAL_BALANCE`.
//!
//! The transfers are not fed to the register linearizability checker: its
//! model compares values, while a transfer compares `mod_revision`s, so a
//! transfer that failed because an account was written back to the same
//! balance (ABA) would look to the model like a compare-and-set that must
//! have succeeded.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use keel_server::proto::etcdserverpb::kv_client::KvClient;
use keel_server::proto::etcdserverpb::{
    Compare, PutRequest, RangeRequest, RequestOp, TxnRequest, compare, request_op, response_op,
};
use madsim::rand::Rng;

use crate::NodeAddr;
use crate::rpc::{bytes_of, random_member, sleep_ms, within};

/// Accounts `acct0..acct{ACCOUNTS}`.
pub const ACCOUNTS: usize = 3;
/// Each account's balance when the bank opens.
pub const INITIAL_BALANCE: u64 = 100;
/// Per-request timeout of the bank clients.
const REQUEST_TIMEOUT_MS: u64 = 1_000;
/// Most reads the bank log keeps; clients stop recording past it.
pub const BANK_READS_MAX: usize = 5_000;

/// One answered read of every account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BankRead {
    /// The revision the read saw (its response header's).
    pub revision: i64,
    /// Each account's balance, `None` if the key did not exist.
    pub balances: Vec<Option<u64>>,
}

/// What the bank clients saw: every answered read, and the transfers by
/// outcome.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BankLog {
    /// Answered reads, in completion order.
    pub reads: Vec<BankRead>,
    /// Transfers whose compares held (applied).
    pub transfers_applied: u64,
    /// Transfers whose compares failed (a concurrent transfer won).
    pub transfers_refused: u64,
    /// Transfers without an answer (may or may not have applied).
    pub transfers_unknown: u64,
}

/// The bank log as the run shares it.
pub type SharedBankLog = Arc<Mutex<BankLog>>;

fn lock(log: &SharedBankLog) -> std::sync::MutexGuard<'_, BankLog> {
    log.lock().unwrap_or_else(PoisonError::into_inner)
}

fn account(index: usize) -> String {
    format!("acct{index}")
}

/// An account as read: its balance (`None`: absent) and `mod_revision`.
type Account = (Option<u64>, i64);

/// A bank client through random members of `members` until `stop`:
/// opens the bank if it is not open, then reads all accounts and, two
/// times in three, moves a random amount between two of them.
pub async fn bank_client(members: u8, bank: SharedBankLog, stop: Arc<AtomicBool>) {
    while !stop.load(Ordering::Relaxed) {
        match read_all(random_member(members)).await {
            Some((revision, accounts)) => {
                let balances: Vec<Option<u64>> = accounts.iter().map(|a| a.0).collect();
                let absent = balances.iter().all(Option::is_none);
                {
                    let mut log = lock(&bank);
                    if log.reads.len() >= BANK_READS_MAX {
                        return;
                    }
                    log.reads.push(BankRead { revision, balances });
                }
                if absent {
                    let _ = open(random_member(members)).await;
                } else if madsim::rand::thread_rng().gen_range(0..3) < 2 {
                    transfer(random_member(members), &accounts, &bank).await;
                }
            }
            None => sleep_ms(50).await,
        }
        sleep_ms(20).await;
    }
}

fn range_op(key: &str) -> RequestOp {
    RequestOp {
        request: Some(request_op::Request::RequestRange(RangeRequest {
            key: bytes_of(key),
            ..RangeRequest::default()
        })),
    }
}

fn put_op(key: &str, balance: u64) -> RequestOp {
    RequestOp {
        request: Some(request_op::Request::RequestPut(PutRequest {
            key: bytes_of(key),
            value: bytes_of(&balance.to_string()),
            ..PutRequest::default()
        })),
    }
}

fn compare_revision(
    key: &str,
    target: compare::CompareTarget,
    union: compare::TargetUnion,
) -> Compare {
    Compare {
        result: compare::CompareResult::Equal as i32,
        target: target as i32,
        key: bytes_of(key),
        target_union: Some(union),
        ..Compare::default()
    }
}

async fn txn(
    member: u8,
    request: TxnRequest,
) -> Option<keel_server::proto::etcdserverpb::TxnResponse> {
    within(REQUEST_TIMEOUT_MS, async {
        let url = NodeAddr::member(member).client_url();
        let mut client = KvClient::connect(url).await.ok()?;
        client.txn(request).await.ok().map(|r| r.into_inner())
    })
    .await
}

/// Every account in one read-only txn through `member`: the revision and
/// each account's balance and `mod_revision`. Balances that are not
/// numbers read as `u64::MAX` (the check then fails on the sum).
async fn read_all(member: u8) -> Option<(i64, Vec<Account>)> {
    let request = TxnRequest {
        compare: vec![],
        success: (0..ACCOUNTS).map(|i| range_op(&account(i))).collect(),
        failure: vec![],
    };
    let response = txn(member, request).await?;
    let revision = response.header.map(|h| h.revision)?;
    let accounts = response
        .responses
        .iter()
        .map(|op| match &op.response {
            Some(response_op::Response::ResponseRange(range)) => match range.kvs.first() {
                Some(kv) => {
                    let balance = std::str::from_utf8(&kv.value)
                        .ok()
                        .and_then(|text| text.parse().ok())
                        .unwrap_or(u64::MAX);
                    (Some(balance), kv.mod_revision)
                }
                None => (None, 0),
            },
            _ => (Some(u64::MAX), 0),
        })
        .collect::<Vec<Account>>();
    (accounts.len() == ACCOUNTS).then_some((revision, accounts))
}

/// Creates every account with [`INITIAL_BALANCE`] unless `acct0` exists.
async fn open(member: u8) -> Option<bool> {
    let request = TxnRequest {
        compare: vec![compare_revision(
            &account(0),
            compare::CompareTarget::Create,
            compare::TargetUnion::CreateRevision(0),
        )],
        success: (0..ACCOUNTS)
            .map(|i| put_op(&account(i), INITIAL_BALANCE))
            .collect(),
        failure: vec![],
    };
    txn(member, request).await.map(|r| r.succeeded)
}

/// Moves a random amount from one account to another, as read in
/// `accounts`, guarded by both accounts' `mod_revision`s.
async fn transfer(member: u8, accounts: &[Account], bank: &SharedBankLog) {
    let (from, to, amount) = {
        let mut rng = madsim::rand::thread_rng();
        let from = rng.gen_range(0..ACCOUNTS);
        let to = (from + rng.gen_range(1..ACCOUNTS)) % ACCOUNTS;
        let available = accounts[from].0.unwrap_or(0).min(INITIAL_BALANCE);
        (from, to, rng.gen_range(0..=available))
    };
    let (Some(from_balance), Some(to_balance)) = (accounts[from].0, accounts[to].0) else {
        return;
    };
    let (Some(from_left), Some(to_now)) = (
        from_balance.checked_sub(amount),
        to_balance.checked_add(amount),
    ) else {
        return;
    };
    let guard = |i: usize| {
        compare_revision(
            &account(i),
            compare::CompareTarget::Mod,
            compare::TargetUnion::ModRevision(accounts[i].1),
        )
    };
    let request = TxnRequest {
        compare: vec![guard(from), guard(to)],
        success: vec![
            put_op(&account(from), from_left),
            put_op(&account(to), to_now),
        ],
        failure: vec![],
    };
    let outcome = txn(member, request).await;
    let mut log = lock(bank);
    match outcome {
        Some(response) if response.succeeded => log.transfers_applied += 1,
        Some(_) => log.transfers_refused += 1,
        None => log.transfers_unknown += 1,
    }
}

/// Most bank violations a report lists.
const BANK_VIOLATIONS_SHOWN: usize = 5;

/// Checks every read of `log`: all accounts exist or none does (the
/// opening txn is atomic), once a read saw them every later-answered read
/// sees them (accounts are never deleted; reads are linearizable), and the
/// balances sum to `ACCOUNTS * INITIAL_BALANCE` (each transfer moves money
/// atomically). Returns the failures, at most a few listed.
pub fn check_bank(log: &BankLog) -> Vec<String> {
    let total = ACCOUNTS as u64 * INITIAL_BALANCE;
    let mut violations = Vec::new();
    let mut opened_at: Option<i64> = None;
    for read in &log.reads {
        let present = read.balances.iter().filter(|b| b.is_some()).count();
        if present == 0 {
            if let Some(revision) = opened_at {
                violations.push(format!(
                    "bank: a read at revision {} found no accounts after a read at revision {revision} found them",
                    read.revision
                ));
            }
            continue;
        }
        opened_at.get_or_insert(read.revision);
        let sum = read
            .balances
            .iter()
            .try_fold(0u64, |sum, b| sum.checked_add(b.unwrap_or(0)));
        if present != ACCOUNTS || sum != Some(total) {
            violations.push(format!(
                "bank: a read at revision {} saw balances {:?}: not all {ACCOUNTS} accounts summing to {total}",
                read.revision, read.balances
            ));
        }
    }
    let count = violations.len();
    violations.truncate(BANK_VIOLATIONS_SHOWN);
    if count > BANK_VIOLATIONS_SHOWN {
        violations.push(format!("bank: {count} violations in all"));
    }
    violations
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(revision: i64, balances: &[Option<u64>]) -> BankRead {
        BankRead {
            revision,
            balances: balances.to_vec(),
        }
    }

    #[test]
    fn reads_that_lose_money_or_accounts_fail_the_check() {
        let mut log = BankLog::default();
        log.reads.push(read(1, &[None, None, None]));
        log.reads.push(read(5, &[Some(100), Some(100), Some(100)]));
        log.reads.push(read(6, &[Some(50), Some(150), Some(100)]));
        assert!(check_bank(&log).is_empty());
        log.reads.push(read(7, &[Some(50), Some(100), Some(100)]));
        log.reads.push(read(8, &[None, None, None]));
        log.reads.push(read(9, &[Some(100), None, Some(100)]));
        let failures = check_bank(&log);
        assert_eq!(failures.len(), 3, "{failures:?}");
        assert!(failures[1].contains("found no accounts"));
    }
}
