//! Kafka Connect's data model: schemas and values, and their JSON forms (`JsonConverter`'s
//! envelope and schemaless JSON).

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use serde::de::DeserializeSeed as _;
use serde_json::{Map as JsonMap, Value as Json};

use super::payload::{Payload, PayloadSeed};

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
    pub name: Arc<str>,
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
        self.fields.iter().find(|f| &*f.name == name)
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
                            o.insert("field".into(), Json::String(f.name.to_string()));
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
                        name: name.into(),
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
    /// A struct's field values by name, in the schema's order. Names are shared (with the
    /// schema's [`Field::name`]), so a struct of many records costs no copy of them.
    Struct(Vec<(Arc<str>, Value)>),
}

impl Value {
    /// Whether this is null.
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// A field of a struct, or the entry with this string key of a map.
    pub fn get(&self, name: &str) -> Option<&Value> {
        match self {
            Value::Struct(fields) => fields.iter().find(|(k, _)| &**k == name).map(|(_, v)| v),
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
    serde_json::to_value(Payload { schema, value }).map_err(|e| data_error(e.to_string()))
}

/// A JSON payload as a value: with `schema`, as `JsonConverter` reads an envelope's payload;
/// without, schemaless (integers as `int64`, other numbers as `double`, objects as maps).
///
/// # Errors
/// [`Error::ConnectData`] when the JSON does not fit the schema.
pub fn value_from_json(schema: Option<&Schema>, j: &Json) -> Result<Value> {
    PayloadSeed(schema)
        .deserialize(j)
        .map_err(|e| data_error(e.to_string()))
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
