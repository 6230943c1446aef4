//! The small, explicit normalisation applied to etcdctl output before keel's
//! transcript is compared with etcd's. It hides only what legitimately
//! differs between two servers: member and cluster ids, ports and paths,
//! versions, database sizes, Raft terms and indexes, lease ids (mapped to
//! `<lease-N>` in the order they were granted), log-line timestamps and
//! durations. Revisions, keys, values, counts and errors are left as printed.
//! A lease's remaining TTL is hidden only when it counted down by about the
//! time that passed since the lease was granted or renewed
//! ([`remaining_ttl_band`]); otherwise it stays as printed (with the band it
//! missed), so a TTL that never counts down shows up as a difference.

use std::collections::BTreeMap;
use std::ops::RangeInclusive;
use std::time::{Duration, Instant};

/// How one command's output is normalised besides the rules every output gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Norm {
    /// Only the common rules.
    Plain,
    /// `endpoint status` lines: `endpoint, id, version, db size, is leader,
    /// is learner, raft term, raft index, raft applied index, errors`; the id,
    /// version, size, term and indexes are replaced.
    EndpointStatus,
    /// `endpoint status` of several members: as [`Norm::EndpointStatus`],
    /// and the is-leader column too (which member wins an election differs
    /// from run to run).
    EndpointStatusCluster,
    /// `member list` lines: `id, status, name, peer urls, client urls,
    /// is learner`; the id is replaced and lines are sorted (ids order them).
    MemberList,
    /// `endpoint health`: the `took = <duration>` is replaced and lines are
    /// sorted (etcdctl probes endpoints concurrently).
    EndpointHealth,
    /// Lines are sorted (for output whose order the server does not define,
    /// e.g. `lease list`, which etcd prints in map order).
    SortLines,
    /// Keys of `etcdctl lock` and `elect` (`<name>/<lease id in hex>`): the
    /// lease id of etcdctl's own session, never printed by a `lease grant`,
    /// is replaced by `<session>`.
    SessionKeys,
}

/// When something happened, as far as the test can tell: between `from`
/// (before the request was sent) and `to` (after its answer arrived).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    /// Before the request was sent.
    pub from: Instant,
    /// After the answer arrived.
    pub to: Instant,
}

impl Window {
    /// From `from` until now.
    pub fn since(from: Instant) -> Window {
        Window {
            from,
            to: Instant::now(),
        }
    }
}

/// Extra seconds allowed below the band (one tick of a server's lease
/// clock, rounding of the printed seconds).
pub const TTL_SLACK_SECS: i64 = 1;

/// The remaining TTLs (in whole seconds) a server may report for a lease of
/// `granted_secs` whose countdown (re)started during `started` and which was
/// asked during `asked`: `granted - elapsed`, rounded down or up, for any
/// elapsed time the two windows allow, and [`TTL_SLACK_SECS`] lower. A TTL
/// that does not count down leaves the band once a full second surely
/// passed.
pub fn remaining_ttl_band(
    granted_secs: i64,
    started: Window,
    asked: Window,
) -> RangeInclusive<i64> {
    let elapsed_min = asked.from.saturating_duration_since(started.to);
    let elapsed_max = asked.to.saturating_duration_since(started.from);
    let ceil_secs = |d: Duration| d.as_secs() as i64 + i64::from(d.subsec_nanos() > 0);
    let low = granted_secs - ceil_secs(elapsed_max) - TTL_SLACK_SECS;
    let high = granted_secs - elapsed_min.as_secs() as i64;
    low..=high
}

/// What the normaliser knows about one run: URLs and paths to hide, the
/// lease ids seen so far and when each lease's countdown last (re)started.
#[derive(Clone, Debug, Default)]
pub struct Context {
    /// `(text, placeholder)` pairs replaced verbatim (URLs, temporary paths).
    pub literals: Vec<(String, String)>,
    /// Lease ids in the order they were granted.
    pub leases: Vec<i64>,
    /// When each lease was last granted or renewed (keep-alive).
    pub renewed: BTreeMap<i64, Window>,
    /// When the command whose output is being normalised was started; the
    /// window ends when [`Context::normalize`] is called.
    pub command_started: Option<Instant>,
}

