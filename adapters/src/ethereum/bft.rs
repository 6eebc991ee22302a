//! BFT header verification for Besu chains: committed seals recovered with secp256k1 and counted against the
//! trusted validator set (quorum ceil(2n/3) of distinct validators), the IBFT 1.0 proposer seal, and
//! block-header validator-set votes followed exactly as Besu counts them. Pure: no I/O, no clock.

use std::collections::{BTreeMap, BTreeSet};

use alloy_consensus::Header;
use alloy_primitives::{keccak256, Address, B256};
use k256::ecdsa::{RecoveryId, Signature, VerifyingKey};
use serde::{Deserialize, Serialize};

use super::extra::{BftExtra, BftFamily, Seal, Vote};
use super::{EthError, Result};

/// The address that made `seal` over `digest` (r ‖ s ‖ v, v in {0, 1, 27, 28}). High-S signatures are refused
/// (k256's rule); Besu only ever writes low-S seals.
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
        return Err(EthError::NoQuorum {
            got: seen.len(),
            needed,
            validators: validators.len(),
        });
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

/// The vote an IBFT 1.0 block carries in coinbase and nonce (Besu's legacy rule: a zero coinbase is no vote,
/// whatever the nonce).
fn ibft1_vote(header: &Header) -> Result<Option<Vote>> {
    if header.beneficiary == Address::ZERO {
        return Ok(None);
    }
    match u64::from_be_bytes(header.nonce.0) {
        u64::MAX => Ok(Some(Vote {
            recipient: header.beneficiary,
            add: true,
        })),
        0 => Ok(Some(Vote {
            recipient: header.beneficiary,
            add: false,
        })),
        n => Err(EthError::BadVote(format!(
            "nonce {n:#x} is neither add (all ones) nor drop (zero)"
        ))),
    }
}

fn ibft1_proposer_digest(extra: &BftExtra, header: &Header) -> Result<B256> {
    extra
        .proposer_seal_digest(header)
        .ok_or_else(|| EthError::Malformed("not an IBFT 1.0 extraData".into()))
}

/// Verify one header's seals against the validator set that must seal it (the set after its parent): a quorum of
/// distinct committed seals, the proposer (coinbase, or the IBFT 1.0 proposer seal's signer) a validator.
pub fn verify_bft_header(
    family: BftFamily,
    header: &Header,
    validators: &[Address],
) -> Result<VerifiedBftHeader> {
    let extra = BftExtra::decode(family, &header.extra_data)?;
    let hash = extra.block_hash(header);
    let signers = check_committed_seals(
        &extra.committed_seal_digest(header),
        &extra.committed_seals,
        validators,
    )?;
    let (proposer, vote) = match family {
        BftFamily::Qbft | BftFamily::Ibft2 => (header.beneficiary, extra.vote),
        BftFamily::Ibft1 => {
            let seal = extra
                .proposer_seal
                .ok_or_else(|| EthError::Malformed("IBFT 1.0 block without proposer seal".into()))?;
            (
                recover_signer(&seal, &ibft1_proposer_digest(&extra, header)?)?,
                ibft1_vote(header)?,
            )
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

/// Pending validator-set votes, counted as Besu's block-header voting does: a proposer's latest vote on a
/// candidate replaces its earlier opposite vote; a change passes when `n / 2 + 1` validators back it; a passed
/// change discards every pending vote on that candidate, and removing a validator also discards the votes it cast.
#[derive(
    Clone,
    Debug,
    Default,
    PartialEq,
    Eq,
    Serialize,
    Deserialize,
    borsh::BorshSerialize,
    borsh::BorshDeserialize,
)]
pub struct VoteTally {
    /// For each candidate, the validators voting to add it.
    add: BTreeMap<Address, BTreeSet<Address>>,
    /// For each candidate, the validators voting to remove it.
    remove: BTreeMap<Address, BTreeSet<Address>>,
}

impl VoteTally {
    /// Record `proposer`'s vote and apply it to `validators` (kept sorted) if it passes. Returns true when the
    /// validator set changed.
    pub fn cast(&mut self, proposer: Address, vote: Vote, validators: &mut Vec<Address>) -> bool {
        let (backing, opposing) = if vote.add {
            (&mut self.add, &mut self.remove)
        } else {
            (&mut self.remove, &mut self.add)
        };
        backing.entry(vote.recipient).or_default().insert(proposer);
        if let Some(o) = opposing.get_mut(&vote.recipient) {
            o.remove(&proposer);
        }
        let needed = validators.len() / 2 + 1;
        if backing.get(&vote.recipient).map_or(0, BTreeSet::len) < needed {
            return false;
        }
        self.add.remove(&vote.recipient);
        self.remove.remove(&vote.recipient);
        let before = validators.len();
        if vote.add {
            if let Err(at) = validators.binary_search(&vote.recipient) {
                validators.insert(at, vote.recipient);
            }
        } else {
            validators.retain(|v| *v != vote.recipient);
            for voters in self.add.values_mut().chain(self.remove.values_mut()) {
                voters.remove(&vote.recipient);
            }
        }
        self.add.retain(|_, v| !v.is_empty());
        self.remove.retain(|_, v| !v.is_empty());
        validators.len() != before
    }

    /// Forget every pending vote (at an epoch block).
    pub fn reset(&mut self) {
        self.add.clear();
        self.remove.clear();
    }

    /// Number of candidates with pending votes.
    pub fn pending(&self) -> usize {
        self.add.len() + self.remove.len()
    }
}

/// The trusted tip of a Besu chain: what the next header is checked against.
#[derive(
    Clone, Debug, PartialEq, Eq, Serialize, Deserialize, borsh::BorshSerialize, borsh::BorshDeserialize,
)]
pub struct BftChainState {
    /// Consensus family.
    pub family: BftFamily,
    /// Blocks per epoch (pending votes are discarded at multiples of it).
    pub epoch_length: u64,
    /// Validators that must seal the next block, sorted ascending.
    pub validators: Vec<Address>,
    /// Pending votes.
    pub tally: VoteTally,
    /// Number of the trusted tip.
    pub number: u64,
    /// Hash of the trusted tip.
    pub hash: B256,
    /// Timestamp of the trusted tip (seconds).
    pub timestamp: u64,
}

