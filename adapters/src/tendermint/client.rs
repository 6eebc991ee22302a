//! The Tendermint light client as the hub hosts it: trusted states per height, trust parameters, freezing on
//! misbehaviour, and ICS-23 proofs against the app hash of a verified height.

use std::collections::BTreeMap;

use causeway_light_client::{ClientStatus, ConsensusState, LightClient, Time, UpdateOutcome};
use tendermint::Hash;
use tendermint_light_client_verifier::types::LightBlock;

use super::ics23::{self as proofs, Ics23Proof, ProofConfig};
use super::verify::{verify_evidence_step, verify_step, TrustedState};
use super::{from_tm_time, Result, TendermintError, TendermintOptions};

/// Two headers for one height, both validly signed from the client's trust: proof the chain forked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TendermintMisbehaviour {
    /// One header.
    pub header1: LightBlock,
    /// The other header, at the same height.
    pub header2: LightBlock,
}

#[derive(Clone, Debug)]
struct Trusted {
    state: TrustedState,
    hash: Hash,
    consensus: ConsensusState,
}

/// A light client of one Tendermint/CometBFT chain.
#[derive(Clone, Debug)]
pub struct TendermintClient {
    chain_id: String,
    options: TendermintOptions,
    proof_config: ProofConfig,
    trusted: BTreeMap<u64, Trusted>,
    frozen: bool,
}

fn consensus_state_of(state: &TrustedState) -> Result<ConsensusState> {
    let header = &state.signed_header().header;
    Ok(ConsensusState {
        time: from_tm_time(header.time)?,
        root: header.app_hash.as_bytes().to_vec(),
        next_validators_hash: header.next_validators_hash.as_bytes().to_vec(),
    })
}

impl TendermintClient {
    /// A client trusting `initial` (chosen by governance: it is not verified here), with the given trust
    /// parameters and state layout.
    pub fn new(initial: TrustedState, options: TendermintOptions, proof_config: ProofConfig) -> Result<Self> {
        options.to_verifier_options()?;
        let chain_id = initial.signed_header().header.chain_id.to_string();
        let mut client =
            TendermintClient { chain_id, options, proof_config, trusted: BTreeMap::new(), frozen: false };
        client.record(initial)?;
        Ok(client)
    }

    /// The trust parameters.
    pub fn options(&self) -> &TendermintOptions {
        &self.options
    }

    /// The trusted state at `height`, if verified.
    pub fn trusted_state(&self, height: u64) -> Option<&TrustedState> {
        self.trusted.get(&height).map(|t| &t.state)
    }

    fn record(&mut self, state: TrustedState) -> Result<UpdateOutcome> {
        let consensus = consensus_state_of(&state)?;
        let height = state.height();
        let hash = state.signed_header().header.hash();
        self.trusted.insert(height, Trusted { state, hash, consensus: consensus.clone() });
        Ok(UpdateOutcome { height, consensus_state: consensus })
    }

    /// The highest trusted state strictly below `height`.
    fn anchor_below(&self, height: u64) -> Result<&TrustedState> {
        self.trusted.range(..height).next_back().map(|(_, t)| &t.state).ok_or(TendermintError::NoTrustedBelow(height))
    }

    fn ensure_usable(&self, now: Time) -> Result<()> {
        match self.status(now) {
            ClientStatus::Active => Ok(()),
            ClientStatus::Frozen => Err(TendermintError::Frozen),
            ClientStatus::Expired => Err(TendermintError::Expired),
        }
    }

    fn root_at(&self, height: u64) -> Result<&[u8]> {
        if self.frozen {
            return Err(TendermintError::Frozen);
        }
        self.trusted.get(&height).map(|t| t.consensus.root.as_slice()).ok_or(TendermintError::UnknownHeight(height))
    }
}

impl LightClient for TendermintClient {
    type Header = LightBlock;
    type Proof = Ics23Proof;
    type Misbehaviour = TendermintMisbehaviour;
    type Error = TendermintError;

    fn chain_id(&self) -> &str {
        &self.chain_id
    }

    fn latest_height(&self) -> u64 {
        self.trusted.keys().next_back().copied().unwrap_or(0)
    }

    fn status(&self, now: Time) -> ClientStatus {
        if self.frozen {
            return ClientStatus::Frozen;
        }
        match self.trusted.values().next_back() {
            Some(t) if t.consensus.time.plus(self.options.trusting_period) > now => ClientStatus::Active,
            _ => ClientStatus::Expired,
        }
    }

    fn consensus_state(&self, height: u64) -> Option<&ConsensusState> {
        self.trusted.get(&height).map(|t| &t.consensus)
    }

    fn verify_header(&mut self, header: LightBlock, now: Time) -> Result<UpdateOutcome> {
        self.ensure_usable(now)?;
        if header.signed_header.header.chain_id.as_str() != self.chain_id {
            return Err(TendermintError::Invalid(format!(
                "header is for chain {}, the client tracks {}",
                header.signed_header.header.chain_id, self.chain_id
            )));
        }
        let height = header.height().value();
        let anchor = self.anchor_below(height)?.clone();
        if let Some(existing) = self.trusted.get(&height) {
            if existing.hash == header.signed_header.header.hash() {
                return Ok(UpdateOutcome { height, consensus_state: existing.consensus.clone() });
            }
            // A different header at a trusted height: misbehaviour only if it is itself validly signed.
            verify_evidence_step(&anchor, &header, &self.options, now)?;
            self.frozen = true;
            return Err(TendermintError::Misbehaviour(height));
        }
        verify_step(&anchor, &header, &self.options, now)?;
        self.record(TrustedState::from_light_block(&header)?)
    }

    fn verify_membership(&self, height: u64, path: &[u8], value: &[u8], proof: &Ics23Proof) -> Result<()> {
        let root = self.root_at(height)?;
        Ok(proofs::verify_membership(&self.proof_config, root, path, value, proof)?)
    }

    fn verify_non_membership(&self, height: u64, path: &[u8], proof: &Ics23Proof) -> Result<()> {
        let root = self.root_at(height)?;
        Ok(proofs::verify_non_membership(&self.proof_config, root, path, proof)?)
    }

    fn check_misbehaviour(&mut self, evidence: TendermintMisbehaviour, now: Time) -> Result<bool> {
        if self.frozen {
            return Err(TendermintError::Frozen);
        }
        let (h1, h2) = (evidence.header1.height().value(), evidence.header2.height().value());
        if h1 != h2 {
            return Err(TendermintError::Invalid(format!("evidence headers are at heights {h1} and {h2}")));
        }
        if evidence.header1.signed_header.header.hash() == evidence.header2.signed_header.header.hash() {
            return Ok(false);
        }
        let anchor = self.anchor_below(h1)?.clone();
        verify_evidence_step(&anchor, &evidence.header1, &self.options, now)?;
        verify_evidence_step(&anchor, &evidence.header2, &self.options, now)?;
        self.frozen = true;
        Ok(true)
    }
}
