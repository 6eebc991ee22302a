//! Tests of the native client over generated chains ([`crate::testgen`]): every path, every rejection (with the
//! client unchanged), misbehaviour and recovery, proofs, memory bounds, encodings, and property tests that corrupt
//! valid chains.

use std::time::Duration;

use proptest::prelude::*;

use super::*;
use crate::crypto::Suite;
use crate::testgen::{corrupt, ChainBuilder, Corruption, HeaderField, Signers, TestChain, TestState};
use crate::types::Namespace;

fn chain(n: usize, last: u64) -> TestChain {
    ChainBuilder::new("alpha", Signers::equal(Suite::Ed25519, n, 1)).build(last)
}

fn ns(s: &str) -> Namespace {
    Namespace::new(s).unwrap()
}

/// Apply `update` and require it to fail with `expected`, leaving the client exactly as it was.
fn rejects(client: &mut NativeClient, update: HeaderUpdate, now: Time, expected: NativeError) {
    let before = client.clone();
    assert_eq!(client.verify_header(update, now), Err(expected));
    assert_eq!(*client, before, "a rejected update changed the client");
}

fn commit_error(client: &mut NativeClient, update: HeaderUpdate, now: Time) -> CommitError {
    let before = client.clone();
    let err = client.verify_header(update, now).unwrap_err();
    assert_eq!(*client, before);
    match err {
        NativeError::Commit(e) => e,
        other => panic!("expected a commit error, got {other:?}"),
    }
}

#[test]
fn sequential_and_skipping_updates_are_recorded() {
    let c = chain(4, 20);
    let mut client = c.client(1, c.options());
    let out = client.verify_header(c.update(1, 2), c.now_after(2)).unwrap();
    assert_eq!(out.height, 2);
    assert_eq!(out.consensus_state.root, c.block(2).header.state_root.0.to_vec());
    let out = client.verify_header(c.update(2, 20), c.now_after(20)).unwrap();
    assert_eq!(
        out.consensus_state.next_validators_hash,
        c.block(20).header.next_validators_hash.0.to_vec()
    );
    assert_eq!(client.latest_height(), 20);
    assert_eq!(client.consensus_state(20).unwrap().time, c.block(20).header.time);
    assert_eq!(
        client
            .trusted_heights()
            .iter()
            .map(|t| t.height)
            .collect::<Vec<_>>(),
        vec![1, 2, 20]
    );
    // Re-submitting a trusted header is accepted and changes nothing.
    let before = client.clone();
    assert_eq!(
        client
            .verify_header(c.update(1, 2), c.now_after(20))
            .unwrap()
            .height,
        2
    );
    assert_eq!(client, before);
}

#[test]
fn every_suite_and_hash_function_verifies() {
    for suite in Suite::ALL {
        for alg in [HashAlg::Sha256, HashAlg::Sm3] {
            let c = ChainBuilder::new("beta", Signers::equal(suite, 4, 2))
                .hash_alg(alg)
                .build(6);
            let mut client = c.client(1, c.options());
            client.verify_header(c.update(1, 2), c.now_after(6)).unwrap();
            client.verify_header(c.update(2, 6), c.now_after(6)).unwrap();
            let (value, proof) = c.prove(6, &ns("testgen"), b"height");
            let path = StatePath::new(ns("testgen"), b"height".to_vec()).encode();
            client
                .verify_membership(6, &path, &value.unwrap(), &proof)
                .unwrap();
        }
    }
}

#[test]
fn wrong_chain_id() {
    let c = chain(4, 3);
    let mut client = c.client(1, c.options());
    let update = corrupt(&c, &c.update(1, 2), Corruption::OtherChain);
    let expected = NativeError::ChainIdMismatch {
        expected: c.chain_id().clone(),
        got: ChainId::new("other-chain").unwrap(),
    };
    rejects(&mut client, update, c.now_after(2), expected);
}

#[test]
fn commit_must_be_for_this_header() {
    let c = chain(4, 3);
    let mut client = c.client(1, c.options());
    let good = c.update(1, 2);
    let mut other_height = good.clone();
    other_height.commit.height = 3;
    rejects(
        &mut client,
        other_height,
        c.now_after(2),
        NativeError::CommitHeightMismatch { header: 2, commit: 3 },
    );
    for field in HeaderField::ALL {
        let bad = corrupt(&c, &good, Corruption::Field(field));
        let header_hash = bad.header.hash(HashAlg::Sha256);
        let expected = NativeError::CommitBlockMismatch {
            header_hash,
            block_id: good.commit.block_id,
        };
        rejects(&mut client, bad, c.now_after(2), expected);
    }
}

