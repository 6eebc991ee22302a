//! The Tendermint light client as the hub hosts it: a consensus state (time, app hash, next validators hash) and
//! header hash per verified height, trust parameters, freezing on misbehaviour, and ICS-23 proofs against the app
//! hash of a verified height.
//!
//! Like IBC's Tendermint client, the client keeps no validator sets: an update ([`TendermintHeader`]) carries the
//! untrusted light block, the trusted height it is verified from, and that height's next validator set, which
//! must hash to what the client remembers. That keeps the client state small enough to travel in hub
//! transactions. Client, updates and evidence serialise as serde JSON and as the canonical versioned binary form
//! ([`Canonical`], with size limits on decoding; Tendermint parts inside it are their protobuf encodings).

use std::collections::BTreeMap;

use borsh::{BorshDeserialize, BorshSerialize};
use causeway_light_client::{
    Canonical, ClientStatus, CodecError, ConsensusState, LightClient, Time, UpdateOutcome,
};
use serde::{Deserialize, Serialize};
use tendermint::block::signed_header::SignedHeader;
use tendermint::validator::Set as ValidatorSet;
use tendermint_light_client_verifier::types::LightBlock;
use tendermint_proto::Protobuf;

use super::ics23::{self as proofs, Ics23Proof, ProofConfig};
use super::parse::check_validator_set;
use super::verify::{verify_evidence_step, verify_step, TrustedState};
use super::{from_tm_time, to_tm_time, Result, TendermintError, TendermintOptions};

/// Largest encoded update accepted (a commit and two validator sets of a few hundred validators fit easily).
pub const MAX_HEADER_LEN: usize = 1024 * 1024;
/// Largest encoded client state accepted.
pub const MAX_CLIENT_LEN: usize = 1024 * 1024;

/// An update: a light block and the trusted height (with its next validator set) it is verified from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TendermintHeader {
    /// The untrusted light block.
    pub light_block: LightBlock,
    /// A height the client already trusts, below the light block's.
    pub trusted_height: u64,
    /// The validator set that signs the height after `trusted_height`.
    pub trusted_next_validators: ValidatorSet,
}

impl TendermintHeader {
    /// An update verified from `trusted` (a light block the client already verified).
    pub fn new(light_block: LightBlock, trusted: &LightBlock) -> Self {
        TendermintHeader {
            light_block,
            trusted_height: trusted.height().value(),
            trusted_next_validators: trusted.next_validators.clone(),
        }
    }

    /// The height of the light block.
    pub fn height(&self) -> u64 {
        self.light_block.height().value()
    }
}

fn invalid_data(what: &str, e: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, format!("{what}: {e}"))
}

fn decode_set(bytes: &[u8], what: &str) -> std::io::Result<ValidatorSet> {
    let set = <ValidatorSet as Protobuf<tendermint_proto::v0_38::types::ValidatorSet>>::decode_vec(bytes)
        .map_err(|e| invalid_data(what, e))?;
    check_validator_set(&set, what).map_err(|e| invalid_data(what, e))?;
    Ok(set)
}

fn encode_set(set: &ValidatorSet) -> Vec<u8> {
    <ValidatorSet as Protobuf<tendermint_proto::v0_38::types::ValidatorSet>>::encode_vec(set.clone())
}

impl BorshSerialize for TendermintHeader {
    fn serialize<W: std::io::Write>(&self, writer: &mut W) -> std::io::Result<()> {
        let sh = <SignedHeader as Protobuf<tendermint_proto::v0_38::types::SignedHeader>>::encode_vec(
            self.light_block.signed_header.clone(),
        );
        BorshSerialize::serialize(&sh, writer)?;
        BorshSerialize::serialize(&encode_set(&self.light_block.validators), writer)?;
        BorshSerialize::serialize(&encode_set(&self.light_block.next_validators), writer)?;
        BorshSerialize::serialize(&self.trusted_height, writer)?;
        BorshSerialize::serialize(&encode_set(&self.trusted_next_validators), writer)
    }
}

