//! Lineage: splitting a chain and merging two chains by moving whole namespaces (DESIGN §7).
//!
//! **Owns**: the plans governance schedules (a split at height H, a merge-out at a final height), the records a
//! chain commits when a plan comes due, the rule that a namespace leaving the chain is frozen in its last block
//! and never written here again, and the chain's final height after a merge-out. **Must never**: move a system
//! namespace (`sys/…`: every chain has its own), record a root it did not read from the committed state, or let a
//! transaction's write to a leaving namespace be silently dropped (such a transaction fails instead).
//!
//! How a split works: a passed [`SplitPlan`] waits under `sys/lineage`. In block H, transactions that write a
//! moving namespace fail; at the end of block H the chain writes a [`SplitRecord`] holding each moving
//! namespace's root as committed at H-1 (unchanged during H), drops those namespaces from its state and remembers
//! them as departed. The header of H therefore commits to the record and to the namespaces' absence, and the child's
//! genesis (built from a snapshot at H-1) holds namespaces with exactly the recorded roots.
//!
//! A merge-out is the same with every data namespace and no drop: at its final height F the chain writes a
//! [`MergeOutRecord`] with every data namespace's root at F-1 and produces no block after F. From the moment it is
//! scheduled, the chain writes only the data namespaces its plan declared as its own (`ours`), and governance
//! refuses a plan whose namespaces meet the partner's declared ones, so two merge-outs that agree never clash.
//!
//! Cross-chain transfers across a split or merge (with the `xchain` endpoint and the hub's routes): an asset's
//! escrow lives in the asset's own namespace, so it moves with the asset; a scheduled plan closes cross-chain
//! sends of what moves (every send, for a merge-out), and the plan's height waits, one block at a time, until no
//! packet sent with a moving asset awaits its outcome ([`end_block`] postpones it and says so in a
//! `lineage.postponed` event): a refund never has to be paid by a chain that no longer holds the asset. A split
//! never moves a voucher namespace, and a merge-out is refused while the chain holds vouchers or has voucher
//! sends in flight: a voucher's way home is tied to the chain that holds it. The hub routes a packet that brings
//! an asset home to a chain it has left to the chain that carries the asset now, which releases it from the
//! escrow that moved with it.
//!
//! Keys under `sys/lineage`: `plan` → [`LineagePlan`]; `split` ‖ H (big-endian) → [`SplitRecord`];
//! `merge_out` → [`MergeOutRecord`]; `departed` → sorted `Vec<Namespace>`.

use std::collections::BTreeSet;

use borsh::{BorshDeserialize, BorshSerialize};
use causeway_light_client::{Canonical, ChainId, CodecError, Hash, Namespace, Validator, ValidatorSet};
use serde::{Deserialize, Serialize};

use super::{
    get_typed, put_typed, sys_namespace, BlockContext, Event, ExecError, Fail, TxContext, TxFailure,
};
use crate::genesis::Profile;
use crate::message::Denom;
use crate::state::{Overlay, StateRead, StateWrite};

/// The lineage namespace.
pub const LINEAGE: &str = "sys/lineage";

const PLAN: &[u8] = b"plan";
const SPLIT: &[u8] = b"split";
const MERGE_OUT: &[u8] = b"merge_out";
const DEPARTED: &[u8] = b"departed";

/// Most namespaces one plan may move.
pub const MAX_MOVED_NAMESPACES: usize = 1024;

/// Whether a namespace belongs to the chain itself (`sys/…`) and never moves.
pub fn is_system(namespace: &Namespace) -> bool {
    namespace.as_str().starts_with("sys/")
}

/// A split decided by governance: at `height`, `namespaces` leave this chain for the new chain `child`.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SplitPlan {
    /// The height whose block commits the split record (later than the deciding height).
    pub height: u64,
    /// The namespaces that move (data namespaces only).
    pub namespaces: Vec<Namespace>,
    /// The child chain's id.
    pub child: ChainId,
    /// The child's validators.
    pub validators: Vec<Validator>,
    /// The child's profile.
    pub profile: Profile,
}

