//! Go's formatting as etcdctl's printers use it: `%q` (strconv.Quote),
//! `%x`, `time.Duration`'s String and go-humanize's `Bytes`.

use std::fmt::Write;
use std::time::Duration;

/// Go's `strconv.Quote` of a byte string: double-quoted, invalid UTF-8 as
/// `\xNN`, control characters escaped.
pub fn quote(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() + 2);
    out.push('"');
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            quote_char(&mut out, c);
        }
        for b in chunk.invalid() {
            let _ = write!(out, "\\x{b:02x}");
        }
    }
    out.push('"');
    out
}

fn quote_char(out: &mut String, c: char) {
    match c {
        '"' => out.push_str("\\\""),
        '\\' => out.push_str("\\\\"),
        '\u{7}' => out.push_str("\\a"),
        '\u{8}' => out.push_str("\\b"),
        '\u{c}' => out.push_str("\\f"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        '\u{b}' => out.push_str("\\v"),
        c if (c as u32) < 0x20 || c as u32 == 0x7f => {
            let _ = write!(out, "\\x{:02x}", c as u32);
        }
        c if c.is_control() => {
            let code = c as u32;
            if code < 0x10000 {
                let _ = write!(out, "\\u{code:04x}");
            } else {
                let _ = write!(out, "\\U{code:08x}");
            }
        }
        c => out.push(c),
    }
}

/// etcdctl's `--hex` form of bytes: `\x` before every two hex digits.
pub fn hex_escaped(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 4);
    for b in bytes {
        let _ = write!(out, "\\x{b:02x}");
    }
    out
}

/// Go's `time.Duration.String()`: `1.5s`, `2.11795ms`, `800µs`, `1m30s`.
pub fn duration(d: Duration) -> String {
    let ns = d.as_nanos();
    if ns == 0 {
        return "0s".to_owned();
    }
    if ns < 1_000 {
        return format!("{ns}ns");
    }
    if ns < 1_000_000 {
        return format!("{}µs", decimal(ns, 1_000));
    }
    if ns < 1_000_000_000 {
        return format!("{}ms", decimal(ns, 1_000_000));
    }
    let hours = ns / 3_600_000_000_000;
    let minutes = (ns / 60_000_000_000) % 60;
    let seconds = decimal(ns % 60_000_000_000, 1_000_000_000);
    match (hours, minutes) {
        (0, 0) => format!("{seconds}s"),
        (0, m) => format!("{m}m{seconds}s"),
        (h, m) => format!("{h}h{m}m{seconds}s"),
    }
}

/// `value / unit` with the fraction's trailing zeros dropped.
fn decimal(value: u128, unit: u128) -> String {
    let whole = value / unit;
    let fraction = value % unit;
    if fraction == 0 {
        return whole.to_string();
    }
    let width = unit.ilog10() as usize;
    let digits = format!("{fraction:0width$}");
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

/// go-humanize's `Bytes`: SI units, e.g. `25 kB`, `1.2 MB`, `512 B`.
pub fn humanize_bytes(size: u64) -> String {
    const UNITS: [&str; 7] = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];
    if size < 10 {
        return format!("{size} B");
    }
    let exponent = ((size as f64).ln() / 1000f64.ln()).floor() as usize;
    let exponent = exponent.min(UNITS.len() - 1);
    let value = (size as f64 / 1000f64.powi(exponent as i32) * 10.0 + 0.5).floor() / 10.0;
    if value < 10.0 {
        format!("{value:.1} {}", UNITS[exponent])
    } else {
        format!("{value:.0} {}", UNITS[exponent])
    }
}

/// Reads a Go string literal at the start of `text` (double-quoted with
/// escapes, or back-quoted raw), as `fmt.Sscanf("%q")` does after leading
/// spaces; returns the string and the rest of `text`.
///
/// # Errors
/// No literal there, or a bad escape.
pub fn unquote(text: &str) -> Result<(String, &str), String> {
    let text = text.trim_start_matches([' ', '\t']);
    if let Some(raw) = text.strip_prefix('`') {
        let end = raw.find('`').ok_or("unexpected EOF")?;
        return Ok((raw[..end].to_owned(), &raw[end + 1..]));
    }
    let Some(body) = text.strip_prefix('"') else {
        return Err("expected quoted string".to_owned());
    };
    let mut out = Vec::new();
    let mut chars = body.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => {
                let text = String::from_utf8(out).map_err(|e| e.to_string())?;
                return Ok((text, &body[i + 1..]));
            }
            '\\' => {
                let (_, e) = chars.next().ok_or("unexpected EOF")?;
                match e {
                    'n' => out.push(b'\n'),
                    't' => out.push(b'\t'),
                    'r' => out.push(b'\r'),
                    'a' => out.push(7),
                    'b' => out.push(8),
                    'f' => out.push(12),
                    'v' => out.push(11),
                    '\\' => out.push(b'\\'),
                    '"' => out.push(b'"'),
                    '\'' => out.push(b'\''),
                    'x' => {
                        let hex: String = (0..2)
                            .filter_map(|_| chars.next().map(|(_, h)| h))
                            .collect();
                        let byte = u8::from_str_radix(&hex, 16).map_err(|_| "invalid syntax")?;
                        out.push(byte);
                    }
                    _ => return Err("invalid syntax".to_owned()),
                }
            }
            c => {
                let mut buffer = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buffer).as_bytes());
            }
        }
    }
    Err("unexpected EOF".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_like_go() {
        assert_eq!(quote(b"bar"), "\"bar\"");
        assert_eq!(quote(b"a\"b\\c\n"), "\"a\\\"b\\\\c\\n\"");
        assert_eq!(quote(&[0x00, 0xff]), "\"\\x00\\xff\"");
        assert_eq!(quote("é".as_bytes()), "\"é\"");
    }

    #[test]
    fn durations_like_go() {
        assert_eq!(duration(Duration::from_nanos(2_117_950)), "2.11795ms");
        assert_eq!(duration(Duration::from_secs(90)), "1m30s");
        assert_eq!(duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(duration(Duration::from_micros(800)), "800µs");
    }

    #[test]
    fn bytes_like_humanize() {
        assert_eq!(humanize_bytes(24_576), "25 kB");
        assert_eq!(humanize_bytes(20_480), "20 kB");
        assert_eq!(humanize_bytes(1_234_567), "1.2 MB");
        assert_eq!(humanize_bytes(512), "512 B");
    }
}