impl BorshDeserialize for TendermintHeader {
    fn deserialize_reader<R: std::io::Read>(reader: &mut R) -> std::io::Result<Self> {
        let sh = Vec::<u8>::deserialize_reader(reader)?;
        let signed_header =
            <SignedHeader as Protobuf<tendermint_proto::v0_38::types::SignedHeader>>::decode_vec(&sh)
                .map_err(|e| invalid_data("signed header", e))?;
        let validators = decode_set(&Vec::<u8>::deserialize_reader(reader)?, "validator set")?;
        let next_validators = decode_set(&Vec::<u8>::deserialize_reader(reader)?, "next validator set")?;
        let trusted_height = u64::deserialize_reader(reader)?;
        let trusted_next_validators =
            decode_set(&Vec::<u8>::deserialize_reader(reader)?, "trusted validators")?;
        let light_block = LightBlock::new(
            signed_header,
            validators,
            next_validators,
            tendermint::node::Id::new([0; 20]),
        );
        Ok(TendermintHeader {
            light_block,
            trusted_height,
            trusted_next_validators,
        })
    }
}

impl Canonical for TendermintHeader {
    const KIND: &'static str = "TendermintHeader";
    const MAX_LEN: usize = MAX_HEADER_LEN;
}

/// Two light blocks for one height, each validly signed from the client's trust: proof the chain forked.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, BorshSerialize, BorshDeserialize)]
#[serde(deny_unknown_fields)]
pub struct TendermintMisbehaviour {
    /// One header.
    pub header1: TendermintHeader,
    /// The other header, at the same height.
    pub header2: TendermintHeader,
}

impl Canonical for TendermintMisbehaviour {
    const KIND: &'static str = "TendermintMisbehaviour";
    const MAX_LEN: usize = 2 * MAX_HEADER_LEN;
}

/// What the client remembers of one verified height.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, BorshSerialize, BorshDeserialize)]
pub struct TrustedHeight {
    /// The header hash (what the chain calls this block).
    #[serde(with = "causeway_light_client::codec::hex_array")]
    pub header_hash: [u8; 32],
    /// Time, app hash and next validators hash.
    pub consensus: ConsensusState,
}

/// A light client of one Tendermint/CometBFT chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, BorshSerialize, BorshDeserialize)]
#[serde(deny_unknown_fields)]
pub struct TendermintClient {
    chain_id: String,
    options: TendermintOptions,
    proof_config: ProofConfig,
    trusted: BTreeMap<u64, TrustedHeight>,
    frozen: bool,
}

impl Canonical for TendermintClient {
    const KIND: &'static str = "TendermintClient";
    const MAX_LEN: usize = MAX_CLIENT_LEN;

    fn validate(&self) -> std::result::Result<(), CodecError> {
        let invalid = |reason: String| CodecError::Invalid {
            kind: Self::KIND,
            reason,
        };
        tendermint::chain::Id::try_from(self.chain_id.clone())
            .map_err(|e| invalid(format!("chain id: {e}")))?;
        self.options.check().map_err(|e| invalid(e.to_string()))?;
        self.proof_config.check().map_err(|e| invalid(e.to_string()))?;
        if self.trusted.is_empty() {
            return Err(invalid("no trusted height".into()));
        }
        if self.trusted.len() > self.options.max_consensus_states as usize {
            return Err(invalid("more consensus states than the options allow".into()));
        }
        if self
            .trusted
            .values()
            .any(|t| t.consensus.next_validators_hash.len() != 32)
        {
            return Err(invalid("a next validators hash is not 32 bytes".into()));
        }
        Ok(())
    }
}

fn hash_bytes(h: tendermint::Hash) -> Result<[u8; 32]> {
    h.as_bytes()
        .try_into()
        .map_err(|_| TendermintError::Malformed("header hash is not 32 bytes".into()))
}

