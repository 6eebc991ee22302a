//! The chain's canonical data types: what headers, blocks and commit certificates contain, and how they hash.
//!
//! Every chain in an alliance (the hub and each member) uses these types; light clients verify them.

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

use crate::codec::{to_borsh, Canonical, CodecError};
use crate::crypto::{Address, CryptoError, PublicKey, SignKind, Signature};
use crate::hash::{merkle_root, Hash, HashAlg};

/// Largest number of validators a set may hold.
pub const MAX_VALIDATORS: usize = 1_000;
/// Largest total voting power (keeps every power sum far from overflow).
pub const MAX_TOTAL_POWER: u64 = u64::MAX / 1024;

fn valid_name(s: &str, max: usize, extra: &[char]) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || extra.contains(&c))
}

macro_rules! checked_string {
    ($(#[$doc:meta])* $name:ident, $kind:literal, $max:expr, $extra:expr, $rule:literal) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, BorshSerialize, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Check and wrap.
            pub fn new(s: impl Into<String>) -> Result<Self, CodecError> {
                let s = s.into();
                if valid_name(&s, $max, $extra) {
                    Ok(Self(s))
                } else {
                    Err(CodecError::Invalid { kind: $kind, reason: format!("{s:?}: {}", $rule) })
                }
            }
            /// The string.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl std::str::FromStr for $name {
            type Err = CodecError;
            fn from_str(s: &str) -> Result<Self, CodecError> {
                Self::new(s)
            }
        }

        impl BorshDeserialize for $name {
            fn deserialize_reader<R: std::io::Read>(reader: &mut R) -> std::io::Result<Self> {
                let s = String::deserialize_reader(reader)?;
                Self::new(s).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()))
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                Self::new(<String as Deserialize>::deserialize(d)?).map_err(serde::de::Error::custom)
            }
        }
    };
}

checked_string!(
    /// A chain's identifier: 1–64 characters of `a-z 0-9 - _ .`.
    ChainId, "chain id", 64, &['_', '.'], "a chain id is 1-64 characters of a-z 0-9 - _ ."
);

checked_string!(
    /// A state namespace (an application, an organisation, an asset class): 1–64 characters of
    /// `a-z 0-9 - _ . / :`. Each namespace has its own Merkle tree.
    Namespace, "namespace", 64, &['_', '.', '/', ':'], "a namespace is 1-64 characters of a-z 0-9 - _ . / :"
);

/// A point in time: nanoseconds since the Unix epoch (UTC). Always passed in, never read from a clock here.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    BorshSerialize,
    BorshDeserialize,
    Serialize,
    Deserialize,
)]
#[serde(transparent)]
pub struct Time(pub u64);

impl Time {
    /// From whole seconds.
    pub fn from_secs(s: u64) -> Self {
        Time(s.saturating_mul(1_000_000_000))
    }
    /// Whole seconds.
    pub fn as_secs(self) -> u64 {
        self.0 / 1_000_000_000
    }
    /// `self + d`, saturating.
    pub fn plus(self, d: std::time::Duration) -> Self {
        Time(
            self.0
                .saturating_add(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)),
        )
    }
}

/// One validator: its key, derived address and voting power.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Validator {
    /// Consensus key.
    pub pub_key: PublicKey,
    /// Voting power (> 0).
    pub power: u64,
}

impl Validator {
    /// The validator's address.
    pub fn address(&self) -> Address {
        self.pub_key.address()
    }
}

/// A validator set, ordered by address, with no duplicate address and positive powers.
///
/// Every way of obtaining one checks it: [`ValidatorSet::new`], Borsh decoding (which also requires the canonical
/// address order) and JSON (which sorts like `new`). In particular every key has been validated, so ed25519 keys of
/// small order never reach batch verification (which does not check for them).
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, Serialize)]
pub struct ValidatorSet {
    validators: Vec<Validator>,
}

