//! Certificates made at test time with rcgen, for test suites only
//! (feature `test-pki`): a CA, leaves it signs (for 127.0.0.1 and
//! localhost, usable as server, peer and client certificates, with a
//! chosen common name), an expired leaf, and self-signed certificates no
//! CA vouches for, all written as PEM files.
//!
//! Every function panics when a key or certificate cannot be made or
//! written: a test that cannot set up its certificates cannot run.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use time::{Duration, OffsetDateTime};

/// A certificate and its key written as PEM files.
#[derive(Debug, Clone)]
pub struct CertFiles {
    /// The PEM certificate.
    pub cert: PathBuf,
    /// The PEM private key.
    pub key: PathBuf,
}

impl CertFiles {
    /// etcdctl's flags presenting this certificate (`--cert`, `--key`).
    pub fn etcdctl_args(&self) -> Vec<String> {
        vec![
            format!("--cert={}", self.cert.display()),
            format!("--key={}", self.key.display()),
        ]
    }
}

/// A test CA whose files live in a directory.
pub struct Pki {
    dir: PathBuf,
    issuer: Issuer<'static, KeyPair>,
    /// The CA certificate (PEM), for `--trusted-ca-file` and `--cacert`.
    pub ca: PathBuf,
}

impl Pki {
    /// A new CA named `name`, its certificate written to
    /// `dir/<name>-ca.pem` and its leaves to `dir`.
    pub fn new(dir: &Path, name: &str) -> Pki {
        let key = KeyPair::generate().expect("CA key");
        let mut params = CertificateParams::default();
        params.distinguished_name = dn(name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let cert = params.self_signed(&key).expect("CA certificate");
        let ca = dir.join(format!("{name}-ca.pem"));
        std::fs::write(&ca, cert.pem()).expect("write the CA certificate");
        Pki {
            dir: dir.to_owned(),
            issuer: Issuer::new(params, key),
            ca,
        }
    }

    /// A leaf with common name `cn`, valid from an hour ago for a day,
    /// written to `<file>.pem` and `<file>-key.pem`.
    pub fn leaf(&self, file: &str, cn: &str) -> CertFiles {
        let now = OffsetDateTime::now_utc();
        self.leaf_valid(file, cn, now - Duration::hours(1), now + Duration::days(1))
    }

    /// As [`Pki::leaf`], but expired an hour ago.
    pub fn expired_leaf(&self, file: &str, cn: &str) -> CertFiles {
        let now = OffsetDateTime::now_utc();
        self.leaf_valid(file, cn, now - Duration::days(2), now - Duration::hours(1))
    }

    fn leaf_valid(
        &self,
        file: &str,
        cn: &str,
        not_before: OffsetDateTime,
        not_after: OffsetDateTime,
    ) -> CertFiles {
        let key = KeyPair::generate().expect("leaf key");
        let params = leaf_params(cn, not_before, not_after);
        let cert = params.signed_by(&key, &self.issuer).expect("sign the leaf");
        write(&self.dir, file, &cert.pem(), &key.serialize_pem())
    }
}

/// A self-signed leaf with common name `cn` that no CA vouches for, valid
/// from an hour ago for a day, written to `dir/<file>.pem` and
/// `dir/<file>-key.pem`.
pub fn self_signed(dir: &Path, file: &str, cn: &str) -> CertFiles {
    let key = KeyPair::generate().expect("leaf key");
    let now = OffsetDateTime::now_utc();
    let params = leaf_params(cn, now - Duration::hours(1), now + Duration::days(1));
    let cert = params.self_signed(&key).expect("self-signed leaf");
    write(dir, file, &cert.pem(), &key.serialize_pem())
}

fn leaf_params(
    cn: &str,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
) -> CertificateParams {
    let mut params = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
        .expect("leaf names");
    params.distinguished_name = dn(cn);
    params.not_before = not_before;
    params.not_after = not_after;
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    params
}

fn dn(cn: &str) -> DistinguishedName {
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, cn);
    name
}

fn write(dir: &Path, file: &str, cert: &str, key: &str) -> CertFiles {
    let files = CertFiles {
        cert: dir.join(format!("{file}.pem")),
        key: dir.join(format!("{file}-key.pem")),
    };
    std::fs::write(&files.cert, cert).expect("write the certificate");
    std::fs::write(&files.key, key).expect("write the key");
    files
}
