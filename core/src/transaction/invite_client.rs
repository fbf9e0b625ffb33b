//! RFC 3261 §17.1.1: the INVITE client transaction (Figure 5), with the Accepted state and
//! Timer M of RFC 6026 §7.2 (Figure 5 as replaced by RFC 6026 §8.4).
//!
//! ```text
//! state       event                    action                            next
//! ----------  -----------------------  --------------------------------  ----------
//! (new)       INVITE from TU           send it; A = T1 (unreliable), B   Calling
//! Calling     Timer A                  resend INVITE; A doubles          Calling
//! Calling     Timer B                  tell TU: timed out (no ACK)       Terminated
//! Calling     transport error          tell TU                           Terminated
//! Calling     1xx                      to TU                             Proceeding
//! Calling     2xx                      to TU; M = 64*T1                  Accepted
//! Calling     300-699                  to TU; send ACK; D                Completed
//! Proceeding  1xx                      to TU                             Proceeding
//! Proceeding  2xx                      to TU; M = 64*T1                  Accepted
//! Proceeding  300-699                  to TU; send ACK; D                Completed
//! Completed   300-699 (retransmitted)  resend ACK, absorb                Completed
//! Completed   Timer D                  -                                 Terminated
//! Completed   transport error          tell TU                           Terminated
//! Accepted    2xx                      to TU (no ACK)                    Accepted
//! Accepted    Timer M                  -                                 Terminated
//! ```
//!
//! Anything else is absorbed. D is at least 32 s on unreliable transports, zero on reliable
//! ones.
//!
//! The ACK for a non-2xx is part of this transaction (§17.1.1.3) but building it needs the
//! request and the response, which the machine does not see: [`InviteClient::on_response`]
//! takes a closure that builds it. The closure is called only when an ACK is owed (the first
//! 300-699 response), its bytes are sent and kept, and every retransmission of the final
//! response gets those same bytes again. The ACK for a 2xx is the TU's (§13.2.2.4), or, in a
//! proxy, the UAC's end to end: the machine never builds one.

use std::sync::Arc;
use std::time::Duration;

use super::timing::{due, earliest, Timing};
use super::{Class, Effect, Effects};
use crate::config::Timers;
use crate::time::Instant;

/// States of Figure 5, with what each one holds.
///
/// Calling holds the request, two timers and the timing; it is boxed, so that a transaction
/// in Accepted (where a call's INVITE spends its last 32 s, Timer M) is not its size.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InviteClient {
    /// The INVITE was sent; no response yet.
    Calling(Box<CallingState>),
    /// A provisional response arrived. No timers: retransmissions stop (§17.1.1.2 "SHOULD NOT
    /// retransmit the request any longer"), Timer B only bounds Calling, and how long to wait
    /// for a final response is the TU's decision (a proxy's Timer C, §16.8).
    Proceeding {
        /// For the timers of the states that follow.
        timing: Timing,
    },
    /// A 300-699 response arrived and was acknowledged; retransmissions of it get the ACK
    /// again until Timer D fires.
    Completed {
        /// The ACK as sent, for each retransmission of the final response.
        ack: Vec<u8>,
        /// Timer D: at least 32 s on unreliable transports, zero on reliable ones.
        timer_d: Instant,
    },
    /// RFC 6026 §7.2: a 2xx arrived. Every further 2xx (a retransmission, or another branch
    /// of a downstream fork) goes to the TU until Timer M fires.
    Accepted {
        /// Timer M: 64*T1.
        timer_m: Instant,
    },
    /// Done; the layer forgets the transaction.
    Terminated,
}

/// What Calling holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallingState {
    /// The INVITE as sent, for Timer A retransmissions; shared with the layer, which keeps
    /// it for a CANCEL or the ACK of a non-2xx after this state ([`InviteClient::request`]).
    pub request: Arc<[u8]>,
    /// Timer A: the next retransmission; `None` on reliable transports (§17.1.1.2).
    pub timer_a: Option<Instant>,
    /// The interval Timer A was last set with; the next is twice as long.
    pub a_interval: Duration,
    /// Timer B: when the transaction gives up waiting for any response.
    pub timer_b: Instant,
    /// For the timers of the states that follow.
    pub timing: Timing,
}

/// The timers of Figure 5.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Timer {
    A,
    B,
    D,
    M,
}

