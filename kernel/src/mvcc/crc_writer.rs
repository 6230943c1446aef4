//! A [`Write`] adapter that checksums what passes through it, so snapshot
//! sections can be streamed to their destination with their CRC32
//! computed on the way (no copy of the encoding in memory).

use std::io::{self, Write};

/// Forwards every byte to `inner` and keeps the CRC32 (IEEE, as
/// `crc32fast::hash`) and the count of the bytes forwarded.
pub struct Crc32Writer<W: Write> {
    inner: W,
    hasher: crc32fast::Hasher,
    written_bytes: u64,
}

impl<W: Write> Crc32Writer<W> {
    /// Checksums what is written to `inner` from now on.
    pub fn new(inner: W) -> Crc32Writer<W> {
        Crc32Writer {
            inner,
            hasher: crc32fast::Hasher::new(),
            written_bytes: 0,
        }
    }

    /// CRC32 of the bytes written so far.
    pub fn crc(&self) -> u32 {
        self.hasher.clone().finalize()
    }

    /// Bytes written so far.
    pub fn written_bytes(&self) -> u64 {
        self.written_bytes
    }

    /// The writer underneath (the checksum ends here).
    pub fn into_inner(self) -> W {
        self.inner
    }
}

impl<W: Write> Write for Crc32Writer<W> {
    /// Writes to the inner writer and checksums what it accepted.
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let accepted = self.inner.write(bytes)?;
        let taken = bytes.get(..accepted).unwrap_or(bytes);
        self.hasher.update(taken);
        self.written_bytes += taken.len() as u64;
        Ok(taken.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Accepts at most 3 bytes per call, as a short-writing sink may.
    struct Trickle(Vec<u8>);

    impl Write for Trickle {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            let n = bytes.len().min(3);
            self.0.extend_from_slice(&bytes[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn checksums_exactly_what_was_forwarded() {
        let mut writer = Crc32Writer::new(Trickle(Vec::new()));
        writer.write_all(b"hello, ").unwrap();
        writer.write_all(b"snapshot").unwrap();
        assert_eq!(writer.written_bytes(), 15);
        assert_eq!(writer.crc(), crc32fast::hash(b"hello, snapshot"));
        assert_eq!(writer.into_inner().0, b"hello, snapshot");
    }
}
