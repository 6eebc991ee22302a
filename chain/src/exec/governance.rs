//! Governance: the validator set and its changes, organisations and their members, chain parameters, and the
//! proposals through which validators change them.
//!
//! A proposal passes when validators holding at least two thirds of the current voting power approve it, and is
//! rejected once that can no longer happen. A validator-set change decided at height H takes effect at height
//! H+2: the header of H+1 already carries it as `next_validators_hash`, so light clients learn it one block ahead.
//!
//! Keys:
//! - `sys/validators` / `current` → the validator set of the next height to execute (canonical encoding);
//!   `change` ‖ effective height (big-endian) → a decided set (canonical encoding) waiting for that height;
//! - `sys/gov` / `next` → next proposal number; `p` ‖ id (big-endian) → [`Proposal`];
//! - `sys/orgs` / `o` ‖ id → [`Org`]; `m` ‖ len ‖ id ‖ address → membership;
//! - `sys/params` / `params` → [`Params`].

use borsh::{BorshDeserialize, BorshSerialize};
use causeway_light_client::{Address, Canonical, ValidatorSet};
use serde::{Deserialize, Serialize};

use super::{get_typed, put_typed, sys_namespace, Event, ExecError, Fail, TxContext, TxFailure};
use crate::message::{GovAction, OrgId, Params};
use crate::state::{StateRead, StateWrite};

/// The validator-set namespace.
pub const VALIDATORS: &str = "sys/validators";
/// The proposals namespace.
pub const GOV: &str = "sys/gov";
/// The organisations namespace.
pub const ORGS: &str = "sys/orgs";
/// The parameters namespace.
pub const PARAMS: &str = "sys/params";

const CURRENT: &[u8] = b"current";
const CHANGE: &[u8] = b"change";
const NEXT_ID: &[u8] = b"next";
const PARAMS_KEY: &[u8] = b"params";

/// Where a proposal stands.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum ProposalStatus {
    /// Open for votes.
    Open,
    /// Approved and applied at `height`.
    Passed {
        /// Height of the deciding vote.
        height: u64,
    },
    /// Approved at `height` but its action could not be applied (the reason says why).
    Failed {
        /// Height of the deciding vote.
        height: u64,
        /// Why the action failed.
        reason: String,
    },
    /// Could no longer reach two thirds.
    Rejected {
        /// Height of the deciding vote.
        height: u64,
    },
}

/// A governance proposal.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Proposal {
    /// Its number.
    pub id: u64,
    /// Who opened it.
    pub proposer: Address,
    /// What it does.
    pub action: GovAction,
    /// Height it was opened at.
    pub submitted_at: u64,
    /// Validators in favour.
    pub yes: Vec<Address>,
    /// Validators against.
    pub no: Vec<Address>,
    /// Where it stands.
    pub status: ProposalStatus,
}

/// An organisation.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Org {
    /// Its administrator.
    pub admin: Address,
    /// False once removed by governance.
    pub active: bool,
}

/// Who may do something for an organisation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemberRole {
    /// Its administrator or any member.
    Member,
    /// Its administrator only.
    Admin,
}

fn proposal_key(id: u64) -> Vec<u8> {
    let mut k = vec![b'p'];
    k.extend_from_slice(&id.to_be_bytes());
    k
}

fn org_key(org: &OrgId) -> Vec<u8> {
    let mut k = vec![b'o'];
    k.extend_from_slice(org.as_str().as_bytes());
    k
}

fn member_key(org: &OrgId, member: &Address) -> Vec<u8> {
    let id = org.as_str().as_bytes();
    let mut k = Vec::with_capacity(2 + id.len() + 20);
    k.push(b'm');
    // Org ids are at most 48 bytes, so the length fits a byte and keys of different orgs never collide.
    k.push(id.len() as u8);
    k.extend_from_slice(id);
    k.extend_from_slice(&member.0);
    k
}

fn corrupt(namespace: &str, reason: impl ToString) -> ExecError {
    ExecError::Corrupt { namespace: namespace.to_string(), reason: reason.to_string() }
}

