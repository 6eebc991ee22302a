//! The consensus core: a pure, deterministic state machine around Malachite's Tendermint driver.
//!
//! **Owns**: checking every incoming message (height window, round bound, validator membership, designated
//! proposer, signature through the light client's crypto, block structure), asking the application to validate
//! proposed blocks (a proposal is never fed as valid without the application's verdict), signing our own
//! proposals and votes (never two different ones for one height/round/kind), the WAL entries that make a restart
//! safe, timers, and the commit certificate of every decision.
//!
//! **Must never**: perform I/O, read a clock, spawn or panic on input. Inputs come in through
//! [`Consensus::start_height`] and [`Consensus::handle`]; everything to do comes out as a list of [`Effect`]s
//! that the shell performs in order.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use causeway_light_client::{
    Address, Block, ChainId, CommitCertificate, Hash, HashAlg, SecretKey, SignKind, Time, ValidatorSet,
};

use super::malachite::{Feed, RoundTimeouts, Step, TendermintDriver};
use super::types::{
    certificate_from_precommits, last_commit_hash, proposer_address, verify_commit, CertificateError, ConsensusMsg,
    Proposal, SignedProposal, SignedVote, TimeoutKind, Vote, VoteKind,
};
use super::wal::WalEntry;

/// Static settings of the core.
#[derive(Clone, Debug)]
pub struct ConsensusConfig {
    /// The chain (bound into every signature).
    pub chain_id: ChainId,
    /// The chain's hash (header hashes are value ids).
    pub hash_alg: HashAlg,
    /// Timer durations.
    pub timeouts: RoundTimeouts,
    /// Messages for rounds above this are refused (bounds memory and keeps round arithmetic far from overflow).
    pub max_round: u32,
    /// How many messages for the next height are kept until this node gets there.
    pub max_buffered: usize,
}

impl ConsensusConfig {
    /// Defaults for `chain_id`: SHA-256, default timeouts, rounds up to 10 000, 10 000 buffered messages.
    pub fn new(chain_id: ChainId) -> Self {
        ConsensusConfig {
            chain_id,
            hash_alg: HashAlg::Sha256,
            timeouts: RoundTimeouts::default(),
            max_round: 10_000,
            max_buffered: 10_000,
        }
    }
}

/// What a height builds on: the previous block's id and time, the certificate that decided it, and the set that
/// signed it (to check the `last_commit` every proposal carries).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Parent {
    /// Header hash of the previous block.
    pub block_id: Hash,
    /// Its time (a new block's time must be later).
    pub time: Time,
    /// A certificate that decided it.
    pub commit: CommitCertificate,
    /// The validator set of the previous height.
    pub validators: ValidatorSet,
}

/// An input to the core.
#[derive(Clone, Debug)]
pub enum Input {
    /// A message from the network (decoded with [`causeway_light_client::Canonical::decode`]).
    Message(ConsensusMsg),
    /// A timer scheduled with [`Effect::ScheduleTimeout`] elapsed.
    TimeoutElapsed {
        /// Height of the timer.
        height: u64,
        /// Round of the timer.
        round: u32,
        /// Which timer.
        kind: TimeoutKind,
    },
    /// The application built the block requested with [`Effect::RequestValue`].
    ValueReady {
        /// Height asked for.
        height: u64,
        /// Round asked for.
        round: u32,
        /// The block.
        block: Block,
    },
    /// The application's verdict on a block sent with [`Effect::RequestValidation`].
    Verdict {
        /// Height of the block.
        height: u64,
        /// Its header hash.
        block_id: Hash,
        /// Whether executing its checks succeeded.
        valid: bool,
    },
    /// Block sync delivered a block of the current height with its certificate.
    Synced {
        /// The block.
        block: Block,
        /// A certificate for it.
        certificate: CommitCertificate,
    },
}

/// Something the shell must do, in order.
#[allow(clippy::large_enum_variant)] // short-lived; boxing would add an allocation per effect
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Effect {
    /// Append to the WAL ([`WalEntry::StartHeight`] truncates it first). Buffered; see [`Effect::FlushWal`].
    Wal(WalEntry),
    /// Make every appended WAL entry durable (fsync) before performing the next effect.
    FlushWal,
    /// Send to every peer.
    Broadcast(ConsensusMsg),
    /// Start a timer; when it elapses, feed [`Input::TimeoutElapsed`].
    ScheduleTimeout {
        /// Height.
        height: u64,
        /// Round.
        round: u32,
        /// Which timer.
        kind: TimeoutKind,
        /// After how long.
        duration: Duration,
    },
    /// We propose in this round: build a block and feed [`Input::ValueReady`].
    RequestValue {
        /// Height.
        height: u64,
        /// Round.
        round: u32,
        /// Our address (the header's proposer).
        proposer: Address,
        /// The header's `parent_hash` (zero at height 1).
        parent_hash: Hash,
        /// The block's `last_commit` (none at height 1).
        last_commit: Option<CommitCertificate>,
        /// The header's time must be later than this (the parent's time).
        after: Time,
        /// How long the proposer has before others give up on its proposal.
        deadline: Duration,
    },
    /// Execute the checks of this proposed block and feed [`Input::Verdict`].
    RequestValidation {
        /// Height.
        height: u64,
        /// Header hash.
        block_id: Hash,
        /// The block.
        block: Block,
    },
    /// A block is decided. Store it durably with its certificate, then call [`Consensus::start_height`] for the
    /// next height.
    Decided {
        /// The block.
        block: Block,
        /// More than 2/3 of the power precommitted it.
        certificate: CommitCertificate,
    },
    /// A validator is at a later height than us: ask it (block sync) for the blocks we miss.
    PeerAhead {
        /// The validator.
        peer: Address,
        /// Its height.
        height: u64,
    },
    /// A validator signed two different messages for one slot: evidence for governance.
    Equivocation {
        /// The first message.
        first: ConsensusMsg,
        /// The conflicting one.
        second: ConsensusMsg,
    },
    /// The state machine asked for a signature that would conflict with one we already gave (possible only
    /// with a damaged WAL or a bug). Nothing was signed.
    DoubleSignPrevented {
        /// Height.
        height: u64,
        /// Round.
        round: u32,
        /// "proposal", "prevote" or "precommit".
        what: &'static str,
    },
}

/// Why an input was refused. Refused inputs change nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConsensusError {
    /// [`Consensus::start_height`] was not called yet.
    #[error("consensus has not started a height")]
    NotStarted,
    /// The message is for a height already decided here.
    #[error("message for past height {got} (now at {current})")]
    StaleHeight {
        /// Its height.
        got: u64,
        /// Ours.
        current: u64,
    },
    /// The message is for a height more than one ahead.
    #[error("message for far-future height {got} (now at {current})")]
    FarFutureHeight {
        /// Its height.
        got: u64,
        /// Ours.
        current: u64,
        /// Who signed it (unverified).
        signer: Address,
    },
    /// The buffer for next-height messages is full.
    #[error("buffer for next-height messages is full")]
    BufferFull,
    /// The round is beyond [`ConsensusConfig::max_round`].
    #[error("round {round} above the limit {max}")]
    RoundTooHigh {
        /// Its round.
        round: u32,
        /// The limit.
        max: u32,
    },
    /// The signer is not in the validator set of the height.
    #[error("{0} is not a validator at this height")]
    NotAValidator(Address),
    /// The proposal does not come from the round's proposer.
    #[error("proposal from {got}, but the proposer of the round is {expected}")]
    WrongProposer {
        /// The designated proposer.
        expected: Address,
        /// The signer.
        got: Address,
    },
    /// The signature does not verify.
    #[error("bad signature from {0}")]
    BadSignature(Address),
    /// The message breaks a structural rule.
    #[error("malformed message: {0}")]
    Malformed(String),
    /// A block from sync or from our application does not fit the height.
    #[error("block refused: {0}")]
    InvalidBlock(String),
    /// A synced certificate does not prove the block.
    #[error("certificate refused: {0}")]
    Certificate(#[from] CertificateError),
    /// The Tendermint driver refused the input.
    #[error("state machine: {0}")]
    Driver(String),
}

