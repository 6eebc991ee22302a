//! Verification of commit certificates: did enough of a validator set precommit this block?
//!
//! **Owns**: the rules that turn a [`CommitCertificate`] and a [`ValidatorSet`] into a verified amount of voting
//! power: signatures in strictly increasing validator-index order, each a precommit over
//! [`CommitCertificate::sign_bytes`] by the key at that index, checked together with batch verification, and the
//! power thresholds (more than 2/3 of the signing set; more than a trust threshold of a *different*, trusted set,
//! for skipping verification). **Must never**: decide which set is trusted, look at headers or time — that is the
//! light client's job ([`crate::native`]) — or verify a signature one by one when a batch will do.
//!
//! Two coverages exist, and the choice is explicit in the function name:
//! - [`verify_commit`] and [`verify_commit_trusting`] check **every** relevant signature: what consensus needs for
//!   the certificate a block carries, where a single bad signature makes the certificate invalid.
//! - [`verify_commit_light`] checks signatures in index order **only until** the required thresholds are passed,
//!   then stops: what a light client needs (a proof that enough power signed), and what tendermint-rs's verifier
//!   does too. Signatures after that point are neither verified nor counted; a certificate whose surplus
//!   signatures are bad is therefore accepted by the light path and refused by the full path.
//!
//! Every structural rule (order, index range, key and signature suite) is checked for all signatures in both
//! coverages, so the outcome never depends on where the light path stops.

use std::collections::HashMap;

use crate::client::TrustThreshold;
use crate::crypto::{verify_batch, BatchItem, CryptoError, PublicKey, Suite};
use crate::types::{CommitCertificate, Validator, ValidatorSet};

/// Why a commit certificate does not prove what was asked of it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommitError {
    /// Signatures are not in strictly increasing validator-index order (or repeat a validator).
    #[error("signature {position} breaks the strictly increasing validator index order")]
    Unordered {
        /// Position (in the certificate) of the first signature out of order.
        position: usize,
    },
    /// A signature names a validator index outside the set.
    #[error("validator index {index} is outside the validator set of {len}")]
    UnknownValidator {
        /// The index named.
        index: u32,
        /// Size of the set.
        len: usize,
    },
    /// A signature's suite differs from the suite of the validator's key.
    #[error("validator {index} holds a {key:?} key but signed with {sig:?}")]
    SuiteMismatch {
        /// Validator index.
        index: u32,
        /// Suite of the key.
        key: Suite,
        /// Suite of the signature.
        sig: Suite,
    },
    /// A signature does not verify.
    #[error("precommit signature of validator {index} does not verify")]
    BadSignature {
        /// Validator index of the bad signature.
        index: u32,
    },
    /// The batch was refused although every signature verifies on its own (a non-canonical encoding that batch
    /// and single verification judge differently); refused to be safe.
    #[error("signature batch refused: {0}")]
    Batch(CryptoError),
    /// The signers hold 2/3 or less of the signing set's power.
    #[error("signers hold {signed} of {total} voting power; more than two thirds is needed")]
    InsufficientPower {
        /// Power of the signers counted.
        signed: u64,
        /// Total power of the set.
        total: u64,
    },
    /// The signers hold no more than the trust threshold of the trusted set's power.
    #[error("signers hold {signed} of the trusted set's {total} power; more than {threshold} is needed")]
    InsufficientTrustedPower {
        /// Trusted power of the signers counted.
        signed: u64,
        /// Total power of the trusted set.
        total: u64,
        /// The threshold.
        threshold: TrustThreshold,
    },
}

/// What a successful verification counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CommitTally {
    /// Power (in the signing set) of the signatures verified.
    pub signed_power: u64,
    /// Total power of the signing set.
    pub total_power: u64,
    /// Power, in the trusted set, of the verified signers that belong to it (0 without a trusted set).
    pub trusted_power: u64,
    /// Total power of the trusted set (0 without a trusted set).
    pub trusted_total: u64,
    /// Number of signatures verified.
    pub verified: usize,
}

/// A trusted set, and the fraction of its power that must have signed.
#[derive(Clone, Copy, Debug)]
pub struct Trusting<'a> {
    /// The set trusted before this certificate (for a light client: the trusted height's next validators).
    pub validators: &'a ValidatorSet,
    /// More than this fraction of its power must have signed.
    pub threshold: TrustThreshold,
}

/// More than 2/3 of `total`.
fn is_quorum(signed: u64, total: u64) -> bool {
    u128::from(signed) * 3 > u128::from(total) * 2
}

