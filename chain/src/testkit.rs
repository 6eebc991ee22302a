//! A chain without a network, for tests, simulations and benchmarks of everything above consensus (light clients,
//! the hub, relaying): one [`App`] whose blocks are decided by certificates that every validator key signs at once.
//!
//! The blocks, headers and certificates are real: the same bytes a network of validators would produce, verified
//! by the same light clients. Only the voting is skipped.

use std::path::Path;
use std::sync::Arc;

use causeway_light_client::{
    ChainId, CommitCertificate, CommitSig, HashAlg, Header, SecretKey, SignKind, Suite, Time, ValidatorSet,
};

use crate::app::{App, AppError, AppOptions, Committed};
use crate::exec::Extension;
use crate::genesis::{Genesis, GenesisValidator, Profile};
use crate::message::{Message, Params};
use crate::tx::{SignedTx, Transaction, TxError, VerifiedTx};

/// A chain run by one process that holds every validator key.
pub struct TestChain {
    app: App,
    keys: Vec<SecretKey>,
    clock: Time,
    block_interval_ns: u64,
}

/// A genesis for `chain_id` with `n` validators of `suite` (power 10 each), and their keys.
pub fn genesis(chain_id: &str, n: usize, suite: Suite, hash: HashAlg) -> (Genesis, Vec<SecretKey>) {
    let keys: Vec<SecretKey> = (0..n)
        .map(|i| {
            let mut seed = [0u8; 32];
            seed[..chain_id.len().min(24)].copy_from_slice(&chain_id.as_bytes()[..chain_id.len().min(24)]);
            seed[28..].copy_from_slice(&(i as u32 + 1).to_le_bytes());
            SecretKey::from_bytes(suite, &seed).unwrap_or_else(|_| SecretKey::generate(suite))
        })
        .collect();
    #[allow(clippy::expect_used)]
    let chain_id = ChainId::new(chain_id).expect("test chain ids are valid");
    let genesis = Genesis {
        chain_id,
        genesis_time: Time::from_secs(1_700_000_000),
        hash,
        app_version: 1,
        profile: Profile::Permissioned,
        validators: keys
            .iter()
            .enumerate()
            .map(|(i, k)| GenesisValidator { name: format!("v{i}"), pub_key: k.public_key(), power: 10, node_id: None })
            .collect(),
        params: Params::default(),
        orgs: vec![],
        assets: vec![],
        lineage: None,
    };
    (genesis, keys)
}

impl TestChain {
    /// Open a chain in `dir` (no fsync) from `genesis`, signing with `keys` (the genesis validators' keys, in any
    /// order; keys of later validators may be added with [`TestChain::add_key`]).
    pub fn open(
        dir: &Path,
        genesis: Genesis,
        keys: Vec<SecretKey>,
        extensions: Vec<Arc<dyn Extension>>,
    ) -> Result<TestChain, AppError> {
        let clock = genesis.genesis_time;
        let app = App::open(dir, genesis, extensions, AppOptions { sync: false, ..AppOptions::default() })?;
        let clock = if app.last_time() > clock { app.last_time() } else { clock };
        Ok(TestChain { app, keys, clock, block_interval_ns: 1_000_000_000 })
    }

    /// Open a chain born of a split or merge in `dir` from its carried-state snapshot (see [`App::open_carried`]).
    pub fn open_carried(
        dir: &Path,
        genesis: Genesis,
        keys: Vec<SecretKey>,
        carried: &mut dyn std::io::Read,
        extensions: Vec<Arc<dyn Extension>>,
    ) -> Result<TestChain, AppError> {
        let clock = genesis.genesis_time;
        let options = AppOptions { sync: false, ..AppOptions::default() };
        let app = App::open_carried(dir, genesis, carried, extensions, options, &indicatif::ProgressBar::hidden())?;
        let clock = if app.last_time() > clock { app.last_time() } else { clock };
        Ok(TestChain { app, keys, clock, block_interval_ns: 1_000_000_000 })
    }

    /// The application.
    pub fn app(&self) -> &App {
        &self.app
    }

    /// The chain id.
    pub fn chain_id(&self) -> &ChainId {
        self.app.chain_id()
    }

    /// The time the next block will carry.
    pub fn next_time(&self) -> Time {
        Time(self.clock.0 + self.block_interval_ns)
    }

    /// Move the clock forward (blocks carry this clock plus one interval).
    pub fn advance(&mut self, d: std::time::Duration) {
        self.clock = self.clock.plus(d);
    }

    /// Sign with one more key (a validator added by governance).
    pub fn add_key(&mut self, key: SecretKey) {
        self.keys.push(key);
    }

    /// Sign `messages` as `key` with the signer's next nonce on chain.
    pub fn sign(&self, key: &SecretKey, messages: Vec<Message>) -> Result<SignedTx, AppError> {
        let nonce = crate::exec::accounts::account(&self.app.store().latest_view(), &key.public_key().address())?.nonce;
        Ok(Transaction { chain_id: self.app.chain_id().clone(), signer: key.public_key(), nonce, messages }.sign(key))
    }

    /// Produce the next block with `txs` and commit it with a certificate signed by every validator of its height.
    pub fn produce(&mut self, txs: Vec<SignedTx>) -> Result<Committed, TestChainError> {
        let alg = self.app.hash_alg();
        let verified: Vec<VerifiedTx> = txs
            .into_iter()
            .map(|t| t.verify(self.app.chain_id(), alg))
            .collect::<Result<_, _>>()?;
        let validators = self.app.next_validators().clone();
        let proposer = validators.validators().first().map(|v| v.address()).unwrap_or_default();
        self.clock = self.next_time();
        let executed = self.app.build_block(proposer, self.clock, verified)?;
        let certificate = self.certify(&executed.block().header, &validators)?;
        Ok(self.app.commit(executed, certificate)?)
    }

