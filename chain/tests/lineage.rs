#![allow(clippy::unwrap_used, clippy::expect_used)] // a failing test panics by design
//! Splitting and merging ledgers (DESIGN §7) on network-less chains: governance schedules, the record is
//! committed and provable, moved namespaces leave and stay gone, a merged-out chain stops, the offline tools
//! build new geneses whose roots equal the records', and the verifier fails on tampered files.

use std::io::Write;
use std::path::{Path, PathBuf};

use causeway_chain::exec::lineage::{self, MergePlan, SplitPlan};
use causeway_chain::exec::{assets, governance};
use causeway_chain::genesis::{Genesis, GenesisAsset, GenesisOrg, Profile};
use causeway_chain::ledger::{
    self, LedgerError, MergeParent, NewChainFiles, RecordEvidence, RecordKind, SplitFiles,
};
use causeway_chain::message::{Amount, Bytes, Denom, GovAction, Message, OrgId};
use causeway_chain::state::StateRead;
use causeway_chain::testkit::{genesis, TestChain};
use causeway_light_client::{Address, HashAlg, Namespace, SecretKey, Suite, Time, Validator};
use indicatif::ProgressBar;

fn ns(s: &str) -> Namespace {
    Namespace::new(s).unwrap()
}

fn denom(s: &str) -> Denom {
    Denom::new(s).unwrap()
}

fn user() -> SecretKey {
    SecretKey::from_bytes(Suite::Ed25519, &[42; 32]).unwrap()
}

/// A chain whose user holds `denoms` and administers organisation `org`.
fn chain(dir: &Path, id: &str, denoms: &[&str], org: &str) -> (TestChain, Vec<SecretKey>) {
    let (mut g, keys) = genesis(id, 4, Suite::Ed25519, HashAlg::Sha256);
    let u = user().public_key().address();
    for d in denoms {
        g.assets.push(GenesisAsset {
            denom: denom(d),
            issuer: u,
            balances: vec![(u, Amount(1_000_000))],
        });
    }
    g.orgs.push(GenesisOrg {
        id: OrgId::new(org).unwrap(),
        admin: u,
    });
    (TestChain::open(dir, g, keys.clone(), vec![]).unwrap(), keys)
}

fn validators(keys: &[SecretKey]) -> Vec<Validator> {
    keys.iter()
        .map(|k| Validator {
            pub_key: k.public_key(),
            power: 10,
        })
        .collect()
}

/// Propose `action` and vote it through (3 of 4 validators) in one block; returns the proposal's status.
fn decide(c: &mut TestChain, keys: &[SecretKey], action: GovAction) -> governance::ProposalStatus {
    let id = {
        let view = c.app().store().latest_view();
        (0..)
            .find(|i| governance::proposal(&view, *i).unwrap().is_none())
            .unwrap()
    };
    let mut txs = vec![c.sign(&keys[0], vec![Message::Propose { action }]).unwrap()];
    for k in &keys[1..3] {
        txs.push(
            c.sign(
                k,
                vec![Message::Vote {
                    proposal: id,
                    approve: true,
                }],
            )
            .unwrap(),
        );
    }
    c.produce(txs).unwrap();
    governance::proposal(&c.app().store().latest_view(), id)
        .unwrap()
        .unwrap()
        .status
}

fn transfer(c: &TestChain, d: &str, n: u8) -> causeway_chain::tx::SignedTx {
    c.sign(
        &user(),
        vec![Message::Transfer {
            to: Address([n; 20]),
            denom: denom(d),
            amount: Amount(u128::from(n) + 1),
        }],
    )
    .unwrap()
}

fn record(c: &TestChain, org: &str, key: &str) -> causeway_chain::tx::SignedTx {
    let m = Message::PutRecord {
        namespace: ns(&format!("org/{org}")),
        key: key.into(),
        value: Bytes(key.as_bytes().to_vec()),
    };
    c.sign(&user(), vec![m]).unwrap()
}

fn tamper(src: &Path, dst: &Path) {
    let mut bytes = std::fs::read(src).unwrap();
    let at = bytes.len() - 14; // the last value byte, before the 13-byte end frame
    bytes[at] ^= 1;
    std::fs::File::create(dst).unwrap().write_all(&bytes).unwrap();
}

struct Split {
    _dirs: Vec<tempfile::TempDir>,
    parent: TestChain,
    files: PathBuf,
    height: u64,
}

