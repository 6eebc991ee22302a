//! Light clients kept in state: create, update, misbehaviour, recovery and proof checks, as both the hub (one
//! client per member) and each member (one client of the hub) use them.
//!
//! ## Layout
//! A client is stored by parts under its [`Slot`]'s key `K` in the slot's namespace, so that the common case —
//! checking one proof at one height — reads two small values however many heights the client keeps:
//!
//! | key | value |
//! |---|---|
//! | `K` | the [`ClientState`] (options, latest height, frozen height) |
//! | `K ‖ 0x00 ‖ "heights"` | the kept heights, strictly increasing (Borsh `Vec<u64>`) |
//! | `K ‖ 0x00 ‖ "h" ‖ height (8 bytes, big-endian)` | that height's [`TrustedHeight`] |
//!
//! An update reads only the heights it needs ([`heights_for_update`]), writes the new one and deletes the ones
//! [`prune`] drops; the light client's own rules decide everything (this module only loads and stores).

use causeway_light_client::native::{
    heights_for_misbehaviour, heights_for_update, prune, ClientState, TrustedHeight, MAX_CONSENSUS_STATES,
};
use causeway_light_client::{
    Canonical, ChainId, Header, HeaderUpdate, LightClient, Misbehaviour, Namespace, NativeClient,
    NativeError, StateProof, Time, TrustOptions, ValidatorSet,
};

use super::types::{hub_keys, member_keys, namespace, HUB_NAMESPACE, NAMESPACE};
use super::Error;
use crate::exec::ExecError;
use crate::state::{StateRead, StateWrite};

type Result<T, E = Error> = std::result::Result<T, E>;

/// Where one light client lives in state, and whose client it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Slot {
    namespace: Namespace,
    key: Vec<u8>,
    /// The followed chain, for errors; `None` for a member's client of the hub.
    of: Option<ChainId>,
}

impl Slot {
    /// The hub's client of member `chain`.
    pub fn of_member(chain: &ChainId) -> Self {
        Slot {
            namespace: namespace(HUB_NAMESPACE),
            key: hub_keys::client(chain),
            of: Some(chain.clone()),
        }
    }

    /// A member's client of the hub.
    pub fn of_hub() -> Self {
        Slot {
            namespace: namespace(NAMESPACE),
            key: member_keys::CLIENT.to_vec(),
            of: None,
        }
    }

    /// The namespace holding the client.
    pub fn namespace(&self) -> &Namespace {
        &self.namespace
    }

    /// The key of the client state; the kept heights and each height live under keys that extend it.
    pub fn key(&self) -> &[u8] {
        &self.key
    }

    /// The key of the kept-heights list.
    pub fn heights_key(&self) -> Vec<u8> {
        let mut k = self.key.clone();
        k.extend_from_slice(b"\0heights");
        k
    }

    /// The key of the trusted height `height`.
    pub fn height_key(&self, height: u64) -> Vec<u8> {
        let mut k = self.key.clone();
        k.extend_from_slice(b"\0h");
        k.extend_from_slice(&height.to_be_bytes());
        k
    }

    fn missing(&self) -> Error {
        match &self.of {
            Some(chain) => Error::NoClient(chain.clone()),
            None => Error::NoHubClient,
        }
    }

    fn corrupt(&self, reason: impl std::fmt::Display) -> Error {
        Error::Fatal(ExecError::Corrupt {
            namespace: self.namespace.to_string(),
            reason: format!("light client: {reason}"),
        })
    }

    fn client_error(&self, chain: &ChainId, source: NativeError) -> Error {
        Error::Client {
            chain: chain.clone(),
            source,
        }
    }

    /// Whether a client is stored here.
    pub fn exists(&self, state: &(impl StateRead + ?Sized)) -> Result<bool> {
        Ok(state
            .get(&self.namespace, &self.key)
            .map_err(ExecError::State)?
            .is_some())
    }

