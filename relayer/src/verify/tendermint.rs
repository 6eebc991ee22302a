//! `verify tendermint` and `verify ics23`.

use std::path::Path;
use std::time::Duration;

use causeway_adapters::tendermint::parse::{
    light_block_from_json, light_block_from_rpc, time_from_rfc3339, trusted_state_from_json,
};
use causeway_adapters::tendermint::verify::{verify_step, TrustedState};
use causeway_adapters::tendermint::{
    ics23, Ics23Proof, LightBlock, ProofConfig, SpecKind, TendermintOptions,
};
use causeway_light_client::TrustThreshold;

use super::input::{hex_arg, in_file, text};
use super::Stop;
use crate::cli::{Ics23Args, SpecArg, TendermintArgs};

/// A light block from a directory of CometBFT RPC responses.
fn read_rpc_dir(path: &Path) -> Result<LightBlock, Stop> {
    let part = |name: &str| text(&path.join(name));
    let (commit, vals, next) = (
        part("signed_header.json")?,
        part("validators.json")?,
        part("next_validators.json")?,
    );
    in_file(path, light_block_from_rpc(&commit, &vals, &next))
}

/// A light block from a LightBlock JSON file or a directory of CometBFT RPC responses.
fn read_light_block(path: &Path) -> Result<LightBlock, Stop> {
    if path.is_dir() {
        return read_rpc_dir(path);
    }
    in_file(path, light_block_from_json(&text(path)?))
}

/// The trusted state: a directory of RPC responses, or any JSON object with `signed_header` and
/// `next_validator_set` (a LightBlock, whose own `validator_set` is not needed to trust it).
fn read_trusted(path: &Path) -> Result<TrustedState, Stop> {
    if path.is_dir() {
        return in_file(path, TrustedState::from_light_block(&read_rpc_dir(path)?));
    }
    in_file(path, trusted_state_from_json(&text(path)?))
}

fn parse_threshold(s: &str) -> Result<TrustThreshold, Stop> {
    let bad = || Stop::Malformed(format!("--trust-threshold {s:?} is not N/D (e.g. 1/3)"));
    let (n, d) = s.split_once('/').ok_or_else(bad)?;
    let numerator = n.trim().parse().map_err(|_| bad())?;
    let denominator = d.trim().parse().map_err(|_| bad())?;
    Ok(TrustThreshold {
        numerator,
        denominator,
    })
}

/// Verify the untrusted light block from the trusted one.
pub(crate) fn light_block(a: &TendermintArgs) -> Result<String, Stop> {
    let now = time_from_rfc3339(&a.now).map_err(|e| Stop::Malformed(format!("--now: {e}")))?;
    let options = TendermintOptions {
        trust_threshold: parse_threshold(&a.trust_threshold)?,
        trusting_period: Duration::from_secs(a.trusting_period),
        clock_drift: Duration::from_secs(a.clock_drift),
        ..TendermintOptions::new(Duration::from_secs(a.trusting_period))
    };
    options.check().map_err(|e| Stop::Malformed(e.to_string()))?;
    let trusted = read_trusted(&a.trusted)?;
    let untrusted = read_light_block(&a.untrusted)?;
    verify_step(&trusted, &untrusted, &options, now)?;
    let h = &untrusted.signed_header.header;
    Ok(format!(
        "{} height {} (hash {}, app hash {}) from trusted height {}",
        h.chain_id,
        h.height,
        h.hash(),
        hex::encode_upper(h.app_hash.as_bytes()),
        trusted.height()
    ))
}

/// Verify an ICS-23 proof of membership (or, without a value, non-membership).
pub(crate) fn ics23(a: &Ics23Args) -> Result<String, Stop> {
    let root = hex_arg("root", &a.root)?;
    let key = hex_arg("key", &a.key)?;
    let value = a.value.as_deref().map(|v| hex_arg("value", v)).transpose()?;
    let proof = Ics23Proof::from_protobuf(&hex_arg("proof", &a.proof)?)?;
    let spec = match a.spec {
        SpecArg::Iavl => SpecKind::Iavl,
        SpecArg::Tendermint => SpecKind::Tendermint,
        SpecArg::Smt => SpecKind::Smt,
    };
    let config = ProofConfig::single(spec);
    match value {
        Some(v) => {
            ics23::verify_membership(&config, &root, &key, &v, &proof)?;
            Ok(format!(
                "key {} holds a {}-byte value under root {}",
                a.key,
                v.len(),
                a.root
            ))
        }
        None => {
            ics23::verify_non_membership(&config, &root, &key, &proof)?;
            Ok(format!("key {} is absent under root {}", a.key, a.root))
        }
    }
}
