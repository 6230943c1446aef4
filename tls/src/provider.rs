//! The crypto provider and ALPN of keel's TLS.

use std::sync::Arc;

use rustls::crypto::CryptoProvider;

/// ALPN protocols of a gRPC client (and of the peer port): HTTP/2 only.
pub const GRPC_ALPN: [&[u8]; 1] = [b"h2"];

/// The crypto provider every TLS setting of keel uses: rustls' ring (what
/// etcd-client's tonic uses too; rustls 0.23.48 deprecates it only for its
/// lack of post-quantum key exchange, which aws-lc-rs would bring with a C
/// toolchain dependency).
#[allow(deprecated)]
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}
