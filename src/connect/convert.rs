//! Converters by Kafka's names: `StringConverter`, `ByteArrayConverter`, `JsonConverter`.

use bytes::Bytes;
use serde_json::Value as Json;

use super::config::Properties;
use super::data::{Schema, SchemaType, Value, data_error, value_from_json, value_to_json};
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
    /// bytes instead of copying them).
    ///
    /// # Errors
    /// As [`Converter::from_connect`].
    fn from_connect_owned(
        &self,
        topic: &str,
        schema: Option<&Schema>,
        value: Value,
    ) -> Result<Option<Bytes>> {
        self.from_connect(topic, schema, &value)
    }

    /// The schema and value that `data` holds.
    ///
    /// # Errors
    /// [`Error::ConnectData`] when the bytes are not this converter's format.
    fn to_connect(&self, topic: &str, data: Option<&[u8]>) -> Result<(Option<Schema>, Value)>;
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

/// Kafka's `StringConverter`: UTF-8 text; a value that is not a string is written as its text.
#[derive(Debug, Clone, Copy, Default)]
pub struct StringConverter;

impl Converter for StringConverter {
    fn from_connect_owned(
        &self,
        topic: &str,
        schema: Option<&Schema>,
        value: Value,
    ) -> Result<Option<Bytes>> {
        match value {
            Value::String(s) => Ok(Some(Bytes::from(s.into_bytes()))),
            other => self.from_connect(topic, schema, &other),
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

    fn to_connect(&self, _topic: &str, data: Option<&[u8]>) -> Result<(Option<Schema>, Value)> {
        let schema = Some(Schema::of(SchemaType::String).optional());
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

    fn to_connect(&self, _topic: &str, data: Option<&[u8]>) -> Result<(Option<Schema>, Value)> {
        let schema = Some(Schema::of(SchemaType::Bytes).optional());
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
/// last schema it wrote (with its JSON text) and the last one it read (by its text), so a
/// schema is written or parsed once rather than for every record.
#[derive(Debug, Default)]
pub struct JsonConverter {
    schemas_enable: bool,
    written: parking_lot::Mutex<Option<(Schema, Vec<u8>)>>,
    read: parking_lot::Mutex<Option<(String, Schema)>>,
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
    fn schema_of(&self, text: &str) -> Result<Schema> {
        let mut read = self.read.lock();
        if let Some((t, s)) = read.as_ref()
            && t == text
        {
            return Ok(s.clone());
        }
        let json: Json = serde_json::from_str(text).map_err(|e| serialization_error(&e))?;
        let schema = Schema::from_json(&json)?;
        *read = Some((text.to_string(), schema.clone()));
        Ok(schema)
    }
}

impl Converter for JsonConverter {
    fn from_connect(
        &self,
        _topic: &str,
        schema: Option<&Schema>,
        value: &Value,
    ) -> Result<Option<Bytes>> {
        if schema.is_none() && value.is_null() {
            return Ok(None);
        }
        let payload = serde_json::to_vec(&value_to_json(schema, value)?)
            .map_err(|e| data_error(format!("converting to JSON failed: {e}")))?;
        if !self.schemas_enable {
            return Ok(Some(Bytes::from(payload)));
        }
        let mut out = Vec::with_capacity(payload.len() + 128);
        out.extend_from_slice(b"{\"schema\":");
        match schema {
            None => out.extend_from_slice(b"null"),
            Some(s) => {
                let mut written = self.written.lock();
                if !written.as_ref().is_some_and(|(w, _)| w == s) {
                    let text = serde_json::to_vec(&s.to_json())
                        .map_err(|e| data_error(format!("converting to JSON failed: {e}")))?;
                    *written = Some((s.clone(), text));
                }
                if let Some((_, text)) = written.as_ref() {
                    out.extend_from_slice(text);
                }
            }
        }
        out.extend_from_slice(b",\"payload\":");
        out.extend_from_slice(&payload);
        out.push(b'}');
        Ok(Some(Bytes::from(out)))
    }

    fn to_connect(&self, _topic: &str, data: Option<&[u8]>) -> Result<(Option<Schema>, Value)> {
        let Some(data) = data else {
            return Ok((None, Value::Null));
        };
        if !self.schemas_enable {
            let json: Json = serde_json::from_slice(data).map_err(|e| serialization_error(&e))?;
            return Ok((None, value_from_json(None, &json)?));
        }
        let envelope: Envelope<'_> = match serde_json::from_slice(data) {
            Ok(e) => e,
            Err(e) if e.is_data() => return Err(data_error(ENVELOPE_REQUIRED.into())),
            Err(e) => return Err(serialization_error(&e)),
        };
        let payload: Json =
            serde_json::from_str(envelope.payload.get()).map_err(|e| serialization_error(&e))?;
        let text = envelope.schema.get();
        if text == "null" {
            return Ok((None, value_from_json(None, &payload)?));
        }
        let schema = self.schema_of(text)?;
        let value = value_from_json(Some(&schema), &payload)?;
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
        assert_eq!(schema, Some(s));
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
