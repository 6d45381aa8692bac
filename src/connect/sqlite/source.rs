//! The SQLite source: tables or a query read by the JDBC source's modes.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags, params_from_iter};
use serde_json::{Map as JsonMap, Value as Json};

use super::{db_path, ident, sql_error};
use crate::connect::ConnectRecord;
use crate::connect::config::Properties;
use crate::connect::connector::{OffsetReader, SourceConnector, SourceRecord, SourceTask};
use crate::connect::data::{Field, Schema, SchemaType, Value, data_error};
use crate::error::{Error, Result};

/// Rows a poll reads at most per table, by default (the JDBC source's `batch.max.rows`).
const DEFAULT_BATCH_ROWS: usize = 100;
/// How often a table is queried, by default (`poll.interval.ms`).
const DEFAULT_POLL: Duration = Duration::from_secs(5);
/// The column an incrementing query selects the incrementing value as.
const INC_ALIAS: &str = "__topiclog_inc";
/// The column a timestamp query selects as milliseconds.
const TS_ALIAS: &str = "__topiclog_ts_ms";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Bulk,
    Incrementing,
    Timestamp,
    TimestampIncrementing,
}

impl Mode {
    fn parse(config: &Properties) -> Result<Mode> {
        let mode = match config.require("mode")? {
            "bulk" => Mode::Bulk,
            "incrementing" => Mode::Incrementing,
            "timestamp" => Mode::Timestamp,
            "timestamp+incrementing" => Mode::TimestampIncrementing,
            other => {
                return Err(Error::invalid_config(
                    "mode",
                    format!(
                        "'{other}' is not bulk, incrementing, timestamp or timestamp+incrementing"
                    ),
                ));
            }
        };
        if matches!(mode, Mode::Incrementing | Mode::TimestampIncrementing) {
            config.require("incrementing.column.name")?;
        }
        if matches!(mode, Mode::Timestamp | Mode::TimestampIncrementing) {
            config.require("timestamp.column.name")?;
        }
        Ok(mode)
    }

    fn incrementing(self) -> bool {
        matches!(self, Mode::Incrementing | Mode::TimestampIncrementing)
    }

    fn timestamp(self) -> bool {
        matches!(self, Mode::Timestamp | Mode::TimestampIncrementing)
    }
}

/// The JDBC source connector's model on a SQLite file: each table of `table.whitelist` (or
/// the `query`) is read by `mode`, its rows become records of `<topic.prefix><table>` with a
/// struct value whose schema describes the columns, and its offsets are the JDBC
/// connector's (`{"incrementing": n}`, `{"timestamp": ms}`, both for
/// `timestamp+incrementing`), committed with the records.
///
/// Column types come from their declarations (SQLite's affinity rules; dates and times as
/// text). A column with no declared type takes the type of its values in each poll. A value
/// that does not fit its column's declared type (text in an `INTEGER` column) is a data
/// error naming the column. A timestamp column declared as an integer is compared as it is,
/// so an index on it serves the query.
#[derive(Debug, Clone, Copy, Default)]
pub struct SqliteSource;

impl SourceConnector for SqliteSource {
    fn validate(&self, config: &Properties) -> Result<()> {
        let path = db_path(config)?;
        Mode::parse(config)?;
        config.require("topic.prefix").or_else(|e| {
            // An empty prefix is allowed for tables (the topic is the table's name).
            if config.contains("topic.prefix") && config.get("query").is_none() {
                Ok("")
            } else {
                Err(e)
            }
        })?;
        match (
            config.list("table.whitelist").is_empty(),
            config.get("query"),
        ) {
            (true, None) => {
                return Err(Error::invalid_config(
                    "table.whitelist",
                    "name the tables to read (or set query)",
                ));
            }
            (false, Some(_)) => {
                return Err(Error::invalid_config(
                    "query",
                    "set query or table.whitelist, not both",
                ));
            }
            _ => {}
        }
        let rows: usize = config.int("batch.max.rows", DEFAULT_BATCH_ROWS)?;
        if rows == 0 {
            return Err(Error::invalid_config(
                "batch.max.rows",
                "must be at least 1",
            ));
        }
        config.millis("poll.interval.ms", DEFAULT_POLL)?;
        let conn =
            Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(|e| {
                Error::invalid_config("connection.url", format!("cannot open '{path}': {e}"))
            })?;
        for t in config.list("table.whitelist") {
            let n: i64 = conn
                .query_row(
                    "SELECT count(*) FROM sqlite_master WHERE type IN ('table','view') AND name = ?1",
                    [&t],
                    |r| r.get(0),
                )
                .map_err(|e| sql_error("reading the schema", &e))?;
            if n == 0 {
                return Err(Error::invalid_config(
                    "table.whitelist",
                    format!("no table '{t}' in {path}"),
                ));
            }
        }
        Ok(())
    }

