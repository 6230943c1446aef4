//! A small deterministic binary codec shared by [`Message`](super::Message)
//! and [`ConfChange`](super::ConfChange): LEB128 varints for integers and
//! length-prefixed byte strings.
//!
//! Decoding never panics and never allocates more than the input could
//! describe: every length is checked against the bytes that remain.

use bytes::{BufMut, Bytes};
use std::fmt;

/// Why a byte string could not be decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// The input ended before the value was complete.
    Truncated,
    /// A varint was longer than 10 bytes or overflowed 64 bits.
    VarintOverflow,
    /// An enum tag had an unknown value; the string names the field.
    UnknownTag(&'static str, u64),
    /// A length or count exceeded what the remaining input can hold.
    LengthTooLarge(&'static str, u64),
    /// Bytes were left over after the value was decoded.
    TrailingBytes(usize),
    /// The format version byte is not one this build understands.
    UnsupportedVersion(u8),
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Truncated => write!(f, "raft codec: input truncated"),
            DecodeError::VarintOverflow => write!(f, "raft codec: varint overflows 64 bits"),
            DecodeError::UnknownTag(field, v) => write!(f, "raft codec: unknown {field} tag {v}"),
            DecodeError::LengthTooLarge(field, v) => {
                write!(f, "raft codec: {field} length {v} exceeds the input")
            }
            DecodeError::TrailingBytes(n) => write!(f, "raft codec: {n} trailing bytes"),
            DecodeError::UnsupportedVersion(v) => write!(f, "raft codec: unsupported version {v}"),
        }
    }
}

impl std::error::Error for DecodeError {}

/// Appends `value` as an unsigned LEB128 varint (1 to 10 bytes).
pub(crate) fn put_varint(buf: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        buf.put_u8((value as u8) | 0x80);
        value >>= 7;
    }
    buf.put_u8(value as u8);
}

/// Appends a varint length followed by the bytes.
pub(crate) fn put_bytes(buf: &mut Vec<u8>, data: &[u8]) {
    put_varint(buf, data.len() as u64);
    buf.extend_from_slice(data);
}

/// A cursor over input bytes; every read is bounds-checked.
pub(crate) struct Reader<'a> {
    input: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// Starts reading at the beginning of `input`.
    pub(crate) fn new(input: &'a [u8]) -> Self {
        Reader { input, pos: 0 }
    }

    /// Bytes not yet consumed.
    pub(crate) fn remaining(&self) -> usize {
        self.input.len() - self.pos
    }

    /// Reads one byte.
    pub(crate) fn u8(&mut self) -> Result<u8, DecodeError> {
        let byte = *self.input.get(self.pos).ok_or(DecodeError::Truncated)?;
        self.pos += 1;
        Ok(byte)
    }

    /// Reads an unsigned LEB128 varint of at most 10 bytes.
    pub(crate) fn varint(&mut self) -> Result<u64, DecodeError> {
        let mut value: u64 = 0;
        for shift in (0..70).step_by(7) {
            let byte = self.u8()?;
            let low = u64::from(byte & 0x7f);
            if shift == 63 && low > 1 {
                return Err(DecodeError::VarintOverflow);
            }
            value |= low << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(DecodeError::VarintOverflow)
    }

    /// Reads a boolean stored as one byte (0 or 1).
    pub(crate) fn bool(&mut self, field: &'static str) -> Result<bool, DecodeError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            other => Err(DecodeError::UnknownTag(field, u64::from(other))),
        }
    }

    /// Reads a count of items each at least `min_item_bytes` long, rejecting
    /// counts the remaining input cannot hold (bounds allocation).
    pub(crate) fn count(
        &mut self,
        field: &'static str,
        min_item_bytes: usize,
    ) -> Result<usize, DecodeError> {
        let n = self.varint()?;
        let max = self.remaining() / min_item_bytes.max(1);
        if n > max as u64 {
            return Err(DecodeError::LengthTooLarge(field, n));
        }
        Ok(n as usize)
    }

    /// Reads a length-prefixed byte string as a copy.
    pub(crate) fn bytes(&mut self, field: &'static str) -> Result<Bytes, DecodeError> {
        let len = self.count(field, 1)?;
        let out = Bytes::copy_from_slice(&self.input[self.pos..self.pos + len]);
        self.pos += len;
        Ok(out)
    }

    /// Fails unless all input was consumed.
    pub(crate) fn finish(&self) -> Result<(), DecodeError> {
        match self.remaining() {
            0 => Ok(()),
            n => Err(DecodeError::TrailingBytes(n)),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip_at_the_edges() {
        for v in [
            0,
            1,
            127,
            128,
            300,
            u64::from(u32::MAX),
            u64::MAX - 1,
            u64::MAX,
        ] {
            let mut buf = Vec::new();
            put_varint(&mut buf, v);
            let mut r = Reader::new(&buf);
            assert_eq!(r.varint(), Ok(v));
            assert!(r.finish().is_ok());
        }
    }

    #[test]
    fn overlong_and_truncated_varints_are_errors() {
        let overlong = [0xffu8; 11];
        assert_eq!(
            Reader::new(&overlong).varint(),
            Err(DecodeError::VarintOverflow)
        );
        let too_big = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02];
        assert_eq!(
            Reader::new(&too_big).varint(),
            Err(DecodeError::VarintOverflow)
        );
        assert_eq!(Reader::new(&[0x80]).varint(), Err(DecodeError::Truncated));
    }

    #[test]
    fn lengths_beyond_the_input_are_rejected() {
        let mut buf = Vec::new();
        put_varint(&mut buf, 1 << 40);
        assert!(matches!(
            Reader::new(&buf).bytes("data"),
            Err(DecodeError::LengthTooLarge(..))
        ));
    }
}
