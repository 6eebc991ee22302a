//! The tokio task that owns the libp2p swarm: it carries out [`Command`]s, turns swarm events into
//! [`NetEvent`]s, answers inbound requests, and redials bootstrap peers.
//!
//! Behaviour order matters: the allow-list comes first, so a connection it denies is dropped before any other
//! behaviour (gossipsub, request-response) learns of it, and it never yields an event.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;
use futures::{FutureExt, StreamExt};
use libp2p::gossipsub::{self, IdentTopic, MessageAuthenticity, PublishError, TopicHash, ValidationMode};
use libp2p::multiaddr::Protocol;
use libp2p::request_response::{self, OutboundFailure, OutboundRequestId, ProtocolSupport, ResponseChannel};
use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{
    allow_block_list, connection_limits, noise, ping, tcp, yamux, Multiaddr, PeerId, StreamProtocol, Swarm,
};
use rand::rngs::StdRng;
use rand::SeedableRng;
use sha2::{Digest, Sha256};
use tokio::sync::{mpsc, oneshot};

use super::codec::BytesCodec;
use super::config::{bootstrap_peer, NetConfig};
use super::redial::Redialer;
use super::{sync_protocol, Command, NetError, NetEvent, Topic};

const LOG: &str = "chain::net";

/// Room for gossipsub's protobuf framing (author, sequence number, topic) on top of a payload limit.
const FRAME_OVERHEAD: usize = 1024;

/// Largest gossipsub control message (IHAVE/IWANT/IDONTWANT lists) sent or accepted.
const MAX_CONTROL_BYTES: usize = 1024 * 1024;

/// How long `spawn` waits for the listener to come up.
const LISTEN_TIMEOUT: Duration = Duration::from_secs(10);

/// Connections idle this long are closed; allowed peers normally always have gossip streams open.
const IDLE_TIMEOUT: Duration = Duration::from_secs(3600);
/// How often each connection is probed.
const PING_INTERVAL: Duration = Duration::from_secs(3);
/// A probe unanswered for this long closes the connection.
const PING_TIMEOUT: Duration = Duration::from_secs(6);

#[derive(NetworkBehaviour)]
struct Behaviour {
    // First: denies connections before the others see them.
    allow: allow_block_list::Behaviour<allow_block_list::AllowedPeers>,
    limits: connection_limits::Behaviour,
    gossip: gossipsub::Behaviour,
    sync: request_response::Behaviour<BytesCodec>,
    /// Liveness probes: a connection whose peer stops answering is closed, so the redial logic reconnects
    /// (a cut network leaves TCP connections that would otherwise look alive for many minutes).
    ping: ping::Behaviour,
}

/// What we know of one connected peer.
#[derive(Default)]
struct PeerState {
    /// Which of our topics it subscribes to (indexed like [`Topic::ALL`]).
    subscribed: [bool; 2],
    /// Whether the node was told [`NetEvent::PeerConnected`].
    reported: bool,
}

/// What woke the task up.
enum Step {
    Command(Option<Command>),
    Swarm(SwarmEvent<BehaviourEvent>),
    Reply((PeerId, ResponseChannel<Vec<u8>>, Option<Vec<u8>>)),
    Flush(bool),
    Dial,
}

type ReplyFuture = BoxFuture<'static, (PeerId, ResponseChannel<Vec<u8>>, Option<Vec<u8>>)>;

pub(super) struct Task {
    swarm: Swarm<Behaviour>,
    config: NetConfig,
    topics: [TopicHash; 2],
    commands: mpsc::Receiver<Command>,
    events: mpsc::Sender<NetEvent>,
    /// Events not yet taken by the node; gossip and requests beyond `event_buffer` are dropped.
    outbox: VecDeque<NetEvent>,
    app_gone: bool,
    peers: HashMap<PeerId, PeerState>,
    pending_requests: HashMap<OutboundRequestId, oneshot::Sender<Result<Vec<u8>, NetError>>>,
    pending_replies: FuturesUnordered<ReplyFuture>,
    redialer: Redialer,
    rng: StdRng,
    listen_addrs: Vec<Multiaddr>,
    dropped_events: u64,
}

