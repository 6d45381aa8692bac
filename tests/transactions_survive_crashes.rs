//! Transactions against a model, then through crashes. One seeded workload: transactions over
//! 1-5 of five partitions (two topics), about 30% aborted, each also committing a consumer
//! offset (`send_offsets_to_transaction`), interleaved with plain appends and idempotent
//! retries (the same batch appended twice). A `read_committed` reader must see exactly the
//! committed records in offset order; a `read_uncommitted` one every data record, once, and no
//! marker.
//!
//! - In process, against the model.
//! - In a child process killed with SIGKILL at a seeded random moment (`ROUNDS`, or
//!   `TOPICLOG_TXN_KILL_ROUNDS`): after reopening, every transaction is all there or not at
//!   all, each acknowledged commit is there, each acknowledged abort is not, no transaction is
//!   left open, and the group's committed offset matches the committed transactions.
//! - Under the simulated power loss with `EveryBatch` (feature `sim`): the same promises.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

mod common;
use common::*;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use topiclog::{
    BatchBuilder, Compression, ConsumerConfig, ConsumerGroupMetadata, FlushPolicy, IsolationLevel,
    Log, OffsetAndMetadata, Producer, ProducerConfig, ProducerRecord, TopicConfig, TopicPartition,
};

const CHILD_DIR: &str = "TOPICLOG_TXN_CHILD_DIR";
const CHILD_SEED: &str = "TOPICLOG_TXN_CHILD_SEED";
const ROUNDS: u64 = 50;
const GROUP: &str = "etl";

use common::xorshift as next;

/// Steps a child acknowledged: commits, aborts, plain appends.
type Acked = (BTreeSet<u64>, BTreeSet<u64>, BTreeSet<u64>);

/// The five partitions a transaction picks from.
const PARTS: [(&str, i32); 5] = [("a", 0), ("a", 1), ("a", 2), ("b", 0), ("b", 1)];

fn config(policy: FlushPolicy) -> TopicConfig {
    let mut c = small_segments(4096);
    c.flush_policy = policy;
    c
}

fn setup(log: &Log, policy: FlushPolicy) -> TestResult {
    log.create_topic_with("a", 3, config(policy))?;
    log.create_topic_with("b", 2, config(policy))?;
    Ok(())
}

/// What a run of the workload did, as it was acknowledged.
#[derive(Default, Debug)]
struct Model {
    /// Per partition, the values a `read_committed` reader must see, in order.
    committed: BTreeMap<(String, i32), Vec<String>>,
    /// Per partition, every data record acknowledged, in order.
    all: BTreeMap<(String, i32), Vec<String>>,
    /// Transactions acknowledged committed / aborted.
    commits: BTreeSet<u64>,
    aborts: BTreeSet<u64>,
}

