//! RFC 3261 §17.2.2: the non-INVITE server transaction (Figure 8).
//!
//! ```text
//!            |Request received, pass to TU
//!            V
//!      +-----------+  1xx from TU, send       +------------+
//!      |  Trying   |------------------------->| Proceeding |--+ Request: send response
//!      +-----------+                          +------------+<-+ 1xx from TU: send
//!            | 200-699 from TU, send                 | 200-699 from TU, send
//!            V                                       V
//!      +-----------+  Request: send response   Timer J fires
//!      | Completed |<-+                             |
//!      +-----------+--+                             V
//!                                             Terminated
//! ```
//!
//! The transaction keeps the bytes of its last response: a retransmitted request gets those
//! bytes again, not a freshly built answer (Kamailio's `retr_buf`), so the To tag and every
//! other byte stay the same.
//!
//! Its API predates the other three machines and is kept for `element.rs`: inputs return an
//! [`Action`] instead of [`Effect`]s, and Timer J's duration comes with the final response
//! ([`super::Timing::timer_j`] computes it). `on_timeout`, `on_transport_error` and
//! `state_name` have the common shape.

use std::time::Duration;

use super::{Effect, Effects};
use crate::time::Instant;

/// States of Figure 8, with what each one holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NonInviteServer {
    /// The request went to the TU, which has not answered yet. Retransmissions are absorbed.
    Trying,
    /// A provisional response was sent; retransmissions get it again.
    Proceeding {
        /// The last provisional response.
        provisional: Vec<u8>,
    },
    /// A final response was sent; retransmissions get it again until Timer J fires.
    Completed {
        /// The final response.
        response: Vec<u8>,
        /// Timer J: 64*T1 for unreliable transports, zero for reliable ones.
        timer_j: Instant,
    },
    /// Done; the layer forgets the transaction.
    Terminated,
}

/// What the transaction asks of the layer after an event.
#[derive(Debug, PartialEq, Eq)]
pub enum Action {
    /// Nothing to send.
    None,
    /// Send these bytes (a response, or a stored one for a retransmission).
    Send(Vec<u8>),
}

impl Action {
    /// The same as the effects the other machines return: one `Send`, or none.
    pub fn into_effects(self) -> Effects {
        match self {
            Action::Send(b) => Effects::from([Effect::Send(b)]),
            Action::None => Effects::new(),
        }
    }
}

impl NonInviteServer {
    /// §17.2.2: a new transaction is in Trying.
    pub fn new() -> Self {
        NonInviteServer::Trying
    }

    /// A retransmission of the request arrived.
    pub fn on_request_retransmission(&self) -> Action {
        match self {
            NonInviteServer::Trying | NonInviteServer::Terminated => Action::None,
            NonInviteServer::Proceeding { provisional } => Action::Send(provisional.clone()),
            NonInviteServer::Completed { response, .. } => Action::Send(response.clone()),
        }
    }

    /// The TU sends a response with `status`; `timer_j` is 64*T1 (unreliable) or zero.
    pub fn on_tu_response(
        &mut self,
        status: u16,
        bytes: Vec<u8>,
        now: Instant,
        timer_j: Duration,
    ) -> Action {
        match self {
            NonInviteServer::Trying | NonInviteServer::Proceeding { .. } => {
                if status < 200 {
                    *self = NonInviteServer::Proceeding {
                        provisional: bytes.clone(),
                    };
                } else {
                    *self = NonInviteServer::Completed {
                        response: bytes.clone(),
                        timer_j: now + timer_j,
                    };
                }
                Action::Send(bytes)
            }
            // §17.2.2: "any other final responses passed by the TU ... MUST be discarded".
            NonInviteServer::Completed { .. } | NonInviteServer::Terminated => Action::None,
        }
    }

    /// The next instant this transaction needs the clock.
    pub fn deadline(&self) -> Option<Instant> {
        match self {
            NonInviteServer::Completed { timer_j, .. } => Some(*timer_j),
            _ => None,
        }
    }

    /// Time passed; Timer J moves Completed to Terminated: `[Terminated]`, else `[]`.
    pub fn on_timeout(&mut self, now: Instant) -> Effects {
        if let NonInviteServer::Completed { timer_j, .. } = self {
            if now >= *timer_j {
                *self = NonInviteServer::Terminated;
                return Effects::from([Effect::Terminated]);
            }
        }
        Effects::new()
    }