fn setup_error(e: impl std::fmt::Display) -> NetError {
    NetError::Setup(e.to_string())
}

fn build_swarm(config: &NetConfig, topics: &[TopicHash; 2]) -> Result<Swarm<Behaviour>, NetError> {
    let l = &config.limits;
    let g = &config.gossip;
    let largest_payload = l.max_tx_gossip_bytes.max(l.max_consensus_gossip_bytes);
    let mut gossip = gossipsub::ConfigBuilder::default();
    gossip
        .heartbeat_interval(Duration::from_millis(g.heartbeat_ms))
        .heartbeat_initial_delay(Duration::from_millis(g.heartbeat_ms.min(100)))
        .mesh_n(g.mesh_n)
        .mesh_n_low(g.mesh_n_low)
        .mesh_n_high(g.mesh_n_high)
        .mesh_outbound_min(g.mesh_n_low.min(g.mesh_n / 2))
        .gossip_lazy(g.gossip_lazy)
        .flood_publish(g.flood_publish)
        .duplicate_cache_time(Duration::from_millis(g.duplicate_cache_ms))
        .connection_handler_queue_len(g.send_queue_len)
        // The default (16 KiB) is smaller than one IHAVE listing gossipsub's own default of 5,000 message ids
        // (~34 bytes each); a receiver resets the stream on an oversized control message and every message queued
        // on it is lost. At thousands of messages per heartbeat that happens every heartbeat.
        .max_control_message_size(MAX_CONTROL_BYTES)
        // Messages are not signed by gossipsub: the transport is authenticated (noise) and the payloads carry
        // their own signatures. The author field is kept so forwarders skip the author.
        .validation_mode(ValidationMode::Permissive)
        // The id covers the author and its per-publish sequence number: copies of one publication are
        // deduplicated on the way, but a deliberate re-publication (consensus rebroadcasts the same signed vote
        // until its round ends) is a new message. With a content-only id gossipsub refuses to publish the same
        // bytes again for the whole duplicate-cache window, and a vote lost before the mesh formed stays lost.
        .message_id_fn(|message: &gossipsub::Message| {
            let mut hash = Sha256::new();
            hash.update(message.topic.as_str().as_bytes());
            hash.update([0]);
            if let Some(source) = &message.source {
                hash.update(source.to_bytes());
            }
            hash.update(message.sequence_number.unwrap_or(0).to_be_bytes());
            hash.update(&message.data);
            gossipsub::MessageId::new(&hash.finalize())
        })
        .max_transmit_size(largest_payload + FRAME_OVERHEAD)
        .max_transmit_size_for_topic(l.max_consensus_gossip_bytes + FRAME_OVERHEAD, topics[0].clone())
        .max_transmit_size_for_topic(l.max_tx_gossip_bytes + FRAME_OVERHEAD, topics[1].clone());
    let gossip_config = gossip.build().map_err(setup_error)?;

    let keypair = config.node_key.keypair();
    let local = keypair.public().to_peer_id();
    let gossip =
        gossipsub::Behaviour::new(MessageAuthenticity::Author(local), gossip_config).map_err(setup_error)?;

    let protocol = StreamProtocol::try_from_owned(sync_protocol(&config.chain_id)).map_err(setup_error)?;
    let codec = BytesCodec {
        max_request: l.max_request_bytes,
        max_response: l.max_response_bytes,
    };
    let sync = request_response::Behaviour::with_codec(
        codec,
        [(protocol, ProtocolSupport::Full)],
        request_response::Config::default()
            .with_request_timeout(config.request_timeout())
            .with_max_concurrent_streams(l.max_concurrent_requests),
    );

    let mut allow = allow_block_list::Behaviour::<allow_block_list::AllowedPeers>::default();
    for peer in &config.allowed_peers {
        allow.allow_peer(*peer);
    }
    let limits = connection_limits::Behaviour::new(
        connection_limits::ConnectionLimits::default()
            .with_max_pending_incoming(Some(64))
            .with_max_established_per_peer(Some(2)),
    );

    let swarm = libp2p::SwarmBuilder::with_existing_identity(keypair)
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            noise::Config::new,
            yamux::Config::default,
        )
        .map_err(setup_error)?
        // Peers may be named by host name (`/dns4/v1/tcp/26600`), as containers and operators' hosts are.
        .with_dns()
        .map_err(setup_error)?
        .with_behaviour(|_| Behaviour {
            allow,
            limits,
            gossip,
            sync,
            ping: ping::Behaviour::new(ping::Config::new().with_interval(PING_INTERVAL).with_timeout(PING_TIMEOUT)),
        })
        .map_err(setup_error)?
        .with_swarm_config(|c| c.with_idle_connection_timeout(IDLE_TIMEOUT))
        .build();
    Ok(swarm)
}

