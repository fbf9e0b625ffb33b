//! SIP messages on the wire: a zero-copy parser, typed views of the headers the core needs,
//! and the response builder (RFC 3261 §7, §8.2.6, §18, §19, §20, §25).
//!
//! [`Message::parse`] makes one pass over a datagram: it frames it (leading CRLFs skipped,
//! Content-Length honoured, trailing octets dropped), unfolds continuation lines in place and
//! records one [`Header`] of byte spans per header line. Nothing is split or decoded until an
//! accessor asks: [`Message::values`] splits comma lists lazily, and the typed views
//! ([`Via`], [`NameAddr`], [`CSeq`], [`Uri`]) borrow from the message.
//!
//! [`Message::parse_stream`] does the same for the next message of a byte stream. The two
//! framings differ as RFC 3261 §18.3 says they must. A datagram bounds its message, so a
//! Content-Length that is missing, unreadable or larger than the datagram loses nothing: the
//! rest of the datagram is the body and, where that is an error, the request is still
//! answerable with 400 (RFC 4475 §3.1.2.2, §3.1.2.3). On a stream Content-Length is the only
//! boundary, so it is required and must be readable; otherwise parsing fails and the
//! connection cannot be resynchronised.
//!
//! Parsing only checks what framing needs; [`Message::validate`] then applies the RFC 3261
//! §8.1.1/§8.2 rules (mandatory headers, single-valued headers, scalar ranges, address and Via
//! syntax, version), so that a syntactically broken request can still be answered with the
//! right status. Defects the parser reads past (a Request-Line with extra white space, a
//! Content-Length that does not frame the datagram) are recorded and reported by `validate`
//! too: parsing fails only when there is no header section to answer from.
//! `tests/torture.rs` runs every RFC 4475 message through both, and `tests/torture_core.rs`
//! through the element.

pub mod build;
pub mod edit;
mod header;
mod method;
mod name_addr;
mod params;
mod parse;
mod parsed;
mod spare;
mod syntax;
mod uri;
mod validate;
mod via;

#[cfg(test)]
mod tests;

use std::fmt;
use std::ops::Range;

pub use build::{reason_phrase, response};
pub use header::{Header, HeaderName, Values};
pub use method::Method;
pub use name_addr::{Contacts, NameAddr};
pub use params::Params;
pub use spare::Spare;
pub use syntax::{decimal, dotted_quad};
pub use uri::{host_ip, AorSink, SipUri, Uri};
pub use via::Via;

/// Limits on what the parser accepts (TigerBeetle style: put a limit on everything).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest datagram parsed; larger ones fail with 513 (RFC 3261 §21.5.7). The default is
    /// the largest UDP payload of an IPv4 datagram, rounded.
    pub message_bytes_max: usize,
    /// Most header lines in one message.
    pub headers_max: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            message_bytes_max: 65_535,
            headers_max: 256,
        }
    }
}

/// What went wrong, for code that reacts to it (the status and reason are for the answer).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ParseErrorKind {
    /// Over [`Limits::message_bytes_max`].
    TooLarge,
    /// Over [`Limits::headers_max`].
    TooManyHeaders,
    /// Nothing but CRLFs.
    Empty,
    /// The Request-Line or Status-Line does not follow RFC 3261 §7.1/§7.2.
    BadStartLine,
    /// A header line without a colon, with a non-token name, or a stray continuation line.
    BadHeader,
    /// Content-Length is not `1*DIGIT` (RFC 4475 §3.1.2.3); on a stream also a missing or
    /// conflicting one, which leaves the stream unframed.
    BadContentLength,
    /// Fewer bytes than the start line or Content-Length need (RFC 4475 §3.1.2.2). From
    /// [`Message::parse_stream`] it means "wait for more bytes".
    Truncated,
    /// A mandatory header (§8.1.1) is missing.
    MissingHeader,
    /// A single-valued header appears more than once (RFC 4475 §3.3.8, §3.3.9).
    DuplicateHeader,
    /// A header value does not follow its grammar or range.
    BadValue,
    /// The CSeq method is not the request's (§8.1.1.5 "MUST match"; RFC 4475 §3.1.2.17-18).
    /// Kept apart from [`ParseErrorKind::BadValue`] because an element that does not know the
    /// method answers 501 rather than 400 (RFC 4475 §3.1.2.18).
    MethodMismatch,
    /// A SIP-Version other than SIP/2.0: 505 (RFC 3261 §21.5.6).
    BadVersion,
    /// A malformed Request-URI.
    BadUri,
    /// The start line or a header is not UTF-8 (§7.3.1: header values are UTF-8 text).
    NotUtf8,
}

