//! [`Producer`]: sends records to topics like Kafka's producer — partitioning, batching,
//! compression, idempotence — in-process and blocking.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::hash::BuildHasherDefault;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use parking_lot::{Condvar, Mutex, MutexGuard, RwLock};

use crate::clock::now_ms;
use crate::config::FlushPolicy;
use crate::error::{Error, Result};
use crate::log::LogInner;
use crate::log::PartitionHandle;
use crate::partition::producer_state::IdHasher;
use crate::record::Record;

mod config;
mod metrics;
mod partitioner;
mod queues;
mod receipt;
mod txn;

pub use config::{ProducerConfig, ProducerRecord};
pub use metrics::ProducerMetrics;
pub use partitioner::{DefaultPartitioner, Partitioner};
use queues::{Batch, Entry, Key, Queues, estimate};
pub use receipt::{Receipt, RecordMetadata};
use receipt::{Slot, fill};

pub(crate) struct ProducerInner {
    log: Arc<LogInner>,
    config: ProducerConfig,
    producer_id: i64,
    epoch: i16,
    /// Partition handles by topic, indexed by partition.
    handles: RwLock<HashMap<String, Vec<Option<PartitionHandle>>, BuildHasherDefault<IdHasher>>>,
    queues: Mutex<Queues>,
    /// Wakes the sender: a batch is due.
    queued: Condvar,
    /// Wakes flushers and callers blocked on `buffer.memory`: records were acknowledged.
    drained: Condvar,
    sender: Mutex<Option<JoinHandle<()>>>,
    /// `queues.in_flight` and `queues.closed`, readable without the lock: a `send` with
    /// nothing queued (the common case) takes no lock of the producer's.
    in_flight: AtomicUsize,
    closed: AtomicBool,
    /// What [`Producer::metrics`] reports: relaxed counters the send path adds to.
    metrics: metrics::Counters,
    /// The transactional state, for a producer with a `transactional.id`.
    txn: Option<txn::Txn>,
}

/// Flushes and stops the producer when the last [`Producer`] clone goes (the sender thread
/// holds the inner state too, so the inner state's own drop comes too late for that).
struct LastHandle {
    inner: Arc<ProducerInner>,
}

impl Drop for LastHandle {
    fn drop(&mut self) {
        let _ = self.inner.close();
    }
}

