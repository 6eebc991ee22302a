//! The light client of native Causeway chains (DESIGN §4), as the hub and every member chain host it.
//!
//! **Owns**: the client state (trust options, latest height, frozen height), the consensus state of every trusted
//! height it keeps (time, state root, next validators hash, and the header hash), header updates by sequential and
//! skipping verification, misbehaviour handling (freezing), governance recovery, and state proofs against trusted
//! roots. **Must never**: read a clock (`now` is an argument), perform I/O, or accept a validator set that did not
//! pass [`ValidatorSet`]'s checks (its every constructor and decoder checks keys, so weak ed25519 keys never reach
//! batch verification).
//!
//! ## Updating
//! A [`HeaderUpdate`] carries a signed header, its commit certificate, the header's validator set, the trusted height
//! it builds on and that height's next validator set (the shape of ICS-07). It is accepted when, in this order
//! (cheap checks before any signature, each a predicate of [`predicates`] with its own error):
//! the chain id matches; the certificate is for this header (height and block id); the trusted height is kept and
//! below the header; the trusted state is within the trusting period at `now`; the header is not from the future
//! beyond the allowed clock drift; its time is after the trusted time; the validator set hashes to the header's
//! `validators_hash` and the trusted set to the trusted `next_validators_hash`; then
//! - **sequential** (header at trusted height + 1): the header's set is the trusted next set, and more than 2/3 of
//!   it signed;
//! - **skipping** (any higher header): more than the trust threshold (default 1/3) of the trusted set's power
//!   signed, and more than 2/3 of the header's own set.
//!
//! Signatures are batch-verified and only until the thresholds are passed ([`crate::commit::verify_commit_light`]).
//! A header may also fill a gap below the latest trusted height; its time must then lie before the next trusted
//! header's. Every rejected update leaves the client unchanged.
//!
//! ## Misbehaviour and recovery
//! Two different headers at one height, each proven from a trusted state ([`Misbehaviour`]), freeze the client; so
//! does an update that verifies but differs from the header already trusted at its height. A frozen client accepts
//! nothing (updates, evidence, proofs) until governance calls [`NativeClient::recover`] with a new trusted header.
//!
//! ## Memory
//! At most [`TrustOptions::max_consensus_states`] heights are kept; the oldest is dropped first.
//!
//! ## Stored by parts
//! A chain hosting a client keeps the [`ClientState`], the list of kept heights and each [`TrustedHeight`] under
//! keys of their own, so that a proof reads two small values instead of every kept height. For one operation it
//! loads a *partial* client ([`NativeClient::partial`]) holding the heights that operation reads
//! ([`heights_for_update`], [`heights_for_misbehaviour`], or the proof's height) and writes back what changed;
//! [`prune`] is the one rule for which heights to drop.

pub mod predicates;

use std::time::Duration;

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

use crate::client::{ClientStatus, ConsensusState, LightClient, TrustThreshold, UpdateOutcome};
use crate::codec::{Canonical, CodecError};
use crate::commit::{verify_commit_light, CommitError, Trusting};
use crate::hash::{Hash, HashAlg};
use crate::proof::{self, ProofError, StatePath, StateProof};
use crate::types::{ChainId, CommitCertificate, Header, Time, ValidatorSet};

use predicates::*;

/// Most consensus states a client may be configured to keep.
pub const MAX_CONSENSUS_STATES: u32 = 10_000;
/// Consensus states kept by default.
pub const DEFAULT_MAX_CONSENSUS_STATES: u32 = 1_000;
/// Default trusting period: 14 days.
pub const DEFAULT_TRUSTING_PERIOD_SECS: u64 = 14 * 24 * 3600;
/// Default allowed clock drift: 10 seconds.
pub const DEFAULT_MAX_CLOCK_DRIFT_SECS: u64 = 10;

