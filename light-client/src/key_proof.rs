//! The compact encoding of a namespace-tree (Jellyfish Merkle) proof, and its verification.
//!
//! **Owns**: the wire format of the key proof carried by [`StateProof::InNamespace`](crate::proof::StateProof) and
//! the check of that proof against a namespace root. **Must never**: accept two encodings of one proof, or accept
//! a proof that `jmt`'s own verifier (`SparseMerkleProof::verify`) would reject.
//!
//! `jmt`'s `SparseMerkleProof` carries every sibling as a node: an internal sibling as its two children (64 bytes
//! plus a tag), an empty one as a tag. Only a sibling's hash enters the root, so this format sends one 32-byte hash
//! per non-empty sibling and one bit per sibling saying whether it is empty (the placeholder hash). At a million
//! keys that halves the proof.
//!
//! Format, version [`KEY_PROOF_VERSION`] (version 1 was `jmt`'s Borsh encoding, whose first byte is 0 or 1, so the
//! two cannot be confused):
//!
//! ```text
//! version   u8 = 2
//! leaf      u8 tag: 0 = none, 1 = leaf followed by key_hash (32) ‖ value_hash (32)
//! count     u16 little-endian: number of siblings n, at most 256
//! bitmap    ceil(n / 8) bytes; bit i (least significant first within byte i / 8) set = sibling i is not the
//!           placeholder; unused bits are zero
//! hashes    32 bytes per set bit, in sibling order (the sibling next to the leaf first)
//! ```
//!
//! Everything here is pure.

use borsh::{BorshDeserialize, BorshSerialize};
use jmt::KeyHash;

use crate::hash::{Hash, HashAlg};
use crate::proof::ProofError;

/// The key-proof format this build reads and writes.
pub const KEY_PROOF_VERSION: u8 = 2;
/// Most siblings a proof can have: one per bit of a 256-bit key hash.
pub const MAX_SIBLINGS: usize = 256;
/// Longest valid encoding.
pub const MAX_KEY_PROOF_LEN: usize = 1 + 1 + 64 + 2 + MAX_SIBLINGS / 8 + 32 * MAX_SIBLINGS;

const PLACEHOLDER: [u8; 32] = *b"SPARSE_MERKLE_PLACEHOLDER_HASH__";
const LEAF_DOMAIN: &[u8] = b"JMT::LeafNode";
const INTERNAL_DOMAIN: &[u8] = b"JMT::IntrnalNode";

/// The leaf a proof ends at: the key's own leaf (membership), or the only leaf of the subtree where the key would
/// be (non-membership).
#[derive(Clone, Copy, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct ProofLeaf {
    /// Hash of the leaf's key.
    pub key_hash: [u8; 32],
    /// Hash of the leaf's value.
    pub value_hash: [u8; 32],
}

impl ProofLeaf {
    fn hash(&self, alg: HashAlg) -> [u8; 32] {
        alg.hash_parts(&[LEAF_DOMAIN, &self.key_hash, &self.value_hash]).0
    }
}

/// A namespace-tree proof: an optional leaf and the sibling hashes from the leaf up to the root (`None` = the
/// placeholder of an empty subtree).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyProof {
    /// The leaf, if the path ends at one.
    pub leaf: Option<ProofLeaf>,
    /// Sibling hashes, the one next to the leaf first.
    pub siblings: Vec<Option<[u8; 32]>>,
}

/// `jmt` 0.12's Borsh layout of `SparseMerkleProof` (its sibling type is private): read only to convert a proof
/// `jmt` produced. A test checks the layout against `jmt` itself.
#[derive(BorshSerialize, BorshDeserialize)]
struct JmtProof {
    leaf: Option<ProofLeaf>,
    siblings: Vec<JmtSibling>,
}

#[derive(BorshSerialize, BorshDeserialize)]
enum JmtSibling {
    Null,
    Internal { left: [u8; 32], right: [u8; 32] },
    Leaf(ProofLeaf),
}

