//! Gossip throughput of the network shell between local nodes on 127.0.0.1.
//!
//! One node publishes `count` distinct messages of `size` bytes as fast as the receivers keep up (at most
//! `window` messages ahead of the slowest one); every other node counts what it receives. Reported: messages per
//! second and payload MB/s as published (each message reaches every other node), with delivered MB/s summed over
//! receivers. All nodes run in this process on one tokio runtime.
//!
//! ```sh
//! cargo run --release -p causeway-chain --example net_throughput            # the standard matrix
//! cargo run --release -p causeway-chain --example net_throughput -- --nodes 4 --size 200 --count 50000
//! ```

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use causeway_chain::net::{spawn, Multiaddr, NetConfig, NetEvent, NetHandle, NodeKey, Topic};
use clap::Parser;
use tokio::sync::Notify;

#[derive(Parser, Debug)]
struct Args {
    /// Nodes (publisher included); without --size/--nodes the matrix 2 and 4 nodes × 200 B and 1 MiB runs.
    #[arg(long)]
    nodes: Option<usize>,
    /// Payload bytes per message.
    #[arg(long)]
    size: Option<usize>,
    /// Messages to publish (default: 50,000 small or 300 large).
    #[arg(long)]
    count: Option<u64>,
    /// Most messages in flight ahead of the slowest receiver (default: 2,000 small or 16 large).
    #[arg(long)]
    window: Option<u64>,
    /// Gossipsub mesh degree (0 turns forwarding off).
    #[arg(long)]
    mesh_n: Option<usize>,
    /// Gossipsub gossip_lazy (IHAVE fan-out to non-mesh peers).
    #[arg(long)]
    gossip_lazy: Option<usize>,
    /// Print one JSON object per run instead of a table row.
    #[arg(long)]
    json: bool,
}

struct Run {
    nodes: usize,
    size: usize,
    count: u64,
    window: u64,
}

struct Outcome {
    elapsed: Duration,
    delivered: u64,
}

fn config(i: usize, n: usize, bootstrap: Vec<Multiaddr>, args: &Args) -> NetConfig {
    let key = |j: usize| NodeKey::from_seed([j as u8 + 1; 32]);
    let listen = "/ip4/127.0.0.1/tcp/0".parse().expect("valid multiaddr");
    let mut c = NetConfig::new("bench", listen, key(i));
    c.allowed_peers = (0..n).filter(|j| *j != i).map(|j| key(j).peer_id()).collect();
    c.bootstrap = bootstrap;
    c.limits.max_consensus_gossip_bytes = 4 * 1024 * 1024;
    if let Some(lazy) = args.gossip_lazy {
        c.gossip.gossip_lazy = lazy;
    }
    if let Some(mesh_n) = args.mesh_n {
        c.gossip.mesh_n = mesh_n;
        c.gossip.mesh_n_low = (mesh_n * 2 / 3).max(mesh_n.min(1));
    }
    c
}