/// Why the native client refused a header, evidence, proof or option.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NativeError {
    /// The client is frozen by misbehaviour: nothing is accepted until governance recovers it.
    #[error("client frozen by misbehaviour at height {height}")]
    Frozen {
        /// Height of the proven misbehaviour.
        height: u64,
    },
    /// Trust options that cannot work.
    #[error("invalid trust options: {0}")]
    InvalidOptions(&'static str),
    /// The parts a host stored do not make a client.
    #[error("client parts do not fit together: {0}")]
    InvalidParts(&'static str),
    /// The update builds on a height the client does not (or no longer) trust.
    #[error("no trusted consensus state at height {height} to build on")]
    UnknownTrustedHeight {
        /// The height named.
        height: u64,
    },
    /// A proof was asked for at a height the client does not (or no longer) trust.
    #[error("no consensus state at height {height}")]
    NoConsensusState {
        /// The height asked for.
        height: u64,
    },
    /// The header is from another chain.
    #[error("header of chain {got}, the client follows {expected}")]
    ChainIdMismatch {
        /// The followed chain.
        expected: ChainId,
        /// The header's chain.
        got: ChainId,
    },
    /// The certificate is for another height than the header.
    #[error("header at height {header} but commit certificate for height {commit}")]
    CommitHeightMismatch {
        /// Header height.
        header: u64,
        /// Certificate height.
        commit: u64,
    },
    /// The certificate decides another block than the header.
    #[error("commit certificate for block {block_id}, header hash is {header_hash}")]
    CommitBlockMismatch {
        /// Hash of the header presented.
        header_hash: Hash,
        /// Block id in the certificate.
        block_id: Hash,
    },
    /// The supplied validator set is not the one the header commits to.
    #[error("validator set hashes to {supplied}, the header commits to {header}")]
    ValidatorSetMismatch {
        /// The header's `validators_hash`.
        header: Hash,
        /// Hash of the supplied set.
        supplied: Hash,
    },
    /// The supplied trusted validator set is not the trusted height's next set.
    #[error("trusted validator set hashes to {supplied}, the trusted height committed to {trusted}")]
    TrustedValidatorSetMismatch {
        /// The trusted `next_validators_hash`.
        trusted: Hash,
        /// Hash of the supplied set.
        supplied: Hash,
    },
    /// Sequential update whose signing set is not the next set the trusted header announced.
    #[error("adjacent header signed by set {got}, the trusted header announced {expected}")]
    NotTrustedNextSet {
        /// The trusted `next_validators_hash`.
        expected: Hash,
        /// The header's `validators_hash`.
        got: Hash,
    },
    /// The header is not above the height it builds on.
    #[error("header height {height} is not above the trusted height {trusted_height}")]
    NonIncreasingHeight {
        /// Header height.
        height: u64,
        /// Trusted height.
        trusted_height: u64,
    },
    /// The header's time is not after the trusted time.
    #[error("header time {time:?} is not after the trusted time {trusted_time:?}")]
    NonMonotonicTime {
        /// Header time.
        time: Time,
        /// Trusted time.
        trusted_time: Time,
    },
    /// A header filling a gap is not before the next trusted header in time.
    #[error("header time {time:?} is not before the time {later_time:?} trusted at the later height {later_height}")]
    NotBeforeLaterTrusted {
        /// Header time.
        time: Time,
        /// The next trusted height above the header.
        later_height: u64,
        /// Its time.
        later_time: Time,
    },
    /// The trusted state is older than the trusting period.
    #[error("trusted state of {trusted_time:?} expired at {expires_at:?} (now {now:?})")]
    TrustedStateExpired {
        /// Time of the trusted state.
        trusted_time: Time,
        /// When it expired.
        expires_at: Time,
        /// The time given.
        now: Time,
    },
    /// The header's time is beyond `now` plus the allowed clock drift.
    #[error("header time {time:?} is in the future (now {now:?}, allowed drift {max_clock_drift_secs} s)")]
    HeaderFromFuture {
        /// Header time.
        time: Time,
        /// The time given.
        now: Time,
        /// Allowed drift.
        max_clock_drift_secs: u64,
    },
    /// The commit certificate does not prove enough signing power (or a signature is bad).
    #[error("commit: {0}")]
    Commit(#[from] CommitError),
    /// A verified header differs from the one already trusted at its height: the client is now frozen.
    #[error("conflicting header at trusted height {height}: client frozen")]
    ConflictingHeader {
        /// The height.
        height: u64,
    },
    /// Misbehaviour evidence whose two headers are at different heights.
    #[error("misbehaviour headers at different heights {first} and {second}")]
    EvidenceHeightsDiffer {
        /// Height of the first header.
        first: u64,
        /// Height of the second header.
        second: u64,
    },
    /// The path is not an encoded [`StatePath`] or breaks the size limits.
    #[error("state path: {0}")]
    Path(CodecError),
    /// The state proof does not verify.
    #[error("state proof: {0}")]
    Proof(#[from] ProofError),
}

/// The parameters governance sets when it registers a client.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustOptions {
    /// The remote chain.
    pub chain_id: ChainId,
    /// The remote chain's hash function (fixed at its genesis).
    pub hash_alg: HashAlg,
    /// Part of the trusted set's power that must sign a skipping update: at least 1/3, less than 1.
    pub trust_threshold: TrustThreshold,
    /// How long a trusted state may be built on, in seconds (> 0).
    pub trusting_period_secs: u64,
    /// How far a header's time may be ahead of `now`, in seconds.
    pub max_clock_drift_secs: u64,
    /// How many consensus states to keep, 1 to [`MAX_CONSENSUS_STATES`].
    pub max_consensus_states: u32,
}

impl TrustOptions {
    /// Default options for `chain_id`: threshold 1/3, 14-day trusting period, 10 s drift, 1000 states.
    pub fn new(chain_id: ChainId, hash_alg: HashAlg) -> Self {
        TrustOptions {
            chain_id,
            hash_alg,
            trust_threshold: TrustThreshold::ONE_THIRD,
            trusting_period_secs: DEFAULT_TRUSTING_PERIOD_SECS,
            max_clock_drift_secs: DEFAULT_MAX_CLOCK_DRIFT_SECS,
            max_consensus_states: DEFAULT_MAX_CONSENSUS_STATES,
        }
    }

    /// The trusting period.
    pub fn trusting_period(&self) -> Duration {
        Duration::from_secs(self.trusting_period_secs)
    }

    /// The allowed clock drift.
    pub fn max_clock_drift(&self) -> Duration {
        Duration::from_secs(self.max_clock_drift_secs)
    }

    /// Check that the options can work.
    pub fn check(&self) -> Result<(), NativeError> {
        let t = self.trust_threshold;
        if t.denominator == 0 || t.numerator >= t.denominator {
            return Err(NativeError::InvalidOptions(
                "the trust threshold must be a fraction below 1",
            ));
        }
        if u128::from(t.numerator) * 3 < u128::from(t.denominator) {
            return Err(NativeError::InvalidOptions(
                "the trust threshold must be at least 1/3",
            ));
        }
        if self.trusting_period_secs == 0 {
            return Err(NativeError::InvalidOptions(
                "the trusting period must be positive",
            ));
        }
        if self.max_consensus_states == 0 || self.max_consensus_states > MAX_CONSENSUS_STATES {
            return Err(NativeError::InvalidOptions(
                "max_consensus_states must be between 1 and 10000",
            ));
        }
        Ok(())
    }
}

/// The client's state proper: its options and where it stands.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientState {
    /// Trust options.
    pub options: TrustOptions,
    /// Highest trusted height.
    pub latest_height: u64,
    /// Height of the proven misbehaviour, if the client is frozen.
    pub frozen_height: Option<u64>,
}

impl Canonical for ClientState {
    const KIND: &'static str = "native client state";
    const MAX_LEN: usize = 256;
    fn validate(&self) -> Result<(), CodecError> {
        let invalid = |reason: String| CodecError::Invalid {
            kind: Self::KIND,
            reason,
        };
        self.options.check().map_err(|e| invalid(e.to_string()))?;
        if self.latest_height == 0 {
            return Err(invalid("latest height 0".into()));
        }
        Ok(())
    }
}

/// What the client keeps about one trusted height.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustedHeight {
    /// The height.
    pub height: u64,
    /// Hash of the trusted header (a different header at this height is misbehaviour).
    pub header_hash: Hash,
    /// Time, state root and next validators hash of the trusted header.
    pub consensus_state: ConsensusState,
}