/// The unread rest of an encoding.
struct Input<'a>(&'a [u8]);

impl<'a> Input<'a> {
    fn take(&mut self, len: usize) -> Result<&'a [u8], ProofError> {
        if self.0.len() < len {
            return Err(malformed("truncated"));
        }
        let (head, tail) = self.0.split_at(len);
        self.0 = tail;
        Ok(head)
    }
}

fn malformed(reason: impl Into<String>) -> ProofError {
    ProofError::Malformed(format!("key proof: {}", reason.into()))
}

fn internal_hash(alg: HashAlg, left: &[u8; 32], right: &[u8; 32]) -> [u8; 32] {
    alg.hash_parts(&[INTERNAL_DOMAIN, left, right]).0
}

/// Bit `index` of a key hash, most significant bit of byte 0 first (the order the tree descends in).
fn key_bit(key: &[u8; 32], index: usize) -> bool {
    key[index / 8] & (0x80 >> (index % 8)) != 0
}

fn common_prefix_bits(a: &[u8; 32], b: &[u8; 32]) -> usize {
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        if x != y {
            return i * 8 + (x ^ y).leading_zeros() as usize;
        }
    }
    256
}

impl KeyProof {
    /// Convert the Borsh encoding of a `jmt::proof::SparseMerkleProof` built with the chain's hash function.
    pub fn from_jmt_borsh(alg: HashAlg, bytes: &[u8]) -> Result<KeyProof, ProofError> {
        let proof: JmtProof = borsh::from_slice(bytes).map_err(|e| malformed(format!("jmt proof: {e}")))?;
        if proof.siblings.len() > MAX_SIBLINGS {
            return Err(malformed(format!("{} siblings", proof.siblings.len())));
        }
        let siblings = proof
            .siblings
            .iter()
            .map(|s| {
                let hash = match s {
                    JmtSibling::Null => PLACEHOLDER,
                    JmtSibling::Internal { left, right } => internal_hash(alg, left, right),
                    JmtSibling::Leaf(leaf) => leaf.hash(alg),
                };
                (hash != PLACEHOLDER).then_some(hash)
            })
            .collect();
        Ok(KeyProof { leaf: proof.leaf, siblings })
    }

    /// The canonical encoding. Fails only for more than [`MAX_SIBLINGS`] siblings.
    pub fn encode(&self) -> Result<Vec<u8>, ProofError> {
        let n = self.siblings.len();
        if n > MAX_SIBLINGS {
            return Err(malformed(format!("{n} siblings")));
        }
        let present = self.siblings.iter().flatten().count();
        let mut out = Vec::with_capacity(2 + 64 + 2 + n.div_ceil(8) + 32 * present);
        out.push(KEY_PROOF_VERSION);
        match &self.leaf {
            None => out.push(0),
            Some(leaf) => {
                out.push(1);
                out.extend_from_slice(&leaf.key_hash);
                out.extend_from_slice(&leaf.value_hash);
            }
        }
        out.extend_from_slice(&(n as u16).to_le_bytes());
        let mut bitmap = vec![0u8; n.div_ceil(8)];
        for (i, s) in self.siblings.iter().enumerate() {
            match s {
                Some(h) if *h == PLACEHOLDER => return Err(malformed("explicit placeholder sibling")),
                Some(_) => bitmap[i / 8] |= 1 << (i % 8),
                None => {}
            }
        }
        out.extend_from_slice(&bitmap);
        for h in self.siblings.iter().flatten() {
            out.extend_from_slice(h);
        }
        Ok(out)
    }

