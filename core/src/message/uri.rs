//! URIs: RFC 3261 §19.1 SIP and SIPS URIs, and every other scheme as an opaque absoluteURI
//! (§25.1) so that it can be answered with 416 (§8.2.2.1) instead of being dropped as garbage.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::message::params::Params;
use crate::message::syntax::{
    class_table, hex_value, is_escaped_text, is_unreserved, parse_port, split_at_byte, unreserved,
};
use crate::message::{ParseError, ParseErrorKind};

/// A URI as found in a Request-URI, a name-addr or an addr-spec.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Uri<'a> {
    /// `sip:` or `sips:` (RFC 3261 §19.1).
    Sip(SipUri<'a>),
    /// Any other scheme (`tel:`, `mailto:`, `nobodyKnowsThisScheme:`), kept opaque.
    Other {
        /// The scheme as written.
        scheme: &'a str,
        /// Everything after the `:`.
        rest: &'a str,
    },
}

/// A SIP or SIPS URI (RFC 3261 §19.1.1), borrowed from the text it was parsed from. Escapes
/// are kept as written; [`SipUri::aor`] and [`SipUri::equivalent`] apply the §19.1.4 rules.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SipUri<'a> {
    /// `sips:`.
    pub secure: bool,
    /// The user part, escapes kept. It may contain `;` and `?` (RFC 4475 §3.1.1.9).
    pub user: Option<&'a str>,
    /// The password (deprecated by §19.1.1 but still grammar).
    pub password: Option<&'a str>,
    /// The host; an IPv6 reference keeps its brackets (`[2001:db8::1]`).
    pub host: &'a str,
    /// The port, when written.
    pub port: Option<u16>,
    /// The `uri-parameters`.
    pub params: Params<'a>,
    /// The `headers` component after `?`, raw.
    pub headers: Option<&'a str>,
}

fn bad_uri(reason: &'static str) -> ParseError {
    ParseError::new(ParseErrorKind::BadUri, 400, reason)
}

/// RFC 3261 §25.1 `scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )`.
fn is_scheme(s: &str) -> bool {
    let mut b = s.bytes();
    b.next().is_some_and(|c| c.is_ascii_alphabetic())
        && b.all(|c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'-' | b'.'))
}

impl<'a> Uri<'a> {
    /// Parses a URI. `sip:`/`sips:` (case-insensitive scheme) must follow RFC 3261 §19.1.1;
    /// other schemes only need a scheme and printable, unbracketed text.
    pub fn parse(s: &'a str) -> Result<Uri<'a>, ParseError> {
        let Some((scheme, rest)) = split_at_byte(s, b':') else {
            return Err(bad_uri("Bad URI: No Scheme"));
        };
        if !is_scheme(scheme) {
            // Catches `<sip:...>` used where an addr-spec belongs (RFC 4475 §3.1.2.7).
            return Err(bad_uri("Bad URI Scheme"));
        }
        if scheme.eq_ignore_ascii_case("sip") {
            return SipUri::parse(rest, false).map(Uri::Sip);
        }
        if scheme.eq_ignore_ascii_case("sips") {
            return SipUri::parse(rest, true).map(Uri::Sip);
        }
        // §25.1 absoluteURI: uric characters, never white space, controls or `<>"`.
        let opaque_ok = !rest.is_empty()
            && rest
                .bytes()
                .all(|b| b > 0x20 && b < 0x7f && !matches!(b, b'<' | b'>' | b'"'));
        if !opaque_ok {
            return Err(bad_uri("Bad URI"));
        }
        Ok(Uri::Other { scheme, rest })
    }

    /// The scheme: `sip`/`sips` in lower case, any other as written.
    pub fn scheme(&self) -> &str {
        match self {
            Uri::Sip(u) if u.secure => "sips",
            Uri::Sip(_) => "sip",
            Uri::Other { scheme, .. } => scheme,
        }
    }
}

/// §25.1 `user` characters besides escaped: unreserved and `user-unreserved`.
const fn user_char(b: u8) -> bool {
    unreserved(b) || matches!(b, b'&' | b'=' | b'+' | b'$' | b',' | b';' | b'?' | b'/')
}

static USER_CHARS: [bool; 256] = class_table!(user_char);

/// See `user_char`.
fn is_user_char(b: u8) -> bool {
    // 256 entries: every byte has one.
    USER_CHARS[usize::from(b)]
}

/// §25.1 `password` characters besides unreserved and escaped.
fn is_password_char(b: u8) -> bool {
    is_unreserved(b) || matches!(b, b'&' | b'=' | b'+' | b'$' | b',')
}

/// §25.1 `hnv-unreserved` plus unreserved: the characters of `hname` and `hvalue`.
fn is_header_char(b: u8) -> bool {
    is_unreserved(b) || matches!(b, b'[' | b']' | b'/' | b'?' | b':' | b'+' | b'$')
}

/// §25.1 `hostname` / `IPv4address` characters. `_` is not in the grammar but is common in
/// the wild (container host names) and harmless, so it is accepted.
const fn host_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_')
}

