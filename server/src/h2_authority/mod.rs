//! Repairing the `:authority` of HTTP/2 requests that carry a URL instead of
//! `host:port`.
//!
//! etcdctl 3.4 (grpc-go 1.26) dials some endpoints — those of `endpoint
//! status`, `endpoint hashkv` and `defrag` — with the endpoint URL as the
//! gRPC target, so it sends `:authority: http://127.0.0.1:2379`. RFC 9113
//! §8.3.1 says `:authority` is the URI's authority part (RFC 3986 §3.2), and
//! `h2`, under tonic, refuses such a request with `RST_STREAM(PROTOCOL_ERROR)`
//! (hyperium/h2#525, no lenient option). etcd's Go server accepts it.
//!
//! [`InboundFilter`] sits on the bytes a client sends, before `h2` parses
//! them: it forwards everything unchanged until the first header block of the
//! connection. If that block's `:authority` is a valid authority, the filter
//! steps out of the way for the rest of the connection. If it is a URL, the
//! filter decodes every header block of the connection (HPACK, RFC 7541,
//! through `loona-hpack`), replaces the URL by its `host:port` part, and
//! re-encodes the block with literals only, so `h2`'s HPACK table is never
//! out of step with what it receives. [`FixedAuthorityStream`] applies the
//! filter to a socket (the gateway's listener wraps every gRPC connection
//! in it).

mod authority;
mod filter;
mod frame;
mod header_block;
mod stream;

pub use filter::{FilterError, InboundFilter};
pub use stream::FixedAuthorityStream;
