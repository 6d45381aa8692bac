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
//! Each field transform works on schemaless data (a [`Value::Map`] with string keys and no
//! schema) and on structs with a schema, whose new schema it builds as Kafka's do. Regular
//! expressions are the `regex` crate's, which has no look-around or back-references; a
//! pattern it cannot compile is a configuration error.
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
use std::fmt::Write as _;
use std::sync::Arc;

use bytes::Bytes;
use regex::Regex;

use crate::error::{Error, Result};

use super::ConnectRecord;
use super::data::{Field, Schema, SchemaType, Value, data_error};

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
const DECIMAL_SCHEMA_NAME: &str = "org.apache.kafka.connect.data.Decimal";
const LOGICAL_PREFIX: &str = "org.apache.kafka.connect.data.";

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
        ("ExtractField", Some(side)) => Box::new(ExtractField {
            side,
            field: keys.required("field")?.to_string(),
        }),
        ("ValueToKey", None) => Box::new(ValueToKey {
            fields: keys.non_empty_list("fields")?,
        }),
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

struct TopicNameMatches(Regex);

impl Predicate for TopicNameMatches {
    fn test(&self, record: &ConnectRecord) -> bool {
        self.0.is_match(&record.topic)
    }
}

struct HasHeaderKey(String);

impl Predicate for HasHeaderKey {
    fn test(&self, record: &ConnectRecord) -> bool {
        record.has_header(&self.0)
    }
}

struct RecordIsTombstone;

impl Predicate for RecordIsTombstone {
    fn test(&self, record: &ConnectRecord) -> bool {
        record.value.is_null()
    }
}

/// The part of a record a `$Key` / `$Value` transform works on.
#[derive(Clone, Copy)]
enum Side {
    Key,
    Value,
}

fn operand(record: &ConnectRecord, side: Side) -> &Value {
    match side {
        Side::Key => &record.key,
        Side::Value => &record.value,
    }
}

/// Moves the side's schema and value out of `record` (leaving none and null).
fn take_operand(record: &mut ConnectRecord, side: Side) -> (Option<Schema>, Value) {
    let (schema, value) = match side {
        Side::Key => (&mut record.key_schema, &mut record.key),
        Side::Value => (&mut record.value_schema, &mut record.value),
    };
    (schema.take(), std::mem::replace(value, Value::Null))
}

fn set_operand(record: &mut ConnectRecord, side: Side, schema: Option<Schema>, value: Value) {
    match side {
        Side::Key => (record.key_schema, record.key) = (schema, value),
        Side::Value => (record.value_schema, record.value) = (schema, value),
    }
}

fn kind_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Boolean(_) => "a boolean",
        Value::Int(_) => "an integer",
        Value::Float(_) => "a floating-point number",
        Value::String(_) => "a string",
        Value::Bytes(_) => "bytes",
        Value::Array(_) => "an array",
        Value::Map(_) => "a map",
        Value::Struct(_) => "a struct",
    }
}

fn not_a_map(purpose: &str, value: &Value) -> Error {
    data_error(format!(
        "only a map is supported without a schema for [{purpose}], found {}",
        kind_name(value)
    ))
}

fn not_a_struct(purpose: &str, value: &Value) -> Error {
    data_error(format!(
        "only a struct is supported for [{purpose}], found {}",
        kind_name(value)
    ))
}

fn into_map(value: Value, purpose: &str) -> Result<Vec<(Value, Value)>> {
    match value {
        Value::Map(entries) => Ok(entries),
        other => Err(not_a_map(purpose, &other)),
    }
}

fn into_struct(schema: &Schema, value: Value, purpose: &str) -> Result<Vec<(String, Value)>> {
    match value {
        Value::Struct(fields) if schema.kind == SchemaType::Struct => Ok(fields),
        other => Err(not_a_struct(purpose, &other)),
    }
}

/// A schemaless map's entry for `name`, moved out (null left behind), or null.
fn take_entry(entries: &mut [(Value, Value)], name: &str) -> Value {
    entries
        .iter_mut()
        .find(|(k, _)| matches!(k, Value::String(s) if s == name))
        .map_or(Value::Null, |(_, v)| std::mem::replace(v, Value::Null))
}

/// Sets a schemaless map's `name` entry, in place when present (as Java's `Map.put`).
fn put_entry(entries: &mut Vec<(Value, Value)>, name: &str, value: Value) {
    let existing = entries
        .iter_mut()
        .find(|(k, _)| matches!(k, Value::String(s) if s == name));
    match existing {
        Some((_, v)) => *v = value,
        None => entries.push((Value::String(name.to_string()), value)),
    }
}

