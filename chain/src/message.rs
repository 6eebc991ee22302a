//! The messages a transaction may carry, one variant per action of a module, and their field types.
//!
//! Messages are checked structurally when a transaction is decoded ([`Message::validate`]); whether they may
//! be executed (balances, permissions, nonces) is decided by the modules at execution time.

use borsh::{BorshDeserialize, BorshSerialize};
use causeway_light_client::{Address, Namespace, Validator};
use serde::{Deserialize, Serialize};

use crate::exec::lineage::{MergePlan, SplitPlan};

/// Largest record key, in bytes.
pub const MAX_RECORD_KEY: usize = 256;
/// Largest record value, in bytes.
pub const MAX_RECORD_VALUE: usize = 16 * 1024;
/// Longest organisation or asset name.
pub const MAX_NAME: usize = 48;

fn valid_ident(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.'))
}

macro_rules! ident {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, BorshSerialize, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Check and wrap: 1–48 characters of `a-z 0-9 - _ .`.
            pub fn new(s: impl Into<String>) -> Result<Self, String> {
                let s = s.into();
                if valid_ident(&s, MAX_NAME) {
                    Ok(Self(s))
                } else {
                    Err(format!(concat!("{:?} is not a valid ", $what, " (1-48 characters of a-z 0-9 - _ .)"), s))
                }
            }

            /// The name.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl std::str::FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                Self::new(s)
            }
        }

        impl BorshDeserialize for $name {
            fn deserialize_reader<R: std::io::Read>(reader: &mut R) -> std::io::Result<Self> {
                let s = String::deserialize_reader(reader)?;
                Self::new(s).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                Self::new(<String as Deserialize>::deserialize(d)?).map_err(serde::de::Error::custom)
            }
        }
    };
}

ident!(
    /// An asset denomination, e.g. `cash` or `abs-2026`. Each asset lives in its own state namespace
    /// (`asset:<denom>`), so an asset class can move whole when a ledger is split or merged.
    Denom, "denomination"
);

ident!(
    /// An organisation admitted to the chain by governance.
    OrgId, "organisation id"
);

impl Denom {
    /// The state namespace holding this asset's supply and balances.
    pub fn namespace(&self) -> Namespace {
        // A denomination is 1-48 characters of [a-z0-9-_.], so "asset:" + denom (at most 54 characters of an
        // alphabet namespaces accept) is always a valid namespace.
        #[allow(clippy::expect_used)]
        Namespace::new(format!("asset:{}", self.0)).expect("asset namespaces are valid by construction")
    }

    /// The asset whose namespace `namespace` is, if it is an asset namespace.
    pub fn of_namespace(namespace: &Namespace) -> Option<Denom> {
        Denom::new(namespace.as_str().strip_prefix("asset:")?).ok()
    }
}

impl OrgId {
    /// The namespace prefix an organisation's records live under: `org/<id>` and `org/<id>/…`.
    pub fn namespace_prefix(&self) -> String {
        format!("org/{}", self.0)
    }
}

/// An amount of an asset. JSON carries it as a decimal string (u128 exceeds what JSON numbers keep exactly).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, BorshSerialize, BorshDeserialize,
)]
pub struct Amount(pub u128);

impl Serialize for Amount {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0.to_string())
    }
}

impl<'de> Deserialize<'de> for Amount {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Either {
            Text(String),
            Number(u64),
        }
        match Either::deserialize(d)? {
            Either::Text(s) => s.parse::<u128>().map(Amount).map_err(serde::de::Error::custom),
            Either::Number(n) => Ok(Amount(u128::from(n))),
        }
    }
}

impl std::fmt::Display for Amount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Chain parameters, changed only by governance.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// Most transactions a block may carry.
    pub max_block_txs: u32,
    /// Largest total size of a block's transactions, in bytes.
    pub max_block_bytes: u64,
    /// Blocks a governance proposal stays open for votes.
    pub voting_period: u64,
}

impl Default for Params {
    fn default() -> Self {
        Params { max_block_txs: 20_000, max_block_bytes: 8 * 1024 * 1024, voting_period: 1_000 }
    }
}