impl TrustedHeight {
    fn of(header: &Header, alg: HashAlg) -> Self {
        TrustedHeight {
            height: header.height,
            header_hash: header.hash(alg),
            consensus_state: ConsensusState {
                time: header.time,
                root: header.state_root.0.to_vec(),
                next_validators_hash: header.next_validators_hash.0.to_vec(),
            },
        }
    }

    fn root(&self) -> Hash {
        hash_of(&self.consensus_state.root)
    }

    fn next_validators_hash(&self) -> Hash {
        hash_of(&self.consensus_state.next_validators_hash)
    }
}

/// A 32-byte field of a consensus state. Every stored state holds 32 bytes there (built from a header, or checked
/// on decoding); anything else reads as the zero hash, which no proof or validator set hashes to.
fn hash_of(bytes: &[u8]) -> Hash {
    bytes.try_into().map(Hash).unwrap_or(Hash::ZERO)
}

/// What a relayer submits to move a native client forward.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeaderUpdate {
    /// The new header.
    pub header: Header,
    /// The certificate deciding it.
    pub commit: CommitCertificate,
    /// The validator set that signed it (hashes to `header.validators_hash`).
    pub validators: ValidatorSet,
    /// The trusted height this update builds on (below `header.height`).
    pub trusted_height: u64,
    /// The trusted height's next validator set (hashes to its `next_validators_hash`).
    pub trusted_validators: ValidatorSet,
}

