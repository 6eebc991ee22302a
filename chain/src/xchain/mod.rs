//! The cross-chain endpoint every member chain runs (DESIGN §6): a light client of the hub, packet commitments,
//! receipts with acknowledgements, outcomes proven by the hub, token transfers (escrow and vouchers), and the legs
//! of atomic transactions.
//!
//! **Owns**: the `sys/xchain` namespace ([`types::member_keys`]): the hub client, the packet sequence, commitments
//! of sent packets and how many of each denomination await their outcome, receipts of received ones, voucher
//! traces, leg states, and records of other members verified through the hub; and, inside each native asset's
//! namespace, the escrow counter per counterparty (so it moves with the asset). **Must never**: act on a
//! relayer's word (every remote fact is a membership or non-membership proof against a consensus state of the
//! hub client); execute a packet twice (the receipt is checked and written in the
//! same transaction); read a clock (time is the block's); leave half of a failed action in state.
//!
//! ## Life of a packet, seen from a member
//! - **Send** ([`EndpointMsg::SendTransfer`]): tokens are escrowed (native asset) or burned (a voucher going home),
//!   the packet's commitment is stored under its sequence, and a `xchain.send` event carries the packet.
//! - **Receive** ([`EndpointMsg::RecvPacket`]): the hub's re-commitment for this chain is proven against the hub
//!   client; the deadline must not have passed at this block; the payload is applied all or nothing; the receipt
//!   stores the acknowledgement's commitment (success, or the application's error). The hub may route here a
//!   packet addressed to a chain this one succeeds: an asset coming home whose namespace, escrow included, moved
//!   here by a split or merge (see `exec::lineage`).
//! - **Resolve** ([`EndpointMsg::ResolvePacket`]): the hub's recorded outcome (acknowledgement or timeout) is
//!   proven; the commitment is deleted (so it resolves once); failures are refunded.
//!
//! ## Atomic legs
//! [`EndpointMsg::PrepareLeg`] locks the leg's funds and records its prepare (which the hub proves);
//! [`EndpointMsg::ApplyDecision`] applies the hub's proven decision once: pay on commit, unlock on abort.

use std::sync::Arc;

use borsh::{BorshDeserialize, BorshSerialize};
use causeway_light_client::{
    Address, Canonical, ChainId, CodecError, Hash, Header, HeaderUpdate, Misbehaviour, Namespace,
    NativeClient, NativeError, StateProof, Time, TrustOptions, ValidatorSet,
};

use crate::exec::{assets, get_typed, put_typed, Event, ExecError, Extension, Fail, TxContext, TxFailure};
use crate::message::{Amount, Bytes, Denom, Message};
use crate::state::{Overlay, StateRead, StateWrite};

pub mod client;
pub mod types;

use client::Slot;

use types::{
    escrow_address, hub_keys, hub_path, lock_address, member_keys, module_address, namespace, Ack,
    AtomicSpec, Decision, DenomTrace, LegState, Outcome, Packet, Payload, TransferData, MODULE, NAMESPACE,
};

