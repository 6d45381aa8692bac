//! Event sourcing with `topiclog::eventstore`: each bank account is a stream. An `Aggregate`
//! (apply events, handle commands) is rebuilt from its latest snapshot plus the events after
//! it; a command appends the events it decides with the version it decided on, so of two
//! writers acting on the same balance one wins and the other retries on the new state. Accounts
//! sharing a partition never conflict with each other.
//!
//! ```text
//! cargo run --example event_sourcing [DIR]    # run it twice: balances carry over
//! ```

use topiclog::eventstore::{EventData, EventStore, EventStoreConfig, ReadDirection};
use topiclog::{Error, ExpectedVersion, FlushPolicy, Log, TopicConfig};

/// What an event-sourced aggregate is: state rebuilt by applying its events in order, and
/// commands that decide new events from that state (the shape of `cqrs-es` and `eventually`).
trait Aggregate: Default {
    type Command;
    type Event;
    type Error: std::fmt::Display;
    /// The state after `event`.
    fn apply(&mut self, event: &Self::Event);
    /// The events `command` causes, or why it is refused.
    fn handle(&self, command: &Self::Command) -> Result<Vec<Self::Event>, Self::Error>;
    fn encode(event: &Self::Event) -> (&'static str, Vec<u8>);
    fn decode(event_type: &str, data: &[u8]) -> Option<Self::Event>;
    fn snapshot(&self) -> Vec<u8>;
    fn restore(bytes: &[u8]) -> Option<Self>;
}

#[derive(Default, Debug)]
struct Account {
    balance: i64,
}

enum Command {
    Deposit(i64),
    Withdraw(i64),
}

enum Event {
    Deposited(i64),
    Withdrew(i64),
}

impl Aggregate for Account {
    type Command = Command;
    type Event = Event;
    type Error = String;

    fn apply(&mut self, event: &Event) {
        match event {
            Event::Deposited(n) => self.balance += n,
            Event::Withdrew(n) => self.balance -= n,
        }
    }

    fn handle(&self, command: &Command) -> Result<Vec<Event>, String> {
        match command {
            Command::Deposit(n) => Ok(vec![Event::Deposited(*n)]),
            Command::Withdraw(n) if *n > self.balance => {
                Err(format!("balance {} is short of {n}", self.balance))
            }
            Command::Withdraw(n) => Ok(vec![Event::Withdrew(*n)]),
        }
    }

    fn encode(event: &Event) -> (&'static str, Vec<u8>) {
        match event {
            Event::Deposited(n) => ("Deposited", n.to_string().into_bytes()),
            Event::Withdrew(n) => ("Withdrew", n.to_string().into_bytes()),
        }
    }

    fn decode(event_type: &str, data: &[u8]) -> Option<Event> {
        let n = std::str::from_utf8(data).ok()?.parse().ok()?;
        match event_type {
            "Deposited" => Some(Event::Deposited(n)),
            "Withdrew" => Some(Event::Withdrew(n)),
            _ => None,
        }
    }

    fn snapshot(&self) -> Vec<u8> {
        self.balance.to_string().into_bytes()
    }

    fn restore(bytes: &[u8]) -> Option<Account> {
        Some(Account {
            balance: std::str::from_utf8(bytes).ok()?.parse().ok()?,
        })
    }
}

/// The aggregate of `stream` and the version it reflects: the latest snapshot plus the
/// events after it.
fn load<A: Aggregate>(store: &EventStore<'_>, stream: &str) -> topiclog::Result<(A, Option<u64>)> {
    let (mut state, mut version) = match store.load_snapshot(stream)? {
        Some(s) => (A::restore(&s.data).unwrap_or_default(), Some(s.version)),
        None => (A::default(), None),
    };
    loop {
        let from = version.map_or(0, |v| v + 1);
        let page = store.read_stream(stream, from, ReadDirection::Forwards, 500)?;
        if page.events.is_empty() {
            return Ok((state, version));
        }
        for e in &page.events {
            if let Some(ev) = A::decode(&e.event_type, &e.data) {
                state.apply(&ev);
            }
            version = Some(e.version);
        }
    }
}

/// Runs `command` against the current state of `stream`: load, decide, append at the version
/// decided on; on a lost race, load again and decide again.
fn execute<A: Aggregate>(
    store: &EventStore<'_>,
    stream: &str,
    command: &A::Command,
) -> Result<u64, String> {
    for attempt in 0..1000u64 {
        let (state, version) = load::<A>(store, stream).map_err(|e| e.to_string())?;
        let events = state.handle(command).map_err(|e| e.to_string())?;
        let data: Vec<EventData> = events
            .iter()
            .map(|e| {
                let (kind, bytes) = A::encode(e);
                EventData::new(kind, bytes)
            })
            .collect();
        let expected = version.map_or(ExpectedVersion::NoStream, ExpectedVersion::Exact);
        match store.append(stream, expected, &data) {
            Ok(w) => {
                // A snapshot every 100 events keeps rebuilds short.
                if w.last_version / 100 > version.map_or(0, |v| v / 100) {
                    let (state, v) = load::<A>(store, stream).map_err(|e| e.to_string())?;
                    if let Some(v) = v {
                        store
                            .save_snapshot(stream, v, &state.snapshot())
                            .map_err(|e| e.to_string())?;
                    }
                }
                return Ok(w.last_version);
            }
            // Someone else acted first: back off a little, then decide again on the new state.
            Err(Error::WrongExpectedVersion { .. }) => {
                std::thread::sleep(std::time::Duration::from_micros(50 * attempt.min(40)));
            }
            Err(e) => return Err(e.to_string()),
        }
    }
    Err("too many lost races".into())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args().nth(1).map_or_else(
        || std::env::temp_dir().join("topiclog-event-sourcing"),
        Into::into,
    );
    let log = Log::open(&dir)?;
    let mut topic_config = TopicConfig::new();
    // Acknowledged events survive power loss.
    topic_config.flush_policy = FlushPolicy::EveryBatch;
    let store = EventStore::open(
        &log,
        "account-events",
        &EventStoreConfig {
            partitions: 4,
            topic_config,
            ..EventStoreConfig::default()
        },
    )?;
    let accounts = ["alice", "bob", "carol"];
    let before: Vec<i64> = accounts
        .iter()
        .map(|a| load::<Account>(&store, a).map(|(s, _)| s.balance))
        .collect::<Result<_, _>>()?;
    // Four tellers work on the same accounts at once: every deposit lands exactly once, and
    // no withdrawal overdraws, because each append carries the version it decided on.
    std::thread::scope(|t| {
        for teller in 0..4 {
            let store = &store;
            t.spawn(move || {
                for i in 0..50 {
                    let Some(account) = accounts.get((teller + i) % accounts.len()) else {
                        continue;
                    };
                    for command in [Command::Deposit(10), Command::Withdraw(7)] {
                        if let Err(e) = execute::<Account>(store, account, &command) {
                            eprintln!("teller {teller}: {account}: {e}");
                        }
                    }
                }
            });
        }
    });
    for (a, was) in accounts.iter().zip(before) {
        let (acct, version) = load::<Account>(&store, a)?;
        println!(
            "{a}: balance {} (was {was}), {} events, snapshot at {:?}",
            acct.balance,
            version.map_or(0, |v| v + 1),
            store.load_snapshot(a)?.map(|s| s.version)
        );
        assert!(acct.balance >= 0, "an account was overdrawn");
    }
    let stats = store.index_stats();
    println!(
        "{} streams, {} events in {}",
        stats.streams,
        stats.events,
        dir.display()
    );
    store.close()?;
    log.close()?;
    Ok(())
}
