//! Runtime reconfiguration with etcdctl 3.4, as etcd's runtime-reconfiguration
//! guide does it, against real etcd 3.4 and keel, compared: `member add`
//! then a member started with `--initial-cluster-state existing` and the
//! printed initial cluster joins and catches up (keel: by snapshot, its log
//! being compacted); a learner is refused promotion until it caught up;
//! `member update`; removing a follower and the leader (each stops and says
//! so in its log, the rest elect and go on); a duplicate peer URL, an unknown
//! member, promoting a voter and removing the last voter get etcd's errors.
#![cfg(not(madsim))]
#![allow(clippy::unwrap_used)] // tests may unwrap

mod support;

use std::time::{Duration, Instant};

use support::cluster::{Cluster, Flavor};
use support::{CmdOutput, Etcdctl};

/// Bound of every wait on the cluster (join, catch-up, election, exit).
const WAIT: Duration = Duration::from_secs(30);

/// Replaces what differs between two runs: URLs by member names, ids by
/// `<id>`; drops etcdctl's retry warnings; sorts the entries of
/// `ETCD_INITIAL_CLUSTER` and `member list` lines (both ordered by id).
fn normalize(cluster: &Cluster, text: &str) -> String {
    let mut text = text.to_owned();
    for m in cluster.members() {
        let peer = m.peer_url.trim_start_matches("http://");
        let client = m.client_url.trim_start_matches("http://");
        text = text.replace(peer, &format!("<peer-{}>", m.name));
        let renamed = peer.replace("127.0.0.1", "localhost");
        text = text.replace(&renamed, &format!("<peer-{}-renamed>", m.name));
        text = text.replace(client, &format!("<client-{}>", m.name));
    }
    let mut lines: Vec<String> = text
        .lines()
        .filter(|line| !line.starts_with("{\"level\""))
        .map(|line| {
            let line = line.split_whitespace().map(id_word).collect::<Vec<_>>();
            sort_initial_cluster(&line.join(" "))
        })
        .collect();
    if lines.iter().all(|l| l.split(", ").count() == 6) {
        lines.sort();
    }
    lines.join("\n")
}

fn id_word(word: &str) -> String {
    let bare = word.trim_end_matches(',');
    let hex = (12..=16).contains(&bare.len()) && bare.chars().all(|c| c.is_ascii_hexdigit());
    match hex && bare.chars().any(|c| c.is_ascii_digit()) {
        true => word.replace(bare, "<id>"),
        false => word.to_owned(),
    }
}

fn sort_initial_cluster(line: &str) -> String {
    let Some(rest) = line.strip_prefix("ETCD_INITIAL_CLUSTER=\"") else {
        return line.to_owned();
    };
    let mut entries: Vec<&str> = rest.trim_end_matches('"').split(',').collect();
    entries.sort();
    format!("ETCD_INITIAL_CLUSTER=\"{}\"", entries.join(","))
}

/// One command's outcome as the transcript shows it.
fn shown(cluster: &Cluster, out: &CmdOutput) -> String {
    let text = format!("{}{}", out.stdout, out.stderr);
    format!("{} [ok={}]", normalize(cluster, &text), out.success())
}

fn run(ctl: &Etcdctl, args: &[&str]) -> CmdOutput {
    ctl.run(args).unwrap()
}