/// Run a parent to a split of `asset:bond` and `org/acme` into `child`, with transfers and records in every block.
fn run_split() -> Split {
    let (d, files) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (mut p, keys) = chain(d.path(), "parent", &["bond", "cash"], "acme");
    for i in 0..3u8 {
        // One transaction per signer and block: the next one is signed with the nonce the chain then expects.
        let t = transfer(&p, "cash", i);
        p.produce(vec![t]).unwrap();
        let r = record(&p, "acme", &format!("r{i}"));
        p.produce(vec![r]).unwrap();
    }
    let (_, child_keys) = genesis("child", 3, Suite::Ed25519, HashAlg::Sha256);
    let height = p.app().height() + 4;
    let plan = SplitPlan {
        height,
        namespaces: vec![ns("asset:bond"), ns("org/acme")],
        child: "child".parse().unwrap(),
        validators: validators(&child_keys),
        profile: Profile::Public,
    };
    assert_eq!(
        decide(&mut p, &keys, GovAction::ScheduleSplit { plan }),
        governance::ProposalStatus::Passed {
            height: height - 4 + 1
        }
    );
    while p.app().height() + 1 < height {
        let b = transfer(&p, "bond", 9);
        assert!(
            p.produce(vec![b]).unwrap().results.txs[0].is_ok(),
            "the moving asset is usable until H-1"
        );
    }
    // Block H: a write to a moving namespace fails (not silently dropped), others go through.
    let moving = transfer(&p, "bond", 7);
    let committed = p.produce(vec![moving]).unwrap();
    assert_eq!(committed.block.header.height, height);
    let failure = committed.results.txs[0]
        .failure
        .as_ref()
        .expect("a write to a moving namespace fails");
    assert!(
        failure.to_string().contains("moves to another chain"),
        "{failure}"
    );
    let ok = transfer(&p, "cash", 8);
    assert!(p.produce(vec![ok]).unwrap().results.txs[0].is_ok());
    Split {
        _dirs: vec![d, files],
        files: PathBuf::new(),
        parent: p,
        height,
    }
    .with_files()
}

impl Split {
    fn with_files(mut self) -> Split {
        self.files = self._dirs[1].path().to_path_buf();
        self
    }

    fn path(&self, name: &str) -> PathBuf {
        self.files.join(name)
    }

    fn export(&self) -> RecordEvidence {
        let hidden = ProgressBar::hidden();
        ledger::write_snapshot(
            self.parent.app(),
            self.height - 1,
            &self.path("parent.snap"),
            &hidden,
        )
        .unwrap();
        let e = RecordEvidence::collect(self.parent.app(), RecordKind::Split, self.height).unwrap();
        e.save(&self.path("evidence.json")).unwrap();
        e
    }
}

