//! Generated Tendermint chains (real ed25519 signatures, from tendermint-testgen): forks and BFT-time violations
//! freeze the client, and ICS-23 proofs are checked through it against a verified app hash.

use std::time::Duration;

use causeway_adapters::source::{HeaderSource, RecordedTendermint, SourceError};
use causeway_adapters::tendermint::{
    Ics23Proof, LightBlock, ProofConfig, SpecKind, TendermintClient, TendermintError, TendermintHeader,
    TendermintMisbehaviour, TendermintOptions,
};
use causeway_light_client::{Canonical, ClientStatus, LightClient, Time};
use serde_json::Value;
use tendermint::AppHash;
use tendermint_testgen::{Generator, LightBlock as TestBlock};

use super::fixtures;

fn light_block(t: &TestBlock) -> LightBlock {
    let g = t.generate().expect("testgen block");
    LightBlock::new(g.signed_header, g.validators, g.next_validators, g.provider)
}

/// The same block as `t` but committing to another app hash, signed by the same validators.
fn fork_of(t: &TestBlock, app_hash: Vec<u8>) -> TestBlock {
    let header = t
        .header
        .clone()
        .expect("header")
        .app_hash(AppHash::try_from(app_hash).expect("app hash"));
    TestBlock::new_default_with_header(header)
}

fn options() -> TendermintOptions {
    TendermintOptions::new(Duration::from_secs(24 * 3600))
}

const NOW: Time = Time(100_000_000_000); // 100 s after the epoch; testgen blocks have time = height seconds

fn chain() -> (Vec<TestBlock>, TendermintClient) {
    let b1 = TestBlock::new_default(1);
    let b2 = b1.next();
    let b3 = b2.next();
    let client = TendermintClient::new(&light_block(&b1), options(), ProofConfig::single(SpecKind::Iavl))
        .expect("client");
    (vec![b1, b2, b3], client)
}

fn update(block: &TestBlock, from: &TestBlock) -> TendermintHeader {
    TendermintHeader::new(light_block(block), &light_block(from))
}

#[test]
fn sequential_and_skipping_updates_verify() {
    let (b, mut client) = chain();
    client.verify_header(update(&b[1], &b[0]), NOW).expect("2 from 1");
    client
        .verify_header(update(&b[2], &b[0]), NOW)
        .expect("3 from 1, skipping");
    assert_eq!(client.latest_height(), 3);
    // Encoded and decoded, the client is the same and keeps working.
    let mut again = TendermintClient::decode(&client.encode()).expect("binary");
    assert_eq!(again, client);
    let b4 = b[2].next();
    again.verify_header(update(&b4, &b[2]), NOW).expect("4 from 3");
    // Damaged encodings are errors, never panics.
    let bytes = client.encode();
    assert!(TendermintClient::decode(&bytes[..bytes.len() / 2]).is_err());
    assert!(TendermintClient::decode(&[bytes.as_slice(), &[0]].concat()).is_err());
    assert!(TendermintClient::decode(&[]).is_err());
}

#[test]
fn two_validly_signed_blocks_at_one_height_freeze_the_client() {
    let (b, mut client) = chain();
    let fork3 = fork_of(&b[2], vec![9; 32]);
    let honest = update(&b[2], &b[0]);
    let forked = update(&fork3, &b[0]);
    assert_ne!(
        honest.light_block.signed_header.header.hash(),
        forked.light_block.signed_header.header.hash()
    );

    // Identical headers are no evidence; headers at different heights are malformed evidence.
    let same = TendermintMisbehaviour {
        header1: honest.clone(),
        header2: honest.clone(),
    };
    assert_eq!(client.clone().check_misbehaviour(same, NOW), Ok(false));
    let apart = TendermintMisbehaviour {
        header1: honest.clone(),
        header2: update(&b[1], &b[0]),
    };
    assert!(client.clone().check_misbehaviour(apart, NOW).is_err());
    // A fork whose commit is tampered with is not evidence.
    let mut unsigned = forked.clone();
    unsigned.light_block.signed_header.commit.signatures.truncate(1);
    let weak = TendermintMisbehaviour {
        header1: honest.clone(),
        header2: unsigned,
    };
    assert!(client.clone().check_misbehaviour(weak, NOW).is_err());

    // Real evidence, after a trip through the binary encoding, freezes the client.
    let evidence = TendermintMisbehaviour {
        header1: honest.clone(),
        header2: forked.clone(),
    };
    let evidence = TendermintMisbehaviour::decode(&evidence.encode()).expect("evidence round trip");
    let mut frozen = client.clone();
    assert_eq!(frozen.check_misbehaviour(evidence, NOW), Ok(true));
    assert_eq!(frozen.status(NOW), ClientStatus::Frozen);
    assert_eq!(
        frozen.verify_header(update(&b[1], &b[0]), NOW),
        Err(TendermintError::Frozen)
    );

    // Submitting the fork as an update after the honest block freezes the client the same way.
    client.verify_header(honest, NOW).expect("honest 3");
    assert_eq!(
        client.verify_header(forked, NOW),
        Err(TendermintError::Misbehaviour(3))
    );
    assert!(client.is_frozen());
}

