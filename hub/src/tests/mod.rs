//! Hub rules that need no member chain: admission by governance, atomic decisions by the deadline, unknown
//! clients. Packets with real proofs are tested end to end in `tests/tests/hub_protocol.rs` and `hub_sim.rs`.

use causeway_chain::exec::BlockContext;
use causeway_chain::message::{Amount, Denom};
use causeway_chain::state::{MemState, Overlay, WriteSet};
use causeway_chain::xchain::types::{DenomTrace, Leg, Payload, TransferData};
use causeway_light_client::{Address, HashAlg, SecretKey, Suite, Time, Validator};

use super::*;

fn chain(s: &str) -> ChainId {
    ChainId::new(s).unwrap()
}

fn set() -> ValidatorSet {
    let key = SecretKey::from_bytes(Suite::Ed25519, &[5; 32]).unwrap();
    ValidatorSet::new(vec![Validator {
        pub_key: key.public_key(),
        power: 10,
    }])
    .unwrap()
}

fn header(id: &str, next: &ValidatorSet) -> Header {
    Header {
        app_version: 1,
        chain_id: chain(id),
        height: 3,
        time: Time::from_secs(1_000),
        parent_hash: Hash([1; 32]),
        tx_root: Hash([2; 32]),
        last_commit_hash: Hash([3; 32]),
        state_root: Hash([4; 32]),
        validators_hash: next.hash(HashAlg::Sha256),
        next_validators_hash: next.hash(HashAlg::Sha256),
        proposer: Address([7; 20]),
    }
}

