//! A bounds-checked byte reader: every read past the end is `MediaError::InvalidData`, never a panic.

use crate::MediaError;

pub type Result<T> = core::result::Result<T, MediaError>;

pub fn invalid<T>(what: &str) -> Result<T> {
    Err(MediaError::InvalidData(what.to_string()))
}

/// A cursor over `data[pos..end]`.
#[derive(Clone)]
pub struct Reader<'a> {
    data: &'a [u8],
    pub pos: usize,
    end: usize,
}

impl<'a> Reader<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Reader { data, pos: 0, end: data.len() }
    }

    /// A reader over `data[start..end]`, clamped to the data (callers check sizes they rely on).
    pub fn range(data: &'a [u8], start: usize, end: usize) -> Result<Self> {
        if start > end || end > data.len() {
            return invalid("a box or chunk extends past the end of the data");
        }
        Ok(Reader { data, pos: start, end })
    }

    pub fn data(&self) -> &'a [u8] {
        self.data
    }
    pub fn end(&self) -> usize {
        self.end
    }
    pub fn remaining(&self) -> usize {
        self.end - self.pos
    }
    pub fn is_empty(&self) -> bool {
        self.pos >= self.end
    }

    pub fn bytes(&mut self, n: usize) -> Result<&'a [u8]> {
        if n > self.remaining() {
            return invalid("truncated data: a field extends past the end");
        }
        let out = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }
    pub fn skip(&mut self, n: usize) -> Result<()> {
        self.bytes(n).map(|_| ())
    }
    pub fn u8(&mut self) -> Result<u8> {
        Ok(self.bytes(1)?[0])
    }
    pub fn be16(&mut self) -> Result<u16> {
        let b = self.bytes(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
    pub fn be24(&mut self) -> Result<u32> {
        let b = self.bytes(3)?;
        Ok(u32::from_be_bytes([0, b[0], b[1], b[2]]))
    }
    pub fn be32(&mut self) -> Result<u32> {
        let b = self.bytes(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    pub fn be64(&mut self) -> Result<u64> {
        let hi = self.be32()? as u64;
        Ok(hi << 32 | self.be32()? as u64)
    }
    pub fn le16(&mut self) -> Result<u16> {
        let b = self.bytes(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }
    pub fn le32(&mut self) -> Result<u32> {
        let b = self.bytes(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    pub fn le64(&mut self) -> Result<u64> {
        let lo = self.le32()? as u64;
        Ok((self.le32()? as u64) << 32 | lo)
    }
    pub fn fourcc(&mut self) -> Result<[u8; 4]> {
        let b = self.bytes(4)?;
        Ok([b[0], b[1], b[2], b[3]])
    }
}

/// A printable form of a four-character code for messages.
pub fn fourcc_text(code: &[u8]) -> String {
    code.iter().map(|&c| if (0x20..0x7f).contains(&c) { c as char } else { '?' }).collect()
}

/// `count` items of `item_bytes` each must fit in `available` bytes: guards allocations sized by header fields.
pub fn check_count(count: u64, item_bytes: u64, available: usize, what: &str) -> Result<usize> {
    match count.checked_mul(item_bytes) {
        Some(total) if total <= available as u64 => Ok(count as usize),
        _ => Err(MediaError::InvalidData(format!("{} declares {} entries, more than its {} bytes hold", what, count, available))),
    }
}