#[test]
fn a_split_moves_namespaces_with_a_provable_record_and_the_child_starts_from_them() {
    let s = run_split();
    let view = s.parent.app().store().latest_view();
    // The parent lost the moved namespaces and keeps the rest.
    let roots = view.namespace_roots().unwrap();
    assert!(roots
        .iter()
        .all(|(n, _)| n.as_str() != "asset:bond" && n.as_str() != "org/acme"));
    assert!(roots.iter().any(|(n, _)| n.as_str() == "asset:cash"));
    assert_eq!(assets::meta(&view, &denom("bond")).unwrap(), None);
    // Moved namespaces stay gone: writing them again fails.
    let mut p = s.parent;
    // Re-creating a departed asset is refused by the lineage guard (a transfer already fails: no such asset).
    let issue = Message::Issue {
        denom: denom("bond"),
        amount: Amount(1),
        to: Address([3; 20]),
    };
    let again = p.sign(&user(), vec![issue]).unwrap();
    let r = p.produce(vec![again]).unwrap();
    assert!(r.results.txs[0]
        .failure
        .as_ref()
        .unwrap()
        .to_string()
        .contains("has moved"));
    let s = Split { parent: p, ..s };

    // The record is proven by the certified header of H.
    let evidence = s.export();
    let ledger::VerifiedRecord::Split(rec) = evidence.verify(None).unwrap() else {
        panic!("not a split")
    };
    assert_eq!(rec.namespaces.len(), 2);
    assert_eq!(rec.child.as_str(), "child");
    let before = s
        .parent
        .app()
        .store()
        .view(s.height - 1)
        .unwrap()
        .namespace_roots()
        .unwrap();
    for (n, root) in &rec.namespaces {
        assert!(
            before.contains(&(n.clone(), *root)),
            "recorded root of {n} is the parent's at H-1"
        );
    }

    // The child's genesis and carried state: its roots are the record's, and it runs.
    let hidden = ProgressBar::hidden();
    let files = SplitFiles {
        parent_snapshot: &s.path("parent.snap"),
        evidence: &evidence,
    };
    let born = ledger::split(
        files,
        Time::from_secs(1_800_000_000),
        &s.path("child.json"),
        &s.path("child.snap"),
        &hidden,
    )
    .unwrap();
    assert_eq!(born.genesis.lineage.as_ref().unwrap().carried, rec.namespaces);
    assert_eq!(
        born.genesis.orgs.len(),
        1,
        "the administrator of a moved organisation comes along"
    );
    let (_, child_keys) = genesis("child", 3, Suite::Ed25519, HashAlg::Sha256);
    let cd = tempfile::tempdir().unwrap();
    let g = Genesis::load(&s.path("child.json")).unwrap();
    let mut file = std::fs::File::open(s.path("child.snap")).unwrap();
    let mut child = TestChain::open_carried(cd.path(), g, child_keys, &mut file, vec![]).unwrap();
    let data: Vec<_> = child
        .app()
        .store()
        .latest_view()
        .namespace_roots()
        .unwrap()
        .into_iter()
        .filter(|(n, _)| !lineage::is_system(n))
        .collect();
    assert_eq!(data, rec.namespaces);
    let parent_view = s.parent.app().store().view(s.height - 1).unwrap();
    for i in 0..3 {
        let key = format!("r{i}");
        assert_eq!(
            child
                .app()
                .store()
                .latest_view()
                .get(&ns("org/acme"), key.as_bytes())
                .unwrap(),
            parent_view.get(&ns("org/acme"), key.as_bytes()).unwrap()
        );
    }
    let bond = child.app().store().latest_view();
    assert_eq!(
        assets::meta(&bond, &denom("bond")).unwrap().unwrap().supply,
        Amount(1_000_000),
        "supply conserved"
    );
    drop(bond);
    let t = transfer(&child, "bond", 5);
    assert!(child.produce(vec![t]).unwrap().results.txs[0].is_ok());
    let r = record(&child, "acme", "on-child");
    assert!(
        child.produce(vec![r]).unwrap().results.txs[0].is_ok(),
        "the moved organisation writes on the child"
    );

    // Offline verification passes, and fails on any tampered file.
    let verify = |parent: &Path, state: &Path, evidence: &RecordEvidence| {
        ledger::verify_split(
            SplitFiles {
                parent_snapshot: parent,
                evidence,
            },
            NewChainFiles {
                genesis: &s.path("child.json"),
                state,
            },
            &hidden,
        )
    };
    let ok = verify(&s.path("parent.snap"), &s.path("child.snap"), &evidence).unwrap();
    assert_eq!(ok.namespaces, 2);
    tamper(&s.path("parent.snap"), &s.path("parent-bad.snap"));
    assert!(matches!(
        verify(&s.path("parent-bad.snap"), &s.path("child.snap"), &evidence),
        Err(LedgerError::Snapshot { .. })
    ));
    tamper(&s.path("child.snap"), &s.path("child-bad.snap"));
    assert!(matches!(
        verify(&s.path("parent.snap"), &s.path("child-bad.snap"), &evidence),
        Err(LedgerError::Snapshot { .. })
    ));
    let mut forged = evidence.clone();
    let mut rec2 = rec.clone();
    rec2.namespaces[0].1 .0[0] ^= 1;
    forged.record = causeway_light_client::Canonical::encode(&rec2);
    assert!(matches!(
        verify(&s.path("parent.snap"), &s.path("child.snap"), &forged),
        Err(LedgerError::Evidence(_))
    ));
    let mut unsigned = evidence.clone();
    unsigned.certificate.signatures.truncate(1);
    assert!(matches!(
        verify(&s.path("parent.snap"), &s.path("child.snap"), &unsigned),
        Err(LedgerError::Evidence(_))
    ));
}

