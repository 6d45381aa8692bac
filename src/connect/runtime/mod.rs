//! The standalone runtime: connectors by name, their tasks on threads, offsets, errors and
//! the dead-letter topic.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

mod sink;
mod source;

use sink::SinkContext;
use source::{SourceContext, load_offsets};

use super::config::Properties;
use super::connector::{Plugin, SinkTask, SourceTask};
use super::convert::{Converter, converter};
use super::transform::TransformChain;
use crate::error::{Error, Result};
use crate::log::{Log, LogInner, is_internal_topic};
use crate::{CleanupPolicy, ConsumerConfig, IsolationLevel, ProducerConfig};

/// The topic source offsets are kept in, by default (Kafka's `offset.storage.topic`).
pub const OFFSETS_TOPIC: &str = "connect-offsets";

/// How long a task waits between polls that found nothing.
const IDLE: Duration = Duration::from_millis(20);
/// How long a sink's poll waits for records.
const SINK_POLL: Duration = Duration::from_millis(100);

/// What a task is doing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskState {
    /// Moving records.
    Running,
    /// Paused by [`Connect::pause`].
    Paused,
    /// Stopped by an error (the message); [`Connect::restart`] starts it again.
    Failed(String),
    /// Stopped.
    Stopped,
}

/// A source or a sink.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectorKind {
    /// Moves records into topics.
    Source,
    /// Moves records out of topics.
    Sink,
}

/// A task's status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskStatus {
    /// The task's number.
    pub id: usize,
    /// Its state.
    pub state: TaskState,
    /// Records it moved.
    pub records: u64,
    /// Records it skipped under `errors.tolerance=all` (and sent to the dead-letter topic,
    /// when there is one).
    pub skipped: u64,
    /// How far behind it is: a sink's records not yet read from its topics; the file
    /// source's bytes not yet read from its file. `None` when not known.
    pub lag: Option<i64>,
}

/// A connector's status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectorStatus {
    /// The connector's name.
    pub name: String,
    /// Source or sink.
    pub kind: ConnectorKind,
    /// Whether it is paused.
    pub paused: bool,
    /// Its tasks.
    pub tasks: Vec<TaskStatus>,
}

/// State a task's thread shares with the runtime.
#[derive(Default)]
struct Shared {
    stop: AtomicBool,
    paused: AtomicBool,
    failed: Mutex<Option<String>>,
    done: AtomicBool,
    records: AtomicU64,
    skipped: AtomicU64,
    lag: AtomicI64,
}

impl Shared {
    fn fail(&self, e: &Error) {
        if let Ok(mut f) = self.failed.lock() {
            *f = Some(e.to_string());
        }
    }

    fn state(&self) -> TaskState {
        if let Ok(f) = self.failed.lock()
            && let Some(msg) = f.as_ref()
        {
            return TaskState::Failed(msg.clone());
        }
        if self.done.load(Ordering::Acquire) {
            TaskState::Stopped
        } else if self.paused.load(Ordering::Acquire) {
            TaskState::Paused
        } else {
            TaskState::Running
        }
    }
}

struct Task {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
    /// Interrupts a sink's blocked poll, so a stop does not wait it out.
    wakeup: Option<crate::consumer::WakeupHandle>,
}

