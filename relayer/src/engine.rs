//! The relaying loop: learn from every chain's committed events, find what is due ([`crate::plan`]), build each
//! target chain's batch (one client update, then many proven messages at the height it reaches) and submit it.
//!
//! **Owns**: batching, the proof height of each batch, client updates (also ahead of the trusting period when no
//! traffic moves a client), reports of what was relayed. **Must never**: put anything in a message that it did not
//! read from a committed header, certificate, validator set or checked store proof; report a step done before the
//! receiving chain committed it successfully; or keep state of its own that a restart would lose — everything
//! comes back from the chains' events.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use causeway_chain::message::{Bytes, Message};
use causeway_chain::xchain::types::{hub_keys, member_keys, namespace, HUB_NAMESPACE, NAMESPACE};
use causeway_chain::xchain::EndpointMsg;
use causeway_hub::HubMsg;
use causeway_light_client::{Canonical, ChainId, LightClient, NativeClient, SecretKey, StateProof};
use futures::future::join_all;
use tokio::sync::{mpsc, watch};

use crate::chain::ChainHandle;
use crate::metrics::{ClientLabel, RelayerMetrics};
use crate::plan::{Job, Knowledge, RecordRequest, Tip};
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
    /// Proofs fetched at once from one gateway.
    pub fetch_concurrency: usize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            batch_max: 256,
            batch_bytes: 768 * 1024,
            commit_timeout: Duration::from_secs(30),
            refresh_fraction: (1, 3),
            refresh_check: Duration::from_secs(10),
            fetch_concurrency: 16,
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