/// Why a message was refused, with the answer to give when it can be answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ParseError {
    /// What went wrong.
    pub kind: ParseErrorKind,
    /// The status to answer with: 400, 505, 513...
    pub status: u16,
    /// A reason phrase naming the problem ("Missing Call-ID"), fit for the status line.
    pub reason: &'static str,
}

impl ParseError {
    pub(crate) const fn new(kind: ParseErrorKind, status: u16, reason: &'static str) -> Self {
        ParseError {
            kind,
            status,
            reason,
        }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.status, self.reason)
    }
}

impl std::error::Error for ParseError {}

/// The first line of a message (RFC 3261 §7.1, §7.2), as spans into the head.
#[derive(Clone, Debug, PartialEq, Eq)]
enum StartLine {
    Request {
        method: Method,
        uri: Range<usize>,
        version: Range<usize>,
    },
    Response {
        status: u16,
        reason: Range<usize>,
        version: Range<usize>,
    },
}

/// A parsed SIP message: owns its bytes; headers are spans into them.
///
/// The bytes are the received ones with three differences: leading CRLFs and octets after the
/// body are gone, each fold of a header (§7.3.1: CRLF before SP/HTAB) has become two
/// spaces (one for a bare LF), which the RFC makes equivalent and which keeps every offset,
/// and a datagram that ended inside its header section has the line ends it lacked (the
/// empty line, and the last header's CRLF) added at the end.
#[derive(Clone, PartialEq, Eq)]
pub struct Message {
    /// The message, body included, and its head as text.
    storage: Storage,
    start: StartLine,
    headers: Vec<Header>,
    /// The first line of each known header name.
    index: header::HeaderIndex,
    body: Range<usize>,
    /// A Request-Line that was readable but not well formed (RFC 4475 §3.1.2.8-10), kept for
    /// [`Message::validate`] to report: the parser reads past it so that it can be answered.
    start_defect: Option<ParseError>,
    /// A Content-Length that did not frame the datagram (RFC 4475 §3.1.2.2-3), likewise.
    framing_defect: Option<ParseError>,
    /// The typed views read most, parsed on first use.
    parsed: parsed::LazyParsed,
}

/// A message's bytes, kept so that the head can be handed out as `&str` without checking
/// UTF-8 again (and without `unsafe`).
#[derive(Clone, PartialEq, Eq)]
enum Storage {
    /// The whole message is UTF-8 (every SIP head is, and so is an SDP body): one buffer.
    Text(String),
    /// The body is not UTF-8: the bytes, and a copy of the head as text.
    Binary { bytes: Vec<u8>, head: String },
}

impl Storage {
    /// The first `end` bytes of what the parser read: all of it as text, or bytes whose
    /// first `head_len` are text.
    fn new(read: Result<String, Vec<u8>>, head_len: usize, end: usize) -> Storage {
        let mut bytes = match read {
            Ok(mut text) if text.is_char_boundary(end) => {
                text.truncate(end);
                return Storage::Text(text);
            }
            Ok(text) => text.into_bytes(),
            Err(bytes) => bytes,
        };
        bytes.truncate(end);
        let head = bytes.get(..head_len).unwrap_or(&[]);
        let head = String::from_utf8_lossy(head).into_owned();
        Storage::Binary { bytes, head }
    }
}

impl fmt::Debug for Message {
    /// The head as text and the body as a length: a byte dump of a datagram reads badly.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Message")
            .field("head", &self.head())
            .field("body_len", &self.body.len())
            .finish()
    }
}

/// The CSeq header (RFC 3261 §20.16): `1*DIGIT LWS Method`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CSeq<'a> {
    /// The sequence number; up to 2^32-1 is accepted (§8.1.1.5 only bounds what a UAC
    /// generates, at 2^31-1).
    pub seq: u32,
    /// The method token as written.
    pub method: &'a str,
}

