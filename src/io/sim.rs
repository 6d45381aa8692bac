//! A simulated disk under a data directory, for power-loss and fault-injection tests (feature
//! `sim`, off by default; not part of the supported API).
//!
//! Installed over a directory, [`SimFs`] sees every file mutation the engine makes there (they
//! all go through `io::ops`). It still performs them on the real files, so the engine reads its
//! memory maps as usual, and it keeps a model of what a disk with a volatile write cache would
//! hold:
//!
//! - per file (by inode), the **durable image** (contents as of its last `fsync`/`fdatasync`)
//!   and the writes and truncations made since;
//! - per directory, the **durable namespace** (names and the files they point at, as of the
//!   last directory fsync) and the creations, renames and removals made since.
//!
//! [`SimFs::power_loss`] then rewrites the directory as the disk could look after power
//! failed: each directory keeps its durable namespace plus a seeded random prefix of the later
//! namespace changes; each file keeps its durable image plus a seeded random subset of the
//! later writes, the last one kept torn at a random byte. `fsync` is not passed to the real
//! disk (the model is what counts), which keeps these tests fast.
//!
//! Faults ([`SimFs::fail`]) make chosen operations return `ENOSPC` or `EIO` without touching
//! the disk, or write part of a buffer and then fail with `ENOSPC`;
//! [`SimFs::cut_power_after`] fails every operation from the n-th on, as a machine that lost
//! power mid-flight would.
//!
//! Not modelled: directories themselves (creating, renaming and removing directories is taken
//! as durable at once), reads through memory maps (never faulted), and reordering of namespace
//! changes within one directory (a prefix survives, as on a journaling file system).

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::{self, IoSlice, Seek, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::{Mutex, RwLock};

/// True while at least one simulation is installed: the only cost on the real path.
static ACTIVE: AtomicBool = AtomicBool::new(false);
static INSTALLED: RwLock<Vec<Arc<Sim>>> = RwLock::new(Vec::new());

/// The simulation owning `path`, if any.
#[inline]
pub(crate) fn owner(path: &Path) -> Option<Arc<Sim>> {
    if !ACTIVE.load(Ordering::Relaxed) {
        return None;
    }
    INSTALLED
        .read()
        .iter()
        .find(|s| path.starts_with(&s.root))
        .cloned()
}

/// An operation a fault can target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `write`/`writev` (appends, index entries, whole-file writes).
    Write,
    /// `fsync`/`fdatasync` of a file.
    Sync,
    /// fsync of a directory.
    SyncDir,
    /// `ftruncate`.
    SetLen,
    /// Creating a file (`open(O_CREAT)` of a name that does not exist).
    Create,
    /// `rename` (a fault matches the old or the new name).
    Rename,
    /// `unlink` of a file.
    Remove,
    /// Whole-file `read` (indexes at recovery, checkpoints, snapshots, swap files).
    Read,
    /// `fallocate` extending a preallocated active segment (`preallocate=true`). A fault of
    /// kind [`FaultKind::Unsupported`] makes it report a file system without `fallocate`.
    Allocate,
}

/// What a fault does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    /// Fails with `ENOSPC` ("no space left on device"), nothing done.
    NoSpace,
    /// Fails with `EIO`, nothing done.
    Eio,
    /// Writes: writes about half of the bytes, then fails with `ENOSPC` (a disk filling up
    /// mid-write). Other operations: as [`FaultKind::NoSpace`].
    ShortWrite,
    /// Fails with `EOPNOTSUPP` (a file system without the operation), nothing done.
    Unsupported,
}

#[derive(Debug, Clone)]
struct Fault {
    op: Op,
    path_contains: String,
    kind: FaultKind,
    /// How many more calls fail; `None`: until cleared.
    remaining: Option<u32>,
}

#[derive(Debug, Clone)]
enum DataOp {
    Write { pos: u64, data: Vec<u8> },
    SetLen(u64),
}

