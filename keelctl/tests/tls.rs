//! keelctl against a TLS keel, compared with etcdctl 3.4: the same
//! commands with `--cacert` (server TLS), with `--cert --key` when keel
//! checks client certificates (`--client-cert-auth`), with a CA that did
//! not sign the server's certificate, without a client certificate where
//! one is required, over plain HTTP to the TLS port, and with
//! `--insecure-skip-tls-verify`. Certificates are made at test time
//! (rcgen); the servers are in-process keel members on loopback.

mod support;

use std::path::Path;

use support::compare::Comparison;
use support::pki::{CertFiles, Pki};
use support::server::Serving;

fn keelctl() -> &'static str {
    env!("CARGO_BIN_EXE_keelctl")
}

/// keel's flags serving clients with `server`'s certificate; with `ca`,
/// also requiring client certificates signed by it.
fn serving(server: &CertFiles, ca: Option<&Path>, ctl_flags: Vec<String>) -> Serving {
    let mut flags = vec![
        format!("--cert-file={}", server.cert.display()),
        format!("--key-file={}", server.key.display()),
    ];
    if let Some(ca) = ca {
        flags.push(format!("--trusted-ca-file={}", ca.display()));
        flags.push("--client-cert-auth".to_owned());
    }
    Serving {
        tls: true,
        flags,
        ctl_flags,
    }
}

fn cacert(ca: &Path) -> String {
    format!("--cacert={}", ca.display())
}

fn identity(client: &CertFiles) -> Vec<String> {
    vec![
        format!("--cert={}", client.cert.display()),
        format!("--key={}", client.key.display()),
    ]
}

/// Everyday commands, compared on both sides.
fn everyday(c: &mut Comparison) {
    c.run("put a 1").run("put ab 2").run("get a --prefix");
    c.run("get a -w json").run("del ab --prev-kv");
    c.run_stdin("txn", "value(\"a\") = \"1\"\n\nput t yes\n\n\n");
    c.run("lease grant 100").run("lease list");
    c.run("member list").run("endpoint health");
    c.run_same("endpoint status").run("alarm list");
    let watch = c.background("watch a --rev=1");
    c.collect(watch, 3);
}

/// Server TLS: `--cacert` trusts keel's certificate; the wrong CA, plain
/// HTTP to the TLS port, and TLS without any CA are refused by both
/// clients; `--insecure-skip-tls-verify` connects without checking.
#[test]
fn server_tls_matches_etcdctl() {
    if !support::require_etcdctl("server_tls_matches_etcdctl") {
        return;
    }
    let certs = tempfile::tempdir().expect("temporary directory");
    let pki = Pki::new(certs.path(), "test");
    let wrong = Pki::new(certs.path(), "wrong");
    let server = pki.leaf("server", "keel-server");
    let mut c =
        Comparison::start_serving(keelctl(), &serving(&server, None, vec![cacert(&pki.ca)]));
    everyday(&mut c);
    // A CA that did not sign the server's certificate.
    c.set_flags(&[cacert(&wrong.ca)]);
    c.run_cause("get a").run_cause("put a 2");
    // TLS with no CA at all (the system's roots do not know the test CA).
    c.set_flags(&["--insecure-transport=false".to_owned()]);
    c.run_cause("get a");
    // Skip verification: any CA, or none.
    let skip = "--insecure-skip-tls-verify".to_owned();
    c.set_flags(&[cacert(&wrong.ca), skip.clone()]);
    c.run("put a 3").run("get a").run("member list -w json");
    c.set_flags(&["--insecure-transport=false".to_owned(), skip.clone()]);
    c.run("get a --print-value-only").run("lease list");
    // Skip verification without TLS configured: etcdctl 3.4 still
    // verifies an https:// endpoint (and fails)...
    c.set_flags(std::slice::from_ref(&skip));
    c.run_cause("get a");
    // ... and dials a host:port endpoint in the clear.
    c.set_scheme("");
    c.run_cause("get a");
    // Plain HTTP to the TLS port, with and without TLS flags.
    c.set_flags(&[]).set_scheme("http");
    c.run_cause("get a");
    c.set_flags(&[cacert(&pki.ca)]);
    c.run_cause("get a");
    // host:port with --cacert is TLS.
    c.set_scheme("");
    c.run("get a --print-value-only");
    c.set_scheme("https").run("get a --print-value-only");
    c.assert_same("server_tls_matches_etcdctl");
}

