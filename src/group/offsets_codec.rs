//! Keys and values of the records in Kafka's `__consumer_offsets` topic.
//!
//! Every key starts with an int16 that is both the key's version and the record type; every value
//! starts with an int16 value version. A record with a null value (a tombstone) deletes its key;
//! callers handle that before decoding a value. The layouts follow Kafka's schemas in
//! `group-coordinator/src/main/resources/common/message/` (big-endian; non-flexible strings are an
//! int16 length and UTF-8, bytes an int32 length, arrays an int32 count; flexible versions use
//! unsigned-varint "compact" lengths (N+1, 0 for null) and end every struct with tagged fields):
//!
//! - `OffsetCommitKey.json` (record types 0 and 1): `group string, topic string,
//!   partition int32`. Written as type 1; type 0 is decoded too.
//! - `GroupMetadataKey.json` (record type 2): `group string`.
//! - `OffsetCommitValue.json` (versions 0-4, flexible from 4): `offset int64`,
//!   `leaderEpoch int32` (v3+, default -1), `metadata string`, `commitTimestamp int64`,
//!   `expireTimestamp int64` (v1 only; read and dropped). Written as version 3.
//! - `GroupMetadataValue.json` (versions 0-4, flexible from 4): `protocolType string`,
//!   `generation int32`, `protocol nullable string`, `leader nullable string`,
//!   `currentStateTimestamp int64` (v2+, default -1), `members [memberId string,
//!   groupInstanceId nullable string (v3+), clientId string, clientHost string,
//!   rebalanceTimeout int32 (v1+), sessionTimeout int32, subscription bytes, assignment bytes]`.
//!   Written as version 3. Version 0 lacks the rebalance timeout; it decodes as the session timeout,
//!   as Kafka's coordinator loads it.
//!
//! Value versions newer than 4 are decoded with the version 4 layout, ignoring unknown tagged
//! fields (KIP-915: new fields of these records are tagged fields, and a coordinator reads unknown
//! versions as the highest one it knows). Key types other than 0, 1 and 2 (the KIP-848 consumer
//! group and share group records) are an error; [`OffsetsKey::record_type`] lets a loader skip
//! them, as Kafka does. Trailing bytes after the known fields are ignored, like Kafka's readers do.

use bytes::Bytes;

use super::protocol::wire::{Reader, Writer};
use crate::error::Result;

/// Record type of offset commit keys written by [`OffsetsKey::encode`]; type 0 is the same layout.
const OFFSET_COMMIT_KEY_TYPE: i16 = 1;
/// Record type of group metadata keys.
const GROUP_METADATA_KEY_TYPE: i16 = 2;
/// Version written by [`OffsetValue::encode`].
const OFFSET_VALUE_ENCODE_VERSION: i16 = 3;
/// Version written by [`GroupMetadata::encode`].
const GROUP_VALUE_ENCODE_VERSION: i16 = 3;
/// First flexible version of both value schemas.
const FIRST_FLEXIBLE_VERSION: i16 = 4;

/// The key of a committed offset (Kafka's `OffsetCommitKey`, record type 1, also read as type 0).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OffsetKey {
    /// The consumer group id.
    pub group: String,
    /// The topic name.
    pub topic: String,
    /// The partition.
    pub partition: i32,
}

/// The key of a `__consumer_offsets` record.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum OffsetsKey {
    /// A committed offset (record type 1); the value is an [`OffsetValue`].
    Offset(OffsetKey),
    /// A group's metadata (`GroupMetadataKey`, record type 2), holding the group id; the value is
    /// a [`GroupMetadata`].
    Group(String),
}

impl OffsetsKey {
    /// The group id the record belongs to.
    #[cfg(test)]
    pub fn group(&self) -> &str {
        match self {
            OffsetsKey::Offset(key) => &key.group,
            OffsetsKey::Group(group) => group,
        }
    }

