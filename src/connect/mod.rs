//! Kafka Connect's model, in process: sources and sinks moving records between a topiclog
//! directory and the outside (files, stdin/stdout, databases), with Kafka's converters,
//! single message transforms, error handling and offsets.
//!
//! See `ARCHITECTURE.md` ("Connect") for the runtime and what each connector guarantees.

pub mod config;
pub mod connector;
pub mod convert;
pub mod data;
pub mod file;
mod payload;
pub mod runtime;
#[cfg(feature = "sqlite")]
pub mod sqlite;
pub mod transform;

use std::sync::Arc;

use bytes::Bytes;

use crate::record::Header;

pub use config::Properties;
pub use connector::{
    OffsetReader, Plugin, SinkConnector, SinkTask, SourceConnector, SourceRecord, SourceTask,
};
pub use convert::{ByteArrayConverter, Converter, JsonConverter, StringConverter};
pub use data::{Field, Schema, SchemaType, Value};
pub use file::{FileStreamSink, FileStreamSource};
pub use runtime::{Connect, ConnectorKind, ConnectorStatus, OFFSETS_TOPIC, TaskState, TaskStatus};

/// A record as connectors and transforms see it (Kafka's `ConnectRecord`): a topic, an
/// optional partition, key and value with their schemas, a timestamp and headers.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectRecord {
    /// The topic the record goes to (source) or came from (sink).
    pub topic: String,
    /// The partition, when chosen (source) or known (sink).
    pub partition: Option<i32>,
    /// The key's schema; `None` for schemaless data. Shared: the records of one source or
    /// topic usually have one schema.
    pub key_schema: Option<Arc<Schema>>,
    /// The key.
    pub key: Value,
    /// The value's schema; `None` for schemaless data.
    pub value_schema: Option<Arc<Schema>>,
    /// The value.
    pub value: Value,
    /// The timestamp (ms since the epoch).
    pub timestamp: Option<i64>,
    /// Headers.
    pub headers: Vec<Header>,
    /// A sink record's offset in its partition; `None` for a source record.
    pub offset: Option<i64>,
    /// A sink record's topic, partition and offset as it was read, whatever transforms did
    /// to `topic` and `partition` since (Kafka's `originalTopic()` and the like); `None`
    /// for a source record.
    pub original: Option<(String, i32, i64)>,
}

impl ConnectRecord {
    /// A record for `topic` with a value and its schema, no key.
    pub fn new(topic: impl Into<String>, value_schema: Option<Schema>, value: Value) -> Self {
        ConnectRecord {
            topic: topic.into(),
            partition: None,
            key_schema: None,
            key: Value::Null,
            value_schema: value_schema.map(Arc::new),
            value,
            timestamp: None,
            headers: Vec::new(),
            offset: None,
            original: None,
        }
    }

    /// Whether a header with this key is present.
    pub fn has_header(&self, key: &str) -> bool {
        self.headers.iter().any(|h| h.key == key)
    }

    /// Adds a header.
    pub fn add_header(&mut self, key: impl Into<String>, value: Option<Bytes>) {
        self.headers.push(Header {
            key: key.into(),
            value,
        });
    }
}
