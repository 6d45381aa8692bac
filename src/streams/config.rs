//! `StreamsConfig`: Kafka Streams' settings that apply in process.

use std::path::PathBuf;
use std::time::Duration;

use super::graph::StoreType;
use crate::error::{Error, Result};

/// What happens to a record that does not deserialize (Kafka's
/// `default.deserialization.exception.handler`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeserializationHandler {
    /// The thread fails (Kafka's default, `LogAndFailExceptionHandler`).
    #[default]
    LogAndFail,
    /// The record is logged and skipped, and sent to the dead-letter topic when one is set
    /// (`LogAndContinueExceptionHandler`).
    LogAndContinue,
}

/// How much a topology's results are guaranteed (Kafka's `processing.guarantee`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ProcessingGuarantee {
    /// Outputs and changelogs are written before the input offsets are committed: after a
    /// crash some records are processed again, and their effects (a count, an output) may
    /// appear twice (Kafka's default).
    AtLeastOnce,
    /// Each thread's outputs, changelog records and input offsets since its last commit are
    /// one transaction (Kafka's `exactly_once_v2`): a crash aborts it, the tasks restart from
    /// the last committed state, and `read_committed` readers of the outputs see each
    /// record's effect once. This crate's default, unlike Kafka's: see
    /// [`StreamsConfig::processing_guarantee`].
    #[default]
    ExactlyOnceV2,
}

/// A streams application's settings (Kafka's `StreamsConfig`, the keys that mean something
/// in process).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct StreamsConfig {
    /// `application.id`: the consumer group of the threads and the prefix of internal topics.
    pub application_id: String,
    /// `num.stream.threads` (1).
    pub num_stream_threads: usize,
    /// `commit.interval.ms`; `None`: Kafka's default for the guarantee (100 ms under
    /// exactly-once, 30 s under at-least-once). See [`StreamsConfig::effective_commit_interval`].
    pub commit_interval: Option<Duration>,
    /// `statestore.cache.max.bytes` (10 MiB): the latest aggregate of each key is forwarded
    /// once per commit instead of at each update; 0 forwards every update.
    pub cache_max_bytes: usize,
    /// `processing.guarantee`: [`ProcessingGuarantee::ExactlyOnceV2`] by default (Kafka
    /// defaults to `at_least_once`, because there each commit costs broker round trips; in
    /// process a transaction costs a few appends, and the WordCount bench measures
    /// exactly-once within a few percent of at-least-once: see BENCHMARKS.md).
    pub processing_guarantee: ProcessingGuarantee,
    /// `state.dir`: where persistent stores keep their files
    /// (`<state.dir>/<application.id>/<task>/<store>.redb`); `None`: `.streams-state` in
    /// the log's data directory (kept with the log, under its lock).
    pub state_dir: Option<PathBuf>,
    /// `default.dsl.store`: where the DSL's key-value stores keep their entries when the
    /// topology does not say (`in_memory`, as Kafka's `IN_MEMORY`, by default; Kafka's own
    /// default is `rocksDB`, its persistent store).
    pub default_dsl_store: StoreType,
    /// `default.deserialization.exception.handler`.
    pub deserialization_handler: DeserializationHandler,
    /// `errors.dead.letter.queue.topic.name`: where skipped records go (created with one
    /// partition when missing).
    pub dead_letter_topic: Option<String>,
    /// `max.poll.records` of the threads' consumers (1000, as Kafka Streams sets it).
    pub max_poll_records: usize,
    /// `poll.ms` (100 ms): how long a thread waits for records.
    pub poll_time: Duration,
    /// `repartition.purge.interval.ms` (30 s, as Kafka's): how often a thread deletes the
    /// records of repartition topics below the offsets its tasks committed (Kafka's
    /// `DeleteRecords`; they are read once, by this application).
    pub repartition_purge_interval: Duration,
    /// `buffered.records.per.partition` (1000, as Kafka's): a task reading several topics
    /// holds records to take them in timestamp order; past this many held of a partition,
    /// its reads pause until they are taken.
    pub buffered_records_per_partition: usize,
}

impl StreamsConfig {
    /// Kafka's defaults for `application_id`.
    pub fn new(application_id: impl Into<String>) -> StreamsConfig {
        StreamsConfig {
            application_id: application_id.into(),
            num_stream_threads: 1,
            commit_interval: None,
            cache_max_bytes: 10 * 1024 * 1024,
            processing_guarantee: ProcessingGuarantee::ExactlyOnceV2,
            state_dir: None,
            default_dsl_store: StoreType::InMemory,
            deserialization_handler: DeserializationHandler::LogAndFail,
            dead_letter_topic: None,
            max_poll_records: 1000,
            poll_time: Duration::from_millis(100),
            repartition_purge_interval: Duration::from_secs(30),
            buffered_records_per_partition: 1000,
        }
    }

    /// `num.stream.threads`.
    #[must_use]
    pub fn num_stream_threads(mut self, n: usize) -> Self {
        self.num_stream_threads = n;
        self
    }

    /// `commit.interval.ms`.
    #[must_use]
    pub fn commit_interval(mut self, d: Duration) -> Self {
        self.commit_interval = Some(d);
        self
    }

    /// The commit interval in effect: the one set, else 100 ms under exactly-once and 30 s
    /// under at-least-once (Kafka's defaults).
    pub fn effective_commit_interval(&self) -> Duration {
        self.commit_interval
            .unwrap_or(match self.processing_guarantee {
                ProcessingGuarantee::ExactlyOnceV2 => Duration::from_millis(100),
                ProcessingGuarantee::AtLeastOnce => Duration::from_secs(30),
            })
    }

