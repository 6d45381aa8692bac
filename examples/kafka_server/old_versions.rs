//! Requests at versions older than the wire codec decodes, which Kafka 3.9 still serves:
//! read and answered here in each version's own layout (Kafka's
//! `clients/src/main/resources/common/message/*.json`).
//!
//! - Produce v0-v2 and Fetch v0-v3 carry the old message formats (magic 0 and 1), which are
//!   not stored here: every partition is answered with UNSUPPORTED_VERSION, so the client
//!   reports an error instead of waiting on a closed connection.
//! - ListOffsets v0 answers Kafka's segment-granular offset lists (`max_num_offsets`).
//! - OffsetCommit v0/v1 and OffsetFetch v0 use the group's offsets. Kafka kept v0 offsets
//!   in ZooKeeper (KRaft refuses them); one node has one offset store, so a v0 commit is a
//!   standalone commit (no member, generation -1) and a v0 fetch reads the same offsets.
//! - CreateTopics v0/v1 and DeleteTopics v0 are the later versions without the throttle
//!   time (and v0 of CreateTopics without `validate_only` and error messages).

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{
    ApiKey, CreateTopicsRequest, DeleteTopicsRequest, OffsetFetchRequest, RequestHeader,
};
use kafka_protocol::protocol::{Decodable, StrBytes};
use topiclog::OffsetAndMetadata;

use super::{Broker, Reply, code, encode, topic_name};

/// A bounds-checked reader of the classic (non-flexible) encodings.
struct Reader(Bytes);

impl Reader {
    fn take(&mut self, n: usize) -> Result<Bytes, String> {
        if self.0.len() < n {
            return Err(format!("{n} bytes wanted, {} left", self.0.len()));
        }
        Ok(self.0.split_to(n))
    }

    fn fixed<const N: usize>(&mut self) -> Result<[u8; N], String> {
        let b = self.take(N)?;
        <[u8; N]>::try_from(b.as_ref()).map_err(|_| format!("{N} bytes wanted"))
    }

    fn i16(&mut self) -> Result<i16, String> {
        self.fixed().map(i16::from_be_bytes)
    }

    fn i32(&mut self) -> Result<i32, String> {
        self.fixed().map(i32::from_be_bytes)
    }

    fn i64(&mut self) -> Result<i64, String> {
        self.fixed().map(i64::from_be_bytes)
    }

    fn nullable_string(&mut self) -> Result<Option<String>, String> {
        let len = self.i16()?;
        let Ok(len) = usize::try_from(len) else {
            return Ok(None);
        };
        let b = self.take(len)?;
        String::from_utf8(b.to_vec())
            .map(Some)
            .map_err(|_| "a string is not UTF-8".to_owned())
    }

    fn string(&mut self) -> Result<String, String> {
        self.nullable_string()?
            .ok_or_else(|| "a null string where one is required".to_owned())
    }

    /// Skips a nullable byte array (records).
    fn skip_bytes(&mut self) -> Result<(), String> {
        if let Ok(len) = usize::try_from(self.i32()?) {
            self.take(len)?;
        }
        Ok(())
    }

    /// An array; each element reads at least one byte, so a bogus count fails on the data
    /// instead of allocating for it.
    fn array<T>(
        &mut self,
        mut element: impl FnMut(&mut Reader) -> Result<T, String>,
    ) -> Result<Vec<T>, String> {
        let count = self.i32()?;
        let count = usize::try_from(count).map_err(|_| format!("array count {count}"))?;
        let mut out = Vec::new();
        for _ in 0..count {
            out.push(element(self)?);
        }
        Ok(out)
    }
}

/// Writers of the classic encodings.
fn put_string(buf: &mut BytesMut, s: &str) {
    put_len16(buf, s.len());
    buf.put_slice(s.as_bytes());
}

fn put_nullable_string(buf: &mut BytesMut, s: Option<&str>) {
    match s {
        Some(s) => put_string(buf, s),
        None => buf.put_i16(-1),
    }
}

fn put_len16(buf: &mut BytesMut, n: usize) {
    buf.put_i16(i16::try_from(n).unwrap_or(i16::MAX));
}

fn put_count(buf: &mut BytesMut, n: usize) {
    buf.put_i32(i32::try_from(n).unwrap_or(i32::MAX));
}

/// A request's topics with their partitions' fields, as read.
type Topics<P> = Vec<(String, Vec<P>)>;

/// A response body (after the correlation id) in response header v0.
fn reply(correlation_id: i32, body: &BytesMut) -> Reply {
    let mut out = Vec::with_capacity(4 + body.len());
    out.extend_from_slice(&correlation_id.to_be_bytes());
    out.extend_from_slice(body);
    Reply::Send(out)
}

