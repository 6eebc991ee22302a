//! `verify eth-proof`, `verify besu-header` and `verify besu-chain`.

use causeway_adapters::ethereum::bft::{quorum, verify_bft_header, BftChainState};
use causeway_adapters::ethereum::parse::{
    decode_hex, genesis_from_json, header_from_json, header_from_text, headers_from_block_stream,
    validators_from_json,
};
use causeway_adapters::ethereum::proof::verify_account_proof;
use causeway_adapters::ethereum::{AccountProof, BftExtra, BftFamily};

use super::input::{bytes, in_file, text};
use super::Stop;
use crate::cli::{BesuChainArgs, BesuHeaderArgs, ConsensusArg, EthProofArgs};

fn family(c: ConsensusArg) -> BftFamily {
    match c {
        ConsensusArg::Qbft => BftFamily::Qbft,
        ConsensusArg::Ibft2 => BftFamily::Ibft2,
        ConsensusArg::Ibft => BftFamily::Ibft1,
    }
}

/// Verify every part of an eth_getProof response against the block's state root.
pub(crate) fn eth_proof(a: &EthProofArgs) -> Result<String, Stop> {
    let (header, claimed) = in_file(&a.block, header_from_json(&text(&a.block)?))?;
    let computed = match a.consensus {
        None => header.hash_slow(),
        Some(c) => in_file(&a.block, BftExtra::decode(family(c), &header.extra_data))?.block_hash(&header),
    };
    if let Some(claimed) = claimed.filter(|c| *c != computed) {
        return Err(Stop::Rejected(format!(
            "{}: the block's fields hash to {computed}, not to the hash {claimed} it claims",
            a.block.display()
        )));
    }
    let proof = in_file(&a.proof, AccountProof::from_json(&text(&a.proof)?))?;
    let v = verify_account_proof(header.state_root, &proof)?;
    let state = if v.exists {
        format!("exists (nonce {}, balance {})", proof.nonce, proof.balance)
    } else {
        "does not exist".to_string()
    };
    Ok(format!(
        "account {} {state}; {} storage slot(s) proven; against state root {} of block {} ({computed})",
        v.address,
        v.storage.len(),
        header.state_root,
        header.number
    ))
}

/// Verify one header's seals against the given validators.
pub(crate) fn besu_header(a: &BesuHeaderArgs) -> Result<String, Stop> {
    let fam = family(a.consensus);
    let (header, claimed) = in_file(&a.header, header_from_text(&text(&a.header)?))?;
    let mut validators = in_file(&a.validators, validators_from_json(&text(&a.validators)?))?;
    validators.sort();
    let v = verify_bft_header(fam, &header, &validators)?;
    if let Some(claimed) = claimed.filter(|c| *c != v.hash) {
        return Err(Stop::Rejected(format!(
            "the header's fields hash to {} under the {} rule, not to the hash {claimed} it claims",
            v.hash,
            fam.name()
        )));
    }
    if v.extra
        .validators
        .iter()
        .copied()
        .collect::<std::collections::BTreeSet<_>>()
        != validators.iter().copied().collect()
    {
        return Err(Stop::Rejected(format!(
            "the header lists validators {:?}, not the {} given",
            v.extra.validators,
            validators.len()
        )));
    }
    Ok(format!(
        "{} block {} ({}) sealed by {} of {} validators (quorum {}), proposer {}",
        fam.name(),
        v.number,
        v.hash,
        v.signers.len(),
        validators.len(),
        quorum(validators.len()),
        v.proposer
    ))
}

/// Verify a chain from its genesis, block by block.
pub(crate) fn besu_chain(a: &BesuChainArgs) -> Result<String, Stop> {
    let fam = family(a.consensus);
    let genesis = in_file(&a.genesis, genesis_from_json(&text(&a.genesis)?, fam))?;
    let raw = bytes(&a.blocks)?;
    // A block file is binary RLP; a text file of hex is accepted too.
    let raw = match std::str::from_utf8(&raw) {
        Ok(t) if !t.trim().is_empty() && t.trim().bytes().all(|b| b.is_ascii_hexdigit() || b == b'x') => {
            in_file(&a.blocks, decode_hex(t))?
        }
        _ => raw,
    };
    let headers = in_file(&a.blocks, headers_from_block_stream(&raw))?;
    let (first, rest) = headers
        .split_first()
        .ok_or_else(|| Stop::Malformed(format!("{} holds no block", a.blocks.display())))?;
    genesis
        .matches(first)
        .map_err(|e| Stop::Rejected(format!("block 0 is not the genesis file's: {e}")))?;
    let mut state = in_file(
        &a.genesis,
        BftChainState::from_trusted_header(fam, first, genesis.epoch_length),
    )?;
    for h in rest {
        state
            .advance(h)
            .map_err(|e| Stop::Rejected(format!("block {}: {e}", h.number)))?;
    }
    Ok(format!(
        "{} chain {} blocks 0..={} from its genesis; tip {}; {} validators",
        fam.name(),
        genesis.chain_id,
        state.number,
        state.hash,
        state.validators.len()
    ))
}
