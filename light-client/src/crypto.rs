//! Signature suites behind one small interface: ed25519 (default), SM2 with SM3 (GB/T 32918), ECDSA secp256k1.
//!
//! A key and a signature carry their suite, so a verifier never guesses. Every signature is domain-separated:
//! the signed bytes are `"causeway/v1" ‖ len(chain id) ‖ chain id ‖ kind ‖ message` ([`sign_bytes`]), so a
//! signature made for one chain or one message kind is worthless on another. Adding a suite touches this module
//! only.

use borsh::{BorshDeserialize, BorshSerialize};
use ed25519_dalek::{Signer as _, Verifier as _};
use serde::{Deserialize, Serialize};

use crate::hash::{Hash, HashAlg};

/// The SM2 distinguishing identifier used by every Causeway key (the GB/T 32918 default).
pub const SM2_DIST_ID: &str = "1234567812345678";

/// Why a key or signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    /// Key bytes do not form a valid key of the suite.
    #[error("invalid {suite:?} key: {reason}")]
    InvalidKey {
        /// Suite of the key.
        suite: Suite,
        /// Why.
        reason: String,
    },
    /// An ed25519 key of small order: anyone can forge signatures under it.
    #[error("weak ed25519 key (small order) refused")]
    WeakKey,
    /// The signature's suite differs from the key's.
    #[error("signature suite {sig:?} does not match key suite {key:?}")]
    SuiteMismatch {
        /// The key's suite.
        key: Suite,
        /// The signature's suite.
        sig: Suite,
    },
    /// The signature does not verify.
    #[error("bad signature")]
    BadSignature,
    /// In a batch, the signature at this index does not verify.
    #[error("bad signature at index {0} of the batch")]
    BadSignatureAt(usize),
}

/// A signature suite.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, BorshSerialize,
    BorshDeserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Suite {
    /// Ed25519 (RFC 8032), verified strictly; batch verification for many signatures.
    Ed25519,
    /// SM2 signatures over SM3 digests (GB/T 32918.2), distinguishing id [`SM2_DIST_ID`].
    Sm2,
    /// ECDSA over secp256k1 with SHA-256, low-S only.
    Secp256k1,
}

impl Suite {
    /// All suites.
    pub const ALL: [Suite; 3] = [Suite::Ed25519, Suite::Sm2, Suite::Secp256k1];

    /// The hash that derives addresses of this suite's keys: SM3 for SM2 keys, SHA-256 otherwise.
    pub fn address_hash(self) -> HashAlg {
        match self {
            Suite::Sm2 => HashAlg::Sm3,
            _ => HashAlg::Sha256,
        }
    }
}

impl std::str::FromStr for Suite {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "ed25519" => Ok(Suite::Ed25519),
            "sm2" | "sm2sm3" | "sm2-sm3" => Ok(Suite::Sm2),
            "secp256k1" | "k256" => Ok(Suite::Secp256k1),
            other => Err(format!("unknown suite {other:?} (expected ed25519, sm2 or secp256k1)")),
        }
    }
}

/// What a signature is for; part of the domain separation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum SignKind {
    /// A transaction envelope.
    Tx = 1,
    /// A consensus proposal.
    Proposal = 2,
    /// A prevote.
    Prevote = 3,
    /// A precommit (what commit certificates carry).
    Precommit = 4,
    /// A peer handshake or other node-level statement.
    Node = 5,
}

/// The exact bytes a key signs for `message` of `kind` on `chain_id`.
pub fn sign_bytes(chain_id: &str, kind: SignKind, message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + chain_id.len() + message.len());
    out.extend_from_slice(b"causeway/v1");
    // Chain ids are at most 64 bytes (types::ChainId), so one length byte is enough; clamp defensively.
    let id = &chain_id.as_bytes()[..chain_id.len().min(255)];
    out.push(id.len() as u8);
    out.extend_from_slice(id);
    out.push(kind as u8);
    out.extend_from_slice(message);
    out
}