#[derive(Debug, Default)]
struct FileModel {
    durable: Vec<u8>,
    pending: Vec<DataOp>,
    /// Operation number at the start of the last completed sync.
    synced_at: Option<u64>,
}

type FileId = usize;

#[derive(Debug, Clone)]
enum NsOp {
    Link(OsString, FileId),
    Unlink(OsString),
    Rename(OsString, OsString),
}

#[derive(Debug, Default, Clone)]
struct DirModel {
    durable: BTreeMap<OsString, FileId>,
    current: BTreeMap<OsString, FileId>,
    pending: Vec<NsOp>,
}

fn apply_ns(ns: &mut BTreeMap<OsString, FileId>, op: &NsOp) {
    match op {
        NsOp::Link(name, id) => {
            ns.insert(name.clone(), *id);
        }
        NsOp::Unlink(name) => {
            ns.remove(name);
        }
        NsOp::Rename(from, to) => {
            if let Some(id) = ns.remove(from) {
                ns.insert(to.clone(), id);
            }
        }
    }
}

fn apply_data(buf: &mut Vec<u8>, op: &DataOp) {
    match op {
        DataOp::Write { pos, data } => {
            let pos = *pos as usize;
            let end = pos + data.len();
            if buf.len() < end {
                buf.resize(end, 0);
            }
            if let Some(dst) = buf.get_mut(pos..end) {
                dst.copy_from_slice(data);
            }
        }
        DataOp::SetLen(len) => buf.resize(*len as usize, 0),
    }
}

#[derive(Debug, Default)]
struct State {
    files: Vec<FileModel>,
    by_ino: HashMap<(u64, u64), FileId>,
    dirs: BTreeMap<PathBuf, DirModel>,
    faults: Vec<Fault>,
    ops: u64,
    cut_after: Option<u64>,
    power_off: bool,
}

/// The shared part of a [`SimFs`].
#[derive(Debug)]
pub(crate) struct Sim {
    root: PathBuf,
    state: Mutex<State>,
}

fn err(kind: FaultKind) -> io::Error {
    match kind {
        FaultKind::NoSpace | FaultKind::ShortWrite => io::Error::from_raw_os_error(libc::ENOSPC),
        FaultKind::Eio => io::Error::from_raw_os_error(libc::EIO),
        FaultKind::Unsupported => io::Error::from_raw_os_error(libc::EOPNOTSUPP),
    }
}

fn split(path: &Path) -> (PathBuf, OsString) {
    (
        path.parent().map(Path::to_path_buf).unwrap_or_default(),
        path.file_name().map(OsString::from).unwrap_or_default(),
    )
}

fn ino(file: &File) -> io::Result<(u64, u64)> {
    let m = file.metadata()?;
    Ok((m.dev(), m.ino()))
}

impl State {
    /// Counts an operation and decides whether it fails.
    fn check(&mut self, op: Op, path: &Path) -> io::Result<Option<FaultKind>> {
        self.check_text(op, &path.to_string_lossy())
    }

    /// [`State::check`] against any text naming the operation's files.
    fn check_text(&mut self, op: Op, text: &str) -> io::Result<Option<FaultKind>> {
        self.ops += 1;
        if self.cut_after.is_some_and(|n| self.ops >= n) {
            self.power_off = true;
        }
        if self.power_off {
            return Err(io::Error::from_raw_os_error(libc::EIO));
        }
        let hit = self
            .faults
            .iter_mut()
            .find(|f| f.op == op && text.contains(&f.path_contains) && f.remaining != Some(0));
        let Some(f) = hit else { return Ok(None) };
        if let Some(n) = f.remaining.as_mut() {
            *n -= 1;
        }
        let kind = f.kind;
        if kind == FaultKind::ShortWrite && op == Op::Write {
            return Ok(Some(kind));
        }
        Err(err(kind))
    }

    fn new_file(&mut self, durable: Vec<u8>) -> FileId {
        self.files.push(FileModel {
            durable,
            ..FileModel::default()
        });
        self.files.len() - 1
    }

