//! Retention and compaction, and [`MaintenanceReport`]: what a maintenance pass did.

pub(crate) mod compact;
pub(crate) mod retention;

/// What a maintenance pass did, from [`crate::Log::maintain`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct MaintenanceReport {
    /// Whole segments deleted by retention or the log start offset.
    pub segments_deleted: usize,
    /// Bytes those segments held.
    pub bytes_reclaimed: u64,
    /// Records removed by compaction.
    pub records_removed: u64,
    /// Partitions where anything was deleted.
    pub partitions_touched: usize,
}
