//! Ethereum-family permissioned chains: Hyperledger Besu with QBFT, IBFT 2.0 or IBFT 1.0 consensus.
//!
//! **Owns**: the BFT extraData formats and block-hash rules of each family ([`extra`]), committed- and
//! proposer-seal checks with validator-set votes ([`bft`]), the Besu light client ([`client`]), EIP-1186
//! `eth_getProof` account and storage proofs ([`proof`]), and parsing of headers and blocks from RLP and JSON-RPC
//! ([`parse`]).
//!
//! **Must never**: read files or the network, or trust a header's own hash field: every hash is recomputed from
//! the header's fields with the family's rule. RLP, Merkle-Patricia proofs, header encoding and secp256k1 come
//! from `alloy-rlp`, `alloy-trie`, `alloy-consensus` and `k256`, never written by hand here.

pub mod bft;
pub mod client;
pub mod extra;
pub mod parse;
pub mod proof;

pub use alloy_consensus::Header;
pub use alloy_primitives::{Address, B256};
pub use bft::{BftChainState, VerifiedBftHeader, VoteTally};
pub use client::{BesuClient, BesuHeader, BesuMisbehaviour, BesuParams};
pub use extra::{BftExtra, BftFamily, Vote};
pub use proof::{AccountProof, EthStateProof, StorageProof, VerifiedAccount};

/// A `Result` whose error is an [`EthError`].
pub type Result<T, E = EthError> = std::result::Result<T, E>;

/// Why an Ethereum-family header, proof or input was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EthError {
    /// The input could not be decoded (RLP, JSON, hex, extraData layout).
    #[error("malformed input: {0}")]
    Malformed(String),
    /// A seal's signature is not a valid secp256k1 recoverable signature.
    #[error("bad seal signature: {0}")]
    BadSignature(String),
    /// A committed seal was made by an address outside the validator set.
    #[error("committed seal by {0}, which is not a validator")]
    NotAValidator(Address),
    /// The same validator sealed twice.
    #[error("validator {0} committed more than one seal")]
    DuplicateSeal(Address),
    /// Too few distinct validators sealed the block.
    #[error("only {got} distinct validators sealed the block, the quorum of {validators} is {needed}")]
    NoQuorum {
        /// Distinct validators that sealed.
        got: usize,
        /// Quorum: ceil(2n/3).
        needed: usize,
        /// Validator set size.
        validators: usize,
    },
    /// The proposer is not a validator (or its seal is bad).
    #[error("proposer {0} is not a validator")]
    BadProposer(Address),
    /// The header does not extend the trusted chain.
    #[error("header does not extend the trusted chain: {0}")]
    NotSequential(String),
    /// The validator list in extraData is not the one votes lead to.
    #[error("extraData lists validators {listed:?}, the votes lead to {expected:?}")]
    ValidatorMismatch {
        /// What the header lists.
        listed: Vec<Address>,
        /// What the trusted set and votes give.
        expected: Vec<Address>,
    },
    /// A vote that the family forbids (wrong nonce, vote at an epoch block).
    #[error("invalid vote: {0}")]
    BadVote(String),
    /// The header's computed hash is not what it claims or what a child commits to.
    #[error("hash mismatch: {0}")]
    HashMismatch(String),
    /// A Merkle-Patricia proof does not prove the claimed account or storage value.
    #[error("proof rejected: {0}")]
    ProofRejected(String),
    /// The header's timestamp is ahead of `now` by more than the allowed clock drift.
    #[error("block {number} has timestamp {timestamp}, more than the clock drift ahead of now ({now})")]
    FromFuture {
        /// Block number.
        number: u64,
        /// Its timestamp (seconds).
        timestamp: u64,
        /// The caller's time (seconds).
        now: u64,
    },
    /// The client is frozen by misbehaviour.
    #[error("client is frozen")]
    Frozen,
    /// The latest trusted header is older than the trusting period.
    #[error("client expired: latest trusted header is older than the trusting period")]
    Expired,
    /// No consensus state was recorded at this height.
    #[error("no verified consensus state at height {0}")]
    UnknownHeight(u64),
    /// A validly sealed header conflicts with the trusted one: the client froze.
    #[error("misbehaviour: a validly sealed header conflicts with the trusted header at height {0}; client frozen")]
    Misbehaviour(u64),
}

impl EthError {
    /// True when the input itself was malformed (as opposed to well formed but not verified).
    pub fn is_malformed(&self) -> bool {
        matches!(self, EthError::Malformed(_))
    }
}

impl From<alloy_rlp::Error> for EthError {
    fn from(e: alloy_rlp::Error) -> Self {
        EthError::Malformed(format!("RLP: {e}"))
    }
}
