//! Offline ledger operations (DESIGN §7): the evidence of a split or merge-out record, the genesis and carried
//! state of a chain born of a split or merge, and the verifier that checks either from files alone.
//!
//! **Owns**: the evidence file format ([`RecordEvidence`]), the checks that tie a record to a certified header,
//! a snapshot to the header before it, and a new chain's genesis to the record. **Must never**: write a genesis
//! from a record or snapshot it did not verify, or call a verification passed when any check was skipped.
//!
//! The checks on evidence are pure ([`RecordEvidence::verify`]); building and verifying a genesis read snapshot
//! files and use scratch stores in a temporary directory (the shell part).

use std::io::{BufReader, BufWriter};
use std::path::Path;

use causeway_light_client::commit::verify_commit;
use causeway_light_client::proof::{self, StateProof};
use causeway_light_client::{
    Canonical, ChainId, CommitCertificate, Hash, HashAlg, Header, Namespace, Time, Validator, ValidatorSet,
};
use indicatif::ProgressBar;
use serde::{Deserialize, Serialize};

use crate::app::{App, AppError, AppOptions};
use crate::exec::{governance, lineage, sys_namespace};
use crate::genesis::{
    Genesis, GenesisError, GenesisLineage, GenesisOrg, GenesisValidator, LineageOrigin, Profile,
};
use crate::message::{OrgId, Params};
use crate::state::snapshot::{self, Source};
use crate::state::{SnapshotSummary, StateError, StateRead, Store, StoreOptions};

/// Why a ledger operation failed.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// A JSON file is malformed.
    #[error("{path}: not valid JSON evidence: {source}")]
    Json {
        /// The file.
        path: String,
        /// The cause.
        source: serde_json::Error,
    },
    /// The evidence does not prove the record.
    #[error("evidence: {0}")]
    Evidence(String),
    /// A snapshot is damaged, tampered with or does not match the header it must match.
    #[error("snapshot {path}: {source}")]
    Snapshot {
        /// The file.
        path: String,
        /// What is wrong.
        source: StateError,
    },
    /// Two things that must agree do not.
    #[error("mismatch: {0}")]
    Mismatch(String),
    /// Two chains would bring the same namespace into the merged chain.
    #[error("namespace clash: {0}")]
    Clash(String),
    /// The genesis is unusable.
    #[error(transparent)]
    Genesis(#[from] GenesisError),
    /// The chain's own store failed.
    #[error(transparent)]
    App(#[from] AppError),
}

/// Result alias.
pub type Result<T, E = LedgerError> = std::result::Result<T, E>;

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> LedgerError + '_ {
    move |source| LedgerError::Io {
        path: path.display().to_string(),
        source,
    }
}

fn evidence_err(msg: impl Into<String>) -> LedgerError {
    LedgerError::Evidence(msg.into())
}

/// Which record a piece of evidence proves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordKind {
    /// A [`lineage::SplitRecord`].
    Split,
    /// A [`lineage::MergeOutRecord`].
    MergeOut,
}

/// The key proven absent when a namespace's absence is shown (any key works for a namespace that does not exist).
const PROBE_KEY: &[u8] = b"lineage-probe";

/// Everything needed to trust a lineage record offline: the record, the certified header of its height, the header
/// before it (whose state root a snapshot must match), and proofs against the header's state root.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordEvidence {
    /// Which record.
    pub kind: RecordKind,
    /// The chain's hash function.
    pub hash: HashAlg,
    /// The canonical record bytes (hex).
    #[serde(with = "hex::serde")]
    pub record: Vec<u8>,
    /// The header at the record's height H.
    pub header: Header,
    /// The certificate deciding `header`.
    pub certificate: CommitCertificate,
    /// The validators of height H (their hash is the header's `validators_hash`).
    pub validators: Vec<Validator>,
    /// The header at H-1: a snapshot of the parent at H-1 must have its state root.
    pub before: Header,
    /// The record's membership proof against `header.state_root`.
    pub record_proof: StateProof,
    /// For a split: one proof per departed namespace that it no longer exists at H.
    pub absent: Vec<(Namespace, StateProof)>,
}

