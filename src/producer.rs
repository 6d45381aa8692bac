//! [`Producer`]: sends records to topics like Kafka's producer — partitioning, batching,
//! compression, idempotence — in-process and blocking.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use parking_lot::{Condvar, Mutex, RwLock};

use crate::config::FlushPolicy;
use crate::error::{Error, Result};
use crate::handle::PartitionHandle;
use crate::log::LogInner;
use crate::partition::writer_now_ms;
use crate::record::{Compression, Header, Record};

/// Producer settings.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ProducerConfig {
    /// Codec for this producer's batches; `None` uses the topic's `compression` (none when the
    /// topic says `producer`).
    pub compression: Option<Compression>,
    /// `send_async` sends a partition's batch once it holds this many bytes. Default 16384.
    pub batch_size: usize,
    /// ... or once its oldest record waited this long. Default 5 ms (Kafka 4's).
    pub linger: Duration,
    /// Idempotent sends (producer id, epoch, sequences): a retried batch is stored once.
    /// Default true (as Kafka).
    pub idempotence: bool,
    /// A stable name: each producer opened with the same name gets the same producer id and
    /// a higher epoch, fencing the older instance (like Kafka's `transactional.id`).
    pub name: Option<String>,
    /// Strengthen the topic's flush policy for this producer's sends (only `EveryBatch`
    /// strengthens; a weaker setting is ignored).
    pub flush_policy: Option<FlushPolicy>,
}

impl Default for ProducerConfig {
    fn default() -> Self {
        ProducerConfig {
            compression: None,
            batch_size: 16 * 1024,
            linger: Duration::from_millis(5),
            idempotence: true,
            name: None,
            flush_policy: None,
        }
    }
}

/// A record addressed to a topic (and optionally a partition).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerRecord {
    /// Topic.
    pub topic: String,
    /// Partition; `None` lets the partitioner choose (murmur2 of the key, sticky when keyless).
    pub partition: Option<i32>,
    /// The record.
    pub record: Record,
}

impl ProducerRecord {
    /// A record with this value and no key.
    pub fn new(topic: impl Into<String>, value: impl Into<Bytes>) -> Self {
        ProducerRecord {
            topic: topic.into(),
            partition: None,
            record: Record::new(value),
        }
    }

    /// A record with a null value (a tombstone).
    pub fn tombstone(topic: impl Into<String>, key: impl Into<Bytes>) -> Self {
        ProducerRecord {
            topic: topic.into(),
            partition: None,
            record: Record::tombstone(key),
        }
    }

    /// Sets the key.
    #[must_use]
    pub fn key(mut self, key: impl Into<Bytes>) -> Self {
        self.record.key = Some(key.into());
        self
    }

    /// Sets the partition.
    #[must_use]
    pub fn partition(mut self, p: i32) -> Self {
        self.partition = Some(p);
        self
    }

    /// Adds a header.
    #[must_use]
    pub fn header(mut self, h: Header) -> Self {
        self.record.headers.push(h);
        self
    }

    /// Sets the timestamp (ms since the epoch).
    #[must_use]
    pub fn timestamp(mut self, ms: i64) -> Self {
        self.record.timestamp = Some(ms);
        self
    }
}

/// Where a record was stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordMetadata {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
    /// Timestamp stored (the append time under LogAppendTime).
    pub timestamp: i64,
}

type Slot = Arc<(Mutex<Option<Result<RecordMetadata>>>, Condvar)>;

/// The pending result of [`Producer::send_async`].
#[derive(Debug)]
pub struct Receipt {
    slot: Slot,
}

impl Receipt {
    /// Blocks until the record is acknowledged (or failed).
    ///
    /// # Errors
    /// The send's error.
    pub fn wait(self) -> Result<RecordMetadata> {
        let (m, cv) = &*self.slot;
        let mut g = m.lock();
        loop {
            if let Some(r) = g.take() {
                return r;
            }
            cv.wait(&mut g);
        }
    }

    /// The result if it is already known.
    pub fn try_result(&self) -> Option<Result<RecordMetadata>> {
        self.slot.0.lock().take()
    }
}