impl InviteClient {
    /// §17.1.1.2: a new transaction is in Calling and sends `request` at once. Timer A starts
    /// at T1 on unreliable transports only, Timer B at 64*T1 on every transport.
    ///
    /// Returns the transaction and `[Send(request)]`.
    #[must_use = "the INVITE must be sent"]
    pub fn new(request: Vec<u8>, timers: Timers, reliable: bool, now: Instant) -> (Self, Effects) {
        let timing = Timing::new(timers, reliable);
        let tx = InviteClient::Calling(Box::new(CallingState {
            request: Arc::from(request.as_slice()),
            timer_a: timing.first_retransmit().map(|a| now + a),
            a_interval: timers.t1,
            timer_b: now + timing.sixty_four_t1(),
            timing,
        }));
        (tx, Effects::from([Effect::Send(request)]))
    }

    /// A response matching the transaction (§17.1.3) arrived with `status`. `build_ack` builds the
    /// ACK for it (§17.1.1.3); it is called at most once, for the first 300-699 response.
    ///
    /// | state | 1xx | 2xx | 300-699 |
    /// |---|---|---|---|
    /// | Calling | Proceeding, `[PassToTu]` | Accepted, `[PassToTu]` | Completed, `[PassToTu, Send(ack)]` |
    /// | Proceeding | `[PassToTu]` | Accepted, `[PassToTu]` | Completed, `[PassToTu, Send(ack)]` |
    /// | Completed | `[Absorb]` | `[Absorb]` | `[Send(ack), Absorb]` |
    /// | Accepted | `[Absorb]` | `[PassToTu]` | `[Absorb]` |
    /// | Terminated | `[Absorb]` | `[Absorb]` | `[Absorb]` |
    ///
    /// A status outside 100-699 is absorbed in every state.
    #[must_use = "effects must be carried out"]
    pub fn on_response(
        &mut self,
        status: u16,
        now: Instant,
        build_ack: impl FnOnce() -> Vec<u8>,
    ) -> Effects {
        let Some(class) = Class::of(status) else {
            return Effects::from([Effect::Absorb]);
        };
        match self {
            InviteClient::Calling(c) => {
                let timing = c.timing;
                self.answered(class, timing, now, build_ack)
            }
            InviteClient::Proceeding { timing } => {
                let timing = *timing;
                self.answered(class, timing, now, build_ack)
            }
            InviteClient::Completed { ack, .. } => match class {
                // §17.1.1.2: the ACK got lost, the server retransmits; not for the TU again.
                Class::Failure => Effects::from([Effect::Send(ack.clone()), Effect::Absorb]),
                // A 2xx after a non-2xx final is a stray of a downstream fork that already
                // chose; RFC 6026 §7.3 forbids forwarding strays.
                Class::Provisional | Class::Success => Effects::from([Effect::Absorb]),
            },
            InviteClient::Accepted { .. } => match class {
                // RFC 6026 §7.2: "MUST be passed up to the TU", no ACK from the transaction.
                Class::Success => Effects::from([Effect::PassToTu]),
                Class::Provisional | Class::Failure => Effects::from([Effect::Absorb]),
            },
            InviteClient::Terminated => Effects::from([Effect::Absorb]),
        }
    }

    /// The first response of a `class` in Calling or Proceeding (`timing` from that state).
    fn answered(
        &mut self,
        class: Class,
        timing: Timing,
        now: Instant,
        build_ack: impl FnOnce() -> Vec<u8>,
    ) -> Effects {
        match class {
            Class::Provisional => {
                *self = InviteClient::Proceeding { timing };
            }
            Class::Success => {
                // RFC 6026 §7.2: stay to pass further 2xx up; the ACK is the TU's.
                *self = InviteClient::Accepted {
                    timer_m: now + timing.sixty_four_t1(),
                };
            }
            Class::Failure => {
                // §17.1.1.2: ACK "even if the transport is reliable".
                let ack = build_ack();
                *self = InviteClient::Completed {
                    ack: ack.clone(),
                    timer_d: now + timing.timer_d(),
                };
                return Effects::from([Effect::PassToTu, Effect::Send(ack)]);
            }
        }
        Effects::from([Effect::PassToTu])
    }

