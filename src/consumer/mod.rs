//! [`Consumer`]: reads partitions in order, by hand (`assign`) or as a member of a consumer
//! group (`subscribe`), with committed offsets that survive restarts.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::TopicPartition;
use crate::error::{Error, Result};
use crate::group::assignor::any_assignor;
use crate::group::coordinator::{JoinRequest, Joining, MemberSignal, Patience};
use crate::group::offsets::OffsetAndMetadata;
use crate::group::protocol::{Assignment, Subscription};
use crate::log::LogInner;
use crate::log::PartitionHandle;
use crate::record::batch::{
    BatchHeader, RecordCursor, batch_crc, decompressed_section, records_section,
};
use crate::types::{ConsumerGroupMetadata, IsolationLevel};
use crate::wait::Notifier;

mod config;
mod metrics;
mod records;

pub use config::{ConsumerConfig, OffsetAndTimestamp, OffsetReset};
pub use metrics::ConsumerMetrics;
pub use records::{ConsumerRecord, ConsumerRecordIter, ConsumerRecords, OwnedConsumerRecord};
use records::{Faults, Layout, PartitionRecords, Section};

/// Called around rebalances: revoked before partitions are taken away (commit here to avoid
/// duplicates), assigned after new ones are handed over.
pub trait RebalanceListener: Send {
    /// Partitions about to be taken away. The consumer still owns them: a commit here uses the
    /// current generation and is accepted.
    fn on_partitions_revoked(&mut self, consumer: &mut Consumer, partitions: &[TopicPartition]) {
        let _ = (consumer, partitions);
    }
    /// Partitions just assigned.
    fn on_partitions_assigned(&mut self, consumer: &mut Consumer, partitions: &[TopicPartition]) {
        let _ = (consumer, partitions);
    }
}

/// Interrupts a blocked [`Consumer::poll`] from another thread.
#[derive(Debug, Clone)]
pub struct WakeupHandle {
    flag: Arc<AtomicBool>,
    notifier: Arc<Notifier>,
}

impl WakeupHandle {
    /// Makes the current (or next) `poll` return [`Error::WokenUp`].
    pub fn wakeup(&self) {
        self.flag.store(true, Ordering::Release);
        self.notifier.notify();
    }
}

struct Assigned {
    handle: PartitionHandle,
    position: Option<i64>,
    /// The topic name as the records of this partition share it.
    topic: Arc<str>,
    checked: Option<Checked>,
    /// Seeks so far: a record's fault reported from records fetched before the last seek is
    /// not acted on.
    seeks: u64,
    /// Paused by the application: `poll` skips it.
    paused: bool,
}

struct Membership {
    member_id: String,
    generation: i32,
    /// A rebalance a poll left at its deadline or at a wake-up, this member still in it (the
    /// coordinator keeps it in the round): the next poll continues it instead of joining
    /// again, which would start another round.
    unfinished: Option<Unfinished>,
}

/// Where an unfinished rebalance stands.
struct Unfinished {
    /// The subscription it joined with: after a `subscribe` that changed it, a poll joins
    /// anew.
    topics: Vec<String>,
    step: Step,
}

enum Step {
    /// The join round is open.
    Join,
    /// Joined in `generation`; the leader's assignment is not in yet.
    Sync { generation: i32 },
}

/// How often a poll on a read-only view looks for what the directory's owner appended since:
/// Kafka's `fetch.max.wait.ms` is 500 ms; this is a tenth of it, and a look at an unchanged
/// partition costs a directory listing and a `stat`.
const READ_ONLY_RECHECK: Duration = Duration::from_millis(50);

/// A consumer. `Send`, used from one thread at a time (`&mut self`), like Kafka's; use a
/// [`WakeupHandle`] to interrupt it from another thread. Dropping it leaves its group after
/// running the revoke callback (and the auto-commit).
pub struct Consumer {
    log: Arc<LogInner>,
    config: ConsumerConfig,
    notifier: Arc<Notifier>,
    wake: Arc<AtomicBool>,
    alive: Arc<MemberSignal>,
    last_heartbeat: Instant,
    subscription: Option<Vec<String>>,
    member: Option<Membership>,
    rejoin: bool,
    assigned: BTreeMap<TopicPartition, Assigned>,
    owned: Vec<TopicPartition>,
    /// The subscription's user data (a stream application's task map).
    user_data: Option<Bytes>,
    cursor: usize,
    last_auto_commit: Instant,
    listener: Option<Box<dyn RebalanceListener>>,
    /// Records that did not decode while a poll's records were iterated.
    faults: Arc<Faults>,
    metrics: metrics::Counters,
    /// When the rebalance this member is in started (for its metrics).
    rebalance_started: Option<Instant>,
    closed: bool,
}