fn trusted_height_of(header: &tendermint::block::Header) -> Result<TrustedHeight> {
    Ok(TrustedHeight {
        header_hash: hash_bytes(header.hash())?,
        consensus: ConsensusState {
            time: from_tm_time(header.time)?,
            root: header.app_hash.as_bytes().to_vec(),
            next_validators_hash: header.next_validators_hash.as_bytes().to_vec(),
        },
    })
}

impl TendermintClient {
    /// A client trusting `initial` (chosen by governance: its signatures are not checked here, but its validator
    /// sets must match the hashes its header commits to), with the given trust parameters and state layout.
    pub fn new(initial: &LightBlock, options: TendermintOptions, proof_config: ProofConfig) -> Result<Self> {
        if initial.validators.hash() != initial.signed_header.header.validators_hash {
            return Err(TendermintError::BadTrustedState(
                "validator set does not match the header".into(),
            ));
        }
        Self::from_trusted_header(
            &initial.signed_header,
            &initial.next_validators,
            options,
            proof_config,
        )
    }

    /// A client trusting a signed header alone, given the validator set of the next height (which must match the
    /// header's `next_validators_hash`).
    pub fn from_trusted_header(
        signed_header: &SignedHeader,
        next_validators: &ValidatorSet,
        options: TendermintOptions,
        proof_config: ProofConfig,
    ) -> Result<Self> {
        options.check()?;
        proof_config.check()?;
        TrustedState::new(signed_header, next_validators.clone())?;
        let header = &signed_header.header;
        let mut trusted = BTreeMap::new();
        trusted.insert(header.height.value(), trusted_height_of(header)?);
        Ok(TendermintClient {
            chain_id: header.chain_id.to_string(),
            options,
            proof_config,
            trusted,
            frozen: false,
        })
    }

    /// The trust parameters.
    pub fn options(&self) -> &TendermintOptions {
        &self.options
    }

    /// The state layout proofs are checked against.
    pub fn proof_config(&self) -> &ProofConfig {
        &self.proof_config
    }

    /// What the client remembers of `height`, if verified and still retained.
    pub fn trusted_height(&self, height: u64) -> Option<&TrustedHeight> {
        self.trusted.get(&height)
    }

    /// True once misbehaviour froze the client.
    pub fn is_frozen(&self) -> bool {
        self.frozen
    }

    /// The trusted state an update says it is verified from, rebuilt from the remembered consensus state and the
    /// supplied validator set.
    fn anchor(&self, update: &TendermintHeader) -> Result<TrustedState> {
        let height = update.height();
        if update.trusted_height >= height {
            return Err(TendermintError::Invalid(format!(
                "trusted height {} is not below the header's height {height}",
                update.trusted_height
            )));
        }
        let t = self
            .trusted
            .get(&update.trusted_height)
            .ok_or(TendermintError::UnknownHeight(update.trusted_height))?;
        let chain_id = tendermint::chain::Id::try_from(self.chain_id.clone())
            .map_err(|e| TendermintError::Malformed(format!("chain id: {e}")))?;
        let height = tendermint::block::Height::try_from(update.trusted_height)
            .map_err(|e| TendermintError::Malformed(format!("trusted height: {e}")))?;
        let nvh = tendermint::Hash::from_bytes(
            tendermint::hash::Algorithm::Sha256,
            &t.consensus.next_validators_hash,
        )
        .map_err(|e| TendermintError::Malformed(format!("next validators hash: {e}")))?;
        TrustedState::from_parts(
            chain_id,
            height,
            to_tm_time(t.consensus.time)?,
            nvh,
            update.trusted_next_validators.clone(),
        )
    }

    fn ensure_usable(&self, now: Time) -> Result<()> {
        match self.status(now) {
            ClientStatus::Active => Ok(()),
            ClientStatus::Frozen => Err(TendermintError::Frozen),
            ClientStatus::Expired => Err(TendermintError::Expired),
        }
    }

