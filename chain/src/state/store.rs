//! RocksDB-backed store: one Jellyfish Merkle tree per namespace, the top-level root over namespace roots.
//!
//! **Owns**: the on-disk layout of state, atomic commits (one write batch, one fsync per height), proofs at any
//! retained height and pruning. **Must never**: leave a half-applied height visible after a crash, or answer a
//! read at a height it no longer retains.
//!
//! Layout (column families):
//! - `nodes`: `ns ‖ borsh(NodeKey)` → borsh(Node) of the namespace's tree;
//! - `values`: `ns ‖ key_hash ‖ version(BE)` → `0` (deleted) or `1 ‖ value`: every version, for reads at older heights;
//! - `latest_values`: `ns ‖ key_hash` → `version(BE) ‖ 0` or `version(BE) ‖ 1 ‖ value`: the newest version of each key,
//!   so reads at the latest height and the stale bookkeeping of a commit are point lookups, not iterator seeks;
//! - `preimages`: `ns ‖ key_hash` → the raw key (for snapshots and enumeration);
//! - `heights`: `height(BE)` → [`HeightMeta`];
//! - `stale`: `height(BE) ‖ cf tag ‖ key`: entries no height from `height` on needs, deleted by pruning;
//! - `default`: the latest committed height, the hash algorithm, the oldest retained height and the layout version;
//! - [`BlockData`] families (`blocks`, `commits`, `results`, `txs`, `validators`): the node's block store, written in the same
//!   batch as the state of the same height, so blocks and state never disagree after a crash.
//!
//! Each namespace tree has its own version counter, advanced only when the namespace is written; a height's
//! metadata records every namespace's (root, version) so any retained height can be read and proven.
//!
//! Speed (see BENCHMARKS.md, "State"): a block's puts go through `jmt`'s batch insertion, which builds and hashes
//! each touched tree node once per block instead of once per key (deletions, which `jmt` only applies key by key,
//! follow as the namespace's next version: a block writes one or two versions of a namespace); the internal
//! nodes near the roots of the latest trees are kept in memory ([`NodeCache`]), filled only from committed
//! batches, so a cache can never hold a node that is not on disk.

use std::collections::HashMap;
use std::path::Path;

use borsh::{BorshDeserialize, BorshSerialize};
use causeway_light_client::key_proof::KeyProof;
use causeway_light_client::proof::{self, StateProof};
use causeway_light_client::{CodecError, Hash, HashAlg, Namespace};
use jmt::storage::{LeafNode, Node, NodeKey, TreeReader, TreeUpdateBatch};
use jmt::{JellyfishMerkleTree, KeyHash, OwnedValue, RootHash, SimpleHasher, Version};
use rocksdb::{
    BlockBasedOptions, Cache, ColumnFamily, ColumnFamilyDescriptor, DBCompressionType, Direction, IteratorMode, Options,
    WriteBatch, WriteOptions, DB,
};

use super::{StateRead, WriteSet};

const CF_NODES: &str = "nodes";
const CF_VALUES: &str = "values";
const CF_LATEST: &str = "latest_values";
const CF_PREIMAGES: &str = "preimages";
const CF_HEIGHTS: &str = "heights";
const CF_STALE: &str = "stale";

/// Column families of the node's block store, written with the state of the same height ([`PreparedCommit::put`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlockData {
    /// height → encoded block.
    Blocks,
    /// height → the certificate that decided the block.
    Commits,
    /// height → the block's execution results.
    Results,
    /// transaction hash → height and index.
    Txs,
    /// height → the validator set that signs that height.
    Validators,
}

impl BlockData {
    fn cf_name(self) -> &'static str {
        match self {
            BlockData::Blocks => "blocks",
            BlockData::Commits => "commits",
            BlockData::Results => "results",
            BlockData::Txs => "txs",
            BlockData::Validators => "validators",
        }
    }

    const ALL: [BlockData; 5] =
        [BlockData::Blocks, BlockData::Commits, BlockData::Results, BlockData::Txs, BlockData::Validators];
}
const KEY_LATEST: &[u8] = b"latest";
const KEY_HASH_ALG: &[u8] = b"hash_alg";
const KEY_OLDEST: &[u8] = b"oldest";
const KEY_LAYOUT: &[u8] = b"layout";
/// Layout 2 added `latest_values`; a layout-1 store is upgraded on open.
const LAYOUT_VERSION: u8 = 2;
/// Internal nodes cached per tree: those at most this many nibbles below the root (at most 1+16+256+4096+65536).
const NODE_CACHE_MAX_DEPTH: usize = 4;
/// Internal nodes cached over all namespaces (≈ 1 KiB each in memory).
const NODE_CACHE_CAPACITY: usize = 200_000;
/// RocksDB block cache shared by all column families.
const BLOCK_CACHE_BYTES: usize = 256 << 20;
const STALE_NODE: u8 = 0;
const STALE_VALUE: u8 = 1;

/// Why a state operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// A key or value breaks the size limits.
    #[error("state limit: {0}")]
    Limit(CodecError),
    /// RocksDB failed.
    #[error("database: {0}")]
    Db(#[from] rocksdb::Error),
    /// The Merkle tree library failed (usually a missing node: a corrupt or pruned database).
    #[error("state tree: {0}")]
    Tree(String),
    /// Stored bytes do not decode.
    #[error("corrupt store: {0}")]
    Corrupt(String),
    /// The store was created with another hash function.
    #[error("store uses {stored:?} but {requested:?} was requested")]
    HashAlgMismatch {
        /// In the store.
        stored: HashAlg,
        /// Asked for.
        requested: HashAlg,
    },
    /// Commits must be consecutive.
    #[error("cannot commit height {got}: next height is {expected}")]
    NotNextHeight {
        /// The height that would be next.
        expected: u64,
        /// The height offered.
        got: u64,
    },
    /// The height was never committed.
    #[error("height {height} is not committed (latest: {latest:?})")]
    UnknownHeight {
        /// Asked for.
        height: u64,
        /// Latest committed.
        latest: Option<u64>,
    },
    /// The height was pruned.
    #[error("height {height} was pruned (oldest retained: {oldest})")]
    Pruned {
        /// Asked for.
        height: u64,
        /// Oldest still retained.
        oldest: u64,
    },
    /// A snapshot is malformed or does not match what it claims.
    #[error("snapshot: {0}")]
    Snapshot(String),
    /// File I/O failed.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
}

/// How a store is opened.
#[derive(Clone, Debug)]
pub struct StoreOptions {
    /// The chain's hash function (fixed at genesis; checked against the store).
    pub hash_alg: HashAlg,
    /// Keep this many most recent heights (at least 1); `None` keeps everything (archive).
    pub retention: Option<u64>,
    /// fsync each commit (one fsync per height). Off only for benchmarks and tests that say so.
    pub sync: bool,
}

impl StoreOptions {
    /// Archive node defaults: keep every height, fsync every commit.
    pub fn archive(hash_alg: HashAlg) -> Self {
        StoreOptions { hash_alg, retention: None, sync: true }
    }
}

/// One namespace's tree at a height.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct NamespaceEntry {
    /// The namespace.
    pub namespace: Namespace,
    /// Its tree's root.
    pub root: Hash,
    /// Its tree's version at this height.
    pub version: u64,
}

/// What a height committed: the state root and every namespace tree's position.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct HeightMeta {
    /// The height.
    pub height: u64,
    /// The state root (top-level Merkle root over non-empty namespaces).
    pub state_root: Hash,
    /// Every namespace ever written, sorted by name (empty ones included, so their versions continue).
    pub namespaces: Vec<NamespaceEntry>,
}

