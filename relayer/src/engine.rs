//! The relaying loop: learn from every chain's committed events, find what is due ([`crate::plan`]), build each
//! target chain's batches (client updates, then many proven messages at the height they reach) and submit them,
//! several transactions in flight per target chain.
//!
//! **Owns**: batching, the proof height of each batch, client updates (also ahead of the trusting period when no
//! traffic moves a client), the relayer's nonces on each target chain (tracked locally so that consecutive
//! transactions can wait for commit at once, re-read from the chain after a nonce error), the steps in flight (so a
//! step is not submitted twice while its transaction waits), reports of what was relayed. **Must never**: put
//! anything in a message that it did not read from a committed header, certificate, validator set or checked store
//! proof; report a step done before the receiving chain committed it successfully; or keep state of its own that a
//! restart would need — everything comes back from the chains' events (what is in flight only avoids double work).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use causeway_chain::message::{Bytes, Message};
use causeway_chain::xchain::client::Slot;
use causeway_chain::xchain::types::{hub_keys, member_keys, namespace, Packet, HUB_NAMESPACE, NAMESPACE};
use causeway_chain::xchain::EndpointMsg;
use causeway_hub::HubMsg;
use causeway_light_client::native::{ClientState, TrustedHeight};
use causeway_light_client::{Canonical, ChainId, Namespace, SecretKey, StateProof};
use futures::future::join_all;
use tokio::sync::{mpsc, watch};

use crate::chain::{ChainHandle, Landing};
use crate::metrics::{ClientLabel, RelayerMetrics};
use crate::plan::{Job, JobKey, Knowledge, RecordRequest, Tip};
use crate::RelayError;

/// How the engine batches and waits.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// Messages per transaction, at most (the chain allows 512).
    pub batch_max: usize,
    /// Bytes of messages per transaction, at most (the chain allows 1 MiB per transaction).
    pub batch_bytes: usize,
    /// How long a submitted transaction may take to commit.
    pub commit_timeout: Duration,
    /// Refresh a client with no traffic once this fraction of its trusting period has passed since its latest
    /// trusted header (e.g. 1/3).
    pub refresh_fraction: (u64, u64),
    /// How often to look at idle clients' ages.
    pub refresh_check: Duration,
    /// Transactions waiting for commit at once on one target chain (consecutive nonces).
    pub pipeline: usize,
    /// How often to compare the headers each client trusts with what the chain it follows shows (misbehaviour
    /// watch).
    pub watch_every: Duration,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            batch_max: 500,
            batch_bytes: 768 * 1024,
            commit_timeout: Duration::from_secs(30),
            refresh_fraction: (1, 3),
            refresh_check: Duration::from_secs(10),
            pipeline: 4,
            watch_every: Duration::from_secs(2),
        }
    }
}

/// One relaying step the engine saw committed (or refused).
#[derive(Clone, Debug)]
pub struct Relayed {
    /// What was relayed, in words.
    pub what: String,
    /// The chain that executed it.
    pub target: ChainId,
    /// The height of the block holding it (0 when it never reached a block).
    pub height: u64,
    /// The client update that came with it (trusted height → new height), if any.
    pub update: Option<(u64, u64)>,
    /// The height of the other chain's state the proof is against.
    pub proof_height: u64,
    /// `None` when the chain applied it; else why not.
    pub failure: Option<String>,
    /// Submit-to-committed time of its transaction.
    pub took: Duration,
}

/// One target chain's batch, built and ready to sign.
struct Batch {
    target: ChainId,
    messages: Vec<Message>,
    /// The jobs in it, with their proof heights.
    jobs: Vec<(Job, u64)>,
    /// Client updates in it (client of → (trusted, new)).
    updates: BTreeMap<ChainId, (u64, u64)>,
    /// For an attestation: the record's value.
    attested: Option<(RecordRequest, Bytes)>,
    /// For misbehaviour evidence: the height at which the followed chain's header conflicts with the client's.
    evidence: Option<u64>,
}

/// What one pass did.
#[derive(Clone, Debug, Default)]
pub struct CycleReport {
    /// Steps due at the start of the pass.
    pub due: usize,
    /// Steps relayed (committed and applied).
    pub relayed: usize,
    /// Steps refused or failed.
    pub failed: usize,
    /// Every step, in the order done.
    pub steps: Vec<Relayed>,
}

impl CycleReport {
    fn add(&mut self, steps: Vec<Relayed>) {
        for s in steps {
            if s.failure.is_none() {
                self.relayed += 1;
            } else {
                self.failed += 1;
            }
            self.steps.push(s);
        }
    }
}

/// The relayer's transactions on one target chain: its next nonce there, tracked locally so that several
/// transactions can wait for commit at once.
#[derive(Debug, Default)]
struct Lane {
    /// The nonce of the next new transaction; `None` when it must be read from the chain again (at the start, and
    /// after a nonce error or a transaction whose fate is unknown), which waits until nothing is in flight.
    next: Option<u64>,
    /// Nonces handed out whose transaction the chain refused before taking the nonce: used again first, or the
    /// transactions after them would wait for ever.
    holes: BTreeSet<u64>,
    /// Transactions submitted and not yet landed.
    flying: usize,
}

impl Lane {
    /// How many more transactions may be submitted now.
    fn room(&self, depth: usize) -> usize {
        if self.next.is_none() && self.flying > 0 {
            return 0;
        }
        depth.max(1).saturating_sub(self.flying)
    }

    /// The nonce of the next transaction (`next` must be known).
    fn take(&mut self) -> Option<u64> {
        if let Some(n) = self.holes.pop_first() {
            return Some(n);
        }
        let n = self.next?;
        self.next = Some(n + 1);
        Some(n)
    }

    /// Read the nonce from the chain again once what is in flight has landed.
    fn resync(&mut self) {
        self.next = None;
        self.holes.clear();
    }
}

/// A step submitted and not yet learned as done.
#[derive(Clone, Debug)]
struct InFlight {
    /// The chain its transaction went to.
    target: ChainId,
    /// The height that committed it, once known: the step stays in flight until the engine has learned the events
    /// up to there (else it would look due again).
    until: Option<u64>,
}

