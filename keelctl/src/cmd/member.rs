//! `member list|add|remove|update|promote`
//! (etcdctl/ctlv3/command/member_command.go).

use clap::{Args, Subcommand};
use etcd_client::MemberAddOptions;
use etcd_client::proto::{PbMember, PbResponseHeader};

use crate::cli::GlobalArgs;
use crate::client::connect;
use crate::error::CtlError;
use crate::output::json::{self, Object};
use crate::output::{Format, emit, fields, go, table};

/// The member commands.
#[derive(Debug, Subcommand)]
pub enum MemberCommand {
    /// Adds a member into the cluster
    Add(MemberAddArgs),
    /// Removes a member from the cluster
    Remove(MemberIdArgs),
    /// Updates a member in the cluster
    Update(MemberUpdateArgs),
    /// Lists all members in the cluster
    List(MemberIdArgs),
    /// Promotes a non-voting member in the cluster
    Promote(MemberIdArgs),
}

/// `member add <memberName> [options]`.
#[derive(Debug, Clone, Args)]
pub struct MemberAddArgs {
    /// comma separated peer URLs for the new member.
    #[arg(long = "peer-urls", default_value = "")]
    pub peer_urls: String,
    /// indicates if the new member is raft learner
    #[arg(long)]
    pub learner: bool,
    /// <memberName>
    pub args: Vec<String>,
}

/// `member update <memberID> [options]`.
#[derive(Debug, Clone, Args)]
pub struct MemberUpdateArgs {
    /// comma separated peer URLs for the updated member.
    #[arg(long = "peer-urls", default_value = "")]
    pub peer_urls: String,
    /// <memberID>
    pub args: Vec<String>,
}

/// Positional arguments (a member ID in hex).
#[derive(Debug, Clone, Args)]
pub struct MemberIdArgs {
    /// <memberID>
    pub args: Vec<String>,
}

/// Runs a member command.
///
/// # Errors
/// etcdctl's argument errors, connection and server errors.
pub async fn run(global: &GlobalArgs, command: MemberCommand) -> Result<(), CtlError> {
    match command {
        MemberCommand::Add(args) => add(global, args).await,
        MemberCommand::Remove(args) => change(global, Change::Remove, &args.args, "").await,
        MemberCommand::Update(args) => {
            change(global, Change::Update, &args.args, &args.peer_urls).await
        }
        MemberCommand::List(_) => list(global).await,
        MemberCommand::Promote(args) => change(global, Change::Promote, &args.args, "").await,
    }
}

/// etcdctl's member table rows: ID, status, name, peer and client URLs,
/// learner.
pub fn member_rows(members: &[PbMember]) -> Vec<Vec<String>> {
    members
        .iter()
        .map(|m| {
            let status = if m.name.is_empty() {
                "unstarted"
            } else {
                "started"
            };
            vec![
                format!("{:x}", m.id),
                status.to_owned(),
                m.name.clone(),
                m.peer_ur_ls.join(","),
                m.client_ur_ls.join(","),
                m.is_learner.to_string(),
            ]
        })
        .collect()
}

/// The member list table's header.
pub const MEMBER_HEADER: [&str; 6] = [
    "ID",
    "Status",
    "Name",
    "Peer Addrs",
    "Client Addrs",
    "Is Learner",
];

async fn list(global: &GlobalArgs) -> Result<(), CtlError> {
    let printer = super::printer(global)?;
    let ctl = connect(global).await?;
    let mut cluster = ctl.client.cluster_client();
    let r = ctl.call(cluster.member_list()).await?.0;
    let text = match printer.format {
        Format::Simple => member_rows(&r.members)
            .iter()
            .map(|row| format!("{}\n", row.join(", ")))
            .collect(),
        Format::Fields => {
            let mut out = String::new();
            fields::header(&mut out, r.header.as_ref());
            for m in &r.members {
                out.push_str(&format!(
                    "\"ID\" : {}\n\"Name\" : {}\n",
                    m.id,
                    go::quote(m.name.as_bytes())
                ));
                for u in &m.peer_ur_ls {
                    out.push_str(&format!("\"PeerURL\" : {}\n", go::quote(u.as_bytes())));
                }
                for u in &m.client_ur_ls {
                    out.push_str(&format!("\"ClientURL\" : {}\n", go::quote(u.as_bytes())));
                }
                out.push_str(&format!("\"IsLearner\" : {}\n\n", m.is_learner));
            }
            out
        }
        Format::Json => json::line(&members_json(r.header.as_ref(), None, &r.members)),
        Format::Table => table::render(&MEMBER_HEADER, &member_rows(&r.members)),
    };
    emit(&text);
    Ok(())
}