impl Params {
    /// Structural bounds.
    pub fn validate(&self) -> Result<(), String> {
        if self.max_block_txs == 0 || self.max_block_txs > 100_000 {
            return Err(format!("max_block_txs {} outside 1..=100000", self.max_block_txs));
        }
        if self.max_block_bytes < 64 * 1024 || self.max_block_bytes > 48 * 1024 * 1024 {
            return Err(format!("max_block_bytes {} outside 64 KiB..=48 MiB", self.max_block_bytes));
        }
        if self.voting_period == 0 {
            return Err("voting_period must be positive".into());
        }
        Ok(())
    }
}

/// What a governance proposal would do once more than two thirds of the validators' power approve it.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case", deny_unknown_fields)]
pub enum GovAction {
    /// Replace the validator set. Takes effect two heights after the height that decides it.
    SetValidators {
        /// The new set (checked: non-empty, positive powers, no duplicates, valid keys).
        validators: Vec<Validator>,
    },
    /// Admit an organisation: it owns the namespaces `org/<id>` and `org/<id>/…` for its data records.
    AdmitOrg {
        /// Its id.
        org: OrgId,
        /// Its administrator, who adds and removes members.
        admin: Address,
    },
    /// Remove an organisation: its members may no longer write (its records stay, provable).
    RemoveOrg {
        /// Its id.
        org: OrgId,
    },
    /// Replace the chain parameters.
    SetParams {
        /// The new parameters.
        params: Params,
    },
    /// A decision for a module another crate provides (the hub: admit a member chain, recover a frozen client…),
    /// in that module's own encoding. Applied by the module once the proposal passes.
    Ext {
        /// The module's name.
        module: String,
        /// The encoded decision.
        body: Bytes,
    },
    /// Split namespaces off into a new chain at a later height ([`crate::exec::lineage`]).
    ScheduleSplit {
        /// The plan.
        plan: SplitPlan,
    },
    /// Merge this chain with a partner into a new chain: stop after a final height ([`crate::exec::lineage`]).
    ScheduleMergeOut {
        /// The plan.
        plan: MergePlan,
    },
}

impl GovAction {
    fn validate(&self) -> Result<(), String> {
        match self {
            GovAction::SetValidators { validators } => causeway_light_client::ValidatorSet::new(validators.clone())
                .map(|_| ())
                .map_err(|e| e.to_string()),
            GovAction::SetParams { params } => params.validate(),
            GovAction::AdmitOrg { .. } | GovAction::RemoveOrg { .. } => Ok(()),
            GovAction::ScheduleSplit { plan } => plan.validate(),
            GovAction::ScheduleMergeOut { plan } => plan.validate(),
            GovAction::Ext { module, .. } => {
                if module.is_empty() || module.len() > 32 {
                    return Err(format!("module name of {} bytes (allowed: 1 to 32)", module.len()));
                }
                Ok(())
            }
        }
    }
}

/// Bytes that JSON shows as hex.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, BorshSerialize, BorshDeserialize)]
pub struct Bytes(pub Vec<u8>);

impl Serialize for Bytes {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(&self.0))
    }
}

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <String as Deserialize>::deserialize(d)?;
        hex::decode(s.trim_start_matches("0x")).map(Bytes).map_err(serde::de::Error::custom)
    }
}

