//! Kafka Connect's data model: schemas and values, and their JSON forms (`JsonConverter`'s
//! envelope and schemaless JSON).

use std::collections::BTreeMap;

use base64::Engine as _;
use bytes::Bytes;
use serde_json::{Map as JsonMap, Number, Value as Json};

use crate::error::{Error, Result};

/// A schema's type, by Kafka Connect's names (`Schema.Type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SchemaType {
    /// `int8`.
    Int8,
    /// `int16`.
    Int16,
    /// `int32`.
    Int32,
    /// `int64`.
    Int64,
    /// `float` (32 bits).
    Float32,
    /// `double` (64 bits).
    Float64,
    /// `boolean`.
    Boolean,
    /// `string`.
    String,
    /// `bytes`.
    Bytes,
    /// `array` (of `Schema::value_schema`).
    Array,
    /// `map` (from `key_schema` to `value_schema`).
    Map,
    /// `struct` (of `fields`).
    Struct,
}

impl SchemaType {
    /// The type's name in `JsonConverter`'s schemas.
    pub fn json_name(self) -> &'static str {
        match self {
            SchemaType::Int8 => "int8",
            SchemaType::Int16 => "int16",
            SchemaType::Int32 => "int32",
            SchemaType::Int64 => "int64",
            SchemaType::Float32 => "float",
            SchemaType::Float64 => "double",
            SchemaType::Boolean => "boolean",
            SchemaType::String => "string",
            SchemaType::Bytes => "bytes",
            SchemaType::Array => "array",
            SchemaType::Map => "map",
            SchemaType::Struct => "struct",
        }
    }

    fn from_json_name(name: &str) -> Option<SchemaType> {
        Some(match name {
            "int8" => SchemaType::Int8,
            "int16" => SchemaType::Int16,
            "int32" => SchemaType::Int32,
            "int64" => SchemaType::Int64,
            "float" => SchemaType::Float32,
            "double" => SchemaType::Float64,
            "boolean" => SchemaType::Boolean,
            "string" => SchemaType::String,
            "bytes" => SchemaType::Bytes,
            "array" => SchemaType::Array,
            "map" => SchemaType::Map,
            "struct" => SchemaType::Struct,
            _ => return None,
        })
    }

    /// Whether values of this type are integers.
    pub fn is_integer(self) -> bool {
        matches!(
            self,
            SchemaType::Int8 | SchemaType::Int16 | SchemaType::Int32 | SchemaType::Int64
        )
    }
}

/// Name of Kafka Connect's `Timestamp` logical type (an `int64` of ms since the epoch).
pub const TIMESTAMP_SCHEMA_NAME: &str = "org.apache.kafka.connect.data.Timestamp";

/// A Kafka Connect schema.
#[derive(Debug, Clone, PartialEq)]
pub struct Schema {
    /// The type.
    pub kind: SchemaType,
    /// Whether the value may be null.
    pub optional: bool,
    /// The default value.
    pub default: Option<Box<Value>>,
    /// A name (for structs, and logical types such as [`TIMESTAMP_SCHEMA_NAME`]).
    pub name: Option<String>,
    /// A version.
    pub version: Option<i32>,
    /// Documentation.
    pub doc: Option<String>,
    /// Parameters (logical types' settings, for example a decimal's scale).
    pub parameters: BTreeMap<String, String>,
    /// A struct's fields, in order.
    pub fields: Vec<Field>,
    /// A map's key schema.
    pub key_schema: Option<Box<Schema>>,
    /// A map's value schema, or an array's item schema.
    pub value_schema: Option<Box<Schema>>,
}

/// A field of a struct schema.
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    /// The field's name.
    pub name: String,
    /// The field's schema.
    pub schema: Schema,
}

impl Schema {
    /// A schema of a primitive type, required.
    pub fn of(kind: SchemaType) -> Schema {
        Schema {
            kind,
            optional: false,
            default: None,
            name: None,
            version: None,
            doc: None,
            parameters: BTreeMap::new(),
            fields: Vec::new(),
            key_schema: None,
            value_schema: None,
        }
    }

    /// The same schema, optional.
    #[must_use]
    pub fn optional(mut self) -> Schema {
        self.optional = true;
        self
    }

    /// The same schema, named.
    #[must_use]
    pub fn named(mut self, name: impl Into<String>) -> Schema {
        self.name = Some(name.into());
        self
    }

    /// A struct schema of `fields`.
    pub fn structure(fields: Vec<Field>) -> Schema {
        Schema {
            fields,
            ..Schema::of(SchemaType::Struct)
        }
    }

