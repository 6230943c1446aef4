//! TLS on real `keel` processes (issue 22), certificates made at test time
//! with rcgen, clients being Debian's etcdctl 3.4 and curl:
//!
//! - etcdctl with `--cacert --cert --key` is served over `https://` with
//!   `--client-cert-auth`; a client without a certificate, with a
//!   self-signed or an expired one, and a plain client are each refused,
//!   logged, and the member keeps serving;
//! - the HTTP/JSON gateway answers curl over `https://` on the same port,
//!   configured through `--config-file`'s `client-transport-security`;
//!   plain HTTP on that port is told it reached an HTTPS server;
//! - with auth enabled, a client certificate's common name is the user
//!   (etcd's CN auth), the same session giving the same answers from
//!   real etcd 3.4 and keel;
//! - three members with `https://` peer URLs and peer certificates form a
//!   cluster and replicate; a member added later joins over TLS, and
//!   keep-alives on followers reach the leader over TLS; a member whose
//!   certificate no CA vouches for cannot join (the others log its
//!   refused handshakes and serve without it);
//! - `--auto-tls --peer-auto-tls` members form a cluster over
//!   self-signed certificates;
//! - a missing certificate file (named by `ETCD_CERT_FILE`) stops keel at
//!   start with the file named.
#![cfg(not(madsim))]
#![allow(clippy::unwrap_used)] // tests may unwrap

mod support;

#[path = "tls/pki.rs"]
mod pki;
#[path = "tls/procs.rs"]
mod procs;

use std::path::Path;
use std::time::Duration;

use pki::{CertFiles, Pki, self_signed};
use procs::{Ctl, Procs};
use support::cluster::Flavor;
use support::{require_etcd, run_bounded};

/// How long a refused connection may take to show in the server's log.
const LOG_TIMEOUT: Duration = Duration::from_secs(20);

/// keel's (and etcd's) flags serving clients with `server`, checking
/// client certificates against `ca` when `cert_auth`.
fn client_tls_flags(server: &CertFiles, ca: &Path, cert_auth: bool) -> Vec<String> {
    let mut flags = vec![
        format!("--cert-file={}", server.cert.display()),
        format!("--key-file={}", server.key.display()),
    ];
    if cert_auth {
        flags.push(format!("--trusted-ca-file={}", ca.display()));
        flags.push("--client-cert-auth".to_owned());
    }
    flags
}

/// Peer flags presenting `peer` and requiring peers to chain to `ca`.
fn peer_tls_flags(peer: &CertFiles, ca: &Path) -> Vec<String> {
    vec![
        format!("--peer-cert-file={}", peer.cert.display()),
        format!("--peer-key-file={}", peer.key.display()),
        format!("--peer-trusted-ca-file={}", ca.display()),
        "--peer-client-cert-auth".to_owned(),
    ]
}

/// etcdctl flags trusting `ca` and presenting `client` if any.
fn ctl_flags(ca: &Path, client: Option<&CertFiles>) -> Vec<String> {
    let mut flags = vec![format!("--cacert={}", ca.display())];
    if let Some(client) = client {
        flags.extend(client.etcdctl_args());
    }
    flags
}

#[test]
fn client_cert_auth_serves_trusted_clients_and_refuses_the_others() {
    if !require_etcd("client_cert_auth_serves_trusted_clients_and_refuses_the_others") {
        return;
    }
    let mut procs = Procs::new(Flavor::Keel, 1, "https", "http");
    let pki = Pki::new(procs.dir(), "test");
    let server = pki.leaf("server", "keel-server");
    let client = pki.leaf("client", "client");
    procs.start(0, &client_tls_flags(&server, &pki.ca, true));
    let good = procs.ctl(0, &ctl_flags(&pki.ca, Some(&client)));
    procs.wait_healthy(0, &good);
    assert_eq!(good.ok(&["put", "k", "v1"]).trim(), "OK");
    assert_eq!(good.ok(&["get", "k", "--print-value-only"]).trim(), "v1");
    // etcdctl 3.4 sends the endpoint URL as :authority here; the repair
    // of h2_authority must hold behind TLS too.
    let status = good.ok(&["endpoint", "status"]);
    assert!(status.contains(&procs.nodes[0].client_url), "{status}");

    let rogue = self_signed(procs.dir(), "rogue", "client");
    let expired = pki.expired_leaf("expired", "client");
    let refused: [(&str, Ctl); 3] = [
        (
            "no client certificate",
            procs.ctl(0, &ctl_flags(&pki.ca, None)),
        ),
        (
            "self-signed certificate",
            procs.ctl(0, &ctl_flags(&pki.ca, Some(&rogue))),
        ),
        (
            "expired certificate",
            procs.ctl(0, &ctl_flags(&pki.ca, Some(&expired))),
        ),
    ];
    for (what, ctl) in &refused {
        let out = ctl.run(&["put", "k", "stolen"]);
        assert!(!out.success(), "{what}: served: {}", out.stdout);
    }
    let plain_url = procs.nodes[0].client_url.replace("https://", "http://");
    let plain = support::Etcdctl::new(&plain_url)
        .run(&["put", "k", "plain"])
        .unwrap();
    assert!(!plain.success(), "plain gRPC on the TLS port was served");

    assert!(
        procs.wait_log(0, "rejected connection", LOG_TIMEOUT),
        "{}",
        procs.logs()
    );
    assert!(
        procs.wait_log(0, "expired", LOG_TIMEOUT),
        "{}",
        procs.logs()
    );
    procs.assert_running(0);
    assert_eq!(good.ok(&["get", "k", "--print-value-only"]).trim(), "v1");
}

