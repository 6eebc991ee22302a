//! A hub and member chains in one process, the relaying steps between them, and the alliance's invariants.
//!
//! Every chain is a [`TestChain`]: real blocks with real certificates; the hub runs the [`Hub`] module, members run
//! the [`Endpoint`]. [`Alliance::build`] turns a relaying [`Job`] into the messages a relayer submits: a header
//! update of the light client on the receiving side (when it lacks the height) followed by the proven message, all
//! built from the other chain's store and blocks. [`Alliance::forge`] builds a lie of the same shape (a changed
//! packet, a flipped acknowledgement or decision, a tampered header, a garbage proof, a premature timeout…) that the
//! chain must reject.

use std::collections::{BTreeMap, HashMap};

use causeway_chain::app::{BlockResults, Committed};
use causeway_chain::exec::{accounts, assets, get_typed, TxResult};
use causeway_chain::genesis::GenesisAsset;
use causeway_chain::message::{Amount, Denom, Message};
use causeway_chain::state::{StateRead, StoreView};
use causeway_chain::testkit::{genesis, TestChain};
use causeway_chain::tx::{SignedTx, Transaction};
use causeway_chain::xchain::types::{
    hub_keys, lock_address, member_keys, namespace, Ack, AtomicSpec, Decision, DenomTrace, LegState, Outcome,
    Packet, Payload, HUB_NAMESPACE, NAMESPACE,
};
use causeway_chain::xchain::{self, Endpoint, EndpointGov, EndpointMsg};
use causeway_hub::{AtomicRecord, Hub, HubGov, HubMsg};
use causeway_light_client::native::TrustOptions;
use causeway_light_client::{
    Address, Canonical, ChainId, Hash, HashAlg, HeaderUpdate, LightClient, NativeClient, SecretKey,
    StateProof, Suite, Time,
};
use rand::Rng;

/// The hub's chain id.
pub const HUB: &str = "hub";
/// The member chains' ids.
pub const MEMBERS: [&str; 3] = ["alpha", "beta", "gamma"];
/// Every member's native asset (the same name on each: only the trace tells them apart).
pub const COIN: &str = "coin";
/// What each user holds of each member's coin at genesis.
pub const USER_BALANCE: u128 = 1_000_000;
/// Consensus states every client keeps.
pub const KEPT_STATES: u32 = 1_000;

/// One chain of the alliance with the transactions waiting for its next block.
pub struct Chain {
    /// The chain.
    pub chain: TestChain,
    /// Its validators' keys (governance).
    pub validators: Vec<SecretKey>,
    batch: Vec<SignedTx>,
    counts: HashMap<Address, u64>,
    _dir: tempfile::TempDir,
}

impl Chain {
    fn open(id: &str, users: &[SecretKey], hub: bool) -> Chain {
        let dir = tempfile::tempdir().unwrap();
        let (mut g, validators) = genesis(id, 4, Suite::Ed25519, HashAlg::Sha256);
        if !hub {
            g.assets.push(GenesisAsset {
                denom: Denom::new(COIN).unwrap(),
                issuer: users[0].public_key().address(),
                balances: users
                    .iter()
                    .map(|u| (u.public_key().address(), Amount(USER_BALANCE)))
                    .collect(),
            });
        }
        let ext = if hub {
            Hub::extension()
        } else {
            Endpoint::extension()
        };
        let chain = TestChain::open(dir.path(), g, validators.clone(), vec![ext]).unwrap();
        Chain {
            chain,
            validators,
            batch: vec![],
            counts: HashMap::new(),
            _dir: dir,
        }
    }

    /// The chain id.
    pub fn id(&self) -> ChainId {
        self.chain.chain_id().clone()
    }

    /// The latest committed state.
    pub fn view(&self) -> StoreView<'_> {
        self.chain.app().store().latest_view()
    }

    /// The latest committed height.
    pub fn height(&self) -> u64 {
        self.chain.app().height()
    }

    /// The latest block's time.
    pub fn time(&self) -> Time {
        self.chain.app().last_time()
    }

    /// Queue a transaction of `messages` signed by `key` for the next block; returns its position in the block.
    pub fn submit(&mut self, key: &SecretKey, messages: Vec<Message>) -> usize {
        let address = key.public_key().address();
        let base = accounts::account(&self.view(), &address).unwrap().nonce;
        let chain_id = self.id();
        let count = self.counts.entry(address).or_insert(0);
        let tx = Transaction {
            chain_id,
            signer: key.public_key(),
            nonce: base + *count,
            messages,
        };
        *count += 1;
        self.batch.push(tx.sign(key));
        self.batch.len() - 1
    }

    /// Produce the next block with the queued transactions.
    pub fn produce(&mut self) -> Committed {
        self.counts.clear();
        let txs = std::mem::take(&mut self.batch);
        let n = txs.len();
        let committed = self.chain.produce(txs).unwrap();
        assert_eq!(
            committed.results.txs.len(),
            n,
            "every queued transaction fits in the block"
        );
        committed
    }

    /// A value and its proof at `height`.
    pub fn prove(&self, height: u64, ns: &'static str, key: &[u8]) -> (Option<Vec<u8>>, StateProof) {
        self.chain
            .app()
            .store()
            .prove(height, &namespace(ns), key)
            .unwrap()
    }

    /// A header update of a client of this chain from `trusted` to `target`.
    pub fn header_update(&self, trusted: u64, target: u64) -> HeaderUpdate {
        let app = self.chain.app();
        HeaderUpdate {
            header: app.block(target).unwrap().unwrap().header,
            commit: app.commit_at(target).unwrap().unwrap(),
            validators: app.validators_at(target).unwrap(),
            trusted_height: trusted,
            trusted_validators: app.validators_at(trusted + 1).unwrap(),
        }
    }

    /// The value under an endpoint key in the latest state.
    pub fn endpoint_get(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.view().get(&namespace(NAMESPACE), key).unwrap()
    }

    /// Balance of `who` in `denom`.
    pub fn balance(&self, denom: &Denom, who: &Address) -> u128 {
        assets::balance(&self.view(), denom, who).unwrap().0
    }

    /// Supply of `denom` on this chain (0 when it does not exist).
    pub fn supply(&self, denom: &Denom) -> u128 {
        assets::meta(&self.view(), denom)
            .unwrap()
            .map_or(0, |m| m.supply.0)
    }
}

