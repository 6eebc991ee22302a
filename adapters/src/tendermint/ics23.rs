//! ICS-23 state proofs of Tendermint chains (IAVL, Tendermint simple Merkle, SMT), single stores or chains of
//! stores (an application store inside the multi-store, as Cosmos SDK chains commit them).
//!
//! The proof checks themselves are the `ics23` crate's; this module only decodes the protobuf and walks the
//! levels, feeding each level's root to the next.

use ::ics23::commitment_proof::Proof;
use ::ics23::{CommitmentProof, HostFunctionsManager, ProofSpec};
use prost::Message;

/// Why an ICS-23 proof was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Ics23Error {
    /// The proof bytes are not a protobuf `CommitmentProof`, or the proof shape is unusable.
    #[error("malformed ICS-23 proof: {0}")]
    Malformed(String),
    /// The proof does not prove the key (and value) against the root.
    #[error("ICS-23 proof rejected at level {level}: {reason}")]
    Rejected {
        /// Proof level (0 = the innermost store).
        level: usize,
        /// What did not hold.
        reason: String,
    },
    /// The number of proofs, specs and key-path elements disagree.
    #[error("ICS-23 proof has {proofs} levels, the client expects {expected}")]
    WrongDepth {
        /// Levels in the proof.
        proofs: usize,
        /// Levels the client's configuration expects.
        expected: usize,
    },
}

/// A state proof: one commitment proof per store level, innermost first.
#[derive(Clone, Debug, PartialEq)]
pub struct Ics23Proof {
    /// Commitment proofs, innermost (the application store) first.
    pub proofs: Vec<CommitmentProof>,
}

impl Ics23Proof {
    /// Decode one protobuf-encoded `CommitmentProof` (a single-level proof).
    pub fn decode(bytes: &[u8]) -> Result<Self, Ics23Error> {
        Ok(Ics23Proof { proofs: vec![decode_commitment_proof(bytes)?] })
    }

    /// Decode several protobuf-encoded `CommitmentProof`s, innermost first.
    pub fn decode_levels<B: AsRef<[u8]>>(levels: &[B]) -> Result<Self, Ics23Error> {
        let proofs = levels.iter().map(|b| decode_commitment_proof(b.as_ref())).collect::<Result<Vec<_>, _>>()?;
        Ok(Ics23Proof { proofs })
    }
}

/// Decode one protobuf `CommitmentProof`.
pub fn decode_commitment_proof(bytes: &[u8]) -> Result<CommitmentProof, Ics23Error> {
    let proof = CommitmentProof::decode(bytes).map_err(|e| Ics23Error::Malformed(e.to_string()))?;
    if proof.proof.is_none() {
        return Err(Ics23Error::Malformed("empty commitment proof".into()));
    }
    Ok(proof)
}

/// How a client's state is laid out: the proof spec of each level (innermost first) and the store keys above the
/// innermost one (outermost first, e.g. `["ibc"]` for the IBC store of a Cosmos SDK chain).
#[derive(Clone, Debug, PartialEq)]
pub struct ProofConfig {
    /// Proof spec per level, innermost first.
    pub specs: Vec<ProofSpec>,
    /// Store keys, outermost first; one fewer than `specs`.
    pub prefix: Vec<Vec<u8>>,
}

impl ProofConfig {
    /// A single store committed directly by the app hash, with the given spec.
    pub fn single(spec: ProofSpec) -> Self {
        ProofConfig { specs: vec![spec], prefix: Vec::new() }
    }

    /// A Cosmos SDK store: an IAVL tree named `store` inside the multi-store's simple Merkle tree.
    pub fn cosmos_sdk(store: &str) -> Self {
        ProofConfig { specs: vec![::ics23::iavl_spec(), ::ics23::tendermint_spec()], prefix: vec![store.as_bytes().to_vec()] }
    }

    /// Keys per level, innermost first.
    fn keys<'a>(&'a self, path: &'a [u8]) -> Result<Vec<&'a [u8]>, Ics23Error> {
        if self.prefix.len() + 1 != self.specs.len() {
            return Err(Ics23Error::Malformed(format!(
                "proof configuration has {} specs but {} store keys",
                self.specs.len(),
                self.prefix.len()
            )));
        }
        let mut keys = vec![path];
        keys.extend(self.prefix.iter().rev().map(Vec::as_slice));
        Ok(keys)
    }
}

/// The named spec of one of the ICS-23 families: `iavl`, `tendermint` or `smt`.
pub fn spec_by_name(name: &str) -> Option<ProofSpec> {
    match name {
        "iavl" => Some(::ics23::iavl_spec()),
        "tendermint" => Some(::ics23::tendermint_spec()),
        "smt" => Some(::ics23::smt_spec()),
        _ => None,
    }
}