    /// The client state, if a client is stored here.
    pub fn client_state(&self, state: &(impl StateRead + ?Sized)) -> Result<Option<ClientState>> {
        match state.get(&self.namespace, &self.key).map_err(ExecError::State)? {
            None => Ok(None),
            Some(raw) => ClientState::decode(&raw).map(Some).map_err(|e| self.corrupt(e)),
        }
    }

    fn required_state(&self, state: &(impl StateRead + ?Sized)) -> Result<ClientState> {
        self.client_state(state)?.ok_or_else(|| self.missing())
    }

    /// The trust options of the stored client.
    pub fn options(&self, state: &(impl StateRead + ?Sized)) -> Result<TrustOptions> {
        Ok(self.required_state(state)?.options)
    }

    /// The kept heights, oldest first (empty when no client is stored).
    pub fn kept(&self, state: &(impl StateRead + ?Sized)) -> Result<Vec<u64>> {
        let Some(raw) = state
            .get(&self.namespace, &self.heights_key())
            .map_err(ExecError::State)?
        else {
            return Ok(Vec::new());
        };
        let heights: Vec<u64> = borsh::from_slice(&raw).map_err(|e| self.corrupt(e))?;
        if heights.len() > MAX_CONSENSUS_STATES as usize || heights.windows(2).any(|w| w[0] >= w[1]) {
            return Err(self.corrupt("kept heights not strictly increasing or too many"));
        }
        Ok(heights)
    }

    fn trusted(&self, state: &(impl StateRead + ?Sized), height: u64) -> Result<TrustedHeight> {
        self.trusted_if_kept(state, height)?
            .ok_or_else(|| self.corrupt(format!("kept height {height} is missing")))
    }

    fn trusted_if_kept(
        &self,
        state: &(impl StateRead + ?Sized),
        height: u64,
    ) -> Result<Option<TrustedHeight>> {
        let Some(raw) = state
            .get(&self.namespace, &self.height_key(height))
            .map_err(ExecError::State)?
        else {
            return Ok(None);
        };
        let trusted = TrustedHeight::decode(&raw).map_err(|e| self.corrupt(e))?;
        if trusted.height != height {
            return Err(self.corrupt(format!("height {} stored as {height}", trusted.height)));
        }
        Ok(Some(trusted))
    }

    fn view(
        &self,
        state: &(impl StateRead + ?Sized),
        client_state: ClientState,
        heights: &[u64],
    ) -> Result<NativeClient> {
        let held = heights
            .iter()
            .map(|h| self.trusted(state, *h))
            .collect::<Result<Vec<_>>>()?;
        NativeClient::partial(client_state, held).map_err(|e| self.corrupt(e))
    }

    /// The client holding only height `height` (if kept): enough to check a proof at that height.
    fn at(&self, state: &(impl StateRead + ?Sized), height: u64) -> Result<NativeClient> {
        let client_state = self.required_state(state)?;
        let held = self.trusted_if_kept(state, height)?.into_iter().collect();
        NativeClient::partial(client_state, held).map_err(|e| self.corrupt(e))
    }

    /// The whole client, every kept height loaded (for tools and tests; the chain's own paths load parts).
    pub fn load(&self, state: &(impl StateRead + ?Sized)) -> Result<Option<NativeClient>> {
        let Some(client_state) = self.client_state(state)? else {
            return Ok(None);
        };
        let held = self
            .kept(state)?
            .into_iter()
            .map(|h| self.trusted(state, h))
            .collect::<Result<Vec<_>>>()?;
        NativeClient::whole(client_state, held)
            .map(Some)
            .map_err(|e| self.corrupt(e))
    }

    /// Store a new client (created by governance or registration); the caller checked that none is here.
    pub fn create(&self, state: &mut (impl StateWrite + ?Sized), client: NativeClient) -> Result<()> {
        self.write_whole(state, &[], client)
    }

