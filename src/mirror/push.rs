//! Push: local topics → a cluster, each batch of records in one Kafka transaction with the
//! offset syncs that say how far it got.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use rdkafka::ClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header as KafkaHeader, Message, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};

use super::cluster::{self, Cluster, Ctx};
use super::schema::{Checkpoint, OffsetSync, OffsetSyncs};
use super::{
    Backoff, Emitted, ExactlyOnce, MirrorConfig, MirrorError, MirrorReport, ReplicationPolicy,
    Ticker, count_round,
};
use crate::{Consumer, ConsumerConfig, IsolationLevel, Log, PartitionHandle, TopicPartition};

/// Topic settings a created target topic takes from its source (MirrorMaker 2 syncs topic
/// configs too; these are the ones that change what the target keeps).
pub(super) const COPIED_CONFIGS: [&str; 4] = [
    "cleanup.policy",
    "retention.ms",
    "retention.bytes",
    "max.message.bytes",
];

// A delivery's opaque value (a `usize`) packs a slot and an offset.
#[cfg(not(target_pointer_width = "64"))]
compile_error!("topiclog::mirror needs a 64-bit target");

/// A delivery's opaque value: the slot in the high bits, the source offset in the low ones.
const OFFSET_BITS: u32 = 44;
const OFFSET_MASK: usize = (1 << OFFSET_BITS) - 1;
/// The opaque value of the mirror's own records (offset syncs, checkpoints).
const INTERNAL: usize = usize::MAX;

/// The producer's context: deliveries of the current round, per slot the first and the last
/// source offset delivered and where each landed.
struct PushCtx {
    base: Ctx,
    delivered: Mutex<Vec<Option<[Landed; 2]>>>,
    failed: Mutex<Option<String>>,
}

impl ClientContext for PushCtx {
    fn error(&self, error: KafkaError, reason: &str) {
        self.base.error(error, reason);
    }
}

impl ProducerContext for PushCtx {
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, opaque: usize) {
        match result {
            Ok(m) if opaque != INTERNAL => {
                let slot = opaque >> OFFSET_BITS;
                let upstream = (opaque & OFFSET_MASK) as i64;
                if let Some(e) = self.delivered.lock().get_mut(slot) {
                    let at = (upstream, m.offset());
                    match e {
                        None => *e = Some([at, at]),
                        Some([first, last]) => {
                            if upstream < first.0 {
                                *first = at;
                            }
                            if upstream > last.0 {
                                *last = at;
                            }
                        }
                    }
                }
            }
            Ok(_) => {}
            Err((e, _)) => {
                self.failed.lock().get_or_insert_with(|| e.to_string());
            }
        }
    }
}

/// A record's source offset and where it landed on the target.
type Landed = (i64, i64);

/// One source partition.
struct Slot {
    tp: TopicPartition,
    handle: PartitionHandle,
    target: String,
    /// `Some(p)` when both sides have as many partitions; else murmur2 of the key.
    target_partition: Option<i32>,
    /// The consumer's position after the last committed round.
    position: i64,
    /// The end to reach with `until_end`.
    end: i64,
}

fn producer(
    cfg: &MirrorConfig,
    transactional_id: Option<&str>,
    slots: usize,
    max_message: u64,
) -> Result<BaseProducer<PushCtx>, MirrorError> {
    let mut c = cluster::base_config(cfg);
    // Java's partitioner for records the mirror does not place itself: murmur2 of the key.
    c.set("enable.idempotence", "true")
        .set("partitioner", "murmur2_random")
        .set(
            "message.max.bytes",
            max_message.min(1_000_000_000).to_string(),
        );
    if let Some(id) = transactional_id {
        // Longer than a round can take (its records, a flush and a commit, each waiting at
        // most `timeout`), so the coordinator never times out a transaction the mirror is
        // still finishing.
        let round = cfg.transaction_interval + cfg.timeout * 3 + Duration::from_secs(10);
        let ms = round.as_millis().clamp(60_000, i32::MAX as u128);
        c.set("transactional.id", id)
            .set("transaction.timeout.ms", ms.to_string());
    }
    for (k, v) in &cfg.producer_properties {
        c.set(k, v);
    }
    c.create_with_context(PushCtx {
        base: Ctx::default(),
        delivered: Mutex::new(vec![None; slots]),
        failed: Mutex::new(None),
    })
    .map_err(cluster::creation_error)
}