/// Result alias of this module.
pub type Result<T> = std::result::Result<T, ConsensusError>;

/// How many different blocks one validator's prevotes of one round may count towards (its first vote included):
/// an equivocator can sign any number, and each one kept costs memory.
const MAX_PREVOTED_VALUES: usize = 4;

/// How many past rounds of our own votes the rebroadcast timer re-sends.
const REBROADCAST_ROUNDS: u32 = 8;

/// From this round on, a validator that locks on a value (precommits it) also sends the round's proposal and the
/// prevotes that made it lock, so that every validator learns of the lock in that round (Malachite's "hidden
/// lock" mitigation). Round 0 is left out: it decides in a healthy network, and the block would travel twice.
const SHARE_LOCK_FROM_ROUND: u32 = 1;

/// An input queued for the driver (owned form of [`Feed`]).
#[allow(clippy::large_enum_variant)] // short-lived queue entries
enum Pending {
    NewRound(u32),
    ProposeValue { round: u32, block: Arc<Block>, block_id: Hash },
    Proposal { signed: SignedProposal, block: Arc<Block>, block_id: Hash, valid: bool },
    Vote(SignedVote),
    Timeout { kind: TimeoutKind, round: u32 },
    PolkaCertificate { round: u32, block_id: Hash, votes: Vec<SignedVote> },
}

/// Everything about the height in progress.
struct HeightState {
    height: u64,
    validators: ValidatorSet,
    validators_hash: Hash,
    parent: Option<Parent>,
    driver: TendermintDriver,
    /// What we signed, by (round, kind); the double-sign guard.
    own_votes: BTreeMap<(u32, VoteKind), SignedVote>,
    own_proposals: BTreeMap<u32, SignedProposal>,
    /// First proposal seen per round.
    proposals: BTreeMap<u32, SignedProposal>,
    /// The application's verdicts, by block id.
    verdicts: BTreeMap<Hash, bool>,
    /// Proposals waiting for a verdict, by block id.
    awaiting: BTreeMap<Hash, Vec<SignedProposal>>,
    /// First vote seen per (validator, round, kind).
    votes: BTreeMap<(Address, u32, VoteKind), SignedVote>,
    /// Every verified prevote for a block, conflicting ones included, by (round, block id) and voter.
    prevotes_for: BTreeMap<(u32, Hash), BTreeMap<Address, SignedVote>>,
    /// Slots (voter, round, kind) in which a conflicting vote was already handled. One conflicting vote per slot
    /// is evidence enough; later ones change nothing, so that a Byzantine validator signing any number of
    /// values can make us neither store nor relay without bound.
    conflicts: BTreeSet<(Address, u32, VoteKind)>,
    /// Validators seen signing conflicting votes at this height.
    equivocators: BTreeSet<Address>,
    /// Slots of equivocators whose first vote (as we saw it) we relayed.
    relayed: BTreeSet<(Address, u32, VoteKind)>,
    /// (round, block) polkas that needed conflicting voters and were fed to the driver as certificates.
    polkas_fed: BTreeSet<(u32, Hash)>,
    /// Peers reported ahead of us at this height.
    reported_ahead: BTreeSet<Address>,
    decided: Option<Hash>,
}

/// The consensus core of one node (validator or not).
pub struct Consensus {
    cfg: ConsensusConfig,
    key: SecretKey,
    address: Address,
    state: Option<HeightState>,
    /// Messages for the next height.
    future: Vec<ConsensusMsg>,
    /// While replaying the WAL, entries are not written again.
    replaying: bool,
}

/// How a block's structure fails.
enum BlockFault {
    /// The signed header breaks a rule: the proposal is invalid.
    Invalid(String),
    /// The body does not match the signed header: the message was damaged or forged in transit.
    Malformed(String),
}

impl Consensus {
    /// A core signing with `key`. Nothing happens until [`Consensus::start_height`].
    pub fn new(cfg: ConsensusConfig, key: SecretKey) -> Self {
        let address = key.public_key().address();
        Consensus { cfg, key, address, state: None, future: Vec::new(), replaying: false }
    }

    /// Our address.
    pub fn address(&self) -> Address {
        self.address
    }

    /// The height in progress.
    pub fn height(&self) -> Option<u64> {
        self.state.as_ref().map(|s| s.height)
    }

    /// The round in progress.
    pub fn round(&self) -> Option<u32> {
        self.state.as_ref().and_then(|s| s.driver.round())
    }

    /// Whether the height in progress is decided (waiting for the next [`Consensus::start_height`]).
    pub fn is_decided(&self) -> bool {
        self.state.as_ref().is_some_and(|s| s.decided.is_some())
    }

    /// Start `height` with its validator set and parent, replaying `wal` (the entries read back by
    /// [`super::wal::decode_log`]; entries of other heights are ignored). After a crash this re-derives the
    /// round state, locks and our own signatures; the effects include re-sending what we had signed.
    pub fn start_height(
        &mut self,
        height: u64,
        validators: ValidatorSet,
        parent: Option<Parent>,
        wal: &[WalEntry],
    ) -> Result<Vec<Effect>> {
        if height == 0 {
            return Err(ConsensusError::InvalidBlock("height 0".into()));
        }
        if let Some(p) = &parent {
            if p.commit.height + 1 != height || p.commit.block_id != p.block_id {
                return Err(ConsensusError::InvalidBlock("parent certificate does not match the parent".into()));
            }
        }
        let driver = TendermintDriver::new(self.address, height, &validators, self.cfg.timeouts);
        let mut hs = HeightState {
            height,
            validators_hash: validators.hash(self.cfg.hash_alg),
            validators,
            parent,
            driver,
            own_votes: BTreeMap::new(),
            own_proposals: BTreeMap::new(),
            proposals: BTreeMap::new(),
            verdicts: BTreeMap::new(),
            awaiting: BTreeMap::new(),
            votes: BTreeMap::new(),
            prevotes_for: BTreeMap::new(),
            conflicts: BTreeSet::new(),
            equivocators: BTreeSet::new(),
            relayed: BTreeSet::new(),
            polkas_fed: BTreeSet::new(),
            reported_ahead: BTreeSet::new(),
            decided: None,
        };
        let replay: Vec<&WalEntry> = wal.iter().filter(|e| e.height() == height).collect();
        for e in &replay {
            match e {
                WalEntry::OwnVote(v) => {
                    hs.own_votes.insert((v.vote.round, v.vote.kind), v.clone());
                }
                WalEntry::OwnProposal(p) => {
                    hs.own_proposals.insert(p.proposal.round, p.clone());
                }
                _ => {}
            }
        }
        self.state = Some(hs);
        let mut effects = Vec::new();
        let restarting = replay.iter().any(|e| !matches!(e, WalEntry::StartHeight { .. }));
        if !restarting {
            effects.push(Effect::Wal(WalEntry::StartHeight { height }));
        }
        self.replaying = restarting;
        let started = self.drive(Pending::NewRound(0), &mut effects);
        let mut replayed = Vec::new();
        for e in replay {
            // Entries were checked before they were written; one that no longer applies is skipped.
            let _ = match e {
                WalEntry::Proposal { proposal, valid } => {
                    if let Some(s) = self.state.as_mut() {
                        s.verdicts.insert(proposal.proposal.block.header.hash(self.cfg.hash_alg), *valid);
                    }
                    self.on_proposal(proposal.clone(), &mut replayed)
                }
                WalEntry::Vote(v) => self.on_vote(v.clone(), &mut replayed),
                WalEntry::Timeout { height, round, kind } => self.on_timeout(*height, *round, *kind, &mut replayed),
                WalEntry::ProposeValue { height, round, block } => {
                    self.on_value(*height, *round, block.clone(), &mut replayed)
                }
                WalEntry::StartHeight { .. } | WalEntry::OwnVote(_) | WalEntry::OwnProposal(_) => Ok(()),
            };
        }
        self.replaying = false;
        effects.extend(replayed.into_iter().filter(|e| !matches!(e, Effect::Wal(_) | Effect::FlushWal)));
        started?;
        // Messages that arrived early for this height.
        let future = std::mem::take(&mut self.future);
        for msg in future {
            if msg.height() == height {
                let _ = self.on_message(msg, &mut effects);
            } else if msg.height() == height + 1 {
                self.future.push(msg);
            }
        }
        Ok(effects)
    }

