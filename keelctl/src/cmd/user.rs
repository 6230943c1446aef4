//! `user add|delete|get|list|passwd|grant-role|revoke-role`
//! (etcdctl/ctlv3/command/user_command.go). Passwords come from the
//! argument (`name:password`), `--new-user-password`, a terminal prompt
//! (twice, as etcdctl), or stdin with `--interactive=false`.

use std::io::BufRead;

use clap::{Args, Subcommand};
use etcd_client::UserAddOptions;

use super::auth::{names_json, print_header_only, role_get_text};
use crate::cli::GlobalArgs;
use crate::client::connect;
use crate::error::CtlError;
use crate::output::{Format, emit};

/// The user commands.
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Adds a new user
    Add(UserAddArgs),
    /// Deletes a user
    Delete(UserArgs),
    /// Gets detailed information of a user
    Get(UserGetArgs),
    /// Lists all users
    List(UserArgs),
    /// Changes password of user
    Passwd(PasswdArgs),
    /// Grants a role to a user
    #[command(name = "grant-role")]
    GrantRole(UserArgs),
    /// Revokes a role from a user
    #[command(name = "revoke-role")]
    RevokeRole(UserArgs),
}

/// Positional arguments.
#[derive(Debug, Clone, Args)]
pub struct UserArgs {
    /// arguments
    pub args: Vec<String>,
}

/// `user add <user name or user:password> [options]`.
#[derive(Debug, Clone, Args)]
pub struct UserAddArgs {
    /// Read password from stdin instead of interactive terminal
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub interactive: bool,
    /// Supply password from the command line flag
    #[arg(long = "new-user-password", default_value = "")]
    pub new_user_password: String,
    /// Create a user without password (CN based auth only)
    #[arg(long = "no-password")]
    pub no_password: bool,
    /// <user name or user:password>
    pub args: Vec<String>,
}

/// `user get <user name> [--detail]`.
#[derive(Debug, Clone, Args)]
pub struct UserGetArgs {
    /// Show permissions of roles granted to the user
    #[arg(long)]
    pub detail: bool,
    /// <user name>
    pub args: Vec<String>,
}

/// `user passwd <user name> [--interactive=false]`.
#[derive(Debug, Clone, Args)]
pub struct PasswdArgs {
    /// If true, read password from stdin instead of interactive terminal
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub interactive: bool,
    /// <user name>
    pub args: Vec<String>,
}

/// etcdctl's `readPasswordInteractive`: asks twice on the terminal.
fn prompt_password(name: &str) -> Result<String, CtlError> {
    let ask = |prompt: String| {
        rpassword::prompt_password(prompt).map_err(|e| CtlError::bad_args(e.to_string()))
    };
    let first = ask(format!("Password of {name}: "))?;
    let again = ask(format!("Type password of {name} again for confirmation: "))?;
    if first != again {
        return Err(CtlError::bad_args("given passwords are different"));
    }
    Ok(first)
}

/// `fmt.Scanf("%s")`: the first word on stdin.
fn stdin_word() -> String {
    let mut line = String::new();
    let _ = std::io::stdin().lock().read_line(&mut line);
    line.split_whitespace()
        .next()
        .unwrap_or_default()
        .to_owned()
}

fn one(args: &[String], usage: &str) -> Result<String, CtlError> {
    match args {
        [name] => Ok(name.clone()),
        _ => Err(CtlError::bad_args(usage)),
    }
}

fn two(args: &[String], usage: &str) -> Result<(String, String), CtlError> {
    match args {
        [a, b] => Ok((a.clone(), b.clone())),
        _ => Err(CtlError::bad_args(usage)),
    }
}

