//! `FileStreamSource` and `FileStreamSink` with Kafka's keys, and their stdin/stdout forms.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::Receiver;
use std::time::Duration;

use serde_json::{Map as JsonMap, Value as Json};

use super::ConnectRecord;
use super::config::Properties;
use super::connector::{
    OffsetReader, SinkConnector, SinkTask, SourceConnector, SourceRecord, SourceTask,
};
use super::data::{Schema, SchemaType, Value};
use crate::error::{Error, Result};
use crate::types::TopicPartition;

/// Lines a source poll returns at most, by default (Kafka's `batch.size`).
const DEFAULT_BATCH: usize = 2000;
/// Bytes read from the file at a time.
const READ_CHUNK: usize = 64 << 10;

/// Kafka's `FileStreamSource`: each line of `file` (stdin without `file`) becomes a record
/// of `topic` with a string value. It follows a growing file and resumes from its byte
/// position (`{"filename": file}` → `{"position": n}`).
#[derive(Debug, Clone, Copy, Default)]
pub struct FileStreamSource;

impl SourceConnector for FileStreamSource {
    fn validate(&self, config: &Properties) -> Result<()> {
        let topic = config.require("topic")?;
        if topic.contains(',') {
            return Err(Error::invalid_config(
                "topic",
                "names one topic: the file source writes to a single topic",
            ));
        }
        let batch: usize = config.int("batch.size", DEFAULT_BATCH)?;
        if batch == 0 {
            return Err(Error::invalid_config("batch.size", "must be at least 1"));
        }
        Ok(())
    }

    fn task(&self) -> Box<dyn SourceTask> {
        Box::new(FileSourceTask::default())
    }

    fn exactly_once(&self, config: &Properties) -> bool {
        // Without `file` it reads stdin, which cannot resume.
        config.get("file").is_some_and(|f| !f.trim().is_empty())
    }
}

/// Where a file source task reads.
enum Input {
    File { path: PathBuf, file: Option<File> },
    Stdin(Receiver<Vec<u8>>),
}

/// A task of [`FileStreamSource`].
#[derive(Default)]
pub struct FileSourceTask {
    topic: String,
    batch: usize,
    input: Option<Input>,
    partition: JsonMap<String, Json>,
    /// Bytes read but not yet a whole line.
    pending: Vec<u8>,
    /// File position of `pending`'s first byte.
    position: u64,
    /// Bytes of the file not yet read into records, at the last poll.
    behind: Option<i64>,
}

impl SourceTask for FileSourceTask {
    fn start(&mut self, config: &Properties, offsets: &OffsetReader) -> Result<()> {
        self.topic = config.require("topic")?.to_string();
        self.batch = config.int("batch.size", DEFAULT_BATCH)?;
        if let Some(f) = config.get("file").map(str::trim).filter(|f| !f.is_empty()) {
            let mut partition = JsonMap::new();
            partition.insert("filename".into(), Json::String(f.to_string()));
            self.position = offsets
                .offset(&partition)
                .and_then(|o| o.get("position"))
                .and_then(Json::as_u64)
                .unwrap_or(0);
            self.partition = partition;
            self.input = Some(Input::File {
                path: PathBuf::from(f),
                file: None,
            });
        } else {
            let (tx, rx) = std::sync::mpsc::sync_channel(16);
            std::thread::Builder::new()
                .name("topiclog-connect-stdin".into())
                .spawn(move || {
                    let stdin = std::io::stdin();
                    let mut lock = stdin.lock();
                    loop {
                        let mut line = Vec::new();
                        match lock.read_until(b'\n', &mut line) {
                            Ok(0) | Err(_) => break,
                            Ok(_) => {
                                if tx.send(line).is_err() {
                                    break;
                                }
                            }
                        }
                    }
                })
                .map_err(|e| Error::io(Path::new("<stdin>"), e))?;
            self.input = Some(Input::Stdin(rx));
        }
        Ok(())
    }

    fn lag(&self) -> Option<i64> {
        self.behind
    }