    /// An array schema of `items`.
    pub fn array(items: Schema) -> Schema {
        Schema {
            value_schema: Some(Box::new(items)),
            ..Schema::of(SchemaType::Array)
        }
    }

    /// A map schema from `key` to `value`.
    pub fn map(key: Schema, value: Schema) -> Schema {
        Schema {
            key_schema: Some(Box::new(key)),
            value_schema: Some(Box::new(value)),
            ..Schema::of(SchemaType::Map)
        }
    }

    /// Kafka Connect's `Timestamp` logical type (`int64` ms, named).
    pub fn timestamp() -> Schema {
        Schema::of(SchemaType::Int64).named(TIMESTAMP_SCHEMA_NAME)
    }

    /// A struct's field by name.
    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.name == name)
    }

    /// The schema as `JsonConverter` writes it in an envelope.
    pub fn to_json(&self) -> Json {
        let mut m = JsonMap::new();
        m.insert("type".into(), Json::String(self.kind.json_name().into()));
        match self.kind {
            SchemaType::Struct => {
                let fields = self
                    .fields
                    .iter()
                    .map(|f| {
                        let mut j = f.schema.to_json();
                        if let Json::Object(o) = &mut j {
                            o.insert("field".into(), Json::String(f.name.clone()));
                        }
                        j
                    })
                    .collect();
                m.insert("fields".into(), Json::Array(fields));
            }
            SchemaType::Array => {
                if let Some(items) = &self.value_schema {
                    m.insert("items".into(), items.to_json());
                }
            }
            SchemaType::Map => {
                if let Some(k) = &self.key_schema {
                    m.insert("keys".into(), k.to_json());
                }
                if let Some(v) = &self.value_schema {
                    m.insert("values".into(), v.to_json());
                }
            }
            _ => {}
        }
        m.insert("optional".into(), Json::Bool(self.optional));
        if let Some(d) = &self.default
            && let Ok(j) = value_to_json(Some(self), d)
        {
            m.insert("default".into(), j);
        }
        if let Some(n) = &self.name {
            m.insert("name".into(), Json::String(n.clone()));
        }
        if let Some(v) = self.version {
            m.insert("version".into(), Json::from(v));
        }
        if let Some(d) = &self.doc {
            m.insert("doc".into(), Json::String(d.clone()));
        }
        if !self.parameters.is_empty() {
            let p = self
                .parameters
                .iter()
                .map(|(k, v)| (k.clone(), Json::String(v.clone())))
                .collect();
            m.insert("parameters".into(), Json::Object(p));
        }
        Json::Object(m)
    }

    /// Parses a schema in `JsonConverter`'s form.
    ///
    /// # Errors
    /// [`Error::ConnectData`] for anything that is not one.
    pub fn from_json(j: &Json) -> Result<Schema> {
        let o = j
            .as_object()
            .ok_or_else(|| data_error(format!("a schema must be a JSON object, not {j}")))?;
        let type_name = o
            .get("type")
            .and_then(Json::as_str)
            .ok_or_else(|| data_error("a schema needs a \"type\" string".to_string()))?;
        let kind = SchemaType::from_json_name(type_name)
            .ok_or_else(|| data_error(format!("unknown schema type \"{type_name}\"")))?;
        let mut s = Schema::of(kind);
        if let Some(opt) = o.get("optional") {
            s.optional = opt
                .as_bool()
                .ok_or_else(|| data_error("\"optional\" must be a boolean".to_string()))?;
        }
        s.name = o.get("name").and_then(Json::as_str).map(String::from);
        s.version = o
            .get("version")
            .and_then(Json::as_i64)
            .and_then(|v| i32::try_from(v).ok());
        s.doc = o.get("doc").and_then(Json::as_str).map(String::from);
        if let Some(Json::Object(p)) = o.get("parameters") {
            for (k, v) in p {
                let v = v.as_str().map_or_else(|| v.to_string(), String::from);
                s.parameters.insert(k.clone(), v);
            }
        }
        match kind {
            SchemaType::Struct => {
                let fields = o
                    .get("fields")
                    .and_then(Json::as_array)
                    .ok_or_else(|| data_error("a struct schema needs \"fields\"".to_string()))?;
                for f in fields {
                    let name = f
                        .get("field")
                        .and_then(Json::as_str)
                        .ok_or_else(|| data_error("a struct field needs \"field\"".to_string()))?;
                    s.fields.push(Field {
                        name: name.to_string(),
                        schema: Schema::from_json(f)?,
                    });
                }
            }
            SchemaType::Array => {
                let items = o
                    .get("items")
                    .ok_or_else(|| data_error("an array schema needs \"items\"".to_string()))?;
                s.value_schema = Some(Box::new(Schema::from_json(items)?));
            }
            SchemaType::Map => {
                let keys = o
                    .get("keys")
                    .ok_or_else(|| data_error("a map schema needs \"keys\"".to_string()))?;
                let values = o
                    .get("values")
                    .ok_or_else(|| data_error("a map schema needs \"values\"".to_string()))?;
                s.key_schema = Some(Box::new(Schema::from_json(keys)?));
                s.value_schema = Some(Box::new(Schema::from_json(values)?));
            }
            _ => {}
        }
        if let Some(d) = o.get("default")
            && !d.is_null()
        {
            let v = value_from_json(Some(&s), d)?;
            s.default = Some(Box::new(v));
        }
        Ok(s)
    }
}

