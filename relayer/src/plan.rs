//! What is due: the relayer's knowledge of every packet and atomic deal in flight, learned only from committed
//! events, and the relaying steps ([`Job`]s) that follow from it.
//!
//! **Owns**: the per-packet and per-deal progress tracks and the rule deciding which step each needs next.
//! **Must never**: perform I/O, read a clock or decide anything a chain decides: a job only says "this proof is
//! worth submitting"; whether it is valid is for the receiving chain to check. Pure and deterministic, so it is
//! tested without any chain.
//!
//! Knowledge is derived from committed events alone, so a relayer restarted at any moment rebuilds it by reading
//! the chains' events from the start (clearing on start) and nothing is lost. Tracks that reach their end (packet
//! resolved on its source, every leg of a deal decided) are dropped, so memory follows what is in flight.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use causeway_chain::exec::Event;
use causeway_chain::message::Bytes;
use causeway_chain::xchain::types::{Ack, AtomicSpec, Decision, Outcome, Packet};
use causeway_light_client::{Canonical, ChainId, Hash, Namespace, Time};

/// An event the relayer could not read (a chain emitting what this relayer does not understand).
#[derive(Debug, thiserror::Error)]
#[error("event {kind}: {reason}")]
pub struct EventError {
    /// The event kind.
    pub kind: String,
    /// What is wrong with it.
    pub reason: String,
}

/// A record some party wants proven to another member through the hub.
#[derive(Clone, Debug, PartialEq, Eq)]
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

/// One relaying step that is due.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Job {
    /// Prove a packet's commitment on its source to the hub.
    HubRecv(Arc<Packet>),
    /// Prove the hub's forward commitment to the chain the hub forwarded the packet to: its destination, or the
    /// chain that now holds the asset it brings home (the hub routed it after a split or merge).
    MemberRecv(Arc<Packet>, Arc<ChainId>),
    /// Prove the receipt (with its ack) on the chain the packet was forwarded to, to the hub.
    HubAck(Arc<Packet>, Ack, Arc<ChainId>),
    /// Prove to the hub that the chain the packet was forwarded to never received it before its deadline.
    HubTimeout(Arc<Packet>, Arc<ChainId>),
    /// Prove the hub's outcome to the source.
    Resolve(Arc<Packet>, Outcome),
    /// Prove leg `index`'s prepare to the hub.
    ProvePrepare(AtomicSpec, u32),
    /// Ask the hub to abort a deal past its deadline.
    AbortExpired(AtomicSpec),
    /// Prove the hub's decision to leg `index`'s chain.
    ApplyDecision(AtomicSpec, u32, Decision),
    /// Prove a member's record to the hub.
    Attest(RecordRequest),
    /// Prove the hub's attestation to the verifying member.
    Verify(RecordRequest, Bytes),
}

/// What a [`Job`] does, without its data: with the job's subject, a key the engine tracks jobs by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Step {
    /// [`Job::HubRecv`].
    HubRecv,
    /// [`Job::MemberRecv`].
    MemberRecv,
    /// [`Job::HubAck`].
    HubAck,
    /// [`Job::HubTimeout`].
    HubTimeout,
    /// [`Job::Resolve`].
    Resolve,
    /// [`Job::ProvePrepare`].
    ProvePrepare,
    /// [`Job::AbortExpired`].
    AbortExpired,
    /// [`Job::ApplyDecision`].
    ApplyDecision,
    /// [`Job::Attest`].
    Attest,
    /// [`Job::Verify`].
    Verify,
}

/// What a job is about.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Subject {
    /// A packet, by source and sequence.
    Packet(ChainId, u64),
    /// A deal's leg (the deal's id; leg 0 for deal-wide steps).
    Deal(Hash, u32),
    /// A record request: chain, height, namespace, key, verifier.
    Record(ChainId, u64, String, String, ChainId),
}