/// A struct's value of `field`, moved out; a null gives the field's default, as Kafka's
/// `Struct.get` (and its transforms' default `replace.null.with.default=true`).
fn take_field(values: &mut [(String, Value)], field: &Field) -> Value {
    let value = values
        .iter_mut()
        .find(|(n, _)| *n == field.name)
        .map_or(Value::Null, |(_, v)| std::mem::replace(v, Value::Null));
    match (&value, &field.schema.default) {
        (Value::Null, Some(default)) => (**default).clone(),
        _ => value,
    }
}

/// A struct schema with `source`'s name, version, doc and parameters (Kafka's
/// `SchemaUtil.copySchemaBasics`) and `fields`. Like Kafka's, it is required.
fn struct_like(source: &Schema, fields: Vec<Field>) -> Schema {
    Schema {
        name: source.name.clone(),
        version: source.version,
        doc: source.doc.clone(),
        parameters: source.parameters.clone(),
        ..Schema::structure(fields)
    }
}

/// Adds a field to a schema being built, refusing a second field of the same name as Kafka's
/// `SchemaBuilder` does.
fn push_field(fields: &mut Vec<Field>, name: &str, schema: Schema) -> Result<()> {
    if fields.iter().any(|f| f.name == name) {
        return Err(data_error(format!(
            "cannot create field '{name}': the schema already has a field of that name"
        )));
    }
    fields.push(Field {
        name: name.to_string(),
        schema,
    });
    Ok(())
}

/// A field InsertField adds: its name and whether it may be null.
struct Insertion {
    name: String,
    optional: bool,
}

impl Insertion {
    fn configure(keys: &Keys<'_>, key: &str) -> Result<Option<Insertion>> {
        let Some(spec) = keys.get(key) else {
            return Ok(None);
        };
        let (name, optional) = if let Some(name) = spec.strip_suffix('?') {
            (name, true)
        } else if let Some(name) = spec.strip_suffix('!') {
            (name, false)
        } else {
            (spec, true)
        };
        if name.is_empty() {
            return Err(keys.invalid(key, "names no field"));
        }
        Ok(Some(Insertion {
            name: name.to_string(),
            optional,
        }))
    }
}

/// `InsertField$Key` / `$Value`: adds the record's topic, partition, offset, timestamp and a
/// static string as fields.
struct InsertField {
    side: Side,
    topic: Option<Insertion>,
    partition: Option<Insertion>,
    offset: Option<Insertion>,
    timestamp: Option<Insertion>,
    static_field: Option<Insertion>,
    static_value: String,
}

impl InsertField {
    const PURPOSE: &str = "field insertion";

    fn configure(keys: &Keys<'_>, side: Side) -> Result<Self> {
        let t = InsertField {
            side,
            topic: Insertion::configure(keys, "topic.field")?,
            partition: Insertion::configure(keys, "partition.field")?,
            offset: Insertion::configure(keys, "offset.field")?,
            timestamp: Insertion::configure(keys, "timestamp.field")?,
            static_field: Insertion::configure(keys, "static.field")?,
            static_value: keys.get("static.value").unwrap_or_default().to_string(),
        };
        if t.static_field.is_some() && keys.get("static.value").is_none() {
            return Err(keys.invalid("static.value", "is required with static.field"));
        }
        let any = [
            &t.topic,
            &t.partition,
            &t.offset,
            &t.timestamp,
            &t.static_field,
        ]
        .iter()
        .any(|i| i.is_some());
        if !any {
            return Err(keys.invalid(
                "type",
                "InsertField needs one or more of topic.field, partition.field, offset.field, \
                 timestamp.field, static.field",
            ));
        }
        Ok(t)
    }

    /// The configured fields with their schemas and this record's values (`None` where the
    /// record has none: no partition, no timestamp, a source record's offset).
    fn insertions(&self, record: &ConnectRecord) -> Vec<(&Insertion, Schema, Option<Value>)> {
        let string = || Schema::of(SchemaType::String);
        [
            (
                &self.topic,
                string(),
                Some(Value::String(record.topic.clone())),
            ),
            (
                &self.partition,
                Schema::of(SchemaType::Int32),
                record.partition.map(|p| Value::Int(p.into())),
            ),
            (
                &self.offset,
                Schema::of(SchemaType::Int64),
                record.offset.map(Value::Int),
            ),
            (
                &self.timestamp,
                Schema::timestamp(),
                record.timestamp.map(Value::Int),
            ),
            (
                &self.static_field,
                string(),
                Some(Value::String(self.static_value.clone())),
            ),
        ]
        .into_iter()
        .filter_map(|(ins, schema, value)| ins.as_ref().map(|i| (i, schema, value)))
        .collect()
    }
}

