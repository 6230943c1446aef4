//! One header block: a HEADERS frame and its CONTINUATION frames
//! (RFC 9113 §4.3, §6.2, §6.10), gathered so it can be decoded whole, and
//! written back out as new frames.

use super::filter::FilterError;
use super::frame::{
    FLAG_END_HEADERS, FLAG_END_STREAM, FLAG_PADDED, FLAG_PRIORITY, FrameHeader, HEADER_BYTES,
    MIN_MAX_FRAME_BYTES, TYPE_CONTINUATION, TYPE_HEADERS,
};

/// Size of the priority fields a HEADERS frame carries with FLAG_PRIORITY.
const PRIORITY_BYTES: usize = 5;

/// A header block being gathered or complete.
#[derive(Debug)]
pub struct HeaderBlock {
    stream_id: u32,
    end_stream: bool,
    priority: Option<[u8; PRIORITY_BYTES]>,
    /// The HPACK-encoded field block, padding and priority removed.
    fragment: Vec<u8>,
    /// The frames exactly as received (header and payload).
    raw: Vec<u8>,
    complete: bool,
}

impl HeaderBlock {
    /// Starts a block from a whole HEADERS frame (`frame` = 9-byte header +
    /// payload).
    ///
    /// Errors: `FilterError::Malformed` if padding or priority fields do not
    /// fit in the payload.
    pub fn start(header: FrameHeader, frame: &[u8]) -> Result<HeaderBlock, FilterError> {
        debug_assert_eq!(header.kind, TYPE_HEADERS);
        let mut payload = &frame[HEADER_BYTES..];
        if header.flags & FLAG_PADDED != 0 {
            let (&pad, rest) = payload.split_first().ok_or(FilterError::Malformed)?;
            let keep = rest
                .len()
                .checked_sub(usize::from(pad))
                .ok_or(FilterError::Malformed)?;
            payload = &rest[..keep];
        }
        let mut priority = None;
        if header.flags & FLAG_PRIORITY != 0 {
            let fields = payload
                .get(..PRIORITY_BYTES)
                .ok_or(FilterError::Malformed)?;
            let mut copy = [0; PRIORITY_BYTES];
            copy.copy_from_slice(fields);
            priority = Some(copy);
            payload = &payload[PRIORITY_BYTES..];
        }
        Ok(HeaderBlock {
            stream_id: header.stream_id,
            end_stream: header.flags & FLAG_END_STREAM != 0,
            priority,
            fragment: payload.to_vec(),
            raw: frame.to_vec(),
            complete: header.flags & FLAG_END_HEADERS != 0,
        })
    }

    /// Adds a whole CONTINUATION frame.
    ///
    /// Errors: `FilterError::Malformed` if it belongs to another stream.
    pub fn add_continuation(
        &mut self,
        header: FrameHeader,
        frame: &[u8],
    ) -> Result<(), FilterError> {
        debug_assert_eq!(header.kind, TYPE_CONTINUATION);
        debug_assert!(!self.complete);
        if header.stream_id != self.stream_id {
            return Err(FilterError::Malformed);
        }
        self.fragment.extend_from_slice(&frame[HEADER_BYTES..]);
        self.raw.extend_from_slice(frame);
        self.complete = header.flags & FLAG_END_HEADERS != 0;
        Ok(())
    }

    /// True once END_HEADERS was seen.
    pub fn is_complete(&self) -> bool {
        self.complete
    }

    /// Bytes gathered so far, as received.
    pub fn raw(&self) -> &[u8] {
        &self.raw
    }

    /// The HPACK field block.
    pub fn fragment(&self) -> &[u8] {
        &self.fragment
    }

    /// Writes `fields` as this block's new frames: HEADERS (keeping
    /// END_STREAM and the priority fields, dropping padding) and as many
    /// CONTINUATION frames as needed, each payload at most
    /// [`MIN_MAX_FRAME_BYTES`]. Fields are encoded as literals without
    /// indexing (RFC 7541 §6.2.2), so the receiver's HPACK table is unchanged.
    pub fn write_frames(&self, fields: &[(Vec<u8>, Vec<u8>)], out: &mut Vec<u8>) {
        let mut payload = Vec::new();
        if let Some(priority) = self.priority {
            payload.extend_from_slice(&priority);
        }
        for (name, value) in fields {
            encode_literal(name, value, &mut payload);
        }
        let mut chunks = payload.chunks(MIN_MAX_FRAME_BYTES).peekable();
        let mut kind = TYPE_HEADERS;
        let mut flags = self.first_frame_flags();
        // An empty block still needs its HEADERS frame.
        let mut first = chunks.peek().is_none().then_some(&[][..]);
        while let Some(chunk) = first.take().or_else(|| chunks.next()) {
            let last = chunks.peek().is_none();
            if last {
                flags |= FLAG_END_HEADERS;
            }
            let header = FrameHeader {
                length: chunk.len(),
                kind,
                flags,
                stream_id: self.stream_id,
            };
            header.write(out);
            out.extend_from_slice(chunk);
            kind = TYPE_CONTINUATION;
            flags = 0;
        }
    }

