//! The cluster side of a mirror, through librdkafka: metadata, topic admin, group offsets,
//! and reading a whole topic; errors mapped to [`MirrorError`].

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, ResourceSpecifier, TopicReplication};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::{ClientContext, Offset, TopicPartitionList};

use super::{MirrorConfig, MirrorError};

/// A client context that keeps the client's last error, for messages that say why.
#[derive(Default)]
pub(super) struct Ctx {
    last_error: Mutex<Option<String>>,
}

impl Ctx {
    pub(super) fn last_error(&self) -> Option<String> {
        self.last_error.lock().clone()
    }
}

impl ClientContext for Ctx {
    fn error(&self, error: KafkaError, reason: &str) {
        *self.last_error.lock() = Some(if reason.is_empty() {
            error.to_string()
        } else {
            format!("{error}: {reason}")
        });
    }
}

impl ConsumerContext for Ctx {}

/// The settings every client of a mirror starts from.
pub(super) fn base_config(cfg: &MirrorConfig) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &cfg.bootstrap_servers)
        .set("client.id", "topiclog-mirror")
        .set("log_level", "3");
    for (k, v) in &cfg.client_properties {
        c.set(k, v);
    }
    c
}

/// A client that could not be created: a setting this build cannot do, or a bad one.
#[allow(clippy::needless_pass_by_value)] // the shape `map_err` hands it
pub(super) fn creation_error(e: KafkaError) -> MirrorError {
    let msg = e.to_string();
    let lower = msg.to_ascii_lowercase();
    if ["not built", "build time", "unsupported value"]
        .iter()
        .any(|w| lower.contains(w))
    {
        MirrorError::Unsupported(format!(
            "{msg} (this build's librdkafka has no TLS or SASL: the cluster must accept \
             PLAINTEXT connections)"
        ))
    } else {
        MirrorError::InvalidConfig(msg)
    }
}

/// Maps a client error that means the cluster is unreachable or refused us.
pub(super) fn contact_error(cfg: &MirrorConfig, e: &KafkaError, ctx: &Ctx) -> MirrorError {
    let detail = ctx.last_error().unwrap_or_else(|| e.to_string());
    let code = e.rdkafka_error_code();
    let lower = detail.to_ascii_lowercase();
    if matches!(
        code,
        Some(
            RDKafkaErrorCode::Authentication
                | RDKafkaErrorCode::SaslAuthenticationFailed
                | RDKafkaErrorCode::TopicAuthorizationFailed
                | RDKafkaErrorCode::GroupAuthorizationFailed
                | RDKafkaErrorCode::ClusterAuthorizationFailed
                | RDKafkaErrorCode::TransactionalIdAuthorizationFailed
        )
    ) || lower.contains("authentication")
        || lower.contains("authoriz")
        || lower.contains("sasl")
    {
        return MirrorError::Auth(detail);
    }
    MirrorError::Unreachable {
        bootstrap: cfg.bootstrap_servers.clone(),
        timeout: cfg.timeout,
        detail,
    }
}

/// A group's committed offsets: (topic, partition) → (offset, metadata).
pub(super) type GroupOffsets = BTreeMap<(String, i32), (i64, String)>;

/// One record read from the cluster.
pub(super) struct Fetched {
    pub(super) key: Option<Vec<u8>>,
    pub(super) value: Option<Vec<u8>>,
}

/// A group on the cluster.
pub(super) struct GroupInfo {
    pub(super) name: String,
}

/// The cluster: an admin client and the settings to make others.
pub(super) struct Cluster {
    admin: AdminClient<Ctx>,
    cfg: MirrorConfig,
}

impl Cluster {
    /// Connects and checks that the cluster answers a metadata request.
    pub(super) fn connect(cfg: &MirrorConfig) -> Result<Cluster, MirrorError> {
        let admin: AdminClient<Ctx> = base_config(cfg)
            .create_with_context(Ctx::default())
            .map_err(creation_error)?;
        let c = Cluster {
            admin,
            cfg: cfg.clone(),
        };
        c.topics()?;
        Ok(c)
    }

