//! `causeway-scenarios`: scripted alliances, deterministic simulations and benchmarks.
//!
//! **Owns**: programs that drive the real crates end to end and print what they measured (JSON and a human
//! table). **Must never**: print a figure it did not measure, or reach into a crate's internals to make a
//! number look better than a user would see.

use anyhow::Result;
use clap::{Parser, Subcommand};

mod alliance;
mod bench_ledger;
mod bench_light_client;
mod bench_state;
mod bench_xchain;
mod devnet;
mod lineage;
mod sim;

/// Scripted alliances, simulations and benchmarks for Causeway.
#[derive(Parser, Debug)]
#[command(name = "causeway-scenarios", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Benchmarks that print measured figures.
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Deterministic simulation of validator networks with faults, over many seeds.
    Sim(sim::Args),
    /// A whole alliance in one process: hub and two members (4 validators each), a relayer, and a demo.
    Devnet(devnet::Args),
    /// Scripted scenarios (each ends with one JSON line with --json): the alliance's building blocks
    /// (transfer, dvp, record) and ledger lineage (split, merge, public-spinoff).
    #[command(subcommand)]
    Scenario(ScenarioCommand),
}

#[derive(Subcommand, Debug)]
enum ScenarioCommand {
    #[command(flatten)]
    Alliance(alliance::Scenario),
    #[command(flatten)]
    Lineage(lineage::Scenario),
}

#[derive(Subcommand, Debug)]
enum BenchCommand {
    /// Authenticated state: write throughput, proof generation and verification, proof size.
    State(bench_state::Args),
    /// Light clients: header verification (native vs tendermint-rs) and state-proof verification.
    LightClient(bench_light_client::Args),
    /// A validator network over real libp2p on loopback: committed transactions per second and latency.
    Ledger(bench_ledger::Args),
    /// Cross-chain transfers member A → hub → member B with a relayer: packets per second and latency.
    Xchain(bench_xchain::Args),
}

/// mimalloc instead of the system allocator: the node, relay and benchmark paths allocate many small objects.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Bench(BenchCommand::State(args)) => bench_state::run(args),
        Command::Bench(BenchCommand::LightClient(args)) => bench_light_client::run(args),
        Command::Bench(BenchCommand::Ledger(args)) => bench_ledger::run(args),
        Command::Bench(BenchCommand::Xchain(args)) => bench_xchain::run(args),
        Command::Sim(args) => sim::run(args),
        Command::Devnet(args) => devnet::run(args),
        Command::Scenario(ScenarioCommand::Alliance(s)) => alliance::run(s),
        Command::Scenario(ScenarioCommand::Lineage(s)) => lineage::run(s),
    }
}