/// Why a cross-chain message (on a member or on the hub: `causeway-hub` shares this enum) was refused. Every
/// variant but [`Error::Fatal`] fails only the transaction, leaving state as it was; at the module boundary it
/// becomes `TxFailure::Rejected` with this error's text.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The message body does not decode.
    #[error("malformed message: {0}")]
    Decode(#[from] CodecError),
    /// No light client of that chain.
    #[error("no light client of chain {0}")]
    NoClient(ChainId),
    /// This member has no light client of the hub yet (governance creates it).
    #[error("no light client of the hub")]
    NoHubClient,
    /// A client of that chain already exists.
    #[error("a light client of chain {0} already exists")]
    ClientExists(ChainId),
    /// The light client refused a header, evidence or proof (frozen, expired, bad signature, bad proof…).
    #[error("light client of {chain}: {source}")]
    Client {
        /// The client's chain.
        chain: ChainId,
        /// Its verdict.
        source: NativeError,
    },
    /// Evidence that shows no misbehaviour (the same header twice).
    #[error("the evidence shows no misbehaviour")]
    NoMisbehaviour,
    /// A governance decision that cannot apply.
    #[error("governance: {0}")]
    Governance(String),
    /// A packet from another chain.
    #[error("packet from {got}, expected {expected}")]
    WrongSource {
        /// Expected source.
        expected: ChainId,
        /// The packet's source.
        got: ChainId,
    },
    /// The packet was already received here.
    #[error("packet {source_chain}/{sequence} already received")]
    AlreadyReceived {
        /// Its source.
        source_chain: ChainId,
        /// Its sequence.
        sequence: u64,
    },
    /// The packet's deadline has passed at this block.
    #[error("packet {source_chain}/{sequence} expired")]
    Expired {
        /// Its source.
        source_chain: ChainId,
        /// Its sequence.
        sequence: u64,
    },
    /// A timeout claimed at a height whose time and height are before the deadline.
    #[error("packet {source_chain}/{sequence} has not expired at the proven height")]
    NotExpired {
        /// Its source.
        source_chain: ChainId,
        /// Its sequence.
        sequence: u64,
    },
    /// No pending packet with that sequence (never sent, or already resolved).
    #[error("no pending packet {0} here")]
    UnknownPacket(u64),
    /// The packet differs from the one committed under its sequence.
    #[error("packet {0} differs from the one committed")]
    CommitmentMismatch(u64),
    /// The hub has no open record of the packet (never received, or already resolved).
    #[error("packet {source_chain}/{sequence} is not awaiting an outcome on the hub")]
    NotPending {
        /// Its source.
        source_chain: ChainId,
        /// Its sequence.
        sequence: u64,
    },
    /// A token transfer that cannot be made.
    #[error("transfer: {0}")]
    Transfer(String),
    /// An asset operation failed (balance, unknown asset, overflow…).
    #[error("asset: {0}")]
    Asset(TxFailure),
    /// An atomic transaction rule was broken.
    #[error("atomic transaction: {0}")]
    Atomic(String),
    /// The decision on an atomic transaction was already taken or applied.
    #[error("atomic transaction {0} already decided")]
    AlreadyDecided(Hash),
    /// A split or merge record, or the successor it names, failed the hub's checks.
    #[error("lineage: {0}")]
    Lineage(String),
    /// Only data records (in an organisation's namespace) are attested and verified across chains.
    #[error("not a data record: {0}")]
    NotARecord(String),
    /// Not a transaction's fault: the node must stop.
    #[error(transparent)]
    Fatal(#[from] ExecError),
}

impl From<Fail> for Error {
    fn from(f: Fail) -> Self {
        match f {
            Fail::Tx(t) => Error::Asset(t),
            Fail::Fatal(e) => Error::Fatal(e),
        }
    }
}

impl From<crate::state::StateError> for Error {
    fn from(e: crate::state::StateError) -> Self {
        Error::Fatal(ExecError::State(e))
    }
}

impl From<Error> for Fail {
    fn from(e: Error) -> Self {
        match e {
            Error::Fatal(f) => Fail::Fatal(f),
            other => Fail::Tx(TxFailure::Rejected(other.to_string())),
        }
    }
}

/// Result alias of this module.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What a member endpoint accepts (the body of [`Message::Ext`] with module [`MODULE`]).
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum EndpointMsg {
    /// Move the hub client forward (anyone; a relayer).
    UpdateHubClient {
        /// The hub's header with its certificate and validator sets.
        update: HeaderUpdate,
    },
    /// Freeze the hub client with evidence of two conflicting hub headers (anyone).
    HubMisbehaviour {
        /// The evidence.
        evidence: Box<Misbehaviour>,
    },
    /// Send tokens to `receiver` on `destination`: escrow a native asset, or burn a voucher going home.
    SendTransfer {
        /// The receiving chain.
        destination: ChainId,
        /// The signer's asset.
        denom: Denom,
        /// How much.
        amount: Amount,
        /// Who receives it there.
        receiver: Address,
        /// Destination height from which the packet may no longer execute (0: none).
        timeout_height: u64,
        /// Destination block time from which the packet may no longer execute (0: none).
        timeout_time: Time,
    },
    /// Execute a packet the hub forwarded to this chain (anyone; a relayer).
    RecvPacket {
        /// The packet.
        packet: Packet,
        /// Hub height of the proof (a height the hub client trusts).
        proof_height: u64,
        /// Proof of the hub's forward commitment ([`hub_keys::forward`]).
        proof: StateProof,
    },
    /// Apply the hub's recorded outcome of a packet this chain sent (anyone; a relayer).
    ResolvePacket {
        /// The packet, as sent.
        packet: Packet,
        /// Its outcome.
        outcome: Outcome,
        /// Hub height of the proof.
        proof_height: u64,
        /// Proof of the hub's outcome commitment ([`hub_keys::outcome`]).
        proof: StateProof,
    },
    /// Lock leg `index` of `spec` (its payer only, before the deadline).
    PrepareLeg {
        /// The atomic transaction.
        spec: AtomicSpec,
        /// Which leg.
        index: u32,
    },
    /// Apply the hub's decision to leg `index` (anyone; a relayer).
    ApplyDecision {
        /// The atomic transaction.
        spec: AtomicSpec,
        /// Which leg.
        index: u32,
        /// The decision.
        decision: Decision,
        /// Hub height of the proof.
        proof_height: u64,
        /// Proof of the hub's decision ([`hub_keys::decision`]).
        proof: StateProof,
    },
    /// Verify, through the hub, that member `chain` held the data record `value` under `(namespace, key)` at
    /// `height`, and keep that fact here (anyone; the party that needs the proof).
    VerifyRecord {
        /// The chain holding the record.
        chain: ChainId,
        /// Its height.
        height: u64,
        /// The record's namespace (`org/<id>…`).
        namespace: Namespace,
        /// The record's key.
        key: String,
        /// The stored record ([`crate::exec::records::Record`], canonical bytes).
        value: Bytes,
        /// Hub height of the proof.
        proof_height: u64,
        /// Proof of the hub's attestation ([`hub_keys::attestation`]).
        proof: StateProof,
    },
}

impl Canonical for EndpointMsg {
    const KIND: &'static str = "xchain message";
    const MAX_LEN: usize = crate::tx::MAX_TX_BYTES;
}

impl EndpointMsg {
    /// The transaction message carrying this one.
    pub fn into_message(self) -> Message {
        Message::Ext {
            module: MODULE.into(),
            body: Bytes(self.encode()),
        }
    }
}

/// Governance decisions of a member about its endpoint (the body of a `GovAction::Ext` for [`MODULE`]).
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum EndpointGov {
    /// Create the light client of the hub.
    CreateHubClient {
        /// Trust options (the hub's chain id and hash function among them).
        options: TrustOptions,
        /// The hub header to trust.
        header: Header,
        /// The validator set that signs the height after it (hashes to its `next_validators_hash`).
        next_validators: ValidatorSet,
    },
    /// Recover a frozen or expired hub client from a new trusted header.
    RecoverHubClient {
        /// The hub header to trust.
        header: Header,
        /// Its next validator set.
        next_validators: ValidatorSet,
    },
}

impl Canonical for EndpointGov {
    const KIND: &'static str = "xchain governance decision";
    const MAX_LEN: usize = 256 * 1024;
}

impl EndpointGov {
    /// The governance action carrying this decision.
    pub fn into_action(self) -> crate::message::GovAction {
        crate::message::GovAction::Ext {
            module: MODULE.into(),
            body: Bytes(self.encode()),
        }
    }
}

/// The member endpoint module. Add it to a member chain's extensions.
#[derive(Clone, Copy, Debug, Default)]
pub struct Endpoint;

impl Endpoint {
    /// The module, ready for [`crate::app::App::open`].
    pub fn extension() -> Arc<dyn Extension> {
        Arc::new(Endpoint)
    }
}

impl Extension for Endpoint {
    fn name(&self) -> &'static str {
        MODULE
    }

    fn handle(
        &self,
        state: &mut dyn StateWrite,
        ctx: &TxContext<'_>,
        body: &[u8],
    ) -> Result<Vec<Event>, Fail> {
        Ok(handle(state, ctx, EndpointMsg::decode(body)?)?)
    }

    fn governance(
        &self,
        state: &mut dyn StateWrite,
        ctx: &TxContext<'_>,
        body: &[u8],
    ) -> Result<Vec<Event>, Fail> {
        Ok(governance(state, ctx, EndpointGov::decode(body)?)?)
    }
}

