//! What one producer send costs: after 10,000 sends to warm up, 200,000 single 100 B records
//! through `Producer::send`, then 200,000 through `send_async` and one `flush`, to a
//! one-partition `preallocate=true` topic in a fresh temporary directory (page cache,
//! `FlushPolicy::Os`). Prints nanoseconds per record for each.
//!
//! Built from two revisions and run alternately, it compares their send paths in one sitting
//! (see BENCHMARKS.md, "Producer metrics: what they cost a send"). `send` or `async` as the
//! second argument runs only that part, for instruction counts under callgrind.
//!
//! ```text
//! cargo run --release --example send_cost [RECORDS] [send|async]
//! ```

use std::time::Instant;

use topiclog::{Log, ProducerConfig, ProducerRecord, TopicConfig};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let records: u32 = match std::env::args().nth(1) {
        Some(n) => n.parse()?,
        None => 200_000,
    };
    let mode = std::env::args().nth(2).unwrap_or_default();
    let dir = tempfile::tempdir()?;
    let log = Log::open(dir.path())?;
    // A send is then a store into a map, not a system call.
    let config = TopicConfig::new().with("preallocate", "true")?;
    log.create_topic_with("t", 1, config)?;
    let producer = log.producer(ProducerConfig::default())?;
    let value = bytes::Bytes::from(vec![b'v'; 100]);
    let record = || ProducerRecord::new("t", value.clone()).partition(0);

    // Warm up: the partition's handle cached, the first pages of the segment touched.
    for _ in 0..10_000 {
        producer.send(record())?;
    }
    let start = Instant::now();
    if mode != "async" {
        for _ in 0..records {
            producer.send(record())?;
        }
    }
    let send = start.elapsed();

    let start = Instant::now();
    if mode != "send" {
        for _ in 0..records {
            producer.send_async(record())?;
        }
        producer.flush()?;
    }
    let batched = start.elapsed();

    let per = |d: std::time::Duration| d.as_secs_f64() * 1e9 / f64::from(records);
    println!(
        "send {:.1} ns/record, send_async+flush {:.1} ns/record",
        per(send),
        per(batched)
    );
    producer.close()?;
    log.close()?;
    Ok(())
}
