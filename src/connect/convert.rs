//! Converters by Kafka's names: `StringConverter`, `ByteArrayConverter`, `JsonConverter`.

use std::sync::{Arc, LazyLock};

use bytes::Bytes;
use serde::de::DeserializeSeed as _;
use serde_json::Value as Json;

use super::config::Properties;
use super::data::{Schema, SchemaType, Value, data_error};
use super::payload::{Payload, PayloadSeed};
use crate::error::{Error, Result};

/// Turns Connect data into the bytes of a record's key or value and back (Kafka's
/// `Converter`).
// `from_connect`/`to_connect` are Kafka's `fromConnectData`/`toConnectData`.
#[allow(clippy::wrong_self_convention)]
pub trait Converter: Send + Sync {
    /// The bytes for `value` (with its schema) in `topic`; `None` for a null.
    ///
    /// # Errors
    /// [`Error::ConnectData`] when the value cannot be written this way.
    fn from_connect(
        &self,
        topic: &str,
        schema: Option<&Schema>,
        value: &Value,
    ) -> Result<Option<Bytes>>;

    /// As [`Converter::from_connect`], taking the value (a converter may then keep its
    /// bytes instead of copying them) and the schema as the record shares it (a converter
    /// may then know it by its pointer).
    ///
    /// # Errors
    /// As [`Converter::from_connect`].
    fn from_connect_owned(
        &self,
        topic: &str,
        schema: Option<&Arc<Schema>>,
        value: Value,
    ) -> Result<Option<Bytes>> {
        self.from_connect(topic, schema.map(|s| &**s), &value)
    }

    /// The schema and value that `data` holds.
    ///
    /// # Errors
    /// [`Error::ConnectData`] when the bytes are not this converter's format.
    fn to_connect(&self, topic: &str, data: Option<&[u8]>) -> Result<(Option<Arc<Schema>>, Value)>;
}

/// The converter a class name names (Kafka's full name or the short one), configured with
/// `config` (its keys without the `key.converter.`/`value.converter.` prefix, e.g.
/// `schemas.enable`).
///
/// # Errors
/// [`Error::InvalidConfig`] naming `key` for an unknown class or a bad setting.
pub fn converter(key: &str, class: &str, config: &Properties) -> Result<Box<dyn Converter>> {
    let short = class.rsplit('.').next().unwrap_or(class);
    match short {
        "StringConverter" => {
            if let Some(enc) = config.get("converter.encoding")
                && !matches!(enc.to_ascii_uppercase().as_str(), "UTF8" | "UTF-8")
            {
                return Err(Error::invalid_config(
                    format!("{key}.converter.encoding"),
                    format!("only UTF-8 is supported, not '{enc}'"),
                ));
            }
            Ok(Box::new(StringConverter))
        }
        "ByteArrayConverter" => Ok(Box::new(ByteArrayConverter)),
        "JsonConverter" => Ok(Box::new(JsonConverter::new(
            config.bool("schemas.enable", true).map_err(|_| {
                Error::invalid_config(format!("{key}.schemas.enable"), "must be true or false")
            })?,
        ))),
        _ => Err(Error::invalid_config(
            key,
            format!(
                "unknown converter '{class}' (StringConverter, ByteArrayConverter or JsonConverter)"
            ),
        )),
    }
}

/// The schemas `StringConverter` and `ByteArrayConverter` read with.
static OPTIONAL_STRING: LazyLock<Arc<Schema>> =
    LazyLock::new(|| Arc::new(Schema::of(SchemaType::String).optional()));
static OPTIONAL_BYTES: LazyLock<Arc<Schema>> =
    LazyLock::new(|| Arc::new(Schema::of(SchemaType::Bytes).optional()));

/// Kafka's `StringConverter`: UTF-8 text; a value that is not a string is written as its text.
#[derive(Debug, Clone, Copy, Default)]
pub struct StringConverter;

impl Converter for StringConverter {
    fn from_connect_owned(
        &self,
        topic: &str,
        schema: Option<&Arc<Schema>>,
        value: Value,
    ) -> Result<Option<Bytes>> {
        match value {
            Value::String(s) => Ok(Some(Bytes::from(s.into_bytes()))),
            other => self.from_connect(topic, schema.map(|s| &**s), &other),
        }
    }

    fn from_connect(
        &self,
        _topic: &str,
        _schema: Option<&Schema>,
        value: &Value,
    ) -> Result<Option<Bytes>> {
        Ok(match value {
            Value::Null => None,
            Value::String(s) => Some(Bytes::copy_from_slice(s.as_bytes())),
            other => Some(Bytes::from(other.to_text())),
        })
    }