    /// The model id of an open file; files the model never saw are adopted as empty.
    fn id_of(&mut self, file: &File) -> io::Result<FileId> {
        let key = ino(file)?;
        if let Some(&id) = self.by_ino.get(&key) {
            return Ok(id);
        }
        let id = self.new_file(Vec::new());
        self.by_ino.insert(key, id);
        Ok(id)
    }

    fn dir(&mut self, dir: &Path) -> &mut DirModel {
        self.dirs.entry(dir.to_path_buf()).or_default()
    }

    fn ns_op(&mut self, dir: &Path, op: NsOp) {
        let d = self.dir(dir);
        apply_ns(&mut d.current, &op);
        d.pending.push(op);
    }

    fn record(&mut self, file: &File, op: DataOp) -> io::Result<()> {
        let id = self.id_of(file)?;
        if let Some(f) = self.files.get_mut(id) {
            f.pending.push(op);
        }
        Ok(())
    }

    /// Adds every directory and regular file under `dir` as durable.
    fn adopt_tree(&mut self, dir: &Path) -> io::Result<()> {
        let mut model = DirModel::default();
        for e in fs::read_dir(dir)? {
            let e = e?;
            let ft = e.file_type()?;
            if ft.is_dir() {
                self.adopt_tree(&e.path())?;
            } else if ft.is_file() {
                let m = e.metadata()?;
                let id = self.new_file(fs::read(e.path())?);
                self.by_ino.insert((m.dev(), m.ino()), id);
                model.durable.insert(e.file_name(), id);
            }
        }
        model.current = model.durable.clone();
        self.dirs.insert(dir.to_path_buf(), model);
        Ok(())
    }
}

impl Sim {
    pub(crate) fn writev_all(
        &self,
        file: &File,
        path: &Path,
        bufs: &mut [IoSlice<'_>],
    ) -> io::Result<()> {
        let mut st = self.state.lock();
        let fault = st.check(Op::Write, path)?;
        let mut data: Vec<u8> = bufs.iter().flat_map(|b| b.iter().copied()).collect();
        if fault.is_some() {
            data.truncate(data.len() / 2);
        }
        (&*file).write_all(&data)?;
        let end = (&*file).stream_position()?;
        let pos = end - data.len() as u64;
        st.record(file, DataOp::Write { pos, data })?;
        match fault {
            Some(kind) => Err(err(kind)),
            None => Ok(()),
        }
    }

    pub(crate) fn set_len(&self, file: &File, path: &Path, len: u64) -> io::Result<()> {
        let mut st = self.state.lock();
        st.check(Op::SetLen, path)?;
        file.set_len(len)?;
        st.record(file, DataOp::SetLen(len))
    }

    /// A positioned write: recorded as a write at `pos`; faults as for [`Sim::writev_all`].
    pub(crate) fn write_all_at(
        &self,
        file: &File,
        path: &Path,
        pos: u64,
        buf: &[u8],
    ) -> io::Result<()> {
        let mut st = self.state.lock();
        let fault = st.check(Op::Write, path)?;
        let data = match fault {
            Some(_) => buf.get(..buf.len() / 2).unwrap_or_default(),
            None => buf,
        };
        std::os::unix::fs::FileExt::write_all_at(file, data, pos)?;
        st.record(
            file,
            DataOp::Write {
                pos,
                data: data.to_vec(),
            },
        )?;
        match fault {
            Some(kind) => Err(err(kind)),
            None => Ok(()),
        }
    }

    /// `fallocate` to `len`: recorded as the size change it makes (never a shrink).
    pub(crate) fn allocate(&self, file: &File, path: &Path, len: u64) -> io::Result<()> {
        let mut st = self.state.lock();
        st.check(Op::Allocate, path)?;
        let before = file.metadata()?.len();
        super::ops::fallocate(file, len)?;
        if len > before {
            st.record(file, DataOp::SetLen(len))?;
        }
        Ok(())
    }

    /// A store through the writer's mapping: recorded as a write at `pos`. Faults of
    /// [`Op::Write`] apply, as to a write (a short one stores half).
    pub(crate) fn store(
        &self,
        map: &super::map::WriteMap,
        file: &File,
        path: &Path,
        pos: u64,
        data: &[u8],
    ) -> io::Result<()> {
        let mut st = self.state.lock();
        let fault = st.check(Op::Write, path)?;
        let data = match fault {
            Some(_) => data.get(..data.len() / 2).unwrap_or_default(),
            None => data,
        };
        super::ops::store_in(map, pos, data)?;
        st.record(
            file,
            DataOp::Write {
                pos,
                data: data.to_vec(),
            },
        )?;
        match fault {
            Some(kind) => Err(err(kind)),
            None => Ok(()),
        }
    }

    pub(crate) fn sync(&self, file: &File, path: &Path) -> io::Result<()> {
        let mut st = self.state.lock();
        st.check(Op::Sync, path)?;
        let now = st.ops;
        let id = st.id_of(file)?;
        if let Some(f) = st.files.get_mut(id) {
            for op in std::mem::take(&mut f.pending) {
                apply_data(&mut f.durable, &op);
            }
            f.synced_at = Some(now);
        }
        Ok(())
    }

    pub(crate) fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        let mut st = self.state.lock();
        st.check(Op::SyncDir, dir)?;
        if !dir.is_dir() {
            return Err(io::Error::from(io::ErrorKind::NotFound));
        }
        let d = st.dir(dir);
        d.durable = d.current.clone();
        d.pending.clear();
        Ok(())
    }

