//! What a producer sends, a consumer reads back: every record once, in send order per
//! partition, on the partition Kafka's partitioner picks for its key, with its key, value,
//! timestamp and headers as sent.

mod common;
use common::*;
use std::collections::BTreeMap;
use std::time::Duration;
use topiclog::{Header, ProducerRecord, partition_for_key};

#[test]
fn every_sent_record_is_read_back_in_order_with_its_fields() -> TestResult {
    let log = TempLog::with_topic("orders", 3)?;
    let (producer, mut consumer) = pair(&log, "orders")?;
    let mut sent: BTreeMap<i32, Vec<(String, String, i64)>> = BTreeMap::new();
    let mut receipts = Vec::new();
    for i in 0..300i64 {
        let key = format!("customer-{}", i % 17);
        let value = format!("order {i}");
        let ts = 1_700_000_000_000 + i;
        let record = ProducerRecord::new("orders", value.clone())
            .key(key.clone())
            .timestamp(ts)
            .header(Header::new("seq", i.to_string()));
        // The first half is sent one by one, the second through the batching path.
        if i < 150 {
            let partition = producer.send(record)?.partition;
            assert_eq!(partition, partition_for_key(key.as_bytes(), 3));
            sent.entry(partition).or_default().push((key, value, ts));
        } else {
            receipts.push((producer.send_async(record)?, (key, value, ts)));
        }
    }
    producer.flush()?;
    for (receipt, (key, value, ts)) in receipts {
        let partition = receipt.wait()?.partition;
        assert_eq!(partition, partition_for_key(key.as_bytes(), 3));
        sent.entry(partition).or_default().push((key, value, ts));
    }
    producer.close()?;

    let mut read: BTreeMap<i32, Vec<(String, String, i64)>> = BTreeMap::new();
    let mut total = 0;
    while total < 300 {
        let batch = consumer.poll(Duration::from_secs(5))?;
        assert!(
            !batch.is_empty(),
            "a poll with records pending returned none"
        );
        for r in batch {
            let key = String::from_utf8(r.key.clone().ok_or("a record without its key")?.to_vec())?;
            let value = String::from_utf8(
                r.value
                    .clone()
                    .ok_or("a record without its value")?
                    .to_vec(),
            )?;
            let seq = r.headers.first().ok_or("a record without its header")?;
            assert_eq!(seq.key, "seq");
            assert_eq!(
                seq.value.as_deref(),
                Some(value.trim_start_matches("order ").as_bytes())
            );
            read.entry(r.partition)
                .or_default()
                .push((key, value, r.timestamp));
            total += 1;
        }
    }
    assert_eq!(read, sent);
    assert!(
        consumer.poll(Duration::from_millis(50))?.is_empty(),
        "nothing is read twice"
    );
    Ok(())
}