/// Runs `steps` steps of the workload from `seed`, calling `ack` after each acknowledged step.
/// Stops at the first error (a crash test's power cut), returning it.
fn workload(
    log: &Log,
    seed: u64,
    steps: u64,
    model: &mut Model,
    mut ack: impl FnMut(&str),
) -> TestResult {
    let mut seed = seed | 1;
    let txp = log.producer(ProducerConfig::transactional("wl"))?;
    txp.init_transactions()?;
    let plain = log.producer(ProducerConfig::default())?;
    let (retry_id, retry_epoch) = log.init_producer_id(None)?;
    let mut retry_seq: BTreeMap<(String, i32), i32> = BTreeMap::new();
    let group = ConsumerGroupMetadata::new(GROUP);
    for step in 0..steps {
        let pick = next(&mut seed) % 10;
        if pick < 2 {
            let (t, p) = PARTS[(next(&mut seed) % 5) as usize];
            let v = format!("plain-{step}");
            plain.send(ProducerRecord::new(t, v.clone()).partition(p))?;
            let key = (t.to_string(), p);
            model
                .committed
                .entry(key.clone())
                .or_default()
                .push(v.clone());
            model.all.entry(key).or_default().push(v);
            ack(&format!("plain {step}"));
        } else if pick < 3 {
            // An idempotent batch sent twice, as a client retries: stored once.
            let (topic, part) = PARTS[(next(&mut seed) % 5) as usize];
            let key = (topic.to_string(), part);
            let seq = retry_seq.entry(key.clone()).or_insert(0);
            let value = format!("idem-{step}");
            let mut builder = BatchBuilder::new(Compression::None);
            builder.set_producer(retry_id, retry_epoch, *seq);
            builder.push(None, Some(value.as_bytes()), &[], 1)?;
            let bytes = builder.finish()?.to_vec();
            let handle = log.partition(topic, part)?;
            let first = handle.append_raw(&mut bytes.clone())?;
            let again = handle.append_raw(&mut bytes.clone())?;
            assert_eq!(
                first.base_offset, again.base_offset,
                "a retry is stored once"
            );
            *seq += 1;
            model
                .committed
                .entry(key.clone())
                .or_default()
                .push(value.clone());
            model.all.entry(key).or_default().push(value);
            ack(&format!("plain {step}"));
        } else {
            let n = 1 + next(&mut seed) % 5;
            let mut chosen: Vec<(&str, i32)> = PARTS.to_vec();
            for i in 0..chosen.len() {
                let j = (next(&mut seed) as usize) % chosen.len();
                chosen.swap(i, j);
            }
            chosen.truncate(n as usize);
            let mut values = Vec::new();
            for (t, p) in &chosen {
                let k = 1 + next(&mut seed) % 3;
                for i in 0..k {
                    values.push(((t.to_string(), *p), i));
                }
            }
            let total = values.len();
            txp.begin_transaction()?;
            for (j, ((t, p), _)) in values.iter().enumerate() {
                let v = format!("tx-{step}-{j}-of-{total}");
                let rec = ProducerRecord::new(t.clone(), v).partition(*p);
                if j % 2 == 0 {
                    txp.send(rec)?;
                } else {
                    txp.send_async(rec)?;
                }
            }
            txp.send_offsets_to_transaction(
                &[(
                    TopicPartition::new("a", 0),
                    OffsetAndMetadata::new(step as i64 + 1),
                )],
                &group,
            )?;
            let commit = next(&mut seed) % 10 >= 3;
            if commit {
                txp.commit_transaction()?;
                model.commits.insert(step);
            } else {
                txp.abort_transaction()?;
                model.aborts.insert(step);
            }
            for (j, ((t, p), _)) in values.iter().enumerate() {
                let v = format!("tx-{step}-{j}-of-{total}");
                let key = (t.clone(), *p);
                if commit {
                    model
                        .committed
                        .entry(key.clone())
                        .or_default()
                        .push(v.clone());
                }
                model.all.entry(key).or_default().push(v);
            }
            ack(&format!(
                "{} {step}",
                if commit { "commit" } else { "abort" }
            ));
        }
    }
    drop(txp);
    Ok(())
}

/// Every value of a partition at an isolation level, in offset order.
fn values(log: &Log, t: &str, p: i32, level: IsolationLevel) -> TestResult<Vec<String>> {
    let h = log.partition(t, p)?.with_isolation_level(level);
    Ok(read_all(&h)?
        .into_iter()
        .map(|r| String::from_utf8_lossy(r.value.as_deref().unwrap_or_default()).into_owned())
        .collect())
}

/// The same through a `Consumer` at `read_committed`, all partitions.
fn consumer_values(log: &Log) -> TestResult<BTreeMap<(String, i32), Vec<String>>> {
    let mut c =
        log.consumer(ConsumerConfig::default().isolation_level(IsolationLevel::ReadCommitted))?;
    let tps: Vec<_> = PARTS
        .iter()
        .map(|(t, p)| TopicPartition::new(*t, *p))
        .collect();
    c.assign(&tps)?;
    let mut out: BTreeMap<(String, i32), Vec<String>> = BTreeMap::new();
    loop {
        let rs = c.poll(Duration::from_millis(20))?;
        if rs.is_empty() {
            break;
        }
        for r in &rs {
            out.entry((r.topic().to_string(), r.partition()))
                .or_default()
                .push(String::from_utf8_lossy(r.value().unwrap_or_default()).into_owned());
        }
    }
    Ok(out)
}