/// curl with the given arguments; returns (success, stdout + stderr).
fn curl(args: &[&str]) -> (bool, String) {
    let mut command = std::process::Command::new("curl");
    command.args(["-sS", "--max-time", "10"]).args(args);
    let out = run_bounded(command, "", Duration::from_secs(15)).unwrap();
    (out.success(), format!("{}{}", out.stdout, out.stderr))
}

#[test]
fn gateway_answers_curl_over_https_configured_by_file() {
    if !require_etcd("gateway_answers_curl_over_https_configured_by_file") {
        return;
    }
    let mut procs = Procs::new(Flavor::Keel, 1, "https", "http");
    let pki = Pki::new(procs.dir(), "test");
    let server = pki.leaf("server", "keel-server");
    let node = &procs.nodes[0];
    let yaml = format!(
        "name: m0\ndata-dir: {}\nlisten-client-urls: {url}\nadvertise-client-urls: {url}\n\
         listen-peer-urls: {peer}\ninitial-advertise-peer-urls: {peer}\n\
         initial-cluster: m0={peer}\n\
         client-transport-security:\n  cert-file: {}\n  key-file: {}\n",
        node.data_dir.display(),
        server.cert.display(),
        server.key.display(),
        url = node.client_url,
        peer = node.peer_url,
    );
    let config = procs.dir().join("keel.yml");
    std::fs::write(&config, yaml).unwrap();
    procs.start(0, &[format!("--config-file={}", config.display())]);
    let ctl = procs.ctl(0, &ctl_flags(&pki.ca, None));
    procs.wait_healthy(0, &ctl);

    let base = procs.nodes[0].client_url.clone();
    let ca = pki.ca.display().to_string();
    let (ok, version) = curl(&["--cacert", &ca, &format!("{base}/version")]);
    assert!(ok && version.contains("\"etcdserver\""), "{version}");
    let put = r#"{"key":"Zm9v","value":"YmFy"}"#;
    let (ok, answer) = curl(&[
        "--cacert",
        &ca,
        "-X",
        "POST",
        "-d",
        put,
        &format!("{base}/v3/kv/put"),
    ]);
    assert!(ok && answer.contains("\"header\""), "{answer}");
    assert_eq!(ctl.ok(&["get", "foo", "--print-value-only"]).trim(), "bar");

    let (_, untrusted) = curl(&[&format!("{base}/version")]);
    assert!(
        untrusted.contains("certificate"),
        "curl without the CA: {untrusted}"
    );
    let plain = base.replace("https://", "http://");
    let (_, answer) = curl(&[&format!("{plain}/version")]);
    assert!(
        answer.contains("Client sent an HTTP request to an HTTPS server."),
        "{answer}"
    );
    procs.assert_running(0);
    let (ok, version) = curl(&["--cacert", &ca, &format!("{base}/version")]);
    assert!(ok && version.contains("\"etcdserver\""), "{version}");
}

