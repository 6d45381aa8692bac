//! Control records: the one record of a control batch (attribute bit 5), which Kafka never
//! hands to applications. A transaction's end is one: [`EndTxnMarker`], COMMIT or ABORT, in
//! Kafka's layout (key `version:int16 = 0, type:int16`, 0 = ABORT and 1 = COMMIT; value
//! `version:int16 = 0, coordinator_epoch:int32`).

use crate::error::{Error, Result};
use crate::record::batch::{Batch, BatchBuilder};
use crate::record::codec::Compression;

/// Control record type of an aborted transaction's marker (Kafka's `ControlRecordType.ABORT`).
const ABORT: i16 = 0;
/// Control record type of a committed transaction's marker (`ControlRecordType.COMMIT`).
const COMMIT: i16 = 1;
/// The only control record key and marker value version Kafka writes.
const VERSION: i16 = 0;

/// What a control batch's record says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ControlRecord {
    /// The end of a transaction of the batch's producer.
    EndTxn(EndTxnMarker),
    /// Another control record type (Kafka's KRaft metadata log writes types 2 to 6:
    /// leader change, snapshot header and footer, KRaft version and voters); its value is
    /// not decoded here.
    Other {
        /// The control record type from the key.
        kind: i16,
    },
}

impl ControlRecord {
    /// Decodes a control record from its key and value.
    ///
    /// # Errors
    /// [`Error::InvalidBatch`] for a key that is not 4 bytes of version 0, or a COMMIT or
    /// ABORT whose value is not 6 bytes of version 0.
    ///
    /// ```
    /// use topiclog::{ControlRecord, EndTxnMarker};
    /// let marker = EndTxnMarker { commit: true, coordinator_epoch: 0 };
    /// let decoded = ControlRecord::decode(Some(&marker.key()), Some(&marker.value()))?;
    /// assert_eq!(decoded, ControlRecord::EndTxn(marker));
    /// # Ok::<_, topiclog::Error>(())
    /// ```
    pub fn decode(key: Option<&[u8]>, value: Option<&[u8]>) -> Result<ControlRecord> {
        let key: &[u8; 4] = key
            .and_then(|k| k.try_into().ok())
            .ok_or_else(|| Error::invalid_batch("a control record's key is not 4 bytes"))?;
        let [v0, v1, t0, t1] = *key;
        let version = i16::from_be_bytes([v0, v1]);
        if version != VERSION {
            return Err(Error::invalid_batch(format!(
                "control record key version {version}; only version 0 exists"
            )));
        }
        let kind = i16::from_be_bytes([t0, t1]);
        if kind != ABORT && kind != COMMIT {
            return Ok(ControlRecord::Other { kind });
        }
        let value: &[u8; 6] = value
            .and_then(|v| v.try_into().ok())
            .ok_or_else(|| Error::invalid_batch("a transaction marker's value is not 6 bytes"))?;
        let [v0, v1, e0, e1, e2, e3] = *value;
        let version = i16::from_be_bytes([v0, v1]);
        if version != VERSION {
            return Err(Error::invalid_batch(format!(
                "transaction marker version {version}; only version 0 exists"
            )));
        }
        Ok(ControlRecord::EndTxn(EndTxnMarker {
            commit: kind == COMMIT,
            coordinator_epoch: i32::from_be_bytes([e0, e1, e2, e3]),
        }))
    }
}

impl Batch {
    /// The control record of a control batch (attribute bit 5), decoded; `None` for a batch
    /// of application records.
    ///
    /// # Errors
    /// The record's decode error, or [`ControlRecord::decode`]'s.
    pub fn control_record(&self) -> Option<Result<ControlRecord>> {
        if !self.header().is_control() {
            return None;
        }
        let decoded = self.records().and_then(|mut records| {
            let record = records
                .next()
                .ok_or_else(|| Error::invalid_batch("a control batch without a record"))??;
            ControlRecord::decode(record.key, record.value)
        });
        Some(decoded)
    }
}

