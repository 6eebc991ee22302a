//! `causeway-scenarios sim`: run the deterministic consensus simulation over many seeds and print what it found.
//!
//! Each seed draws its own faults (loss, delay and reordering, a partition that heals, crashes with restart from
//! the WAL, an equivocating validator); see `causeway_chain::consensus::sim`. A failing seed is printed with its
//! faults so that `sim --seed N` replays exactly that run.

use anyhow::{bail, Result};
use causeway_chain::consensus::sim::{Sim, SimConfig, SimReport};
use serde::Serialize;

/// Arguments of `sim`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Number of seeds to run (0, 1, 2, …).
    #[arg(long, default_value_t = 100)]
    seeds: u64,
    /// Run only this seed (and print its full report).
    #[arg(long)]
    seed: Option<u64>,
    /// Print JSON instead of a human summary.
    #[arg(long)]
    json: bool,
    /// With --seed: print every message, timer and decision of the run to stderr.
    #[arg(long, requires = "seed")]
    trace: bool,
}

#[derive(Serialize)]
struct Summary {
    seeds: u64,
    heights_committed: u64,
    safety_violations: u64,
    stalled_after_heal: u64,
    equivocations_seen: u64,
    messages_delivered: u64,
    messages_dropped: u64,
    failing_seeds: Vec<u64>,
}

/// Run the simulation; fails (non-zero exit) when any seed found a problem.
pub fn run(args: Args) -> Result<()> {
    if let Some(seed) = args.seed {
        let report = Sim::new(SimConfig { trace: args.trace, ..SimConfig::standard(seed) }).run();
        println!("{}", serde_json::to_string_pretty(&report)?);
        if !report.ok() {
            bail!("seed {seed} failed");
        }
        return Ok(());
    }
    let mut s = Summary {
        seeds: args.seeds,
        heights_committed: 0,
        safety_violations: 0,
        stalled_after_heal: 0,
        equivocations_seen: 0,
        messages_delivered: 0,
        messages_dropped: 0,
        failing_seeds: Vec::new(),
    };
    let mut failures: Vec<SimReport> = Vec::new();
    for seed in 0..args.seeds {
        let r = Sim::new(SimConfig::standard(seed)).run();
        s.heights_committed += r.min_height;
        s.safety_violations += r.safety_violations.len() as u64;
        s.stalled_after_heal += u64::from(r.stalled_after_heal);
        s.equivocations_seen += r.equivocations_seen;
        s.messages_delivered += r.delivered;
        s.messages_dropped += r.dropped;
        if !r.ok() {
            s.failing_seeds.push(seed);
            failures.push(r);
        }
    }
    if args.json {
        println!("{}", serde_json::to_string(&s)?);
    } else {
        println!(
            "{} seeds: {} heights committed (lowest honest node per seed, summed), {} safety violations, {} stalled after heal, {} equivocations seen",
            s.seeds, s.heights_committed, s.safety_violations, s.stalled_after_heal, s.equivocations_seen
        );
    }
    for f in &failures {
        eprintln!("failing seed {} (replay: causeway-scenarios sim --seed {}): {:?}", f.seed, f.seed, f);
    }
    if !failures.is_empty() {
        bail!("{} of {} seeds failed", failures.len(), s.seeds);
    }
    Ok(())
}
