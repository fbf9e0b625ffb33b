//! Header field names (RFC 3261 §7.3, §7.3.3, §20) and the header lines of a parsed message.

use std::fmt;
use std::ops::Range;

use crate::message::syntax::find_unquoted;
use crate::message::Message;

/// A header field name, canonicalised: case-insensitive (RFC 3261 §7.3.1) and with the compact
/// forms of §7.3.3 and the IANA "Header Fields" registry mapped to their long form.
///
/// Names the core does not know are kept lower-cased in [`HeaderName::Other`], so two spellings
/// of an unknown name still compare equal.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[allow(missing_docs)] // The variants are the header names themselves (RFC 3261 §20 and extensions).
pub enum HeaderName {
    Via,
    From,
    To,
    CallId,
    CSeq,
    Contact,
    MaxForwards,
    ContentLength,
    ContentType,
    Expires,
    MinExpires,
    Route,
    RecordRoute,
    Authorization,
    ProxyAuthorization,
    WwwAuthenticate,
    ProxyAuthenticate,
    AuthenticationInfo,
    Require,
    ProxyRequire,
    Supported,
    Unsupported,
    Allow,
    Accept,
    Date,
    Subject,
    Event,
    ReferTo,
    ReferredBy,
    AcceptContact,
    RejectContact,
    RequestDisposition,
    ContentEncoding,
    Identity,
    IdentityInfo,
    AllowEvents,
    SessionExpires,
    RetryAfter,
    Warning,
    UserAgent,
    Server,
    Timestamp,
    /// Any other name, lower-cased.
    Other(String),
}

/// Longest known name ("Proxy-Authorization", "Request-Disposition", "Authentication-Info"
/// are 19); longer names cannot be known ones, so the stack buffer below never truncates one.
const KNOWN_NAME_LEN_MAX: usize = 24;

impl HeaderName {
    /// Canonicalises a header name, case-insensitively (RFC 3261 §7.3.1), mapping every compact
    /// form of RFC 3261 §7.3.3 and the IANA registry (`a b c d e f i j k l m n o r s t u v x
    /// y`) to its long form.
    pub fn parse(name: &str) -> HeaderName {
        HeaderName::from_bytes(name.as_bytes())
    }

    /// [`HeaderName::parse`] on bytes: the parser meets names before it has checked UTF-8.
    /// Lower-cases into a stack buffer, so a known name costs no allocation.
    pub(crate) fn from_bytes(name: &[u8]) -> HeaderName {
        let mut buf = [0u8; KNOWN_NAME_LEN_MAX];
        if name.len() <= KNOWN_NAME_LEN_MAX {
            for (d, s) in buf.iter_mut().zip(name) {
                *d = s.to_ascii_lowercase();
            }
            if let Some(known) = HeaderName::known(buf.get(..name.len()).unwrap_or(&[])) {
                return known;
            }
        }
        HeaderName::Other(String::from_utf8_lossy(name).to_ascii_lowercase())
    }

    /// The known name spelled by lower-case `n`, long or compact.
    fn known(n: &[u8]) -> Option<HeaderName> {
        use HeaderName::*;
        Some(match n {
            b"via" | b"v" => Via,
            b"from" | b"f" => From,
            b"to" | b"t" => To,
            b"call-id" | b"i" => CallId,
            b"cseq" => CSeq,
            b"contact" | b"m" => Contact,
            b"max-forwards" => MaxForwards,
            b"content-length" | b"l" => ContentLength,
            b"content-type" | b"c" => ContentType,
            b"expires" => Expires,
            b"min-expires" => MinExpires,
            b"route" => Route,
            b"record-route" => RecordRoute,
            b"authorization" => Authorization,
            b"proxy-authorization" => ProxyAuthorization,
            b"www-authenticate" => WwwAuthenticate,
            b"proxy-authenticate" => ProxyAuthenticate,
            b"authentication-info" => AuthenticationInfo,
            b"require" => Require,
            b"proxy-require" => ProxyRequire,
            b"supported" | b"k" => Supported,
            b"unsupported" => Unsupported,
            b"allow" => Allow,
            b"accept" => Accept,
            b"date" => Date,
            b"subject" | b"s" => Subject,
            // RFC 6665 §8.2.1 (was RFC 3265).
            b"event" | b"o" => Event,
            b"allow-events" | b"u" => AllowEvents,
            // RFC 3515 §2.1, RFC 3892 §3.
            b"refer-to" | b"r" => ReferTo,
            b"referred-by" | b"b" => ReferredBy,
            // RFC 3841 §9.
            b"accept-contact" | b"a" => AcceptContact,
            b"reject-contact" | b"j" => RejectContact,
            b"request-disposition" | b"d" => RequestDisposition,
            b"content-encoding" | b"e" => ContentEncoding,
            // RFC 8224 §4 (`y`) and RFC 4474 `Identity-Info` (`n`, obsoleted but registered).
            b"identity" | b"y" => Identity,
            b"identity-info" | b"n" => IdentityInfo,
            // RFC 4028 §4.
            b"session-expires" | b"x" => SessionExpires,
            b"retry-after" => RetryAfter,
            b"warning" => Warning,
            b"user-agent" => UserAgent,
            b"server" => Server,
            b"timestamp" => Timestamp,
            _ => return None,
        })
    }

