//! `TopologyTestDriver`: a topology run by hand, with no log, group or threads.

use std::collections::{HashMap, VecDeque};

use bytes::Bytes;

use super::config::{DeserializationHandler, StreamsConfig};
use super::graph::Topology;
use super::node::Output;
use super::node::PunctuationType;
use super::ops::Raw;
use super::runtime::{InitOutput, Plan};
use super::serde::SharedSerde;
use super::store::KvStore;
use super::task::Task;
use crate::error::{Error, Result};

/// A record a test driver holds: key and value bytes and the timestamp.
type Held = (Option<Bytes>, Option<Bytes>, i64);

/// Runs a topology record by record, as Kafka's `TopologyTestDriver`: input piped in is
/// processed at once (through repartition topics too), and what reaches output topics is
/// kept to be read. Each input record is committed after it is processed, so caches forward
/// at once.
///
/// ```
/// use topiclog::streams::{
///     Consumed, Materialized, Produced, Serdes, StreamsBuilder, StreamsConfig,
///     TopologyTestDriver,
/// };
/// let builder = StreamsBuilder::new();
/// builder
///     .stream("lines", Consumed::with(Serdes::unit(), Serdes::string()))
///     .flat_map_values(|l: String| l.split(' ').map(str::to_string).collect::<Vec<_>>())
///     .group_by(|_, w: &String| w.clone(), Default::default())
///     .count(Materialized::named("counts").with_key_serde(Serdes::string()))
///     .to_stream()
///     .to("counts", Produced::default());
/// let mut driver = TopologyTestDriver::new(&builder.build()?, StreamsConfig::new("wc"))?;
/// driver.pipe_input("lines", &Serdes::unit(), &Serdes::string(), &(), &"a b a".to_string(), 0)?;
/// let out = driver.read_output("counts", &Serdes::string(), &Serdes::i64())?;
/// // The cache forwards each word's latest count once per commit (here, per input).
/// assert_eq!(out, [("a".to_string(), 2), ("b".to_string(), 1)]);
/// assert_eq!(driver.store_get("counts", &"b".to_string())?, Some(1_i64));
/// # Ok::<_, topiclog::Error>(())
/// ```
pub struct TopologyTestDriver {
    config: StreamsConfig,
    plan: Plan,
    tasks: Vec<Task>,
    outputs: HashMap<String, VecDeque<Held>>,
    time: i64,
}

impl std::fmt::Debug for TopologyTestDriver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TopologyTestDriver")
            .field("application.id", &self.config.application_id)
            .finish_non_exhaustive()
    }
}

/// Records sent while one input is processed.
#[derive(Default)]
struct Collected(Vec<(String, Held)>);

impl Output for Collected {
    fn send(
        &mut self,
        topic: &str,
        _partition: Option<i32>,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        timestamp: i64,
    ) -> Result<()> {
        let key = key.map(Bytes::copy_from_slice);
        let value = value.map(Bytes::copy_from_slice);
        self.0.push((topic.to_string(), (key, value, timestamp)));
        Ok(())
    }
}

impl TopologyTestDriver {
    /// A driver for `topology` (one task per sub-topology, partition 0). Source topics need
    /// not exist anywhere.
    ///
    /// # Errors
    /// [`Error::Streams`] for a topology that cannot run.
    pub fn new(topology: &Topology, config: StreamsConfig) -> Result<TopologyTestDriver> {
        let plan = Plan::with_counts(topology, &config.application_id, |_| Some(1))?;
        let mut tasks: Vec<Task> = topology
            .subs
            .iter()
            .map(|sub| Task::new(topology, sub, 0, &config.application_id))
            .collect();
        for task in &mut tasks {
            task.init(&mut InitOutput, config.cache_max_bytes)?;
        }
        Ok(TopologyTestDriver {
            config,
            plan,
            tasks,
            outputs: HashMap::new(),
            time: 0,
        })
    }

    /// Pipes one record into `topic` with timestamp `timestamp` and processes it (and what
    /// it sends through repartition topics), then commits.
    ///
    /// # Errors
    /// A processor's error; [`Error::Serde`] for a record that does not deserialize under
    /// `LogAndFail`; [`Error::Streams`] for a topic the topology does not read.
    pub fn pipe_input<K: 'static, V: 'static>(
        &mut self,
        topic: &str,
        key_serde: &SharedSerde<K>,
        value_serde: &SharedSerde<V>,
        key: &K,
        value: &V,
        timestamp: i64,
    ) -> Result<()> {
        let k = key_serde.serialize(topic, key)?;
        let v = value_serde.serialize(topic, value)?;
        self.pipe_raw(topic, k, v, timestamp)
    }

    /// Pipes one record of bytes (`None`: null) into `topic`.
    ///
    /// # Errors
    /// As [`TopologyTestDriver::pipe_input`].
    pub fn pipe_raw(
        &mut self,
        topic: &str,
        key: Option<Bytes>,
        value: Option<Bytes>,
        timestamp: i64,
    ) -> Result<()> {
        if !self.plan.sub_of.contains_key(topic) {
            return Err(Error::Streams {
                reason: format!("the topology does not read '{topic}'"),
            });
        }
        self.time = self.time.max(timestamp);
        let mut queue: VecDeque<(String, Held)> = VecDeque::new();
        queue.push_back((topic.to_string(), (key, value, timestamp)));
        self.drain(queue)
    }

