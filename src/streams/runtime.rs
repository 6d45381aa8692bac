//! Running a topology: `Streams`, its threads (members of the consumer group
//! `application.id`), tasks per assigned partition, commits.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use parking_lot::Mutex;

use super::config::{DeserializationHandler, ProcessingGuarantee, StreamsConfig};
use super::graph::{PartitionsOf, Topology};
use super::node::{Output, PunctuationType};
use super::ops::Raw;
use super::task::{Held, Task, TaskId};
use crate::config::CleanupPolicy;
use crate::consumer::{RebalanceListener, WakeupHandle};
use crate::error::{Error, Result};
use crate::log::LogInner;
use crate::record::{Header, Record};
use crate::{
    Consumer, ConsumerConfig, IsolationLevel, Log, OffsetAndMetadata, Producer, ProducerConfig,
    ProducerRecord, TopicPartition,
};

/// The state of a [`Streams`] (Kafka's `KafkaStreams.State`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamsState {
    /// Made, not started.
    Created,
    /// Threads are joining the group, being assigned tasks or restoring their stores.
    Rebalancing,
    /// Every thread is processing.
    Running,
    /// `close` was called; threads are committing and leaving.
    PendingShutdown,
    /// Closed.
    NotRunning,
    /// A thread failed and the client is shutting down.
    PendingError,
    /// Shut down after a failure.
    Error,
}

/// What to do when a stream thread fails (Kafka's `StreamThreadExceptionResponse`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThreadErrorResponse {
    /// Start a new thread in its place (its tasks are assigned again and restored).
    ReplaceThread,
    /// Stop every thread of this client (the default).
    ShutdownClient,
}

type StateListener = Box<dyn Fn(StreamsState, StreamsState) + Send + Sync>;
type ErrorHandler = Box<dyn Fn(&Error) -> ThreadErrorResponse + Send + Sync>;

pub(crate) struct Shared {
    state: Mutex<StreamsState>,
    listener: Mutex<Option<StateListener>>,
    handler: Mutex<Option<ErrorHandler>>,
    stop: AtomicBool,
    /// Each thread's consumer's wake-up, by thread index (a replaced thread's replaces).
    wakeups: Mutex<HashMap<usize, WakeupHandle>>,
    /// Threads still running.
    alive: AtomicUsize,
    /// Threads that have polled since their last assignment.
    settled: AtomicUsize,
    threads: usize,
    failure: Mutex<Option<Error>>,
    /// Records dropped by the tasks (late for their window, or without a valid timestamp).
    dropped: std::sync::atomic::AtomicU64,
    /// Each running thread's tasks, by thread index: what interactive queries read.
    task_sets: Mutex<HashMap<usize, Arc<Mutex<TaskSet>>>>,
    /// This client among the process's (its threads' transactional ids name it).
    instance: String,
}

impl Shared {
    /// Calls `f` with each task of each thread (each thread's tasks locked in turn: a query
    /// waits for the thread to finish the records of its current poll).
    pub(crate) fn each_task(&self, mut f: impl FnMut(&mut Task) -> Result<()>) -> Result<()> {
        let sets: Vec<Arc<Mutex<TaskSet>>> = self.task_sets.lock().values().cloned().collect();
        for set in sets {
            let mut set = set.lock();
            for task in set.tasks.values_mut() {
                f(task)?;
            }
        }
        Ok(())
    }

    fn set_state(&self, new: StreamsState) {
        let old = {
            let mut s = self.state.lock();
            let old = *s;
            // The terminal states stay.
            if old == new
                || matches!(old, StreamsState::NotRunning | StreamsState::Error)
                || (old == StreamsState::PendingShutdown && new != StreamsState::NotRunning)
                || (old == StreamsState::PendingError && new != StreamsState::Error)
            {
                return;
            }
            *s = new;
            old
        };
        if let Some(l) = self.listener.lock().as_ref() {
            l(old, new);
        }
    }
}

/// A topology running on a [`Log`] (Kafka's `KafkaStreams`): `num.stream.threads` threads,
/// each a member of the consumer group `application.id`, each running the tasks of the
/// partitions assigned to it.
///
/// ```
/// use std::time::Duration;
/// use topiclog::streams::{Consumed, Produced, Serdes, Streams, StreamsBuilder, StreamsConfig};
/// use topiclog::{Log, ProducerConfig, ProducerRecord};
/// let dir = tempfile::tempdir().expect("a temporary directory");
/// let log = Log::open(dir.path())?;
/// log.create_topic("in", 1)?;
/// log.create_topic("out", 1)?;
/// let builder = StreamsBuilder::new();
/// builder
///     .stream("in", Consumed::with(Serdes::unit(), Serdes::string()))
///     .map_values(|v: String| v.to_uppercase())
///     .to("out", Produced::default());
/// let mut streams = Streams::new(&log, builder.build()?, StreamsConfig::new("upper"));
/// streams.start()?;
/// log.producer(ProducerConfig::default())?.send(ProducerRecord::new("in", "hello"))?;
/// let out = log.partition("out", 0)?;
/// let start = std::time::Instant::now();
/// while out.log_end_offset() == 0 && start.elapsed() < Duration::from_secs(20) {
///     std::thread::sleep(Duration::from_millis(10));
/// }
/// streams.close()?;
/// assert_eq!(out.records(0, 1 << 20)?[0].value.as_deref(), Some(&b"HELLO"[..]));
/// # Ok::<_, topiclog::Error>(())
/// ```
pub struct Streams {
    log: Arc<LogInner>,
    topology: Topology,
    config: StreamsConfig,
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for Streams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Streams")
            .field("application.id", &self.config.application_id)
            .field("state", &self.state())
            .finish_non_exhaustive()
    }
}

impl Streams {
    /// A client for `topology` on `log` (not started).
    pub fn new(log: &Log, topology: Topology, config: StreamsConfig) -> Streams {
        let threads = config.num_stream_threads.max(1);
        Streams {
            log: Arc::clone(&log.inner),
            topology,
            config,
            shared: Arc::new(Shared {
                state: Mutex::new(StreamsState::Created),
                listener: Mutex::new(None),
                handler: Mutex::new(None),
                stop: AtomicBool::new(false),
                wakeups: Mutex::new(HashMap::new()),
                alive: AtomicUsize::new(0),
                settled: AtomicUsize::new(0),
                threads,
                failure: Mutex::new(None),
                dropped: std::sync::atomic::AtomicU64::new(0),
                task_sets: Mutex::new(HashMap::new()),
                instance: {
                    static NEXT: AtomicUsize = AtomicUsize::new(0);
                    format!(
                        "{}-{}",
                        std::process::id(),
                        NEXT.fetch_add(1, Ordering::Relaxed)
                    )
                },
            }),
            threads: Vec::new(),
        }
    }

    /// Calls `listener(old, new)` at each state change.
    pub fn set_state_listener(
        &mut self,
        listener: impl Fn(StreamsState, StreamsState) + Send + Sync + 'static,
    ) {
        *self.shared.listener.lock() = Some(Box::new(listener));
    }

