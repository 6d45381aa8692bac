//! Every name topiclog gives a file or folder on disk, in one place, row for row with
//! `docs/format.md`: the data directory's own files, partition folders and the names of folders
//! set aside, segment files (a typed [`FileKind`] rather than string extensions) and the
//! transient suffixes a file carries while it is written, replaced or removed.
//!
//! A leaf: nothing here does I/O. Code that needs a name asks this module for it, so a rule
//! such as "which files may an open delete" reads against one list.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

// ---- The data directory ------------------------------------------------------------------

/// The identity file at the top of every data directory (as Kafka's `meta.properties`).
pub(crate) const IDENTITY_FILE: &str = "topiclog.properties";
/// The lock file a read-write open holds.
pub(crate) const LOCK_FILE: &str = ".lock";
/// Folder of topic metadata files, one per topic, named by the topic.
pub(crate) const TOPICS_DIR: &str = ".topics";
/// Where a topic metadata file is written before it is renamed into `.topics/`.
pub(crate) const TOPIC_TMP: &str = ".topic-metadata.tmp";
/// Tombstones of topic deletes in progress: one empty file per topic, named by the topic.
pub(crate) const DELETING_DIR: &str = ".topics-deleting";
/// Producer ids handed out, and the epochs of named producers.
pub(crate) const PRODUCER_IDS_FILE: &str = "producer-ids";
/// Kafka's checkpoint of each partition's recovery point.
pub(crate) const RECOVERY_POINT_FILE: &str = "recovery-point-offset-checkpoint";
/// Kafka's checkpoint of each partition's log start offset.
pub(crate) const LOG_START_FILE: &str = "log-start-offset-checkpoint";
/// Per partition, the offset below which compaction has run (Kafka's cleaner checkpoint).
pub(crate) const CLEANER_FILE: &str = "cleaner-offset-checkpoint";
/// Present only after a clean close (Kafka's marker name).
pub(crate) const CLEAN_SHUTDOWN_FILE: &str = ".kafka_cleanshutdown";
/// Where an open moves the clean-shutdown marker; the next clean close deletes it.
pub(crate) const CLEAN_SHUTDOWN_ASIDE: &str = ".kafka_cleanshutdown.consumed";

/// Folder of the event stores' indexes (`topiclog::eventstore`), one folder per event topic.
pub(crate) const EVENT_STORE_DIR: &str = ".eventstore";
/// Persistent state stores of stream applications on this log, when `state.dir` is not set:
/// `<application.id>/<task>/<store>.redb` under it.
#[cfg(feature = "streams")]
pub(crate) const STREAMS_STATE_DIR: &str = ".streams-state";

/// The index folder of the event store over topic `name`: while it exists, the topic is an
/// event topic, which refuses `cleanup.policy=compact`.
pub(crate) fn event_store_dir(root: &Path, name: &str) -> PathBuf {
    root.join(EVENT_STORE_DIR).join(name)
}

/// The metadata file of topic `name`.
pub(crate) fn topic_file(root: &Path, name: &str) -> PathBuf {
    root.join(TOPICS_DIR).join(name)
}

/// The folder of partition `partition` of `topic` (Kafka's `<topic>-<partition>`).
pub(crate) fn partition_dir(root: &Path, topic: &str, partition: i32) -> PathBuf {
    root.join(partition_dir_name(topic, partition))
}

/// The name of a partition folder.
pub(crate) fn partition_dir_name(topic: &str, partition: i32) -> String {
    format!("{topic}-{partition}")
}

/// Why a partition folder was set aside, as the last part of its new name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SetAside {
    /// Its topic was deleted; the folder is removed once the rename is durable (Kafka's
    /// `-delete`).
    Delete,
    /// Nothing in the catalog explains it; kept for a person to look at.
    Stray,
}

impl SetAside {
    /// The suffix after the last `-`.
    pub(crate) const fn suffix(self) -> &'static str {
        match self {
            SetAside::Delete => "delete",
            SetAside::Stray => "stray",
        }
    }
}

/// The internal topic holding committed offsets and group generations (Kafka's name).
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";
/// Kafka's transaction log topic: reserved, as in Kafka.
pub(crate) const TRANSACTION_STATE_TOPIC: &str = "__transaction_state";

