//! Building responses to a parsed request (RFC 3261 §8.2.6, §18.2.1; RFC 3581 §4).

use std::net::IpAddr;

use crate::message::{HeaderName, Message, Via};

/// RFC 3261 §8.2.6.2: builds a response to `req`.
///
/// Copies every Via value in order, each on its own line and as written, except that the top
/// one gets `received=` (§18.2.1) when `received` is `Some` (an existing `received` is
/// replaced) and its valueless `rport` filled in (RFC 3581 §4) when `rport` is `Some`. Then
/// From, To (with `;tag=TO_TAG` added when `to_tag` is `Some` and To has no tag), Call-ID,
/// CSeq; then the `extra` headers in order, each `Name: value` on its own line; then
/// Content-Length and the body. Headers missing from the request are left out (a request that
/// failed [`Message::validate`] can still be answered). Header names are the canonical long
/// forms. The status line uses `reason` as given ([`reason_phrase`] has the RFC's).
#[allow(clippy::too_many_arguments)] // The lead's fixed signature: every argument is a §8.2.6 input.
pub fn response(
    req: &Message,
    code: u16,
    reason: &str,
    to_tag: Option<&str>,
    received: Option<IpAddr>,
    rport: Option<u16>,
    extra: &[(&str, &str)],
    body: &[u8],
) -> Vec<u8> {
    let mut out = Vec::with_capacity(256 + req.as_bytes().len().min(2048) + body.len());
    out.extend_from_slice(b"SIP/2.0 ");
    out.extend_from_slice(super::decimal(u64::from(code), &mut [0; 20]).as_bytes());
    out.push(b' ');
    out.extend_from_slice(reason.as_bytes());
    out.extend_from_slice(b"\r\n");
    for (i, via) in req.values(&HeaderName::Via).enumerate() {
        out.extend_from_slice(b"Via: ");
        if i == 0 {
            write_top_via_of(req, &mut out, via, received, rport);
        } else {
            out.extend_from_slice(via.as_bytes());
        }
        out.extend_from_slice(b"\r\n");
    }
    if let Some(from) = req.value(&HeaderName::From) {
        line(&mut out, "From", from);
    }
    if let Some(to) = req.value(&HeaderName::To) {
        out.extend_from_slice(b"To: ");
        // An unparsable To (the request is being rejected) gets the tag too: §8.2.6.2
        // wants one on every response but 100.
        // `req.to()` is `to` parsed (and cached).
        match to_tag.filter(|_| req.to_tag().is_none()) {
            Some(tag) => {
                out.extend_from_slice(without_empty_param(to).as_bytes());
                out.extend_from_slice(b";tag=");
                out.extend_from_slice(tag.as_bytes());
            }
            None => out.extend_from_slice(to.as_bytes()),
        }
        out.extend_from_slice(b"\r\n");
    }
    if let Some(call_id) = req.value(&HeaderName::CallId) {
        line(&mut out, "Call-ID", call_id);
    }
    if let Some(cseq) = req.value(&HeaderName::CSeq) {
        line(&mut out, "CSeq", cseq);
    }
    for (name, value) in extra {
        line(&mut out, name, value);
    }
    let length = u64::try_from(body.len()).unwrap_or(u64::MAX);
    line(
        &mut out,
        "Content-Length",
        super::decimal(length, &mut [0; 20]),
    );
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
    out
}

/// Where header text is written: a message's own buffer, or the text an edit splices in,
/// which stays on the stack while it is short.
pub(crate) trait Sink: std::io::Write {
    /// Appends `bytes`.
    fn put(&mut self, bytes: &[u8]);
    /// Appends one byte.
    fn put_byte(&mut self, byte: u8);
}

impl Sink for Vec<u8> {
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
    fn put_byte(&mut self, byte: u8) {
        self.push(byte);
    }
}

impl<A: smallvec::Array<Item = u8>> Sink for smallvec::SmallVec<A> {
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
    fn put_byte(&mut self, byte: u8) {
        self.push(byte);
    }
}

