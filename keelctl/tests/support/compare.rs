//! Runs the same command with etcdctl against one keel and with keelctl
//! against another keel that went through the same commands, and compares
//! stdout, stderr and exit code after normalising what legitimately
//! differs between the two servers: cluster and member IDs, client URLs,
//! lease IDs (learned from `lease grant`), timings, and etcdctl's gRPC
//! client log lines.

use std::io::{Read, Write};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use super::server::{Server, Serving};

/// Hard limit of one command.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(15);

/// Which client runs against which server.
struct Side {
    program: String,
    server: Server,
    /// (literal, placeholder) replacements for this side's output.
    literals: Vec<(String, String)>,
    /// Lease IDs learned from `lease grant`, in order (hex).
    leases: Vec<String>,
    /// Member IDs learned from `member add`, in order (hex).
    members: Vec<String>,
    /// `--endpoints`.
    endpoint: String,
    /// Global flags given to every command (`--cacert=...`).
    flags: Vec<String>,
}

/// What one run printed.
#[derive(Debug, PartialEq, Eq)]
pub struct Outcome {
    /// Normalised stdout.
    pub stdout: String,
    /// Normalised stderr.
    pub stderr: String,
    /// Exit code (`None` when killed).
    pub code: Option<i32>,
}

/// Two servers and the differences found so far.
pub struct Comparison {
    etcdctl: Side,
    keelctl: Side,
    /// One entry per command whose outputs differ.
    pub mismatches: Vec<String>,
    /// How many commands were compared.
    pub compared: usize,
}

/// A background command (a `watch`) on both sides.
pub struct Background {
    children: Vec<Running>,
    command: String,
}

/// What a background command printed before and after something happened
/// to it: the first line, the last line, the exit code.
#[derive(Debug, PartialEq, Eq)]
struct Ends {
    first: String,
    last: String,
    others_like_first: bool,
    stderr: String,
    code: Option<i32>,
}

impl Comparison {
    /// Starts the two servers.
    pub fn start(keelctl: &str) -> Comparison {
        Comparison::start_serving(keelctl, &Serving::default())
    }

    /// Starts the two servers, serving as `serving` says (TLS); every
    /// command gets `serving.ctl_flags`.
    pub fn start_serving(keelctl: &str, serving: &Serving) -> Comparison {
        let dir = || tempfile::tempdir().expect("temporary directory");
        let mut etcdctl = Side::new(
            "etcdctl".to_owned(),
            Server::start_in("ctl", dir(), serving),
        );
        let mut keel = Side::new(keelctl.to_owned(), Server::start_in("ctl", dir(), serving));
        etcdctl.learn_ids();
        keel.learn_ids();
        Comparison {
            etcdctl,
            keelctl: keel,
            mismatches: Vec::new(),
            compared: 0,
        }
    }

    /// Replaces the global flags both clients get (e.g. another `--cacert`).
    pub fn set_flags(&mut self, flags: &[String]) -> &mut Comparison {
        for side in [&mut self.etcdctl, &mut self.keelctl] {
            side.flags = flags.to_vec();
        }
        self
    }

    /// Dials both servers with `scheme` (`http`, `https`; empty: a bare
    /// `host:port`) from now on.
    pub fn set_scheme(&mut self, scheme: &str) -> &mut Comparison {
        for side in [&mut self.etcdctl, &mut self.keelctl] {
            let host = host_of(&side.server.client_url);
            side.endpoint = if scheme.is_empty() {
                host
            } else {
                format!("{scheme}://{host}")
            };
        }
        self
    }

    /// Runs `command` (whitespace-split) on both sides and compares.
    pub fn run(&mut self, command: &str) -> &mut Comparison {
        let args: Vec<&str> = command.split_whitespace().collect();
        self.run_full(&args, "")
    }

    /// Runs `args` with `stdin` on both sides and compares.
    pub fn run_full(&mut self, args: &[&str], stdin: &str) -> &mut Comparison {
        let expected = self.etcdctl.run(args, stdin);
        let actual = self.keelctl.run(args, stdin);
        self.compare(&args.join(" "), &expected, &actual);
        self
    }

