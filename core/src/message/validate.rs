//! Semantic checks after framing (RFC 3261 §8.1.1, §8.2, §16.3, §20), with the RFC 4475
//! torture messages as the yardstick.

use crate::message::header::split_list;
use crate::message::syntax::{is_word_char, parse_u32};
use crate::message::uri::UNBRACKETED_IPV6;
use crate::message::{CSeq, HeaderName, Message, NameAddr, ParseError, ParseErrorKind, Uri, Via};

fn bad(kind: ParseErrorKind, reason: &'static str) -> ParseError {
    ParseError::new(kind, 400, reason)
}

/// §8.1.1: the headers every request (and so every response, §8.2.6.2) carries. Max-Forwards
/// is left out for RFC 2543 peers (RFC 4475 §3.4.1); the proxy decides what its absence means.
const MANDATORY: [(HeaderName, &str); 5] = [
    (HeaderName::To, "Missing To"),
    (HeaderName::From, "Missing From"),
    (HeaderName::CallId, "Missing Call-ID"),
    (HeaderName::CSeq, "Missing CSeq"),
    (HeaderName::Via, "Missing Via"),
];

/// Headers whose §20 grammar allows one value only, that the core reads: two of them are
/// ambiguous (RFC 4475 §3.3.8 multi01, §3.3.9 mcl01).
const SINGLE: [(HeaderName, &str); 9] = [
    (HeaderName::To, "Duplicate To"),
    (HeaderName::From, "Duplicate From"),
    (HeaderName::CallId, "Duplicate Call-ID"),
    (HeaderName::CSeq, "Duplicate CSeq"),
    (HeaderName::MaxForwards, "Duplicate Max-Forwards"),
    (HeaderName::ContentLength, "Duplicate Content-Length"),
    (HeaderName::ContentType, "Duplicate Content-Type"),
    (HeaderName::Expires, "Duplicate Expires"),
    (HeaderName::MinExpires, "Duplicate Min-Expires"),
];

/// How much of a message [`Message::check`] looks at.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Depth {
    /// Every header the core reads or relays from a request.
    Whole,
    /// What a proxy reads from a response it relays.
    Relayed,
}

/// RFC 3261 §25.1 `callid = word [ "@" word ]`.
fn is_call_id(s: &str) -> bool {
    let word = |w: &str| !w.is_empty() && w.bytes().all(is_word_char);
    match s.split_once('@') {
        Some((a, b)) => word(a) && word(b),
        None => word(s),
    }
}

/// Checks one name-addr/addr-spec value: its syntax, its header params, its URI.
fn check_address(value: &str, reason: &'static str) -> Result<(), ParseError> {
    let a = NameAddr::parse(value).ok();
    let uri_ok = a.as_ref().is_some_and(|a| Uri::parse(a.uri).is_ok());
    let tag = a.as_ref().and_then(|a| a.params.get("tag"));
    check_name_addr(a, tag, uri_ok, reason)
}

/// [`check_address`] for a value already parsed (`None`: it did not parse), with its `tag`
/// param (read from the parse cache for From and To), whose URI parsed or not (`uri_ok`).
fn check_name_addr(
    a: Option<NameAddr<'_>>,
    tag: Option<Option<&str>>,
    uri_ok: bool,
    reason: &'static str,
) -> Result<(), ParseError> {
    let bad_value = bad(ParseErrorKind::BadValue, reason);
    let a = a.ok_or(bad_value)?;
    if !a.params.check_header_params() || tag == Some(None) || !uri_ok {
        return Err(bad_value);
    }
    Ok(())
}

