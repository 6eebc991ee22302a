//! # causeway-hub
//!
//! The hub of a Causeway alliance (DESIGN §6), as an extension module of the ledger engine: the hub chain runs
//! `causeway-chain` with [`Hub`] among its extensions.
//!
//! **Owns**: the `sys/hub` namespace ([`hub_keys`]): one light client per member chain (admitted by hub
//! governance, updated by anyone, frozen by misbehaviour evidence, recovered only by governance), the hub's record
//! of every packet it received (exactly once per source and sequence), the re-commitments it makes for each
//! destination, the outcome it records for each source (acknowledgement or proven timeout), and the coordinator of
//! atomic transactions (which legs were proven prepared, and the one decision per transaction).
//!
//! **Must never**: trust a relayer (every member fact is a proof against a consensus state of that member's
//! client); forward, resolve or decide anything twice; decide COMMIT without having verified every leg's prepare at
//! a hub block time before the deadline; read a clock (time is the hub block's); perform I/O.
//!
//! ## Packet routing
//! 1. [`HubMsg::RecvPacket`]: the source's commitment is proven with the source's client; the hub records the
//!    packet and re-commits it under [`hub_keys::forward`] for the destination (or, if the destination is not a
//!    member, records an error outcome at once and forwards nothing).
//! 2. The destination proves the forward commitment with its hub client and writes a receipt holding its ack.
//! 3. [`HubMsg::AcknowledgePacket`] proves that receipt with the destination's client, or
//!    [`HubMsg::TimeoutPacket`] proves its absence at a destination height past the deadline; either way the hub
//!    deletes the forward commitment and records the [`Outcome`] under [`hub_keys::outcome`] for the source.
//!
//! ## Lineage
//! [`HubMsg::RegisterSplitChild`] proves a member's split record with that member's client and creates the child's
//! client from a child header signed by the validators the record names (the parent's governance chose them); the
//! hub remembers where the child comes from ([`lineage`]) and routes the departed assets to it: a packet
//! addressed to the parent that brings one of them home (its trace's home is the parent) is forwarded to the
//! child instead ([`delivery_chain`], [`hub_keys::route`]), whose state now holds the asset and the escrow that
//! backs its vouchers; its acknowledgement or timeout is then proven with the child's client. Routes chain: an
//! asset that moved twice reaches the chain that holds it now.
//!
//! [`HubMsg::RegisterMerged`] proves both parents' merge-out records (each with its parent's client, at or after
//! the parent's final height), checks that they describe one merge (each names the other as partner, the same
//! merged chain, validators and profile, disjoint namespaces), and creates the merged chain's client from a header
//! signed by the validators the records name. Both parents are then *retired* ([`retired`]) and their assets
//! routed to the merged chain as for a split: a packet bringing one home is forwarded to the merged chain; any
//! other packet addressed to a retired chain is answered at once with an error acknowledgement naming its
//! successor (the source refunds), a packet forwarded to it before the merge is resolved by its receipt or,
//! since the parent never produces another block, by a proof of absence at any height from its final height on
//! (a timeout, refunded); its client accepts no header past the final height. Proofs up to the final height still verify, so every
//! packet in flight drains; none is lost or executed twice.
//!
//! ## Data verification
//! [`HubMsg::AttestRecord`] proves a member's data record at a height with that member's client and stores an
//! attestation under [`hub_keys::attestation`]; any member verifies it against its hub client
//! (`EndpointMsg::VerifyRecord`).
//!
//! ## Atomic transactions
//! [`HubMsg::ProvePrepare`] proves one leg's prepare on its chain. Once every leg is proven at hub time before the
//! deadline, the hub records COMMIT; a proof arriving at or after the deadline, or [`HubMsg::AbortExpired`], records
//! ABORT. The decision is written once under [`hub_keys::decision`] and each chain applies it with a proof.
#![forbid(unsafe_code)]
#![cfg_attr(test, allow(clippy::unwrap_used))]

use std::sync::Arc;

use borsh::{BorshDeserialize, BorshSerialize};
use causeway_chain::exec::lineage::{
    merge_out_record_key, split_record_key, MergeOutRecord, SplitRecord, LINEAGE,
};
use causeway_chain::exec::{get_typed, put_typed, Event, Extension, Fail, TxContext};
use causeway_chain::message::{Bytes, Denom, GovAction, Message};
use causeway_chain::state::{StateRead, StateWrite};
use causeway_chain::xchain::client::{self, Slot};
use causeway_chain::xchain::types::{
    hub_keys, member_keys, member_path, namespace, Ack, AtomicSpec, Decision, Outcome, Packet, Payload,
    HUB_MODULE, HUB_NAMESPACE,
};
use causeway_chain::xchain::{Error, Result};
use causeway_light_client::commit::verify_commit;
use causeway_light_client::{
    Canonical, ChainId, CommitCertificate, Hash, Header, HeaderUpdate, Misbehaviour, Namespace, NativeClient,
    NativeError, StatePath, StateProof, TrustOptions, ValidatorSet,
};

