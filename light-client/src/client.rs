//! The one trait every chain family's light client implements.
//!
//! A light client tracks a remote chain from a trusted starting point: it accepts new headers only when they are
//! proven by the remote chain's consensus rules, remembers a consensus state (time, state root, next validators)
//! for every height it verified, and checks state proofs against those roots. It is pure: the caller passes the
//! current time in, and nothing here performs I/O.
//!
//! Families (native Causeway, Tendermint/CometBFT, Besu QBFT/IBFT) implement [`LightClient`] with their own header,
//! proof and misbehaviour types; the hub stores them behind an enum of its own.

use serde::{Deserialize, Serialize};

use crate::types::Time;

/// Whether a client may still be used.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, borsh::BorshSerialize, borsh::BorshDeserialize,
)]
pub enum ClientStatus {
    /// Headers and proofs are accepted.
    Active,
    /// The latest trusted header is older than the trusting period: only governance can revive it.
    Expired,
    /// Misbehaviour was proven: nothing is accepted until governance recovers it.
    Frozen,
}

/// How much of a remote validator set must have signed for a skipping update to be trusted.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, borsh::BorshSerialize, borsh::BorshDeserialize,
)]
pub struct TrustThreshold {
    /// Numerator of the fraction.
    pub numerator: u64,
    /// Denominator of the fraction; never zero, and never smaller than the numerator.
    pub denominator: u64,
}

impl TrustThreshold {
    /// The default: one third of the trusted voting power.
    pub const ONE_THIRD: TrustThreshold = TrustThreshold {
        numerator: 1,
        denominator: 3,
    };

    /// True when `part` is strictly more than this fraction of `total`.
    pub fn is_exceeded_by(&self, part: u128, total: u128) -> bool {
        part * u128::from(self.denominator) > total * u128::from(self.numerator)
    }
}

impl std::fmt::Display for TrustThreshold {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.numerator, self.denominator)
    }
}

/// What a light client remembers about one verified height of the remote chain.
#[derive(
    Clone, Debug, PartialEq, Eq, Serialize, Deserialize, borsh::BorshSerialize, borsh::BorshDeserialize,
)]
pub struct ConsensusState {
    /// Block time of the verified header.
    pub time: Time,
    /// The state commitment proofs are checked against (app hash, state root…), as the family defines it.
    #[serde(with = "hex::serde")]
    pub root: Vec<u8>,
    /// Hash of the validator set that must sign the next height.
    #[serde(with = "hex::serde")]
    pub next_validators_hash: Vec<u8>,
}

/// The outcome of a successful header update.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UpdateOutcome {
    /// The height that is now trusted.
    pub height: u64,
    /// The consensus state recorded for it.
    pub consensus_state: ConsensusState,
}

/// A light client of one remote chain.
///
/// Every method is deterministic: the same state and arguments give the same answer on every machine.
pub trait LightClient {
    /// What a relayer submits to move the client forward (a signed header with the validator sets it needs).
    type Header;
    /// A state proof in the family's own format.
    type Proof;
    /// Evidence that the remote chain signed two conflicting headers.
    type Misbehaviour;
    /// Why a header, proof or piece of evidence was rejected.
    type Error: std::error::Error + Send + Sync + 'static;

    /// The remote chain's identifier.
    fn chain_id(&self) -> &str;
    /// The highest height verified so far.
    fn latest_height(&self) -> u64;
    /// Active, expired (judged at `now`) or frozen.
    fn status(&self, now: Time) -> ClientStatus;
    /// The consensus state recorded at exactly `height`, if it was verified.
    fn consensus_state(&self, height: u64) -> Option<&ConsensusState>;

    /// Verify `header` against the trusted state (sequentially or by skipping) and, if it holds, record its
    /// consensus state. A header at a height already trusted must be identical to the trusted one; a different
    /// one is misbehaviour and freezes the client.
    fn verify_header(&mut self, header: Self::Header, now: Time) -> Result<UpdateOutcome, Self::Error>;

    /// Check that `value` is stored under `path` in the state committed at `height`.
    fn verify_membership(
        &self,
        height: u64,
        path: &[u8],
        value: &[u8],
        proof: &Self::Proof,
    ) -> Result<(), Self::Error>;

    /// Check that nothing is stored under `path` in the state committed at `height`.
    fn verify_non_membership(&self, height: u64, path: &[u8], proof: &Self::Proof)
        -> Result<(), Self::Error>;

    /// Check evidence of misbehaviour; if it is valid the client freezes and `Ok(true)` is returned,
    /// `Ok(false)` when the evidence is well formed but shows no misbehaviour.
    fn check_misbehaviour(&mut self, evidence: Self::Misbehaviour, now: Time) -> Result<bool, Self::Error>;
}
