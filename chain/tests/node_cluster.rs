//! Four validators in one process over real libp2p on 127.0.0.1: they agree on blocks, commit submitted
//! transactions exactly once, and a stopped validator restarted from its data directory catches up.
//!
//! Every wait polls a condition with a deadline; nothing asserts after a fixed sleep.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failing test panics by design

use std::path::Path;
use std::time::Duration;

use causeway_chain::consensus::RoundTimeouts;
use causeway_chain::genesis::{Genesis, GenesisAsset};
use causeway_chain::mempool::MempoolLimits;
use causeway_chain::message::{Amount, Denom, Message};
use causeway_chain::net::{Multiaddr, NetConfig, NodeKey};
use causeway_chain::node::{Node, NodeSetup};
use causeway_chain::testkit;
use causeway_chain::tx::Transaction;
use causeway_chain::app::AppOptions;
use causeway_light_client::{Hash, HashAlg, SecretKey, Suite};

const WAIT: Duration = Duration::from_secs(60);

fn free_port() -> u16 {
    causeway_chain::testkit::free_port().expect("a free port")
}

fn node_key(i: usize) -> NodeKey {
    NodeKey::from_seed([i as u8 + 40; 32])
}

fn fast_timeouts() -> RoundTimeouts {
    RoundTimeouts {
        propose: Duration::from_millis(800),
        prevote: Duration::from_millis(300),
        precommit: Duration::from_millis(300),
        delta: Duration::from_millis(200),
        rebroadcast: Duration::from_millis(700),
        max: Duration::from_secs(5),
    }
}

struct Cluster {
    genesis: Genesis,
    keys: Vec<SecretKey>,
    ports: Vec<u16>,
    user: SecretKey,
}

impl Cluster {
    fn new(n: usize) -> Cluster {
        let (mut genesis, keys) = testkit::genesis("cluster", n, Suite::Ed25519, HashAlg::Sha256);
        for (i, v) in genesis.validators.iter_mut().enumerate() {
            v.node_id = Some(node_key(i).peer_id().to_string());
        }
        let user = SecretKey::from_bytes(Suite::Ed25519, &[77; 32]).unwrap();
        genesis.assets.push(GenesisAsset {
            denom: Denom::new("cash").unwrap(),
            issuer: user.public_key().address(),
            balances: vec![(user.public_key().address(), Amount(1_000_000))],
        });
        let ports = (0..n).map(|_| free_port()).collect();
        Cluster { genesis, keys, ports, user }
    }

    fn addr(&self, i: usize) -> Multiaddr {
        format!("/ip4/127.0.0.1/tcp/{}", self.ports[i]).parse().unwrap()
    }

    fn setup(&self, i: usize, dir: &Path) -> NodeSetup {
        let mut net = NetConfig::new(self.genesis.chain_id.to_string(), self.addr(i), node_key(i));
        net.bootstrap = (0..self.ports.len())
            .filter(|&j| j != i)
            .map(|j| self.addr(j).with_p2p(node_key(j).peer_id()).unwrap())
            .collect();
        net.gossip.heartbeat_ms = 100;
        net.redial.initial_ms = 100;
        net.redial.max_ms = 500;
        NodeSetup {
            genesis: self.genesis.clone(),
            moniker: format!("v{i}"),
            data_dir: dir.join(format!("node{i}")),
            validator_key: Some(self.keys[i].clone()),
            net,
            mempool: MempoolLimits::default(),
            app: AppOptions::default(),
            timeouts: Some(fast_timeouts()),
            extensions: vec![],
            min_block_interval: Duration::from_millis(100),
        }
    }
}

async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !cond() {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn height(node: &Node) -> u64 {
    node.shared().status().height
}

fn tx_height(node: &Node, hash: &Hash) -> Option<u64> {
    node.shared().app().tx_location(hash).unwrap().map(|l| l.height)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_validators_agree_commit_once_and_a_restarted_one_catches_up() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = Cluster::new(4);
    let mut nodes = Vec::new();
    for i in 0..4 {
        nodes.push(Some(Node::start(cluster.setup(i, dir.path())).await.expect("node starts")));
    }
    let live = |nodes: &Vec<Option<Node>>| nodes.iter().flatten().map(height).collect::<Vec<_>>();
    wait_until("every validator at height 3", || live(&nodes).iter().all(|h| *h >= 3)).await;

    // Transactions submitted to different validators are committed exactly once, everywhere.
    let to = SecretKey::from_bytes(Suite::Ed25519, &[78; 32]).unwrap().public_key().address();
    let mut hashes = Vec::new();
    for nonce in 0..20u64 {
        let tx = Transaction {
            chain_id: cluster.genesis.chain_id.clone(),
            signer: cluster.user.public_key(),
            nonce,
            messages: vec![Message::Transfer { to, denom: Denom::new("cash").unwrap(), amount: Amount(3) }],
        }
        .sign(&cluster.user);
        let target = nodes[(nonce % 4) as usize].as_ref().unwrap();
        hashes.push(target.shared().submit(tx.clone()).await.expect("admitted"));
        // The same transaction again, through another validator, is not committed twice.
        let other = nodes[((nonce + 1) % 4) as usize].as_ref().unwrap();
        let _ = other.shared().submit(tx).await;
    }
    wait_until("every transaction committed on every validator", || {
        nodes.iter().flatten().all(|n| hashes.iter().all(|h| tx_height(n, h).is_some()))
    })
    .await;
    let first = nodes[0].as_ref().unwrap();
    for n in nodes.iter().flatten() {
        for h in &hashes {
            assert_eq!(tx_height(n, h), tx_height(first, h), "same inclusion height everywhere");
        }
    }
    // The recipient got exactly 20 × 3.
    {
        let app = first.shared().app();
        let view = app.store().latest_view();
        let bal = causeway_chain::exec::assets::balance(&view, &Denom::new("cash").unwrap(), &to).unwrap();
        assert_eq!(bal, Amount(60));
    }

    // Stop validator 3; the other three (3 of 4 > 2/3) keep committing.
    let stopped = nodes[3].take().unwrap();
    let h_stop = height(&stopped);
    stopped.stop().await;
    let target = live(&nodes).into_iter().max().unwrap() + 3;
    wait_until("three validators progress without the fourth", || live(&nodes).iter().all(|h| *h >= target)).await;

    // Restart it from its data directory: it catches up by block sync and then follows consensus.
    let restarted = Node::start(cluster.setup(3, dir.path())).await.expect("restart");
    assert!(height(&restarted) >= h_stop, "restart keeps what was committed");
    nodes[3] = Some(restarted);
    let goal = live(&nodes).into_iter().max().unwrap() + 2;
    wait_until("the restarted validator catches up and follows", || live(&nodes).iter().all(|h| *h >= goal)).await;

    // Every validator holds the same chain.
    let common = live(&nodes).into_iter().min().unwrap();
    for h in 1..=common {
        let ids: Vec<_> = nodes
            .iter()
            .flatten()
            .map(|n| n.shared().app().block(h).unwrap().unwrap().header.hash(HashAlg::Sha256))
            .collect();
        assert!(ids.windows(2).all(|w| w[0] == w[1]), "validators disagree at height {h}");
    }
    for n in nodes.into_iter().flatten() {
        n.stop().await;
    }
}
