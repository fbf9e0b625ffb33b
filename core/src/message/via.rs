//! Via values (RFC 3261 §20.42, §25.1 `via-parm`; RFC 3581 `rport`).

use std::borrow::Cow;
use std::net::IpAddr;

use crate::message::params::Params;
use crate::message::syntax::{is_token_char, is_wsp, parse_port};
use crate::message::uri::{host_ip, split_hostport};
use crate::message::{ParseError, ParseErrorKind};

/// One via-parm: `sent-protocol LWS sent-by *( SEMI via-params )`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Via<'a> {
    /// `protocol-name/protocol-version/transport` with the LWS that §25.1 `SLASH` allows
    /// removed (`SIP  /   2.0 /UDP` gives `SIP/2.0/UDP`). Borrowed unless there was LWS to
    /// remove.
    pub protocol: Cow<'a, str>,
    /// The transport token as written (`UDP`, `TCP`, `TLS`, `SCTP`, or any other token).
    pub transport: &'a str,
    /// The sent-by host; an IPv6 reference keeps its brackets.
    pub host: &'a str,
    /// The sent-by port, when written.
    pub port: Option<u16>,
    /// The via-params.
    pub params: Params<'a>,
    /// The whole via-parm, trimmed.
    pub raw: &'a str,
}

fn bad(reason: &'static str) -> ParseError {
    ParseError::new(ParseErrorKind::BadValue, 400, reason)
}

/// A tiny cursor over the bytes of one via-parm.
struct Cursor<'a> {
    s: &'a str,
    i: usize,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<u8> {
        self.s.as_bytes().get(self.i).copied()
    }

    /// Skips SP/HTAB, returning how many.
    fn skip_ws(&mut self) -> usize {
        let start = self.i;
        while self.peek().is_some_and(is_wsp) {
            self.i += 1;
        }
        self.i - start
    }

    fn take_while(&mut self, f: impl Fn(u8) -> bool) -> &'a str {
        let start = self.i;
        while self.peek().is_some_and(&f) {
            self.i += 1;
        }
        self.s.get(start..self.i).unwrap_or("")
    }

    fn token(&mut self) -> Option<&'a str> {
        Some(self.take_while(is_token_char)).filter(|t| !t.is_empty())
    }

    /// `SLASH = SWS "/" SWS`.
    fn slash(&mut self) -> Option<()> {
        self.skip_ws();
        (self.peek() == Some(b'/')).then(|| {
            self.i += 1;
            self.skip_ws();
        })
    }
}

impl<'a> Via<'a> {
    /// Parses one via-parm (a Via header value after comma splitting).
    pub fn parse(s: &'a str) -> Result<Via<'a>, ParseError> {
        let raw = crate::message::syntax::trim_lws(s);
        let mut c = Cursor { s: raw, i: 0 };
        let name = c.token().ok_or(bad("Bad Via Protocol"))?;
        c.slash().ok_or(bad("Bad Via Protocol"))?;
        let version = c.token().ok_or(bad("Bad Via Protocol"))?;
        c.slash().ok_or(bad("Bad Via Protocol"))?;
        let transport = c.token().ok_or(bad("Bad Via Transport"))?;
        let protocol_text = raw.get(..c.i).unwrap_or("");
        let protocol = if protocol_text.bytes().any(is_wsp) {
            Cow::Owned(format!("{name}/{version}/{transport}"))
        } else {
            Cow::Borrowed(protocol_text)
        };
        if c.skip_ws() == 0 {
            return Err(bad("Bad Via: No Space Before Sent-By"));
        }
        // sent-by = host [ COLON port ], COLON = SWS ":" SWS; the host is a hostname, IPv4
        // or bracketed IPv6 address, none of which contains white space.
        let host_text = c.take_while(|b| b.is_ascii_alphanumeric() || b"-._[]:".contains(&b));
        let (host, mut port) =
            split_hostport(host_text.trim_end_matches(':')).ok_or(bad("Bad Via Sent-By"))?;
        let colon_after_lws = if host_text.ends_with(':') {
            true
        } else {
            c.skip_ws();
            c.peek() == Some(b':')
        };
        if colon_after_lws {
            // The port is after LWS (`host : 5060`), the form §25.1 COLON allows.
            if port.is_some() {
                return Err(bad("Bad Via Sent-By"));
            }
            if c.peek() == Some(b':') {
                c.i += 1;
            }
            c.skip_ws();
            let digits = c.take_while(|b| b.is_ascii_digit());
            port = Some(parse_port(digits).ok_or(bad("Bad Via Port"))?);
            c.skip_ws();
        }
        let rest = raw.get(c.i..).unwrap_or("");
        let params = match rest.strip_prefix(';') {
            Some(p) => Params::new(p),
            None if rest.is_empty() => Params::default(),
            None => return Err(bad("Bad Via: Junk After Sent-By")),
        };
        Ok(Via {
            protocol,
            transport,
            host,
            port,
            params,
            raw,
        })
    }

    /// The `branch` parameter (§8.1.1.7), when it has a value.
    pub fn branch(&self) -> Option<&'a str> {
        self.params.get("branch").flatten()
    }

