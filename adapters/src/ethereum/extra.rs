//! Besu BFT extraData layouts and the block-hash and seal-hash rules of each family.
//!
//! - **QBFT**: `extraData = RLP[vanity32, [validators], vote, round, [seals]]`, the vote an empty list or
//!   `[recipient, 0xff|0x00]`, the round an RLP integer. Committed seals sign `keccak(RLP(header))` with the seals
//!   list emptied and the round kept; the block hash uses round 0 and an empty seals list.
//! - **IBFT 2.0**: the same items, but the round is a fixed 4-byte string and an absent vote is an empty string.
//!   Committed seals sign the header with the seals item left out (4 items); the block hash leaves out the round
//!   too (3 items).
//! - **IBFT 1.0**: `extraData = vanity32 ‖ RLP[[validators], proposerSeal, [committedSeals]]`. The block hash keeps
//!   the proposer seal and empties the committed seals; the proposer seal signs `keccak(hash)` of the header with
//!   both seals emptied; committed seals sign `keccak(blockHash ‖ 0x02)`. Votes travel in coinbase and nonce.
//!
//! The items a rule keeps are re-emitted byte for byte as the header carried them, so hashes never depend on
//! re-encoding choices.

use std::str::FromStr;

use alloy_consensus::Header;
use alloy_primitives::{keccak256, Address, B256};
use alloy_rlp::Encodable;
use serde::{Deserialize, Serialize};

use super::{EthError, Result};

/// The BFT consensus family a Besu chain runs.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    borsh::BorshSerialize,
    borsh::BorshDeserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum BftFamily {
    /// QBFT (Besu's current BFT protocol).
    Qbft,
    /// IBFT 2.0.
    Ibft2,
    /// IBFT 1.0 (Quorum Istanbul compatible, Besu's `ibftLegacy`).
    Ibft1,
}

impl FromStr for BftFamily {
    type Err = EthError;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "qbft" => Ok(BftFamily::Qbft),
            "ibft2" => Ok(BftFamily::Ibft2),
            "ibft" | "ibft1" => Ok(BftFamily::Ibft1),
            other => Err(EthError::Malformed(format!(
                "unknown consensus {other:?}: use qbft, ibft2 or ibft"
            ))),
        }
    }
}

impl BftFamily {
    /// The name the CLI and Besu's genesis use: `qbft`, `ibft2` or `ibft`.
    pub fn name(self) -> &'static str {
        match self {
            BftFamily::Qbft => "qbft",
            BftFamily::Ibft2 => "ibft2",
            BftFamily::Ibft1 => "ibft",
        }
    }
}

/// A validator-set vote.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, borsh::BorshSerialize, borsh::BorshDeserialize,
)]
pub struct Vote {
    /// The address voted in or out.
    pub recipient: Address,
    /// True to add, false to remove.
    pub add: bool,
}

/// Length of a secp256k1 seal: r ‖ s ‖ v.
pub const SEAL_LEN: usize = 65;
/// A seal: a 65-byte recoverable secp256k1 signature.
pub type Seal = [u8; SEAL_LEN];

const VANITY_LEN: usize = 32;
const EMPTY_LIST: u8 = 0xc0;
const EMPTY_STRING: u8 = 0x80;
/// Byte appended to the block hash before committed seals sign it in IBFT 1.0 (the "commit" message code).
const IBFT1_COMMIT_CODE: u8 = 0x02;

/// A decoded BFT extraData, keeping the raw items that hash rules re-emit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BftExtra {
    /// The family whose layout this follows.
    pub family: BftFamily,
    /// The 32 vanity bytes.
    pub vanity: Vec<u8>,
    /// The validator list (for QBFT/IBFT2 and IBFT1: the set after this block).
    pub validators: Vec<Address>,
    /// The vote carried in extraData (QBFT/IBFT2 only).
    pub vote: Option<Vote>,
    /// The consensus round that produced the block (QBFT/IBFT2 only).
    pub round: u32,
    /// Committed seals.
    pub committed_seals: Vec<Seal>,
    /// The proposer seal (IBFT 1.0 only; absent at genesis).
    pub proposer_seal: Option<Seal>,
    raw_vanity: Vec<u8>,
    raw_validators: Vec<u8>,
    raw_vote: Vec<u8>,
    raw_round: Vec<u8>,
    raw_proposer_seal: Vec<u8>,
}

struct Item<'a> {
    raw: &'a [u8],
    payload: &'a [u8],
    list: bool,
}