/// A merge-out decided by governance: this chain stops after `final_height`, and its data namespaces go, with its
/// partner's, into the chain `merged`.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MergePlan {
    /// The last height this chain produces; its block commits the merge-out record.
    pub final_height: u64,
    /// The merged chain's id.
    pub merged: ChainId,
    /// The other chain that merges out into `merged`.
    pub partner: ChainId,
    /// The data namespaces this chain brings (every current one must be listed; no others may be written).
    pub ours: Vec<Namespace>,
    /// The data namespaces the partner declared as its own (none may be ours).
    pub theirs: Vec<Namespace>,
    /// The merged chain's validators.
    pub validators: Vec<Validator>,
    /// The merged chain's profile.
    pub profile: Profile,
}

fn sorted_unique(list: &[Namespace], what: &str) -> Result<(), String> {
    if list.len() > MAX_MOVED_NAMESPACES {
        return Err(format!("{} {what} (at most {MAX_MOVED_NAMESPACES})", list.len()));
    }
    if list.windows(2).any(|w| w[0] >= w[1]) {
        return Err(format!("{what} must be sorted without duplicates"));
    }
    if let Some(ns) = list.iter().find(|ns| is_system(ns)) {
        return Err(format!("{what}: system namespace {ns} never moves"));
    }
    Ok(())
}

impl SplitPlan {
    /// Checks that need no state.
    pub fn validate(&self) -> Result<(), String> {
        if self.namespaces.is_empty() {
            return Err("a split moves at least one namespace".into());
        }
        sorted_unique(&self.namespaces, "moved namespaces")?;
        ValidatorSet::new(self.validators.clone())
            .map(|_| ())
            .map_err(|e| format!("child validators: {e}"))
    }
}

impl MergePlan {
    /// Checks that need no state.
    pub fn validate(&self) -> Result<(), String> {
        sorted_unique(&self.ours, "our namespaces")?;
        sorted_unique(&self.theirs, "the partner's namespaces")?;
        if let Some(ns) = self.ours.iter().find(|ns| self.theirs.binary_search(ns).is_ok()) {
            return Err(format!("namespace {ns} clashes: both chains would bring it"));
        }
        if self.merged == self.partner {
            return Err("the merged chain needs a new id".into());
        }
        ValidatorSet::new(self.validators.clone())
            .map(|_| ())
            .map_err(|e| format!("merged validators: {e}"))
    }
}

/// A plan waiting for its height.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum LineagePlan {
    /// A split.
    Split(SplitPlan),
    /// A merge-out.
    MergeOut(MergePlan),
}

/// What a parent commits at the split height: provable against the parent's header at that height.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct SplitRecord {
    /// The parent chain.
    pub parent: ChainId,
    /// The split height (the parent's state at `height - 1` holds the moved namespaces with these roots).
    pub height: u64,
    /// The child chain.
    pub child: ChainId,
    /// The child's validators.
    pub validators: Vec<Validator>,
    /// The child's profile.
    pub profile: Profile,
    /// Every moved namespace that held data, with its root at `height - 1`, sorted.
    pub namespaces: Vec<(Namespace, Hash)>,
    /// The namespaces the plan named (those without data included): none is ever written on the parent again.
    pub departed: Vec<Namespace>,
}

/// What a chain commits at its final height before merging.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct MergeOutRecord {
    /// The chain merging out.
    pub chain: ChainId,
    /// Its final height (its state at `final_height - 1` holds the namespaces with these roots).
    pub final_height: u64,
    /// The merged chain.
    pub merged: ChainId,
    /// The partner chain.
    pub partner: ChainId,
    /// The merged chain's validators.
    pub validators: Vec<Validator>,
    /// The merged chain's profile.
    pub profile: Profile,
    /// Every data namespace with its root at `final_height - 1`, sorted.
    pub namespaces: Vec<(Namespace, Hash)>,
}

fn check_pairs(pairs: &[(Namespace, Hash)], kind: &'static str) -> Result<(), CodecError> {
    if pairs.windows(2).any(|w| w[0].0 >= w[1].0) || pairs.iter().any(|(ns, _)| is_system(ns)) {
        return Err(CodecError::Invalid {
            kind,
            reason: "namespaces must be sorted, unique and not system".into(),
        });
    }
    Ok(())
}

impl Canonical for SplitRecord {
    const KIND: &'static str = "split record";
    const MAX_LEN: usize = 1024 * 1024;
    fn validate(&self) -> Result<(), CodecError> {
        check_pairs(&self.namespaces, Self::KIND)
    }
}

