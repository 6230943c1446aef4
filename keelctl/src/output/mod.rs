//! Printing responses in etcdctl 3.4's output formats (`--write-out`):
//! `simple` ([`simple`]), `fields` ([`fields`]), `json` ([`json`]) and
//! `table` ([`table`], only for the commands etcdctl prints as tables).
//! Source: etcdctl/ctlv3/command/printer*.go.

pub mod fields;
pub mod go;
pub mod json;
pub mod simple;
pub mod table;

use std::io::Write;

use crate::error::CtlError;

/// An output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Human-readable lines (etcdctl's default).
    Simple,
    /// `"Field" : value` lines.
    Fields,
    /// The response as JSON, one object per line.
    Json,
    /// ASCII tables (member list, endpoint status/health/hashkv).
    Table,
}

impl Format {
    /// Parses `--write-out`.
    ///
    /// # Errors
    /// `unsupported output format` (exit 4) for anything else, as etcdctl
    /// (keelctl has no `protobuf` format).
    pub fn parse(name: &str) -> Result<Format, CtlError> {
        match name {
            "simple" => Ok(Format::Simple),
            "fields" => Ok(Format::Fields),
            "json" => Ok(Format::Json),
            "table" => Ok(Format::Table),
            _ => Err(CtlError::bad_feature("unsupported output format")),
        }
    }

    /// The format's flag value, as error messages name it.
    pub fn name(self) -> &'static str {
        match self {
            Format::Simple => "simple",
            Format::Fields => "fields",
            Format::Json => "json",
            Format::Table => "table",
        }
    }

    /// The error etcdctl gives when a command has no printer in this format.
    pub fn unsupported(self) -> CtlError {
        CtlError::unsupported_format(self.name())
    }
}

/// How to print: the format and `--hex` (keys and values as `\x..`).
#[derive(Debug, Clone, Copy)]
pub struct Printer {
    /// `--write-out`.
    pub format: Format,
    /// `--hex`.
    pub hex: bool,
    /// `get --print-value-only`: values without keys (simple only).
    pub value_only: bool,
}

/// Writes `text` to stdout at once; a closed stdout (e.g. `| head`) is not
/// an error worth a panic.
pub fn emit(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}

/// Writes `text` to stderr at once.
pub fn emit_err(text: &str) {
    let mut err = std::io::stderr().lock();
    let _ = err.write_all(text.as_bytes());
    let _ = err.flush();
}
