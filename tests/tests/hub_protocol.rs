//! The cross-chain protocol step by step on a real hub and real member chains: transfers there and back, timeouts,
//! error acknowledgements, atomic deals, misbehaviour and recovery; and at each step the bad inputs a relayer or
//! user could send (replays, forged packets, acks, outcomes and decisions, proofs at wrong heights, headers of the
//! wrong chain or from the future), each refused with its typed error and without writing anything.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use causeway_chain::exec::TxResult;
use causeway_chain::message::{Amount, Denom, Message};
use causeway_chain::xchain::types::{
    escrow_address, hub_keys, Ack, AtomicSpec, Decision, DenomTrace, Leg, LegState, Outcome, Packet, Payload,
    HUB_NAMESPACE,
};
use causeway_chain::xchain::{self, EndpointGov, EndpointMsg, Error};
use causeway_hub::{HubGov, HubMsg};
use causeway_light_client::{
    Canonical, ChainId, HeaderUpdate, LightClient, Misbehaviour, NativeError, SecretKey, Suite, Time,
};
use causeway_tests::alliance::{
    last_endpoint, last_hub, Alliance, Job, Knowledge, Target, COIN, USER_BALANCE,
};

fn relayer() -> SecretKey {
    SecretKey::from_bytes(Suite::Ed25519, &[250; 32]).unwrap()
}

fn coin() -> Denom {
    Denom::new(COIN).unwrap()
}

/// Submit `msgs` to `t`, produce a block on every chain, learn from them; the transaction's result.
fn deliver(a: &mut Alliance, k: &mut Knowledge, t: Target, msgs: Vec<Message>) -> TxResult {
    a.deliver_as(k, t, &relayer(), msgs)
}

fn step(a: &mut Alliance, k: &mut Knowledge, job: Job) -> TxResult {
    let (t, msgs) = a.build(&job);
    let r = deliver(a, k, t, msgs);
    assert!(r.is_ok(), "{job:?} failed: {:?}", r.failure);
    r
}

