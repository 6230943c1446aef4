//! `get`, `put` and `del` (etcdctl/ctlv3/command/{get,put,del}_command.go):
//! the same flags, checks, messages and exit codes.

use std::io::Read;

use clap::Args;
use etcd_client::{DeleteOptions, GetOptions, PutOptions, SortOrder, SortTarget};

use super::keys::key_range;
use crate::cli::GlobalArgs;
use crate::client::connect;
use crate::error::{CtlError, EXIT_BAD_ARGS};
use crate::output::{Format, Printer, emit, fields, json, simple};

/// `get [options] <key> [range_end]`.
#[derive(Debug, Clone, Args)]
pub struct GetArgs {
    /// Linearizable(l) or Serializable(s)
    #[arg(long, default_value = "l")]
    pub consistency: String,
    /// Order of results; ASCEND or DESCEND (ASCEND by default)
    #[arg(long, default_value = "")]
    pub order: String,
    /// Sort target; CREATE, KEY, MODIFY, VALUE, or VERSION
    #[arg(long = "sort-by", default_value = "")]
    pub sort_by: String,
    /// Maximum number of results
    #[arg(long, default_value_t = 0)]
    pub limit: i64,
    /// Get keys with matching prefix
    #[arg(long)]
    pub prefix: bool,
    /// Get keys that are greater than or equal to the given key using byte compare
    #[arg(long = "from-key")]
    pub from_key: bool,
    /// Specify the kv revision
    #[arg(long, default_value_t = 0)]
    pub rev: i64,
    /// Get only the keys
    #[arg(long = "keys-only")]
    pub keys_only: bool,
    /// Get only the count (etcdctl 3.4.27+; only with --write-out=fields)
    #[arg(long = "count-only")]
    pub count_only: bool,
    /// Only write values when using the "simple" output format
    #[arg(long = "print-value-only")]
    pub print_value_only: bool,
    /// <key> [range_end]
    #[arg(allow_hyphen_values = false)]
    pub args: Vec<String>,
}

impl GetArgs {
    /// The key and options this `get` asks for (etcdctl's `getGetOp`).
    ///
    /// # Errors
    /// etcdctl's argument errors (exit 128) and bad flag values (exit 4).
    pub fn op(&self) -> Result<(Vec<u8>, GetOptions), CtlError> {
        let Some(key) = self.args.first() else {
            return Err(CtlError::bad_args(
                "get command needs one argument as key and an optional argument as range_end",
            ));
        };
        if self.prefix && self.from_key {
            return Err(CtlError::bad_args(
                "`--prefix` and `--from-key` cannot be set at the same time, choose one",
            ));
        }
        if self.keys_only && self.count_only {
            return Err(CtlError::bad_args(
                "`--keys-only` and `--count-only` cannot be set at the same time, choose one",
            ));
        }
        let mut options = GetOptions::new();
        match self.consistency.as_str() {
            "s" => options = options.with_serializable(),
            "l" => {}
            other => {
                return Err(CtlError::bad_feature(format!(
                    "unknown consistency flag {}",
                    crate::output::go::quote(other.as_bytes())
                )));
            }
        }
        let range_end = self.args.get(1).map(String::as_str);
        if range_end.is_some() && (self.prefix || self.from_key) {
            return Err(CtlError::bad_args(
                "too many arguments, only accept one argument when `--prefix` or `--from-key` is set",
            ));
        }
        options = options.with_limit(self.limit);
        if self.rev > 0 {
            options = options.with_revision(self.rev);
        }
        let order = match self.order.to_uppercase().as_str() {
            "ASCEND" => SortOrder::Ascend,
            "DESCEND" => SortOrder::Descend,
            "" => SortOrder::None,
            _ => {
                return Err(CtlError::bad_feature(format!(
                    "bad sort order {}",
                    self.order
                )));
            }
        };
        let target = match self.sort_by.to_uppercase().as_str() {
            "CREATE" => SortTarget::Create,
            "KEY" | "" => SortTarget::Key,
            "MODIFY" => SortTarget::Mod,
            "VALUE" => SortTarget::Value,
            "VERSION" => SortTarget::Version,
            _ => {
                return Err(CtlError::bad_feature(format!(
                    "bad sort target {}",
                    self.sort_by
                )));
            }
        };
        options = options.with_sort(target, order);
        let (key, end) = key_range(key, range_end, self.prefix, self.from_key);
        if !end.is_empty() {
            options = options.with_range(end);
        }
        if self.keys_only {
            options = options.with_keys_only();
        }
        if self.count_only {
            options = options.with_count_only();
        }
        Ok((key, options))
    }
}

