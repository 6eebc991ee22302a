//! The `causeway-relayer` binary: parse the command line, run the subcommand, turn its outcome into an exit code
//! (0 success; 1 failure or rejection; 2 malformed input for `verify`).

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use causeway_light_client::SecretKey;
use causeway_relayer::cli::{Cli, Command, ConfigArgs, KeysCommand};
use causeway_relayer::config::RelayerConfig;
use causeway_relayer::daemon;
use clap::Parser;

fn init_logs(format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = if format == "json" { builder.json().try_init() } else { builder.try_init() };
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")
}

fn load(args: &ConfigArgs) -> Result<RelayerConfig> {
    init_logs(&args.log_format);
    Ok(RelayerConfig::load(&args.config)?)
}

fn run(command: Command) -> Result<ExitCode> {
    match command {
        Command::Start(args) => {
            let cfg = load(&args)?;
            runtime()?.block_on(daemon::start(cfg))?;
        }
        Command::Clear(args) => {
            let cfg = load(&args.config)?;
            let n = runtime()?.block_on(daemon::clear(cfg, Duration::from_secs(args.timeout_secs)))?;
            println!("cleared: {n} steps relayed, nothing left due");
        }
        Command::Status(args) => {
            let cfg = load(&args)?;
            let v = runtime()?.block_on(daemon::status(cfg))?;
            println!("{}", serde_json::to_string_pretty(&v)?);
        }
        Command::Keys(KeysCommand::Generate { suite, out }) => {
            let key = SecretKey::generate(suite);
            causeway_chain::keys::save(&key, &out)?;
            println!("wrote {} ({suite:?}, address {})", out.display(), key.public_key().address());
        }
        Command::Keys(KeysCommand::Show { file }) => {
            let key = causeway_chain::keys::load(&file)?;
            let pk = key.public_key();
            println!("suite:      {:?}", key.suite());
            println!("public key: {}", hex::encode(pk.as_bytes()));
            println!("address:    {}", pk.address());
        }
        Command::Verify(args) => {
            let outcome = causeway_relayer::verify::run(&args.target);
            outcome.report();
            return Ok(ExitCode::from(outcome.exit_code()));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// mimalloc instead of the system allocator: the node, relay and benchmark paths allocate many small objects.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli.command) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