/// A job's identity: two jobs with equal keys are the same step of the same packet, deal or record (what the
/// engine keeps in flight and times, instead of comparing whole jobs).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct JobKey {
    /// The step.
    pub step: Step,
    /// Its subject.
    pub subject: Subject,
}

/// Eight hex digits of a hash.
pub fn short(h: &Hash) -> String {
    h.to_hex().chars().take(8).collect()
}

impl Job {
    /// The job's identity.
    pub fn key(&self) -> JobKey {
        let packet = |p: &Packet| Subject::Packet(p.source.clone(), p.sequence);
        let record = |r: &RecordRequest| {
            Subject::Record(
                r.chain.clone(),
                r.height,
                r.namespace.to_string(),
                r.key.clone(),
                r.verifier.clone(),
            )
        };
        let (step, subject) = match self {
            Job::HubRecv(p) => (Step::HubRecv, packet(p)),
            Job::MemberRecv(p, _) => (Step::MemberRecv, packet(p)),
            Job::HubAck(p, ..) => (Step::HubAck, packet(p)),
            Job::HubTimeout(p, _) => (Step::HubTimeout, packet(p)),
            Job::Resolve(p, _) => (Step::Resolve, packet(p)),
            Job::ProvePrepare(s, i) => (Step::ProvePrepare, Subject::Deal(s.id(), *i)),
            Job::AbortExpired(s) => (Step::AbortExpired, Subject::Deal(s.id(), 0)),
            Job::ApplyDecision(s, i, _) => (Step::ApplyDecision, Subject::Deal(s.id(), *i)),
            Job::Attest(r) => (Step::Attest, record(r)),
            Job::Verify(r, _) => (Step::Verify, record(r)),
        };
        JobKey { step, subject }
    }

    /// The chain the job's transaction goes to.
    pub fn target<'a>(&'a self, hub: &'a ChainId) -> &'a ChainId {
        match self {
            Job::HubRecv(_)
            | Job::HubAck(..)
            | Job::HubTimeout(..)
            | Job::ProvePrepare(..)
            | Job::AbortExpired(_)
            | Job::Attest(_) => hub,
            Job::MemberRecv(_, to) => to,
            Job::Resolve(p, _) => &p.source,
            Job::ApplyDecision(spec, i, _) => spec.legs.get(*i as usize).map(|l| &l.chain).unwrap_or(hub),
            Job::Verify(r, _) => &r.verifier,
        }
    }

    /// The chain whose state the job proves (the hub for member-bound jobs), if any.
    pub fn proven_chain<'a>(&'a self, hub: &'a ChainId) -> Option<&'a ChainId> {
        match self {
            Job::HubRecv(p) => Some(&p.source),
            Job::HubAck(_, _, to) | Job::HubTimeout(_, to) => Some(to),
            Job::ProvePrepare(spec, i) => spec.legs.get(*i as usize).map(|l| &l.chain),
            Job::Attest(r) => Some(&r.chain),
            Job::AbortExpired(_) => None,
            Job::MemberRecv(..) | Job::Resolve(..) | Job::ApplyDecision(..) | Job::Verify(..) => Some(hub),
        }
    }