impl HeightMeta {
    /// The sorted (namespace, root) pairs the state root commits to: non-empty namespaces only.
    pub fn committed_namespaces(&self) -> Vec<(Namespace, Hash)> {
        let empty = proof::empty_namespace_root();
        self.namespaces.iter().filter(|e| e.root != empty).map(|e| (e.namespace.clone(), e.root)).collect()
    }

    fn entry(&self, namespace: &Namespace) -> Option<&NamespaceEntry> {
        self.namespaces.binary_search_by(|e| e.namespace.cmp(namespace)).ok().map(|i| &self.namespaces[i])
    }
}

pub(crate) fn ns_prefix(namespace: &Namespace) -> Vec<u8> {
    let s = namespace.as_str().as_bytes();
    let mut p = Vec::with_capacity(1 + s.len() + 40);
    // Namespaces are at most 64 bytes, so one length byte is enough and keeps prefixes prefix-free.
    p.push(s.len() as u8);
    p.extend_from_slice(s);
    p
}

pub(crate) fn node_db_key(prefix: &[u8], node_key: &NodeKey) -> Result<Vec<u8>, StateError> {
    let mut k = prefix.to_vec();
    node_key.serialize(&mut k).map_err(|e| StateError::Corrupt(format!("node key: {e}")))?;
    Ok(k)
}

pub(crate) fn value_db_key(prefix: &[u8], key_hash: &KeyHash, version: Version) -> Vec<u8> {
    let mut k = Vec::with_capacity(prefix.len() + 40);
    k.extend_from_slice(prefix);
    k.extend_from_slice(&key_hash.0);
    k.extend_from_slice(&version.to_be_bytes());
    k
}

pub(crate) fn encode_value(value: Option<&[u8]>) -> Vec<u8> {
    match value {
        None => vec![0],
        Some(v) => {
            let mut out = Vec::with_capacity(v.len() + 1);
            out.push(1);
            out.extend_from_slice(v);
            out
        }
    }
}

pub(crate) fn decode_value(raw: &[u8]) -> Result<Option<Vec<u8>>, StateError> {
    match raw.split_first() {
        Some((0, [])) => Ok(None),
        Some((1, v)) => Ok(Some(v.to_vec())),
        _ => Err(StateError::Corrupt("value entry has an unknown tag".into())),
    }
}

/// The `latest_values` key of a key hash (also the `preimages` key).
pub(crate) fn latest_db_key(prefix: &[u8], key_hash: &KeyHash) -> Vec<u8> {
    let mut k = Vec::with_capacity(prefix.len() + 32);
    k.extend_from_slice(prefix);
    k.extend_from_slice(&key_hash.0);
    k
}

fn encode_latest(version: Version, value: Option<&[u8]>) -> Vec<u8> {
    let mut out = version.to_be_bytes().to_vec();
    out.extend_from_slice(&encode_value(value));
    out
}

/// The version of a `latest_values` entry and its still-encoded value.
fn split_latest(raw: &[u8]) -> Result<(Version, &[u8]), StateError> {
    if raw.len() < 9 {
        return Err(StateError::Corrupt("latest value entry too short".into()));
    }
    let (version, value) = raw.split_at(8);
    Ok((u64_from(version, "latest value version")?, value))
}

/// Internal nodes near the roots of the latest namespace trees, by database key (see the module docs).
#[derive(Default)]
pub(crate) struct NodeCache {
    nodes: HashMap<Vec<u8>, Node>,
}

/// How a commit changes the [`NodeCache`] once it is on disk.
#[derive(Default)]
pub(crate) struct CacheDelta {
    added: Vec<(Vec<u8>, Node)>,
    removed: Vec<Vec<u8>>,
}

impl NodeCache {
    fn apply(&mut self, delta: CacheDelta) {
        for key in &delta.removed {
            self.nodes.remove(key);
        }
        for (key, node) in delta.added {
            if self.nodes.len() >= NODE_CACHE_CAPACITY {
                break;
            }
            self.nodes.insert(key, node);
        }
    }
}

fn cacheable(node_key: &NodeKey) -> bool {
    node_key.nibble_path().num_nibbles() <= NODE_CACHE_MAX_DEPTH
}

/// Apply one block's writes to one namespace tree from version `first` on; returns the root, the update and the
/// last version written (`first`, or `first + 1` for a set with both puts and deletions).
///
/// Puts go through `jmt`'s batch insertion, which hashes every touched node once per block; `jmt` only deletes key
/// by key (each deletion rehashes its whole path), so deletions are applied after the puts as the next version,
/// reading the puts' nodes from memory. The tree is the same as one key-by-key update of the whole set (a property
/// test checks it): its shape and hashes depend on the keys and values only, not on node versions. The nodes the
/// deletions replace were never on disk: they are dropped from the update instead of being written as stale.
pub(crate) fn update_tree<H: SimpleHasher>(
    reader: &NamespaceReader<'_>,
    set: Vec<(KeyHash, Option<Vec<u8>>)>,
    first: Version,
) -> Result<(RootHash, TreeUpdateBatch, Version), StateError> {
    let (puts, deletes): (Vec<_>, Vec<_>) = set.into_iter().partition(|(_, v)| v.is_some());
    let puts: Vec<(KeyHash, Vec<u8>)> = puts.into_iter().filter_map(|(k, v)| v.map(|v| (k, v))).collect();
    if puts.is_empty() {
        let (root, update) = JellyfishMerkleTree::<_, H>::new(reader).put_value_set(deletes, first).map_err(tree_err)?;
        return Ok((root, update, first));
    }
    let (roots, update) =
        JellyfishMerkleTree::<_, H>::new(reader).batch_put_value_sets(vec![puts], None, first).map_err(tree_err)?;
    let root = roots.first().copied().ok_or_else(|| StateError::Tree("batch update returned no root".into()))?;
    if deletes.is_empty() {
        return Ok((root, update, first));
    }
    let second = first + 1;
    let layered = Layered { base: reader, batch: &update };
    let (root, after) = JellyfishMerkleTree::<_, H>::new(&layered).put_value_set(deletes, second).map_err(tree_err)?;
    Ok((root, merge_updates(update, after, first), second))
}

/// The tree as a batch of `jmt` left it in memory, over what is on disk.
struct Layered<'a, 'r> {
    base: &'a NamespaceReader<'r>,
    batch: &'a TreeUpdateBatch,
}

impl TreeReader for Layered<'_, '_> {
    fn get_node_option(&self, node_key: &NodeKey) -> anyhow::Result<Option<Node>> {
        match self.batch.node_batch.get_node(node_key) {
            Some(node) => Ok(Some(node.clone())),
            None => self.base.get_node_option(node_key),
        }
    }

    fn get_value_option(&self, max_version: Version, key_hash: KeyHash) -> anyhow::Result<Option<OwnedValue>> {
        let mut in_batch = self.batch.node_batch.values().range(..=(max_version, key_hash)).rev();
        if let Some((_, value)) = in_batch.find(|((_, k), _)| *k == key_hash) {
            return Ok(value.clone());
        }
        self.base.get_value_option(max_version, key_hash)
    }

    fn get_rightmost_leaf(&self) -> anyhow::Result<Option<(NodeKey, LeafNode)>> {
        self.base.get_rightmost_leaf()
    }
}