    /// A certificate for `header` signed by every key of `validators` this chain holds.
    pub fn certify(&self, header: &Header, validators: &ValidatorSet) -> Result<CommitCertificate, TestChainError> {
        let id = header.hash(self.app.hash_alg());
        let message = CommitCertificate::precommit_message(header.height, 0, &id);
        let mut signatures = Vec::new();
        for (index, v) in validators.validators().iter().enumerate() {
            if let Some(key) = self.keys.iter().find(|k| k.public_key() == v.pub_key) {
                let signature = key.sign(self.app.chain_id().as_str(), SignKind::Precommit, &message);
                signatures.push(CommitSig { validator_index: index as u32, signature });
            }
        }
        let cert = CommitCertificate { height: header.height, round: 0, block_id: id, signatures };
        causeway_light_client::commit::verify_commit(self.app.chain_id().as_str(), validators, &cert)
            .map_err(|e| TestChainError::Keys(e.to_string()))?;
        Ok(cert)
    }
}

/// Why a test chain could not produce a block.
#[derive(Debug, thiserror::Error)]
pub enum TestChainError {
    /// A transaction is invalid.
    #[error("transaction: {0}")]
    Tx(#[from] TxError),
    /// The application failed.
    #[error(transparent)]
    App(#[from] AppError),
    /// The chain lacks the keys of enough validators.
    #[error("cannot certify: {0}")]
    Keys(String),
}

/// Where [`free_port`] and [`free_port_base`] look: below Linux's ephemeral range (32768–60999 by default), so that
/// no outgoing connection of this or another process can take a port between the check and the caller's bind
/// (a port the kernel handed out as ephemeral once made a devnet validator fail with "address in use").
const PORTS: std::ops::Range<u16> = 20_000..32_768;

/// Ports handed out in this process: never handed out twice.
static GIVEN: std::sync::Mutex<std::collections::BTreeSet<u16>> = std::sync::Mutex::new(std::collections::BTreeSet::new());

/// A base port with `n` free consecutive ports on 127.0.0.1 above it (for tests that start nodes on loopback),
/// or `None` when no such range was found in a few hundred tries.
pub fn free_port_base(n: u16) -> Option<u16> {
    let span = (PORTS.end - PORTS.start).checked_sub(n)?.max(1);
    let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
    for _ in 0..300 {
        let base = PORTS.start + rand::random::<u16>() % span;
        if (0..n).any(|i| given.contains(&(base + i))) {
            continue;
        }
        if (0..n).all(|i| std::net::TcpListener::bind(("127.0.0.1", base + i)).is_ok()) {
            given.extend((0..n).map(|i| base + i));
            return Some(base);
        }
    }
    None
}

/// One free port on 127.0.0.1 (see [`free_port_base`]), or `None` when none was found.
pub fn free_port() -> Option<u16> {
    free_port_base(1)
}

/// Poll `cond` every `every` until it holds; panics naming `what` after `timeout` (end-to-end tests that wait on
/// processes or containers: every wait polls a condition with a deadline, none asserts after a fixed sleep).
pub async fn wait_until<F, Fut>(what: &str, timeout: std::time::Duration, every: std::time::Duration, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    while !cond().await {
        if tokio::time::Instant::now() >= deadline {
            panic!("timed out waiting for {what}");
        }
        tokio::time::sleep(every).await;
    }
}

/// A binary of this workspace built beside the running test executable (`cargo test --workspace` builds every
/// package's binaries into the same directory). Panics with the command to run when it is missing.
pub fn sibling_binary(name: &str) -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let bin = exe.parent().and_then(Path::parent).expect("target directory").join(name);
    assert!(
        bin.exists(),
        "{} not found: build the workspace's tests first (`cargo test --workspace --no-run`)",
        bin.display()
    );
    bin
}

/// A program run as a child process by an end-to-end test, its stderr appended to a log file (with `RUST_LOG=info`),
/// that can be killed (SIGKILL: no clean shutdown) and started again with the same command line. Killed on drop.
pub struct ChildProcess {
    child: Option<std::process::Child>,
    program: std::path::PathBuf,
    args: Vec<String>,
    log: std::path::PathBuf,
}

impl ChildProcess {
    /// Start `program args…`, appending its stderr to `log`.
    pub fn start(program: impl Into<std::path::PathBuf>, args: &[&str], log: impl Into<std::path::PathBuf>) -> Self {
        let mut p = ChildProcess {
            child: None,
            program: program.into(),
            args: args.iter().map(|s| s.to_string()).collect(),
            log: log.into(),
        };
        p.spawn();
        p
    }

    /// Start the same command line again (after [`ChildProcess::kill`]).
    pub fn spawn(&mut self) {
        let out =
            std::fs::OpenOptions::new().create(true).append(true).open(&self.log).expect("open the process log");
        let child = std::process::Command::new(&self.program)
            .args(&self.args)
            .env("RUST_LOG", "info")
            .stdout(std::process::Stdio::null())
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", self.program.display()));
        self.child = Some(child);
    }

    /// The log file its stderr goes to.
    pub fn log(&self) -> &Path {
        &self.log
    }

    /// SIGKILL and reap.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for ChildProcess {
    fn drop(&mut self) {
        self.kill();
    }
}