/// Appends the header line `name: value` CRLF.
pub(crate) fn line(out: &mut impl Sink, name: &str, value: &str) {
    out.put(name.as_bytes());
    out.put(b": ");
    out.put(value.as_bytes());
    out.put(b"\r\n");
}

/// `value` without the empty parameter a trailing `;` leaves (`host;`, `<sip:b@h>;`), which
/// a parameter appended after it would turn into the invalid `;;`.
fn without_empty_param(value: &str) -> &str {
    value.trim_end_matches([';', ' ', '\t'])
}

/// [`write_top_via`] for `raw`, the top Via value of `msg`: from what its parse cache knows of
/// the params when they hold no `received` and at most one `rport` (nearly every request),
/// else by walking them.
pub(crate) fn write_top_via_of(
    msg: &Message,
    out: &mut impl Sink,
    raw: &str,
    received: Option<IpAddr>,
    rport: Option<u16>,
) {
    // From the cache: `raw` split where `=port` goes, and the port, when one is owed.
    let split = msg.top_via_spans().filter(|v| v.plain).and_then(|v| {
        let base = super::parsed::offset_in(msg.text(), raw)?;
        match rport.zip(v.rport_fill_at()) {
            Some((port, at)) => Some((raw.split_at_checked(at.checked_sub(base)?)?, Some(port))),
            None => Some((("", raw), None)),
        }
    });
    let Some(((name, tail), port)) = split else {
        return write_top_via(out, raw, msg.top_via().as_ref(), received, rport);
    };
    out.put(name.as_bytes());
    if let Some(port) = port {
        out.put_byte(b'=');
        out.put(super::decimal(u64::from(port), &mut [0; 20]).as_bytes());
    }
    match received {
        Some(ip) => {
            out.put(without_empty_param(tail).as_bytes());
            write_received(out, ip);
        }
        None => out.put(tail.as_bytes()),
    }
}

/// Writes the top Via with §18.2.1 `received` and RFC 3581 `rport` filled in, keeping the rest
/// of its text as written. `via` is `raw` parsed ([`Message::top_via`]), `None` when it does
/// not parse.
pub(crate) fn write_top_via(
    out: &mut impl Sink,
    raw: &str,
    via: Option<&Via<'_>>,
    received: Option<IpAddr>,
    rport: Option<u16>,
) {
    let Some(via) = via else {
        // Nothing to edit safely: copy, and still say where the request came from.
        match received {
            Some(_) => out.put(without_empty_param(raw).as_bytes()),
            None => out.put(raw.as_bytes()),
        }
        if let Some(ip) = received {
            write_received(out, ip);
        }
        return;
    };
    // The params text is the tail of `raw` after the first `;`.
    let ptext = via.params.as_str();
    let poff = raw.len().saturating_sub(ptext.len());
    let mut copied = 0;
    for p in via.params.spans() {
        let (start, end) = (poff + p.start, poff + p.end);
        if received.is_some() && p.name.eq_ignore_ascii_case("received") {
            // Drop the old value with its `;` (the last `;` before the name) and the LWS
            // before that.
            let semi = raw
                .get(..start)
                .and_then(|s| s.rfind(';'))
                .and_then(|i| raw.get(..i))
                .map_or(start, |s| s.trim_end_matches([' ', '\t']).len());
            out.put(raw.get(copied..semi).unwrap_or("").as_bytes());
            copied = end;
        } else if p.value.is_none() && p.name.eq_ignore_ascii_case("rport") {
            if let Some(port) = rport {
                let name_end = start + p.name.len();
                out.put(raw.get(copied..name_end).unwrap_or("").as_bytes());
                out.put_byte(b'=');
                out.put(super::decimal(u64::from(port), &mut [0; 20]).as_bytes());
                copied = name_end;
            }
        }
    }
    let tail = raw.get(copied..).unwrap_or("");
    match received {
        Some(_) => out.put(without_empty_param(tail).as_bytes()),
        None => out.put(tail.as_bytes()),
    }
    if let Some(ip) = received {
        write_received(out, ip);
    }
}

