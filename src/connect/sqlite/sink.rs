//! The SQLite sink: rows inserted or upserted with the consumed offsets in one transaction.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use rusqlite::types::ToSqlOutput;
use rusqlite::{Connection, params_from_iter};

use super::{db_path, ident, sql_error};
use crate::connect::ConnectRecord;
use crate::connect::config::Properties;
use crate::connect::connector::{SinkConnector, SinkTask};
use crate::connect::data::{Schema, SchemaType, Value, data_error};
use crate::error::{Error, Result};
use crate::types::TopicPartition;

/// The sink's table of consumed offsets, in the target database.
pub const SINK_OFFSETS_TABLE: &str = "__topiclog_connect_offsets";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PkMode {
    None,
    RecordKey,
    RecordValue,
}

/// The JDBC sink connector's model on a SQLite file: each record (a struct with a schema, or
/// a JSON object) becomes a row of `table.name.format` (`${topic}` by default), inserted or
/// upserted by `insert.mode`, the primary key by `pk.mode`/`pk.fields`, the table created
/// when `auto.create=true`. The consumed offsets are written in the same SQLite transaction
/// as the rows, in [`SINK_OFFSETS_TABLE`]: exactly-once.
///
/// The sink puts the database in WAL mode with `synchronous=FULL`, so a committed batch
/// survives power loss; WAL stays set on the file. Kafka's logical types are written as
/// Kafka's JDBC sink writes them to SQLite, in `NUMERIC` columns: a `Decimal` as its number,
/// a `Date` as ms since the epoch, a `Time` as ms since midnight, a `Timestamp` as ms.
/// `auto.create` types a schemaless record's table by its first record's values (SQLite
/// keeps later values of other types as they are). A database busy or locked by another
/// writer past 5 s, an I/O error or a full disk is [`Error::ConnectRetriable`].
#[derive(Debug, Clone, Copy, Default)]
pub struct SqliteSink;

impl SinkConnector for SqliteSink {
    fn validate(&self, config: &Properties) -> Result<()> {
        db_path(config)?;
        crate::connect::file::FileStreamSink.validate(config)?;
        match config.get("insert.mode").unwrap_or("insert") {
            "insert" | "upsert" => {}
            other => {
                return Err(Error::invalid_config(
                    "insert.mode",
                    format!("'{other}' is not insert or upsert"),
                ));
            }
        }
        let pk = pk_mode(config)?;
        if config.get("insert.mode") == Some("upsert") && pk == PkMode::None {
            return Err(Error::invalid_config(
                "pk.mode",
                "upsert needs a primary key (record_key or record_value)",
            ));
        }
        let n: usize = config.int("batch.size", 3000)?;
        if n == 0 {
            return Err(Error::invalid_config("batch.size", "must be at least 1"));
        }
        config.bool("auto.create", false)?;
        Ok(())
    }

    /// One task, whose consumer reads up to `batch.size` records a poll (its
    /// `max.poll.records`, unless `consumer.override.max.poll.records` says otherwise), so a
    /// transaction holds `batch.size` rows when that many wait. Kafka's JDBC sink is bounded
    /// by the consumer's default of 500 instead.
    fn task_configs(&self, config: &Properties, _max_tasks: usize) -> Vec<Properties> {
        let mut task = config.clone();
        if !config.contains("consumer.override.max.poll.records") {
            let batch = config
                .get("batch.size")
                .unwrap_or("3000")
                .trim()
                .to_string();
            task.set("consumer.override.max.poll.records", batch);
        }
        vec![task]
    }

    fn task(&self) -> Box<dyn SinkTask> {
        Box::new(SqliteSinkTask::default())
    }
}

fn pk_mode(config: &Properties) -> Result<PkMode> {
    match config.get("pk.mode").unwrap_or("none") {
        "none" => Ok(PkMode::None),
        "record_key" => Ok(PkMode::RecordKey),
        "record_value" => Ok(PkMode::RecordValue),
        "kafka" => Err(Error::invalid_config(
            "pk.mode",
            "kafka (topic, partition, offset as the key) is not supported; use record_key or \
             record_value",
        )),
        other => Err(Error::invalid_config(
            "pk.mode",
            format!("'{other}' is not none, record_key or record_value"),
        )),
    }
}

