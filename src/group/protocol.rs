//! Kafka's ConsumerProtocol: the subscription (member metadata) and assignment byte strings that
//! consumers exchange through the group coordinator in the classic group protocol.
//!
//! The coordinator treats both as opaque bytes; the group leader (a client) decodes every member's
//! subscription and encodes one assignment per member. The layouts follow Kafka's
//! `clients/src/main/resources/common/message/ConsumerProtocolSubscription.json` and
//! `ConsumerProtocolAssignment.json` (never flexible; big-endian; strings are an int16 length and
//! UTF-8, nullable bytes an int32 length with -1 for null, arrays an int32 count):
//!
//! ```text
//! Subscription    := version:int16 topics:[string] user_data:nullable bytes
//!                    owned_partitions:[TopicPartitions]   (v1+)
//!                    generation_id:int32                  (v2+, default -1)
//!                    rack_id:nullable string              (v3+, KIP-881)
//! Assignment      := version:int16 assigned_partitions:[TopicPartitions] user_data:nullable bytes
//!                    (the same fields in versions 0-3)
//! TopicPartitions := topic:string partitions:[int32]
//! ```
//!
//! Decoders accept every version from 0 up; a version newer than the newest known one is read as
//! the newest known one and trailing bytes are ignored, which is Kafka's own forward-compatibility
//! rule for these two messages ("new versions cannot remove or reorder any of the existing
//! fields"). [`Subscription::encode`] writes version 3 and [`Assignment::encode`] version 1.

use bytes::Bytes;

use self::wire::{Reader, Writer};
use crate::TopicPartition;
use crate::error::Result;

/// Version written by [`Subscription::encode`].
const SUBSCRIPTION_ENCODE_VERSION: i16 = 3;
/// Version written by [`Assignment::encode`].
const ASSIGNMENT_ENCODE_VERSION: i16 = 1;
/// Smallest encoding of one `TopicPartitions` entry: an empty topic name and an empty array.
const MIN_TOPIC_PARTITIONS_SIZE: usize = 2 + 4;

/// A consumer group member's subscription (Kafka's `ConsumerProtocolSubscription`), carried as the
/// protocol metadata of JoinGroup.
///
/// Versions 0-3 (and newer, by their known prefix) decode; [`encode`](Self::encode) writes
/// version 3.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    /// The topics the member wants to consume.
    pub topics: Vec<String>,
    /// Assignor-specific user data, passed through to the assignor.
    pub user_data: Option<Bytes>,
    /// The partitions the member owns from the previous generation (version 1+; empty before).
    pub owned_partitions: Vec<TopicPartition>,
    /// The generation the owned partitions belong to (version 2+; -1 when unknown).
    pub generation_id: i32,
    /// The member's rack (`client.rack`, version 3+; `None` before).
    pub rack_id: Option<String>,
}

impl Default for Subscription {
    fn default() -> Self {
        Subscription {
            topics: Vec::new(),
            user_data: None,
            owned_partitions: Vec::new(),
            generation_id: -1,
            rack_id: None,
        }
    }
}

impl Subscription {
    /// A subscription to `topics` with no user data, no owned partitions, generation -1 and no
    /// rack.
    pub fn new<I, S>(topics: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Subscription {
            topics: topics.into_iter().map(Into::into).collect(),
            ..Subscription::default()
        }
    }

    /// Encodes the subscription as `ConsumerProtocolSubscription` version 3.
    ///
    /// Owned partitions are grouped into runs of consecutive entries with the same topic, so
    /// decoding returns them in the same order (sorted input gives one entry per topic). A value
    /// beyond the wire format's limits (a string over 32767 bytes, more than `i32::MAX` array
    /// elements or bytes) is truncated to fit; [`try_encode`](Self::try_encode) reports it instead.
    pub fn encode(&self) -> Vec<u8> {
        self.write().finish()
    }

    /// Like [`encode`](Self::encode), but returns `Error::InvalidBatch` if a value does not fit
    /// the wire format instead of truncating it.
    pub fn try_encode(&self) -> Result<Vec<u8>> {
        self.write().try_finish()
    }

