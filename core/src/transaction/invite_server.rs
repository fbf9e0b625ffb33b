//! RFC 3261 §17.2.1: the INVITE server transaction (Figure 7), with the Accepted state and
//! Timer L of RFC 6026 §7.1 (Figure 7 as replaced by RFC 6026 §8.6).
//!
//! ```text
//! state       event              action                              next
//! ----------  -----------------  ----------------------------------  ----------
//! (new)       INVITE             to TU                               Proceeding
//! Proceeding  INVITE             resend last provisional, absorb     Proceeding
//! Proceeding  1xx from TU        send, keep                          Proceeding
//! Proceeding  2xx from TU        send; L = 64*T1                     Accepted
//! Proceeding  300-699 from TU    send, keep; G = T1 (unreliable), H  Completed
//! Proceeding  transport error    tell TU                             Proceeding
//! Completed   Timer G            resend final; G = MIN(2*G, T2)      Completed
//! Completed   INVITE             resend final, absorb                Completed
//! Completed   ACK                absorb; I                           Confirmed
//! Completed   Timer H            tell TU: no ACK                     Terminated
//! Completed   transport error    tell TU                             Completed
//! Confirmed   ACK, INVITE        absorb                              Confirmed
//! Confirmed   Timer I            -                                   Terminated
//! Accepted    INVITE             absorb                              Accepted
//! Accepted    ACK                to TU                               Accepted
//! Accepted    2xx from TU        send                                Accepted
//! Accepted    transport error    tell TU                             Accepted
//! Accepted    Timer L            -                                   Terminated
//! ```
//!
//! Any other response from the TU is discarded. I is T4 on unreliable transports, zero on
//! reliable ones. Transport errors leave the state as it is (RFC 6026 §7.1), so that
//! retransmitted INVITEs are still recognised.
//!
//! The transaction stores the bytes of the last provisional and of the final non-2xx response
//! and resends exactly those. It never retransmits a 2xx: the TU does (RFC 6026 §8.5), passing
//! each copy through [`InviteServer::on_tu_response`] while the transaction is Accepted.
//! The 100 Trying of §17.2.1 is the TU's to send, through the same call, when it will not
//! answer within 200 ms.

use std::time::Duration;

use super::timing::{due, earliest, Timing};
use super::{Class, Effect, Effects};
use crate::config::Timers;
use crate::time::Instant;

/// States of Figure 7, with what each one holds.
///
/// Proceeding and Completed hold several timers and the timing they derive from; they are
/// boxed, so that a transaction in Confirmed or Accepted (where a call's INVITE spends its
/// last 32 s, Timer L) is the size of one deadline.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InviteServer {
    /// The INVITE went to the TU; no final response yet.
    Proceeding(Box<ProceedingState>),
    /// A 300-699 response was sent; it is retransmitted until the ACK arrives.
    Completed(Box<CompletedState>),
    /// The ACK arrived; further ACKs (answers to retransmissions in flight) are absorbed
    /// until Timer I fires.
    Confirmed {
        /// Timer I: T4 on unreliable transports, zero on reliable ones.
        timer_i: Instant,
    },
    /// RFC 6026 §7.1: a 2xx was sent. Retransmitted INVITEs are absorbed, ACKs and the TU's
    /// 2xx retransmissions go through, until Timer L fires.
    Accepted {
        /// Timer L: 64*T1.
        timer_l: Instant,
    },
    /// Done; the layer forgets the transaction.
    Terminated,
}

/// What Proceeding holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProceedingState {
    /// The last provisional response sent, for retransmitted INVITEs; `None` until the TU
    /// sends one (retransmissions are then absorbed with nothing to resend).
    pub provisional: Option<Vec<u8>>,
    /// For the timers of the states that follow.
    pub timing: Timing,
}