impl Transform for InsertField {
    fn apply(&mut self, mut record: ConnectRecord) -> Result<Option<ConnectRecord>> {
        if operand(&record, self.side).is_null() {
            return Ok(Some(record));
        }
        if let Some(offset) = &self.offset
            && !offset.optional
            && record.offset.is_none()
        {
            return Err(data_error(format!(
                "cannot fill required field '{}' with an offset: only sink records have one",
                offset.name
            )));
        }
        let insertions = self.insertions(&record);
        let (schema, value) = take_operand(&mut record, self.side);
        let Some(schema) = schema else {
            let mut entries = into_map(value, Self::PURPOSE)?;
            for (ins, _, value) in insertions {
                if let Some(value) = value {
                    put_entry(&mut entries, &ins.name, value);
                }
            }
            set_operand(&mut record, self.side, None, Value::Map(entries));
            return Ok(Some(record));
        };
        let mut old = into_struct(&schema, value, Self::PURPOSE)?;
        let mut fields = Vec::with_capacity(schema.fields.len() + insertions.len());
        let mut values = Vec::with_capacity(fields.capacity());
        for f in &schema.fields {
            values.push((f.name.clone(), take_field(&mut old, f)));
            fields.push(f.clone());
        }
        for (ins, field_schema, value) in insertions {
            let value = match value {
                Some(v) => v,
                None if ins.optional => Value::Null,
                None => {
                    return Err(data_error(format!(
                        "required field '{}' has no value in this record",
                        ins.name
                    )));
                }
            };
            let field_schema = if ins.optional {
                field_schema.optional()
            } else {
                field_schema
            };
            push_field(&mut fields, &ins.name, field_schema)?;
            values.push((ins.name.clone(), value));
        }
        let schema = struct_like(&schema, fields);
        set_operand(&mut record, self.side, Some(schema), Value::Struct(values));
        Ok(Some(record))
    }
}

/// `ReplaceField$Key` / `$Value`: keeps, drops and renames fields.
struct ReplaceField {
    side: Side,
    exclude: BTreeSet<String>,
    include: BTreeSet<String>,
    renames: BTreeMap<String, String>,
}

impl ReplaceField {
    const PURPOSE: &str = "field replacement";

    fn configure(keys: &Keys<'_>, side: Side) -> Result<Self> {
        // `blacklist` and `whitelist` are the deprecated names; the new ones win.
        let exclude = keys.get("exclude").map_or("blacklist", |_| "exclude");
        let include = keys.get("include").map_or("whitelist", |_| "include");
        let mut renames = BTreeMap::new();
        for mapping in keys.list("renames") {
            match mapping.split(':').collect::<Vec<_>>().as_slice() {
                [old, new] if !old.is_empty() && !new.is_empty() => {
                    renames.insert((*old).to_string(), (*new).to_string());
                }
                _ => {
                    return Err(keys.invalid(
                        "renames",
                        format!("invalid rename mapping '{mapping}' (expected old:new)"),
                    ));
                }
            }
        }
        Ok(ReplaceField {
            side,
            exclude: keys.list(exclude).into_iter().collect(),
            include: keys.list(include).into_iter().collect(),
            renames,
        })
    }

    /// The name a kept field gets, or `None` for a dropped one.
    fn replaced<'n>(&'n self, name: &'n str) -> Option<&'n str> {
        let kept = !self.exclude.contains(name)
            && (self.include.is_empty() || self.include.contains(name));
        kept.then(|| self.renames.get(name).map_or(name, String::as_str))
    }
}

impl Transform for ReplaceField {
    fn apply(&mut self, mut record: ConnectRecord) -> Result<Option<ConnectRecord>> {
        if operand(&record, self.side).is_null() {
            return Ok(Some(record));
        }
        let (schema, value) = take_operand(&mut record, self.side);
        let Some(schema) = schema else {
            let mut entries = Vec::new();
            for (k, v) in into_map(value, Self::PURPOSE)? {
                let Value::String(name) = &k else {
                    return Err(data_error(format!(
                        "a schemaless field name must be a string, found {}",
                        kind_name(&k)
                    )));
                };
                if let Some(new_name) = self.replaced(name) {
                    put_entry(&mut entries, new_name, v);
                }
            }
            set_operand(&mut record, self.side, None, Value::Map(entries));
            return Ok(Some(record));
        };
        let mut old = into_struct(&schema, value, Self::PURPOSE)?;
        let mut fields = Vec::new();
        let mut values = Vec::new();
        for f in &schema.fields {
            if let Some(new_name) = self.replaced(&f.name) {
                push_field(&mut fields, new_name, f.schema.clone())?;
                values.push((new_name.to_string(), take_field(&mut old, f)));
            }
        }
        let schema = struct_like(&schema, fields);
        set_operand(&mut record, self.side, Some(schema), Value::Struct(values));
        Ok(Some(record))
    }
}

