//! The adapter's config APIs: DescribeConfigs (of a topic, and of the broker: the log's
//! default topic config by Kafka's broker names, and the server's own settings),
//! AlterConfigs and IncrementalAlterConfigs (of topics). The configs are the library's
//! (`Log::describe_topic`, `Log::default_topic_config`, `TopicConfig::set`,
//! `TopicConfig::to_properties`, `Log::alter_topic_config`).

use std::collections::BTreeSet;

use kafka_protocol::messages::{
    AlterConfigsRequest, AlterConfigsResponse, DescribeConfigsRequest, DescribeConfigsResponse,
    IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse, RequestHeader,
    alter_configs_response, describe_configs_response, incremental_alter_configs_response,
};
use kafka_protocol::protocol::StrBytes;
use topiclog::{Error, TopicConfig};

use super::super::{Broker, code, sb};
use super::AlterOutcome;

/// Kafka's `INVALID_CONFIG`.
const INVALID_CONFIG: i16 = 40;

/// Kafka's `ConfigResource.Type` ids.
mod resource {
    pub const TOPIC: i8 = 2;
    pub const BROKER: i8 = 4;
}

/// Kafka's `DescribeConfigsResponse.ConfigSource` ids.
mod source {
    pub const TOPIC_CONFIG: i8 = 1;
    pub const STATIC_BROKER_CONFIG: i8 = 4;
    pub const DEFAULT_CONFIG: i8 = 5;
}

/// Kafka's topic configs and the broker configs that give their defaults
/// (`ServerTopicConfigSynonyms`): how a BROKER resource names the log's default topic config.
const BROKER_SYNONYMS: &[(&str, &str)] = &[
    ("cleanup.policy", "log.cleanup.policy"),
    ("compression.type", "compression.type"),
    ("delete.retention.ms", "log.cleaner.delete.retention.ms"),
    ("file.delete.delay.ms", "log.segment.delete.delay.ms"),
    ("flush.messages", "log.flush.interval.messages"),
    ("flush.ms", "log.flush.interval.ms"),
    ("index.interval.bytes", "log.index.interval.bytes"),
    ("local.retention.bytes", "log.local.retention.bytes"),
    ("local.retention.ms", "log.local.retention.ms"),
    ("max.compaction.lag.ms", "log.cleaner.max.compaction.lag.ms"),
    ("max.message.bytes", "message.max.bytes"),
    (
        "message.downconversion.enable",
        "log.message.downconversion.enable",
    ),
    (
        "message.timestamp.after.max.ms",
        "log.message.timestamp.after.max.ms",
    ),
    (
        "message.timestamp.before.max.ms",
        "log.message.timestamp.before.max.ms",
    ),
    (
        "message.timestamp.difference.max.ms",
        "log.message.timestamp.difference.max.ms",
    ),
    ("message.timestamp.type", "log.message.timestamp.type"),
    (
        "min.cleanable.dirty.ratio",
        "log.cleaner.min.cleanable.ratio",
    ),
    ("min.compaction.lag.ms", "log.cleaner.min.compaction.lag.ms"),
    ("min.insync.replicas", "min.insync.replicas"),
    ("preallocate", "log.preallocate"),
    ("retention.bytes", "log.retention.bytes"),
    ("retention.ms", "log.retention.ms"),
    ("segment.bytes", "log.segment.bytes"),
    ("segment.index.bytes", "log.index.size.max.bytes"),
    ("segment.jitter.ms", "log.roll.jitter.ms"),
    ("segment.ms", "log.roll.ms"),
    (
        "unclean.leader.election.enable",
        "unclean.leader.election.enable",
    ),
];

/// Topic configs of Kafka's LIST type, the only ones IncrementalAlterConfigs may APPEND to
/// or SUBTRACT from.
const LIST_CONFIGS: &[&str] = &[
    "cleanup.policy",
    "follower.replication.throttled.replicas",
    "leader.replication.throttled.replicas",
];

/// An `InvalidConfig` naming `key`, for refusals the library's setters cannot make.
fn invalid_config(key: &str, reason: impl Into<String>) -> Error {
    Error::InvalidConfig {
        field: key.to_owned(),
        reason: reason.into(),
    }
}

