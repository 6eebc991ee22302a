//! Deterministic block execution: transactions in order through the modules, producing a write set, per-transaction
//! results with events, and the validator set of the next height.
//!
//! **Owns**: the transaction lifecycle (nonce check, nonce bump, messages all-or-nothing), the dispatch of messages
//! to modules, end-of-block processing (validator-set changes taking effect). **Must never**: read a clock, a random
//! source or anything but the block and the state; abort a block because one transaction is bad (a bad transaction
//! gets a failed result and leaves state unchanged, except its nonce bump once its nonce was right); verify
//! signatures (it takes [`VerifiedTx`]s only).

use borsh::{BorshDeserialize, BorshSerialize};
use causeway_light_client::{Address, ChainId, Hash, Namespace, Time, ValidatorSet};
use serde::{Deserialize, Serialize};

use crate::message::Message;
use crate::state::{Overlay, StateError, StateRead, StateWrite, WriteSet};
use crate::tx::VerifiedTx;

pub mod accounts;
pub mod assets;
pub mod governance;
pub mod lineage;
pub mod records;
mod typed;

pub use typed::{get_typed, put_typed};

/// Why a transaction failed at execution. Its messages' writes are discarded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
// Adjacently tagged: `{"code": "...", "detail": ...}`; internal tagging cannot carry the newtype variants' strings.
#[serde(tag = "code", content = "detail", rename_all = "snake_case")]
pub enum TxFailure {
    /// The nonce is not the account's next nonce (the transaction is not executed at all).
    #[error("bad nonce: expected {expected}, got {got}")]
    BadNonce {
        /// The account's next nonce.
        expected: u64,
        /// The transaction's.
        got: u64,
    },
    /// Not enough of an asset.
    #[error("insufficient {denom}: have {have}, need {need}")]
    InsufficientFunds {
        /// Asset.
        denom: String,
        /// Balance.
        have: String,
        /// Amount asked.
        need: String,
    },
    /// The asset does not exist.
    #[error("unknown asset {0}")]
    UnknownAsset(String),
    /// Only the asset's issuer may issue more.
    #[error("only the issuer {issuer} may issue {denom}")]
    NotIssuer {
        /// Asset.
        denom: String,
        /// Its issuer.
        issuer: Address,
    },
    /// An amount would overflow.
    #[error("amount overflow")]
    Overflow,
    /// The namespace is not an organisation's record namespace.
    #[error("namespace {0} is not an organisation namespace (org/<id> or org/<id>/...)")]
    NotRecordNamespace(String),
    /// No such (active) organisation.
    #[error("unknown or removed organisation {0}")]
    UnknownOrg(String),
    /// The signer may not act for the organisation.
    #[error("{signer} is not {role} of organisation {org}")]
    NotAuthorized {
        /// The signer.
        signer: Address,
        /// "a member" or "the administrator".
        role: String,
        /// The organisation.
        org: String,
    },
    /// Only validators of the current height may propose and vote.
    #[error("{0} is not a validator")]
    NotValidator(Address),
    /// No such proposal.
    #[error("unknown proposal {0}")]
    UnknownProposal(u64),
    /// The proposal is decided or expired.
    #[error("proposal {0} is closed")]
    ProposalClosed(u64),
    /// The validator already voted on the proposal.
    #[error("{0} already voted")]
    AlreadyVoted(Address),
    /// The organisation already exists.
    #[error("organisation {0} already exists")]
    OrgExists(String),
    /// A message broke a rule of its module not covered above.
    #[error("{0}")]
    Rejected(String),
}

/// Why a whole block could not be executed. Unlike [`TxFailure`], these are not the transaction's fault and are
/// not deterministic across nodes: the node must stop, not commit.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// Reading state failed.
    #[error("state: {0}")]
    State(#[from] StateError),
    /// State holds bytes that do not decode: a corrupt store.
    #[error("corrupt state under {namespace}: {reason}")]
    Corrupt {
        /// Namespace.
        namespace: String,
        /// Decoder message.
        reason: String,
    },
}

/// A module's verdict on a message: a transaction failure, or a fatal error that stops the block.
#[derive(Debug)]
pub enum Fail {
    /// The transaction fails; the block goes on.
    Tx(TxFailure),
    /// Execution cannot go on.
    Fatal(ExecError),
}

impl From<TxFailure> for Fail {
    fn from(f: TxFailure) -> Self {
        Fail::Tx(f)
    }
}

impl From<ExecError> for Fail {
    fn from(e: ExecError) -> Self {
        Fail::Fatal(e)
    }
}