/// A Kafka Connect value. With a schema, a struct is [`Value::Struct`]; without one, a JSON
/// object is a [`Value::Map`] with string keys (as Kafka's schemaless data).
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// Null.
    Null,
    /// A boolean.
    Boolean(bool),
    /// An integer of any width (the schema says which).
    Int(i64),
    /// A floating-point number.
    Float(f64),
    /// A string.
    String(String),
    /// Bytes.
    Bytes(Bytes),
    /// An array.
    Array(Vec<Value>),
    /// A map, in order.
    Map(Vec<(Value, Value)>),
    /// A struct's field values by name, in the schema's order.
    Struct(Vec<(String, Value)>),
}

impl Value {
    /// Whether this is null.
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// A field of a struct, or the entry with this string key of a map.
    pub fn get(&self, name: &str) -> Option<&Value> {
        match self {
            Value::Struct(fields) => fields.iter().find(|(k, _)| k == name).map(|(_, v)| v),
            Value::Map(entries) => entries
                .iter()
                .find(|(k, _)| matches!(k, Value::String(s) if s == name))
                .map(|(_, v)| v),
            _ => None,
        }
    }

    /// The value as text, as Kafka's `StringConverter` writes it (Java's `toString`).
    pub fn to_text(&self) -> String {
        match self {
            Value::Null => "null".into(),
            Value::Boolean(b) => b.to_string(),
            Value::Int(i) => i.to_string(),
            Value::Float(f) => java_double(*f),
            Value::String(s) => s.clone(),
            Value::Bytes(b) => String::from_utf8_lossy(b).into_owned(),
            other => value_to_json(None, other).map_or_else(|_| String::new(), |j| j.to_string()),
        }
    }
}

/// A double as Java's `Double.toString` writes the common cases (`1.0`, `0.5`).
#[allow(clippy::float_cmp)] // exact on purpose: whether the number is a whole one
fn java_double(f: f64) -> String {
    if f.is_finite() && f == f.trunc() && f.abs() < 1e7 {
        format!("{f:.1}")
    } else {
        f.to_string()
    }
}

pub(crate) fn data_error(reason: String) -> Error {
    Error::ConnectData { reason }
}