    /// Decides what happens when a thread fails (by default the client shuts down).
    pub fn set_uncaught_exception_handler(
        &mut self,
        handler: impl Fn(&Error) -> ThreadErrorResponse + Send + Sync + 'static,
    ) {
        *self.shared.handler.lock() = Some(Box::new(handler));
    }

    /// The current state.
    pub fn state(&self) -> StreamsState {
        *self.shared.state.lock()
    }

    /// How many records the tasks dropped: late for a window that had closed, or without a
    /// valid timestamp (Kafka's `dropped-records` metric, summed over the tasks).
    pub fn dropped_records(&self) -> u64 {
        self.shared.dropped.load(Ordering::Acquire)
    }

    /// The key-value store `name` of this client's tasks, for queries from any thread
    /// (Kafka's `KafkaStreams.store(StoreQueryParameters.fromNameAndType(name,
    /// keyValueStore()))`): `K` and `V` are the types of the store's serdes.
    ///
    /// ```
    /// use topiclog::streams::{Consumed, Grouped, Materialized, Serdes, Streams, StreamsBuilder, StreamsConfig};
    /// use topiclog::{Log, ProducerConfig, ProducerRecord};
    /// let dir = tempfile::tempdir().expect("a temporary directory");
    /// let log = Log::open(dir.path())?;
    /// log.create_topic("words", 1)?;
    /// let builder = StreamsBuilder::new();
    /// builder
    ///     .stream("words", Consumed::with(Serdes::string(), Serdes::string()))
    ///     .group_by_key(Grouped::with(Serdes::string(), Serdes::string()))
    ///     .count(Materialized::named("counts"));
    /// let mut streams = Streams::new(&log, builder.build()?, StreamsConfig::new("count"));
    /// streams.start()?;
    /// let p = log.producer(ProducerConfig::default())?;
    /// p.send(ProducerRecord::new("words", "x").key("hello"))?;
    /// p.send(ProducerRecord::new("words", "y").key("hello"))?;
    /// let counts = streams.store::<String, i64>("counts")?;
    /// let start = std::time::Instant::now();
    /// while counts.get(&"hello".to_string())? != Some(2) && start.elapsed().as_secs() < 20 {
    ///     std::thread::sleep(std::time::Duration::from_millis(10));
    /// }
    /// assert_eq!(counts.all()?, [("hello".to_string(), 2)]);
    /// streams.close()?;
    /// # Ok::<_, topiclog::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Streams`] when the topology has no store `name`.
    pub fn store<K: Clone + Send + 'static, V: Clone + Send + 'static>(
        &self,
        name: &str,
    ) -> Result<super::query::ReadOnlyKeyValueStore<K, V>> {
        self.check_store(name)?;
        Ok(super::query::ReadOnlyKeyValueStore::new(
            Arc::clone(&self.shared),
            name.to_string(),
        ))
    }

    /// The window store `name` (a windowed aggregation's) of this client's tasks (Kafka's
    /// `QueryableStoreTypes.windowStore()`).
    ///
    /// # Errors
    /// [`Error::Streams`] when the topology has no store `name`.
    pub fn window_store<K: Clone + Send + PartialEq + 'static, V: Clone + Send + 'static>(
        &self,
        name: &str,
    ) -> Result<super::query::ReadOnlyWindowStore<K, V>> {
        self.check_store(name)?;
        Ok(super::query::ReadOnlyWindowStore::new(
            Arc::clone(&self.shared),
            name.to_string(),
        ))
    }

    fn check_store(&self, name: &str) -> Result<()> {
        if self.topology.graph.stores.iter().any(|s| s.name == name) {
            return Ok(());
        }
        Err(Error::Streams {
            reason: format!("the topology has no store named '{name}'"),
        })
    }

    /// The error that shut the client down, if one did.
    pub fn failure(&self) -> Option<Error> {
        self.shared.failure.lock().as_ref().map(Error::duplicate)
    }