    /// Runs `command` with keelctl alone (for what etcdctl cannot run in a
    /// test's time) and returns what it printed, normalised.
    pub fn run_keelctl_only(&mut self, command: &str) -> Outcome {
        let args: Vec<&str> = command.split_whitespace().collect();
        self.keelctl.run(&args, "")
    }

    /// As [`Comparison::run`], comparing with the padding of tables and of
    /// `%16x` IDs collapsed ([`collapse_padding`]).
    pub fn run_loose(&mut self, command: &str) -> &mut Comparison {
        let args: Vec<&str> = command.split_whitespace().collect();
        let mut expected = self.etcdctl.run(&args, "");
        let mut actual = self.keelctl.run(&args, "");
        for outcome in [&mut expected, &mut actual] {
            outcome.stdout = collapse_padding(&outcome.stdout);
            outcome.stderr = collapse_padding(&outcome.stderr);
        }
        self.compare(command, &expected, &actual);
        self
    }

    /// As [`Comparison::run`], but keelctl's stderr need only start with
    /// etcdctl's (keelctl adds the cause of a refused TLS connection after
    /// etcdctl's `context deadline exceeded`, when it knows one).
    pub fn run_cause(&mut self, command: &str) -> &mut Comparison {
        let args: Vec<&str> = command.split_whitespace().collect();
        let expected = self.etcdctl.run(&args, "");
        let mut actual = self.keelctl.run(&args, "");
        let head = expected.stderr.trim_end();
        if !head.is_empty() && actual.stderr.starts_with(head) {
            actual.stderr = expected.stderr.clone();
        }
        self.compare(
            &format!("{command} (keelctl adds the cause)"),
            &expected,
            &actual,
        );
        self
    }

    /// Runs a read-only `command` with etcdctl and with keelctl against the
    /// same server (keelctl's): for answers that differ between two servers
    /// even after the same commands (database size, KV hash, member order).
    pub fn run_same(&mut self, command: &str) -> &mut Comparison {
        let args: Vec<&str> = command.split_whitespace().collect();
        let expected = self.keelctl.run_program("etcdctl", &args, "");
        let actual = self.keelctl.run(&args, "");
        self.compare(&format!("{command} (same server)"), &expected, &actual);
        self
    }

    /// Runs `command` on both sides comparing only stderr and the exit
    /// code (flag-parsing errors: etcdctl prints cobra's usage on stdout).
    pub fn run_stderr(&mut self, command: &str) -> &mut Comparison {
        let args: Vec<&str> = command.split_whitespace().collect();
        let mut expected = self.etcdctl.run(&args, "");
        let mut actual = self.keelctl.run(&args, "");
        expected.stdout.clear();
        actual.stdout.clear();
        self.compare(command, &expected, &actual);
        self
    }

    /// Runs `command` with `stdin` (e.g. a txn) on both sides.
    pub fn run_stdin(&mut self, command: &str, stdin: &str) -> &mut Comparison {
        let args: Vec<&str> = command.split_whitespace().collect();
        self.run_full(&args, stdin)
    }

    fn compare(&mut self, command: &str, expected: &Outcome, actual: &Outcome) {
        self.compared += 1;
        if expected != actual {
            self.mismatches.push(format!(
                "$ {command}\n--- etcdctl (exit {:?}):\n{}{}--- keelctl (exit {:?}):\n{}{}",
                expected.code,
                expected.stdout,
                prefixed(&expected.stderr),
                actual.code,
                actual.stdout,
                prefixed(&actual.stderr),
            ));
        }
    }

    /// Starts `command` in the background on both sides.
    pub fn background(&mut self, command: &str) -> Background {
        let args: Vec<&str> = command.split_whitespace().collect();
        self.background_full(&args, None)
    }

    /// Starts `args` in the background on both sides; with `stdin`, writes
    /// it to their stdin and keeps stdin open until they are stopped.
    pub fn background_full(&mut self, args: &[&str], stdin: Option<&str>) -> Background {
        Background {
            children: vec![
                self.etcdctl.spawn(args, stdin),
                self.keelctl.spawn(args, stdin),
            ],
            command: args.join(" "),
        }
    }