/// `put [options] <key> <value>` (the value may come from stdin).
#[derive(Debug, Clone, Args)]
pub struct PutArgs {
    /// lease ID (in hexadecimal) to attach to the key
    #[arg(long, default_value = "0")]
    pub lease: String,
    /// return the previous key-value pair before modification
    #[arg(long = "prev-kv")]
    pub prev_kv: bool,
    /// updates the key using its current value
    #[arg(long = "ignore-value")]
    pub ignore_value: bool,
    /// updates the key using its current lease
    #[arg(long = "ignore-lease")]
    pub ignore_lease: bool,
    /// <key> <value>
    pub args: Vec<String>,
}

const PUT_USAGE: &str = "put command needs 1 argument and input from stdin or 2 arguments";

impl PutArgs {
    /// Key, value and options (etcdctl's `getPutOp`); `stdin` supplies a
    /// missing value.
    ///
    /// # Errors
    /// etcdctl's argument errors (exit 128).
    pub fn op(
        &self,
        stdin: impl FnOnce() -> Option<String>,
    ) -> Result<(String, String, PutOptions), CtlError> {
        let Some(key) = self.args.first() else {
            return Err(CtlError::bad_args(PUT_USAGE));
        };
        if self.ignore_value && self.args.len() > 1 {
            return Err(CtlError::bad_args(
                "put command needs only 1 argument when 'ignore-value' is set",
            ));
        }
        let mut value = String::new();
        if !self.ignore_value {
            value = match self.args.get(1) {
                Some(v) => v.clone(),
                None => stdin()
                    .filter(|s| !s.is_empty())
                    .ok_or_else(|| CtlError::bad_args(PUT_USAGE))?,
            };
        }
        let lease = parse_lease_hex(&self.lease)
            .map_err(|e| CtlError::bad_args(format!("bad lease ID ({e}), expecting ID in Hex")))?;
        let mut options = PutOptions::new();
        if lease != 0 {
            options = options.with_lease(lease);
        }
        if self.prev_kv {
            options = options.with_prev_key();
        }
        if self.ignore_value {
            options = options.with_ignore_value();
        }
        if self.ignore_lease {
            options = options.with_ignore_lease();
        }
        Ok((key.clone(), value, options))
    }
}

/// Parses a lease ID in hexadecimal as Go's `strconv.ParseInt(s, 16, 64)`.
///
/// # Errors
/// Go's message, e.g. `strconv.ParseInt: parsing "zz": invalid syntax`.
pub fn parse_lease_hex(text: &str) -> Result<i64, String> {
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let quoted = crate::output::go::quote(text.as_bytes());
    if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(format!(
            "strconv.ParseInt: parsing {quoted}: invalid syntax"
        ));
    }
    let magnitude = i128::from_str_radix(digits, 16)
        .map_err(|_| format!("strconv.ParseInt: parsing {quoted}: value out of range"))?;
    let value = if negative { -magnitude } else { magnitude };
    i64::try_from(value)
        .map_err(|_| format!("strconv.ParseInt: parsing {quoted}: value out of range"))
}

/// `del [options] <key> [range_end]`.
#[derive(Debug, Clone, Args)]
pub struct DelArgs {
    /// delete keys with matching prefix
    #[arg(long)]
    pub prefix: bool,
    /// return deleted key-value pairs
    #[arg(long = "prev-kv")]
    pub prev_kv: bool,
    /// delete keys that are greater than or equal to the given key using byte compare
    #[arg(long = "from-key")]
    pub from_key: bool,
    /// <key> [range_end]
    pub args: Vec<String>,
}