/// Where a relayer's transaction goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Target {
    /// The hub.
    Hub,
    /// Member `i`.
    Member(usize),
}

/// One relaying step that is due.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Job {
    /// Prove a sent packet to the hub.
    HubRecv(Packet),
    /// Prove a forwarded packet to its destination.
    MemberRecv(Packet),
    /// Prove the destination's acknowledgement to the hub.
    HubAck(Packet, Ack),
    /// Prove the destination's non-receipt past the deadline to the hub.
    HubTimeout(Packet),
    /// Prove the hub's outcome to the source.
    Resolve(Packet, Outcome),
    /// Prove a leg's prepare to the hub.
    ProvePrepare(AtomicSpec, u32),
    /// Abort an expired atomic transaction on the hub.
    AbortExpired(AtomicSpec),
    /// Prove the hub's decision to a leg's chain.
    ApplyDecision(AtomicSpec, u32, Decision),
}

/// What relayers learned from events, and counters of the once-only facts.
#[derive(Default)]
pub struct Knowledge {
    /// Every packet sent, by (source, sequence).
    pub packets: BTreeMap<(ChainId, u64), Packet>,
    /// Acknowledgements written by destinations.
    pub acks: BTreeMap<(ChainId, u64), Ack>,
    /// Outcomes recorded by the hub.
    pub outcomes: BTreeMap<(ChainId, u64), Outcome>,
    /// Atomic transactions seen.
    pub specs: BTreeMap<Hash, AtomicSpec>,
    /// How often each once-only event was seen: (event kind, chain, source, sequence).
    pub once: BTreeMap<(String, String, String, String), u32>,
}

fn decode_hex<T: borsh::BorshDeserialize>(s: &str) -> T {
    borsh::from_slice(&hex::decode(s).unwrap()).unwrap()
}

impl Knowledge {
    /// Learn from one committed block of `chain`.
    pub fn observe(&mut self, chain: &ChainId, results: &BlockResults) {
        let events = results
            .txs
            .iter()
            .filter(|r| r.is_ok())
            .flat_map(|r| r.events.iter());
        for e in events.chain(results.end_events.iter()) {
            let attr = |k: &str| e.attribute(k).unwrap_or_default().to_string();
            match e.kind.as_str() {
                "xchain.send" => {
                    let p = Packet::decode(&hex::decode(attr("packet")).unwrap()).unwrap();
                    self.bump("send", chain, &p.source, p.sequence);
                    self.packets.insert((p.source.clone(), p.sequence), p);
                }
                "xchain.recv" => {
                    let source = ChainId::new(attr("source")).unwrap();
                    let seq: u64 = attr("sequence").parse().unwrap();
                    self.bump("recv", chain, &source, seq);
                    self.acks.insert((source, seq), decode_hex(&attr("ack")));
                }
                "hub.forward" => {
                    let source = ChainId::new(attr("source")).unwrap();
                    self.bump("forward", chain, &source, attr("sequence").parse().unwrap());
                }
                "hub.outcome" => {
                    let source = ChainId::new(attr("source")).unwrap();
                    let seq: u64 = attr("sequence").parse().unwrap();
                    self.bump("outcome", chain, &source, seq);
                    self.outcomes.insert((source, seq), decode_hex(&attr("outcome")));
                }
                "xchain.resolved" => {
                    self.bump("resolved", chain, chain, attr("sequence").parse().unwrap());
                }
                "xchain.leg_prepared" => {
                    let spec = AtomicSpec::decode(&hex::decode(attr("spec")).unwrap()).unwrap();
                    self.bump(
                        "prepared",
                        chain,
                        chain,
                        attr("index").parse::<u64>().unwrap() ^ id_tag(&spec),
                    );
                    self.specs.insert(spec.id(), spec);
                }
                "xchain.leg_decided" => {
                    let id = Hash::from_hex(&attr("id")).unwrap();
                    self.bump(
                        "leg_decided",
                        chain,
                        chain,
                        attr("index").parse::<u64>().unwrap() ^ hash_tag(&id),
                    );
                }
                "hub.atomic_decided" => {
                    let id = Hash::from_hex(&attr("id")).unwrap();
                    self.bump("decided", chain, chain, hash_tag(&id));
                }
                _ => {}
            }
        }
    }

    fn bump(&mut self, kind: &str, chain: &ChainId, source: &ChainId, seq: u64) {
        *self
            .once
            .entry((
                kind.into(),
                chain.to_string(),
                source.to_string(),
                seq.to_string(),
            ))
            .or_insert(0) += 1;
    }