/// One CN-auth session: what each step printed, and whether it succeeded.
fn cn_auth_session(flavor: Flavor) -> Vec<(bool, String)> {
    let mut procs = Procs::new(flavor, 1, "https", "http");
    let pki = Pki::new(procs.dir(), "test");
    let server = pki.leaf("server", "server");
    let root = pki.leaf("root", "root");
    let stranger = pki.leaf("stranger", "nobody");
    procs.start(0, &client_tls_flags(&server, &pki.ca, true));
    let as_root = procs.ctl(0, &ctl_flags(&pki.ca, Some(&root)));
    let as_stranger = procs.ctl(0, &ctl_flags(&pki.ca, Some(&stranger)));
    procs.wait_healthy(0, &as_root);
    let steps: [(&Ctl, &[&str]); 7] = [
        (
            &as_root,
            &["user", "add", "root", "--new-user-password=rootpw"],
        ),
        (&as_root, &["auth", "enable"]),
        (&as_root, &["put", "cn", "by-certificate"]),
        (&as_root, &["get", "cn"]),
        (&as_stranger, &["put", "cn", "stranger"]),
        (&as_root, &["--user=root:wrong", "get", "cn"]),
        (
            &as_root,
            &["--user=root:rootpw", "get", "cn", "--print-value-only"],
        ),
    ];
    steps
        .iter()
        .map(|(ctl, args)| {
            let out = ctl.run(args);
            let error = out
                .stderr
                .lines()
                .filter(|l| l.starts_with("Error:"))
                .collect::<Vec<_>>()
                .join("\n");
            (out.success(), format!("{}{error}", out.stdout))
        })
        .collect()
}

#[test]
fn a_client_certificates_common_name_is_the_user_as_in_etcd() {
    if !require_etcd("a_client_certificates_common_name_is_the_user_as_in_etcd") {
        return;
    }
    let etcd = cn_auth_session(Flavor::Etcd);
    let keel = cn_auth_session(Flavor::Keel);
    assert_eq!(keel, etcd, "keel (left) and etcd (right) differ");
    assert!(
        keel[2].0 && keel[2].1.trim() == "OK",
        "put as CN root: {:?}",
        keel[2]
    );
    assert_eq!(keel[3].1, "cn\nby-certificate\n");
    assert!(!keel[4].0, "a CN naming no user was served");
}

/// Starts `procs`' members with `flags(i)` and waits for `wait` of them.
fn start_all(
    procs: &mut Procs,
    flags: impl Fn(usize) -> Vec<String>,
    ctl: impl Fn(&Procs, usize) -> Ctl,
    wait: &[usize],
) {
    for i in 0..procs.nodes.len() {
        let flags = flags(i);
        procs.start(i, &flags);
    }
    for &i in wait {
        let ctl = ctl(procs, i);
        procs.wait_healthy(i, &ctl);
    }
}

/// Three keel members with plain client and https peer URLs, a CA, and
/// peer certificates from it for the first `trusted` members (`m0`...).
fn peer_tls_cluster(trusted: usize) -> (Procs, Pki, Vec<CertFiles>) {
    let procs = Procs::new(Flavor::Keel, 3, "http", "https");
    let pki = Pki::new(procs.dir(), "peers");
    let certs = (0..trusted)
        .map(|i| pki.leaf(&format!("peer{i}"), &format!("m{i}")))
        .collect();
    (procs, pki, certs)
}

#[test]
fn members_with_peer_certificates_form_a_cluster_and_replicate() {
    if !require_etcd("members_with_peer_certificates_form_a_cluster_and_replicate") {
        return;
    }
    let (mut procs, pki, certs) = peer_tls_cluster(3);
    start_all(
        &mut procs,
        |i| peer_tls_flags(&certs[i], &pki.ca),
        |p, i| p.ctl(i, &[]),
        &[0, 1, 2],
    );
    assert_eq!(
        procs.ctl(0, &[]).ok(&["put", "replicated", "yes"]).trim(),
        "OK"
    );
    let last = procs.ctl(2, &[]);
    assert_eq!(
        last.ok(&["get", "replicated", "--print-value-only"]).trim(),
        "yes"
    );
    let members = last.ok(&["member", "list"]);
    assert_eq!(
        members.matches("https://127.0.0.1:").count(),
        3,
        "{members}"
    );
}