impl Task {
    fn stop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        if let Some(w) = &self.wakeup {
            w.wakeup();
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

struct Running {
    config: Properties,
    plugin: Arc<Plugin>,
    tasks: Vec<Task>,
    paused: bool,
}

/// What `errors.*` asks of a connector (Kafka's flags, one field each).
#[derive(Debug, Clone)]
#[allow(clippy::struct_excessive_bools)]
struct ErrorPolicy {
    tolerate_all: bool,
    retry_timeout: Duration,
    retry_delay_max: Duration,
    log: bool,
    log_messages: bool,
    dlq: Option<String>,
    dlq_headers: bool,
}

impl ErrorPolicy {
    fn from(config: &Properties, kind: ConnectorKind) -> Result<ErrorPolicy> {
        let tolerate_all = match config.get("errors.tolerance").map(str::trim) {
            None | Some("" | "none") => false,
            Some("all") => true,
            Some(v) => {
                return Err(Error::invalid_config(
                    "errors.tolerance",
                    format!("must be none or all, not '{v}'"),
                ));
            }
        };
        let dlq = config
            .get("errors.deadletterqueue.topic.name")
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(String::from);
        if dlq.is_some() && kind == ConnectorKind::Source {
            return Err(Error::invalid_config(
                "errors.deadletterqueue.topic.name",
                "applies to sink connectors only (as in Kafka)",
            ));
        }
        Ok(ErrorPolicy {
            tolerate_all,
            // -1: retry for ever (Kafka's value).
            retry_timeout: if config.get("errors.retry.timeout").map(str::trim) == Some("-1") {
                Duration::MAX
            } else {
                config.millis("errors.retry.timeout", Duration::ZERO)?
            },
            retry_delay_max: config.millis("errors.retry.delay.max.ms", Duration::from_mins(1))?,
            log: config.bool("errors.log.enable", false)?,
            log_messages: config.bool("errors.log.include.messages", false)?,
            dlq,
            dlq_headers: config.bool("errors.deadletterqueue.context.headers.enable", false)?,
        })
    }

    /// Runs `op`, retrying errors that may pass (I/O) with backoff until
    /// `errors.retry.timeout`.
    fn retry<T>(&self, stop: &AtomicBool, mut op: impl FnMut() -> Result<T>) -> Result<T> {
        let start = Instant::now();
        let mut delay = Duration::from_millis(300);
        loop {
            match op() {
                Ok(v) => return Ok(v),
                // Kafka's `RetriableException`: again until it succeeds or the task stops;
                // I/O errors within `errors.retry.timeout`.
                Err(e)
                    if (matches!(e, Error::ConnectRetriable { .. })
                        || retriable(&e) && start.elapsed() + delay <= self.retry_timeout)
                        && !stop.load(Ordering::Acquire) =>
                {
                    if matches!(e, Error::ConnectRetriable { .. }) {
                        eprintln!("{e}; retrying in {} ms", delay.as_millis());
                    }
                    // In slices, so a stop does not wait out the delay.
                    let until = Instant::now() + delay;
                    while Instant::now() < until && !stop.load(Ordering::Acquire) {
                        std::thread::sleep(Duration::from_millis(10));
                    }
                    delay = (delay * 2).min(self.retry_delay_max.max(Duration::from_millis(1)));
                }
                Err(e) => return Err(e),
            }
        }
    }
}

fn retriable(e: &Error) -> bool {
    matches!(e, Error::Io { .. })
}

/// Converters and transforms of one task.
struct Pipeline {
    key: Box<dyn Converter>,
    value: Box<dyn Converter>,
    key_class: String,
    value_class: String,
    transforms: TransformChain,
}

/// A stage of a record's way, by Kafka's names (`__connect.errors.stage`).
#[derive(Debug, Clone, Copy)]
enum Stage {
    KeyConverter,
    ValueConverter,
    Transformation,
    TaskPut,
}

impl Stage {
    fn name(self) -> &'static str {
        match self {
            Stage::KeyConverter => "KEY_CONVERTER",
            Stage::ValueConverter => "VALUE_CONVERTER",
            Stage::Transformation => "TRANSFORMATION",
            Stage::TaskPut => "TASK_PUT",
        }
    }
}

/// Kafka Connect's standalone runtime in this process: connectors by name, each task on a
/// thread, over the topics of `log`.
///
/// Source tasks write each poll's records and their source offsets (in
/// [`OFFSETS_TOPIC`], keyed `["<connector>", {<source partition>}]` as Kafka keys them) in one
/// transaction: exactly-once. Sink tasks read as the consumer group `connect-<name>` with
/// `read_committed`, and commit the group's offsets after the sink flushed; a sink that
/// stores its offsets with its data (the file sink) is exactly-once, others at-least-once.
pub struct Connect<'a> {
    log: &'a Log,
    worker: Properties,
    offsets_topic: String,
    connectors: Mutex<BTreeMap<String, Running>>,
}

impl std::fmt::Debug for Connect<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connect")
            .field("offsets_topic", &self.offsets_topic)
            .finish_non_exhaustive()
    }
}