impl Canonical for MergeOutRecord {
    const KIND: &'static str = "merge-out record";
    const MAX_LEN: usize = 1024 * 1024;
    fn validate(&self) -> Result<(), CodecError> {
        check_pairs(&self.namespaces, Self::KIND)
    }
}

/// The state key of the split record committed at `height`.
pub fn split_record_key(height: u64) -> Vec<u8> {
    let mut k = SPLIT.to_vec();
    k.extend_from_slice(&height.to_be_bytes());
    k
}

/// The state key of the merge-out record.
pub fn merge_out_record_key() -> Vec<u8> {
    MERGE_OUT.to_vec()
}

fn corrupt(reason: impl ToString) -> ExecError {
    ExecError::Corrupt {
        namespace: LINEAGE.into(),
        reason: reason.to_string(),
    }
}

/// The plan waiting for its height, if any.
pub fn plan(state: &(impl StateRead + ?Sized)) -> Result<Option<LineagePlan>, ExecError> {
    get_typed(state, &sys_namespace(LINEAGE), PLAN)
}

/// The split record committed at `height`, if any.
pub fn split_record(
    state: &(impl StateRead + ?Sized),
    height: u64,
) -> Result<Option<SplitRecord>, ExecError> {
    decode_record(state, &split_record_key(height))
}

/// The merge-out record, once the chain committed it.
pub fn merge_out_record(state: &(impl StateRead + ?Sized)) -> Result<Option<MergeOutRecord>, ExecError> {
    decode_record(state, &merge_out_record_key())
}

fn decode_record<T: Canonical>(
    state: &(impl StateRead + ?Sized),
    key: &[u8],
) -> Result<Option<T>, ExecError> {
    match state.get(&sys_namespace(LINEAGE), key)? {
        None => Ok(None),
        Some(raw) => T::decode(&raw).map(Some).map_err(corrupt),
    }
}

/// The namespaces that left this chain by splits.
pub fn departed(state: &(impl StateRead + ?Sized)) -> Result<Vec<Namespace>, ExecError> {
    Ok(get_typed(state, &sys_namespace(LINEAGE), DEPARTED)?.unwrap_or_default())
}

/// Packets sent with one of the plan's moving assets (every asset, for a merge-out) that still await their
/// outcome: while any does, the plan's height waits.
fn pending_moves(state: &(impl StateRead + ?Sized), plan: &LineagePlan) -> Result<u64, ExecError> {
    match plan {
        LineagePlan::MergeOut(_) => crate::xchain::pending_sends_total(state).map_err(corrupt),
        LineagePlan::Split(p) => {
            let mut n = 0u64;
            for denom in p.namespaces.iter().filter_map(Denom::of_namespace) {
                n = n.saturating_add(crate::xchain::pending_sends(state, &denom).map_err(corrupt)?);
            }
            Ok(n)
        }
    }
}

/// The last height this chain may produce, once a merge-out is committed.
pub fn final_height(state: &(impl StateRead + ?Sized)) -> Result<Option<u64>, ExecError> {
    Ok(merge_out_record(state)?.map(|r| r.final_height))
}

fn check_schedulable(state: &dyn StateWrite, ctx: &TxContext<'_>, at: u64) -> Result<(), Fail> {
    if plan(state)?.is_some() {
        return Err(TxFailure::Rejected("a split or merge is already scheduled".into()).into());
    }
    if merge_out_record(state)?.is_some() {
        return Err(TxFailure::Rejected("this chain has merged out".into()).into());
    }
    if at <= ctx.block.height {
        return Err(TxFailure::Rejected(format!(
            "height {at} is not after the deciding height {}",
            ctx.block.height
        ))
        .into());
    }
    Ok(())
}

