//! A chain's genesis: identity, hash function, profile, initial validators, parameters, organisations and assets.
//! Stored as JSON; the genesis state is committed as height 0, and block 1 builds on it.

use std::path::Path;

use causeway_light_client::{Address, ChainId, Hash, HashAlg, Namespace, PublicKey, Time, Validator, ValidatorSet};
use serde::{Deserialize, Serialize};

use crate::exec::{assets, governance, Fail};
use crate::message::{Amount, Denom, OrgId, Params};
use crate::state::{MemState, Overlay, StateWrite, WriteSet};

/// Why a genesis was refused.
#[derive(Debug, thiserror::Error)]
pub enum GenesisError {
    /// The file could not be read or written.
    #[error("genesis file {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The JSON is malformed or has unknown fields.
    #[error("genesis JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// A rule is broken.
    #[error("invalid genesis: {0}")]
    Invalid(String),
}

/// Who may use a chain.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, borsh::BorshSerialize, borsh::BorshDeserialize)]
#[serde(rename_all = "snake_case")]
pub enum Profile {
    /// Only allow-listed nodes connect; the alliance's members transact.
    #[default]
    Permissioned,
    /// Anyone may sync, verify and submit transactions (a lightweight public chain).
    Public,
}

/// A validator at genesis.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenesisValidator {
    /// A human name (moniker).
    pub name: String,
    /// Consensus key (any suite).
    pub pub_key: PublicKey,
    /// Voting power.
    pub power: u64,
    /// The node's peer id on the p2p network (admitted to the allow-list), if it runs a node.
    #[serde(default)]
    pub node_id: Option<String>,
}

/// An organisation at genesis.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenesisOrg {
    /// Its id.
    pub id: OrgId,
    /// Its administrator.
    pub admin: Address,
}

/// An asset at genesis.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenesisAsset {
    /// Denomination.
    pub denom: Denom,
    /// Its issuer.
    pub issuer: Address,
    /// Initial balances (the supply is their sum).
    pub balances: Vec<(Address, Amount)>,
}

/// The genesis document.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Genesis {
    /// The chain's id.
    pub chain_id: ChainId,
    /// Time of height 0, RFC 3339 in JSON; block 1 must be later.
    #[serde(with = "rfc3339")]
    pub genesis_time: Time,
    /// Hash function of headers, transactions and state.
    #[serde(default)]
    pub hash: HashAlg,
    /// Application version carried in headers.
    #[serde(default = "one")]
    pub app_version: u32,
    /// Permissioned or public.
    #[serde(default)]
    pub profile: Profile,
    /// Validators of height 1.
    pub validators: Vec<GenesisValidator>,
    /// Chain parameters.
    #[serde(default)]
    pub params: Params,
    /// Organisations.
    #[serde(default)]
    pub orgs: Vec<GenesisOrg>,
    /// Assets.
    #[serde(default)]
    pub assets: Vec<GenesisAsset>,
    /// For a chain born of a split or a merge: where its carried state comes from and the roots it must have.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lineage: Option<GenesisLineage>,
}

/// Where a chain born of a split or merge comes from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum LineageOrigin {
    /// Split off `parent` at `height` (the parent's split record is committed at that height).
    Split {
        /// The parent chain.
        parent: ChainId,
        /// The split height.
        height: u64,
    },
    /// Merged from two chains, each with its final height.
    Merge {
        /// The two parents and their final heights, sorted by chain id.
        parents: Vec<(ChainId, u64)>,
    },
}

/// The state a chain carries over from its parent(s): height 0 holds exactly these namespaces with these roots,
/// plus the chain's own system namespaces from this genesis.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenesisLineage {
    /// Where it comes from.
    pub origin: LineageOrigin,
    /// The carried namespaces and their roots, sorted.
    pub carried: Vec<(Namespace, Hash)>,
}

impl GenesisLineage {
    /// The root over the carried namespaces alone: what the carried-state snapshot must prove.
    pub fn carried_root(&self, alg: HashAlg) -> Hash {
        causeway_light_client::proof::state_root(alg, &self.carried)
    }
}

fn one() -> u32 {
    1
}

/// Serde helper: [`Time`] as an RFC 3339 timestamp (UTC).
pub mod rfc3339 {
    use causeway_light_client::Time;
    use serde::{Deserialize, Deserializer, Serializer};

    /// Format.
    pub fn serialize<S: Serializer>(t: &Time, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format(*t))
    }

    /// Parse.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Time, D::Error> {
        let s = <String as Deserialize>::deserialize(d)?;
        parse(&s).map_err(serde::de::Error::custom)
    }

    /// Format a time as RFC 3339 with nanoseconds.
    pub fn format(t: Time) -> String {
        humantime::format_rfc3339_nanos(std::time::UNIX_EPOCH + std::time::Duration::from_nanos(t.0)).to_string()
    }

    /// Parse an RFC 3339 timestamp.
    pub fn parse(s: &str) -> Result<Time, String> {
        let st = humantime::parse_rfc3339_weak(s).map_err(|e| format!("{s:?} is not an RFC 3339 time: {e}"))?;
        let d = st.duration_since(std::time::UNIX_EPOCH).map_err(|_| format!("{s:?} is before 1970"))?;
        u64::try_from(d.as_nanos()).map(Time).map_err(|_| format!("{s:?} is too far in the future"))
    }
}

impl Genesis {
    /// Read and check a genesis file.
    pub fn load(path: &Path) -> Result<Genesis, GenesisError> {
        let raw = std::fs::read(path).map_err(|source| GenesisError::Io { path: path.display().to_string(), source })?;
        let g: Genesis = serde_json::from_slice(&raw)?;
        g.validate()?;
        Ok(g)
    }