/// A public key, tagged with its suite. Encoded compressed where the curve allows.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, BorshSerialize, BorshDeserialize)]
pub enum PublicKey {
    /// 32-byte ed25519 point.
    Ed25519([u8; 32]),
    /// 33-byte compressed SM2 point.
    Sm2([u8; 33]),
    /// 33-byte compressed secp256k1 point.
    Secp256k1([u8; 33]),
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}:{}", self.suite(), &hex::encode(self.as_bytes())[..12])
    }
}

/// A 20-byte account or validator address: `hash(suite tag ‖ public key)[..20]`.
#[derive(
    Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, BorshSerialize, BorshDeserialize,
)]
pub struct Address(pub [u8; 20]);

impl Address {
    /// Lower-case hex.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
    /// Parse 40 hex digits (an optional `0x` prefix is allowed).
    pub fn from_hex(s: &str) -> Result<Self, hex::FromHexError> {
        let mut out = [0u8; 20];
        hex::decode_to_slice(s.trim_start_matches("0x"), &mut out)?;
        Ok(Address(out))
    }
}

impl std::fmt::Debug for Address {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", &self.to_hex()[..10])
    }
}

impl std::fmt::Display for Address {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl Serialize for Address {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for Address {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <String as Deserialize>::deserialize(d)?;
        Address::from_hex(&s).map_err(serde::de::Error::custom)
    }
}

impl PublicKey {
    /// The key's suite.
    pub fn suite(&self) -> Suite {
        match self {
            PublicKey::Ed25519(_) => Suite::Ed25519,
            PublicKey::Sm2(_) => Suite::Sm2,
            PublicKey::Secp256k1(_) => Suite::Secp256k1,
        }
    }

    /// The raw key bytes (without suite tag).
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            PublicKey::Ed25519(b) => b,
            PublicKey::Sm2(b) => b,
            PublicKey::Secp256k1(b) => b,
        }
    }

    /// Build a key of `suite` from raw bytes, checking that they form a valid point.
    pub fn from_bytes(suite: Suite, bytes: &[u8]) -> Result<Self, CryptoError> {
        let invalid = |reason: &str| CryptoError::InvalidKey { suite, reason: reason.to_string() };
        let key = match suite {
            Suite::Ed25519 => PublicKey::Ed25519(bytes.try_into().map_err(|_| invalid("expected 32 bytes"))?),
            Suite::Sm2 => PublicKey::Sm2(bytes.try_into().map_err(|_| invalid("expected 33 bytes"))?),
            Suite::Secp256k1 => {
                PublicKey::Secp256k1(bytes.try_into().map_err(|_| invalid("expected 33 bytes"))?)
            }
        };
        key.validate()?;
        Ok(key)
    }

    /// Check that the bytes are a valid point of the suite; ed25519 keys of small order are refused.
    pub fn validate(&self) -> Result<(), CryptoError> {
        match self {
            PublicKey::Ed25519(b) => {
                let vk = ed25519_dalek::VerifyingKey::from_bytes(b)
                    .map_err(|e| CryptoError::InvalidKey { suite: Suite::Ed25519, reason: e.to_string() })?;
                if vk.is_weak() {
                    return Err(CryptoError::WeakKey);
                }
                Ok(())
            }
            PublicKey::Sm2(b) => sm2_verifying_key(b).map(|_| ()),
            PublicKey::Secp256k1(b) => k256::ecdsa::VerifyingKey::from_sec1_bytes(b)
                .map(|_| ())
                .map_err(|e| CryptoError::InvalidKey { suite: Suite::Secp256k1, reason: e.to_string() }),
        }
    }

    /// The key's address.
    pub fn address(&self) -> Address {
        let alg = self.suite().address_hash();
        let tag = [self.suite() as u8];
        let digest = alg.hash_parts(&[&tag, self.as_bytes()]);
        let mut out = [0u8; 20];
        out.copy_from_slice(&digest.0[..20]);
        Address(out)
    }

    /// Verify one signature over `sign_bytes(chain_id, kind, message)`.
    pub fn verify(&self, chain_id: &str, kind: SignKind, message: &[u8], sig: &Signature) -> Result<(), CryptoError> {
        self.verify_raw(&sign_bytes(chain_id, kind, message), sig)
    }

    /// Verify one signature over already domain-separated bytes.
    pub fn verify_raw(&self, signed: &[u8], sig: &Signature) -> Result<(), CryptoError> {
        match (self, sig) {
            (PublicKey::Ed25519(k), Signature::Ed25519(s)) => {
                let vk = ed25519_dalek::VerifyingKey::from_bytes(k).map_err(|_| CryptoError::BadSignature)?;
                vk.verify_strict(signed, &ed25519_dalek::Signature::from_bytes(s))
                    .map_err(|_| CryptoError::BadSignature)
            }
            (PublicKey::Sm2(k), Signature::Sm2(s)) => {
                let vk = sm2_verifying_key(k)?;
                let sig = sm2::dsa::Signature::from_slice(s).map_err(|_| CryptoError::BadSignature)?;
                vk.verify(signed, &sig).map_err(|_| CryptoError::BadSignature)
            }
            (PublicKey::Secp256k1(k), Signature::Secp256k1(s)) => {
                let vk = k256::ecdsa::VerifyingKey::from_sec1_bytes(k).map_err(|_| CryptoError::BadSignature)?;
                let sig = k256::ecdsa::Signature::from_slice(s).map_err(|_| CryptoError::BadSignature)?;
                // k256 refuses high-S signatures, so a signature cannot be malleated into a second valid one.
                k256::ecdsa::signature::Verifier::verify(&vk, signed, &sig).map_err(|_| CryptoError::BadSignature)
            }
            (key, sig) => Err(CryptoError::SuiteMismatch { key: key.suite(), sig: sig.suite() }),
        }
    }
}