    /// `processing.guarantee`.
    #[must_use]
    pub fn processing_guarantee(mut self, g: ProcessingGuarantee) -> Self {
        self.processing_guarantee = g;
        self
    }

    /// `state.dir`.
    #[must_use]
    pub fn state_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.state_dir = Some(dir.into());
        self
    }

    /// `default.dsl.store`.
    #[must_use]
    pub fn default_dsl_store(mut self, t: StoreType) -> Self {
        self.default_dsl_store = t;
        self
    }

    /// `statestore.cache.max.bytes`.
    #[must_use]
    pub fn cache_max_bytes(mut self, n: usize) -> Self {
        self.cache_max_bytes = n;
        self
    }

    /// `default.deserialization.exception.handler`.
    #[must_use]
    pub fn deserialization_handler(mut self, h: DeserializationHandler) -> Self {
        self.deserialization_handler = h;
        self
    }

    /// `repartition.purge.interval.ms`.
    #[must_use]
    pub fn repartition_purge_interval(mut self, d: Duration) -> Self {
        self.repartition_purge_interval = d;
        self
    }

    /// `errors.dead.letter.queue.topic.name`.
    #[must_use]
    pub fn dead_letter_topic(mut self, topic: impl Into<String>) -> Self {
        self.dead_letter_topic = Some(topic.into());
        self
    }

    /// Sets a setting by Kafka's key (`num.stream.threads`, `commit.interval.ms`,
    /// `statestore.cache.max.bytes`, `processing.guarantee`, `state.dir`, `default.dsl.store`,
    /// `default.deserialization.exception.handler`, `errors.dead.letter.queue.topic.name`,
    /// `max.poll.records`, `poll.ms`, `repartition.purge.interval.ms`,
    /// `buffered.records.per.partition`).
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming the key, for an unknown key or a bad value.
    pub fn set(mut self, key: &str, value: &str) -> Result<Self> {
        let v = value.trim();
        let number = |what: &str| -> Result<u64> {
            v.parse()
                .map_err(|_| Error::invalid_config(key, format!("'{v}' is not {what}")))
        };
        match key {
            "num.stream.threads" => {
                self.num_stream_threads = number("a thread count")? as usize;
                if self.num_stream_threads == 0 {
                    return Err(Error::invalid_config(key, "must be at least 1"));
                }
            }
            "commit.interval.ms" => {
                self.commit_interval = Some(Duration::from_millis(number("a time in ms")?));
            }
            "state.dir" => self.state_dir = Some(PathBuf::from(v)),
            "default.dsl.store" => {
                self.default_dsl_store = match v {
                    "in_memory" => StoreType::InMemory,
                    "rocksDB" | "persistent" => StoreType::Persistent,
                    other => {
                        return Err(Error::invalid_config(
                            key,
                            format!(
                                "'{other}' is not a store type (in_memory, or rocksDB/persistent \
                                 for a file)"
                            ),
                        ));
                    }
                };
            }
            "statestore.cache.max.bytes" | "cache.max.bytes.buffering" => {
                self.cache_max_bytes = number("a size in bytes")? as usize;
            }
            "max.poll.records" => {
                self.max_poll_records = number("a record count")? as usize;
                if self.max_poll_records == 0 {
                    return Err(Error::invalid_config(key, "must be at least 1"));
                }
            }
            "poll.ms" => self.poll_time = Duration::from_millis(number("a time in ms")?),
            "buffered.records.per.partition" => {
                self.buffered_records_per_partition = number("a record count")? as usize;
            }
            "repartition.purge.interval.ms" => {
                self.repartition_purge_interval = Duration::from_millis(number("a time in ms")?);
            }
            "processing.guarantee" => match v {
                "at_least_once" => self.processing_guarantee = ProcessingGuarantee::AtLeastOnce,
                // `exactly_once` and `exactly_once_beta` were removed from Kafka 4.0 in favour
                // of v2, which is what they ask for.
                "exactly_once_v2" | "exactly_once_beta" | "exactly_once" => {
                    self.processing_guarantee = ProcessingGuarantee::ExactlyOnceV2;
                }
                other => {
                    return Err(Error::invalid_config(
                        key,
                        format!("'{other}' is not at_least_once or exactly_once_v2"),
                    ));
                }
            },
            "default.deserialization.exception.handler" | "deserialization.exception.handler" => {
                let short = v.rsplit('.').next().unwrap_or(v);
                self.deserialization_handler = match short {
                    "LogAndFailExceptionHandler" | "fail" => DeserializationHandler::LogAndFail,
                    "LogAndContinueExceptionHandler" | "continue" => {
                        DeserializationHandler::LogAndContinue
                    }
                    other => {
                        return Err(Error::invalid_config(
                            key,
                            format!(
                                "'{other}' is not LogAndFailExceptionHandler or \
                                 LogAndContinueExceptionHandler"
                            ),
                        ));
                    }
                };
            }
            "errors.dead.letter.queue.topic.name" => {
                self.dead_letter_topic = (!v.is_empty()).then(|| v.to_string());
            }
            "application.id" => self.application_id = v.to_string(),
            _ => {
                return Err(Error::invalid_config(
                    key,
                    "not a setting topiclog's streams know",
                ));
            }
        }
        Ok(self)
    }
}
