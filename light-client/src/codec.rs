//! The one canonical, versioned binary encoding of everything that is hashed or signed.
//!
//! Encoding = one version byte ([`CODEC_VERSION`]) followed by the value's Borsh encoding. Borsh is canonical (one
//! byte string per value: fixed-width little-endian integers, length-prefixed sequences, tagged enums) and its
//! decoder refuses trailing bytes, bad tags, non-UTF-8 strings and truncated input; on top of it every type sets a
//! size limit and may validate its fields after decoding. Decoding never panics.

use borsh::{BorshDeserialize, BorshSerialize};

/// The only encoding version this build reads and writes.
pub const CODEC_VERSION: u8 = 1;

/// Why bytes could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    /// The input was empty: not even a version byte.
    #[error("empty input")]
    Empty,
    /// The leading version byte is not one this build understands.
    #[error("unknown encoding version {0} (this build reads version {CODEC_VERSION})")]
    UnknownVersion(u8),
    /// The input is longer than the type allows.
    #[error("{kind} of {len} bytes exceeds the limit of {max} bytes")]
    TooLong {
        /// The type being decoded.
        kind: &'static str,
        /// Length of the input.
        len: usize,
        /// The type's limit.
        max: usize,
    },
    /// The bytes are not a valid encoding (truncated, trailing bytes, bad tag, bad UTF-8…).
    #[error("malformed {kind}: {reason}")]
    Malformed {
        /// The type being decoded.
        kind: &'static str,
        /// What the decoder objected to.
        reason: String,
    },
    /// The encoding was well formed but a field breaks the type's rules.
    #[error("invalid {kind}: {reason}")]
    Invalid {
        /// The type being decoded.
        kind: &'static str,
        /// The broken rule.
        reason: String,
    },
}

/// A type with a canonical encoding.
pub trait Canonical: BorshSerialize + BorshDeserialize + Sized {
    /// Human name used in errors.
    const KIND: &'static str;
    /// Largest accepted encoding, version byte included.
    const MAX_LEN: usize;

    /// Field rules beyond what the encoding itself enforces. Called after every decode.
    fn validate(&self) -> Result<(), CodecError> {
        Ok(())
    }

    /// The canonical bytes: version byte then Borsh.
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64);
        out.push(CODEC_VERSION);
        // Writing into a Vec cannot fail.
        let _ = BorshSerialize::serialize(self, &mut out);
        out
    }

    /// Decode canonical bytes, rejecting anything that is not exactly one valid value.
    fn decode(bytes: &[u8]) -> Result<Self, CodecError> {
        if bytes.len() > Self::MAX_LEN {
            return Err(CodecError::TooLong { kind: Self::KIND, len: bytes.len(), max: Self::MAX_LEN });
        }
        let (&version, body) = bytes.split_first().ok_or(CodecError::Empty)?;
        if version != CODEC_VERSION {
            return Err(CodecError::UnknownVersion(version));
        }
        let value: Self = borsh::from_slice(body)
            .map_err(|e| CodecError::Malformed { kind: Self::KIND, reason: e.to_string() })?;
        value.validate()?;
        Ok(value)
    }
}

/// Encode a value with Borsh alone (no version byte), for pieces that are always embedded in a versioned whole.
pub fn to_borsh<T: BorshSerialize>(value: &T) -> Vec<u8> {
    let mut out = Vec::new();
    let _ = value.serialize(&mut out);
    out
}

/// Serde helper: fixed-size byte arrays as hex strings.
pub mod hex_array {
    use serde::{Deserialize, Deserializer, Serializer};

    /// Serialize as lower-case hex.
    pub fn serialize<S: Serializer, const N: usize>(bytes: &[u8; N], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(bytes))
    }

    /// Parse hex of exactly `N` bytes (an optional `0x` prefix is allowed).
    pub fn deserialize<'de, D: Deserializer<'de>, const N: usize>(d: D) -> Result<[u8; N], D::Error> {
        let s = <String as Deserialize>::deserialize(d)?;
        let mut out = [0u8; N];
        hex::decode_to_slice(s.trim_start_matches("0x"), &mut out).map_err(serde::de::Error::custom)?;
        Ok(out)
    }
}