impl Broker {
    pub(crate) fn describe_configs(
        &self,
        req: DescribeConfigsRequest,
        _version: i16,
        _h: &RequestHeader,
    ) -> Option<DescribeConfigsResponse> {
        let mut r = DescribeConfigsResponse::default();
        for res in req.resources {
            let mut out = describe_configs_response::DescribeConfigsResult::default();
            out.resource_type = res.resource_type;
            let wanted: Option<BTreeSet<&str>> = res
                .configuration_keys
                .as_ref()
                .map(|keys| keys.iter().map(StrBytes::as_str).collect());
            let entries = match res.resource_type {
                resource::TOPIC => self.topic_config_entries(res.resource_name.as_str()),
                resource::BROKER => self.broker_config_entries(res.resource_name.as_str()),
                other => Err((
                    code::INVALID_REQUEST,
                    format!(
                        "config resource type {other} is not served (TOPIC 2 and BROKER 4 are)"
                    ),
                )),
            };
            match entries {
                Ok(entries) => {
                    for (name, value, src, read_only, synonyms) in entries {
                        if wanted.as_ref().is_some_and(|w| !w.contains(name.as_str())) {
                            continue;
                        }
                        let mut c =
                            describe_configs_response::DescribeConfigsResourceResult::default();
                        c.value = Some(StrBytes::from_string(value));
                        c.config_source = src;
                        c.read_only = read_only;
                        c.config_type = config_type(&name);
                        if req.include_synonyms {
                            c.synonyms = synonyms
                                .into_iter()
                                .map(|(n, v, s)| {
                                    let mut y =
                                        describe_configs_response::DescribeConfigsSynonym::default(
                                        );
                                    y.name = sb(n);
                                    y.value = Some(StrBytes::from_string(v));
                                    y.source = s;
                                    y
                                })
                                .collect();
                        }
                        c.name = StrBytes::from_string(name);
                        out.configs.push(c);
                    }
                }
                Err((c, m)) => {
                    out.error_code = c;
                    out.error_message = Some(StrBytes::from_string(m));
                }
            }
            out.resource_name = res.resource_name;
            r.results.push(out);
        }
        Some(r)
    }

    /// Where a log-default value comes from: the server's options (STATIC_BROKER_CONFIG), or
    /// the library's built-in default (DEFAULT_CONFIG), which for some keys is not Kafka's
    /// (`retention.ms` keeps records forever here).
    fn default_source(key: &str, value: &str) -> i8 {
        if TopicConfig::default()
            .to_properties()
            .get(key)
            .is_some_and(|v| v == value)
        {
            source::DEFAULT_CONFIG
        } else {
            source::STATIC_BROKER_CONFIG
        }
    }

    /// A topic's configs: name, value, source, read-only, synonyms (most specific first).
    fn topic_config_entries(&self, topic: &str) -> Result<Vec<ConfigEntry>, (i16, String)> {
        let d = self
            .log()
            .describe_topic(topic)
            .map_err(|e| (e.kafka_error_code(), e.to_string()))?;
        let defaults = self.log().default_topic_config().to_properties();
        let mut out = Vec::new();
        for (key, value) in d.config.to_properties() {
            let default = defaults.get(key);
            let default_src =
                default.map_or(source::DEFAULT_CONFIG, |v| Self::default_source(key, v));
            let mut synonyms = Vec::new();
            let src = if default.is_some_and(|v| *v == value) {
                default_src
            } else {
                synonyms.push((key, value.clone(), source::TOPIC_CONFIG));
                source::TOPIC_CONFIG
            };
            if let (Some(broker_key), Some(v)) = (broker_synonym(key), default) {
                synonyms.push((broker_key, v.clone(), default_src));
            } else if src != source::TOPIC_CONFIG {
                synonyms.push((key, value.clone(), src));
            }
            out.push((key.to_owned(), value, src, false, synonyms));
        }
        Ok(out)
    }

