//! Flags of etcd's operations and auth settings, kept in a block of their
//! own: `--auth-token`, `--auth-token-ttl`, `--bcrypt-cost`,
//! `--experimental-enable-lease-checkpoint`,
//! `--experimental-snapshot-catchup-entries` (etcd v3.4/v3.5
//! `etcdmain/config.go`, `embed/config.go`).

use std::path::PathBuf;
use std::time::Duration;

use super::ConfigError;
use super::retention::parse_go_duration;

/// etcd's default `--auth-token-ttl`, in seconds.
pub const AUTH_TOKEN_TTL_SECS_DEFAULT: u64 = 300;
/// etcd's default `--bcrypt-cost` (`bcrypt.DefaultCost`).
pub const BCRYPT_COST_DEFAULT: u32 = 10;
/// Lowest and highest bcrypt cost etcd accepts (`bcrypt.MinCost`, `MaxCost`).
pub const BCRYPT_COST_RANGE: std::ops::RangeInclusive<u32> = 4..=31;
/// etcd's default JWT lifetime (`ttl=` option), 5 minutes.
pub const JWT_TTL_DEFAULT: Duration = Duration::from_secs(300);
/// etcd's `SnapshotCatchUpEntries`: entries kept behind a snapshot.
pub const SNAPSHOT_CATCHUP_ENTRIES_DEFAULT: u64 = 5000;

/// The raw flags of this block (flattened into [`super::Flags`]).
#[derive(clap::Args, Debug, Clone, PartialEq, Eq)]
pub struct OperationFlags {
    /// Auth token type: `simple`, or
    /// `jwt,pub-key=PATH,priv-key=PATH,sign-method=RS256,ttl=5m`.
    #[arg(long, env = "ETCD_AUTH_TOKEN", default_value = "simple")]
    pub auth_token: String,
    /// Time (in seconds) a simple token stays valid after its last use.
    #[arg(long, env = "ETCD_AUTH_TOKEN_TTL", default_value_t = AUTH_TOKEN_TTL_SECS_DEFAULT)]
    pub auth_token_ttl: u64,
    /// bcrypt cost of the password hashes this member computes (4..=31).
    #[arg(long, env = "ETCD_BCRYPT_COST", default_value_t = BCRYPT_COST_DEFAULT)]
    pub bcrypt_cost: u32,
    /// Persist the remaining TTL of long leases through Raft every 5
    /// minutes, so a new leader does not extend them (off, as in etcd).
    #[arg(
        long,
        env = "ETCD_EXPERIMENTAL_ENABLE_LEASE_CHECKPOINT",
        default_value_t = false,
        num_args = 0..=1,
        default_missing_value = "true",
        action = clap::ArgAction::Set
    )]
    pub experimental_enable_lease_checkpoint: bool,
    /// Entries kept in the log behind a snapshot for slow followers; a
    /// follower further behind receives the snapshot.
    #[arg(
        long,
        env = "ETCD_EXPERIMENTAL_SNAPSHOT_CATCHUP_ENTRIES",
        default_value_t = SNAPSHOT_CATCHUP_ENTRIES_DEFAULT
    )]
    pub experimental_snapshot_catchup_entries: u64,
}

/// How clients' tokens are made (`--auth-token`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthTokenSpec {
    /// Opaque tokens kept in the issuing member's memory.
    Simple,
    /// Signed JSON Web Tokens any member can verify.
    Jwt(JwtSpec),
}

/// The options of `--auth-token jwt,...` (etcd `auth/jwt.go`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtSpec {
    /// Public key file (PEM) verifying tokens.
    pub pub_key: Option<PathBuf>,
    /// Private key file (PEM) signing tokens; without it the member only
    /// verifies.
    pub priv_key: Option<PathBuf>,
    /// Signature algorithm name, e.g. `RS256`, `ES256`.
    pub sign_method: String,
    /// Token lifetime.
    pub ttl: Duration,
}

/// The validated settings of this block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operations {
    /// `--auth-token`.
    pub auth_token: AuthTokenSpec,
    /// `--auth-token-ttl`, in seconds.
    pub auth_token_ttl_secs: u64,
    /// `--bcrypt-cost`.
    pub bcrypt_cost: u32,
    /// `--experimental-enable-lease-checkpoint`.
    pub lease_checkpoint: bool,
    /// `--experimental-snapshot-catchup-entries`.
    pub snapshot_catchup_entries: u64,
}

impl Default for Operations {
    fn default() -> Operations {
        Operations {
            auth_token: AuthTokenSpec::Simple,
            auth_token_ttl_secs: AUTH_TOKEN_TTL_SECS_DEFAULT,
            bcrypt_cost: BCRYPT_COST_DEFAULT,
            lease_checkpoint: false,
            snapshot_catchup_entries: SNAPSHOT_CATCHUP_ENTRIES_DEFAULT,
        }
    }
}

