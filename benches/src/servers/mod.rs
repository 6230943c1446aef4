//! Real `keel` and `etcd` server processes for the commands that start
//! their own servers (`compare`, `scale`): members started with etcd's
//! flags on free loopback ports in temporary data directories
//! ([`cluster`]), registered so that they are killed however `keel-bench`
//! ends ([`processes`]).

pub mod cluster;
pub mod processes;

use std::path::Path;

use anyhow::{Context, Result};

/// The first line of `etcd --version` (`etcd Version: 3.4.x`). Errors
/// when `etcd` cannot be run.
pub fn etcd_version(etcd: &Path) -> Result<String> {
    let output = std::process::Command::new(etcd)
        .arg("--version")
        .output()
        .with_context(|| {
            format!(
                "cannot run {} (install Debian's etcd-server or pass --etcd-bin)",
                etcd.display()
            )
        })?;
    Ok(String::from_utf8_lossy(&output.stdout)
        .lines()
        .next()
        .unwrap_or("")
        .to_string())
}
