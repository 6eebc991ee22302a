//! The hub side of a split: a member commits a split record by governance; the hub proves that record with the
//! member's client and registers the child from a child header signed by the validators the record names. And
//! what must be refused, each without writing anything: a tampered record, a record claimed for another parent, a
//! header signed by other validators, a certificate for another block, a second registration. And transfers across
//! the split: the split waits for the moving coin's packets in flight, and vouchers coming home to the parent
//! afterwards are routed by the hub to the child, which releases them from the escrow that moved with the coin.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use causeway_chain::exec::lineage::{self, LineagePlan, SplitPlan, LINEAGE};
use causeway_chain::exec::TxResult;
use causeway_chain::genesis::{Genesis, Profile};
use causeway_chain::ledger::{self, RecordEvidence, RecordKind, SplitFiles};
use causeway_chain::message::{Denom, GovAction, Message};
use causeway_chain::testkit::{genesis, TestChain};
use causeway_chain::xchain::types::{member_keys, DenomTrace, Packet};
use causeway_chain::xchain::{self, Endpoint};
use causeway_hub::HubMsg;
use causeway_light_client::{
    Canonical, ChainId, CommitCertificate, Hash, HashAlg, Header, LightClient, SecretKey, Suite, Validator,
    ValidatorSet,
};
use causeway_tests::alliance::{pass, Alliance, Job, Knowledge, Target, COIN};

const ALPHA: usize = 0;
const BETA: usize = 1;

fn relayer() -> SecretKey {
    SecretKey::from_bytes(Suite::Ed25519, &[250; 32]).unwrap()
}

/// Submit `msgs` to the hub as the relayer and produce a block everywhere; the transaction's result.
fn on_hub(a: &mut Alliance, msgs: Vec<Message>) -> TxResult {
    let i = a.hub.submit(&relayer(), msgs);
    let blocks = a.produce_all();
    let (_, hub_block) = blocks.into_iter().find(|(t, _)| *t == causeway_tests::alliance::Target::Hub).unwrap();
    hub_block.results.txs[i].clone()
}

/// A child chain with its own validators, producing its first block.
struct Child {
    chain: TestChain,
    _dir: tempfile::TempDir,
}

impl Child {
    fn start(id: &str) -> Child {
        let dir = tempfile::tempdir().unwrap();
        let (g, keys) = genesis(id, 4, Suite::Ed25519, HashAlg::Sha256);
        let mut chain = TestChain::open(dir.path(), g, keys, vec![Endpoint::extension()]).unwrap();
        chain.produce(vec![]).unwrap();
        Child { chain, _dir: dir }
    }

    fn validators(&self) -> Vec<Validator> {
        let set = self.chain.app().validators_at(1).unwrap();
        set.validators().to_vec()
    }

    fn header_and_commit(&self) -> (Header, CommitCertificate) {
        let header = self.chain.app().block(1).unwrap().unwrap().header;
        let set = self.chain.app().validators_at(1).unwrap();
        let commit = self.chain.certify(&header, &set).unwrap();
        (header, commit)
    }
}

/// Alpha splits its coin namespace off to `child` (validators `validators`) by governance; the record.
fn split_alpha(a: &mut Alliance, child: &str, validators: Vec<Validator>) -> lineage::SplitRecord {
    let height = a.members[ALPHA].height() + 3;
    let plan = SplitPlan {
        height,
        namespaces: vec![Denom::new(COIN).unwrap().namespace()],
        child: ChainId::new(child).unwrap(),
        validators,
        profile: Profile::Permissioned,
    };
    pass(&mut a.members[ALPHA], vec![GovAction::ScheduleSplit { plan }], 1);
    while a.members[ALPHA].height() < height {
        for (_, c) in a.produce_all() {
            assert!(c.results.txs.iter().all(|r| r.is_ok()), "{:?}", c.results.txs);
        }
    }
    lineage::split_record(&a.members[ALPHA].view(), height).unwrap().expect("alpha committed its split record")
}

/// The registration message for `record`, proven at alpha's latest height (the hub's client is brought there).
fn register(a: &mut Alliance, record: &lineage::SplitRecord, header: Header, commit: CommitCertificate) -> HubMsg {
    let (update, at) = a.update_on_hub(ALPHA);
    if !update.is_empty() {
        assert!(on_hub(a, update).is_ok());
    }
    let key = lineage::split_record_key(record.height);
    let (value, proof) = a.members[ALPHA].prove(at, LINEAGE, &key);
    assert_eq!(value, Some(record.encode()), "alpha's state holds the record as committed");
    HubMsg::RegisterSplitChild {
        parent: a.members[ALPHA].id(),
        proof_height: at,
        record: Box::new(record.clone()),
        proof,
        header: Box::new(header),
        commit,
    }
}

fn refused(r: &TxResult, what: &str) {
    let f = r.failure.as_ref().unwrap_or_else(|| panic!("{what} was accepted"));
    assert!(f.to_string().contains(what), "expected a refusal about {what:?}, got: {f}");
}