    fn task_configs(&self, config: &Properties, max_tasks: usize) -> Vec<Properties> {
        let tables = config.list("table.whitelist");
        if tables.len() <= 1 || max_tasks <= 1 {
            return vec![config.clone()];
        }
        let n = max_tasks.min(tables.len());
        (0..n)
            .map(|i| {
                let mine: Vec<String> = tables.iter().skip(i).step_by(n).cloned().collect();
                config.clone().with("table.whitelist", mine.join(","))
            })
            .collect()
    }

    fn task(&self) -> Box<dyn SourceTask> {
        Box::new(SqliteSourceTask::default())
    }
}

/// A row read: its fields, its incrementing value and its time in ms.
type RowRead = (Vec<(Arc<str>, Value)>, Option<i64>, Option<i64>);

/// What one table (or the query) has been read up to.
struct Reader {
    table: Option<String>,
    topic: String,
    partition: JsonMap<String, Json>,
    incrementing: Option<i64>,
    timestamp: Option<i64>,
    /// Whether the timestamp column is declared as an integer (ms since the epoch): then it
    /// is compared as it is, so an index on it serves the query.
    ts_integer: bool,
    due: Instant,
}

/// A task of [`SqliteSource`].
#[derive(Default)]
pub struct SqliteSourceTask {
    conn: Option<Connection>,
    mode: Option<Mode>,
    inc_col: String,
    ts_col: String,
    query: Option<String>,
    batch: usize,
    interval: Duration,
    /// `timestamp.delay.interval.ms`: rows newer than now minus this wait for a later poll.
    delay: i64,
    readers: Vec<Reader>,
}

impl SourceTask for SqliteSourceTask {
    fn start(&mut self, config: &Properties, offsets: &OffsetReader) -> Result<()> {
        let path = db_path(config)?;
        let conn = Connection::open_with_flags(
            &path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| sql_error(&format!("opening {path}"), &e))?;
        conn.busy_timeout(Duration::from_secs(5))
            .map_err(|e| sql_error("busy timeout", &e))?;
        self.conn = Some(conn);
        self.mode = Some(Mode::parse(config)?);
        self.inc_col = config
            .get("incrementing.column.name")
            .unwrap_or_default()
            .to_string();
        self.ts_col = config
            .get("timestamp.column.name")
            .unwrap_or_default()
            .to_string();
        // A trailing `;` would end the statement the query is wrapped in.
        self.query = config
            .get("query")
            .map(|q| q.trim().trim_end_matches(';').to_string());
        self.delay = config.int::<i64>("timestamp.delay.interval.ms", 0)?.max(0);
        self.batch = config.int("batch.max.rows", DEFAULT_BATCH_ROWS)?;
        self.interval = config.millis("poll.interval.ms", DEFAULT_POLL)?;
        let prefix = config.get("topic.prefix").unwrap_or_default();
        let now = Instant::now();
        let mut readers = Vec::new();
        if let Some(q) = &self.query {
            let mut partition = JsonMap::new();
            partition.insert("query".into(), Json::String("query".into()));
            readers.push(Reader {
                table: None,
                topic: prefix.to_string(),
                partition,
                incrementing: None,
                timestamp: None,
                ts_integer: false,
                due: now,
            });
            let _ = q;
        } else {
            for t in config.list("table.whitelist") {
                let mut partition = JsonMap::new();
                partition.insert("protocol".into(), Json::String("1".into()));
                partition.insert("table".into(), Json::String(t.clone()));
                readers.push(Reader {
                    table: Some(t.clone()),
                    topic: format!("{prefix}{t}"),
                    partition,
                    incrementing: None,
                    timestamp: None,
                    ts_integer: false,
                    due: now,
                });
            }
        }
        if let Some(conn) = self.conn.as_ref() {
            let mode = self.mode.unwrap_or(Mode::Bulk);
            for r in &mut readers {
                let from = match (&r.table, &self.query) {
                    (Some(t), _) => ident(t),
                    (None, Some(q)) => format!("(\n{q}\n)"),
                    (None, None) => continue,
                };
                let names = column_names(conn, &from)?;
                let check = |key: &str, col: &mut String| -> Result<()> {
                    match names.iter().find(|n| n.eq_ignore_ascii_case(col)) {
                        Some(real) => {
                            col.clone_from(real);
                            Ok(())
                        }
                        None => Err(Error::invalid_config(
                            key,
                            format!(
                                "no column '{col}' in {} (columns: {})",
                                r.table.as_deref().unwrap_or("the query"),
                                names.join(", ")
                            ),
                        )),
                    }
                };
                if mode.incrementing() {
                    check("incrementing.column.name", &mut self.inc_col)?;
                }
                if mode.timestamp() {
                    check("timestamp.column.name", &mut self.ts_col)?;
                    if let Some(t) = &r.table {
                        r.ts_integer = declared_type(conn, t, &self.ts_col)?
                            .is_some_and(|d| d.to_ascii_uppercase().contains("INT"));
                    }
                }
            }
        }
        for r in &mut readers {
            if let Some(o) = offsets.offset(&r.partition) {
                r.incrementing = o.get("incrementing").and_then(Json::as_i64);
                r.timestamp = o.get("timestamp").and_then(Json::as_i64);
            }
        }
        self.readers = readers;
        Ok(())
    }