fn fill(slot: &Slot, r: Result<RecordMetadata>) {
    *slot.0.lock() = Some(r);
    slot.1.notify_all();
}

struct Accumulator {
    records: Vec<Record>,
    slots: Vec<Slot>,
    bytes: usize,
    since: Instant,
}

#[derive(Default)]
struct Queues {
    batches: BTreeMap<(String, i32), Accumulator>,
    /// Records queued or being sent.
    in_flight: usize,
    flush_requested: bool,
}

pub(crate) struct ProducerInner {
    log: Arc<LogInner>,
    config: ProducerConfig,
    producer_id: i64,
    epoch: i16,
    handles: RwLock<HashMap<(String, i32), PartitionHandle>>,
    queues: Mutex<Queues>,
    queued: Condvar,
    drained: Condvar,
    stop: AtomicBool,
    sender: Mutex<Option<JoinHandle<()>>>,
}

/// A producer: `Clone + Send + Sync`; clones share one producer id and one accumulator.
///
/// ```
/// use topiclog::{Log, ProducerConfig, ProducerRecord};
/// let dir = tempfile::tempdir().expect("a temporary directory");
/// let log = Log::open(dir.path())?;
/// log.create_topic("events", 3)?;
/// let producer = log.producer(ProducerConfig::default())?;
/// let md = producer.send(ProducerRecord::new("events", "hello").key("user-1"))?;
/// assert_eq!(md.offset, 0);
/// # Ok::<_, topiclog::Error>(())
/// ```
#[derive(Clone)]
pub struct Producer {
    inner: Arc<ProducerInner>,
}

impl std::fmt::Debug for Producer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Producer")
            .field("producer_id", &self.inner.producer_id)
            .field("epoch", &self.inner.epoch)
            .finish_non_exhaustive()
    }
}

impl Producer {
    pub(crate) fn new(log: Arc<LogInner>, config: ProducerConfig) -> Result<Producer> {
        log.check_open()?;
        if config.batch_size == 0 {
            return Err(Error::invalid_config("batch_size", "must be at least 1"));
        }
        if let Some(c) = config.compression
            && !c.is_available()
        {
            return Err(Error::invalid_config(
                "compression",
                format!("codec {c} is not compiled in"),
            ));
        }
        let (producer_id, epoch) = if config.idempotence || config.name.is_some() {
            log.init_producer_id(config.name.as_deref())?
        } else {
            (-1, -1)
        };
        let inner = Arc::new(ProducerInner {
            log,
            config,
            producer_id,
            epoch,
            handles: RwLock::new(HashMap::new()),
            queues: Mutex::new(Queues::default()),
            queued: Condvar::new(),
            drained: Condvar::new(),
            stop: AtomicBool::new(false),
            sender: Mutex::new(None),
        });
        Ok(Producer { inner })
    }

    /// This producer's id and epoch (-1, -1 without idempotence).
    pub fn producer_id(&self) -> (i64, i16) {
        (self.inner.producer_id, self.inner.epoch)
    }

    /// Sends one record and blocks until it is acknowledged under the topic's flush policy.
    ///
    /// # Errors
    /// [`Error::Fenced`] when a newer producer with the same name exists; topic, partition,
    /// size and I/O errors as [`PartitionHandle::append`].
    #[allow(clippy::needless_pass_by_value)] // Kafka's shape: the record is handed over.
    pub fn send(&self, record: ProducerRecord) -> Result<RecordMetadata> {
        let (topic, partition) = self.inner.route(&record)?;
        let r = self
            .inner
            .send_records(&topic, partition, std::slice::from_ref(&record.record))?;
        Ok(RecordMetadata {
            topic,
            partition,
            offset: r.0,
            timestamp: r.1,
        })
    }