/// JSON shape of keys and signatures: `{"suite": "ed25519", "hex": "…"}`.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TaggedHex {
    suite: Suite,
    hex: String,
}

impl Serialize for PublicKey {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        TaggedHex { suite: self.suite(), hex: hex::encode(self.as_bytes()) }.serialize(s)
    }
}

impl<'de> Deserialize<'de> for PublicKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let t = TaggedHex::deserialize(d)?;
        let bytes = hex::decode(t.hex.trim_start_matches("0x")).map_err(serde::de::Error::custom)?;
        PublicKey::from_bytes(t.suite, &bytes).map_err(serde::de::Error::custom)
    }
}

impl Serialize for Signature {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        TaggedHex { suite: self.suite(), hex: hex::encode(self.as_bytes()) }.serialize(s)
    }
}

impl<'de> Deserialize<'de> for Signature {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let t = TaggedHex::deserialize(d)?;
        let mut b = [0u8; 64];
        hex::decode_to_slice(t.hex.trim_start_matches("0x"), &mut b).map_err(serde::de::Error::custom)?;
        Ok(match t.suite {
            Suite::Ed25519 => Signature::Ed25519(b),
            Suite::Sm2 => Signature::Sm2(b),
            Suite::Secp256k1 => Signature::Secp256k1(b),
        })
    }
}

fn sm2_verifying_key(bytes: &[u8; 33]) -> Result<sm2::dsa::VerifyingKey, CryptoError> {
    sm2::dsa::VerifyingKey::from_sec1_bytes(SM2_DIST_ID, bytes)
        .map_err(|e| CryptoError::InvalidKey { suite: Suite::Sm2, reason: e.to_string() })
}

/// A signature, tagged with its suite. All three suites produce 64 bytes (r ‖ s, or R ‖ S for ed25519).
#[derive(Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum Signature {
    /// Ed25519.
    Ed25519([u8; 64]),
    /// SM2.
    Sm2([u8; 64]),
    /// ECDSA secp256k1.
    Secp256k1([u8; 64]),
}

