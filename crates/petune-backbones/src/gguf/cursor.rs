//! A bounds-checked little-endian reader over the bytes of a GGUF file.
//!
//! Every read checks the remaining length first and fails with a message that says what was
//! being read and at which byte offset, so a truncated or corrupt file is a typed error, never a
//! panic or an out-of-bounds slice. Lengths read from the file are checked against the bytes
//! that remain *before* anything is allocated from them (a corrupt length field cannot ask for
//! a huge buffer). Spec: <https://github.com/ggml-org/ggml/blob/master/docs/gguf.md>.

/// Why a read failed (the caller adds the file name).
pub(crate) type ReadError = String;

/// Position in a byte slice, advancing with each read.
pub(crate) struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    /// A cursor at the start of `bytes`.
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Cursor { bytes, pos: 0 }
    }

    /// Current byte offset.
    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    /// Bytes left after the current position.
    pub(crate) fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }

    /// The next `n` bytes; `what` names them in the error.
    pub(crate) fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], ReadError> {
        if n > self.remaining() {
            return Err(format!(
                "truncated at byte {}: {what} needs {n} bytes, {} remain",
                self.pos,
                self.remaining()
            ));
        }
        let out = &self.bytes[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N], ReadError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N, what)?);
        Ok(out)
    }

    /// One byte.
    pub(crate) fn u8(&mut self, what: &str) -> Result<u8, ReadError> {
        Ok(self.array::<1>(what)?[0])
    }

    /// Little-endian u16.
    pub(crate) fn u16(&mut self, what: &str) -> Result<u16, ReadError> {
        Ok(u16::from_le_bytes(self.array(what)?))
    }

    /// Little-endian u32.
    pub(crate) fn u32(&mut self, what: &str) -> Result<u32, ReadError> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    /// Little-endian u64.
    pub(crate) fn u64(&mut self, what: &str) -> Result<u64, ReadError> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }

    /// A count read from the file, each item of which takes at least `min_item_bytes`: it must
    /// fit in what remains of the file, so that no allocation is sized by a corrupt field.
    pub(crate) fn count(&mut self, min_item_bytes: usize, what: &str) -> Result<usize, ReadError> {
        let at = self.pos;
        let n = self.u64(what)?;
        let fits = usize::try_from(n)
            .ok()
            .and_then(|n| n.checked_mul(min_item_bytes.max(1)))
            .is_some_and(|bytes| bytes <= self.remaining());
        if !fits {
            return Err(format!(
                "{what} at byte {at} is {n}, more than the {} bytes left in the file can hold",
                self.remaining()
            ));
        }
        Ok(n as usize)
    }

    /// A GGUF string: u64 byte length, then that many bytes of UTF-8.
    pub(crate) fn string(&mut self, what: &str) -> Result<String, ReadError> {
        let len = self.count(1, &format!("the length of {what}"))?;
        let at = self.pos;
        let bytes = self.take(len, what)?;
        String::from_utf8(bytes.to_vec())
            .map_err(|e| format!("{what} at byte {at} is not valid UTF-8 ({e})"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_little_endian_and_reports_truncation() {
        let bytes = [1u8, 0, 2, 0, 0, 0, 9];
        let mut c = Cursor::new(&bytes);
        assert_eq!(c.u16("a").unwrap(), 1);
        assert_eq!(c.u32("b").unwrap(), 2);
        let err = c.u32("the value of `x`").unwrap_err();
        assert!(err.contains("byte 6") && err.contains("the value of `x`"), "{err}");
    }

    #[test]
    fn a_count_larger_than_the_file_is_refused_before_allocating() {
        let mut bytes = u64::MAX.to_le_bytes().to_vec();
        bytes.extend([0u8; 16]);
        let err = Cursor::new(&bytes).count(8, "tensor count").unwrap_err();
        assert!(err.contains("tensor count") && err.contains("18446744073709551615"), "{err}");
        // 2 items of 8 bytes fit in 16 bytes, 3 do not
        let mut ok = 2u64.to_le_bytes().to_vec();
        ok.extend([0u8; 16]);
        assert_eq!(Cursor::new(&ok).count(8, "n").unwrap(), 2);
        let mut bad = 3u64.to_le_bytes().to_vec();
        bad.extend([0u8; 16]);
        assert!(Cursor::new(&bad).count(8, "n").is_err());
    }

    #[test]
    fn strings_must_be_utf8() {
        let mut bytes = 2u64.to_le_bytes().to_vec();
        bytes.extend([0xff, 0xfe]);
        let err = Cursor::new(&bytes).string("key").unwrap_err();
        assert!(err.contains("UTF-8"), "{err}");
    }
}