#[test]
fn split_plans_are_checked_when_decided() {
    let d = tempfile::tempdir().unwrap();
    let (mut p, keys) = chain(d.path(), "parent", &["bond"], "acme");
    let v = validators(&keys);
    let plan = |height: u64, namespaces: Vec<Namespace>, child: &str| SplitPlan {
        height,
        namespaces,
        child: child.parse().unwrap(),
        validators: v.clone(),
        profile: Profile::Permissioned,
    };
    let failed = |s: governance::ProposalStatus| matches!(s, governance::ProposalStatus::Failed { .. });
    assert!(
        failed(decide(
            &mut p,
            &keys,
            GovAction::ScheduleSplit {
                plan: plan(1, vec![ns("asset:bond")], "c")
            }
        )),
        "height in the past"
    );
    assert!(
        failed(decide(
            &mut p,
            &keys,
            GovAction::ScheduleSplit {
                plan: plan(50, vec![ns("asset:bond")], "parent")
            }
        )),
        "same chain id"
    );
    // A system namespace never moves.
    let sys = GovAction::ScheduleSplit {
        plan: plan(50, vec![ns("sys/accounts")], "c"),
    };
    assert!(failed(decide(&mut p, &keys, sys)), "system namespace");
    let ok = decide(
        &mut p,
        &keys,
        GovAction::ScheduleSplit {
            plan: plan(50, vec![ns("asset:bond")], "c"),
        },
    );
    assert!(matches!(ok, governance::ProposalStatus::Passed { .. }));
    assert!(
        failed(decide(
            &mut p,
            &keys,
            GovAction::ScheduleSplit {
                plan: plan(60, vec![ns("org/acme")], "d")
            }
        )),
        "one plan at a time"
    );
}

struct Merged {
    _dirs: Vec<tempfile::TempDir>,
    a: TestChain,
    b: TestChain,
    finals: (u64, u64),
}

/// Two chains that merge out into `merged`. With `shared`, both hold that asset and each declares the other's
/// namespaces as none (an operator mistake governance cannot see; the offline tool must catch the clash).
fn run_merge_out(shared: Option<&str>) -> Merged {
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (mut a, ka) = chain(
        da.path(),
        "alpha",
        &[&["acoin"][..], shared.as_slice()].concat(),
        "aorg",
    );
    let (mut b, kb) = chain(
        db.path(),
        "beta",
        &[&["bcoin"][..], shared.as_slice()].concat(),
        "borg",
    );
    let (_, mk) = genesis("merged", 4, Suite::Ed25519, HashAlg::Sha256);
    let data = |c: &TestChain| -> Vec<Namespace> {
        c.app()
            .store()
            .latest_view()
            .namespace_roots()
            .unwrap()
            .into_iter()
            .map(|(n, _)| n)
            .filter(|n| !lineage::is_system(n))
            .collect()
    };
    for (c, org) in [(&mut a, "aorg"), (&mut b, "borg")] {
        let r = record(c, org, "first");
        assert!(c.produce(vec![r]).unwrap().results.txs[0].is_ok());
    }
    let (ours_a, ours_b) = (data(&a), data(&b));
    for i in 0..2u8 {
        let t = transfer(&a, "acoin", i);
        a.produce(vec![t]).unwrap();
        let t = transfer(&b, "bcoin", i);
        b.produce(vec![t]).unwrap();
    }
    let plan = |final_height: u64, partner: &str, ours: &[Namespace], theirs: &[Namespace]| MergePlan {
        final_height,
        merged: "merged".parse().unwrap(),
        partner: partner.parse().unwrap(),
        ours: ours.to_vec(),
        theirs: theirs.to_vec(),
        validators: validators(&mk),
        profile: Profile::Public,
    };
    let (theirs_a, theirs_b) = if shared.is_some() {
        (vec![], vec![])
    } else {
        (ours_b.clone(), ours_a.clone())
    };
    let fa = a.app().height() + 3;
    let fb = b.app().height() + 4;
    let sa = decide(
        &mut a,
        &ka,
        GovAction::ScheduleMergeOut {
            plan: plan(fa, "beta", &ours_a, &theirs_a),
        },
    );
    assert!(matches!(sa, governance::ProposalStatus::Passed { .. }), "{sa:?}");
    let sb = decide(
        &mut b,
        &kb,
        GovAction::ScheduleMergeOut {
            plan: plan(fb, "alpha", &ours_b, &theirs_b),
        },
    );
    assert!(matches!(sb, governance::ProposalStatus::Passed { .. }), "{sb:?}");
    for (c, f, d) in [(&mut a, fa, "acoin"), (&mut b, fb, "bcoin")] {
        while c.app().height() < f {
            let t = transfer(c, d, 4);
            let r = c.produce(vec![t]).unwrap();
            let h = r.block.header.height;
            assert_eq!(
                r.results.txs[0].is_ok(),
                h < f,
                "data writes stop at the final height {f} (block {h})"
            );
        }
    }
    Merged {
        _dirs: vec![da, db],
        a,
        b,
        finals: (fa, fb),
    }
}

