//! Framing and splitting a datagram into start line, headers and body (RFC 3261 §7, §18.3).

use crate::message::header::{Header, HeaderName};
use crate::message::method::Method;
use crate::message::syntax::{is_token_char, is_wsp, parse_usize};
use crate::message::{Limits, Message, ParseError, ParseErrorKind, StartLine};

fn err(kind: ParseErrorKind, reason: &'static str) -> ParseError {
    ParseError::new(kind, 400, reason)
}

/// End of the line starting at `from`: (end of its content, without CR; start of the next
/// line). A line cut off by the end of the datagram ends there.
fn line_end(b: &[u8], from: usize) -> (usize, usize) {
    let rest = b.get(from..).unwrap_or(&[]);
    let (content_end, next) = match rest.iter().position(|c| *c == b'\n') {
        Some(i) => (from + i, from + i + 1),
        None => (b.len(), b.len()),
    };
    // CRLF is canonical; a bare LF is accepted too (liberal, as most stacks are).
    if content_end > from && b.get(content_end - 1) == Some(&b'\r') {
        (content_end - 1, next)
    } else {
        (content_end, next)
    }
}

/// What the Content-Length headers said, for framing.
enum Framing {
    /// None: on a datagram the body is the rest (RFC 3261 §18.3, RFC 4475 §3.4.1 inv2543).
    Absent,
    Length(usize),
    /// Several that disagree (RFC 4475 §3.3.9 mcl01): the rest of the datagram is taken so
    /// that the message still parses and [`Message::validate`] can answer 400.
    Conflicting,
}

impl Message {
    /// Frames and splits a datagram (RFC 3261 §7, §18.3). Leading CRLFs are skipped (§7.5).
    /// Datagram semantics: bytes after Content-Length are ignored (RFC 4475 §3.1.1.8 dblreq); a
    /// Content-Length larger than the remaining bytes is an error (§3.1.2.2 clerr); a missing
    /// Content-Length means the body is the rest.
    ///
    /// Checks only what framing needs plus UTF-8 of the head; call [`Message::validate`] for
    /// the semantic checks. Liberal where it costs nothing: LF-only line ends, white space
    /// before the colon (`TO :`), and a datagram that ends after the last header without the
    /// empty line (RFC 4475 `baddn.dat` as shipped) all parse.
    pub fn parse(input: &[u8], limits: &Limits) -> Result<Message, ParseError> {
        if input.len() > limits.message_bytes_max {
            return Err(ParseError::new(
                ParseErrorKind::TooLarge,
                513,
                "Message Too Large",
            ));
        }
        let skip = input
            .iter()
            .take_while(|b| **b == b'\r' || **b == b'\n')
            .count();
        let src = input.get(skip..).unwrap_or(&[]);
        if src.is_empty() {
            return Err(err(ParseErrorKind::Empty, "Empty Message"));
        }
        let mut bytes = src.to_vec();
        let (start_end, mut pos) = line_end(&bytes, 0);
        if pos == start_end {
            return Err(err(ParseErrorKind::Truncated, "Truncated Start Line"));
        }
        // The start line first, so that its problem is the one reported.
        let start_line = std::str::from_utf8(bytes.get(..start_end).unwrap_or(&[]))
            .map_err(|_| err(ParseErrorKind::NotUtf8, "Start Line Not UTF-8"))?;
        let start = parse_start_line(start_line)?;

        let mut headers: Vec<Header> = Vec::with_capacity(16);
        let mut framing = Framing::Absent;
        let body_start = loop {
            match bytes.get(pos) {
                None => break pos,
                Some(b'\n') => break pos + 1,
                Some(b'\r') if bytes.get(pos + 1) == Some(&b'\n') => break pos + 2,
                Some(b) if is_wsp(*b) => {
                    return Err(err(
                        ParseErrorKind::BadHeader,
                        "Continuation Line Without Header",
                    ))
                }
                Some(_) => {}
            }
            if headers.len() >= limits.headers_max {
                return Err(err(ParseErrorKind::TooManyHeaders, "Too Many Headers"));
            }
            let line_start = pos;
            let (first_end, mut next) = line_end(&bytes, pos);
            let colon = bytes
                .get(line_start..first_end)
                .and_then(|l| l.iter().position(|c| *c == b':'))
                .map(|i| line_start + i)
                .ok_or(err(ParseErrorKind::BadHeader, "Header Without Colon"))?;
            // §7.3.1: a line starting with SP/HTAB continues the header. Turning the line break
            // into spaces makes the value one contiguous run of text.
            let mut value_end = first_end;
            while bytes.get(next).is_some_and(|b| is_wsp(*b)) {
                for b in bytes.get_mut(value_end..next).unwrap_or(&mut []) {
                    *b = b' ';
                }
                let (end, after) = line_end(&bytes, next);
                value_end = end;
                next = after;
            }

            // §7.3.1 allows white space between the name and the colon.
            let name_bytes = bytes.get(line_start..colon).unwrap_or(&[]);
            let name_len =
                name_bytes.len() - name_bytes.iter().rev().take_while(|b| is_wsp(**b)).count();
            let name_bytes = name_bytes.get(..name_len).unwrap_or(&[]);
            if name_bytes.is_empty() || !name_bytes.iter().all(|b| is_token_char(*b)) {
                return Err(err(ParseErrorKind::BadHeader, "Bad Header Name"));
            }
            let value_bytes = bytes.get(colon + 1..value_end).unwrap_or(&[]);
            let lead = value_bytes.iter().take_while(|b| is_wsp(**b)).count();
            let trail = value_bytes.iter().rev().take_while(|b| is_wsp(**b)).count();
            let value = if lead == value_bytes.len() {
                colon + 1..colon + 1
            } else {
                colon + 1 + lead..value_end - trail
            };
            let name = HeaderName::from_bytes(name_bytes);
            if name == HeaderName::ContentLength {
                let n = bytes
                    .get(value.clone())
                    .and_then(parse_usize)
                    .ok_or(err(ParseErrorKind::BadContentLength, "Bad Content-Length"))?;
                framing = match framing {
                    Framing::Absent => Framing::Length(n),
                    Framing::Length(m) if m == n => Framing::Length(n),
                    _ => Framing::Conflicting,
                };
            }
            headers.push(Header {
                name,
                line: line_start..next,
                raw_name: line_start..line_start + name_len,
                value,
            });
            pos = next;
        };

        let head = bytes.get(..body_start).unwrap_or(&[]).to_vec();
        let head = String::from_utf8(head)
            .map_err(|_| err(ParseErrorKind::NotUtf8, "Header Not UTF-8"))?;

        let available = bytes.len().saturating_sub(body_start);
        let body_len = match framing {
            Framing::Absent | Framing::Conflicting => available,
            Framing::Length(n) if n <= available => n,
            Framing::Length(_) => {
                return Err(err(
                    ParseErrorKind::Truncated,
                    "Content-Length Larger Than Message",
                ))
            }
        };
        bytes.truncate(body_start + body_len);
        Ok(Message {
            bytes,
            head,
            start,
            headers,
            body: body_start..body_start + body_len,
        })
    }
}

