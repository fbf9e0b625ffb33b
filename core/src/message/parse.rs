//! Framing a datagram, or the next message of a stream, and splitting it into start line,
//! headers and body (RFC 3261 §7, §18.3).

use smallvec::SmallVec;

use crate::message::header::{Header, HeaderIndex, HeaderName};
use crate::message::method::Method;
use crate::message::syntax::{is_token_char, is_wsp, parse_usize};
use crate::message::{
    parsed, Limits, Message, ParseError, ParseErrorKind, Spare, StartLine, Storage,
};

fn err(kind: ParseErrorKind, reason: &'static str) -> ParseError {
    ParseError::new(kind, 400, reason)
}

/// End of the line starting at `from`: (end of its content, without CR; start of the next
/// line). A line cut off by the end of the datagram ends there.
fn line_end(b: &[u8], from: usize) -> (usize, usize) {
    let rest = b.get(from..).unwrap_or(&[]);
    let (content_end, next) = match memchr::memchr(b'\n', rest) {
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
    /// Several that disagree (RFC 4475 §3.3.9 mcl01).
    Conflicting,
    /// One that is not `1*DIGIT` (RFC 4475 §3.1.2.3 ncl: `-999`; "five").
    Invalid,
}

/// How the bytes reached us, which decides what a broken Content-Length means (RFC 3261
/// §18.3).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// One message per datagram: the datagram's end bounds the message, so a Content-Length
    /// that is missing, unreadable, conflicting or too large still leaves a message whose
    /// header section can be read and answered.
    Datagram,
    /// A byte stream: Content-Length is the only thing that says where the message ends and
    /// the next one starts, so it must be there, readable and single.
    Stream,
}

impl Message {
    /// Frames and splits one datagram (RFC 3261 §7, §18.3). Leading CRLFs are skipped (§7.5).
    ///
    /// Datagram framing, after §18.3: "the message body is assumed to contain [Content-Length]
    /// bytes. If there are additional bytes in the transport packet beyond the end of the
    /// body, they MUST be discarded" (RFC 4475 §3.1.1.8 dblreq); "If the message has no
    /// Content-Length header field, the message body is assumed to end at the end of the
    /// transport packet". A framing problem does not lose the message here, because the
    /// datagram's own end bounds it; "If the transport packet ends before the end of the
    /// message body ... If the message is a request, the element SHOULD generate a 400 (Bad
    /// Request) response". So a Content-Length larger than the datagram (RFC 4475 §3.1.2.2
    /// clerr), one that is not a number (§3.1.2.3 ncl) or several that disagree (§3.3.9
    /// mcl01) parse, with the rest of the datagram as the body, and [`Message::validate`]
    /// reports them. A response with such a defect "MUST be discarded": validation fails for
    /// it too.
    ///
    /// The Request-Line is read leniently for the same reason: extra SP between its elements
    /// (RFC 4475 §3.1.2.9 lwsstart), SP after the version (§3.1.2.10 trws) and white space
    /// inside the Request-URI (§3.1.2.8 lwsruri) still give the method, a Request-URI and the
    /// version, and [`Message::validate`] answers 400. The request is never taken as valid,
    /// so it is never forwarded with the extra SP (which §3.1.2.9 forbids).
    ///
    /// Fails only when there is no SIP message to answer: too large (513), empty, a start line
    /// that is neither a Request-Line nor a Status-Line, a header line that cannot be split
    /// into name and value, or a head that is not UTF-8. Liberal where it costs nothing:
    /// LF-only line ends, white space before the colon (`TO :`), and a datagram that ends
    /// after the last header without the empty line (RFC 4475 `baddn.dat` as shipped) all
    /// parse; the line ends it lacks are then added to the message's bytes.
    ///
    /// For a byte stream use [`Message::parse_stream`], whose Content-Length framing is strict.
    pub fn parse(input: &[u8], limits: &Limits) -> Result<Message, ParseError> {
        Message::parse_into(input, limits, &mut Spare::default())
    }

    /// [`Message::parse`] into buffers given back by messages the caller is done with
    /// ([`Spare::recycle`]): the element parses every datagram so.
    pub fn parse_into(
        input: &[u8],
        limits: &Limits,
        spare: &mut Spare,
    ) -> Result<Message, ParseError> {
        if input.len() > limits.message_bytes_max {
            return Err(ParseError::new(
                ParseErrorKind::TooLarge,
                513,
                "Message Too Large",
            ));
        }
        parse_framed(input, limits, Mode::Datagram, spare).map(|(m, _)| m)
    }

