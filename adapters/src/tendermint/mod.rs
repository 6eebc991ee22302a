//! Tendermint/CometBFT chains.
//!
//! **Owns**: the Tendermint light client ([`TendermintClient`]), the pure single-step and skipping verification
//! around `tendermint-light-client-verifier` ([`verify`]), ICS-23 state proofs ([`ics23`]) and the parsing of
//! tendermint-rs `LightBlock` JSON and CometBFT RPC `/commit` + `/validators` responses ([`parse`]).
//!
//! **Must never**: read files, sockets or the clock (callers pass bytes and `now`), or re-implement the commit and
//! trust checks that `tendermint-light-client-verifier` performs.

pub mod client;
pub mod ics23;
pub mod parse;
pub mod verify;

use std::time::Duration;

use borsh::{BorshDeserialize, BorshSerialize};
use causeway_light_client::{Time, TrustThreshold};
use serde::{Deserialize, Serialize};
use tendermint_light_client_verifier::options::Options;
use tendermint_light_client_verifier::types::TrustThreshold as TmTrustThreshold;

pub use client::{TendermintClient, TendermintHeader, TendermintMisbehaviour, TrustedHeight};
pub use ics23::{Ics23Error, Ics23Proof, ProofConfig, SpecKind};
pub use tendermint_light_client_verifier::types::LightBlock;
pub use verify::{verify_skipping, verify_step, SkippingOutcome, TrustedState};

/// A `Result` whose error is a [`TendermintError`].
pub type Result<T, E = TendermintError> = std::result::Result<T, E>;

/// Why a Tendermint header, proof or input was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TendermintError {
    /// The header is valid on its own but too little of the trusted validator set signed it to skip to it.
    #[error(
        "not enough trust: {tallied} of {total} trusted voting power signed, more than {numerator}/{denominator} is needed"
    )]
    NotEnoughTrust {
        /// Trusted voting power that signed.
        tallied: u64,
        /// Total trusted voting power.
        total: u64,
        /// Trust threshold numerator.
        numerator: u64,
        /// Trust threshold denominator.
        denominator: u64,
    },
    /// The header failed a verification predicate (hashes, signatures, time, height, chain id, trusting period).
    #[error("invalid header: {0}")]
    Invalid(String),
    /// The trusted state given to the verifier does not hold together.
    #[error("inconsistent trusted state: {0}")]
    BadTrustedState(String),
    /// The trust parameters are out of range.
    #[error("bad trust options: {0}")]
    BadOptions(String),
    /// The client is frozen by misbehaviour.
    #[error("client is frozen")]
    Frozen,
    /// The latest trusted header is older than the trusting period.
    #[error("client expired: latest trusted header is older than the trusting period")]
    Expired,
    /// No consensus state was recorded at this height.
    #[error("no verified consensus state at height {0}")]
    UnknownHeight(u64),
    /// Nothing trusted below this height to verify from.
    #[error("no trusted height below {0} to verify from")]
    NoTrustedBelow(u64),
    /// A valid header conflicting with a trusted one was submitted: the client froze.
    #[error("misbehaviour: a validly signed header conflicts with the trusted header at height {0}; client frozen")]
    Misbehaviour(u64),
    /// A validly signed header breaks BFT time monotonicity against a trusted neighbour: the client froze.
    #[error(
        "misbehaviour: header at height {0} is not between its trusted neighbours in time; client frozen"
    )]
    TimeMisbehaviour(u64),
    /// A witness reported a different header at a verified height.
    #[error("conflict: witness {witness} has a different header at height {height}")]
    Conflict {
        /// Index of the witness.
        witness: usize,
        /// Height of the conflicting header.
        height: u64,
    },
    /// Skipping verification needed a light block the provider does not hold.
    #[error("no light block at height {0} to continue skipping verification")]
    MissingBlock(u64),
    /// A state proof was rejected.
    #[error(transparent)]
    Proof(#[from] Ics23Error),
    /// The input could not be parsed.
    #[error("malformed input: {0}")]
    Malformed(String),
}

impl TendermintError {
    /// True when the input itself was malformed (as opposed to well formed but not verified).
    pub fn is_malformed(&self) -> bool {
        matches!(
            self,
            TendermintError::Malformed(_) | TendermintError::Proof(Ics23Error::Malformed(_))
        )
    }
}

/// Trust parameters of a Tendermint light client. JSON: `trust_threshold` {numerator, denominator},
/// `trusting_period_secs`, `clock_drift_secs`, `max_consensus_states`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "OptionsRepr", into = "OptionsRepr")]
pub struct TendermintOptions {
    /// Fraction of the trusted validator set's power that must sign a header skipped to (1/3 ≤ t ≤ 1).
    pub trust_threshold: TrustThreshold,
    /// How long a verified header stays usable as a trust anchor.
    pub trusting_period: Duration,
    /// How far a header's time may be ahead of `now`.
    pub clock_drift: Duration,
    /// Most consensus states a client keeps; the oldest are dropped beyond it.
    pub max_consensus_states: u32,
}

