//! Execution tests: each module's rules, transaction atomicity, governance timing, determinism and conservation.

use causeway_light_client::{Namespace, Validator};
use proptest::prelude::*;

use super::test_support::{denom, TestChain};
use super::*;
use crate::exec::governance::ProposalStatus;
use crate::message::{Amount, Bytes, GovAction, Message, OrgId};

fn transfer(to: &causeway_light_client::SecretKey, amount: u128) -> Message {
    Message::Transfer { to: TestChain::addr(to), denom: denom("cash"), amount: Amount(amount) }
}

fn balance(c: &TestChain, who: &causeway_light_client::SecretKey, d: &str) -> u128 {
    assets::balance(&c.state, &denom(d), &TestChain::addr(who)).unwrap().0
}

#[test]
fn transfers_move_funds_and_a_bad_transaction_changes_nothing_but_its_nonce() {
    let mut c = TestChain::new();
    let (a, b) = (c.users[0].clone(), c.users[1].clone());
    let ok = c.tx(&a, vec![transfer(&b, 10)]);
    // Two messages, the second overdraws: the whole transaction fails, the first transfer is undone.
    let bad = c.tx(&a, vec![transfer(&b, 5), transfer(&b, 10_000_000)]);
    let out = c.block(&[ok, bad]);
    assert!(out.results[0].is_ok());
    assert!(matches!(out.results[1].failure, Some(TxFailure::InsufficientFunds { .. })));
    assert!(out.results[1].events.is_empty());
    assert_eq!(balance(&c, &a, "cash"), 999_990);
    assert_eq!(balance(&c, &b, "cash"), 1_000_010);
    // The failed transaction used its nonce: the account is at 2.
    assert_eq!(accounts::account(&c.state, &TestChain::addr(&a)).unwrap().nonce, 2);
}

#[test]
fn a_wrong_nonce_is_refused_without_touching_state() {
    let mut c = TestChain::new();
    let (a, b) = (c.users[0].clone(), c.users[1].clone());
    let replay = c.tx_with_nonce(&a, 0, vec![transfer(&b, 1)]);
    let out = c.block(std::slice::from_ref(&replay));
    assert!(out.results[0].is_ok());
    let before = c.state.clone();
    let out = c.block(&[replay]);
    assert_eq!(out.results[0].failure, Some(TxFailure::BadNonce { expected: 1, got: 0 }));
    let future = c.tx_with_nonce(&a, 7, vec![transfer(&b, 1)]);
    let out = c.block(&[future]);
    assert_eq!(out.results[0].failure, Some(TxFailure::BadNonce { expected: 1, got: 7 }));
    // Only the validator bookkeeping may differ; balances and nonces are untouched.
    assert_eq!(balance(&c, &a, "cash"), assets::balance(&before, &denom("cash"), &TestChain::addr(&a)).unwrap().0);
    assert_eq!(accounts::account(&c.state, &TestChain::addr(&a)).unwrap().nonce, 1);
}

#[test]
fn only_the_issuer_issues_and_burning_reduces_supply() {
    let mut c = TestChain::new();
    let (issuer, other) = (c.users[0].clone(), c.users[1].clone());
    let t1 = c.tx(&issuer, vec![Message::Issue { denom: denom("cash"), amount: Amount(50), to: TestChain::addr(&other) }]);
    let t2 = c.tx(&other, vec![Message::Issue { denom: denom("cash"), amount: Amount(50), to: TestChain::addr(&other) }]);
    let t3 = c.tx(&other, vec![Message::Issue { denom: denom("bond"), amount: Amount(7), to: TestChain::addr(&other) }]);
    let t4 = c.tx(&other, vec![Message::Burn { denom: denom("cash"), amount: Amount(20) }]);
    let t5 = c.tx(&other, vec![transfer(&issuer, 1), Message::Transfer {
        to: TestChain::addr(&issuer),
        denom: denom("gold"),
        amount: Amount(1),
    }]);
    let out = c.block(&[t1, t2, t3, t4, t5]);
    assert!(out.results[0].is_ok());
    assert!(matches!(out.results[1].failure, Some(TxFailure::NotIssuer { .. })));
    assert!(out.results[2].is_ok(), "a new denomination is created by its first issue");
    assert!(out.results[3].is_ok());
    assert_eq!(out.results[4].failure, Some(TxFailure::UnknownAsset("gold".into())));
    assert_eq!(balance(&c, &other, "cash"), 1_000_030);
    assert_eq!(balance(&c, &other, "bond"), 7);
    let meta = assets::meta(&c.state, &denom("cash")).unwrap().unwrap();
    assert_eq!(meta.supply.0, 4_000_000 + 50 - 20);
}