impl Task {
    /// Build the swarm, bind the listener, subscribe, and schedule the bootstrap dials.
    pub(super) async fn start(
        config: NetConfig,
        commands: mpsc::Receiver<Command>,
        events: mpsc::Sender<NetEvent>,
    ) -> Result<Self, NetError> {
        let topics = Topic::ALL.map(|t| IdentTopic::new(t.name(&config.chain_id)).hash());
        let mut swarm = build_swarm(&config, &topics)?;
        for topic in Topic::ALL {
            let topic = IdentTopic::new(topic.name(&config.chain_id));
            swarm
                .behaviour_mut()
                .gossip
                .subscribe(&topic)
                .map_err(setup_error)?;
        }

        let listen_error = |reason: String| NetError::Listen {
            addr: config.listen.clone(),
            reason,
        };
        // libp2p's TCP listeners set SO_REUSEPORT, so a second node on a taken port would bind and silently
        // share the port's inbound connections with the first. A plain bind (no SO_REUSEPORT) finds out first.
        if let Some(addr) = tcp_socket_addr(&config.listen).filter(|a| a.port() != 0) {
            drop(std::net::TcpListener::bind(addr).map_err(|e| listen_error(e.to_string()))?);
        }
        let listener = swarm
            .listen_on(config.listen.clone())
            .map_err(|e| listen_error(e.to_string()))?;
        let first_addr = tokio::time::timeout(LISTEN_TIMEOUT, async {
            loop {
                match swarm.select_next_some().await {
                    SwarmEvent::NewListenAddr { listener_id, address } if listener_id == listener => {
                        return Ok(address);
                    }
                    SwarmEvent::ListenerClosed {
                        listener_id, reason, ..
                    } if listener_id == listener => {
                        return Err(listen_error(format!("listener closed: {reason:?}")));
                    }
                    SwarmEvent::ListenerError { listener_id, error } if listener_id == listener => {
                        return Err(listen_error(error.to_string()));
                    }
                    _ => {}
                }
            }
        })
        .await
        .map_err(|_| listen_error("no address after 10 s".into()))??;
        tracing::info!(target: LOG, peer = %swarm.local_peer_id(), addr = %first_addr, "listening");

        let mut bootstrap = Vec::with_capacity(config.bootstrap.len());
        for addr in &config.bootstrap {
            let peer = bootstrap_peer(addr)?;
            if !config.allowed_peers.contains(&peer) {
                tracing::warn!(target: LOG, %peer, "bootstrap peer is not on the allow-list; it will not be dialled until it is");
            }
            bootstrap.push((peer, addr.clone()));
        }
        let redialer = Redialer::new(config.redial.clone(), bootstrap, Instant::now());

        Ok(Self {
            swarm,
            topics,
            commands,
            events,
            outbox: VecDeque::new(),
            app_gone: false,
            peers: HashMap::new(),
            pending_requests: HashMap::new(),
            pending_replies: FuturesUnordered::new(),
            redialer,
            rng: StdRng::from_entropy(),
            listen_addrs: vec![first_addr],
            dropped_events: 0,
            config,
        })
    }