/// `value` as JSON: with `schema`, as `JsonConverter` writes a payload (bytes in base64, maps
/// with non-string keys as arrays of pairs); without, as schemaless JSON.
///
/// # Errors
/// [`Error::ConnectData`] when the value does not fit the schema.
pub fn value_to_json(schema: Option<&Schema>, value: &Value) -> Result<Json> {
    if let Some(s) = schema
        && value.is_null()
    {
        if let Some(d) = &s.default {
            return value_to_json(Some(s), d);
        }
        if !s.optional {
            return Err(data_error(format!(
                "a null value for a required {} schema",
                s.kind.json_name()
            )));
        }
        return Ok(Json::Null);
    }
    Ok(match value {
        Value::Null => Json::Null,
        Value::Boolean(b) => {
            expect(schema, &[SchemaType::Boolean], "a boolean")?;
            Json::Bool(*b)
        }
        Value::Int(i) => {
            if let Some(s) = schema {
                if s.kind.is_integer() {
                    check_width(s.kind, *i)?;
                } else if !matches!(s.kind, SchemaType::Float32 | SchemaType::Float64) {
                    return Err(mismatch(s, "an integer"));
                }
            }
            Json::from(*i)
        }
        Value::Float(f) => {
            expect(
                schema,
                &[SchemaType::Float32, SchemaType::Float64],
                "a floating-point number",
            )?;
            Number::from_f64(*f).map_or(Json::Null, Json::Number)
        }
        Value::String(s) => {
            expect(schema, &[SchemaType::String], "a string")?;
            Json::String(s.clone())
        }
        Value::Bytes(b) => {
            expect(schema, &[SchemaType::Bytes], "bytes")?;
            Json::String(base64::engine::general_purpose::STANDARD.encode(b))
        }
        Value::Array(items) => {
            expect(schema, &[SchemaType::Array], "an array")?;
            let item = schema.and_then(|s| s.value_schema.as_deref());
            let mut out = Vec::with_capacity(items.len());
            for v in items {
                out.push(value_to_json(item, v)?);
            }
            Json::Array(out)
        }
        Value::Map(entries) => {
            expect(schema, &[SchemaType::Map], "a map")?;
            let ks = schema.and_then(|s| s.key_schema.as_deref());
            let vs = schema.and_then(|s| s.value_schema.as_deref());
            let string_keys = match ks {
                Some(k) => k.kind == SchemaType::String,
                None => entries.iter().all(|(k, _)| matches!(k, Value::String(_))),
            };
            if string_keys {
                let mut m = JsonMap::new();
                for (k, v) in entries {
                    let Value::String(k) = k else {
                        return Err(data_error("a map key is not a string".into()));
                    };
                    m.insert(k.clone(), value_to_json(vs, v)?);
                }
                Json::Object(m)
            } else {
                let mut out = Vec::with_capacity(entries.len());
                for (k, v) in entries {
                    out.push(Json::Array(vec![
                        value_to_json(ks, k)?,
                        value_to_json(vs, v)?,
                    ]));
                }
                Json::Array(out)
            }
        }
        Value::Struct(fields) => {
            let mut m = JsonMap::new();
            match schema {
                Some(s) => {
                    if s.kind != SchemaType::Struct {
                        return Err(mismatch(s, "a struct"));
                    }
                    for f in &s.fields {
                        let v = fields
                            .iter()
                            .find(|(k, _)| *k == f.name)
                            .map_or(&Value::Null, |(_, v)| v);
                        m.insert(f.name.clone(), value_to_json(Some(&f.schema), v)?);
                    }
                }
                None => {
                    for (k, v) in fields {
                        m.insert(k.clone(), value_to_json(None, v)?);
                    }
                }
            }
            Json::Object(m)
        }
    })
}

fn expect(schema: Option<&Schema>, kinds: &[SchemaType], what: &str) -> Result<()> {
    match schema {
        Some(s) if !kinds.contains(&s.kind) => Err(mismatch(s, what)),
        _ => Ok(()),
    }
}

fn mismatch(s: &Schema, what: &str) -> Error {
    data_error(format!(
        "{what} does not fit a {} schema",
        s.kind.json_name()
    ))
}

fn check_width(kind: SchemaType, i: i64) -> Result<()> {
    let fits = match kind {
        SchemaType::Int8 => i8::try_from(i).is_ok(),
        SchemaType::Int16 => i16::try_from(i).is_ok(),
        SchemaType::Int32 => i32::try_from(i).is_ok(),
        _ => true,
    };
    if fits {
        Ok(())
    } else {
        Err(data_error(format!(
            "{i} does not fit an {} schema",
            kind.json_name()
        )))
    }
}