    fn to_connect(
        &self,
        _topic: &str,
        data: Option<&[u8]>,
    ) -> Result<(Option<Arc<Schema>>, Value)> {
        let schema = Some(Arc::clone(&OPTIONAL_STRING));
        Ok(match data {
            None => (schema, Value::Null),
            Some(b) => (
                schema,
                Value::String(String::from_utf8_lossy(b).into_owned()),
            ),
        })
    }
}

/// Kafka's `ByteArrayConverter`: the bytes as they are.
#[derive(Debug, Clone, Copy, Default)]
pub struct ByteArrayConverter;

impl Converter for ByteArrayConverter {
    fn from_connect(
        &self,
        _topic: &str,
        schema: Option<&Schema>,
        value: &Value,
    ) -> Result<Option<Bytes>> {
        if let Some(s) = schema
            && s.kind != SchemaType::Bytes
        {
            return Err(data_error(format!(
                "invalid schema type for ByteArrayConverter: {}",
                s.kind.json_name()
            )));
        }
        match value {
            Value::Null => Ok(None),
            Value::Bytes(b) => Ok(Some(b.clone())),
            _ => Err(data_error(
                "ByteArrayConverter is not compatible with a value that is not bytes".into(),
            )),
        }
    }

    fn to_connect(
        &self,
        _topic: &str,
        data: Option<&[u8]>,
    ) -> Result<(Option<Arc<Schema>>, Value)> {
        let schema = Some(Arc::clone(&OPTIONAL_BYTES));
        Ok(match data {
            None => (schema, Value::Null),
            Some(b) => (schema, Value::Bytes(Bytes::copy_from_slice(b))),
        })
    }
}

/// Kafka's `JsonConverter`. With `schemas.enable=true` (Kafka's default) each key or value is
/// an envelope `{"schema": ..., "payload": ...}`; with `false`, plain JSON.
///
/// The records of one source or topic usually share one schema: the converter keeps the
/// start of the envelope for the last schema it wrote and for the last one it read, so a
/// schema is written or parsed once rather than for every record. Payloads are written and
/// read straight from the value and its schema, with no JSON tree between.
#[derive(Debug, Default)]
pub struct JsonConverter {
    schemas_enable: bool,
    written: parking_lot::Mutex<Option<(Arc<Schema>, Vec<u8>)>>,
    read: parking_lot::Mutex<Option<Arc<ReadSchema>>>,
}

/// A schema as last read, with the envelope's start that holds it.
#[derive(Debug)]
struct ReadSchema {
    /// `{"schema":<the schema's text>,"payload":`
    start: Vec<u8>,
    schema: Arc<Schema>,
}

const SCHEMA_START: &[u8] = b"{\"schema\":";
const PAYLOAD_START: &[u8] = b",\"payload\":";

impl ReadSchema {
    fn text(&self) -> &[u8] {
        self.start
            .get(SCHEMA_START.len()..self.start.len() - PAYLOAD_START.len())
            .unwrap_or_default()
    }
}

/// An envelope as read: both fields required, no others (Kafka's rule).
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Envelope<'a> {
    #[serde(borrow)]
    schema: &'a serde_json::value::RawValue,
    #[serde(borrow)]
    payload: &'a serde_json::value::RawValue,
}

const ENVELOPE_REQUIRED: &str = "JsonConverter with schemas.enable requires \"schema\" and \
     \"payload\" fields and may not contain additional fields. If you are trying to deserialize \
     plain JSON data, set schemas.enable=false in your converter configuration.";

fn serialization_error(e: &serde_json::Error) -> Error {
    data_error(format!(
        "converting byte[] to Kafka Connect data failed due to serialization error: {e}"
    ))
}

/// The value a JSON payload holds, read against `schema`.
fn read_payload(json: &[u8], schema: Option<&Schema>) -> Result<Value> {
    let mut de = serde_json::Deserializer::from_slice(json);
    PayloadSeed(schema)
        .deserialize(&mut de)
        .and_then(|v| de.end().map(|()| v))
        .map_err(|e| {
            if e.is_data() {
                data_error(e.to_string())
            } else {
                serialization_error(&e)
            }
        })
}

/// `rest` without the envelope's closing brace (and the whitespace after it).
fn before_closing_brace(rest: &[u8]) -> Option<&[u8]> {
    let end = rest.iter().rposition(|b| !b.is_ascii_whitespace())?;
    (rest.get(end) == Some(&b'}')).then(|| rest.get(..end))?
}