    pub(crate) fn open(
        &self,
        path: &Path,
        options: &OpenOptions,
        create: bool,
        truncate: bool,
    ) -> io::Result<File> {
        let mut st = self.state.lock();
        let existed = path.exists();
        if create && !existed {
            st.check(Op::Create, path)?;
        } else if st.power_off {
            return Err(io::Error::from_raw_os_error(libc::EIO));
        }
        let f = options.open(path)?;
        let key = ino(&f)?;
        let (dir, name) = split(path);
        if existed {
            if truncate {
                st.record(&f, DataOp::SetLen(0))?;
            }
        } else {
            let id = st.new_file(Vec::new());
            st.by_ino.insert(key, id);
            st.ns_op(&dir, NsOp::Link(name, id));
        }
        Ok(f)
    }

    pub(crate) fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut st = self.state.lock();
        // A fault matches either name.
        st.check_text(
            Op::Rename,
            &format!("{} -> {}", from.display(), to.display()),
        )?;
        if from.is_dir() {
            fs::rename(from, to)?;
            // Directories are not modelled: the move is durable at once.
            let moved: Vec<PathBuf> = st
                .dirs
                .keys()
                .filter(|k| k.starts_with(from))
                .cloned()
                .collect();
            for k in moved {
                if let (Some(m), Ok(rest)) = (st.dirs.remove(&k), k.strip_prefix(from)) {
                    st.dirs.insert(to.join(rest), m);
                }
            }
            return Ok(());
        }
        fs::rename(from, to)?;
        let (fd, fname) = split(from);
        let (td, tname) = split(to);
        if fd == td {
            st.ns_op(&fd, NsOp::Rename(fname, tname));
        } else {
            let id = st.dir(&fd).current.get(&fname).copied();
            st.ns_op(&fd, NsOp::Unlink(fname));
            if let Some(id) = id {
                st.ns_op(&td, NsOp::Link(tname, id));
            }
        }
        Ok(())
    }

    pub(crate) fn remove_file(&self, path: &Path) -> io::Result<()> {
        let mut st = self.state.lock();
        st.check(Op::Remove, path)?;
        fs::remove_file(path)?;
        let (dir, name) = split(path);
        st.ns_op(&dir, NsOp::Unlink(name));
        Ok(())
    }

    pub(crate) fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        let mut st = self.state.lock();
        if st.power_off {
            return Err(io::Error::from_raw_os_error(libc::EIO));
        }
        fs::create_dir_all(dir)?;
        for d in dir.ancestors().take_while(|d| d.starts_with(&self.root)) {
            st.dirs.entry(d.to_path_buf()).or_default();
        }
        Ok(())
    }

    pub(crate) fn remove_dir_all(&self, dir: &Path) -> io::Result<()> {
        let mut st = self.state.lock();
        st.check(Op::Remove, dir)?;
        fs::remove_dir_all(dir)?;
        st.dirs.retain(|k, _| !k.starts_with(dir));
        Ok(())
    }

    pub(crate) fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        let mut st = self.state.lock();
        st.check(Op::Read, path)?;
        drop(st);
        fs::read(path)
    }
}

