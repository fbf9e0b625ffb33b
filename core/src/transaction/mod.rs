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
//!
//! `completed.rs` is no machine: it is where the element keeps a non-INVITE server
//! transaction over UDP once it is Completed, in a queue in the order Timer J ends them.

pub(crate) mod completed;
pub mod invite_client;
pub mod invite_server;
pub mod non_invite_client;
pub mod non_invite_server;
#[cfg(test)]
mod properties;
pub mod timing;

use std::fmt;
use std::sync::Arc;

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

/// What one call on a machine asks for, in order: one or two effects nearly always (a
/// response to send and its `Absorb`), kept inline so that handing a machine a message
/// allocates nothing. Reads as a slice of [`Effect`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Effects(smallvec::SmallVec<[Effect; 2]>);

impl Effects {
    /// No effect.
    pub fn new() -> Self {
        Effects::default()
    }

    /// Adds `effect` after the others.
    pub fn push(&mut self, effect: Effect) {
        self.0.push(effect);
    }
}

impl Extend<Effect> for Effects {
    fn extend<I: IntoIterator<Item = Effect>>(&mut self, effects: I) {
        self.0.extend(effects);
    }
}

impl<const N: usize> From<[Effect; N]> for Effects {
    fn from(effects: [Effect; N]) -> Self {
        Effects(effects.into_iter().collect())
    }
}

impl std::ops::Deref for Effects {
    type Target = [Effect];
    fn deref(&self) -> &[Effect] {
        &self.0
    }
}

impl IntoIterator for Effects {
    type Item = Effect;
    type IntoIter = smallvec::IntoIter<[Effect; 2]>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl<const N: usize> PartialEq<[Effect; N]> for Effects {
    fn eq(&self, other: &[Effect; N]) -> bool {
        self.0[..] == other[..]
    }
}

impl PartialEq<Vec<Effect>> for Effects {
    fn eq(&self, other: &Vec<Effect>) -> bool {
        self.0[..] == other[..]
    }
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
///
/// A key in the element's transaction table is also held by the timer index, so it is one
/// shared string: a clone costs no allocation. (A completed non-INVITE transaction over UDP
/// keeps a copy of the text instead, in `completed.rs`.)
/// The text is `1` then branch, sent-by and method separated by NUL (RFC 3261), or `2` then
/// the RFC 2543 fields. NUL sorts below every byte the fields hold (tokens and host names),
/// so keys order as the tuple of their fields would, RFC 3261 keys first.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TxKey(Arc<str>);

/// Starts the text of an RFC 3261 key.
const RFC3261: &str = "1";
/// Starts the text of an RFC 2543 key.
const RFC2543: &str = "2";
/// Separates the fields of an RFC 3261 key.
const SEPARATOR: &str = "\0";
/// [`SEPARATOR`] as a char, to split keys with: a `&str` pattern sets up a substring
/// searcher on every call, and the proxy reads the branch of every request it forwards.
const SEPARATOR_CHAR: char = '\0';
const _: () = assert!(SEPARATOR.len() == 1 && SEPARATOR.as_bytes()[0] == SEPARATOR_CHAR as u8);

impl TxKey {
    /// The key of a request, `None` when it lacks what matching needs (no Via).
    pub fn of_request(msg: &Message) -> Option<TxKey> {
        let via = msg.top_via()?;
        let method = match msg.method()?.as_str() {
            "ACK" => "INVITE",
            m => m,
        };
        match msg.top_via_branch() {
            Some(b) if b.starts_with(MAGIC_COOKIE) && b.len() > MAGIC_COOKIE.len() => {
                let mut digits = [0; 20];
                let port =
                    crate::message::decimal(u64::from(via.port.unwrap_or(5060)), &mut digits);
                Some(TxKey::rfc3261_sent_by(b, via.host, port, method))
            }
            _ => {
                let to_tag = msg.to_tag();
                let from_tag = msg.from_tag();
                let cseq = msg.cseq().map(|c| c.seq).unwrap_or(0);
                Some(TxKey(Arc::from(format!(
                    "{RFC2543}{}\n{}\n{}\n{}\n{}\n{}\n{}",
                    msg.request_uri().unwrap_or(""),
                    to_tag.unwrap_or_default(),
                    from_tag.unwrap_or_default(),
                    msg.call_id().unwrap_or(""),
                    cseq,
                    via.raw,
                    method
                ))))
            }
        }
    }

    /// An RFC 3261 key: the branch (compared case-sensitively), the top Via sent-by as
    /// `host:port` with the host lower-cased, and the method.
    fn rfc3261(branch: &str, sent_by: &str, method: &str) -> TxKey {
        TxKey(joined(
            [RFC3261, branch, SEPARATOR, sent_by, SEPARATOR, method].into_iter(),
            None,
        ))
    }