/// A task of [`SqliteSink`].
#[derive(Default)]
pub struct SqliteSinkTask {
    conn: Option<Connection>,
    name: String,
    upsert: bool,
    pk: Option<PkMode>,
    pk_fields: Vec<String>,
    auto_create: bool,
    table_format: String,
    batch: usize,
    /// Columns of the tables written so far.
    tables: HashMap<String, Vec<String>>,
    /// The last insert statement: its table, columns and text.
    last_sql: Option<(Arc<str>, Vec<String>, String)>,
    /// The last topic's table name.
    last_table: Option<(String, Arc<str>)>,
}

impl SinkTask for SqliteSinkTask {
    fn start(&mut self, config: &Properties) -> Result<()> {
        let path = db_path(config)?;
        let conn =
            Connection::open(&path).map_err(|e| sql_error(&format!("opening {path}"), &e))?;
        conn.busy_timeout(Duration::from_secs(5))
            .map_err(|e| sql_error("busy timeout", &e))?;
        conn.execute_batch(&format!(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;
             CREATE TABLE IF NOT EXISTS {SINK_OFFSETS_TABLE} (
                 connector TEXT NOT NULL, topic TEXT NOT NULL, partition INTEGER NOT NULL,
                 next_offset INTEGER NOT NULL, PRIMARY KEY (connector, topic, partition));"
        ))
        .map_err(|e| sql_error("preparing the database", &e))?;
        self.conn = Some(conn);
        self.name = config.require("name")?.to_string();
        self.upsert = config.get("insert.mode") == Some("upsert");
        self.pk = Some(pk_mode(config)?);
        self.pk_fields = config.list("pk.fields");
        self.auto_create = config.bool("auto.create", false)?;
        self.table_format = config
            .get("table.name.format")
            .unwrap_or("${topic}")
            .to_string();
        self.batch = config.int("batch.size", 3000)?;
        Ok(())
    }

    fn stored_offsets(&mut self) -> Result<Option<HashMap<TopicPartition, i64>>> {
        let Some(conn) = &self.conn else {
            return Ok(None);
        };
        let mut stmt = conn
            .prepare(&format!(
                "SELECT topic, partition, next_offset FROM {SINK_OFFSETS_TABLE} WHERE connector = ?1"
            ))
            .map_err(|e| sql_error("reading the offsets", &e))?;
        let rows = stmt
            .query_map([&self.name], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, i32>(1)?,
                    r.get::<_, i64>(2)?,
                ))
            })
            .map_err(|e| sql_error("reading the offsets", &e))?;
        let mut out = HashMap::new();
        for r in rows {
            let (t, p, o) = r.map_err(|e| sql_error("reading the offsets", &e))?;
            out.insert(TopicPartition::new(t, p), o);
        }
        Ok(Some(out))
    }

    fn put(&mut self, records: &[ConnectRecord]) -> Result<()> {
        for chunk in records.chunks(self.batch.max(1)) {
            self.write(chunk)?;
        }
        Ok(())
    }

    fn check(&mut self, record: &ConnectRecord) -> Result<()> {
        let row = self.row(record)?;
        for (name, v, s) in &row.columns {
            if let (Some(Logical::Decimal(scale)), Value::Bytes(b)) = (logical(*s), v) {
                decimal_text(b, scale).map_err(|e| data_error(format!("column '{name}': {e}")))?;
            }
        }
        self.fit(&row)
    }

    fn flush(&mut self, _offsets: &HashMap<TopicPartition, i64>) -> Result<()> {
        // Each put committed its rows with its offsets.
        Ok(())
    }
}

/// A column of a row: its name, value and schema (borrowed from the record).
type Column<'r> = (Cow<'r, str>, &'r Value, Option<&'r Schema>);

/// A row: column names and values, and the primary key's columns.
struct Row<'r> {
    table: Arc<str>,
    columns: Vec<Column<'r>>,
    key_columns: Vec<Cow<'r, str>>,
}

/// A value as a statement parameter, without a copy of its text or bytes. Kafka's logical
/// types are written as Kafka's JDBC sink writes them to SQLite: a `Decimal` as its number
/// (text, which the column's `NUMERIC` affinity stores as a number), a `Date` as ms since
/// the epoch at its midnight, a `Time` as ms since midnight, a `Timestamp` as ms since the
/// epoch.
struct Param<'a>(&'a Value, Option<&'a Schema>);