#[test]
fn trusted_height_must_be_kept_and_below() {
    let c = chain(4, 6);
    let mut client = c.client(3, c.options());
    rejects(
        &mut client,
        c.update(2, 4),
        c.now_after(4),
        NativeError::UnknownTrustedHeight { height: 2 },
    );
    // Building "down" from the trusted height 3 to height 2.
    let mut down = c.update(2, 2);
    down.trusted_height = 3;
    down.trusted_validators = c.block(3).next_validators.clone();
    rejects(
        &mut client,
        down,
        c.now_after(4),
        NativeError::NonIncreasingHeight {
            height: 2,
            trusted_height: 3,
        },
    );
}

#[test]
fn trusted_state_outside_the_trusting_period() {
    let c = chain(4, 3);
    let mut options = c.options();
    options.trusting_period_secs = 100;
    let mut client = c.client(1, options);
    let expires_at = c.time(1).plus(Duration::from_secs(100));
    let expected = NativeError::TrustedStateExpired {
        trusted_time: c.time(1),
        expires_at,
        now: expires_at,
    };
    rejects(&mut client, c.update(1, 2), expires_at, expected);
    assert_eq!(client.status(expires_at), ClientStatus::Expired);
    assert_eq!(client.status(Time(expires_at.0 - 1)), ClientStatus::Active);
    client
        .verify_header(c.update(1, 2), Time(expires_at.0 - 1))
        .unwrap();
}

#[test]
fn headers_from_the_future() {
    let c = ChainBuilder::new("alpha", Signers::equal(Suite::Ed25519, 4, 1))
        .block_secs(60)
        .build(3);
    let mut client = c.client(1, c.options());
    // Height 2 is 60 s after height 1; 10 s of drift are allowed.
    let now = Time(c.time(2).0 - Duration::from_secs(10).as_nanos() as u64);
    let expected = NativeError::HeaderFromFuture {
        time: c.time(2),
        now,
        max_clock_drift_secs: 10,
    };
    rejects(&mut client, c.update(1, 2), now, expected);
    client.verify_header(c.update(1, 2), Time(now.0 + 1)).unwrap();
}

#[test]
fn time_must_increase() {
    let c = chain(4, 3);
    let mut client = c.client(1, c.options());
    let same_time = c.resigned(&c.update(1, 2), c.signers(2), |h| h.time = c.time(1));
    let expected = NativeError::NonMonotonicTime {
        time: c.time(1),
        trusted_time: c.time(1),
    };
    rejects(&mut client, same_time, c.now_after(2), expected);
}

#[test]
fn validator_sets_must_match_the_commitments() {
    let c = chain(4, 5);
    let mut client = c.client(1, c.options());
    let good = c.update(1, 3);
    let bad = corrupt(&c, &good, Corruption::OtherValidatorSet { seed: 9 });
    let expected = NativeError::ValidatorSetMismatch {
        header: good.header.validators_hash,
        supplied: bad.validators.hash(HashAlg::Sha256),
    };
    rejects(&mut client, bad, c.now_after(3), expected);
    let bad = corrupt(&c, &good, Corruption::OtherTrustedValidatorSet { seed: 9 });
    let expected = NativeError::TrustedValidatorSetMismatch {
        trusted: c.block(1).header.next_validators_hash,
        supplied: bad.trusted_validators.hash(HashAlg::Sha256),
    };
    rejects(&mut client, bad, c.now_after(3), expected);
}

#[test]
fn adjacent_header_must_be_signed_by_the_announced_set() {
    // Height 1 announces set A for height 2; a header at 2 naming (and signed by) set B is refused even though B
    // signed it fully, because sequential verification trusts only the announced set.
    let c = chain(4, 3);
    let mut client = c.client(1, c.options());
    let b = Signers::equal(Suite::Ed25519, 4, 77);
    let mut update = c.resigned(&c.update(1, 2), &b, |h| {
        h.validators_hash = b.set().hash(HashAlg::Sha256)
    });
    update.validators = b.set().clone();
    let expected = NativeError::NotTrustedNextSet {
        expected: c.block(1).header.next_validators_hash,
        got: b.set().hash(HashAlg::Sha256),
    };
    rejects(&mut client, update, c.now_after(2), expected);
}

