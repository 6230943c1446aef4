//! `snapshot status`: hash, revision, total keys and size of a snapshot
//! file, keel's or etcd's, with etcdctl 3.4 / etcdutl 3.5's outputs
//! (`-w simple|json|table|fields`; etcdctl `printer*.go` `DBStatus`).

use std::fmt::Write as _;
use std::path::Path;

use keel_kernel::apply::StateMachineConfig;

use crate::error::SnapshotError;
use crate::etcd;
use crate::format::{self, SnapshotFormat};
use crate::keel_file;

/// What `snapshot status` reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SnapshotStatus {
    /// etcd files: etcd's CRC-32C over every bucket (equal to what
    /// etcdctl prints). keel files: CRC-32C of the state-machine snapshot.
    pub hash: u32,
    /// The store's revision (etcd: of its newest stored version).
    pub revision: i64,
    /// etcd files: keys in all buckets, as etcd counts. keel files: keys in
    /// the store.
    pub total_keys: u64,
    /// etcd files: the bbolt database's size. keel files: the state-machine
    /// snapshot's length. Bytes.
    pub total_size_bytes: u64,
    /// Which kind of file it is.
    pub format: SnapshotFormat,
}

/// Output formats of etcdctl's `--write-out`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteOut {
    /// `hash, revision, keys, size` on one line.
    Simple,
    /// `{"hash":..,"revision":..,"totalKey":..,"totalSize":..}`.
    Json,
    /// An ASCII table.
    Table,
    /// `"Hash" : ...` lines.
    Fields,
}

/// Reads `path` and computes its status. The appended SHA-256 is not
/// checked (as etcd), but a keel snapshot's own checksums are.
///
/// Errors: [`SnapshotError::Io`], [`SnapshotError::NotASnapshot`], and the
/// damage variants of [`SnapshotError`].
pub fn status(path: &Path) -> Result<SnapshotStatus, SnapshotError> {
    let bytes = std::fs::read(path).map_err(|e| SnapshotError::io("read", path, e))?;
    status_of(&bytes)
}

/// [`status`] of a snapshot already in memory.
///
/// Errors: as [`status`].
pub fn status_of(bytes: &[u8]) -> Result<SnapshotStatus, SnapshotError> {
    let snapshot_format = format::detect(bytes)?;
    let data = format::strip_hash(bytes, true)?;
    match snapshot_format {
        SnapshotFormat::Etcd => {
            let status = etcd::status::status(data)?;
            Ok(SnapshotStatus {
                hash: status.hash,
                revision: status.revision,
                total_keys: status.total_keys,
                total_size_bytes: status.total_size_bytes,
                format: snapshot_format,
            })
        }
        SnapshotFormat::Keel => {
            let exact = keel_file::unpadded(data)?;
            let state = keel_file::decode(exact, StateMachineConfig::new(1000))?;
            Ok(SnapshotStatus {
                hash: crc32c::crc32c(exact),
                revision: state.store().current_revision(),
                total_keys: state.store().key_count() as u64,
                total_size_bytes: exact.len() as u64,
                format: snapshot_format,
            })
        }
    }
}

/// `status` printed as etcdctl prints it with `--write-out=write_out`
/// (ending with a newline).
pub fn render_status(status: &SnapshotStatus, write_out: WriteOut) -> String {
    let hash = format!("{:x}", status.hash);
    let size = humanize_bytes(status.total_size_bytes);
    match write_out {
        WriteOut::Simple => format!(
            "{hash}, {}, {}, {size}\n",
            status.revision, status.total_keys
        ),
        WriteOut::Json => format!(
            "{{\"hash\":{},\"revision\":{},\"totalKey\":{},\"totalSize\":{}}}\n",
            status.hash, status.revision, status.total_keys, status.total_size_bytes
        ),
        WriteOut::Fields => format!(
            "\"Hash\" : {}\n\"Revision\" : {}\n\"Keys\" : {}\n\"Size\" : {}\n",
            status.hash, status.revision, status.total_keys, status.total_size_bytes
        ),
        WriteOut::Table => table(
            &["HASH", "REVISION", "TOTAL KEYS", "TOTAL SIZE"],
            &[
                hash,
                status.revision.to_string(),
                status.total_keys.to_string(),
                size,
            ],
        ),
    }
}

