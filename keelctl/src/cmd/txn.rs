//! `txn [-i]`: reads compares, success requests and failure requests from
//! stdin, each section ended by an empty line, and runs them as one
//! transaction (etcdctl/ctlv3/command/txn_command.go).

use std::io::BufRead;

use clap::{Args, Parser, Subcommand};
use etcd_client::{Compare, CompareOp, Txn, TxnOp};

use super::argify::argify;
use super::kv::{DelArgs, GetArgs, PutArgs};
use crate::cli::GlobalArgs;
use crate::client::connect;
use crate::error::CtlError;
use crate::output::{Format, emit, fields, go, json, simple};

/// `txn [options]`.
#[derive(Debug, Clone, Args)]
pub struct TxnArgs {
    /// Input transaction in interactive mode
    #[arg(short, long)]
    pub interactive: bool,
    /// (none accepted)
    pub args: Vec<String>,
}

/// A request line of a txn, parsed with the commands' own flags.
#[derive(Debug, Parser)]
#[command(no_binary_name = true)]
struct RequestLine {
    #[command(subcommand)]
    request: Request,
}

#[derive(Debug, Subcommand)]
enum Request {
    Get(GetArgs),
    Put(PutArgs),
    Del(DelArgs),
}

/// Reads one line as Go's `ReadString('\n')`: a line without its newline
/// at the end of input is an `EOF` error, as in etcdctl.
fn read_line(input: &mut impl BufRead) -> Result<String, CtlError> {
    let mut line = String::new();
    let n = input
        .read_line(&mut line)
        .map_err(|e| CtlError::invalid_input(e.to_string()))?;
    if n == 0 || !line.ends_with('\n') {
        return Err(CtlError::invalid_input("EOF"));
    }
    Ok(line.trim().to_owned())
}

/// Reads compare lines up to an empty line.
///
/// # Errors
/// End of input or a malformed compare (exit 3).
pub fn read_compares(input: &mut impl BufRead) -> Result<Vec<Compare>, CtlError> {
    let mut compares = Vec::new();
    loop {
        let line = read_line(input)?;
        if line.is_empty() {
            return Ok(compares);
        }
        compares.push(parse_compare(&line).map_err(CtlError::invalid_input)?);
    }
}

/// Reads request lines up to an empty line.
///
/// # Errors
/// End of input (exit 3), a malformed request (exit 3) or a request with
/// bad arguments (its own error, as etcdctl exits from inside it).
pub fn read_ops(input: &mut impl BufRead) -> Result<Vec<TxnOp>, CtlError> {
    let mut ops = Vec::new();
    loop {
        let line = read_line(input)?;
        if line.is_empty() {
            return Ok(ops);
        }
        ops.push(parse_request(&line)?);
    }
}

/// Parses `put k v`, `get k --prefix`, `del k` and the like.
///
/// # Errors
/// etcdctl's `invalid txn ... request` messages (exit 3).
pub fn parse_request(line: &str) -> Result<TxnOp, CtlError> {
    let args = argify(line).map_err(CtlError::invalid_input)?;
    if args.len() < 2 {
        return Err(CtlError::invalid_input(format!(
            "invalid txn compare request: {line}"
        )));
    }
    let invalid = || CtlError::invalid_input(format!("invalid txn request: {line}"));
    let parsed = RequestLine::try_parse_from(&args).map_err(|_| invalid())?;
    Ok(match parsed.request {
        Request::Get(get) => {
            let (key, options) = get.op()?;
            TxnOp::get(key, Some(options))
        }
        Request::Put(put) => {
            let (key, value, options) = put.op(|| None)?;
            TxnOp::put(key, value, Some(options))
        }
        Request::Del(del) => {
            let (key, options) = del.op()?;
            TxnOp::delete(key, Some(options))
        }
    })
}