    fn first_frame_flags(&self) -> u8 {
        let mut flags = 0;
        if self.end_stream {
            flags |= FLAG_END_STREAM;
        }
        if self.priority.is_some() {
            flags |= FLAG_PRIORITY;
        }
        flags
    }
}

/// Appends one "literal header field without indexing — new name"
/// representation (RFC 7541 §6.2.2), strings without Huffman coding.
fn encode_literal(name: &[u8], value: &[u8], out: &mut Vec<u8>) {
    out.push(0x00);
    for string in [name, value] {
        // Writing into a Vec cannot fail.
        let _ = loona_hpack::encoder::encode_integer_into(string.len(), 7, 0, out);
        out.extend_from_slice(string);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;
    use crate::h2_authority::frame::frame;

    fn start(bytes: &[u8]) -> Result<HeaderBlock, FilterError> {
        HeaderBlock::start(FrameHeader::parse(bytes).unwrap(), bytes)
    }

    #[test]
    fn padding_and_priority_are_removed_from_the_fragment() {
        let mut payload = vec![2]; // pad length
        payload.extend_from_slice(&[0, 0, 0, 1, 16]); // priority
        payload.extend_from_slice(b"abc");
        payload.extend_from_slice(&[0, 0]); // padding
        let bytes = frame(TYPE_HEADERS, FLAG_PADDED | FLAG_PRIORITY, 3, &payload);
        let block = start(&bytes).unwrap();
        assert_eq!(block.fragment(), b"abc");
        assert_eq!(block.raw(), &bytes[..]);
        assert!(!block.is_complete());
    }

    #[test]
    fn bad_padding_is_malformed() {
        let bytes = frame(TYPE_HEADERS, FLAG_PADDED, 3, &[9, 1, 2]);
        assert!(matches!(start(&bytes), Err(FilterError::Malformed)));
        let bytes = frame(TYPE_HEADERS, FLAG_PRIORITY, 3, &[1, 2]);
        assert!(matches!(start(&bytes), Err(FilterError::Malformed)));
    }

    #[test]
    fn continuation_of_another_stream_is_malformed() {
        let mut block = start(&frame(TYPE_HEADERS, 0, 3, b"ab")).unwrap();
        let other = frame(TYPE_CONTINUATION, FLAG_END_HEADERS, 5, b"cd");
        let err = block.add_continuation(FrameHeader::parse(&other).unwrap(), &other);
        assert!(matches!(err, Err(FilterError::Malformed)));
        let same = frame(TYPE_CONTINUATION, FLAG_END_HEADERS, 3, b"cd");
        block
            .add_continuation(FrameHeader::parse(&same).unwrap(), &same)
            .unwrap();
        assert_eq!(block.fragment(), b"abcd");
        assert!(block.is_complete());
    }

    #[test]
    fn large_blocks_are_split_into_continuations_and_decode_back() {
        let block = start(&frame(
            TYPE_HEADERS,
            FLAG_END_STREAM | FLAG_PRIORITY | FLAG_END_HEADERS,
            1,
            &[0, 0, 0, 0, 1],
        ))
        .unwrap();
        let fields = vec![
            (b":path".to_vec(), b"/x".to_vec()),
            (b"big".to_vec(), vec![b'v'; 40_000]),
        ];
        let mut out = Vec::new();
        block.write_frames(&fields, &mut out);

        let mut rest = &out[..];
        let mut fragment = Vec::new();
        let mut headers = Vec::new();
        while let Some(header) = FrameHeader::parse(rest) {
            assert!(header.length <= MIN_MAX_FRAME_BYTES);
            assert_eq!(header.stream_id, 1);
            fragment.extend_from_slice(&rest[HEADER_BYTES..HEADER_BYTES + header.length]);
            headers.push(header);
            rest = &rest[HEADER_BYTES + header.length..];
        }
        assert!(rest.is_empty());
        assert_eq!(headers.len(), 3);
        assert_eq!(headers[0].kind, TYPE_HEADERS);
        assert_eq!(headers[0].flags, FLAG_END_STREAM | FLAG_PRIORITY);
        assert_eq!(headers[1].kind, TYPE_CONTINUATION);
        assert_eq!(headers[1].flags, 0);
        assert_eq!(headers[2].flags, FLAG_END_HEADERS);
        assert_eq!(&fragment[..5], &[0, 0, 0, 0, 1]);
        let decoded = loona_hpack::Decoder::new().decode(&fragment[5..]).unwrap();
        assert_eq!(decoded, fields);
    }

    #[test]
    fn an_empty_block_still_gets_a_headers_frame() {
        let block = start(&frame(TYPE_HEADERS, FLAG_END_HEADERS, 1, b"")).unwrap();
        let mut out = Vec::new();
        block.write_frames(&[], &mut out);
        assert_eq!(out, frame(TYPE_HEADERS, FLAG_END_HEADERS, 1, b""));
    }
}