#[test]
fn a_block_out_of_time_order_with_a_trusted_one_freezes_the_client() {
    let (b, mut client) = chain();
    client.verify_header(update(&b[2], &b[0]), NOW).expect("3 from 1");
    // Block 2 signed with a time after block 3's: valid on its own, impossible in BFT time.
    let late2 = b[1]
        .header
        .clone()
        .expect("header")
        .time(tendermint::Time::from_unix_timestamp(50, 0).expect("t"));
    let late2 = TestBlock::new_default_with_header(late2);
    assert_eq!(
        client.verify_header(update(&late2, &b[0]), NOW),
        Err(TendermintError::TimeMisbehaviour(2))
    );
    assert_eq!(client.status(NOW), ClientStatus::Frozen);
}

/// Run a future that is ready at once (recorded sources never wait).
pub fn ready<F: std::future::Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    match f
        .as_mut()
        .poll(&mut std::task::Context::from_waker(std::task::Waker::noop()))
    {
        std::task::Poll::Ready(v) => v,
        std::task::Poll::Pending => panic!("a recorded source kept the caller waiting"),
    }
}

#[test]
fn a_relayer_loop_over_a_recorded_source_moves_the_client() {
    let (b, mut client) = chain();
    let b4 = b[2].next();
    let source = RecordedTendermint::new([&b[0], &b[1], &b[2], &b4].map(light_block));
    let target = ready(source.latest_height()).expect("latest");
    assert_eq!(target, 4);
    // Skip straight to the tip from the trusted height, as a relayer would first try.
    let update = ready(source.update(target, client.latest_height())).expect("update");
    client.verify_header(update, NOW).expect("4 from 1");
    assert_eq!(client.latest_height(), 4);
    assert_eq!(
        ready(source.update(9, 4)).map(|_| ()),
        Err(SourceError::Missing(9))
    );
    assert_eq!(
        ready(RecordedTendermint::default().latest_height()),
        Err(SourceError::Empty)
    );
}

#[test]
fn proofs_are_checked_against_a_verified_app_hash() {
    let Some(text) = fixtures::text("ics23/iavl_exist_left.json") else {
        return;
    };
    let v: Value = serde_json::from_str(&text).expect("json");
    let hex = |k: &str| hex::decode(v[k].as_str().expect("field")).expect("hex");
    let (root, key, value) = (hex("root"), hex("key"), hex("value"));
    let proof = Ics23Proof::from_protobuf(&hex("proof")).expect("proof");

    // A chain whose block 2 commits to the fixture's root as its app hash.
    let b1 = TestBlock::new_default(1);
    let b2 = fork_of(&b1.next(), root.clone());
    let mut client = TendermintClient::new(&light_block(&b1), options(), ProofConfig::single(SpecKind::Iavl))
        .expect("client");
    assert_eq!(
        client.verify_membership(2, &key, &value, &proof),
        Err(TendermintError::UnknownHeight(2))
    );
    client.verify_header(update(&b2, &b1), NOW).expect("2 from 1");
    client
        .verify_membership(2, &key, &value, &proof)
        .expect("membership at a verified height");
    let mut wrong = value.clone();
    wrong[0] ^= 1;
    assert!(client.verify_membership(2, &key, &wrong, &proof).is_err());
    assert!(
        client.verify_non_membership(2, &key, &proof).is_err(),
        "an existence proof proves no absence"
    );
    assert!(
        client.verify_membership(1, &key, &value, &proof).is_err(),
        "height 1 has another app hash"
    );
    // The proof survives JSON and binary encodings.
    let json = serde_json::to_string(&proof).expect("json");
    assert_eq!(
        serde_json::from_str::<Ics23Proof>(&json).expect("from json"),
        proof
    );
    assert_eq!(
        <Ics23Proof as Canonical>::decode(&proof.encode()).expect("binary"),
        proof
    );
}
