//! Events as records: the headers that carry an event's version, type and id.

use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;

use crate::error::{Error, Result};
use crate::record::{Header, Record, RecordRef};

/// Header holding an event's stream version (8 bytes, big-endian).
pub const VERSION_HEADER: &str = "es.version";
/// Header holding an event's type (UTF-8).
pub const TYPE_HEADER: &str = "es.type";
/// Header holding an event's id (16 bytes).
pub const ID_HEADER: &str = "es.id";

/// An event's id: 16 bytes, shown as a UUID. Appends are idempotent by id (see
/// [`EventStore::append`](super::EventStore::append)).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EventId(pub [u8; 16]);

impl EventId {
    /// A new random id (a version-4 UUID).
    pub fn new() -> EventId {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        // Keys drawn at random per process; each call hashes a fresh counter value.
        let state = std::collections::hash_map::RandomState::new();
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let mut a = state.build_hasher();
        a.write_u64(n);
        a.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos()),
        );
        let hi = a.finish();
        let mut b = state.build_hasher();
        b.write_u64(hi ^ n.rotate_left(32));
        let lo = b.finish();
        let mut id = [0u8; 16];
        id[..8].copy_from_slice(&hi.to_be_bytes());
        id[8..].copy_from_slice(&lo.to_be_bytes());
        id[6] = (id[6] & 0x0f) | 0x40;
        id[8] = (id[8] & 0x3f) | 0x80;
        EventId(id)
    }

    /// Parses a UUID (`xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`, hyphens optional).
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for anything else.
    pub fn parse(text: &str) -> Result<EventId> {
        let hex: Vec<u8> = text.bytes().filter(|&c| c != b'-').collect();
        let bad = || Error::invalid_config("event id", format!("'{text}' is not a UUID"));
        if hex.len() != 32 {
            return Err(bad());
        }
        let mut id = [0u8; 16];
        for (i, pair) in hex.chunks(2).enumerate() {
            let s = std::str::from_utf8(pair).map_err(|_| bad())?;
            let byte = u8::from_str_radix(s, 16).map_err(|_| bad())?;
            if let Some(slot) = id.get_mut(i) {
                *slot = byte;
            }
        }
        Ok(EventId(id))
    }
}

impl Default for EventId {
    fn default() -> Self {
        EventId::new()
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, b) in self.0.iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                f.write_str("-")?;
            }
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EventId({self})")
    }
}

/// An event to append: its type, payload, id and optional headers and timestamp.
#[derive(Debug, Clone)]
pub struct EventData {
    /// The event's id (random unless set): a retried append with the same ids is not
    /// appended twice.
    pub id: EventId,
    /// The event's type, e.g. `"Deposited"`.
    pub event_type: String,
    /// The payload (the record's value).
    pub data: Bytes,
    /// Headers of your own (names starting `es.` are the store's).
    pub headers: Vec<Header>,
    /// CreateTime in ms since the epoch; the append time when `None`.
    pub timestamp: Option<i64>,
}

impl EventData {
    /// An event of `event_type` with payload `data` and a new random id.
    pub fn new(event_type: impl Into<String>, data: impl Into<Bytes>) -> EventData {
        EventData {
            id: EventId::new(),
            event_type: event_type.into(),
            data: data.into(),
            headers: Vec::new(),
            timestamp: None,
        }
    }

    /// Sets the id (for example one derived from a command, so retries are recognized).
    #[must_use]
    pub fn id(mut self, id: EventId) -> EventData {
        self.id = id;
        self
    }

    /// Adds a header.
    #[must_use]
    pub fn header(mut self, header: Header) -> EventData {
        self.headers.push(header);
        self
    }

    /// Sets the timestamp (ms since the epoch).
    #[must_use]
    pub fn timestamp(mut self, ms: i64) -> EventData {
        self.timestamp = Some(ms);
        self
    }

    /// The record this event is at `version` of `stream`.
    pub(super) fn to_record(&self, stream: &str, version: u64) -> Result<Record> {
        if let Some(h) = self.headers.iter().find(|h| h.key.starts_with("es.")) {
            return Err(Error::invalid_config(
                "event header",
                format!(
                    "'{}' is reserved: names starting 'es.' are the store's",
                    h.key
                ),
            ));
        }
        let mut r = Record::new(self.data.clone())
            .key(Bytes::copy_from_slice(stream.as_bytes()))
            .header(Header::new(VERSION_HEADER, version.to_be_bytes().to_vec()))
            .header(Header::new(
                TYPE_HEADER,
                self.event_type.clone().into_bytes(),
            ))
            .header(Header::new(ID_HEADER, self.id.0.to_vec()));
        for h in &self.headers {
            r = r.header(h.clone());
        }
        if let Some(ts) = self.timestamp {
            r = r.timestamp(ts);
        }
        Ok(r)
    }
}

/// Where an event sits: its partition and offset in the event topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EventPosition {
    /// The partition (Kafka's murmur2 of the stream id).
    pub partition: i32,
    /// The record's offset in that partition.
    pub offset: i64,
}

/// An event read back, with its metadata.
///
/// `stream` and `event_type` are [`SharedStr`]s: the events of one read share one allocation
/// for their stream and one for each type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedEvent {
    /// The stream (the record's key).
    pub stream: SharedStr,
    /// Its version in the stream: the number of earlier events, from 0.
    pub version: u64,
    /// The event's type.
    pub event_type: SharedStr,
    /// The event's id.
    pub id: EventId,
    /// The payload.
    pub data: Bytes,
    /// The headers of its own (not the store's `es.` headers).
    pub headers: Vec<Header>,
    /// The record's timestamp (ms since the epoch).
    pub timestamp: i64,
    /// Where it sits in the event topic.
    pub position: EventPosition,
}