/// A transaction that landed (or did not), with the batch it carried.
struct Landed {
    nonce: u64,
    batch: Batch,
    landing: Landing,
    took: Duration,
}

/// A relayer over one hub and its members.
pub struct Engine {
    hub: ChainHandle,
    members: BTreeMap<ChainId, ChainHandle>,
    key: SecretKey,
    chain_keys: BTreeMap<ChainId, SecretKey>,
    cfg: EngineConfig,
    knowledge: Knowledge,
    tips: BTreeMap<ChainId, Tip>,
    first_due: HashMap<JobKey, Instant>,
    last_refresh_check: Option<Instant>,
    metrics: Arc<RelayerMetrics>,
    lanes: BTreeMap<ChainId, Lane>,
    in_flight: HashMap<JobKey, InFlight>,
    /// Chains whose gateway did not answer on the last pass.
    down: BTreeSet<ChainId>,
    /// Misbehaviour watch per (host, client of).
    watched: HashMap<(ChainId, ChainId), Watched>,
    last_watch: Option<Instant>,
    /// (host, client of) → the latest height this relayer's committed updates made the client trust.
    trusted: HashMap<(ChainId, ChainId), u64>,
    /// (host, client of) → the height an update in a transaction still in flight moves the client to.
    updating: HashMap<(ChainId, ChainId), u64>,
    landed_tx: mpsc::UnboundedSender<Landed>,
    landed_rx: mpsc::UnboundedReceiver<Landed>,
}

impl Engine {
    /// A relayer over `hub` and `members`, signing with `key`.
    pub fn new(
        hub: ChainHandle,
        members: Vec<ChainHandle>,
        key: SecretKey,
        cfg: EngineConfig,
        metrics: Arc<RelayerMetrics>,
    ) -> Self {
        let (landed_tx, landed_rx) = mpsc::unbounded_channel();
        Engine {
            knowledge: Knowledge::new(hub.id().clone()),
            hub,
            members: members.into_iter().map(|m| (m.id().clone(), m)).collect(),
            key,
            chain_keys: BTreeMap::new(),
            cfg,
            tips: BTreeMap::new(),
            first_due: HashMap::new(),
            last_refresh_check: None,
            metrics,
            lanes: BTreeMap::new(),
            in_flight: HashMap::new(),
            down: BTreeSet::new(),
            watched: HashMap::new(),
            last_watch: None,
            trusted: HashMap::new(),
            updating: HashMap::new(),
            landed_tx,
            landed_rx,
        }
    }

    /// Sign transactions on `chain` with `key` instead of the default key.
    pub fn with_chain_key(mut self, chain: ChainId, key: SecretKey) -> Self {
        self.chain_keys.insert(chain, key);
        self
    }

    fn key_for(&self, chain: &ChainId) -> &SecretKey {
        self.chain_keys.get(chain).unwrap_or(&self.key)
    }

    /// What the relayer knows.
    pub fn knowledge(&self) -> &Knowledge {
        &self.knowledge
    }

    /// Ask for a record to be proven to another member through the hub.
    pub fn request_record(&mut self, r: RecordRequest) {
        self.knowledge.request_record(r);
    }

    /// The learned tip of each chain.
    pub fn tips(&self) -> &BTreeMap<ChainId, Tip> {
        &self.tips
    }

    fn chain(&self, id: &ChainId) -> Result<&ChainHandle, RelayError> {
        if id == self.hub.id() {
            return Ok(&self.hub);
        }
        self.members
            .get(id)
            .ok_or_else(|| RelayError::UnknownChain(id.clone()))
    }

    fn served(&self) -> BTreeSet<ChainId> {
        std::iter::once(self.hub.id().clone())
            .chain(self.members.keys().cloned())
            .collect()
    }