impl Broker {
    /// Answers `key` at a `version` below the codec's range (called with the whole frame).
    pub(super) fn handle_old(
        &self,
        key: ApiKey,
        version: i16,
        correlation_id: i32,
        frame: Bytes,
    ) -> Reply {
        let mut body = frame;
        // Every version handled here has the classic request header (v1).
        let header = match RequestHeader::decode(&mut body, 1) {
            Ok(h) => h,
            Err(e) => return Reply::Close(format!("bad request header: {e}")),
        };
        let mut r = Reader(body);
        let answer = match key {
            ApiKey::Produce => Self::old_produce(&mut r, version, correlation_id),
            ApiKey::Fetch => Self::old_fetch(&mut r, version, correlation_id),
            ApiKey::ListOffsets => self.list_offsets_v0(&mut r, correlation_id),
            ApiKey::OffsetCommit => self.old_offset_commit(&mut r, version, correlation_id),
            ApiKey::OffsetFetch => self.offset_fetch_v0(r.0.clone(), &header, correlation_id),
            ApiKey::CreateTopics => {
                self.old_create_topics(r.0.clone(), version, &header, correlation_id)
            }
            ApiKey::DeleteTopics => self.delete_topics_v0(r.0.clone(), &header, correlation_id),
            _ => Err(format!("{key:?} v{version} is not served")),
        };
        answer.unwrap_or_else(|why| Reply::Close(format!("bad {key:?} v{version} request: {why}")))
    }

    /// Produce v0-v2: UNSUPPORTED_VERSION for every partition. With acks = 0 there is no
    /// response to carry it, so the connection is closed, as Kafka does for a failed
    /// acks = 0 produce (the client then reconnects and sees the error on its next request).
    fn old_produce(r: &mut Reader, version: i16, correlation_id: i32) -> Result<Reply, String> {
        let acks = r.i16()?;
        let _timeout_ms = r.i32()?;
        let topics: Topics<i32> = r.array(|r| {
            let name = r.string()?;
            let partitions = r.array(|r| {
                let index = r.i32()?;
                r.skip_bytes()?;
                Ok(index)
            })?;
            Ok((name, partitions))
        })?;
        if acks == 0 {
            return Ok(Reply::Close(format!(
                "Produce v{version} (acks=0) carries the pre-v2 message format, which is not stored"
            )));
        }
        let mut b = BytesMut::new();
        put_count(&mut b, topics.len());
        for (name, partitions) in &topics {
            put_string(&mut b, name);
            put_count(&mut b, partitions.len());
            for &index in partitions {
                b.put_i32(index);
                b.put_i16(code::UNSUPPORTED_VERSION);
                b.put_i64(-1); // base offset
                if version >= 2 {
                    b.put_i64(-1); // log append time
                }
            }
        }
        if version >= 1 {
            b.put_i32(0); // throttle time
        }
        Ok(reply(correlation_id, &b))
    }

    /// Fetch v0-v3: UNSUPPORTED_VERSION and no records for every partition.
    fn old_fetch(r: &mut Reader, version: i16, correlation_id: i32) -> Result<Reply, String> {
        let _replica_id = r.i32()?;
        let _max_wait_ms = r.i32()?;
        let _min_bytes = r.i32()?;
        if version >= 3 {
            let _max_bytes = r.i32()?;
        }
        let topics: Topics<i32> = r.array(|r| {
            let name = r.string()?;
            let partitions = r.array(|r| {
                let partition = r.i32()?;
                let _fetch_offset = r.i64()?;
                let _partition_max_bytes = r.i32()?;
                Ok(partition)
            })?;
            Ok((name, partitions))
        })?;
        let mut b = BytesMut::new();
        if version >= 1 {
            b.put_i32(0); // throttle time
        }
        put_count(&mut b, topics.len());
        for (name, partitions) in &topics {
            put_string(&mut b, name);
            put_count(&mut b, partitions.len());
            for &partition in partitions {
                b.put_i32(partition);
                b.put_i16(code::UNSUPPORTED_VERSION);
                b.put_i64(-1); // high watermark
                b.put_i32(0); // no records
            }
        }
        Ok(reply(correlation_id, &b))
    }