    /// Encodes the key: `int16 1, group, topic, partition` or `int16 2, group`.
    ///
    /// A string over 32767 bytes is truncated to fit; [`try_encode`](Self::try_encode) reports it
    /// instead.
    pub fn encode(&self) -> Vec<u8> {
        self.write().finish()
    }

    /// Like [`encode`](Self::encode), but returns `Error::InvalidBatch` if a string does not fit
    /// the wire format instead of truncating it.
    #[cfg(test)]
    pub fn try_encode(&self) -> Result<Vec<u8>> {
        self.write().try_finish()
    }

    fn write(&self) -> Writer {
        let mut w = Writer::new("__consumer_offsets key");
        match self {
            OffsetsKey::Offset(key) => {
                w.i16(OFFSET_COMMIT_KEY_TYPE);
                w.string("group", &key.group);
                w.string("topic", &key.topic);
                w.i32(key.partition);
            }
            OffsetsKey::Group(group) => {
                w.i16(GROUP_METADATA_KEY_TYPE);
                w.string("group", group);
            }
        }
        w
    }

    /// The record type (the key's leading int16) without decoding the rest, so a loader can skip
    /// types it does not handle. An empty, one-byte or negative prefix is an error.
    #[cfg(test)]
    pub fn record_type(buf: &[u8]) -> Result<i16> {
        Reader::new(buf, "__consumer_offsets key").version()
    }

    /// Decodes a key of record type 0, 1 or 2; other types, truncation, null strings and invalid
    /// UTF-8 are `Error::InvalidBatch`.
    pub fn decode(buf: &[u8]) -> Result<OffsetsKey> {
        let mut r = Reader::new(buf, "__consumer_offsets key");
        match r.version()? {
            0 | OFFSET_COMMIT_KEY_TYPE => Ok(OffsetsKey::Offset(OffsetKey {
                group: r.string("group")?,
                topic: r.string("topic")?,
                partition: r.i32("partition")?,
            })),
            GROUP_METADATA_KEY_TYPE => Ok(OffsetsKey::Group(r.string("group")?)),
            other => Err(r.error(format_args!(
                "unsupported record type {other} (only offset commits, 0-1, and group metadata, 2, \
                 are handled)"
            ))),
        }
    }
}

/// A committed offset (Kafka's `OffsetCommitValue`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OffsetValue {
    /// The committed offset: the offset of the next record the group will read.
    pub offset: i64,
    /// The leader epoch of the last consumed record, -1 if unknown (versions before 3).
    pub leader_epoch: i32,
    /// Application metadata committed with the offset.
    pub metadata: String,
    /// When the commit happened, in milliseconds since the Unix epoch.
    pub commit_timestamp: i64,
}

impl OffsetValue {
    /// Encodes the value as `OffsetCommitValue` version 3.
    ///
    /// Metadata over 32767 bytes is truncated to fit; [`try_encode`](Self::try_encode) reports it
    /// instead.
    pub fn encode(&self) -> Vec<u8> {
        self.write().finish()
    }

    /// Like [`encode`](Self::encode), but returns `Error::InvalidBatch` if the metadata does not
    /// fit the wire format instead of truncating it.
    #[cfg(test)]
    pub fn try_encode(&self) -> Result<Vec<u8>> {
        self.write().try_finish()
    }

    fn write(&self) -> Writer {
        let mut w = Writer::new("offset commit value");
        w.i16(OFFSET_VALUE_ENCODE_VERSION);
        w.i64(self.offset);
        w.i32(self.leader_epoch);
        w.string("metadata", &self.metadata);
        w.i64(self.commit_timestamp);
        w
    }