/// Why a validator set was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidatorSetError {
    /// No validators.
    #[error("empty validator set")]
    Empty,
    /// Too many validators.
    #[error("{0} validators exceed the limit of {MAX_VALIDATORS}")]
    TooMany(usize),
    /// A validator with zero power.
    #[error("validator {0} has zero voting power")]
    ZeroPower(Address),
    /// Two validators with one address.
    #[error("duplicate validator {0}")]
    Duplicate(Address),
    /// Total power above [`MAX_TOTAL_POWER`].
    #[error("total voting power exceeds {MAX_TOTAL_POWER}")]
    PowerOverflow,
    /// A key is not a valid (or is a weak) key.
    #[error("validator key: {0}")]
    Key(#[from] CryptoError),
    /// An encoded set is not in strictly increasing address order (at this address).
    #[error("validators not in address order at {0}")]
    Unordered(Address),
}

impl ValidatorSet {
    /// Check and sort a list of validators.
    pub fn new(mut validators: Vec<Validator>) -> Result<Self, ValidatorSetError> {
        if validators.len() > MAX_VALIDATORS {
            return Err(ValidatorSetError::TooMany(validators.len()));
        }
        validators.sort_by_cached_key(|v| v.address());
        Self::from_ordered(validators)
    }

    /// Check a list that must already be in strictly increasing address order (what a canonical encoding holds).
    fn from_ordered(validators: Vec<Validator>) -> Result<Self, ValidatorSetError> {
        if validators.is_empty() {
            return Err(ValidatorSetError::Empty);
        }
        if validators.len() > MAX_VALIDATORS {
            return Err(ValidatorSetError::TooMany(validators.len()));
        }
        let mut total: u64 = 0;
        let mut previous: Option<Address> = None;
        for v in &validators {
            v.pub_key.validate()?;
            let address = v.address();
            if v.power == 0 {
                return Err(ValidatorSetError::ZeroPower(address));
            }
            match previous {
                Some(p) if p == address => return Err(ValidatorSetError::Duplicate(address)),
                Some(p) if p > address => return Err(ValidatorSetError::Unordered(address)),
                _ => {}
            }
            previous = Some(address);
            total = total
                .checked_add(v.power)
                .filter(|t| *t <= MAX_TOTAL_POWER)
                .ok_or(ValidatorSetError::PowerOverflow)?;
        }
        Ok(ValidatorSet { validators })
    }

    /// The validators, ordered by address.
    pub fn validators(&self) -> &[Validator] {
        &self.validators
    }

    /// Number of validators.
    pub fn len(&self) -> usize {
        self.validators.len()
    }

    /// Never true for a checked set; present for API completeness.
    pub fn is_empty(&self) -> bool {
        self.validators.is_empty()
    }

    /// Sum of voting power.
    pub fn total_power(&self) -> u64 {
        self.validators.iter().map(|v| v.power).sum()
    }

    /// The smallest power that is strictly more than two thirds of the total.
    pub fn quorum_power(&self) -> u64 {
        self.total_power() * 2 / 3 + 1
    }

    /// Position of the validator with `address`.
    pub fn index_of(&self, address: &Address) -> Option<usize> {
        self.validators
            .binary_search_by_key(address, |v| v.address())
            .ok()
    }

    /// The validator at `index`.
    pub fn get(&self, index: usize) -> Option<&Validator> {
        self.validators.get(index)
    }

    /// The commitment headers carry: a Merkle root over `hash(key ‖ power)` of each validator, in order.
    pub fn hash(&self, alg: HashAlg) -> Hash {
        let leaves: Vec<[u8; 32]> = self
            .validators
            .iter()
            .map(|v| {
                alg.hash_parts(&[&[0u8], &to_borsh(&v.pub_key), &v.power.to_le_bytes()])
                    .0
            })
            .collect();
        merkle_root(alg, &leaves)
    }
}

impl BorshDeserialize for ValidatorSet {
    /// Decodes the validators and checks them like [`ValidatorSet::new`], additionally requiring the canonical
    /// (address) order, so a set embedded in any other encoded type is checked too.
    fn deserialize_reader<R: std::io::Read>(reader: &mut R) -> std::io::Result<Self> {
        let validators = Vec::<Validator>::deserialize_reader(reader)?;
        Self::from_ordered(validators).map_err(|e| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("invalid validator set: {e}"),
            )
        })
    }
}

/// JSON shape of a validator set (the same as the Borsh field layout).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ValidatorSetJson {
    validators: Vec<Validator>,
}