impl From<CodecError> for Fail {
    fn from(e: CodecError) -> Self {
        Fail::Tx(TxFailure::Rejected(format!("malformed message: {e}")))
    }
}

/// Execute one endpoint message (what the module does with a decoded body).
pub fn handle(state: &mut dyn StateWrite, ctx: &TxContext<'_>, msg: EndpointMsg) -> Result<Vec<Event>> {
    match msg {
        EndpointMsg::UpdateHubClient { update } => update_hub_client(state, ctx, update),
        EndpointMsg::HubMisbehaviour { evidence } => hub_misbehaviour(state, ctx, *evidence),
        EndpointMsg::SendTransfer {
            destination,
            denom,
            amount,
            receiver,
            timeout_height,
            timeout_time,
        } => send_transfer(
            state,
            ctx,
            destination,
            &denom,
            amount,
            receiver,
            timeout_height,
            timeout_time,
        ),
        EndpointMsg::RecvPacket {
            packet,
            proof_height,
            proof,
        } => recv_packet(state, ctx, packet, proof_height, &proof),
        EndpointMsg::ResolvePacket {
            packet,
            outcome,
            proof_height,
            proof,
        } => resolve_packet(state, ctx, packet, outcome, proof_height, &proof),
        EndpointMsg::PrepareLeg { spec, index } => prepare_leg(state, ctx, &spec, index),
        EndpointMsg::ApplyDecision {
            spec,
            index,
            decision,
            proof_height,
            proof,
        } => apply_decision(state, ctx, &spec, index, decision, proof_height, &proof),
        EndpointMsg::VerifyRecord {
            chain,
            height,
            namespace,
            key,
            value,
            proof_height,
            proof,
        } => {
            let record = check_record(&namespace, &value.0)?;
            let hub = hub_client(state)?;
            let path = hub_path(hub_keys::attestation(&chain, height, &namespace, key.as_bytes()));
            hub.verify_membership(
                state,
                proof_height,
                &path,
                &types::attestation_value(&value.0).0,
                &proof,
            )?;
            let local = member_keys::verified_record(&chain, height, &namespace, key.as_bytes());
            state.put(
                &namespace_of_endpoint(),
                &local,
                types::attestation_value(&value.0).0.to_vec(),
            )?;
            Ok(vec![Event::new(
                "xchain.record_verified",
                &[
                    ("chain", chain.to_string()),
                    ("height", height.to_string()),
                    ("namespace", namespace.to_string()),
                    ("key", key),
                    ("writer", record.writer.to_hex()),
                    ("written_at", record.height.to_string()),
                ],
            )])
        }
    }
}

