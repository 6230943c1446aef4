//! keelctl against etcdctl 3.4: the same commands, run with etcdctl
//! against one in-process keel and with keelctl against another that went
//! through the same commands, must print the same stdout and stderr and
//! exit with the same code (after normalising server IDs, URLs and lease
//! IDs; see `support::compare`).

mod support;

use support::compare::Comparison;

fn keelctl() -> &'static str {
    env!("CARGO_BIN_EXE_keelctl")
}

/// put, get (every flag and format), del, txn, compaction and watch.
#[test]
fn kv_txn_compaction_watch_match_etcdctl() {
    if !support::require_etcdctl("kv_txn_compaction_watch_match_etcdctl") {
        return;
    }
    let mut c = Comparison::start(keelctl());
    // put
    c.run("put a 1")
        .run("put b 2")
        .run("put ab 3")
        .run("put c 4")
        .run("put a 5");
    c.run("put a 6 --prev-kv").run("put fresh 1 --prev-kv");
    c.run("put a 7 --prev-kv -w fields")
        .run("put a 8 --prev-kv -w json");
    c.run_full(&["put", "spaced", "a value with spaces"], "");
    c.run_full(&["put", "piped"], "from stdin\n");
    c.run("put")
        .run("put k v --lease=zz")
        .run("put k --ignore-value v");
    c.run("put a --ignore-value").run("put a 9 -w table");
    c.run("put a 10 --lease=1234");
    // get
    c.run("get a")
        .run("get a --prefix")
        .run("get a c")
        .run("get nothing");
    c.run("get --from-key b").run("get a --prefix --limit=2");
    c.run_full(&["get", "", "--prefix", "--keys-only"], "");
    c.run_full(&["get", "", "--prefix", "-w", "json"], "");
    c.run_full(&["get", "", "--from-key", "-w", "fields"], "");
    c.run("get a --rev=2")
        .run("get a --rev=1")
        .run("get a --rev=100");
    c.run("get a --prefix --print-value-only")
        .run("get a --print-value-only -w json");
    c.run("get a -w json")
        .run("get a -w fields")
        .run("get a -w table")
        .run("get a -w bogus");
    c.run("get a --consistency=s").run("get a --consistency=x");
    c.run("get a --hex").run("get spaced -w fields");
    c.run("get")
        .run("get a --prefix --from-key")
        .run("get a b --prefix");
    for target in ["KEY", "CREATE", "MODIFY", "VALUE", "VERSION", "bogus"] {
        for order in ["ASCEND", "DESCEND"] {
            c.run_full(
                &[
                    "get",
                    "",
                    "--prefix",
                    &format!("--sort-by={target}"),
                    &format!("--order={order}"),
                ],
                "",
            );
        }
    }
    c.run_full(
        &["get", "", "--from-key", "--order=DESCEND", "--limit=2"],
        "",
    );
    c.run("get a --order=sideways");
    // txn
    let txn = "value(\"a\") = \"8\"\n\nput x 1 --prev-kv\nget a\ndel nope\n\nget b\n\n";
    c.run_stdin("txn", txn)
        .run_stdin("txn -w json", txn)
        .run_stdin("txn -w fields", txn);
    c.run_stdin(
        "txn -i",
        "mod(\"x\") > \"0\"\nver(\"b\") = \"1\"\n\nput x 2\n\n\n",
    );
    c.run_stdin("txn", "create(\"nope\") = \"0\"\n\nget x\n\n\n");
    c.run_stdin("txn", "value(\"a\") = \"8\"\n\nput x \"a b\"\n\n\n");
    c.run_stdin("txn", "bogus(\"a\") = \"1\"\n\n\n\n");
    c.run_stdin("txn", "ver(\"a\") = \"x\"\n\n\n\n");
    c.run_stdin("txn", "value a = b\n\n\n\n");
    c.run_stdin("txn", "\nfrob x\n\n\n");
    c.run_stdin("txn", "\nget\n\n\n");
    c.run_stdin("txn", "\nput x 3\n");
    c.run_stdin("txn extra", "\n\n\n");
    // del
    c.run("del nothing")
        .run("del b --prev-kv")
        .run("del a c")
        .run("del k --prefix --prev-kv -w json");
    c.run("put z 1")
        .run("del z --prev-kv -w fields")
        .run("del")
        .run("del a b --prefix");
    // watch from a past revision: history, then live events.
    let watch = c.background("watch a --prefix --rev=1 --prev-kv");
    c.run("put a 11").run("del a");
    c.collect(watch, 54);
    let watch = c.background("watch a --rev=2 -w json");
    c.collect(watch, 1);
    let watch = c.background("watch b --rev=2 -w fields");
    c.collect(watch, 18);
    c.run("watch").run("watch a b --prefix");
    // compaction, then reads and watches below it.
    c.run("compaction 5")
        .run("compaction 3")
        .run("compaction 6 --physical");
    c.run("compaction")
        .run("compaction x")
        .run("compaction 1000");
    c.run("get a --rev=2");
    let watch = c.background("watch a --rev=2");
    c.collect(watch, 0);
    c.assert_same("kv_txn_compaction_watch_match_etcdctl");
}

