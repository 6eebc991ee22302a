//! `causeway-scenarios sim`: run the deterministic consensus simulation over many seeds and print what it found.
//!
//! Each seed draws its own faults (loss, delay and reordering, a partition that heals, crashes with restart from
//! the WAL, an equivocating validator); see `causeway_chain::consensus::sim`. A failing seed is printed with its
//! faults so that `sim --seed N` replays exactly that run.
//!
//! Seeds run on worker threads; each run is independent and deterministic, and results are summed in seed order,
//! so the summary depends only on the seeds, never on the number of workers. Wall times (the only thing that
//! varies) are printed beside the summary, never in the JSON.

use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Result};
use causeway_chain::consensus::sim::{Sim, SimConfig, SimReport};
use serde::Serialize;

/// How many of the slowest seeds the human summary names.
const SLOWEST_SHOWN: usize = 5;

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
    /// Worker threads (default: the available cores). The results do not depend on it.
    #[arg(long)]
    jobs: Option<NonZeroUsize>,
}

#[derive(Serialize, Debug, Default, PartialEq, Eq)]
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

impl Summary {
    /// Sum the reports, which must be in seed order.
    fn of(reports: &[SimReport]) -> Self {
        let mut s = Summary { seeds: reports.len() as u64, ..Summary::default() };
        for r in reports {
            s.heights_committed += r.min_height;
            s.safety_violations += r.safety_violations.len() as u64;
            s.stalled_after_heal += u64::from(r.stalled_after_heal);
            s.equivocations_seen += r.equivocations_seen;
            s.messages_delivered += r.delivered;
            s.messages_dropped += r.dropped;
            if !r.ok() {
                s.failing_seeds.push(r.seed);
            }
        }
        s
    }
}

/// One seed's report and how long it took.
struct Timed {
    report: SimReport,
    wall: Duration,
}

/// Run seeds `0..seeds` on `jobs` threads; the results come back in seed order.
fn run_seeds(seeds: u64, jobs: usize) -> Result<Vec<Timed>> {
    let next = AtomicU64::new(0);
    let done = AtomicU64::new(0);
    let started = Instant::now();
    let worker = || {
        let mut out = Vec::new();
        loop {
            let seed = next.fetch_add(1, Ordering::Relaxed);
            if seed >= seeds {
                return out;
            }
            let t = Instant::now();
            let report = Sim::new(SimConfig::standard(seed)).run();
            out.push(Timed { report, wall: t.elapsed() });
            let finished = done.fetch_add(1, Ordering::Relaxed) + 1;
            if finished.is_multiple_of(100) && finished < seeds {
                eprintln!("{finished}/{seeds} seeds run ({:.0} s)", started.elapsed().as_secs_f64());
            }
        }
    };
    let mut all: Vec<Timed> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..jobs.max(1)).map(|_| scope.spawn(worker)).collect();
        handles
            .into_iter()
            .map(|h| h.join().map_err(|_| anyhow!("a simulation worker panicked")))
            .collect::<Result<Vec<_>>>()
    })?
    .into_iter()
    .flatten()
    .collect();
    all.sort_by_key(|t| t.report.seed);
    Ok(all)
}

/// The slowest seeds, slowest first, as "seed 12 (3.1 s, 4 validators, 180 heights)".
fn slowest(runs: &[Timed], n: usize) -> String {
    let mut by_time: Vec<&Timed> = runs.iter().collect();
    by_time.sort_by(|a, b| b.wall.cmp(&a.wall).then(a.report.seed.cmp(&b.report.seed)));
    by_time
        .iter()
        .take(n)
        .map(|t| {
            let r = &t.report;
            format!(
                "seed {} ({:.2} s, {} validators, {} heights, {} delivered)",
                r.seed,
                t.wall.as_secs_f64(),
                r.validators,
                r.min_height,
                r.delivered
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
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
    let jobs = args.jobs.or_else(|| std::thread::available_parallelism().ok()).map_or(1, NonZeroUsize::get);
    let started = Instant::now();
    let runs = run_seeds(args.seeds, jobs)?;
    let wall = started.elapsed();
    let reports: Vec<SimReport> = runs.iter().map(|t| t.report.clone()).collect();
    let s = Summary::of(&reports);
    let timing = format!(
        "{:.1} s wall on {jobs} worker(s); slowest: {}",
        wall.as_secs_f64(),
        slowest(&runs, SLOWEST_SHOWN)
    );
    if args.json {
        println!("{}", serde_json::to_string(&s)?);
        eprintln!("{timing}");
    } else {
        println!(
            "{} seeds: {} heights committed (lowest honest node per seed, summed), {} safety violations, {} stalled after heal, {} equivocations seen",
            s.seeds, s.heights_committed, s.safety_violations, s.stalled_after_heal, s.equivocations_seen
        );
        println!("{timing}");
    }
    let failures: Vec<&SimReport> = reports.iter().filter(|r| !r.ok()).collect();
    for f in &failures {
        eprintln!("failing seed {} (replay: causeway-scenarios sim --seed {} --trace): {:?}", f.seed, f.seed, f);
    }
    if !failures.is_empty() {
        bail!("{} of {} seeds failed", failures.len(), s.seeds);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_does_not_depend_on_the_number_of_workers() {
        let one = run_seeds(2, 1).expect("one worker");
        let two = run_seeds(2, 2).expect("two workers");
        let seeds: Vec<u64> = two.iter().map(|t| t.report.seed).collect();
        assert_eq!(seeds, vec![0, 1]);
        let summary = |runs: &[Timed]| Summary::of(&runs.iter().map(|t| t.report.clone()).collect::<Vec<_>>());
        assert_eq!(summary(&one), summary(&two));
        assert_eq!(summary(&one).seeds, 2);
    }
}
