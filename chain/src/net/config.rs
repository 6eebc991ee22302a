//! Network configuration and node identity.
//!
//! **Owns**: [`NetConfig`] (what an operator writes in the node's TOML), its defaults and its validation, and
//! [`NodeKey`], the node's libp2p identity. A node's p2p key is separate from its validator key (as CometBFT's
//! `node_key` is): losing or rotating one never touches the other.
//!
//! **Must never**: reveal the secret seed in `Debug` output or logs.

use std::time::Duration;

use causeway_light_client::{PublicKey, SecretKey};
use libp2p::identity::{self, Keypair};
use libp2p::multiaddr::Protocol;
use libp2p::{Multiaddr, PeerId};
use serde::{Deserialize, Serialize};

use super::{NetError, Topic};

/// Everything the network shell needs to run one node.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetConfig {
    /// The chain this node belongs to. Topic and protocol names include it, so two chains never mix even if
    /// their nodes can reach each other.
    pub chain_id: String,
    /// Where to listen, e.g. `/ip4/0.0.0.0/tcp/26656` (`/tcp/0` picks a free port).
    pub listen: Multiaddr,
    /// The node's p2p identity (32-byte ed25519 seed, hex in TOML).
    pub node_key: NodeKey,
    /// The only peers that may connect, in either direction (validators and registered full nodes).
    #[serde(default)]
    pub allowed_peers: Vec<PeerId>,
    /// Peers dialled at start and redialled whenever they drop; each address must end in `/p2p/<peer id>`.
    #[serde(default)]
    pub bootstrap: Vec<Multiaddr>,
    /// Message size limits and queue bounds.
    #[serde(default)]
    pub limits: Limits,
    /// Gossipsub tuning.
    #[serde(default)]
    pub gossip: GossipTuning,
    /// How dropped bootstrap peers are redialled.
    #[serde(default)]
    pub redial: RedialConfig,
}

/// Size limits (bytes) and queue bounds. Anything over a limit is refused, never a crash.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Largest payload published or accepted on the transactions topic.
    pub max_tx_gossip_bytes: usize,
    /// Largest payload published or accepted on the consensus topic (a block proposal of ~20,000 transactions of
    /// ~200 bytes is ~4 MB).
    pub max_consensus_gossip_bytes: usize,
    /// Largest request sent or accepted.
    pub max_request_bytes: usize,
    /// Largest response sent or accepted.
    pub max_response_bytes: usize,
    /// Longest time an inbound request may wait for the application's reply, and the upper bound of any
    /// outbound request, in milliseconds.
    pub request_timeout_ms: u64,
    /// Most concurrent request streams per connection.
    pub max_concurrent_requests: usize,
    /// Events buffered for the application; when full, further gossip is dropped (and logged) and further
    /// requests are refused, so a slow application never stalls the network task.
    pub event_buffer: usize,
}

impl Limits {
    /// The payload limit of a gossip topic.
    pub fn gossip_limit(&self, topic: Topic) -> usize {
        match topic {
            Topic::Consensus => self.max_consensus_gossip_bytes,
            Topic::Txs => self.max_tx_gossip_bytes,
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_tx_gossip_bytes: 256 * 1024,
            max_consensus_gossip_bytes: 16 * 1024 * 1024,
            max_request_bytes: 1024 * 1024,
            max_response_bytes: 32 * 1024 * 1024,
            request_timeout_ms: 30_000,
            max_concurrent_requests: 128,
            event_buffer: 16_384,
        }
    }
}

/// Gossipsub parameters, defaulted for a small permissioned network in which every node connects to every
/// validator.
///
/// The defaults flood: a publisher sends each message straight to every connected subscriber, and nobody
/// forwards (`mesh_n = 0`) or advertises (`gossip_lazy = 0`). That is the cheapest delivery when every node that
/// must hear a message is connected to its publisher (validators to each other; full nodes to the validators),
/// and it measured about twice the throughput of gossipsub's forwarding mesh on 4 local nodes. A lost direct link
/// then loses messages until it is redialled: consensus tolerates that (rounds time out, lagging nodes sync).
/// Where nodes are not all connected to the publishers, set `mesh_n` (and `gossip_lazy`) above zero so messages
/// are forwarded and advertised.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GossipTuning {
    /// Heartbeat period (mesh maintenance, gossip emission), in milliseconds.
    pub heartbeat_ms: u64,
    /// Target number of mesh peers a node forwards every message to (gossipsub's D); `0` turns forwarding off.
    pub mesh_n: usize,
    /// Fewest mesh peers before grafting more (D_low).
    pub mesh_n_low: usize,
    /// Most mesh peers before pruning (D_high).
    pub mesh_n_high: usize,
    /// Number of non-mesh peers told each heartbeat which messages we have (IHAVE); `0` turns that off.
    pub gossip_lazy: usize,
    /// Send a published message to every subscribed peer, not only the mesh.
    pub flood_publish: bool,
    /// How long message ids (SHA-256 of topic and payload) are remembered to drop duplicates, in milliseconds.
    /// The same bytes published again within this time are refused as duplicates.
    pub duplicate_cache_ms: u64,
    /// Messages queued per peer connection before new ones are dropped.
    pub send_queue_len: usize,
}