/// A producer: `Clone + Send + Sync`; clones share one producer id and one accumulator.
///
/// Records queued by [`Producer::send_async`] live in memory until their batch is sent.
/// Dropping the last clone (or calling [`Producer::close`]) sends them and waits up to
/// `close_timeout` for their acknowledgements, so "drop the producer, then close the log" loses
/// nothing; records still queued when that wait ends, or when the [`Log`] closes first, fail
/// with [`Error::Closed`] in their [`Receipt`]s and are not stored. An acknowledged record is
/// as durable as the topic's flush policy makes it (see `docs/durability.md`).
///
/// [`Log`]: crate::Log
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
    _last: Arc<LastHandle>,
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
            return Err(Error::invalid_config("batch.size", "must be at least 1"));
        }
        if config.buffer_memory == 0 {
            return Err(Error::invalid_config("buffer.memory", "must be at least 1"));
        }
        if let Some(c) = config.compression
            && !c.is_available()
        {
            return Err(Error::invalid_config(
                "compression",
                format!("codec {c} is not compiled in"),
            ));
        }
        let txn = match &config.transactional_id {
            Some(id) => {
                if !config.idempotence {
                    return Err(Error::invalid_config(
                        "enable.idempotence",
                        "a transactional producer is idempotent (as Kafka requires)",
                    ));
                }
                if config.name.is_some() {
                    return Err(Error::invalid_config(
                        "transactional.id",
                        "a producer has a name or a transactional id, not both",
                    ));
                }
                let ms = config.transaction_timeout.as_millis();
                let Ok(timeout_ms) = i32::try_from(ms) else {
                    return Err(Error::invalid_config(
                        "transaction.timeout.ms",
                        "at most i32::MAX ms",
                    ));
                };
                if timeout_ms < 1 {
                    return Err(Error::invalid_config(
                        "transaction.timeout.ms",
                        "at least 1 ms",
                    ));
                }
                Some(txn::Txn::new(id.clone(), timeout_ms))
            }
            None => None,
        };
        let (producer_id, epoch) = if txn.is_some() {
            // `init_transactions` takes the id and epoch.
            (-1, -1)
        } else if config.idempotence || config.name.is_some() {
            log.init_producer_id(config.name.as_deref())?
        } else {
            (-1, -1)
        };
        let inner = Arc::new(ProducerInner {
            log,
            config,
            producer_id,
            epoch,
            handles: RwLock::new(HashMap::default()),
            queues: Mutex::new(Queues::default()),
            queued: Condvar::new(),
            drained: Condvar::new(),
            in_flight: AtomicUsize::new(0),
            closed: AtomicBool::new(false),
            sender: Mutex::new(None),
            metrics: metrics::Counters::default(),
            txn,
        });
        let last = Arc::new(LastHandle {
            inner: Arc::clone(&inner),
        });
        Ok(Producer { inner, _last: last })
    }

    /// This producer's id and epoch (-1, -1 without idempotence, and for a transactional
    /// producer before `init_transactions`).
    pub fn producer_id(&self) -> (i64, i16) {
        match &self.inner.txn {
            Some(txn) => txn.ids(),
            None => (self.inner.producer_id, self.inner.epoch),
        }
    }

    /// This producer's metrics (all clones together): records, bytes and batches stored,
    /// batch latency quantiles, failures and `buffer.memory` use. Totals count from the
    /// producer's creation; rates are over the time since the previous `metrics()` call on
    /// this producer, or since its creation (see [`ProducerMetrics`]).
    ///
    /// Reading costs a walk of the latency histogram's 496 counters and a brief hold of the
    /// producer's queue lock (for the buffer's use); sending while nobody reads costs a few
    /// relaxed atomic additions per batch, and two monotonic clock reads for each batch
    /// timed (every batch of several records, one single-record batch in 8), no lock.
    ///
    /// ```
    /// use topiclog::{Log, ProducerConfig, ProducerRecord};
    /// let dir = tempfile::tempdir().expect("a temporary directory");
    /// let log = Log::open(dir.path())?;
    /// log.create_topic("clicks", 2)?;
    /// let producer = log.producer(ProducerConfig::default())?;
    /// for i in 0..1000 {
    ///     producer.send_async(ProducerRecord::new("clicks", format!("click {i}")))?;
    /// }
    /// producer.flush()?;
    /// let m = producer.metrics();
    /// assert_eq!(m.record_send_total, 1000);
    /// assert!(m.records_per_batch_avg > 1.0, "send_async batches");
    /// assert_eq!(m.buffer_available_bytes, m.buffer_total_bytes, "all acknowledged");
    /// assert_eq!(m.record_error_total, 0);
    /// # Ok::<_, topiclog::Error>(())
    /// ```
    pub fn metrics(&self) -> ProducerMetrics {
        let used = self.inner.queues.lock().held;
        self.inner
            .metrics
            .read(self.inner.config.buffer_memory, used)
    }

    /// Sends one record and blocks until it is acknowledged under the topic's flush policy.
    /// A record for a partition that still has `send_async` records queued goes behind them,
    /// so one producer's records keep their order per partition, as Kafka's do.
    ///
    /// # Errors
    /// [`Error::Fenced`] when a newer producer with the same name exists; [`Error::Closed`]
    /// after [`Producer::close`] or the log's close; topic, partition, size and I/O errors as
    /// [`PartitionHandle::append`]; [`Error::BufferExhausted`] as [`Producer::send_async`]
    /// when the record goes behind queued ones.
    ///
    /// ```
    /// use topiclog::{Log, ProducerConfig, ProducerRecord, partition_for_key};
    /// let dir = tempfile::tempdir().expect("a temporary directory");
    /// let log = Log::open(dir.path())?;
    /// log.create_topic("orders", 4)?;
    /// let producer = log.producer(ProducerConfig::default())?;
    /// let md = producer.send(ProducerRecord::new("orders", "created").key("customer-7"))?;
    /// assert_eq!(md.partition, partition_for_key(b"customer-7", 4)); // as Kafka's client picks
    /// assert_eq!(md.offset, 0);
    /// # Ok::<_, topiclog::Error>(())
    /// ```
    pub fn send(&self, record: ProducerRecord) -> Result<RecordMetadata> {
        let sent = self.send_one(record);
        if sent.is_err() {
            self.inner.metrics.failed(1);
        }
        sent
    }

    /// [`Producer::send`], without counting its failure.
    #[inline]
    fn send_one(&self, record: ProducerRecord) -> Result<RecordMetadata> {
        let partition = self.inner.partition_of(&record)?;
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(closed_producer());
        }
        // Records queued by `send_async` (of this thread, seen in program order) go first.
        if self.inner.in_flight.load(Ordering::Acquire) > 0 {
            let key = (record.topic.clone(), partition);
            let mut q = self.inner.queues.lock();
            if q.closed {
                return Err(closed_producer());
            }
            if q.pending.get(&key).is_some_and(|&n| n > 0) {
                // Behind the queued records, through the sender, which sends a partition's
                // batches one after another.
                let (slot, _) = self
                    .inner
                    .enqueue(&mut q, key.clone(), record.record, false)?;
                q.urgent.insert(key);
                drop(q);
                self.inner.queued.notify_all();
                return Receipt { slot }.wait();
            }
        }
        let records = std::slice::from_ref(&record.record);
        let sent = self.inner.send_records(&record.topic, partition, records)?;
        // The record's own topic name moves into the metadata: no copy per send.
        Ok(sent.metadata(record.topic, partition, records, 0))
    }

    /// Sends many records: one batch per partition (atomic per partition), blocking until all
    /// are acknowledged. Results are in input order. Each partition's batch must fit the
    /// topic's `max.message.bytes`; use [`Producer::send_async`] to have batches sized for you.
    ///
    /// # Errors
    /// The first error; partitions before it may have been written. [`Error::RecordTooLarge`]
    /// when a partition's batch exceeds `max.message.bytes`.
    pub fn send_batch(&self, records: Vec<ProducerRecord>) -> Result<Vec<RecordMetadata>> {
        let n = records.len();
        let mut stored = 0;
        let sent = self.send_parts(records, &mut stored);
        if sent.is_err() {
            self.inner.metrics.failed(n - stored);
        }
        sent
    }

    /// Sends `records` to one partition as one batch and waits for it, behind this producer's
    /// queued records of that partition: [`Producer::send_batch`] for records already routed
    /// (the streams runtime's outputs), with no per-record topic or routing.
    #[cfg(feature = "streams")]
    pub(crate) fn send_to_partition<E: crate::log::Encodable + ?Sized>(
        &self,
        topic: &str,
        partition: i32,
        records: &E,
    ) -> Result<()> {
        if self.inner.queues.lock().closed {
            return Err(closed_producer());
        }
        if self.inner.in_flight.load(Ordering::Acquire) > 0 {
            self.inner.wait_partition(&(topic.to_string(), partition));
        }
        match self.inner.send_records(topic, partition, records) {
            Ok(_) => Ok(()),
            Err(e) => {
                self.inner.metrics.failed(records.count());
                Err(e)
            }
        }
    }

    /// [`Producer::send_batch`], counting the records stored into `stored`.
    fn send_parts(
        &self,
        records: Vec<ProducerRecord>,
        stored: &mut usize,
    ) -> Result<Vec<RecordMetadata>> {
        let mut by_part: BTreeMap<Key, Vec<(usize, Record)>> = BTreeMap::new();
        for (i, r) in records.into_iter().enumerate() {
            let key = self.inner.route(&r)?;
            by_part.entry(key).or_default().push((i, r.record));
        }
        let mut out: Vec<Option<RecordMetadata>> = Vec::new();
        for ((topic, partition), recs) in by_part {
            if self.inner.queues.lock().closed {
                return Err(closed_producer());
            }
            // Behind this producer's queued records of the partition, as `send` is.
            self.inner.wait_partition(&(topic.clone(), partition));
            let (idx, rs): (Vec<usize>, Vec<Record>) = recs.into_iter().unzip();
            let sent = self.inner.send_records(&topic, partition, rs.as_slice())?;
            *stored += rs.len();
            for (k, i) in idx.into_iter().enumerate() {
                if out.len() <= i {
                    out.resize(i + 1, None);
                }
                if let Some(slot) = out.get_mut(i) {
                    *slot = Some(sent.metadata(topic.clone(), partition, &rs, k));
                }
            }
        }
        Ok(out.into_iter().flatten().collect())
    }

    /// Queues a record in its partition's current batch and returns at once; a batch goes out
    /// when the next record would take it past `batch_size`, or `linger` passes. Wait on the
    /// receipt for the result, or call [`Producer::flush`].
    ///
    /// Blocks while the records queued and not yet acknowledged hold `buffer_memory` bytes,
    /// up to `max_block`.
    ///
    /// # Errors
    /// Routing errors (unknown topic or partition); [`Error::Closed`] for a closed log or
    /// producer; [`Error::BufferExhausted`] when no room freed up within `max_block`, or the
    /// record alone is larger than `buffer_memory`.
    ///
    /// ```
    /// use topiclog::{Log, ProducerConfig, ProducerRecord};
    /// let dir = tempfile::tempdir().expect("a temporary directory");
    /// let log = Log::open(dir.path())?;
    /// log.create_topic("clicks", 2)?;
    /// let producer = log.producer(ProducerConfig::default())?;
    /// let receipts = (0..1000)
    ///     .map(|i| producer.send_async(ProducerRecord::new("clicks", format!("click {i}"))))
    ///     .collect::<Result<Vec<_>, _>>()?;
    /// producer.flush()?; // fails if any of them failed
    /// let last = receipts.into_iter().last().map(|r| r.wait()).transpose()?;
    /// assert!(last.is_some());
    /// # Ok::<_, topiclog::Error>(())
    /// ```
    pub fn send_async(&self, record: ProducerRecord) -> Result<Receipt> {
        let queued = self.queue(record);
        if queued.is_err() {
            self.inner.metrics.failed(1);
        }
        queued
    }

    /// [`Producer::send_async`], without counting its failure.
    fn queue(&self, record: ProducerRecord) -> Result<Receipt> {
        self.inner.log.check_open()?;
        if let Some(txn) = &self.inner.txn {
            txn.check_send()?;
        }
        self.inner.ensure_sender(&self.inner)?;
        let partition = self.inner.partition_of(&record)?;
        // The record's topic name becomes its queue's key: no copy per record.
        let ProducerRecord { topic, record, .. } = record;
        let mut q = self.inner.queues.lock();
        let (slot, full) = self
            .inner
            .enqueue(&mut q, (topic, partition), record, true)?;
        drop(q);
        if full {
            self.inner.queued.notify_all();
        }
        Ok(Receipt { slot })
    }

    /// Sends everything queued by `send_async` now and waits until it is acknowledged.
    ///
    /// Stricter than Kafka's `flush()`, which only waits: this one also fails when any
    /// `send_async` record failed since the previous `flush` (of any clone) returned, so a
    /// caller that checks `flush` needs no look at each [`Receipt`]. Each receipt still holds
    /// its own result.
    ///
    /// # Errors
    /// [`Error::SendFailed`] with how many records failed and the first error.
    ///
    /// ```
    /// use topiclog::{Log, ProducerConfig, ProducerRecord};
    /// let dir = tempfile::tempdir().expect("a temporary directory");
    /// let log = Log::open(dir.path())?;
    /// log.create_topic("clicks", 1)?;
    /// let producer = log.producer(ProducerConfig::default())?;
    /// producer.send_async(ProducerRecord::new("clicks", "a"))?;
    /// producer.flush()?;
    /// assert_eq!(log.partition("clicks", 0)?.log_end_offset(), 1);
    /// # Ok::<_, topiclog::Error>(())
    /// ```
    pub fn flush(&self) -> Result<()> {
        let mut q = self.inner.queues.lock();
        q.flushing += 1;
        self.inner.queued.notify_all();
        while q.in_flight > 0 {
            self.inner.drained.wait(&mut q);
        }
        q.flushing -= 1;
        q.take_failures()
    }

    /// Sends what is queued, waits up to `close_timeout` for it to be acknowledged, and closes
    /// the producer: every clone's later sends fail with [`Error::Closed`]. Records still
    /// queued when the wait ends fail with [`Error::Closed`] and are not stored. Dropping the
    /// last clone does the same, without the result. Closing twice is a no-op.
    ///
    /// # Errors
    /// [`Error::SendFailed`] when any `send_async` record failed since the last `flush`,
    /// counting those the wait gave up on.
    ///
    /// ```
    /// use topiclog::{Error, Log, ProducerConfig, ProducerRecord};
    /// let dir = tempfile::tempdir().expect("a temporary directory");
    /// let log = Log::open(dir.path())?;
    /// log.create_topic("clicks", 1)?;
    /// let producer = log.producer(ProducerConfig::default())?;
    /// producer.send_async(ProducerRecord::new("clicks", "a"))?;
    /// producer.close()?; // sends what is queued first
    /// assert!(matches!(producer.send(ProducerRecord::new("clicks", "b")), Err(Error::Closed { .. })));
    /// # Ok::<_, topiclog::Error>(())
    /// ```
    pub fn close(&self) -> Result<()> {
        self.inner.close()
    }
}