impl std::fmt::Debug for Signature {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Sig({:?}:{})", self.suite(), &hex::encode(self.as_bytes())[..12])
    }
}

impl Signature {
    /// The signature's suite.
    pub fn suite(&self) -> Suite {
        match self {
            Signature::Ed25519(_) => Suite::Ed25519,
            Signature::Sm2(_) => Suite::Sm2,
            Signature::Secp256k1(_) => Suite::Secp256k1,
        }
    }
    /// The 64 signature bytes.
    pub fn as_bytes(&self) -> &[u8; 64] {
        match self {
            Signature::Ed25519(b) | Signature::Sm2(b) | Signature::Secp256k1(b) => b,
        }
    }
}

/// A private key of any suite. Its `Debug` output never shows the secret.
#[derive(Clone)]
pub enum SecretKey {
    /// Ed25519 signing key.
    Ed25519(ed25519_dalek::SigningKey),
    /// SM2 signing key.
    Sm2(Box<sm2::dsa::SigningKey>),
    /// secp256k1 signing key.
    Secp256k1(k256::ecdsa::SigningKey),
}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecretKey({:?})", self.public_key())
    }
}

impl SecretKey {
    /// A fresh key from the operating system's randomness.
    pub fn generate(suite: Suite) -> Self {
        Self::generate_with(suite, &mut rand_core::OsRng)
    }

    /// A key drawn from `rng` (seeded generators give reproducible keys for tests and simulations).
    pub fn generate_with<R: rand_core::RngCore + rand_core::CryptoRng>(suite: Suite, rng: &mut R) -> Self {
        loop {
            let mut seed = [0u8; 32];
            rng.fill_bytes(&mut seed);
            // Out-of-range scalars (probability ~2^-128) are simply redrawn.
            if let Ok(key) = Self::from_bytes(suite, &seed) {
                return key;
            }
        }
    }

    /// Rebuild a key from its 32 secret bytes.
    pub fn from_bytes(suite: Suite, bytes: &[u8]) -> Result<Self, CryptoError> {
        let invalid = |reason: String| CryptoError::InvalidKey { suite, reason };
        let arr: [u8; 32] = bytes.try_into().map_err(|_| invalid("expected 32 secret bytes".into()))?;
        Ok(match suite {
            Suite::Ed25519 => SecretKey::Ed25519(ed25519_dalek::SigningKey::from_bytes(&arr)),
            Suite::Sm2 => SecretKey::Sm2(Box::new(
                sm2::dsa::SigningKey::from_slice(SM2_DIST_ID, &arr).map_err(|e| invalid(e.to_string()))?,
            )),
            Suite::Secp256k1 => SecretKey::Secp256k1(
                k256::ecdsa::SigningKey::from_slice(&arr).map_err(|e| invalid(e.to_string()))?,
            ),
        })
    }

    /// The 32 secret bytes (handle with care).
    pub fn to_bytes(&self) -> [u8; 32] {
        match self {
            SecretKey::Ed25519(k) => k.to_bytes(),
            SecretKey::Sm2(k) => k.to_bytes().into(),
            SecretKey::Secp256k1(k) => k.to_bytes().into(),
        }
    }

    /// The key's suite.
    pub fn suite(&self) -> Suite {
        match self {
            SecretKey::Ed25519(_) => Suite::Ed25519,
            SecretKey::Sm2(_) => Suite::Sm2,
            SecretKey::Secp256k1(_) => Suite::Secp256k1,
        }
    }