fn next_item<'a>(buf: &mut &'a [u8]) -> Result<Item<'a>> {
    let all: &'a [u8] = buf;
    let mut rest = all;
    let h = alloy_rlp::Header::decode(&mut rest)?;
    let header_len = all.len() - rest.len();
    let total = header_len
        .checked_add(h.payload_length)
        .filter(|t| *t <= all.len())
        .ok_or_else(|| EthError::Malformed("RLP item runs past the end".into()))?;
    let item = Item {
        raw: &all[..total],
        payload: &all[header_len..total],
        list: h.list,
    };
    *buf = &all[total..];
    Ok(item)
}

fn list_items(item: &Item<'_>, what: &str) -> Result<Vec<Vec<u8>>> {
    if !item.list {
        return Err(EthError::Malformed(format!("{what} is not an RLP list")));
    }
    let mut buf = item.payload;
    let mut out = Vec::new();
    while !buf.is_empty() {
        let it = next_item(&mut buf)?;
        if it.list {
            return Err(EthError::Malformed(format!("{what} holds a nested list")));
        }
        out.push(it.payload.to_vec());
    }
    Ok(out)
}

fn addresses(item: &Item<'_>) -> Result<Vec<Address>> {
    list_items(item, "validator list")?
        .into_iter()
        .map(|b| {
            (b.len() == 20)
                .then(|| Address::from_slice(&b))
                .ok_or_else(|| EthError::Malformed(format!("validator entry of {} bytes", b.len())))
        })
        .collect()
}

fn seals(item: &Item<'_>) -> Result<Vec<Seal>> {
    list_items(item, "seal list")?
        .into_iter()
        .map(|b| seal(&b))
        .collect()
}

fn seal(b: &[u8]) -> Result<Seal> {
    Seal::try_from(b)
        .map_err(|_| EthError::Malformed(format!("seal of {} bytes, expected {SEAL_LEN}", b.len())))
}

fn vote(item: &Item<'_>, family: BftFamily) -> Result<Option<Vote>> {
    // Besu writes an absent vote as an empty list in QBFT and as an empty string (RLP null) in IBFT 2.0.
    let absent = match family {
        BftFamily::Qbft => item.list && item.payload.is_empty(),
        _ => !item.list && item.payload.is_empty(),
    };
    if absent {
        return Ok(None);
    }
    if !item.list {
        return Err(EthError::Malformed(format!(
            "{} vote is neither absent nor a list",
            family.name()
        )));
    }
    let mut buf = item.payload;
    let recipient = next_item(&mut buf)?;
    let kind = next_item(&mut buf)?;
    if !buf.is_empty() || recipient.list || kind.list || recipient.payload.len() != 20 {
        return Err(EthError::Malformed("vote is not [address, type]".into()));
    }
    let add = match kind.payload {
        [0xff] => true,
        [0x00] => false,
        other => {
            return Err(EthError::Malformed(format!(
                "vote type {other:02x?} is neither add (0xff) nor drop (0x00)"
            )))
        }
    };
    Ok(Some(Vote {
        recipient: Address::from_slice(recipient.payload),
        add,
    }))
}

fn round(item: &Item<'_>, family: BftFamily) -> Result<u32> {
    if item.list {
        return Err(EthError::Malformed("round is a list".into()));
    }
    let p = item.payload;
    if family == BftFamily::Ibft2 && p.len() != 4 {
        return Err(EthError::Malformed(format!(
            "IBFT 2.0 round must be 4 bytes, got {}",
            p.len()
        )));
    }
    if p.len() > 4 {
        return Err(EthError::Malformed("round wider than 32 bits".into()));
    }
    if family == BftFamily::Qbft && p.first() == Some(&0) {
        return Err(EthError::Malformed(
            "QBFT round is not a minimal integer (leading zero byte)".into(),
        ));
    }
    Ok(p.iter().fold(0u32, |acc, b| (acc << 8) | u32::from(*b)))
}

fn wrap_list(items: &[&[u8]]) -> Vec<u8> {
    let payload_length = items.iter().map(|i| i.len()).sum();
    let mut out = Vec::with_capacity(payload_length + 9);
    alloy_rlp::Header {
        list: true,
        payload_length,
    }
    .encode(&mut out);
    for i in items {
        out.extend_from_slice(i);
    }
    out
}

