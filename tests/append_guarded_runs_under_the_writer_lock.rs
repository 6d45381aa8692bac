//! `PartitionHandle::append_guarded`: the guard's check sees the offset the batch gets, under
//! the writer lock, among plain appends from other threads (which combine their batches); a
//! refusal writes nothing; `settle` reports a location `read_at` reads back.
#![allow(clippy::indexing_slicing)]

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use topiclog::{AppendGuard, AppendResult, BatchLocation, Error, Log, Record};

/// Accepts a batch only when its base offset is past `floor`, and remembers where it landed.
struct Watermark {
    /// The next offset the guard expects no batch of its own below.
    seen_end: Arc<AtomicI64>,
    checked: Option<i64>,
    landed: Vec<(AppendResult, BatchLocation)>,
    refuse_every: u64,
    calls: u64,
}

impl AppendGuard for Watermark {
    fn check(&mut self, base_offset: i64) -> topiclog::Result<()> {
        self.calls += 1;
        assert!(self.checked.is_none(), "check twice without settle");
        assert!(
            base_offset >= self.seen_end.load(Ordering::SeqCst),
            "offsets went backwards"
        );
        if self.refuse_every > 0 && self.calls.is_multiple_of(self.refuse_every) {
            return Err(Error::AppendRefused {
                reason: "every so often".into(),
            });
        }
        self.checked = Some(base_offset);
        Ok(())
    }

    fn settle(&mut self, outcome: Result<(AppendResult, BatchLocation), &Error>) {
        let base = self.checked.take().expect("settle follows a passed check");
        let (r, at) = outcome.expect("the write succeeds here");
        assert_eq!(
            r.base_offset, base,
            "the batch got the offset its check saw"
        );
        self.seen_end.store(r.last_offset + 1, Ordering::SeqCst);
        self.landed.push((r, at));
    }
}

#[test]
fn guarded_appends_see_their_offsets_and_read_back_by_location() -> topiclog::Result<()> {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = Log::open(dir.path())?;
    let mut config = topiclog::TopicConfig::new();
    config.segment_bytes = 16 << 10; // rolls among the appends
    log.create_topic_with("t", 1, config)?;
    let p = log.partition("t", 0)?;
    let seen_end = Arc::new(AtomicI64::new(0));
    let mut guard = Watermark {
        seen_end: Arc::clone(&seen_end),
        checked: None,
        landed: Vec::new(),
        refuse_every: 7,
        calls: 0,
    };
    let mut refused = 0;
    std::thread::scope(|t| -> topiclog::Result<()> {
        for _ in 0..3 {
            let p = p.clone();
            t.spawn(move || {
                for i in 0..2000 {
                    p.append(&[Record::new(format!("plain {i}"))])
                        .expect("plain append");
                }
            });
        }
        for i in 0..1000 {
            let before = p.log_end_offset();
            match p.append_guarded(
                &[Record::new(format!("guarded {i}")), Record::new("second")],
                &mut guard,
            ) {
                Ok(r) => assert!(r.base_offset >= before),
                Err(Error::AppendRefused { .. }) => refused += 1,
                Err(e) => return Err(e),
            }
        }
        Ok(())
    })?;
    assert_eq!(refused, guard.calls / 7);
    assert_eq!(guard.landed.len() as u64, 1000 - refused);
    assert_eq!(p.log_end_offset(), 6000 + 2 * guard.landed.len() as i64);
    for (r, at) in &guard.landed {
        let batch = p
            .read_at(*at, r.last_offset)?
            .expect("the batch is at its location");
        assert_eq!(batch.base_offset(), r.base_offset);
        let values: Vec<_> = batch
            .records()?
            .map(|rec| rec.expect("decodes").value)
            .collect();
        assert_eq!(values.len(), 2);
    }
    // A location read for an offset the batch does not hold, or past the end, is None.
    let (r, at) = guard.landed[0];
    assert!(p.read_at(at, r.last_offset + 1)?.is_none());
    let mut out = Vec::new();
    p.read_batches_at(&[(at, r.base_offset), (at, p.log_end_offset())], &mut out)?;
    assert!(out[0].is_some() && out[1].is_none());
    Ok(())
}
