//! BFT header verification for Besu chains: committed seals recovered with secp256k1 and counted against the
//! trusted validator set (quorum ceil(2n/3) of distinct validators), the IBFT 1.0 proposer seal, validator-set
//! votes, and the Besu light client built on them.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use alloy_consensus::Header;
use alloy_primitives::{keccak256, Address, B256};
use causeway_light_client::{ClientStatus, ConsensusState, LightClient, Time, UpdateOutcome};
use k256::ecdsa::{RecoveryId, Signature, VerifyingKey};

use super::extra::{BftExtra, BftFamily, Seal, Vote};
use super::proof::{self, EthStateProof};
use super::{EthError, Result};

/// The address that made `seal` over `digest` (r ‖ s ‖ v, v in {0, 1, 27, 28}).
pub fn recover_signer(seal: &Seal, digest: &B256) -> Result<Address> {
    let sig = Signature::from_slice(&seal[..64]).map_err(|e| EthError::BadSignature(e.to_string()))?;
    let v = match seal[64] {
        v @ (0 | 1) => v,
        v @ (27 | 28) => v - 27,
        v => return Err(EthError::BadSignature(format!("recovery id {v}"))),
    };
    let recid = RecoveryId::from_byte(v).ok_or_else(|| EthError::BadSignature(format!("recovery id {v}")))?;
    let key = VerifyingKey::recover_from_prehash(digest.as_slice(), &sig, recid)
        .map_err(|e| EthError::BadSignature(e.to_string()))?;
    let point = key.to_encoded_point(false);
    Ok(Address::from_slice(&keccak256(&point.as_bytes()[1..])[12..]))
}

/// The number of distinct validators that must seal a block: ceil(2n/3).
pub fn quorum(validators: usize) -> usize {
    (2 * validators).div_ceil(3)
}

/// Recover every committed seal over `digest` and check they come from distinct members of `validators` reaching
/// the quorum. Returns the signers.
pub fn check_committed_seals(digest: &B256, seals: &[Seal], validators: &[Address]) -> Result<Vec<Address>> {
    let mut seen = BTreeSet::new();
    for s in seals {
        let signer = recover_signer(s, digest)?;
        if !validators.contains(&signer) {
            return Err(EthError::NotAValidator(signer));
        }
        if !seen.insert(signer) {
            return Err(EthError::DuplicateSeal(signer));
        }
    }
    let needed = quorum(validators.len());
    if validators.is_empty() || seen.len() < needed {
        return Err(EthError::NoQuorum { got: seen.len(), needed, validators: validators.len() });
    }
    Ok(seen.into_iter().collect())
}

/// A header whose seals were verified against a validator set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedBftHeader {
    /// Block number.
    pub number: u64,
    /// Block hash under the family's rule.
    pub hash: B256,
    /// Parent hash the header commits to.
    pub parent_hash: B256,
    /// State root account proofs are checked against.
    pub state_root: B256,
    /// Block time (seconds since the epoch).
    pub timestamp: u64,
    /// The proposer (coinbase for QBFT/IBFT2; the proposer seal's signer for IBFT 1.0).
    pub proposer: Address,
    /// The validators whose committed seals were verified.
    pub signers: Vec<Address>,
    /// The validator-set vote the block carries, if any.
    pub vote: Option<Vote>,
    /// The decoded extraData.
    pub extra: BftExtra,
}

/// The vote an IBFT 1.0 block carries in coinbase and nonce.
fn ibft1_vote(header: &Header) -> Result<Option<Vote>> {
    let nonce = u64::from_be_bytes(header.nonce.0);
    if header.beneficiary == Address::ZERO {
        return if nonce == 0 { Ok(None) } else { Err(EthError::BadVote("nonce set without a candidate".into())) };
    }
    match nonce {
        u64::MAX => Ok(Some(Vote { recipient: header.beneficiary, add: true })),
        0 => Ok(Some(Vote { recipient: header.beneficiary, add: false })),
        n => Err(EthError::BadVote(format!("nonce {n:#x} is neither add (all ones) nor drop (zero)"))),
    }
}