    fn poll(&mut self) -> Result<Vec<SourceRecord>> {
        let now = Instant::now();
        let mut out = Vec::new();
        for i in 0..self.readers.len() {
            let due = self.readers.get(i).is_some_and(|r| r.due <= now);
            if !due {
                continue;
            }
            let full = self.read(i, &mut out)?;
            if let Some(r) = self.readers.get_mut(i) {
                // A full batch: more rows wait; read on at once.
                r.due = if full && self.mode != Some(Mode::Bulk) {
                    now
                } else {
                    now + self.interval
                };
            }
        }
        if out.is_empty() {
            let next = self
                .readers
                .iter()
                .map(|r| r.due)
                .min()
                .unwrap_or(now + self.interval);
            let wait = next
                .saturating_duration_since(Instant::now())
                .min(Duration::from_millis(100));
            std::thread::sleep(wait);
        }
        Ok(out)
    }
}

/// A column's Connect schema from its declared SQLite type (SQLite's affinity rules); `None`
/// for a column with no declared type (an expression, or a column declared without one),
/// whose schema the values of each poll decide ([`settle_undeclared`]).
fn column_schema(decl: Option<&str>, not_null: bool) -> Option<Schema> {
    let d = decl.unwrap_or_default().trim().to_ascii_uppercase();
    if d.is_empty() {
        return None;
    }
    let kind = if d.contains("DATE") || d.contains("TIME") {
        // Dates and times: SQLite keeps them as ISO-8601 text.
        SchemaType::String
    } else if d.contains("INT") {
        SchemaType::Int64
    } else if d.contains("CHAR") || d.contains("CLOB") || d.contains("TEXT") {
        SchemaType::String
    } else if d.contains("BLOB") {
        SchemaType::Bytes
    } else if d.contains("REAL") || d.contains("FLOA") || d.contains("DOUB") {
        SchemaType::Float64
    } else if d.contains("BOOL") {
        SchemaType::Boolean
    } else {
        SchemaType::Float64
    };
    let s = Schema::of(kind);
    Some(if not_null { s } else { s.optional() })
}

