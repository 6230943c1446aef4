//! Proves the test harness (tests/support) against a real etcd: start it,
//! drive it with etcdctl and with the `etcd-client` crate, stop it.
//! Skips (with a message) only when etcd is not installed; scripts/setup.sh
//! installs it.
#![cfg(not(madsim))]
#![allow(clippy::unwrap_used)] // tests may unwrap

mod support;

#[test]
fn etcdctl_put_get_and_txn_against_real_etcd() {
    let Some(etcd) = support::start_etcd_or_skip("etcdctl_put_get_and_txn_against_real_etcd")
    else {
        return;
    };
    let ctl = etcd.etcdctl();
    let put = ctl.run(&["put", "greeting", "hello"]).unwrap();
    assert!(put.success(), "{put:?}\n{}", etcd.log());
    assert_eq!(put.stdout, "OK\n");
    let get = ctl.run(&["get", "greeting"]).unwrap();
    assert_eq!(get.stdout, "greeting\nhello\n");

    // `txn -i` reads compares, success ops and failure ops from stdin,
    // separated by blank lines.
    let txn = ctl
        .run_with_stdin(
            &["txn", "-i"],
            "value(\"greeting\") = \"hello\"\n\nput greeting bye\n\nput greeting no\n\n",
        )
        .unwrap();
    assert!(txn.success(), "{txn:?}");
    let prompts =
        "compares:\nsuccess requests (get, put, del):\nfailure requests (get, put, del):\n";
    assert_eq!(txn.stdout, format!("{prompts}SUCCESS\n\nOK\n"));
    let get = ctl.run(&["get", "greeting", "--print-value-only"]).unwrap();
    assert_eq!(get.stdout, "bye\n");

    // Errors come back on stderr with a failing status.
    let bad = ctl.run(&["get", "a", "--rev=1000"]).unwrap();
    assert!(!bad.success());
    assert!(
        bad.stderr
            .contains("required revision is a future revision"),
        "{bad:?}"
    );
}

#[tokio::test]
async fn etcd_client_crate_talks_to_real_etcd() {
    let Some(etcd) = support::start_etcd_or_skip("etcd_client_crate_talks_to_real_etcd") else {
        return;
    };
    let mut client = etcd_client::Client::connect([etcd.client_url()], None)
        .await
        .unwrap();
    let lease = client.lease_grant(60, None).await.unwrap();
    let options = etcd_client::PutOptions::new().with_lease(lease.id());
    client
        .put("crate-key", "crate-value", Some(options))
        .await
        .unwrap();
    let got = client.get("crate-key", None).await.unwrap();
    assert_eq!(got.kvs().len(), 1);
    assert_eq!(got.kvs()[0].value(), b"crate-value");
    assert_eq!(got.kvs()[0].lease(), lease.id());

    // What the crate wrote, etcdctl reads.
    let seen = etcd
        .etcdctl()
        .run(&["get", "crate-key", "--print-value-only"])
        .unwrap();
    assert_eq!(seen.stdout, "crate-value\n");
}
