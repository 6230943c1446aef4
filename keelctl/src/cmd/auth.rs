//! `auth enable|disable` and `role add|delete|get|list|grant-permission|
//! revoke-permission` (etcdctl/ctlv3/command/{auth,role}_command.go).

use clap::{Args, Subcommand};
use etcd_client::proto::{PbAuthRoleGetResponse, PbResponseHeader};
use etcd_client::{Permission, PermissionType, RoleRevokePermissionOptions};
use serde_json::Value;

use crate::cli::GlobalArgs;
use crate::client::connect;
use crate::error::CtlError;
use crate::output::json::{self, Object};
use crate::output::{Format, Printer, emit, fields, go};
use keel_kernel::mvcc::prefix_range_end;

/// The auth commands.
#[derive(Debug, Subcommand)]
pub enum AuthCommand {
    /// Enables authentication
    Enable(NoArgs),
    /// Disables authentication
    Disable(NoArgs),
    /// Returns authentication status (etcdctl 3.5's command)
    Status(NoArgs),
}

/// Positional arguments.
#[derive(Debug, Clone, Args)]
pub struct NoArgs {
    /// arguments
    pub args: Vec<String>,
}

/// The role commands.
#[derive(Debug, Subcommand)]
pub enum RoleCommand {
    /// Adds a new role
    Add(NoArgs),
    /// Deletes a role
    Delete(NoArgs),
    /// Gets detailed information of a role
    Get(NoArgs),
    /// Lists all roles
    List(NoArgs),
    /// Grants a key to a role
    #[command(name = "grant-permission")]
    GrantPermission(PermArgs),
    /// Revokes a key from a role
    #[command(name = "revoke-permission")]
    RevokePermission(PermArgs),
}

/// `role grant-permission|revoke-permission [--prefix|--from-key] ...`.
#[derive(Debug, Clone, Args)]
pub struct PermArgs {
    /// a prefix permission
    #[arg(long)]
    pub prefix: bool,
    /// a permission of keys that are greater than or equal to the given key using byte compare
    #[arg(long = "from-key")]
    pub from_key: bool,
    /// <role name> [<permission type>] <key> [endkey]
    pub args: Vec<String>,
}

/// Runs an auth command.
///
/// # Errors
/// Arguments (exit 128), connection and server errors.
pub async fn auth(global: &GlobalArgs, command: AuthCommand) -> Result<(), CtlError> {
    let (args, enable) = match &command {
        AuthCommand::Enable(a) => (&a.args, true),
        AuthCommand::Disable(a) => (&a.args, false),
        AuthCommand::Status(a) => return super::auth_status::run(global, &a.args).await,
    };
    let name = if enable { "enable" } else { "disable" };
    if !args.is_empty() {
        return Err(CtlError::bad_args(format!(
            "auth {name} command does not accept any arguments"
        )));
    }
    let ctl = connect(global).await?;
    let mut client = ctl.client.auth_client();
    if !enable {
        ctl.call(client.auth_disable()).await?;
        emit("Authentication Disabled\n");
        return Ok(());
    }
    // etcdctl creates the root role (and grants it to root) when missing.
    for _ in 0..2 {
        match ctl.call(client.auth_enable()).await {
            Ok(_) => {
                emit("Authentication Enabled\n");
                return Ok(());
            }
            Err(e) if e.message == "etcdserver: root user does not have root role" => {
                ctl.call(client.role_add("root")).await?;
                ctl.call(client.user_grant_role("root", "root")).await?;
            }
            Err(e) => return Err(e),
        }
    }
    Err(CtlError::error(
        "etcdserver: root user does not have root role",
    ))
}

/// Prints a response that carries only a header: `simple` prints `line`.
pub fn print_header_only(
    printer: Printer,
    line: &str,
    header: Option<&PbResponseHeader>,
) -> Result<(), CtlError> {
    let text = match printer.format {
        Format::Simple => format!("{line}\n"),
        Format::Fields => {
            let mut out = String::new();
            fields::header(&mut out, header);
            out
        }
        Format::Json => json::line(&Object::new().object("header", json::header(header)).value()),
        Format::Table => return Err(printer.format.unsupported()),
    };
    emit(&text);
    Ok(())
}

fn one(args: &[String], usage: &str) -> Result<String, CtlError> {
    match args {
        [name] => Ok(name.clone()),
        _ => Err(CtlError::bad_args(usage)),
    }
}

