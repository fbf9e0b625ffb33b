//! Properties shared by the four machines, over random event sequences (proptest): no panic,
//! every network message is either passed up or absorbed, `Terminated` is reported exactly on
//! entering the state, no deadline is left in the past by `on_timeout`, and once only
//! timeouts arrive every machine terminates within 64*T1 (32 s for Timer D) + T4 + a margin
//! of its last input, except in the states that by design wait for the TU with no timer.

use std::time::Duration;

use proptest::prelude::*;

use super::{
    Effect, Effects, InviteClient, InviteServer, NonInviteClient, NonInviteServer, Timing,
};
use crate::config::Timers;
use crate::time::Instant;

/// One thing that can happen to a transaction.
#[derive(Clone, Debug)]
enum Input {
    /// A response from the network (client machines).
    Response(u16),
    /// A retransmitted request from the network (server machines).
    Retransmission,
    /// An ACK from the network (INVITE server).
    Ack,
    /// A response from the TU (server machines).
    TuResponse(u16),
    /// The layer reports a failed send.
    TransportError,
    /// The driver calls `on_timeout(now)`, due or not.
    Timeout,
}

/// An input, `after` the previous one.
#[derive(Clone, Debug)]
struct Step {
    after: Duration,
    /// Whether the driver fired every due timer, at its deadline, before this input (a real
    /// driver does); otherwise the input meets overdue timers.
    punctual: bool,
    input: Input,
}

/// The four machines behind one face, for the harness.
trait Machine {
    /// Applies `input`; `None` when the machine has no such input.
    fn apply(&mut self, input: &Input, now: Instant, timing: Timing) -> Option<Effects>;
    fn deadline(&self) -> Option<Instant>;
    fn on_timeout(&mut self, now: Instant) -> Effects;
    fn is_terminated(&self) -> bool;
    /// States with no timer that wait for the TU (or, for the INVITE client in Proceeding,
    /// for the TU's Timer C or CANCEL): they need an input to end.
    fn waits_for_the_tu(&self) -> bool;
    fn name(&self) -> &'static str;
}

impl Machine for InviteClient {
    fn apply(&mut self, input: &Input, now: Instant, _: Timing) -> Option<Effects> {
        match input {
            Input::Response(s) => Some(self.on_response(*s, now, || b"ACK".to_vec())),
            Input::TransportError => Some(self.on_transport_error()),
            Input::Timeout => Some(InviteClient::on_timeout(self, now)),
            Input::Retransmission | Input::Ack | Input::TuResponse(_) => None,
        }
    }
    fn deadline(&self) -> Option<Instant> {
        InviteClient::deadline(self)
    }
    fn on_timeout(&mut self, now: Instant) -> Effects {
        InviteClient::on_timeout(self, now)
    }
    fn is_terminated(&self) -> bool {
        InviteClient::is_terminated(self)
    }
    fn waits_for_the_tu(&self) -> bool {
        matches!(self, InviteClient::Proceeding { .. })
    }
    fn name(&self) -> &'static str {
        self.state_name()
    }
}

impl Machine for NonInviteClient {
    fn apply(&mut self, input: &Input, now: Instant, _: Timing) -> Option<Effects> {
        match input {
            Input::Response(s) => Some(self.on_response(*s, now)),
            Input::TransportError => Some(self.on_transport_error()),
            Input::Timeout => Some(NonInviteClient::on_timeout(self, now)),
            Input::Retransmission | Input::Ack | Input::TuResponse(_) => None,
        }
    }
    fn deadline(&self) -> Option<Instant> {
        NonInviteClient::deadline(self)
    }
    fn on_timeout(&mut self, now: Instant) -> Effects {
        NonInviteClient::on_timeout(self, now)
    }
    fn is_terminated(&self) -> bool {
        NonInviteClient::is_terminated(self)
    }
    fn waits_for_the_tu(&self) -> bool {
        false
    }
    fn name(&self) -> &'static str {
        self.state_name()
    }
}

