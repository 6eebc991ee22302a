#![allow(clippy::unwrap_used, clippy::expect_used)] // a failing test panics by design
//! The application end to end without a network: blocks built by one node are validated and committed by another,
//! every tampering is refused, a restart resumes at the tip, and a light client follows the headers.

use std::sync::Arc;

use causeway_chain::app::{App, AppOptions, BlockError, ValidateError};
use causeway_chain::message::{Amount, Denom, GovAction, Message};
use causeway_chain::testkit::{genesis, TestChain};
use causeway_light_client::client::LightClient;
use causeway_light_client::native::{HeaderUpdate, NativeClient, TrustOptions};
use causeway_light_client::{Block, Canonical, HashAlg, Namespace, SecretKey, Suite, Time, Validator};

fn follower(dir: &std::path::Path, g: &causeway_chain::genesis::Genesis) -> App {
    App::open(dir, g.clone(), vec![], AppOptions { sync: false, ..AppOptions::default() }).unwrap()
}

#[test]
fn a_second_node_validates_and_commits_what_the_first_builds() {
    let (mut g, keys) = genesis("alpha", 4, Suite::Ed25519, HashAlg::Sha256);
    let user = SecretKey::from_bytes(Suite::Sm2, &[7; 32]).unwrap();
    g.assets.push(causeway_chain::genesis::GenesisAsset {
        denom: Denom::new("cash").unwrap(),
        issuer: user.public_key().address(),
        balances: vec![(user.public_key().address(), Amount(1000))],
    });
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut chain = TestChain::open(d1.path(), g.clone(), keys, vec![]).unwrap();
    let mut other = follower(d2.path(), &g);
    for i in 0..5u128 {
        let tx = chain
            .sign(&user, vec![Message::Transfer { to: causeway_light_client::Address([i as u8; 20]), denom: Denom::new("cash").unwrap(), amount: Amount(i + 1) }])
            .unwrap();
        let committed = chain.produce(vec![tx]).unwrap();
        assert!(committed.results.txs[0].is_ok());
        let executed = other.validate_block(committed.block.clone(), None, &|_| None).unwrap();
        assert_eq!(executed.block_id(), committed.block_id);
        other.commit(executed, committed.certificate.clone()).unwrap();
        assert_eq!(other.store().latest_root(), chain.app().store().latest_root());
    }
    assert_eq!(other.height(), 5);
    let loc = other.tx_location(&chain.app().results(3).unwrap().unwrap().txs[0].hash).unwrap().unwrap();
    assert_eq!((loc.height, loc.index), (3, 0));
    // Restart: the tip, its certificate and the validators come back.
    drop(other);
    let other = follower(d2.path(), &g);
    assert_eq!(other.height(), 5);
    assert_eq!(other.last_block_id(), chain.app().last_block_id());
    assert_eq!(other.last_commit(), chain.app().last_commit());
}

#[test]
fn tampered_blocks_are_refused_and_change_nothing() {
    let (g, keys) = genesis("alpha", 4, Suite::Ed25519, HashAlg::Sha256);
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut chain = TestChain::open(d1.path(), g.clone(), keys, vec![]).unwrap();
    let mut other = follower(d2.path(), &g);
    let first = chain.produce(vec![]).unwrap();
    let executed = other.validate_block(first.block.clone(), None, &|_| None).unwrap();
    other.commit(executed, first.certificate).unwrap();
    let good = chain.produce(vec![]).unwrap();
    let root = other.store().latest_root();
    let check = |other: &mut App, b: Block, want: &str| {
        match other.validate_block(Arc::new(b), None, &|_| None) {
            Err(ValidateError::Invalid(e)) => assert!(format!("{e:?}").contains(want), "{want}: got {e:?}"),
            other => panic!("{want}: expected invalid, got {other:?}"),
        }
    };
    let mut b = (*good.block).clone();
    b.header.state_root = causeway_light_client::Hash([9; 32]);
    check(&mut other, b, "state_root");
    let mut b = (*good.block).clone();
    b.header.height = 3;
    check(&mut other, b, "WrongHeight");
    let mut b = (*good.block).clone();
    b.header.time = Time(0);
    check(&mut other, b, "TimeNotAfterParent");
    let mut b = (*good.block).clone();
    b.last_commit.as_mut().unwrap().signatures.truncate(2);
    b.header.last_commit_hash = b.last_commit.as_ref().unwrap().hash(HashAlg::Sha256);
    check(&mut other, b, "LastCommit");
    let mut b = (*good.block).clone();
    b.txs.push(vec![1, 2, 3]);
    check(&mut other, b, "tx_root");
    let mut b = (*good.block).clone();
    b.txs.push(vec![1, 2, 3]);
    b.header.tx_root = Block::tx_root(HashAlg::Sha256, &b.txs);
    check(&mut other, b, "Tx");
    let mut b = (*good.block).clone();
    b.header.time = Time(u64::MAX / 2);
    match other.validate_block(Arc::new(b), Some(Time::from_secs(1_700_000_100)), &|_| None) {
        Err(ValidateError::Invalid(BlockError::TimeInFuture { .. })) => {}
        r => panic!("future block accepted: {r:?}"),
    }
    assert_eq!(other.store().latest_root(), root);
    assert_eq!(other.height(), 1);
    let executed = other.validate_block(good.block.clone(), None, &|_| None).unwrap();
    let twice = other.validate_block(good.block.clone(), None, &|_| None).unwrap();
    other.commit(executed, good.certificate.clone()).unwrap();
    assert_eq!(other.height(), 2);
    // An execution made on height 1 cannot be committed on top of height 2.
    assert!(matches!(other.commit(twice, good.certificate.clone()), Err(causeway_chain::app::AppError::Stale { .. })));
    assert_eq!(other.height(), 2);
}

