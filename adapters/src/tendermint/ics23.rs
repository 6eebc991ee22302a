//! ICS-23 state proofs of Tendermint chains (IAVL, Tendermint simple Merkle, SMT), single stores or chains of
//! stores (an application store inside the multi-store, as Cosmos SDK chains commit them).
//!
//! The proof checks themselves are the `ics23` crate's; this module only decodes the protobuf and walks the
//! levels, feeding each level's root to the next.

use ::ics23::commitment_proof::Proof;
use ::ics23::{CommitmentProof, HostFunctionsManager, ProofSpec};
use borsh::{BorshDeserialize, BorshSerialize};
use causeway_light_client::Canonical;
use prost::Message;
use serde::{Deserialize, Serialize};

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

/// Largest encoded ICS-23 proof accepted.
pub const MAX_PROOF_LEN: usize = 256 * 1024;

/// A state proof: one commitment proof per store level, innermost first. JSON: a list of hex-encoded protobuf
/// `CommitmentProof`s; binary: the same bytes, Borsh-framed.
#[derive(Clone, Debug, PartialEq)]
pub struct Ics23Proof {
    /// Commitment proofs, innermost (the application store) first.
    pub proofs: Vec<CommitmentProof>,
}

impl Ics23Proof {
    /// Decode one protobuf-encoded `CommitmentProof` (a single-level proof).
    pub fn from_protobuf(bytes: &[u8]) -> Result<Self, Ics23Error> {
        Ok(Ics23Proof {
            proofs: vec![decode_commitment_proof(bytes)?],
        })
    }

    /// Decode several protobuf-encoded `CommitmentProof`s, innermost first.
    pub fn from_protobuf_levels<B: AsRef<[u8]>>(levels: &[B]) -> Result<Self, Ics23Error> {
        let proofs = levels
            .iter()
            .map(|b| decode_commitment_proof(b.as_ref()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Ics23Proof { proofs })
    }

    /// The protobuf encoding of each level, innermost first.
    pub fn encode_levels(&self) -> Vec<Vec<u8>> {
        self.proofs.iter().map(Message::encode_to_vec).collect()
    }
}

impl Serialize for Ics23Proof {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let levels: Vec<String> = self.encode_levels().iter().map(hex::encode).collect();
        Serialize::serialize(&levels, s)
    }
}

impl<'de> Deserialize<'de> for Ics23Proof {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let levels = <Vec<String> as Deserialize>::deserialize(d)?;
        let bytes = levels
            .iter()
            .map(|l| hex::decode(l.trim_start_matches("0x")))
            .collect::<Result<Vec<_>, _>>()
            .map_err(serde::de::Error::custom)?;
        Ics23Proof::from_protobuf_levels(&bytes).map_err(serde::de::Error::custom)
    }
}

impl BorshSerialize for Ics23Proof {
    fn serialize<W: std::io::Write>(&self, writer: &mut W) -> std::io::Result<()> {
        BorshSerialize::serialize(&self.encode_levels(), writer)
    }
}

impl BorshDeserialize for Ics23Proof {
    fn deserialize_reader<R: std::io::Read>(reader: &mut R) -> std::io::Result<Self> {
        let levels = Vec::<Vec<u8>>::deserialize_reader(reader)?;
        Ics23Proof::from_protobuf_levels(&levels)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
    }
}

impl Canonical for Ics23Proof {
    const KIND: &'static str = "Ics23Proof";
    const MAX_LEN: usize = MAX_PROOF_LEN;
}

/// Decode one protobuf `CommitmentProof`.
pub fn decode_commitment_proof(bytes: &[u8]) -> Result<CommitmentProof, Ics23Error> {
    let proof = CommitmentProof::decode(bytes).map_err(|e| Ics23Error::Malformed(e.to_string()))?;
    if proof.proof.is_none() {
        return Err(Ics23Error::Malformed("empty commitment proof".into()));
    }
    Ok(proof)
}

/// The tree layouts ICS-23 defines a proof spec for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, BorshSerialize, BorshDeserialize)]
#[serde(rename_all = "lowercase")]
pub enum SpecKind {
    /// IAVL trees (Cosmos SDK application stores).
    Iavl,
    /// Tendermint's simple Merkle tree (the Cosmos SDK multi-store).
    Tendermint,
    /// Sparse Merkle trees.
    Smt,
}

impl SpecKind {
    /// The `ics23` crate's proof spec for this layout.
    pub fn spec(self) -> ProofSpec {
        match self {
            SpecKind::Iavl => ::ics23::iavl_spec(),
            SpecKind::Tendermint => ::ics23::tendermint_spec(),
            SpecKind::Smt => ::ics23::smt_spec(),
        }
    }

    /// The layout named `iavl`, `tendermint` or `smt`.
    pub fn by_name(name: &str) -> Option<Self> {
        match name {
            "iavl" => Some(SpecKind::Iavl),
            "tendermint" => Some(SpecKind::Tendermint),
            "smt" => Some(SpecKind::Smt),
            _ => None,
        }
    }
}