/// A record whose evidence checked out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VerifiedRecord {
    /// A split record.
    Split(lineage::SplitRecord),
    /// A merge-out record.
    MergeOut(lineage::MergeOutRecord),
}

impl RecordEvidence {
    /// Collect the evidence of the record committed at `height` from a chain's application.
    pub fn collect(app: &App, kind: RecordKind, height: u64) -> Result<RecordEvidence> {
        let store = app.store();
        let block = |h: u64| -> Result<Header> {
            Ok(app
                .block(h)?
                .ok_or_else(|| evidence_err(format!("block {h} is not in this store")))?
                .header)
        };
        let header = block(height)?;
        let before = block(
            height
                .checked_sub(1)
                .filter(|h| *h > 0)
                .ok_or_else(|| evidence_err("a record needs a height above 1"))?,
        )?;
        let certificate = app
            .commit_at(height)?
            .ok_or_else(|| evidence_err(format!("no certificate for {height}")))?;
        let validators = app.validators_at(height)?.validators().to_vec();
        let ns = sys_namespace(lineage::LINEAGE);
        let key = match kind {
            RecordKind::Split => lineage::split_record_key(height),
            RecordKind::MergeOut => lineage::merge_out_record_key(),
        };
        let snap = |e: StateError| LedgerError::Snapshot {
            path: "store".into(),
            source: e,
        };
        let (record, record_proof) = store.prove(height, &ns, &key).map_err(snap)?;
        let record = record.ok_or_else(|| evidence_err(format!("no {kind:?} record at height {height}")))?;
        let mut absent = Vec::new();
        if kind == RecordKind::Split {
            let split = lineage::SplitRecord::decode(&record).map_err(|e| evidence_err(e.to_string()))?;
            for n in split.departed {
                let (_, p) = store.prove(height, &n, PROBE_KEY).map_err(snap)?;
                absent.push((n, p));
            }
        }
        Ok(RecordEvidence {
            kind,
            hash: app.hash_alg(),
            record,
            header,
            certificate,
            validators,
            before,
            record_proof,
            absent,
        })
    }

    /// Check the evidence: header H follows header H-1, is decided by a certificate of more than two thirds of
    /// the validators it names (and, with `trusted_validators`, those are the validators the caller trusts), the
    /// record is in its state, and for a split every departed namespace is absent from it.
    pub fn verify(&self, trusted_validators: Option<&Hash>) -> Result<VerifiedRecord> {
        let alg = self.hash;
        let (h, b) = (&self.header, &self.before);
        if h.chain_id != b.chain_id || h.height != b.height.saturating_add(1) || h.parent_hash != b.hash(alg)
        {
            return Err(evidence_err("the header does not follow the header before it"));
        }
        let set = ValidatorSet::new(self.validators.clone())
            .map_err(|e| evidence_err(format!("validators: {e}")))?;
        if set.hash(alg) != h.validators_hash {
            return Err(evidence_err("the validators are not the header's"));
        }
        if trusted_validators.is_some_and(|t| *t != h.validators_hash) {
            return Err(evidence_err("the header's validators are not the trusted ones"));
        }
        let c = &self.certificate;
        if c.height != h.height || c.block_id != h.hash(alg) {
            return Err(evidence_err("the certificate decides another block"));
        }
        verify_commit(h.chain_id.as_str(), &set, c).map_err(|e| evidence_err(format!("certificate: {e}")))?;
        let ns = sys_namespace(lineage::LINEAGE);
        let key = match self.kind {
            RecordKind::Split => lineage::split_record_key(h.height),
            RecordKind::MergeOut => lineage::merge_out_record_key(),
        };
        proof::verify(
            alg,
            &h.state_root,
            &ns,
            &key,
            Some(&self.record),
            &self.record_proof,
        )
        .map_err(|e| evidence_err(format!("record proof: {e}")))?;
        match self.kind {
            RecordKind::Split => {
                let r =
                    lineage::SplitRecord::decode(&self.record).map_err(|e| evidence_err(e.to_string()))?;
                if r.parent != h.chain_id || r.height != h.height {
                    return Err(evidence_err("the record names another chain or height"));
                }
                let proven: Vec<&Namespace> = self.absent.iter().map(|(n, _)| n).collect();
                if proven != r.departed.iter().collect::<Vec<_>>() {
                    return Err(evidence_err(
                        "absence is not proven for exactly the departed namespaces",
                    ));
                }
                for (n, p) in &self.absent {
                    if !matches!(p, StateProof::NoNamespace { .. }) {
                        return Err(evidence_err(format!(
                            "namespace {n} still exists at the split height"
                        )));
                    }
                    proof::verify(alg, &h.state_root, n, PROBE_KEY, None, p)
                        .map_err(|e| evidence_err(format!("absence of {n}: {e}")))?;
                }
                Ok(VerifiedRecord::Split(r))
            }
            RecordKind::MergeOut => {
                let r =
                    lineage::MergeOutRecord::decode(&self.record).map_err(|e| evidence_err(e.to_string()))?;
                if r.chain != h.chain_id || r.final_height != h.height {
                    return Err(evidence_err("the record names another chain or height"));
                }
                Ok(VerifiedRecord::MergeOut(r))
            }
        }
    }