    /// Once-only facts seen more than once.
    pub fn repeated(&self) -> Vec<String> {
        self.once
            .iter()
            .filter(|(_, n)| **n > 1)
            .map(|(k, n)| format!("{k:?} x{n}"))
            .collect()
    }
}

fn hash_tag(id: &Hash) -> u64 {
    u64::from_be_bytes(id.0[..8].try_into().unwrap()) << 8
}

fn id_tag(spec: &AtomicSpec) -> u64 {
    hash_tag(&spec.id())
}

/// A hub and its members.
pub struct Alliance {
    /// The hub.
    pub hub: Chain,
    /// The members, in [`MEMBERS`] order.
    pub members: Vec<Chain>,
    /// Users (the same keys hold accounts on every member).
    pub users: Vec<SecretKey>,
}

/// The governance messages of `keys[0]` proposing `actions` and of `keys[1..3]` approving them (ids from `first`).
pub fn pass(chain: &mut Chain, actions: Vec<causeway_chain::message::GovAction>, first: u64) {
    let n = actions.len() as u64;
    let keys = chain.validators.clone();
    chain.submit(
        &keys[0],
        actions
            .into_iter()
            .map(|action| Message::Propose { action })
            .collect(),
    );
    for k in &keys[1..3] {
        chain.submit(
            k,
            (first..first + n)
                .map(|proposal| Message::Vote {
                    proposal,
                    approve: true,
                })
                .collect(),
        );
    }
}

impl Alliance {
    /// A hub and `n` members (at most 3) with `users` users, all clients created by governance.
    pub fn new(n: usize, users: usize) -> Alliance {
        let users: Vec<SecretKey> = (0..users)
            .map(|i| {
                let mut seed = [7u8; 32];
                seed[..8].copy_from_slice(&(i as u64 + 1).to_le_bytes());
                SecretKey::from_bytes(Suite::Ed25519, &seed).unwrap()
            })
            .collect();
        let hub = Chain::open(HUB, &users, true);
        let members = MEMBERS[..n]
            .iter()
            .map(|id| Chain::open(id, &users, false))
            .collect();
        let mut a = Alliance { hub, members, users };
        a.produce_all();
        let admissions = a
            .members
            .iter()
            .map(|m| {
                let app = m.chain.app();
                HubGov::AdmitMember {
                    options: options(&m.id()),
                    header: app.block(1).unwrap().unwrap().header,
                    next_validators: app.validators_at(2).unwrap(),
                }
                .into_action()
            })
            .collect();
        pass(&mut a.hub, admissions, 0);
        let hub_header = a.hub.chain.app().block(1).unwrap().unwrap().header;
        let hub_next = a.hub.chain.app().validators_at(2).unwrap();
        let hub_id = a.hub.id();
        for m in &mut a.members {
            let action = EndpointGov::CreateHubClient {
                options: options(&hub_id),
                header: hub_header.clone(),
                next_validators: hub_next.clone(),
            }
            .into_action();
            pass(m, vec![action], 0);
        }
        let blocks = a.produce_all();
        for (_, c) in blocks {
            assert!(
                c.results.txs.iter().all(|r| r.is_ok()),
                "governance set-up failed: {:?}",
                c.results.txs
            );
        }
        for m in &a.members {
            assert!(causeway_hub::load_client(&a.hub.view(), &m.id())
                .unwrap()
                .is_some());
            assert!(xchain::load_hub_client(&m.view()).unwrap().is_some());
        }
        a
    }

    /// Member index of `chain`.
    pub fn member(&self, chain: &ChainId) -> Option<usize> {
        self.members.iter().position(|m| &m.id() == chain)
    }

    /// The chain a target names.
    pub fn chain(&self, t: Target) -> &Chain {
        match t {
            Target::Hub => &self.hub,
            Target::Member(i) => &self.members[i],
        }
    }

    /// The chain a target names, mutably.
    pub fn chain_mut(&mut self, t: Target) -> &mut Chain {
        match t {
            Target::Hub => &mut self.hub,
            Target::Member(i) => &mut self.members[i],
        }
    }

    /// Produce one block on every chain (hub first), returning them.
    pub fn produce_all(&mut self) -> Vec<(Target, Committed)> {
        let mut out = vec![(Target::Hub, self.hub.produce())];
        for (i, m) in self.members.iter_mut().enumerate() {
            out.push((Target::Member(i), m.produce()));
        }
        out
    }

    /// The hub's client of member `i` (latest state).
    pub fn hub_client_of(&self, i: usize) -> NativeClient {
        causeway_hub::load_client(&self.hub.view(), &self.members[i].id())
            .unwrap()
            .unwrap()
    }

    /// Member `i`'s client of the hub (latest state).
    pub fn member_client(&self, i: usize) -> NativeClient {
        xchain::load_hub_client(&self.members[i].view()).unwrap().unwrap()
    }

    /// Messages bringing the hub's client of member `i` to the member's latest height (none if it has it), and
    /// that height.
    pub fn update_on_hub(&self, i: usize) -> (Vec<Message>, u64) {
        let m = &self.members[i];
        let h = m.height();
        let c = self.hub_client_of(i);
        if c.consensus_state(h).is_some() {
            return (vec![], h);
        }
        let update = m.header_update(c.latest_height(), h);
        (
            vec![HubMsg::UpdateClient {
                chain: m.id(),
                update,
            }
            .into_message()],
            h,
        )
    }

