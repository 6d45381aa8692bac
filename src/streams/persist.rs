//! Persistent state stores: a store's entries on disk in one redb file per store and task,
//! with the changelog offset they reflect (the local checkpoint), written in the same redb
//! transaction as the entries so the two never disagree.

use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use redb::{
    Database, DatabaseError, ReadOnlyTable, ReadableDatabase, ReadableTable, ReadableTableMetadata,
    TableDefinition,
};

use crate::error::{Error, Result};

/// Entries: the key's bytes to the value, after the 8-byte big-endian timestamp of its last
/// update.
const ENTRIES: TableDefinition<&[u8], &[u8]> = TableDefinition::new("entries");
/// The checkpoint: the changelog offset the entries reflect (the next to replay).
const META: TableDefinition<&str, i64> = TableDefinition::new("meta");
const CHECKPOINT: &str = "changelog.next.offset";

/// How long an open waits for a handle of the same file another thread of this process is
/// closing (a task moving between threads).
const OPEN_WAIT: Duration = Duration::from_secs(10);

/// A store's file.
pub(crate) struct Backend {
    db: Database,
    path: PathBuf,
    checkpoint: Option<i64>,
    /// A snapshot for lookups, taken after each write.
    reader: Option<ReadOnlyTable<&'static [u8], &'static [u8]>>,
}

fn fail(path: &Path, what: &str, e: impl std::fmt::Display) -> Error {
    Error::Streams {
        reason: format!("state store file {}: {what}: {e}", path.display()),
    }
}

impl Backend {
    /// Opens (or makes) the file at `path`, waiting while another thread of this process
    /// still holds it.
    pub fn open(path: &Path) -> Result<Backend> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| fail(path, "making its directory", e))?;
        }
        let started = Instant::now();
        let mut set_aside = false;
        let db = loop {
            match Database::create(path) {
                Ok(db) => break db,
                Err(DatabaseError::DatabaseAlreadyOpen) if started.elapsed() < OPEN_WAIT => {
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(DatabaseError::DatabaseAlreadyOpen) => {
                    return Err(fail(path, "opening", DatabaseError::DatabaseAlreadyOpen));
                }
                // A file redb cannot open (damaged, or of another format) is kept aside, not
                // deleted, and the store is rebuilt from its changelog in a new one.
                Err(e) if !set_aside => {
                    let aside = path.with_extension("redb.damaged");
                    eprintln!(
                        "streams: the state store file {} does not open ({e}); it is kept as \
                         {} and the store is rebuilt from its changelog",
                        path.display(),
                        aside.display()
                    );
                    std::fs::rename(path, &aside)
                        .map_err(|e| fail(path, "setting the damaged file aside", e))?;
                    set_aside = true;
                }
                Err(e) => return Err(fail(path, "opening", e)),
            }
        };
        let mut b = Backend {
            db,
            path: path.to_path_buf(),
            checkpoint: None,
            reader: None,
        };
        b.checkpoint = b.read_checkpoint()?;
        Ok(b)
    }

    fn read_checkpoint(&self) -> Result<Option<i64>> {
        let txn = self
            .db
            .begin_read()
            .map_err(|e| fail(&self.path, "reading", e))?;
        let meta = match txn.open_table(META) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(fail(&self.path, "reading its checkpoint", e)),
        };
        meta.get(CHECKPOINT)
            .map(|v| v.map(|g| g.value()))
            .map_err(|e| fail(&self.path, "reading its checkpoint", e))
    }

    /// The changelog offset the entries reflect: a restore replays from there. `None`: no
    /// checkpoint (a new file, or wiped).
    pub fn checkpoint(&self) -> Option<i64> {
        self.checkpoint
    }

    /// Where the file is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn reader(&mut self) -> Result<Option<&ReadOnlyTable<&'static [u8], &'static [u8]>>> {
        if self.reader.is_none() {
            let txn = self
                .db
                .begin_read()
                .map_err(|e| fail(&self.path, "reading", e))?;
            match txn.open_table(ENTRIES) {
                Ok(t) => self.reader = Some(t),
                Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
                Err(e) => return Err(fail(&self.path, "reading", e)),
            }
        }
        Ok(self.reader.as_ref())
    }

    /// The value stored under `key`, with its timestamp.
    pub fn get(&mut self, key: &[u8]) -> Result<Option<(i64, Vec<u8>)>> {
        let path = self.path.clone();
        let Some(table) = self.reader()? else {
            return Ok(None);
        };
        let got = table.get(key).map_err(|e| fail(&path, "reading", e))?;
        Ok(got.and_then(|g| split(g.value()).map(|(t, v)| (t, v.to_vec()))))
    }

    /// Calls `f` with each entry whose key is in `from..=to` (`None`: unbounded), in key
    /// order.
    pub fn scan(
        &mut self,
        from: Option<&[u8]>,
        to: Option<&[u8]>,
        mut f: impl FnMut(&[u8], i64, &[u8]) -> Result<()>,
    ) -> Result<()> {
        let path = self.path.clone();
        let Some(table) = self.reader()? else {
            return Ok(());
        };
        if let (Some(a), Some(b)) = (from, to)
            && a > b
        {
            return Ok(());
        }
        let range = table
            .range((
                from.map_or(Bound::Unbounded, Bound::Included),
                to.map_or(Bound::Unbounded, Bound::Included),
            ))
            .map_err(|e| fail(&path, "reading", e))?;
        for item in range {
            let (k, v) = item.map_err(|e| fail(&path, "reading", e))?;
            if let Some((t, value)) = split(v.value()) {
                f(k.value(), t, value)?;
            }
        }
        Ok(())
    }

    /// How many entries the file holds.
    pub fn len(&mut self) -> Result<u64> {
        let path = self.path.clone();
        match self.reader()? {
            Some(t) => t.len().map_err(|e| fail(&path, "reading", e)),
            None => Ok(0),
        }
    }

    /// Writes `changes` (a value with its timestamp, or `None` to delete) and the checkpoint
    /// in one durable transaction.
    pub fn write<'a>(
        &mut self,
        changes: impl Iterator<Item = (&'a [u8], Option<(i64, &'a [u8])>)>,
        checkpoint: i64,
    ) -> Result<()> {
        let path = self.path.clone();
        let err = |what: &str, e: &dyn std::fmt::Display| fail(&path, what, e);
        self.reader = None;
        let mut txn = self.db.begin_write().map_err(|e| err("writing", &e))?;
        // Saves the allocator state with each commit: reopening after a crash does not walk
        // the whole file.
        txn.set_quick_repair(true);
        {
            let mut table = txn.open_table(ENTRIES).map_err(|e| err("writing", &e))?;
            let mut buf = Vec::new();
            for (key, change) in changes {
                match change {
                    Some((t, value)) => {
                        buf.clear();
                        buf.extend_from_slice(&t.to_be_bytes());
                        buf.extend_from_slice(value);
                        table
                            .insert(key, buf.as_slice())
                            .map_err(|e| err("writing", &e))?;
                    }
                    None => {
                        table.remove(key).map_err(|e| err("writing", &e))?;
                    }
                }
            }
            let mut meta = txn.open_table(META).map_err(|e| err("writing", &e))?;
            meta.insert(CHECKPOINT, checkpoint)
                .map_err(|e| err("writing", &e))?;
        }
        txn.commit().map_err(|e| err("committing", &e))?;
        self.checkpoint = Some(checkpoint);
        Ok(())
    }

    /// Deletes every entry and the checkpoint (the store is then rebuilt from its changelog).
    pub fn wipe(&mut self) -> Result<()> {
        let path = self.path.clone();
        let err = |e: &dyn std::fmt::Display| fail(&path, "wiping", e);
        self.reader = None;
        let mut txn = self.db.begin_write().map_err(|e| err(&e))?;
        txn.set_quick_repair(true);
        txn.delete_table(ENTRIES).map_err(|e| err(&e))?;
        txn.delete_table(META).map_err(|e| err(&e))?;
        txn.commit().map_err(|e| err(&e))?;
        self.checkpoint = None;
        Ok(())
    }
}

