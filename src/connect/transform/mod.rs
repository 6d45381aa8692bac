//! Single message transforms and predicates, by Kafka's names and config keys.
//!
//! A connector's configuration names its chain with Kafka's keys: `transforms=a,b` lists the
//! transforms in order, `transforms.a.type` names each one's class (Kafka's full name,
//! `org.apache.kafka.connect.transforms.InsertField$Value`, or the short one,
//! `InsertField$Value`) and `transforms.a.<key>` carries its settings. `predicates=p` and
//! `predicates.p.type` / `predicates.p.<key>` declare predicates; `transforms.a.predicate=p`
//! applies a transform only to the records `p` matches (`transforms.a.negate=true`: only to the
//! others), and passes the rest unchanged.
//!
//! | Transform | Keys |
//! |-----------|------|
//! | `InsertField$Key`, `$Value` | `topic.field`, `partition.field`, `offset.field`, `timestamp.field`, `static.field` + `static.value`; a `!` suffix makes the field required, `?` (or none) optional |
//! | `ReplaceField$Key`, `$Value` | `exclude` (`blacklist`), `include` (`whitelist`), `renames` (`old:new,…`) |
//! | `MaskField$Key`, `$Value` | `fields`, `replacement` |
//! | `ExtractField$Key`, `$Value` | `field` |
//! | `ValueToKey` | `fields` |
//! | `RegexRouter` | `regex`, `replacement` (`$1`, `${name}` as Java's `replaceFirst`) |
//! | `TimestampRouter` | `topic.format` (`${topic}-${timestamp}`), `timestamp.format` (`yyyyMMdd`, Java's `SimpleDateFormat`, UTC) |
//! | `Filter` | none: drops every record it applies to |
//!
//! Predicates: `TopicNameMatches` (`pattern`, matching the whole topic), `HasHeaderKey`
//! (`name`) and `RecordIsTombstone`.
//!
//! Each field transform works on schemaless data (a [`Value::Map`](super::Value::Map) with
//! string keys and no schema) and on structs with a schema, whose new schema it builds as
//! Kafka's do. Regular expressions are the `regex` crate's, which has no look-around or
//! back-references; a pattern it cannot compile is a configuration error.
//!
//! ```
//! use std::collections::BTreeMap;
//! use topiclog::connect::transform::TransformChain;
//! use topiclog::connect::{ConnectRecord, Value};
//!
//! let config: BTreeMap<String, String> = [
//!     ("transforms", "route"),
//!     ("transforms.route.type", "org.apache.kafka.connect.transforms.RegexRouter"),
//!     ("transforms.route.regex", "(.*)-(.*)"),
//!     ("transforms.route.replacement", "$2"),
//! ]
//! .into_iter()
//! .map(|(k, v)| (k.to_string(), v.to_string()))
//! .collect();
//! let mut chain = TransformChain::from_config(&config)?;
//! let routed = chain.apply(ConnectRecord::new("orders-eu", None, Value::Null))?;
//! assert_eq!(routed.map(|r| r.topic).as_deref(), Some("eu"));
//! # Ok::<_, topiclog::Error>(())
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use regex::Regex;

use crate::error::{Error, Result};

use super::ConnectRecord;

mod datefmt;
mod fields;
mod routers;

use fields::{ExtractField, InsertField, MaskField, ReplaceField, Side, ValueToKey};
use routers::{
    Filter, HasHeaderKey, RecordIsTombstone, RegexRouter, TimestampRouter, TopicNameMatches,
};

/// A single message transform (Kafka's `Transformation`): returns the record changed, or
/// `None` to drop it.
pub trait Transform: Send {
    /// Transforms one record.
    ///
    /// # Errors
    /// [`crate::Error::ConnectData`] when the record does not fit the transform.
    fn apply(&mut self, record: ConnectRecord) -> Result<Option<ConnectRecord>>;
}

/// A predicate deciding whether a transform applies to a record (Kafka's `Predicate`).
pub trait Predicate: Send + Sync {
    /// Whether the record matches.
    fn test(&self, record: &ConnectRecord) -> bool;
}

/// A connector's chain of transforms, built from its configuration (`transforms`,
/// `transforms.<name>.type` and their keys, `predicates`, `predicates.<name>.type`).
#[derive(Default)]
pub struct TransformChain {
    steps: Vec<Box<dyn Transform>>,
}