static HOST_CHARS: [bool; 256] = class_table!(host_char);

/// See `host_char`.
fn is_host_char(b: u8) -> bool {
    // 256 entries: every byte has one.
    HOST_CHARS[usize::from(b)]
}

/// The reason phrase of a SIP URI whose host is an IPv6 address without its brackets.
pub(crate) const UNBRACKETED_IPV6: &str = "Bad SIP URI: IPv6 Address Without Brackets";

/// RFC 3261 §25.1 `IPv6address` as an address. RFC 3261 took this rule from RFC 2373, and it
/// also derives a third colon before an embedded IPv4 address (`2001:db8:::192.0.2.1`:
/// `hexseq "::"` then `":" IPv4address`); RFC 4291 fixed the grammar, and RFC 5118 §4.10
/// says that "an implementation must tolerate both of the above constructs", so that colon
/// is ignored here.
fn ipv6_address(s: &str) -> Option<Ipv6Addr> {
    if let Ok(ip) = s.parse() {
        return Some(ip);
    }
    let (hexpart, ipv4) = s.split_once(":::")?;
    if ipv4.contains(':') || ipv4.parse::<Ipv4Addr>().is_err() {
        return None;
    }
    format!("{hexpart}::{ipv4}").parse().ok()
}

/// The IP address a host names, if it is one: an RFC 3261 §25.1 `IPv4address`, an
/// `IPv6reference` (`[2001:db8::1]`, as in a URI host or a Via sent-by) or a bare
/// `IPv6address` (as in a Via `received`, where RFC 5118 §4.5 asks for both forms to be
/// accepted). The RFC 2373 extra colon is tolerated (RFC 5118 §4.10).
pub fn host_ip(host: &str) -> Option<IpAddr> {
    if let Some(inner) = host.strip_prefix('[') {
        return ipv6_address(inner.strip_suffix(']')?).map(IpAddr::V6);
    }
    if host.contains(':') {
        return ipv6_address(host).map(IpAddr::V6);
    }
    host.parse::<Ipv4Addr>().ok().map(IpAddr::V4)
}