    /// Sends many records: one batch per partition (atomic per partition), blocking until all
    /// are acknowledged. Results are in input order.
    ///
    /// # Errors
    /// The first error; partitions before it may have been written.
    pub fn send_batch(&self, records: Vec<ProducerRecord>) -> Result<Vec<RecordMetadata>> {
        let mut by_part: BTreeMap<(String, i32), Vec<(usize, Record)>> = BTreeMap::new();
        for (i, r) in records.into_iter().enumerate() {
            let key = self.inner.route(&r)?;
            by_part.entry(key).or_default().push((i, r.record));
        }
        let mut out: Vec<Option<RecordMetadata>> = Vec::new();
        for ((topic, partition), recs) in by_part {
            let (idx, rs): (Vec<usize>, Vec<Record>) = recs.into_iter().unzip();
            let (base, ts) = self.inner.send_records(&topic, partition, &rs)?;
            for (k, i) in idx.into_iter().enumerate() {
                if out.len() <= i {
                    out.resize(i + 1, None);
                }
                if let Some(slot) = out.get_mut(i) {
                    *slot = Some(RecordMetadata {
                        topic: topic.clone(),
                        partition,
                        offset: base + k as i64,
                        timestamp: rs
                            .get(k)
                            .and_then(|r| r.timestamp)
                            .filter(|_| ts < 0)
                            .unwrap_or(ts),
                    });
                }
            }
        }
        Ok(out.into_iter().flatten().collect())
    }

    /// Queues a record in its partition's accumulator and returns at once; the batch goes out
    /// when it reaches `batch_size` bytes or `linger` passes. Wait on the receipt for the
    /// result.
    ///
    /// # Errors
    /// Routing errors (unknown topic or partition) and a closed log.
    pub fn send_async(&self, record: ProducerRecord) -> Result<Receipt> {
        self.inner.ensure_sender(&self.inner)?;
        let key = self.inner.route(&record)?;
        let slot: Slot = Arc::new((Mutex::new(None), Condvar::new()));
        let size = record.record.key.as_ref().map_or(0, Bytes::len)
            + record.record.value.as_ref().map_or(0, Bytes::len)
            + 16;
        let mut q = self.inner.queues.lock();
        let acc = q.batches.entry(key).or_insert_with(|| Accumulator {
            records: Vec::new(),
            slots: Vec::new(),
            bytes: 0,
            since: Instant::now(),
        });
        acc.records.push(record.record);
        acc.slots.push(Arc::clone(&slot));
        acc.bytes += size;
        let full = acc.bytes >= self.inner.config.batch_size;
        q.in_flight += 1;
        drop(q);
        if full {
            self.inner.queued.notify_all();
        }
        Ok(Receipt { slot })
    }

    /// Sends everything queued by `send_async` now and waits until it is acknowledged.
    ///
    /// # Errors
    /// None today; kept fallible for a closed log.
    pub fn flush(&self) -> Result<()> {
        let mut q = self.inner.queues.lock();
        q.flush_requested = true;
        self.inner.queued.notify_all();
        while q.in_flight > 0 {
            self.inner.drained.wait(&mut q);
        }
        q.flush_requested = false;
        Ok(())
    }
}

impl ProducerInner {
    fn handle(&self, topic: &str, partition: i32) -> Result<PartitionHandle> {
        if let Some(h) = self.handles.read().get(&(topic.to_string(), partition)) {
            return Ok(h.clone());
        }
        let h = crate::log::handle_for(&self.log, topic, partition)?;
        self.handles
            .write()
            .insert((topic.to_string(), partition), h.clone());
        Ok(h)
    }

    fn route(&self, r: &ProducerRecord) -> Result<(String, i32)> {
        let p = if let Some(p) = r.partition {
            p
        } else {
            let size = r.record.value.as_ref().map_or(0, Bytes::len);
            crate::log::partition_for(&self.log, &r.topic, r.record.key.as_deref(), size)?
        };
        Ok((r.topic.clone(), p))
    }