    /// Decodes an `OffsetCommitValue` of versions 0-4 (newer ones as version 4).
    ///
    /// Versions before 3 get leader epoch -1; version 1's expire timestamp is read and dropped.
    pub fn decode(buf: &[u8]) -> Result<OffsetValue> {
        let mut r = Reader::new(buf, "offset commit value");
        let version = r.version()?;
        let offset = r.i64("offset")?;
        if version >= FIRST_FLEXIBLE_VERSION {
            let leader_epoch = r.i32("leader_epoch")?;
            let metadata = r.compact_string("metadata")?;
            let commit_timestamp = r.i64("commit_timestamp")?;
            r.skip_tagged_fields()?;
            return Ok(OffsetValue {
                offset,
                leader_epoch,
                metadata,
                commit_timestamp,
            });
        }
        let leader_epoch = if version >= 3 {
            r.i32("leader_epoch")?
        } else {
            -1
        };
        let metadata = r.string("metadata")?;
        let commit_timestamp = r.i64("commit_timestamp")?;
        if version == 1 {
            r.i64("expire_timestamp")?;
        }
        Ok(OffsetValue {
            offset,
            leader_epoch,
            metadata,
            commit_timestamp,
        })
    }
}

/// A classic group's state (Kafka's `GroupMetadataValue`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMetadata {
    /// The protocol type, `consumer` for consumer groups (`connect` for Connect workers etc.).
    pub protocol_type: String,
    /// The generation id.
    pub generation: i32,
    /// The selected protocol (assignor name); `None` while the group is empty.
    pub protocol: Option<String>,
    /// The leader's member id; `None` while the group is empty.
    pub leader: Option<String>,
    /// When the group last changed state, in milliseconds since the Unix epoch (-1 if unknown,
    /// versions before 2).
    pub state_timestamp: i64,
    /// The members.
    pub members: Vec<GroupMemberMetadata>,
}

/// One member of a [`GroupMetadata`] (Kafka's `MemberMetadata`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMemberMetadata {
    /// The member id the coordinator gave the member.
    pub member_id: String,
    /// The static member id (`group.instance.id`), if any (version 3+).
    pub group_instance_id: Option<String>,
    /// The client id.
    pub client_id: String,
    /// The client's host, as Kafka prints it (`/127.0.0.1`).
    pub client_host: String,
    /// The rebalance timeout (the session timeout in version 0 records).
    pub rebalance_timeout_ms: i32,
    /// The session timeout.
    pub session_timeout_ms: i32,
    /// The member's protocol metadata for the selected protocol (for consumers a
    /// ConsumerProtocol subscription).
    pub subscription: Bytes,
    /// The member's assignment (for consumers a ConsumerProtocol assignment).
    pub assignment: Bytes,
}

impl GroupMetadata {
    /// Encodes the group as `GroupMetadataValue` version 3.
    ///
    /// Values beyond the wire format's limits (strings over 32767 bytes) are truncated to fit;
    /// [`try_encode`](Self::try_encode) reports them instead.
    pub fn encode(&self) -> Vec<u8> {
        self.write().finish()
    }

    /// Like [`encode`](Self::encode), but returns `Error::InvalidBatch` if a value does not fit
    /// the wire format instead of truncating it.
    #[cfg(test)]
    pub fn try_encode(&self) -> Result<Vec<u8>> {
        self.write().try_finish()
    }

    fn write(&self) -> Writer {
        let mut w = Writer::new("group metadata value");
        w.i16(GROUP_VALUE_ENCODE_VERSION);
        w.string("protocol_type", &self.protocol_type);
        w.i32(self.generation);
        w.nullable_string("protocol", self.protocol.as_deref());
        w.nullable_string("leader", self.leader.as_deref());
        w.i64(self.state_timestamp);
        let n = w.array_len("members", self.members.len());
        for member in self.members.iter().take(n) {
            w.string("member_id", &member.member_id);
            w.nullable_string("group_instance_id", member.group_instance_id.as_deref());
            w.string("client_id", &member.client_id);
            w.string("client_host", &member.client_host);
            w.i32(member.rebalance_timeout_ms);
            w.i32(member.session_timeout_ms);
            w.bytes("subscription", &member.subscription);
            w.bytes("assignment", &member.assignment);
        }
        w
    }

