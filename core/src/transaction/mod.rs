//! RFC 3261 §17: the transaction layer. One state machine per file; this module matches
//! requests to server transactions (§17.2.3) and keeps their timers.
//!
//! The four machines are pure: they are handed status codes, the bytes to send and `now`, and
//! answer with [`Effect`]s. Parsing, matching (§17.1.3, §17.2.3), building ACKs and
//! responses, and acting on the effects belong to the layer that drives them. Each keeps its
//! timers as deadlines inside its states: `deadline()` is the earliest, `on_timeout(now)`
//! fires every timer due at `now`, earliest first, and does nothing when none is.
//!
//! | machine | figure | file |
//! |---|---|---|
//! | [`InviteClient`] | RFC 3261 Figure 5 as replaced by RFC 6026 §8.4 | `invite_client.rs` |
//! | [`NonInviteClient`] | RFC 3261 Figure 6 | `non_invite_client.rs` |
//! | [`InviteServer`] | RFC 3261 Figure 7 as replaced by RFC 6026 §8.6 | `invite_server.rs` |
//! | [`NonInviteServer`] | RFC 3261 Figure 8 | `non_invite_server.rs` |

pub mod invite_client;
pub mod invite_server;
pub mod non_invite_client;
pub mod non_invite_server;
#[cfg(test)]
mod properties;
pub mod timing;

use crate::ids::MAGIC_COOKIE;
use crate::message::Message;

pub use invite_client::InviteClient;
pub use invite_server::InviteServer;
pub use non_invite_client::NonInviteClient;
pub use non_invite_server::NonInviteServer;
pub use timing::Timing;

/// What a transaction asks of the layer driving it, in the order to carry it out.
///
/// Every call handing the transaction a message from the network (`on_response`,
/// `on_request_retransmission`, `on_ack`) returns exactly one of [`Effect::PassToTu`] and
/// [`Effect::Absorb`], so the layer always knows whether that message goes further.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Effect {
    /// Pass these bytes to the transport, towards the peer of the transaction: the request,
    /// an ACK, a response, or a retransmission of one of them. Retransmissions are the stored
    /// bytes of the first sending (Kamailio's `retr_buf`), identical to the last byte.
    Send(Vec<u8>),
    /// Hand the message just received (a response, or an ACK) to the TU.
    PassToTu,
    /// The message just received ends in the transaction: a retransmission it answered or
    /// absorbed, or something its state ignores.
    Absorb,
    /// Timer B or F fired: no final response in time. The TU is told (§17.1.1.2, §17.1.2.2);
    /// what it does is its own business (a proxy sends no 408 upstream for a non-INVITE,
    /// RFC 4320 §4.2).
    TimedOut,
    /// Timer H fired: the non-2xx final response was never acknowledged, "a transaction
    /// failure" for the TU (§17.2.1).
    NoAck,
    /// The layer reported a transport failure while the transaction was sending; the TU is
    /// told (§17.1.4, §17.2.4 as updated by RFC 6026 §8.8).
    TransportError,
    /// The transaction has just entered Terminated and must be destroyed at once (§17.1.1.2,
    /// §17.2.1): the layer forgets it, and later messages that would have matched it are
    /// strays.
    Terminated,
}

/// The class of a status code, as the machines see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Class {
    /// 100-199.
    Provisional,
    /// 200-299.
    Success,
    /// 300-699.
    Failure,
}

impl Class {
    /// The class of `status`, `None` outside 100-699: RFC 3261 §21 defines six classes, and a
    /// code outside them cannot move a machine (the client absorbs such a response, the server
    /// discards it from its TU).
    pub(crate) fn of(status: u16) -> Option<Class> {
        match status {
            100..=199 => Some(Class::Provisional),
            200..=299 => Some(Class::Success),
            300..=699 => Some(Class::Failure),
            _ => None,
        }
    }
}

/// Identifies a server transaction (RFC 3261 §17.2.3).
///
/// For RFC 3261 requests (branch with the magic cookie) it is the branch, the sent-by of the top
/// Via and the method (ACK taken as INVITE, CANCEL kept apart). For RFC 2543 requests it falls
/// back to the §17.2.3 list of fields that the older RFC used.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TxKey {
    /// RFC 3261 matching.
    Rfc3261 {
        /// The branch parameter, compared case-sensitively.
        branch: String,
        /// Top Via sent-by, host lower-cased, `host:port`.
        sent_by: String,
        /// Request method, ACK mapped to INVITE.
        method: String,
    },
    /// RFC 2543 fallback matching.
    Rfc2543 {
        /// Request-URI, To tag, From tag, Call-ID, CSeq number, top Via, method: joined.
        fields: String,
    },
}

impl TxKey {
    /// The key of a request, `None` when it lacks what matching needs (no Via).
    pub fn of_request(msg: &Message) -> Option<TxKey> {
        let via = msg.top_via()?;
        let method = match msg.method()?.as_str() {
            "ACK" => "INVITE".to_owned(),
            m => m.to_owned(),
        };
        match via.branch() {
            Some(b) if b.starts_with(MAGIC_COOKIE) && b.len() > MAGIC_COOKIE.len() => {
                let port = via.port.unwrap_or(5060);
                Some(TxKey::Rfc3261 {
                    branch: b.to_owned(),
                    sent_by: format!("{}:{}", via.host.to_ascii_lowercase(), port),
                    method,
                })
            }
            _ => {
                let to_tag = msg.to().and_then(|t| t.tag().map(str::to_owned));
                let from_tag = msg.from().and_then(|f| f.tag().map(str::to_owned));
                let cseq = msg.cseq().map(|c| c.seq).unwrap_or(0);
                Some(TxKey::Rfc2543 {
                    fields: format!(
                        "{}\n{}\n{}\n{}\n{}\n{}\n{}",
                        msg.request_uri().unwrap_or(""),
                        to_tag.unwrap_or_default(),
                        from_tag.unwrap_or_default(),
                        msg.call_id().unwrap_or(""),
                        cseq,
                        via.raw,
                        method
                    ),
                })
            }
        }
    }
}