/// Governance decided a split: check it against the state and store it until its height.
pub fn schedule_split(
    state: &mut dyn StateWrite,
    ctx: &TxContext<'_>,
    plan: &SplitPlan,
) -> Result<Vec<Event>, Fail> {
    plan.validate().map_err(TxFailure::Rejected)?;
    check_schedulable(state, ctx, plan.height)?;
    if plan.child == ctx.block.chain_id {
        return Err(TxFailure::Rejected("the child needs a new chain id".into()).into());
    }
    let gone = departed(state)?;
    if let Some(ns) = plan.namespaces.iter().find(|ns| gone.binary_search(ns).is_ok()) {
        return Err(TxFailure::Rejected(format!("namespace {ns} already left this chain")).into());
    }
    for denom in plan.namespaces.iter().filter_map(Denom::of_namespace) {
        if crate::xchain::voucher_trace(state, &denom)
            .map_err(corrupt)?
            .is_some()
        {
            return Err(TxFailure::Rejected(format!(
                "{denom} is a voucher of another chain's asset: vouchers do not move (send them home first)"
            ))
            .into());
        }
    }
    put_typed(
        state,
        &sys_namespace(LINEAGE),
        PLAN,
        &LineagePlan::Split(plan.clone()),
    )?;
    Ok(vec![Event::new(
        "lineage.split_scheduled",
        &[
            ("height", plan.height.to_string()),
            ("child", plan.child.to_string()),
            ("namespaces", plan.namespaces.len().to_string()),
        ],
    )])
}

/// Governance decided a merge-out: refuse it if any current data namespace is not declared as ours or would
/// clash with the partner's, before anything halts.
pub fn schedule_merge_out(
    state: &mut dyn StateWrite,
    ctx: &TxContext<'_>,
    plan: &MergePlan,
) -> Result<Vec<Event>, Fail> {
    plan.validate().map_err(TxFailure::Rejected)?;
    check_schedulable(state, ctx, plan.final_height)?;
    if plan.merged == ctx.block.chain_id || plan.partner == ctx.block.chain_id {
        return Err(
            TxFailure::Rejected("the partner and the merged chain must be other chains".into()).into(),
        );
    }
    for (ns, _) in state.namespace_roots()? {
        if is_system(&ns) {
            continue;
        }
        if let Some(denom) = Denom::of_namespace(&ns) {
            let voucher = crate::xchain::voucher_trace(state, &denom)
                .map_err(corrupt)?
                .is_some();
            let held = super::assets::meta(state, &denom)?.is_some_and(|m| m.supply.0 > 0);
            let in_flight = crate::xchain::pending_sends(state, &denom).map_err(corrupt)? > 0;
            if voucher && (held || in_flight) {
                return Err(TxFailure::Rejected(format!(
                    "vouchers {denom} of another chain's asset are held or in flight here: they cannot merge out \
                     (send them home first)"
                ))
                .into());
            }
        }
        if plan.theirs.binary_search(&ns).is_ok() {
            return Err(TxFailure::Rejected(format!(
                "namespace {ns} exists on both chains: the merge would clash"
            ))
            .into());
        }
        if plan.ours.binary_search(&ns).is_err() {
            return Err(TxFailure::Rejected(format!("namespace {ns} is not declared in the plan")).into());
        }
    }
    put_typed(
        state,
        &sys_namespace(LINEAGE),
        PLAN,
        &LineagePlan::MergeOut(plan.clone()),
    )?;
    Ok(vec![Event::new(
        "lineage.merge_scheduled",
        &[
            ("final_height", plan.final_height.to_string()),
            ("merged", plan.merged.to_string()),
            ("partner", plan.partner.to_string()),
        ],
    )])
}

/// Which namespaces a block's transactions may not write.
#[derive(Debug, Default)]
pub struct Guard {
    departed: BTreeSet<Namespace>,
    /// Namespaces moving at this very height.
    moving: BTreeSet<Namespace>,
    /// With a merge-out scheduled: the only data namespaces that may be written.
    only: Option<BTreeSet<Namespace>>,
    /// The final height of a merge-out: no data namespace may be written.
    frozen: bool,
}

impl Guard {
    /// The rules of block `height`, from the state it builds on (plus what this block's governance decided).
    pub fn load(state: &(impl StateRead + ?Sized), height: u64) -> Result<Guard, ExecError> {
        let mut guard = Guard {
            departed: departed(state)?.into_iter().collect(),
            ..Guard::default()
        };
        match plan(state)? {
            Some(LineagePlan::Split(p)) if p.height == height => {
                guard.moving = p.namespaces.into_iter().collect()
            }
            Some(LineagePlan::MergeOut(p)) => {
                guard.frozen = p.final_height == height;
                guard.only = Some(p.ours.into_iter().collect());
            }
            _ => {}
        }
        Ok(guard)
    }