    /// Handle one input.
    pub fn handle(&mut self, input: Input) -> Result<Vec<Effect>> {
        let mut effects = Vec::new();
        match input {
            Input::Message(msg) => self.on_message(msg, &mut effects)?,
            Input::TimeoutElapsed { height, round, kind } => self.on_timeout(height, round, kind, &mut effects)?,
            Input::ValueReady { height, round, block } => self.on_value(height, round, block, &mut effects)?,
            Input::Verdict { height, block_id, valid } => self.on_verdict(height, block_id, valid, &mut effects)?,
            Input::Synced { block, certificate } => self.on_synced(block, certificate, &mut effects)?,
        }
        Ok(effects)
    }

    fn state(&self) -> Result<&HeightState> {
        self.state.as_ref().ok_or(ConsensusError::NotStarted)
    }

    fn state_mut(&mut self) -> Result<&mut HeightState> {
        self.state.as_mut().ok_or(ConsensusError::NotStarted)
    }

    fn on_message(&mut self, msg: ConsensusMsg, effects: &mut Vec<Effect>) -> Result<()> {
        let hs = self.state()?;
        let (height, current) = (msg.height(), hs.height);
        if height < current {
            return Err(ConsensusError::StaleHeight { got: height, current });
        }
        if height > current + 1 {
            return Err(ConsensusError::FarFutureHeight { got: height, current, signer: msg.signer() });
        }
        if height == current + 1 {
            let signer = msg.signer();
            let known = hs.validators.index_of(&signer).is_some();
            if self.future.len() >= self.cfg.max_buffered {
                return Err(ConsensusError::BufferFull);
            }
            if !self.future.contains(&msg) {
                self.future.push(msg);
            }
            let hs = self.state_mut()?;
            if known && hs.reported_ahead.insert(signer) {
                effects.push(Effect::PeerAhead { peer: signer, height });
            }
            return Ok(());
        }
        match msg {
            ConsensusMsg::Proposal(p) => self.on_proposal(p, effects),
            ConsensusMsg::Vote(v) => self.on_vote(v, effects),
        }
    }

    fn check_round(&self, round: u32) -> Result<()> {
        if round > self.cfg.max_round {
            return Err(ConsensusError::RoundTooHigh { round, max: self.cfg.max_round });
        }
        Ok(())
    }

    fn on_vote(&mut self, sv: SignedVote, effects: &mut Vec<Effect>) -> Result<()> {
        self.check_round(sv.vote.round)?;
        if sv.vote.block_id == Some(Hash::ZERO) {
            return Err(ConsensusError::Malformed("vote for the zero hash".into()));
        }
        let chain_id = self.cfg.chain_id.as_str().to_string();
        let replaying = self.replaying;
        let hs = self.state_mut()?;
        if sv.vote.height != hs.height {
            return Err(ConsensusError::StaleHeight { got: sv.vote.height, current: hs.height });
        }
        if hs.decided.is_some() {
            return Ok(());
        }
        let v = &sv.vote;
        let validator = hs
            .validators
            .index_of(&v.validator)
            .and_then(|i| hs.validators.get(i))
            .ok_or(ConsensusError::NotAValidator(v.validator))?;
        let slot = (v.validator, v.round, v.kind);
        if let Some(first) = hs.votes.get(&slot) {
            if first.vote == sv.vote {
                return Ok(());
            }
            // After the first conflict of a slot, only a prevote for a block still matters (it may complete that
            // block's polka), and only for a few blocks per voter and round.
            let counts = match (v.kind, v.block_id) {
                (VoteKind::Prevote, Some(b)) => {
                    let theirs = hs.prevotes_for.range((v.round, Hash::ZERO)..=(v.round, Hash([0xff; 32])));
                    let values = theirs.filter(|(_, voters)| voters.contains_key(&v.validator)).count();
                    values < MAX_PREVOTED_VALUES
                        && !hs.prevotes_for.get(&(v.round, b)).is_some_and(|m| m.contains_key(&v.validator))
                }
                _ => false,
            };
            if hs.conflicts.contains(&slot) && !counts {
                return Ok(());
            }
            validator
                .pub_key
                .verify_raw(&sv.vote.sign_bytes(&chain_id), &sv.signature)
                .map_err(|_| ConsensusError::BadSignature(v.validator))?;
            if !hs.conflicts.insert(slot) {
                self.wal(WalEntry::Vote(sv.clone()), effects);
                return match self.record_prevote(&sv) {
                    Some(polka) => self.drive(polka, effects),
                    None => Ok(()),
                };
            }
            let first = first.clone();
            // Relay both votes: every honest node must learn of the conflict, and of the vote it may lack. An
            // equivocator may show each validator a different vote in every slot, so from now on we also relay,
            // once per slot, every vote of it we saw first: the others may have been shown another one.
            if !replaying {
                if hs.relayed.insert(slot) {
                    effects.push(Effect::Broadcast(ConsensusMsg::Vote(first.clone())));
                }
                effects.push(Effect::Broadcast(ConsensusMsg::Vote(sv.clone())));
                if hs.equivocators.insert(v.validator) {
                    let theirs = (v.validator, 0, VoteKind::Prevote)..=(v.validator, u32::MAX, VoteKind::Precommit);
                    for (s, vote) in hs.votes.range(theirs) {
                        if hs.relayed.insert(*s) {
                            effects.push(Effect::Broadcast(ConsensusMsg::Vote(vote.clone())));
                        }
                    }
                }
            }
            effects.push(Effect::Equivocation {
                first: ConsensusMsg::Vote(first),
                second: ConsensusMsg::Vote(sv.clone()),
            });
            self.wal(WalEntry::Vote(sv.clone()), effects);
            // The vote keeper counts only a validator's first vote; a prevote for a block still counts towards
            // that block's polka (Tendermint counts 2f+1 prevotes for the value, whatever else their senders sent).
            return match self.record_prevote(&sv) {
                Some(polka) => self.drive(polka, effects),
                None => Ok(()),
            };
        }
        validator
            .pub_key
            .verify_raw(&sv.vote.sign_bytes(&chain_id), &sv.signature)
            .map_err(|_| ConsensusError::BadSignature(v.validator))?;
        hs.votes.insert(slot, sv.clone());
        if hs.equivocators.contains(&v.validator) && !replaying && hs.relayed.insert(slot) {
            effects.push(Effect::Broadcast(ConsensusMsg::Vote(sv.clone())));
        }
        self.wal(WalEntry::Vote(sv.clone()), effects);
        let polka = self.record_prevote(&sv);
        self.drive(Pending::Vote(sv), effects)?;
        match polka {
            Some(polka) => self.drive(polka, effects),
            None => Ok(()),
        }
    }

    /// Remember a verified prevote for a block (see [`count_prevote`]).
    fn record_prevote(&mut self, sv: &SignedVote) -> Option<Pending> {
        count_prevote(self.state.as_mut()?, sv)
    }