    /// Decode, refusing anything but the one canonical encoding of a proof.
    pub fn decode(bytes: &[u8]) -> Result<KeyProof, ProofError> {
        if bytes.len() > MAX_KEY_PROOF_LEN {
            return Err(malformed(format!("{} bytes exceed {MAX_KEY_PROOF_LEN}", bytes.len())));
        }
        let mut input = Input(bytes);
        let mut take = |len: usize| input.take(len);
        match take(1)?[0] {
            KEY_PROOF_VERSION => {}
            v => return Err(malformed(format!("unknown version {v} (this build reads {KEY_PROOF_VERSION})"))),
        }
        let leaf = match take(1)?[0] {
            0 => None,
            1 => {
                let raw = take(64)?;
                let mut leaf = ProofLeaf { key_hash: [0; 32], value_hash: [0; 32] };
                leaf.key_hash.copy_from_slice(&raw[..32]);
                leaf.value_hash.copy_from_slice(&raw[32..]);
                Some(leaf)
            }
            t => return Err(malformed(format!("leaf tag {t}"))),
        };
        let count = take(2)?;
        let n = u16::from_le_bytes([count[0], count[1]]) as usize;
        if n > MAX_SIBLINGS {
            return Err(malformed(format!("{n} siblings")));
        }
        let bitmap = take(n.div_ceil(8))?.to_vec();
        let mut siblings = Vec::with_capacity(n);
        for i in 0..n {
            if bitmap[i / 8] & (1 << (i % 8)) == 0 {
                siblings.push(None);
                continue;
            }
            let mut h = [0u8; 32];
            h.copy_from_slice(take(32)?);
            if h == PLACEHOLDER {
                return Err(malformed("explicit placeholder sibling"));
            }
            siblings.push(Some(h));
        }
        if !n.is_multiple_of(8) && bitmap.last().is_some_and(|b| b >> (n % 8) != 0) {
            return Err(malformed("unused bitmap bits set"));
        }
        if !input.0.is_empty() {
            return Err(malformed("trailing bytes"));
        }
        Ok(KeyProof { leaf, siblings })
    }