/// The built-in connector a `connector.class` names (Kafka's full or short class name).
///
/// # Errors
/// [`Error::InvalidConfig`] for an unknown class.
pub fn builtin_plugin(class: &str) -> Result<Plugin> {
    let short = class.rsplit('.').next().unwrap_or(class);
    match short {
        "FileStreamSource" | "FileStreamSourceConnector" => {
            Ok(Plugin::Source(Box::new(super::file::FileStreamSource)))
        }
        "FileStreamSink" | "FileStreamSinkConnector" => {
            Ok(Plugin::Sink(Box::new(super::file::FileStreamSink)))
        }
        "JdbcSourceConnector" | "SqliteSource" | "SqliteSourceConnector" => sqlite_plugin(true),
        "JdbcSinkConnector" | "SqliteSink" | "SqliteSinkConnector" => sqlite_plugin(false),
        _ => Err(Error::invalid_config(
            "connector.class",
            format!(
                "unknown connector '{class}' (built in: FileStreamSource, FileStreamSink, \
                 JdbcSourceConnector and JdbcSinkConnector on SQLite; others through \
                 Connect::add_plugin)"
            ),
        )),
    }
}

/// The SQLite source or sink (the JDBC connectors' model), when built with `sqlite`.
#[cfg(feature = "sqlite")]
#[allow(clippy::unnecessary_wraps)]
fn sqlite_plugin(source: bool) -> Result<Plugin> {
    Ok(if source {
        Plugin::Source(Box::new(super::sqlite::SqliteSource))
    } else {
        Plugin::Sink(Box::new(super::sqlite::SqliteSink))
    })
}

/// Without `sqlite`: an error saying so.
#[cfg(not(feature = "sqlite"))]
fn sqlite_plugin(_source: bool) -> Result<Plugin> {
    Err(Error::invalid_config(
        "connector.class",
        "the SQLite connectors (JdbcSourceConnector, JdbcSinkConnector) need topiclog built \
         with the `sqlite` feature (cargo install topiclog --features cli,sqlite)",
    ))
}