#[test]
fn commit_power_and_signatures() {
    let c = chain(4, 5);
    let mut client = c.client(1, c.options());
    let now = c.now_after(5);
    let table = [
        // 2 of 4 equal validators is not more than 2/3.
        (
            Corruption::KeepSigners { keep: 2 },
            CommitError::InsufficientPower {
                signed: 20,
                total: 40,
            },
        ),
        (
            Corruption::FlipSignatureByte {
                signature: 0,
                byte: 3,
            },
            CommitError::BadSignature { index: 0 },
        ),
        (Corruption::OtherRound, CommitError::BadSignature { index: 0 }),
        (Corruption::SwapSignatures, CommitError::Unordered { position: 1 }),
        (
            Corruption::DuplicateSignature,
            CommitError::Unordered { position: 1 },
        ),
        (
            Corruption::IndexOutsideSet,
            CommitError::UnknownValidator { index: 4, len: 4 },
        ),
    ];
    // Sequentially and by skipping.
    for (trusted, height) in [(1, 2), (1, 5)] {
        for (corruption, expected) in &table {
            let bad = corrupt(&c, &c.update(trusted, height), *corruption);
            assert_eq!(
                commit_error(&mut client, bad, now),
                *expected,
                "{corruption:?} at {height}"
            );
        }
    }
    // Three of four suffice; the fourth, surplus signature is not checked (documented in `commit`).
    let three = corrupt(&c, &c.update(1, 2), Corruption::KeepSigners { keep: 3 });
    client.verify_header(three, now).unwrap();
    let surplus_flipped = corrupt(
        &c,
        &c.update(2, 3),
        Corruption::FlipSignatureByte {
            signature: 3,
            byte: 3,
        },
    );
    client.verify_header(surplus_flipped, now).unwrap();
}

/// A chain whose set changes at height 6: `dropped` of the 6 original validators leave, as many new ones join.
fn rotating_chain(dropped: usize) -> TestChain {
    let a = Signers::equal(Suite::Ed25519, 6, 10);
    let leaving: Vec<usize> = (0..dropped).collect();
    let b = a.rotate(&leaving, dropped, 11);
    ChainBuilder::new("alpha", a).validators_from(6, b).build(10)
}

#[test]
fn skipping_across_a_validator_set_change_needs_a_third_of_the_trusted_power() {
    for dropped in 0..=6usize {
        let c = rotating_chain(dropped);
        let mut client = c.client(2, c.options());
        let now = c.now_after(10);
        let result = client.clone().verify_header(c.update(2, 10), now);
        // The trusted set (announced by height 2) holds 60; (6 - dropped) * 10 of it signs height 10.
        let overlap = (6 - dropped as u64) * 10;
        if overlap * 3 > 60 {
            assert_eq!(result.map(|o| o.height), Ok(10), "dropped {dropped}");
        } else {
            let expected = CommitError::InsufficientTrustedPower {
                signed: overlap,
                total: 60,
                threshold: TrustThreshold::ONE_THIRD,
            };
            assert_eq!(
                commit_error(&mut client, c.update(2, 10), now),
                expected,
                "dropped {dropped}"
            );
            // Sequential verification still follows the change, height by height.
            for h in 3..=10 {
                client.verify_header(c.update(h - 1, h), now).unwrap();
            }
            assert_eq!(client.latest_height(), 10);
        }
    }
}

#[test]
fn a_stricter_trust_threshold_is_applied() {
    let c = rotating_chain(2);
    let mut options = c.options();
    options.trust_threshold = TrustThreshold {
        numerator: 2,
        denominator: 3,
    };
    let mut client = c.client(2, options);
    // 40 of 60 is not more than 2/3.
    let err = commit_error(&mut client, c.update(2, 10), c.now_after(10));
    assert!(matches!(
        err,
        CommitError::InsufficientTrustedPower {
            signed: 40,
            total: 60,
            ..
        }
    ));
}