/// A JSON payload as a value: with `schema`, as `JsonConverter` reads an envelope's payload;
/// without, schemaless (integers as `int64`, other numbers as `double`, objects as maps).
///
/// # Errors
/// [`Error::ConnectData`] when the JSON does not fit the schema.
pub fn value_from_json(schema: Option<&Schema>, j: &Json) -> Result<Value> {
    let Some(s) = schema else {
        return Ok(schemaless(j));
    };
    if j.is_null() {
        if let Some(d) = &s.default {
            return Ok((**d).clone());
        }
        if s.optional {
            return Ok(Value::Null);
        }
        return Err(data_error(format!(
            "a null for a required {} schema",
            s.kind.json_name()
        )));
    }
    let wrong = || {
        data_error(format!(
            "JSON {} does not fit a {} schema",
            kind_of(j),
            s.kind.json_name()
        ))
    };
    Ok(match s.kind {
        SchemaType::Boolean => Value::Boolean(j.as_bool().ok_or_else(wrong)?),
        k if k.is_integer() => {
            let i = j.as_i64().ok_or_else(wrong)?;
            check_width(k, i)?;
            Value::Int(i)
        }
        SchemaType::Float32 | SchemaType::Float64 => Value::Float(j.as_f64().ok_or_else(wrong)?),
        SchemaType::String => Value::String(j.as_str().ok_or_else(wrong)?.to_string()),
        SchemaType::Bytes => {
            let text = j.as_str().ok_or_else(wrong)?;
            let b = base64::engine::general_purpose::STANDARD
                .decode(text)
                .map_err(|e| data_error(format!("bytes are not base64: {e}")))?;
            Value::Bytes(Bytes::from(b))
        }
        SchemaType::Array => {
            let items = j.as_array().ok_or_else(wrong)?;
            let item = s.value_schema.as_deref();
            let mut out = Vec::with_capacity(items.len());
            for v in items {
                out.push(value_from_json(item, v)?);
            }
            Value::Array(out)
        }
        SchemaType::Map => {
            let ks = s.key_schema.as_deref();
            let vs = s.value_schema.as_deref();
            match j {
                Json::Object(o) if ks.is_none_or(|k| k.kind == SchemaType::String) => {
                    let mut out = Vec::with_capacity(o.len());
                    for (k, v) in o {
                        out.push((Value::String(k.clone()), value_from_json(vs, v)?));
                    }
                    Value::Map(out)
                }
                Json::Array(pairs) => {
                    let mut out = Vec::with_capacity(pairs.len());
                    for p in pairs {
                        match p.as_array().map(Vec::as_slice) {
                            Some([k, v]) => {
                                out.push((value_from_json(ks, k)?, value_from_json(vs, v)?));
                            }
                            _ => return Err(data_error("a map entry must be [key, value]".into())),
                        }
                    }
                    Value::Map(out)
                }
                _ => return Err(wrong()),
            }
        }
        _ => {
            let o = j.as_object().ok_or_else(wrong)?;
            let mut out = Vec::with_capacity(s.fields.len());
            for f in &s.fields {
                let v = o.get(&f.name).unwrap_or(&Json::Null);
                out.push((f.name.clone(), value_from_json(Some(&f.schema), v)?));
            }
            Value::Struct(out)
        }
    })
}

fn kind_of(j: &Json) -> &'static str {
    match j {
        Json::Null => "null",
        Json::Bool(_) => "boolean",
        Json::Number(_) => "number",
        Json::String(_) => "string",
        Json::Array(_) => "array",
        Json::Object(_) => "object",
    }
}

fn schemaless(j: &Json) -> Value {
    match j {
        Json::Null => Value::Null,
        Json::Bool(b) => Value::Boolean(*b),
        Json::Number(n) => match n.as_i64() {
            Some(i) => Value::Int(i),
            None => Value::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        Json::String(s) => Value::String(s.clone()),
        Json::Array(a) => Value::Array(a.iter().map(schemaless).collect()),
        Json::Object(o) => Value::Map(
            o.iter()
                .map(|(k, v)| (Value::String(k.clone()), schemaless(v)))
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_struct_schema_round_trips_through_json_in_kafkas_form() {
        let s = Schema::structure(vec![
            Field {
                name: "id".into(),
                schema: Schema::of(SchemaType::Int32),
            },
            Field {
                name: "name".into(),
                schema: Schema::of(SchemaType::String).optional(),
            },
        ])
        .named("user");
        let j = s.to_json();
        assert_eq!(
            j,
            serde_json::json!({"type":"struct","fields":[
                {"type":"int32","optional":false,"field":"id"},
                {"type":"string","optional":true,"field":"name"}],
                "optional":false,"name":"user"})
        );
        assert_eq!(Schema::from_json(&j).expect("schema"), s);
    }

    #[test]
    fn values_fit_their_schemas_or_are_refused() {
        let int8 = Schema::of(SchemaType::Int8);
        assert!(value_to_json(Some(&int8), &Value::Int(300)).is_err());
        assert!(value_to_json(Some(&int8), &Value::Null).is_err());
        let bytes = Schema::of(SchemaType::Bytes);
        let hi =
            value_to_json(Some(&bytes), &Value::Bytes(Bytes::from_static(b"hi"))).expect("json");
        assert_eq!(hi, Json::String("aGk=".into()));
        assert_eq!(
            value_from_json(Some(&bytes), &hi).expect("value"),
            Value::Bytes(Bytes::from_static(b"hi"))
        );
        let map = Schema::map(
            Schema::of(SchemaType::Int32),
            Schema::of(SchemaType::String),
        );
        let entries = Value::Map(vec![(Value::Int(1), Value::String("a".into()))]);
        let pairs = value_to_json(Some(&map), &entries).expect("json");
        assert_eq!(pairs, serde_json::json!([[1, "a"]]));
        assert_eq!(value_from_json(Some(&map), &pairs).expect("value"), entries);
    }
}