    /// Waits (bounded) until both sides of `background` printed a line,
    /// runs `trigger` on both sides (compared), then waits (bounded) for
    /// both to exit, and compares the first and last lines, stderr and
    /// the exit codes; every line between must equal the first (how many
    /// there are depends on timing). For `lease keep-alive` until the
    /// lease is revoked.
    pub fn collect_ends(&mut self, background: Background, trigger: &str) -> &mut Comparison {
        let deadline = Instant::now() + COMMAND_TIMEOUT;
        for (_, stdout, _) in &background.children {
            while count_lines(&stdout.lock().map(|b| b.clone()).unwrap_or_default()) == 0
                && Instant::now() < deadline
            {
                thread::sleep(Duration::from_millis(20));
            }
        }
        self.run(trigger);
        let mut children = background.children.into_iter();
        let (Some(etcdctl), Some(keelctl)) = (children.next(), children.next()) else {
            panic!("a background command runs on both sides");
        };
        let ends = |side: &Side, running: Running| {
            let (stdout, stderr, code) = finish(running, 0, false, true);
            let outcome = side.outcome(&stdout, &stderr, code);
            let lines: Vec<&str> = outcome.stdout.lines().collect();
            let first = lines.first().copied().unwrap_or_default().to_owned();
            let middle = lines
                .get(1..lines.len().saturating_sub(1))
                .unwrap_or_default();
            Ends {
                others_like_first: middle.iter().all(|l| *l == first),
                first,
                last: lines.last().copied().unwrap_or_default().to_owned(),
                stderr: outcome.stderr,
                code: outcome.code,
            }
        };
        let expected = ends(&self.etcdctl, etcdctl);
        let actual = ends(&self.keelctl, keelctl);
        self.compared += 1;
        if expected != actual {
            self.mismatches.push(format!(
                "$ {} (until {trigger})\n--- etcdctl:\n{expected:?}\n--- keelctl:\n{actual:?}\n",
                background.command
            ));
        }
        self
    }

    /// Collects what both sides of `background` print: etcdctl's side until
    /// it printed `lines` lines (exactly what the test expects it to print;
    /// another count is a mismatch), exited, or went quiet for [`QUIET`];
    /// keelctl's side until it printed as many lines as etcdctl's, exited,
    /// or [`COMMAND_TIMEOUT`] passed. Stops both and compares.
    pub fn collect(&mut self, background: Background, lines: usize) -> &mut Comparison {
        let mut children = background.children.into_iter();
        let (Some(etcdctl), Some(keelctl)) = (children.next(), children.next()) else {
            panic!("a background command runs on both sides");
        };
        let expected_raw = finish(etcdctl, lines, true, false);
        let printed = expected_raw.0.lines().count();
        if printed != lines {
            self.mismatches.push(format!(
                "$ {} (background): etcdctl printed {printed} lines, the test expects {lines}:\n{}",
                background.command, expected_raw.0
            ));
        }
        let exited = expected_raw.2.is_some();
        let actual_raw = finish(keelctl, printed, false, exited);
        let expected = self
            .etcdctl
            .outcome(&expected_raw.0, &expected_raw.1, expected_raw.2);
        let actual = self
            .keelctl
            .outcome(&actual_raw.0, &actual_raw.1, actual_raw.2);
        let command = format!("{} (background)", background.command);
        self.compare(&command, &expected, &actual);
        self
    }

    /// Waits (bounded by [`COMMAND_TIMEOUT`]) until both sides of
    /// `background` exit on their own, and compares all they printed and
    /// their exit codes.
    pub fn collect_exit(&mut self, background: Background) -> &mut Comparison {
        let mut children = background.children.into_iter();
        let (Some(etcdctl), Some(keelctl)) = (children.next(), children.next()) else {
            panic!("a background command runs on both sides");
        };
        let (out, err, code) = finish(etcdctl, 0, false, true);
        let expected = self.etcdctl.outcome(&out, &err, code);
        let (out, err, code) = finish(keelctl, 0, false, true);
        let actual = self.keelctl.outcome(&out, &err, code);
        let command = format!("{} (until it exits)", background.command);
        self.compare(&command, &expected, &actual);
        self
    }