impl Default for GossipTuning {
    fn default() -> Self {
        Self {
            heartbeat_ms: 100,
            mesh_n: 0,
            mesh_n_low: 0,
            mesh_n_high: 12,
            gossip_lazy: 0,
            flood_publish: true,
            duplicate_cache_ms: 10_000,
            send_queue_len: 5_000,
        }
    }
}

/// Exponential backoff with jitter for redialling bootstrap peers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RedialConfig {
    /// Delay before the first redial, in milliseconds.
    pub initial_ms: u64,
    /// Upper bound of the delay, in milliseconds.
    pub max_ms: u64,
    /// Each delay is drawn uniformly from `[d × (1 − jitter), d × (1 + jitter)]`, capped at `max_ms`; in `[0, 1]`.
    pub jitter: f64,
}

impl Default for RedialConfig {
    fn default() -> Self {
        Self {
            initial_ms: 500,
            max_ms: 30_000,
            jitter: 0.2,
        }
    }
}

impl NetConfig {
    /// A configuration with default limits, tuning and redial policy.
    pub fn new(chain_id: impl Into<String>, listen: Multiaddr, node_key: NodeKey) -> Self {
        Self {
            chain_id: chain_id.into(),
            listen,
            node_key,
            allowed_peers: Vec::new(),
            bootstrap: Vec::new(),
            limits: Limits::default(),
            gossip: GossipTuning::default(),
            redial: RedialConfig::default(),
        }
    }

    /// Parse a TOML document.
    pub fn from_toml(text: &str) -> Result<Self, NetError> {
        let config: Self = toml::from_str(text).map_err(|e| NetError::Config(e.to_string()))?;
        config.validate()?;
        Ok(config)
    }

    /// Check what serde cannot: non-empty chain id, bootstrap addresses with a peer id, sane limits.
    pub fn validate(&self) -> Result<(), NetError> {
        let bad = |msg: String| Err(NetError::Config(msg));
        if self.chain_id.is_empty() || self.chain_id.len() > 64 || self.chain_id.contains('/') {
            return bad(format!(
                "chain id {:?} must be 1 to 64 characters without '/'",
                self.chain_id
            ));
        }
        for addr in &self.bootstrap {
            bootstrap_peer(addr)?;
        }
        let l = &self.limits;
        // Gossipsub refuses per-topic limits under 100 bytes; any real message is larger anyway.
        for (name, value) in [
            ("max_tx_gossip_bytes", l.max_tx_gossip_bytes),
            ("max_consensus_gossip_bytes", l.max_consensus_gossip_bytes),
            ("max_request_bytes", l.max_request_bytes),
            ("max_response_bytes", l.max_response_bytes),
        ] {
            if !(100..=MAX_MESSAGE_BYTES).contains(&value) {
                return bad(format!(
                    "limits.{name} = {value} must be within 100..={MAX_MESSAGE_BYTES}"
                ));
            }
        }
        if l.request_timeout_ms == 0 || l.max_concurrent_requests == 0 || l.event_buffer == 0 {
            return bad(
                "limits.request_timeout_ms, max_concurrent_requests and event_buffer must be > 0".into(),
            );
        }
        let g = &self.gossip;
        if g.heartbeat_ms == 0 || g.duplicate_cache_ms == 0 || g.send_queue_len == 0 {
            return bad("gossip.heartbeat_ms, duplicate_cache_ms and send_queue_len must be > 0".into());
        }
        if !(g.mesh_n_low <= g.mesh_n && g.mesh_n <= g.mesh_n_high) {
            return bad(format!(
                "gossip mesh sizes must satisfy mesh_n_low ({}) <= mesh_n ({}) <= mesh_n_high ({})",
                g.mesh_n_low, g.mesh_n, g.mesh_n_high
            ));
        }
        if g.mesh_n > 0 && g.mesh_n_low == 0 {
            return bad("gossip.mesh_n_low must be > 0 when mesh_n > 0 (about 2/3 of mesh_n), or the mesh never grows".into());
        }
        let r = &self.redial;
        if r.initial_ms == 0 || r.max_ms < r.initial_ms || !(0.0..=1.0).contains(&r.jitter) {
            return bad("redial needs 0 < initial_ms <= max_ms and 0 <= jitter <= 1".into());
        }
        Ok(())
    }

