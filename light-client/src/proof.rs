//! The two-level state commitment and its proofs.
//!
//! State is organised in namespaces. Each namespace is a Jellyfish (sparse) Merkle tree over `hash(key)` (the
//! `jmt` crate); the state root is an rs_merkle root over the sorted leaves
//! `hash(0x00 ‖ borsh(namespace) ‖ namespace root)`. A proof for `(namespace, key)` is therefore a namespace-tree
//! proof plus a top-level proof. A namespace can be moved to another chain by moving one leaf, which is what makes
//! splitting and merging ledgers provable (DESIGN §7).
//!
//! Everything here is pure: it only recomputes hashes.

use borsh::{BorshDeserialize, BorshSerialize};
use jmt::KeyHash;
use serde::{Deserialize, Serialize};

use crate::codec::{to_borsh, Canonical, CodecError};
use crate::hash::{merkle_root, Hash, HashAlg, Sha256Merkle, Sm3Merkle};
use crate::key_proof::KeyProof;
use crate::types::Namespace;

/// Largest key accepted in state.
pub const MAX_KEY_LEN: usize = 1024;
/// Largest value accepted in state.
pub const MAX_VALUE_LEN: usize = 1024 * 1024;
/// Most namespaces one state may hold (bounds top-level proofs).
pub const MAX_NAMESPACES: u32 = 1 << 20;

/// Why a state proof was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// The proof bytes are malformed.
    #[error("malformed proof: {0}")]
    Malformed(String),
    /// The proof is for a different namespace layout than the one claimed (wrong kind of proof).
    #[error("proof kind does not fit the claim: {0}")]
    WrongKind(&'static str),
    /// The namespace-level proof does not lead to the namespace root.
    #[error("key proof does not verify against namespace root: {0}")]
    KeyProof(String),
    /// The top-level proof does not lead to the state root.
    #[error("namespace proof does not verify against the state root")]
    TopProof,
    /// The neighbours in a namespace-absence proof do not bracket the namespace.
    #[error("neighbouring namespaces do not prove absence of {0}")]
    NotAdjacent(String),
}

/// One leaf of the top-level tree: a namespace and its tree's root.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct NamespaceLeaf {
    /// Position among the sorted namespaces.
    pub index: u32,
    /// The namespace.
    pub namespace: Namespace,
    /// Root of its tree.
    pub root: Hash,
}

/// Proof of a value (or of its absence) under `(namespace, key)` against a state root.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub enum StateProof {
    /// The namespace exists: its root, its place in the top-level tree, and a proof for the key inside it.
    InNamespace {
        /// Namespace tree root.
        ns_root: Hash,
        /// Index of the namespace among all namespaces.
        index: u32,
        /// Number of namespaces.
        count: u32,
        /// rs_merkle proof hashes for `index`.
        siblings: Vec<Hash>,
        /// The proof for `hash(key)` in the namespace tree, in the compact format of [`crate::key_proof`].
        #[serde(with = "hex::serde")]
        key_proof: Vec<u8>,
    },
    /// The namespace does not exist: its sorted neighbours (none, one at an edge, or the two around it).
    NoNamespace {
        /// Number of namespaces.
        count: u32,
        /// The neighbouring leaves.
        neighbours: Vec<NamespaceLeaf>,
        /// rs_merkle multi-proof hashes for the neighbours' indices.
        siblings: Vec<Hash>,
    },
}

impl Canonical for StateProof {
    const KIND: &'static str = "state proof";
    const MAX_LEN: usize = 64 * 1024;
}

/// The leaf hash of a namespace in the top-level tree.
pub fn namespace_leaf(alg: HashAlg, namespace: &Namespace, root: &Hash) -> [u8; 32] {
    alg.hash_parts(&[&[0u8], &to_borsh(namespace), &root.0]).0
}

/// State root over `(namespace, root)` pairs, which must be sorted by namespace with no duplicates.
pub fn state_root(alg: HashAlg, namespaces: &[(Namespace, Hash)]) -> Hash {
    let leaves: Vec<[u8; 32]> = namespaces
        .iter()
        .map(|(ns, r)| namespace_leaf(alg, ns, r))
        .collect();
    merkle_root(alg, &leaves)
}

