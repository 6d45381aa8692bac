//! Helpers shared by the directory-level harnesses (no libfuzzer dependency: the main crate's
//! `tests/fuzz_regressions.rs` compiles these files too, with only `tempfile` and `bytes`).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use tempfile::TempDir;

/// Where a harness makes its scratch directories.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scratch {
    /// `/dev/shm` when the machine has one (fuzzing: the targets fsync a lot), else as
    /// [`Scratch::TempDir`].
    Tmpfs,
    /// The system temporary directory (`std::env::temp_dir()`, `TMPDIR`): regression tests.
    TempDir,
}

const PREFIX: &str = "topiclog-fuzz-";

/// A fresh scratch directory, removed when dropped.
///
/// A fuzz run that crashes aborts the process, so its directory is never removed: names carry
/// the process id, and the first call in a process removes directories left by dead processes.
pub fn scratch_dir(kind: Scratch) -> TempDir {
    static SWEPT: OnceLock<()> = OnceLock::new();
    let shm = Path::new("/dev/shm");
    SWEPT.get_or_init(|| {
        if shm.is_dir() {
            sweep_dead(shm);
        }
        sweep_dead(&std::env::temp_dir());
    });
    let make = |parent: &Path| {
        tempfile::Builder::new()
            .prefix(&format!("{PREFIX}{}-", std::process::id()))
            .tempdir_in(parent)
    };
    if kind == Scratch::Tmpfs
        && shm.is_dir()
        && let Ok(dir) = make(shm)
    {
        return dir;
    }
    let tmp = std::env::temp_dir();
    make(&tmp).unwrap_or_else(|e| {
        panic!(
            "cannot create a scratch directory in {}: {e}",
            tmp.display()
        )
    })
}

/// Removes `topiclog-fuzz-<pid>-*` directories whose process is gone.
fn sweep_dead(parent: &Path) {
    if !Path::new("/proc/self").exists() {
        return; // cannot tell live processes from dead ones
    }
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(PREFIX)) else {
            continue;
        };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

/// Every file under `root` as (path relative to `root`, contents).
pub fn snapshot(root: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<(PathBuf, Vec<u8>)>) {
        for e in std::fs::read_dir(dir).expect("read_dir") {
            let e = e.expect("dir entry");
            let p = e.path();
            if e.file_type().expect("file type").is_dir() {
                walk(root, &p, out);
            } else {
                let rel = p.strip_prefix(root).expect("prefix").to_path_buf();
                out.push((rel, std::fs::read(&p).expect("read file")));
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out.sort();
    out
}

/// Writes a snapshot taken by [`snapshot`] under `root`.
pub fn restore(root: &Path, files: &[(PathBuf, Vec<u8>)]) {
    for (rel, bytes) in files {
        let p = root.join(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).expect("create dir");
        }
        std::fs::write(&p, bytes).expect("write file");
    }
}

/// Whether the environment variable `name` is set to `1`.
pub fn env_flag(name: &str) -> bool {
    std::env::var_os(name).is_some_and(|v| v == "1")
}

/// A little-endian cursor over the fuzz input that never fails: missing bytes read as zero.
pub struct Input<'a> {
    data: &'a [u8],
}

impl<'a> Input<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Input { data }
    }

    pub fn u8(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&b, rest)) => {
                self.data = rest;
                b
            }
            None => 0,
        }
    }

    pub fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }

    pub fn u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        for x in &mut b {
            *x = self.u8();
        }
        u64::from_le_bytes(b)
    }

    /// The next `n` bytes (fewer if the input runs out).
    pub fn bytes(&mut self, n: usize) -> &'a [u8] {
        let (a, b) = self.data.split_at(n.min(self.data.len()));
        self.data = b;
        a
    }

    /// Everything left.
    pub fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.data)
    }
}