/// etcdctl's table (olekukonko/tablewriter): centred headers, cells
/// aligned right, one row.
fn table(headers: &[&str], row: &[String]) -> String {
    let widths: Vec<usize> = headers
        .iter()
        .zip(row)
        .map(|(h, c)| h.len().max(c.len()))
        .collect();
    let rule: String = widths.iter().fold("+".to_owned(), |mut line, w| {
        line.push_str(&"-".repeat(w + 2));
        line.push('+');
        line
    });
    let mut out = String::new();
    let _ = writeln!(out, "{rule}");
    let mut line = "|".to_owned();
    for (header, width) in headers.iter().zip(&widths) {
        let gap = width - header.len();
        let left = gap / 2;
        let _ = write!(
            line,
            " {}{header}{} |",
            " ".repeat(left),
            " ".repeat(gap - left)
        );
    }
    let _ = writeln!(out, "{line}\n{rule}");
    let mut line = "|".to_owned();
    for (cell, width) in row.iter().zip(&widths) {
        let _ = write!(line, " {cell:>width$} |");
    }
    let _ = writeln!(out, "{line}\n{rule}");
    out
}

/// go-humanize's `Bytes` (SI units, as etcdctl prints sizes): `24576` ->
/// `25 kB`, `2100000` -> `2.1 MB`.
pub fn humanize_bytes(size_bytes: u64) -> String {
    const UNITS: [&str; 7] = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];
    if size_bytes < 10 {
        return format!("{size_bytes} B");
    }
    let size = size_bytes as f64;
    let exponent = (size.log10() / 3.0).floor() as usize;
    let exponent = exponent.min(UNITS.len() - 1);
    let value = (size / 1000f64.powi(exponent as i32) * 10.0 + 0.5).floor() / 10.0;
    if value < 10.0 {
        format!("{value:.1} {}", UNITS[exponent])
    } else {
        format!("{value:.0} {}", UNITS[exponent])
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    const ETCD_DB: &[u8] = include_bytes!("../tests/data/etcd-3.4.db");

    /// What etcdctl 3.4.23 printed for `tests/data/etcd-3.4.db`.
    #[test]
    fn renders_like_etcdctl() {
        let status = status_of(ETCD_DB).unwrap();
        assert_eq!(status.format, SnapshotFormat::Etcd);
        assert_eq!(
            render_status(&status, WriteOut::Table),
            "+----------+----------+------------+------------+\n\
             |   HASH   | REVISION | TOTAL KEYS | TOTAL SIZE |\n\
             +----------+----------+------------+------------+\n\
             | 2336c699 |        6 |         15 |      25 kB |\n\
             +----------+----------+------------+------------+\n"
        );
        assert_eq!(
            render_status(&status, WriteOut::Json),
            "{\"hash\":590792345,\"revision\":6,\"totalKey\":15,\"totalSize\":24576}\n"
        );
        assert_eq!(
            render_status(&status, WriteOut::Simple),
            "2336c699, 6, 15, 25 kB\n"
        );
        assert_eq!(
            render_status(&status, WriteOut::Fields),
            "\"Hash\" : 590792345\n\"Revision\" : 6\n\"Keys\" : 15\n\"Size\" : 24576\n"
        );
    }

    #[test]
    fn humanizes_like_go_humanize() {
        assert_eq!(humanize_bytes(0), "0 B");
        assert_eq!(humanize_bytes(999), "999 B");
        assert_eq!(humanize_bytes(24576), "25 kB");
        assert_eq!(humanize_bytes(2_100_000), "2.1 MB");
        assert_eq!(humanize_bytes(1000), "1.0 kB");
    }
}