    /// The canonical long form, as RFC 3261 §20 and the defining RFCs spell it ("Call-ID",
    /// "CSeq", "WWW-Authenticate"); an unknown name in lower case.
    pub fn as_str(&self) -> &str {
        use HeaderName::*;
        match self {
            Via => "Via",
            From => "From",
            To => "To",
            CallId => "Call-ID",
            CSeq => "CSeq",
            Contact => "Contact",
            MaxForwards => "Max-Forwards",
            ContentLength => "Content-Length",
            ContentType => "Content-Type",
            Expires => "Expires",
            MinExpires => "Min-Expires",
            Route => "Route",
            RecordRoute => "Record-Route",
            Authorization => "Authorization",
            ProxyAuthorization => "Proxy-Authorization",
            WwwAuthenticate => "WWW-Authenticate",
            ProxyAuthenticate => "Proxy-Authenticate",
            AuthenticationInfo => "Authentication-Info",
            Require => "Require",
            ProxyRequire => "Proxy-Require",
            Supported => "Supported",
            Unsupported => "Unsupported",
            Allow => "Allow",
            Accept => "Accept",
            Date => "Date",
            Subject => "Subject",
            Event => "Event",
            ReferTo => "Refer-To",
            ReferredBy => "Referred-By",
            AcceptContact => "Accept-Contact",
            RejectContact => "Reject-Contact",
            RequestDisposition => "Request-Disposition",
            ContentEncoding => "Content-Encoding",
            Identity => "Identity",
            IdentityInfo => "Identity-Info",
            AllowEvents => "Allow-Events",
            SessionExpires => "Session-Expires",
            RetryAfter => "Retry-After",
            Warning => "Warning",
            UserAgent => "User-Agent",
            Server => "Server",
            Timestamp => "Timestamp",
            Other(s) => s,
        }
    }

    /// Whether the header's grammar is a comma-separated list (`x *(COMMA x)`), so that one
    /// line may carry several values and several lines may be combined (RFC 3261 §7.3.1).
    ///
    /// Deliberately false for the auth headers (their params are comma-separated, §25.1
    /// `challenge`/`credentials`), Date (`Sat, 13 Nov`), and every single-valued header.
    pub fn is_list(&self) -> bool {
        use HeaderName::*;
        match self {
            Via | Contact | Route | RecordRoute | Require | ProxyRequire | Supported
            | Unsupported | Allow | Accept | ContentEncoding | Warning | AllowEvents
            | AcceptContact | RejectContact | RequestDisposition => true,
            Other(name) => OTHER_LIST_HEADERS.contains(&name.as_str()),
            _ => false,
        }
    }
}

/// Number of known header names: the slots of [`HeaderIndex`].
pub(crate) const KNOWN_NAMES: usize = 42;

impl HeaderName {
    /// The slot of a known name in [`HeaderIndex`]; `None` for [`HeaderName::Other`].
    fn slot(&self) -> Option<usize> {
        use HeaderName::*;
        Some(match self {
            Via => 0,
            From => 1,
            To => 2,
            CallId => 3,
            CSeq => 4,
            Contact => 5,
            MaxForwards => 6,
            ContentLength => 7,
            ContentType => 8,
            Expires => 9,
            MinExpires => 10,
            Route => 11,
            RecordRoute => 12,
            Authorization => 13,
            ProxyAuthorization => 14,
            WwwAuthenticate => 15,
            ProxyAuthenticate => 16,
            AuthenticationInfo => 17,
            Require => 18,
            ProxyRequire => 19,
            Supported => 20,
            Unsupported => 21,
            Allow => 22,
            Accept => 23,
            Date => 24,
            Subject => 25,
            Event => 26,
            ReferTo => 27,
            ReferredBy => 28,
            AcceptContact => 29,
            RejectContact => 30,
            RequestDisposition => 31,
            ContentEncoding => 32,
            Identity => 33,
            IdentityInfo => 34,
            AllowEvents => 35,
            SessionExpires => 36,
            RetryAfter => 37,
            Warning => 38,
            UserAgent => 39,
            Server => 40,
            Timestamp => 41,
            Other(_) => return None,
        })
    }
}