/// The key hash under which `key` lives in a namespace tree.
pub fn key_hash(alg: HashAlg, key: &[u8]) -> KeyHash {
    match alg {
        HashAlg::Sha256 => KeyHash::with::<sha2::Sha256>(key),
        HashAlg::Sm3 => KeyHash::with::<sm3::Sm3>(key),
    }
}

/// Root of an empty namespace tree.
pub fn empty_namespace_root() -> Hash {
    Hash(*b"SPARSE_MERKLE_PLACEHOLDER_HASH__")
}

fn top_root(
    alg: HashAlg,
    indices: &[usize],
    leaves: &[[u8; 32]],
    siblings: &[Hash],
    count: usize,
) -> Option<Hash> {
    if count == 0 || count > MAX_NAMESPACES as usize || indices.iter().any(|&i| i >= count) {
        return None;
    }
    let hashes: Vec<[u8; 32]> = siblings.iter().map(|h| h.0).collect();
    let root = match alg {
        HashAlg::Sha256 => rs_merkle::MerkleProof::<Sha256Merkle>::new(hashes)
            .root(indices, leaves, count)
            .ok(),
        HashAlg::Sm3 => rs_merkle::MerkleProof::<Sm3Merkle>::new(hashes)
            .root(indices, leaves, count)
            .ok(),
    };
    root.map(Hash)
}

fn verify_key_proof(
    alg: HashAlg,
    proof: &[u8],
    root: &Hash,
    key: KeyHash,
    value: Option<&[u8]>,
) -> Result<(), ProofError> {
    KeyProof::decode(proof)?.verify(alg, root, key, value)
}

/// Check that `value` (or, with `None`, nothing) is stored under `(namespace, key)` in the state with `root`.
pub fn verify(
    alg: HashAlg,
    root: &Hash,
    namespace: &Namespace,
    key: &[u8],
    value: Option<&[u8]>,
    proof: &StateProof,
) -> Result<(), ProofError> {
    match proof {
        StateProof::InNamespace {
            ns_root,
            index,
            count,
            siblings,
            key_proof,
        } => {
            let leaf = namespace_leaf(alg, namespace, ns_root);
            let got = top_root(alg, &[*index as usize], &[leaf], siblings, *count as usize);
            if got.as_ref() != Some(root) {
                return Err(ProofError::TopProof);
            }
            verify_key_proof(alg, key_proof, ns_root, key_hash(alg, key), value)
        }
        StateProof::NoNamespace {
            count,
            neighbours,
            siblings,
        } => {
            if value.is_some() {
                return Err(ProofError::WrongKind(
                    "a namespace-absence proof cannot prove a value",
                ));
            }
            verify_namespace_absent(alg, root, namespace, *count, neighbours, siblings)
        }
    }
}

fn verify_namespace_absent(
    alg: HashAlg,
    root: &Hash,
    namespace: &Namespace,
    count: u32,
    neighbours: &[NamespaceLeaf],
    siblings: &[Hash],
) -> Result<(), ProofError> {
    let absent = || ProofError::NotAdjacent(namespace.to_string());
    if count == 0 {
        return if neighbours.is_empty() && *root == merkle_root(alg, &[]) {
            Ok(())
        } else {
            Err(ProofError::TopProof)
        };
    }
    let last = count - 1;
    let bracketed = match neighbours {
        // One neighbour: the namespace sorts before the first or after the last (with a single namespace, the
        // first is also the last, and either side may hold).
        [only] => (only.index == 0 && namespace < &only.namespace) || (only.index == last && namespace > &only.namespace),
        [left, right] => left.index.checked_add(1) == Some(right.index) && &left.namespace < namespace && namespace < &right.namespace,
        _ => false,
    };
    if !bracketed {
        return Err(absent());
    }
    let indices: Vec<usize> = neighbours.iter().map(|n| n.index as usize).collect();
    let leaves: Vec<[u8; 32]> = neighbours
        .iter()
        .map(|n| namespace_leaf(alg, &n.namespace, &n.root))
        .collect();
    if top_root(alg, &indices, &leaves, siblings, count as usize).as_ref() != Some(root) {
        return Err(ProofError::TopProof);
    }
    Ok(())
}

