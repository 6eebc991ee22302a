//! `bench light-client`: header verification by the native Causeway light client and by tendermint-rs's
//! `tendermint-light-client-verifier` on headers of the same size, and state-proof verification.
//!
//! For 4, 21 and 100 validators of equal power, all of them signing, both clients verify a sequential update
//! (height 1 trusted, height 2 verified) and a skipping one (height 1 to height 10, same set). Native headers come
//! from `causeway_light_client::testgen` (ed25519), Tendermint light blocks from `tendermint-testgen` (ed25519).
//! Each timed call starts from the same trusted state (cloned before the clock starts) and must succeed. Calls
//! are timed in blocks of [`BLOCK`], native and Tendermint blocks alternating, with the CPU time of this thread
//! (`CLOCK_THREAD_CPUTIME_ID`) rather than wall time: on a shared machine a long call is
//! preempted more often than a short one, which would bias wall-clock ratios towards the faster side. Where that
//! clock is not available, wall time is used and the report says so. The median over blocks of the mean per call is
//! reported. Proof verification is `verify_membership` of the native client against a
//! trusted header whose state holds `--state-keys` keys in one namespace (plus a few small namespaces).

use std::hint::black_box;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use causeway_light_client::testgen::{ChainBuilder, Signers, TestState};
use causeway_light_client::{Canonical, LightClient, Namespace, StatePath, Suite};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::ser::SerializeMap;
use serde::Serialize;
use tendermint_light_client_verifier::options::Options as TmOptions;
use tendermint_light_client_verifier::types::{
    LightBlock as TmLightBlock, Time as TmTime, TrustThreshold as TmTrustThreshold,
};
use tendermint_light_client_verifier::{ProdVerifier, Verdict, Verifier as _};
use tendermint_testgen::{
    Generator as _, Header as TgHeader, LightBlock as TgLightBlock, Validator as TgValidator,
};

/// Validator-set sizes measured.
const SIZES: [usize; 3] = [4, 21, 100];
/// Height reached by the skipping update (from height 1).
const SKIP_TO: u64 = 10;
/// Unix time of height 1 on both sides.
const GENESIS_SECS: u64 = 1_700_000_000;
const CHAIN_ID: &str = "bench-chain";
/// Calls per timed block.
const BLOCK: usize = 10;

/// Options of `bench light-client`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Timed verifications per figure, in blocks of 10 (the median block is reported).
    #[arg(long, default_value_t = 200)]
    pub iterations: usize,
    /// Keys in the namespace whose proofs are verified.
    #[arg(long, default_value_t = 100_000)]
    pub state_keys: u64,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Figures per validator-set size, serialized as `{"4": …, "21": …, "100": …}` in that order.
struct BySize(Vec<(usize, f64)>);

impl Serialize for BySize {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (n, v) in &self.0 {
            map.serialize_entry(&n.to_string(), v)?;
        }
        map.end()
    }
}

impl BySize {
    fn get(&self, n: usize) -> f64 {
        self.0.iter().find(|(m, _)| *m == n).map_or(f64::NAN, |(_, v)| *v)
    }
}

#[derive(Serialize)]
struct Report {
    /// Sequential header verification, native client, median µs.
    native_us: BySize,
    /// Sequential header verification, tendermint-light-client-verifier, median µs.
    tendermint_us: BySize,
    /// native / tendermint at 100 validators (sequential).
    ratio_100: f64,
    /// Native `verify_membership`, median µs.
    proof_verify_us: f64,
    /// Skipping verification (height 1 to 10), native, median µs.
    native_skipping_us: BySize,
    /// Skipping verification (height 1 to 10), Tendermint, median µs.
    tendermint_skipping_us: BySize,
    /// Timed calls per figure.
    iterations: usize,
    /// Keys in the proven namespace.
    proof_state_keys: u64,
    /// `thread-cpu` or `wall`.
    clock: &'static str,
}

fn median_us(mut samples: Vec<Duration>) -> f64 {
    samples.sort_unstable();
    samples
        .get(samples.len() / 2)
        .map_or(f64::NAN, |d| d.as_secs_f64() * 1e6)
}