fn closed_producer() -> Error {
    Error::Closed {
        what: "the producer",
    }
}

/// Where a batch was stored.
struct Sent {
    base: i64,
    /// The append time, under `LogAppendTime`.
    append_time: Option<i64>,
    /// The timestamp records without one were given.
    now: i64,
}

impl Sent {
    fn metadata(
        &self,
        topic: String,
        partition: i32,
        records: &[Record],
        i: usize,
    ) -> RecordMetadata {
        let own = records.get(i).and_then(|r| r.timestamp);
        RecordMetadata {
            topic,
            partition,
            offset: self.base + i as i64,
            timestamp: self.append_time.or(own).unwrap_or(self.now),
        }
    }
}

impl ProducerInner {
    /// The partition's handle, from this producer's cache (looked up by `&str`: no
    /// allocation per send).
    fn handle(&self, topic: &str, partition: i32) -> Result<PartitionHandle> {
        let index = usize::try_from(partition).ok();
        if let Some(h) = self
            .handles
            .read()
            .get(topic)
            .and_then(|parts| parts.get(index?)?.clone())
        {
            return Ok(h);
        }
        let h = crate::log::handle_for(&self.log, topic, partition)?;
        if let Some(i) = index {
            let mut handles = self.handles.write();
            let parts = handles.entry(topic.to_string()).or_default();
            if parts.len() <= i {
                parts.resize(i + 1, None);
            }
            if let Some(slot) = parts.get_mut(i) {
                *slot = Some(h.clone());
            }
        }
        Ok(h)
    }

