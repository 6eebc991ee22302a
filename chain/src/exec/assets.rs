//! Multi-asset balances: issue, transfer, burn. Each asset lives in its own namespace `asset:<denom>`, so an
//! asset class moves whole when a ledger is split or merged, with its supply and every balance.
//!
//! Keys: `asset:<denom>` / `meta` → [`AssetMeta`]; `asset:<denom>` / `b` ‖ address → balance (u128). A zero
//! balance is deleted, so state depends on content only. Invariant: supply = sum of balances.

use borsh::{BorshDeserialize, BorshSerialize};
use causeway_light_client::Address;
use serde::{Deserialize, Serialize};

use super::{get_typed, put_typed, Event, ExecError, Fail, TxFailure};
use crate::message::{Amount, Denom};
use crate::state::{StateRead, StateWrite};

const META: &[u8] = b"meta";

/// Where an asset comes from.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AssetOrigin {
    /// Issued on this chain by its issuer.
    Native,
}

/// An asset's record.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct AssetMeta {
    /// Who may issue more.
    pub issuer: Address,
    /// Total in existence on this chain (sum of all balances).
    pub supply: Amount,
    /// Native or voucher.
    pub origin: AssetOrigin,
}

fn balance_key(address: &Address) -> Vec<u8> {
    let mut k = Vec::with_capacity(21);
    k.push(b'b');
    k.extend_from_slice(&address.0);
    k
}

/// The asset's record, if it exists.
pub fn meta(state: &(impl StateRead + ?Sized), denom: &Denom) -> Result<Option<AssetMeta>, ExecError> {
    get_typed(state, &denom.namespace(), META)
}

/// The balance of `address` in `denom` (zero when none).
pub fn balance(state: &(impl StateRead + ?Sized), denom: &Denom, address: &Address) -> Result<Amount, ExecError> {
    Ok(Amount(get_typed::<u128>(state, &denom.namespace(), &balance_key(address))?.unwrap_or(0)))
}

fn set_balance(state: &mut dyn StateWrite, denom: &Denom, address: &Address, amount: u128) -> Result<(), Fail> {
    let ns = denom.namespace();
    if amount == 0 {
        state.delete(&ns, &balance_key(address))?;
        Ok(())
    } else {
        put_typed(state, &ns, &balance_key(address), &amount)
    }
}

/// Add `amount` to the balance of `to` (supply unchanged: the caller accounts for it).
pub fn credit(state: &mut dyn StateWrite, denom: &Denom, to: &Address, amount: Amount) -> Result<(), Fail> {
    let have = balance(state, denom, to)?.0;
    set_balance(state, denom, to, have.checked_add(amount.0).ok_or(TxFailure::Overflow)?)
}

/// Take `amount` from the balance of `from` (supply unchanged: the caller accounts for it).
pub fn debit(state: &mut dyn StateWrite, denom: &Denom, from: &Address, amount: Amount) -> Result<(), Fail> {
    let have = balance(state, denom, from)?.0;
    let left = have.checked_sub(amount.0).ok_or_else(|| TxFailure::InsufficientFunds {
        denom: denom.to_string(),
        have: have.to_string(),
        need: amount.to_string(),
    })?;
    set_balance(state, denom, from, left)
}

/// Move `amount` of `denom` from `from` to `to`.
pub fn transfer(
    state: &mut dyn StateWrite,
    from: Address,
    to: Address,
    denom: &Denom,
    amount: Amount,
) -> Result<Vec<Event>, Fail> {
    if meta(state, denom)?.is_none() {
        return Err(TxFailure::UnknownAsset(denom.to_string()).into());
    }
    debit(state, denom, &from, amount)?;
    credit(state, denom, &to, amount)?;
    Ok(vec![Event::new(
        "transfer",
        &[("from", from.to_hex()), ("to", to.to_hex()), ("denom", denom.to_string()), ("amount", amount.to_string())],
    )])
}

/// Issue `amount` of `denom` to `to`; creates the asset with `issuer` on its first issue.
pub fn issue(
    state: &mut dyn StateWrite,
    issuer: Address,
    to: Address,
    denom: &Denom,
    amount: Amount,
) -> Result<Vec<Event>, Fail> {
    let mut m = match meta(state, denom)? {
        Some(m) => {
            if m.issuer != issuer {
                return Err(TxFailure::NotIssuer { denom: denom.to_string(), issuer: m.issuer }.into());
            }
            m
        }
        None => AssetMeta { issuer, supply: Amount(0), origin: AssetOrigin::Native },
    };
    m.supply = Amount(m.supply.0.checked_add(amount.0).ok_or(TxFailure::Overflow)?);
    put_typed(state, &denom.namespace(), META, &m)?;
    credit(state, denom, &to, amount)?;
    Ok(vec![Event::new(
        "issue",
        &[("issuer", issuer.to_hex()), ("to", to.to_hex()), ("denom", denom.to_string()), ("amount", amount.to_string())],
    )])
}

/// Destroy `amount` of `holder`'s `denom`.
pub fn burn(state: &mut dyn StateWrite, holder: Address, denom: &Denom, amount: Amount) -> Result<Vec<Event>, Fail> {
    let mut m = meta(state, denom)?.ok_or_else(|| TxFailure::UnknownAsset(denom.to_string()))?;
    debit(state, denom, &holder, amount)?;
    // supply >= every balance, so this cannot underflow unless the store is corrupt; refuse rather than wrap.
    m.supply = Amount(m.supply.0.checked_sub(amount.0).ok_or(TxFailure::Overflow)?);
    put_typed(state, &denom.namespace(), META, &m)?;
    Ok(vec![Event::new(
        "burn",
        &[("holder", holder.to_hex()), ("denom", denom.to_string()), ("amount", amount.to_string())],
    )])
}