impl Context {
    /// Learns lease ids from `lease grant` output (`lease <hex id> granted
    /// with TTL(..)` lines, or `"ID":<decimal>,"TTL":` in JSON), and that
    /// leases granted or renewed (`lease <hex id> keepalived with TTL(..)`)
    /// restarted their countdown during the command that ran in `when`.
    pub fn learn_leases(&mut self, stdout: &str, when: Window) {
        for line in stdout.lines() {
            // `lease timetolive` prints the same words, then `, remaining(`.
            let hex = line
                .strip_prefix("lease ")
                .and_then(|rest| rest.split_once(" granted with TTL("))
                .filter(|(_, ttl)| ttl.ends_with("s)") && !ttl.contains(','))
                .and_then(|(hex, _)| i64::from_str_radix(hex, 16).ok());
            let json = line
                .split_once("\"ID\":")
                .and_then(|(_, rest)| rest.split_once(",\"TTL\":"))
                .and_then(|(id, _)| id.parse().ok());
            if let Some(id) = hex.or(json) {
                if !self.leases.contains(&id) {
                    self.leases.push(id);
                }
                self.renewed.insert(id, when);
            }
            let renewed = line
                .strip_prefix("lease ")
                .and_then(|rest| rest.split_once(" keepalived with TTL("))
                .and_then(|(hex, _)| i64::from_str_radix(hex, 16).ok());
            if let Some(id) = renewed {
                self.renewed.insert(id, when);
            }
        }
    }

    /// Substitutes `{leaseN}` (1-based, in grant order) in an argument with
    /// the lease's id in hex, as etcdctl takes it.
    pub fn substitute(&self, arg: &str) -> String {
        let mut arg = arg.to_owned();
        for (n, id) in self.leases.iter().enumerate() {
            arg = arg.replace(&format!("{{lease{}}}", n + 1), &format!("{id:x}"));
        }
        arg
    }

    /// Applies the common rules and then `norm` to one command's output.
    pub fn normalize(&self, text: &str, norm: Norm) -> String {
        let mut text = text.to_owned();
        for (literal, placeholder) in &self.literals {
            text = text.replace(literal.as_str(), placeholder);
        }
        text = self.judge_remaining_ttls(&text);
        text = self.hide_leases(&text);
        text = hide_json_fields(&text);
        let lines = text.lines().map(|line| normalize_line(line, norm));
        let mut lines: Vec<String> = lines.collect();
        if matches!(
            norm,
            Norm::SortLines | Norm::MemberList | Norm::EndpointHealth
        ) {
            lines.sort();
        }
        lines.iter().map(|l| format!("{l}\n")).collect()
    }

    /// Applies [`Context::judge_remaining_ttl`] to each line.
    fn judge_remaining_ttls(&self, text: &str) -> String {
        let asked = Window::since(self.command_started.unwrap_or_else(Instant::now));
        let lines: Vec<String> = text
            .lines()
            .map(|line| self.judge_remaining_ttl(line, asked))
            .collect();
        let mut out = lines.join("\n");
        if text.ends_with('\n') {
            out.push('\n');
        }
        out
    }

    /// `lease <id> granted with TTL(60s), remaining(57s)`: the remaining TTL
    /// becomes `remaining(<ttl>)` when it lies in [`remaining_ttl_band`] for
    /// the lease's last grant or renewal and `asked`; otherwise it stays,
    /// followed by the band it missed (or `[countdown start unknown]`).
    fn judge_remaining_ttl(&self, line: &str, asked: Window) -> String {
        let (Some(granted), Some(remaining)) = (
            number_between(line, "TTL(", "s)"),
            number_between(line, "remaining(", "s)"),
        ) else {
            return line.to_owned();
        };
        let printed = format!("remaining({remaining}s)");
        let id = line
            .strip_prefix("lease ")
            .and_then(|rest| rest.split_once(' '))
            .and_then(|(hex, _)| i64::from_str_radix(hex, 16).ok());
        let Some(started) = id.and_then(|id| self.renewed.get(&id)) else {
            return line.replace(&printed, &format!("{printed} [countdown start unknown]"));
        };
        let band = remaining_ttl_band(granted, *started, asked);
        if band.contains(&remaining) {
            return line.replace(&printed, "remaining(<ttl>)");
        }
        let missed = format!("{printed} [expected {}..={}]", band.start(), band.end());
        line.replace(&printed, &missed)
    }