impl OperationFlags {
    /// Checks the flags of this block.
    ///
    /// Errors: a malformed `--auth-token`, a bcrypt cost outside 4..=31, a
    /// zero `--auth-token-ttl` or catch-up count ([`ConfigError::OutOfRange`]).
    pub fn validate(&self) -> Result<Operations, ConfigError> {
        let out_of_range = |message: String| Err(ConfigError::OutOfRange(message));
        if !BCRYPT_COST_RANGE.contains(&self.bcrypt_cost) {
            return out_of_range(format!(
                "--bcrypt-cost: {} is outside [4, 31]",
                self.bcrypt_cost
            ));
        }
        if self.auth_token_ttl == 0 {
            return out_of_range("--auth-token-ttl must be greater than 0".to_owned());
        }
        if self.experimental_snapshot_catchup_entries == 0 {
            return out_of_range(
                "--experimental-snapshot-catchup-entries must be greater than 0".to_owned(),
            );
        }
        Ok(Operations {
            auth_token: parse_auth_token(&self.auth_token)?,
            auth_token_ttl_secs: self.auth_token_ttl,
            bcrypt_cost: self.bcrypt_cost,
            lease_checkpoint: self.experimental_enable_lease_checkpoint,
            snapshot_catchup_entries: self.experimental_snapshot_catchup_entries,
        })
    }
}

/// Parses `--auth-token` (etcd `auth.NewTokenProvider`, `jwt.go`
/// `newTokenProviderJWT`): `simple`, or `jwt` followed by `,key=value`
/// options `pub-key`, `priv-key`, `sign-method` (required) and `ttl`.
///
/// Errors: another type, an unknown option, a missing sign method or key.
pub fn parse_auth_token(text: &str) -> Result<AuthTokenSpec, ConfigError> {
    let bad = |why: String| ConfigError::OutOfRange(format!("--auth-token: {why}"));
    let mut parts = text.split(',');
    match parts.next().unwrap_or_default() {
        "simple" if text == "simple" => return Ok(AuthTokenSpec::Simple),
        "jwt" => {}
        other => return Err(bad(format!("unknown token type {other:?}"))),
    }
    let mut spec = JwtSpec {
        pub_key: None,
        priv_key: None,
        sign_method: String::new(),
        ttl: JWT_TTL_DEFAULT,
    };
    for option in parts {
        let (key, value) = option
            .split_once('=')
            .ok_or_else(|| bad(format!("option {option:?} is not key=value")))?;
        match key {
            "pub-key" => spec.pub_key = Some(PathBuf::from(value)),
            "priv-key" => spec.priv_key = Some(PathBuf::from(value)),
            "sign-method" => spec.sign_method = value.to_owned(),
            "ttl" => spec.ttl = parse_go_duration(value).map_err(bad)?,
            other => return Err(bad(format!("unknown token option {other:?}"))),
        }
    }
    if spec.sign_method.is_empty() {
        return Err(bad("jwt needs sign-method".to_owned()));
    }
    if spec.pub_key.is_none() && spec.priv_key.is_none() {
        return Err(bad("jwt needs pub-key or priv-key".to_owned()));
    }
    Ok(AuthTokenSpec::Jwt(spec))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    #[test]
    fn defaults_are_etcds_and_the_flags_are_read() {
        let config = crate::config::Config::from_args(["keel"]).unwrap();
        assert_eq!(config.operations, Operations::default());
        assert!(!config.operations.lease_checkpoint, "off, as in etcd");
        assert_eq!(config.operations.auth_token_ttl_secs, 300);
        let config = crate::config::Config::from_args([
            "keel",
            "--experimental-enable-lease-checkpoint",
            "--bcrypt-cost=4",
            "--auth-token-ttl=60",
            "--experimental-snapshot-catchup-entries=7",
        ])
        .unwrap();
        let operations = config.operations;
        assert!(operations.lease_checkpoint);
        assert_eq!(operations.bcrypt_cost, 4);
        assert_eq!(operations.auth_token_ttl_secs, 60);
        assert_eq!(operations.snapshot_catchup_entries, 7);
        for bad in [
            "--bcrypt-cost=3",
            "--auth-token-ttl=0",
            "--auth-token=opaque",
        ] {
            assert!(
                crate::config::Config::from_args(["keel", bad]).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn simple_and_jwt_specs_parse_as_in_etcd() {
        assert_eq!(parse_auth_token("simple").unwrap(), AuthTokenSpec::Simple);
        let jwt = "jwt,pub-key=a.pub,priv-key=a.key,sign-method=RS256,ttl=10m";
        let AuthTokenSpec::Jwt(spec) = parse_auth_token(jwt).unwrap() else {
            panic!("not jwt");
        };
        assert_eq!(spec.pub_key, Some(PathBuf::from("a.pub")));
        assert_eq!(spec.sign_method, "RS256");
        assert_eq!(spec.ttl, Duration::from_secs(600));
        for bad in [
            "jwt,pub-key=a",
            "jwt,sign-method=RS256",
            "opaque",
            "jwt,x=1",
        ] {
            assert!(parse_auth_token(bad).is_err(), "{bad}");
        }
    }
}
