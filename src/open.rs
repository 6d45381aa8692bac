//! Opening a data directory: the log's own open, then the services above it (the group
//! coordinator, which also checks committed offsets against the log ends recovery left), then
//! the flusher. It sits above `group` so that the log, which the groups are built on, never
//! names them.

use std::path::Path;

use crate::config::LogOptions;
use crate::error::Result;
use crate::group;
use crate::log::Log;
use crate::txn;

impl Log {
    /// Opens (creating if needed) a data directory with default options: an exclusive lock,
    /// recovery of every partition, and a background flusher.
    ///
    /// # Errors
    /// [`Error::AlreadyLocked`](crate::Error::AlreadyLocked) when another `Log` (in this or
    /// another process) owns the directory; [`Error::NotADataDirectory`](crate::Error::NotADataDirectory)
    /// for a non-empty folder topiclog did not make; I/O errors;
    /// [`Error::Corrupt`](crate::Error::Corrupt) for unreadable topic metadata.
    ///
    /// ```
    /// use topiclog::Log;
    /// let dir = tempfile::tempdir().expect("a temporary directory");
    /// let log = Log::open(dir.path())?;
    /// assert!(log.topics().is_empty());
    /// log.close()?;
    /// // Opening it again finds it as it was left; a second open while it is open fails.
    /// let log = Log::open(dir.path())?;
    /// assert!(log.recovery_report().clean);
    /// # Ok::<_, topiclog::Error>(())
    /// ```
    pub fn open(dir: impl AsRef<Path>) -> Result<Log> {
        LogOptions::default().open(dir)
    }
}

impl LogOptions {
    /// Opens (creating if needed) the data directory with these options.
    ///
    /// # Errors
    /// [`Error::AlreadyLocked`](crate::Error::AlreadyLocked) when another `Log` owns the
    /// directory, [`Error::InvalidConfig`](crate::Error::InvalidConfig) for bad options, I/O
    /// and corruption errors from recovery.
    ///
    /// ```
    /// use std::time::Duration;
    /// use topiclog::LogOptions;
    /// let dir = tempfile::tempdir().expect("a temporary directory");
    /// let log = LogOptions::new()
    ///     .max_open_files(256)
    ///     .checkpoint_interval(Duration::from_secs(30))
    ///     .open(dir.path())?;
    /// log.close()?;
    /// // Another process can read the same directory while this one writes it.
    /// let reader = LogOptions::new().read_only(true).open(dir.path())?;
    /// assert!(reader.is_read_only());
    /// # Ok::<_, topiclog::Error>(())
    /// ```
    pub fn open(self, dir: impl AsRef<Path>) -> Result<Log> {
        let (log, mut report) = Log::open_storage(dir.as_ref(), self)?;
        group::start(&log.inner, &mut report)?;
        txn::start(&log.inner, &mut report)?;
        log.finish_open(report)
    }
}