    /// The request timeout as a [`Duration`].
    pub(crate) fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.limits.request_timeout_ms)
    }
}

/// Hard ceiling on any configured message limit (256 MiB): a typo must not let a peer make us buffer gigabytes.
pub const MAX_MESSAGE_BYTES: usize = 256 * 1024 * 1024;

/// The peer id at the end of a bootstrap address (`…/p2p/<peer id>`).
pub fn bootstrap_peer(addr: &Multiaddr) -> Result<PeerId, NetError> {
    match addr.iter().last() {
        Some(Protocol::P2p(peer)) => Ok(peer),
        _ => Err(NetError::Config(format!(
            "bootstrap address {addr} must end in /p2p/<peer id>"
        ))),
    }
}

/// A node's libp2p identity: an ed25519 key kept as its 32-byte seed.
///
/// In TOML it is the seed in hex. `Debug` shows only the peer id.
#[derive(Clone, PartialEq, Eq)]
pub struct NodeKey {
    seed: [u8; 32],
}

impl NodeKey {
    /// A fresh key from the operating system's randomness.
    pub fn generate() -> Self {
        let mut seed = [0u8; 32];
        rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut seed);
        Self { seed }
    }

    /// The key with this ed25519 seed (every 32-byte string is a valid seed).
    pub fn from_seed(seed: [u8; 32]) -> Self {
        Self { seed }
    }

    /// Reuse an ed25519 [`SecretKey`] of the light-client crate as a node key; other suites are refused because
    /// libp2p peer ids here are ed25519 only.
    pub fn from_secret_key(key: &SecretKey) -> Result<Self, NetError> {
        match key {
            SecretKey::Ed25519(_) => Ok(Self { seed: key.to_bytes() }),
            other => Err(NetError::Key(format!(
                "node keys are ed25519, not {:?}",
                other.suite()
            ))),
        }
    }

    fn ed25519(&self) -> identity::ed25519::Keypair {
        // The seed's length is fixed by its type, and libp2p accepts every 32-byte seed.
        let secret = identity::ed25519::SecretKey::try_from_bytes(self.seed)
            .expect("a 32-byte array is always a valid ed25519 seed");
        identity::ed25519::Keypair::from(secret)
    }

    /// The libp2p keypair.
    pub fn keypair(&self) -> Keypair {
        Keypair::from(self.ed25519())
    }

    /// The peer id other nodes put in their allow-lists.
    pub fn peer_id(&self) -> PeerId {
        self.keypair().public().to_peer_id()
    }

    /// The public key as the light-client crate spells it (what the chain's identity module registers).
    pub fn public_key(&self) -> PublicKey {
        PublicKey::Ed25519(self.ed25519().public().to_bytes())
    }
}

impl std::fmt::Debug for NodeKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "NodeKey({})", self.peer_id())
    }
}

impl Serialize for NodeKey {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(self.seed))
    }
}

impl<'de> Deserialize<'de> for NodeKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        let mut seed = [0u8; 32];
        hex::decode_to_slice(text.trim(), &mut seed)
            .map_err(|e| serde::de::Error::custom(format!("node_key must be 64 hex characters: {e}")))?;
        Ok(Self { seed })
    }
}

