//! Forwarding by splicing, never by re-serialising (Kamailio's lumps): a proxy describes
//! its changes to a received message as edits over byte ranges, and one copy pass writes
//! the new message. Untouched bytes stay exactly as they arrived.
//!
//! Also here: the requests a proxy or UAC builds from one it sent: CANCEL (RFC 3261 §9.1)
//! and the ACK for a non-2xx final response (§17.1.1.3).

use smallvec::SmallVec;
use std::ops::Range;

use super::build::Sink;

use super::build::line;
use super::{HeaderName, Message};

/// The changes RFC 3261 §16.6 makes to a request it forwards.
#[derive(Clone, Debug, Default)]
pub struct RequestEdits<'a> {
    /// Step 2: the new Request-URI.
    pub request_uri: Option<&'a str>,
    /// Step 3: the new Max-Forwards value (the header is added when absent).
    pub max_forwards: Option<u32>,
    /// Step 4: a Record-Route value inserted before any existing one.
    pub record_route: Option<&'a str>,
    /// §16.4 / §16.12: remove the first Route value (it named this proxy).
    pub pop_route: bool,
    /// §16.4: remove the last Route value. When the previous hop was a strict router, the
    /// Request-URI names this proxy and the real one travels as the last Route value; the
    /// proxy moves it back into the Request-URI and removes it from Route.
    pub pop_last_route: bool,
    /// Step 8: the Via value pushed on top.
    pub via: Option<&'a str>,
    /// Whole header lines to delete (ranges from [`super::Header::line_range`]), e.g. the
    /// Proxy-Authorization a proxy consumed (RFC 3261 §22.3).
    pub remove_lines: &'a [Range<usize>],
    /// §18.2.1: the `received` the server transport notes on the top Via (an old one is
    /// replaced).
    pub received: Option<std::net::IpAddr>,
    /// RFC 3581 §4: the source port, written into the top Via's valueless `rport`.
    pub rport: Option<u16>,
}

/// A splice: replace `range` of the original with `with`, a span of [`Splices::text`].
struct Splice {
    range: Range<usize>,
    with: Range<usize>,
}

/// The edits to one message. The text they insert shares one buffer, so that an edit costs
/// no allocation of its own; the list and the text stay on the stack while they are as
/// short as a proxy's edits are (a Via, a Record-Route, Max-Forwards, `received`): the
/// forwarded copy is the only allocation.
struct Splices {
    list: SmallVec<[Splice; 8]>,
    text: SmallVec<[u8; 256]>,
}

impl Splices {
    fn new() -> Splices {
        Splices {
            list: SmallVec::new(),
            text: SmallVec::new(),
        }
    }

    /// Replaces `range` of the original with what `write` appends.
    fn push(&mut self, range: Range<usize>, write: impl FnOnce(&mut SmallVec<[u8; 256]>)) {
        let start = self.text.len();
        write(&mut self.text);
        self.list.push(Splice {
            range,
            with: start..self.text.len(),
        });
    }

    /// Deletes `range` of the original.
    fn delete(&mut self, range: Range<usize>) {
        self.push(range, |_| {});
    }

    /// The original with every splice applied, in one copy pass.
    fn apply(&mut self, original: &[u8]) -> Vec<u8> {
        // Stable sort keeps insertions at one point in the order they were pushed.
        self.list.sort_by_key(|s| s.range.start);
        let mut out = Vec::with_capacity(original.len() + self.text.len());
        let mut at = 0;
        for s in &self.list {
            if s.range.start < at {
                // Overlapping edits cannot be produced by this module; skip rather than panic.
                continue;
            }
            out.extend_from_slice(original.get(at..s.range.start).unwrap_or(&[]));
            out.extend_from_slice(self.text.get(s.with.clone()).unwrap_or(&[]));
            at = s.range.end;
        }
        out.extend_from_slice(original.get(at..).unwrap_or(&[]));
        out
    }
}

impl Message {
    /// Offset of `s`, a slice of this message's head, in [`Message::as_bytes`].
    fn offset_of(&self, s: &str) -> Option<usize> {
        super::parsed::offset_in(self.text(), s)
    }