/// Verify one header's seals against the validator set that must sign it (the set listed by its parent).
pub fn verify_bft_header(family: BftFamily, header: &Header, validators: &[Address]) -> Result<VerifiedBftHeader> {
    let extra = BftExtra::decode(family, &header.extra_data)?;
    let hash = extra.block_hash(header);
    let signers = check_committed_seals(&extra.committed_seal_digest(header), &extra.committed_seals, validators)?;
    let (proposer, vote) = match family {
        BftFamily::Qbft | BftFamily::Ibft2 => (header.beneficiary, extra.vote),
        BftFamily::Ibft1 => {
            let seal = extra.proposer_seal.ok_or_else(|| EthError::Malformed("IBFT 1.0 block without proposer seal".into()))?;
            let digest = extra.proposer_seal_digest(header).ok_or_else(|| EthError::Malformed("no proposer digest".into()))?;
            (recover_signer(&seal, &digest)?, ibft1_vote(header)?)
        }
    };
    if !validators.contains(&proposer) {
        return Err(EthError::BadProposer(proposer));
    }
    Ok(VerifiedBftHeader {
        number: header.number,
        hash,
        parent_hash: header.parent_hash,
        state_root: header.state_root,
        timestamp: header.timestamp,
        proposer,
        signers,
        vote,
        extra,
    })
}

/// Pending validator-set votes: for each (candidate, add?) the validators that voted for it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VoteTally {
    votes: BTreeMap<(Address, bool), BTreeSet<Address>>,
}

impl VoteTally {
    /// Record `proposer`'s vote; if more than half of `validators` now agree, apply it and return true.
    pub fn cast(&mut self, proposer: Address, vote: Vote, validators: &mut Vec<Address>) -> bool {
        let present = validators.contains(&vote.recipient);
        if present == vote.add {
            return false; // adding a member or removing a stranger changes nothing
        }
        // A validator's newer vote on a candidate replaces its older opposite vote.
        if let Some(v) = self.votes.get_mut(&(vote.recipient, !vote.add)) {
            v.remove(&proposer);
        }
        let voters = self.votes.entry((vote.recipient, vote.add)).or_default();
        voters.insert(proposer);
        if voters.len() < validators.len() / 2 + 1 {
            return false;
        }
        self.votes.retain(|(candidate, _), _| *candidate != vote.recipient);
        if vote.add {
            validators.push(vote.recipient);
            validators.sort();
        } else {
            validators.retain(|v| *v != vote.recipient);
            for voters in self.votes.values_mut() {
                voters.remove(&vote.recipient);
            }
        }
        true
    }

    /// Forget every pending vote (at an epoch boundary).
    pub fn reset(&mut self) {
        self.votes.clear();
    }
}

/// The trusted tip of a Besu chain: what the next header is checked against.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BftChainState {
    /// Consensus family.
    pub family: BftFamily,
    /// Blocks per epoch (votes are discarded at multiples of it).
    pub epoch_length: u64,
    /// Validators that must seal the next block, sorted.
    pub validators: Vec<Address>,
    /// Pending votes.
    pub tally: VoteTally,
    /// Number of the trusted tip.
    pub number: u64,
    /// Hash of the trusted tip.
    pub hash: B256,
}

impl BftChainState {
    /// Trust a block (usually genesis, chosen by governance): its extraData lists the validators of the next block.
    pub fn from_trusted_header(family: BftFamily, header: &Header, epoch_length: u64) -> Result<Self> {
        if epoch_length == 0 {
            return Err(EthError::Malformed("epoch length 0".into()));
        }
        let extra = BftExtra::decode(family, &header.extra_data)?;
        let mut validators = extra.validators.clone();
        validators.sort();
        validators.dedup();
        if validators.is_empty() {
            return Err(EthError::Malformed("trusted header lists no validators".into()));
        }
        Ok(BftChainState {
            family,
            epoch_length,
            validators,
            tally: VoteTally::default(),
            number: header.number,
            hash: extra.block_hash(header),
        })
    }