// ---- Topic and partition folders ---------------------------------------------------------

/// Longest topic name Kafka accepts.
pub const MAX_TOPIC_NAME_LEN: usize = 249;

/// Checks Kafka's topic-name rules: 1 to 249 characters from `[a-zA-Z0-9._-]`, and not `.` or
/// `..` (which also keeps every partition directory inside the data directory).
///
/// # Errors
/// [`Error::InvalidTopicName`] naming the broken rule.
pub fn validate_topic_name(name: &str) -> Result<()> {
    let bad = |reason| {
        Err(Error::InvalidTopicName {
            name: name.chars().take(300).collect(),
            reason,
        })
    };
    if name.is_empty() {
        return bad("the name is empty");
    }
    if name.len() > MAX_TOPIC_NAME_LEN {
        return bad("the name is longer than 249 characters");
    }
    if name == "." || name == ".." {
        return bad("'.' and '..' are not allowed");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
    {
        return bad("only ASCII letters, digits, '.', '_' and '-' are allowed");
    }
    Ok(())
}

/// A partition directory's name split into topic and partition, when it is one.
pub(crate) fn parse_partition_dir(name: &str) -> Option<(&str, i32)> {
    let (topic, p) = name.rsplit_once('-')?;
    if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let p = p.parse::<i32>().ok()?;
    validate_topic_name(topic).ok()?;
    Some((topic, p))
}

/// `<topic>-<partition>.<nonce>-<kind>`, with the topic part shortened so the name fits in
/// 255 bytes (as Kafka names deleted and stray partition directories).
pub(crate) fn set_aside_name(topic: &str, partition: i32, nonce: u64, kind: SetAside) -> String {
    let suffix = format!("-{partition}.{nonce:x}-{}", kind.suffix());
    let keep = 255usize.saturating_sub(suffix.len()).min(topic.len());
    format!("{}{suffix}", topic.get(..keep).unwrap_or(topic))
}

/// True for a name [`set_aside_name`] made with `kind`: only such directories are removed
/// as leftovers of an interrupted delete, never a user's `backup-delete`.
pub(crate) fn is_set_aside(name: &str, kind: SetAside) -> bool {
    let Some(rest) = name
        .strip_suffix(kind.suffix())
        .and_then(|r| r.strip_suffix('-'))
    else {
        return false;
    };
    let Some((head, nonce)) = rest.rsplit_once('.') else {
        return false;
    };
    !nonce.is_empty()
        && nonce.bytes().all(|b| b.is_ascii_hexdigit())
        && parse_partition_dir(head).is_some()
}

// ---- Segment files -----------------------------------------------------------------------

/// The files a segment (or a partition's producer state at an offset) is made of, named
/// `<20-digit base offset>.<extension>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum FileKind {
    /// The records (`.log`).
    Log,
    /// The offset index (`.index`).
    Index,
    /// The time index (`.timeindex`).
    TimeIndex,
    /// A producer-state snapshot taken at that offset (`.snapshot`).
    Snapshot,
    /// The aborted transactions whose ABORT marker lies in the segment (`.txnindex`); only
    /// segments that hold one have the file, as in Kafka.
    TxnIndex,
}

impl FileKind {
    /// A segment's three files, in the order they are created and deleted.
    pub(crate) const SEGMENT: [FileKind; 3] = [FileKind::Log, FileKind::Index, FileKind::TimeIndex];
    /// The files a replacement renames into place, in that order: indexes first, the log
    /// last, because a `.log.swap` is what an open acts on. The `.txnindex` is among them
    /// (when the segment has one: it is the one kind that may be absent), so a compaction
    /// that merges segments carries their aborted transactions into the merged one.
    pub(crate) const INDEXES_THEN_LOG: [FileKind; 4] = [
        FileKind::Index,
        FileKind::TimeIndex,
        FileKind::TxnIndex,
        FileKind::Log,
    ];

    /// The extension, without the dot.
    pub(crate) const fn ext(self) -> &'static str {
        match self {
            FileKind::Log => "log",
            FileKind::Index => "index",
            FileKind::TimeIndex => "timeindex",
            FileKind::Snapshot => "snapshot",
            FileKind::TxnIndex => "txnindex",
        }
    }

    fn from_ext(ext: &str) -> Option<FileKind> {
        Some(match ext {
            "log" => FileKind::Log,
            "index" => FileKind::Index,
            "timeindex" => FileKind::TimeIndex,
            "snapshot" => FileKind::Snapshot,
            "txnindex" => FileKind::TxnIndex,
            _ => return None,
        })
    }
}

