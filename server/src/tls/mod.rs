//! TLS on the client and peer ports, with rustls and its ring provider
//! (etcd `pkg/transport`): one acceptor per port kind, shared by gRPC and
//! the HTTP/JSON gateway on the client port; a connector for the peer
//! transport's gRPC client.
//!
//! - [`auto`]: self-signed certificates for `--auto-tls` /
//!   `--peer-auto-tls`, kept under `<data-dir>/fixtures/` as etcd does.
//! - [`server_config`]: rustls server settings (ALPN, client certificates).
//! - [`client_config`]: the rustls client settings a member dials its
//!   peers with (built by keel-tls, shared with keelctl, as are reading
//!   PEM files and the connector).
//! - [`identity`]: the common name of a verified client certificate (etcd's
//!   CN auth).
//! - [`stream`]: an accepted connection, plain or TLS, with what tonic
//!   passes to the services about it.
//! - [`acceptor`]: the handshake of one accepted connection, and a stream
//!   of handshaken peer connections for tonic.
//! - [`connector`]: TCP + TLS for tonic's `Endpoint::connect_with_connector`.
//! - [`member`]: everything a member needs, built from its configuration.
//!
//! Real sockets only: under madsim nothing here is compiled and the
//! simulated network carries requests in the clear.

pub mod acceptor;
pub mod auto;
pub mod client_config;
pub mod connector;
pub mod error;
pub mod identity;
pub mod member;
pub mod server_config;
pub mod stream;

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests;

pub use acceptor::Acceptor;
pub use error::TlsError;
pub use member::MemberTls;
pub use stream::{ConnInfo, ServerStream};