    /// The job in words, for logs and reports.
    pub fn describe(&self) -> String {
        match self {
            Job::HubRecv(p) => format!("packet {}#{} proven to the hub", p.source, p.sequence),
            Job::MemberRecv(p, to) => format!("packet {}#{} proven to {to}", p.source, p.sequence),
            Job::HubAck(p, ack, _) => format!("ack {ack:?} of {}#{} proven to the hub", p.source, p.sequence),
            Job::HubTimeout(p, _) => format!("timeout of {}#{} proven to the hub", p.source, p.sequence),
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

/// Where one packet stands, as far as committed events tell.
#[derive(Clone, Debug, Default)]
struct PacketTrack {
    /// Shared with the jobs made for it: a pass makes one job per packet in flight, cloning only the pointer.
    packet: Option<Arc<Packet>>,
    /// The hub recorded it (forwarded it, or resolved it at once).
    at_hub: bool,
    /// The chain the hub forwarded it to (its destination, unless the hub routed it to a successor).
    to: Option<Arc<ChainId>>,
    /// The destination's receipt, with its ack.
    ack: Option<Ack>,
    /// The hub's outcome for the source.
    outcome: Option<Outcome>,
}

/// Where one atomic deal stands.
#[derive(Clone, Debug, Default)]
struct DealTrack {
    spec: Option<AtomicSpec>,
    /// Legs whose prepare the chains committed.
    prepared: BTreeSet<u32>,
    /// Legs the hub has proven.
    proven: BTreeSet<u32>,
    decision: Option<Decision>,
    /// Legs whose chain applied the decision.
    applied: BTreeSet<u32>,
}

/// Latest learned height and block time of a chain.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tip {
    /// Height.
    pub height: u64,
    /// Its block time.
    pub time: Time,
}

/// The sequences of one source whose packets are resolved: all below `below`, and those in `above`.
#[derive(Debug)]
struct Done {
    below: u64,
    above: BTreeSet<u64>,
}

impl Default for Done {
    fn default() -> Self {
        // Sequences start at 1.
        Done {
            below: 1,
            above: BTreeSet::new(),
        }
    }
}

impl Done {
    fn insert(&mut self, seq: u64) {
        if seq >= self.below {
            self.above.insert(seq);
        }
        while self.above.remove(&self.below) {
            self.below += 1;
        }
    }

    fn contains(&self, seq: u64) -> bool {
        seq < self.below || self.above.contains(&seq)
    }
}

/// Everything the relayer knows, from events only.
#[derive(Debug)]
pub struct Knowledge {
    hub: ChainId,
    packets: BTreeMap<(ChainId, u64), PacketTrack>,
    /// Resolved packets per source (kept compactly), so that older events of a resolved packet, read later in the
    /// same pass or after a restart, do not bring it back.
    done: BTreeMap<ChainId, Done>,
    deals: BTreeMap<Hash, DealTrack>,
    to_attest: Vec<RecordRequest>,
    to_verify: Vec<(RecordRequest, Bytes)>,
    /// Packets the relayer saw resolved (their track is gone).
    resolved: u64,
}

fn attr<'a>(e: &'a Event, k: &str) -> Result<&'a str, EventError> {
    e.attribute(k).ok_or_else(|| EventError {
        kind: e.kind.clone(),
        reason: format!("no attribute {k}"),
    })
}

fn bad(e: &Event, reason: impl std::fmt::Display) -> EventError {
    EventError {
        kind: e.kind.clone(),
        reason: reason.to_string(),
    }
}

fn canonical<T: Canonical>(e: &Event, k: &str) -> Result<T, EventError> {
    let bytes = hex::decode(attr(e, k)?).map_err(|x| bad(e, x))?;
    T::decode(&bytes).map_err(|x| bad(e, x))
}

fn borsh_attr<T: borsh::BorshDeserialize>(e: &Event, k: &str) -> Result<T, EventError> {
    let bytes = hex::decode(attr(e, k)?).map_err(|x| bad(e, x))?;
    borsh::from_slice(&bytes).map_err(|x| bad(e, x))
}

fn number<T: std::str::FromStr>(e: &Event, k: &str) -> Result<T, EventError>
where
    T::Err: std::fmt::Display,
{
    attr(e, k)?.parse().map_err(|x| bad(e, x))
}

fn chain_attr(e: &Event, k: &str) -> Result<ChainId, EventError> {
    ChainId::new(attr(e, k)?).map_err(|x| bad(e, x))
}

fn hash_attr(e: &Event, k: &str) -> Result<Hash, EventError> {
    Hash::from_hex(attr(e, k)?).map_err(|x| bad(e, x))
}