/// `MaskField$Key` / `$Value`: replaces fields' values with their type's empty value, or with
/// a configured replacement.
struct MaskField {
    side: Side,
    fields: Vec<String>,
    replacement: Option<String>,
}

impl MaskField {
    const PURPOSE: &str = "mask fields";

    fn configure(keys: &Keys<'_>, side: Side) -> Result<Self> {
        let mut fields = keys.non_empty_list("fields")?;
        let mut seen = BTreeSet::new();
        fields.retain(|f| seen.insert(f.clone()));
        let replacement = match keys.get("replacement") {
            Some("") => return Err(keys.invalid("replacement", "must not be empty")),
            r => r.map(String::from),
        };
        Ok(MaskField {
            side,
            fields,
            replacement,
        })
    }

    /// `value` masked; `schema` is the field's, when there is one (else the value's own type
    /// decides, as Kafka's schemaless masking goes by the Java class).
    fn mask(&self, value: &Value, schema: Option<&Schema>) -> Result<Value> {
        use SchemaType as T;
        let kind = match (schema, value) {
            (_, Value::Null) => return Ok(Value::Null),
            (Some(s), _) => s.kind,
            (None, Value::Boolean(_)) => T::Boolean,
            (None, Value::Int(_)) => T::Int64,
            (None, Value::Float(_)) => T::Float64,
            (None, Value::String(_)) => T::String,
            (None, Value::Bytes(_)) => T::Bytes,
            (None, Value::Array(_)) => T::Array,
            (None, Value::Map(_)) => T::Map,
            (None, Value::Struct(_)) => T::Struct,
        };
        let logical = schema.and_then(|s| s.name.as_deref());
        let Some(r) = &self.replacement else {
            return Ok(match kind {
                T::Boolean => Value::Boolean(false),
                T::Float32 | T::Float64 => Value::Float(0.0),
                T::String => Value::String(String::new()),
                // A Decimal's zero is one byte of unscaled value 0.
                T::Bytes if logical == Some(DECIMAL_SCHEMA_NAME) => {
                    Value::Bytes(Bytes::from_static(&[0]))
                }
                T::Bytes => Value::Bytes(Bytes::new()),
                T::Array => Value::Array(Vec::new()),
                T::Map => Value::Map(Vec::new()),
                T::Struct => return Err(data_error("cannot mask a struct value".to_string())),
                T::Int8 | T::Int16 | T::Int32 | T::Int64 => Value::Int(0),
            });
        };
        let unparsable = || {
            data_error(format!(
                "cannot convert replacement '{r}' to {}",
                kind.json_name()
            ))
        };
        Ok(match kind {
            _ if logical.is_some_and(|n| n.starts_with(LOGICAL_PREFIX)) => {
                return Err(data_error(format!(
                    "cannot mask a {} value with a custom replacement",
                    logical.unwrap_or_default()
                )));
            }
            T::String => Value::String(r.clone()),
            T::Int8 | T::Int16 | T::Int32 | T::Int64 => {
                let i: i64 = r.parse().map_err(|_| unparsable())?;
                let fits = match kind {
                    T::Int8 => i8::try_from(i).is_ok(),
                    T::Int16 => i16::try_from(i).is_ok(),
                    T::Int32 => i32::try_from(i).is_ok(),
                    _ => true,
                };
                if !fits {
                    return Err(unparsable());
                }
                Value::Int(i)
            }
            T::Float32 => Value::Float(r.parse::<f32>().map_err(|_| unparsable())?.into()),
            T::Float64 => Value::Float(r.parse().map_err(|_| unparsable())?),
            _ => {
                return Err(data_error(format!(
                    "cannot mask {} with a custom replacement",
                    kind_name(value)
                )));
            }
        })
    }
}

