//! `bench ledger`: end-to-end throughput and latency of a real validator network on this machine.
//!
//! Starts `--validators` nodes in this process, each with its own RocksDB stores, consensus WAL, mempool and
//! gateway, talking over real libp2p (noise, yamux, gossipsub) on 127.0.0.1. Nothing is shared between validators
//! but the process: every validator verifies every transaction signature itself (on admission, from its own
//! clients or from gossip) and executes every block itself.
//!
//! Clients are signed ed25519 transfers between `--accounts` funded accounts, signed before the clock starts (a real
//! client signs on its own machine), and submitted through the gateways' binary batch route at the offered
//! `--rate`, spread over every gateway. Latency is submit-to-committed: from the moment a batch is sent until the
//! block holding a transaction is committed on validator 0.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use causeway_chain::app::AppOptions;
use causeway_chain::consensus::RoundTimeouts;
use causeway_chain::gateway::client::GatewayClient;
use causeway_chain::gateway::{self, GatewayConfig, NodeApi};
use causeway_chain::genesis::GenesisAsset;
use causeway_chain::mempool::MempoolLimits;
use causeway_chain::message::{Amount, Denom, Message};
use causeway_chain::net::{Multiaddr, NetConfig, NodeKey};
use causeway_chain::node::{Node, NodeSetup};
use causeway_chain::testkit;
use causeway_chain::tx::Transaction;
use causeway_light_client::{Canonical, Hash, HashAlg, SecretKey, Suite};
use serde::Serialize;

/// Options of `bench ledger`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Validators (1 gives the single-node ceiling).
    #[arg(long, default_value_t = 4)]
    pub validators: usize,
    /// Seconds of measured load.
    #[arg(long, default_value_t = 30)]
    pub duration: u64,
    /// Offered load, transactions per second (spread over every gateway).
    #[arg(long, default_value_t = 12_000)]
    pub rate: u64,
    /// Funded sender accounts.
    #[arg(long, default_value_t = 5_000)]
    pub accounts: usize,
    /// Transactions per gateway batch request.
    #[arg(long, default_value_t = 500)]
    pub batch: usize,
    /// Mempool bound of each validator (transactions); beyond it submissions are refused before verification.
    #[arg(long, default_value_t = 20_000)]
    pub mempool_txs: usize,
    /// Least time between blocks (ms).
    #[arg(long, default_value_t = 250)]
    pub block_interval_ms: u64,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Serialize)]
struct Report {
    validators: usize,
    tps: f64,
    p50_ms: f64,
    p99_ms: f64,
    txs: u64,
    offered_rate: u64,
    submitted: u64,
    refused: u64,
    duration_s: f64,
    blocks: u64,
    mean_block_txs: f64,
    mean_block_interval_ms: f64,
}

fn free_port() -> Result<u16> {
    causeway_chain::testkit::free_port().ok_or_else(|| anyhow::anyhow!("no free port on 127.0.0.1 in 20000..32768"))
}

