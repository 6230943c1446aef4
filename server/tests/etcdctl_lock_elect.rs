//! etcdctl `lock` and `elect` with two contenders, played against a fresh
//! real etcd and a fresh keel; the transcripts must match. The first
//! contender takes the lock (or wins the election); the second queues and
//! waits on a watch for the first one's key; the first is killed (its
//! session lease expires, `--ttl 3`) or interrupted (it resigns), and the
//! second takes over. An observer (`elect -l`) sees both leaders in turn.
//! Keys carry etcdctl's session lease ids, hidden as `<session>`.
#![cfg(not(madsim))]
#![allow(clippy::unwrap_used)] // tests may unwrap

mod support;

use support::normalize::Norm;
use support::session::{Session, assert_same_as_etcd};

#[test]
fn a_second_lock_holder_takes_over_when_the_first_ones_session_expires() {
    let mut s = Session::new();
    s.background("first", "lock --ttl 3 mylock");
    s.wait_lines("first", 1);
    // Queues behind the first holder: waits on a watch of its key.
    s.watch("second", "lock --ttl 3 mylock");
    s.run_norm("get mylock --prefix --keys-only", Norm::SessionKeys);
    s.collect_norm("first", 1, Norm::SessionKeys);
    s.collect_norm("second", 1, Norm::SessionKeys);
    s.run_norm("get mylock --prefix --keys-only", Norm::SessionKeys);
    assert_same_as_etcd(
        "a_second_lock_holder_takes_over_when_the_first_ones_session_expires",
        &s,
        1,
    );
}

#[test]
fn a_second_candidate_is_elected_when_the_leader_resigns() {
    let mut s = Session::new();
    s.background("p1", "elect myelection p1");
    s.wait_lines("p1", 2);
    // Queues behind p1: waits on a watch of p1's key.
    s.watch("p2", "elect myelection p2");
    s.run_norm("get myelection --prefix", Norm::SessionKeys);
    s.background("observer", "elect -l myelection");
    s.wait_lines("observer", 2);
    // Ctrl-C: p1 resigns, p2 is elected at once.
    s.interrupt("p1");
    s.collect_norm("p1", 3, Norm::SessionKeys); // two lines, then it exits
    s.collect_norm("p2", 2, Norm::SessionKeys);
    s.collect_norm("observer", 4, Norm::SessionKeys);
    assert_same_as_etcd(
        "a_second_candidate_is_elected_when_the_leader_resigns",
        &s,
        1,
    );
}