    /// The layer failed to send a response (§17.2.4): from Proceeding or Completed the TU is
    /// told and the transaction ends (Figure 8; RFC 6026 changed this for INVITE only).
    /// Nothing was sent in Trying, so there an error is not this transaction's: `[]`.
    #[must_use = "effects must be carried out"]
    pub fn on_transport_error(&mut self) -> Effects {
        match self {
            NonInviteServer::Proceeding { .. } | NonInviteServer::Completed { .. } => {
                *self = NonInviteServer::Terminated;
                Effects::from([Effect::TransportError, Effect::Terminated])
            }
            NonInviteServer::Trying | NonInviteServer::Terminated => Effects::new(),
        }
    }

    /// Whether the layer may forget it.
    pub fn is_terminated(&self) -> bool {
        matches!(self, NonInviteServer::Terminated)
    }

    /// The state's name in Figure 8, for logs and tests.
    pub fn state_name(&self) -> &'static str {
        match self {
            NonInviteServer::Trying => "Trying",
            NonInviteServer::Proceeding { .. } => "Proceeding",
            NonInviteServer::Completed { .. } => "Completed",
            NonInviteServer::Terminated => "Terminated",
        }
    }
}

impl Default for NonInviteServer {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const J: Duration = Duration::from_secs(32);

    #[test]
    fn retransmission_in_trying_is_absorbed() {
        let tx = NonInviteServer::new();
        assert_eq!(tx.on_request_retransmission(), Action::None);
    }

    #[test]
    fn retransmission_after_final_gets_the_stored_bytes() {
        let mut tx = NonInviteServer::new();
        let sent = tx.on_tu_response(200, b"SIP/2.0 200 OK\r\n".to_vec(), Instant::ZERO, J);
        assert_eq!(sent, Action::Send(b"SIP/2.0 200 OK\r\n".to_vec()));
        assert_eq!(
            tx.on_request_retransmission(),
            Action::Send(b"SIP/2.0 200 OK\r\n".to_vec())
        );
    }

    #[test]
    fn provisional_then_final_then_second_final_discarded() {
        let mut tx = NonInviteServer::new();
        tx.on_tu_response(100, b"100".to_vec(), Instant::ZERO, J);
        assert_eq!(
            tx.on_request_retransmission(),
            Action::Send(b"100".to_vec())
        );
        tx.on_tu_response(404, b"404".to_vec(), Instant::ZERO, J);
        assert_eq!(
            tx.on_tu_response(500, b"500".to_vec(), Instant::ZERO, J),
            Action::None
        );
        assert_eq!(
            tx.on_request_retransmission(),
            Action::Send(b"404".to_vec())
        );
    }

    #[test]
    fn timer_j_terminates_at_64_t1_not_before() {
        let mut tx = NonInviteServer::new();
        tx.on_tu_response(200, b"200".to_vec(), Instant::from_millis(1000), J);
        assert_eq!(tx.deadline(), Some(Instant::from_millis(33_000)));
        tx.on_timeout(Instant::from_millis(32_999));
        assert!(!tx.is_terminated());
        tx.on_timeout(Instant::from_millis(33_000));
        assert!(tx.is_terminated());
        assert_eq!(tx.on_request_retransmission(), Action::None);
    }

    #[test]
    fn timer_j_firing_reports_terminated_once() {
        let mut tx = NonInviteServer::new();
        tx.on_tu_response(404, b"404".to_vec(), Instant::ZERO, Duration::ZERO);
        assert_eq!(tx.state_name(), "Completed");
        assert_eq!(tx.on_timeout(Instant::ZERO), [Effect::Terminated]);
        assert_eq!(tx.state_name(), "Terminated");
        assert_eq!(tx.on_timeout(Instant::from_millis(1)), []);
    }

    #[test]
    fn states_are_named_as_in_figure_8() {
        let mut tx = NonInviteServer::new();
        assert_eq!(tx.state_name(), "Trying");
        tx.on_tu_response(100, b"100".to_vec(), Instant::ZERO, J);
        assert_eq!(tx.state_name(), "Proceeding");
    }

    #[test]
    fn transport_error_after_sending_informs_the_tu_and_terminates() {
        let mut trying = NonInviteServer::new();
        assert_eq!(trying.on_transport_error(), []);
        assert_eq!(trying.state_name(), "Trying");
        let mut proceeding = NonInviteServer::new();
        proceeding.on_tu_response(100, b"100".to_vec(), Instant::ZERO, J);
        assert_eq!(
            proceeding.on_transport_error(),
            [Effect::TransportError, Effect::Terminated]
        );
        let mut completed = NonInviteServer::new();
        completed.on_tu_response(200, b"200".to_vec(), Instant::ZERO, J);
        assert_eq!(
            completed.on_transport_error(),
            [Effect::TransportError, Effect::Terminated]
        );
        assert!(completed.is_terminated());
    }
}
