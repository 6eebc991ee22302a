//! The native client's checks, one small named predicate each, every one with its own [`NativeError`] variant.
//!
//! **Owns**: single comparisons on already-computed values (hashes, heights, times). **Must never**: compute
//! hashes, verify signatures or touch client state — [`super::NativeClient`] composes these in a fixed order, cheap
//! checks before signature verification.

use std::time::Duration;

use crate::hash::Hash;
use crate::types::{ChainId, CommitCertificate, Time};

use super::NativeError;

/// The header belongs to the chain the client follows.
pub fn is_matching_chain_id(expected: &ChainId, got: &ChainId) -> Result<(), NativeError> {
    if expected == got {
        Ok(())
    } else {
        Err(NativeError::ChainIdMismatch {
            expected: expected.clone(),
            got: got.clone(),
        })
    }
}

/// The certificate decides exactly this header: same height, and its block id is the header's hash.
pub fn header_matches_commit(
    height: u64,
    header_hash: &Hash,
    commit: &CommitCertificate,
) -> Result<(), NativeError> {
    if commit.height != height {
        return Err(NativeError::CommitHeightMismatch {
            header: height,
            commit: commit.height,
        });
    }
    if commit.block_id != *header_hash {
        return Err(NativeError::CommitBlockMismatch {
            header_hash: *header_hash,
            block_id: commit.block_id,
        });
    }
    Ok(())
}

/// The validator set supplied with the header is the one the header commits to (`validators_hash`).
pub fn validator_set_matches(set_hash: &Hash, header_validators_hash: &Hash) -> Result<(), NativeError> {
    if set_hash == header_validators_hash {
        Ok(())
    } else {
        Err(NativeError::ValidatorSetMismatch {
            header: *header_validators_hash,
            supplied: *set_hash,
        })
    }
}

/// The trusted validator set supplied with the header is the one the trusted height committed to as its next set.
pub fn trusted_validator_set_matches(
    set_hash: &Hash,
    trusted_next_validators_hash: &Hash,
) -> Result<(), NativeError> {
    if set_hash == trusted_next_validators_hash {
        Ok(())
    } else {
        Err(NativeError::TrustedValidatorSetMismatch {
            trusted: *trusted_next_validators_hash,
            supplied: *set_hash,
        })
    }
}

/// Sequential (adjacent) update: the header's signers are exactly the next set announced by the trusted header.
pub fn is_trusted_next_set(
    header_validators_hash: &Hash,
    trusted_next_validators_hash: &Hash,
) -> Result<(), NativeError> {
    if header_validators_hash == trusted_next_validators_hash {
        Ok(())
    } else {
        Err(NativeError::NotTrustedNextSet {
            expected: *trusted_next_validators_hash,
            got: *header_validators_hash,
        })
    }
}

/// The header is above the height it builds on.
pub fn is_monotonic_height(height: u64, trusted_height: u64) -> Result<(), NativeError> {
    if height > trusted_height {
        Ok(())
    } else {
        Err(NativeError::NonIncreasingHeight {
            height,
            trusted_height,
        })
    }
}

/// The header's time is after the time of the state it builds on (block times strictly increase).
pub fn is_monotonic_time(time: Time, trusted_time: Time) -> Result<(), NativeError> {
    if time > trusted_time {
        Ok(())
    } else {
        Err(NativeError::NonMonotonicTime { time, trusted_time })
    }
}

/// A header inserted below the latest trusted height is before the next trusted header in time.
pub fn is_before_later_trusted(time: Time, later: Option<(u64, Time)>) -> Result<(), NativeError> {
    match later {
        Some((later_height, later_time)) if time >= later_time => Err(NativeError::NotBeforeLaterTrusted {
            time,
            later_height,
            later_time,
        }),
        _ => Ok(()),
    }
}

/// The trusted state is still within the trusting period at `now` (it expires at `trusted_time + period`).
pub fn is_within_trusting_period(
    trusted_time: Time,
    trusting_period: Duration,
    now: Time,
) -> Result<(), NativeError> {
    let expires_at = trusted_time.plus(trusting_period);
    if expires_at > now {
        Ok(())
    } else {
        Err(NativeError::TrustedStateExpired {
            trusted_time,
            expires_at,
            now,
        })
    }
}