#[test]
fn the_hub_registers_a_split_child_from_the_parents_proven_record() {
    let mut a = Alliance::new(1, 2);
    let child = Child::start("alpha-coin");
    let record = split_alpha(&mut a, "alpha-coin", child.validators());
    let (header, commit) = child.header_and_commit();
    let msg = register(&mut a, &record, header.clone(), commit.clone());

    // Refusals first: nothing written.
    let mut tampered = msg.clone();
    if let HubMsg::RegisterSplitChild { record, .. } = &mut tampered {
        record.namespaces[0].1 = Hash([9; 32]);
    }
    refused(&on_hub(&mut a, vec![tampered.into_message()]), "state proof");

    let mut other_parent = msg.clone();
    if let HubMsg::RegisterSplitChild { parent, .. } = &mut other_parent {
        *parent = ChainId::new("beta").unwrap();
    }
    refused(&on_hub(&mut a, vec![other_parent.into_message()]), "not beta's");

    let impostor = Child::start("alpha-coin-x");
    let (mut foreign_header, _) = impostor.header_and_commit();
    foreign_header.chain_id = record.child.clone();
    let foreign_set = ValidatorSet::new(impostor.validators()).unwrap();
    let foreign_commit = impostor.chain.certify(&foreign_header, &foreign_set).unwrap();
    let mut wrong_signers = msg.clone();
    if let HubMsg::RegisterSplitChild { header, commit, .. } = &mut wrong_signers {
        **header = foreign_header;
        *commit = foreign_commit;
    }
    refused(&on_hub(&mut a, vec![wrong_signers.into_message()]), "not the ones the record names");

    let mut other_block = msg.clone();
    if let HubMsg::RegisterSplitChild { header, .. } = &mut other_block {
        header.state_root = Hash([7; 32]);
    }
    refused(&on_hub(&mut a, vec![other_block.into_message()]), "another block");
    assert!(causeway_hub::load_client(&a.hub.view(), &record.child).unwrap().is_none());
    assert!(causeway_hub::lineage(&a.hub.view(), &record.child).unwrap().is_none());

    // The genuine registration.
    let r = on_hub(&mut a, vec![msg.clone().into_message()]);
    assert!(r.is_ok(), "{:?}", r.failure);
    let e = r.events.iter().find(|e| e.kind == "hub.split_child_registered").expect("event");
    assert_eq!(e.attribute("child"), Some("alpha-coin"));
    assert_eq!(e.attribute("parent"), Some("alpha"));
    let c = causeway_hub::load_client(&a.hub.view(), &record.child).unwrap().expect("the child's client");
    assert_eq!(c.latest_height(), header.height);
    let l = causeway_hub::lineage(&a.hub.view(), &record.child).unwrap().expect("lineage");
    assert_eq!((l.parent.as_str(), l.split_height), ("alpha", record.height));
    assert_eq!(l.record, HashAlg::Sha256.hash(&record.encode()));

    // Exactly once.
    refused(&on_hub(&mut a, vec![msg.into_message()]), "already exists");
}

/// Relay `p` step by step until its source has resolved it.
fn relay(a: &mut Alliance, k: &mut Knowledge, p: &Packet) {
    let source = a.member(&p.source).unwrap();
    for _ in 0..20 {
        if a.members[source].endpoint_get(&member_keys::commitment(p.sequence)).is_none() {
            return;
        }
        let jobs: Vec<Job> = a
            .jobs(k)
            .into_iter()
            .filter(|j| match j {
                Job::HubRecv(q)
                | Job::MemberRecv(q)
                | Job::HubAck(q, _)
                | Job::HubTimeout(q)
                | Job::Resolve(q, _) => q == p,
                _ => false,
            })
            .collect();
        for job in jobs {
            let (t, msgs) = a.build(&job);
            let r = a.deliver_as(k, t, &relayer(), msgs);
            assert!(r.is_ok(), "{job:?} failed: {:?}", r.failure);
        }
    }
    panic!("packet {}#{} was not resolved", p.source, p.sequence);
}