#[test]
fn transactions_match_the_model() -> TestResult {
    for (round, policy) in [FlushPolicy::Os, FlushPolicy::EveryBatch]
        .into_iter()
        .enumerate()
    {
        let log = TempLog::new()?;
        setup(&log, policy)?;
        let mut model = Model::default();
        workload(&log, 0xabc0 + round as u64, 150, &mut model, |_| {})?;
        assert!(
            model.commits.len() > 20 && model.aborts.len() > 5,
            "{model:?}"
        );
        let via_consumer = consumer_values(&log)?;
        for (t, p) in PARTS {
            let key = (t.to_string(), p);
            let want = model.committed.get(&key).cloned().unwrap_or_default();
            assert_eq!(
                values(&log, t, p, IsolationLevel::ReadCommitted)?,
                want,
                "{t}-{p}"
            );
            assert_eq!(
                via_consumer.get(&key).cloned().unwrap_or_default(),
                want,
                "{t}-{p}"
            );
            let all = model.all.get(&key).cloned().unwrap_or_default();
            assert_eq!(
                values(&log, t, p, IsolationLevel::ReadUncommitted)?,
                all,
                "{t}-{p}"
            );
            let h = log.partition(t, p)?;
            assert_eq!(h.last_stable_offset(), h.log_end_offset());
        }
        let last_commit = model.commits.iter().max().copied().unwrap_or(0);
        let c = log.consumer(ConsumerConfig::group(GROUP))?;
        assert_eq!(
            c.committed(&TopicPartition::new("a", 0))?.map(|o| o.offset),
            Some(last_commit as i64 + 1)
        );
        drop(c);
        // The same after reopening (the .txnindex files and the transaction state).
        let log = log.reopen()?;
        for (t, p) in PARTS {
            let want = model
                .committed
                .get(&(t.to_string(), p))
                .cloned()
                .unwrap_or_default();
            assert_eq!(
                values(&log, t, p, IsolationLevel::ReadCommitted)?,
                want,
                "{t}-{p}"
            );
        }
    }
    Ok(())
}

/// What a crash left must keep every promise: atomic transactions, acknowledged commits and
/// aborts as acknowledged, no open transaction, offsets with their transaction, plain records
/// acknowledged present.
fn check_after_crash(
    log: &Log,
    commits: &BTreeSet<u64>,
    aborts: &BTreeSet<u64>,
    plains: &BTreeSet<u64>,
    label: &str,
) -> TestResult {
    // Per transaction: (records seen at read_committed, records it had).
    let mut seen: BTreeMap<u64, (usize, usize)> = BTreeMap::new();
    let mut plain_seen = BTreeSet::new();
    for (t, p) in PARTS {
        let h = log.partition(t, p)?;
        assert_eq!(
            h.last_stable_offset(),
            h.log_end_offset(),
            "{label}: {t}-{p} left a transaction open"
        );
        for v in values(log, t, p, IsolationLevel::ReadCommitted)? {
            if let Some(rest) = v.strip_prefix("tx-") {
                let f: Vec<&str> = rest.split('-').collect();
                let step: u64 = f[0].parse()?;
                let total: usize = f[3].parse()?;
                let e = seen.entry(step).or_insert((0, total));
                e.0 += 1;
            } else if let Some(s) = v.strip_prefix("plain-").or_else(|| v.strip_prefix("idem-")) {
                plain_seen.insert(s.parse::<u64>()?);
            }
        }
    }
    for (step, (got, total)) in &seen {
        assert_eq!(got, total, "{label}: transaction {step} is partly visible");
        assert!(
            !aborts.contains(step),
            "{label}: aborted transaction {step} visible"
        );
    }
    for step in commits {
        assert!(
            seen.contains_key(step),
            "{label}: committed transaction {step} missing"
        );
    }
    for step in plains {
        assert!(
            plain_seen.contains(step),
            "{label}: acknowledged record {step} missing"
        );
    }
    let c = log.consumer(ConsumerConfig::group(GROUP))?;
    let committed = c.committed(&TopicPartition::new("a", 0))?.map(|o| o.offset);
    let expected = seen.keys().max().map(|s| *s as i64 + 1);
    assert_eq!(
        committed, expected,
        "{label}: the group's offset and the data disagree"
    );
    Ok(())
}

/// The child: runs the workload until killed, printing each acknowledged step.
#[test]
fn txn_crash_child() {
    let Ok(dir) = std::env::var(CHILD_DIR) else {
        return;
    };
    let seed: u64 = std::env::var(CHILD_SEED).unwrap().parse().unwrap();
    let log = topiclog::LogOptions::new().open(&dir).unwrap();
    let mut model = Model::default();
    workload(&log, seed, u64::MAX, &mut model, |line| println!("{line}")).unwrap();
}