/// A value read from column `name` as its schema's type (SQLite lets any column hold any
/// type): numbers become the text of a text column, whole reals fit an integer column; a
/// value that does not fit is a data error naming the column. Without a schema (an
/// undeclared type), the value as SQLite holds it.
// An integer read for a REAL column becomes a double, as SQLite reads it.
#[allow(
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    clippy::float_cmp
)]
fn to_value(v: ValueRef<'_>, schema: Option<&Schema>, name: &str) -> Result<Value> {
    let Some(schema) = schema else {
        return Ok(match v {
            ValueRef::Null => Value::Null,
            ValueRef::Integer(i) => Value::Int(i),
            ValueRef::Real(f) => Value::Float(f),
            ValueRef::Text(t) => Value::String(String::from_utf8_lossy(t).into_owned()),
            ValueRef::Blob(b) => Value::Bytes(Bytes::copy_from_slice(b)),
        });
    };
    let unfit = |what: &str| {
        data_error(format!(
            "column '{name}' (a {} column) holds {what}",
            schema.kind.json_name()
        ))
    };
    Ok(match (schema.kind, v) {
        (_, ValueRef::Null) => Value::Null,
        (SchemaType::Boolean, ValueRef::Integer(i)) => Value::Boolean(i != 0),
        (SchemaType::Float64 | SchemaType::Float32, ValueRef::Integer(i)) => Value::Float(i as f64),
        (SchemaType::Float64 | SchemaType::Float32, ValueRef::Real(f)) => Value::Float(f),
        (SchemaType::String, ValueRef::Integer(i)) => Value::String(i.to_string()),
        (SchemaType::String, ValueRef::Real(f)) => Value::String(f.to_string()),
        (SchemaType::String, ValueRef::Text(t) | ValueRef::Blob(t)) => {
            Value::String(String::from_utf8_lossy(t).into_owned())
        }
        (SchemaType::Bytes, ValueRef::Text(b) | ValueRef::Blob(b)) => {
            Value::Bytes(Bytes::copy_from_slice(b))
        }
        (SchemaType::Bytes, ValueRef::Integer(i)) => Value::Bytes(Bytes::from(i.to_string())),
        (SchemaType::Bytes, ValueRef::Real(f)) => Value::Bytes(Bytes::from(f.to_string())),
        (k, ValueRef::Integer(i)) if k.is_integer() => Value::Int(i),
        (k, ValueRef::Real(f)) if k.is_integer() && f == f.trunc() && f.abs() < 9.2e18 => {
            Value::Int(f as i64)
        }
        (_, ValueRef::Integer(i)) => return Err(unfit(&format!("the integer {i}"))),
        (_, ValueRef::Real(f)) => return Err(unfit(&format!("the real {f}"))),
        (_, ValueRef::Text(t)) => {
            return Err(unfit(&format!("the text '{}'", String::from_utf8_lossy(t))));
        }
        (_, ValueRef::Blob(b)) => return Err(unfit(&format!("a blob of {} bytes", b.len()))),
    })
}

/// Gives each column without a declared type the schema its values in `rows` have, and
/// makes the values fit it: integers (int64); integers and reals (float64); text, or text
/// with numbers (string); blobs, or blobs with anything (bytes); all nulls (string). Such a
/// column is optional unless declared NOT NULL.
fn settle_undeclared(
    columns: &[(Arc<str>, Option<Schema>, bool)],
    rows: &mut [RowRead],
) -> Vec<Schema> {
    let mut out = Vec::with_capacity(columns.len());
    for (k, (_, declared, not_null)) in columns.iter().enumerate() {
        if let Some(s) = declared {
            out.push(s.clone());
            continue;
        }
        let (mut ints, mut reals, mut texts, mut blobs) = (false, false, false, false);
        for (fields, _, _) in rows.iter() {
            match fields.get(k).map(|(_, v)| v) {
                Some(Value::Int(_)) => ints = true,
                Some(Value::Float(_)) => reals = true,
                Some(Value::String(_)) => texts = true,
                Some(Value::Bytes(_)) => blobs = true,
                _ => {}
            }
        }
        let kind = if blobs {
            SchemaType::Bytes
        } else if texts || !(ints || reals) {
            SchemaType::String
        } else if reals {
            SchemaType::Float64
        } else {
            SchemaType::Int64
        };
        for (fields, _, _) in rows.iter_mut() {
            if let Some((_, v)) = fields.get_mut(k) {
                *v = settle(std::mem::replace(v, Value::Null), kind);
            }
        }
        let s = Schema::of(kind);
        out.push(if *not_null { s } else { s.optional() });
    }
    out
}

