//! The connector and task traits (Kafka's `SourceConnector`/`SourceTask`,
//! `SinkConnector`/`SinkTask`).

use std::collections::HashMap;

use serde_json::{Map as JsonMap, Value as Json};

use super::ConnectRecord;
use super::config::Properties;
use crate::error::Result;
use crate::types::TopicPartition;

/// A record a source produced, with where it came from: its *source partition* and *source
/// offset* (maps, as Kafka's), which the runtime stores with the record so a restart resumes
/// after it.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceRecord {
    /// Where in the source the record came from (the file source's `{"filename": ...}`).
    pub source_partition: JsonMap<String, Json>,
    /// The position after the record in that source partition (`{"position": n}`).
    pub source_offset: JsonMap<String, Json>,
    /// The record.
    pub record: ConnectRecord,
}

/// The source offsets stored for a connector, by source partition.
#[derive(Debug, Clone, Default)]
pub struct OffsetReader {
    offsets: HashMap<String, JsonMap<String, Json>>,
}

impl OffsetReader {
    pub(super) fn new(offsets: HashMap<String, JsonMap<String, Json>>) -> OffsetReader {
        OffsetReader { offsets }
    }

    /// The last offset committed for `partition`, if any.
    pub fn offset(&self, partition: &JsonMap<String, Json>) -> Option<&JsonMap<String, Json>> {
        self.offsets.get(&partition_key(partition))
    }
}

/// A source partition's map as text with sorted keys: how offsets are matched to it.
pub(super) fn partition_key(partition: &JsonMap<String, Json>) -> String {
    let sorted: std::collections::BTreeMap<&String, &Json> = partition.iter().collect();
    serde_json::to_string(&sorted).unwrap_or_default()
}

/// One thread's share of a source connector's work (Kafka's `SourceTask`).
pub trait SourceTask: Send {
    /// Starts the task with its configuration and the offsets stored for its source
    /// partitions (resume from them).
    ///
    /// # Errors
    /// A configuration or source error; the task fails.
    fn start(&mut self, config: &Properties, offsets: &OffsetReader) -> Result<()>;

    /// The records available now; empty when there are none yet (the runtime calls again).
    /// A poll may block briefly (Kafka's file source waits up to a second for data).
    ///
    /// # Errors
    /// A source error; the task fails (I/O errors are retried first under
    /// `errors.retry.timeout`).
    fn poll(&mut self) -> Result<Vec<SourceRecord>>;

    /// How far behind the source the task is, in its own unit (the file source: bytes not
    /// yet read), for the task's status; `None` (the default) when it cannot tell.
    fn lag(&self) -> Option<i64> {
        None
    }

    /// The records of the last poll are committed with their offsets.
    ///
    /// # Errors
    /// The task fails.
    fn commit(&mut self) -> Result<()> {
        Ok(())
    }

    /// Stops the task.
    ///
    /// # Errors
    /// Reported in the task's status.
    fn stop(&mut self) -> Result<()> {
        Ok(())
    }
}

/// One thread's share of a sink connector's work (Kafka's `SinkTask`).
pub trait SinkTask: Send {
    /// Starts the task with its configuration.
    ///
    /// # Errors
    /// A configuration or sink error; the task fails.
    fn start(&mut self, config: &Properties) -> Result<()>;

    /// Offsets the sink stored with its own data (an exactly-once sink): records below them
    /// are not delivered again. `None` (the default) when the sink keeps none and the
    /// consumer group's committed offsets decide.
    ///
    /// # Errors
    /// The task fails.
    fn stored_offsets(&mut self) -> Result<Option<HashMap<TopicPartition, i64>>> {
        Ok(None)
    }

    /// Whether the sink can write `record` at all (a record it refuses goes the way of
    /// `errors.tolerance`: the task fails, or the record is skipped and sent to the
    /// dead-letter topic). The default accepts every record.
    ///
    /// # Errors
    /// [`crate::Error::ConnectData`] saying why the record cannot be written.
    fn check(&mut self, record: &ConnectRecord) -> Result<()> {
        let _ = record;
        Ok(())
    }

    /// Records to write.
    ///
    /// # Errors
    /// A sink error; the task fails. [`crate::Error::ConnectRetriable`] (Kafka's
    /// `RetriableException`) has the same records put again after a backoff, until it
    /// succeeds or the connector stops; I/O errors are retried under `errors.retry.timeout`.
    /// A put that fails must leave nothing of its records behind.
    fn put(&mut self, records: &[ConnectRecord]) -> Result<()>;

    /// Makes everything `put` received durable as far as the sink promises; `offsets` are the
    /// next offsets to read per partition, committed to the group after this returns.
    ///
    /// # Errors
    /// The task fails and nothing is committed.
    fn flush(&mut self, offsets: &HashMap<TopicPartition, i64>) -> Result<()>;

    /// Stops the task.
    ///
    /// # Errors
    /// Reported in the task's status.
    fn stop(&mut self) -> Result<()> {
        Ok(())
    }
}

/// A source connector: checks its configuration and makes its tasks.
pub trait SourceConnector: Send + Sync {
    /// Checks the configuration, naming any key that is missing or wrong.
    ///
    /// # Errors
    /// [`crate::Error::InvalidConfig`].
    fn validate(&self, config: &Properties) -> Result<()>;

    /// The configurations of at most `max_tasks` tasks.
    fn task_configs(&self, config: &Properties, max_tasks: usize) -> Vec<Properties> {
        let _ = max_tasks;
        vec![config.clone()]
    }

    /// A new task.
    fn task(&self) -> Box<dyn SourceTask>;

    /// Whether the connector's records are committed with their offsets in one transaction
    /// (exactly-once); `true` unless the source cannot resume (stdin).
    fn exactly_once(&self, config: &Properties) -> bool {
        let _ = config;
        true
    }
}

/// A sink connector: checks its configuration and makes its tasks.
pub trait SinkConnector: Send + Sync {
    /// Checks the configuration, naming any key that is missing or wrong.
    ///
    /// # Errors
    /// [`crate::Error::InvalidConfig`].
    fn validate(&self, config: &Properties) -> Result<()>;

    /// The configurations of at most `max_tasks` tasks.
    fn task_configs(&self, config: &Properties, max_tasks: usize) -> Vec<Properties> {
        let _ = max_tasks;
        vec![config.clone()]
    }

    /// A new task.
    fn task(&self) -> Box<dyn SinkTask>;
}

/// A source or a sink connector.
pub enum Plugin {
    /// A source.
    Source(Box<dyn SourceConnector>),
    /// A sink.
    Sink(Box<dyn SinkConnector>),
}
