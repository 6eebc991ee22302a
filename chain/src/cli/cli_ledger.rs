//! The `ledger` subcommands of `causeway-chain`: snapshots, record evidence, split, merge, verify, and the first
//! start of a chain born of a split or merge. Offline: they read a stopped node's data directory or files.
//!
//! Exit codes: 0 success; 1 a verification failed (tampered or mismatching files, a namespace clash);
//! 2 bad arguments; 3 a file is missing, unreadable or malformed.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use crate::app::{App, AppOptions};
use crate::config::NodeConfig;
use crate::genesis::{rfc3339, Genesis};
use crate::ledger::{
    self, LedgerError, MergeParent, NewChainFiles, RecordEvidence, RecordKind, SplitFiles,
};
use causeway_light_client::Time;
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};

/// `causeway-chain ledger …`.
#[derive(Subcommand, Debug)]
pub enum LedgerCommand {
    /// Write a node's state at a height as a snapshot file (the node must be stopped).
    Snapshot {
        /// The node whose store is read.
        #[command(flatten)]
        node: NodeArgs,
        /// The height.
        #[arg(long)]
        height: u64,
        /// The snapshot file to write.
        #[arg(long)]
        out: PathBuf,
    },
    /// Write the evidence of a split or merge-out record committed at a height (the node must be stopped).
    Evidence {
        /// The node whose store is read.
        #[command(flatten)]
        node: NodeArgs,
        /// The record's height (the split height or the final height).
        #[arg(long)]
        height: u64,
        /// split or merge-out.
        #[arg(long, value_parser = parse_kind)]
        kind: RecordKind,
        /// The evidence file to write (JSON).
        #[arg(long)]
        out: PathBuf,
    },
    /// Build a child chain's genesis and carried state from the parent's snapshot at H-1 and the split record's
    /// evidence.
    Split {
        /// The parent and its split record.
        #[command(flatten)]
        parent: SplitArgs,
        /// Where the new chain's files go.
        #[command(flatten)]
        out: OutArgs,
    },
    /// Build a merged chain's genesis and carried state from both parents' snapshots and merge-out evidence.
    Merge {
        /// The two chains merging and their records.
        #[command(flatten)]
        parents: MergeArgs,
        /// Where the new chain's files go.
        #[command(flatten)]
        out: OutArgs,
    },
    /// Verify a split or merge offline from the snapshots, the evidence and the new chain's files.
    #[command(subcommand)]
    Verify(VerifyCommand),
    /// Initialise a stopped node of a chain born of a split or merge from its carried-state file; `start` it then.
    Init {
        /// The node's configuration file.
        #[arg(long)]
        config: PathBuf,
        /// The carried-state file written by `ledger split` or `ledger merge`.
        #[arg(long)]
        state: PathBuf,
    },
}

/// `causeway-chain ledger verify …`.
#[derive(Subcommand, Debug)]
pub enum VerifyCommand {
    /// Verify a split.
    Split {
        /// The parent and its split record.
        #[command(flatten)]
        parent: SplitArgs,
        /// The child chain's files.
        #[command(flatten)]
        child: NewChainArgs,
    },
    /// Verify a merge.
    Merge {
        /// The two chains merging and their records.
        #[command(flatten)]
        parents: MergeArgs,
        /// The merged chain's files.
        #[command(flatten)]
        merged: NewChainArgs,
    },
}

/// A stopped node, by its configuration file.
#[derive(Args, Debug)]
pub struct NodeArgs {
    /// The node's configuration file (its data directory and genesis).
    #[arg(long)]
    config: PathBuf,
}

/// The parent side of a split.
#[derive(Args, Debug)]
pub struct SplitArgs {
    /// The parent's snapshot at the height before the split.
    #[arg(long)]
    from: PathBuf,
    /// The split record's evidence.
    #[arg(long)]
    record: PathBuf,
}

/// Where a new chain's files go.
#[derive(Args, Debug)]
pub struct OutArgs {
    /// The new chain's genesis (JSON).
    #[arg(long)]
    out_genesis: PathBuf,
    /// The new chain's carried-state file.
    #[arg(long)]
    out_state: PathBuf,
    /// The new chain's genesis time (RFC 3339); default: now.
    #[arg(long, value_parser = rfc3339::parse)]
    genesis_time: Option<Time>,
}

/// The new chain's files to verify.
#[derive(Args, Debug)]
pub struct NewChainArgs {
    /// Its genesis.
    #[arg(long)]
    genesis: PathBuf,
    /// Its carried-state file.
    #[arg(long)]
    state: PathBuf,
}

/// Both parents of a merge.
#[derive(Args, Debug)]
pub struct MergeArgs {
    /// The first parent's snapshot at the height before its final height.
    #[arg(long)]
    a_snapshot: PathBuf,
    /// The first parent's merge-out evidence.
    #[arg(long)]
    a_record: PathBuf,
    /// The second parent's snapshot.
    #[arg(long)]
    b_snapshot: PathBuf,
    /// The second parent's merge-out evidence.
    #[arg(long)]
    b_record: PathBuf,
}

fn parse_kind(s: &str) -> Result<RecordKind, String> {
    match s {
        "split" => Ok(RecordKind::Split),
        "merge-out" | "merge_out" => Ok(RecordKind::MergeOut),
        other => Err(format!(
            "unknown record kind {other:?} (expected split or merge-out)"
        )),
    }
}

fn progress(what: &str) -> ProgressBar {
    let bar = ProgressBar::new_spinner();
    if let Ok(style) =
        ProgressStyle::with_template("{spinner} {msg}: {human_pos} entries ({per_sec}) {elapsed}")
    {
        bar.set_style(style);
    }
    bar.set_message(what.to_string());
    bar.enable_steady_tick(std::time::Duration::from_millis(120));
    bar
}