    /// The range to delete to remove the first (or last) value of header `name`: the whole
    /// line when it holds one value, else that value and its comma.
    fn value_removal(&self, name: &HeaderName, last: bool) -> Option<Range<usize>> {
        let mut lines = self.headers().iter().filter(|h| h.name == *name);
        let line = if last {
            lines.next_back()?
        } else {
            lines.next()?
        };
        // The values of the line, empty ones skipped: the first two, or the last two.
        let mut values = [None::<&str>; 2];
        let mut count = 0;
        let mut rest = Some(line.value(self));
        while let Some(r) = rest {
            let (v, next) = super::header::split_list(r);
            if !v.is_empty() {
                count += 1;
                if last {
                    values = [values[1], Some(v)];
                } else if count <= 2 {
                    values[count - 1] = Some(v);
                }
            }
            rest = next;
        }
        if count <= 1 {
            return Some(line.line_range());
        }
        let [a, b] = values;
        let (a, b) = (a?, b?);
        if last {
            // From the end of the previous value (its comma included) to the end of this one.
            let start = self.offset_of(a)? + a.len();
            let end = self.offset_of(b)? + b.len();
            Some(start..end)
        } else {
            Some(self.offset_of(a)?..self.offset_of(b)?)
        }
    }

    /// Where a new header line goes so that it comes before every line of `name`; the first
    /// header line when there is none.
    fn before_first(&self, name: &HeaderName) -> usize {
        let headers = self.headers();
        headers
            .iter()
            .find(|h| h.name == *name)
            .or(headers.first())
            .map(|h| h.line_range().start)
            .unwrap_or(self.body.start)
    }

    /// RFC 3261 §16.6: the request as this proxy forwards it.
    pub fn forward_request(&self, e: &RequestEdits<'_>) -> Vec<u8> {
        let mut splices = Splices::new();
        if let (Some(uri), Some(range)) = (e.request_uri, self.request_uri_range()) {
            splices.push(range, |out| out.put(uri.as_bytes()));
        }
        if let Some(via) = e.via {
            let at = self.before_first(&HeaderName::Via);
            splices.push(at..at, |out| line(out, "Via", via));
        }
        if e.received.is_some() || e.rport.is_some() {
            if let Some(v) = self.values(&HeaderName::Via).next() {
                if let Some(at) = self.offset_of(v) {
                    splices.push(at..at + v.len(), |out| {
                        super::build::write_top_via_of(self, out, v, e.received, e.rport)
                    });
                }
            }
        }
        if let Some(rr) = e.record_route {
            let at = match self
                .headers()
                .iter()
                .find(|h| h.name == HeaderName::RecordRoute)
            {
                Some(h) => h.line_range().start,
                // None yet: right after the Vias, so the Via rows stay together.
                None => match self.headers().iter().rfind(|h| h.name == HeaderName::Via) {
                    Some(h) => h.line_range().end,
                    None => self.before_first(&HeaderName::Via),
                },
            };
            splices.push(at..at, |out| line(out, "Record-Route", rr));
        }
        if let Some(mf) = e.max_forwards {
            let digits = &mut [0; 20];
            let mf = super::decimal(u64::from(mf), digits);
            match self
                .headers()
                .iter()
                .find(|h| h.name == HeaderName::MaxForwards)
            {
                Some(h) => splices.push(h.value_range(), |out| out.put(mf.as_bytes())),
                None => {
                    let at = self.before_first(&HeaderName::Via);
                    splices.push(at..at, |out| line(out, "Max-Forwards", mf));
                }
            }
        }
        for r in e.remove_lines {
            splices.delete(r.clone());
        }
        if e.pop_route {
            if let Some(r) = self.value_removal(&HeaderName::Route, false) {
                splices.delete(r);
            }
        }
        if e.pop_last_route {
            if let Some(r) = self.value_removal(&HeaderName::Route, true) {
                splices.delete(r);
            }
        }
        splices.apply(self.as_bytes())
    }