#[test]
fn records_are_written_by_members_only() {
    let mut c = TestChain::new();
    let (admin, member, outsider) = (c.users[0].clone(), c.users[1].clone(), c.users[2].clone());
    let ns = Namespace::new("org/acme/invoices").unwrap();
    let put = |key: &str| Message::PutRecord { namespace: ns.clone(), key: key.into(), value: Bytes(b"{\"total\":12}".to_vec()) };
    let t1 = c.tx(&outsider, vec![put("inv-1")]);
    let t2 = c.tx(&admin, vec![Message::AddMember { org: OrgId::new("acme").unwrap(), member: TestChain::addr(&member) }]);
    let t3 = c.tx(&member, vec![put("inv-1")]);
    let t4 = c.tx(&member, vec![Message::PutRecord {
        namespace: Namespace::new("sys/accounts").unwrap(),
        key: "x".into(),
        value: Bytes(vec![1]),
    }]);
    let t5 = c.tx(&member, vec![Message::AddMember { org: OrgId::new("acme").unwrap(), member: TestChain::addr(&outsider) }]);
    let out = c.block(&[t1, t2, t3, t4, t5]);
    assert!(matches!(out.results[0].failure, Some(TxFailure::NotAuthorized { .. })));
    assert!(out.results[1].is_ok());
    assert!(out.results[2].is_ok());
    assert!(matches!(out.results[3].failure, Some(TxFailure::NotRecordNamespace(_))));
    assert!(matches!(out.results[4].failure, Some(TxFailure::NotAuthorized { .. })), "only the admin adds members");
    let rec = records::get(&c.state, &ns, "inv-1").unwrap().unwrap();
    assert_eq!(rec.writer, TestChain::addr(&member));
    assert_eq!(rec.height, 1);
    assert_eq!(out.results[2].events[0].attribute("namespace"), Some("org/acme/invoices"));
}

fn new_set(c: &TestChain, powers: &[u64]) -> Vec<Validator> {
    c.validators.iter().zip(powers).map(|(k, p)| Validator { pub_key: k.public_key(), power: *p }).collect()
}

#[test]
fn validator_changes_take_effect_two_heights_after_the_decision() {
    let mut c = TestChain::new();
    let vals = c.validators.clone();
    let original = governance::current_validators(&c.state).unwrap();
    let action = GovAction::SetValidators { validators: new_set(&c, &[10, 10, 10, 30]) };
    // Height 1: proposal by v0 (25%); height 2: v1 (50%), v2 (75%: decided).
    let t = c.tx(&vals[0], vec![Message::Propose { action }]);
    let out = c.block(&[t]);
    assert!(out.results[0].is_ok(), "{:?}", out.results[0]);
    let t1 = c.tx(&vals[1], vec![Message::Vote { proposal: 0, approve: true }]);
    let t2 = c.tx(&vals[2], vec![Message::Vote { proposal: 0, approve: true }]);
    let t3 = c.tx(&vals[3], vec![Message::Vote { proposal: 0, approve: true }]);
    let out = c.block(&[t1, t2, t3]);
    assert!(out.results[1].events.iter().any(|e| e.kind == "gov.decided"));
    assert_eq!(out.results[2].failure, Some(TxFailure::ProposalClosed(0)));
    assert!(matches!(governance::proposal(&c.state, 0).unwrap().unwrap().status, ProposalStatus::Passed { height: 2 }));
    // Decided at 2: height 3 still signed by the old set, height 4 by the new one.
    assert_eq!(out.next_validators, original, "validators of height 3");
    let out = c.block(&[]);
    assert_eq!(out.next_validators.total_power(), 60, "validators of height 4");
    assert_eq!(out.end_events[0].kind, "validators.changed");
    let out = c.block(&[]);
    assert_eq!(out.next_validators.total_power(), 60);
}