#[test]
fn conflicting_commits_freeze_the_client() {
    let c = chain(4, 8);
    let now = c.now_after(8);

    // Through evidence.
    let mut client = c.client(1, c.options());
    client.verify_header(c.update(1, 4), now).unwrap();
    assert_eq!(client.check_misbehaviour(c.misbehaviour(1, 6), now), Ok(true));
    assert_eq!(client.status(now), ClientStatus::Frozen);
    assert_eq!(client.client_state().frozen_height, Some(6));
    let frozen = NativeError::Frozen { height: 6 };
    rejects(&mut client, c.update(4, 5), now, frozen.clone());
    assert_eq!(
        client.check_misbehaviour(c.misbehaviour(1, 7), now),
        Err(frozen.clone())
    );
    let (value, proof) = c.prove(4, &ns("testgen"), b"height");
    let path = StatePath::new(ns("testgen"), b"height".to_vec()).encode();
    assert_eq!(
        client.verify_membership(4, &path, &value.unwrap(), &proof),
        Err(frozen.clone())
    );
    let (_, absent) = c.prove(4, &ns("testgen"), b"nothing");
    let absent_path = StatePath::new(ns("testgen"), b"nothing".to_vec()).encode();
    assert_eq!(
        client.verify_non_membership(4, &absent_path, &absent),
        Err(frozen)
    );

    // Through an update that conflicts with a trusted header.
    let mut client = c.client(1, c.options());
    client.verify_header(c.update(1, 5), now).unwrap();
    assert_eq!(
        client.verify_header(c.fork_update(1, 5), now),
        Err(NativeError::ConflictingHeader { height: 5 })
    );
    assert_eq!(client.status(now), ClientStatus::Frozen);

    // Only governance recovers it, from a header it trusts afresh.
    let wrong = corrupt(&c, &c.update(1, 8), Corruption::OtherChain).header;
    assert!(matches!(
        client.recover(&wrong, now),
        Err(NativeError::ChainIdMismatch { .. })
    ));
    assert_eq!(client.status(now), ClientStatus::Frozen);
    client.recover(&c.block(7).header, now).unwrap();
    assert_eq!(client.status(now), ClientStatus::Active);
    assert_eq!(client.trusted_heights().len(), 1);
    client.verify_header(c.update(7, 8), now).unwrap();
}

#[test]
fn evidence_that_proves_nothing_does_not_freeze() {
    let c = chain(4, 6);
    let now = c.now_after(6);
    let mut client = c.client(1, c.options());
    let same = Misbehaviour {
        first: c.update(1, 5),
        second: c.update(2, 5),
    };
    assert_eq!(client.check_misbehaviour(same, now), Ok(false));
    let heights = Misbehaviour {
        first: c.update(1, 5),
        second: c.fork_update(1, 4),
    };
    assert_eq!(
        client.check_misbehaviour(heights, now),
        Err(NativeError::EvidenceHeightsDiffer { first: 5, second: 4 })
    );
    // A fork header without a valid commit is no evidence.
    let mut forged = c.misbehaviour(1, 5);
    forged.second = corrupt(&c, &forged.second, Corruption::KeepSigners { keep: 1 });
    assert!(matches!(
        client.check_misbehaviour(forged, now),
        Err(NativeError::Commit(_))
    ));
    // Evidence built on an untrusted height is no evidence either.
    assert_eq!(
        client.check_misbehaviour(c.misbehaviour(3, 5), now),
        Err(NativeError::UnknownTrustedHeight { height: 3 })
    );
    assert_eq!(client.status(now), ClientStatus::Active);
}