    /// Messages bringing member `i`'s client of the hub to the hub's latest height, and that height.
    pub fn update_on_member(&self, i: usize) -> (Vec<Message>, u64) {
        let h = self.hub.height();
        let c = self.member_client(i);
        if c.consensus_state(h).is_some() {
            return (vec![], h);
        }
        (
            vec![EndpointMsg::UpdateHubClient {
                update: self.hub.header_update(c.latest_height(), h),
            }
            .into_message()],
            h,
        )
    }

    /// The chain the hub forwarded `p` to: its destination, or the successor it routed the packet to after a
    /// split or merge (as its packet record says); the destination while the hub has no record.
    pub fn delivered_to(&self, p: &Packet) -> ChainId {
        causeway_hub::packet_record(&self.hub.view(), &p.source, p.sequence)
            .unwrap()
            .map_or_else(|| p.destination.clone(), |r| r.destination)
    }

    /// Make `chain` (with its validators' keys and its directory) a member of the harness: it must already be a
    /// member on the hub (a registered split child or merged chain), and it gets its hub client by governance.
    pub fn join(&mut self, chain: TestChain, validators: Vec<SecretKey>, dir: tempfile::TempDir) -> usize {
        let mut m = Chain {
            chain,
            validators,
            batch: vec![],
            counts: HashMap::new(),
            _dir: dir,
        };
        let action = EndpointGov::CreateHubClient {
            options: options(&self.hub.id()),
            header: self.hub.chain.app().block(1).unwrap().unwrap().header,
            next_validators: self.hub.chain.app().validators_at(2).unwrap(),
        }
        .into_action();
        pass(&mut m, vec![action], 0);
        self.members.push(m);
        self.members.len() - 1
    }

    fn member_of(&self, chain: &ChainId) -> usize {
        self.member(chain).expect("jobs name members")
    }

    /// Whether `p` still awaits an outcome on its source: committed there and not successfully received.
    pub fn in_flight(&self, p: &Packet) -> bool {
        let src = &self.members[self.member_of(&p.source)];
        if src.endpoint_get(&member_keys::commitment(p.sequence)).is_none() {
            return false;
        }
        let Some(dst) = self.member(&self.delivered_to(p)) else {
            return true;
        };
        self.members[dst].endpoint_get(&member_keys::receipt(&p.source, p.sequence))
            != Some(Ack::Success.commitment().0.to_vec())
    }

    /// Every relaying step due now.
    pub fn jobs(&self, k: &Knowledge) -> Vec<Job> {
        let hub = self.hub.view();
        let mut jobs = vec![];
        for ((src, seq), p) in &k.packets {
            let source = &self.members[self.member_of(src)];
            let committed = source.endpoint_get(&member_keys::commitment(*seq)).is_some();
            match causeway_hub::packet_record(&hub, src, *seq).unwrap() {
                None => jobs.push(Job::HubRecv(p.clone())),
                Some(r) if !r.resolved => {
                    let dst = &self.members[self.member_of(&r.destination)];
                    match dst.endpoint_get(&member_keys::receipt(src, *seq)) {
                        Some(_) => {
                            if let Some(ack) = k.acks.get(&(src.clone(), *seq)) {
                                jobs.push(Job::HubAck(p.clone(), ack.clone()));
                            }
                        }
                        None if p.expired_at(dst.height(), dst.time()) => {
                            jobs.push(Job::HubTimeout(p.clone()))
                        }
                        None => jobs.push(Job::MemberRecv(p.clone())),
                    }
                }
                Some(_) => {
                    if committed {
                        if let Some(o) = k.outcomes.get(&(src.clone(), *seq)) {
                            jobs.push(Job::Resolve(p.clone(), o.clone()));
                        }
                    }
                }
            }
        }
        for (id, spec) in &k.specs {
            match causeway_hub::decision(&hub, id).unwrap() {
                None => {
                    if self.hub.chain.next_time() >= spec.deadline {
                        jobs.push(Job::AbortExpired(spec.clone()));
                        continue;
                    }
                    let record: AtomicRecord =
                        get_typed(&hub, &namespace(HUB_NAMESPACE), &hub_keys::atomic(id))
                            .unwrap()
                            .unwrap_or_default();
                    for (i, leg) in spec.legs.iter().enumerate() {
                        let chain = &self.members[self.member_of(&leg.chain)];
                        let proven = record.prepared.get(i).copied().unwrap_or(false);
                        if !proven && chain.endpoint_get(&member_keys::prepared(id, i as u32)).is_some() {
                            jobs.push(Job::ProvePrepare(spec.clone(), i as u32));
                        }
                    }
                }
                Some(d) => {
                    for (i, leg) in spec.legs.iter().enumerate() {
                        let chain = &self.members[self.member_of(&leg.chain)];
                        let state = xchain::leg_state(&chain.view(), id, i as u32).unwrap();
                        let due = match d {
                            Decision::Commit => state == Some(LegState::Prepared),
                            Decision::Abort => matches!(state, None | Some(LegState::Prepared)),
                        };
                        if due {
                            jobs.push(Job::ApplyDecision(spec.clone(), i as u32, d));
                        }
                    }
                }
            }
        }
        jobs
    }