/// RFC 3261 §25.1 `SIP-Version = "SIP" "/" 1*DIGIT "." 1*DIGIT` (case-insensitive "SIP").
/// Any version parses so that [`Message::validate`] can answer 505 (RFC 4475 §3.1.2.16).
fn is_sip_version(v: &str) -> bool {
    let Some(num) = v
        .get(..4)
        .filter(|p| p.eq_ignore_ascii_case("SIP/"))
        .and_then(|_| v.get(4..))
    else {
        return false;
    };
    match num.split_once('.') {
        Some((major, minor)) => {
            !major.is_empty()
                && !minor.is_empty()
                && major.bytes().all(|b| b.is_ascii_digit())
                && minor.bytes().all(|b| b.is_ascii_digit())
        }
        None => false,
    }
}

fn bad_start(reason: &'static str) -> ParseError {
    err(ParseErrorKind::BadStartLine, reason)
}

/// Parses the start line (without its CRLF); the spans it returns index the message.
///
/// Strict on separators: exactly one SP between the elements and none at the end. RFC 4475
/// §3.1.2.8-10 (lwsruri, lwsstart, trws) allow rejecting these, and a proxy that guessed would
/// have to rewrite the Request-URI anyway; so they fail with 400 here.
fn parse_start_line(line: &str) -> Result<StartLine, ParseError> {
    let end = line.len();
    let is_response = line
        .get(..4)
        .is_some_and(|p| p.eq_ignore_ascii_case("SIP/"));
    if is_response {
        // §7.2: Status-Line = SIP-Version SP Status-Code SP Reason-Phrase CRLF.
        let (version, rest) = line.split_once(' ').ok_or(bad_start("Bad Status Line"))?;
        if !is_sip_version(version) {
            return Err(bad_start("Bad SIP Version"));
        }
        let code = rest.get(..3).ok_or(bad_start("Bad Status Code"))?;
        let status = code
            .parse::<u16>()
            .ok()
            .filter(|s| code.bytes().all(|b| b.is_ascii_digit()) && (100..=699).contains(s))
            .ok_or(bad_start("Bad Status Code"))?;
        // The SP after the code is required even when the reason phrase is empty (RFC 4475
        // §3.1.1.13); `SIP/2.0 4294967301 ...` fails here (§3.1.2.19).
        if rest.as_bytes().get(3) != Some(&b' ') {
            return Err(bad_start("Bad Status Code"));
        }
        let reason_start = version.len() + 1 + 4;
        return Ok(StartLine::Response {
            status,
            reason: reason_start..end,
            version: 0..version.len(),
        });
    }
    // §7.1: Request-Line = Method SP Request-URI SP SIP-Version CRLF.
    let (method_text, rest) = line.split_once(' ').ok_or(bad_start("Bad Request Line"))?;
    let (uri, version) = rest.rsplit_once(' ').ok_or(bad_start("Bad Request Line"))?;
    let method = Method::parse(method_text).ok_or(bad_start("Bad Method"))?;
    if uri.is_empty() || uri.bytes().any(|b| b == b' ' || b == b'\t') {
        return Err(bad_start("Bad Request-URI"));
    }
    if !is_sip_version(version) {
        return Err(bad_start("Bad SIP Version"));
    }
    let uri_start = method_text.len() + 1;
    Ok(StartLine::Request {
        method,
        uri: uri_start..uri_start + uri.len(),
        version: end - version.len()..end,
    })
}