    /// [`TxKey::rfc3261`] with the sent-by in its two parts, `host` as written: it is
    /// lower-cased here, in the key's own text, which is built once for every request.
    fn rfc3261_sent_by(branch: &str, host: &str, port: &str, method: &str) -> TxKey {
        let parts = [
            RFC3261, branch, SEPARATOR, host, ":", port, SEPARATOR, method,
        ];
        TxKey(joined(parts.into_iter(), Some(3)))
    }

    /// The key's text, as the tables that store it outside a `TxKey` hash and compare it.
    pub(crate) fn text(&self) -> &str {
        &self.0
    }

    /// The RFC 3261 fields (branch, sent-by, method); `None` for an RFC 2543 key.
    pub fn rfc3261_fields(&self) -> Option<(&str, &str, &str)> {
        let mut fields = self.0.strip_prefix(RFC3261)?.split(SEPARATOR_CHAR);
        Some((fields.next()?, fields.next()?, fields.next()?))
    }

    /// The key of the transaction with the same branch and sent-by and another method: the
    /// INVITE a CANCEL names (§9.2). An RFC 2543 key stays as it is.
    pub fn with_method(&self, method: &str) -> TxKey {
        match self.rfc3261_fields() {
            Some((branch, sent_by, _)) => TxKey::rfc3261(branch, sent_by, method),
            None => self.clone(),
        }
    }
}

/// Identifies a client transaction (RFC 3261 §17.1.3): the branch of the top Via the
/// transaction put in its request, and the CSeq method.
///
/// Like [`TxKey`], one shared string (branch, NUL, method) for the map and the timer index,
/// ordered as the pair of its fields.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ClientKey(Arc<str>);

impl ClientKey {
    /// The key of a transaction whose request has `branch` and CSeq `method`.
    pub fn new(branch: &str, method: &str) -> ClientKey {
        ClientKey::of_parts(&[branch], method)
    }

    /// [`ClientKey::new`] with the branch in parts, put together in the key's own text: the
    /// key is then the only copy of a branch the proxy builds ([`ClientKey::branch`]).
    pub(crate) fn of_parts(branch: &[&str], method: &str) -> ClientKey {
        ClientKey(joined(
            branch.iter().copied().chain([SEPARATOR, method]),
            None,
        ))
    }

    /// `f` given the text of the key of `branch` and `method`, put together on the stack: a
    /// table keyed by `ClientKey` is looked up with it ([`Borrow<str>`]) without building a
    /// key, as every response is matched (§17.1.3).
    pub(crate) fn with_text<R>(branch: &str, method: &str, f: impl FnOnce(&str) -> R) -> R {
        with_joined([branch, SEPARATOR, method].into_iter(), None, f)
    }

    /// The branch.
    pub fn branch(&self) -> &str {
        self.0.split(SEPARATOR_CHAR).next().unwrap_or("")
    }

    /// The key of the transaction on the same branch with another method: the CANCEL of an
    /// INVITE (§9.1: "the same ... branch" as the request it cancels).
    pub fn with_method(&self, method: &str) -> ClientKey {
        ClientKey::new(self.branch(), method)
    }
}

/// Keys up to this many bytes are put together on the stack, so that the shared string is
/// the only allocation (a branch, a sent-by and a method are far shorter).
const KEY_INLINE: usize = 256;

/// The shared text of a key: `parts` in order, the one at `lower` lower-cased. One
/// allocation, where building a `String` and converting it took two.
fn joined<'a>(parts: impl Iterator<Item = &'a str> + Clone, lower: Option<usize>) -> Arc<str> {
    with_joined(parts, lower, |text| Arc::from(text))
}

/// `f` given `parts` in order, the one at `lower` lower-cased, put together on the stack
/// when they fit in [`KEY_INLINE`] bytes.
fn with_joined<'a, R>(
    parts: impl Iterator<Item = &'a str> + Clone,
    lower: Option<usize>,
    f: impl FnOnce(&str) -> R,
) -> R {
    let len: usize = parts.clone().map(str::len).sum();
    if len > KEY_INLINE {
        let mut text = String::with_capacity(len);
        for (i, part) in parts.enumerate() {
            let at = text.len();
            text.push_str(part);
            if lower == Some(i) {
                text[at..].make_ascii_lowercase();
            }
        }
        return f(&text);
    }
    let mut buf = [0u8; KEY_INLINE];
    let mut at = 0;
    for (i, part) in parts.enumerate() {
        let field = &mut buf[at..at + part.len()];
        field.copy_from_slice(part.as_bytes());
        if lower == Some(i) {
            field.make_ascii_lowercase();
        }
        at += part.len();
    }
    // Whole UTF-8 texts, and ASCII lower-casing keeps them so: the check cannot fail.
    match std::str::from_utf8(&buf[..len]) {
        Ok(text) => f(text),
        Err(_) => f(&String::from_utf8_lossy(&buf[..len])),
    }
}

