//! URL lists and the `--initial-cluster` map, checked as etcd checks them
//! (etcd `pkg/types/urls.go`, `urlsmap.go`).

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use url::Url;

use super::ConfigError;

/// Most URLs one flag may list (a guard against absurd input, far above real use).
pub const URLS_PER_FLAG_MAX: usize = 64;

/// Most members `--initial-cluster` may name.
pub const INITIAL_CLUSTER_MEMBERS_MAX: usize = 64;

/// Parses a comma-separated URL list such as `--listen-client-urls`.
///
/// Each URL must be `http://host:port` or `https://host:port` with no path,
/// query or fragment. Errors: [`ConfigError::BadUrl`] naming the flag, using
/// etcd's messages (`URL scheme must be http, https, unix, or unixs`, `URL
/// address does not have the form "host:port"`, `URL must not contain a path`);
/// unix sockets are not served by keel yet and are rejected as such.
pub fn parse_url_list(flag: &'static str, text: &str) -> Result<Vec<Url>, ConfigError> {
    let parts: Vec<&str> = text
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect();
    if parts.is_empty() {
        return Err(bad_url(flag, text, "no URL given"));
    }
    if parts.len() > URLS_PER_FLAG_MAX {
        return Err(bad_url(flag, text, "too many URLs"));
    }
    parts.iter().map(|part| parse_url(flag, part)).collect()
}

fn parse_url(flag: &'static str, text: &str) -> Result<Url, ConfigError> {
    let url = Url::parse(text).map_err(|e| bad_url(flag, text, &e.to_string()))?;
    match url.scheme() {
        "http" | "https" => {}
        "unix" | "unixs" => {
            return Err(bad_url(
                flag,
                text,
                "unix socket URLs are not supported by keel",
            ));
        }
        _ => {
            return Err(bad_url(
                flag,
                text,
                "URL scheme must be http, https, unix, or unixs",
            ));
        }
    }
    if url.host_str().is_none_or(str::is_empty) || url.port().is_none() {
        return Err(bad_url(
            flag,
            text,
            "URL address does not have the form \"host:port\"",
        ));
    }
    if url.path() != "/" && !url.path().is_empty() {
        return Err(bad_url(flag, text, "URL must not contain a path"));
    }
    if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
        return Err(bad_url(
            flag,
            text,
            "URL must not contain a query, fragment or user",
        ));
    }
    Ok(url)
}

fn bad_url(flag: &'static str, url: &str, reason: &str) -> ConfigError {
    ConfigError::BadUrl {
        flag,
        url: url.to_owned(),
        reason: reason.to_owned(),
    }
}

/// The socket address to bind for a listen URL: an IP literal, or `localhost`
/// which binds 127.0.0.1 (no name resolution happens here).
///
/// Errors: [`ConfigError::BadUrl`] when the host is another name (etcd requires
/// an IP to bind, too).
pub fn bind_addr(flag: &'static str, url: &Url) -> Result<SocketAddr, ConfigError> {
    let port = url.port().ok_or_else(|| {
        bad_url(
            flag,
            url.as_str(),
            "URL address does not have the form \"host:port\"",
        )
    })?;
    let ip = match url.host() {
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip),
        Some(url::Host::Domain("localhost")) => IpAddr::V4(Ipv4Addr::LOCALHOST),
        _ => {
            return Err(bad_url(
                flag,
                url.as_str(),
                "expected IP in URL for binding",
            ));
        }
    };
    Ok(SocketAddr::new(ip, port))
}