    /// Frames the first message of a byte stream (TCP, TLS) and says how many bytes of
    /// `input` it took, leading CRLFs included; the rest belongs to the next message.
    ///
    /// Stream framing, after RFC 3261 §18.3: "the Content-Length header field indicates the
    /// size of the body. The Content-Length header field MUST be used with stream oriented
    /// transports." Unlike [`Message::parse`], nothing bounds a message but Content-Length, so:
    ///
    /// - [`ParseErrorKind::Truncated`] means "not all here yet": the header section has not
    ///   ended, or Content-Length asks for more bytes than `input` has (RFC 4475 §3.1.2.2: over
    ///   a stream "there's not much the receiving party could do but wait for more data");
    /// - [`ParseErrorKind::BadContentLength`] (missing, not a number, or several that disagree)
    ///   and [`ParseErrorKind::TooLarge`] cannot be recovered from: the next message's start
    ///   is unknown, and RFC 4475 §3.1.2.3 and §3.3.9 say the connection should be closed;
    /// - [`ParseErrorKind::Empty`]: `input` holds only CRLFs (keep-alives, RFC 5626 §3.5.1).
    ///
    /// [`Limits::message_bytes_max`] bounds the message, not `input`. The Request-Line is read
    /// as leniently as in [`Message::parse`]: its defects do not affect framing.
    pub fn parse_stream(input: &[u8], limits: &Limits) -> Result<(Message, usize), ParseError> {
        parse_framed(input, limits, Mode::Stream, &mut Spare::default())
    }
}