impl Knowledge {
    /// Nothing known yet, for an alliance whose hub is `hub`.
    pub fn new(hub: ChainId) -> Self {
        Knowledge {
            hub,
            packets: BTreeMap::new(),
            done: BTreeMap::new(),
            deals: BTreeMap::new(),
            to_attest: vec![],
            to_verify: vec![],
            resolved: 0,
        }
    }

    /// Packets in flight (not yet resolved on their source).
    pub fn packets_in_flight(&self) -> usize {
        self.packets.len()
    }

    /// Deals not yet applied on every leg.
    pub fn deals_in_flight(&self) -> usize {
        self.deals.len()
    }

    /// Packets seen resolved since this relayer started.
    pub fn resolved(&self) -> u64 {
        self.resolved
    }

    /// Ask for `r` to be attested by the hub and then verified by its verifier.
    pub fn request_record(&mut self, r: RecordRequest) {
        if !self.to_attest.contains(&r) {
            self.to_attest.push(r);
        }
    }

    /// The hub attested `r` with `value`: its verification is due next.
    pub fn record_attested(&mut self, r: &RecordRequest, value: Bytes) {
        self.to_attest.retain(|x| x != r);
        self.to_verify.push((r.clone(), value));
    }

    /// The verifier verified `r`: nothing more is due for it.
    pub fn record_verified(&mut self, r: &RecordRequest) {
        self.to_verify.retain(|(x, _)| x != r);
    }

    /// The track of a packet not yet resolved (none once it is).
    fn track(&mut self, source: ChainId, sequence: u64) -> Option<&mut PacketTrack> {
        if self.done.get(&source).is_some_and(|d| d.contains(sequence)) {
            return None;
        }
        Some(self.packets.entry((source, sequence)).or_default())
    }

    /// Learn from the committed events of `chain` (events of failed transactions are never committed). Every
    /// event is checked before anything is learned from it; a malformed one is an error and teaches nothing.
    pub fn observe(&mut self, chain: &ChainId, events: &[Event]) -> Result<(), EventError> {
        for e in events {
            self.observe_one(chain, e)?;
        }
        Ok(())
    }

    fn observe_one(&mut self, chain: &ChainId, e: &Event) -> Result<(), EventError> {
        let on_hub = *chain == self.hub;
        match (on_hub, e.kind.as_str()) {
            (false, "xchain.send") => {
                let p: Packet = canonical(e, "packet")?;
                if p.source != *chain {
                    return Err(bad(e, format!("packet of {} sent by {chain}", p.source)));
                }
                if let Some(t) = self.track(p.source.clone(), p.sequence) {
                    t.packet.get_or_insert_with(|| Arc::new(p));
                }
            }
            (true, "hub.forward") => {
                let p: Packet = canonical(e, "packet")?;
                let to = chain_attr(e, "destination")?;
                if let Some(t) = self.track(p.source.clone(), p.sequence) {
                    t.packet.get_or_insert_with(|| Arc::new(p));
                    t.at_hub = true;
                    t.to.get_or_insert_with(|| Arc::new(to));
                }
            }
            (false, "xchain.recv") => {
                let ack: Ack = borsh_attr(e, "ack")?;
                if let Some(t) = self.track(chain_attr(e, "source")?, number(e, "sequence")?) {
                    t.ack = Some(ack);
                }
            }
            (true, "hub.outcome") => {
                let p: Packet = canonical(e, "packet")?;
                let o: Outcome = borsh_attr(e, "outcome")?;
                if let Some(t) = self.track(p.source.clone(), p.sequence) {
                    t.packet.get_or_insert_with(|| Arc::new(p));
                    t.at_hub = true;
                    t.outcome = Some(o);
                }
            }
            (false, "xchain.resolved") => {
                let sequence: u64 = number(e, "sequence")?;
                self.done.entry(chain.clone()).or_default().insert(sequence);
                if self.packets.remove(&(chain.clone(), sequence)).is_some() {
                    self.resolved += 1;
                }
            }
            (false, "xchain.leg_prepared") => {
                let spec: AtomicSpec = canonical(e, "spec")?;
                let index: u32 = number(e, "index")?;
                let d = self.deals.entry(spec.id()).or_default();
                d.spec.get_or_insert(spec);
                d.prepared.insert(index);
            }
            (true, "hub.leg_proven") => {
                let id = hash_attr(e, "id")?;
                let index: u32 = number(e, "index")?;
                self.deals.entry(id).or_default().proven.insert(index);
            }
            (true, "hub.atomic_decided") => {
                let id = hash_attr(e, "id")?;
                let d = match attr(e, "decision")? {
                    "Commit" => Decision::Commit,
                    "Abort" => Decision::Abort,
                    other => return Err(bad(e, format!("decision {other:?}"))),
                };
                self.deals.entry(id).or_default().decision = Some(d);
            }
            (false, "xchain.leg_decided") => {
                let id = hash_attr(e, "id")?;
                let index: u32 = number(e, "index")?;
                self.deals.entry(id).or_default().applied.insert(index);
            }
            _ => {}
        }
        Ok(())
    }