/// Runs a role command.
///
/// # Errors
/// Arguments (exit 128), connection and server errors.
pub async fn role(global: &GlobalArgs, command: RoleCommand) -> Result<(), CtlError> {
    match command {
        RoleCommand::Add(a) => {
            let name = one(
                &a.args,
                "role add command requires role name as its argument",
            )?;
            let printer = super::printer(global)?;
            let ctl = connect(global).await?;
            let r = ctl
                .call(ctl.client.auth_client().role_add(name.as_str()))
                .await?
                .0;
            print_header_only(printer, &format!("Role {name} created"), r.header.as_ref())
        }
        RoleCommand::Delete(a) => {
            let name = one(
                &a.args,
                "role delete command requires role name as its argument",
            )?;
            let printer = super::printer(global)?;
            let ctl = connect(global).await?;
            let r = ctl
                .call(ctl.client.auth_client().role_delete(name.as_str()))
                .await?
                .0;
            print_header_only(printer, &format!("Role {name} deleted"), r.header.as_ref())
        }
        RoleCommand::Get(a) => {
            let name = one(
                &a.args,
                "role get command requires role name as its argument",
            )?;
            let printer = super::printer(global)?;
            let ctl = connect(global).await?;
            let r = ctl
                .call(ctl.client.auth_client().role_get(name.as_str()))
                .await?
                .0;
            emit(&role_get_text(printer, &name, &r)?);
            Ok(())
        }
        RoleCommand::List(a) => {
            if !a.args.is_empty() {
                return Err(CtlError::bad_args(
                    "role list command requires no arguments",
                ));
            }
            let printer = super::printer(global)?;
            let ctl = connect(global).await?;
            let r = ctl.call(ctl.client.auth_client().role_list()).await?.0;
            let text = match printer.format {
                Format::Simple => r.roles.iter().map(|role| format!("{role}\n")).collect(),
                Format::Fields => {
                    let mut out = String::new();
                    fields::header(&mut out, r.header.as_ref());
                    out.push_str("\"Roles\" :");
                    for role in &r.roles {
                        out.push_str(&format!(" {}", go::quote(role.as_bytes())));
                    }
                    out + "\n"
                }
                Format::Json => json::line(&names_json(r.header.as_ref(), "roles", &r.roles)),
                Format::Table => return Err(printer.format.unsupported()),
            };
            emit(&text);
            Ok(())
        }
        RoleCommand::GrantPermission(a) => grant_permission(global, a).await,
        RoleCommand::RevokePermission(a) => revoke_permission(global, a).await,
    }
}

/// `{"header":...,"<field>":[names]}`.
pub fn names_json(header: Option<&PbResponseHeader>, field: &str, names: &[String]) -> Value {
    Object::new()
        .object("header", json::header(header))
        .list(
            field,
            names.iter().map(|n| Value::from(n.as_str())).collect(),
        )
        .value()
}

const PERM_NAMES: [&str; 3] = ["READ", "WRITE", "READWRITE"];

/// A role's permissions as etcdctl prints them.
///
/// # Errors
/// `table` output (exit 4).
pub fn role_get_text(
    printer: Printer,
    name: &str,
    r: &PbAuthRoleGetResponse,
) -> Result<String, CtlError> {
    Ok(match printer.format {
        Format::Simple => role_get_simple(name, r),
        Format::Fields => {
            let mut out = String::new();
            fields::header(&mut out, r.header.as_ref());
            for p in &r.perm {
                let kind = PERM_NAMES
                    .get(p.perm_type as usize)
                    .copied()
                    .unwrap_or("READ");
                out.push_str(&format!("\"PermType\" :  {kind}\n"));
                out.push_str(&format!("\"Key\" : {}\n", go::quote(&p.key)));
                out.push_str(&format!("\"RangeEnd\" : {}\n", go::quote(&p.range_end)));
            }
            out
        }
        Format::Json => {
            let perms = r
                .perm
                .iter()
                .map(|p| {
                    Object::new()
                        .int("permType", i64::from(p.perm_type))
                        .bytes("key", &p.key)
                        .bytes("range_end", &p.range_end)
                        .value()
                })
                .collect();
            json::line(
                &Object::new()
                    .object("header", json::header(r.header.as_ref()))
                    .list("perm", perms)
                    .value(),
            )
        }
        Format::Table => return Err(printer.format.unsupported()),
    })
}