/// One update out of two consecutive ones: every node either wrote, minus the nodes of the first (`first`'s
/// version) that the second made stale; stale entries for nodes that were on disk before. The second update's
/// parts are moved, not copied: node keys and value keys of the two never meet (they carry their version).
fn merge_updates(a: TreeUpdateBatch, mut b: TreeUpdateBatch, first: Version) -> TreeUpdateBatch {
    let replaced: std::collections::BTreeSet<NodeKey> = b
        .stale_node_index_batch
        .iter()
        .filter(|i| i.node_key.version() == first && a.node_batch.get_node(&i.node_key).is_some())
        .map(|i| i.node_key.clone())
        .collect();
    b.stale_node_index_batch.retain(|i| !replaced.contains(&i.node_key));
    b.stale_node_index_batch.extend(a.stale_node_index_batch);
    b.node_batch.extend(
        a.node_batch.nodes().iter().filter(|(k, _)| !replaced.contains(k)).map(|(k, n)| (k.clone(), n.clone())),
        a.node_batch.values().iter().map(|(k, v)| (*k, v.clone())),
    );
    let mut node_stats = a.node_stats;
    node_stats.extend(b.node_stats);
    TreeUpdateBatch { node_batch: b.node_batch, stale_node_index_batch: b.stale_node_index_batch, node_stats }
}

fn alg_tag(alg: HashAlg) -> u8 {
    match alg {
        HashAlg::Sha256 => 0,
        HashAlg::Sm3 => 1,
    }
}

fn alg_from_tag(tag: &[u8]) -> Result<HashAlg, StateError> {
    match tag {
        [0] => Ok(HashAlg::Sha256),
        [1] => Ok(HashAlg::Sm3),
        _ => Err(StateError::Corrupt("unknown hash algorithm tag".into())),
    }
}

fn u64_from(raw: &[u8], what: &str) -> Result<u64, StateError> {
    let bytes: [u8; 8] = raw.try_into().map_err(|_| StateError::Corrupt(format!("{what} is not 8 bytes")))?;
    Ok(u64::from_be_bytes(bytes))
}

fn tree_err(e: impl std::fmt::Display) -> StateError {
    StateError::Tree(e.to_string())
}

/// Reads one namespace's tree out of RocksDB (and the node cache, if given) for `jmt`.
pub(crate) struct NamespaceReader<'a> {
    db: &'a DB,
    prefix: Vec<u8>,
    cache: Option<&'a NodeCache>,
}

impl<'a> NamespaceReader<'a> {
    pub(crate) fn new(db: &'a DB, namespace: &Namespace) -> Self {
        NamespaceReader { db, prefix: ns_prefix(namespace), cache: None }
    }

    fn cached(db: &'a DB, namespace: &Namespace, cache: &'a NodeCache) -> Self {
        NamespaceReader { db, prefix: ns_prefix(namespace), cache: Some(cache) }
    }

    fn cf(&self, name: &str) -> anyhow::Result<&ColumnFamily> {
        self.db.cf_handle(name).ok_or_else(|| anyhow::anyhow!("column family {name} missing"))
    }
}

impl TreeReader for NamespaceReader<'_> {
    fn get_node_option(&self, node_key: &NodeKey) -> anyhow::Result<Option<Node>> {
        let key = node_db_key(&self.prefix, node_key)?;
        if let Some(node) = self.cache.and_then(|c| c.nodes.get(&key)) {
            return Ok(Some(node.clone()));
        }
        match self.db.get_pinned_cf(self.cf(CF_NODES)?, key)? {
            None => Ok(None),
            Some(raw) => Ok(Some(Node::try_from_slice(&raw)?)),
        }
    }

    fn get_value_option(&self, max_version: Version, key_hash: KeyHash) -> anyhow::Result<Option<OwnedValue>> {
        // The newest version first: one point lookup answers every read at or after it, and a key never written
        // has no older versions either.
        let Some(latest) = self.db.get_pinned_cf(self.cf(CF_LATEST)?, latest_db_key(&self.prefix, &key_hash))? else {
            return Ok(None);
        };
        let (version, value) = split_latest(&latest)?;
        if version <= max_version {
            return Ok(decode_value(value)?);
        }
        let seek = value_db_key(&self.prefix, &key_hash, max_version);
        let mut it = self.db.raw_iterator_cf(self.cf(CF_VALUES)?);
        it.seek_for_prev(&seek);
        it.status()?;
        match (it.key(), it.value()) {
            (Some(k), Some(v)) if k.len() == seek.len() && k[..seek.len() - 8] == seek[..seek.len() - 8] => {
                Ok(decode_value(v)?)
            }
            _ => Ok(None),
        }
    }

    fn get_rightmost_leaf(&self) -> anyhow::Result<Option<(NodeKey, LeafNode)>> {
        // Only jmt's restore and overwrite paths call this; this store restores snapshots by replaying values.
        anyhow::bail!("get_rightmost_leaf is not supported by the Causeway store")
    }
}

/// A commit computed by [`Store::prepare`], ready for [`Store::apply`].
pub struct PreparedCommit {
    base: Option<u64>,
    batch: WriteBatch,
    meta: HeightMeta,
    oldest: u64,
    cache_delta: CacheDelta,
}

impl std::fmt::Debug for PreparedCommit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreparedCommit").field("height", &self.meta.height).field("root", &self.meta.state_root).finish()
    }
}

impl PreparedCommit {
    /// The height it commits.
    pub fn height(&self) -> u64 {
        self.meta.height
    }

    /// The state root it produces.
    pub fn state_root(&self) -> Hash {
        self.meta.state_root
    }

    /// Add block-store data to be written in the same batch.
    pub fn put(&mut self, store: &Store, family: BlockData, key: &[u8], value: &[u8]) -> Result<(), StateError> {
        self.batch.put_cf(store.cf(family.cf_name())?, key, value);
        Ok(())
    }
}

/// The persistent, versioned, authenticated store.
pub struct Store {
    db: DB,
    options: StoreOptions,
    latest: Option<HeightMeta>,
    oldest: u64,
    cache: NodeCache,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("latest", &self.latest_height()).field("oldest", &self.oldest).finish()
    }
}

impl Store {
    /// Open (or create) a store at `path`.
    pub fn open(path: &Path, options: StoreOptions) -> Result<Store, StateError> {
        let mut db_opts = Options::default();
        db_opts.create_if_missing(true);
        db_opts.create_missing_column_families(true);
        db_opts.set_compression_type(rocksdb::DBCompressionType::Lz4);
        db_opts.set_max_background_jobs(2);
        // Reads are point lookups (nodes by exact key, newest values): a shared block cache and whole-key bloom
        // filters let a lookup skip the files that cannot hold the key.
        let block_cache = Cache::new_lru_cache(BLOCK_CACHE_BYTES);
        let mut table = BlockBasedOptions::default();
        table.set_block_cache(&block_cache);
        table.set_bloom_filter(10.0, false);
        let cfs = [CF_NODES, CF_VALUES, CF_LATEST, CF_PREIMAGES, CF_HEIGHTS, CF_STALE]
            .into_iter()
            .chain(BlockData::ALL.iter().map(|b| b.cf_name()))
            .map(|n| {
                let mut cf_opts = db_opts.clone();
                cf_opts.set_block_based_table_factory(&table);
                if n == CF_NODES {
                    // Tree nodes are mostly hashes: compressing them costs CPU and saves nothing.
                    cf_opts.set_compression_type(DBCompressionType::None);
                }
                ColumnFamilyDescriptor::new(n, cf_opts)
            });
        let db = DB::open_cf_descriptors(&db_opts, path, cfs)?;
        match db.get(KEY_HASH_ALG)? {
            Some(tag) => {
                let stored = alg_from_tag(&tag)?;
                if stored != options.hash_alg {
                    return Err(StateError::HashAlgMismatch { stored, requested: options.hash_alg });
                }
            }
            None => db.put(KEY_HASH_ALG, [alg_tag(options.hash_alg)])?,
        }
        let oldest = match db.get(KEY_OLDEST)? {
            Some(raw) => u64_from(&raw, "oldest height")?,
            None => 0,
        };
        let mut store = Store { db, options, latest: None, oldest, cache: NodeCache::default() };
        store.upgrade_layout()?;
        if let Some(raw) = store.db.get(KEY_LATEST)? {
            let height = u64_from(&raw, "latest height")?;
            store.latest = Some(store.load_meta(height)?);
        }
        Ok(store)
    }