impl Transform for MaskField {
    fn apply(&mut self, mut record: ConnectRecord) -> Result<Option<ConnectRecord>> {
        // No tombstone shortcut: Kafka's MaskField refuses a null key or value too.
        let (schema, value) = take_operand(&mut record, self.side);
        let Some(schema) = schema else {
            let mut entries = into_map(value, Self::PURPOSE)?;
            for name in &self.fields {
                // A field the map lacks is added as null, as Kafka's `put(field, masked(null))`.
                let masked = self.mask(&take_entry(&mut entries, name), None)?;
                put_entry(&mut entries, name, masked);
            }
            set_operand(&mut record, self.side, None, Value::Map(entries));
            return Ok(Some(record));
        };
        let mut old = into_struct(&schema, value, Self::PURPOSE)?;
        let mut values = Vec::with_capacity(schema.fields.len());
        for f in &schema.fields {
            let value = take_field(&mut old, f);
            let value = if self.fields.contains(&f.name) {
                self.mask(&value, Some(&f.schema))?
            } else {
                value
            };
            values.push((f.name.clone(), value));
        }
        set_operand(&mut record, self.side, Some(schema), Value::Struct(values));
        Ok(Some(record))
    }
}

/// `ValueToKey`: the key becomes a struct (or, schemaless, a map) of some of the value's fields.
struct ValueToKey {
    fields: Vec<String>,
}

impl Transform for ValueToKey {
    fn apply(&mut self, mut record: ConnectRecord) -> Result<Option<ConnectRecord>> {
        const PURPOSE: &str = "copying fields from value to key";
        let Some(schema) = &record.value_schema else {
            let Value::Map(entries) = &record.value else {
                return Err(not_a_map(PURPOSE, &record.value));
            };
            // Schemaless, a field the value lacks is a null in the key, as Kafka's.
            let key = self
                .fields
                .iter()
                .map(|name| {
                    let value = entries
                        .iter()
                        .find(|(k, _)| matches!(k, Value::String(s) if s == name))
                        .map_or(Value::Null, |(_, v)| v.clone());
                    (Value::String(name.clone()), value)
                })
                .collect();
            record.key_schema = None;
            record.key = Value::Map(key);
            return Ok(Some(record));
        };
        let (Value::Struct(values), SchemaType::Struct) = (&record.value, schema.kind) else {
            return Err(not_a_struct(PURPOSE, &record.value));
        };
        let mut key_fields = Vec::with_capacity(self.fields.len());
        let mut key_values = Vec::with_capacity(self.fields.len());
        for name in &self.fields {
            let field = schema
                .field(name)
                .ok_or_else(|| data_error(format!("field does not exist: {name}")))?;
            push_field(&mut key_fields, name, field.schema.clone())?;
            let value = values.iter().find(|(n, _)| n == name).map(|(_, v)| v);
            let value = match (value, &field.schema.default) {
                (None | Some(Value::Null), Some(default)) => (**default).clone(),
                (v, _) => v.cloned().unwrap_or(Value::Null),
            };
            key_values.push((name.clone(), value));
        }
        record.key_schema = Some(Schema::structure(key_fields));
        record.key = Value::Struct(key_values);
        Ok(Some(record))
    }
}

/// `ExtractField$Key` / `$Value`: the key or value becomes one of its fields (and its schema).
struct ExtractField {
    side: Side,
    field: String,
}

impl Transform for ExtractField {
    fn apply(&mut self, mut record: ConnectRecord) -> Result<Option<ConnectRecord>> {
        const PURPOSE: &str = "field extraction";
        let (schema, value) = take_operand(&mut record, self.side);
        let (schema, value) = match schema {
            None => match value {
                Value::Null => (None, Value::Null),
                Value::Map(mut entries) => (None, take_entry(&mut entries, &self.field)),
                other => return Err(not_a_map(PURPOSE, &other)),
            },
            Some(schema) => {
                if schema.kind != SchemaType::Struct {
                    return Err(data_error(format!(
                        "cannot look up field '{}' in a {} schema",
                        self.field,
                        schema.kind.json_name()
                    )));
                }
                let field = schema
                    .field(&self.field)
                    .ok_or_else(|| data_error(format!("unknown field: {}", self.field)))?;
                let value = match value {
                    Value::Null => Value::Null,
                    Value::Struct(mut values) => take_field(&mut values, field),
                    other => return Err(not_a_struct(PURPOSE, &other)),
                };
                (Some(field.schema.clone()), value)
            }
        };
        set_operand(&mut record, self.side, schema, value);
        Ok(Some(record))
    }
}

/// A piece of a Java replacement string: text, or a capture group's index.
enum Piece {
    Text(String),
    Group(usize),
}

/// `RegexRouter`: a topic the regex matches whole is renamed to the replacement.
struct RegexRouter {
    whole: Regex,
    find: Regex,
    replacement: Vec<Piece>,
}

impl RegexRouter {
    fn configure(keys: &Keys<'_>) -> Result<Self> {
        let pattern = keys.required("regex")?;
        let find = keys.regex("regex", pattern)?;
        let whole = keys.whole_regex("regex", pattern)?;
        let replacement = parse_replacement(keys.required("replacement")?, &find)
            .map_err(|reason| keys.invalid("replacement", reason))?;
        Ok(RegexRouter {
            whole,
            find,
            replacement,
        })
    }
}

