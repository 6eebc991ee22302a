//! The Besu light client as the hub hosts it: the trusted chain tip (validators of the next block, pending
//! votes), the consensus states of recent verified blocks, freezing on two validly sealed blocks at one height,
//! and EIP-1186 state proofs against a verified block's state root.
//!
//! The client and its update and evidence types are serialisable: serde JSON for people, and the canonical
//! versioned binary form ([`Canonical`]) for hub transactions, with size limits on decoding.

use std::collections::BTreeMap;

use alloy_consensus::Header;
use alloy_primitives::{Address, B256};
use borsh::{BorshDeserialize, BorshSerialize};
use causeway_light_client::{
    Canonical, ClientStatus, CodecError, ConsensusState, LightClient, Time, UpdateOutcome,
};
use serde::{Deserialize, Serialize};

use super::bft::{validators_hash, verify_bft_header, BftChainState};
use super::extra::BftFamily;
use super::parse::header_from_rlp;
use super::proof::{self, EthStateProof};
use super::{EthError, Result};

/// Largest RLP header accepted (extraData with hundreds of validators and seals stays far below it).
pub const MAX_HEADER_LEN: usize = 64 * 1024;
/// Largest encoded client state accepted.
pub const MAX_CLIENT_LEN: usize = 4 * 1024 * 1024;
/// Most consensus states a client keeps; the oldest are dropped beyond it.
pub const MAX_CONSENSUS_STATES: u32 = 4096;

/// A Besu block header as relayers submit it. JSON: the `eth_getBlockByNumber` header fields; binary: its RLP.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct BesuHeader(pub Header);

impl BorshSerialize for BesuHeader {
    fn serialize<W: std::io::Write>(&self, writer: &mut W) -> std::io::Result<()> {
        BorshSerialize::serialize(&alloy_rlp::encode(&self.0), writer)
    }
}

impl BorshDeserialize for BesuHeader {
    fn deserialize_reader<R: std::io::Read>(reader: &mut R) -> std::io::Result<Self> {
        let bytes = Vec::<u8>::deserialize_reader(reader)?;
        if bytes.len() > MAX_HEADER_LEN {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "header longer than 64 KiB",
            ));
        }
        header_from_rlp(&bytes)
            .map(BesuHeader)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()))
    }
}

impl Canonical for BesuHeader {
    const KIND: &'static str = "BesuHeader";
    const MAX_LEN: usize = MAX_HEADER_LEN + 8;
}

/// Two validly sealed headers at one height: proof the validators forked the chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, BorshSerialize, BorshDeserialize)]
pub struct BesuMisbehaviour {
    /// One header.
    pub header1: BesuHeader,
    /// The other header, at the same number.
    pub header2: BesuHeader,
}

impl Canonical for BesuMisbehaviour {
    const KIND: &'static str = "BesuMisbehaviour";
    const MAX_LEN: usize = 2 * (MAX_HEADER_LEN + 8);
}

/// Parameters of a Besu light client, fixed at registration.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, BorshSerialize, BorshDeserialize)]
#[serde(deny_unknown_fields)]
pub struct BesuParams {
    /// Consensus family.
    pub family: BftFamily,
    /// Blocks per epoch (Besu's `epochlength`).
    pub epoch_length: u64,
    /// Seconds a verified block stays usable as a trust anchor.
    pub trusting_period_secs: u64,
    /// Seconds a block's timestamp may be ahead of `now`.
    pub clock_drift_secs: u64,
    /// Most consensus states kept (1 ..= [`MAX_CONSENSUS_STATES`]).
    pub max_consensus_states: u32,
}

impl BesuParams {
    /// Parameters with a 14-day trusting period, 15 s clock drift and 1024 retained consensus states.
    pub fn new(family: BftFamily, epoch_length: u64) -> Self {
        BesuParams {
            family,
            epoch_length,
            trusting_period_secs: 14 * 24 * 3600,
            clock_drift_secs: 15,
            max_consensus_states: 1024,
        }
    }