/// Apply one endpoint governance decision. Checks everything before writing.
pub fn governance(state: &mut dyn StateWrite, ctx: &TxContext<'_>, gov: EndpointGov) -> Result<Vec<Event>> {
    match gov {
        EndpointGov::CreateHubClient {
            options,
            header,
            next_validators,
        } => {
            let slot = Slot::of_hub();
            if let Some(existing) = slot.client_state(state)? {
                return Err(Error::ClientExists(existing.options.chain_id));
            }
            let hub = options.chain_id.clone();
            let c = client::create(options, &header, &next_validators, ctx.block.time)?;
            slot.create(state, c)?;
            Ok(vec![Event::new(
                "xchain.hub_client_created",
                &[("hub", hub.to_string()), ("height", header.height.to_string())],
            )])
        }
        EndpointGov::RecoverHubClient {
            header,
            next_validators,
        } => {
            Slot::of_hub().recover(state, &header, &next_validators, ctx.block.time)?;
            Ok(vec![Event::new(
                "xchain.hub_client_recovered",
                &[("height", header.height.to_string())],
            )])
        }
    }
}

fn namespace_of_endpoint() -> Namespace {
    namespace(NAMESPACE)
}

/// A data record's bytes in a record namespace, decoded: what may be attested and verified across chains.
pub fn check_record(namespace: &Namespace, value: &[u8]) -> Result<crate::exec::records::Record> {
    if crate::exec::records::owner_of(namespace).is_none() {
        return Err(Error::NotARecord(format!(
            "{namespace} is not an organisation namespace"
        )));
    }
    crate::exec::records::Record::decode(value).map_err(|e| Error::NotARecord(e.to_string()))
}

/// Whether this chain verified, through the hub, that `chain` held `value` under `(namespace, key)` at `height`.
pub fn record_verified(
    state: &(impl StateRead + ?Sized),
    chain: &ChainId,
    height: u64,
    namespace: &Namespace,
    key: &str,
    value: &[u8],
) -> Result<bool> {
    let local = member_keys::verified_record(chain, height, namespace, key.as_bytes());
    Ok(state.get(&namespace_of_endpoint(), &local)?.as_deref()
        == Some(&types::attestation_value(value).0[..]))
}

/// The whole hub client (every kept height), if created: for tools and tests.
pub fn load_hub_client(state: &(impl StateRead + ?Sized)) -> Result<Option<NativeClient>> {
    Slot::of_hub().load(state)
}

/// The hub client's slot, checked to hold a client.
fn hub_client(state: &(impl StateRead + ?Sized)) -> Result<Slot> {
    let slot = Slot::of_hub();
    if !slot.exists(state)? {
        return Err(Error::NoHubClient);
    }
    Ok(slot)
}

fn update_hub_client(
    state: &mut dyn StateWrite,
    ctx: &TxContext<'_>,
    update: HeaderUpdate,
) -> Result<Vec<Event>> {
    match Slot::of_hub().update(state, update, ctx.block.time) {
        Ok(height) => Ok(vec![Event::new(
            "xchain.hub_client_updated",
            &[("height", height.to_string())],
        )]),
        Err(Error::Client {
            source: NativeError::ConflictingHeader { height },
            ..
        }) => {
            // A second valid header at a trusted height: the client froze and is stored so (the transaction
            // succeeds, or the freeze would be rolled back with it).
            Ok(vec![Event::new(
                "xchain.hub_client_frozen",
                &[("height", height.to_string())],
            )])
        }
        Err(e) => Err(e),
    }
}