/// Splits `host[:port]` where host may be an RFC 3261 §25.1 `IPv6reference`. Shared with the
/// Via sent-by (§20.42), which has the same shape. Inside the brackets must be an IPv6
/// address (RFC 5118 §4.10's extra colon tolerated); `[2001:db8::10:5070]` is one, with
/// `5070` as its last group (RFC 5118 §4.3), and no port.
pub(crate) fn split_hostport(s: &str) -> Option<(&str, Option<u16>)> {
    let (host, port) = if s.starts_with('[') {
        let close = s.find(']')?;
        let host = s.get(..=close)?;
        host_ip(host)?;
        match s.get(close + 1..)? {
            "" => (host, None),
            p => (host, Some(p.strip_prefix(':')?)),
        }
    } else {
        match split_at_byte(s, b':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        }
    };
    if !host.starts_with('[') && (host.is_empty() || !host.bytes().all(is_host_char)) {
        return None;
    }
    match port {
        None => Some((host, None)),
        Some(p) => parse_port(p).map(|p| (host, Some(p))),
    }
}

impl<'a> SipUri<'a> {
    /// Parses what follows `sip:`/`sips:` (RFC 3261 §19.1.1 and §25.1 `SIP-URI`).
    fn parse(rest: &'a str, secure: bool) -> Result<SipUri<'a>, ParseError> {
        // No white space inside a URI (RFC 4475 §3.1.2.8, §3.1.2.14) and no raw non-ASCII:
        // anything else must be escaped.
        if rest.bytes().any(|b| b <= 0x20 || b >= 0x7f) {
            return Err(bad_uri("Bad SIP URI: Unescaped Characters"));
        }
        // At most one `@`: neither host, params nor headers may contain one unescaped, so the
        // first `@` ends the userinfo even when the user holds `;` or `?` (RFC 4475 §3.1.1.9).
        let (userinfo, hostpart) = match split_at_byte(rest, b'@') {
            Some((u, h)) => (Some(u), h),
            None => (None, rest),
        };
        if hostpart.bytes().any(|b| b == b'@') {
            return Err(bad_uri("Bad SIP URI: Two @"));
        }
        let (user, password) = match userinfo {
            None => (None, None),
            Some(u) => {
                let (user, password) = match split_at_byte(u, b':') {
                    Some((user, pw)) => (user, Some(pw)),
                    None => (u, None),
                };
                if user.is_empty() || !is_escaped_text(user, is_user_char) {
                    return Err(bad_uri("Bad SIP URI User"));
                }
                if password.is_some_and(|pw| !is_escaped_text(pw, is_password_char)) {
                    return Err(bad_uri("Bad SIP URI Password"));
                }
                (Some(user), password)
            }
        };
        let hp_end = memchr::memchr2(b';', b'?', hostpart.as_bytes()).unwrap_or(hostpart.len());
        let hostport = hostpart.get(..hp_end).unwrap_or("");
        let Some((host, port)) = split_hostport(hostport) else {
            // RFC 5118 §4.2: `sip:2001:db8::10` lacks the brackets RFC 3261 §25.1
            // `IPv6reference` mandates.
            if host_ip(hostport).is_some_and(|ip| ip.is_ipv6()) {
                return Err(bad_uri(UNBRACKETED_IPV6));
            }
            return Err(bad_uri("Bad SIP URI Host"));
        };
        let after = hostpart.get(hp_end..).unwrap_or("");
        let (params_text, headers) = match split_at_byte(after, b'?') {
            Some((p, h)) => (p, Some(h)),
            None => (after, None),
        };
        let params = Params::new(params_text.strip_prefix(';').unwrap_or(params_text));
        if !params.check_uri_params() {
            return Err(bad_uri("Bad SIP URI Parameter"));
        }
        if let Some(h) = headers {
            let ok = h.split('&').all(|hdr| match hdr.split_once('=') {
                Some((n, v)) => {
                    !n.is_empty()
                        && is_escaped_text(n, is_header_char)
                        && is_escaped_text(v, is_header_char)
                }
                None => false,
            });
            if !ok {
                return Err(bad_uri("Bad SIP URI Headers"));
            }
        }
        Ok(SipUri {
            secure,
            user,
            password,
            host,
            port,
            params,
            headers,
        })
    }

    /// RFC 3261 §10.3 step 5 / §19.1.4: the canonical address-of-record `sip:user@host`: scheme
    /// in lower case (`sips` kept), host in lower case, escapes of unreserved characters in the
    /// user decoded (other escapes kept, hex upper-cased), the port only when written, and no
    /// password, parameters or headers.
    pub fn aor(&self) -> String {
        let mut s =
            String::with_capacity(5 + self.user.map_or(0, str::len) + 1 + self.host.len() + 6);
        self.write_aor(&mut s);
        s
    }

    /// Whether [`SipUri::aor`] is `aor`, without building it (a REGISTER's Contacts are
    /// compared with its AOR so).
    pub fn aor_is(&self, aor: &str) -> bool {
        let mut rest = Match(Some(aor.as_bytes()));
        self.write_aor(&mut rest);
        rest.0.is_some_and(<[u8]>::is_empty)
    }

    /// [`SipUri::aor`] written to `out`.
    pub fn write_aor(&self, out: &mut impl AorSink) {
        out.text(if self.secure { "sips:" } else { "sip:" });
        match self.user {
            // Most users have no escapes: copied as they are.
            Some(user) if !user.contains('%') => {
                out.text(user);
                out.text("@");
            }
            Some(user) => {
                for unit in Units::new(user) {
                    let mut escaped = [b'%', 0, 0];
                    let written = match unit {
                        Unit::Plain(b) => {
                            escaped[0] = b;
                            &escaped[..1]
                        }
                        Unit::Escaped(b) => {
                            escaped[1] =
                                HEX_UPPER.get(usize::from(b >> 4)).copied().unwrap_or(b'0');
                            escaped[2] =
                                HEX_UPPER.get(usize::from(b & 0xf)).copied().unwrap_or(b'0');
                            &escaped[..]
                        }
                    };
                    // A unit is one byte of the user or an escape: text either way, but a
                    // decoded byte may be half of a multi-byte character, hence bytes.
                    out.bytes(written);
                }
                out.text("@");
            }
            None => {}
        }
        out.lower(self.host);
        if let Some(port) = self.port {
            out.text(":");
            out.text(super::decimal(u64::from(port), &mut [0; 20]));
        }
    }

    /// RFC 3261 §19.1.4 URI comparison: same scheme; userinfo equal case-sensitively; host,
    /// parameters and headers case-insensitively; escapes of characters outside the `reserved`
    /// set equal to the characters; a port only equals the same explicit port (no default
    /// filled in); `user`, `ttl`, `method`, `maddr` and `transport` must be in both or neither, any other
    /// parameter only has to match when in both; headers must all match.
    pub fn equivalent(&self, other: &SipUri) -> bool {
        self.secure == other.secure
            && opt_eq(self.user, other.user, false)
            && opt_eq(self.password, other.password, false)
            && self.host.eq_ignore_ascii_case(other.host)
            && self.port == other.port
            && params_match(&self.params, &other.params)
            && params_match(&other.params, &self.params)
            && headers_match(self.headers, other.headers)
    }
}

const HEX_UPPER: &[u8; 16] = b"0123456789ABCDEF";

/// Where [`SipUri::write_aor`] writes: a `String`, or a comparison with a given AOR.
pub trait AorSink {
    /// Text as it is.
    fn text(&mut self, s: &str);
    /// Text in ASCII lower case (the host).
    fn lower(&mut self, s: &str);
    /// Bytes of a user part, each one byte of the AOR.
    fn bytes(&mut self, b: &[u8]);
}

impl AorSink for String {
    fn text(&mut self, s: &str) {
        self.push_str(s);
    }
    fn lower(&mut self, s: &str) {
        let at = self.len();
        self.push_str(s);
        if let Some(tail) = self.get_mut(at..) {
            tail.make_ascii_lowercase();
        }
    }
    fn bytes(&mut self, b: &[u8]) {
        // As `aor` always did: each byte a char (a decoded byte is ASCII when unreserved).
        self.extend(b.iter().map(|&b| char::from(b)));
    }
}

/// What is left of an AOR being compared with one written; `None` once they differ.
struct Match<'a>(Option<&'a [u8]>);

impl Match<'_> {
    fn take(&mut self, n: usize, eq: impl Fn(&[u8]) -> bool) {
        self.0 = self
            .0
            .and_then(|rest| rest.split_at_checked(n))
            .filter(|(head, _)| eq(head))
            .map(|(_, tail)| tail);
    }
}