/// A `ClientKey` hashes and compares as its text (the derived `Hash` of a one-field struct
/// is its field's, and `Arc<str>`'s is the `str`'s), so a table of them can be looked up
/// with a `&str` ([`ClientKey::with_text`]).
impl std::borrow::Borrow<str> for ClientKey {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ClientKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut fields = self.0.split(SEPARATOR_CHAR);
        f.debug_tuple("ClientKey")
            .field(&fields.next().unwrap_or(""))
            .field(&fields.next().unwrap_or(""))
            .finish()
    }
}

impl fmt::Debug for TxKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.rfc3261_fields() {
            Some((branch, sent_by, method)) => f
                .debug_struct("Rfc3261")
                .field("branch", &branch)
                .field("sent_by", &sent_by)
                .field("method", &method)
                .finish(),
            None => f
                .debug_struct("Rfc2543")
                .field("fields", &self.0.get(1..).unwrap_or(""))
                .finish(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::Limits;

    fn key(request: &str) -> TxKey {
        TxKey::of_request(&Message::parse(request.as_bytes(), &Limits::default()).unwrap()).unwrap()
    }

    /// A response finds its client transaction by the key's text alone; a key longer than
    /// the stack buffer takes the other way and must find it too.
    #[test]
    fn a_client_key_is_found_by_its_text() {
        let mut table = crate::keymap::KeyMap::with_seed(3);
        let long = format!("z9hG4bK{}", "x".repeat(KEY_INLINE));
        for (i, branch) in ["z9hG4bKa.1", long.as_str()].into_iter().enumerate() {
            table.insert(ClientKey::new(branch, "INVITE"), i);
            let found = ClientKey::with_text(branch, "INVITE", |t| {
                table.get_key_value(t).map(|(k, v)| (k.clone(), *v))
            });
            assert_eq!(found, Some((ClientKey::new(branch, "INVITE"), i)));
            assert_eq!(
                ClientKey::with_text(branch, "CANCEL", |t| table.get(t)),
                None
            );
        }
    }

    fn request(method: &str, branch: &str, host: &str) -> String {
        format!(
            "{method} sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/UDP {host};branch={branch}\r\n\
             Max-Forwards: 70\r\nFrom: <sip:a@example.com>;tag=1\r\nTo: <sip:bob@example.com>\r\n\
             Call-ID: c\r\nCSeq: 1 {method}\r\nContent-Length: 0\r\n\r\n"
        )
    }

    #[test]
    fn rfc3261_key_is_branch_sent_by_and_method_with_ack_as_invite() {
        let invite = key(&request("INVITE", "z9hG4bKab", "PC.Example.com"));
        assert_eq!(
            invite.rfc3261_fields(),
            Some(("z9hG4bKab", "pc.example.com:5060", "INVITE"))
        );
        assert_eq!(
            key(&request("ACK", "z9hG4bKab", "pc.example.com:5060")),
            invite
        );
        let cancel = key(&request("CANCEL", "z9hG4bKab", "pc.example.com"));
        assert_ne!(cancel, invite);
        assert_eq!(cancel.with_method("INVITE"), invite);
        assert_ne!(
            key(&request("INVITE", "z9hG4bKAB", "pc.example.com")),
            invite
        );
    }

    #[test]
    fn keys_order_as_their_fields_do() {
        // A branch that is a prefix of another sorts first, whatever follows it.
        let short = key(&request("INVITE", "z9hG4bKa", "z.example.com"));
        let long = key(&request("INVITE", "z9hG4bKa0", "a.example.com"));
        assert!(short < long);
        let rfc2543 = key(&request("INVITE", "old", "a.example.com"));
        assert_eq!(rfc2543.rfc3261_fields(), None);
        assert!(long < rfc2543);
        assert_eq!(rfc2543.with_method("INVITE"), rfc2543);
    }

    #[test]
    fn client_keys_order_as_branch_then_method() {
        let invite = ClientKey::new("z9hG4bKa", "INVITE");
        assert_eq!(invite.branch(), "z9hG4bKa");
        assert_eq!(
            invite.with_method("CANCEL"),
            ClientKey::new("z9hG4bKa", "CANCEL")
        );
        assert!(invite.with_method("CANCEL") < invite);
        assert!(invite < ClientKey::new("z9hG4bKa0", "ACK"));
    }
}
