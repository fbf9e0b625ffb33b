//! RFC 3261 Table 4 (with RFC 6026 §8.11 for Timers L and M): the value of every
//! transaction timer, from the configured T1/T2/T4 and the kind of transport.
//!
//! The machines keep their timers as deadlines inside their states; this is only the
//! arithmetic, in one place so that the four machines cannot disagree on it.

use std::time::Duration;

use crate::config::Timers;
use crate::time::Instant;

/// Timer D never goes below this on unreliable transports (§17.1.1.2): the client does not
/// know the T1 of the server, whose Timer H it must outlast.
const TIMER_D_MIN: Duration = Duration::from_secs(32);

/// The inputs of Table 4 for one transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timing {
    /// T1, T2 and T4 (§17.1.1.1).
    pub timers: Timers,
    /// Whether the transport is reliable (TCP, TLS, SCTP). Reliable transports do their own
    /// retransmission, so Timers A, E and G are not set, and nothing is left in the network to
    /// wait for, so Timers D, I, J and K are zero (Table 4).
    pub reliable: bool,
}

impl Timing {
    /// The timing of a transaction over a transport that is `reliable` or not.
    pub const fn new(timers: Timers, reliable: bool) -> Self {
        Timing { timers, reliable }
    }

    /// The first interval of Timers A, E and G: T1, on unreliable transports only
    /// (§17.1.1.2, §17.1.2.2, §17.2.1).
    pub fn first_retransmit(&self) -> Option<Duration> {
        (!self.reliable).then_some(self.timers.t1)
    }

    /// Timers B, F, H, L and M: 64*T1 whatever the transport. Saturating, so that an absurd
    /// configured T1 gives a far deadline instead of a panic.
    pub fn sixty_four_t1(&self) -> Duration {
        self.timers.t1.saturating_mul(64)
    }

    /// Timer D (§17.1.1.2): at least 32 s on unreliable transports, zero on reliable ones.
    /// 64*T1 when that is longer, so that a client sharing the server's larger T1 still
    /// outlasts its Timer H.
    pub fn timer_d(&self) -> Duration {
        if self.reliable {
            Duration::ZERO
        } else {
            self.sixty_four_t1().max(TIMER_D_MIN)
        }
    }

    /// Timer I (§17.2.1): T4 on unreliable transports, zero on reliable ones.
    pub fn timer_i(&self) -> Duration {
        self.t4_unless_reliable()
    }

    /// Timer J (§17.2.2): 64*T1 on unreliable transports, zero on reliable ones.
    pub fn timer_j(&self) -> Duration {
        if self.reliable {
            Duration::ZERO
        } else {
            self.sixty_four_t1()
        }
    }

    /// Timer K (§17.1.2.2): T4 on unreliable transports, zero on reliable ones.
    pub fn timer_k(&self) -> Duration {
        self.t4_unless_reliable()
    }

    /// The interval after `interval` for Timers E (in Trying) and G: doubled, capped at T2
    /// (§17.1.2.2 "MIN(2*T1, T2)", §17.2.1 "identical to the retransmit behavior for requests
    /// in the Trying state").
    pub fn doubled_up_to_t2(&self, interval: Duration) -> Duration {
        interval.saturating_mul(2).min(self.timers.t2)
    }

    fn t4_unless_reliable(&self) -> Duration {
        if self.reliable {
            Duration::ZERO
        } else {
            self.timers.t4
        }
    }
}

/// The timers among `pending` that are due at `now`, earliest deadline first (ties keep the
/// order given). `on_timeout` fires each of them once, so a late call neither skips a timer
/// nor fires a rescheduled one twice.
pub(crate) fn due<T: Copy, const N: usize>(
    mut pending: [Option<(Instant, T)>; N],
    now: Instant,
) -> impl Iterator<Item = T> {
    // A stable sort of a few entries in place: no list is allocated per timeout.
    pending.sort_by_key(|p| p.map(|(at, _)| at));
    pending
        .into_iter()
        .flatten()
        .filter(move |(at, _)| *at <= now)
        .map(|(_, t)| t)
}

/// The earliest deadline among `pending`.
pub(crate) fn earliest<T, const N: usize>(pending: [Option<(Instant, T)>; N]) -> Option<Instant> {
    pending.into_iter().flatten().map(|(at, _)| at).min()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timing(reliable: bool) -> Timing {
        Timing::new(Timers::default(), reliable)
    }

    #[test]
    fn table_4_defaults_over_udp() {
        let t = timing(false);
        assert_eq!(t.first_retransmit(), Some(Duration::from_millis(500)));
        assert_eq!(t.sixty_four_t1(), Duration::from_secs(32));
        assert_eq!(t.timer_d(), Duration::from_secs(32));
        assert_eq!(t.timer_i(), Duration::from_secs(5));
        assert_eq!(t.timer_j(), Duration::from_secs(32));
        assert_eq!(t.timer_k(), Duration::from_secs(5));
    }

    #[test]
    fn table_4_defaults_over_tcp() {
        let t = timing(true);
        assert_eq!(t.first_retransmit(), None);
        assert_eq!(t.sixty_four_t1(), Duration::from_secs(32));
        assert_eq!(t.timer_d(), Duration::ZERO);
        assert_eq!(t.timer_i(), Duration::ZERO);
        assert_eq!(t.timer_j(), Duration::ZERO);
        assert_eq!(t.timer_k(), Duration::ZERO);
    }

    #[test]
    fn timer_d_is_at_least_32_s_and_follows_a_larger_t1() {
        let small = Timers {
            t1: Duration::from_millis(100),
            ..Timers::default()
        };
        assert_eq!(Timing::new(small, false).timer_d(), Duration::from_secs(32));
        let large = Timers {
            t1: Duration::from_secs(1),
            ..Timers::default()
        };
        assert_eq!(Timing::new(large, false).timer_d(), Duration::from_secs(64));
    }

    #[test]
    fn doubling_caps_at_t2() {
        let t = timing(false);
        let mut interval = Duration::from_millis(500);
        let mut seen = Vec::new();
        for _ in 0..5 {
            interval = t.doubled_up_to_t2(interval);
            seen.push(interval.as_millis());
        }
        assert_eq!(seen, [1000, 2000, 4000, 4000, 4000]);
    }

    #[test]
    fn due_timers_come_earliest_first_and_only_when_due() {
        let at = Instant::from_millis;
        let pending = [Some((at(32_000), 'B')), Some((at(31_500), 'A')), None];
        let due = |now| due(pending, now).collect::<Vec<char>>();
        assert_eq!(due(at(31_000)), Vec::<char>::new());
        assert_eq!(due(at(31_500)), ['A']);
        assert_eq!(due(at(40_000)), ['A', 'B']);
        let tied = [Some((at(500), 'E')), None, Some((at(500), 'F'))];
        assert_eq!(super::due(tied, at(500)).collect::<Vec<_>>(), ['E', 'F']);
        assert_eq!(earliest(pending), Some(at(31_500)));
        assert_eq!(earliest::<char, 1>([None]), None);
    }
}