    fn check(&self) -> Result<()> {
        if self.epoch_length == 0 {
            return Err(EthError::Malformed("epoch length 0".into()));
        }
        if self.trusting_period_secs == 0 {
            return Err(EthError::Malformed("trusting period 0".into()));
        }
        if !(1..=MAX_CONSENSUS_STATES).contains(&self.max_consensus_states) {
            return Err(EthError::Malformed(format!(
                "max_consensus_states must be within 1..={MAX_CONSENSUS_STATES}"
            )));
        }
        Ok(())
    }
}

/// What the client remembers of one verified block.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, BorshSerialize, BorshDeserialize)]
pub struct RecordedBlock {
    /// The block hash under the family's rule.
    pub hash: B256,
    /// The validators that had to seal this block (empty for the trusted starting block, whose seals were not
    /// checked).
    pub sealers: Vec<Address>,
    /// Time, state root and the hash of the next block's validators.
    pub consensus: ConsensusState,
}

/// A light client of one Besu chain. BFT headers carry no skipping certificate (each block's validators follow
/// from its parent), so headers are accepted one after another from the trusted tip.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, BorshSerialize, BorshDeserialize)]
pub struct BesuClient {
    chain_id: String,
    params: BesuParams,
    state: BftChainState,
    recorded: BTreeMap<u64, RecordedBlock>,
    frozen: bool,
}

impl Canonical for BesuClient {
    const KIND: &'static str = "BesuClient";
    const MAX_LEN: usize = MAX_CLIENT_LEN;

    fn validate(&self) -> std::result::Result<(), CodecError> {
        let invalid = |reason: String| CodecError::Invalid {
            kind: Self::KIND,
            reason,
        };
        self.params.check().map_err(|e| invalid(e.to_string()))?;
        if self.chain_id.is_empty() {
            return Err(invalid("empty chain id".into()));
        }
        if self.state.family != self.params.family || self.state.epoch_length != self.params.epoch_length {
            return Err(invalid("chain state and parameters disagree".into()));
        }
        if self.state.validators.is_empty() || !self.state.validators.windows(2).all(|w| w[0] < w[1]) {
            return Err(invalid("validators empty or not sorted without repeats".into()));
        }
        if self.recorded.len() > self.params.max_consensus_states as usize {
            return Err(invalid("more consensus states than the parameters allow".into()));
        }
        match self.recorded.get(&self.state.number) {
            Some(r) if r.hash == self.state.hash => Ok(()),
            _ => Err(invalid("the trusted tip has no matching consensus state".into())),
        }
    }
}

fn consensus_of(timestamp: u64, state_root: B256, next_validators: &[Address]) -> ConsensusState {
    ConsensusState {
        time: Time::from_secs(timestamp),
        root: state_root.to_vec(),
        next_validators_hash: validators_hash(next_validators).to_vec(),
    }
}

impl BesuClient {
    /// A client trusting `trusted` (genesis or an epoch block, chosen by governance: its seals are not checked).
    /// `validators` is what governance expects to seal the next block; it must be what the header's extraData
    /// and vote give, so a wrong header or a wrong family is caught at registration.
    pub fn new(
        chain_id: impl Into<String>,
        trusted: &Header,
        validators: &[Address],
        params: BesuParams,
    ) -> Result<Self> {
        params.check()?;
        let chain_id = chain_id.into();
        if chain_id.is_empty() {
            return Err(EthError::Malformed("empty chain id".into()));
        }
        let state = BftChainState::from_trusted_header(params.family, trusted, params.epoch_length)?;
        let mut expected = validators.to_vec();
        expected.sort();
        if expected != state.validators {
            return Err(EthError::ValidatorMismatch {
                listed: state.validators,
                expected,
            });
        }
        let mut recorded = BTreeMap::new();
        recorded.insert(
            trusted.number,
            RecordedBlock {
                hash: state.hash,
                sealers: Vec::new(),
                consensus: consensus_of(trusted.timestamp, trusted.state_root, &state.validators),
            },
        );
        Ok(BesuClient {
            chain_id,
            params,
            state,
            recorded,
            frozen: false,
        })
    }

    /// The client's parameters.
    pub fn params(&self) -> &BesuParams {
        &self.params
    }