/// The validator list a header carries, checked to be sorted ascending without repeats (Besu's rule).
fn listed_validators(extra: &BftExtra) -> Result<&[Address]> {
    if extra.validators.is_empty() {
        return Err(EthError::Malformed(
            "extraData lists no validators (contract-based validator selection is not supported)".into(),
        ));
    }
    if !extra.validators.windows(2).all(|w| w[0] < w[1]) {
        return Err(EthError::Malformed(
            "extraData validators are not sorted ascending without repeats".into(),
        ));
    }
    Ok(&extra.validators)
}

impl BftChainState {
    /// Trust a block (genesis, or a block chosen by governance). Its extraData lists (in any order, for genesis)
    /// the validators that sealed it; applying its own vote gives the validators of the next block. Votes cast before it are unknown, so trust
    /// genesis or an epoch block: from elsewhere a vote already in progress would make the client reject (never
    /// accept) the block where it passes.
    pub fn from_trusted_header(family: BftFamily, header: &Header, epoch_length: u64) -> Result<Self> {
        if epoch_length == 0 {
            return Err(EthError::Malformed("epoch length 0".into()));
        }
        let extra = BftExtra::decode(family, &header.extra_data)?;
        // Genesis files may list validators in any order; Besu keeps them sorted from then on.
        let mut validators = extra.validators.clone();
        validators.sort();
        validators.dedup();
        if validators.is_empty() || validators.len() != extra.validators.len() {
            return Err(EthError::Malformed(
                "trusted header lists no validators, or one twice".into(),
            ));
        }
        let mut state = BftChainState {
            family,
            epoch_length,
            validators,
            tally: VoteTally::default(),
            number: header.number,
            hash: extra.block_hash(header),
            timestamp: header.timestamp,
        };
        let vote = match family {
            BftFamily::Ibft1 => ibft1_vote(header)?,
            _ => extra.vote,
        };
        if let Some(vote) = vote.filter(|_| !header.number.is_multiple_of(epoch_length)) {
            let proposer = match family {
                BftFamily::Ibft1 => {
                    let seal = extra.proposer_seal.ok_or_else(|| {
                        EthError::Malformed("IBFT 1.0 block with a vote but no proposer seal".into())
                    })?;
                    recover_signer(&seal, &ibft1_proposer_digest(&extra, header)?)?
                }
                _ => header.beneficiary,
            };
            state.tally.cast(proposer, vote, &mut state.validators);
        }
        Ok(state)
    }

