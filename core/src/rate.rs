//! Requests per source address, like Kamailio's pike module: a token bucket per IP address,
//! refilled by the `now` of each input, in a table of bounded size.
//!
//! Only requests that start a transaction count (the element calls [`SourceTable::admit`]
//! after retransmissions have been answered from their transactions), so a client that
//! retransmits over a lossy link is not punished for it. The table forgets the source heard
//! from least recently when it is full: a flood from forged addresses costs a bounded amount
//! of memory, at the price that a limited source pushed out of the table starts afresh.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use crate::config::SourceRate;
use crate::time::Instant;

/// One token, in the thousandths the buckets count in (so that a refill of a fraction of a
/// token per input is not lost to rounding).
const TOKEN: u64 = 1000;

/// The verdict on one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Admission {
    /// Within the limit (or the source is exempt, or the limit is off).
    Admit,
    /// Over the limit; `first` for the first request of an episode (to be logged once).
    Over {
        /// The source was within its limit until this request.
        first: bool,
    },
}

#[derive(Debug)]
struct Bucket {
    /// Tokens left, in thousandths.
    tokens: u64,
    /// When it was last refilled, which is also when the source was last heard from.
    at: Instant,
    /// Its last request was over the limit.
    limited: bool,
}

/// The buckets of the sources heard from, at most `sources_max` of them.
#[derive(Debug)]
pub(crate) struct SourceTable {
    config: SourceRate,
    buckets: BTreeMap<IpAddr, Bucket>,
    /// The same sources by when they were last heard from, least recent first.
    by_age: BTreeSet<(Instant, IpAddr)>,
}

impl SourceTable {
    pub(crate) fn new(config: SourceRate) -> Self {
        SourceTable {
            config,
            buckets: BTreeMap::new(),
            by_age: BTreeSet::new(),
        }
    }