    /// Replaces each lease id (hex as etcdctl prints it, and decimal as JSON
    /// prints it) with `<lease-N>`.
    fn hide_leases(&self, text: &str) -> String {
        let mut text = text.to_owned();
        for (n, id) in self.leases.iter().enumerate() {
            let placeholder = format!("<lease-{}>", n + 1);
            text = text.replace(&format!("{id:016x}"), &placeholder);
            text = text.replace(&format!("{id:x}"), &placeholder);
            text = text.replace(&id.to_string(), &placeholder);
        }
        text
    }
}

fn normalize_line(line: &str, norm: Norm) -> String {
    if line.starts_with("{\"level\":") {
        return summarize_log_line(line);
    }
    let line = sort_attached_keys(line);
    match norm {
        Norm::Plain | Norm::SortLines => line,
        Norm::EndpointStatus => replace_fields(
            &line,
            &[
                (1, "<member-id>"),
                (2, "<version>"),
                (3, "<db-size>"),
                (6, "<raft-term>"),
                (7, "<raft-index>"),
                (8, "<raft-applied-index>"),
            ],
        ),
        Norm::EndpointStatusCluster => replace_fields(
            &line,
            &[
                (1, "<member-id>"),
                (2, "<version>"),
                (3, "<db-size>"),
                (4, "<is-leader>"),
                (6, "<raft-term>"),
                (7, "<raft-index>"),
                (8, "<raft-applied-index>"),
            ],
        ),
        Norm::MemberList => replace_fields(&line, &[(0, "<member-id>")]),
        Norm::EndpointHealth => match line.split_once("took = ") {
            Some((head, _)) => format!("{head}took = <duration>"),
            None => line,
        },
        Norm::SessionKeys => hide_session_lease(&line),
    }
}

/// `name/694d7a4e5e2f2a0c` (a key of etcdctl's `lock` or `elect`: the
/// prefix, then the session's lease id in hex) → `name/<session>`.
fn hide_session_lease(line: &str) -> String {
    match line.rsplit_once('/') {
        Some((prefix, id))
            if (8..=16).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_hexdigit()) =>
        {
            format!("{prefix}/<session>")
        }
        _ => line.to_owned(),
    }
}

/// Replaces the given `", "`-separated fields of a line.
fn replace_fields(line: &str, replacements: &[(usize, &str)]) -> String {
    let mut fields: Vec<&str> = line.split(", ").collect();
    if fields.len() < 2 {
        return line.to_owned();
    }
    for &(index, placeholder) in replacements {
        if let Some(field) = fields.get_mut(index) {
            *field = placeholder;
        }
    }
    fields.join(", ")
}

/// etcdctl's client library logs JSON lines (timestamp, caller, a client
/// UUID, a retry attempt) on stderr; only the message and the error are
/// compared: `log: <msg>: <error>`.
fn summarize_log_line(line: &str) -> String {
    let msg = json_string_field(line, "msg").unwrap_or_default();
    match json_string_field(line, "error") {
        Some(error) => format!("log: {msg}: {error}"),
        None => format!("log: {msg}"),
    }
}

/// The raw (still escaped) text of a JSON string field `"name":"..."`.
fn json_string_field(line: &str, name: &str) -> Option<String> {
    let needle = format!("\"{name}\":\"");
    let start = line.find(&needle)? + needle.len();
    let mut escaped = false;
    for (offset, c) in line[start..].char_indices() {
        match c {
            '\\' if !escaped => escaped = true,
            '"' if !escaped => return Some(line[start..start + offset].to_owned()),
            _ => escaped = false,
        }
    }
    None
}

/// `attached keys([k2 k1])` lists keys in etcd's map order, which is not
/// defined: they are sorted.
fn sort_attached_keys(line: &str) -> String {
    const OPEN: &str = "attached keys([";
    let Some(start) = line.find(OPEN).map(|at| at + OPEN.len()) else {
        return line.to_owned();
    };
    let Some(len) = line[start..].find("])") else {
        return line.to_owned();
    };
    let mut keys: Vec<&str> = line[start..start + len].split(' ').collect();
    keys.sort_unstable();
    format!(
        "{}{}{}",
        &line[..start],
        keys.join(" "),
        &line[start + len..]
    )
}

fn number_between(line: &str, open: &str, close: &str) -> Option<i64> {
    let start = line.find(open)? + open.len();
    let end = start + line[start..].find(close)?;
    line[start..end].parse().ok()
}

