//! Differential authorization test (issue 28): the same users, roles,
//! keys and requests against real etcd (3.4, Debian's `etcd-server`) and
//! keel, comparing per (principal, request) whether it was served and, if
//! not, the gRPC code and message. The principals are users with prefix,
//! single-key, read-only and write-only grants, a user without roles,
//! anonymous, a made-up token and stale tokens of a deleted user, of a
//! user whose role or permission was revoked and of a user whose password
//! changed. Where keel deliberately differs from etcd 3.4.23 (it follows
//! the newest etcd where that tightened a rule; `docs/auth-compat.md`), the
//! difference is listed in `expected.rs` with its reason; any other
//! difference, and any listed difference that no longer occurs, fails.
#![cfg(not(madsim))]
#![allow(clippy::unwrap_used)] // tests may unwrap

mod support;

#[path = "auth_differential/call.rs"]
mod call;
#[path = "auth_differential/expected.rs"]
mod expected;
#[path = "auth_differential/steps.rs"]
mod steps;
#[path = "auth_differential/world.rs"]
mod world;

use call::{Outcome, authed};
use keel_server::proto::etcdserverpb as pb;
use steps::{Context, STEPS, Step};
use support::cluster::{Cluster, Flavor};
use tonic::transport::Channel;
use world::Principal;

/// One server under test.
struct Server {
    _cluster: Cluster,
    channel: Channel,
    root: String,
    principals: Vec<Principal>,
}

async fn start(flavor: Flavor) -> Server {
    let cluster = Cluster::start(flavor, 1).unwrap();
    let url = cluster.members()[0].client_url.clone();
    let channel = Channel::from_shared(url).unwrap().connect().await.unwrap();
    let root = world::set_up(&channel).await;
    let principals = world::principals(&channel, &root).await;
    Server {
        _cluster: cluster,
        channel,
        root,
        principals,
    }
}

/// The principal's user name, for steps about "oneself".
fn user_of(principal: &Principal) -> &'static str {
    principal.name.split('(').next().unwrap_or("")
}

/// Runs `step` as principal `i` on `server`.
async fn run(server: &Server, i: usize, step: Step) -> Outcome {
    let principal = &server.principals[i];
    let ctx = Context {
        channel: &server.channel,
        root: &server.root,
        user: user_of(principal),
        index: i,
    };
    step.run(&ctx, principal.token.as_deref()).await
}

/// A difference between etcd and keel for one cell.
#[derive(Debug)]
struct Cell {
    principal: &'static str,
    step: String,
    etcd: Outcome,
    keel: Outcome,
}

/// Sends every step as every principal to both servers, step by step
/// (etcd first, then keel), and returns the cells where they differ, and
/// how many cells ran.
async fn matrix(etcd: &Server, keel: &Server) -> (Vec<Cell>, usize) {
    let mut cells = Vec::new();
    let mut count = 0;
    for i in 0..etcd.principals.len() {
        for step in STEPS {
            let at_etcd = run(etcd, i, *step).await;
            let at_keel = run(keel, i, *step).await;
            count += 1;
            if at_etcd != at_keel {
                cells.push(Cell {
                    principal: etcd.principals[i].name,
                    step: format!("{step:?}"),
                    etcd: at_etcd,
                    keel: at_keel,
                });
            }
        }
    }
    (cells, count)
}

/// After auth is disabled, requests carrying the (now dropped) tokens.
async fn after_disable(etcd: &Server, keel: &Server) -> Vec<Cell> {
    let mut cells = Vec::new();
    for server in [etcd, keel] {
        // Root's own password change (the last step) ended its token.
        let root = world::login(&server.channel, "root").await;
        let mut auth = pb::auth_client::AuthClient::new(server.channel.clone());
        let disable = authed(pb::AuthDisableRequest {}, Some(&root));
        auth.auth_disable(disable).await.unwrap();
    }
    for i in 0..etcd.principals.len() {
        let at_etcd = run(etcd, i, Step::GetA).await;
        let at_keel = run(keel, i, Step::GetA).await;
        if at_etcd != at_keel {
            cells.push(Cell {
                principal: etcd.principals[i].name,
                step: "GetA(auth disabled)".into(),
                etcd: at_etcd,
                keel: at_keel,
            });
        }
    }
    cells
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keel_authorizes_as_etcd_except_the_listed_differences() {
    if !support::require_etcd("auth_differential") {
        return;
    }
    let etcd = start(Flavor::Etcd).await;
    let keel = start(Flavor::Keel).await;
    assert_eq!(etcd.principals.len(), keel.principals.len());
    let (mut cells, count) = matrix(&etcd, &keel).await;
    cells.extend(after_disable(&etcd, &keel).await);
    let mut failures = Vec::new();
    let mut listed_seen = std::collections::BTreeSet::new();
    for cell in &cells {
        match expected::why(cell.principal, &cell.step) {
            Some(why) => {
                listed_seen.insert((cell.principal, cell.step.clone()));
                eprintln!(
                    "expected: {} {}: etcd {:?} keel {:?} ({why})",
                    cell.principal, cell.step, cell.etcd, cell.keel
                );
            }
            None => failures.push(format!(
                "{} {}: etcd {:?}, keel {:?}",
                cell.principal, cell.step, cell.etcd, cell.keel
            )),
        }
    }
    let vanished: Vec<String> = expected::listed()
        .into_iter()
        .filter(|(p, s)| !listed_seen.contains(&(*p, s.clone())))
        .map(|(p, s)| format!("{p} {s}"))
        .collect();
    eprintln!("{count} cells, {} differences", cells.len());
    assert!(
        failures.is_empty() && vanished.is_empty(),
        "unexpected differences:\n{}\nlisted differences that did not occur:\n{}",
        failures.join("\n"),
        vanished.join("\n")
    );
}