impl JsonConverter {
    /// A converter with Kafka's `schemas.enable`.
    pub fn new(schemas_enable: bool) -> JsonConverter {
        JsonConverter {
            schemas_enable,
            ..JsonConverter::default()
        }
    }

    /// Kafka's `schemas.enable`.
    pub fn schemas_enable(&self) -> bool {
        self.schemas_enable
    }

    /// The schema an envelope's schema text describes (parsed once per distinct text).
    fn schema_of(&self, text: &str) -> Result<Arc<Schema>> {
        if let Some(r) = self.read.lock().as_ref()
            && r.text() == text.as_bytes()
        {
            return Ok(Arc::clone(&r.schema));
        }
        let json: Json = serde_json::from_str(text).map_err(|e| serialization_error(&e))?;
        let schema = Arc::new(Schema::from_json(&json)?);
        let mut start = Vec::with_capacity(SCHEMA_START.len() + text.len() + PAYLOAD_START.len());
        start.extend_from_slice(SCHEMA_START);
        start.extend_from_slice(text.as_bytes());
        start.extend_from_slice(PAYLOAD_START);
        *self.read.lock() = Some(Arc::new(ReadSchema {
            start,
            schema: Arc::clone(&schema),
        }));
        Ok(schema)
    }

    /// An envelope that starts as the last one read did: its payload, read against that
    /// envelope's schema. `None` when it starts otherwise or does not read that way (the
    /// general path then reads it, or says what is wrong with it).
    fn read_as_last(&self, data: &[u8]) -> Option<(Arc<Schema>, Value)> {
        let last = self.read.lock().clone()?;
        let body = before_closing_brace(data.strip_prefix(last.start.as_slice())?)?;
        let value = read_payload(body, Some(&last.schema)).ok()?;
        Some((Arc::clone(&last.schema), value))
    }
}

impl JsonConverter {
    /// `value` as JSON, in an envelope with `schema` when `schemas.enable`. `shared` is the
    /// schema as a record shares it, when known: the last one written is then recognised by
    /// its pointer.
    fn write(
        &self,
        schema: Option<&Schema>,
        shared: Option<&Arc<Schema>>,
        value: &Value,
    ) -> Result<Option<Bytes>> {
        if schema.is_none() && value.is_null() {
            return Ok(None);
        }
        let mut out = Vec::new();
        if self.schemas_enable {
            match schema {
                None => {
                    out.extend_from_slice(SCHEMA_START);
                    out.extend_from_slice(b"null");
                    out.extend_from_slice(PAYLOAD_START);
                }
                Some(s) => {
                    let mut written = self.written.lock();
                    let same = written.as_ref().is_some_and(|(w, _)| {
                        shared.is_some_and(|a| Arc::ptr_eq(a, w)) || **w == *s
                    });
                    if !same {
                        let mut start = SCHEMA_START.to_vec();
                        serde_json::to_writer(&mut start, &s.to_json())
                            .map_err(|e| data_error(format!("converting to JSON failed: {e}")))?;
                        start.extend_from_slice(PAYLOAD_START);
                        let kept = shared.map_or_else(|| Arc::new(s.clone()), Arc::clone);
                        *written = Some((kept, start));
                    } else if let (Some(a), Some((w, _))) = (shared, written.as_mut())
                        && !Arc::ptr_eq(a, w)
                    {
                        // Equal: keep this one, so the next records sharing it match by pointer.
                        *w = Arc::clone(a);
                    }
                    if let Some((_, start)) = written.as_ref() {
                        out.reserve(start.len() + 128);
                        out.extend_from_slice(start);
                    }
                }
            }
        }
        serde_json::to_writer(&mut out, &Payload { schema, value })
            .map_err(|e| data_error(e.to_string()))?;
        if self.schemas_enable {
            out.push(b'}');
        }
        Ok(Some(Bytes::from(out)))
    }
}

impl Converter for JsonConverter {
    fn from_connect(
        &self,
        _topic: &str,
        schema: Option<&Schema>,
        value: &Value,
    ) -> Result<Option<Bytes>> {
        self.write(schema, None, value)
    }

    fn from_connect_owned(
        &self,
        _topic: &str,
        schema: Option<&Arc<Schema>>,
        value: Value,
    ) -> Result<Option<Bytes>> {
        self.write(schema.map(|s| &**s), schema, &value)
    }