    /// Bring a store written by an older build to [`LAYOUT_VERSION`]. Layout 1 lacked `latest_values`: it is
    /// rebuilt from `values` (in key order, so the newest version of each key is written last). Rebuilding is
    /// idempotent and the layout mark is written last, so a crash during the upgrade just repeats it.
    fn upgrade_layout(&self) -> Result<(), StateError> {
        match self.db.get(KEY_LAYOUT)?.as_deref() {
            Some([LAYOUT_VERSION]) => return Ok(()),
            Some(other) => return Err(StateError::Corrupt(format!("unknown store layout {other:?}"))),
            None => {}
        }
        let (values, latest) = (self.cf(CF_VALUES)?, self.cf(CF_LATEST)?);
        let mut batch = WriteBatch::default();
        for item in self.db.iterator_cf(values, IteratorMode::Start) {
            let (k, v) = item?;
            if k.len() < 1 + 32 + 8 {
                return Err(StateError::Corrupt("value key too short".into()));
            }
            let (ident, version) = k.split_at(k.len() - 8);
            let mut entry = version.to_vec();
            entry.extend_from_slice(&v);
            batch.put_cf(latest, ident, entry);
            if batch.len() >= 100_000 {
                self.db.write(std::mem::take(&mut batch))?;
            }
        }
        batch.put(KEY_LAYOUT, [LAYOUT_VERSION]);
        let mut wo = WriteOptions::default();
        wo.set_sync(true);
        self.db.write_opt(batch, &wo)?;
        Ok(())
    }

    /// The chain's hash function.
    pub fn hash_alg(&self) -> HashAlg {
        self.options.hash_alg
    }

    /// The latest committed height, if any.
    pub fn latest_height(&self) -> Option<u64> {
        self.latest.as_ref().map(|m| m.height)
    }

    /// The oldest height still readable and provable.
    pub fn oldest_retained(&self) -> u64 {
        self.oldest
    }

    /// The state root at the latest height (the empty-state root before the first commit).
    pub fn latest_root(&self) -> Hash {
        match &self.latest {
            Some(m) => m.state_root,
            None => proof::state_root(self.options.hash_alg, &[]),
        }
    }

    /// The state root committed at `height`.
    pub fn root_at(&self, height: u64) -> Result<Hash, StateError> {
        Ok(self.meta(height)?.state_root)
    }

    pub(crate) fn db(&self) -> &DB {
        &self.db
    }

    pub(crate) fn cf(&self, name: &str) -> Result<&ColumnFamily, StateError> {
        self.db.cf_handle(name).ok_or_else(|| StateError::Corrupt(format!("column family {name} missing")))
    }

    fn load_meta(&self, height: u64) -> Result<HeightMeta, StateError> {
        let raw = self
            .db
            .get_cf(self.cf(CF_HEIGHTS)?, height.to_be_bytes())?
            .ok_or(StateError::UnknownHeight { height, latest: self.latest_height() })?;
        HeightMeta::try_from_slice(&raw).map_err(|e| StateError::Corrupt(format!("height {height} metadata: {e}")))
    }

    /// Metadata of a committed, retained height.
    pub fn meta(&self, height: u64) -> Result<HeightMeta, StateError> {
        let latest = self.latest_height();
        match latest {
            Some(l) if height <= l => {}
            _ => return Err(StateError::UnknownHeight { height, latest }),
        }
        if height < self.oldest {
            return Err(StateError::Pruned { height, oldest: self.oldest });
        }
        match &self.latest {
            Some(m) if m.height == height => Ok(m.clone()),
            _ => self.load_meta(height),
        }
    }

    /// Block-store data written with [`PreparedCommit::put`].
    pub fn get_block_data(&self, family: BlockData, key: &[u8]) -> Result<Option<Vec<u8>>, StateError> {
        Ok(self.db.get_cf(self.cf(family.cf_name())?, key)?)
    }

