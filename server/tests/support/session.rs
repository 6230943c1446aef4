//! etcdctl sessions played against a fresh etcd and a fresh keel: the same
//! commands, in order, with their printed output normalised
//! ([`super::normalize`]) into a transcript; the two transcripts must be equal.
//!
//! Arguments may name leases granted earlier in the session as `{lease1}`,
//! `{lease2}`, ... and the session's scratch directory as `{dir}`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::cluster::{Cluster, Flavor};
use super::metrics;
use super::normalize::{Context, Norm, Window, line_diff};
use super::{Background, Etcdctl};

/// How long a background watch may take to print what it is expected to.
pub const WATCH_COLLECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest wait for a watch started without `--rev` to register before
/// the session goes on (it only sees changes made after it is created).
pub const WATCH_REGISTER_TIMEOUT: Duration = Duration::from_secs(10);
/// The gauge of registered watchers, which etcd 3.4 and keel both serve on
/// their client ports' `/metrics`.
pub const WATCHER_GAUGE: &str = "etcd_debugging_mvcc_watcher_total";

#[derive(Clone, Debug)]
enum Step {
    Run {
        args: Vec<String>,
        stdin: String,
        norm: Norm,
    },
    WatchStart {
        name: String,
        args: Vec<String>,
        settle: bool,
    },
    WatchCollect {
        name: String,
        lines: usize,
        norm: Norm,
    },
    WaitLines {
        name: String,
        lines: usize,
    },
    Interrupt {
        name: String,
    },
    Pause(Duration),
}

/// A scripted etcdctl session.
#[derive(Clone, Debug, Default)]
pub struct Session {
    steps: Vec<Step>,
    bare_endpoints: bool,
}

fn words(command: &str) -> Vec<String> {
    command.split_whitespace().map(str::to_owned).collect()
}

impl Session {
    /// An empty session.
    pub fn new() -> Session {
        Session::default()
    }

    /// Gives etcdctl `--endpoints` as `host:port` instead of
    /// `http://host:port` (etcdctl 3.4 then sends a well-formed HTTP/2
    /// `:authority` on its per-endpoint calls).
    pub fn bare_endpoints(&mut self) -> &mut Session {
        self.bare_endpoints = true;
        self
    }

    /// Runs `etcdctl <command>` (split on whitespace).
    pub fn run(&mut self, command: &str) -> &mut Session {
        self.run_norm(command, Norm::Plain)
    }

    /// Runs `etcdctl <command>` with an extra normalisation of its output.
    pub fn run_norm(&mut self, command: &str, norm: Norm) -> &mut Session {
        self.steps.push(Step::Run {
            args: words(command),
            stdin: String::new(),
            norm,
        });
        self
    }

    /// Runs etcdctl with arguments given one by one (for values with spaces).
    pub fn run_args(&mut self, args: &[&str]) -> &mut Session {
        self.steps.push(Step::Run {
            args: args.iter().map(|a| (*a).to_owned()).collect(),
            stdin: String::new(),
            norm: Norm::Plain,
        });
        self
    }

    /// Runs `etcdctl <command>` feeding `stdin` (e.g. `txn -i`).
    pub fn run_stdin(&mut self, command: &str, stdin: &str) -> &mut Session {
        self.steps.push(Step::Run {
            args: words(command),
            stdin: stdin.to_owned(),
            norm: Norm::Plain,
        });
        self
    }

    /// Starts `etcdctl <command>` (a `watch`) in the background as `name`.
    /// Without `--rev` it only sees later changes, so the session waits
    /// (at most [`WATCH_REGISTER_TIMEOUT`]) until the servers' watcher
    /// gauge ([`WATCHER_GAUGE`]) counts one more watcher.
    pub fn watch(&mut self, name: &str, command: &str) -> &mut Session {
        self.steps.push(Step::WatchStart {
            name: name.to_owned(),
            args: words(command),
            settle: !command.contains("--rev"),
        });
        self
    }

    /// Starts `etcdctl <command>` (e.g. `lease keep-alive`) in the background
    /// as `name`, without waiting for it; [`Session::collect`] stops it.
    pub fn background(&mut self, name: &str, command: &str) -> &mut Session {
        self.steps.push(Step::WatchStart {
            name: name.to_owned(),
            args: words(command),
            settle: false,
        });
        self
    }

    /// Waits (bounded) until watch `name` printed `lines` lines or exited,
    /// stops it and records what it printed.
    pub fn collect(&mut self, name: &str, lines: usize) -> &mut Session {
        self.collect_norm(name, lines, Norm::Plain)
    }