impl TransformChain {
    /// The chain a connector's configuration names (see the [module docs](self) for the
    /// transforms, predicates and keys). Every predicate `predicates` lists is built, used or
    /// not, so a mistake in one is reported here rather than never.
    ///
    /// # Errors
    /// [`crate::Error::InvalidConfig`] naming the key that is missing or wrong: an unknown
    /// `type`, a missing required key, a predicate alias that `predicates` does not list, a
    /// regular expression that does not compile, an alias listed twice.
    pub fn from_config(config: &BTreeMap<String, String>) -> Result<TransformChain> {
        let mut predicates: BTreeMap<String, Arc<dyn Predicate>> = BTreeMap::new();
        for alias in aliases(config, "predicates")? {
            let keys = Keys::new(config, format!("predicates.{alias}."));
            predicates.insert(alias, build_predicate(&keys)?);
        }
        let mut steps: Vec<Box<dyn Transform>> = Vec::new();
        for alias in aliases(config, "transforms")? {
            let keys = Keys::new(config, format!("transforms.{alias}."));
            let transform = build_transform(&keys)?;
            let negate = match keys.get("negate") {
                None => None,
                Some(v) if v.eq_ignore_ascii_case("true") => Some(true),
                Some(v) if v.eq_ignore_ascii_case("false") => Some(false),
                Some(v) => {
                    return Err(keys.invalid("negate", format!("'{v}' is not true or false")));
                }
            };
            let Some(name) = keys.get("predicate") else {
                if negate.is_some() {
                    return Err(keys.invalid("negate", "is set but no predicate is (`predicate`)"));
                }
                steps.push(transform);
                continue;
            };
            let predicate = predicates.get(name).ok_or_else(|| {
                keys.invalid(
                    "predicate",
                    format!("names predicate '{name}', which `predicates` does not list"),
                )
            })?;
            steps.push(Box::new(Conditional {
                transform,
                predicate: Arc::clone(predicate),
                negate: negate.unwrap_or(false),
            }));
        }
        Ok(TransformChain { steps })
    }

    /// Runs `record` through every transform; `None` once one drops it.
    ///
    /// # Errors
    /// The first transform's error.
    pub fn apply(&mut self, record: ConnectRecord) -> Result<Option<ConnectRecord>> {
        let mut r = record;
        for t in &mut self.steps {
            match t.apply(r)? {
                Some(next) => r = next,
                None => return Ok(None),
            }
        }
        Ok(Some(r))
    }

    /// Whether the chain is empty.
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }
}

const TRANSFORMS_PACKAGE: &str = "org.apache.kafka.connect.transforms.";
const PREDICATES_PACKAGE: &str = "org.apache.kafka.connect.transforms.predicates.";
const KNOWN_TRANSFORMS: &str = "InsertField$Key, InsertField$Value, ReplaceField$Key, \
     ReplaceField$Value, MaskField$Key, MaskField$Value, ExtractField$Key, ExtractField$Value, \
     ValueToKey, RegexRouter, TimestampRouter, Filter";

/// The aliases a list key (`transforms`, `predicates`) names, each once.
fn aliases(config: &BTreeMap<String, String>, key: &str) -> Result<Vec<String>> {
    let list = config.get(key).map(|v| parse_list(v)).unwrap_or_default();
    let mut seen = BTreeSet::new();
    for alias in &list {
        if alias.is_empty() {
            return Err(Error::invalid_config(key, "lists an empty alias"));
        }
        if !seen.insert(alias.as_str()) {
            return Err(Error::invalid_config(
                key,
                format!("lists alias '{alias}' twice"),
            ));
        }
    }
    Ok(list)
}

/// Kafka's list syntax: comma-separated, each item trimmed; blank is the empty list.
fn parse_list(text: &str) -> Vec<String> {
    let text = text.trim();
    if text.is_empty() {
        return Vec::new();
    }
    text.split(',').map(|s| s.trim().to_string()).collect()
}

/// One plugin's settings: the keys under `transforms.<alias>.` or `predicates.<alias>.`.
/// Values are trimmed, as Kafka's `ConfigDef` trims them.
struct Keys<'a> {
    config: &'a BTreeMap<String, String>,
    prefix: String,
}

impl<'a> Keys<'a> {
    fn new(config: &'a BTreeMap<String, String>, prefix: String) -> Self {
        Keys { config, prefix }
    }