impl Canonical for HeaderUpdate {
    const KIND: &'static str = "native header update";
    const MAX_LEN: usize = Header::MAX_LEN + CommitCertificate::MAX_LEN + 8 + 2 * ValidatorSet::MAX_LEN;
    fn validate(&self) -> Result<(), CodecError> {
        self.header.validate()?;
        self.commit.validate()
    }
}

/// Evidence that the remote chain signed two different headers at one height.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Misbehaviour {
    /// One header, proven from a trusted state.
    pub first: HeaderUpdate,
    /// The other, at the same height, proven from a trusted state.
    pub second: HeaderUpdate,
}

impl Canonical for Misbehaviour {
    const KIND: &'static str = "native misbehaviour";
    const MAX_LEN: usize = 2 * HeaderUpdate::MAX_LEN;
    fn validate(&self) -> Result<(), CodecError> {
        self.first.validate()?;
        self.second.validate()
    }
}

impl Canonical for TrustedHeight {
    const KIND: &'static str = "native trusted height";
    /// 8 + 32 + (8 + 4 + 32 + 4 + 32) bytes, with room for the time's encoding.
    const MAX_LEN: usize = 1 + 128;
    fn validate(&self) -> Result<(), CodecError> {
        if self.consensus_state.root.len() != 32 || self.consensus_state.next_validators_hash.len() != 32 {
            return Err(CodecError::Invalid {
                kind: Self::KIND,
                reason: "consensus state hashes must be 32 bytes".into(),
            });
        }
        Ok(())
    }
}