impl<'de> Deserialize<'de> for ValidatorSet {
    /// Checks and sorts like [`ValidatorSet::new`] (JSON is written by people and tools, so any order is accepted).
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let json = ValidatorSetJson::deserialize(d)?;
        ValidatorSet::new(json.validators).map_err(serde::de::Error::custom)
    }
}

impl Canonical for ValidatorSet {
    const KIND: &'static str = "validator set";
    const MAX_LEN: usize = 1 + 4 + MAX_VALIDATORS * 48;
    // No `validate` override: `BorshDeserialize` above already enforces every rule, including the order.
}

/// A block header. Its hash is the block id that validators sign.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Header {
    /// Application (state machine) version.
    pub app_version: u32,
    /// The chain.
    pub chain_id: ChainId,
    /// Height, starting at 1.
    pub height: u64,
    /// Block time chosen by the proposer (monotonic).
    pub time: Time,
    /// Hash of the previous header (zero at height 1).
    pub parent_hash: Hash,
    /// Merkle root of the block's transaction hashes.
    pub tx_root: Hash,
    /// Hash of the last commit certificate carried in the block (zero at height 1).
    pub last_commit_hash: Hash,
    /// State root after executing this block.
    pub state_root: Hash,
    /// Hash of the validators that sign this block.
    pub validators_hash: Hash,
    /// Hash of the validators that sign the next block.
    pub next_validators_hash: Hash,
    /// Address of the proposer.
    pub proposer: Address,
}

impl Canonical for Header {
    const KIND: &'static str = "header";
    const MAX_LEN: usize = 512;
    fn validate(&self) -> Result<(), CodecError> {
        if self.height == 0 {
            return Err(CodecError::Invalid {
                kind: Self::KIND,
                reason: "height 0".into(),
            });
        }
        Ok(())
    }
}

impl Header {
    /// The block id: hash of the canonical encoding.
    pub fn hash(&self, alg: HashAlg) -> Hash {
        alg.hash(&self.encode())
    }
}

/// One validator's precommit signature in a commit certificate.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct CommitSig {
    /// Index of the validator in the set that signed this height.
    pub validator_index: u32,
    /// Precommit signature over [`CommitCertificate::sign_bytes`].
    pub signature: Signature,
}

/// Proof that a block was decided: precommits of more than 2/3 of the voting power for one block id.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct CommitCertificate {
    /// Height of the decided block.
    pub height: u64,
    /// Consensus round in which it was decided.
    pub round: u32,
    /// The decided header's hash.
    pub block_id: Hash,
    /// Signatures, in strictly increasing validator index order.
    pub signatures: Vec<CommitSig>,
}

impl Canonical for CommitCertificate {
    const KIND: &'static str = "commit certificate";
    const MAX_LEN: usize = 64 + MAX_VALIDATORS * 70;
    fn validate(&self) -> Result<(), CodecError> {
        if self
            .signatures
            .windows(2)
            .any(|w| w[0].validator_index >= w[1].validator_index)
        {
            return Err(CodecError::Invalid {
                kind: Self::KIND,
                reason: "signatures not in strictly increasing validator order".into(),
            });
        }
        Ok(())
    }
}

impl CommitCertificate {
    /// What each validator signs (before domain separation): a precommit for `block_id` at `height`/`round`.
    pub fn precommit_message(height: u64, round: u32, block_id: &Hash) -> Vec<u8> {
        let mut m = Vec::with_capacity(44);
        m.extend_from_slice(&height.to_le_bytes());
        m.extend_from_slice(&round.to_le_bytes());
        m.extend_from_slice(&block_id.0);
        m
    }

    /// The domain-separated bytes every signature in this certificate covers.
    pub fn sign_bytes(&self, chain_id: &str) -> Vec<u8> {
        crate::crypto::sign_bytes(
            chain_id,
            SignKind::Precommit,
            &Self::precommit_message(self.height, self.round, &self.block_id),
        )
    }

    /// Hash carried in the next header.
    pub fn hash(&self, alg: HashAlg) -> Hash {
        alg.hash(&self.encode())
    }
}