    /// Read every chain's events committed since the last look (from height 1 on the first look: clearing on
    /// start). The hub is read last, so that what members committed is known before what the hub made of it.
    /// Fails if any chain could not be read (the others are learned from all the same).
    pub async fn learn(&mut self) -> Result<(), RelayError> {
        match self.learn_reachable().await.into_iter().next() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// [`Engine::learn`] for every chain that answers; the errors of those that do not. A chain that failed the
    /// last time is asked once, without the retries, so that one dead gateway does not hold up every other path
    /// (it is asked again on the next pass).
    async fn learn_reachable(&mut self) -> Vec<RelayError> {
        let chains: Vec<ChainHandle> = self
            .members
            .values()
            .cloned()
            .chain(std::iter::once(self.hub.clone()))
            .collect();
        let down = &self.down;
        let statuses = join_all(chains.iter().map(|c| async move {
            if down.contains(c.id()) {
                c.status_once().await
            } else {
                c.status().await
            }
        }))
        .await;
        let mut failed = vec![];
        for (c, status) in chains.iter().zip(statuses) {
            match self.learn_from(c, status).await {
                Ok(()) => {
                    if self.down.remove(c.id()) {
                        tracing::info!(chain = %c.id(), "gateway answers again");
                    }
                }
                Err(e) => {
                    self.down.insert(c.id().clone());
                    failed.push(e);
                }
            }
        }
        self.metrics
            .packets_in_flight
            .set(self.knowledge.packets_in_flight() as i64);
        // Steps whose commit the events now cover are known to the plan: no longer in flight.
        let tips = &self.tips;
        self.in_flight.retain(|_, f| match f.until {
            Some(h) => tips.get(&f.target).is_none_or(|t| t.height < h),
            None => true,
        });
        failed
    }

    async fn learn_from(
        &mut self,
        c: &ChainHandle,
        status: Result<causeway_chain::gateway::types::Status, RelayError>,
    ) -> Result<(), RelayError> {
        let status = status?;
        let from = self.tips.get(c.id()).map(|t| t.height).unwrap_or(0) + 1;
        if status.height >= from {
            let events = c.events(from, status.height).await?;
            let before = self.knowledge.resolved();
            self.knowledge
                .observe(c.id(), &events)
                .map_err(|e| RelayError::Event {
                    chain: c.id().clone(),
                    source: e,
                })?;
            self.metrics
                .packets_resolved
                .inc_by(self.knowledge.resolved() - before);
        }
        self.metrics
            .height
            .get_or_create(&crate::metrics::ChainLabel {
                chain: c.id().to_string(),
            })
            .set(status.height as i64);
        self.tips.insert(
            c.id().clone(),
            Tip {
                height: status.height,
                time: status.time,
            },
        );
        Ok(())
    }

    /// The steps due now (including those whose transaction is in flight).
    pub fn due(&mut self) -> Vec<Job> {
        let served = self.served();
        let jobs = self.knowledge.due(&self.tips, &served);
        let now = Instant::now();
        let keys: std::collections::HashSet<JobKey> = jobs.iter().map(Job::key).collect();
        self.first_due.retain(|k, _| keys.contains(k));
        for k in keys {
            self.first_due.entry(k).or_insert(now);
        }
        self.metrics.backlog.set(jobs.len() as i64);
        jobs
    }

    /// Transactions submitted and not yet landed, on every target.
    pub fn transactions_in_flight(&self) -> usize {
        self.lanes.values().map(|l| l.flying).sum()
    }

    /// One pass that waits for its own transactions: learn, submit everything due (as many batches per target as
    /// the pipeline allows), and report once every transaction has landed. Fails if a chain could not be read
    /// (after relaying what did not need it).
    pub async fn cycle(&mut self) -> Result<CycleReport, RelayError> {
        let (due, failed) = self.pass().await;
        let mut report = CycleReport {
            due,
            ..CycleReport::default()
        };
        while self.transactions_in_flight() > 0 {
            let Some(l) = self.landed_rx.recv().await else {
                break;
            };
            let steps = self.land(l);
            report.add(steps);
        }
        match failed.into_iter().next() {
            Some(e) => Err(e),
            None => Ok(report),
        }
    }

    /// Learn, then build and submit batches for what is due and not already in flight, as far as each target's
    /// pipeline has room; transactions land later (see [`Engine::land`]). Steps that need a chain whose gateway
    /// did not answer wait. Returns the number of steps due and the chains' errors.
    async fn pass(&mut self) -> (usize, Vec<RelayError>) {
        let failed = self.learn_reachable().await;
        let jobs = self.due();
        let due = jobs.len();
        let hub = self.hub.id().clone();
        let fresh: Vec<Job> = jobs
            .into_iter()
            .filter(|j| {
                !self.down.contains(j.target(&hub))
                    && j.proven_chain(&hub).is_none_or(|c| !self.down.contains(c))
                    && !self.in_flight.contains_key(&j.key())
            })
            .collect();
        let mut batches = self.build_batches(fresh).await;
        if due == 0 {
            batches.extend(self.refresh_idle_clients().await);
        }
        batches.extend(self.watch_misbehaviour().await);
        for b in batches {
            let target = b.target.clone();
            if let Err(e) = self.launch(b).await {
                tracing::warn!(target = %target, error = %e, "could not submit a batch");
            }
        }
        (due, failed)
    }

    /// Run until `stop` turns true: a pass on every new block of any chain (gateway subscriptions), on every
    /// landed transaction, and at least every `poll`; record requests arrive on `requests`, every step is reported
    /// on `report`.
    pub async fn run(
        mut self,
        poll: Duration,
        mut requests: mpsc::UnboundedReceiver<RecordRequest>,
        report: mpsc::UnboundedSender<Relayed>,
        mut stop: watch::Receiver<bool>,
        health: Option<Arc<crate::daemon::Health>>,
    ) {
        let (wake_tx, mut wake) = mpsc::channel::<()>(1);
        let watchers: Vec<_> = std::iter::once(self.hub.clone())
            .chain(self.members.values().cloned())
            .map(|c| tokio::spawn(watch_blocks(c, wake_tx.clone())))
            .collect();
        let mut landed: Vec<Relayed> = vec![];
        loop {
            if *stop.borrow() {
                break;
            }
            while let Ok(r) = requests.try_recv() {
                self.knowledge.request_record(r);
            }
            while let Ok(l) = self.landed_rx.try_recv() {
                landed.extend(self.land(l));
            }
            let mut r = CycleReport::default();
            r.add(std::mem::take(&mut landed));
            for s in &r.steps {
                if let Some(f) = &s.failure {
                    tracing::warn!(step = %s.what, target = %s.target, failure = %f, "step failed");
                } else {
                    tracing::debug!(step = %s.what, target = %s.target, height = s.height, "relayed");
                }
            }
            if r.relayed + r.failed > 0 {
                tracing::info!(relayed = r.relayed, failed = r.failed, "transactions landed");
            }
            let (due, failed) = self.pass().await;
            r.due = due;
            match failed.first() {
                None => {
                    if let Some(h) = &health {
                        h.cycle_ok(&r, self.knowledge.packets_in_flight());
                    }
                }
                Some(e) => {
                    tracing::warn!(error = %e, "a chain could not be read; its paths wait");
                    if let Some(h) = &health {
                        h.cycle_failed(&r, e);
                    }
                }
            }
            for s in r.steps {
                let _ = report.send(s);
            }
            tokio::select! {
                _ = wake.recv() => {}
                Some(l) = self.landed_rx.recv() => landed.extend(self.land(l)),
                _ = stop.changed() => {}
                _ = tokio::time::sleep(poll) => {}
            }
        }
        for w in watchers {
            w.abort();
        }
    }

    /// The hub's client of `member`, or `member`'s client of the hub.
    /// `host`'s client of `of`: its state and kept heights (two small reads; heights are read one by one, as
    /// needed, with [`Engine::trusted_on`]).
    async fn client_on(&self, host: &ChainId, of: &ChainId) -> Result<RemoteClient, RelayError> {
        let (handle, slot) = self.slot_on(host, of)?;
        let inconsistent = |what: &str, e: &dyn std::fmt::Display| RelayError::Inconsistent {
            chain: host.clone(),
            reason: format!("its client of {of}: {what} does not decode: {e}"),
        };
        let raw = handle
            .value(slot.namespace(), slot.key())
            .await?
            .ok_or_else(|| RelayError::NoClient {
                host: host.clone(),
                of: of.clone(),
            })?;
        let state = ClientState::decode(&raw).map_err(|e| inconsistent("the client state", &e))?;
        let kept: Vec<u64> = match handle.value(slot.namespace(), &slot.heights_key()).await? {
            Some(raw) => borsh::from_slice(&raw).map_err(|e| inconsistent("the kept heights", &e))?,
            None => Vec::new(),
        };
        Ok(RemoteClient { state, kept })
    }

    fn slot_on(&self, host: &ChainId, of: &ChainId) -> Result<(&ChainHandle, Slot), RelayError> {
        Ok(if host == self.hub.id() {
            (&self.hub, Slot::of_member(of))
        } else {
            (self.chain(host)?, Slot::of_hub())
        })
    }

    /// What `host`'s client of `of` keeps about `height`, if it trusts that height.
    async fn trusted_on(
        &self,
        host: &ChainId,
        of: &ChainId,
        height: u64,
    ) -> Result<Option<TrustedHeight>, RelayError> {
        let (handle, slot) = self.slot_on(host, of)?;
        let Some(raw) = handle.value(slot.namespace(), &slot.height_key(height)).await? else {
            return Ok(None);
        };
        TrustedHeight::decode(&raw)
            .map(Some)
            .map_err(|e| RelayError::Inconsistent {
                chain: host.clone(),
                reason: format!("its client of {of}: height {height} does not decode: {e}"),
            })
    }

    /// The update message moving `host`'s client of `of` to `height`, unless it already trusts that height. The
    /// client is read from `host` unless one of this relayer's own updates, committed, made it trust a height
    /// at or below `height` (then that height is the update's base; a failed transaction on `host` forgets it).
    async fn update_to(
        &self,
        host: &ChainId,
        of: &ChainId,
        height: u64,
    ) -> Result<Option<(Message, (u64, u64))>, RelayError> {
        let pair = (host.clone(), of.clone());
        if self.updating.get(&pair) == Some(&height) {
            // A transaction in flight, earlier in nonce order, brings the client there.
            return Ok(None);
        }
        let trusted = match self.trusted.get(&pair) {
            Some(&t) if t == height => return Ok(None),
            Some(&t) if t < height => t,
            _ => {
                let client = self.client_on(host, of).await?;
                if client.trusts(height) {
                    return Ok(None);
                }
                let trusted = client.state.latest_height;
                if trusted >= height {
                    return Err(RelayError::Inconsistent {
                        chain: host.clone(),
                        reason: format!("its client of {of} is past height {height} without trusting it"),
                    });
                }
                trusted
            }
        };
        let update = self.chain(of)?.header_update(trusted, height).await?;
        Ok(Some((self.update_message(host, of, update), (trusted, height))))
    }

    /// The message giving `host`'s client of `of` the header update `update`.
    fn update_message(
        &self,
        host: &ChainId,
        of: &ChainId,
        update: causeway_light_client::HeaderUpdate,
    ) -> Message {
        if host == self.hub.id() {
            HubMsg::UpdateClient {
                chain: of.clone(),
                update,
            }
            .into_message()
        } else {
            EndpointMsg::UpdateHubClient { update }.into_message()
        }
    }

    /// The state key a job proves, on the chain it proves (none for a job without proof).
    fn proof_key(job: &Job) -> Option<(Namespace, Vec<u8>, Expect)> {
        let ns = namespace(NAMESPACE);
        let hub_ns = namespace(HUB_NAMESPACE);
        Some(match job {
            Job::HubRecv(p) => (ns, member_keys::commitment(p.sequence), Expect::Present),
            Job::HubAck(p, ..) => (ns, member_keys::receipt(&p.source, p.sequence), Expect::Present),
            Job::HubTimeout(p, _) => (ns, member_keys::receipt(&p.source, p.sequence), Expect::Absent),
            Job::ProvePrepare(s, i) => (ns, member_keys::prepared(&s.id(), *i), Expect::Present),
            Job::MemberRecv(p, to) => (
                hub_ns,
                hub_keys::forward(to, &p.source, p.sequence),
                Expect::Present,
            ),
            Job::Resolve(p, _) => (hub_ns, hub_keys::outcome(&p.source, p.sequence), Expect::Present),
            Job::ApplyDecision(s, _, _) => (hub_ns, hub_keys::decision(&s.id()), Expect::Present),
            Job::Verify(r, _) => (
                hub_ns,
                hub_keys::attestation(&r.chain, r.height, &r.namespace, r.key.as_bytes()),
                Expect::Present,
            ),
            Job::AbortExpired(_) | Job::Attest(_) => return None,
        })
    }

    /// The message carrying `job` with `proof` at `h`.
    fn message(job: &Job, h: u64, proof: Option<StateProof>) -> Option<Message> {
        Some(match (job, proof) {
            (Job::HubRecv(p), Some(proof)) => HubMsg::RecvPacket {
                packet: Packet::clone(p),
                proof_height: h,
                proof,
            }
            .into_message(),
            (Job::HubAck(p, ack, _), Some(proof)) => HubMsg::AcknowledgePacket {
                packet: Packet::clone(p),
                ack: ack.clone(),
                proof_height: h,
                proof,
            }
            .into_message(),
            (Job::HubTimeout(p, _), Some(proof)) => HubMsg::TimeoutPacket {
                packet: Packet::clone(p),
                proof_height: h,
                proof,
            }
            .into_message(),
            (Job::ProvePrepare(spec, index), Some(proof)) => HubMsg::ProvePrepare {
                spec: spec.clone(),
                index: *index,
                proof_height: h,
                proof,
            }
            .into_message(),
            (Job::AbortExpired(spec), None) => HubMsg::AbortExpired { spec: spec.clone() }.into_message(),
            (Job::MemberRecv(p, _), Some(proof)) => EndpointMsg::RecvPacket {
                packet: Packet::clone(p),
                proof_height: h,
                proof,
            }
            .into_message(),
            (Job::Resolve(p, outcome), Some(proof)) => EndpointMsg::ResolvePacket {
                packet: Packet::clone(p),
                outcome: outcome.clone(),
                proof_height: h,
                proof,
            }
            .into_message(),
            (Job::ApplyDecision(spec, index, decision), Some(proof)) => EndpointMsg::ApplyDecision {
                spec: spec.clone(),
                index: *index,
                decision: *decision,
                proof_height: h,
                proof,
            }
            .into_message(),
            (Job::Verify(r, value), Some(proof)) => EndpointMsg::VerifyRecord {
                chain: r.chain.clone(),
                height: r.height,
                namespace: r.namespace.clone(),
                key: r.key.clone(),
                value: value.clone(),
                proof_height: h,
                proof,
            }
            .into_message(),
            _ => return None,
        })
    }

    /// Batches for every target with room in its pipeline (attestations in batches of their own: they are proven at
    /// the height asked).
    async fn build_batches(&self, jobs: Vec<Job>) -> Vec<Batch> {
        let hub = self.hub.id().clone();
        let mut by_target: BTreeMap<ChainId, Vec<Job>> = BTreeMap::new();
        let mut attests = vec![];
        for j in jobs {
            match j {
                Job::Attest(r) => attests.push(r),
                j => by_target.entry(j.target(&hub).clone()).or_default().push(j),
            }
        }
        let depth = self.cfg.pipeline;
        let room = |t: &ChainId| self.lanes.get(t).map_or(depth.max(1), |l| l.room(depth));
        let mut out = vec![];
        let built = join_all(by_target.into_iter().filter_map(|(t, jobs)| {
            let n = room(&t);
            (n > 0).then(|| self.build_target(t, jobs, n))
        }))
        .await;
        for (b, target) in built {
            match b {
                Ok(b) => out.extend(b),
                Err(e) => tracing::warn!(target = %target, error = %e, "could not build a batch"),
            }
        }
        for r in attests {
            if room(&hub) == 0 {
                break;
            }
            match self.build_attestation(&r).await {
                Ok(b) => out.push(b),
                Err(e) => tracing::warn!(record = %r.key, error = %e, "could not build an attestation"),
            }
        }
        out
    }

    /// Up to `room` batches for `target`: per proven chain, one client update to that chain's learned tip (in each
    /// batch, so that each batch stands on its own) and the proofs at that tip, fetched in one request per
    /// [`crate::chain::PROOF_BATCH`] keys. With more due than `room` full batches hold, each proven chain gets its
    /// share; the rest waits for the next pass.
    async fn build_target(
        &self,
        target: ChainId,
        jobs: Vec<Job>,
        room: usize,
    ) -> (Result<Vec<Batch>, RelayError>, ChainId) {
        let start = Instant::now();
        let due = jobs.len();
        let r = self.build_target_inner(&target, jobs, room).await;
        if let Ok(b) = &r {
            tracing::debug!(
                target = %target,
                due,
                batches = b.len(),
                steps = b.iter().map(|b| b.jobs.len()).sum::<usize>(),
                ms = start.elapsed().as_millis() as u64,
                "built"
            );
        }
        (r, target)
    }

    async fn build_target_inner(
        &self,
        target: &ChainId,
        jobs: Vec<Job>,
        room: usize,
    ) -> Result<Vec<Batch>, RelayError> {
        let hub = self.hub.id().clone();
        let max = self.cfg.batch_max.max(1);
        let capacity = max.saturating_mul(room);
        let total = jobs.len();
        let mut by_proven: BTreeMap<Option<ChainId>, Vec<Job>> = BTreeMap::new();
        for j in jobs {
            by_proven
                .entry(j.proven_chain(&hub).cloned())
                .or_default()
                .push(j);
        }
        if total > capacity {
            // A fair share for each proven chain, so that no step kind starves another.
            for group in by_proven.values_mut() {
                let share = (group.len() * capacity).div_ceil(total).max(1);
                group.truncate(share);
            }
        }
        // Per proven chain: the height, the update to it (if the target's client needs one) and the proofs.
        let groups = join_all(
            by_proven
                .into_iter()
                .map(|(proven, jobs)| self.prepare_group(target, proven, jobs)),
        )
        .await;
        let mut batches: Vec<Batch> = vec![];
        let new_batch = || Batch {
            target: target.clone(),
            messages: vec![],
            jobs: vec![],
            updates: BTreeMap::new(),
            attested: None,
            evidence: None,
        };
        let mut batch = new_batch();
        let mut bytes = 0usize;
        for group in groups {
            let group = match group {
                Ok(Some(g)) => g,
                Ok(None) => continue,
                // The other proven chains' steps still go.
                Err(e) => {
                    tracing::warn!(target = %target, error = %e, "could not build a batch");
                    continue;
                }
            };
            // The update goes in the first batch that proves this chain; the later ones (higher nonces) execute
            // after it. Were it to fail, they fail too and their steps are planned again.
            let mut update = group.update.zip(group.of);
            for (job, msg) in group.messages {
                if batches.len() >= room {
                    break;
                }
                let len = encoded_len(&msg);
                let extra = update.as_ref().map_or(0, |((m, _), _)| encoded_len(m));
                let full = batch.jobs.len() >= max || bytes + len + extra > self.cfg.batch_bytes;
                if full && !batch.jobs.is_empty() {
                    batches.push(std::mem::replace(&mut batch, new_batch()));
                    bytes = 0;
                    if batches.len() >= room {
                        break;
                    }
                }
                if let Some(((m, u), of)) = update.take() {
                    bytes += encoded_len(&m);
                    batch.messages.push(m);
                    batch.updates.insert(of, u);
                }
                bytes += len;
                batch.messages.push(msg);
                batch.jobs.push((job, group.height));
            }
        }
        if !batch.jobs.is_empty() && batches.len() < room {
            batches.push(batch);
        }
        Ok(batches)
    }

    /// The messages of `jobs`, all proving `proven`'s state at its learned tip, with the update that the target's
    /// client of `proven` needs to trust that height; `None` when the chain has no height yet. A job whose proof no
    /// longer shows what it expects is skipped (stale knowledge: another relayer was faster, or state moved).
    async fn prepare_group(
        &self,
        target: &ChainId,
        proven: Option<ChainId>,
        jobs: Vec<Job>,
    ) -> Result<Option<Group>, RelayError> {
        let hub = self.hub.id();
        let h = match &proven {
            Some(c) => self.tips.get(c).map(|t| t.height).unwrap_or(0),
            None => self.tips.get(hub).map(|t| t.height).unwrap_or(0),
        };
        let mut group = Group {
            of: proven.clone(),
            height: h,
            update: None,
            messages: Vec::with_capacity(jobs.len()),
        };
        let Some(of) = &proven else {
            group.messages = jobs
                .into_iter()
                .filter_map(|j| Self::message(&j, h, None).map(|m| (j, m)))
                .collect();
            return Ok(Some(group));
        };
        if h == 0 {
            return Ok(None);
        }
        let source = self.chain(of)?;
        let mut keys = Vec::with_capacity(jobs.len());
        let mut expects = Vec::with_capacity(jobs.len());
        for j in &jobs {
            let (ns, key, expect) = Self::proof_key(j).ok_or_else(|| RelayError::Inconsistent {
                chain: of.clone(),
                reason: format!("{} needs no proof but names a proven chain", j.describe()),
            })?;
            keys.push((ns, key));
            expects.push(expect);
        }
        let (update, proofs) = tokio::try_join!(self.update_to(target, of, h), source.prove_many(h, &keys))?;
        group.update = update;
        for ((j, (value, proof)), expect) in jobs.into_iter().zip(proofs).zip(expects) {
            if !expect.holds(value.is_some()) {
                tracing::debug!(step = %j.describe(), "not due at the proof height; skipped");
                continue;
            }
            if let Some(m) = Self::message(&j, h, Some(proof)) {
                group.messages.push((j, m));
            }
        }
        Ok(Some(group))
    }

    async fn build_attestation(&self, r: &RecordRequest) -> Result<Batch, RelayError> {
        let hub = self.hub.id().clone();
        let mut batch = Batch {
            target: hub.clone(),
            messages: vec![],
            jobs: vec![],
            updates: BTreeMap::new(),
            attested: None,
            evidence: None,
        };
        if let Some((msg, u)) = self.update_to(&hub, &r.chain, r.height).await? {
            batch.messages.push(msg);
            batch.updates.insert(r.chain.clone(), u);
        }
        let (value, proof) = self
            .chain(&r.chain)?
            .prove(r.height, &r.namespace, r.key.as_bytes())
            .await?;
        let value = Bytes(value.ok_or_else(|| RelayError::Inconsistent {
            chain: r.chain.clone(),
            reason: format!("no record {}/{} at height {}", r.namespace, r.key, r.height),
        })?);
        batch.messages.push(
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
        batch.jobs.push((Job::Attest(r.clone()), r.height));
        batch.attested = Some((r.clone(), value));
        Ok(batch)
    }

    /// Updates for clients that no step moved and whose latest trusted header is older than the refresh fraction
    /// of their trusting period (checked every `refresh_check`).
    async fn refresh_idle_clients(&mut self) -> Vec<Batch> {
        let due = self
            .last_refresh_check
            .is_none_or(|t| t.elapsed() >= self.cfg.refresh_check);
        if !due {
            return vec![];
        }
        self.last_refresh_check = Some(Instant::now());
        let hub = self.hub.id().clone();
        let pairs: Vec<(ChainId, ChainId)> = self
            .members
            .keys()
            .flat_map(|m| [(hub.clone(), m.clone()), (m.clone(), hub.clone())])
            .collect();
        let mut out = vec![];
        for (host, of) in pairs {
            match self.refresh(&host, &of).await {
                Ok(Some(b)) => out.push(b),
                Ok(None) => {}
                Err(e) => tracing::warn!(host = %host, of = %of, error = %e, "client age check failed"),
            }
        }
        out
    }

    async fn refresh(&self, host: &ChainId, of: &ChainId) -> Result<Option<Batch>, RelayError> {
        let client = self.client_on(host, of).await?;
        let trusted_time = self
            .trusted_on(host, of, client.state.latest_height)
            .await?
            .map(|t| t.consensus_state.time)
            .unwrap_or_default();
        let host_time = self.tips.get(host).map(|t| t.time).unwrap_or_default();
        // Times are nanoseconds since the epoch.
        let age_ns = host_time.0.saturating_sub(trusted_time.0);
        self.metrics
            .client_age
            .get_or_create(&ClientLabel {
                host: host.to_string(),
                client_of: of.to_string(),
            })
            .set((age_ns / 1_000_000_000) as i64);
        let period_ns = client
            .state
            .options
            .trusting_period_secs
            .saturating_mul(1_000_000_000);
        let (num, den) = self.cfg.refresh_fraction;
        if age_ns.saturating_mul(den.max(1)) < period_ns.saturating_mul(num) {
            return Ok(None);
        }
        let h = self.tips.get(of).map(|t| t.height).unwrap_or(0);
        let Some((msg, u)) = self.update_to(host, of, h).await? else {
            return Ok(None);
        };
        Ok(Some(Batch {
            target: host.clone(),
            messages: vec![msg],
            jobs: vec![],
            updates: [(of.clone(), u)].into_iter().collect(),
            attested: None,
            evidence: None,
        }))
    }

    /// Misbehaviour watch (every `watch_every`): for each client between the hub and a member, compare the
    /// headers it trusts, from the last height compared on, with the headers the followed chain's gateway shows at
    /// those heights (headers this relayer submitted itself came from that gateway and are skipped). At a
    /// conflict, the gateway's header at that height, proven from the last trusted height that matched, goes to
    /// the host as a client update: the host's client verifies it, sees two certified headers at one height, and
    /// freezes (the hub's `UpdateClient` and the member's `UpdateHubClient` freeze on a conflicting header, as
    /// `SubmitMisbehaviour` does).
    async fn watch_misbehaviour(&mut self) -> Vec<Batch> {
        if self
            .last_watch
            .is_some_and(|t| t.elapsed() < self.cfg.watch_every)
        {
            return vec![];
        }
        self.last_watch = Some(Instant::now());
        let hub = self.hub.id().clone();
        let pairs: Vec<(ChainId, ChainId)> = self
            .members
            .keys()
            .flat_map(|m| [(hub.clone(), m.clone()), (m.clone(), hub.clone())])
            .filter(|(host, of)| !self.down.contains(host) && !self.down.contains(of))
            .collect();
        let checks = join_all(pairs.iter().map(|(host, of)| self.watch_pair(host, of))).await;
        let mut out = vec![];
        for ((host, of), check) in pairs.into_iter().zip(checks) {
            match check {
                Ok(Watch::Clean(checked)) => {
                    let w = self.watched.entry((host, of)).or_default();
                    w.checked = w.checked.max(checked);
                    w.own = w.own.split_off(&(w.checked + 1));
                }
                Ok(Watch::Frozen) => {}
                Ok(Watch::Conflict { height, base: None }) => tracing::error!(
                    host = %host, of = %of, height,
                    "misbehaviour: the client trusts a header the chain does not show, and no earlier trusted \
                     header matches to prove the chain's one from"
                ),
                Ok(Watch::Conflict {
                    height,
                    base: Some(base),
                }) => {
                    tracing::error!(host = %host, of = %of, height, "misbehaviour: two headers at one height");
                    match self.evidence(&host, &of, base, height).await {
                        Ok(b) => {
                            self.metrics.evidence_submitted.inc();
                            out.push(b);
                        }
                        Err(e) => {
                            tracing::warn!(host = %host, of = %of, error = %e, "could not build the evidence")
                        }
                    }
                }
                Err(e) => tracing::debug!(host = %host, of = %of, error = %e, "misbehaviour check failed"),
            }
        }
        out
    }

    async fn watch_pair(&self, host: &ChainId, of: &ChainId) -> Result<Watch, RelayError> {
        let client = self.client_on(host, of).await?;
        if client.state.frozen_height.is_some() {
            return Ok(Watch::Frozen);
        }
        let empty = Watched::default();
        let w = self.watched.get(&(host.clone(), of.clone())).unwrap_or(&empty);
        let tip = self.tips.get(of).map(|t| t.height).unwrap_or(0);
        let chain = self.chain(of)?;
        let mut checked = w.checked;
        let mut base = None;
        let mut fetched = 0;
        for &height in &client.kept {
            if height <= w.checked || w.own.contains(&height) {
                checked = checked.max(height);
                base = Some(height);
                continue;
            }
            if height > tip || fetched == WATCH_HEADERS {
                // The chain has not shown this height yet (to this relayer), or enough for one check: later.
                break;
            }
            fetched += 1;
            let Some(t) = self.trusted_on(host, of, height).await? else {
                // Pruned since the heights were read: nothing to compare.
                continue;
            };
            let shown = chain.header_hash(height).await?;
            if shown != t.header_hash {
                return Ok(Watch::Conflict { height, base });
            }
            checked = height;
            base = Some(height);
        }
        Ok(Watch::Clean(checked))
    }

    /// The batch carrying `of`'s header at `height`, proven from `base`, to `host`.
    async fn evidence(
        &self,
        host: &ChainId,
        of: &ChainId,
        base: u64,
        height: u64,
    ) -> Result<Batch, RelayError> {
        let update = self.chain(of)?.header_update(base, height).await?;
        let msg = self.update_message(host, of, update);
        Ok(Batch {
            target: host.clone(),
            messages: vec![msg],
            jobs: vec![],
            updates: [(of.clone(), (base, height))].into_iter().collect(),
            attested: None,
            evidence: Some(height),
        })
    }

    /// Submit `batch` with the target's next nonce; it lands on the engine's channel (see [`Engine::land`]).
    async fn launch(&mut self, mut batch: Batch) -> Result<(), RelayError> {
        let target = batch.target.clone();
        let chain = self.chain(&target)?.clone();
        let key = self.key_for(&target).clone();
        let lane = self.lanes.entry(target.clone()).or_default();
        if lane.next.is_none() {
            if lane.flying > 0 {
                return Ok(());
            }
            lane.next = Some(chain.nonce(&key.public_key().address()).await?);
        }
        let lane = self.lanes.entry(target.clone()).or_default();
        let Some(nonce) = lane.take() else { return Ok(()) };
        lane.flying += 1;
        for (of, (_, to)) in &batch.updates {
            let u = self.updating.entry((target.clone(), of.clone())).or_insert(*to);
            *u = (*u).max(*to);
        }
        for (j, _) in &batch.jobs {
            self.in_flight.insert(
                j.key(),
                InFlight {
                    target: target.clone(),
                    until: None,
                },
            );
        }
        let messages = std::mem::take(&mut batch.messages);
        let timeout = self.cfg.commit_timeout;
        let landed = self.landed_tx.clone();
        tokio::spawn(async move {
            let start = Instant::now();
            let landing = chain.submit_at(&key, nonce, messages, timeout).await;
            let _ = landed.send(Landed {
                nonce,
                batch,
                landing,
                took: start.elapsed(),
            });
        });
        Ok(())
    }

    /// Take in a landed transaction: the lane's nonces, the steps in flight, metrics; each step reported.
    fn land(&mut self, l: Landed) -> Vec<Relayed> {
        let Landed {
            nonce,
            batch,
            landing,
            took,
        } = l;
        let label = batch.target.to_string();
        for (of, (_, to)) in &batch.updates {
            let pair = (batch.target.clone(), of.clone());
            if self.updating.get(&pair) == Some(to) {
                self.updating.remove(&pair);
            }
        }
        let lane = self.lanes.entry(batch.target.clone()).or_default();
        lane.flying = lane.flying.saturating_sub(1);
        tracing::debug!(
            target = %batch.target,
            nonce,
            steps = batch.jobs.len(),
            ms = took.as_millis() as u64,
            committed = matches!(landing, Landing::Committed(_)),
            "landed"
        );
        let (height, failure) = match landing {
            Landing::Committed(c) => (c.height, c.result.failure.as_ref().map(|f| f.to_string())),
            Landing::Refused(e) => {
                // The nonce was not taken: the next transaction takes it.
                lane.holes.insert(nonce);
                (0, Some(e.to_string()))
            }
            Landing::NonceUsed { too_low, error } => {
                if too_low {
                    lane.resync();
                }
                (0, Some(error.to_string()))
            }
            Landing::Unknown(e) => {
                lane.resync();
                (0, Some(e.to_string()))
            }
        };
        for (j, _) in &batch.jobs {
            let k = j.key();
            match (&failure, self.in_flight.get_mut(&k)) {
                (None, Some(f)) => f.until = Some(height),
                _ => {
                    self.in_flight.remove(&k);
                }
            }
        }
        if failure.is_none() {
            for (of, (_, to)) in &batch.updates {
                let t = self
                    .trusted
                    .entry((batch.target.clone(), of.clone()))
                    .or_insert(*to);
                *t = (*t).max(*to);
                // A header this relayer read from `of`'s gateway: nothing for the watch to compare.
                self.watched
                    .entry((batch.target.clone(), of.clone()))
                    .or_default()
                    .own
                    .insert(*to);
            }
        } else {
            // Whatever failed, read the target's clients again before building on them.
            self.trusted.retain(|(host, _), _| *host != batch.target);
        }
        if failure.is_none() {
            RelayerMetrics::of(&self.metrics.submitted, &label).inc();
            // One message per step, one per client update.
            RelayerMetrics::of(&self.metrics.messages, &label)
                .inc_by((batch.jobs.len() + batch.updates.len()) as u64);
            for (j, _) in &batch.jobs {
                if let Some(t0) = self.first_due.get(&j.key()) {
                    self.metrics.relay_latency.observe(t0.elapsed().as_secs_f64());
                }
            }
            if let Some((r, v)) = &batch.attested {
                self.knowledge.record_attested(r, v.clone());
            }
            for (j, _) in &batch.jobs {
                if let Job::Verify(r, _) = j {
                    self.knowledge.record_verified(r);
                }
            }
        } else {
            RelayerMetrics::of(&self.metrics.failed, &label).inc();
        }
        let update_of = |h: u64| batch.updates.values().find(|(_, to)| *to == h).copied();
        if batch.jobs.is_empty() {
            let evidence = batch.evidence;
            return batch
                .updates
                .iter()
                .map(|(of, (from, to))| Relayed {
                    what: match evidence {
                        Some(h) => format!(
                            "misbehaviour of {of}: its header at {h} (proven from {from}) submitted against the \
                             conflicting one its client on {} holds",
                            batch.target
                        ),
                        None => format!("client of {of} refreshed {from} → {to}"),
                    },
                    target: batch.target.clone(),
                    height,
                    update: Some((*from, *to)),
                    proof_height: *to,
                    failure: failure.clone(),
                    took,
                })
                .collect();
        }
        batch
            .jobs
            .iter()
            .map(|(j, h)| Relayed {
                what: j.describe(),
                target: batch.target.clone(),
                height,
                update: update_of(*h),
                proof_height: *h,
                failure: failure.clone(),
                took,
            })
            .collect()
    }
}

/// Headers the misbehaviour watch fetches per client and check, at most (the rest waits for the next check).
const WATCH_HEADERS: usize = 64;

/// A chain's light client of another, as the relayer reads it: the client state and the kept heights.
struct RemoteClient {
    state: ClientState,
    kept: Vec<u64>,
}

impl RemoteClient {
    fn trusts(&self, height: u64) -> bool {
        self.kept.binary_search(&height).is_ok()
    }
}

/// What the misbehaviour watch knows of one client.
#[derive(Debug, Default)]
struct Watched {
    /// Trusted heights up to here were compared (or came from this relayer).
    checked: u64,
    /// Heights above `checked` whose header this relayer submitted itself.
    own: BTreeSet<u64>,
}

/// What one misbehaviour check found.
enum Watch {
    /// Every trusted header up to this height matches the chain's.
    Clean(u64),
    /// The client is frozen already.
    Frozen,
    /// The client trusts at `height` a header the chain does not show; `base` is the last trusted height below it
    /// whose header matched.
    Conflict { height: u64, base: Option<u64> },
}

/// One proven chain's part of a target's batches.
struct Group {
    /// The proven chain (none for steps without proof).
    of: Option<ChainId>,
    /// The height proven at.
    height: u64,
    /// The update of the target's client of `of` to `height`, when it does not trust it yet.
    update: Option<(Message, (u64, u64))>,
    /// The messages, with their jobs.
    messages: Vec<(Job, Message)>,
}

/// Bytes of a message in a transaction.
fn encoded_len(m: &Message) -> usize {
    borsh::to_vec(m).map(|v| v.len()).unwrap_or(usize::MAX / 4)
}

/// What a job's proof must show.
#[derive(Clone, Copy, Debug)]
enum Expect {
    Present,
    Absent,
}

impl Expect {
    fn holds(self, present: bool) -> bool {
        matches!((self, present), (Expect::Present, true) | (Expect::Absent, false))
    }
}

/// Wake the engine on every block `chain` commits (through the gateway's WebSocket); reconnect after errors.
async fn watch_blocks(chain: ChainHandle, wake: mpsc::Sender<()>) {
    loop {
        match chain.client().subscribe(&["blocks"], &[]).await {
            Ok(mut sub) => {
                while let Some(frame) = sub.next().await {
                    if frame.is_err() {
                        break;
                    }
                    let _ = wake.try_send(());
                }
            }
            Err(e) => tracing::debug!(chain = %chain.id(), error = %e, "block subscription failed"),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::Lane;

    #[test]
    fn a_lane_hands_out_consecutive_nonces_reuses_refused_ones_and_resyncs_only_when_drained() {
        let mut lane = Lane::default();
        // Nonce unknown: one transaction's room (the first submission reads it), nothing to take yet.
        assert_eq!(lane.room(4), 4);
        assert_eq!(lane.take(), None);
        lane.next = Some(7);
        let taken: Vec<u64> = (0..3).filter_map(|_| lane.take()).collect();
        assert_eq!(taken, vec![7, 8, 9]);
        lane.flying = 3;
        assert_eq!(lane.room(4), 1);
        // The chain refused 8 before taking it: 8 goes out again before 10.
        lane.flying = 2;
        lane.holes.insert(8);
        assert_eq!((lane.take(), lane.take()), (Some(8), Some(10)));
        lane.flying = 4;
        assert_eq!(lane.room(4), 0);
        // A nonce error: nothing more goes out until what is in flight has landed, then the chain is asked again.
        lane.holes.insert(3);
        lane.resync();
        assert!(lane.holes.is_empty());
        lane.flying = 1;
        assert_eq!(lane.room(4), 0);
        lane.flying = 0;
        assert_eq!(lane.room(4), 4);
        assert_eq!(lane.take(), None, "the nonce must be read from the chain first");
        // A depth of 0 still lets one transaction through.
        assert_eq!(Lane::default().room(0), 1);
    }
}
