//! Test support: in-process keel servers ([`server`]) and the
//! etcdctl-vs-keelctl comparison ([`compare`]).
#![allow(dead_code)]

pub mod compare;
pub mod pki;
pub mod server;

/// Whether etcdctl is installed; panics (the test cannot run) unless
/// `KEEL_ALLOW_MISSING_ETCD=1`, then says the test is skipped.
pub fn require_etcdctl(test: &str) -> bool {
    let installed = std::process::Command::new("etcdctl")
        .arg("version")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok();
    if installed {
        return true;
    }
    let why = "etcdctl not installed (scripts/setup.sh installs Debian's etcd-client)";
    if std::env::var("KEEL_ALLOW_MISSING_ETCD").as_deref() == Ok("1") {
        eprintln!("SKIPPED {test}: {why}");
        return false;
    }
    panic!("{test}: {why}; set KEEL_ALLOW_MISSING_ETCD=1 to skip instead");
}