/// Run the benchmark.
pub fn run(args: Args) -> Result<()> {
    if args.validators == 0 || args.validators > 16 {
        bail!("--validators must be 1 to 16");
    }
    if args.accounts == 0 || args.batch == 0 || args.rate == 0 || args.duration == 0 {
        bail!("--accounts, --batch, --rate and --duration must be positive");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(bench(args))
}

async fn bench(args: Args) -> Result<()> {
    let n = args.validators;
    let dir = tempfile::tempdir()?;
    let (mut genesis, keys) = testkit::genesis("bench-ledger", n, Suite::Ed25519, HashAlg::Sha256);
    let node_keys: Vec<NodeKey> = (0..n).map(|i| NodeKey::from_seed([i as u8 + 1; 32])).collect();
    for (v, k) in genesis.validators.iter_mut().zip(&node_keys) {
        v.node_id = Some(k.peer_id().to_string());
    }
    let cash = Denom::new("cash").map_err(anyhow::Error::msg)?;
    let senders: Vec<SecretKey> = (0..args.accounts)
        .map(|i| {
            let mut seed = [7u8; 32];
            seed[..8].copy_from_slice(&(i as u64).to_le_bytes());
            SecretKey::from_bytes(Suite::Ed25519, &seed)
        })
        .collect::<Result<_, _>>()?;
    genesis.assets.push(GenesisAsset {
        denom: cash.clone(),
        issuer: senders[0].public_key().address(),
        balances: senders.iter().map(|k| (k.public_key().address(), Amount(1_000_000_000))).collect(),
    });
    genesis.genesis_time = causeway_chain::node::now();

    // Pre-sign the whole offered load: rounds of one transfer per account, nonce = round.
    let total = args.rate * args.duration;
    let rounds = total.div_ceil(args.accounts as u64);
    eprintln!("signing {total} transfers from {} accounts…", args.accounts);
    let mut txs: Vec<Vec<u8>> = Vec::with_capacity(total as usize);
    let mut hashes: Vec<Hash> = Vec::with_capacity(total as usize);
    'sign: for nonce in 0..rounds {
        for (i, k) in senders.iter().enumerate() {
            if txs.len() as u64 >= total {
                break 'sign;
            }
            let to = senders[(i + 1) % senders.len()].public_key().address();
            let tx = Transaction {
                chain_id: genesis.chain_id.clone(),
                signer: k.public_key(),
                nonce,
                messages: vec![Message::Transfer { to, denom: cash.clone(), amount: Amount(1) }],
            }
            .sign(k);
            let bytes = tx.encode();
            hashes.push(HashAlg::Sha256.hash(&bytes));
            txs.push(bytes);
        }
    }

    // Start the validators and their gateways.
    let ports: Vec<u16> = (0..n).map(|_| free_port()).collect::<Result<_>>()?;
    let addr = |i: usize| -> Result<Multiaddr> { Ok(format!("/ip4/127.0.0.1/tcp/{}", ports[i]).parse()?) };
    let mut nodes = Vec::new();
    let mut gateways = Vec::new();
    let mut clients = Vec::new();
    for i in 0..n {
        let mut net = NetConfig::new(genesis.chain_id.to_string(), addr(i)?, node_keys[i].clone());
        for j in (0..n).filter(|&j| j != i) {
            net.bootstrap.push(addr(j)?.with_p2p(node_keys[j].peer_id()).map_err(|a| anyhow::anyhow!("{a}"))?);
        }
        let setup = NodeSetup {
            genesis: genesis.clone(),
            moniker: format!("v{i}"),
            data_dir: dir.path().join(format!("node{i}")),
            validator_key: Some(keys[i].clone()),
            net,
            mempool: MempoolLimits { max_txs: args.mempool_txs, max_bytes: 512 * 1024 * 1024 },
            app: AppOptions::default(),
            timeouts: Some(RoundTimeouts::default()),
            extensions: vec![],
            min_block_interval: Duration::from_millis(args.block_interval_ms),
        };
        let node = Node::start(setup).await.context("starting a validator")?;
        let api: Arc<dyn NodeApi> = node.shared().clone();
        let gw = gateway::serve(api, GatewayConfig { listen: "127.0.0.1:0".into(), ..GatewayConfig::default() }).await?;
        clients.push(GatewayClient::new(&gw.url())?);
        gateways.push(gw);
        nodes.push(node);
    }

    // Wait for the chain to run.
    let start_wait = Instant::now();
    while nodes.iter().any(|n| n.shared().status().height < 2) {
        if start_wait.elapsed() > Duration::from_secs(60) {
            bail!("the validators did not reach height 2 within 60 s");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Watch commits on validator 0.
    let submitted_at: Arc<Mutex<HashMap<Hash, Instant>>> = Arc::new(Mutex::new(HashMap::with_capacity(txs.len())));
    let latencies: Arc<Mutex<Vec<f64>>> = Arc::new(Mutex::new(Vec::with_capacity(txs.len())));
    let committed_in_window = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let blocks_in_window = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let t0 = Instant::now();
    let window = Duration::from_secs(args.duration);
    let mut blocks = nodes[0].shared().blocks.subscribe();
    let watcher = {
        let submitted_at = submitted_at.clone();
        let latencies = latencies.clone();
        let committed = committed_in_window.clone();
        let nblocks = blocks_in_window.clone();
        tokio::spawn(async move {
            loop {
                match blocks.recv().await {
                    Ok(c) => {
                        let now = Instant::now();
                        let in_window = now.duration_since(t0) <= window;
                        if in_window {
                            committed.fetch_add(c.tx_hashes.len() as u64, std::sync::atomic::Ordering::Relaxed);
                            nblocks.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        }
                        let map = submitted_at.lock().unwrap_or_else(|p| p.into_inner());
                        let mut lat = latencies.lock().unwrap_or_else(|p| p.into_inner());
                        for h in &c.tx_hashes {
                            if let Some(t) = map.get(h) {
                                lat.push(now.duration_since(*t).as_secs_f64() * 1000.0);
                            }
                        }
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(_) => return,
                }
            }
        })
    };

    // Offer the load: one batch every batch/rate seconds, round-robin over the gateways. A sender's transactions
    // always go to the same gateway, so each validator sees each sender's nonces in order.
    let per_gateway: Vec<Vec<usize>> = (0..n)
        .map(|g| (0..txs.len()).filter(|i| (i % args.accounts) % n == g).collect())
        .collect();
    let mut cursors = vec![0usize; n];
    let interval = Duration::from_secs_f64(args.batch as f64 / args.rate as f64);
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let submitted = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let refused = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut in_flight = tokio::task::JoinSet::new();
    let mut g = 0usize;
    let txs = Arc::new(txs);
    while t0.elapsed() < window {
        ticker.tick().await;
        let idx = &per_gateway[g];
        let from = cursors[g];
        let to = (from + args.batch).min(idx.len());
        cursors[g] = to;
        let gi = g;
        g = (g + 1) % n;
        if from == to {
            continue;
        }
        let batch: Vec<usize> = idx[from..to].to_vec();
        {
            let now = Instant::now();
            let mut map = submitted_at.lock().unwrap_or_else(|p| p.into_inner());
            for &i in &batch {
                map.insert(hashes[i], now);
            }
        }
        let client = clients[gi].clone();
        let txs = txs.clone();
        let (submitted, refused) = (submitted.clone(), refused.clone());
        // Bound concurrent requests so a saturated node gets back-pressure instead of an unbounded queue.
        while in_flight.len() >= 4 * n {
            let _ = in_flight.join_next().await;
        }
        in_flight.spawn(async move {
            let encoded: Vec<Vec<u8>> = batch.iter().map(|&i| txs[i].clone()).collect();
            match client.submit_batch_encoded(&encoded).await {
                Ok(view) => {
                    submitted.fetch_add(view.accepted as u64, std::sync::atomic::Ordering::Relaxed);
                    refused.fetch_add(view.rejected as u64, std::sync::atomic::Ordering::Relaxed);
                }
                Err(_) => {
                    refused.fetch_add(encoded.len() as u64, std::sync::atomic::Ordering::Relaxed);
                }
            }
        });
    }
    let elapsed = t0.elapsed().as_secs_f64();
    // Let what is in flight finish (latencies of late transactions still count; throughput is the window's).
    while in_flight.join_next().await.is_some() {}
    tokio::time::sleep(Duration::from_secs(3)).await;
    watcher.abort();

    let committed = committed_in_window.load(std::sync::atomic::Ordering::Relaxed);
    let nblocks = blocks_in_window.load(std::sync::atomic::Ordering::Relaxed);
    let mut lat = latencies.lock().unwrap_or_else(|p| p.into_inner()).clone();
    lat.sort_by(|a, b| a.total_cmp(b));
    let pct = |p: f64| if lat.is_empty() { f64::NAN } else { lat[((lat.len() - 1) as f64 * p) as usize] };
    let report = Report {
        validators: n,
        tps: committed as f64 / elapsed,
        p50_ms: pct(0.50),
        p99_ms: pct(0.99),
        txs: committed,
        offered_rate: args.rate,
        submitted: submitted.load(std::sync::atomic::Ordering::Relaxed),
        refused: refused.load(std::sync::atomic::Ordering::Relaxed),
        duration_s: elapsed,
        blocks: nblocks,
        mean_block_txs: if nblocks == 0 { 0.0 } else { committed as f64 / nblocks as f64 },
        mean_block_interval_ms: if nblocks == 0 { 0.0 } else { elapsed * 1000.0 / nblocks as f64 },
    };
    for gw in gateways {
        let _ = gw.stop().await;
    }
    for node in nodes {
        node.stop().await;
    }
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!(
            "{} validators: {:.0} tx/s committed ({} txs in {:.1} s, offered {} tx/s), latency p50 {:.0} ms p99 {:.0} ms, {} blocks of {:.0} txs every {:.0} ms, {} refused",
            report.validators,
            report.tps,
            report.txs,
            report.duration_s,
            report.offered_rate,
            report.p50_ms,
            report.p99_ms,
            report.blocks,
            report.mean_block_txs,
            report.mean_block_interval_ms,
            report.refused
        );
    }
    Ok(())
}