/// The peer id of a node whose p2p key the chain registered as a light-client [`PublicKey`] (ed25519 only).
pub fn peer_id_of(key: &PublicKey) -> Result<PeerId, NetError> {
    match key {
        PublicKey::Ed25519(bytes) => {
            let public = identity::ed25519::PublicKey::try_from_bytes(bytes)
                .map_err(|e| NetError::Key(format!("invalid ed25519 public key: {e}")))?;
            Ok(identity::PublicKey::from(public).to_peer_id())
        }
        other => Err(NetError::Key(format!(
            "node keys are ed25519, not {:?}",
            other.suite()
        ))),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failing test panics by design
mod tests {
    use super::*;
    use causeway_light_client::Suite;

    #[test]
    fn node_key_peer_id_matches_the_registered_public_key() {
        let key = NodeKey::from_seed([7; 32]);
        assert_eq!(peer_id_of(&key.public_key()).unwrap(), key.peer_id());
        let secret = SecretKey::from_bytes(Suite::Ed25519, &[7; 32]).unwrap();
        assert_eq!(NodeKey::from_secret_key(&secret).unwrap(), key);
        assert_ne!(NodeKey::from_seed([8; 32]).peer_id(), key.peer_id());
    }

    #[test]
    fn non_ed25519_keys_are_refused() {
        let sm2 = SecretKey::from_bytes(Suite::Secp256k1, &[7; 32]).unwrap();
        assert!(matches!(NodeKey::from_secret_key(&sm2), Err(NetError::Key(_))));
        assert!(matches!(peer_id_of(&sm2.public_key()), Err(NetError::Key(_))));
    }

    #[test]
    fn debug_hides_the_seed() {
        let key = NodeKey::from_seed([0xab; 32]);
        let shown = format!("{key:?}");
        assert!(!shown.contains("abab"), "{shown}");
        assert!(shown.contains(&key.peer_id().to_string()));
    }

    /// A commented example of the `[net]` part of a node's configuration.
    const EXAMPLE: &str = r#"
        # Topic and protocol names include the chain id.
        chain_id = "causeway-devnet"
        listen = "/ip4/0.0.0.0/tcp/26656"
        # 32-byte ed25519 seed, hex. Keep this file private.
        node_key = "0707070707070707070707070707070707070707070707070707070707070707"
        # Validators and registered full nodes; nobody else may connect.
        allowed_peers = ["12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo"]
        # Dialled at start and redialled when they drop.
        bootstrap = ["/ip4/10.0.0.2/tcp/26656/p2p/12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo"]

        [limits]                     # every field optional
        max_tx_gossip_bytes = 65536

        [gossip]
        heartbeat_ms = 50

        [redial]
        max_ms = 5000
    "#;

    #[test]
    fn example_toml_parses_with_defaults_for_the_rest() {
        let c = NetConfig::from_toml(EXAMPLE).unwrap();
        assert_eq!(c.node_key, NodeKey::from_seed([7; 32]));
        assert_eq!(c.allowed_peers.len(), 1);
        assert_eq!(bootstrap_peer(&c.bootstrap[0]).unwrap(), c.allowed_peers[0]);
        assert_eq!(c.limits.max_tx_gossip_bytes, 65536);
        assert_eq!(c.limits.max_request_bytes, Limits::default().max_request_bytes);
        assert_eq!(c.gossip.heartbeat_ms, 50);
        assert_eq!(c.redial.max_ms, 5000);
        assert_eq!(c.redial.initial_ms, RedialConfig::default().initial_ms);
        // Round trip through TOML.
        let again = NetConfig::from_toml(&toml::to_string(&c).unwrap()).unwrap();
        assert_eq!(again.node_key, c.node_key);
        assert_eq!(again.bootstrap, c.bootstrap);
    }

    #[test]
    fn bad_configs_are_typed_errors() {
        let cases = [
            (
                "unknown field",
                EXAMPLE.replace("[redial]", "[redial]\nbogus = 1"),
            ),
            ("short key", EXAMPLE.replace("\"0707070707", "\"07")),
            (
                "bootstrap without peer id",
                EXAMPLE.replace(
                    "/p2p/12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo\"]",
                    "\"]",
                ),
            ),
            (
                "bad multiaddr",
                EXAMPLE.replace("/ip4/0.0.0.0/tcp/26656", "not-an-address"),
            ),
            ("tiny limit", EXAMPLE.replace("65536", "10")),
            ("mesh order", EXAMPLE.replace("heartbeat_ms = 50", "mesh_n = 20")),
            (
                "mesh without low",
                EXAMPLE.replace("heartbeat_ms = 50", "mesh_n = 6"),
            ),
            ("jitter", EXAMPLE.replace("max_ms = 5000", "jitter = 2.0")),
            ("empty chain id", EXAMPLE.replace("causeway-devnet", "")),
        ];
        for (name, text) in cases {
            assert!(
                matches!(NetConfig::from_toml(&text), Err(NetError::Config(_))),
                "{name} accepted"
            );
        }
    }
}
