//! Versioned, authenticated, namespaced key-value state.
//!
//! The pure part (this file): the [`StateRead`] trait that execution reads through, the [`WriteSet`] a block
//! produces, an [`Overlay`] that stages writes with per-transaction checkpoints, and [`MemState`], an in-memory
//! base for tests. The shell part ([`store`]) persists write sets in RocksDB as one Jellyfish Merkle tree per
//! namespace and serves proofs at any retained height.

use std::collections::BTreeMap;

use causeway_light_client::proof::check_sizes;
use causeway_light_client::Namespace;

pub mod snapshot;
pub mod store;

pub use snapshot::{SnapshotHeader, SnapshotSummary};
pub use store::{BlockData, HeightMeta, NamespaceEntry, PreparedCommit, StateError, Store, StoreOptions, StoreView};

/// Read access to state at one height.
pub trait StateRead {
    /// The value under `(namespace, key)`, if any.
    fn get(&self, namespace: &Namespace, key: &[u8]) -> Result<Option<Vec<u8>>, StateError>;
}

impl<T: StateRead + ?Sized> StateRead for &T {
    fn get(&self, namespace: &Namespace, key: &[u8]) -> Result<Option<Vec<u8>>, StateError> {
        (**self).get(namespace, key)
    }
}

/// Read and write access: what execution modules see (an [`Overlay`] over the state of the previous height).
pub trait StateWrite: StateRead {
    /// Stage `value` under `(namespace, key)`.
    fn put(&mut self, namespace: &Namespace, key: &[u8], value: Vec<u8>) -> Result<(), StateError>;
    /// Stage the deletion of `(namespace, key)`.
    fn delete(&mut self, namespace: &Namespace, key: &[u8]) -> Result<(), StateError>;
}

/// The writes of one block: per namespace, per key, the new value or `None` for a deletion.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WriteSet {
    changes: BTreeMap<Namespace, BTreeMap<Vec<u8>, Option<Vec<u8>>>>,
}

impl WriteSet {
    /// No writes.
    pub fn new() -> Self {
        Self::default()
    }

    /// Stage `value` (or a deletion) under `(namespace, key)`; a later write to the same key wins.
    pub fn put(&mut self, namespace: Namespace, key: Vec<u8>, value: Option<Vec<u8>>) -> Result<(), StateError> {
        check_sizes(&key, value.as_deref()).map_err(StateError::Limit)?;
        self.changes.entry(namespace).or_default().insert(key, value);
        Ok(())
    }

    /// The staged write for a key: `Some(None)` is a staged deletion, `None` means untouched.
    pub fn staged(&self, namespace: &Namespace, key: &[u8]) -> Option<&Option<Vec<u8>>> {
        self.changes.get(namespace).and_then(|m| m.get(key))
    }

    /// Iterate namespaces with their changes, in order.
    pub fn namespaces(&self) -> impl Iterator<Item = (&Namespace, &BTreeMap<Vec<u8>, Option<Vec<u8>>>)> {
        self.changes.iter()
    }

    /// Number of staged key writes.
    pub fn len(&self) -> usize {
        self.changes.values().map(|m| m.len()).sum()
    }

    /// True when nothing is staged.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Apply `other` on top of `self`.
    pub fn merge(&mut self, other: WriteSet) {
        for (ns, m) in other.changes {
            self.changes.entry(ns).or_default().extend(m);
        }
    }
}

/// Staged writes over a base state, with checkpoints so one failing transaction can be undone without touching
/// the rest of the block.
pub struct Overlay<R> {
    base: R,
    committed: WriteSet,
    pending: WriteSet,
}

impl<R: StateRead> Overlay<R> {
    /// An empty overlay over `base`.
    pub fn new(base: R) -> Self {
        Overlay { base, committed: WriteSet::new(), pending: WriteSet::new() }
    }

    /// Stage a write in the current transaction.
    pub fn put(&mut self, namespace: &Namespace, key: &[u8], value: Vec<u8>) -> Result<(), StateError> {
        self.pending.put(namespace.clone(), key.to_vec(), Some(value))
    }

