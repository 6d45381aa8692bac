//! Sink tasks: records read as the group `connect-<name>`, offsets committed after the sink
//! flushed, failed records to the dead-letter topic.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::{ErrorPolicy, Pipeline, SINK_POLL, Shared, Stage, describe};
use crate::connect::ConnectRecord;
use crate::connect::connector::SinkTask;
use crate::error::{Error, Result};
use crate::record::{Header, Record};
use crate::{OffsetAndMetadata, ProducerRecord, TopicPartition};

pub(super) struct SinkContext {
    pub(super) name: String,
    pub(super) id: usize,
    pub(super) consumer: crate::Consumer,
    pub(super) pipeline: Pipeline,
    pub(super) policy: ErrorPolicy,
    pub(super) shared: Arc<Shared>,
    pub(super) dlq: Option<(crate::Producer, String)>,
    pub(super) flush_every: Duration,
    /// `topics.regex` and the log to match it against, when the sink reads by pattern.
    pub(super) pattern: Option<(regex::Regex, Arc<crate::log::LogInner>)>,
    /// The topics subscribed to.
    pub(super) topics: Vec<String>,
}

impl SinkContext {
    pub(super) fn run(&mut self, task: &mut dyn SinkTask) -> Result<()> {
        let stored = task.stored_offsets()?.unwrap_or_default();
        // The next offset of each partition this task has delivered: records below it (read
        // again after a rebalance rewound to the group's last commit) are not put again.
        let mut next: HashMap<TopicPartition, i64> = HashMap::new();
        let mut unflushed = false;
        let mut last_flush = Instant::now();
        let mut last_match = Instant::now();
        let mut paused = false;
        while !self.shared.stop.load(Ordering::Acquire) {
            if self.pattern.is_some() && last_match.elapsed() >= Duration::from_secs(1) {
                self.follow_pattern()?;
                last_match = Instant::now();
            }
            let want_pause = self.shared.paused.load(Ordering::Acquire);
            if want_pause {
                // Every time: a rebalance hands out partitions unpaused.
                let assigned = self.consumer.assignment();
                self.consumer.pause(&assigned)?;
            } else if paused {
                let held: Vec<TopicPartition> = self.consumer.paused().into_iter().collect();
                self.consumer.resume(&held)?;
            }
            paused = want_pause;
            let polled = match self.consumer.poll(SINK_POLL) {
                Ok(p) => p,
                // A stop woke the poll.
                Err(Error::WokenUp) if self.shared.stop.load(Ordering::Acquire) => break,
                Err(e) => return Err(e),
            };
            if paused {
                // Records of partitions assigned during this poll: read them again later.
                for tp in polled.partitions() {
                    if let Some(first) = polled.records(&tp).next() {
                        self.consumer.seek(&tp, first.offset())?;
                    }
                }
                continue;
            }
            let mut batch = Vec::with_capacity(polled.len());
            let mut skipped = 0u64;
            for tp in polled.partitions() {
                let done = stored
                    .get(&tp)
                    .copied()
                    .max(next.get(&tp).copied())
                    .unwrap_or(0);
                let mut last = None;
                for r in polled.records(&tp) {
                    let offset = r.offset();
                    if offset < done {
                        continue;
                    }
                    last = Some(offset);
                    // Checked one by one only when bad records are tolerated: otherwise
                    // `put` fails the task with the same error.
                    let converted = self.convert(&r).and_then(|rec| match rec {
                        // A retriable failure is retried here: it says nothing of the record.
                        Some(rec) if self.policy.tolerate_all => self
                            .policy
                            .retry(&self.shared.stop, || task.check(&rec))
                            .map(|()| Some(rec))
                            .map_err(|e| (Stage::TaskPut, e)),
                        other => Ok(other),
                    });
                    match converted {
                        Ok(Some(rec)) => batch.push(rec),
                        Ok(None) => {}
                        Err((stage, e)) => {
                            // A retriable failure left at a stop is no fault of the record.
                            if !self.policy.tolerate_all
                                || matches!(e, Error::ConnectRetriable { .. })
                            {
                                return Err(e);
                            }
                            if self.policy.log {
                                let msg = if self.policy.log_messages {
                                    format!(
                                        " (topic {} partition {} offset {offset})",
                                        r.topic(),
                                        r.partition()
                                    )
                                } else {
                                    String::new()
                                };
                                eprintln!(
                                    "connector {}: skipped a record{msg}: {}",
                                    self.name,
                                    describe(stage, &e)
                                );
                            }
                            self.dead_letter(&r, stage, &e)?;
                            skipped += 1;
                        }
                    }
                }
                if let Some(offset) = last {
                    next.insert(tp, offset + 1);
                }
            }
            let n = batch.len() as u64;
            if !batch.is_empty() {
                let stop = &self.shared.stop;
                self.policy.retry(stop, || task.put(&batch))?;
            }
            unflushed |= !polled.is_empty();
            self.shared.records.fetch_add(n, Ordering::Relaxed);
            self.shared.skipped.fetch_add(skipped, Ordering::Relaxed);
            if unflushed && last_flush.elapsed() >= self.flush_every {
                self.flush(task, &next)?;
                unflushed = false;
                last_flush = Instant::now();
            }
            let lag: i64 = self
                .consumer
                .assignment()
                .iter()
                .filter_map(|tp| self.consumer.lag(tp).ok().flatten())
                .sum();
            self.shared.lag.store(lag, Ordering::Relaxed);
        }
        if unflushed {
            self.flush(task, &next)?;
        }
        Ok(())
    }