#[test]
fn a_light_client_follows_validator_changes_and_proves_state() {
    let (g, keys) = genesis("alpha", 4, Suite::Ed25519, HashAlg::Sm3);
    let dir = tempfile::tempdir().unwrap();
    let mut chain = TestChain::open(dir.path(), g, keys.clone(), vec![]).unwrap();
    let first = chain.produce(vec![]).unwrap();
    let mut client = NativeClient::new(TrustOptions::new(chain.chain_id().clone(), HashAlg::Sm3), &first.block.header, first.block.header.time).unwrap();
    // Governance replaces the set with three fresh SM2 validators.
    let fresh: Vec<SecretKey> = (0..3u8).map(|i| SecretKey::from_bytes(Suite::Sm2, &[40 + i; 32]).unwrap()).collect();
    for k in &fresh {
        chain.add_key(k.clone());
    }
    let action = GovAction::SetValidators { validators: fresh.iter().map(|k| Validator { pub_key: k.public_key(), power: 5 }).collect() };
    let mut txs = vec![chain.sign(&keys[0], vec![Message::Propose { action }]).unwrap()];
    for k in &keys[1..3] {
        txs.push(chain.sign(k, vec![Message::Vote { proposal: 0, approve: true }]).unwrap());
    }
    let decided = chain.produce(txs).unwrap();
    assert!(decided.results.txs.iter().all(|r| r.is_ok()), "{:?}", decided.results);
    for _ in 0..3 {
        chain.produce(vec![]).unwrap();
    }
    let h = chain.app().height();
    assert_eq!(chain.app().validators_at(h).unwrap().len(), 3);
    // Skip from height 1 straight to the tip: the trusted set (the old four) no longer signs, so the skip fails…
    let tip = chain.app().block(h).unwrap().unwrap();
    let update = |height: u64, trusted: u64| HeaderUpdate {
        header: chain.app().block(height).unwrap().unwrap().header,
        commit: chain.app().commit_at(height).unwrap().unwrap(),
        validators: chain.app().validators_at(height).unwrap(),
        trusted_height: trusted,
        trusted_validators: chain.app().validators_at(trusted + 1).unwrap(),
    };
    assert!(client.verify_header(update(h, 1), tip.header.time).is_err());
    // …but sequential steps through the change succeed.
    for height in 2..=h {
        client.verify_header(update(height, height - 1), tip.header.time).unwrap();
    }
    // And the client proves state at the tip: the proposal record of governance.
    let ns = Namespace::new("sys/gov").unwrap();
    let mut key = vec![b'p'];
    key.extend_from_slice(&0u64.to_be_bytes());
    let (value, proof) = chain.app().store().prove(h, &ns, &key).unwrap();
    let path = causeway_light_client::proof::StatePath::new(ns.clone(), key.clone()).encode();
    client.verify_membership(h, &path, value.as_ref().unwrap(), &proof).unwrap();
    assert!(client.verify_membership(h, &path, b"forged", &proof).is_err());
}

#[test]
fn a_store_of_another_genesis_is_refused() {
    let (g, _) = genesis("alpha", 4, Suite::Ed25519, HashAlg::Sha256);
    let (g2, _) = genesis("beta", 4, Suite::Ed25519, HashAlg::Sha256);
    let dir = tempfile::tempdir().unwrap();
    drop(follower(dir.path(), &g));
    assert!(App::open(dir.path(), g2, vec![], AppOptions::default()).is_err());
}
