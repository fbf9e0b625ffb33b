//! RFC 3261 §16: the transaction-stateful proxy. Request processing (§16.3 validation,
//! §16.4 route preprocessing, §16.5 target set, §16.6 forwarding), response processing
//! (§16.7), Timer C (§16.8) and CANCEL (§16.10). The element ([`crate::Proxy`]) owns the
//! state; this module is the part of its behaviour that §16 describes.

pub mod context;
pub mod dns;
mod redirect;
mod request;
mod response;
pub mod route;

use std::collections::VecDeque;
use std::net::SocketAddr;

use crate::message::Message;
use crate::time::Instant;

pub(crate) use context::branch_mut;
pub use context::{best, Branch, BranchState, Candidate};
pub use route::Locator;

/// Identifies a response context.
pub type ContextId = u64;

/// Where one forwarded copy of a request goes (§16.5, §16.6).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// The Request-URI it gets.
    pub uri: String,
    /// Where it is sent: the first Route, or the Request-URI itself, resolved.
    pub next_hop: SocketAddr,
    /// q-value in thousandths (1000 when absent), for serial forking by q groups.
    pub q: u16,
    /// How to reach it: TCP when the URI asks for it (`;transport=tcp`, RFC 3263 §4.1) or
    /// the binding was registered over TCP (its connection is reused, RFC 5626 §5.3).
    pub transport: crate::Transport,
    /// When its next hop is a name still to be looked up (RFC 3263): the question. The
    /// branch is created when the answer comes; `next_hop` means nothing until then.
    pub lookup: Option<crate::Query>,
}

/// RFC 3261 §16.7: what the proxy remembers about one request it forwarded.
#[derive(Debug)]
pub struct ResponseContext {
    /// The request as received (responses the proxy builds itself copy it, §8.2.6).
    pub request: Message,
    /// Where the request came in, for the responses the proxy sends upstream.
    pub upstream: crate::transaction::TxKey,
    /// Whether the request is an INVITE (Timer C, CANCEL, 2xx handling differ).
    pub invite: bool,
    /// Branches in the order they were created; nearly every request has one, kept in the
    /// context itself.
    pub branches: smallvec::SmallVec<[Branch; 1]>,
    /// q-value groups not tried yet (serial forking, §16.6 and RFC 3261 §16.6 "q" ordering).
    pub later: VecDeque<Vec<Target>>,
    /// Final responses kept for §16.7 step 6.
    pub candidates: Vec<Candidate>,
    /// A final response has gone upstream (a 2xx, or the best response).
    pub final_sent: bool,
    /// The request was CANCELled (§16.10): no new branches.
    pub cancelled: bool,
    /// When the context was made.
    pub created: Instant,
    /// The loop-detection hash of the request (§16.6 step 8), the stem of every branch.
    pub hash: LoopHash,
    /// §16.4 edits to repeat on every branch: (pop first Route, pop last Route).
    pub routing_pop: (bool, bool),
    /// Whether branches carry this proxy's Record-Route.
    pub record_route: bool,
    /// Header lines of the request this proxy consumed (its own Proxy-Authorization).
    pub consumed: Vec<std::ops::Range<usize>>,
    /// The address the request arrived on (branches leave from it).
    pub local: SocketAddr,
    /// The address it came from.
    pub remote: SocketAddr,
    /// Targets waiting for a DNS answer before their branch exists (RFC 3263).
    pub lookups: usize,
}

impl ResponseContext {
    /// Whether every branch has a final answer and no q group is left to try.
    pub fn all_done(&self) -> bool {
        self.later.is_empty() && self.lookups == 0 && self.branches.iter().all(Branch::is_done)
    }
}

/// RFC 3261 §16.6 step 8: the loop-detection part of the branch, a hash of the fields that
/// a loop leaves unchanged and a spiral changes (Request-URI, tags, Call-ID, CSeq,
/// Proxy-Require, Proxy-Authorization). FNV-1a, 64 bits, salted per element so two elements
/// never produce the same value for one request.
pub fn loop_hash(msg: &Message, salt: u64) -> LoopHash {
    use crate::message::HeaderName as H;
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ salt;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut feed = |s: &str| {
        for b in s.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(PRIME);
        }
        // Each field ends with a 0 octet (so "ab","c" and "a","bc" differ); xor with 0 is
        // nothing, the multiplication remains.
        h = h.wrapping_mul(PRIME);
    };
    feed(msg.request_uri().unwrap_or(""));
    feed(msg.to_tag().unwrap_or(""));
    feed(msg.from_tag().unwrap_or(""));
    feed(msg.call_id().unwrap_or(""));
    if let Some(c) = msg.cseq() {
        feed(crate::message::decimal(u64::from(c.seq), &mut [0; 20]));
        feed(c.method);
    }
    for v in msg.values(&H::ProxyRequire) {
        feed(v);
    }
    for v in msg.values(&H::ProxyAuthorization) {
        feed(v);
    }
    // `{h:016x}` without the formatting machinery: this runs for every request proxied.
    let mut hex = [0; LOOP_HASH_LEN];
    crate::auth::hex_into(&h.to_be_bytes(), &mut hex);
    LoopHash(hex)
}

/// A [`loop_hash`]: 16 lower-case hex digits, kept inline (one per proxied request).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LoopHash([u8; LOOP_HASH_LEN]);

/// Digits in a [`LoopHash`]: it follows the magic cookie in every branch this element
/// writes, where loop detection and the worker tag read it.
pub(crate) const LOOP_HASH_LEN: usize = 16;

impl LoopHash {
    /// The digits.
    pub fn as_str(&self) -> &str {
        // Hex digits are ASCII: the check cannot fail.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}