    /// Whether a transaction may write `namespace`.
    pub fn check(&self, namespace: &Namespace) -> Result<(), TxFailure> {
        if is_system(namespace) {
            return Ok(());
        }
        let refuse = |why: &str| Err(TxFailure::Rejected(format!("namespace {namespace} {why}")));
        if self.departed.contains(namespace) {
            return refuse("has moved to another chain");
        }
        if self.moving.contains(namespace) {
            return refuse("moves to another chain at this height");
        }
        if self.frozen {
            return refuse("is frozen: this is the chain's final height");
        }
        if self.only.as_ref().is_some_and(|only| !only.contains(namespace)) {
            return refuse("is not among the namespaces this chain merges out");
        }
        Ok(())
    }
}

/// End of block: commit the record of a plan due at this height. Reads roots of the state the block builds on.
pub fn end_block<R: StateRead>(
    state: &mut Overlay<R>,
    block: &BlockContext,
) -> Result<Vec<Event>, ExecError> {
    let Some(due) = plan(state)? else {
        return Ok(vec![]);
    };
    let ns = sys_namespace(LINEAGE);
    let next = block.height.saturating_add(1);
    let due_next = match &due {
        LineagePlan::Split(p) => p.height == next,
        LineagePlan::MergeOut(p) => p.final_height == next,
    };
    if due_next {
        let waiting = pending_moves(&*state, &due)?;
        if waiting > 0 {
            // Not yet: a packet sent with a moving asset could still need a refund here. Wait one block.
            let later = next.saturating_add(1);
            let postponed = match due {
                LineagePlan::Split(p) => LineagePlan::Split(SplitPlan { height: later, ..p }),
                LineagePlan::MergeOut(p) => LineagePlan::MergeOut(MergePlan {
                    final_height: later,
                    ..p
                }),
            };
            put_typed(state, &ns, PLAN, &postponed).map_err(fatal)?;
            return Ok(vec![Event::new(
                "lineage.postponed",
                &[
                    ("height", later.to_string()),
                    ("packets_in_flight", waiting.to_string()),
                ],
            )]);
        }
    }
    let roots = state.base().namespace_roots()?;
    let put = |state: &mut Overlay<R>, key: &[u8], value: Vec<u8>| state.put(&ns, key, value);
    match due {
        LineagePlan::Split(p) if p.height == block.height => {
            let namespaces: Vec<(Namespace, Hash)> = roots
                .into_iter()
                .filter(|(n, _)| p.namespaces.binary_search(n).is_ok())
                .collect();
            let record = SplitRecord {
                parent: block.chain_id.clone(),
                height: block.height,
                child: p.child.clone(),
                validators: p.validators.clone(),
                profile: p.profile,
                namespaces,
                departed: p.namespaces.clone(),
            };
            put(state, &split_record_key(block.height), record.encode())?;
            let mut gone = departed(state)?;
            for moved in &p.namespaces {
                state.drop_namespace(moved);
                gone.push(moved.clone());
            }
            gone.sort();
            gone.dedup();
            put_typed(state, &ns, DEPARTED, &gone).map_err(fatal)?;
            state.delete(&ns, PLAN)?;
            Ok(vec![Event::new(
                "lineage.split",
                &[
                    ("height", block.height.to_string()),
                    ("child", p.child.to_string()),
                    ("namespaces", record.namespaces.len().to_string()),
                ],
            )])
        }
        LineagePlan::MergeOut(p) if p.final_height == block.height => {
            let record = MergeOutRecord {
                chain: block.chain_id.clone(),
                final_height: block.height,
                merged: p.merged.clone(),
                partner: p.partner.clone(),
                validators: p.validators.clone(),
                profile: p.profile,
                namespaces: roots.into_iter().filter(|(n, _)| !is_system(n)).collect(),
            };
            put(state, &merge_out_record_key(), record.encode())?;
            state.delete(&ns, PLAN)?;
            Ok(vec![Event::new(
                "lineage.merge_out",
                &[
                    ("final_height", block.height.to_string()),
                    ("merged", p.merged.to_string()),
                ],
            )])
        }
        _ => Ok(vec![]),
    }
}