/// One action of a transaction.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Message {
    /// Move `amount` of `denom` from the signer to `to`.
    Transfer {
        /// Recipient.
        to: Address,
        /// Asset.
        denom: Denom,
        /// Positive amount.
        amount: Amount,
    },
    /// Create `amount` of `denom` for `to`. The first issue of a denomination creates the asset with the signer
    /// as its issuer; later issues are allowed to the issuer only.
    Issue {
        /// Asset.
        denom: Denom,
        /// Positive amount.
        amount: Amount,
        /// Recipient.
        to: Address,
    },
    /// Destroy `amount` of the signer's `denom`.
    Burn {
        /// Asset.
        denom: Denom,
        /// Positive amount.
        amount: Amount,
    },
    /// Write a business record (no contract needed): `value` under `key` in an organisation's namespace
    /// (`org/<id>` or `org/<id>/…`). The signer must be a member of that organisation. Provable at any retained
    /// height.
    PutRecord {
        /// Namespace of the record.
        namespace: Namespace,
        /// Record key (1 to 256 bytes of UTF-8).
        key: String,
        /// Record content (at most 16 KiB; commonly JSON).
        value: Bytes,
    },
    /// Add a member to an organisation (its administrator only).
    AddMember {
        /// The organisation.
        org: OrgId,
        /// The new member.
        member: Address,
    },
    /// Remove a member from an organisation (its administrator only).
    RemoveMember {
        /// The organisation.
        org: OrgId,
        /// The member.
        member: Address,
    },
    /// Open a governance proposal (validators only); the proposer's vote counts as approval.
    Propose {
        /// What it would do.
        action: GovAction,
    },
    /// Vote on an open proposal (validators of the current height only).
    Vote {
        /// Proposal number.
        proposal: u64,
        /// Approve or reject.
        approve: bool,
    },
    /// A message for a module another crate provides (the hub's), in that module's own canonical encoding.
    Ext {
        /// The module's name (1 to 32 characters).
        module: String,
        /// The encoded message.
        body: Bytes,
    },
}

impl Message {
    /// Structural checks that need no state.
    pub fn validate(&self) -> Result<(), String> {
        match self {
            Message::Transfer { amount, .. } | Message::Issue { amount, .. } | Message::Burn { amount, .. } => {
                if amount.0 == 0 {
                    return Err("amount must be positive".into());
                }
                Ok(())
            }
            Message::PutRecord { key, value, .. } => {
                if key.is_empty() || key.len() > MAX_RECORD_KEY {
                    return Err(format!("record key of {} bytes (allowed: 1 to {MAX_RECORD_KEY})", key.len()));
                }
                if value.0.len() > MAX_RECORD_VALUE {
                    return Err(format!("record value of {} bytes (limit {MAX_RECORD_VALUE})", value.0.len()));
                }
                Ok(())
            }
            Message::Propose { action } => action.validate(),
            Message::Ext { module, .. } => {
                if module.is_empty() || module.len() > 32 {
                    return Err(format!("module name of {} bytes (allowed: 1 to 32)", module.len()));
                }
                Ok(())
            }
            Message::AddMember { .. } | Message::RemoveMember { .. } | Message::Vote { .. } => Ok(()),
        }
    }

    /// A short name for logs, events and the explorer.
    pub fn kind(&self) -> &'static str {
        match self {
            Message::Transfer { .. } => "transfer",
            Message::Issue { .. } => "issue",
            Message::Burn { .. } => "burn",
            Message::PutRecord { .. } => "put_record",
            Message::AddMember { .. } => "add_member",
            Message::RemoveMember { .. } => "remove_member",
            Message::Propose { .. } => "propose",
            Message::Vote { .. } => "vote",
            Message::Ext { .. } => "ext",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_amounts_parse() {
        assert!(Denom::new("cash").is_ok());
        assert!(Denom::new("Cash").is_err());
        assert!(Denom::new("a".repeat(49)).is_err());
        assert_eq!(Denom::new("a".repeat(48)).unwrap().namespace().as_str().len(), 54);
        let a: Amount = serde_json::from_str("\"340282366920938463463374607431768211455\"").unwrap();
        assert_eq!(a.0, u128::MAX);
        let b: Amount = serde_json::from_str("12").unwrap();
        assert_eq!(b.0, 12);
        assert!(serde_json::from_str::<Amount>("\"-1\"").is_err());
    }

    #[test]
    fn messages_have_readable_json() {
        let m = Message::Transfer { to: Address([1; 20]), denom: Denom::new("cash").unwrap(), amount: Amount(5) };
        let json = serde_json::to_string(&m).unwrap();
        assert_eq!(
            json,
            r#"{"type":"transfer","to":"0101010101010101010101010101010101010101","denom":"cash","amount":"5"}"#
        );
        assert_eq!(serde_json::from_str::<Message>(&json).unwrap(), m);
        assert!(serde_json::from_str::<Message>(r#"{"type":"transfer","to":"01","denom":"cash","amount":"5"}"#)
            .is_err());
    }
}