/// lease, member, endpoint, alarm, defrag and flag errors.
#[test]
fn lease_member_endpoint_match_etcdctl() {
    if !support::require_etcdctl("lease_member_endpoint_match_etcdctl") {
        return;
    }
    let mut c = Comparison::start(keelctl());
    // lease
    c.run("lease grant 100")
        .run("lease grant 200")
        .run("lease list");
    c.run("lease list -w json").run("lease list -w fields");
    c.run("put k1 v --lease={lease1}")
        .run("put k2 v --lease={lease1}");
    c.run("lease timetolive {lease1}")
        .run("lease timetolive {lease1} --keys");
    c.run("lease timetolive {lease1} --keys -w json")
        .run("lease timetolive {lease2} -w json");
    c.run("lease timetolive {lease1} --keys -w fields");
    c.run("lease keep-alive --once {lease1}")
        .run("lease keep-alive --once {lease1} -w json");
    c.run("lease keep-alive --once {lease1} -w fields");
    c.run("put k3 v --lease={lease2}")
        .run("put k3 w --ignore-lease")
        .run("get k3 -w json");
    c.run("lease revoke {lease2}")
        .run("lease revoke {lease2}")
        .run("lease timetolive {lease2}");
    c.run("lease keep-alive --once {lease2}")
        .run("lease revoke {lease1} -w json");
    c.run("get k --prefix").run("lease list");
    c.run("lease grant")
        .run("lease grant x")
        .run("lease revoke zz")
        .run("lease timetolive");
    c.run("lease keep-alive").run("lease grant 100 -w table");
    // member
    c.run("member list")
        .run("member list -w json")
        .run("member list -w fields");
    // The ID column is as wide as the member's id in hex, which differs
    // between the two servers' random ids: compare with padding collapsed.
    c.run_loose("member list -w table");
    c.run_loose("member add m2 --peer-urls=http://127.0.0.1:1 --learner");
    c.run_same("member list -w table")
        .run_same("member list")
        .run_same("member list -w json");
    c.run_same("member list -w fields");
    c.run_loose("member update {member2} --peer-urls=http://127.0.0.1:2");
    c.run_same("member list -w json");
    c.run_loose("member remove {member2}")
        .run_loose("member remove {member2}");
    // Both sides agreeing is not enough: the removal must have happened.
    let list = c.run_keelctl_only("member list");
    assert!(
        !list.stdout.contains("unstarted"),
        "the learner is still listed after member remove: {}",
        list.stdout
    );
    c.run("member add")
        .run("member add m3")
        .run("member add m3 http://x");
    c.run("member remove")
        .run("member remove zz")
        .run("member update 1");
    c.run_same("member list -w table");
    // endpoint, alarm, defrag
    c.run("endpoint health")
        .run("endpoint health -w json")
        .run("endpoint health -w fields");
    c.run("endpoint health --cluster");
    // Database size and KV hash differ between two servers: same server.
    c.run_same("endpoint status")
        .run_same("endpoint status -w json");
    c.run_same("endpoint status -w fields")
        .run_same("endpoint status -w table");
    c.run_same("endpoint status --cluster");
    c.run_same("endpoint hashkv")
        .run_same("endpoint hashkv -w json");
    c.run_same("endpoint hashkv -w table")
        .run_same("endpoint hashkv --cluster -w fields");
    c.run_same("endpoint hashkv --rev=2");
    c.run("alarm list")
        .run("alarm list -w json")
        .run("alarm disarm")
        .run("alarm list extra");
    c.run("defrag").run("defrag --cluster");
    // flag errors
    c.run_stderr("get a --bogus").run_stderr("put --nope a b");
    c.assert_same("lease_member_endpoint_match_etcdctl");
}