/// A relayer over one hub and its members.
pub struct Engine {
    hub: ChainHandle,
    members: BTreeMap<ChainId, ChainHandle>,
    key: SecretKey,
    chain_keys: BTreeMap<ChainId, SecretKey>,
    cfg: EngineConfig,
    knowledge: Knowledge,
    tips: BTreeMap<ChainId, Tip>,
    first_due: HashMap<String, Instant>,
    last_refresh_check: Option<Instant>,
    metrics: Arc<RelayerMetrics>,
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
        self.members.get(id).ok_or_else(|| RelayError::UnknownChain(id.clone()))
    }

    fn served(&self) -> BTreeSet<ChainId> {
        std::iter::once(self.hub.id().clone())
            .chain(self.members.keys().cloned())
            .collect()
    }

    /// Read every chain's events committed since the last look (from height 1 on the first look: clearing on
    /// start). The hub is read last, so that what members committed is known before what the hub made of it.
    pub async fn learn(&mut self) -> Result<(), RelayError> {
        let chains: Vec<ChainHandle> = self
            .members
            .values()
            .cloned()
            .chain(std::iter::once(self.hub.clone()))
            .collect();
        let statuses = join_all(chains.iter().map(|c| c.status())).await;
        for (c, status) in chains.iter().zip(statuses) {
            let status = status?;
            let from = self.tips.get(c.id()).map(|t| t.height).unwrap_or(0) + 1;
            if status.height >= from {
                let events = c.events(from, status.height).await?;
                let before = self.knowledge.resolved();
                self.knowledge.observe(c.id(), &events).map_err(|e| RelayError::Event {
                    chain: c.id().clone(),
                    source: e,
                })?;
                self.metrics.packets_resolved.inc_by(self.knowledge.resolved() - before);
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
        }
        self.metrics.packets_in_flight.set(self.knowledge.packets_in_flight() as i64);
        Ok(())
    }

    /// The steps due now.
    pub fn due(&mut self) -> Vec<Job> {
        let served = self.served();
        let jobs = self.knowledge.due(&self.tips, &served);
        let now = Instant::now();
        let keys: BTreeSet<String> = jobs.iter().map(|j| format!("{j:?}")).collect();
        self.first_due.retain(|k, _| keys.contains(k));
        for k in keys {
            self.first_due.entry(k).or_insert(now);
        }
        self.metrics.backlog.set(jobs.len() as i64);
        jobs
    }

    /// One pass: learn, then relay everything due (one batch per target chain, all targets at once).
    pub async fn cycle(&mut self) -> Result<CycleReport, RelayError> {
        self.learn().await?;
        let jobs = self.due();
        let mut report = CycleReport {
            due: jobs.len(),
            ..CycleReport::default()
        };
        let mut batches = self.build_batches(jobs).await;
        batches.extend(self.refresh_idle_clients(&report).await);
        // One transaction per target chain at a time: two would race for the signer's nonce.
        let this = &*self;
        let results: Vec<_> = join_all(Self::by_target(batches).into_iter().map(|per_target| async move {
            let mut out = vec![];
            for b in per_target {
                out.push(this.submit(b).await);
            }
            out
        }))
        .await
        .into_iter()
        .flatten()
        .collect();
        for (steps, settled) in results {
            if let Some((r, v)) = settled.attested {
                self.knowledge.record_attested(&r, v);
            }
            for r in &settled.verified {
                self.knowledge.record_verified(r);
            }
            for s in steps {
                if s.failure.is_none() {
                    report.relayed += 1;
                } else {
                    report.failed += 1;
                }
                report.steps.push(s);
            }
        }
        Ok(report)
    }

    /// Run until `stop` turns true: a pass on every new block of any chain (gateway subscriptions), and at least
    /// every `poll` without one; record requests arrive on `requests`, every step is reported on `report`.
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
        loop {
            if *stop.borrow() {
                break;
            }
            while let Ok(r) = requests.try_recv() {
                self.knowledge.request_record(r);
            }
            match self.cycle().await {
                Ok(r) => {
                    if let Some(h) = &health {
                        h.cycle_ok(&r, self.knowledge.packets_in_flight());
                    }
                    let busy = r.relayed + r.failed > 0;
                    for s in r.steps {
                        if let Some(f) = &s.failure {
                            tracing::warn!(step = %s.what, target = %s.target, failure = %f, "step failed");
                        } else {
                            tracing::info!(step = %s.what, target = %s.target, height = s.height, "relayed");
                        }
                        let _ = report.send(s);
                    }
                    if busy {
                        // More may be due already (a batch limit, a next step): go again at once.
                        continue;
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "relaying pass failed");
                    if let Some(h) = &health {
                        h.cycle_failed(&e);
                    }
                }
            }
            tokio::select! {
                _ = wake.recv() => {}
                _ = stop.changed() => {}
                _ = tokio::time::sleep(poll) => {}
            }
        }
        for w in watchers {
            w.abort();
        }
    }

    /// Batches grouped by target chain, in order.
    fn by_target(batches: Vec<Batch>) -> Vec<Vec<Batch>> {
        let mut groups: BTreeMap<ChainId, Vec<Batch>> = BTreeMap::new();
        for b in batches {
            groups.entry(b.target.clone()).or_default().push(b);
        }
        groups.into_values().collect()
    }

    /// The hub's client of `member`, or `member`'s client of the hub.
    async fn client_on(&self, host: &ChainId, of: &ChainId) -> Result<NativeClient, RelayError> {
        let (handle, ns, key) = if host == self.hub.id() {
            (&self.hub, namespace(HUB_NAMESPACE), hub_keys::client(of))
        } else {
            (self.chain(host)?, namespace(NAMESPACE), member_keys::CLIENT.to_vec())
        };
        let raw = handle.value(&ns, &key).await?.ok_or_else(|| RelayError::NoClient {
            host: host.clone(),
            of: of.clone(),
        })?;
        NativeClient::decode(&raw).map_err(|e| RelayError::Inconsistent {
            chain: host.clone(),
            reason: format!("its client of {of} does not decode: {e}"),
        })
    }

    /// The update message moving `host`'s client of `of` to `height`, unless it already trusts that height.
    async fn update_to(
        &self,
        host: &ChainId,
        of: &ChainId,
        height: u64,
    ) -> Result<Option<(Message, (u64, u64))>, RelayError> {
        let client = self.client_on(host, of).await?;
        if client.consensus_state(height).is_some() {
            return Ok(None);
        }
        let trusted = client.latest_height();
        if trusted >= height {
            return Err(RelayError::Inconsistent {
                chain: host.clone(),
                reason: format!("its client of {of} is past height {height} without trusting it"),
            });
        }
        let update = self.chain(of)?.header_update(trusted, height).await?;
        let msg = if host == self.hub.id() {
            HubMsg::UpdateClient {
                chain: of.clone(),
                update,
            }
            .into_message()
        } else {
            EndpointMsg::UpdateHubClient { update }.into_message()
        };
        Ok(Some((msg, (trusted, height))))
    }

    /// The state key a job proves, on the chain it proves (none for a job without proof).
    fn proof_key(job: &Job) -> Option<(causeway_light_client::Namespace, Vec<u8>, Expect)> {
        let ns = namespace(NAMESPACE);
        let hub_ns = namespace(HUB_NAMESPACE);
        Some(match job {
            Job::HubRecv(p) => (ns, member_keys::commitment(p.sequence), Expect::Present),
            Job::HubAck(p, _) => (ns, member_keys::receipt(&p.source, p.sequence), Expect::Present),
            Job::HubTimeout(p) => (ns, member_keys::receipt(&p.source, p.sequence), Expect::Absent),
            Job::ProvePrepare(s, i) => (ns, member_keys::prepared(&s.id(), *i), Expect::Present),
            Job::MemberRecv(p) => (
                hub_ns,
                hub_keys::forward(&p.destination, &p.source, p.sequence),
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
                packet: p.clone(),
                proof_height: h,
                proof,
            }
            .into_message(),
            (Job::HubAck(p, ack), Some(proof)) => HubMsg::AcknowledgePacket {
                packet: p.clone(),
                ack: ack.clone(),
                proof_height: h,
                proof,
            }
            .into_message(),
            (Job::HubTimeout(p), Some(proof)) => HubMsg::TimeoutPacket {
                packet: p.clone(),
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
            (Job::MemberRecv(p), Some(proof)) => EndpointMsg::RecvPacket {
                packet: p.clone(),
                proof_height: h,
                proof,
            }
            .into_message(),
            (Job::Resolve(p, outcome), Some(proof)) => EndpointMsg::ResolvePacket {
                packet: p.clone(),
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

    /// One batch per target chain (attestations in batches of their own: they are proven at the height asked).
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
        let mut out = vec![];
        let built = join_all(by_target.into_iter().map(|(t, jobs)| self.build_batch(t, jobs))).await;
        for (b, target) in built {
            match b {
                Ok(Some(b)) => out.push(b),
                Ok(None) => {}
                Err(e) => tracing::warn!(target = %target, error = %e, "could not build a batch"),
            }
        }
        for r in attests {
            match self.build_attestation(&r).await {
                Ok(b) => out.push(b),
                Err(e) => tracing::warn!(record = %r.key, error = %e, "could not build an attestation"),
            }
        }
        out
    }

    /// The batch for `target`: per proven chain, one client update to that chain's learned tip and the proofs at
    /// that tip; stops at the batch limits (the rest waits for the next pass).
    async fn build_batch(&self, target: ChainId, jobs: Vec<Job>) -> (Result<Option<Batch>, RelayError>, ChainId) {
        let r = self.build_batch_inner(&target, jobs).await;
        (r, target)
    }

    async fn build_batch_inner(&self, target: &ChainId, jobs: Vec<Job>) -> Result<Option<Batch>, RelayError> {
        let hub = self.hub.id().clone();
        let mut by_proven: BTreeMap<Option<ChainId>, Vec<Job>> = BTreeMap::new();
        for j in jobs.into_iter().take(self.cfg.batch_max) {
            by_proven.entry(j.proven_chain(&hub).cloned()).or_default().push(j);
        }
        let mut batch = Batch {
            target: target.clone(),
            messages: vec![],
            jobs: vec![],
            updates: BTreeMap::new(),
            attested: None,
        };
        let mut bytes = 0usize;
        for (proven, jobs) in by_proven {
            let h = match &proven {
                Some(c) => self.tips.get(c).map(|t| t.height).unwrap_or(0),
                None => self.tips.get(&hub).map(|t| t.height).unwrap_or(0),
            };
            if let Some(of) = &proven {
                if h == 0 {
                    continue;
                }
                if let Some((msg, u)) = self.update_to(target, of, h).await? {
                    bytes += encoded_len(&msg);
                    batch.messages.push(msg);
                    batch.updates.insert(of.clone(), u);
                }
            }
            let source = proven.as_ref().map(|c| self.chain(c)).transpose()?;
            let mut proofs: Vec<Result<Option<StateProof>, RelayError>> = Vec::with_capacity(jobs.len());
            for chunk in jobs.chunks(self.cfg.fetch_concurrency.max(1)) {
                proofs.extend(join_all(chunk.iter().map(|j| fetch_proof(j, h, source))).await);
            }
            for (j, proof) in jobs.iter().zip(proofs) {
                let proof = match proof {
                    Ok(p) => p,
                    Err(RelayError::Stale(what)) => {
                        tracing::debug!(step = %what, "not due at the proof height; skipped");
                        continue;
                    }
                    Err(e) => return Err(e),
                };
                let Some(msg) = Self::message(j, h, proof) else { continue };
                let len = encoded_len(&msg);
                if bytes + len > self.cfg.batch_bytes && !batch.jobs.is_empty() {
                    break;
                }
                bytes += len;
                batch.messages.push(msg);
                batch.jobs.push((j.clone(), h));
            }
        }
        Ok((!batch.jobs.is_empty()).then_some(batch))
    }

    async fn build_attestation(&self, r: &RecordRequest) -> Result<Batch, RelayError> {
        let hub = self.hub.id().clone();
        let mut batch = Batch {
            target: hub.clone(),
            messages: vec![],
            jobs: vec![],
            updates: BTreeMap::new(),
            attested: None,
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
    async fn refresh_idle_clients(&mut self, report: &CycleReport) -> Vec<Batch> {
        let due = self
            .last_refresh_check
            .is_none_or(|t| t.elapsed() >= self.cfg.refresh_check);
        if !due || report.due > 0 {
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
        let trusted_time = client
            .consensus_state(client.latest_height())
            .map(|c| c.time)
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
        let period_ns = client.options().trusting_period_secs.saturating_mul(1_000_000_000);
        let (num, den) = self.cfg.refresh_fraction;
        if age_ns.saturating_mul(den.max(1)) < period_ns.saturating_mul(num) {
            return Ok(None);
        }
        let h = self.tips.get(of).map(|t| t.height).unwrap_or(0);
        let Some((msg, u)) = self.update_to(host, of, h).await? else { return Ok(None) };
        Ok(Some(Batch {
            target: host.clone(),
            messages: vec![msg],
            jobs: vec![],
            updates: [(of.clone(), u)].into_iter().collect(),
            attested: None,
        }))
    }

    /// Submit one batch and report each of its steps.
    async fn submit(&self, batch: Batch) -> (Vec<Relayed>, Settled) {
        let describe = |b: &Batch| -> Vec<(String, u64)> {
            if b.jobs.is_empty() {
                b.updates
                    .iter()
                    .map(|(of, (from, to))| (format!("client of {of} refreshed {from} → {to}"), *to))
                    .collect()
            } else {
                b.jobs.iter().map(|(j, h)| (j.describe(), *h)).collect()
            }
        };
        let steps = describe(&batch);
        let update_of = |h: u64| batch.updates.values().find(|(_, to)| *to == h).copied();
        let start = Instant::now();
        let label = batch.target.to_string();
        let outcome = async {
            let chain = self.chain(&batch.target)?;
            let key = self.key_for(&batch.target);
            let nonce = chain.nonce(&key.public_key().address()).await?;
            chain
                .submit_and_wait(key, nonce, batch.messages.clone(), self.cfg.commit_timeout)
                .await
        }
        .await;
        let took = start.elapsed();
        let (height, failure) = match outcome {
            Ok(c) => (c.height, c.result.failure.as_ref().map(|f| f.to_string())),
            Err(e) => (0, Some(e.to_string())),
        };
        if failure.is_none() {
            RelayerMetrics::of(&self.metrics.submitted, &label).inc();
            RelayerMetrics::of(&self.metrics.messages, &label).inc_by(batch.messages.len() as u64);
            for (j, _) in &batch.jobs {
                if let Some(t0) = self.first_due.get(&format!("{j:?}")) {
                    self.metrics.relay_latency.observe(t0.elapsed().as_secs_f64());
                }
            }
        } else {
            RelayerMetrics::of(&self.metrics.failed, &label).inc();
        }
        let mut settled = Settled::default();
        if failure.is_none() {
            settled.attested = batch.attested.clone();
            settled.verified = batch
                .jobs
                .iter()
                .filter_map(|(j, _)| match j {
                    Job::Verify(r, _) => Some(r.clone()),
                    _ => None,
                })
                .collect();
        }
        let steps = steps
            .into_iter()
            .map(|(what, proof_height)| Relayed {
                what,
                target: batch.target.clone(),
                height,
                update: update_of(proof_height),
                proof_height,
                failure: failure.clone(),
                took,
            })
            .collect();
        (steps, settled)
    }
}

/// The proof `job` needs from `source` at height `h` (none for a job without proof), checked to show what the
/// job expects; [`RelayError::Stale`] when it does not.
async fn fetch_proof(job: &Job, h: u64, source: Option<&ChainHandle>) -> Result<Option<StateProof>, RelayError> {
    match (Engine::proof_key(job), source) {
        (Some((ns, key, expect)), Some(chain)) => {
            let (value, proof) = chain.prove(h, &ns, &key).await?;
            if expect.holds(value.is_some()) {
                Ok(Some(proof))
            } else {
                // Stale knowledge (another relayer was faster, or state moved): skip.
                Err(RelayError::Stale(job.describe()))
            }
        }
        _ => Ok(None),
    }
}

/// Bytes of a message in a transaction.
fn encoded_len(m: &Message) -> usize {
    borsh::to_vec(m).map(|v| v.len()).unwrap_or(usize::MAX / 4)
}

/// What a committed batch settled for the requests only the engine tracks.
#[derive(Default)]
struct Settled {
    attested: Option<(RecordRequest, Bytes)>,
    verified: Vec<RecordRequest>,
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
