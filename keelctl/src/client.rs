//! Dialing the cluster: endpoints, TLS (`--cacert --cert --key`), user
//! and password (`--user name[:password]`, `--password`, a prompt
//! otherwise), dial and command timeouts, as etcdctl's
//! `clientConfigFromCmd` (etcdctl/ctlv3/command/global.go).
//!
//! - [`tls`]: keelctl's own rustls connector (`--insecure-skip-tls-verify`).
//! - [`channel`]: a tonic channel dialed with it, for etcd-client's
//!   `Client::from_channel` and for RPCs etcd-client has no method for.

pub mod channel;
pub mod tls;

use std::future::Future;
use std::time::Duration;

use etcd_client::{Certificate, Client, ConnectOptions, Identity, TlsOptions};

use crate::cli::GlobalArgs;
use crate::error::{CtlError, EXIT_BAD_ARGS, EXIT_BAD_CONNECTION, EXIT_ERROR, client_message};

/// A connected client with the command timeout of this invocation.
pub struct Ctl {
    /// The etcd-client connection.
    pub client: Client,
    /// `--command-timeout`: the limit of each short request.
    pub command_timeout: Duration,
    /// The user name and password the client authenticated with, if any.
    pub credentials: Option<(String, String)>,
}

impl Ctl {
    /// Runs one request under `--command-timeout`; a request that passes
    /// it fails with `context deadline exceeded` (etcdctl's message).
    ///
    /// # Errors
    /// The request's error, or the timeout.
    pub async fn call<T>(
        &self,
        request: impl Future<Output = Result<T, etcd_client::Error>>,
    ) -> Result<T, CtlError> {
        with_timeout(self.command_timeout, request).await
    }
}

/// Runs `request` for at most `limit`.
///
/// # Errors
/// The request's error (etcdctl's wording), or `context deadline exceeded`.
pub async fn with_timeout<T>(
    limit: Duration,
    request: impl Future<Output = Result<T, etcd_client::Error>>,
) -> Result<T, CtlError> {
    match tokio::time::timeout(limit, request).await {
        Ok(result) => result.map_err(CtlError::from),
        Err(_) => Err(CtlError::error("context deadline exceeded")),
    }
}

/// The endpoints as URLs: etcdctl takes `host:port` as plain HTTP (or
/// HTTPS when TLS flags are given).
pub fn endpoint_urls(global: &GlobalArgs) -> Vec<String> {
    let scheme = if uses_tls(global) { "https" } else { "http" };
    global
        .endpoints
        .iter()
        .map(|e| e.trim())
        .filter(|e| !e.is_empty())
        .map(|e| {
            if e.contains("://") {
                e.to_owned()
            } else {
                format!("{scheme}://{e}")
            }
        })
        .collect()
}

/// Whether TLS is configured: any of `--cacert --cert --key`, or
/// `--insecure-transport=false` (etcdctl's `cfg.TLS != nil`).
pub fn uses_tls(global: &GlobalArgs) -> bool {
    global.cacert.is_some()
        || global.cert.is_some()
        || global.key.is_some()
        || !global.insecure_transport
}

/// Whether every endpoint names the `http://` scheme: clientv3 dials those
/// in the clear whatever the TLS flags say.
fn all_plain_urls(global: &GlobalArgs) -> bool {
    let urls = endpoint_urls(global);
    !urls.is_empty() && urls.iter().all(|u| u.starts_with("http://"))
}

/// `--insecure-skip-tls-verify` with TLS configured (etcdctl ignores it
/// otherwise) and an endpoint to dial over TLS.
fn skips_verify(global: &GlobalArgs) -> bool {
    global.insecure_skip_tls_verify && uses_tls(global) && !all_plain_urls(global)
}

