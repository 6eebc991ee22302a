//! `devnet`: a whole alliance in one process — the hub and two member chains, a relayer, a demo.
//!
//! **Owns**: starting three chains of four validators each in this process (embedded RocksDB under one data
//! directory, real libp2p on 127.0.0.1, one gateway per chain on validator 0): the hub (hub module), `alpha`
//! (ed25519 keys, SHA-256) and `beta` (SM2 keys, SM3); admitting the members by governance on the hub and creating
//! their hub clients by governance on each member; running a relayer (the `causeway-relayer` engine over the
//! chains' gateways, exactly as the daemon does); and the demo:
//! an asset issued on alpha, a transfer alpha → beta and its acknowledgement back, a DvP deal across alpha and beta,
//! and a data record of alpha proven on beta through the hub. Each step is printed with the heights that verified
//! it, and counted as verified only after the outcome was read back from the chains' committed state.
//!
//! **Must never**: print a step as verified that it did not check on committed state; build relayed messages from
//! anything but the nodes' committed blocks, certificates, validator sets, events and store proofs; or touch a
//! chain's state other than through signed transactions.
//!
//! The explorer is not served yet.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use causeway_chain::app::AppOptions;
use causeway_chain::consensus::RoundTimeouts;
use causeway_chain::exec::{assets, Extension, TxResult};
use causeway_chain::gateway::{self, GatewayConfig, NodeApi, Server};
use causeway_chain::genesis::Genesis;
use causeway_chain::mempool::MempoolLimits;
use causeway_chain::message::{Amount, Bytes, Denom, GovAction, Message, OrgId};
use causeway_chain::net::{Multiaddr, NetConfig, NodeKey};
use causeway_chain::node::{Node, NodeSetup, Shared};
use causeway_chain::state::StateRead;
use causeway_chain::testkit;
use causeway_chain::xchain::types::{
    escrow_address, member_keys, namespace, AtomicSpec, Decision, DenomTrace, Leg, LegState, NAMESPACE,
};
use causeway_chain::xchain::{self, Endpoint, EndpointGov, EndpointMsg};
use causeway_hub::{Hub, HubGov};
use causeway_light_client::native::TrustOptions;
use causeway_light_client::{Address, Canonical, ChainId, HashAlg, LightClient, Namespace, SecretKey, Suite};
use tokio::sync::{mpsc, watch};

mod submit;

use causeway_relayer::chain::{ChainHandle, RetryPolicy};
use causeway_relayer::engine::{Engine, EngineConfig, Relayed};
use causeway_relayer::metrics::RelayerMetrics;
use causeway_relayer::plan::{short, RecordRequest};
use submit::submit_and_wait;

/// Options of `devnet`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Data directory (one sub-directory per validator); must be empty or absent. Default: a temporary directory
    /// removed on exit.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Stop after the demo: exit 0 only if every step verified.
    #[arg(long)]
    pub exit_after_demo: bool,
    /// Least time between blocks (ms).
    #[arg(long, default_value_t = 200)]
    pub block_interval_ms: u64,
}

/// How long any one demo step may take.
const STEP_WAIT: Duration = Duration::from_secs(60);

/// Run the devnet.
pub fn run(args: Args) -> Result<()> {
    init_logs();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(devnet(args))
}

/// Node logs on stderr, warnings and errors only unless RUST_LOG says otherwise.
pub(crate) fn init_logs() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// A free loopback port outside the kernel's ephemeral range (see `causeway_chain::testkit::free_port`).
fn free_port() -> Result<u16> {
    causeway_chain::testkit::free_port().ok_or_else(|| anyhow!("no free port on 127.0.0.1 in 20000..32768"))
}

fn timeouts() -> RoundTimeouts {
    RoundTimeouts {
        propose: Duration::from_millis(1_000),
        prevote: Duration::from_millis(400),
        precommit: Duration::from_millis(400),
        delta: Duration::from_millis(200),
        rebroadcast: Duration::from_millis(700),
        max: Duration::from_secs(5),
    }
}

/// One running chain: its validators, their keys, and the gateway on validator 0.
pub(crate) struct Chain {
    genesis: Genesis,
    keys: Vec<SecretKey>,
    nodes: Vec<Node>,
    gateway: Option<Server>,
}

impl Chain {
    pub(crate) fn id(&self) -> &ChainId {
        &self.genesis.chain_id
    }

