//! The byte filter on what a client sends: finds header blocks, decides once
//! per connection whether `:authority` needs repair, and rewrites blocks if
//! so. Sans-IO: bytes in, bytes out.

use bytes::{Buf, BytesMut};
use loona_hpack::Decoder;

use super::authority::{AuthorityRepair, repaired_authority};
use super::frame::{FrameHeader, HEADER_BYTES, PREFACE, TYPE_CONTINUATION, TYPE_HEADERS};
use super::header_block::HeaderBlock;

/// Largest header block (all its frames together) the filter gathers, in
/// bytes; tonic's default header list limit is 16 KiB, so real clients stay
/// far below.
pub const MAX_BLOCK_BYTES: usize = 1 << 20;

/// Why the filter gave up on a connection; the connection is then closed,
/// as `h2` would close it for the same input.
#[derive(Debug, thiserror::Error)]
pub enum FilterError {
    /// HEADERS/CONTINUATION frames that break RFC 9113's framing rules.
    #[error("malformed HTTP/2 header frames")]
    Malformed,
    /// A header block over [`MAX_BLOCK_BYTES`].
    #[error("HTTP/2 header block over {MAX_BLOCK_BYTES} bytes")]
    TooLarge,
    /// A header block HPACK cannot decode (RFC 7541 §2.3.3).
    #[error("HPACK decoding failed: {0}")]
    Hpack(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for the 24-byte connection preface.
    Preface,
    /// Reading frames.
    Frames,
    /// Everything from here on is forwarded unchanged.
    Passthrough,
}

/// The filter for one connection's inbound bytes (see the module docs).
pub struct InboundFilter {
    phase: Phase,
    /// Received bytes not yet forwarded.
    pending: BytesMut,
    /// Payload bytes of the current non-header frame still to forward.
    forward_remaining: usize,
    /// A header block whose END_HEADERS has not arrived yet.
    block: Option<HeaderBlock>,
    /// The HPACK decoder, present once the connection is being rewritten.
    decoder: Option<Decoder<'static>>,
}

impl Default for InboundFilter {
    fn default() -> Self {
        InboundFilter::new()
    }
}

impl InboundFilter {
    /// A filter for a new connection.
    pub fn new() -> InboundFilter {
        InboundFilter {
            phase: Phase::Preface,
            pending: BytesMut::new(),
            forward_remaining: 0,
            block: None,
            decoder: None,
        }
    }

    /// True when the filter forwards everything unchanged from now on and
    /// holds nothing back, so the caller may bypass it.
    pub fn is_passthrough(&self) -> bool {
        self.phase == Phase::Passthrough && self.pending.is_empty()
    }

    /// True once the connection's header blocks are being rewritten.
    pub fn is_rewriting(&self) -> bool {
        self.decoder.is_some()
    }

    /// Feeds received bytes; appends what may be passed on to `out`.
    ///
    /// Errors: see [`FilterError`]; the connection should then be closed.
    pub fn push(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(), FilterError> {
        self.pending.extend_from_slice(input);
        while self.step(out)? {}
        Ok(())
    }

    /// At end of input: passes on whatever is held back, unchanged, so the
    /// server sees the same truncated input it would have seen.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        if let Some(block) = self.block.take() {
            out.extend_from_slice(block.raw());
        }
        out.extend_from_slice(&self.pending);
        self.pending.clear();
        self.phase = Phase::Passthrough;
    }

    /// One unit of progress; false when more input is needed.
    fn step(&mut self, out: &mut Vec<u8>) -> Result<bool, FilterError> {
        match self.phase {
            Phase::Passthrough => Ok(self.forward(self.pending.len(), out) > 0),
            Phase::Preface => Ok(self.step_preface(out)),
            Phase::Frames => self.step_frame(out),
        }
    }

    fn step_preface(&mut self, out: &mut Vec<u8>) -> bool {
        let seen = self.pending.len().min(PREFACE.len());
        if self.pending[..seen] != PREFACE[..seen] {
            // Not HTTP/2 with prior knowledge: none of our business.
            self.phase = Phase::Passthrough;
            return true;
        }
        if seen < PREFACE.len() {
            return false;
        }
        self.forward(PREFACE.len(), out);
        self.phase = Phase::Frames;
        true
    }

