//! `keelctl`: etcdctl 3.4's commands, flags and output, for keel (and
//! etcd). Errors print `Error: <message>` on stderr and exit with
//! etcdctl's exit codes (see `error`).

mod cli;
mod client;
mod cmd;
mod error;
mod output;

use std::process::ExitCode;

use clap::Parser;
use clap::error::ErrorKind;

fn main() -> ExitCode {
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(&e),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            output::emit_err(&format!("Error: cannot start the runtime: {e}\n"));
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(cmd::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if !e.message.is_empty() {
                output::emit_err(&format!("Error: {}\n", e.message));
            }
            ExitCode::from(e.code)
        }
    }
}

/// Help and version print as clap does; every other command-line error
/// prints etcdctl's (cobra's) `Error: unknown flag: --x` style line and
/// exits 1, followed by clap's usage hint.
fn usage_error(e: &clap::Error) -> ExitCode {
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            let _ = e.print();
            ExitCode::SUCCESS
        }
        ErrorKind::UnknownArgument => {
            let arg = e
                .get(clap::error::ContextKind::InvalidArg)
                .map(|v| v.to_string())
                .unwrap_or_default();
            let flag = arg.split('=').next().unwrap_or_default();
            // cobra prints the error, etcdctl's usage (stdout), the error again.
            output::emit_err(&format!(
                "Error: unknown flag: {flag}\n\nError: unknown flag: {flag}\n"
            ));
            ExitCode::from(error::EXIT_ERROR)
        }
        ErrorKind::InvalidSubcommand => {
            let name = e
                .get(clap::error::ContextKind::InvalidSubcommand)
                .map(|v| v.to_string())
                .unwrap_or_default();
            output::emit_err(&format!(
                "Error: unknown command \"{name}\" for \"keelctl\"\nRun 'keelctl --help' for usage.\nError: unknown command \"{name}\" for \"keelctl\"\n"
            ));
            ExitCode::from(error::EXIT_ERROR)
        }
        _ => {
            let text = e.render().to_string();
            let first = text.lines().next().unwrap_or_default();
            let message = first.strip_prefix("error: ").unwrap_or(first);
            output::emit_err(&format!("Error: {message}\n"));
            ExitCode::from(error::EXIT_ERROR)
        }
    }
}
