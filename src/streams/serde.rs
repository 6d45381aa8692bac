//! Serializers and deserializers in Kafka's byte formats, and typed clients that use them.

#[cfg(feature = "json")]
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};

use crate::error::{Error, Result};
use crate::{Consumer, Producer, ProducerRecord, RecordMetadata};

/// Turns values of `T` into a record's key or value bytes and back (Kafka's `Serde`: a
/// `Serializer` and a `Deserializer`). `None` bytes are Kafka's null.
pub trait Serde<T>: Send + Sync + 'static {
    /// The bytes of `value` for `topic`; `None` for Kafka's null.
    ///
    /// # Errors
    /// [`Error::Serde`] when the value cannot be written this way.
    fn serialize(&self, topic: &str, value: &T) -> Result<Option<Bytes>>;

    /// Appends the bytes of `value` to `buf`; `false` for Kafka's null (nothing appended).
    /// The default copies what [`Serde::serialize`] returns; the built-in serdes write
    /// straight into the buffer (the runtime's path: no allocation per record).
    ///
    /// # Errors
    /// As [`Serde::serialize`].
    fn serialize_into(&self, topic: &str, value: &T, buf: &mut BytesMut) -> Result<bool> {
        match self.serialize(topic, value)? {
            Some(b) => {
                buf.extend_from_slice(&b);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// The value `data` holds (`None`: a null key or value).
    ///
    /// # Errors
    /// [`Error::Serde`] when the bytes are not this format, or for a null this type cannot
    /// hold (wrap the serde in [`Nullable`] to read nulls as `None`).
    fn deserialize(&self, topic: &str, data: Option<&[u8]>) -> Result<T>;
}

/// A shared serde, as operators keep them.
pub type SharedSerde<T> = Arc<dyn Serde<T>>;

/// [`Serde::serialize`] for a serde that writes into a buffer ([`Serde::serialize_into`]):
/// the bytes it writes, frozen.
pub(crate) fn serialize_through_buffer<T, S: Serde<T> + ?Sized>(
    serde: &S,
    topic: &str,
    value: &T,
) -> Result<Option<Bytes>> {
    let mut buf = BytesMut::new();
    Ok(serde
        .serialize_into(topic, value, &mut buf)?
        .then(|| buf.freeze()))
}

pub(crate) fn serde_error(reason: impl Into<String>) -> Error {
    Error::Serde {
        reason: reason.into(),
    }
}

fn null_error(what: &str) -> Error {
    serde_error(format!(
        "a null where a {what} was expected (wrap the serde in Nullable to read nulls as None)"
    ))
}

/// UTF-8 text (Kafka's `StringSerializer`/`StringDeserializer`).
#[derive(Debug, Clone, Copy, Default)]
pub struct StringSerde;

impl Serde<String> for StringSerde {
    fn serialize(&self, _topic: &str, value: &String) -> Result<Option<Bytes>> {
        Ok(Some(Bytes::copy_from_slice(value.as_bytes())))
    }

    fn serialize_into(&self, _topic: &str, value: &String, buf: &mut BytesMut) -> Result<bool> {
        buf.extend_from_slice(value.as_bytes());
        Ok(true)
    }

    fn deserialize(&self, _topic: &str, data: Option<&[u8]>) -> Result<String> {
        let data = data.ok_or_else(|| null_error("string"))?;
        String::from_utf8(data.to_vec())
            .map_err(|e| serde_error(format!("the bytes are not UTF-8: {e}")))
    }
}

/// Bytes as they are (Kafka's `BytesSerde`/`ByteArraySerde`).
#[derive(Debug, Clone, Copy, Default)]
pub struct BytesSerde;

impl Serde<Bytes> for BytesSerde {
    fn serialize(&self, _topic: &str, value: &Bytes) -> Result<Option<Bytes>> {
        Ok(Some(value.clone()))
    }

    fn deserialize(&self, _topic: &str, data: Option<&[u8]>) -> Result<Bytes> {
        data.map(Bytes::copy_from_slice)
            .ok_or_else(|| null_error("byte array"))
    }
}

/// Fixed-width big-endian numbers, as Kafka's `IntegerSerde`, `LongSerde`, `DoubleSerde`.
macro_rules! number_serde {
    ($name:ident, $t:ty, $width:expr, $kafka:literal) => {
        #[doc = concat!("`", stringify!($t), "` as ", stringify!($width),
                                                    " big-endian bytes (Kafka's `", $kafka, "`).")]
        #[derive(Debug, Clone, Copy, Default)]
        pub struct $name;

        impl Serde<$t> for $name {
            fn serialize(&self, _topic: &str, value: &$t) -> Result<Option<Bytes>> {
                Ok(Some(Bytes::copy_from_slice(&value.to_be_bytes())))
            }

            fn serialize_into(&self, _topic: &str, value: &$t, buf: &mut BytesMut) -> Result<bool> {
                buf.extend_from_slice(&value.to_be_bytes());
                Ok(true)
            }

            fn deserialize(&self, _topic: &str, data: Option<&[u8]>) -> Result<$t> {
                let data = data.ok_or_else(|| null_error(stringify!($t)))?;
                let bytes: [u8; $width] = data.try_into().map_err(|_| {
                    serde_error(format!(
                        "size of data received by {} is not {} ({} bytes)",
                        $kafka,
                        $width,
                        data.len()
                    ))
                })?;
                Ok(<$t>::from_be_bytes(bytes))
            }
        }
    };
}

