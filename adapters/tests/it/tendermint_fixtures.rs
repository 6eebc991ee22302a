//! tendermint-rs model-based single-step cases and bisection cases.

use std::collections::BTreeMap;
use std::time::Duration;

use causeway_adapters::tendermint::parse::{light_block_from_json, time_from_rfc3339, trusted_state_from_json};
use causeway_adapters::tendermint::verify::cross_check;
use causeway_adapters::tendermint::{
    verify_skipping, verify_step, LightBlock, ProofConfig, TendermintClient, TendermintError, TendermintOptions,
    TrustedState,
};
use causeway_light_client::{LightClient, TrustThreshold};
use serde_json::Value;

use super::fixtures;

fn options(trusting_period_ns: &Value) -> TendermintOptions {
    let ns: u64 = trusting_period_ns.as_str().expect("trusting_period string").parse().expect("ns");
    TendermintOptions {
        trust_threshold: TrustThreshold::ONE_THIRD,
        trusting_period: Duration::from_nanos(ns),
        // tendermint-rs's own runner of these cases allows no clock drift
        clock_drift: Duration::ZERO,
    }
}

fn verdict_of(r: &Result<(), TendermintError>) -> &'static str {
    match r {
        Ok(()) => "SUCCESS",
        Err(TendermintError::NotEnoughTrust { .. }) => "NOT_ENOUGH_TRUST",
        Err(TendermintError::Malformed(m)) => panic!("fixture did not parse: {m}"),
        Err(_) => "INVALID",
    }
}

fn block(v: &Value) -> LightBlock {
    light_block_from_json(&v.to_string()).expect("light block parses")
}

/// Mutations that must turn a SUCCESS into a rejection: a flipped signature byte, a flipped header field byte.
fn tampered(input: &Value) -> Vec<(&'static str, Value)> {
    let mut out = Vec::new();
    let mut sig = input.clone();
    let s = sig["signed_header"]["commit"]["signatures"][0]["signature"].as_str().expect("signature").to_string();
    let first = if s.starts_with('A') { "B" } else { "A" };
    sig["signed_header"]["commit"]["signatures"][0]["signature"] = Value::String(format!("{first}{}", &s[1..]));
    out.push(("signature byte", sig));
    let mut hdr = input.clone();
    let h = hdr["signed_header"]["header"]["consensus_hash"].as_str().expect("consensus_hash").to_string();
    hdr["signed_header"]["header"]["consensus_hash"] = Value::String(fixtures::flip_hex(&h, 3).to_uppercase());
    out.push(("header field byte", hdr));
    let mut vals = input.clone();
    let p = vals["validator_set"]["validators"][0]["voting_power"].as_str().expect("power").to_string();
    let bumped = p.parse::<u64>().expect("power") + 1;
    vals["validator_set"]["validators"][0]["voting_power"] = Value::String(bumped.to_string());
    vals["validator_set"]["total_voting_power"] = Value::String("0".into());
    out.push(("validator power", vals));
    out
}

#[test]
fn single_step_verdicts_are_reproduced_and_tampering_is_rejected() {
    let Some(files) = fixtures::files("tendermint/single_step", "json") else { return };
    let mut steps = 0;
    let mut tamper_checks = 0;
    for path in files {
        let name = path.file_name().expect("name").to_string_lossy().to_string();
        let tc: Value = serde_json::from_str(&std::fs::read_to_string(&path).expect("read")).expect("json");
        let opts = options(&tc["initial"]["trusting_period"]);
        let mut trusted = trusted_state_from_json(&tc["initial"].to_string()).expect("initial trusted state");
        for (i, input) in tc["input"].as_array().expect("inputs").iter().enumerate() {
            let now = time_from_rfc3339(input["now"].as_str().expect("now")).expect("time");
            let untrusted = block(&input["block"]);
            let result = verify_step(&trusted, &untrusted, &opts, now);
            let expected = input["verdict"].as_str().expect("verdict");
            assert_eq!(verdict_of(&result), expected, "{name} step {i}: {result:?}");
            steps += 1;
            if expected == "SUCCESS" {
                for (what, bad) in tampered(&input["block"]) {
                    let r = light_block_from_json(&bad.to_string()).and_then(|b| verify_step(&trusted, &b, &opts, now));
                    assert!(r.is_err(), "{name} step {i}: a flipped {what} was still accepted");
                    tamper_checks += 1;
                }
                trusted = TrustedState::from_light_block(&untrusted).expect("verified block becomes trusted");
            }
        }
    }
    assert!(steps >= 16 && tamper_checks >= 24, "ran {steps} steps and {tamper_checks} tamper checks");
}