    fn write(&self) -> Writer {
        let mut w = Writer::new("consumer protocol subscription");
        w.i16(SUBSCRIPTION_ENCODE_VERSION);
        let n = w.array_len("topics", self.topics.len());
        for topic in self.topics.iter().take(n) {
            w.string("topics", topic);
        }
        w.nullable_bytes("user_data", self.user_data.as_deref());
        write_topic_partitions(&mut w, "owned_partitions", &self.owned_partitions);
        w.i32(self.generation_id);
        w.nullable_string("rack_id", self.rack_id.as_deref());
        w
    }

    /// Decodes a `ConsumerProtocolSubscription` of any version.
    ///
    /// Fields a version lacks take their defaults (no owned partitions, generation -1, no rack).
    /// An empty or truncated buffer, a negative version, a negative array count, a null
    /// non-nullable string or invalid UTF-8 is an `Error::InvalidBatch`; trailing bytes are
    /// ignored.
    pub fn decode(buf: &[u8]) -> Result<Subscription> {
        let mut r = Reader::new(buf, "consumer protocol subscription");
        let version = r.version()?;
        let n = r.array_len("topics", 2)?;
        let mut topics = Vec::with_capacity(n);
        for _ in 0..n {
            topics.push(r.string("topics")?);
        }
        let user_data = r.nullable_bytes("user_data")?.map(Bytes::copy_from_slice);
        let owned_partitions = if version >= 1 {
            read_topic_partitions(&mut r, "owned_partitions")?
        } else {
            Vec::new()
        };
        let generation_id = if version >= 2 {
            r.i32("generation_id")?
        } else {
            -1
        };
        let rack_id = if version >= 3 {
            r.nullable_string("rack_id")?
        } else {
            None
        };
        Ok(Subscription {
            topics,
            user_data,
            owned_partitions,
            generation_id,
            rack_id,
        })
    }
}

/// The partitions assigned to one member (Kafka's `ConsumerProtocolAssignment`), carried in
/// SyncGroup.
///
/// Versions 0-3 (and newer, by their known prefix) decode; [`encode`](Self::encode) writes
/// version 1.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Assignment {
    /// The assigned partitions.
    pub partitions: Vec<TopicPartition>,
    /// Assignor-specific user data for the member.
    pub user_data: Option<Bytes>,
}

impl Assignment {
    /// An assignment of `partitions` without user data.
    pub fn new(partitions: Vec<TopicPartition>) -> Self {
        Assignment {
            partitions,
            user_data: None,
        }
    }

    /// Encodes the assignment as `ConsumerProtocolAssignment` version 1.
    ///
    /// Partitions are grouped into runs of consecutive entries with the same topic, so decoding
    /// returns them in the same order. Values beyond the wire format's limits are truncated;
    /// [`try_encode`](Self::try_encode) reports them instead.
    pub fn encode(&self) -> Vec<u8> {
        self.write().finish()
    }

    /// Like [`encode`](Self::encode), but returns `Error::InvalidBatch` if a value does not fit
    /// the wire format instead of truncating it.
    pub fn try_encode(&self) -> Result<Vec<u8>> {
        self.write().try_finish()
    }

    fn write(&self) -> Writer {
        let mut w = Writer::new("consumer protocol assignment");
        w.i16(ASSIGNMENT_ENCODE_VERSION);
        write_topic_partitions(&mut w, "assigned_partitions", &self.partitions);
        w.nullable_bytes("user_data", self.user_data.as_deref());
        w
    }

    /// Decodes a `ConsumerProtocolAssignment` of any version.
    ///
    /// An empty or truncated buffer, a negative version or count, a null topic or invalid UTF-8
    /// is an `Error::InvalidBatch`; trailing bytes are ignored.
    pub fn decode(buf: &[u8]) -> Result<Assignment> {
        let mut r = Reader::new(buf, "consumer protocol assignment");
        r.version()?;
        let partitions = read_topic_partitions(&mut r, "assigned_partitions")?;
        let user_data = r.nullable_bytes("user_data")?.map(Bytes::copy_from_slice);
        Ok(Assignment {
            partitions,
            user_data,
        })
    }
}

/// Writes `[TopicPartitions]`, one entry per run of consecutive same-topic partitions.
fn write_topic_partitions(w: &mut Writer, field: &'static str, partitions: &[TopicPartition]) {
    let mut runs: Vec<(&str, Vec<i32>)> = Vec::new();
    for tp in partitions {
        match runs.last_mut() {
            Some((topic, list)) if *topic == tp.topic => list.push(tp.partition),
            _ => runs.push((&tp.topic, vec![tp.partition])),
        }
    }
    let n = w.array_len(field, runs.len());
    for (topic, list) in runs.iter().take(n) {
        w.string(field, topic);
        let k = w.array_len(field, list.len());
        for partition in list.iter().take(k) {
            w.i32(*partition);
        }
    }
}

