//! The field transforms (`InsertField`, `ReplaceField`, `MaskField`, `ValueToKey`,
//! `ExtractField`) and the helpers they share for reading and rebuilding a key or value.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use bytes::Bytes;

use crate::connect::ConnectRecord;
use crate::connect::data::{Field, Schema, SchemaType, Value, data_error};
use crate::error::{Error, Result};

use super::{Keys, Transform};

const DECIMAL_SCHEMA_NAME: &str = "org.apache.kafka.connect.data.Decimal";
const LOGICAL_PREFIX: &str = "org.apache.kafka.connect.data.";

/// The part of a record a `$Key` / `$Value` transform works on.
#[derive(Clone, Copy)]
pub(super) enum Side {
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
    (
        schema.take().map(Arc::unwrap_or_clone),
        std::mem::replace(value, Value::Null),
    )
}

fn set_operand(record: &mut ConnectRecord, side: Side, schema: Option<Schema>, value: Value) {
    match side {
        Side::Key => (record.key_schema, record.key) = (schema.map(Arc::new), value),
        Side::Value => (record.value_schema, record.value) = (schema.map(Arc::new), value),
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

fn into_struct(schema: &Schema, value: Value, purpose: &str) -> Result<Vec<(Arc<str>, Value)>> {
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
fn take_field(values: &mut [(Arc<str>, Value)], field: &Field) -> Value {
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
    if fields.iter().any(|f| &*f.name == name) {
        return Err(data_error(format!(
            "cannot create field '{name}': the schema already has a field of that name"
        )));
    }
    fields.push(Field {
        name: name.into(),
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
pub(super) struct InsertField {
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

    pub(super) fn configure(keys: &Keys<'_>, side: Side) -> Result<Self> {
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
            values.push((ins.name.as_str().into(), value));
        }
        let schema = struct_like(&schema, fields);
        set_operand(&mut record, self.side, Some(schema), Value::Struct(values));
        Ok(Some(record))
    }
}

/// `ReplaceField$Key` / `$Value`: keeps, drops and renames fields.
pub(super) struct ReplaceField {
    side: Side,
    exclude: BTreeSet<String>,
    include: BTreeSet<String>,
    renames: BTreeMap<String, String>,
}

impl ReplaceField {
    const PURPOSE: &str = "field replacement";

    pub(super) fn configure(keys: &Keys<'_>, side: Side) -> Result<Self> {
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
                values.push((new_name.into(), take_field(&mut old, f)));
            }
        }
        let schema = struct_like(&schema, fields);
        set_operand(&mut record, self.side, Some(schema), Value::Struct(values));
        Ok(Some(record))
    }
}

/// `MaskField$Key` / `$Value`: replaces fields' values with their type's empty value, or with
/// a configured replacement.
pub(super) struct MaskField {
    side: Side,
    fields: Vec<String>,
    replacement: Option<String>,
}

impl MaskField {
    const PURPOSE: &str = "mask fields";

    pub(super) fn configure(keys: &Keys<'_>, side: Side) -> Result<Self> {
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
            let value = if self.fields.iter().any(|m| *m == *f.name) {
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
pub(super) struct ValueToKey {
    fields: Vec<String>,
}

impl ValueToKey {
    pub(super) fn configure(keys: &Keys<'_>) -> Result<Self> {
        Ok(ValueToKey {
            fields: keys.non_empty_list("fields")?,
        })
    }
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
            let value = values.iter().find(|(n, _)| **n == **name).map(|(_, v)| v);
            let value = match (value, &field.schema.default) {
                (None | Some(Value::Null), Some(default)) => (**default).clone(),
                (v, _) => v.cloned().unwrap_or(Value::Null),
            };
            key_values.push((Arc::clone(&field.name), value));
        }
        record.key_schema = Some(Arc::new(Schema::structure(key_fields)));
        record.key = Value::Struct(key_values);
        Ok(Some(record))
    }
}

/// `ExtractField$Key` / `$Value`: the key or value becomes one of its fields (and its schema).
pub(super) struct ExtractField {
    side: Side,
    field: String,
}

impl ExtractField {
    pub(super) fn configure(keys: &Keys<'_>, side: Side) -> Result<Self> {
        Ok(ExtractField {
            side,
            field: keys.required("field")?.to_string(),
        })
    }
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