    /// Read an evidence file.
    pub fn load(path: &Path) -> Result<RecordEvidence> {
        let raw = std::fs::read(path).map_err(io(path))?;
        serde_json::from_slice(&raw).map_err(|source| LedgerError::Json {
            path: path.display().to_string(),
            source,
        })
    }

    /// Write an evidence file.
    pub fn save(&self, path: &Path) -> Result<()> {
        let json = serde_json::to_vec_pretty(self).map_err(|source| LedgerError::Json {
            path: path.display().to_string(),
            source,
        })?;
        std::fs::write(path, json).map_err(io(path))
    }
}

/// Write the state of `app` at `height` as a snapshot file.
pub fn write_snapshot(
    app: &App,
    height: u64,
    path: &Path,
    progress: &ProgressBar,
) -> Result<SnapshotSummary> {
    let file = std::fs::File::create(path).map_err(io(path))?;
    let mut out = BufWriter::new(file);
    snapshot::export(app.store(), height, &mut out, progress).map_err(|source| LedgerError::Snapshot {
        path: path.display().to_string(),
        source,
    })
}

/// A parent's snapshot checked against the header before its record, in a scratch store.
struct CheckedParent {
    _dir: tempfile::TempDir,
    store: Store,
    height: u64,
}

fn import_checked(
    path: &Path,
    alg: HashAlg,
    before: &Header,
    progress: &ProgressBar,
) -> Result<CheckedParent> {
    let dir = tempfile::tempdir().map_err(io(path))?;
    let file = std::fs::File::open(path).map_err(io(path))?;
    let options = StoreOptions {
        hash_alg: alg,
        retention: None,
        sync: false,
    };
    let (store, summary) = snapshot::import(
        dir.path(),
        options,
        &mut BufReader::new(file),
        &before.state_root,
        progress,
    )
    .map_err(|source| LedgerError::Snapshot {
        path: path.display().to_string(),
        source,
    })?;
    if summary.height != before.height {
        return Err(LedgerError::Mismatch(format!(
            "snapshot {} is of height {}, the record needs height {}",
            path.display(),
            summary.height,
            before.height
        )));
    }
    Ok(CheckedParent {
        _dir: dir,
        store,
        height: summary.height,
    })
}