/// JSON (`-w json`) fields whose numbers differ between servers for reasons
/// other than behaviour: ids, terms, indexes, sizes.
const JSON_NUMBER_FIELDS: [&str; 10] = [
    "cluster_id",
    "member_id",
    "raft_term",
    "leader",
    "raftIndex",
    "raftTerm",
    "raftAppliedIndex",
    "dbSize",
    "dbSizeInUse",
    "ID",
];

fn hide_json_fields(text: &str) -> String {
    let mut text = text.to_owned();
    for field in JSON_NUMBER_FIELDS {
        text = replace_number_after(&text, &format!("\"{field}\":"), &format!("<{field}>"));
    }
    // `-w fields` prints `"ClusterID" : 123` lines.
    for field in ["ClusterID", "MemberID", "RaftTerm"] {
        text = replace_number_after(&text, &format!("\"{field}\" : "), &format!("<{field}>"));
    }
    replace_string_after(&text, "\"version\":\"", "<version>")
}

/// Replaces the digits right after each `needle` with `placeholder`.
pub fn replace_number_after(text: &str, needle: &str, placeholder: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(needle) {
        let after = at + needle.len();
        out.push_str(&rest[..after]);
        let digits = rest[after..].bytes().take_while(u8::is_ascii_digit).count();
        if digits > 0 {
            out.push_str(placeholder);
        }
        rest = &rest[after + digits..];
    }
    out.push_str(rest);
    out
}

/// Replaces the string content right after each `needle` (which ends with
/// the opening quote) with `placeholder`.
fn replace_string_after(text: &str, needle: &str, placeholder: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(needle) {
        let after = at + needle.len();
        out.push_str(&rest[..after]);
        let len = rest[after..].find('"').unwrap_or(0);
        out.push_str(placeholder);
        rest = &rest[after + len..];
    }
    out.push_str(rest);
    out
}