/// Build the top-level part of a proof from the full sorted namespace list (used by the prover, which holds it).
pub fn prove_top(alg: HashAlg, namespaces: &[(Namespace, Hash)], indices: &[usize]) -> Vec<Hash> {
    let leaves: Vec<[u8; 32]> = namespaces
        .iter()
        .map(|(ns, r)| namespace_leaf(alg, ns, r))
        .collect();
    let hashes: Vec<[u8; 32]> = match alg {
        HashAlg::Sha256 => rs_merkle::MerkleTree::<Sha256Merkle>::from_leaves(&leaves)
            .proof(indices)
            .proof_hashes()
            .to_vec(),
        HashAlg::Sm3 => rs_merkle::MerkleTree::<Sm3Merkle>::from_leaves(&leaves)
            .proof(indices)
            .proof_hashes()
            .to_vec(),
    };
    hashes.into_iter().map(Hash).collect()
}

/// Build a namespace-absence proof from the full sorted namespace list. `None` if the namespace is present.
pub fn prove_namespace_absent(
    alg: HashAlg,
    namespaces: &[(Namespace, Hash)],
    namespace: &Namespace,
) -> Option<StateProof> {
    let pos = match namespaces.binary_search_by(|(ns, _)| ns.cmp(namespace)) {
        Ok(_) => return None,
        Err(pos) => pos,
    };
    let count = namespaces.len();
    let indices: Vec<usize> = if count == 0 {
        vec![]
    } else if pos == 0 {
        vec![0]
    } else if pos == count {
        vec![count - 1]
    } else {
        vec![pos - 1, pos]
    };
    let neighbours = indices
        .iter()
        .map(|&i| NamespaceLeaf {
            index: i as u32,
            namespace: namespaces[i].0.clone(),
            root: namespaces[i].1,
        })
        .collect();
    let siblings = if indices.is_empty() {
        vec![]
    } else {
        prove_top(alg, namespaces, &indices)
    };
    Some(StateProof::NoNamespace {
        count: count as u32,
        neighbours,
        siblings,
    })
}

/// Where a value lives in a chain's state: a namespace and a key inside it. Its canonical encoding is the `path`
/// argument of [`LightClient::verify_membership`](crate::client::LightClient::verify_membership) for Causeway
/// chains, so the hub and the relayer name state the same way.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatePath {
    /// The namespace (one Merkle tree of the state).
    pub namespace: Namespace,
    /// The key inside it (1 to [`MAX_KEY_LEN`] bytes).
    #[serde(with = "hex::serde")]
    pub key: Vec<u8>,
}

impl StatePath {
    /// A path; the key's length is checked when the path is decoded or verified.
    pub fn new(namespace: Namespace, key: impl Into<Vec<u8>>) -> Self {
        StatePath {
            namespace,
            key: key.into(),
        }
    }
}

impl Canonical for StatePath {
    const KIND: &'static str = "state path";
    const MAX_LEN: usize = 1 + 4 + 64 + 4 + MAX_KEY_LEN;
    fn validate(&self) -> Result<(), CodecError> {
        check_sizes(&self.key, None)
    }
}

