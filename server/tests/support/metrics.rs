//! Reading a server's Prometheus text (`GET /metrics`, etcd's and keel's)
//! and other plain HTTP answers, with bounded waits on their values.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// Longest time one HTTP request may take (connect, send, read).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// Pause between two scrapes while waiting for a value.
const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// One HTTP answer: status code and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpAnswer {
    /// The status code (200, 404, ...).
    pub status: u16,
    /// The body as text.
    pub body: String,
}

/// `GET <base><path>` over HTTP/1.0 (the server closes the connection
/// after the answer); `base` is `http://host:port`.
/// Errors: connection, timeout, or an answer that is not HTTP.
pub fn http_get(base: &str, path: &str) -> io::Result<HttpAnswer> {
    let addr = base.trim_start_matches("http://").trim_end_matches('/');
    let socket = addr
        .parse()
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("{addr}: {e}")))?;
    let mut stream = TcpStream::connect_timeout(&socket, REQUEST_TIMEOUT)?;
    stream.set_read_timeout(Some(REQUEST_TIMEOUT))?;
    stream.set_write_timeout(Some(REQUEST_TIMEOUT))?;
    let request = format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n");
    stream.write_all(request.as_bytes())?;
    let mut bytes = Vec::new();
    stream.read_to_end(&mut bytes)?;
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let not_http = || io::Error::new(io::ErrorKind::InvalidData, format!("not HTTP: {text:?}"));
    let (head, body) = text.split_once("\r\n\r\n").ok_or_else(not_http)?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(not_http)?;
    Ok(HttpAnswer {
        status,
        body: body.to_owned(),
    })
}

/// The Prometheus text of `GET <base>/metrics`; empty when it cannot be read.
pub fn scrape(base: &str) -> String {
    match http_get(base, "/metrics") {
        Ok(answer) if answer.status == 200 => answer.body,
        _ => String::new(),
    }
}

/// Every sample of metric `name` in `text`: (labels as written, without
/// braces; value). `name` is a full series name (`x_count`, `x_bucket`).
pub fn samples(text: &str, name: &str) -> Vec<(String, f64)> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let value: f64 = value.trim().parse().ok()?;
            let (series_name, labels) = match series.split_once('{') {
                Some((n, rest)) => (n, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            (series_name == name).then(|| (labels.to_owned(), value))
        })
        .collect()
}

/// The value of the unlabelled sample `name` in `text`, if present.
pub fn value(text: &str, name: &str) -> Option<f64> {
    samples(text, name)
        .into_iter()
        .find(|(labels, _)| labels.is_empty())
        .map(|(_, value)| value)
}

/// The value of the unlabelled sample `name` on the server at `base`
/// (0 when absent or unreadable).
pub fn value_at(base: &str, name: &str) -> f64 {
    value(&scrape(base), name).unwrap_or(0.0)
}

/// Scrapes `base` until `holds(text)`; returns the text that satisfied it,
/// or `Err` with the last text after `timeout`.
pub fn wait_until(
    base: &str,
    timeout: Duration,
    mut holds: impl FnMut(&str) -> bool,
) -> Result<String, String> {
    let deadline = Instant::now() + timeout;
    loop {
        let text = scrape(base);
        if holds(&text) {
            return Ok(text);
        }
        if Instant::now() >= deadline {
            return Err(text);
        }
        std::thread::sleep(POLL_INTERVAL);
    }
}

/// Polls `value()` until `holds(value)`; returns the last value and
/// whether it held before `timeout`.
pub fn wait_for_value(
    timeout: Duration,
    mut value: impl FnMut() -> f64,
    holds: impl Fn(f64) -> bool,
) -> (f64, bool) {
    let deadline = Instant::now() + timeout;
    loop {
        let now = value();
        if holds(now) {
            return (now, true);
        }
        if Instant::now() >= deadline {
            return (now, false);
        }
        std::thread::sleep(POLL_INTERVAL);
    }
}
