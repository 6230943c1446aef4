//! `--config-file`: etcd's YAML configuration file. Its keys are the flags'
//! names (`name`, `data-dir`, `listen-client-urls`, `heartbeat-interval`,
//! ...) with scalar values; as in etcd, when a file is given every other
//! command-line flag and `ETCD_*` variable is ignored (etcd v3.4/v3.5
//! `etcdmain/config.go`, "--config-file").
//!
//! Keys keel does not know are reported (the caller logs them) and
//! otherwise ignored, as etcd ignores keys its struct lacks. The TLS
//! sections (`client-transport-security`, `peer-transport-security`) are
//! mappings whose keys (`cert-file`, `key-file`, `trusted-ca-file`,
//! `client-cert-auth`, `auto-tls`) become the TLS flags (`--cert-file`,
//! `--peer-cert-file`, ...). A key keel does not serve in a TLS section
//! (`crl-file`, `allowed-cn`...) is refused when set: running with a
//! weaker check than the file asks for would be worse than not starting.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use serde_norway::Value;

use super::ConfigError;

/// The flag naming the file, and its `ETCD_*` variable.
pub const CONFIG_FILE_FLAG: &str = "--config-file";
/// The environment variable naming the file.
pub const CONFIG_FILE_ENV: &str = "ETCD_CONFIG_FILE";
/// Largest configuration file read, in bytes.
pub const CONFIG_FILE_BYTES_MAX: u64 = 1024 * 1024;

/// The keys of a TLS section keel maps to flags (etcd `securityConfig`).
const TLS_SECTION_KEYS: [&str; 5] = [
    "cert-file",
    "key-file",
    "trusted-ca-file",
    "client-cert-auth",
    "auto-tls",
];

/// The command line a configuration file stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileArgs {
    /// `keel --key=value ...`, one flag per known scalar key.
    pub args: Vec<OsString>,
    /// Keys of the file keel does not know, ignored.
    pub ignored: Vec<String>,
}

/// The configuration file named by `args` (`--config-file PATH`,
/// `--config-file=PATH`) or else by `ETCD_CONFIG_FILE` in `env`, if any.
pub fn config_file_path(args: &[OsString], env: Option<OsString>) -> Option<PathBuf> {
    let mut rest = args.iter().skip(1);
    while let Some(arg) = rest.next() {
        let text = arg.to_string_lossy();
        if text == CONFIG_FILE_FLAG {
            return rest.next().map(PathBuf::from);
        }
        if let Some(path) = text.strip_prefix("--config-file=") {
            return Some(PathBuf::from(path));
        }
    }
    env.filter(|value| !value.is_empty()).map(PathBuf::from)
}

/// Reads the YAML file at `path` into the command line it stands for;
/// `known` tells whether a key is one of keel's flags (without `--`).
///
/// Errors: [`ConfigError::ConfigFile`] when the file cannot be read, is
/// larger than [`CONFIG_FILE_BYTES_MAX`], is not a YAML mapping, gives a
/// known key a list or mapping, or sets a TLS option keel does not serve.
pub fn read_config_file(
    path: &Path,
    known: impl Fn(&str) -> bool,
) -> Result<FileArgs, ConfigError> {
    let bad = |reason: String| ConfigError::ConfigFile {
        path: path.display().to_string(),
        reason,
    };
    let size = std::fs::metadata(path)
        .map_err(|e| bad(e.to_string()))?
        .len();
    if size > CONFIG_FILE_BYTES_MAX {
        return Err(bad(format!("larger than {CONFIG_FILE_BYTES_MAX} bytes")));
    }
    let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
    file_args(&text, known).map_err(bad)
}

/// [`read_config_file`] on the file's text; errors are the reason alone.
pub fn file_args(text: &str, known: impl Fn(&str) -> bool) -> Result<FileArgs, String> {
    let entries: BTreeMap<String, Value> = match serde_norway::from_str(text) {
        Ok(Some(entries)) => entries,
        Ok(None) => BTreeMap::new(),
        Err(err) => return Err(format!("not a YAML mapping of settings: {err}")),
    };
    let mut file = FileArgs {
        args: vec![OsString::from("keel")],
        ignored: Vec::new(),
    };
    for (key, value) in entries {
        if let Some(prefix) = tls_flag_prefix(&key) {
            file.args.extend(tls_section_args(&key, prefix, &value)?);
            continue;
        }
        if !known(&key) || key == "config-file" {
            file.ignored.push(key);
            continue;
        }
        if let Some(text) = scalar(&key, &value)? {
            file.args.push(OsString::from(format!("--{key}={text}")));
        }
    }
    Ok(file)
}

/// A scalar value as flag text; `None` for a null (the flag's default).
fn scalar(key: &str, value: &Value) -> Result<Option<String>, String> {
    match value {
        Value::Null => Ok(None),
        Value::Bool(b) => Ok(Some(b.to_string())),
        Value::Number(n) => Ok(Some(n.to_string())),
        Value::String(s) => Ok(Some(s.clone())),
        _ => Err(format!(
            "{key}: expected a single value (a string, number or boolean)"
        )),
    }
}