    fn on_proposal(&mut self, sp: SignedProposal, effects: &mut Vec<Effect>) -> Result<()> {
        let p = &sp.proposal;
        self.check_round(p.round)?;
        if p.pol_round.is_some_and(|pol| pol >= p.round) {
            return Err(ConsensusError::Malformed("proof-of-lock round not below the proposal round".into()));
        }
        let alg = self.cfg.hash_alg;
        let chain_id = self.cfg.chain_id.as_str().to_string();
        let hs = self.state()?;
        if p.height != hs.height {
            return Err(ConsensusError::StaleHeight { got: p.height, current: hs.height });
        }
        if hs.decided.is_some() {
            return Ok(());
        }
        let expected = proposer_address(&hs.validators, p.height, p.round);
        if p.proposer != expected {
            return Err(ConsensusError::WrongProposer { expected, got: p.proposer });
        }
        let key = hs
            .validators
            .index_of(&p.proposer)
            .and_then(|i| hs.validators.get(i))
            .map(|v| v.pub_key.clone())
            .ok_or(ConsensusError::NotAValidator(p.proposer))?;
        let block_id = p.block.header.hash(alg);
        let message = Proposal::message_for(p.height, p.round, p.pol_round, &block_id);
        if let Some(first) = hs.proposals.get(&p.round) {
            if first.proposal == sp.proposal {
                return Ok(());
            }
            key.verify(&chain_id, SignKind::Proposal, &message, &sp.signature)
                .map_err(|_| ConsensusError::BadSignature(p.proposer))?;
            if first.proposal.block.header == sp.proposal.block.header && first.proposal.pol_round == p.pol_round {
                // Same signed content, different body: damaged in transit, not equivocation.
                return Err(ConsensusError::Malformed("block body differs from the signed header".into()));
            }
            effects.push(Effect::Equivocation {
                first: ConsensusMsg::Proposal(first.clone()),
                second: ConsensusMsg::Proposal(sp),
            });
            return Ok(());
        }
        key.verify(&chain_id, SignKind::Proposal, &message, &sp.signature)
            .map_err(|_| ConsensusError::BadSignature(p.proposer))?;
        // A value re-proposed with a proof-of-lock round was built by the proposer of an earlier round.
        let builder = if sp.proposal.pol_round.is_some() { None } else { Some(sp.proposal.proposer) };
        let fault = self.check_block(hs, &sp.proposal.block, builder);
        let verdict = match fault {
            Some(BlockFault::Malformed(reason)) => return Err(ConsensusError::Malformed(reason)),
            Some(BlockFault::Invalid(_)) => Some(false),
            None => hs.verdicts.get(&block_id).copied(),
        };
        let replaying = self.replaying;
        let hs = self.state_mut()?;
        hs.proposals.insert(sp.proposal.round, sp.clone());
        match verdict {
            Some(valid) => self.feed_proposal(sp, block_id, valid, effects),
            None => {
                let waiting = hs.awaiting.entry(block_id).or_default();
                let first_request = waiting.is_empty();
                waiting.push(sp.clone());
                if first_request && !replaying {
                    effects.push(Effect::RequestValidation { height: hs.height, block_id, block: sp.proposal.block });
                }
                Ok(())
            }
        }
    }

    fn feed_proposal(&mut self, sp: SignedProposal, block_id: Hash, valid: bool, effects: &mut Vec<Effect>) -> Result<()> {
        self.wal(WalEntry::Proposal { proposal: sp.clone(), valid }, effects);
        let block = Arc::new(sp.proposal.block.clone());
        self.drive(Pending::Proposal { signed: sp, block, block_id, valid }, effects)
    }

    fn on_verdict(&mut self, height: u64, block_id: Hash, valid: bool, effects: &mut Vec<Effect>) -> Result<()> {
        let hs = self.state_mut()?;
        if height != hs.height || hs.decided.is_some() {
            return Ok(());
        }
        hs.verdicts.insert(block_id, valid);
        let waiting = hs.awaiting.remove(&block_id).unwrap_or_default();
        for sp in waiting {
            self.feed_proposal(sp, block_id, valid, effects)?;
        }
        Ok(())
    }

    fn on_value(&mut self, height: u64, round: u32, block: Block, effects: &mut Vec<Effect>) -> Result<()> {
        self.check_round(round)?;
        let alg = self.cfg.hash_alg;
        let hs = self.state()?;
        if height != hs.height || hs.decided.is_some() {
            return Ok(());
        }
        if let Some(BlockFault::Invalid(r) | BlockFault::Malformed(r)) = self.check_block(hs, &block, Some(self.address)) {
            return Err(ConsensusError::InvalidBlock(r));
        }
        let block_id = block.header.hash(alg);
        self.state_mut()?.verdicts.insert(block_id, true);
        self.wal(WalEntry::ProposeValue { height, round, block: block.clone() }, effects);
        self.drive(Pending::ProposeValue { round, block: Arc::new(block), block_id }, effects)
    }

    fn on_timeout(&mut self, height: u64, round: u32, kind: TimeoutKind, effects: &mut Vec<Effect>) -> Result<()> {
        let hs = self.state()?;
        if height != hs.height || hs.decided.is_some() {
            return Ok(());
        }
        if kind == TimeoutKind::Rebroadcast {
            if hs.driver.round() == Some(round) && !self.replaying {
                if let Some(p) = hs.own_proposals.get(&round) {
                    effects.push(Effect::Broadcast(ConsensusMsg::Proposal(p.clone())));
                    if let Some(pol_round) = p.proposal.pol_round {
                        broadcast_polka(hs, pol_round, p.proposal.block.header.hash(self.cfg.hash_alg), effects);
                    }
                }
                // Every vote we cast at this height, newest first, for the last REBROADCAST_ROUNDS rounds: a
                // proposal that re-proposes a value with a proof-of-lock round is acted on only by nodes that hold
                // 2/3 prevotes of that round, and peers still in an earlier round move on with its precommits.
                let oldest = round.saturating_sub(REBROADCAST_ROUNDS);
                for ((_, _), v) in hs.own_votes.range((oldest, VoteKind::Prevote)..=(round, VoteKind::Precommit)).rev() {
                    effects.push(Effect::Broadcast(ConsensusMsg::Vote(v.clone())));
                }
                let duration = self.cfg.timeouts.duration(kind, round);
                effects.push(Effect::ScheduleTimeout { height, round, kind, duration });
            }
            return Ok(());
        }
        self.wal(WalEntry::Timeout { height, round, kind }, effects);
        self.drive(Pending::Timeout { kind, round }, effects)
    }

    fn on_synced(&mut self, block: Block, certificate: CommitCertificate, effects: &mut Vec<Effect>) -> Result<()> {
        let alg = self.cfg.hash_alg;
        let hs = self.state()?;
        let height = block.header.height;
        if height < hs.height {
            return Err(ConsensusError::StaleHeight { got: height, current: hs.height });
        }
        if height > hs.height {
            return Err(ConsensusError::FarFutureHeight { got: height, current: hs.height, signer: block.header.proposer });
        }
        if hs.decided.is_some() {
            return Ok(());
        }
        if certificate.height != height {
            return Err(CertificateError::WrongHeight { expected: height, got: certificate.height }.into());
        }
        let block_id = block.header.hash(alg);
        if certificate.block_id != block_id {
            return Err(CertificateError::WrongBlock { expected: block_id, got: certificate.block_id }.into());
        }
        verify_commit(self.cfg.chain_id.as_str(), &hs.validators, &certificate)?;
        if let Some(BlockFault::Invalid(r) | BlockFault::Malformed(r)) = self.check_block(hs, &block, None) {
            return Err(ConsensusError::InvalidBlock(r));
        }
        self.state_mut()?.decided = Some(block_id);
        effects.push(Effect::Decided { block, certificate });
        Ok(())
    }