/// role, user, auth enable/disable and authenticated requests.
#[test]
fn auth_role_user_match_etcdctl() {
    if !support::require_etcdctl("auth_role_user_match_etcdctl") {
        return;
    }
    let mut c = Comparison::start(keelctl());
    // roles
    c.run("role add r1")
        .run("role add r1")
        .run("role add r2")
        .run("role list");
    c.run("role list -w json")
        .run("role list -w fields")
        .run("role add");
    c.run("role grant-permission r1 read a")
        .run("role grant-permission r1 readwrite b --prefix");
    c.run("role grant-permission r1 write c e")
        .run("role grant-permission r1 READ k --from-key");
    c.run_full(
        &["role", "grant-permission", "r2", "write", "", "--from-key"],
        "",
    );
    c.run("role grant-permission r1 bogus a")
        .run("role grant-permission r1 read");
    c.run("role grant-permission r1 read a b --prefix");
    c.run("role get r1")
        .run("role get r1 -w json")
        .run("role get r1 -w fields")
        .run("role get r2");
    c.run("role get nope");
    c.run("role revoke-permission r1 a")
        .run("role revoke-permission r1 b --prefix");
    c.run("role revoke-permission r1 c e")
        .run("role revoke-permission r1 k --from-key");
    c.run("role revoke-permission r1 zz")
        .run("role revoke-permission r1")
        .run("role get r1");
    // users
    c.run("user add u1:pw")
        .run("user add u1:pw")
        .run("user add u2 --new-user-password=pw2");
    c.run_stdin("user add u3 --interactive=false", "pw3\n")
        .run("user add :pw");
    c.run("user add u4 --no-password -w json")
        .run("user list")
        .run("user list -w json");
    c.run("user grant-role u1 r1")
        .run("user grant-role u1 r2")
        .run("user grant-role u1 nope");
    c.run("user get u1")
        .run("user get u1 --detail")
        .run("user get u1 -w json");
    c.run("user revoke-role u1 r2")
        .run("user revoke-role u1 r2")
        .run("user get u1");
    c.run_stdin("user passwd u2 --interactive=false", "new2\n");
    c.run("user delete u3")
        .run("user delete u3")
        .run("user get nope")
        .run("user grant-role u1");
    // authentication
    c.run("user add root:rootpw")
        .run("auth enable")
        .run("get a");
    c.run("--user=root:rootpw put a 1")
        .run("--user=root --password=rootpw get a");
    c.run("--user=u1:pw get a")
        .run("--user=u1:pw put a 2")
        .run("--user=u2:new2 get a");
    c.run("--user=root:wrong get a")
        .run("--user=nobody:x get a");
    c.run("--user=root:rootpw auth disable")
        .run("get a")
        .run("auth disable extra");
    c.run("role delete r2").run("role delete r2");
    c.assert_same("auth_role_user_match_etcdctl");
}

