//! Which topics and groups are mirrored, and what they are called on the target:
//! MirrorMaker 2's `DefaultReplicationPolicy` and its default excludes.

use regex::Regex;

/// MirrorMaker 2's default alias of the source cluster, used for the names of internal
/// topics when no alias is given.
pub const DEFAULT_ALIAS: &str = "source";

/// MirrorMaker 2's `topics.exclude` default: internal and replica topics, and Kafka's own.
const TOPICS_EXCLUDE: &str = r"^(?:.*[\-\.]internal|.*\.replica|__.*)$";

/// MirrorMaker 2's `groups.exclude` default: console consumers, Connect's and Kafka's own.
const GROUPS_EXCLUDE: &str = r"^(?:console-consumer-.*|connect-.*|__.*)$";

/// Names topics on the target and filters topics and groups.
#[derive(Debug, Clone)]
pub struct ReplicationPolicy {
    alias: Option<String>,
    topics: Regex,
    topics_exclude: Regex,
    groups_exclude: Regex,
}

impl ReplicationPolicy {
    /// A policy for topics whose whole name matches `topics` (Kafka's regex semantics:
    /// the pattern must match the whole name), renamed `<alias>.<topic>` when `alias` is
    /// given.
    pub fn new(alias: Option<&str>, topics: &str) -> Result<ReplicationPolicy, regex::Error> {
        Ok(ReplicationPolicy {
            alias: alias.map(str::to_owned),
            topics: Regex::new(&format!("^(?:{topics})$"))?,
            topics_exclude: Regex::new(TOPICS_EXCLUDE)?,
            groups_exclude: Regex::new(GROUPS_EXCLUDE)?,
        })
    }

    /// The source cluster's alias as internal topic names use it.
    pub fn alias(&self) -> &str {
        self.alias.as_deref().unwrap_or(DEFAULT_ALIAS)
    }

    /// True when `topic` is mirrored: it matches and is not excluded.
    pub fn mirrors_topic(&self, topic: &str) -> bool {
        self.topics.is_match(topic) && !self.topics_exclude.is_match(topic)
    }

    /// True when `group`'s offsets are checkpointed.
    pub fn mirrors_group(&self, group: &str) -> bool {
        !self.groups_exclude.is_match(group)
    }

    /// The target topic of a source topic: `<alias>.<topic>`, or the same name.
    pub fn target_topic(&self, topic: &str) -> String {
        match &self.alias {
            Some(a) => format!("{a}.{topic}"),
            None => topic.to_owned(),
        }
    }

    /// The offset-syncs topic on the target (`offset-syncs.topic.location=target`).
    pub fn offset_syncs_topic(&self) -> String {
        format!("mm2-offset-syncs.{}.internal", self.alias())
    }

    /// The checkpoints topic on the target.
    pub fn checkpoints_topic(&self) -> String {
        format!("{}.checkpoints.internal", self.alias())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_mirrormaker_2s_default_policy() -> Result<(), regex::Error> {
        let p = ReplicationPolicy::new(Some("edge"), "orders|pay.*")?;
        assert_eq!(p.target_topic("orders"), "edge.orders");
        assert_eq!(p.offset_syncs_topic(), "mm2-offset-syncs.edge.internal");
        assert_eq!(p.checkpoints_topic(), "edge.checkpoints.internal");
        assert!(p.mirrors_topic("orders"));
        assert!(p.mirrors_topic("payments"));
        assert!(
            !p.mirrors_topic("orders2"),
            "the pattern matches whole names"
        );
        let all = ReplicationPolicy::new(None, ".*")?;
        assert_eq!(all.target_topic("orders"), "orders");
        assert_eq!(all.checkpoints_topic(), "source.checkpoints.internal");
        for excluded in [
            "__consumer_offsets",
            "mm2-offset-syncs.source.internal",
            "x.checkpoints.internal",
            "connect-offsets-internal",
            "a.replica",
        ] {
            assert!(!all.mirrors_topic(excluded), "{excluded}");
        }
        assert!(all.mirrors_group("billing"));
        assert!(!all.mirrors_group("console-consumer-1234"));
        assert!(!all.mirrors_group("connect-file-sink"));
        Ok(())
    }
}