/// The validator set of the next height to execute (during a block: the set of that block's height).
pub fn current_validators(state: &(impl StateRead + ?Sized)) -> Result<ValidatorSet, ExecError> {
    let raw = state
        .get(&sys_namespace(VALIDATORS), CURRENT)?
        .ok_or_else(|| corrupt(VALIDATORS, "no validator set (genesis not applied)"))?;
    ValidatorSet::decode(&raw).map_err(|e| corrupt(VALIDATORS, e))
}

/// Write the validator set directly (genesis, split and merge geneses).
pub fn set_current_validators(state: &mut dyn StateWrite, set: &ValidatorSet) -> Result<(), Fail> {
    state.put(&sys_namespace(VALIDATORS), CURRENT, set.encode())?;
    Ok(())
}

fn change_key(effective_height: u64) -> Vec<u8> {
    let mut k = CHANGE.to_vec();
    k.extend_from_slice(&effective_height.to_be_bytes());
    k
}

/// The validator set decided to take effect at `effective_height`, if any. Changes decided at consecutive heights
/// wait under different keys, so none is lost; two decided in one block: the later one wins.
pub fn pending_change(
    state: &(impl StateRead + ?Sized),
    effective_height: u64,
) -> Result<Option<ValidatorSet>, ExecError> {
    match state.get(&sys_namespace(VALIDATORS), &change_key(effective_height))? {
        None => Ok(None),
        Some(raw) => ValidatorSet::decode(&raw).map(Some).map_err(|e| corrupt(VALIDATORS, e)),
    }
}

/// The chain parameters.
pub fn params(state: &(impl StateRead + ?Sized)) -> Result<Params, ExecError> {
    Ok(get_typed(state, &sys_namespace(PARAMS), PARAMS_KEY)?.unwrap_or_default())
}

/// Write the parameters directly (genesis).
pub fn set_params(state: &mut dyn StateWrite, params: &Params) -> Result<(), Fail> {
    put_typed(state, &sys_namespace(PARAMS), PARAMS_KEY, params)
}

/// An organisation's record.
pub fn org(state: &(impl StateRead + ?Sized), org: &OrgId) -> Result<Option<Org>, ExecError> {
    get_typed(state, &sys_namespace(ORGS), &org_key(org))
}

/// Whether `member` belongs to `org` (its administrator included).
pub fn is_member(state: &(impl StateRead + ?Sized), org_id: &OrgId, member: &Address) -> Result<bool, ExecError> {
    match org(state, org_id)? {
        Some(o) if o.active => {
            Ok(o.admin == *member || state.get(&sys_namespace(ORGS), &member_key(org_id, member))?.is_some())
        }
        _ => Ok(false),
    }
}

/// Admit an organisation directly (genesis).
pub fn admit_org(state: &mut dyn StateWrite, org_id: &OrgId, admin: Address) -> Result<(), Fail> {
    put_typed(state, &sys_namespace(ORGS), &org_key(org_id), &Org { admin, active: true })
}

/// Fail unless `who` has `role` in the active organisation `org_id`.
pub fn require_role(
    state: &(impl StateRead + ?Sized),
    org_id: &OrgId,
    who: &Address,
    role: MemberRole,
) -> Result<(), Fail> {
    let o = org(state, org_id)?.filter(|o| o.active).ok_or_else(|| TxFailure::UnknownOrg(org_id.to_string()))?;
    let allowed = match role {
        MemberRole::Admin => o.admin == *who,
        MemberRole::Member => is_member(state, org_id, who)?,
    };
    if allowed {
        Ok(())
    } else {
        let role = if role == MemberRole::Admin { "the administrator" } else { "a member" };
        Err(TxFailure::NotAuthorized { signer: *who, role: role.into(), org: org_id.to_string() }.into())
    }
}

/// Add a member (administrator only).
pub fn add_member(state: &mut dyn StateWrite, sender: Address, org_id: &OrgId, member: Address) -> Result<Vec<Event>, Fail> {
    require_role(state, org_id, &sender, MemberRole::Admin)?;
    state.put(&sys_namespace(ORGS), &member_key(org_id, &member), vec![1])?;
    Ok(vec![Event::new("org.member_added", &[("org", org_id.to_string()), ("member", member.to_hex())])])
}