impl std::fmt::Debug for Consumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Consumer")
            .field("group_id", &self.config.group_id)
            .field("assigned", &self.assigned.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl Consumer {
    pub(crate) fn new(log: Arc<LogInner>, config: ConsumerConfig) -> Result<Consumer> {
        config.validate()?;
        log.check_open()?;
        Ok(Consumer {
            log,
            config,
            notifier: Notifier::new(),
            wake: Arc::new(AtomicBool::new(false)),
            alive: Arc::default(),
            last_heartbeat: Instant::now(),
            subscription: None,
            member: None,
            rejoin: false,
            assigned: BTreeMap::new(),
            owned: Vec::new(),
            user_data: None,
            cursor: 0,
            last_auto_commit: Instant::now(),
            listener: None,
            faults: Arc::default(),
            metrics: metrics::Counters::new(),
            rebalance_started: None,
            closed: false,
        })
    }

    /// A handle that interrupts `poll` from another thread.
    pub fn wakeup_handle(&self) -> WakeupHandle {
        WakeupHandle {
            flag: Arc::clone(&self.wake),
            notifier: Arc::clone(&self.notifier),
        }
    }

    /// Sets the rebalance callbacks.
    pub fn set_rebalance_listener(&mut self, listener: impl RebalanceListener + 'static) {
        self.listener = Some(Box::new(listener));
    }

    /// The partitions this consumer reads now.
    pub fn assignment(&self) -> Vec<TopicPartition> {
        self.assigned.keys().cloned().collect()
    }

    /// Stops `poll` returning records of these partitions until [`Consumer::resume`], as
    /// Kafka's `pause`: each keeps its position and stays assigned (a group member keeps
    /// heartbeating, so the group does not reassign it). A rebalance revokes every partition
    /// before the new assignment (Kafka's eager protocol) and drops their pauses with them:
    /// pause again in [`RebalanceListener::on_partitions_assigned`] if need be. A manual
    /// [`Consumer::assign`] keeps the pauses of the partitions it keeps.
    ///
    /// # Errors
    /// [`Error::NotAssigned`] for a partition this consumer is not assigned; nothing is
    /// paused then.
    ///
    /// ```
    /// use std::time::Duration;
    /// use topiclog::{ConsumerConfig, Log, Record, TopicPartition};
    /// let dir = tempfile::tempdir().expect("a temporary directory");
    /// let log = Log::open(dir.path())?;
    /// log.create_topic("events", 2)?;
    /// log.append("events", 0, &[Record::new("a")])?;
    /// log.append("events", 1, &[Record::new("b")])?;
    /// let (p0, p1) = (TopicPartition::new("events", 0), TopicPartition::new("events", 1));
    /// let mut consumer = log.consumer(ConsumerConfig::default())?;
    /// consumer.assign(&[p0.clone(), p1.clone()])?;
    /// consumer.pause(&[p1.clone()])?; // e.g. its downstream is full
    /// let got = consumer.poll(Duration::from_millis(100))?;
    /// assert_eq!(got.partitions().into_iter().collect::<Vec<_>>(), vec![p0]);
    /// consumer.resume(&[p1.clone()])?;
    /// assert_eq!(consumer.poll(Duration::from_millis(100))?.count(&p1), 1);
    /// # Ok::<_, topiclog::Error>(())
    /// ```
    pub fn pause(&mut self, partitions: &[TopicPartition]) -> Result<()> {
        self.set_paused(partitions, true)
    }

    /// Lets `poll` return records of these paused partitions again, from where each stood.
    /// Resuming a partition that is not paused does nothing.
    ///
    /// # Errors
    /// [`Error::NotAssigned`] for a partition this consumer is not assigned; nothing is
    /// resumed then.
    pub fn resume(&mut self, partitions: &[TopicPartition]) -> Result<()> {
        self.set_paused(partitions, false)
    }

    /// The partitions paused now.
    pub fn paused(&self) -> BTreeSet<TopicPartition> {
        self.assigned
            .iter()
            .filter(|(_, a)| a.paused)
            .map(|(tp, _)| tp.clone())
            .collect()
    }

    fn set_paused(&mut self, partitions: &[TopicPartition], paused: bool) -> Result<()> {
        // All or nothing: check every partition first.
        for tp in partitions {
            self.assigned_mut(tp)?;
        }
        for tp in partitions {
            self.assigned_mut(tp)?.paused = paused;
        }
        if !paused {
            // A poll parked on a paused partition's append learns of it now.
            self.notifier.notify();
        }
        Ok(())
    }

    /// The consumer's metrics: records and bytes consumed (totals, and rates over the time
    /// since the previous call), each assigned partition's lag, the time between polls, and
    /// rebalances and their duration. See [`ConsumerMetrics`] for names and units. Counting
    /// them costs `poll` a clock read it makes anyway and a few additions; reading them
    /// costs a high-watermark read per assigned partition.
    ///
    /// ```
    /// use std::time::Duration;
    /// use topiclog::{ConsumerConfig, Log, Record, TopicPartition};
    /// let dir = tempfile::tempdir().expect("a temporary directory");
    /// let log = Log::open(dir.path())?;
    /// log.create_topic("events", 1)?;
    /// log.append("events", 0, &[Record::new("a"), Record::new("b"), Record::new("c")])?;
    /// let mut config = ConsumerConfig::default();
    /// config.max_poll_records = 2;
    /// let mut consumer = log.consumer(config)?;
    /// consumer.assign(&[TopicPartition::new("events", 0)])?;
    /// consumer.poll(Duration::from_millis(100))?;
    /// let m = consumer.metrics();
    /// assert_eq!(m.records_consumed_total, 2);
    /// assert_eq!(m.records_lag_max, Some(1)); // one record left to read
    /// # Ok::<_, topiclog::Error>(())
    /// ```
    pub fn metrics(&self) -> ConsumerMetrics {
        let lag = self
            .assigned
            .iter()
            .map(|(tp, a)| {
                let lag = a.position.map(|p| (a.handle.readable_end() - p).max(0));
                (tp.clone(), lag)
            })
            .collect();
        self.metrics.snapshot(lag)
    }

    /// This consumer's group metadata, for
    /// [`Producer::send_offsets_to_transaction`](crate::Producer::send_offsets_to_transaction):
    /// the group, and while a member of it, the member id and generation. `None` without a
    /// group id.
    pub fn group_metadata(&self) -> Option<ConsumerGroupMetadata> {
        let group = self.config.group_id.clone()?;
        Some(match (&self.member, &self.subscription) {
            (Some(m), Some(_)) => {
                ConsumerGroupMetadata::member(group, m.generation, m.member_id.clone())
            }
            _ => ConsumerGroupMetadata::new(group),
        })
    }

    /// The member id and generation, while a group member.
    pub fn group_generation(&self) -> Option<(String, i32)> {
        self.member
            .as_ref()
            .map(|m| (m.member_id.clone(), m.generation))
    }

    /// Reads exactly these partitions (no group membership; commits, if a group id is set,
    /// are standalone and allowed only while the group has no members).
    ///
    /// # Errors
    /// [`Error::TopicNotFound`], [`Error::PartitionNotFound`].
    pub fn assign(&mut self, partitions: &[TopicPartition]) -> Result<()> {
        if self.subscription.is_some() {
            return Err(Error::invalid_config(
                "assign",
                "the consumer is subscribed; unsubscribe first",
            ));
        }
        self.set_assignment(partitions)
    }

    /// Joins the consumer group and reads the partitions the group assigns. The first `poll`
    /// joins; later polls follow rebalances: when a member joins or leaves, and when a
    /// subscribed topic grows ([`Log::add_partitions`](crate::Log::add_partitions)) or is
    /// created. A rebalance waits for every member to rejoin, but no poll waits past its
    /// timeout or a wake-up for it (see [`Consumer::poll`]).
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] without a group id.
    ///
    /// ```
    /// use std::time::Duration;
    /// use topiclog::{ConsumerConfig, Log, Record};
    /// let dir = tempfile::tempdir().expect("a temporary directory");
    /// let log = Log::open(dir.path())?;
    /// log.create_topic("events", 2)?;
    /// log.append("events", 1, &[Record::new("a")])?;
    /// let mut consumer = log.consumer(ConsumerConfig::group("audit"))?;
    /// consumer.subscribe(&["events"])?; // joins on the next poll
    /// let got = consumer.poll(Duration::from_millis(500))?;
    /// assert_eq!(got.len(), 1);
    /// assert_eq!(consumer.assignment().len(), 2); // the only member gets both partitions
    /// consumer.close()?;
    /// # Ok::<_, topiclog::Error>(())
    /// ```
    pub fn subscribe(&mut self, topics: &[&str]) -> Result<()> {
        if self.config.group_id.is_none() {
            return Err(Error::invalid_config(
                "group_id",
                "subscribe needs a group id",
            ));
        }
        let mut t: Vec<String> = topics.iter().map(|s| (*s).to_string()).collect();
        t.sort();
        t.dedup();
        self.subscription = Some(t);
        self.rejoin = true;
        Ok(())
    }

    /// Leaves the group (if a member) and stops reading.
    ///
    /// # Errors
    /// Commit errors from the auto-commit before leaving.
    pub fn unsubscribe(&mut self) -> Result<()> {
        let r = self.revoke_all();
        self.leave_group();
        self.subscription = None;
        r
    }

    fn set_assignment(&mut self, partitions: &[TopicPartition]) -> Result<()> {
        let mut next = BTreeMap::new();
        for tp in partitions {
            if let Some(a) = self.assigned.remove(tp) {
                next.insert(tp.clone(), a);
                continue;
            }
            let handle = crate::log::handle_for(&self.log, &tp.topic, tp.partition)?
                .with_isolation_level(self.config.isolation_level);
            handle.register_notifier(&self.notifier);
            next.insert(
                tp.clone(),
                Assigned {
                    handle,
                    position: None,
                    topic: Arc::from(tp.topic.as_str()),
                    checked: None,
                    seeks: 0,
                    paused: false,
                },
            );
        }
        for a in self.assigned.values() {
            a.handle.unregister_notifier(&self.notifier);
        }
        self.assigned = next;
        self.cursor = 0;
        Ok(())
    }

    fn group_id(&self) -> Result<&str> {
        self.config
            .group_id
            .as_deref()
            .ok_or_else(|| Error::invalid_config("group_id", "this needs a group id"))
    }

    /// Waits up to `timeout` for records and returns what arrived, in order per partition and
    /// fair across partitions. Woken by appends, not by polling. Runs group upkeep (joining,
    /// rebalances, heartbeats) and auto-commits.
    ///
    /// A rebalance waits for the group's other members to rejoin (up to the longest
    /// `max_poll_interval` among them). The timeout and [`WakeupHandle::wakeup`] hold during
    /// it as at any other time: a poll that reaches either first returns (no records, or
    /// [`Error::WokenUp`]) with this member still in the rebalance, and the next poll goes on
    /// where it left off. Poll again within `max_poll_interval`, as always, to keep the
    /// member in the group.
    ///
    /// # Errors
    /// [`Error::WokenUp`] after [`WakeupHandle::wakeup`]; [`Error::NoOffset`] /
    /// [`Error::OffsetOutOfRange`] under [`OffsetReset::Error`]; commit and I/O errors.
    ///
    /// ```
    /// use std::time::Duration;
    /// use topiclog::{ConsumerConfig, Log, Record, TopicPartition};
    /// let dir = tempfile::tempdir().expect("a temporary directory");
    /// let log = Log::open(dir.path())?;
    /// log.create_topic("events", 1)?;
    /// let mut consumer = log.consumer(ConsumerConfig::default())?;
    /// consumer.assign(&[TopicPartition::new("events", 0)])?;
    /// assert!(consumer.poll(Duration::from_millis(10))?.is_empty()); // nothing yet: waited 10 ms
    /// log.append("events", 0, &[Record::new("a"), Record::new("b")])?;
    /// let records = consumer.poll(Duration::from_secs(1))?; // returns as soon as data arrives
    /// for r in records.iter() {
    ///     println!("{}@{} {:?}", r.partition(), r.offset(), r.value());
    /// }
    /// assert_eq!(records.len(), 2);
    /// # Ok::<_, topiclog::Error>(())
    /// ```
    pub fn poll(&mut self, timeout: Duration) -> Result<ConsumerRecords> {
        let start = Instant::now();
        self.metrics.polled(start);
        let deadline = start + timeout;
        loop {
            if self.wake.swap(false, Ordering::AcqRel) {
                return Err(Error::WokenUp);
            }
            self.log.check_open()?;
            if let Some(fault) = self.faults.take()
                && let Some(a) = self.assigned.get_mut(&fault.tp)
                && a.seeks == fault.seeks
            {
                a.position = Some(fault.offset);
                return Err(undecodable(&fault.tp, fault.offset, &fault.error));
            }
            self.group_upkeep(deadline)?;
            self.maybe_auto_commit()?;
            let records = self.fetch()?;
            if !records.is_empty() {
                return Ok(records);
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(records);
            }
            // Wake for the next heartbeat too, so a long poll keeps the membership alive.
            let mut beat = (self.config.session_timeout / 3).max(Duration::from_millis(10));
            if self.log.shared.read_only {
                // Nothing in this process appends to wake a read-only view: look at the
                // directory again every so often instead (a read at the end refreshes it).
                beat = beat.min(READ_ONLY_RECHECK);
            } else if !self.config.busy_poll.is_zero() {
                // Busy-poll: watch the flag an append sets before parking.
                let until = deadline.min(now + self.config.busy_poll.min(beat));
                if self.notifier.spin_until(until) {
                    continue;
                }
                let now = Instant::now();
                if now >= deadline {
                    return Ok(records);
                }
                self.notifier.wait_until(deadline.min(now + beat));
                continue;
            }
            self.notifier.wait_until(deadline.min(now + beat));
        }
    }

    /// Longest time between this member's heartbeats while it polls (Kafka's
    /// `heartbeat.interval.ms` is 3 s): they tell the group it still polls, and learn of
    /// rebalances the coordinator did not signal.
    fn heartbeat_interval(&self) -> Duration {
        (self.config.session_timeout / 3)
            .min(self.config.max_poll_interval / 3)
            .min(Duration::from_secs(3))
    }

    /// Heartbeats and rebalances; waits for the rest of the group until `deadline` at most.
    fn group_upkeep(&mut self, deadline: Instant) -> Result<()> {
        if self.subscription.is_none() {
            return Ok(());
        }
        if self.member.is_some() && !self.rejoin {
            // The coordinator raises the signal when a rebalance starts: a poll between
            // heartbeats costs one atomic swap and a clock read, not the coordinator's lock.
            let signalled = self.alive.rebalance.swap(false, Ordering::AcqRel);
            if !signalled && self.last_heartbeat.elapsed() < self.heartbeat_interval() {
                return Ok(());
            }
        }
        let group = self.group_id()?.to_string();
        if let Some(m) = &self.member
            && !self.rejoin
        {
            self.last_heartbeat = Instant::now();
            match self
                .log
                .coordinator()
                .heartbeat(&group, &m.member_id, m.generation, true)
            {
                Ok(()) => return Ok(()),
                Err(
                    Error::RebalanceInProgress { .. }
                    | Error::StaleMember { .. }
                    | Error::GroupNotFound { .. },
                ) => {
                    self.rejoin = true;
                }
                Err(e) => return Err(e),
            }
        }
        // A round may take several polls (each waits until its own deadline at most): it is
        // timed from the poll that started it to the one that took the new assignment.
        let started = *self.rebalance_started.get_or_insert_with(Instant::now);
        self.rebalance(&group, deadline)?;
        if !self.rejoin {
            self.rebalance_started = None;
            self.metrics.rebalanced(started.elapsed());
        }
        Ok(())
    }

    /// Revokes everything, joins, syncs, and takes the new assignment. Waits for the rest of
    /// the group until `deadline` (the poll's) at most, and not past a wake-up: this member
    /// then stays in the round and the next poll continues it (see [`Membership::unfinished`]),
    /// and this returns `Ok` with nothing assigned, or [`Error::WokenUp`].
    fn rebalance(&mut self, group: &str, deadline: Instant) -> Result<()> {
        let _ = self.revoke_all();
        let topics = self.subscription.clone().unwrap_or_default();
        let wake = Arc::clone(&self.wake);
        let patience = Patience {
            until: Some(deadline),
            woken: Some(&wake),
        };
        loop {
            self.log.check_open()?;
            let coord = self.log.coordinator();
            // A round the last poll left, unless the subscription changed since.
            let resumed = self.member.as_mut().and_then(|m| {
                let step = m.unfinished.take().filter(|u| u.topics == topics)?.step;
                Some((m.member_id.clone(), step))
            });
            let (member_id, generation, assignments) = match resumed {
                Some((member_id, Step::Sync { generation })) => (member_id, generation, None),
                resumed => {
                    let joining = match &resumed {
                        Some((member_id, _)) => coord.resume_join(group, member_id, patience),
                        None => coord.join(
                            &self.join_request(group, &topics),
                            Some(&self.notifier),
                            Some(&self.alive),
                            patience,
                        ),
                    };
                    let joined = match joining {
                        Ok(Joining::Joined(j)) => j,
                        Ok(Joining::Waiting { member_id }) => {
                            // Still the last completed generation's member (or none yet).
                            let generation = self.member.as_ref().map_or(-1, |m| m.generation);
                            self.member = Some(Membership {
                                member_id,
                                generation,
                                unfinished: Some(Unfinished {
                                    topics,
                                    step: Step::Join,
                                }),
                            });
                            return self.interrupted();
                        }
                        Err(Error::StaleMember { .. }) => {
                            self.forget_member(group);
                            continue;
                        }
                        Err(e) => return Err(e),
                    };
                    self.member = Some(Membership {
                        member_id: joined.member_id.clone(),
                        generation: joined.generation,
                        unfinished: None,
                    });
                    let assignments = if joined.leader == joined.member_id {
                        Some(self.leader_assign(&joined.protocol, &joined.members)?)
                    } else {
                        None
                    };
                    (joined.member_id, joined.generation, assignments)
                }
            };
            match coord.sync(group, &member_id, generation, assignments, patience) {
                Ok(Some(bytes)) => {
                    let parts = if bytes.is_empty() {
                        Vec::new()
                    } else {
                        Assignment::decode(&bytes)?.partitions
                    };
                    // Skip partitions of topics deleted meanwhile.
                    let parts: Vec<TopicPartition> = parts
                        .into_iter()
                        .filter(|tp| {
                            crate::log::handle_for(&self.log, &tp.topic, tp.partition).is_ok()
                        })
                        .collect();
                    self.set_assignment(&parts)?;
                    self.owned.clone_from(&parts);
                    self.rejoin = false;
                    self.notifier.notify();
                    if let Some(mut l) = self.listener.take() {
                        l.on_partitions_assigned(self, &parts);
                        self.listener = Some(l);
                    }
                    return Ok(());
                }
                // Joined, the leader's assignment not in yet: the next poll waits on for it.
                Ok(None) => {
                    if let Some(m) = self.member.as_mut() {
                        m.unfinished = Some(Unfinished {
                            topics,
                            step: Step::Sync { generation },
                        });
                    }
                    return self.interrupted();
                }
                // A newer generation: rejoin under the same member id (a fresh id would leave
                // the old one behind, and the group would wait for it to rejoin).
                Err(Error::RebalanceInProgress { .. } | Error::StaleMember { .. }) => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Sets the user data this member's subscription carries from its next join on (what
    /// its assignor reads: a stream application's task map).
    #[cfg_attr(not(feature = "streams"), allow(dead_code))]
    pub(crate) fn set_subscription_user_data(&mut self, data: Option<Bytes>) {
        self.user_data = data;
    }

    /// What this member sends when it joins with `topics`.
    fn join_request(&self, group: &str, topics: &[String]) -> JoinRequest {
        let sub = Subscription {
            topics: topics.to_vec(),
            user_data: self.user_data.clone(),
            owned_partitions: self.owned.clone(),
            generation_id: self.member.as_ref().map_or(-1, |m| m.generation),
            rack_id: None,
        };
        let meta = Bytes::from(sub.encode());
        JoinRequest {
            group: group.to_string(),
            member_id: self
                .member
                .as_ref()
                .map(|m| m.member_id.clone())
                .unwrap_or_default(),
            client_id: self.config.client_id.clone(),
            protocol_type: "consumer".into(),
            protocols: self
                .config
                .assignors
                .iter()
                .map(|a| (a.clone(), meta.clone()))
                .collect(),
            session_timeout: self.config.session_timeout,
            rebalance_timeout: self.config.max_poll_interval,
        }
    }

    /// A rebalance this poll leaves unfinished: [`Error::WokenUp`] when a wake-up cut it
    /// short (consuming the wake-up, as `poll` does), else `Ok`: the poll's time is up.
    fn interrupted(&self) -> Result<()> {
        if self.wake.swap(false, Ordering::AcqRel) {
            return Err(Error::WokenUp);
        }
        Ok(())
    }

    fn leader_assign(
        &self,
        protocol: &str,
        members: &[(String, Bytes)],
    ) -> Result<Vec<(String, Bytes)>> {
        let assignor = any_assignor(protocol).ok_or_else(|| {
            Error::invalid_config("assignors", format!("unknown assignor {protocol}"))
        })?;
        let mut subs = BTreeMap::new();
        let mut counts = BTreeMap::new();
        for (id, meta) in members {
            let sub = Subscription::decode(meta).unwrap_or_default();
            for t in &sub.topics {
                if let Ok(n) = crate::log::partition_count(&self.log, t) {
                    counts.insert(t.clone(), n);
                }
            }
            subs.insert(id.clone(), sub);
        }
        let result = assignor.assign(&subs, &counts);
        Ok(result
            .into_iter()
            .map(|(id, parts)| (id, Bytes::from(Assignment::new(parts).encode())))
            .collect())
    }

    /// Runs the revoke callback and the auto-commit, then drops every partition.
    fn revoke_all(&mut self) -> Result<()> {
        if self.assigned.is_empty() {
            return Ok(());
        }
        let parts = self.assignment();
        if let Some(mut l) = self.listener.take() {
            l.on_partitions_revoked(self, &parts);
            self.listener = Some(l);
        }
        let r = if self.config.enable_auto_commit && self.config.group_id.is_some() {
            self.commit().or_else(|e| match e {
                // The generation is gone (we were removed): nothing to commit to.
                Error::StaleMember { .. } => Ok(()),
                e => Err(e),
            })
        } else {
            Ok(())
        };
        self.set_assignment(&[])?;
        r
    }

    /// Drops the member id, making sure the group does not keep waiting for it.
    fn forget_member(&mut self, group: &str) {
        if let Some(m) = self.member.take() {
            let _ = self.log.coordinator().leave(group, &m.member_id);
        }
    }

    fn leave_group(&mut self) {
        if let (Some(m), Some(g)) = (self.member.take(), self.config.group_id.clone()) {
            let _ = self.log.coordinator().leave(&g, &m.member_id);
        }
    }

    fn maybe_auto_commit(&mut self) -> Result<()> {
        if !self.config.enable_auto_commit
            || self.config.group_id.is_none()
            || self.last_auto_commit.elapsed() < self.config.auto_commit_interval
        {
            return Ok(());
        }
        self.last_auto_commit = Instant::now();
        match self.commit() {
            Ok(()) => Ok(()),
            Err(Error::StaleMember { .. }) => {
                self.rejoin = true;
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    fn fetch(&mut self) -> Result<ConsumerRecords> {
        let n = self.assigned.len();
        let mut out = ConsumerRecords {
            parts: Vec::new(),
            len: 0,
            faults: None,
        };
        if n == 0 {
            return Ok(out);
        }
        let start = self.cursor % n;
        self.cursor = (start + 1) % n;
        let mut budget = self.config.max_poll_records;
        let mut bytes = 0usize;
        let max_bytes = self.config.max_partition_fetch_bytes;
        let Consumer {
            assigned,
            config,
            log,
            faults,
            ..
        } = self;
        let mut order: Vec<(&TopicPartition, &mut Assigned)> = assigned.iter_mut().collect();
        order.rotate_left(start);
        for (tp, a) in order {
            if budget == 0 {
                break;
            }
            if a.paused {
                continue;
            }
            let pos = resolve(log, config, tp, a)?;
            let fetched = match fetch_partition(tp, a, pos, budget, max_bytes, faults) {
                Ok(f) => f,
                Err(e @ Error::OffsetOutOfRange { .. }) => {
                    a.position = Some(reset(config, tp, a, Some(e))?);
                    a.seeks += 1;
                    continue;
                }
                // Records already taken from other partitions are handed out; this partition
                // kept its position, so a later poll meets the error again.
                Err(_) if out.len > 0 => break,
                Err(e) => return Err(e),
            };
            if let Some(part) = fetched {
                budget -= part.len;
                out.len += part.len;
                bytes += part.bytes;
                out.parts.push(part);
            }
        }
        if out.len > 0 {
            out.faults = Some(Arc::clone(&self.faults));
            self.metrics.consumed(out.len, bytes);
        }
        Ok(out)
    }

    fn assigned_mut(&mut self, tp: &TopicPartition) -> Result<&mut Assigned> {
        self.assigned.get_mut(tp).ok_or_else(|| Error::NotAssigned {
            topic: tp.topic.clone(),
            partition: tp.partition,
        })
    }

    /// Sets the next offset to read for an assigned partition.
    ///
    /// # Errors
    /// [`Error::NotAssigned`].
    ///
    /// ```
    /// use std::time::Duration;
    /// use topiclog::{ConsumerConfig, Log, Record, TopicPartition};
    /// let dir = tempfile::tempdir().expect("a temporary directory");
    /// let log = Log::open(dir.path())?;
    /// log.create_topic("events", 1)?;
    /// log.append("events", 0, &[Record::new("a"), Record::new("b"), Record::new("c")])?;
    /// let tp = TopicPartition::new("events", 0);
    /// let mut consumer = log.consumer(ConsumerConfig::default())?;
    /// consumer.assign(&[tp.clone()])?;
    /// consumer.seek(&tp, 2)?;
    /// assert_eq!(consumer.poll(Duration::from_millis(100))?.iter().next().map(|r| r.offset()), Some(2));
    /// # Ok::<_, topiclog::Error>(())
    /// ```
    pub fn seek(&mut self, tp: &TopicPartition, offset: i64) -> Result<()> {
        let a = self.assigned_mut(tp)?;
        a.position = Some(offset);
        a.seeks += 1;
        Ok(())
    }

    /// Seeks to the log start offset of each partition.
    ///
    /// # Errors
    /// [`Error::NotAssigned`].
    pub fn seek_to_beginning(&mut self, partitions: &[TopicPartition]) -> Result<()> {
        for tp in partitions {
            let start = self.assigned_mut(tp)?.handle.log_start_offset();
            self.seek(tp, start)?;
        }
        Ok(())
    }

    /// Seeks to the end (high watermark) of each partition.
    ///
    /// # Errors
    /// [`Error::NotAssigned`].
    pub fn seek_to_end(&mut self, partitions: &[TopicPartition]) -> Result<()> {
        for tp in partitions {
            let end = self.assigned_mut(tp)?.handle.readable_end();
            self.seek(tp, end)?;
        }
        Ok(())
    }

    /// The next offset `poll` will return for an assigned partition.
    ///
    /// # Errors
    /// [`Error::NotAssigned`]; [`Error::NoOffset`] under [`OffsetReset::Error`].
    pub fn position(&mut self, tp: &TopicPartition) -> Result<i64> {
        let a = self.assigned.get(tp).ok_or_else(|| Error::NotAssigned {
            topic: tp.topic.clone(),
            partition: tp.partition,
        })?;
        let p = resolve(&self.log, &self.config, tp, a)?;
        self.assigned_mut(tp)?.position = Some(p);
        Ok(p)
    }

    /// For each partition, the first offset with timestamp >= the given one.
    ///
    /// # Errors
    /// Topic and partition lookups, decode errors.
    pub fn offsets_for_times(
        &self,
        query: &[(TopicPartition, i64)],
    ) -> Result<Vec<(TopicPartition, Option<OffsetAndTimestamp>)>> {
        query
            .iter()
            .map(|(tp, ts)| {
                let h = crate::log::handle_for(&self.log, &tp.topic, tp.partition)?;
                Ok((tp.clone(), h.offset_for_timestamp(*ts)?))
            })
            .collect()
    }

    /// The group's committed offset for a partition.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] without a group id.
    pub fn committed(&self, tp: &TopicPartition) -> Result<Option<OffsetAndMetadata>> {
        let g = self.group_id()?;
        Ok(self.log.coordinator().offsets.committed(g, tp))
    }

    /// High watermark minus the committed offset (`None` without a commit).
    ///
    /// # Errors
    /// As [`Consumer::committed`], plus partition lookups.
    pub fn lag(&self, tp: &TopicPartition) -> Result<Option<i64>> {
        let Some(c) = self.committed(tp)? else {
            return Ok(None);
        };
        let h = crate::log::handle_for(&self.log, &tp.topic, tp.partition)?
            .with_isolation_level(self.config.isolation_level);
        Ok(Some((h.readable_end() - c.offset).max(0)))
    }

    /// Commits the current position of every assigned partition. With nothing to commit
    /// (no partition assigned, as between the polls of an unfinished rebalance) it returns
    /// `Ok` at once, as Kafka's `commitSync` does.
    ///
    /// # Errors
    /// [`Error::StaleMember`] when a rebalance moved on (the partitions may belong to someone
    /// else now); [`Error::InvalidConfig`] without a group id; [`Error::Closed`] once the log
    /// is closed (nothing is written); I/O errors.
    ///
    /// ```
    /// use std::time::Duration;
    /// use topiclog::{ConsumerConfig, Log, Record, TopicPartition};
    /// let dir = tempfile::tempdir().expect("a temporary directory");
    /// let log = Log::open(dir.path())?;
    /// log.create_topic("events", 1)?;
    /// log.append("events", 0, &[Record::new("a"), Record::new("b")])?;
    /// let mut config = ConsumerConfig::group("billing");
    /// config.enable_auto_commit = false;
    /// let mut consumer = log.consumer(config)?;
    /// consumer.subscribe(&["events"])?;
    /// let mut seen = 0;
    /// while seen < 2 {
    ///     seen += consumer.poll(Duration::from_millis(200))?.len();
    /// }
    /// consumer.commit()?; // the next member of "billing" starts at offset 2
    /// let tp = TopicPartition::new("events", 0);
    /// assert_eq!(consumer.committed(&tp)?.map(|o| o.offset), Some(2));
    /// consumer.close()?;
    /// # Ok::<_, topiclog::Error>(())
    /// ```
    pub fn commit(&mut self) -> Result<()> {
        let offsets: Vec<(TopicPartition, OffsetAndMetadata)> = self
            .assigned
            .iter()
            .filter_map(|(tp, a)| a.position.map(|p| (tp.clone(), OffsetAndMetadata::new(p))))
            .collect();
        self.commit_offsets(&offsets)
    }

    /// Commits explicit offsets (each the next offset to read).
    ///
    /// # Errors
    /// As [`Consumer::commit`].
    pub fn commit_offsets(
        &mut self,
        offsets: &[(TopicPartition, OffsetAndMetadata)],
    ) -> Result<()> {
        // A consumer that outlives its log writes nothing: a successor `Log` may own the
        // offsets topic's files by now.
        self.log.check_open()?;
        let g = self.group_id()?.to_string();
        // Nothing to commit, nothing to check (Kafka's `commitSync` of no offsets returns at
        // once too): a member between polls of an unfinished rebalance holds no partitions,
        // and its commit of them is not refused for the generation the round moved to.
        if offsets.is_empty() {
            return Ok(());
        }
        let (member, generation) = match (&self.member, &self.subscription) {
            (Some(m), Some(_)) => (m.member_id.clone(), m.generation),
            _ => (String::new(), -1),
        };
        self.log
            .coordinator()
            .commit(&g, &member, generation, offsets)
    }

    /// Leaves the group (after the revoke callback and auto-commit) and releases everything.
    ///
    /// # Errors
    /// The auto-commit's error.
    pub fn close(mut self) -> Result<()> {
        self.close_inner()
    }

    fn close_inner(&mut self) -> Result<()> {
        if self.closed {
            return Ok(());
        }
        self.closed = true;
        let r = if self.log.is_closed() {
            Ok(())
        } else {
            self.revoke_all()
        };
        self.leave_group();
        r
    }
}

/// The position to read next, resolving it from the committed offset or the reset policy.
fn resolve(
    log: &LogInner,
    config: &ConsumerConfig,
    tp: &TopicPartition,
    a: &Assigned,
) -> Result<i64> {
    if let Some(p) = a.position {
        return Ok(p);
    }
    if let Some(g) = &config.group_id
        && let Some(om) = log.coordinator().offsets.committed(g, tp)
    {
        return Ok(om.offset);
    }
    reset(config, tp, a, None)
}

fn reset(
    config: &ConsumerConfig,
    tp: &TopicPartition,
    a: &Assigned,
    err: Option<Error>,
) -> Result<i64> {
    match config.auto_offset_reset {
        OffsetReset::Earliest => Ok(a.handle.log_start_offset()),
        OffsetReset::Latest => Ok(a.handle.readable_end()),
        OffsetReset::Error => Err(err.unwrap_or_else(|| Error::NoOffset {
            topic: tp.topic.clone(),
            partition: tp.partition,
        })),
    }
}

/// Takes up to `budget` records of one partition from `pos`: reads the batches (spans of the
/// mapped segments, no copy), checks each batch's CRC, decompresses compressed ones, and counts
/// what the poll hands out from the batch headers, decoding only a batch that starts before
/// `pos` or that the budget cuts. Moves the partition's position past what is handed out.
fn fetch_partition(
    tp: &TopicPartition,
    a: &mut Assigned,
    pos: i64,
    budget: usize,
    max_bytes: usize,
    faults: &Faults,
) -> Result<Option<PartitionRecords>> {
    let read = a.handle.read_raw(pos, max_bytes)?;
    // A `read_committed` handle's read stops at the last stable offset and lists the
    // aborted transactions in range (none for `read_uncommitted`).
    let limit = match a.handle.isolation_level() {
        IsolationLevel::ReadCommitted => read.last_stable_offset,
        IsolationLevel::ReadUncommitted => read.high_watermark,
    };
    let aborted = &read.aborted_transactions[..];
    let mut sections = Vec::new();
    let mut next = pos;
    let mut taken = 0usize;
    let mut bytes = 0usize;
    let mut prev_end = i64::MIN;
    for span in read.contiguous() {
        // The run of whole uncompressed batches being gathered.
        let mut run: Option<Run> = None;
        let mut at = 0usize;
        while taken < budget {
            let Some(head) = span.get(at..).and_then(<[u8]>::first_chunk) else {
                break;
            };
            let h = BatchHeader::read(head);
            h.validate()?;
            // The read may run past the readable end, and end inside a batch.
            if h.base_offset >= limit {
                break;
            }
            let end = at + h.size();
            let Some(batch) = span.get(at..end) else {
                break;
            };
            if h.base_offset < prev_end {
                return Err(Error::invalid_batch(format!(
                    "the batch at offset {} does not follow offset {}",
                    h.base_offset,
                    prev_end - 1
                )));
            }
            let last = h.last_offset();
            prev_end = last + 1;
            // Only a batch that starts before the position can be one the last poll cut.
            let memo = if h.base_offset < pos {
                a.checked
                    .take()
                    .filter(|m| m.base_offset == h.base_offset && m.crc == h.crc)
            } else {
                None
            };
            let decompressed = match memo {
                Some(m) => m.decompressed,
                None => check(&h, batch)?,
            };
            // Stepped over: the iteration skips these on the same test (`next_batch`).
            if h.is_control() || h.record_count <= 0 || last < pos {
                next = next.max(last + 1);
                at = end;
                continue;
            }
            // An aborted transaction's batch: the run ends before it, and the next begins
            // after it.
            if crate::partition::read::aborted(aborted, &h) {
                if let Some(r) = run.take() {
                    bytes += r.end - r.start;
                    sections.push(r.section(span, pos));
                }
                next = next.max(last + 1);
                at = end;
                continue;
            }
            let section: &[u8] = decompressed.as_deref().unwrap_or(records_section(batch));
            let left = budget - taken;
            let first = h.base_offset.max(pos);
            let (take, resume) = if h.is_dense() {
                // Offsets run base..=last with no gap: count without decoding.
                let avail = usize::try_from(last - first + 1).unwrap_or(0);
                let take = avail.min(left);
                (take, first + take as i64)
            } else if h.base_offset >= pos && h.record_count as usize <= left {
                (h.record_count as usize, last + 1)
            } else {
                count_from(&h, section, pos, left)
                    .map_err(|(offset, e)| undecodable(tp, offset, &e))?
            };
            next = next.max(resume);
            taken += take;
            if resume <= last {
                // Cut: the next poll starts in this batch.
                a.checked = Some(Checked {
                    base_offset: h.base_offset,
                    crc: h.crc,
                    decompressed: decompressed.clone(),
                });
            }
            // A dense batch that starts before the position is stepped into by record lengths
            // alone, or resumed where the last poll's iteration stopped in it.
            let cursor = if h.is_dense() && h.base_offset < pos {
                let cut = faults.take_cut(tp, a.seeks, h.base_offset, h.crc, pos);
                Some(if let Some(at) = cut {
                    at
                } else {
                    let mut cursor = RecordCursor::new(&h)?;
                    let skip = usize::try_from(pos - h.base_offset).unwrap_or(0);
                    cursor
                        .skip(section, skip)
                        .map_err(|e| undecodable(tp, h.base_offset, &e))?;
                    cursor
                })
            } else {
                None
            };
            if let Some(records) = decompressed {
                if let Some(r) = run.take() {
                    bytes += r.end - r.start;
                    sections.push(r.section(span, pos));
                }
                bytes += batch.len();
                let cursor = match cursor {
                    Some(c) => c,
                    None => RecordCursor::new(&h)?,
                };
                sections.push(Section {
                    data: records,
                    layout: Layout::Records {
                        base_offset: h.base_offset,
                        crc: h.crc,
                        cursor,
                    },
                    from: pos,
                    take,
                });
            } else {
                let r = run.get_or_insert(Run {
                    start: at,
                    end,
                    first: cursor,
                    take: 0,
                });
                r.end = end;
                r.take += take;
            }
            at = end;
        }
        if let Some(r) = run {
            bytes += r.end - r.start;
            sections.push(r.section(span, pos));
        }
        if taken >= budget {
            break;
        }
    }
    a.position = Some(next);
    if taken == 0 {
        return Ok(None);
    }
    Ok(Some(PartitionRecords {
        tp: tp.clone(),
        topic: Arc::clone(&a.topic),
        sections,
        len: taken,
        bytes,
        seeks: a.seeks,
        next_offset: next,
    }))
}

/// Adjacent whole uncompressed batches of one span that a fetch hands out records of: where
/// they start and end in the span, the cursor of the first when it starts before the
/// position, and how many records they hand out.
struct Run {
    start: usize,
    end: usize,
    first: Option<RecordCursor>,
    take: usize,
}

impl Run {
    fn section(self, span: &Bytes, from: i64) -> Section {
        Section {
            data: span.slice(self.start..self.end),
            layout: Layout::Batches { first: self.first },
            from,
            take: self.take,
        }
    }
}

/// The batch a partition's last poll cut (checked, and decompressed when compressed): the
/// next poll starts in it and does not check or decompress it twice.
struct Checked {
    base_offset: i64,
    crc: u32,
    decompressed: Option<Bytes>,
}

/// Checks a batch's CRC; its records decompressed when it is compressed.
#[inline]
fn check(h: &BatchHeader, batch: &[u8]) -> Result<Option<Bytes>> {
    let crc = batch_crc(batch);
    if crc != h.crc {
        return Err(Error::ChecksumMismatch {
            base_offset: h.base_offset,
            stored: h.crc,
            computed: crc,
        });
    }
    Ok(decompressed_section(h, batch)?.map(Bytes::from))
}

/// The error for a record of `tp` that does not decode, at the offset a consumer resumes at.
fn undecodable(tp: &TopicPartition, offset: i64, error: &Error) -> Error {
    Error::invalid_batch(format!(
        "{}-{} at offset {offset}: {error}; seek past it to go on",
        tp.topic, tp.partition
    ))
}

/// How many of a batch's records at or after `from` fit in `left`, and the offset after the
/// last one taken (the batch's end when all fit). A record that does not decode fails it with
/// the offset after the last record that did (at least `from`).
fn count_from(
    h: &BatchHeader,
    section: &[u8],
    from: i64,
    left: usize,
) -> std::result::Result<(usize, i64), (i64, Error)> {
    let mut cursor = RecordCursor::new(h).map_err(|e| (from, e))?;
    let mut taken = 0usize;
    let mut resume = from;
    while let Some(r) = cursor.next(section) {
        let r = r.map_err(|e| (resume, e))?;
        resume = resume.max(r.offset + 1);
        if r.offset < from {
            continue;
        }
        if taken == left {
            return Ok((taken, r.offset));
        }
        taken += 1;
    }
    Ok((taken, h.last_offset() + 1))
}

impl Drop for Consumer {
    fn drop(&mut self) {
        let _ = self.close_inner();
    }
}

impl crate::log::Log {
    /// A consumer. See [`ConsumerConfig`].
    ///
    /// # Errors
    /// [`Error::InvalidConfig`].
    ///
    /// ```
    /// use std::time::Duration;
    /// use topiclog::{ConsumerConfig, Log, Record, TopicPartition};
    /// let dir = tempfile::tempdir().expect("a temporary directory");
    /// let log = Log::open(dir.path())?;
    /// log.create_topic("events", 1)?;
    /// log.append("events", 0, &[Record::new("a")])?;
    /// // Without a group: assign partitions by hand and keep positions yourself.
    /// let mut consumer = log.consumer(ConsumerConfig::default())?;
    /// consumer.assign(&[TopicPartition::new("events", 0)])?;
    /// assert_eq!(consumer.poll(Duration::from_millis(100))?.len(), 1);
    /// # Ok::<_, topiclog::Error>(())
    /// ```
    pub fn consumer(&self, config: ConsumerConfig) -> Result<Consumer> {
        Consumer::new(Arc::clone(&self.inner), config)
    }
}
