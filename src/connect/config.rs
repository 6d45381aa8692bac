//! Kafka's `.properties` files and typed reads of connector and worker settings.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use crate::error::{Error, Result};

/// Settings by Kafka's keys, as a `.properties` file holds them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Properties {
    map: BTreeMap<String, String>,
}

impl Properties {
    /// No settings.
    pub fn new() -> Properties {
        Properties::default()
    }

    /// Parses Java's `.properties` text: `key=value`, `key: value` or `key value`; `#` and
    /// `!` comments; a trailing backslash continues a line; `\t`, `\n`, `\uXXXX` and other
    /// backslash escapes.
    pub fn parse(text: &str) -> Properties {
        let mut map = BTreeMap::new();
        let mut lines = text.lines();
        while let Some(first) = lines.next() {
            let first = first.trim_start();
            if first.is_empty() || first.starts_with('#') || first.starts_with('!') {
                continue;
            }
            let mut logical = String::new();
            let mut line = first;
            loop {
                let trailing = line.chars().rev().take_while(|&c| c == '\\').count();
                if trailing % 2 == 1 {
                    logical.push_str(line.get(..line.len() - 1).unwrap_or_default());
                    match lines.next() {
                        Some(next) => line = next.trim_start(),
                        None => break,
                    }
                } else {
                    logical.push_str(line);
                    break;
                }
            }
            let (key, value) = split_entry(&logical);
            map.insert(unescape(key), unescape(value));
        }
        Properties { map }
    }

    /// Reads and parses a `.properties` file.
    ///
    /// # Errors
    /// [`Error::Io`] when the file cannot be read.
    pub fn load(path: &Path) -> Result<Properties> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Ok(Properties::parse(&text))
    }

    /// Settings from `(key, value)` pairs.
    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Properties {
        Properties {
            map: pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }

    /// Sets `key`.
    pub fn set(&mut self, key: impl Into<String>, value: impl Into<String>) {
        self.map.insert(key.into(), value.into());
    }

    /// The same settings with `key` set.
    #[must_use]
    pub fn with(mut self, key: impl Into<String>, value: impl Into<String>) -> Properties {
        self.set(key, value);
        self
    }

    /// A setting.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.map.get(key).map(String::as_str)
    }

    /// Whether `key` is set.
    pub fn contains(&self, key: &str) -> bool {
        self.map.contains_key(key)
    }

    /// A setting that must be present and not empty.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming the key.
    pub fn require(&self, key: &str) -> Result<&str> {
        match self.get(key).map(str::trim) {
            Some(v) if !v.is_empty() => Ok(v),
            _ => Err(Error::invalid_config(key, "is required")),
        }
    }

    /// An integer setting, `default` when absent.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] when it is not an integer in range.
    pub fn int<T: std::str::FromStr>(&self, key: &str, default: T) -> Result<T> {
        match self.get(key).map(str::trim) {
            None | Some("") => Ok(default),
            Some(v) => v
                .parse()
                .map_err(|_| Error::invalid_config(key, format!("'{v}' is not a valid number"))),
        }
    }

    /// A boolean setting (`true`/`false`, any case), `default` when absent.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for anything else.
    pub fn bool(&self, key: &str, default: bool) -> Result<bool> {
        match self.get(key).map(str::trim) {
            None | Some("") => Ok(default),
            Some(v) if v.eq_ignore_ascii_case("true") => Ok(true),
            Some(v) if v.eq_ignore_ascii_case("false") => Ok(false),
            Some(v) => Err(Error::invalid_config(
                key,
                format!("'{v}' is not true or false"),
            )),
        }
    }

    /// A duration in milliseconds, `default` when absent.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] when it is not a non-negative integer.
    pub fn millis(&self, key: &str, default: Duration) -> Result<Duration> {
        match self.get(key).map(str::trim) {
            None | Some("") => Ok(default),
            Some(v) => v.parse::<u64>().map(Duration::from_millis).map_err(|_| {
                Error::invalid_config(key, format!("'{v}' is not a number of milliseconds"))
            }),
        }
    }

    /// A comma-separated list, trimmed, empty items dropped (empty when absent).
    pub fn list(&self, key: &str) -> Vec<String> {
        self.get(key)
            .map(|v| {
                v.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The settings under `prefix` (for example `value.converter.`), with it removed.
    #[must_use]
    pub fn prefixed(&self, prefix: &str) -> Properties {
        Properties {
            map: self
                .map
                .iter()
                .filter_map(|(k, v)| k.strip_prefix(prefix).map(|k| (k.to_string(), v.clone())))
                .collect(),
        }
    }

    /// These settings with `over`'s on top.
    #[must_use]
    pub fn overlaid(&self, over: &Properties) -> Properties {
        let mut map = self.map.clone();
        map.extend(over.map.iter().map(|(k, v)| (k.clone(), v.clone())));
        Properties { map }
    }

    /// The settings as a map.
    pub fn as_map(&self) -> &BTreeMap<String, String> {
        &self.map
    }

    /// Keys, sorted.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.map.keys().map(String::as_str)
    }
}

/// Splits a logical line at the first unescaped `=`, `:` or whitespace.
fn split_entry(line: &str) -> (&str, &str) {
    let mut escaped = false;
    let mut end = line.len();
    for (i, c) in line.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        if c == '\\' {
            escaped = true;
        } else if c == '=' || c == ':' || c.is_whitespace() {
            end = i;
            break;
        }
    }
    let key = line.get(..end).unwrap_or(line);
    let mut rest = line.get(end..).unwrap_or_default().trim_start();
    if let Some(r) = rest.strip_prefix(['=', ':']) {
        rest = r.trim_start();
    }
    (key, rest)
}

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('f') => out.push('\u{c}'),
            Some('u') => {
                let hex: String = chars.clone().take(4).collect();
                match u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32) {
                    Some(ch) if hex.len() == 4 => {
                        out.push(ch);
                        for _ in 0..4 {
                            chars.next();
                        }
                    }
                    _ => out.push('u'),
                }
            }
            Some(other) => out.push(other),
            None => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_kafkas_property_files() {
        let p = Properties::parse(
            "# a comment\n! another\nname=local-file-source\nconnector.class : FileStreamSource\n\
             tasks.max 1\n  file=test.txt\nlong=a,\\\n    b\nescaped=c\\:\\\\d\\u0041\nempty=\n",
        );
        assert_eq!(p.get("name"), Some("local-file-source"));
        assert_eq!(p.get("connector.class"), Some("FileStreamSource"));
        assert_eq!(p.get("tasks.max"), Some("1"));
        assert_eq!(p.get("file"), Some("test.txt"));
        assert_eq!(p.get("long"), Some("a,b"));
        assert_eq!(p.get("escaped"), Some("c:\\dA"));
        assert_eq!(p.get("empty"), Some(""));
        assert!(p.require("empty").is_err());
        assert_eq!(p.list("long"), ["a", "b"]);
    }

    #[test]
    fn typed_reads_name_the_key_they_refuse() {
        let p = Properties::from_pairs([("batch.size", "x"), ("flag", "maybe")]);
        let e = p.int::<usize>("batch.size", 1).expect_err("not a number");
        assert!(e.to_string().contains("batch.size"), "{e}");
        assert!(p.bool("flag", false).is_err());
        assert_eq!(p.int::<usize>("absent", 7).expect("default"), 7);
    }
}