    /// Run until shut down or until every handle is dropped.
    pub(super) async fn run(mut self) {
        self.dial_due();
        let shutdown_done = loop {
            self.flush_outbox();
            let next_dial = self.redialer.next_due().map(tokio::time::Instant::from_std);
            let wants_flush = !self.outbox.is_empty() && !self.app_gone;
            let step = tokio::select! {
                command = self.commands.recv() => Step::Command(command),
                event = self.swarm.select_next_some() => Step::Swarm(event),
                Some(reply) = self.pending_replies.next(), if !self.pending_replies.is_empty() => Step::Reply(reply),
                permit = self.events.clone().reserve_owned(), if wants_flush => Step::Flush(permit.is_ok()),
                _ = sleep_until(next_dial), if next_dial.is_some() => Step::Dial,
            };
            match step {
                Step::Command(Some(Command::Shutdown(done))) => break Some(done),
                Step::Command(Some(command)) => self.on_command(command),
                Step::Command(None) => break None,
                Step::Swarm(event) => self.on_swarm_event(event),
                Step::Reply((peer, channel, answer)) => self.send_reply(peer, channel, answer),
                // Room in the channel: the next loop turn's flush uses it.
                Step::Flush(true) => {}
                Step::Flush(false) => self.app_closed(),
                Step::Dial => self.dial_due(),
            }
        };
        let local = *self.swarm.local_peer_id();
        // Dropping the swarm closes the listener and every connection.
        drop(self);
        tracing::info!(target: LOG, peer = %local, "network stopped");
        if let Some(done) = shutdown_done {
            let _ = done.send(());
        }
    }

    fn topic_of(&self, hash: &TopicHash) -> Option<Topic> {
        Topic::ALL
            .into_iter()
            .zip(&self.topics)
            .find(|(_, h)| *h == hash)
            .map(|(t, _)| t)
    }

    fn is_allowed(&self, peer: &PeerId) -> bool {
        self.swarm.behaviour().allow.allowed_peers().contains(peer)
    }

    fn on_command(&mut self, command: Command) {
        match command {
            Command::Publish { topic, data, done } => {
                let hash = self.topics[topic as usize].clone();
                let result = self
                    .swarm
                    .behaviour_mut()
                    .gossip
                    .publish(hash, data)
                    .map(|_| ())
                    .map_err(|e| match e {
                        PublishError::Duplicate => NetError::Duplicate,
                        PublishError::NoPeersSubscribedToTopic => NetError::NoPeers(topic),
                        other => NetError::Publish(other.to_string()),
                    });
                let _ = done.send(result);
            }
            Command::Request { peer, data, done } => {
                if !self.is_allowed(&peer) {
                    let _ = done.send(Err(NetError::NotAllowed(peer)));
                } else if !self.swarm.is_connected(&peer) {
                    let _ = done.send(Err(NetError::NotConnected(peer)));
                } else {
                    let id = self.swarm.behaviour_mut().sync.send_request(&peer, data);
                    self.pending_requests.insert(id, done);
                }
            }
            Command::Peers(done) => {
                let ready = self
                    .peers
                    .iter()
                    .filter(|(_, s)| s.reported)
                    .map(|(p, _)| *p)
                    .collect();
                let _ = done.send(ready);
            }
            Command::ListenAddrs(done) => {
                let _ = done.send(self.listen_addrs.clone());
            }
            Command::SetAllowed(list, done) => {
                self.set_allowed(list);
                let _ = done.send(());
            }
            // Handled by the loop.
            Command::Shutdown(done) => {
                let _ = done.send(());
            }
        }
    }