    /// A read view of the state at a retained height.
    pub fn view(&self, height: u64) -> Result<StoreView<'_>, StateError> {
        let meta = self.meta(height)?;
        Ok(StoreView { store: self, meta })
    }

    /// A read view of the latest state (empty before the first commit).
    pub fn latest_view(&self) -> StoreView<'_> {
        let meta = self.latest.clone().unwrap_or(HeightMeta {
            height: 0,
            state_root: self.latest_root(),
            namespaces: vec![],
        });
        StoreView { store: self, meta }
    }

    /// The value under `(namespace, key)` at `height` and a proof of it (or of its absence) against that
    /// height's state root.
    pub fn prove(&self, height: u64, namespace: &Namespace, key: &[u8]) -> Result<(Option<Vec<u8>>, StateProof), StateError> {
        proof::check_sizes(key, None).map_err(StateError::Limit)?;
        let meta = self.meta(height)?;
        let alg = self.options.hash_alg;
        let listed = meta.committed_namespaces();
        let index = match listed.binary_search_by(|(ns, _)| ns.cmp(namespace)) {
            Ok(i) => i,
            Err(_) => {
                let p = proof::prove_namespace_absent(alg, &listed, namespace)
                    .ok_or_else(|| StateError::Corrupt("namespace both present and absent".into()))?;
                return Ok((None, p));
            }
        };
        let entry = meta.entry(namespace).ok_or_else(|| StateError::Corrupt("listed namespace without entry".into()))?;
        let reader = NamespaceReader::cached(&self.db, namespace, &self.cache);
        let kh = proof::key_hash(alg, key);
        let (value, key_proof) = match alg {
            HashAlg::Sha256 => prove_key::<sha2::Sha256>(alg, &reader, kh, entry.version)?,
            HashAlg::Sm3 => prove_key::<sm3::Sm3>(alg, &reader, kh, entry.version)?,
        };
        let siblings = proof::prove_top(alg, &listed, &[index]);
        let p = StateProof::InNamespace {
            ns_root: entry.root,
            index: index as u32,
            count: listed.len() as u32,
            siblings,
            key_proof,
        };
        Ok((value, p))
    }

    /// Apply one height's writes atomically and return the new state root. `height` must be the next height
    /// (any height for the first commit of an empty store: genesis or a snapshot base).
    pub fn commit(&mut self, height: u64, writes: &WriteSet) -> Result<Hash, StateError> {
        let prepared = self.prepare(height, writes)?;
        self.apply(prepared)
    }

    /// Compute everything a commit of `writes` at `height` would write, and the state root it would produce,
    /// without writing: a proposer and every validator know the root before the block is decided, and the decided
    /// block is then written with [`Store::apply`] without recomputing anything.
    pub fn prepare(&self, height: u64, writes: &WriteSet) -> Result<PreparedCommit, StateError> {
        if let Some(latest) = self.latest_height() {
            let expected = latest.checked_add(1).ok_or(StateError::NotNextHeight { expected: latest, got: height })?;
            if height != expected {
                return Err(StateError::NotNextHeight { expected, got: height });
            }
        }
        let alg = self.options.hash_alg;
        let mut batch = WriteBatch::default();
        let mut cache_delta = CacheDelta::default();
        let mut namespaces = self.latest.as_ref().map(|m| m.namespaces.clone()).unwrap_or_default();
        let with_drops = self.expand_drops(writes, &namespaces)?;
        let writes = with_drops.as_ref().unwrap_or(writes);
        for (namespace, changes) in writes.namespaces() {
            let position = namespaces.binary_search_by(|e| e.namespace.cmp(namespace));
            let version = match position {
                Ok(i) => namespaces[i].version + 1,
                Err(_) => 0,
            };
            let prefix = ns_prefix(namespace);
            let preimages = self.cf(CF_PREIMAGES)?;
            let mut set = Vec::with_capacity(changes.len());
            for (key, value) in changes {
                let kh = proof::key_hash(alg, key);
                if value.is_some() {
                    batch.put_cf(preimages, latest_db_key(&prefix, &kh), key);
                }
                set.push((kh, value.clone()));
            }
            let reader = NamespaceReader::cached(&self.db, namespace, &self.cache);
            let (root, update, version) = match alg {
                HashAlg::Sha256 => update_tree::<sha2::Sha256>(&reader, set, version)?,
                HashAlg::Sm3 => update_tree::<sm3::Sm3>(&reader, set, version)?,
            };
            let stale_at = self.options.retention.map(|_| height);
            self.stage_tree_update(&mut batch, &prefix, &update, stale_at, &mut cache_delta)?;
            let entry = NamespaceEntry { namespace: namespace.clone(), root: Hash(root.0), version };
            match position {
                Ok(i) => namespaces[i] = entry,
                Err(i) => namespaces.insert(i, entry),
            }
        }
        let mut meta = HeightMeta { height, state_root: Hash([0; 32]), namespaces };
        meta.state_root = proof::state_root(alg, &meta.committed_namespaces());
        let raw = borsh::to_vec(&meta).map_err(|e| StateError::Corrupt(format!("metadata: {e}")))?;
        batch.put_cf(self.cf(CF_HEIGHTS)?, height.to_be_bytes(), raw);
        batch.put(KEY_LATEST, height.to_be_bytes());
        let oldest = self.prune_into(&mut batch, height)?;
        Ok(PreparedCommit { base: self.latest_height(), batch, meta, oldest, cache_delta })
    }

    /// A write set whose dropped namespaces are spelled out as deletions of every key they hold at the latest
    /// height (later writes to them kept on top); `None` when nothing is dropped. Costs one read per key of a
    /// dropped namespace: dropping happens once per split or merge, not per block.
    fn expand_drops(&self, writes: &WriteSet, namespaces: &[NamespaceEntry]) -> Result<Option<WriteSet>, StateError> {
        if writes.dropped().next().is_none() {
            return Ok(None);
        }
        let mut expanded = WriteSet::new();
        for namespace in writes.dropped() {
            let Ok(i) = namespaces.binary_search_by(|e| e.namespace.cmp(namespace)) else { continue };
            let version = namespaces[i].version;
            let prefix = ns_prefix(namespace);
            let reader = NamespaceReader::new(&self.db, namespace);
            for item in self.db.iterator_cf(self.cf(CF_PREIMAGES)?, IteratorMode::From(&prefix, Direction::Forward)) {
                let (k, key) = item?;
                if !k.starts_with(&prefix) {
                    break;
                }
                let kh: [u8; 32] = k[prefix.len()..]
                    .try_into()
                    .map_err(|_| StateError::Corrupt("preimage key of unexpected length".into()))?;
                if reader.get_value_option(version, KeyHash(kh)).map_err(tree_err)?.is_some() {
                    expanded.put(namespace.clone(), key.to_vec(), None)?;
                }
            }
        }
        for (namespace, changes) in writes.namespaces() {
            for (key, value) in changes {
                expanded.put(namespace.clone(), key.clone(), value.clone())?;
            }
        }
        Ok(Some(expanded))
    }

    /// Write a prepared commit in one batch with one fsync. Refused if another height was committed since it
    /// was prepared.
    pub fn apply(&mut self, prepared: PreparedCommit) -> Result<Hash, StateError> {
        if prepared.base != self.latest_height() {
            let expected = self.latest_height().map_or(0, |h| h.saturating_add(1));
            return Err(StateError::NotNextHeight { expected, got: prepared.meta.height });
        }
        let mut wo = WriteOptions::default();
        wo.set_sync(self.options.sync);
        self.db.write_opt(prepared.batch, &wo)?;
        self.cache.apply(prepared.cache_delta);
        let root = prepared.meta.state_root;
        self.latest = Some(prepared.meta);
        self.oldest = prepared.oldest;
        Ok(root)
    }

    /// Stage one namespace's tree update in `batch`: its new nodes, its values (every version and the newest) and,
    /// with `stale_at` (pruning on), what it makes stale at that height. `delta` collects the node-cache changes to
    /// make once the batch is on disk.
    pub(crate) fn stage_tree_update(
        &self,
        batch: &mut WriteBatch,
        prefix: &[u8],
        update: &TreeUpdateBatch,
        stale_at: Option<u64>,
        delta: &mut CacheDelta,
    ) -> Result<(), StateError> {
        let (nodes, values, latest, stale) =
            (self.cf(CF_NODES)?, self.cf(CF_VALUES)?, self.cf(CF_LATEST)?, self.cf(CF_STALE)?);
        for (node_key, node) in update.node_batch.nodes() {
            let raw = borsh::to_vec(node).map_err(|e| StateError::Corrupt(format!("node: {e}")))?;
            let key = node_db_key(prefix, node_key)?;
            if matches!(node, Node::Internal(_)) && cacheable(node_key) {
                delta.added.push((key.clone(), node.clone()));
            }
            batch.put_cf(nodes, key, raw);
        }
        for ((version, kh), value) in update.node_batch.values() {
            let latest_key = latest_db_key(prefix, kh);
            if let Some(height) = stale_at {
                if let Some(previous) = self.db.get_pinned_cf(latest, &latest_key)? {
                    let (previous, _) = split_latest(&previous)?;
                    batch.put_cf(stale, stale_key(height, STALE_VALUE, &value_db_key(prefix, kh, previous)), []);
                }
            }
            batch.put_cf(values, value_db_key(prefix, kh, *version), encode_value(value.as_deref()));
            batch.put_cf(latest, latest_key, encode_latest(*version, value.as_deref()));
        }
        for index in &update.stale_node_index_batch {
            let key = node_db_key(prefix, &index.node_key)?;
            if let Some(height) = stale_at {
                batch.put_cf(stale, stale_key(height, STALE_NODE, &key), []);
            }
            if cacheable(&index.node_key) {
                delta.removed.push(key);
            }
        }
        Ok(())
    }

    /// With a retention window of `r`, committing `height` keeps heights `height-r+1..=height`: everything that
    /// became stale at or before the new oldest height is no longer needed by any retained height.
    fn prune_into(&self, batch: &mut WriteBatch, height: u64) -> Result<u64, StateError> {
        let Some(retention) = self.options.retention else { return Ok(self.oldest) };
        let new_oldest = height.saturating_sub(retention.max(1) - 1).max(self.oldest);
        if new_oldest == self.oldest {
            return Ok(self.oldest);
        }
        let stale = self.cf(CF_STALE)?;
        let end = new_oldest.saturating_add(1).to_be_bytes();
        // Everything stale at or before the current oldest height was deleted by earlier prunes: start after it.
        // Starting at the beginning would walk over all those deletions' tombstones on every commit (until
        // compaction drops them), a cost that grows with the chain.
        let start = if self.oldest == 0 { 0 } else { self.oldest.saturating_add(1) }.to_be_bytes();
        for item in self.db.iterator_cf(stale, IteratorMode::From(&start, Direction::Forward)) {
            let (k, _) = item?;
            if k.len() < 9 || k[..8] >= end[..] {
                break;
            }
            let target = if k[8] == STALE_NODE { CF_NODES } else { CF_VALUES };
            batch.delete_cf(self.cf(target)?, &k[9..]);
            batch.delete_cf(stale, &k);
        }
        for h in self.oldest..new_oldest {
            batch.delete_cf(self.cf(CF_HEIGHTS)?, h.to_be_bytes());
        }
        batch.put(KEY_OLDEST, new_oldest.to_be_bytes());
        Ok(new_oldest)
    }

    /// Adopt a fully written snapshot as the state at `meta.height` (used by import), with block-store entries
    /// written in the same batch.
    pub(crate) fn adopt(&mut self, meta: HeightMeta, block_data: &[(BlockData, Vec<u8>, Vec<u8>)]) -> Result<(), StateError> {
        let raw = borsh::to_vec(&meta).map_err(|e| StateError::Corrupt(format!("metadata: {e}")))?;
        let mut batch = WriteBatch::default();
        for (family, key, value) in block_data {
            batch.put_cf(self.cf(family.cf_name())?, key, value);
        }
        batch.put_cf(self.cf(CF_HEIGHTS)?, meta.height.to_be_bytes(), raw);
        batch.put(KEY_LATEST, meta.height.to_be_bytes());
        batch.put(KEY_OLDEST, meta.height.to_be_bytes());
        let mut wo = WriteOptions::default();
        wo.set_sync(true);
        self.db.write_opt(batch, &wo)?;
        self.oldest = meta.height;
        self.latest = Some(meta);
        Ok(())
    }
}