number_serde!(I32Serde, i32, 4, "IntegerDeserializer");
number_serde!(I64Serde, i64, 8, "LongDeserializer");
number_serde!(F64Serde, f64, 8, "DoubleDeserializer");

/// Kafka's null as `None`, other bytes through the inner serde: `Nullable(StringSerde)` is a
/// `Serde<Option<String>>` (records with a null key are common: the console producer's).
#[derive(Debug, Clone, Copy, Default)]
pub struct Nullable<S>(pub S);

impl<T: 'static, S: Serde<T>> Serde<Option<T>> for Nullable<S> {
    fn serialize(&self, topic: &str, value: &Option<T>) -> Result<Option<Bytes>> {
        match value {
            Some(v) => self.0.serialize(topic, v),
            None => Ok(None),
        }
    }

    fn serialize_into(&self, topic: &str, value: &Option<T>, buf: &mut BytesMut) -> Result<bool> {
        match value {
            Some(v) => self.0.serialize_into(topic, v, buf),
            None => Ok(false),
        }
    }

    fn deserialize(&self, topic: &str, data: Option<&[u8]>) -> Result<Option<T>> {
        match data {
            Some(d) => self.0.deserialize(topic, Some(d)).map(Some),
            None => Ok(None),
        }
    }
}

/// No key at all: writes a null, reads any key as `()` (for streams whose keys are not used,
/// as Kafka's `Serdes.Void` for null keys, but not refusing keys that are there).
#[derive(Debug, Clone, Copy, Default)]
pub struct UnitSerde;

impl Serde<()> for UnitSerde {
    fn serialize(&self, _topic: &str, _value: &()) -> Result<Option<Bytes>> {
        Ok(None)
    }

    fn serialize_into(&self, _topic: &str, _value: &(), _buf: &mut BytesMut) -> Result<bool> {
        Ok(false)
    }

    fn deserialize(&self, _topic: &str, _data: Option<&[u8]>) -> Result<()> {
        Ok(())
    }
}

/// JSON through serde (feature `json`): any `Serialize + DeserializeOwned` type.
#[cfg(feature = "json")]
pub struct JsonSerde<T>(PhantomData<fn() -> T>);

#[cfg(feature = "json")]
impl<T> JsonSerde<T> {
    /// A JSON serde for `T`.
    pub fn new() -> JsonSerde<T> {
        JsonSerde(PhantomData)
    }
}

#[cfg(feature = "json")]
impl<T> Default for JsonSerde<T> {
    fn default() -> Self {
        JsonSerde::new()
    }
}

#[cfg(feature = "json")]
impl<T> std::fmt::Debug for JsonSerde<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JsonSerde")
    }
}

#[cfg(feature = "json")]
impl<T> Serde<T> for JsonSerde<T>
where
    T: serde::Serialize + serde::de::DeserializeOwned + 'static,
{
    fn serialize(&self, _topic: &str, value: &T) -> Result<Option<Bytes>> {
        serde_json::to_vec(value)
            .map(|v| Some(Bytes::from(v)))
            .map_err(|e| serde_error(format!("writing JSON: {e}")))
    }

    fn deserialize(&self, _topic: &str, data: Option<&[u8]>) -> Result<T> {
        let data = data.ok_or_else(|| null_error("JSON value"))?;
        serde_json::from_slice(data).map_err(|e| serde_error(format!("reading JSON: {e}")))
    }
}

