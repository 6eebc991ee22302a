//! The devnet's in-process relayer: watches the hub and the members, and performs every relaying step that is due.
//!
//! **Owns**: what it learned from committed events (packets, acknowledgements, outcomes, atomic deals), the
//! planning of due steps from the chains' committed state, and the building of each step's messages — a light
//! client update (header, commit certificate, validator sets) when the receiving side lacks the height, then the
//! proven message (a store proof at that height). It submits them with its own key and reports every step it
//! saw committed, with the heights involved and the chain's verdict.
//!
//! **Must never**: put anything in a message that it did not read from a committed block, certificate, validator
//! set or store proof of a node; report a step as done before the receiving chain committed it successfully; or
//! decide anything the chains decide (exactly-once, timeouts, atomic decisions are the chains' and the hub's).
//!
//! First slice: it reads the nodes' committed data in process (`Shared::app()`, validator 0 of each chain) and
//! submits through `Shared::submit`. The next step is the `causeway-relayer` daemon doing the same through the
//! gateways.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use causeway_chain::exec::{get_typed, TxResult};
use causeway_chain::message::{Bytes, Message};
use causeway_chain::node::Shared;
use causeway_chain::state::StateRead;
use causeway_chain::tx::Transaction;
use causeway_chain::xchain::types::{
    hub_keys, member_keys, namespace, Ack, AtomicSpec, Decision, LegState, Outcome, Packet, HUB_NAMESPACE,
    NAMESPACE,
};
use causeway_chain::xchain::{self, EndpointMsg};
use causeway_hub::{AtomicRecord, HubMsg};
use causeway_light_client::{
    Canonical, ChainId, Hash, HeaderUpdate, LightClient, Namespace, SecretKey, StateProof,
};
use tokio::sync::{mpsc, watch};

/// Client-update messages (none when the client has the height), the height they reach, and (trusted, new).
type Update = (Vec<Message>, u64, Option<(u64, u64)>);

/// How long a submitted transaction may take to commit.
const COMMIT_WAIT: Duration = Duration::from_secs(30);