    fn step_frame(&mut self, out: &mut Vec<u8>) -> Result<bool, FilterError> {
        if self.forward_remaining > 0 {
            let sent = self.forward(self.forward_remaining, out);
            self.forward_remaining -= sent;
            return Ok(sent > 0);
        }
        let Some(header) = FrameHeader::parse(&self.pending) else {
            return Ok(false);
        };
        let in_block = self.block.is_some();
        match header.kind {
            TYPE_HEADERS | TYPE_CONTINUATION if header.length > MAX_BLOCK_BYTES => {
                Err(FilterError::TooLarge)
            }
            TYPE_HEADERS if !in_block => self.take_frame(header, out),
            TYPE_CONTINUATION if in_block => self.take_frame(header, out),
            // RFC 9113 §6.10: nothing may come between a HEADERS frame and
            // the end of its block.
            _ if in_block => Err(FilterError::Malformed),
            _ => {
                self.forward(HEADER_BYTES, out);
                self.forward_remaining = header.length;
                Ok(true)
            }
        }
    }

    /// Adds a whole HEADERS/CONTINUATION frame to the current block, and
    /// passes the block on when it is complete.
    fn take_frame(&mut self, header: FrameHeader, out: &mut Vec<u8>) -> Result<bool, FilterError> {
        let frame_bytes = HEADER_BYTES + header.length;
        if self.pending.len() < frame_bytes {
            return Ok(false);
        }
        let frame = self.pending.split_to(frame_bytes);
        let block = match self.block.take() {
            None => HeaderBlock::start(header, &frame)?,
            Some(mut block) => {
                block.add_continuation(header, &frame)?;
                block
            }
        };
        if block.raw().len() > MAX_BLOCK_BYTES {
            return Err(FilterError::TooLarge);
        }
        if block.is_complete() {
            self.pass_on(&block, out)?;
        } else {
            self.block = Some(block);
        }
        Ok(true)
    }

    /// Passes a complete block on: rewritten when the connection is being
    /// rewritten; otherwise the first block decides.
    fn pass_on(&mut self, block: &HeaderBlock, out: &mut Vec<u8>) -> Result<(), FilterError> {
        if let Some(decoder) = self.decoder.as_mut() {
            let (fields, _) = repair(decode(decoder, block.fragment())?);
            block.write_frames(&fields, out);
            return Ok(());
        }
        let mut decoder = Decoder::new();
        match decode(&mut decoder, block.fragment()).map(repair) {
            Ok((fields, true)) => {
                block.write_frames(&fields, out);
                self.decoder = Some(decoder);
            }
            // A valid authority, or a block h2 will reject itself.
            _ => {
                out.extend_from_slice(block.raw());
                self.phase = Phase::Passthrough;
            }
        }
        Ok(())
    }

    /// Moves up to `max` pending bytes to `out`; returns how many.
    fn forward(&mut self, max: usize, out: &mut Vec<u8>) -> usize {
        let n = max.min(self.pending.len());
        out.extend_from_slice(&self.pending[..n]);
        self.pending.advance(n);
        n
    }
}

type Fields = Vec<(Vec<u8>, Vec<u8>)>;

fn decode(decoder: &mut Decoder<'static>, fragment: &[u8]) -> Result<Fields, FilterError> {
    decoder
        .decode(fragment)
        .map_err(|e| FilterError::Hpack(e.to_string()))
}

/// The fields with `:authority` repaired, and whether anything changed.
fn repair(fields: Fields) -> (Fields, bool) {
    let mut changed = false;
    let fields = fields
        .into_iter()
        .filter_map(|(name, value)| {
            if name != b":authority" {
                return Some((name, value));
            }
            match repaired_authority(&value) {
                AuthorityRepair::Keep => Some((name, value)),
                AuthorityRepair::Replace(fixed) => {
                    changed = true;
                    Some((name, fixed))
                }
                AuthorityRepair::Drop => {
                    changed = true;
                    None
                }
            }
        })
        .collect();
    (fields, changed)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests;