    /// The matching public key.
    pub fn public_key(&self) -> PublicKey {
        use k256::elliptic_curve::sec1::ToEncodedPoint as _;
        match self {
            SecretKey::Ed25519(k) => PublicKey::Ed25519(k.verifying_key().to_bytes()),
            SecretKey::Sm2(k) => {
                let point = k.verifying_key().as_affine().to_encoded_point(true);
                let mut out = [0u8; 33];
                out.copy_from_slice(point.as_bytes());
                PublicKey::Sm2(out)
            }
            SecretKey::Secp256k1(k) => {
                let point = k.verifying_key().to_encoded_point(true);
                let mut out = [0u8; 33];
                out.copy_from_slice(point.as_bytes());
                PublicKey::Secp256k1(out)
            }
        }
    }

    /// Sign `message` of `kind` for `chain_id`.
    pub fn sign(&self, chain_id: &str, kind: SignKind, message: &[u8]) -> Signature {
        self.sign_raw(&sign_bytes(chain_id, kind, message))
    }

    /// Sign already domain-separated bytes.
    pub fn sign_raw(&self, signed: &[u8]) -> Signature {
        match self {
            SecretKey::Ed25519(k) => Signature::Ed25519(k.sign(signed).to_bytes()),
            SecretKey::Sm2(k) => {
                let sig: sm2::dsa::Signature = sm2::dsa::signature::Signer::sign(k.as_ref(), signed);
                let mut out = [0u8; 64];
                out.copy_from_slice(&sig.to_bytes());
                Signature::Sm2(out)
            }
            SecretKey::Secp256k1(k) => {
                let sig: k256::ecdsa::Signature = k256::ecdsa::signature::Signer::sign(k, signed);
                let sig = sig.normalize_s().unwrap_or(sig);
                let mut out = [0u8; 64];
                out.copy_from_slice(&sig.to_bytes());
                Signature::Secp256k1(out)
            }
        }
    }
}

/// One item of a batch: key, the exact signed bytes, signature.
pub type BatchItem<'a> = (&'a PublicKey, &'a [u8], &'a Signature);