    /// As [`Session::collect`], with an extra normalisation of the output.
    pub fn collect_norm(&mut self, name: &str, lines: usize, norm: Norm) -> &mut Session {
        self.steps.push(Step::WatchCollect {
            name: name.to_owned(),
            lines,
            norm,
        });
        self
    }

    /// Sends SIGINT to background command `name` (etcdctl `lock` releases
    /// its lock, `elect` resigns); [`Session::collect`] then waits for it.
    pub fn interrupt(&mut self, name: &str) -> &mut Session {
        self.steps.push(Step::Interrupt {
            name: name.to_owned(),
        });
        self
    }

    /// Waits (bounded) until background command `name` printed `lines`
    /// lines, leaving it running (e.g. until a lock is held); the
    /// transcript says whether it did.
    pub fn wait_lines(&mut self, name: &str, lines: usize) -> &mut Session {
        self.steps.push(Step::WaitLines {
            name: name.to_owned(),
            lines,
        });
        self
    }

    /// Sleeps (e.g. to let a lease expire).
    pub fn pause(&mut self, duration: Duration) -> &mut Session {
        self.steps.push(Step::Pause(duration));
        self
    }

    /// Plays the session against `cluster` (through all its endpoints) and
    /// returns the normalised transcript.
    pub fn play(&self, cluster: &Cluster) -> String {
        let mut player = Player::new(cluster, self.bare_endpoints);
        for step in &self.steps {
            player.step(step);
        }
        player.transcript
    }
}

struct Player<'a> {
    cluster: &'a Cluster,
    etcdctl: Etcdctl,
    context: Context,
    /// Background commands by name: the command as written, when it was
    /// started, the process.
    watches: BTreeMap<String, (String, Instant, Background)>,
    transcript: String,
}