impl Transform for RegexRouter {
    fn apply(&mut self, mut record: ConnectRecord) -> Result<Option<ConnectRecord>> {
        if !self.whole.is_match(&record.topic) {
            return Ok(Some(record));
        }
        // Java's `matches()` then `replaceFirst()`: the replacement takes the place of the
        // first match a fresh search finds, which for `a|ab` on "ab" is just "a".
        if let Some(caps) = self.find.captures(&record.topic)
            && let Some(m) = caps.get(0)
        {
            let mut topic = record
                .topic
                .get(..m.start())
                .unwrap_or_default()
                .to_string();
            for piece in &self.replacement {
                match piece {
                    Piece::Text(t) => topic.push_str(t),
                    Piece::Group(i) => topic.push_str(caps.get(*i).map_or("", |g| g.as_str())),
                }
            }
            topic.push_str(record.topic.get(m.end()..).unwrap_or_default());
            record.topic = topic;
        }
        Ok(Some(record))
    }
}

/// A replacement in Java's `Matcher` syntax: `$n` (digits taken while they name a group),
/// `${name}`, and `\` quoting the next character. Group references are checked here, so a
/// route cannot fail on a record.
fn parse_replacement(text: &str, regex: &Regex) -> std::result::Result<Vec<Piece>, String> {
    let groups = regex.captures_len().saturating_sub(1);
    let mut pieces = Vec::new();
    let mut literal = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => literal.push(chars.next().ok_or("ends with an unescaped '\\'")?),
            '$' => {
                let group = match chars.next() {
                    None => return Err("ends with '$' and no group".into()),
                    Some('{') => {
                        let mut name = String::new();
                        loop {
                            match chars.next() {
                                Some('}') => break,
                                Some(ch) => name.push(ch),
                                None => return Err(format!("'${{{name}' has no closing '}}'")),
                            }
                        }
                        regex
                            .capture_names()
                            .position(|n| n == Some(name.as_str()))
                            .ok_or_else(|| format!("the regex has no group named '{name}'"))?
                    }
                    Some(d) => {
                        let mut group = d
                            .to_digit(10)
                            .ok_or_else(|| format!("illegal group reference '${d}'"))?
                            as usize;
                        while let Some(next) = chars.peek().and_then(|ch| ch.to_digit(10)) {
                            let longer = group.saturating_mul(10).saturating_add(next as usize);
                            if longer > groups {
                                break;
                            }
                            group = longer;
                            chars.next();
                        }
                        if group > groups {
                            return Err(format!("the regex has no group {group}"));
                        }
                        group
                    }
                };
                if !literal.is_empty() {
                    pieces.push(Piece::Text(std::mem::take(&mut literal)));
                }
                pieces.push(Piece::Group(group));
            }
            _ => literal.push(c),
        }
    }
    if !literal.is_empty() {
        pieces.push(Piece::Text(literal));
    }
    Ok(pieces)
}

/// `TimestampRouter`: the topic becomes `topic.format` with `${topic}` and `${timestamp}`
/// (the record's timestamp in `timestamp.format`, UTC) filled in.
struct TimestampRouter {
    topic_format: String,
    timestamp_format: Vec<DatePart>,
}

impl TimestampRouter {
    fn configure(keys: &Keys<'_>) -> Result<Self> {
        let format = keys.get("timestamp.format").unwrap_or("yyyyMMdd");
        Ok(TimestampRouter {
            topic_format: keys
                .get("topic.format")
                .unwrap_or("${topic}-${timestamp}")
                .to_string(),
            timestamp_format: parse_date_format(format)
                .map_err(|reason| keys.invalid("timestamp.format", reason))?,
        })
    }
}

impl Transform for TimestampRouter {
    fn apply(&mut self, mut record: ConnectRecord) -> Result<Option<ConnectRecord>> {
        let Some(ts) = record.timestamp else {
            return Err(data_error(format!(
                "timestamp missing on a record for topic '{}'",
                record.topic
            )));
        };
        // Replaced in this order, as Kafka's: a topic containing `${timestamp}` gets it too.
        record.topic = self
            .topic_format
            .replace("${topic}", &record.topic)
            .replace("${timestamp}", &format_date(&self.timestamp_format, ts));
        Ok(Some(record))
    }
}

/// `Filter`: drops every record (with a predicate, the ones it matches).
struct Filter;

