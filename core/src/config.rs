//! Element configuration: everything the core needs to know, handed in once at
//! [`crate::Proxy::new`]. Every limit lives here (TigerBeetle's "put a limit on everything").

use std::net::SocketAddr;
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
}

/// Proxy behaviour (RFC 3261 §16).
#[derive(Clone, Debug)]
pub struct ProxyConfig {
    /// Proxy requests that are not for the element itself; off: answer them 405.
    pub enabled: bool,
    /// Add Record-Route to dialog-creating requests (§16.6 step 4).
    pub record_route: bool,
    /// Challenge initial INVITEs with 407 (§22.3), as Proxy 1 does in RFC 3665 §3.2.
    pub authenticate_invite: bool,
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
}

impl Default for ProxyConfig {
    fn default() -> Self {
        ProxyConfig {
            enabled: true,
            record_route: true,
            authenticate_invite: false,
            timer_c: Duration::from_secs(185),
            branches_max: 16,
            redirect: false,
            dns: false,
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
}

impl Default for CoreLimits {
    fn default() -> Self {
        CoreLimits {
            message: Limits::default(),
            transactions_max: 100_000,
        }
    }
}