/// What Completed holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompletedState {
    /// The final response, for Timer G and retransmitted INVITEs.
    pub response: Vec<u8>,
    /// Timer G: the next retransmission; `None` on reliable transports (§17.2.1).
    pub timer_g: Option<Instant>,
    /// The interval Timer G was last set with; the next is twice as long, at most T2.
    pub g_interval: Duration,
    /// Timer H: when the transaction stops waiting for the ACK.
    pub timer_h: Instant,
    /// For T2 and Timer I.
    pub timing: Timing,
}

/// The timers of Figure 7.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Timer {
    G,
    H,
    I,
    L,
}

impl InviteServer {
    /// §17.2.1: a new transaction is in Proceeding; the layer passes the INVITE to the TU.
    /// No timer runs until the TU answers.
    pub fn new(timers: Timers, reliable: bool) -> Self {
        InviteServer::Proceeding(Box::new(ProceedingState {
            provisional: None,
            timing: Timing::new(timers, reliable),
        }))
    }

    /// A retransmission of the INVITE arrived (§17.2.3 matched it).
    ///
    /// | state | effects |
    /// |---|---|
    /// | Proceeding | `[Send(last provisional), Absorb]`, or `[Absorb]` before any |
    /// | Completed | `[Send(final), Absorb]` |
    /// | Confirmed, Accepted, Terminated | `[Absorb]` |
    #[must_use = "effects must be carried out"]
    pub fn on_request_retransmission(&self) -> Effects {
        match self {
            InviteServer::Proceeding(p) => match &p.provisional {
                Some(p) => Effects::from([Effect::Send(p.clone()), Effect::Absorb]),
                None => Effects::from([Effect::Absorb]),
            },
            InviteServer::Completed(c) => {
                Effects::from([Effect::Send(c.response.clone()), Effect::Absorb])
            }
            // RFC 6026 §7.1: in Accepted the UAS retransmits its 2xx itself; the INVITE is
            // absorbed so that it is not taken for a new request.
            InviteServer::Confirmed { .. }
            | InviteServer::Accepted { .. }
            | InviteServer::Terminated => Effects::from([Effect::Absorb]),
        }
    }

    /// An ACK matching the transaction (§17.2.3) arrived.
    ///
    /// | state | effects |
    /// |---|---|
    /// | Completed | Confirmed, `[Absorb]`: the ACK of the non-2xx belongs to the transaction |
    /// | Accepted | `[PassToTu]`: the ACK of a 2xx is the TU's (RFC 6026 §7.1, §6 for RFC 2543 ACKs that match) |
    /// | Proceeding, Confirmed, Terminated | `[Absorb]` |
    #[must_use = "effects must be carried out"]
    pub fn on_ack(&mut self, now: Instant) -> Effects {
        match self {
            InviteServer::Completed(c) => {
                // §17.2.1: Timer G is ignored in Confirmed, so retransmissions stop.
                *self = InviteServer::Confirmed {
                    timer_i: now + c.timing.timer_i(),
                };
                Effects::from([Effect::Absorb])
            }
            InviteServer::Accepted { .. } => Effects::from([Effect::PassToTu]),
            InviteServer::Proceeding { .. }
            | InviteServer::Confirmed { .. }
            | InviteServer::Terminated => Effects::from([Effect::Absorb]),
        }
    }

