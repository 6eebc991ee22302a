//! Accounts: one per address, created on first use, holding the next nonce.
//!
//! Keys: `sys/accounts` / `<address>` → [`Account`].

use borsh::{BorshDeserialize, BorshSerialize};
use causeway_light_client::Address;

use super::{get_typed, put_typed, sys_namespace, ExecError, Fail, TxFailure};
use crate::state::{StateRead, StateWrite};

/// The accounts namespace.
pub const NAMESPACE: &str = "sys/accounts";

/// What the chain keeps per account.
#[derive(Clone, Debug, Default, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Account {
    /// The nonce the account's next transaction must carry.
    pub nonce: u64,
}

/// The account of `address` (a fresh one if it never transacted).
pub fn account(state: &(impl StateRead + ?Sized), address: &Address) -> Result<Account, ExecError> {
    Ok(get_typed(state, &sys_namespace(NAMESPACE), &address.0)?.unwrap_or_default())
}

/// Check that `nonce` is the account's next nonce and advance it.
pub fn bump_nonce(state: &mut (impl StateWrite + ?Sized), address: &Address, nonce: u64) -> Result<(), Fail> {
    let mut acc = account(state, address)?;
    if acc.nonce != nonce {
        return Err(TxFailure::BadNonce { expected: acc.nonce, got: nonce }.into());
    }
    acc.nonce = acc.nonce.checked_add(1).ok_or(TxFailure::Overflow)?;
    put_typed(state, &sys_namespace(NAMESPACE), &address.0, &acc)
}
