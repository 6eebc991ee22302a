//! When to redial bootstrap peers: a pure schedule, with time and randomness passed in.
//!
//! **Owns**: the per-peer state (connected, waiting with a due time, dialling) and the exponential backoff with
//! jitter between attempts. The swarm task feeds it connection events and asks which dials are due.
//!
//! **Must never**: read a clock, do I/O, or dial anything itself.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use libp2p::{Multiaddr, PeerId};
use rand::Rng;

use super::config::RedialConfig;

/// The delay before attempt number `attempt` (0-based): `initial × 2^attempt`, scaled by `1 + jitter × (2u − 1)`
/// for `u` in `[0, 1)`, and never above `max`.
pub fn backoff_delay(config: &RedialConfig, attempt: u32, u: f64) -> Duration {
    let base = (config.initial_ms as f64) * 2f64.powi(attempt.min(62) as i32);
    let capped = base.min(config.max_ms as f64);
    let spread = 1.0 + config.jitter * (2.0 * u.clamp(0.0, 1.0) - 1.0);
    Duration::from_millis((capped * spread).min(config.max_ms as f64).max(0.0) as u64)
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum State {
    Connected,
    Waiting { attempt: u32, due: Instant },
    Dialling { attempt: u32 },
}

#[derive(Clone, Debug)]
struct Entry {
    addr: Multiaddr,
    state: State,
}

/// Redial state of every bootstrap peer.
#[derive(Debug)]
pub struct Redialer {
    config: RedialConfig,
    peers: BTreeMap<PeerId, Entry>,
}

impl Redialer {
    /// Every peer in `bootstrap` is due at once.
    pub fn new(
        config: RedialConfig,
        bootstrap: impl IntoIterator<Item = (PeerId, Multiaddr)>,
        now: Instant,
    ) -> Self {
        let peers = bootstrap
            .into_iter()
            .map(|(peer, addr)| {
                (
                    peer,
                    Entry {
                        addr,
                        state: State::Waiting { attempt: 0, due: now },
                    },
                )
            })
            .collect();
        Self { config, peers }
    }

    /// A first connection to `peer` is up (in either direction): stop dialling it, reset its backoff.
    pub fn connected(&mut self, peer: &PeerId) {
        if let Some(entry) = self.peers.get_mut(peer) {
            entry.state = State::Connected;
        }
    }

    /// The last connection to `peer` closed: schedule the first redial.
    pub fn disconnected(&mut self, peer: &PeerId, now: Instant, rng: &mut impl Rng) {
        let config = &self.config;
        if let Some(entry) = self.peers.get_mut(peer) {
            if entry.state == State::Connected {
                let due = now + backoff_delay(config, 0, rng.gen());
                entry.state = State::Waiting { attempt: 0, due };
            }
        }
    }

    /// A dial to `peer` failed: wait longer before the next one.
    pub fn dial_failed(&mut self, peer: &PeerId, now: Instant, rng: &mut impl Rng) {
        let config = &self.config;
        if let Some(entry) = self.peers.get_mut(peer) {
            if let State::Dialling { attempt } = entry.state {
                let attempt = attempt.saturating_add(1);
                let due = now + backoff_delay(config, attempt, rng.gen());
                entry.state = State::Waiting { attempt, due };
            }
        }
    }

    /// Dial `peer` at once if it is not connected (it was just allowed again, for instance).
    pub fn retry_now(&mut self, peer: &PeerId, now: Instant) {
        if let Some(entry) = self.peers.get_mut(peer) {
            if let State::Waiting { attempt, .. } = entry.state {
                entry.state = State::Waiting { attempt, due: now };
            }
        }
    }

    /// The dials due at `now`; each returned peer is marked as being dialled.
    pub fn due(&mut self, now: Instant) -> Vec<(PeerId, Multiaddr)> {
        let mut out = Vec::new();
        for (peer, entry) in &mut self.peers {
            if let State::Waiting { attempt, due } = entry.state {
                if due <= now {
                    entry.state = State::Dialling { attempt };
                    out.push((*peer, entry.addr.clone()));
                }
            }
        }
        out
    }

    /// The earliest time a dial becomes due, if any is waiting.
    pub fn next_due(&self) -> Option<Instant> {
        self.peers
            .values()
            .filter_map(|e| match e.state {
                State::Waiting { due, .. } => Some(due),
                _ => None,
            })
            .min()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failing test panics by design
mod tests {
    use super::*;
    use rand::rngs::mock::StepRng;

    fn config() -> RedialConfig {
        RedialConfig {
            initial_ms: 100,
            max_ms: 1_000,
            jitter: 0.5,
        }
    }

    #[test]
    fn backoff_doubles_spreads_and_caps() {
        let c = config();
        let ms = |attempt, u| backoff_delay(&c, attempt, u).as_millis();
        // (attempt, u, expected ms)
        let table = [
            (0, 0.5, 100),
            (1, 0.5, 200),
            (2, 0.5, 400),
            (3, 0.5, 800),
            (4, 0.5, 1_000),
            (40, 0.5, 1_000),
            (u32::MAX, 0.5, 1_000),
            (0, 0.0, 50),
            (0, 0.999_999, 149),
            (3, 0.0, 400),
            (3, 1.0, 1_000), // 800 × 1.5 = 1200, capped
            (5, 0.0, 500),   // the cap applies before the jitter, so jitter still spreads capped delays
        ];
        for (attempt, u, expected) in table {
            assert_eq!(ms(attempt, u), expected, "attempt {attempt}, u {u}");
        }
    }

    #[test]
    fn peers_move_through_connected_waiting_dialling() {
        let peer = PeerId::random();
        let addr: Multiaddr = "/ip4/127.0.0.1/tcp/1".parse().unwrap();
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        // u = 0.5 always (StepRng yields the middle of the range), so no jitter.
        let mut rng = StepRng::new(1 << 63, 0);
        let mut r = Redialer::new(config(), [(peer, addr.clone())], t0);

        assert_eq!(r.next_due(), Some(t0));
        assert_eq!(r.due(t0), vec![(peer, addr.clone())]);
        assert_eq!(r.due(t0), vec![], "a dial in flight is not repeated");
        assert_eq!(r.next_due(), None);

        r.dial_failed(&peer, t0, &mut rng);
        assert_eq!(r.next_due(), Some(t0 + ms(200)));
        assert!(r.due(t0 + ms(199)).is_empty());
        assert_eq!(r.due(t0 + ms(200)).len(), 1);
        r.dial_failed(&peer, t0 + ms(200), &mut rng);
        assert_eq!(r.next_due(), Some(t0 + ms(600)));

        // An inbound connection while waiting stops the schedule; dropping it restarts from the first delay.
        r.connected(&peer);
        assert_eq!(r.next_due(), None);
        r.dial_failed(&peer, t0, &mut rng);
        assert_eq!(
            r.next_due(),
            None,
            "a stale dial failure does not disturb a connected peer"
        );
        r.disconnected(&peer, t0 + ms(1_000), &mut rng);
        assert_eq!(r.next_due(), Some(t0 + ms(1_100)));
        r.retry_now(&peer, t0 + ms(1_010));
        assert_eq!(r.due(t0 + ms(1_010)).len(), 1);

        // Peers that are not bootstrap peers are ignored.
        let stranger = PeerId::random();
        r.disconnected(&stranger, t0, &mut rng);
        r.connected(&stranger);
        assert!(r.due(t0 + ms(10_000)).is_empty());
    }
}