/// The marker that ends a transaction in each partition it wrote (Kafka's
/// `EndTransactionMarker`): COMMIT makes the producer's transactional records since its
/// previous marker visible to `read_committed` readers, ABORT discards them for those readers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EndTxnMarker {
    /// COMMIT when true, ABORT when false.
    pub commit: bool,
    /// The epoch of the transaction coordinator that wrote it (0 for a single node).
    pub coordinator_epoch: i32,
}

impl EndTxnMarker {
    /// The control record's key: version 0, then the type (0 = ABORT, 1 = COMMIT).
    pub fn key(&self) -> [u8; 4] {
        let kind = if self.commit { COMMIT } else { ABORT };
        let [v0, v1] = VERSION.to_be_bytes();
        let [t0, t1] = kind.to_be_bytes();
        [v0, v1, t0, t1]
    }

    /// The control record's value: version 0, then the coordinator epoch.
    pub fn value(&self) -> [u8; 6] {
        let [v0, v1] = VERSION.to_be_bytes();
        let [e0, e1, e2, e3] = self.coordinator_epoch.to_be_bytes();
        [v0, v1, e0, e1, e2, e3]
    }

    /// The whole control batch a producer appends to end its transaction in one partition:
    /// uncompressed, transactional and control (attribute bits 4 and 5), one record, the
    /// producer's id and epoch and no sequence (-1), as Kafka writes it. Its base offset is
    /// 0 until an append stamps it.
    ///
    /// # Errors
    /// None in practice; the builder's errors are passed on.
    ///
    /// ```
    /// use topiclog::{Batch, ControlRecord, EndTxnMarker};
    /// let marker = EndTxnMarker { commit: false, coordinator_epoch: 0 };
    /// let batch = Batch::new(marker.batch(42, 7, 1_700_000_000_000)?.into())?;
    /// batch.verify_crc()?;
    /// assert!(batch.header().is_control() && batch.header().is_transactional());
    /// assert_eq!(batch.control_record().transpose()?, Some(ControlRecord::EndTxn(marker)));
    /// # Ok::<_, topiclog::Error>(())
    /// ```
    pub fn batch(&self, producer_id: i64, producer_epoch: i16, timestamp: i64) -> Result<Vec<u8>> {
        let mut b = BatchBuilder::new(Compression::None);
        b.set_producer(producer_id, producer_epoch, -1);
        b.set_transactional(true);
        b.set_control(true);
        b.push(Some(&self.key()), Some(&self.value()), &[], timestamp)?;
        Ok(b.finish()?.to_vec())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Kafka's bytes for a COMMIT marker of coordinator epoch 5, and an ABORT of epoch 0.
    #[test]
    fn markers_have_kafkas_bytes() {
        let commit = EndTxnMarker {
            commit: true,
            coordinator_epoch: 5,
        };
        assert_eq!(commit.key(), [0, 0, 0, 1]);
        assert_eq!(commit.value(), [0, 0, 0, 0, 0, 5]);
        let abort = EndTxnMarker {
            commit: false,
            coordinator_epoch: 0,
        };
        assert_eq!(abort.key(), [0, 0, 0, 0]);
        assert_eq!(abort.value(), [0; 6]);
    }

    #[test]
    fn decoding_refuses_what_kafka_would_not_write() {
        let bad = [
            (Some(&[0u8, 0, 0][..]), Some(&[0u8; 6][..])),
            (None, Some(&[0u8; 6][..])),
            (Some(&[0u8, 1, 0, 1][..]), Some(&[0u8; 6][..])),
            (Some(&[0u8, 0, 0, 1][..]), Some(&[0u8; 5][..])),
            (Some(&[0u8, 0, 0, 0][..]), None),
            (Some(&[0u8, 0, 0, 1][..]), Some(&[0u8, 1, 0, 0, 0, 0][..])),
        ];
        for (key, value) in bad {
            assert!(
                ControlRecord::decode(key, value).is_err(),
                "{key:?} {value:?}"
            );
        }
        // Other control types (KRaft's) decode to their type, whatever their value.
        assert_eq!(
            ControlRecord::decode(Some(&[0, 0, 0, 2]), Some(b"anything")).unwrap(),
            ControlRecord::Other { kind: 2 }
        );
    }
}