    pub(crate) fn node(&self) -> &Arc<Shared> {
        // Validator 0 always exists: `start_chain` starts four.
        self.nodes[0].shared()
    }

    pub(crate) fn height(&self) -> u64 {
        self.node().status().height
    }

    /// The URL of the gateway on validator 0.
    pub(crate) fn gateway_url(&self) -> Result<String> {
        self.gateway
            .as_ref()
            .map(|g| g.url())
            .ok_or_else(|| anyhow!("{} has no gateway", self.id()))
    }

    /// Stop the gateway and every validator.
    pub(crate) async fn shutdown(self) {
        if let Some(g) = self.gateway {
            let _ = g.stop().await;
        }
        for n in self.nodes {
            n.stop().await;
        }
    }
}

pub(crate) async fn start_chain(
    id: &str,
    index: u8,
    suite: Suite,
    hash: HashAlg,
    extension: Arc<dyn Extension>,
    dir: &std::path::Path,
    block_interval: Duration,
) -> Result<Chain> {
    let n = 4;
    let (mut genesis, keys) = testkit::genesis(id, n, suite, hash);
    let node_keys: Vec<NodeKey> = (0..n)
        .map(|i| NodeKey::from_seed([index * 16 + i as u8 + 1; 32]))
        .collect();
    for (v, k) in genesis.validators.iter_mut().zip(&node_keys) {
        v.node_id = Some(k.peer_id().to_string());
    }
    genesis.genesis_time = causeway_chain::node::now();
    let ports: Vec<u16> = (0..n).map(|_| free_port()).collect::<Result<_>>()?;
    let addr = |i: usize| -> Result<Multiaddr> { Ok(format!("/ip4/127.0.0.1/tcp/{}", ports[i]).parse()?) };
    let mut nodes = Vec::new();
    for i in 0..n {
        let mut net = NetConfig::new(genesis.chain_id.to_string(), addr(i)?, node_keys[i].clone());
        for j in (0..n).filter(|&j| j != i) {
            net.bootstrap.push(
                addr(j)?
                    .with_p2p(node_keys[j].peer_id())
                    .map_err(|a| anyhow!("bad address {a}"))?,
            );
        }
        net.gossip.heartbeat_ms = 100;
        net.redial.initial_ms = 100;
        net.redial.max_ms = 500;
        let setup = NodeSetup {
            genesis: genesis.clone(),
            moniker: format!("{id}-v{i}"),
            data_dir: dir.join(format!("{id}-v{i}")),
            validator_key: Some(keys[i].clone()),
            net,
            mempool: MempoolLimits::default(),
            app: AppOptions::default(),
            timeouts: Some(timeouts()),
            extensions: vec![extension.clone()],
            min_block_interval: block_interval,
        };
        nodes.push(
            Node::start(setup)
                .await
                .with_context(|| format!("starting validator {i} of {id}"))?,
        );
    }
    let api: Arc<dyn NodeApi> = nodes[0].shared().clone();
    let gw = gateway::serve(
        api,
        GatewayConfig {
            listen: "127.0.0.1:0".into(),
            ..GatewayConfig::default()
        },
    )
    .await
    .with_context(|| format!("starting the gateway of {id}"))?;
    Ok(Chain {
        genesis,
        keys,
        nodes,
        gateway: Some(gw),
    })
}

/// The hub (ed25519/SHA-256, hub module), `alpha` (ed25519/SHA-256) and `beta` (with `beta_crypto`), members
/// with the cross-chain endpoint, four validators each, under `dir`.
pub(crate) async fn start_alliance(
    dir: &std::path::Path,
    block_interval: Duration,
    beta_crypto: (Suite, HashAlg),
) -> Result<(Chain, Chain, Chain)> {
    let hub = start_chain("hub", 0, Suite::Ed25519, HashAlg::Sha256, Hub::extension(), dir, block_interval).await?;
    let alpha =
        start_chain("alpha", 1, Suite::Ed25519, HashAlg::Sha256, Endpoint::extension(), dir, block_interval).await?;
    let (suite, hash) = beta_crypto;
    let beta = start_chain("beta", 2, suite, hash, Endpoint::extension(), dir, block_interval).await?;
    Ok((hub, alpha, beta))
}