fn hub_misbehaviour(
    state: &mut dyn StateWrite,
    ctx: &TxContext<'_>,
    evidence: Misbehaviour,
) -> Result<Vec<Event>> {
    Slot::of_hub().misbehaviour(state, evidence, ctx.block.time)?;
    Ok(vec![Event::new("xchain.hub_client_frozen", &[])])
}

fn get_u128(state: &(impl StateRead + ?Sized), ns: &Namespace, key: &[u8]) -> Result<u128> {
    Ok(get_typed::<u128>(state, ns, key)?.unwrap_or(0))
}

fn put_u128(state: &mut (impl StateWrite + ?Sized), ns: &Namespace, key: &[u8], value: u128) -> Result<()> {
    if value == 0 {
        state.delete(ns, key)?;
    } else {
        put_typed(state, ns, key, &value)?;
    }
    Ok(())
}

/// The trace of `denom` if it is a voucher on this chain.
pub fn voucher_trace(state: &(impl StateRead + ?Sized), denom: &Denom) -> Result<Option<DenomTrace>> {
    Ok(get_typed(
        state,
        &namespace(NAMESPACE),
        &member_keys::trace(denom),
    )?)
}

/// Amount of native `denom` escrowed here for vouchers on `chain`.
pub fn escrowed(state: &(impl StateRead + ?Sized), chain: &ChainId, denom: &Denom) -> Result<u128> {
    get_u128(state, &denom.namespace(), &member_keys::escrow(chain))
}

/// How many packets this chain sent carrying `denom` still await their outcome.
pub fn pending_sends(state: &(impl StateRead + ?Sized), denom: &Denom) -> Result<u64> {
    Ok(get_typed::<u64>(state, &namespace(NAMESPACE), &member_keys::pending(denom))?.unwrap_or(0))
}

/// How many packets this chain sent, of any denomination, still await their outcome.
pub fn pending_sends_total(state: &(impl StateRead + ?Sized)) -> Result<u64> {
    Ok(get_typed::<u64>(state, &namespace(NAMESPACE), member_keys::PENDING_TOTAL)?.unwrap_or(0))
}

/// Count one more (`up`) or one fewer sent packet of `denom` awaiting its outcome. Lineage reads these counts: a
/// split does not move an asset, and a merge-out does not end a chain, while a packet could still need a refund.
fn count_pending(state: &mut dyn StateWrite, denom: &Denom, up: bool) -> Result<()> {
    let ns = namespace(NAMESPACE);
    let step = |n: u64| {
        if up {
            n.saturating_add(1)
        } else {
            n.saturating_sub(1)
        }
    };
    for (key, now) in [
        (member_keys::pending(denom), pending_sends(state, denom)?),
        (member_keys::PENDING_TOTAL.to_vec(), pending_sends_total(state)?),
    ] {
        match step(now) {
            0 => state.delete(&ns, &key)?,
            n => put_typed(state, &ns, &key, &n)?,
        }
    }
    Ok(())
}

/// The denomination a packet took out of its source's balances: the native asset, or the voucher it burned.
fn sent_denom(packet: &Packet) -> Denom {
    match &packet.payload {
        Payload::Transfer(t) if t.trace.home == packet.source => t.trace.base.clone(),
        Payload::Transfer(t) => t.trace.voucher_denom(),
    }
}

/// Whether this chain's lineage plan closes cross-chain sends of `denom`: a scheduled merge-out closes every
/// send (the chain must end with nothing in flight), a scheduled split those of the assets that move.
fn sends_closed(state: &(impl StateRead + ?Sized), denom: &Denom) -> Result<Option<String>> {
    use crate::exec::lineage::{self, LineagePlan};
    Ok(match lineage::plan(state)? {
        Some(LineagePlan::MergeOut(p)) => Some(format!(
            "this chain merges out into {} at height {}: cross-chain sends are closed",
            p.merged, p.final_height
        )),
        Some(LineagePlan::Split(p)) if p.namespaces.binary_search(&denom.namespace()).is_ok() => {
            Some(format!(
                "{denom} moves to {} at height {}: its cross-chain sends are closed",
                p.child, p.height
            ))
        }
        _ => None,
    })
}

/// The authority that issues vouchers (no key controls it).
pub fn voucher_authority() -> Address {
    module_address("voucher")
}