/// Parses `--initial-cluster` (`name1=url1,name1=url2,name2=url3`) into
/// member name -> peer URLs; a name listed twice gets both URLs.
///
/// Errors: [`ConfigError::BadInitialCluster`] for an entry without `=`, an
/// empty name, a bad URL, one URL listed for two members, or too many members.
pub fn parse_initial_cluster(text: &str) -> Result<BTreeMap<String, Vec<Url>>, ConfigError> {
    let mut members: BTreeMap<String, Vec<Url>> = BTreeMap::new();
    let mut owner_by_url: BTreeMap<String, String> = BTreeMap::new();
    for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (name, url_text) = entry
            .split_once('=')
            .ok_or_else(|| bad_cluster(format!("expected name=url, got {entry:?}")))?;
        let name = name.trim();
        if name.is_empty() {
            return Err(bad_cluster(format!("empty member name in {entry:?}")));
        }
        let url = parse_url("--initial-cluster", url_text.trim())?;
        if let Some(owner) = owner_by_url.insert(url.to_string(), name.to_owned())
            && owner != name
        {
            return Err(bad_cluster(format!(
                "URL {url} is listed for both {owner:?} and {name:?}"
            )));
        }
        members.entry(name.to_owned()).or_default().push(url);
        if members.len() > INITIAL_CLUSTER_MEMBERS_MAX {
            return Err(bad_cluster(format!(
                "more than {INITIAL_CLUSTER_MEMBERS_MAX} members"
            )));
        }
    }
    if members.is_empty() {
        return Err(bad_cluster("no member given".to_owned()));
    }
    Ok(members)
}

fn bad_cluster(reason: String) -> ConfigError {
    ConfigError::BadInitialCluster(reason)
}

/// Joins URLs as etcd prints them in messages: comma-separated, no trailing `/`.
pub fn join_urls(urls: &[Url]) -> String {
    let texts: Vec<String> = urls
        .iter()
        .map(|u| u.as_str().trim_end_matches('/').to_owned())
        .collect();
    texts.join(",")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    #[test]
    fn url_list_accepts_http_and_https_with_ports() {
        let urls = parse_url_list("--x", "http://127.0.0.1:2379, https://[::1]:2380").unwrap();
        assert_eq!(urls.len(), 2);
        assert_eq!(
            bind_addr("--x", &urls[1]).unwrap(),
            "[::1]:2380".parse().unwrap()
        );
    }

    #[test]
    fn url_list_rejects_what_etcd_rejects() {
        let cases = [
            ("ftp://a:1", "URL scheme must be http"),
            ("http://a", "host:port"),
            ("http://a:1/p", "must not contain a path"),
            ("unix://a:1", "not supported"),
            ("", "no URL"),
            ("not a url", "relative URL"),
        ];
        for (text, reason) in cases {
            let err = parse_url_list("--listen-client-urls", text)
                .unwrap_err()
                .to_string();
            assert!(err.contains(reason), "{text:?}: {err}");
            assert!(err.contains("--listen-client-urls"), "{err}");
        }
    }

    #[test]
    fn bind_addr_maps_localhost_and_rejects_other_names() {
        let url = Url::parse("http://localhost:2379").unwrap();
        assert_eq!(
            bind_addr("--x", &url).unwrap(),
            "127.0.0.1:2379".parse().unwrap()
        );
        let url = Url::parse("http://example.com:2379").unwrap();
        assert!(
            bind_addr("--x", &url)
                .unwrap_err()
                .to_string()
                .contains("expected IP")
        );
    }

    #[test]
    fn initial_cluster_groups_urls_by_name() {
        let map = parse_initial_cluster(
            "a=http://10.0.0.1:2380,b=http://10.0.0.2:2380,a=http://10.0.0.1:2381",
        )
        .unwrap();
        assert_eq!(map.len(), 2);
        assert_eq!(map["a"].len(), 2);
        assert_eq!(join_urls(&map["b"]), "http://10.0.0.2:2380");
    }

    #[test]
    fn initial_cluster_rejects_malformed_entries() {
        for text in [
            "a",
            "=http://x:1",
            "a=http://x:1,b=http://x:1",
            "a=nope",
            "",
        ] {
            assert!(parse_initial_cluster(text).is_err(), "{text:?}");
        }
    }
}