    /// Decodes a `GroupMetadataValue` of versions 0-4 (newer ones as version 4).
    ///
    /// Fields a version lacks take their defaults: state timestamp -1, no group instance id,
    /// and the session timeout as rebalance timeout.
    pub fn decode(buf: &[u8]) -> Result<GroupMetadata> {
        let mut r = Reader::new(buf, "group metadata value");
        let version = r.version()?;
        let flexible = version >= FIRST_FLEXIBLE_VERSION;
        let protocol_type = string(&mut r, flexible, "protocol_type")?;
        let generation = r.i32("generation")?;
        let protocol = nullable_string(&mut r, flexible, "protocol")?;
        let leader = nullable_string(&mut r, flexible, "leader")?;
        let state_timestamp = if version >= 2 {
            r.i64("current_state_timestamp")?
        } else {
            -1
        };
        // Smallest member: three empty strings, two int32s and two empty byte strings (v0), or
        // with compact lengths, a null instance id and an empty tag section (v4).
        let n = if flexible {
            r.compact_array_len("members", 3 + 1 + 4 + 4 + 2 + 1)?
        } else {
            r.array_len("members", 3 * 2 + 4 + 2 * 4)?
        };
        let mut members = Vec::with_capacity(n);
        for _ in 0..n {
            let member_id = string(&mut r, flexible, "member_id")?;
            let group_instance_id = if version >= 3 {
                nullable_string(&mut r, flexible, "group_instance_id")?
            } else {
                None
            };
            let client_id = string(&mut r, flexible, "client_id")?;
            let client_host = string(&mut r, flexible, "client_host")?;
            let rebalance_timeout = if version >= 1 {
                Some(r.i32("rebalance_timeout")?)
            } else {
                None
            };
            let session_timeout_ms = r.i32("session_timeout")?;
            let subscription = Bytes::copy_from_slice(bytes(&mut r, flexible, "subscription")?);
            let assignment = Bytes::copy_from_slice(bytes(&mut r, flexible, "assignment")?);
            if flexible {
                r.skip_tagged_fields()?;
            }
            members.push(GroupMemberMetadata {
                member_id,
                group_instance_id,
                client_id,
                client_host,
                rebalance_timeout_ms: rebalance_timeout.unwrap_or(session_timeout_ms),
                session_timeout_ms,
                subscription,
                assignment,
            });
        }
        if flexible {
            r.skip_tagged_fields()?;
        }
        Ok(GroupMetadata {
            protocol_type,
            generation,
            protocol,
            leader,
            state_timestamp,
            members,
        })
    }
}

/// Reads a non-nullable string in the classic or compact form.
fn string(r: &mut Reader<'_>, flexible: bool, field: &str) -> Result<String> {
    if flexible {
        r.compact_string(field)
    } else {
        r.string(field)
    }
}

/// Reads a nullable string in the classic or compact form.
fn nullable_string(r: &mut Reader<'_>, flexible: bool, field: &str) -> Result<Option<String>> {
    if flexible {
        r.compact_nullable_string(field)
    } else {
        r.nullable_string(field)
    }
}

