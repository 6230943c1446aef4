//! etcdctl watch sessions (run in the background, bounded, output collected)
//! against a fresh real etcd and a fresh keel; the printed events must match.
#![cfg(not(madsim))]
#![allow(clippy::unwrap_used)] // tests may unwrap

mod support;

use support::session::{Session, assert_same_as_etcd};

#[test]
fn watch_history_with_rev() {
    let mut s = Session::new();
    s.run("put w/a 1").run("put w/b 2").run("put other 3");
    s.run("del w/a").run("put w/b 4");
    // etcdctl prints three lines per event: type, key, value.
    s.watch("prefix", "watch --prefix w/ --rev=1");
    s.collect("prefix", 12);
    s.watch("key", "watch w/b --rev=3 --prev-kv");
    s.collect("key", 6);
    s.watch("range", "watch w/a w/c --rev=4");
    s.collect("range", 6);
    assert_same_as_etcd("watch_history_with_rev", &s, 1);
}

#[test]
fn watch_live_changes() {
    assert_same_as_etcd("watch_live_changes", &live_changes(), 1);
}

#[test]
fn watch_live_changes_three_members() {
    assert_same_as_etcd("watch_live_changes_three_members", &live_changes(), 3);
}

fn live_changes() -> Session {
    let mut s = Session::new();
    s.run("put before 0");
    s.watch("live", "watch --prefix live/");
    s.run("put live/1 one")
        .run("put elsewhere x")
        .run("del live/1");
    s.run_stdin("txn -i", "\nput live/2 two\nput live/3 three\n\n\n");
    s.run("del live/ --prefix");
    s.collect("live", 18);
    s
}
