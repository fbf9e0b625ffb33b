//! Element configuration: everything the core needs to know, handed in once at
//! [`crate::Proxy::new`]. Every limit lives here (TigerBeetle's "put a limit on everything").

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use crate::auth::Algorithm;
use crate::message::Limits;

/// The configuration of one element (registrar, later proxy or redirect server).
#[derive(Clone, Debug)]
pub struct Config {
    /// Seed of the element's RNG: branches, tags, nonces. Same seed, same bytes.
    pub seed: u64,
    /// Domains this element is responsible for (RFC 3261 §10.3 step 1): AORs live here.
    pub domains: Vec<String>,
    /// Other names that designate this element itself (e.g. `ss2.biloxi.example.com`). A
    /// Request-URI naming one of them is treated like one naming a served domain.
    pub host_names: Vec<String>,
    /// The transport addresses the element listens on; used to recognise Contacts that point
    /// back at the element.
    pub local_addrs: Vec<SocketAddr>,
    /// Digest authentication.
    pub auth: AuthConfig,
    /// Registrar policy (RFC 3261 §10.3).
    pub registrar: RegistrarConfig,
    /// RFC 3261 §17.1.1.1 timer values.
    pub timers: Timers,
    /// Message and state limits.
    pub limits: CoreLimits,
    /// Proxy behaviour (RFC 3261 §16).
    pub proxy: ProxyConfig,
    /// Static name → address table, consulted before DNS: host names of next hops and
    /// contacts, and domains routed to their proxy.
    pub hosts: Vec<(String, SocketAddr)>,
    /// Which of the optional [`crate::Event`]s the element reports.
    pub reports: Reports,
}

/// Which optional [`crate::Event`]s the element reports. Each copies text out of a message
/// (method, URIs, AOR, Contact): five allocations per REGISTER, for a driver that may
/// neither log nor store them. Events the driver must act on (a lookup to make) and those
/// about refused traffic are always reported. Default: all.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reports {
    /// [`crate::Event::TransactionCompleted`]: one per server transaction.
    pub transactions: bool,
    /// [`crate::Event::Registered`], [`crate::Event::Unregistered`] and
    /// [`crate::Event::BindingExpired`]: what a driver that keeps the bindings needs.
    pub bindings: bool,
}

impl Default for Reports {
    fn default() -> Self {
        Reports {
            transactions: true,
            bindings: true,
        }
    }
}

/// Proxy behaviour (RFC 3261 §16).
#[derive(Clone, Debug)]
pub struct ProxyConfig {
    /// Proxy requests that are not for the element itself; off: answer them 405.
    pub enabled: bool,
    /// Add Record-Route to dialog-creating requests (§16.6 step 4).
    pub record_route: bool,
    /// Challenge requests outside a dialog with 407 (§22.3), as Proxy 1 does with the
    /// INVITE of RFC 3665 §3.2: every method but ACK and CANCEL, which cannot be challenged
    /// (§22.1), and REGISTER, which the registrar challenges with 401 when
    /// [`AuthConfig::register`] is on. Not only INVITE: an OPTIONS or MESSAGE that went
    /// through unchallenged would tell a scanner which users exist (a 404 for one who does
    /// not, a 480 or the phone's own answer for one who does) and relay for anyone.
    pub authenticate: bool,
    /// Timer C (§16.8): more than 3 minutes.
    pub timer_c: Duration,
    /// Branches one request may fork to.
    pub branches_max: usize,
    /// Act as a redirect server (§8.3): answer requests for the served domains with 302
    /// and the location service's bindings as Contacts, instead of forwarding them.
    pub redirect: bool,
    /// Ask the driver to resolve names that are neither IP literals nor in `hosts`
    /// ([`crate::Event::Resolve`], RFC 3263). Off: such a name gets 404 or 503 at once.
    pub dns: bool,
    /// Who may have requests forwarded to domains this element does not serve.
    pub relay: Relay,
}