/// `v` (as SQLite held it) as a value of `kind`, as [`settle_undeclared`] decided.
#[allow(clippy::cast_precision_loss)] // as SQLite reads an integer as a real
fn settle(v: Value, kind: SchemaType) -> Value {
    match (kind, v) {
        (SchemaType::Float64, Value::Int(i)) => Value::Float(i as f64),
        (SchemaType::String, Value::Int(i)) => Value::String(i.to_string()),
        (SchemaType::String, Value::Float(f)) => Value::String(f.to_string()),
        (SchemaType::Bytes, Value::Int(i)) => Value::Bytes(Bytes::from(i.to_string())),
        (SchemaType::Bytes, Value::Float(f)) => Value::Bytes(Bytes::from(f.to_string())),
        (SchemaType::Bytes, Value::String(t)) => Value::Bytes(Bytes::from(t)),
        (_, v) => v,
    }
}

impl SqliteSourceTask {
    /// The SQL expression of the timestamp column in milliseconds (integer columns hold
    /// milliseconds; text columns are ISO-8601 times, read in UTC). A column declared as an
    /// integer is used as it is, so that an index on it serves the query.
    fn ts_expr(&self, reader: &Reader) -> String {
        let c = ident(&self.ts_col);
        if reader.ts_integer {
            return c;
        }
        format!(
            "(CASE typeof({c}) WHEN 'integer' THEN {c} WHEN 'real' THEN CAST({c} AS INTEGER) \
             ELSE CAST(round((julianday({c}) - 2440587.5) * 86400000.0) AS INTEGER) END)"
        )
    }