impl rusqlite::ToSql for Param<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        use rusqlite::types::{Value as Sql, ValueRef};
        match (logical(self.1), self.0) {
            (Some(Logical::Decimal(scale)), Value::Bytes(b)) => {
                let text = decimal_text(b, scale)
                    .map_err(|e| rusqlite::Error::ToSqlConversionFailure(e.into()))?;
                return Ok(ToSqlOutput::Owned(Sql::Text(text)));
            }
            (Some(Logical::Date), Value::Int(days)) => {
                return Ok(ToSqlOutput::Owned(Sql::Integer(
                    days.saturating_mul(86_400_000),
                )));
            }
            _ => {}
        }
        Ok(match self.0 {
            Value::Null => ToSqlOutput::Owned(Sql::Null),
            Value::Boolean(b) => ToSqlOutput::Owned(Sql::Integer(i64::from(*b))),
            Value::Int(i) => ToSqlOutput::Owned(Sql::Integer(*i)),
            Value::Float(f) => ToSqlOutput::Owned(Sql::Real(*f)),
            Value::String(t) => ToSqlOutput::Borrowed(ValueRef::Text(t.as_bytes())),
            Value::Bytes(b) => ToSqlOutput::Borrowed(ValueRef::Blob(b)),
            nested => ToSqlOutput::Owned(sql_value(nested)),
        })
    }
}

impl SqliteSinkTask {
    /// Writes `records` and their offsets in one transaction.
    fn write(&mut self, records: &[ConnectRecord]) -> Result<()> {
        let mut rows = Vec::with_capacity(records.len());
        for r in records {
            rows.push(self.row(r)?);
        }
        for row in &rows {
            if !self.is_last_statement(row) {
                self.fit(row)?;
            }
        }
        let Some(conn) = self.conn.as_mut() else {
            return Ok(());
        };
        let tx = conn
            .transaction()
            .map_err(|e| sql_error("beginning a transaction", &e))?;
        // One statement for each run of rows with the same table and columns.
        let mut stmt: Option<rusqlite::CachedStatement<'_>> = None;
        for row in &rows {
            if !is_statement_for(self.last_sql.as_ref(), row) {
                let sql = insert_sql(row, self.upsert);
                let cols = row.columns.iter().map(|(c, _, _)| c.to_string()).collect();
                self.last_sql = Some((Arc::clone(&row.table), cols, sql));
                stmt = None;
            }
            if stmt.is_none() {
                let sql = self.last_sql.as_ref().map_or("", |(_, _, s)| s.as_str());
                stmt = Some(
                    tx.prepare_cached(sql)
                        .map_err(|e| sql_error(&format!("preparing {sql}"), &e))?,
                );
            }
            let Some(s) = stmt.as_mut() else {
                continue;
            };
            s.execute(params_from_iter(
                row.columns.iter().map(|(_, v, s)| Param(v, *s)),
            ))
            .map_err(|e| sql_error(&format!("writing a row to {}", row.table), &e))?;
        }
        drop(stmt);
        // Offsets by the topic and partition each record was read from (a transform may
        // have routed it elsewhere): what the runtime compares with at a restart.
        let mut next: HashMap<(&str, i32), i64> = HashMap::new();
        for r in records {
            let read = match &r.original {
                Some((t, p, o)) => Some((t.as_str(), *p, *o)),
                None => r
                    .partition
                    .zip(r.offset)
                    .map(|(p, o)| (r.topic.as_str(), p, o)),
            };
            if let Some((t, p, o)) = read {
                let e = next.entry((t, p)).or_insert(o + 1);
                *e = (*e).max(o + 1);
            }
        }
        {
            let mut stmt = tx
                .prepare_cached(&format!(
                    "INSERT INTO {SINK_OFFSETS_TABLE} (connector, topic, partition, next_offset)
                     VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (connector, topic, partition) DO UPDATE SET
                     next_offset = max(next_offset, excluded.next_offset)"
                ))
                .map_err(|e| sql_error("writing the offsets", &e))?;
            for ((t, p), o) in next {
                stmt.execute(rusqlite::params![self.name, t, p, o])
                    .map_err(|e| sql_error("writing the offsets", &e))?;
            }
        }
        tx.commit().map_err(|e| sql_error("committing", &e))
    }