    fn check_chain(&self, block: &LightBlock) -> Result<()> {
        let chain = block.signed_header.header.chain_id.as_str();
        if chain != self.chain_id {
            return Err(TendermintError::Invalid(format!(
                "header is for chain {chain}, the client tracks {}",
                self.chain_id
            )));
        }
        Ok(())
    }

    /// True when `time` at `height` is strictly between the times of the trusted neighbours (BFT time only grows).
    fn fits_in_time(&self, height: u64, time: Time) -> bool {
        let before = self
            .trusted
            .range(..height)
            .next_back()
            .is_none_or(|(_, t)| t.consensus.time < time);
        let after = self
            .trusted
            .range(height + 1..)
            .next()
            .is_none_or(|(_, t)| t.consensus.time > time);
        before && after
    }

    fn root_at(&self, height: u64) -> Result<&[u8]> {
        if self.frozen {
            return Err(TendermintError::Frozen);
        }
        self.trusted
            .get(&height)
            .map(|t| t.consensus.root.as_slice())
            .ok_or(TendermintError::UnknownHeight(height))
    }

    fn prune(&mut self) {
        while self.trusted.len() > self.options.max_consensus_states as usize {
            self.trusted.pop_first();
        }
    }
}

impl LightClient for TendermintClient {
    type Header = TendermintHeader;
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

    fn verify_header(&mut self, update: TendermintHeader, now: Time) -> Result<UpdateOutcome> {
        self.ensure_usable(now)?;
        self.check_chain(&update.light_block)?;
        let height = update.height();
        let hash = hash_bytes(update.light_block.signed_header.header.hash())?;
        if let Some(existing) = self.trusted.get(&height) {
            if existing.header_hash == hash {
                return Ok(UpdateOutcome {
                    height,
                    consensus_state: existing.consensus.clone(),
                });
            }
            // A different header at a trusted height: misbehaviour only if it is itself validly signed.
            let anchor = self.anchor(&update)?;
            verify_evidence_step(&anchor, &update.light_block, &self.options, now)?;
            self.frozen = true;
            return Err(TendermintError::Misbehaviour(height));
        }
        let anchor = self.anchor(&update)?;
        verify_step(&anchor, &update.light_block, &self.options, now)?;
        let record = trusted_height_of(&update.light_block.signed_header.header)?;
        if !self.fits_in_time(height, record.consensus.time) {
            self.frozen = true;
            return Err(TendermintError::TimeMisbehaviour(height));
        }
        let consensus_state = record.consensus.clone();
        self.trusted.insert(height, record);
        self.prune();
        Ok(UpdateOutcome {
            height,
            consensus_state,
        })
    }

    fn verify_membership(&self, height: u64, path: &[u8], value: &[u8], proof: &Ics23Proof) -> Result<()> {
        let root = self.root_at(height)?;
        Ok(proofs::verify_membership(
            &self.proof_config,
            root,
            path,
            value,
            proof,
        )?)
    }

    fn verify_non_membership(&self, height: u64, path: &[u8], proof: &Ics23Proof) -> Result<()> {
        let root = self.root_at(height)?;
        Ok(proofs::verify_non_membership(
            &self.proof_config,
            root,
            path,
            proof,
        )?)
    }

    fn check_misbehaviour(&mut self, evidence: TendermintMisbehaviour, now: Time) -> Result<bool> {
        if self.frozen {
            return Err(TendermintError::Frozen);
        }
        let (a, b) = (&evidence.header1, &evidence.header2);
        self.check_chain(&a.light_block)?;
        self.check_chain(&b.light_block)?;
        if a.height() != b.height() {
            return Err(TendermintError::Invalid(format!(
                "evidence headers are at heights {} and {}",
                a.height(),
                b.height()
            )));
        }
        if a.light_block.signed_header.header.hash() == b.light_block.signed_header.header.hash() {
            return Ok(false);
        }
        for h in [a, b] {
            let anchor = self.anchor(h)?;
            verify_evidence_step(&anchor, &h.light_block, &self.options, now)?;
        }
        self.frozen = true;
        Ok(true)
    }
}