impl BftExtra {
    /// Decode a header's extraData in the layout of `family`.
    pub fn decode(family: BftFamily, extra: &[u8]) -> Result<Self> {
        match family {
            BftFamily::Qbft | BftFamily::Ibft2 => Self::decode_bft(family, extra),
            BftFamily::Ibft1 => Self::decode_ibft1(extra),
        }
    }

    fn decode_bft(family: BftFamily, extra: &[u8]) -> Result<Self> {
        let mut buf = extra;
        let outer = next_item(&mut buf)?;
        if !buf.is_empty() || !outer.list {
            return Err(EthError::Malformed("extraData is not one RLP list".into()));
        }
        let mut items = outer.payload;
        let mut parts = Vec::new();
        while !items.is_empty() {
            parts.push(next_item(&mut items)?);
        }
        if parts.len() != 5 {
            return Err(EthError::Malformed(format!(
                "extraData has {} items, expected 5",
                parts.len()
            )));
        }
        if parts[0].list || parts[0].payload.len() != VANITY_LEN {
            return Err(EthError::Malformed("vanity is not 32 bytes".into()));
        }
        Ok(BftExtra {
            family,
            vanity: parts[0].payload.to_vec(),
            validators: addresses(&parts[1])?,
            vote: vote(&parts[2], family)?,
            round: round(&parts[3], family)?,
            committed_seals: seals(&parts[4])?,
            proposer_seal: None,
            raw_vanity: parts[0].raw.to_vec(),
            raw_validators: parts[1].raw.to_vec(),
            raw_vote: parts[2].raw.to_vec(),
            raw_round: parts[3].raw.to_vec(),
            raw_proposer_seal: Vec::new(),
        })
    }

    fn decode_ibft1(extra: &[u8]) -> Result<Self> {
        if extra.len() < VANITY_LEN {
            return Err(EthError::Malformed(
                "IBFT 1.0 extraData shorter than its 32-byte vanity".into(),
            ));
        }
        let (vanity, mut buf) = extra.split_at(VANITY_LEN);
        let outer = next_item(&mut buf)?;
        if !buf.is_empty() || !outer.list {
            return Err(EthError::Malformed(
                "IBFT 1.0 extraData is not vanity ‖ one RLP list".into(),
            ));
        }
        let mut items = outer.payload;
        let validators = next_item(&mut items)?;
        let proposer = next_item(&mut items)?;
        let committed = next_item(&mut items)?;
        if !items.is_empty() || proposer.list {
            return Err(EthError::Malformed(
                "IBFT 1.0 extraData is not [validators, seal, seals]".into(),
            ));
        }
        let proposer_seal = if proposer.payload.is_empty() {
            None
        } else {
            Some(seal(proposer.payload)?)
        };
        Ok(BftExtra {
            family: BftFamily::Ibft1,
            vanity: vanity.to_vec(),
            validators: addresses(&validators)?,
            vote: None,
            round: 0,
            committed_seals: seals(&committed)?,
            proposer_seal,
            raw_vanity: vanity.to_vec(),
            raw_validators: validators.raw.to_vec(),
            raw_vote: Vec::new(),
            raw_round: Vec::new(),
            raw_proposer_seal: proposer.raw.to_vec(),
        })
    }

    fn ibft1_extra(&self, proposer_seal: &[u8]) -> Vec<u8> {
        let mut out = self.raw_vanity.clone();
        out.extend(wrap_list(&[&self.raw_validators, proposer_seal, &[EMPTY_LIST]]));
        out
    }

    /// The block hash under the family's rule: what the chain calls this block and what the child's
    /// `parentHash` must be.
    pub fn block_hash(&self, header: &Header) -> B256 {
        let extra = match self.family {
            BftFamily::Qbft => {
                let mut round0 = Vec::new();
                0u32.encode(&mut round0);
                wrap_list(&[
                    &self.raw_vanity,
                    &self.raw_validators,
                    &self.raw_vote,
                    &round0,
                    &[EMPTY_LIST],
                ])
            }
            BftFamily::Ibft2 => wrap_list(&[&self.raw_vanity, &self.raw_validators, &self.raw_vote]),
            BftFamily::Ibft1 => self.ibft1_extra(&self.raw_proposer_seal),
        };
        hash_with_extra(header, extra)
    }