impl Machine for InviteServer {
    fn apply(&mut self, input: &Input, now: Instant, _: Timing) -> Option<Effects> {
        match input {
            Input::Retransmission => Some(self.on_request_retransmission()),
            Input::Ack => Some(self.on_ack(now)),
            Input::TuResponse(s) => Some(self.on_tu_response(*s, s.to_string().into_bytes(), now)),
            Input::TransportError => Some(self.on_transport_error()),
            Input::Timeout => Some(InviteServer::on_timeout(self, now)),
            Input::Response(_) => None,
        }
    }
    fn deadline(&self) -> Option<Instant> {
        InviteServer::deadline(self)
    }
    fn on_timeout(&mut self, now: Instant) -> Effects {
        InviteServer::on_timeout(self, now)
    }
    fn is_terminated(&self) -> bool {
        InviteServer::is_terminated(self)
    }
    fn waits_for_the_tu(&self) -> bool {
        matches!(self, InviteServer::Proceeding { .. })
    }
    fn name(&self) -> &'static str {
        self.state_name()
    }
}

impl Machine for NonInviteServer {
    fn apply(&mut self, input: &Input, now: Instant, timing: Timing) -> Option<Effects> {
        // Its inputs answer with an `Action`; seen as effects, a retransmission that gets
        // nothing back is absorbed.
        let effects = super::non_invite_server::Action::into_effects;
        match input {
            Input::Retransmission => {
                let mut e = effects(self.on_request_retransmission());
                e.push(Effect::Absorb);
                Some(e)
            }
            Input::TuResponse(s) => {
                let bytes = s.to_string().into_bytes();
                Some(effects(self.on_tu_response(
                    *s,
                    bytes,
                    now,
                    timing.timer_j(),
                )))
            }
            Input::TransportError => Some(self.on_transport_error()),
            Input::Timeout => Some(NonInviteServer::on_timeout(self, now)),
            Input::Response(_) | Input::Ack => None,
        }
    }
    fn deadline(&self) -> Option<Instant> {
        NonInviteServer::deadline(self)
    }
    fn on_timeout(&mut self, now: Instant) -> Effects {
        NonInviteServer::on_timeout(self, now)
    }
    fn is_terminated(&self) -> bool {
        NonInviteServer::is_terminated(self)
    }
    fn waits_for_the_tu(&self) -> bool {
        matches!(
            self,
            NonInviteServer::Trying | NonInviteServer::Proceeding { .. }
        )
    }
    fn name(&self) -> &'static str {
        self.state_name()
    }
}

/// Checks what must hold of the effects of one call that moved `was_terminated` to the
/// machine's present state.
fn check_effects<M: Machine>(
    m: &M,
    input: &Input,
    effects: &[Effect],
    was_terminated: bool,
) -> Result<(), TestCaseError> {
    let reported = effects.iter().filter(|e| **e == Effect::Terminated).count();
    let entered = !was_terminated && m.is_terminated();
    prop_assert_eq!(
        reported,
        usize::from(entered),
        "{:?} -> {:?}",
        input,
        effects
    );
    if was_terminated {
        prop_assert!(
            effects.iter().all(|e| *e == Effect::Absorb),
            "a terminated machine did {:?}",
            effects
        );
    }
    if matches!(
        input,
        Input::Response(_) | Input::Retransmission | Input::Ack
    ) {
        let verdicts = effects
            .iter()
            .filter(|e| matches!(e, Effect::PassToTu | Effect::Absorb))
            .count();
        prop_assert_eq!(verdicts, 1, "{:?} -> {:?}", input, effects);
    } else {
        prop_assert!(!effects.contains(&Effect::PassToTu));
        prop_assert!(!effects.contains(&Effect::Absorb));
    }
    Ok(())
}