    /// Structural checks of a block of the current height built by `builder` (`None`: by any validator, as for a
    /// value re-proposed from an earlier round or a synced block).
    fn check_block(&self, hs: &HeightState, block: &Block, builder: Option<Address>) -> Option<BlockFault> {
        let alg = self.cfg.hash_alg;
        let h = &block.header;
        let invalid = |s: String| Some(BlockFault::Invalid(s));
        if h.chain_id != self.cfg.chain_id {
            return invalid(format!("chain id {} is not {}", h.chain_id, self.cfg.chain_id));
        }
        if h.height != hs.height {
            return invalid(format!("header height {} at height {}", h.height, hs.height));
        }
        match builder {
            Some(p) if h.proposer != p => {
                return invalid(format!("header proposer {} is not the signer {p}", h.proposer));
            }
            None if hs.validators.index_of(&h.proposer).is_none() => {
                return invalid(format!("header proposer {} is not a validator", h.proposer));
            }
            _ => {}
        }
        if h.validators_hash != hs.validators_hash {
            return invalid("validators hash does not match the height's set".into());
        }
        if h.tx_root != Block::tx_root(alg, &block.txs) {
            return Some(BlockFault::Malformed("transactions do not match the tx root".into()));
        }
        if h.last_commit_hash != last_commit_hash(alg, block.last_commit.as_ref()) {
            return Some(BlockFault::Malformed("last commit does not match its hash".into()));
        }
        match (&hs.parent, &block.last_commit) {
            (Some(parent), Some(lc)) => {
                if h.parent_hash != parent.block_id {
                    return invalid("parent hash is not the previous block".into());
                }
                if h.time <= parent.time {
                    return invalid("block time not after the parent's".into());
                }
                if lc.height + 1 != hs.height || lc.block_id != parent.block_id {
                    return invalid("last commit is not for the previous block".into());
                }
                if let Err(e) = verify_commit(self.cfg.chain_id.as_str(), &parent.validators, lc) {
                    return invalid(format!("last commit: {e}"));
                }
            }
            (Some(_), None) => return invalid("missing last commit".into()),
            (None, lc) => {
                if hs.height == 1 && (h.parent_hash != Hash::ZERO || lc.is_some()) {
                    return invalid("the first block has no parent".into());
                }
            }
        }
        None
    }

    fn wal(&self, entry: WalEntry, effects: &mut Vec<Effect>) {
        if !self.replaying {
            effects.push(Effect::Wal(entry));
        }
    }

    /// Run the driver on `first` and on everything it feeds back to itself, turning its steps into effects.
    fn drive(&mut self, first: Pending, effects: &mut Vec<Effect>) -> Result<()> {
        let mut queue = VecDeque::from([first]);
        let timeouts = self.cfg.timeouts;
        while let Some(pending) = queue.pop_front() {
            let hs = self.state_mut()?;
            let height = hs.height;
            let steps = match pending {
                Pending::NewRound(round) => {
                    // Every round, the first included, re-sends our messages periodically until it ends.
                    let kind = TimeoutKind::Rebroadcast;
                    let duration = timeouts.duration(kind, round);
                    effects.push(Effect::ScheduleTimeout { height, round, kind, duration });
                    hs.driver.feed(Feed::NewRound(round))
                }
                Pending::ProposeValue { round, block, block_id } => {
                    hs.driver.feed(Feed::ProposeValue { round, block, block_id })
                }
                Pending::Proposal { signed, block, block_id, valid } => {
                    hs.driver.feed(Feed::Proposal { signed: &signed, block, block_id, valid })
                }
                Pending::Vote(v) => hs.driver.feed(Feed::Vote(&v)),
                Pending::Timeout { kind, round } => hs.driver.feed(Feed::Timeout { kind, round }),
                Pending::PolkaCertificate { round, block_id, votes } => {
                    hs.driver.feed(Feed::PolkaCertificate { round, block_id, votes: &votes })
                }
            }
            .map_err(ConsensusError::Driver)?;
            for step in steps {
                self.on_step(step, &mut queue, effects)?;
            }
        }
        Ok(())
    }

    fn on_step(&mut self, step: Step, queue: &mut VecDeque<Pending>, effects: &mut Vec<Effect>) -> Result<()> {
        let chain_id = self.cfg.chain_id.as_str().to_string();
        let alg = self.cfg.hash_alg;
        let address = self.address;
        let replaying = self.replaying;
        let hs = self.state.as_mut().ok_or(ConsensusError::NotStarted)?;
        let height = hs.height;
        match step {
            Step::NewRound(round) => queue.push_back(Pending::NewRound(round)),
            Step::ScheduleTimeout { kind, round, duration } => {
                effects.push(Effect::ScheduleTimeout { height, round, kind, duration });
            }
            Step::GetValue { round, timeout } => {
                let (parent_hash, last_commit, after) = match &hs.parent {
                    Some(p) => (p.block_id, Some(p.commit.clone()), p.time),
                    None => (Hash::ZERO, None, Time(0)),
                };
                effects.push(Effect::RequestValue {
                    height,
                    round,
                    proposer: address,
                    parent_hash,
                    last_commit,
                    after,
                    deadline: timeout,
                });
            }
            Step::Propose { round, pol_round, block, block_id } => {
                let proposal = Proposal { height, round, pol_round, block: (*block).clone(), proposer: address };
                let signed = match hs.own_proposals.get(&round) {
                    Some(done) if done.proposal == proposal => done.clone(),
                    Some(_) => {
                        effects.push(Effect::DoubleSignPrevented { height, round, what: "proposal" });
                        return Ok(());
                    }
                    None => {
                        let signed = proposal.sign(&chain_id, alg, &self.key);
                        hs.own_proposals.insert(round, signed.clone());
                        if !replaying {
                            effects.push(Effect::Wal(WalEntry::OwnProposal(signed.clone())));
                            effects.push(Effect::FlushWal);
                        }
                        signed
                    }
                };
                hs.proposals.insert(round, signed.clone());
                hs.verdicts.insert(block_id, true);
                effects.push(Effect::Broadcast(ConsensusMsg::Proposal(signed.clone())));
                // A re-proposed value is prevoted only by validators holding its proof of lock: send it along.
                if let Some(pol_round) = pol_round {
                    broadcast_polka(hs, pol_round, block_id, effects);
                }
                queue.push_back(Pending::Proposal { signed, block, block_id, valid: true });
            }
            Step::Vote(vote) => {
                let slot = (vote.round, vote.kind);
                let signed = match hs.own_votes.get(&slot) {
                    Some(done) if done.vote == vote => done.clone(),
                    Some(_) => {
                        let what = match vote.kind {
                            VoteKind::Prevote => "prevote",
                            VoteKind::Precommit => "precommit",
                        };
                        effects.push(Effect::DoubleSignPrevented { height, round: vote.round, what });
                        return Ok(());
                    }
                    None => {
                        let signed: SignedVote = Vote::sign(vote, &chain_id, &self.key);
                        hs.own_votes.insert(slot, signed.clone());
                        if !replaying {
                            effects.push(Effect::Wal(WalEntry::OwnVote(signed.clone())));
                            effects.push(Effect::FlushWal);
                        }
                        signed
                    }
                };
                hs.votes.insert((address, signed.vote.round, signed.vote.kind), signed.clone());
                if let (VoteKind::Precommit, Some(block_id)) = (signed.vote.kind, signed.vote.block_id) {
                    if signed.vote.round >= SHARE_LOCK_FROM_ROUND {
                        share_lock(hs, signed.vote.round, block_id, alg, effects);
                    }
                }
                effects.push(Effect::Broadcast(ConsensusMsg::Vote(signed.clone())));
                let polka = count_prevote(hs, &signed);
                queue.push_back(Pending::Vote(signed));
                queue.extend(polka);
            }
            Step::Decide { round, block, block_id } => {
                if hs.decided.is_some() {
                    return Ok(());
                }
                let precommits = hs.driver.precommits(round, &block_id);
                let cert = certificate_from_precommits(&hs.validators, height, round, block_id, &precommits)
                    .ok_or_else(|| ConsensusError::Driver("decision without a quorum of precommits".into()))?;
                hs.decided = Some(block_id);
                effects.push(Effect::Decided { block: (*block).clone(), certificate: cert });
            }
        }
        Ok(())
    }
}

