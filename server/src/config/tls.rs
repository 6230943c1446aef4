//! etcd's TLS flags, client side (`--cert-file`, `--key-file`,
//! `--trusted-ca-file`, `--client-cert-auth`, `--auto-tls`) and peer side
//! (the same with `--peer-`), and `--self-signed-cert-validity` (etcd
//! `etcdmain/config.go`, `embed/config.go`).
//!
//! [`TlsFlags`] is flattened into [`super::Flags`]; [`TlsFlags::validate`]
//! checks them against the URLs and yields a [`TlsConfig`] of paths and
//! switches. Nothing here reads a file: certificates are loaded when the
//! member starts (`crate::tls`).

use std::path::PathBuf;

use clap::{ArgAction, Args};
use url::Url;

use super::ConfigError;

/// Longest `--self-signed-cert-validity` accepted, in years.
pub const SELF_SIGNED_CERT_VALIDITY_YEARS_MAX: u32 = 100;

/// The TLS flags, as etcd spells them.
#[derive(Debug, Clone, Args)]
pub struct TlsFlags {
    /// Path to the client server TLS cert file.
    #[arg(long, env = "ETCD_CERT_FILE")]
    pub cert_file: Option<PathBuf>,
    /// Path to the client server TLS key file.
    #[arg(long, env = "ETCD_KEY_FILE")]
    pub key_file: Option<PathBuf>,
    /// Path to the client server TLS trusted CA cert file; client
    /// certificates are then required and verified against it.
    #[arg(long, env = "ETCD_TRUSTED_CA_FILE")]
    pub trusted_ca_file: Option<PathBuf>,
    /// Enable client cert authentication (with auth enabled, a client
    /// certificate's common name is the user).
    #[arg(long, env = "ETCD_CLIENT_CERT_AUTH", action = ArgAction::Set,
        num_args = 0..=1, default_value_t = false, default_missing_value = "true")]
    pub client_cert_auth: bool,
    /// Client TLS using generated certificates.
    #[arg(long, env = "ETCD_AUTO_TLS", action = ArgAction::Set,
        num_args = 0..=1, default_value_t = false, default_missing_value = "true")]
    pub auto_tls: bool,
    /// Path to the peer server TLS cert file.
    #[arg(long, env = "ETCD_PEER_CERT_FILE")]
    pub peer_cert_file: Option<PathBuf>,
    /// Path to the peer server TLS key file.
    #[arg(long, env = "ETCD_PEER_KEY_FILE")]
    pub peer_key_file: Option<PathBuf>,
    /// Path to the peer server TLS trusted CA file; peer certificates are
    /// then required and verified against it.
    #[arg(long, env = "ETCD_PEER_TRUSTED_CA_FILE")]
    pub peer_trusted_ca_file: Option<PathBuf>,
    /// Enable peer client cert authentication.
    #[arg(long, env = "ETCD_PEER_CLIENT_CERT_AUTH", action = ArgAction::Set,
        num_args = 0..=1, default_value_t = false, default_missing_value = "true")]
    pub peer_client_cert_auth: bool,
    /// Peer TLS using self-generated certificates if --peer-key-file and
    /// --peer-cert-file are not provided.
    #[arg(long, env = "ETCD_PEER_AUTO_TLS", action = ArgAction::Set,
        num_args = 0..=1, default_value_t = false, default_missing_value = "true")]
    pub peer_auto_tls: bool,
    /// The validity period of the client and peer certificates that are
    /// automatically generated, in years.
    #[arg(long, env = "ETCD_SELF_SIGNED_CERT_VALIDITY", default_value_t = 1)]
    pub self_signed_cert_validity: u32,
}

/// One side's TLS settings (etcd `transport.TLSInfo`): paths as given,
/// not yet read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsInfo {
    /// The server's certificate chain (PEM).
    pub cert_file: Option<PathBuf>,
    /// The server's private key (PEM).
    pub key_file: Option<PathBuf>,
    /// CA certificates (PEM) that client certificates must chain to; when
    /// set, client certificates are required.
    pub trusted_ca_file: Option<PathBuf>,
    /// Client certificates are required (and, on the client side, their
    /// common name names the user).
    pub client_cert_auth: bool,
    /// Generate a self-signed certificate at start when no
    /// certificate is given.
    pub auto_tls: bool,
}