/// Parses `<target>("<key>") <op> "<value>"`, targets `ver|version`,
/// `c|create`, `m|mod`, `val|value` and `lease`; ops `= != < >`.
///
/// # Errors
/// etcdctl's `malformed comparison` / `invalid txn compare request`.
pub fn parse_compare(line: &str) -> Result<Compare, String> {
    let Some((target, rest)) = line.split_once('(') else {
        return Err(format!("malformed comparison: {line}"));
    };
    let (key, op, value) = scan_compare(rest).map_err(|(key, op)| {
        format!(
            "malformed comparison: {line}; got {target}({}) {op} \"\"",
            go::quote(key.as_bytes())
        )
    })?;
    let op = match op.as_str() {
        "=" => CompareOp::Equal,
        "!=" => CompareOp::NotEqual,
        "<" => CompareOp::Less,
        ">" => CompareOp::Greater,
        _ => return Err(format!("malformed comparison: {line} (unknown op {op})")),
    };
    let number = || {
        value
            .parse::<i64>()
            .map_err(|_| format!("invalid txn compare request: {line}"))
    };
    Ok(match target {
        "ver" | "version" => Compare::version(key, op, number()?),
        "c" | "create" => Compare::create_revision(key, op, number()?),
        "m" | "mod" => Compare::mod_revision(key, op, number()?),
        "val" | "value" => Compare::value(key, op, value),
        "lease" => Compare::lease(key, op, number()?),
        _ => {
            return Err(format!(
                "malformed comparison: {line} (unknown target {target})"
            ));
        }
    })
}

/// `fmt.Sscanf(rest, "%q) %s %q")`: key, op, value; on failure what was
/// read so far.
fn scan_compare(rest: &str) -> Result<(String, String, String), (String, String)> {
    let (key, rest) = go::unquote(rest).map_err(|_| (String::new(), String::new()))?;
    let rest = rest
        .strip_prefix(')')
        .ok_or_else(|| (key.clone(), String::new()))?
        .trim_start_matches([' ', '\t']);
    let op_len = rest.find([' ', '\t']).unwrap_or(rest.len());
    let op = rest[..op_len].to_owned();
    if op.is_empty() {
        return Err((key, op));
    }
    let (value, _) = go::unquote(&rest[op_len..]).map_err(|_| (key.clone(), op.clone()))?;
    Ok((key, op, value))
}

/// Runs `txn`.
///
/// # Errors
/// Arguments (exit 128), malformed input (exit 3), connection and server
/// errors.
pub async fn run(global: &GlobalArgs, args: TxnArgs) -> Result<(), CtlError> {
    if !args.args.is_empty() {
        return Err(CtlError::bad_args("txn command does not accept argument"));
    }
    let printer = super::printer(global)?;
    let ctl = connect(global).await?;
    let stdin = std::io::stdin();
    let mut input = stdin.lock();
    let prompt = |text: &str| {
        if args.interactive {
            emit(&format!("{text}\n"));
        }
    };
    prompt("compares:");
    let compares = read_compares(&mut input)?;
    prompt("success requests (get, put, del):");
    let success = read_ops(&mut input)?;
    prompt("failure requests (get, put, del):");
    let failure = read_ops(&mut input)?;
    let txn = Txn::new().when(compares).and_then(success).or_else(failure);
    let mut kv = ctl.client.kv_client();
    let response = ctl.call(kv.txn(txn)).await?;
    let mut out = String::new();
    match printer.format {
        Format::Simple => simple::txn(&mut out, printer.hex, &response.0),
        Format::Fields => fields::txn(&mut out, &response.0),
        Format::Json => out = json::line(&json::txn(&response.0)),
        Format::Table => return Err(printer.format.unsupported()),
    }
    emit(&out);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compares() {
        assert!(parse_compare(r#"value("k") = "v""#).is_ok());
        assert!(parse_compare(r#"mod("k") > "0""#).is_ok());
        assert!(parse_compare(r#"ver("k") = "x""#).is_err());
        assert!(parse_compare(r#"bogus("k") = "1""#).is_err());
        assert!(parse_compare("value k = v").is_err());
    }

    #[test]
    fn requests() {
        assert!(parse_request("put k v").is_ok());
        assert!(parse_request("get k --prefix").is_ok());
        assert!(parse_request("del k").is_ok());
        assert!(parse_request("get").is_err());
        assert!(parse_request("bogus k").is_err());
    }
}