#[test]
fn a_member_with_a_trusted_peer_certificate_joins_over_tls() {
    if !require_etcd("a_member_with_a_trusted_peer_certificate_joins_over_tls") {
        return;
    }
    let (mut procs, pki, certs) = peer_tls_cluster(3);
    for (i, cert) in certs.iter().take(2).enumerate() {
        procs.start_in(i, 2, &peer_tls_flags(cert, &pki.ca));
    }
    for i in 0..2 {
        let ctl = procs.ctl(i, &[]);
        procs.wait_healthy(i, &ctl);
    }
    let first = procs.ctl(0, &[]);
    assert_eq!(first.ok(&["put", "before", "join"]).trim(), "OK");
    let peer_urls = format!("--peer-urls={}", procs.nodes[2].peer_url);
    first.ok(&["member", "add", "m2", &peer_urls]);
    // The newcomer asks its peers for the cluster over TLS, then catches up.
    procs.start_joining(2, &peer_tls_flags(&certs[2], &pki.ca));
    let joined = procs.ctl(2, &[]);
    procs.wait_healthy(2, &joined);
    let value = joined.ok(&["get", "before", "--print-value-only"]);
    assert_eq!(value.trim(), "join");
    // A keep-alive on a follower is forwarded to the leader over TLS.
    let lease = joined.ok(&["lease", "grant", "60"]);
    let id = lease.split_whitespace().nth(1).unwrap().to_owned();
    for i in 0..3 {
        let kept = procs
            .ctl(i, &[])
            .ok(&["lease", "keep-alive", "--once", &id]);
        assert!(kept.contains("keepalived with TTL"), "member {i}: {kept}");
    }
}

#[test]
fn a_member_with_an_untrusted_peer_certificate_cannot_join() {
    if !require_etcd("a_member_with_an_untrusted_peer_certificate_cannot_join") {
        return;
    }
    let (mut procs, pki, trusted) = peer_tls_cluster(2);
    let intruder = self_signed(procs.dir(), "intruder", "m2");
    let flags = |i: usize| match trusted.get(i) {
        Some(cert) => peer_tls_flags(cert, &pki.ca),
        None => peer_tls_flags(&intruder, &pki.ca),
    };
    start_all(&mut procs, flags, |p, i| p.ctl(i, &[]), &[0, 1]);
    assert_eq!(procs.ctl(0, &[]).ok(&["put", "without", "m2"]).trim(), "OK");
    let refused = procs.wait_log(0, "rejected connection", LOG_TIMEOUT)
        || procs.wait_log(1, "rejected connection", LOG_TIMEOUT);
    assert!(
        refused,
        "no member logged the intruder's handshake:\n{}",
        procs.logs()
    );
    procs.assert_running(2);
    let health = procs
        .ctl(2, &[])
        .run(&["endpoint", "health", "--command-timeout=2s"]);
    assert!(!health.success(), "the intruder serves: {}", health.stdout);
    let value = procs
        .ctl(1, &[])
        .ok(&["get", "without", "--print-value-only"]);
    assert_eq!(value.trim(), "m2");
}

#[test]
fn auto_tls_members_form_a_cluster_over_self_signed_certificates() {
    if !require_etcd("auto_tls_members_form_a_cluster_over_self_signed_certificates") {
        return;
    }
    let mut procs = Procs::new(Flavor::Keel, 3, "https", "https");
    let flags = |_| vec!["--auto-tls".to_owned(), "--peer-auto-tls".to_owned()];
    // etcdctl 3.4 applies --insecure-skip-tls-verify only to a TLS config
    // it builds, which --insecure-transport=false asks for.
    let insecure = vec![
        "--insecure-transport=false".to_owned(),
        "--insecure-skip-tls-verify".to_owned(),
    ];
    start_all(&mut procs, flags, |p, i| p.ctl(i, &insecure), &[0, 1, 2]);
    assert_eq!(
        procs.ctl(0, &insecure).ok(&["put", "auto", "tls"]).trim(),
        "OK"
    );
    let value = procs
        .ctl(2, &insecure)
        .ok(&["get", "auto", "--print-value-only"]);
    assert_eq!(value.trim(), "tls");
    for node in &procs.nodes {
        for side in ["client", "peer"] {
            let cert = node.data_dir.join("fixtures").join(side).join("cert.pem");
            assert!(cert.is_file(), "{} has no {side} certificate", node.name);
        }
    }
    let verified = procs.ctl(0, &[]).run(&["get", "auto"]);
    assert!(!verified.success(), "a self-signed certificate was trusted");
}

#[test]
fn a_missing_certificate_file_stops_keel_at_start() {
    let mut procs = Procs::new(Flavor::Keel, 1, "https", "http");
    let missing = procs.dir().join("missing.pem");
    let key = procs.dir().join("missing-key.pem");
    // Through the ETCD_* spelling of --cert-file and --key-file.
    let env = [("ETCD_CERT_FILE", &*missing), ("ETCD_KEY_FILE", &*key)];
    procs.start_with_env(0, &[], &env);
    let status = procs.wait_exit(0, Duration::from_secs(20));
    assert!(
        status.is_some_and(|s| !s.success()),
        "keel did not stop: {}",
        procs.logs()
    );
    let expected = format!("cannot read certificate file {}", missing.display());
    assert!(procs.log(0).contains(&expected), "{}", procs.logs());
}
