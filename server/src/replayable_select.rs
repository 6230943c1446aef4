//! [`replayable_select!`]: `tokio::select!` whose branch order a simulation
//! can replay.
//!
//! An unbiased `tokio::select!` polls its branches from a start drawn from
//! tokio's thread-local RNG, and tokio seeds that RNG from a process-wide
//! counter (`tokio/src/loom/std/mod.rs` `rand::seed`: `RandomState`
//! hashing `COUNTER.fetch_add(1)`), not from madsim's seed. So under
//! madsim, whenever two branches were ready at once, the branch taken
//! depended on how many threads of the process had seeded tokio's RNG
//! before: a seed run twice in one process, or beside other seeds (a test
//! harness, `keel-sim sweep --jobs`), took other branches and diverged.
//!
//! Built with `--cfg madsim` the macro is `tokio::select!` with `biased;`
//! (branches polled in the order written, every choice then follows from
//! madsim's seed); otherwise it is `tokio::select!` as is (random order,
//! so no branch starves another in production). Write the branches in the
//! order a simulation should prefer them.

/// `tokio::select!` over the same branches: biased (polled in the order
/// written) under madsim, random order otherwise. See the module doc.
#[cfg(madsim)]
macro_rules! replayable_select {
    ($($branches:tt)*) => {
        tokio::select! { biased; $($branches)* }
    };
}

/// `tokio::select!` over the same branches: biased (polled in the order
/// written) under madsim, random order otherwise. See the module doc.
#[cfg(not(madsim))]
macro_rules! replayable_select {
    ($($branches:tt)*) => {
        tokio::select! { $($branches)* }
    };
}

pub(crate) use replayable_select;