    /// Reads the next rows of reader `i` into `out`; whether the query filled its batch
    /// (more rows wait).
    fn read(&mut self, i: usize, out: &mut Vec<SourceRecord>) -> Result<bool> {
        let (Some(conn), Some(mode), Some(reader)) =
            (self.conn.as_ref(), self.mode, self.readers.get(i))
        else {
            return Ok(false);
        };
        let from = match (&reader.table, &self.query) {
            (Some(t), _) => ident(t),
            (None, Some(q)) => format!("(\n{q}\n)"),
            (None, None) => return Ok(false),
        };
        // Rows newer than this wait for a later poll (`timestamp.delay.interval.ms`).
        let now_ms = crate::clock::now_ms() - self.delay;
        let inc = ident(&self.inc_col);
        let ts = self.ts_expr(reader);
        let mut args: Vec<rusqlite::types::Value> = Vec::new();
        let (filter, order) = match mode {
            Mode::Bulk => (String::new(), String::new()),
            Mode::Incrementing => {
                args.push(reader.incrementing.unwrap_or(i64::MIN).into());
                (format!("WHERE {inc} > ?1"), format!("ORDER BY {inc} ASC"))
            }
            Mode::Timestamp => {
                args.push(reader.timestamp.unwrap_or(i64::MIN).into());
                args.push(now_ms.into());
                (
                    format!("WHERE {ts} > ?1 AND {ts} < ?2"),
                    format!("ORDER BY {ts} ASC"),
                )
            }
            Mode::TimestampIncrementing => {
                args.push(reader.timestamp.unwrap_or(i64::MIN).into());
                args.push(reader.incrementing.unwrap_or(i64::MIN).into());
                args.push(now_ms.into());
                (
                    format!("WHERE {ts} < ?3 AND (({ts} = ?1 AND {inc} > ?2) OR {ts} > ?1)"),
                    format!("ORDER BY {ts} ASC, {inc} ASC"),
                )
            }
        };
        // The time as whole ms (a REAL in an integer column read as SQLite casts it).
        let ts_value = if reader.ts_integer {
            format!("CAST({ts} AS INTEGER)")
        } else {
            ts.clone()
        };
        let select_ts = match (mode.timestamp(), mode.incrementing()) {
            (true, true) => format!(", {ts_value} AS {TS_ALIAS}, {inc} AS {INC_ALIAS}"),
            (true, false) => format!(", {ts_value} AS {TS_ALIAS}"),
            (false, true) => format!(", {inc} AS {INC_ALIAS}"),
            (false, false) => String::new(),
        };
        let limit = if mode == Mode::Bulk {
            String::new()
        } else {
            format!("LIMIT {}", self.batch)
        };
        let sql = format!("SELECT *{select_ts} FROM {from} {filter} {order} {limit}");
        let mut stmt = conn
            .prepare_cached(&sql)
            .map_err(|e| sql_error(&format!("preparing {sql}"), &e))?;
        // Column schemas: declared types, NOT NULL from the table's definition.
        let not_null: HashMap<String, bool> = match &reader.table {
            Some(t) => table_not_null(conn, t)?,
            None => HashMap::new(),
        };
        let columns: Vec<(Arc<str>, Option<Schema>, bool)> = stmt
            .columns()
            .map(|c| {
                let name: Arc<str> = c.name().into();
                let nn = not_null.get(&*name).copied().unwrap_or(false);
                let schema = column_schema(c.decl_type(), nn);
                (name, schema, nn)
            })
            .filter(|(n, _, _)| &**n != TS_ALIAS && &**n != INC_ALIAS)
            .collect();
        let inc_at = stmt.column_index(INC_ALIAS).ok();
        let ts_at = stmt.column_index(TS_ALIAS).ok();
        let mut rows = stmt
            .query(params_from_iter(args.iter()))
            .map_err(|e| sql_error(&format!("querying {sql}"), &e))?;
        let mut read: Vec<RowRead> = Vec::with_capacity(self.batch.min(4096));
        while let Some(row) = rows.next().map_err(|e| sql_error("reading a row", &e))? {
            let fields = row_fields(row, &columns)?;
            let inc_v = match inc_at {
                Some(k) => Some(row.get::<_, i64>(k).map_err(|_| {
                    data_error(format!(
                        "the incrementing column '{}' holds a value that is not an integer",
                        self.inc_col
                    ))
                })?),
                None => None,
            };
            let ts_v = match ts_at {
                Some(k) => Some(row.get::<_, i64>(k).map_err(|_| {
                    data_error(format!(
                        "the timestamp column '{}' holds a value that is not a time (integer \
                         ms or ISO-8601 text)",
                        self.ts_col
                    ))
                })?),
                None => None,
            };
            read.push((fields, inc_v, ts_v));
        }
        drop(rows);
        drop(stmt);
        // Timestamp mode without a tie-breaker: rows sharing the batch's last timestamp may
        // continue past the limit; read them all, or leave that timestamp to the next poll.
        let full = mode != Mode::Bulk && read.len() >= self.batch;
        if mode == Mode::Timestamp && read.len() >= self.batch {
            let last_ts = read.last().and_then(|r| r.2);
            let before = read.iter().filter(|r| r.2 < last_ts).count();
            if before > 0 {
                read.truncate(before);
            } else if let Some(t) = last_ts {
                read = self.rows_at(i, &from, t, &columns)?;
            }
        }
        let schemas = settle_undeclared(&columns, &mut read);
        let schema = Arc::new(Schema {
            name: reader.table.clone(),
            ..Schema::structure(
                columns
                    .iter()
                    .zip(schemas)
                    .map(|((n, _, _), schema)| Field {
                        name: n.clone(),
                        schema,
                    })
                    .collect(),
            )
        });
        let n = read.len();
        out.reserve(n);
        let Some(reader) = self.readers.get_mut(i) else {
            return Ok(full);
        };
        for (fields, inc_v, ts_v) in read {
            if let Some(v) = inc_v {
                reader.incrementing = Some(v);
            }
            if let Some(v) = ts_v {
                reader.timestamp = Some(v);
            }
            let mut record = ConnectRecord::new(reader.topic.clone(), None, Value::Struct(fields));
            record.value_schema = Some(Arc::clone(&schema));
            // No record time of the row's own (as the JDBC source): the append time, so old
            // rows are not deleted by the topic's retention as soon as they arrive.
            record.timestamp = None;
            out.push(SourceRecord {
                source_partition: JsonMap::new(),
                source_offset: JsonMap::new(),
                record,
            });
        }
        // Only the last record carries the table's offset: the runtime commits a poll's
        // records with the last offset of each source partition, in one transaction.
        if mode != Mode::Bulk
            && n > 0
            && let Some(last) = out.last_mut()
        {
            if mode.incrementing() {
                last.source_offset
                    .insert("incrementing".into(), reader.incrementing.into());
            }
            if mode.timestamp() {
                last.source_offset
                    .insert("timestamp".into(), reader.timestamp.into());
            }
            last.source_partition.clone_from(&reader.partition);
        }
        Ok(full)
    }