/// Where each known header name first appears among a message's header lines, built by the
/// parser. A lookup by name (a dozen per message on the REGISTER and INVITE paths) jumps to
/// its first line instead of comparing names along the list.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct HeaderIndex([u16; KNOWN_NAMES]);

impl HeaderIndex {
    /// No line is indexed beyond this one; later lines are found by scanning (the header
    /// limit is far below it).
    const ABSENT: u16 = u16::MAX;

    /// The index of `headers`.
    pub(crate) fn new(headers: &[Header]) -> HeaderIndex {
        let mut first = [Self::ABSENT; KNOWN_NAMES];
        for (i, h) in headers.iter().enumerate().rev() {
            if let (Some(slot), Ok(i)) = (h.name.slot(), u16::try_from(i)) {
                if let Some(f) = first.get_mut(slot) {
                    *f = i;
                }
            }
        }
        HeaderIndex(first)
    }

    /// The first line named `name`, if any; `Err(())` when the index cannot say (an
    /// unknown name, or a line past [`HeaderIndex::ABSENT`]) and the lines must be scanned.
    fn first(&self, name: &HeaderName, lines: usize) -> Result<Option<usize>, ()> {
        let slot = name.slot().ok_or(())?;
        match self.0.get(slot).copied() {
            Some(Self::ABSENT) if lines < usize::from(Self::ABSENT) => Ok(None),
            Some(Self::ABSENT) | None => Err(()),
            Some(i) => Ok(Some(usize::from(i))),
        }
    }
}

/// Lower-case names of other headers whose grammar is a comma-separated list: RFC 3261 §20
/// (Accept-Encoding, Accept-Language, Alert-Info, Call-Info, Content-Language, Error-Info,
/// In-Reply-To) and common extensions (RFC 3327 Path, RFC 3608 Service-Route, RFC 3326
/// Reason, RFC 3325 P-Asserted-Identity/P-Preferred-Identity, RFC 7044 History-Info,
/// RFC 3329 Security-*, RFC 4412 Resource-Priority, RFC 3455 P-Associated-URI).
const OTHER_LIST_HEADERS: &[&str] = &[
    "accept-encoding",
    "accept-language",
    "alert-info",
    "call-info",
    "content-language",
    "error-info",
    "in-reply-to",
    "path",
    "service-route",
    "reason",
    "p-asserted-identity",
    "p-preferred-identity",
    "history-info",
    "security-client",
    "security-server",
    "security-verify",
    "accept-resource-priority",
    "resource-priority",
    "p-associated-uri",
];

impl fmt::Display for HeaderName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One header line of a parsed message (a folded header counts as one line, RFC 3261 §7.3.1).
///
/// The spans index [`Message::as_bytes`], so a forwarding element can splice the message
/// (remove this line, insert before it) without re-serialising the rest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    /// The canonical name.
    pub name: HeaderName,
    /// The whole line, continuation lines and the final CRLF included.
    pub(crate) line: Range<usize>,
    /// The name as written (without the white space allowed before the colon).
    pub(crate) raw_name: Range<usize>,
    /// The value, LWS-trimmed; folds inside it have become spaces.
    pub(crate) value: Range<usize>,
}

impl Header {
    /// The name as it was written, e.g. `v` or `MaX-fOrWaRdS`.
    pub fn raw_name<'m>(&self, msg: &'m Message) -> &'m str {
        msg.head_str(self.raw_name.clone())
    }

    /// Where the whole line (continuations and CRLF included) sits in [`Message::as_bytes`].
    pub fn line_range(&self) -> Range<usize> {
        self.line.clone()
    }

    /// Where the trimmed value sits in [`Message::as_bytes`].
    pub fn value_range(&self) -> Range<usize> {
        self.value.clone()
    }

    /// The whole value of this line, trimmed, not split at commas.
    pub fn value<'m>(&self, msg: &'m Message) -> &'m str {
        msg.head_str(self.value.clone())
    }
}

/// Splits off the first element of a comma-separated header value (RFC 3261 §7.3.1): commas
/// inside a quoted-string or `<...>` do not separate. Returns the trimmed element and the text
/// after the comma, if there was one.
pub(crate) fn split_list(s: &str) -> (&str, Option<&str>) {
    match find_unquoted(s, b',', true) {
        Some(i) => (
            crate::message::syntax::trim_lws(s.get(..i).unwrap_or("")),
            s.get(i + 1..),
        ),
        None => (crate::message::syntax::trim_lws(s), None),
    }
}

