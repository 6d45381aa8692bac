//! A SQLite source and sink with the JDBC connectors' modes and keys (feature `sqlite`):
//! [`SqliteSource`] (`source.rs`) and [`SqliteSink`] (`sink.rs`).

mod sink;
mod source;

pub use sink::{SINK_OFFSETS_TABLE, SqliteSink, SqliteSinkTask};
pub use source::{SqliteSource, SqliteSourceTask};

use super::config::Properties;
use crate::error::{Error, Result};

/// A SQLite error naming what was being done: retriable when it may pass (the database busy
/// or locked by another connection, an I/O error, a full disk), else a data error.
fn sql_error(what: &str, e: &rusqlite::Error) -> Error {
    use rusqlite::ErrorCode as C;
    let reason = format!("SQLite: {what}: {e}");
    match e.sqlite_error_code() {
        Some(C::DatabaseBusy | C::DatabaseLocked | C::SystemIoFailure | C::DiskFull) => {
            Error::ConnectRetriable { reason }
        }
        _ => Error::ConnectData { reason },
    }
}

/// The database path of `connection.url`: a path, or `jdbc:sqlite:<path>`.
fn db_path(config: &Properties) -> Result<String> {
    let url = config.require("connection.url")?;
    Ok(url.strip_prefix("jdbc:sqlite:").unwrap_or(url).to_string())
}

/// Quotes an identifier for SQLite.
fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}