    /// Write every part of `client`, deleting the heights of `old` it does not hold.
    fn write_whole(
        &self,
        state: &mut (impl StateWrite + ?Sized),
        old: &[u64],
        client: NativeClient,
    ) -> Result<()> {
        let (client_state, held) = client.into_parts();
        let kept: Vec<u64> = held.iter().map(|t| t.height).collect();
        for h in old.iter().filter(|h| kept.binary_search(h).is_err()) {
            self.delete_height(state, *h)?;
        }
        for t in &held {
            self.put_height(state, t)?;
        }
        self.write_index(state, &client_state, &kept)
    }

    fn put_height(&self, state: &mut (impl StateWrite + ?Sized), t: &TrustedHeight) -> Result<()> {
        state
            .put(&self.namespace, &self.height_key(t.height), t.encode())
            .map_err(ExecError::State)?;
        Ok(())
    }

    fn delete_height(&self, state: &mut (impl StateWrite + ?Sized), height: u64) -> Result<()> {
        state
            .delete(&self.namespace, &self.height_key(height))
            .map_err(ExecError::State)?;
        Ok(())
    }

    fn write_index(
        &self,
        state: &mut (impl StateWrite + ?Sized),
        client_state: &ClientState,
        kept: &[u64],
    ) -> Result<()> {
        let heights = borsh::to_vec(kept).map_err(|e| self.corrupt(e))?;
        state
            .put(&self.namespace, &self.heights_key(), heights)
            .map_err(ExecError::State)?;
        state
            .put(&self.namespace, &self.key, client_state.encode())
            .map_err(ExecError::State)?;
        Ok(())
    }

    /// The partial client holding the kept heights `heights` picks (from all kept heights), for one operation.
    fn load_for(
        &self,
        state: &(impl StateRead + ?Sized),
        heights: impl FnOnce(&[u64]) -> Vec<u64>,
    ) -> Result<Loaded> {
        let before = self.required_state(state)?;
        let kept = self.kept(state)?;
        let read = heights(&kept);
        let client = self.view(state, before.clone(), &read)?;
        Ok(Loaded {
            before,
            kept,
            read,
            client,
        })
    }

    /// Write back what an operation changed on a [`Slot::load_for`] client: new heights, the pruned ones, and the
    /// client state.
    fn write_back(&self, state: &mut (impl StateWrite + ?Sized), loaded: Loaded) -> Result<()> {
        let Loaded {
            before,
            mut kept,
            read,
            client,
        } = loaded;
        let (client_state, held) = client.into_parts();
        let mut changed = client_state != before;
        for t in held.iter().filter(|t| read.binary_search(&t.height).is_err()) {
            self.put_height(state, t)?;
            if let Err(at) = kept.binary_search(&t.height) {
                kept.insert(at, t.height);
            }
            changed = true;
        }
        for h in prune(&mut kept, client_state.options.max_consensus_states) {
            self.delete_height(state, h)?;
        }
        if changed {
            self.write_index(state, &client_state, &kept)?;
        }
        Ok(())
    }

    /// Verify and record a header update; returns the height now trusted. On a conflicting header (a second valid
    /// header at a trusted height) the frozen client is stored and `Client { source: ConflictingHeader }` is
    /// returned: the caller must let its transaction succeed, or the freeze would be rolled back with it.
    pub fn update(
        &self,
        state: &mut (impl StateWrite + ?Sized),
        update: HeaderUpdate,
        now: Time,
    ) -> Result<u64> {
        let mut loaded = self.load_for(state, |kept| heights_for_update(kept, &update))?;
        let chain = loaded.before.options.chain_id.clone();
        match loaded.client.verify_header(update, now) {
            Ok(outcome) => {
                self.write_back(state, loaded)?;
                Ok(outcome.height)
            }
            Err(e @ NativeError::ConflictingHeader { .. }) => {
                self.write_back(state, loaded)?;
                Err(self.client_error(&chain, e))
            }
            Err(e) => Err(self.client_error(&chain, e)),
        }
    }

