//! keel's TLS client side, one copy for the member dialing its `https://`
//! peers (keel-server) and for keelctl dialing `https://` endpoints: rustls
//! with the ring provider, as etcd's `pkg/transport` `TLSInfo.ClientConfig`
//! and Go's `tls.Config` on the client side.
//!
//! - [`provider`]: the crypto provider every TLS setting of keel uses.
//! - [`pem`]: certificates, private keys and CA bundles read from PEM files.
//! - [`client_config`]: rustls client settings: whom to trust (a CA, or any
//!   certificate as `--insecure-skip-tls-verify` and self-signed peers),
//!   which client certificate to present.
//! - [`connector`]: TCP + TLS for tonic's `Endpoint::connect_with_connector`.
//! - [`error`]: why settings could not be built, naming the file.
//! - `test_pki` (feature `test-pki`, tests only): a CA and certificates
//!   made with rcgen at test time.
//!
//! Real sockets only: keel-server takes this crate only outside madsim.

pub mod client_config;
pub mod connector;
pub mod error;
mod insecure;
pub mod pem;
pub mod provider;
#[cfg(any(test, feature = "test-pki"))]
pub mod test_pki;

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests;

pub use client_config::{Identity, ServerTrust, client_config};
pub use connector::{ETCD_CLIENT_PORT, HTTPS_PORT, TlsConnector, TlsIo};
pub use error::TlsError;
pub use provider::{GRPC_ALPN, provider};
/// The rustls version these settings are made with, for callers naming
/// its types (`ClientConfig`, `RootCertStore`).
pub use rustls;
