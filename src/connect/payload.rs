//! A value's JSON payload written and read straight from and to bytes, driven by its schema,
//! with no JSON tree between (`JsonConverter`'s hot path).
//!
//! [`Payload`] serializes a value as `JsonConverter` writes a payload; [`PayloadSeed`]
//! deserializes one. `data::value_to_json` and `data::value_from_json` use the same two over
//! a `serde_json::Value`, so the tree and the bytes cannot disagree.

use std::collections::HashMap;
use std::fmt;

use base64::Engine as _;
use bytes::Bytes;
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::ser::{self, Serialize, SerializeMap, SerializeSeq, SerializeTuple};

use super::data::{Field, Schema, SchemaType, Value};

/// `value` as `JsonConverter` writes its payload: with `schema`, checked against it (bytes in
/// base64, maps with keys that are not strings as arrays of pairs); without, schemaless JSON.
pub(crate) struct Payload<'a> {
    pub schema: Option<&'a Schema>,
    pub value: &'a Value,
}

fn mismatch(s: &Schema, what: &str) -> String {
    format!("{what} does not fit a {} schema", s.kind.json_name())
}

/// Whether `i` fits an integer type's width.
pub(crate) fn width_error(kind: SchemaType, i: i64) -> Option<String> {
    let fits = match kind {
        SchemaType::Int8 => i8::try_from(i).is_ok(),
        SchemaType::Int16 => i16::try_from(i).is_ok(),
        SchemaType::Int32 => i32::try_from(i).is_ok(),
        _ => true,
    };
    (!fits).then(|| format!("{i} does not fit an {} schema", kind.json_name()))
}