pub use causeway_chain::xchain::types;

/// What the hub module accepts (the body of [`Message::Ext`] with module [`HUB_MODULE`]).
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum HubMsg {
    /// Move the client of member `chain` forward (anyone; a relayer).
    UpdateClient {
        /// The member.
        chain: ChainId,
        /// Its header with certificate and validator sets.
        update: HeaderUpdate,
    },
    /// Freeze the client of `chain` with evidence of two conflicting headers (anyone).
    SubmitMisbehaviour {
        /// The member.
        chain: ChainId,
        /// The evidence.
        evidence: Box<Misbehaviour>,
    },
    /// Receive a packet its source committed, and forward it to its destination (anyone; a relayer).
    RecvPacket {
        /// The packet.
        packet: Packet,
        /// Source height of the proof (a height the source's client trusts).
        proof_height: u64,
        /// Proof of the source's commitment ([`member_keys::commitment`]).
        proof: StateProof,
    },
    /// Record the destination's acknowledgement of a forwarded packet (anyone; a relayer).
    AcknowledgePacket {
        /// The packet.
        packet: Packet,
        /// The destination's acknowledgement.
        ack: Ack,
        /// Destination height of the proof.
        proof_height: u64,
        /// Proof of the destination's receipt ([`member_keys::receipt`]) holding the ack's commitment.
        proof: StateProof,
    },
    /// Record that a forwarded packet timed out: the destination has no receipt at a height past the deadline.
    TimeoutPacket {
        /// The packet.
        packet: Packet,
        /// Destination height of the proof (its time or height is past the packet's deadline).
        proof_height: u64,
        /// Proof of absence of the destination's receipt.
        proof: StateProof,
    },
    /// Prove that leg `index` of `spec` is prepared on its chain (anyone; a relayer).
    ProvePrepare {
        /// The atomic transaction.
        spec: AtomicSpec,
        /// Which leg.
        index: u32,
        /// Height of the proof on the leg's chain.
        proof_height: u64,
        /// Proof of the leg's prepare record ([`member_keys::prepared`]).
        proof: StateProof,
    },
    /// Attest that member `chain` held the data record `value` under `(namespace, key)` at `height`, proven with
    /// its client, so any member can verify it against the hub (anyone).
    AttestRecord {
        /// The member holding the record.
        chain: ChainId,
        /// The member height of the proof.
        height: u64,
        /// The record's namespace (`org/<id>…`).
        namespace: Namespace,
        /// The record's key.
        key: String,
        /// The stored record (canonical bytes).
        value: Bytes,
        /// Proof of membership at `height`.
        proof: StateProof,
    },
    /// Abort an undecided atomic transaction whose deadline has passed at this hub block (anyone).
    AbortExpired {
        /// The atomic transaction.
        spec: AtomicSpec,
    },
    /// Register the chain two members merged into (anyone; a relayer): both merge-out records are proven with
    /// their parents' clients, and the merged chain's client is created from a header signed by more than 2/3 of
    /// the validators the records name. Both parents are retired (see the crate documentation).
    RegisterMerged {
        /// The two parents' sides, each proven with that parent's client.
        parents: Box<[MergedParent; 2]>,
        /// A header of the merged chain, signed by the records' validators and naming them as the next set too.
        header: Box<Header>,
        /// Its commit certificate.
        commit: CommitCertificate,
    },
    /// Register the child of a split its parent committed (anyone; a relayer): the parent's split record is proven
    /// with the parent's client, and the child's client is created from a child header signed by more than 2/3
    /// of the validators that record names — no governance vote, the parent's governance already chose them.
    RegisterSplitChild {
        /// The parent member.
        parent: ChainId,
        /// Parent height of the proof (at or after the split height).
        proof_height: u64,
        /// The split record as the parent committed it.
        record: Box<SplitRecord>,
        /// Proof of the record under the parent's `sys/lineage` split key.
        proof: StateProof,
        /// A header of the child, signed by the record's validators and naming them as the next set too.
        header: Box<Header>,
        /// Its commit certificate.
        commit: CommitCertificate,
    },
}

impl Canonical for HubMsg {
    const KIND: &'static str = "hub message";
    const MAX_LEN: usize = causeway_chain::tx::MAX_TX_BYTES;
}

