//! `causeway-relayer verify`: offline verification of foreign-chain data with the hub's own adapters.
//!
//! Each check reads its files, hands the bytes to `causeway-adapters`, and reports an [`Outcome`]: verified
//! (exit 0), rejected with the reason (exit 1), or malformed input with a message saying what could not be read
//! (exit 2). Nothing here decides validity itself.

mod ethereum;
mod input;
mod tendermint;

use crate::cli::VerifyTarget;

/// How a verification ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The data verified; the summary says what was established.
    Verified(String),
    /// The data is well formed but does not verify; the reason says why.
    Rejected(String),
    /// The input could not be read or parsed; the message says which and why.
    Malformed(String),
}

impl Outcome {
    /// 0 = verified, 1 = rejected, 2 = malformed input.
    pub fn exit_code(&self) -> u8 {
        match self {
            Outcome::Verified(_) => 0,
            Outcome::Rejected(_) => 1,
            Outcome::Malformed(_) => 2,
        }
    }

    /// Print the outcome: the verified summary on stdout, a rejection or an input error on stderr.
    pub fn report(&self) {
        match self {
            Outcome::Verified(s) => println!("verified: {s}"),
            Outcome::Rejected(r) => eprintln!("rejected: {r}"),
            Outcome::Malformed(m) => eprintln!("malformed input: {m}"),
        }
    }
}

/// Why a check stopped early: what `?` carries inside the checks.
#[derive(Debug)]
pub(crate) enum Stop {
    Rejected(String),
    Malformed(String),
}

impl From<Stop> for Outcome {
    fn from(s: Stop) -> Self {
        match s {
            Stop::Rejected(r) => Outcome::Rejected(r),
            Stop::Malformed(m) => Outcome::Malformed(m),
        }
    }
}

impl From<causeway_adapters::tendermint::TendermintError> for Stop {
    fn from(e: causeway_adapters::tendermint::TendermintError) -> Self {
        if e.is_malformed() {
            Stop::Malformed(e.to_string())
        } else {
            Stop::Rejected(e.to_string())
        }
    }
}

impl From<causeway_adapters::tendermint::Ics23Error> for Stop {
    fn from(e: causeway_adapters::tendermint::Ics23Error) -> Self {
        match e {
            causeway_adapters::tendermint::Ics23Error::Malformed(_) => Stop::Malformed(e.to_string()),
            _ => Stop::Rejected(e.to_string()),
        }
    }
}

impl From<causeway_adapters::ethereum::EthError> for Stop {
    fn from(e: causeway_adapters::ethereum::EthError) -> Self {
        if e.is_malformed() {
            Stop::Malformed(e.to_string())
        } else {
            Stop::Rejected(e.to_string())
        }
    }
}

/// Run one verification.
pub fn run(target: &VerifyTarget) -> Outcome {
    let result = match target {
        VerifyTarget::Tendermint(a) => tendermint::light_block(a),
        VerifyTarget::Ics23(a) => tendermint::ics23(a),
        VerifyTarget::EthProof(a) => ethereum::eth_proof(a),
        VerifyTarget::BesuHeader(a) => ethereum::besu_header(a),
        VerifyTarget::BesuChain(a) => ethereum::besu_chain(a),
    };
    match result {
        Ok(summary) => Outcome::Verified(summary),
        Err(stop) => stop.into(),
    }
}