    /// The messages an honest relayer submits for `job`, and where.
    pub fn build(&self, job: &Job) -> (Target, Vec<Message>) {
        match job {
            Job::HubRecv(p) => {
                let i = self.member_of(&p.source);
                let (mut msgs, h) = self.update_on_hub(i);
                let (_, proof) = self.members[i].prove(h, NAMESPACE, &member_keys::commitment(p.sequence));
                msgs.push(
                    HubMsg::RecvPacket {
                        packet: p.clone(),
                        proof_height: h,
                        proof,
                    }
                    .into_message(),
                );
                (Target::Hub, msgs)
            }
            Job::MemberRecv(p) => {
                let to = self.delivered_to(p);
                let i = self.member_of(&to);
                let (mut msgs, h) = self.update_on_member(i);
                let key = hub_keys::forward(&to, &p.source, p.sequence);
                let (_, proof) = self.hub.prove(h, HUB_NAMESPACE, &key);
                msgs.push(
                    EndpointMsg::RecvPacket {
                        packet: p.clone(),
                        proof_height: h,
                        proof,
                    }
                    .into_message(),
                );
                (Target::Member(i), msgs)
            }
            Job::HubAck(p, ack) => {
                let i = self.member_of(&self.delivered_to(p));
                let (mut msgs, h) = self.update_on_hub(i);
                let (_, proof) =
                    self.members[i].prove(h, NAMESPACE, &member_keys::receipt(&p.source, p.sequence));
                msgs.push(
                    HubMsg::AcknowledgePacket {
                        packet: p.clone(),
                        ack: ack.clone(),
                        proof_height: h,
                        proof,
                    }
                    .into_message(),
                );
                (Target::Hub, msgs)
            }
            Job::HubTimeout(p) => {
                let i = self.member_of(&self.delivered_to(p));
                let (mut msgs, h) = self.update_on_hub(i);
                let (_, proof) =
                    self.members[i].prove(h, NAMESPACE, &member_keys::receipt(&p.source, p.sequence));
                msgs.push(
                    HubMsg::TimeoutPacket {
                        packet: p.clone(),
                        proof_height: h,
                        proof,
                    }
                    .into_message(),
                );
                (Target::Hub, msgs)
            }
            Job::Resolve(p, outcome) => {
                let i = self.member_of(&p.source);
                let (mut msgs, h) = self.update_on_member(i);
                let (_, proof) = self
                    .hub
                    .prove(h, HUB_NAMESPACE, &hub_keys::outcome(&p.source, p.sequence));
                msgs.push(
                    EndpointMsg::ResolvePacket {
                        packet: p.clone(),
                        outcome: outcome.clone(),
                        proof_height: h,
                        proof,
                    }
                    .into_message(),
                );
                (Target::Member(i), msgs)
            }
            Job::ProvePrepare(spec, index) => {
                let i = self.member_of(&spec.legs[*index as usize].chain);
                let (mut msgs, h) = self.update_on_hub(i);
                let (_, proof) =
                    self.members[i].prove(h, NAMESPACE, &member_keys::prepared(&spec.id(), *index));
                msgs.push(
                    HubMsg::ProvePrepare {
                        spec: spec.clone(),
                        index: *index,
                        proof_height: h,
                        proof,
                    }
                    .into_message(),
                );
                (Target::Hub, msgs)
            }
            Job::AbortExpired(spec) => (
                Target::Hub,
                vec![HubMsg::AbortExpired { spec: spec.clone() }.into_message()],
            ),
            Job::ApplyDecision(spec, index, decision) => {
                let i = self.member_of(&spec.legs[*index as usize].chain);
                let (mut msgs, h) = self.update_on_member(i);
                let (_, proof) = self.hub.prove(h, HUB_NAMESPACE, &hub_keys::decision(&spec.id()));
                msgs.push(
                    EndpointMsg::ApplyDecision {
                        spec: spec.clone(),
                        index: *index,
                        decision: *decision,
                        proof_height: h,
                        proof,
                    }
                    .into_message(),
                );
                (Target::Member(i), msgs)
            }
        }
    }