/// `stale`-family key: the height from which `key` (in the family `tag` names) is no longer needed.
fn stale_key(height: u64, tag: u8, key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(9 + key.len());
    k.extend_from_slice(&height.to_be_bytes());
    k.push(tag);
    k.extend_from_slice(key);
    k
}

/// The value under `kh` at `version` and its proof in the compact format of [`causeway_light_client::key_proof`].
fn prove_key<H: SimpleHasher>(
    alg: HashAlg,
    reader: &NamespaceReader<'_>,
    kh: KeyHash,
    version: u64,
) -> Result<(Option<Vec<u8>>, Vec<u8>), StateError> {
    let (value, smp) = JellyfishMerkleTree::<_, H>::new(reader).get_with_proof(kh, version).map_err(tree_err)?;
    let bytes = borsh::to_vec(&smp).map_err(|e| StateError::Corrupt(format!("proof: {e}")))?;
    let compact = KeyProof::from_jmt_borsh(alg, &bytes)
        .and_then(|p| p.encode())
        .map_err(|e| StateError::Corrupt(format!("proof: {e}")))?;
    Ok((value, compact))
}

/// The state at one height, readable by execution.
pub struct StoreView<'a> {
    store: &'a Store,
    meta: HeightMeta,
}

impl StoreView<'_> {
    /// The height this view reads.
    pub fn height(&self) -> u64 {
        self.meta.height
    }

    /// The state root at this height.
    pub fn state_root(&self) -> Hash {
        self.meta.state_root
    }
}