/// Both framings. Returns the message and how many bytes of `input` it took.
fn parse_framed(
    input: &[u8],
    limits: &Limits,
    mode: Mode,
    spare: &mut Spare,
) -> Result<(Message, usize), ParseError> {
    let skip = input
        .iter()
        .take_while(|b| **b == b'\r' || **b == b'\n')
        .count();
    let src = input.get(skip..).unwrap_or(&[]);
    if src.is_empty() {
        return Err(err(ParseErrorKind::Empty, "Empty Message"));
    }
    let too_large = ParseError::new(ParseErrorKind::TooLarge, 513, "Message Too Large");
    // On a stream a message is bounded by the limit, not by `input`, which may hold the
    // next messages too: copy no more than one message can be.
    let window = src.len().min(limits.message_bytes_max);
    let incomplete = |what: &'static str| {
        if mode == Mode::Stream && src.len() > window {
            too_large
        } else {
            err(ParseErrorKind::Truncated, what)
        }
    };
    let mut bytes = spare.bytes();
    bytes.extend_from_slice(src.get(..window).unwrap_or(&[]));
    let (start_end, mut pos) = line_end(&bytes, 0);
    if pos == start_end {
        return Err(incomplete("Truncated Start Line"));
    }
    // The start line first, so that its problem is the one reported.
    let start_line = std::str::from_utf8(bytes.get(..start_end).unwrap_or(&[]))
        .map_err(|_| err(ParseErrorKind::NotUtf8, "Start Line Not UTF-8"))?;
    let (start, start_defect) = parse_start_line(start_line)?;

    let mut headers: Vec<Header> = spare.headers();
    let mut framing = Framing::Absent;
    let body_start = loop {
        match bytes.get(pos) {
            // A datagram may end without the empty line; a stream has not delivered it yet.
            None if mode == Mode::Stream => return Err(incomplete("Incomplete Header")),
            // The datagram ends without it: the line end and the empty line are completed,
            // so that every header line ends in a line break and a proxy that inserts lines
            // before the body does not glue them to the last one.
            None => {
                match bytes.last() {
                    Some(b'\n') => {}
                    Some(b'\r') => bytes.push(b'\n'),
                    _ => bytes.extend_from_slice(b"\r\n"),
                }
                if let Some(last) = headers.last_mut() {
                    last.line.end = bytes.len();
                }
                bytes.extend_from_slice(b"\r\n");
                break bytes.len();
            }
            // The CR of the empty line has come, its LF not yet.
            Some(b'\r') if mode == Mode::Stream && pos + 1 == bytes.len() => {
                return Err(incomplete("Incomplete Header"))
            }
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
        if mode == Mode::Stream && !bytes.get(..next).is_some_and(|l| l.ends_with(b"\n")) {
            // The rest of this line is still on its way.
            return Err(incomplete("Incomplete Header"));
        }
        let colon = bytes
            .get(line_start..first_end)
            .and_then(|l| memchr::memchr(b':', l))
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
            // An unreadable value wins over a disagreement: it is the more basic problem.
            framing = match (framing, bytes.get(value.clone()).and_then(parse_usize)) {
                (Framing::Invalid, _) | (_, None) => Framing::Invalid,
                (Framing::Absent, Some(n)) => Framing::Length(n),
                (Framing::Length(m), Some(n)) if m == n => Framing::Length(n),
                (_, Some(_)) => Framing::Conflicting,
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

    // One UTF-8 check for the whole: the head must be text; the body need not be.
    let total = bytes.len();
    let text = match String::from_utf8(bytes) {
        Ok(text) => Ok(text),
        Err(e) if e.utf8_error().valid_up_to() >= body_start => Err(e.into_bytes()),
        Err(_) => return Err(err(ParseErrorKind::NotUtf8, "Header Not UTF-8")),
    };

    let available = total.saturating_sub(body_start);
    let bad_length = err(ParseErrorKind::BadContentLength, "Bad Content-Length");
    let (body_len, framing_defect) = match (mode, framing) {
        (Mode::Datagram, Framing::Length(n)) if n <= available => (n, None),
        // §18.3: the datagram ended before the body did. The rest is what there is.
        (Mode::Datagram, Framing::Length(_)) => (
            available,
            Some(err(
                ParseErrorKind::Truncated,
                "Content-Length Larger Than Message",
            )),
        ),
        (Mode::Datagram, Framing::Absent) => (available, None),
        // Reported by validate as a duplicate single-valued header.
        (Mode::Datagram, Framing::Conflicting) => (available, None),
        (Mode::Datagram, Framing::Invalid) => (available, Some(bad_length)),
        (Mode::Stream, Framing::Length(n)) => {
            if body_start.saturating_add(n) > limits.message_bytes_max {
                return Err(too_large);
            }
            if n > available {
                return Err(err(ParseErrorKind::Truncated, "Incomplete Body"));
            }
            (n, None)
        }
        (Mode::Stream, Framing::Absent) => {
            return Err(err(
                ParseErrorKind::BadContentLength,
                "Missing Content-Length",
            ))
        }
        (Mode::Stream, Framing::Conflicting) => {
            return Err(err(
                ParseErrorKind::BadContentLength,
                "Conflicting Content-Length",
            ))
        }
        (Mode::Stream, Framing::Invalid) => return Err(bad_length),
    };
    let end = body_start + body_len;
    let storage = Storage::new(text, body_start, end);
    let consumed = skip + end;
    Ok((
        Message {
            storage,
            start,
            index: HeaderIndex::new(&headers),
            headers,
            body: body_start..body_start + body_len,
            start_defect,
            framing_defect,
            parsed: parsed::LazyParsed::with(spare.parsed()),
        },
        consumed,
    ))
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

/// Parses the start line (without its CRLF); the spans it returns index the message. The
/// second value is a defect of a Request-Line that was still readable, for
/// [`Message::validate`] to answer with 400.
fn parse_start_line(line: &str) -> Result<(StartLine, Option<ParseError>), ParseError> {
    let end = line.len();
    let is_response = line
        .get(..4)
        .is_some_and(|p| p.eq_ignore_ascii_case("SIP/"));
    if is_response {
        // Strict: a response is never answered, only matched or discarded (RFC 4475
        // §3.1.2.19 bigcode "should simply drop it"), so nothing is gained by reading a
        // broken Status-Line.
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
        return Ok((
            StartLine::Response {
                status,
                reason: reason_start..end,
                version: 0..version.len(),
            },
            None,
        ));
    }
    parse_request_line(line)
}

/// §7.1: `Request-Line = Method SP Request-URI SP SIP-Version CRLF`, read leniently.
///
/// The line is split on runs of SP/HTAB: the first word is the method, the last the version,
/// and everything between them the Request-URI. When the line has that shape it is a request
/// the element can answer, so a departure from the exact grammar is returned as a defect, not
/// an error (RFC 4475 §3.1.2.8-10 ask for 400, which needs the headers). Without a method
/// token, a Request-URI and a SIP-Version last, the line is not recognisably SIP and fails.
fn parse_request_line(line: &str) -> Result<(StartLine, Option<ParseError>), ParseError> {
    let b = line.as_bytes();
    // (start, end) of each run of non-white-space: three in a well-formed line.
    let mut words: SmallVec<[(usize, usize); 4]> = SmallVec::new();
    let mut word_start = None;
    for (i, c) in b.iter().enumerate() {
        match (is_wsp(*c), word_start) {
            (true, Some(s)) => {
                words.push((s, i));
                word_start = None;
            }
            (false, None) => word_start = Some(i),
            _ => {}
        }
    }
    if let Some(s) = word_start {
        words.push((s, b.len()));
    }
    let (Some(&(m0, m1)), Some(&(u0, _)), Some(&(v0, v1))) =
        (words.first(), words.get(1), words.last())
    else {
        return Err(bad_start("Bad Request Line"));
    };
    if words.len() < 3 {
        return Err(bad_start("Bad Request Line"));
    }
    let u1 = words.get(words.len() - 2).map_or(u0, |w| w.1);
    let method = Method::parse(line.get(m0..m1).unwrap_or("")).ok_or(bad_start("Bad Method"))?;
    if !is_sip_version(line.get(v0..v1).unwrap_or("")) {
        return Err(bad_start("Bad SIP Version"));
    }
    let exact = words.len() == 3
        && m0 == 0
        && b.get(m1) == Some(&b' ')
        && u0 == m1 + 1
        && b.get(u1) == Some(&b' ')
        && v0 == u1 + 1
        && v1 == b.len();
    let defect = if exact {
        None
    } else if words.len() > 3 {
        // RFC 4475 §3.1.2.8 lwsruri: `sip:user@example.com; lr`. Guessing which words are
        // the URI would be "ignoring the embedded LWS", which the RFC allows only where no
        // ambiguity arises; the element answers 400 instead.
        Some(err(ParseErrorKind::BadUri, "LWS In Request-URI"))
    } else {
        // RFC 4475 §3.1.2.9 lwsstart (several SP between elements) and §3.1.2.10 trws (SP
        // after the version), or HTAB where §7.1 wants SP.
        Some(bad_start("Bad Request-Line"))
    };
    Ok((
        StartLine::Request {
            method,
            uri: u0..u1,
            version: v0..v1,
        },
        defect,
    ))
}
