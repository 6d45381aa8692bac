//! A producer: sends keyed events to `orders` with Kafka's partitioner, blocking and async.
//!
//! ```text
//! cargo run --example producer [DIR]
//! ```

use std::time::Instant;

use topiclog::{Error, Log, ProducerConfig, ProducerRecord};

fn main() -> Result<(), Error> {
    let dir = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "example-data".into());
    let log = Log::open(&dir)?;
    match log.create_topic("orders", 4) {
        Ok(()) | Err(Error::TopicAlreadyExists { .. }) => {}
        Err(e) => return Err(e),
    }
    // A named producer: a second instance with the same name fences this one.
    let mut config = ProducerConfig::default();
    config.name = Some("order-service".into());
    let producer = log.producer(config)?;
    let (id, epoch) = producer.producer_id();
    println!("producer id {id} epoch {epoch}");

    // Blocking sends: each returns once stored under the topic's flush policy.
    for customer in ["alice", "bob", "carol"] {
        let md = producer
            .send(ProducerRecord::new("orders", format!("order from {customer}")).key(customer))?;
        println!(
            "sent {customer:<6} -> partition {} offset {}",
            md.partition, md.offset
        );
    }

    // Async sends: batched per partition (batch_size / linger), then flushed.
    let started = Instant::now();
    let receipts = (0..10_000)
        .map(|i| {
            producer.send_async(
                ProducerRecord::new("orders", format!("bulk-{i}")).key(format!("c{}", i % 100)),
            )
        })
        .collect::<Result<Vec<_>, _>>()?;
    producer.flush()?;
    let last = receipts
        .into_iter()
        .last()
        .map(topiclog::Receipt::wait)
        .transpose()?;
    println!(
        "10000 async sends in {:?}; last at partition {:?}",
        started.elapsed(),
        last.map(|m| (m.partition, m.offset))
    );
    drop(producer);
    log.close()
}