impl From<StateError> for Fail {
    fn from(e: StateError) -> Self {
        Fail::Fatal(ExecError::State(e))
    }
}

/// What a module reports: a business-level fact for indexes, subscriptions and the explorer.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Event {
    /// What happened, e.g. `transfer`, `record`, `gov.passed`.
    pub kind: String,
    /// Its attributes, in a fixed order.
    pub attributes: Vec<(String, String)>,
}

impl Event {
    /// An event of `kind` with attributes.
    pub fn new(kind: &str, attributes: &[(&str, String)]) -> Self {
        Event {
            kind: kind.to_string(),
            attributes: attributes.iter().map(|(k, v)| (k.to_string(), v.clone())).collect(),
        }
    }

    /// The value of attribute `key`.
    pub fn attribute(&self, key: &str) -> Option<&str> {
        self.attributes.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }
}

/// The result of one transaction.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct TxResult {
    /// Transaction hash.
    pub hash: Hash,
    /// Its signer.
    pub sender: Address,
    /// `None` on success.
    pub failure: Option<TxFailure>,
    /// Events of the successful messages (empty on failure).
    pub events: Vec<Event>,
}

impl TxResult {
    /// True when the transaction's messages were applied.
    pub fn is_ok(&self) -> bool {
        self.failure.is_none()
    }
}

/// What execution knows about the block besides its transactions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockContext {
    /// The chain.
    pub chain_id: ChainId,
    /// The block's height.
    pub height: u64,
    /// The block's time (from its header, agreed by consensus).
    pub time: Time,
    /// The block's proposer.
    pub proposer: Address,
}

/// What executing a block produced.
#[derive(Debug)]
pub struct BlockOutcome {
    /// Every write, to commit at the block's height.
    pub writes: WriteSet,
    /// One result per transaction, in order.
    pub results: Vec<TxResult>,
    /// Events of end-of-block processing (validator-set changes taking effect…).
    pub end_events: Vec<Event>,
    /// The validator set of the next height (its hash goes into this block's header).
    pub next_validators: ValidatorSet,
}

/// What a message handler sees besides the state.
pub struct TxContext<'a> {
    /// The block.
    pub block: &'a BlockContext,
    /// The signer's address.
    pub sender: Address,
    /// The validators of this height.
    pub validators: &'a ValidatorSet,
    /// The chain's extension modules.
    pub extensions: &'a Extensions,
}