/// The kept heights (strictly increasing) a header update reads: the height it builds on, the header's own height
/// or its neighbours (for the time-order checks of a gap fill), and the latest (for the client's status).
pub fn heights_for_update(kept: &[u64], update: &HeaderUpdate) -> Vec<u64> {
    let height = update.header.height;
    let mut heights = vec![update.trusted_height];
    match kept.binary_search(&height) {
        Ok(_) => heights.push(height),
        Err(at) => {
            heights.extend(at.checked_sub(1).and_then(|i| kept.get(i)));
            heights.extend(kept.get(at));
        }
    }
    heights.extend(kept.last());
    only_kept(kept, heights)
}

/// The kept heights misbehaviour evidence reads: the heights both headers build on, and the latest.
pub fn heights_for_misbehaviour(kept: &[u64], evidence: &Misbehaviour) -> Vec<u64> {
    let mut heights = vec![evidence.first.trusted_height, evidence.second.trusted_height];
    heights.extend(kept.last());
    only_kept(kept, heights)
}

fn only_kept(kept: &[u64], mut heights: Vec<u64>) -> Vec<u64> {
    heights.sort_unstable();
    heights.dedup();
    heights.retain(|h| kept.binary_search(h).is_ok());
    heights
}

/// Drop the oldest of `kept` (strictly increasing) until at most `max` remain; returns the dropped heights.
pub fn prune(kept: &mut Vec<u64>, max: u32) -> Vec<u64> {
    let excess = kept.len().saturating_sub(max as usize);
    kept.drain(..excess).collect()
}

/// The light client of one native Causeway chain.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, Serialize)]
pub struct NativeClient {
    state: ClientState,
    /// Trusted heights, strictly increasing, at most `max_consensus_states`; never empty unless `partial`.
    consensus_states: Vec<TrustedHeight>,
    /// Holds only some of the client's heights (see [`NativeClient::partial`]): it never prunes, the host does.
    #[borsh(skip)]
    #[serde(skip)]
    partial: bool,
}

impl NativeClient {
    /// A client trusting `header` (chosen by governance) with `options`. The header must be of the options' chain,
    /// within the trusting period at `now` and not from the future.
    pub fn new(options: TrustOptions, header: &Header, now: Time) -> Result<Self, NativeError> {
        options.check()?;
        check_trusted_header(&options, header, now)?;
        let trusted = TrustedHeight::of(header, options.hash_alg);
        let state = ClientState {
            options,
            latest_height: header.height,
            frozen_height: None,
        };
        Ok(NativeClient {
            state,
            consensus_states: vec![trusted],
            partial: false,
        })
    }

    /// A client made of its state and only `some` of its trusted heights, for one operation of a host that stores
    /// each height under its own key: a proof needs the proof's height, an update [`heights_for_update`],
    /// evidence [`heights_for_misbehaviour`]. It behaves as the whole client would for that operation, except
    /// that it never drops old heights (the host applies [`prune`] to the full list).
    pub fn partial(state: ClientState, some: Vec<TrustedHeight>) -> Result<Self, NativeError> {
        let corrupt = NativeError::InvalidParts;
        state.options.check()?;
        if some.windows(2).any(|w| w[0].height >= w[1].height) {
            return Err(corrupt(
                "consensus states not in strictly increasing height order",
            ));
        }
        if some.last().is_some_and(|t| t.height > state.latest_height) {
            return Err(corrupt("a consensus state above the latest height"));
        }
        if some.iter().any(|t| t.validate().is_err()) {
            return Err(corrupt("consensus state hashes must be 32 bytes"));
        }
        Ok(NativeClient {
            state,
            consensus_states: some,
            partial: true,
        })
    }

    /// A whole client from its state and every kept height (as a host that stores them by parts reassembles it);
    /// checked as a decoded client is.
    pub fn whole(state: ClientState, all: Vec<TrustedHeight>) -> Result<Self, String> {
        NativeClient::try_from(NativeClientParts {
            state,
            consensus_states: all,
        })
    }

    /// The state and the trusted heights this client holds.
    pub fn into_parts(self) -> (ClientState, Vec<TrustedHeight>) {
        (self.state, self.consensus_states)
    }