/// CPU time this thread has run so far (`CLOCK_THREAD_CPUTIME_ID`).
#[cfg(target_os = "linux")]
fn thread_cpu_time() -> Option<Duration> {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    Some(Duration::new(
        u64::try_from(t.tv_sec).ok()?,
        u32::try_from(t.tv_nsec).ok()?,
    ))
}

/// No per-thread CPU clock is read on other systems: wall time is used.
#[cfg(not(target_os = "linux"))]
fn thread_cpu_time() -> Option<Duration> {
    None
}

/// Which clock the benchmark reads.
fn clock_name() -> &'static str {
    if thread_cpu_time().is_some() {
        "thread-cpu"
    } else {
        "wall"
    }
}

/// A stopwatch on this thread's CPU time, or on wall time where that is not available.
struct Stopwatch {
    cpu: Option<Duration>,
    wall: Instant,
}

impl Stopwatch {
    fn start() -> Self {
        Stopwatch {
            cpu: thread_cpu_time(),
            wall: Instant::now(),
        }
    }

    fn elapsed(&self) -> Duration {
        match (self.cpu, thread_cpu_time()) {
            (Some(start), Some(now)) => now.saturating_sub(start),
            _ => self.wall.elapsed(),
        }
    }
}

/// One prepared call: its inputs are already copied, so only the verification itself is timed.
type Call<'a> = Box<dyn FnOnce() -> Result<()> + 'a>;

/// Mean time per call of `calls`, all of which must succeed.
fn time_block(calls: Vec<Call<'_>>) -> Result<Duration> {
    let n = u32::try_from(calls.len())?.max(1);
    let watch = Stopwatch::start();
    let mut outcome = Ok(());
    for call in calls {
        outcome = outcome.and(call());
    }
    let elapsed = watch.elapsed();
    outcome?;
    Ok(elapsed / n)
}

/// One native update ready to verify: a client trusting height 1 and the update to `height`.
struct NativeCase {
    client: causeway_light_client::NativeClient,
    update: causeway_light_client::HeaderUpdate,
    now: causeway_light_client::Time,
}

fn native_cases(n: usize) -> Result<(NativeCase, NativeCase)> {
    let chain = ChainBuilder::new(CHAIN_ID, Signers::equal(Suite::Ed25519, n, n as u64))
        .genesis_time(causeway_light_client::Time::from_secs(GENESIS_SECS))
        .build(SKIP_TO);
    let now = chain.now_after(SKIP_TO);
    let client = chain.client(1, chain.options());
    // The update travels encoded; time the verification of what a hub decodes.
    let decode = |height: u64| -> Result<causeway_light_client::HeaderUpdate> {
        Ok(causeway_light_client::HeaderUpdate::decode(
            &chain.update(1, height).encode(),
        )?)
    };
    Ok((
        NativeCase {
            client: client.clone(),
            update: decode(2)?,
            now,
        },
        NativeCase {
            client,
            update: decode(SKIP_TO)?,
            now,
        },
    ))
}

/// Mean time of [`BLOCK`] native verifications of `case`, each from a fresh copy of the trusted client.
fn time_native(case: &NativeCase) -> Result<Duration> {
    let calls = (0..BLOCK)
        .map(|_| {
            let (mut client, update) = (case.client.clone(), case.update.clone());
            Box::new(move || {
                client
                    .verify_header(update, case.now)
                    .map(|_| ())
                    .context("native client refused a valid update")
            }) as Call<'_>
        })
        .collect();
    time_block(calls)
}

fn tm_time(unix_secs: u64) -> Result<TmTime> {
    let secs = i64::try_from(unix_secs)?;
    TmTime::from_unix_timestamp(secs, 0).map_err(|e| anyhow::anyhow!("tendermint time: {e}"))
}