    /// Check that `value` (or, with `None`, nothing) is stored under `key` in the tree with `root`: the same
    /// checks as `jmt`'s `SparseMerkleProof::verify`.
    pub fn verify(&self, alg: HashAlg, root: &Hash, key: KeyHash, value: Option<&[u8]>) -> Result<(), ProofError> {
        let n = self.siblings.len();
        if n > MAX_SIBLINGS {
            return Err(malformed(format!("{n} siblings")));
        }
        let rejected = |why: &str| Err(ProofError::KeyProof(why.to_string()));
        match (value, &self.leaf) {
            (Some(value), Some(leaf)) => {
                if leaf.key_hash != key.0 {
                    return rejected("the proof's leaf holds another key");
                }
                if alg.hash(value).0 != leaf.value_hash {
                    return rejected("the value does not match the leaf");
                }
            }
            (Some(_), None) => return rejected("a value was claimed but the proof shows an empty subtree"),
            (None, Some(leaf)) => {
                if leaf.key_hash == key.0 {
                    return rejected("absence was claimed but the key is present");
                }
                if common_prefix_bits(&key.0, &leaf.key_hash) < n {
                    return rejected("the key would not be under the proof's leaf");
                }
            }
            (None, None) => {}
        }
        let mut current = self.leaf.map_or(PLACEHOLDER, |l| l.hash(alg));
        for (i, sibling) in self.siblings.iter().enumerate() {
            let sibling = sibling.as_ref().unwrap_or(&PLACEHOLDER);
            current = if key_bit(&key.0, n - 1 - i) {
                internal_hash(alg, sibling, &current)
            } else {
                internal_hash(alg, &current, sibling)
            };
        }
        if current != root.0 {
            return rejected("the path does not lead to the namespace root");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use jmt::mock::MockTreeStore;
    use jmt::{JellyfishMerkleTree, SimpleHasher};
    use proptest::prelude::*;

    use super::*;
    use crate::proof::key_hash;

    /// A tree over `keys` (value = key reversed), its root and a `jmt` proof for `probe`.
    fn jmt_proof<H: SimpleHasher>(alg: HashAlg, keys: &[Vec<u8>], probe: &[u8]) -> (Hash, Option<Vec<u8>>, Vec<u8>) {
        let store = MockTreeStore::default();
        let tree = JellyfishMerkleTree::<_, H>::new(&store);
        let set: Vec<_> = keys.iter().map(|k| (key_hash(alg, k), Some(k.iter().rev().copied().collect()))).collect();
        let (root, batch) = tree.put_value_set(set, 0).unwrap();
        store.write_tree_update_batch(batch).unwrap();
        let (value, proof) = tree.get_with_proof(key_hash(alg, probe), 0).unwrap();
        // jmt's own verdict on the proof it made, for the value it returned.
        proof.verify(root, key_hash(alg, probe), value.as_deref()).unwrap();
        (Hash(root.0), value, borsh::to_vec(&proof).unwrap())
    }

    fn jmt_verdict<H: SimpleHasher>(raw: &[u8], root: &Hash, key: KeyHash, value: Option<&[u8]>) -> bool {
        let proof: jmt::proof::SparseMerkleProof<H> = borsh::from_slice(raw).unwrap();
        proof.verify(jmt::RootHash(root.0), key, value).is_ok()
    }

    fn case(alg: HashAlg, keys: &[Vec<u8>], probe: &[u8]) -> (Hash, Option<Vec<u8>>, Vec<u8>) {
        match alg {
            HashAlg::Sha256 => jmt_proof::<sha2::Sha256>(alg, keys, probe),
            HashAlg::Sm3 => jmt_proof::<sm3::Sm3>(alg, keys, probe),
        }
    }

    fn verdict(alg: HashAlg, raw: &[u8], root: &Hash, key: KeyHash, value: Option<&[u8]>) -> bool {
        match alg {
            HashAlg::Sha256 => jmt_verdict::<sha2::Sha256>(raw, root, key, value),
            HashAlg::Sm3 => jmt_verdict::<sm3::Sm3>(raw, root, key, value),
        }
    }

    fn keys_strategy() -> impl Strategy<Value = Vec<Vec<u8>>> {
        prop::collection::vec(prop::collection::vec(any::<u8>(), 1..4), 1..200)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// The compact proof says yes exactly when jmt's proof does, for the true claim and for false ones.
        #[test]
        fn compact_proofs_agree_with_jmt(keys in keys_strategy(), probe in prop::collection::vec(any::<u8>(), 1..4), sm3 in any::<bool>(), pick in any::<prop::sample::Index>()) {
            let alg = if sm3 { HashAlg::Sm3 } else { HashAlg::Sha256 };
            // Half the time probe a key that is in the tree.
            let probe = if keys.len() % 2 == 0 { keys[pick.index(keys.len())].clone() } else { probe };
            let (root, value, raw) = case(alg, &keys, &probe);
            // The layout mirror reads jmt's encoding exactly.
            let mirror: JmtProof = borsh::from_slice(&raw).unwrap();
            prop_assert_eq!(borsh::to_vec(&mirror).unwrap(), raw.clone());
            let compact = KeyProof::from_jmt_borsh(alg, &raw).unwrap();
            let bytes = compact.encode().unwrap();
            prop_assert_eq!(KeyProof::decode(&bytes).unwrap(), compact.clone());
            prop_assert!(bytes.len() <= raw.len() + 3);
            let kh = key_hash(alg, &probe);
            let other_root = alg.hash(b"another root");
            let mut forged = value.clone().unwrap_or_default();
            forged.push(1);
            let other_key = key_hash(alg, b"some other key");
            let claims: [(&Hash, KeyHash, Option<&[u8]>); 5] = [
                (&root, kh, value.as_deref()),
                (&other_root, kh, value.as_deref()),
                (&root, kh, Some(forged.as_slice())),
                (&root, kh, if value.is_some() { None } else { Some(&b"x"[..]) }),
                (&root, other_key, value.as_deref()),
            ];
            for (i, (r, k, v)) in claims.into_iter().enumerate() {
                let theirs = verdict(alg, &raw, r, k, v);
                let ours = compact.verify(alg, r, k, v).is_ok();
                prop_assert_eq!(ours, theirs, "claim {}", i);
                // Claim 4 may truly hold: another absent key on the same path is absent too.
                if i < 4 {
                    prop_assert_eq!(ours, i == 0, "claim {}", i);
                }
            }
        }

        /// Every single flipped byte of an encoded proof is refused, by the decoder or by verification.
        #[test]
        fn flipped_bytes_are_rejected(keys in keys_strategy(), sm3 in any::<bool>(), pick in any::<prop::sample::Index>(), absent in any::<bool>()) {
            let alg = if sm3 { HashAlg::Sm3 } else { HashAlg::Sha256 };
            let probe = if absent { b"not a key: too long".to_vec() } else { keys[pick.index(keys.len())].clone() };
            let (root, value, raw) = case(alg, &keys, &probe);
            let bytes = KeyProof::from_jmt_borsh(alg, &raw).unwrap().encode().unwrap();
            let kh = key_hash(alg, &probe);
            KeyProof::decode(&bytes).unwrap().verify(alg, &root, kh, value.as_deref()).unwrap();
            for i in 0..bytes.len() {
                for flip in [0x01u8, 0x80, 0xff] {
                    let mut bad = bytes.clone();
                    bad[i] ^= flip;
                    let accepted = KeyProof::decode(&bad).and_then(|p| p.verify(alg, &root, kh, value.as_deref())).is_ok();
                    prop_assert!(!accepted, "byte {} ^ {:#x} accepted", i, flip);
                }
            }
            let mut longer = bytes.clone();
            longer.push(0);
            prop_assert!(KeyProof::decode(&longer).is_err());
            prop_assert!(KeyProof::decode(&bytes[..bytes.len() - 1]).is_err());
        }

        /// Whatever decodes re-encodes to the same bytes (one encoding per proof), and nothing panics.
        #[test]
        fn decoding_is_canonical(bytes in prop::collection::vec(any::<u8>(), 0..300), head in 0u8..4) {
            let mut bytes = bytes;
            if let Some(b) = bytes.first_mut() { *b = if head < 3 { KEY_PROOF_VERSION } else { *b }; }
            if let Ok(p) = KeyProof::decode(&bytes) {
                prop_assert_eq!(p.encode().unwrap(), bytes);
            }
        }
    }

    #[test]
    fn old_format_and_explicit_placeholders_are_refused() {
        let alg = HashAlg::Sha256;
        let keys: Vec<Vec<u8>> = (0u8..50).map(|i| vec![i]).collect();
        let (_, _, raw) = case(alg, &keys, &[7]);
        // A version-1 (raw jmt) proof is an unknown version, not something misread.
        assert!(matches!(KeyProof::decode(&raw), Err(ProofError::Malformed(m)) if m.contains("unknown version")));
        let p = KeyProof { leaf: None, siblings: vec![Some(PLACEHOLDER)] };
        assert!(p.encode().is_err());
        let mut bytes = KeyProof { leaf: None, siblings: vec![Some([7; 32])] }.encode().unwrap();
        bytes[5..].copy_from_slice(&PLACEHOLDER);
        assert!(KeyProof::decode(&bytes).is_err());
        let too_many = KeyProof { leaf: None, siblings: vec![None; MAX_SIBLINGS + 1] };
        assert!(too_many.encode().is_err());
        assert!(too_many.verify(alg, &Hash(PLACEHOLDER), key_hash(alg, b"k"), None).is_err());
    }

    #[test]
    fn key_bits_and_prefixes() {
        let mut a = [0u8; 32];
        a[0] = 0b1000_0000;
        assert!(key_bit(&a, 0) && !key_bit(&a, 1));
        let mut b = a;
        b[1] = 0b0010_0000;
        assert_eq!(common_prefix_bits(&a, &b), 10);
        assert_eq!(common_prefix_bits(&a, &a), 256);
    }
}
