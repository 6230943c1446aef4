//! JSON Web Token auth tokens (`--auth-token jwt,...`), as etcd's
//! `auth/jwt.go`: a login is answered with a token signed by this member's
//! private key whose claims are `username`, `revision` (the auth revision
//! the login was checked at) and `exp` (Unix seconds); every request's
//! token is verified with the public key, so any member with the key pair
//! accepts any member's tokens. Key files are read here, at start, never by
//! the kernel.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use keel_kernel::auth::{AuthError, AuthInfo};
use serde::{Deserialize, Serialize};

use crate::config::JwtSpec;

/// Largest key file read, in bytes.
pub const KEY_FILE_BYTES_MAX: u64 = 64 * 1024;

/// The claims etcd puts in its tokens.
#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    username: String,
    revision: u64,
    exp: u64,
}

/// Signs and verifies tokens with one key pair.
pub struct JwtTokens {
    algorithm: Algorithm,
    encoding: Option<EncodingKey>,
    decoding: DecodingKey,
    ttl: Duration,
}

impl std::fmt::Debug for JwtTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtTokens")
            .field("algorithm", &self.algorithm)
            .field("signs", &self.encoding.is_some())
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

fn read_key(path: &Path) -> Result<Vec<u8>, String> {
    let size = std::fs::metadata(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?
        .len();
    if size > KEY_FILE_BYTES_MAX {
        return Err(format!(
            "{} is larger than {KEY_FILE_BYTES_MAX} bytes",
            path.display()
        ));
    }
    std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

impl JwtTokens {
    /// Reads the key files `spec` names.
    ///
    /// Errors: a file that cannot be read, an unknown sign method, a key
    /// that does not parse for it, no public key (no verification).
    pub fn load(spec: &JwtSpec) -> Result<JwtTokens, String> {
        let private = spec.priv_key.as_deref().map(read_key).transpose()?;
        let public = spec.pub_key.as_deref().map(read_key).transpose()?;
        JwtTokens::from_pem(
            &spec.sign_method,
            private.as_deref(),
            public.as_deref(),
            spec.ttl,
        )
    }

    /// Keys from PEM text (`private` signs, `public` verifies; an `HS*`
    /// method uses the private key file's bytes as the shared secret).
    ///
    /// Errors: as [`JwtTokens::load`].
    pub fn from_pem(
        sign_method: &str,
        private: Option<&[u8]>,
        public: Option<&[u8]>,
        ttl: Duration,
    ) -> Result<JwtTokens, String> {
        let algorithm: Algorithm = sign_method
            .parse()
            .map_err(|_| format!("unknown sign-method {sign_method:?}"))?;
        let bad = |what: &str, e: jsonwebtoken::errors::Error| format!("bad {what} key: {e}");
        let (encoding, decoding) = match algorithm {
            Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => {
                let secret = private.ok_or("sign-method HS* needs priv-key")?;
                (
                    Some(EncodingKey::from_secret(secret)),
                    DecodingKey::from_secret(secret),
                )
            }
            _ => {
                let public = public.ok_or("jwt needs pub-key to verify tokens")?;
                let encoding = private
                    .map(|pem| encoding_key(algorithm, pem))
                    .transpose()
                    .map_err(|e| bad("private", e))?;
                let decoding = decoding_key(algorithm, public).map_err(|e| bad("public", e))?;
                (encoding, decoding)
            }
        };
        Ok(JwtTokens {
            algorithm,
            encoding,
            decoding,
            ttl,
        })
    }

    /// A token for `username` at auth revision `revision`, valid for the
    /// TTL from now.
    ///
    /// Errors: this member has no private key, or signing failed →
    /// [`AuthError::AuthFailed`] (etcd fails the login).
    pub fn sign(&self, username: &str, revision: u64) -> Result<String, AuthError> {
        let encoding = self.encoding.as_ref().ok_or(AuthError::AuthFailed)?;
        let claims = Claims {
            username: username.to_owned(),
            revision,
            exp: unix_secs().saturating_add(self.ttl.as_secs()),
        };
        jsonwebtoken::encode(&Header::new(self.algorithm), &claims, encoding)
            .map_err(|_| AuthError::AuthFailed)
    }

    /// Who `token` stands for: its signature and expiry are checked.
    ///
    /// Errors: another key or algorithm, a malformed or expired token →
    /// [`AuthError::InvalidAuthToken`] ("etcdserver: invalid auth token").
    pub fn verify(&self, token: &str) -> Result<AuthInfo, AuthError> {
        let mut validation = Validation::new(self.algorithm);
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp"]);
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &validation)
            .map_err(|_| AuthError::InvalidAuthToken)?;
        Ok(AuthInfo {
            username: data.claims.username,
            revision: data.claims.revision,
        })
    }
}

fn encoding_key(algorithm: Algorithm, pem: &[u8]) -> jsonwebtoken::errors::Result<EncodingKey> {
    match algorithm {
        Algorithm::ES256 | Algorithm::ES384 => EncodingKey::from_ec_pem(pem),
        Algorithm::EdDSA => EncodingKey::from_ed_pem(pem),
        _ => EncodingKey::from_rsa_pem(pem),
    }
}

fn decoding_key(algorithm: Algorithm, pem: &[u8]) -> jsonwebtoken::errors::Result<DecodingKey> {
    match algorithm {
        Algorithm::ES256 | Algorithm::ES384 => DecodingKey::from_ec_pem(pem),
        Algorithm::EdDSA => DecodingKey::from_ed_pem(pem),
        _ => DecodingKey::from_rsa_pem(pem),
    }
}

/// Seconds since the Unix epoch (0 if the clock is before it).
fn unix_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