/// The recorded roots must be exactly the snapshot's roots of those namespaces.
fn check_roots(parent: &CheckedParent, recorded: &[(Namespace, Hash)], named: &[Namespace]) -> Result<()> {
    let roots = parent
        .store
        .view(parent.height)
        .and_then(|v| v.namespace_roots())
        .map_err(|source| LedgerError::Snapshot {
            path: "scratch store".into(),
            source,
        })?;
    let in_snapshot: Vec<(Namespace, Hash)> = roots
        .into_iter()
        .filter(|(n, _)| named.binary_search(n).is_ok())
        .collect();
    if in_snapshot != recorded {
        return Err(LedgerError::Mismatch(
            "the record's namespace roots are not the snapshot's".into(),
        ));
    }
    Ok(())
}

/// The organisations that own carried `org/<id>…` namespaces, with their administrators in the parent.
fn carried_orgs(parent: &CheckedParent, carried: &[(Namespace, Hash)]) -> Result<Vec<GenesisOrg>> {
    let view = parent
        .store
        .view(parent.height)
        .map_err(|source| LedgerError::Snapshot {
            path: "scratch store".into(),
            source,
        })?;
    let mut out: Vec<GenesisOrg> = Vec::new();
    for (ns, _) in carried {
        let Some(rest) = ns.as_str().strip_prefix("org/") else {
            continue;
        };
        let Ok(id) = OrgId::new(rest.split('/').next().unwrap_or_default()) else {
            continue;
        };
        if out.iter().any(|o| o.id == id) {
            continue;
        }
        let org = governance::org(&view, &id).map_err(|e| LedgerError::Mismatch(e.to_string()))?;
        if let Some(o) = org.filter(|o| o.active) {
            out.push(GenesisOrg { id, admin: o.admin });
        }
    }
    Ok(out)
}

fn genesis_validators(validators: &[Validator]) -> Vec<GenesisValidator> {
    validators
        .iter()
        .enumerate()
        .map(|(i, v)| GenesisValidator {
            name: format!("validator-{i}"),
            pub_key: v.pub_key.clone(),
            power: v.power,
            node_id: None,
        })
        .collect()
}

/// What building a new chain's genesis produced.
#[derive(Clone, Debug)]
pub struct Born {
    /// The genesis (saved as JSON).
    pub genesis: Genesis,
    /// The carried-state snapshot's summary.
    pub carried: SnapshotSummary,
}

/// Files of a split.
pub struct SplitFiles<'a> {
    /// The parent's snapshot at H-1.
    pub parent_snapshot: &'a Path,
    /// The split record's evidence.
    pub evidence: &'a RecordEvidence,
}

/// Build the child's genesis and carried state from a verified split: the genesis' carried roots are the
/// record's, and the carried-state file holds exactly those namespaces, read from the parent's snapshot at H-1.
pub fn split(
    files: SplitFiles<'_>,
    genesis_time: Time,
    out_genesis: &Path,
    out_state: &Path,
    progress: &ProgressBar,
) -> Result<Born> {
    let VerifiedRecord::Split(record) = files.evidence.verify(None)? else {
        return Err(evidence_err("this is not a split record's evidence"));
    };
    let parent = import_checked(
        files.parent_snapshot,
        files.evidence.hash,
        &files.evidence.before,
        progress,
    )?;
    check_roots(&parent, &record.namespaces, &record.departed)?;
    let moved = |n: &Namespace| record.namespaces.binary_search_by(|(m, _)| m.cmp(n)).is_ok();
    let carried = write_carried(
        &[Source {
            store: &parent.store,
            height: parent.height,
            keep: &moved,
        }],
        out_state,
        progress,
    )?;
    let genesis = Genesis {
        chain_id: record.child.clone(),
        genesis_time,
        hash: files.evidence.hash,
        app_version: files.evidence.header.app_version,
        profile: record.profile,
        validators: genesis_validators(&record.validators),
        params: Params::default(),
        orgs: carried_orgs(&parent, &record.namespaces)?,
        assets: vec![],
        lineage: Some(GenesisLineage {
            origin: LineageOrigin::Split {
                parent: record.parent.clone(),
                height: record.height,
            },
            carried: record.namespaces.clone(),
        }),
    };
    genesis.validate()?;
    genesis.save(out_genesis)?;
    Ok(Born { genesis, carried })
}