/// Tendermint light blocks for heights 1, 2 and [`SKIP_TO`], `n` validators of power 10, and the time to judge at.
fn tendermint_blocks(n: usize) -> Result<(TmLightBlock, TmLightBlock, TmLightBlock, TmTime)> {
    let validators: Vec<TgValidator> = (0..n)
        .map(|i| TgValidator::new(&format!("validator-{i}")).voting_power(10))
        .collect();
    let genesis = tm_time(GENESIS_SECS)?;
    let header = TgHeader::new(&validators)
        .height(1)
        .chain_id(CHAIN_ID)
        .next_validators(&validators)
        .time(genesis);
    let mut block = TgLightBlock::new_default_with_header(header);
    let mut generated = Vec::new();
    for _ in 1..=SKIP_TO {
        let tm = block
            .generate()
            .map_err(|e| anyhow::anyhow!("tendermint-testgen: {e}"))?;
        generated.push(TmLightBlock::new(
            tm.signed_header,
            tm.validators,
            tm.next_validators,
            tm.provider,
        ));
        block = block.next();
    }
    let now = tm_time(GENESIS_SECS + SKIP_TO + 5)?;
    let mut blocks = generated.into_iter();
    let mut take = |height: u64| {
        blocks
            .find(|b| b.height().value() == height)
            .context("generated height missing")
    };
    Ok((take(1)?, take(2)?, take(SKIP_TO)?, now))
}

fn tendermint_options() -> TmOptions {
    TmOptions {
        trust_threshold: TmTrustThreshold::ONE_THIRD,
        trusting_period: Duration::from_secs(14 * 24 * 3600),
        clock_drift: Duration::from_secs(10),
    }
}

/// Mean time of [`BLOCK`] Tendermint verifications of `untrusted` from `trusted`.
fn time_tendermint(trusted: &TmLightBlock, untrusted: &TmLightBlock, now: TmTime) -> Result<Duration> {
    let verifier = ProdVerifier::default();
    let options = tendermint_options();
    let calls = (0..BLOCK)
        .map(|_| {
            let (verifier, options) = (&verifier, &options);
            Box::new(move || {
                let (untrusted, trusted) = (untrusted.as_untrusted_state(), trusted.as_trusted_state());
                match verifier.verify_update_header(untrusted, trusted, options, now) {
                    Verdict::Success => Ok(()),
                    other => bail!("tendermint verifier refused a valid light block: {other:?}"),
                }
            }) as Call<'_>
        })
        .collect();
    time_block(calls)
}

/// Median native and Tendermint times for the sequential and the skipping update at `n` validators.
fn measure_headers(n: usize, iterations: usize) -> Result<[f64; 4]> {
    let (native_seq, native_skip) = native_cases(n)?;
    let (tm1, tm2, tm_skip, tm_now) = tendermint_blocks(n)?;
    ensure!(
        native_seq.update.validators.len() == tm2.validators.validators().len(),
        "both sides must verify headers of the same size"
    );
    let mut samples: [Vec<Duration>; 4] = Default::default();
    // Warm up caches and lazy statics once, untimed.
    time_native(&native_seq)?;
    time_tendermint(&tm1, &tm2, tm_now)?;
    for _ in 0..iterations.div_ceil(BLOCK) {
        samples[0].push(time_native(&native_seq)?);
        samples[1].push(time_tendermint(&tm1, &tm2, tm_now)?);
        samples[2].push(time_native(&native_skip)?);
        samples[3].push(time_tendermint(&tm1, &tm_skip, tm_now)?);
    }
    Ok(samples.map(median_us))
}

/// Median time of the native client's `verify_membership` over proofs of random present keys.
fn measure_proofs(keys: u64, iterations: usize) -> Result<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let mut state = TestState::default();
    let mut present = Vec::new();
    for i in 0..keys {
        let key: [u8; 32] = rng.gen();
        let mut value = vec![0u8; 100];
        rng.fill(&mut value[..]);
        state.put("bench/data", &key, &value);
        if i % (keys / 100).max(1) == 0 {
            present.push((key, value));
        }
    }
    for org in 0..15 {
        state.put(&format!("org-{org}"), b"profile", b"registered");
    }
    let chain = ChainBuilder::new(CHAIN_ID, Signers::equal(Suite::Ed25519, 4, 1))
        .state(state)
        .build(1);
    let client = chain.client(1, chain.options());
    let committed = chain.state_at(1).commit(chain.hash_alg());
    ensure!(
        committed.root() == chain.block(1).header.state_root,
        "test state root differs from the header's"
    );
    let namespace = Namespace::new("bench/data")?;
    let proofs: Vec<_> = present
        .iter()
        .map(|(key, value)| {
            let (_, proof) = committed.prove(&namespace, key);
            (
                StatePath::new(namespace.clone(), key.to_vec()).encode(),
                value,
                proof,
            )
        })
        .collect();
    let mut samples = Vec::new();
    for _ in 0..iterations.div_ceil(BLOCK) {
        let calls = proofs
            .iter()
            .map(|(path, value, proof)| {
                let client = &client;
                Box::new(move || {
                    client
                        .verify_membership(1, black_box(path), black_box(value), black_box(proof))
                        .context("a valid membership proof was refused")
                }) as Call<'_>
            })
            .collect();
        samples.push(time_block(calls)?);
    }
    Ok(median_us(samples))
}