/// `;received=` and the address (RFC 3261 §18.2.1), as `IpAddr`'s `Display` writes it:
/// RFC 5118 §4.5, an IPv6 `received` is written without brackets.
fn write_received(out: &mut impl Sink, ip: IpAddr) {
    out.put(b";received=");
    match ip {
        IpAddr::V4(v4) => out.put(super::dotted_quad(v4, &mut [0; 15]).as_bytes()),
        // Writing into memory cannot fail.
        IpAddr::V6(v6) => {
            let _ = write!(out, "{v6}");
        }
    }
}

/// RFC 3261 §21 default reason phrases (and those of the extensions the core may send);
/// `""` for a code without one.
pub fn reason_phrase(code: u16) -> &'static str {
    match code {
        100 => "Trying",
        180 => "Ringing",
        181 => "Call Is Being Forwarded",
        182 => "Queued",
        183 => "Session Progress",
        199 => "Early Dialog Terminated",
        200 => "OK",
        202 => "Accepted",
        204 => "No Notification",
        300 => "Multiple Choices",
        301 => "Moved Permanently",
        302 => "Moved Temporarily",
        305 => "Use Proxy",
        380 => "Alternative Service",
        400 => "Bad Request",
        401 => "Unauthorized",
        402 => "Payment Required",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        410 => "Gone",
        412 => "Conditional Request Failed",
        413 => "Request Entity Too Large",
        414 => "Request-URI Too Long",
        415 => "Unsupported Media Type",
        416 => "Unsupported URI Scheme",
        417 => "Unknown Resource-Priority",
        420 => "Bad Extension",
        421 => "Extension Required",
        422 => "Session Interval Too Small",
        423 => "Interval Too Brief",
        429 => "Provide Referrer Identity",
        430 => "Flow Failed",
        433 => "Anonymity Disallowed",
        439 => "First Hop Lacks Outbound Support",
        440 => "Max-Breadth Exceeded",
        470 => "Consent Needed",
        480 => "Temporarily Unavailable",
        481 => "Call/Transaction Does Not Exist",
        482 => "Loop Detected",
        483 => "Too Many Hops",
        484 => "Address Incomplete",
        485 => "Ambiguous",
        486 => "Busy Here",
        487 => "Request Terminated",
        488 => "Not Acceptable Here",
        489 => "Bad Event",
        491 => "Request Pending",
        493 => "Undecipherable",
        494 => "Security Agreement Required",
        500 => "Server Internal Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Server Time-out",
        505 => "Version Not Supported",
        513 => "Message Too Large",
        580 => "Precondition Failure",
        600 => "Busy Everywhere",
        603 => "Decline",
        604 => "Does Not Exist Anywhere",
        606 => "Not Acceptable",
        607 => "Unwanted",
        608 => "Rejected",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::Limits;

    fn msg(text: &str) -> Message {
        Message::parse(text.as_bytes(), &Limits::default()).unwrap()
    }

    const REGISTER: &str = "REGISTER sips:ss2.biloxi.example.com SIP/2.0\r\n\
        v: SIP/2.0/TLS client.biloxi.example.com:5061;branch=z9hG4bKnashds7;rport, SIP/2.0/UDP [2001:db8::1]:5060 ;branch=z9hG4bK2\r\n\
        Via: SIP/2.0/UDP p.example.com;received=10.0.0.1;branch=z9hG4bK3\r\n\
        Max-Forwards: 70\r\n\
        f: Bob <sips:bob@biloxi.example.com>;tag=a73kszlfl\r\n\
        t: Bob <sips:bob@biloxi.example.com>\r\n\
        i: 1j9FpLxk3uxtm8tn@biloxi.example.com\r\n\
        CSeq: 1 REGISTER\r\n\
        Contact: <sips:bob@client.biloxi.example.com>\r\n\
        l: 0\r\n\r\n";

    /// The top Via written from the parse cache is the one the walk of its params writes,
    /// for every shape of params, with and without `received` and `rport` to fill in.
    #[test]
    fn top_via_from_the_cache_is_the_walked_one() {
        let vias = [
            "SIP/2.0/UDP a.example.com;branch=z9hG4bK1;rport",
            "SIP/2.0/UDP a.example.com;rport;branch=z9hG4bK1",
            "SIP/2.0/UDP a.example.com:5070;branch=z9hG4bK1;rport=5080",
            "SIP/2.0/UDP a.example.com;branch=z9hG4bK1",
            "SIP/2.0/UDP a.example.com;branch=z9hG4bK1;",
            "SIP/2.0/UDP a.example.com;branch=z9hG4bK1 ; rport ;ttl=1",
            "SIP/2.0/UDP a.example.com ; RPORT;branch=z9hG4bK1",
            "SIP/2.0/UDP 192.0.2.1;received=192.0.2.9;branch=z9hG4bK1;rport",
            "SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1;rport;rport",
            "SIP/2.0/UDP [2001:db8::1];branch=z9hG4bK1;rport",
            "SIP/2.0/UDP a.example.com",
            "SIP/2.0/UDP a.example.com;branch=\"x;rport\";rport",
        ];
        let mut fast = 0;
        for via in vias {
            let req = msg(&REGISTER.replacen(
                "v: SIP/2.0/TLS client.biloxi.example.com:5061;branch=z9hG4bKnashds7;rport,",
                &format!("v: {via},"),
                1,
            ));
            let raw = req.values(&HeaderName::Via).next().unwrap();
            fast += usize::from(req.top_via_spans().unwrap().plain);
            for received in [None, Some("192.0.2.77".parse().unwrap())] {
                for rport in [None, Some(5099)] {
                    let (mut cached, mut walked) = (Vec::new(), Vec::new());
                    write_top_via_of(&req, &mut cached, raw, received, rport);
                    write_top_via(&mut walked, raw, req.top_via().as_ref(), received, rport);
                    assert_eq!(
                        String::from_utf8(cached).unwrap(),
                        String::from_utf8(walked).unwrap(),
                        "{via} {received:?} {rport:?}"
                    );
                }
            }
        }
        assert!(fast >= 8, "{fast} of the Vias took the cached path");
    }

    #[test]
    fn response_exact_bytes() {
        let req = msg(REGISTER);
        let ip: IpAddr = "192.0.2.201".parse().unwrap();
        let out = response(
            &req,
            401,
            reason_phrase(401),
            Some("1410948204"),
            Some(ip),
            Some(5061),
            &[(
                "WWW-Authenticate",
                "Digest realm=\"atlanta.example.com\", qop=\"auth\"",
            )],
            b"",
        );
        let expected = "SIP/2.0 401 Unauthorized\r\n\
            Via: SIP/2.0/TLS client.biloxi.example.com:5061;branch=z9hG4bKnashds7;rport=5061;received=192.0.2.201\r\n\
            Via: SIP/2.0/UDP [2001:db8::1]:5060 ;branch=z9hG4bK2\r\n\
            Via: SIP/2.0/UDP p.example.com;received=10.0.0.1;branch=z9hG4bK3\r\n\
            From: Bob <sips:bob@biloxi.example.com>;tag=a73kszlfl\r\n\
            To: Bob <sips:bob@biloxi.example.com>;tag=1410948204\r\n\
            Call-ID: 1j9FpLxk3uxtm8tn@biloxi.example.com\r\n\
            CSeq: 1 REGISTER\r\n\
            WWW-Authenticate: Digest realm=\"atlanta.example.com\", qop=\"auth\"\r\n\
            Content-Length: 0\r\n\r\n";
        assert_eq!(String::from_utf8_lossy(&out), expected);
        // And it parses back as a valid response.
        let back = Message::parse(&out, &Limits::default()).unwrap();
        assert_eq!(back.validate(), Ok(()));
        assert_eq!(back.status(), Some(401));
        assert_eq!(back.to().and_then(|t| t.tag()), Some("1410948204"));
    }

    #[test]
    fn existing_tag_and_received_are_not_duplicated() {
        let req = msg("OPTIONS sip:x@example.com SIP/2.0\r\n\
            Via: SIP/2.0/UDP [2001:db8::1] ; received=1.2.3.4 ;branch=z9hG4bKq\r\n\
            From: <sip:a@example.com>;tag=1\r\n\
            To: <sip:x@example.com>;tag=2\r\n\
            Call-ID: c\r\nCSeq: 7 OPTIONS\r\n\r\n");
        let ip: IpAddr = "2001:db8::1".parse().unwrap();
        let out = response(&req, 200, "OK", Some("zzz"), Some(ip), Some(1), &[], b"hi");
        let expected = "SIP/2.0 200 OK\r\n\
            Via: SIP/2.0/UDP [2001:db8::1] ;branch=z9hG4bKq;received=2001:db8::1\r\n\
            From: <sip:a@example.com>;tag=1\r\n\
            To: <sip:x@example.com>;tag=2\r\n\
            Call-ID: c\r\n\
            CSeq: 7 OPTIONS\r\n\
            Content-Length: 2\r\n\r\nhi";
        assert_eq!(String::from_utf8_lossy(&out), expected);
    }

    // Found by the `parse` fuzz target: a Via (or To) ending in `;` passes validation, and
    // the parameter appended after it made a `;;` that does not.
    #[test]
    fn a_trailing_semicolon_does_not_become_an_empty_parameter() {
        let req = msg("INVITE sip:x@example.com SIP/2.0\r\n\
            Via: P/2.0/UDP host5.example.net;\r\n\
            From: <sip:a@example.com>;tag=1\r\n\
            To: <sip:x@example.com> ; \r\n\
            Call-ID: c\r\nCSeq: 7 INVITE\r\nMax-Forwards: 70\r\n\r\n");
        assert_eq!(req.validate(), Ok(()));
        let ip: IpAddr = "192.0.2.9".parse().unwrap();
        let out = response(&req, 486, "Busy Here", Some("t"), Some(ip), None, &[], b"");
        let text = String::from_utf8_lossy(&out);
        assert!(text.contains("Via: P/2.0/UDP host5.example.net;received=192.0.2.9\r\n"));
        assert!(text.contains("To: <sip:x@example.com>;tag=t\r\n"));
        assert_eq!(
            Message::parse(&out, &Limits::default()).unwrap().validate(),
            Ok(())
        );
        let forwarded = req.forward_request(&crate::message::edit::RequestEdits {
            received: Some(ip),
            ..Default::default()
        });
        let forwarded = Message::parse(&forwarded, &Limits::default()).unwrap();
        assert_eq!(forwarded.validate(), Ok(()));
        assert_eq!(forwarded.top_via().unwrap().received(), Some("192.0.2.9"));
    }

    #[test]
    fn without_edits_the_vias_are_copied_verbatim() {
        let req = msg(REGISTER);
        let out = response(&req, 100, "Trying", None, None, None, &[], b"");
        let text = String::from_utf8_lossy(&out);
        assert!(text.starts_with(
            "SIP/2.0 100 Trying\r\nVia: SIP/2.0/TLS client.biloxi.example.com:5061;branch=z9hG4bKnashds7;rport\r\n"
        ));
        assert!(text.contains("To: Bob <sips:bob@biloxi.example.com>\r\n"));
    }

    #[test]
    fn phrases() {
        assert_eq!(reason_phrase(486), "Busy Here");
        assert_eq!(reason_phrase(423), "Interval Too Brief");
        assert_eq!(reason_phrase(408), "Request Timeout");
        assert_eq!(reason_phrase(505), "Version Not Supported");
        assert_eq!(reason_phrase(299), "");
    }
}