fn decompressed(proof: &CommitmentProof) -> Result<CommitmentProof, Ics23Error> {
    if ::ics23::is_compressed(proof) {
        ::ics23::decompress(proof).map_err(|e| Ics23Error::Malformed(format!("cannot decompress: {e}")))
    } else {
        Ok(proof.clone())
    }
}

/// The root a level's proof commits to, computed from its existence proof (or a neighbour of a non-existence).
fn level_root(proof: &CommitmentProof, level: usize) -> Result<Vec<u8>, Ics23Error> {
    let proof = decompressed(proof)?;
    let exist = match &proof.proof {
        Some(Proof::Exist(e)) => e.clone(),
        Some(Proof::Nonexist(n)) => n
            .left
            .clone()
            .or_else(|| n.right.clone())
            .ok_or_else(|| Ics23Error::Malformed("non-existence proof without neighbours".into()))?,
        _ => return Err(Ics23Error::Malformed(format!("level {level}: expected an existence or non-existence proof"))),
    };
    ::ics23::calculate_existence_root::<HostFunctionsManager>(&exist)
        .map_err(|e| Ics23Error::Rejected { level, reason: format!("cannot compute root: {e}") })
}

/// Check the upper levels: level `i` proves that key `keys[i]` holds the root of level `i - 1`; the last level's
/// root must be `root`.
fn verify_upper_levels(
    config: &ProofConfig,
    keys: &[&[u8]],
    proofs: &[CommitmentProof],
    mut child_root: Vec<u8>,
    root: &[u8],
) -> Result<(), Ics23Error> {
    for level in 1..proofs.len() {
        let this_root = level_root(&proofs[level], level)?;
        if !::ics23::verify_membership::<HostFunctionsManager>(
            &proofs[level],
            &config.specs[level],
            &this_root,
            keys[level],
            &child_root,
        ) {
            return Err(Ics23Error::Rejected { level, reason: "store root not proven under its store key".into() });
        }
        child_root = this_root;
    }
    if child_root != root {
        return Err(Ics23Error::Rejected {
            level: proofs.len() - 1,
            reason: format!("proof computes root {}, the trusted root is {}", hex::encode(&child_root), hex::encode(root)),
        });
    }
    Ok(())
}

fn check_depth(config: &ProofConfig, proof: &Ics23Proof) -> Result<(), Ics23Error> {
    if proof.proofs.len() != config.specs.len() {
        return Err(Ics23Error::WrongDepth { proofs: proof.proofs.len(), expected: config.specs.len() });
    }
    Ok(())
}

/// Check that `value` is stored under `path` in the state committed by `root`.
pub fn verify_membership(
    config: &ProofConfig,
    root: &[u8],
    path: &[u8],
    value: &[u8],
    proof: &Ics23Proof,
) -> Result<(), Ics23Error> {
    check_depth(config, proof)?;
    let keys = config.keys(path)?;
    if value.is_empty() {
        return Err(Ics23Error::Malformed("membership of an empty value cannot be proven".into()));
    }
    let first_root = level_root(&proof.proofs[0], 0)?;
    if !::ics23::verify_membership::<HostFunctionsManager>(&proof.proofs[0], &config.specs[0], &first_root, path, value)
    {
        return Err(Ics23Error::Rejected { level: 0, reason: "key and value not proven".into() });
    }
    verify_upper_levels(config, &keys, &proof.proofs, first_root, root)
}

/// Check that nothing is stored under `path` in the state committed by `root`.
pub fn verify_non_membership(
    config: &ProofConfig,
    root: &[u8],
    path: &[u8],
    proof: &Ics23Proof,
) -> Result<(), Ics23Error> {
    check_depth(config, proof)?;
    let keys = config.keys(path)?;
    let first_root = level_root(&proof.proofs[0], 0)?;
    if !::ics23::verify_non_membership::<HostFunctionsManager>(&proof.proofs[0], &config.specs[0], &first_root, path) {
        return Err(Ics23Error::Rejected { level: 0, reason: "absence of the key not proven".into() });
    }
    verify_upper_levels(config, &keys, &proof.proofs, first_root, root)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_malformed() {
        assert!(matches!(Ics23Proof::decode(&[0xff, 0x01, 0x02]), Err(Ics23Error::Malformed(_))));
        assert!(matches!(Ics23Proof::decode(&[]), Err(Ics23Error::Malformed(_))));
    }

    #[test]
    fn depth_must_match_configuration() {
        let config = ProofConfig::cosmos_sdk("ibc");
        let proof = Ics23Proof { proofs: vec![] };
        assert_eq!(
            verify_membership(&config, &[0; 32], b"k", b"v", &proof),
            Err(Ics23Error::WrongDepth { proofs: 0, expected: 2 })
        );
    }
}