/// Most consensus states any Tendermint client may keep.
pub const MAX_CONSENSUS_STATES: u32 = 4096;

/// The serialised form of [`TendermintOptions`]: whole nanoseconds, so JSON and Borsh agree exactly.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, BorshSerialize, BorshDeserialize)]
#[serde(deny_unknown_fields)]
struct OptionsRepr {
    trust_threshold: TrustThreshold,
    trusting_period_nanos: u64,
    clock_drift_nanos: u64,
    max_consensus_states: u32,
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl From<TendermintOptions> for OptionsRepr {
    fn from(o: TendermintOptions) -> Self {
        OptionsRepr {
            trust_threshold: o.trust_threshold,
            trusting_period_nanos: nanos(o.trusting_period),
            clock_drift_nanos: nanos(o.clock_drift),
            max_consensus_states: o.max_consensus_states,
        }
    }
}

impl TryFrom<OptionsRepr> for TendermintOptions {
    type Error = TendermintError;
    fn try_from(r: OptionsRepr) -> Result<Self> {
        let o = TendermintOptions {
            trust_threshold: r.trust_threshold,
            trusting_period: Duration::from_nanos(r.trusting_period_nanos),
            clock_drift: Duration::from_nanos(r.clock_drift_nanos),
            max_consensus_states: r.max_consensus_states,
        };
        o.check()?;
        Ok(o)
    }
}

impl BorshSerialize for TendermintOptions {
    fn serialize<W: std::io::Write>(&self, writer: &mut W) -> std::io::Result<()> {
        BorshSerialize::serialize(&OptionsRepr::from(*self), writer)
    }
}

impl BorshDeserialize for TendermintOptions {
    fn deserialize_reader<R: std::io::Read>(reader: &mut R) -> std::io::Result<Self> {
        TendermintOptions::try_from(OptionsRepr::deserialize_reader(reader)?)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
    }
}

impl TendermintOptions {
    /// Default trust threshold 1/3, the given trusting period, 5 s of clock drift, 1024 consensus states kept.
    pub fn new(trusting_period: Duration) -> Self {
        TendermintOptions {
            trust_threshold: TrustThreshold::ONE_THIRD,
            trusting_period,
            clock_drift: Duration::from_secs(5),
            max_consensus_states: 1024,
        }
    }

    /// Check the parameters are usable: threshold within [1/3, 1], a trusting period, a bounded state count.
    pub fn check(&self) -> Result<()> {
        self.to_verifier_options()?;
        if self.trusting_period.is_zero() {
            return Err(TendermintError::BadOptions("trusting period is zero".into()));
        }
        if !(1..=MAX_CONSENSUS_STATES).contains(&self.max_consensus_states) {
            return Err(TendermintError::BadOptions(format!(
                "max_consensus_states must be within 1..={MAX_CONSENSUS_STATES}"
            )));
        }
        Ok(())
    }

    /// The verifier crate's options, after checking the threshold is within [1/3, 1].
    pub fn to_verifier_options(&self) -> Result<Options> {
        let t = TmTrustThreshold::new(self.trust_threshold.numerator, self.trust_threshold.denominator)
            .map_err(|e| TendermintError::BadOptions(format!("trust threshold: {e}")))?;
        Ok(Options {
            trust_threshold: t,
            trusting_period: self.trusting_period,
            clock_drift: self.clock_drift,
        })
    }
}

/// Our [`Time`] (ns since the epoch) as a Tendermint time.
pub fn to_tm_time(t: Time) -> Result<tendermint::Time> {
    let secs = i64::try_from(t.0 / 1_000_000_000)
        .map_err(|_| TendermintError::Malformed("time out of range".into()))?;
    let nanos = u32::try_from(t.0 % 1_000_000_000)
        .map_err(|_| TendermintError::Malformed("time out of range".into()))?;
    tendermint::Time::from_unix_timestamp(secs, nanos)
        .map_err(|e| TendermintError::Malformed(format!("time: {e}")))
}

/// A Tendermint time as our [`Time`]; times before 1970 are refused.
pub fn from_tm_time(t: tendermint::Time) -> Result<Time> {
    let ns = t.unix_timestamp_nanos();
    u64::try_from(ns)
        .map(Time)
        .map_err(|_| TendermintError::Malformed(format!("time {t} is before 1970 or too late")))
}