impl Serialize for Payload<'_> {
    fn serialize<S: ser::Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        let (schema, value) = (self.schema, self.value);
        let expect = |kinds: &[SchemaType], what: &str| match schema {
            Some(s) if !kinds.contains(&s.kind) => Err(ser::Error::custom(mismatch(s, what))),
            _ => Ok(()),
        };
        if let Some(s) = schema
            && value.is_null()
        {
            if let Some(d) = &s.default {
                return Payload {
                    schema: Some(s),
                    value: d,
                }
                .serialize(ser);
            }
            if !s.optional {
                return Err(ser::Error::custom(format!(
                    "a null value for a required {} schema",
                    s.kind.json_name()
                )));
            }
            return ser.serialize_unit();
        }
        match value {
            Value::Null => ser.serialize_unit(),
            Value::Boolean(b) => {
                expect(&[SchemaType::Boolean], "a boolean")?;
                ser.serialize_bool(*b)
            }
            Value::Int(i) => {
                if let Some(s) = schema {
                    if s.kind.is_integer() {
                        if let Some(e) = width_error(s.kind, *i) {
                            return Err(ser::Error::custom(e));
                        }
                    } else if !matches!(s.kind, SchemaType::Float32 | SchemaType::Float64) {
                        return Err(ser::Error::custom(mismatch(s, "an integer")));
                    }
                }
                ser.serialize_i64(*i)
            }
            Value::Float(f) => {
                expect(
                    &[SchemaType::Float32, SchemaType::Float64],
                    "a floating-point number",
                )?;
                // JSON has no NaN or infinity: serde_json writes them as null.
                ser.serialize_f64(*f)
            }
            Value::String(s) => {
                expect(&[SchemaType::String], "a string")?;
                ser.serialize_str(s)
            }
            Value::Bytes(b) => {
                expect(&[SchemaType::Bytes], "bytes")?;
                ser.serialize_str(&base64::engine::general_purpose::STANDARD.encode(b))
            }
            Value::Array(items) => {
                expect(&[SchemaType::Array], "an array")?;
                let item = schema.and_then(|s| s.value_schema.as_deref());
                let mut seq = ser.serialize_seq(Some(items.len()))?;
                for v in items {
                    seq.serialize_element(&Payload {
                        schema: item,
                        value: v,
                    })?;
                }
                seq.end()
            }
            Value::Map(entries) => {
                expect(&[SchemaType::Map], "a map")?;
                let ks = schema.and_then(|s| s.key_schema.as_deref());
                let vs = schema.and_then(|s| s.value_schema.as_deref());
                let string_keys = match ks {
                    Some(k) => k.kind == SchemaType::String,
                    None => entries.iter().all(|(k, _)| matches!(k, Value::String(_))),
                };
                if string_keys {
                    let mut m = ser.serialize_map(Some(entries.len()))?;
                    for (k, v) in entries {
                        let Value::String(k) = k else {
                            return Err(ser::Error::custom("a map key is not a string"));
                        };
                        m.serialize_entry(
                            k,
                            &Payload {
                                schema: vs,
                                value: v,
                            },
                        )?;
                    }
                    m.end()
                } else {
                    let mut seq = ser.serialize_seq(Some(entries.len()))?;
                    for (k, v) in entries {
                        seq.serialize_element(&Pair(
                            Payload {
                                schema: ks,
                                value: k,
                            },
                            Payload {
                                schema: vs,
                                value: v,
                            },
                        ))?;
                    }
                    seq.end()
                }
            }
            Value::Struct(fields) => {
                if let Some(s) = schema {
                    if s.kind != SchemaType::Struct {
                        return Err(ser::Error::custom(mismatch(s, "a struct")));
                    }
                    let mut m = ser.serialize_map(Some(s.fields.len()))?;
                    for (i, f) in s.fields.iter().enumerate() {
                        // Values are usually in the schema's order: look there first.
                        let v = match fields.get(i) {
                            Some((k, v)) if *k == f.name => v,
                            _ => fields
                                .iter()
                                .find(|(k, _)| *k == f.name)
                                .map_or(&Value::Null, |(_, v)| v),
                        };
                        m.serialize_entry(
                            &*f.name,
                            &Payload {
                                schema: Some(&f.schema),
                                value: v,
                            },
                        )?;
                    }
                    return m.end();
                }
                // Schemaless: the fields as they are.
                let mut m = ser.serialize_map(Some(fields.len()))?;
                for (k, v) in fields {
                    m.serialize_entry(
                        &**k,
                        &Payload {
                            schema: None,
                            value: v,
                        },
                    )?;
                }
                m.end()
            }
        }
    }
}

/// A map entry as a two-element array.
struct Pair<'a>(Payload<'a>, Payload<'a>);

impl Serialize for Pair<'_> {
    fn serialize<S: ser::Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        let mut t = ser.serialize_tuple(2)?;
        t.serialize_element(&self.0)?;
        t.serialize_element(&self.1)?;
        t.end()
    }
}

/// Reads a payload as a value: with a schema, as `JsonConverter` reads an envelope's payload;
/// without, schemaless (integers as `int64`, other numbers as `double`, objects as maps).
#[derive(Clone, Copy)]
pub(crate) struct PayloadSeed<'a>(pub Option<&'a Schema>);

impl PayloadSeed<'_> {
    fn wrong<E: de::Error>(self, found: &str) -> E {
        let kind = self.0.map_or("schemaless", |s| s.kind.json_name());
        E::custom(format!("JSON {found} does not fit a {kind} schema"))
    }

    /// The value a JSON null (or a missing struct field) stands for.
    pub(crate) fn null<E: de::Error>(self) -> Result<Value, E> {
        match self.0 {
            None => Ok(Value::Null),
            Some(s) => match &s.default {
                Some(d) => Ok((**d).clone()),
                None if s.optional => Ok(Value::Null),
                None => Err(E::custom(format!(
                    "a null for a required {} schema",
                    s.kind.json_name()
                ))),
            },
        }
    }
}