/// The built-in serdes by Kafka's `Serdes` names.
#[derive(Debug, Clone, Copy)]
pub struct Serdes;

impl Serdes {
    /// UTF-8 strings.
    pub fn string() -> SharedSerde<String> {
        Arc::new(StringSerde)
    }

    /// Bytes as they are.
    pub fn bytes() -> SharedSerde<Bytes> {
        Arc::new(BytesSerde)
    }

    /// `i32`, 4 bytes big-endian (Kafka's `Serdes.Integer()`).
    pub fn i32() -> SharedSerde<i32> {
        Arc::new(I32Serde)
    }

    /// `i64`, 8 bytes big-endian (Kafka's `Serdes.Long()`).
    pub fn i64() -> SharedSerde<i64> {
        Arc::new(I64Serde)
    }

    /// `f64`, 8 bytes big-endian (Kafka's `Serdes.Double()`).
    pub fn f64() -> SharedSerde<f64> {
        Arc::new(F64Serde)
    }

    /// No key: `()` (see [`UnitSerde`]).
    pub fn unit() -> SharedSerde<()> {
        Arc::new(UnitSerde)
    }

    /// `inner`, with Kafka's null as `None`.
    pub fn nullable<T: 'static>(inner: SharedSerde<T>) -> SharedSerde<Option<T>> {
        Arc::new(Nullable(ArcSerde(inner)))
    }

    /// Windowed keys of `inner` keys in windows of `size`, in Kafka's
    /// `TimeWindowedSerializer` format (the key's bytes, then the window start as 8 bytes
    /// big-endian).
    pub fn time_windowed<K: 'static>(
        inner: SharedSerde<K>,
        size: std::time::Duration,
    ) -> SharedSerde<super::window::Windowed<K>> {
        Arc::new(super::window::TimeWindowedSerde::new(inner, size))
    }

    /// Session-windowed keys of `inner` keys, in Kafka's `SessionWindowedSerializer` format
    /// (the key's bytes, then the session's end and start, 8 bytes big-endian each).
    pub fn session_windowed<K: 'static>(
        inner: SharedSerde<K>,
    ) -> SharedSerde<super::window::Windowed<K>> {
        Arc::new(super::session::SessionWindowedSerde::new(inner))
    }

    /// JSON through serde (feature `json`).
    #[cfg(feature = "json")]
    pub fn json<T>() -> SharedSerde<T>
    where
        T: serde::Serialize + serde::de::DeserializeOwned + 'static,
    {
        Arc::new(JsonSerde::<T>::new())
    }
}

/// A shared serde used as a serde.
struct ArcSerde<T>(SharedSerde<T>);

impl<T: 'static> Serde<T> for ArcSerde<T> {
    fn serialize(&self, topic: &str, value: &T) -> Result<Option<Bytes>> {
        self.0.serialize(topic, value)
    }

    fn serialize_into(&self, topic: &str, value: &T, buf: &mut BytesMut) -> Result<bool> {
        self.0.serialize_into(topic, value, buf)
    }

    fn deserialize(&self, topic: &str, data: Option<&[u8]>) -> Result<T> {
        self.0.deserialize(topic, data)
    }
}

/// A [`Producer`] that sends typed keys and values through serdes.
///
/// ```
/// use topiclog::streams::{Serdes, TypedProducer};
/// use topiclog::{Log, ProducerConfig};
/// let dir = tempfile::tempdir().expect("a temporary directory");
/// let log = Log::open(dir.path())?;
/// log.create_topic("counts", 1)?;
/// let producer = TypedProducer::new(
///     log.producer(ProducerConfig::default())?,
///     Serdes::string(),
///     Serdes::i64(),
/// );
/// producer.send("counts", &"kafka".to_string(), &3)?;
/// # Ok::<_, topiclog::Error>(())
/// ```
pub struct TypedProducer<K, V> {
    producer: Producer,
    key: SharedSerde<K>,
    value: SharedSerde<V>,
}

impl<K: 'static, V: 'static> TypedProducer<K, V> {
    /// Wraps `producer` with these serdes.
    pub fn new(producer: Producer, key: SharedSerde<K>, value: SharedSerde<V>) -> Self {
        TypedProducer {
            producer,
            key,
            value,
        }
    }