impl AorSink for Match<'_> {
    fn text(&mut self, s: &str) {
        self.take(s.len(), |head| head == s.as_bytes());
    }
    fn lower(&mut self, s: &str) {
        self.take(s.len(), |head| {
            head.iter()
                .zip(s.bytes())
                .all(|(h, b)| *h == b.to_ascii_lowercase())
        });
    }
    fn bytes(&mut self, b: &[u8]) {
        // `aor` writes each byte as a char: a byte of 0x80 or more takes two in UTF-8.
        for &byte in b {
            let mut buf = [0; 4];
            let c = char::from(byte).encode_utf8(&mut buf);
            self.text(c);
        }
    }
}

/// The URI parameters that must be in both URIs or in neither (§19.1.4: `user`, `ttl`,
/// `method` and `maddr` in the parameter rules, `transport` as a component with a default
/// value, which the RFC's `sip:bob@biloxi.com;transport=udp` example confirms).
const PARAMS_IN_BOTH: [&str; 5] = ["user", "ttl", "method", "maddr", "transport"];

/// Parameters are compared by name, each with the value [`Params::get`] reads: a repeated
/// parameter (which the grammar does not forbid) counts once, with its first value, so that a
/// URI is always equivalent to itself.
fn params_match(a: &Params<'_>, b: &Params<'_>) -> bool {
    a.iter().all(|(name, _)| match (a.get(name), b.get(name)) {
        (Some(mine), Some(other)) => opt_eq(mine, other, true),
        _ => !PARAMS_IN_BOTH.iter().any(|p| p.eq_ignore_ascii_case(name)),
    })
}

