//! Consensus messages as they travel between validators, what each of them signs, proposer selection, and the
//! construction and verification of commit certificates.
//!
//! These are Causeway's own types: nothing here mentions Malachite. A precommit signs exactly
//! [`CommitCertificate::sign_bytes`], so the precommits a validator collects become, unchanged, the signatures of
//! the certificate that light clients verify.

use borsh::{BorshDeserialize, BorshSerialize};
use causeway_light_client::codec::{to_borsh, Canonical, CodecError};
use causeway_light_client::crypto::sign_bytes;
use causeway_light_client::types::MAX_BLOCK_BYTES;
use causeway_light_client::{
    Address, Block, CommitCertificate, CommitError, CommitSig, Hash, HashAlg, SecretKey, SignKind, Signature,
    ValidatorSet,
};

/// The two kinds of votes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, BorshSerialize, BorshDeserialize)]
pub enum VoteKind {
    /// First-phase vote: "this proposal is valid and I saw no reason to refuse it".
    Prevote,
    /// Second-phase vote: "I saw 2/3 prevote it; commit it". What commit certificates carry.
    Precommit,
}

impl VoteKind {
    /// The domain-separation kind of this vote's signature.
    pub fn sign_kind(self) -> SignKind {
        match self {
            VoteKind::Prevote => SignKind::Prevote,
            VoteKind::Precommit => SignKind::Precommit,
        }
    }
}

/// The timers consensus asks its shell to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, BorshSerialize, BorshDeserialize)]
pub enum TimeoutKind {
    /// Waiting for the round's proposal.
    Propose,
    /// Waiting, after 2/3 prevoted anything, for 2/3 on one block or nil.
    Prevote,
    /// Waiting, after 2/3 precommitted anything, for 2/3 on one block.
    Precommit,
    /// Periodic re-sending of this validator's messages of the current round, so that lost messages do not stall
    /// the round.
    Rebroadcast,
}

/// A vote by one validator for a block id (or for nil) at a height and round.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Vote {
    /// Height voted on.
    pub height: u64,
    /// Round voted in.
    pub round: u32,
    /// Prevote or precommit.
    pub kind: VoteKind,
    /// The header hash voted for; `None` is a vote for nil.
    pub block_id: Option<Hash>,
    /// The voter.
    pub validator: Address,
}

impl Vote {
    /// The message under the domain separation: the layout of [`CommitCertificate::precommit_message`] for both
    /// kinds (the kind itself is in the domain), with the zero hash standing for nil.
    pub fn message(&self) -> Vec<u8> {
        CommitCertificate::precommit_message(self.height, self.round, &self.block_id.unwrap_or(Hash::ZERO))
    }

    /// The exact bytes the voter signs on `chain_id`. For a precommit for block `b` this equals
    /// `CommitCertificate { height, round, block_id: b, .. }.sign_bytes(chain_id)`.
    pub fn sign_bytes(&self, chain_id: &str) -> Vec<u8> {
        sign_bytes(chain_id, self.kind.sign_kind(), &self.message())
    }

    /// Sign with `key`.
    pub fn sign(self, chain_id: &str, key: &SecretKey) -> SignedVote {
        let signature = key.sign_raw(&self.sign_bytes(chain_id));
        SignedVote { vote: self, signature }
    }
}

/// A vote with its signature.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct SignedVote {
    /// The vote.
    pub vote: Vote,
    /// The voter's signature over [`Vote::sign_bytes`].
    pub signature: Signature,
}

/// A proposal: the block the round's proposer offers, with the round of its proof of lock if it re-proposes.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Proposal {
    /// Height.
    pub height: u64,
    /// Round.
    pub round: u32,
    /// Round in which 2/3 prevoted this block (a re-proposal), if any; always below `round`.
    pub pol_round: Option<u32>,
    /// The proposed block. Its header hash is the value id everyone votes for.
    pub block: Block,
    /// The proposer.
    pub proposer: Address,
}

impl Proposal {
    /// The message under the domain separation: height, round, proof-of-lock round, block id.
    pub fn message(&self, alg: HashAlg) -> Vec<u8> {
        Self::message_for(self.height, self.round, self.pol_round, &self.block.header.hash(alg))
    }

    /// [`Proposal::message`] from its parts (the block enters only through its header hash).
    pub fn message_for(height: u64, round: u32, pol_round: Option<u32>, block_id: &Hash) -> Vec<u8> {
        let mut m = Vec::with_capacity(49);
        m.extend_from_slice(&height.to_le_bytes());
        m.extend_from_slice(&round.to_le_bytes());
        match pol_round {
            None => m.extend_from_slice(&[0, 0, 0, 0, 0]),
            Some(r) => {
                m.push(1);
                m.extend_from_slice(&r.to_le_bytes());
            }
        }
        m.extend_from_slice(&block_id.0);
        m
    }

    /// Sign with `key`.
    pub fn sign(self, chain_id: &str, alg: HashAlg, key: &SecretKey) -> SignedProposal {
        let signature = key.sign(chain_id, SignKind::Proposal, &self.message(alg));
        SignedProposal { proposal: self, signature }
    }
}

