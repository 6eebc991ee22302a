//! The network shell end to end: real libp2p nodes on 127.0.0.1 with ephemeral ports.
//!
//! Every wait is on an event with a deadline; nothing asserts after a fixed sleep.
#![allow(clippy::unwrap_used)] // a failing test panics by design

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use causeway_chain::net::{
    spawn, Multiaddr, NetConfig, NetError, NetEvent, NetHandle, NodeKey, PeerId, Topic,
};
use tokio::sync::mpsc;
use tokio::time::timeout;

const CHAIN: &str = "net-test";
const WAIT: Duration = Duration::from_secs(15);

fn key(i: u8) -> NodeKey {
    NodeKey::from_seed([i + 1; 32])
}

fn config(me: u8, allowed: &[u8], bootstrap: &[Multiaddr]) -> NetConfig {
    let mut c = NetConfig::new(CHAIN, "/ip4/127.0.0.1/tcp/0".parse().unwrap(), key(me));
    c.allowed_peers = allowed.iter().map(|i| key(*i).peer_id()).collect();
    c.bootstrap = bootstrap.to_vec();
    c.gossip.heartbeat_ms = 50;
    c.redial.initial_ms = 50;
    c.redial.max_ms = 400;
    c
}

/// Gossipsub's forwarding mesh and IHAVE gossip on (the defaults flood without forwarding).
fn forwarding(mut c: NetConfig) -> NetConfig {
    c.gossip.mesh_n = 6;
    c.gossip.mesh_n_low = 4;
    c.gossip.gossip_lazy = 6;
    c
}

fn flooding(c: NetConfig) -> NetConfig {
    c
}

struct Node {
    net: NetHandle,
    events: mpsc::Receiver<NetEvent>,
    /// Listen address, as bound.
    listen: Multiaddr,
    /// The same, ending in `/p2p/<peer id>`.
    addr: Multiaddr,
}

impl Node {
    async fn start(config: NetConfig) -> Node {
        let (net, events) = spawn(config).await.expect("node starts");
        let listen = net.listen_addrs().await.unwrap().remove(0);
        let addr = listen.clone().with_p2p(net.local_peer_id()).unwrap();
        Node {
            net,
            events,
            listen,
            addr,
        }
    }

    fn id(&self) -> PeerId {
        self.net.local_peer_id()
    }

    /// The next event matching `pick`, skipping the others; panics after `WAIT`.
    async fn wait_for<T>(&mut self, what: &str, mut pick: impl FnMut(NetEvent) -> Option<T>) -> T {
        let found = timeout(WAIT, async {
            loop {
                let event = self.events.recv().await.expect("event stream open");
                if let Some(found) = pick(event) {
                    return found;
                }
            }
        })
        .await;
        found.unwrap_or_else(|_| panic!("{}: timed out waiting for {what}", self.id()))
    }

    async fn wait_connected(&mut self, peers: &[PeerId]) {
        let mut missing: HashSet<PeerId> = peers.iter().copied().collect();
        while !missing.is_empty() {
            let peer = self
                .wait_for("peers", |e| match e {
                    NetEvent::PeerConnected(p) => Some(p),
                    _ => None,
                })
                .await;
            missing.remove(&peer);
        }
    }

    async fn next_gossip(&mut self) -> (Topic, PeerId, Vec<u8>) {
        self.wait_for("gossip", |e| match e {
            NetEvent::Gossip { topic, from, data } => Some((topic, from, data)),
            _ => None,
        })
        .await
    }
}

/// Answer every request with `answer(request)`, until the node's events end.
fn serve(
    mut events: mpsc::Receiver<NetEvent>,
    answer: fn(Vec<u8>) -> Vec<u8>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while let Some(event) = events.recv().await {
            if let NetEvent::Request { data, reply, .. } = event {
                let _ = reply.send(answer(data));
            }
        }
    })
}

fn reversed(mut data: Vec<u8>) -> Vec<u8> {
    data.reverse();
    data
}