    /// The directory keelctl runs in (its server's temporary directory).
    pub fn keelctl_dir(&self) -> &std::path::Path {
        self.keelctl.server.dir()
    }

    /// Panics with every mismatch found.
    pub fn assert_same(&self, test: &str) {
        assert!(
            self.mismatches.is_empty(),
            "{test}: {} of {} commands printed differently (etcdctl against keel vs keelctl against keel):\n\n{}",
            self.mismatches.len(),
            self.compared,
            self.mismatches.join("\n")
        );
    }
}

/// How long a background command may print nothing before its output is
/// taken as complete.
pub const QUIET: Duration = Duration::from_millis(1500);

type Running = (Child, Arc<Mutex<Vec<u8>>>, Arc<Mutex<Vec<u8>>>);

/// Waits until `child` printed `lines` lines (and, when `wait_exit`, also
/// exited), exited, or (when `quiet_ends`) printed nothing new for
/// [`QUIET`]; stops it; returns stdout, stderr and the exit code (`None`
/// when it was stopped).
fn finish(
    (mut child, stdout, stderr): Running,
    lines: usize,
    quiet_ends: bool,
    wait_exit: bool,
) -> (String, String, Option<i32>) {
    let deadline = Instant::now() + COMMAND_TIMEOUT;
    let mut code = None;
    let mut seen = 0;
    let mut changed = Instant::now();
    loop {
        let length = stdout.lock().map(|b| b.len()).unwrap_or(0);
        if length != seen {
            seen = length;
            changed = Instant::now();
        }
        let printed = stdout.lock().map(|b| count_lines(&b)).unwrap_or(0);
        // Zero lines expected: wait for the exit (or quiet) instead.
        if (printed >= lines && lines > 0 && !wait_exit) || Instant::now() >= deadline {
            break;
        }
        if (quiet_ends || (lines == 0 && !wait_exit)) && changed.elapsed() >= QUIET {
            break;
        }
        if let Ok(Some(status)) = child.try_wait() {
            code = status.code();
            break;
        }
        thread::sleep(Duration::from_millis(20));
    }
    if code.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    // Let the reader threads take what the pipes still hold.
    thread::sleep(Duration::from_millis(100));
    let text = |sink: &Arc<Mutex<Vec<u8>>>| {
        String::from_utf8_lossy(&sink.lock().map(|b| b.clone()).unwrap_or_default()).into_owned()
    };
    (text(&stdout), text(&stderr), code)
}

fn prefixed(stderr: &str) -> String {
    stderr.lines().map(|l| format!("! {l}\n")).collect()
}

fn count_lines(bytes: &[u8]) -> usize {
    bytes.iter().filter(|&&b| b == b'\n').count()
}

impl Side {
    fn new(program: String, server: Server) -> Side {
        let url = server.client_url.clone();
        let host = host_of(&url);
        let peer = server.peer_url.clone();
        Side {
            program,
            endpoint: url.clone(),
            flags: server.ctl_flags.clone(),
            server,
            literals: vec![
                (url, "<client-url>".to_owned()),
                (host, "<client>".to_owned()),
                (peer, "<peer-url>".to_owned()),
            ],
            leases: Vec::new(),
            members: Vec::new(),
        }
    }

    fn command(&self, args: &[&str]) -> Command {
        self.command_of(&self.program, args)
    }