    /// Every row of reader `i` at timestamp `t` (timestamp mode's rows sharing one time).
    fn rows_at(
        &self,
        i: usize,
        from: &str,
        t: i64,
        columns: &[(Arc<str>, Option<Schema>, bool)],
    ) -> Result<Vec<RowRead>> {
        let Some(conn) = self.conn.as_ref() else {
            return Ok(Vec::new());
        };
        let Some(reader) = self.readers.get(i) else {
            return Ok(Vec::new());
        };
        let ts = self.ts_expr(reader);
        let sql = format!("SELECT * FROM {from} WHERE {ts} = ?1");
        let mut stmt = conn
            .prepare_cached(&sql)
            .map_err(|e| sql_error(&format!("preparing {sql}"), &e))?;
        let mut rows = stmt
            .query([t])
            .map_err(|e| sql_error(&format!("querying {sql}"), &e))?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().map_err(|e| sql_error("reading a row", &e))? {
            let fields = row_fields(row, columns)?;
            out.push((fields, None, Some(t)));
        }
        Ok(out)
    }
}

/// Whether each column of `table` is declared NOT NULL.
fn table_not_null(conn: &Connection, table: &str) -> Result<HashMap<String, bool>> {
    let sql = format!("PRAGMA table_info({})", ident(table));
    let mut stmt = conn
        .prepare_cached(&sql)
        .map_err(|e| sql_error("reading the table's columns", &e))?;
    let rows = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(1)?,
                r.get::<_, i64>(3)? != 0 || r.get::<_, i64>(5)? != 0,
            ))
        })
        .map_err(|e| sql_error("reading the table's columns", &e))?;
    let mut out = HashMap::new();
    for r in rows {
        let (name, nn) = r.map_err(|e| sql_error("reading the table's columns", &e))?;
        out.insert(name, nn);
    }
    Ok(out)
}

/// The declared type of `table`'s column `column` (`None` for none).
fn declared_type(conn: &Connection, table: &str, column: &str) -> Result<Option<String>> {
    let sql = format!("PRAGMA table_info({})", ident(table));
    let mut stmt = conn
        .prepare(&sql)
        .map_err(|e| sql_error("reading the table's columns", &e))?;
    let rows = stmt
        .query_map([], |r| Ok((r.get::<_, String>(1)?, r.get::<_, String>(2)?)))
        .map_err(|e| sql_error("reading the table's columns", &e))?;
    for r in rows {
        let (name, decl) = r.map_err(|e| sql_error("reading the table's columns", &e))?;
        if name.eq_ignore_ascii_case(column) {
            return Ok((!decl.trim().is_empty()).then_some(decl));
        }
    }
    Ok(None)
}

/// The column names a `FROM` source gives.
fn column_names(conn: &Connection, from: &str) -> Result<Vec<String>> {
    let sql = format!("SELECT * FROM {from} LIMIT 0");
    let stmt = conn
        .prepare(&sql)
        .map_err(|e| sql_error(&format!("preparing {sql}"), &e))?;
    Ok(stmt.column_names().map(String::from).collect())
}

/// A row's values as struct fields, in the order of `columns`.
fn row_fields(
    row: &rusqlite::Row<'_>,
    columns: &[(Arc<str>, Option<Schema>, bool)],
) -> Result<Vec<(Arc<str>, Value)>> {
    let mut fields = Vec::with_capacity(columns.len());
    for (k, (name, s, _)) in columns.iter().enumerate() {
        let v = row
            .get_ref(k)
            .map_err(|e| sql_error("reading a column", &e))?;
        fields.push((name.clone(), to_value(v, s.as_ref(), name)?));
    }
    Ok(fields)
}
