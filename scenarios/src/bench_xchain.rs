//! `bench xchain`: cross-chain transfer throughput and latency through the hub, with a real relayer.
//!
//! **Owns**: an alliance in this process (the hub and two members, four validators each, over libp2p on
//! 127.0.0.1, each with a gateway), governance admission, one relayer engine over the gateways (as the daemon
//! runs it), senders submitting `SendTransfer` transactions to member A's gateway at an offered rate, and the
//! measurement: latency from submission on A to the packet's receipt committed on B (the credit), packets per
//! second delivered, and lost / duplicated counts read from committed events.
//!
//! **Must never**: count a packet delivered that B did not commit, or hide a lost one: every packet whose
//! `xchain.send` A committed is either seen received on B or reported lost after the drain period.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use causeway_chain::gateway::client::GatewayClient;
use causeway_chain::message::{Amount, Denom, Message};
use causeway_chain::tx::Transaction;
use causeway_chain::xchain::EndpointMsg;
use causeway_light_client::{Hash, HashAlg, SecretKey, Suite};
use causeway_relayer::engine::EngineConfig;
use serde::Serialize;
use tokio::sync::{mpsc, watch};

use crate::devnet::{admit_members, create_hub_clients, relayer_engine, start_alliance, user, Chain};

/// Options of `bench xchain`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Seconds of offered load.
    #[arg(long, default_value_t = 30)]
    pub duration: u64,
    /// Offered packets per second.
    #[arg(long, default_value_t = 2_000)]
    pub rate: u64,
    /// Sending accounts on A.
    #[arg(long, default_value_t = 8)]
    pub senders: usize,
    /// Transfers per submitted transaction.
    #[arg(long, default_value_t = 25)]
    pub per_tx: usize,
    /// Messages per relayer transaction, at most.
    #[arg(long, default_value_t = 500)]
    pub relay_batch: usize,
    /// Relayer transactions waiting for commit at once per target chain.
    #[arg(long, default_value_t = 4)]
    pub pipeline: usize,
    /// Least time between blocks (ms).
    #[arg(long, default_value_t = 200)]
    pub block_interval_ms: u64,
    /// Seconds to wait for packets still in flight after the load stops.
    #[arg(long, default_value_t = 60)]
    pub drain: u64,
    /// Print only the JSON line.
    #[arg(long)]
    pub json: bool,
}

#[derive(Serialize)]
struct Report {
    packets_per_s: f64,
    p50_ms: f64,
    p99_ms: f64,
    delivered: u64,
    lost: u64,
    duplicated: u64,
    sent: u64,
    offered_per_s: u64,
    duration_s: f64,
    validators_per_chain: usize,
}