fn members_json(
    header: Option<&PbResponseHeader>,
    member: Option<&PbMember>,
    members: &[PbMember],
) -> serde_json::Value {
    Object::new()
        .object("header", json::header(header))
        .object("member", member.map(json::member))
        .list("members", json::members(members))
        .value()
}

async fn add(global: &GlobalArgs, args: MemberAddArgs) -> Result<(), CtlError> {
    let name = match args.args.as_slice() {
        [] => return Err(CtlError::bad_args("member name not provided")),
        [name] => name.clone(),
        many => {
            let mut message = "too many arguments".to_owned();
            for s in many {
                if s.to_lowercase().starts_with("http") {
                    message.push_str(&format!(", did you mean --peer-urls={s}"));
                }
            }
            return Err(CtlError::bad_args(message));
        }
    };
    if args.peer_urls.is_empty() {
        return Err(CtlError::bad_args("member peer urls not provided"));
    }
    let urls: Vec<String> = args.peer_urls.split(',').map(str::to_owned).collect();
    let printer = super::printer(global)?;
    let ctl = connect(global).await?;
    let mut cluster = ctl.client.cluster_client();
    let options = args
        .learner
        .then(|| MemberAddOptions::new().with_is_learner());
    let r = ctl.call(cluster.member_add(urls, options)).await?.0;
    let new_member = r.member.clone().unwrap_or_default();
    let cluster_id = r.header.as_ref().map_or(0, |h| h.cluster_id);
    let text = match printer.format {
        Format::Simple => {
            let mut out = format!(
                "Member {:16x} added to cluster {cluster_id:16x}\n",
                new_member.id
            );
            let mut conf = Vec::new();
            for m in &r.members {
                for u in &m.peer_ur_ls {
                    let n = if m.id == new_member.id {
                        &name
                    } else {
                        &m.name
                    };
                    conf.push(format!("{n}={u}"));
                }
            }
            out.push('\n');
            out.push_str(&format!("ETCD_NAME={}\n", go::quote(name.as_bytes())));
            out.push_str(&format!(
                "ETCD_INITIAL_CLUSTER={}\n",
                go::quote(conf.join(",").as_bytes())
            ));
            out.push_str(&format!(
                "ETCD_INITIAL_ADVERTISE_PEER_URLS={}\n",
                go::quote(args.peer_urls.as_bytes())
            ));
            out.push_str("ETCD_INITIAL_CLUSTER_STATE=\"existing\"\n");
            out
        }
        Format::Json => json::line(&members_json(
            r.header.as_ref(),
            r.member.as_ref(),
            &r.members,
        )),
        Format::Fields | Format::Table => return Err(printer.format.unsupported()),
    };
    emit(&text);
    Ok(())
}

#[derive(Debug, Clone, Copy)]
enum Change {
    Remove,
    Update,
    Promote,
}

async fn change(
    global: &GlobalArgs,
    change: Change,
    args: &[String],
    peer_urls: &str,
) -> Result<(), CtlError> {
    let [id] = args else {
        return Err(CtlError::bad_args("member ID is not provided"));
    };
    let id = u64::from_str_radix(id, 16).map_err(|_| {
        CtlError::bad_args(format!(
            "bad member ID arg (strconv.ParseUint: parsing {}: invalid syntax), expecting ID in Hex",
            go::quote(id.as_bytes())
        ))
    })?;
    if matches!(change, Change::Update) && peer_urls.is_empty() {
        return Err(CtlError::bad_args("member peer urls not provided"));
    }
    let printer = super::printer(global)?;
    let ctl = connect(global).await?;
    let mut cluster = ctl.client.cluster_client();
    let (header, members, verb) = match change {
        Change::Remove => {
            let r = ctl.call(cluster.member_remove(id)).await?.0;
            (r.header, r.members, "removed from")
        }
        Change::Update => {
            let urls: Vec<String> = peer_urls.split(',').map(str::to_owned).collect();
            let r = ctl.call(cluster.member_update(id, urls)).await?.0;
            (r.header, r.members, "updated in")
        }
        Change::Promote => {
            let r = ctl.call(cluster.member_promote(id)).await?.0;
            (r.header, r.members, "promoted in")
        }
    };
    let cluster_id = header.as_ref().map_or(0, |h| h.cluster_id);
    let text = match printer.format {
        Format::Simple => format!("Member {id:16x} {verb} cluster {cluster_id:16x}\n"),
        Format::Json if !matches!(change, Change::Promote) => {
            json::line(&members_json(header.as_ref(), None, &members))
        }
        _ => return Err(printer.format.unsupported()),
    };
    emit(&text);
    Ok(())
}
