//! Criterion benchmarks of each adapter's header and proof verification, over the recorded fixtures in
//! `../shared/fixtures` (skipped with a SKIP line when the folder is absent) plus one generated QBFT block.
//!
//! Run: `cargo bench -p causeway-adapters --bench adapters`.

#![allow(missing_docs)] // criterion_group! generates an undocumented function

use std::path::PathBuf;
use std::time::Duration;

use alloy_primitives::{keccak256, Address, Bytes, B256, U256};
use causeway_adapters::ethereum::bft::{verify_bft_header, BftChainState};
use causeway_adapters::ethereum::extra::{encode_bft_extra, BftExtra, BftFamily, Seal};
use causeway_adapters::ethereum::parse::{header_from_json, headers_from_block_stream};
use causeway_adapters::ethereum::proof::verify_account_proof;
use causeway_adapters::ethereum::{AccountProof, Header};
use causeway_adapters::tendermint::ics23::{verify_membership, verify_non_membership};
use causeway_adapters::tendermint::parse::{
    light_block_from_json, time_from_rfc3339, trusted_state_from_json,
};
use causeway_adapters::tendermint::{verify_step, Ics23Proof, ProofConfig, SpecKind, TendermintOptions};
use causeway_light_client::TrustThreshold;
use criterion::{black_box, criterion_group, criterion_main, Criterion};
use k256::ecdsa::SigningKey;
use serde_json::Value;

fn fixtures() -> Option<PathBuf> {
    let p = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/fixtures"));
    if p.is_dir() {
        Some(p)
    } else {
        eprintln!(
            "SKIP: fixtures folder {} is absent; fixture benchmarks not run",
            p.display()
        );
        None
    }
}

fn json(p: PathBuf) -> Value {
    serde_json::from_str(&std::fs::read_to_string(p).expect("read fixture")).expect("fixture JSON")
}

fn tendermint(c: &mut Criterion, fx: &std::path::Path) {
    // MC10_3_faulty_TestSuccess: 1 → 2 is sequential, 1 → 3 lacks trust; MC4_4: 1 → 3 skips with enough trust.
    let mut g = c.benchmark_group("tendermint");
    for (name, file, input) in [
        (
            "sequential 1->2 (10 validators)",
            "MC10_3_faulty_TestSuccess.json",
            1,
        ),
        ("skipping 1->3 (4 validators)", "MC4_4_faulty_TestSuccess.json", 1),
    ] {
        let tc = json(fx.join("tendermint/single_step").join(file));
        let trusted = trusted_state_from_json(&tc["initial"].to_string()).expect("trusted");
        let block = light_block_from_json(&tc["input"][input]["block"].to_string()).expect("block");
        let now = time_from_rfc3339(tc["input"][input]["now"].as_str().expect("now")).expect("now");
        let ns: u64 = tc["initial"]["trusting_period"]
            .as_str()
            .expect("period")
            .parse()
            .expect("ns");
        let opts = TendermintOptions {
            trust_threshold: TrustThreshold::ONE_THIRD,
            clock_drift: Duration::ZERO,
            ..TendermintOptions::new(Duration::from_nanos(ns))
        };
        verify_step(&trusted, &block, &opts, now).expect("fixture step verifies");
        let sigs = block
            .signed_header
            .commit
            .signatures
            .iter()
            .filter(|s| s.is_commit())
            .count();
        g.bench_function(format!("verify_step {name}, {sigs} signatures"), |b| {
            b.iter(|| verify_step(black_box(&trusted), black_box(&block), &opts, now))
        });
    }
    g.finish();

    let mut g = c.benchmark_group("ics23");
    for (name, file) in [
        ("iavl membership", "iavl_exist_middle.json"),
        ("iavl non-membership", "iavl_nonexist_middle.json"),
        ("smt membership", "smt_exist_middle.json"),
    ] {
        let v = json(fx.join("ics23").join(file));
        let hex = |k: &str| hex::decode(v[k].as_str().expect("field")).expect("hex");
        let (root, key, value) = (hex("root"), hex("key"), hex("value"));
        let proof = Ics23Proof::from_protobuf(&hex("proof")).expect("proof");
        let spec = SpecKind::by_name(file.split('_').next().expect("family")).expect("spec");
        let config = ProofConfig::single(spec);
        g.bench_function(name, |b| {
            b.iter(|| {
                if value.is_empty() {
                    verify_non_membership(&config, black_box(&root), &key, black_box(&proof))
                } else {
                    verify_membership(&config, black_box(&root), &key, &value, black_box(&proof))
                }
            })
        });
    }
    g.finish();
}

