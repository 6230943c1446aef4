//! HTTP/2 frame headers (RFC 9113 §4.1) and the few constants the filter
//! needs.

/// The client connection preface (RFC 9113 §3.4).
pub const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// Size of a frame header in bytes.
pub const HEADER_BYTES: usize = 9;
/// The largest frame payload every HTTP/2 endpoint accepts
/// (SETTINGS_MAX_FRAME_SIZE's initial value, RFC 9113 §6.5.2); re-encoded
/// header blocks are split into frames of at most this size.
pub const MIN_MAX_FRAME_BYTES: usize = 16_384;

/// Frame type HEADERS.
pub const TYPE_HEADERS: u8 = 0x1;
/// Frame type CONTINUATION.
pub const TYPE_CONTINUATION: u8 = 0x9;

/// END_STREAM flag of HEADERS.
pub const FLAG_END_STREAM: u8 = 0x1;
/// END_HEADERS flag of HEADERS and CONTINUATION.
pub const FLAG_END_HEADERS: u8 = 0x4;
/// PADDED flag of HEADERS.
pub const FLAG_PADDED: u8 = 0x8;
/// PRIORITY flag of HEADERS.
pub const FLAG_PRIORITY: u8 = 0x20;

/// A parsed frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// Payload length in bytes (24 bits).
    pub length: usize,
    /// Frame type.
    pub kind: u8,
    /// Flags.
    pub flags: u8,
    /// Stream identifier (31 bits).
    pub stream_id: u32,
}

impl FrameHeader {
    /// Parses the first [`HEADER_BYTES`] of `bytes`; `None` if fewer.
    pub fn parse(bytes: &[u8]) -> Option<FrameHeader> {
        let b = bytes.get(..HEADER_BYTES)?;
        Some(FrameHeader {
            length: usize::from(b[0]) << 16 | usize::from(b[1]) << 8 | usize::from(b[2]),
            kind: b[3],
            flags: b[4],
            stream_id: u32::from_be_bytes([b[5], b[6], b[7], b[8]]) & 0x7fff_ffff,
        })
    }

    /// Appends the 9-byte encoding to `out`. `length` must fit 24 bits.
    pub fn write(&self, out: &mut Vec<u8>) {
        debug_assert!(self.length < 1 << 24);
        let len = self.length.to_be_bytes();
        out.extend_from_slice(&len[len.len() - 3..]);
        out.push(self.kind);
        out.push(self.flags);
        out.extend_from_slice(&(self.stream_id & 0x7fff_ffff).to_be_bytes());
    }
}

/// A whole frame, header then `payload`; tests build client input with it.
#[cfg(test)]
pub fn frame(kind: u8, flags: u8, stream_id: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    FrameHeader {
        length: payload.len(),
        kind,
        flags,
        stream_id,
    }
    .write(&mut out);
    out.extend_from_slice(payload);
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    #[test]
    fn header_round_trips() {
        let header = FrameHeader {
            length: 0x01_02_03,
            kind: TYPE_HEADERS,
            flags: FLAG_END_HEADERS | FLAG_END_STREAM,
            stream_id: 7,
        };
        let mut out = Vec::new();
        header.write(&mut out);
        assert_eq!(out, [1, 2, 3, 1, 5, 0, 0, 0, 7]);
        assert_eq!(FrameHeader::parse(&out), Some(header));
        assert_eq!(FrameHeader::parse(&out[..8]), None);
    }

    #[test]
    fn reserved_stream_bit_is_ignored() {
        let bytes = [0, 0, 0, 9, 0, 0x80, 0, 0, 3];
        assert_eq!(FrameHeader::parse(&bytes).map(|h| h.stream_id), Some(3));
    }
}