impl<'a> Connect<'a> {
    /// A runtime over `log` with Kafka's worker settings (`key.converter`,
    /// `value.converter` and their `schemas.enable`, `offset.flush.interval.ms`,
    /// `offset.storage.topic`). Creates the offsets topic (compacted) if needed.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for a bad setting; the log's errors.
    pub fn standalone(log: &'a Log, worker: Properties) -> Result<Connect<'a>> {
        for side in ["key", "value"] {
            let key = format!("{side}.converter");
            if let Some(class) = worker.get(&key) {
                converter(&key, class, &worker.prefixed(&format!("{key}.")))?;
            }
        }
        worker.millis("offset.flush.interval.ms", Duration::from_mins(1))?;
        let offsets_topic = worker
            .get("offset.storage.topic")
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .unwrap_or(OFFSETS_TOPIC)
            .to_string();
        // The log's default settings (its flush policy included), compacted.
        let mut tc = log.inner.options.default_topic_config.clone();
        tc.cleanup_policy = CleanupPolicy::Compact;
        match log.create_topic_with(&offsets_topic, 1, tc) {
            Ok(()) | Err(Error::TopicAlreadyExists { .. }) => {}
            Err(e) => return Err(e),
        }
        Ok(Connect {
            log,
            worker,
            offsets_topic,
            connectors: Mutex::new(BTreeMap::new()),
        })
    }

    /// Adds a connector by its configuration (`name`, `connector.class` naming a built-in
    /// connector, `tasks.max`, its own keys, converters, `transforms`, `errors.*`) and starts
    /// its tasks.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming the key at fault; a connector of that name exists.
    pub fn add(&self, config: Properties) -> Result<()> {
        let plugin = builtin_plugin(config.require("connector.class")?)?;
        self.add_plugin(config, plugin)
    }

    /// Adds a connector of your own (`config` needs `name`; `connector.class` is not read).
    ///
    /// # Errors
    /// As [`Connect::add`].
    pub fn add_plugin(&self, config: Properties, plugin: Plugin) -> Result<()> {
        let name = config.require("name")?.to_string();
        let plugin = Arc::new(plugin);
        let mut map = self.lock();
        if map.contains_key(&name) {
            return Err(Error::invalid_config(
                "name",
                format!("a connector named '{name}' is running"),
            ));
        }
        let tasks = self.start_tasks(&name, &config, &plugin, false)?;
        map.insert(
            name,
            Running {
                config,
                plugin,
                tasks,
                paused: false,
            },
        );
        Ok(())
    }

    /// Stops a connector's tasks and removes it (its offsets stay).
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for an unknown name.
    pub fn remove(&self, name: &str) -> Result<()> {
        let running = self.lock().remove(name);
        let Some(mut running) = running else {
            return Err(unknown(name));
        };
        for t in &mut running.tasks {
            t.stop();
        }
        Ok(())
    }

    /// Pauses a connector's tasks (they keep their place).
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for an unknown name.
    pub fn pause(&self, name: &str) -> Result<()> {
        self.set_paused(name, true)
    }

    /// Resumes a paused connector.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for an unknown name.
    pub fn resume(&self, name: &str) -> Result<()> {
        self.set_paused(name, false)
    }

    /// Stops and starts a connector's tasks again (a failed task starts afresh from its
    /// committed offsets).
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for an unknown name; what starting its tasks returns.
    pub fn restart(&self, name: &str) -> Result<()> {
        let mut map = self.lock();
        let Some(running) = map.get_mut(name) else {
            return Err(unknown(name));
        };
        for t in &mut running.tasks {
            t.stop();
        }
        running.tasks = self.start_tasks(name, &running.config, &running.plugin, running.paused)?;
        Ok(())
    }

    /// A connector's status and its tasks'.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for an unknown name.
    pub fn status(&self, name: &str) -> Result<ConnectorStatus> {
        let map = self.lock();
        let running = map.get(name).ok_or_else(|| unknown(name))?;
        Ok(ConnectorStatus {
            name: name.to_string(),
            kind: match running.plugin.as_ref() {
                Plugin::Source(_) => ConnectorKind::Source,
                Plugin::Sink(_) => ConnectorKind::Sink,
            },
            paused: running.paused,
            tasks: running
                .tasks
                .iter()
                .enumerate()
                .map(|(id, t)| {
                    let lag = t.shared.lag.load(Ordering::Relaxed);
                    TaskStatus {
                        id,
                        state: t.shared.state(),
                        records: t.shared.records.load(Ordering::Relaxed),
                        skipped: t.shared.skipped.load(Ordering::Relaxed),
                        lag: (lag >= 0).then_some(lag),
                    }
                })
                .collect(),
        })
    }

    /// The connectors' names.
    pub fn connectors(&self) -> Vec<String> {
        self.lock().keys().cloned().collect()
    }

    /// Stops every connector (sinks flush and commit first).
    pub fn close(self) {
        self.stop_all();
    }

    fn stop_all(&self) {
        let mut map = self.lock();
        for running in map.values_mut() {
            for t in &running.tasks {
                t.shared.stop.store(true, Ordering::Release);
                if let Some(w) = &t.wakeup {
                    w.wakeup();
                }
            }
        }
        for running in map.values_mut() {
            for t in &mut running.tasks {
                t.stop();
            }
        }
        map.clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Running>> {
        self.connectors
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn set_paused(&self, name: &str, paused: bool) -> Result<()> {
        let mut map = self.lock();
        let running = map.get_mut(name).ok_or_else(|| unknown(name))?;
        running.paused = paused;
        for t in &running.tasks {
            t.shared.paused.store(paused, Ordering::Release);
        }
        Ok(())
    }

    /// The converters and transforms a task runs, from the worker's and the connector's
    /// settings (the connector's win).
    fn pipeline(&self, config: &Properties) -> Result<Pipeline> {
        let merged = self.worker.overlaid(config);
        let make = |side: &str| -> Result<(Box<dyn Converter>, String)> {
            let key = format!("{side}.converter");
            let class = merged
                .get(&key)
                .unwrap_or("org.apache.kafka.connect.json.JsonConverter")
                .to_string();
            let c = converter(&key, &class, &merged.prefixed(&format!("{key}.")))?;
            Ok((c, class))
        };
        let (key, key_class) = make("key")?;
        let (value, value_class) = make("value")?;
        Ok(Pipeline {
            key,
            value,
            key_class,
            value_class,
            transforms: TransformChain::from_config(config.as_map())?,
        })
    }

    fn start_tasks(
        &self,
        name: &str,
        config: &Properties,
        plugin: &Arc<Plugin>,
        paused: bool,
    ) -> Result<Vec<Task>> {
        let max_tasks: usize = config.int("tasks.max", 1)?;
        if max_tasks == 0 {
            return Err(Error::invalid_config("tasks.max", "must be at least 1"));
        }
        let kind = match plugin.as_ref() {
            Plugin::Source(_) => ConnectorKind::Source,
            Plugin::Sink(_) => ConnectorKind::Sink,
        };
        let policy = ErrorPolicy::from(config, kind)?;
        let task_configs = match plugin.as_ref() {
            Plugin::Source(c) => {
                c.validate(config)?;
                c.task_configs(config, max_tasks)
            }
            Plugin::Sink(c) => {
                c.validate(config)?;
                c.task_configs(config, max_tasks)
            }
        };
        // Check every task's pipeline before starting any.
        for tc in &task_configs {
            self.pipeline(tc)?;
        }
        let mut tasks = Vec::new();
        for (id, tc) in task_configs.into_iter().enumerate() {
            let shared = Arc::new(Shared::default());
            shared.paused.store(paused, Ordering::Release);
            shared.lag.store(-1, Ordering::Relaxed);
            let started = match plugin.as_ref() {
                Plugin::Source(c) => self
                    .start_source(
                        name,
                        id,
                        tc,
                        c.task(),
                        c.exactly_once(config),
                        &policy,
                        &shared,
                    )
                    .map(|t| (t, None)),
                Plugin::Sink(c) => self.start_sink(name, id, tc, c.task(), &policy, &shared),
            };
            match started {
                Ok((thread, wakeup)) => tasks.push(Task {
                    shared,
                    thread: Some(thread),
                    wakeup,
                }),
                Err(e) => {
                    for t in &mut tasks {
                        t.stop();
                    }
                    return Err(e);
                }
            }
        }
        Ok(tasks)
    }

    #[allow(clippy::too_many_arguments)]
    fn start_source(
        &self,
        name: &str,
        id: usize,
        config: Properties,
        mut task: Box<dyn SourceTask>,
        exactly_once: bool,
        policy: &ErrorPolicy,
        shared: &Arc<Shared>,
    ) -> Result<JoinHandle<()>> {
        let pipeline = self.pipeline(&config)?;
        // Fence (and complete or abort) an earlier incarnation's transaction first, then read
        // the offsets: they then include everything it committed.
        let producer = if exactly_once {
            let p = self.log.producer(ProducerConfig::transactional(format!(
                "connect-{name}-{id}"
            )))?;
            p.init_transactions()?;
            p
        } else {
            self.log.producer(ProducerConfig::default())?
        };
        let offsets = load_offsets(self.log, &self.offsets_topic, name)?;
        let ctx = SourceContext {
            name: name.to_string(),
            log: Arc::clone(&self.log.inner),
            offsets_topic: self.offsets_topic.clone(),
            producer,
            exactly_once,
            pipeline,
            policy: policy.clone(),
            shared: Arc::clone(shared),
            known_topics: HashSet::new(),
            // -1 is Kafka's "the broker's default": one partition here.
            partitions: config
                .int("topic.creation.default.partitions", 1)
                .map(|p: i32| if p == -1 { 1 } else { p })?,
        };
        let shared = Arc::clone(shared);
        std::thread::Builder::new()
            .name(format!("connect-{name}-{id}"))
            .spawn(move || {
                let mut ctx = ctx;
                let run = task
                    .start(&config, &offsets)
                    .and_then(|()| ctx.run(task.as_mut()));
                if let Err(e) = run {
                    shared.fail(&e);
                }
                let _ = task.stop();
                shared.done.store(true, Ordering::Release);
            })
            .map_err(|e| Error::io(std::path::Path::new("<thread>"), e))
    }

    fn start_sink(
        &self,
        name: &str,
        id: usize,
        config: Properties,
        mut task: Box<dyn SinkTask>,
        policy: &ErrorPolicy,
        shared: &Arc<Shared>,
    ) -> Result<(JoinHandle<()>, Option<crate::consumer::WakeupHandle>)> {
        let pipeline = self.pipeline(&config)?;
        let mut pattern = None;
        let mut topics: Vec<String> = match config.get("topics.regex") {
            Some(re) if !re.trim().is_empty() => {
                let re = regex::Regex::new(&format!("^(?:{})$", re.trim())).map_err(|e| {
                    Error::invalid_config("topics.regex", format!("not a valid pattern: {e}"))
                })?;
                let matching = self
                    .log
                    .topics()
                    .into_iter()
                    .filter(|t| re.is_match(t))
                    .collect();
                pattern = Some((re, Arc::clone(&self.log.inner)));
                matching
            }
            _ => config.list("topics"),
        };
        topics.sort();
        let flush_every = self
            .worker
            .overlaid(&config)
            .millis("offset.flush.interval.ms", Duration::from_mins(1))?;
        let mut cc = ConsumerConfig::group(format!("connect-{name}"))
            .isolation_level(IsolationLevel::ReadCommitted);
        cc.enable_auto_commit = false;
        // Kafka's worker-wide `consumer.` settings and a connector's `consumer.override.`.
        let key = if config.contains("consumer.override.max.poll.records") {
            "consumer.override.max.poll.records"
        } else {
            "consumer.max.poll.records"
        };
        let over = self.worker.overlaid(&config);
        cc.max_poll_records = over.int(key, cc.max_poll_records)?;
        if cc.max_poll_records == 0 {
            return Err(Error::invalid_config(key, "must be at least 1"));
        }
        let mut consumer = self.log.consumer(cc)?;
        let refs: Vec<&str> = topics.iter().map(String::as_str).collect();
        consumer.subscribe(&refs)?;
        let wakeup = consumer.wakeup_handle();
        let dlq = match &policy.dlq {
            Some(t) => {
                ensure_topic(&self.log.inner, t, 1)?;
                Some((self.log.producer(ProducerConfig::default())?, t.clone()))
            }
            None => None,
        };
        let ctx = SinkContext {
            name: name.to_string(),
            id,
            consumer,
            pipeline,
            policy: policy.clone(),
            shared: Arc::clone(shared),
            dlq,
            flush_every,
            pattern,
            topics,
        };
        let shared = Arc::clone(shared);
        std::thread::Builder::new()
            .name(format!("connect-{name}-{id}"))
            .spawn(move || {
                let mut ctx = ctx;
                let run = task.start(&config).and_then(|()| ctx.run(task.as_mut()));
                if let Err(e) = run {
                    shared.fail(&e);
                }
                let _ = task.stop();
                let _ = ctx.consumer.close();
                shared.done.store(true, Ordering::Release);
            })
            .map_err(|e| Error::io(std::path::Path::new("<thread>"), e))
            .map(|t| (t, Some(wakeup)))
    }
}

impl Drop for Connect<'_> {
    fn drop(&mut self) {
        self.stop_all();
    }
}

fn unknown(name: &str) -> Error {
    Error::invalid_config("name", format!("no connector named '{name}'"))
}

/// Creates `topic` with `partitions` partitions and the log's default settings unless it
/// exists.
fn ensure_topic(log: &LogInner, topic: &str, partitions: i32) -> Result<()> {
    if log.topics.read().contains_key(topic) {
        return Ok(());
    }
    if is_internal_topic(topic) {
        return Err(Error::InternalTopic {
            topic: topic.to_string(),
            operation: "create",
        });
    }
    let config = log.options.default_topic_config.clone();
    match log.create_topic_unchecked(topic, partitions, config) {
        Ok(()) | Err(Error::TopicAlreadyExists { .. }) => Ok(()),
        Err(e) => Err(e),
    }
}

fn describe(stage: Stage, e: &Error) -> String {
    format!("{} failed: {e}", stage.name())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(not(feature = "sqlite"))]
    #[test]
    fn the_sqlite_connectors_without_the_feature_say_so() {
        for class in [
            "io.confluent.connect.jdbc.JdbcSourceConnector",
            "JdbcSinkConnector",
        ] {
            let Err(e) = builtin_plugin(class) else {
                panic!("{class} without the sqlite feature");
            };
            assert!(e.to_string().contains("`sqlite` feature"), "{e}");
        }
    }

    #[test]
    fn the_file_connectors_go_by_kafkas_names() {
        for class in [
            "FileStreamSource",
            "org.apache.kafka.connect.file.FileStreamSourceConnector",
        ] {
            assert!(
                matches!(builtin_plugin(class), Ok(Plugin::Source(_))),
                "{class}"
            );
        }
        assert!(matches!(
            builtin_plugin("FileStreamSink"),
            Ok(Plugin::Sink(_))
        ));
        assert!(builtin_plugin("NoSuchConnector").is_err());
    }
}
