//! `bench state`: authenticated-state throughput and proofs on the real RocksDB store.
//!
//! Loads `--keys` random 32-byte keys with 100-byte values in blocks of `--block` keys (one atomic, fsynced
//! commit per block), then measures steady-state blocks at that size (half updates of existing keys, half new
//! keys), then proof generation, verification and size for random present and absent keys.

use std::time::Instant;

use anyhow::{Context, Result};
use causeway_chain::state::{Store, StoreOptions, WriteSet};
use causeway_light_client::proof::verify;
use causeway_light_client::{HashAlg, Namespace};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

/// Options of `bench state`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Keys in the tree before measuring.
    #[arg(long, default_value_t = 1_000_000)]
    pub keys: u64,
    /// Keys written per block (one commit).
    #[arg(long, default_value_t = 1_000)]
    pub block: u64,
    /// Steady-state blocks measured after the load.
    #[arg(long, default_value_t = 100)]
    pub measure_blocks: u64,
    /// Proofs generated and verified.
    #[arg(long, default_value_t = 10_000)]
    pub proofs: u64,
    /// Hash function of the chain.
    #[arg(long, default_value = "sha256", value_parser = ["sha256", "sm3"])]
    pub hash: String,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Serialize)]
struct Report {
    keys_in_tree: u64,
    block_keys: u64,
    hash: String,
    fsync_per_block: bool,
    load_writes_per_s: f64,
    writes_per_s: f64,
    block_commit_ms_p50: f64,
    /// Of a commit: computing the new trees, root and write batch (`Store::prepare`, reads included).
    block_prepare_ms_p50: f64,
    /// Of a commit: writing the batch with its fsync (`Store::apply`).
    block_write_ms_p50: f64,
    proof_gen_us: f64,
    proof_verify_us: f64,
    proof_bytes: f64,
    absent_proof_verify_us: f64,
    absent_proof_bytes: f64,
}

fn random_block(rng: &mut ChaCha8Rng, ns: &Namespace, n: u64, existing: &[[u8; 32]]) -> Result<(WriteSet, Vec<[u8; 32]>)> {
    let mut ws = WriteSet::new();
    let mut fresh = Vec::new();
    for i in 0..n {
        let key: [u8; 32] = if !existing.is_empty() && i % 2 == 0 {
            existing[rng.gen_range(0..existing.len())]
        } else {
            let k: [u8; 32] = rng.gen();
            fresh.push(k);
            k
        };
        let mut value = vec![0u8; 100];
        rng.fill(&mut value[..]);
        ws.put(ns.clone(), key.to_vec(), Some(value))?;
    }
    Ok((ws, fresh))
}

fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples.get(samples.len() / 2).copied().unwrap_or(0.0)
}