#[test]
fn membership_and_non_membership_proofs() {
    let mut base = TestState::default();
    base.put("org/acme", b"invoice-1", b"paid")
        .put("org/acme", b"invoice-2", b"due")
        .put("zeta", b"k", b"v");
    let c = ChainBuilder::new("alpha", Signers::equal(Suite::Ed25519, 4, 1))
        .state(base)
        .build(4);
    let mut client = c.client(1, c.options());
    client.verify_header(c.update(1, 3), c.now_after(3)).unwrap();
    let path = |n: &str, k: &[u8]| StatePath::new(ns(n), k.to_vec()).encode();

    let (value, proof) = c.prove(3, &ns("org/acme"), b"invoice-1");
    assert_eq!(value.as_deref(), Some(&b"paid"[..]));
    client
        .verify_membership(3, &path("org/acme", b"invoice-1"), b"paid", &proof)
        .unwrap();
    // Wrong value, wrong key, wrong namespace, wrong height: all refused.
    assert!(matches!(
        client.verify_membership(3, &path("org/acme", b"invoice-1"), b"due", &proof),
        Err(NativeError::Proof(_))
    ));
    assert!(matches!(
        client.verify_membership(3, &path("org/acme", b"invoice-2"), b"paid", &proof),
        Err(NativeError::Proof(_))
    ));
    assert!(matches!(
        client.verify_membership(3, &path("zeta", b"invoice-1"), b"paid", &proof),
        Err(NativeError::Proof(_))
    ));
    let (height_value, height_proof) = c.prove(3, &ns("testgen"), b"height");
    client
        .verify_membership(
            3,
            &path("testgen", b"height"),
            &height_value.clone().unwrap(),
            &height_proof,
        )
        .unwrap();
    assert_eq!(
        client.verify_membership(
            1,
            &path("testgen", b"height"),
            &height_value.unwrap(),
            &height_proof
        ),
        Err(NativeError::Proof(ProofError::TopProof))
    );
    assert_eq!(
        client.verify_membership(2, &path("org/acme", b"invoice-1"), b"paid", &proof),
        Err(NativeError::NoConsensusState { height: 2 })
    );
    assert!(matches!(
        client.verify_membership(3, b"not a path", b"paid", &proof),
        Err(NativeError::Path(_))
    ));

    // Absent key in a present namespace, and an absent namespace.
    let (none, absent) = c.prove(3, &ns("org/acme"), b"invoice-3");
    assert!(none.is_none());
    client
        .verify_non_membership(3, &path("org/acme", b"invoice-3"), &absent)
        .unwrap();
    assert!(client
        .verify_non_membership(3, &path("org/acme", b"invoice-1"), &absent)
        .is_err());
    assert!(client
        .verify_membership(3, &path("org/acme", b"invoice-3"), b"x", &absent)
        .is_err());
    let (_, no_namespace) = c.prove(3, &ns("org/nobody"), b"k");
    client
        .verify_non_membership(3, &path("org/nobody", b"k"), &no_namespace)
        .unwrap();
    assert!(client
        .verify_non_membership(1, &path("org/nobody", b"k"), &no_namespace)
        .is_err());
    // A proof of presence is no proof of absence.
    assert!(client
        .verify_non_membership(3, &path("org/acme", b"invoice-1"), &proof)
        .is_err());
}

#[test]
fn memory_is_bounded_oldest_first() {
    let c = chain(4, 13);
    let mut options = c.options();
    options.max_consensus_states = 3;
    let mut client = c.client(1, options);
    for h in 2..=12 {
        client.verify_header(c.update(h - 1, h), c.now_after(12)).unwrap();
        assert!(client.trusted_heights().len() <= 3);
    }
    assert_eq!(
        client
            .trusted_heights()
            .iter()
            .map(|t| t.height)
            .collect::<Vec<_>>(),
        vec![10, 11, 12]
    );
    assert!(client.consensus_state(9).is_none());
    rejects(
        &mut client,
        c.update(9, 13),
        c.now_after(13),
        NativeError::UnknownTrustedHeight { height: 9 },
    );
}

#[test]
fn gaps_below_the_latest_height_can_be_filled_in_order() {
    let c = chain(4, 10);
    let now = c.now_after(10);
    let mut client = c.client(1, c.options());
    client.verify_header(c.update(1, 10), now).unwrap();
    client.verify_header(c.update(1, 5), now).unwrap();
    assert_eq!(client.latest_height(), 10);
    assert_eq!(
        client
            .trusted_heights()
            .iter()
            .map(|t| t.height)
            .collect::<Vec<_>>(),
        vec![1, 5, 10]
    );
    // A validly signed header at 7 whose time is not before the trusted height 10 is refused.
    let late = c.resigned(&c.update(5, 7), c.signers(7), |h| h.time = c.time(10));
    let expected = NativeError::NotBeforeLaterTrusted {
        time: c.time(10),
        later_height: 10,
        later_time: c.time(10),
    };
    rejects(&mut client, late, now, expected);
}