impl TlsInfo {
    /// True when a certificate and key are given (etcd `!TLSInfo.Empty()`).
    pub fn has_cert(&self) -> bool {
        self.cert_file.is_some() && self.key_file.is_some()
    }

    /// True when `https://` URLs can be served: a certificate is given or
    /// will be generated.
    pub fn can_serve_tls(&self) -> bool {
        self.has_cert() || self.auto_tls
    }

    /// True when connecting clients must present a verified certificate
    /// (etcd: `--trusted-ca-file` or `--client-cert-auth`).
    pub fn requires_client_cert(&self) -> bool {
        self.trusted_ca_file.is_some() || self.client_cert_auth
    }
}

/// The validated TLS configuration of a member.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsConfig {
    /// The client port's settings.
    pub client: TlsInfo,
    /// The peer port's settings (also the certificate this member shows
    /// when it connects to its peers).
    pub peer: TlsInfo,
    /// Validity of generated certificates, in years.
    pub self_signed_cert_validity_years: u32,
}

/// The URLs the TLS settings must fit.
pub struct TlsUrls<'a> {
    /// `--listen-client-urls`.
    pub listen_client: &'a [Url],
    /// `--listen-peer-urls`.
    pub listen_peer: &'a [Url],
}

impl TlsFlags {
    /// Checks the flags against `urls` (etcd's rules): a certificate comes
    /// with its key; an `https://` URL needs a certificate or auto TLS;
    /// client certificates need a trusted CA to check them against (keel
    /// has no system trust store for client certificates).
    ///
    /// Errors: [`ConfigError::Tls`] naming the flags concerned.
    pub fn validate(self, urls: &TlsUrls<'_>) -> Result<TlsConfig, ConfigError> {
        let validity = self.self_signed_cert_validity;
        if validity == 0 || validity > SELF_SIGNED_CERT_VALIDITY_YEARS_MAX {
            return Err(ConfigError::Tls(format!(
                "--self-signed-cert-validity must be between 1 and {SELF_SIGNED_CERT_VALIDITY_YEARS_MAX} years, got {validity}"
            )));
        }
        let client = TlsInfo {
            cert_file: self.cert_file,
            key_file: self.key_file,
            trusted_ca_file: self.trusted_ca_file,
            client_cert_auth: self.client_cert_auth,
            auto_tls: self.auto_tls,
        };
        let peer = TlsInfo {
            cert_file: self.peer_cert_file,
            key_file: self.peer_key_file,
            trusted_ca_file: self.peer_trusted_ca_file,
            client_cert_auth: self.peer_client_cert_auth,
            auto_tls: self.peer_auto_tls,
        };
        check_side(&client, "", "client", urls.listen_client)?;
        check_side(&peer, "peer-", "peer", urls.listen_peer)?;
        Ok(TlsConfig {
            client,
            peer,
            self_signed_cert_validity_years: validity,
        })
    }
}

/// Checks one side; `prefix` is `""` or `"peer-"` for the flag names,
/// `kind` names the URLs in messages.
fn check_side(info: &TlsInfo, prefix: &str, kind: &str, listen: &[Url]) -> Result<(), ConfigError> {
    if info.cert_file.is_some() != info.key_file.is_some() {
        return Err(ConfigError::Tls(format!(
            "--{prefix}key-file and --{prefix}cert-file must both be present [key: {}, cert: {}]",
            shown(info.key_file.as_ref()),
            shown(info.cert_file.as_ref()),
        )));
    }
    let https = listen.iter().find(|u| u.scheme() == "https");
    if let Some(url) = https.filter(|_| !info.can_serve_tls()) {
        return Err(ConfigError::Tls(format!(
            "TLS key/cert (--{prefix}cert-file, --{prefix}key-file) must be provided for {kind} url {} with HTTPS scheme",
            crate::node::settings::url_text(url)
        )));
    }
    if info.client_cert_auth && info.trusted_ca_file.is_none() {
        return Err(ConfigError::Tls(format!(
            "--{prefix}client-cert-auth needs --{prefix}trusted-ca-file: the CA that {kind} certificates are verified against"
        )));
    }
    Ok(())
}

fn shown(path: Option<&PathBuf>) -> String {
    path.map_or_else(String::new, |p| p.display().to_string())
}