impl Message {
    /// Semantic checks done after framing, for requests and responses; returns the first
    /// problem found, with the status to answer:
    ///
    /// 1. The Request-Line is exactly `Method SP Request-URI SP SIP-Version` (§7.1). The
    ///    parser reads past extra SP (RFC 4475 §3.1.2.9 lwsstart, §3.1.2.10 trws) and white
    ///    space inside the Request-URI (§3.1.2.8 lwsruri: "should respond with a 400") so
    ///    that they are answered here: "Bad Request-Line", "LWS In Request-URI".
    /// 2. SIP-Version is SIP/2.0, else 505 (§21.5.6; RFC 4475 §3.1.2.16 badvers).
    /// 3. The Request-URI is a URI (§25.1), not `<sip:...>` (RFC 4475 §3.1.2.7 ltgtruri), and a
    ///    SIP Request-URI has no `?headers` (§19.1.1 table: not allowed in a Request-URI;
    ///    RFC 4475 §3.1.2.11 escruri lets us reject rather than strip them on forwarding). An
    ///    IPv6 address must be in brackets (§25.1 `IPv6reference`; RFC 5118 §4.2 ipv6-bad:
    ///    "IPv6 Address Without Brackets In Request-URI").
    /// 4. Content-Length framed the datagram. §18.3: "If the transport packet ends before the
    ///    end of the message body, this is considered an error" (RFC 4475 §3.1.2.2 clerr:
    ///    "Content-Length Larger Than Message"); so is a value that is not `1*DIGIT`
    ///    (§3.1.2.3 ncl: "Bad Content-Length"). Several that disagree are step 6's "Duplicate
    ///    Content-Length" (§3.3.9 mcl01).
    /// 5. To, From, Call-ID, CSeq and Via are present (§8.1.1; RFC 4475 §3.3.1 insuf).
    /// 6. Single-valued headers appear once (§7.3.1; RFC 4475 multi01, mcl01).
    /// 7. CSeq is `1*DIGIT LWS Method` with a number up to 2^32-1 (§8.1.1.5 bounds generating
    ///    at 2^31-1; RFC 4475 §3.1.2.4/§3.1.2.5 scalar02/scalarlg) and, in a request, names
    ///    the request's method (§8.1.1.5 "MUST match"; RFC 4475 §3.1.2.17-18 mismatch01/02;
    ///    [`ParseErrorKind::MethodMismatch`]).
    /// 8. Call-ID is `word ["@" word]`; Max-Forwards is 0..=255 (§20.22); Expires is
    ///    delta-seconds up to 2^32-1 (§20.19).
    /// 9. Every Via value parses, with well-formed params and no empty list element (§20.42;
    ///    RFC 4475 §3.1.2.1 badinv01).
    /// 10. From, To, each Contact (unless `*`), Route and Record-Route are a name-addr or
    ///     addr-spec with well-formed params and URI (§20.10, §20.20, §20.39; RFC 4475
    ///     quotbal, badaspec, baddn, regbadct, badinv01). Steps 9 and 10 go in wire order.
    ///
    /// The Date header is not checked (RFC 4475 §3.1.2.12 baddate: an element that does not
    /// use Date may ignore it), nor are the scalars the core does not read (Retry-After,
    /// Warning in scalarlg).
    pub fn validate(&self) -> Result<(), ParseError> {
        self.check(Depth::Whole)
    }

    /// The checks a response gets before it is matched and relayed: steps 1 to 8 of
    /// [`Message::validate`], the top Via (step 9), and From and To as name-addrs with
    /// well-formed params (the To tag is read). A proxy relays a response with only its top
    /// Via removed (RFC 3261 §16.7 step 9, §16.7 step 3 "MUST NOT add to, modify, or remove"
    /// the rest): the other Vias, Contact, Record-Route and the URIs of From and To go to the
    /// UA that reads them, which judges them. Parsing them here cost more than half of
    /// relaying a 180.
    pub fn validate_response(&self) -> Result<(), ParseError> {
        self.check(Depth::Relayed)
    }

