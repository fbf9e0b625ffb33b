//! RFC 3261 §17.1.2: the non-INVITE client transaction (Figure 6).
//!
//! ```text
//! state       event            action                                next
//! ----------  ---------------  ------------------------------------  ----------
//! (new)       request from TU  send it; E = T1 (unreliable), F       Trying
//! Trying      Timer E          resend; E = MIN(2*E, T2)              Trying
//! Trying      1xx              to TU                                 Proceeding
//! Trying      200-699          to TU; K                              Completed
//! Trying      Timer F          tell TU: timed out                    Terminated
//! Trying      transport error  tell TU                               Terminated
//! Proceeding  Timer E          resend; E = T2                        Proceeding
//! Proceeding  1xx              to TU                                 Proceeding
//! Proceeding  200-699          to TU; K                              Completed
//! Proceeding  Timer F          tell TU: timed out                    Terminated
//! Proceeding  transport error  tell TU                               Terminated
//! Completed   any response     absorb                                Completed
//! Completed   Timer K          -                                     Terminated
//! ```
//!
//! K is T4 on unreliable transports, zero on reliable ones.
//!
//! Request retransmissions continue in Proceeding (§17.1.2.1): the server answers a
//! retransmission with its last response, so they are how a lost final response is recovered.
//! A timeout is only reported: a proxy does not answer it with a 408 upstream (RFC 4320 §4.2).

use std::time::Duration;

use super::timing::{due, earliest, Timing};
use super::{Class, Effect, Effects};
use crate::config::Timers;
use crate::time::Instant;

/// States of Figure 6, with what each one holds.
///
/// Trying and Proceeding hold the request, Timers E and F and the timing; they share one
/// box, so that a transaction in Completed (Timer K) is the size of one deadline.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NonInviteClient {
    /// The request was sent; no response yet.
    Trying(Box<SendingState>),
    /// A provisional response arrived; retransmissions go on every T2. Timers E and F are
    /// kept from Trying (§17.1.2.2 resets E to T2 only when it fires in Proceeding, and
    /// Proceeding does not extend the transaction).
    Proceeding(Box<SendingState>),
    /// A final response arrived; retransmissions of it are absorbed until Timer K fires.
    Completed {
        /// Timer K: T4 on unreliable transports, zero on reliable ones.
        timer_k: Instant,
    },
    /// Done; the layer forgets the transaction.
    Terminated,
}

/// What Trying and Proceeding hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SendingState {
    /// The request as sent, for Timer E retransmissions.
    pub request: Vec<u8>,
    /// Timer E: the next retransmission; `None` on reliable transports (§17.1.2.2).
    pub timer_e: Option<Instant>,
    /// The interval Timer E was last set with in Trying; the next is twice as long, at
    /// most T2.
    pub e_interval: Duration,
    /// Timer F: when the transaction gives up.
    pub timer_f: Instant,
    /// For the timers of the states that follow.
    pub timing: Timing,
}

/// The timers of Figure 6.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Timer {
    E,
    F,
    K,
}

impl NonInviteClient {
    /// §17.1.2.2: a new transaction is in Trying and sends `request` at once. Timer E starts
    /// at T1 on unreliable transports only, Timer F at 64*T1 on every transport.
    ///
    /// Returns the transaction and `[Send(request)]`.
    #[must_use = "the request must be sent"]
    pub fn new(request: Vec<u8>, timers: Timers, reliable: bool, now: Instant) -> (Self, Effects) {
        let timing = Timing::new(timers, reliable);
        let tx = NonInviteClient::Trying(Box::new(SendingState {
            request: request.clone(),
            timer_e: timing.first_retransmit().map(|e| now + e),
            e_interval: timers.t1,
            timer_f: now + timing.sixty_four_t1(),
            timing,
        }));
        (tx, Effects::from([Effect::Send(request)]))
    }