/// The header is not from the future: its time is before `now + max_clock_drift`.
pub fn is_header_from_past(time: Time, max_clock_drift: Duration, now: Time) -> Result<(), NativeError> {
    if time < now.plus(max_clock_drift) {
        Ok(())
    } else {
        Err(NativeError::HeaderFromFuture {
            time,
            now,
            max_clock_drift_secs: max_clock_drift.as_secs(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> ChainId {
        ChainId::new(s).unwrap()
    }

    fn secs(s: u64) -> Time {
        Time::from_secs(s)
    }

    #[test]
    fn chain_id() {
        assert_eq!(is_matching_chain_id(&id("a"), &id("a")), Ok(()));
        assert_eq!(
            is_matching_chain_id(&id("a"), &id("b")),
            Err(NativeError::ChainIdMismatch {
                expected: id("a"),
                got: id("b")
            })
        );
    }

    #[test]
    fn commit_for_this_header() {
        let commit = CommitCertificate {
            height: 5,
            round: 0,
            block_id: Hash([1; 32]),
            signatures: vec![],
        };
        assert_eq!(header_matches_commit(5, &Hash([1; 32]), &commit), Ok(()));
        assert_eq!(
            header_matches_commit(6, &Hash([1; 32]), &commit),
            Err(NativeError::CommitHeightMismatch { header: 6, commit: 5 })
        );
        assert_eq!(
            header_matches_commit(5, &Hash([2; 32]), &commit),
            Err(NativeError::CommitBlockMismatch {
                header_hash: Hash([2; 32]),
                block_id: Hash([1; 32])
            })
        );
    }

    #[test]
    fn validator_set_hashes() {
        let (a, b) = (Hash([1; 32]), Hash([2; 32]));
        assert_eq!(validator_set_matches(&a, &a), Ok(()));
        assert_eq!(
            validator_set_matches(&a, &b),
            Err(NativeError::ValidatorSetMismatch {
                header: b,
                supplied: a
            })
        );
        assert_eq!(trusted_validator_set_matches(&a, &a), Ok(()));
        assert_eq!(
            trusted_validator_set_matches(&a, &b),
            Err(NativeError::TrustedValidatorSetMismatch {
                trusted: b,
                supplied: a
            })
        );
        assert_eq!(is_trusted_next_set(&a, &a), Ok(()));
        assert_eq!(
            is_trusted_next_set(&a, &b),
            Err(NativeError::NotTrustedNextSet { expected: b, got: a })
        );
    }

    #[test]
    fn heights_and_times_increase() {
        assert_eq!(is_monotonic_height(6, 5), Ok(()));
        assert_eq!(
            is_monotonic_height(5, 5),
            Err(NativeError::NonIncreasingHeight {
                height: 5,
                trusted_height: 5
            })
        );
        assert_eq!(
            is_monotonic_height(4, 5),
            Err(NativeError::NonIncreasingHeight {
                height: 4,
                trusted_height: 5
            })
        );
        assert_eq!(is_monotonic_time(secs(2), secs(1)), Ok(()));
        assert_eq!(
            is_monotonic_time(secs(1), secs(1)),
            Err(NativeError::NonMonotonicTime {
                time: secs(1),
                trusted_time: secs(1)
            })
        );
        assert_eq!(is_before_later_trusted(secs(5), None), Ok(()));
        assert_eq!(is_before_later_trusted(secs(5), Some((9, secs(6)))), Ok(()));
        assert_eq!(
            is_before_later_trusted(secs(6), Some((9, secs(6)))),
            Err(NativeError::NotBeforeLaterTrusted {
                time: secs(6),
                later_height: 9,
                later_time: secs(6)
            })
        );
    }

    #[test]
    fn trusting_period_expires_exactly_at_its_end() {
        let period = Duration::from_secs(100);
        assert_eq!(is_within_trusting_period(secs(1000), period, secs(1099)), Ok(()));
        assert_eq!(
            is_within_trusting_period(secs(1000), period, secs(1100)),
            Err(NativeError::TrustedStateExpired {
                trusted_time: secs(1000),
                expires_at: secs(1100),
                now: secs(1100)
            })
        );
        // Saturating arithmetic: a period reaching past the end of time never wraps around into the past.
        assert_eq!(
            is_within_trusting_period(Time(u64::MAX - 5), period, Time(u64::MAX - 1)),
            Ok(())
        );
    }

    #[test]
    fn headers_from_the_future_beyond_the_drift() {
        let drift = Duration::from_secs(10);
        assert_eq!(is_header_from_past(secs(109), drift, secs(100)), Ok(()));
        assert_eq!(
            is_header_from_past(secs(110), drift, secs(100)),
            Err(NativeError::HeaderFromFuture {
                time: secs(110),
                now: secs(100),
                max_clock_drift_secs: 10
            })
        );
        assert_eq!(is_header_from_past(secs(0), drift, secs(100)), Ok(()));
    }
}