/// Mirrors the log's topics that `config` selects into the cluster, until the source's end
/// (`until_end`), a stop, or an error.
///
/// Resumes from the offset syncs on the cluster. With transactions (the default where the
/// cluster has them) every record reaches the cluster exactly once across crashes and
/// restarts; without, at least once. `log` may be a read-only view of a directory another
/// process owns (`LogOptions::read_only`): the push writes nothing locally. Group offsets are
/// those the log saw when it opened, for a read-only view.
///
/// # Errors
/// [`MirrorError`]: the cluster unreachable, no topic matching, settings this build cannot
/// do, a second mirror with the same transactional id, rounds that keep failing.
pub fn push(log: &Log, cfg: &MirrorConfig) -> Result<MirrorReport, MirrorError> {
    let policy = cfg.policy()?;
    let cluster = Cluster::connect(cfg)?;
    let mut report = MirrorReport::default();
    let sources: Vec<String> = log
        .topics()
        .into_iter()
        .filter(|t| policy.mirrors_topic(t))
        .collect();
    if sources.is_empty() {
        return Err(MirrorError::TopicNotFound(format!(
            "no local topic matches {:?}",
            cfg.topics
        )));
    }
    let existing = cluster.topics()?;
    let mut partitions = 0usize;
    for topic in &sources {
        partitions += log.partition_count(topic)? as usize;
    }
    let max_slots = (1usize << (usize::BITS - OFFSET_BITS)) - 1;
    if partitions > max_slots {
        return Err(MirrorError::InvalidConfig(format!(
            "{partitions} partitions to mirror: at most {max_slots} at once"
        )));
    }
    // The producer sends records as large as the largest the sources accept.
    let mut max_message = 1_000_000u64;
    for topic in &sources {
        max_message =
            max_message.max(u64::from(log.describe_topic(topic)?.config.max_message_bytes) + 1024);
    }
    // Transactions where the cluster has them; the fence of a previous incarnation (and the
    // abort of its open transaction) comes before the offset syncs are read. The producer
    // starts first: an idempotent one gets its producer id while the topics are set up.
    let id = cfg.transactional_id.clone().unwrap_or_else(|| {
        format!(
            "topiclog-mirror-push-{}-{}",
            policy.alias(),
            log.directory_id().unwrap_or("log")
        )
    });
    let (producer, eos) = match cfg.exactly_once {
        ExactlyOnce::Disabled => (producer(cfg, None, partitions, max_message)?, false),
        mode => {
            let p = producer(cfg, Some(&id), partitions, max_message)?;
            match p.init_transactions(cfg.timeout) {
                Ok(()) => (p, true),
                // No answer, or credentials refused: an error, not a reason to give up
                // exactly-once.
                Err(e) if is_auth(&e) || is_contact(&e) => {
                    return Err(cluster::contact_error(cfg, &e, &p.context().base));
                }
                Err(e) if mode == ExactlyOnce::Auto => {
                    report.warnings.push(format!(
                        "the cluster does not support transactions ({e}): mirroring at least \
                         once with an idempotent producer"
                    ));
                    drop(p);
                    (producer(cfg, None, partitions, max_message)?, false)
                }
                Err(e) => {
                    return Err(MirrorError::Unsupported(format!(
                        "transactions, which exactly-once requires: {e}"
                    )));
                }
            }
        }
    };
    report.exactly_once = eos;

    let mut slots = Vec::new();
    for topic in &sources {
        let count = log.partition_count(topic)?;
        let target = policy.target_topic(topic);
        let same = match existing.get(&target) {
            None => {
                let props = log.describe_topic(topic)?.config.to_properties();
                let configs: Vec<(String, String)> = COPIED_CONFIGS
                    .iter()
                    .filter_map(|k| props.get(k).map(|v| ((*k).to_owned(), v.clone())))
                    .collect();
                cluster.create_topic(&target, count, &configs)?;
                report.created_topics.push(target.clone());
                true
            }
            Some(n) if *n == count => true,
            Some(n) => {
                report.warnings.push(format!(
                    "{target} has {n} partitions and {topic} has {count}: records go to the \
                     partition of their key's murmur2, and group offsets of {topic} are not \
                     checkpointed"
                ));
                false
            }
        };
        if existing.contains_key(&target)
            && cluster
                .topic_config(&target)?
                .get("message.timestamp.type")
                .is_some_and(|t| t == "LogAppendTime")
        {
            report.warnings.push(format!(
                "{target} uses LogAppendTime: the cluster replaces the records' timestamps"
            ));
        }
        report.topics.push((topic.clone(), target.clone()));
        for p in 0..count {
            slots.push(Slot {
                tp: TopicPartition::new(topic.clone(), p),
                handle: log.partition(topic, p)?,
                target: target.clone(),
                target_partition: same.then_some(p),
                position: 0,
                end: 0,
            });
        }
    }
    let syncs_topic = policy.offset_syncs_topic();
    let checkpoints_topic = policy.checkpoints_topic();
    for internal in [&syncs_topic, &checkpoints_topic] {
        if !existing.contains_key(internal) {
            cluster.create_topic(internal, 1, &[("cleanup.policy".into(), "compact".into())])?;
        }
    }

    let mut syncs = OffsetSyncs::default();
    let syncs_partitions = cluster.topics()?.get(&syncs_topic).copied().unwrap_or(1);
    for f in cluster.read_topic(&syncs_topic, syncs_partitions)? {
        if let (Some(k), Some(v)) = (f.key, f.value)
            && let Ok(s) = OffsetSync::decode(&k, &v)
        {
            syncs.add(&s);
        }
    }

    let mut consumer = log.consumer(ConsumerConfig {
        group_id: None,
        isolation_level: IsolationLevel::ReadCommitted,
        max_poll_records: cfg.transaction_records.min(10_000),
        ..ConsumerConfig::default()
    })?;
    let tps: Vec<TopicPartition> = slots.iter().map(|s| s.tp.clone()).collect();
    consumer.assign(&tps)?;
    let mut index = HashMap::new();
    for (i, s) in slots.iter_mut().enumerate() {
        let start = s.handle.log_start_offset();
        let at = syncs
            .resume_at(&s.tp.topic, s.tp.partition)
            .unwrap_or(start);
        if at < start {
            report.skipped_by_retention += (start - at) as u64;
        }
        s.position = at.max(start);
        s.end = s.handle.last_stable_offset();
        consumer.seek(&s.tp, s.position)?;
        index.insert(s.tp.clone(), i);
    }

    let mut run = Push {
        id,
        cfg,
        policy: &policy,
        cluster: &cluster,
        log,
        producer,
        eos,
        consumer,
        slots,
        index,
        syncs,
        syncs_topic,
        checkpoints_topic,
        emitted: HashMap::new(),
        report,
    };
    run.run()?;
    Ok(run.report)
}