/// A suffix after a segment file's extension: the file is in the middle of something.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transient {
    /// Written by compaction, not yet part of the log (`.cleaned`).
    Cleaned,
    /// A compaction result being swapped in (`.swap`); an open completes the swap.
    Swap,
    /// Renamed for deletion (`.deleted`).
    Deleted,
    /// Being written before a rename (`.tmp`).
    Tmp,
    /// A truncation's copy of the kept prefix (`.truncating`).
    Truncating,
    /// A copy of a segment found damaged at rest, kept for a person (`.damaged`).
    Damaged,
}

impl Transient {
    /// The suffix, with its dot.
    pub(crate) const fn suffix(self) -> &'static str {
        match self {
            Transient::Cleaned => ".cleaned",
            Transient::Swap => ".swap",
            Transient::Deleted => ".deleted",
            Transient::Tmp => ".tmp",
            Transient::Truncating => ".truncating",
            Transient::Damaged => ".damaged",
        }
    }

    /// Leftovers an open deletes: files topiclog wrote and had not finished with. Swaps are
    /// completed instead, and damaged copies are kept.
    pub(crate) const LEFTOVERS: [Transient; 4] = [
        Transient::Deleted,
        Transient::Cleaned,
        Transient::Tmp,
        Transient::Truncating,
    ];

    fn from_suffix(s: &str) -> Option<Transient> {
        Some(match s {
            "cleaned" => Transient::Cleaned,
            "swap" => Transient::Swap,
            "deleted" => Transient::Deleted,
            "tmp" => Transient::Tmp,
            "truncating" => Transient::Truncating,
            "damaged" => Transient::Damaged,
            _ => return None,
        })
    }
}

/// A parsed segment file name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SegmentFile {
    /// The base offset in the name.
    pub(crate) base: i64,
    /// Which file of the segment.
    pub(crate) kind: FileKind,
    /// A transient suffix, if any.
    pub(crate) transient: Option<Transient>,
}

/// `00000000000000000042.log` for base offset 42 and [`FileKind::Log`].
pub(crate) fn file_name(base: i64, kind: FileKind) -> String {
    format!("{base:020}.{}", kind.ext())
}

/// The name of a segment file carrying a transient suffix (`00000000000000000042.log.swap`).
pub(crate) fn transient_name(base: i64, kind: FileKind, transient: Transient) -> String {
    format!("{base:020}.{}{}", kind.ext(), transient.suffix())
}

/// `path` with a transient suffix appended to its file name.
pub(crate) fn with_transient(path: &Path, transient: Transient) -> PathBuf {
    let mut name = path.as_os_str().to_os_string();
    name.push(transient.suffix());
    PathBuf::from(name)
}

/// Parses a segment file name: a 20-digit base offset, a known extension and at most one
/// known transient suffix. Anything else is not a segment file (`None`).
pub(crate) fn parse_file_name(name: &str) -> Option<SegmentFile> {
    let (stem, rest) = name.split_once('.')?;
    if stem.len() != 20 || !stem.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let base = stem.parse().ok()?;
    let (ext, transient) = match rest.split_once('.') {
        Some((ext, t)) => (ext, Some(Transient::from_suffix(t)?)),
        None => (rest, None),
    };
    Some(SegmentFile {
        base,
        kind: FileKind::from_ext(ext)?,
        transient,
    })
}

/// The base offset of `name` when it is exactly `<base>.<kind>`, with no transient suffix.
pub(crate) fn parse_plain(name: &str, kind: FileKind) -> Option<i64> {
    parse_file_name(name)
        .filter(|f| f.kind == kind && f.transient.is_none())
        .map(|f| f.base)
}