    /// Verify `header` as the next block and advance: it must point at the trusted tip, carry a quorum of seals
    /// from the current validators and list exactly the validators its vote leads to.
    pub fn advance(&mut self, header: &Header) -> Result<VerifiedBftHeader> {
        if header.number != self.number.saturating_add(1) {
            return Err(EthError::NotSequential(format!("block {} after trusted block {}", header.number, self.number)));
        }
        if header.parent_hash != self.hash {
            return Err(EthError::HashMismatch(format!(
                "block {} has parent {}, the trusted block {} hashes to {}",
                header.number, header.parent_hash, self.number, self.hash
            )));
        }
        let verified = verify_bft_header(self.family, header, &self.validators)?;
        let mut next = self.validators.clone();
        let mut tally = self.tally.clone();
        if header.number.is_multiple_of(self.epoch_length) {
            if verified.vote.is_some() {
                return Err(EthError::BadVote(format!("vote at epoch block {}", header.number)));
            }
            tally.reset();
        } else if let Some(vote) = verified.vote {
            tally.cast(verified.proposer, vote, &mut next);
        }
        let mut listed = verified.extra.validators.clone();
        listed.sort();
        if listed != next {
            return Err(EthError::ValidatorMismatch { listed, expected: next });
        }
        self.validators = next;
        self.tally = tally;
        self.number = verified.number;
        self.hash = verified.hash;
        Ok(verified)
    }
}

/// Hash identifying a validator set: keccak of the sorted addresses concatenated.
pub fn validators_hash(validators: &[Address]) -> B256 {
    let mut sorted = validators.to_vec();
    sorted.sort();
    keccak256(sorted.iter().flat_map(|a| a.0 .0).collect::<Vec<u8>>())
}

/// Two sealed headers for one height: proof the validators forked the chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BesuMisbehaviour {
    /// One header.
    pub header1: Header,
    /// The other header, at the same number.
    pub header2: Header,
}

#[derive(Clone, Debug)]
struct Recorded {
    hash: B256,
    /// Validators that had to seal this block.
    sealers: Vec<Address>,
    consensus: ConsensusState,
}

/// A light client of one Besu chain. Headers are accepted one after another (BFT headers carry no skipping
/// certificate: the validator set of each block follows from its parent).
#[derive(Clone, Debug)]
pub struct BesuClient {
    chain_id: String,
    trusting_period: Duration,
    state: BftChainState,
    recorded: BTreeMap<u64, Recorded>,
    frozen: bool,
}

fn consensus_of(timestamp: u64, state_root: B256, next_validators: &[Address]) -> ConsensusState {
    ConsensusState {
        time: Time::from_secs(timestamp),
        root: state_root.to_vec(),
        next_validators_hash: validators_hash(next_validators).to_vec(),
    }
}

impl BesuClient {
    /// A client trusting `trusted` (chosen by governance, e.g. genesis).
    pub fn new(
        chain_id: impl Into<String>,
        family: BftFamily,
        trusted: &Header,
        epoch_length: u64,
        trusting_period: Duration,
    ) -> Result<Self> {
        let state = BftChainState::from_trusted_header(family, trusted, epoch_length)?;
        let mut recorded = BTreeMap::new();
        recorded.insert(
            trusted.number,
            Recorded {
                hash: state.hash,
                sealers: Vec::new(),
                consensus: consensus_of(trusted.timestamp, trusted.state_root, &state.validators),
            },
        );
        Ok(BesuClient { chain_id: chain_id.into(), trusting_period, state, recorded, frozen: false })
    }

    /// The trusted tip's chain state (validators of the next block, pending votes).
    pub fn chain_state(&self) -> &BftChainState {
        &self.state
    }

    fn root_at(&self, height: u64) -> Result<B256> {
        if self.frozen {
            return Err(EthError::Frozen);
        }
        let r = self.recorded.get(&height).ok_or(EthError::UnknownHeight(height))?;
        Ok(B256::from_slice(&r.consensus.root))
    }

    /// Whether `header` is validly sealed by the validators that sealed the recorded block at its height.
    fn sealed_like_recorded(&self, header: &Header) -> Result<B256> {
        let rec = self.recorded.get(&header.number).ok_or(EthError::UnknownHeight(header.number))?;
        if rec.sealers.is_empty() {
            return Err(EthError::UnknownHeight(header.number));
        }
        Ok(verify_bft_header(self.state.family, header, &rec.sealers)?.hash)
    }
}