impl Merged {
    /// Both merge-out evidences, and both snapshots at their final height - 1 as `a.snap` and `b.snap` in `dir`.
    fn export(&self, dir: &Path) -> (RecordEvidence, RecordEvidence) {
        let hidden = ProgressBar::hidden();
        let ea = RecordEvidence::collect(self.a.app(), RecordKind::MergeOut, self.finals.0).unwrap();
        let eb = RecordEvidence::collect(self.b.app(), RecordKind::MergeOut, self.finals.1).unwrap();
        ledger::write_snapshot(self.a.app(), self.finals.0 - 1, &dir.join("a.snap"), &hidden).unwrap();
        ledger::write_snapshot(self.b.app(), self.finals.1 - 1, &dir.join("b.snap"), &hidden).unwrap();
        (ea, eb)
    }
}

#[test]
fn a_merge_stops_both_chains_and_the_merged_chain_carries_both_namespace_sets() {
    let m = run_merge_out(None);
    for (c, f) in [(&m.a, m.finals.0), (&m.b, m.finals.1)] {
        assert_eq!(c.app().final_height(), Some(f));
        assert!(c.app().halted());
    }
    let mut a = m.a;
    let err = a.produce(vec![]).unwrap_err();
    assert!(err.to_string().contains("final height"), "{err}");
    let m = Merged { a, ..m };

    let files = tempfile::tempdir().unwrap();
    let f = |n: &str| files.path().join(n);
    let hidden = ProgressBar::hidden();
    let (ea, eb) = m.export(files.path());
    let (sa, sb) = (f("a.snap"), f("b.snap"));
    let pa = || MergeParent {
        snapshot: &sa,
        evidence: &ea,
    };
    let pb = || MergeParent {
        snapshot: &sb,
        evidence: &eb,
    };
    // Not a split: the split command refuses merge-out evidence.
    assert!(ledger::split(
        SplitFiles {
            parent_snapshot: &f("a.snap"),
            evidence: &ea
        },
        Time::from_secs(1),
        &f("x.json"),
        &f("x.snap"),
        &hidden
    )
    .is_err());
    let born = ledger::merge(
        pa(),
        pb(),
        Time::from_secs(1_800_000_000),
        &f("merged.json"),
        &f("merged.snap"),
        &hidden,
    )
    .unwrap();
    let carried = &born.genesis.lineage.as_ref().unwrap().carried;
    let names: Vec<&str> = carried.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["asset:acoin", "asset:bcoin", "org/aorg", "org/borg"]);
    assert_eq!(born.genesis.orgs.len(), 2);
    let (mg, ms) = (f("merged.json"), f("merged.snap"));
    let merged = || NewChainFiles {
        genesis: &mg,
        state: &ms,
    };
    let ok = ledger::verify_merge(pa(), pb(), merged(), &hidden).unwrap();
    assert_eq!(ok.namespaces, 4);
    tamper(&f("b.snap"), &f("b-bad.snap"));
    let bad = MergeParent {
        snapshot: &f("b-bad.snap"),
        evidence: &eb,
    };
    assert!(matches!(
        ledger::verify_merge(pa(), bad, merged(), &hidden),
        Err(LedgerError::Snapshot { .. })
    ));

    // The merged chain runs with both parents' assets.
    let (_, mk) = genesis("merged", 4, Suite::Ed25519, HashAlg::Sha256);
    let md = tempfile::tempdir().unwrap();
    let g = Genesis::load(&f("merged.json")).unwrap();
    let mut c = TestChain::open_carried(
        md.path(),
        g,
        mk,
        &mut std::fs::File::open(f("merged.snap")).unwrap(),
        vec![],
    )
    .unwrap();
    let t1 = transfer(&c, "acoin", 1);
    c.produce(vec![t1]).unwrap();
    let t2 = transfer(&c, "bcoin", 1);
    assert!(c.produce(vec![t2]).unwrap().results.txs[0].is_ok());
}