    /// The row a record makes, or a data error for a value that is not a struct or object.
    fn row<'r>(&mut self, r: &'r ConnectRecord) -> Result<Row<'r>> {
        let table = match &self.last_table {
            Some((topic, table)) if *topic == r.topic => Arc::clone(table),
            _ => {
                let table: Arc<str> = self.table_format.replace("${topic}", &r.topic).into();
                self.last_table = Some((r.topic.clone(), Arc::clone(&table)));
                table
            }
        };
        let fields = fields_of(&r.value, r.value_schema.as_deref(), "value")?;
        let mut columns: Vec<Column<'r>> = Vec::new();
        let mut key_columns: Vec<Cow<'r, str>> = Vec::new();
        let wanted =
            |name: &str| self.pk_fields.is_empty() || self.pk_fields.iter().any(|f| f == name);
        match self.pk.unwrap_or(PkMode::None) {
            PkMode::None => {}
            PkMode::RecordKey => match &r.key {
                Value::Struct(_) | Value::Map(_) => {
                    for (name, v, s) in fields_of(&r.key, r.key_schema.as_deref(), "key")? {
                        if wanted(&name) {
                            key_columns.push(name.clone());
                            columns.push((name, v, s));
                        }
                    }
                    if let Some(missing) = self
                        .pk_fields
                        .iter()
                        .find(|f| !key_columns.iter().any(|k| k == *f))
                    {
                        return Err(data_error(format!(
                            "pk.fields names '{missing}', which the key does not have"
                        )));
                    }
                    if key_columns.is_empty() {
                        return Err(data_error(
                            "pk.mode=record_key: the key has no fields to make a primary key"
                                .into(),
                        ));
                    }
                }
                Value::Null => {
                    return Err(data_error(
                        "pk.mode=record_key needs a key; this record has none".into(),
                    ));
                }
                primitive => {
                    let name: Cow<'r, str> = Cow::Owned(
                        self.pk_fields
                            .first()
                            .cloned()
                            .unwrap_or_else(|| "__connect_key".into()),
                    );
                    key_columns.push(name.clone());
                    columns.push((name, primitive, r.key_schema.as_deref()));
                }
            },
            PkMode::RecordValue => {
                for (name, _, _) in &fields {
                    if wanted(name) {
                        key_columns.push(name.clone());
                    }
                }
                if let Some(missing) = self
                    .pk_fields
                    .iter()
                    .find(|f| !key_columns.iter().any(|k| k == *f))
                {
                    return Err(data_error(format!(
                        "pk.fields names '{missing}', which the value does not have"
                    )));
                }
            }
        }
        if columns.is_empty() {
            // No key columns of the record's key: the value's fields are the row.
            columns = fields;
        } else {
            for f in fields {
                if !columns.iter().any(|(c, _, _)| *c == f.0) {
                    columns.push(f);
                }
            }
        }
        Ok(Row {
            table,
            columns,
            key_columns,
        })
    }

    /// Whether `row` has the table and columns of the last statement (so it fits).
    fn is_last_statement(&self, row: &Row<'_>) -> bool {
        is_statement_for(self.last_sql.as_ref(), row)
    }

    /// Checks the row's table has its columns (creating the table under `auto.create`):
    /// a row that does not fit is a data error, found before the batch's transaction.
    fn fit(&mut self, row: &Row<'_>) -> Result<()> {
        let Some(known) = self.tables.get(&*row.table) else {
            return self.prepare_table(row);
        };
        match row
            .columns
            .iter()
            .find(|(c, _, _)| !known.iter().any(|k| k.eq_ignore_ascii_case(c)))
        {
            Some((missing, _, _)) => Err(data_error(format!(
                "table '{}' has no column '{missing}' (auto.evolve is not supported)",
                row.table
            ))),
            None => Ok(()),
        }
    }

    /// Creates the row's table (`auto.create`) or checks it has the row's columns.
    fn prepare_table(&mut self, row: &Row) -> Result<()> {
        let Some(conn) = self.conn.as_ref() else {
            return Ok(());
        };
        let existing: Vec<String> = {
            let mut stmt = conn
                .prepare(&format!("PRAGMA table_info({})", ident(&row.table)))
                .map_err(|e| sql_error("reading the table's columns", &e))?;
            let names = stmt
                .query_map([], |r| r.get::<_, String>(1))
                .map_err(|e| sql_error("reading the table's columns", &e))?;
            names
                .collect::<std::result::Result<_, _>>()
                .map_err(|e| sql_error("reading the table's columns", &e))?
        };
        if existing.is_empty() {
            if !self.auto_create {
                return Err(data_error(format!(
                    "no table '{}' (set auto.create=true to create it)",
                    row.table
                )));
            }
            let mut defs: Vec<String> = row
                .columns
                .iter()
                .map(|(c, v, s)| {
                    let not_null =
                        s.as_ref().is_some_and(|s| !s.optional) || row.key_columns.contains(c);
                    format!(
                        "{} {}{}",
                        ident(c),
                        sql_type(v, *s),
                        if not_null { " NOT NULL" } else { "" }
                    )
                })
                .collect();
            if !row.key_columns.is_empty() {
                let keys: Vec<String> = row.key_columns.iter().map(|k| ident(k)).collect();
                defs.push(format!("PRIMARY KEY ({})", keys.join(", ")));
            }
            conn.execute_batch(&format!(
                "CREATE TABLE IF NOT EXISTS {} ({})",
                ident(&row.table),
                defs.join(", ")
            ))
            .map_err(|e| sql_error(&format!("creating {}", row.table), &e))?;
            let names = row.columns.iter().map(|(c, _, _)| c.to_string()).collect();
            self.tables.insert(row.table.to_string(), names);
            return Ok(());
        }
        if let Some((missing, _, _)) = row
            .columns
            .iter()
            .find(|(c, _, _)| !existing.iter().any(|e| e.eq_ignore_ascii_case(c)))
        {
            return Err(data_error(format!(
                "table '{}' has no column '{missing}' (auto.evolve is not supported)",
                row.table
            )));
        }
        self.tables.insert(row.table.to_string(), existing);
        Ok(())
    }
}