#[test]
fn light_client_follows_a_success_case_and_refuses_expired_trust() {
    let Some(text) = fixtures::text("tendermint/single_step/MC4_4_faulty_TestSuccess.json") else { return };
    let tc: Value = serde_json::from_str(&text).expect("json");
    let opts = options(&tc["initial"]["trusting_period"]);
    let initial = trusted_state_from_json(&tc["initial"].to_string()).expect("initial");
    let mut client = TendermintClient::new(initial, opts, ProofConfig::single(::ics23::iavl_spec())).expect("client");
    let mut last_now = None;
    for input in tc["input"].as_array().expect("inputs") {
        let now = time_from_rfc3339(input["now"].as_str().expect("now")).expect("time");
        let r = client.verify_header(block(&input["block"]), now);
        assert_eq!(r.is_ok(), input["verdict"] == "SUCCESS", "{r:?}");
        last_now = Some(now);
    }
    assert_eq!(client.latest_height(), 4);
    assert!(client.consensus_state(3).is_some());
    // Resubmitting a trusted header is idempotent.
    let again = block(&tc["input"][2]["block"]);
    let now = last_now.expect("ran inputs");
    assert!(client.verify_header(again, now).is_ok());
    // Far in the future the trusting period has passed.
    let late = now.plus(Duration::from_secs(100_000));
    assert_eq!(client.status(late), causeway_light_client::ClientStatus::Expired);
    let next = block(&tc["input"][2]["block"]);
    assert_eq!(client.verify_header(next, late), Err(TendermintError::Expired));
}

fn blocks_by_height(list: &Value) -> BTreeMap<u64, LightBlock> {
    list.as_array()
        .expect("lite_blocks")
        .iter()
        .map(|b| {
            let lb = block(b);
            (lb.height().value(), lb)
        })
        .collect()
}

#[test]
fn bisection_cases_end_in_the_expected_error() {
    let Some(files) = fixtures::files("tendermint/bisection", "json") else { return };
    for path in files {
        let name = path.file_name().expect("name").to_string_lossy().to_string();
        let tc: Value = serde_json::from_str(&std::fs::read_to_string(&path).expect("read")).expect("json");
        assert_eq!(tc["expected_output"], "error", "{name}: only error cases are recorded");
        let topts = &tc["trust_options"];
        let opts = TendermintOptions {
            trust_threshold: TrustThreshold {
                numerator: topts["trust_level"]["numerator"].as_str().expect("num").parse().expect("num"),
                denominator: topts["trust_level"]["denominator"].as_str().expect("den").parse().expect("den"),
            },
            trusting_period: Duration::from_nanos(topts["period"].as_str().expect("period").parse().expect("ns")),
            clock_drift: Duration::from_secs(10),
        };
        let primary = blocks_by_height(&tc["primary"]["lite_blocks"]);
        let witnesses: Vec<BTreeMap<u64, LightBlock>> = tc["witnesses"]
            .as_array()
            .expect("witnesses")
            .iter()
            .map(|w| blocks_by_height(&w["value"]["lite_blocks"]))
            .collect();
        let trusted_height: u64 = topts["height"].as_str().expect("height").parse().expect("height");
        let anchor = &primary[&trusted_height];
        let want_hash = topts["hash"].as_str().expect("hash");
        assert_eq!(anchor.signed_header.header.hash().to_string(), want_hash, "{name}: trusted hash");
        let trusted = TrustedState::from_light_block(anchor).expect("trusted");
        let target: u64 = tc["height_to_verify"].as_str().expect("target").parse().expect("target");
        let now = time_from_rfc3339(tc["now"].as_str().expect("now")).expect("now");

        let result = verify_skipping(&trusted, target, |h| primary.get(&h), &opts, now).and_then(|(verified, out)| {
            let seen: Vec<Option<&LightBlock>> = witnesses.iter().map(|w| w.get(&target)).collect();
            cross_check(&verified, &seen).map(|()| out)
        });
        let err = result.expect_err(&format!("{name}: expected an error"));
        assert!(!err.is_malformed(), "{name}: failed on parsing, not verification: {err}");
        let fitting = match name.as_str() {
            "conflicting_headers.json" | "malicious_validator_set.json" => {
                matches!(err, TendermintError::Conflict { .. } | TendermintError::Invalid(_))
            }
            "header_out_of_trusting_period.json" => matches!(&err, TendermintError::Invalid(m) if m.contains("trust")),
            "not_enough_commits.json" => matches!(err, TendermintError::Invalid(_)),
            _ => true,
        };
        assert!(fitting, "{name}: rejected for an unexpected reason: {err}");
    }
}

#[test]
fn bisection_reaches_a_target_when_trust_suffices() {
    // The not_enough_commits primary is valid up to height 5; skipping from 1 to 5 must succeed there.
    let Some(text) = fixtures::text("tendermint/bisection/not_enough_commits.json") else { return };
    let tc: Value = serde_json::from_str(&text).expect("json");
    let primary = blocks_by_height(&tc["primary"]["lite_blocks"]);
    let trusted = TrustedState::from_light_block(&primary[&1]).expect("trusted");
    let opts = TendermintOptions::new(Duration::from_secs(3 * 3600));
    let now = time_from_rfc3339("2019-11-02T15:30:00Z").expect("now");
    let (verified, outcome) = verify_skipping(&trusted, 5, |h| primary.get(&h), &opts, now).expect("verified");
    assert_eq!(verified.height().value(), 5);
    assert_eq!(outcome.trace.last(), Some(&5));
    // Without the intermediate blocks a missing pivot is reported, never guessed.
    let only_target = |h: u64| if h == 6 { primary.get(&h) } else { None };
    assert!(verify_skipping(&trusted, 6, only_target, &opts, now).is_err());
}
