//! Pull: cluster topics → the local log, each batch of records appended in one topiclog
//! transaction with the offset syncs that say how far it got.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{Headers, Message};
use rdkafka::{Offset, TopicPartitionList};

use super::cluster::{Cluster, Ctx};
use super::push::COPIED_CONFIGS;
use super::schema::{Checkpoint, OffsetSync, OffsetSyncs};
use super::{
    Backoff, Emitted, MirrorConfig, MirrorError, MirrorReport, ReplicationPolicy, Ticker,
    count_round,
};
use crate::{
    ConsumerConfig, Error, Header, IsolationLevel, Log, OffsetAndMetadata, Producer,
    ProducerConfig, ProducerRecord, Receipt, Record, TimestampType, TopicPartition,
};

/// One source partition on the cluster.
struct Slot {
    topic: String,
    partition: i32,
    consumer: usize,
    target: String,
    target_partition: Option<i32>,
    /// The next source offset after the last committed round (`None`: from the beginning).
    committed: Option<i64>,
    /// Reached the end: an end-of-partition event, or the high watermark the partition had
    /// when the pull started (for `until_end`; sticky).
    eof: bool,
    /// The high watermark when the pull started.
    end_at_start: i64,
    /// The last record of the current round (after `first`): its source offset and its
    /// local receipt.
    pending: Option<(i64, Receipt)>,
    /// The first record the partition ever copies, while it has no sync: it gets one too (as
    /// in MirrorMaker 2), so that a group that read little of it translates.
    first: Option<(i64, Receipt)>,
}