    /// A response matching the transaction (§17.1.3) arrived with `status`.
    ///
    /// | state | 1xx | 200-699 |
    /// |---|---|---|
    /// | Trying | Proceeding, `[PassToTu]` | Completed, `[PassToTu]` |
    /// | Proceeding | `[PassToTu]` | Completed, `[PassToTu]` |
    /// | Completed | `[Absorb]` | `[Absorb]` |
    /// | Terminated | `[Absorb]` | `[Absorb]` |
    ///
    /// A status outside 100-699 is absorbed in every state.
    #[must_use = "effects must be carried out"]
    pub fn on_response(&mut self, status: u16, now: Instant) -> Effects {
        let Some(class) = Class::of(status) else {
            return Effects::from([Effect::Absorb]);
        };
        match self {
            NonInviteClient::Trying(sending) | NonInviteClient::Proceeding(sending) => {
                if class != Class::Provisional {
                    // §17.1.2.2: no special handling for 2xx, one final response reaches the TU.
                    let timer_k = now + sending.timing.timer_k();
                    *self = NonInviteClient::Completed { timer_k };
                } else if let NonInviteClient::Trying(_) = self {
                    if let NonInviteClient::Trying(sending) =
                        std::mem::replace(self, NonInviteClient::Terminated)
                    {
                        *self = NonInviteClient::Proceeding(sending);
                    }
                }
                Effects::from([Effect::PassToTu])
            }
            // §17.1.2.2: Completed "exists to buffer any additional response retransmissions".
            NonInviteClient::Completed { .. } | NonInviteClient::Terminated => {
                Effects::from([Effect::Absorb])
            }
        }
    }

    /// The layer failed to send the request or a retransmission (§17.1.4): from Trying or
    /// Proceeding the TU is told and the transaction ends (Figure 6). Nothing is sent in
    /// Completed, so there an error is not this transaction's: `[]`.
    #[must_use = "effects must be carried out"]
    pub fn on_transport_error(&mut self) -> Effects {
        match self {
            NonInviteClient::Trying { .. } | NonInviteClient::Proceeding { .. } => {
                *self = NonInviteClient::Terminated;
                Effects::from([Effect::TransportError, Effect::Terminated])
            }
            NonInviteClient::Completed { .. } | NonInviteClient::Terminated => Effects::new(),
        }
    }

    /// The next instant this transaction needs the clock: its earliest timer.
    pub fn deadline(&self) -> Option<Instant> {
        earliest(self.pending())
    }

    /// Time passed: fires every timer due at `now`, earliest first. Timer E resends the
    /// request (the next interval doubles up to T2 in Trying, is T2 in Proceeding; counted
    /// from `now`, so a late call does not burst); Timer F gives `[TimedOut, Terminated]`;
    /// Timer K gives `[Terminated]`. Nothing due: `[]`.
    #[must_use = "effects must be carried out"]
    pub fn on_timeout(&mut self, now: Instant) -> Effects {
        let mut effects = Effects::new();
        for timer in due(self.pending(), now) {
            self.fire(timer, now, &mut effects);
        }
        effects
    }

    /// Whether no final response has arrived yet (Trying or Proceeding): until then the layer keeps
    /// what it may still need to build from the request (a CANCEL, the ACK of a non-2xx).
    pub fn awaiting_final(&self) -> bool {
        matches!(
            self,
            NonInviteClient::Trying { .. } | NonInviteClient::Proceeding { .. }
        )
    }

    /// Whether the layer may forget it.
    pub fn is_terminated(&self) -> bool {
        matches!(self, NonInviteClient::Terminated)
    }

