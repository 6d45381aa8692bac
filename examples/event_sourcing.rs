//! Event sourcing: each bank account is a partition-keyed stream of events. On start the
//! service rebuilds every account's balance by replaying its topic; commands append events
//! conditionally on the partition's end offset, so two writers cannot both act on a stale
//! balance (optimistic concurrency).
//!
//! ```text
//! cargo run --example event_sourcing [DIR]    # run it twice: balances carry over
//! ```

use std::collections::BTreeMap;

use topiclog::{Error, FlushPolicy, Log, Record, TopicConfig, partition_for_key};

const TOPIC: &str = "account-events";
const PARTITIONS: i32 = 4;

#[derive(Debug)]
enum Event {
    Deposited(i64),
    Withdrew(i64),
}

impl Event {
    fn encode(&self) -> String {
        match self {
            Event::Deposited(n) => format!("deposited:{n}"),
            Event::Withdrew(n) => format!("withdrew:{n}"),
        }
    }
    fn decode(s: &str) -> Option<Event> {
        let (kind, n) = s.split_once(':')?;
        let n = n.parse().ok()?;
        match kind {
            "deposited" => Some(Event::Deposited(n)),
            "withdrew" => Some(Event::Withdrew(n)),
            _ => None,
        }
    }
}

/// Replays every partition: account -> balance, and each partition's end offset.
fn rebuild(log: &Log) -> Result<(BTreeMap<String, i64>, Vec<i64>), Error> {
    let mut balances = BTreeMap::new();
    let mut ends = Vec::new();
    for p in 0..PARTITIONS {
        let part = log.partition(TOPIC, p)?;
        let mut offset = part.log_start_offset();
        loop {
            let records = part.records(offset, 1 << 20)?;
            let Some(last) = records.last() else { break };
            offset = last.offset + 1;
            for r in records {
                let account =
                    String::from_utf8_lossy(r.key.as_deref().unwrap_or_default()).into_owned();
                let value =
                    String::from_utf8_lossy(r.value.as_deref().unwrap_or_default()).into_owned();
                let balance = balances.entry(account).or_insert(0);
                match Event::decode(&value) {
                    Some(Event::Deposited(n)) => *balance += n,
                    Some(Event::Withdrew(n)) => *balance -= n,
                    None => {}
                }
            }
        }
        ends.push(part.log_end_offset());
    }
    Ok((balances, ends))
}

/// Appends an event only if the account's partition is where we last saw it.
fn act(log: &Log, account: &str, event: &Event, expected_end: i64) -> Result<i64, Error> {
    let p = partition_for_key(account.as_bytes(), PARTITIONS);
    let at = log.partition(TOPIC, p)?.append_if(
        expected_end,
        &[Record::new(event.encode()).key(account.to_owned())],
    )?;
    Ok(at.last_offset + 1)
}

fn main() -> Result<(), Error> {
    let dir = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "event-sourcing-data".into());
    let log = Log::open(&dir)?;
    let mut config = TopicConfig::new();
    config.flush_policy = FlushPolicy::EveryBatch; // an acknowledged event survives power loss
    match log.create_topic_with(TOPIC, PARTITIONS, config) {
        Ok(()) | Err(Error::TopicAlreadyExists { .. }) => {}
        Err(e) => return Err(e),
    }
    let (balances, mut ends) = rebuild(&log)?;
    println!("rebuilt from the log: {balances:?}");

    for (account, event) in [
        ("alice", Event::Deposited(100)),
        ("bob", Event::Deposited(50)),
        ("alice", Event::Withdrew(30)),
    ] {
        let p = partition_for_key(account.as_bytes(), PARTITIONS) as usize;
        let expected = ends.get(p).copied().unwrap_or(0);
        match act(&log, account, &event, expected) {
            Ok(end) => {
                if let Some(e) = ends.get_mut(p) {
                    *e = end;
                }
                println!("{account}: {event:?}");
            }
            Err(Error::EndOffsetMismatch { actual, .. }) => {
                // Someone else appended first: re-read and decide again.
                println!("{account}: conflict (partition is at {actual}); rebuild and retry");
            }
            Err(e) => return Err(e),
        }
    }
    // A stale writer loses: its expected end is behind.
    if let Err(Error::EndOffsetMismatch { expected, actual }) =
        act(&log, "alice", &Event::Withdrew(1_000), 0)
    {
        println!("stale command refused: expected end {expected}, partition at {actual}");
    }
    let (balances, _) = rebuild(&log)?;
    println!("balances now: {balances:?}");
    log.close()
}