impl Transform for Filter {
    fn apply(&mut self, _record: ConnectRecord) -> Result<Option<ConnectRecord>> {
        Ok(None)
    }
}

/// A piece of a `SimpleDateFormat` pattern: literal text, or a letter repeated `n` times.
#[derive(Debug, PartialEq)]
enum DatePart {
    Text(String),
    Field(char, usize),
}

/// The pattern letters supported: era, year, week year, month, day, day of year, weekday,
/// am/pm, the four hour forms, minute, second, millisecond and the (always UTC) zone forms.
/// Week numbers (`w`, `W`, `F`) are refused rather than approximated.
const DATE_LETTERS: &str = "GyYMLdDEuaHkKhmsSzZX";

/// Parses a Java `SimpleDateFormat` pattern: ASCII letters are fields, `'…'` quotes text
/// (`''` is a quote), anything else is literal.
fn parse_date_format(pattern: &str) -> std::result::Result<Vec<DatePart>, String> {
    let mut parts = Vec::new();
    let mut text = String::new();
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\'' {
            if chars.next_if_eq(&'\'').is_some() {
                text.push('\'');
                continue;
            }
            loop {
                match chars.next() {
                    None => return Err("unterminated quote".into()),
                    Some('\'') if chars.next_if_eq(&'\'').is_some() => text.push('\''),
                    Some('\'') => break,
                    Some(ch) => text.push(ch),
                }
            }
        } else if c.is_ascii_alphabetic() {
            if !DATE_LETTERS.contains(c) {
                return Err(format!(
                    "pattern letter '{c}' is not supported (supported: {DATE_LETTERS})"
                ));
            }
            let mut count = 1;
            while chars.next_if_eq(&c).is_some() {
                count += 1;
            }
            if !text.is_empty() {
                parts.push(DatePart::Text(std::mem::take(&mut text)));
            }
            parts.push(DatePart::Field(c, count));
        } else {
            text.push(c);
        }
    }
    if !text.is_empty() {
        parts.push(DatePart::Text(text));
    }
    Ok(parts)
}

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const WEEKDAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];
const DAYS_BEFORE_MONTH: [i64; 12] = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334];
const MS_PER_DAY: i64 = 86_400_000;

/// `(year, month 1-12, day 1-31)` of a day count from 1970-01-01 in the proleptic Gregorian
/// calendar (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

