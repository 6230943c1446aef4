//! Certificates made at test time: keel-tls's test PKI (a CA, leaves it
//! signs, an expired leaf, self-signed certificates no CA vouches for),
//! shared with keelctl's TLS tests.

pub use keel_tls::test_pki::{CertFiles, Pki, self_signed};