    /// The layer failed to send the INVITE (or one of its retransmissions) or the ACK
    /// (§17.1.4): the TU is told and the transaction ends, from Calling or Completed (Figure
    /// 5). Nothing is sent in Proceeding or Accepted, so there an error is not this
    /// transaction's: `[]`.
    #[must_use = "effects must be carried out"]
    pub fn on_transport_error(&mut self) -> Effects {
        match self {
            InviteClient::Calling { .. } | InviteClient::Completed { .. } => {
                *self = InviteClient::Terminated;
                Effects::from([Effect::TransportError, Effect::Terminated])
            }
            InviteClient::Proceeding { .. }
            | InviteClient::Accepted { .. }
            | InviteClient::Terminated => Effects::new(),
        }
    }

    /// The next instant this transaction needs the clock: its earliest timer.
    pub fn deadline(&self) -> Option<Instant> {
        earliest(self.pending())
    }

    /// Time passed: fires every timer due at `now`, earliest first. Timer A resends the
    /// INVITE and doubles (from `now`, so a late call does not burst); Timer B gives
    /// `[TimedOut, Terminated]` and never an ACK (§17.1.1.2); Timers D and M give
    /// `[Terminated]`. Nothing due: `[]`.
    #[must_use = "effects must be carried out"]
    pub fn on_timeout(&mut self, now: Instant) -> Effects {
        let mut effects = Effects::new();
        for timer in due(self.pending(), now) {
            self.fire(timer, now, &mut effects);
        }
        effects
    }

    /// The INVITE as sent, while in Calling: the layer shares it rather than keep a copy of
    /// its own.
    pub fn request(&self) -> Option<&Arc<[u8]>> {
        match self {
            InviteClient::Calling(c) => Some(&c.request),
            _ => None,
        }
    }

    /// Whether no final response has arrived yet (Calling or Proceeding): until then the layer keeps
    /// what it may still need to build from the request (a CANCEL, the ACK of a non-2xx).
    pub fn awaiting_final(&self) -> bool {
        matches!(
            self,
            InviteClient::Calling { .. } | InviteClient::Proceeding { .. }
        )
    }

    /// Whether the layer may forget it.
    pub fn is_terminated(&self) -> bool {
        matches!(self, InviteClient::Terminated)
    }

    /// §9.1: a CANCEL may be sent only once a provisional response has arrived, and should not
    /// be once a final one has: true in Proceeding only. A proxy owing a CANCEL in Calling
    /// sends it when this turns true.
    pub fn cancel_allowed(&self) -> bool {
        matches!(self, InviteClient::Proceeding { .. })
    }