/// Remove a member (administrator only).
pub fn remove_member(
    state: &mut dyn StateWrite,
    sender: Address,
    org_id: &OrgId,
    member: Address,
) -> Result<Vec<Event>, Fail> {
    require_role(state, org_id, &sender, MemberRole::Admin)?;
    state.delete(&sys_namespace(ORGS), &member_key(org_id, &member))?;
    Ok(vec![Event::new("org.member_removed", &[("org", org_id.to_string()), ("member", member.to_hex())])])
}

/// A proposal by number.
pub fn proposal(state: &(impl StateRead + ?Sized), id: u64) -> Result<Option<Proposal>, ExecError> {
    get_typed(state, &sys_namespace(GOV), &proposal_key(id))
}

/// Open a proposal; the proposer's approval is counted at once (a single validator with enough power decides).
pub fn propose(state: &mut dyn StateWrite, ctx: &TxContext<'_>, action: GovAction) -> Result<Vec<Event>, Fail> {
    if ctx.validators.index_of(&ctx.sender).is_none() {
        return Err(TxFailure::NotValidator(ctx.sender).into());
    }
    let ns = sys_namespace(GOV);
    let id: u64 = get_typed(state, &ns, NEXT_ID)?.unwrap_or(0);
    put_typed(state, &ns, NEXT_ID, &id.checked_add(1).ok_or(TxFailure::Overflow)?)?;
    let p = Proposal {
        id,
        proposer: ctx.sender,
        action,
        submitted_at: ctx.block.height,
        yes: vec![],
        no: vec![],
        status: ProposalStatus::Open,
    };
    let mut events = vec![Event::new(
        "gov.proposal",
        &[("id", id.to_string()), ("proposer", ctx.sender.to_hex()), ("action", action_name(&p.action).into())],
    )];
    put_typed(state, &ns, &proposal_key(id), &p)?;
    events.extend(vote(state, ctx, id, true)?);
    Ok(events)
}

fn action_name(a: &GovAction) -> &'static str {
    match a {
        GovAction::SetValidators { .. } => "set_validators",
        GovAction::AdmitOrg { .. } => "admit_org",
        GovAction::RemoveOrg { .. } => "remove_org",
        GovAction::SetParams { .. } => "set_params",
        GovAction::Ext { .. } => "ext",
        GovAction::ScheduleSplit { .. } => "schedule_split",
        GovAction::ScheduleMergeOut { .. } => "schedule_merge_out",
    }
}

fn power_of(set: &ValidatorSet, voters: &[Address]) -> u128 {
    voters.iter().filter_map(|a| set.index_of(a).and_then(|i| set.get(i))).map(|v| u128::from(v.power)).sum()
}

/// Vote on an open proposal; decides it when the tally allows.
pub fn vote(state: &mut dyn StateWrite, ctx: &TxContext<'_>, id: u64, approve: bool) -> Result<Vec<Event>, Fail> {
    if ctx.validators.index_of(&ctx.sender).is_none() {
        return Err(TxFailure::NotValidator(ctx.sender).into());
    }
    let mut p = proposal(state, id)?.ok_or(TxFailure::UnknownProposal(id))?;
    if p.status != ProposalStatus::Open {
        return Err(TxFailure::ProposalClosed(id).into());
    }
    let period = params(state)?.voting_period;
    if ctx.block.height > p.submitted_at.saturating_add(period) {
        return Err(TxFailure::ProposalClosed(id).into());
    }
    if p.yes.contains(&ctx.sender) || p.no.contains(&ctx.sender) {
        return Err(TxFailure::AlreadyVoted(ctx.sender).into());
    }
    if approve {
        p.yes.push(ctx.sender);
    } else {
        p.no.push(ctx.sender);
    }
    let mut events =
        vec![Event::new("gov.vote", &[("id", id.to_string()), ("voter", ctx.sender.to_hex()), ("approve", approve.to_string())])];
    // Tally with the validators of this height: votes of validators who left no longer count.
    let total = u128::from(ctx.validators.total_power());
    let yes = power_of(ctx.validators, &p.yes);
    let no = power_of(ctx.validators, &p.no);
    if yes * 3 >= total * 2 {
        p.status = match apply(state, ctx, &p.action) {
            Ok(mut evs) => {
                events.append(&mut evs);
                ProposalStatus::Passed { height: ctx.block.height }
            }
            Err(Fail::Tx(f)) => ProposalStatus::Failed { height: ctx.block.height, reason: f.to_string() },
            Err(fatal) => return Err(fatal),
        };
        events.push(Event::new("gov.decided", &[("id", id.to_string()), ("outcome", status_name(&p.status).into())]));
    } else if (total - no.min(total)) * 3 < total * 2 {
        p.status = ProposalStatus::Rejected { height: ctx.block.height };
        events.push(Event::new("gov.decided", &[("id", id.to_string()), ("outcome", "rejected".into())]));
    }
    put_typed(state, &sys_namespace(GOV), &proposal_key(id), &p)?;
    Ok(events)
}

