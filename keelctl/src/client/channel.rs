//! A tonic channel keelctl dials itself (etcd-client dials the usual
//! ones): plain, or TLS through [`super::tls`]'s rustls connector, to the
//! first of the endpoints that answers. Used for
//! `--insecure-skip-tls-verify` (handed to etcd-client with
//! `Client::from_channel`) and for the RPCs etcd-client has no method for.

use http::Uri;
use tonic::transport::{Channel, Endpoint};

use super::tls::{TlsConnector, TlsFiles, client_config};
use crate::cli::GlobalArgs;
use crate::error::{CtlError, EXIT_BAD_CONNECTION};

/// One endpoint: where to dial and whether over TLS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// `http://host:port`: the URI tonic is given (TLS, when asked for, is
    /// the connector's business).
    pub uri: String,
    /// Whether the connection is TLS.
    pub tls: bool,
}

/// Where each endpoint URL (`http://`, `https://`) leads, as etcdctl's
/// clientv3 reads the scheme: `http://` is plain even with TLS flags,
/// `https://` is TLS.
pub fn targets(urls: &[String]) -> Vec<Target> {
    urls.iter()
        .map(|url| match url.strip_prefix("https://") {
            Some(rest) => Target {
                uri: format!("http://{rest}"),
                tls: true,
            },
            None => Target {
                uri: url.clone(),
                tls: false,
            },
        })
        .collect()
}

/// The TLS files and switches of the global flags.
pub fn tls_files(global: &GlobalArgs) -> TlsFiles {
    TlsFiles {
        cacert: global.cacert.clone(),
        identity: global.cert.clone().zip(global.key.clone()),
        skip_verify: global.insecure_skip_tls_verify,
    }
}

/// Connects to the first of `global`'s endpoints that completes a
/// connection (and TLS handshake) within `--dial-timeout`.
///
/// # Errors
/// Bad TLS files (exit 128); no endpoint answered (exit 2, with the last
/// endpoint's reason).
pub async fn connect(global: &GlobalArgs) -> Result<Channel, CtlError> {
    let urls = super::endpoint_urls(global);
    let mut last = CtlError::new(EXIT_BAD_CONNECTION, "no endpoints");
    let mut connector = None;
    for target in targets(&urls) {
        let endpoint = endpoint(global, &target.uri)?;
        let dialed = if target.tls {
            if connector.is_none() {
                connector = Some(TlsConnector::new(client_config(&tls_files(global))?));
            }
            let Some(connector) = connector.clone() else {
                continue;
            };
            endpoint.connect_with_connector(connector).await
        } else {
            endpoint.connect().await
        };
        match dialed {
            Ok(channel) => return Ok(channel),
            Err(e) => last = CtlError::new(EXIT_BAD_CONNECTION, dial_message(&e)),
        }
    }
    Err(last)
}

fn endpoint(global: &GlobalArgs, uri: &str) -> Result<Endpoint, CtlError> {
    let parsed: Uri = uri
        .parse()
        .map_err(|e| CtlError::bad_args(format!("bad endpoint {uri}: {e}")))?;
    Ok(Endpoint::from(parsed)
        .connect_timeout(global.dial_timeout)
        .http2_keep_alive_interval(global.keepalive_time)
        .keep_alive_timeout(global.keepalive_timeout))
}

/// etcdctl's `context deadline exceeded`, with the cause (a refused
/// connection, an untrusted certificate) after it.
fn dial_message(error: &tonic::transport::Error) -> String {
    let mut causes = Vec::new();
    let mut source: Option<&dyn std::error::Error> = std::error::Error::source(error);
    while let Some(cause) = source {
        causes.push(cause.to_string());
        source = cause.source();
    }
    match causes.last() {
        Some(cause) => format!("context deadline exceeded ({cause})"),
        None => "context deadline exceeded".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemes_choose_tls() {
        let urls = vec![
            "https://127.0.0.1:1".to_owned(),
            "http://127.0.0.1:2".to_owned(),
        ];
        assert_eq!(
            targets(&urls),
            vec![
                Target {
                    uri: "http://127.0.0.1:1".to_owned(),
                    tls: true
                },
                Target {
                    uri: "http://127.0.0.1:2".to_owned(),
                    tls: false
                },
            ]
        );
    }
}