impl HubMsg {
    /// The transaction message carrying this one.
    pub fn into_message(self) -> Message {
        Message::Ext {
            module: HUB_MODULE.into(),
            body: Bytes(self.encode()),
        }
    }
}

/// Decisions of hub governance (the body of a [`GovAction::Ext`] for [`HUB_MODULE`]).
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum HubGov {
    /// Admit a member chain: create its light client.
    AdmitMember {
        /// Trust options (the member's chain id and hash function among them).
        options: TrustOptions,
        /// The member header to trust.
        header: Header,
        /// The validator set that signs the height after it (hashes to its `next_validators_hash`).
        next_validators: ValidatorSet,
    },
    /// Recover a frozen or expired member client from a new trusted header.
    RecoverClient {
        /// The member.
        chain: ChainId,
        /// The header to trust.
        header: Header,
        /// Its next validator set.
        next_validators: ValidatorSet,
    },
}

impl Canonical for HubGov {
    const KIND: &'static str = "hub governance decision";
    const MAX_LEN: usize = 256 * 1024;
}

impl HubGov {
    /// The governance action carrying this decision.
    pub fn into_action(self) -> GovAction {
        GovAction::Ext {
            module: HUB_MODULE.into(),
            body: Bytes(self.encode()),
        }
    }
}

/// The hub's record of a packet it received.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct PacketRecord {
    /// The packet's commitment.
    pub commitment: Hash,
    /// The chain it was forwarded to: its destination, or the chain that holds its asset now
    /// ([`delivery_chain`]). Its acknowledgement or timeout is proven with this chain's client.
    pub destination: ChainId,
    /// True once its outcome is recorded.
    pub resolved: bool,
}

/// The legs of an atomic transaction proven prepared so far.
#[derive(Clone, Debug, Default, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct AtomicRecord {
    /// One flag per leg.
    pub prepared: Vec<bool>,
}

/// One parent's side of a merge, as [`HubMsg::RegisterMerged`] carries it.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct MergedParent {
    /// Parent height of the proof (at or after its final height).
    pub proof_height: u64,
    /// The merge-out record as the parent committed it.
    pub record: MergeOutRecord,
    /// Proof of the record under the parent's `sys/lineage` merge-out key.
    pub proof: StateProof,
}

/// Where a member registered as a merged chain comes from (under [`hub_keys::merged_from`]).
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Merger {
    /// Each parent, its final height and its merge-out record's hash, in the order registered.
    pub parents: Vec<(ChainId, u64, Hash)>,
}

/// What the hub keeps of a member that merged out (under [`hub_keys::retired`]).
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Retired {
    /// The merged chain it went into.
    pub successor: ChainId,
    /// Its final height: it produces no block after it.
    pub final_height: u64,
}

/// The parents of member `chain`, if it was registered as a merged chain.
pub fn merger(state: &(impl StateRead + ?Sized), chain: &ChainId) -> Result<Option<Merger>> {
    Ok(get_typed(state, &ns(), &hub_keys::merged_from(chain))?)
}

/// The successor of member `chain`, if it merged out.
pub fn retired(state: &(impl StateRead + ?Sized), chain: &ChainId) -> Result<Option<Retired>> {
    Ok(get_typed(state, &ns(), &hub_keys::retired(chain))?)
}

/// Where a member registered as a successor comes from (under [`hub_keys::lineage`]).
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Lineage {
    /// The parent chain.
    pub parent: ChainId,
    /// The parent's split height.
    pub split_height: u64,
    /// The split record's hash (as the parent committed it, with the parent's hash function).
    pub record: Hash,
}

/// The hub's record of where member `chain` comes from, if it was registered as a split child.
pub fn lineage(state: &(impl StateRead + ?Sized), chain: &ChainId) -> Result<Option<Lineage>> {
    Ok(get_typed(state, &ns(), &hub_keys::lineage(chain))?)
}

/// The hub module. Add it to the hub chain's extensions.
#[derive(Clone, Copy, Debug, Default)]
pub struct Hub;

impl Hub {
    /// The module, ready for `App::open` or `TestChain::open`.
    pub fn extension() -> Arc<dyn Extension> {
        Arc::new(Hub)
    }
}

impl Extension for Hub {
    fn name(&self) -> &'static str {
        HUB_MODULE
    }

    fn handle(
        &self,
        state: &mut dyn StateWrite,
        ctx: &TxContext<'_>,
        body: &[u8],
    ) -> Result<Vec<Event>, Fail> {
        let msg = HubMsg::decode(body).map_err(Error::Decode)?;
        Ok(handle(state, ctx, msg)?)
    }

    fn governance(
        &self,
        state: &mut dyn StateWrite,
        ctx: &TxContext<'_>,
        body: &[u8],
    ) -> Result<Vec<Event>, Fail> {
        let gov = HubGov::decode(body).map_err(Error::Decode)?;
        Ok(governance(state, ctx, gov)?)
    }
}