fn headers_match(a: Option<&str>, b: Option<&str>) -> bool {
    fn contained(a: &str, b: &str) -> bool {
        a.split('&').all(|ha| {
            let (na, va) = ha.split_once('=').unwrap_or((ha, ""));
            b.split('&').any(|hb| {
                let (nb, vb) = hb.split_once('=').unwrap_or((hb, ""));
                escaped_eq(na, nb, true) && escaped_eq(va, vb, true)
            })
        })
    }
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => contained(a, b) && contained(b, a),
        _ => false,
    }
}

fn opt_eq(a: Option<&str>, b: Option<&str>, ignore_case: bool) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => escaped_eq(a, b, ignore_case),
        _ => false,
    }
}

/// Compares URI components with escapes normalised (§19.1.4), without allocating.
fn escaped_eq(a: &str, b: &str, ignore_case: bool) -> bool {
    let fold = |u: Unit| match u {
        Unit::Plain(c) if ignore_case => Unit::Plain(c.to_ascii_lowercase()),
        u => u,
    };
    Units::new(a).map(fold).eq(Units::new(b).map(fold))
}

/// One character of a URI component after §19.1.4 normalisation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Unit {
    /// A character as written, or the decoding of an escaped unreserved character.
    Plain(u8),
    /// An escape that must stay one (a reserved or otherwise special octet).
    Escaped(u8),
}

/// Walks a URI component yielding [`Unit`]s. A `%` not followed by two hex digits (which
/// parsing rejects anyway) is taken literally.
struct Units<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Units<'a> {
    fn new(s: &'a str) -> Units<'a> {
        Units {
            b: s.as_bytes(),
            i: 0,
        }
    }
}

