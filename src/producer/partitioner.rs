//! [`Partitioner`]: how a producer picks the partition of a record that names none, and
//! [`DefaultPartitioner`], Kafka's choice as a value a custom partitioner can wrap.

use std::collections::HashMap;

use parking_lot::RwLock;

use crate::log::topic::{Sticky, partition_for_key};

/// Picks the partition of each record a [`Producer`](crate::Producer) sends without one
/// (Kafka's `partitioner.class`). Set it with [`ProducerConfig::partitioner`]; without one a
/// producer places records as Kafka's Java client does (murmur2 of the key, sticky placement
/// of keyless records).
///
/// A record with an explicit partition ([`ProducerRecord::partition`]) skips the partitioner,
/// as in Kafka. The partitioner runs on the sending thread for every record of `send`,
/// `send_async` and `send_batch`, so it should be quick and must not block; it may be called
/// from several threads at once.
///
/// [`ProducerConfig::partitioner`]: crate::ProducerConfig::partitioner
/// [`ProducerRecord::partition`]: crate::ProducerRecord::partition
///
/// ```
/// use std::sync::Arc;
/// use topiclog::{Log, Partitioner, ProducerConfig, ProducerRecord};
///
/// /// Keys that start with `vip-` go to partition 0; everything else spreads over the rest.
/// #[derive(Debug)]
/// struct VipFirst;
///
/// impl Partitioner for VipFirst {
///     fn partition(&self, _topic: &str, key: Option<&[u8]>, _value: Option<&[u8]>, partitions: i32) -> i32 {
///         match key {
///             Some(k) if k.starts_with(b"vip-") || partitions == 1 => 0,
///             Some(k) => 1 + (topiclog::murmur2(k) & 0x7fff_ffff) % (partitions - 1),
///             None => partitions - 1,
///         }
///     }
/// }
///
/// let dir = tempfile::tempdir().expect("a temporary directory");
/// let log = Log::open(dir.path())?;
/// log.create_topic("orders", 4)?;
/// let producer = log.producer(ProducerConfig::default().partitioner(Arc::new(VipFirst)))?;
/// let md = producer.send(ProducerRecord::new("orders", "created").key("vip-7"))?;
/// assert_eq!(md.partition, 0);
/// let md = producer.send(ProducerRecord::new("orders", "created").key("vip-7").partition(2))?;
/// assert_eq!(md.partition, 2); // an explicit partition wins
/// # Ok::<_, topiclog::Error>(())
/// ```
pub trait Partitioner: Send + Sync + std::fmt::Debug {
    /// The partition, in `0..partitions`, for a record of `topic` with this key and value
    /// (`None` for a null key or a null value). `partitions` is the topic's partition count
    /// now, at least 1.
    ///
    /// A result outside `0..partitions` fails the send with
    /// [`Error::PartitionerOutOfRange`](crate::Error::PartitionerOutOfRange); nothing is
    /// stored.
    fn partition(
        &self,
        topic: &str,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        partitions: i32,
    ) -> i32;
}

/// Kafka's default partitioning as a [`Partitioner`], for a custom one to fall back on:
/// a keyed record goes to [`partition_for_key`](crate::partition_for_key) (murmur2, as
/// Kafka's Java client), a keyless one sticks to a partition until about 16 KiB of values
/// went there, then moves to another at random (Kafka's sticky partitioner).
///
/// It places records exactly as a producer without a partitioner does, with one difference:
/// the sticky choice of keyless records is kept in this value, per topic, rather than shared
/// by every producer of the log.
///
/// ```
/// use std::sync::Arc;
/// use topiclog::{DefaultPartitioner, Partitioner, partition_for_key};
///
/// /// Records keyed `audit` all go to the last partition; the rest as Kafka places them.
/// #[derive(Debug, Default)]
/// struct AuditLast(DefaultPartitioner);
///
/// impl Partitioner for AuditLast {
///     fn partition(&self, topic: &str, key: Option<&[u8]>, value: Option<&[u8]>, partitions: i32) -> i32 {
///         if key == Some(b"audit") {
///             partitions - 1
///         } else {
///             self.0.partition(topic, key, value, partitions)
///         }
///     }
/// }
///
/// let p = AuditLast::default();
/// assert_eq!(p.partition("t", Some(b"audit"), None, 6), 5);
/// assert_eq!(p.partition("t", Some(b"user-1"), None, 6), partition_for_key(b"user-1", 6));
/// ```
#[derive(Debug, Default)]
pub struct DefaultPartitioner {
    /// The sticky placement of keyless records, per topic. The write lock is taken once per
    /// topic; every later keyless record takes the read lock only.
    sticky: RwLock<HashMap<String, Sticky>>,
}

impl DefaultPartitioner {
    /// A partitioner with no sticky choice made yet.
    pub fn new() -> Self {
        Self::default()
    }
}

impl Partitioner for DefaultPartitioner {
    fn partition(
        &self,
        topic: &str,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        partitions: i32,
    ) -> i32 {
        let n = partitions.max(1);
        if let Some(k) = key {
            return partition_for_key(k, n);
        }
        let size = value.map_or(0, <[u8]>::len);
        if let Some(s) = self.sticky.read().get(topic) {
            return s.partition(n, size);
        }
        self.sticky
            .write()
            .entry(topic.to_string())
            .or_insert_with(Sticky::new)
            .partition(n, size)
    }
}
