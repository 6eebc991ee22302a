//! The one place that knows Malachite: our `Context` implementation (height, address, validator, validator set,
//! value, proposal, vote, signing scheme) and a thin adapter around Malachite's Tendermint [`Driver`] that speaks
//! only Causeway types ([`Feed`] in, [`Step`] out).
//!
//! **Owns**: the translation between Causeway's consensus types and Malachite's. **Must never**: sign, verify,
//! perform I/O or let a Malachite type escape this module — an upgrade of Malachite touches this file only.
//!
//! Malachite's round state machine and vote keeper count votes and decide; they never check signatures, so
//! everything fed in here has already been verified by [`super::core`].

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use arc_malachitebft_core_driver::{Driver, Input, Output, ThresholdParams};
use arc_malachitebft_core_types::{
    self as mtypes, LinearTimeouts, NilOrVal, PolkaCertificate, Round, SignedExtension, SignedMessage, Timeout, Validity, VoteType,
};
use causeway_light_client::{Address, Block, Hash, PublicKey, SecretKey, Signature, Suite, ValidatorSet};

use super::types::{block_bytes, proposer_index, round_robin, SignedProposal, SignedVote, TimeoutKind, Vote, VoteKind};

/// Timeout durations per round (base plus a per-round increment, capped), as Malachite's linear timeouts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RoundTimeouts {
    /// Wait for a proposal.
    pub propose: Duration,
    /// Wait after 2/3 prevoted anything.
    pub prevote: Duration,
    /// Wait after 2/3 precommitted anything.
    pub precommit: Duration,
    /// Added to each of the three per round.
    pub delta: Duration,
    /// Period of re-sending this validator's messages of the current height (fixed, not per round).
    pub rebroadcast: Duration,
    /// Upper bound of any timeout.
    pub max: Duration,
}

impl Default for RoundTimeouts {
    fn default() -> Self {
        RoundTimeouts {
            propose: Duration::from_millis(1500),
            prevote: Duration::from_millis(500),
            precommit: Duration::from_millis(500),
            delta: Duration::from_millis(250),
            rebroadcast: Duration::from_millis(1000),
            max: Duration::from_secs(30),
        }
    }
}

impl RoundTimeouts {
    fn linear(&self) -> LinearTimeouts {
        LinearTimeouts {
            propose: self.propose,
            propose_delta: self.delta,
            prevote: self.prevote,
            prevote_delta: self.delta,
            precommit: self.precommit,
            precommit_delta: self.delta,
            rebroadcast: self.rebroadcast,
            max_timeout: self.max,
        }
    }

    /// How long the timer of `kind` runs in `round`.
    pub fn duration(&self, kind: TimeoutKind, round: u32) -> Duration {
        let kind = match kind {
            // A fixed period, shorter than the step timeouts, so that lost messages are re-sent within a step.
            TimeoutKind::Rebroadcast => return self.rebroadcast.min(self.max),
            TimeoutKind::Propose => mtypes::TimeoutKind::Propose,
            TimeoutKind::Prevote => mtypes::TimeoutKind::Prevote,
            TimeoutKind::Precommit => mtypes::TimeoutKind::Precommit,
        };
        self.linear().duration_for(Timeout::new(Round::new(round), kind))
    }
}

// ---------------------------------------------------------------------------------------------------------------
// The Context and its types.

/// Causeway's Malachite context. Stateless: proposer selection and vote construction depend only on arguments.
#[derive(Clone, Debug)]
pub(crate) struct Ctx;

/// A validator address (newtype so Malachite's traits can be implemented for it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct MAddress(Address);

impl fmt::Display for MAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl mtypes::Address for MAddress {}

/// A block height.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct MHeight(u64);

impl fmt::Display for MHeight {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl mtypes::Height for MHeight {
    const ZERO: Self = MHeight(0);
    const INITIAL: Self = MHeight(1);
    fn increment_by(&self, n: u64) -> Self {
        MHeight(self.0.saturating_add(n))
    }
    fn decrement_by(&self, n: u64) -> Option<Self> {
        self.0.checked_sub(n).map(MHeight)
    }
    fn as_u64(&self) -> u64 {
        self.0
    }
}

/// The decided value: a whole block, identified by its header hash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct MValue {
    id: Hash,
    block: Arc<Block>,
}