/// Drives `m` (made at instant zero) through `steps`, then through timeouts only.
fn run<M: Machine>(mut m: M, steps: &[Step], timing: Timing) -> Result<(), TestCaseError> {
    let mut now = Instant::ZERO;
    // The latest instant the machine has been given: a real driver's clock never goes back.
    let mut seen = Instant::ZERO;
    let fire = |m: &mut M, now: Instant| -> Result<(), TestCaseError> {
        let was = m.is_terminated();
        let effects = m.on_timeout(now);
        check_effects(m, &Input::Timeout, &effects, was)?;
        if let Some(d) = m.deadline() {
            prop_assert!(d > now, "{} left a deadline {} at {}", m.name(), d, now);
        }
        Ok(())
    };
    for step in steps {
        now = now + step.after;
        if step.punctual {
            while let Some(d) = m.deadline().filter(|d| *d <= now) {
                seen = seen.max(d);
                fire(&mut m, seen)?;
            }
        }
        let was = m.is_terminated();
        let Some(effects) = m.apply(&step.input, now, timing) else {
            continue;
        };
        seen = now;
        check_effects(&m, &step.input, &effects, was)?;
        if matches!(step.input, Input::Timeout) {
            if let Some(d) = m.deadline() {
                prop_assert!(d > now, "{} left a deadline {} at {}", m.name(), d, now);
            }
        }
    }
    let last_input = now;
    let bound = timing.sixty_four_t1().max(Duration::from_secs(32))
        + timing.timers.t4
        + Duration::from_secs(1);
    // Each firing either ends the machine or moves a retransmission timer forward by at
    // least min(T1, T2) >= 1 ms, so this many firings cover the bound.
    let firings_max = bound.as_millis() as usize + 8;
    for _ in 0..firings_max {
        let Some(d) = m.deadline() else { break };
        now = now.max(d);
        fire(&mut m, now)?;
    }
    if m.is_terminated() {
        prop_assert!(
            now - last_input <= bound,
            "ended {:?} after the last input",
            now - last_input
        );
    } else {
        prop_assert_eq!(m.deadline(), None, "{} still has timers", m.name());
        prop_assert!(
            m.waits_for_the_tu(),
            "{} never ends with only timeouts",
            m.name()
        );
    }
    Ok(())
}

fn timers() -> impl Strategy<Value = Timers> {
    (1u64..=1000, 1u64..=8000, 0u64..=10_000).prop_map(|(t1, t2, t4)| Timers {
        t1: Duration::from_millis(t1),
        t2: Duration::from_millis(t2),
        t4: Duration::from_millis(t4),
    })
}

fn status() -> impl Strategy<Value = u16> {
    prop_oneof![
        4 => prop::sample::select(vec![100u16, 180, 183, 200, 202, 302, 404, 486, 487, 500, 603]),
        1 => any::<u16>(),
    ]
}

fn steps() -> impl Strategy<Value = Vec<Step>> {
    let input = prop_oneof![
        status().prop_map(Input::Response),
        Just(Input::Retransmission),
        Just(Input::Ack),
        status().prop_map(Input::TuResponse),
        Just(Input::TransportError),
        Just(Input::Timeout),
    ];
    let after = prop_oneof![0u64..=700, 0u64..=40_000].prop_map(Duration::from_millis);
    prop::collection::vec(
        (after, any::<bool>(), input).prop_map(|(after, punctual, input)| Step {
            after,
            punctual,
            input,
        }),
        0..40,
    )
}

proptest! {
    #[test]
    fn invite_client_properties(timers in timers(), reliable in any::<bool>(), steps in steps()) {
        let (tx, sent) = InviteClient::new(b"INVITE".to_vec(), timers, reliable, Instant::ZERO);
        prop_assert_eq!(sent, Effects::from([Effect::Send(b"INVITE".to_vec())]));
        run(tx, &steps, Timing::new(timers, reliable))?;
    }

    #[test]
    fn non_invite_client_properties(timers in timers(), reliable in any::<bool>(), steps in steps()) {
        let (tx, sent) =
            NonInviteClient::new(b"OPTIONS".to_vec(), timers, reliable, Instant::ZERO);
        prop_assert_eq!(sent, Effects::from([Effect::Send(b"OPTIONS".to_vec())]));
        run(tx, &steps, Timing::new(timers, reliable))?;
    }

    #[test]
    fn invite_server_properties(timers in timers(), reliable in any::<bool>(), steps in steps()) {
        run(InviteServer::new(timers, reliable), &steps, Timing::new(timers, reliable))?;
    }

    #[test]
    fn non_invite_server_properties(timers in timers(), reliable in any::<bool>(), steps in steps()) {
        run(NonInviteServer::new(), &steps, Timing::new(timers, reliable))?;
    }
}