/// Verify that `cert` proves a decision by `validators` on `chain_id`: every signature is checked, and together
/// they hold more than 2/3 of the set's power. Returns the signed power.
pub fn verify_commit(
    chain_id: &str,
    validators: &ValidatorSet,
    cert: &CommitCertificate,
) -> Result<u64, CommitError> {
    let tally = tally(
        chain_id,
        validators,
        cert,
        Requirements {
            quorum: true,
            trusting: None,
            until_met: false,
        },
    )?;
    Ok(tally.signed_power)
}

/// Verify the signatures in `cert` (made by `validators`) of the members of a different, `trusted` set, matched
/// by public key (hence by address), and check that they hold more than `threshold` of the trusted set's power.
/// Every such signature is checked; signatures of validators outside the trusted set are not. Returns the trusted
/// power that signed.
pub fn verify_commit_trusting(
    chain_id: &str,
    trusted: &ValidatorSet,
    threshold: TrustThreshold,
    validators: &ValidatorSet,
    cert: &CommitCertificate,
) -> Result<u64, CommitError> {
    let trusting = Some(Trusting {
        validators: trusted,
        threshold,
    });
    let tally = tally(
        chain_id,
        validators,
        cert,
        Requirements {
            quorum: false,
            trusting,
            until_met: false,
        },
    )?;
    Ok(tally.trusted_power)
}

/// The light client's check: more than 2/3 of `validators` signed and, with `trusting`, more than its threshold
/// of the trusted set too, verifying signatures in index order only until both thresholds are passed (see the
/// module documentation). One batch covers both thresholds, so no signature is verified twice.
pub fn verify_commit_light(
    chain_id: &str,
    validators: &ValidatorSet,
    cert: &CommitCertificate,
    trusting: Option<Trusting<'_>>,
) -> Result<CommitTally, CommitError> {
    tally(
        chain_id,
        validators,
        cert,
        Requirements {
            quorum: true,
            trusting,
            until_met: true,
        },
    )
}

/// What one call must establish.
struct Requirements<'a> {
    /// More than 2/3 of the signing set.
    quorum: bool,
    /// More than a threshold of a trusted set.
    trusting: Option<Trusting<'a>>,
    /// Stop verifying once every requirement is met (light coverage) instead of checking every relevant signature.
    until_met: bool,
}

/// Check the certificate's structure for all signatures and return the validator behind each one.
fn signers<'v>(
    validators: &'v ValidatorSet,
    cert: &CommitCertificate,
) -> Result<Vec<&'v Validator>, CommitError> {
    if let Some(position) = cert
        .signatures
        .windows(2)
        .position(|w| w[0].validator_index >= w[1].validator_index)
    {
        return Err(CommitError::Unordered {
            position: position + 1,
        });
    }
    cert.signatures
        .iter()
        .map(|s| {
            let v = validators
                .get(s.validator_index as usize)
                .ok_or(CommitError::UnknownValidator {
                    index: s.validator_index,
                    len: validators.len(),
                })?;
            if v.pub_key.suite() != s.signature.suite() {
                return Err(CommitError::SuiteMismatch {
                    index: s.validator_index,
                    key: v.pub_key.suite(),
                    sig: s.signature.suite(),
                });
            }
            Ok(v)
        })
        .collect()
}