    /// Drop deals that every leg has applied.
    fn prune(&mut self) {
        self.deals.retain(|_, d| match &d.spec {
            Some(spec) => d.decision.is_none() || d.applied.len() < spec.legs.len(),
            None => true,
        });
    }

    /// Every step due, given the learned tips of the chains (a destination's tip decides whether a packet has
    /// expired there; the hub's tip whether a deal has). `members` are the chains this relayer serves: jobs for
    /// other chains are left to other relayers.
    pub fn due(&mut self, tips: &BTreeMap<ChainId, Tip>, members: &BTreeSet<ChainId>) -> Vec<Job> {
        self.prune();
        let serves = |c: &ChainId| members.contains(c);
        let mut jobs = vec![];
        for r in &self.to_attest {
            jobs.push(Job::Attest(r.clone()));
        }
        for (r, v) in &self.to_verify {
            jobs.push(Job::Verify(r.clone(), v.clone()));
        }
        for t in self.packets.values() {
            let Some(p) = &t.packet else { continue };
            if !serves(&p.source) {
                continue;
            }
            // `to` is known once the hub forwarded the packet (`at_hub` without an outcome means exactly that).
            match (&t.outcome, &t.ack, t.at_hub, &t.to) {
                (Some(o), ..) => jobs.push(Job::Resolve(p.clone(), o.clone())),
                (None, Some(ack), true, Some(to)) if serves(to) => {
                    jobs.push(Job::HubAck(p.clone(), ack.clone(), to.clone()))
                }
                (None, None, true, Some(to)) if serves(to) => {
                    let tip = tips.get(&**to).copied().unwrap_or_default();
                    if p.expired_at(tip.height, tip.time) {
                        jobs.push(Job::HubTimeout(p.clone(), to.clone()));
                    } else {
                        jobs.push(Job::MemberRecv(p.clone(), to.clone()));
                    }
                }
                (None, _, false, _) => jobs.push(Job::HubRecv(p.clone())),
                _ => {}
            }
        }
        let hub_time = tips.get(&self.hub).map(|t| t.time).unwrap_or_default();
        for d in self.deals.values() {
            let Some(spec) = &d.spec else { continue };
            if !spec.legs.iter().all(|l| serves(&l.chain)) {
                continue;
            }
            match d.decision {
                None if hub_time >= spec.deadline => jobs.push(Job::AbortExpired(spec.clone())),
                None => {
                    for i in d.prepared.difference(&d.proven) {
                        jobs.push(Job::ProvePrepare(spec.clone(), *i));
                    }
                }
                Some(decision) => {
                    for i in 0..spec.legs.len() as u32 {
                        if !d.applied.contains(&i) {
                            jobs.push(Job::ApplyDecision(spec.clone(), i, decision));
                        }
                    }
                }
            }
        }
        jobs
    }
}

#[cfg(test)]
mod tests;