/// Whether `last` (a statement's table, columns and text) is the statement for `row`.
fn is_statement_for(last: Option<&(Arc<str>, Vec<String>, String)>, row: &Row<'_>) -> bool {
    last.is_some_and(|(t, cols, _)| {
        *t == row.table
            && cols.len() == row.columns.len()
            && cols.iter().zip(&row.columns).all(|(a, (b, _, _))| a == b)
    })
}

/// The fields of a struct (with its schema) or of a JSON object (a map with string keys).
fn fields_of<'r>(v: &'r Value, schema: Option<&'r Schema>, what: &str) -> Result<Vec<Column<'r>>> {
    match v {
        Value::Struct(fields) => Ok(fields
            .iter()
            .map(|(n, v)| {
                let s = schema.and_then(|s| s.field(n)).map(|f| &f.schema);
                (Cow::Borrowed(&**n), v, s)
            })
            .collect()),
        Value::Map(entries) => entries
            .iter()
            .map(|(k, v)| match k {
                Value::String(n) => Ok((Cow::Borrowed(n.as_str()), v, None)),
                _ => Err(data_error(format!(
                    "the record's {what} is a map with keys that are not strings"
                ))),
            })
            .collect(),
        Value::Null => Err(data_error(format!(
            "the record's {what} is null: the SQLite sink writes structs or JSON objects"
        ))),
        _ => Err(data_error(format!(
            "the record's {what} is not a struct or a JSON object: the SQLite sink needs \
             JsonConverter with schemas.enable=true, or JSON objects"
        ))),
    }
}

/// The statement that inserts (or upserts) `row`.
fn insert_sql(row: &Row<'_>, upsert: bool) -> String {
    let cols: Vec<String> = row.columns.iter().map(|(c, _, _)| ident(c)).collect();
    let marks: Vec<String> = (1..=cols.len()).map(|i| format!("?{i}")).collect();
    let mut sql = format!(
        "INSERT INTO {} ({}) VALUES ({})",
        ident(&row.table),
        cols.join(", "),
        marks.join(", ")
    );
    if upsert && !row.key_columns.is_empty() {
        let keys: Vec<String> = row.key_columns.iter().map(|k| ident(k)).collect();
        let set: Vec<String> = row
            .columns
            .iter()
            .filter(|(c, _, _)| !row.key_columns.contains(c))
            .map(|(c, _, _)| format!("{0} = excluded.{0}", ident(c)))
            .collect();
        let clause = if set.is_empty() {
            format!(" ON CONFLICT ({}) DO NOTHING", keys.join(", "))
        } else {
            format!(
                " ON CONFLICT ({}) DO UPDATE SET {}",
                keys.join(", "),
                set.join(", ")
            )
        };
        sql.push_str(&clause);
    }
    sql
}

/// Kafka's logical types the sink writes in their own way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Logical {
    /// `Decimal` with its scale.
    Decimal(i32),
    Date,
    Time,
    Timestamp,
}