impl<'de> DeserializeSeed<'de> for PayloadSeed<'_> {
    type Value = Value;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for PayloadSeed<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            None => f.write_str("JSON"),
            Some(s) => write!(f, "JSON for a {} schema", s.kind.json_name()),
        }
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        self.null()
    }

    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        self.null()
    }

    fn visit_bool<E: de::Error>(self, b: bool) -> Result<Value, E> {
        match self.0 {
            Some(s) if s.kind != SchemaType::Boolean => Err(self.wrong("boolean")),
            _ => Ok(Value::Boolean(b)),
        }
    }

    fn visit_i64<E: de::Error>(self, i: i64) -> Result<Value, E> {
        match self.0 {
            None => Ok(Value::Int(i)),
            Some(s) if s.kind.is_integer() => match width_error(s.kind, i) {
                Some(e) => Err(E::custom(e)),
                None => Ok(Value::Int(i)),
            },
            #[allow(clippy::cast_precision_loss)] // as JSON's numbers are read: a double
            Some(s) if matches!(s.kind, SchemaType::Float32 | SchemaType::Float64) => {
                Ok(Value::Float(i as f64))
            }
            Some(_) => Err(self.wrong("number")),
        }
    }

    #[allow(clippy::cast_precision_loss)] // as JSON's numbers are read: a double
    fn visit_u64<E: de::Error>(self, u: u64) -> Result<Value, E> {
        match (self.0, i64::try_from(u)) {
            (_, Ok(i)) => self.visit_i64(i),
            (None, Err(_)) => Ok(Value::Float(u as f64)),
            (Some(s), Err(_)) if matches!(s.kind, SchemaType::Float32 | SchemaType::Float64) => {
                Ok(Value::Float(u as f64))
            }
            (Some(_), Err(_)) => Err(self.wrong("number")),
        }
    }

    fn visit_f64<E: de::Error>(self, f: f64) -> Result<Value, E> {
        match self.0 {
            Some(s) if !matches!(s.kind, SchemaType::Float32 | SchemaType::Float64) => {
                Err(self.wrong("number"))
            }
            _ => Ok(Value::Float(f)),
        }
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Value, E> {
        match self.0 {
            Some(s) if s.kind == SchemaType::Bytes => {
                let b = base64::engine::general_purpose::STANDARD
                    .decode(text)
                    .map_err(|e| E::custom(format!("bytes are not base64: {e}")))?;
                Ok(Value::Bytes(Bytes::from(b)))
            }
            Some(s) if s.kind != SchemaType::String => Err(self.wrong("string")),
            _ => Ok(Value::String(text.to_string())),
        }
    }

    fn visit_string<E: de::Error>(self, text: String) -> Result<Value, E> {
        match self.0 {
            None => Ok(Value::String(text)),
            Some(s) if s.kind == SchemaType::String => Ok(Value::String(text)),
            _ => self.visit_str(&text),
        }
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        match self.0 {
            None => {
                while let Some(v) = seq.next_element_seed(PayloadSeed(None))? {
                    out.push(v);
                }
                Ok(Value::Array(out))
            }
            Some(s) if s.kind == SchemaType::Array => {
                let item = PayloadSeed(s.value_schema.as_deref());
                while let Some(v) = seq.next_element_seed(item)? {
                    out.push(v);
                }
                Ok(Value::Array(out))
            }
            Some(s) if s.kind == SchemaType::Map => {
                let pair = PairSeed(
                    PayloadSeed(s.key_schema.as_deref()),
                    PayloadSeed(s.value_schema.as_deref()),
                );
                let mut entries = Vec::with_capacity(out.capacity());
                while let Some(e) = seq.next_element_seed(pair)? {
                    entries.push(e);
                }
                Ok(Value::Map(entries))
            }
            Some(_) => Err(self.wrong("array")),
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Value, A::Error> {
        match self.0 {
            None => object_entries(map, PayloadSeed(None)),
            Some(s)
                if s.kind == SchemaType::Map
                    && s.key_schema
                        .as_deref()
                        .is_none_or(|k| k.kind == SchemaType::String) =>
            {
                object_entries(map, PayloadSeed(s.value_schema.as_deref()))
            }
            Some(s) if s.kind == SchemaType::Struct => struct_fields(map, &s.fields),
            Some(_) => Err(self.wrong("object")),
        }
    }
}

/// A struct's fields from a JSON object, in the schema's order. Objects written from a
/// struct have their keys in that order: they are read straight into the struct; other
/// orders, repeated or unknown keys go through one slot per field.
fn struct_fields<'de, A: MapAccess<'de>>(mut map: A, fields: &[Field]) -> Result<Value, A::Error> {
    let mut out: Vec<(std::sync::Arc<str>, Value)> = Vec::with_capacity(fields.len());
    let mut slots: Vec<Option<Value>> = Vec::new();
    while let Some(i) = map.next_key_seed(FieldIndex {
        fields,
        expected: out.len(),
    })? {
        let Some((i, f)) = i.and_then(|i| Some((i, fields.get(i)?))) else {
            map.next_value::<IgnoredAny>()?;
            continue;
        };
        let v = map.next_value_seed(PayloadSeed(Some(&f.schema)))?;
        if slots.is_empty() && i == out.len() {
            out.push((f.name.clone(), v));
            continue;
        }
        if slots.is_empty() {
            // Out of order: the fields read so far move into their slots.
            slots = std::iter::repeat_with(|| None).take(fields.len()).collect();
            for (slot, (_, v)) in slots.iter_mut().zip(out.drain(..)) {
                *slot = Some(v);
            }
        }
        if let Some(slot) = slots.get_mut(i) {
            *slot = Some(v);
        }
    }
    if slots.is_empty() {
        // In order; fields after the last one read are missing.
        for f in fields.get(out.len()..).unwrap_or_default() {
            out.push((f.name.clone(), PayloadSeed(Some(&f.schema)).null()?));
        }
        return Ok(Value::Struct(out));
    }
    for (f, slot) in fields.iter().zip(slots) {
        let v = match slot {
            Some(v) => v,
            None => PayloadSeed(Some(&f.schema)).null()?,
        };
        out.push((f.name.clone(), v));
    }
    Ok(Value::Struct(out))
}

/// A JSON object's entries as a map with string keys, in order; a repeated key keeps its
/// first place and its last value (as a JSON object read into a tree).
fn object_entries<'de, A: MapAccess<'de>>(
    mut map: A,
    values: PayloadSeed<'_>,
) -> Result<Value, A::Error> {
    let mut out: Vec<(Value, Value)> = Vec::with_capacity(map.size_hint().unwrap_or(0).min(4096));
    // Past a few entries, repeated keys are found by a hash index.
    let mut index: Option<HashMap<String, usize>> = None;
    while let Some(k) = map.next_key::<String>()? {
        let v = map.next_value_seed(values)?;
        if out.len() >= 16 && index.is_none() {
            let mut ix = HashMap::with_capacity(out.len() * 2);
            for (i, (key, _)) in out.iter().enumerate() {
                if let Value::String(key) = key {
                    ix.insert(key.clone(), i);
                }
            }
            index = Some(ix);
        }
        let seen = match &index {
            Some(ix) => ix.get(&k).copied(),
            None => out
                .iter()
                .position(|(key, _)| matches!(key, Value::String(key) if *key == k)),
        };
        if let Some(entry) = seen.and_then(|i| out.get_mut(i)) {
            entry.1 = v;
        } else {
            if let Some(ix) = index.as_mut() {
                ix.insert(k.clone(), out.len());
            }
            out.push((Value::String(k), v));
        }
    }
    Ok(Value::Map(out))
}

/// A struct field's index by its name (`None` for a name the schema does not have), looked
/// for at `expected` first.
struct FieldIndex<'a> {
    fields: &'a [Field],
    expected: usize,
}

impl<'de> DeserializeSeed<'de> for FieldIndex<'_> {
    type Value = Option<usize>;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Option<usize>, D::Error> {
        d.deserialize_str(self)
    }
}