fn write_carried(sources: &[Source<'_>], path: &Path, progress: &ProgressBar) -> Result<SnapshotSummary> {
    let file = std::fs::File::create(path).map_err(io(path))?;
    snapshot::export_sources(sources, 0, &mut BufWriter::new(file), progress).map_err(|source| {
        LedgerError::Snapshot {
            path: path.display().to_string(),
            source,
        }
    })
}

/// Files of one parent of a merge.
pub struct MergeParent<'a> {
    /// Its snapshot at its final height - 1.
    pub snapshot: &'a Path,
    /// Its merge-out record's evidence.
    pub evidence: &'a RecordEvidence,
}

fn verified_merge_outs(parents: [&MergeParent<'_>; 2]) -> Result<[lineage::MergeOutRecord; 2]> {
    let mut records = Vec::with_capacity(2);
    for p in parents {
        match p.evidence.verify(None)? {
            VerifiedRecord::MergeOut(r) => records.push(r),
            VerifiedRecord::Split(_) => return Err(evidence_err("a split record is not a merge-out record")),
        }
    }
    let (a, b) = (&records[0], &records[1]);
    if a.merged != b.merged || a.partner != b.chain || b.partner != a.chain {
        return Err(LedgerError::Mismatch(format!(
            "{} merges into {} with {}, {} into {} with {}",
            a.chain, a.merged, a.partner, b.chain, b.merged, b.partner
        )));
    }
    if a.validators != b.validators || a.profile != b.profile {
        return Err(LedgerError::Mismatch(
            "the two records disagree on the merged chain's validators or profile".into(),
        ));
    }
    if parents[0].evidence.hash != parents[1].evidence.hash {
        return Err(LedgerError::Mismatch(
            "the two chains use different hash functions".into(),
        ));
    }
    if let Some((n, _)) = a
        .namespaces
        .iter()
        .find(|(n, _)| b.namespaces.binary_search_by(|(m, _)| m.cmp(n)).is_ok())
    {
        return Err(LedgerError::Clash(format!(
            "{n} is on both {} and {}",
            a.chain, b.chain
        )));
    }
    let mut out = [a.clone(), b.clone()];
    out.sort_by(|x, y| x.chain.cmp(&y.chain));
    Ok(out)
}

fn merged_carried(records: &[lineage::MergeOutRecord; 2]) -> Vec<(Namespace, Hash)> {
    let mut all: Vec<(Namespace, Hash)> = records
        .iter()
        .flat_map(|r| r.namespaces.iter().cloned())
        .collect();
    all.sort();
    all
}

/// Build the merged chain's genesis and carried state from two verified merge-out records (refused on a namespace
/// clash before anything is written).
pub fn merge(
    a: MergeParent<'_>,
    b: MergeParent<'_>,
    genesis_time: Time,
    out_genesis: &Path,
    out_state: &Path,
    progress: &ProgressBar,
) -> Result<Born> {
    let records = verified_merge_outs([&a, &b])?;
    let pa = import_checked(a.snapshot, a.evidence.hash, &a.evidence.before, progress)?;
    let pb = import_checked(b.snapshot, b.evidence.hash, &b.evidence.before, progress)?;
    let (ra, rb) = if records[0].chain == a.evidence.header.chain_id {
        (&records[0], &records[1])
    } else {
        (&records[1], &records[0])
    };
    let names = |r: &lineage::MergeOutRecord| r.namespaces.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
    check_roots(&pa, &ra.namespaces, &names(ra))?;
    check_roots(&pb, &rb.namespaces, &names(rb))?;
    let in_a = |n: &Namespace| ra.namespaces.binary_search_by(|(m, _)| m.cmp(n)).is_ok();
    let in_b = |n: &Namespace| rb.namespaces.binary_search_by(|(m, _)| m.cmp(n)).is_ok();
    let carried = write_carried(
        &[
            Source {
                store: &pa.store,
                height: pa.height,
                keep: &in_a,
            },
            Source {
                store: &pb.store,
                height: pb.height,
                keep: &in_b,
            },
        ],
        out_state,
        progress,
    )?;
    let mut orgs = carried_orgs(&pa, &ra.namespaces)?;
    for o in carried_orgs(&pb, &rb.namespaces)? {
        if orgs.iter().any(|x| x.id == o.id) {
            return Err(LedgerError::Clash(format!(
                "organisation {} exists on both chains",
                o.id
            )));
        }
        orgs.push(o);
    }
    let genesis = Genesis {
        chain_id: records[0].merged.clone(),
        genesis_time,
        hash: a.evidence.hash,
        app_version: a.evidence.header.app_version,
        profile: records[0].profile,
        validators: genesis_validators(&records[0].validators),
        params: Params::default(),
        orgs,
        assets: vec![],
        lineage: Some(GenesisLineage {
            origin: LineageOrigin::Merge {
                parents: records
                    .iter()
                    .map(|r| (r.chain.clone(), r.final_height))
                    .collect(),
            },
            carried: merged_carried(&records),
        }),
    };
    genesis.validate()?;
    genesis.save(out_genesis)?;
    Ok(Born { genesis, carried })
}

/// What an offline verification checked.
#[derive(Clone, Debug, Serialize)]
pub struct Verification {
    /// "split" or "merge".
    pub kind: &'static str,
    /// The new chain.
    pub chain: ChainId,
    /// Its parents.
    pub parents: Vec<ChainId>,
    /// Namespaces carried over.
    pub namespaces: usize,
    /// Entries read from the parents' snapshots.
    pub parent_entries: u64,
    /// Entries in the carried state.
    pub carried_entries: u64,
    /// The new chain's state root at height 0.
    pub genesis_state_root: Hash,
}

/// The new chain's side of a verification: its genesis and carried-state files.
pub struct NewChainFiles<'a> {
    /// Its genesis.
    pub genesis: &'a Path,
    /// Its carried-state snapshot.
    pub state: &'a Path,
}