    fn contact_error(&self, e: &KafkaError) -> MirrorError {
        contact_error(&self.cfg, e, self.admin.inner().context())
    }

    fn opts(&self) -> AdminOptions {
        AdminOptions::new()
            .request_timeout(Some(self.cfg.timeout))
            .operation_timeout(Some(self.cfg.timeout))
    }

    /// Topic name → partition count.
    pub(super) fn topics(&self) -> Result<BTreeMap<String, i32>, MirrorError> {
        let md = self
            .admin
            .inner()
            .fetch_metadata(None, self.cfg.timeout)
            .map_err(|e| self.contact_error(&e))?;
        Ok(md
            .topics()
            .iter()
            .filter(|t| t.error().is_none())
            .map(|t| (t.name().to_owned(), t.partitions().len() as i32))
            .collect())
    }

    /// Creates a topic (already there is fine) and waits until metadata shows it.
    pub(super) fn create_topic(
        &self,
        name: &str,
        partitions: i32,
        configs: &[(String, String)],
    ) -> Result<(), MirrorError> {
        // The broker's default replication factor (KIP-464), else 1 for a broker that wants
        // one named.
        for replication in [-1, 1] {
            let mut topic = NewTopic::new(name, partitions, TopicReplication::Fixed(replication));
            for (k, v) in configs {
                topic = topic.set(k, v);
            }
            let results =
                futures_executor::block_on(self.admin.create_topics([&topic], &self.opts()))
                    .map_err(|e| self.contact_error(&e))?;
            match results.into_iter().next() {
                Some(Err((_, RDKafkaErrorCode::InvalidReplicationFactor))) if replication < 0 => {}
                Some(Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists))) | None => {
                    return self.await_topic(name);
                }
                Some(Err((_, code))) => {
                    return Err(MirrorError::Kafka(KafkaError::AdminOp(code)));
                }
            }
        }
        self.await_topic(name)
    }

    fn await_topic(&self, name: &str) -> Result<(), MirrorError> {
        let deadline = Instant::now() + self.cfg.timeout;
        loop {
            if self.topics()?.get(name).is_some_and(|p| *p > 0) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(MirrorError::TopicNotFound(format!(
                    "{name} (created, but the cluster's metadata does not show it)"
                )));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// A topic's configs as the cluster reports them (values it has).
    pub(super) fn topic_config(&self, name: &str) -> Result<BTreeMap<String, String>, MirrorError> {
        let results = futures_executor::block_on(
            self.admin
                .describe_configs([&ResourceSpecifier::Topic(name)], &self.opts()),
        )
        .map_err(|e| self.contact_error(&e))?;
        let mut out = BTreeMap::new();
        // A broker that does not describe topic configs gives none: the mirror then creates
        // targets with the defaults.
        for resource in results.into_iter().flatten() {
            for e in resource.entries {
                if let Some(v) = e.value {
                    out.insert(e.name, v);
                }
            }
        }
        Ok(out)
    }

    /// The cluster's consumer groups.
    pub(super) fn groups(&self) -> Result<Vec<GroupInfo>, MirrorError> {
        let list = self
            .admin
            .inner()
            .fetch_group_list(None, self.cfg.timeout)
            .map_err(|e| self.contact_error(&e))?;
        Ok(list
            .groups()
            .iter()
            .map(|g| GroupInfo {
                name: g.name().to_owned(),
            })
            .collect())
    }

    /// Members of one group (0 for a group the cluster does not know).
    pub(super) fn group_members(&self, group: &str) -> Result<usize, MirrorError> {
        let list = self
            .admin
            .inner()
            .fetch_group_list(Some(group), self.cfg.timeout)
            .map_err(|e| self.contact_error(&e))?;
        Ok(list.groups().iter().map(|g| g.members().len()).sum())
    }

    /// A consumer that joins no group (assign only), reading `read_committed`.
    pub(super) fn consumer(&self, group: Option<&str>) -> Result<BaseConsumer<Ctx>, MirrorError> {
        let mut c = base_config(&self.cfg);
        c.set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("isolation.level", "read_committed")
            .set("auto.offset.reset", "earliest")
            .set("enable.partition.eof", "true");
        // librdkafka wants a group id even to assign; the mirror's own never commits or
        // joins.
        c.set("group.id", group.unwrap_or("topiclog-mirror"));
        for (k, v) in &self.cfg.consumer_properties {
            c.set(k, v);
        }
        c.create_with_context(Ctx::default())
            .map_err(creation_error)
    }

    /// A group's committed offsets (with metadata) of these partitions.
    pub(super) fn committed(
        &self,
        group: &str,
        partitions: &[(String, i32)],
    ) -> Result<GroupOffsets, MirrorError> {
        let consumer = self.consumer(Some(group))?;
        let mut tpl = TopicPartitionList::new();
        for (t, p) in partitions {
            tpl.add_partition(t, *p);
        }
        let got = consumer
            .committed_offsets(tpl, self.cfg.timeout)
            .map_err(|e| contact_error(&self.cfg, &e, consumer.context()))?;
        Ok(got
            .elements()
            .iter()
            .filter_map(|e| match e.offset() {
                Offset::Offset(o) => Some((
                    (e.topic().to_owned(), e.partition()),
                    (o, e.metadata().to_owned()),
                )),
                _ => None,
            })
            .collect())
    }

    /// Commits offsets for a group that has no active member.
    pub(super) fn commit(
        &self,
        group: &str,
        offsets: &[((String, i32), i64, String)],
    ) -> Result<(), MirrorError> {
        let consumer = self.consumer(Some(group))?;
        let mut tpl = TopicPartitionList::new();
        for ((t, p), o, m) in offsets {
            tpl.add_partition_offset(t, *p, Offset::Offset(*o))?;
            if let Some(mut e) = tpl.find_partition(t, *p) {
                e.set_metadata(m.clone());
            }
        }
        consumer
            .commit(&tpl, CommitMode::Sync)
            .map_err(|e| contact_error(&self.cfg, &e, consumer.context()))
    }

    /// Every committed record of a topic, in order per partition (for the offset syncs).
    pub(super) fn read_topic(
        &self,
        topic: &str,
        partitions: i32,
    ) -> Result<Vec<Fetched>, MirrorError> {
        let consumer = self.consumer(None)?;
        let mut tpl = TopicPartitionList::new();
        let mut open = BTreeSet::new();
        for p in 0..partitions {
            let (low, high) = consumer
                .fetch_watermarks(topic, p, self.cfg.timeout)
                .map_err(|e| contact_error(&self.cfg, &e, consumer.context()))?;
            if high > low {
                tpl.add_partition_offset(topic, p, Offset::Beginning)?;
                open.insert(p);
            }
        }
        let mut out = Vec::new();
        if open.is_empty() {
            return Ok(out);
        }
        consumer.assign(&tpl)?;
        let mut deadline = Instant::now() + self.cfg.timeout;
        while !open.is_empty() {
            match consumer.poll(Duration::from_millis(100)) {
                Some(Ok(m)) => {
                    out.push(Fetched {
                        key: m.key().map(<[u8]>::to_vec),
                        value: m.payload().map(<[u8]>::to_vec),
                    });
                    deadline = Instant::now() + self.cfg.timeout;
                }
                Some(Err(KafkaError::PartitionEOF(p))) => {
                    open.remove(&p);
                }
                Some(Err(e)) => return Err(contact_error(&self.cfg, &e, consumer.context())),
                None => {
                    if Instant::now() >= deadline {
                        return Err(MirrorError::Unreachable {
                            bootstrap: self.cfg.bootstrap_servers.clone(),
                            timeout: self.cfg.timeout,
                            detail: format!("reading {topic} made no progress"),
                        });
                    }
                }
            }
        }
        Ok(out)
    }
}