/// Verify many signatures at once. Ed25519 signatures are checked together with ed25519-dalek's batch
/// verification (several times faster per signature than one by one); other suites one by one. On failure the
/// index of a bad signature is reported.
///
/// Batch verification does not check for weak ed25519 keys: callers admit keys through [`PublicKey::validate`]
/// (validator sets, account registration) before their signatures reach a batch.
pub fn verify_batch(items: &[BatchItem<'_>]) -> Result<(), CryptoError> {
    let mut ed_msgs: Vec<&[u8]> = Vec::new();
    let mut ed_sigs = Vec::new();
    let mut ed_keys = Vec::new();
    let mut ed_index = Vec::new();
    for (i, (key, msg, sig)) in items.iter().enumerate() {
        match (key, sig) {
            (PublicKey::Ed25519(k), Signature::Ed25519(s)) => {
                let vk = ed25519_dalek::VerifyingKey::from_bytes(k).map_err(|_| CryptoError::BadSignatureAt(i))?;
                ed_keys.push(vk);
                ed_sigs.push(ed25519_dalek::Signature::from_bytes(s));
                ed_msgs.push(msg);
                ed_index.push(i);
            }
            _ => key.verify_raw(msg, sig).map_err(|e| match e {
                CryptoError::BadSignature => CryptoError::BadSignatureAt(i),
                other => other,
            })?,
        }
    }
    if ed_keys.len() == 1 {
        return items[ed_index[0]].0.verify_raw(ed_msgs[0], items[ed_index[0]].2).map_err(|_| {
            CryptoError::BadSignatureAt(ed_index[0])
        });
    }
    if !ed_keys.is_empty() && ed25519_dalek::verify_batch(&ed_msgs, &ed_sigs, &ed_keys).is_err() {
        // Find the culprit so the caller can drop exactly that item.
        for (j, &i) in ed_index.iter().enumerate() {
            if ed_keys[j].verify_strict(ed_msgs[j], &ed_sigs[j]).is_err() {
                return Err(CryptoError::BadSignatureAt(i));
            }
        }
        // Batch and strict verification can disagree only on non-canonical edge cases; refuse them.
        return Err(CryptoError::BadSignature);
    }
    Ok(())
}

/// Hash of a public key set member for commitments (validator sets), with the chain's hash.
pub fn key_digest(alg: HashAlg, key: &PublicKey) -> Hash {
    alg.hash_parts(&[&[key.suite() as u8], key.as_bytes()])
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::rand_core::SeedableRng;

    fn rng() -> rand_chacha::ChaCha20Rng {
        rand_chacha::ChaCha20Rng::seed_from_u64(7)
    }

    #[test]
    fn every_suite_signs_and_verifies_with_domain_separation() {
        let mut rng = rng();
        for suite in Suite::ALL {
            let sk = SecretKey::generate_with(suite, &mut rng);
            let pk = sk.public_key();
            pk.validate().unwrap();
            let sig = sk.sign("alpha", SignKind::Tx, b"hello");
            assert_eq!(sig.suite(), suite);
            pk.verify("alpha", SignKind::Tx, b"hello", &sig).unwrap();
            assert_eq!(pk.verify("beta", SignKind::Tx, b"hello", &sig), Err(CryptoError::BadSignature));
            assert_eq!(pk.verify("alpha", SignKind::Precommit, b"hello", &sig), Err(CryptoError::BadSignature));
            assert_eq!(pk.verify("alpha", SignKind::Tx, b"hellO", &sig), Err(CryptoError::BadSignature));
            let back = SecretKey::from_bytes(suite, &sk.to_bytes()).unwrap();
            assert_eq!(back.public_key(), pk);
        }
    }

    #[test]
    fn suites_do_not_mix() {
        let mut rng = rng();
        let ed = SecretKey::generate_with(Suite::Ed25519, &mut rng);
        let sm = SecretKey::generate_with(Suite::Sm2, &mut rng);
        let sig = sm.sign("c", SignKind::Tx, b"m");
        assert!(matches!(ed.public_key().verify("c", SignKind::Tx, b"m", &sig), Err(CryptoError::SuiteMismatch { .. })));
    }

    #[test]
    fn batch_reports_the_bad_index() {
        let mut rng = rng();
        let keys: Vec<_> = (0..8).map(|i| SecretKey::generate_with(Suite::ALL[i % 3], &mut rng)).collect();
        let pks: Vec<_> = keys.iter().map(|k| k.public_key()).collect();
        let msgs: Vec<Vec<u8>> = (0..8u8).map(|i| sign_bytes("c", SignKind::Tx, &[i])).collect();
        let mut sigs: Vec<_> = keys.iter().zip(&msgs).map(|(k, m)| k.sign_raw(m)).collect();
        let items: Vec<BatchItem<'_>> = (0..8).map(|i| (&pks[i], msgs[i].as_slice(), &sigs[i])).collect();
        verify_batch(&items).unwrap();
        // Corrupt an ed25519 signature (index 3 is ed25519: 3 % 3 == 0).
        if let Signature::Ed25519(b) = &mut sigs[3] {
            b[5] ^= 1;
        }
        let items: Vec<BatchItem<'_>> = (0..8).map(|i| (&pks[i], msgs[i].as_slice(), &sigs[i])).collect();
        assert_eq!(verify_batch(&items), Err(CryptoError::BadSignatureAt(3)));
    }

    #[test]
    fn weak_ed25519_keys_are_refused() {
        // The identity point encodes as 0x01 followed by zeros: small order.
        let mut weak = [0u8; 32];
        weak[0] = 1;
        assert_eq!(PublicKey::from_bytes(Suite::Ed25519, &weak), Err(CryptoError::WeakKey));
    }

    #[test]
    fn garbage_keys_are_errors_not_panics() {
        for suite in Suite::ALL {
            assert!(PublicKey::from_bytes(suite, &[0xff; 33]).is_err());
            assert!(PublicKey::from_bytes(suite, &[]).is_err());
            assert!(SecretKey::from_bytes(suite, &[0u8; 5]).is_err());
        }
    }
}