fn doubled(data: Vec<u8>) -> Vec<u8> {
    data.repeat(2)
}

/// Nodes 0..n, each allowing all the others; node i bootstraps to nodes 0..i.
async fn cluster(n: u8, tune: fn(NetConfig) -> NetConfig) -> Vec<Node> {
    let all: Vec<u8> = (0..n).collect();
    let mut nodes: Vec<Node> = Vec::new();
    for i in 0..n {
        let others: Vec<u8> = all.iter().copied().filter(|j| *j != i).collect();
        let bootstrap: Vec<Multiaddr> = nodes.iter().map(|node| node.addr.clone()).collect();
        nodes.push(Node::start(tune(config(i, &others, &bootstrap))).await);
    }
    let ids: Vec<PeerId> = nodes.iter().map(Node::id).collect();
    for node in &mut nodes {
        let me = node.id();
        let others: Vec<PeerId> = ids.iter().copied().filter(|p| *p != me).collect();
        node.wait_connected(&others).await;
    }
    nodes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_flooding_nodes_deliver_every_message_to_every_other_node_exactly_once() {
    every_message_exactly_once(flooding).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_forwarding_nodes_deliver_every_message_to_every_other_node_exactly_once() {
    every_message_exactly_once(forwarding).await;
}

async fn every_message_exactly_once(tune: fn(NetConfig) -> NetConfig) {
    let mut nodes = cluster(4, tune).await;
    for node in &nodes {
        assert_eq!(node.net.peers().await.unwrap().len(), 3);
    }
    const PER_NODE: usize = 25;
    for (i, node) in nodes.iter().enumerate() {
        for k in 0..PER_NODE {
            let topic = if k.is_multiple_of(5) {
                Topic::Consensus
            } else {
                Topic::Txs
            };
            node.net
                .publish(topic, format!("{i}:{k}").into_bytes())
                .await
                .expect("published");
        }
    }
    // Then a fence from everyone: once a node has every fence and every message, anything duplicated before
    // the fences has arrived too.
    for (i, node) in nodes.iter().enumerate() {
        node.net
            .publish(Topic::Consensus, format!("fence:{i}").into_bytes())
            .await
            .unwrap();
    }
    for (i, node) in nodes.iter_mut().enumerate() {
        let mut seen: HashMap<Vec<u8>, usize> = HashMap::new();
        let mut fences = 0;
        let expected = 3 * PER_NODE;
        while fences < 3 || seen.len() < expected {
            let (topic, _, data) = node.next_gossip().await;
            let text = String::from_utf8(data.clone()).unwrap();
            if text.starts_with("fence:") {
                fences += 1;
                continue;
            }
            let (from, k) = text.split_once(':').unwrap();
            let k: usize = k.parse().unwrap();
            assert_ne!(from, i.to_string(), "a node never receives its own message");
            let want = if k.is_multiple_of(5) {
                Topic::Consensus
            } else {
                Topic::Txs
            };
            assert_eq!(topic, want, "{text} arrived on the wrong topic");
            *seen.entry(data).or_default() += 1;
        }
        assert_eq!(seen.len(), expected, "node {i} got every message");
        assert!(
            seen.values().all(|n| *n == 1),
            "node {i} got duplicates: {seen:?}"
        );
    }
    // Publishing the same bytes again is a new publication (consensus rebroadcasts rely on it), delivered again.
    nodes[0].net.publish(Topic::Consensus, b"0:0".to_vec()).await.expect("re-publication accepted");
    for node in nodes.iter_mut().skip(1) {
        loop {
            let (_, _, data) = node.next_gossip().await;
            if data == b"0:0" {
                break;
            }
        }
    }
    for node in &nodes {
        node.net.shutdown().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_not_on_the_allow_list_cannot_deliver_anything_and_is_disconnected() {
    // A allows only B; B allows A and X; X allows both and dials both. B forwards what it receives, so X's
    // messages do reach A's connection, through B.
    let (a, b, x) = (0, 1, 2);
    let mut node_a = Node::start(forwarding(config(a, &[b], &[]))).await;
    let mut node_b = Node::start(forwarding(config(b, &[a, x], std::slice::from_ref(&node_a.addr)))).await;
    node_a.wait_connected(&[node_b.id()]).await;
    node_b.wait_connected(&[node_a.id()]).await;
    let mut node_x = Node::start(forwarding(config(
        x,
        &[a, b],
        &[node_a.addr.clone(), node_b.addr.clone()],
    )))
    .await;
    node_b.wait_connected(&[node_x.id()]).await;
    node_x.wait_connected(&[node_b.id()]).await;

    // X's messages reach B (so X can publish), and B's own reach A; none of X's ever reach A, not even when B
    // forwards them.
    const ROUNDS: usize = 20;
    for k in 0..ROUNDS {
        node_x
            .net
            .publish(Topic::Txs, format!("x:{k}").into_bytes())
            .await
            .unwrap();
        node_b
            .net
            .publish(Topic::Txs, format!("b:{k}").into_bytes())
            .await
            .unwrap();
    }
    let mut from_b = 0;
    while from_b < ROUNDS {
        match node_a.events.recv().await.unwrap() {
            NetEvent::Gossip { from, data, .. } => {
                assert!(
                    data.starts_with(b"b:"),
                    "A got {:?} from {from}",
                    String::from_utf8_lossy(&data)
                );
                assert_eq!(from, node_b.id());
                from_b += 1;
            }
            NetEvent::PeerConnected(p) | NetEvent::PeerDisconnected(p) => assert_eq!(p, node_b.id()),
            other => panic!("A got {other:?}"),
        }
    }
    let mut from_x = 0;
    while from_x < ROUNDS {
        let (_, from, data) = node_b.next_gossip().await;
        if from == node_x.id() {
            assert!(data.starts_with(b"x:"));
            from_x += 1;
        }
    }
    assert_eq!(node_a.net.peers().await.unwrap(), vec![node_b.id()]);

    // B drops X from its allow-list: X is disconnected at once and can publish to nobody.
    node_b.net.set_allowed(vec![node_a.id()]).await.unwrap();
    let gone = node_b
        .wait_for("X disconnected", |e| match e {
            NetEvent::PeerDisconnected(p) => Some(p),
            _ => None,
        })
        .await;
    assert_eq!(gone, node_x.id());
    node_x
        .wait_for("B disconnected at X", |e| {
            matches!(e, NetEvent::PeerDisconnected(p) if p == node_b.id()).then_some(())
        })
        .await;
    assert_eq!(node_b.net.peers().await.unwrap(), vec![node_a.id()]);
    assert!(matches!(
        node_x.net.publish(Topic::Txs, b"late".to_vec()).await,
        Err(NetError::NoPeers(Topic::Txs))
    ));
    assert!(matches!(
        node_b.net.request(node_x.id(), b"hi".to_vec(), WAIT).await,
        Err(NetError::NotAllowed(p)) if p == node_x.id()
    ));
    // A and B still talk.
    node_a
        .net
        .publish(Topic::Consensus, b"still here".to_vec())
        .await
        .unwrap();
    let (topic, from, data) = node_b.next_gossip().await;
    assert_eq!(
        (topic, from, data),
        (Topic::Consensus, node_a.id(), b"still here".to_vec())
    );
    assert!(node_x.net.peers().await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_round_trip_and_time_out_on_a_silent_peer() {
    let mut nodes = cluster(3, flooding).await;
    let silent = nodes.pop().unwrap(); // never reads its events, so never answers
    let server = nodes.pop().unwrap();
    let client = nodes.pop().unwrap();
    let server_id = server.id();
    let server_net = server.net.clone();
    let responder = serve(server.events, reversed);

    let answer = client
        .net
        .request(server_id, b"ping".to_vec(), WAIT)
        .await
        .unwrap();
    assert_eq!(answer, b"gnip");
    // A large answer (1 MiB) and an empty one.
    let big: Vec<u8> = (0..1024 * 1024u32).map(|i| (i % 253) as u8).collect();
    let mut reversed = big.clone();
    reversed.reverse();
    assert_eq!(client.net.request(server_id, big, WAIT).await.unwrap(), reversed);
    assert_eq!(
        client.net.request(server_id, Vec::new(), WAIT).await.unwrap(),
        b""
    );

    let started = tokio::time::Instant::now();
    let result = client
        .net
        .request(silent.id(), b"anyone?".to_vec(), Duration::from_millis(300))
        .await;
    assert!(
        matches!(result, Err(NetError::Timeout(p)) if p == silent.id()),
        "{result:?}"
    );
    assert!(started.elapsed() < WAIT);

    // Unknown and disallowed peers fail at once; the client keeps working.
    let stranger = NodeKey::from_seed([99; 32]).peer_id();
    assert!(matches!(
        client.net.request(stranger, vec![1], WAIT).await,
        Err(NetError::NotAllowed(_))
    ));
    assert_eq!(
        client
            .net
            .request(server_id, b"again".to_vec(), WAIT)
            .await
            .unwrap(),
        b"niaga"
    );

    server_net.shutdown().await.unwrap();
    responder.await.unwrap();
    assert!(matches!(server_net.peers().await, Err(NetError::Stopped)));
    drop(silent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_messages_are_refused_and_the_node_keeps_working() {
    // A accepts defaults; B accepts at most 1 KiB of transaction gossip and 1 KiB requests.
    let (a, b) = (0, 1);
    let mut node_a = Node::start(config(a, &[b], &[])).await;
    let mut small = config(b, &[a], std::slice::from_ref(&node_a.addr));
    small.limits.max_tx_gossip_bytes = 1024;
    small.limits.max_request_bytes = 1024;
    small.limits.max_response_bytes = 1024;
    let mut node_b = Node::start(small).await;
    node_a.wait_connected(&[node_b.id()]).await;
    node_b.wait_connected(&[node_a.id()]).await;

    // Over B's own limit: refused before sending.
    let too_big = vec![7u8; 4096];
    let refused = node_b.net.publish(Topic::Txs, too_big.clone()).await;
    assert!(
        matches!(
            refused,
            Err(NetError::TooLarge {
                len: 4096,
                limit: 1024,
                ..
            })
        ),
        "{refused:?}"
    );
    let refused = node_b.net.request(node_a.id(), too_big.clone(), WAIT).await;
    assert!(matches!(refused, Err(NetError::TooLarge { .. })), "{refused:?}");

    // Within A's limits but over B's: A sends, B drops it. The small message after them, on the same stream,
    // arrives, and the large ones never do. (1,500 bytes is caught by B's own check, 4,096 already by
    // gossipsub's frame limit.)
    node_a.net.publish(Topic::Txs, vec![8u8; 1500]).await.unwrap();
    node_a.net.publish(Topic::Txs, too_big.clone()).await.unwrap();
    node_a.net.publish(Topic::Txs, b"small".to_vec()).await.unwrap();
    let (_, _, data) = node_b.next_gossip().await;
    assert_eq!(data, b"small");

    // A request over B's limit is refused by B; a small one right after is answered.
    let b_id = node_b.id();
    let b_net = node_b.net.clone();
    let responder = serve(node_b.events, doubled);
    let refused = node_a.net.request(b_id, too_big, WAIT).await;
    assert!(matches!(refused, Err(NetError::Request { .. })), "{refused:?}");
    assert_eq!(
        node_a.net.request(b_id, b"abc".to_vec(), WAIT).await.unwrap(),
        b"abcabc"
    );
    // B does not send an answer over its response limit: A sees a refusal, not an empty answer.
    let refused = node_a.net.request(b_id, vec![1u8; 600], WAIT).await;
    assert!(matches!(refused, Err(NetError::Request { .. })), "{refused:?}");
    assert_eq!(
        node_a.net.request(b_id, vec![1u8; 500], WAIT).await.unwrap(),
        vec![1u8; 1000]
    );
    assert_eq!(b_net.peers().await.unwrap(), vec![node_a.id()]);
    b_net.shutdown().await.unwrap();
    responder.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_node_is_redialled_and_receives_again() {
    // Node 0 dials nobody; the others have it as a bootstrap peer, so only their redialling can bring it back.
    let mut nodes = cluster(3, flooding).await;
    let old = nodes.remove(0);
    let listen = old.listen.clone();
    let id = old.id();
    old.net.shutdown().await.unwrap();
    drop(old);
    for node in &mut nodes {
        node.wait_for("node 0 gone", |e| {
            matches!(e, NetEvent::PeerDisconnected(p) if p == id).then_some(())
        })
        .await;
    }

    // Restart on the same port with the same key.
    let mut restarted_config = config(0, &[1, 2], &[]);
    restarted_config.listen = listen;
    let mut restarted = Node::start(restarted_config).await;
    assert_eq!(restarted.id(), id);
    restarted.wait_connected(&[nodes[0].id(), nodes[1].id()]).await;
    for node in &mut nodes {
        node.wait_for("node 0 back", |e| {
            matches!(e, NetEvent::PeerConnected(p) if p == id).then_some(())
        })
        .await;
    }
    nodes[1]
        .net
        .publish(Topic::Consensus, b"welcome back".to_vec())
        .await
        .unwrap();
    // It may come from node 1 directly or through node 2 first; either way, once.
    let (topic, _, data) = restarted.next_gossip().await;
    assert_eq!((topic, data), (Topic::Consensus, b"welcome back".to_vec()));
}

/// Listening on a port already taken is a typed error, not a panic.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_taken_port_is_a_listen_error() {
    let first = Node::start(config(0, &[], &[])).await;
    let mut second = config(1, &[], &[]);
    second.listen = first.net.listen_addrs().await.unwrap().remove(0);
    match spawn(second).await {
        Err(NetError::Listen { .. }) => {}
        other => panic!("expected a listen error, got {:?}", other.map(|_| ())),
    }
}

/// Nodes of two chains that allow each other connect, but share no topic and no sync protocol.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_chains_never_mix() {
    let mut ours = Node::start(config(0, &[1, 2], &[])).await;
    let mut mate = Node::start(config(1, &[0], std::slice::from_ref(&ours.addr))).await;
    let mut other_config = config(2, &[0], std::slice::from_ref(&ours.addr));
    other_config.chain_id = "another-chain".into();
    let other = Node::start(other_config).await;
    ours.wait_connected(&[mate.id()]).await;
    mate.wait_connected(&[ours.id()]).await;

    // The other chain's node connects (it is allowed: requests stop failing with `NotConnected`), but its sync
    // protocol is not ours, it has no peer on its topics, and it never becomes a peer of this chain.
    let asked = timeout(WAIT, async {
        loop {
            match other.net.request(ours.id(), b"sync?".to_vec(), WAIT).await {
                Err(NetError::NotConnected(_)) => tokio::time::sleep(Duration::from_millis(10)).await,
                answer => return answer,
            }
        }
    })
    .await
    .expect("the other chain's node connects");
    assert!(matches!(asked, Err(NetError::Request { .. })), "{asked:?}");
    assert!(matches!(
        other.net.publish(Topic::Txs, b"cross".to_vec()).await,
        Err(NetError::NoPeers(_))
    ));
    mate.net.publish(Topic::Txs, b"ours".to_vec()).await.unwrap();
    loop {
        match ours.events.recv().await.unwrap() {
            NetEvent::Gossip { data, .. } => {
                assert_eq!(data, b"ours");
                break;
            }
            NetEvent::PeerConnected(p) => assert_ne!(p, other.id()),
            other_event => panic!("unexpected {other_event:?}"),
        }
    }
    assert_eq!(ours.net.peers().await.unwrap(), vec![mate.id()]);
}