fn fatal(f: Fail) -> ExecError {
    match f {
        Fail::Fatal(e) => e,
        Fail::Tx(t) => corrupt(t),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ns(s: &str) -> Namespace {
        Namespace::new(s).unwrap()
    }

    fn validators() -> Vec<Validator> {
        let key =
            causeway_light_client::SecretKey::from_bytes(causeway_light_client::Suite::Ed25519, &[3; 32])
                .unwrap();
        vec![Validator {
            pub_key: key.public_key(),
            power: 1,
        }]
    }

    #[test]
    fn plans_refuse_system_unsorted_and_clashing_namespaces() {
        let split = |namespaces: Vec<Namespace>| SplitPlan {
            height: 9,
            namespaces,
            child: ChainId::new("c").unwrap(),
            validators: validators(),
            profile: Profile::Public,
        };
        assert!(split(vec![ns("asset:a"), ns("org/x")]).validate().is_ok());
        assert!(split(vec![]).validate().is_err());
        assert!(
            split(vec![ns("org/x"), ns("asset:a")]).validate().is_err(),
            "unsorted"
        );
        assert!(
            split(vec![ns("asset:a"), ns("asset:a")]).validate().is_err(),
            "duplicate"
        );
        assert!(split(vec![ns("sys/accounts")]).validate().is_err(), "system");
        assert!(SplitPlan {
            validators: vec![],
            ..split(vec![ns("asset:a")])
        }
        .validate()
        .is_err());
        let merge = |ours: Vec<Namespace>, theirs: Vec<Namespace>| MergePlan {
            final_height: 9,
            merged: ChainId::new("m").unwrap(),
            partner: ChainId::new("b").unwrap(),
            ours,
            theirs,
            validators: validators(),
            profile: Profile::Permissioned,
        };
        assert!(merge(vec![ns("asset:a")], vec![ns("asset:b")]).validate().is_ok());
        let clash = merge(vec![ns("asset:a")], vec![ns("asset:a"), ns("asset:b")])
            .validate()
            .unwrap_err();
        assert!(clash.contains("clashes"), "{clash}");
        assert!(MergePlan {
            partner: ChainId::new("m").unwrap(),
            ..merge(vec![], vec![])
        }
        .validate()
        .is_err());
    }

    #[test]
    fn the_guard_freezes_moving_departed_and_undeclared_namespaces() {
        let guard = Guard {
            departed: [ns("asset:gone")].into(),
            moving: [ns("org/moving")].into(),
            only: Some([ns("asset:ours"), ns("org/moving")].into()),
            frozen: false,
        };
        assert!(
            guard.check(&ns("sys/accounts")).is_ok(),
            "system namespaces are always writable"
        );
        assert!(guard.check(&ns("asset:ours")).is_ok());
        for refused in ["asset:gone", "org/moving", "asset:new"] {
            assert!(guard.check(&ns(refused)).is_err(), "{refused}");
        }
        let final_block = Guard {
            frozen: true,
            ..Guard::default()
        };
        assert!(final_block.check(&ns("asset:ours")).is_err());
        assert!(final_block.check(&ns("sys/gov")).is_ok());
        assert!(Guard::default().check(&ns("asset:any")).is_ok());
    }

    #[test]
    fn records_refuse_unsorted_or_system_namespaces_on_decode() {
        let record = |namespaces: Vec<(Namespace, Hash)>| lineage_record(namespaces).encode();
        fn lineage_record(namespaces: Vec<(Namespace, Hash)>) -> MergeOutRecord {
            MergeOutRecord {
                chain: ChainId::new("a").unwrap(),
                final_height: 3,
                merged: ChainId::new("m").unwrap(),
                partner: ChainId::new("b").unwrap(),
                validators: vec![],
                profile: Profile::Permissioned,
                namespaces,
            }
        }
        let h = Hash([1; 32]);
        assert!(MergeOutRecord::decode(&record(vec![(ns("asset:a"), h), (ns("org/b"), h)])).is_ok());
        assert!(MergeOutRecord::decode(&record(vec![(ns("org/b"), h), (ns("asset:a"), h)])).is_err());
        assert!(MergeOutRecord::decode(&record(vec![(ns("sys/gov"), h)])).is_err());
        assert!(MergeOutRecord::decode(&[0xff, 1, 2]).is_err());
    }
}