/// A stored value: its timestamp and bytes.
fn split(v: &[u8]) -> Option<(i64, &[u8])> {
    let (t, rest) = v.split_first_chunk::<8>()?;
    Some((i64::from_be_bytes(*t), rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_and_checkpoint_survive_a_reopen_and_a_wipe_clears_both() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join("0_0").join("counts.redb");
        let mut b = Backend::open(&path).expect("open");
        assert_eq!(b.checkpoint(), None);
        assert_eq!(b.get(b"a").expect("get"), None);
        b.write(
            [
                (&b"a"[..], Some((5, &b"1"[..]))),
                (&b"b"[..], Some((6, &b"2"[..]))),
            ]
            .into_iter(),
            10,
        )
        .expect("write");
        b.write([(&b"b"[..], None)].into_iter(), 11).expect("write");
        drop(b);
        let mut b = Backend::open(&path).expect("reopen");
        assert_eq!(b.checkpoint(), Some(11));
        assert_eq!(b.get(b"a").expect("get"), Some((5, b"1".to_vec())));
        assert_eq!(b.get(b"b").expect("get"), None);
        let mut seen = Vec::new();
        b.scan(None, None, |k, t, v| {
            seen.push((k.to_vec(), t, v.to_vec()));
            Ok(())
        })
        .expect("scan");
        assert_eq!(seen, [(b"a".to_vec(), 5, b"1".to_vec())]);
        b.wipe().expect("wipe");
        assert_eq!(b.checkpoint(), None);
        assert_eq!(b.len().expect("len"), 0);
    }
}
