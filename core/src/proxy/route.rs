//! RFC 3261 §16.4 and §16.6 step 7: which URIs name this proxy, and where a URI leads.

use std::net::SocketAddr;

use crate::message::{host_ip, SipUri, Uri};

/// The names and addresses that designate this element, and the static host table that
/// stands in for DNS until RFC 3263 resolution arrives.
#[derive(Clone, Debug, Default)]
pub struct Locator {
    /// Served domains, lower-case.
    pub domains: Vec<String>,
    /// The element's own host names, lower-case.
    pub host_names: Vec<String>,
    /// Addresses it listens on.
    pub local_addrs: Vec<SocketAddr>,
    /// Host name → address (the scenario's host table in the simulator, `hosts:` in config).
    pub hosts: Vec<(String, SocketAddr)>,
}

/// Default port of a SIP URI without one (RFC 3261 §19.1.2).
pub fn default_port(uri: &SipUri<'_>) -> u16 {
    if uri.secure {
        5061
    } else {
        5060
    }
}

impl Locator {
    /// Whether `host` is a domain this proxy is responsible for (§16.4, §16.5).
    pub fn serves(&self, host: &str) -> bool {
        self.domains.iter().any(|d| d.eq_ignore_ascii_case(host))
    }

    /// Whether the URI is in a domain this proxy is responsible for: its host is a served
    /// domain and its port, if it has one, is one this element listens on. Kamailio's
    /// "myself" makes the same test: with an IP address as the domain (`127.0.0.1`), a
    /// phone at `sip:127.0.0.1:5070` is somewhere else, not a user of the domain.
    pub fn serves_uri(&self, uri: &SipUri<'_>) -> bool {
        self.serves(uri.host)
            && (uri.port.is_none()
                || self.local_addrs.is_empty()
                || self.local_addrs.iter().any(|a| Some(a.port()) == uri.port))
    }

    /// Whether the URI names this element itself (a Route or Record-Route value it put
    /// there, §16.4): one of its host names or addresses, on one of its ports.
    /// An address matches in any of its spellings (RFC 5118 §4.10's extra colon, an
    /// IPv4-mapped form of an IPv4 address).
    pub fn is_me(&self, uri: &SipUri<'_>) -> bool {
        let port = uri.port.unwrap_or_else(|| default_port(uri));
        let port_ok =
            self.local_addrs.is_empty() || self.local_addrs.iter().any(|a| a.port() == port);
        if let Some(ip) = host_ip(uri.host) {
            let ip = ip.to_canonical();
            return self.local_addrs.iter().any(|a| a.ip().to_canonical() == ip) && port_ok;
        }
        self.host_names
            .iter()
            .any(|n| n.eq_ignore_ascii_case(uri.host))
            && port_ok
    }

    /// §16.6 step 7 without DNS: an IP literal, a name from the static host table, or
    /// nothing (the caller then falls back, e.g. to the flow a binding came in on). An IPv6
    /// literal is read as RFC 5118 asks: the port outside the brackets (§4.3, §4.4), the
    /// RFC 2373 extra colon tolerated (§4.10).
    pub fn resolve(&self, uri: &SipUri<'_>) -> Option<SocketAddr> {
        let port = uri.port.unwrap_or_else(|| default_port(uri));
        let maddr = uri.params.get("maddr").flatten();
        let host = maddr.unwrap_or(uri.host);
        if let Some(ip) = host_ip(host) {
            return Some(SocketAddr::new(ip, port));
        }
        self.hosts
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(host))
            .map(|(_, a)| SocketAddr::new(a.ip(), uri.port.unwrap_or(a.port())))
    }

    /// [`Locator::resolve`] for a URI given as text (`<...>` allowed around it).
    pub fn resolve_text(&self, uri: &str) -> Option<SocketAddr> {
        match Uri::parse(strip_brackets(uri)) {
            Ok(Uri::Sip(u)) => self.resolve(&u),
            _ => None,
        }
    }
}