/// The flag prefix of a TLS section: `""` for `client-transport-security`,
/// `"peer-"` for `peer-transport-security`; `None` for other keys.
fn tls_flag_prefix(key: &str) -> Option<&'static str> {
    match key {
        "client-transport-security" => Some(""),
        "peer-transport-security" => Some("peer-"),
        _ => None,
    }
}

/// The flags a TLS section `key` stands for (`cert-file: /c.pem` in
/// `peer-transport-security` → `--peer-cert-file=/c.pem`); null values
/// keep the defaults.
///
/// Errors: the section is not a mapping, a value is not a scalar, or a key
/// keel does not serve is set (`crl-file`, `allowed-cn`, ...).
fn tls_section_args(key: &str, prefix: &str, value: &Value) -> Result<Vec<OsString>, String> {
    let section = match value {
        Value::Null => return Ok(Vec::new()),
        Value::Mapping(section) => section,
        _ => return Err(format!("{key}: expected a mapping of TLS settings")),
    };
    let mut args = Vec::new();
    for (name, setting) in section {
        let name = name.as_str().unwrap_or_default();
        let path = format!("{key}.{name}");
        let Some(text) = scalar(&path, setting)? else {
            continue;
        };
        if TLS_SECTION_KEYS.contains(&name) {
            args.push(OsString::from(format!("--{prefix}{name}={text}")));
        } else if !text.is_empty() && text != "false" {
            return Err(format!("{path}: not supported by keel"));
        }
    }
    Ok(args)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn known(key: &str) -> bool {
        [
            "name",
            "data-dir",
            "heartbeat-interval",
            "initial-cluster",
            "enable-v2",
        ]
        .contains(&key)
            || key == "auto-compaction-retention"
    }

    fn args(file: &FileArgs) -> Vec<String> {
        file.args
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn scalar_keys_become_flags_and_unknown_keys_are_reported() {
        let text = "name: infra0\ndata-dir: /var/lib/keel\nheartbeat-interval: 100\n\
                    enable-v2: false\nauto-compaction-retention: \"1h\"\nmystery: 3\nlog-outputs: [stderr]\n";
        let file = file_args(text, known).unwrap();
        assert_eq!(
            args(&file),
            [
                "keel",
                "--auto-compaction-retention=1h",
                "--data-dir=/var/lib/keel",
                "--enable-v2=false",
                "--heartbeat-interval=100",
                "--name=infra0"
            ]
        );
        assert_eq!(file.ignored, ["log-outputs", "mystery"]);
    }

    #[test]
    fn nulls_keep_defaults_and_an_empty_file_is_no_settings() {
        assert_eq!(args(&file_args("name:\n", known).unwrap()), ["keel"]);
        assert_eq!(args(&file_args("", known).unwrap()), ["keel"]);
    }

    #[test]
    fn lists_maps_and_non_mappings_are_refused() {
        let err = file_args("name: [a, b]\n", known).unwrap_err();
        assert!(err.starts_with("name: expected a single value"), "{err}");
        assert!(file_args("- a\n- b\n", known).is_err());
        assert!(file_args("name: : :\n", known).is_err());
    }

    #[test]
    fn tls_sections_become_tls_flags() {
        let tls = "client-transport-security:\n  cert-file: /c.pem\n  key-file: /k.pem\n  \
                   trusted-ca-file: /ca.pem\n  client-cert-auth: true\n\
                   peer-transport-security:\n  auto-tls: true\n  cert-file:\n";
        assert_eq!(
            args(&file_args(tls, known).unwrap()),
            [
                "keel",
                "--cert-file=/c.pem",
                "--key-file=/k.pem",
                "--trusted-ca-file=/ca.pem",
                "--client-cert-auth=true",
                "--peer-auto-tls=true"
            ]
        );
        let empty = "peer-transport-security:\n  cert-file:\n  client-cert-auth: false\n";
        assert_eq!(
            args(&file_args(empty, known).unwrap()),
            ["keel", "--peer-client-cert-auth=false"]
        );
    }

    #[test]
    fn tls_options_keel_does_not_serve_are_refused_when_set() {
        let crl = "client-transport-security:\n  crl-file: /crl.pem\n";
        let err = file_args(crl, known).unwrap_err();
        assert_eq!(
            err,
            "client-transport-security.crl-file: not supported by keel"
        );
        let unset = "client-transport-security:\n  crl-file: \"\"\n  allowed-cn:\n";
        assert_eq!(args(&file_args(unset, known).unwrap()), ["keel"]);
        let list = "peer-transport-security: [a]\n";
        assert!(file_args(list, known).is_err());
    }

    #[test]
    fn the_file_is_found_on_the_command_line_or_in_the_environment() {
        let line = |items: &[&str]| items.iter().map(OsString::from).collect::<Vec<_>>();
        let env = Some(OsString::from("/env.yml"));
        let found = config_file_path(&line(&["keel", "--config-file", "/a.yml"]), env.clone());
        assert_eq!(found, Some(PathBuf::from("/a.yml")));
        let found = config_file_path(&line(&["keel", "--config-file=/b.yml"]), None);
        assert_eq!(found, Some(PathBuf::from("/b.yml")));
        let found = config_file_path(&line(&["keel", "--name", "x"]), env);
        assert_eq!(found, Some(PathBuf::from("/env.yml")));
        assert_eq!(config_file_path(&line(&["keel"]), None), None);
    }
}
