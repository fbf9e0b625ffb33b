//! Seeded per-datagram faults on the simulated links: loss, duplication and extra delay
//! (jitter, hence reordering), by directed link (sender IP → receiver IP) or for every link,
//! plus scripted rules ("drop the 2nd INVITE from alice to proxy1", "duplicate every 180").
//! turmoil's own `fail_rate` wipes every packet in flight and repairs too often (research on
//! turmoil), so it is not used for loss.
//!
//! One RNG, seeded from the world's seed, draws for every datagram sent in simulation order;
//! the simulation is single-threaded and deterministic, so the same seed gives the same
//! faults. A link with no fault draws nothing: adding faults to one link does not change
//! what happens on the others, and a run without faults is the run it always was.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};

/// What can go wrong on one directed link.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct LinkFaults {
    /// Probability that a datagram is lost (0 to 1).
    pub loss: f64,
    /// Probability that a delivered datagram arrives twice (0 to 1).
    pub duplicate: f64,
    /// Extra delay of each copy, drawn uniformly from this range in whole milliseconds (the
    /// simulator's tick): datagrams overtake each other when it is wider than their spacing.
    pub jitter: (Duration, Duration),
}

impl LinkFaults {
    fn is_none(&self) -> bool {
        self.loss <= 0.0 && self.duplicate <= 0.0 && self.jitter.1.is_zero()
    }
}

/// What a scripted rule does to the datagrams it matches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// The datagram is lost.
    Drop,
    /// The datagram arrives twice.
    Duplicate,
    /// The datagram arrives this much later than the link's latency.
    Delay(Duration),
}

/// A scripted fault: which datagrams, and what happens to them. A datagram a rule acts on
/// draws nothing from the link's random faults.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    /// Only datagrams from this host (any when `None`).
    pub from: Option<IpAddr>,
    /// Only datagrams to this host (any when `None`).
    pub to: Option<IpAddr>,
    /// Only messages whose start line names this method (`INVITE`) or status (`180`).
    pub message: Option<String>,
    /// Only the nth matching datagram (1-based, counted from when the rule was added);
    /// every matching one when `None`.
    pub nth: Option<u32>,
    /// What happens to it.
    pub action: Action,
}

impl Rule {
    fn matches(&self, from: IpAddr, to: IpAddr, bytes: &[u8]) -> bool {
        self.from.is_none_or(|f| f == from)
            && self.to.is_none_or(|t| t == to)
            && self
                .message
                .as_deref()
                .is_none_or(|m| start_line_names(bytes, m))
    }
}

/// Whether a message's start line is a request for `what` (a method) or a response with
/// status `what`.
fn start_line_names(bytes: &[u8], what: &str) -> bool {
    let first = bytes.split(|b| *b == b' ').next().unwrap_or_default();
    if first == b"SIP/2.0" {
        let status = bytes.get(8..11).unwrap_or_default();
        status == what.as_bytes() && bytes.get(11).is_none_or(|b| *b == b' ')
    } else {
        first.eq_ignore_ascii_case(what.as_bytes())
    }
}

/// The faults of a world.
#[derive(Debug)]
pub struct Faults {
    every_link: LinkFaults,
    links: BTreeMap<(IpAddr, IpAddr), LinkFaults>,
    /// Scripted rules, with how many datagrams each has matched so far.
    rules: Vec<(Rule, u32)>,
    rng: ChaCha8Rng,
}

impl Faults {
    /// No faults yet; draws will come from `seed`.
    pub fn new(seed: u64) -> Self {
        Faults {
            every_link: LinkFaults::default(),
            links: BTreeMap::new(),
            rules: Vec::new(),
            rng: ChaCha8Rng::seed_from_u64(seed ^ 0x6661_756c_7473),
        }
    }

    /// Faults for every link without faults of its own.
    pub fn set_every_link(&mut self, f: LinkFaults) {
        self.every_link = f;
    }

    /// Faults for datagrams from `from` to `to` (one direction).
    pub fn set_link(&mut self, from: IpAddr, to: IpAddr, f: LinkFaults) {
        self.links.insert((from, to), f);
    }

    /// Adds a scripted rule; it sees the datagrams sent from now on. The first rule that acts
    /// on a datagram decides its fate.
    pub fn add_rule(&mut self, rule: Rule) {
        self.rules.push((rule, 0));
    }