fn ns() -> causeway_light_client::Namespace {
    namespace(HUB_NAMESPACE)
}

/// The whole client of member `chain` (every kept height), if admitted: for tools and tests.
pub fn load_client(state: &(impl StateRead + ?Sized), chain: &ChainId) -> Result<Option<NativeClient>> {
    Slot::of_member(chain).load(state)
}

/// Whether member `chain` has a client here, read without loading any of its heights.
pub fn is_member(state: &(impl StateRead + ?Sized), chain: &ChainId) -> Result<bool> {
    Slot::of_member(chain).exists(state)
}

/// The slot of member `chain`'s client (its methods fail with `NoClient` when there is none).
fn member_client(chain: &ChainId) -> Slot {
    Slot::of_member(chain)
}

/// The hub's record of packet `(source, sequence)`.
pub fn packet_record(
    state: &(impl StateRead + ?Sized),
    source: &ChainId,
    sequence: u64,
) -> Result<Option<PacketRecord>> {
    Ok(get_typed(state, &ns(), &hub_keys::receipt(source, sequence))?)
}

/// The decision on atomic transaction `id`, if taken.
pub fn decision(state: &(impl StateRead + ?Sized), id: &Hash) -> Result<Option<Decision>> {
    let Some(raw) = state.get(&ns(), &hub_keys::decision(id))? else {
        return Ok(None);
    };
    for d in [Decision::Commit, Decision::Abort] {
        if raw == d.commitment(id).0 {
            return Ok(Some(d));
        }
    }
    Err(Error::Fatal(causeway_chain::exec::ExecError::Corrupt {
        namespace: HUB_NAMESPACE.into(),
        reason: format!("decision of {id} is neither commit nor abort"),
    }))
}

/// Apply one hub governance decision. Checks everything before writing.
pub fn governance(state: &mut dyn StateWrite, ctx: &TxContext<'_>, gov: HubGov) -> Result<Vec<Event>> {
    match gov {
        HubGov::AdmitMember {
            options,
            header,
            next_validators,
        } => {
            let chain = options.chain_id.clone();
            if chain == ctx.block.chain_id {
                return Err(Error::Governance("the hub cannot admit itself".into()));
            }
            if is_member(state, &chain)? {
                return Err(Error::ClientExists(chain));
            }
            let c = client::create(options, &header, &next_validators, ctx.block.time)?;
            member_client(&chain).create(state, c)?;
            Ok(vec![Event::new(
                "hub.member_admitted",
                &[
                    ("chain", chain.to_string()),
                    ("height", header.height.to_string()),
                ],
            )])
        }
        HubGov::RecoverClient {
            chain,
            header,
            next_validators,
        } => {
            member_client(&chain).recover(state, &header, &next_validators, ctx.block.time)?;
            Ok(vec![Event::new(
                "hub.client_recovered",
                &[
                    ("chain", chain.to_string()),
                    ("height", header.height.to_string()),
                ],
            )])
        }
    }
}

/// Execute one hub message.
pub fn handle(state: &mut dyn StateWrite, ctx: &TxContext<'_>, msg: HubMsg) -> Result<Vec<Event>> {
    match msg {
        HubMsg::UpdateClient { chain, update } => update_client(state, ctx, &chain, update),
        HubMsg::SubmitMisbehaviour { chain, evidence } => {
            member_client(&chain).misbehaviour(state, *evidence, ctx.block.time)?;
            Ok(vec![Event::new(
                "hub.client_frozen",
                &[("chain", chain.to_string())],
            )])
        }
        HubMsg::RecvPacket {
            packet,
            proof_height,
            proof,
        } => recv_packet(state, packet, proof_height, &proof),
        HubMsg::AcknowledgePacket {
            packet,
            ack,
            proof_height,
            proof,
        } => acknowledge(state, packet, ack, proof_height, &proof),
        HubMsg::TimeoutPacket {
            packet,
            proof_height,
            proof,
        } => timeout(state, packet, proof_height, &proof),
        HubMsg::ProvePrepare {
            spec,
            index,
            proof_height,
            proof,
        } => prove_prepare(state, ctx, &spec, index, proof_height, &proof),
        HubMsg::AttestRecord {
            chain,
            height,
            namespace,
            key,
            value,
            proof,
        } => {
            causeway_chain::xchain::check_record(&namespace, &value.0)?;
            let path = StatePath::new(namespace.clone(), key.as_bytes().to_vec()).encode();
            member_client(&chain).verify_membership(state, height, &path, &value.0, &proof)?;
            let attestation = hub_keys::attestation(&chain, height, &namespace, key.as_bytes());
            state.put(&ns(), &attestation, types::attestation_value(&value.0).0.to_vec())?;
            Ok(vec![Event::new(
                "hub.record_attested",
                &[
                    ("chain", chain.to_string()),
                    ("height", height.to_string()),
                    ("namespace", namespace.to_string()),
                    ("key", key),
                ],
            )])
        }
        HubMsg::RegisterSplitChild {
            parent,
            proof_height,
            record,
            proof,
            header,
            commit,
        } => register_split_child(
            state,
            ctx,
            &parent,
            proof_height,
            &record,
            &proof,
            &header,
            &commit,
        ),
        HubMsg::RegisterMerged {
            parents,
            header,
            commit,
        } => register_merged(state, ctx, &parents, &header, &commit),
        HubMsg::AbortExpired { spec } => {
            spec.validate()?;
            let id = spec.id();
            if decision(state, &id)?.is_some() {
                return Err(Error::AlreadyDecided(id));
            }
            if ctx.block.time < spec.deadline {
                return Err(Error::Atomic("the deadline has not passed".into()));
            }
            decide(state, &id, Decision::Abort)
        }
    }
}