fn status_name(s: &ProposalStatus) -> &'static str {
    match s {
        ProposalStatus::Open => "open",
        ProposalStatus::Passed { .. } => "passed",
        ProposalStatus::Failed { .. } => "failed",
        ProposalStatus::Rejected { .. } => "rejected",
    }
}

/// Apply a decided action. Each built-in action checks everything before its single write, so a failure writes
/// nothing; an extension's decision must keep the same rule (check first, then write).
fn apply(state: &mut dyn StateWrite, ctx: &TxContext<'_>, action: &GovAction) -> Result<Vec<Event>, Fail> {
    match action {
        GovAction::SetValidators { validators } => {
            let set = ValidatorSet::new(validators.clone()).map_err(|e| TxFailure::Rejected(e.to_string()))?;
            let effective_height = ctx.block.height.checked_add(2).ok_or(TxFailure::Overflow)?;
            state.put(&sys_namespace(VALIDATORS), &change_key(effective_height), set.encode())?;
            Ok(vec![Event::new(
                "validators.scheduled",
                &[("effective_height", effective_height.to_string()), ("validators", set.len().to_string())],
            )])
        }
        GovAction::AdmitOrg { org: id, admin } => {
            if org(state, id)?.is_some_and(|o| o.active) {
                return Err(TxFailure::OrgExists(id.to_string()).into());
            }
            admit_org(state, id, *admin)?;
            Ok(vec![Event::new("org.admitted", &[("org", id.to_string()), ("admin", admin.to_hex())])])
        }
        GovAction::RemoveOrg { org: id } => {
            let mut o = org(state, id)?.filter(|o| o.active).ok_or_else(|| TxFailure::UnknownOrg(id.to_string()))?;
            o.active = false;
            put_typed(state, &sys_namespace(ORGS), &org_key(id), &o)?;
            Ok(vec![Event::new("org.removed", &[("org", id.to_string())])])
        }
        GovAction::SetParams { params: p } => {
            p.validate().map_err(TxFailure::Rejected)?;
            set_params(state, p)?;
            Ok(vec![Event::new("params.changed", &[])])
        }
        GovAction::ScheduleSplit { plan } => super::lineage::schedule_split(state, ctx, plan),
        GovAction::ScheduleMergeOut { plan } => super::lineage::schedule_merge_out(state, ctx, plan),
        GovAction::Ext { module, body } => match ctx.extensions.iter().find(|e| e.name() == module) {
            Some(ext) => ext.governance(state, ctx, &body.0),
            None => Err(TxFailure::Rejected(format!("no module {module:?} on this chain")).into()),
        },
    }
}

/// End of block `height`: a change scheduled for `height + 1` becomes the current set, so the state after this
/// block names the validators of the next height.
pub fn end_block(state: &mut dyn StateWrite, height: u64) -> Result<Vec<Event>, ExecError> {
    let effective = height.saturating_add(1);
    let Some(set) = pending_change(state, effective)? else { return Ok(vec![]) };
    let ns = sys_namespace(VALIDATORS);
    state.put(&ns, CURRENT, set.encode())?;
    state.delete(&ns, &change_key(effective))?;
    Ok(vec![Event::new(
        "validators.changed",
        &[("effective_height", effective.to_string()), ("validators", set.len().to_string())],
    )])
}
