//! The bodies of the fuzz targets, in a library so that `cargo test` (on stable) replays the
//! seed corpus and the regression inputs through exactly what the fuzzer runs.
//!
//! # `handle_input`: what an input means
//!
//! An element for `example.com` and `biloxi.example.com` on 192.0.2.222:5060, with digest
//! users `alice`, `bob` and `j.user`, Bob bound at two contacts (UDP and TCP, forked in
//! parallel) and Carol at a host name, receives the input as up to [`DATAGRAMS_MAX`]
//! datagrams:
//!
//! - A first byte below 0x20 (other than HT, LF, CR) is a set of configuration flags
//!   ([`flags`]); otherwise the defaults apply: REGISTER challenged, INVITE not, proxying on,
//!   no DNS.
//! - The rest is split at [`SEPARATOR`] (`FF FF`, in no RFC 4475 message). A datagram that
//!   starts with such a control byte has it removed: bit 0 sends it over TCP, bits 1-2 pick
//!   the sender (Alice, Bob, chicago's proxy, an IPv6 host), bits 3-4 move the clock first
//!   (not, by T1, to the next timer, by 40 s).
//!
//! So a raw SIP message is an input too: one UDP datagram from Alice under the defaults.
//!
//! After every input the outputs are drained, and every `DNS` question is answered. The
//! target asserts: no panic; the outputs end within a bound; every timer asked for lies in
//! the future; every datagram sent parses, and every request sent also validates; the
//! transaction and context counts stay bounded by what was delivered; and once the network is
//! quiet for fifteen minutes nothing is left: no transaction, no response context.

use std::net::SocketAddr;
use std::time::Duration;

use trapezoid_core::config::User;
use trapezoid_core::message::edit::RequestEdits;
use trapezoid_core::message::{self, Contacts, HeaderName, Limits, Message, Uri};
use trapezoid_core::registrar::{Binding, Flow};
use trapezoid_core::time::Instant;
use trapezoid_core::{
    Config, Datagram, Event, Input, InputKind, Output, Proxy, Query, Resolution, Transmit,
    Transport,
};

/// What separates datagrams in a `handle_input` input.
pub const SEPARATOR: &[u8] = b"\xff\xff";

/// Datagrams one input delivers at most.
pub const DATAGRAMS_MAX: usize = 16;

/// Outputs one input may produce before the target calls it a runaway.
const OUTPUTS_MAX: usize = 4096;

/// Timer firings one clock move may take.
const STEPS_MAX: usize = 100_000;

/// Branches one request may fork to (the configured limit).
const BRANCHES_MAX: usize = 4;

/// What an element's own output is parsed with: a forwarded request may grow past the input
/// limits by the Via and Record-Route it gains.
const GENEROUS: Limits = Limits {
    message_bytes_max: usize::MAX,
    headers_max: usize::MAX,
};

/// Configuration flags (the first byte of an input, when below 0x20).
pub mod flags {
    /// Challenge initial INVITEs with 407 (§22.3).
    pub const AUTH_INVITE: u8 = 0x01;
    /// Act as a redirect server (§8.3).
    pub const REDIRECT: u8 = 0x02;
    /// Registrar only: proxying off.
    pub const NO_PROXY: u8 = 0x04;
    /// Ask the driver to resolve names (RFC 3263); the target answers.
    pub const DNS: u8 = 0x08;
    /// No REGISTER challenge, and room for three transactions only (the 503 path).
    pub const OPEN_AND_SMALL: u8 = 0x10;
}

const ELEMENT: SocketAddr = addr([192, 0, 2, 222], 5060);
const ALICE: SocketAddr = addr([192, 0, 2, 101], 5060);
const BOB: SocketAddr = addr([192, 0, 2, 201], 5060);
const CHICAGO: SocketAddr = addr([192, 0, 2, 150], 5060);

const fn addr(ip: [u8; 4], port: u16) -> SocketAddr {
    SocketAddr::V4(std::net::SocketAddrV4::new(
        std::net::Ipv4Addr::new(ip[0], ip[1], ip[2], ip[3]),
        port,
    ))
}

fn senders() -> [SocketAddr; 4] {
    [
        ALICE,
        BOB,
        CHICAGO,
        "[2001:db8::9]:5070".parse().expect("an address"),
    ]
}

/// A byte that is not SIP text: the flags or a datagram's control byte.
fn is_control(b: u8) -> bool {
    b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r')
}

