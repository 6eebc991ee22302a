//! `relayer.toml`: the chains a relayer serves (the hub and the members it relays for), its key, batching,
//! retries and where it serves metrics. Every field is checked on load; a bad file is a clear error, never a panic.
//!
//! ```toml
//! key = "relayer.key"            # default signing key (a key file of `causeway-relayer keys generate`)
//! listen = "127.0.0.1:9200"      # /metrics and /health (optional)
//! poll_ms = 1000                 # a pass at least this often, besides the block subscriptions
//!
//! [batch]
//! max_messages = 500            # per transaction (a full backlog fills them; a trickle goes at once)
//! max_bytes = 786432
//! commit_timeout_ms = 30000
//! pipeline = 4                   # transactions waiting for commit at once per target chain
//!
//! [retry]
//! min_delay_ms = 100
//! max_delay_ms = 5000
//! max_retries = 6
//!
//! [hub]
//! id = "hub"
//! gateway = "http://127.0.0.1:26650"
//!
//! [[members]]                    # the members listed are the paths served (member ↔ hub)
//! id = "alpha"
//! family = "native"
//! gateway = "http://127.0.0.1:26660"
//! key = "alpha-relayer.key"      # optional: sign transactions on this chain with another key
//! token = "…"                    # optional: gateway access token
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use causeway_light_client::ChainId;
use serde::Deserialize;

use crate::chain::RetryPolicy;
use crate::engine::EngineConfig;

/// Why a configuration is unusable.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("reading {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// It is not valid TOML of the expected shape.
    #[error("{path}: {source}")]
    Parse {
        /// The file.
        path: String,
        /// Why.
        source: toml::de::Error,
    },
    /// A value is out of range or inconsistent.
    #[error("{path}: {reason}")]
    Invalid {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
}

/// A chain family the relayer can relay for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    /// A Causeway ledger (the hub and native members).
    #[default]
    Native,
    /// A Tendermint/CometBFT chain (verification only, see `causeway-relayer verify`).
    Tendermint,
    /// A Hyperledger Besu chain (verification only).
    Besu,
}

/// One chain.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChainConfig {
    /// Its chain id.
    pub id: String,
    /// Its family.
    #[serde(default)]
    pub family: Family,
    /// Its gateway, `http://host:port`.
    pub gateway: String,
    /// The key to sign with on this chain (default: the top-level key).
    #[serde(default)]
    pub key: Option<PathBuf>,
    /// A gateway access token, if the gateway requires one.
    #[serde(default)]
    pub token: Option<String>,
}

/// `[batch]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BatchConfig {
    /// Messages per transaction.
    pub max_messages: usize,
    /// Bytes of messages per transaction.
    pub max_bytes: usize,
    /// How long to wait for a transaction to commit.
    pub commit_timeout_ms: u64,
    /// Transactions waiting for commit at once on one target chain.
    pub pipeline: usize,
}

impl Default for BatchConfig {
    fn default() -> Self {
        let e = EngineConfig::default();
        BatchConfig {
            max_messages: e.batch_max,
            max_bytes: e.batch_bytes,
            commit_timeout_ms: e.commit_timeout.as_millis() as u64,
            pipeline: e.pipeline,
        }
    }
}

/// `[retry]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetryConfig {
    /// First delay.
    pub min_delay_ms: u64,
    /// Longest delay.
    pub max_delay_ms: u64,
    /// Attempts after the first.
    pub max_retries: usize,
}

impl Default for RetryConfig {
    fn default() -> Self {
        let r = RetryPolicy::default();
        RetryConfig {
            min_delay_ms: r.min_delay.as_millis() as u64,
            max_delay_ms: r.max_delay.as_millis() as u64,
            max_retries: r.max_retries,
        }
    }
}

/// The whole file.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RelayerConfig {
    /// The default signing key file (relative paths are relative to the config file).
    pub key: PathBuf,
    /// Where to serve `/metrics` and `/health`.
    #[serde(default)]
    pub listen: Option<SocketAddr>,
    /// A pass at least this often.
    #[serde(default = "default_poll")]
    pub poll_ms: u64,
    /// How often the misbehaviour watch compares each client's trusted headers with the chain's own.
    #[serde(default = "default_watch")]
    pub watch_ms: u64,
    /// Batching.
    #[serde(default)]
    pub batch: BatchConfig,
    /// Retries.
    #[serde(default)]
    pub retry: RetryConfig,
    /// The hub.
    pub hub: ChainConfig,
    /// The members served.
    #[serde(default)]
    pub members: Vec<ChainConfig>,
}

fn default_poll() -> u64 {
    1000
}

fn default_watch() -> u64 {
    2000
}