/// lock, elect and move-leader.
#[test]
fn lock_elect_move_leader_match_etcdctl() {
    if !support::require_etcdctl("lock_elect_move_leader_match_etcdctl") {
        return;
    }
    let mut c = Comparison::start(keelctl());
    let lock = c.background("lock lock1");
    c.collect(lock, 2);
    c.run_full(
        &[
            "lock",
            "lock2",
            "--",
            "sh",
            "-c",
            "echo held $ETCD_LOCK_KEY",
        ],
        "",
    );
    c.run("get lock1 --prefix --keys-only")
        .run("get lock2 --prefix");
    let campaign = c.background("elect elect1 p1");
    c.collect(campaign, 2);
    let observer = c.background("elect -l elect1");
    c.collect(observer, 2);
    c.run("lock")
        .run("elect")
        .run("elect x")
        .run("elect -l x p");
    c.run("move-leader")
        .run("move-leader zz")
        .run("move-leader 1");
    // snapshot save: etcdctl, then keelctl, into the same file of the same server.
    c.run_same("snapshot save snap.db")
        .run("snapshot save")
        .run("snapshot save a b");
    c.run("snapshot save missing-dir/snap.db");
    let saved = std::fs::read(c.keelctl_dir().join("snap.db")).expect("keelctl's snapshot file");
    assert!(saved.len() > 32, "snapshot of {} bytes", saved.len());
    assert!(
        !c.keelctl_dir().join("snap.db.part").exists(),
        "the .part file is left behind"
    );
    c.assert_same("lock_elect_move_leader_match_etcdctl");
}

/// snapshot status of an etcd 3.4 snapshot file prints what etcdctl
/// prints in every format; snapshot restore builds a data dir from it and
/// refuses a used one, as etcdctl does; a corrupt file is refused by both.
#[test]
fn snapshot_status_and_restore_match_etcdctl() {
    if !support::require_etcdctl("snapshot_status_and_restore_match_etcdctl") {
        return;
    }
    let mut c = Comparison::start(keelctl());
    let dir = c.keelctl_dir().to_path_buf();
    let fixture = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../snapshot/tests/data/etcd-3.4.db"
    );
    std::fs::copy(fixture, dir.join("etcd.db")).expect("copy the etcd snapshot fixture");
    std::fs::write(dir.join("garbage.db"), vec![7u8; 4096]).expect("write a corrupt file");
    for format in ["simple", "json", "table", "fields"] {
        c.run_same(&format!("snapshot status etcd.db -w {format}"));
    }
    c.run_same("snapshot status missing.db")
        .run_same("snapshot status");
    // A corrupt file: both refuse it with exit 1; the reasons differ (bbolt's
    // "file size too small" against keel-snapshot's format check).
    let garbage = std::process::Command::new(keelctl())
        .current_dir(&dir)
        .args(["snapshot", "status", "garbage.db"])
        .output()
        .expect("run keelctl snapshot status");
    assert_eq!(garbage.status.code(), Some(1));
    let reason = String::from_utf8_lossy(&garbage.stderr);
    assert!(reason.starts_with("Error: invalid database"), "{reason}");
    let restore = |data_dir: &str| {
        std::process::Command::new(keelctl())
            .current_dir(&dir)
            .args(["snapshot", "restore", "etcd.db", "--name", "m1"])
            .args(["--initial-cluster", "m1=http://127.0.0.1:2380"])
            .args(["--initial-advertise-peer-urls", "http://127.0.0.1:2380"])
            .args(["--data-dir", data_dir])
            .output()
            .expect("run keelctl snapshot restore")
    };
    let first = restore("restored");
    assert!(
        first.status.success(),
        "restore failed: {}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert!(
        dir.join("restored")
            .read_dir()
            .is_ok_and(|mut d| d.next().is_some())
    );
    let again = restore("restored");
    assert_eq!(again.status.code(), Some(1), "a used data dir is refused");
    let message = String::from_utf8_lossy(&again.stderr);
    assert!(message.starts_with("Error: "), "{message}");
    assert!(message.contains("not empty"), "{message}");
    c.assert_same("snapshot_status_and_restore_match_etcdctl");
}