impl Visitor<'_> for FieldIndex<'_> {
    type Value = Option<usize>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a field name")
    }

    fn visit_str<E: de::Error>(self, name: &str) -> Result<Option<usize>, E> {
        if self
            .fields
            .get(self.expected)
            .is_some_and(|f| &*f.name == name)
        {
            return Ok(Some(self.expected));
        }
        Ok(self.fields.iter().position(|f| &*f.name == name))
    }
}

/// A map entry written as `[key, value]`.
#[derive(Clone, Copy)]
struct PairSeed<'a>(PayloadSeed<'a>, PayloadSeed<'a>);

impl<'de> DeserializeSeed<'de> for PairSeed<'_> {
    type Value = (Value, Value);

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(Value, Value), D::Error> {
        d.deserialize_any(self)
    }
}

const PAIR: &str = "a map entry as [key, value]";

impl<'de> Visitor<'de> for PairSeed<'_> {
    type Value = (Value, Value);

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(PAIR)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(Value, Value), A::Error> {
        let k = seq
            .next_element_seed(self.0)?
            .ok_or_else(|| de::Error::custom(PAIR))?;
        let v = seq
            .next_element_seed(self.1)?
            .ok_or_else(|| de::Error::custom(PAIR))?;
        if seq.next_element::<IgnoredAny>()?.is_some() {
            return Err(de::Error::custom(PAIR));
        }
        Ok((k, v))
    }
}

