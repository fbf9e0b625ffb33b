//! Seeded per-packet faults on the simulated links: loss and duplication, by directed link
//! (sender IP → receiver IP) or for every link. turmoil's own `fail_rate` wipes every packet
//! in flight and repairs too often (research on turmoil), so it is not used for loss.
//!
//! One RNG, seeded from the world's seed, draws for every datagram sent in simulation order;
//! the simulation is single-threaded and deterministic, so the same seed gives the same
//! faults. A link with no fault draws nothing: adding faults to one link does not change
//! what happens on the others, and a run without faults is the run it always was.

use std::collections::BTreeMap;
use std::net::IpAddr;

use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};

/// What can go wrong on one directed link.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct LinkFaults {
    /// Probability that a datagram is lost (0 to 1).
    pub loss: f64,
    /// Probability that a delivered datagram arrives twice (0 to 1).
    pub duplicate: f64,
}

impl LinkFaults {
    fn is_none(&self) -> bool {
        self.loss <= 0.0 && self.duplicate <= 0.0
    }
}

/// The faults of a world.
#[derive(Debug)]
pub struct Faults {
    every_link: LinkFaults,
    links: BTreeMap<(IpAddr, IpAddr), LinkFaults>,
    rng: ChaCha8Rng,
}

impl Faults {
    /// No faults yet; draws will come from `seed`.
    pub fn new(seed: u64) -> Self {
        Faults {
            every_link: LinkFaults::default(),
            links: BTreeMap::new(),
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

    /// How many copies of a datagram from `from` to `to` go on the wire: 0 (lost), 1 or 2.
    pub fn copies(&mut self, from: IpAddr, to: IpAddr) -> usize {
        let f = self
            .links
            .get(&(from, to))
            .copied()
            .unwrap_or(self.every_link);
        if f.is_none() {
            return 1;
        }
        if self.chance(f.loss) {
            return 0;
        }
        if self.chance(f.duplicate) {
            2
        } else {
            1
        }
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
            assert_eq!(f.copies(ip("192.0.2.1"), ip("192.0.2.2")), 1);
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
                },
            );
            let copies: Vec<usize> = (0..10_000)
                .map(|_| f.copies(ip("192.0.2.1"), ip("192.0.2.2")))
                .collect();
            let lost = copies.iter().filter(|c| **c == 0).count();
            let twice = copies.iter().filter(|c| **c == 2).count();
            // The other direction has no faults.
            assert_eq!(f.copies(ip("192.0.2.2"), ip("192.0.2.1")), 1);
            (lost, twice)
        };
        let (lost, twice) = count(7);
        assert!((1800..2200).contains(&lost), "{lost}");
        // 10% of the 80% delivered.
        assert!((650..950).contains(&twice), "{twice}");
        assert_eq!(count(7), (lost, twice), "same seed, same faults");
        assert_ne!(count(8), (lost, twice), "another seed, other faults");
    }
}