/// `<sip:x;lr>;param` → `sip:x;lr`; a bare URI is returned as it is.
pub fn strip_brackets(value: &str) -> &str {
    let v = value.trim();
    match (v.find('<'), v.find('>')) {
        (Some(a), Some(b)) if a < b => &v[a + 1..b],
        _ => v,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loc() -> Locator {
        Locator {
            domains: vec!["atlanta.example.com".into()],
            host_names: vec!["ss1.atlanta.example.com".into()],
            local_addrs: vec!["192.0.2.111:5060".parse().unwrap()],
            hosts: vec![(
                "ss2.biloxi.example.com".into(),
                "192.0.2.222:5060".parse().unwrap(),
            )],
        }
    }

    fn sip(s: &str) -> SipUri<'_> {
        match Uri::parse(s).unwrap() {
            Uri::Sip(u) => u,
            _ => panic!(),
        }
    }

    #[test]
    fn recognises_itself_by_name_or_address_and_port() {
        let l = loc();
        assert!(l.is_me(&sip("sip:ss1.atlanta.example.com;lr")));
        assert!(l.is_me(&sip("sip:192.0.2.111:5060;lr")));
        assert!(!l.is_me(&sip("sip:ss1.atlanta.example.com:5070;lr")));
        assert!(!l.is_me(&sip("sip:ss2.biloxi.example.com;lr")));
    }

    /// RFC 5118 §4.3, §4.4, §4.10: where an IPv6 reference leads.
    #[test]
    fn ipv6_next_hops() {
        let l = loc();
        let at = |uri: &str| l.resolve(&sip(uri)).map(|a| a.to_string());
        assert_eq!(
            at("sip:[2001:db8::10]").as_deref(),
            Some("[2001:db8::10]:5060")
        );
        assert_eq!(
            at("sip:[2001:db8::10]:5070").as_deref(),
            Some("[2001:db8::10]:5070")
        );
        assert_eq!(
            at("sip:[2001:db8::10:5070]").as_deref(),
            Some("[2001:db8::10:5070]:5060")
        );
        assert_eq!(
            at("sip:user@[2001:db8:::192.0.2.1]").as_deref(),
            Some("[2001:db8::c000:201]:5060")
        );
        assert_eq!(
            at("sip:user@[2001:db8:::192.0.2.1]"),
            at("sip:user@[2001:db8::192.0.2.1]")
        );
    }

    /// An address is ours however it is spelt.
    #[test]
    fn recognises_its_addresses_in_any_spelling() {
        let l = Locator {
            local_addrs: vec![
                "[2001:db8::10]:5060".parse().unwrap(),
                "192.0.2.111:5060".parse().unwrap(),
            ],
            ..Locator::default()
        };
        assert!(l.is_me(&sip("sip:[2001:DB8:0::10]")));
        assert!(l.is_me(&sip("sip:[::ffff:192.0.2.111]:5060")));
        assert!(!l.is_me(&sip("sip:[2001:db8::10]:5070")));
        assert!(!l.is_me(&sip("sip:[2001:db8::10:5070]")));
    }

    #[test]
    fn a_served_domain_with_another_port_is_somewhere_else() {
        let l = loc();
        assert!(l.serves_uri(&sip("sip:bob@atlanta.example.com")));
        assert!(l.serves_uri(&sip("sip:bob@atlanta.example.com:5060")));
        assert!(!l.serves_uri(&sip("sip:bob@atlanta.example.com:5070")));
        assert!(!l.serves_uri(&sip("sip:bob@biloxi.example.com")));
    }

    #[test]
    fn resolves_literals_names_and_maddr() {
        let l = loc();
        assert_eq!(
            l.resolve(&sip("sip:bob@192.0.2.4")),
            Some("192.0.2.4:5060".parse().unwrap())
        );
        assert_eq!(
            l.resolve(&sip("sips:bob@192.0.2.4")),
            Some("192.0.2.4:5061".parse().unwrap())
        );
        assert_eq!(
            l.resolve(&sip("sip:ss2.biloxi.example.com;lr")),
            Some("192.0.2.222:5060".parse().unwrap())
        );
        assert_eq!(
            l.resolve(&sip("sip:x@unknown.example.com;maddr=192.0.2.9")),
            Some("192.0.2.9:5060".parse().unwrap())
        );
        assert_eq!(l.resolve(&sip("sip:x@unknown.example.com")), None);
        assert_eq!(
            l.resolve(&sip("sip:x@unknown.example.com;maddr=[2001:db8::9]")),
            Some("[2001:db8::9]:5060".parse().unwrap())
        );
        assert_eq!(
            l.resolve_text("<sip:ss2.biloxi.example.com;lr>"),
            Some("192.0.2.222:5060".parse().unwrap())
        );
    }
}