    fn poll(&mut self) -> Result<Vec<SourceRecord>> {
        match self.input.take() {
            Some(Input::File { path, file }) => {
                let mut file = file;
                let out = self.poll_file(&path, &mut file);
                self.input = Some(Input::File { path, file });
                out
            }
            Some(Input::Stdin(rx)) => {
                let mut out = Vec::new();
                let first = rx.recv_timeout(Duration::from_millis(200));
                let mut next = first.ok();
                while let Some(mut line) = next {
                    strip_terminator(&mut line);
                    out.push(self.record(&line, crate::clock::now_ms()));
                    if out.len() >= self.batch {
                        break;
                    }
                    next = rx.try_recv().ok();
                }
                self.input = Some(Input::Stdin(rx));
                Ok(out)
            }
            None => Ok(Vec::new()),
        }
    }
}

impl FileSourceTask {
    /// A record of `line`, without offsets (see [`FileSourceTask::mark`]).
    fn record(&self, line: &[u8], now: i64) -> SourceRecord {
        let mut record = ConnectRecord::new(
            self.topic.clone(),
            Some(Schema::of(SchemaType::String)),
            Value::String(String::from_utf8_lossy(line).into_owned()),
        );
        record.timestamp = Some(now);
        SourceRecord {
            source_partition: JsonMap::new(),
            source_offset: JsonMap::new(),
            record,
        }
    }

    /// Gives the last record of a poll its source partition and offset (the position after
    /// it). The runtime commits a poll's records with the last offset of each partition, in
    /// one transaction, so the records before it need none.
    fn mark(&self, out: &mut [SourceRecord]) {
        if let Some(last) = out.last_mut() {
            last.source_partition.clone_from(&self.partition);
            last.source_offset
                .insert("position".into(), Json::from(self.position));
        }
    }

    fn poll_file(&mut self, path: &Path, file: &mut Option<File>) -> Result<Vec<SourceRecord>> {
        if file.is_none() {
            match File::open(path) {
                Ok(mut f) => {
                    let start = self.position;
                    let len = f.metadata().map_err(|e| Error::io(path, e))?.len();
                    if len < start {
                        return Err(shrunk(path, len, start));
                    }
                    f.seek(SeekFrom::Start(start))
                        .map_err(|e| Error::io(path, e))?;
                    self.pending.clear();
                    *file = Some(f);
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    // Kafka's file source waits for the file to appear.
                    std::thread::sleep(Duration::from_millis(100));
                    return Ok(Vec::new());
                }
                Err(e) => return Err(Error::io(path, e)),
            }
        }
        let Some(f) = file.as_mut() else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        let now = crate::clock::now_ms();
        loop {
            // Whole lines in `pending` first.
            let mut consumed = 0usize;
            while out.len() < self.batch {
                let rest = self.pending.get(consumed..).unwrap_or_default();
                let Some(at) = rest.iter().position(|&b| b == b'\n' || b == b'\r') else {
                    break;
                };
                let term = match (rest.get(at), rest.get(at + 1)) {
                    (Some(b'\r'), Some(b'\n')) => 2,
                    // A '\r' last in the buffer may be followed by '\n': wait for more.
                    (Some(b'\r'), None) => break,
                    _ => 1,
                };
                let line = rest.get(..at).unwrap_or_default();
                out.push(self.record(line, now));
                consumed += at + term;
            }
            if consumed > 0 {
                self.pending.drain(..consumed);
                self.position += consumed as u64;
            }
            if out.len() >= self.batch {
                let len = f.metadata().map_or(self.position, |m| m.len());
                self.behind = i64::try_from(len.saturating_sub(self.position)).ok();
                self.mark(&mut out);
                return Ok(out);
            }
            let mut chunk = vec![0u8; READ_CHUNK];
            let n = match f.read(&mut chunk) {
                Ok(n) => n,
                // Lines already taken are returned; the error comes back at the next poll.
                Err(_) if !out.is_empty() => {
                    self.mark(&mut out);
                    return Ok(out);
                }
                Err(e) => return Err(Error::io(path, e)),
            };
            if n == 0 {
                let read_to = self.position + self.pending.len() as u64;
                check_same_file(path, f, read_to)?;
                self.behind = Some(self.pending.len() as i64);
                if out.is_empty() {
                    std::thread::sleep(Duration::from_millis(50));
                }
                self.mark(&mut out);
                return Ok(out);
            }
            self.pending
                .extend_from_slice(chunk.get(..n).unwrap_or_default());
        }
    }
}

