//! TCP + TLS to an `https://` peer URL, for tonic's
//! `Endpoint::connect_with_connector`, which `transport::dial` hands an
//! `http://` URI: keel-tls's dialer, shared with keelctl.

pub use keel_tls::{TlsConnector, TlsIo};