impl PartialOrd for MValue {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for MValue {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.id.cmp(&other.id).then_with(|| {
            if Arc::ptr_eq(&self.block, &other.block) || self.block == other.block {
                std::cmp::Ordering::Equal
            } else {
                block_bytes(&self.block).cmp(&block_bytes(&other.block))
            }
        })
    }
}

impl mtypes::Value for MValue {
    type Id = Hash;
    fn id(&self) -> Hash {
        self.id
    }
}

/// A proposal as Malachite sees it (the signature travels beside it in a `SignedMessage`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct MProposal {
    height: MHeight,
    round: Round,
    pol_round: Round,
    value: MValue,
    proposer: MAddress,
}

impl mtypes::Proposal<Ctx> for MProposal {
    fn height(&self) -> MHeight {
        self.height
    }
    fn round(&self) -> Round {
        self.round
    }
    fn value(&self) -> &MValue {
        &self.value
    }
    fn take_value(self) -> MValue {
        self.value
    }
    fn pol_round(&self) -> Round {
        self.pol_round
    }
    fn validator_address(&self) -> &MAddress {
        &self.proposer
    }
}

/// A vote as Malachite sees it. Causeway uses no vote extensions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct MVote {
    height: MHeight,
    round: Round,
    value: NilOrVal<Hash>,
    kind: VoteType,
    validator: MAddress,
}

impl mtypes::Vote<Ctx> for MVote {
    fn height(&self) -> MHeight {
        self.height
    }
    fn round(&self) -> Round {
        self.round
    }
    fn value(&self) -> &NilOrVal<Hash> {
        &self.value
    }
    fn take_value(self) -> NilOrVal<Hash> {
        self.value
    }
    fn vote_type(&self) -> VoteType {
        self.kind
    }
    fn validator_address(&self) -> &MAddress {
        &self.validator
    }
    fn extension(&self) -> Option<&SignedExtension<Ctx>> {
        None
    }
    fn take_extension(&mut self) -> Option<SignedExtension<Ctx>> {
        None
    }
    fn extend(self, _extension: SignedExtension<Ctx>) -> Self {
        // Extensions are disabled for every height (the default policy), so none is ever attached.
        self
    }
}

/// A validator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct MValidator {
    address: MAddress,
    pub_key: PublicKey,
    power: u64,
}

impl mtypes::Validator<Ctx> for MValidator {
    fn address(&self) -> &MAddress {
        &self.address
    }
    fn public_key(&self) -> &PublicKey {
        &self.pub_key
    }
    fn voting_power(&self) -> u64 {
        self.power
    }
}

/// A validator set in Causeway's order (by address), so Malachite's indexes equal certificate indexes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct MValidatorSet {
    validators: Vec<MValidator>,
    total: u64,
}

impl MValidatorSet {
    fn new(set: &ValidatorSet) -> Self {
        let validators: Vec<_> = set
            .validators()
            .iter()
            .map(|v| MValidator { address: MAddress(v.address()), pub_key: v.pub_key.clone(), power: v.power })
            .collect();
        MValidatorSet { validators, total: set.total_power() }
    }
}

impl mtypes::ValidatorSet<Ctx> for MValidatorSet {
    fn count(&self) -> usize {
        self.validators.len()
    }
    fn total_voting_power(&self) -> u64 {
        self.total
    }
    fn get_by_address(&self, address: &MAddress) -> Option<&MValidator> {
        self.validators.binary_search_by_key(address, |v| v.address).ok().and_then(|i| self.validators.get(i))
    }
    fn get_by_index(&self, index: usize) -> Option<&MValidator> {
        self.validators.get(index)
    }
}

/// A signature, ordered by suite then bytes (Malachite keeps signatures in ordered collections).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct MSignature(Signature);

impl PartialOrd for MSignature {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for MSignature {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.0.suite(), self.0.as_bytes()).cmp(&(other.0.suite(), other.0.as_bytes()))
    }
}

/// Causeway's signature suites, as a Malachite signing scheme (encoding only: signing and verification go
/// through the light client's crypto, with Causeway's domain separation).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Scheme;

