//! Registering a merge on the hub with real proofs (generated parent chains whose state holds their merge-out
//! records): what is refused, each without writing anything, and how the retired parents' packets drain.
#![allow(clippy::unwrap_used)]

use causeway_chain::genesis::Profile;
use causeway_chain::message::{Amount, Denom};
use causeway_chain::state::MemState;
use causeway_chain::xchain::types::{DenomTrace, Payload, TransferData};
use causeway_light_client::testgen::{ChainBuilder, Signers, TestChain, TestState};
use causeway_light_client::{Address, Suite, Time};

use super::*;

const FINAL: u64 = 6;

struct Parent {
    chain: TestChain,
    record: MergeOutRecord,
}

fn merged_signers() -> Signers {
    Signers::equal(Suite::Ed25519, 4, 99)
}

/// A member `id` merging out at `FINAL` with `partner` into `merged`, bringing namespace `brings`; its state
/// also holds a packet commitment, so it can prove sends.
fn parent(id: &str, partner: &str, merged: &str, brings: &str, seed: u64) -> Parent {
    let record = MergeOutRecord {
        chain: chain(id),
        final_height: FINAL,
        merged: chain(merged),
        partner: chain(partner),
        validators: merged_signers().set().validators().to_vec(),
        profile: Profile::Permissioned,
        namespaces: vec![(Namespace::new(brings).unwrap(), Hash([seed as u8; 32]))],
    };
    let mut state = TestState::default();
    state.put(LINEAGE, &merge_out_record_key(), &record.encode());
    let chain = ChainBuilder::new(id, Signers::equal(Suite::Ed25519, 4, seed))
        .state(state)
        .build(FINAL + 2);
    Parent { chain, record }
}

struct Setup {
    hub: MemState,
    alpha: Parent,
    beta: Parent,
    now: Time,
}

/// The hub with alpha and beta admitted and their clients brought to `FINAL - 1` and `FINAL`.
fn setup() -> Setup {
    setup_bringing("org/a", "org/b")
}

/// [`setup`] with alpha and beta bringing namespaces `a` and `b`.
fn setup_bringing(a: &str, b: &str) -> Setup {
    let alpha = parent("alpha", "beta", "merged", a, 1);
    let beta = parent("beta", "alpha", "merged", b, 2);
    let now = alpha
        .chain
        .now_after(FINAL + 2)
        .max(beta.chain.now_after(FINAL + 2));
    let mut hub = MemState::new();
    for p in [&alpha, &beta] {
        let first = p.chain.block(1);
        let admit = HubGov::AdmitMember {
            options: p.chain.options(),
            header: first.header.clone(),
            next_validators: first.next_validators.clone(),
        };
        let (r, w) = run_at(&hub, now, |s, ctx| governance(s, ctx, admit));
        r.unwrap();
        hub.apply(&w);
        for (from, to) in [(1, FINAL - 1), (FINAL - 1, FINAL)] {
            let update = HubMsg::UpdateClient {
                chain: p.chain.chain_id().clone(),
                update: p.chain.update(from, to),
            };
            let (r, w) = run_at(&hub, now, |s, ctx| handle(s, ctx, update));
            r.unwrap();
            hub.apply(&w);
        }
    }
    Setup {
        hub,
        alpha,
        beta,
        now,
    }
}

fn side(p: &Parent, height: u64) -> MergedParent {
    let (value, proof) = p
        .chain
        .prove(height, &namespace(LINEAGE), &merge_out_record_key());
    assert_eq!(value, Some(p.record.encode()));
    MergedParent {
        proof_height: height,
        record: p.record.clone(),
        proof,
    }
}

fn merged_header() -> (Header, CommitCertificate) {
    let m = ChainBuilder::new("merged", merged_signers()).build(1);
    let b = m.block(1);
    (b.header.clone(), b.commit.clone())
}

fn register(s: &Setup) -> HubMsg {
    let (header, commit) = merged_header();
    HubMsg::RegisterMerged {
        parents: Box::new([side(&s.alpha, FINAL), side(&s.beta, FINAL)]),
        header: Box::new(header),
        commit,
    }
}