/// Who may use the proxy to reach other domains (no open relay). A request "relays" when it
/// starts something (it has no To tag, or it did not come along a route set this element
/// is on) and its next hop is neither this element nor a domain it serves. Requests for the
/// served domains, and requests inside dialogs that were record-routed here, are never
/// relays.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Relay {
    /// Forward anything anywhere.
    Open,
    /// Only for the element's own users. With [`ProxyConfig::authenticate`] on, a user is
    /// someone whose digest credentials check (the challenge comes first, 407); without it
    /// there is nothing to go by but the From header, whose host must be a served domain
    /// (Kamailio's default `from_uri==myself`, which anyone can forge: authenticate where
    /// that matters). Others get 403 Relaying Denied.
    #[default]
    Local,
    /// Never: 403 Relaying Denied for every request to another domain.
    None,
}
impl Default for ProxyConfig {
    fn default() -> Self {
        ProxyConfig {
            enabled: true,
            record_route: true,
            authenticate: false,
            timer_c: Duration::from_secs(185),
            branches_max: 16,
            redirect: false,
            dns: false,
            relay: Relay::Local,
        }
    }
}

impl Config {
    /// A registrar for `domain` with the defaults below and no authentication.
    pub fn new(domain: &str) -> Self {
        Config {
            seed: 0,
            domains: vec![domain.to_ascii_lowercase()],
            host_names: Vec::new(),
            local_addrs: Vec::new(),
            auth: AuthConfig::default(),
            registrar: RegistrarConfig::default(),
            timers: Timers::default(),
            limits: CoreLimits::default(),
            proxy: ProxyConfig::default(),
            hosts: Vec::new(),
            reports: Reports::default(),
        }
    }
}

/// A user who may authenticate, and the AORs it may register.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    /// Digest `username`.
    pub name: String,
    /// Plain-text password (hashed per request; HA1 storage comes with the database).
    pub password: String,
    /// AORs this user may register besides `sip:NAME@DOMAIN` for every served domain.
    pub aors: Vec<String>,
}

/// Digest authentication settings (RFC 3261 §22, RFC 7616, RFC 8760).
#[derive(Clone, Debug)]
pub struct AuthConfig {
    /// Challenge REGISTER requests (401).
    pub register: bool,
    /// The realm; `None` means the first served domain (RFC 3261 §22.1 recommends it).
    pub realm: Option<String>,
    /// Algorithms offered, most preferred first: one WWW-Authenticate each (RFC 8760 §2.4).
    pub algorithms: Vec<Algorithm>,
    /// How long a nonce stays fresh; later uses get `stale=TRUE` (RFC 7616 §3.3).
    pub nonce_lifetime: Duration,
    /// Known users.
    pub users: Vec<User>,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            register: false,
            realm: None,
            algorithms: vec![Algorithm::Sha256, Algorithm::Md5],
            nonce_lifetime: Duration::from_secs(300),
            users: Vec::new(),
        }
    }
}

/// Registrar policy (RFC 3261 §10.3).
#[derive(Clone, Debug)]
pub struct RegistrarConfig {
    /// Expiry given to a Contact with neither an `expires` param nor an Expires header
    /// (§10.2.1.1 suggests 3600 s).
    pub default_expires: u32,
    /// Shorter non-zero requests get 423 Interval Too Brief (§10.3 step 7).
    pub min_expires: u32,
    /// Longer requests are shortened to this (§10.3 step 7 lets the registrar decrease it).
    pub max_expires: u32,
    /// Bindings one AOR may hold; more are refused with 403.
    pub bindings_per_aor_max: usize,
    /// AORs the location service may hold; a REGISTER creating one more gets 503.
    pub aors_max: usize,
}

impl Default for RegistrarConfig {
    fn default() -> Self {
        RegistrarConfig {
            default_expires: 3600,
            min_expires: 60,
            max_expires: 86_400,
            bindings_per_aor_max: 16,
            aors_max: 1_000_000,
        }
    }
}

/// RFC 3261 §17.1.1.1 and Table 4.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timers {
    /// RTT estimate, 500 ms by default.
    pub t1: Duration,
    /// Maximum retransmit interval for non-INVITE requests and INVITE responses, 4 s.
    pub t2: Duration,
    /// Maximum duration a message remains in the network, 5 s.
    pub t4: Duration,
}