/// Reads `[TopicPartitions]` into a flat list in wire order.
fn read_topic_partitions(r: &mut Reader<'_>, field: &'static str) -> Result<Vec<TopicPartition>> {
    let n = r.array_len(field, MIN_TOPIC_PARTITIONS_SIZE)?;
    let mut out = Vec::new();
    for _ in 0..n {
        let topic = r.string(field)?;
        let k = r.array_len(field, 4)?;
        out.reserve(k);
        for _ in 0..k {
            out.push(TopicPartition::new(topic.clone(), r.i32(field)?));
        }
    }
    Ok(out)
}

/// Bounds-checked readers and writers for Kafka's primitive wire types, shared by the group
/// codecs. Every decoding failure is an `Error::InvalidBatch` naming the message and field.
pub(crate) mod wire {
    use std::fmt::Display;

    use crate::error::{Error, Result};

    /// A big-endian reader over a byte slice that never reads out of bounds.
    pub(crate) struct Reader<'a> {
        buf: &'a [u8],
        pos: usize,
        what: &'static str,
    }

    impl<'a> Reader<'a> {
        /// A reader over `buf`; `what` names the message in error messages.
        pub(crate) fn new(buf: &'a [u8], what: &'static str) -> Self {
            Reader { buf, pos: 0, what }
        }

        /// An `InvalidBatch` error naming the message and the current position.
        pub(crate) fn error(&self, reason: impl Display) -> Error {
            Error::invalid_batch(format!("{} at byte {}: {reason}", self.what, self.pos))
        }

        /// Bytes not yet read.
        pub(crate) fn remaining(&self) -> usize {
            self.buf.len().saturating_sub(self.pos)
        }

        fn take(&mut self, n: usize, field: &str) -> Result<&'a [u8]> {
            let slice = self
                .pos
                .checked_add(n)
                .and_then(|end| self.buf.get(self.pos..end));
            match slice {
                Some(s) => {
                    self.pos += n;
                    Ok(s)
                }
                None => Err(self.error(format_args!(
                    "truncated {field}: {n} bytes needed, {} left",
                    self.remaining()
                ))),
            }
        }

        fn fixed<const N: usize>(&mut self, field: &str) -> Result<[u8; N]> {
            let s = self.take(N, field)?;
            <[u8; N]>::try_from(s).map_err(|_| self.error("internal length mismatch"))
        }

        /// Reads the leading int16 version; an empty buffer or a negative version is an error.
        pub(crate) fn version(&mut self) -> Result<i16> {
            if self.remaining() == 0 {
                return Err(self.error("empty buffer"));
            }
            let version = self.i16("version")?;
            if version < 0 {
                return Err(self.error(format_args!("negative version {version}")));
            }
            Ok(version)
        }

        /// Reads an int16.
        pub(crate) fn i16(&mut self, field: &str) -> Result<i16> {
            Ok(i16::from_be_bytes(self.fixed(field)?))
        }

        /// Reads an int32.
        pub(crate) fn i32(&mut self, field: &str) -> Result<i32> {
            Ok(i32::from_be_bytes(self.fixed(field)?))
        }

        /// Reads an int64.
        pub(crate) fn i64(&mut self, field: &str) -> Result<i64> {
            Ok(i64::from_be_bytes(self.fixed(field)?))
        }

        fn utf8(&self, bytes: &[u8], field: &str) -> Result<String> {
            std::str::from_utf8(bytes)
                .map(str::to_owned)
                .map_err(|e| self.error(format_args!("{field} is not UTF-8: {e}")))
        }

        fn null_error(&self, field: &str) -> Error {
            self.error(format_args!("{field} is null but not nullable"))
        }

        /// Reads a nullable string (int16 length, negative for null).
        pub(crate) fn nullable_string(&mut self, field: &str) -> Result<Option<String>> {
            let len = self.i16(field)?;
            let Ok(len) = usize::try_from(len) else {
                return Ok(None);
            };
            let bytes = self.take(len, field)?;
            self.utf8(bytes, field).map(Some)
        }

        /// Reads a non-nullable string (int16 length).
        pub(crate) fn string(&mut self, field: &str) -> Result<String> {
            match self.nullable_string(field)? {
                Some(s) => Ok(s),
                None => Err(self.null_error(field)),
            }
        }

        /// Reads nullable bytes (int32 length, negative for null).
        pub(crate) fn nullable_bytes(&mut self, field: &str) -> Result<Option<&'a [u8]>> {
            let len = self.i32(field)?;
            let Ok(len) = usize::try_from(len) else {
                return Ok(None);
            };
            self.take(len, field).map(Some)
        }

        /// Reads non-nullable bytes (int32 length).
        pub(crate) fn bytes(&mut self, field: &str) -> Result<&'a [u8]> {
            match self.nullable_bytes(field)? {
                Some(b) => Ok(b),
                None => Err(self.null_error(field)),
            }
        }

        /// Reads a non-nullable array count (int32) and checks that `count` elements of at least
        /// `min_element_size` bytes each can fit in the rest of the buffer.
        pub(crate) fn array_len(&mut self, field: &str, min_element_size: usize) -> Result<usize> {
            let count = self.i32(field)?;
            let Ok(count) = usize::try_from(count) else {
                return Err(self.null_error(field));
            };
            self.check_fits(count, min_element_size, field)?;
            Ok(count)
        }

        fn check_fits(&self, count: usize, min_element_size: usize, field: &str) -> Result<()> {
            let fits = count
                .checked_mul(min_element_size)
                .is_some_and(|needed| needed <= self.remaining());
            if fits {
                Ok(())
            } else {
                Err(self.error(format_args!(
                    "truncated {field}: {count} elements cannot fit in {} bytes",
                    self.remaining()
                )))
            }
        }

        /// Reads an unsigned varint of at most 5 bytes whose value fits in 32 bits (flexible
        /// versions).
        pub(crate) fn unsigned_varint(&mut self, field: &str) -> Result<u32> {
            let mut value: u64 = 0;
            for i in 0..5 {
                let [b] = self.fixed::<1>(field)?;
                value |= u64::from(b & 0x7f) << (7 * i);
                if b & 0x80 == 0 {
                    return u32::try_from(value)
                        .map_err(|_| self.error(format_args!("{field} varint exceeds 32 bits")));
                }
            }
            Err(self.error(format_args!("{field} varint is longer than 5 bytes")))
        }

        /// Reads a flexible-version length prefix (unsigned varint N+1, 0 for null).
        fn compact_len(&mut self, field: &str) -> Result<Option<usize>> {
            let n = self.unsigned_varint(field)?;
            Ok(n.checked_sub(1).map(|len| len as usize))
        }

        /// Reads a compact nullable string (flexible versions).
        pub(crate) fn compact_nullable_string(&mut self, field: &str) -> Result<Option<String>> {
            let Some(len) = self.compact_len(field)? else {
                return Ok(None);
            };
            let bytes = self.take(len, field)?;
            self.utf8(bytes, field).map(Some)
        }

        /// Reads a compact non-nullable string (flexible versions).
        pub(crate) fn compact_string(&mut self, field: &str) -> Result<String> {
            match self.compact_nullable_string(field)? {
                Some(s) => Ok(s),
                None => Err(self.null_error(field)),
            }
        }

        /// Reads compact non-nullable bytes (flexible versions).
        pub(crate) fn compact_bytes(&mut self, field: &str) -> Result<&'a [u8]> {
            match self.compact_len(field)? {
                Some(len) => self.take(len, field),
                None => Err(self.null_error(field)),
            }
        }

        /// Reads a compact non-nullable array count (flexible versions), checked like
        /// [`array_len`](Self::array_len).
        pub(crate) fn compact_array_len(
            &mut self,
            field: &str,
            min_element_size: usize,
        ) -> Result<usize> {
            let Some(count) = self.compact_len(field)? else {
                return Err(self.null_error(field));
            };
            self.check_fits(count, min_element_size, field)?;
            Ok(count)
        }

        /// Skips a tagged-field section (flexible versions): a count, then per field a tag, a
        /// size and that many bytes. Unknown tags are ignored, as Kafka does.
        pub(crate) fn skip_tagged_fields(&mut self) -> Result<()> {
            let count = self.unsigned_varint("tagged field count")?;
            for _ in 0..count {
                self.unsigned_varint("tag")?;
                let size = self.unsigned_varint("tagged field size")?;
                self.take(size as usize, "tagged field")?;
            }
            Ok(())
        }
    }

    /// A big-endian writer. Values beyond the wire limits are truncated to fit and remembered,
    /// so [`try_finish`](Self::try_finish) can report them.
    pub(crate) struct Writer {
        buf: Vec<u8>,
        what: &'static str,
        overflow: Option<String>,
    }

    impl Writer {
        /// An empty writer; `what` names the message in error messages.
        pub(crate) fn new(what: &'static str) -> Self {
            Writer {
                buf: Vec::new(),
                what,
                overflow: None,
            }
        }

        fn note_overflow(&mut self, field: &str, len: usize, max: usize) {
            if self.overflow.is_none() {
                self.overflow = Some(format!(
                    "{}: {field} has length {len}, over the wire limit of {max}",
                    self.what
                ));
            }
        }

        /// Writes an int16.
        pub(crate) fn i16(&mut self, v: i16) {
            self.buf.extend_from_slice(&v.to_be_bytes());
        }

        /// Writes an int32.
        pub(crate) fn i32(&mut self, v: i32) {
            self.buf.extend_from_slice(&v.to_be_bytes());
        }

        /// Writes an int64.
        pub(crate) fn i64(&mut self, v: i64) {
            self.buf.extend_from_slice(&v.to_be_bytes());
        }

        /// Writes a non-nullable string (int16 length), truncated at a character boundary to
        /// 32767 bytes if longer.
        pub(crate) fn string(&mut self, field: &str, s: &str) {
            const MAX: usize = i16::MAX as usize;
            let mut end = s.len().min(MAX);
            while !s.is_char_boundary(end) {
                end -= 1;
            }
            if end < s.len() {
                self.note_overflow(field, s.len(), MAX);
            }
            let fitted = s.get(..end).unwrap_or_default();
            self.i16(fitted.len() as i16);
            self.buf.extend_from_slice(fitted.as_bytes());
        }

        /// Writes a nullable string (-1 for null).
        pub(crate) fn nullable_string(&mut self, field: &str, s: Option<&str>) {
            match s {
                Some(s) => self.string(field, s),
                None => self.i16(-1),
            }
        }

        /// Writes non-nullable bytes (int32 length), truncated to `i32::MAX` bytes if longer.
        pub(crate) fn bytes(&mut self, field: &str, b: &[u8]) {
            let n = self.array_len(field, b.len());
            self.buf.extend_from_slice(b.get(..n).unwrap_or_default());
        }

        /// Writes nullable bytes (-1 for null).
        pub(crate) fn nullable_bytes(&mut self, field: &str, b: Option<&[u8]>) {
            match b {
                Some(b) => self.bytes(field, b),
                None => self.i32(-1),
            }
        }

        /// Writes an array count (int32), capped at `i32::MAX`; returns the count written, which
        /// is how many elements the caller must write.
        pub(crate) fn array_len(&mut self, field: &str, len: usize) -> usize {
            const MAX: usize = i32::MAX as usize;
            if len > MAX {
                self.note_overflow(field, len, MAX);
            }
            let n = len.min(MAX);
            self.i32(n as i32);
            n
        }

        /// The bytes written, with any oversized values truncated.
        pub(crate) fn finish(self) -> Vec<u8> {
            self.buf
        }

        /// The bytes written, or an `InvalidBatch` error if a value had to be truncated.
        pub(crate) fn try_finish(self) -> Result<Vec<u8>> {
            match self.overflow {
                Some(reason) => Err(Error::invalid_batch(reason)),
                None => Ok(self.buf),
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn tp(topic: &str, partition: i32) -> TopicPartition {
        TopicPartition::new(topic, partition)
    }

    /// Appends an int16-length string.
    fn s(out: &mut Vec<u8>, v: &str) {
        out.extend_from_slice(&(v.len() as i16).to_be_bytes());
        out.extend_from_slice(v.as_bytes());
    }

    fn i16b(out: &mut Vec<u8>, v: i16) {
        out.extend_from_slice(&v.to_be_bytes());
    }

    fn i32b(out: &mut Vec<u8>, v: i32) {
        out.extend_from_slice(&v.to_be_bytes());
    }

    fn full_subscription() -> Subscription {
        Subscription {
            topics: vec!["orders".into(), "payments".into()],
            user_data: Some(Bytes::from_static(b"\x00\x01ud")),
            owned_partitions: vec![tp("orders", 0), tp("orders", 2), tp("payments", 1)],
            generation_id: 7,
            rack_id: Some("rack-a".into()),
        }
    }

    #[test]
    fn subscription_v3_bytes_match_the_spec() {
        let mut expected = Vec::new();
        i16b(&mut expected, 3); // version
        i32b(&mut expected, 2); // topics
        s(&mut expected, "orders");
        s(&mut expected, "payments");
        i32b(&mut expected, 4); // user_data
        expected.extend_from_slice(b"\x00\x01ud");
        i32b(&mut expected, 2); // owned_partitions
        s(&mut expected, "orders");
        i32b(&mut expected, 2);
        i32b(&mut expected, 0);
        i32b(&mut expected, 2);
        s(&mut expected, "payments");
        i32b(&mut expected, 1);
        i32b(&mut expected, 1);
        i32b(&mut expected, 7); // generation_id
        s(&mut expected, "rack-a"); // rack_id
        let sub = full_subscription();
        assert_eq!(sub.encode(), expected);
        assert_eq!(Subscription::decode(&expected).unwrap(), sub);
    }

    #[test]
    fn subscription_v0_decodes_with_defaults() {
        let mut v0 = Vec::new();
        i16b(&mut v0, 0);
        i32b(&mut v0, 1);
        s(&mut v0, "t0");
        i32b(&mut v0, -1); // null user data
        let sub = Subscription::decode(&v0).unwrap();
        assert_eq!(sub, Subscription::new(["t0"]));
        assert_eq!(sub.generation_id, -1);
    }

    #[test]
    fn subscription_v1_and_v2_decode() {
        let mut v1 = Vec::new();
        i16b(&mut v1, 1);
        i32b(&mut v1, 1);
        s(&mut v1, "t0");
        i32b(&mut v1, 0); // empty (non-null) user data
        i32b(&mut v1, 1);
        s(&mut v1, "t0");
        i32b(&mut v1, 1);
        i32b(&mut v1, 3);
        let sub = Subscription::decode(&v1).unwrap();
        assert_eq!(sub.user_data, Some(Bytes::new()));
        assert_eq!(sub.owned_partitions, vec![tp("t0", 3)]);
        assert_eq!(sub.generation_id, -1);
        assert_eq!(sub.rack_id, None);

        let mut v2 = v1.clone();
        v2[1] = 2;
        i32b(&mut v2, 42);
        let sub = Subscription::decode(&v2).unwrap();
        assert_eq!(sub.generation_id, 42);
        assert_eq!(sub.rack_id, None);
    }

    #[test]
    fn newer_versions_and_trailing_bytes_are_read_by_their_known_prefix() {
        let sub = full_subscription();
        let mut bytes = sub.encode();
        bytes[1] = 9; // a future version
        bytes.extend_from_slice(b"future fields");
        assert_eq!(Subscription::decode(&bytes).unwrap(), sub);

        let asg = Assignment::new(vec![tp("a", 1)]);
        let mut bytes = asg.encode();
        bytes[1] = 5;
        bytes.extend_from_slice(&[1, 2, 3]);
        assert_eq!(Assignment::decode(&bytes).unwrap(), asg);
    }

    #[test]
    fn assignment_bytes_match_the_spec() {
        let mut expected = Vec::new();
        i16b(&mut expected, 1);
        i32b(&mut expected, 2);
        s(&mut expected, "t0");
        i32b(&mut expected, 2);
        i32b(&mut expected, 0);
        i32b(&mut expected, 1);
        s(&mut expected, "t1");
        i32b(&mut expected, 1);
        i32b(&mut expected, 0);
        i32b(&mut expected, -1); // null user data
        let asg = Assignment::new(vec![tp("t0", 0), tp("t0", 1), tp("t1", 0)]);
        assert_eq!(asg.encode(), expected);
        assert_eq!(Assignment::decode(&expected).unwrap(), asg);

        // Version 0 has the same layout.
        expected[1] = 0;
        assert_eq!(Assignment::decode(&expected).unwrap(), asg);
    }

    #[test]
    fn unsorted_partitions_round_trip_in_order() {
        let asg = Assignment {
            partitions: vec![tp("b", 1), tp("a", 0), tp("b", 0), tp("b", 2)],
            user_data: Some(Bytes::from_static(b"x")),
        };
        assert_eq!(Assignment::decode(&asg.encode()).unwrap(), asg);
    }

    #[test]
    fn empty_negative_and_null_inputs_are_errors() {
        assert!(Subscription::decode(&[]).is_err());
        assert!(Assignment::decode(&[]).is_err());
        assert!(Subscription::decode(&[0xff, 0xff, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]).is_err());
        // Null topics array.
        assert!(
            Subscription::decode(&[0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]).is_err()
        );
        // Null topic name.
        assert!(
            Subscription::decode(&[0, 0, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]).is_err()
        );
        // Huge array count in a tiny buffer.
        assert!(Assignment::decode(&[0, 1, 0x7f, 0xff, 0xff, 0xff]).is_err());
        // Invalid UTF-8 topic.
        let mut bad = Vec::new();
        i16b(&mut bad, 0);
        i32b(&mut bad, 1);
        i16b(&mut bad, 1);
        bad.push(0xff);
        i32b(&mut bad, -1);
        assert!(Subscription::decode(&bad).is_err());
    }

    #[test]
    fn every_truncation_is_an_error() {
        let sub = full_subscription().encode();
        for len in 0..sub.len() {
            assert!(Subscription::decode(&sub[..len]).is_err(), "len {len}");
        }
        let asg = Assignment {
            partitions: vec![tp("t0", 0), tp("t1", 4)],
            user_data: Some(Bytes::from_static(b"abc")),
        }
        .encode();
        for len in 0..asg.len() {
            assert!(Assignment::decode(&asg[..len]).is_err(), "len {len}");
        }
    }

    #[test]
    fn try_encode_reports_oversized_strings() {
        let long = "é".repeat(20_000); // 40000 bytes
        let sub = Subscription::new([long.clone()]);
        assert!(sub.try_encode().is_err());
        let decoded = Subscription::decode(&sub.encode()).unwrap();
        assert!(i16::try_from(decoded.topics[0].len()).is_ok());
        assert!(long.starts_with(&decoded.topics[0]));
        assert_eq!(
            full_subscription().try_encode().unwrap(),
            full_subscription().encode()
        );
    }

    fn arb_tps() -> impl Strategy<Value = Vec<TopicPartition>> {
        proptest::collection::vec(("[a-c]{1,3}", 0..50i32), 0..8).prop_map(|v| {
            v.into_iter()
                .map(|(t, p)| TopicPartition::new(t, p))
                .collect()
        })
    }

    fn arb_bytes() -> impl Strategy<Value = Option<Bytes>> {
        proptest::option::of(proptest::collection::vec(any::<u8>(), 0..16).prop_map(Bytes::from))
    }

    proptest! {
        #[test]
        fn subscription_round_trips(
            topics in proptest::collection::vec("\\PC{0,12}", 0..6),
            user_data in arb_bytes(),
            owned_partitions in arb_tps(),
            generation_id in any::<i32>(),
            rack_id in proptest::option::of("\\PC{0,8}"),
        ) {
            let sub = Subscription { topics, user_data, owned_partitions, generation_id, rack_id };
            prop_assert_eq!(Subscription::decode(&sub.try_encode().unwrap()).unwrap(), sub);
        }

        #[test]
        fn assignment_round_trips(partitions in arb_tps(), user_data in arb_bytes()) {
            let asg = Assignment { partitions, user_data };
            prop_assert_eq!(Assignment::decode(&asg.try_encode().unwrap()).unwrap(), asg);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..96)) {
            let _ = Subscription::decode(&bytes);
            let _ = Assignment::decode(&bytes);
        }

        #[test]
        fn corrupted_encodings_never_panic(
            partitions in arb_tps(),
            flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        ) {
            let mut bytes = Subscription { owned_partitions: partitions, ..full_subscription() }.encode();
            for (at, v) in flips {
                let i = at.index(bytes.len());
                bytes[i] = v;
            }
            let _ = Subscription::decode(&bytes);
            let _ = Assignment::decode(&bytes);
        }
    }
}