    fn command_of(&self, program: &str, args: &[&str]) -> Command {
        let mut command = Command::new(program);
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("ETCDCTL_") {
                command.env_remove(&name);
            }
        }
        let args: Vec<String> = args.iter().map(|a| self.substitute(a)).collect();
        command
            .env("ETCDCTL_API", "3")
            .arg(format!("--endpoints={}", self.endpoint))
            .args(&self.flags)
            .args(["--dial-timeout=2s", "--command-timeout=5s"])
            .args(args)
            .current_dir(self.server.dir());
        command
    }

    /// `{lease1}` names this side's first granted lease; `{member2}` the
    /// first member added (member 1 is the server itself, as in the
    /// normalised `<member2-hex>`).
    fn substitute(&self, arg: &str) -> String {
        let mut arg = arg.to_owned();
        for (i, lease) in self.leases.iter().enumerate() {
            arg = arg.replace(&format!("{{lease{}}}", i + 1), lease);
        }
        for (i, member) in self.members.iter().enumerate() {
            arg = arg.replace(&format!("{{member{}}}", i + 2), member);
        }
        arg
    }

    fn run(&mut self, args: &[&str], stdin: &str) -> Outcome {
        let program = self.program.clone();
        self.run_program(&program, args, stdin)
    }

    fn run_program(&mut self, program: &str, args: &[&str], stdin: &str) -> Outcome {
        let mut child = self
            .command_of(program, args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", self.program));
        if let Some(mut input) = child.stdin.take() {
            let _ = input.write_all(stdin.as_bytes());
        }
        let stdout = drain(child.stdout.take());
        let stderr = drain(child.stderr.take());
        let deadline = Instant::now() + COMMAND_TIMEOUT;
        let code = loop {
            if let Ok(Some(status)) = child.try_wait() {
                break status.code();
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            thread::sleep(Duration::from_millis(5));
        };
        let stdout = join(stdout);
        let stderr = join(stderr);
        self.learn_leases(&stdout);
        self.outcome(&stdout, &stderr, code)
    }

    fn spawn(&self, args: &[&str], stdin: Option<&str>) -> Running {
        let input = if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        };
        let mut child = self
            .command(args)
            .stdin(input)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", self.program));
        // The pipe stays in `child` (open) until the child is stopped.
        if let (Some(text), Some(pipe)) = (stdin, child.stdin.as_mut()) {
            let _ = pipe.write_all(text.as_bytes());
            let _ = pipe.flush();
        }
        let stdout = collect(child.stdout.take());
        let stderr = collect(child.stderr.take());
        (child, stdout, stderr)
    }

    /// Learns the server's cluster and member IDs from `member list -w json`.
    fn learn_ids(&mut self) {
        let out = self.run(&["member", "list", "-w", "json"], "");
        assert_eq!(out.code, Some(0), "member list failed: {out:?}");
        let json: serde_json::Value =
            serde_json::from_str(out.stdout.trim()).expect("member list json");
        let cluster = json["header"]["cluster_id"].as_u64().expect("cluster_id");
        let member = json["header"]["member_id"].as_u64().expect("member_id");
        for (id, name) in [(cluster, "cluster"), (member, "member")] {
            self.literals.push((id.to_string(), format!("<{name}-id>")));
            self.literals
                .push((format!("{id:016x}"), format!("<{name}-hex>")));
            self.literals
                .push((format!("{id:x}"), format!("<{name}-hex>")));
        }
    }

    fn learn_leases(&mut self, stdout: &str) {
        for line in stdout.lines() {
            if let Some((id, _)) = line
                .strip_prefix("Member ")
                .and_then(|rest| rest.split_once(" added to cluster"))
            {
                let id = id.trim().to_owned();
                self.members.push(id.clone());
                let n = self.members.len() + 1;
                let decimal = u64::from_str_radix(&id, 16).unwrap_or_default();
                self.literals.push((id, format!("<member{n}-hex>")));
                self.literals
                    .push((decimal.to_string(), format!("<member{n}-id>")));
            }
            let granted = line
                .strip_prefix("lease ")
                .and_then(|rest| rest.split_once(" granted with TTL("))
                .map(|(id, _)| id.to_owned());
            if let Some(id) = granted
                && !self.leases.contains(&id)
                && !line.contains("remaining(")
            {
                self.leases.push(id.clone());
                let n = self.leases.len();
                let decimal = i64::from_str_radix(&id, 16).unwrap_or_default();
                self.literals.push((id, format!("<lease{n}>")));
                self.literals
                    .push((decimal.to_string(), format!("<lease{n}-id>")));
            }
        }
    }

    fn outcome(&self, stdout: &str, stderr: &str, code: Option<i32>) -> Outcome {
        Outcome {
            stdout: self.normalize(stdout),
            stderr: self.normalize(
                &stderr
                    .lines()
                    .filter(|l| !l.starts_with("{\"level\":"))
                    .map(|l| format!("{l}\n"))
                    .collect::<String>(),
            ),
            code,
        }
    }

    fn normalize(&self, text: &str) -> String {
        let mut text = text.to_owned();
        // Longest literals first, so a hex ID is not cut by a shorter one.
        let mut literals = self.literals.clone();
        literals.sort_by_key(|(l, _)| std::cmp::Reverse(l.len()));
        for (literal, placeholder) in &literals {
            text = text.replace(literal.as_str(), placeholder);
        }
        let text = hide_number_after(&text, "remaining(", "<ttl>");
        let text = hide_number_after(&text, "\"ttl\":", "<ttl>");
        let text = hide_number_after(&text, "\"TTL\" : ", "<ttl>");
        let text = hide_word_after(&text, "took = ", "<took>");
        let text = hide_word_after(&text, "\"took\":\"", "<took>");
        let mut text = hide_word_after(&text, "\"Took\" : ", "<took>");
        // Lock and election keys end in the session's lease ID.
        for name in ["lock1/", "lock2/", "elect1/"] {
            text = hide_word_after(&text, name, "<session>");
        }
        text
    }
}