impl<'a> CSeq<'a> {
    /// Parses a CSeq value; leading zeros are fine (RFC 4475 §3.1.1.1 `0009`).
    pub fn parse(s: &'a str) -> Result<CSeq<'a>, ParseError> {
        let bad = ParseError::new(ParseErrorKind::BadValue, 400, "Bad CSeq");
        let s = syntax::trim_lws(s);
        let digits_end = s.bytes().take_while(u8::is_ascii_digit).count();
        let seq = syntax::parse_u32(s.get(..digits_end).unwrap_or("")).ok_or(bad)?;
        let rest = s.get(digits_end..).unwrap_or("");
        let method = syntax::trim_lws(rest);
        if method.len() == rest.len() || !syntax::is_token(method) {
            return Err(bad);
        }
        Ok(CSeq { seq, method })
    }
}

impl Message {
    /// The message bytes: leading CRLFs and trailing octets after the body excluded, folds
    /// turned into spaces.
    pub fn as_bytes(&self) -> &[u8] {
        match &self.storage {
            Storage::Text(text) => text.as_bytes(),
            Storage::Binary { bytes, .. } => bytes,
        }
    }

    /// The start line and header section as text.
    fn head(&self) -> &str {
        self.text().get(..self.body.start).unwrap_or("")
    }

    /// Text that starts with the head: spans into the head index it (the whole message
    /// when it is all text, which spares cutting it first).
    fn text(&self) -> &str {
        match &self.storage {
            Storage::Text(text) => text,
            Storage::Binary { head, .. } => head,
        }
    }

    /// A span of the head as text ("" for a span that is not one, which cannot happen for
    /// spans the parser made).
    pub(crate) fn head_str(&self, r: Range<usize>) -> &str {
        self.text().get(r).unwrap_or("")
    }

    /// Whether this is a request (else a response).
    pub fn is_request(&self) -> bool {
        matches!(self.start, StartLine::Request { .. })
    }

    /// The request method; `None` for a response.
    pub fn method(&self) -> Option<&Method> {
        match &self.start {
            StartLine::Request { method, .. } => Some(method),
            StartLine::Response { .. } => None,
        }
    }

    /// The Request-URI as written; `None` for a response. [`Uri::parse`] types it.
    pub fn request_uri(&self) -> Option<&str> {
        match &self.start {
            StartLine::Request { uri, .. } => Some(self.head_str(uri.clone())),
            StartLine::Response { .. } => None,
        }
    }

    /// The SIP-Version of the start line as written (`SIP/2.0`).
    pub fn version(&self) -> &str {
        match &self.start {
            StartLine::Request { version, .. } | StartLine::Response { version, .. } => {
                self.head_str(version.clone())
            }
        }
    }

    /// The status code of a response.
    pub fn status(&self) -> Option<u16> {
        match &self.start {
            StartLine::Response { status, .. } => Some(*status),
            StartLine::Request { .. } => None,
        }
    }

    /// The reason phrase of a response, as written (UTF-8, possibly empty).
    pub fn reason(&self) -> Option<&str> {
        match &self.start {
            StartLine::Response { reason, .. } => Some(self.head_str(reason.clone())),
            StartLine::Request { .. } => None,
        }
    }

    /// The header lines in wire order, one per line after unfolding.
    pub fn headers(&self) -> &[Header] {
        &self.headers
    }

    pub(crate) fn header_index(&self) -> &header::HeaderIndex {
        &self.index
    }