/// Import the new chain's carried state as its height 0 in a scratch directory: adopted only if its root is the
/// root over the genesis' carried namespaces. Returns the state root of height 0 and the entry count.
fn check_new_chain(
    files: &NewChainFiles<'_>,
    carried: &[(Namespace, Hash)],
    progress: &ProgressBar,
) -> Result<(Genesis, Hash, u64)> {
    let genesis = Genesis::load(files.genesis)?;
    let lineage = genesis
        .lineage
        .clone()
        .ok_or_else(|| LedgerError::Mismatch("the genesis carries no lineage".into()))?;
    if lineage.carried != carried {
        return Err(LedgerError::Mismatch(
            "the genesis' carried roots are not the recorded ones".into(),
        ));
    }
    let dir = tempfile::tempdir().map_err(io(files.state))?;
    let file = std::fs::File::open(files.state).map_err(io(files.state))?;
    let options = AppOptions {
        sync: false,
        ..AppOptions::default()
    };
    let app = App::open_carried(
        dir.path(),
        genesis.clone(),
        &mut BufReader::new(file),
        vec![],
        options,
        progress,
    )
    .map_err(|e| match e {
        AppError::State(source) => LedgerError::Snapshot {
            path: files.state.display().to_string(),
            source,
        },
        other => LedgerError::App(other),
    })?;
    let roots = app
        .store()
        .latest_view()
        .namespace_roots()
        .map_err(|source| LedgerError::Snapshot {
            path: "scratch store".into(),
            source,
        })?;
    let kept: Vec<(Namespace, Hash)> = roots
        .into_iter()
        .filter(|(n, _)| !lineage::is_system(n))
        .collect();
    if kept != carried {
        return Err(LedgerError::Mismatch(
            "the new chain's data namespaces are not exactly the carried ones".into(),
        ));
    }
    Ok((genesis, app.store().latest_root(), progress.position()))
}