/// `host:port` of a client URL.
fn host_of(url: &str) -> String {
    url.split_once("://")
        .map_or(url, |(_, host)| host)
        .to_owned()
}

/// Replaces the (signed) number after every `needle` by `placeholder`.
fn hide_number_after(text: &str, needle: &str, placeholder: &str) -> String {
    hide_after(text, needle, placeholder, |c| {
        c.is_ascii_digit() || c == '-'
    })
}

/// Replaces what follows every `needle` up to a space, quote or line end.
fn hide_word_after(text: &str, needle: &str, placeholder: &str) -> String {
    hide_after(text, needle, placeholder, |c| {
        !matches!(c, ' ' | '"' | '\n' | '|')
    })
}

fn hide_after(text: &str, needle: &str, placeholder: &str, part: impl Fn(char) -> bool) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(needle) {
        out.push_str(&rest[..at + needle.len()]);
        rest = &rest[at + needle.len()..];
        let end = rest.find(|c: char| !part(c)).unwrap_or(rest.len());
        if end > 0 {
            out.push_str(placeholder);
        }
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// Collapses runs of spaces and of dashes: tables whose columns hold IDs
/// of different lengths (a hex ID with a leading zero is one digit
/// shorter) then compare equal when their cells do. Also sorts the lines
/// and the members of `ETCD_INITIAL_CLUSTER` (member order follows the
/// random member IDs).
pub fn collapse_padding(text: &str) -> String {
    let mut lines: Vec<String> = collapse_runs(text)
        .lines()
        .map(|line| match line.strip_prefix("ETCD_INITIAL_CLUSTER=\"") {
            Some(rest) => {
                let mut parts: Vec<&str> = rest.trim_end_matches('"').split(',').collect();
                parts.sort_unstable();
                format!("ETCD_INITIAL_CLUSTER=\"{}\"", parts.join(","))
            }
            None => line.to_owned(),
        })
        .collect();
    lines.sort();
    lines.iter().map(|l| format!("{l}\n")).collect()
}

fn collapse_runs(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut last = None;
    for c in text.chars() {
        if (c == ' ' || c == '-') && last == Some(c) {
            continue;
        }
        out.push(c);
        last = Some(c);
    }
    out
}

fn drain(pipe: Option<impl Read + Send + 'static>) -> thread::JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut bytes = Vec::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_end(&mut bytes);
        }
        bytes
    })
}

fn join(handle: thread::JoinHandle<Vec<u8>>) -> String {
    String::from_utf8_lossy(&handle.join().unwrap_or_default()).into_owned()
}

fn collect(pipe: Option<impl Read + Send + 'static>) -> Arc<Mutex<Vec<u8>>> {
    let sink = Arc::new(Mutex::new(Vec::new()));
    let writer = Arc::clone(&sink);
    if let Some(mut pipe) = pipe {
        thread::spawn(move || {
            let mut buffer = [0u8; 4096];
            while let Ok(n) = pipe.read(&mut buffer) {
                if n == 0 {
                    break;
                }
                if let Ok(mut sink) = writer.lock() {
                    sink.extend_from_slice(&buffer[..n]);
                }
            }
        });
    }
    sink
}