    /// The 32-byte digest each committed seal is a signature of.
    pub fn committed_seal_digest(&self, header: &Header) -> B256 {
        match self.family {
            BftFamily::Qbft => hash_with_extra(
                header,
                wrap_list(&[
                    &self.raw_vanity,
                    &self.raw_validators,
                    &self.raw_vote,
                    &self.raw_round,
                    &[EMPTY_LIST],
                ]),
            ),
            BftFamily::Ibft2 => hash_with_extra(
                header,
                wrap_list(&[
                    &self.raw_vanity,
                    &self.raw_validators,
                    &self.raw_vote,
                    &self.raw_round,
                ]),
            ),
            BftFamily::Ibft1 => {
                let mut msg = self.block_hash(header).to_vec();
                msg.push(IBFT1_COMMIT_CODE);
                keccak256(msg)
            }
        }
    }

    /// The digest the proposer seal is a signature of (IBFT 1.0 only).
    pub fn proposer_seal_digest(&self, header: &Header) -> Option<B256> {
        (self.family == BftFamily::Ibft1)
            .then(|| keccak256(hash_with_extra(header, self.ibft1_extra(&[EMPTY_STRING]))))
    }
}

/// keccak(RLP(header)) with the header's extraData replaced.
fn hash_with_extra(header: &Header, extra: Vec<u8>) -> B256 {
    let mut h = header.clone();
    h.extra_data = extra.into();
    h.hash_slow()
}

/// Encode a QBFT or IBFT 2.0 extraData from its parts (used to build test chains and by tools that propose).
pub fn encode_bft_extra(
    family: BftFamily,
    vanity: &[u8; 32],
    validators: &[Address],
    vote: Option<Vote>,
    round: u32,
    seals: &[Seal],
) -> Result<Vec<u8>> {
    let mut v = Vec::new();
    vanity.as_slice().encode(&mut v);
    let mut vals = Vec::new();
    let vals_payload: Vec<u8> = validators
        .iter()
        .flat_map(|a| alloy_rlp::encode(a.as_slice()))
        .collect();
    alloy_rlp::Header {
        list: true,
        payload_length: vals_payload.len(),
    }
    .encode(&mut vals);
    vals.extend(vals_payload);
    let vote_raw = match (vote, family) {
        (None, BftFamily::Qbft) => vec![EMPTY_LIST],
        (None, BftFamily::Ibft2) => vec![EMPTY_STRING],
        (Some(vt), _) => {
            let mut recipient = Vec::new();
            vt.recipient.as_slice().encode(&mut recipient);
            let kind: &[u8] = if vt.add { &[0x81, 0xff] } else { &[0x00] };
            wrap_list(&[&recipient, kind])
        }
        (_, BftFamily::Ibft1) => {
            return Err(EthError::Malformed(
                "IBFT 1.0 extraData has another layout".into(),
            ))
        }
    };
    let mut round_raw = Vec::new();
    match family {
        BftFamily::Ibft2 => round.to_be_bytes().as_slice().encode(&mut round_raw),
        _ => round.encode(&mut round_raw),
    }
    let seals_payload: Vec<u8> = seals
        .iter()
        .flat_map(|s| alloy_rlp::encode(s.as_slice()))
        .collect();
    let mut seals_raw = Vec::new();
    alloy_rlp::Header {
        list: true,
        payload_length: seals_payload.len(),
    }
    .encode(&mut seals_raw);
    seals_raw.extend(seals_payload);
    Ok(wrap_list(&[&v, &vals, &vote_raw, &round_raw, &seals_raw]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_then_decode_round_trips() {
        let vals = [Address::repeat_byte(1), Address::repeat_byte(2)];
        let vote = Some(Vote {
            recipient: Address::repeat_byte(3),
            add: true,
        });
        for family in [BftFamily::Qbft, BftFamily::Ibft2] {
            let seals = [[7u8; SEAL_LEN]];
            let raw = encode_bft_extra(family, &[9; 32], &vals, vote, 258, &seals).expect("encodes");
            let extra = BftExtra::decode(family, &raw).expect("decodes");
            assert_eq!(extra.validators, vals);
            assert_eq!(extra.vote, vote);
            assert_eq!(extra.round, 258);
            assert_eq!(extra.committed_seals, seals);
        }
    }

    #[test]
    fn garbage_extra_is_malformed() {
        for family in [BftFamily::Qbft, BftFamily::Ibft2, BftFamily::Ibft1] {
            assert!(BftExtra::decode(family, &[]).is_err());
            assert!(BftExtra::decode(family, &[0xf8, 0xff, 0x00]).is_err());
        }
        assert!("pow".parse::<BftFamily>().is_err());
    }
}
