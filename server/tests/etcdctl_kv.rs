//! etcdctl KV sessions (put, get and its options, del, txn -i) played against
//! a fresh real etcd and a fresh keel; the printed output must match after
//! the normalisation in `support::normalize`.
#![cfg(not(madsim))]
#![allow(clippy::unwrap_used)] // tests may unwrap

mod support;

use support::session::{Session, assert_same_as_etcd};

/// Four keys written in a known order, so revisions are the same on both.
fn seed_keys(s: &mut Session) {
    s.run("put a 1")
        .run("put b 2")
        .run("put ab 3")
        .run("put c 4");
    s.run("put a 5");
}

#[test]
fn put_and_get_with_options() {
    let mut s = Session::new();
    seed_keys(&mut s);
    s.run("get a").run("get a --prefix").run("get a c");
    s.run("get --from-key b").run("get nothing");
    s.run("get a --prefix --limit=2");
    s.run_args(&["get", "", "--prefix", "--keys-only"]);
    // `--count-only` came with etcdctl 3.5; Debian's etcdctl 3.4 rejects it,
    // so counts are checked through `-w json` (which prints "count").
    s.run_args(&["get", "", "--prefix", "--limit=1", "-w", "json"]);
    s.run("get a --rev=2")
        .run("get a --rev=1")
        .run("get a --rev=100");
    s.run("get a --prefix --print-value-only");
    s.run("get a -w json")
        .run("get a --prefix --limit=1 -w json");
    s.run("get a --consistency=s");
    s.run("put a 6 --prev-kv").run("put fresh 1 --prev-kv");
    s.run_args(&["put", "spaced", "a value with spaces"]);
    s.run("get spaced -w fields");
    s.run_args(&["put", "", "no-key"]);
    assert_same_as_etcd("put_and_get_with_options", &s, 1);
}

#[test]
fn get_sorted() {
    let mut s = Session::new();
    seed_keys(&mut s);
    s.run("put b 9");
    for target in ["KEY", "CREATE", "MODIFY", "VALUE", "VERSION"] {
        for order in ["ASCEND", "DESCEND"] {
            s.run_args(&[
                "get",
                "",
                "--prefix",
                &format!("--sort-by={target}"),
                &format!("--order={order}"),
            ]);
        }
    }
    s.run_args(&["get", "", "--from-key", "--order=DESCEND", "--limit=2"]);
    assert_same_as_etcd("get_sorted", &s, 1);
}

#[test]
fn delete_with_options() {
    let mut s = Session::new();
    seed_keys(&mut s);
    s.run("del a").run("del a").run("del b --prev-kv");
    s.run("put k1 x").run("put k2 y").run("put k3 z");
    s.run("del k --prefix --prev-kv");
    s.run("del ab c").run("get c");
    s.run("put z 1").run("del z --prev-kv -w json");
    s.run_args(&["del", "", "--from-key"]);
    s.run_args(&["get", "", "--prefix"]);
    assert_same_as_etcd("delete_with_options", &s, 1);
}

#[test]
fn interactive_txn() {
    let mut s = Session::new();
    seed_keys(&mut s);
    // Compares hold: success branch.
    s.run_stdin(
        "txn -i",
        "value(\"a\") = \"5\"\nversion(\"b\") = \"1\"\n\nput a 7\nget b\ndel c\n\nput a no\n\n",
    );
    // A compare fails: failure branch.
    s.run_stdin(
        "txn -i",
        "mod(\"a\") < \"3\"\n\nput a never\n\nget a\nput failed yes\n\n",
    );
    s.run_stdin(
        "txn -i",
        "create(\"missing\") = \"0\"\n\nput missing now\n\n\n",
    );
    s.run_stdin(
        "txn -i -w json",
        "value(\"a\") > \"1\"\n\nget a --prefix\n\n\n",
    );
    s.run_stdin("txn -i", "\nput empty-compare ok\n\n\n");
    s.run("get --from-key a");
    assert_same_as_etcd("interactive_txn", &s, 1);
}