fn open_node(args: &NodeArgs) -> Result<App> {
    let cfg = NodeConfig::load(&args.config).with_context(|| format!("config {}", args.config.display()))?;
    let genesis = Genesis::load(&cfg.genesis)?;
    let options = AppOptions {
        sync: false,
        ..AppOptions::default()
    };
    Ok(App::open(&cfg.data_dir.join("state"), genesis, vec![], options)?)
}

fn now() -> Time {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    Time(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

fn merge_parents<'a>(
    args: &'a MergeArgs,
    a: &'a RecordEvidence,
    b: &'a RecordEvidence,
) -> (MergeParent<'a>, MergeParent<'a>) {
    (
        MergeParent {
            snapshot: &args.a_snapshot,
            evidence: a,
        },
        MergeParent {
            snapshot: &args.b_snapshot,
            evidence: b,
        },
    )
}

fn load_pair(args: &MergeArgs) -> Result<(RecordEvidence, RecordEvidence)> {
    Ok((
        RecordEvidence::load(&args.a_record)?,
        RecordEvidence::load(&args.b_record)?,
    ))
}

/// Run a `ledger` subcommand.
pub fn ledger(cmd: LedgerCommand) -> Result<()> {
    match cmd {
        LedgerCommand::Snapshot { node, height, out } => {
            let app = open_node(&node)?;
            let bar = progress("exporting");
            let s = ledger::write_snapshot(&app, height, &out, &bar)?;
            bar.finish_and_clear();
            println!(
                "wrote {}: height {}, root {}, {} namespaces, {} entries",
                out.display(),
                s.height,
                s.state_root,
                s.namespaces,
                s.entries
            );
        }
        LedgerCommand::Evidence {
            node,
            height,
            kind,
            out,
        } => {
            let app = open_node(&node)?;
            let evidence = RecordEvidence::collect(&app, kind, height)?;
            evidence.verify(None)?;
            evidence.save(&out)?;
            println!(
                "wrote {} ({kind:?} record at height {height} of {})",
                out.display(),
                app.chain_id()
            );
        }
        LedgerCommand::Split { parent, out } => {
            let evidence = RecordEvidence::load(&parent.record)?;
            let bar = progress("splitting");
            let born = ledger::split(
                SplitFiles {
                    parent_snapshot: &parent.from,
                    evidence: &evidence,
                },
                out.genesis_time.unwrap_or_else(now),
                &out.out_genesis,
                &out.out_state,
                &bar,
            )?;
            bar.finish_and_clear();
            print_born(&born, &out);
        }
        LedgerCommand::Merge { parents, out } => {
            let (a, b) = load_pair(&parents)?;
            let (pa, pb) = merge_parents(&parents, &a, &b);
            let bar = progress("merging");
            let born = ledger::merge(
                pa,
                pb,
                out.genesis_time.unwrap_or_else(now),
                &out.out_genesis,
                &out.out_state,
                &bar,
            )?;
            bar.finish_and_clear();
            print_born(&born, &out);
        }
        LedgerCommand::Verify(v) => {
            let bar = progress("verifying");
            let verdict = match v {
                VerifyCommand::Split { parent, child } => {
                    let evidence = RecordEvidence::load(&parent.record)?;
                    ledger::verify_split(
                        SplitFiles {
                            parent_snapshot: &parent.from,
                            evidence: &evidence,
                        },
                        NewChainFiles {
                            genesis: &child.genesis,
                            state: &child.state,
                        },
                        &bar,
                    )?
                }
                VerifyCommand::Merge { parents, merged } => {
                    let (a, b) = load_pair(&parents)?;
                    let (pa, pb) = merge_parents(&parents, &a, &b);
                    ledger::verify_merge(
                        pa,
                        pb,
                        NewChainFiles {
                            genesis: &merged.genesis,
                            state: &merged.state,
                        },
                        &bar,
                    )?
                }
            };
            bar.finish_and_clear();
            println!(
                "{}",
                serde_json::to_string(&serde_json::json!({ "verified": true, "check": verdict }))?
            );
        }
        LedgerCommand::Init { config, state } => {
            let cfg = NodeConfig::load(&config).with_context(|| format!("config {}", config.display()))?;
            let genesis = Genesis::load(&cfg.genesis)?;
            let file = std::fs::File::open(&state).with_context(|| format!("{}", state.display()))?;
            let bar = progress("importing");
            let app = App::open_carried(
                &cfg.data_dir.join("state"),
                genesis,
                &mut std::io::BufReader::new(file),
                vec![],
                AppOptions::default(),
                &bar,
            )?;
            bar.finish_and_clear();
            println!(
                "initialised {} at height {} with state root {}",
                app.chain_id(),
                app.height(),
                app.store().latest_root()
            );
        }
    }
    Ok(())
}

fn print_born(born: &ledger::Born, out: &OutArgs) {
    println!(
        "wrote {} (chain {}, {} carried namespaces) and {} ({} entries, root {})",
        out.out_genesis.display(),
        born.genesis.chain_id,
        born.carried.namespaces,
        out.out_state.display(),
        born.carried.entries,
        born.carried.state_root
    );
}

/// The exit code of a failed `ledger` command: 1 when a verification failed, 3 for unusable files.
pub fn exit_code(e: &anyhow::Error) -> ExitCode {
    match e.downcast_ref::<LedgerError>() {
        Some(
            LedgerError::Evidence(_)
            | LedgerError::Snapshot { .. }
            | LedgerError::Mismatch(_)
            | LedgerError::Clash(_),
        ) => ExitCode::from(1),
        _ => ExitCode::from(3),
    }
}