    /// Stage a deletion in the current transaction.
    pub fn delete(&mut self, namespace: &Namespace, key: &[u8]) -> Result<(), StateError> {
        self.pending.put(namespace.clone(), key.to_vec(), None)
    }

    /// Keep the current transaction's writes.
    pub fn commit_tx(&mut self) {
        let pending = std::mem::take(&mut self.pending);
        self.committed.merge(pending);
    }

    /// Drop the current transaction's writes.
    pub fn rollback_tx(&mut self) {
        self.pending = WriteSet::new();
    }

    /// Everything kept so far (the current transaction's uncommitted writes are dropped).
    pub fn into_write_set(self) -> WriteSet {
        self.committed
    }

    /// The base state.
    pub fn base(&self) -> &R {
        &self.base
    }
}

impl<R: StateRead> StateWrite for Overlay<R> {
    fn put(&mut self, namespace: &Namespace, key: &[u8], value: Vec<u8>) -> Result<(), StateError> {
        Overlay::put(self, namespace, key, value)
    }
    fn delete(&mut self, namespace: &Namespace, key: &[u8]) -> Result<(), StateError> {
        Overlay::delete(self, namespace, key)
    }
}

impl<R: StateRead> StateRead for Overlay<R> {
    fn get(&self, namespace: &Namespace, key: &[u8]) -> Result<Option<Vec<u8>>, StateError> {
        if let Some(v) = self.pending.staged(namespace, key) {
            return Ok(v.clone());
        }
        if let Some(v) = self.committed.staged(namespace, key) {
            return Ok(v.clone());
        }
        self.base.get(namespace, key)
    }
}

/// A plain in-memory state (no proofs): the base for unit tests of execution.
#[derive(Clone, Debug, Default)]
pub struct MemState {
    data: BTreeMap<(Namespace, Vec<u8>), Vec<u8>>,
}

impl MemState {
    /// Empty state.
    pub fn new() -> Self {
        Self::default()
    }

    /// Apply a write set.
    pub fn apply(&mut self, writes: &WriteSet) {
        for (ns, changes) in writes.namespaces() {
            for (k, v) in changes {
                match v {
                    Some(v) => self.data.insert((ns.clone(), k.clone()), v.clone()),
                    None => self.data.remove(&(ns.clone(), k.clone())),
                };
            }
        }
    }
}

impl StateRead for MemState {
    fn get(&self, namespace: &Namespace, key: &[u8]) -> Result<Option<Vec<u8>>, StateError> {
        Ok(self.data.get(&(namespace.clone(), key.to_vec())).cloned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ns(s: &str) -> Namespace {
        Namespace::new(s).unwrap()
    }

    #[test]
    fn overlay_rolls_back_one_transaction_only() {
        let mut base = MemState::new();
        let mut ws = WriteSet::new();
        ws.put(ns("a"), b"k".to_vec(), Some(b"base".to_vec())).unwrap();
        base.apply(&ws);
        let mut o = Overlay::new(&base);
        o.put(&ns("a"), b"k", b"tx1".to_vec()).unwrap();
        o.commit_tx();
        o.put(&ns("a"), b"k", b"tx2".to_vec()).unwrap();
        o.delete(&ns("a"), b"other").unwrap();
        assert_eq!(o.get(&ns("a"), b"k").unwrap().as_deref(), Some(&b"tx2"[..]));
        o.rollback_tx();
        assert_eq!(o.get(&ns("a"), b"k").unwrap().as_deref(), Some(&b"tx1"[..]));
        let ws = o.into_write_set();
        assert_eq!(ws.len(), 1);
    }

    #[test]
    fn oversized_writes_are_refused() {
        let mut ws = WriteSet::new();
        assert!(ws.put(ns("a"), vec![], Some(vec![])).is_err());
        assert!(ws.put(ns("a"), vec![0; 2000], None).is_err());
        assert!(ws.put(ns("a"), vec![1], Some(vec![0; 2 * 1024 * 1024])).is_err());
        assert!(ws.is_empty());
    }
}