    /// The state's name in Figure 6, for logs and tests.
    pub fn state_name(&self) -> &'static str {
        match self {
            NonInviteClient::Trying { .. } => "Trying",
            NonInviteClient::Proceeding { .. } => "Proceeding",
            NonInviteClient::Completed { .. } => "Completed",
            NonInviteClient::Terminated => "Terminated",
        }
    }

    fn pending(&self) -> [Option<(Instant, Timer)>; 2] {
        match self {
            NonInviteClient::Trying(s) | NonInviteClient::Proceeding(s) => [
                s.timer_e.map(|at| (at, Timer::E)),
                Some((s.timer_f, Timer::F)),
            ],
            NonInviteClient::Completed { timer_k } => [Some((*timer_k, Timer::K)), None],
            NonInviteClient::Terminated => [None, None],
        }
    }

    /// Fires `timer` if it is still pending and due: an earlier one may have moved the state.
    fn fire(&mut self, timer: Timer, now: Instant, effects: &mut Effects) {
        match (&mut *self, timer) {
            (NonInviteClient::Trying(s), Timer::E) if s.timer_e.is_some_and(|at| at <= now) => {
                s.e_interval = s.timing.doubled_up_to_t2(s.e_interval);
                s.timer_e = Some(now + s.e_interval);
                effects.push(Effect::Send(s.request.clone()));
            }
            (NonInviteClient::Proceeding(s), Timer::E) if s.timer_e.is_some_and(|at| at <= now) => {
                // §17.1.2.2: in Proceeding "Timer E MUST be reset with a value of T2".
                s.timer_e = Some(now + s.timing.timers.t2);
                effects.push(Effect::Send(s.request.clone()));
            }
            (NonInviteClient::Trying(s) | NonInviteClient::Proceeding(s), Timer::F)
                if s.timer_f <= now =>
            {
                *self = NonInviteClient::Terminated;
                effects.extend([Effect::TimedOut, Effect::Terminated]);
            }
            (NonInviteClient::Completed { timer_k }, Timer::K) if *timer_k <= now => {
                *self = NonInviteClient::Terminated;
                effects.push(Effect::Terminated);
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPTIONS: &[u8] = b"OPTIONS sip:carol@chicago.example.com SIP/2.0\r\n";

    fn at(ms: u64) -> Instant {
        Instant::from_millis(ms)
    }

    fn udp(now: Instant) -> NonInviteClient {
        let (tx, sent) = NonInviteClient::new(OPTIONS.to_vec(), Timers::default(), false, now);
        assert_eq!(sent, [Effect::Send(OPTIONS.to_vec())]);
        tx
    }

    fn tcp(now: Instant) -> NonInviteClient {
        let (tx, sent) = NonInviteClient::new(OPTIONS.to_vec(), Timers::default(), true, now);
        assert_eq!(sent, [Effect::Send(OPTIONS.to_vec())]);
        tx
    }

    /// Runs only timeouts until the machine ends; returns the retransmission instants (ms)
    /// and the effects of the last firing.
    fn run_out(tx: &mut NonInviteClient) -> (Vec<u128>, Instant, Effects) {
        let mut resent = Vec::new();
        while let Some(when) = tx.deadline() {
            let effects = tx.on_timeout(when);
            if effects == [Effect::Send(OPTIONS.to_vec())] {
                resent.push(when.since_origin().as_millis());
            } else {
                assert!(tx.is_terminated(), "{effects:?}");
                return (resent, when, effects);
            }
        }
        panic!("no timer left before Terminated");
    }

    #[test]
    fn non_invite_client_starts_in_trying_with_timer_e_at_t1() {
        let tx = udp(at(0));
        assert_eq!(tx.state_name(), "Trying");
        assert_eq!(tx.deadline(), Some(at(500)));
    }

    #[test]
    fn non_invite_client_timer_e_doubles_up_to_t2_until_timer_f() {
        let mut tx = udp(at(0));
        let (resent, end, effects) = run_out(&mut tx);
        assert_eq!(
            resent,
            [500, 1500, 3500, 7500, 11_500, 15_500, 19_500, 23_500, 27_500, 31_500]
        );
        assert_eq!(end, at(32_000), "Timer F = 64*T1");
        assert_eq!(effects, [Effect::TimedOut, Effect::Terminated]);
    }

    #[test]
    fn non_invite_client_in_proceeding_retransmits_every_t2() {
        let mut tx = udp(at(0));
        assert_eq!(tx.on_response(100, at(200)), [Effect::PassToTu]);
        assert_eq!(tx.state_name(), "Proceeding");
        assert_eq!(
            tx.deadline(),
            Some(at(500)),
            "E keeps its deadline from Trying"
        );
        let (resent, end, effects) = run_out(&mut tx);
        assert_eq!(
            resent,
            [500, 4500, 8500, 12_500, 16_500, 20_500, 24_500, 28_500]
        );
        assert_eq!(end, at(32_000), "Timer F is not reset by a provisional");
        assert_eq!(effects, [Effect::TimedOut, Effect::Terminated]);
    }

    #[test]
    fn non_invite_client_timeout_is_reported_and_nothing_is_sent() {
        // RFC 4320 §4.2: the TU learns of the timeout; no 408 comes out of the transaction.
        let mut tx = tcp(at(0));
        assert_eq!(tx.deadline(), Some(at(32_000)), "only Timer F on TCP");
        assert_eq!(
            tx.on_timeout(at(32_000)),
            [Effect::TimedOut, Effect::Terminated]
        );
    }

    #[test]
    fn non_invite_client_final_in_trying_goes_to_completed_and_timer_k_ends_it() {
        let mut tx = udp(at(0));
        assert_eq!(tx.on_response(200, at(1000)), [Effect::PassToTu]);
        assert_eq!(tx.state_name(), "Completed");
        assert_eq!(tx.deadline(), Some(at(6000)), "Timer K = T4");
        assert_eq!(tx.on_timeout(at(1500)), [], "Timer E stopped");
        assert_eq!(tx.on_timeout(at(5999)), []);
        assert_eq!(tx.on_timeout(at(6000)), [Effect::Terminated]);
        assert!(tx.is_terminated());
    }

    #[test]
    fn non_invite_client_final_in_proceeding_goes_to_completed() {
        let mut tx = udp(at(0));
        let _ = tx.on_response(100, at(100));
        assert_eq!(tx.on_response(100, at(4000)), [Effect::PassToTu]);
        assert_eq!(tx.on_response(404, at(6000)), [Effect::PassToTu]);
        assert_eq!(tx.state_name(), "Completed");
        assert_eq!(tx.deadline(), Some(at(11_000)));
    }

    #[test]
    fn non_invite_client_absorbs_responses_in_completed() {
        let mut tx = udp(at(0));
        let _ = tx.on_response(500, at(0));
        assert_eq!(tx.on_response(500, at(10)), [Effect::Absorb]);
        assert_eq!(tx.on_response(200, at(20)), [Effect::Absorb]);
        assert_eq!(tx.on_response(100, at(30)), [Effect::Absorb]);
        assert_eq!(tx.state_name(), "Completed");
    }

    #[test]
    fn non_invite_client_reliable_has_no_timer_e_and_timer_k_is_zero() {
        let mut tx = tcp(at(0));
        assert_eq!(tx.on_timeout(at(500)), []);
        assert_eq!(tx.on_response(100, at(600)), [Effect::PassToTu]);
        assert_eq!(tx.deadline(), Some(at(32_000)), "still no Timer E");
        assert_eq!(tx.on_response(200, at(700)), [Effect::PassToTu]);
        assert_eq!(tx.deadline(), Some(at(700)), "Timer K = 0");
        assert_eq!(tx.on_timeout(at(700)), [Effect::Terminated]);
    }

    #[test]
    fn non_invite_client_transport_error_in_trying_or_proceeding_terminates() {
        let mut trying = udp(at(0));
        assert_eq!(
            trying.on_transport_error(),
            [Effect::TransportError, Effect::Terminated]
        );
        let mut proceeding = udp(at(0));
        let _ = proceeding.on_response(100, at(0));
        assert_eq!(
            proceeding.on_transport_error(),
            [Effect::TransportError, Effect::Terminated]
        );
        let mut completed = udp(at(0));
        let _ = completed.on_response(200, at(0));
        assert_eq!(completed.on_transport_error(), []);
        assert_eq!(completed.state_name(), "Completed");
    }

    #[test]
    fn a_late_on_timeout_fires_e_once_then_f() {
        let mut tx = udp(at(0));
        assert_eq!(
            tx.on_timeout(at(50_000)),
            [
                Effect::Send(OPTIONS.to_vec()),
                Effect::TimedOut,
                Effect::Terminated
            ]
        );
    }

    #[test]
    fn statuses_outside_100_to_699_are_absorbed() {
        let mut tx = udp(at(0));
        assert_eq!(tx.on_response(42, at(1)), [Effect::Absorb]);
        assert_eq!(tx.on_response(800, at(2)), [Effect::Absorb]);
        assert_eq!(tx.state_name(), "Trying");
    }

    #[test]
    fn terminated_absorbs_everything_and_has_no_deadline() {
        let mut tx = udp(at(0));
        let _ = tx.on_response(200, at(0));
        let _ = tx.on_timeout(at(5000));
        assert_eq!(tx.state_name(), "Terminated");
        assert_eq!(tx.on_response(200, at(6000)), [Effect::Absorb]);
        assert_eq!(tx.on_timeout(at(99_000)), []);
        assert_eq!(tx.on_transport_error(), []);
        assert_eq!(tx.deadline(), None);
    }
}