/// Poll `cond` every 50 ms until it returns `Some`, for at most [`STEP_WAIT`].
async fn wait_for<T>(what: &str, mut cond: impl FnMut() -> Result<Option<T>>) -> Result<T> {
    let start = Instant::now();
    loop {
        if let Some(v) = cond()? {
            return Ok(v);
        }
        if start.elapsed() > STEP_WAIT {
            bail!("timed out after {STEP_WAIT:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn ok(r: &TxResult, what: &str) -> Result<()> {
    match &r.failure {
        None => Ok(()),
        Some(f) => bail!("{what} refused: {f:?}"),
    }
}

/// Pass `actions` by governance on `chain`: validator 0 proposes them, validators 1 and 2 approve (3 of 4 votes).
/// Returns the height of the deciding block; fails unless every proposal passed.
async fn govern(chain: &Chain, actions: Vec<GovAction>) -> Result<u64> {
    let node = chain.node();
    let proposals = actions
        .into_iter()
        .map(|action| Message::Propose { action })
        .collect();
    let (_, r) = submit_and_wait(node, &chain.keys[0], proposals).await?;
    ok(&r, "governance proposal")?;
    let ids: Vec<u64> = r
        .events
        .iter()
        .filter(|e| e.kind == "gov.proposal")
        .filter_map(|e| e.attribute("id").and_then(|s| s.parse().ok()))
        .collect();
    let votes = || {
        ids.iter()
            .map(|&proposal| Message::Vote {
                proposal,
                approve: true,
            })
            .collect::<Vec<_>>()
    };
    let (a, b) = tokio::join!(
        submit_and_wait(node, &chain.keys[1], votes()),
        submit_and_wait(node, &chain.keys[2], votes())
    );
    let mut decided = 0;
    let mut passed = vec![];
    for (h, r) in [a?, b?] {
        ok(&r, "governance vote")?;
        for e in r.events.iter().filter(|e| e.kind == "gov.decided") {
            decided = decided.max(h);
            passed.push((
                e.attribute("id").unwrap_or_default().to_string(),
                e.attribute("outcome").unwrap_or_default().to_string(),
            ));
        }
    }
    for id in &ids {
        match passed.iter().find(|(p, _)| *p == id.to_string()) {
            Some((_, o)) if o == "passed" => {}
            Some((_, o)) => bail!("proposal {id} on {} was {o}", chain.id()),
            None => bail!("proposal {id} on {} was not decided", chain.id()),
        }
    }
    Ok(decided)
}

/// Admit `members` on `hub` by governance, each from its latest header; the deciding hub height.
pub(crate) async fn admit_members(hub: &Chain, members: &[&Chain]) -> Result<u64> {
    let admissions = members
        .iter()
        .map(|m| -> Result<GovAction> {
            let app = m.node().app();
            let h = app.height();
            Ok(HubGov::AdmitMember {
                options: options(m.id(), m.genesis.hash),
                header: app
                    .block(h)?
                    .ok_or_else(|| anyhow!("no block {h} on {}", m.id()))?
                    .header,
                next_validators: app.validators_at(h + 1)?,
            }
            .into_action())
        })
        .collect::<Result<Vec<_>>>()?;
    govern(hub, admissions).await
}

/// Create each member's client of `hub` by governance on the member, from the hub's latest header; the trusted
/// hub height and the deciding height on each member.
pub(crate) async fn create_hub_clients(hub: &Chain, members: &[&Chain]) -> Result<(u64, Vec<u64>)> {
    let (header, next_validators) = {
        let app = hub.node().app();
        let h = app.height();
        (
            app.block(h)?.ok_or_else(|| anyhow!("no hub block {h}"))?.header,
            app.validators_at(h + 1)?,
        )
    };
    let create = || {
        EndpointGov::CreateHubClient {
            options: options(hub.id(), hub.genesis.hash),
            header: header.clone(),
            next_validators: next_validators.clone(),
        }
        .into_action()
    };
    let decided = futures_join(members.iter().map(|m| govern(m, vec![create()]))).await?;
    for m in members {
        xchain::load_hub_client(&m.node().app().store().latest_view())?
            .ok_or_else(|| anyhow!("{} has no hub client after governance", m.id()))?;
    }
    Ok((header.height, decided))
}

/// Run `futs` concurrently; their results in order, or the first error.
async fn futures_join<T>(futs: impl Iterator<Item = impl std::future::Future<Output = Result<T>>>) -> Result<Vec<T>> {
    let handles: Vec<_> = futs.collect();
    let mut out = Vec::with_capacity(handles.len());
    for r in futures::future::join_all(handles).await {
        out.push(r?);
    }
    Ok(out)
}

/// A relayer engine over the gateways of `hub` and `members`, signing with `key`.
pub(crate) fn relayer_engine(hub: &Chain, members: &[&Chain], key: SecretKey, cfg: EngineConfig) -> Result<Engine> {
    let handle = |c: &Chain| -> Result<ChainHandle> {
        let client = causeway_chain::gateway::client::GatewayClient::new(&c.gateway_url()?)?;
        Ok(ChainHandle::new(c.id().clone(), client, RetryPolicy::default()))
    };
    Ok(Engine::new(
        handle(hub)?,
        members.iter().map(|m| handle(m)).collect::<Result<_>>()?,
        key,
        cfg,
        Arc::new(RelayerMetrics::new()),
    ))
}

fn options(chain: &ChainId, hash: HashAlg) -> TrustOptions {
    TrustOptions::new(chain.clone(), hash)
}

pub(crate) fn user(suite: Suite, n: u8) -> Result<SecretKey> {
    Ok(SecretKey::from_bytes(suite, &[n; 32])?)
}

fn balance(node: &Shared, denom: &Denom, who: &Address) -> Result<u128> {
    Ok(assets::balance(&node.app().store().latest_view(), denom, who)?.0)
}

/// The demo's printed record of verified steps.
pub(crate) struct Log {
    t0: Instant,
    pub(crate) verified: usize,
    pub(crate) steps: Vec<(String, Duration)>,
    /// Print on standard error instead of standard output (when the caller prints JSON there).
    quiet: bool,
}

impl Log {
    fn say(&self, s: &str) {
        let line = format!("[{:>7.2}s] {s}", self.t0.elapsed().as_secs_f64());
        if self.quiet {
            eprintln!("{line}");
        } else {
            println!("{line}");
        }
    }
    fn verified(&mut self, step: &str, took: Duration, how: &str) {
        self.verified += 1;
        self.steps.push((step.to_string(), took));
        self.say(&format!("VERIFIED {step} ({:.2} s): {how}", took.as_secs_f64()));
    }
}

fn print_relayed(log: &Log, rx: &mut mpsc::UnboundedReceiver<Relayed>) {
    while let Ok(r) = rx.try_recv() {
        let update = match r.update {
            Some((from, to)) => {
                format!(", client updated {from} -> {to} from header {to} and its commit certificate")
            }
            None => String::new(),
        };
        match r.failure {
            None => log.say(&format!(
                "  relayer: {} — applied by {} at height {} (proof at height {}{update}; {:.2} s)",
                r.what,
                r.target,
                r.height,
                r.proof_height,
                r.took.as_secs_f64()
            )),
            Some(f) => log.say(&format!("  relayer: {} — FAILED on {}: {f}", r.what, r.target)),
        }
    }
}

async fn devnet(args: Args) -> Result<()> {
    let (_tmp, dir) = match &args.data {
        Some(d) => {
            if d.exists() && std::fs::read_dir(d)?.next().is_some() {
                bail!(
                    "--data {}: the directory is not empty (restarting a devnet is not supported yet)",
                    d.display()
                );
            }
            std::fs::create_dir_all(d)?;
            (None, d.clone())
        }
        None => {
            let t = tempfile::tempdir()?;
            let p = t.path().to_path_buf();
            (Some(t), p)
        }
    };
    let interval = Duration::from_millis(args.block_interval_ms);
    let mut log = Log {
        t0: Instant::now(),
        verified: 0,
        steps: vec![],
        quiet: false,
    };
    log.say(&format!("data directory {}", dir.display()));

    let (hub, alpha, beta) = start_alliance(&dir, interval, (Suite::Sm2, HashAlg::Sm3)).await?;
    let chains = [&hub, &alpha, &beta];
    for c in chains {
        let url = c.gateway.as_ref().map(|g| g.url()).unwrap_or_default();
        log.say(&format!(
            "chain {:<5} 4 validators ({:?}, {:?}), gateway {url}",
            c.id().to_string(),
            c.genesis.validators[0].pub_key.suite(),
            c.genesis.hash
        ));
    }
    let outcome = demo(&hub, &alpha, &beta, &mut log, Step::ALL).await;
    match &outcome {
        Ok(()) => {
            log.say(&format!("all {} demo steps verified", log.verified));
            for (s, d) in &log.steps {
                println!("  {:<48} {:>6.2} s", s, d.as_secs_f64());
            }
        }
        Err(e) => log.say(&format!(
            "DEMO FAILED after {} verified steps: {e:#}",
            log.verified
        )),
    }
    if !args.exit_after_demo {
        log.say("serving until Ctrl-C");
        tokio::signal::ctrl_c().await.context("waiting for Ctrl-C")?;
    }
    for c in [hub, alpha, beta] {
        c.shutdown().await;
    }
    outcome
}

/// One scripted building block of the demo (each also runs alone as `causeway-scenarios scenario NAME`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// A transfer alpha → beta: escrow, voucher, acknowledgement back.
    Transfer,
    /// A delivery-versus-payment deal across alpha and beta, decided by the hub.
    Dvp,
    /// A data record of alpha proven on beta through the hub.
    Record,
}

impl Step {
    /// The whole demo, in order.
    pub(crate) const ALL: &'static [Step] = &[Step::Transfer, Step::Dvp, Step::Record];
}

/// Start the alliance (hub, alpha, beta) in a temporary directory, run `steps`, stop it; the log of verified
/// steps. What `scenario transfer|dvp|record` runs.
pub(crate) async fn run_steps(steps: &[Step], quiet: bool, block_interval: Duration) -> Result<Log> {
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path();
    let mut log = Log {
        t0: Instant::now(),
        verified: 0,
        steps: vec![],
        quiet,
    };
    let (hub, alpha, beta) = start_alliance(dir, block_interval, (Suite::Sm2, HashAlg::Sm3)).await?;
    let outcome = demo(&hub, &alpha, &beta, &mut log, steps).await;
    for c in [hub, alpha, beta] {
        c.shutdown().await;
    }
    outcome.map(|()| log)
}

async fn demo(hub: &Chain, alpha: &Chain, beta: &Chain, log: &mut Log, steps: &[Step]) -> Result<()> {
    // 1. Every chain commits blocks.
    let t = Instant::now();
    let all_heights = || -> Vec<String> {
        [hub, alpha, beta]
            .iter()
            .map(|c| {
                let hs: Vec<String> = c
                    .nodes
                    .iter()
                    .map(|n| n.shared().status())
                    .map(|s| format!("h{}/r{}/{}p", s.height, s.round, s.peers))
                    .collect();
                format!("{} [{}]", c.id(), hs.join(" "))
            })
            .collect()
    };
    let heights = wait_for("every chain past height 2", || {
        let hs: Vec<u64> = [hub, alpha, beta].iter().map(|c| c.height()).collect();
        Ok(hs.iter().all(|h| *h >= 2).then_some(hs))
    })
    .await
    .with_context(|| format!("heights/peers per validator: {}", all_heights().join("; ")))?;
    log.verified(
        "three chains running",
        t.elapsed(),
        &format!(
            "hub at {}, alpha at {}, beta at {} (4 validators each)",
            heights[0], heights[1], heights[2]
        ),
    );

    // 2. Admission by governance.
    let t = Instant::now();
    let decided = admit_members(hub, &[alpha, beta]).await?;
    for m in [alpha, beta] {
        let client = causeway_hub::load_client(&hub.node().app().store().latest_view(), m.id())?
            .ok_or_else(|| anyhow!("the hub has no client of {} after admission", m.id()))?;
        log.say(&format!(
            "  hub's client of {} trusts height {}",
            m.id(),
            client.latest_height()
        ));
    }
    log.verified(
        "hub admits alpha and beta",
        t.elapsed(),
        &format!("governance passed at hub height {decided}, clients stored"),
    );
    let t = Instant::now();
    let (hub_header, heights) = create_hub_clients(hub, &[alpha, beta]).await?;
    let (ha, hb) = (heights[0], heights[1]);
    log.verified(
        "members create their hub clients",
        t.elapsed(),
        &format!(
            "governance passed at alpha {ha}, beta {hb}; trusting hub header {}",
            hub_header
        ),
    );

    // The relayer.
    let relayer_key = user(Suite::Ed25519, 250)?;
    let (req_tx, req_rx) = mpsc::unbounded_channel();
    let (rep_tx, mut rep_rx) = mpsc::unbounded_channel();
    let (stop_tx, stop_rx) = watch::channel(false);
    let r = relayer_engine(hub, &[alpha, beta], relayer_key, EngineConfig::default())?;
    let relayer_task = tokio::spawn(r.run(Duration::from_millis(500), req_rx, rep_tx, stop_rx, None));
    let result = scripted(hub, alpha, beta, log, &req_tx, &mut rep_rx, steps).await;
    print_relayed(log, &mut rep_rx);
    let _ = stop_tx.send(true);
    let _ = relayer_task.await;
    result
}

async fn scripted(
    hub: &Chain,
    alpha: &Chain,
    beta: &Chain,
    log: &mut Log,
    requests: &mpsc::UnboundedSender<RecordRequest>,
    relayed: &mut mpsc::UnboundedReceiver<Relayed>,
    steps: &[Step],
) -> Result<()> {
    let alice_a = user(Suite::Ed25519, 11)?;
    let bob_a = user(Suite::Ed25519, 12)?;
    let alice_b = user(Suite::Sm2, 21)?;
    let bob_b = user(Suite::Sm2, 22)?;
    let bond = Denom::new("bond").map_err(|e| anyhow!("{e}"))?;
    let cash = Denom::new("cash").map_err(|e| anyhow!("{e}"))?;
    let (a, b) = (alpha.node(), beta.node());

    // 3. Issue assets: a bond on alpha (alice), cash on beta (bob, an SM2 key).
    let t = Instant::now();
    let issue_bond = Message::Issue {
        denom: bond.clone(),
        amount: Amount(1_000),
        to: alice_a.public_key().address(),
    };
    let issue_cash = Message::Issue {
        denom: cash.clone(),
        amount: Amount(5_000),
        to: bob_b.public_key().address(),
    };
    let (ra, rb) = tokio::join!(
        submit_and_wait(a, &alice_a, vec![issue_bond]),
        submit_and_wait(b, &bob_b, vec![issue_cash])
    );
    let ((ha, ra), (hb, rb)) = (ra?, rb?);
    ok(&ra, "issue on alpha")?;
    ok(&rb, "issue on beta")?;
    let got = (
        balance(a, &bond, &alice_a.public_key().address())?,
        balance(b, &cash, &bob_b.public_key().address())?,
    );
    if got != (1_000, 5_000) {
        bail!("after issuing, balances are {got:?}, expected (1000, 5000)");
    }
    log.verified(
        "issue bond on alpha, cash on beta",
        t.elapsed(),
        &format!("alice holds 1000 bond at alpha {ha}; bob holds 5000 cash at beta {hb} (SM2 signer)"),
    );

    let voucher = DenomTrace {
        home: alpha.id().clone(),
        base: bond.clone(),
    }
    .voucher_denom();
    if steps.contains(&Step::Transfer) {
        transfer(hub, alpha, beta, log, relayed, &alice_a, &alice_b, &bond, &voucher).await?;
    }
    if steps.contains(&Step::Dvp) {
        dvp(hub, alpha, beta, log, relayed, [&alice_a, &bob_a, &alice_b, &bob_b], &bond, &cash).await?;
    }
    if steps.contains(&Step::Record) {
        record(alpha, beta, log, requests, relayed, &alice_a).await?;
    }
    conserved(alpha, beta, log, &bond, &voucher)
}

/// 4. Transfer alpha → beta: escrow, voucher on beta, ack back.
#[allow(clippy::too_many_arguments)]
async fn transfer(
    hub: &Chain,
    alpha: &Chain,
    beta: &Chain,
    log: &mut Log,
    relayed: &mut mpsc::UnboundedReceiver<Relayed>,
    alice_a: &SecretKey,
    alice_b: &SecretKey,
    bond: &Denom,
    voucher: &Denom,
) -> Result<()> {
    let (a, b) = (alpha.node(), beta.node());
    let t = Instant::now();
    let receiver = alice_b.public_key().address();
    let timeout_time = causeway_chain::node::now().plus(Duration::from_secs(120));
    let send = EndpointMsg::SendTransfer {
        destination: beta.id().clone(),
        denom: bond.clone(),
        amount: Amount(100),
        receiver,
        timeout_height: 0,
        timeout_time,
    };
    let (h_send, r) = submit_and_wait(a, alice_a, vec![send.into_message()]).await?;
    ok(&r, "send transfer")?;
    let packet = r
        .events
        .iter()
        .find(|e| e.kind == "xchain.send")
        .and_then(|e| e.attribute("packet"))
        .ok_or_else(|| anyhow!("no xchain.send event"))?;
    let packet = causeway_chain::xchain::types::Packet::decode(&hex::decode(packet)?)?;
    let escrowed = xchain::escrowed(&a.app().store().latest_view(), beta.id(), bond)?;
    let held = balance(a, bond, &escrow_address())?;
    if escrowed != 100 || held != 100 {
        bail!("after sending, escrow counter {escrowed} and escrow account {held}, expected 100");
    }
    log.verified(
        "transfer: 100 bond escrowed on alpha",
        t.elapsed(),
        &format!(
            "packet alpha#{} committed at alpha {h_send}; escrow holds 100",
            packet.sequence
        ),
    );
    let t = Instant::now();
    let h_credit = wait_for("the voucher credited on beta", || {
        print_relayed(log, relayed);
        Ok((balance(b, voucher, &receiver)? == 100).then(|| beta.height()))
    })
    .await?;
    log.verified(
        "transfer: voucher credited on beta",
        t.elapsed(),
        &format!("alice's beta account holds 100 {voucher} (trace alpha/bond) at beta {h_credit}"),
    );
    let t = Instant::now();
    let seq = packet.sequence;
    let h_ack = wait_for("the acknowledgement applied on alpha", || {
        print_relayed(log, relayed);
        let resolved = a
            .app()
            .store()
            .latest_view()
            .get(&namespace(NAMESPACE), &member_keys::commitment(seq))?
            .is_none();
        let hub_resolved =
            causeway_hub::packet_record(&hub.node().app().store().latest_view(), alpha.id(), seq)?
                .is_some_and(|r| r.resolved);
        Ok((resolved && hub_resolved).then(|| alpha.height()))
    })
    .await?;
    let still = xchain::escrowed(&a.app().store().latest_view(), beta.id(), bond)?;
    if still != 100 {
        bail!("after the success ack, alpha's escrow for beta is {still}, expected 100");
    }
    log.verified(
        "transfer: success ack back on alpha",
        t.elapsed(),
        &format!("packet resolved on the hub and on alpha at {h_ack}; escrow 100 = vouchers 100 on beta"),
    );

    Ok(())
}

/// 5. DvP: alice delivers 50 bond on alpha against 500 cash from bob on beta.
#[allow(clippy::too_many_arguments)]
async fn dvp(
    hub: &Chain,
    alpha: &Chain,
    beta: &Chain,
    log: &mut Log,
    relayed: &mut mpsc::UnboundedReceiver<Relayed>,
    [alice_a, bob_a, alice_b, bob_b]: [&SecretKey; 4],
    bond: &Denom,
    cash: &Denom,
) -> Result<()> {
    let (a, b) = (alpha.node(), beta.node());
    let t = Instant::now();
    let deadline = causeway_chain::node::now().plus(Duration::from_secs(60));
    let spec = AtomicSpec {
        salt: 1,
        deadline,
        legs: vec![
            Leg {
                chain: alpha.id().clone(),
                from: alice_a.public_key().address(),
                to: bob_a.public_key().address(),
                denom: bond.clone(),
                amount: Amount(50),
            },
            Leg {
                chain: beta.id().clone(),
                from: bob_b.public_key().address(),
                to: alice_b.public_key().address(),
                denom: cash.clone(),
                amount: Amount(500),
            },
        ],
    };
    let id = spec.id();
    let prep = |i: u32| {
        EndpointMsg::PrepareLeg {
            spec: spec.clone(),
            index: i,
        }
        .into_message()
    };
    let (r0, r1) = tokio::join!(
        submit_and_wait(a, alice_a, vec![prep(0)]),
        submit_and_wait(b, bob_b, vec![prep(1)])
    );
    let ((h0, r0), (h1, r1)) = (r0?, r1?);
    ok(&r0, "prepare leg 0 on alpha")?;
    ok(&r1, "prepare leg 1 on beta")?;
    log.verified(
        "DvP: both legs prepared (locked)",
        t.elapsed(),
        &format!(
            "deal {}: bond leg at alpha {h0}, cash leg at beta {h1}",
            short(&id)
        ),
    );
    let t = Instant::now();
    let h_dec = wait_for("the hub's decision", || {
        print_relayed(log, relayed);
        let d = causeway_hub::decision(&hub.node().app().store().latest_view(), &id)?;
        Ok(d.map(|d| (d, hub.height())))
    })
    .await?;
    if h_dec.0 != Decision::Commit {
        bail!("the hub decided {:?} for the DvP deal", h_dec.0);
    }
    log.verified(
        "DvP: hub decides COMMIT",
        t.elapsed(),
        &format!("after verifying both prepares, by hub height {}", h_dec.1),
    );
    let t = Instant::now();
    let h_done = wait_for("both legs committed", || {
        print_relayed(log, relayed);
        let l0 = xchain::leg_state(&a.app().store().latest_view(), &id, 0)?;
        let l1 = xchain::leg_state(&b.app().store().latest_view(), &id, 1)?;
        Ok(
            (l0 == Some(LegState::Committed) && l1 == Some(LegState::Committed))
                .then(|| (alpha.height(), beta.height())),
        )
    })
    .await?;
    let bob_bond = balance(a, bond, &bob_a.public_key().address())?;
    let alice_cash = balance(b, cash, &alice_b.public_key().address())?;
    if (bob_bond, alice_cash) != (50, 500) {
        bail!("after the DvP, bob holds {bob_bond} bond and alice {alice_cash} cash (expected 50 and 500)");
    }
    log.verified(
        "DvP: both legs settled",
        t.elapsed(),
        &format!(
            "bob holds 50 bond on alpha ({}), alice 500 cash on beta ({})",
            h_done.0, h_done.1
        ),
    );

    Ok(())
}

/// 6. A data record on alpha, proven on beta through the hub.
async fn record(
    alpha: &Chain,
    beta: &Chain,
    log: &mut Log,
    requests: &mpsc::UnboundedSender<RecordRequest>,
    relayed: &mut mpsc::UnboundedReceiver<Relayed>,
    alice_a: &SecretKey,
) -> Result<()> {
    let (a, b) = (alpha.node(), beta.node());
    let t = Instant::now();
    let org = OrgId::new("acme").map_err(|e| anyhow!("{e}"))?;
    govern(
        alpha,
        vec![GovAction::AdmitOrg {
            org,
            admin: alice_a.public_key().address(),
        }],
    )
    .await?;
    let ns = Namespace::new("org/acme/invoices").map_err(|e| anyhow!("{e}"))?;
    let put = Message::PutRecord {
        namespace: ns.clone(),
        key: "inv-7".into(),
        value: Bytes(b"{\"eur\":120}".to_vec()),
    };
    let (h_rec, r) = submit_and_wait(a, alice_a, vec![put]).await?;
    ok(&r, "put record")?;
    let stored = a
        .app()
        .store()
        .prove(h_rec, &ns, b"inv-7")?
        .0
        .ok_or_else(|| anyhow!("record not stored"))?;
    requests
        .send(RecordRequest {
            chain: alpha.id().clone(),
            height: h_rec,
            namespace: ns.clone(),
            key: "inv-7".into(),
            verifier: beta.id().clone(),
        })
        .map_err(|_| anyhow!("the relayer stopped"))?;
    let h_ver = wait_for("beta to verify the record", || {
        print_relayed(log, relayed);
        let v = xchain::record_verified(
            &b.app().store().latest_view(),
            alpha.id(),
            h_rec,
            &ns,
            "inv-7",
            &stored,
        )?;
        Ok(v.then(|| beta.height()))
    })
    .await?;
    log.verified(
        "record of alpha proven on beta via the hub",
        t.elapsed(),
        &format!("org/acme/invoices/inv-7 written at alpha {h_rec}, attested by the hub, verified by beta by {h_ver}"),
    );

    Ok(())
}

/// Conservation across the alliance for the bond.
fn conserved(alpha: &Chain, beta: &Chain, log: &mut Log, bond: &Denom, voucher: &Denom) -> Result<()> {
    let (a, b) = (alpha.node(), beta.node());
    let supply = assets::meta(&a.app().store().latest_view(), bond)?.map_or(0, |m| m.supply.0);
    let vouchers = assets::meta(&b.app().store().latest_view(), voucher)?.map_or(0, |m| m.supply.0);
    let escrow = xchain::escrowed(&a.app().store().latest_view(), beta.id(), bond)?;
    if supply != 1_000 || escrow != vouchers {
        bail!("bond: supply {supply} (expected 1000), escrowed {escrow} vs vouchers {vouchers} on beta");
    }
    log.verified(
        "bond conserved",
        Duration::ZERO,
        &format!("supply 1000 on alpha; escrowed {escrow} = vouchers {vouchers} on beta"),
    );
    Ok(())
}
