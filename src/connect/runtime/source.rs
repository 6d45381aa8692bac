//! Source tasks: each poll's records and their source offsets in one transaction.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use serde_json::{Map as JsonMap, Value as Json};

use super::{ErrorPolicy, IDLE, Pipeline, Shared, Stage, describe, ensure_topic};
use crate::connect::ConnectRecord;
use crate::connect::connector::{OffsetReader, SourceRecord, SourceTask, partition_key};
use crate::error::{Error, Result};
use crate::log::{Log, LogInner};
use crate::record::Record;
use crate::{IsolationLevel, ProducerRecord};

/// The key of a connector's offset record: `["<connector>", {<source partition>}]`.
fn offset_key(connector: &str, partition: &JsonMap<String, Json>) -> Vec<u8> {
    let key = Json::Array(vec![
        Json::String(connector.to_string()),
        Json::Object(partition.clone()),
    ]);
    serde_json::to_vec(&key).unwrap_or_default()
}

/// The offsets stored for `connector`: the last committed value of each source partition.
pub(super) fn load_offsets(log: &Log, topic: &str, connector: &str) -> Result<OffsetReader> {
    let mut offsets = HashMap::new();
    let partitions = log.partition_count(topic)?;
    for p in 0..partitions {
        let handle = log
            .partition(topic, p)?
            .with_isolation_level(IsolationLevel::ReadCommitted);
        // Every transaction in the topic decided: another connector's open one would hide
        // the commits after it (a poll's transaction lasts milliseconds).
        let hw = handle.high_watermark();
        let waited = std::time::Instant::now();
        while handle.last_stable_offset() < hw {
            if waited.elapsed() > std::time::Duration::from_mins(1) {
                return Err(Error::invalid_config(
                    topic,
                    "a transaction has been open in it for over a minute: cannot read the \
                     committed offsets",
                ));
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        let end = handle.last_stable_offset();
        let mut at = handle.log_start_offset();
        while at < end {
            // By batches: a run of transaction markers (left by compaction) holds no record
            // but must be stepped over.
            let read = handle.read(at, 1 << 20)?;
            let Some(next) = read.next_offset() else {
                break;
            };
            let mut records = read.records_from(at)?;
            records.retain(|r| r.offset < end);
            at = next;
            for r in records {
                let Some(key) = r.key.as_deref() else {
                    continue;
                };
                let Ok(Json::Array(parts)) = serde_json::from_slice::<Json>(key) else {
                    continue;
                };
                let (Some(Json::String(name)), Some(Json::Object(partition))) =
                    (parts.first(), parts.get(1))
                else {
                    continue;
                };
                if name != connector {
                    continue;
                }
                let k = partition_key(partition);
                match r.value.as_deref().map(serde_json::from_slice::<Json>) {
                    Some(Ok(Json::Object(offset))) => {
                        offsets.insert(k, offset);
                    }
                    None | Some(Ok(Json::Null)) => {
                        offsets.remove(&k);
                    }
                    Some(_) => {}
                }
            }
        }
    }
    Ok(OffsetReader::new(offsets))
}

/// A source partition and the offset after its last record.
type SourcePosition = (JsonMap<String, Json>, JsonMap<String, Json>);

pub(super) struct SourceContext {
    pub(super) name: String,
    pub(super) log: Arc<LogInner>,
    pub(super) offsets_topic: String,
    pub(super) producer: crate::Producer,
    pub(super) exactly_once: bool,
    pub(super) pipeline: Pipeline,
    pub(super) policy: ErrorPolicy,
    pub(super) shared: Arc<Shared>,
    pub(super) known_topics: HashSet<String>,
    pub(super) partitions: i32,
}

/// The most bytes of records the source writes as one batch per partition.
const SEND_CHUNK_BYTES: usize = 256 * 1024;

impl SourceContext {
    pub(super) fn run(&mut self, task: &mut dyn SourceTask) -> Result<()> {
        while !self.shared.stop.load(Ordering::Acquire) {
            if self.shared.paused.load(Ordering::Acquire) {
                std::thread::sleep(IDLE * 5);
                continue;
            }
            let stop = &self.shared.stop;
            let batch = self.policy.retry(stop, || task.poll())?;
            if let Some(lag) = task.lag() {
                self.shared.lag.store(lag, Ordering::Relaxed);
            }
            if batch.is_empty() {
                std::thread::sleep(IDLE);
                continue;
            }
            self.write(batch)?;
            task.commit()?;
        }
        Ok(())
    }

    /// Converts, transforms and writes one poll's records with their offsets.
    fn write(&mut self, batch: Vec<SourceRecord>) -> Result<()> {
        let mut out: Vec<ProducerRecord> = Vec::with_capacity(batch.len());
        let mut last: Vec<SourcePosition> = Vec::new();
        let mut skipped = 0u64;
        for sr in batch {
            if !sr.source_partition.is_empty() {
                match last.iter_mut().find(|(p, _)| *p == sr.source_partition) {
                    Some(slot) => slot.1 = sr.source_offset,
                    None => last.push((sr.source_partition, sr.source_offset)),
                }
            }
            match self.convert(sr.record) {
                Ok(Some(r)) => out.push(r),
                Ok(None) => {}
                Err((stage, e)) => {
                    if !self.policy.tolerate_all {
                        return Err(e);
                    }
                    if self.policy.log {
                        eprintln!(
                            "connector {}: skipped a record: {}",
                            self.name,
                            describe(stage, &e)
                        );
                    }
                    skipped += 1;
                }
            }
        }
        let mut checked: Option<&str> = None;
        for r in &out {
            if checked == Some(r.topic.as_str()) {
                continue;
            }
            checked = Some(&r.topic);
            if !self.known_topics.contains(&r.topic) {
                ensure_topic(&self.log, &r.topic, self.partitions)?;
                self.known_topics.insert(r.topic.clone());
            }
        }
        let n = out.len() as u64;
        if self.exactly_once {
            self.producer.begin_transaction()?;
        }
        let sent = self.send(out, &last);
        match sent {
            Ok(()) if self.exactly_once => {
                // A failed commit may have been decided already (its markers not all
                // written): retry it, never abort it. A task that still fails leaves it to
                // the next `init_transactions`, which completes or aborts it.
                if self.producer.commit_transaction().is_err() {
                    self.producer.commit_transaction()?;
                }
            }
            Ok(()) => self.producer.flush()?,
            Err(e) => {
                if self.exactly_once {
                    let _ = self.producer.abort_transaction();
                }
                return Err(e);
            }
        }
        self.shared.records.fetch_add(n, Ordering::Relaxed);
        self.shared.skipped.fetch_add(skipped, Ordering::Relaxed);
        Ok(())
    }

    fn send(&self, out: Vec<ProducerRecord>, last: &[SourcePosition]) -> Result<()> {
        // A poll's records are all here: written as one batch per partition (in chunks well
        // under a topic's `max.message.bytes`), with no queue or thread between.
        let mut chunk = Vec::new();
        let mut bytes = 0;
        for r in out {
            bytes += r.record.key.as_ref().map_or(0, Bytes::len)
                + r.record.value.as_ref().map_or(0, Bytes::len)
                + r.record
                    .headers
                    .iter()
                    .map(|h| h.key.len() + h.value.as_ref().map_or(0, Bytes::len) + 10)
                    .sum::<usize>()
                + 40;
            chunk.push(r);
            if bytes >= SEND_CHUNK_BYTES {
                self.producer.send_batch(std::mem::take(&mut chunk))?;
                bytes = 0;
            }
        }
        if !chunk.is_empty() {
            self.producer.send_batch(chunk)?;
        }
        for (partition, offset) in last {
            let value = serde_json::to_vec(&Json::Object(offset.clone())).unwrap_or_default();
            let rec = ProducerRecord::new(self.offsets_topic.clone(), value)
                .key(offset_key(&self.name, partition));
            self.producer.send_async(rec)?;
        }
        Ok(())
    }

    fn convert(
        &mut self,
        record: ConnectRecord,
    ) -> std::result::Result<Option<ProducerRecord>, (Stage, Error)> {
        let Some(r) = self
            .pipeline
            .transforms
            .apply(record)
            .map_err(|e| (Stage::Transformation, e))?
        else {
            return Ok(None);
        };
        let ConnectRecord {
            topic,
            partition,
            key_schema,
            key,
            value_schema,
            value,
            timestamp,
            headers,
            ..
        } = r;
        let key = self
            .pipeline
            .key
            .from_connect_owned(&topic, key_schema.as_ref(), key)
            .map_err(|e| (Stage::KeyConverter, e))?;
        let value = self
            .pipeline
            .value
            .from_connect_owned(&topic, value_schema.as_ref(), value)
            .map_err(|e| (Stage::ValueConverter, e))?;
        Ok(Some(ProducerRecord {
            topic,
            partition,
            record: Record {
                key,
                value,
                headers,
                timestamp,
            },
        }))
    }
}
