//! A node's configuration file (TOML): where its data, genesis and keys are, and how it talks to the world.
//! Unknown fields are refused so a typo never silently falls back to a default.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Why a configuration could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Reading or writing failed.
    #[error("config file {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The TOML is malformed or has unknown fields.
    #[error("config file {path}: {reason}")]
    Parse {
        /// The file.
        path: String,
        /// The parser's message.
        reason: String,
    },
}

/// A node's configuration.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    /// A human name for logs and the explorer.
    pub moniker: String,
    /// Directory of the node's databases (state, blocks, consensus WAL). Relative paths are relative to the
    /// config file's directory.
    pub data_dir: PathBuf,
    /// The chain's genesis file.
    pub genesis: PathBuf,
    /// The validator's consensus key; absent for a full node that does not vote.
    #[serde(default)]
    pub validator_key: Option<PathBuf>,
    /// The node's p2p identity key (ed25519).
    pub node_key: PathBuf,
    /// Peer-to-peer settings.
    pub p2p: P2pConfig,
    /// Gateway (REST + WebSocket) settings.
    pub gateway: GatewayConfig,
    /// Mempool bounds.
    #[serde(default)]
    pub mempool: MempoolConfig,
    /// Storage settings.
    #[serde(default)]
    pub storage: StorageConfig,
    /// Consensus timing.
    #[serde(default)]
    pub consensus: ConsensusTiming,
}

/// Consensus timing, in milliseconds. Every validator of a chain should use the same values.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConsensusTiming {
    /// Least time between a block and its parent; transactions gather meanwhile.
    pub min_block_interval_ms: u64,
    /// Wait for a proposal (round 0).
    pub propose_ms: u64,
    /// Wait after 2/3 prevoted anything.
    pub prevote_ms: u64,
    /// Wait after 2/3 precommitted anything.
    pub precommit_ms: u64,
    /// Added to each step timeout per round.
    pub delta_ms: u64,
    /// Period of re-sending this validator's votes.
    pub rebroadcast_ms: u64,
}

impl Default for ConsensusTiming {
    fn default() -> Self {
        ConsensusTiming {
            min_block_interval_ms: 200,
            propose_ms: 1500,
            prevote_ms: 500,
            precommit_ms: 500,
            delta_ms: 250,
            rebroadcast_ms: 1000,
        }
    }
}

/// Peer-to-peer settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct P2pConfig {
    /// Listen address, a multiaddr such as `/ip4/0.0.0.0/tcp/26656`.
    pub listen: String,
    /// Peers to dial at start, multiaddrs ending in `/p2p/<peer id>`.
    #[serde(default)]
    pub bootstrap: Vec<String>,
    /// Peer ids allowed to connect besides the genesis validators' nodes (registered full nodes).
    #[serde(default)]
    pub allowed_peers: Vec<String>,
}

/// Gateway settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayConfig {
    /// Listen address, e.g. `127.0.0.1:8080`.
    pub listen: String,
}

/// Mempool bounds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MempoolConfig {
    /// Most transactions held.
    #[serde(default = "default_mempool_txs")]
    pub max_txs: usize,
    /// Most bytes held.
    #[serde(default = "default_mempool_bytes")]
    pub max_bytes: usize,
}

fn default_mempool_txs() -> usize {
    100_000
}

fn default_mempool_bytes() -> usize {
    64 * 1024 * 1024
}

impl Default for MempoolConfig {
    fn default() -> Self {
        MempoolConfig { max_txs: default_mempool_txs(), max_bytes: default_mempool_bytes() }
    }
}

/// Storage settings.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageConfig {
    /// Keep state of this many recent heights (proofs older than that are refused); absent keeps everything.
    #[serde(default)]
    pub retention: Option<u64>,
}

impl NodeConfig {
    /// Read a config file; relative paths in it are resolved against its directory.
    pub fn load(path: &Path) -> Result<NodeConfig, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ConfigError::Io { path: path.display().to_string(), source })?;
        let mut cfg: NodeConfig = toml::from_str(&text)
            .map_err(|e| ConfigError::Parse { path: path.display().to_string(), reason: e.to_string() })?;
        let base = path.parent().unwrap_or_else(|| Path::new("."));
        for p in [&mut cfg.data_dir, &mut cfg.genesis, &mut cfg.node_key] {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
        if let Some(p) = cfg.validator_key.as_mut().filter(|p| p.is_relative()) {
            *p = base.join(&*p);
        }
        Ok(cfg)
    }

    /// Write as TOML.
    pub fn save(&self, path: &Path) -> Result<(), ConfigError> {
        let text = toml::to_string_pretty(self)
            .map_err(|e| ConfigError::Parse { path: path.display().to_string(), reason: e.to_string() })?;
        std::fs::write(path, text).map_err(|source| ConfigError::Io { path: path.display().to_string(), source })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_parses_and_unknown_fields_are_refused() {
        let text = r#"
moniker = "alpha-0"
data_dir = "data"
genesis = "../genesis.json"
validator_key = "validator_key.json"
node_key = "node_key.json"

[p2p]
listen = "/ip4/127.0.0.1/tcp/26656"
bootstrap = []

[gateway]
listen = "127.0.0.1:8080"

[mempool]
max_txs = 5000
"#;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, text).unwrap();
        let cfg = NodeConfig::load(&path).unwrap();
        assert_eq!(cfg.mempool.max_txs, 5000);
        assert_eq!(cfg.mempool.max_bytes, default_mempool_bytes());
        assert_eq!(cfg.data_dir, dir.path().join("data"));
        std::fs::write(&path, text.replace("max_txs", "max_tx")).unwrap();
        assert!(matches!(NodeConfig::load(&path), Err(ConfigError::Parse { .. })));
    }
}