/// Reject keys and values over the limits.
pub fn check_sizes(key: &[u8], value: Option<&[u8]>) -> Result<(), CodecError> {
    if key.is_empty() || key.len() > MAX_KEY_LEN {
        return Err(CodecError::Invalid {
            kind: "state key",
            reason: format!("length {} not in 1..={MAX_KEY_LEN}", key.len()),
        });
    }
    if let Some(v) = value {
        if v.len() > MAX_VALUE_LEN {
            return Err(CodecError::TooLong {
                kind: "state value",
                len: v.len(),
                max: MAX_VALUE_LEN,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ns(s: &str) -> Namespace {
        Namespace::new(s).unwrap()
    }

    #[test]
    fn namespace_absence_is_proven_at_every_position() {
        for alg in [HashAlg::Sha256, HashAlg::Sm3] {
            let list: Vec<(Namespace, Hash)> = ["b", "d", "f", "h", "j"]
                .iter()
                .map(|s| (ns(s), alg.hash(s.as_bytes())))
                .collect();
            let root = state_root(alg, &list);
            for probe in ["a", "c", "e", "i", "k"] {
                let proof = prove_namespace_absent(alg, &list, &ns(probe)).unwrap();
                verify(alg, &root, &ns(probe), b"k", None, &proof).unwrap();
                // The same proof says nothing about a namespace it does not bracket.
                let other = if probe == "a" { "g" } else { "a" };
                assert!(verify(alg, &root, &ns(other), b"k", None, &proof).is_err());
                assert!(verify(alg, &alg.hash(b"x"), &ns(probe), b"k", None, &proof).is_err());
            }
            assert!(prove_namespace_absent(alg, &list, &ns("d")).is_none());
        }
    }

    #[test]
    fn absence_around_a_single_namespace() {
        let alg = HashAlg::Sm3;
        let list = vec![(ns("m"), alg.hash(b"m"))];
        let root = state_root(alg, &list);
        for probe in ["a", "z"] {
            let proof = prove_namespace_absent(alg, &list, &ns(probe)).unwrap();
            verify(alg, &root, &ns(probe), b"k", None, &proof).unwrap();
        }
    }

    #[test]
    fn state_paths_are_canonical_and_checked() {
        let path = StatePath::new(ns("org/acme"), b"k1".to_vec());
        assert_eq!(StatePath::decode(&path.encode()).unwrap(), path);
        let empty = StatePath::new(ns("org/acme"), Vec::new());
        assert!(matches!(
            StatePath::decode(&empty.encode()),
            Err(CodecError::Invalid { .. })
        ));
        let long = StatePath::new(ns("org/acme"), vec![0; MAX_KEY_LEN + 1]);
        assert!(StatePath::decode(&long.encode()).is_err());
    }

    #[test]
    fn empty_state_absence() {
        let alg = HashAlg::Sha256;
        let root = state_root(alg, &[]);
        let proof = prove_namespace_absent(alg, &[], &ns("x")).unwrap();
        verify(alg, &root, &ns("x"), b"k", None, &proof).unwrap();
    }

    #[test]
    fn forged_adjacency_is_rejected() {
        let alg = HashAlg::Sha256;
        let list: Vec<(Namespace, Hash)> = ["b", "d", "f"]
            .iter()
            .map(|s| (ns(s), alg.hash(s.as_bytes())))
            .collect();
        let root = state_root(alg, &list);
        // Claim "d" is absent using neighbours b and f (not adjacent).
        let siblings = prove_top(alg, &list, &[0, 2]);
        let forged = StateProof::NoNamespace {
            count: 3,
            neighbours: vec![
                NamespaceLeaf {
                    index: 0,
                    namespace: ns("b"),
                    root: list[0].1,
                },
                NamespaceLeaf {
                    index: 2,
                    namespace: ns("f"),
                    root: list[2].1,
                },
            ],
            siblings,
        };
        assert!(matches!(
            verify(alg, &root, &ns("d"), b"k", None, &forged),
            Err(ProofError::NotAdjacent(_))
        ));
        // Out-of-range indices are errors, not panics.
        let bad = StateProof::NoNamespace {
            count: 3,
            neighbours: vec![NamespaceLeaf {
                index: 2,
                namespace: ns("z"),
                root: list[2].1,
            }],
            siblings: vec![],
        };
        assert!(verify(alg, &root, &ns("zz"), b"k", None, &bad).is_err());
        let bad = StateProof::InNamespace {
            ns_root: list[0].1,
            index: 9,
            count: 3,
            siblings: vec![],
            key_proof: vec![],
        };
        assert!(verify(alg, &root, &ns("b"), b"k", None, &bad).is_err());
        let bad = StateProof::InNamespace {
            ns_root: list[0].1,
            index: 0,
            count: 0,
            siblings: vec![],
            key_proof: vec![],
        };
        assert!(verify(alg, &root, &ns("b"), b"k", None, &bad).is_err());
    }
}