#[test]
fn governance_is_for_validators_and_rejection_is_final() {
    let mut c = TestChain::new();
    let vals = c.validators.clone();
    let user = c.users[1].clone();
    let admit = GovAction::AdmitOrg { org: OrgId::new("globex").unwrap(), admin: TestChain::addr(&user) };
    let t0 = c.tx(&user, vec![Message::Propose { action: admit.clone() }]);
    let t1 = c.tx(&vals[0], vec![Message::Propose { action: admit }]);
    let t2 = c.tx(&vals[1], vec![Message::Vote { proposal: 0, approve: false }]);
    let t3 = c.tx(&vals[2], vec![Message::Vote { proposal: 0, approve: false }]);
    let t4 = c.tx(&vals[3], vec![Message::Vote { proposal: 0, approve: true }]);
    let t5 = c.tx(&vals[0], vec![Message::Vote { proposal: 9, approve: true }]);
    let out = c.block(&[t0, t1, t2, t3, t4, t5]);
    assert!(matches!(out.results[0].failure, Some(TxFailure::NotValidator(_))));
    assert!(out.results[1].is_ok() && out.results[2].is_ok());
    assert!(out.results[3].events.iter().any(|e| e.attribute("outcome") == Some("rejected")));
    assert_eq!(out.results[4].failure, Some(TxFailure::ProposalClosed(0)));
    assert_eq!(out.results[5].failure, Some(TxFailure::UnknownProposal(9)));
    assert!(governance::org(&c.state, &OrgId::new("globex").unwrap()).unwrap().is_none());
}

#[test]
fn removed_organisations_can_no_longer_write() {
    let mut c = TestChain::new();
    let vals = c.validators.clone();
    let admin = c.users[0].clone();
    let remove = GovAction::RemoveOrg { org: OrgId::new("acme").unwrap() };
    let mut txs = vec![c.tx(&vals[0], vec![Message::Propose { action: remove }])];
    for v in &vals[1..3] {
        txs.push(c.tx(v, vec![Message::Vote { proposal: 0, approve: true }]));
    }
    txs.push(c.tx(&admin, vec![Message::PutRecord {
        namespace: Namespace::new("org/acme").unwrap(),
        key: "k".into(),
        value: Bytes(vec![1]),
    }]));
    let out = c.block(&txs);
    assert!(out.results.iter().take(3).all(|r| r.is_ok()));
    assert!(matches!(out.results[3].failure, Some(TxFailure::UnknownOrg(_))));
}

#[test]
fn execution_is_deterministic() {
    let mut c = TestChain::new();
    let users = c.users.clone();
    let txs: Vec<_> = (0..20).map(|i| c.tx(&users[i % 4], vec![transfer(&users[(i + 1) % 4], i as u128 + 1)])).collect();
    let ctx = BlockContext {
        chain_id: c.chain_id.clone(),
        height: 1,
        time: causeway_light_client::Time(5),
        proposer: TestChain::addr(&c.validators[0]),
    };
    let a = execute_block(&c.state, &ctx, &txs, &[]).unwrap();
    let b = execute_block(&c.state, &ctx, &txs, &[]).unwrap();
    assert_eq!(a.writes, b.writes);
    assert_eq!(a.results, b.results);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Random transfers, issues and burns (many of them failing): supply always equals the sum of balances,
    /// and a failed transaction moves nothing.
    #[test]
    fn supply_is_conserved(ops in proptest::collection::vec((0usize..4, 0usize..4, 0u8..3, 1u128..600_000), 1..40)) {
        let mut c = TestChain::new();
        let users = c.users.clone();
        let txs: Vec<_> = ops.iter().map(|(from, to, kind, amount)| {
            let m = match kind {
                0 => transfer(&users[*to], *amount),
                1 => Message::Issue { denom: denom("cash"), amount: Amount(*amount), to: TestChain::addr(&users[*to]) },
                _ => Message::Burn { denom: denom("cash"), amount: Amount(*amount) },
            };
            c.tx(&users[*from], vec![m])
        }).collect();
        let before: Vec<u128> = users.iter().map(|u| balance(&c, u, "cash")).collect();
        let out = c.block(&txs);
        let after: Vec<u128> = users.iter().map(|u| balance(&c, u, "cash")).collect();
        let supply = assets::meta(&c.state, &denom("cash")).unwrap().unwrap().supply.0;
        prop_assert_eq!(supply, after.iter().sum::<u128>());
        // Replaying the successful transactions' effects by hand gives the same balances.
        let mut expect = before.clone();
        for ((from, to, kind, amount), r) in ops.iter().zip(&out.results) {
            if !r.is_ok() { continue; }
            match kind {
                0 => { expect[*from] -= amount; expect[*to] += amount; }
                1 => { expect[*to] += amount; }
                _ => { expect[*from] -= amount; }
            }
        }
        prop_assert_eq!(expect, after);
    }
}