    /// Sources remembered (for tests: the table stays within its bound).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.buckets.len()
    }

    /// Takes one token from `source`'s bucket, if it has one.
    pub(crate) fn admit(&mut self, source: IpAddr, now: Instant) -> Admission {
        let c = &self.config;
        if c.per_second == 0 || c.sources_max == 0 || c.exempt.iter().any(|n| n.contains(source)) {
            return Admission::Admit;
        }
        let capacity = u64::from(c.burst.max(1)) * TOKEN;
        let per_second = u64::from(c.per_second);
        let bucket = match self.buckets.get_mut(&source) {
            Some(b) => {
                self.by_age.remove(&(b.at, source));
                // per_second tokens a second are per_second thousandths a millisecond.
                let micros =
                    u64::try_from(now.saturating_since(b.at).as_micros()).unwrap_or(u64::MAX);
                let refill = micros.saturating_mul(per_second) / 1000;
                b.tokens = b.tokens.saturating_add(refill).min(capacity);
                b.at = now;
                b
            }
            None => {
                if self.buckets.len() >= c.sources_max {
                    if let Some((_, oldest)) = self.by_age.pop_first() {
                        self.buckets.remove(&oldest);
                    }
                }
                self.buckets.entry(source).or_insert(Bucket {
                    tokens: capacity,
                    at: now,
                    limited: false,
                })
            }
        };
        self.by_age.insert((now, source));
        if bucket.tokens >= TOKEN {
            bucket.tokens -= TOKEN;
            bucket.limited = false;
            Admission::Admit
        } else {
            let first = !bucket.limited;
            bucket.limited = true;
            Admission::Over { first }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::IpNet;
    use std::time::Duration;

    fn table(per_second: u32, burst: u32, sources_max: usize) -> SourceTable {
        SourceTable::new(SourceRate {
            per_second,
            burst,
            sources_max,
            exempt: vec![IpNet::parse("10.0.0.0/8").unwrap()],
            ..SourceRate::default()
        })
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn at(ms: u64) -> Instant {
        Instant::from_millis(ms)
    }

    #[test]
    fn a_burst_passes_then_the_rest_waits_for_the_refill() {
        let mut t = table(10, 3, 100);
        let a = ip("192.0.2.1");
        for _ in 0..3 {
            assert_eq!(t.admit(a, at(0)), Admission::Admit);
        }
        assert_eq!(t.admit(a, at(0)), Admission::Over { first: true });
        assert_eq!(t.admit(a, at(50)), Admission::Over { first: false });
        // 10 a second: one token every 100 ms.
        assert_eq!(t.admit(a, at(100)), Admission::Admit);
        assert_eq!(t.admit(a, at(100)), Admission::Over { first: true });
        // A long quiet spell refills up to the burst, not beyond.
        for _ in 0..3 {
            assert_eq!(t.admit(a, at(60_000)), Admission::Admit);
        }
        assert!(matches!(t.admit(a, at(60_000)), Admission::Over { .. }));
    }

    #[test]
    fn refills_smaller_than_a_token_add_up() {
        let mut t = table(1000, 1, 100);
        let a = ip("192.0.2.1");
        assert_eq!(t.admit(a, at(0)), Admission::Admit);
        // 1000 a second with inputs every 250 µs: one token per millisecond on average.
        let mut admitted = 0;
        for i in 1..=400u64 {
            let now = Instant::from_duration(Duration::from_micros(i * 250));
            if t.admit(a, now) == Admission::Admit {
                admitted += 1;
            }
        }
        assert_eq!(admitted, 100);
    }

    #[test]
    fn sources_are_limited_apart_and_exempt_ones_never() {
        let mut t = table(1, 1, 100);
        assert_eq!(t.admit(ip("192.0.2.1"), at(0)), Admission::Admit);
        assert_eq!(t.admit(ip("192.0.2.2"), at(0)), Admission::Admit);
        assert!(matches!(
            t.admit(ip("192.0.2.1"), at(0)),
            Admission::Over { .. }
        ));
        for _ in 0..100 {
            assert_eq!(t.admit(ip("10.1.2.3"), at(0)), Admission::Admit);
        }
        assert_eq!(t.len(), 2, "exempt sources take no room");
    }

    #[test]
    fn a_full_table_forgets_the_source_heard_from_least_recently() {
        let mut t = table(1, 1, 2);
        assert_eq!(t.admit(ip("192.0.2.1"), at(0)), Admission::Admit);
        assert_eq!(t.admit(ip("192.0.2.2"), at(1)), Admission::Admit);
        assert!(matches!(
            t.admit(ip("192.0.2.1"), at(2)),
            Admission::Over { .. }
        ));
        // A third source pushes out .2, the least recently heard from; .1 stays limited.
        assert_eq!(t.admit(ip("192.0.2.3"), at(3)), Admission::Admit);
        assert_eq!(t.len(), 2);
        assert!(matches!(
            t.admit(ip("192.0.2.1"), at(4)),
            Admission::Over { .. }
        ));
        assert_eq!(
            t.admit(ip("192.0.2.2"), at(5)),
            Admission::Admit,
            "forgotten, so afresh"
        );
        assert_eq!(t.len(), 2);
    }

    #[test]
    fn zero_per_second_turns_the_limit_off() {
        let mut t = table(0, 1, 2);
        for i in 0..10 {
            assert_eq!(t.admit(ip("192.0.2.1"), at(i)), Admission::Admit);
        }
        assert_eq!(t.len(), 0);
    }

    #[test]
    fn networks_contain_their_addresses() {
        let n = IpNet::parse("192.0.2.0/24").unwrap();
        assert!(n.contains(ip("192.0.2.77")));
        assert!(!n.contains(ip("192.0.3.1")));
        assert!(n.contains(ip("::ffff:192.0.2.5")), "IPv4-mapped IPv6");
        let one = IpNet::parse("::1").unwrap();
        assert!(one.contains(ip("::1")) && !one.contains(ip("::2")));
        assert!(IpNet::parse("0.0.0.0/0")
            .unwrap()
            .contains(ip("203.0.113.9")));
        assert!(!IpNet::parse("0.0.0.0/0").unwrap().contains(ip("::1")));
        assert_eq!(IpNet::parse("192.0.2.0/33"), None);
        assert_eq!(IpNet::parse("nonsense"), None);
        assert_eq!(
            IpNet::parse("2001:db8::/32").unwrap().to_string(),
            "2001:db8::/32"
        );
    }
}
