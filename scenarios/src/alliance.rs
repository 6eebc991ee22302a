//! `causeway-scenarios scenario transfer|dvp|record`: one building block of the devnet demo, alone, on a fresh
//! alliance (the hub and two members of 4 validators each over real libp2p, gateways, and the relayer engine),
//! ending with one JSON line under `--json`.
//!
//! **Owns**: choosing which demo steps run and reporting them. **Must never**: report a step as verified that the
//! demo did not check on committed state (the steps and their checks are the devnet's, in `devnet.rs`).

use std::time::{Duration, Instant};

use anyhow::{ensure, Result};
use clap::{Args as ClapArgs, Subcommand};
use serde_json::json;

use crate::devnet::{run_steps, Step};

/// The alliance scenarios.
#[derive(Subcommand, Debug)]
pub enum Scenario {
    /// A token transfer alpha → beta through the hub: escrow, voucher, acknowledgement back, supply conserved.
    Transfer(Args),
    /// A delivery-versus-payment deal across alpha and beta: both legs locked, the hub decides, both settle.
    Dvp(Args),
    /// A data record written on alpha, attested by the hub, verified on beta.
    Record(Args),
}

/// Options of every alliance scenario.
#[derive(ClapArgs, Debug, Clone)]
pub struct Args {
    /// Print one JSON line at the end (the step log goes to standard error).
    #[arg(long)]
    pub json: bool,
    /// Least time between blocks (ms).
    #[arg(long, default_value_t = 200)]
    pub block_interval_ms: u64,
}

/// Run an alliance scenario; an error unless every step verified.
pub fn run(s: Scenario) -> Result<()> {
    let (name, step, args) = match &s {
        Scenario::Transfer(a) => ("transfer", Step::Transfer, a),
        Scenario::Dvp(a) => ("dvp", Step::Dvp, a),
        Scenario::Record(a) => ("record", Step::Record, a),
    };
    crate::devnet::init_logs();
    let started = Instant::now();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let outcome = runtime.block_on(run_steps(
        &[step],
        args.json,
        Duration::from_millis(args.block_interval_ms),
    ));
    let seconds = (started.elapsed().as_secs_f64() * 100.0).round() / 100.0;
    let report = match &outcome {
        Ok(log) => json!({
            "scenario": name,
            "verified": true,
            "steps_verified": log.verified,
            "steps": log.steps.iter().map(|(s, _)| s.as_str()).collect::<Vec<_>>(),
            "seconds": seconds,
        }),
        Err(e) => {
            json!({ "scenario": name, "verified": false, "error": format!("{e:#}"), "seconds": seconds })
        }
    };
    if args.json {
        println!("{report}");
    } else {
        println!(
            "scenario {name}: {}",
            if outcome.is_ok() {
                "VERIFIED"
            } else {
                "NOT VERIFIED"
            }
        );
    }
    ensure!(outcome.is_ok(), "scenario {name} did not verify");
    Ok(())
}
