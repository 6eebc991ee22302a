//! Light clients kept in state: load, store, update, misbehaviour, and proof checks, as both the hub (one client
//! per member) and each member (one client of the hub) use them.
//!
//! A client lives under one key as its canonical encoding ([`NativeClient`] with its client state and every kept
//! consensus state), so it survives restarts with the chain's state and is itself provable.

use causeway_light_client::{
    Canonical, ChainId, Header, HeaderUpdate, LightClient, Misbehaviour, Namespace, NativeClient, StateProof,
    Time, TrustOptions, ValidatorSet,
};

use super::Error;
use crate::exec::ExecError;
use crate::state::{StateRead, StateWrite};

/// The client stored under `(namespace, key)`, if any.
pub fn load(
    state: &(impl StateRead + ?Sized),
    namespace: &Namespace,
    key: &[u8],
) -> Result<Option<NativeClient>, Error> {
    match state.get(namespace, key).map_err(ExecError::State)? {
        None => Ok(None),
        Some(raw) => NativeClient::decode(&raw).map(Some).map_err(|e| {
            Error::Fatal(ExecError::Corrupt {
                namespace: namespace.to_string(),
                reason: e.to_string(),
            })
        }),
    }
}

/// Store `client` under `(namespace, key)`.
pub fn store(
    state: &mut (impl StateWrite + ?Sized),
    namespace: &Namespace,
    key: &[u8],
    client: &NativeClient,
) -> Result<(), Error> {
    state
        .put(namespace, key, client.encode())
        .map_err(ExecError::State)?;
    Ok(())
}

/// A new client for governance: trust `header`, whose next validator set must be `next_validators`.
pub fn create(
    options: TrustOptions,
    header: &Header,
    next_validators: &ValidatorSet,
    now: Time,
) -> Result<NativeClient, Error> {
    check_next_validators(&options.chain_id, options.hash_alg, header, next_validators)?;
    NativeClient::new(options.clone(), header, now).map_err(|e| Error::Client {
        chain: options.chain_id,
        source: e,
    })
}

/// Governance recovery of a (frozen or expired) client from a new trusted header.
pub fn recover(
    client: &mut NativeClient,
    header: &Header,
    next_validators: &ValidatorSet,
    now: Time,
) -> Result<(), Error> {
    let chain = client.options().chain_id.clone();
    check_next_validators(&chain, client.options().hash_alg, header, next_validators)?;
    client
        .recover(header, now)
        .map_err(|e| Error::Client { chain, source: e })
}

fn check_next_validators(
    chain: &ChainId,
    alg: causeway_light_client::HashAlg,
    header: &Header,
    next_validators: &ValidatorSet,
) -> Result<(), Error> {
    if next_validators.hash(alg) != header.next_validators_hash {
        return Err(Error::Governance(format!(
            "the validator set given for {chain} is not the header's next validator set"
        )));
    }
    Ok(())
}

/// Verify and record a header update. On a conflicting header (a second valid header at a trusted height) the
/// client is frozen in place and `Client { source: ConflictingHeader }` is returned: the caller must store the frozen
/// client and let the transaction succeed, or the freeze would be rolled back with it.
pub fn update(client: &mut NativeClient, update: HeaderUpdate, now: Time) -> Result<u64, Error> {
    let chain = client.options().chain_id.clone();
    client
        .verify_header(update, now)
        .map(|o| o.height)
        .map_err(|e| Error::Client { chain, source: e })
}

/// Check misbehaviour evidence; the client is frozen when it holds.
pub fn misbehaviour(client: &mut NativeClient, evidence: Misbehaviour, now: Time) -> Result<(), Error> {
    let chain = client.options().chain_id.clone();
    match client.check_misbehaviour(evidence, now) {
        Ok(true) => Ok(()),
        Ok(false) => Err(Error::NoMisbehaviour),
        Err(e) => Err(Error::Client { chain, source: e }),
    }
}

/// Check that `value` is under `path` on the client's chain at `height`.
pub fn verify_membership(
    client: &NativeClient,
    height: u64,
    path: &[u8],
    value: &[u8],
    proof: &StateProof,
) -> Result<(), Error> {
    client
        .verify_membership(height, path, value, proof)
        .map_err(|e| Error::Client {
            chain: client.options().chain_id.clone(),
            source: e,
        })
}

/// Check that nothing is under `path` on the client's chain at `height`.
pub fn verify_non_membership(
    client: &NativeClient,
    height: u64,
    path: &[u8],
    proof: &StateProof,
) -> Result<(), Error> {
    client
        .verify_non_membership(height, path, proof)
        .map_err(|e| Error::Client {
            chain: client.options().chain_id.clone(),
            source: e,
        })
}

/// The block time of the client's chain at `height`, as the client verified it.
pub fn time_at(client: &NativeClient, height: u64) -> Result<Time, Error> {
    client
        .consensus_state(height)
        .map(|c| c.time)
        .ok_or_else(|| Error::Client {
            chain: client.options().chain_id.clone(),
            source: causeway_light_client::NativeError::NoConsensusState { height },
        })
}
