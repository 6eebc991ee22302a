//! Hash functions a chain may fix at genesis: SHA-256 (default) or SM3 (GB/T 32905).

use serde::{Deserialize, Serialize};
use sha2::Digest;

/// A 32-byte digest.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, borsh::BorshSerialize, borsh::BorshDeserialize)]
pub struct Hash(pub [u8; 32]);

impl Hash {
    /// The all-zero hash, used where no parent exists (genesis).
    pub const ZERO: Hash = Hash([0u8; 32]);

    /// The bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Lower-case hex.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parse 64 hex digits.
    pub fn from_hex(s: &str) -> Result<Self, hex::FromHexError> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(s.trim_start_matches("0x"), &mut out)?;
        Ok(Hash(out))
    }
}

impl std::fmt::Debug for Hash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", &self.to_hex()[..16])
    }
}

impl std::fmt::Display for Hash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl Serialize for Hash {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for Hash {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <String as Deserialize>::deserialize(d)?;
        Hash::from_hex(&s).map_err(serde::de::Error::custom)
    }
}

/// Which hash function a chain uses for headers, transactions and state.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, Default, Serialize, Deserialize, borsh::BorshSerialize,
    borsh::BorshDeserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum HashAlg {
    /// SHA-256 (FIPS 180-4).
    #[default]
    Sha256,
    /// SM3 (GB/T 32905-2016).
    Sm3,
}

impl HashAlg {
    /// Digest of `data`.
    pub fn hash(self, data: &[u8]) -> Hash {
        match self {
            HashAlg::Sha256 => Hash(sha2::Sha256::digest(data).into()),
            HashAlg::Sm3 => Hash(sm3::Sm3::digest(data).into()),
        }
    }

    /// Digest of several parts, as if concatenated.
    pub fn hash_parts(self, parts: &[&[u8]]) -> Hash {
        match self {
            HashAlg::Sha256 => {
                let mut h = sha2::Sha256::new();
                parts.iter().for_each(|p| h.update(p));
                Hash(h.finalize().into())
            }
            HashAlg::Sm3 => {
                let mut h = sm3::Sm3::new();
                parts.iter().for_each(|p| h.update(p));
                Hash(h.finalize().into())
            }
        }
    }
}

/// rs_merkle hasher for SHA-256.
#[derive(Clone)]
pub struct Sha256Merkle;

impl rs_merkle::Hasher for Sha256Merkle {
    type Hash = [u8; 32];
    fn hash(data: &[u8]) -> [u8; 32] {
        sha2::Sha256::digest(data).into()
    }
}

/// rs_merkle hasher for SM3.
#[derive(Clone)]
pub struct Sm3Merkle;

impl rs_merkle::Hasher for Sm3Merkle {
    type Hash = [u8; 32];
    fn hash(data: &[u8]) -> [u8; 32] {
        sm3::Sm3::digest(data).into()
    }
}

/// Root of a binary Merkle tree (rs_merkle) over leaf hashes, with the chain's hash function.
/// The empty list has the root `hash("causeway/empty")`.
pub fn merkle_root(alg: HashAlg, leaves: &[[u8; 32]]) -> Hash {
    if leaves.is_empty() {
        return alg.hash(b"causeway/empty");
    }
    let root = match alg {
        HashAlg::Sha256 => rs_merkle::MerkleTree::<Sha256Merkle>::from_leaves(leaves).root(),
        HashAlg::Sm3 => rs_merkle::MerkleTree::<Sm3Merkle>::from_leaves(leaves).root(),
    };
    // A non-empty tree always has a root.
    Hash(root.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sm3_matches_the_standard_vector() {
        // GB/T 32905-2016 Appendix A, example 1: "abc".
        assert_eq!(
            HashAlg::Sm3.hash(b"abc").to_hex(),
            "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"
        );
    }

    #[test]
    fn parts_equal_concatenation() {
        for alg in [HashAlg::Sha256, HashAlg::Sm3] {
            assert_eq!(alg.hash_parts(&[b"ab", b"c"]), alg.hash(b"abc"));
        }
    }

    #[test]
    fn hex_round_trip() {
        let h = HashAlg::Sha256.hash(b"x");
        assert_eq!(Hash::from_hex(&h.to_hex()).unwrap(), h);
        assert!(Hash::from_hex("zz").is_err());
    }
}