#[test]
#[cfg(unix)]
fn killed_mid_transaction_every_transaction_is_whole_or_absent() -> TestResult {
    let rounds = env_rounds("TOPICLOG_TXN_KILL_ROUNDS", ROUNDS);
    let mut seed = 0x7a11_c0de_0000_0001u64;
    // Rounds whose reopen completed a transaction the kill interrupted.
    let mut completing_rounds = 0;
    for round in 0..rounds {
        let policy = match round % 3 {
            0 => FlushPolicy::Os,
            1 => FlushPolicy::EveryBatch,
            _ => FlushPolicy::Interval(Duration::from_millis(5)),
        };
        let log = TempLog::new()?;
        setup(&log, policy)?;
        let dir = log.close()?;
        let envs = [
            (CHILD_DIR, dir.path().display().to_string()),
            (CHILD_SEED, next(&mut seed).to_string()),
        ];
        let kill_after = Duration::from_millis(2 + next(&mut seed) % 80);
        let ((commits, aborts, plains), errors) = run_and_kill(
            "txn_crash_child",
            &envs,
            kill_after,
            Acked::default(),
            |(commits, aborts, plains), line| {
                let mut f = line.split(' ');
                let (Some(kind), Some(Ok(step))) = (f.next(), f.next().map(str::parse::<u64>))
                else {
                    return false;
                };
                match kind {
                    "commit" => commits.insert(step),
                    "abort" => aborts.insert(step),
                    "plain" => plains.insert(step),
                    // The test harness's own lines.
                    _ => return false,
                };
                true
            },
        )?;
        assert!(
            !commits.is_empty() || !aborts.is_empty() || !plains.is_empty(),
            "round {round}: the child acknowledged nothing; its stderr:\n{errors}"
        );
        let log = open(dir.path())?;
        completing_rounds += usize::from(!log.recovery_report().transactions_completed.is_empty());
        check_after_crash(&log, &commits, &aborts, &plains, &format!("round {round}"))?;
        // And the log goes on: a new transaction commits.
        let p: Producer = log.producer(ProducerConfig::transactional("wl"))?;
        p.init_transactions()?;
        p.begin_transaction()?;
        p.send(ProducerRecord::new("a", "after").partition(0))?;
        p.commit_transaction()?;
        drop(p);
        log.close()?;
    }
    assert!(
        completing_rounds * 4 >= rounds as usize,
        "only {completing_rounds} of {rounds} kills interrupted a transaction"
    );
    Ok(())
}

#[cfg(feature = "sim")]
#[test]
fn power_loss_under_every_batch_keeps_transactions_whole() -> TestResult {
    use topiclog::sim::SimFs;
    let rounds = env_rounds("TOPICLOG_TXN_POWER_LOSS_ROUNDS", 30);
    let mut seed = 0x90_3e71_0000_0001u64;
    let (mut completing_rounds, mut acknowledged) = (0, 0);
    for round in 0..rounds {
        let dir = tempfile::tempdir()?;
        let sim = SimFs::install(dir.path())?;
        let log = sim_options().open(dir.path())?;
        setup(&log, FlushPolicy::EveryBatch)?;
        sim.cut_power_after(1 + next(&mut seed) % 3000);
        let (mut commits, mut aborts, mut plains) =
            (BTreeSet::new(), BTreeSet::new(), BTreeSet::new());
        let mut model = Model::default();
        let _ = workload(&log, next(&mut seed), 300, &mut model, |line| {
            let mut f = line.split(' ');
            if let (Some(kind), Some(Ok(step))) = (f.next(), f.next().map(str::parse::<u64>)) {
                match kind {
                    "commit" => commits.insert(step),
                    "abort" => aborts.insert(step),
                    _ => plains.insert(step),
                };
            }
        });
        sim.cut_power();
        log.abandon();
        let _ = sim.power_loss(next(&mut seed))?;
        let log = sim_options().open(dir.path())?;
        completing_rounds += usize::from(!log.recovery_report().transactions_completed.is_empty());
        acknowledged += commits.len() + aborts.len();
        check_after_crash(&log, &commits, &aborts, &plains, &format!("round {round}"))?;
        log.close()?;
    }
    assert!(
        completing_rounds > 0,
        "no power cut interrupted a transaction"
    );
    assert!(acknowledged > 0, "no transaction ended before a power cut");
    Ok(())
}