#[test]
fn creation_checks_options_and_the_trusted_header() {
    let c = chain(4, 2);
    let header = &c.block(1).header;
    let now = c.now_after(1);
    let mut bad = c.options();
    for (n, d) in [(1, 4), (1, 1), (3, 2), (0, 0)] {
        bad.trust_threshold = TrustThreshold {
            numerator: n,
            denominator: d,
        };
        assert!(
            matches!(
                NativeClient::new(bad.clone(), header, now),
                Err(NativeError::InvalidOptions(_))
            ),
            "{n}/{d}"
        );
    }
    let mut bad = c.options();
    bad.trusting_period_secs = 0;
    assert!(matches!(
        NativeClient::new(bad, header, now),
        Err(NativeError::InvalidOptions(_))
    ));
    let mut bad = c.options();
    bad.max_consensus_states = 0;
    assert!(matches!(
        NativeClient::new(bad, header, now),
        Err(NativeError::InvalidOptions(_))
    ));
    let mut other = c.options();
    other.chain_id = ChainId::new("beta").unwrap();
    assert!(matches!(
        NativeClient::new(other, header, now),
        Err(NativeError::ChainIdMismatch { .. })
    ));
    let late = header.time.plus(c.options().trusting_period());
    assert!(matches!(
        NativeClient::new(c.options(), header, late),
        Err(NativeError::TrustedStateExpired { .. })
    ));
    let early = Time(header.time.0 - Duration::from_secs(60).as_nanos() as u64);
    assert!(matches!(
        NativeClient::new(c.options(), header, early),
        Err(NativeError::HeaderFromFuture { .. })
    ));
}

#[test]
fn encodings_round_trip_and_are_checked() {
    let c = chain(4, 6);
    let now = c.now_after(6);
    let mut client = c.client(1, c.options());
    client.verify_header(c.update(1, 4), now).unwrap();
    client.verify_header(c.update(4, 6), now).unwrap();

    assert_eq!(NativeClient::decode(&client.encode()).unwrap(), client);
    assert_eq!(
        serde_json::from_str::<NativeClient>(&serde_json::to_string(&client).unwrap()).unwrap(),
        client
    );
    let state = client.client_state().clone();
    assert_eq!(ClientState::decode(&state.encode()).unwrap(), state);
    let update = c.update(4, 5);
    assert_eq!(HeaderUpdate::decode(&update.encode()).unwrap(), update);
    assert_eq!(
        serde_json::from_str::<HeaderUpdate>(&serde_json::to_string(&update).unwrap()).unwrap(),
        update
    );
    let evidence = c.misbehaviour(4, 5);
    assert_eq!(Misbehaviour::decode(&evidence.encode()).unwrap(), evidence);
    assert_eq!(
        serde_json::from_str::<Misbehaviour>(&serde_json::to_string(&evidence).unwrap()).unwrap(),
        evidence
    );

    // A decoded client keeps its invariants: ordered heights, latest last, within the bound, 32-byte hashes.
    let mut parts = (client.client_state().clone(), client.trusted_heights().to_vec());
    parts.1.swap(0, 1);
    let mut bytes = vec![crate::codec::CODEC_VERSION];
    bytes.extend(crate::codec::to_borsh(&parts));
    assert!(matches!(
        NativeClient::decode(&bytes),
        Err(CodecError::Malformed { .. })
    ));
    let mut parts = (client.client_state().clone(), client.trusted_heights().to_vec());
    parts.0.latest_height = 5;
    let mut bytes = vec![crate::codec::CODEC_VERSION];
    bytes.extend(crate::codec::to_borsh(&parts));
    assert!(NativeClient::decode(&bytes).is_err());
    let mut parts = (client.client_state().clone(), client.trusted_heights().to_vec());
    parts.1[0].consensus_state.root.pop();
    let json = serde_json::json!({ "state": parts.0, "consensus_states": parts.1 });
    assert!(serde_json::from_value::<NativeClient>(json).is_err());
    let mut state = client.client_state().clone();
    state.options.trusting_period_secs = 0;
    assert!(matches!(
        ClientState::decode(&state.encode()),
        Err(CodecError::Invalid { .. })
    ));
}

