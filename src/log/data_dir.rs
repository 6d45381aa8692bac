//! A data directory's identity (`topiclog.properties`, as Kafka's `meta.properties`) and the
//! names topiclog gives directories it sets aside or deletes.
//!
//! The identity is what lets topiclog tell its own folders from a user's: a read-write open
//! of a non-empty directory without it is refused, so a mistyped `--dir` never has its
//! subfolders taken for partitions (and, before this file existed, deleted as orphans).

use std::fs;
use std::io::Read as _;
use std::path::{Path, PathBuf};

use crate::error::{Error, IoContext, Result};
use crate::io::{ops, write_atomic};
use crate::layout::{
    IDENTITY_FILE, LOCK_FILE, RECOVERY_POINT_FILE, SetAside, TOPICS_DIR, set_aside_name,
};

/// The on-disk format this build writes and reads. A directory that says a newer one is
/// refused rather than guessed at.
pub(crate) const FORMAT_VERSION: u32 = 1;

/// What a directory is, as far as opening it goes.
#[derive(Debug)]
pub(crate) enum DirState {
    /// Nothing there yet.
    Missing,
    /// A folder with nothing of anyone's in it.
    Empty,
    /// A topiclog data directory.
    Identified(Identity),
    /// A data directory written by a topiclog from before the identity file: adopted once.
    Legacy,
}

/// The parsed identity file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Identity {
    pub(crate) directory_id: String,
}

/// Looks at `dir` without changing anything.
///
/// # Errors
/// [`Error::NotADataDirectory`] for a regular file, a non-empty folder that is not a data
/// directory, or an identity of a newer format; [`Error::Corrupt`] for an unreadable identity.
pub(crate) fn inspect(dir: &Path) -> Result<DirState> {
    match fs::metadata(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(DirState::Missing),
        Err(e) => return Err(Error::io(dir, e)),
        Ok(m) if !m.is_dir() => {
            return Err(not_a_data_dir(
                dir,
                "it is a file, not a directory".to_string(),
            ));
        }
        Ok(_) => {}
    }
    let identity = dir.join(IDENTITY_FILE);
    match ops::read_to_string(&identity) {
        Ok(text) => return parse(&identity, &text).map(DirState::Identified),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::io(&identity, e)),
    }
    if dir.join(TOPICS_DIR).is_dir() && dir.join(RECOVERY_POINT_FILE).is_file() {
        return Ok(DirState::Legacy);
    }
    let mut foreign = Vec::new();
    for entry in fs::read_dir(dir).at(dir)? {
        let name = entry.at(dir)?.file_name();
        if !is_open_leftover(&name.to_string_lossy()) {
            foreign.push(name.to_string_lossy().into_owned());
        }
    }
    if foreign.is_empty() {
        return Ok(DirState::Empty);
    }
    foreign.sort();
    let shown: Vec<&str> = foreign.iter().take(3).map(String::as_str).collect();
    Err(not_a_data_dir(
        dir,
        format!(
            "it holds {} entr{} ({}{}) but no {IDENTITY_FILE}; open an empty or new \
             directory (a data directory that lost the file opens again once it holds one \
             with the line format.version={FORMAT_VERSION})",
            foreign.len(),
            if foreign.len() == 1 { "y" } else { "ies" },
            shown.join(", "),
            if foreign.len() > shown.len() {
                ", ..."
            } else {
                ""
            },
        ),
    ))
}

/// Files an open may leave in a folder before it writes the identity (the lock, the
/// identity's temp file): a folder holding only these is still empty.
fn is_open_leftover(name: &str) -> bool {
    // `write_atomic`'s temp file for the identity.
    name == LOCK_FILE || name == "topiclog.properties.tmp"
}

fn not_a_data_dir(dir: &Path, reason: String) -> Error {
    Error::NotADataDirectory {
        path: dir.to_path_buf(),
        reason,
    }
}

fn parse(path: &Path, text: &str) -> Result<Identity> {
    let corrupt = |reason: String| Error::Corrupt {
        path: path.to_path_buf(),
        position: 0,
        reason,
    };
    let mut version = None;
    let mut id = None;
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((k, v)) = line.split_once('=') else {
            return Err(corrupt(format!("line '{line}' is not key=value")));
        };
        match k.trim() {
            "format.version" => {
                version = Some(v.trim().parse::<u32>().map_err(|_| {
                    corrupt(format!("format.version '{}' is not a number", v.trim()))
                })?);
            }
            "directory.id" => id = Some(v.trim().to_string()),
            // Unknown keys are kept for newer versions of the same format.
            _ => {}
        }
    }
    let version = version.ok_or_else(|| corrupt("no format.version".into()))?;
    if version > FORMAT_VERSION {
        return Err(not_a_data_dir(
            path.parent().unwrap_or(path),
            format!(
                "it has format version {version}, newer than this topiclog's ({FORMAT_VERSION})"
            ),
        ));
    }
    // A missing id (a file a person wrote by hand) is given one by the next read-write open.
    Ok(Identity {
        directory_id: id.unwrap_or_default(),
    })
}

/// Writes a new identity (fsynced, renamed into place, directory fsynced).
pub(crate) fn write_identity(dir: &Path) -> Result<Identity> {
    let directory_id = new_directory_id();
    let text = format!(
        "# A topiclog data directory. topiclog refuses to open a non-empty directory\n\
         # without this file, so that it never takes someone else's folders for its own.\n\
         format.version={FORMAT_VERSION}\n\
         directory.id={directory_id}\n"
    );
    write_atomic(&dir.join(IDENTITY_FILE), text.as_bytes())?;
    Ok(Identity { directory_id })
}

/// 16 random bytes in Kafka's UUID text form (URL-safe base64, no padding: 22 characters).
fn new_directory_id() -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut bytes = [0u8; 16];
    let filled = fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .is_ok();
    if !filled {
        // No /dev/urandom: std's per-process random hash keys, mixed with the time.
        use std::hash::{BuildHasher, Hasher};
        for (i, chunk) in bytes.chunks_exact_mut(8).enumerate() {
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_usize(i);
            h.write_u128(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos()),
            );
            chunk.copy_from_slice(&h.finish().to_le_bytes());
        }
    }
    let bits = u128::from_be_bytes(bytes);
    let mut out = String::with_capacity(22);
    // 22 six-bit digits cover 132 bits: the first carries the top 2 of the 128.
    for i in (0..22).rev() {
        let digit = ((bits >> (i * 6)) & 0x3f) as usize;
        out.push(char::from(ALPHABET.get(digit).copied().unwrap_or(b'A')));
    }
    out
}

/// A free name in `root` for a directory set aside.
pub(crate) fn free_set_aside_path(
    root: &Path,
    topic: &str,
    partition: i32,
    mut nonce: u64,
    kind: SetAside,
) -> PathBuf {
    loop {
        let path = root.join(set_aside_name(topic, partition, nonce, kind));
        if !path.exists() {
            return path;
        }
        nonce = nonce.wrapping_add(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_round_trips_and_ids_differ() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| Error::io("tempdir", e))?;
        let a = write_identity(dir.path())?;
        assert_eq!(a.directory_id.len(), 22);
        match inspect(dir.path())? {
            DirState::Identified(id) => assert_eq!(id, a),
            other => panic!("{other:?}"),
        }
        assert_ne!(new_directory_id(), new_directory_id());
        Ok(())
    }
}
