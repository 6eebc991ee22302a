//! Data records: business data written and proven without a contract (the "lightweight gateway" of the design).
//!
//! A record lives in an organisation's namespace (`org/<id>` or `org/<id>/<sub>`) under its key, and only that
//! organisation's administrator and members may write there. The stored value is the canonical [`Record`]: the
//! content plus who wrote it, at which height and time, so a proof of the record proves all four.

use borsh::{BorshDeserialize, BorshSerialize};
use causeway_light_client::{Address, Canonical, Namespace, Time};
use serde::{Deserialize, Serialize};

use super::governance::{self, MemberRole};
use super::{Event, Fail, TxContext, TxFailure};
use crate::message::{Bytes, OrgId, MAX_RECORD_VALUE};
use crate::state::{StateRead, StateWrite};

/// A stored record.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Record {
    /// The content.
    pub value: Bytes,
    /// Who wrote it.
    pub writer: Address,
    /// The height that wrote it.
    pub height: u64,
    /// That block's time.
    pub time: Time,
}

impl Canonical for Record {
    const KIND: &'static str = "record";
    const MAX_LEN: usize = MAX_RECORD_VALUE + 128;
}

/// The organisation owning a record namespace, if the namespace is one (`org/<id>` or `org/<id>/…`).
pub fn owner_of(namespace: &Namespace) -> Option<OrgId> {
    let rest = namespace.as_str().strip_prefix("org/")?;
    let id = rest.split('/').next()?;
    OrgId::new(id).ok()
}

/// Store `value` under `key` in `namespace`.
pub fn put(
    state: &mut dyn StateWrite,
    ctx: &TxContext<'_>,
    namespace: &Namespace,
    key: &str,
    value: &[u8],
) -> Result<Vec<Event>, Fail> {
    let org = owner_of(namespace).ok_or_else(|| TxFailure::NotRecordNamespace(namespace.to_string()))?;
    governance::require_role(state, &org, &ctx.sender, MemberRole::Member)?;
    let record =
        Record { value: Bytes(value.to_vec()), writer: ctx.sender, height: ctx.block.height, time: ctx.block.time };
    state.put(namespace, key.as_bytes(), record.encode())?;
    Ok(vec![Event::new(
        "record",
        &[
            ("namespace", namespace.to_string()),
            ("key", key.to_string()),
            ("writer", ctx.sender.to_hex()),
            ("bytes", value.len().to_string()),
        ],
    )])
}

/// Read a record.
pub fn get(state: &(impl StateRead + ?Sized), namespace: &Namespace, key: &str) -> Result<Option<Record>, Fail> {
    match state.get(namespace, key.as_bytes())? {
        None => Ok(None),
        Some(raw) => Record::decode(&raw).map(Some).map_err(|e| {
            Fail::Fatal(super::ExecError::Corrupt { namespace: namespace.to_string(), reason: e.to_string() })
        }),
    }
}