    /// Every value of a header, in order, trimmed: the lines of that name, each split at its
    /// commas when the header's grammar is a list ([`HeaderName::is_list`]: Via, Contact,
    /// Route, Record-Route, Allow, Supported, Require, Proxy-Require, Unsupported, Accept...;
    /// never the auth headers or Date). Commas inside quotes or `<>` do not split; empty list
    /// elements are skipped.
    pub fn values<'a>(&'a self, name: &HeaderName) -> Values<'a> {
        Values::new(self, name)
    }

    /// The first value of a header.
    pub fn value(&self, name: &HeaderName) -> Option<&str> {
        self.values(name).next()
    }

    /// How many values a header has (see [`Message::values`]).
    pub fn count(&self, name: &HeaderName) -> usize {
        self.values(name).count()
    }

    /// The body: exactly Content-Length octets, or the rest of the datagram when there is no
    /// Content-Length or it did not frame the datagram (then [`Message::validate`] fails).
    pub fn body(&self) -> &[u8] {
        self.as_bytes().get(self.body.clone()).unwrap_or(&[])
    }

    /// The topmost Via value (§8.2.6.2, §18.2.1), when it parses. Parsed once.
    pub fn top_via(&self) -> Option<Via<'_>> {
        self.top_via_spans().map(|v| v.view(self.text()))
    }

    /// The top Via's `rport` (RFC 3581): `Some(None)` when asked for, `Some(Some(port))`
    /// when filled in; `None` without one, or without a top Via that parses. Read from the
    /// parse cache without walking the parameters again.
    pub fn top_via_rport(&self) -> Option<Option<u16>> {
        self.top_via_spans().and_then(|v| v.rport)
    }

    /// The top Via's `branch` (§8.1.1.7), when it has a value: from the parse cache.
    pub fn top_via_branch(&self) -> Option<&str> {
        self.top_via_spans().and_then(|v| v.branch(self.text()))
    }

    /// The top Via's sent-by host as an address, when it is an IP literal: from the parse
    /// cache.
    pub fn top_via_host_ip(&self) -> Option<std::net::IpAddr> {
        self.top_via_spans().and_then(|v| v.host_ip(self.text()))
    }

    fn top_via_spans(&self) -> Option<&parsed::ViaSpans> {
        self.parsed
            .get()
            .top_via
            .get_or_init(|| {
                let via = Via::parse(self.value(&HeaderName::Via)?).ok()?;
                Some(parsed::ViaSpans::new(self.text(), &via))
            })
            .as_ref()
    }

    /// Every Via value that parses, top first. [`Message::validate`] ensures they all do.
    pub fn vias(&self) -> Vec<Via<'_>> {
        self.values(&HeaderName::Via)
            .filter_map(|v| Via::parse(v).ok())
            .collect()
    }

    /// The From header, when present and parsable. Parsed once.
    pub fn from(&self) -> Option<NameAddr<'_>> {
        self.name_addr(&self.parsed.get().from, &HeaderName::From)
    }

    /// The To header, when present and parsable. Parsed once.
    pub fn to(&self) -> Option<NameAddr<'_>> {
        self.name_addr(&self.parsed.get().to, &HeaderName::To)
    }

    /// The To tag (§19.3), when To parses and its tag has a value: from the parse cache.
    pub fn to_tag(&self) -> Option<&str> {
        self.tag_param(&HeaderName::To).flatten()
    }

    /// The From tag, as [`Message::to_tag`].
    pub fn from_tag(&self) -> Option<&str> {
        self.tag_param(&HeaderName::From).flatten()
    }

    /// The `tag` param of To or From (`name`): `None` absent (or the header does not parse),
    /// `Some(None)` without a value. Any other name has none.
    pub(crate) fn tag_param(&self, name: &HeaderName) -> Option<Option<&str>> {
        let cell = match name {
            HeaderName::To => &self.parsed.get().to,
            HeaderName::From => &self.parsed.get().from,
            _ => return None,
        };
        self.name_addr_spans(cell, name)?.tag(self.text())
    }

    fn name_addr<'a>(
        &'a self,
        cell: &'a std::cell::OnceCell<Option<parsed::NameAddrSpans>>,
        name: &HeaderName,
    ) -> Option<NameAddr<'a>> {
        self.name_addr_spans(cell, name)
            .map(|a| a.view(self.text()))
    }

    fn name_addr_spans<'a>(
        &'a self,
        cell: &'a std::cell::OnceCell<Option<parsed::NameAddrSpans>>,
        name: &HeaderName,
    ) -> Option<&'a parsed::NameAddrSpans> {
        cell.get_or_init(|| {
            let a = NameAddr::parse(self.value(name)?).ok()?;
            Some(parsed::NameAddrSpans::new(self.text(), &a))
        })
        .as_ref()
    }

    /// The Request-URI typed ([`Uri::parse`]); `None` for a response. Parsed once.
    pub fn request_uri_parsed(&self) -> Option<Result<Uri<'_>, ParseError>> {
        self.parsed
            .get()
            .request_uri
            .get_or_init(|| {
                let text = self.request_uri()?;
                Some(Uri::parse(text).map(|u| parsed::UriSpans::new(self.text(), &u)))
            })
            .as_ref()
            .map(|r| r.as_ref().map(|u| u.view(self.text())).map_err(|e| *e))
    }

    /// The URI of the From header typed ([`Uri::parse`]); `None` when From is absent or
    /// does not parse as a name-addr. Parsed once.
    pub fn from_uri(&self) -> Option<Result<Uri<'_>, ParseError>> {
        let p = self.parsed.get();
        self.uri_of(&p.from_uri, self.from(), (&p.to_uri, || self.to()))
    }

    /// The URI of the To header typed, as [`Message::from_uri`]. Parsed once.
    pub fn to_uri(&self) -> Option<Result<Uri<'_>, ParseError>> {
        let p = self.parsed.get();
        self.uri_of(&p.to_uri, self.to(), (&p.from_uri, || self.from()))
    }

    /// The URI of `address`, parsed once into `cell`; when the other of From and To
    /// (`other`: its cell and its address) has the same URI text, parsed already, its parse
    /// is moved over instead (a REGISTER's To repeats its From).
    fn uri_of<'a>(
        &'a self,
        cell: &'a std::cell::OnceCell<Option<Result<parsed::UriSpans, ParseError>>>,
        address: Option<NameAddr<'a>>,
        other: (
            &'a std::cell::OnceCell<Option<Result<parsed::UriSpans, ParseError>>>,
            impl FnOnce() -> Option<NameAddr<'a>>,
        ),
    ) -> Option<Result<Uri<'a>, ParseError>> {
        cell.get_or_init(|| {
            let uri = address?.uri;
            let head = self.text();
            if let Some(Some(done)) = other.0.get() {
                let from = other.1().map(|o| o.uri).filter(|o| *o == uri);
                let at = |s| parsed::offset_in(head, s);
                if let Some((from, to)) = from.and_then(at).zip(at(uri)) {
                    return Some(done.as_ref().map(|u| u.moved(from, to)).map_err(|e| *e));
                }
            }
            Some(Uri::parse(uri).map(|u| parsed::UriSpans::new(head, &u)))
        })
        .as_ref()
        .map(|r| r.as_ref().map(|u| u.view(self.text())).map_err(|e| *e))
    }

    /// The Call-ID.
    pub fn call_id(&self) -> Option<&str> {
        self.value(&HeaderName::CallId)
    }

    /// The CSeq, when present and parsable.
    pub fn cseq(&self) -> Option<CSeq<'_>> {
        self.value(&HeaderName::CSeq)
            .and_then(|v| CSeq::parse(v).ok())
    }

    /// Max-Forwards (§20.22), when present and a number (not range-checked: see validate).
    pub fn max_forwards(&self) -> Option<u32> {
        self.value(&HeaderName::MaxForwards)
            .and_then(syntax::parse_u32)
    }

    /// The Expires header (§20.19) in delta-seconds; `None` when absent or not a number.
    pub fn expires(&self) -> Option<u32> {
        self.value(&HeaderName::Expires).and_then(syntax::parse_u32)
    }

    /// The Contact header of a request (§20.10): `*` anywhere gives [`Contacts::Star`] (the
    /// registrar checks it is alone, §10.3 step 6); no Contact gives an empty list.
    pub fn contacts(&self) -> Result<Contacts<'_>, ParseError> {
        if self.values(&HeaderName::Contact).any(|v| v == "*") {
            return Ok(Contacts::Star);
        }
        self.values(&HeaderName::Contact)
            .map(NameAddr::parse)
            .collect::<Result<Vec<_>, _>>()
            .map(Contacts::List)
    }

    /// Content-Length (§20.14), when present and a number.
    pub fn content_length(&self) -> Option<usize> {
        self.value(&HeaderName::ContentLength)
            .and_then(|v| syntax::parse_usize(v.as_bytes()))
    }
}