/// The element the `handle_input` target feeds.
pub fn config(flags: u8) -> Config {
    let mut c = Config::new("example.com");
    c.seed = 0x5eed;
    c.domains.push("biloxi.example.com".into());
    c.host_names.push("proxy.example.com".into());
    c.local_addrs.push(ELEMENT);
    c.hosts = vec![
        ("chicago.example.com".into(), CHICAGO),
        ("example.net".into(), addr([192, 0, 2, 50], 5060)),
    ];
    let user = |name: &str, password: &str, aors: &[&str]| User {
        name: name.into(),
        password: password.into(),
        aors: aors.iter().map(|a| (*a).to_owned()).collect(),
    };
    c.auth.users = vec![
        user("alice", "wonderland", &[]),
        user("bob", "secret", &["sip:robert@biloxi.example.com"]),
        user("j.user", "pass", &[]),
    ];
    c.auth.register = flags & flags::OPEN_AND_SMALL == 0;
    if flags & flags::OPEN_AND_SMALL != 0 {
        c.limits.transactions_max = 3;
    }
    c.proxy.authenticate = flags & flags::AUTH_INVITE != 0;
    c.proxy.redirect = flags & flags::REDIRECT != 0;
    c.proxy.enabled = flags & flags::NO_PROXY == 0;
    c.proxy.dns = flags & flags::DNS != 0;
    c.proxy.branches_max = BRANCHES_MAX;
    c
}

fn binding(contact: &str, remote: SocketAddr, transport: Transport, secs: u64) -> Binding {
    Binding::new(
        contact,
        [],
        None,
        Instant::from_duration(Duration::from_secs(secs)),
        "restored@example.com",
        1,
        Flow { remote, transport },
    )
}

/// The element of the `handle_input` target, with its bindings.
pub fn element(flags: u8) -> Proxy {
    let mut proxy = Proxy::new(config(flags));
    proxy.restore_bindings(
        "sip:bob@example.com",
        vec![
            binding("sip:bob@192.0.2.201", BOB, Transport::Udp, 600),
            binding(
                "sip:bob@192.0.2.202:5062;transport=tcp",
                addr([192, 0, 2, 202], 5062),
                Transport::Tcp,
                3600,
            ),
        ],
    );
    proxy.restore_bindings(
        "sip:carol@example.com",
        vec![binding(
            "sip:carol@pc.carol.example.net",
            addr([198, 51, 100, 7], 5060),
            Transport::Udp,
            900,
        )],
    );
    proxy
}

pub mod seeds;

/// An element being fed, with the checks made on everything it puts out.
struct Driver {
    proxy: Proxy,
    now: Instant,
    questions: Vec<Query>,
    delivered: usize,
    /// What it sent, kept only when building seeds.
    sent: Option<Vec<Transmit>>,
}

impl Driver {
    fn new(flags: u8) -> Self {
        let mut driver = Driver {
            proxy: element(flags),
            now: Instant::ZERO,
            questions: Vec::new(),
            delivered: 0,
            sent: None,
        };
        driver.drain();
        driver
    }

    /// One datagram with its control byte (see the module documentation).
    fn datagram(&mut self, control: u8, bytes: &[u8]) {
        match (control >> 3) & 3 {
            0 => {}
            1 => self.advance_to(self.now + Duration::from_millis(500)),
            2 => self.next_timer(),
            _ => self.advance_to(self.now + Duration::from_secs(40)),
        }
        let transport = if control & 1 == 0 {
            Transport::Udp
        } else {
            Transport::Tcp
        };
        let remote = senders()[usize::from((control >> 1) & 3)];
        self.deliver(bytes, remote, transport);
    }

    fn input(&mut self, kind: InputKind<'_>) {
        self.proxy.handle_input(Input {
            now: self.now,
            kind,
        });
        self.drain();
        // Every question gets its answer: an address for some names, none for others.
        for _ in 0..OUTPUTS_MAX {
            let Some(query) = self.questions.pop() else {
                return;
            };
            let addrs = if query.name.len() % 2 == 0 {
                vec![addr([192, 0, 2, 77], query.port.unwrap_or(5060))]
            } else {
                Vec::new()
            };
            self.proxy.handle_input(Input {
                now: self.now,
                kind: InputKind::Resolved(Resolution { query, addrs }),
            });
            self.drain();
        }
        panic!("DNS questions never end");
    }