    /// Encodes `records` as one batch and appends it; returns (base offset, timestamp).
    fn send_records(&self, topic: &str, partition: i32, records: &[Record]) -> Result<(i64, i64)> {
        self.log.check_open()?;
        if self.producer_id >= 0 {
            self.log
                .check_epoch(self.config.name.as_deref(), self.producer_id, self.epoch)?;
        }
        let h = self.handle(topic, partition)?;
        let part = h.live_partition()?;
        let cfg = part.config();
        if cfg.cleanup_policy.compacts() && records.iter().any(|r| r.key.is_none()) {
            return Err(Error::KeyRequired {
                topic: topic.to_string(),
            });
        }
        let codec = self
            .config
            .compression
            .or(cfg.compression)
            .unwrap_or_default();
        let now = writer_now_ms();
        let idempotent = self.producer_id >= 0;
        let producer = idempotent.then_some((self.producer_id, self.epoch));
        let r = crate::handle::with_encoded(codec, records, now, producer, |data| {
            if idempotent {
                part.append_sequenced(data)
            } else {
                part.append_encoded(data, None)
            }
        })?;
        if self.config.flush_policy == Some(FlushPolicy::EveryBatch)
            && !cfg.flush_policy.syncs_each_batch()
        {
            part.sync_to(r.last_offset + 1)?;
        }
        let ts = if cfg.timestamp_type == crate::TimestampType::LogAppendTime {
            r.timestamp
        } else {
            records.first().and_then(|x| x.timestamp).unwrap_or(now)
        };
        Ok((r.base_offset, ts))
    }

    fn ensure_sender(&self, me: &Arc<ProducerInner>) -> Result<()> {
        let mut s = self.sender.lock();
        if s.is_some() {
            return Ok(());
        }
        let weak: Weak<ProducerInner> = Arc::downgrade(me);
        let handle = std::thread::Builder::new()
            .name("topiclog-producer".into())
            .spawn(move || sender_loop(&weak))
            .map_err(|e| Error::io("topiclog-producer thread", e))?;
        *s = Some(handle);
        Ok(())
    }

    /// Takes the batches that are due (full, lingered, or all when flushing or stopping).
    fn due(&self, q: &mut Queues, all: bool) -> Vec<((String, i32), Accumulator)> {
        let linger = self.config.linger;
        let batch = self.config.batch_size;
        let keys: Vec<(String, i32)> = q
            .batches
            .iter()
            .filter(|(_, a)| all || a.bytes >= batch || a.since.elapsed() >= linger)
            .map(|(k, _)| k.clone())
            .collect();
        keys.into_iter()
            .filter_map(|k| q.batches.remove(&k).map(|a| (k, a)))
            .collect()
    }

    fn send_due(&self, due: Vec<((String, i32), Accumulator)>) {
        for ((topic, partition), acc) in due {
            let n = acc.slots.len();
            match self.send_records(&topic, partition, &acc.records) {
                Ok((base, ts)) => {
                    for (i, s) in acc.slots.iter().enumerate() {
                        fill(
                            s,
                            Ok(RecordMetadata {
                                topic: topic.clone(),
                                partition,
                                offset: base + i as i64,
                                timestamp: ts,
                            }),
                        );
                    }
                }
                Err(e) => {
                    for s in &acc.slots {
                        fill(s, Err(e.duplicate()));
                    }
                }
            }
            let mut q = self.queues.lock();
            q.in_flight = q.in_flight.saturating_sub(n);
            drop(q);
            self.drained.notify_all();
        }
    }
}

fn sender_loop(weak: &Weak<ProducerInner>) {
    loop {
        let Some(inner) = weak.upgrade() else { return };
        let due = {
            let mut q = inner.queues.lock();
            let stopping = inner.stop.load(Ordering::Acquire);
            let all = q.flush_requested || stopping;
            let d = inner.due(&mut q, all);
            if d.is_empty() {
                if stopping {
                    return;
                }
                let wait = q
                    .batches
                    .values()
                    .map(|a| inner.config.linger.saturating_sub(a.since.elapsed()))
                    .min()
                    .unwrap_or(Duration::from_millis(100));
                inner
                    .queued
                    .wait_for(&mut q, wait.max(Duration::from_micros(100)));
                continue;
            }
            d
        };
        inner.send_due(due);
    }
}

impl Drop for ProducerInner {
    fn drop(&mut self) {
        // The last handle is gone: send what is queued here, then let the thread exit.
        self.stop.store(true, Ordering::Release);
        let due = {
            let mut q = self.queues.lock();
            self.due(&mut q, true)
        };
        self.send_due(due);
        self.queued.notify_all();
        if let Some(h) = self.sender.lock().take() {
            // The sender holds only a weak reference and exits on its next wake-up.
            drop(h);
        }
    }
}