/// Remember a verified prevote for a block, ours included. Returns a polka certificate to feed, once per (round,
/// block), when the block's prevotes exceed 2/3 of the power only by counting validators that also cast a
/// conflicting prevote in that round (the vote keeper, which keeps each validator's first vote, sees every other
/// polka itself).
fn count_prevote(hs: &mut HeightState, sv: &SignedVote) -> Option<Pending> {
    let (VoteKind::Prevote, Some(block_id)) = (sv.vote.kind, sv.vote.block_id) else { return None };
    let round = sv.vote.round;
    let voters = hs.prevotes_for.entry((round, block_id)).or_default();
    voters.insert(sv.vote.validator, sv.clone());
    let power: u64 = voters
        .keys()
        .filter_map(|a| hs.validators.index_of(a).and_then(|i| hs.validators.get(i)))
        .map(|v| v.power)
        .sum();
    let quorum = u128::from(power) * 3 > u128::from(hs.validators.total_power()) * 2;
    let needs_conflicting = voters.keys().any(|a| hs.conflicts.contains(&(*a, round, VoteKind::Prevote)));
    if !quorum || !needs_conflicting || !hs.polkas_fed.insert((round, block_id)) {
        return None;
    }
    Some(Pending::PolkaCertificate { round, block_id, votes: voters.values().cloned().collect() })
}

/// Send every prevote we hold for `block_id` in `round`, conflicting voters' included: the proof of lock of a
/// value re-proposed with that round, or of a lock. Peers need all of it, and the network does not forward what
/// others sent us: an equivocator may have shown them another vote, and a lost vote of an old round is not sent
/// again by its author (the rebroadcast timer covers a few rounds only).
fn broadcast_polka(hs: &HeightState, round: u32, block_id: Hash, effects: &mut Vec<Effect>) {
    if let Some(voters) = hs.prevotes_for.get(&(round, block_id)) {
        effects.extend(voters.values().map(|v| Effect::Broadcast(ConsensusMsg::Vote(v.clone()))));
    }
}