    /// ListOffsets v0: up to `max_num_offsets` offsets per partition, newest first
    /// (`PartitionHandle::offsets_before`). Of the negative timestamps only latest (-1) and
    /// earliest (-2) exist at v0; others get UNSUPPORTED_VERSION, as from Kafka.
    fn list_offsets_v0(&self, r: &mut Reader, correlation_id: i32) -> Result<Reply, String> {
        let _replica_id = r.i32()?;
        let topics: Topics<(i32, i64, i32)> = r.array(|r| {
            let name = r.string()?;
            let partitions = r.array(|r| Ok((r.i32()?, r.i64()?, r.i32()?)))?;
            Ok((name, partitions))
        })?;
        let mut b = BytesMut::new();
        put_count(&mut b, topics.len());
        for (name, partitions) in &topics {
            put_string(&mut b, name);
            put_count(&mut b, partitions.len());
            for &(index, timestamp, max_num_offsets) in partitions {
                let found = if timestamp < -2 {
                    Err(code::UNSUPPORTED_VERSION)
                } else {
                    let max = usize::try_from(max_num_offsets).unwrap_or(0);
                    self.log
                        .partition(name, index)
                        .and_then(|h| h.offsets_before(timestamp, max))
                        .map_err(|e| e.kafka_error_code())
                };
                b.put_i32(index);
                match found {
                    Ok(offsets) => {
                        b.put_i16(code::NONE);
                        put_count(&mut b, offsets.len());
                        for o in offsets {
                            b.put_i64(o);
                        }
                    }
                    Err(c) => {
                        b.put_i16(c);
                        put_count(&mut b, 0);
                    }
                }
            }
        }
        Ok(reply(correlation_id, &b))
    }

    /// OffsetCommit v0 (a standalone commit) and v1 (a member's, with a per-partition commit
    /// timestamp, -1 for now). Their response is v2's layout.
    fn old_offset_commit(
        &self,
        r: &mut Reader,
        version: i16,
        correlation_id: i32,
    ) -> Result<Reply, String> {
        let group = r.string()?;
        let (generation, member) = if version >= 1 {
            (r.i32()?, r.string()?)
        } else {
            (-1, String::new())
        };
        let topics = r.array(|r| {
            let name = r.string()?;
            let partitions = r.array(|r| {
                let index = r.i32()?;
                let mut om = OffsetAndMetadata::new(r.i64()?);
                if version >= 1 {
                    let at = r.i64()?;
                    if at != -1 {
                        om.commit_timestamp = at;
                    }
                }
                om.metadata = r.nullable_string()?.unwrap_or_default();
                Ok((index, om))
            })?;
            Ok((topic_name(&name), partitions))
        })?;
        let response = self.commit_offsets(&group, &member, generation, topics);
        Ok(encode(correlation_id, 0, 2, &response))
    }

    /// OffsetFetch v0: the same bytes as v1, both ways.
    fn offset_fetch_v0(
        &self,
        mut body: Bytes,
        header: &RequestHeader,
        correlation_id: i32,
    ) -> Result<Reply, String> {
        let req = OffsetFetchRequest::decode(&mut body, 1).map_err(|e| e.to_string())?;
        let response = self.offset_fetch(req, 1, header).unwrap_or_default();
        Ok(encode(correlation_id, 0, 1, &response))
    }

    /// CreateTopics v1 is v2's request (v0 lacks the trailing `validate_only`); the
    /// response is v2's without the throttle time (v0 also without error messages).
    fn old_create_topics(
        &self,
        body: Bytes,
        version: i16,
        header: &RequestHeader,
        correlation_id: i32,
    ) -> Result<Reply, String> {
        let mut body = if version == 0 {
            let mut b = BytesMut::from(&body[..]);
            b.put_u8(0); // validate_only = false
            b.freeze()
        } else {
            body
        };
        let req = CreateTopicsRequest::decode(&mut body, 2).map_err(|e| e.to_string())?;
        let response = self.create_topics(req, 2, header).unwrap_or_default();
        let mut b = BytesMut::new();
        put_count(&mut b, response.topics.len());
        for t in &response.topics {
            put_string(&mut b, t.name.0.as_str());
            b.put_i16(t.error_code);
            if version >= 1 {
                // Kafka sends a null message with success.
                let message = t.error_message.as_ref().map(StrBytes::as_str);
                put_nullable_string(&mut b, message.filter(|_| t.error_code != code::NONE));
            }
        }
        Ok(reply(correlation_id, &b))
    }

    /// DeleteTopics v0 is v1's request; the response is v1's without the throttle time.
    fn delete_topics_v0(
        &self,
        mut body: Bytes,
        header: &RequestHeader,
        correlation_id: i32,
    ) -> Result<Reply, String> {
        let req = DeleteTopicsRequest::decode(&mut body, 1).map_err(|e| e.to_string())?;
        let response = self.delete_topics(req, 1, header).unwrap_or_default();
        let mut b = BytesMut::new();
        put_count(&mut b, response.responses.len());
        for t in &response.responses {
            put_string(&mut b, t.name.as_ref().map_or("", |n| n.0.as_str()));
            b.put_i16(t.error_code);
        }
        Ok(reply(correlation_id, &b))
    }
}