    /// A lie shaped like `job` that the target chain must reject, if one can be told for it.
    pub fn forge(&self, job: &Job, rng: &mut impl Rng) -> Option<(Target, Vec<Message>)> {
        let (target, mut msgs) = self.build(job);
        let kind = rng.gen_range(0..3);
        if kind == 0 {
            // Garbage proof in the last message (a random namespace root and siblings).
            let garbage = StateProof::InNamespace {
                ns_root: Hash(rng.gen()),
                index: 0,
                count: 1,
                siblings: vec![Hash(rng.gen())],
                key_proof: vec![0; 8],
            };
            let last = msgs.pop()?;
            msgs.push(replace_proof(last, garbage)?);
            return Some((target, msgs));
        }
        if kind == 1 {
            // A tampered header: an update whose header is not the one the certificate decided.
            return Some(match target {
                Target::Hub => {
                    let i = match job {
                        Job::HubRecv(p) => self.member_of(&p.source),
                        Job::HubAck(p, _) | Job::HubTimeout(p) => self.member_of(&self.delivered_to(p)),
                        Job::ProvePrepare(spec, index) => self.member_of(&spec.legs[*index as usize].chain),
                        _ => return None,
                    };
                    let m = &self.members[i];
                    let mut update = m.header_update(self.hub_client_of(i).latest_height(), m.height());
                    update.header.state_root = Hash(rng.gen());
                    (
                        Target::Hub,
                        vec![HubMsg::UpdateClient {
                            chain: m.id(),
                            update,
                        }
                        .into_message()],
                    )
                }
                Target::Member(i) => {
                    let c = self.member_client(i);
                    let mut update = self.hub.header_update(c.latest_height(), self.hub.height());
                    update.header.state_root = Hash(rng.gen());
                    (
                        target,
                        vec![EndpointMsg::UpdateHubClient { update }.into_message()],
                    )
                }
            });
        }
        // A lie about the content, with a genuine proof of the truth.
        let lie = match job {
            Job::HubRecv(p) => {
                let (_, h) = self.update_on_hub(self.member_of(&p.source));
                let (_, proof) = self.members[self.member_of(&p.source)].prove(
                    h,
                    NAMESPACE,
                    &member_keys::commitment(p.sequence),
                );
                HubMsg::RecvPacket {
                    packet: inflate(p),
                    proof_height: h,
                    proof,
                }
                .into_message()
            }
            Job::MemberRecv(p) => {
                // Either a changed packet, or a timeout claimed on the hub before the deadline.
                if rng.gen_bool(0.5) {
                    let to = self.delivered_to(p);
                    let i = self.member_of(&to);
                    let (_, h) = self.update_on_member(i);
                    let key = hub_keys::forward(&to, &p.source, p.sequence);
                    let (_, proof) = self.hub.prove(h, HUB_NAMESPACE, &key);
                    EndpointMsg::RecvPacket {
                        packet: inflate(p),
                        proof_height: h,
                        proof,
                    }
                    .into_message()
                } else {
                    let i = self.member_of(&self.delivered_to(p));
                    let (mut msgs, h) = self.update_on_hub(i);
                    let m = &self.members[i];
                    // Only a lie while the deadline has not passed at the proven height.
                    let time = m.chain.app().block(h).unwrap().unwrap().header.time;
                    if p.expired_at(h, time) {
                        return None;
                    }
                    let (_, proof) = m.prove(h, NAMESPACE, &member_keys::receipt(&p.source, p.sequence));
                    msgs.push(
                        HubMsg::TimeoutPacket {
                            packet: p.clone(),
                            proof_height: h,
                            proof,
                        }
                        .into_message(),
                    );
                    return Some((Target::Hub, msgs));
                }
            }
            Job::HubAck(p, ack) => {
                let flipped = match ack {
                    Ack::Success => Ack::Error("forged".into()),
                    Ack::Error(_) => Ack::Success,
                };
                let i = self.member_of(&self.delivered_to(p));
                let (_, h) = self.update_on_hub(i);
                let (_, proof) =
                    self.members[i].prove(h, NAMESPACE, &member_keys::receipt(&p.source, p.sequence));
                HubMsg::AcknowledgePacket {
                    packet: p.clone(),
                    ack: flipped,
                    proof_height: h,
                    proof,
                }
                .into_message()
            }
            Job::Resolve(p, outcome) => {
                let flipped = match outcome {
                    Outcome::Acknowledged(Ack::Success) => Outcome::TimedOut,
                    _ => Outcome::Acknowledged(Ack::Success),
                };
                let i = self.member_of(&p.source);
                let (_, h) = self.update_on_member(i);
                let (_, proof) = self
                    .hub
                    .prove(h, HUB_NAMESPACE, &hub_keys::outcome(&p.source, p.sequence));
                EndpointMsg::ResolvePacket {
                    packet: p.clone(),
                    outcome: flipped,
                    proof_height: h,
                    proof,
                }
                .into_message()
            }
            Job::ApplyDecision(spec, index, d) => {
                let flipped = match d {
                    Decision::Commit => Decision::Abort,
                    Decision::Abort => Decision::Commit,
                };
                let i = self.member_of(&spec.legs[*index as usize].chain);
                let (_, h) = self.update_on_member(i);
                let (_, proof) = self.hub.prove(h, HUB_NAMESPACE, &hub_keys::decision(&spec.id()));
                EndpointMsg::ApplyDecision {
                    spec: spec.clone(),
                    index: *index,
                    decision: flipped,
                    proof_height: h,
                    proof,
                }
                .into_message()
            }
            Job::ProvePrepare(spec, _) => {
                // Abort before the deadline.
                if self.hub.chain.next_time() >= spec.deadline {
                    return None;
                }
                return Some((
                    Target::Hub,
                    vec![HubMsg::AbortExpired { spec: spec.clone() }.into_message()],
                ));
            }
            Job::HubTimeout(_) | Job::AbortExpired(_) => return None,
        };
        msgs.pop();
        msgs.push(lie);
        Some((target, msgs))
    }

    /// Per-asset conservation: on each coin's home chain the supply is what genesis issued, the escrow account
    /// holds exactly what the escrow counters say, and for every other member the escrow counter equals the
    /// vouchers outstanding there plus the transfers between the two chains still in flight.
    pub fn check_supply(&self, k: &Knowledge) -> Result<(), String> {
        let coin = Denom::new(COIN).unwrap();
        let genesis_supply = USER_BALANCE * self.users.len() as u128;
        for home in &self.members {
            if home.supply(&coin) != genesis_supply {
                return Err(format!(
                    "{} supply {} != {genesis_supply}",
                    home.id(),
                    home.supply(&coin)
                ));
            }
            let trace = DenomTrace {
                home: home.id(),
                base: coin.clone(),
            };
            let voucher = trace.voucher_denom();
            let mut total_escrow = 0u128;
            for other in &self.members {
                if other.id() == home.id() {
                    continue;
                }
                let escrowed = xchain::escrowed(&home.view(), &other.id(), &coin).unwrap();
                total_escrow += escrowed;
                let vouchers = other.supply(&voucher);
                let in_flight: u128 = k
                    .packets
                    .values()
                    .filter(|p| {
                        let Payload::Transfer(t) = &p.payload;
                        t.trace == trace
                            && ((p.source == home.id() && p.destination == other.id())
                                || (p.source == other.id() && p.destination == home.id()))
                            && self.in_flight(p)
                    })
                    .map(|p| {
                        let Payload::Transfer(t) = &p.payload;
                        t.amount.0
                    })
                    .sum();
                if escrowed != vouchers + in_flight {
                    return Err(format!(
                        "{} coin escrowed for {}: {escrowed} != vouchers {vouchers} + in flight {in_flight}",
                        home.id(),
                        other.id()
                    ));
                }
            }
            let held = home.balance(&coin, &causeway_chain::xchain::types::escrow_address());
            if held != total_escrow {
                return Err(format!(
                    "{} escrow account holds {held}, counters say {total_escrow}",
                    home.id()
                ));
            }
        }
        Ok(())
    }

