//! The planted bugs (keel-sim cargo features, off by default) a build has.

/// The names among `$feature`s that this build enables.
macro_rules! enabled_features {
    ($($feature:literal),* $(,)?) => {
        [$((cfg!(feature = $feature), $feature)),*]
            .into_iter()
            .filter_map(|(on, name)| on.then_some(name))
            .collect()
    };
}

/// The planted bugs (keel-sim features) this build has, by name, in the
/// order `scripts/sim-planted-bugs.sh` lists them.
pub fn planted_bugs() -> Vec<&'static str> {
    enabled_features![
        "planted-bug-ack-before-fsync",
        "planted-bug-vote-without-log-check",
        "planted-bug-read-without-readindex",
        "planted-bug-commit-previous-term",
        "planted-bug-apply-twice-after-restart",
        "planted-bug-keep-conflicting-suffix",
        "planted-bug-watch-misses-start-revision",
        "planted-bug-follower-expires-leases",
    ]
}
