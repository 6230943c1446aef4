//! Certificates, private keys and CA bundles read from PEM files with
//! rustls' pki-types parser.

use std::path::Path;

use rustls::RootCertStore;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::TlsError;

/// Reads every certificate of the PEM file at `path` (a chain: leaf
/// first); `what` names the file in errors ("certificate file").
///
/// Errors: [`TlsError::Read`] when the file cannot be opened or holds bad
/// PEM; [`TlsError::Empty`] when it holds no certificate.
pub fn read_certs(
    path: &Path,
    what: &'static str,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|err| read_error(what, path, err))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| read_error(what, path, err))?;
    if certs.is_empty() {
        return Err(TlsError::Empty {
            what: "certificate",
            path: path.to_owned(),
        });
    }
    Ok(certs)
}

/// Reads the first private key (PKCS#8, PKCS#1 or SEC1) of the PEM file
/// at `path`.
///
/// Errors: [`TlsError::Read`] when the file cannot be opened or holds bad
/// PEM; [`TlsError::Empty`] when it holds no private key.
pub fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path).map_err(|err| match err {
        pem::Error::NoItemsFound => TlsError::Empty {
            what: "private key",
            path: path.to_owned(),
        },
        err => read_error("key file", path, err),
    })
}

/// The CA certificates of the PEM file at `path`, as a trust store;
/// `what` names the file in errors ("trusted CA file").
///
/// Errors: as [`read_certs`]; [`TlsError::Anchor`] when a certificate of
/// the file cannot serve as a trust anchor.
pub fn read_roots(path: &Path, what: &'static str) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in read_certs(path, what)? {
        roots.add(cert).map_err(|err| TlsError::Anchor {
            what,
            path: path.to_owned(),
            reason: err.to_string(),
        })?;
    }
    Ok(roots)
}

fn read_error(what: &'static str, path: &Path, err: pem::Error) -> TlsError {
    TlsError::Read {
        what,
        path: path.to_owned(),
        reason: err.to_string(),
    }
}