/// [`HubMsg::RegisterSplitChild`]: every check before any write.
#[allow(clippy::too_many_arguments)]
fn register_split_child(
    state: &mut dyn StateWrite,
    ctx: &TxContext<'_>,
    parent: &ChainId,
    proof_height: u64,
    record: &SplitRecord,
    proof: &StateProof,
    header: &Header,
    commit: &CommitCertificate,
) -> Result<Vec<Event>> {
    record.validate()?;
    let child = &record.child;
    if record.parent != *parent {
        return Err(Error::Lineage(format!(
            "the record is {}'s split, not {parent}'s",
            record.parent
        )));
    }
    if *child == ctx.block.chain_id || child == parent {
        return Err(Error::Lineage(format!(
            "{child} cannot be registered as a child of {parent}"
        )));
    }
    if is_member(state, child)? {
        return Err(Error::ClientExists(child.clone()));
    }
    if proof_height < record.height {
        return Err(Error::Lineage(format!(
            "the record is committed at height {}; a proof at {proof_height} cannot show it",
            record.height
        )));
    }
    // The record, proven against a header of the parent its client trusts.
    let parent_client = member_client(parent);
    let path = StatePath::new(namespace(LINEAGE), split_record_key(record.height)).encode();
    let committed = record.encode();
    parent_client.verify_membership(state, proof_height, &path, &committed, proof)?;
    let parent_options = parent_client.options(state)?;

    // The child's first trusted header: decided by the validators the record names.
    let alg = parent_options.hash_alg;
    let set = check_successor_header(child, &record.validators, alg, header, commit)?;
    let options = TrustOptions {
        chain_id: child.clone(),
        ..parent_options
    };
    let c = client::create(options, header, &set, ctx.block.time)?;
    member_client(child).create(state, c)?;
    let entry = Lineage {
        parent: parent.clone(),
        split_height: record.height,
        record: alg.hash(&committed),
    };
    put_typed(state, &ns(), &hub_keys::lineage(child), &entry)?;
    add_routes(state, parent, record.departed.iter(), child)?;
    Ok(vec![Event::new(
        "hub.split_child_registered",
        &[
            ("child", child.to_string()),
            ("parent", parent.to_string()),
            ("split_height", record.height.to_string()),
            ("trusted_height", header.height.to_string()),
        ],
    )])
}

/// The first trusted header of a successor chain: of `chain`, decided by the `validators` its parent(s) named
/// (more than 2/3 of them signed `commit`, which is for this header); returns the set.
fn check_successor_header(
    chain: &ChainId,
    validators: &[causeway_light_client::Validator],
    alg: causeway_light_client::HashAlg,
    header: &Header,
    commit: &CommitCertificate,
) -> Result<ValidatorSet> {
    let set = ValidatorSet::new(validators.to_vec())
        .map_err(|e| Error::Lineage(format!("the record's validators: {e}")))?;
    if header.chain_id != *chain {
        return Err(Error::Lineage(format!(
            "the header is of {}, not of {chain}",
            header.chain_id
        )));
    }
    if header.validators_hash != set.hash(alg) {
        return Err(Error::Lineage(
            "the header's validators are not the ones the record names".into(),
        ));
    }
    if commit.height != header.height || commit.block_id != header.hash(alg) {
        return Err(Error::Lineage(
            "the certificate decides another block than the header".into(),
        ));
    }
    verify_commit(chain.as_str(), &set, commit)
        .map_err(|e| Error::Lineage(format!("the successor's certificate: {e}")))?;
    Ok(set)
}