#[test]
fn coin_coming_home_after_a_split_is_routed_to_the_child_that_holds_it() {
    let mut a = Alliance::new(2, 2);
    let mut k = Knowledge::default();
    let coin = Denom::new(COIN).unwrap();
    let voucher = DenomTrace { home: a.members[ALPHA].id(), base: coin.clone() }.voucher_denom();

    // Alpha's coin goes to beta: 100 delivered, then 50 still in flight when the split is decided.
    let (_, p1) = a.transfer(&mut k, ALPHA, 0, BETA, &coin, 100, 3_600);
    relay(&mut a, &mut k, &p1.unwrap());
    let (_, p2) = a.transfer(&mut k, ALPHA, 0, BETA, &coin, 50, 3_600);
    let p2 = p2.unwrap();

    let (_, child_keys) = genesis("alpha-coin", 4, Suite::Ed25519, HashAlg::Sha256);
    let planned = a.members[ALPHA].height() + 3;
    let plan = SplitPlan {
        height: planned,
        namespaces: vec![coin.namespace()],
        child: ChainId::new("alpha-coin").unwrap(),
        validators: child_keys.iter().map(|key| Validator { pub_key: key.public_key(), power: 10 }).collect(),
        profile: Profile::Permissioned,
    };
    pass(&mut a.members[ALPHA], vec![GovAction::ScheduleSplit { plan }], 1);
    a.produce_all();
    // From the decision on, the coin does not leave alpha any more.
    let (r, _) = a.transfer(&mut k, ALPHA, 1, BETA, &coin, 5, 3_600);
    let why = r.failure.expect("a send of a moving asset is refused").to_string();
    assert!(why.contains("cross-chain sends are closed"), "{why}");

    // The split waits, block by block, while the packet sent with the coin awaits its outcome.
    let mut postponed = 0;
    while a.members[ALPHA].height() < planned + 2 {
        for (t, c) in a.produce_all() {
            k.observe(&a.chain(t).id(), &c.results);
            if t == Target::Member(ALPHA) {
                postponed += c.results.end_events.iter().filter(|e| e.kind == "lineage.postponed").count();
            }
        }
    }
    assert!(postponed >= 2, "the split was postponed while the packet was in flight ({postponed})");
    assert!(lineage::split_record(&a.members[ALPHA].view(), planned).unwrap().is_none());
    relay(&mut a, &mut k, &p2);
    let height = loop {
        let Some(LineagePlan::Split(p)) = lineage::plan(&a.members[ALPHA].view()).unwrap() else {
            panic!("the split plan is still there until it happens")
        };
        while a.members[ALPHA].height() < p.height {
            a.produce_all();
        }
        if lineage::plan(&a.members[ALPHA].view()).unwrap().is_none() {
            break p.height;
        }
    };
    let record = lineage::split_record(&a.members[ALPHA].view(), height).unwrap().expect("the split happened");
    assert!(height > planned);

    // The child, born from alpha's state at height - 1: it holds the coin, and the escrow backing beta's vouchers.
    let files = tempfile::tempdir().unwrap();
    let f = |n: &str| files.path().join(n);
    let hidden = indicatif::ProgressBar::hidden();
    let alpha_app = a.members[ALPHA].chain.app();
    ledger::write_snapshot(alpha_app, height - 1, &f("alpha.snap"), &hidden).unwrap();
    let evidence = RecordEvidence::collect(alpha_app, RecordKind::Split, height).unwrap();
    let files_in = SplitFiles { parent_snapshot: &f("alpha.snap"), evidence: &evidence };
    ledger::split(files_in, a.members[ALPHA].time(), &f("child.json"), &f("child.snap"), &hidden).unwrap();
    let child_dir = tempfile::tempdir().unwrap();
    let mut carried = std::fs::File::open(f("child.snap")).unwrap();
    let mut child = TestChain::open_carried(
        child_dir.path(),
        Genesis::load(&f("child.json")).unwrap(),
        child_keys.clone(),
        &mut carried,
        vec![Endpoint::extension()],
    )
    .unwrap();
    child.produce(vec![]).unwrap();
    assert_eq!(xchain::escrowed(&child.app().store().latest_view(), &a.members[BETA].id(), &coin).unwrap(), 150);
    let header = child.app().block(1).unwrap().unwrap().header;
    let commit = child.certify(&header, &child.app().validators_at(1).unwrap()).unwrap();
    let msg = register(&mut a, &record, header, commit);
    let r = on_hub(&mut a, vec![msg.into_message()]);
    assert!(r.is_ok(), "{:?}", r.failure);
    let c = a.join(child, child_keys, child_dir);
    a.produce_all();

    // Beta's vouchers go home to alpha; the hub forwards them to the child, which pays out of the moved escrow.
    // (User 1 received them on beta; they go to user 0.)
    let receiver = a.users[0].public_key().address();
    let before = a.members[c].balance(&coin, &receiver);
    let (r, p3) = a.transfer(&mut k, BETA, 1, ALPHA, &voucher, 30, 3_600);
    assert!(r.is_ok(), "{:?}", r.failure);
    let p3 = p3.unwrap();
    assert_eq!(p3.destination, a.members[ALPHA].id(), "beta addresses its vouchers' home");
    relay(&mut a, &mut k, &p3);
    assert_eq!(a.delivered_to(&p3), a.members[c].id(), "the hub routed the packet to the child");
    assert!(a.members[c].endpoint_get(&member_keys::receipt(&p3.source, p3.sequence)).is_some());
    assert!(a.members[ALPHA].endpoint_get(&member_keys::receipt(&p3.source, p3.sequence)).is_none());
    assert_eq!(a.members[c].balance(&coin, &receiver), before + 30);
    let escrow = xchain::escrowed(&a.members[c].view(), &a.members[BETA].id(), &coin).unwrap();
    assert_eq!(escrow, 120);
    assert_eq!(a.members[BETA].supply(&voucher), escrow, "vouchers outstanding = escrow on the chain holding the coin");
    assert!(causeway_chain::exec::assets::meta(&a.members[ALPHA].view(), &coin).unwrap().is_none());
}
