//! The `causeway-relayer` binary: parse the command line, run the subcommand, turn its outcome into an exit code.

use std::process::ExitCode;

use causeway_relayer::cli::{Cli, Command};
use clap::Parser;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Verify(args) => {
            let outcome = causeway_relayer::verify::run(&args.target);
            outcome.report();
            ExitCode::from(outcome.exit_code())
        }
    }
}