    /// What becomes of one datagram from `from` to `to`: the extra delay of each copy that
    /// goes on the wire (none: lost; two: duplicated).
    pub fn fate(&mut self, from: IpAddr, to: IpAddr, bytes: &[u8]) -> Vec<Duration> {
        let mut scripted = None;
        for (rule, seen) in &mut self.rules {
            if !rule.matches(from, to, bytes) {
                continue;
            }
            *seen += 1;
            if scripted.is_none() && rule.nth.is_none_or(|n| n == *seen) {
                scripted = Some(rule.action);
            }
        }
        match scripted {
            Some(Action::Drop) => return Vec::new(),
            Some(Action::Duplicate) => return vec![Duration::ZERO; 2],
            Some(Action::Delay(d)) => return vec![d],
            None => {}
        }
        let f = self
            .links
            .get(&(from, to))
            .copied()
            .unwrap_or(self.every_link);
        if f.is_none() {
            return vec![Duration::ZERO];
        }
        if self.chance(f.loss) {
            return Vec::new();
        }
        let copies = if self.chance(f.duplicate) { 2 } else { 1 };
        (0..copies).map(|_| self.jitter(f.jitter)).collect()
    }

    fn jitter(&mut self, (min, max): (Duration, Duration)) -> Duration {
        let (lo, hi) = (min.as_millis() as u64, max.as_millis() as u64);
        if hi <= lo {
            return min;
        }
        Duration::from_millis(lo + self.rng.next_u64() % (hi - lo + 1))
    }

    fn chance(&mut self, p: f64) -> bool {
        if p <= 0.0 {
            return false;
        }
        // 53 random bits as a uniform number in [0, 1).
        let x = (self.rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        x < p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn no_faults_draw_nothing_and_lose_nothing() {
        let mut f = Faults::new(1);
        for _ in 0..1000 {
            assert_eq!(f.fate(ip("192.0.2.1"), ip("192.0.2.2"), b"x").len(), 1);
        }
    }

    #[test]
    fn loss_and_duplication_follow_their_rates_and_the_seed() {
        let count = |seed| {
            let mut f = Faults::new(seed);
            f.set_link(
                ip("192.0.2.1"),
                ip("192.0.2.2"),
                LinkFaults {
                    loss: 0.2,
                    duplicate: 0.1,
                    ..LinkFaults::default()
                },
            );
            let copies: Vec<usize> = (0..10_000)
                .map(|_| f.fate(ip("192.0.2.1"), ip("192.0.2.2"), b"x").len())
                .collect();
            let lost = copies.iter().filter(|c| **c == 0).count();
            let twice = copies.iter().filter(|c| **c == 2).count();
            // The other direction has no faults.
            assert_eq!(f.fate(ip("192.0.2.2"), ip("192.0.2.1"), b"x").len(), 1);
            (lost, twice)
        };
        let (lost, twice) = count(7);
        assert!((1800..2200).contains(&lost), "{lost}");
        // 10% of the 80% delivered.
        assert!((650..950).contains(&twice), "{twice}");
        assert_eq!(count(7), (lost, twice), "same seed, same faults");
        assert_ne!(count(8), (lost, twice), "another seed, other faults");
    }

    #[test]
    fn jitter_delays_each_copy_within_its_range() {
        let mut f = Faults::new(3);
        f.set_every_link(LinkFaults {
            jitter: (Duration::from_millis(5), Duration::from_millis(40)),
            ..LinkFaults::default()
        });
        let delays: Vec<Duration> = (0..2000)
            .flat_map(|_| f.fate(ip("192.0.2.1"), ip("192.0.2.2"), b"x"))
            .collect();
        assert_eq!(delays.len(), 2000, "jitter alone loses nothing");
        let ms: Vec<u128> = delays.iter().map(Duration::as_millis).collect();
        assert_eq!(ms.iter().min(), Some(&5));
        assert_eq!(ms.iter().max(), Some(&40));
    }

    #[test]
    fn rules_pick_their_datagram_by_start_line_link_and_count() {
        let invite = b"INVITE sip:bob@biloxi.example.com SIP/2.0\r\n";
        let ringing = b"SIP/2.0 180 Ringing\r\n";
        let trying = b"SIP/2.0 100 Trying\r\n";
        let (a, p) = (ip("192.0.2.1"), ip("192.0.2.2"));
        let mut f = Faults::new(1);
        f.add_rule(Rule {
            from: Some(a),
            to: Some(p),
            message: Some("INVITE".into()),
            nth: Some(2),
            action: Action::Drop,
        });
        f.add_rule(Rule {
            from: None,
            to: None,
            message: Some("180".into()),
            nth: None,
            action: Action::Duplicate,
        });
        // The other direction does not count toward the 2nd INVITE from a to p.
        assert_eq!(f.fate(p, a, invite).len(), 1);
        assert_eq!(f.fate(a, p, invite).len(), 1);
        assert_eq!(f.fate(a, p, invite).len(), 0, "the 2nd is dropped");
        assert_eq!(f.fate(a, p, invite).len(), 1, "only the 2nd");
        assert_eq!(f.fate(p, a, ringing).len(), 2);
        assert_eq!(f.fate(a, p, ringing).len(), 2, "every 180");
        assert_eq!(f.fate(p, a, trying).len(), 1);
        assert!(!start_line_names(b"SIP/2.0 1800 X", "180"));
    }
}