/// Run the benchmark.
pub fn run(args: Args) -> Result<()> {
    ensure!(args.iterations > 0, "--iterations must be positive");
    ensure!(args.state_keys > 0, "--state-keys must be positive");
    let mut figures = Vec::new();
    for n in SIZES {
        if !args.json {
            eprintln!("measuring {n} validators…");
        }
        figures.push((n, measure_headers(n, args.iterations)?));
    }
    let column = |i: usize| BySize(figures.iter().map(|(n, f)| (*n, f[i])).collect());
    let (native_us, tendermint_us) = (column(0), column(1));
    let ratio_100 = native_us.get(100) / tendermint_us.get(100);
    if !args.json {
        eprintln!("building a state of {} keys for proofs…", args.state_keys);
    }
    let proof_verify_us = measure_proofs(args.state_keys, args.iterations)?;
    let report = Report {
        ratio_100,
        proof_verify_us,
        native_skipping_us: column(2),
        tendermint_skipping_us: column(3),
        native_us,
        tendermint_us,
        iterations: args.iterations,
        proof_state_keys: args.state_keys,
        clock: clock_name(),
    };
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
        return Ok(());
    }
    println!(
        "Header verification, µs per call: {} calls in blocks of {BLOCK}, median block, {} clock \
         (ed25519, equal powers, every validator signs)",
        args.iterations, report.clock
    );
    println!(
        "{:>10} | {:>10} {:>10} {:>6} | {:>10} {:>10} {:>6}",
        "validators", "native", "tendermint", "ratio", "native", "tendermint", "ratio"
    );
    println!(
        "{:>10} | {:^29} | {:^29}",
        "", "sequential (1 -> 2)", "skipping (1 -> 10)"
    );
    for (n, [seq, tm_seq, skip, tm_skip]) in &figures {
        println!(
            "{n:>10} | {seq:>10.1} {tm_seq:>10.1} {:>6.2} | {skip:>10.1} {tm_skip:>10.1} {:>6.2}",
            seq / tm_seq,
            skip / tm_skip
        );
    }
    println!("ratio at 100 validators (sequential): {:.2}", report.ratio_100);
    println!(
        "State proof verification (native verify_membership, {} keys in the namespace): {:.1} µs",
        args.state_keys, report.proof_verify_us
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser as _;

    #[test]
    fn both_clients_accept_the_generated_headers() {
        // Every timed call checks its verdict, so two rounds prove both sides verify what they are timed on.
        let figures = measure_headers(4, 2).expect("both verifiers accept");
        assert!(figures.iter().all(|f| f.is_finite() && *f > 0.0));
    }

    #[test]
    fn generated_proofs_verify() {
        assert!(measure_proofs(300, 10).expect("valid proofs are accepted") > 0.0);
    }

    #[test]
    fn the_command_line_parses() {
        let cli = crate::Cli::try_parse_from([
            "causeway-scenarios",
            "bench",
            "light-client",
            "--json",
            "--iterations",
            "5",
        ])
        .expect("parses");
        let crate::Command::Bench(crate::BenchCommand::LightClient(args)) = cli.command else {
            panic!("wrong subcommand");
        };
        assert!(args.json);
        assert_eq!((args.iterations, args.state_keys), (5, 100_000));
        assert!(crate::Cli::try_parse_from([
            "causeway-scenarios",
            "bench",
            "light-client",
            "--iterations",
            "x"
        ])
        .is_err());
    }
}