impl RelayerConfig {
    /// Read and check `path`; relative key paths become relative to its directory.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let p = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: p.clone(),
            source,
        })?;
        let mut cfg: RelayerConfig = toml::from_str(&text).map_err(|source| ConfigError::Parse {
            path: p.clone(),
            source,
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        let rebase = |k: &mut PathBuf| {
            if k.is_relative() {
                *k = base.join(&*k);
            }
        };
        rebase(&mut cfg.key);
        for c in std::iter::once(&mut cfg.hub).chain(cfg.members.iter_mut()) {
            if let Some(k) = &mut c.key {
                rebase(k);
            }
        }
        cfg.check()
            .map_err(|reason| ConfigError::Invalid { path: p, reason })?;
        Ok(cfg)
    }

    /// Consistency checks.
    pub fn check(&self) -> Result<(), String> {
        let mut ids = std::collections::BTreeSet::new();
        for c in std::iter::once(&self.hub).chain(&self.members) {
            ChainId::new(&c.id).map_err(|e| format!("chain id {:?}: {e}", c.id))?;
            if !ids.insert(c.id.clone()) {
                return Err(format!("chain {} is listed twice", c.id));
            }
            if !(c.gateway.starts_with("http://") || c.gateway.starts_with("https://")) {
                return Err(format!(
                    "chain {}: gateway {:?} is not an http(s):// URL",
                    c.id, c.gateway
                ));
            }
            if c.family != Family::Native {
                return Err(format!(
                    "chain {}: relaying for {:?} chains is not supported; their headers and proofs are checked \
                     offline with `causeway-relayer verify`",
                    c.id, c.family
                ));
            }
        }
        if self.members.is_empty() {
            return Err("no [[members]]: nothing to relay".into());
        }
        if self.batch.max_messages == 0 || self.batch.max_messages > causeway_chain::tx::MAX_MESSAGES - 8 {
            return Err(format!(
                "batch.max_messages must be 1..={}",
                causeway_chain::tx::MAX_MESSAGES - 8
            ));
        }
        if self.batch.max_bytes < 4096 || self.batch.max_bytes > causeway_chain::tx::MAX_TX_BYTES * 7 / 8 {
            return Err(format!(
                "batch.max_bytes must be 4096..={}",
                causeway_chain::tx::MAX_TX_BYTES * 7 / 8
            ));
        }
        if self.batch.pipeline == 0 || self.batch.pipeline > 64 {
            return Err("batch.pipeline must be 1..=64".into());
        }
        if self.batch.commit_timeout_ms == 0 || self.poll_ms == 0 || self.watch_ms == 0 {
            return Err("batch.commit_timeout_ms, poll_ms and watch_ms must be positive".into());
        }
        if self.retry.min_delay_ms == 0 || self.retry.max_delay_ms < self.retry.min_delay_ms {
            return Err("retry: need 0 < min_delay_ms <= max_delay_ms".into());
        }
        Ok(())
    }

    /// The engine settings.
    pub fn engine(&self) -> EngineConfig {
        EngineConfig {
            batch_max: self.batch.max_messages,
            batch_bytes: self.batch.max_bytes,
            commit_timeout: Duration::from_millis(self.batch.commit_timeout_ms),
            pipeline: self.batch.pipeline,
            watch_every: Duration::from_millis(self.watch_ms),
            ..EngineConfig::default()
        }
    }

    /// The retry policy.
    pub fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy {
            min_delay: Duration::from_millis(self.retry.min_delay_ms),
            max_delay: Duration::from_millis(self.retry.max_delay_ms),
            max_retries: self.retry.max_retries,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<RelayerConfig, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("relayer.toml");
        std::fs::write(&p, text).unwrap();
        RelayerConfig::load(&p)
    }

    const GOOD: &str = r#"
key = "k.json"
[hub]
id = "hub"
gateway = "http://127.0.0.1:1"
[[members]]
id = "alpha"
gateway = "http://127.0.0.1:2"
"#;

    #[test]
    fn a_minimal_file_loads_with_defaults_and_rebased_key() {
        let c = load(GOOD).unwrap();
        assert!(c.key.is_absolute() && c.key.ends_with("k.json"));
        assert_eq!(c.batch.max_messages, EngineConfig::default().batch_max);
        assert_eq!(c.members.len(), 1);
        assert_eq!(c.engine().watch_every, EngineConfig::default().watch_every);
        let c = load(&GOOD.replace("key = ", "watch_ms = 500\nkey = ")).unwrap();
        assert_eq!(c.engine().watch_every, Duration::from_millis(500));
    }

    #[test]
    fn bad_files_are_clear_errors() {
        for (text, needle) in [
            ("key = ", "relayer.toml"),
            (
                &GOOD.replace("http://127.0.0.1:2", "ftp://x") as &str,
                "not an http",
            ),
            (&GOOD.replace("\"alpha\"", "\"hub\""), "listed twice"),
            (
                &GOOD.replace("[[members]]", "[[members]]\nfamily = \"besu\""),
                "not supported",
            ),
            (&format!("{GOOD}\n[batch]\nmax_messages = 0\n"), "max_messages"),
            (&format!("{GOOD}\n[batch]\npipeline = 0\n"), "pipeline"),
            (&GOOD.replace("key = ", "watch_ms = 0\nkey = "), "watch_ms"),
            (&format!("{GOOD}\nsurprise = 1\n"), "unknown field"),
            (
                "key = \"k\"\n[hub]\nid = \"hub\"\ngateway = \"http://a:1\"\n",
                "no [[members]]",
            ),
        ] {
            let e = load(text).unwrap_err().to_string();
            assert!(e.contains(needle), "{e} should mention {needle}");
        }
    }
}