/// A name beside segment log `log` for a copy of it found damaged at rest: `<log>.damaged`,
/// or `<log>.damaged.<n>` for the `n`th when earlier ones are taken. Such names parse as no
/// segment file an open acts on (a damaged copy is kept, never swept or loaded).
pub(crate) fn damaged_copy(log: &Path, n: u32) -> PathBuf {
    let aside = with_transient(log, Transient::Damaged);
    if n == 0 {
        return aside;
    }
    let mut name = aside.into_os_string();
    name.push(format!(".{n}"));
    PathBuf::from(name)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn set_aside_names_round_trip_and_user_names_do_not_match() {
        let n = set_aside_name("orders", 3, 0x1a2b, SetAside::Delete);
        assert_eq!(n, "orders-3.1a2b-delete");
        assert!(is_set_aside(&n, SetAside::Delete));
        assert!(!is_set_aside(&n, SetAside::Stray));
        for user in [
            "backup-delete",
            "photos-2024-delete",
            "a.b-delete",
            "x-1.zz-delete",
        ] {
            assert!(!is_set_aside(user, SetAside::Delete), "{user}");
        }
        let long = "t".repeat(249);
        assert!(set_aside_name(&long, 99_999, u64::MAX, SetAside::Stray).len() <= 255);
    }

    #[test]
    fn partition_dir_names() {
        assert_eq!(parse_partition_dir("orders-0"), Some(("orders", 0)));
        assert_eq!(parse_partition_dir("a-b-12"), Some(("a-b", 12)));
        assert_eq!(parse_partition_dir("orders-"), None);
        // A topic name may end in '-'.
        assert_eq!(parse_partition_dir("orders--1"), Some(("orders-", 1)));
        assert_eq!(parse_partition_dir("orders-+1"), None);
        assert_eq!(parse_partition_dir("-1"), None);
    }

    #[test]
    fn topic_names() {
        for ok in ["a", "orders.v1", "A_b-9", &"x".repeat(249)] {
            validate_topic_name(ok).unwrap();
        }
        for bad in ["", ".", "..", "a/b", "a b", "ä", &"x".repeat(250), "../x"] {
            assert!(
                matches!(
                    validate_topic_name(bad),
                    Err(Error::InvalidTopicName { .. })
                ),
                "{bad:?} accepted"
            );
        }
    }

    #[test]
    fn segment_file_names_round_trip() {
        for kind in [
            FileKind::Log,
            FileKind::Index,
            FileKind::TimeIndex,
            FileKind::Snapshot,
            FileKind::TxnIndex,
        ] {
            let plain = parse_file_name(&file_name(42, kind)).unwrap();
            assert_eq!((plain.base, plain.kind, plain.transient), (42, kind, None));
            let swap = parse_file_name(&transient_name(7, kind, Transient::Swap)).unwrap();
            assert_eq!(
                (swap.base, swap.kind, swap.transient),
                (7, kind, Some(Transient::Swap))
            );
        }
        assert_eq!(file_name(42, FileKind::Log), "00000000000000000042.log");
    }

    #[test]
    fn plain_names_and_damaged_copies() {
        assert_eq!(
            parse_plain("00000000000000000042.log", FileKind::Log),
            Some(42)
        );
        assert_eq!(
            parse_plain("00000000000000000042.log", FileKind::Index),
            None
        );
        assert_eq!(
            parse_plain("00000000000000000042.log.swap", FileKind::Log),
            None
        );
        let log = Path::new("/d/t-0/00000000000000000042.log");
        assert_eq!(
            damaged_copy(log, 0),
            Path::new("/d/t-0/00000000000000000042.log.damaged")
        );
        assert_eq!(
            damaged_copy(log, 3),
            Path::new("/d/t-0/00000000000000000042.log.damaged.3")
        );
        let tmp = with_transient(&damaged_copy(log, 1), Transient::Tmp);
        assert!(
            Transient::LEFTOVERS
                .iter()
                .any(|t| tmp.to_str().unwrap().ends_with(t.suffix())),
            "an unfinished damaged copy is swept"
        );
        assert_eq!(
            parse_plain("00000000000000000042.log.damaged.1", FileKind::Log),
            None
        );
    }

    #[test]
    fn names_that_are_not_segment_files_parse_as_none() {
        for name in [
            "42.log",
            "0000000000000000004x.log",
            "00000000000000000042.txt",
            "00000000000000000042.log.bak",
            "00000000000000000042.log.swap.tmp",
            "00000000000000000042",
            "topiclog.properties",
        ] {
            assert_eq!(parse_file_name(name), None, "{name}");
        }
    }
}
