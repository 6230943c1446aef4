//! The differences from etcd 3.4.23 that keel makes on purpose, per
//! (principal, step), each with its reason (`docs/auth-compat.md`).

use super::steps::STEPS;
use super::world::{OTHER_PRINCIPALS, USER_PRINCIPALS};

/// Steps run once more after auth is disabled.
const AFTER_DISABLE: &str = "GetA(auth disabled)";

const NEWEST: &str = "etcd 3.6.9/3.5.28/3.4.42 tightened it; keel follows";
const HOLE_34: &str = "etcd 3.4.23 does not check it (closed in 3.6.9/3.5.28/3.4.42)";

/// Why `principal` gets a different answer for `step` than from etcd
/// 3.4.23, or `None` if it must get the same.
pub fn why(principal: &str, step: &str) -> Option<&'static str> {
    let root = principal == "root";
    let anonymous = principal == "anonymous";
    let bad_token = matches!(
        principal,
        "dave(deleted)" | "gina(password changed)" | "made-up"
    );
    let user = !root && !anonymous && !bad_token;
    let listed = match step {
        AFTER_DISABLE => !anonymous,
        "AuthStatus" => true,
        "Hash" | "HashKv" | "Defragment" | "Snapshot" | "AlarmDisarm" => !root,
        // A bad token is refused before anything else by every release.
        "Compact" | "TxnNestedPutB" => user || anonymous,
        "TxnNestedPutA" => (user || anonymous) && principal != "alice",
        "TxnPutWithLeaseB" | "WatchAFromKey" => principal == "alice",
        "TxnPutWPrevKv" => principal == "wally(write-only)",
        "LeaseTtlKeys" => !root && principal != "bob",
        "LeaseLeases" | "LeaseKeepAliveB" => !root,
        "LeaseTtlNoKeys" | "Status" | "MemberList" | "AlarmList" => anonymous || bad_token,
        "LeaseGrantRevokeOwn" => anonymous,
        _ => false,
    };
    listed.then(|| reason(step))
}

fn reason(step: &str) -> &'static str {
    match step {
        AFTER_DISABLE => {
            "tokens are ignored while auth is disabled, as in etcd 3.4.28+/3.5.10+/3.6 (PR 13577)"
        }
        "AuthStatus" => "etcd 3.4 has no AuthStatus; keel answers as 3.5/3.6 (root only)",
        "Hash" | "HashKv" | "Defragment" | "Snapshot" => {
            "etcd 3.6.9+ translates these refusals to gRPC codes; 3.4/3.5 answer Unknown"
        }
        "TxnNestedPutB" | "TxnNestedPutA" | "TxnPutWithLeaseB" | "TxnPutWPrevKv" => HOLE_34,
        "WatchAFromKey" => {
            "etcd 3.4/3.5 check a from-key watch as its first key only (watch.go empties \
             range_end before isWatchPermitted); 3.6 and keel check every key it covers"
        }
        "LeaseTtlKeys" => {
            "etcd 3.6 checks READ over the lease's keys (\"protect lease \
                           timetolive with auth\"); 3.4.23 does not"
        }
        "LeaseLeases" => {
            "etcd 3.6.9+ needs a user and, but for root, READ over every key of every \
             lease (checkLeaseLeases); no other principal may read all the leases' keys"
        }
        "LeaseKeepAliveB" => {
            "etcd 3.6.9+ needs a user and, but for root, WRITE over the lease's keys \
             (checkLeaseRenew); no one but root may write /b/lease"
        }
        _ => NEWEST,
    }
}

/// Every (principal, step) pair [`why`] lists.
pub fn listed() -> Vec<(&'static str, String)> {
    let steps = STEPS
        .iter()
        .map(|step| format!("{step:?}"))
        .chain([AFTER_DISABLE.to_string()]);
    let steps: Vec<String> = steps.collect();
    USER_PRINCIPALS
        .iter()
        .chain(&OTHER_PRINCIPALS)
        .flat_map(|p| steps.iter().map(move |s| (*p, s.clone())))
        .filter(|(p, s)| why(p, s).is_some())
        .collect()
}