/// We lock on `block_id` in `round`: send the round's proposal and its polka, so that every validator still in
/// the round sees what we saw (and precommits too, or at least takes the block as its valid value and proposes it
/// in a later round). Without this, a lock that the others never saw a polka for blocks every round whose
/// proposer lacks the value, as long as the honest validators are exactly a quorum.
fn share_lock(hs: &HeightState, round: u32, block_id: Hash, alg: HashAlg, effects: &mut Vec<Effect>) {
    let Some(proposal) = hs.proposals.get(&round) else { return };
    if proposal.proposal.block.header.hash(alg) != block_id {
        return;
    }
    effects.push(Effect::Broadcast(ConsensusMsg::Proposal(proposal.clone())));
    broadcast_polka(hs, round, block_id, effects);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consensus::types::{Proposal, Vote};
    use causeway_light_client::{Header, Suite, Validator};

    const CHAIN: &str = "core-test";

    fn keys(n: u8) -> (Vec<SecretKey>, ValidatorSet) {
        let mut keys: Vec<_> =
            (0..n).map(|i| SecretKey::from_bytes(Suite::Ed25519, &[i + 11; 32]).expect("key")).collect();
        keys.sort_by_key(|k| k.public_key().address());
        let set = ValidatorSet::new(keys.iter().map(|k| Validator { pub_key: k.public_key(), power: 10 }).collect())
            .expect("set");
        (keys, set)
    }

    fn core(key: &SecretKey) -> Consensus {
        Consensus::new(ConsensusConfig::new(ChainId::new(CHAIN).expect("id")), key.clone())
    }

    fn block(set: &ValidatorSet, proposer: Address, chain: &str) -> Block {
        let alg = HashAlg::Sha256;
        let txs = vec![b"tx".to_vec()];
        let header = Header {
            app_version: 1,
            chain_id: ChainId::new(chain).expect("id"),
            height: 1,
            time: Time(1_000),
            parent_hash: Hash::ZERO,
            tx_root: Block::tx_root(alg, &txs),
            last_commit_hash: Hash::ZERO,
            state_root: alg.hash(b"state"),
            validators_hash: set.hash(alg),
            next_validators_hash: set.hash(alg),
            proposer,
        };
        Block { header, txs, last_commit: None }
    }

    fn proposal(key: &SecretKey, block: Block, round: u32) -> ConsensusMsg {
        let p = Proposal { height: 1, round, pol_round: None, block, proposer: key.public_key().address() };
        ConsensusMsg::Proposal(p.sign(CHAIN, HashAlg::Sha256, key))
    }

    fn prevotes(effects: &[Effect]) -> Vec<SignedVote> {
        effects
            .iter()
            .filter_map(|e| match e {
                Effect::Broadcast(ConsensusMsg::Vote(v)) if v.vote.kind == VoteKind::Prevote => Some(v.clone()),
                _ => None,
            })
            .collect()
    }

    /// The certificate of the decision among `effects`.
    fn decided_certificate(effects: &[Effect]) -> Option<CommitCertificate> {
        effects.iter().find_map(|e| match e {
            Effect::Decided { certificate, .. } => Some(certificate.clone()),
            _ => None,
        })
    }

    #[test]
    fn a_single_validator_decides_alone_with_a_verifying_certificate() {
        let (keys, set) = keys(1);
        let mut c = core(&keys[0]);
        let effects = c.start_height(1, set.clone(), None, &[]).expect("start");
        let round = effects
            .iter()
            .find_map(|e| match e {
                Effect::RequestValue { round, .. } => Some(*round),
                _ => None,
            })
            .expect("the only validator proposes");
        let b = block(&set, keys[0].public_key().address(), CHAIN);
        let effects = c.handle(Input::ValueReady { height: 1, round, block: b.clone() }).expect("value");
        let cert = decided_certificate(&effects).expect("decided");
        assert_eq!(cert.block_id, b.header.hash(HashAlg::Sha256));
        assert!(verify_commit(CHAIN, &set, &cert).is_ok());
        // Signed messages leave only after the WAL is flushed.
        let flush = effects.iter().position(|e| matches!(e, Effect::FlushWal)).expect("flush");
        let send = effects.iter().position(|e| matches!(e, Effect::Broadcast(_))).expect("broadcast");
        assert!(flush < send);
    }

    #[test]
    fn bad_messages_are_refused_with_typed_errors() {
        let (keys, set) = keys(4);
        let mut c = core(&keys[0]);
        c.start_height(1, set.clone(), None, &[]).expect("start");
        let outsider = SecretKey::from_bytes(Suite::Ed25519, &[99; 32]).expect("key");
        let vote = |validator: Address, round: u32, height: u64| Vote {
            height,
            round,
            kind: VoteKind::Prevote,
            block_id: None,
            validator,
        };
        let from_outsider = vote(outsider.public_key().address(), 0, 1).sign(CHAIN, &outsider);
        assert!(matches!(c.handle(Input::Message(ConsensusMsg::Vote(from_outsider))), Err(ConsensusError::NotAValidator(_))));
        let forged = vote(keys[1].public_key().address(), 0, 1).sign(CHAIN, &keys[2]);
        assert!(matches!(c.handle(Input::Message(ConsensusMsg::Vote(forged))), Err(ConsensusError::BadSignature(_))));
        let other_chain = vote(keys[1].public_key().address(), 0, 1).sign("elsewhere", &keys[1]);
        assert!(matches!(c.handle(Input::Message(ConsensusMsg::Vote(other_chain))), Err(ConsensusError::BadSignature(_))));
        let far = vote(keys[1].public_key().address(), 0, 9).sign(CHAIN, &keys[1]);
        assert!(matches!(c.handle(Input::Message(ConsensusMsg::Vote(far))), Err(ConsensusError::FarFutureHeight { .. })));
        let huge_round = vote(keys[1].public_key().address(), 1_000_000, 1).sign(CHAIN, &keys[1]);
        assert!(matches!(c.handle(Input::Message(ConsensusMsg::Vote(huge_round))), Err(ConsensusError::RoundTooHigh { .. })));
        // Round 0 at height 1 is proposed by validator (1 + 0) mod 4 = 1; validator 2 may not.
        let wrong = proposal(&keys[2], block(&set, keys[2].public_key().address(), CHAIN), 0);
        assert!(matches!(c.handle(Input::Message(wrong)), Err(ConsensusError::WrongProposer { .. })));
        assert_eq!(c.height(), Some(1));
        assert!(!c.is_decided());
    }

    #[test]
    fn proposals_wait_for_the_application_and_invalid_ones_get_nil() {
        let (keys, set) = keys(4);
        // A valid proposal: validation is requested, and no prevote goes out before the verdict.
        let mut c = core(&keys[0]);
        c.start_height(1, set.clone(), None, &[]).expect("start");
        let b = block(&set, keys[1].public_key().address(), CHAIN);
        let id = b.header.hash(HashAlg::Sha256);
        let effects = c.handle(Input::Message(proposal(&keys[1], b, 0))).expect("proposal");
        assert!(effects.iter().any(|e| matches!(e, Effect::RequestValidation { block_id, .. } if *block_id == id)));
        assert!(prevotes(&effects).is_empty(), "no prevote before the application's verdict");
        let effects = c.handle(Input::Verdict { height: 1, block_id: id, valid: true }).expect("verdict");
        assert_eq!(prevotes(&effects).iter().map(|v| v.vote.block_id).collect::<Vec<_>>(), vec![Some(id)]);

        // The application refuses the block: prevote nil.
        let mut c = core(&keys[0]);
        c.start_height(1, set.clone(), None, &[]).expect("start");
        let b = block(&set, keys[1].public_key().address(), CHAIN);
        let id = b.header.hash(HashAlg::Sha256);
        c.handle(Input::Message(proposal(&keys[1], b, 0))).expect("proposal");
        let effects = c.handle(Input::Verdict { height: 1, block_id: id, valid: false }).expect("verdict");
        assert_eq!(prevotes(&effects).iter().map(|v| v.vote.block_id).collect::<Vec<_>>(), vec![None]);

        // A header for another chain is invalid without asking the application.
        let mut c = core(&keys[0]);
        c.start_height(1, set.clone(), None, &[]).expect("start");
        let bad = block(&set, keys[1].public_key().address(), "another-chain");
        let effects = c.handle(Input::Message(proposal(&keys[1], bad, 0))).expect("proposal");
        assert!(!effects.iter().any(|e| matches!(e, Effect::RequestValidation { .. })));
        assert_eq!(prevotes(&effects).iter().map(|v| v.vote.block_id).collect::<Vec<_>>(), vec![None]);
    }

    #[test]
    fn an_equivocator_is_reported_and_relayed_once_per_slot_however_many_values_it_signs() {
        let (keys, set) = keys(4);
        let mut c = core(&keys[0]);
        c.start_height(1, set, None, &[]).expect("start");
        let byzantine = keys[1].public_key().address();
        let vote = |kind: VoteKind, block_id: Option<Hash>| {
            let v = Vote { height: 1, round: 0, kind, block_id, validator: byzantine };
            ConsensusMsg::Vote(v.sign(CHAIN, &keys[1]))
        };
        let mut effects = Vec::new();
        for kind in [VoteKind::Prevote, VoteKind::Precommit] {
            effects.extend(c.handle(Input::Message(vote(kind, None))).expect("first vote"));
            // A fresh conflicting value on every re-send, as a Byzantine validator may sign.
            for i in 1..=30u8 {
                effects.extend(c.handle(Input::Message(vote(kind, Some(Hash([i; 32]))))).expect("conflict"));
            }
        }
        let relayed = effects
            .iter()
            .filter(|e| matches!(e, Effect::Broadcast(ConsensusMsg::Vote(v)) if v.vote.validator == byzantine))
            .count();
        let reported = effects.iter().filter(|e| matches!(e, Effect::Equivocation { .. })).count();
        // Per slot: the first vote and one conflicting vote are relayed, and the equivocation reported, once.
        assert_eq!(reported, 2, "one report per slot");
        assert_eq!(relayed, 4, "one relayed pair per slot");
    }

    #[test]
    fn a_polka_counts_our_own_prevote_and_an_equivocators_conflicting_one_in_any_order() {
        // 4 validators of power 10: a polka needs 3 prevotes. We (0) and validator 2 prevote block B; validator 3
        // showed us nil first, then B. Validator 1 (the proposer) is silent.
        let (keys, set) = keys(4);
        let prevote = |k: &SecretKey, block_id: Option<Hash>| {
            let v = Vote { height: 1, round: 0, kind: VoteKind::Prevote, block_id, validator: k.public_key().address() };
            Input::Message(ConsensusMsg::Vote(v.sign(CHAIN, k)))
        };
        for honest_last in [false, true] {
            let mut c = core(&keys[0]);
            c.start_height(1, set.clone(), None, &[]).expect("start");
            let b = block(&set, keys[1].public_key().address(), CHAIN);
            let id = b.header.hash(HashAlg::Sha256);
            c.handle(Input::Message(proposal(&keys[1], b, 0))).expect("proposal");
            c.handle(Input::Verdict { height: 1, block_id: id, valid: true }).expect("verdict");
            c.handle(prevote(&keys[3], None)).expect("nil first");
            let mut inputs = vec![prevote(&keys[2], Some(id)), prevote(&keys[3], Some(id))];
            if honest_last {
                inputs.reverse();
            }
            let mut effects = Vec::new();
            for input in inputs {
                effects.extend(c.handle(input).expect("prevote"));
            }
            let precommitted = effects.iter().any(|e| {
                matches!(e, Effect::Broadcast(ConsensusMsg::Vote(v))
                    if v.vote.kind == VoteKind::Precommit && v.vote.block_id == Some(id))
            });
            assert!(precommitted, "no precommit for the block (honest prevote last: {honest_last})");
        }
    }

    /// A signed vote of validator `i` (index into `keys`) at height 1, as an input.
    fn vote_of(keys: &[SecretKey], i: usize, round: u32, kind: VoteKind, block_id: Option<Hash>) -> Input {
        let v = Vote { height: 1, round, kind, block_id, validator: keys[i].public_key().address() };
        Input::Message(ConsensusMsg::Vote(v.sign(CHAIN, &keys[i])))
    }

    /// The core of validator 0 after validator 1 proposed block B in round 0 and 0, 1 and 2 prevoted it (so 0
    /// precommitted B): the core, B's id, and the effects of the last two prevotes.
    fn locked_in_round_0(keys: &[SecretKey], set: &ValidatorSet) -> (Consensus, Hash, Vec<Effect>) {
        let mut c = core(&keys[0]);
        c.start_height(1, set.clone(), None, &[]).expect("start");
        let b = block(set, keys[1].public_key().address(), CHAIN);
        let id = b.header.hash(HashAlg::Sha256);
        c.handle(Input::Message(proposal(&keys[1], b, 0))).expect("proposal");
        c.handle(Input::Verdict { height: 1, block_id: id, valid: true }).expect("verdict");
        let mut effects = c.handle(vote_of(keys, 1, 0, VoteKind::Prevote, Some(id))).expect("prevote 1");
        effects.extend(c.handle(vote_of(keys, 2, 0, VoteKind::Prevote, Some(id))).expect("prevote 2"));
        (c, id, effects)
    }

    #[test]
    fn issue_3_a_decision_by_the_precommits_of_an_earlier_round_is_certified() {
        // We (0), 1 and 2 prevote block B in round 0 and we precommit it; 1 and 2 move on to round 1 and so do we
        // (f+1 of its votes). Their precommits of round 0 arrive only then: B is decided by round 0's precommits
        // while we are in round 1, and the certificate must come from round 0 (it once looked in round 1, found
        // nothing, and the height stalled for good).
        let (keys, set) = keys(4);
        let vote = |i: usize, round: u32, kind: VoteKind, block_id: Option<Hash>| vote_of(&keys, i, round, kind, block_id);
        let (mut c, id, _) = locked_in_round_0(&keys, &set);
        c.handle(vote(1, 1, VoteKind::Prevote, None)).expect("round 1 vote");
        c.handle(vote(2, 1, VoteKind::Prevote, None)).expect("round 1 vote");
        assert_eq!(c.round(), Some(1));
        c.handle(vote(1, 0, VoteKind::Precommit, Some(id))).expect("precommit 1");
        let effects = c.handle(vote(2, 0, VoteKind::Precommit, Some(id))).expect("the decision");
        let cert = decided_certificate(&effects).expect("decided");
        assert_eq!((cert.round, cert.block_id), (0, id));
        assert!(verify_commit(CHAIN, &set, &cert).is_ok());
        assert!(c.is_decided());
    }

    /// Prevotes of `voter` in `round` for `block_id` among the broadcasts of `effects`.
    fn sent_prevote(effects: &[Effect], voter: Address, round: u32, block_id: Hash) -> bool {
        effects.iter().any(|e| {
            matches!(e, Effect::Broadcast(ConsensusMsg::Vote(v))
                if v.vote.kind == VoteKind::Prevote && v.vote.validator == voter && v.vote.round == round
                    && v.vote.block_id == Some(block_id))
        })
    }

    #[test]
    fn issue_3_a_re_proposal_carries_its_proof_of_lock_and_a_late_lock_is_shared() {
        // 4 validators of power 10; we are validator 0. Round 0 (proposer 1): we, 1 and 2 prevote block B, so we
        // lock on B. Validators 1 and 2 precommit nil in round 3, which we join (f+1 of its votes) and where we
        // are the proposer: we re-propose B with proof-of-lock round 0, and must send that round's prevotes with
        // it, since a peer that missed one of them (lost, or shown another vote by an equivocator) prevotes nil.
        let (keys, set) = keys(4);
        let addr = |i: usize| keys[i].public_key().address();
        let vote = |i: usize, round: u32, kind: VoteKind, block_id: Option<Hash>| vote_of(&keys, i, round, kind, block_id);
        let precommitted = |effects: &[Effect], round: u32, id: Hash| {
            effects.iter().position(|e| {
                matches!(e, Effect::Broadcast(ConsensusMsg::Vote(v))
                    if v.vote.kind == VoteKind::Precommit && v.vote.round == round && v.vote.block_id == Some(id))
            })
        };
        let (mut c, id, effects) = locked_in_round_0(&keys, &set);
        assert!(precommitted(&effects, 0, id).is_some(), "we lock on B in round 0");
        assert!(!sent_prevote(&effects, addr(1), 0, id), "a lock in round 0 is not shared");

        let mut effects = c.handle(vote(1, 3, VoteKind::Precommit, None)).expect("round 3 vote");
        effects.extend(c.handle(vote(2, 3, VoteKind::Precommit, None)).expect("round 3 vote"));
        assert_eq!(c.round(), Some(3));
        let reproposed = effects.iter().any(|e| {
            matches!(e, Effect::Broadcast(ConsensusMsg::Proposal(p)) if p.proposal.round == 3 && p.proposal.pol_round == Some(0))
        });
        assert!(reproposed, "we re-propose B with its proof-of-lock round");
        for i in 0..3 {
            assert!(sent_prevote(&effects, addr(i), 0, id), "the proof of lock lacks validator {i}'s prevote");
        }
        let effects = c
            .handle(Input::TimeoutElapsed { height: 1, round: 3, kind: TimeoutKind::Rebroadcast })
            .expect("rebroadcast");
        for i in 0..3 {
            assert!(sent_prevote(&effects, addr(i), 0, id), "the rebroadcast lacks validator {i}'s prevote");
        }

        // Validators 1 and 2 prevoted B in round 3 too: we lock on it again, past round 0, so the round's proposal
        // and polka go out before our precommit.
        let mut effects = c.handle(vote(1, 3, VoteKind::Prevote, Some(id))).expect("prevote 1");
        effects.extend(c.handle(vote(2, 3, VoteKind::Prevote, Some(id))).expect("prevote 2"));
        let at = precommitted(&effects, 3, id).expect("we lock on B in round 3");
        let before = &effects[..at];
        let proposal_sent = before.iter().any(|e| {
            matches!(e, Effect::Broadcast(ConsensusMsg::Proposal(p)) if p.proposal.round == 3)
        });
        assert!(proposal_sent, "the locked round's proposal is shared");
        for i in 0..3 {
            assert!(sent_prevote(before, addr(i), 3, id), "the shared polka lacks validator {i}'s prevote");
        }
    }

    #[test]
    fn a_validator_restarted_from_its_wal_re_sends_the_same_vote_and_never_another() {
        let (keys, set) = keys(4);
        let mut c = core(&keys[0]);
        let mut wal: Vec<WalEntry> = Vec::new();
        let mut durable = 0;
        let mut record = |effects: &[Effect], wal: &mut Vec<WalEntry>| {
            for e in effects {
                match e {
                    Effect::Wal(entry) => wal.push(entry.clone()),
                    Effect::FlushWal => durable = wal.len(),
                    _ => {}
                }
            }
            durable
        };
        record(&c.start_height(1, set.clone(), None, &[]).expect("start"), &mut wal);
        let b = block(&set, keys[1].public_key().address(), CHAIN);
        let id = b.header.hash(HashAlg::Sha256);
        record(&c.handle(Input::Message(proposal(&keys[1], b.clone(), 0))).expect("proposal"), &mut wal);
        let effects = c.handle(Input::Verdict { height: 1, block_id: id, valid: true }).expect("verdict");
        let durable = record(&effects, &mut wal);
        let sent = prevotes(&effects);
        assert_eq!(sent.len(), 1);
        // Crash: only what was flushed survives. The restarted core re-sends exactly the signed prevote.
        wal.truncate(durable);
        let mut restarted = core(&keys[0]);
        let effects = restarted.start_height(1, set.clone(), None, &wal).expect("restart");
        let again = prevotes(&effects);
        assert!(again.iter().all(|v| *v == sent[0]), "a restarted validator re-sends only what it signed");
        // A conflicting proposal for the same round after the restart does not produce a second prevote.
        let mut other = block(&set, keys[1].public_key().address(), CHAIN);
        other.header.time = Time(2_000);
        let effects = restarted.handle(Input::Message(proposal(&keys[1], other, 0))).unwrap_or_default();
        assert!(prevotes(&effects).iter().all(|v| *v == sent[0]));
    }
}