/// check perf: etcdctl's refusals (an unknown load, keys already under the
/// prefix) are compared; etcdctl's own run lasts 60 s, so a 3 s keelctl run
/// against keel is checked for etcdctl's verdict lines and clean-up alone.
#[test]
fn check_perf_matches_etcdctl() {
    if !support::require_etcdctl("check_perf_matches_etcdctl") {
        return;
    }
    let mut c = Comparison::start(keelctl());
    c.run("check perf --load huge")
        .run("put /etcdctl-check-perf/x 1")
        .run("check perf")
        .run("del /etcdctl-check-perf/x");
    let run = c.run_keelctl_only("check perf --duration-secs 3 --auto-compact");
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), 4, "four verdict lines: {}", run.stdout);
    assert!(
        lines[0].starts_with("PASS: Throughput is "),
        "{}",
        run.stdout
    );
    assert!(
        lines[1].starts_with("PASS: Slowest request took "),
        "{}",
        run.stdout
    );
    assert!(lines[2].starts_with("PASS: Stddev is "), "{}", run.stdout);
    assert_eq!(lines[3], "PASS");
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let left = c.run_keelctl_only("get /etcdctl-check-perf/ --prefix --count-only -w fields");
    assert!(left.stdout.contains("\"Count\" : 0"), "{}", left.stdout);
    c.assert_same("check_perf_matches_etcdctl");
}

/// `watch -- <exec-command>`: the command runs once per event with
/// etcdctl's `ETCD_WATCH_*` variables; a failing command ends the watch
/// with exit 1; `--` without a command is refused.
#[test]
fn watch_exec_matches_etcdctl() {
    if !support::require_etcdctl("watch_exec_matches_etcdctl") {
        return;
    }
    let mut c = Comparison::start(keelctl());
    c.run("put ex 1").run_full(&["put", "ex", "two words"], "");
    c.run("del ex");
    let show =
        "echo \"<$ETCD_WATCH_EVENT_TYPE|$ETCD_WATCH_KEY|$ETCD_WATCH_VALUE|$ETCD_WATCH_REVISION>\"";
    // One response holds the three past events: printed, then the
    // command runs three times (with the response's revision).
    let watch = c.background_full(&["watch", "ex", "--rev=1", "--", "sh", "-c", show], None);
    c.collect(watch, 12);
    let watch = c.background_full(
        &["watch", "--rev=2", "ex", "--", "sh", "-c", "exit 3"],
        None,
    );
    c.collect_exit(watch);
    let watch = c.background_full(&["watch", "ex", "--rev=2", "--", "no-such-program-x"], None);
    c.collect_exit(watch);
    c.run("watch ex --").run("watch -- echo");
    c.assert_same("watch_exec_matches_etcdctl");
}

/// `watch -i`: request lines from stdin start watches (with flags and
/// exec commands of their own), bad lines are reported and skipped, and
/// the end of input ends keelctl with exit 3, as etcdctl.
#[test]
fn watch_interactive_matches_etcdctl() {
    if !support::require_etcdctl("watch_interactive_matches_etcdctl") {
        return;
    }
    let mut c = Comparison::start(keelctl());
    c.run("put ia 1").run("put ib1 x");
    let session = "bogus line\n\nwatch\nwatch x y --prefix\nwatch ia --rev=1 --prev-kv\n";
    let watch = c.background_full(&["watch", "-i"], Some(session));
    c.run("put ia 2");
    c.collect(watch, 8);
    let session = "watch ib --prefix --rev=1 -- sh -c \"echo got $ETCD_WATCH_KEY\"\n";
    let watch = c.background_full(&["watch", "-i", "-w", "json"], Some(session));
    c.collect(watch, 2);
    c.run_stdin("watch -i", "watch ia\n")
        .run_stdin("watch -i", "")
        .run_stdin("watch -i", "watch ia --bogus\n");
    c.run_stdin("watch -i", "watch ia --\n")
        .run_stdin("watch -i", "watch --prefix\n")
        .run_stdin("watch -i", "watch ia --rev=x\n")
        .run_stdin("watch -i", "watch ia -- sh -c \"\\$X\"\n");
    c.assert_same("watch_interactive_matches_etcdctl");
}