    /// The TU passes a response with `status`, serialized as `bytes`.
    ///
    /// | state | 1xx | 2xx | 300-699 |
    /// |---|---|---|---|
    /// | Proceeding | kept, `[Send]` | Accepted, `[Send]` | Completed, `[Send]` |
    /// | Accepted | `[]` | `[Send]` (the TU's retransmission) | `[]` |
    /// | Completed, Confirmed, Terminated | `[]` | `[]` | `[]` |
    ///
    /// `[]` means the response is discarded: once a final response is sent, only the TU's
    /// 2xx retransmissions in Accepted may follow it. A status outside 100-699 is discarded.
    #[must_use = "effects must be carried out"]
    pub fn on_tu_response(&mut self, status: u16, bytes: Vec<u8>, now: Instant) -> Effects {
        let Some(class) = Class::of(status) else {
            return Effects::new();
        };
        match self {
            InviteServer::Proceeding(p) => {
                let timing = p.timing;
                match class {
                    // §17.2.1: sent once, resent only on a retransmitted INVITE.
                    Class::Provisional => p.provisional = Some(bytes.clone()),
                    // RFC 6026 §8.5: the TU retransmits the 2xx, not the transaction.
                    Class::Success => {
                        *self = InviteServer::Accepted {
                            timer_l: now + timing.sixty_four_t1(),
                        }
                    }
                    Class::Failure => {
                        *self = InviteServer::Completed(Box::new(CompletedState {
                            response: bytes.clone(),
                            timer_g: timing.first_retransmit().map(|g| now + g),
                            g_interval: timing.timers.t1,
                            timer_h: now + timing.sixty_four_t1(),
                            timing,
                        }));
                    }
                }
                Effects::from([Effect::Send(bytes)])
            }
            // RFC 6026 §7.1: "Any retransmission of the 2xx response passed from the TU ...
            // MUST be passed to the transport layer".
            InviteServer::Accepted { .. } if class == Class::Success => {
                Effects::from([Effect::Send(bytes)])
            }
            InviteServer::Accepted { .. }
            | InviteServer::Completed { .. }
            | InviteServer::Confirmed { .. }
            | InviteServer::Terminated => Effects::new(),
        }
    }

    /// The layer failed to send a response (§17.2.4). RFC 6026 §8.8: the TU is told and the
    /// transaction stays where it is, so that retransmitted INVITEs are still absorbed; its
    /// timers end it. `[TransportError]` in Proceeding, Completed and Accepted (Figure 7);
    /// nothing is sent in Confirmed or Terminated, so there: `[]`.
    #[must_use = "effects must be carried out"]
    pub fn on_transport_error(&mut self) -> Effects {
        match self {
            InviteServer::Proceeding { .. }
            | InviteServer::Completed { .. }
            | InviteServer::Accepted { .. } => Effects::from([Effect::TransportError]),
            InviteServer::Confirmed { .. } | InviteServer::Terminated => Effects::new(),
        }
    }

    /// The next instant this transaction needs the clock: its earliest timer.
    pub fn deadline(&self) -> Option<Instant> {
        earliest(self.pending())
    }

    /// Time passed: fires every timer due at `now`, earliest first. Timer G resends the
    /// final response (the next interval doubles up to T2, counted from `now`); Timer H gives
    /// `[NoAck, Terminated]`; Timers I and L give `[Terminated]`. Nothing due: `[]`.
    #[must_use = "effects must be carried out"]
    pub fn on_timeout(&mut self, now: Instant) -> Effects {
        let mut effects = Effects::new();
        for timer in due(self.pending(), now) {
            self.fire(timer, now, &mut effects);
        }
        effects
    }

    /// Whether the layer may forget it.
    pub fn is_terminated(&self) -> bool {
        matches!(self, InviteServer::Terminated)
    }