    fn record(&self, topic: &str, key: &K, value: &V) -> Result<ProducerRecord> {
        let record = crate::Record {
            key: self.key.serialize(topic, key)?,
            value: self.value.serialize(topic, value)?,
            ..crate::Record::default()
        };
        Ok(ProducerRecord {
            topic: topic.to_string(),
            partition: None,
            record,
        })
    }

    /// Sends one record and waits for it (as [`Producer::send`]).
    ///
    /// # Errors
    /// [`Error::Serde`], or the producer's error.
    pub fn send(&self, topic: &str, key: &K, value: &V) -> Result<RecordMetadata> {
        self.producer.send(self.record(topic, key, value)?)
    }

    /// Queues one record (as [`Producer::send_async`]).
    ///
    /// # Errors
    /// [`Error::Serde`], or the producer's error.
    pub fn send_async(&self, topic: &str, key: &K, value: &V) -> Result<crate::Receipt> {
        self.producer.send_async(self.record(topic, key, value)?)
    }

    /// Waits for every queued record (as [`Producer::flush`]).
    ///
    /// # Errors
    /// As [`Producer::flush`].
    pub fn flush(&self) -> Result<()> {
        self.producer.flush()
    }

    /// The producer underneath.
    pub fn inner(&self) -> &Producer {
        &self.producer
    }
}

/// A record read through serdes.
#[derive(Debug, Clone, PartialEq)]
pub struct TypedRecord<K, V> {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// The offset.
    pub offset: i64,
    /// The timestamp (ms since the epoch).
    pub timestamp: i64,
    /// The key.
    pub key: K,
    /// The value.
    pub value: V,
}

/// A [`Consumer`] that reads typed keys and values through serdes.
pub struct TypedConsumer<K, V> {
    consumer: Consumer,
    key: SharedSerde<K>,
    value: SharedSerde<V>,
}

impl<K: 'static, V: 'static> TypedConsumer<K, V> {
    /// Wraps `consumer` with these serdes.
    pub fn new(consumer: Consumer, key: SharedSerde<K>, value: SharedSerde<V>) -> Self {
        TypedConsumer {
            consumer,
            key,
            value,
        }
    }

    /// Polls (as [`Consumer::poll`]) and reads each record through the serdes.
    ///
    /// # Errors
    /// The consumer's error, or [`Error::Serde`] naming the record that does not read; the
    /// records before it in this poll are consumed, so seek back to retry.
    pub fn poll(&mut self, timeout: Duration) -> Result<Vec<TypedRecord<K, V>>> {
        let polled = self.consumer.poll(timeout)?;
        let mut out = Vec::with_capacity(polled.len());
        for r in &polled {
            let at = |e: Error| {
                serde_error(format!(
                    "{e} (topic {} partition {} offset {})",
                    r.topic(),
                    r.partition(),
                    r.offset()
                ))
            };
            out.push(TypedRecord {
                topic: r.topic().to_string(),
                partition: r.partition(),
                offset: r.offset(),
                timestamp: r.timestamp(),
                key: self.key.deserialize(r.topic(), r.key()).map_err(at)?,
                value: self.value.deserialize(r.topic(), r.value()).map_err(at)?,
            });
        }
        Ok(out)
    }

    /// The consumer underneath (subscribe, commit, seek).
    pub fn inner(&mut self) -> &mut Consumer {
        &mut self.consumer
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_kafkas_big_endian_bytes() {
        let b = I64Serde
            .serialize("t", &3)
            .expect("bytes")
            .expect("not null");
        assert_eq!(&b[..], &[0, 0, 0, 0, 0, 0, 0, 3]);
        assert_eq!(I64Serde.deserialize("t", Some(&b)).expect("back"), 3);
        assert!(I64Serde.deserialize("t", Some(&[1, 2])).is_err());
        let i = I32Serde
            .serialize("t", &-2)
            .expect("bytes")
            .expect("not null");
        assert_eq!(&i[..], &[0xff, 0xff, 0xff, 0xfe]);
        let d = F64Serde
            .serialize("t", &1.5)
            .expect("bytes")
            .expect("not null");
        assert_eq!(&d[..], &1.5f64.to_be_bytes());
        assert!(StringSerde.deserialize("t", None).is_err());
        assert_eq!(
            Nullable(StringSerde).deserialize("t", None).expect("null"),
            None
        );
        assert!(StringSerde.deserialize("t", Some(&[0xff])).is_err());
    }
}