fn refused(s: &Setup, msg: HubMsg, what: &str) {
    let (r, w) = run_at(&s.hub, s.now, |st, ctx| handle(st, ctx, msg));
    let e = r.expect_err(what);
    assert!(
        e.to_string().contains(what),
        "expected a refusal about {what:?}, got: {e}"
    );
    assert!(w.is_empty(), "a refused registration wrote {w:?}");
}

#[test]
fn a_merge_is_registered_only_from_two_proven_records_that_agree() {
    let s = setup();
    let good = register(&s);
    let with = |f: &dyn Fn(&mut [MergedParent; 2], &mut Header)| {
        let mut m = good.clone();
        if let HubMsg::RegisterMerged { parents, header, .. } = &mut m {
            f(parents, header);
        }
        m
    };
    refused(
        &s,
        with(&|p, _| p[0].record.namespaces[0].1 = Hash([9; 32])),
        "state proof",
    );
    refused(
        &s,
        with(&|p, _| p[1].record.partner = chain("gamma")),
        "not one merge",
    );
    refused(&s, with(&|p, _| p[1] = p[0].clone()), "not one merge");
    refused(
        &s,
        with(&|p, _| p[1].record.profile = Profile::Public),
        "disagree",
    );
    refused(
        &s,
        with(&|p, _| p[1].record.namespaces = p[0].record.namespaces.clone()),
        "in both parents",
    );
    refused(&s, with(&|p, _| p[0].proof_height = FINAL - 1), "cannot show it");
    refused(&s, with(&|_, h| h.state_root = Hash([3; 32])), "another block");
    let impostor = ChainBuilder::new("merged", Signers::equal(Suite::Ed25519, 4, 5)).build(1);
    let mut foreign = good.clone();
    if let HubMsg::RegisterMerged { header, commit, .. } = &mut foreign {
        **header = impostor.block(1).header.clone();
        *commit = impostor.block(1).commit.clone();
    }
    refused(&s, foreign, "not the ones the record names");

    let (r, w) = run_at(&s.hub, s.now, |st, ctx| handle(st, ctx, good.clone()));
    let events = r.unwrap();
    assert_eq!(events[0].kind, "hub.merged_registered");
    let mut hub = s.hub.clone();
    hub.apply(&w);
    assert!(is_member(&hub, &chain("merged")).unwrap());
    let m = merger(&hub, &chain("merged")).unwrap().unwrap();
    assert_eq!(m.parents[0].0, chain("alpha"));
    assert_eq!(
        m.parents[1],
        (
            chain("beta"),
            FINAL,
            HashAlg::Sha256.hash(&s.beta.record.encode())
        )
    );
    for p in ["alpha", "beta"] {
        let r = retired(&hub, &chain(p)).unwrap().unwrap();
        assert_eq!((r.successor.as_str(), r.final_height), ("merged", FINAL));
    }
    // Exactly once, and a retired parent's client takes no header past its final height.
    let s2 = Setup { hub, ..s };
    refused(&s2, good, "already exists");
    let late = HubMsg::UpdateClient {
        chain: chain("alpha"),
        update: s2.alpha.chain.update(FINAL, FINAL + 1),
    };
    refused(&s2, late, "no header above it");
}