fn role_get_simple(name: &str, r: &PbAuthRoleGetResponse) -> String {
    let mut out = format!("Role {name}\nKV Read:\n");
    let range = |key: &[u8], end: &[u8]| {
        let k = String::from_utf8_lossy(key);
        let mut line = if end == [0] {
            format!("\t[{k}, <open ended>")
        } else {
            format!("\t[{k}, {})", String::from_utf8_lossy(end))
        };
        if prefix_range_end(key) == end {
            line.push_str(&format!(" (prefix {k})"));
        }
        line + "\n"
    };
    for (title, kinds) in [("", [0, 2]), ("KV Write:\n", [1, 2])] {
        out.push_str(title);
        for p in r.perm.iter().filter(|p| kinds.contains(&p.perm_type)) {
            if p.range_end.is_empty() {
                out.push_str(&format!("\t{}\n", String::from_utf8_lossy(&p.key)));
            } else {
                out.push_str(&range(&p.key, &p.range_end));
            }
        }
    }
    out
}

/// etcdctl's `permRange`: the key and range end of a permission.
fn perm_range(
    args: &[String],
    prefix: bool,
    from_key: bool,
) -> Result<(Vec<u8>, Vec<u8>), CtlError> {
    let key = args.first().cloned().unwrap_or_default();
    if prefix && from_key {
        return Err(CtlError::bad_args(
            "--from-key and --prefix flags are mutually exclusive",
        ));
    }
    if key.is_empty() {
        let end = if prefix || from_key {
            vec![0]
        } else {
            Vec::new()
        };
        return Ok((vec![0], end));
    }
    let end = match (args.get(1), prefix, from_key) {
        (None, true, _) => prefix_range_end(key.as_bytes()),
        (None, _, true) => vec![0],
        (None, false, false) => Vec::new(),
        (Some(_), true, _) => {
            return Err(CtlError::bad_args(
                "unexpected endkey argument with --prefix flag",
            ));
        }
        (Some(_), _, true) => {
            return Err(CtlError::bad_args(
                "unexpected endkey argument with --from-key flag",
            ));
        }
        (Some(end), false, false) => end.as_bytes().to_vec(),
    };
    Ok((key.into_bytes(), end))
}

async fn grant_permission(global: &GlobalArgs, a: PermArgs) -> Result<(), CtlError> {
    if a.args.len() < 3 {
        return Err(CtlError::bad_args(
            "role grant command requires role name, permission type, and key [endkey] as its argument",
        ));
    }
    let kind = match a.args[1].to_uppercase().as_str() {
        "READ" => PermissionType::Read,
        "WRITE" => PermissionType::Write,
        "READWRITE" => PermissionType::Readwrite,
        _ => {
            return Err(CtlError::bad_args(format!(
                "invalid permission type: {}",
                a.args[1]
            )));
        }
    };
    let (key, end) = perm_range(&a.args[2..], a.prefix, a.from_key)?;
    let printer = super::printer(global)?;
    let ctl = connect(global).await?;
    let mut permission = Permission::new(kind, key);
    if !end.is_empty() {
        permission = permission.with_range_end(end);
    }
    let role = a.args[0].clone();
    let r = ctl
        .call(
            ctl.client
                .auth_client()
                .role_grant_permission(role.as_str(), permission),
        )
        .await?
        .0;
    print_header_only(printer, &format!("Role {role} updated"), r.header.as_ref())
}

async fn revoke_permission(global: &GlobalArgs, a: PermArgs) -> Result<(), CtlError> {
    if a.args.len() < 2 {
        return Err(CtlError::bad_args(
            "role revoke-permission command requires role name and key [endkey] as its argument",
        ));
    }
    let (key, end) = perm_range(&a.args[1..], a.prefix, a.from_key)?;
    let printer = super::printer(global)?;
    let ctl = connect(global).await?;
    let mut options = RoleRevokePermissionOptions::new();
    if !end.is_empty() {
        options = options.with_range_end(end.clone());
    }
    let role = a.args[0].clone();
    let r = ctl
        .call(
            ctl.client
                .auth_client()
                .role_revoke_permission(role.as_str(), key, Some(options)),
        )
        .await?
        .0;
    let key = &a.args[1];
    let line = if end.is_empty() {
        format!("Permission of key {key} is revoked from role {role}")
    } else if end == [0] {
        format!("Permission of range [{key}, <open ended> is revoked from role {role}")
    } else {
        format!(
            "Permission of range [{key}, {}) is revoked from role {role}",
            String::from_utf8_lossy(&end)
        )
    };
    print_header_only(printer, &line, r.header.as_ref())
}