fn besu(c: &mut Criterion, fx: &std::path::Path) {
    let raw = std::fs::read(fx.join("ethereum/ibft/ibft.blocks")).expect("blocks");
    let headers = headers_from_block_stream(&raw).expect("blocks decode");
    let mut validators = BftExtra::decode(BftFamily::Ibft1, &headers[0].extra_data)
        .expect("extra")
        .validators;
    validators.sort();
    let mut g = c.benchmark_group("besu");
    let seals = BftExtra::decode(BftFamily::Ibft1, &headers[50].extra_data)
        .expect("extra")
        .committed_seals
        .len();
    g.bench_function(
        format!("ibft1 header (5 validators, {seals} committed + 1 proposer seal)"),
        |b| b.iter(|| verify_bft_header(BftFamily::Ibft1, black_box(&headers[50]), &validators)),
    );
    g.sample_size(10);
    g.bench_function("ibft1 chain of 100 blocks from genesis", |b| {
        b.iter(|| {
            let mut state =
                BftChainState::from_trusted_header(BftFamily::Ibft1, &headers[0], 1000).expect("genesis");
            for h in &headers[1..] {
                state.advance(black_box(h)).expect("block");
            }
            state
        })
    });
    g.finish();

    let io = |name: &str| -> String {
        let text = std::fs::read_to_string(fx.join("ethereum/getproof").join(name)).expect("io");
        text.lines()
            .find_map(|l| l.strip_prefix("<< "))
            .expect("response")
            .to_string()
    };
    let (block, _) = header_from_json(&io("get-latest.io")).expect("block");
    let proof = AccountProof::from_json(&io("get-account-proof-with-storage.io")).expect("proof");
    let mut g = c.benchmark_group("eth_proof");
    g.bench_function("account + 1 storage slot (eth_getProof)", |b| {
        b.iter(|| verify_account_proof(black_box(block.state_root), black_box(&proof)))
    });
    g.finish();
}

/// One QBFT block sealed by `n` generated validators.
fn qbft_block(n: u8) -> (Header, Vec<Address>) {
    let keys: Vec<SigningKey> = (1..=n)
        .map(|i| SigningKey::from_slice(&keccak256([i]).0).expect("key"))
        .collect();
    let mut validators: Vec<Address> = keys
        .iter()
        .map(|k| {
            Address::from_slice(&keccak256(&k.verifying_key().to_encoded_point(false).as_bytes()[1..])[12..])
        })
        .collect();
    validators.sort();
    let extra = encode_bft_extra(BftFamily::Qbft, &[0; 32], &validators, None, 0, &[]).expect("extra");
    let mut header = Header {
        number: 7,
        beneficiary: validators[0],
        difficulty: U256::from(1),
        gas_limit: 30_000_000,
        timestamp: 1_700_000_000,
        state_root: B256::repeat_byte(1),
        extra_data: Bytes::from(extra),
        ..Header::default()
    };
    let digest = BftExtra::decode(BftFamily::Qbft, &header.extra_data)
        .expect("extra")
        .committed_seal_digest(&header);
    let seals: Vec<Seal> = keys
        .iter()
        .map(|k| {
            let (sig, recid) = k.sign_prehash_recoverable(digest.as_slice()).expect("sign");
            let mut s = [0u8; 65];
            s[..64].copy_from_slice(&sig.to_bytes());
            s[64] = recid.to_byte();
            s
        })
        .collect();
    header.extra_data = Bytes::from(
        encode_bft_extra(BftFamily::Qbft, &[0; 32], &validators, None, 0, &seals).expect("extra"),
    );
    (header, validators)
}

fn generated(c: &mut Criterion) {
    let mut g = c.benchmark_group("besu");
    for n in [4u8, 16] {
        let (header, validators) = qbft_block(n);
        verify_bft_header(BftFamily::Qbft, &header, &validators).expect("generated block verifies");
        g.bench_function(format!("qbft header ({n} validators, {n} seals)"), |b| {
            b.iter(|| verify_bft_header(BftFamily::Qbft, black_box(&header), &validators))
        });
    }
    g.finish();
}

fn all(c: &mut Criterion) {
    generated(c);
    if let Some(fx) = fixtures() {
        tendermint(c, &fx);
        besu(c, &fx);
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));
    targets = all
}
criterion_main!(benches);
