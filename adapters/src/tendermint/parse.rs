//! Reading Tendermint data as nodes and tools serve it: tendermint-rs `LightBlock` JSON (`signed_header`,
//! `validator_set`, `next_validator_set`, `provider`) and raw CometBFT RPC `/commit` and `/validators` responses
//! (or their `result` objects). Everything here takes strings; nothing reads files.

use causeway_light_client::Time;
use serde::Deserialize;
use serde_json::Value;
use tendermint::block::signed_header::SignedHeader;
use tendermint::validator::{Info, Set as ValidatorSet};
use tendermint::{account, node};
use tendermint_light_client_verifier::types::LightBlock;

use super::verify::TrustedState;
use super::{from_tm_time, Result, TendermintError};

fn malformed(what: &str, e: impl std::fmt::Display) -> TendermintError {
    TendermintError::Malformed(format!("{what}: {e}"))
}

/// Parse a tendermint-rs `LightBlock` JSON document. Every validator address must be derived from its key.
pub fn light_block_from_json(json: &str) -> Result<LightBlock> {
    let block: LightBlock = serde_json::from_str(json).map_err(|e| malformed("light block JSON", e))?;
    check_validator_set(&block.validators, "validator_set")?;
    check_validator_set(&block.next_validators, "next_validator_set")?;
    Ok(block)
}

/// Refuse a validator set with an address that is not derived from its public key. (The set's hash covers keys
/// and powers only, so a relabelled address would otherwise go unnoticed.)
pub fn check_validator_set(set: &ValidatorSet, what: &str) -> Result<()> {
    for v in set.validators() {
        if account::Id::from(v.pub_key) != v.address {
            return Err(TendermintError::Malformed(format!(
                "{what}: validator address {} does not match its key",
                v.address
            )));
        }
    }
    Ok(())
}

#[derive(Deserialize)]
struct TrustedJson {
    signed_header: SignedHeader,
    next_validator_set: ValidatorSet,
}

/// Parse a trusted state from any JSON object holding `signed_header` and `next_validator_set` (a `LightBlock`, or
/// the `initial` object of tendermint-rs's model-based tests).
pub fn trusted_state_from_json(json: &str) -> Result<TrustedState> {
    let t: TrustedJson = serde_json::from_str(json).map_err(|e| malformed("trusted light block JSON", e))?;
    check_validator_set(&t.next_validator_set, "trusted next validator set")?;
    TrustedState::new(&t.signed_header, t.next_validator_set)
}

/// The `result` object of a JSON-RPC response, or the object itself when it is already a result.
fn rpc_result(json: &str, what: &str) -> Result<Value> {
    let mut v: Value = serde_json::from_str(json).map_err(|e| malformed(what, e))?;
    if let Some(err) = v.get("error") {
        return Err(TendermintError::Malformed(format!(
            "{what}: the node answered with an error: {err}"
        )));
    }
    Ok(match v.get_mut("result") {
        Some(r) => r.take(),
        None => v,
    })
}

/// Parse a CometBFT RPC `/commit` response (or its `result`): the signed header of one height.
pub fn signed_header_from_rpc(json: &str) -> Result<SignedHeader> {
    let mut result = rpc_result(json, "/commit response")?;
    let sh = result
        .get_mut("signed_header")
        .map(Value::take)
        .ok_or_else(|| TendermintError::Malformed("/commit response has no signed_header".into()))?;
    serde_json::from_value(sh).map_err(|e| malformed("/commit signed_header", e))
}

/// Parse a CometBFT RPC `/validators` response (or its `result`) into a validator set. The response must hold the
/// whole set (all pages), and every address must be derived from its public key.
pub fn validator_set_from_rpc(json: &str) -> Result<ValidatorSet> {
    let mut result = rpc_result(json, "/validators response")?;
    let list = result
        .get_mut("validators")
        .map(Value::take)
        .ok_or_else(|| TendermintError::Malformed("/validators response has no validators".into()))?;
    let validators: Vec<Info> = serde_json::from_value(list).map_err(|e| malformed("/validators list", e))?;
    if let Some(total) = result.get("total").and_then(Value::as_str) {
        let total: usize = total.parse().map_err(|e| malformed("/validators total", e))?;
        if total != validators.len() {
            return Err(TendermintError::Malformed(format!(
                "/validators holds {} of {total} validators: fetch every page",
                validators.len()
            )));
        }
    }
    if validators.is_empty() {
        return Err(TendermintError::Malformed(
            "/validators holds no validator".into(),
        ));
    }
    let mut power: u64 = 0;
    for v in &validators {
        if account::Id::from(v.pub_key) != v.address {
            return Err(TendermintError::Malformed(format!(
                "validator address {} does not match its key",
                v.address
            )));
        }
        power = power.saturating_add(v.power.value());
    }
    if power > ValidatorSet::MAX_TOTAL_VOTING_POWER {
        return Err(TendermintError::Malformed("total voting power overflows".into()));
    }
    Ok(ValidatorSet::without_proposer(validators))
}

/// Assemble a light block from the three RPC responses for height H: `/commit?height=H`, `/validators?height=H`
/// and `/validators?height=H+1`. The provider is unknown for offline files and left as the zero node id.
pub fn light_block_from_rpc(commit: &str, validators: &str, next_validators: &str) -> Result<LightBlock> {
    let signed_header = signed_header_from_rpc(commit)?;
    let validators = validator_set_from_rpc(validators)?;
    let next_validators = validator_set_from_rpc(next_validators)?;
    Ok(LightBlock::new(
        signed_header,
        validators,
        next_validators,
        node::Id::new([0; 20]),
    ))
}

/// Parse an RFC 3339 time (e.g. `2024-05-01T12:00:00Z`).
pub fn time_from_rfc3339(s: &str) -> Result<Time> {
    let t = tendermint::Time::parse_from_rfc3339(s).map_err(|e| malformed("RFC 3339 time", e))?;
    from_tm_time(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_garbage_and_errors() {
        assert!(light_block_from_json("{").is_err_and(|e| e.is_malformed()));
        assert!(signed_header_from_rpc(r#"{"jsonrpc":"2.0","id":1,"error":{"code":-32603}}"#).is_err());
        assert!(validator_set_from_rpc(r#"{"result":{"validators":[],"total":"0"}}"#).is_err());
        assert!(time_from_rfc3339("yesterday").is_err());
    }

    #[test]
    fn parses_rfc3339() {
        assert_eq!(
            time_from_rfc3339("1970-01-01T00:00:02.5Z").ok(),
            Some(Time(2_500_000_000))
        );
    }
}