    fn set_allowed(&mut self, list: Vec<PeerId>) {
        let new: HashSet<PeerId> = list.into_iter().collect();
        let old = self.swarm.behaviour().allow.allowed_peers().clone();
        for peer in old.difference(&new) {
            // Closes every connection to the peer.
            self.swarm.behaviour_mut().allow.disallow_peer(*peer);
            self.forget_peer(peer);
        }
        let now = Instant::now();
        for peer in new.difference(&old) {
            self.swarm.behaviour_mut().allow.allow_peer(*peer);
            self.redialer.retry_now(peer, now);
        }
        tracing::info!(target: LOG, allowed = new.len(), "allow-list replaced");
    }

    /// Stop reporting `peer` (it was disallowed); its connections are being closed.
    fn forget_peer(&mut self, peer: &PeerId) {
        if let Some(state) = self.peers.remove(peer) {
            if state.reported {
                self.report(NetEvent::PeerDisconnected(*peer));
            }
        }
    }

    fn on_swarm_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::Behaviour(BehaviourEvent::Gossip(event)) => self.on_gossip(event),
            SwarmEvent::Behaviour(BehaviourEvent::Sync(event)) => self.on_sync(event),
            SwarmEvent::Behaviour(BehaviourEvent::Ping(ping::Event { peer, connection, result: Err(error) })) => {
                tracing::debug!(target: "chain::net", %peer, %error, "peer stopped answering pings: closing the connection");
                self.swarm.close_connection(connection);
            }
            SwarmEvent::Behaviour(BehaviourEvent::Ping(_)) => {}
            SwarmEvent::Behaviour(BehaviourEvent::Allow(never))
            | SwarmEvent::Behaviour(BehaviourEvent::Limits(never)) => match never {},
            SwarmEvent::ConnectionEstablished {
                peer_id,
                num_established,
                endpoint,
                ..
            } => {
                tracing::debug!(target: LOG, peer = %peer_id, addr = %endpoint.get_remote_address(), "connected");
                if num_established.get() == 1 && self.is_allowed(&peer_id) {
                    self.peers.entry(peer_id).or_default();
                }
                self.redialer.connected(&peer_id);
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established,
                cause,
                ..
            } => {
                tracing::debug!(target: LOG, peer = %peer_id, ?cause, "connection closed");
                if num_established == 0 {
                    self.forget_peer(&peer_id);
                    self.redialer
                        .disconnected(&peer_id, Instant::now(), &mut self.rng);
                }
            }
            SwarmEvent::OutgoingConnectionError {
                peer_id: Some(peer),
                error,
                ..
            } => {
                tracing::debug!(target: LOG, %peer, %error, "dial failed");
                if !self.swarm.is_connected(&peer) {
                    self.redialer.dial_failed(&peer, Instant::now(), &mut self.rng);
                }
            }
            SwarmEvent::IncomingConnectionError {
                send_back_addr,
                error,
                ..
            } => {
                tracing::debug!(target: LOG, from = %send_back_addr, %error, "inbound connection refused");
            }
            SwarmEvent::NewListenAddr { address, .. } if !self.listen_addrs.contains(&address) => {
                self.listen_addrs.push(address);
            }
            SwarmEvent::ExpiredListenAddr { address, .. } => self.listen_addrs.retain(|a| *a != address),
            SwarmEvent::ListenerClosed { reason, .. } => {
                tracing::error!(target: LOG, ?reason, "listener closed");
            }
            SwarmEvent::ListenerError { error, .. } => {
                tracing::warn!(target: LOG, %error, "listener error");
            }
            _ => {}
        }
    }

    fn on_gossip(&mut self, event: gossipsub::Event) {
        match event {
            gossipsub::Event::Message {
                propagation_source,
                message,
                ..
            } => {
                let Some(topic) = self.topic_of(&message.topic) else {
                    return;
                };
                let author_ok = message.source.is_none_or(|a| self.is_allowed(&a));
                if !self.is_allowed(&propagation_source) || !author_ok {
                    tracing::debug!(target: LOG, from = %propagation_source, "dropped gossip from a peer not on the allow-list");
                    return;
                }
                let limit = self.config.limits.gossip_limit(topic);
                if message.data.len() > limit {
                    let len = message.data.len();
                    tracing::warn!(target: LOG, from = %propagation_source, ?topic, len, limit, "dropped oversized gossip");
                    return;
                }
                self.deliver(NetEvent::Gossip {
                    topic,
                    from: propagation_source,
                    data: message.data,
                });
            }
            gossipsub::Event::Subscribed { peer_id, topic } => self.on_subscription(peer_id, &topic, true),
            gossipsub::Event::Unsubscribed { peer_id, topic } => self.on_subscription(peer_id, &topic, false),
            gossipsub::Event::SlowPeer {
                peer_id,
                failed_messages,
            } => {
                tracing::warn!(target: LOG, peer = %peer_id, ?failed_messages, "peer too slow: gossip to it dropped");
            }
            gossipsub::Event::GossipsubNotSupported { peer_id } => {
                tracing::warn!(target: LOG, peer = %peer_id, "peer does not speak gossipsub");
            }
        }
    }

    /// A connected peer (un)subscribed: it is a peer of this chain while it subscribes to both topics.
    fn on_subscription(&mut self, peer: PeerId, topic: &TopicHash, subscribed: bool) {
        let Some(topic) = self.topic_of(topic) else { return };
        let Some(state) = self.peers.get_mut(&peer) else {
            return;
        };
        state.subscribed[topic as usize] = subscribed;
        let member = state.subscribed.iter().all(|s| *s);
        if member != state.reported {
            state.reported = member;
            if member {
                tracing::info!(target: LOG, %peer, "peer joined");
                self.report(NetEvent::PeerConnected(peer));
            } else {
                tracing::info!(target: LOG, %peer, "peer left the chain's topics");
                self.report(NetEvent::PeerDisconnected(peer));
            }
        }
    }

    fn on_sync(&mut self, event: request_response::Event<Vec<u8>, Vec<u8>>) {
        match event {
            request_response::Event::Message { peer, message, .. } => match message {
                request_response::Message::Request { request, channel, .. } => {
                    self.on_request(peer, request, channel)
                }
                request_response::Message::Response { request_id, response } => {
                    if let Some(done) = self.pending_requests.remove(&request_id) {
                        let _ = done.send(Ok(response));
                    }
                }
            },
            request_response::Event::OutboundFailure {
                peer,
                request_id,
                error,
                ..
            } => {
                tracing::debug!(target: LOG, %peer, %error, "request failed");
                if let Some(done) = self.pending_requests.remove(&request_id) {
                    let error = match error {
                        OutboundFailure::Timeout => NetError::Timeout(peer),
                        other => NetError::Request {
                            peer,
                            reason: other.to_string(),
                        },
                    };
                    let _ = done.send(Err(error));
                }
            }
            request_response::Event::InboundFailure { peer, error, .. } => {
                tracing::warn!(target: LOG, %peer, %error, "inbound request failed");
            }
            request_response::Event::ResponseSent { .. } => {}
        }
    }

    fn on_request(&mut self, from: PeerId, data: Vec<u8>, channel: ResponseChannel<Vec<u8>>) {
        if !self.is_allowed(&from) {
            tracing::debug!(target: LOG, %from, "dropped request from a peer not on the allow-list");
            return;
        }
        let (reply, answer) = oneshot::channel();
        if !self.deliver(NetEvent::Request { from, data, reply }) {
            return; // dropping `channel` refuses the request
        }
        let wait = self.config.request_timeout();
        self.pending_replies.push(
            async move {
                let answer = tokio::time::timeout(wait, answer).await.ok().and_then(Result::ok);
                (from, channel, answer)
            }
            .boxed(),
        );
    }

    fn send_reply(&mut self, peer: PeerId, channel: ResponseChannel<Vec<u8>>, answer: Option<Vec<u8>>) {
        let Some(answer) = answer else {
            tracing::debug!(target: LOG, %peer, "the node did not answer a request; refused");
            return;
        };
        let limit = self.config.limits.max_response_bytes;
        if answer.len() > limit {
            tracing::warn!(target: LOG, %peer, len = answer.len(), limit, "refused to send an oversized response");
            return;
        }
        if self
            .swarm
            .behaviour_mut()
            .sync
            .send_response(channel, answer)
            .is_err()
        {
            tracing::debug!(target: LOG, %peer, "response channel closed before the answer was ready");
        }
    }

    /// Queue a peer event for the node; these are never dropped while the node listens.
    fn report(&mut self, event: NetEvent) {
        if !self.app_gone {
            self.outbox.push_back(event);
        }
    }

    /// Queue gossip or a request for the node; false (and a log line) if the buffer is full.
    fn deliver(&mut self, event: NetEvent) -> bool {
        if self.app_gone {
            return false;
        }
        if self.outbox.len() >= self.config.limits.event_buffer {
            self.dropped_events += 1;
            if self.dropped_events.is_power_of_two() {
                tracing::warn!(target: LOG, dropped = self.dropped_events, "node is not keeping up: network events dropped");
            }
            return false;
        }
        self.outbox.push_back(event);
        true
    }

    /// Hand queued events to the channel while it has room.
    fn flush_outbox(&mut self) {
        while let Some(event) = self.outbox.pop_front() {
            match self.events.try_send(event) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(event)) => {
                    self.outbox.push_front(event);
                    return;
                }
                Err(mpsc::error::TrySendError::Closed(_)) => {
                    self.app_closed();
                    return;
                }
            }
        }
    }

    fn app_closed(&mut self) {
        if !self.app_gone {
            tracing::info!(target: LOG, "event receiver dropped; events are discarded from now on");
        }
        self.app_gone = true;
        self.outbox.clear();
    }

    fn dial_due(&mut self) {
        for (peer, addr) in self.redialer.due(Instant::now()) {
            if !self.is_allowed(&peer) {
                // Not allowed (yet): keep backing off; `set_allowed` retries at once when it is.
                self.redialer.dial_failed(&peer, Instant::now(), &mut self.rng);
                continue;
            }
            let opts = DialOpts::peer_id(peer)
                .addresses(vec![addr])
                .condition(PeerCondition::DisconnectedAndNotDialing)
                .build();
            match self.swarm.dial(opts) {
                Ok(()) => tracing::debug!(target: LOG, %peer, "dialling"),
                Err(libp2p::swarm::DialError::DialPeerConditionFalse(_)) => {
                    // Already connected or being dialled: a connection event will update the schedule.
                    if self.swarm.is_connected(&peer) {
                        self.redialer.connected(&peer);
                    }
                }
                Err(error) => {
                    tracing::debug!(target: LOG, %peer, %error, "dial refused");
                    self.redialer.dial_failed(&peer, Instant::now(), &mut self.rng);
                }
            }
        }
    }
}

/// The socket address of an `/ip4|ip6/…/tcp/…` multiaddr.
fn tcp_socket_addr(addr: &Multiaddr) -> Option<SocketAddr> {
    let mut parts = addr.iter();
    let ip: IpAddr = match parts.next()? {
        Protocol::Ip4(ip) => ip.into(),
        Protocol::Ip6(ip) => ip.into(),
        _ => return None,
    };
    match parts.next()? {
        Protocol::Tcp(port) => Some(SocketAddr::new(ip, port)),
        _ => None,
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => futures::future::pending().await,
    }
}