    fn route(&self, r: &ProducerRecord) -> Result<Key> {
        Ok((r.topic.clone(), self.partition_of(r)?))
    }

    /// The record's partition: its own, the configured partitioner's choice (checked against
    /// the topic's partition count), or Kafka's default partitioner's.
    #[inline]
    fn partition_of(&self, r: &ProducerRecord) -> Result<i32> {
        match r.partition {
            Some(p) => Ok(p),
            None => self.choose_partition(r),
        }
    }

    /// [`ProducerInner::partition_of`] for a record that names no partition.
    fn choose_partition(&self, r: &ProducerRecord) -> Result<i32> {
        let key = r.record.key.as_deref();
        let Some(partitioner) = &self.config.partitioner else {
            let size = r.record.value.as_ref().map_or(0, Bytes::len);
            return crate::log::partition_for(&self.log, &r.topic, key, size);
        };
        let partitions = crate::log::partition_count(&self.log, &r.topic)?;
        let p = partitioner.partition(&r.topic, key, r.record.value.as_deref(), partitions);
        if (0..partitions).contains(&p) {
            Ok(p)
        } else {
            Err(Error::PartitionerOutOfRange {
                topic: r.topic.clone(),
                partition: p,
                partitions,
            })
        }
    }

    /// Adds a record to its partition's last batch (or a new one past `batch.size`), waiting
    /// for room in `buffer.memory`. Returns the record's slot and whether the sender should
    /// wake (the partition holds a full batch, or a first one whose linger starts now).
    fn enqueue(
        &self,
        q: &mut MutexGuard<'_, Queues>,
        key: Key,
        record: Record,
        report: bool,
    ) -> Result<(Slot, bool)> {
        if q.closed {
            return Err(closed_producer());
        }
        let size = estimate(&record);
        let limit = self.config.buffer_memory;
        let start = Instant::now();
        let exhausted = |waited: Duration| Error::BufferExhausted {
            requested: size,
            buffer_memory: limit,
            waited,
        };
        if size > limit {
            return Err(exhausted(Duration::ZERO));
        }
        let deadline = start.checked_add(self.config.max_block);
        while q.held > 0 && q.held + size > limit {
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(exhausted(start.elapsed()));
            }
            q.blocked += 1;
            self.queued.notify_all();
            match deadline {
                Some(d) => {
                    self.drained.wait_until(q, d);
                }
                None => self.drained.wait(q),
            }
            q.blocked -= 1;
            if q.closed {
                return Err(closed_producer());
            }
        }
        let slot: Slot = Arc::new((Mutex::new(None), Condvar::new()));
        let batch_size = self.config.batch_size;
        let q = &mut **q;
        // Looked up before inserting: the key is copied for a partition's first record only.
        match q.pending.get_mut(&key) {
            Some(n) => *n += 1,
            None => {
                q.pending.insert(key.clone(), 1);
            }
        }
        q.in_flight += 1;
        self.in_flight.store(q.in_flight, Ordering::Release);
        q.held += size;
        let batches = q.batches.entry(key).or_default();
        let fits = batches
            .back()
            .is_some_and(|b| b.records.is_empty() || b.bytes + size <= batch_size);
        if !fits {
            batches.push_back(Batch::new());
        }
        // A partition's first batch starts a linger the sender may not be timing yet (it
        // sleeps up to 100 ms when nothing is queued): wake it to time this one.
        let started = !fits && batches.len() == 1;
        if let Some(b) = batches.back_mut() {
            b.records.push(record);
            b.entries.push(Entry {
                slot: Arc::clone(&slot),
                size,
                report,
            });
            b.bytes += size;
        }
        let full = batches.len() > 1 || batches.back().is_some_and(|b| b.bytes >= batch_size);
        Ok((slot, full || started))
    }

    /// Waits until none of this producer's records for `key` are queued or being sent.
    fn wait_partition(&self, key: &Key) {
        let mut q = self.queues.lock();
        if q.pending.get(key).is_some_and(|&n| n > 0) {
            q.urgent.insert(key.clone());
            self.queued.notify_all();
            while q.pending.get(key).is_some_and(|&n| n > 0) {
                self.drained.wait(&mut q);
            }
        }
    }

    /// Encodes `records` as one batch and appends it.
    fn send_records<E: crate::log::Encodable + ?Sized>(
        &self,
        topic: &str,
        partition: i32,
        records: &E,
    ) -> Result<Sent> {
        self.log.check_open()?;
        if let Some(txn) = &self.txn {
            return self.send_in_transaction(txn, topic, partition, records);
        }
        // Only a named producer can be fenced by a newer instance of its name.
        if self.producer_id >= 0 && self.config.name.is_some() {
            self.log
                .check_epoch(self.config.name.as_deref(), self.producer_id, self.epoch)?;
        }
        let idempotent = self.producer_id >= 0;
        let producer = idempotent.then_some((self.producer_id, self.epoch, false));
        self.append_records(topic, partition, records, producer)
    }

    /// [`ProducerInner::send_records`] inside a transaction: the partition joins the
    /// transaction (durably) before its first batch, and the batch carries the
    /// transactional bit.
    fn send_in_transaction<E: crate::log::Encodable + ?Sized>(
        &self,
        txn: &txn::Txn,
        topic: &str,
        partition: i32,
        records: &E,
    ) -> Result<Sent> {
        let h = self.handle(topic, partition)?;
        let sync = self.config.flush_policy == Some(FlushPolicy::EveryBatch)
            || h.live_partition()?.config().flush_policy.syncs_each_batch();
        let guard = txn.begin_send(topic, partition, sync)?;
        let r = self.append_records(
            topic,
            partition,
            records,
            Some((guard.producer_id, guard.epoch, true)),
        );
        drop(guard);
        r.map_err(|e| txn.send_failed(e))
    }

    /// Encodes `records` as one batch (as `producer`'s, when given) and appends it.
    fn append_records<E: crate::log::Encodable + ?Sized>(
        &self,
        topic: &str,
        partition: i32,
        records: &E,
        producer: Option<(i64, i16, bool)>,
    ) -> Result<Sent> {
        let h = self.handle(topic, partition)?;
        let part = h.live_partition()?;
        let cfg = part.config();
        if cfg.cleanup_policy.compacts() && records.has_null_key() {
            return Err(Error::KeyRequired {
                topic: topic.to_string(),
            });
        }
        let codec = self
            .config
            .compression
            .or(cfg.compression)
            .unwrap_or_default();
        let now = now_ms();
        let idempotent = producer.is_some();
        // The batch's latency, for the metrics: one monotonic clock read here and one after
        // the append (and sync) returns, for the batches sampled.
        let start = metrics::Counters::start(records.count());
        let mut bytes = 0;
        let r = crate::log::with_encoded(codec, records, now, producer, |data| {
            bytes = data.len();
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
        self.metrics.stored(records.count(), bytes, start);
        let append_time =
            (cfg.timestamp_type == crate::TimestampType::LogAppendTime).then_some(r.timestamp);
        Ok(Sent {
            base: r.base_offset,
            append_time,
            now,
        })
    }

    /// Sends `records` as one batch, or, when it is too large for the topic after
    /// compression, as two halves, recursively (Kafka's split on `MESSAGE_TOO_LARGE`): only a
    /// record too large on its own fails with [`Error::RecordTooLarge`]. One result per record.
    fn send_split(
        &self,
        topic: &str,
        partition: i32,
        records: &[Record],
    ) -> Vec<Result<RecordMetadata>> {
        match self.send_records(topic, partition, records) {
            Ok(sent) => (0..records.len())
                .map(|i| Ok(sent.metadata(topic.to_string(), partition, records, i)))
                .collect(),
            Err(Error::RecordTooLarge { .. }) if records.len() > 1 => {
                let (a, b) = records.split_at(records.len() / 2);
                let mut out = self.send_split(topic, partition, a);
                out.extend(self.send_split(topic, partition, b));
                out
            }
            Err(e) => records.iter().map(|_| Err(e.duplicate())).collect(),
        }
    }

    fn ensure_sender(&self, me: &Arc<ProducerInner>) -> Result<()> {
        let mut s = self.sender.lock();
        if s.is_some() {
            return Ok(());
        }
        // `close` joined the sender: a closed producer gets no new one.
        if self.queues.lock().closed {
            return Err(closed_producer());
        }
        let weak: Weak<ProducerInner> = Arc::downgrade(me);
        let handle = std::thread::Builder::new()
            .name("topiclog-producer".into())
            .spawn(move || sender_loop(&weak))
            .map_err(|e| Error::io("topiclog-producer thread", e))?;
        *s = Some(handle);
        Ok(())
    }

    /// Takes every due partition's batches.
    fn due(&self, q: &mut Queues) -> Vec<(Key, VecDeque<Batch>)> {
        let keys: Vec<Key> = q
            .batches
            .iter()
            .filter(|(k, b)| q.is_due(k, b, &self.config))
            .map(|(k, _)| k.clone())
            .collect();
        keys.into_iter()
            .filter_map(|k| {
                q.urgent.remove(&k);
                q.batches.remove(&k).map(|b| (k, b))
            })
            .collect()
    }

    /// Sends one partition's batches after another (the only place queued records are
    /// sent, which keeps them in order per partition).
    fn send_due(&self, due: Vec<(Key, VecDeque<Batch>)>) {
        if let Some(txn) = &self.txn
            && due.len() > 1
        {
            let keys: Vec<Key> = due.iter().map(|(k, _)| k.clone()).collect();
            let sync = self.config.flush_policy == Some(FlushPolicy::EveryBatch)
                || keys.iter().any(|(t, p)| {
                    self.handle(t, *p).is_ok_and(|h| {
                        h.live_partition()
                            .is_ok_and(|p| p.config().flush_policy.syncs_each_batch())
                    })
                });
            txn.add_ahead(&keys, sync);
        }
        for (key, batches) in due {
            let (topic, partition) = (&key.0, key.1);
            for batch in batches {
                let results = self.send_split(topic, partition, &batch.records);
                self.settle(&key, batch.entries, results);
            }
        }
    }

    /// Hands each record its result and releases its room in the queues.
    fn settle(&self, key: &Key, entries: Vec<Entry>, results: Vec<Result<RecordMetadata>>) {
        let mut q = self.queues.lock();
        let n = entries.len();
        for (entry, r) in entries.into_iter().zip(results) {
            q.held = q.held.saturating_sub(entry.size);
            if entry.report
                && let Err(e) = &r
            {
                q.failed += 1;
                self.metrics.failed(1);
                if q.first_failure.is_none() {
                    q.first_failure = Some(e.duplicate());
                }
            }
            fill(&entry.slot, r);
        }
        q.in_flight = q.in_flight.saturating_sub(n);
        self.in_flight.store(q.in_flight, Ordering::Release);
        if let Some(p) = q.pending.get_mut(key) {
            *p = p.saturating_sub(n);
            if *p == 0 {
                q.pending.remove(key);
            }
        }
        drop(q);
        self.drained.notify_all();
    }

    /// [`Producer::close`]: the wait is bounded by `close_timeout`; what is left then fails.
    fn close(&self) -> Result<()> {
        let mut q = self.queues.lock();
        q.closed = true;
        self.closed.store(true, Ordering::Release);
        self.queued.notify_all();
        let deadline = Instant::now().checked_add(self.config.close_timeout);
        while q.in_flight > 0 {
            match deadline {
                Some(d) => {
                    if self.drained.wait_until(&mut q, d).timed_out() {
                        break;
                    }
                }
                None => self.drained.wait(&mut q),
            }
        }
        // Given up on: still queued (batches being sent finish on the sender's own time).
        let left: Vec<(Key, VecDeque<Batch>)> =
            std::mem::take(&mut q.batches).into_iter().collect();
        drop(q);
        for (key, batches) in left {
            for b in batches {
                let results = b
                    .entries
                    .iter()
                    .map(|_| {
                        Err(Error::Closed {
                            what: "the producer closed before the record was sent",
                        })
                    })
                    .collect();
                self.settle(&key, b.entries, results);
            }
        }
        self.queued.notify_all();
        let result = self.queues.lock().take_failures();
        let idle = self.queues.lock().in_flight == 0;
        if idle && let Some(h) = self.sender.lock().take() {
            // The sender sees `closed` with nothing queued and exits; it is not this thread
            // (it holds no `Producer`).
            let _ = h.join();
        }
        result
    }
}

fn sender_loop(weak: &Weak<ProducerInner>) {
    loop {
        let Some(inner) = weak.upgrade() else { return };
        let due = {
            let mut q = inner.queues.lock();
            let d = inner.due(&mut q);
            if d.is_empty() {
                if q.closed && q.batches.is_empty() {
                    return;
                }
                let wait = q
                    .batches
                    .values()
                    .filter_map(VecDeque::front)
                    .map(|b| inner.config.linger.saturating_sub(b.since.elapsed()))
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

impl crate::log::Log {
    /// A producer. See [`ProducerConfig`].
    ///
    /// # Errors
    /// [`Error::InvalidConfig`]; I/O errors persisting a producer id; [`Error::ReadOnly`].
    ///
    /// ```
    /// use topiclog::{Log, ProducerConfig, ProducerRecord};
    /// let dir = tempfile::tempdir().expect("a temporary directory");
    /// let log = Log::open(dir.path())?;
    /// log.create_topic("orders", 2)?;
    /// let mut config = ProducerConfig::default();
    /// config.name = Some("order-service".into()); // a restarted instance fences this one
    /// let producer = log.producer(config)?;
    /// producer.send(ProducerRecord::new("orders", "created").key("customer-7"))?;
    /// # Ok::<_, topiclog::Error>(())
    /// ```
    pub fn producer(&self, config: ProducerConfig) -> Result<Producer> {
        self.inner.check_writable()?;
        Producer::new(Arc::clone(&self.inner), config)
    }
}