/// An immutable string shared by reference count: what a read hands out for stream ids and
/// event types, so events of one stream and type share one allocation. Reads like a `&str`
/// (`Deref`, `as_str`, `==` with `str`, `&str` and `String`).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SharedStr(Arc<str>);

impl SharedStr {
    /// The string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::ops::Deref for SharedStr {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for SharedStr {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::borrow::Borrow<str> for SharedStr {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SharedStr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for SharedStr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for SharedStr {
    fn from(s: &str) -> SharedStr {
        SharedStr(Arc::from(s))
    }
}

impl From<String> for SharedStr {
    fn from(s: String) -> SharedStr {
        SharedStr(Arc::from(s))
    }
}

impl From<SharedStr> for String {
    fn from(s: SharedStr) -> String {
        s.0.to_string()
    }
}

impl PartialEq<str> for SharedStr {
    fn eq(&self, other: &str) -> bool {
        *self.0 == *other
    }
}

impl PartialEq<&str> for SharedStr {
    fn eq(&self, other: &&str) -> bool {
        *self.0 == **other
    }
}

impl PartialEq<String> for SharedStr {
    fn eq(&self, other: &String) -> bool {
        *self.0 == **other
    }
}

impl PartialEq<SharedStr> for str {
    fn eq(&self, other: &SharedStr) -> bool {
        *self == *other.0
    }
}

impl PartialEq<SharedStr> for &str {
    fn eq(&self, other: &SharedStr) -> bool {
        **self == *other.0
    }
}

/// An `es.version` header's value.
fn version_of(v: Option<&[u8]>) -> Option<u64> {
    v.and_then(|v| <[u8; 8]>::try_from(v).ok())
        .map(u64::from_be_bytes)
}

/// An `es.id` header's value.
fn id_of(v: Option<&[u8]>) -> Option<EventId> {
    v.and_then(|v| <[u8; 16]>::try_from(v).ok()).map(EventId)
}

/// The store's headers of a record: version and id, when the record is an event.
pub(super) struct EventMeta {
    pub(super) version: u64,
    pub(super) id: Option<EventId>,
}

/// The version and id of a record, or `None` when it carries no valid version header (not an
/// event of the store).
pub(super) fn event_meta(r: &RecordRef<'_>) -> Option<EventMeta> {
    let mut version = None;
    let mut id = None;
    for (k, v) in r.raw_headers() {
        match k {
            b"es.version" => version = version_of(v),
            b"es.id" => id = id_of(v),
            _ => {}
        }
    }
    Some(EventMeta {
        version: version?,
        id,
    })
}

/// `part` as a view of `whole` when it lies inside it (an uncompressed batch: no copy), else a
/// copy (a record decoded from a decompressed buffer).
fn share(whole: &Bytes, part: &[u8]) -> Bytes {
    let (w, p) = (whole.as_ptr() as usize, part.as_ptr() as usize);
    if p >= w && p + part.len() <= w + whole.len() {
        whole.slice_ref(part)
    } else {
        Bytes::copy_from_slice(part)
    }
}

/// Strings shared by the events of one read: the stream being read and the types met so far,
/// so each event costs no allocation for them.
#[derive(Default)]
pub(super) struct Shared {
    stream: Option<SharedStr>,
    types: Vec<SharedStr>,
}

/// Distinct types a read keeps for sharing (a stream usually has a handful).
const SHARED_TYPES: usize = 16;

impl Shared {
    /// Strings for a read of `stream`'s events.
    pub(super) fn for_stream(stream: &str) -> Shared {
        Shared {
            stream: Some(SharedStr::from(stream)),
            types: Vec::new(),
        }
    }

    fn stream(&self, key: &[u8]) -> SharedStr {
        match &self.stream {
            Some(s) if s.as_bytes() == key => s.clone(),
            _ => SharedStr(Arc::from(String::from_utf8_lossy(key))),
        }
    }

    fn event_type(&mut self, v: &[u8]) -> SharedStr {
        if let Some(t) = self.types.iter().find(|t| t.as_bytes() == v) {
            return t.clone();
        }
        let t = SharedStr(Arc::from(String::from_utf8_lossy(v)));
        if self.types.len() < SHARED_TYPES {
            self.types.push(t.clone());
        }
        t
    }
}

/// The event a record of `batch` holds, or `None` when it is not an event of the store.
pub(super) fn recorded(
    r: &RecordRef<'_>,
    batch: &Bytes,
    partition: i32,
    shared: &mut Shared,
) -> Option<RecordedEvent> {
    let key = r.key?;
    let stream = shared.stream(key);
    let mut version = None;
    let mut id = EventId([0; 16]);
    let mut event_type = None;
    let mut headers = Vec::new();
    for (k, v) in r.raw_headers() {
        match k {
            b"es.version" => version = version_of(v),
            b"es.id" => {
                if let Some(i) = id_of(v) {
                    id = i;
                }
            }
            b"es.type" => event_type = Some(shared.event_type(v.unwrap_or_default())),
            _ => headers.push(Header {
                key: String::from_utf8_lossy(k).into_owned(),
                value: v.map(|v| share(batch, v)),
            }),
        }
    }
    Some(RecordedEvent {
        stream,
        version: version?,
        event_type: event_type.unwrap_or_else(|| shared.event_type(b"")),
        id,
        data: r.value.map_or_else(Bytes::new, |v| share(batch, v)),
        headers,
        timestamp: r.timestamp,
        position: EventPosition {
            partition,
            offset: r.offset,
        },
    })
}
