//! Typed reads and writes of Borsh-encoded values in state.

use borsh::{BorshDeserialize, BorshSerialize};
use causeway_light_client::Namespace;

use super::{ExecError, Fail};
use crate::state::{StateRead, StateWrite};

/// Read and decode the value under `(namespace, key)`. Bytes that do not decode mean a corrupt store: fatal.
pub fn get_typed<T: BorshDeserialize>(
    state: &(impl StateRead + ?Sized),
    namespace: &Namespace,
    key: &[u8],
) -> Result<Option<T>, ExecError> {
    match state.get(namespace, key)? {
        None => Ok(None),
        Some(raw) => T::try_from_slice(&raw)
            .map(Some)
            .map_err(|e| ExecError::Corrupt { namespace: namespace.to_string(), reason: e.to_string() }),
    }
}

/// Encode and stage `value` under `(namespace, key)`.
pub fn put_typed<T: BorshSerialize>(
    state: &mut (impl StateWrite + ?Sized),
    namespace: &Namespace,
    key: &[u8],
    value: &T,
) -> Result<(), Fail> {
    let mut raw = Vec::with_capacity(32);
    // Writing into a Vec cannot fail.
    let _ = value.serialize(&mut raw);
    state.put(namespace, key, raw)?;
    Ok(())
}