fn escrow(
    state: &mut dyn StateWrite,
    from: Address,
    chain: &ChainId,
    denom: &Denom,
    amount: Amount,
) -> Result<()> {
    assets::transfer(state, from, escrow_address(), denom, amount)?;
    let (ns, key) = (denom.namespace(), member_keys::escrow(chain));
    let now = get_u128(state, &ns, &key)?;
    put_u128(
        state,
        &ns,
        &key,
        now.checked_add(amount.0)
            .ok_or(Error::Asset(TxFailure::Overflow))?,
    )
}

fn release(
    state: &mut dyn StateWrite,
    to: Address,
    chain: &ChainId,
    denom: &Denom,
    amount: Amount,
) -> Result<()> {
    let (ns, key) = (denom.namespace(), member_keys::escrow(chain));
    let now = get_u128(state, &ns, &key)?;
    let left = now.checked_sub(amount.0).ok_or_else(|| {
        Error::Transfer(format!(
            "only {now} of {denom} escrowed for {chain}, {amount} asked"
        ))
    })?;
    put_u128(state, &ns, &key, left)?;
    assets::transfer(state, escrow_address(), to, denom, amount)?;
    Ok(())
}

fn mint_voucher(state: &mut dyn StateWrite, trace: &DenomTrace, to: Address, amount: Amount) -> Result<()> {
    let voucher = trace.voucher_denom();
    match voucher_trace(state, &voucher)? {
        Some(t) if &t == trace => {}
        Some(_) => {
            return Err(Error::Transfer(format!(
                "voucher denomination {voucher} is taken"
            )))
        }
        None => {
            if assets::meta(state, &voucher)?.is_some() {
                return Err(Error::Transfer(format!(
                    "denomination {voucher} is a local asset"
                )));
            }
            put_typed(state, &namespace(NAMESPACE), &member_keys::trace(&voucher), trace)?;
        }
    }
    assets::issue(state, voucher_authority(), to, &voucher, amount)?;
    Ok(())
}

fn next_sequence(state: &mut dyn StateWrite) -> Result<u64> {
    let ns = namespace(NAMESPACE);
    let seq: u64 = get_typed(state, &ns, member_keys::NEXT_SEQUENCE)?.unwrap_or(1);
    put_typed(
        state,
        &ns,
        member_keys::NEXT_SEQUENCE,
        &seq.checked_add(1).ok_or(Error::Asset(TxFailure::Overflow))?,
    )?;
    Ok(seq)
}

#[allow(clippy::too_many_arguments)]
fn send_transfer(
    state: &mut dyn StateWrite,
    ctx: &TxContext<'_>,
    destination: ChainId,
    denom: &Denom,
    amount: Amount,
    receiver: Address,
    timeout_height: u64,
    timeout_time: Time,
) -> Result<Vec<Event>> {
    let own = &ctx.block.chain_id;
    hub_client(state)?;
    if amount.0 == 0 {
        return Err(Error::Transfer("amount must be positive".into()));
    }
    if &destination == own {
        return Err(Error::Transfer("destination is this chain".into()));
    }
    if let Some(why) = sends_closed(state, denom)? {
        return Err(Error::Transfer(why));
    }
    let trace = match voucher_trace(state, denom)? {
        Some(trace) => {
            if trace.home != destination {
                return Err(Error::Transfer(format!(
                    "a voucher of {}/{} can only go back to {}",
                    trace.home, trace.base, trace.home
                )));
            }
            assets::burn(state, ctx.sender, denom, amount)?;
            trace
        }
        None => {
            escrow(state, ctx.sender, &destination, denom, amount)?;
            DenomTrace {
                home: own.clone(),
                base: denom.clone(),
            }
        }
    };
    let packet = Packet {
        source: own.clone(),
        destination,
        sequence: 0,
        timeout_height,
        timeout_time,
        payload: Payload::Transfer(TransferData {
            trace,
            amount,
            sender: ctx.sender,
            receiver,
        }),
    };
    let sequence = next_sequence(state)?;
    let packet = Packet { sequence, ..packet };
    packet.validate()?;
    count_pending(state, denom, true)?;
    state.put(
        &namespace(NAMESPACE),
        &member_keys::commitment(sequence),
        packet.commitment().0.to_vec(),
    )?;
    Ok(vec![Event::new(
        "xchain.send",
        &[
            ("sequence", sequence.to_string()),
            ("destination", packet.destination.to_string()),
            ("packet", hex::encode(packet.encode())),
        ],
    )])
}

