//! keel's own snapshot files: the kernel's state-machine snapshot
//! (`keel_kernel::apply`, `KEELSNAP ...`) as keel's Maintenance.Snapshot
//! streams it, zero-padded to 512 bytes (the SHA-256 `snapshot save`
//! appends is removed before this module sees the bytes).

use keel_kernel::apply::{StateMachine, StateMachineConfig};

use crate::error::SnapshotError;

const MAGIC: &[u8; 8] = b"KEELSNAP";
/// Magic, format byte, applied index, applied term.
const HEADER_BYTES: usize = 8 + 1 + 8 + 8;
/// The section length fields and the trailing CRC32.
const LENGTH_BYTES: usize = 8;
const CRC_BYTES: usize = 4;

/// True when `bytes` start with keel's snapshot magic.
pub fn has_magic(bytes: &[u8]) -> bool {
    bytes.starts_with(MAGIC)
}

/// The state-machine snapshot inside `bytes`, without the zero padding:
/// its length follows from the section lengths in its header.
///
/// Errors: [`SnapshotError::Truncated`] when the sections run past the
/// end; [`SnapshotError::CorruptKeel`] when the padding is not zeros.
pub fn unpadded(bytes: &[u8]) -> Result<&[u8], SnapshotError> {
    let truncated =
        |what: &str| SnapshotError::Truncated(format!("keel snapshot ends inside {what}"));
    let store_len = length_at(bytes, HEADER_BYTES).ok_or_else(|| truncated("the header"))?;
    let meta_at = (HEADER_BYTES + LENGTH_BYTES)
        .checked_add(store_len)
        .ok_or_else(|| truncated("the store"))?;
    let meta_len = length_at(bytes, meta_at).ok_or_else(|| truncated("the store"))?;
    let end = (meta_at + LENGTH_BYTES)
        .checked_add(meta_len)
        .and_then(|at| at.checked_add(CRC_BYTES))
        .filter(|end| *end <= bytes.len())
        .ok_or_else(|| truncated("the metadata"))?;
    if bytes[end..].iter().any(|b| *b != 0) {
        return Err(SnapshotError::CorruptKeel(
            "bytes after the snapshot are not padding".to_owned(),
        ));
    }
    Ok(&bytes[..end])
}

/// Decodes a keel snapshot (padded or not) into a state machine.
///
/// Errors: see [`unpadded`]; [`SnapshotError::CorruptKeel`] with the
/// kernel's reason when a checksum or section is wrong.
pub fn decode(bytes: &[u8], config: StateMachineConfig) -> Result<StateMachine, SnapshotError> {
    let exact = unpadded(bytes)?;
    StateMachine::restore(config, exact).map_err(|e| SnapshotError::CorruptKeel(e.to_string()))
}

fn length_at(bytes: &[u8], at: usize) -> Option<usize> {
    let field = bytes.get(at..at.checked_add(LENGTH_BYTES)?)?;
    let mut word = [0u8; LENGTH_BYTES];
    word.copy_from_slice(field);
    usize::try_from(u64::from_le_bytes(word)).ok()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;
    use keel_kernel::membership::Cluster;

    fn config() -> StateMachineConfig {
        StateMachineConfig::new(1000)
    }

    fn padded() -> (Vec<u8>, usize) {
        let bytes = StateMachine::new(config(), Cluster::empty(3)).snapshot();
        let len = bytes.len();
        let mut out = bytes;
        out.resize(len.next_multiple_of(512), 0);
        (out, len)
    }

    #[test]
    fn padding_is_removed_by_the_lengths() {
        let (bytes, len) = padded();
        assert_eq!(unpadded(&bytes).unwrap().len(), len);
        assert!(decode(&bytes, config()).is_ok());
    }

    #[test]
    fn truncation_and_damage_are_reported() {
        let (bytes, len) = padded();
        assert!(matches!(
            decode(&bytes[..len - 1], config()),
            Err(SnapshotError::Truncated(_))
        ));
        let mut flipped = bytes.clone();
        flipped[HEADER_BYTES + 9] ^= 0x40;
        assert!(decode(&flipped, config()).is_err());
        let mut tail = bytes;
        *tail.last_mut().unwrap() = 1;
        assert!(matches!(
            decode(&tail, config()),
            Err(SnapshotError::CorruptKeel(_))
        ));
    }
}