impl Iterator for Units<'_> {
    type Item = Unit;

    fn next(&mut self) -> Option<Unit> {
        let c = *self.b.get(self.i)?;
        if c == b'%' {
            let hi = self.b.get(self.i + 1).copied().and_then(hex_value);
            let lo = self.b.get(self.i + 2).copied().and_then(hex_value);
            if let (Some(hi), Some(lo)) = (hi, lo) {
                self.i += 3;
                let v = hi << 4 | lo;
                return Some(if is_unreserved(v) {
                    Unit::Plain(v)
                } else {
                    Unit::Escaped(v)
                });
            }
        }
        self.i += 1;
        Some(Unit::Plain(c))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sip(s: &str) -> SipUri<'_> {
        match Uri::parse(s) {
            Ok(Uri::Sip(u)) => u,
            other => panic!("{s}: {other:?}"),
        }
    }

    #[test]
    fn parts() {
        let u = sip(
            "sips:alice:secret@Atlanta.Example.com:5061;transport=tcp;lr?subject=x&priority=urgent",
        );
        assert!(u.secure);
        assert_eq!(u.user, Some("alice"));
        assert_eq!(u.password, Some("secret"));
        assert_eq!(u.host, "Atlanta.Example.com");
        assert_eq!(u.port, Some(5061));
        assert_eq!(u.params.get("transport"), Some(Some("tcp")));
        assert_eq!(u.params.get("lr"), Some(None));
        assert_eq!(u.headers, Some("subject=x&priority=urgent"));
        assert_eq!(u.aor(), "sips:alice@atlanta.example.com:5061");
    }

    #[test]
    fn ipv6_hosts() {
        let u = sip("sip:bob@[2001:db8::1]:5060;maddr=[2001:db8::2]");
        assert_eq!(u.host, "[2001:db8::1]");
        assert_eq!(u.port, Some(5060));
        assert_eq!(u.params.get("maddr"), Some(Some("[2001:db8::2]")));
        let u = sip("sip:[2001:DB8::1]");
        assert_eq!(u.port, None);
        assert_eq!(u.aor(), "sip:[2001:db8::1]");
        assert!(Uri::parse("sip:[2001:db8::1").is_err());
        assert!(Uri::parse("sip:[zz]").is_err());
        assert!(Uri::parse("sip:[::1]x").is_err());
        // Brackets hold an IPv6 address, nothing else (RFC 3261 §25.1 IPv6reference).
        for bad in [
            "sip:[1:2]",
            "sip:[:::::]",
            "sip:[2001:db8::1::2]",
            "sip:[192.0.2.1]",
        ] {
            assert!(Uri::parse(bad).is_err(), "{bad}");
        }
    }

    /// RFC 5118 §4.2: no brackets around the IPv6 address, a 400 that says so.
    #[test]
    fn ipv6_without_brackets_is_named() {
        for bad in ["sip:2001:db8::10", "sip:user@2001:db8::10", "sip:::1;lr"] {
            let e = Uri::parse(bad).unwrap_err();
            assert_eq!((e.status, e.reason), (400, UNBRACKETED_IPV6), "{bad}");
        }
        assert_eq!(
            Uri::parse("sip:host:50:60").unwrap_err().reason,
            "Bad SIP URI Host"
        );
    }

    /// RFC 5118 §4.3 and §4.4: the port is outside the brackets; inside, `5070` is the last
    /// group of the address.
    #[test]
    fn port_inside_or_outside_the_brackets() {
        let u = sip("sip:[2001:db8::10:5070]");
        assert_eq!((u.host, u.port), ("[2001:db8::10:5070]", None));
        assert_eq!(host_ip(u.host), "2001:db8::10:5070".parse().ok());
        let u = sip("sip:[2001:db8::10]:5070");
        assert_eq!((u.host, u.port), ("[2001:db8::10]", Some(5070)));
        assert_eq!(host_ip(u.host), "2001:db8::10".parse().ok());
    }

    /// RFC 5118 §4.9 (IPv4-mapped) and §4.10 (the RFC 2373 extra colon, tolerated).
    #[test]
    fn embedded_ipv4() {
        let u = sip("sip:ted@[::ffff:192.0.2.2]");
        assert_eq!(host_ip(u.host), "::ffff:192.0.2.2".parse().ok());
        let two = sip("sip:user@[2001:db8::192.0.2.1]");
        let three = sip("sip:user@[2001:db8:::192.0.2.1]");
        assert_eq!(host_ip(two.host), "2001:db8::c000:201".parse().ok());
        assert_eq!(host_ip(three.host), host_ip(two.host));
        assert_eq!(host_ip("[:::192.0.2.1]"), "::192.0.2.1".parse().ok());
        // Only before an embedded IPv4 address, where the old grammar puts it.
        for bad in [
            "[2001:db8:::1]",
            "[2001:db8:::192.0.2.1:1]",
            "[2001:::db8::1]",
        ] {
            assert_eq!(host_ip(bad), None, "{bad}");
        }
    }

    #[test]
    fn host_ip_forms() {
        assert_eq!(host_ip("192.0.2.1"), "192.0.2.1".parse().ok());
        assert_eq!(host_ip("[2001:db8::9:255]"), "2001:db8::9:255".parse().ok());
        assert_eq!(host_ip("2001:db8::9:255"), "2001:db8::9:255".parse().ok());
        for not_ip in [
            "example.com",
            "[2001:db8::1",
            "2001:db8::1]",
            "[example.com]",
            "",
        ] {
            assert_eq!(host_ip(not_ip), None, "{not_ip}");
        }
    }

    #[test]
    fn user_may_hold_semicolons_and_question_marks() {
        // RFC 4475 §3.1.1.9 and §3.1.1.2.
        let u = sip("sip:user;par=u%40example.net@example.com");
        assert_eq!(u.user, Some("user;par=u%40example.net"));
        assert_eq!(u.host, "example.com");
        assert!(u.params.is_empty());
        let u = sip("sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*:&it+has=1,weird!*pas$wo~d_too.(doesn't-it)@example.com");
        assert_eq!(
            u.user,
            Some("1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*")
        );
        assert_eq!(
            u.password,
            Some("&it+has=1,weird!*pas$wo~d_too.(doesn't-it)")
        );
    }

    #[test]
    fn other_schemes_are_opaque() {
        assert_eq!(
            Uri::parse("nobodyKnowsThisScheme:totallyopaquecontent"),
            Ok(Uri::Other {
                scheme: "nobodyKnowsThisScheme",
                rest: "totallyopaquecontent"
            })
        );
        let u = Uri::parse("soap.beep://192.0.2.103:3002").unwrap();
        assert_eq!(u.scheme(), "soap.beep");
        assert_eq!(Uri::parse("SIP:a@b").unwrap().scheme(), "sip");
        assert!(Uri::parse("<sip:user@example.com>").is_err());
        assert!(Uri::parse("tel:").is_err());
        assert!(Uri::parse("no-colon").is_err());
    }

    #[test]
    fn rejects() {
        for bad in [
            "sip:",
            "sip:@host",
            "sip:a@b@c",
            "sip:user@host:99999",
            "sip:user@host:",
            "sip:user@ho st",
            "sip:user@example.com; lr",
            "sip:user@host;;lr",
            "sip:user@host?Route",
            "sip:us%4@host",
            "sip:user@host;a=<b>",
        ] {
            assert!(Uri::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn aor_decodes_unreserved_escapes_only() {
        assert_eq!(
            sip("sip:%75se%72@Example.COM").aor(),
            "sip:user@example.com"
        );
        assert_eq!(
            sip("sip:null-%00-null@example.com").aor(),
            "sip:null-%00-null@example.com"
        );
        assert_eq!(sip("sip:a%3bb@x;transport=udp").aor(), "sip:a%3Bb@x");
        assert_eq!(sip("sip:example.com").aor(), "sip:example.com");
        assert_eq!(sip("SIPS:u:pw@h:5061?x=y").aor(), "sips:u@h:5061");
        assert_eq!(
            sip("sip:%62ob@Biloxi.Example.COM;transport=tcp").aor(),
            "sip:bob@biloxi.example.com"
        );
        assert_eq!(sip("sips:a%3bb:pw@x:5061?h=v").aor(), "sips:a%3Bb@x:5061");
        // A user without escapes is copied as written; the host is lower-cased.
        assert_eq!(
            sip("sip:Bob@Biloxi.Example.COM").aor(),
            "sip:Bob@biloxi.example.com"
        );
    }

    /// `aor_is` says what comparing with `aor()` says, without building it.
    #[test]
    fn aor_is_compares_with_the_aor_unbuilt() {
        for text in [
            "sip:%75se%72@Example.COM",
            "sip:null-%00-null@example.com",
            "sip:a%3bb@x;transport=udp",
            "sip:example.com",
            "SIPS:u:pw@h:5061?x=y",
            "sip:Bob@Biloxi.Example.COM",
            "sip:%C3%A9t%c3%a9@x",
        ] {
            let u = sip(text);
            let aor = u.aor();
            assert!(u.aor_is(&aor), "{text}: {aor}");
            for other in [
                format!("{aor}x"),
                aor[..aor.len() - 1].to_owned(),
                aor.to_uppercase(),
                String::new(),
                aor.replacen("sip", "sips", 1),
            ] {
                assert_eq!(u.aor_is(&other), other == aor, "{text}: {other}");
            }
        }
    }

    #[test]
    fn equivalence_follows_19_1_4() {
        let eq = |a: &str, b: &str| sip(a).equivalent(&sip(b));
        // The RFC's own examples of equivalent URIs.
        assert!(eq(
            "sip:%61lice@atlanta.com;transport=TCP",
            "sip:alice@AtLanTa.CoM;Transport=tcp"
        ));
        assert!(eq(
            "sip:carol@chicago.com",
            "sip:carol@chicago.com;newparam=5"
        ));
        assert!(eq(
            "sip:carol@chicago.com;security=on",
            "sip:carol@chicago.com;newparam=5"
        ));
        assert!(eq(
            "sip:biloxi.com;transport=tcp;method=REGISTER?to=sip:bob%40biloxi.com",
            "sip:biloxi.com;method=REGISTER;transport=tcp?to=sip:bob%40biloxi.com"
        ));
        assert!(eq(
            "sip:alice@atlanta.com?subject=project%20x&priority=urgent",
            "sip:alice@atlanta.com?priority=urgent&subject=project%20x"
        ));
        // And the non-equivalent ones.
        assert!(!eq(
            "SIP:ALICE@AtLanTa.CoM;Transport=udp",
            "sip:alice@AtLanTa.CoM;Transport=UDP"
        ));
        assert!(!eq("sip:bob@biloxi.com", "sip:bob@biloxi.com:5060"));
        assert!(!eq(
            "sip:bob@biloxi.com",
            "sip:bob@biloxi.com;transport=udp"
        ));
        assert!(!eq(
            "sip:bob@biloxi.com:6000;transport=tcp",
            "sip:bob@biloxi.com"
        ));
        assert!(!eq(
            "sip:carol@chicago.com",
            "sip:carol@chicago.com?Subject=next%20meeting"
        ));
        assert!(!eq("sip:bob@phone21.boxesbybob.com", "sip:bob@192.0.2.4"));
        assert!(!eq("sip:a@h;maddr=x", "sip:a@h"));
        assert!(!eq("sips:a@h", "sip:a@h"));
        assert!(!eq("sip:a%3bb@h", "sip:a;b@h"));
    }

    // Found by the `parse` fuzz target: a parameter repeated with another value made a URI
    // not equivalent to itself, so a Contact like this could never be refreshed.
    #[test]
    fn a_repeated_parameter_counts_once_and_a_uri_equals_itself() {
        let eq = |a: &str, b: &str| sip(a).equivalent(&sip(b));
        let twice = "sip:os;unknownwith;unknownwith=lno-vle";
        assert!(eq(twice, twice));
        assert!(eq("sip:h;x=1;x=2", "sip:h;x=1"));
        assert!(!eq("sip:h;x=1;x=2", "sip:h;x=2"));
        assert!(eq(
            "sip:h;transport=tcp;transport=udp",
            "sip:h;transport=tcp"
        ));
    }
}