/// Verify a split offline: the record's evidence, the parent's snapshot at H-1 against the header before the
/// record, the recorded roots against the snapshot, and the child's genesis and carried state against the record.
pub fn verify_split(
    files: SplitFiles<'_>,
    child: NewChainFiles<'_>,
    progress: &ProgressBar,
) -> Result<Verification> {
    let VerifiedRecord::Split(record) = files.evidence.verify(None)? else {
        return Err(evidence_err("this is not a split record's evidence"));
    };
    let parent = import_checked(
        files.parent_snapshot,
        files.evidence.hash,
        &files.evidence.before,
        progress,
    )?;
    let parent_entries = progress.position();
    check_roots(&parent, &record.namespaces, &record.departed)?;
    let (genesis, root, total) = check_new_chain(&child, &record.namespaces, progress)?;
    let expected = LineageOrigin::Split {
        parent: record.parent.clone(),
        height: record.height,
    };
    if genesis.lineage.as_ref().map(|l| &l.origin) != Some(&expected) || genesis.chain_id != record.child {
        return Err(LedgerError::Mismatch(
            "the genesis is not the recorded child of this split".into(),
        ));
    }
    check_identity(&genesis, &record.validators, record.profile)?;
    Ok(Verification {
        kind: "split",
        chain: genesis.chain_id,
        parents: vec![record.parent],
        namespaces: record.namespaces.len(),
        parent_entries,
        carried_entries: total - parent_entries,
        genesis_state_root: root,
    })
}

fn check_identity(genesis: &Genesis, validators: &[Validator], profile: Profile) -> Result<()> {
    let named: Vec<Validator> = genesis
        .validators
        .iter()
        .map(|v| Validator {
            pub_key: v.pub_key.clone(),
            power: v.power,
        })
        .collect();
    let same = ValidatorSet::new(named).ok().map(|s| s.validators().to_vec())
        == ValidatorSet::new(validators.to_vec())
            .ok()
            .map(|s| s.validators().to_vec());
    if !same || genesis.profile != profile {
        return Err(LedgerError::Mismatch(
            "the genesis' validators or profile are not the recorded ones".into(),
        ));
    }
    Ok(())
}

/// Verify a merge offline: both records' evidence and agreement, no clash, both snapshots against their headers,
/// and the merged chain's genesis and carried state against both records.
pub fn verify_merge(
    a: MergeParent<'_>,
    b: MergeParent<'_>,
    merged: NewChainFiles<'_>,
    progress: &ProgressBar,
) -> Result<Verification> {
    let records = verified_merge_outs([&a, &b])?;
    for p in [&a, &b] {
        let VerifiedRecord::MergeOut(r) = p.evidence.verify(None)? else {
            return Err(evidence_err("a split record is not a merge-out record"));
        };
        let checked = import_checked(p.snapshot, p.evidence.hash, &p.evidence.before, progress)?;
        let names: Vec<Namespace> = r.namespaces.iter().map(|(n, _)| n.clone()).collect();
        check_roots(&checked, &r.namespaces, &names)?;
    }
    let parent_entries = progress.position();
    let carried = merged_carried(&records);
    let (genesis, root, total) = check_new_chain(&merged, &carried, progress)?;
    let expected = LineageOrigin::Merge {
        parents: records
            .iter()
            .map(|r| (r.chain.clone(), r.final_height))
            .collect(),
    };
    if genesis.lineage.as_ref().map(|l| &l.origin) != Some(&expected) || genesis.chain_id != records[0].merged
    {
        return Err(LedgerError::Mismatch(
            "the genesis is not the recorded merge of these chains".into(),
        ));
    }
    check_identity(&genesis, &records[0].validators, records[0].profile)?;
    Ok(Verification {
        kind: "merge",
        chain: genesis.chain_id,
        parents: records.iter().map(|r| r.chain.clone()).collect(),
        namespaces: carried.len(),
        parent_entries,
        carried_entries: total - parent_entries,
        genesis_state_root: root,
    })
}