#[cfg(test)]
mod tests {
    use serde::de::DeserializeSeed as _;

    use super::*;

    fn read(schema: &Schema, json: &str) -> Result<Value, serde_json::Error> {
        let mut de = serde_json::Deserializer::from_str(json);
        PayloadSeed(Some(schema)).deserialize(&mut de)
    }

    #[test]
    fn struct_fields_in_any_order_repeated_unknown_or_missing() {
        let field = |name: &str, schema: Schema| Field {
            name: name.into(),
            schema,
        };
        let s = Schema::structure(vec![
            field("a", Schema::of(SchemaType::Int32)),
            field("b", Schema::of(SchemaType::String).optional()),
            field("c", Schema::of(SchemaType::Boolean).optional()),
        ]);
        let want = |a: i64, b: Option<&str>, c: Option<bool>| {
            Value::Struct(vec![
                ("a".into(), Value::Int(a)),
                (
                    "b".into(),
                    b.map_or(Value::Null, |b| Value::String(b.into())),
                ),
                ("c".into(), c.map_or(Value::Null, Value::Boolean)),
            ])
        };
        let cases = [
            (
                r#"{"a":1,"b":"x","c":true}"#,
                want(1, Some("x"), Some(true)),
            ),
            (
                r#"{"c":true,"a":1,"b":"x"}"#,
                want(1, Some("x"), Some(true)),
            ),
            (r#"{"a":1}"#, want(1, None, None)),
            (r#"{"a":1,"c":false}"#, want(1, None, Some(false))),
            (
                r#"{"a":1,"zz":[1,{"q":2}],"b":"x"}"#,
                want(1, Some("x"), None),
            ),
            (r#"{"a":1,"a":2,"b":"x"}"#, want(2, Some("x"), None)),
            (r#"{"b":"x","a":1,"b":"y"}"#, want(1, Some("y"), None)),
        ];
        for (json, value) in cases {
            assert_eq!(read(&s, json).expect(json), value, "{json}");
        }
        let e = read(&s, r#"{"b":"x"}"#).expect_err("a is required");
        assert!(e.to_string().contains("a null for a required int32"), "{e}");
        assert!(read(&s, r#"{"a":"1"}"#).is_err());
    }
}
