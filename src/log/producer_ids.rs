//! The producer-id registry: ids handed out, and the epoch of each named producer and each
//! transactional id, persisted (fsynced) before an id is returned. Names and transactional
//! ids share one namespace: one id cannot be used both ways.

use std::collections::{BTreeMap, BTreeSet};
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
    /// The names that are transactional ids.
    pub(super) transactional: BTreeSet<String>,
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
                [kind @ ("name" | "txn"), name, id, epoch] => {
                    if let (Ok(id), Ok(epoch)) = (id.parse(), epoch.parse()) {
                        r.names.insert((*name).to_string(), (id, epoch));
                        if *kind == "txn" {
                            r.transactional.insert((*name).to_string());
                        }
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

    /// The next id and epoch for a producer name or, with `transactional`, a transactional
    /// id (a fresh id without a name).
    pub(crate) fn next_of(
        &mut self,
        name: Option<&str>,
        transactional: bool,
    ) -> Result<(i64, i16)> {
        if let Some(n) = name {
            let setting = if transactional {
                "transactional.id"
            } else {
                "name"
            };
            if n.is_empty() || n.chars().any(char::is_whitespace) {
                return Err(Error::invalid_config(
                    setting,
                    "a producer name or transactional id is non-empty with no whitespace",
                ));
            }
            if self.names.contains_key(n) && self.transactional.contains(n) != transactional {
                let (was, asked) = if transactional {
                    ("a producer name", "a transactional id")
                } else {
                    ("a transactional id", "a producer name")
                };
                return Err(Error::invalid_config(
                    setting,
                    format!("{n:?} is already {was}; it cannot also be {asked}"),
                ));
            }
            if transactional {
                self.transactional.insert(n.to_string());
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
            let kind = if self.transactional.contains(name) {
                "txn"
            } else {
                "name"
            };
            let _ = writeln!(text, "{kind} {name} {id} {epoch}");
        }
        write_atomic(path, text.as_bytes())
    }
}
