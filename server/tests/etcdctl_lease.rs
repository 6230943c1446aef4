//! etcdctl lease sessions (grant, put --lease, timetolive --keys, keep-alive
//! --once, list, revoke, expiry) against a fresh real etcd and a fresh keel.
#![cfg(not(madsim))]
#![allow(clippy::unwrap_used)] // tests may unwrap

mod support;

use std::time::Duration;

use support::normalize::Norm;
use support::session::{Session, assert_same_as_etcd};

/// Time between granting a lease and asking its remaining TTL.
const TTL_COUNTDOWN_PAUSE: Duration = Duration::from_millis(2_500);

#[test]
fn lease_lifecycle() {
    assert_same_as_etcd("lease_lifecycle", &lifecycle(), 1);
}

/// Through every endpoint of a 3-member cluster (etcdctl balances over
/// them, so followers forward keep-alives and time-to-live to the leader).
#[test]
fn lease_lifecycle_three_members() {
    assert_same_as_etcd("lease_lifecycle_three_members", &lifecycle(), 3);
}

fn lifecycle() -> Session {
    let mut s = Session::new();
    s.run("lease grant 60").run("lease grant 100");
    s.run("put k1 v1 --lease={lease1}")
        .run("put k2 v2 --lease={lease1}");
    s.run("put k3 v3 --lease={lease2}");
    s.run("get k1 -w json");
    // Long enough for the remaining TTL to have surely counted down (the
    // normaliser hides it only if it did, by about the time that passed).
    s.pause(TTL_COUNTDOWN_PAUSE);
    s.run("lease timetolive {lease1}");
    s.run("lease timetolive {lease1} --keys");
    s.run("lease keep-alive --once {lease1}");
    // The streaming keep-alive renews at once, then every TTL/3.
    s.background("keeper", "lease keep-alive {lease2}");
    s.collect("keeper", 1);
    s.run_norm("lease list", Norm::SortLines);
    s.run("lease revoke {lease1}");
    s.run("get k --prefix");
    s.run("lease timetolive {lease1}");
    s.run("lease revoke {lease1}");
    s.run("lease keep-alive --once {lease1}");
    s.run("put k4 v4 --lease=1234abcd");
    s.run("lease grant 30 -w json");
    s.run_norm("lease list", Norm::SortLines);
    s
}

#[test]
fn lease_expiry_deletes_keys() {
    let mut s = Session::new();
    s.run("lease grant 2");
    s.run("put short v --lease={lease1}").run("get short");
    s.watch("expiry", "watch short --rev=1");
    s.pause(Duration::from_secs(6));
    s.run("get short").run("lease timetolive {lease1}");
    s.collect("expiry", 6);
    assert_same_as_etcd("lease_expiry_deletes_keys", &s, 1);
}