/// A proposal with its proposer's signature.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct SignedProposal {
    /// The proposal.
    pub proposal: Proposal,
    /// Signature over `sign_bytes(chain_id, Proposal, proposal.message(alg))`.
    pub signature: Signature,
}

/// Everything validators gossip to run consensus.
// Proposals dominate the size; messages are moved, not copied in bulk, so boxing would only add an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum ConsensusMsg {
    /// A signed proposal carrying its block.
    Proposal(SignedProposal),
    /// A signed prevote or precommit.
    Vote(SignedVote),
}

impl ConsensusMsg {
    /// Height the message is about.
    pub fn height(&self) -> u64 {
        match self {
            ConsensusMsg::Proposal(p) => p.proposal.height,
            ConsensusMsg::Vote(v) => v.vote.height,
        }
    }

    /// Round the message is about.
    pub fn round(&self) -> u32 {
        match self {
            ConsensusMsg::Proposal(p) => p.proposal.round,
            ConsensusMsg::Vote(v) => v.vote.round,
        }
    }

    /// The validator that signed it.
    pub fn signer(&self) -> Address {
        match self {
            ConsensusMsg::Proposal(p) => p.proposal.proposer,
            ConsensusMsg::Vote(v) => v.vote.validator,
        }
    }
}

impl Canonical for ConsensusMsg {
    const KIND: &'static str = "consensus message";
    const MAX_LEN: usize = MAX_BLOCK_BYTES + 4096;
    fn validate(&self) -> Result<(), CodecError> {
        let invalid = |reason: &str| CodecError::Invalid { kind: Self::KIND, reason: reason.to_string() };
        match self {
            ConsensusMsg::Proposal(p) => {
                let pr = &p.proposal;
                if pr.height == 0 {
                    return Err(invalid("proposal at height 0"));
                }
                if pr.pol_round.is_some_and(|pol| pol >= pr.round) {
                    return Err(invalid("proof-of-lock round not below the proposal round"));
                }
                p.proposal.block.validate()
            }
            ConsensusMsg::Vote(v) => {
                if v.vote.height == 0 {
                    return Err(invalid("vote at height 0"));
                }
                if v.vote.block_id == Some(Hash::ZERO) {
                    return Err(invalid("vote for the zero hash (nil is encoded as none)"));
                }
                Ok(())
            }
        }
    }
}

/// The proposer of `round` at `height`: round-robin over the address-ordered validator set, starting at an
/// offset that moves with the height. Every validator proposes in turn regardless of power, so within `n`
/// consecutive rounds every validator (in particular every honest one) proposes once.
pub fn proposer_index(validators: &ValidatorSet, height: u64, round: u32) -> usize {
    round_robin(validators.len(), height, round)
}

/// Index `(height + round) mod n` (0 for an empty set).
pub(crate) fn round_robin(n: usize, height: u64, round: u32) -> usize {
    let n = n.max(1) as u128;
    ((u128::from(height) + u128::from(round)) % n) as usize
}

/// Address of the proposer of `round` at `height` (see [`proposer_index`]).
pub fn proposer_address(validators: &ValidatorSet, height: u64, round: u32) -> Address {
    validators.get(proposer_index(validators, height, round)).map(|v| v.address()).unwrap_or_default()
}

/// Why a commit certificate does not prove a decision.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertificateError {
    /// It is for another height than expected.
    #[error("certificate for height {got}, expected {expected}")]
    WrongHeight {
        /// Expected height.
        expected: u64,
        /// Height in the certificate.
        got: u64,
    },
    /// It certifies another block than the one presented.
    #[error("certificate for block {got:?}, expected {expected:?}")]
    WrongBlock {
        /// Expected block id.
        expected: Hash,
        /// Block id in the certificate.
        got: Hash,
    },
    /// The signatures do not prove a decision (see the light client's [`CommitError`]).
    #[error(transparent)]
    Commit(#[from] CommitError),
}

/// Verify that `cert` proves a decision by `validators` on `chain_id`: signatures in strictly increasing index
/// order, each a valid precommit over [`CommitCertificate::sign_bytes`], together more than 2/3 of the power.
/// Returns the signed power. This is the light client's check, so a node accepts exactly what light clients do.
pub fn verify_commit(
    chain_id: &str,
    validators: &ValidatorSet,
    cert: &CommitCertificate,
) -> Result<u64, CertificateError> {
    // One implementation for consensus, block sync and light clients: the light client's.
    Ok(causeway_light_client::verify_commit(chain_id, validators, cert)?)
}