/// A simulated disk over one directory tree; see the [module docs](self). Uninstalled on
/// drop.
#[derive(Debug)]
pub struct SimFs {
    sim: Arc<Sim>,
}

/// What [`SimFs::power_loss`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PowerLoss {
    /// Files whose contents differ from what the running process last wrote.
    pub files_changed: usize,
    /// Unsynced writes and truncations dropped.
    pub writes_dropped: usize,
    /// Whether a kept write was torn.
    pub torn: bool,
    /// Unsynced creations, renames and removals undone.
    pub namespace_ops_undone: usize,
}

/// A small seeded generator (splitmix64), so a failing seed reproduces.
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..=n`.
    fn upto(&mut self, n: u64) -> u64 {
        self.next() % (n + 1)
    }
}

impl SimFs {
    /// Installs a simulation over `root` (created if missing); everything already in it counts
    /// as durable.
    ///
    /// # Panics
    /// If a simulation is already installed over `root`, inside it, or around it.
    ///
    /// # Errors
    /// Reading the tree failed.
    pub fn install(root: impl AsRef<Path>) -> io::Result<SimFs> {
        let root = root.as_ref().to_path_buf();
        fs::create_dir_all(&root)?;
        let mut st = State::default();
        st.adopt_tree(&root)?;
        let sim = Arc::new(Sim {
            root,
            state: Mutex::new(st),
        });
        let mut all = INSTALLED.write();
        assert!(
            !all.iter()
                .any(|s| s.root.starts_with(&sim.root) || sim.root.starts_with(&s.root)),
            "a simulation is already installed over {}",
            sim.root.display()
        );
        all.push(Arc::clone(&sim));
        ACTIVE.store(true, Ordering::Relaxed);
        Ok(SimFs { sim })
    }

    /// Makes calls of `op` on paths containing `path_contains` fail with `kind` until
    /// [`SimFs::clear_faults`].
    pub fn fail(&self, op: Op, path_contains: &str, kind: FaultKind) {
        self.add_fault(op, path_contains, kind, None);
    }

    /// Like [`SimFs::fail`], for the next `times` matching calls only.
    pub fn fail_times(&self, op: Op, path_contains: &str, kind: FaultKind, times: u32) {
        self.add_fault(op, path_contains, kind, Some(times));
    }

    fn add_fault(&self, op: Op, path_contains: &str, kind: FaultKind, remaining: Option<u32>) {
        self.sim.state.lock().faults.push(Fault {
            op,
            path_contains: path_contains.to_string(),
            kind,
            remaining,
        });
    }

    /// Removes every fault ("space was freed", "the disk recovered").
    pub fn clear_faults(&self) {
        self.sim.state.lock().faults.clear();
    }

    /// Operations seen so far (every routed call counts one).
    pub fn ops(&self) -> u64 {
        self.sim.state.lock().ops
    }

    /// Loses power at the `n`-th operation from now: it and every later one fail with `EIO`
    /// without reaching the disk.
    pub fn cut_power_after(&self, n: u64) {
        let mut st = self.sim.state.lock();
        st.cut_after = Some(st.ops + n.max(1));
    }

    /// Loses power now.
    pub fn cut_power(&self) {
        self.sim.state.lock().power_off = true;
    }

    /// Whether power is off.
    pub fn is_power_off(&self) -> bool {
        self.sim.state.lock().power_off
    }

    /// The operation number at the start of the last completed sync of the file now at `path`
    /// (compare with [`SimFs::ops`] taken when something was acknowledged).
    pub fn synced_at(&self, path: &Path) -> Option<u64> {
        let st = self.sim.state.lock();
        let (dir, name) = split(path);
        let id = *st.dirs.get(&dir)?.current.get(&name)?;
        st.files.get(id)?.synced_at
    }

    /// Rewrites the tree as a disk could hold it after power failed now (see the module docs),
    /// then uninstalls the simulation. Drop or abandon the `Log` first (power is cut first, so
    /// nothing it still does reaches the disk).
    ///
    /// # Errors
    /// Rewriting the files failed.
    pub fn power_loss(self, seed: u64) -> io::Result<PowerLoss> {
        let mut st = self.sim.state.lock();
        st.power_off = true;
        let mut rng = Rng(seed);
        let mut report = PowerLoss::default();
        let mut contents: HashMap<FileId, Vec<u8>> = HashMap::new();
        let dirs = std::mem::take(&mut st.dirs);
        for (dir, model) in &dirs {
            if !dir.is_dir() {
                continue;
            }
            let n = model.pending.len() as u64;
            // Often all or nothing, otherwise any prefix.
            let keep = match rng.upto(3) {
                0 => 0,
                1 => n,
                _ => rng.upto(n),
            } as usize;
            report.namespace_ops_undone += model.pending.len() - keep;
            let mut ns = model.durable.clone();
            for op in model.pending.iter().take(keep) {
                apply_ns(&mut ns, op);
            }
            let mut known: Vec<&OsString> = model.durable.keys().collect();
            known.extend(model.current.keys());
            for op in &model.pending {
                match op {
                    NsOp::Link(a, _) | NsOp::Unlink(a) => known.push(a),
                    NsOp::Rename(a, b) => {
                        known.push(a);
                        known.push(b);
                    }
                }
            }
            for name in known {
                if !ns.contains_key(name) {
                    match fs::remove_file(dir.join(name)) {
                        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                        _ => {}
                    }
                }
            }
            for (name, id) in &ns {
                let data = contents
                    .entry(*id)
                    .or_insert_with(|| Self::crash_image(&st, *id, &mut rng, &mut report))
                    .clone();
                let path = dir.join(name);
                if fs::read(&path).ok().as_deref() != Some(&data[..]) {
                    report.files_changed += 1;
                }
                // A new file, not an overwrite: nothing may still map the old one, but be safe.
                match fs::remove_file(&path) {
                    Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                    _ => {}
                }
                let mut f = OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&path)?;
                f.write_all(&data)?;
            }
        }
        drop(st);
        Ok(report)
    }

    /// A file's durable image plus a random subset of its later writes, the last kept write
    /// torn at a random byte.
    fn crash_image(st: &State, id: FileId, rng: &mut Rng, report: &mut PowerLoss) -> Vec<u8> {
        let Some(f) = st.files.get(id) else {
            return Vec::new();
        };
        let mut out = f.durable.clone();
        let mode = rng.upto(3);
        let mut kept: Vec<DataOp> = Vec::new();
        for op in &f.pending {
            let keep = match mode {
                0 => false,
                1 => true,
                _ => rng.upto(1) == 1,
            };
            if keep {
                kept.push(op.clone());
            } else {
                report.writes_dropped += 1;
            }
        }
        if let Some(DataOp::Write { data, .. }) = kept.last_mut()
            && rng.upto(1) == 1
        {
            let cut = rng.upto(data.len() as u64) as usize;
            if cut < data.len() {
                data.truncate(cut);
                report.torn = true;
            }
        }
        for op in &kept {
            apply_data(&mut out, op);
        }
        out
    }
}

impl Drop for SimFs {
    fn drop(&mut self) {
        let mut all = INSTALLED.write();
        all.retain(|s| !Arc::ptr_eq(s, &self.sim));
        if all.is_empty() {
            ACTIVE.store(false, Ordering::Relaxed);
        }
    }
}
