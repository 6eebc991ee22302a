//! A client stored by parts behaves exactly as the whole client: the same verdict for every update, piece of
//! evidence and recovery, and the same client when reassembled, whatever heights are pruned in between.
#![allow(clippy::unwrap_used)]

use causeway_light_client::testgen::{ChainBuilder, Signers, TestChain};
use causeway_light_client::{LightClient, NativeClient, Suite};
use proptest::prelude::*;

use super::*;
use crate::state::{MemState, Overlay};

const LAST: u64 = 30;

fn test_chain() -> TestChain {
    ChainBuilder::new("alpha", Signers::equal(Suite::Ed25519, 4, 7)).build(LAST)
}

fn options(c: &TestChain, max: u32) -> TrustOptions {
    let mut options = c.options();
    options.max_consensus_states = max;
    options
}

/// The stored client reassembled, which must equal the whole one.
fn reassembled(slot: &Slot, state: &Overlay<MemState>) -> NativeClient {
    slot.load(state).unwrap().unwrap()
}

fn source(e: Error) -> NativeError {
    match e {
        Error::Client { source, .. } => source,
        other => panic!("expected a client error, got {other:?}"),
    }
}

#[derive(Clone, Debug)]
enum Op {
    /// Update to `target` from the `pick`-th kept height (modulo; a pick past the end names an unkept height).
    Update { pick: usize, target: u64 },
    /// Evidence of a fork at `target` from the `pick`-th kept height.
    Fork { pick: usize, target: u64 },
    /// Governance recovery at `target`.
    Recover { target: u64 },
}

fn arb_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (0usize..8, 2..=LAST).prop_map(|(pick, target)| Op::Update { pick, target }),
        1 => (0usize..8, 2..=LAST).prop_map(|(pick, target)| Op::Fork { pick, target }),
        1 => (2..=LAST).prop_map(|target| Op::Recover { target }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn a_client_stored_by_parts_behaves_as_the_whole_client(
        max in 1u32..6,
        ops in prop::collection::vec(arb_op(), 1..24),
    ) {
        let c = test_chain();
        let now = c.now_after(LAST);
        let mut whole = c.client(1, options(&c, max));
        let slot = Slot::of_member(c.chain_id());
        let mut state = Overlay::new(MemState::new());
        slot.create(&mut state, whole.clone()).unwrap();
        for op in ops {
            let kept: Vec<u64> = whole.trusted_heights().iter().map(|t| t.height).collect();
            let trusted = |pick: usize| kept.get(pick).copied().unwrap_or(LAST + 1 + pick as u64);
            match op {
                Op::Update { pick, target } => {
                    let from = trusted(pick);
                    if from >= target || from > LAST {
                        continue;
                    }
                    let update = c.update(from, target);
                    let expected = whole.verify_header(update.clone(), now).map(|o| o.height);
                    let got = slot.update(&mut state, update, now).map_err(source);
                    prop_assert_eq!(got, expected);
                }
                Op::Fork { pick, target } => {
                    let from = trusted(pick);
                    if from >= target || from > LAST {
                        continue;
                    }
                    let evidence = c.misbehaviour(from, target);
                    let expected = whole.check_misbehaviour(evidence.clone(), now);
                    let got = slot.misbehaviour(&mut state, evidence, now);
                    match expected {
                        Ok(true) => prop_assert!(got.is_ok()),
                        Ok(false) => prop_assert!(matches!(got, Err(Error::NoMisbehaviour))),
                        Err(e) => prop_assert_eq!(source(got.unwrap_err()), e),
                    }
                }
                Op::Recover { target } => {
                    let block = c.block(target);
                    let expected = whole.recover(&block.header, now);
                    let got = slot
                        .recover(&mut state, &block.header, &block.next_validators, now)
                        .map_err(source);
                    prop_assert_eq!(got, expected);
                }
            }
            prop_assert_eq!(&reassembled(&slot, &state), &whole);
            // Exactly the kept heights are stored: pruned ones are deleted.
            for h in 1..=LAST {
                let stored = state.get(slot.namespace(), &slot.height_key(h)).unwrap().is_some();
                prop_assert_eq!(stored, whole.trusted(h).is_some(), "height {}", h);
            }
        }
    }
}

#[test]
fn proofs_read_only_the_proven_height() {
    let c = test_chain();
    let now = c.now_after(LAST);
    let slot = Slot::of_hub();
    let mut state = Overlay::new(MemState::new());
    fails_with(slot.update(&mut state, c.update(1, 2), now), |e| {
        matches!(e, Error::NoHubClient)
    });
    slot.create(&mut state, c.client(1, c.options())).unwrap();
    slot.update(&mut state, c.update(1, 9), now).unwrap();
    assert_eq!(slot.time_at(&state, 9).unwrap(), c.time(9));
    assert!(matches!(
        source(slot.time_at(&state, 5).unwrap_err()),
        NativeError::NoConsensusState { height: 5 }
    ));
    // A kept height whose part is missing is corruption, not an absent height.
    state.delete(slot.namespace(), &slot.height_key(9)).unwrap();
    assert!(matches!(
        slot.update(&mut state, c.update(9, 10), now),
        Err(Error::Fatal(_))
    ));
}

fn fails_with<T: std::fmt::Debug>(r: Result<T>, expected: impl Fn(&Error) -> bool) {
    let e = r.unwrap_err();
    assert!(expected(&e), "unexpected {e:?}");
}