/// Run the benchmark.
pub fn run(args: Args) -> Result<()> {
    let alg = if args.hash == "sm3" { HashAlg::Sm3 } else { HashAlg::Sha256 };
    let dir = tempfile::tempdir().context("temporary directory")?;
    let mut store = Store::open(dir.path(), StoreOptions { hash_alg: alg, retention: Some(100), sync: true })?;
    let ns = Namespace::new("bench")?;
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let mut keys: Vec<[u8; 32]> = Vec::with_capacity(args.keys as usize);
    let block = args.block.max(1);
    let blocks = args.keys.div_ceil(block);
    let mut height = 0u64;
    let started = Instant::now();
    for _ in 0..blocks {
        let (ws, fresh) = random_block(&mut rng, &ns, block, &[])?;
        height += 1;
        store.commit(height, &ws)?;
        keys.extend(fresh);
    }
    let load_secs = started.elapsed().as_secs_f64();
    let (mut commit_ms, mut prepare_ms, mut write_ms) = (Vec::new(), Vec::new(), Vec::new());
    let started = Instant::now();
    for _ in 0..args.measure_blocks {
        let (ws, fresh) = random_block(&mut rng, &ns, block, &keys)?;
        height += 1;
        let t = Instant::now();
        // `Store::commit` is exactly prepare then apply; timed apart to show compute versus fsync.
        let prepared = store.prepare(height, &ws)?;
        let prepared_at = t.elapsed();
        store.apply(prepared)?;
        let total = t.elapsed();
        commit_ms.push(total.as_secs_f64() * 1e3);
        prepare_ms.push(prepared_at.as_secs_f64() * 1e3);
        write_ms.push((total - prepared_at).as_secs_f64() * 1e3);
        keys.extend(fresh);
    }
    let steady_secs = started.elapsed().as_secs_f64();
    let root = store.latest_root();

    let mut proofs = Vec::with_capacity(args.proofs as usize);
    let t = Instant::now();
    for _ in 0..args.proofs {
        let key = keys[rng.gen_range(0..keys.len())];
        let (value, proof) = store.prove(height, &ns, &key)?;
        proofs.push((key, value.context("a written key has a value")?, proof));
    }
    let gen_us = t.elapsed().as_secs_f64() * 1e6 / args.proofs as f64;
    let bytes: usize = proofs.iter().map(|(_, _, p)| borsh::to_vec(p).map(|b| b.len()).unwrap_or(0)).sum();
    let t = Instant::now();
    for (key, value, proof) in &proofs {
        verify(alg, &root, &ns, key, Some(value), proof)?;
    }
    let verify_us = t.elapsed().as_secs_f64() * 1e6 / args.proofs as f64;

    let mut absent = Vec::new();
    for _ in 0..args.proofs.min(2_000) {
        let key: [u8; 32] = rng.gen();
        let (value, proof) = store.prove(height, &ns, &key)?;
        anyhow::ensure!(value.is_none(), "random key unexpectedly present");
        absent.push((key, proof));
    }
    let absent_bytes: usize = absent.iter().map(|(_, p)| borsh::to_vec(p).map(|b| b.len()).unwrap_or(0)).sum();
    let t = Instant::now();
    for (key, proof) in &absent {
        verify(alg, &root, &ns, key, None, proof)?;
    }
    let absent_us = t.elapsed().as_secs_f64() * 1e6 / absent.len().max(1) as f64;

    let report = Report {
        keys_in_tree: keys.len() as u64,
        block_keys: block,
        hash: args.hash.clone(),
        fsync_per_block: true,
        load_writes_per_s: (blocks * block) as f64 / load_secs,
        writes_per_s: (args.measure_blocks * block) as f64 / steady_secs.max(1e-9),
        block_commit_ms_p50: median(commit_ms),
        block_prepare_ms_p50: median(prepare_ms),
        block_write_ms_p50: median(write_ms),
        proof_gen_us: gen_us,
        proof_verify_us: verify_us,
        proof_bytes: bytes as f64 / proofs.len().max(1) as f64,
        absent_proof_verify_us: absent_us,
        absent_proof_bytes: absent_bytes as f64 / absent.len().max(1) as f64,
    };
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!("state benchmark ({} keys, {}-key blocks, {}, fsync per block)", report.keys_in_tree, block, report.hash);
        println!("  load              {:>12.0} writes/s", report.load_writes_per_s);
        println!(
            "  steady state      {:>12.0} writes/s   (p50 commit {:.1} ms = prepare {:.1} + write/fsync {:.1})",
            report.writes_per_s, report.block_commit_ms_p50, report.block_prepare_ms_p50, report.block_write_ms_p50
        );
        println!("  proof generation  {:>12.1} µs", report.proof_gen_us);
        println!("  proof verify      {:>12.1} µs   ({:.0} bytes)", report.proof_verify_us, report.proof_bytes);
        println!("  absence verify    {:>12.1} µs   ({:.0} bytes)", report.absent_proof_verify_us, report.absent_proof_bytes);
    }
    Ok(())
}