impl DelArgs {
    /// Key and options (etcdctl's `getDelOp`).
    ///
    /// # Errors
    /// etcdctl's argument errors (exit 128).
    pub fn op(&self) -> Result<(Vec<u8>, DeleteOptions), CtlError> {
        if self.args.is_empty() || self.args.len() > 2 {
            return Err(CtlError::bad_args(
                "del command needs one argument as key and an optional argument as range_end",
            ));
        }
        if self.prefix && self.from_key {
            return Err(CtlError::bad_args(
                "`--prefix` and `--from-key` cannot be set at the same time, choose one",
            ));
        }
        let range_end = self.args.get(1).map(String::as_str);
        if range_end.is_some() && (self.prefix || self.from_key) {
            return Err(CtlError::bad_args(
                "too many arguments, only accept one argument when `--prefix` or `--from-key` is set",
            ));
        }
        let (key, end) = key_range(&self.args[0], range_end, self.prefix, self.from_key);
        let mut options = DeleteOptions::new();
        if !end.is_empty() {
            options = options.with_range(end);
        }
        if self.prev_kv {
            options = options.with_prev_key();
        }
        Ok((key, options))
    }
}

/// Reads all of stdin (a `put` without a value argument).
pub fn read_stdin() -> Option<String> {
    let mut text = String::new();
    std::io::stdin().read_to_string(&mut text).ok()?;
    Some(text)
}

/// Runs `get`.
///
/// # Errors
/// Argument, format, connection and server errors, as etcdctl.
pub async fn get(global: &GlobalArgs, args: GetArgs) -> Result<(), CtlError> {
    let (key, options) = args.op()?;
    let mut printer = super::printer(global)?;
    let ctl = connect(global).await?;
    let mut kv = ctl.client.kv_client();
    let response = ctl.call(kv.get(key, Some(options))).await?;
    if args.count_only && printer.format != Format::Fields {
        return Err(CtlError::new(
            EXIT_BAD_ARGS,
            "--count-only is only for `--write-out=fields`",
        ));
    }
    if args.print_value_only {
        if printer.format != Format::Simple {
            return Err(CtlError::bad_args(
                "print-value-only is only for `--write-out=simple`",
            ));
        }
        printer.value_only = true;
    }
    print_range(printer, &response.0)
}

fn print_range(printer: Printer, r: &etcd_client::proto::PbRangeResponse) -> Result<(), CtlError> {
    let mut out = String::new();
    match printer.format {
        Format::Simple => simple::range(&mut out, printer.hex, printer.value_only, r),
        Format::Fields => fields::range(&mut out, r),
        Format::Json => out = json::line(&json::range(r)),
        Format::Table => return Err(printer.format.unsupported()),
    }
    emit(&out);
    Ok(())
}

/// Runs `put`.
///
/// # Errors
/// Argument, format, connection and server errors, as etcdctl.
pub async fn put(global: &GlobalArgs, args: PutArgs) -> Result<(), CtlError> {
    let (key, value, options) = args.op(read_stdin)?;
    let printer = super::printer(global)?;
    let ctl = connect(global).await?;
    let mut kv = ctl.client.kv_client();
    let response = ctl.call(kv.put(key, value, Some(options))).await?;
    let mut out = String::new();
    match printer.format {
        Format::Simple => simple::put(&mut out, printer.hex, false, &response.0),
        Format::Fields => fields::put(&mut out, &response.0),
        Format::Json => out = json::line(&json::put(&response.0)),
        Format::Table => return Err(printer.format.unsupported()),
    }
    emit(&out);
    Ok(())
}

/// Runs `del`.
///
/// # Errors
/// Argument, format, connection and server errors, as etcdctl.
pub async fn del(global: &GlobalArgs, args: DelArgs) -> Result<(), CtlError> {
    let (key, options) = args.op()?;
    let printer = super::printer(global)?;
    let ctl = connect(global).await?;
    let mut kv = ctl.client.kv_client();
    let response = ctl.call(kv.delete(key, Some(options))).await?;
    let mut out = String::new();
    match printer.format {
        Format::Simple => simple::delete(&mut out, printer.hex, false, &response.0),
        Format::Fields => fields::delete(&mut out, &response.0),
        Format::Json => out = json::line(&json::delete(&response.0)),
        Format::Table => return Err(printer.format.unsupported()),
    }
    emit(&out);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lease_ids_in_hex() {
        assert_eq!(parse_lease_hex("0"), Ok(0));
        assert_eq!(
            parse_lease_hex("694d77aa9e38260f"),
            Ok(0x694d_77aa_9e38_260f)
        );
        assert_eq!(
            parse_lease_hex("zz"),
            Err("strconv.ParseInt: parsing \"zz\": invalid syntax".to_owned())
        );
    }
}
