//! Pure verification of Tendermint light blocks: one step (sequential or skipping, as the heights dictate) and
//! skipping verification by bisection over a set of light blocks already fetched. Time is an argument.

use causeway_light_client::Time;
use tendermint::block::signed_header::SignedHeader;
use tendermint::block::Height;
use tendermint::chain::Id as ChainId;
use tendermint::validator::Set as ValidatorSet;
use tendermint::Hash;
use tendermint_light_client_verifier::types::{LightBlock, TrustedBlockState};
use tendermint_light_client_verifier::{ProdVerifier, Verdict, Verifier};

use super::{to_tm_time, Result, TendermintError, TendermintOptions};

/// What verification trusts about one height: the chain, the height and its time, and the validator set that
/// must sign the height after it (checked against the hash the trusted header commits to).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrustedState {
    chain_id: ChainId,
    height: Height,
    time: tendermint::Time,
    next_validators: ValidatorSet,
    next_validators_hash: Hash,
}

impl TrustedState {
    /// A trusted state from a signed header; the next validator set must hash to its `next_validators_hash`.
    pub fn new(signed_header: &SignedHeader, next_validators: ValidatorSet) -> Result<Self> {
        let h = &signed_header.header;
        Self::from_parts(
            h.chain_id.clone(),
            h.height,
            h.time,
            h.next_validators_hash,
            next_validators,
        )
    }

    /// A trusted state from what a light client remembers of a height (chain, height, time, next validators
    /// hash) and the validator set a relayer supplies for it, which must hash to the remembered hash.
    pub fn from_parts(
        chain_id: ChainId,
        height: Height,
        time: tendermint::Time,
        next_validators_hash: Hash,
        next_validators: ValidatorSet,
    ) -> Result<Self> {
        let got = next_validators.hash();
        if got != next_validators_hash {
            return Err(TendermintError::BadTrustedState(format!(
                "next validator set hashes to {got}, the trusted header at height {height} commits to {next_validators_hash}"
            )));
        }
        Ok(TrustedState {
            chain_id,
            height,
            time,
            next_validators,
            next_validators_hash,
        })
    }

    /// The trusted state a verified light block becomes.
    pub fn from_light_block(block: &LightBlock) -> Result<Self> {
        Self::new(&block.signed_header, block.next_validators.clone())
    }

    /// The chain.
    pub fn chain_id(&self) -> &ChainId {
        &self.chain_id
    }

    /// The validator set of the next height.
    pub fn next_validators(&self) -> &ValidatorSet {
        &self.next_validators
    }

    /// Height of the trusted header.
    pub fn height(&self) -> u64 {
        self.height.value()
    }

    fn as_state(&self) -> TrustedBlockState<'_> {
        TrustedBlockState {
            chain_id: &self.chain_id,
            header_time: self.time,
            height: self.height,
            next_validators: &self.next_validators,
            next_validators_hash: self.next_validators_hash,
        }
    }
}

fn verdict_to_result(verdict: Verdict) -> Result<()> {
    match verdict {
        Verdict::Success => Ok(()),
        Verdict::NotEnoughTrust(tally) => Err(TendermintError::NotEnoughTrust {
            tallied: tally.tallied,
            total: tally.total,
            numerator: tally.trust_threshold.numerator(),
            denominator: tally.trust_threshold.denominator(),
        }),
        Verdict::Invalid(detail) => Err(TendermintError::Invalid(detail.to_string())),
    }
}

/// Verify `untrusted` from `trusted` at time `now`: sequentially when it is the next height (its validators must
/// be the trusted next validators), by skipping otherwise (more than the trust threshold of the trusted next
/// validators' power must have signed it). In both cases more than 2/3 of its own validators must have signed it,
/// the trusted header must be within the trusting period, and the header must not be from the future.
pub fn verify_step(
    trusted: &TrustedState,
    untrusted: &LightBlock,
    options: &TendermintOptions,
    now: Time,
) -> Result<()> {
    let opts = options.to_verifier_options()?;
    let now = to_tm_time(now)?;
    let verdict = ProdVerifier::default().verify_update_header(
        untrusted.as_untrusted_state(),
        trusted.as_state(),
        &opts,
        now,
    );
    verdict_to_result(verdict)
}

/// Like [`verify_step`] but without the "header from the future" check, as for headers in misbehaviour evidence.
pub fn verify_evidence_step(
    trusted: &TrustedState,
    untrusted: &LightBlock,
    options: &TendermintOptions,
    now: Time,
) -> Result<()> {
    let opts = options.to_verifier_options()?;
    let now = to_tm_time(now)?;
    let verdict = ProdVerifier::default().verify_misbehaviour_header(
        untrusted.as_untrusted_state(),
        trusted.as_state(),
        &opts,
        now,
    );
    verdict_to_result(verdict)
}

/// What skipping verification did to reach its target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SkippingOutcome {
    /// Heights verified, in the order they became trusted (the target last).
    pub trace: Vec<u64>,
    /// How many times the verifier had to fall back to a height half-way between trust and its pending target.
    pub bisections: usize,
}

/// Skipping verification ("bisection"): try to jump from `trusted` straight to `target`; whenever too little of the
/// trusted validator set signed the pending block, fall back to the height half-way between, then aim for the
/// target again from there. `blocks` supplies light blocks by height (already fetched: this does no I/O).
///
/// Returns the verified target block and the path taken. Any invalid block ends the search with its error.
pub fn verify_skipping<'a, F>(
    trusted: &TrustedState,
    target: u64,
    blocks: F,
    options: &TendermintOptions,
    now: Time,
) -> Result<(LightBlock, SkippingOutcome)>
where
    F: Fn(u64) -> Option<&'a LightBlock>,
{
    if target <= trusted.height() {
        return Err(TendermintError::Invalid(format!(
            "target height {target} is not above the trusted height {}",
            trusted.height()
        )));
    }
    let mut current = trusted.clone();
    let mut pending = target;
    let mut outcome = SkippingOutcome {
        trace: Vec::new(),
        bisections: 0,
    };
    loop {
        let block = blocks(pending).ok_or(TendermintError::MissingBlock(pending))?;
        if block.height().value() != pending {
            return Err(TendermintError::Invalid(format!(
                "provider returned height {} when asked for {pending}",
                block.height().value()
            )));
        }
        match verify_step(&current, block, options, now) {
            Ok(()) => {
                current = TrustedState::from_light_block(block)?;
                outcome.trace.push(pending);
                if pending == target {
                    return Ok((block.clone(), outcome));
                }
                pending = target;
            }
            Err(TendermintError::NotEnoughTrust { .. }) if pending > current.height() + 1 => {
                outcome.bisections += 1;
                pending = current.height() + (pending - current.height()) / 2;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Compare a verified block with what witnesses report at the same height: any witness holding a different
/// header there is a conflict (a possible fork or attack) and the verified block must not be used.
pub fn cross_check(verified: &LightBlock, witnesses: &[Option<&LightBlock>]) -> Result<()> {
    let height = verified.height().value();
    let hash = verified.signed_header.header.hash();
    for (i, w) in witnesses.iter().enumerate() {
        if let Some(w) = w {
            if w.signed_header.header.hash() != hash {
                return Err(TendermintError::Conflict { witness: i, height });
            }
        }
    }
    Ok(())
}