/// [`HubMsg::RegisterMerged`]: every check before any write.
fn register_merged(
    state: &mut dyn StateWrite,
    ctx: &TxContext<'_>,
    parents: &[MergedParent; 2],
    header: &Header,
    commit: &CommitCertificate,
) -> Result<Vec<Event>> {
    let [first, second] = parents;
    let (a, b) = (&first.record, &second.record);
    a.validate()?;
    b.validate()?;
    let merged = &a.merged;
    if a.partner != b.chain || b.partner != a.chain || a.chain == b.chain {
        return Err(Error::Lineage(format!(
            "{} names {} as partner and {} names {}: not one merge",
            a.chain, a.partner, b.chain, b.partner
        )));
    }
    if b.merged != *merged || a.validators != b.validators || a.profile != b.profile {
        return Err(Error::Lineage(
            "the two records disagree on the merged chain, its validators or its profile".into(),
        ));
    }
    let clash = a
        .namespaces
        .iter()
        .find(|(n, _)| b.namespaces.binary_search_by(|(m, _)| m.cmp(n)).is_ok());
    if let Some((ns, _)) = clash {
        return Err(Error::Lineage(format!("namespace {ns} is in both parents")));
    }
    if *merged == ctx.block.chain_id || *merged == a.chain || *merged == b.chain {
        return Err(Error::Lineage(format!(
            "{merged} cannot be registered as the merge of {} and {}",
            a.chain, b.chain
        )));
    }
    if is_member(state, merged)? {
        return Err(Error::ClientExists(merged.clone()));
    }
    let path = StatePath::new(namespace(LINEAGE), merge_out_record_key()).encode();
    let mut options = None;
    let mut entries = Vec::with_capacity(2);
    for side in parents {
        let parent = &side.record.chain;
        if retired(state, parent)?.is_some() {
            return Err(Error::Lineage(format!("{parent} has already merged out")));
        }
        if side.proof_height < side.record.final_height {
            return Err(Error::Lineage(format!(
                "{parent}'s record is committed at its final height {}; a proof at {} cannot show it",
                side.record.final_height, side.proof_height
            )));
        }
        let slot = member_client(parent);
        let committed = side.record.encode();
        slot.verify_membership(state, side.proof_height, &path, &committed, &side.proof)?;
        let o = slot.options(state)?;
        entries.push((
            parent.clone(),
            side.record.final_height,
            o.hash_alg.hash(&committed),
        ));
        options.get_or_insert(o);
    }
    let parent_options = options.ok_or_else(|| Error::Lineage("no parent".into()))?;
    let set = check_successor_header(merged, &a.validators, parent_options.hash_alg, header, commit)?;
    let options = TrustOptions {
        chain_id: merged.clone(),
        ..parent_options
    };
    let c = client::create(options, header, &set, ctx.block.time)?;
    member_client(merged).create(state, c)?;
    for side in parents {
        let entry = Retired {
            successor: merged.clone(),
            final_height: side.record.final_height,
        };
        put_typed(state, &ns(), &hub_keys::retired(&side.record.chain), &entry)?;
        add_routes(
            state,
            &side.record.chain,
            side.record.namespaces.iter().map(|(n, _)| n),
            merged,
        )?;
    }
    put_typed(
        state,
        &ns(),
        &hub_keys::merged_from(merged),
        &Merger { parents: entries },
    )?;
    Ok(vec![Event::new(
        "hub.merged_registered",
        &[
            ("merged", merged.to_string()),
            ("parents", format!("{},{}", a.chain, b.chain)),
            ("final_heights", format!("{},{}", a.final_height, b.final_height)),
            ("trusted_height", header.height.to_string()),
        ],
    )])
}

/// Most routes one packet follows (an asset split off, then merged, then split again…).
const MAX_ROUTE_HOPS: usize = 16;

/// Route the assets among `namespaces` that left `from` to `to` (data namespaces that are not assets carry no
/// packets and get no route).
fn add_routes<'a>(
    state: &mut dyn StateWrite,
    from: &ChainId,
    namespaces: impl Iterator<Item = &'a Namespace>,
    to: &ChainId,
) -> Result<()> {
    for namespace in namespaces.filter(|n| Denom::of_namespace(n).is_some()) {
        put_typed(state, &ns(), &hub_keys::route(from, namespace), to)?;
    }
    Ok(())
}