impl Default for Timers {
    fn default() -> Self {
        Timers {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
        }
    }
}

/// Limits on input and on state.
#[derive(Clone, Debug)]
pub struct CoreLimits {
    /// Parser limits (message size, header count).
    pub message: Limits,
    /// Live server transactions; beyond it new requests get 503 (RFC 3261 §21.5.4).
    pub transactions_max: usize,
    /// New requests per source address (like Kamailio's pike module).
    pub source_rate: SourceRate,
}

impl Default for CoreLimits {
    fn default() -> Self {
        CoreLimits {
            message: Limits::default(),
            transactions_max: 100_000,
            source_rate: SourceRate::default(),
        }
    }
}

/// A token bucket per source IP address, refilled by the `now` of each input: a source may
/// send `burst` new requests at once and `per_second` a second after that. Requests that a
/// transaction answers (retransmissions) do not count. Beyond the limit, a request gets
/// `over` until the bucket refills.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceRate {
    /// Sustained new requests per second from one address; 0 turns the limit off.
    pub per_second: u32,
    /// Requests one address may send at once (the bucket's size).
    pub burst: u32,
    /// Addresses remembered; when full, the one heard from least recently is forgotten.
    pub sources_max: usize,
    /// What a request over the limit gets.
    pub over: OverLimit,
    /// Sources never limited. By default the loopback addresses: traffic from the machine
    /// itself is its operator's (tests, load generators, a co-located border controller),
    /// and whoever can send from it has the machine anyway.
    pub exempt: Vec<IpNet>,
}

impl Default for SourceRate {
    fn default() -> Self {
        SourceRate {
            per_second: 200,
            burst: 400,
            sources_max: 10_000,
            over: OverLimit::Reject { retry_after_s: 5 },
            exempt: vec![
                IpNet::new(IpAddr::from([127, 0, 0, 0]), 8),
                IpNet::new(IpAddr::from(std::net::Ipv6Addr::LOCALHOST), 128),
            ],
        }
    }
}

/// What a request over its source's rate gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OverLimit {
    /// 503 Service Unavailable with Retry-After (RFC 3261 §21.5.4, §20.33): a well-behaved
    /// client backs off. ACKs, which get no answer, are dropped.
    Reject {
        /// Seconds in Retry-After.
        retry_after_s: u32,
    },
    /// No answer at all: nothing to reflect at a forged source, nothing for a flood to
    /// read.
    Drop,
}

/// An IP network: an address and a prefix length (`192.0.2.0/24`, `::1/128`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IpNet {
    addr: IpAddr,
    prefix: u8,
}

impl IpNet {
    /// The network of `addr` with `prefix` leading bits (capped at the address's length).
    pub fn new(addr: IpAddr, prefix: u8) -> Self {
        let bits = if addr.is_ipv4() { 32 } else { 128 };
        IpNet {
            addr,
            prefix: prefix.min(bits),
        }
    }

    /// Parses `ADDR/PREFIX` or a bare address (a network of one).
    pub fn parse(s: &str) -> Option<Self> {
        let (addr, prefix) = match s.trim().split_once('/') {
            Some((a, p)) => (a, Some(p.parse::<u8>().ok()?)),
            None => (s.trim(), None),
        };
        let addr: IpAddr = addr
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse()
            .ok()?;
        let bits = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(bits);
        (prefix <= bits).then_some(IpNet { addr, prefix })
    }

    /// Whether `ip` is in the network. An IPv4 address mapped into IPv6 (`::ffff:a.b.c.d`)
    /// is taken as the IPv4 address.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        let mask = |bits: u32, width: u32| -> u128 {
            if bits == 0 {
                0
            } else {
                (!0u128 << (width - bits)) & (!0u128 >> (128 - width))
            }
        };
        match (self.addr, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let m = mask(u32::from(self.prefix), 32);
                u128::from(u32::from(n)) & m == u128::from(u32::from(a)) & m
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let m = mask(u32::from(self.prefix), 128);
                u128::from(n) & m == u128::from(a) & m
            }
            _ => false,
        }
    }
}

impl std::fmt::Display for IpNet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}