/// A line diff (longest common subsequence) of two transcripts: lines only in
/// `left` start with `-`, only in `right` with `+`, common ones with a space.
pub fn line_diff(left: &str, right: &str) -> String {
    let a: Vec<&str> = left.lines().collect();
    let b: Vec<&str> = right.lines().collect();
    let mut lcs = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let (mut i, mut j, mut out) = (0, 0, String::new());
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            out.push_str(&format!("  {}\n", a[i]));
            (i, j) = (i + 1, j + 1);
        } else if j < b.len() && (i == a.len() || lcs[i][j + 1] >= lcs[i + 1][j]) {
            out.push_str(&format!("+ {}\n", b[j]));
            j += 1;
        } else {
            out.push_str(&format!("- {}\n", a[i]));
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_ids_are_hidden_but_revisions_kept() {
        let ctx = Context::default();
        let out = ctx.normalize(
            r#"{"header":{"cluster_id":1484,"member_id":1027,"revision":7,"raft_term":2}}"#,
            Norm::Plain,
        );
        assert_eq!(
            out,
            "{\"header\":{\"cluster_id\":<cluster_id>,\"member_id\":<member_id>,\"revision\":7,\"raft_term\":<raft_term>}}\n"
        );
    }

    /// A window of `len_ms` that ended `ago_ms` before `now`.
    fn window_ago(now: Instant, ago_ms: u64, len_ms: u64) -> Window {
        let to = now - Duration::from_millis(ago_ms);
        Window {
            from: to - Duration::from_millis(len_ms),
            to,
        }
    }

    /// A context that saw lease `694d7a4e5e2f2a0c` granted (60 s) during a
    /// 100 ms command that ended `ago_ms` ago, and is asked right now.
    fn granted_ago(ago_ms: u64) -> Context {
        let now = Instant::now();
        let mut ctx = Context::default();
        let grant = window_ago(now, ago_ms, 100);
        ctx.learn_leases("lease 694d7a4e5e2f2a0c granted with TTL(60s)\n", grant);
        ctx.command_started = Some(now);
        ctx
    }

    const TTL_LINE: &str =
        "lease 694d7a4e5e2f2a0c granted with TTL(60s), remaining({}s), attached keys([a])";

    fn ttl_line(remaining: i64) -> String {
        TTL_LINE.replace("{}", &remaining.to_string())
    }

    #[test]
    fn leases_map_in_grant_order() {
        let ctx = granted_ago(2_500);
        assert_eq!(
            ctx.substitute("--lease={lease1}"),
            "--lease=694d7a4e5e2f2a0c"
        );
        let out = ctx.normalize(&ttl_line(57), Norm::Plain);
        assert_eq!(
            out,
            "lease <lease-1> granted with TTL(60s), remaining(<ttl>), attached keys([a])\n"
        );
    }

    #[test]
    fn band_follows_elapsed_time() {
        let now = Instant::now();
        let asked = Window { from: now, to: now };
        // Granted 2.5-2.6 s ago: 60 - 2.6 rounded down, less the slack, up to
        // 60 - 2.5 rounded up.
        assert_eq!(
            remaining_ttl_band(60, window_ago(now, 2_500, 100), asked),
            56..=58
        );
        // Just granted: nothing can be told apart from "not counting down".
        assert_eq!(
            remaining_ttl_band(60, window_ago(now, 0, 100), asked),
            58..=60
        );
    }

    #[test]
    fn ttl_that_did_not_count_down_is_not_hidden() {
        let ctx = granted_ago(2_500);
        let out = ctx.normalize(&ttl_line(60), Norm::Plain);
        assert!(out.contains("remaining(60s) [expected 56..=58]"), "{out}");
        assert_ne!(out, ctx.normalize(&ttl_line(57), Norm::Plain));
    }

    #[test]
    fn ttl_that_counted_down_too_fast_is_not_hidden() {
        let ctx = granted_ago(2_500);
        assert_ne!(
            ctx.normalize(&ttl_line(50), Norm::Plain),
            ctx.normalize(&ttl_line(57), Norm::Plain)
        );
    }

    #[test]
    fn renewal_restarts_the_countdown() {
        let now = Instant::now();
        let mut ctx = granted_ago(30_000);
        let renewal = window_ago(now, 1_000, 100);
        ctx.learn_leases("lease 694d7a4e5e2f2a0c keepalived with TTL(60)\n", renewal);
        let out = ctx.normalize(&ttl_line(59), Norm::Plain);
        assert!(out.contains("remaining(<ttl>)"), "{out}");
    }

    #[test]
    fn time_to_live_output_is_not_a_grant() {
        let mut ctx = granted_ago(2_500);
        let before = ctx.renewed.clone();
        ctx.learn_leases(&ttl_line(57), Window::since(Instant::now()));
        assert_eq!(ctx.renewed, before);
    }

    #[test]
    fn ttl_of_an_unknown_lease_is_left_as_printed() {
        let ctx = Context::default();
        let out = ctx.normalize(&ttl_line(59), Norm::Plain);
        assert!(
            out.contains("remaining(59s) [countdown start unknown]"),
            "{out}"
        );
    }

    #[test]
    fn session_lease_ids_in_lock_keys_are_hidden() {
        let hide = |line| normalize_line(line, Norm::SessionKeys);
        assert_eq!(hide("mylock/694d7a4e5e2f2a0c"), "mylock/<session>");
        assert_eq!(hide("a/b/7587893ba7c0e404"), "a/b/<session>");
        assert_eq!(hide("p1"), "p1");
        assert_eq!(hide("mylock/not-hex"), "mylock/not-hex");
    }

    #[test]
    fn attached_keys_are_sorted() {
        assert_eq!(
            sort_attached_keys(
                "lease 1 granted with TTL(9s), remaining(8s), attached keys([k2 k1])"
            ),
            "lease 1 granted with TTL(9s), remaining(8s), attached keys([k1 k2])"
        );
    }

    #[test]
    fn log_lines_keep_message_and_error() {
        let line = r#"{"level":"warn","ts":"2026-01-01T00:00:00.000Z","caller":"clientv3/retry_interceptor.go:62","msg":"retrying of unary invoker failed","target":"endpoint://client-1/127.0.0.1:1","attempt":0,"error":"rpc error: code = OutOfRange desc = etcdserver: mvcc: required revision has been compacted"}"#;
        assert_eq!(
            summarize_log_line(line),
            "log: retrying of unary invoker failed: rpc error: code = OutOfRange desc = etcdserver: mvcc: required revision has been compacted"
        );
    }

    #[test]
    fn diff_marks_changed_lines() {
        assert_eq!(line_diff("a\nb\nc\n", "a\nx\nc\n"), "  a\n+ x\n- b\n  c\n");
    }
}
