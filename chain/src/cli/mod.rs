//! The command line of a Causeway ledger node, shared by the `causeway-chain` binary and by binaries of chains
//! that run extension modules (`causeway-hub` runs it with the hub module): [`main`] takes the program name and
//! the extensions. As a binary front end it reports errors with `anyhow`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use crate::config::{ConsensusTiming, GatewayConfig, MempoolConfig, NodeConfig, P2pConfig, StorageConfig};
use crate::genesis::{rfc3339, Genesis, GenesisValidator, Profile};
use crate::keys;
use crate::message::Params;
use crate::net::NodeKey;
use crate::gateway::{self, NodeApi};
use crate::node::{Node, NodeSetup};
use std::sync::Arc;
use crate::exec::Extension;
use causeway_light_client::{ChainId, HashAlg, SecretKey, Suite, Time};
use clap::{Parser, Subcommand};

pub mod cli_gateway;
pub mod cli_ledger;

/// Run and manage a Causeway ledger node.
#[derive(Parser, Debug)]
#[command(name = "causeway-chain", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Every subcommand of a node's command line (binaries of chains with extension modules flatten it into theirs).
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create a new chain: genesis, validator and node keys, and one config file per validator.
    Init(InitArgs),
    /// Generate and inspect key files.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Build, sign and submit a transaction through a node's gateway.
    #[command(subcommand)]
    Tx(cli_gateway::TxCommand),
    /// Read a chain through a node's gateway.
    #[command(subcommand)]
    Query(cli_gateway::QueryCommand),
    /// Gateway access tokens: make a secret, mint tokens.
    #[command(subcommand)]
    Token(cli_gateway::TokenCommand),
    /// Run a node from its configuration file until interrupted (Ctrl-C or SIGTERM).
    Start(StartArgs),
    /// Split and merge ledgers offline: snapshots, record evidence, new geneses, verification.
    #[command(subcommand)]
    Ledger(cli_ledger::LedgerCommand),
}

/// `start`.
#[derive(clap::Args, Debug)]
pub struct StartArgs {
    /// The node's configuration file (written by `init`).
    #[arg(long)]
    config: PathBuf,
    /// Log format: text or json. The level comes from RUST_LOG (default: info).
    #[arg(long, default_value = "text", value_parser = ["text", "json"])]
    log_format: String,
}

/// `init`.
#[derive(clap::Args, Debug)]
pub struct InitArgs {
    /// The chain id (a-z 0-9 - _ .).
    #[arg(long)]
    chain_id: ChainId,
    /// Number of validators.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=100))]
    validators: u16,
    /// Output directory (must not exist or be empty).
    #[arg(long)]
    out: PathBuf,
    /// Signature suite of the validator keys: ed25519, sm2 or secp256k1.
    #[arg(long, default_value = "ed25519")]
    suite: Suite,
    /// Hash function of the chain: sha256 or sm3.
    #[arg(long, default_value = "sha256", value_parser = parse_hash)]
    hash: HashAlg,
    /// Permissioned (allow-listed peers) or public.
    #[arg(long, default_value = "permissioned", value_parser = parse_profile)]
    profile: Profile,
    /// Host the nodes listen on and are reached at.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// One host name per validator (e.g. container names): node i is reached at hosts[i] on the base ports and
    /// listens on all interfaces. Overrides --host.
    #[arg(long, value_delimiter = ',')]
    hosts: Vec<String>,
    /// First p2p port (validator i listens on base + i).
    #[arg(long, default_value_t = 26_600)]
    p2p_port: u16,
    /// First gateway port (validator i serves on base + i).
    #[arg(long, default_value_t = 8_600)]
    gateway_port: u16,
    /// Genesis time (RFC 3339); default: now.
    #[arg(long, value_parser = rfc3339::parse)]
    genesis_time: Option<Time>,
}

/// `keys`.
#[derive(Subcommand, Debug)]
pub enum KeysCommand {
    /// Generate a key file (mode 0600).
    Generate {
        /// Signature suite: ed25519, sm2 or secp256k1.
        #[arg(long, default_value = "ed25519")]
        suite: Suite,
        /// Where to write it (refuses to overwrite).
        #[arg(long)]
        out: PathBuf,
    },
    /// Print a key file's suite, public key and address (never the secret).
    Show {
        /// The key file.
        file: PathBuf,
    },
}

fn parse_hash(s: &str) -> Result<HashAlg, String> {
    match s.to_ascii_lowercase().as_str() {
        "sha256" | "sha-256" => Ok(HashAlg::Sha256),
        "sm3" => Ok(HashAlg::Sm3),
        other => Err(format!("unknown hash {other:?} (expected sha256 or sm3)")),
    }
}