fn logical(schema: Option<&Schema>) -> Option<Logical> {
    let s = schema?;
    match s.name.as_deref()? {
        "org.apache.kafka.connect.data.Decimal" if s.kind == SchemaType::Bytes => {
            let scale = s
                .parameters
                .get("scale")
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            Some(Logical::Decimal(scale))
        }
        "org.apache.kafka.connect.data.Date" if s.kind == SchemaType::Int32 => Some(Logical::Date),
        "org.apache.kafka.connect.data.Time" if s.kind == SchemaType::Int32 => Some(Logical::Time),
        crate::connect::data::TIMESTAMP_SCHEMA_NAME if s.kind == SchemaType::Int64 => {
            Some(Logical::Timestamp)
        }
        _ => None,
    }
}

/// A `Decimal`'s number as text: `unscaled` (big-endian two's complement, as Kafka writes
/// it) divided by 10^`scale`.
fn decimal_text(unscaled: &[u8], scale: i32) -> std::result::Result<String, String> {
    if unscaled.is_empty() || unscaled.len() > 16 {
        return Err(format!(
            "a Decimal of {} bytes: the sink writes Decimals of 1 to 16 bytes",
            unscaled.len()
        ));
    }
    let negative = unscaled.first().is_some_and(|b| b & 0x80 != 0);
    let mut n: i128 = if negative { -1 } else { 0 };
    for b in unscaled {
        n = (n << 8) | i128::from(*b);
    }
    let digits = n.unsigned_abs().to_string();
    let sign = if negative { "-" } else { "" };
    let Ok(scale) = usize::try_from(scale) else {
        // A negative scale: the number times 10^-scale.
        let zeros = "0".repeat(scale.unsigned_abs() as usize);
        return Ok(if digits == "0" {
            digits
        } else {
            format!("{sign}{digits}{zeros}")
        });
    };
    if scale == 0 {
        return Ok(format!("{sign}{digits}"));
    }
    let padded = format!("{digits:0>width$}", width = scale + 1);
    let (int, frac) = padded.split_at(padded.len() - scale);
    Ok(format!("{sign}{int}.{frac}"))
}

fn sql_type(v: &Value, schema: Option<&Schema>) -> &'static str {
    if logical(schema).is_some() {
        // As Kafka's JDBC sink declares them on SQLite.
        return "NUMERIC";
    }
    match schema.map(|s| s.kind) {
        Some(k) if k.is_integer() => "INTEGER",
        Some(SchemaType::Boolean) => "INTEGER",
        Some(SchemaType::Float32 | SchemaType::Float64) => "REAL",
        Some(SchemaType::Bytes) => "BLOB",
        Some(_) => "TEXT",
        None => match v {
            Value::Int(_) | Value::Boolean(_) => "INTEGER",
            Value::Float(_) => "REAL",
            Value::Bytes(_) => "BLOB",
            _ => "TEXT",
        },
    }
}

fn sql_value(v: &Value) -> rusqlite::types::Value {
    use rusqlite::types::Value as Sql;
    match v {
        Value::Null => Sql::Null,
        Value::Boolean(b) => Sql::Integer(i64::from(*b)),
        Value::Int(i) => Sql::Integer(*i),
        Value::Float(f) => Sql::Real(*f),
        Value::String(s) => Sql::Text(s.clone()),
        Value::Bytes(b) => Sql::Blob(b.to_vec()),
        nested => Sql::Text(
            crate::connect::data::value_to_json(None, nested)
                .map_or_else(|_| String::new(), |j| j.to_string()),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::decimal_text;

    #[test]
    fn decimals_are_written_as_their_numbers() {
        assert_eq!(decimal_text(&[0x30, 0x39], 2).as_deref(), Ok("123.45"));
        assert_eq!(decimal_text(&[0xcf, 0xc7], 2).as_deref(), Ok("-123.45"));
        assert_eq!(decimal_text(&[0x05], 3).as_deref(), Ok("0.005"));
        assert_eq!(decimal_text(&[0xff], 0).as_deref(), Ok("-1"));
        assert_eq!(decimal_text(&[0x07], -2).as_deref(), Ok("700"));
        assert_eq!(decimal_text(&[0x00], 2).as_deref(), Ok("0.00"));
        assert!(decimal_text(&[], 0).is_err());
        assert!(decimal_text(&[1; 17], 0).is_err());
    }
}
