//! Snapshots: stream the whole state at one height out of a store, and rebuild a store from such a stream.
//!
//! **Owns**: the snapshot file format and its checks. **Must never**: adopt imported state whose recomputed root
//! differs from the root the caller trusts (the header's state root), or load a whole snapshot into memory.
//!
//! Format: the magic `CWSNAP\x00\x01`, then length-prefixed (u32 LE) borsh frames: one [`SnapshotHeader`], then
//! per namespace in order a `Namespace` frame followed by its `Entry` frames, then `End`.

use std::io::{Read, Write};
use std::path::Path;

use borsh::{BorshDeserialize, BorshSerialize};
use causeway_light_client::proof::{self, check_sizes};
use causeway_light_client::{Hash, HashAlg, Namespace};
use indicatif::ProgressBar;
use jmt::KeyHash;
use rocksdb::{Direction, IteratorMode, WriteBatch};

use super::store::{decode_value, ns_prefix, update_tree, CacheDelta, HeightMeta, NamespaceEntry, NamespaceReader};
use super::{BlockData, StateError, Store, StoreOptions, WriteSet};

const MAGIC: &[u8; 8] = b"CWSNAP\x00\x01";
/// Largest frame accepted: a maximal key and value with framing.
const MAX_FRAME: usize = proof::MAX_KEY_LEN + proof::MAX_VALUE_LEN + 128;
/// Keys applied per tree version while importing (bounds memory).
const IMPORT_CHUNK: usize = 20_000;

/// What a snapshot claims about itself.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct SnapshotHeader {
    /// Height of the state.
    pub height: u64,
    /// Hash function of the chain.
    pub hash_alg: u8,
    /// State root at that height.
    pub state_root: Hash,
}

#[derive(BorshSerialize, BorshDeserialize)]
enum Frame {
    Namespace(Namespace),
    Entry { key: Vec<u8>, value: Vec<u8> },
    End { entries: u64 },
}

/// Totals of an export or import.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotSummary {
    /// Height of the state.
    pub height: u64,
    /// Its state root.
    pub state_root: Hash,
    /// Namespaces written or read.
    pub namespaces: u64,
    /// Key/value entries written or read.
    pub entries: u64,
}

fn snap_err(msg: impl Into<String>) -> StateError {
    StateError::Snapshot(msg.into())
}

fn write_frame<W: Write, T: BorshSerialize>(out: &mut W, frame: &T) -> Result<(), StateError> {
    let bytes = borsh::to_vec(frame).map_err(|e| snap_err(format!("encode: {e}")))?;
    out.write_all(&(bytes.len() as u32).to_le_bytes())?;
    out.write_all(&bytes)?;
    Ok(())
}

fn read_frame<R: Read, T: BorshDeserialize>(input: &mut R, buf: &mut Vec<u8>) -> Result<T, StateError> {
    let mut len = [0u8; 4];
    input.read_exact(&mut len).map_err(|e| snap_err(format!("truncated snapshot: {e}")))?;
    let len = u32::from_le_bytes(len) as usize;
    if len > MAX_FRAME {
        return Err(snap_err(format!("frame of {len} bytes exceeds the {MAX_FRAME}-byte limit")));
    }
    buf.resize(len, 0);
    input.read_exact(buf).map_err(|e| snap_err(format!("truncated snapshot: {e}")))?;
    T::try_from_slice(buf).map_err(|e| snap_err(format!("malformed frame: {e}")))
}

fn alg_code(alg: HashAlg) -> u8 {
    match alg {
        HashAlg::Sha256 => 0,
        HashAlg::Sm3 => 1,
    }
}

/// Stream the state at `height` into `out`. `progress` counts entries.
pub fn export<W: Write>(store: &Store, height: u64, out: &mut W, progress: &ProgressBar) -> Result<SnapshotSummary, StateError> {
    export_selected(store, height, &|_| true, height, out, progress)
}

