//! SIGTERM on the leader of a 3-member cluster of real `keel` processes:
//! it hands leadership to an up-to-date follower before it exits (etcd's
//! `TryTransferLeadershipOnShutdown`), so the next write through another
//! member succeeds well within one election timeout, and its log says so.
#![cfg(not(madsim))]
#![allow(clippy::unwrap_used)] // tests may unwrap

mod support;

use std::time::{Duration, Instant};

use support::client::{connect, leader};
use support::cluster::{Cluster, Flavor};

/// keel's default `--election-timeout` (etcd's), which these members run with.
const ELECTION_TIMEOUT: Duration = Duration::from_millis(1000);
/// Bound of the whole wait for the write after the signal.
const WRITE_WAIT: Duration = Duration::from_secs(15);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_on_the_leader_costs_no_election_timeout() {
    let mut cluster = Cluster::start(Flavor::Keel, 3).unwrap();
    let old = leader(&cluster).await;
    let other = (old + 1) % 3;
    let mut client = connect(vec![cluster.members()[other].client_url.clone()]).await;
    client.put("before", "sigterm", None).await.unwrap();

    cluster.terminate(old).unwrap();
    let signalled = Instant::now();
    let mut attempts = 0;
    loop {
        attempts += 1;
        match client.put("after", "sigterm", None).await {
            Ok(_) => break,
            Err(err) => {
                assert!(
                    signalled.elapsed() < WRITE_WAIT,
                    "no write succeeded after SIGTERM: {err}\n{}",
                    cluster.logs()
                );
                eprintln!("write attempt {attempts} after SIGTERM failed: {err}");
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let took = signalled.elapsed();
    let status = cluster.wait_exit(old, Duration::from_secs(20)).unwrap();
    let log = cluster.log(old);
    eprintln!("first write after SIGTERM: {took:?} ({attempts} attempts)");
    assert!(
        took < ELECTION_TIMEOUT,
        "the write took {took:?}, not less than the election timeout\n{}",
        cluster.logs()
    );
    assert!(
        status.is_some_and(|s| s.success()),
        "exit: {status:?}\n{log}"
    );
    assert!(
        log.contains("leadership transferred on shutdown"),
        "the stopped leader does not say it transferred leadership:\n{log}"
    );
    let new = leader(&cluster).await;
    assert_ne!(new, old);
}