    /// Verify `header` as the next block and advance: it must point at the trusted tip, list exactly the
    /// validators that must seal it, carry a quorum of their seals, and not go back in time. Its vote is then
    /// counted (or, at an epoch block, every pending vote is discarded) to give the next block's validators.
    pub fn advance(&mut self, header: &Header) -> Result<VerifiedBftHeader> {
        if header.number != self.number.saturating_add(1) {
            return Err(EthError::NotSequential(format!(
                "block {} after trusted block {}",
                header.number, self.number
            )));
        }
        if header.parent_hash != self.hash {
            return Err(EthError::HashMismatch(format!(
                "block {} has parent {}, the trusted block {} hashes to {}",
                header.number, header.parent_hash, self.number, self.hash
            )));
        }
        if header.timestamp < self.timestamp {
            return Err(EthError::NotSequential(format!(
                "block {} has timestamp {}, before its parent's {}",
                header.number, header.timestamp, self.timestamp
            )));
        }
        let verified = verify_bft_header(self.family, header, &self.validators)?;
        let listed = listed_validators(&verified.extra)?;
        if listed != self.validators.as_slice() {
            return Err(EthError::ValidatorMismatch {
                listed: listed.to_vec(),
                expected: self.validators.clone(),
            });
        }
        let mut next = self.validators.clone();
        let mut tally = self.tally.clone();
        if header.number.is_multiple_of(self.epoch_length) {
            // Besu ignores votes in epoch blocks and starts the tally afresh.
            tally.reset();
        } else if let Some(vote) = verified.vote {
            tally.cast(verified.proposer, vote, &mut next);
        }
        self.validators = next;
        self.tally = tally;
        self.number = verified.number;
        self.hash = verified.hash;
        self.timestamp = verified.timestamp;
        Ok(verified)
    }
}

/// Hash identifying a validator set: keccak of the sorted addresses concatenated.
pub fn validators_hash(validators: &[Address]) -> B256 {
    let mut sorted = validators.to_vec();
    sorted.sort();
    keccak256(sorted.iter().flat_map(|a| a.0 .0).collect::<Vec<u8>>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quorum_is_ceil_two_thirds() {
        assert_eq!([1, 2, 3, 4, 5, 6, 7].map(quorum), [1, 2, 2, 3, 4, 4, 5]);
    }

    #[test]
    fn votes_need_a_majority_and_follow_besu_counting() {
        let vals: Vec<Address> = (1..=4).map(Address::repeat_byte).collect();
        let mut set = vals.clone();
        let mut tally = VoteTally::default();
        let cand = Vote {
            recipient: Address::repeat_byte(9),
            add: true,
        };
        assert!(!tally.cast(vals[0], cand, &mut set));
        assert!(
            !tally.cast(vals[0], cand, &mut set),
            "a repeated vote counts once"
        );
        assert!(!tally.cast(vals[1], cand, &mut set));
        assert!(tally.cast(vals[2], cand, &mut set), "3 of 4 is more than half");
        assert_eq!(set.len(), 5);
        assert!(set.windows(2).all(|w| w[0] < w[1]), "kept sorted");
        assert_eq!(tally.pending(), 0, "a passed change discards its votes");
        // A later opposite vote replaces an earlier one.
        let drop4 = Vote {
            recipient: vals[3],
            add: false,
        };
        let keep4 = Vote {
            recipient: vals[3],
            add: true,
        };
        assert!(!tally.cast(vals[0], drop4, &mut set));
        assert!(!tally.cast(vals[1], drop4, &mut set));
        assert!(!tally.cast(vals[0], keep4, &mut set));
        assert!(
            !tally.cast(vals[2], drop4, &mut set),
            "only 2 drop votes remain of the 3 needed"
        );
        assert!(tally.cast(vals[3], drop4, &mut set), "the third drop vote passes");
        assert_eq!(set.len(), 4);
        assert!(!set.contains(&vals[3]));
    }

    #[test]
    fn a_removed_validator_loses_its_pending_votes() {
        let vals: Vec<Address> = (1..=3).map(Address::repeat_byte).collect();
        let mut set = vals.clone();
        let mut tally = VoteTally::default();
        let cand = Vote {
            recipient: Address::repeat_byte(9),
            add: true,
        };
        assert!(!tally.cast(vals[2], cand, &mut set));
        let drop3 = Vote {
            recipient: vals[2],
            add: false,
        };
        assert!(!tally.cast(vals[0], drop3, &mut set));
        assert!(tally.cast(vals[1], drop3, &mut set));
        assert_eq!(set, vals[..2].to_vec());
        // vals[2]'s vote for the candidate is gone: one vote from vals[0] is not a majority of 2.
        assert!(!tally.cast(vals[0], cand, &mut set));
        assert!(tally.cast(vals[1], cand, &mut set));
    }
}
