//! Dialing the cluster: endpoints, TLS (`--cacert --cert --key`), user
//! and password (`--user name[:password]`, `--password`, a prompt
//! otherwise), dial and command timeouts, as etcdctl's
//! `clientConfigFromCmd` (etcdctl/ctlv3/command/global.go).

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

fn uses_tls(global: &GlobalArgs) -> bool {
    global.cacert.is_some()
        || global.cert.is_some()
        || global.key.is_some()
        || !global.insecure_transport
}

/// Connects to the endpoints, authenticating when `--user` is given.
///
/// # Errors
/// Bad TLS files (exit 128), a failed password prompt (exit 1), or a
/// cluster that refuses the user (exit 2).
pub async fn connect(global: &GlobalArgs) -> Result<Ctl, CtlError> {
    let options = connect_options(global)?;
    let endpoints = endpoint_urls(global);
    let dial = Client::connect(endpoints, Some(options));
    let client =
        match tokio::time::timeout(global.dial_timeout + global.command_timeout, dial).await {
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
    })
}

fn connect_options(global: &GlobalArgs) -> Result<ConnectOptions, CtlError> {
    let mut options = ConnectOptions::new()
        .with_connect_timeout(global.dial_timeout)
        .with_keep_alive(global.keepalive_time, global.keepalive_timeout);
    if let Some((user, password)) = credentials(global)? {
        options = options.with_user(user, password);
    }
    if uses_tls(global) {
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
    if global.insecure_skip_tls_verify {
        return Err(CtlError::bad_feature(
            "--insecure-skip-tls-verify is not supported by keelctl; pass --cacert",
        ));
    }
    let mut tls = TlsOptions::new();
    if let Some(path) = &global.cacert {
        tls = tls.ca_certificate(Certificate::from_pem(read(path)?));
    }
    match (&global.cert, &global.key) {
        (Some(cert), Some(key)) => {
            tls = tls.identity(Identity::from_pem(read(cert)?, read(key)?));
        }
        (None, None) => {}
        _ => {
            return Err(CtlError::new(
                EXIT_BAD_ARGS,
                "--cert and --key must be given together",
            ));
        }
    }
    Ok(tls)
}

fn read(path: &str) -> Result<Vec<u8>, CtlError> {
    std::fs::read(path).map_err(|e| CtlError::bad_args(format!("open {path}: {e}")))
}