/// The cluster did not answer in time or the connection failed.
fn is_contact(e: &KafkaError) -> bool {
    matches!(
        e.rdkafka_error_code(),
        Some(
            RDKafkaErrorCode::OperationTimedOut
                | RDKafkaErrorCode::RequestTimedOut
                | RDKafkaErrorCode::AllBrokersDown
                | RDKafkaErrorCode::BrokerTransportFailure
                | RDKafkaErrorCode::Resolve
        )
    )
}

fn is_auth(e: &KafkaError) -> bool {
    matches!(
        e.rdkafka_error_code(),
        Some(
            RDKafkaErrorCode::TransactionalIdAuthorizationFailed
                | RDKafkaErrorCode::ClusterAuthorizationFailed
                | RDKafkaErrorCode::SaslAuthenticationFailed
        )
    )
}

/// Why a round failed.
enum RoundError {
    /// Retried from the last committed position after a backoff.
    Retry(String),
    /// Ends the mirror.
    Fatal(MirrorError),
}

impl From<crate::Error> for RoundError {
    fn from(e: crate::Error) -> Self {
        RoundError::Fatal(e.into())
    }
}

struct Push<'a> {
    /// The transactional id (used or not).
    id: String,
    cfg: &'a MirrorConfig,
    policy: &'a ReplicationPolicy,
    cluster: &'a Cluster,
    log: &'a Log,
    producer: BaseProducer<PushCtx>,
    eos: bool,
    consumer: Consumer,
    slots: Vec<Slot>,
    index: HashMap<TopicPartition, usize>,
    syncs: OffsetSyncs,
    syncs_topic: String,
    checkpoints_topic: String,
    emitted: Emitted,
    report: MirrorReport,
}