    /// True for a client holding only some of its heights ([`NativeClient::partial`]).
    pub fn is_partial(&self) -> bool {
        self.partial
    }

    /// The client state.
    pub fn client_state(&self) -> &ClientState {
        &self.state
    }

    /// The trust options.
    pub fn options(&self) -> &TrustOptions {
        &self.state.options
    }

    /// Every kept trusted height, oldest first.
    pub fn trusted_heights(&self) -> &[TrustedHeight] {
        &self.consensus_states
    }

    /// The kept trusted height `height`, if any.
    pub fn trusted(&self, height: u64) -> Option<&TrustedHeight> {
        self.position(height).ok().map(|i| &self.consensus_states[i])
    }

    fn position(&self, height: u64) -> Result<usize, usize> {
        self.consensus_states.binary_search_by_key(&height, |t| t.height)
    }

    fn check_not_frozen(&self) -> Result<(), NativeError> {
        match self.state.frozen_height {
            Some(height) => Err(NativeError::Frozen { height }),
            None => Ok(()),
        }
    }

    /// Every check of an update against the trusted state it names; returns what to record for its height.
    /// `from_relayer` adds the clock-drift check. Evidence skips it: a second header signed by the validators is
    /// misbehaviour whatever time it claims, and it is never trusted.
    fn verify_update(
        &self,
        update: &HeaderUpdate,
        now: Time,
        from_relayer: bool,
    ) -> Result<TrustedHeight, NativeError> {
        let options = &self.state.options;
        let header = &update.header;
        is_matching_chain_id(&options.chain_id, &header.chain_id)?;
        let verified = TrustedHeight::of(header, options.hash_alg);
        header_matches_commit(header.height, &verified.header_hash, &update.commit)?;
        let trusted = self
            .trusted(update.trusted_height)
            .ok_or(NativeError::UnknownTrustedHeight {
                height: update.trusted_height,
            })?;
        is_monotonic_height(header.height, trusted.height)?;
        is_within_trusting_period(trusted.consensus_state.time, options.trusting_period(), now)?;
        if from_relayer {
            is_header_from_past(header.time, options.max_clock_drift(), now)?;
        }
        is_monotonic_time(header.time, trusted.consensus_state.time)?;

        let set_hash = update.validators.hash(options.hash_alg);
        validator_set_matches(&set_hash, &header.validators_hash)?;
        // The trusted set often is the header's own set (always for sequential updates): hash it once.
        let trusted_set_hash = if update.trusted_validators == update.validators {
            set_hash
        } else {
            update.trusted_validators.hash(options.hash_alg)
        };
        let trusted_next = trusted.next_validators_hash();
        trusted_validator_set_matches(&trusted_set_hash, &trusted_next)?;

        let trusting = if Some(header.height) == trusted.height.checked_add(1) {
            is_trusted_next_set(&header.validators_hash, &trusted_next)?;
            None
        } else {
            Some(Trusting {
                validators: &update.trusted_validators,
                threshold: options.trust_threshold,
            })
        };
        verify_commit_light(
            options.chain_id.as_str(),
            &update.validators,
            &update.commit,
            trusting,
        )?;
        Ok(verified)
    }

    fn freeze(&mut self, height: u64) {
        self.state.frozen_height = Some(height);
    }

