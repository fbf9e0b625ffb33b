//! RFC 3263 without I/O: the names the proxy is waiting for, and the answers it has.
//!
//! A request whose next hop is a name that is neither an IP literal nor in the static table
//! is parked on a [`Query`]; the first request for a name raises [`crate::Event::Resolve`],
//! later ones wait on the same query. The driver does the lookup (SRV, then A/AAAA, §4.2 and
//! §4.4) and feeds [`crate::InputKind::Resolved`]; the parked requests then go on, or fail:
//! 404 for a name with no address, 504 when no answer came in time (RFC 3261 §21.5.5: "did
//! not receive a timely response from an external server").
//!
//! Answers are kept for a while so that the ACK, CANCEL and in-dialog requests that follow
//! resolve without asking again. Both tables are bounded.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use super::ContextId;
use crate::time::Instant;
use crate::{Query, Transport};

/// How long an answer is kept (the driver's resolver has the records' own TTLs).
pub const CACHE_TTL: Duration = Duration::from_secs(300);
/// Names kept at most; the oldest answer goes first.
pub const CACHE_MAX: usize = 1024;
/// How long a request waits for an answer.
pub const LOOKUP_TIMEOUT: Duration = Duration::from_secs(4);
/// Requests that may wait on lookups at once; beyond it a request fails at once (503).
pub const PARKED_MAX: usize = 4096;

/// A request waiting for its next hop's address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parked {
    /// Its response context.
    pub context: ContextId,
    /// The Request-URI its branch will carry.
    pub uri: String,
    /// The transport of the branch.
    pub transport: Transport,
    /// For an ACK forwarded statelessly (§16.11, no context): the bytes to send and the
    /// local address to send them from.
    pub ack: Option<(Vec<u8>, SocketAddr)>,
}

/// Pending lookups and cached answers.
#[derive(Debug, Default)]
pub struct Dns {
    cache: BTreeMap<Query, (Vec<SocketAddr>, Instant)>,
    pending: BTreeMap<Query, Vec<Parked>>,
    parked: usize,
}

/// What [`Dns::park`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum Parking {
    /// The first request for this name: ask the driver, and time the lookup out.
    Ask,
    /// Another request already asked.
    Joined,
    /// Too many requests waiting.
    Full,
}

impl Dns {
    /// The cached first address for `q`, if the answer is fresh.
    pub fn cached(&self, q: &Query, now: Instant) -> Option<SocketAddr> {
        match self.cache.get(q) {
            Some((addrs, at)) if now.saturating_since(*at) < CACHE_TTL => addrs.first().copied(),
            _ => None,
        }
    }

    /// Parks a request on `q`.
    pub fn park(&mut self, q: Query, p: Parked) -> Parking {
        if self.parked >= PARKED_MAX {
            return Parking::Full;
        }
        self.parked += 1;
        let list = self.pending.entry(q).or_default();
        list.push(p);
        if list.len() == 1 {
            Parking::Ask
        } else {
            Parking::Joined
        }
    }

    /// The answer for `q`: the requests that waited for it. A non-empty answer is cached.
    pub fn answer(&mut self, q: &Query, addrs: &[SocketAddr], now: Instant) -> Vec<Parked> {
        if !addrs.is_empty() {
            if self.cache.len() >= CACHE_MAX && !self.cache.contains_key(q) {
                if let Some(oldest) = self
                    .cache
                    .iter()
                    .min_by_key(|(_, (_, at))| *at)
                    .map(|(k, _)| k.clone())
                {
                    self.cache.remove(&oldest);
                }
            }
            self.cache.insert(q.clone(), (addrs.to_vec(), now));
        }
        let waiting = self.pending.remove(q).unwrap_or_default();
        self.parked -= waiting.len();
        waiting
    }

    /// Requests waiting in all.
    pub fn waiting(&self) -> usize {
        self.parked
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(name: &str) -> Query {
        Query {
            name: name.into(),
            port: None,
            transport: Transport::Udp,
        }
    }

    fn p(context: ContextId) -> Parked {
        Parked {
            context,
            uri: "sip:bob@biloxi.example.com".into(),
            transport: Transport::Udp,
            ack: None,
        }
    }

    #[test]
    fn one_question_per_name_and_every_waiter_gets_the_answer() {
        let mut d = Dns::default();
        assert_eq!(d.park(q("biloxi.example.com"), p(1)), Parking::Ask);
        assert_eq!(d.park(q("biloxi.example.com"), p(2)), Parking::Joined);
        assert_eq!(d.park(q("chicago.example.com"), p(3)), Parking::Ask);
        assert_eq!(d.waiting(), 3);
        let addr: SocketAddr = "192.0.2.222:5060".parse().unwrap();
        let got = d.answer(&q("biloxi.example.com"), &[addr], Instant::ZERO);
        assert_eq!(got, [p(1), p(2)]);
        assert_eq!(d.waiting(), 1);
        assert_eq!(
            d.cached(&q("biloxi.example.com"), Instant::ZERO),
            Some(addr)
        );
        // An answer is kept for CACHE_TTL, not longer.
        let later = Instant::ZERO + CACHE_TTL;
        assert_eq!(d.cached(&q("biloxi.example.com"), later), None);
        // No address: nothing cached, the waiter still learns it.
        assert_eq!(
            d.answer(&q("chicago.example.com"), &[], Instant::ZERO),
            [p(3)]
        );
        assert_eq!(d.cached(&q("chicago.example.com"), Instant::ZERO), None);
        assert_eq!(d.waiting(), 0);
    }

    #[test]
    fn the_cache_is_bounded() {
        let mut d = Dns::default();
        let addr: SocketAddr = "192.0.2.1:5060".parse().unwrap();
        for i in 0..CACHE_MAX + 10 {
            d.answer(
                &q(&format!("h{i}.example.com")),
                &[addr],
                Instant::from_millis(i as u64),
            );
        }
        assert_eq!(d.cache.len(), CACHE_MAX);
        // The oldest went first.
        assert_eq!(
            d.cached(&q("h0.example.com"), Instant::from_millis(2000)),
            None
        );
        let last = q(&format!("h{}.example.com", CACHE_MAX + 9));
        assert_eq!(d.cached(&last, Instant::from_millis(2000)), Some(addr));
    }
}