/// Client certificates (`--client-cert-auth`): `--cert --key` signed by
/// the trusted CA are served; no certificate, or one from another CA, is
/// refused by both clients.
#[test]
fn client_cert_auth_matches_etcdctl() {
    if !support::require_etcdctl("client_cert_auth_matches_etcdctl") {
        return;
    }
    let certs = tempfile::tempdir().expect("temporary directory");
    let pki = Pki::new(certs.path(), "test");
    let wrong = Pki::new(certs.path(), "wrong");
    let server = pki.leaf("server", "keel-server");
    let client = pki.leaf("client", "client");
    let stranger = wrong.leaf("stranger", "client");
    let mut flags = vec![cacert(&pki.ca)];
    flags.extend(identity(&client));
    let mut c =
        Comparison::start_serving(keelctl(), &serving(&server, Some(&pki.ca), flags.clone()));
    everyday(&mut c);
    c.run("user add root:pw").run("auth enable");
    c.run("--user=root:pw get a").run("get a");
    c.run("--user=root:pw auth disable");
    // No client certificate.
    c.set_flags(&[cacert(&pki.ca)]);
    c.run_cause("get a");
    // A client certificate no trusted CA signed.
    let mut strange = vec![cacert(&pki.ca)];
    strange.extend(identity(&stranger));
    c.set_flags(&strange);
    c.run_cause("get a");
    // A key without its certificate.
    c.set_flags(&[cacert(&pki.ca), format!("--key={}", client.key.display())]);
    c.run("get a");
    // Skip verification, still presenting the client certificate.
    let mut skipping = identity(&client);
    skipping.push("--insecure-skip-tls-verify".to_owned());
    c.set_flags(&skipping);
    c.run("put s 1").run("get s");
    c.set_flags(&flags).run("get s -w fields");
    c.assert_same("client_cert_auth_matches_etcdctl");
}

/// keelctl's messages where etcdctl's say little (`context deadline
/// exceeded`): a wrong CA names the certificate problem, plain HTTP to a
/// TLS port fails with etcdctl's message (and the protocol error when the
/// connection shows one); both exit 1. `auth status` over TLS.
#[test]
fn refused_tls_fails_with_a_message() {
    if !support::require_etcdctl("refused_tls_fails_with_a_message") {
        return;
    }
    let certs = tempfile::tempdir().expect("temporary directory");
    let pki = Pki::new(certs.path(), "test");
    let wrong = Pki::new(certs.path(), "wrong");
    let server = pki.leaf("server", "keel-server");
    let mut c =
        Comparison::start_serving(keelctl(), &serving(&server, None, vec![cacert(&pki.ca)]));
    let status = c.run_keelctl_only("auth status");
    assert_eq!(
        (status.stdout.as_str(), status.code),
        ("Authentication Status: false\nAuthRevision: 1\n", Some(0)),
        "{status:?}"
    );
    c.set_flags(&[cacert(&wrong.ca)]);
    let out = c.run_keelctl_only("get a");
    assert_eq!(out.code, Some(1), "{out:?}");
    assert_eq!(
        out.stderr,
        "Error: context deadline exceeded (invalid peer certificate: UnknownIssuer)\n"
    );
    let refused = c.run_keelctl_only("auth status");
    assert_ne!(refused.code, Some(0), "{refused:?}");
    c.set_flags(&[cacert(&wrong.ca), "--insecure-skip-tls-verify".to_owned()]);
    let skipped = c.run_keelctl_only("auth status -w json");
    assert_eq!(skipped.code, Some(0), "{skipped:?}");
    assert!(
        skipped.stdout.ends_with(",\"authRevision\":1}\n"),
        "{skipped:?}"
    );
    c.set_flags(&[]).set_scheme("http");
    let out = c.run_keelctl_only("get a");
    assert_eq!(out.code, Some(1), "{out:?}");
    // The cause (`h2 protocol error`) shows when the server's TLS alert
    // arrives before the connection closes; the message starts the same.
    assert!(
        out.stderr.starts_with("Error: context deadline exceeded"),
        "{out:?}"
    );
    c.assert_same("refused_tls_fails_with_a_message");
}