    /// Check misbehaviour evidence; the client is frozen (and stored so) when it holds.
    pub fn misbehaviour(
        &self,
        state: &mut (impl StateWrite + ?Sized),
        evidence: Misbehaviour,
        now: Time,
    ) -> Result<()> {
        let mut loaded = self.load_for(state, |kept| heights_for_misbehaviour(kept, &evidence))?;
        let chain = loaded.before.options.chain_id.clone();
        match loaded.client.check_misbehaviour(evidence, now) {
            Ok(true) => self.write_back(state, loaded),
            Ok(false) => Err(Error::NoMisbehaviour),
            Err(e) => Err(self.client_error(&chain, e)),
        }
    }

    /// Governance recovery of a (frozen or expired) client from a new trusted header: every kept height is
    /// replaced by that one.
    pub fn recover(
        &self,
        state: &mut (impl StateWrite + ?Sized),
        header: &Header,
        next_validators: &ValidatorSet,
        now: Time,
    ) -> Result<()> {
        let before = self.required_state(state)?;
        let kept = self.kept(state)?;
        let chain = before.options.chain_id.clone();
        check_next_validators(&chain, before.options.hash_alg, header, next_validators)?;
        let mut client = self.view(state, before, &[])?;
        client
            .recover(header, now)
            .map_err(|e| self.client_error(&chain, e))?;
        self.write_whole(state, &kept, client)
    }

    /// Check that `value` is under `path` on the followed chain at `height`.
    pub fn verify_membership(
        &self,
        state: &(impl StateRead + ?Sized),
        height: u64,
        path: &[u8],
        value: &[u8],
        proof: &StateProof,
    ) -> Result<()> {
        let client = self.at(state, height)?;
        client
            .verify_membership(height, path, value, proof)
            .map_err(|e| self.client_error(&client.options().chain_id, e))
    }

    /// Check that nothing is under `path` on the followed chain at `height`.
    pub fn verify_non_membership(
        &self,
        state: &(impl StateRead + ?Sized),
        height: u64,
        path: &[u8],
        proof: &StateProof,
    ) -> Result<()> {
        let client = self.at(state, height)?;
        client
            .verify_non_membership(height, path, proof)
            .map_err(|e| self.client_error(&client.options().chain_id, e))
    }

    /// The block time of the followed chain at `height`, as the client verified it.
    pub fn time_at(&self, state: &(impl StateRead + ?Sized), height: u64) -> Result<Time> {
        let client = self.at(state, height)?;
        client.consensus_state(height).map(|c| c.time).ok_or_else(|| {
            self.client_error(
                &client.options().chain_id,
                NativeError::NoConsensusState { height },
            )
        })
    }
}

/// A partial client loaded for one operation, with what writing its changes back needs.
struct Loaded {
    /// The client state as stored.
    before: ClientState,
    /// Every kept height, as stored.
    kept: Vec<u64>,
    /// The heights loaded into `client`.
    read: Vec<u64>,
    client: NativeClient,
}

/// A new client for governance: trust `header`, whose next validator set must be `next_validators`.
pub fn create(
    options: TrustOptions,
    header: &Header,
    next_validators: &ValidatorSet,
    now: Time,
) -> Result<NativeClient> {
    check_next_validators(&options.chain_id, options.hash_alg, header, next_validators)?;
    NativeClient::new(options.clone(), header, now).map_err(|e| Error::Client {
        chain: options.chain_id,
        source: e,
    })
}

fn check_next_validators(
    chain: &ChainId,
    alg: causeway_light_client::HashAlg,
    header: &Header,
    next_validators: &ValidatorSet,
) -> Result<()> {
    if next_validators.hash(alg) != header.next_validators_hash {
        return Err(Error::Governance(format!(
            "the validator set given for {chain} is not the header's next validator set"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
