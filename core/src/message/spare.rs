//! Buffers of messages the element is done with, for the next parse to fill: a relayed
//! response, an answered REGISTER or a request whose response context has ended gives back
//! its bytes, its header list and its parse cache, and the next datagram is parsed into
//! them. In the steady state a message then costs the parser no allocation.
//!
//! Bounded (TigerBeetle's "a limit on everything"): a few buffers of each kind, none larger
//! than a typical message; a larger one is freed, and a parse with none spare allocates as
//! `Message::parse` does.

use super::parsed::Parsed;
use super::{Header, Message, Storage};

/// Spare buffers of each kind kept at most: a message is parsed, handled and given back
/// before the next one, and a call keeps one request in its context meanwhile.
const SPARE_MAX: usize = 8;

/// Largest message buffer kept (bytes of capacity): an INVITE with a long SDP body fits;
/// a rare 60 kB datagram does not stay allocated for the element's life.
const SPARE_BYTES_MAX: usize = 8 * 1024;

/// Largest header list kept (entries): a list grows past its first 16 only for unusual
/// messages.
const SPARE_HEADERS_MAX: usize = 64;

/// See the module's doc.
#[derive(Debug, Default)]
pub struct Spare {
    bytes: Vec<Vec<u8>>,
    headers: Vec<Vec<Header>>,
    // A message's cache is a box ([`super::parsed::LazyParsed`]): kept boxed, it goes
    // back into the next message without an allocation.
    #[allow(clippy::vec_box)]
    parsed: Vec<Box<Parsed>>,
}

impl Spare {
    /// An empty buffer for a message's bytes.
    pub(crate) fn bytes(&mut self) -> Vec<u8> {
        self.bytes.pop().unwrap_or_default()
    }

    /// An empty header list, room for 16 at least.
    pub(crate) fn headers(&mut self) -> Vec<Header> {
        self.headers.pop().unwrap_or_else(|| Vec::with_capacity(16))
    }

    /// An empty parse cache, if one is spare.
    pub(crate) fn parsed(&mut self) -> Option<Box<Parsed>> {
        self.parsed.pop()
    }

    /// Takes `msg`'s buffers back, emptied, within the bounds above.
    pub fn recycle(&mut self, msg: Message) {
        let Message {
            storage,
            mut headers,
            parsed,
            ..
        } = msg;
        if let Storage::Text(text) = storage {
            let mut bytes = text.into_bytes();
            if bytes.capacity() <= SPARE_BYTES_MAX && self.bytes.len() < SPARE_MAX {
                bytes.clear();
                self.bytes.push(bytes);
            }
        }
        if headers.capacity() <= SPARE_HEADERS_MAX && self.headers.len() < SPARE_MAX {
            headers.clear();
            self.headers.push(headers);
        }
        if let Some(mut cache) = parsed.into_inner() {
            if self.parsed.len() < SPARE_MAX {
                *cache = Parsed::default();
                self.parsed.push(cache);
            }
        }
    }

    /// Buffers kept, of each kind (bytes, header lists, caches).
    #[cfg(test)]
    pub(crate) fn counts(&self) -> (usize, usize, usize) {
        (self.bytes.len(), self.headers.len(), self.parsed.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::Limits;

    fn request(user: &str, branch: &str, body: &str) -> String {
        format!(
            "INVITE sip:{user}@biloxi.example.com SIP/2.0\r\n\
             Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK{branch}\r\n\
             Max-Forwards: 70\r\nFrom: <sip:alice@atlanta.example.com>;tag=1928\r\n\
             To: <sip:{user}@biloxi.example.com>\r\nCall-ID: a84b4c76e66710\r\n\
             CSeq: 314159 INVITE\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
    }

    /// Everything the cache keeps, read through the views.
    fn views(m: &Message) -> String {
        format!(
            "{:?} {:?} {:?} {:?} {:?} {:?} {:?} {:?}",
            m.top_via(),
            m.from(),
            m.to(),
            m.request_uri_parsed(),
            m.from_uri(),
            m.to_uri(),
            m.top_via_branch(),
            m.to_tag(),
        )
    }

    /// A message parsed into a recycled one's buffers reads as one parsed afresh: nothing of
    /// the first (its bytes, its header lines, its cached views) shows through.
    #[test]
    fn a_message_parsed_into_recycled_buffers_is_the_fresh_parse() {
        let limits = Limits::default();
        let mut spare = Spare::default();
        let first =
            Message::parse(request("carol", "776asdhds", "v=0\r\n").as_bytes(), &limits).unwrap();
        // Fill the cache, so that a stale view would show.
        let _ = views(&first);
        spare.recycle(first);
        assert_eq!(spare.counts(), (1, 1, 1));

        let text = request("bob", "9", "");
        let reused = Message::parse_into(text.as_bytes(), &limits, &mut spare).unwrap();
        assert_eq!(spare.counts(), (0, 0, 0), "every buffer is taken");
        let fresh = Message::parse(text.as_bytes(), &limits).unwrap();
        assert_eq!(reused.as_bytes(), fresh.as_bytes());
        assert_eq!(reused.headers().len(), fresh.headers().len());
        assert_eq!(views(&reused), views(&fresh));
        assert!(views(&reused).contains("bob"), "{}", views(&reused));
    }

    /// The pool stays bounded: a large message's buffer is freed, and no more than
    /// `SPARE_MAX` of a kind are kept.
    #[test]
    fn only_bounded_buffers_are_kept() {
        let limits = Limits::default();
        let mut spare = Spare::default();
        let big = request("bob", "1", &"a=x\r\n".repeat(SPARE_BYTES_MAX / 4));
        spare.recycle(Message::parse(big.as_bytes(), &limits).unwrap());
        assert_eq!(spare.counts().0, 0);
        for i in 0..SPARE_MAX + 3 {
            let text = request("bob", &i.to_string(), "");
            spare.recycle(Message::parse(text.as_bytes(), &limits).unwrap());
        }
        assert_eq!(spare.counts().0, SPARE_MAX);
        assert_eq!(spare.counts().1, SPARE_MAX);
    }
}