    /// RFC 3261 §16.7 step 3: the response without its top Via value (this proxy's).
    pub fn without_top_via(&self) -> Vec<u8> {
        match self.value_removal(&HeaderName::Via, false) {
            Some(r) => {
                let mut splices = Splices::new();
                splices.delete(r);
                splices.apply(self.as_bytes())
            }
            None => self.as_bytes().to_vec(),
        }
    }

    fn request_uri_range(&self) -> Option<Range<usize>> {
        match &self.start {
            super::StartLine::Request { uri, .. } => Some(uri.clone()),
            super::StartLine::Response { .. } => None,
        }
    }

    /// The header lines of `name`, as written, each ending in CRLF.
    fn lines_of(&self, name: &HeaderName) -> String {
        let mut out = String::new();
        for h in self.headers().iter().filter(|h| h.name == *name) {
            out.push_str(name.as_str());
            out.push_str(": ");
            out.push_str(h.value(self));
            out.push_str("\r\n");
        }
        out
    }

    /// RFC 3261 §9.1: the CANCEL for this (INVITE) request: same Request-URI, Call-ID, To,
    /// From and CSeq number, a single Via equal to the request's top Via, the same Route.
    pub fn cancel(&self) -> Option<Vec<u8>> {
        self.derived_request("CANCEL", None)
    }

    /// RFC 3261 §17.1.1.3: the ACK for a non-2xx final `response` to this INVITE: like the
    /// CANCEL, but the To comes from the response (it carries the tag).
    pub fn ack_for(&self, response: &Message) -> Option<Vec<u8>> {
        let to = response.value(&HeaderName::To)?;
        self.derived_request("ACK", Some(to))
    }