/// A module provided by another crate (the hub's client registry, router and atomic coordinator). It receives
/// the bodies of [`Message::Ext`] messages naming it, and runs at the end of every block.
///
/// Like the built-in modules it must be deterministic: no clock (use the block's time), no I/O, no randomness.
pub trait Extension: Send + Sync {
    /// The name messages address it by.
    fn name(&self) -> &'static str;
    /// Execute one message body for the transaction's signer.
    fn handle(&self, state: &mut dyn StateWrite, ctx: &TxContext<'_>, body: &[u8]) -> Result<Vec<Event>, Fail>;
    /// Apply a governance decision addressed to this module ([`crate::message::GovAction::Ext`]), after the
    /// validators approved it. It must check everything before writing anything: a failure is recorded on the
    /// proposal and its writes are kept otherwise.
    fn governance(&self, _state: &mut dyn StateWrite, _ctx: &TxContext<'_>, _body: &[u8]) -> Result<Vec<Event>, Fail> {
        Err(TxFailure::Rejected(format!("module {} takes no governance decisions", self.name())).into())
    }
    /// End-of-block work (before validator-set changes are applied).
    fn end_block(&self, _state: &mut dyn StateWrite, _block: &BlockContext) -> Result<Vec<Event>, ExecError> {
        Ok(vec![])
    }
}

/// The extensions a chain runs (none on a plain member chain; the hub module on the hub).
pub type Extensions = [std::sync::Arc<dyn Extension>];

/// Execute `txs` in order over `base` (the state after the previous height).
pub fn execute_block<R: StateRead>(
    base: R,
    ctx: &BlockContext,
    txs: &[VerifiedTx],
    extensions: &Extensions,
) -> Result<BlockOutcome, ExecError> {
    let mut state = Overlay::new(base);
    let validators = governance::current_validators(&state)?;
    let mut guard = lineage::Guard::load(&state, ctx.height)?;
    let mut results = Vec::with_capacity(txs.len());
    for tx in txs {
        results.push(execute_tx(&mut state, ctx, &validators, extensions, &guard, tx)?);
        // Only governance changes the lineage plan: reload the rules after a transaction that may have decided one.
        if tx.tx().messages.iter().any(|m| matches!(m, Message::Vote { .. } | Message::Propose { .. })) {
            guard = lineage::Guard::load(&state, ctx.height)?;
        }
    }
    let mut end_events = Vec::new();
    for ext in extensions {
        end_events.extend(ext.end_block(&mut state, ctx)?);
    }
    state.commit_tx();
    end_events.extend(lineage::end_block(&mut state, ctx)?);
    end_events.extend(governance::end_block(&mut state, ctx.height)?);
    state.commit_tx();
    let next_validators = governance::current_validators(&state)?;
    Ok(BlockOutcome { writes: state.into_write_set(), results, end_events, next_validators })
}

fn execute_tx<R: StateRead>(
    state: &mut Overlay<R>,
    block: &BlockContext,
    validators: &ValidatorSet,
    extensions: &Extensions,
    guard: &lineage::Guard,
    vtx: &VerifiedTx,
) -> Result<TxResult, ExecError> {
    let tx = vtx.tx();
    let sender = tx.sender();
    let fail = |failure: TxFailure| TxResult { hash: vtx.hash(), sender, failure: Some(failure), events: vec![] };
    // A transaction for another chain never reaches here (verification refuses it), but execution must not
    // depend on that: check again, it costs nothing.
    if tx.chain_id != block.chain_id {
        return Ok(fail(TxFailure::Rejected(format!("transaction for chain {}", tx.chain_id))));
    }
    match accounts::bump_nonce(state, &sender, tx.nonce) {
        Ok(()) => state.commit_tx(),
        Err(Fail::Tx(f)) => {
            state.rollback_tx();
            return Ok(fail(f));
        }
        Err(Fail::Fatal(e)) => return Err(e),
    }
    let ctx = TxContext { block, sender, validators, extensions };
    let mut events = Vec::new();
    for message in &tx.messages {
        match dispatch(state, &ctx, extensions, message) {
            Ok(mut evs) => events.append(&mut evs),
            Err(Fail::Tx(f)) => {
                state.rollback_tx();
                return Ok(fail(f));
            }
            Err(Fail::Fatal(e)) => return Err(e),
        }
    }
    let refused = state.pending_namespaces().find_map(|ns| guard.check(ns).err());
    if let Some(refused) = refused {
        state.rollback_tx();
        return Ok(fail(refused));
    }
    state.commit_tx();
    Ok(TxResult { hash: vtx.hash(), sender, failure: None, events })
}

fn dispatch(
    state: &mut dyn StateWrite,
    ctx: &TxContext<'_>,
    extensions: &Extensions,
    message: &Message,
) -> Result<Vec<Event>, Fail> {
    match message {
        Message::Ext { module, body } => match extensions.iter().find(|e| e.name() == module) {
            Some(ext) => ext.handle(state, ctx, &body.0),
            None => Err(TxFailure::Rejected(format!("no module {module:?} on this chain")).into()),
        },
        Message::Transfer { to, denom, amount } => assets::transfer(state, ctx.sender, *to, denom, *amount),
        Message::Issue { denom, amount, to } => assets::issue(state, ctx.sender, *to, denom, *amount),
        Message::Burn { denom, amount } => assets::burn(state, ctx.sender, denom, *amount),
        Message::PutRecord { namespace, key, value } => records::put(state, ctx, namespace, key, &value.0),
        Message::AddMember { org, member } => governance::add_member(state, ctx.sender, org, *member),
        Message::RemoveMember { org, member } => governance::remove_member(state, ctx.sender, org, *member),
        Message::Propose { action } => governance::propose(state, ctx, action.clone()),
        Message::Vote { proposal, approve } => governance::vote(state, ctx, *proposal, *approve),
    }
}

/// A system namespace, by name (`sys/…`). Names are compile-time constants of valid namespaces.
pub(crate) fn sys_namespace(name: &'static str) -> Namespace {
    #[allow(clippy::expect_used)]
    Namespace::new(name).expect("system namespace names are valid constants")
}

#[cfg(test)]
pub(crate) mod test_support;

#[cfg(test)]
mod tests;

#[cfg(test)]
mod failure_json_tests {
    use super::TxFailure;

    #[test]
    fn every_failure_shape_survives_json() {
        for f in [
            TxFailure::Rejected("no module \"hub\" on this chain".into()),
            TxFailure::UnknownAsset("gold".into()),
            TxFailure::BadNonce { expected: 2, got: 1 },
        ] {
            let json = serde_json::to_string(&f).unwrap();
            assert!(json.contains("\"code\""), "{json}");
            assert_eq!(serde_json::from_str::<TxFailure>(&json).unwrap(), f);
        }
    }
}