    fn to_connect(
        &self,
        _topic: &str,
        data: Option<&[u8]>,
    ) -> Result<(Option<Arc<Schema>>, Value)> {
        let Some(data) = data else {
            return Ok((None, Value::Null));
        };
        if !self.schemas_enable {
            return Ok((None, read_payload(data, None)?));
        }
        if let Some((schema, value)) = self.read_as_last(data) {
            return Ok((Some(schema), value));
        }
        let envelope: Envelope<'_> = match serde_json::from_slice(data) {
            Ok(e) => e,
            Err(e) if e.is_data() => return Err(data_error(ENVELOPE_REQUIRED.into())),
            Err(e) => return Err(serialization_error(&e)),
        };
        let payload = envelope.payload.get().as_bytes();
        let text = envelope.schema.get();
        if text == "null" {
            return Ok((None, read_payload(payload, None)?));
        }
        let schema = self.schema_of(text)?;
        let value = read_payload(payload, Some(&schema))?;
        Ok((Some(schema), value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(schemas: bool) -> Box<dyn Converter> {
        let p = Properties::new().with("schemas.enable", schemas.to_string());
        converter(
            "value.converter",
            "org.apache.kafka.connect.json.JsonConverter",
            &p,
        )
        .expect("converter")
    }

    #[test]
    fn json_converter_writes_kafkas_envelope_for_a_string() {
        let c = json(true);
        let s = Schema::of(SchemaType::String);
        let b = c
            .from_connect("t", Some(&s), &Value::String("foo".into()))
            .expect("bytes")
            .expect("not null");
        assert_eq!(
            &b[..],
            br#"{"schema":{"type":"string","optional":false},"payload":"foo"}"#
        );
        let (schema, value) = c.to_connect("t", Some(&b)).expect("back");
        assert_eq!(schema.as_deref(), Some(&s));
        assert_eq!(value, Value::String("foo".into()));
    }

    #[test]
    fn json_converter_without_schemas_reads_plain_json_and_refuses_envelopes_missing() {
        let plain = json(false);
        let (s, v) = plain
            .to_connect("t", Some(br#"{"a":1,"b":[true]}"#))
            .expect("plain");
        assert!(s.is_none());
        assert_eq!(v.get("a"), Some(&Value::Int(1)));
        let enveloped = json(true);
        let e = enveloped
            .to_connect("t", Some(br#"{"a":1}"#))
            .expect_err("no envelope");
        assert!(e.to_string().contains("schemas.enable=false"), "{e}");
        assert!(enveloped.to_connect("t", Some(b"{not json")).is_err());
        assert_eq!(
            enveloped
                .from_connect("t", None, &Value::Null)
                .expect("null"),
            None
        );
    }

    fn rich_schema() -> Schema {
        use crate::connect::data::Field;
        let field = |name: &str, schema: Schema| Field {
            name: name.into(),
            schema,
        };
        Schema::structure(vec![
            field("id", Schema::of(SchemaType::Int64)),
            field("small", Schema::of(SchemaType::Int8).optional()),
            field("ratio", Schema::of(SchemaType::Float64)),
            field("name", Schema::of(SchemaType::String).optional()),
            field("raw", Schema::of(SchemaType::Bytes).optional()),
            field(
                "tags",
                Schema::array(Schema::of(SchemaType::String)).optional(),
            ),
            field(
                "by_id",
                Schema::map(
                    Schema::of(SchemaType::Int32),
                    Schema::of(SchemaType::Boolean),
                )
                .optional(),
            ),
            field(
                "attrs",
                Schema::map(
                    Schema::of(SchemaType::String),
                    Schema::of(SchemaType::Int64),
                )
                .optional(),
            ),
        ])
        .named("row")
    }

    fn rich_value(id: i64) -> Value {
        Value::Struct(vec![
            ("id".into(), Value::Int(id)),
            ("small".into(), Value::Null),
            ("ratio".into(), Value::Float(0.25)),
            ("name".into(), Value::String("quote \" and \u{e9}".into())),
            ("raw".into(), Value::Bytes(Bytes::from_static(&[0, 1, 255]))),
            (
                "tags".into(),
                Value::Array(vec![Value::String("a".into()), Value::String("b".into())]),
            ),
            (
                "by_id".into(),
                Value::Map(vec![(Value::Int(7), Value::Boolean(true))]),
            ),
            (
                "attrs".into(),
                Value::Map(vec![(Value::String("k".into()), Value::Int(-3))]),
            ),
        ])
    }

    #[test]
    fn json_payloads_written_and_read_without_a_tree_match_the_tree() {
        let c = JsonConverter::new(true);
        let schema = Arc::new(rich_schema());
        for id in [1, 2] {
            let value = rich_value(id);
            let bytes = c
                .from_connect_owned("t", Some(&schema), value.clone())
                .expect("bytes")
                .expect("not null");
            // The same bytes as the JSON tree gives.
            let tree = serde_json::json!({
                "schema": schema.to_json(),
                "payload": crate::connect::data::value_to_json(Some(&schema), &value)
                    .expect("json"),
            });
            let parsed: Json = serde_json::from_slice(&bytes).expect("json");
            assert_eq!(parsed, tree);
            // Read back: the first through the general path, the second starting as the
            // first did (the schema is not parsed again).
            let (s, v) = c.to_connect("t", Some(&bytes)).expect("read");
            assert_eq!(s.as_deref(), Some(&*schema));
            assert_eq!(v, value);
            assert_eq!(
                crate::connect::data::value_from_json(
                    Some(&schema),
                    tree.get("payload").expect("payload")
                )
                .expect("tree"),
                value
            );
        }
    }

    #[test]
    fn an_envelope_read_fast_or_not_reads_the_same_and_is_refused_the_same() {
        let c = JsonConverter::new(true);
        let schema = r#"{"type":"struct","fields":[{"type":"int32","optional":false,"field":"a"}],"optional":false}"#;
        let plain = format!(r#"{{"schema":{schema},"payload":{{"a":1}}}}"#);
        let spaced =
            format!("{{ \"payload\" : {{\"a\": 1, \"zz\": [1, 2]}}, \"schema\": {schema} }}\n");
        let (_, first) = c.to_connect("t", Some(plain.as_bytes())).expect("general");
        let (_, again) = c.to_connect("t", Some(plain.as_bytes())).expect("fast");
        let (_, other) = c
            .to_connect("t", Some(spaced.as_bytes()))
            .expect("reordered");
        assert_eq!(first, again);
        assert_eq!(first, other);
        // Starting as the last envelope did does not let an extra field or a bad payload by.
        let extra = format!(r#"{{"schema":{schema},"payload":{{"a":1}},"extra":2}}"#);
        let e = c
            .to_connect("t", Some(extra.as_bytes()))
            .expect_err("extra");
        assert!(e.to_string().contains("schemas.enable=false"), "{e}");
        let wide = format!(r#"{{"schema":{schema},"payload":{{"a":4000000000}}}}"#);
        let e = c
            .to_connect("t", Some(wide.as_bytes()))
            .expect_err("too wide");
        assert!(
            e.to_string().contains("does not fit an int32 schema"),
            "{e}"
        );
        let missing = format!(r#"{{"schema":{schema},"payload":{{}}}}"#);
        let e = c
            .to_connect("t", Some(missing.as_bytes()))
            .expect_err("required");
        assert!(e.to_string().contains("a null for a required int32"), "{e}");
        let cut = format!(r#"{{"schema":{schema},"payload":{{"a":1}}"#);
        assert!(c.to_connect("t", Some(cut.as_bytes())).is_err());
    }

    #[test]
    fn schemaless_objects_keep_a_repeated_keys_first_place_and_last_value() {
        let c = JsonConverter::new(false);
        let firsts: Vec<String> = (0..20).map(|i| format!("\"k{i}\":{i},")).collect();
        let mut text = format!("{{{}", firsts.concat());
        text.push_str(r#""k0":"again","k19":1.5,"big":18446744073709551615}"#);
        let (_, v) = c.to_connect("t", Some(text.as_bytes())).expect("read");
        let Value::Map(entries) = v else {
            panic!("a map");
        };
        assert_eq!(entries.len(), 21);
        assert_eq!(
            entries.first(),
            Some(&(Value::String("k0".into()), Value::String("again".into())))
        );
        assert_eq!(
            entries.get(19),
            Some(&(Value::String("k19".into()), Value::Float(1.5)))
        );
        assert_eq!(
            entries.last(),
            Some(&(
                Value::String("big".into()),
                Value::Float(18_446_744_073_709_551_615.0)
            ))
        );
    }

    #[test]
    fn string_and_byte_array_converters_keep_bytes() {
        let s = converter("value.converter", "StringConverter", &Properties::new()).expect("c");
        let b = s
            .from_connect("t", None, &Value::String("héllo".into()))
            .expect("bytes");
        assert_eq!(b.as_deref(), Some("héllo".as_bytes()));
        let raw = converter(
            "value.converter",
            "org.apache.kafka.connect.converters.ByteArrayConverter",
            &Properties::new(),
        )
        .expect("c");
        let (_, v) = raw.to_connect("t", Some(&[0, 255])).expect("v");
        assert_eq!(v, Value::Bytes(Bytes::from_static(&[0, 255])));
        assert!(raw.from_connect("t", None, &Value::Int(1)).is_err());
        assert!(converter("value.converter", "AvroConverter", &Properties::new()).is_err());
    }
}