/// Connects to the endpoints, authenticating when `--user` is given.
///
/// # Errors
/// Bad TLS files (exit 128), a failed password prompt (exit 1), or a
/// cluster that refuses the user (exit 2).
pub async fn connect(global: &GlobalArgs) -> Result<Ctl, CtlError> {
    let credentials = credentials(global)?;
    let options = connect_options(global, credentials.clone())?;
    let limit = global.dial_timeout + global.command_timeout;
    if skips_verify(global) {
        let dial = async {
            let channel = channel::connect(global).await?;
            Client::from_channel(etcd_client::Channel::Tonic(channel), Some(options))
                .await
                .map_err(|e| CtlError::new(EXIT_BAD_CONNECTION, client_message(&e)))
        };
        let client = match tokio::time::timeout(limit, dial).await {
            Ok(result) => result?,
            Err(_) => {
                return Err(CtlError::new(
                    EXIT_BAD_CONNECTION,
                    "context deadline exceeded",
                ));
            }
        };
        return Ok(Ctl {
            client,
            command_timeout: global.command_timeout,
            credentials,
        });
    }
    let endpoints = endpoint_urls(global);
    let dial = Client::connect(endpoints, Some(options));
    let client = match tokio::time::timeout(limit, dial).await {
        Ok(Ok(client)) => client,
        Ok(Err(e)) => return Err(CtlError::new(EXIT_BAD_CONNECTION, client_message(&e))),
        Err(_) => {
            return Err(CtlError::new(
                EXIT_BAD_CONNECTION,
                "context deadline exceeded",
            ));
        }
    };
    Ok(Ctl {
        client,
        command_timeout: global.command_timeout,
        credentials,
    })
}

fn connect_options(
    global: &GlobalArgs,
    credentials: Option<(String, String)>,
) -> Result<ConnectOptions, CtlError> {
    let mut options = ConnectOptions::new()
        .with_connect_timeout(global.dial_timeout)
        .with_keep_alive(global.keepalive_time, global.keepalive_timeout);
    if let Some((user, password)) = credentials {
        options = options.with_user(user, password);
    }
    if uses_tls(global) && !all_plain_urls(global) {
        options = options.with_tls(tls_options(global)?);
    }
    Ok(options)
}

/// `--user` and `--password` as etcdctl's `authCfgFromCmd` reads them.
fn credentials(global: &GlobalArgs) -> Result<Option<(String, String)>, CtlError> {
    let Some(user) = global.user.as_deref().filter(|u| !u.is_empty()) else {
        return Ok(None);
    };
    if let Some(password) = global.password.as_deref().filter(|p| !p.is_empty()) {
        return Ok(Some((user.to_owned(), password.to_owned())));
    }
    if let Some((name, password)) = user.split_once(':') {
        return Ok(Some((name.to_owned(), password.to_owned())));
    }
    let password = rpassword::prompt_password("Password: ")
        .map_err(|e| CtlError::new(EXIT_ERROR, e.to_string()))?;
    Ok(Some((user.to_owned(), password)))
}

fn tls_options(global: &GlobalArgs) -> Result<TlsOptions, CtlError> {
    for (flag, value) in [
        ("cert", &global.cert),
        ("key", &global.key),
        ("cacert", &global.cacert),
    ] {
        if value.as_deref() == Some("") {
            return Err(CtlError::bad_args(format!(
                "empty string is passed to --{flag} option"
            )));
        }
    }
    if global.cert.is_some() != global.key.is_some() {
        // etcd's transport.TLSInfo.ClientConfig wording.
        return Err(CtlError::new(
            EXIT_BAD_ARGS,
            format!(
                "KeyFile and CertFile must both be present[key: {}, cert: {}]",
                global.key.as_deref().unwrap_or_default(),
                global.cert.as_deref().unwrap_or_default()
            ),
        ));
    }
    if skips_verify(global) {
        // keelctl's own connector reads the files (see `channel`).
        return Ok(TlsOptions::new());
    }
    let mut tls = TlsOptions::new();
    if let Some(path) = &global.cacert {
        tls = tls.ca_certificate(Certificate::from_pem(read(path)?));
    }
    if let (Some(cert), Some(key)) = (&global.cert, &global.key) {
        tls = tls.identity(Identity::from_pem(read(cert)?, read(key)?));
    }
    Ok(tls)
}

fn read(path: &str) -> Result<Vec<u8>, CtlError> {
    std::fs::read(path).map_err(|e| CtlError::bad_args(format!("open {path}: {e}")))
}