/// `ms` since the epoch in `parts`, in UTC, as `SimpleDateFormat` writes it: numbers
/// zero-padded to the letter count (`yy` is the year's last two digits), three letters of a
/// month or weekday its short name, four or more its full name.
fn format_date(parts: &[DatePart], ms: i64) -> String {
    let days = ms.div_euclid(MS_PER_DAY);
    let ms_of_day = ms.rem_euclid(MS_PER_DAY);
    let (year, month, day) = civil_from_days(days);
    let leap = year.rem_euclid(4) == 0 && (year.rem_euclid(100) != 0 || year.rem_euclid(400) == 0);
    let month_index = (month - 1).clamp(0, 11) as usize;
    let day_of_year = DAYS_BEFORE_MONTH.get(month_index).copied().unwrap_or(0)
        + day
        + i64::from(leap && month > 2);
    // 1970-01-01 was a Thursday (index 3 from Monday).
    let weekday = (days + 3).rem_euclid(7) as usize;
    let hour = ms_of_day / 3_600_000;
    let twelve = if hour % 12 == 0 { 12 } else { hour % 12 };
    let year_of_era = if year > 0 { year } else { 1 - year };
    // `Y`, the week year, by the US week rules a JVM uses by default (weeks start on Sunday,
    // week 1 holds January 1): late December days in the week of next January 1 count as
    // next year. Confluent's TimestampRouter example uses `YYYYMM`.
    let days_to_saturday = if weekday == 6 { 6 } else { 5 - weekday as i64 };
    let week_year = year_of_era + i64::from(month == 12 && day + days_to_saturday > 31);
    let name = |names: &[&'static str], i: usize, n: usize| {
        let full = names.get(i).copied().unwrap_or_default();
        if n >= 4 {
            full
        } else {
            full.get(..3).unwrap_or(full)
        }
    };
    let mut out = String::new();
    for part in parts {
        let (letter, n) = match part {
            DatePart::Text(t) => {
                out.push_str(t);
                continue;
            }
            DatePart::Field(letter, n) => (*letter, *n),
        };
        let number = match letter {
            'G' => {
                out.push_str(if year > 0 { "AD" } else { "BC" });
                continue;
            }
            'y' if n == 2 => year_of_era % 100,
            'y' => year_of_era,
            'Y' if n == 2 => week_year % 100,
            'Y' => week_year,
            'M' | 'L' if n >= 3 => {
                out.push_str(name(&MONTHS, month_index, n));
                continue;
            }
            'M' | 'L' => month,
            'd' => day,
            'D' => day_of_year,
            'E' => {
                out.push_str(name(&WEEKDAYS, weekday, n));
                continue;
            }
            'u' => weekday as i64 + 1,
            'a' => {
                out.push_str(if hour < 12 { "AM" } else { "PM" });
                continue;
            }
            'H' => hour,
            'k' => {
                if hour == 0 {
                    24
                } else {
                    hour
                }
            }
            'K' => hour % 12,
            'h' => twelve,
            'm' => ms_of_day / 60_000 % 60,
            's' => ms_of_day / 1000 % 60,
            'S' => ms_of_day % 1000,
            'z' => {
                out.push_str(if n >= 4 {
                    "Coordinated Universal Time"
                } else {
                    "UTC"
                });
                continue;
            }
            'Z' => {
                out.push_str("+0000");
                continue;
            }
            'X' => {
                out.push('Z');
                continue;
            }
            _ => continue,
        };
        let _ = write!(out, "{number:0n$}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(pattern: &str, ms: i64) -> String {
        format_date(&parse_date_format(pattern).expect("pattern"), ms)
    }

    #[test]
    fn dates_format_as_simple_date_format_does_in_utc() {
        // 2024-02-29T13:05:09.007Z, a Thursday, day 60 of a leap year.
        let ms = 1_709_211_909_007;
        assert_eq!(date("yyyyMMdd", ms), "20240229");
        assert_eq!(
            date("yyyy-MM-dd'T'HH:mm:ss.SSSX", ms),
            "2024-02-29T13:05:09.007Z"
        );
        assert_eq!(date("yy/M/d h:m a", ms), "24/2/29 1:5 PM");
        assert_eq!(date("EEE, d MMM yyyy", ms), "Thu, 29 Feb 2024");
        assert_eq!(date("EEEE MMMM D u", ms), "Thursday February 60 4");
        assert_eq!(
            date("'o''clock' '' k K z Z G", ms),
            "o'clock ' 13 1 UTC +0000 AD"
        );
        assert_eq!(date("yyyyMMddHH", 0), "1970010100");
        // The week year: 2024-12-28 is a Saturday (still 2024), 2024-12-29 a Sunday whose week
        // holds 2025-01-01; 2023-01-01 is a Sunday, in week 1 of 2023.
        assert_eq!(date("YYYY-MM-dd", 1_735_344_000_000), "2024-12-28");
        assert_eq!(date("YYYY-MM-dd", 1_735_430_400_000), "2025-12-29");
        assert_eq!(date("YY yyyy", 1_672_531_200_000), "23 2023");
        assert_eq!(
            date("yyyy-MM-dd HH:mm:ss.SSS", -1),
            "1969-12-31 23:59:59.999"
        );
        // Extreme timestamps format without overflowing.
        assert!(!date("yyyyMMdd", i64::MIN).is_empty());
        assert!(!date("yyyyMMdd", i64::MAX).is_empty());
    }

    #[test]
    fn date_patterns_with_unsupported_letters_or_open_quotes_are_refused() {
        assert!(parse_date_format("yyyy-ww").is_err());
        assert!(parse_date_format("yyyy'MM").is_err());
        assert_eq!(
            parse_date_format("yy-MM").expect("pattern"),
            vec![
                DatePart::Field('y', 2),
                DatePart::Text("-".into()),
                DatePart::Field('M', 2)
            ]
        );
    }

    #[test]
    fn replacements_read_group_numbers_as_java_does() -> Result<()> {
        let re = Regex::new("(a)(b)(?<name>c)").map_err(|e| data_error(e.to_string()))?;
        let groups = |text: &str| -> Vec<String> {
            parse_replacement(text, &re)
                .expect("replacement")
                .iter()
                .map(|p| match p {
                    Piece::Text(t) => format!("'{t}'"),
                    Piece::Group(g) => g.to_string(),
                })
                .collect()
        };
        // `$31` is group 3 then "1": there is no group 31.
        assert_eq!(groups("x$31"), ["'x'", "3", "'1'"]);
        assert_eq!(groups(r"${name}\$1"), ["3", "'$1'"]);
        assert!(parse_replacement("$4", &re).is_err());
        assert!(parse_replacement("${nope}", &re).is_err());
        assert!(parse_replacement("$x", &re).is_err());
        assert!(parse_replacement("a\\", &re).is_err());
        assert!(parse_replacement("a$", &re).is_err());
        Ok(())
    }
}