/// The chain the hub forwards `packet` to: its destination, unless the packet brings an asset home (its trace's
/// home is the destination) to a chain the asset has left by a split or merge — then the chain that holds the
/// asset now, following routes as far as the asset went.
pub fn delivery_chain(state: &(impl StateRead + ?Sized), packet: &Packet) -> Result<ChainId> {
    let Payload::Transfer(t) = &packet.payload;
    let mut to = packet.destination.clone();
    if t.trace.home != to {
        return Ok(to);
    }
    let asset = t.trace.base.namespace();
    for _ in 0..MAX_ROUTE_HOPS {
        match get_typed::<ChainId>(state, &ns(), &hub_keys::route(&to, &asset))? {
            Some(next) => to = next,
            None => return Ok(to),
        }
    }
    Err(Error::Lineage(format!(
        "{} left {} more than {MAX_ROUTE_HOPS} times: no route",
        t.trace.base, packet.destination
    )))
}

fn update_client(
    state: &mut dyn StateWrite,
    ctx: &TxContext<'_>,
    chain: &ChainId,
    update: HeaderUpdate,
) -> Result<Vec<Event>> {
    if let Some(r) = retired(state, chain)? {
        if update.header.height > r.final_height {
            return Err(Error::Lineage(format!(
                "{chain} merged into {} and ended at height {}: no header above it is accepted",
                r.successor, r.final_height
            )));
        }
    }
    match member_client(chain).update(state, update, ctx.block.time) {
        Ok(height) => Ok(vec![Event::new(
            "hub.client_updated",
            &[("chain", chain.to_string()), ("height", height.to_string())],
        )]),
        Err(Error::Client {
            source: NativeError::ConflictingHeader { height },
            ..
        }) => {
            // A second valid header at a trusted height: the client froze and is stored so (the transaction
            // succeeds, or the freeze would be rolled back with it).
            Ok(vec![Event::new(
                "hub.client_frozen",
                &[("chain", chain.to_string()), ("height", height.to_string())],
            )])
        }
        Err(e) => Err(e),
    }
}

fn recv_packet(
    state: &mut dyn StateWrite,
    packet: Packet,
    proof_height: u64,
    proof: &StateProof,
) -> Result<Vec<Event>> {
    packet.validate()?;
    let source = member_client(&packet.source);
    let receipt = hub_keys::receipt(&packet.source, packet.sequence);
    if state.get(&ns(), &receipt)?.is_some() {
        return Err(Error::AlreadyReceived {
            source_chain: packet.source,
            sequence: packet.sequence,
        });
    }
    let commitment = packet.commitment();
    let path = member_path(member_keys::commitment(packet.sequence));
    source.verify_membership(state, proof_height, &path, &commitment.0, proof)?;
    let to = delivery_chain(state, &packet)?;
    let refusal = if !is_member(state, &to)? {
        Some(format!("{to} is not a member"))
    } else {
        retired(state, &to)?.map(|r| {
            format!(
                "{to} merged into {} at height {}: send to {}",
                r.successor, r.final_height, r.successor
            )
        })
    };
    if let Some(reason) = refusal {
        // Nobody to forward to: answer the source at once, forward nothing.
        let record = PacketRecord {
            commitment,
            destination: to,
            resolved: true,
        };
        put_typed(state, &ns(), &receipt, &record)?;
        let outcome = Outcome::Acknowledged(Ack::Error(reason));
        return record_outcome(state, &packet, &outcome);
    }
    let forward = hub_keys::forward(&to, &packet.source, packet.sequence);
    state.put(&ns(), &forward, commitment.0.to_vec())?;
    let record = PacketRecord {
        commitment,
        destination: to,
        resolved: false,
    };
    put_typed(state, &ns(), &receipt, &record)?;
    Ok(vec![Event::new(
        "hub.forward",
        &[
            ("source", packet.source.to_string()),
            ("destination", record.destination.to_string()),
            ("sequence", packet.sequence.to_string()),
            ("packet", hex::encode(packet.encode())),
        ],
    )])
}

/// The open record of a forwarded packet, checked against the packet presented.
fn pending(state: &(impl StateRead + ?Sized), packet: &Packet) -> Result<PacketRecord> {
    let not_pending = || Error::NotPending {
        source_chain: packet.source.clone(),
        sequence: packet.sequence,
    };
    let record = packet_record(state, &packet.source, packet.sequence)?.ok_or_else(not_pending)?;
    if record.resolved {
        return Err(not_pending());
    }
    if record.commitment != packet.commitment() {
        return Err(Error::CommitmentMismatch(packet.sequence));
    }
    Ok(record)
}

