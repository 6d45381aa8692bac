//! Kafka's protocol primitive types as its internal records store them: big-endian integers
//! and `STRING` (an `int16` length, then UTF-8 bytes). Used by the transaction log's
//! records and MirrorMaker 2's offset syncs and checkpoints.

/// Appends a `STRING`. A string over `i16::MAX` bytes is cut at a character boundary (no
/// name Kafka stores comes near it).
pub(crate) fn put_str(out: &mut Vec<u8>, s: &str) {
    let mut end = s.len().min(i16::MAX as usize);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    out.extend_from_slice(&(end as i16).to_be_bytes());
    out.extend_from_slice(s.as_bytes().get(..end).unwrap_or_default());
}

/// A cursor over big-endian fields; each read is `None` when the bytes run out.
pub(crate) struct Reader<'a>(pub(crate) &'a [u8]);

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (head, rest) = self.0.split_first_chunk::<N>()?;
        self.0 = rest;
        Some(*head)
    }

    pub(crate) fn i8(&mut self) -> Option<i8> {
        self.take::<1>().map(i8::from_be_bytes)
    }

    pub(crate) fn i16(&mut self) -> Option<i16> {
        self.take::<2>().map(i16::from_be_bytes)
    }

    pub(crate) fn i32(&mut self) -> Option<i32> {
        self.take::<4>().map(i32::from_be_bytes)
    }

    pub(crate) fn i64(&mut self) -> Option<i64> {
        self.take::<8>().map(i64::from_be_bytes)
    }

    /// A `STRING` (a negative length, Kafka's null, is `None`).
    pub(crate) fn string(&mut self) -> Option<String> {
        let len = usize::try_from(self.i16()?).ok()?;
        let (s, rest) = self.0.split_at_checked(len)?;
        self.0 = rest;
        String::from_utf8(s.to_vec()).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_round_trip_and_long_ones_are_cut_at_a_character() {
        let mut out = Vec::new();
        put_str(&mut out, "héllo");
        out.extend_from_slice(&7i32.to_be_bytes());
        let mut r = Reader(&out);
        assert_eq!(r.string().as_deref(), Some("héllo"));
        assert_eq!(r.i32(), Some(7));
        assert_eq!(r.i8(), None);
        let long = "é".repeat(20_000); // 40,000 bytes
        let mut out = Vec::new();
        put_str(&mut out, &long);
        let cut = Reader(&out).string().unwrap_or_default();
        assert_eq!(cut.len(), 32_766);
        assert!(long.starts_with(&cut));
        assert_eq!(Reader(&[0xff, 0xff]).string(), None, "null");
    }
}