impl Push<'_> {
    fn run(&mut self) -> Result<(), MirrorError> {
        let mut backoff = Backoff::new();
        let mut last_checkpoint = Instant::now();
        let mut ticker = Ticker::new();
        loop {
            let done = self.cfg.until_end && self.slots.iter().all(|s| s.position >= s.end);
            let stopping = self.cfg.stopping();
            let checkpoint_due =
                done || stopping || last_checkpoint.elapsed() >= self.cfg.checkpoint_interval;
            match self.round(checkpoint_due, done || stopping) {
                Ok(()) => {
                    backoff.succeeded();
                    if checkpoint_due {
                        last_checkpoint = Instant::now();
                    }
                }
                Err(RoundError::Fatal(e)) => {
                    if self.eos {
                        self.abort();
                    }
                    return Err(e);
                }
                Err(RoundError::Retry(why)) => {
                    self.report.retried_rounds += 1;
                    if self.eos {
                        self.abort();
                    } else {
                        let _ = self.producer.flush(self.cfg.timeout);
                    }
                    self.producer.context().failed.lock().take();
                    self.producer.context().delivered.lock().fill(None);
                    for s in &self.slots {
                        self.consumer.seek(&s.tp, s.position)?;
                    }
                    backoff.failed(self.cfg.retries, why)?;
                    continue;
                }
            }
            ticker.tick(self.cfg, self.report.records, || {
                self.slots
                    .iter()
                    .map(|s| {
                        let lag = (s.handle.last_stable_offset() - s.position).max(0);
                        (s.tp.clone(), lag)
                    })
                    .collect()
            });
            if done || stopping {
                return Ok(());
            }
        }
    }

    /// Reads up to a transaction's worth of records, sends them, then their offset syncs
    /// (and due checkpoints), and commits.
    fn round(&mut self, checkpoint_due: bool, finishing: bool) -> Result<(), RoundError> {
        let started = Instant::now();
        let mut sent = 0usize;
        let mut in_txn = false;
        loop {
            let wait = if sent == 0 && !finishing {
                Duration::from_millis(100)
            } else {
                Duration::ZERO
            };
            let records = self.consumer.poll(wait)?;
            if records.is_empty() {
                break;
            }
            if self.eos && !in_txn {
                self.begin()?;
                in_txn = true;
            }
            for tp in records.partitions() {
                let Some(&slot) = self.index.get(&tp) else {
                    continue;
                };
                let Some(s) = self.slots.get(slot) else {
                    continue;
                };
                for r in records.records(&tp) {
                    let opaque = (slot << OFFSET_BITS) | (r.offset() as usize & OFFSET_MASK);
                    let mut rec: BaseRecord<'_, [u8], [u8], usize> =
                        BaseRecord::with_opaque_to(&s.target, opaque);
                    if r.timestamp() >= 0 {
                        rec = rec.timestamp(r.timestamp());
                    }
                    if let Some(k) = r.key() {
                        rec = rec.key(k);
                    }
                    if let Some(v) = r.value() {
                        rec = rec.payload(v);
                    }
                    if let Some(p) = s.target_partition {
                        rec = rec.partition(p);
                    }
                    if r.header_count() > 0 {
                        let mut h = OwnedHeaders::new_with_capacity(r.header_count());
                        for (key, value) in r.headers() {
                            h = h.insert(KafkaHeader { key, value });
                        }
                        rec = rec.headers(h);
                    }
                    send(&self.producer, rec)
                        .map_err(|e| self.send_failed(e, &s.tp, r.offset()))?;
                    sent += 1;
                    if sent.is_multiple_of(1024) {
                        self.producer.poll(Duration::ZERO);
                    }
                }
            }
            if sent + self.cfg.transaction_records.min(10_000) > self.cfg.transaction_records
                || started.elapsed() >= self.cfg.transaction_interval
                || self.cfg.stopping()
            {
                break;
            }
        }
        let checkpoints = if checkpoint_due {
            self.checkpoints()
        } else {
            Vec::new()
        };
        if sent == 0 && checkpoints.is_empty() {
            // Nothing read, but the consumer may have stepped over markers and aborted
            // records: its position is where a later round starts either way.
            for s in &mut self.slots {
                s.position = self.consumer.position(&s.tp)?;
            }
            return Ok(());
        }
        if self.eos && !in_txn {
            self.begin()?;
        }
        self.producer
            .flush(self.cfg.timeout)
            .map_err(|e| RoundError::Retry(format!("flush: {e}")))?;
        if let Some(f) = self.producer.context().failed.lock().take() {
            return Err(RoundError::Retry(format!("delivery: {f}")));
        }
        // One sync per partition and transaction, for its last record; and, as MirrorMaker 2
        // does, one for the first record a partition ever sends, so that a group that has
        // read nothing past it translates too.
        let mut delivered: Vec<(usize, i64, i64)> = Vec::new();
        for (i, d) in self
            .producer
            .context()
            .delivered
            .lock()
            .iter_mut()
            .enumerate()
        {
            if let Some([first, last]) = d.take()
                && let Some(s) = self.slots.get(i)
            {
                if first != last && self.syncs.last(&s.tp.topic, s.tp.partition).is_none() {
                    delivered.push((i, first.0, first.1));
                }
                delivered.push((i, last.0, last.1));
            }
        }
        let mut new_syncs = Vec::with_capacity(delivered.len());
        for (slot, upstream, downstream) in delivered {
            let Some(s) = self.slots.get(slot) else {
                continue;
            };
            let sync = OffsetSync {
                topic: s.tp.topic.clone(),
                partition: s.tp.partition,
                upstream,
                downstream,
            };
            let (k, v) = (sync.key(), sync.value());
            send(
                &self.producer,
                BaseRecord::with_opaque_to(&self.syncs_topic, INTERNAL)
                    .partition(0)
                    .key(&k[..])
                    .payload(&v[..]),
            )
            .map_err(|e| self.classify(e, "offset sync"))?;
            new_syncs.push(sync);
        }
        for c in &checkpoints {
            let (k, v) = (c.key(), c.value());
            send(
                &self.producer,
                BaseRecord::with_opaque_to(&self.checkpoints_topic, INTERNAL)
                    .partition(0)
                    .key(&k[..])
                    .payload(&v[..]),
            )
            .map_err(|e| self.classify(e, "checkpoint"))?;
        }
        if self.eos {
            self.commit()?;
        } else {
            self.producer
                .flush(self.cfg.timeout)
                .map_err(|e| RoundError::Retry(format!("flush: {e}")))?;
            if let Some(f) = self.producer.context().failed.lock().take() {
                return Err(RoundError::Retry(format!("delivery: {f}")));
            }
        }
        // Committed.
        for s in &new_syncs {
            self.syncs.add(s);
        }
        for s in &mut self.slots {
            s.position = self.consumer.position(&s.tp)?;
        }
        count_round(&mut self.report, &mut self.emitted, sent, &checkpoints);
        if self.cfg.sync_group_offsets && !checkpoints.is_empty() {
            self.sync_group_offsets(&checkpoints);
        }
        Ok(())
    }

    /// Aborts the open transaction, serving the deliveries librdkafka reports first. One
    /// that fails leaves the transaction to the coordinator's timeout (the next
    /// `init_transactions` of this id aborts it at once).
    fn abort(&self) {
        let _ = self.producer.flush(self.cfg.timeout);
        for _ in 0..3 {
            match self.producer.abort_transaction(self.cfg.timeout) {
                Err(KafkaError::Transaction(t)) if t.is_retriable() => {
                    self.producer.poll(Duration::from_millis(100));
                }
                _ => return,
            }
        }
    }

    /// Commits; a commit that timed out is still in progress in librdkafka and is called
    /// again (its outcome is known only then), a few times.
    fn commit(&self) -> Result<(), RoundError> {
        let mut attempts = 0;
        loop {
            match self.producer.commit_transaction(self.cfg.timeout) {
                Ok(()) => return Ok(()),
                Err(KafkaError::Transaction(t))
                    if t.is_retriable()
                        && !t.txn_requires_abort()
                        && !t.is_fatal()
                        && attempts < 5 =>
                {
                    attempts += 1;
                    self.producer.poll(Duration::from_millis(100));
                }
                Err(e) => return Err(self.classify(e, "commit")),
            }
        }
    }

    /// A record the producer refused: fatal when no retry can help.
    fn send_failed(&self, e: KafkaError, tp: &TopicPartition, offset: i64) -> RoundError {
        if e.rdkafka_error_code() == Some(RDKafkaErrorCode::MessageSizeTooLarge) {
            return RoundError::Fatal(MirrorError::InvalidConfig(format!(
                "record {offset} of {tp} is larger than the producer's message.max.bytes \
                 ({e}); set it with a producer property"
            )));
        }
        self.classify(e, "send")
    }

    fn begin(&self) -> Result<(), RoundError> {
        self.producer
            .begin_transaction()
            .map_err(|e| self.classify(e, "begin transaction"))
    }

    fn classify(&self, e: KafkaError, what: &str) -> RoundError {
        let code = e.rdkafka_error_code();
        if matches!(
            code,
            Some(
                RDKafkaErrorCode::Fenced
                    | RDKafkaErrorCode::ProducerFenced
                    | RDKafkaErrorCode::InvalidProducerEpoch
            )
        ) {
            return RoundError::Fatal(MirrorError::Fenced(self.id.clone()));
        }
        let fatal = match &e {
            KafkaError::Transaction(t) => t.is_fatal(),
            // A producer in a fatal state refuses sends with the code of its fatal error.
            _ => code == Some(RDKafkaErrorCode::Fatal),
        };
        if fatal {
            return RoundError::Fatal(MirrorError::Kafka(e));
        }
        RoundError::Retry(format!("{what}: {e}"))
    }

    /// Checkpoints of the local groups' committed offsets that changed since the last ones.
    fn checkpoints(&self) -> Vec<Checkpoint> {
        let mut out = Vec::new();
        for group in self.log.list_groups() {
            if !self.policy.mirrors_group(&group) {
                continue;
            }
            for (tp, committed) in self.log.committed_offsets(&group, None) {
                let Some(committed) = committed else { continue };
                let Some(&slot) = self.index.get(&tp) else {
                    continue;
                };
                let Some(s) = self.slots.get(slot) else {
                    continue;
                };
                let Some(partition) = s.target_partition else {
                    continue;
                };
                let Some(downstream) =
                    self.syncs
                        .translate(&tp.topic, tp.partition, committed.offset)
                else {
                    continue;
                };
                let key = (group.clone(), s.target.clone(), partition);
                if self.emitted.get(&key) == Some(&(committed.offset, downstream)) {
                    continue;
                }
                out.push(Checkpoint {
                    group: group.clone(),
                    topic: s.target.clone(),
                    partition,
                    upstream: committed.offset,
                    downstream,
                    metadata: committed.metadata.clone(),
                });
            }
        }
        out
    }

    /// Commits checkpoints to the cluster's groups that have no active member, forward only.
    /// A failure is a warning: the checkpoints are written; the next interval tries again.
    fn sync_group_offsets(&mut self, checkpoints: &[Checkpoint]) {
        let mut by_group: HashMap<&str, Vec<&Checkpoint>> = HashMap::new();
        for c in checkpoints {
            by_group.entry(&c.group).or_default().push(c);
        }
        for (group, cps) in by_group {
            let result = (|| -> Result<u64, MirrorError> {
                if self.cluster.group_members(group)? > 0 {
                    return Ok(0);
                }
                let tps: Vec<(String, i32)> =
                    cps.iter().map(|c| (c.topic.clone(), c.partition)).collect();
                let current = self.cluster.committed(group, &tps)?;
                let forward: Vec<((String, i32), i64, String)> = cps
                    .iter()
                    .filter(|c| {
                        current
                            .get(&(c.topic.clone(), c.partition))
                            .is_none_or(|(o, _)| c.downstream > *o)
                    })
                    .map(|c| {
                        (
                            (c.topic.clone(), c.partition),
                            c.downstream,
                            c.metadata.clone(),
                        )
                    })
                    .collect();
                if !forward.is_empty() {
                    self.cluster.commit(group, &forward)?;
                }
                Ok(forward.len() as u64)
            })();
            match result {
                Ok(n) => self.report.group_offsets_synced += n,
                Err(e) => self
                    .report
                    .warnings
                    .push(format!("group {group}: offsets not synced: {e}")),
            }
        }
    }
}

/// Sends one record, serving deliveries while the producer's queue is full.
fn send(
    producer: &BaseProducer<PushCtx>,
    mut rec: BaseRecord<'_, [u8], [u8], usize>,
) -> Result<(), KafkaError> {
    loop {
        match producer.send(rec) {
            Ok(()) => return Ok(()),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                rec = back;
                producer.poll(Duration::from_millis(1));
            }
            Err((e, _)) => return Err(e),
        }
    }
}
