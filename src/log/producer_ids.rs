//! The producer-id registry: ids handed out, and the epoch of each named producer, persisted
//! (fsynced) before an id is returned.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::path::Path;

use crate::error::{Error, Result};
use crate::io::write_atomic;

/// Persisted producer ids: the next id to hand out, and stable names with their id and epoch.
#[derive(Debug, Default)]
pub(crate) struct ProducerRegistry {
    pub(super) next_id: i64,
    pub(super) names: BTreeMap<String, (i64, i16)>,
}

impl ProducerRegistry {
    pub(crate) fn load(path: &Path) -> ProducerRegistry {
        let mut r = ProducerRegistry::default();
        let Ok(text) = fs::read_to_string(path) else {
            return r;
        };
        for line in text.lines() {
            let f: Vec<&str> = line.split_whitespace().collect();
            match f.as_slice() {
                ["next_id", n] => r.next_id = n.parse().unwrap_or(0),
                ["name", name, id, epoch] => {
                    if let (Ok(id), Ok(epoch)) = (id.parse(), epoch.parse()) {
                        r.names.insert((*name).to_string(), (id, epoch));
                    }
                }
                _ => {}
            }
        }
        // Never hand out an id at or below one already named.
        let max_named = r.names.values().map(|(id, _)| *id + 1).max().unwrap_or(0);
        r.next_id = r.next_id.max(max_named);
        r
    }

    pub(crate) fn next(&mut self, name: Option<&str>) -> Result<(i64, i16)> {
        if let Some(n) = name {
            if n.is_empty() || n.chars().any(char::is_whitespace) {
                return Err(Error::invalid_config(
                    "name",
                    "a producer name is non-empty with no whitespace",
                ));
            }
            if let Some((id, epoch)) = self.names.get_mut(n) {
                if *epoch == i16::MAX {
                    // Out of epochs: a new id starts over, as Kafka does.
                    *id = self.next_id;
                    self.next_id += 1;
                    *epoch = 0;
                } else {
                    *epoch += 1;
                }
                return Ok((*id, *epoch));
            }
            let id = self.next_id;
            self.next_id += 1;
            self.names.insert(n.to_string(), (id, 0));
            return Ok((id, 0));
        }
        let id = self.next_id;
        self.next_id += 1;
        Ok((id, 0))
    }

    pub(crate) fn save(&self, path: &Path) -> Result<()> {
        let mut text = format!("next_id {}\n", self.next_id);
        for (name, (id, epoch)) in &self.names {
            let _ = writeln!(text, "name {name} {id} {epoch}");
        }
        write_atomic(path, text.as_bytes())
    }
}