fn record_outcome(state: &mut dyn StateWrite, packet: &Packet, outcome: &Outcome) -> Result<Vec<Event>> {
    let key = hub_keys::outcome(&packet.source, packet.sequence);
    state.put(&ns(), &key, outcome.commitment().0.to_vec())?;
    Ok(vec![Event::new(
        "hub.outcome",
        &[
            ("source", packet.source.to_string()),
            ("sequence", packet.sequence.to_string()),
            ("outcome", hex::encode(borsh::to_vec(outcome).unwrap_or_default())),
            ("packet", hex::encode(packet.encode())),
        ],
    )])
}

fn resolve(
    state: &mut dyn StateWrite,
    packet: &Packet,
    mut record: PacketRecord,
    outcome: &Outcome,
) -> Result<Vec<Event>> {
    record.resolved = true;
    put_typed(
        state,
        &ns(),
        &hub_keys::receipt(&packet.source, packet.sequence),
        &record,
    )?;
    state.delete(
        &ns(),
        &hub_keys::forward(&record.destination, &packet.source, packet.sequence),
    )?;
    record_outcome(state, packet, outcome)
}

fn acknowledge(
    state: &mut dyn StateWrite,
    packet: Packet,
    ack: Ack,
    proof_height: u64,
    proof: &StateProof,
) -> Result<Vec<Event>> {
    packet.validate()?;
    let record = pending(state, &packet)?;
    let path = member_path(member_keys::receipt(&packet.source, packet.sequence));
    member_client(&record.destination).verify_membership(
        state,
        proof_height,
        &path,
        &ack.commitment().0,
        proof,
    )?;
    resolve(state, &packet, record, &Outcome::Acknowledged(ack))
}

fn timeout(
    state: &mut dyn StateWrite,
    packet: Packet,
    proof_height: u64,
    proof: &StateProof,
) -> Result<Vec<Event>> {
    packet.validate()?;
    let record = pending(state, &packet)?;
    let destination = member_client(&record.destination);
    let time = destination.time_at(state, proof_height)?;
    // A destination that merged out never produces a block after its final height: absence there is final.
    let ended = retired(state, &record.destination)?.is_some_and(|r| proof_height >= r.final_height);
    if !ended && !packet.expired_at(proof_height, time) {
        return Err(Error::NotExpired {
            source_chain: packet.source,
            sequence: packet.sequence,
        });
    }
    let path = member_path(member_keys::receipt(&packet.source, packet.sequence));
    destination.verify_non_membership(state, proof_height, &path, proof)?;
    resolve(state, &packet, record, &Outcome::TimedOut)
}

fn decide(state: &mut dyn StateWrite, id: &Hash, d: Decision) -> Result<Vec<Event>> {
    state.put(&ns(), &hub_keys::decision(id), d.commitment(id).0.to_vec())?;
    Ok(vec![Event::new(
        "hub.atomic_decided",
        &[("id", id.to_hex()), ("decision", format!("{d:?}"))],
    )])
}

fn prove_prepare(
    state: &mut dyn StateWrite,
    ctx: &TxContext<'_>,
    spec: &AtomicSpec,
    index: u32,
    proof_height: u64,
    proof: &StateProof,
) -> Result<Vec<Event>> {
    spec.validate()?;
    let id = spec.id();
    let leg = spec
        .legs
        .get(index as usize)
        .ok_or_else(|| Error::Atomic(format!("no leg {index} in a deal of {} legs", spec.legs.len())))?;
    if decision(state, &id)?.is_some() {
        return Err(Error::AlreadyDecided(id));
    }
    if ctx.block.time >= spec.deadline {
        // Too late for this leg, hence for the deal: nothing more to verify.
        return decide(state, &id, Decision::Abort);
    }
    let path = member_path(member_keys::prepared(&id, index));
    member_client(&leg.chain).verify_membership(
        state,
        proof_height,
        &path,
        &spec.prepared_commitment(index).0,
        proof,
    )?;
    let key = hub_keys::atomic(&id);
    let mut record: AtomicRecord = get_typed(state, &ns(), &key)?.unwrap_or_default();
    if record.prepared.is_empty() {
        record.prepared = vec![false; spec.legs.len()];
    }
    let slot = record
        .prepared
        .get_mut(index as usize)
        .ok_or_else(|| Error::Atomic("leg record does not fit the deal".into()))?;
    if *slot {
        return Err(Error::Atomic(format!("leg {index} was already proven")));
    }
    *slot = true;
    put_typed(state, &ns(), &key, &record)?;
    let mut events = vec![Event::new(
        "hub.leg_proven",
        &[("id", id.to_hex()), ("index", index.to_string())],
    )];
    if record.prepared.iter().all(|p| *p) {
        events.extend(decide(state, &id, Decision::Commit)?);
    }
    Ok(events)
}

#[cfg(test)]
mod tests;