    /// Checks the topology against the log, creates the internal topics and starts the
    /// threads.
    ///
    /// # Errors
    /// [`Error::Streams`]: started before, a source topic that does not exist, inputs that
    /// must be co-partitioned and are not, an internal topic of another partition count.
    pub fn start(&mut self) -> Result<()> {
        if self.state() != StreamsState::Created {
            return Err(Error::Streams {
                reason: format!("start called in state {:?}", self.state()),
            });
        }
        let plan = Plan::new(&self.log, &self.topology, &self.config.application_id)?;
        plan.create_internal_topics(&self.log)?;
        if let Some(t) = &self.config.dead_letter_topic
            && crate::log::partition_count(&self.log, t).is_err()
        {
            let config = self.log.options.default_topic_config.clone();
            match self.log.create_topic_unchecked(t, 1, config) {
                Ok(()) | Err(Error::TopicAlreadyExists { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        let plan = Arc::new(plan);
        self.shared.set_state(StreamsState::Rebalancing);
        self.shared
            .alive
            .store(self.shared.threads, Ordering::Release);
        for i in 0..self.shared.threads {
            let thread = StreamThread {
                index: i,
                log: Arc::clone(&self.log),
                topology: self.topology.clone(),
                config: self.config.clone(),
                plan: Arc::clone(&plan),
                shared: Arc::clone(&self.shared),
            };
            let name = format!("{}-StreamThread-{}", self.config.application_id, i + 1);
            let handle = std::thread::Builder::new()
                .name(name)
                .spawn(move || thread.run())
                .map_err(|e| Error::Streams {
                    reason: format!("starting a stream thread: {e}"),
                })?;
            self.threads.push(handle);
        }
        Ok(())
    }

    /// Stops the threads after they commit what they processed, and waits for them.
    ///
    /// # Errors
    /// The error that shut the client down, if a thread failed.
    pub fn close(&mut self) -> Result<()> {
        if self.state() == StreamsState::Created {
            self.shared.set_state(StreamsState::NotRunning);
            return Ok(());
        }
        self.shared.set_state(StreamsState::PendingShutdown);
        self.shared.stop.store(true, Ordering::Release);
        for w in self.shared.wakeups.lock().values() {
            w.wakeup();
        }
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        let failed = self.shared.failure.lock().as_ref().map(Error::duplicate);
        if let Some(e) = failed {
            self.shared.set_state(StreamsState::Error);
            return Err(e);
        }
        self.shared.set_state(StreamsState::NotRunning);
        Ok(())
    }
}

impl Drop for Streams {
    fn drop(&mut self) {
        if !self.threads.is_empty() {
            let _ = self.close();
        }
    }
}

/// The topics a started topology reads and writes, resolved for its application.
pub(crate) struct Plan {
    /// Resolved source topic to its sub-topology.
    pub sub_of: HashMap<String, usize>,
    /// Repartition topics with their partition counts.
    pub repartitions: BTreeMap<String, i32>,
    /// Changelog topics with their partition counts.
    pub changelogs: BTreeMap<String, i32>,
    /// Window stores' changelogs with the stores' retention (ms).
    pub retention: BTreeMap<String, i64>,
}

impl Plan {
    pub fn new(log: &LogInner, topology: &Topology, app: &str) -> Result<Plan> {
        let count = |t: &str| crate::log::partition_count(log, t).ok();
        Plan::with_counts(topology, app, count)
    }

    /// The plan with partition counts of user topics from `count` (`None`: missing).
    pub fn with_counts(
        topology: &Topology,
        app: &str,
        count: impl Fn(&str) -> Option<i32>,
    ) -> Result<Plan> {
        let g = &topology.graph;
        let mut sub_of = HashMap::new();
        for sub in topology.subs.iter() {
            for (t, _) in &sub.sources {
                sub_of.insert(t.resolve(app), sub.id);
            }
        }
        let mut missing: Vec<String> = Vec::new();
        let mut known: HashMap<String, i32> = HashMap::new();
        for sub in topology.subs.iter() {
            for (t, _) in &sub.sources {
                if let super::graph::TopicRef::User(name) = t {
                    match count(name) {
                        Some(n) => {
                            known.insert(name.clone(), n);
                        }
                        None => missing.push(name.clone()),
                    }
                }
            }
        }
        if !missing.is_empty() {
            missing.sort();
            missing.dedup();
            return Err(Error::Streams {
                reason: format!(
                    "missing source topics: {} (create them before starting)",
                    missing.join(", ")
                ),
            });
        }
        // Each node's parents, to find the source topics upstream of a node.
        let mut parents: Vec<Vec<usize>> = vec![Vec::new(); g.nodes.len()];
        for (id, n) in g.nodes.iter().enumerate() {
            for &c in &n.children {
                if let Some(p) = parents.get_mut(c) {
                    p.push(id);
                }
            }
        }
        // The source topics a node reads through its ancestors (itself included).
        let upstream_topics = |n: usize| -> Vec<String> {
            let mut seen = vec![false; g.nodes.len()];
            let mut stack = vec![n];
            let mut topics = Vec::new();
            while let Some(x) = stack.pop() {
                if std::mem::replace(seen.get_mut(x).unwrap_or(&mut true), true) {
                    continue;
                }
                if let Some(def) = g.nodes.get(x) {
                    topics.extend(def.sources.iter().map(|t| t.resolve(app)));
                }
                stack.extend(parents.get(x).into_iter().flatten().copied());
            }
            topics
        };
        // Repartition topics take their counts from the topics upstream (for a join's,
        // the table's), which may be other repartition topics: settle them in rounds.
        let mut repartitions: BTreeMap<String, i32> = BTreeMap::new();
        for _ in 0..=g.repartitions.len() {
            for r in &g.repartitions {
                let name = r.topic.resolve(app);
                if repartitions.contains_key(&name) {
                    continue;
                }
                let n = match r.partitions {
                    PartitionsOf::Fixed(n) => Some(n),
                    PartitionsOf::Upstream(n) | PartitionsOf::SameAs(n) => upstream_topics(n)
                        .iter()
                        .map(|t| known.get(t).or_else(|| repartitions.get(t)).copied())
                        .collect::<Option<Vec<i32>>>()
                        .and_then(|v| v.into_iter().max()),
                };
                if let Some(n) = n {
                    repartitions.insert(name, n);
                }
            }
        }
        if let Some(r) = g
            .repartitions
            .iter()
            .find(|r| !repartitions.contains_key(&r.topic.resolve(app)))
        {
            return Err(Error::Streams {
                reason: format!(
                    "cannot tell how many partitions '{}' needs",
                    r.topic.resolve(app)
                ),
            });
        }
        let mut partitions = Vec::new();
        for sub in topology.subs.iter() {
            let counts: Vec<(String, i32)> = sub
                .sources
                .iter()
                .map(|(t, _)| {
                    let t = t.resolve(app);
                    let n = known
                        .get(&t)
                        .or_else(|| repartitions.get(&t))
                        .copied()
                        .unwrap_or(1);
                    (t, n)
                })
                .collect();
            let first = counts.first().map_or(1, |(_, n)| *n);
            let most = counts.iter().map(|(_, n)| *n).max().unwrap_or(1);
            // Only a store (an aggregation or a join) needs its inputs co-partitioned; a
            // stateless sub-topology runs as many tasks as its largest input has partitions.
            if sub.stores.is_empty() {
                partitions.push(most);
                continue;
            }
            if counts.iter().any(|(_, n)| *n != first) {
                let list: Vec<String> = counts.iter().map(|(t, n)| format!("{t} ({n})")).collect();
                return Err(Error::Streams {
                    reason: format!(
                        "topics read by one sub-topology must be co-partitioned (the same \
                         partition count): {}",
                        list.join(", ")
                    ),
                });
            }
            partitions.push(first);
        }
        let mut changelogs = BTreeMap::new();
        let mut retention = BTreeMap::new();
        for sub in topology.subs.iter() {
            let n = partitions.get(sub.id).copied().unwrap_or(1);
            for &s in &sub.stores {
                if let Some(def) = g.stores.get(s) {
                    let topic = def.changelog().resolve(app);
                    if let Some(r) = def.retention_ms {
                        retention.insert(topic.clone(), r);
                    }
                    changelogs.insert(topic, n);
                }
            }
        }
        Ok(Plan {
            sub_of,
            repartitions,
            changelogs,
            retention,
        })
    }

    /// Creates the repartition topics (`delete`, kept forever) and changelogs (`compact`;
    /// a window store's `compact,delete`, kept for its retention plus a day, as Kafka's),
    /// or checks those that exist have the partitions they need.
    fn create_internal_topics(&self, log: &LogInner) -> Result<()> {
        let topics = self
            .repartitions
            .iter()
            .map(|(t, n)| (t, *n, CleanupPolicy::Delete, None))
            .chain(self.changelogs.iter().map(|(t, n)| {
                match self.retention.get(t) {
                    Some(r) => (
                        t,
                        *n,
                        CleanupPolicy::CompactDelete,
                        Some(
                            u64::try_from(r.saturating_add(WINDOW_CHANGELOG_EXTRA_MS))
                                .unwrap_or(u64::MAX),
                        ),
                    ),
                    None => (t, *n, CleanupPolicy::Compact, None),
                }
            }));
        for (topic, n, policy, retention) in topics {
            if let Ok(have) = crate::log::partition_count(log, topic) {
                if have != n {
                    return Err(Error::Streams {
                        reason: format!(
                            "the internal topic '{topic}' has {have} partitions; it needs {n}"
                        ),
                    });
                }
                continue;
            }
            let mut config = log.options.default_topic_config.clone();
            config.cleanup_policy = policy;
            config.retention_ms = retention;
            match log.create_topic_unchecked(topic, n, config) {
                Ok(()) | Err(Error::TopicAlreadyExists { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// The task map the `stream` assignor reads: each sub-topology's source topics.
    pub fn task_map(&self) -> crate::group::task_assignor::TaskMap {
        let mut map = crate::group::task_assignor::TaskMap::new();
        for (topic, sub) in &self.sub_of {
            let id = i32::try_from(*sub).unwrap_or(i32::MAX);
            map.entry(id).or_default().push(topic.clone());
        }
        for topics in map.values_mut() {
            topics.sort();
        }
        map
    }

    /// The resolved topics the threads subscribe to.
    pub fn source_topics(&self) -> Vec<String> {
        let mut t: Vec<String> = self.sub_of.keys().cloned().collect();
        t.sort();
        t
    }
}

/// Kafka's `windowstore.changelog.additional.retention.ms`: a window store's changelog is
/// kept a day longer than the store keeps its windows.
const WINDOW_CHANGELOG_EXTRA_MS: i64 = 24 * 60 * 60 * 1000;

/// Records sent by a thread's tasks: kept per partition and written as one batch per
/// partition after each poll's records and before each commit (no queue, no thread hop).
struct BatchOutput {
    log: Arc<LogInner>,
    producer: Arc<Producer>,
    /// Under exactly-once: whether the thread's producer has a transaction open (shared by
    /// the loop's output and the rebalance listener's).
    txn: Option<Arc<AtomicBool>>,
    /// Records kept, by topic (and its partition count), then partition.
    pending: Vec<(String, i32, Vec<Kept>)>,
    bytes: usize,
    /// Where in `pending` the last record went.
    last: usize,
}

/// One partition's records kept to be written: their bytes in one buffer (no allocation
/// per record), each record's place in it.
struct Kept {
    partition: i32,
    data: Vec<u8>,
    records: Vec<KeptRecord>,
}

/// A kept record: its key and value lengths (`None`: null), after each other in `data`
/// from `at`.
#[derive(Clone, Copy)]
struct KeptRecord {
    at: usize,
    key: Option<usize>,
    value: Option<usize>,
    timestamp: i64,
}

/// Some of a partition's kept records, as the producer encodes them.
struct KeptSlice<'a> {
    data: &'a [u8],
    records: &'a [KeptRecord],
}

impl crate::log::Encodable for KeptSlice<'_> {
    fn count(&self) -> usize {
        self.records.len()
    }

    fn has_null_key(&self) -> bool {
        self.records.iter().any(|r| r.key.is_none())
    }

    fn push_into(&self, b: &mut crate::record::BatchBuilder, _now: i64) -> Result<()> {
        for r in self.records {
            let k = r.key.unwrap_or(0);
            let key = r.key.and_then(|n| self.data.get(r.at..r.at + n));
            let value = r.value.and_then(|n| self.data.get(r.at + k..r.at + k + n));
            b.push(key, value, &[], r.timestamp)?;
        }
        Ok(())
    }
}

/// Past this many bytes kept, they are written at once.
const OUTPUT_BUFFER: usize = 1 << 20;
/// The most bytes written as one batch (well under a topic's `max.message.bytes`).
const OUTPUT_BATCH: usize = 256 << 10;
/// What a record costs in a batch beyond its key and value, about.
const RECORD_OVERHEAD: usize = 24;

impl BatchOutput {
    fn new(
        log: &Arc<LogInner>,
        producer: &Arc<Producer>,
        txn: Option<&Arc<AtomicBool>>,
    ) -> BatchOutput {
        BatchOutput {
            log: Arc::clone(log),
            producer: Arc::clone(producer),
            txn: txn.map(Arc::clone),
            pending: Vec::new(),
            bytes: 0,
            last: 0,
        }
    }

    /// Under exactly-once, begins the thread's transaction unless one is open.
    fn begin(&self) -> Result<()> {
        if let Some(open) = &self.txn
            && !open.load(Ordering::Acquire)
        {
            self.producer.begin_transaction()?;
            open.store(true, Ordering::Release);
        }
        Ok(())
    }

    /// Under exactly-once, whether a transaction is open.
    fn in_txn(&self) -> bool {
        self.txn.as_ref().is_some_and(|o| o.load(Ordering::Acquire))
    }

    /// Aborts the open transaction, if one is: what it wrote is never read by
    /// `read_committed` readers, and its input offsets were not committed.
    fn abort(&mut self) {
        for (_, _, parts) in &mut self.pending {
            for kept in parts.iter_mut() {
                kept.records.clear();
                kept.data.clear();
            }
        }
        self.bytes = 0;
        if let Some(open) = &self.txn
            && open.swap(false, Ordering::AcqRel)
            && let Err(e) = self.producer.abort_transaction()
        {
            // Fenced or closed: the coordinator aborts it (at the next init of this id, or
            // when it times out, or when the log next opens).
            eprintln!("streams: aborting the transaction: {e}");
        }
    }

    /// Writes what is kept.
    fn write(&mut self) -> Result<()> {
        if self.bytes > 0 {
            self.begin()?;
        }
        for (topic, _, parts) in &mut self.pending {
            for kept in parts.iter_mut() {
                let mut from = 0;
                let mut size = 0;
                for (i, r) in kept.records.iter().enumerate() {
                    size += r.key.unwrap_or(0) + r.value.unwrap_or(0) + RECORD_OVERHEAD;
                    if size >= OUTPUT_BATCH {
                        let chunk = KeptSlice {
                            data: &kept.data,
                            records: kept.records.get(from..=i).unwrap_or_default(),
                        };
                        self.producer
                            .send_to_partition(topic, kept.partition, &chunk)?;
                        from = i + 1;
                        size = 0;
                    }
                }
                if let Some(rest) = kept.records.get(from..).filter(|r| !r.is_empty()) {
                    let chunk = KeptSlice {
                        data: &kept.data,
                        records: rest,
                    };
                    self.producer
                        .send_to_partition(topic, kept.partition, &chunk)?;
                }
                kept.records.clear();
                kept.data.clear();
            }
        }
        self.bytes = 0;
        Ok(())
    }
}

impl Output for BatchOutput {
    fn send(
        &mut self,
        topic: &str,
        partition: Option<i32>,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        timestamp: i64,
    ) -> Result<()> {
        // The last topic sent to first (a sink sends to one topic, record after record).
        let known = match self.pending.get(self.last) {
            Some((t, _, _)) if t == topic => Some(self.last),
            _ => self.pending.iter().position(|(t, _, _)| t == topic),
        };
        let at = if let Some(at) = known {
            at
        } else {
            let n = crate::log::partition_count(&self.log, topic)?;
            self.pending.push((topic.to_string(), n, Vec::new()));
            self.pending.len() - 1
        };
        self.last = at;
        let Some((_, count, parts)) = self.pending.get_mut(at) else {
            return Ok(());
        };
        let partition = match (partition, key) {
            (Some(p), _) => p,
            // Kafka's default partitioner: murmur2 of the key, sticky without one.
            (None, Some(k)) => crate::partition_for_key(k, *count),
            (None, None) => {
                crate::log::partition_for(&self.log, topic, None, value.map_or(0, <[u8]>::len))?
            }
        };
        let kept = if let Some(i) = parts.iter().position(|k| k.partition == partition) {
            parts.get_mut(i)
        } else {
            parts.push(Kept {
                partition,
                data: Vec::new(),
                records: Vec::new(),
            });
            parts.last_mut()
        };
        let Some(kept) = kept else {
            return Ok(());
        };
        let at = kept.data.len();
        kept.data.extend_from_slice(key.unwrap_or_default());
        kept.data.extend_from_slice(value.unwrap_or_default());
        kept.records.push(KeptRecord {
            at,
            key: key.map(<[u8]>::len),
            value: value.map(<[u8]>::len),
            timestamp,
        });
        self.bytes += key.map_or(0, <[u8]>::len) + value.map_or(0, <[u8]>::len) + RECORD_OVERHEAD;
        if self.bytes >= OUTPUT_BUFFER {
            self.write()?;
        }
        Ok(())
    }
}

/// Drops a thread's tasks without committing them when the thread fails or panics: its
/// outputs may not all be written, so its input offsets must not be committed (closing the
/// consumer revokes its partitions, and the revoke commits what `processed` holds). Under
/// exactly-once it aborts the open transaction first, so that the revoke cannot commit what
/// the transaction holds without its offsets.
struct DirtyClose {
    tasks: Arc<Mutex<TaskSet>>,
    producer: Arc<Producer>,
    txn: Option<Arc<AtomicBool>>,
    clean: bool,
}

impl Drop for DirtyClose {
    fn drop(&mut self) {
        if !self.clean || std::thread::panicking() {
            if let Some(open) = &self.txn
                && open.swap(false, Ordering::AcqRel)
                && let Err(e) = self.producer.abort_transaction()
            {
                eprintln!("streams: aborting the transaction of a failed thread: {e}");
            }
            let mut t = self.tasks.lock();
            t.tasks.clear();
            t.processed.clear();
        }
    }
}

/// Whether an error says this member was fenced by a rebalance (Kafka's TaskMigrated):
/// its tasks are dropped without a commit and the thread goes on in the new generation.
fn migrated(e: &Error) -> bool {
    matches!(
        e,
        Error::StaleMember { .. } | Error::RebalanceInProgress { .. }
    )
}

/// A thread's tasks and what they processed since the last commit.
struct TaskSet {
    tasks: BTreeMap<TaskId, Task>,
    /// The next offset to commit per partition.
    processed: HashMap<TopicPartition, i64>,
    /// Repartition topics' committed offsets, to purge below.
    purgeable: HashMap<TopicPartition, i64>,
}

struct StreamThread {
    index: usize,
    log: Arc<LogInner>,
    topology: Topology,
    config: StreamsConfig,
    plan: Arc<Plan>,
    shared: Arc<Shared>,
}

/// Commits what `tasks` processed: caches forwarded, changelogs and outputs written and
/// flushed, then the input offsets committed: at-least-once, outputs before offsets;
/// exactly-once, outputs, changelogs and offsets in the thread's transaction, committed at
/// once. Then persistent stores write their files, with the changelog offsets they reflect
/// (only committed changelog records reach a file).
fn commit(
    tasks: &mut TaskSet,
    only: Option<&[TaskId]>,
    plan: &Plan,
    out: &mut BatchOutput,
    consumer: &mut Consumer,
    cache: usize,
) -> Result<()> {
    // A transaction covers every task of the thread.
    let only = if out.txn.is_some() { None } else { only };
    for (id, task) in &mut tasks.tasks {
        if only.is_none_or(|o| o.contains(id)) {
            task.flush(out, cache)?;
        }
    }
    out.write()?;
    out.producer.flush()?;
    let offsets: Vec<(TopicPartition, OffsetAndMetadata)> = tasks
        .processed
        .iter()
        .filter(|(tp, _)| {
            only.is_none_or(|o| {
                plan.sub_of
                    .get(&tp.topic)
                    .is_some_and(|s| o.contains(&(*s, tp.partition)))
            })
        })
        .map(|(tp, o)| (tp.clone(), OffsetAndMetadata::new(*o)))
        .collect();
    if out.txn.is_some() {
        if !offsets.is_empty() {
            out.begin()?;
        }
        if out.in_txn() {
            if !offsets.is_empty() {
                let group = consumer.group_metadata().ok_or_else(|| Error::Streams {
                    reason: "a stream thread's consumer has no group".into(),
                })?;
                out.producer.send_offsets_to_transaction(&offsets, &group)?;
            }
            out.producer.commit_transaction()?;
            if let Some(open) = &out.txn {
                open.store(false, Ordering::Release);
            }
        }
    } else if !offsets.is_empty() {
        consumer.commit_offsets(&offsets)?;
    }
    for (tp, o) in offsets {
        tasks.processed.remove(&tp);
        if plan.repartitions.contains_key(&tp.topic) {
            tasks.purgeable.insert(tp, o.offset);
        }
    }
    for (id, task) in &mut tasks.tasks {
        if only.is_none_or(|o| o.contains(id)) {
            commit_local(&out.log, task)?;
        }
    }
    Ok(())
}

/// Writes the task's persistent stores' files up to their changelogs' last stable offsets
/// (after a commit: every record below it is committed and written; a record past it, of a
/// transaction another producer left open, is replayed by the next restore if it commits).
fn commit_local(log: &Arc<LogInner>, task: &mut Task) -> Result<()> {
    let partition = task.id.1;
    for (s, changelog) in task.changelogs() {
        let Some(store) = task.store_mut(s).filter(|st| st.is_persistent()) else {
            continue;
        };
        let end = crate::log::handle_for(log, &changelog, partition)?.last_stable_offset();
        store.commit_local(end)?;
    }
    Ok(())
}

/// Deletes what repartition topics hold below the offsets committed for them (Kafka's
/// `DeleteRecords` after a commit): this application alone reads them, once.
fn purge(log: &Arc<LogInner>, tasks: &mut TaskSet) -> Result<()> {
    for (tp, offset) in tasks.purgeable.drain() {
        match crate::log::handle_for(log, &tp.topic, tp.partition) {
            Ok(h) => match h.delete_records(offset) {
                // Past its end: deleted and made again meanwhile (a reset).
                Ok(_) | Err(Error::OffsetOutOfRange { .. }) => {}
                Err(e) => return Err(e),
            },
            // Deleted meanwhile (a reset): nothing to purge.
            Err(Error::TopicNotFound { .. } | Error::PartitionNotFound { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

struct Listener {
    tasks: Arc<Mutex<TaskSet>>,
    log: Arc<LogInner>,
    topology: Topology,
    plan: Arc<Plan>,
    app: String,
    producer: Arc<Producer>,
    /// Under exactly-once, whether the producer's transaction is open.
    txn: Option<Arc<AtomicBool>>,
    /// Where this application's persistent stores keep their files.
    state_dir: std::path::PathBuf,
    default_store: super::graph::StoreType,
    cache: usize,
    errors: Arc<Mutex<Option<Error>>>,
    shared: Arc<Shared>,
    settled: Arc<AtomicBool>,
}

impl Listener {
    fn ids(&self, partitions: &[TopicPartition]) -> Vec<TaskId> {
        let mut ids: Vec<TaskId> = partitions
            .iter()
            .filter_map(|tp| Some((*self.plan.sub_of.get(&tp.topic)?, tp.partition)))
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    fn fail(&self, e: Error) {
        let mut slot = self.errors.lock();
        if slot.is_none() {
            *slot = Some(e);
        }
    }
}

impl RebalanceListener for Listener {
    fn on_partitions_revoked(&mut self, consumer: &mut Consumer, partitions: &[TopicPartition]) {
        if self.settled.swap(false, Ordering::AcqRel) {
            self.shared.settled.fetch_sub(1, Ordering::AcqRel);
        }
        self.shared.set_state(StreamsState::Rebalancing);
        let ids = self.ids(partitions);
        let mut tasks = self.tasks.lock();
        let mut out = BatchOutput::new(&self.log, &self.producer, self.txn.as_ref());
        if std::thread::panicking() {
            // A thread unwinding from a panic: nothing it holds may be committed.
            out.abort();
            tasks.tasks.clear();
            tasks.processed.clear();
            return;
        }
        match commit(
            &mut tasks,
            Some(&ids),
            &self.plan,
            &mut out,
            consumer,
            self.cache,
        ) {
            Ok(()) => {}
            Err(e) => {
                if out.txn.is_some() {
                    // The transaction covered every task: all of them restart from their
                    // last committed state.
                    out.abort();
                    tasks.tasks.clear();
                    tasks.processed.clear();
                }
                // Fenced already: the tasks go without a commit.
                if !migrated(&e) {
                    self.fail(e);
                }
            }
        }
        for id in &ids {
            tasks.tasks.remove(id);
        }
        tasks.processed.retain(|tp, _| !partitions.contains(tp));
    }

    fn on_partitions_assigned(&mut self, _consumer: &mut Consumer, partitions: &[TopicPartition]) {
        let ids = self.ids(partitions);
        let mut tasks = self.tasks.lock();
        for id in ids {
            if tasks.tasks.contains_key(&id) {
                continue;
            }
            let Some(sub) = self.topology.subs.get(id.0) else {
                continue;
            };
            let mut task = Task::new(&self.topology, sub, id.1, &self.app);
            let opened = task.open_backends(&self.state_dir, self.default_store);
            if let Err(e) = opened
                .and_then(|()| restore(&self.log, &mut task))
                .and_then(|()| {
                    task.wall_time = crate::clock::now_ms();
                    task.init(&mut InitOutput, self.cache)
                })
            {
                self.fail(e);
                return;
            }
            tasks.tasks.insert(id, task);
        }
    }
}

/// Where a node's `init` sends records: nowhere (a processor cannot forward from `init`).
pub(crate) struct InitOutput;

impl Output for InitOutput {
    fn send(
        &mut self,
        _topic: &str,
        _partition: Option<i32>,
        _key: Option<&[u8]>,
        _value: Option<&[u8]>,
        _timestamp: i64,
    ) -> Result<()> {
        Err(Error::Streams {
            reason: "a processor cannot send records from init".into(),
        })
    }
}

/// Replays each store's changelog partition into it, `read_committed` (aborted transactions'
/// records skipped), up to its last stable offset as of now: an in-memory store from the
/// start, a persistent store from its file's checkpoint. A checkpoint the changelog cannot
/// continue from (past its end: the topic was made again; before its start: records were
/// deleted) is dropped and the store rebuilt from the start.
fn restore(log: &Arc<LogInner>, task: &mut Task) -> Result<()> {
    let partition = task.id.1;
    for (s, changelog) in task.changelogs() {
        let h = crate::log::handle_for(log, &changelog, partition)?
            .with_isolation_level(IsolationLevel::ReadCommitted);
        let end = h.readable_end();
        let start = h.log_start_offset();
        let Some(store) = task.store_mut(s) else {
            continue;
        };
        let mut at = match store.checkpoint() {
            Some(c) if c >= start && c <= h.log_end_offset() => c,
            Some(_) => {
                store.wipe()?;
                start
            }
            None => start,
        };
        while at < end {
            let got = h.read(at, 4 << 20)?;
            let Some(next) = got.next_offset().filter(|n| *n > at) else {
                break;
            };
            for r in got.records_from(at)? {
                if r.offset >= end {
                    break;
                }
                if let Some(k) = &r.key {
                    store.restore(k, r.value.as_deref(), r.timestamp)?;
                }
            }
            at = next.min(end);
            store.restored_to(at, false)?;
        }
        store.restored_to(at, true)?;
    }
    Ok(())
}

impl StreamThread {
    fn run(self) {
        self.run_until_done();
        // The last thread out after a failure: the client is in error (Kafka's ERROR).
        if self.shared.alive.fetch_sub(1, Ordering::AcqRel) == 1
            && self.shared.failure.lock().is_some()
            && *self.shared.state.lock() == StreamsState::PendingError
        {
            self.shared.set_state(StreamsState::Error);
        }
    }

    fn run_until_done(&self) {
        loop {
            // A panic in a processor is the thread's failure, as an error is.
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.run_once()))
                .unwrap_or_else(|panic| {
                    let what = panic
                        .downcast_ref::<&str>()
                        .map(|s| (*s).to_string())
                        .or_else(|| panic.downcast_ref::<String>().cloned())
                        .unwrap_or_else(|| "a panic".into());
                    Err(Error::Streams {
                        reason: format!("a processor panicked: {what}"),
                    })
                });
            let Err(e) = result else {
                return;
            };
            if self.shared.stop.load(Ordering::Acquire) {
                self.record_failure(e);
                return;
            }
            let response = self
                .shared
                .handler
                .lock()
                .as_ref()
                .map_or(ThreadErrorResponse::ShutdownClient, |h| h(&e));
            match response {
                ThreadErrorResponse::ReplaceThread => {
                    eprintln!(
                        "streams {}: a thread failed and is replaced: {e}",
                        self.config.application_id
                    );
                    std::thread::sleep(Duration::from_millis(100));
                }
                ThreadErrorResponse::ShutdownClient => {
                    self.record_failure(e);
                    self.shared.set_state(StreamsState::PendingError);
                    self.shared.stop.store(true, Ordering::Release);
                    for w in self.shared.wakeups.lock().values() {
                        w.wakeup();
                    }
                    return;
                }
            }
        }
    }

    /// Where this application's persistent stores keep their files: `state.dir`, else
    /// `.streams-state` in the log's directory, then the application id.
    fn state_dir(&self) -> std::path::PathBuf {
        self.config
            .state_dir
            .clone()
            .unwrap_or_else(|| self.log.dir.join(crate::layout::STREAMS_STATE_DIR))
            .join(&self.config.application_id)
    }

    fn record_failure(&self, e: Error) {
        let mut f = self.shared.failure.lock();
        if f.is_none() {
            *f = Some(e);
        }
    }

    fn run_once(&self) -> Result<()> {
        let app = self.config.application_id.clone();
        let mut cc = ConsumerConfig::group(app.clone());
        cc.enable_auto_commit = false;
        // Kafka Streams' assignor: whole tasks, each sub-topology spread over the threads.
        cc.assignors = vec!["stream".into()];
        let eos = self.config.processing_guarantee == ProcessingGuarantee::ExactlyOnceV2;
        // Kafka Streams reads read_committed only under exactly-once.
        cc.isolation_level = if eos {
            IsolationLevel::ReadCommitted
        } else {
            IsolationLevel::ReadUncommitted
        };
        cc.max_poll_records = self.config.max_poll_records;
        let mut consumer = Consumer::new(Arc::clone(&self.log), cc)?;
        consumer.set_subscription_user_data(Some(Bytes::from(
            crate::group::task_assignor::encode_task_map(&self.plan.task_map()),
        )));
        // Exactly-once (Kafka's v2): one transactional producer per thread. Its id is this
        // client's and thread's: a thread started in its place fences it and aborts what it
        // left open; a crash's open transaction is aborted when the log next opens.
        let producer_config = if eos {
            ProducerConfig::transactional(format!(
                "{}-{}-StreamThread-{}",
                app,
                self.shared.instance,
                self.index + 1
            ))
        } else {
            ProducerConfig::default()
        };
        let producer = Arc::new(Producer::new(Arc::clone(&self.log), producer_config)?);
        let txn = if eos {
            producer.init_transactions()?;
            Some(Arc::new(AtomicBool::new(false)))
        } else {
            None
        };
        let tasks = Arc::new(Mutex::new(TaskSet {
            tasks: BTreeMap::new(),
            processed: HashMap::new(),
            purgeable: HashMap::new(),
        }));
        self.shared
            .task_sets
            .lock()
            .insert(self.index, Arc::clone(&tasks));
        let errors = Arc::new(Mutex::new(None));
        let settled = Arc::new(AtomicBool::new(false));
        consumer.set_rebalance_listener(Listener {
            tasks: Arc::clone(&tasks),
            log: Arc::clone(&self.log),
            topology: self.topology.clone(),
            plan: Arc::clone(&self.plan),
            app: app.clone(),
            producer: Arc::clone(&producer),
            txn: txn.clone(),
            state_dir: self.state_dir(),
            default_store: self.config.default_dsl_store,
            cache: self.config.cache_max_bytes,
            errors: Arc::clone(&errors),
            shared: Arc::clone(&self.shared),
            settled: Arc::clone(&settled),
        });
        self.shared
            .wakeups
            .lock()
            .insert(self.index, consumer.wakeup_handle());
        let topics = self.plan.source_topics();
        let refs: Vec<&str> = topics.iter().map(String::as_str).collect();
        consumer.subscribe(&refs)?;
        let dlq = match &self.config.dead_letter_topic {
            Some(t) => Some((
                t.clone(),
                Producer::new(Arc::clone(&self.log), ProducerConfig::default())?,
            )),
            None => None,
        };
        let mut out = BatchOutput::new(&self.log, &producer, txn.as_ref());
        // Declared after the consumer: dropped (and, on a failure, the tasks dropped dirty)
        // before the consumer is, so its revoke commits nothing of them.
        let mut guard = DirtyClose {
            tasks: Arc::clone(&tasks),
            producer: Arc::clone(&producer),
            txn: txn.clone(),
            clean: false,
        };
        let result = self.process_loop(
            &mut consumer,
            &mut out,
            &tasks,
            &errors,
            &settled,
            dlq.as_ref(),
        );
        // Leaving: commit what was processed (not after a failure: its state may be torn).
        let closing = match result {
            Ok(()) => {
                let mut t = tasks.lock();
                commit(
                    &mut t,
                    None,
                    &self.plan,
                    &mut out,
                    &mut consumer,
                    self.config.cache_max_bytes,
                )
            }
            Err(e) => Err(e),
        };
        if closing.is_err() {
            // Nothing of a failed thread's open transaction is kept: its tasks restart from
            // their last committed state.
            out.abort();
        }
        guard.clean = closing.is_ok();
        drop(guard);
        self.shared.task_sets.lock().remove(&self.index);
        if settled.swap(false, Ordering::AcqRel) {
            self.shared.settled.fetch_sub(1, Ordering::AcqRel);
        }
        let _ = consumer.close();
        let _ = producer.close();
        closing
    }

    fn process_loop(
        &self,
        consumer: &mut Consumer,
        out: &mut BatchOutput,
        tasks: &Arc<Mutex<TaskSet>>,
        errors: &Arc<Mutex<Option<Error>>>,
        settled: &Arc<AtomicBool>,
        dlq: Option<&(String, Producer)>,
    ) -> Result<()> {
        let cache = self.config.cache_max_bytes;
        let interval = self.config.effective_commit_interval();
        let mut last_commit = Instant::now();
        let mut last_purge = Instant::now();
        // A thread that has caught up commits at once rather than waiting out the interval
        // (at most every tenth of it): under exactly-once its outputs become readable, and
        // another thread's tasks can read its repartitioned records, a commit sooner.
        let idle_gap = interval / 10;
        while !self.shared.stop.load(Ordering::Acquire) {
            let uncommitted = {
                let t = tasks.lock();
                !t.processed.is_empty() || out.in_txn()
            };
            let eager = uncommitted && last_commit.elapsed() >= idle_gap;
            let wait = if eager {
                Duration::ZERO
            } else {
                self.config.poll_time
            };
            let polled = match consumer.poll(wait) {
                Ok(p) => p,
                Err(Error::WokenUp) if self.shared.stop.load(Ordering::Acquire) => break,
                Err(e) => return Err(e),
            };
            let caught_up = eager && polled.is_empty();
            if let Some(e) = errors.lock().take() {
                return Err(e);
            }
            // Joined (a thread may hold no task: it is running all the same).
            if consumer.group_generation().is_some() && !settled.swap(true, Ordering::AcqRel) {
                let n = self.shared.settled.fetch_add(1, Ordering::AcqRel) + 1;
                if n >= self.shared.threads {
                    self.shared.set_state(StreamsState::Running);
                }
            }
            let mut t = tasks.lock();
            let t = &mut *t;
            for tp in polled.partitions() {
                let Some(&sub) = self.plan.sub_of.get(&tp.topic) else {
                    continue;
                };
                let Some(task) = t.tasks.get_mut(&(sub, tp.partition)) else {
                    continue;
                };
                if task.reads_several() {
                    let held = task.held.entry(tp.topic.clone()).or_default();
                    held.extend(polled.records(&tp).map(|r| Held::of(&r)));
                    // Kafka's `buffered.records.per.partition`: a partition far ahead of
                    // the others is paused until its records are taken.
                    if held.len() > self.config.buffered_records_per_partition {
                        consumer.pause(std::slice::from_ref(&tp))?;
                    }
                    continue;
                }
                let mut next = None;
                let source = task.source(&tp.topic)?;
                for r in polled.records(&tp) {
                    let (key, value, ts) = (r.key(), r.value(), r.timestamp());
                    let raw = task.process_at(source, &tp.topic, key, value, ts, out, cache)?;
                    if let Raw::BadInput(e) = raw {
                        self.bad_input(&tp, &Held::of(&r), &e, dlq)?;
                    }
                    next = Some(r.offset() + 1);
                }
                if let Some(next) = next {
                    t.processed.insert(tp, next);
                }
            }
            for task in t.tasks.values_mut() {
                if task.held.values().any(|q| !q.is_empty()) {
                    self.take_held(task, consumer, &mut t.processed, out, dlq)?;
                }
            }
            // Wall-clock punctuations due now.
            let now = crate::clock::now_ms();
            for task in t.tasks.values_mut() {
                task.wall_time = now;
                task.punctuate(PunctuationType::WallClockTime, now, out, cache)?;
            }
            let dropped: u64 = t
                .tasks
                .values_mut()
                .map(|task| std::mem::take(&mut task.dropped))
                .sum();
            if dropped > 0 {
                self.shared.dropped.fetch_add(dropped, Ordering::AcqRel);
            }
            // What this poll sent goes out now: the next poll may read it back.
            out.write()?;
            if caught_up || last_commit.elapsed() >= interval {
                match commit(t, None, &self.plan, out, consumer, cache) {
                    Ok(()) => {}
                    Err(e) if migrated(&e) => {
                        // Fenced: another member has these tasks now; what was processed
                        // since the last commit is processed again there (under
                        // exactly-once, its transaction is aborted first).
                        out.abort();
                        t.tasks.clear();
                        t.processed.clear();
                    }
                    Err(e) => return Err(e),
                }
                last_commit = Instant::now();
                if last_purge.elapsed() >= self.config.repartition_purge_interval {
                    purge(&self.log, t)?;
                    last_purge = Instant::now();
                }
            }
        }
        Ok(())
    }

    /// Processes a task's held records in timestamp order (Kafka's `PartitionGroup`: the
    /// partition whose next record is oldest goes first; on a tie a table before a stream),
    /// while every partition of the task has a record held or has none left to read: a
    /// partition with records not yet polled is waited for (the next poll brings them), so
    /// a stream record never overtakes an older table update of its join. Offsets are
    /// committed only for records processed.
    fn take_held(
        &self,
        task: &mut Task,
        consumer: &mut Consumer,
        processed: &mut HashMap<TopicPartition, i64>,
        out: &mut BatchOutput,
        dlq: Option<&(String, Producer)>,
    ) -> Result<()> {
        let partition = task.id.1;
        let topics: Vec<(String, bool)> = task
            .source_topics()
            .map(str::to_string)
            .collect::<Vec<_>>()
            .into_iter()
            .map(|t| {
                let table = task.reads_as_table(&t);
                (t, table)
            })
            .collect();
        // Whether a partition with nothing held has nothing left to read (checked once a
        // call: no poll happens in between).
        let mut drained: HashMap<String, bool> = HashMap::new();
        loop {
            let mut next: Option<(i64, bool, &str)> = None;
            for (topic, table) in &topics {
                let head = task.held.get(topic).and_then(|q| q.front());
                if let Some(h) = head {
                    let candidate = (h.timestamp, !table, topic.as_str());
                    if next.is_none_or(|n| candidate < n) {
                        next = Some(candidate);
                    }
                } else {
                    let done = *drained.entry(topic.clone()).or_insert_with(|| {
                        self.read_to_end(consumer, &TopicPartition::new(topic, partition))
                    });
                    if !done {
                        return self.resume_held(task, consumer);
                    }
                }
            }
            let Some((_, _, topic)) = next else {
                return self.resume_held(task, consumer);
            };
            let Some(h) = task
                .held
                .get_mut(topic)
                .and_then(std::collections::VecDeque::pop_front)
            else {
                return Ok(());
            };
            let source = task.source(topic)?;
            let raw = task.process_at(
                source,
                topic,
                h.key.as_deref(),
                h.value.as_deref(),
                h.timestamp,
                out,
                self.config.cache_max_bytes,
            )?;
            let tp = TopicPartition::new(topic, partition);
            if let Raw::BadInput(e) = raw {
                self.bad_input(&tp, &h, &e, dlq)?;
            }
            processed.insert(tp, h.offset + 1);
        }
    }

    /// Resumes the task's paused partitions whose held records are down to the limit.
    fn resume_held(&self, task: &Task, consumer: &mut Consumer) -> Result<()> {
        let paused = consumer.paused();
        if paused.is_empty() {
            return Ok(());
        }
        let limit = self.config.buffered_records_per_partition;
        let ready: Vec<TopicPartition> = task
            .held
            .iter()
            .filter(|(_, q)| q.len() <= limit)
            .map(|(t, _)| TopicPartition::new(t, task.id.1))
            .filter(|tp| paused.contains(tp))
            .collect();
        if ready.is_empty() {
            return Ok(());
        }
        consumer.resume(&ready)
    }

    /// Whether this consumer has read all there is of `tp` now (also for a partition it
    /// does not hold, or one that does not exist: nothing to wait for).
    fn read_to_end(&self, consumer: &mut Consumer, tp: &TopicPartition) -> bool {
        let Ok(position) = consumer.position(tp) else {
            return true;
        };
        // What a reader may read: the high watermark (behind the log end while a sync of
        // `FlushPolicy::EveryBatch` is under way); under exactly-once (read_committed) the
        // last stable offset.
        let eos = self.config.processing_guarantee == ProcessingGuarantee::ExactlyOnceV2;
        crate::log::handle_for(&self.log, &tp.topic, tp.partition).map_or(true, |h| {
            position
                >= if eos {
                    h.last_stable_offset()
                } else {
                    h.high_watermark()
                }
        })
    }

    /// A record that did not deserialize: the handler fails the thread or skips it (to the
    /// dead-letter topic when one is set, with Kafka's error headers).
    fn bad_input(
        &self,
        tp: &TopicPartition,
        r: &Held,
        e: &Error,
        dlq: Option<&(String, Producer)>,
    ) -> Result<()> {
        let at = format!(
            "topic {} partition {} offset {}",
            tp.topic, tp.partition, r.offset
        );
        if self.config.deserialization_handler == DeserializationHandler::LogAndFail {
            return Err(Error::Serde {
                reason: format!("deserializing the record at {at}: {e}"),
            });
        }
        eprintln!(
            "streams {}: skipped a record that does not deserialize ({at}): {e}",
            self.config.application_id
        );
        if let Some((topic, producer)) = dlq {
            let mut record = Record {
                key: r.key.clone(),
                value: r.value.clone(),
                headers: r.headers.clone(),
                timestamp: Some(r.timestamp),
            };
            for (k, v) in [
                (
                    "__streams.errors.exception",
                    "org.apache.kafka.common.errors.SerializationException".to_string(),
                ),
                ("__streams.errors.message", e.to_string()),
                ("__streams.errors.topic", tp.topic.clone()),
                ("__streams.errors.partition", tp.partition.to_string()),
                ("__streams.errors.offset", r.offset.to_string()),
            ] {
                record.headers.push(Header::new(k, v.into_bytes()));
            }
            producer.send(ProducerRecord {
                topic: topic.clone(),
                partition: None,
                record,
            })?;
        }
        Ok(())
    }
}