    /// Subscribes again when the topics matching `topics.regex` changed (Kafka subscribes
    /// by pattern and picks up new topics).
    fn follow_pattern(&mut self) -> Result<()> {
        let Some((re, log)) = &self.pattern else {
            return Ok(());
        };
        let mut now: Vec<String> = log
            .topics
            .read()
            .keys()
            .filter(|t| !crate::log::is_internal_topic(t) && re.is_match(t))
            .cloned()
            .collect();
        now.sort();
        if now != self.topics {
            let refs: Vec<&str> = now.iter().map(String::as_str).collect();
            self.consumer.subscribe(&refs)?;
            self.topics = now;
        }
        Ok(())
    }

    /// Flushes the task, then commits the next offsets of the partitions this member holds.
    fn flush(
        &mut self,
        task: &mut dyn SinkTask,
        next: &HashMap<TopicPartition, i64>,
    ) -> Result<()> {
        task.flush(next)?;
        let held: std::collections::HashSet<TopicPartition> =
            self.consumer.assignment().into_iter().collect();
        let offsets: Vec<(TopicPartition, OffsetAndMetadata)> = next
            .iter()
            .filter(|(tp, _)| held.contains(*tp))
            .map(|(tp, o)| (tp.clone(), OffsetAndMetadata::new(*o)))
            .collect();
        self.consumer.commit_offsets(&offsets)
    }

    fn convert(
        &mut self,
        r: &crate::ConsumerRecord<'_>,
    ) -> std::result::Result<Option<ConnectRecord>, (Stage, Error)> {
        let topic = r.topic();
        let (key_schema, key) = self
            .pipeline
            .key
            .to_connect(topic, r.key())
            .map_err(|e| (Stage::KeyConverter, e))?;
        let (value_schema, value) = self
            .pipeline
            .value
            .to_connect(topic, r.value())
            .map_err(|e| (Stage::ValueConverter, e))?;
        let record = ConnectRecord {
            topic: topic.to_string(),
            partition: Some(r.partition()),
            key_schema,
            key,
            value_schema,
            value,
            timestamp: Some(r.timestamp()),
            headers: r
                .headers()
                .map(|(k, v)| Header {
                    key: k.to_string(),
                    value: v.map(Bytes::copy_from_slice),
                })
                .collect(),
            offset: Some(r.offset()),
            original: Some((topic.to_string(), r.partition(), r.offset())),
        };
        self.pipeline
            .transforms
            .apply(record)
            .map_err(|e| (Stage::Transformation, e))
    }

    /// Sends the record as it was read to the dead-letter topic, with Kafka's error-context
    /// headers when asked.
    fn dead_letter(&self, r: &crate::ConsumerRecord<'_>, stage: Stage, e: &Error) -> Result<()> {
        let Some((producer, topic)) = &self.dlq else {
            return Ok(());
        };
        let mut rec = match r.value() {
            Some(v) => Record::new(Bytes::copy_from_slice(v)),
            None => Record::default(),
        };
        if let Some(k) = r.key() {
            rec = rec.key(Bytes::copy_from_slice(k));
        }
        rec = rec.timestamp(r.timestamp());
        for (k, v) in r.headers() {
            rec = rec.header(Header {
                key: k.to_string(),
                value: v.map(Bytes::copy_from_slice),
            });
        }
        if self.policy.dlq_headers {
            let class = match stage {
                Stage::KeyConverter => full_class(&self.pipeline.key_class),
                Stage::ValueConverter => full_class(&self.pipeline.value_class),
                Stage::TaskPut => "org.apache.kafka.connect.sink.SinkTask".into(),
                Stage::Transformation => {
                    "org.apache.kafka.connect.transforms.Transformation".into()
                }
            };
            let exception = match e {
                Error::ConnectData { .. } => "org.apache.kafka.connect.errors.DataException",
                _ => "org.apache.kafka.connect.errors.ConnectException",
            };
            let ctx = [
                ("__connect.errors.topic", r.topic().to_string()),
                ("__connect.errors.partition", r.partition().to_string()),
                ("__connect.errors.offset", r.offset().to_string()),
                ("__connect.errors.connector.name", self.name.clone()),
                ("__connect.errors.task.id", self.id.to_string()),
                ("__connect.errors.stage", stage.name().to_string()),
                ("__connect.errors.class.name", class),
                (
                    "__connect.errors.exception.class.name",
                    exception.to_string(),
                ),
                ("__connect.errors.exception.message", e.to_string()),
                // No Java stack here: the error's text, as the closest thing.
                (
                    "__connect.errors.exception.stacktrace",
                    format!("{exception}: {e}"),
                ),
            ];
            for (k, v) in ctx {
                rec = rec.header(Header::new(k, v.into_bytes()));
            }
        }
        producer.send(ProducerRecord {
            topic: topic.clone(),
            partition: None,
            record: rec,
        })?;
        Ok(())
    }
}

/// A converter's class name as Kafka writes it in error headers.
fn full_class(class: &str) -> String {
    match class.rsplit('.').next().unwrap_or(class) {
        "StringConverter" => "org.apache.kafka.connect.storage.StringConverter".into(),
        "ByteArrayConverter" => "org.apache.kafka.connect.converters.ByteArrayConverter".into(),
        "JsonConverter" => "org.apache.kafka.connect.json.JsonConverter".into(),
        _ => class.to_string(),
    }
}
