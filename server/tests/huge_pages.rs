//! The `keel` binary starts itself again with glibc's malloc on transparent
//! huge pages (see `keel_server::huge_pages`) and serves as usual.
#![cfg(not(madsim))]
#![allow(clippy::unwrap_used)] // tests may unwrap

mod support;

use keel_server::huge_pages::{MALLOC_HUGE_PAGES, OPT_OUT_ENV};
use support::client::connect;
use support::cluster::{Cluster, Flavor};

#[tokio::test]
async fn keel_runs_with_malloc_on_huge_pages() {
    let thp = std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled")
        .is_ok_and(|mode| !mode.contains("[never]"));
    let opted_out = std::env::var_os(OPT_OUT_ENV).is_some_and(|v| v == "0");
    if !thp || opted_out || std::env::var_os("GLIBC_TUNABLES").is_some() {
        eprintln!("SKIPPED: THP off, {OPT_OUT_ENV}=0 or GLIBC_TUNABLES set here");
        return;
    }
    let cluster = Cluster::start(Flavor::Keel, 1).unwrap();
    let pid = cluster.pid(0).unwrap();
    let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
    let expected = format!("GLIBC_TUNABLES={MALLOC_HUGE_PAGES}");
    assert!(
        environ
            .split(|b| *b == 0)
            .any(|var| var == expected.as_bytes()),
        "keel (pid {pid}) runs without {expected}"
    );
    // Same process, same arguments: it serves.
    let mut client = connect(cluster.client_urls()).await;
    client.put("k", "v", None).await.unwrap();
    let got = client.get("k", None).await.unwrap();
    assert_eq!(got.kvs()[0].value(), b"v");
}