    fn full(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    fn invalid(&self, key: &str, reason: impl Into<String>) -> Error {
        Error::invalid_config(self.full(key), reason)
    }

    fn get(&self, key: &str) -> Option<&'a str> {
        self.config.get(&self.full(key)).map(|v| v.trim())
    }

    fn required(&self, key: &str) -> Result<&'a str> {
        self.get(key)
            .ok_or_else(|| self.invalid(key, "is required"))
    }

    fn non_empty(&self, key: &str) -> Result<&'a str> {
        match self.required(key)? {
            "" => Err(self.invalid(key, "must not be empty")),
            v => Ok(v),
        }
    }

    fn list(&self, key: &str) -> Vec<String> {
        self.get(key).map(parse_list).unwrap_or_default()
    }

    fn non_empty_list(&self, key: &str) -> Result<Vec<String>> {
        let list = parse_list(self.required(key)?);
        if list.is_empty() || list.iter().any(String::is_empty) {
            return Err(self.invalid(key, "must list one or more non-empty names"));
        }
        Ok(list)
    }

    fn regex(&self, key: &str, pattern: &str) -> Result<Regex> {
        Regex::new(pattern).map_err(|e| self.invalid(key, format!("not a regular expression: {e}")))
    }

    /// `pattern` matching only whole strings, as Java's `Matcher.matches()`.
    fn whole_regex(&self, key: &str, pattern: &str) -> Result<Regex> {
        self.regex(key, pattern)?;
        self.regex(key, &format!(r"\A(?:{pattern})\z"))
    }
}

fn build_transform(keys: &Keys<'_>) -> Result<Box<dyn Transform>> {
    let class = keys.required("type")?;
    let short = class.strip_prefix(TRANSFORMS_PACKAGE).unwrap_or(class);
    let (base, side) = match short.split_once('$') {
        Some((base, "Key")) => (base, Some(Side::Key)),
        Some((base, "Value")) => (base, Some(Side::Value)),
        _ => (short, None),
    };
    Ok(match (base, side) {
        ("InsertField", Some(side)) => Box::new(InsertField::configure(keys, side)?),
        ("ReplaceField", Some(side)) => Box::new(ReplaceField::configure(keys, side)?),
        ("MaskField", Some(side)) => Box::new(MaskField::configure(keys, side)?),
        ("ExtractField", Some(side)) => Box::new(ExtractField::configure(keys, side)?),
        ("ValueToKey", None) => Box::new(ValueToKey::configure(keys)?),
        ("RegexRouter", None) => Box::new(RegexRouter::configure(keys)?),
        ("TimestampRouter", None) => Box::new(TimestampRouter::configure(keys)?),
        ("Filter", None) => Box::new(Filter),
        _ => {
            return Err(keys.invalid(
                "type",
                format!("unknown transform '{class}' (known: {KNOWN_TRANSFORMS})"),
            ));
        }
    })
}

fn build_predicate(keys: &Keys<'_>) -> Result<Arc<dyn Predicate>> {
    let class = keys.required("type")?;
    Ok(
        match class.strip_prefix(PREDICATES_PACKAGE).unwrap_or(class) {
            "TopicNameMatches" => {
                let pattern = keys.non_empty("pattern")?;
                Arc::new(TopicNameMatches(keys.whole_regex("pattern", pattern)?))
            }
            "HasHeaderKey" => Arc::new(HasHeaderKey(keys.non_empty("name")?.to_string())),
            "RecordIsTombstone" => Arc::new(RecordIsTombstone),
            _ => {
                return Err(keys.invalid(
                    "type",
                    format!(
                        "unknown predicate '{class}' (known: TopicNameMatches, HasHeaderKey, \
                     RecordIsTombstone)"
                    ),
                ));
            }
        },
    )
}

/// A transform applied only where its predicate holds (or, negated, where it does not).
struct Conditional {
    transform: Box<dyn Transform>,
    predicate: Arc<dyn Predicate>,
    negate: bool,
}

impl Transform for Conditional {
    fn apply(&mut self, record: ConnectRecord) -> Result<Option<ConnectRecord>> {
        if self.negate ^ self.predicate.test(&record) {
            self.transform.apply(record)
        } else {
            Ok(Some(record))
        }
    }
}