    /// Record a verified header, keeping heights ordered and at most `max_consensus_states` of them.
    fn record(&mut self, verified: TrustedHeight) -> Result<(), NativeError> {
        let at = match self.position(verified.height) {
            Ok(i) => {
                // Only reached with the identical header (a different one freezes before this).
                self.consensus_states[i] = verified;
                return Ok(());
            }
            Err(at) => at,
        };
        if let Some(earlier) = at.checked_sub(1).and_then(|i| self.consensus_states.get(i)) {
            is_monotonic_time(verified.consensus_state.time, earlier.consensus_state.time)?;
        }
        let later = self
            .consensus_states
            .get(at)
            .map(|t| (t.height, t.consensus_state.time));
        is_before_later_trusted(verified.consensus_state.time, later)?;
        self.state.latest_height = self.state.latest_height.max(verified.height);
        self.consensus_states.insert(at, verified);
        if !self.partial {
            let mut kept: Vec<u64> = self.consensus_states.iter().map(|t| t.height).collect();
            let dropped = prune(&mut kept, self.state.options.max_consensus_states).len();
            self.consensus_states.drain(..dropped);
        }
        Ok(())
    }

    /// Governance only: trust `header` afresh and unfreeze. Every kept consensus state is dropped (those of a
    /// frozen client may come from a fork). The header must be of the client's chain, within the trusting period
    /// at `now` and not from the future.
    pub fn recover(&mut self, header: &Header, now: Time) -> Result<(), NativeError> {
        check_trusted_header(&self.state.options, header, now)?;
        self.consensus_states = vec![TrustedHeight::of(header, self.state.options.hash_alg)];
        self.state.latest_height = header.height;
        self.state.frozen_height = None;
        Ok(())
    }

    fn proven_root(
        &self,
        height: u64,
        path: &[u8],
        value: Option<&[u8]>,
    ) -> Result<(Hash, StatePath), NativeError> {
        self.check_not_frozen()?;
        let trusted = self
            .trusted(height)
            .ok_or(NativeError::NoConsensusState { height })?;
        let path = StatePath::decode(path).map_err(NativeError::Path)?;
        proof::check_sizes(&path.key, value).map_err(NativeError::Path)?;
        Ok((trusted.root(), path))
    }
}

/// A header governance asks the client to trust: of the right chain, not expired, not from the future.
fn check_trusted_header(options: &TrustOptions, header: &Header, now: Time) -> Result<(), NativeError> {
    is_matching_chain_id(&options.chain_id, &header.chain_id)?;
    is_within_trusting_period(header.time, options.trusting_period(), now)?;
    is_header_from_past(header.time, options.max_clock_drift(), now)
}

impl LightClient for NativeClient {
    type Header = HeaderUpdate;
    type Proof = StateProof;
    type Misbehaviour = Misbehaviour;
    type Error = NativeError;

    fn chain_id(&self) -> &str {
        self.state.options.chain_id.as_str()
    }

    fn latest_height(&self) -> u64 {
        self.state.latest_height
    }

    fn status(&self, now: Time) -> ClientStatus {
        if self.state.frozen_height.is_some() {
            return ClientStatus::Frozen;
        }
        match self.consensus_states.last() {
            Some(latest)
                if is_within_trusting_period(
                    latest.consensus_state.time,
                    self.state.options.trusting_period(),
                    now,
                )
                .is_ok() =>
            {
                ClientStatus::Active
            }
            _ => ClientStatus::Expired,
        }
    }

    fn consensus_state(&self, height: u64) -> Option<&ConsensusState> {
        self.trusted(height).map(|t| &t.consensus_state)
    }

    fn verify_header(&mut self, update: HeaderUpdate, now: Time) -> Result<UpdateOutcome, NativeError> {
        self.check_not_frozen()?;
        let height = update.header.height;
        let known = self.trusted(height).map(|t| t.header_hash);
        if known == Some(update.header.hash(self.state.options.hash_alg)) {
            // Already trusted: nothing to verify, nothing changes.
            let consensus_state = self
                .consensus_state(height)
                .cloned()
                .ok_or(NativeError::NoConsensusState { height })?;
            return Ok(UpdateOutcome {
                height,
                consensus_state,
            });
        }
        let trusted = self.verify_update(&update, now, true)?;
        if known.is_some() {
            // A second header at a trusted height, proven by the chain's validators: misbehaviour.
            self.freeze(height);
            return Err(NativeError::ConflictingHeader { height });
        }
        let consensus_state = trusted.consensus_state.clone();
        self.record(trusted)?;
        Ok(UpdateOutcome {
            height,
            consensus_state,
        })
    }