#[test]
fn a_weak_key_in_an_update_is_refused_at_decoding() {
    let c = chain(4, 2);
    let update = c.update(1, 2);
    let mut bytes = update.encode();
    // Replace the first key of the header's validator set (the first `0x00 ‖ 32 bytes` after the certificate) by
    // the identity point, a small-order key.
    let set = crate::codec::to_borsh(&update.validators);
    let at = bytes
        .windows(set.len())
        .position(|w| w == set.as_slice())
        .unwrap();
    let key_at = at + 4 + 1;
    bytes[key_at..key_at + 32].copy_from_slice(&{
        let mut weak = [0u8; 32];
        weak[0] = 1;
        weak
    });
    assert!(matches!(
        HeaderUpdate::decode(&bytes),
        Err(CodecError::Malformed { .. })
    ));
}

/// A chain of `n` validators of `suite` and random powers with set changes at random heights.
fn arb_chain() -> impl Strategy<Value = TestChain> {
    (
        prop::sample::select(Suite::ALL.to_vec()),
        prop::collection::vec(1u64..50, 2..=6),
        prop::collection::vec((2u64..=10, 0usize..6, 0usize..6, any::<u64>()), 1..3),
        any::<u64>(),
    )
        .prop_map(|(suite, powers, changes, seed)| {
            let first = Signers::generate(suite, &powers, seed);
            let mut builder = ChainBuilder::new("prop", first.clone());
            let mut current = first;
            let mut changes = changes;
            changes.sort_by_key(|c| c.0);
            for (height, drop, add, s) in changes {
                let leaving: Vec<usize> = (0..drop.min(current.set().len().saturating_sub(2))).collect();
                current = current.rotate(&leaving, add, s);
                builder = builder.validators_from(height, current.clone());
            }
            builder.build(10)
        })
}

/// Trusted power (by key) of `trusted` that signs with `signers`, and whether it passes 1/3.
fn overlap_passes(trusted: &ValidatorSet, signers: &ValidatorSet) -> bool {
    let power: u64 = trusted
        .validators()
        .iter()
        .filter(|v| signers.validators().iter().any(|s| s.pub_key == v.pub_key))
        .map(|v| v.power)
        .sum();
    TrustThreshold::ONE_THIRD.is_exceeded_by(power.into(), trusted.total_power().into())
}

/// Number of leading signatures (all members sign, in index order) needed for more than 2/3.
fn quorum_prefix(set: &ValidatorSet) -> usize {
    let total = set.total_power();
    let mut power = 0;
    for (i, v) in set.validators().iter().enumerate() {
        power += v.power;
        if power * 3 > total * 2 {
            return i + 1;
        }
    }
    set.len()
}

