//! Packet loss and duplication for the simulator (madsim builds only).
//!
//! madsim's simulated TCP delivers every byte it accepts (its packet-loss
//! setting applies to datagrams), so the simulator's nemesis drops or
//! duplicates Raft messages here, on the peer send path, just before they
//! are batched onto the stream ([`super::send::PeerSender::stream_raft`]).
//! Raft must tolerate both: a lost message is retransmitted, a duplicate
//! is ignored or answered again.
//!
//! The setting and the random draws are per thread: a madsim runtime runs
//! every simulated member on one thread, so runs on other threads (a sweep
//! with several jobs) do not see each other's faults, and the draws come
//! from a generator the nemesis seeds from the run's seed (replays are
//! exact).

use std::cell::Cell;

use bytes::Bytes;

/// What happens to the Raft messages members send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MessageFaults {
    /// Messages dropped, per mille (0-1000).
    pub drop_per_mille: u32,
    /// Messages sent twice, per mille (0-1000), of those not dropped.
    pub duplicate_per_mille: u32,
}

thread_local! {
    static FAULTS: Cell<MessageFaults> = const { Cell::new(MessageFaults {
        drop_per_mille: 0,
        duplicate_per_mille: 0,
    }) };
    static RANDOM: Cell<u64> = const { Cell::new(0x9e37_79b9_7f4a_7c15) };
}

/// Sets the faults of every member simulated on this thread, and seeds the
/// draws with `seed`; [`MessageFaults::default`] ends them.
pub fn set_message_faults(faults: MessageFaults, seed: u64) {
    FAULTS.with(|cell| cell.set(faults));
    RANDOM.with(|cell| cell.set(seed | 1));
}

/// The faults in force on this thread.
pub fn message_faults() -> MessageFaults {
    FAULTS.with(Cell::get)
}

/// A draw in `0..1000` (xorshift64*).
fn draw_per_mille() -> u32 {
    RANDOM.with(|cell| {
        let mut x = cell.get();
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        cell.set(x);
        (x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 33) as u32 % 1000
    })
}

/// `group` with the faults in force applied: some messages left out, some
/// sent twice in a row.
pub fn apply(group: Vec<Bytes>) -> Vec<Bytes> {
    let faults = message_faults();
    if faults == MessageFaults::default() {
        return group;
    }
    let mut out = Vec::with_capacity(group.len() * 2);
    for message in group {
        if draw_per_mille() < faults.drop_per_mille {
            continue;
        }
        if draw_per_mille() < faults.duplicate_per_mille {
            out.push(message.clone());
        }
        out.push(message);
    }
    out
}
