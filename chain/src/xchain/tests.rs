//! Endpoint rules that need no hub: governance of the hub client, sends, legs, and the all-or-nothing scratch
//! state. The protocol with a real hub is tested end to end in `tests/tests/hub_protocol.rs` and `hub_sim.rs`.
#![allow(clippy::unwrap_used)]

use causeway_light_client::{
    Address, ChainId, Hash, HashAlg, Header, SecretKey, Suite, Time, TrustOptions, Validator, ValidatorSet,
};

use super::types::{AtomicSpec, DenomTrace, Leg, LegState};
use super::*;
use crate::exec::{BlockContext, TxContext};
use crate::message::{Amount, Denom};
use crate::state::{MemState, Overlay, StateRead, WriteSet};

fn chain(s: &str) -> ChainId {
    ChainId::new(s).unwrap()
}

fn set() -> ValidatorSet {
    let key = SecretKey::from_bytes(Suite::Ed25519, &[3; 32]).unwrap();
    ValidatorSet::new(vec![Validator {
        pub_key: key.public_key(),
        power: 10,
    }])
    .unwrap()
}

fn hub_header(next: &ValidatorSet) -> Header {
    Header {
        app_version: 1,
        chain_id: chain("hub"),
        height: 5,
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

struct Env {
    block: BlockContext,
    validators: ValidatorSet,
}

impl Env {
    fn new(time: u64) -> Env {
        Env {
            block: BlockContext {
                chain_id: chain("alpha"),
                height: 10,
                time: Time::from_secs(time),
                proposer: Address([7; 20]),
            },
            validators: set(),
        }
    }

    fn ctx(&self, sender: Address) -> TxContext<'_> {
        TxContext {
            block: &self.block,
            sender,
            validators: &self.validators,
            extensions: &[],
        }
    }
}

/// A member state with the `cash` asset (user 1 holds 1,000) and, optionally, a hub client.
fn base(with_client: bool) -> MemState {
    let env = Env::new(1_001);
    let mut state = MemState::new();
    let mut o = Overlay::new(&state);
    assets::issue(
        &mut o,
        Address([1; 20]),
        Address([1; 20]),
        &Denom::new("cash").unwrap(),
        Amount(1_000),
    )
    .unwrap();
    if with_client {
        let next = set();
        let gov = EndpointGov::CreateHubClient {
            options: TrustOptions::new(chain("hub"), HashAlg::Sha256),
            header: hub_header(&next),
            next_validators: next,
        };
        governance(&mut o, &env.ctx(Address([9; 20])), gov).unwrap();
    }
    o.commit_tx();
    let writes = o.into_write_set();
    state.apply(&writes);
    state
}

/// Run `f` on a scratch overlay over `state`: its result and its writes.
fn run<T>(state: &MemState, f: impl FnOnce(&mut Overlay<&MemState>) -> T) -> (T, WriteSet) {
    let mut o = Overlay::new(state);
    let out = f(&mut o);
    o.commit_tx();
    (out, o.into_write_set())
}

fn transfer(to: &str, denom: &str, amount: u128) -> EndpointMsg {
    EndpointMsg::SendTransfer {
        destination: chain(to),
        denom: Denom::new(denom).unwrap(),
        amount: Amount(amount),
        receiver: Address([2; 20]),
        timeout_height: 0,
        timeout_time: Time::from_secs(2_000),
    }
}

#[test]
fn hub_client_is_created_once_and_checked() {
    let state = base(true);
    assert!(load_hub_client(&state).unwrap().is_some());
    let env = Env::new(1_001);
    let next = set();
    let again = EndpointGov::CreateHubClient {
        options: TrustOptions::new(chain("hub"), HashAlg::Sha256),
        header: hub_header(&next),
        next_validators: next.clone(),
    };
    let (r, w) = run(&state, |o| governance(o, &env.ctx(Address([9; 20])), again));
    assert!(matches!(r, Err(Error::ClientExists(_))));
    assert!(w.is_empty());

    // A validator set that is not the header's next set is refused.
    let other = ValidatorSet::new(vec![Validator {
        pub_key: SecretKey::from_bytes(Suite::Ed25519, &[4; 32])
            .unwrap()
            .public_key(),
        power: 1,
    }])
    .unwrap();
    let bad = EndpointGov::CreateHubClient {
        options: TrustOptions::new(chain("hub"), HashAlg::Sha256),
        header: hub_header(&next),
        next_validators: other,
    };
    let (r, w) = run(&base(false), |o| governance(o, &env.ctx(Address([9; 20])), bad));
    assert!(matches!(r, Err(Error::Governance(_))));
    assert!(w.is_empty());
    // So is an expired header (the trusting period is 14 days).
    let late = Env::new(1_000 + 15 * 24 * 3600);
    let expired = EndpointGov::CreateHubClient {
        options: TrustOptions::new(chain("hub"), HashAlg::Sha256),
        header: hub_header(&next),
        next_validators: next,
    };
    let (r, _) = run(&base(false), |o| {
        governance(o, &late.ctx(Address([9; 20])), expired)
    });
    assert!(matches!(
        r,
        Err(Error::Client {
            source: NativeError::TrustedStateExpired { .. },
            ..
        })
    ));
}

#[test]
fn sends_escrow_and_commit_or_change_nothing() {
    let env = Env::new(1_001);
    let user = Address([1; 20]);
    // Without a hub client nothing can be sent.
    let (r, w) = run(&base(false), |o| {
        handle(o, &env.ctx(user), transfer("beta", "cash", 5))
    });
    assert!(matches!(r, Err(Error::NoHubClient)));
    assert!(w.is_empty());

    let state = base(true);
    for (msg, check) in [
        (transfer("alpha", "cash", 5), "destination is this chain"),
        (transfer("beta", "cash", 0), "positive"),
        (transfer("beta", "cash", 5_000), "insufficient"),
        (transfer("beta", "gold", 5), "unknown asset"),
    ] {
        let (r, w) = run(&state, |o| handle(o, &env.ctx(user), msg));
        let e = r.unwrap_err();
        assert!(e.to_string().contains(check), "{e}");
        assert!(w.is_empty(), "{e} wrote state");
    }

    let (r, w) = run(&state, |o| {
        let events = handle(o, &env.ctx(user), transfer("beta", "cash", 5))?;
        let second = handle(o, &env.ctx(user), transfer("beta", "cash", 7))?;
        Ok::<_, Error>((
            events,
            second,
            escrowed(o, &chain("beta"), &Denom::new("cash").unwrap())?,
        ))
    });
    let (first, second, escrow) = r.unwrap();
    assert_eq!(first[0].attribute("sequence"), Some("1"));
    assert_eq!(second[0].attribute("sequence"), Some("2"));
    assert_eq!(escrow, 12);
    let ns = namespace(NAMESPACE);
    assert!(w.staged(&ns, &member_keys::commitment(1)).is_some());
    assert!(w.staged(&ns, &member_keys::commitment(2)).is_some());
}

#[test]
fn vouchers_only_go_home() {
    let env = Env::new(1_001);
    let state = base(true);
    let trace = DenomTrace {
        home: chain("beta"),
        base: Denom::new("cash").unwrap(),
    };
    let voucher = trace.voucher_denom();
    let (r, w) = run(&state, |o| {
        mint_voucher(o, &trace, Address([1; 20]), Amount(50))?;
        let wrong = handle(
            o,
            &env.ctx(Address([1; 20])),
            transfer("gamma", voucher.as_str(), 5),
        );
        assert!(matches!(wrong, Err(Error::Transfer(_))), "{wrong:?}");
        handle(
            o,
            &env.ctx(Address([1; 20])),
            transfer("beta", voucher.as_str(), 20),
        )?;
        Ok::<_, Error>(assets::meta(o, &voucher)?.map(|m| m.supply))
    });
    // Going home burns: 50 minted, 20 sent.
    assert_eq!(r.unwrap(), Some(Amount(30)));
    assert!(!w.is_empty());
}

#[test]
fn all_or_nothing_keeps_only_successes() {
    let state = base(true);
    let ns = namespace(NAMESPACE);
    let (r, w) = run(&state, |o| {
        let failed = all_or_nothing(o, |s| {
            s.put(&ns, b"scratch", vec![1])?;
            Err::<(), _>(Error::Transfer("no".into()))
        })?;
        assert!(failed.is_err());
        assert_eq!(o.get(&ns, b"scratch")?, None);
        let kept = all_or_nothing(o, |s| {
            s.put(&ns, b"kept", vec![2])?;
            Ok(())
        })?;
        assert!(kept.is_ok());
        Ok::<_, Error>(())
    });
    r.unwrap();
    assert!(w.staged(&ns, b"scratch").is_none());
    assert_eq!(w.staged(&ns, b"kept"), Some(&Some(vec![2])));
}

fn spec(deadline: u64) -> AtomicSpec {
    let leg = |c: &str, from: u8| Leg {
        chain: chain(c),
        from: Address([from; 20]),
        to: Address([9; 20]),
        denom: Denom::new("cash").unwrap(),
        amount: Amount(100),
    };
    AtomicSpec {
        salt: 1,
        deadline: Time::from_secs(deadline),
        legs: vec![leg("alpha", 1), leg("beta", 2)],
    }
}

#[test]
fn legs_are_prepared_by_their_payer_before_the_deadline_once() {
    let env = Env::new(1_001);
    let state = base(true);
    let s = spec(1_100);
    let id = s.id();
    let prepare = |index| EndpointMsg::PrepareLeg {
        spec: s.clone(),
        index,
    };
    let cases: [(Address, u32, &str); 3] = [
        (Address([2; 20]), 0, "paid by"),
        (Address([1; 20]), 1, "not here"),
        (Address([1; 20]), 5, "no leg"),
    ];
    for (who, index, check) in cases {
        let (r, w) = run(&state, |o| handle(o, &env.ctx(who), prepare(index)));
        let e = r.unwrap_err();
        assert!(e.to_string().contains(check), "{e}");
        assert!(w.is_empty());
    }
    let late = Env::new(1_100);
    let (r, _) = run(&state, |o| handle(o, &late.ctx(Address([1; 20])), prepare(0)));
    assert!(r.unwrap_err().to_string().contains("deadline"));

    let (r, w) = run(&state, |o| {
        handle(o, &env.ctx(Address([1; 20])), prepare(0))?;
        let again = handle(o, &env.ctx(Address([1; 20])), prepare(0));
        assert!(matches!(again, Err(Error::Atomic(_))));
        leg_state(o, &id, 0)
    });
    assert_eq!(r.unwrap(), Some(LegState::Prepared));
    let ns = namespace(NAMESPACE);
    assert_eq!(
        w.staged(&ns, &member_keys::prepared(&id, 0)),
        Some(&Some(s.prepared_commitment(0).0.to_vec()))
    );

    // A single-leg or zero-amount deal is malformed.
    let mut one = spec(1_100);
    one.legs.truncate(1);
    let (r, _) = run(&state, |o| {
        handle(
            o,
            &env.ctx(Address([1; 20])),
            EndpointMsg::PrepareLeg { spec: one, index: 0 },
        )
    });
    assert!(matches!(r, Err(Error::Decode(_))));
}

#[test]
fn malformed_bodies_are_refused() {
    let env = Env::new(1_001);
    let state = base(true);
    let mut o = Overlay::new(&state);
    let r = Endpoint.handle(&mut o, &env.ctx(Address([1; 20])), &[1, 99, 0]);
    assert!(matches!(r, Err(Fail::Tx(TxFailure::Rejected(_)))));
    let r = Endpoint.governance(&mut o, &env.ctx(Address([1; 20])), &[]);
    assert!(matches!(r, Err(Fail::Tx(TxFailure::Rejected(_)))));
}

#[test]
fn lineage_plans_close_sends_and_count_what_is_in_flight() {
    use crate::exec::lineage::{schedule_merge_out, schedule_split, MergePlan, SplitPlan};
    use crate::genesis::Profile;
    let env = Env::new(1_001);
    let user = Address([1; 20]);
    let cash = Denom::new("cash").unwrap();
    let state = base(true);
    let split = SplitPlan {
        height: 12,
        namespaces: vec![cash.namespace()],
        child: chain("alpha-cash"),
        validators: set().validators().to_vec(),
        profile: Profile::Permissioned,
    };
    let (r, w) = run(&state, |o| {
        handle(o, &env.ctx(user), transfer("beta", "cash", 5))?;
        handle(o, &env.ctx(user), transfer("beta", "cash", 7))?;
        let counted = (pending_sends(o, &cash)?, pending_sends_total(o)?);
        assets::issue(o, user, user, &Denom::new("gold").unwrap(), Amount(10))?;
        schedule_split(o, &env.ctx(user), &split)?;
        let closed = handle(o, &env.ctx(user), transfer("beta", "cash", 1)).unwrap_err();
        // An asset that stays may still leave.
        handle(o, &env.ctx(user), transfer("beta", "gold", 1))?;
        Ok::<_, Error>((counted, closed, pending_sends_total(o)?))
    });
    let (counted, closed, total) = r.unwrap();
    assert_eq!(counted, (2, 2));
    assert!(
        closed.to_string().contains("cross-chain sends are closed"),
        "{closed}"
    );
    assert_eq!(total, 3);
    // The escrow sits in the asset's namespace, so it moves with the asset.
    let escrow = w.staged(&cash.namespace(), &member_keys::escrow(&chain("beta")));
    assert_eq!(escrow, Some(&Some(borsh::to_vec(&12u128).unwrap())));
    assert!(w
        .staged(&namespace(NAMESPACE), &member_keys::escrow(&chain("beta")))
        .is_none());

    // A merge-out is refused while the chain holds vouchers; once scheduled, it closes every send and takes no
    // new vouchers.
    let merge = |ours: Vec<Namespace>| MergePlan {
        final_height: 12,
        merged: chain("merged"),
        partner: chain("gamma"),
        ours,
        theirs: vec![],
        validators: set().validators().to_vec(),
        profile: Profile::Permissioned,
    };
    let trace = DenomTrace {
        home: chain("beta"),
        base: cash.clone(),
    };
    let mut held = base(true);
    let (r, w) = run(&held, |o| mint_voucher(o, &trace, user, Amount(3)));
    r.unwrap();
    held.apply(&w);
    let voucher = trace.voucher_denom();
    let (r, w) = run(&held, |o| {
        schedule_merge_out(
            o,
            &env.ctx(user),
            &merge(vec![cash.namespace(), voucher.namespace()]),
        )
    });
    let e = r.unwrap_err();
    assert!(format!("{e:?}").contains("send them home first"), "{e:?}");
    assert!(w.is_empty());
    let (r, _) = run(&state, |o| {
        schedule_merge_out(o, &env.ctx(user), &merge(vec![cash.namespace()]))?;
        let closed = handle(o, &env.ctx(user), transfer("beta", "cash", 1)).unwrap_err();
        let incoming = Packet {
            source: chain("beta"),
            destination: chain("alpha"),
            sequence: 1,
            timeout_height: 0,
            timeout_time: Time::from_secs(2_000),
            payload: Payload::Transfer(TransferData {
                trace: DenomTrace {
                    home: chain("beta"),
                    base: cash.clone(),
                },
                amount: Amount(1),
                sender: user,
                receiver: user,
            }),
        };
        let refused = apply_payload(o, &chain("alpha"), &incoming).unwrap_err();
        Ok::<_, Error>((closed, refused))
    });
    let (closed, refused) = r.unwrap();
    assert!(
        closed.to_string().contains("cross-chain sends are closed"),
        "{closed}"
    );
    assert!(refused.to_string().contains("takes no new vouchers"), "{refused}");
}