fn tally(
    chain_id: &str,
    validators: &ValidatorSet,
    cert: &CommitCertificate,
    req: Requirements<'_>,
) -> Result<CommitTally, CommitError> {
    let signers = signers(validators, cert)?;
    let total_power = validators.total_power();
    // Trusted power by key: a validator of the signing set counts for the trusted set when it holds the same key.
    let trusted: Option<(HashMap<&PublicKey, u64>, u64, TrustThreshold)> = req.trusting.map(|t| {
        let by_key = t
            .validators
            .validators()
            .iter()
            .map(|v| (&v.pub_key, v.power))
            .collect();
        (by_key, t.validators.total_power(), t.threshold)
    });
    let trust_met = |power: u64| {
        trusted
            .as_ref()
            .is_none_or(|(_, total, th)| th.is_exceeded_by(power.into(), (*total).into()))
    };
    let quorum_met = |power: u64| !req.quorum || is_quorum(power, total_power);

    let mut tally = CommitTally {
        signed_power: 0,
        total_power,
        trusted_power: 0,
        trusted_total: trusted.as_ref().map_or(0, |(_, total, _)| *total),
        verified: 0,
    };
    let mut selected = Vec::with_capacity(signers.len());
    for (i, v) in signers.iter().enumerate() {
        let trusted_power = trusted
            .as_ref()
            .and_then(|(by_key, _, _)| by_key.get(&v.pub_key).copied());
        let wanted = if req.until_met {
            !quorum_met(tally.signed_power) || (trusted_power.is_some() && !trust_met(tally.trusted_power))
        } else {
            req.quorum || trusted_power.is_some()
        };
        if !wanted {
            if req.until_met && quorum_met(tally.signed_power) && trust_met(tally.trusted_power) {
                break;
            }
            continue;
        }
        selected.push(i);
        // Sums stay far below u64::MAX: a set's total power is at most MAX_TOTAL_POWER.
        tally.signed_power += v.power;
        tally.trusted_power += trusted_power.unwrap_or(0);
    }
    // Thresholds first: a certificate that cannot pass costs no signature verification.
    if !quorum_met(tally.signed_power) {
        return Err(CommitError::InsufficientPower {
            signed: tally.signed_power,
            total: total_power,
        });
    }
    if let Some((_, total, threshold)) = &trusted {
        if !trust_met(tally.trusted_power) {
            return Err(CommitError::InsufficientTrustedPower {
                signed: tally.trusted_power,
                total: *total,
                threshold: *threshold,
            });
        }
    }
    let sign_bytes = cert.sign_bytes(chain_id);
    let items: Vec<BatchItem<'_>> = selected
        .iter()
        .map(|&i| {
            (
                &signers[i].pub_key,
                sign_bytes.as_slice(),
                &cert.signatures[i].signature,
            )
        })
        .collect();
    verify_batch(&items).map_err(|e| match e {
        CryptoError::BadSignatureAt(j) => CommitError::BadSignature {
            index: cert.signatures[selected[j]].validator_index,
        },
        other => CommitError::Batch(other),
    })?;
    tally.verified = selected.len();
    Ok(tally)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::Signature;
    use crate::hash::Hash;
    use crate::testgen::{flip_signature_byte, Signers};
    use crate::types::CommitSig;

    const CHAIN: &str = "alpha";

    /// A certificate at height 7, round 1 signed by the members of `signers` at `indices`.
    fn cert_by(signers: &Signers, indices: &[usize]) -> CommitCertificate {
        signers.commit_by(CHAIN, 7, 1, Hash([9; 32]), |i| indices.contains(&i))
    }

    fn flip(cert: &mut CommitCertificate, position: usize) {
        flip_signature_byte(&mut cert.signatures[position].signature, 10);
    }

    #[test]
    fn quorum_is_strictly_more_than_two_thirds() {
        for suite in Suite::ALL {
            let s = Signers::generate(suite, &[10, 10, 10], 1);
            assert_eq!(verify_commit(CHAIN, s.set(), &cert_by(&s, &[0, 1, 2])), Ok(30));
            // 20 of 30 is exactly two thirds: not enough.
            let two = cert_by(&s, &[0, 2]);
            assert_eq!(
                verify_commit(CHAIN, s.set(), &two),
                Err(CommitError::InsufficientPower {
                    signed: 20,
                    total: 30
                })
            );
        }
        let s = Signers::generate(Suite::Ed25519, &[1, 1, 1, 1], 2);
        assert_eq!(verify_commit(CHAIN, s.set(), &cert_by(&s, &[0, 1, 3])), Ok(3));
        assert!(verify_commit(CHAIN, s.set(), &cert_by(&s, &[])).is_err());
    }

    #[test]
    fn structure_is_checked() {
        let s = Signers::generate(Suite::Ed25519, &[1; 4], 3);
        let mut cert = cert_by(&s, &[0, 1, 2, 3]);
        cert.signatures.swap(1, 2);
        assert_eq!(
            verify_commit(CHAIN, s.set(), &cert),
            Err(CommitError::Unordered { position: 2 })
        );
        let mut dup = cert_by(&s, &[0, 1, 2]);
        dup.signatures.push(dup.signatures[2].clone());
        assert_eq!(
            verify_commit(CHAIN, s.set(), &dup),
            Err(CommitError::Unordered { position: 3 })
        );
        let mut outside = cert_by(&s, &[0, 1, 2]);
        let signature = outside.signatures[0].signature.clone();
        outside.signatures.push(CommitSig {
            validator_index: 4,
            signature,
        });
        let unknown = Err(CommitError::UnknownValidator { index: 4, len: 4 });
        assert_eq!(verify_commit(CHAIN, s.set(), &outside).map(|_| ()), unknown);
        // The structure is judged for all signatures, even by the light path that would stop before them.
        assert_eq!(
            verify_commit_light(CHAIN, s.set(), &outside, None).map(|_| ()),
            unknown
        );
        let mut wrong_suite = cert_by(&s, &[0, 1, 2]);
        wrong_suite.signatures[1].signature = Signature::Sm2(*wrong_suite.signatures[1].signature.as_bytes());
        let result = verify_commit(CHAIN, s.set(), &wrong_suite);
        assert!(matches!(result, Err(CommitError::SuiteMismatch { index: 1, .. })));
    }

    #[test]
    fn bad_signatures_are_named_and_domain_separated() {
        for suite in Suite::ALL {
            let s = Signers::generate(suite, &[1; 4], 4);
            let mut cert = cert_by(&s, &[0, 1, 2, 3]);
            flip(&mut cert, 2);
            assert_eq!(
                verify_commit(CHAIN, s.set(), &cert),
                Err(CommitError::BadSignature { index: 2 })
            );
            let good = cert_by(&s, &[0, 1, 2, 3]);
            assert_eq!(
                verify_commit("beta", s.set(), &good),
                Err(CommitError::BadSignature { index: 0 })
            );
            let mut other_round = good.clone();
            other_round.round += 1;
            assert_eq!(
                verify_commit(CHAIN, s.set(), &other_round),
                Err(CommitError::BadSignature { index: 0 })
            );
        }
    }

    #[test]
    fn light_path_stops_at_the_quorum_and_full_path_does_not() {
        let s = Signers::generate(Suite::Ed25519, &[1; 4], 5);
        let mut cert = cert_by(&s, &[0, 1, 2, 3]);
        let tally = verify_commit_light(CHAIN, s.set(), &cert, None).unwrap();
        assert_eq!((tally.verified, tally.signed_power), (3, 3));
        // A bad surplus signature: ignored by the light path, refused by the full path.
        flip(&mut cert, 3);
        assert_eq!(
            verify_commit_light(CHAIN, s.set(), &cert, None).unwrap().verified,
            3
        );
        assert_eq!(
            verify_commit(CHAIN, s.set(), &cert),
            Err(CommitError::BadSignature { index: 3 })
        );
        // A bad counted signature is refused by both.
        let mut cert = cert_by(&s, &[0, 1, 2, 3]);
        flip(&mut cert, 0);
        assert_eq!(
            verify_commit_light(CHAIN, s.set(), &cert, None),
            Err(CommitError::BadSignature { index: 0 })
        );
    }

    #[test]
    fn trusted_power_is_matched_by_key() {
        // Old set: four validators of power 1. New set: two of them (power 10 now) and four newcomers (power 10).
        let old = Signers::generate(Suite::Ed25519, &[1; 4], 6);
        let newcomers = Signers::equal(Suite::Ed25519, 4, 60);
        let carried = [2, 3].iter().map(|&i| (old.keys()[i].clone(), 10));
        let new = Signers::new(
            carried
                .chain(newcomers.keys().iter().map(|k| (k.clone(), 10)))
                .collect(),
        );
        let all: Vec<usize> = (0..new.set().len()).collect();
        let cert = cert_by(&new, &all);
        let index_in_new = |old_index: usize| {
            new.set()
                .index_of(&old.set().validators()[old_index].address())
                .unwrap()
        };
        let (c_index, d_index) = (index_in_new(2), index_in_new(3));

        // The two carried over hold 2 of the old set's 4: more than 1/3, not more than 2/3.
        assert_eq!(
            verify_commit_trusting(CHAIN, old.set(), TrustThreshold::ONE_THIRD, new.set(), &cert),
            Ok(2)
        );
        let two_thirds = TrustThreshold {
            numerator: 2,
            denominator: 3,
        };
        assert_eq!(
            verify_commit_trusting(CHAIN, old.set(), two_thirds, new.set(), &cert),
            Err(CommitError::InsufficientTrustedPower {
                signed: 2,
                total: 4,
                threshold: two_thirds
            })
        );
        // Only one of them signs: 1 of 4 is not more than 1/3.
        let without_d: Vec<usize> = all.iter().copied().filter(|&i| i != d_index).collect();
        let cert_c = cert_by(&new, &without_d);
        let result = verify_commit_trusting(CHAIN, old.set(), TrustThreshold::ONE_THIRD, new.set(), &cert_c);
        assert!(matches!(
            result,
            Err(CommitError::InsufficientTrustedPower { signed: 1, .. })
        ));
        let trusting = Some(Trusting {
            validators: old.set(),
            threshold: TrustThreshold::ONE_THIRD,
        });
        let result = verify_commit_light(CHAIN, new.set(), &cert_c, trusting);
        assert!(matches!(
            result,
            Err(CommitError::InsufficientTrustedPower { .. })
        ));
        // The light path keeps verifying past the quorum until the trusted threshold is met too: five of the six
        // (power 10 each) pass 2/3, and both carried-over validators must be counted.
        let tally = verify_commit_light(CHAIN, new.set(), &cert, trusting).unwrap();
        assert_eq!((tally.trusted_power, tally.trusted_total), (2, 4));
        assert_eq!(tally.verified, 5.max(c_index.max(d_index) + 1));
    }
}