/// Stream the namespaces of the state at `height` that `keep` selects, as a snapshot of height `as_height` whose
/// root is the state root over those namespaces alone (what a split carries into a new chain).
pub fn export_selected<W: Write>(
    store: &Store,
    height: u64,
    keep: &dyn Fn(&Namespace) -> bool,
    as_height: u64,
    out: &mut W,
    progress: &ProgressBar,
) -> Result<SnapshotSummary, StateError> {
    export_sources(&[Source { store, height, keep }], as_height, out, progress)
}

/// Part of a snapshot: the namespaces `keep` selects from the state of `store` at `height`.
pub struct Source<'a> {
    /// The store.
    pub store: &'a Store,
    /// The height read.
    pub height: u64,
    /// Which namespaces to take.
    pub keep: &'a dyn Fn(&Namespace) -> bool,
}

/// Stream the selected namespaces of several stores (one hash function, no namespace taken twice) as one snapshot
/// of height `as_height`: what a merge carries into the merged chain.
pub fn export_sources<W: Write>(
    sources: &[Source<'_>],
    as_height: u64,
    out: &mut W,
    progress: &ProgressBar,
) -> Result<SnapshotSummary, StateError> {
    let alg = sources.first().map(|s| s.store.hash_alg()).ok_or_else(|| snap_err("no source"))?;
    let mut chosen: Vec<(NamespaceEntry, usize)> = Vec::new();
    for (i, src) in sources.iter().enumerate() {
        if src.store.hash_alg() != alg {
            return Err(snap_err("sources use different hash functions"));
        }
        let meta = src.store.meta(src.height)?;
        chosen.extend(
            meta.namespaces.into_iter().filter(|e| e.root != proof::empty_namespace_root() && (src.keep)(&e.namespace)).map(|e| (e, i)),
        );
    }
    chosen.sort_by(|a, b| a.0.namespace.cmp(&b.0.namespace));
    if let Some(w) = chosen.windows(2).find(|w| w[0].0.namespace == w[1].0.namespace) {
        return Err(snap_err(format!("namespace {} is in two sources", w[0].0.namespace)));
    }
    let pairs: Vec<(Namespace, Hash)> = chosen.iter().map(|(e, _)| (e.namespace.clone(), e.root)).collect();
    let state_root = proof::state_root(alg, &pairs);
    out.write_all(MAGIC)?;
    write_frame(out, &SnapshotHeader { height: as_height, hash_alg: alg_code(alg), state_root })?;
    let mut entries = 0u64;
    for (entry, i) in &chosen {
        write_frame(out, &Frame::Namespace(entry.namespace.clone()))?;
        entries += write_namespace(sources[*i].store, entry, out, progress)?;
    }
    write_frame(out, &Frame::End { entries })?;
    out.flush()?;
    Ok(SnapshotSummary { height: as_height, state_root, namespaces: chosen.len() as u64, entries })
}

/// Write the entries of one namespace tree at its version; returns how many.
fn write_namespace<W: Write>(store: &Store, entry: &NamespaceEntry, out: &mut W, progress: &ProgressBar) -> Result<u64, StateError> {
    let values = store.cf("values")?;
    let preimages = store.cf("preimages")?;
    let prefix = ns_prefix(&entry.namespace);
    let mut entries = 0u64;
    // Entries are ordered by (key hash, version); keep the newest version ≤ the namespace's version.
    let mut current: Option<(Vec<u8>, Option<Vec<u8>>)> = None;
    let mut flush = |kh: &[u8], value: Option<Vec<u8>>, out: &mut W| -> Result<(), StateError> {
        let Some(value) = value else { return Ok(()) };
        let mut pk = prefix.clone();
        pk.extend_from_slice(kh);
        let key = store.db().get_cf(preimages, &pk)?.ok_or_else(|| StateError::Corrupt("key preimage missing".into()))?;
        write_frame(out, &Frame::Entry { key, value })?;
        entries += 1;
        progress.inc(1);
        Ok(())
    };
    for item in store.db().iterator_cf(values, IteratorMode::From(&prefix, Direction::Forward)) {
        let (k, v) = item?;
        if !k.starts_with(&prefix) {
            break;
        }
        if k.len() != prefix.len() + 40 {
            return Err(StateError::Corrupt("value key of unexpected length".into()));
        }
        let kh = &k[prefix.len()..prefix.len() + 32];
        let version = u64::from_be_bytes(k[prefix.len() + 32..].try_into().map_err(|_| StateError::Corrupt("version".into()))?);
        if current.as_ref().is_some_and(|(c, _)| c.as_slice() != kh) {
            if let Some((ckh, cv)) = current.take() {
                flush(&ckh, cv, out)?;
            }
        }
        if version <= entry.version {
            current = Some((kh.to_vec(), decode_value(&v)?));
        } else if current.is_none() {
            current = Some((kh.to_vec(), None));
        }
    }
    if let Some((ckh, cv)) = current.take() {
        flush(&ckh, cv, out)?;
    }
    Ok(entries)
}

/// Build a new store at `path` from a snapshot stream. The recomputed state root must equal `trusted_root`
/// (the state root of a verified header at the snapshot's height); otherwise nothing is adopted.
pub fn import<R: Read>(
    path: &Path,
    options: StoreOptions,
    input: &mut R,
    trusted_root: &Hash,
    progress: &ProgressBar,
) -> Result<(Store, SnapshotSummary), StateError> {
    import_with(path, options, input, trusted_root, &WriteSet::new(), &[], progress)
}

/// Like [`import`], then add `extra` (new namespaces only, none of the snapshot's) to the same height, and write
/// `block_data` with the adopted state: how a chain born of a split or merge starts from the namespaces it carries
/// plus its own genesis. `trusted_root` is the root over the snapshot's namespaces alone; the summary's root is
/// the state root of the whole adopted state.
pub fn import_with<R: Read>(
    path: &Path,
    options: StoreOptions,
    input: &mut R,
    trusted_root: &Hash,
    extra: &WriteSet,
    block_data: &[(BlockData, Vec<u8>, Vec<u8>)],
    progress: &ProgressBar,
) -> Result<(Store, SnapshotSummary), StateError> {
    let mut magic = [0u8; 8];
    input.read_exact(&mut magic).map_err(|e| snap_err(format!("not a snapshot: {e}")))?;
    if &magic != MAGIC {
        return Err(snap_err("not a Causeway snapshot (bad magic or unsupported version)"));
    }
    let mut buf = Vec::new();
    let header: SnapshotHeader = read_frame(input, &mut buf)?;
    if header.hash_alg != alg_code(options.hash_alg) {
        return Err(snap_err("snapshot uses another hash function than this chain"));
    }
    if &header.state_root != trusted_root {
        return Err(snap_err(format!(
            "snapshot claims root {} but the trusted root is {}",
            header.state_root, trusted_root
        )));
    }
    let mut store = Store::open(path, options)?;
    if store.latest_height().is_some() {
        return Err(snap_err("import needs an empty store"));
    }
    let alg = store.hash_alg();
    let mut namespaces: Vec<NamespaceEntry> = Vec::new();
    let mut pending: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    let mut current: Option<(Namespace, u64, Hash)> = None;
    let mut entries = 0u64;
    let mut last_kh: Option<KeyHash> = None;
    loop {
        let frame: Frame = read_frame(input, &mut buf)?;
        let finish_ns = !matches!(frame, Frame::Entry { .. });
        if finish_ns {
            if let Some((ns, version, root)) = current.take() {
                let (version, root) = apply_chunk(&store, &ns, version, root, &mut pending)?;
                if let Some(prev) = namespaces.last() {
                    if prev.namespace >= ns {
                        return Err(snap_err("namespaces out of order"));
                    }
                }
                namespaces.push(NamespaceEntry { namespace: ns, root, version: version.saturating_sub(1) });
            }
        }
        match frame {
            Frame::Namespace(ns) => {
                last_kh = None;
                current = Some((ns, 0, proof::empty_namespace_root()));
            }
            Frame::Entry { key, value } => {
                let Some((ns, version, root)) = current.as_mut() else {
                    return Err(snap_err("entry before any namespace"));
                };
                check_sizes(&key, Some(&value)).map_err(StateError::Limit)?;
                let kh = proof::key_hash(alg, &key);
                if last_kh.is_some_and(|l| l >= kh) {
                    return Err(snap_err("entries out of order or duplicated"));
                }
                last_kh = Some(kh);
                pending.push((key, value));
                entries += 1;
                progress.inc(1);
                if pending.len() >= IMPORT_CHUNK {
                    let (v, r) = apply_chunk(&store, ns, *version, *root, &mut pending)?;
                    *version = v;
                    *root = r;
                }
            }
            Frame::End { entries: declared } => {
                if declared != entries {
                    return Err(snap_err(format!("snapshot declares {declared} entries but holds {entries}")));
                }
                break;
            }
        }
    }
    let mut trailing = [0u8; 1];
    if input.read(&mut trailing)? != 0 {
        return Err(snap_err("trailing bytes after the end of the snapshot"));
    }
    let mut meta = HeightMeta { height: header.height, state_root: Hash([0; 32]), namespaces };
    meta.state_root = proof::state_root(alg, &meta.committed_namespaces());
    if &meta.state_root != trusted_root {
        return Err(snap_err(format!("imported state has root {} but the trusted root is {}", meta.state_root, trusted_root)));
    }
    if extra.dropped().next().is_some() {
        return Err(snap_err("extra state cannot drop namespaces"));
    }
    for (ns, changes) in extra.namespaces() {
        let Err(at) = meta.namespaces.binary_search_by(|e| e.namespace.cmp(ns)) else {
            return Err(snap_err(format!("namespace {ns} is both in the snapshot and in the extra state")));
        };
        let mut puts: Vec<(Vec<u8>, Vec<u8>)> =
            changes.iter().filter_map(|(k, v)| v.as_ref().map(|v| (k.clone(), v.clone()))).collect();
        entries += puts.len() as u64;
        let (version, root) = apply_chunk(&store, ns, 0, proof::empty_namespace_root(), &mut puts)?;
        meta.namespaces.insert(at, NamespaceEntry { namespace: ns.clone(), root, version: version.saturating_sub(1) });
    }
    meta.state_root = proof::state_root(alg, &meta.committed_namespaces());
    let summary = SnapshotSummary {
        height: header.height,
        state_root: meta.state_root,
        namespaces: meta.namespaces.len() as u64,
        entries,
    };
    store.adopt(meta, block_data)?;
    Ok((store, summary))
}

/// Write one chunk of a namespace as the next version of its tree; returns (next version, root).
fn apply_chunk(
    store: &Store,
    ns: &Namespace,
    version: u64,
    root: Hash,
    pending: &mut Vec<(Vec<u8>, Vec<u8>)>,
) -> Result<(u64, Hash), StateError> {
    if pending.is_empty() {
        return Ok((version, root));
    }
    let alg = store.hash_alg();
    let prefix = ns_prefix(ns);
    let mut batch = WriteBatch::default();
    let mut set = Vec::with_capacity(pending.len());
    for (key, value) in pending.drain(..) {
        let kh = proof::key_hash(alg, &key);
        let mut pk = prefix.clone();
        pk.extend_from_slice(&kh.0);
        batch.put_cf(store.cf("preimages")?, pk, &key);
        set.push((kh, Some(value)));
    }
    let reader = NamespaceReader::new(store.db(), ns);
    // Puts only: one version.
    let (new_root, update, _) = match alg {
        HashAlg::Sha256 => update_tree::<sha2::Sha256>(&reader, set, version)?,
        HashAlg::Sm3 => update_tree::<sm3::Sm3>(&reader, set, version)?,
    };
    // The importing store's node cache is empty and stays so: nothing to carry over.
    store.stage_tree_update(&mut batch, &prefix, &update, None, &mut CacheDelta::default())?;
    store.db().write(batch)?;
    Ok((version + 1, Hash(new_root.0)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{StateRead, WriteSet};

    fn ns(s: &str) -> Namespace {
        Namespace::new(s).expect("valid namespace")
    }

    fn source(alg: HashAlg) -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut store = Store::open(dir.path(), StoreOptions { hash_alg: alg, retention: None, sync: false }).expect("open");
        for h in 1..=3u64 {
            let mut ws = WriteSet::new();
            for i in 0..500u32 {
                let value = if (i + h as u32).is_multiple_of(11) { None } else { Some(format!("v{h}-{i}").into_bytes()) };
                ws.put(ns(if i % 2 == 0 { "assets" } else { "records/acme" }), i.to_be_bytes().to_vec(), value).expect("put");
            }
            store.commit(h, &ws).expect("commit");
        }
        (dir, store)
    }

    fn export_bytes(store: &Store, height: u64) -> Vec<u8> {
        let mut out = Vec::new();
        export(store, height, &mut out, &ProgressBar::hidden()).expect("export");
        out
    }

    #[test]
    fn export_import_round_trip_reproduces_root_and_values() {
        for alg in [HashAlg::Sha256, HashAlg::Sm3] {
            let (_d, store) = source(alg);
            let root2 = store.root_at(2).expect("root");
            let bytes = export_bytes(&store, 2);
            let dir = tempfile::tempdir().expect("tempdir");
            let opts = StoreOptions { hash_alg: alg, retention: None, sync: false };
            let (imported, summary) = import(dir.path(), opts, &mut bytes.as_slice(), &root2, &ProgressBar::hidden()).expect("import");
            assert_eq!(summary.state_root, root2);
            assert_eq!(imported.latest_height(), Some(2));
            assert_eq!(imported.latest_root(), root2);
            let original = store.view(2).expect("view");
            let copy = imported.latest_view();
            for i in 0..500u32 {
                let n = ns(if i % 2 == 0 { "assets" } else { "records/acme" });
                assert_eq!(original.get(&n, &i.to_be_bytes()).expect("get"), copy.get(&n, &i.to_be_bytes()).expect("get"));
            }
            let (v, p) = imported.prove(2, &ns("assets"), &4u32.to_be_bytes()).expect("prove");
            proof::verify(alg, &root2, &ns("assets"), &4u32.to_be_bytes(), v.as_deref(), &p).expect("verifies");
        }
    }

    #[test]
    fn import_refuses_wrong_root_tampering_and_truncation() {
        let (_d, store) = source(HashAlg::Sha256);
        let root = store.root_at(3).expect("root");
        let bytes = export_bytes(&store, 3);
        let opts = || StoreOptions { hash_alg: HashAlg::Sha256, retention: None, sync: false };
        let try_import = |bytes: &[u8], trusted: &Hash| {
            let dir = tempfile::tempdir().expect("tempdir");
            import(dir.path(), opts(), &mut &bytes[..], trusted, &ProgressBar::hidden()).map(|_| ())
        };
        assert!(try_import(&bytes, &Hash([7; 32])).is_err(), "untrusted root");
        // Flip one byte of the last entry's value: the recomputed root no longer matches.
        let mut tampered = bytes.clone();
        let at = tampered.len() - 14; // the last value byte, just before the 13-byte End frame
        tampered[at] ^= 1;
        assert!(matches!(try_import(&tampered, &root), Err(StateError::Snapshot(_))));
        assert!(matches!(try_import(&bytes[..bytes.len() / 2], &root), Err(StateError::Snapshot(_))));
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert!(matches!(try_import(&trailing, &root), Err(StateError::Snapshot(_))));
        assert!(matches!(try_import(b"garbage!", &root), Err(StateError::Snapshot(_))));
        let mut huge = MAGIC.to_vec();
        huge.extend_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(try_import(&huge, &root), Err(StateError::Snapshot(_))));
        try_import(&bytes, &root).expect("the untouched snapshot imports");
    }
}