/// Runs a user command.
///
/// # Errors
/// Arguments (exit 128), connection and server errors.
pub async fn run(global: &GlobalArgs, command: UserCommand) -> Result<(), CtlError> {
    match command {
        UserCommand::Add(a) => add(global, a).await,
        UserCommand::Delete(a) => {
            let name = one(
                &a.args,
                "user delete command requires user name as its argument",
            )?;
            let printer = super::printer(global)?;
            let ctl = connect(global).await?;
            let r = ctl
                .call(ctl.client.auth_client().user_delete(name.as_str()))
                .await?
                .0;
            print_header_only(printer, &format!("User {name} deleted"), r.header.as_ref())
        }
        UserCommand::Get(a) => get(global, a).await,
        UserCommand::List(a) => {
            if !a.args.is_empty() {
                return Err(CtlError::bad_args(
                    "user list command requires no arguments",
                ));
            }
            let printer = super::printer(global)?;
            let ctl = connect(global).await?;
            let r = ctl.call(ctl.client.auth_client().user_list()).await?.0;
            let text = match printer.format {
                Format::Simple => r.users.iter().map(|u| format!("{u}\n")).collect(),
                Format::Json => {
                    crate::output::json::line(&names_json(r.header.as_ref(), "users", &r.users))
                }
                _ => return Err(printer.format.unsupported()),
            };
            emit(&text);
            Ok(())
        }
        UserCommand::Passwd(a) => {
            let name = one(
                &a.args,
                "user passwd command requires user name as its argument",
            )?;
            let password = if a.interactive {
                prompt_password(&name)?
            } else {
                stdin_word()
            };
            let printer = super::printer(global)?;
            let ctl = connect(global).await?;
            let r = ctl
                .call(
                    ctl.client
                        .auth_client()
                        .user_change_password(name.as_str(), password),
                )
                .await?
                .0;
            print_header_only(printer, "Password updated", r.header.as_ref())
        }
        UserCommand::GrantRole(a) => {
            let (user, role) = two(
                &a.args,
                "user grant command requires user name and role name as its argument",
            )?;
            let printer = super::printer(global)?;
            let ctl = connect(global).await?;
            let r = ctl
                .call(
                    ctl.client
                        .auth_client()
                        .user_grant_role(user.as_str(), role.as_str()),
                )
                .await?
                .0;
            print_header_only(
                printer,
                &format!("Role {role} is granted to user {user}"),
                r.header.as_ref(),
            )
        }
        UserCommand::RevokeRole(a) => {
            let (user, role) = two(
                &a.args,
                "user revoke-role requires user name and role name as its argument",
            )?;
            let printer = super::printer(global)?;
            let ctl = connect(global).await?;
            let r = ctl
                .call(
                    ctl.client
                        .auth_client()
                        .user_revoke_role(user.as_str(), role.as_str()),
                )
                .await?
                .0;
            print_header_only(
                printer,
                &format!("Role {role} is revoked from user {user}"),
                r.header.as_ref(),
            )
        }
    }
}

async fn add(global: &GlobalArgs, a: UserAddArgs) -> Result<(), CtlError> {
    let arg = one(
        &a.args,
        "user add command requires user name as its argument",
    )?;
    let mut options = UserAddOptions::new();
    let (user, password) = if a.no_password {
        options = options.with_no_pwd();
        (arg, String::new())
    } else if !a.new_user_password.is_empty() {
        (arg, a.new_user_password.clone())
    } else if let Some((user, password)) = arg.split_once(':') {
        if user.is_empty() {
            return Err(CtlError::bad_args("empty user name is not allowed"));
        }
        (user.to_owned(), password.to_owned())
    } else if a.interactive {
        let password = prompt_password(&arg)?;
        (arg, password)
    } else {
        (arg, stdin_word())
    };
    let printer = super::printer(global)?;
    let ctl = connect(global).await?;
    let r = ctl
        .call(
            ctl.client
                .auth_client()
                .user_add(user.as_str(), password, Some(options)),
        )
        .await?
        .0;
    print_header_only(printer, &format!("User {user} created"), r.header.as_ref())
}

async fn get(global: &GlobalArgs, a: UserGetArgs) -> Result<(), CtlError> {
    let name = one(
        &a.args,
        "user get command requires user name as its argument",
    )?;
    let printer = super::printer(global)?;
    let ctl = connect(global).await?;
    let mut client = ctl.client.auth_client();
    let r = ctl.call(client.user_get(name.as_str())).await?.0;
    if a.detail {
        let mut out = format!("User: {name}\n");
        for role in &r.roles {
            out.push('\n');
            let role_response = ctl.call(client.role_get(role.as_str())).await?.0;
            out.push_str(&role_get_text(printer, role, &role_response)?);
        }
        emit(&out);
        return Ok(());
    }
    let text = match printer.format {
        Format::Simple => {
            let roles: String = r.roles.iter().map(|role| format!(" {role}")).collect();
            format!("User: {name}\nRoles:{roles}\n")
        }
        Format::Json => {
            crate::output::json::line(&names_json(r.header.as_ref(), "roles", &r.roles))
        }
        Format::Fields | Format::Table => return Err(printer.format.unsupported()),
    };
    emit(&text);
    Ok(())
}