fn parse_profile(s: &str) -> Result<Profile, String> {
    match s {
        "permissioned" => Ok(Profile::Permissioned),
        "public" => Ok(Profile::Public),
        other => Err(format!("unknown profile {other:?} (expected permissioned or public)")),
    }
}

fn now() -> Time {
    let d = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    Time(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

fn init(args: InitArgs) -> Result<()> {
    if args.out.exists() && std::fs::read_dir(&args.out).map(|mut d| d.next().is_some()).unwrap_or(true) {
        bail!("{} exists and is not empty; choose a new directory", args.out.display());
    }
    let n = usize::from(args.validators);
    if usize::from(args.p2p_port) + n > 65_535 || usize::from(args.gateway_port) + n > 65_535 {
        bail!("port range overflows 65535");
    }
    if !args.hosts.is_empty() && args.hosts.len() != n {
        bail!("--hosts names {} hosts for {n} validators", args.hosts.len());
    }
    std::fs::create_dir_all(&args.out).with_context(|| format!("creating {}", args.out.display()))?;
    let mut validators = Vec::with_capacity(n);
    let mut peer_ids = Vec::with_capacity(n);
    for i in 0..n {
        let dir = args.out.join(format!("node{i}"));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let vkey = SecretKey::generate(args.suite);
        let nkey = SecretKey::generate(Suite::Ed25519);
        keys::save(&vkey, &dir.join("validator_key.json"))?;
        keys::save(&nkey, &dir.join("node_key.json"))?;
        let peer_id = NodeKey::from_secret_key(&nkey)?.peer_id().to_string();
        peer_ids.push(peer_id.clone());
        validators.push(GenesisValidator {
            name: format!("{}-{i}", args.chain_id),
            pub_key: vkey.public_key(),
            power: 10,
            node_id: Some(peer_id),
        });
    }
    let genesis = Genesis {
        chain_id: args.chain_id.clone(),
        genesis_time: args.genesis_time.unwrap_or_else(now),
        hash: args.hash,
        app_version: 1,
        profile: args.profile,
        validators,
        params: Params::default(),
        orgs: vec![],
        assets: vec![],
        lineage: None,
    };
    genesis.validate()?;
    let genesis_path = args.out.join("genesis.json");
    genesis.save(&genesis_path)?;
    // Where node j is reached, where it listens, and where its gateway listens.
    let reach = |j: usize| match args.hosts.get(j) {
        Some(h) => format!("/dns4/{h}/tcp/{}", args.p2p_port),
        None => format!("/ip4/{}/tcp/{}", args.host, usize::from(args.p2p_port) + j),
    };
    let listen = |j: usize| match args.hosts.get(j) {
        Some(_) => format!("/ip4/0.0.0.0/tcp/{}", args.p2p_port),
        None => reach(j),
    };
    let gateway = |j: usize| match args.hosts.get(j) {
        Some(_) => format!("0.0.0.0:{}", args.gateway_port),
        None => format!("{}:{}", args.host, usize::from(args.gateway_port) + j),
    };
    for i in 0..n {
        let bootstrap = (0..n).filter(|&j| j != i).map(|j| format!("{}/p2p/{}", reach(j), peer_ids[j])).collect();
        let cfg = NodeConfig {
            moniker: format!("{}-{i}", args.chain_id),
            data_dir: PathBuf::from("data"),
            genesis: PathBuf::from("../genesis.json"),
            validator_key: Some(PathBuf::from("validator_key.json")),
            node_key: PathBuf::from("node_key.json"),
            p2p: P2pConfig { listen: listen(i), bootstrap, allowed_peers: vec![] },
            gateway: GatewayConfig { listen: gateway(i) },
            mempool: MempoolConfig::default(),
            storage: StorageConfig::default(),
            consensus: ConsensusTiming::default(),
        };
        cfg.save(&args.out.join(format!("node{i}")).join("config.toml"))?;
    }
    println!("created chain {} with {n} validators in {}", args.chain_id, args.out.display());
    println!("genesis: {}", genesis_path.display());
    Ok(())
}

fn show_key(file: &Path) -> Result<()> {
    let key = keys::load(file)?;
    let pk = key.public_key();
    println!("suite:      {:?}", key.suite());
    println!("public key: {}", hex::encode(pk.as_bytes()));
    println!("address:    {}", pk.address());
    Ok(())
}

fn init_logs(format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    // A second initialisation (only possible in tests) is harmless; ignore its error.
    let _ = if format == "json" { builder.json().try_init() } else { builder.try_init() };
}

fn start(args: StartArgs, extensions: Vec<Arc<dyn Extension>>) -> Result<()> {
    init_logs(&args.log_format);
    let cfg = NodeConfig::load(&args.config).with_context(|| format!("loading {}", args.config.display()))?;
    let setup = NodeSetup::from_config(&cfg, extensions)?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the runtime")?;
    runtime.block_on(async move {
        let node = Node::start(setup).await?;
        let api: Arc<dyn NodeApi> = node.shared().clone();
        let gateway = gateway::serve(api, gateway::GatewayConfig::from(&cfg.gateway)).await?;
        tracing::info!(url = %gateway.url(), "gateway serving");
        let status = node.shared().status();
        tracing::info!(
            chain = %status.chain_id,
            moniker = %status.moniker,
            height = status.height,
            validator = ?status.validator,
            peer_id = %node.net().local_peer_id(),
            "node started"
        );
        wait_for_signal().await;
        tracing::info!("stopping");
        if let Err(e) = gateway.stop().await {
            tracing::warn!(error = %e, "gateway did not stop cleanly");
        }
        node.stop().await;
        Ok(())
    })
}

/// Resolve on Ctrl-C or SIGTERM (the node's and the relayer's way to stop).
pub async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

#[cfg(test)]
fn run(cli: Cli) -> Result<()> {
    run_with(cli, vec![])
}

fn run_with(cli: Cli, extensions: Vec<Arc<dyn Extension>>) -> Result<()> {
    run_command(cli.command, extensions)
}

/// Run one subcommand with `extensions` as the node's modules.
pub fn run_command(command: Command, extensions: Vec<Arc<dyn Extension>>) -> Result<()> {
    match command {
        Command::Init(args) => init(args),
        Command::Keys(KeysCommand::Generate { suite, out }) => {
            let key = SecretKey::generate(suite);
            keys::save(&key, &out)?;
            println!("wrote {} ({:?}, address {})", out.display(), suite, key.public_key().address());
            Ok(())
        }
        Command::Keys(KeysCommand::Show { file }) => show_key(&file),
        Command::Start(args) => start(args, extensions),
        Command::Tx(c) => cli_gateway::tx(c),
        Command::Query(c) => cli_gateway::query(c),
        Command::Token(c) => cli_gateway::token(c),
        Command::Ledger(c) => cli_ledger::ledger(c),
    }
}

/// Parse the command line as program `name` and run it, with `extensions` as the node's modules.
pub fn main(name: &'static str, extensions: Vec<Arc<dyn Extension>>) -> ExitCode {
    use clap::{CommandFactory, FromArgMatches};
    let matches = Cli::command().name(name).bin_name(name).get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(c) => c,
        Err(e) => e.exit(),
    };
    let ledger = matches!(cli.command, Command::Ledger(_));
    match run_with(cli, extensions) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            if ledger {
                cli_ledger::exit_code(&e)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_parse() {
        let cli = Cli::try_parse_from(["causeway-chain", "init", "--chain-id", "alpha", "--out", "x", "--suite", "sm2", "--hash", "sm3"])
            .unwrap();
        match cli.command {
            Command::Init(a) => {
                assert_eq!(a.validators, 4);
                assert_eq!(a.suite, Suite::Sm2);
                assert_eq!(a.hash, HashAlg::Sm3);
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(Cli::try_parse_from(["causeway-chain", "init", "--chain-id", "Alpha", "--out", "x"]).is_err());
        assert!(Cli::try_parse_from(["causeway-chain", "init", "--chain-id", "a", "--out", "x", "--validators", "0"]).is_err());
        assert!(Cli::try_parse_from(["causeway-chain", "keys", "generate", "--suite", "rsa", "--out", "k"]).is_err());
    }

    #[test]
    fn init_writes_a_loadable_chain() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("net");
        let cli = Cli::try_parse_from(["causeway-chain", "init", "--chain-id", "alpha", "--out", out.to_str().unwrap(), "--validators", "3"])
            .unwrap();
        run(cli).unwrap();
        let g = Genesis::load(&out.join("genesis.json")).unwrap();
        assert_eq!(g.validators.len(), 3);
        let cfg = NodeConfig::load(&out.join("node2").join("config.toml")).unwrap();
        let key = keys::load(cfg.validator_key.as_ref().unwrap()).unwrap();
        assert_eq!(key.public_key(), g.validators[2].pub_key);
        // Every node knows the others' addresses, and the genesis admits every node's peer id.
        assert_eq!(cfg.p2p.bootstrap.len(), 2);
        let node_key = NodeKey::from_secret_key(&keys::load(&cfg.node_key).unwrap()).unwrap();
        assert_eq!(g.validators[2].node_id.as_deref(), Some(node_key.peer_id().to_string().as_str()));
        assert!(cfg.p2p.bootstrap.iter().all(|b| !b.ends_with(&node_key.peer_id().to_string())));
        // A second init into the same directory is refused.
        let again = Cli::try_parse_from(["causeway-chain", "init", "--chain-id", "alpha", "--out", out.to_str().unwrap()]).unwrap();
        assert!(run(again).is_err());
    }
}
