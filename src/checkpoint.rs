//! Kafka's checkpoint text files (`recovery-point-offset-checkpoint`,
//! `log-start-offset-checkpoint`): a version line `0`, a count line, then `topic partition
//! offset` per line. Written temp → fsync → rename → directory fsync; an unreadable file
//! counts as empty (recovery then scans from offset 0).

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use parking_lot::Mutex;

use crate::error::Result;
use crate::io::write_atomic;

/// Reads a checkpoint; a missing or malformed file yields an empty map.
pub(crate) fn read(path: &Path) -> HashMap<(String, i32), i64> {
    let Ok(text) = crate::io::ops::read_to_string(path) else {
        return HashMap::new();
    };
    parse(&text).unwrap_or_default()
}

fn parse(text: &str) -> Option<HashMap<(String, i32), i64>> {
    let mut lines = text.lines();
    if lines.next()?.trim() != "0" {
        return None;
    }
    let count: usize = lines.next()?.trim().parse().ok()?;
    let mut out = HashMap::with_capacity(count.min(1 << 20));
    for line in lines.take(count) {
        let mut f = line.split_whitespace();
        let topic = f.next()?.to_string();
        let partition = f.next()?.parse().ok()?;
        let offset = f.next()?.parse().ok()?;
        out.insert((topic, partition), offset);
    }
    (out.len() == count).then_some(out)
}

/// Writes a checkpoint atomically.
pub(crate) fn write(path: &Path, entries: &[(String, i32, i64)]) -> Result<()> {
    let mut text = String::with_capacity(16 + entries.len() * 32);
    let _ = writeln!(text, "0\n{}", entries.len());
    for (t, p, o) in entries {
        let _ = writeln!(text, "{t} {p} {o}");
    }
    // Unchanged since a write known to be durable (a clean reopen, an idle periodic
    // checkpoint): keep the file, saving an fsync, a rename and a directory fsync. A write that
    // failed part-way is never taken as durable, so the next call redoes it.
    let known = DURABLE
        .lock()
        .get(path)
        .is_some_and(|d| d.as_slice() == text.as_bytes());
    if known && std::fs::read(path).is_ok_and(|old| old == text.as_bytes()) {
        return Ok(());
    }
    DURABLE.lock().remove(path);
    write_atomic(path, text.as_bytes())?;
    DURABLE.lock().insert(path.to_path_buf(), text.into_bytes());
    Ok(())
}

/// Checkpoint contents known to be durable, by path: written completely by this process
/// (file fsync, rename, directory fsync), or found after a clean shutdown.
static DURABLE: Mutex<BTreeMap<PathBuf, Vec<u8>>> = Mutex::new(BTreeMap::new());

/// Records that `path` as it is on disk is durable (called after a clean shutdown, whose
/// close wrote every checkpoint completely).
pub(crate) fn mark_durable(path: &Path) {
    match std::fs::read(path) {
        Ok(b) => DURABLE.lock().insert(path.to_path_buf(), b),
        Err(_) => DURABLE.lock().remove(path),
    };
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_garbage() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("cp");
        write(&p, &[("a".into(), 0, 5), ("b.c-d".into(), 3, 7)]).unwrap();
        let m = read(&p);
        assert_eq!(m.get(&("b.c-d".to_string(), 3)), Some(&7));
        // The same entries again leave the file alone (same inode, same mtime).
        let before = std::fs::metadata(&p).unwrap();
        write(&p, &[("a".into(), 0, 5), ("b.c-d".into(), 3, 7)]).unwrap();
        let after = std::fs::metadata(&p).unwrap();
        assert_eq!(before.modified().unwrap(), after.modified().unwrap());
        {
            use std::os::unix::fs::MetadataExt;
            assert_eq!(before.ino(), after.ino());
        }
        write(&p, &[("a".into(), 0, 6)]).unwrap();
        assert_eq!(read(&p).get(&("a".to_string(), 0)), Some(&6));
        std::fs::write(&p, "0\n2\na 0 1\n").unwrap();
        assert!(read(&p).is_empty(), "a short file is unreadable");
        std::fs::write(&p, "\u{0}\u{1}garbage").unwrap();
        assert!(read(&p).is_empty());
    }
}