/// A block: header, transactions (canonical envelopes) and the certificate that decided the previous block.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Block {
    /// Header.
    pub header: Header,
    /// Encoded transaction envelopes, in execution order.
    pub txs: Vec<Vec<u8>>,
    /// Commit of the previous height (none at height 1).
    pub last_commit: Option<CommitCertificate>,
}

/// Largest encoded block.
pub const MAX_BLOCK_BYTES: usize = 64 * 1024 * 1024;

impl Canonical for Block {
    const KIND: &'static str = "block";
    const MAX_LEN: usize = MAX_BLOCK_BYTES;
    fn validate(&self) -> Result<(), CodecError> {
        self.header.validate()?;
        if let Some(c) = &self.last_commit {
            c.validate()?;
        }
        Ok(())
    }
}

impl Block {
    /// Merkle root of the hashes of `txs`.
    pub fn tx_root(alg: HashAlg, txs: &[Vec<u8>]) -> Hash {
        let leaves: Vec<[u8; 32]> = txs.iter().map(|t| alg.hash(t).0).collect();
        merkle_root(alg, &leaves)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::{SecretKey, Suite};
    use proptest::prelude::*;

    fn header(h: u64) -> Header {
        Header {
            app_version: 1,
            chain_id: ChainId::new("alpha").unwrap(),
            height: h,
            time: Time(h * 1000),
            parent_hash: Hash([1; 32]),
            tx_root: Hash([2; 32]),
            last_commit_hash: Hash([3; 32]),
            state_root: Hash([4; 32]),
            validators_hash: Hash([5; 32]),
            next_validators_hash: Hash([6; 32]),
            proposer: Address([7; 20]),
        }
    }

    #[test]
    fn names_are_checked() {
        assert!(ChainId::new("hub-1").is_ok());
        assert!(ChainId::new("").is_err());
        assert!(ChainId::new("Hub").is_err());
        assert!(ChainId::new("a".repeat(65)).is_err());
        assert!(Namespace::new("org/acme:records").is_ok());
        assert!(Namespace::new("white space").is_err());
        // A bad chain id inside an encoding is a decode error, not a panic.
        let mut bytes = header(1).encode();
        // chain id string starts after version(1) + app_version(4) + len(4).
        bytes[9] = b'A';
        assert!(matches!(
            Header::decode(&bytes),
            Err(CodecError::Malformed { .. })
        ));
    }

    #[test]
    fn decoding_rejects_trailing_bytes_versions_and_length() {
        let bytes = header(3).encode();
        assert_eq!(Header::decode(&bytes).unwrap(), header(3));
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert!(matches!(
            Header::decode(&trailing),
            Err(CodecError::Malformed { .. })
        ));
        let mut version = bytes.clone();
        version[0] = 2;
        assert_eq!(Header::decode(&version), Err(CodecError::UnknownVersion(2)));
        assert_eq!(Header::decode(&[]), Err(CodecError::Empty));
        assert!(matches!(
            Header::decode(&vec![1u8; 600]),
            Err(CodecError::TooLong { .. })
        ));
        assert!(matches!(
            Header::decode(&bytes[..bytes.len() - 1]),
            Err(CodecError::Malformed { .. })
        ));
    }

    #[test]
    fn validator_sets_are_sorted_and_checked() {
        let keys: Vec<_> = (0..4u8)
            .map(|i| SecretKey::from_bytes(Suite::Ed25519, &[i + 1; 32]).unwrap())
            .collect();
        let vals: Vec<_> = keys
            .iter()
            .map(|k| Validator {
                pub_key: k.public_key(),
                power: 10,
            })
            .collect();
        let set = ValidatorSet::new(vals.clone()).unwrap();
        assert!(set
            .validators()
            .windows(2)
            .all(|w| w[0].address() < w[1].address()));
        assert_eq!(set.quorum_power(), 27);
        let mut dup = vals.clone();
        dup.push(vals[0].clone());
        assert!(matches!(
            ValidatorSet::new(dup),
            Err(ValidatorSetError::Duplicate(_))
        ));
        let mut zero = vals.clone();
        zero[1].power = 0;
        assert!(matches!(
            ValidatorSet::new(zero),
            Err(ValidatorSetError::ZeroPower(_))
        ));
        assert_eq!(ValidatorSet::decode(&set.encode()).unwrap(), set);
        assert_ne!(set.hash(HashAlg::Sha256), set.hash(HashAlg::Sm3));
    }

    #[test]
    fn every_decoding_path_checks_validator_sets() {
        let keys: Vec<_> = (0..3u8)
            .map(|i| SecretKey::from_bytes(Suite::Ed25519, &[i + 9; 32]).unwrap())
            .collect();
        let vals: Vec<_> = keys
            .iter()
            .map(|k| Validator {
                pub_key: k.public_key(),
                power: 5,
            })
            .collect();
        let set = ValidatorSet::new(vals).unwrap();
        let mut body = set.validators().to_vec();

        // Borsh, even when the set is embedded in another value: wrong order is refused.
        body.swap(0, 1);
        let unordered = to_borsh(&body);
        assert!(borsh::from_slice::<ValidatorSet>(&unordered).is_err());
        assert!(borsh::from_slice::<(u8, ValidatorSet)>(&[&[7u8][..], &unordered].concat()).is_err());
        let mut versioned = vec![crate::codec::CODEC_VERSION];
        versioned.extend_from_slice(&unordered);
        assert!(matches!(
            ValidatorSet::decode(&versioned),
            Err(CodecError::Malformed { .. })
        ));

        // A weak (small-order) ed25519 key is refused whichever way it arrives.
        let mut weak = [0u8; 32];
        weak[0] = 1;
        let weak_set = vec![Validator {
            pub_key: PublicKey::Ed25519(weak),
            power: 1,
        }];
        assert!(borsh::from_slice::<ValidatorSet>(&to_borsh(&weak_set)).is_err());
        let json = serde_json::json!({ "validators": [{ "pub_key": { "suite": "ed25519", "hex": hex::encode(weak) },
            "power": 1 }] });
        assert!(serde_json::from_value::<ValidatorSet>(json).is_err());
        assert!(borsh::from_slice::<ValidatorSet>(&to_borsh(&Vec::<Validator>::new())).is_err());

        // JSON in any order is sorted like `new`; a canonical encoding round-trips.
        body.swap(0, 2);
        let json = serde_json::json!({ "validators": body });
        assert_eq!(serde_json::from_value::<ValidatorSet>(json).unwrap(), set);
        assert_eq!(borsh::from_slice::<ValidatorSet>(&to_borsh(&set)).unwrap(), set);
    }

    fn arb_hash() -> impl Strategy<Value = Hash> {
        any::<[u8; 32]>().prop_map(Hash)
    }

    prop_compose! {
        fn arb_header()(height in 1u64.., time in any::<u64>(), app in any::<u32>(),
                        hashes in proptest::collection::vec(arb_hash(), 6), proposer in any::<[u8; 20]>(),
                        id in "[a-z0-9._-]{1,64}") -> Header {
            Header { app_version: app, chain_id: ChainId::new(id).unwrap(), height, time: Time(time),
                parent_hash: hashes[0], tx_root: hashes[1], last_commit_hash: hashes[2], state_root: hashes[3],
                validators_hash: hashes[4], next_validators_hash: hashes[5], proposer: Address(proposer) }
        }
    }

    proptest! {
        #[test]
        fn header_round_trips(h in arb_header()) {
            prop_assert_eq!(Header::decode(&h.encode()).unwrap(), h);
        }

        #[test]
        fn commit_round_trips(height in 1u64.., round in any::<u32>(), id in arb_hash(),
                              idx in proptest::collection::btree_set(any::<u32>(), 0..20), sig in any::<[u8; 32]>()) {
            let mut s64 = [0u8; 64];
            s64[..32].copy_from_slice(&sig);
            let c = CommitCertificate { height, round, block_id: id,
                signatures: idx.into_iter().map(|i| CommitSig { validator_index: i, signature: Signature::Ed25519(s64) }).collect() };
            prop_assert_eq!(CommitCertificate::decode(&c.encode()).unwrap(), c);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..700)) {
            let _ = Header::decode(&bytes);
            let _ = CommitCertificate::decode(&bytes);
            let _ = Block::decode(&bytes);
            let _ = ValidatorSet::decode(&bytes);
        }
    }
}