/// Apply `f` to a scratch overlay over `state` and keep its writes only if it succeeds.
fn all_or_nothing<T>(
    state: &mut dyn StateWrite,
    f: impl FnOnce(&mut dyn StateWrite) -> Result<T>,
) -> Result<Result<T>> {
    let (result, writes) = {
        let mut scratch = Overlay::new(&*state);
        let result = f(&mut scratch);
        scratch.commit_tx();
        (result, scratch.into_write_set())
    };
    match result {
        Err(Error::Fatal(e)) => Err(Error::Fatal(e)),
        Err(e) => Ok(Err(e)),
        Ok(v) => {
            for (ns, changes) in writes.namespaces() {
                for (key, value) in changes {
                    match value {
                        Some(v) => state.put(ns, key, v.clone())?,
                        None => state.delete(ns, key)?,
                    }
                }
            }
            Ok(Ok(v))
        }
    }
}

fn recv_packet(
    state: &mut dyn StateWrite,
    ctx: &TxContext<'_>,
    packet: Packet,
    proof_height: u64,
    proof: &StateProof,
) -> Result<Vec<Event>> {
    packet.validate()?;
    let own = &ctx.block.chain_id;
    // The hub's forward commitment under this chain's id (proven below) says the packet is for this chain. Its
    // destination field names another chain only when the hub routed it here: an asset coming home to a chain
    // that has since split it off or merged out, which this chain now carries.
    let hub = hub_client(state)?;
    let ns = namespace(NAMESPACE);
    let receipt = member_keys::receipt(&packet.source, packet.sequence);
    if state.get(&ns, &receipt)?.is_some() {
        return Err(Error::AlreadyReceived {
            source_chain: packet.source,
            sequence: packet.sequence,
        });
    }
    if packet.expired_at(ctx.block.height, ctx.block.time) {
        return Err(Error::Expired {
            source_chain: packet.source,
            sequence: packet.sequence,
        });
    }
    let path = hub_path(hub_keys::forward(own, &packet.source, packet.sequence));
    hub.verify_membership(state, proof_height, &path, &packet.commitment().0, proof)?;
    let applied = all_or_nothing(state, |s| apply_payload(s, own, &packet))?;
    let ack = match applied {
        Ok(()) => Ack::Success,
        Err(e) => Ack::Error(e.to_string()),
    };
    state.put(&ns, &receipt, ack.commitment().0.to_vec())?;
    Ok(vec![Event::new(
        "xchain.recv",
        &[
            ("source", packet.source.to_string()),
            ("sequence", packet.sequence.to_string()),
            ("ack", hex::encode(borsh::to_vec(&ack).unwrap_or_default())),
        ],
    )])
}

fn apply_payload(state: &mut dyn StateWrite, own: &ChainId, packet: &Packet) -> Result<()> {
    match &packet.payload {
        Payload::Transfer(t) => {
            if t.trace.home == packet.destination {
                // Coming home: release what was escrowed for the chain it comes back from. Home may be a chain
                // this one succeeds: the asset's namespace, escrow included, moved here with it.
                release(state, t.receiver, &packet.source, &t.trace.base, t.amount)
            } else if &packet.destination != own {
                Err(Error::Transfer(format!(
                    "only assets coming home to {} are routed to its successor {own}",
                    packet.destination
                )))
            } else if t.trace.home == packet.source {
                if let Some(crate::exec::lineage::LineagePlan::MergeOut(p)) =
                    crate::exec::lineage::plan(state)?
                {
                    return Err(Error::Transfer(format!(
                        "this chain merges out into {} at height {}: it takes no new vouchers",
                        p.merged, p.final_height
                    )));
                }
                mint_voucher(state, &t.trace, t.receiver, t.amount)
            } else {
                Err(Error::Transfer(format!(
                    "{}/{} arrives from {}, not from its home",
                    t.trace.home, t.trace.base, packet.source
                )))
            }
        }
    }
}

fn refund(state: &mut dyn StateWrite, packet: &Packet) -> Result<()> {
    match &packet.payload {
        Payload::Transfer(t) => {
            if t.trace.home == packet.source {
                release(state, t.sender, &packet.destination, &t.trace.base, t.amount)
            } else {
                mint_voucher(state, &t.trace, t.sender, t.amount)
            }
        }
    }
}

fn resolve_packet(
    state: &mut dyn StateWrite,
    ctx: &TxContext<'_>,
    packet: Packet,
    outcome: Outcome,
    proof_height: u64,
    proof: &StateProof,
) -> Result<Vec<Event>> {
    let own = &ctx.block.chain_id;
    if &packet.source != own {
        return Err(Error::WrongSource {
            expected: own.clone(),
            got: packet.source,
        });
    }
    let ns = namespace(NAMESPACE);
    let key = member_keys::commitment(packet.sequence);
    let stored = state
        .get(&ns, &key)?
        .ok_or(Error::UnknownPacket(packet.sequence))?;
    if stored != packet.commitment().0 {
        return Err(Error::CommitmentMismatch(packet.sequence));
    }
    let hub = hub_client(state)?;
    let path = hub_path(hub_keys::outcome(own, packet.sequence));
    hub.verify_membership(state, proof_height, &path, &outcome.commitment().0, proof)?;
    state.delete(&ns, &key)?;
    count_pending(state, &sent_denom(&packet), false)?;
    if outcome.is_failure() {
        refund(state, &packet)?;
    }
    let kind = match &outcome {
        Outcome::Acknowledged(Ack::Success) => "success",
        Outcome::Acknowledged(Ack::Error(_)) => "error",
        Outcome::TimedOut => "timeout",
    };
    Ok(vec![Event::new(
        "xchain.resolved",
        &[
            ("sequence", packet.sequence.to_string()),
            ("outcome", kind.into()),
        ],
    )])
}