    /// Drains the outputs; the next deadline.
    fn drain(&mut self) -> Option<Instant> {
        for _ in 0..OUTPUTS_MAX {
            match self.proxy.poll_output() {
                Output::Transmit(t) => {
                    check_sent(&t);
                    if let Some(sent) = &mut self.sent {
                        sent.push(t);
                    }
                }
                Output::Event(Event::Resolve(q)) => self.questions.push(q),
                Output::Event(Event::Dropped { reason, .. }) => {
                    assert!(!reason.is_empty(), "a drop without a reason")
                }
                Output::Event(_) => {}
                Output::Timeout(at) => {
                    if let Some(at) = at {
                        assert!(at > self.now, "a timer at {at:?}, not after {:?}", self.now);
                    }
                    return at;
                }
            }
        }
        panic!("outputs never drained");
    }

    fn deliver(&mut self, bytes: &[u8], remote: SocketAddr, transport: Transport) {
        self.delivered += 1;
        self.input(InputKind::Datagram(Datagram {
            local: ELEMENT,
            remote,
            transport,
            bytes,
        }));
        let live = self.proxy.transaction_count();
        let bound = self.delivered * (1 + 2 * BRANCHES_MAX);
        assert!(
            live <= bound,
            "{live} transactions after {} datagrams",
            self.delivered
        );
        let contexts = self.proxy.context_count();
        assert!(contexts <= self.delivered, "{contexts} contexts");
    }

    /// Moves the clock to `until`, firing every timer on the way.
    fn advance_to(&mut self, until: Instant) {
        for _ in 0..STEPS_MAX {
            match self.drain() {
                Some(at) if at <= until => {
                    self.now = at;
                    self.input(InputKind::Timeout);
                }
                _ => {
                    self.now = until;
                    self.input(InputKind::Timeout);
                    return;
                }
            }
        }
        panic!("timers kept firing before {until:?}");
    }

    /// To the next timer, if there is one.
    fn next_timer(&mut self) {
        if let Some(at) = self.drain() {
            self.now = at;
            self.input(InputKind::Timeout);
        }
    }
}

/// Everything the element sends must be a message it could read itself; the requests it
/// sends (forwarded, CANCEL, ACK) must also be valid ones.
fn check_sent(t: &Transmit) {
    let text = || String::from_utf8_lossy(&t.bytes);
    let msg = Message::parse(&t.bytes, &GENEROUS)
        .unwrap_or_else(|e| panic!("sent what does not parse ({e}):\n{}", text()));
    if msg.is_request() {
        if let Err(e) = msg.validate() {
            panic!("sent an invalid request ({e}):\n{}", text());
        }
    }
}

/// The `handle_input` target: see the module documentation.
pub fn handle_input(data: &[u8]) {
    let (flags, rest) = match data.split_first() {
        Some((b, rest)) if is_control(*b) => (*b, rest),
        _ => (0, data),
    };
    let mut driver = Driver::new(flags);
    for datagram in split(rest).take(DATAGRAMS_MAX) {
        let (control, bytes) = match datagram.split_first() {
            Some((b, bytes)) if is_control(*b) => (*b, bytes),
            _ => (0, datagram),
        };
        driver.datagram(control, bytes);
    }
    // Nobody says anything more: every transaction and context must end.
    driver.advance_to(driver.now + Duration::from_secs(15 * 60));
    assert_eq!(
        driver.proxy.transaction_count(),
        0,
        "transactions outlive a quiet network"
    );
    assert_eq!(
        driver.proxy.context_count(),
        0,
        "contexts outlive a quiet network"
    );
}

/// The datagrams of an input.
fn split(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = Some(data);
    std::iter::from_fn(move || {
        let r = rest?;
        match r.windows(SEPARATOR.len()).position(|w| w == SEPARATOR) {
            Some(i) => {
                rest = Some(&r[i + SEPARATOR.len()..]);
                Some(&r[..i])
            }
            None => {
                rest = None;
                Some(r)
            }
        }
    })
}

