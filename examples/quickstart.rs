//! Quickstart: writes keyed events to `./quickstart-data` (or the directory given as the first
//! argument), reads them back, and shows where each landed. Run it twice: the second run finds
//! the first run's events still there and appends after them.
//!
//! ```text
//! cargo run --example quickstart [DIR]
//! ```

use topiclog::{Error, Log, Record};

const TOPIC: &str = "quickstart-events";

fn main() -> Result<(), Error> {
    let dir = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "quickstart-data".into());
    let log = Log::open(&dir)?;
    let created = match log.create_topic(TOPIC, 3) {
        Ok(()) => true,
        Err(Error::TopicAlreadyExists { .. }) => false,
        Err(e) => return Err(e),
    };
    println!(
        "data directory: {dir} ({} topic '{TOPIC}' with 3 partitions)",
        if created { "created" } else { "reopened" }
    );

    // What earlier runs left behind.
    let mut earlier = 0;
    for p in 0..log.partition_count(TOPIC)? {
        let part = log.partition(TOPIC, p)?;
        earlier += part.log_end_offset() - part.log_start_offset();
    }
    if earlier > 0 {
        println!("found {earlier} events from earlier runs; appending after them");
    }

    // Keyed events: the same key always lands in the same partition (Kafka's murmur2).
    let run = earlier / 6 + 1;
    let events = [
        ("alice", "signed-up"),
        ("bob", "signed-up"),
        ("alice", "added-item:book"),
        ("carol", "signed-up"),
        ("bob", "checked-out"),
        ("alice", "checked-out"),
    ];
    for (user, what) in events {
        let p = log.partition_for(TOPIC, Some(user.as_bytes()), what.len())?;
        let at = log
            .partition(TOPIC, p)?
            .append(&[Record::new(format!("{what} (run {run})")).key(user)])?;
        println!(
            "wrote  {user:<6} {what:<16} -> partition {p} offset {}",
            at.base_offset
        );
    }

    // Read every partition back from its start.
    for p in 0..log.partition_count(TOPIC)? {
        let part = log.partition(TOPIC, p)?;
        let records = part.records(part.log_start_offset(), 1 << 20)?;
        println!("partition {p}: {} events", records.len());
        for r in records {
            let key = String::from_utf8_lossy(r.key.as_deref().unwrap_or_default()).into_owned();
            let value =
                String::from_utf8_lossy(r.value.as_deref().unwrap_or_default()).into_owned();
            println!("  offset {:>3}  {key:<6} {value}", r.offset);
        }
    }
    log.close()?;
    println!("closed cleanly; run again to see these events survive");
    Ok(())
}
