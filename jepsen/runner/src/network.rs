//! Members in their own network namespaces, joined by veth pairs to one
//! bridge in the runner's namespace, so that a partition is cut by the
//! kernel: a `blackhole` route to a peer's address in a member's namespace
//! drops its packets to that peer (both directions are cut, one route on
//! each side). The runner reaches every member over the bridge. Needs root
//! and `ip` (iproute2); every object is registered with [`crate::cleanup`].

use std::collections::BTreeSet;
use std::process::Command;

use crate::cleanup;

/// Largest cluster a namespace network holds (addresses .1 to .N).
const MEMBERS_MAX: usize = 16;

/// The run's namespaces, bridge and the links currently cut.
#[derive(Debug)]
pub struct Network {
    bridge: String,
    namespaces: Vec<String>,
    /// The /24 prefix, e.g. `10.201.17`.
    prefix: String,
    /// Directed links (from, to) with a blackhole route in `from`'s namespace.
    cut: BTreeSet<(usize, usize)>,
}

/// Runs `ip args`; an error carries the command and its stderr.
fn ip(args: &[&str]) -> Result<(), String> {
    let output = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("ip {}: {e}", args.join(" ")))?;
    if output.status.success() {
        return Ok(());
    }
    Err(format!(
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr).trim()
    ))
}

/// Whether namespaces can be created here (root, `ip` present): creates
/// and deletes a probe namespace.
pub fn namespaces_available() -> bool {
    let probe = format!("kj{}-probe", std::process::id());
    let created = ip(&["netns", "add", &probe]).is_ok();
    if created {
        let _ = ip(&["netns", "del", &probe]);
    }
    created
}

/// A /24 prefix in 10.200.0.0/13 that no interface here uses yet.
fn free_prefix() -> Result<String, String> {
    let output = Command::new("ip")
        .args(["-o", "addr"])
        .output()
        .map_err(|e| format!("ip -o addr: {e}"))?;
    let used = String::from_utf8_lossy(&output.stdout).into_owned();
    let seed = std::process::id() as usize;
    for attempt in 0..256 {
        let n = seed.wrapping_add(attempt * 7919);
        let prefix = format!("10.{}.{}", 200 + (n / 256) % 8, n % 256);
        if !used.contains(&format!("{prefix}.")) {
            return Ok(prefix);
        }
    }
    Err("no free 10.200.0.0/13 subnet for the member network".into())
}

impl Network {
    /// Creates the bridge and one namespace per member with its veth pair.
    /// Errors name the `ip` command that failed (what was made is removed
    /// by [`cleanup::cleanup_all`] or when the value drops).
    pub fn create(members: usize) -> Result<Network, String> {
        if members == 0 || members > MEMBERS_MAX {
            return Err(format!(
                "a namespace network holds 1 to {MEMBERS_MAX} members"
            ));
        }
        let id = std::process::id();
        let prefix = free_prefix()?;
        let mut network = Network {
            bridge: format!("kjb{id}"),
            namespaces: Vec::new(),
            prefix,
            cut: BTreeSet::new(),
        };
        ip(&["link", "add", &network.bridge, "type", "bridge"])?;
        cleanup::register_bridge(&network.bridge);
        let bridge_address = format!("{}.254/24", network.prefix);
        ip(&["addr", "add", &bridge_address, "dev", &network.bridge])?;
        ip(&["link", "set", &network.bridge, "up"])?;
        for i in 0..members {
            network.add_member(id, i)?;
        }
        Ok(network)
    }

    fn add_member(&mut self, id: u32, i: usize) -> Result<(), String> {
        let namespace = format!("kj{id}-m{i}");
        ip(&["netns", "add", &namespace])?;
        cleanup::register_namespace(&namespace);
        self.namespaces.push(namespace.clone());
        let host_end = format!("kjv{id}-{i}");
        ip(&[
            "link", "add", &host_end, "type", "veth", "peer", "name", "eth0", "netns", &namespace,
        ])?;
        ip(&["link", "set", &host_end, "master", &self.bridge, "up"])?;
        let address = format!("{}/24", self.member_ip(i));
        ip(&["-n", &namespace, "addr", "add", &address, "dev", "eth0"])?;
        ip(&["-n", &namespace, "link", "set", "eth0", "up"])?;
        ip(&["-n", &namespace, "link", "set", "lo", "up"])
    }

    /// Member `i`'s address on the bridge.
    pub fn member_ip(&self, i: usize) -> String {
        format!("{}.{}", self.prefix, i + 1)
    }

    /// Member `i`'s namespace name (for `ip netns exec`).
    pub fn namespace(&self, i: usize) -> &str {
        &self.namespaces[i]
    }

    /// Cuts every link between members of different `groups` (both
    /// directions). Links already cut stay cut.
    pub fn partition(&mut self, groups: &[Vec<usize>]) -> Result<(), String> {
        for (g, group) in groups.iter().enumerate() {
            for other in groups.iter().skip(g + 1) {
                for &a in group {
                    for &b in other {
                        self.cut_link(a, b)?;
                        self.cut_link(b, a)?;
                    }
                }
            }
        }
        Ok(())
    }

    fn cut_link(&mut self, from: usize, to: usize) -> Result<(), String> {
        if !self.cut.insert((from, to)) {
            return Ok(());
        }
        let target = format!("{}/32", self.member_ip(to));
        ip(&[
            "-n",
            &self.namespaces[from],
            "route",
            "add",
            "blackhole",
            &target,
        ])
    }

    /// Removes every cut. Errors name the route that could not be removed.
    pub fn heal(&mut self) -> Result<(), String> {
        let cut = std::mem::take(&mut self.cut);
        let mut first_error = Ok(());
        for (from, to) in cut {
            let target = format!("{}/32", self.member_ip(to));
            let result = ip(&[
                "-n",
                &self.namespaces[from],
                "route",
                "del",
                "blackhole",
                &target,
            ]);
            if first_error.is_ok() {
                first_error = result;
            }
        }
        first_error
    }

    /// Whether any link is cut.
    pub fn is_partitioned(&self) -> bool {
        !self.cut.is_empty()
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        for namespace in &self.namespaces {
            let _ = ip(&["netns", "del", namespace]);
        }
        let _ = ip(&["link", "del", &self.bridge]);
    }
}