impl<'a> Player<'a> {
    fn new(cluster: &'a Cluster, bare_endpoints: bool) -> Player<'a> {
        let etcdctl = if bare_endpoints {
            Etcdctl::new(&cluster.endpoints().replace("http://", ""))
        } else {
            cluster.etcdctl()
        };
        let mut context = Context::default();
        let dir = cluster.dir().display().to_string();
        context.literals.push((dir, "<dir>".to_owned()));
        for (i, m) in cluster.members().iter().enumerate() {
            let client = m.client_url.trim_start_matches("http://").to_owned();
            let peer = m.peer_url.trim_start_matches("http://").to_owned();
            context.literals.push((client, format!("<client-{i}>")));
            context.literals.push((peer, format!("<peer-{i}>")));
        }
        Player {
            cluster,
            etcdctl,
            context,
            watches: BTreeMap::new(),
            transcript: String::new(),
        }
    }

    fn args(&self, args: &[String]) -> Vec<String> {
        let dir = self.cluster.dir().display().to_string();
        args.iter()
            .map(|a| self.context.substitute(a).replace("{dir}", &dir))
            .collect()
    }

    fn step(&mut self, step: &Step) {
        match step {
            Step::Run { args, stdin, norm } => self.run(args, stdin, *norm),
            Step::WatchStart { name, args, settle } => self.start_watch(name, args, *settle),
            Step::WatchCollect { name, lines, norm } => self.collect_watch(name, *lines, *norm),
            Step::WaitLines { name, lines } => self.wait_lines(name, *lines),
            Step::Interrupt { name } => self.interrupt(name),
            Step::Pause(duration) => std::thread::sleep(*duration),
        }
    }

    fn run(&mut self, template: &[String], stdin: &str, norm: Norm) {
        // The transcript shows the command as written ({lease1}, {dir}).
        self.transcript
            .push_str(&format!("$ etcdctl {}\n", template.join(" ")));
        let args = self.args(template);
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let started = Instant::now();
        self.context.command_started = Some(started);
        match self.etcdctl.run_with_stdin(&argv, stdin) {
            Ok(out) => {
                self.context
                    .learn_leases(&out.stdout, Window::since(started));
                self.record(&out.stdout, &out.stderr, norm);
                if !out.success() {
                    self.transcript
                        .push_str(&format!("[exit {:?}]\n", out.status.code()));
                }
            }
            Err(e) => self.transcript.push_str(&format!("[failed to run: {e}]\n")),
        }
    }

    fn record(&mut self, stdout: &str, stderr: &str, norm: Norm) {
        let out = self.context.normalize(stdout, norm);
        self.transcript.push_str(&out);
        for line in self.context.normalize(stderr, norm).lines() {
            self.transcript.push_str(&format!("! {line}\n"));
        }
    }

    fn start_watch(&mut self, name: &str, template: &[String], settle: bool) {
        let args = self.args(template);
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let watchers_before = self.watchers();
        let started = Instant::now();
        match self.etcdctl.spawn(&argv) {
            Ok(watch) => {
                self.watches
                    .insert(name.to_owned(), (template.join(" "), started, watch));
                if settle {
                    self.wait_registered(name, watchers_before + 1.0);
                }
            }
            Err(e) => self
                .transcript
                .push_str(&format!("[failed to start watch {name}: {e}]\n")),
        }
    }

    /// Registered watchers over every member of the cluster (the watch may
    /// have gone to any of them); a member that cannot be read counts 0.
    fn watchers(&self) -> f64 {
        self.cluster
            .members()
            .iter()
            .map(|m| metrics::value_at(&m.client_url, WATCHER_GAUGE))
            .sum()
    }

    /// Waits until the cluster counts `expected` watchers. Panics when it
    /// never does: every later step would race the watch's registration.
    fn wait_registered(&self, name: &str, expected: f64) {
        let (seen, registered) = metrics::wait_for_value(
            WATCH_REGISTER_TIMEOUT,
            || self.watchers(),
            |n| n >= expected,
        );
        assert!(
            registered,
            "{}: watch {name} not registered within {WATCH_REGISTER_TIMEOUT:?}: \
             {WATCHER_GAUGE} summed to {seen} over the members, expected {expected}\n{}",
            self.cluster.flavor().name(),
            self.cluster.logs()
        );
    }

    fn interrupt(&mut self, name: &str) {
        let sent = match self.watches.get(name) {
            Some((_, _, background)) => background.interrupt().map_err(|e| e.to_string()),
            None => Err("no such background command".to_owned()),
        };
        if let Err(error) = sent {
            self.transcript
                .push_str(&format!("[cannot interrupt {name}: {error}]\n"));
        }
    }

    fn wait_lines(&mut self, name: &str, lines: usize) {
        let Some((command, _, background)) = self.watches.get_mut(name) else {
            self.transcript
                .push_str(&format!("[no background command named {name}]\n"));
            return;
        };
        let outcome = match background.wait_lines(lines, WATCH_COLLECT_TIMEOUT) {
            super::Waited::Lines => "printed",
            super::Waited::Exited => "exited before printing",
            super::Waited::TimedOut => "timed out before printing",
        };
        self.transcript
            .push_str(&format!("[etcdctl {command}: {outcome} {lines} lines]\n"));
    }

    fn collect_watch(&mut self, name: &str, lines: usize, norm: Norm) {
        let Some((command, started, mut watch)) = self.watches.remove(name) else {
            self.transcript
                .push_str(&format!("[no watch named {name}]\n"));
            return;
        };
        self.transcript.push_str(&format!(
            "$ etcdctl {command} (background, {lines} lines)\n"
        ));
        match watch.wait_lines(lines, WATCH_COLLECT_TIMEOUT) {
            super::Waited::Lines => {}
            super::Waited::Exited => self.transcript.push_str("[watch exited]\n"),
            super::Waited::TimedOut => self.transcript.push_str("[watch timed out]\n"),
        }
        let (stdout, stderr) = (watch.stdout(), watch.stderr());
        drop(watch);
        // A background keep-alive renewed its lease at some point since it
        // was started.
        self.context.learn_leases(&stdout, Window::since(started));
        self.context.command_started = Some(started);
        self.record(&stdout, &stderr, norm);
    }
}

/// Plays `session` against a fresh `size`-member etcd and a fresh
/// `size`-member keel and panics with a line diff (`-` etcd, `+` keel) when
/// the transcripts differ. Skips (or fails, see [`super::require_etcd`])
/// when etcd is not installed.
pub fn assert_same_as_etcd(test: &str, session: &Session, size: usize) {
    assert_same_as_etcd_with(test, session, |flavor| Cluster::start(flavor, size));
}

/// As [`assert_same_as_etcd`], with clusters started by `start`.
pub fn assert_same_as_etcd_with(
    test: &str,
    session: &Session,
    start: impl Fn(Flavor) -> std::io::Result<Cluster>,
) {
    if !super::require_etcd(test) {
        return;
    }
    let etcd = start(Flavor::Etcd).expect("start etcd");
    let expected = session.play(&etcd);
    drop(etcd);
    eprintln!("{test}: etcd's transcript:\n{expected}");
    let keel = start(Flavor::Keel).expect("start keel");
    let actual = session.play(&keel);
    if expected != actual {
        panic!(
            "{test}: keel's etcdctl output differs from etcd's (- etcd, + keel):\n{}\n{}",
            line_diff(&expected, &actual),
            keel.logs()
        );
    }
}