    /// Write as pretty JSON.
    pub fn save(&self, path: &Path) -> Result<(), GenesisError> {
        let json = serde_json::to_vec_pretty(self)?;
        std::fs::write(path, json).map_err(|source| GenesisError::Io { path: path.display().to_string(), source })
    }

    /// The validator set of height 1.
    pub fn validator_set(&self) -> Result<ValidatorSet, GenesisError> {
        ValidatorSet::new(
            self.validators.iter().map(|v| Validator { pub_key: v.pub_key.clone(), power: v.power }).collect(),
        )
        .map_err(|e| GenesisError::Invalid(format!("validators: {e}")))
    }

    /// Check every rule that needs no state.
    pub fn validate(&self) -> Result<(), GenesisError> {
        self.validator_set()?;
        self.params.validate().map_err(|e| GenesisError::Invalid(format!("params: {e}")))?;
        let mut denoms: Vec<&Denom> = self.assets.iter().map(|a| &a.denom).collect();
        denoms.sort();
        if denoms.windows(2).any(|w| w[0] == w[1]) {
            return Err(GenesisError::Invalid("an asset is listed twice".into()));
        }
        let mut orgs: Vec<&OrgId> = self.orgs.iter().map(|o| &o.id).collect();
        orgs.sort();
        if orgs.windows(2).any(|w| w[0] == w[1]) {
            return Err(GenesisError::Invalid("an organisation is listed twice".into()));
        }
        let writes = self.initial_writes()?;
        if let Some(lineage) = &self.lineage {
            let carried = &lineage.carried;
            if carried.windows(2).any(|w| w[0].0 >= w[1].0) {
                return Err(GenesisError::Invalid("carried namespaces must be sorted without duplicates".into()));
            }
            if let Some((ns, _)) = carried.iter().find(|(ns, _)| crate::exec::lineage::is_system(ns)) {
                return Err(GenesisError::Invalid(format!("system namespace {ns} cannot be carried")));
            }
            if let Some((ns, _)) = writes.namespaces().find(|(ns, _)| carried.binary_search_by(|(c, _)| c.cmp(ns)).is_ok()) {
                return Err(GenesisError::Invalid(format!("namespace {ns} is both carried and written by the genesis")));
            }
            if let LineageOrigin::Merge { parents } = &lineage.origin {
                if parents.len() != 2 || parents[0].0 >= parents[1].0 {
                    return Err(GenesisError::Invalid("a merge has two distinct parents, sorted".into()));
                }
            }
        }
        Ok(())
    }

    /// The state of height 0.
    pub fn initial_writes(&self) -> Result<WriteSet, GenesisError> {
        let base = MemState::new();
        let mut state = Overlay::new(&base);
        let set = self.validator_set()?;
        let invalid = |e: Fail| GenesisError::Invalid(format!("{e:?}"));
        governance::set_current_validators(&mut state, &set).map_err(invalid)?;
        governance::set_params(&mut state, &self.params).map_err(invalid)?;
        for o in &self.orgs {
            governance::admit_org(&mut state, &o.id, o.admin).map_err(invalid)?;
        }
        for a in &self.assets {
            for (to, amount) in &a.balances {
                if amount.0 == 0 {
                    return Err(GenesisError::Invalid(format!("zero balance of {} for {to}", a.denom)));
                }
                assets::issue(&mut state as &mut dyn StateWrite, a.issuer, *to, &a.denom, *amount).map_err(invalid)?;
            }
        }
        state.commit_tx();
        Ok(state.into_write_set())
    }

    /// A digest of the canonical JSON, to tell two geneses apart in logs and at the gateway.
    pub fn hash(&self) -> Hash {
        self.hash.hash(&serde_json::to_vec(self).unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use causeway_light_client::{SecretKey, Suite};

    fn sample() -> Genesis {
        let keys: Vec<SecretKey> = (1..=4u8).map(|i| SecretKey::from_bytes(Suite::Ed25519, &[i; 32]).unwrap()).collect();
        Genesis {
            chain_id: ChainId::new("alpha").unwrap(),
            genesis_time: Time::from_secs(1_700_000_000),
            hash: HashAlg::Sha256,
            app_version: 1,
            profile: Profile::Permissioned,
            validators: keys
                .iter()
                .enumerate()
                .map(|(i, k)| GenesisValidator { name: format!("v{i}"), pub_key: k.public_key(), power: 10, node_id: None })
                .collect(),
            params: Params::default(),
            orgs: vec![GenesisOrg { id: OrgId::new("acme").unwrap(), admin: keys[0].public_key().address() }],
            assets: vec![GenesisAsset {
                denom: Denom::new("cash").unwrap(),
                issuer: keys[0].public_key().address(),
                balances: vec![(keys[1].public_key().address(), Amount(1000))],
            }],
            lineage: None,
        }
    }

    #[test]
    fn json_round_trip_and_checks() {
        let g = sample();
        let json = serde_json::to_string_pretty(&g).unwrap();
        assert!(json.contains("\"genesis_time\": \"2023-11-14T22:13:20"));
        let back: Genesis = serde_json::from_str(&json).unwrap();
        assert_eq!(back, g);
        assert!(g.validate().is_ok());
        let mut dup = g.clone();
        dup.validators.push(dup.validators[0].clone());
        assert!(dup.validate().is_err());
        let mut zero = g.clone();
        zero.assets[0].balances[0].1 = Amount(0);
        assert!(zero.validate().is_err());
        assert!(serde_json::from_str::<Genesis>(&json.replace("\"profile\"", "\"profil\"")).is_err());
    }
}