fn arb_corruption() -> impl Strategy<Value = Corruption> {
    prop_oneof![
        (any::<usize>(), any::<usize>())
            .prop_map(|(signature, byte)| Corruption::FlipSignatureByte { signature, byte }),
        any::<usize>().prop_map(|keep| Corruption::KeepSigners { keep }),
        prop::sample::select(HeaderField::ALL.to_vec()).prop_map(Corruption::Field),
        Just(Corruption::OtherChain),
        Just(Corruption::OtherRound),
        Just(Corruption::SwapSignatures),
        Just(Corruption::DuplicateSignature),
        Just(Corruption::IndexOutsideSet),
        any::<u64>().prop_map(|seed| Corruption::OtherValidatorSet { seed }),
        any::<u64>().prop_map(|seed| Corruption::OtherTrustedValidatorSet { seed }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Along any increasing path of heights, each step is accepted exactly when the model says so: always when
    /// sequential, and when skipping iff more than 1/3 of the trusted next set signs the target.
    #[test]
    fn valid_paths_are_accepted_exactly_when_trust_carries_over(
        c in arb_chain(),
        steps in prop::collection::vec(1u64..5, 1..8),
    ) {
        let now = c.now_after(10);
        let mut client = c.client(1, c.options());
        let mut trusted = 1;
        for step in steps {
            let target = (trusted + step).min(10);
            if target == trusted {
                break;
            }
            let expected_ok = target == trusted + 1
                || overlap_passes(&c.block(trusted).next_validators, &c.block(target).validators);
            let before = client.clone();
            let result = client.verify_header(c.update(trusted, target), now);
            if expected_ok {
                prop_assert_eq!(result.map(|o| o.height), Ok(target));
                trusted = target;
            } else {
                let refused_for_trust = matches!(result, Err(NativeError::Commit(CommitError::InsufficientTrustedPower { .. })));
                prop_assert!(refused_for_trust);
                prop_assert_eq!(&client, &before);
                // Fall back to the next height, always reachable sequentially.
                client.verify_header(c.update(trusted, trusted + 1), now).unwrap();
                trusted += 1;
            }
        }
    }

    /// Every corruption of a valid update (sequential or skipping) is refused and leaves the client unchanged.
    #[test]
    fn corrupted_updates_are_refused(
        c in arb_chain(),
        target in 2u64..=10,
        corruption in arb_corruption(),
    ) {
        let now = c.now_after(10);
        let trusted = if overlap_passes(&c.block(1).next_validators, &c.block(target).validators) { 1 } else { target - 1 };
        let good = c.update(trusted, target);
        prop_assert!(c.client(trusted, c.options()).verify_header(good.clone(), now).is_ok());
        // Only signatures the light path must count are flipped, and fewer signers than a quorum are kept (a
        // surplus signature is deliberately not checked; see `commit`).
        let q = quorum_prefix(&good.validators);
        let corruption = match corruption {
            Corruption::FlipSignatureByte { signature, byte } => Corruption::FlipSignatureByte { signature: signature % q, byte },
            Corruption::KeepSigners { keep } => Corruption::KeepSigners { keep: keep % q },
            other => other,
        };
        let bad = corrupt(&c, &good, corruption);
        let mut client = c.client(trusted, c.options());
        let before = client.clone();
        prop_assert!(client.verify_header(bad, now).is_err(), "{:?} accepted", corruption);
        prop_assert_eq!(client, before);
    }

    /// Random bytes never make a decoder panic.
    #[test]
    fn decoders_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        let _ = NativeClient::decode(&bytes);
        let _ = ClientState::decode(&bytes);
        let _ = HeaderUpdate::decode(&bytes);
        let _ = Misbehaviour::decode(&bytes);
        let _ = StatePath::decode(&bytes);
    }
}

#[test]
fn an_update_reads_its_base_its_neighbours_and_the_latest() {
    let c = chain(4, 12);
    let kept = [2, 5, 9, 12];
    assert_eq!(heights_for_update(&kept, &c.update(2, 7)), vec![2, 5, 9, 12]);
    assert_eq!(heights_for_update(&kept, &c.update(5, 9)), vec![5, 9, 12]);
    // A base that is not kept is not read (the update then fails as the whole client's would).
    assert_eq!(heights_for_update(&kept, &c.update(3, 11)), vec![9, 12]);
    assert_eq!(heights_for_update(&[1], &c.update(1, 4)), vec![1]);
    assert_eq!(
        heights_for_misbehaviour(&kept, &c.misbehaviour(5, 10)),
        vec![5, 12]
    );
    let mut heights = vec![1, 2, 3, 4];
    assert_eq!(prune(&mut heights, 2), vec![1, 2]);
    assert_eq!(heights, vec![3, 4]);
    assert!(prune(&mut heights, 2).is_empty());
}

#[test]
fn a_partial_client_checks_its_parts_and_never_prunes() {
    let c = chain(4, 6);
    let mut options = c.options();
    options.max_consensus_states = 1;
    let (state, held) = c.client(3, options).into_parts();
    assert!(NativeClient::partial(state.clone(), vec![]).is_ok());
    let mut above = held.clone();
    above[0].height = 4;
    assert!(matches!(
        NativeClient::partial(state.clone(), above),
        Err(NativeError::InvalidParts(_))
    ));
    let mut short = held.clone();
    short[0].consensus_state.root.pop();
    assert!(NativeClient::partial(state.clone(), short).is_err());
    let mut partial = NativeClient::partial(state, held).unwrap();
    assert!(partial.is_partial());
    partial.verify_header(c.update(3, 5), c.now_after(6)).unwrap();
    // Two heights held although at most one is kept: dropping is the host's (it holds the full list).
    assert_eq!(partial.trusted_heights().len(), 2);
    let (state, held) = partial.into_parts();
    assert!(
        NativeClient::whole(state, held).is_err(),
        "a whole client holds at most max heights"
    );
}
