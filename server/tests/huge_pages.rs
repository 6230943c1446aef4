//! The `keel` binary starts itself again with glibc's malloc on transparent
//! huge pages (see `keel_server::huge_pages`) and serves as usual.
#![cfg(not(madsim))]
#![allow(clippy::unwrap_used)] // tests may unwrap

mod support;

use keel_server::huge_pages::{MALLOC_HUGE_PAGES, OPT_OUT_ENV};
use support::client::connect;
use support::cluster::{Cluster, Flavor};

/// Whether `pid`'s environment holds `GLIBC_TUNABLES` with the huge-page
/// tunable.
fn runs_with_huge_pages(pid: u32) -> bool {
    let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
    environ
        .split(|b| *b == 0)
        .filter_map(|var| var.strip_prefix(b"GLIBC_TUNABLES="))
        .any(|value| {
            value
                .split(|b| *b == b':')
                .any(|tunable| tunable == MALLOC_HUGE_PAGES.as_bytes())
        })
}

/// keel re-executes itself with the tunable exactly when the kernel has THP
/// on, it is not opted out and `GLIBC_TUNABLES` is not set already (then it
/// keeps what it was given); either way the same process serves.
#[tokio::test]
async fn keel_runs_with_malloc_on_huge_pages_unless_told_not_to() {
    let thp = std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled")
        .is_ok_and(|mode| !mode.contains("[never]"));
    let opted_out = std::env::var_os(OPT_OUT_ENV).is_some_and(|v| v == "0");
    let inherited = std::env::var_os("GLIBC_TUNABLES");
    let inherited_has_it = inherited.as_ref().is_some_and(|t| {
        t.to_string_lossy()
            .split(':')
            .any(|x| x == MALLOC_HUGE_PAGES)
    });
    let expected = (thp && !opted_out && inherited.is_none()) || inherited_has_it;
    eprintln!(
        "THP {thp}, {OPT_OUT_ENV}=0 {opted_out}, GLIBC_TUNABLES {inherited:?}: expecting huge pages {expected}"
    );
    let cluster = Cluster::start(Flavor::Keel, 1).unwrap();
    let pid = cluster.pid(0).unwrap();
    assert_eq!(
        runs_with_huge_pages(pid),
        expected,
        "keel (pid {pid}): {MALLOC_HUGE_PAGES} in its environment"
    );
    // Same process, same arguments: it serves.
    let mut client = connect(cluster.client_urls()).await;
    client.put("k", "v", None).await.unwrap();
    let got = client.get("k", None).await.unwrap();
    assert_eq!(got.kvs()[0].value(), b"v");
}