    /// Atomicity: no deal has a committed leg and an aborted leg, legs follow the hub's decision, nothing is
    /// final before a decision, and each chain's lock account holds exactly its prepared legs.
    pub fn check_atomic(&self, k: &Knowledge, finished: bool) -> Result<(), String> {
        let coin = Denom::new(COIN).unwrap();
        let mut locked: Vec<u128> = vec![0; self.members.len()];
        for (id, spec) in &k.specs {
            let decision = causeway_hub::decision(&self.hub.view(), id).unwrap();
            let states: Vec<Option<LegState>> = spec
                .legs
                .iter()
                .enumerate()
                .map(|(i, leg)| {
                    let m = self.member_of(&leg.chain);
                    let s = xchain::leg_state(&self.members[m].view(), id, i as u32).unwrap();
                    if s == Some(LegState::Prepared) {
                        locked[m] += leg.amount.0;
                    }
                    s
                })
                .collect();
            let committed = states.contains(&Some(LegState::Committed));
            let aborted = states.contains(&Some(LegState::Aborted));
            let ok = match decision {
                None => !committed && !aborted,
                // The hub commits only after verifying every prepare: no leg may be unprepared.
                Some(Decision::Commit) => {
                    !aborted
                        && !states.contains(&None)
                        && (!finished || states.iter().all(|s| *s == Some(LegState::Committed)))
                }
                Some(Decision::Abort) => {
                    !committed && (!finished || states.iter().all(|s| *s == Some(LegState::Aborted)))
                }
            };
            if !ok || (finished && decision.is_none()) {
                return Err(format!("deal {id}: decision {decision:?}, legs {states:?}"));
            }
        }
        for (m, chain) in self.members.iter().enumerate() {
            let held = chain.balance(&coin, &lock_address());
            if held != locked[m] {
                return Err(format!(
                    "{} lock account holds {held}, prepared legs {}",
                    chain.id(),
                    locked[m]
                ));
            }
        }
        Ok(())
    }
}

/// The same packet asking for one more token.
fn inflate(p: &Packet) -> Packet {
    let mut q = p.clone();
    let Payload::Transfer(t) = &mut q.payload;
    t.amount = Amount(t.amount.0 + 1);
    q
}

fn replace_proof(m: Message, garbage: StateProof) -> Option<Message> {
    let Message::Ext { module, body } = &m else {
        return None;
    };
    if module == causeway_chain::xchain::types::HUB_MODULE {
        let msg = match HubMsg::decode(&body.0).ok()? {
            HubMsg::RecvPacket {
                packet, proof_height, ..
            } => HubMsg::RecvPacket {
                packet,
                proof_height,
                proof: garbage,
            },
            HubMsg::AcknowledgePacket {
                packet,
                ack,
                proof_height,
                ..
            } => HubMsg::AcknowledgePacket {
                packet,
                ack,
                proof_height,
                proof: garbage,
            },
            HubMsg::TimeoutPacket {
                packet, proof_height, ..
            } => HubMsg::TimeoutPacket {
                packet,
                proof_height,
                proof: garbage,
            },
            HubMsg::ProvePrepare {
                spec,
                index,
                proof_height,
                ..
            } => HubMsg::ProvePrepare {
                spec,
                index,
                proof_height,
                proof: garbage,
            },
            _ => return None,
        };
        Some(msg.into_message())
    } else {
        let msg = match EndpointMsg::decode(&body.0).ok()? {
            EndpointMsg::RecvPacket {
                packet, proof_height, ..
            } => EndpointMsg::RecvPacket {
                packet,
                proof_height,
                proof: garbage,
            },
            EndpointMsg::ResolvePacket {
                packet,
                outcome,
                proof_height,
                ..
            } => EndpointMsg::ResolvePacket {
                packet,
                outcome,
                proof_height,
                proof: garbage,
            },
            EndpointMsg::ApplyDecision {
                spec,
                index,
                decision,
                proof_height,
                ..
            } => EndpointMsg::ApplyDecision {
                spec,
                index,
                decision,
                proof_height,
                proof: garbage,
            },
            _ => return None,
        };
        Some(msg.into_message())
    }
}

/// Trust options of the alliance's clients.
pub fn options(chain: &ChainId) -> TrustOptions {
    TrustOptions {
        max_consensus_states: KEPT_STATES,
        ..TrustOptions::new(chain.clone(), HashAlg::Sha256)
    }
}

