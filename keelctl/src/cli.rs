//! Command line: etcdctl 3.4's global flags (with their `ETCDCTL_*`
//! environment variables) and commands (etcdctl/ctlv3/ctl.go).

use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::cmd::{
    auth::AuthCommand, auth::RoleCommand, compaction::CompactionArgs, concurrency::ElectArgs,
    concurrency::LockArgs, concurrency::MoveLeaderArgs, endpoint::EndpointCommand, kv::DelArgs,
    kv::GetArgs, kv::PutArgs, lease::LeaseCommand, maintenance::AlarmCommand,
    maintenance::DefragArgs, member::MemberCommand, snapshot::SnapshotCommand, txn::TxnArgs,
    user::UserCommand, watch::WatchArgs,
};

/// keelctl: etcdctl 3.4's commands and output, for keel and etcd.
#[derive(Debug, Parser)]
#[command(
    name = "keelctl",
    version,
    about = "A simple command line client for keel and etcd3."
)]
pub struct Cli {
    /// Flags every command takes.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// etcdctl's global flags.
#[derive(Debug, Clone, Args)]
pub struct GlobalArgs {
    /// gRPC endpoints (comma-separated; `host:port` or a URL).
    #[arg(
        long,
        global = true,
        env = "ETCDCTL_ENDPOINTS",
        value_delimiter = ',',
        default_value = "127.0.0.1:2379"
    )]
    pub endpoints: Vec<String>,
    /// username[:password] for authentication (prompt if password is not supplied).
    #[arg(long, global = true, env = "ETCDCTL_USER")]
    pub user: Option<String>,
    /// password for authentication (if this option is used, --user option shouldn't include password).
    #[arg(long, global = true, env = "ETCDCTL_PASSWORD")]
    pub password: Option<String>,
    /// verify certificates of TLS-enabled secure servers using this CA bundle.
    #[arg(long, global = true, env = "ETCDCTL_CACERT")]
    pub cacert: Option<String>,
    /// identify secure client using this TLS certificate file.
    #[arg(long, global = true, env = "ETCDCTL_CERT")]
    pub cert: Option<String>,
    /// identify secure client using this TLS key file.
    #[arg(long, global = true, env = "ETCDCTL_KEY")]
    pub key: Option<String>,
    /// skip server certificate verification (CAUTION: testing only).
    #[arg(long, global = true, env = "ETCDCTL_INSECURE_SKIP_TLS_VERIFY")]
    pub insecure_skip_tls_verify: bool,
    /// disable transport security for client connections (etcdctl's default: true).
    #[arg(long, global = true, env = "ETCDCTL_INSECURE_TRANSPORT", default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub insecure_transport: bool,
    /// dial timeout for client connections (Go duration, e.g. `2s`).
    #[arg(long, global = true, env = "ETCDCTL_DIAL_TIMEOUT", default_value = "2s", value_parser = parse_duration)]
    pub dial_timeout: Duration,
    /// timeout for short running command (excluding dial timeout).
    #[arg(long, global = true, env = "ETCDCTL_COMMAND_TIMEOUT", default_value = "5s", value_parser = parse_duration)]
    pub command_timeout: Duration,
    /// keepalive time for client connections.
    #[arg(long, global = true, env = "ETCDCTL_KEEPALIVE_TIME", default_value = "2s", value_parser = parse_duration)]
    pub keepalive_time: Duration,
    /// keepalive timeout for client connections.
    #[arg(long, global = true, env = "ETCDCTL_KEEPALIVE_TIMEOUT", default_value = "6s", value_parser = parse_duration)]
    pub keepalive_timeout: Duration,
    /// set the output format (fields, json, simple, table).
    #[arg(
        short = 'w',
        long,
        global = true,
        env = "ETCDCTL_WRITE_OUT",
        default_value = "simple"
    )]
    pub write_out: String,
    /// print byte strings as hex encoded strings.
    #[arg(long, global = true, env = "ETCDCTL_HEX")]
    pub hex: bool,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Gets the key or a range of keys
    Get(GetArgs),
    /// Puts the given key into the store
    Put(PutArgs),
    /// Removes the specified key or range of keys [key, range_end)
    Del(DelArgs),
    /// Txn processes all the requests in one transaction
    Txn(TxnArgs),
    /// Compacts the event history in etcd
    Compaction(CompactionArgs),
    /// Watches events stream on keys or prefixes
    Watch(WatchArgs),
    /// Lease related commands
    #[command(subcommand)]
    Lease(LeaseCommand),
    /// Membership related commands
    #[command(subcommand)]
    Member(MemberCommand),
    /// Endpoint related commands
    #[command(subcommand)]
    Endpoint(EndpointCommand),
    /// Alarm related commands
    #[command(subcommand)]
    Alarm(AlarmCommand),
    /// Defragments the storage of the etcd members with given endpoints
    Defrag(DefragArgs),
    /// Enable or disable authentication
    #[command(subcommand)]
    Auth(AuthCommand),
    /// Role related commands
    #[command(subcommand)]
    Role(RoleCommand),
    /// User related commands
    #[command(subcommand)]
    User(UserCommand),
    /// Acquires a named lock
    Lock(LockArgs),
    /// Observes and participates in leader election
    Elect(ElectArgs),
    /// Transfers leadership to another etcd cluster member.
    #[command(name = "move-leader")]
    MoveLeader(MoveLeaderArgs),
    /// Manages etcd node snapshots
    #[command(subcommand)]
    Snapshot(SnapshotCommand),
    /// commands for checking properties of the etcd cluster
    #[command(subcommand)]
    Check(crate::cmd::check::CheckCommand),
}

/// Parses a Go duration (`time.ParseDuration`: `2s`, `500ms`, `1m30s`,
/// `1.5s`; units ns, us, µs, ms, s, m, h).
///
/// # Errors
/// A message naming the bad input.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("time: invalid duration \"{text}\"");
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    let mut rest = text;
    let mut total_ns = 0f64;
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        let number: f64 = rest[..number_len].parse().map_err(|_| bad())?;
        rest = &rest[number_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit_ns = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return Err(bad()),
        };
        total_ns += number * unit_ns;
        rest = &rest[unit_len..];
    }
    Ok(Duration::from_nanos(total_ns as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert!(parse_duration("5").is_err());
        assert!(parse_duration("5x").is_err());
        assert!(parse_duration("").is_err());
    }
}