#[test]
fn packets_for_a_retired_chain_are_answered_or_timed_out_at_its_final_height() {
    let s = setup();
    let (r, w) = run_at(&s.hub, s.now, |st, ctx| handle(st, ctx, register(&s)));
    r.unwrap();
    let mut hub = s.hub.clone();
    hub.apply(&w);
    // Before the merge, the hub had forwarded a packet to alpha (written here as the hub writes it).
    let pending = Packet {
        source: chain("gamma"),
        destination: chain("alpha"),
        sequence: 1,
        timeout_height: 0,
        // Far after the test's `now`: the packet's own deadline never passes here.
        timeout_time: Time::from_secs(4_000_000_000),
        payload: Payload::Transfer(TransferData {
            trace: DenomTrace {
                home: chain("gamma"),
                base: Denom::new("coin").unwrap(),
            },
            amount: Amount(5),
            sender: Address([1; 20]),
            receiver: Address([2; 20]),
        }),
    };
    let record = PacketRecord {
        commitment: pending.commitment(),
        destination: pending.destination.clone(),
        resolved: false,
    };
    let (r, w) = run_at(&hub, s.now, |st, _| {
        put_typed(st, &ns(), &hub_keys::receipt(&pending.source, 1), &record)?;
        st.put(
            &ns(),
            &hub_keys::forward(&pending.destination, &pending.source, 1),
            pending.commitment().0.to_vec(),
        )?;
        Ok::<_, Error>(())
    });
    r.unwrap();
    hub.apply(&w);
    // Alpha ended at FINAL without a receipt: its absence there resolves the packet as timed out (refunded at the
    // source) although the packet's own deadline is far away; at a height before FINAL it does not.
    let receipt = member_keys::receipt(&pending.source, 1);
    let absent = |h: u64| {
        s.alpha
            .chain
            .prove(h, &namespace(causeway_chain::xchain::types::NAMESPACE), &receipt)
    };
    let (value, proof) = absent(FINAL - 1);
    assert!(value.is_none());
    let early = HubMsg::TimeoutPacket {
        packet: pending.clone(),
        proof_height: FINAL - 1,
        proof,
    };
    let (r, _) = run_at(&hub, s.now, |st, ctx| handle(st, ctx, early));
    assert!(matches!(r, Err(Error::NotExpired { .. })), "{r:?}");
    let (_, proof) = absent(FINAL);
    let at_final = HubMsg::TimeoutPacket {
        packet: pending.clone(),
        proof_height: FINAL,
        proof,
    };
    let (r, w) = run_at(&hub, s.now, |st, ctx| handle(st, ctx, at_final));
    r.unwrap();
    hub.apply(&w);
    assert!(packet_record(&hub, &pending.source, 1).unwrap().unwrap().resolved);
    assert!(hub
        .get(
            &ns(),
            &hub_keys::forward(&pending.destination, &pending.source, 1)
        )
        .unwrap()
        .is_none());
    let outcome = hub
        .get(&ns(), &hub_keys::outcome(&pending.source, 1))
        .unwrap()
        .unwrap();
    assert_eq!(outcome, Outcome::TimedOut.commitment().0.to_vec());
}

/// A transfer of `base` (issued on `home`) from `source` to `destination`.
fn transfer(source: &str, destination: &str, home: &str, base: &str) -> Packet {
    Packet {
        source: chain(source),
        destination: chain(destination),
        sequence: 1,
        timeout_height: 0,
        timeout_time: Time::from_secs(4_000_000_000),
        payload: Payload::Transfer(TransferData {
            trace: DenomTrace {
                home: chain(home),
                base: Denom::new(base).unwrap(),
            },
            amount: Amount(5),
            sender: Address([1; 20]),
            receiver: Address([2; 20]),
        }),
    }
}

#[test]
fn assets_coming_home_to_a_retired_parent_are_routed_to_the_merged_chain() {
    let s = setup_bringing("asset:gold", "org/b");
    let before = transfer("gamma", "alpha", "alpha", "gold");
    assert_eq!(
        delivery_chain(&s.hub, &before).unwrap(),
        chain("alpha"),
        "no route before the merge"
    );
    let (r, w) = run_at(&s.hub, s.now, |st, ctx| handle(st, ctx, register(&s)));
    r.unwrap();
    let mut hub = s.hub.clone();
    hub.apply(&w);
    // Gold coming home to alpha goes to the merged chain, which holds alpha's gold and its escrow now.
    assert_eq!(delivery_chain(&hub, &before).unwrap(), chain("merged"));
    // Not routed: gamma's own asset going to alpha (it would mint vouchers on a chain that has stopped), an asset
    // alpha did not bring, and beta's data namespace (no asset, no packets).
    for p in [
        transfer("gamma", "alpha", "gamma", "gold"),
        transfer("gamma", "alpha", "alpha", "silver"),
        transfer("gamma", "beta", "beta", "b"),
    ] {
        assert_eq!(delivery_chain(&hub, &p).unwrap(), p.destination, "{p:?}");
    }
    // Routes chain: if the merged chain later gave gold to another chain, gold coming home to alpha goes there.
    let (r, w) = run_at(&hub, s.now, |st, _| {
        let gold = Denom::new("gold").unwrap().namespace();
        add_routes(st, &chain("merged"), [&gold].into_iter(), &chain("later"))
    });
    r.unwrap();
    hub.apply(&w);
    assert_eq!(delivery_chain(&hub, &before).unwrap(), chain("later"));
}