    /// The state's name in Figure 5, for logs and tests.
    pub fn state_name(&self) -> &'static str {
        match self {
            InviteClient::Calling { .. } => "Calling",
            InviteClient::Proceeding { .. } => "Proceeding",
            InviteClient::Completed { .. } => "Completed",
            InviteClient::Accepted { .. } => "Accepted",
            InviteClient::Terminated => "Terminated",
        }
    }

    fn pending(&self) -> [Option<(Instant, Timer)>; 2] {
        match self {
            InviteClient::Calling(c) => [
                c.timer_a.map(|at| (at, Timer::A)),
                Some((c.timer_b, Timer::B)),
            ],
            InviteClient::Completed { timer_d, .. } => [Some((*timer_d, Timer::D)), None],
            InviteClient::Accepted { timer_m } => [Some((*timer_m, Timer::M)), None],
            InviteClient::Proceeding { .. } | InviteClient::Terminated => [None, None],
        }
    }

    /// Fires `timer` if it is still pending and due: an earlier one may have moved the state.
    fn fire(&mut self, timer: Timer, now: Instant, effects: &mut Effects) {
        match (&mut *self, timer) {
            (InviteClient::Calling(c), Timer::A) if c.timer_a.is_some_and(|at| at <= now) => {
                // §17.1.1.2: no cap on A; Timer B ends the doubling after seven sendings.
                c.a_interval = c.a_interval.saturating_mul(2);
                c.timer_a = Some(now + c.a_interval);
                effects.push(Effect::Send(c.request.to_vec()));
            }
            (InviteClient::Calling(c), Timer::B) if c.timer_b <= now => {
                *self = InviteClient::Terminated;
                effects.extend([Effect::TimedOut, Effect::Terminated]);
            }
            (InviteClient::Completed { timer_d, .. }, Timer::D) if *timer_d <= now => {
                *self = InviteClient::Terminated;
                effects.push(Effect::Terminated);
            }
            (InviteClient::Accepted { timer_m }, Timer::M) if *timer_m <= now => {
                *self = InviteClient::Terminated;
                effects.push(Effect::Terminated);
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INVITE: &[u8] = b"INVITE sip:bob@biloxi.example.com SIP/2.0\r\n";
    const ACK: &[u8] = b"ACK sip:bob@biloxi.example.com SIP/2.0\r\n";

    fn at(ms: u64) -> Instant {
        Instant::from_millis(ms)
    }

    fn udp(now: Instant) -> InviteClient {
        let (tx, sent) = InviteClient::new(INVITE.to_vec(), Timers::default(), false, now);
        assert_eq!(sent, [Effect::Send(INVITE.to_vec())]);
        tx
    }

    fn tcp(now: Instant) -> InviteClient {
        let (tx, sent) = InviteClient::new(INVITE.to_vec(), Timers::default(), true, now);
        assert_eq!(sent, [Effect::Send(INVITE.to_vec())]);
        tx
    }

    fn ack() -> Vec<u8> {
        ACK.to_vec()
    }

    fn no_ack() -> Vec<u8> {
        panic!("no ACK is owed for this response")
    }

    #[test]
    fn invite_client_starts_in_calling_with_timer_a_at_t1() {
        let tx = udp(at(0));
        assert_eq!(tx.state_name(), "Calling");
        assert_eq!(tx.deadline(), Some(at(500)));
        assert!(!tx.cancel_allowed());
    }

    #[test]
    fn invite_client_retransmits_at_t1_doubling_until_timer_b() {
        let mut tx = udp(at(0));
        let mut resent = Vec::new();
        while let Some(when) = tx.deadline() {
            let effects = tx.on_timeout(when);
            if effects == [Effect::Send(INVITE.to_vec())] {
                resent.push(when.since_origin().as_millis());
            } else {
                assert_eq!(effects, [Effect::TimedOut, Effect::Terminated]);
                assert_eq!(when, at(32_000), "Timer B = 64*T1");
            }
        }
        assert_eq!(resent, [500, 1500, 3500, 7500, 15_500, 31_500]);
        assert!(tx.is_terminated());
    }

    #[test]
    fn invite_client_timer_b_sends_no_ack_and_tells_the_tu() {
        let mut tx = udp(at(1000));
        for ms in [1500, 2500, 4500, 8500, 16_500, 32_500] {
            assert_eq!(tx.on_timeout(at(ms)), [Effect::Send(INVITE.to_vec())]);
        }
        assert_eq!(tx.on_timeout(at(32_999)), []);
        assert_eq!(
            tx.on_timeout(at(33_000)),
            [Effect::TimedOut, Effect::Terminated]
        );
        assert_eq!(tx.deadline(), None);
    }

    #[test]
    fn reliable_transport_has_no_timer_a_and_timer_d_is_zero() {
        let mut tx = tcp(at(0));
        assert_eq!(tx.deadline(), Some(at(32_000)), "only Timer B");
        assert_eq!(tx.on_timeout(at(31_999)), []);
        assert_eq!(
            tx.on_response(404, at(2000), ack),
            [Effect::PassToTu, Effect::Send(ACK.to_vec())],
            "ACK even on a reliable transport (§17.1.1.2)"
        );
        assert_eq!(tx.state_name(), "Completed");
        assert_eq!(tx.deadline(), Some(at(2000)), "Timer D = 0");
        assert_eq!(tx.on_timeout(at(2000)), [Effect::Terminated]);
    }

    #[test]
    fn reliable_transport_timer_b_still_fires() {
        let mut tx = tcp(at(0));
        assert_eq!(
            tx.on_timeout(at(32_000)),
            [Effect::TimedOut, Effect::Terminated]
        );
    }

    #[test]
    fn invite_client_provisional_moves_to_proceeding_and_stops_timers_a_and_b() {
        let mut tx = udp(at(0));
        assert_eq!(tx.on_timeout(at(500)), [Effect::Send(INVITE.to_vec())]);
        assert_eq!(tx.on_response(100, at(700), no_ack), [Effect::PassToTu]);
        assert_eq!(tx.state_name(), "Proceeding");
        assert_eq!(tx.deadline(), None, "no A, no B in Proceeding");
        assert_eq!(tx.on_timeout(at(1500)), []);
        assert_eq!(tx.on_timeout(at(60_000)), []);
        assert_eq!(tx.on_response(180, at(60_000), no_ack), [Effect::PassToTu]);
        assert_eq!(tx.on_response(183, at(60_001), no_ack), [Effect::PassToTu]);
        assert_eq!(tx.state_name(), "Proceeding");
    }

    #[test]
    fn invite_client_acks_non_2xx_and_absorbs_its_retransmissions() {
        let mut tx = udp(at(0));
        let mut built = 0;
        let effects = tx.on_response(486, at(300), || {
            built += 1;
            ack()
        });
        assert_eq!(effects, [Effect::PassToTu, Effect::Send(ACK.to_vec())]);
        assert_eq!(tx.state_name(), "Completed");
        for ms in [800, 1800, 3800] {
            let effects = tx.on_response(486, at(ms), || {
                built += 1;
                b"a different ACK".to_vec()
            });
            assert_eq!(effects, [Effect::Send(ACK.to_vec()), Effect::Absorb]);
        }
        assert_eq!(built, 1, "the ACK is built once and stored");
        assert_eq!(tx.on_timeout(at(1000)), [], "Timer A stopped in Completed");
    }

    #[test]
    fn invite_client_non_2xx_in_proceeding_is_acked_too() {
        let mut tx = udp(at(0));
        assert_eq!(tx.on_response(180, at(100), no_ack), [Effect::PassToTu]);
        assert_eq!(
            tx.on_response(603, at(5000), ack),
            [Effect::PassToTu, Effect::Send(ACK.to_vec())]
        );
        assert_eq!(tx.state_name(), "Completed");
        assert_eq!(tx.deadline(), Some(at(37_000)));
    }

    #[test]
    fn timer_d_is_32_s_on_unreliable_transport_and_ends_completed() {
        let mut tx = udp(at(0));
        let _ = tx.on_response(500, at(1000), ack);
        assert_eq!(tx.deadline(), Some(at(33_000)));
        assert_eq!(tx.on_timeout(at(32_999)), []);
        assert_eq!(
            tx.on_response(500, at(32_999), no_ack),
            [Effect::Send(ACK.to_vec()), Effect::Absorb]
        );
        assert_eq!(tx.on_timeout(at(33_000)), [Effect::Terminated]);
        assert!(tx.is_terminated());
    }

    #[test]
    fn timer_d_follows_a_t1_larger_than_the_default() {
        let timers = Timers {
            t1: Duration::from_secs(1),
            ..Timers::default()
        };
        let (mut tx, _) = InviteClient::new(INVITE.to_vec(), timers, false, at(0));
        let _ = tx.on_response(480, at(0), ack);
        assert_eq!(tx.deadline(), Some(at(64_000)));
    }

    #[test]
    fn invite_client_in_completed_absorbs_provisionals_and_2xx_without_ack() {
        let mut tx = udp(at(0));
        let _ = tx.on_response(404, at(100), ack);
        assert_eq!(tx.on_response(180, at(200), no_ack), [Effect::Absorb]);
        assert_eq!(tx.on_response(200, at(300), no_ack), [Effect::Absorb]);
        assert_eq!(tx.state_name(), "Completed");
    }

    #[test]
    fn invite_client_2xx_goes_to_accepted_and_later_2xx_pass_up() {
        let mut tx = udp(at(0));
        assert_eq!(tx.on_response(200, at(400), no_ack), [Effect::PassToTu]);
        assert_eq!(tx.state_name(), "Accepted");
        assert_eq!(tx.deadline(), Some(at(32_400)), "Timer M = 64*T1");
        assert_eq!(tx.on_timeout(at(500)), [], "Timer A stopped");
        // A retransmission, then another branch of a downstream fork: both to the TU, no ACK.
        assert_eq!(tx.on_response(200, at(900), no_ack), [Effect::PassToTu]);
        assert_eq!(tx.on_response(202, at(1200), no_ack), [Effect::PassToTu]);
        assert_eq!(tx.state_name(), "Accepted");
    }

    #[test]
    fn invite_client_2xx_in_proceeding_goes_to_accepted() {
        let mut tx = udp(at(0));
        let _ = tx.on_response(183, at(100), no_ack);
        assert_eq!(tx.on_response(200, at(9000), no_ack), [Effect::PassToTu]);
        assert_eq!(tx.state_name(), "Accepted");
        assert_eq!(tx.deadline(), Some(at(41_000)));
    }

    #[test]
    fn invite_client_in_accepted_absorbs_provisionals_and_non_2xx() {
        let mut tx = udp(at(0));
        let _ = tx.on_response(200, at(0), no_ack);
        assert_eq!(tx.on_response(180, at(10), no_ack), [Effect::Absorb]);
        assert_eq!(tx.on_response(486, at(20), no_ack), [Effect::Absorb]);
        assert_eq!(tx.state_name(), "Accepted");
    }

    #[test]
    fn timer_m_ends_accepted() {
        let mut tx = tcp(at(0));
        let _ = tx.on_response(200, at(1000), no_ack);
        assert_eq!(tx.on_timeout(at(32_999)), []);
        assert_eq!(tx.on_timeout(at(33_000)), [Effect::Terminated]);
        assert!(tx.is_terminated());
    }

    #[test]
    fn cancel_is_allowed_only_after_a_provisional_and_before_a_final() {
        let mut tx = udp(at(0));
        assert!(!tx.cancel_allowed(), "§9.1: not before a provisional");
        let _ = tx.on_response(100, at(10), no_ack);
        assert!(tx.cancel_allowed());
        let _ = tx.on_response(487, at(20), ack);
        assert!(!tx.cancel_allowed(), "§9.1: not after a final");
        let mut accepted = udp(at(0));
        let _ = accepted.on_response(200, at(10), no_ack);
        assert!(!accepted.cancel_allowed());
    }

    #[test]
    fn invite_client_transport_error_in_calling_tells_the_tu_and_terminates() {
        let mut tx = udp(at(0));
        assert_eq!(
            tx.on_transport_error(),
            [Effect::TransportError, Effect::Terminated]
        );
        assert!(tx.is_terminated());
    }

    #[test]
    fn invite_client_transport_error_in_completed_terminates() {
        let mut tx = udp(at(0));
        let _ = tx.on_response(404, at(0), ack);
        assert_eq!(
            tx.on_transport_error(),
            [Effect::TransportError, Effect::Terminated]
        );
    }

    #[test]
    fn invite_client_transport_error_when_sending_nothing_is_ignored() {
        let mut proceeding = udp(at(0));
        let _ = proceeding.on_response(180, at(0), no_ack);
        assert_eq!(proceeding.on_transport_error(), []);
        assert_eq!(proceeding.state_name(), "Proceeding");
        let mut accepted = udp(at(0));
        let _ = accepted.on_response(200, at(0), no_ack);
        assert_eq!(accepted.on_transport_error(), []);
        assert_eq!(accepted.state_name(), "Accepted");
    }

    #[test]
    fn a_late_on_timeout_fires_due_timers_in_deadline_order_once_each() {
        let mut tx = udp(at(0));
        // The driver slept through everything: A (due at 0.5 s) fires once, then B.
        assert_eq!(
            tx.on_timeout(at(40_000)),
            [
                Effect::Send(INVITE.to_vec()),
                Effect::TimedOut,
                Effect::Terminated
            ]
        );
    }

    #[test]
    fn a_late_timer_a_is_rescheduled_from_now() {
        let mut tx = udp(at(0));
        assert_eq!(tx.on_timeout(at(900)), [Effect::Send(INVITE.to_vec())]);
        assert_eq!(tx.deadline(), Some(at(1900)));
    }

    #[test]
    fn on_timeout_before_any_deadline_does_nothing() {
        let mut tx = udp(at(0));
        let before = tx.clone();
        assert_eq!(tx.on_timeout(at(499)), []);
        assert_eq!(tx, before);
    }

    #[test]
    fn statuses_outside_100_to_699_are_absorbed() {
        let mut tx = udp(at(0));
        assert_eq!(tx.on_response(99, at(1), no_ack), [Effect::Absorb]);
        assert_eq!(tx.on_response(700, at(2), no_ack), [Effect::Absorb]);
        assert_eq!(tx.state_name(), "Calling");
    }

    #[test]
    fn terminated_absorbs_everything_and_has_no_deadline() {
        let mut tx = udp(at(0));
        let _ = tx.on_timeout(at(32_000));
        assert!(tx.is_terminated());
        assert_eq!(tx.state_name(), "Terminated");
        for status in [100, 200, 404] {
            assert_eq!(tx.on_response(status, at(33_000), no_ack), [Effect::Absorb]);
        }
        assert_eq!(tx.on_timeout(at(99_000)), []);
        assert_eq!(tx.on_transport_error(), []);
        assert_eq!(tx.deadline(), None);
    }
}
