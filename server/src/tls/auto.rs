//! Self-signed certificates for `--auto-tls` and `--peer-auto-tls` (etcd
//! `transport.SelfCert`): generated once into `<data-dir>/fixtures/client`
//! or `.../peer` as `cert.pem` and `key.pem`, and reused while both files
//! exist. The certificate names the hosts of the listen URLs (IP addresses
//! as IP SANs, names as DNS SANs) and the organization `etcd`.

use std::io::Write;
use std::path::{Path, PathBuf};

use rcgen::{
    CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, KeyPair,
    KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, SanType,
};
use url::Url;

use super::TlsError;

/// Days in one year of `--self-signed-cert-validity`.
const DAYS_PER_YEAR: i64 = 365;

/// Paths of a generated (or reused) certificate and its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SelfCert {
    /// The PEM certificate.
    pub cert_file: PathBuf,
    /// The PEM private key (mode 0600).
    pub key_file: PathBuf,
}

/// The self-signed certificate in `dir`, generated for the hosts of
/// `urls` and valid for `validity_years` from now if `dir` does not hold
/// one yet.
///
/// Errors: [`TlsError::Generate`] when `dir` cannot be created, the
/// certificate cannot be made, or the files cannot be written.
pub fn self_cert(dir: &Path, urls: &[Url], validity_years: u32) -> Result<SelfCert, TlsError> {
    let fail = |reason: String| TlsError::Generate {
        dir: dir.to_owned(),
        reason,
    };
    let paths = SelfCert {
        cert_file: dir.join("cert.pem"),
        key_file: dir.join("key.pem"),
    };
    if paths.cert_file.is_file() && paths.key_file.is_file() {
        return Ok(paths);
    }
    std::fs::create_dir_all(dir).map_err(|e| fail(e.to_string()))?;
    let (cert_pem, key_pem) = generate(urls, validity_years).map_err(|e| fail(e.to_string()))?;
    write_file(&paths.cert_file, &cert_pem, 0o644).map_err(|e| fail(e.to_string()))?;
    write_file(&paths.key_file, &key_pem, 0o600).map_err(|e| fail(e.to_string()))?;
    tracing::info!(path = %paths.cert_file.display(), "created self-signed certificate");
    Ok(paths)
}

/// A new ECDSA P-256 key and a certificate for the hosts of `urls`, both
/// PEM.
///
/// Errors: rcgen cannot build or sign the certificate.
fn generate(urls: &[Url], validity_years: u32) -> Result<(String, String), rcgen::Error> {
    let mut params = CertificateParams::default();
    let mut name = DistinguishedName::new();
    name.push(DnType::OrganizationName, "etcd");
    params.distinguished_name = name;
    params.subject_alt_names = hosts(urls)?;
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now;
    params.not_after = now + time::Duration::days(DAYS_PER_YEAR * i64::from(validity_years));
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    // Peers show the same certificate when they dial each other.
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
    let cert = params.self_signed(&key)?;
    Ok((cert.pem(), key.serialize_pem()))
}

/// The subject alternative names of `urls`' hosts, without duplicates.
///
/// Errors: a host name that is not a valid DNS name.
fn hosts(urls: &[Url]) -> Result<Vec<SanType>, rcgen::Error> {
    let mut names = Vec::with_capacity(urls.len());
    for url in urls {
        let san = match url.host() {
            Some(url::Host::Ipv4(ip)) => SanType::IpAddress(ip.into()),
            Some(url::Host::Ipv6(ip)) => SanType::IpAddress(ip.into()),
            Some(url::Host::Domain(name)) => SanType::DnsName(name.to_owned().try_into()?),
            None => continue,
        };
        if !names.contains(&san) {
            names.push(san);
        }
    }
    Ok(names)
}

fn write_file(path: &Path, text: &str, mode: u32) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, mode);
    #[cfg(not(unix))]
    let _ = mode;
    let mut file = options.open(path)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn generates_once_and_reuses() {
        let dir = tempfile::tempdir().unwrap();
        let fixtures = dir.path().join("fixtures/peer");
        let urls = [Url::parse("https://127.0.0.1:2380").unwrap()];
        let first = self_cert(&fixtures, &urls, 1).unwrap();
        let pem = std::fs::read(&first.cert_file).unwrap();
        let certs = keel_tls::pem::read_certs(&first.cert_file, "cert").unwrap();
        assert_eq!(certs.len(), 1);
        keel_tls::pem::read_key(&first.key_file).unwrap();
        let again = self_cert(&fixtures, &urls, 1).unwrap();
        assert_eq!(again, first);
        assert_eq!(std::fs::read(&again.cert_file).unwrap(), pem);
    }

    #[test]
    fn hosts_become_ip_and_dns_names() {
        let urls = [
            Url::parse("https://127.0.0.1:2380").unwrap(),
            Url::parse("https://localhost:2380").unwrap(),
            Url::parse("https://127.0.0.1:2381").unwrap(),
        ];
        let names = hosts(&urls).unwrap();
        assert_eq!(names.len(), 2);
        assert_eq!(names[0], SanType::IpAddress("127.0.0.1".parse().unwrap()));
    }
}
