//! The command line: one [`Cli`] with a subcommand per job: the daemon's `start`, `clear`, `status` and `keys`,
//! and the offline `verify`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Relay headers and proofs between the chains of a Causeway alliance.
#[derive(Debug, Parser)]
#[command(name = "causeway-relayer", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The relayer's jobs.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Relay until stopped (SIGINT/SIGTERM): every packet, acknowledgement, timeout and atomic decision between
    /// the hub and the members in the config, with clearing on start.
    Start(ConfigArgs),
    /// Relay everything pending now, then exit (0 when nothing is left due).
    Clear(ClearArgs),
    /// Print each chain's height, the hub's clients of the members and what is due, as JSON.
    Status(ConfigArgs),
    /// Manage the relayer's signing keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Verify foreign-chain data offline. Exit code 0 = verified, 1 = rejected, 2 = malformed input.
    Verify(VerifyArgs),
}

/// `--config relayer.toml`.
#[derive(Debug, Args)]
pub struct ConfigArgs {
    /// The relayer's configuration (see `causeway_relayer::config`).
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
    /// Log format: text or json (level from RUST_LOG, default info).
    #[arg(long, default_value = "text", value_parser = ["text", "json"])]
    pub log_format: String,
}

/// `clear`.
#[derive(Debug, Args)]
pub struct ClearArgs {
    /// The configuration.
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Give up (exit 1) when work is still due after this many seconds.
    #[arg(long, default_value_t = 120)]
    pub timeout_secs: u64,
}

/// `keys`.
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Generate a key file (refuses to overwrite).
    Generate {
        /// Signature suite: ed25519, sm2 or secp256k1.
        #[arg(long, default_value = "ed25519")]
        suite: causeway_light_client::Suite,
        /// Where to write it.
        #[arg(long)]
        out: PathBuf,
    },
    /// Print a key file's public key and address (fund this address on every chain relayed to).
    Show {
        /// The key file.
        file: PathBuf,
    },
}

/// `verify` and what to verify.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The kind of data.
    #[command(subcommand)]
    pub target: VerifyTarget,
}

/// What `verify` can check.
#[derive(Debug, Subcommand)]
pub enum VerifyTarget {
    /// A Tendermint/CometBFT light block from a trusted one (sequential or skipping, as the heights dictate).
    Tendermint(TendermintArgs),
    /// An ICS-23 membership proof (or non-membership, without --value) against a root.
    Ics23(Ics23Args),
    /// An EIP-1186 eth_getProof response (account and every storage slot) against a block's state root.
    EthProof(EthProofArgs),
    /// One Besu header's seals against the validators that must seal it.
    BesuHeader(BesuHeaderArgs),
    /// A Besu chain block by block from its genesis, following validator votes.
    BesuChain(BesuChainArgs),
}

/// `verify tendermint`.
#[derive(Debug, Args)]
pub struct TendermintArgs {
    /// The trusted light block: a LightBlock JSON file, or a directory holding the CometBFT RPC responses
    /// `signed_header.json` (/commit), `validators.json` and `next_validators.json` (/validators).
    #[arg(long, value_name = "FILE")]
    pub trusted: PathBuf,
    /// The light block to verify, in the same forms.
    #[arg(long, value_name = "FILE")]
    pub untrusted: PathBuf,
    /// The current time, RFC 3339 (e.g. 2024-05-01T12:00:00Z).
    #[arg(long, value_name = "RFC3339")]
    pub now: String,
    /// How long the trusted header stays a valid anchor, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 14 * 24 * 3600)]
    pub trusting_period: u64,
    /// Fraction of the trusted validators' power that must sign a skipped-to header, as N/D (1/3 ≤ N/D ≤ 1).
    #[arg(long, value_name = "N/D", default_value = "1/3")]
    pub trust_threshold: String,
    /// How far the untrusted header's time may be ahead of --now, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 5)]
    pub clock_drift: u64,
}

/// Tree layouts an ICS-23 proof may follow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SpecArg {
    /// IAVL (Cosmos SDK application stores).
    Iavl,
    /// Tendermint simple Merkle tree (the Cosmos SDK multi-store).
    Tendermint,
    /// Sparse Merkle tree.
    Smt,
}

/// `verify ics23`.
#[derive(Debug, Args)]
pub struct Ics23Args {
    /// The trusted root (hex).
    #[arg(long, value_name = "HEX")]
    pub root: String,
    /// The key (hex).
    #[arg(long, value_name = "HEX")]
    pub key: String,
    /// The value (hex); omit it to verify that the key is absent.
    #[arg(long, value_name = "HEX")]
    pub value: Option<String>,
    /// The protobuf-encoded CommitmentProof (hex).
    #[arg(long, value_name = "HEX")]
    pub proof: String,
    /// The tree layout the proof must follow.
    #[arg(long, value_enum, default_value = "iavl")]
    pub spec: SpecArg,
}

/// Besu consensus families.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ConsensusArg {
    /// QBFT.
    Qbft,
    /// IBFT 2.0.
    Ibft2,
    /// IBFT 1.0 (legacy).
    Ibft,
}

/// `verify eth-proof`.
#[derive(Debug, Args)]
pub struct EthProofArgs {
    /// The block: an eth_getBlockByNumber response or its `result` object.
    #[arg(long, value_name = "FILE")]
    pub block: PathBuf,
    /// The proof: an eth_getProof response or its `result` object.
    #[arg(long, value_name = "FILE")]
    pub proof: PathBuf,
    /// Check the block's claimed hash with this BFT family's rule instead of Ethereum's keccak(RLP(header)).
    #[arg(long, value_enum)]
    pub consensus: Option<ConsensusArg>,
}

