//! A consumer-group member: reads `orders`, commits after processing, and commits before a
//! rebalance takes partitions away. Start several copies to see the partitions split.
//!
//! ```text
//! cargo run --example producer      # write some orders first
//! cargo run --example consumer [DIR] [SECONDS]
//! ```

use std::time::{Duration, Instant};

use topiclog::{Consumer, ConsumerConfig, Error, LogOptions, RebalanceListener, TopicPartition};

struct CommitBeforeRevoke;

impl RebalanceListener for CommitBeforeRevoke {
    fn on_partitions_revoked(&mut self, consumer: &mut Consumer, partitions: &[TopicPartition]) {
        if let Err(e) = consumer.commit() {
            eprintln!("commit before revoke failed: {e}");
        }
        println!("revoked {partitions:?}");
    }
    fn on_partitions_assigned(&mut self, _: &mut Consumer, partitions: &[TopicPartition]) {
        println!("assigned {partitions:?}");
    }
}

fn main() -> Result<(), Error> {
    let mut args = std::env::args().skip(1);
    let dir = args.next().unwrap_or_else(|| "example-data".into());
    let seconds: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(3);
    let log = LogOptions::new().open(&dir)?;
    match log.create_topic("orders", 4) {
        Ok(()) | Err(Error::TopicAlreadyExists { .. }) => {}
        Err(e) => return Err(e),
    }
    let mut config = ConsumerConfig::group("order-processors");
    config.enable_auto_commit = false;
    let mut consumer = log.consumer(config)?;
    consumer.set_rebalance_listener(CommitBeforeRevoke);
    consumer.subscribe(&["orders"])?;

    let until = Instant::now() + Duration::from_secs(seconds);
    let mut processed = 0usize;
    while Instant::now() < until {
        let records = consumer.poll(Duration::from_millis(200))?;
        for r in &records {
            // Process the record here.
            processed += 1;
            if processed <= 5 {
                println!(
                    "{}-{}@{} key={:?}",
                    r.topic(),
                    r.partition(),
                    r.offset(),
                    r.key().map(String::from_utf8_lossy)
                );
            }
        }
        if !records.is_empty() {
            consumer.commit()?;
        }
    }
    for tp in consumer.assignment() {
        println!(
            "{tp}: committed {:?}, lag {:?}",
            consumer.committed(&tp)?.map(|c| c.offset),
            consumer.lag(&tp)?
        );
    }
    println!("processed {processed} records");
    consumer.close()?;
    log.close()
}
