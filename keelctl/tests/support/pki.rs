//! Certificates made at test time: keel-tls's test PKI (a CA and the
//! leaves it signs, for 127.0.0.1 and localhost, usable as server and
//! client certificates), shared with keel-server's TLS tests.

// Used by tests/tls.rs; the other test binaries share support/ unused.
#[allow(unused_imports)]
pub use keel_tls::test_pki::{CertFiles, Pki};