impl LightClient for BesuClient {
    type Header = Header;
    type Proof = EthStateProof;
    type Misbehaviour = BesuMisbehaviour;
    type Error = EthError;

    fn chain_id(&self) -> &str {
        &self.chain_id
    }

    fn latest_height(&self) -> u64 {
        self.state.number
    }

    fn status(&self, now: Time) -> ClientStatus {
        if self.frozen {
            return ClientStatus::Frozen;
        }
        match self.recorded.get(&self.state.number) {
            Some(r) if r.consensus.time.plus(self.trusting_period) > now => ClientStatus::Active,
            _ => ClientStatus::Expired,
        }
    }

    fn consensus_state(&self, height: u64) -> Option<&ConsensusState> {
        self.recorded.get(&height).map(|r| &r.consensus)
    }

    fn verify_header(&mut self, header: Header, now: Time) -> Result<UpdateOutcome> {
        match self.status(now) {
            ClientStatus::Active => {}
            ClientStatus::Frozen => return Err(EthError::Frozen),
            ClientStatus::Expired => return Err(EthError::Expired),
        }
        if let Some(rec) = self.recorded.get(&header.number) {
            let extra = BftExtra::decode(self.state.family, &header.extra_data)?;
            if extra.block_hash(&header) == rec.hash {
                return Ok(UpdateOutcome { height: header.number, consensus_state: rec.consensus.clone() });
            }
            self.sealed_like_recorded(&header)?;
            self.frozen = true;
            return Err(EthError::Misbehaviour(header.number));
        }
        let sealers = self.state.validators.clone();
        let mut next = self.state.clone();
        let verified = next.advance(&header)?;
        let consensus = consensus_of(verified.timestamp, verified.state_root, &next.validators);
        self.recorded.insert(verified.number, Recorded { hash: verified.hash, sealers, consensus: consensus.clone() });
        self.state = next;
        Ok(UpdateOutcome { height: verified.number, consensus_state: consensus })
    }

    /// `path` is a 20-byte account address (value: the RLP account) or address ‖ 32-byte slot (value: the slot's
    /// big-endian value).
    fn verify_membership(&self, height: u64, path: &[u8], value: &[u8], proof: &EthStateProof) -> Result<()> {
        proof::verify_path(self.root_at(height)?, path, Some(value), proof)
    }

    fn verify_non_membership(&self, height: u64, path: &[u8], proof: &EthStateProof) -> Result<()> {
        proof::verify_path(self.root_at(height)?, path, None, proof)
    }

    fn check_misbehaviour(&mut self, evidence: BesuMisbehaviour, _now: Time) -> Result<bool> {
        if self.frozen {
            return Err(EthError::Frozen);
        }
        let (a, b) = (&evidence.header1, &evidence.header2);
        if a.number != b.number {
            return Err(EthError::Malformed(format!("evidence headers are at heights {} and {}", a.number, b.number)));
        }
        let ha = self.sealed_like_recorded(a)?;
        let hb = self.sealed_like_recorded(b)?;
        if ha == hb {
            return Ok(false);
        }
        self.frozen = true;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quorum_is_ceil_two_thirds() {
        assert_eq!([1, 2, 3, 4, 5, 6, 7].map(quorum), [1, 2, 2, 3, 4, 4, 5]);
    }

    #[test]
    fn votes_need_a_majority() {
        let vals: Vec<Address> = (1..=4).map(Address::repeat_byte).collect();
        let mut set = vals.clone();
        let mut tally = VoteTally::default();
        let cand = Vote { recipient: Address::repeat_byte(9), add: true };
        assert!(!tally.cast(vals[0], cand, &mut set));
        assert!(!tally.cast(vals[0], cand, &mut set), "a repeated vote counts once");
        assert!(!tally.cast(vals[1], cand, &mut set));
        assert!(tally.cast(vals[2], cand, &mut set));
        assert_eq!(set.len(), 5);
        assert!(!tally.cast(vals[0], cand, &mut set), "adding a member is a no-op");
    }
}
