//! Background work: the flusher thread (interval syncs, checkpoints, the services' deadlines),
//! maintenance (retention, compaction) and the calls that run it now.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use super::{Log, LogInner};
use crate::cleaner::{MaintenanceReport, compact, retention};
use crate::clock::now_ms;
use crate::error::{Error, Result};
use crate::partition::Partition;

pub(crate) struct FlusherCtl {
    pub(crate) stop: AtomicBool,
}

impl Log {
    /// Runs maintenance now: retention on every partition, compaction where the dirty ratio
    /// (or a passed delete horizon) calls for it, and checkpoint writes. The background thread
    /// runs the same every `maintenance_interval`.
    ///
    /// # Errors
    /// [`Error::ReadOnly`]; the first I/O error.
    pub fn maintain(&self) -> Result<MaintenanceReport> {
        self.inner.check_open()?;
        self.inner.check_writable()?;
        self.inner.maintain()
    }

    /// Compacts every partition of a compacted topic now, whatever its dirty ratio, and
    /// reports what it removed.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] when the topic is not compacted; [`Error::ReadOnly`]; I/O.
    pub fn compact(&self, topic: &str) -> Result<MaintenanceReport> {
        self.compact_stopping_at(topic, None)
    }

    /// Test hook (feature `sim`): compaction stopped at `crash` as if the process died there.
    #[cfg(feature = "sim")]
    #[doc(hidden)]
    pub fn compact_until(
        &self,
        topic: &str,
        crash: Option<compact::CrashPoint>,
    ) -> Result<MaintenanceReport> {
        self.compact_stopping_at(topic, crash)
    }

    /// Compacts `topic`, stopping at `crash` if one is given.
    fn compact_stopping_at(
        &self,
        topic: &str,
        crash: Option<compact::CrashPoint>,
    ) -> Result<MaintenanceReport> {
        self.inner.check_open()?;
        self.inner.check_writable()?;
        let t = self.inner.topic(topic)?;
        if !t.config.read().cleanup_policy.compacts() {
            return Err(Error::invalid_config(
                "cleanup.policy",
                format!("topic '{topic}' is not compacted"),
            ));
        }
        let mut report = MaintenanceReport::default();
        let now = now_ms();
        for p in t.partitions.read().iter() {
            LogInner::compact_partition(p, now, crash, &mut report)?;
        }
        self.inner.write_checkpoints()?;
        Ok(report)
    }
}

impl LogInner {
    /// Compacts one partition now, after any pass of it already running.
    fn compact_partition(
        p: &Arc<Partition>,
        now: i64,
        crash: Option<compact::CrashPoint>,
        report: &mut MaintenanceReport,
    ) -> Result<()> {
        // Wait for a pass already running (the background thread's, say) rather than skip:
        // a caller of `maintain` or `compact` expects the segments sealed by now to be done.
        let _running = p.compacting.lock();
        let c = compact::compact(p, now, crash)?;
        if c.segments_in > 0 {
            report.segments_deleted += c.segments_in - c.segments_out;
            report.bytes_reclaimed += c.bytes_in.saturating_sub(c.bytes_out);
            report.records_removed += c.records_removed;
            report.partitions_touched += 1;
        }
        Ok(())
    }

    pub(crate) fn maintain(&self) -> Result<MaintenanceReport> {
        let mut report = MaintenanceReport::default();
        let now = now_ms();
        for p in self.all_partitions() {
            if p.is_deleted() {
                continue;
            }
            let cfg = p.config();
            if cfg.cleanup_policy.compacts()
                && (compact::dirty_ratio(&p) > cfg.min_cleanable_dirty_ratio
                    || now >= p.next_horizon())
            {
                Self::compact_partition(&p, now, None, &mut report)?;
            }
            let (segments, bytes) = retention::apply(&p, now, retention::Rules::All)?;
            if segments > 0 {
                report.segments_deleted += segments;
                report.bytes_reclaimed += bytes;
                report.partitions_touched += 1;
            }
        }
        *self.last_maintenance.lock() = Instant::now();
        self.write_checkpoints()?;
        Ok(report)
    }

    fn flusher_tick(&self) {
        self.services.tick_all();
        for p in self.all_partitions() {
            // A failure poisons the partition; writers see it.
            let _ = p.flush_tick();
        }
        let due = self.last_checkpoint.lock().elapsed() >= self.options.checkpoint_interval;
        if due {
            let _ = self.write_checkpoints();
        }
        if let Some(every) = self.options.maintenance_interval
            && self.last_maintenance.lock().elapsed() >= every
        {
            let _ = self.maintain();
        }
    }

    pub(crate) fn stop_flusher(&self) {
        if let Some((handle, ctl)) = self.flusher.lock().take() {
            ctl.stop.store(true, Ordering::Release);
            handle.thread().unpark();
            let _ = handle.join();
        }
    }
}

pub(crate) fn start_flusher(inner: &Arc<LogInner>, tick: Duration) {
    let ctl = Arc::new(FlusherCtl {
        stop: AtomicBool::new(false),
    });
    let weak: Weak<LogInner> = Arc::downgrade(inner);
    let c = Arc::clone(&ctl);
    let spawned = std::thread::Builder::new()
        .name("topiclog-flusher".into())
        .spawn(move || {
            while !c.stop.load(Ordering::Acquire) {
                std::thread::park_timeout(tick);
                if c.stop.load(Ordering::Acquire) {
                    break;
                }
                let Some(inner) = weak.upgrade() else { break };
                inner.flusher_tick();
            }
        });
    if let Ok(handle) = spawned {
        *inner.flusher.lock() = Some((handle, ctl));
    }
}