/// Continuous `lease keep-alive`: the same first lines, and when the lease
/// is revoked under it, `lease ... expired or revoked.` and exit 0.
#[test]
fn lease_keep_alive_until_revoked_matches_etcdctl() {
    if !support::require_etcdctl("lease_keep_alive_until_revoked_matches_etcdctl") {
        return;
    }
    let mut c = Comparison::start(keelctl());
    c.run("lease grant 3").run("lease grant 3");
    let keep = c.background("lease keep-alive {lease1}");
    c.collect_ends(keep, "lease revoke {lease1}");
    let keep = c.background("lease keep-alive {lease2} -w json");
    c.collect_ends(keep, "lease revoke {lease2}");
    c.run("lease keep-alive {lease1}");
    c.assert_same("lease_keep_alive_until_revoked_matches_etcdctl");
}

/// `auth status` (etcdctl 3.5's command; Debian's etcdctl 3.4 has none):
/// keelctl's output in every format against what etcdctl 3.5's printers
/// write (etcdctl/ctlv3/command/printer_simple.go, printJSON, and the
/// unsupported fields and table printers).
#[test]
fn auth_status_prints_etcdctl_35s_format() {
    if !support::require_etcdctl("auth_status_prints_etcdctl_35s_format") {
        return;
    }
    let mut c = Comparison::start(keelctl());
    let off = c.run_keelctl_only("auth status");
    assert_eq!(
        (off.stdout.as_str(), off.code),
        ("Authentication Status: false\nAuthRevision: 1\n", Some(0)),
        "{off:?}"
    );
    // IDs are normalised to placeholders: compare the text.
    let json = c.run_keelctl_only("auth status -w json");
    assert_eq!(json.code, Some(0), "{json:?}");
    let head = "{\"header\":{\"cluster_id\":<cluster-id>,\"member_id\":<member-id>,\"revision\":";
    assert!(json.stdout.starts_with(head), "{json:?}");
    assert!(
        json.stdout.ends_with("},\"authRevision\":1}\n"),
        "enabled: false is left out: {json:?}"
    );
    for format in ["fields", "table"] {
        let out = c.run_keelctl_only(&format!("auth status -w {format}"));
        assert_eq!(
            (out.stderr.as_str(), out.code),
            (
                format!("Error: {format} not supported as output format\n").as_str(),
                Some(4)
            )
        );
    }
    let extra = c.run_keelctl_only("auth status extra");
    assert_eq!(
        (extra.stderr.as_str(), extra.code),
        (
            "Error: auth status command does not accept any arguments\n",
            Some(128)
        )
    );
    c.run("user add root:pw").run("auth enable");
    let on = c.run_keelctl_only("--user=root:pw auth status");
    assert_eq!(on.code, Some(0), "{on:?}");
    let lines: Vec<&str> = on.stdout.lines().collect();
    assert_eq!(
        lines.first(),
        Some(&"Authentication Status: true"),
        "{on:?}"
    );
    let revision: u64 = lines
        .get(1)
        .and_then(|l| l.strip_prefix("AuthRevision: "))
        .and_then(|n| n.parse().ok())
        .expect("AuthRevision line");
    assert!(revision > 1, "auth revision did not move: {on:?}");
    let json = c.run_keelctl_only("--user=root:pw auth status -w json");
    assert!(json.stdout.starts_with(head), "{json:?}");
    let tail = format!("}},\"enabled\":true,\"authRevision\":{revision}}}\n");
    assert!(json.stdout.ends_with(&tail), "{json:?}");
    let refused = c.run_keelctl_only("--user=root:wrong auth status");
    assert_ne!(refused.code, Some(0), "{refused:?}");
    c.run("--user=root:pw auth disable");
    c.assert_same("auth_status_prints_etcdctl_35s_format");
}