async fn run(r: &Run, args: &Args) -> anyhow::Result<Outcome> {
    // Start the nodes; node i dials nodes 0..i, then wait until each sees all the others.
    let mut handles: Vec<NetHandle> = Vec::new();
    let mut streams = Vec::new();
    let mut addrs: Vec<Multiaddr> = Vec::new();
    for i in 0..r.nodes {
        let (net, events) = spawn(config(i, r.nodes, addrs.clone(), args)).await?;
        let listen = net.listen_addrs().await?.remove(0);
        addrs.push(
            listen
                .with_p2p(net.local_peer_id())
                .map_err(|_| anyhow::anyhow!("bad address"))?,
        );
        handles.push(net);
        streams.push(events);
    }
    for events in &mut streams {
        let mut joined = 0;
        while joined < r.nodes - 1 {
            match tokio::time::timeout(Duration::from_secs(10), events.recv()).await {
                Ok(Some(NetEvent::PeerConnected(_))) => joined += 1,
                Ok(Some(_)) => {}
                _ => bail!("mesh did not form"),
            }
        }
    }

    // Receivers count; the publisher waits on the slowest.
    let progress = Arc::new(Notify::new());
    let counters: Vec<Arc<AtomicU64>> = (1..r.nodes).map(|_| Arc::new(AtomicU64::new(0))).collect();
    let mut receivers = Vec::new();
    for (mut events, counter) in streams.drain(1..).zip(counters.iter().cloned()) {
        let progress = progress.clone();
        let count = r.count;
        receivers.push(tokio::spawn(async move {
            while let Some(event) = events.recv().await {
                if let NetEvent::Gossip { .. } = event {
                    let seen = counter.fetch_add(1, Ordering::Relaxed) + 1;
                    progress.notify_one();
                    if seen == count {
                        break;
                    }
                }
            }
        }));
    }
    let slowest = || {
        counters
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .min()
            .unwrap_or(0)
    };

    let topic = if r.size > 64 * 1024 {
        Topic::Consensus
    } else {
        Topic::Txs
    };
    let publisher = handles[0].clone();
    let mut payload = vec![0u8; r.size];
    let started = Instant::now();
    for seq in 0..r.count {
        while seq.saturating_sub(slowest()) >= r.window {
            if tokio::time::timeout(Duration::from_secs(5), progress.notified())
                .await
                .is_err()
                && seq > slowest()
            {
                break; // receivers stalled: some messages were lost; report what arrived
            }
        }
        payload[..8].copy_from_slice(&seq.to_le_bytes());
        publisher
            .publish(topic, payload.clone())
            .await
            .with_context(|| format!("publish {seq}"))?;
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while slowest() < r.count && Instant::now() < deadline {
        let _ = tokio::time::timeout(Duration::from_millis(100), progress.notified()).await;
    }
    let elapsed = started.elapsed();
    let delivered = counters.iter().map(|c| c.load(Ordering::Relaxed)).sum();
    for net in &handles {
        net.shutdown().await?;
    }
    for receiver in receivers {
        let _ = receiver.await;
    }
    Ok(Outcome { elapsed, delivered })
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let matrix: Vec<(usize, usize)> = match (args.nodes, args.size) {
        (None, None) => vec![(2, 200), (4, 200), (2, 1 << 20), (4, 1 << 20)],
        (nodes, size) => vec![(nodes.unwrap_or(4), size.unwrap_or(200))],
    };
    if !args.json {
        println!(
            "{:>5} {:>9} {:>7} {:>9} {:>11} {:>11} {:>15} {:>6}",
            "nodes", "bytes", "window", "messages", "seconds", "msg/s", "MB/s (pub/dlv)", "lost"
        );
    }
    for (nodes, size) in matrix {
        if nodes < 2 || size < 8 {
            bail!("need at least 2 nodes and 8-byte messages");
        }
        let large = size > 64 * 1024;
        let r = Run {
            nodes,
            size,
            count: args.count.unwrap_or(if large { 300 } else { 50_000 }),
            window: args.window.unwrap_or(if large { 16 } else { 2_000 }),
        };
        let out = runtime.block_on(run(&r, &args))?;
        let secs = out.elapsed.as_secs_f64();
        let receivers = (nodes - 1) as u64;
        let lost = r.count * receivers - out.delivered;
        let msgs = out.delivered as f64 / receivers as f64 / secs;
        let mb = msgs * size as f64 / 1e6;
        if args.json {
            println!(
                "{{\"nodes\":{nodes},\"bytes\":{size},\"window\":{},\"messages\":{},\"seconds\":{secs:.3},\"msgs_per_s\":{msgs:.0},\"mb_per_s_published\":{mb:.2},\"mb_per_s_delivered\":{:.2},\"lost\":{lost}}}",
                r.window,
                r.count,
                mb * receivers as f64
            );
        } else {
            println!(
                "{nodes:>5} {size:>9} {:>7} {:>9} {secs:>11.3} {msgs:>11.0} {:>15} {lost:>6}",
                r.window,
                r.count,
                format!("{mb:.1}/{:.1}", mb * receivers as f64)
            );
        }
    }
    Ok(())
}
