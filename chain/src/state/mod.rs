//! Versioned, authenticated, namespaced key-value state.
//!
//! The pure part (this file): the [`StateRead`] trait that execution reads through, the [`WriteSet`] a block
//! produces, an [`Overlay`] that stages writes with per-transaction checkpoints, and [`MemState`], an in-memory
//! base for tests. The shell part ([`store`]) persists write sets in RocksDB as one Jellyfish Merkle tree per
//! namespace and serves proofs at any retained height.

use std::collections::{BTreeMap, BTreeSet};

use causeway_light_client::proof::{self, check_sizes};
use causeway_light_client::{Hash, HashAlg, Namespace};

pub mod snapshot;
pub mod store;

pub use snapshot::{SnapshotHeader, SnapshotSummary};
pub use store::{BlockData, HeightMeta, NamespaceEntry, PreparedCommit, StateError, Store, StoreOptions, StoreView};

/// Read access to state at one height.
pub trait StateRead {
    /// The value under `(namespace, key)`, if any.
    fn get(&self, namespace: &Namespace, key: &[u8]) -> Result<Option<Vec<u8>>, StateError>;
    /// The non-empty namespaces of the committed state this reads, sorted, with their tree roots: the pairs the
    /// state root commits to. For an [`Overlay`], those of its base: staged writes are not reflected.
    fn namespace_roots(&self) -> Result<Vec<(Namespace, Hash)>, StateError>;
}

impl<T: StateRead + ?Sized> StateRead for &T {
    fn get(&self, namespace: &Namespace, key: &[u8]) -> Result<Option<Vec<u8>>, StateError> {
        (**self).get(namespace, key)
    }
    fn namespace_roots(&self) -> Result<Vec<(Namespace, Hash)>, StateError> {
        (**self).namespace_roots()
    }
}

/// Read and write access: what execution modules see (an [`Overlay`] over the state of the previous height).
pub trait StateWrite: StateRead {
    /// Stage `value` under `(namespace, key)`.
    fn put(&mut self, namespace: &Namespace, key: &[u8], value: Vec<u8>) -> Result<(), StateError>;
    /// Stage the deletion of `(namespace, key)`.
    fn delete(&mut self, namespace: &Namespace, key: &[u8]) -> Result<(), StateError>;
}

/// The writes of one block: per namespace, per key, the new value or `None` for a deletion; and whole namespaces
/// dropped (every key deleted) before those writes apply.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WriteSet {
    changes: BTreeMap<Namespace, BTreeMap<Vec<u8>, Option<Vec<u8>>>>,
    dropped: BTreeSet<Namespace>,
}

/// What a key of a dropped namespace reads as.
const DROPPED: &Option<Vec<u8>> = &None;

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

    /// Delete every key of `namespace` (those written earlier in this set included); later writes apply on top.
    pub fn drop_namespace(&mut self, namespace: Namespace) {
        self.changes.remove(&namespace);
        self.dropped.insert(namespace);
    }

    /// The namespaces dropped whole, in order.
    pub fn dropped(&self) -> impl Iterator<Item = &Namespace> {
        self.dropped.iter()
    }

    /// The staged write for a key: `Some(None)` is a staged deletion (or a dropped namespace), `None` means
    /// untouched.
    pub fn staged(&self, namespace: &Namespace, key: &[u8]) -> Option<&Option<Vec<u8>>> {
        match self.changes.get(namespace).and_then(|m| m.get(key)) {
            Some(v) => Some(v),
            None if self.dropped.contains(namespace) => Some(DROPPED),
            None => None,
        }
    }

    /// Iterate namespaces with their changes, in order.
    pub fn namespaces(&self) -> impl Iterator<Item = (&Namespace, &BTreeMap<Vec<u8>, Option<Vec<u8>>>)> {
        self.changes.iter()
    }

    /// Number of staged key writes and dropped namespaces.
    pub fn len(&self) -> usize {
        self.changes.values().map(|m| m.len()).sum::<usize>() + self.dropped.len()
    }

    /// True when nothing is staged.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Apply `other` on top of `self`.
    pub fn merge(&mut self, other: WriteSet) {
        for ns in other.dropped {
            self.drop_namespace(ns);
        }
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

    /// Stage dropping a whole namespace in the current transaction.
    pub fn drop_namespace(&mut self, namespace: &Namespace) {
        self.pending.drop_namespace(namespace.clone());
    }

    /// The namespaces the current (uncommitted) transaction writes or drops.
    pub fn pending_namespaces(&self) -> impl Iterator<Item = &Namespace> {
        self.pending.namespaces().map(|(ns, _)| ns).chain(self.pending.dropped())
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
    fn namespace_roots(&self) -> Result<Vec<(Namespace, Hash)>, StateError> {
        self.base.namespace_roots()
    }
}

/// A plain in-memory state (no proofs; namespace roots recomputed on demand): the base for unit tests of execution.
#[derive(Clone, Debug, Default)]
pub struct MemState {
    data: BTreeMap<(Namespace, Vec<u8>), Vec<u8>>,
    alg: HashAlg,
}

impl MemState {
    /// Empty state (SHA-256 roots).
    pub fn new() -> Self {
        Self::default()
    }

    /// Empty state whose namespace roots use `alg`.
    pub fn with_hash(alg: HashAlg) -> Self {
        MemState { data: BTreeMap::new(), alg }
    }

    /// Apply a write set.
    pub fn apply(&mut self, writes: &WriteSet) {
        for ns in writes.dropped() {
            self.data.retain(|(n, _), _| n != ns);
        }
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
    fn namespace_roots(&self) -> Result<Vec<(Namespace, Hash)>, StateError> {
        type TreeWrites = Vec<(jmt::KeyHash, Option<Vec<u8>>)>;
        let mut grouped: BTreeMap<&Namespace, TreeWrites> = BTreeMap::new();
        for ((ns, key), value) in &self.data {
            grouped.entry(ns).or_default().push((proof::key_hash(self.alg, key), Some(value.clone())));
        }
        let mut out = Vec::with_capacity(grouped.len());
        for (ns, set) in grouped {
            let root = match self.alg {
                HashAlg::Sha256 => jmt::JellyfishMerkleTree::<_, sha2::Sha256>::new(&EmptyTree).put_value_set(set, 0),
                HashAlg::Sm3 => jmt::JellyfishMerkleTree::<_, sm3::Sm3>::new(&EmptyTree).put_value_set(set, 0),
            }
            .map_err(|e| StateError::Tree(e.to_string()))?
            .0;
            out.push((ns.clone(), Hash(root.0)));
        }
        Ok(out)
    }
}

/// A tree store with nothing in it: computing a fresh tree's root in memory reads nothing else.
struct EmptyTree;

impl jmt::storage::TreeReader for EmptyTree {
    fn get_node_option(&self, _: &jmt::storage::NodeKey) -> anyhow::Result<Option<jmt::storage::Node>> {
        Ok(None)
    }
    fn get_value_option(&self, _: jmt::Version, _: jmt::KeyHash) -> anyhow::Result<Option<jmt::OwnedValue>> {
        Ok(None)
    }
    fn get_rightmost_leaf(&self) -> anyhow::Result<Option<(jmt::storage::NodeKey, jmt::storage::LeafNode)>> {
        Ok(None)
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