    fn verify_membership(
        &self,
        height: u64,
        path: &[u8],
        value: &[u8],
        proof: &StateProof,
    ) -> Result<(), NativeError> {
        let (root, path) = self.proven_root(height, path, Some(value))?;
        Ok(proof::verify(
            self.state.options.hash_alg,
            &root,
            &path.namespace,
            &path.key,
            Some(value),
            proof,
        )?)
    }

    fn verify_non_membership(&self, height: u64, path: &[u8], proof: &StateProof) -> Result<(), NativeError> {
        let (root, path) = self.proven_root(height, path, None)?;
        Ok(proof::verify(
            self.state.options.hash_alg,
            &root,
            &path.namespace,
            &path.key,
            None,
            proof,
        )?)
    }

    fn check_misbehaviour(&mut self, evidence: Misbehaviour, now: Time) -> Result<bool, NativeError> {
        self.check_not_frozen()?;
        let (first, second) = (&evidence.first.header, &evidence.second.header);
        if first.height != second.height {
            return Err(NativeError::EvidenceHeightsDiffer {
                first: first.height,
                second: second.height,
            });
        }
        let alg = self.state.options.hash_alg;
        if first.hash(alg) == second.hash(alg) {
            return Ok(false);
        }
        self.verify_update(&evidence.first, now, false)?;
        self.verify_update(&evidence.second, now, false)?;
        self.freeze(first.height);
        Ok(true)
    }
}

/// Encoded form of a [`NativeClient`], checked before it becomes one.
#[derive(BorshDeserialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct NativeClientParts {
    state: ClientState,
    consensus_states: Vec<TrustedHeight>,
}

impl TryFrom<NativeClientParts> for NativeClient {
    type Error = String;
    fn try_from(parts: NativeClientParts) -> Result<Self, String> {
        let NativeClientParts {
            state,
            consensus_states,
        } = parts;
        state.validate().map_err(|e| e.to_string())?;
        let last = consensus_states.last().ok_or("no consensus state")?;
        if last.height != state.latest_height {
            return Err(format!(
                "latest height {} but last consensus state at {}",
                state.latest_height, last.height
            ));
        }
        if consensus_states.len() > state.options.max_consensus_states as usize {
            return Err(format!(
                "{} consensus states kept, at most {} allowed",
                consensus_states.len(),
                state.options.max_consensus_states
            ));
        }
        if consensus_states.windows(2).any(|w| w[0].height >= w[1].height) {
            return Err("consensus states not in strictly increasing height order".into());
        }
        if consensus_states
            .iter()
            .any(|t| t.consensus_state.root.len() != 32 || t.consensus_state.next_validators_hash.len() != 32)
        {
            return Err("consensus state hashes must be 32 bytes".into());
        }
        Ok(NativeClient {
            state,
            consensus_states,
            partial: false,
        })
    }
}

impl BorshDeserialize for NativeClient {
    fn deserialize_reader<R: std::io::Read>(reader: &mut R) -> std::io::Result<Self> {
        let parts = NativeClientParts::deserialize_reader(reader)?;
        NativeClient::try_from(parts).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
    }
}

impl<'de> Deserialize<'de> for NativeClient {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        NativeClient::try_from(<NativeClientParts as Deserialize>::deserialize(d)?)
            .map_err(serde::de::Error::custom)
    }
}

impl Canonical for NativeClient {
    const KIND: &'static str = "native client";
    /// The state, then up to [`MAX_CONSENSUS_STATES`] heights of 8 + 32 + (8 + 4 + 32 + 4 + 32) bytes.
    const MAX_LEN: usize = 1 + ClientState::MAX_LEN + 4 + MAX_CONSENSUS_STATES as usize * 120;
}

#[cfg(test)]
mod tests;