fn suite_tag(suite: Suite) -> u8 {
    match suite {
        Suite::Ed25519 => 0,
        Suite::Sm2 => 1,
        Suite::Secp256k1 => 2,
    }
}

fn suite_of(tag: u8) -> Result<Suite, String> {
    Suite::ALL.into_iter().find(|s| suite_tag(*s) == tag).ok_or_else(|| format!("unknown suite tag {tag}"))
}

impl mtypes::SigningScheme for Scheme {
    type DecodingError = String;
    type Signature = MSignature;
    type PublicKey = PublicKey;
    type PrivateKey = SecretKey;

    fn decode_signature(bytes: &[u8]) -> Result<MSignature, String> {
        let (tag, rest) = bytes.split_first().ok_or("empty signature")?;
        let raw: [u8; 64] = rest.try_into().map_err(|_| "a signature has 64 bytes".to_string())?;
        Ok(MSignature(match suite_of(*tag)? {
            Suite::Ed25519 => Signature::Ed25519(raw),
            Suite::Sm2 => Signature::Sm2(raw),
            Suite::Secp256k1 => Signature::Secp256k1(raw),
        }))
    }
    fn encode_signature(signature: &MSignature) -> Vec<u8> {
        let mut out = vec![suite_tag(signature.0.suite())];
        out.extend_from_slice(signature.0.as_bytes());
        out
    }
    fn decode_public_key(bytes: &[u8]) -> Result<PublicKey, String> {
        let (tag, rest) = bytes.split_first().ok_or("empty key")?;
        PublicKey::from_bytes(suite_of(*tag)?, rest).map_err(|e| e.to_string())
    }
    fn encode_public_key(key: &PublicKey) -> Vec<u8> {
        let mut out = vec![suite_tag(key.suite())];
        out.extend_from_slice(key.as_bytes());
        out
    }
}

/// Proposals travel whole (Malachite's "proposal only" mode), so there are no parts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum NoPart {}

impl mtypes::ProposalPart<Ctx> for NoPart {
    fn is_first(&self) -> bool {
        match *self {}
    }
    fn is_last(&self) -> bool {
        match *self {}
    }
}

impl mtypes::Context for Ctx {
    type Address = MAddress;
    type Height = MHeight;
    type ProposalPart = NoPart;
    type Proposal = MProposal;
    type Validator = MValidator;
    type ValidatorSet = MValidatorSet;
    type Timeouts = LinearTimeouts;
    type Value = MValue;
    type Vote = MVote;
    type Extension = ();
    type SigningScheme = Scheme;

    fn select_proposer<'a>(&self, set: &'a MValidatorSet, height: MHeight, round: Round) -> &'a MValidator {
        let i = round_robin(set.validators.len(), height.0, round.as_u32().unwrap_or(0));
        // A validator set is never empty (ValidatorSet::new refuses that); index 0 exists.
        &set.validators[i.min(set.validators.len().saturating_sub(1))]
    }

    fn new_proposal(&self, height: MHeight, round: Round, value: MValue, pol_round: Round, address: MAddress) -> MProposal {
        MProposal { height, round, pol_round, value, proposer: address }
    }

    fn new_prevote(&self, height: MHeight, round: Round, value: NilOrVal<Hash>, address: MAddress) -> MVote {
        MVote { height, round, value, kind: VoteType::Prevote, validator: address }
    }

    fn new_precommit(&self, height: MHeight, round: Round, value: NilOrVal<Hash>, address: MAddress) -> MVote {
        MVote { height, round, value, kind: VoteType::Precommit, validator: address }
    }
}

// ---------------------------------------------------------------------------------------------------------------
// The driver adapter.