    /// The trusted tip's chain state (validators of the next block, pending votes).
    pub fn chain_state(&self) -> &BftChainState {
        &self.state
    }

    /// The block recorded at `height`, if verified and still retained.
    pub fn recorded(&self, height: u64) -> Option<&RecordedBlock> {
        self.recorded.get(&height)
    }

    fn root_at(&self, height: u64) -> Result<B256> {
        if self.frozen {
            return Err(EthError::Frozen);
        }
        let r = self
            .recorded
            .get(&height)
            .ok_or(EthError::UnknownHeight(height))?;
        Ok(B256::from_slice(&r.consensus.root))
    }

    /// The validators whose quorum of seals makes a header at `number` binding: the recorded sealers of a verified
    /// height, or the trusted next validators above the tip (a quorum of them sealing two blocks at one height
    /// means at least a third of them signed both).
    fn judging_set(&self, number: u64) -> Result<&[Address]> {
        if number > self.state.number {
            return Ok(&self.state.validators);
        }
        match self.recorded.get(&number) {
            Some(r) if !r.sealers.is_empty() => Ok(&r.sealers),
            _ => Err(EthError::UnknownHeight(number)),
        }
    }

    fn prune(&mut self) {
        while self.recorded.len() > self.params.max_consensus_states as usize {
            self.recorded.pop_first();
        }
    }
}

impl LightClient for BesuClient {
    type Header = BesuHeader;
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
        let period = std::time::Duration::from_secs(self.params.trusting_period_secs);
        if Time::from_secs(self.state.timestamp).plus(period) > now {
            ClientStatus::Active
        } else {
            ClientStatus::Expired
        }
    }

    fn consensus_state(&self, height: u64) -> Option<&ConsensusState> {
        self.recorded.get(&height).map(|r| &r.consensus)
    }

    fn verify_header(&mut self, header: BesuHeader, now: Time) -> Result<UpdateOutcome> {
        match self.status(now) {
            ClientStatus::Active => {}
            ClientStatus::Frozen => return Err(EthError::Frozen),
            ClientStatus::Expired => return Err(EthError::Expired),
        }
        let header = header.0;
        if let Some(rec) = self.recorded.get(&header.number) {
            let extra = super::extra::BftExtra::decode(self.state.family, &header.extra_data)?;
            if extra.block_hash(&header) == rec.hash {
                return Ok(UpdateOutcome {
                    height: header.number,
                    consensus_state: rec.consensus.clone(),
                });
            }
            // A different block at a verified height: misbehaviour if it is itself validly sealed.
            verify_bft_header(self.state.family, &header, self.judging_set(header.number)?)?;
            self.frozen = true;
            return Err(EthError::Misbehaviour(header.number));
        }
        let drift = std::time::Duration::from_secs(self.params.clock_drift_secs);
        if Time::from_secs(header.timestamp) > now.plus(drift) {
            return Err(EthError::FromFuture {
                number: header.number,
                timestamp: header.timestamp,
                now: now.as_secs(),
            });
        }
        let sealers = self.state.validators.clone();
        let mut next = self.state.clone();
        let verified = next.advance(&header)?;
        let consensus = consensus_of(verified.timestamp, verified.state_root, &next.validators);
        self.recorded.insert(
            verified.number,
            RecordedBlock {
                hash: verified.hash,
                sealers,
                consensus: consensus.clone(),
            },
        );
        self.state = next;
        self.prune();
        Ok(UpdateOutcome {
            height: verified.number,
            consensus_state: consensus,
        })
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
        let (a, b) = (&evidence.header1.0, &evidence.header2.0);
        if a.number != b.number {
            return Err(EthError::Malformed(format!(
                "evidence headers are at heights {} and {}",
                a.number, b.number
            )));
        }
        let set = self.judging_set(a.number)?;
        let ha = verify_bft_header(self.state.family, a, set)?.hash;
        let hb = verify_bft_header(self.state.family, b, set)?.hash;
        if ha == hb {
            return Ok(false);
        }
        self.frozen = true;
        Ok(true)
    }
}