/// The error for a source file shorter than the position its offsets recorded.
fn shrunk(path: &Path, len: u64, position: u64) -> Error {
    Error::Corrupt {
        path: path.to_path_buf(),
        position,
        reason: format!(
            "the file is {len} bytes, shorter than the {position} bytes already read: it was \
             truncated or replaced. Reading on would skip or repeat lines; to read a new file \
             from its start, give the connector another name (its offsets are per name)"
        ),
    }
}

/// At the end of `file`: fails when the file at `path` is shorter than what was read, or is
/// another file now (rotated), rather than wait for ever or skip lines.
fn check_same_file(path: &Path, file: &File, read_to: u64) -> Result<()> {
    let open = file.metadata().map_err(|e| Error::io(path, e))?;
    if open.len() < read_to {
        return Err(shrunk(path, open.len(), read_to));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        if let Ok(now) = std::fs::metadata(path)
            && (now.ino() != open.ino() || now.dev() != open.dev())
        {
            return Err(Error::Corrupt {
                path: path.to_path_buf(),
                position: read_to,
                reason: "the file was replaced (rotated) while being read; the file source \
                         follows one file"
                    .into(),
            });
        }
    }
    Ok(())
}

fn strip_terminator(line: &mut Vec<u8>) {
    if line.last() == Some(&b'\n') {
        line.pop();
        if line.last() == Some(&b'\r') {
            line.pop();
        }
    }
}

/// Kafka's `FileStreamSink`: appends each record's value, as text, and a newline to `file`
/// (stdout without `file`). Exactly-once for a file: at each flush it writes the next offset
/// of every partition and the file's length to `<file>.offsets` (after syncing the file); a
/// restart cuts the file back to that length and skips what it already holds.
#[derive(Debug, Clone, Copy, Default)]
pub struct FileStreamSink;

impl SinkConnector for FileStreamSink {
    fn validate(&self, config: &Properties) -> Result<()> {
        match (config.get("topics"), config.get("topics.regex")) {
            (Some(t), None) if !t.trim().is_empty() => Ok(()),
            (None, Some(r)) if !r.trim().is_empty() => Ok(()),
            (Some(_), Some(_)) => Err(Error::invalid_config(
                "topics",
                "set topics or topics.regex, not both",
            )),
            _ => Err(Error::invalid_config(
                "topics",
                "is required (or topics.regex)",
            )),
        }
    }

    fn task(&self) -> Box<dyn SinkTask> {
        Box::new(FileSinkTask::default())
    }
}

/// A task of [`FileStreamSink`].
#[derive(Default)]
pub struct FileSinkTask {
    path: Option<PathBuf>,
    out: Option<File>,
    /// The file's length with everything written.
    length: u64,
}

/// The sidecar of a sink file: its length and the next offsets at the last flush.
#[derive(serde::Serialize, serde::Deserialize)]
struct SinkState {
    length: u64,
    offsets: Vec<(String, i32, i64)>,
}

/// Where a sink file's state is kept: `<file>.offsets`.
pub fn sink_state_path(file: &Path) -> PathBuf {
    let mut name = file.as_os_str().to_owned();
    name.push(".offsets");
    PathBuf::from(name)
}