/// Submit `messages` signed by `key` to `node` and wait until they are committed; the height and the result.
pub async fn submit_and_wait(
    node: &Shared,
    key: &SecretKey,
    messages: Vec<Message>,
) -> Result<(u64, TxResult)> {
    let signer = key.public_key();
    let nonce = node.account_nonce(&signer.address());
    let tx = Transaction {
        chain_id: node.chain_id().clone(),
        signer,
        nonce,
        messages,
    }
    .sign(key);
    let hash = node
        .submit(tx)
        .await
        .with_context(|| format!("submitting to {}", node.chain_id()))?;
    let start = Instant::now();
    loop {
        let found = {
            let app = node.app();
            match app.tx_location(&hash)? {
                Some(loc) => {
                    let results = app
                        .results(loc.height)?
                        .ok_or_else(|| anyhow!("no results stored for block {}", loc.height))?;
                    let r = results
                        .txs
                        .get(loc.index as usize)
                        .cloned()
                        .ok_or_else(|| anyhow!("no result for tx {hash} in block {}", loc.height))?;
                    Some((loc.height, r))
                }
                None => None,
            }
        };
        if let Some(found) = found {
            return Ok(found);
        }
        if start.elapsed() > COMMIT_WAIT {
            bail!(
                "transaction {hash} not committed on {} within {COMMIT_WAIT:?}",
                node.chain_id()
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A record some party wants proven to another member through the hub.
#[derive(Clone, Debug)]
pub struct RecordRequest {
    /// The member holding the record.
    pub chain: ChainId,
    /// The member height at which it is proven.
    pub height: u64,
    /// Its namespace.
    pub namespace: Namespace,
    /// Its key.
    pub key: String,
    /// The member that must verify it.
    pub verifier: ChainId,
}

/// One relaying step the relayer saw committed.
#[derive(Clone, Debug)]
pub struct Relayed {
    /// What was relayed, in words.
    pub what: String,
    /// The chain that executed it (or a note when nothing was submitted).
    pub target: String,
    /// The height of the block holding it.
    pub height: u64,
    /// The client update that came with it (trusted height → new height), if any.
    pub update: Option<(u64, u64)>,
    /// The height of the other chain's state the proof is against.
    pub proof_height: u64,
    /// `None` when the chain applied it; else why it refused.
    pub failure: Option<String>,
    /// Submit-to-committed time.
    pub took: Duration,
}

/// A relaying step that is due.
#[derive(Clone, Debug)]
enum Job {
    HubRecv(Packet),
    MemberRecv(Packet),
    HubAck(Packet, Ack),
    HubTimeout(Packet),
    Resolve(Packet, Outcome),
    ProvePrepare(AtomicSpec, u32),
    AbortExpired(AtomicSpec),
    ApplyDecision(AtomicSpec, u32, Decision),
    Attest(RecordRequest),
    Verify(RecordRequest, Bytes),
}

impl Job {
    fn describe(&self) -> String {
        match self {
            Job::HubRecv(p) => format!("packet {}#{} proven to the hub", p.source, p.sequence),
            Job::MemberRecv(p) => format!("packet {}#{} proven to {}", p.source, p.sequence, p.destination),
            Job::HubAck(p, ack) => format!("ack {ack:?} of {}#{} proven to the hub", p.source, p.sequence),
            Job::HubTimeout(p) => format!("timeout of {}#{} proven to the hub", p.source, p.sequence),
            Job::Resolve(p, o) => format!(
                "outcome {o:?} of {}#{} proven to {}",
                p.source, p.sequence, p.source
            ),
            Job::ProvePrepare(s, i) => {
                format!("prepare of leg {i} of deal {} proven to the hub", short(&s.id()))
            }
            Job::AbortExpired(s) => format!("expired deal {} aborted on the hub", short(&s.id())),
            Job::ApplyDecision(s, i, d) => {
                format!(
                    "decision {d:?} of deal {} proven to leg {i}'s chain",
                    short(&s.id())
                )
            }
            Job::Attest(r) => format!(
                "record {}/{} of {} at {} attested by the hub",
                r.namespace, r.key, r.chain, r.height
            ),
            Job::Verify(r, _) => format!(
                "hub attestation of record {}/{} verified by {}",
                r.namespace, r.key, r.verifier
            ),
        }
    }
}

/// Eight hex digits of a hash.
pub fn short(h: &Hash) -> String {
    h.to_hex().chars().take(8).collect()
}

/// What the relayer learned from events.
#[derive(Default)]
struct Knowledge {
    packets: BTreeMap<(ChainId, u64), Packet>,
    acks: BTreeMap<(ChainId, u64), Ack>,
    outcomes: BTreeMap<(ChainId, u64), Outcome>,
    specs: BTreeMap<Hash, AtomicSpec>,
    /// Records asked for, not yet attested.
    to_attest: Vec<RecordRequest>,
    /// Records attested on the hub, not yet verified by their verifier.
    to_verify: Vec<(RecordRequest, Bytes)>,
}

fn decode_hex<T: Canonical>(s: Option<&str>) -> Result<T> {
    let bytes = hex::decode(s.unwrap_or_default())?;
    Ok(T::decode(&bytes)?)
}

fn attr_u64(e: &causeway_chain::exec::Event, k: &str) -> Result<u64> {
    Ok(e.attribute(k)
        .ok_or_else(|| anyhow!("event {} without {k}", e.kind))?
        .parse()?)
}

fn attr_chain(e: &causeway_chain::exec::Event, k: &str) -> Result<ChainId> {
    ChainId::new(
        e.attribute(k)
            .ok_or_else(|| anyhow!("event {} without {k}", e.kind))?,
    )
    .map_err(|e| anyhow!("{e}"))
}

impl Knowledge {
    fn observe(&mut self, results: &causeway_chain::app::BlockResults) -> Result<()> {
        let events = results
            .txs
            .iter()
            .filter(|r| r.is_ok())
            .flat_map(|r| r.events.iter());
        for e in events.chain(results.end_events.iter()) {
            match e.kind.as_str() {
                "xchain.send" => {
                    let p: Packet = decode_hex(e.attribute("packet"))?;
                    self.packets.insert((p.source.clone(), p.sequence), p);
                }
                "xchain.recv" => {
                    let ack: Ack = borsh::from_slice(&hex::decode(e.attribute("ack").unwrap_or_default())?)?;
                    self.acks
                        .insert((attr_chain(e, "source")?, attr_u64(e, "sequence")?), ack);
                }
                "hub.outcome" => {
                    let o: Outcome =
                        borsh::from_slice(&hex::decode(e.attribute("outcome").unwrap_or_default())?)?;
                    self.outcomes
                        .insert((attr_chain(e, "source")?, attr_u64(e, "sequence")?), o);
                }
                "xchain.leg_prepared" => {
                    let spec: AtomicSpec = decode_hex(e.attribute("spec"))?;
                    self.specs.insert(spec.id(), spec);
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// The chains the relayer serves: validator 0 of the hub and of each member.
pub struct Relayer {
    hub: Arc<Shared>,
    members: Vec<Arc<Shared>>,
    key: SecretKey,
    knowledge: Knowledge,
    seen: BTreeMap<ChainId, u64>,
}

impl Relayer {
    /// A relayer over `hub` and `members`, submitting with `key`.
    pub fn new(hub: Arc<Shared>, members: Vec<Arc<Shared>>, key: SecretKey) -> Relayer {
        Relayer {
            hub,
            members,
            key,
            knowledge: Knowledge::default(),
            seen: BTreeMap::new(),
        }
    }

    fn member(&self, id: &ChainId) -> Result<&Arc<Shared>> {
        self.members
            .iter()
            .find(|m| m.chain_id() == id)
            .ok_or_else(|| anyhow!("{id} is not a member of this devnet"))
    }

    /// Run until `stop` turns true: wake on every committed block, learn from new blocks, relay what is due.
    pub async fn run(
        mut self,
        mut requests: mpsc::UnboundedReceiver<RecordRequest>,
        report: mpsc::UnboundedSender<Relayed>,
        mut stop: watch::Receiver<bool>,
    ) {
        let mut subs: Vec<_> = std::iter::once(&self.hub)
            .chain(&self.members)
            .map(|s| s.blocks.subscribe())
            .collect();
        let mut failed_last = false;
        loop {
            if *stop.borrow() {
                return;
            }
            while let Ok(r) = requests.try_recv() {
                self.knowledge.to_attest.push(r);
            }
            if let Err(e) = self.learn() {
                eprintln!("relayer: reading events failed: {e:#}");
            }
            let job = match self.jobs() {
                Ok(jobs) => jobs.into_iter().next(),
                Err(e) => {
                    eprintln!("relayer: planning failed: {e:#}");
                    None
                }
            };
            if let (Some(job), false) = (job, failed_last) {
                match self.perform(&job).await {
                    Ok(r) => {
                        failed_last = r.failure.is_some();
                        let _ = report.send(r);
                        continue;
                    }
                    Err(e) => {
                        let _ = report.send(Relayed {
                            what: job.describe(),
                            target: "(not submitted)".into(),
                            height: 0,
                            update: None,
                            proof_height: 0,
                            failure: Some(format!("{e:#}")),
                            took: Duration::ZERO,
                        });
                    }
                }
            }
            // Wait for any chain's next block (or a stop); a failed step is retried after it.
            failed_last = false;
            let wake = futures_any(&mut subs);
            tokio::select! {
                _ = wake => {}
                _ = stop.changed() => {}
                _ = tokio::time::sleep(Duration::from_secs(2)) => {}
            }
        }
    }

    /// Read every block committed since the last look on each chain.
    fn learn(&mut self) -> Result<()> {
        let chains: Vec<Arc<Shared>> = std::iter::once(self.hub.clone())
            .chain(self.members.iter().cloned())
            .collect();
        for c in chains {
            let app = c.app();
            let top = app.height();
            let from = self.seen.get(c.chain_id()).copied().unwrap_or(0) + 1;
            for h in from..=top {
                if let Some(results) = app.results(h)? {
                    self.knowledge.observe(&results)?;
                }
            }
            self.seen.insert(c.chain_id().clone(), top);
        }
        Ok(())
    }

    fn endpoint_get(node: &Shared, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let app = node.app();
        let v = app.store().latest_view().get(&namespace(NAMESPACE), key)?;
        Ok(v)
    }

    /// Every step due now, planned from the chains' latest committed state.
    fn jobs(&self) -> Result<Vec<Job>> {
        let k = &self.knowledge;
        let mut jobs = vec![];
        for r in &k.to_attest {
            jobs.push(Job::Attest(r.clone()));
        }
        for (r, v) in &k.to_verify {
            jobs.push(Job::Verify(r.clone(), v.clone()));
        }
        for ((src, seq), p) in &k.packets {
            let source = self.member(src)?;
            let committed = Self::endpoint_get(source, &member_keys::commitment(*seq))?.is_some();
            let record = causeway_hub::packet_record(&self.hub.app().store().latest_view(), src, *seq)?;
            match record {
                None => jobs.push(Job::HubRecv(p.clone())),
                Some(r) if !r.resolved => {
                    let dst = self.member(&p.destination)?;
                    match Self::endpoint_get(dst, &member_keys::receipt(src, *seq))? {
                        Some(_) => {
                            if let Some(ack) = k.acks.get(&(src.clone(), *seq)) {
                                jobs.push(Job::HubAck(p.clone(), ack.clone()));
                            }
                        }
                        None => {
                            let (h, t) = {
                                let app = dst.app();
                                (app.height(), app.last_time())
                            };
                            if p.expired_at(h, t) {
                                jobs.push(Job::HubTimeout(p.clone()));
                            } else {
                                jobs.push(Job::MemberRecv(p.clone()));
                            }
                        }
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
            let (decision, record, hub_time) = {
                let app = self.hub.app();
                let view = app.store().latest_view();
                let d = causeway_hub::decision(&view, id)?;
                let r: AtomicRecord =
                    get_typed(&view, &namespace(HUB_NAMESPACE), &hub_keys::atomic(id))?.unwrap_or_default();
                (d, r, app.last_time())
            };
            match decision {
                None => {
                    if hub_time >= spec.deadline {
                        jobs.push(Job::AbortExpired(spec.clone()));
                        continue;
                    }
                    for (i, leg) in spec.legs.iter().enumerate() {
                        let chain = self.member(&leg.chain)?;
                        let proven = record.prepared.get(i).copied().unwrap_or(false);
                        if !proven
                            && Self::endpoint_get(chain, &member_keys::prepared(id, i as u32))?.is_some()
                        {
                            jobs.push(Job::ProvePrepare(spec.clone(), i as u32));
                        }
                    }
                }
                Some(d) => {
                    for (i, leg) in spec.legs.iter().enumerate() {
                        let chain = self.member(&leg.chain)?;
                        let state = xchain::leg_state(&chain.app().store().latest_view(), id, i as u32)?;
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
        Ok(jobs)
    }

    /// A header update of a client of `node` from `trusted` to `target`, from its committed blocks.
    fn header_update(node: &Shared, trusted: u64, target: u64) -> Result<HeaderUpdate> {
        let app = node.app();
        Ok(HeaderUpdate {
            header: app
                .block(target)?
                .ok_or_else(|| anyhow!("no block {target}"))?
                .header,
            commit: app
                .commit_at(target)?
                .ok_or_else(|| anyhow!("no commit certificate for {target}"))?,
            validators: app.validators_at(target)?,
            trusted_height: trusted,
            trusted_validators: app.validators_at(trusted + 1)?,
        })
    }

    fn prove(
        node: &Shared,
        height: u64,
        ns: &Namespace,
        key: &[u8],
    ) -> Result<(Option<Vec<u8>>, StateProof)> {
        Ok(node.app().store().prove(height, ns, key)?)
    }

    /// Messages bringing the hub's client of `member` to the member's latest height; that height and the update.
    fn update_on_hub(&self, member: &Shared) -> Result<Update> {
        let h = member.app().height();
        let client = causeway_hub::load_client(&self.hub.app().store().latest_view(), member.chain_id())?
            .ok_or_else(|| anyhow!("the hub has no client of {}", member.chain_id()))?;
        if client.consensus_state(h).is_some() {
            return Ok((vec![], h, None));
        }
        let trusted = client.latest_height();
        let update = Self::header_update(member, trusted, h)?;
        Ok((
            vec![HubMsg::UpdateClient {
                chain: member.chain_id().clone(),
                update,
            }
            .into_message()],
            h,
            Some((trusted, h)),
        ))
    }

    /// Messages bringing `member`'s client of the hub to the hub's latest height; that height and the update.
    fn update_on_member(&self, member: &Shared) -> Result<Update> {
        let h = self.hub.app().height();
        let client = xchain::load_hub_client(&member.app().store().latest_view())?
            .ok_or_else(|| anyhow!("{} has no client of the hub", member.chain_id()))?;
        if client.consensus_state(h).is_some() {
            return Ok((vec![], h, None));
        }
        let trusted = client.latest_height();
        let update = Self::header_update(&self.hub, trusted, h)?;
        Ok((
            vec![EndpointMsg::UpdateHubClient { update }.into_message()],
            h,
            Some((trusted, h)),
        ))
    }

    /// Build, submit and wait for one step.
    async fn perform(&mut self, job: &Job) -> Result<Relayed> {
        let ns = namespace(NAMESPACE);
        let hub_ns = namespace(HUB_NAMESPACE);
        let (target, msgs, proof_height, update, attested) = match job {
            Job::HubRecv(p) => {
                let m = self.member(&p.source)?.clone();
                let (mut msgs, h, u) = self.update_on_hub(&m)?;
                let (_, proof) = Self::prove(&m, h, &ns, &member_keys::commitment(p.sequence))?;
                msgs.push(
                    HubMsg::RecvPacket {
                        packet: p.clone(),
                        proof_height: h,
                        proof,
                    }
                    .into_message(),
                );
                (self.hub.clone(), msgs, h, u, None)
            }
            Job::MemberRecv(p) => {
                let m = self.member(&p.destination)?.clone();
                let (mut msgs, h, u) = self.update_on_member(&m)?;
                let key = hub_keys::forward(&p.destination, &p.source, p.sequence);
                let (_, proof) = Self::prove(&self.hub, h, &hub_ns, &key)?;
                msgs.push(
                    EndpointMsg::RecvPacket {
                        packet: p.clone(),
                        proof_height: h,
                        proof,
                    }
                    .into_message(),
                );
                (m, msgs, h, u, None)
            }
            Job::HubAck(p, ack) => {
                let m = self.member(&p.destination)?.clone();
                let (mut msgs, h, u) = self.update_on_hub(&m)?;
                let (_, proof) = Self::prove(&m, h, &ns, &member_keys::receipt(&p.source, p.sequence))?;
                msgs.push(
                    HubMsg::AcknowledgePacket {
                        packet: p.clone(),
                        ack: ack.clone(),
                        proof_height: h,
                        proof,
                    }
                    .into_message(),
                );
                (self.hub.clone(), msgs, h, u, None)
            }
            Job::HubTimeout(p) => {
                let m = self.member(&p.destination)?.clone();
                let (mut msgs, h, u) = self.update_on_hub(&m)?;
                let (_, proof) = Self::prove(&m, h, &ns, &member_keys::receipt(&p.source, p.sequence))?;
                msgs.push(
                    HubMsg::TimeoutPacket {
                        packet: p.clone(),
                        proof_height: h,
                        proof,
                    }
                    .into_message(),
                );
                (self.hub.clone(), msgs, h, u, None)
            }
            Job::Resolve(p, outcome) => {
                let m = self.member(&p.source)?.clone();
                let (mut msgs, h, u) = self.update_on_member(&m)?;
                let (_, proof) =
                    Self::prove(&self.hub, h, &hub_ns, &hub_keys::outcome(&p.source, p.sequence))?;
                msgs.push(
                    EndpointMsg::ResolvePacket {
                        packet: p.clone(),
                        outcome: outcome.clone(),
                        proof_height: h,
                        proof,
                    }
                    .into_message(),
                );
                (m, msgs, h, u, None)
            }
            Job::ProvePrepare(spec, index) => {
                let leg = spec
                    .legs
                    .get(*index as usize)
                    .ok_or_else(|| anyhow!("deal without leg {index}"))?;
                let m = self.member(&leg.chain)?.clone();
                let (mut msgs, h, u) = self.update_on_hub(&m)?;
                let (_, proof) = Self::prove(&m, h, &ns, &member_keys::prepared(&spec.id(), *index))?;
                msgs.push(
                    HubMsg::ProvePrepare {
                        spec: spec.clone(),
                        index: *index,
                        proof_height: h,
                        proof,
                    }
                    .into_message(),
                );
                (self.hub.clone(), msgs, h, u, None)
            }
            Job::AbortExpired(spec) => {
                let h = self.hub.app().height();
                (
                    self.hub.clone(),
                    vec![HubMsg::AbortExpired { spec: spec.clone() }.into_message()],
                    h,
                    None,
                    None,
                )
            }
            Job::ApplyDecision(spec, index, decision) => {
                let leg = spec
                    .legs
                    .get(*index as usize)
                    .ok_or_else(|| anyhow!("deal without leg {index}"))?;
                let m = self.member(&leg.chain)?.clone();
                let (mut msgs, h, u) = self.update_on_member(&m)?;
                let (_, proof) = Self::prove(&self.hub, h, &hub_ns, &hub_keys::decision(&spec.id()))?;
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
                (m, msgs, h, u, None)
            }
            Job::Attest(r) => {
                let m = self.member(&r.chain)?.clone();
                // The record is proven at the height asked for; the hub's client must trust that height.
                let client = causeway_hub::load_client(&self.hub.app().store().latest_view(), &r.chain)?
                    .ok_or_else(|| anyhow!("the hub has no client of {}", r.chain))?;
                let mut msgs = vec![];
                let mut u = None;
                if client.consensus_state(r.height).is_none() {
                    let trusted = client.latest_height();
                    if trusted >= r.height {
                        bail!(
                            "the hub's client of {} is past height {} without it",
                            r.chain,
                            r.height
                        );
                    }
                    let update = Self::header_update(&m, trusted, r.height)?;
                    msgs.push(
                        HubMsg::UpdateClient {
                            chain: r.chain.clone(),
                            update,
                        }
                        .into_message(),
                    );
                    u = Some((trusted, r.height));
                }
                let (value, proof) = Self::prove(&m, r.height, &r.namespace, r.key.as_bytes())?;
                let value = Bytes(
                    value.ok_or_else(|| anyhow!("no record {}/{} on {}", r.namespace, r.key, r.chain))?,
                );
                msgs.push(
                    HubMsg::AttestRecord {
                        chain: r.chain.clone(),
                        height: r.height,
                        namespace: r.namespace.clone(),
                        key: r.key.clone(),
                        value: value.clone(),
                        proof,
                    }
                    .into_message(),
                );
                (self.hub.clone(), msgs, r.height, u, Some(value))
            }
            Job::Verify(r, value) => {
                let m = self.member(&r.verifier)?.clone();
                let (mut msgs, h, u) = self.update_on_member(&m)?;
                let key = hub_keys::attestation(&r.chain, r.height, &r.namespace, r.key.as_bytes());
                let (_, proof) = Self::prove(&self.hub, h, &hub_ns, &key)?;
                msgs.push(
                    EndpointMsg::VerifyRecord {
                        chain: r.chain.clone(),
                        height: r.height,
                        namespace: r.namespace.clone(),
                        key: r.key.clone(),
                        value: value.clone(),
                        proof_height: h,
                        proof,
                    }
                    .into_message(),
                );
                (m, msgs, h, u, None)
            }
        };
        let start = Instant::now();
        let (height, result) = submit_and_wait(&target, &self.key, msgs).await?;
        let failure = result.failure.as_ref().map(|f| format!("{f:?}"));
        if failure.is_none() {
            match job {
                Job::Attest(r) => {
                    self.knowledge.to_attest.retain(|x| !same(x, r));
                    if let Some(v) = attested {
                        self.knowledge.to_verify.push((r.clone(), v));
                    }
                }
                Job::Verify(r, _) => self.knowledge.to_verify.retain(|(x, _)| !same(x, r)),
                _ => {}
            }
        }
        Ok(Relayed {
            what: job.describe(),
            target: target.chain_id().to_string(),
            height,
            update,
            proof_height,
            failure,
            took: start.elapsed(),
        })
    }
}

fn same(a: &RecordRequest, b: &RecordRequest) -> bool {
    a.chain == b.chain
        && a.height == b.height
        && a.namespace == b.namespace
        && a.key == b.key
        && a.verifier == b.verifier
}

/// Resolves when any of the subscriptions delivers (or lags, or closes).
async fn futures_any(subs: &mut [tokio::sync::broadcast::Receiver<Arc<causeway_chain::app::Committed>>]) {
    // Poll each receiver in turn without blocking, with a short sleep between rounds.
    loop {
        for s in subs.iter_mut() {
            match s.try_recv() {
                Ok(_) | Err(tokio::sync::broadcast::error::TryRecvError::Lagged(_)) => {
                    // Drain the rest so the next wait is for a new block.
                    while s.try_recv().is_ok() {}
                    return;
                }
                Err(tokio::sync::broadcast::error::TryRecvError::Closed) => return,
                Err(tokio::sync::broadcast::error::TryRecvError::Empty) => {}
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