    /// The broker's configs: the log's default topic config by its broker names, and the
    /// server's own settings. `name` is this broker's id ("0"), or empty for the cluster-wide
    /// dynamic defaults, of which there are none.
    fn broker_config_entries(&self, name: &str) -> Result<Vec<ConfigEntry>, (i16, String)> {
        if name.is_empty() {
            return Ok(Vec::new());
        }
        if name != "0" {
            return Err((
                code::INVALID_REQUEST,
                format!(
                    "unexpected broker id, expected 0 or the empty string, but received {name}"
                ),
            ));
        }
        let cfg = self.config();
        let statics = [
            ("broker.id", "0".to_owned()),
            ("node.id", "0".to_owned()),
            (
                "advertised.listeners",
                format!("PLAINTEXT://{}:{}", cfg.host, cfg.port),
            ),
            (
                "auto.create.topics.enable",
                cfg.auto_create_topics.to_string(),
            ),
            ("num.partitions", cfg.default_partitions.to_string()),
            ("default.replication.factor", "1".to_owned()),
            ("socket.request.max.bytes", cfg.max_frame_bytes.to_string()),
            ("log.dirs", self.log().dir().display().to_string()),
        ];
        let mut out: Vec<ConfigEntry> = statics
            .into_iter()
            .map(|(k, v)| {
                let syn = vec![(k, v.clone(), source::STATIC_BROKER_CONFIG)];
                (k.to_owned(), v, source::STATIC_BROKER_CONFIG, true, syn)
            })
            .collect();
        for (key, value) in self.log().default_topic_config().to_properties() {
            if let Some(broker_key) = broker_synonym(key) {
                let src = Self::default_source(key, &value);
                let syn = vec![(broker_key, value.clone(), src)];
                out.push((broker_key.to_owned(), value, src, true, syn));
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    pub(crate) fn alter_configs(
        &self,
        req: AlterConfigsRequest,
        _version: i16,
        _h: &RequestHeader,
    ) -> Option<AlterConfigsResponse> {
        let mut r = AlterConfigsResponse::default();
        for res in req.resources {
            let outcome = match res.resource_type {
                resource::TOPIC => {
                    // The whole set of a topic's configs is replaced: keys not given go back
                    // to their defaults.
                    let mut config = self.log().default_topic_config();
                    let topic = res.resource_name.as_str();
                    let set = res.configs.iter().try_for_each(|c| {
                        if let Some(v) = &c.value {
                            config.set(c.name.as_str(), v.as_str())?;
                        }
                        Ok(())
                    });
                    self.apply_topic_config(topic, set.map(|()| config), req.validate_only)
                }
                other => refuse_alter(other),
            };
            let mut out = alter_configs_response::AlterConfigsResourceResponse::default();
            if let Err((c, m)) = outcome {
                out.error_code = c;
                out.error_message = Some(StrBytes::from_string(m));
            }
            out.resource_type = res.resource_type;
            out.resource_name = res.resource_name;
            r.responses.push(out);
        }
        Some(r)
    }

    pub(crate) fn incremental_alter_configs(
        &self,
        req: IncrementalAlterConfigsRequest,
        _version: i16,
        _h: &RequestHeader,
    ) -> Option<IncrementalAlterConfigsResponse> {
        let mut r = IncrementalAlterConfigsResponse::default();
        for res in req.resources {
            let outcome = match res.resource_type {
                resource::TOPIC => {
                    let topic = res.resource_name.as_str();
                    let changes: Vec<(&str, i8, Option<&str>)> = res
                        .configs
                        .iter()
                        .map(|c| {
                            (
                                c.name.as_str(),
                                c.config_operation,
                                c.value.as_ref().map(StrBytes::as_str),
                            )
                        })
                        .collect();
                    match self.log().describe_topic(topic) {
                        Ok(d) => match incremental(
                            d.config,
                            &self.log().default_topic_config(),
                            &changes,
                        ) {
                            Ok(config) => {
                                self.apply_topic_config(topic, Ok(config), req.validate_only)
                            }
                            Err(failure) => Err(failure),
                        },
                        Err(e) => Err((e.kafka_error_code(), e.to_string())),
                    }
                }
                other => refuse_alter(other),
            };
            let mut out =
                incremental_alter_configs_response::AlterConfigsResourceResponse::default();
            if let Err((c, m)) = outcome {
                out.error_code = c;
                out.error_message = Some(StrBytes::from_string(m));
            }
            out.resource_type = res.resource_type;
            out.resource_name = res.resource_name;
            r.responses.push(out);
        }
        Some(r)
    }

    /// Validates a topic's new config and, unless `validate_only`, puts it in force.
    fn apply_topic_config(
        &self,
        topic: &str,
        config: Result<TopicConfig, Error>,
        validate_only: bool,
    ) -> AlterOutcome {
        let fail = |e: Error| (e.kafka_error_code(), e.to_string());
        let config = config.map_err(fail)?;
        if validate_only {
            self.log().partition_count(topic).map_err(fail)?;
            return config.validate().map_err(fail);
        }
        self.log().alter_topic_config(topic, config).map_err(fail)
    }
}

type ConfigEntry = (String, String, i8, bool, Vec<(&'static str, String, i8)>);

/// Kafka's `ConfigType` of a topic or broker config (0, UNKNOWN, for names Kafka lacks).
fn config_type(key: &str) -> i8 {
    const BOOLEAN: i8 = 1;
    const STRING: i8 = 2;
    const INT: i8 = 3;
    const LONG: i8 = 5;
    const DOUBLE: i8 = 6;
    const LIST: i8 = 7;
    let topic_key = BROKER_SYNONYMS
        .iter()
        .find(|(_, broker)| *broker == key)
        .map_or(key, |(topic, _)| *topic);
    match topic_key {
        "cleanup.policy"
        | "leader.replication.throttled.replicas"
        | "follower.replication.throttled.replicas" => LIST,
        "compression.type" | "message.timestamp.type" | "advertised.listeners" | "log.dirs" => {
            STRING
        }
        "min.cleanable.dirty.ratio" => DOUBLE,
        "index.interval.bytes"
        | "max.message.bytes"
        | "segment.bytes"
        | "segment.index.bytes"
        | "min.insync.replicas"
        | "broker.id"
        | "node.id"
        | "num.partitions"
        | "default.replication.factor"
        | "socket.request.max.bytes" => INT,
        "preallocate"
        | "unclean.leader.election.enable"
        | "message.downconversion.enable"
        | "remote.storage.enable"
        | "auto.create.topics.enable" => BOOLEAN,
        // Durations and sizes: the last word of the name.
        k if matches!(k.rsplit('.').next(), Some("ms" | "bytes" | "messages")) => LONG,
        _ => 0,
    }
}

fn broker_synonym(key: &str) -> Option<&'static str> {
    BROKER_SYNONYMS
        .iter()
        .find(|(topic, _)| *topic == key)
        .map(|(_, broker)| *broker)
}

/// Alters of resources other than topics: the broker's settings are fixed when it starts.
fn refuse_alter(resource_type: i8) -> AlterOutcome {
    Err((
        code::INVALID_REQUEST,
        if resource_type == resource::BROKER {
            "broker configs are set when the server starts and cannot be altered".to_owned()
        } else {
            format!("config resource type {resource_type} is not served (TOPIC 2 is)")
        },
    ))
}

/// Applies IncrementalAlterConfigs operations (SET 0, DELETE 1, APPEND 2, SUBTRACT 3) to
/// `config`, as Kafka does: DELETE returns a key to the log's default, APPEND and SUBTRACT
/// work on LIST configs only, a key may appear once.
fn incremental(
    mut config: TopicConfig,
    defaults: &TopicConfig,
    changes: &[(&str, i8, Option<&str>)],
) -> Result<TopicConfig, (i16, String)> {
    let fail = |e: Error| (e.kafka_error_code(), e.to_string());
    let mut keys = BTreeSet::new();
    for &(key, _, _) in changes {
        if !keys.insert(key) {
            return Err((
                code::INVALID_REQUEST,
                format!("Error due to duplicate config keys: {key}"),
            ));
        }
    }
    let default_props = defaults.to_properties();
    for &(key, op, value) in changes {
        match op {
            0 => {
                let v = value.ok_or((
                    code::INVALID_REQUEST,
                    format!("Null value not supported for: {key}"),
                ))?;
                config.set(key, v).map_err(fail)?;
            }
            1 => {
                // Kafka's flush.messages and flush.ms are one setting here, flush.policy.
                let stored = if matches!(key, "flush.messages" | "flush.ms") {
                    "flush.policy"
                } else {
                    key
                };
                let default = default_props
                    .get(stored)
                    .ok_or_else(|| fail(invalid_config(key, "unknown topic setting")))?;
                config.set(stored, default).map_err(fail)?;
            }
            2 | 3 => {
                if !LIST_CONFIGS.contains(&key) {
                    let verb = if op == 2 { "append" } else { "subtract" };
                    return Err((
                        INVALID_CONFIG,
                        format!("Config value {verb} is not allowed for config key: {key}"),
                    ));
                }
                let current = config
                    .to_properties()
                    .get(key)
                    .cloned()
                    .ok_or_else(|| fail(invalid_config(key, "unknown topic setting")))?;
                let mut items: Vec<String> = current
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect();
                for v in value
                    .unwrap_or("")
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                {
                    if op == 2 {
                        if !items.iter().any(|i| i == v) {
                            items.push(v.to_owned());
                        }
                    } else {
                        items.retain(|i| i != v);
                    }
                }
                config.set(key, &items.join(",")).map_err(fail)?;
            }
            other => {
                return Err((
                    code::INVALID_REQUEST,
                    format!("unknown config operation {other} for {key}"),
                ));
            }
        }
    }
    Ok(config)
}