impl SinkTask for FileSinkTask {
    fn start(&mut self, config: &Properties) -> Result<()> {
        if let Some(f) = config.get("file").map(str::trim).filter(|f| !f.is_empty()) {
            let path = std::path::absolute(f).map_err(|e| Error::io(f, e))?;
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .map_err(|e| Error::io(&path, e))?;
            let mut length = file.metadata().map_err(|e| Error::io(&path, e))?.len();
            let state = read_state(&path)?;
            if state.is_none() {
                // From the first start on, what the file holds is recorded: a crash before
                // the first flush cuts it back to this.
                let first = SinkState {
                    length,
                    offsets: Vec::new(),
                };
                write_state(&path, &first)?;
            }
            if let Some(state) = state {
                if length < state.length {
                    return Err(Error::Corrupt {
                        path: path.clone(),
                        position: length,
                        reason: format!(
                            "the sink file is shorter ({length} bytes) than its last flush \
                             recorded ({} bytes in {}): refusing to write after lost data. To \
                             write it again from the topic's start, remove both files and reset \
                             the group connect-<name>",
                            state.length,
                            sink_state_path(&path).display()
                        ),
                    });
                }
                if length > state.length {
                    // Lines written after the last flush: their records are delivered again.
                    file.set_len(state.length)
                        .map_err(|e| Error::io(&path, e))?;
                    length = state.length;
                }
            }
            self.length = length;
            self.out = Some(file);
            self.path = Some(path);
        }
        Ok(())
    }

    fn stored_offsets(&mut self) -> Result<Option<HashMap<TopicPartition, i64>>> {
        let Some(path) = &self.path else {
            return Ok(None);
        };
        Ok(read_state(path)?.map(|s| {
            s.offsets
                .into_iter()
                .map(|(t, p, o)| (TopicPartition::new(t, p), o))
                .collect()
        }))
    }

    fn put(&mut self, records: &[ConnectRecord]) -> Result<()> {
        let mut buf = Vec::new();
        for r in records {
            match &r.value {
                Value::String(s) => buf.extend_from_slice(s.as_bytes()),
                Value::Bytes(b) => buf.extend_from_slice(b),
                other => buf.extend_from_slice(other.to_text().as_bytes()),
            }
            buf.push(b'\n');
        }
        if let (Some(out), Some(path)) = (&mut self.out, &self.path) {
            // Written through at once (as Kafka's sink does), so `tail -f` shows the lines;
            // synced only at a flush. A failed write is undone, so a retried put writes the
            // batch once.
            if let Err(e) = out.write_all(&buf) {
                let _ = out.set_len(self.length);
                return Err(Error::io(path, e));
            }
            self.length += buf.len() as u64;
        } else {
            let stdout = std::io::stdout();
            let mut lock = stdout.lock();
            lock.write_all(&buf)
                .and_then(|()| lock.flush())
                .map_err(|e| Error::io(Path::new("<stdout>"), e))?;
        }
        Ok(())
    }

    fn flush(&mut self, offsets: &HashMap<TopicPartition, i64>) -> Result<()> {
        let (Some(out), Some(path)) = (&mut self.out, &self.path) else {
            return Ok(());
        };
        out.sync_data().map_err(|e| Error::io(path, e))?;
        let mut merged: HashMap<TopicPartition, i64> = read_state(path)?
            .map(|s| {
                s.offsets
                    .into_iter()
                    .map(|(t, p, o)| (TopicPartition::new(t, p), o))
                    .collect()
            })
            .unwrap_or_default();
        merged.extend(offsets.iter().map(|(tp, o)| (tp.clone(), *o)));
        let mut list: Vec<(String, i32, i64)> = merged
            .into_iter()
            .map(|(tp, o)| (tp.topic, tp.partition, o))
            .collect();
        list.sort();
        let state = SinkState {
            length: self.length,
            offsets: list,
        };
        write_state(path, &state)
    }
}

fn read_state(file: &Path) -> Result<Option<SinkState>> {
    let path = sink_state_path(file);
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| Error::Corrupt {
                path: path.clone(),
                position: 0,
                reason: format!("not a sink state file: {e}"),
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(&path, e)),
    }
}

fn write_state(file: &Path, state: &SinkState) -> Result<()> {
    let bytes = serde_json::to_vec(state)
        .map_err(|e| Error::invalid_config("file", format!("cannot encode the sink state: {e}")))?;
    crate::io::write_atomic(&sink_state_path(file), &bytes)
}