/// Run the benchmark.
pub fn run(args: Args) -> Result<()> {
    if args.duration == 0
        || args.rate == 0
        || args.senders == 0
        || args.per_tx == 0
        || args.relay_batch == 0
        || args.pipeline == 0
    {
        bail!("--duration, --rate, --senders, --per-tx, --relay-batch and --pipeline must be positive");
    }
    if args.relay_batch > causeway_chain::tx::MAX_MESSAGES - 8 {
        bail!(
            "--relay-batch is at most {}",
            causeway_chain::tx::MAX_MESSAGES - 8
        );
    }
    if args.per_tx > causeway_chain::tx::MAX_MESSAGES {
        bail!("--per-tx is at most {}", causeway_chain::tx::MAX_MESSAGES);
    }
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("error"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(bench(args))
}

/// When each packet (by sequence on A) was submitted and credited on B.
#[derive(Default)]
struct Book {
    /// Submission time per transaction hash, until A commits it.
    pending: HashMap<Hash, Instant>,
    submitted: BTreeMap<u64, Instant>,
    credited: BTreeMap<u64, Instant>,
    duplicated: u64,
}

fn say(args: &Args, s: &str) {
    if !args.json {
        eprintln!("{s}");
    }
}

async fn bench(args: Args) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let interval = Duration::from_millis(args.block_interval_ms);
    let (hub, a, b) = start_alliance(dir.path(), interval, (Suite::Ed25519, HashAlg::Sha256)).await?;
    let t0 = Instant::now();
    while [&hub, &a, &b].iter().any(|c| c.height() < 2) {
        if t0.elapsed() > Duration::from_secs(60) {
            bail!("the chains did not start within 60 s");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    admit_members(&hub, &[&a, &b]).await?;
    create_hub_clients(&hub, &[&a, &b]).await?;
    say(
        &args,
        "alliance up: hub, alpha, beta (4 validators each); members admitted",
    );

    // Funds: one issue transaction gives every sender its gold.
    let senders: Vec<SecretKey> = (0..args.senders)
        .map(|i| user(Suite::Ed25519, 100 + i as u8))
        .collect::<Result<_>>()?;
    let gold = Denom::new("gold").map_err(|e| anyhow!("{e}"))?;
    let issue: Vec<Message> = senders
        .iter()
        .map(|k| Message::Issue {
            denom: gold.clone(),
            amount: Amount(u128::from(u64::MAX)),
            to: k.public_key().address(),
        })
        .collect();
    let gw_a = gateway(&a)?;
    submit_wait(&gw_a, &a, &senders[0], issue).await?;

    // The relayer.
    let engine = relayer_engine(
        &hub,
        &[&a, &b],
        user(Suite::Ed25519, 250)?,
        EngineConfig {
            batch_max: args.relay_batch,
            pipeline: args.pipeline,
            ..EngineConfig::default()
        },
    )?;
    let (_req_tx, req_rx) = mpsc::unbounded_channel();
    let (rep_tx, mut rep_rx) = mpsc::unbounded_channel();
    let (stop_tx, stop_rx) = watch::channel(false);
    let relayer = tokio::spawn(engine.run(Duration::from_millis(200), req_rx, rep_tx, stop_rx, None));
    let failures = Arc::new(Mutex::new(0u64));
    let f2 = failures.clone();
    tokio::spawn(async move {
        while let Some(r) = rep_rx.recv().await {
            if r.failure.is_some() {
                if let Ok(mut f) = f2.lock() {
                    *f += 1;
                }
            }
        }
    });

    // Watch A for sends (sequence ← transaction) and B for receipts.
    let book = Arc::new(Mutex::new(Book::default()));
    let mut a_blocks = a.node().blocks.subscribe();
    let mut b_blocks = b.node().blocks.subscribe();
    let book_a = book.clone();
    let watch_a = tokio::spawn(async move {
        while let Ok(c) = a_blocks.recv().await {
            let Ok(mut book) = book_a.lock() else { return };
            for r in c.results.txs.iter().filter(|r| r.is_ok()) {
                let Some(at) = book.pending.remove(&r.hash) else {
                    continue;
                };
                for e in r.events.iter().filter(|e| e.kind == "xchain.send") {
                    if let Some(seq) = e.attribute("sequence").and_then(|s| s.parse().ok()) {
                        book.submitted.insert(seq, at);
                    }
                }
            }
        }
    });
    let book_b = book.clone();
    let alpha_id = a.id().to_string();
    let watch_b = tokio::spawn(async move {
        while let Ok(c) = b_blocks.recv().await {
            let now = Instant::now();
            let Ok(mut book) = book_b.lock() else { return };
            for r in c.results.txs.iter().filter(|r| r.is_ok()) {
                for e in r.events.iter().filter(|e| e.kind == "xchain.recv") {
                    if e.attribute("source") != Some(alpha_id.as_str()) {
                        continue;
                    }
                    if let Some(seq) = e.attribute("sequence").and_then(|s| s.parse::<u64>().ok()) {
                        if book.credited.insert(seq, now).is_some() {
                            book.duplicated += 1;
                        }
                    }
                }
            }
        }
    });

    // The load: every sender submits `per_tx` transfers per transaction, paced to the offered rate.
    say(
        &args,
        &format!("offering {} packets/s for {} s", args.rate, args.duration),
    );
    let receiver = user(Suite::Ed25519, 200)?.public_key().address();
    let tx_interval = Duration::from_secs_f64(args.per_tx as f64 * args.senders as f64 / args.rate as f64);
    let load_start = Instant::now();
    let load_end = load_start + Duration::from_secs(args.duration);
    let mut tasks = vec![];
    for (i, key) in senders.into_iter().enumerate() {
        let gw = gw_a.clone();
        let book = book.clone();
        let chain = a.id().clone();
        let msg = EndpointMsg::SendTransfer {
            destination: b.id().clone(),
            denom: gold.clone(),
            amount: Amount(1),
            receiver,
            timeout_height: 0,
            timeout_time: causeway_chain::node::now()
                .plus(Duration::from_secs(args.duration + args.drain + 600)),
        }
        .into_message();
        let per_tx = args.per_tx;
        tasks.push(tokio::spawn(async move {
            let mut nonce = gw.account(&key.public_key().address(), &[]).await?.nonce;
            // Stagger the senders across one interval.
            tokio::time::sleep(tx_interval.mul_f64(i as f64 / 8.0)).await;
            let mut next = Instant::now();
            while Instant::now() < load_end {
                let tx = Transaction {
                    chain_id: chain.clone(),
                    signer: key.public_key(),
                    nonce,
                    messages: vec![msg.clone(); per_tx],
                }
                .sign(&key);
                let at = Instant::now();
                if let Ok(mut b) = book.lock() {
                    b.pending.insert(tx.hash(HashAlg::Sha256), at);
                }
                match gw.submit(&tx).await {
                    Ok(_) => nonce += 1,
                    Err(e) => {
                        if let Ok(mut b) = book.lock() {
                            b.pending.remove(&tx.hash(HashAlg::Sha256));
                        }
                        if e.code() != Some("mempool_full") {
                            return Err(anyhow!("submitting on A: {e}"));
                        }
                    }
                }
                next += tx_interval;
                if let Some(wait) = next.checked_duration_since(Instant::now()) {
                    tokio::time::sleep(wait).await;
                }
            }
            Ok::<(), anyhow::Error>(())
        }));
    }
    for t in tasks {
        t.await.context("a sender stopped")??;
    }
    say(&args, "load done; draining");
    let drain_end = Instant::now() + Duration::from_secs(args.drain);
    loop {
        let done = {
            let bk = book.lock().map_err(|_| anyhow!("book poisoned"))?;
            bk.pending.is_empty() && bk.submitted.keys().all(|s| bk.credited.contains_key(s))
        };
        if done || Instant::now() >= drain_end {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = stop_tx.send(true);
    let _ = relayer.await;
    watch_a.abort();
    watch_b.abort();

    // The report is computed inside this block, so the book's (std) lock is released before any await below.
    {
        let book = book.lock().map_err(|_| anyhow!("book poisoned"))?;
        let mut lat: Vec<f64> = book
            .submitted
            .iter()
            .filter_map(|(s, t)| {
                book.credited
                    .get(s)
                    .map(|c| c.duration_since(*t).as_secs_f64() * 1e3)
            })
            .collect();
        lat.sort_by(|x, y| x.total_cmp(y));
        let delivered = lat.len() as u64;
        let first = book.submitted.values().min().copied().unwrap_or(load_start);
        let last = book.credited.values().max().copied().unwrap_or(first);
        let span = last.duration_since(first).as_secs_f64().max(1e-9);
        let pct = |p: f64| -> f64 {
            if lat.is_empty() {
                return 0.0;
            }
            lat[((lat.len() as f64 - 1.0) * p).round() as usize]
        };
        let report = Report {
            packets_per_s: delivered as f64 / span,
            p50_ms: pct(0.50),
            p99_ms: pct(0.99),
            delivered,
            lost: book.submitted.len() as u64 - delivered,
            duplicated: book.duplicated,
            sent: book.submitted.len() as u64,
            offered_per_s: args.rate,
            duration_s: span,
            validators_per_chain: 4,
        };
        if !args.json {
            eprintln!(
            "delivered {} of {} packets in {:.1} s: {:.0} packets/s, p50 {:.0} ms, p99 {:.0} ms; lost {}, duplicated {}; \
             relayer steps failed {}",
            report.delivered,
            report.sent,
            report.duration_s,
            report.packets_per_s,
            report.p50_ms,
            report.p99_ms,
            report.lost,
            report.duplicated,
            failures.lock().map(|f| *f).unwrap_or(0)
        );
        }
        println!("{}", serde_json::to_string(&report)?);
    }
    if !args.json {
        // Gateway requests by route over the three chains (the relayer's, the senders' and this program's).
        let mut routes: BTreeMap<String, u64> = BTreeMap::new();
        for c in [&hub, &a, &b] {
            let text = gateway(c)?.metrics().await?;
            for (route, n) in request_counts(&text) {
                *routes.entry(route).or_default() += n;
            }
        }
        for (route, n) in routes {
            eprintln!("gateway requests {route}: {n}");
        }
    }
    for c in [hub, a, b] {
        c.shutdown().await;
    }
    Ok(())
}

/// `causeway_gateway_requests_total{route="…",status="…"} n` lines summed per route.
fn request_counts(metrics: &str) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for line in metrics
        .lines()
        .filter(|l| l.starts_with("causeway_gateway_requests_total{"))
    {
        let route = line.split("route=\"").nth(1).and_then(|r| r.split('"').next());
        let n = line.rsplit(' ').next().and_then(|n| n.parse::<u64>().ok());
        if let (Some(route), Some(n)) = (route, n) {
            *out.entry(route.to_string()).or_default() += n;
        }
    }
    out
}

fn gateway(c: &Chain) -> Result<GatewayClient> {
    Ok(GatewayClient::new(&c.gateway_url()?)?)
}

/// Submit `messages` signed by `key` through `gw` and wait for a successful commit.
async fn submit_wait(gw: &GatewayClient, c: &Chain, key: &SecretKey, messages: Vec<Message>) -> Result<u64> {
    let nonce = gw.account(&key.public_key().address(), &[]).await?.nonce;
    let tx = Transaction {
        chain_id: c.id().clone(),
        signer: key.public_key(),
        nonce,
        messages,
    }
    .sign(key);
    let v = gw.submit_and_wait(&tx, Duration::from_secs(30)).await?;
    match (v.height, v.result) {
        (Some(h), Some(r)) if r.is_ok() => Ok(h),
        (_, r) => bail!(
            "transaction refused on {}: {:?}",
            c.id(),
            r.and_then(|r| r.failure)
        ),
    }
}
