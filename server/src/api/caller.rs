//! Who sent a request: the simple token a client puts in its gRPC
//! metadata, under `token` (etcd's own clients) or `authorization`
//! (grpc-gateway forwards the HTTP `Authorization` header there), and the
//! user it stands for (etcd `auth/store.go` `AuthInfoFromCtx`); without a
//! token, with `--client-cert-auth`, the common name of the client's
//! verified TLS certificate (etcd `AuthInfoFromTLS`). Requests through the
//! HTTP/JSON gateway carry no certificate user, as etcd ignores the common
//! name of gateway requests.

use keel_kernel::auth::{AuthError, AuthInfo};
use tonic::metadata::MetadataMap;
use tonic::{Request as GrpcRequest, Status};

use super::status;
use crate::replica::Replica;

/// gRPC metadata key of the simple token (etcd `rpctypes.TokenFieldNameGRPC`).
pub const TOKEN_METADATA_KEY: &str = "token";

/// The metadata key etcd reads a token from when `token` is absent (etcd
/// `rpctypes.TokenFieldNameSwagger`).
pub const AUTHORIZATION_METADATA_KEY: &str = "authorization";

/// Scheme prefix a gateway client may put before the token in an HTTP
/// `Authorization` header; etcd 3.5.10+/3.6 strip it.
const BEARER_PREFIX: &str = "Bearer ";

/// The token `metadata` carries: the first `token` value, else the first
/// `authorization` value without a leading `"Bearer "`; `None` when
/// neither key is present.
///
/// Errors: a value that is not visible ASCII → [`AuthError::InvalidAuthToken`]
/// (no token has such bytes).
pub fn request_token(metadata: &MetadataMap) -> Result<Option<&str>, AuthError> {
    let value = metadata
        .get(TOKEN_METADATA_KEY)
        .or_else(|| metadata.get(AUTHORIZATION_METADATA_KEY));
    let Some(value) = value else {
        return Ok(None);
    };
    let token = value.to_str().map_err(|_| AuthError::InvalidAuthToken)?;
    Ok(Some(token.strip_prefix(BEARER_PREFIX).unwrap_or(token)))
}

/// What a request presents to be identified.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Credentials {
    /// The token of its metadata ([`request_token`]).
    pub token: Option<String>,
    /// With `--client-cert-auth`, the common name of its connection's
    /// verified client certificate.
    pub cert_user: Option<String>,
}

/// The credentials of `request`: its token, and the certificate user
/// tonic put in its extensions (`crate::tls::ConnInfo`).
///
/// Errors: as [`request_token`].
pub fn request_credentials<T>(request: &GrpcRequest<T>) -> Result<Credentials, AuthError> {
    let token = request_token(request.metadata())?.map(str::to_owned);
    #[cfg(not(madsim))]
    let cert_user = request
        .extensions()
        .get::<crate::tls::ConnInfo>()
        .and_then(|info| info.cert_user.clone());
    #[cfg(madsim)]
    let cert_user = None;
    Ok(Credentials { token, cert_user })
}

/// Who presents `credentials`: the user of the token if there is one
/// ([`token_caller`]), else the certificate user while auth is enabled
/// (etcd: a token wins; the common name is used only without one), else
/// "no user".
///
/// Errors: as [`token_caller`].
pub fn credentials_caller<B: Replica>(
    replica: &B,
    credentials: &Credentials,
) -> Result<AuthInfo, AuthError> {
    if credentials.token.is_some() {
        return token_caller(replica, credentials.token.as_deref());
    }
    let Some(user) = &credentials.cert_user else {
        return Ok(AuthInfo::default());
    };
    Ok(replica.with_state(|state| match state.auth().is_enabled() {
        true => AuthInfo {
            username: user.clone(),
            revision: state.auth().revision(),
        },
        false => AuthInfo::default(),
    }))
}

/// Who sent `request`: the user its token (or, without one, its client
/// certificate, see [`credentials_caller`]) stands for while auth is
/// enabled, else "no user" (`AuthInfo::default()`, which the kernel
/// refuses while auth is enabled with etcd's "user name is empty").
///
/// A token is ignored while auth is disabled, as in etcd 3.4.28+,
/// 3.5.10+ and 3.6 (etcd PR 13577: disabling auth must not break clients
/// that still send their token); etcd 3.4.23 refused it instead (see
/// `docs/auth-compat.md`).
///
/// Errors: auth enabled and an unknown or expired token →
/// [`AuthError::InvalidAuthToken`].
pub fn request_caller<B: Replica, T>(
    replica: &B,
    request: &GrpcRequest<T>,
) -> Result<AuthInfo, AuthError> {
    credentials_caller(replica, &request_credentials(request)?)
}

/// Who a request carrying `token` (as [`request_token`] read it) comes
/// from; see [`request_caller`]. Streams that check every message (lease
/// keep-alives) call this once per message, as etcd reads the caller from
/// the stream's context each time.
///
/// Errors: auth enabled and an unknown or expired token →
/// [`AuthError::InvalidAuthToken`].
pub fn token_caller<B: Replica>(replica: &B, token: Option<&str>) -> Result<AuthInfo, AuthError> {
    let Some(token) = token else {
        return Ok(AuthInfo::default());
    };
    // While auth is disabled a token is ignored, JWT or not.
    if !replica.with_state(|state| state.auth().is_enabled()) {
        return Ok(AuthInfo::default());
    }
    if let Some(jwt) = replica.jwt() {
        return jwt.verify(token);
    }
    replica.authenticate_token(token)
}

/// [`request_caller`] for unary requests: a bad token fails the call.
///
/// Errors: auth enabled and an unknown or expired token → Unauthenticated
/// "etcdserver: invalid auth token".
/// Also refuses every call on a learner (see [`super::learner`]).
pub fn request_auth<B: Replica, T>(
    replica: &B,
    request: &GrpcRequest<T>,
) -> Result<AuthInfo, Status> {
    super::learner::refuse_on_learner(replica)?;
    request_auth_on_learner(replica, request)
}

/// [`request_auth`] for the calls a learner serves too (Status,
/// serializable Range).
///
/// Errors: as [`request_auth`], but never the learner refusal.
pub fn request_auth_on_learner<B: Replica, T>(
    replica: &B,
    request: &GrpcRequest<T>,
) -> Result<AuthInfo, Status> {
    request_caller(replica, request).map_err(status::auth_error)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn metadata(pairs: &[(&'static str, &str)]) -> MetadataMap {
        let mut map = MetadataMap::new();
        for (key, value) in pairs {
            map.append(*key, value.parse().unwrap());
        }
        map
    }

    #[test]
    fn token_then_authorization_then_none() {
        assert_eq!(request_token(&metadata(&[])), Ok(None));
        let both = metadata(&[("authorization", "b.2"), ("token", "a.1")]);
        assert_eq!(request_token(&both), Ok(Some("a.1")));
        let gateway = metadata(&[("authorization", "b.2")]);
        assert_eq!(request_token(&gateway), Ok(Some("b.2")));
        let bearer = metadata(&[("authorization", "Bearer b.2")]);
        assert_eq!(request_token(&bearer), Ok(Some("b.2")));
        let first = metadata(&[("token", "a.1"), ("token", "c.3")]);
        assert_eq!(request_token(&first), Ok(Some("a.1")));
        assert_eq!(request_token(&metadata(&[("token", "")])), Ok(Some("")));
    }
}