    /// The `received` parameter (§18.2.1), when it has a value.
    pub fn received(&self) -> Option<&'a str> {
        self.params.get("received").flatten()
    }

    /// The `received` parameter as an address. RFC 3261 §25.1 `via-received` has no brackets
    /// around an IPv6 address, but both forms are sent, and RFC 5118 §4.5 asks receivers to
    /// "be liberal in accepting a "received" parameter with or without the delimiting "["
    /// and "]" tokens". (This element writes it without them.)
    pub fn received_ip(&self) -> Option<IpAddr> {
        self.received().and_then(host_ip)
    }

    /// The sent-by host as an address, when it is an IP literal (`[2001:db8::1]` or
    /// `192.0.2.1`).
    pub fn host_ip(&self) -> Option<IpAddr> {
        host_ip(self.host)
    }

    /// RFC 3581 `rport`: `None` when absent, `Some(None)` when present without a (valid) port
    /// (the client asks for one), `Some(Some(port))` when filled in.
    pub fn rport(&self) -> Option<Option<u16>> {
        self.params.get("rport").map(|v| v.and_then(parse_port))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain() {
        let v =
            Via::parse("SIP/2.0/UDP pc33.atlanta.example.com:5060;branch=z9hG4bK776asdhds;rport")
                .unwrap();
        assert_eq!(v.protocol, "SIP/2.0/UDP");
        assert!(matches!(v.protocol, Cow::Borrowed(_)));
        assert_eq!(v.transport, "UDP");
        assert_eq!(v.host, "pc33.atlanta.example.com");
        assert_eq!(v.port, Some(5060));
        assert_eq!(v.branch(), Some("z9hG4bK776asdhds"));
        assert_eq!(v.rport(), Some(None));
        assert_eq!(v.received(), None);
    }

    #[test]
    fn lws_everywhere() {
        // RFC 4475 §3.1.1.1, after unfolding.
        let v = Via::parse("SIP  /   2.0    /UDP        192.0.2.2;branch=390skdjuw").unwrap();
        assert_eq!(v.protocol, "SIP/2.0/UDP");
        assert_eq!(v.host, "192.0.2.2");
        assert_eq!(v.branch(), Some("390skdjuw"));
        let v =
            Via::parse("SIP  / 2.0  / TCP     spindle.example.com   ;    branch  =   z9hG4bK9ikj8")
                .unwrap();
        assert_eq!(v.protocol, "SIP/2.0/TCP");
        assert_eq!(v.transport, "TCP");
        assert_eq!(v.host, "spindle.example.com");
        assert_eq!(v.branch(), Some("z9hG4bK9ikj8"));
        let v = Via::parse("SIP/2.0/UDP host : 5062 ; rport = 5070").unwrap();
        assert_eq!(v.port, Some(5062));
        assert_eq!(v.rport(), Some(Some(5070)));
    }

    #[test]
    fn ipv6() {
        let v = Via::parse("SIP/2.0/UDP [2001:db8::1]:5060;branch=z9hG4bKa;received=2001:db8::9")
            .unwrap();
        assert_eq!(v.host, "[2001:db8::1]");
        assert_eq!(v.port, Some(5060));
        assert_eq!(v.received(), Some("2001:db8::9"));
        let v = Via::parse("SIP/2.0/TCP [2001:db8::1]").unwrap();
        assert_eq!(v.port, None);
        assert_eq!(v.host_ip(), "2001:db8::1".parse().ok());
    }

    /// RFC 5118 §4.5: `received` with and without brackets, the same address.
    #[test]
    fn received_either_way() {
        let ip = "2001:db8::9:255".parse().ok();
        for via in [
            "SIP/2.0/UDP [2001:db8::9:1];received=[2001:db8::9:255];branch=z9hG4bKas3-111",
            "SIP/2.0/UDP [2001:db8::9:1];received=2001:db8::9:255;branch=z9hG4bKas3",
        ] {
            let v = Via::parse(via).unwrap();
            assert_eq!(v.received_ip(), ip, "{via}");
            assert_eq!(v.host, "[2001:db8::9:1]");
            assert!(v.branch().unwrap().starts_with("z9hG4bKas3"));
        }
        let v =
            Via::parse("SIP/2.0/TCP [2001:db8::9:255];branch=z9hG4bK451jj;received=192.0.2.200")
                .unwrap();
        assert_eq!(v.received_ip(), "192.0.2.200".parse().ok());
        let v = Via::parse("SIP/2.0/UDP h;received=h.example.com").unwrap();
        assert_eq!(v.received_ip(), None);
    }

    /// RFC 5118 §4.9: an IPv4-mapped sent-by, port outside the brackets.
    #[test]
    fn ipv4_mapped_sent_by() {
        let v = Via::parse("SIP/2.0/UDP [::ffff:192.0.2.10]:19823;branch=z9hG4bKbh19").unwrap();
        assert_eq!(v.host, "[::ffff:192.0.2.10]");
        assert_eq!(v.port, Some(19823));
        assert_eq!(v.host_ip(), "::ffff:192.0.2.10".parse().ok());
    }

    #[test]
    fn rejects() {
        for bad in [
            "",
            "SIP/2.0/UDP",
            "SIP/2.0 host",
            "SIP/2.0/UDPhost",
            "SIP/2.0/UDP host:99999",
            "SIP/2.0/UDP host:",
            "SIP/2.0/UDP host junk",
            "SIP/2.0/UDP [2001:db8::1",
            "SIP/2.0/UDP [2001:db8::1:5060",
            "SIP/2.0/UDP [example.com]:5060",
            "SIP/2.0/UDP 2001:db8::1",
            "SIP/2.0/UDP 192.0.2.1:5060:5060",
            "SIP/2.0/UDP ho<st",
        ] {
            assert!(Via::parse(bad).is_err(), "{bad:?}");
        }
    }
}