/// The values of one header name, in message order; see [`Message::values`].
#[derive(Clone, Debug)]
pub struct Values<'a> {
    msg: &'a Message,
    /// The name looked for, borrowed from the first matching header so the iterator does not
    /// have to copy the caller's (possibly allocated) name.
    name: Option<&'a HeaderName>,
    list: bool,
    headers: std::slice::Iter<'a, Header>,
    /// The unsplit rest of the current line of a list header.
    pending: Option<&'a str>,
}

impl<'a> Values<'a> {
    pub(crate) fn new(msg: &'a Message, name: &HeaderName) -> Values<'a> {
        let headers = msg.headers();
        let first = msg
            .header_index()
            .first(name, headers.len())
            .unwrap_or_else(|()| headers.iter().position(|h| h.name == *name));
        let rest = first.and_then(|i| headers.get(i..)).unwrap_or(&[]);
        let name = rest.first().map(|h| &h.name);
        Values {
            msg,
            list: name.is_some_and(HeaderName::is_list),
            name,
            headers: rest.iter(),
            pending: None,
        }
    }
}

impl<'a> Iterator for Values<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        let name = self.name?;
        loop {
            if let Some(text) = self.pending.take() {
                let (value, rest) = split_list(text);
                self.pending = rest;
                // An empty element (`a,,b`, or an empty `Supported:`) is no value; validate()
                // rejects the ones that matter (RFC 4475 §3.1.2.1).
                if !value.is_empty() {
                    return Some(value);
                }
                continue;
            }
            let header = self.headers.by_ref().find(|h| h.name == *name)?;
            let value = header.value(self.msg);
            if !self.list {
                return Some(value);
            }
            self.pending = Some(value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_case_insensitive_and_compact_forms_map() {
        assert_eq!(HeaderName::parse("MaX-fOrWaRdS"), HeaderName::MaxForwards);
        assert_eq!(HeaderName::parse("v"), HeaderName::Via);
        assert_eq!(HeaderName::parse("V"), HeaderName::Via);
        assert_eq!(HeaderName::parse("i"), HeaderName::CallId);
        assert_eq!(HeaderName::parse("CALL-id"), HeaderName::CallId);
        assert_eq!(
            HeaderName::parse("www-authenticate"),
            HeaderName::WwwAuthenticate
        );
        assert_eq!(
            HeaderName::parse("X-Custom"),
            HeaderName::Other("x-custom".into())
        );
        assert_eq!(
            HeaderName::parse("C%6Fntact"),
            HeaderName::Other("c%6fntact".into())
        );
        let compact = [
            ("a", "Accept-Contact"),
            ("b", "Referred-By"),
            ("c", "Content-Type"),
            ("d", "Request-Disposition"),
            ("e", "Content-Encoding"),
            ("f", "From"),
            ("i", "Call-ID"),
            ("j", "Reject-Contact"),
            ("k", "Supported"),
            ("l", "Content-Length"),
            ("m", "Contact"),
            ("n", "Identity-Info"),
            ("o", "Event"),
            ("r", "Refer-To"),
            ("s", "Subject"),
            ("t", "To"),
            ("u", "Allow-Events"),
            ("v", "Via"),
            ("x", "Session-Expires"),
            ("y", "Identity"),
        ];
        for (short, long) in compact {
            assert_eq!(HeaderName::parse(short).as_str(), long, "{short}");
            assert_eq!(HeaderName::parse(&short.to_uppercase()).as_str(), long);
            assert_eq!(HeaderName::parse(long), HeaderName::parse(short));
        }
        // Letters that are no compact form stay unknown.
        assert_eq!(HeaderName::parse("g"), HeaderName::Other("g".into()));
    }

    #[test]
    fn canonical_spellings() {
        for n in [
            "Call-ID",
            "CSeq",
            "WWW-Authenticate",
            "Max-Forwards",
            "Proxy-Authorization",
            "Authentication-Info",
            "Request-Disposition",
        ] {
            assert_eq!(HeaderName::parse(n).as_str(), n);
            assert!(!matches!(HeaderName::parse(n), HeaderName::Other(_)));
        }
        let long = "a".repeat(100);
        assert_eq!(HeaderName::parse(&long), HeaderName::Other(long.clone()));
    }

    #[test]
    fn list_split_respects_quotes_and_angles() {
        let (a, rest) = split_list(r#" "Smith, Bob" <sip:b@x;p="1,2">;q=0.5 , <sip:c@y> "#);
        assert_eq!(a, r#""Smith, Bob" <sip:b@x;p="1,2">;q=0.5"#);
        let (b, rest) = split_list(rest.unwrap_or_default());
        assert_eq!(b, "<sip:c@y>");
        assert_eq!(rest, None);
    }
}