fn idle(a: &mut Alliance, k: &mut Knowledge, blocks: usize) {
    for _ in 0..blocks {
        for (t, c) in a.produce_all() {
            k.observe(&a.chain(t).id(), &c.results);
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn send(
    a: &mut Alliance,
    k: &mut Knowledge,
    from: usize,
    user: usize,
    to: usize,
    denom: Denom,
    amount: u128,
    timeout_secs: u64,
) -> Packet {
    let (r, packet) = a.transfer(k, from, user, to, &denom, amount, timeout_secs);
    assert!(r.is_ok(), "send failed: {:?}", r.failure);
    packet.unwrap()
}

/// Refused with an error matching `pred`, writing nothing.
fn refused(a: &Alliance, t: Target, msgs: &[Message], pred: impl Fn(&Error) -> bool) {
    let (result, unchanged) = a.exec(t, msgs);
    let e = result.expect_err("must be refused");
    assert!(pred(&e), "unexpected error: {e}");
    assert!(unchanged, "a refused message wrote to state ({e})");
}

fn proof_error(e: &Error) -> bool {
    matches!(
        e,
        Error::Client {
            source: NativeError::Proof(_),
            ..
        }
    )
}

fn inflate(p: &Packet) -> Packet {
    let mut q = p.clone();
    let Payload::Transfer(t) = &mut q.payload;
    t.amount = Amount(t.amount.0 + 1);
    q
}

#[test]
fn transfer_there_and_back_exactly_once() {
    let mut a = Alliance::new(3, 2);
    let mut k = Knowledge::default();
    let (u0, u1) = (
        a.users[0].public_key().address(),
        a.users[1].public_key().address(),
    );
    let p = send(&mut a, &mut k, 0, 0, 1, coin(), 100, 1_000);
    assert_eq!(a.members[0].balance(&coin(), &u0), USER_BALANCE - 100);
    assert_eq!(a.members[0].balance(&coin(), &escrow_address()), 100);

    // Source → hub; then a replay, a changed packet and a proof at an untrusted height are refused.
    let (t, msgs) = a.build(&Job::HubRecv(p.clone()));
    let mut inflated = msgs.clone();
    let HubMsg::RecvPacket {
        proof_height, proof, ..
    } = last_hub(&msgs)
    else {
        panic!()
    };
    *inflated.last_mut().unwrap() = HubMsg::RecvPacket {
        packet: inflate(&p),
        proof_height,
        proof: proof.clone(),
    }
    .into_message();
    refused(&a, t, &inflated, proof_error);
    let mut far = msgs.clone();
    *far.last_mut().unwrap() = HubMsg::RecvPacket {
        packet: p.clone(),
        proof_height: proof_height + 1_000,
        proof,
    }
    .into_message();
    refused(&a, t, &far, |e| {
        matches!(
            e,
            Error::Client {
                source: NativeError::NoConsensusState { .. },
                ..
            }
        )
    });
    step(&mut a, &mut k, Job::HubRecv(p.clone()));
    let (t, msgs) = a.build(&Job::HubRecv(p.clone()));
    refused(&a, t, &msgs, |e| matches!(e, Error::AlreadyReceived { .. }));

    // Hub → destination: a voucher is minted once.
    let (t, msgs) = a.build(&Job::MemberRecv(p.clone()));
    let EndpointMsg::RecvPacket {
        proof_height, proof, ..
    } = last_endpoint(&msgs)
    else {
        panic!()
    };
    let mut changed = msgs.clone();
    *changed.last_mut().unwrap() = EndpointMsg::RecvPacket {
        packet: inflate(&p),
        proof_height,
        proof,
    }
    .into_message();
    refused(&a, t, &changed, proof_error);
    // Delivered to the wrong member.
    let (mut wrong, h) = a.update_on_member(2);
    let (_, proof) = a.hub.prove(
        h,
        HUB_NAMESPACE,
        &hub_keys::forward(&p.destination, &p.source, p.sequence),
    );
    wrong.push(
        EndpointMsg::RecvPacket {
            packet: p.clone(),
            proof_height: h,
            proof,
        }
        .into_message(),
    );
    // The hub committed the packet for beta: gamma checks the commitment under its own id, which is absent.
    refused(&a, Target::Member(2), &wrong, proof_error);
    step(&mut a, &mut k, Job::MemberRecv(p.clone()));
    let (t, msgs) = a.build(&Job::MemberRecv(p.clone()));
    refused(&a, t, &msgs, |e| matches!(e, Error::AlreadyReceived { .. }));
    let voucher = DenomTrace {
        home: a.members[0].id(),
        base: coin(),
    }
    .voucher_denom();
    assert_eq!(a.members[1].balance(&voucher, &u1), 100);
    assert_eq!(a.members[1].supply(&voucher), 100);

    // Acknowledgement back to the hub; a flipped ack is refused; then the outcome to the source.
    let ack = k.acks[&(p.source.clone(), p.sequence)].clone();
    assert_eq!(ack, Ack::Success);
    let (t, msgs) = a.build(&Job::HubAck(p.clone(), Ack::Error("no".into())));
    refused(&a, t, &msgs, proof_error);
    step(&mut a, &mut k, Job::HubAck(p.clone(), ack.clone()));
    let (t, msgs) = a.build(&Job::HubAck(p.clone(), ack));
    refused(&a, t, &msgs, |e| matches!(e, Error::NotPending { .. }));
    let outcome = k.outcomes[&(p.source.clone(), p.sequence)].clone();
    let (t, msgs) = a.build(&Job::Resolve(p.clone(), Outcome::TimedOut));
    refused(&a, t, &msgs, proof_error);
    step(&mut a, &mut k, Job::Resolve(p.clone(), outcome.clone()));
    let (t, msgs) = a.build(&Job::Resolve(p.clone(), outcome));
    refused(&a, t, &msgs, |e| matches!(e, Error::UnknownPacket(_)));
    assert!(!a.in_flight(&p));
    assert_eq!(
        xchain::escrowed(&a.members[0].view(), &a.members[1].id(), &coin()).unwrap(),
        100
    );

    // A voucher only goes home; 40 of it does, and the escrow releases 40.
    let wrong_way = EndpointMsg::SendTransfer {
        destination: a.members[2].id(),
        denom: voucher.clone(),
        amount: Amount(1),
        receiver: u0,
        timeout_height: 0,
        timeout_time: Time::from_secs(u64::MAX / 2_000_000_000),
    };
    let u1_key = a.users[1].clone();
    let r = a.deliver_as(
        &mut k,
        Target::Member(1),
        &u1_key,
        vec![wrong_way.into_message()],
    );
    assert!(r.failure.is_some());
    let back = send(&mut a, &mut k, 1, 1, 0, voucher.clone(), 40, 1_000);
    assert_eq!(a.members[1].supply(&voucher), 60);
    step(&mut a, &mut k, Job::HubRecv(back.clone()));
    step(&mut a, &mut k, Job::MemberRecv(back.clone()));
    let ack = k.acks[&(back.source.clone(), back.sequence)].clone();
    assert_eq!(ack, Ack::Success);
    step(&mut a, &mut k, Job::HubAck(back.clone(), ack));
    let outcome = k.outcomes[&(back.source.clone(), back.sequence)].clone();
    step(&mut a, &mut k, Job::Resolve(back.clone(), outcome));
    // u1 got 100 then sent 40 back to u0 ((user + 1) % 2 == 0).
    assert_eq!(a.members[0].balance(&coin(), &u0), USER_BALANCE - 100 + 40);
    assert_eq!(
        xchain::escrowed(&a.members[0].view(), &a.members[1].id(), &coin()).unwrap(),
        60
    );
    assert_eq!(a.members[0].balance(&coin(), &escrow_address()), 60);
    assert!(k.repeated().is_empty());
    a.check_supply(&k).unwrap();
}

#[test]
fn timeouts_are_proven_by_non_receipt_and_refunded() {
    let mut a = Alliance::new(2, 2);
    let mut k = Knowledge::default();
    let u0 = a.users[0].public_key().address();
    let p = send(&mut a, &mut k, 0, 0, 1, coin(), 250, 4);
    step(&mut a, &mut k, Job::HubRecv(p.clone()));

    // Not expired yet: a timeout claim is refused.
    let (t, msgs) = a.build(&Job::HubTimeout(p.clone()));
    refused(&a, t, &msgs, |e| matches!(e, Error::NotExpired { .. }));
    idle(&mut a, &mut k, 4);
    let dst = &a.members[1];
    assert!(p.expired_at(dst.height(), dst.time()));

    // Past the deadline the destination refuses it, and the hub accepts the proof of non-receipt.
    let (t, msgs) = a.build(&Job::MemberRecv(p.clone()));
    refused(&a, t, &msgs, |e| matches!(e, Error::Expired { .. }));
    step(&mut a, &mut k, Job::HubTimeout(p.clone()));
    let (t, msgs) = a.build(&Job::HubTimeout(p.clone()));
    refused(&a, t, &msgs, |e| matches!(e, Error::NotPending { .. }));
    // The forward commitment is gone: the destination can no longer prove it.
    let (t, msgs) = a.build(&Job::MemberRecv(p.clone()));
    let (result, _) = a.exec(t, &msgs);
    assert!(result.is_err());

    let outcome = k.outcomes[&(p.source.clone(), p.sequence)].clone();
    assert_eq!(outcome, Outcome::TimedOut);
    let (t, msgs) = a.build(&Job::Resolve(p.clone(), Outcome::Acknowledged(Ack::Success)));
    refused(&a, t, &msgs, proof_error);
    step(&mut a, &mut k, Job::Resolve(p.clone(), outcome));
    assert_eq!(a.members[0].balance(&coin(), &u0), USER_BALANCE);
    assert_eq!(a.members[0].balance(&coin(), &escrow_address()), 0);
    a.check_supply(&k).unwrap();
}

#[test]
fn unknown_destination_is_answered_with_an_error_and_refunded() {
    let mut a = Alliance::new(2, 2);
    let mut k = Knowledge::default();
    let u0 = a.users[0].public_key().address();
    let msg = EndpointMsg::SendTransfer {
        destination: ChainId::new("delta").unwrap(),
        denom: coin(),
        amount: Amount(10),
        receiver: u0,
        timeout_height: 0,
        timeout_time: Time::from_secs(2_000_000_000),
    };
    let u0_key = a.users[0].clone();
    let r = a.deliver_as(
        &mut k,
        Target::Member(0),
        &u0_key,
        vec![msg.into_message()],
    );
    assert!(r.is_ok());
    let p = k.packets.values().next().unwrap().clone();
    step(&mut a, &mut k, Job::HubRecv(p.clone()));
    let outcome = k.outcomes[&(p.source.clone(), p.sequence)].clone();
    assert!(matches!(outcome, Outcome::Acknowledged(Ack::Error(_))));
    step(&mut a, &mut k, Job::Resolve(p, outcome));
    assert_eq!(a.members[0].balance(&coin(), &u0), USER_BALANCE);
}

#[test]
fn bad_headers_are_refused() {
    let mut a = Alliance::new(2, 1);
    let mut k = Knowledge::default();
    idle(&mut a, &mut k, 1);
    let alpha = a.members[0].id();
    let trusted = a.hub_client_of(0).latest_height();
    // Beta's header offered as alpha's.
    let beta_update = a.members[1].header_update(a.hub_client_of(1).latest_height(), a.members[1].height());
    let msg = HubMsg::UpdateClient {
        chain: alpha.clone(),
        update: beta_update,
    }
    .into_message();
    refused(&a, Target::Hub, &[msg], |e| {
        matches!(
            e,
            Error::Client {
                source: NativeError::ChainIdMismatch { .. },
                ..
            }
        )
    });
    // A header whose certificate is for another block.
    let mut update = a.members[0].header_update(trusted, a.members[0].height());
    update.header.state_root.0[0] ^= 1;
    let msg = HubMsg::UpdateClient {
        chain: alpha.clone(),
        update,
    }
    .into_message();
    refused(&a, Target::Hub, &[msg], |e| {
        matches!(
            e,
            Error::Client {
                source: NativeError::CommitBlockMismatch { .. },
                ..
            }
        )
    });
    // Signed by too little power: drop signatures below two thirds.
    let mut update = a.members[0].header_update(trusted, a.members[0].height());
    update.commit.signatures.truncate(2);
    let msg = HubMsg::UpdateClient {
        chain: alpha.clone(),
        update,
    }
    .into_message();
    refused(&a, Target::Hub, &[msg], |e| {
        matches!(
            e,
            Error::Client {
                source: NativeError::Commit(_),
                ..
            }
        )
    });
    // From the future: alpha's clock runs an hour ahead of the hub's.
    a.members[0].chain.advance(std::time::Duration::from_secs(3_600));
    idle(&mut a, &mut k, 1);
    let update = a.members[0].header_update(trusted, a.members[0].height());
    let msg = HubMsg::UpdateClient {
        chain: alpha.clone(),
        update,
    }
    .into_message();
    refused(&a, Target::Hub, &[msg], |e| {
        matches!(
            e,
            Error::Client {
                source: NativeError::HeaderFromFuture { .. },
                ..
            }
        )
    });
    // An unknown member.
    let update = a.members[1].header_update(a.hub_client_of(1).latest_height(), a.members[1].height());
    let msg = HubMsg::UpdateClient {
        chain: ChainId::new("delta").unwrap(),
        update,
    }
    .into_message();
    refused(&a, Target::Hub, &[msg], |e| matches!(e, Error::NoClient(_)));
}

/// A certified header at `height` of member `i` that differs from the real one, as an update from `trusted`.
fn conflicting(a: &Alliance, i: usize, trusted: u64, height: u64) -> HeaderUpdate {
    let m = &a.members[i];
    let mut update = m.header_update(trusted, height);
    update.header.state_root.0[0] ^= 0xff;
    update.commit = m.chain.certify(&update.header, &update.validators).unwrap();
    update
}

#[test]
fn misbehaviour_freezes_and_only_governance_recovers() {
    let mut a = Alliance::new(2, 2);
    let mut k = Knowledge::default();
    let p = send(&mut a, &mut k, 0, 0, 1, coin(), 5, 1_000);
    let alpha = a.members[0].id();

    // The hub learns alpha's height h honestly, then sees a second certified header at h: frozen.
    let (msgs, h) = a.update_on_hub(0);
    assert!(deliver(&mut a, &mut k, Target::Hub, msgs).is_ok());
    let trusted = a.hub_client_of(0).trusted_heights()[0].height;
    let fork = conflicting(&a, 0, trusted, h);
    let r = deliver(
        &mut a,
        &mut k,
        Target::Hub,
        vec![HubMsg::UpdateClient {
            chain: alpha.clone(),
            update: fork,
        }
        .into_message()],
    );
    assert!(
        r.is_ok() && r.events.iter().any(|e| e.kind == "hub.client_frozen"),
        "{r:?}"
    );

    // Frozen: no packet, no update is accepted.
    let (t, msgs) = a.build(&Job::HubRecv(p.clone()));
    let frozen = |e: &Error| {
        matches!(
            e,
            Error::Client {
                source: NativeError::Frozen { .. },
                ..
            }
        )
    };
    assert_eq!(msgs.len(), 2, "an update and the packet");
    refused(&a, t, &msgs[..1], frozen);
    refused(&a, t, &msgs[1..], frozen);

    // Beta's client is frozen through misbehaviour evidence instead (two headers proven from trusted states).
    let beta = a.members[1].id();
    let trusted = a.hub_client_of(1).latest_height();
    let h = a.members[1].height();
    let evidence = Misbehaviour {
        first: a.members[1].header_update(trusted, h),
        second: conflicting(&a, 1, trusted, h),
    };
    let same = Misbehaviour {
        first: evidence.first.clone(),
        second: evidence.first.clone(),
    };
    refused(
        &a,
        Target::Hub,
        &[HubMsg::SubmitMisbehaviour {
            chain: beta.clone(),
            evidence: Box::new(same),
        }
        .into_message()],
        |e| matches!(e, Error::NoMisbehaviour),
    );
    let r = deliver(
        &mut a,
        &mut k,
        Target::Hub,
        vec![HubMsg::SubmitMisbehaviour {
            chain: beta.clone(),
            evidence: Box::new(evidence),
        }
        .into_message()],
    );
    assert!(r.is_ok(), "{r:?}");
    assert_eq!(a.hub_client_of(1).client_state().frozen_height, Some(h));

    // Governance recovers alpha from a new trusted header; the packet then flows.
    let app = a.members[0].chain.app();
    let height = app.height();
    let action = HubGov::RecoverClient {
        chain: alpha,
        header: app.block(height).unwrap().unwrap().header,
        next_validators: app.validators_at(height + 1).unwrap(),
    }
    .into_action();
    let keys = a.hub.validators.clone();
    a.hub.submit(&keys[0], vec![Message::Propose { action }]);
    // Proposals 0 and 1 admitted the two members.
    a.hub.submit(
        &keys[1],
        vec![Message::Vote {
            proposal: 2,
            approve: true,
        }],
    );
    a.hub.submit(
        &keys[2],
        vec![Message::Vote {
            proposal: 2,
            approve: true,
        }],
    );
    idle(&mut a, &mut k, 1);
    assert_eq!(a.hub_client_of(0).client_state().frozen_height, None);
    step(&mut a, &mut k, Job::HubRecv(p));
}

fn deal(a: &Alliance, deadline_secs: u64, salt: u64) -> AtomicSpec {
    let u = |i: usize| a.users[i].public_key().address();
    AtomicSpec {
        salt,
        deadline: a
            .hub
            .chain
            .next_time()
            .plus(std::time::Duration::from_secs(deadline_secs)),
        legs: vec![
            Leg {
                chain: a.members[0].id(),
                from: u(0),
                to: u(1),
                denom: coin(),
                amount: Amount(300),
            },
            Leg {
                chain: a.members[1].id(),
                from: u(1),
                to: u(0),
                denom: coin(),
                amount: Amount(200),
            },
        ],
    }
}

fn prepare(a: &mut Alliance, k: &mut Knowledge, spec: &AtomicSpec, index: u32) -> TxResult {
    let payer = index as usize; // leg 0 is paid by user 0, leg 1 by user 1
    let key = a.users[payer].clone();
    let msg = EndpointMsg::PrepareLeg {
        spec: spec.clone(),
        index,
    }
    .into_message();
    let r = a.deliver_as(k, Target::Member(index as usize), &key, vec![msg]);
    k.specs.insert(spec.id(), spec.clone());
    r
}

#[test]
fn atomic_deal_commits_on_every_chain() {
    let mut a = Alliance::new(2, 2);
    let mut k = Knowledge::default();
    let spec = deal(&a, 30, 1);
    let id = spec.id();
    let (u0, u1) = (
        a.users[0].public_key().address(),
        a.users[1].public_key().address(),
    );
    // Only the payer may prepare its leg.
    let wrong = EndpointMsg::PrepareLeg {
        spec: spec.clone(),
        index: 1,
    }
    .into_message();
    let u0_key = a.users[0].clone();
    let r = a.deliver_as(&mut k, Target::Member(1), &u0_key, vec![wrong]);
    assert!(r.failure.is_some());
    assert!(prepare(&mut a, &mut k, &spec, 0).is_ok());
    assert!(prepare(&mut a, &mut k, &spec, 1).is_ok());
    assert!(
        prepare(&mut a, &mut k, &spec, 1).failure.is_some(),
        "a leg is prepared once"
    );

    // Before every leg is proven, no decision; an early abort is refused.
    refused(
        &a,
        Target::Hub,
        &[HubMsg::AbortExpired { spec: spec.clone() }.into_message()],
        |e| matches!(e, Error::Atomic(_)),
    );
    let (t, msgs) = a.build(&Job::ProvePrepare(spec.clone(), 0));
    // A proof of leg 0 offered for leg 1.
    let HubMsg::ProvePrepare {
        proof_height, proof, ..
    } = last_hub(&msgs)
    else {
        panic!()
    };
    let mut swapped = msgs.clone();
    *swapped.last_mut().unwrap() = HubMsg::ProvePrepare {
        spec: spec.clone(),
        index: 1,
        proof_height,
        proof,
    }
    .into_message();
    refused(&a, t, &swapped, |e| matches!(e, Error::Client { .. }));
    step(&mut a, &mut k, Job::ProvePrepare(spec.clone(), 0));
    assert_eq!(causeway_hub::decision(&a.hub.view(), &id).unwrap(), None);
    let (t, msgs) = a.build(&Job::ProvePrepare(spec.clone(), 0));
    refused(&a, t, &msgs, |e| matches!(e, Error::Atomic(_)));
    step(&mut a, &mut k, Job::ProvePrepare(spec.clone(), 1));
    assert_eq!(
        causeway_hub::decision(&a.hub.view(), &id).unwrap(),
        Some(Decision::Commit)
    );

    // A forged abort is refused; the commit is applied once on each chain.
    let (t, msgs) = a.build(&Job::ApplyDecision(spec.clone(), 0, Decision::Abort));
    refused(&a, t, &msgs, proof_error);
    step(
        &mut a,
        &mut k,
        Job::ApplyDecision(spec.clone(), 0, Decision::Commit),
    );
    step(
        &mut a,
        &mut k,
        Job::ApplyDecision(spec.clone(), 1, Decision::Commit),
    );
    let (t, msgs) = a.build(&Job::ApplyDecision(spec.clone(), 1, Decision::Commit));
    refused(&a, t, &msgs, |e| matches!(e, Error::AlreadyDecided(_)));
    assert_eq!(a.members[0].balance(&coin(), &u1), USER_BALANCE + 300);
    assert_eq!(a.members[1].balance(&coin(), &u0), USER_BALANCE + 200);
    a.check_atomic(&k, true).unwrap();
}

#[test]
fn atomic_deal_aborts_on_every_chain_when_a_leg_is_missing() {
    let mut a = Alliance::new(2, 2);
    let mut k = Knowledge::default();
    let spec = deal(&a, 6, 2);
    let id = spec.id();
    let u0 = a.users[0].public_key().address();
    assert!(prepare(&mut a, &mut k, &spec, 0).is_ok());
    step(&mut a, &mut k, Job::ProvePrepare(spec.clone(), 0));
    assert_eq!(a.members[0].balance(&coin(), &u0), USER_BALANCE - 300);
    idle(&mut a, &mut k, 6);
    // Too late to prepare; the hub aborts.
    assert!(prepare(&mut a, &mut k, &spec, 1).failure.is_some());
    step(&mut a, &mut k, Job::AbortExpired(spec.clone()));
    assert_eq!(
        causeway_hub::decision(&a.hub.view(), &id).unwrap(),
        Some(Decision::Abort)
    );
    refused(
        &a,
        Target::Hub,
        &[HubMsg::AbortExpired { spec: spec.clone() }.into_message()],
        |e| matches!(e, Error::AlreadyDecided(_)),
    );
    // A forged commit is refused; the abort unlocks leg 0 and closes leg 1.
    let (t, msgs) = a.build(&Job::ApplyDecision(spec.clone(), 0, Decision::Commit));
    refused(&a, t, &msgs, proof_error);
    step(
        &mut a,
        &mut k,
        Job::ApplyDecision(spec.clone(), 0, Decision::Abort),
    );
    step(
        &mut a,
        &mut k,
        Job::ApplyDecision(spec.clone(), 1, Decision::Abort),
    );
    assert_eq!(a.members[0].balance(&coin(), &u0), USER_BALANCE);
    assert_eq!(
        xchain::leg_state(&a.members[1].view(), &id, 1).unwrap(),
        Some(LegState::Aborted)
    );
    a.check_atomic(&k, true).unwrap();
}

#[test]
fn a_record_is_proven_to_another_member_through_the_hub() {
    use causeway_chain::message::{Bytes, GovAction, OrgId};
    use causeway_light_client::Namespace;
    let mut a = Alliance::new(2, 2);
    let mut k = Knowledge::default();
    // Alpha admits organisation "acme" (user 0 administers it); user 0 writes a record.
    let action = GovAction::AdmitOrg {
        org: OrgId::new("acme").unwrap(),
        admin: a.users[0].public_key().address(),
    };
    let keys = a.members[0].validators.clone();
    a.members[0].submit(&keys[0], vec![Message::Propose { action }]);
    a.members[0].submit(
        &keys[1],
        vec![Message::Vote {
            proposal: 1,
            approve: true,
        }],
    );
    a.members[0].submit(
        &keys[2],
        vec![Message::Vote {
            proposal: 1,
            approve: true,
        }],
    );
    idle(&mut a, &mut k, 1);
    let namespace = Namespace::new("org/acme/invoices").unwrap();
    let put = Message::PutRecord {
        namespace: namespace.clone(),
        key: "inv-7".into(),
        value: Bytes(b"{\"eur\":120}".to_vec()),
    };
    let u0 = a.users[0].clone();
    assert!(a.deliver_as(&mut k, Target::Member(0), &u0, vec![put]).is_ok());

    // A relayer proves the record to the hub at alpha's latest height.
    let (mut msgs, height) = a.update_on_hub(0);
    let (value, proof) = a.members[0].prove(height, "org/acme/invoices", b"inv-7");
    let value = value.unwrap();
    let attest = |value: Vec<u8>, proof| HubMsg::AttestRecord {
        chain: a.members[0].id(),
        height,
        namespace: namespace.clone(),
        key: "inv-7".into(),
        value: Bytes(value),
        proof,
    };
    let mut forged = causeway_chain::exec::records::Record::decode(&value).unwrap();
    forged.value = Bytes(b"{\"eur\":999}".to_vec());
    let mut lie = msgs.clone();
    lie.push(attest(forged.encode(), proof.clone()).into_message());
    refused(&a, Target::Hub, &lie, proof_error);
    msgs.push(attest(value.clone(), proof).into_message());
    assert!(deliver(&mut a, &mut k, Target::Hub, msgs).is_ok());

    // Beta verifies the hub's attestation and keeps the fact.
    let (mut msgs, hub_height) = a.update_on_member(1);
    let key = hub_keys::attestation(&a.members[0].id(), height, &namespace, b"inv-7");
    let (_, proof) = a.hub.prove(hub_height, HUB_NAMESPACE, &key);
    let verify = |value: Vec<u8>, proof| EndpointMsg::VerifyRecord {
        chain: a.members[0].id(),
        height,
        namespace: namespace.clone(),
        key: "inv-7".into(),
        value: Bytes(value),
        proof_height: hub_height,
        proof,
    };
    let mut lie = msgs.clone();
    lie.push(verify(forged.encode(), proof.clone()).into_message());
    refused(&a, Target::Member(1), &lie, proof_error);
    let mut not_record = msgs.clone();
    not_record.push(
        EndpointMsg::VerifyRecord {
            chain: a.members[0].id(),
            height,
            namespace: Namespace::new("sys/accounts").unwrap(),
            key: "inv-7".into(),
            value: Bytes(value.clone()),
            proof_height: hub_height,
            proof: proof.clone(),
        }
        .into_message(),
    );
    refused(&a, Target::Member(1), &not_record, |e| {
        matches!(e, Error::NotARecord(_))
    });
    msgs.push(verify(value.clone(), proof).into_message());
    assert!(deliver(&mut a, &mut k, Target::Member(1), msgs).is_ok());
    assert!(xchain::record_verified(
        &a.members[1].view(),
        &a.members[0].id(),
        height,
        &namespace,
        "inv-7",
        &value
    )
    .unwrap());
}

#[test]
fn a_member_freezes_its_hub_client_on_a_fork_and_its_governance_recovers() {
    let mut a = Alliance::new(2, 2);
    let mut k = Knowledge::default();
    let p = send(&mut a, &mut k, 0, 0, 1, coin(), 5, 1_000);
    step(&mut a, &mut k, Job::HubRecv(p.clone()));

    // Beta learns hub height h, then is shown a second certified hub header at h.
    let (msgs, h) = a.update_on_member(1);
    assert!(deliver(&mut a, &mut k, Target::Member(1), msgs).is_ok());
    let trusted = a.member_client(1).trusted_heights()[0].height;
    let mut fork = a.hub.header_update(trusted, h);
    fork.header.state_root.0[0] ^= 0xff;
    fork.commit = a.hub.chain.certify(&fork.header, &fork.validators).unwrap();
    let msg = EndpointMsg::UpdateHubClient { update: fork }.into_message();
    let r = deliver(&mut a, &mut k, Target::Member(1), vec![msg]);
    assert!(
        r.is_ok() && r.events.iter().any(|e| e.kind == "xchain.hub_client_frozen"),
        "{r:?}"
    );
    assert_eq!(a.member_client(1).client_state().frozen_height, Some(h));

    // Frozen: neither updates nor packets are accepted.
    let (t, msgs) = a.build(&Job::MemberRecv(p.clone()));
    let frozen = |e: &Error| {
        matches!(
            e,
            Error::Client {
                source: NativeError::Frozen { .. },
                ..
            }
        )
    };
    assert_eq!(msgs.len(), 2, "an update and the packet");
    refused(&a, t, &msgs[..1], frozen);
    refused(&a, t, &msgs[1..], frozen);

    // Beta's governance trusts the hub's latest header afresh (proposal 0 created the client); the packet flows.
    let app = a.hub.chain.app();
    let height = app.height();
    let action = EndpointGov::RecoverHubClient {
        header: app.block(height).unwrap().unwrap().header,
        next_validators: app.validators_at(height + 1).unwrap(),
    }
    .into_action();
    let keys = a.members[1].validators.clone();
    a.members[1].submit(&keys[0], vec![Message::Propose { action }]);
    a.members[1].submit(
        &keys[1],
        vec![Message::Vote {
            proposal: 1,
            approve: true,
        }],
    );
    a.members[1].submit(
        &keys[2],
        vec![Message::Vote {
            proposal: 1,
            approve: true,
        }],
    );
    idle(&mut a, &mut k, 1);
    assert_eq!(a.member_client(1).client_state().frozen_height, None);
    step(&mut a, &mut k, Job::MemberRecv(p));
}
