//! `causeway-hub`: run and manage a node of an alliance's hub chain — the ledger engine's command line
//! (`init`, `start`, `keys`, `tx`, `query`, `token`) with the hub module among the node's extensions, plus the
//! hub's governance proposals (`gov admit-member`).

use std::process::ExitCode;

use anyhow::Result;
use causeway_chain::cli::cli_gateway::{submit_message, trusted_point, TxCommon};
use causeway_chain::cli::{run_command, Command};
use causeway_chain::message::Message;
use causeway_hub::{Hub, HubGov};
use causeway_light_client::native::TrustOptions;
use clap::{Parser, Subcommand};

/// Run and manage a node of a Causeway hub chain.
#[derive(Parser, Debug)]
#[command(name = "causeway-hub", version, about)]
struct Cli {
    #[command(subcommand)]
    command: HubCommand,
}

#[derive(Subcommand, Debug)]
enum HubCommand {
    #[command(flatten)]
    Node(Command),
    /// Hub governance proposals (validators only; the others approve with `tx vote`).
    #[command(subcommand)]
    Gov(GovCommand),
}

#[derive(Subcommand, Debug)]
enum GovCommand {
    /// Propose admitting a member chain, trusting its latest header as read from its gateway (each validator that
    /// votes should check that header against the member independently).
    AdmitMember {
        /// The member's gateway.
        #[arg(long)]
        member_gateway: String,
        #[command(flatten)]
        common: TxCommon,
    },
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        HubCommand::Node(c) => run_command(c, vec![Hub::extension()]),
        HubCommand::Gov(GovCommand::AdmitMember { member_gateway, common }) => {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            let (header, next_validators, alg) = runtime.block_on(trusted_point(&member_gateway))?;
            let action = HubGov::AdmitMember {
                options: TrustOptions::new(header.chain_id.clone(), alg),
                header,
                next_validators,
            }
            .into_action();
            submit_message(common, Message::Propose { action })
        }
    }
}

/// mimalloc instead of the system allocator: the node, relay and benchmark paths allocate many small objects.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