    /// The state's name in Figure 7, for logs and tests.
    pub fn state_name(&self) -> &'static str {
        match self {
            InviteServer::Proceeding { .. } => "Proceeding",
            InviteServer::Completed { .. } => "Completed",
            InviteServer::Confirmed { .. } => "Confirmed",
            InviteServer::Accepted { .. } => "Accepted",
            InviteServer::Terminated => "Terminated",
        }
    }

    fn pending(&self) -> [Option<(Instant, Timer)>; 2] {
        match self {
            InviteServer::Completed(c) => [
                c.timer_g.map(|at| (at, Timer::G)),
                Some((c.timer_h, Timer::H)),
            ],
            InviteServer::Confirmed { timer_i } => [Some((*timer_i, Timer::I)), None],
            InviteServer::Accepted { timer_l } => [Some((*timer_l, Timer::L)), None],
            InviteServer::Proceeding { .. } | InviteServer::Terminated => [None, None],
        }
    }

    /// Fires `timer` if it is still pending and due: an earlier one may have moved the state.
    fn fire(&mut self, timer: Timer, now: Instant, effects: &mut Effects) {
        match (&mut *self, timer) {
            (InviteServer::Completed(c), Timer::G) if c.timer_g.is_some_and(|at| at <= now) => {
                c.g_interval = c.timing.doubled_up_to_t2(c.g_interval);
                c.timer_g = Some(now + c.g_interval);
                effects.push(Effect::Send(c.response.clone()));
            }
            (InviteServer::Completed(c), Timer::H) if c.timer_h <= now => {
                // §17.2.1: the ACK never came; "a transaction failure" for the TU.
                *self = InviteServer::Terminated;
                effects.extend([Effect::NoAck, Effect::Terminated]);
            }
            (InviteServer::Confirmed { timer_i }, Timer::I) if *timer_i <= now => {
                *self = InviteServer::Terminated;
                effects.push(Effect::Terminated);
            }
            (InviteServer::Accepted { timer_l }, Timer::L) if *timer_l <= now => {
                *self = InviteServer::Terminated;
                effects.push(Effect::Terminated);
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TRYING: &[u8] = b"SIP/2.0 100 Trying\r\n";
    const RINGING: &[u8] = b"SIP/2.0 180 Ringing\r\n";
    const OK: &[u8] = b"SIP/2.0 200 OK\r\n";
    const BUSY: &[u8] = b"SIP/2.0 486 Busy Here\r\n";

    fn at(ms: u64) -> Instant {
        Instant::from_millis(ms)
    }

    fn udp() -> InviteServer {
        InviteServer::new(Timers::default(), false)
    }

    fn tcp() -> InviteServer {
        InviteServer::new(Timers::default(), true)
    }

    fn send(bytes: &[u8]) -> Effects {
        Effects::from([Effect::Send(bytes.to_vec())])
    }

    #[test]
    fn invite_server_starts_in_proceeding_without_timers() {
        let tx = udp();
        assert_eq!(tx.state_name(), "Proceeding");
        assert_eq!(tx.deadline(), None);
    }

    #[test]
    fn invite_server_absorbs_a_retransmission_before_any_provisional() {
        let tx = udp();
        assert_eq!(tx.on_request_retransmission(), [Effect::Absorb]);
    }

    #[test]
    fn invite_server_resends_the_last_provisional_on_a_retransmission() {
        let mut tx = udp();
        assert_eq!(tx.on_tu_response(100, TRYING.to_vec(), at(0)), send(TRYING));
        assert_eq!(
            tx.on_request_retransmission(),
            [Effect::Send(TRYING.to_vec()), Effect::Absorb]
        );
        assert_eq!(
            tx.on_tu_response(180, RINGING.to_vec(), at(300)),
            send(RINGING)
        );
        assert_eq!(
            tx.on_request_retransmission(),
            [Effect::Send(RINGING.to_vec()), Effect::Absorb]
        );
        assert_eq!(tx.state_name(), "Proceeding");
        assert_eq!(
            tx.deadline(),
            None,
            "provisionals are not retransmitted by timer"
        );
    }

    #[test]
    fn invite_server_timer_g_retransmits_the_final_until_timer_h() {
        let mut tx = udp();
        assert_eq!(tx.on_tu_response(486, BUSY.to_vec(), at(0)), send(BUSY));
        assert_eq!(tx.state_name(), "Completed");
        let mut resent = Vec::new();
        while let Some(when) = tx.deadline() {
            let effects = tx.on_timeout(when);
            if effects == send(BUSY) {
                resent.push(when.since_origin().as_millis());
            } else {
                assert_eq!(effects, [Effect::NoAck, Effect::Terminated]);
                assert_eq!(when, at(32_000), "Timer H = 64*T1");
            }
        }
        assert_eq!(
            resent,
            [500, 1500, 3500, 7500, 11_500, 15_500, 19_500, 23_500, 27_500, 31_500]
        );
        assert!(tx.is_terminated());
    }

    #[test]
    fn invite_server_resends_the_final_on_a_retransmitted_invite_in_completed() {
        let mut tx = udp();
        let _ = tx.on_tu_response(100, TRYING.to_vec(), at(0));
        let _ = tx.on_tu_response(486, BUSY.to_vec(), at(100));
        assert_eq!(
            tx.on_request_retransmission(),
            [Effect::Send(BUSY.to_vec()), Effect::Absorb]
        );
        assert_eq!(tx.state_name(), "Completed");
    }

    #[test]
    fn invite_server_ack_in_completed_confirms_and_timer_i_ends_it() {
        let mut tx = udp();
        let _ = tx.on_tu_response(486, BUSY.to_vec(), at(0));
        assert_eq!(tx.on_timeout(at(500)), send(BUSY));
        assert_eq!(tx.on_ack(at(800)), [Effect::Absorb]);
        assert_eq!(tx.state_name(), "Confirmed");
        assert_eq!(
            tx.deadline(),
            Some(at(5800)),
            "Timer I = T4; G and H stopped"
        );
        assert_eq!(tx.on_timeout(at(1500)), [], "no more retransmissions");
        // ACKs answering retransmissions still in flight, and late INVITEs: absorbed.
        assert_eq!(tx.on_ack(at(1600)), [Effect::Absorb]);
        assert_eq!(tx.on_request_retransmission(), [Effect::Absorb]);
        assert_eq!(tx.on_timeout(at(5799)), []);
        assert_eq!(tx.on_timeout(at(5800)), [Effect::Terminated]);
        assert!(tx.is_terminated());
    }

    #[test]
    fn invite_server_reliable_has_no_timer_g_and_timer_i_is_zero() {
        let mut tx = tcp();
        let _ = tx.on_tu_response(404, b"404".to_vec(), at(1000));
        assert_eq!(tx.deadline(), Some(at(33_000)), "only Timer H");
        assert_eq!(tx.on_timeout(at(1500)), []);
        assert_eq!(tx.on_ack(at(2000)), [Effect::Absorb]);
        assert_eq!(tx.deadline(), Some(at(2000)), "Timer I = 0");
        assert_eq!(tx.on_timeout(at(2000)), [Effect::Terminated]);
    }

    #[test]
    fn invite_server_reliable_timer_h_still_fires_without_ack() {
        let mut tx = tcp();
        let _ = tx.on_tu_response(404, b"404".to_vec(), at(0));
        assert_eq!(
            tx.on_timeout(at(32_000)),
            [Effect::NoAck, Effect::Terminated]
        );
    }

    #[test]
    fn invite_server_2xx_goes_to_accepted_and_absorbs_retransmitted_invites() {
        let mut tx = udp();
        let _ = tx.on_tu_response(180, RINGING.to_vec(), at(0));
        assert_eq!(tx.on_tu_response(200, OK.to_vec(), at(2000)), send(OK));
        assert_eq!(tx.state_name(), "Accepted");
        assert_eq!(tx.deadline(), Some(at(34_000)), "Timer L = 64*T1");
        assert_eq!(
            tx.on_request_retransmission(),
            [Effect::Absorb],
            "neither the 180 nor the 200: the TU retransmits its 2xx"
        );
    }

    #[test]
    fn invite_server_accepted_passes_acks_up_and_sends_the_tus_2xx_retransmissions() {
        let mut tx = udp();
        let _ = tx.on_tu_response(200, OK.to_vec(), at(0));
        assert_eq!(tx.on_tu_response(200, OK.to_vec(), at(500)), send(OK));
        assert_eq!(tx.on_ack(at(700)), [Effect::PassToTu]);
        assert_eq!(tx.on_ack(at(900)), [Effect::PassToTu]);
        assert_eq!(tx.state_name(), "Accepted", "the ACK does not end Accepted");
    }

    #[test]
    fn timer_l_ends_accepted() {
        let mut tx = tcp();
        let _ = tx.on_tu_response(200, OK.to_vec(), at(1000));
        assert_eq!(tx.deadline(), Some(at(33_000)), "64*T1 on every transport");
        assert_eq!(tx.on_timeout(at(32_999)), []);
        assert_eq!(tx.on_timeout(at(33_000)), [Effect::Terminated]);
        assert!(tx.is_terminated());
    }

    #[test]
    fn invite_server_discards_a_second_final_from_the_tu() {
        let mut tx = udp();
        let _ = tx.on_tu_response(486, BUSY.to_vec(), at(0));
        assert_eq!(tx.on_tu_response(500, b"500".to_vec(), at(10)), []);
        assert_eq!(tx.on_tu_response(200, OK.to_vec(), at(20)), []);
        assert_eq!(tx.on_tu_response(180, RINGING.to_vec(), at(30)), []);
        assert_eq!(
            tx.on_request_retransmission(),
            [Effect::Send(BUSY.to_vec()), Effect::Absorb],
            "the first final is still the one resent"
        );
        let _ = tx.on_ack(at(40));
        assert_eq!(tx.on_tu_response(500, b"500".to_vec(), at(50)), []);
    }

    #[test]
    fn invite_server_in_accepted_discards_non_2xx_and_provisionals_from_the_tu() {
        let mut tx = udp();
        let _ = tx.on_tu_response(200, OK.to_vec(), at(0));
        assert_eq!(tx.on_tu_response(486, BUSY.to_vec(), at(10)), []);
        assert_eq!(tx.on_tu_response(180, RINGING.to_vec(), at(20)), []);
        assert_eq!(tx.state_name(), "Accepted");
    }

    #[test]
    fn invite_server_ack_before_any_final_is_absorbed() {
        let mut tx = udp();
        assert_eq!(tx.on_ack(at(0)), [Effect::Absorb]);
        assert_eq!(tx.state_name(), "Proceeding");
    }

    #[test]
    fn invite_server_transport_error_informs_the_tu_and_keeps_the_state() {
        let mut proceeding = udp();
        assert_eq!(proceeding.on_transport_error(), [Effect::TransportError]);
        assert_eq!(proceeding.state_name(), "Proceeding");
        let mut completed = udp();
        let _ = completed.on_tu_response(486, BUSY.to_vec(), at(0));
        assert_eq!(completed.on_transport_error(), [Effect::TransportError]);
        assert_eq!(completed.state_name(), "Completed");
        assert_eq!(completed.deadline(), Some(at(500)), "timers keep running");
        let mut accepted = udp();
        let _ = accepted.on_tu_response(200, OK.to_vec(), at(0));
        assert_eq!(accepted.on_transport_error(), [Effect::TransportError]);
        assert_eq!(accepted.state_name(), "Accepted");
        let mut confirmed = completed;
        let _ = confirmed.on_ack(at(1));
        assert_eq!(confirmed.on_transport_error(), []);
    }

    #[test]
    fn a_late_on_timeout_fires_g_once_then_h() {
        let mut tx = udp();
        let _ = tx.on_tu_response(603, b"603".to_vec(), at(0));
        assert_eq!(
            tx.on_timeout(at(45_000)),
            [
                Effect::Send(b"603".to_vec()),
                Effect::NoAck,
                Effect::Terminated
            ]
        );
    }

    #[test]
    fn statuses_outside_100_to_699_from_the_tu_are_discarded() {
        let mut tx = udp();
        assert_eq!(tx.on_tu_response(99, b"99".to_vec(), at(0)), []);
        assert_eq!(tx.on_tu_response(700, b"700".to_vec(), at(0)), []);
        assert_eq!(tx.state_name(), "Proceeding");
    }

    #[test]
    fn terminated_absorbs_everything_and_has_no_deadline() {
        let mut tx = tcp();
        let _ = tx.on_tu_response(200, OK.to_vec(), at(0));
        let _ = tx.on_timeout(at(32_000));
        assert_eq!(tx.state_name(), "Terminated");
        assert_eq!(tx.on_request_retransmission(), [Effect::Absorb]);
        assert_eq!(tx.on_ack(at(33_000)), [Effect::Absorb]);
        assert_eq!(tx.on_tu_response(200, OK.to_vec(), at(33_000)), []);
        assert_eq!(tx.on_timeout(at(99_000)), []);
        assert_eq!(tx.on_transport_error(), []);
        assert_eq!(tx.deadline(), None);
    }
}