/// Build the certificate for `block_id` decided at `height`/`round` from precommits (any order, duplicates and
/// votes of other kinds, rounds or blocks ignored). Returns `None` when the matching precommits of validators in
/// the set do not reach more than 2/3 of the power. Signatures are not re-verified here: callers pass precommits
/// they already verified.
pub fn certificate_from_precommits(
    validators: &ValidatorSet,
    height: u64,
    round: u32,
    block_id: Hash,
    precommits: &[SignedVote],
) -> Option<CommitCertificate> {
    let mut sigs: Vec<CommitSig> = precommits
        .iter()
        .filter(|p| {
            p.vote.kind == VoteKind::Precommit
                && p.vote.height == height
                && p.vote.round == round
                && p.vote.block_id == Some(block_id)
        })
        .filter_map(|p| {
            let index = validators.index_of(&p.vote.validator)?;
            Some(CommitSig { validator_index: u32::try_from(index).ok()?, signature: p.signature.clone() })
        })
        .collect();
    sigs.sort_by_key(|s| s.validator_index);
    sigs.dedup_by_key(|s| s.validator_index);
    let power: u64 = sigs.iter().filter_map(|s| validators.get(s.validator_index as usize)).map(|v| v.power).sum();
    if u128::from(power) * 3 <= u128::from(validators.total_power()) * 2 {
        return None;
    }
    Some(CommitCertificate { height, round, block_id, signatures: sigs })
}

/// The `last_commit_hash` a header carries for an optional last commit (zero when there is none).
pub fn last_commit_hash(alg: HashAlg, last_commit: Option<&CommitCertificate>) -> Hash {
    last_commit.map_or(Hash::ZERO, |c| c.hash(alg))
}

/// Canonical bytes of a value for ordering ties (used only when two distinct blocks share an id).
pub(crate) fn block_bytes(block: &Block) -> Vec<u8> {
    to_borsh(block)
}

#[cfg(test)]
mod tests {
    use super::*;
    use causeway_light_client::{Suite, Validator};

    pub(crate) fn keys(n: u8) -> (Vec<SecretKey>, ValidatorSet) {
        let keys: Vec<_> = (0..n).map(|i| SecretKey::from_bytes(Suite::Ed25519, &[i + 1; 32]).expect("key")).collect();
        let set = ValidatorSet::new(keys.iter().map(|k| Validator { pub_key: k.public_key(), power: 10 }).collect())
            .expect("set");
        (keys, set)
    }

    #[test]
    fn precommits_become_a_certificate_that_verifies() {
        let (keys, set) = keys(4);
        let id = HashAlg::Sha256.hash(b"block");
        let votes: Vec<_> = keys
            .iter()
            .map(|k| {
                Vote { height: 5, round: 1, kind: VoteKind::Precommit, block_id: Some(id), validator: k.public_key().address() }
                    .sign("alpha", k)
            })
            .collect();
        // Two of four is not enough; three is.
        assert!(certificate_from_precommits(&set, 5, 1, id, &votes[..2]).is_none());
        let cert = certificate_from_precommits(&set, 5, 1, id, &votes[..3]).expect("quorum");
        assert_eq!(verify_commit("alpha", &set, &cert), Ok(30));
        // The signatures are exactly over the certificate's sign bytes.
        assert_eq!(votes[0].vote.sign_bytes("alpha"), cert.sign_bytes("alpha"));
        // Another chain, a corrupted signature, a dropped signer: refused.
        assert!(matches!(verify_commit("beta", &set, &cert), Err(CertificateError::Commit(CommitError::BadSignature { .. }))));
        let mut bad = cert.clone();
        bad.signatures.pop();
        assert!(matches!(verify_commit("alpha", &set, &bad), Err(CertificateError::Commit(CommitError::InsufficientPower { .. }))));
        let mut swapped = cert.clone();
        swapped.signatures.swap(0, 1);
        assert!(matches!(verify_commit("alpha", &set, &swapped), Err(CertificateError::Commit(CommitError::Unordered { .. }))));
        let mut unknown = cert;
        unknown.signatures[2].validator_index = 9;
        assert!(matches!(verify_commit("alpha", &set, &unknown), Err(CertificateError::Commit(CommitError::UnknownValidator { index: 9, .. }))));
    }

    #[test]
    fn prevotes_and_precommits_are_domain_separated() {
        let (keys, _) = keys(1);
        let v = Vote { height: 1, round: 0, kind: VoteKind::Prevote, block_id: None, validator: Address([1; 20]) };
        let mut p = v.clone();
        p.kind = VoteKind::Precommit;
        assert_ne!(v.sign_bytes("c"), p.sign_bytes("c"));
        let s = v.sign("c", &keys[0]);
        assert!(keys[0].public_key().verify_raw(&p.sign_bytes("c"), &s.signature).is_err());
    }

    #[test]
    fn messages_round_trip_and_reject_garbage() {
        let (keys, _) = keys(1);
        let v = Vote { height: 3, round: 2, kind: VoteKind::Precommit, block_id: None, validator: Address([1; 20]) };
        let msg = ConsensusMsg::Vote(v.sign("c", &keys[0]));
        assert_eq!(ConsensusMsg::decode(&msg.encode()).expect("decode"), msg);
        assert!(ConsensusMsg::decode(&[1, 9, 9]).is_err());
        let mut zero = msg.clone();
        if let ConsensusMsg::Vote(sv) = &mut zero {
            sv.vote.block_id = Some(Hash::ZERO);
        }
        assert!(matches!(ConsensusMsg::decode(&zero.encode()), Err(CodecError::Invalid { .. })));
    }
}