/// Reads non-nullable bytes in the classic or compact form.
fn bytes<'a>(r: &mut Reader<'a>, flexible: bool, field: &str) -> Result<&'a [u8]> {
    if flexible {
        r.compact_bytes(field)
    } else {
        r.bytes(field)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn s(out: &mut Vec<u8>, v: &str) {
        out.extend_from_slice(&(v.len() as i16).to_be_bytes());
        out.extend_from_slice(v.as_bytes());
    }

    /// Compact string: unsigned varint length + 1 (all test strings are under 127 bytes).
    fn cs(out: &mut Vec<u8>, v: &str) {
        out.push(v.len() as u8 + 1);
        out.extend_from_slice(v.as_bytes());
    }

    fn be<const N: usize>(out: &mut Vec<u8>, bytes: [u8; N]) {
        out.extend_from_slice(&bytes);
    }

    fn assert_every_prefix_fails<T: std::fmt::Debug>(bytes: &[u8], decode: fn(&[u8]) -> Result<T>) {
        for len in 0..bytes.len() {
            assert!(
                decode(&bytes[..len]).is_err(),
                "prefix of {len} bytes decoded"
            );
        }
    }

    fn sample_group() -> GroupMetadata {
        GroupMetadata {
            protocol_type: "consumer".into(),
            generation: 5,
            protocol: Some("range".into()),
            leader: Some("m-1".into()),
            state_timestamp: 1_700_000_000_000,
            members: vec![
                GroupMemberMetadata {
                    member_id: "m-1".into(),
                    group_instance_id: Some("static-1".into()),
                    client_id: "app".into(),
                    client_host: "/10.0.0.1".into(),
                    rebalance_timeout_ms: 300_000,
                    session_timeout_ms: 45_000,
                    subscription: Bytes::from_static(b"\x00\x00sub"),
                    assignment: Bytes::from_static(b"\x00\x01asg"),
                },
                GroupMemberMetadata {
                    member_id: "m-2".into(),
                    group_instance_id: None,
                    client_id: String::new(),
                    client_host: "/10.0.0.2".into(),
                    rebalance_timeout_ms: 60_000,
                    session_timeout_ms: 10_000,
                    subscription: Bytes::new(),
                    assignment: Bytes::new(),
                },
            ],
        }
    }

    #[test]
    fn keys_match_the_spec() {
        let key = OffsetsKey::Offset(OffsetKey {
            group: "g1".into(),
            topic: "orders".into(),
            partition: 3,
        });
        let mut expected = Vec::new();
        be(&mut expected, 1i16.to_be_bytes());
        s(&mut expected, "g1");
        s(&mut expected, "orders");
        be(&mut expected, 3i32.to_be_bytes());
        assert_eq!(key.encode(), expected);
        assert_eq!(OffsetsKey::decode(&expected).unwrap(), key);
        assert_eq!(OffsetsKey::record_type(&expected).unwrap(), 1);
        assert_eq!(key.group(), "g1");
        assert_every_prefix_fails(&expected, OffsetsKey::decode);

        // Legacy record type 0 has the same layout.
        expected[1] = 0;
        assert_eq!(OffsetsKey::decode(&expected).unwrap(), key);

        let group = OffsetsKey::Group("g1".into());
        assert_eq!(group.encode(), b"\x00\x02\x00\x02g1");
        assert_eq!(OffsetsKey::decode(b"\x00\x02\x00\x02g1").unwrap(), group);
        assert_every_prefix_fails(b"\x00\x02\x00\x02g1", OffsetsKey::decode);
    }

    #[test]
    fn unknown_key_types_are_errors() {
        // Type 3 is a KIP-848 ConsumerGroupMetadataKey.
        assert_eq!(OffsetsKey::record_type(b"\x00\x03\x00\x01g").unwrap(), 3);
        assert!(OffsetsKey::decode(b"\x00\x03\x00\x01g").is_err());
        assert!(OffsetsKey::decode(b"\xff\xff\x00\x01g").is_err());
        assert!(OffsetsKey::record_type(b"\x00").is_err());
        assert!(OffsetsKey::decode(b"").is_err());
        // Null group.
        assert!(OffsetsKey::decode(b"\x00\x02\xff\xff").is_err());
    }

    #[test]
    fn offset_value_v3_matches_the_spec() {
        let value = OffsetValue {
            offset: 42,
            leader_epoch: 7,
            metadata: "meta".into(),
            commit_timestamp: 1_700_000_000_123,
        };
        let mut expected = Vec::new();
        be(&mut expected, 3i16.to_be_bytes());
        be(&mut expected, 42i64.to_be_bytes());
        be(&mut expected, 7i32.to_be_bytes());
        s(&mut expected, "meta");
        be(&mut expected, 1_700_000_000_123i64.to_be_bytes());
        assert_eq!(value.encode(), expected);
        assert_eq!(OffsetValue::decode(&expected).unwrap(), value);
        assert_every_prefix_fails(&expected, OffsetValue::decode);
    }

    #[test]
    fn offset_value_old_versions_decode() {
        let mut v0 = Vec::new();
        be(&mut v0, 0i16.to_be_bytes());
        be(&mut v0, 10i64.to_be_bytes());
        s(&mut v0, "");
        be(&mut v0, 99i64.to_be_bytes());
        let expected = OffsetValue {
            offset: 10,
            leader_epoch: -1,
            metadata: String::new(),
            commit_timestamp: 99,
        };
        assert_eq!(OffsetValue::decode(&v0).unwrap(), expected);
        let mut v2 = v0.clone();
        v2[1] = 2;
        assert_eq!(OffsetValue::decode(&v2).unwrap(), expected);

        let mut v1 = v0.clone();
        v1[1] = 1;
        assert!(
            OffsetValue::decode(&v1).is_err(),
            "v1 needs the expire timestamp"
        );
        be(&mut v1, 12345i64.to_be_bytes());
        assert_eq!(OffsetValue::decode(&v1).unwrap(), expected);
        assert_every_prefix_fails(&v1, OffsetValue::decode);
    }

    #[test]
    fn offset_value_v4_flexible_decodes() {
        let mut v4 = Vec::new();
        be(&mut v4, 4i16.to_be_bytes());
        be(&mut v4, 1000i64.to_be_bytes());
        be(&mut v4, 2i32.to_be_bytes());
        cs(&mut v4, "m");
        be(&mut v4, 77i64.to_be_bytes());
        v4.extend_from_slice(&[1, 0, 2, 0xaa, 0xbb]); // one unknown tagged field (tag 0, 2 bytes)
        let expected = OffsetValue {
            offset: 1000,
            leader_epoch: 2,
            metadata: "m".into(),
            commit_timestamp: 77,
        };
        assert_eq!(OffsetValue::decode(&v4).unwrap(), expected);
        assert_every_prefix_fails(&v4, OffsetValue::decode);
        // A future version reads as version 4.
        let mut v9 = v4.clone();
        v9[1] = 9;
        assert_eq!(OffsetValue::decode(&v9).unwrap(), expected);
        // Null metadata (compact length 0) is rejected.
        let mut null = v4[..14].to_vec();
        null.push(0);
        be(&mut null, 77i64.to_be_bytes());
        null.push(0);
        assert!(OffsetValue::decode(&null).is_err());
    }

    #[test]
    fn group_metadata_v3_matches_the_spec() {
        let group = GroupMetadata {
            members: vec![sample_group().members[0].clone()],
            ..sample_group()
        };
        let mut expected = Vec::new();
        be(&mut expected, 3i16.to_be_bytes());
        s(&mut expected, "consumer");
        be(&mut expected, 5i32.to_be_bytes());
        s(&mut expected, "range");
        s(&mut expected, "m-1");
        be(&mut expected, 1_700_000_000_000i64.to_be_bytes());
        be(&mut expected, 1i32.to_be_bytes());
        s(&mut expected, "m-1");
        s(&mut expected, "static-1");
        s(&mut expected, "app");
        s(&mut expected, "/10.0.0.1");
        be(&mut expected, 300_000i32.to_be_bytes());
        be(&mut expected, 45_000i32.to_be_bytes());
        be(&mut expected, 5i32.to_be_bytes());
        expected.extend_from_slice(b"\x00\x00sub");
        be(&mut expected, 5i32.to_be_bytes());
        expected.extend_from_slice(b"\x00\x01asg");
        assert_eq!(group.encode(), expected);
        assert_eq!(GroupMetadata::decode(&expected).unwrap(), group);
        assert_every_prefix_fails(&expected, GroupMetadata::decode);
    }

    #[test]
    fn group_metadata_v0_decodes_with_defaults() {
        let mut v0 = Vec::new();
        be(&mut v0, 0i16.to_be_bytes());
        s(&mut v0, "consumer");
        be(&mut v0, 1i32.to_be_bytes());
        be(&mut v0, (-1i16).to_be_bytes()); // null protocol
        be(&mut v0, (-1i16).to_be_bytes()); // null leader
        be(&mut v0, 1i32.to_be_bytes());
        s(&mut v0, "m");
        s(&mut v0, "c");
        s(&mut v0, "h");
        be(&mut v0, 30_000i32.to_be_bytes());
        be(&mut v0, 0i32.to_be_bytes());
        be(&mut v0, 1i32.to_be_bytes());
        v0.push(9);
        let group = GroupMetadata::decode(&v0).unwrap();
        assert_eq!(group.protocol, None);
        assert_eq!(group.leader, None);
        assert_eq!(group.state_timestamp, -1);
        let member = &group.members[0];
        assert_eq!(member.group_instance_id, None);
        assert_eq!(member.rebalance_timeout_ms, 30_000);
        assert_eq!(member.session_timeout_ms, 30_000);
        assert_eq!(member.subscription, Bytes::new());
        assert_eq!(member.assignment, Bytes::from_static(&[9]));
        assert_every_prefix_fails(&v0, GroupMetadata::decode);
    }

    #[test]
    fn group_metadata_v4_flexible_decodes() {
        let mut v4 = Vec::new();
        be(&mut v4, 4i16.to_be_bytes());
        cs(&mut v4, "consumer");
        be(&mut v4, 2i32.to_be_bytes());
        cs(&mut v4, "sticky");
        v4.push(0); // null leader
        be(&mut v4, 5i64.to_be_bytes());
        v4.push(2); // one member
        cs(&mut v4, "m");
        v4.push(0); // null group instance id
        cs(&mut v4, "c");
        cs(&mut v4, "h");
        be(&mut v4, 1i32.to_be_bytes());
        be(&mut v4, 2i32.to_be_bytes());
        v4.extend_from_slice(&[3, 0xa, 0xb]); // subscription, 2 bytes
        v4.push(1); // empty assignment
        v4.extend_from_slice(&[1, 5, 1, 0xcc]); // member tagged field 5, 1 byte
        v4.push(0); // no top-level tagged fields
        let group = GroupMetadata::decode(&v4).unwrap();
        assert_eq!(
            group,
            GroupMetadata {
                protocol_type: "consumer".into(),
                generation: 2,
                protocol: Some("sticky".into()),
                leader: None,
                state_timestamp: 5,
                members: vec![GroupMemberMetadata {
                    member_id: "m".into(),
                    group_instance_id: None,
                    client_id: "c".into(),
                    client_host: "h".into(),
                    rebalance_timeout_ms: 1,
                    session_timeout_ms: 2,
                    subscription: Bytes::from_static(&[0xa, 0xb]),
                    assignment: Bytes::new(),
                }],
            }
        );
        assert_every_prefix_fails(&v4, GroupMetadata::decode);
    }

    #[test]
    fn round_trips_and_truncation() {
        let group = sample_group();
        let bytes = group.encode();
        assert_eq!(GroupMetadata::decode(&bytes).unwrap(), group);
        assert_every_prefix_fails(&bytes, GroupMetadata::decode);
        let empty = GroupMetadata {
            protocol: None,
            leader: None,
            members: Vec::new(),
            ..sample_group()
        };
        assert_eq!(GroupMetadata::decode(&empty.encode()).unwrap(), empty);
    }

    #[test]
    fn oversized_strings_are_reported_by_try_encode() {
        let value = OffsetValue {
            offset: 1,
            leader_epoch: -1,
            metadata: "x".repeat(40_000),
            commit_timestamp: 0,
        };
        assert!(value.try_encode().is_err());
        let decoded = OffsetValue::decode(&value.encode()).unwrap();
        assert_eq!(decoded.metadata.len(), i16::MAX as usize);
        assert!(OffsetsKey::Group("g".repeat(40_000)).try_encode().is_err());
    }

    fn arb_member() -> impl Strategy<Value = GroupMemberMetadata> {
        (
            (
                "\\PC{0,10}",
                proptest::option::of("\\PC{0,10}"),
                "\\PC{0,10}",
                "\\PC{0,10}",
            ),
            (any::<i32>(), any::<i32>()),
            (
                proptest::collection::vec(any::<u8>(), 0..20),
                proptest::collection::vec(any::<u8>(), 0..20),
            ),
        )
            .prop_map(
                |((member_id, group_instance_id, client_id, client_host), (rb, st), (sub, asg))| {
                    GroupMemberMetadata {
                        member_id,
                        group_instance_id,
                        client_id,
                        client_host,
                        rebalance_timeout_ms: rb,
                        session_timeout_ms: st,
                        subscription: Bytes::from(sub),
                        assignment: Bytes::from(asg),
                    }
                },
            )
    }

    proptest! {
        #[test]
        fn keys_round_trip(group in "\\PC{0,20}", topic in "\\PC{0,20}", partition in any::<i32>(), offset_key in any::<bool>()) {
            let key = if offset_key {
                OffsetsKey::Offset(OffsetKey { group, topic, partition })
            } else {
                OffsetsKey::Group(group)
            };
            prop_assert_eq!(OffsetsKey::decode(&key.try_encode().unwrap()).unwrap(), key);
        }

        #[test]
        fn values_round_trip(
            offset in any::<i64>(),
            leader_epoch in any::<i32>(),
            metadata in "\\PC{0,40}",
            commit_timestamp in any::<i64>(),
        ) {
            let value = OffsetValue { offset, leader_epoch, metadata, commit_timestamp };
            prop_assert_eq!(OffsetValue::decode(&value.try_encode().unwrap()).unwrap(), value);
        }

        #[test]
        fn groups_round_trip(
            protocol_type in "\\PC{0,10}",
            generation in any::<i32>(),
            protocol in proptest::option::of("\\PC{0,10}"),
            leader in proptest::option::of("\\PC{0,10}"),
            state_timestamp in any::<i64>(),
            members in proptest::collection::vec(arb_member(), 0..4),
        ) {
            let group = GroupMetadata { protocol_type, generation, protocol, leader, state_timestamp, members };
            prop_assert_eq!(GroupMetadata::decode(&group.try_encode().unwrap()).unwrap(), group);
        }

        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..128)) {
            let _ = OffsetsKey::decode(&bytes);
            let _ = OffsetsKey::record_type(&bytes);
            let _ = OffsetValue::decode(&bytes);
            let _ = GroupMetadata::decode(&bytes);
        }

        #[test]
        fn garbage_after_a_valid_version_never_panics(
            version in 0i16..6,
            rest in proptest::collection::vec(any::<u8>(), 0..128),
        ) {
            let mut bytes = version.to_be_bytes().to_vec();
            bytes.extend_from_slice(&rest);
            let _ = OffsetsKey::decode(&bytes);
            let _ = OffsetValue::decode(&bytes);
            let _ = GroupMetadata::decode(&bytes);
        }

        #[test]
        fn corrupted_group_records_never_panic(
            flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
            flexible in any::<bool>(),
        ) {
            let mut bytes = sample_group().encode();
            if flexible {
                bytes[1] = 4;
            }
            for (at, v) in flips {
                let i = at.index(bytes.len());
                bytes[i] = v;
            }
            let _ = GroupMetadata::decode(&bytes);
        }
    }
}
