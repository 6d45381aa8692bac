//! The transforms that route or drop whole records (`RegexRouter`, `TimestampRouter`,
//! `Filter`) and the predicates (`TopicNameMatches`, `HasHeaderKey`, `RecordIsTombstone`).

use regex::Regex;

use crate::connect::ConnectRecord;
use crate::connect::data::data_error;
use crate::error::Result;

use super::datefmt::{DatePart, format_date, parse_date_format};
use super::{Keys, Predicate, Transform};

pub(super) struct TopicNameMatches(pub(super) Regex);

impl Predicate for TopicNameMatches {
    fn test(&self, record: &ConnectRecord) -> bool {
        self.0.is_match(&record.topic)
    }
}

pub(super) struct HasHeaderKey(pub(super) String);

impl Predicate for HasHeaderKey {
    fn test(&self, record: &ConnectRecord) -> bool {
        record.has_header(&self.0)
    }
}

pub(super) struct RecordIsTombstone;

impl Predicate for RecordIsTombstone {
    fn test(&self, record: &ConnectRecord) -> bool {
        record.value.is_null()
    }
}

/// A piece of a Java replacement string: text, or a capture group's index.
enum Piece {
    Text(String),
    Group(usize),
}

/// `RegexRouter`: a topic the regex matches whole is renamed to the replacement.
pub(super) struct RegexRouter {
    whole: Regex,
    find: Regex,
    replacement: Vec<Piece>,
}

impl RegexRouter {
    pub(super) fn configure(keys: &Keys<'_>) -> Result<Self> {
        let pattern = keys.required("regex")?;
        let find = keys.regex("regex", pattern)?;
        let whole = keys.whole_regex("regex", pattern)?;
        let replacement = parse_replacement(keys.required("replacement")?, &find)
            .map_err(|reason| keys.invalid("replacement", reason))?;
        Ok(RegexRouter {
            whole,
            find,
            replacement,
        })
    }
}

impl Transform for RegexRouter {
    fn apply(&mut self, mut record: ConnectRecord) -> Result<Option<ConnectRecord>> {
        if !self.whole.is_match(&record.topic) {
            return Ok(Some(record));
        }
        // Java's `matches()` then `replaceFirst()`: the replacement takes the place of the
        // first match a fresh search finds, which for `a|ab` on "ab" is just "a".
        if let Some(caps) = self.find.captures(&record.topic)
            && let Some(m) = caps.get(0)
        {
            let mut topic = record
                .topic
                .get(..m.start())
                .unwrap_or_default()
                .to_string();
            for piece in &self.replacement {
                match piece {
                    Piece::Text(t) => topic.push_str(t),
                    Piece::Group(i) => topic.push_str(caps.get(*i).map_or("", |g| g.as_str())),
                }
            }
            topic.push_str(record.topic.get(m.end()..).unwrap_or_default());
            record.topic = topic;
        }
        Ok(Some(record))
    }
}

/// A replacement in Java's `Matcher` syntax: `$n` (digits taken while they name a group),
/// `${name}`, and `\` quoting the next character. Group references are checked here, so a
/// route cannot fail on a record.
fn parse_replacement(text: &str, regex: &Regex) -> std::result::Result<Vec<Piece>, String> {
    let groups = regex.captures_len().saturating_sub(1);
    let mut pieces = Vec::new();
    let mut literal = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => literal.push(chars.next().ok_or("ends with an unescaped '\\'")?),
            '$' => {
                let group = match chars.next() {
                    None => return Err("ends with '$' and no group".into()),
                    Some('{') => {
                        let mut name = String::new();
                        loop {
                            match chars.next() {
                                Some('}') => break,
                                Some(ch) => name.push(ch),
                                None => return Err(format!("'${{{name}' has no closing '}}'")),
                            }
                        }
                        regex
                            .capture_names()
                            .position(|n| n == Some(name.as_str()))
                            .ok_or_else(|| format!("the regex has no group named '{name}'"))?
                    }
                    Some(d) => {
                        let mut group = d
                            .to_digit(10)
                            .ok_or_else(|| format!("illegal group reference '${d}'"))?
                            as usize;
                        while let Some(next) = chars.peek().and_then(|ch| ch.to_digit(10)) {
                            let longer = group.saturating_mul(10).saturating_add(next as usize);
                            if longer > groups {
                                break;
                            }
                            group = longer;
                            chars.next();
                        }
                        if group > groups {
                            return Err(format!("the regex has no group {group}"));
                        }
                        group
                    }
                };
                if !literal.is_empty() {
                    pieces.push(Piece::Text(std::mem::take(&mut literal)));
                }
                pieces.push(Piece::Group(group));
            }
            _ => literal.push(c),
        }
    }
    if !literal.is_empty() {
        pieces.push(Piece::Text(literal));
    }
    Ok(pieces)
}

/// `TimestampRouter`: the topic becomes `topic.format` with `${topic}` and `${timestamp}`
/// (the record's timestamp in `timestamp.format`, UTC) filled in.
pub(super) struct TimestampRouter {
    topic_format: String,
    timestamp_format: Vec<DatePart>,
}

impl TimestampRouter {
    pub(super) fn configure(keys: &Keys<'_>) -> Result<Self> {
        let format = keys.get("timestamp.format").unwrap_or("yyyyMMdd");
        Ok(TimestampRouter {
            topic_format: keys
                .get("topic.format")
                .unwrap_or("${topic}-${timestamp}")
                .to_string(),
            timestamp_format: parse_date_format(format)
                .map_err(|reason| keys.invalid("timestamp.format", reason))?,
        })
    }
}

impl Transform for TimestampRouter {
    fn apply(&mut self, mut record: ConnectRecord) -> Result<Option<ConnectRecord>> {
        let Some(ts) = record.timestamp else {
            return Err(data_error(format!(
                "timestamp missing on a record for topic '{}'",
                record.topic
            )));
        };
        // Replaced in this order, as Kafka's: a topic containing `${timestamp}` gets it too.
        record.topic = self
            .topic_format
            .replace("${topic}", &record.topic)
            .replace("${timestamp}", &format_date(&self.timestamp_format, ts));
        Ok(Some(record))
    }
}

/// `Filter`: drops every record (with a predicate, the ones it matches).
pub(super) struct Filter;

impl Transform for Filter {
    fn apply(&mut self, _record: ConnectRecord) -> Result<Option<ConnectRecord>> {
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replacements_read_group_numbers_as_java_does() -> Result<()> {
        let re = Regex::new("(a)(b)(?<name>c)").map_err(|e| data_error(e.to_string()))?;
        let groups = |text: &str| -> Vec<String> {
            parse_replacement(text, &re)
                .expect("replacement")
                .iter()
                .map(|p| match p {
                    Piece::Text(t) => format!("'{t}'"),
                    Piece::Group(g) => g.to_string(),
                })
                .collect()
        };
        // `$31` is group 3 then "1": there is no group 31.
        assert_eq!(groups("x$31"), ["'x'", "3", "'1'"]);
        assert_eq!(groups(r"${name}\$1"), ["3", "'$1'"]);
        assert!(parse_replacement("$4", &re).is_err());
        assert!(parse_replacement("${nope}", &re).is_err());
        assert!(parse_replacement("$x", &re).is_err());
        assert!(parse_replacement("a\\", &re).is_err());
        assert!(parse_replacement("a$", &re).is_err());
        Ok(())
    }
}