/// The `parse` target: the parser and every typed view on arbitrary bytes, as a datagram and
/// as the start of a stream.
///
/// Asserts: no panic; parsing is idempotent (the normalised bytes of a message parse to the
/// same message); a stream parse consumes no more than it has, and what it frames parses
/// the same as a datagram; a response built to any
/// request parses; a valid request forwarded, cancelled or acknowledged stays valid; every
/// SIP URI is equivalent to itself.
pub fn parse(data: &[u8]) {
    let limits = Limits::default();
    if let Ok(msg) = Message::parse(data, &limits) {
        exercise(&msg);
        let again = Message::parse(msg.as_bytes(), &limits)
            .unwrap_or_else(|e| panic!("normalised bytes do not parse again: {e}"));
        assert_eq!(
            again.as_bytes(),
            msg.as_bytes(),
            "parsing is not idempotent"
        );
        assert_eq!(again.headers().len(), msg.headers().len());
        assert_eq!(again.validate(), msg.validate());
    }
    if let Ok((msg, used)) = Message::parse_stream(data, &limits) {
        assert!(used <= data.len(), "used {used} of {} bytes", data.len());
        assert!(msg.as_bytes().len() <= used);
        // What a stream frames, a datagram of exactly those bytes frames the same way.
        let d = Message::parse(&data[..used], &limits)
            .unwrap_or_else(|e| panic!("a framed stream message is no datagram: {e}"));
        assert_eq!(d.as_bytes(), msg.as_bytes());
        assert_eq!(d.validate(), msg.validate());
        exercise(&msg);
    }
}

fn uri(s: &str) {
    if let Ok(Uri::Sip(u)) = Uri::parse(s) {
        let _ = u.aor();
        assert!(u.equivalent(&u), "{s} is not equivalent to itself");
    }
}

fn exercise(msg: &Message) {
    let valid = msg.validate().is_ok();
    // A relayed response gets a subset of the full checks.
    assert!(
        !valid || msg.validate_response().is_ok(),
        "validate passes but validate_response fails"
    );
    let _ = (msg.version(), msg.status(), msg.reason(), msg.body());
    let _ = (msg.call_id(), msg.cseq(), msg.max_forwards(), msg.expires());
    let _ = msg.content_length();
    if let Some(r) = msg.request_uri() {
        uri(r);
    }
    for h in msg.headers() {
        let _ = (h.raw_name(msg), h.value(msg), h.name.as_str());
    }
    for v in msg.vias() {
        let _ = (v.branch(), v.received(), v.rport());
    }
    for na in [msg.from(), msg.to()].into_iter().flatten() {
        let _ = (na.tag(), na.param("expires"));
        uri(na.uri);
    }
    if let Ok(Contacts::List(list)) = msg.contacts() {
        for c in list {
            uri(c.uri);
        }
    }
    for name in [HeaderName::Authorization, HeaderName::ProxyAuthorization] {
        for v in msg.values(&name) {
            let _ = trapezoid_core::auth::parse_credentials(v);
        }
    }
    let reparse = |bytes: &[u8], what: &str| {
        Message::parse(bytes, &GENEROUS).unwrap_or_else(|e| {
            panic!(
                "{what} does not parse ({e}):\n{}",
                String::from_utf8_lossy(bytes)
            )
        })
    };
    if msg.is_request() {
        let r = message::response(
            msg,
            400,
            "Bad Request",
            Some("f0a5"),
            Some("192.0.2.9".parse().expect("an address")),
            Some(5060),
            &[("Warning", "399 fuzz \"x\"")],
            b"",
        );
        reparse(&r, "a response");
    }
    if !valid {
        return;
    }
    if msg.is_request() {
        let edits = RequestEdits {
            request_uri: Some("sip:bob@192.0.2.201;transport=tcp"),
            max_forwards: Some(msg.max_forwards().unwrap_or(70).saturating_sub(1)),
            record_route: Some("<sip:192.0.2.222;lr>"),
            pop_route: msg.value(&HeaderName::Route).is_some(),
            pop_last_route: false,
            via: Some("SIP/2.0/UDP 192.0.2.222;branch=z9hG4bKfuzz"),
            received: Some("192.0.2.9".parse().expect("an address")),
            rport: Some(5061),
            remove_lines: &[],
        };
        let forwarded = reparse(&msg.forward_request(&edits), "a forwarded request");
        if let Err(e) = forwarded.validate() {
            panic!("a valid request forwarded is not ({e})");
        }
        if let Some(cancel) = msg.cancel() {
            let cancel = reparse(&cancel, "a CANCEL");
            if let Err(e) = cancel.validate() {
                panic!("the CANCEL of a valid request is not valid ({e})");
            }
        }
    } else {
        reparse(&msg.without_top_via(), "a response without its top Via");
    }
}