/// `verify besu-header`.
#[derive(Debug, Args)]
pub struct BesuHeaderArgs {
    /// The consensus family.
    #[arg(long, value_enum)]
    pub consensus: ConsensusArg,
    /// The header: RLP as hex, or JSON (an eth_getBlockByNumber response, its result, or a header object).
    #[arg(long, value_name = "FILE")]
    pub header: PathBuf,
    /// The validators that must seal it: a JSON list of addresses.
    #[arg(long, value_name = "FILE")]
    pub validators: PathBuf,
}

/// `verify besu-chain`.
#[derive(Debug, Args)]
pub struct BesuChainArgs {
    /// The consensus family.
    #[arg(long, value_enum)]
    pub consensus: ConsensusArg,
    /// The Besu genesis file (JSON).
    #[arg(long, value_name = "FILE")]
    pub genesis: PathBuf,
    /// The blocks from 0 on, RLP-encoded back to back (binary, or hex text).
    #[arg(long, value_name = "FILE")]
    pub blocks: PathBuf,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("causeway-relayer").chain(args.iter().copied()))
    }

    fn target(args: &[&str]) -> VerifyTarget {
        match parse(args).map(|c| c.command) {
            Ok(Command::Verify(v)) => v.target,
            Ok(other) => panic!("{args:?} parsed as {other:?}"),
            Err(e) => panic!("{args:?} did not parse: {e}"),
        }
    }

    #[test]
    fn daemon_subcommands_parse() {
        assert!(matches!(parse(&["start", "--config", "r.toml"]).map(|c| c.command), Ok(Command::Start(_))));
        match parse(&["clear", "--config", "r.toml", "--timeout-secs", "5"]).map(|c| c.command) {
            Ok(Command::Clear(a)) => assert_eq!(a.timeout_secs, 5),
            other => panic!("{other:?}"),
        }
        assert!(parse(&["start"]).is_err(), "--config is required");
        assert!(parse(&["keys", "generate", "--suite", "rsa", "--out", "k"]).is_err());
    }

    /// `verify tendermint` with its three required arguments, then `extra`.
    fn tendermint(extra: &[&str]) -> Result<Cli, clap::Error> {
        let base = [
            "verify",
            "tendermint",
            "--trusted",
            "a",
            "--untrusted",
            "b",
            "--now",
            "2024-01-01T00:00:00Z",
        ];
        parse(&[base.as_slice(), extra].concat())
    }

    #[test]
    fn tendermint_has_defaults_and_needs_its_files() {
        let Ok(Command::Verify(VerifyArgs {
            target: VerifyTarget::Tendermint(t),
        })) = tendermint(&[]).map(|c| c.command)
        else {
            panic!("not tendermint")
        };
        assert_eq!(
            (t.trusting_period, t.trust_threshold.as_str(), t.clock_drift),
            (1_209_600, "1/3", 5)
        );
        let Ok(Command::Verify(VerifyArgs {
            target: VerifyTarget::Tendermint(t),
        })) = tendermint(&["--trusting-period", "60", "--trust-threshold", "2/3"]).map(|c| c.command)
        else {
            panic!("not tendermint")
        };
        assert_eq!((t.trusting_period, t.trust_threshold.as_str()), (60, "2/3"));
        assert!(
            parse(&["verify", "tendermint", "--trusted", "a", "--now", "x"]).is_err(),
            "--untrusted is required"
        );
        assert!(tendermint(&["--trusting-period", "-1"]).is_err());
    }

    #[test]
    fn ics23_value_is_optional_and_spec_defaults_to_iavl() {
        let VerifyTarget::Ics23(a) =
            target(&["verify", "ics23", "--root", "00", "--key", "01", "--proof", "02"])
        else {
            panic!("not ics23")
        };
        assert_eq!((a.value, a.spec), (None, SpecArg::Iavl));
        let VerifyTarget::Ics23(a) = target(&[
            "verify", "ics23", "--root", "00", "--key", "01", "--value", "03", "--proof", "02", "--spec",
            "smt",
        ]) else {
            panic!("not ics23")
        };
        assert_eq!((a.value.as_deref(), a.spec), (Some("03"), SpecArg::Smt));
        assert!(
            parse(&["verify", "ics23", "--root", "00", "--key", "01"]).is_err(),
            "--proof is required"
        );
    }

    #[test]
    fn besu_commands_take_a_known_consensus() {
        let VerifyTarget::BesuHeader(b) = target(&[
            "verify",
            "besu-header",
            "--consensus",
            "qbft",
            "--header",
            "h",
            "--validators",
            "v",
        ]) else {
            panic!("not besu-header")
        };
        assert_eq!(b.consensus, ConsensusArg::Qbft);
        let VerifyTarget::BesuChain(c) = target(&[
            "verify",
            "besu-chain",
            "--consensus",
            "ibft",
            "--genesis",
            "g",
            "--blocks",
            "b",
        ]) else {
            panic!("not besu-chain")
        };
        assert_eq!(c.consensus, ConsensusArg::Ibft);
        assert!(parse(&[
            "verify",
            "besu-header",
            "--consensus",
            "clique",
            "--header",
            "h",
            "--validators",
            "v"
        ])
        .is_err());
        let VerifyTarget::EthProof(e) = target(&["verify", "eth-proof", "--block", "b", "--proof", "p"])
        else {
            panic!("not eth-proof")
        };
        assert_eq!(e.consensus, None);
    }

    #[test]
    fn unknown_subcommands_are_refused() {
        assert!(parse(&["verify", "bitcoin"]).is_err());
        assert!(parse(&["verify"]).is_err());
        assert!(parse(&[]).is_err());
    }
}