/// An input for the Tendermint state machine, in Causeway terms.
pub(crate) enum Feed<'a> {
    /// Enter `round` (the proposer is computed here).
    NewRound(u32),
    /// The application's block for our own proposal in `round`.
    ProposeValue { round: u32, block: Arc<Block>, block_id: Hash },
    /// A verified proposal and the application's verdict on its block.
    Proposal { signed: &'a SignedProposal, block: Arc<Block>, block_id: Hash, valid: bool },
    /// A verified vote.
    Vote(&'a SignedVote),
    /// A timer of the current height elapsed.
    Timeout { kind: TimeoutKind, round: u32 },
    /// More than 2/3 of the power prevoted `block_id` in `round`, counting votes of validators that also cast a
    /// conflicting prevote (which the vote keeper, keeping only the first vote of each validator, cannot count).
    PolkaCertificate { round: u32, block_id: Hash, votes: &'a [SignedVote] },
}

/// What the state machine asks for, in Causeway terms.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// A new round started; feed [`Feed::NewRound`] back.
    NewRound(u32),
    /// Sign and send this proposal (and feed it back as a valid proposal).
    Propose { round: u32, pol_round: Option<u32>, block: Arc<Block>, block_id: Hash },
    /// Sign and send this vote (and feed it back).
    Vote(Vote),
    /// Start a timer.
    ScheduleTimeout { kind: TimeoutKind, round: u32, duration: Duration },
    /// Ask the application for a block to propose in `round`, within `timeout`.
    GetValue { round: u32, timeout: Duration },
    /// `block` is decided by the precommits of `round` (the round of its proposal, which may be earlier than the
    /// round we are in).
    Decide { round: u32, block: Arc<Block>, block_id: Hash },
}

/// Malachite's driver for one height, behind Causeway types.
pub(crate) struct TendermintDriver {
    driver: Driver<Ctx>,
    height: u64,
    timeouts: RoundTimeouts,
    set: ValidatorSet,
}

impl TendermintDriver {
    /// A driver for `height` run by `address` (which need not be a validator) with `set`.
    pub(crate) fn new(address: Address, height: u64, set: &ValidatorSet, timeouts: RoundTimeouts) -> Self {
        let driver =
            Driver::new(Ctx, MHeight(height), MValidatorSet::new(set), MAddress(address), ThresholdParams::default());
        TendermintDriver { driver, height, timeouts, set: set.clone() }
    }

    /// The current round (`None` before the first round starts).
    pub(crate) fn round(&self) -> Option<u32> {
        self.driver.round().as_u32()
    }

    /// Apply one input; `Err` carries the driver's complaint as text.
    pub(crate) fn feed(&mut self, feed: Feed<'_>) -> Result<Vec<Step>, String> {
        let input = match feed {
            Feed::NewRound(round) => {
                let proposer = self.set.get(proposer_index(&self.set, self.height, round)).map(|v| v.address());
                let proposer = proposer.ok_or("empty validator set")?;
                Input::NewRound(MHeight(self.height), Round::new(round), MAddress(proposer))
            }
            Feed::ProposeValue { round, block, block_id } => {
                Input::ProposeValue(Round::new(round), MValue { id: block_id, block })
            }
            Feed::Proposal { signed, block, block_id, valid } => {
                let p = &signed.proposal;
                let proposal = MProposal {
                    height: MHeight(p.height),
                    round: Round::new(p.round),
                    pol_round: Round::from(p.pol_round),
                    value: MValue { id: block_id, block },
                    proposer: MAddress(p.proposer),
                };
                Input::Proposal(SignedMessage::new(proposal, MSignature(signed.signature.clone())), Validity::from_bool(valid))
            }
            Feed::Vote(signed) => Input::Vote(SignedMessage::new(to_mvote(&signed.vote), MSignature(signed.signature.clone()))),
            Feed::PolkaCertificate { round, block_id, votes } => {
                let votes = votes
                    .iter()
                    .map(|v| SignedMessage::new(to_mvote(&v.vote), MSignature(v.signature.clone())))
                    .collect();
                Input::PolkaCertificate(PolkaCertificate::new(MHeight(self.height), Round::new(round), block_id, votes))
            }
            Feed::Timeout { kind, round } => {
                let kind = match kind {
                    TimeoutKind::Propose => mtypes::TimeoutKind::Propose,
                    TimeoutKind::Prevote => mtypes::TimeoutKind::Prevote,
                    TimeoutKind::Precommit => mtypes::TimeoutKind::Precommit,
                    TimeoutKind::Rebroadcast => return Ok(Vec::new()),
                };
                Input::TimeoutElapsed(Timeout::new(Round::new(round), kind))
            }
        };
        let outputs = self.driver.process(input).map_err(|e| e.to_string())?;
        Ok(outputs.into_iter().filter_map(|o| self.lift(o)).collect())
    }

    fn lift(&self, output: Output<Ctx>) -> Option<Step> {
        Some(match output {
            Output::NewRound(_, round) => Step::NewRound(round.as_u32()?),
            Output::Propose(p) => Step::Propose {
                round: p.round.as_u32()?,
                pol_round: p.pol_round.as_u32(),
                block: p.value.block,
                block_id: p.value.id,
            },
            Output::Vote(v) => Step::Vote(from_mvote(&v)),
            Output::ScheduleTimeout(t) => {
                let kind = match t.kind {
                    mtypes::TimeoutKind::Propose => TimeoutKind::Propose,
                    mtypes::TimeoutKind::Prevote => TimeoutKind::Prevote,
                    mtypes::TimeoutKind::Precommit => TimeoutKind::Precommit,
                    mtypes::TimeoutKind::Rebroadcast => TimeoutKind::Rebroadcast,
                    mtypes::TimeoutKind::FinalizeHeight(_) => return None,
                };
                let round = t.round.as_u32()?;
                Step::ScheduleTimeout { kind, round, duration: self.timeouts.duration(kind, round) }
            }
            Output::GetValue(_, round, t) => {
                let round = round.as_u32()?;
                Step::GetValue { round, timeout: self.timeouts.duration(TimeoutKind::Propose, t.round.as_u32().unwrap_or(round)) }
            }
            // Malachite names the round we are in; the quorum of precommits is in the proposal's round (L49), which
            // is earlier when the last precommit of a past round arrives after we moved on.
            Output::Decide(_, p) => Step::Decide { round: p.round.as_u32()?, block: p.value.block, block_id: p.value.id },
        })
    }

    /// The precommits the vote keeper holds for `block_id` in `round` (each verified before it was fed).
    pub(crate) fn precommits(&self, round: u32, block_id: &Hash) -> Vec<SignedVote> {
        self.driver
            .restore_precommits(Round::new(round), block_id)
            .into_iter()
            .map(|sv| SignedVote { vote: from_mvote(&sv.message), signature: sv.signature.0 })
            .collect()
    }
}

fn to_mvote(v: &Vote) -> MVote {
    MVote {
        height: MHeight(v.height),
        round: Round::new(v.round),
        value: v.block_id.map_or(NilOrVal::Nil, NilOrVal::Val),
        kind: match v.kind {
            VoteKind::Prevote => VoteType::Prevote,
            VoteKind::Precommit => VoteType::Precommit,
        },
        validator: MAddress(v.validator),
    }
}

fn from_mvote(v: &MVote) -> Vote {
    Vote {
        height: v.height.0,
        round: v.round.as_u32().unwrap_or(0),
        kind: match v.kind {
            VoteType::Prevote => VoteKind::Prevote,
            VoteType::Precommit => VoteKind::Precommit,
        },
        block_id: match v.value {
            NilOrVal::Nil => None,
            NilOrVal::Val(h) => Some(h),
        },
        validator: v.validator.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arc_malachitebft_core_types::SigningScheme as _;

    #[test]
    fn signature_and_key_encodings_round_trip() {
        for suite in Suite::ALL {
            let key = SecretKey::from_bytes(suite, &[7; 32]).expect("key");
            let sig = MSignature(key.sign_raw(b"x"));
            assert_eq!(Scheme::decode_signature(&Scheme::encode_signature(&sig)).expect("sig"), sig);
            let pk = key.public_key();
            assert_eq!(Scheme::decode_public_key(&Scheme::encode_public_key(&pk)).expect("pk"), pk);
        }
        assert!(Scheme::decode_signature(&[9; 65]).is_err());
        assert!(Scheme::decode_signature(&[]).is_err());
    }

    #[test]
    fn votes_survive_the_translation() {
        let v = Vote { height: 4, round: 2, kind: VoteKind::Precommit, block_id: Some(Hash([3; 32])), validator: Address([1; 20]) };
        assert_eq!(from_mvote(&to_mvote(&v)), v);
        let nil = Vote { block_id: None, kind: VoteKind::Prevote, ..v };
        assert_eq!(from_mvote(&to_mvote(&nil)), nil);
    }
}