#[test]
fn a_clashing_merge_is_refused_by_governance_and_by_the_offline_tool() {
    // Governance: a plan whose partner declares one of our namespaces is refused before anything halts.
    let d = tempfile::tempdir().unwrap();
    let (mut a, ka) = chain(d.path(), "alpha", &["shared"], "aorg");
    let clash = MergePlan {
        final_height: 40,
        merged: "merged".parse().unwrap(),
        partner: "beta".parse().unwrap(),
        ours: vec![ns("org/aorg")],
        theirs: vec![ns("asset:shared")],
        validators: validators(&ka),
        profile: Profile::Permissioned,
    };
    let s = decide(&mut a, &ka, GovAction::ScheduleMergeOut { plan: clash.clone() });
    assert!(
        matches!(&s, governance::ProposalStatus::Failed { reason, .. } if reason.contains("clash")),
        "{s:?}"
    );
    let undeclared = MergePlan {
        ours: vec![ns("org/aorg")],
        theirs: vec![],
        ..clash.clone()
    };
    let s = decide(&mut a, &ka, GovAction::ScheduleMergeOut { plan: undeclared });
    assert!(
        matches!(&s, governance::ProposalStatus::Failed { reason, .. } if reason.contains("not declared")),
        "{s:?}"
    );
    assert!(!a.app().halted());
    assert_eq!(
        lineage::plan(&a.app().store().latest_view()).unwrap(),
        None,
        "nothing scheduled"
    );

    // Offline: two records that both bring `asset:shared` (each side declared the other's namespaces as none).
    let m = run_merge_out(Some("shared"));
    let files = tempfile::tempdir().unwrap();
    let f = |n: &str| files.path().join(n);
    let hidden = ProgressBar::hidden();
    let (ea, eb) = m.export(files.path());
    let r = ledger::merge(
        MergeParent {
            snapshot: &f("a.snap"),
            evidence: &ea,
        },
        MergeParent {
            snapshot: &f("b.snap"),
            evidence: &eb,
        },
        Time::from_secs(1_800_000_000),
        &f("merged.json"),
        &f("merged.snap"),
        &hidden,
    );
    assert!(
        matches!(&r, Err(LedgerError::Clash(m)) if m.contains("asset:shared")),
        "{r:?}"
    );
    assert!(
        !f("merged.json").exists() && !f("merged.snap").exists(),
        "nothing is written"
    );
}

#[test]
fn ledger_cli_builds_and_verifies_a_split_and_exits_non_zero_on_bad_files() {
    let s = run_split();
    s.export();
    let bin = env!("CARGO_BIN_EXE_causeway-chain");
    let run = |args: &[&str]| {
        std::process::Command::new(bin)
            .arg("ledger")
            .args(args)
            .output()
            .expect("the binary runs")
    };
    let p = |n: &str| s.path(n).to_str().unwrap().to_string();
    let split = run(&[
        "split",
        "--from",
        &p("parent.snap"),
        "--record",
        &p("evidence.json"),
        "--out-genesis",
        &p("child.json"),
        "--out-state",
        &p("child.snap"),
        "--genesis-time",
        "2027-01-01T00:00:00Z",
    ]);
    assert!(
        split.status.success(),
        "{}",
        String::from_utf8_lossy(&split.stderr)
    );
    let verify = |parent: &str, state: &str| {
        run(&[
            "verify",
            "split",
            "--from",
            &p(parent),
            "--record",
            &p("evidence.json"),
            "--genesis",
            &p("child.json"),
            "--state",
            &p(state),
        ])
    };
    let ok = verify("parent.snap", "child.snap");
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    let line = String::from_utf8_lossy(&ok.stdout);
    let v: serde_json::Value = serde_json::from_str(line.lines().last().unwrap()).unwrap();
    assert_eq!(v["verified"], true);
    tamper(&s.path("parent.snap"), &s.path("parent-bad.snap"));
    let bad = verify("parent-bad.snap", "child.snap");
    assert_eq!(
        bad.status.code(),
        Some(1),
        "a tampered snapshot fails verification"
    );
    assert!(String::from_utf8_lossy(&bad.stderr).contains("snapshot"));
    let missing = verify("no-such.snap", "child.snap");
    assert_eq!(
        missing.status.code(),
        Some(3),
        "a missing file is a bad input, not a failed check"
    );
    std::fs::write(s.path("garbage.json"), b"{not json").unwrap();
    let garbage = run(&[
        "split",
        "--from",
        &p("parent.snap"),
        "--record",
        &p("garbage.json"),
        "--out-genesis",
        &p("g.json"),
        "--out-state",
        &p("g.snap"),
    ]);
    assert_eq!(garbage.status.code(), Some(3));
    assert!(!s.path("g.json").exists());
}
