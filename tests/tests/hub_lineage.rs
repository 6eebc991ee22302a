//! The hub side of a split: a member commits a split record by governance; the hub proves that record with the
//! member's client and registers the child from a child header signed by the validators the record names. And
//! what must be refused, each without writing anything: a tampered record, a record claimed for another parent, a
//! header signed by other validators, a certificate for another block, a second registration.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use causeway_chain::exec::lineage::{self, SplitPlan, LINEAGE};
use causeway_chain::exec::TxResult;
use causeway_chain::genesis::Profile;
use causeway_chain::message::{Denom, GovAction, Message};
use causeway_chain::testkit::{genesis, TestChain};
use causeway_chain::xchain::Endpoint;
use causeway_hub::HubMsg;
use causeway_light_client::{
    Canonical, ChainId, CommitCertificate, Hash, HashAlg, Header, LightClient, SecretKey, Suite, Validator,
    ValidatorSet,
};
use causeway_tests::alliance::{pass, Alliance, COIN};

const ALPHA: usize = 0;

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