fn run<T>(
    state: &MemState,
    time: u64,
    f: impl FnOnce(&mut dyn StateWrite, &TxContext<'_>) -> T,
) -> (T, WriteSet) {
    run_at(state, Time::from_secs(time), f)
}

/// Run `f` as one transaction of a hub block at `time` over `state`; its result and writes.
fn run_at<T>(
    state: &MemState,
    time: Time,
    f: impl FnOnce(&mut dyn StateWrite, &TxContext<'_>) -> T,
) -> (T, WriteSet) {
    let b = BlockContext {
        chain_id: chain("hub"),
        height: 9,
        time,
        proposer: Address([7; 20]),
    };
    let validators = set();
    let ctx = TxContext {
        block: &b,
        sender: Address([1; 20]),
        validators: &validators,
        extensions: &[],
    };
    let mut o = Overlay::new(state);
    let out = f(&mut o, &ctx);
    o.commit_tx();
    (out, o.into_write_set())
}

fn admit(id: &str) -> HubGov {
    let next = set();
    HubGov::AdmitMember {
        options: TrustOptions::new(chain(id), HashAlg::Sha256),
        header: header(id, &next),
        next_validators: next,
    }
}

fn admitted(ids: &[&str]) -> MemState {
    let mut state = MemState::new();
    for id in ids {
        let (r, w) = run(&state, 1_001, |s, ctx| governance(s, ctx, admit(id)));
        r.unwrap();
        state.apply(&w);
    }
    state
}

#[test]
fn members_are_admitted_once_with_a_consistent_header() {
    let state = admitted(&["alpha"]);
    assert!(load_client(&state, &chain("alpha")).unwrap().is_some());
    assert!(load_client(&state, &chain("beta")).unwrap().is_none());
    let (r, w) = run(&state, 1_001, |s, ctx| governance(s, ctx, admit("alpha")));
    assert!(matches!(r, Err(Error::ClientExists(_))));
    assert!(w.is_empty());
    let (r, w) = run(&state, 1_001, |s, ctx| governance(s, ctx, admit("hub")));
    assert!(matches!(r, Err(Error::Governance(_))));
    assert!(w.is_empty());
    let other = ValidatorSet::new(vec![Validator {
        pub_key: SecretKey::from_bytes(Suite::Ed25519, &[6; 32])
            .unwrap()
            .public_key(),
        power: 1,
    }])
    .unwrap();
    let bad = HubGov::AdmitMember {
        options: TrustOptions::new(chain("beta"), HashAlg::Sha256),
        header: header("beta", &set()),
        next_validators: other,
    };
    let (r, w) = run(&state, 1_001, |s, ctx| governance(s, ctx, bad));
    assert!(matches!(r, Err(Error::Governance(_))));
    assert!(w.is_empty());
    // A header of another chain than the options name.
    let mismatched = HubGov::AdmitMember {
        options: TrustOptions::new(chain("beta"), HashAlg::Sha256),
        header: header("gamma", &set()),
        next_validators: set(),
    };
    let (r, _) = run(&state, 1_001, |s, ctx| governance(s, ctx, mismatched));
    assert!(matches!(
        r,
        Err(Error::Client {
            source: NativeError::ChainIdMismatch { .. },
            ..
        })
    ));
    // Recovery needs an existing client.
    let recover = HubGov::RecoverClient {
        chain: chain("beta"),
        header: header("beta", &set()),
        next_validators: set(),
    };
    let (r, _) = run(&state, 1_001, |s, ctx| governance(s, ctx, recover));
    assert!(matches!(r, Err(Error::NoClient(_))));
}

fn spec(deadline: u64) -> AtomicSpec {
    let leg = |c: &str| Leg {
        chain: chain(c),
        from: Address([1; 20]),
        to: Address([2; 20]),
        denom: Denom::new("cash").unwrap(),
        amount: Amount(5),
    };
    AtomicSpec {
        salt: 7,
        deadline: Time::from_secs(deadline),
        legs: vec![leg("alpha"), leg("beta")],
    }
}

#[test]
fn deals_abort_only_after_the_deadline_and_are_decided_once() {
    let state = admitted(&["alpha", "beta"]);
    let s = spec(1_050);
    let (r, w) = run(&state, 1_049, |st, ctx| {
        handle(st, ctx, HubMsg::AbortExpired { spec: s.clone() })
    });
    assert!(matches!(r, Err(Error::Atomic(_))));
    assert!(w.is_empty());
    let (r, w) = run(&state, 1_050, |st, ctx| {
        handle(st, ctx, HubMsg::AbortExpired { spec: s.clone() })
    });
    r.unwrap();
    let mut state = state;
    state.apply(&w);
    assert_eq!(decision(&state, &s.id()).unwrap(), Some(Decision::Abort));
    let (r, _) = run(&state, 1_060, |st, ctx| {
        handle(st, ctx, HubMsg::AbortExpired { spec: s.clone() })
    });
    assert!(matches!(r, Err(Error::AlreadyDecided(_))));

    // A prepare proven at or after the deadline aborts the deal (no proof is even looked at).
    let late = spec(1_020);
    let msg = HubMsg::ProvePrepare {
        spec: late.clone(),
        index: 0,
        proof_height: 3,
        proof: StateProof::NoNamespace {
            count: 0,
            neighbours: vec![],
            siblings: vec![],
        },
    };
    let (r, w) = run(&state, 1_020, |st, ctx| handle(st, ctx, msg));
    r.unwrap();
    state.apply(&w);
    assert_eq!(decision(&state, &late.id()).unwrap(), Some(Decision::Abort));

    // Before the deadline, a bad proof decides nothing.
    let early = spec(2_000);
    let msg = HubMsg::ProvePrepare {
        spec: early.clone(),
        index: 1,
        proof_height: 3,
        proof: StateProof::NoNamespace {
            count: 0,
            neighbours: vec![],
            siblings: vec![],
        },
    };
    let (r, w) = run(&state, 1_020, |st, ctx| handle(st, ctx, msg));
    assert!(matches!(r, Err(Error::Client { .. })), "{r:?}");
    assert!(w.is_empty());
}

#[test]
fn packets_need_an_admitted_source() {
    let state = admitted(&["alpha"]);
    let packet = Packet {
        source: chain("beta"),
        destination: chain("alpha"),
        sequence: 1,
        timeout_height: 0,
        timeout_time: Time::from_secs(5_000),
        payload: Payload::Transfer(TransferData {
            trace: DenomTrace {
                home: chain("beta"),
                base: Denom::new("cash").unwrap(),
            },
            amount: Amount(1),
            sender: Address([1; 20]),
            receiver: Address([2; 20]),
        }),
    };
    let proof = StateProof::NoNamespace {
        count: 0,
        neighbours: vec![],
        siblings: vec![],
    };
    let msg = HubMsg::RecvPacket {
        packet: packet.clone(),
        proof_height: 3,
        proof: proof.clone(),
    };
    let (r, w) = run(&state, 1_001, |st, ctx| handle(st, ctx, msg));
    assert!(matches!(r, Err(Error::NoClient(_))));
    assert!(w.is_empty());
    // From an admitted source, the forged (absence) proof fails; nothing is recorded.
    let mut from_alpha = packet;
    from_alpha.source = chain("alpha");
    from_alpha.destination = chain("beta");
    let msg = HubMsg::RecvPacket {
        packet: from_alpha.clone(),
        proof_height: 3,
        proof,
    };
    let (r, w) = run(&state, 1_001, |st, ctx| handle(st, ctx, msg));
    assert!(
        matches!(
            r,
            Err(Error::Client {
                source: NativeError::Proof(_),
                ..
            })
        ),
        "{r:?}"
    );
    assert!(w.is_empty());
    assert!(packet_record(&state, &from_alpha.source, 1).unwrap().is_none());
    // Acknowledging a packet the hub never received.
    let msg = HubMsg::AcknowledgePacket {
        packet: from_alpha,
        ack: Ack::Success,
        proof_height: 3,
        proof: StateProof::NoNamespace {
            count: 0,
            neighbours: vec![],
            siblings: vec![],
        },
    };
    let (r, _) = run(&state, 1_001, |st, ctx| handle(st, ctx, msg));
    assert!(matches!(r, Err(Error::NotPending { .. })));
}

#[test]
fn malformed_bodies_are_refused() {
    let state = MemState::new();
    let (r, _) = run(&state, 1_001, |st, ctx| Hub.handle(st, ctx, &[1, 200]));
    assert!(matches!(r, Err(Fail::Tx(_))));
    let (r, _) = run(&state, 1_001, |st, ctx| Hub.governance(st, ctx, &[9]));
    assert!(matches!(r, Err(Fail::Tx(_))));
}

mod merge;
