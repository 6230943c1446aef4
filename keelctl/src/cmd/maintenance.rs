//! `alarm list|disarm` and `defrag [--cluster]`
//! (etcdctl/ctlv3/command/{alarm,defrag}_command.go).

use clap::{Args, Subcommand};
use etcd_client::proto::PbAlarmResponse;
use etcd_client::{AlarmAction, AlarmOptions, AlarmType};

use super::endpoint::{endpoints, only};
use crate::cli::GlobalArgs;
use crate::client::connect;
use crate::error::CtlError;
use crate::output::json::{self, Object};
use crate::output::{Format, emit, emit_err, fields};

/// The alarm commands.
#[derive(Debug, Subcommand)]
pub enum AlarmCommand {
    /// Disarms all alarms
    Disarm(NoArgs),
    /// Lists all alarms
    List(NoArgs),
}

/// A command without arguments (extra ones are an error).
#[derive(Debug, Clone, Args)]
pub struct NoArgs {
    /// (none accepted)
    pub args: Vec<String>,
}

/// `defrag [--cluster]`.
#[derive(Debug, Clone, Args)]
pub struct DefragArgs {
    /// use all endpoints from the cluster member list
    #[arg(long)]
    pub cluster: bool,
    /// etcd's offline defragmentation of a bbolt data directory (not
    /// applicable to keel; refused)
    #[arg(long = "data-dir")]
    pub data_dir: Option<String>,
}

fn alarm_name(alarm: i32) -> &'static str {
    match alarm {
        1 => "NOSPACE",
        2 => "CORRUPT",
        _ => "NONE",
    }
}

/// Runs an alarm command.
///
/// # Errors
/// Extra arguments (exit 128), connection and server errors.
pub async fn alarm(global: &GlobalArgs, command: AlarmCommand) -> Result<(), CtlError> {
    let (args, disarm) = match &command {
        AlarmCommand::Disarm(a) => (&a.args, true),
        AlarmCommand::List(a) => (&a.args, false),
    };
    if !args.is_empty() {
        let name = if disarm { "disarm" } else { "list" };
        return Err(CtlError::bad_args(format!(
            "alarm {name} command accepts no arguments"
        )));
    }
    let printer = super::printer(global)?;
    let ctl = connect(global).await?;
    let mut maintenance = ctl.client.maintenance_client();
    let mut r = ctl
        .call(maintenance.alarm(AlarmAction::Get, AlarmType::None, None))
        .await?
        .0;
    if disarm {
        // clientv3's AlarmDisarm of the zero member: disarm every raised alarm.
        let raised = std::mem::take(&mut r.alarms);
        for a in raised {
            let mut options = AlarmOptions::new();
            options.with_member(a.member_id);
            let alarm_type = if a.alarm == 2 {
                AlarmType::Corrupt
            } else {
                AlarmType::Nospace
            };
            let done = ctl
                .call(maintenance.alarm(AlarmAction::Deactivate, alarm_type, Some(options)))
                .await?
                .0;
            r.header = done.header;
            r.alarms.extend(done.alarms);
        }
    }
    let text = match printer.format {
        Format::Simple => r
            .alarms
            .iter()
            .map(|a| format!("memberID:{} alarm:{} \n", a.member_id, alarm_name(a.alarm)))
            .collect(),
        Format::Fields => alarm_fields(&r),
        Format::Json => {
            let alarms = r
                .alarms
                .iter()
                .map(|a| {
                    Object::new()
                        .uint("memberID", a.member_id)
                        .int("alarm", i64::from(a.alarm))
                        .value()
                })
                .collect();
            json::line(
                &Object::new()
                    .object("header", json::header(r.header.as_ref()))
                    .list("alarms", alarms)
                    .value(),
            )
        }
        Format::Table => return Err(printer.format.unsupported()),
    };
    emit(&text);
    Ok(())
}

fn alarm_fields(r: &PbAlarmResponse) -> String {
    let mut out = String::new();
    fields::header(&mut out, r.header.as_ref());
    for a in &r.alarms {
        out.push_str(&format!(
            "\"MemberID\" : {}\n\"AlarmType\" : {}\n\n",
            a.member_id,
            alarm_name(a.alarm)
        ));
    }
    out
}

/// Runs `defrag`.
///
/// # Errors
/// `--data-dir` (keel has no offline defragmentation), connection errors;
/// a failed member exits 1 after the others.
pub async fn defrag(global: &GlobalArgs, args: DefragArgs) -> Result<(), CtlError> {
    if args.data_dir.is_some() {
        return Err(CtlError::bad_feature(
            "defrag --data-dir defragments etcd's bbolt files; keel has none",
        ));
    }
    super::printer(global)?;
    let mut failures = 0;
    for endpoint in endpoints(global, args.cluster).await? {
        let result = match connect(&only(global, &endpoint)).await {
            Ok(ctl) => {
                let mut maintenance = ctl.client.maintenance_client();
                ctl.call(maintenance.defragment()).await
            }
            Err(e) => Err(e),
        };
        match result {
            Ok(_) => emit(&format!("Finished defragmenting etcd member[{endpoint}]\n")),
            Err(e) => {
                failures += 1;
                emit_err(&format!(
                    "Failed to defragment etcd member[{endpoint}] ({})\n",
                    e.message
                ));
            }
        }
    }
    if failures > 0 {
        return Err(CtlError::error(""));
    }
    Ok(())
}
