//! RFC 3261 §17: the transaction layer. One state machine per file; this module matches
//! requests to server transactions (§17.2.3) and keeps their timers.

pub mod non_invite_server;

use crate::ids::MAGIC_COOKIE;
use crate::message::Message;

pub use non_invite_server::NonInviteServer;

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