    /// Processes what `queue` holds (and what that sends through repartition topics), then
    /// commits: caches forward, and what they forward is processed too.
    fn drain(&mut self, mut queue: VecDeque<(String, Held)>) -> Result<()> {
        while let Some((t, (k, v, ts))) = queue.pop_front() {
            let mut out = Collected::default();
            self.process(&t, k.as_deref(), v.as_deref(), ts, &mut out)?;
            self.route(out, &mut queue);
        }
        // Commit: caches forward, and what they forward is processed too.
        loop {
            let mut out = Collected::default();
            let cache = self.config.cache_max_bytes;
            for task in &mut self.tasks {
                task.flush(&mut out, cache)?;
            }
            if out.0.is_empty() {
                break;
            }
            self.route(out, &mut queue);
            while let Some((t, (k, v, ts))) = queue.pop_front() {
                let mut out = Collected::default();
                self.process(&t, k.as_deref(), v.as_deref(), ts, &mut out)?;
                self.route(out, &mut queue);
            }
        }
        Ok(())
    }

    fn process(
        &mut self,
        topic: &str,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        timestamp: i64,
        out: &mut Collected,
    ) -> Result<()> {
        let Some(&sub) = self.plan.sub_of.get(topic) else {
            return Ok(());
        };
        let cache = self.config.cache_max_bytes;
        let Some(task) = self.tasks.get_mut(sub) else {
            return Ok(());
        };
        match task.process(topic, key, value, timestamp, out, cache)? {
            Raw::Done => Ok(()),
            Raw::BadInput(e) => match self.config.deserialization_handler {
                DeserializationHandler::LogAndFail => Err(e),
                DeserializationHandler::LogAndContinue => {
                    if let Some(dlq) = &self.config.dead_letter_topic {
                        self.outputs.entry(dlq.clone()).or_default().push_back((
                            key.map(Bytes::copy_from_slice),
                            value.map(Bytes::copy_from_slice),
                            timestamp,
                        ));
                    }
                    Ok(())
                }
            },
        }
    }

    /// Moves the driver's wall clock (which starts at 0) by `by` and runs the wall-clock
    /// punctuations due (Kafka's `advanceWallClockTime`); what they forward is processed and
    /// kept as output, then the driver commits.
    ///
    /// # Errors
    /// A processor's error.
    pub fn advance_wall_clock_time(&mut self, by: std::time::Duration) -> Result<()> {
        let by = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
        let cache = self.config.cache_max_bytes;
        let mut queue: VecDeque<(String, Held)> = VecDeque::new();
        for i in 0..self.tasks.len() {
            let mut out = Collected::default();
            if let Some(task) = self.tasks.get_mut(i) {
                task.wall_time = task.wall_time.saturating_add(by);
                let now = task.wall_time;
                task.punctuate(PunctuationType::WallClockTime, now, &mut out, cache)?;
            }
            self.route(out, &mut queue);
        }
        self.drain(queue)
    }

    /// Records to repartition topics go back in; changelog records are dropped; the rest
    /// are kept as output.
    fn route(&mut self, out: Collected, queue: &mut VecDeque<(String, Held)>) {
        for (topic, held) in out.0 {
            if self.plan.repartitions.contains_key(&topic) {
                queue.push_back((topic, held));
            } else if !self.plan.changelogs.contains_key(&topic) {
                self.outputs.entry(topic).or_default().push_back(held);
            }
        }
    }

    /// Reads (and removes) every record that reached `topic`, through the serdes.
    ///
    /// # Errors
    /// [`Error::Serde`] for a record the serdes do not read.
    pub fn read_output<K: 'static, V: 'static>(
        &mut self,
        topic: &str,
        key_serde: &SharedSerde<K>,
        value_serde: &SharedSerde<V>,
    ) -> Result<Vec<(K, V)>> {
        let held = self.outputs.remove(topic).unwrap_or_default();
        held.into_iter()
            .map(|(k, v, _)| {
                Ok((
                    key_serde.deserialize(topic, k.as_deref())?,
                    value_serde.deserialize(topic, v.as_deref())?,
                ))
            })
            .collect()
    }

    /// Reads (and removes) every record that reached `topic` as bytes with timestamps.
    pub fn read_raw_output(&mut self, topic: &str) -> Vec<(Option<Bytes>, Option<Bytes>, i64)> {
        self.outputs
            .remove(topic)
            .map(Vec::from)
            .unwrap_or_default()
    }

    /// The value of `key` in the key-value store `store`.
    ///
    /// # Errors
    /// [`Error::Streams`] when there is no such store or its types are others.
    pub fn store_get<K, V>(&mut self, store: &str, key: &K) -> Result<Option<V>>
    where
        K: Clone + Send + 'static,
        V: Clone + Send + 'static,
    {
        let s = self.kv::<K, V>(store)?;
        Ok(s.get_by_key(key)?.cloned())
    }

    /// How many records the topology dropped: late for a window that had closed, or
    /// without a valid timestamp (Kafka's `dropped-records` metric).
    pub fn dropped_records(&self) -> u64 {
        self.tasks.iter().map(|t| t.dropped).sum()
    }

    /// Every entry of the key-value store `store`, in no order.
    ///
    /// # Errors
    /// As [`TopologyTestDriver::store_get`].
    pub fn store_all<K, V>(&mut self, store: &str) -> Result<Vec<(K, V)>>
    where
        K: Clone + Send + 'static,
        V: Clone + Send + 'static,
    {
        let s = self.kv::<K, V>(store)?;
        s.all()
    }

    fn kv<K, V>(&mut self, store: &str) -> Result<&mut KvStore<K, V>>
    where
        K: Clone + Send + 'static,
        V: Clone + Send + 'static,
    {
        for task in &mut self.tasks {
            if let Some(any) = task.store_any(store) {
                return any
                    .downcast_mut::<KvStore<K, V>>()
                    .ok_or_else(|| Error::Streams {
                        reason: format!("the store '{store}' holds other key or value types"),
                    });
            }
        }
        Err(Error::Streams {
            reason: format!("no store named '{store}'"),
        })
    }
}
