//! Records: what callers append ([`Record`]) and what reads return ([`StoredRecord`]).

use bytes::Bytes;

/// A record header: a UTF-8 key and an optional value.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Header {
    /// The header key (Kafka requires UTF-8 and forbids null).
    pub key: String,
    /// The header value; `None` is Kafka's null.
    pub value: Option<Bytes>,
}

impl Header {
    /// A header with a value.
    pub fn new(key: impl Into<String>, value: impl Into<Bytes>) -> Self {
        Header {
            key: key.into(),
            value: Some(value.into()),
        }
    }

    /// A header whose value is null.
    pub fn null(key: impl Into<String>) -> Self {
        Header {
            key: key.into(),
            value: None,
        }
    }
}

/// A record to append: optional key, optional value (a null value is a tombstone on compacted
/// topics), headers, and an optional timestamp in milliseconds since the Unix epoch (the append
/// time when absent).
///
/// ```
/// use topiclog::{Header, Record};
/// let r = Record::new("hello").key("user-1").header(Header::new("source", "web")).timestamp(1_700_000_000_000);
/// assert_eq!(r.key.as_deref(), Some(&b"user-1"[..]));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Record {
    /// The key; `None` is Kafka's null key.
    pub key: Option<Bytes>,
    /// The value; `None` is Kafka's null value (a tombstone).
    pub value: Option<Bytes>,
    /// Headers in order.
    pub headers: Vec<Header>,
    /// CreateTime in ms since the epoch; `None` takes the append time.
    pub timestamp: Option<i64>,
}

impl Record {
    /// A record with this value and no key.
    pub fn new(value: impl Into<Bytes>) -> Self {
        Record {
            value: Some(value.into()),
            ..Record::default()
        }
    }

    /// A record with a null value: a tombstone for `key` on compacted topics.
    pub fn tombstone(key: impl Into<Bytes>) -> Self {
        Record {
            key: Some(key.into()),
            ..Record::default()
        }
    }

    /// Sets the key.
    #[must_use]
    pub fn key(mut self, key: impl Into<Bytes>) -> Self {
        self.key = Some(key.into());
        self
    }

    /// Adds a header.
    #[must_use]
    pub fn header(mut self, header: Header) -> Self {
        self.headers.push(header);
        self
    }

    /// Sets the timestamp (ms since the Unix epoch).
    #[must_use]
    pub fn timestamp(mut self, ms: i64) -> Self {
        self.timestamp = Some(ms);
        self
    }
}

/// A record read back from the log, with the offset and timestamp the log gave it. Key, value
/// and header values are `Bytes` views: for uncompressed batches they point into the mapped
/// segment file, with no copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRecord {
    /// The record's offset in its partition.
    pub offset: i64,
    /// Its timestamp in ms since the epoch (the batch's append time under LogAppendTime).
    pub timestamp: i64,
    /// The key, `None` for a null key.
    pub key: Option<Bytes>,
    /// The value, `None` for a null value (tombstone).
    pub value: Option<Bytes>,
    /// Headers in order.
    pub headers: Vec<Header>,
}