    fn check(&self, depth: Depth) -> Result<(), ParseError> {
        let whole = depth == Depth::Whole;
        // A broken Request-Line comes first: the version read from it may not be one.
        if let Some(e) = self.start_defect {
            return Err(e);
        }
        if !self.version().eq_ignore_ascii_case("SIP/2.0") {
            return Err(ParseError::new(
                ParseErrorKind::BadVersion,
                505,
                "Version Not Supported",
            ));
        }
        let method = self.method();
        if let Some(ruri) = self.request_uri_parsed() {
            match ruri {
                // RFC 5118 §4.2: "should respond with a 400", saying what is wrong.
                Err(e) if e.reason == UNBRACKETED_IPV6 => {
                    return Err(bad(
                        ParseErrorKind::BadUri,
                        "IPv6 Address Without Brackets In Request-URI",
                    ))
                }
                Err(_) => return Err(bad(ParseErrorKind::BadUri, "Bad Request-URI")),
                Ok(Uri::Sip(u)) if u.headers.is_some() => {
                    return Err(bad(ParseErrorKind::BadUri, "Headers In Request-URI"))
                }
                Ok(_) => {}
            }
        }
        if let Some(e) = self.framing_defect {
            return Err(e);
        }
        // One pass counts the lines of every name checked here.
        let mut lines = [0usize; SINGLE.len()];
        let mut via_lines = 0;
        for h in self.headers() {
            if h.name == HeaderName::Via {
                via_lines += 1;
            } else if let Some(i) = SINGLE.iter().position(|(n, _)| *n == h.name) {
                if let Some(c) = lines.get_mut(i) {
                    *c += 1;
                }
            }
        }
        let lines_of = |name: &HeaderName| match name {
            HeaderName::Via => via_lines,
            n => SINGLE
                .iter()
                .position(|(s, _)| s == n)
                .and_then(|i| lines.get(i).copied())
                .unwrap_or(0),
        };
        for (name, reason) in &MANDATORY {
            if lines_of(name) == 0 {
                return Err(bad(ParseErrorKind::MissingHeader, reason));
            }
        }
        for ((_, reason), n) in SINGLE.iter().zip(lines) {
            if n > 1 {
                return Err(bad(ParseErrorKind::DuplicateHeader, reason));
            }
        }

        let cseq = self.value(&HeaderName::CSeq).map(CSeq::parse).transpose()?;
        if let (Some(cseq), Some(method)) = (cseq, method) {
            if cseq.method != method.as_str() {
                return Err(bad(ParseErrorKind::MethodMismatch, "CSeq Method Mismatch"));
            }
        }
        if !self.call_id().is_some_and(is_call_id) {
            return Err(bad(ParseErrorKind::BadValue, "Bad Call-ID"));
        }
        if let Some(mf) = self.value(&HeaderName::MaxForwards) {
            if parse_u32(mf).is_none_or(|n| n > 255) {
                return Err(bad(ParseErrorKind::BadValue, "Bad Max-Forwards"));
            }
        }
        if let Some(e) = self.value(&HeaderName::Expires) {
            if parse_u32(e).is_none() {
                return Err(bad(ParseErrorKind::BadValue, "Bad Expires"));
            }
        }

        let mut seen_via = false;
        for h in self.headers() {
            let list_reason = match h.name {
                HeaderName::Via => "Bad Via",
                HeaderName::Contact => "Bad Contact",
                HeaderName::Route => "Bad Route",
                HeaderName::RecordRoute => "Bad Record-Route",
                // Single-valued (checked above), so the line is the one the cached view
                // was parsed from.
                HeaderName::From => {
                    let uri_ok = !whole || self.from_uri().is_some_and(|u| u.is_ok());
                    check_name_addr(
                        self.from(),
                        self.tag_param(&HeaderName::From),
                        uri_ok,
                        "Bad From",
                    )?;
                    continue;
                }
                HeaderName::To => {
                    let uri_ok = !whole || self.to_uri().is_some_and(|u| u.is_ok());
                    check_name_addr(self.to(), self.tag_param(&HeaderName::To), uri_ok, "Bad To")?;
                    continue;
                }
                _ => continue,
            };
            if !whole && (h.name != HeaderName::Via || seen_via) {
                continue;
            }
            // Walk the list with its empty elements, which `values()` skips: `,,` is a
            // syntax error in these headers (RFC 4475 §3.1.2.1).
            let mut rest = Some(h.value(self));
            let mut top = h.name == HeaderName::Via && !seen_via;
            seen_via |= h.name == HeaderName::Via;
            while let Some(text) = rest {
                let (value, next) = split_list(text);
                rest = next;
                let bad_value = bad(ParseErrorKind::BadValue, list_reason);
                if value.is_empty() {
                    return Err(bad_value);
                }
                match h.name {
                    HeaderName::Via => {
                        // The top Via is the first value of the first line: its parse
                        // is kept for the transaction layer and the response.
                        let via = if top {
                            self.top_via()
                        } else {
                            Via::parse(value).ok()
                        };
                        let was_top = std::mem::replace(&mut top, false);
                        let via = via.ok_or(bad_value)?;
                        // §20.42 via-params: these have a value; rport's is a port.
                        let params_ok = via.params.check_header_params()
                            && via.params.iter().all(|(name, value)| match value {
                                None => !["branch", "received", "maddr", "ttl"]
                                    .iter()
                                    .any(|p| p.eq_ignore_ascii_case(name)),
                                Some(v) => {
                                    !name.eq_ignore_ascii_case("rport")
                                        || crate::message::syntax::parse_port(v).is_some()
                                }
                            });
                        if !params_ok {
                            return Err(bad_value);
                        }
                        if was_top && !whole {
                            // The rest of the line is relayed as it came.
                            break;
                        }
                    }
                    HeaderName::Contact if value == "*" => {}
                    _ => check_address(value, list_reason)?,
                }
            }
        }
        Ok(())
    }
}