/// How a client's state is laid out: the tree layout of each level (innermost first) and the store keys above the
/// innermost one (outermost first, e.g. `["ibc"]` for the IBC store of a Cosmos SDK chain).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, BorshSerialize, BorshDeserialize)]
#[serde(deny_unknown_fields)]
pub struct ProofConfig {
    /// Layout per level, innermost first.
    pub specs: Vec<SpecKind>,
    /// Store keys, outermost first; one fewer than `specs`.
    #[serde(with = "hex_list")]
    pub prefix: Vec<Vec<u8>>,
}

mod hex_list {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(v: &[Vec<u8>], s: S) -> Result<S::Ok, S::Error> {
        v.iter().map(hex::encode).collect::<Vec<_>>().serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Vec<u8>>, D::Error> {
        Vec::<String>::deserialize(d)?
            .iter()
            .map(|h| hex::decode(h).map_err(serde::de::Error::custom))
            .collect()
    }
}

impl ProofConfig {
    /// A single store committed directly by the app hash.
    pub fn single(spec: SpecKind) -> Self {
        ProofConfig {
            specs: vec![spec],
            prefix: Vec::new(),
        }
    }

    /// A Cosmos SDK store: an IAVL tree named `store` inside the multi-store's simple Merkle tree.
    pub fn cosmos_sdk(store: &str) -> Self {
        ProofConfig {
            specs: vec![SpecKind::Iavl, SpecKind::Tendermint],
            prefix: vec![store.as_bytes().to_vec()],
        }
    }

    /// Check the levels and store keys agree.
    pub fn check(&self) -> Result<(), Ics23Error> {
        if self.specs.is_empty() || self.prefix.len() + 1 != self.specs.len() {
            return Err(Ics23Error::Malformed(format!(
                "proof configuration has {} specs but {} store keys (one fewer is needed)",
                self.specs.len(),
                self.prefix.len()
            )));
        }
        Ok(())
    }

    /// Keys per level, innermost first.
    fn keys<'a>(&'a self, path: &'a [u8]) -> Result<Vec<&'a [u8]>, Ics23Error> {
        self.check()?;
        let mut keys = vec![path];
        keys.extend(self.prefix.iter().rev().map(Vec::as_slice));
        Ok(keys)
    }
}

/// The named spec of one of the ICS-23 families: `iavl`, `tendermint` or `smt`.
pub fn spec_by_name(name: &str) -> Option<ProofSpec> {
    SpecKind::by_name(name).map(SpecKind::spec)
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
        _ => {
            return Err(Ics23Error::Malformed(format!(
                "level {level}: expected an existence or non-existence proof"
            )))
        }
    };
    ::ics23::calculate_existence_root::<HostFunctionsManager>(&exist).map_err(|e| Ics23Error::Rejected {
        level,
        reason: format!("cannot compute root: {e}"),
    })
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
            &config.specs[level].spec(),
            &this_root,
            keys[level],
            &child_root,
        ) {
            return Err(Ics23Error::Rejected {
                level,
                reason: "store root not proven under its store key".into(),
            });
        }
        child_root = this_root;
    }
    if child_root != root {
        return Err(Ics23Error::Rejected {
            level: proofs.len() - 1,
            reason: format!(
                "proof computes root {}, the trusted root is {}",
                hex::encode(&child_root),
                hex::encode(root)
            ),
        });
    }
    Ok(())
}

fn check_depth(config: &ProofConfig, proof: &Ics23Proof) -> Result<(), Ics23Error> {
    if proof.proofs.len() != config.specs.len() {
        return Err(Ics23Error::WrongDepth {
            proofs: proof.proofs.len(),
            expected: config.specs.len(),
        });
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
        return Err(Ics23Error::Malformed(
            "membership of an empty value cannot be proven".into(),
        ));
    }
    let first_root = level_root(&proof.proofs[0], 0)?;
    if !::ics23::verify_membership::<HostFunctionsManager>(
        &proof.proofs[0],
        &config.specs[0].spec(),
        &first_root,
        path,
        value,
    ) {
        return Err(Ics23Error::Rejected {
            level: 0,
            reason: "key and value not proven".into(),
        });
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
    if !::ics23::verify_non_membership::<HostFunctionsManager>(
        &proof.proofs[0],
        &config.specs[0].spec(),
        &first_root,
        path,
    ) {
        return Err(Ics23Error::Rejected {
            level: 0,
            reason: "absence of the key not proven".into(),
        });
    }
    verify_upper_levels(config, &keys, &proof.proofs, first_root, root)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_malformed() {
        assert!(matches!(
            Ics23Proof::from_protobuf(&[0xff, 0x01, 0x02]),
            Err(Ics23Error::Malformed(_))
        ));
        assert!(matches!(
            Ics23Proof::from_protobuf(&[]),
            Err(Ics23Error::Malformed(_))
        ));
    }

    #[test]
    fn depth_must_match_configuration() {
        let config = ProofConfig::cosmos_sdk("ibc");
        let proof = Ics23Proof { proofs: vec![] };
        assert_eq!(
            verify_membership(&config, &[0; 32], b"k", b"v", &proof),
            Err(Ics23Error::WrongDepth {
                proofs: 0,
                expected: 2
            })
        );
    }
}