impl StateRead for StoreView<'_> {
    fn get(&self, namespace: &Namespace, key: &[u8]) -> Result<Option<Vec<u8>>, StateError> {
        let Some(entry) = self.meta.entry(namespace) else { return Ok(None) };
        let reader = NamespaceReader::cached(&self.store.db, namespace, &self.store.cache);
        reader.get_value_option(entry.version, proof::key_hash(self.store.options.hash_alg, key)).map_err(tree_err)
    }
    fn namespace_roots(&self) -> Result<Vec<(Namespace, Hash)>, StateError> {
        Ok(self.meta.committed_namespaces())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use causeway_light_client::proof::verify;
    use proptest::prelude::*;

    use super::*;

    fn ns(s: &str) -> Namespace {
        Namespace::new(s).expect("valid namespace")
    }

    fn opts(alg: HashAlg, retention: Option<u64>) -> StoreOptions {
        StoreOptions { hash_alg: alg, retention, sync: false }
    }

    type Model = BTreeMap<(String, Vec<u8>), Vec<u8>>;

    fn write_set(changes: &[(u8, u8, Option<u8>)]) -> WriteSet {
        let mut ws = WriteSet::new();
        for (n, k, v) in changes {
            let value = v.map(|v| vec![v; 1 + (v as usize % 7)]);
            ws.put(ns(&format!("ns{}", n % 3)), vec![*k], value).expect("small write");
        }
        ws
    }

    fn apply(model: &mut Model, ws: &WriteSet) {
        for (n, changes) in ws.namespaces() {
            for (k, v) in changes {
                match v {
                    Some(v) => model.insert((n.to_string(), k.clone()), v.clone()),
                    None => model.remove(&(n.to_string(), k.clone())),
                };
            }
        }
    }

    fn check_all_proofs(store: &Store, heights: &[(u64, Model)]) {
        let alg = store.hash_alg();
        for (h, model) in heights {
            let root = store.root_at(*h).expect("retained");
            for n in 0..4u8 {
                let namespace = ns(&format!("ns{n}"));
                for k in 0..16u8 {
                    let expected = model.get(&(namespace.to_string(), vec![k]));
                    let (value, p) = store.prove(*h, &namespace, &[k]).expect("prove");
                    assert_eq!(value.as_ref(), expected, "value at height {h} ns{n} key {k}");
                    verify(alg, &root, &namespace, &[k], value.as_deref(), &p).expect("proof verifies");
                    // A tampered value (or a claimed value where there is none) must fail.
                    let mut forged = value.clone().unwrap_or_default();
                    forged.push(0xff);
                    assert!(verify(alg, &root, &namespace, &[k], Some(&forged), &p).is_err());
                    if value.is_some() {
                        assert!(verify(alg, &root, &namespace, &[k], None, &p).is_err());
                    }
                    // Against any other root the proof fails.
                    for (other, _) in heights {
                        let other_root = store.root_at(*other).expect("retained");
                        if other_root != root {
                            assert!(verify(alg, &other_root, &namespace, &[k], value.as_deref(), &p).is_err());
                        }
                    }
                }
            }
            // Reads at every retained height: the newest-value lookup, or the versioned history behind it.
            let view = store.view(*h).expect("view");
            for n in 0..4u8 {
                for k in 0..16u8 {
                    let namespace = format!("ns{n}");
                    let got = view.get(&ns(&namespace), &[k]).expect("read");
                    assert_eq!(got.as_ref(), model.get(&(namespace, vec![k])), "read at height {h} ns{n} key {k}");
                }
            }
        }
    }

    /// A block of puts only (random keys over a small space, so updates and new keys mix).
    fn put_block(keys: &[(u8, u16)], salt: u8) -> WriteSet {
        let mut ws = WriteSet::new();
        for (n, k) in keys {
            ws.put(ns(&format!("ns{}", n % 2)), k.to_be_bytes().to_vec(), Some(vec![salt, *n, (*k % 251) as u8]))
                .expect("small write");
        }
        ws
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(12))]
        #[test]
        fn proofs_hold_for_random_updates_across_versions(
            blocks in prop::collection::vec(prop::collection::vec((0u8..3, 0u8..16, prop::option::of(any::<u8>())), 1..20), 1..5),
            sm3 in any::<bool>(),
        ) {
            let dir = tempfile::tempdir().expect("tempdir");
            let alg = if sm3 { HashAlg::Sm3 } else { HashAlg::Sha256 };
            let mut store = Store::open(dir.path(), opts(alg, None)).expect("open");
            let mut model = Model::new();
            let mut heights = Vec::new();
            for (i, changes) in blocks.iter().enumerate() {
                let ws = write_set(changes);
                let root = store.commit(i as u64 + 1, &ws).expect("commit");
                apply(&mut model, &ws);
                prop_assert_eq!(root, store.root_at(i as u64 + 1).expect("root"));
                heights.push((i as u64 + 1, model.clone()));
            }
            check_all_proofs(&store, &heights);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(16))]
        /// jmt's batch insertion (used for put-only sets) builds the same tree as key-by-key insertion.
        #[test]
        fn batch_insertion_matches_key_by_key_insertion(
            blocks in prop::collection::vec(prop::collection::vec((0u8..2, 0u16..600), 1..120), 1..5),
        ) {
            let dir = tempfile::tempdir().expect("tempdir");
            let mut store = Store::open(dir.path(), opts(HashAlg::Sha256, Some(2))).expect("open");
            for (i, keys) in blocks.iter().enumerate() {
                let ws = put_block(keys, i as u8);
                let prepared = store.prepare(i as u64 + 1, &ws).expect("prepare");
                let meta = prepared.meta.clone();
                for (namespace, changes) in ws.namespaces() {
                    let version = meta.entry(namespace).expect("written namespace").version;
                    let set: Vec<_> = changes.iter().map(|(k, v)| (proof::key_hash(HashAlg::Sha256, k), v.clone())).collect();
                    let reader = NamespaceReader::new(&store.db, namespace);
                    let (root, _) = JellyfishMerkleTree::<_, sha2::Sha256>::new(&reader).put_value_set(set, version).expect("key by key");
                    prop_assert_eq!(Hash(root.0), meta.entry(namespace).expect("entry").root);
                }
                store.apply(prepared).expect("apply");
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(16))]
        /// A block with puts and deletions (puts in one batch, then the deletions as the next version, see
        /// `update_tree`) builds the tree one key-by-key update of the whole set builds, and stays readable and
        /// provable after pruning.
        #[test]
        fn puts_then_deletions_match_one_key_by_key_update(
            blocks in prop::collection::vec(
                prop::collection::vec((0u8..16, prop::option::of(any::<u8>())), 1..24),
                1..6,
            ),
        ) {
            let dir = tempfile::tempdir().expect("tempdir");
            let mut store = Store::open(dir.path(), opts(HashAlg::Sha256, Some(2))).expect("open");
            let namespace = ns("ns0");
            let mut model = Model::new();
            let mut heights = Vec::new();
            for (i, changes) in blocks.iter().enumerate() {
                let mut ws = WriteSet::new();
                for (k, v) in changes {
                    ws.put(namespace.clone(), vec![*k], v.map(|b| vec![b; 3])).expect("put");
                }
                let first = store.latest.as_ref().and_then(|m| m.entry(&namespace)).map_or(0, |e| e.version + 1);
                let set: Vec<_> = ws
                    .namespaces()
                    .flat_map(|(_, c)| c.iter())
                    .map(|(k, v)| (proof::key_hash(HashAlg::Sha256, k), v.clone()))
                    .collect();
                let reader = NamespaceReader::new(&store.db, &namespace);
                let (expected, _) =
                    JellyfishMerkleTree::<_, sha2::Sha256>::new(&reader).put_value_set(set, first).expect("key by key");
                let prepared = store.prepare(i as u64 + 1, &ws).expect("prepare");
                let entry = prepared.meta.entry(&namespace).expect("written namespace");
                prop_assert_eq!(entry.root, Hash(expected.0));
                store.apply(prepared).expect("apply");
                apply(&mut model, &ws);
                heights.push((i as u64 + 1, model.clone()));
            }
            let kept: Vec<_> = heights.into_iter().filter(|(h, _)| *h >= store.oldest_retained()).collect();
            check_all_proofs(&store, &kept);
        }
    }

    #[test]
    fn node_cache_never_changes_results() {
        // Store `a` runs straight through (its cache warm) while discarding extra prepared commits; store `b` is
        // reopened (cache cold) every other height. Both must produce the same roots and proofs.
        let (dir_a, dir_b) = (tempfile::tempdir().expect("tempdir"), tempfile::tempdir().expect("tempdir"));
        let mut a = Store::open(dir_a.path(), opts(HashAlg::Sha256, Some(3))).expect("open");
        let mut b = Some(Store::open(dir_b.path(), opts(HashAlg::Sha256, Some(3))).expect("open"));
        for h in 1..=12u64 {
            let keys: Vec<(u8, u16)> = (0..200u16).map(|i| ((i % 2) as u8, (i * 37 + h as u16 * 11) % 700)).collect();
            let mut ws = put_block(&keys, h as u8);
            if h % 4 == 0 {
                // Deletions take jmt's key-by-key path.
                ws.put(ns("ns0"), 74u16.to_be_bytes().to_vec(), None).expect("delete");
            }
            let decoy = a.prepare(h, &put_block(&[(0, 1), (1, 999)], 0xee)).expect("decoy");
            let root_a = a.commit(h, &ws).expect("commit a");
            assert!(matches!(a.apply(decoy), Err(StateError::NotNextHeight { .. })));
            let store_b = b.as_mut().expect("open");
            assert_eq!(store_b.commit(h, &ws).expect("commit b"), root_a, "height {h}");
            if h % 2 == 0 {
                drop(b.take());
                b = Some(Store::open(dir_b.path(), opts(HashAlg::Sha256, Some(3))).expect("reopen"));
            }
        }
        assert!(!a.cache.nodes.is_empty(), "the warm store cached nodes");
        let b = b.expect("open");
        for k in (0..700u16).step_by(13) {
            let (va, pa) = a.prove(12, &ns("ns1"), &k.to_be_bytes()).expect("prove");
            let (vb, pb) = b.prove(12, &ns("ns1"), &k.to_be_bytes()).expect("prove");
            assert_eq!((va, pa), (vb, pb));
        }
    }

    #[test]
    fn a_layout_one_store_is_upgraded_on_open() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut model = Model::new();
        let mut heights = Vec::new();
        {
            let mut store = Store::open(dir.path(), opts(HashAlg::Sha256, None)).expect("open");
            for h in 1..=4u64 {
                let ws = write_set(&[(0, 1, Some(h as u8)), (1, h as u8, Some(3)), (0, 2, if h == 3 { None } else { Some(9) })]);
                store.commit(h, &ws).expect("commit");
                apply(&mut model, &ws);
                heights.push((h, model.clone()));
            }
            // Make it look like a store written before `latest_values` existed.
            let latest = store.cf(CF_LATEST).expect("cf");
            let keys: Vec<Box<[u8]>> = store.db.iterator_cf(latest, IteratorMode::Start).map(|i| i.expect("entry").0).collect();
            assert!(!keys.is_empty());
            for k in keys {
                store.db.delete_cf(latest, k).expect("delete");
            }
            store.db.delete(KEY_LAYOUT).expect("delete");
        }
        let mut store = Store::open(dir.path(), opts(HashAlg::Sha256, None)).expect("reopen upgrades");
        check_all_proofs(&store, &heights);
        let ws = write_set(&[(0, 1, Some(42))]);
        store.commit(5, &ws).expect("commit after upgrade");
        apply(&mut model, &ws);
        heights.push((5, model.clone()));
        check_all_proofs(&store, &heights);
        drop(store);
        let dir2 = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir2.path(), opts(HashAlg::Sha256, None)).expect("open");
        store.db.put(KEY_LAYOUT, [9]).expect("put");
        drop(store);
        assert!(matches!(Store::open(dir2.path(), opts(HashAlg::Sha256, None)), Err(StateError::Corrupt(_))));
    }

    #[test]
    fn reopen_restores_latest_height_and_root() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = {
            let mut store = Store::open(dir.path(), opts(HashAlg::Sha256, None)).expect("open");
            store.commit(1, &write_set(&[(0, 1, Some(1)), (1, 2, Some(2))])).expect("commit");
            store.commit(2, &write_set(&[(0, 1, None)])).expect("commit")
        };
        let store = Store::open(dir.path(), opts(HashAlg::Sha256, None)).expect("reopen");
        assert_eq!(store.latest_height(), Some(2));
        assert_eq!(store.latest_root(), root);
        // While open, RocksDB's lock refuses a second opener; once closed, the hash function is checked.
        assert!(matches!(Store::open(dir.path(), opts(HashAlg::Sha256, None)), Err(StateError::Db(_))));
        drop(store);
        assert!(matches!(Store::open(dir.path(), opts(HashAlg::Sm3, None)), Err(StateError::HashAlgMismatch { .. })));
    }

    #[test]
    fn commits_must_be_consecutive_and_reads_bounded() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut store = Store::open(dir.path(), opts(HashAlg::Sha256, None)).expect("open");
        store.commit(5, &write_set(&[(0, 1, Some(1))])).expect("first commit at any height");
        assert!(matches!(store.commit(7, &WriteSet::new()), Err(StateError::NotNextHeight { expected: 6, got: 7 })));
        assert!(matches!(store.root_at(6), Err(StateError::UnknownHeight { .. })));
        assert!(matches!(store.prove(9, &ns("ns0"), b"k"), Err(StateError::UnknownHeight { .. })));
        assert!(matches!(store.prove(5, &ns("ns0"), b""), Err(StateError::Limit(_))));
        let empty_root = store.commit(6, &WriteSet::new()).expect("empty block");
        assert_eq!(empty_root, store.root_at(5).expect("root"));
    }

    #[test]
    fn prepared_commits_apply_once_and_only_on_their_base() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut store = Store::open(dir.path(), opts(HashAlg::Sha256, Some(2))).expect("open");
        store.commit(1, &write_set(&[(0, 1, Some(1))])).expect("commit");
        let a = store.prepare(2, &write_set(&[(0, 2, Some(2))])).expect("prepare a");
        let b = store.prepare(2, &write_set(&[(0, 3, Some(3))])).expect("prepare b");
        assert_ne!(a.state_root(), b.state_root());
        assert_eq!(store.latest_height(), Some(1), "preparing writes nothing");
        let root = a.state_root();
        assert_eq!(store.apply(a).expect("apply a"), root);
        assert!(matches!(store.apply(b), Err(StateError::NotNextHeight { .. })), "b was prepared on height 1");
        assert_eq!(store.latest_root(), root);
        let (v, _) = store.prove(2, &ns("ns0"), &[3]).expect("prove");
        assert!(v.is_none(), "nothing of b was written");
    }

    #[test]
    fn emptied_namespace_leaves_the_top_level_tree() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut store = Store::open(dir.path(), opts(HashAlg::Sha256, None)).expect("open");
        let before = store.commit(1, &write_set(&[(0, 1, Some(1))])).expect("commit");
        let with_ns1 = store.commit(2, &write_set(&[(1, 1, Some(1))])).expect("commit");
        assert_ne!(before, with_ns1);
        let after = store.commit(3, &write_set(&[(1, 1, None)])).expect("commit");
        assert_eq!(before, after, "deleting every key of a namespace restores the previous root");
        let (v, p) = store.prove(3, &ns("ns1"), &[1]).expect("prove");
        assert!(v.is_none());
        assert!(matches!(p, StateProof::NoNamespace { .. }));
        store.commit(4, &write_set(&[(1, 2, Some(3))])).expect("namespace comes back");
        check_all_proofs(&store, &[(4, [(("ns0".to_string(), vec![1]), vec![1; 2]), (("ns1".to_string(), vec![2]), vec![3; 4])].into())]);
    }

    #[test]
    fn dropped_namespace_leaves_state_and_memory_roots_agree() {
        for alg in [HashAlg::Sha256, HashAlg::Sm3] {
            let dir = tempfile::tempdir().expect("tempdir");
            let mut store = Store::open(dir.path(), opts(alg, Some(2))).expect("open");
            let mut mem = crate::state::MemState::with_hash(alg);
            let mut first = WriteSet::new();
            for i in 0..200u8 {
                first.put(ns(if i % 2 == 0 { "keep" } else { "moves" }), vec![i], Some(vec![i; 3])).expect("put");
            }
            store.commit(1, &first).expect("commit");
            mem.apply(&first);
            assert_eq!(store.latest_view().namespace_roots().expect("roots"), mem.namespace_roots().expect("roots"));
            // A later height deletes some keys of the namespace before it is dropped: they must stay gone.
            let mut second = WriteSet::new();
            second.put(ns("moves"), vec![1], None).expect("put");
            second.put(ns("moves"), vec![3], Some(vec![9])).expect("put");
            store.commit(2, &second).expect("commit");
            mem.apply(&second);
            let mut drop = WriteSet::new();
            drop.put(ns("moves"), vec![5], Some(vec![1])).expect("put");
            drop.drop_namespace(ns("moves"));
            let root = store.commit(3, &drop).expect("commit");
            mem.apply(&drop);
            let keep_root = store.latest_view().namespace_roots().expect("roots");
            assert_eq!(keep_root.len(), 1, "only `keep` is left");
            assert_eq!(root, proof::state_root(alg, &keep_root));
            assert_eq!(keep_root, mem.namespace_roots().expect("roots"));
            assert_eq!(store.latest_view().get(&ns("moves"), &[3]).expect("get"), None);
            let (_, p) = store.prove(3, &ns("moves"), &[3]).expect("prove");
            assert!(matches!(p, StateProof::NoNamespace { .. }));
            // The namespace can be written again from scratch: nothing of its old keys comes back.
            store.commit(4, &write_set(&[])).expect("commit");
            let mut again = WriteSet::new();
            again.put(ns("moves"), vec![7], Some(vec![7])).expect("put");
            store.commit(5, &again).expect("commit");
            mem.apply(&again);
            assert_eq!(store.latest_view().namespace_roots().expect("roots"), mem.namespace_roots().expect("roots"));
            assert_eq!(store.latest_view().get(&ns("moves"), &[3]).expect("get"), None);
        }
    }

    #[test]
    fn pruning_keeps_the_window_and_frees_old_heights() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut store = Store::open(dir.path(), opts(HashAlg::Sha256, Some(3))).expect("open");
        let mut model = Model::new();
        let mut heights = Vec::new();
        for h in 1..=10u64 {
            // Overwrite the same keys every height so old versions become stale.
            let ws = write_set(&[(0, 1, Some(h as u8)), (0, 2, Some(h as u8 + 1)), (1, (h % 4) as u8, if h % 3 == 0 { None } else { Some(7) })]);
            store.commit(h, &ws).expect("commit");
            apply(&mut model, &ws);
            heights.push((h, model.clone()));
        }
        assert_eq!(store.oldest_retained(), 8);
        assert!(matches!(store.prove(7, &ns("ns0"), &[1]), Err(StateError::Pruned { height: 7, oldest: 8 })));
        check_all_proofs(&store, &heights[7..]);
        let nodes = store.cf(CF_NODES).expect("cf");
        let node_count = store.db.iterator_cf(nodes, IteratorMode::Start).count();
        drop(store);
        // The same history without pruning keeps strictly more tree nodes.
        let dir2 = tempfile::tempdir().expect("tempdir");
        let mut archive = Store::open(dir2.path(), opts(HashAlg::Sha256, None)).expect("open");
        for h in 1..=10u64 {
            let ws = write_set(&[(0, 1, Some(h as u8)), (0, 2, Some(h as u8 + 1)), (1, (h % 4) as u8, if h % 3 == 0 { None } else { Some(7) })]);
            archive.commit(h, &ws).expect("commit");
        }
        let archived = archive.db.iterator_cf(archive.cf(CF_NODES).expect("cf"), IteratorMode::Start).count();
        assert!(node_count < archived, "pruned {node_count} vs archive {archived}");
        let reopened = Store::open(dir.path(), opts(HashAlg::Sha256, Some(3))).expect("reopen");
        assert_eq!(reopened.oldest_retained(), 8);
    }
}