/// The state of leg `index` of atomic transaction `id` on this chain.
pub fn leg_state(state: &(impl StateRead + ?Sized), id: &Hash, index: u32) -> Result<Option<LegState>> {
    Ok(get_typed(
        state,
        &namespace(NAMESPACE),
        &member_keys::leg(id, index),
    )?)
}

fn own_leg<'a>(spec: &'a AtomicSpec, index: u32, own: &ChainId) -> Result<&'a types::Leg> {
    spec.validate()?;
    let leg = spec
        .legs
        .get(index as usize)
        .ok_or_else(|| Error::Atomic(format!("no leg {index} in a deal of {} legs", spec.legs.len())))?;
    if &leg.chain != own {
        return Err(Error::Atomic(format!(
            "leg {index} executes on {}, not here",
            leg.chain
        )));
    }
    Ok(leg)
}

fn prepare_leg(
    state: &mut dyn StateWrite,
    ctx: &TxContext<'_>,
    spec: &AtomicSpec,
    index: u32,
) -> Result<Vec<Event>> {
    let leg = own_leg(spec, index, &ctx.block.chain_id)?;
    if ctx.sender != leg.from {
        return Err(Error::Atomic(format!(
            "leg {index} is paid by {}, not by the signer",
            leg.from
        )));
    }
    if ctx.block.time >= spec.deadline {
        return Err(Error::Atomic("the deadline has passed".into()));
    }
    let id = spec.id();
    if let Some(s) = leg_state(state, &id, index)? {
        return Err(Error::Atomic(format!("leg {index} is already {s:?}")));
    }
    assets::transfer(state, leg.from, lock_address(), &leg.denom, leg.amount)?;
    let ns = namespace(NAMESPACE);
    put_typed(state, &ns, &member_keys::leg(&id, index), &LegState::Prepared)?;
    state.put(
        &ns,
        &member_keys::prepared(&id, index),
        spec.prepared_commitment(index).0.to_vec(),
    )?;
    Ok(vec![Event::new(
        "xchain.leg_prepared",
        &[
            ("id", id.to_hex()),
            ("index", index.to_string()),
            ("spec", hex::encode(spec.encode())),
        ],
    )])
}

fn apply_decision(
    state: &mut dyn StateWrite,
    ctx: &TxContext<'_>,
    spec: &AtomicSpec,
    index: u32,
    decision: Decision,
    proof_height: u64,
    proof: &StateProof,
) -> Result<Vec<Event>> {
    let leg = own_leg(spec, index, &ctx.block.chain_id)?;
    let id = spec.id();
    let hub = hub_client(state)?;
    let path = hub_path(hub_keys::decision(&id));
    hub.verify_membership(state, proof_height, &path, &decision.commitment(&id).0, proof)?;
    let next = match (leg_state(state, &id, index)?, decision) {
        (Some(LegState::Prepared), Decision::Commit) => {
            assets::transfer(state, lock_address(), leg.to, &leg.denom, leg.amount)?;
            LegState::Committed
        }
        (Some(LegState::Prepared), Decision::Abort) => {
            assets::transfer(state, lock_address(), leg.from, &leg.denom, leg.amount)?;
            LegState::Aborted
        }
        // Never prepared: an abort closes the leg so it can no longer be prepared.
        (None, Decision::Abort) => LegState::Aborted,
        (None, Decision::Commit) => {
            return Err(Error::Atomic(format!(
                "commit proven for leg {index}, which was never prepared here"
            )))
        }
        (Some(_), _) => return Err(Error::AlreadyDecided(id)),
    };
    put_typed(state, &namespace(NAMESPACE), &member_keys::leg(&id, index), &next)?;
    Ok(vec![Event::new(
        "xchain.leg_decided",
        &[
            ("id", id.to_hex()),
            ("index", index.to_string()),
            ("state", format!("{next:?}")),
        ],
    )])
}

#[cfg(test)]
mod tests;