/// Runs `args` until it succeeds or prints something without `retry_on`
/// (etcd refuses voter changes for 5 s after a member connects: "unhealthy
/// cluster"; promotion waits for the learner), bounded by [`WAIT`].
fn run_until(ctl: &Etcdctl, args: &[&str], retry_on: &str) -> CmdOutput {
    let deadline = Instant::now() + WAIT;
    loop {
        let out = run(ctl, args);
        let text = format!("{}{}", out.stdout, out.stderr);
        if out.success() || !text.contains(retry_on) || Instant::now() > deadline {
            return out;
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// Waits until `check` holds, bounded by [`WAIT`]; panics with `what`.
fn wait_for(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The value line `member add` printed for `key`.
fn env_value(out: &CmdOutput, key: &str) -> String {
    let prefix = format!("{key}=\"");
    let line = out.stdout.lines().find(|l| l.starts_with(&prefix));
    line.unwrap_or_else(|| panic!("no {key} in {out:?}"))[prefix.len()..]
        .trim_end_matches('"')
        .to_owned()
}

/// The id `member list` shows for member `name`.
fn member_id(ctl: &Etcdctl, name: &str, peer_url: &str) -> String {
    let list = run(ctl, &["member", "list"]);
    let line = list.stdout.lines().find(|l| {
        let fields: Vec<&str> = l.split(", ").collect();
        fields.get(2) == Some(&name) || fields.get(3) == Some(&peer_url)
    });
    line.unwrap_or_else(|| panic!("{name} not in {list:?}"))
        .split(", ")
        .next()
        .unwrap()
        .to_owned()
}

/// An etcdctl talking to the running members only.
fn running_etcdctl(cluster: &Cluster) -> Etcdctl {
    let running: Vec<String> = (0..cluster.members().len())
        .filter(|&i| cluster.is_running(i))
        .map(|i| cluster.members()[i].client_url.clone())
        .collect();
    Etcdctl::new(&running.join(","))
}

/// Index of the member the running members report as leader, by
/// `endpoint status` (its 5th column).
fn leader_index(cluster: &Cluster) -> usize {
    let mut found = None;
    wait_for("a leader", || {
        found = (0..cluster.members().len())
            .filter(|&i| cluster.is_running(i))
            .find(|&i| {
                let out = run(&cluster.member_etcdctl(i), &["endpoint", "status"]);
                out.stdout.split(", ").nth(4) == Some("true")
            });
        found.is_some()
    });
    found.unwrap()
}

/// Adds member `name` with `member add` (learner or voter), records what
/// etcdctl printed, starts it with the printed initial cluster.
fn add_and_start(
    cluster: &mut Cluster,
    seen: &mut Vec<String>,
    name: &str,
    learner: bool,
) -> usize {
    let i = cluster.reserve_member(name).unwrap();
    let peer = format!("--peer-urls={}", cluster.members()[i].peer_url);
    let mut args = vec!["member", "add", name, peer.as_str()];
    if learner {
        args.push("--learner");
    }
    let out = run_until(&cluster.etcdctl(), &args, "unhealthy cluster");
    seen.push(format!("member add {name}: {}", shown(cluster, &out)));
    if learner {
        let id = member_id(&cluster.etcdctl(), "", &cluster.members()[i].peer_url);
        let out = run(&cluster.etcdctl(), &["member", "promote", &id]);
        seen.push(format!("promote before start: {}", shown(cluster, &out)));
    }
    cluster
        .join(i, &env_value(&out, "ETCD_INITIAL_CLUSTER"))
        .unwrap();
    i
}

/// Waits for removed member `i` to exit; returns what the transcript shows.
fn removed_exit(cluster: &mut Cluster, i: usize) -> String {
    let status = cluster.wait_exit(i, WAIT).unwrap();
    let said = cluster
        .log(i)
        .contains("permanently removed from the cluster");
    format!("exited={} says removed={said}", status.is_some())
}

/// The whole reconfiguration session; returns the transcript.
fn session(flavor: Flavor) -> Vec<String> {
    let extra: &[&str] = match flavor {
        Flavor::Etcd => &["--snapshot-count=10"],
        Flavor::Keel => &[
            "--snapshot-count=10",
            "--experimental-snapshot-catchup-entries=5",
        ],
    };
    let mut cluster = Cluster::start_with(flavor, 3, extra).unwrap();
    let ctl = cluster.etcdctl();
    for i in 0..30 {
        assert!(run(&ctl, &["put", &format!("k{i:02}"), &format!("v{i}")]).success());
    }
    let mut seen = Vec::new();
    // A voter joins and catches up.
    let m3 = add_and_start(&mut cluster, &mut seen, "m3", false);
    cluster
        .wait_healthy(m3, Instant::now() + WAIT)
        .unwrap_or_else(|e| panic!("{e}"));
    let get = run(
        &cluster.member_etcdctl(m3),
        &["get", "--consistency=s", "--prefix", "k", "--keys-only"],
    );
    seen.push(format!(
        "m3 keys: {}",
        get.stdout.split_whitespace().count()
    ));
    if flavor == Flavor::Keel {
        assert!(
            cluster.log(m3).contains("received snapshot"),
            "m3 caught up without a snapshot:\n{}",
            cluster.log(m3)
        );
    }
    // A duplicate peer URL. etcd first wants every voter connected for 5 s
    // ("unhealthy cluster"), which m3 may not be yet.
    let dup = format!("--peer-urls={}", cluster.members()[0].peer_url);
    let args = ["member", "add", "m9", "--learner", &dup];
    let out = run_until(&ctl, &args, "unhealthy cluster");
    seen.push(format!("duplicate peer url: {}", shown(&cluster, &out)));
    // A learner: refused promotion until it caught up.
    let m4 = add_and_start(&mut cluster, &mut seen, "m4", true);
    let m4_ctl = cluster.member_etcdctl(m4);
    wait_for("the learner to catch up", || {
        run(&m4_ctl, &["get", "--consistency=s", "k29"])
            .stdout
            .contains("v29")
    });
    let out = run(&m4_ctl, &["get", "k29"]);
    seen.push(format!(
        "linearizable get at the learner: {}",
        shown(&cluster, &out)
    ));
    let id4 = member_id(&ctl, "m4", &cluster.members()[m4].peer_url);
    let out = run_until(&ctl, &["member", "promote", &id4], "in sync with leader");
    seen.push(format!("promote after catch-up: {}", shown(&cluster, &out)));
    let out = run(&ctl, &["member", "promote", &id4]);
    seen.push(format!("promote a voter: {}", shown(&cluster, &out)));
    // member update (peer URLs).
    let new_peer = cluster.members()[m4]
        .peer_url
        .replace("127.0.0.1", "localhost");
    let out = run(
        &ctl,
        &["member", "update", &id4, &format!("--peer-urls={new_peer}")],
    );
    seen.push(format!("update: {}", shown(&cluster, &out)));
    let out = run(&ctl, &["member", "remove", "1234"]);
    seen.push(format!("remove unknown: {}", shown(&cluster, &out)));
    let out = run(&ctl, &["member", "list"]);
    seen.push(format!("list: {}", shown(&cluster, &out)));
    remove_follower_then_leader(&mut cluster, &mut seen);
    seen
}

/// Removes a follower, then the leader; the removed stop and say so, the
/// rest elect a leader and take writes.
fn remove_follower_then_leader(cluster: &mut Cluster, seen: &mut Vec<String>) {
    let leader = leader_index(cluster);
    let follower = (0..3).find(|&i| i != leader).unwrap();
    for (what, i) in [("follower", follower), ("leader", leader)] {
        let m = &cluster.members()[i];
        // Through another member: the removed one may stop before it
        // answers (etcd: "server stopped").
        let via = (0..cluster.members().len())
            .find(|&j| j != i && j != follower && cluster.is_running(j))
            .unwrap();
        let ctl = cluster.member_etcdctl(via);
        let id = member_id(&ctl, &m.name, &m.peer_url);
        let out = run(&ctl, &["member", "remove", &id]);
        seen.push(format!("remove {what}: {}", shown(cluster, &out)));
        seen.push(format!("{what} {}", removed_exit(cluster, i)));
    }
    let ctl = running_etcdctl(cluster);
    let out = run_until(&ctl, &["put", "after", "removals"], "");
    seen.push(format!("put after removals: {}", shown(cluster, &out)));
    // Which founders remain depends on which member led.
    let out = run(&ctl, &["member", "list"]);
    let mut names: Vec<&str> = out
        .stdout
        .lines()
        .filter_map(|l| l.split(", ").nth(2))
        .map(|name| if name < "m3" { "founder" } else { name })
        .collect();
    names.sort_unstable();
    seen.push(format!("list after removals: {names:?}"));
}

#[test]
fn runtime_reconfiguration_as_in_etcd() {
    if !support::require_etcd("runtime_reconfiguration_as_in_etcd") {
        return;
    }
    let etcd = session(Flavor::Etcd);
    eprintln!("etcd:\n{}", etcd.join("\n"));
    let keel = session(Flavor::Keel);
    assert_eq!(keel, etcd);
}

/// The errors of a one-member cluster: removing its only voter, promoting
/// a voter, updating an unknown member.
fn last_voter_session(flavor: Flavor) -> Vec<String> {
    let cluster = Cluster::start(flavor, 1).unwrap();
    let ctl = cluster.etcdctl();
    let id = member_id(&ctl, "m0", &cluster.members()[0].peer_url);
    let commands: [&[&str]; 3] = [
        &["member", "remove", &id],
        &["member", "promote", &id],
        &["member", "update", "1234", "--peer-urls=http://127.0.0.1:1"],
    ];
    commands
        .iter()
        .map(|args| format!("{args:?}: {}", shown(&cluster, &run(&ctl, args))))
        .collect::<Vec<_>>()
        .into_iter()
        .map(|line| line.replace(&id, "<id>"))
        .collect()
}

#[test]
fn removing_the_last_voter_is_refused_as_in_etcd() {
    if !support::require_etcd("removing_the_last_voter_is_refused_as_in_etcd") {
        return;
    }
    let etcd = last_voter_session(Flavor::Etcd);
    assert!(etcd[0].contains("not enough started members"), "{etcd:?}");
    assert_eq!(last_voter_session(Flavor::Keel), etcd);
}