/// True when the transaction failed.
pub fn failed(r: &TxResult) -> bool {
    r.failure.is_some()
}

fn run_msgs(
    s: &mut causeway_chain::state::Overlay<StoreView<'_>>,
    ctx: &causeway_chain::exec::TxContext<'_>,
    msgs: &[Message],
) -> Result<Vec<causeway_chain::exec::Event>, xchain::Error> {
    let mut last = Ok(vec![]);
    for m in msgs {
        let Message::Ext { module, body } = m else {
            panic!("not a cross-chain message: {m:?}")
        };
        last = if module == causeway_chain::xchain::types::HUB_MODULE {
            causeway_hub::handle(s, ctx, HubMsg::decode(&body.0).unwrap())
        } else {
            xchain::handle(s, ctx, EndpointMsg::decode(&body.0).unwrap())
        };
        if last.is_err() {
            break;
        }
    }
    last
}

/// Execute `msgs` on a chain's latest state as its next block would, without committing: the typed result of the
/// last message (every earlier one must succeed), and whether the last message left state as the earlier ones
/// did (a failure must write nothing).
fn exec_on(
    chain: &Chain,
    msgs: &[Message],
) -> (Result<Vec<causeway_chain::exec::Event>, xchain::Error>, bool) {
    let block = causeway_chain::exec::BlockContext {
        chain_id: chain.id(),
        height: chain.height() + 1,
        time: chain.chain.next_time(),
        proposer: Address::default(),
    };
    let validators = chain.chain.app().next_validators().clone();
    let extensions = [Hub::extension(), Endpoint::extension()];
    let ctx = causeway_chain::exec::TxContext {
        block: &block,
        sender: Address([9; 20]),
        validators: &validators,
        extensions: &extensions,
    };
    let (prefix, _) = msgs.split_at(msgs.len().saturating_sub(1));
    let mut before = causeway_chain::state::Overlay::new(chain.view());
    run_msgs(&mut before, &ctx, prefix).expect("the messages before the last succeed");
    before.commit_tx();
    let mut after = causeway_chain::state::Overlay::new(chain.view());
    let result = run_msgs(&mut after, &ctx, msgs);
    after.commit_tx();
    (result, before.into_write_set() == after.into_write_set())
}

impl Alliance {
    /// Submit `msgs` signed by `key` to `t`, produce a block on every chain, and let `k` learn from them all; the
    /// result of that transaction.
    pub fn deliver_as(
        &mut self,
        k: &mut Knowledge,
        t: Target,
        key: &SecretKey,
        msgs: Vec<Message>,
    ) -> TxResult {
        let at = self.chain_mut(t).submit(key, msgs);
        let blocks = self.produce_all();
        for (bt, c) in &blocks {
            k.observe(&self.chain(*bt).id(), &c.results);
        }
        blocks
            .iter()
            .find(|(bt, _)| *bt == t)
            .map(|(_, c)| c.results.txs[at].clone())
            .unwrap()
    }

    /// `amount` of `denom` from user `user` on member `from` to the next user on member `to`, with a deadline
    /// `timeout_secs` after the destination's next block: the transaction's result and, if it was sent, the
    /// packet (as its `xchain.send` event carries it).
    #[allow(clippy::too_many_arguments)]
    pub fn transfer(
        &mut self,
        k: &mut Knowledge,
        from: usize,
        user: usize,
        to: usize,
        denom: &Denom,
        amount: u128,
        timeout_secs: u64,
    ) -> (TxResult, Option<Packet>) {
        let key = self.users[user].clone();
        let receiver = self.users[(user + 1) % self.users.len()].public_key().address();
        let timeout_time = self.members[to]
            .chain
            .next_time()
            .plus(std::time::Duration::from_secs(timeout_secs));
        let msg = EndpointMsg::SendTransfer {
            destination: self.members[to].id(),
            denom: denom.clone(),
            amount: Amount(amount),
            receiver,
            timeout_height: 0,
            timeout_time,
        };
        let r = self.deliver_as(k, Target::Member(from), &key, vec![msg.into_message()]);
        let packet = r
            .events
            .iter()
            .find(|e| e.kind == "xchain.send")
            .and_then(|e| e.attribute("packet"))
            .map(|hex_packet| Packet::decode(&hex::decode(hex_packet).unwrap()).unwrap());
        (r, packet)
    }

    /// Execute `msgs` (as [`Alliance::build`] or [`Alliance::forge`] make them) on the target's latest state as
    /// its next block would, without committing: the typed result of the last message, and whether state is as
    /// if the last message had not run.
    pub fn exec(
        &self,
        t: Target,
        msgs: &[Message],
    ) -> (Result<Vec<causeway_chain::exec::Event>, xchain::Error>, bool) {
        exec_on(self.chain(t), msgs)
    }
}

/// The last message of `msgs` decoded as a hub message (what [`Alliance::build`] puts last for the hub).
pub fn last_hub(msgs: &[Message]) -> HubMsg {
    match msgs.last() {
        Some(Message::Ext { body, .. }) => HubMsg::decode(&body.0).unwrap(),
        other => panic!("not a hub message: {other:?}"),
    }
}

/// The last message of `msgs` decoded as an endpoint message.
pub fn last_endpoint(msgs: &[Message]) -> EndpointMsg {
    match msgs.last() {
        Some(Message::Ext { body, .. }) => EndpointMsg::decode(&body.0).unwrap(),
        other => panic!("not an endpoint message: {other:?}"),
    }
}