    fn derived_request(&self, method: &str, to: Option<&str>) -> Option<Vec<u8>> {
        let uri = self.request_uri()?;
        let via = self.values(&HeaderName::Via).next()?;
        let from = self.value(&HeaderName::From)?;
        let to = match to {
            Some(t) => t,
            None => self.value(&HeaderName::To)?,
        };
        let call_id = self.call_id()?;
        let seq = self.cseq()?.seq;
        let text = format!(
            "{method} {uri} SIP/2.0\r\nVia: {via}\r\nMax-Forwards: 70\r\n{routes}From: {from}\r\n\
             To: {to}\r\nCall-ID: {call_id}\r\nCSeq: {seq} {method}\r\nContent-Length: 0\r\n\r\n",
            routes = self.lines_of(&HeaderName::Route),
        );
        Some(text.into_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::Limits;

    fn msg(text: &str) -> Message {
        let bytes = text.replace('\n', "\r\n");
        Message::parse(bytes.as_bytes(), &Limits::default()).unwrap()
    }

    fn text(b: Vec<u8>) -> String {
        String::from_utf8(b).unwrap().replace("\r\n", "\n")
    }

    const INVITE: &str = "INVITE sip:bob@biloxi.example.com SIP/2.0\n\
Via: SIP/2.0/TCP client.atlanta.example.com:5060;branch=z9hG4bK74bf9\n\
Max-Forwards: 70\n\
Route: <sip:ss1.atlanta.example.com;lr>, <sip:ss9.example.com;lr>\n\
From: Alice <sip:alice@atlanta.example.com>;tag=9fxced76sl\n\
To: Bob <sip:bob@biloxi.example.com>\n\
Call-ID: 3848276298220188511@atlanta.example.com\n\
CSeq: 1 INVITE\n\
Content-Type: application/sdp\n\
Content-Length: 5\n\
\n\
v=0\n";

    #[test]
    fn forwarding_splices_each_edit_and_keeps_every_other_byte() {
        let m = msg(INVITE);
        let out = m.forward_request(&RequestEdits {
            request_uri: Some("sip:bob@192.0.2.4"),
            max_forwards: Some(69),
            record_route: Some("<sip:ss1.atlanta.example.com;lr>"),
            pop_route: true,
            via: Some("SIP/2.0/UDP ss1.atlanta.example.com:5060;branch=z9hG4bK2d4790.1"),
            received: Some("192.0.2.101".parse().unwrap()),
            ..Default::default()
        });
        assert_eq!(
            text(out),
            "INVITE sip:bob@192.0.2.4 SIP/2.0\n\
Via: SIP/2.0/UDP ss1.atlanta.example.com:5060;branch=z9hG4bK2d4790.1\n\
Via: SIP/2.0/TCP client.atlanta.example.com:5060;branch=z9hG4bK74bf9;received=192.0.2.101\n\
Record-Route: <sip:ss1.atlanta.example.com;lr>\n\
Max-Forwards: 69\n\
Route: <sip:ss9.example.com;lr>\n\
From: Alice <sip:alice@atlanta.example.com>;tag=9fxced76sl\n\
To: Bob <sip:bob@biloxi.example.com>\n\
Call-ID: 3848276298220188511@atlanta.example.com\n\
CSeq: 1 INVITE\n\
Content-Type: application/sdp\n\
Content-Length: 5\n\
\n\
v=0\n"
        );
    }

    #[test]
    fn the_top_via_gets_its_rport_filled_and_an_old_received_replaced() {
        // RFC 3581 §4: the valueless rport takes the source port where it stands; §18.2.1:
        // one `received`, the address the request really came from. The second Via value
        // on the same line is untouched.
        let m = msg("MESSAGE sip:b@h SIP/2.0\nVia: SIP/2.0/UDP 127.0.0.1:5070;rport;received=10.0.0.1;branch=z9hG4bK1, SIP/2.0/UDP c;branch=z9hG4bK0\nCall-ID: x\n\n");
        let out = m.forward_request(&RequestEdits {
            received: Some("192.0.2.10".parse().unwrap()),
            rport: Some(5060),
            ..Default::default()
        });
        assert_eq!(
            text(out),
            "MESSAGE sip:b@h SIP/2.0\nVia: SIP/2.0/UDP 127.0.0.1:5070;rport=5060;branch=z9hG4bK1;received=192.0.2.10, SIP/2.0/UDP c;branch=z9hG4bK0\nCall-ID: x\n\n"
        );
    }

    #[test]
    fn popping_the_only_route_value_removes_the_line_and_max_forwards_is_added_when_absent() {
        let m = msg("OPTIONS sip:b@h SIP/2.0\nVia: SIP/2.0/UDP a;branch=z9hG4bK1\nRoute: <sip:p;lr>\nCall-ID: x\n\n");
        let out = m.forward_request(&RequestEdits {
            pop_route: true,
            max_forwards: Some(70),
            ..Default::default()
        });
        assert_eq!(
            text(out),
            "OPTIONS sip:b@h SIP/2.0\nMax-Forwards: 70\nVia: SIP/2.0/UDP a;branch=z9hG4bK1\nCall-ID: x\n\n"
        );
    }

    // Found by the `parse` fuzz target: a datagram that ends after its last header, without
    // the empty line, had the Record-Route glued onto its last header value.
    #[test]
    fn a_datagram_without_the_empty_line_forwards_with_whole_lines() {
        for end in ["", "\r", "\n"] {
            let m = msg(&format!(
                "INVITE sip:b@h SIP/2.0\nCall-ID: x\nVia: SIP/2.0/UDP a;branch=z9hG4bK1{end}"
            ));
            let out = m.forward_request(&RequestEdits {
                record_route: Some("<sip:p;lr>"),
                via: Some("SIP/2.0/UDP p;branch=z9hG4bK2"),
                received: Some("192.0.2.10".parse().unwrap()),
                ..Default::default()
            });
            assert_eq!(
                text(out),
                "INVITE sip:b@h SIP/2.0\nCall-ID: x\nVia: SIP/2.0/UDP p;branch=z9hG4bK2\nVia: SIP/2.0/UDP a;branch=z9hG4bK1;received=192.0.2.10\nRecord-Route: <sip:p;lr>\n\n",
                "ending {end:?}"
            );
        }
    }

    #[test]
    fn the_last_route_value_can_be_popped_for_strict_routing() {
        let m = msg("INVITE sip:p SIP/2.0\nVia: SIP/2.0/UDP a;branch=z9hG4bK1\nRoute: <sip:x>, <sip:bob@h>\nCall-ID: x\n\n");
        let out = m.forward_request(&RequestEdits {
            request_uri: Some("sip:bob@h"),
            pop_last_route: true,
            ..Default::default()
        });
        assert_eq!(
            text(out),
            "INVITE sip:bob@h SIP/2.0\nVia: SIP/2.0/UDP a;branch=z9hG4bK1\nRoute: <sip:x>\nCall-ID: x\n\n"
        );
    }

    #[test]
    fn first_and_last_values_come_off_a_longer_list_and_only_from_their_own_line() {
        let m = msg("INVITE sip:p SIP/2.0\nVia: SIP/2.0/UDP a;branch=z9hG4bK1\nRoute: <sip:w>, ,<sip:x>\nRoute: <sip:y>, <sip:z>, , <sip:bob@h>\nCall-ID: x\n\n");
        let out = m.forward_request(&RequestEdits {
            pop_route: true,
            pop_last_route: true,
            ..Default::default()
        });
        assert_eq!(
            text(out),
            "INVITE sip:p SIP/2.0\nVia: SIP/2.0/UDP a;branch=z9hG4bK1\nRoute: <sip:x>\nRoute: <sip:y>, <sip:z>\nCall-ID: x\n\n"
        );
    }

    #[test]
    fn a_response_loses_only_its_top_via_value() {
        let one_line = msg("SIP/2.0 180 Ringing\nVia: SIP/2.0/UDP p1;branch=z9hG4bK2, SIP/2.0/UDP a;branch=z9hG4bK1\nCall-ID: x\n\n");
        assert_eq!(
            text(one_line.without_top_via()),
            "SIP/2.0 180 Ringing\nVia: SIP/2.0/UDP a;branch=z9hG4bK1\nCall-ID: x\n\n"
        );
        let two_lines = msg("SIP/2.0 180 Ringing\nVia: SIP/2.0/UDP p1;branch=z9hG4bK2\nVia: SIP/2.0/UDP a;branch=z9hG4bK1\nCall-ID: x\n\n");
        assert_eq!(
            text(two_lines.without_top_via()),
            "SIP/2.0 180 Ringing\nVia: SIP/2.0/UDP a;branch=z9hG4bK1\nCall-ID: x\n\n"
        );
    }

    #[test]
    fn cancel_and_ack_follow_rfc3261_9_1_and_17_1_1_3() {
        let m = msg(INVITE);
        assert_eq!(
            text(m.cancel().unwrap()),
            "CANCEL sip:bob@biloxi.example.com SIP/2.0\n\
Via: SIP/2.0/TCP client.atlanta.example.com:5060;branch=z9hG4bK74bf9\n\
Max-Forwards: 70\n\
Route: <sip:ss1.atlanta.example.com;lr>, <sip:ss9.example.com;lr>\n\
From: Alice <sip:alice@atlanta.example.com>;tag=9fxced76sl\n\
To: Bob <sip:bob@biloxi.example.com>\n\
Call-ID: 3848276298220188511@atlanta.example.com\n\
CSeq: 1 CANCEL\n\
Content-Length: 0\n\n"
        );
        let busy = msg("SIP/2.0 486 Busy Here\nVia: SIP/2.0/TCP client.atlanta.example.com:5060;branch=z9hG4bK74bf9\n\
From: Alice <sip:alice@atlanta.example.com>;tag=9fxced76sl\nTo: Bob <sip:bob@biloxi.example.com>;tag=314159\n\
Call-ID: 3848276298220188511@atlanta.example.com\nCSeq: 1 INVITE\nContent-Length: 0\n\n");
        let ack = text(m.ack_for(&busy).unwrap());
        assert!(ack.starts_with("ACK sip:bob@biloxi.example.com SIP/2.0\n"));
        assert!(ack.contains("\nTo: Bob <sip:bob@biloxi.example.com>;tag=314159\n"));
        assert!(ack.contains("\nCSeq: 1 ACK\n"));
    }
}