/// Mirrors the cluster's topics that `config` selects into the log, until the cluster's end
/// (`until_end`), a stop, or an error.
///
/// Records and offset syncs (in the local `mm2-offset-syncs.<alias>.internal`) are appended
/// in one topiclog transaction per round, so a restarted pull resumes after the last
/// committed record: every record lands once. The cluster is read `read_committed`.
///
/// # Errors
/// [`MirrorError`]: the cluster unreachable, no topic matching, settings this build cannot
/// do, rounds that keep failing, the local log failing.
pub fn pull(log: &Log, cfg: &MirrorConfig) -> Result<MirrorReport, MirrorError> {
    let policy = cfg.policy()?;
    let cluster = Cluster::connect(cfg)?;
    let mut report = MirrorReport {
        exactly_once: true,
        ..MirrorReport::default()
    };
    let remote = cluster.topics()?;
    let sources: Vec<(String, i32)> = remote
        .iter()
        .filter(|(t, _)| policy.mirrors_topic(t))
        .map(|(t, n)| (t.clone(), *n))
        .collect();
    if sources.is_empty() {
        return Err(MirrorError::TopicNotFound(format!(
            "no topic on the cluster at {} matches {:?}",
            cfg.bootstrap_servers, cfg.topics
        )));
    }
    let local: std::collections::BTreeSet<String> = log.all_topics().into_iter().collect();
    let mut slots = Vec::new();
    let mut consumers = Vec::new();
    for (topic, count) in &sources {
        let target = policy.target_topic(topic);
        let same = if local.contains(&target) {
            let n = log.partition_count(&target)?;
            if log.describe_topic(&target)?.config.timestamp_type == TimestampType::LogAppendTime {
                report.warnings.push(format!(
                    "{target} uses LogAppendTime: the log replaces the records' timestamps"
                ));
            }
            if n == *count {
                true
            } else {
                report.warnings.push(format!(
                    "{target} has {n} partitions and {topic} has {count}: records go to the \
                     partition of their key's murmur2, and group offsets of {topic} are not \
                     checkpointed"
                ));
                false
            }
        } else {
            let remote_config = cluster.topic_config(topic)?;
            let mut config = log.default_topic_config();
            for k in COPIED_CONFIGS {
                if let Some(v) = remote_config.get(k)
                    && let Err(e) = config.set(k, v)
                {
                    report
                        .warnings
                        .push(format!("{target}: {k}={v} from the cluster not kept: {e}"));
                }
            }
            log.create_topic_with(&target, *count, config)?;
            report.created_topics.push(target.clone());
            true
        };
        report.topics.push((topic.clone(), target.clone()));
        consumers.push(cluster.consumer(None)?);
        for p in 0..*count {
            slots.push(Slot {
                topic: topic.clone(),
                partition: p,
                consumer: consumers.len() - 1,
                target: target.clone(),
                target_partition: same.then_some(p),
                committed: None,
                eof: false,
                end_at_start: i64::MAX,
                pending: None,
                first: None,
            });
        }
    }
    let syncs_topic = policy.offset_syncs_topic();
    let checkpoints_topic = policy.checkpoints_topic();
    for internal in [&syncs_topic, &checkpoints_topic] {
        if !local.contains(internal.as_str()) {
            let mut config = log.default_topic_config();
            config.set("cleanup.policy", "compact")?;
            match log.create_topic_with(internal, 1, config) {
                Ok(()) | Err(Error::TopicAlreadyExists { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }

    // The transactional producer first: opening it settles a crashed pull's transaction, so
    // the syncs read next are the committed ones.
    let id = cfg
        .transactional_id
        .clone()
        .unwrap_or_else(|| format!("topiclog-mirror-pull-{}", policy.alias()));
    let producer = log.producer(ProducerConfig::transactional(id))?;
    producer.init_transactions()?;
    let syncs = read_local_syncs(log, &syncs_topic)?;

    let mut base = HashMap::new();
    for (i, s) in slots.iter_mut().enumerate() {
        s.committed = syncs.resume_at(&s.topic, s.partition);
        base.entry(s.consumer).or_insert(i);
    }
    for s in &mut slots {
        if let Some(c) = consumers.get(s.consumer) {
            let (_, high) = c
                .fetch_watermarks(&s.topic, s.partition, cfg.timeout)
                .map_err(|e| super::cluster::contact_error(cfg, &e, c.context()))?;
            s.end_at_start = high;
        }
    }
    for (c, consumer) in consumers.iter().enumerate() {
        let mut tpl = TopicPartitionList::new();
        for s in slots.iter().filter(|s| s.consumer == c) {
            let at = s.committed.map_or(Offset::Beginning, Offset::Offset);
            tpl.add_partition_offset(&s.topic, s.partition, at)?;
        }
        consumer.assign(&tpl)?;
    }
    let mut run = Pull {
        cfg,
        policy: &policy,
        cluster: &cluster,
        log,
        producer,
        consumers,
        base,
        slots,
        syncs,
        syncs_topic,
        checkpoints_topic,
        emitted: HashMap::new(),
        report,
    };
    run.run()?;
    Ok(run.report)
}

/// Every committed offset sync in the local syncs topic.
fn read_local_syncs(log: &Log, topic: &str) -> Result<OffsetSyncs, MirrorError> {
    let mut syncs = OffsetSyncs::default();
    let tp = TopicPartition::new(topic, 0);
    let end = log.partition(topic, 0)?.last_stable_offset();
    let mut consumer = log.consumer(ConsumerConfig {
        group_id: None,
        isolation_level: IsolationLevel::ReadCommitted,
        ..ConsumerConfig::default()
    })?;
    consumer.assign(std::slice::from_ref(&tp))?;
    consumer.seek_to_beginning(std::slice::from_ref(&tp))?;
    while consumer.position(&tp)? < end {
        let records = consumer.poll(Duration::from_millis(100))?;
        for r in &records {
            if let (Some(k), Some(v)) = (r.key(), r.value())
                && let Ok(s) = OffsetSync::decode(k, v)
            {
                syncs.add(&s);
            }
        }
    }
    consumer.close()?;
    Ok(syncs)
}

struct Pull<'a> {
    cfg: &'a MirrorConfig,
    policy: &'a ReplicationPolicy,
    cluster: &'a Cluster,
    log: &'a Log,
    producer: Producer,
    consumers: Vec<BaseConsumer<Ctx>>,
    /// The first slot of each consumer (slots of a consumer are its topic's partitions, in
    /// order).
    base: HashMap<usize, usize>,
    slots: Vec<Slot>,
    syncs: OffsetSyncs,
    syncs_topic: String,
    checkpoints_topic: String,
    emitted: Emitted,
    report: MirrorReport,
}

/// Records drained from one consumer before the next gets its turn.
const DRAIN: usize = 2_000;

impl Pull<'_> {
    fn run(&mut self) -> Result<(), MirrorError> {
        let mut backoff = Backoff::new();
        let mut last_checkpoint = Instant::now();
        let mut ticker = Ticker::new();
        loop {
            let done = self.cfg.until_end && self.slots.iter().all(|s| s.eof);
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
                Err(Failure::Fatal(e)) => {
                    let _ = self.producer.abort_transaction();
                    return Err(e);
                }
                Err(Failure::Retry(why)) => {
                    self.report.retried_rounds += 1;
                    let _ = self.producer.abort_transaction();
                    for s in &mut self.slots {
                        s.pending = None;
                        s.first = None;
                        s.eof = s.committed.is_some_and(|c| c >= s.end_at_start);
                        let at = s.committed.map_or(Offset::Beginning, Offset::Offset);
                        if let Some(c) = self.consumers.get(s.consumer) {
                            // A seek that fails would read on past the aborted records:
                            // their syncs would skip them. Fatal.
                            c.seek(&s.topic, s.partition, at, self.cfg.timeout)?;
                        }
                    }
                    backoff.failed(self.cfg.retries, why)?;
                    continue;
                }
            }
            ticker.tick(self.cfg, self.report.records, || {
                self.slots
                    .iter()
                    .map(|s| {
                        let high = self.consumers.get(s.consumer).map_or(0, |c| {
                            c.fetch_watermarks(&s.topic, s.partition, Duration::from_secs(1))
                                .map_or(0, |(_, h)| h)
                        });
                        (
                            TopicPartition::new(s.topic.clone(), s.partition),
                            (high - s.committed.unwrap_or(0)).max(0),
                        )
                    })
                    .collect()
            });
            if done || stopping {
                return Ok(());
            }
        }
    }

    fn round(&mut self, checkpoint_due: bool, finishing: bool) -> Result<(), Failure> {
        let started = Instant::now();
        let mut copied = 0usize;
        let mut in_txn = false;
        loop {
            let mut got = 0usize;
            for c in 0..self.consumers.len() {
                for _ in 0..DRAIN {
                    let Some(m) = self.consumers.get(c).and_then(|c| c.poll(Duration::ZERO)) else {
                        break;
                    };
                    let m = match m {
                        Ok(m) => m,
                        Err(KafkaError::PartitionEOF(p)) => {
                            let first = self.base.get(&c).copied().unwrap_or(0);
                            if let Some(s) = self.slots.get_mut(first + p as usize) {
                                s.eof = true;
                            }
                            continue;
                        }
                        // librdkafka retries fetches itself; these are the errors it cannot.
                        Err(e) if fetch_fails(&e) => {
                            return Err(Failure::Retry(format!("fetch: {e}")));
                        }
                        Err(_) => continue,
                    };
                    if !in_txn {
                        self.producer.begin_transaction()?;
                        in_txn = true;
                    }
                    let first = self.base.get(&c).copied().unwrap_or(0);
                    let Some(s) = self.slots.get_mut(first + m.partition() as usize) else {
                        continue;
                    };
                    let record = Record {
                        key: m.key().map(Bytes::copy_from_slice),
                        value: m.payload().map(Bytes::copy_from_slice),
                        headers: m.headers().map_or_else(Vec::new, |hs| {
                            hs.iter()
                                .map(|h| Header {
                                    key: h.key.to_owned(),
                                    value: h.value.map(Bytes::copy_from_slice),
                                })
                                .collect()
                        }),
                        timestamp: m.timestamp().to_millis(),
                    };
                    let receipt = self.producer.send_async(ProducerRecord {
                        topic: s.target.clone(),
                        partition: s.target_partition,
                        record,
                    })?;
                    if s.committed.is_none() && s.first.is_none() && s.pending.is_none() {
                        s.first = Some((m.offset(), receipt));
                    } else {
                        s.pending = Some((m.offset(), receipt));
                    }
                    s.eof |= m.offset() + 1 >= s.end_at_start;
                    got += 1;
                }
            }
            copied += got;
            if got == 0 {
                if copied > 0 || finishing || started.elapsed() >= Duration::from_millis(100) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            if copied >= self.cfg.transaction_records
                || started.elapsed() >= self.cfg.transaction_interval
                || self.cfg.stopping()
            {
                break;
            }
        }
        // Checkpoints that fail (a group coordinator loading, say) are a warning: the
        // records commit without them and the next interval tries again.
        let checkpoints = if checkpoint_due {
            self.checkpoints().unwrap_or_else(|e| {
                let w = format!("checkpoints not written this time: {e}");
                if !self.report.warnings.contains(&w) {
                    self.report.warnings.push(w);
                }
                Vec::new()
            })
        } else {
            Vec::new()
        };
        if copied == 0 && checkpoints.is_empty() {
            return Ok(());
        }
        if !in_txn {
            self.producer.begin_transaction()?;
        }
        self.producer.flush()?;
        let mut new_syncs = Vec::new();
        for s in &mut self.slots {
            if let Some((upstream, receipt)) = s.first.take() {
                new_syncs.push(OffsetSync {
                    topic: s.topic.clone(),
                    partition: s.partition,
                    upstream,
                    downstream: receipt.wait()?.offset,
                });
            }
            if let Some((upstream, receipt)) = s.pending.take() {
                let downstream = receipt.wait()?.offset;
                new_syncs.push(OffsetSync {
                    topic: s.topic.clone(),
                    partition: s.partition,
                    upstream,
                    downstream,
                });
            }
        }
        for sync in &new_syncs {
            self.producer.send_async(ProducerRecord {
                topic: self.syncs_topic.clone(),
                partition: Some(0),
                record: Record::new(sync.value()).key(sync.key()),
            })?;
        }
        for c in &checkpoints {
            self.producer.send_async(ProducerRecord {
                topic: self.checkpoints_topic.clone(),
                partition: Some(0),
                record: Record::new(c.value()).key(c.key()),
            })?;
        }
        self.producer.commit_transaction()?;
        // Committed.
        for sync in &new_syncs {
            self.syncs.add(sync);
            if let Some(s) = self
                .slots
                .iter_mut()
                .find(|s| s.topic == sync.topic && s.partition == sync.partition)
            {
                s.committed = Some(sync.upstream + 1);
            }
        }
        count_round(&mut self.report, &mut self.emitted, copied, &checkpoints);
        if self.cfg.sync_group_offsets && !checkpoints.is_empty() {
            self.sync_group_offsets(&checkpoints);
        }
        Ok(())
    }

    /// Checkpoints of the cluster's groups' committed offsets that changed since the last.
    fn checkpoints(&self) -> Result<Vec<Checkpoint>, MirrorError> {
        let mut out = Vec::new();
        let partitions: Vec<(String, i32)> = self
            .slots
            .iter()
            .filter(|s| s.target_partition.is_some())
            .map(|s| (s.topic.clone(), s.partition))
            .collect();
        if partitions.is_empty() {
            return Ok(out);
        }
        for group in self.cluster.groups()? {
            if !self.policy.mirrors_group(&group.name) {
                continue;
            }
            for ((topic, partition), (offset, metadata)) in
                self.cluster.committed(&group.name, &partitions)?
            {
                let Some(downstream) = self.syncs.translate(&topic, partition, offset) else {
                    continue;
                };
                let target = self.policy.target_topic(&topic);
                let key = (group.name.clone(), target.clone(), partition);
                if self.emitted.get(&key) == Some(&(offset, downstream)) {
                    continue;
                }
                out.push(Checkpoint {
                    group: group.name.clone(),
                    topic: target,
                    partition,
                    upstream: offset,
                    downstream,
                    metadata,
                });
            }
        }
        Ok(out)
    }

    /// Commits checkpoints to local groups with no active member, forward only.
    fn sync_group_offsets(&mut self, checkpoints: &[Checkpoint]) {
        let mut by_group: HashMap<&str, Vec<&Checkpoint>> = HashMap::new();
        for c in checkpoints {
            by_group.entry(&c.group).or_default().push(c);
        }
        for (group, cps) in by_group {
            let tps: Vec<TopicPartition> = cps
                .iter()
                .map(|c| TopicPartition::new(c.topic.clone(), c.partition))
                .collect();
            let current: HashMap<TopicPartition, i64> = self
                .log
                .committed_offsets(group, Some(&tps))
                .into_iter()
                .filter_map(|(tp, o)| o.map(|o| (tp, o.offset)))
                .collect();
            let forward: Vec<(TopicPartition, OffsetAndMetadata)> = cps
                .iter()
                .map(|c| (TopicPartition::new(c.topic.clone(), c.partition), c))
                .filter(|(tp, c)| current.get(tp).is_none_or(|o| c.downstream > *o))
                .map(|(tp, c)| {
                    let mut om = OffsetAndMetadata::new(c.downstream);
                    om.metadata.clone_from(&c.metadata);
                    (tp, om)
                })
                .collect();
            if forward.is_empty() {
                continue;
            }
            match self.log.commit_group_offsets(group, "", -1, &forward) {
                Ok(()) => self.report.group_offsets_synced += forward.len() as u64,
                // Active members: MirrorMaker 2 leaves such groups alone too.
                Err(Error::StaleMember { .. } | Error::GroupNotEmpty { .. }) => {}
                Err(e) => self
                    .report
                    .warnings
                    .push(format!("group {group}: offsets not synced: {e}")),
            }
        }
    }
}

/// A consumer error a round cannot go on after.
fn fetch_fails(e: &KafkaError) -> bool {
    use rdkafka::error::RDKafkaErrorCode as C;
    matches!(
        e.rdkafka_error_code(),
        Some(
            C::OffsetOutOfRange
                | C::UnknownTopicOrPartition
                | C::UnknownTopic
                | C::UnknownPartition
                | C::TopicAuthorizationFailed
                | C::Fatal
        )
    )
}

/// Why a round failed.
enum Failure {
    /// Retried from the last committed position after a backoff.
    Retry(String),
    /// Ends the mirror.
    Fatal(MirrorError),
}

impl From<KafkaError> for Failure {
    fn from(e: KafkaError) -> Self {
        Failure::Fatal(MirrorError::Kafka(e))
    }
}

impl From<MirrorError> for Failure {
    fn from(e: MirrorError) -> Self {
        Failure::Fatal(e)
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        match e {
            // The coordinator fenced this producer: another pull with the same id runs.
            Error::Fenced { .. } => Failure::Fatal(MirrorError::Fenced(e.to_string())),
            e => Failure::Fatal(e.into()),
        }
    }
}
