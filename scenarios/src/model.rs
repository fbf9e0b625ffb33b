//! The scenario language: the types a YAML scenario deserialises into, and the checks that
//! need the whole scenario (host names, variables, regexes) before anything runs.
//!
//! Every struct denies unknown keys, because a misspelt key (`statsu:`) silently ignored would
//! turn a check into no check. Maps whose order matters (hosts, vars, header matchers) keep
//! the order of the file: they deserialise into `Vec<(String, T)>` through [`ordered_map`],
//! which also rejects duplicate keys at the key's position.

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::fmt;
use std::marker::PhantomData;
use std::net::SocketAddr;
use std::time::Duration;

use serde::de::value::MapAccessDeserializer;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use trapezoid_core::config::IpNet;

use crate::error::{locate, Position, ScenarioError, Seg};
use crate::template;

/// Seed used when a scenario gives none.
pub const DEFAULT_SEED: u64 = 1;
/// One-way latency of every link when `network.latency_ms` is not given.
pub const DEFAULT_LATENCY_MS: u64 = 10;
/// How long an `expect` waits (virtual time) when it gives no `timeout_ms`.
pub const DEFAULT_TIMEOUT_MS: u64 = 5000;
/// Digest algorithm of a `send.auth` that names none.
pub const DEFAULT_ALGORITHM: &str = "MD5";
/// Digest algorithm names (RFC 7616 / RFC 8760), compared case-insensitively.
pub const ALGORITHMS: &[&str] = &[
    "MD5",
    "MD5-sess",
    "SHA-256",
    "SHA-256-sess",
    "SHA-512-256",
    "SHA-512-256-sess",
];

/// A whole scenario file.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Title, shown in transcripts.
    pub name: String,
    /// Free text for the reader.
    #[serde(default)]
    pub description: Option<String>,
    /// Seed of the simulation and of `random` vars; [`DEFAULT_SEED`] when absent.
    #[serde(default)]
    pub seed: Option<u64>,
    /// Link properties.
    #[serde(default)]
    // `network:` with nothing after it is the defaults, and is `null` once read as JSON.
    #[schemars(with = "Option<Network>")]
    pub network: Network,
    /// The hosts, in file order (the order is the order they are created in).
    #[serde(deserialize_with = "de_hosts")]
    #[schemars(schema_with = "ordered_map_schema::<Host>")]
    pub hosts: Vec<(String, Host)>,
    /// Variables, in file order.
    #[serde(default, deserialize_with = "de_vars")]
    #[schemars(schema_with = "ordered_map_schema::<VarDef>")]
    pub vars: Vec<(String, VarDef)>,
    /// What happens, in order.
    #[schemars(with = "Vec<StepKind>")]
    pub steps: Vec<Step>,
    /// The file name given to [`parse_scenario`], for errors found while running.
    #[serde(skip)]
    pub file: String,
}

impl Scenario {
    /// The seed to run with when the command line does not override it.
    pub fn seed(&self) -> u64 {
        self.seed.unwrap_or(DEFAULT_SEED)
    }

    /// The host called `name`.
    pub fn host(&self, name: &str) -> Option<&Host> {
        self.hosts.iter().find(|(n, _)| n == name).map(|(_, h)| h)
    }

    /// Where step `index` (0-based) starts; the file start if unknown.
    pub fn step_position(&self, index: usize) -> Position {
        self.steps
            .get(index)
            .map_or(Position::START, Step::position)
    }

    /// An error located at step `index`, for failures found while running it.
    pub fn step_error(&self, index: usize, message: impl Into<String>) -> ScenarioError {
        ScenarioError::new(&self.file, self.step_position(index), message)
    }
}

/// Link properties shared by every pair of hosts.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Network {
    /// Fixed one-way latency in milliseconds.
    #[serde(default = "default_latency_ms")]
    pub latency_ms: u64,
    /// Percent of datagrams lost on every link (0 to 100), drawn from the seed.
    #[serde(default)]
    #[schemars(range(max = 100))]
    pub loss_percent: u8,
    /// Percent of delivered datagrams that arrive twice (0 to 100), drawn from the seed.
    #[serde(default)]
    #[schemars(range(max = 100))]
    pub duplicate_percent: u8,
    /// Extra delay of every datagram, `[min, max]` milliseconds, drawn from the seed: wider
    /// than the spacing of two datagrams, it reorders them.
    #[serde(default)]
    pub jitter_ms: Option<(u64, u64)>,
    /// Faults of single directed links, instead of the ones above.
    #[serde(default)]
    pub links: Vec<LinkSpec>,
}

impl Default for Network {
    fn default() -> Self {
        Network {
            latency_ms: DEFAULT_LATENCY_MS,
            loss_percent: 0,
            duplicate_percent: 0,
            jitter_ms: None,
            links: Vec::new(),
        }
    }
}

/// The faults of one direction of one link (`from` → `to`).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LinkSpec {
    /// The sending host.
    pub from: String,
    /// The receiving host.
    pub to: String,
    /// Percent of datagrams lost.
    #[serde(default)]
    #[schemars(range(max = 100))]
    pub loss_percent: u8,
    /// Percent of delivered datagrams that arrive twice.
    #[serde(default)]
    #[schemars(range(max = 100))]
    pub duplicate_percent: u8,
    /// Extra delay, `[min, max]` milliseconds.
    #[serde(default)]
    pub jitter_ms: Option<(u64, u64)>,
}

/// Longest extra delay a jitter range may name: beyond Timer B's 32 s a datagram is as good
/// as lost, which `loss_percent` says better.
pub const JITTER_MS_MAX: u64 = 30_000;

impl Network {
    /// The latency as a duration.
    pub fn latency(&self) -> Duration {
        Duration::from_millis(self.latency_ms)
    }
}

fn default_latency_ms() -> u64 {
    DEFAULT_LATENCY_MS
}

/// A host: a scripted user agent, or an element running the Trapezoid core. Written as a
/// one-key map, `ua:` or `element:`.
#[derive(Clone, Debug, PartialEq, Eq, JsonSchema)]
#[schemars(rename_all = "snake_case")]
// A scenario has a handful of hosts; boxing the element would only complicate matching on it.
#[allow(clippy::large_enum_variant)]
pub enum Host {
    /// Sends and receives exactly what the steps say.
    Ua(UaHost),
    /// A proxy/registrar under test.
    Element(ElementHost),
}

impl Host {
    /// Where it listens.
    pub fn address(&self) -> SocketAddr {
        match self {
            Host::Ua(h) => h.address,
            Host::Element(h) => h.address,
        }
    }

    /// The YAML key of its kind: `ua` or `element`.
    pub fn kind(&self) -> &'static str {
        match self {
            Host::Ua(_) => "ua",
            Host::Element(_) => "element",
        }
    }
}

/// A scripted user agent.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UaHost {
    /// IP and port it sends from and receives on.
    #[schemars(pattern(SOCKET_ADDRESS))]
    pub address: SocketAddr,
    /// Host names that resolve to it in the simulated network (e.g. the
    /// `client.atlanta.example.com` of its Contact), so elements can reach it by name.
    #[serde(default)]
    pub host_names: Vec<String>,
    /// A phone that receives but never answers (RFC 3665 §3.10): what reaches it is recorded
    /// in the trace but need not be expected.
    #[serde(default)]
    pub silent: bool,
}

/// An element: the core, configured.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ElementHost {
    /// IP and port it listens on.
    #[schemars(pattern(SOCKET_ADDRESS))]
    pub address: SocketAddr,
    /// Domains it is responsible for (registrar and proxy target domains).
    pub domains: Vec<String>,
    /// Names by which it recognises itself in Request-URIs and Route headers.
    #[serde(default)]
    pub host_names: Vec<String>,
    /// Digest realm; the core's default when absent.
    #[serde(default)]
    pub realm: Option<String>,
    /// Authentication policy; the core's default when absent.
    #[serde(default)]
    pub auth: Option<AuthSpec>,
    /// Users it knows credentials for.
    #[serde(default)]
    pub users: Vec<UserSpec>,
    /// Registrar limits; the core's defaults when absent.
    #[serde(default)]
    pub registrar: Option<RegistrarSpec>,
    /// Transaction timers; the core's defaults when absent.
    #[serde(default)]
    pub timers: Option<TimersSpec>,
    /// Proxy behaviour; the core's defaults when absent.
    #[serde(default)]
    pub proxy: Option<ProxySpec>,
    /// Limits on messages, state and request rates; the core's defaults when absent.
    #[serde(default)]
    pub limits: Option<LimitsSpec>,
}

/// Limits on input and on state; every one has a default.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LimitsSpec {
    /// Largest message in bytes; a larger request gets 513 (default 65535).
    #[serde(default)]
    pub message_bytes_max: Option<usize>,
    /// Most header lines in a message; more get 400 (default 256).
    #[serde(default)]
    pub headers_max: Option<usize>,
    /// Live transactions; a new request beyond them gets 503 (default 100000).
    #[serde(default)]
    pub transactions_max: Option<usize>,
    /// Open TCP connections under `trapezoid serve`; one more is closed at once (default
    /// 1024). The simulator ignores it.
    #[serde(default)]
    pub tcp_connections_max: Option<usize>,
    /// New requests per source address (like Kamailio's pike).
    #[serde(default)]
    pub source_rate: Option<SourceRateSpec>,
}

/// A token bucket per source IP address.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SourceRateSpec {
    /// Sustained new requests per second from one address; 0 turns the limit off
    /// (default 200).
    #[serde(default)]
    pub per_second: Option<u32>,
    /// Requests one address may send at once (default 400).
    #[serde(default)]
    pub burst: Option<u32>,
    /// Addresses remembered; the least recently heard from is forgotten first
    /// (default 10000).
    #[serde(default)]
    pub sources_max: Option<usize>,
    /// What a request over the limit gets (default `reject`).
    #[serde(default)]
    pub over: Option<OverSpec>,
    /// Seconds in the Retry-After of the 503 (default 5).
    #[serde(default)]
    pub retry_after_s: Option<u32>,
    /// Addresses or networks (`192.0.2.0/24`) never limited; replaces the default, the
    /// loopback addresses (`127.0.0.0/8`, `::1`).
    #[serde(default)]
    pub exempt: Option<Vec<String>>,
}

/// What a request over its source's rate gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OverSpec {
    /// 503 Service Unavailable with Retry-After.
    Reject,
    /// No answer.
    Drop,
}

/// Who may have requests forwarded to domains the element does not serve.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RelaySpec {
    /// Anyone.
    Open,
    /// The element's own users: authenticated ones when `authenticate` is on, else those
    /// whose From is in a served domain; others get 403.
    Local,
    /// No one: 403.
    None,
}

/// Proxy behaviour (RFC 3261 §16).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProxySpec {
    /// Add Record-Route to dialog-creating requests (default true).
    #[serde(default)]
    pub record_route: Option<bool>,
    /// Challenge requests outside a dialog (all but ACK, CANCEL and REGISTER) with 407
    /// (default false).
    #[serde(default)]
    pub authenticate: Option<bool>,
    /// Who may reach other domains through the element (default `local`).
    #[serde(default)]
    pub relay: Option<RelaySpec>,
    /// Timer C in seconds (default 185).
    #[serde(default)]
    pub timer_c_s: Option<u64>,
    /// Be a redirect server: answer with 302 and the bindings instead of forwarding
    /// (default false).
    #[serde(default)]
    pub redirect: Option<bool>,
}

/// What the element challenges, and how.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AuthSpec {
    /// Challenge REGISTER requests.
    #[serde(default)]
    pub register: bool,
    /// Algorithms offered, in order; empty means the core's default.
    #[serde(default)]
    pub algorithms: Vec<String>,
    /// How long a nonce stays valid, in seconds.
    #[serde(default)]
    pub nonce_lifetime_s: Option<u64>,
}

/// A user of an element.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UserSpec {
    /// Digest username.
    pub name: String,
    /// Digest password.
    pub password: String,
    /// Addresses of record the user may register; the core derives one when empty.
    #[serde(default)]
    pub aors: Vec<String>,
}

/// Registrar limits (seconds, and bindings per address of record).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RegistrarSpec {
    /// Expiry granted when the request asks for none.
    #[serde(default)]
    pub default_expires: Option<u32>,
    /// Shorter requests are refused with 423.
    #[serde(default)]
    pub min_expires: Option<u32>,
    /// Longer requests are cut down to this.
    #[serde(default)]
    pub max_expires: Option<u32>,
    /// Most contacts one address of record may hold; more get 403 (default 16).
    #[serde(default)]
    pub bindings_per_aor_max: Option<usize>,
    /// Most addresses of record the location service may hold; a REGISTER creating one
    /// more gets 503 (default 1000000).
    #[serde(default)]
    pub aors_max: Option<usize>,
}

/// RFC 3261 timer values in milliseconds.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TimersSpec {
    /// RTT estimate.
    #[serde(default)]
    pub t1_ms: Option<u64>,
    /// Longest retransmit interval for non-INVITE requests and INVITE responses.
    #[serde(default)]
    pub t2_ms: Option<u64>,
    /// Longest time a message stays in the network.
    #[serde(default)]
    pub t4_ms: Option<u64>,
}

/// A variable: a fixed string, or a value generated from the seed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VarDef {
    /// `name: "text"` (numbers and booleans are taken as their text).
    Literal(String),
    /// `name: { random: kind }`.
    Random {
        /// What sort of value to generate.
        random: RandomKind,
    },
}

/// Kinds of generated values; the runner decides their exact shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RandomKind {
    /// A Via branch (with the RFC 3261 magic cookie).
    Branch,
    /// A From/To tag.
    Tag,
    /// A Call-ID.
    CallId,
    /// Any other token.
    Token,
}

/// One step and where it is in the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    /// 1-based line of the step's `- ` (filled in by [`parse_scenario`]; 0 when deserialised
    /// some other way).
    pub line: usize,
    /// 1-based column of the step's `- `.
    pub column: usize,
    /// What the step does.
    pub kind: StepKind,
}

impl Step {
    /// Where the step is.
    pub fn position(&self) -> Position {
        Position {
            line: self.line,
            column: self.column,
        }
    }
}

/// What a step does. Written as a one-key map: `send:`, `expect:`, `reply:`, `ack:`,
/// `wait_ms:`, `crash:`, `restart:`, `partition:` or `heal:`.
#[derive(Clone, Debug, PartialEq, Eq, JsonSchema)]
#[schemars(rename_all = "snake_case")]
pub enum StepKind {
    /// A UA sends a message.
    Send(SendStep),
    /// A UA receives a message and checks it.
    Expect(ExpectStep),
    /// Virtual time passes, in milliseconds.
    WaitMs(u64),
    /// A UA answers the last request it received (RFC 3261 §8.2.6).
    Reply(ReplyStep),
    /// A UA acknowledges the final response to its last INVITE (§17.1.1.3, §13.2.2.4).
    Ack(AckStep),
    /// An element crashes: it stops, loses its state, and datagrams to it are lost.
    Crash(String),
    /// A crashed element starts again from scratch.
    Restart(String),
    /// A crashed element starts again with the bindings it had stored, as a registrar with a
    /// database does (`serve --db`); its transactions and nonces are lost all the same.
    RestartWithBindings(String),
    /// The link between two hosts is cut, both ways.
    Partition(#[schemars(length(equal = 2))] Vec<String>),
    /// A cut link is restored.
    Heal(#[schemars(length(equal = 2))] Vec<String>),
    /// The datagrams between two hosts are held in the network (both ways), not lost.
    Hold(#[schemars(length(equal = 2))] Vec<String>),
    /// What `hold` kept is delivered, and datagrams go through again.
    Release(#[schemars(length(equal = 2))] Vec<String>),
    /// The datagrams it names are lost.
    Drop(FaultStep),
    /// The datagrams it names arrive twice.
    Duplicate(FaultStep),
    /// The datagrams it names arrive `ms` later.
    Delay(FaultStep),
}

/// `ack:`: the ACK a UAC sends for the final response to its last INVITE. For a non-2xx it is
/// the transaction's ACK (RFC 3261 §17.1.1.3: the INVITE's Request-URI, top Via and Route, the
/// response's To), sent where the INVITE went. For a 2xx it is the dialog's (§13.2.2.4: to the
/// remote target, the Contact; Route from the Record-Route set reversed; a new branch), sent to
/// the first Route hop or the remote target.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AckStep {
    /// The UA that sent the INVITE.
    pub from: String,
}

/// `reply:`: a UA answers the last request it received, the way RFC 3261 §8.2.6 and §12.1.1
/// say: Via, From, To, Call-ID and CSeq copied, the To tag added, Record-Route copied into
/// 1xx and 2xx answers; then the extra header lines and the body.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplyStep {
    /// The answering UA.
    pub from: String,
    /// Answer the last request with this method (e.g. the INVITE after a CANCEL arrived);
    /// the last request of any method when absent.
    #[serde(default)]
    pub request: Option<String>,
    /// Status code.
    pub status: u16,
    /// Reason phrase; the RFC's when absent.
    #[serde(default)]
    pub reason: Option<String>,
    /// The To tag to add when the request's To has none (template).
    #[serde(default)]
    pub to_tag: Option<String>,
    /// Extra header lines, e.g. Contact (template, one header per line).
    #[serde(default)]
    pub headers: Option<String>,
    /// A body (template; CRLF line ends; Content-Length is computed).
    #[serde(default)]
    pub body: Option<String>,
}

/// `send:`: a UA sends a message rendered from a template.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SendStep {
    /// The sending UA.
    pub from: String,
    /// The receiving host.
    pub to: String,
    /// The message template: the SIP message with `{{var}}` placeholders (see
    /// [`crate::template::render`]).
    pub message: String,
    /// Digest credentials; when present `{{response}}` is computed before rendering. A
    /// list answers several challenges at once (RFC 3665 §3.3: one per proxy), each into
    /// the variable its `var` names.
    #[serde(default)]
    pub auth: Option<AuthSteps>,
    /// Sends the request the way an RFC 3261 client transaction over UDP does: again at
    /// T1, 2*T1, 4*T1... (Timer A, §17.1.1.2; Timer E, capped at T2, §17.1.2.2) until the
    /// destination answers, and not after Timer B/F (64*T1). The default for every request
    /// that starts a transaction; `false` sends it once.
    #[serde(default)]
    pub retransmit: Option<bool>,
}

/// `drop:`, `duplicate:`, `delay:`: a scripted fault on the datagrams sent from this step on.
/// Every field narrows which datagrams it takes; none at all means every datagram.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FaultStep {
    /// The method (`INVITE`) or status (`180`) of the start line.
    #[serde(default)]
    pub message: Option<String>,
    /// The sending host.
    #[serde(default)]
    pub from: Option<String>,
    /// The receiving host.
    #[serde(default)]
    pub to: Option<String>,
    /// Only the nth matching datagram (1 is the first); every one when absent.
    #[serde(default)]
    #[schemars(range(min = 1))]
    pub nth: Option<u32>,
    /// `delay:` only: how much later than the link's latency it arrives, in milliseconds.
    #[serde(default)]
    pub ms: Option<u64>,
}

/// One `send.auth` block, or a list of them.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum AuthSteps {
    /// `auth: { username: ..., ... }`
    One(Box<AuthStep>),
    /// `auth: [ { var: r1, ... }, { var: r2, ... } ]`
    Many(Vec<AuthStep>),
}

impl AuthSteps {
    /// Each block with its index in the list (`None` for the single form).
    pub fn iter(&self) -> impl Iterator<Item = (Option<usize>, &AuthStep)> {
        let (one, many) = match self {
            AuthSteps::One(a) => (Some(&**a), &[][..]),
            AuthSteps::Many(v) => (None, v.as_slice()),
        };
        one.map(|a| (None, a))
            .into_iter()
            .chain(many.iter().enumerate().map(|(j, a)| (Some(j), a)))
    }
}

/// Inputs of a digest `response` (RFC 7616). Every field may use `{{vars}}`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AuthStep {
    /// The template variable the computed response fills; [`template::RESPONSE`] when absent.
    #[serde(default)]
    pub var: Option<String>,
    /// Digest username.
    pub username: String,
    /// Password.
    pub password: String,
    /// Realm from the challenge.
    pub realm: String,
    /// Nonce from the challenge.
    pub nonce: String,
    /// The digest-uri.
    pub uri: String,
    /// Hash algorithm; [`DEFAULT_ALGORITHM`] when absent (see [`AuthStep::algorithm_name`]).
    #[serde(default)]
    pub algorithm: Option<String>,
    /// Quality of protection (`auth`); needs `nc` and `cnonce`.
    #[serde(default)]
    pub qop: Option<String>,
    /// Nonce count, 8 hex digits.
    #[serde(default)]
    pub nc: Option<String>,
    /// Client nonce.
    #[serde(default)]
    pub cnonce: Option<String>,
}

impl AuthStep {
    /// The variable the response fills, defaulted.
    pub fn var_name(&self) -> &str {
        self.var.as_deref().unwrap_or(template::RESPONSE)
    }

    /// The algorithm, defaulted.
    pub fn algorithm_name(&self) -> &str {
        self.algorithm.as_deref().unwrap_or(DEFAULT_ALGORITHM)
    }
}

/// `expect:`: a UA waits for a message and checks it.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExpectStep {
    /// The receiving UA.
    pub at: String,
    /// The sender, when it matters.
    #[serde(default)]
    pub from: Option<String>,
    /// Expected response status (exactly one of `status` and `method`).
    #[serde(default)]
    #[schemars(range(min = 100, max = 699))]
    pub status: Option<u16>,
    /// Expected request method.
    #[serde(default)]
    pub method: Option<String>,
    /// Expected reason phrase, compared exactly.
    #[serde(default)]
    pub reason: Option<String>,
    /// How long to wait, virtual milliseconds; [`DEFAULT_TIMEOUT_MS`] when absent.
    #[serde(default)]
    pub timeout_ms: Option<u64>,
    /// Header checks in file order; each header has one or more matchers.
    #[serde(default, deserialize_with = "de_headers")]
    #[schemars(schema_with = "ordered_map_schema::<Matchers>")]
    pub headers: Vec<(String, Vec<HeaderMatcher>)>,
}

impl ExpectStep {
    /// The timeout, defaulted.
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS))
    }
}

/// Checks on one header. A plain string is shorthand for `{ equals: ... }`. The semantics are
/// in [`crate::matcher::check`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(remote = "Self", deny_unknown_fields)]
#[schemars(rename = "HeaderMatcher", transform = or_scalar)]
pub struct HeaderMatcher {
    /// Which value (0-based, after splitting comma lists) the value checks look at; without
    /// it they look at all values joined with `", "`.
    #[serde(default)]
    pub index: Option<usize>,
    /// The value equals this (after `{{var}}` substitution).
    #[serde(default)]
    pub equals: Option<String>,
    /// The value contains a match of this regex (unanchored).
    #[serde(default)]
    pub regex: Option<String>,
    /// `true`: at least one value; `false`: none.
    #[serde(default)]
    pub present: Option<bool>,
    /// `true`: no value; `false`: at least one.
    #[serde(default)]
    pub absent: Option<bool>,
    /// Exactly this many values.
    #[serde(default)]
    pub count: Option<usize>,
    /// Checks on the `;params` of the value at `index` (default 0), in file order.
    #[serde(default, deserialize_with = "de_params")]
    #[schemars(schema_with = "ordered_map_schema::<ParamMatcher>")]
    pub param: Vec<(String, ParamMatcher)>,
    /// Store the value (or regex group 1) in this variable for later steps.
    #[serde(default)]
    pub capture: Option<String>,
}

/// Checks on one header parameter. A plain string is shorthand for `{ equals: ... }`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(remote = "Self", deny_unknown_fields)]
#[schemars(rename = "ParamMatcher", transform = or_scalar)]
pub struct ParamMatcher {
    /// The parameter's value equals this.
    #[serde(default)]
    pub equals: Option<String>,
    /// `true`: the parameter is there (with or without a value); `false`: it is not.
    #[serde(default)]
    pub present: Option<bool>,
    /// Store its value (empty when it has none) in this variable.
    #[serde(default)]
    pub capture: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// Deserialisation helpers

/// Types that accept a scalar shorthand besides their mapping form.
trait Shorthand: Sized {
    const EXPECTING: &'static str;
    fn from_scalar(value: String) -> Self;
    fn from_map<'de, A: MapAccess<'de>>(map: A) -> Result<Self, A::Error>;
}

impl Shorthand for HeaderMatcher {
    const EXPECTING: &'static str = "a value to equal, or a matcher map";
    fn from_scalar(value: String) -> Self {
        HeaderMatcher {
            equals: Some(value),
            ..HeaderMatcher::default()
        }
    }
    fn from_map<'de, A: MapAccess<'de>>(map: A) -> Result<Self, A::Error> {
        // The inherent `deserialize` generated by `remote = "Self"`: the derived map form.
        HeaderMatcher::deserialize(MapAccessDeserializer::new(map))
    }
}

impl Shorthand for ParamMatcher {
    const EXPECTING: &'static str = "a value to equal, or { equals, present, capture }";
    fn from_scalar(value: String) -> Self {
        ParamMatcher {
            equals: Some(value),
            ..ParamMatcher::default()
        }
    }
    fn from_map<'de, A: MapAccess<'de>>(map: A) -> Result<Self, A::Error> {
        ParamMatcher::deserialize(MapAccessDeserializer::new(map))
    }
}

impl Shorthand for VarDef {
    const EXPECTING: &'static str = "a string, or { random: branch | tag | call_id | token }";
    fn from_scalar(value: String) -> Self {
        VarDef::Literal(value)
    }
    fn from_map<'de, A: MapAccess<'de>>(map: A) -> Result<Self, A::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Random {
            random: RandomKind,
        }
        let r = Random::deserialize(MapAccessDeserializer::new(map))?;
        Ok(VarDef::Random { random: r.random })
    }
}

struct ShorthandVisitor<T>(PhantomData<T>);

impl<'de, T: Shorthand> Visitor<'de> for ShorthandVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(T::EXPECTING)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
        Ok(T::from_scalar(v.to_owned()))
    }

    // Unquoted `3600` or `true` reach here as numbers; their text is what the user meant.
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<T, E> {
        Ok(T::from_scalar(v.to_string()))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<T, E> {
        Ok(T::from_scalar(v.to_string()))
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<T, E> {
        Ok(T::from_scalar(v.to_string()))
    }

    // A float's text cannot be recovered exactly (`1.10` → 1.1), so ask for quotes.
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<T, E> {
        Err(E::custom(format!(
            "the number {v} would lose its exact text; quote it"
        )))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
        T::from_map(map)
    }
}

fn shorthand<'de, D: Deserializer<'de>, T: Shorthand>(d: D) -> Result<T, D::Error> {
    d.deserialize_any(ShorthandVisitor(PhantomData))
}

impl<'de> Deserialize<'de> for HeaderMatcher {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        shorthand(d)
    }
}

impl<'de> Deserialize<'de> for ParamMatcher {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        shorthand(d)
    }
}

impl<'de> Deserialize<'de> for VarDef {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        shorthand(d)
    }
}

/// One matcher or a list of them.
struct Matchers(Vec<HeaderMatcher>);

impl<'de> Deserialize<'de> for Matchers {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Matchers;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a value to equal, a matcher map, or a list of matchers")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Matchers, A::Error> {
                let mut out = Vec::new();
                while let Some(m) = seq.next_element::<HeaderMatcher>()? {
                    out.push(m);
                }
                if out.is_empty() {
                    return Err(de::Error::custom(
                        "an empty list of matchers checks nothing",
                    ));
                }
                Ok(Matchers(out))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Matchers, E> {
                ShorthandVisitor(PhantomData).visit_str(v).map(one)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Matchers, E> {
                ShorthandVisitor(PhantomData).visit_u64(v).map(one)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Matchers, E> {
                ShorthandVisitor(PhantomData).visit_i64(v).map(one)
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Matchers, E> {
                ShorthandVisitor(PhantomData).visit_bool(v).map(one)
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Matchers, E> {
                ShorthandVisitor(PhantomData).visit_f64(v).map(one)
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Matchers, A::Error> {
                HeaderMatcher::from_map(map).map(one)
            }
        }
        fn one(m: HeaderMatcher) -> Matchers {
            Matchers(vec![m])
        }
        d.deserialize_any(V)
    }
}

/// The key of a one-key map that selects an enum variant. serde_yaml 0.9 reads externally
/// tagged enums only from YAML tags (`!send`), so `send: {...}` is read by hand; checking the
/// key inside the visitor gives the error the key's own position.
struct VariantKey {
    what: &'static str,
    variants: &'static [&'static str],
    /// Set when looking for a second key, which is always an error.
    first: Option<String>,
}

impl<'de> DeserializeSeed<'de> for VariantKey {
    type Value = String;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<String, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for VariantKey {
    type Value = String;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "one of `{}`", self.variants.join("`, `"))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
        if let Some(first) = self.first {
            return Err(E::custom(format!(
                "`{v}` next to `{first}`: a {} has exactly one key; start another `- ` item",
                self.what
            )));
        }
        if self.variants.contains(&v) {
            Ok(v.to_owned())
        } else {
            Err(E::unknown_variant(v, self.variants))
        }
    }
}

/// Reads `{ variant: value }`, with `value` reading the value for the variant found.
fn one_key_map<'de, A, T>(
    mut map: A,
    what: &'static str,
    variants: &'static [&'static str],
    value: impl FnOnce(&str, &mut A) -> Result<T, A::Error>,
) -> Result<T, A::Error>
where
    A: MapAccess<'de>,
{
    let seed = |first| VariantKey {
        what,
        variants,
        first,
    };
    let Some(key) = map.next_key_seed(seed(None))? else {
        return Err(de::Error::custom(format!(
            "an empty {what}; expected one of `{}`",
            variants.join("`, `")
        )));
    };
    let out = value(&key, &mut map)?;
    // Any second key is an error raised by the seed itself.
    map.next_key_seed(seed(Some(key)))?;
    Ok(out)
}

struct OneKeyVisitor<T>(PhantomData<T>);

impl<'de> Deserialize<'de> for Host {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(OneKeyVisitor::<Host>(PhantomData))
    }
}

impl<'de> Visitor<'de> for OneKeyVisitor<Host> {
    type Value = Host;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("`ua:` or `element:`")
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Host, A::Error> {
        one_key_map(map, "host", &["ua", "element"], |key, map| match key {
            "ua" => map.next_value().map(Host::Ua),
            _ => map.next_value().map(Host::Element),
        })
    }
}

impl<'de> Deserialize<'de> for Step {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // serde cannot see positions; `parse_scenario` fills them in from the text.
        StepKind::deserialize(d).map(|kind| Step {
            line: 0,
            column: 0,
            kind,
        })
    }
}

impl<'de> Deserialize<'de> for StepKind {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(OneKeyVisitor::<StepKind>(PhantomData))
    }
}

impl<'de> Visitor<'de> for OneKeyVisitor<StepKind> {
    type Value = StepKind;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "`send:`, `expect:`, `reply:`, `ack:`, `wait_ms:`, `crash:`, `restart:`, \
             `restart_with_bindings:`, `partition:`, `heal:`, `hold:`, `release:`, `drop:`, \
             `duplicate:` or `delay:`",
        )
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<StepKind, A::Error> {
        one_key_map(
            map,
            "step",
            &[
                "send",
                "expect",
                "wait_ms",
                "reply",
                "ack",
                "crash",
                "restart",
                "restart_with_bindings",
                "partition",
                "heal",
                "hold",
                "release",
                "drop",
                "duplicate",
                "delay",
            ],
            |key, map| match key {
                "send" => map.next_value().map(StepKind::Send),
                "expect" => map.next_value().map(StepKind::Expect),
                "reply" => map.next_value().map(StepKind::Reply),
                "ack" => map.next_value().map(StepKind::Ack),
                "crash" => map.next_value().map(StepKind::Crash),
                "restart" => map.next_value().map(StepKind::Restart),
                "partition" => map.next_value().map(StepKind::Partition),
                "heal" => map.next_value().map(StepKind::Heal),
                "restart_with_bindings" => map.next_value().map(StepKind::RestartWithBindings),
                "hold" => map.next_value().map(StepKind::Hold),
                "release" => map.next_value().map(StepKind::Release),
                "drop" => map.next_value().map(StepKind::Drop),
                "duplicate" => map.next_value().map(StepKind::Duplicate),
                "delay" => map.next_value().map(StepKind::Delay),
                _ => map.next_value().map(StepKind::WaitMs),
            },
        )
    }
}

/// Deserialises a YAML mapping into `(key, value)` pairs in file order, rejecting duplicate
/// keys (serde_yaml would pass both through to a map visitor). An empty value (`vars:` with
/// nothing after it) is an empty map.
fn ordered_map<'de, D, T>(d: D, what: &'static str) -> Result<Vec<(String, T)>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    struct MapVisitor<T> {
        what: &'static str,
        marker: PhantomData<T>,
    }

    impl<'de, T: Deserialize<'de>> Visitor<'de> for MapVisitor<T> {
        type Value = Vec<(String, T)>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "a map of {}", self.what)
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut out: Vec<(String, T)> = Vec::new();
            while let Some(key) = map.next_key_seed(UniqueKey(&out))? {
                let value = map.next_value()?;
                out.push((key, value));
            }
            Ok(out)
        }
    }

    d.deserialize_map(MapVisitor {
        what,
        marker: PhantomData,
    })
}

/// A map key that must not repeat an earlier one. The check runs inside the visitor so that
/// serde_yaml attaches the repeated key's own position to the error.
struct UniqueKey<'a, T>(&'a [(String, T)]);

impl<'de, T> DeserializeSeed<'de> for UniqueKey<'_, T> {
    type Value = String;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<String, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de, T> Visitor<'de> for UniqueKey<'_, T> {
    type Value = String;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a name")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
        if self.0.iter().any(|(k, _)| k == v) {
            return Err(E::custom(format!("duplicate key `{v}`")));
        }
        Ok(v.to_owned())
    }
}

fn de_hosts<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<(String, Host)>, D::Error> {
    ordered_map(d, "host names to `ua:` or `element:`")
}

fn de_vars<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<(String, VarDef)>, D::Error> {
    ordered_map(d, "variable names to values")
}

fn de_headers<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Vec<(String, Vec<HeaderMatcher>)>, D::Error> {
    let pairs: Vec<(String, Matchers)> = ordered_map(d, "header names to matchers")?;
    Ok(pairs.into_iter().map(|(k, m)| (k, m.0)).collect())
}

fn de_params<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<(String, ParamMatcher)>, D::Error> {
    ordered_map(d, "parameter names to matchers")
}

// ---------------------------------------------------------------------------------------------
// JSON Schema: the shapes read by hand above, described for `trapezoid schema`

/// The shape of an `IP:PORT` or `[IPv6]:PORT` socket address, for editors (the parser's check
/// is stricter: it parses the address).
const SOCKET_ADDRESS: &str =
    r"^([0-9]{1,3}(\.[0-9]{1,3}){3}|\[[0-9A-Fa-f:.]+(%[0-9]+)?\]):[0-9]{1,5}$";

/// The scalars a shorthand accepts: strings, and integers and booleans taken as their text
/// (a float is refused, since its exact text is lost).
fn scalar_schema() -> Schema {
    json_schema!({ "type": ["string", "integer", "boolean"] })
}

/// A map read by [`ordered_map`]: any keys, each value a `T`; an empty value is an empty map.
fn ordered_map_schema<T: JsonSchema>(generator: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": ["object", "null"],
        "additionalProperties": generator.subschema_for::<T>(),
    })
}

/// Turns the derived map form of a [`Shorthand`] type into "a scalar, or the map form".
fn or_scalar(schema: &mut Schema) {
    let mut map = std::mem::replace(schema, json_schema!({}));
    let description = map.remove("description");
    let mut scalar = scalar_schema();
    scalar.insert(
        "description".into(),
        "Shorthand for `{ equals: ... }`.".into(),
    );
    *schema = json_schema!({ "anyOf": [scalar, map] });
    if let Some(d) = description {
        schema.insert("description".into(), d);
    }
}

impl JsonSchema for Matchers {
    fn schema_name() -> Cow<'static, str> {
        "Matchers".into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let one = generator.subschema_for::<HeaderMatcher>();
        json_schema!({
            "description": "One matcher, or a non-empty list of them that must all hold.",
            "anyOf": [
                one,
                { "type": "array", "items": one, "minItems": 1 },
            ],
        })
    }
}

impl JsonSchema for VarDef {
    fn schema_name() -> Cow<'static, str> {
        "VarDef".into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let mut literal = scalar_schema();
        literal.insert(
            "description".into(),
            "A fixed value (numbers and booleans are taken as their text).".into(),
        );
        json_schema!({
            "description": "A variable: a fixed string, or a value generated from the seed.",
            "anyOf": [
                literal,
                {
                    "description": "A value generated from the seed: `{ random: kind }`.",
                    "type": "object",
                    "properties": { "random": generator.subschema_for::<RandomKind>() },
                    "required": ["random"],
                    "additionalProperties": false,
                },
            ],
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Parsing and validation

/// Names the templates may use without defining them.
pub const BUILTINS: &[&str] = &[template::CONTENT_LENGTH, template::RESPONSE];

/// Parses and validates a scenario. `file_name` is only used in error messages.
pub fn parse_scenario(file_name: &str, text: &str) -> Result<Scenario, ScenarioError> {
    let mut scenario: Scenario =
        serde_yaml::from_str(text).map_err(|e| ScenarioError::from_yaml(file_name, &e))?;
    scenario.file = file_name.to_owned();
    for (i, step) in scenario.steps.iter_mut().enumerate() {
        let at = locate(text, &[Seg::Key("steps"), Seg::Index(i)], None);
        step.line = at.line;
        step.column = at.column;
    }
    Validator {
        file: file_name,
        text,
        scenario: &scenario,
    }
    .run()?;
    Ok(scenario)
}

/// Where an element setting is, under the element: `["auth", "algorithms"]`.
type ElementError<'a> = dyn Fn(&[&str], Option<&str>, String) -> ScenarioError + 'a;

/// The checks of an element's settings that serde cannot make, shared by scenarios and by
/// `trapezoid serve --config`.
fn check_element(e: &ElementHost, err: &ElementError<'_>) -> Check {
    if let Some(auth) = &e.auth {
        for alg in &auth.algorithms {
            if !known_algorithm(alg) {
                return Err(err(
                    &["auth", "algorithms"],
                    Some(alg),
                    format!(
                        "unknown digest algorithm `{alg}` (known: {})",
                        ALGORITHMS.join(", ")
                    ),
                ));
            }
        }
    }
    for (j, user) in e.users.iter().enumerate() {
        if e.users[..j].iter().any(|u| u.name == user.name) {
            return Err(err(
                &["users"],
                Some(&user.name),
                format!("user `{}` is listed twice", user.name),
            ));
        }
        if let Some(aor) = user
            .aors
            .iter()
            .find(|a| !(a.starts_with("sip:") || a.starts_with("sips:")))
        {
            return Err(err(
                &["users"],
                Some(aor),
                format!("address of record `{aor}` must be a sip: or sips: URI"),
            ));
        }
    }
    if let Some(r) = &e.registrar {
        let order = [
            ("min_expires", r.min_expires),
            ("default_expires", r.default_expires),
            ("max_expires", r.max_expires),
        ];
        let given: Vec<(&str, u32)> = order
            .iter()
            .filter_map(|(k, v)| v.map(|v| (*k, v)))
            .collect();
        if let Some(w) = given.windows(2).find(|w| w[0].1 > w[1].1) {
            return Err(err(
                &["registrar"],
                Some(w[1].0),
                format!(
                    "{} ({}) is less than {} ({})",
                    w[1].0, w[1].1, w[0].0, w[0].1
                ),
            ));
        }
    }
    if let Some(l) = &e.limits {
        for (key, value) in [
            ("message_bytes_max", l.message_bytes_max),
            ("headers_max", l.headers_max),
            ("transactions_max", l.transactions_max),
            ("tcp_connections_max", l.tcp_connections_max),
        ] {
            if value == Some(0) {
                return Err(err(
                    &["limits"],
                    Some(key),
                    format!("{key} must be more than 0"),
                ));
            }
        }
        if let Some(r) = &l.source_rate {
            if r.burst == Some(0) {
                return Err(err(
                    &["limits", "source_rate"],
                    Some("burst"),
                    "burst must be more than 0 (per_second: 0 turns the limit off)".into(),
                ));
            }
            for net in r.exempt.iter().flatten() {
                if IpNet::parse(net).is_none() {
                    return Err(err(
                        &["limits", "source_rate", "exempt"],
                        Some(net),
                        format!("`{net}` is not an IP address or network (ADDRESS/PREFIX)"),
                    ));
                }
            }
        }
    }
    if let Some(t) = &e.timers {
        for (key, value) in [("t1_ms", t.t1_ms), ("t2_ms", t.t2_ms), ("t4_ms", t.t4_ms)] {
            if value == Some(0) {
                return Err(err(
                    &["timers"],
                    Some(key),
                    format!("{key} must be more than 0"),
                ));
            }
        }
        if let (Some(t1), Some(t2)) = (t.t1_ms, t.t2_ms) {
            if t1 > t2 {
                return Err(err(
                    &["timers"],
                    Some("t2_ms"),
                    format!("t2_ms ({t2}) is less than t1_ms ({t1})"),
                ));
            }
        }
    }
    Ok(())
}

/// Reads an element's settings on their own (the `element:` of a scenario host, as
/// `trapezoid serve --config` takes them), with the same checks and error positions.
pub fn parse_element(file_name: &str, text: &str) -> Result<ElementHost, ScenarioError> {
    let e: ElementHost =
        serde_yaml::from_str(text).map_err(|e| ScenarioError::from_yaml(file_name, &e))?;
    check_element(&e, &|keys, needle, message| {
        let path: Vec<Seg<'_>> = keys.iter().map(|k| Seg::Key(k)).collect();
        ScenarioError::new(file_name, locate(text, &path, needle), message)
    })?;
    Ok(e)
}

/// Whether `name` can be a variable or capture name (what `{{ }}` accepts).
pub fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// RFC 3261 `token`: header names, methods, parameter names.
fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-.!%*_+`'~".contains(c))
}

struct Validator<'a> {
    file: &'a str,
    text: &'a str,
    scenario: &'a Scenario,
}

type Check = Result<(), ScenarioError>;

impl Validator<'_> {
    fn error(&self, path: &[Seg<'_>], needle: Option<&str>, message: String) -> ScenarioError {
        ScenarioError::new(self.file, locate(self.text, path, needle), message)
    }

    fn run(&self) -> Check {
        for (key, value) in [
            ("loss_percent", self.scenario.network.loss_percent),
            ("duplicate_percent", self.scenario.network.duplicate_percent),
        ] {
            if value > 100 {
                return Err(self.error(
                    &[Seg::Key("network"), Seg::Key(key)],
                    None,
                    format!("{key} is a percent: 0 to 100, not {value}"),
                ));
            }
        }
        self.hosts()?;
        self.links()?;
        let mut known: BTreeSet<String> = BTreeSet::new();
        for (name, _) in &self.scenario.vars {
            let path = [Seg::Key("vars"), Seg::Key(name)];
            if BUILTINS.contains(&name.as_str()) {
                return Err(self.error(
                    &path,
                    None,
                    format!("`{name}` is built in; choose another name"),
                ));
            }
            if !is_identifier(name) {
                return Err(self.error(
                    &path,
                    None,
                    format!("variable name `{name}` must be letters, digits and `_`, not starting with a digit"),
                ));
            }
            known.insert(name.clone());
        }
        for (i, step) in self.scenario.steps.iter().enumerate() {
            match &step.kind {
                StepKind::Send(s) => self.send(i, s, &known)?,
                StepKind::Expect(e) => {
                    for name in self.expect(i, e, &known)? {
                        known.insert(name);
                    }
                }
                StepKind::WaitMs(_) => {}
                StepKind::Crash(name)
                | StepKind::Restart(name)
                | StepKind::RestartWithBindings(name) => {
                    let key = match step.kind {
                        StepKind::Crash(_) => "crash",
                        StepKind::Restart(_) => "restart",
                        _ => "restart_with_bindings",
                    };
                    let path = [Seg::Key("steps"), Seg::Index(i), Seg::Key(key)];
                    self.host_ref(&path, name, false)?;
                    if !matches!(self.scenario.host(name), Some(Host::Element(_))) {
                        return Err(self.error(
                            &path,
                            Some(name),
                            format!("`{name}` is a ua; only an element can {key}"),
                        ));
                    }
                }
                StepKind::Partition(pair)
                | StepKind::Heal(pair)
                | StepKind::Hold(pair)
                | StepKind::Release(pair) => {
                    let key = match step.kind {
                        StepKind::Partition(_) => "partition",
                        StepKind::Heal(_) => "heal",
                        StepKind::Hold(_) => "hold",
                        _ => "release",
                    };
                    let path = [Seg::Key("steps"), Seg::Index(i), Seg::Key(key)];
                    let [a, b] = pair.as_slice() else {
                        return Err(self.error(
                            &path,
                            None,
                            format!("`{key}` takes two hosts: [a, b]"),
                        ));
                    };
                    for (j, name) in [a, b].into_iter().enumerate() {
                        let at = [
                            Seg::Key("steps"),
                            Seg::Index(i),
                            Seg::Key(key),
                            Seg::Index(j),
                        ];
                        self.host_ref(&at, name, false)?;
                    }
                    if a == b {
                        return Err(self.error(
                            &path,
                            Some(b),
                            format!("`{key}` needs two different hosts"),
                        ));
                    }
                }
                StepKind::Drop(f) => self.fault_step(i, "drop", f)?,
                StepKind::Duplicate(f) => self.fault_step(i, "duplicate", f)?,
                StepKind::Delay(f) => self.fault_step(i, "delay", f)?,
                StepKind::Ack(a) => {
                    if !matches!(self.scenario.host(&a.from), Some(Host::Ua(_))) {
                        return Err(self.error(
                            &[
                                Seg::Key("steps"),
                                Seg::Index(i),
                                Seg::Key("ack"),
                                Seg::Key("from"),
                            ],
                            Some(&a.from),
                            format!("`{}` is not a ua host", a.from),
                        ));
                    }
                }
                StepKind::Reply(r) => {
                    if !matches!(self.scenario.host(&r.from), Some(Host::Ua(_))) {
                        return Err(self.error(
                            &[
                                Seg::Key("steps"),
                                Seg::Index(i),
                                Seg::Key("reply"),
                                Seg::Key("from"),
                            ],
                            Some(&r.from),
                            format!("`{}` is not a ua host", r.from),
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    fn hosts(&self) -> Check {
        for (i, (name, host)) in self.scenario.hosts.iter().enumerate() {
            let kind = host.kind();
            let here = |key: &str, needle: Option<&str>, message: String| {
                self.error(
                    &[
                        Seg::Key("hosts"),
                        Seg::Key(name),
                        Seg::Key(kind),
                        Seg::Key(key),
                    ],
                    needle,
                    message,
                )
            };
            if !is_token(name) {
                return Err(self.error(
                    &[Seg::Key("hosts"), Seg::Key(name)],
                    None,
                    format!("host name `{name}` must be letters, digits and `-._`"),
                ));
            }
            let address = host.address();
            if let Some((other, _)) = self.scenario.hosts[..i]
                .iter()
                .find(|(_, h)| h.address() == address)
            {
                return Err(here(
                    "address",
                    None,
                    format!("address {address} is already used by host `{other}`"),
                ));
            }
            let Host::Element(e) = host else { continue };
            check_element(e, &|keys, needle, message| {
                let mut path = vec![Seg::Key("hosts"), Seg::Key(name), Seg::Key(kind)];
                path.extend(keys.iter().map(|k| Seg::Key(k)));
                self.error(&path, needle, message)
            })?;
        }
        Ok(())
    }

    /// Checks that `name` is a host, and a UA if `ua_only`.
    /// `network.jitter_ms` and `network.links`.
    fn links(&self) -> Check {
        self.jitter(
            &[Seg::Key("network"), Seg::Key("jitter_ms")],
            self.scenario.network.jitter_ms,
        )?;
        for (i, l) in self.scenario.network.links.iter().enumerate() {
            let at = |key: &'static str| {
                [
                    Seg::Key("network"),
                    Seg::Key("links"),
                    Seg::Index(i),
                    Seg::Key(key),
                ]
            };
            self.host_ref(&at("from"), &l.from, false)?;
            self.host_ref(&at("to"), &l.to, false)?;
            for (key, value) in [
                ("loss_percent", l.loss_percent),
                ("duplicate_percent", l.duplicate_percent),
            ] {
                if value > 100 {
                    return Err(self.error(
                        &at(key),
                        None,
                        format!("{key} is a percent: 0 to 100, not {value}"),
                    ));
                }
            }
            self.jitter(&at("jitter_ms"), l.jitter_ms)?;
        }
        Ok(())
    }

    fn jitter(&self, path: &[Seg<'_>], jitter: Option<(u64, u64)>) -> Check {
        match jitter {
            Some((min, max)) if min > max => Err(self.error(
                path,
                None,
                format!("jitter_ms is [min, max], and {min} > {max}"),
            )),
            Some((_, max)) if max > JITTER_MS_MAX => Err(self.error(
                path,
                None,
                format!("jitter_ms goes up to {JITTER_MS_MAX} ms, not {max}"),
            )),
            _ => Ok(()),
        }
    }

    /// `drop:`, `duplicate:` and `delay:`.
    fn fault_step(&self, i: usize, key: &'static str, f: &FaultStep) -> Check {
        let at = |field: &'static str| {
            [
                Seg::Key("steps"),
                Seg::Index(i),
                Seg::Key(key),
                Seg::Key(field),
            ]
        };
        for (field, host) in [("from", &f.from), ("to", &f.to)] {
            if let Some(h) = host {
                self.host_ref(&at(field), h, false)?;
            }
        }
        if f.nth == Some(0) {
            return Err(self.error(&at("nth"), None, "nth counts from 1".into()));
        }
        if let Some(m) = &f.message {
            let status = m.len() == 3 && m.bytes().all(|b| b.is_ascii_digit());
            if !status && !is_token(m) {
                return Err(self.error(
                    &at("message"),
                    Some(m),
                    format!("`{m}` is neither a method nor a status code"),
                ));
            }
        }
        match (key, f.ms) {
            ("delay", None) => Err(self.error(
                &[Seg::Key("steps"), Seg::Index(i), Seg::Key(key)],
                None,
                "`delay` needs `ms`: how much later the datagram arrives".into(),
            )),
            ("delay", Some(ms)) if ms > JITTER_MS_MAX => Err(self.error(
                &at("ms"),
                None,
                format!("a delay goes up to {JITTER_MS_MAX} ms, not {ms}"),
            )),
            ("delay", Some(_)) | (_, None) => Ok(()),
            (_, Some(_)) => Err(self.error(
                &at("ms"),
                None,
                format!("only `delay` takes `ms`, not `{key}`"),
            )),
        }
    }

    fn host_ref(&self, path: &[Seg<'_>], name: &str, ua_only: bool) -> Check {
        match self.scenario.host(name) {
            None => {
                let names: Vec<&str> = self
                    .scenario
                    .hosts
                    .iter()
                    .map(|(n, _)| n.as_str())
                    .collect();
                Err(self.error(
                    path,
                    Some(name),
                    format!("unknown host `{name}` (hosts: {})", names.join(", ")),
                ))
            }
            Some(Host::Element(_)) if ua_only => Err(self.error(
                path,
                Some(name),
                format!("`{name}` is an element; only a ua can be scripted here"),
            )),
            Some(_) => Ok(()),
        }
    }

    /// Checks the placeholders of `text` (found at `path`): well formed, and each one known or
    /// in `extra`.
    fn template_refs(
        &self,
        path: &[Seg<'_>],
        text: &str,
        known: &BTreeSet<String>,
        extra: &[&str],
    ) -> Check {
        let placeholders = template::placeholders(text).map_err(|e| {
            let needle = text[e.offset..].lines().next().unwrap_or("{{");
            self.error(path, Some(needle), e.message)
        })?;
        for p in placeholders {
            if known.contains(&p.name) || extra.contains(&p.name.as_str()) {
                continue;
            }
            let hint = if p.name == template::RESPONSE {
                " (`response` needs `auth:` in this send)"
            } else if BUILTINS.contains(&p.name.as_str()) {
                " (only a send's message can use it)"
            } else {
                " (not a var, nor captured by an earlier step)"
            };
            return Err(self.error(
                path,
                Some(&text[p.start..p.end]),
                format!("undefined variable `{}`{hint}", p.name),
            ));
        }
        Ok(())
    }

    fn send(&self, i: usize, s: &SendStep, known: &BTreeSet<String>) -> Check {
        let at = |key: &'static str| {
            [
                Seg::Key("steps"),
                Seg::Index(i),
                Seg::Key("send"),
                Seg::Key(key),
            ]
        };
        self.host_ref(&at("from"), &s.from, true)?;
        self.host_ref(&at("to"), &s.to, false)?;
        if s.from == s.to {
            return Err(self.error(
                &at("to"),
                Some(&s.to),
                format!("`{}` sends to itself", s.from),
            ));
        }
        if s.message.lines().next().is_none_or(|l| l.trim().is_empty()) {
            return Err(self.error(
                &at("message"),
                None,
                "the message must start with a request or status line".into(),
            ));
        }
        if s.retransmit == Some(true) {
            let first = s.message.split_whitespace().next().unwrap_or("");
            if first.starts_with("SIP/") || first == "ACK" {
                return Err(self.error(
                    &at("retransmit"),
                    None,
                    format!(
                        "only a request that starts a client transaction is retransmitted, not {}",
                        if first == "ACK" {
                            "an ACK"
                        } else {
                            "a response"
                        }
                    ),
                ));
            }
        }
        let mut builtins = vec![template::CONTENT_LENGTH];
        for (j, auth) in s.auth.iter().flat_map(AuthSteps::iter) {
            let field = |key: &'static str| {
                let mut path = vec![
                    Seg::Key("steps"),
                    Seg::Index(i),
                    Seg::Key("send"),
                    Seg::Key("auth"),
                ];
                path.extend(j.map(Seg::Index));
                path.push(Seg::Key(key));
                path
            };
            let var = auth.var_name();
            if builtins.contains(&var) || known.contains(var) {
                return Err(self.error(
                    &field("var"),
                    Some(var),
                    format!("`{var}` is already a variable here; give each response its own"),
                ));
            }
            builtins.push(var);
            let fields = [
                ("username", Some(&auth.username)),
                ("password", Some(&auth.password)),
                ("realm", Some(&auth.realm)),
                ("nonce", Some(&auth.nonce)),
                ("uri", Some(&auth.uri)),
                ("algorithm", auth.algorithm.as_ref()),
                ("qop", auth.qop.as_ref()),
                ("nc", auth.nc.as_ref()),
                ("cnonce", auth.cnonce.as_ref()),
            ];
            for (key, value) in fields {
                if let Some(value) = value {
                    self.template_refs(&field(key), value, known, &[])?;
                }
            }
            let algorithm = auth.algorithm_name();
            if !known_algorithm(algorithm) {
                return Err(self.error(
                    &field("algorithm"),
                    Some(algorithm),
                    format!(
                        "unknown digest algorithm `{algorithm}` (known: {})",
                        ALGORITHMS.join(", ")
                    ),
                ));
            }
            if let Some(qop) = &auth.qop {
                if qop != "auth" {
                    return Err(self.error(
                        &field("qop"),
                        Some(qop),
                        format!("qop `{qop}` is not supported (only `auth`)"),
                    ));
                }
            }
            match (&auth.qop, &auth.nc, &auth.cnonce) {
                (Some(_), Some(_), Some(_)) | (None, None, None) => {}
                (Some(_), _, _) => {
                    return Err(self.error(
                        &field("qop"),
                        None,
                        "with qop, give both nc and cnonce".into(),
                    ));
                }
                (None, _, _) => {
                    let key = if auth.nc.is_some() { "nc" } else { "cnonce" };
                    return Err(self.error(
                        &field(key),
                        None,
                        "nc and cnonce are only used with qop".into(),
                    ));
                }
            }
            if let Some(nc) = &auth.nc {
                let literal = template::placeholders(nc)
                    .map(|p| p.is_empty())
                    .unwrap_or(false);
                if literal && !(nc.len() == 8 && nc.chars().all(|c| c.is_ascii_hexdigit())) {
                    return Err(self.error(
                        &field("nc"),
                        Some(nc),
                        format!("nc `{nc}` must be 8 hex digits"),
                    ));
                }
            }
        }
        self.template_refs(&at("message"), &s.message, known, &builtins)
    }

    /// Checks an expect step; returns the names it captures.
    fn expect(
        &self,
        i: usize,
        e: &ExpectStep,
        known: &BTreeSet<String>,
    ) -> Result<Vec<String>, ScenarioError> {
        let step = [Seg::Key("steps"), Seg::Index(i), Seg::Key("expect")];
        let at = |key: &'static str| {
            [
                Seg::Key("steps"),
                Seg::Index(i),
                Seg::Key("expect"),
                Seg::Key(key),
            ]
        };
        self.host_ref(&at("at"), &e.at, true)?;
        if let Some(from) = &e.from {
            self.host_ref(&at("from"), from, false)?;
            if *from == e.at {
                return Err(self.error(
                    &at("from"),
                    Some(from),
                    format!("`{from}` cannot expect a message from itself"),
                ));
            }
        }
        match (e.status, &e.method) {
            (Some(_), Some(_)) => {
                return Err(self.error(
                    &at("method"),
                    None,
                    "give either `status` or `method`, not both".into(),
                ));
            }
            (None, None) => {
                return Err(self.error(
                    &step,
                    None,
                    "give `status` (a response) or `method` (a request)".into(),
                ));
            }
            (Some(s), None) if !(100..=699).contains(&s) => {
                return Err(self.error(
                    &at("status"),
                    None,
                    format!("status {s} is not between 100 and 699"),
                ));
            }
            (None, Some(m)) if !is_token(m) => {
                return Err(self.error(
                    &at("method"),
                    None,
                    format!("`{m}` is not a SIP method token"),
                ));
            }
            _ => {}
        }
        if let Some(reason) = &e.reason {
            if e.status.is_none() {
                return Err(self.error(
                    &at("reason"),
                    None,
                    "`reason` needs `status`: requests have no reason phrase".into(),
                ));
            }
            self.template_refs(&at("reason"), reason, known, &[])?;
        }

        let mut captures: Vec<String> = Vec::new();
        let mut capture = |path: &[Seg<'_>], name: &str| -> Check {
            let problem = if !is_identifier(name) {
                Some(format!("capture name `{name}` must be letters, digits and `_`, not starting with a digit"))
            } else if BUILTINS.contains(&name) {
                Some(format!("`{name}` is built in; capture into another name"))
            } else if self.scenario.vars.iter().any(|(v, _)| v == name) {
                Some(format!("`{name}` is a var; capture into another name"))
            } else if captures.iter().any(|c| c == name) {
                Some(format!("`{name}` is captured twice in this step"))
            } else {
                None
            };
            match problem {
                Some(message) => Err(self.error(path, Some(name), message)),
                None => {
                    captures.push(name.to_owned());
                    Ok(())
                }
            }
        };

        for (h, (header, matchers)) in e.headers.iter().enumerate() {
            let header_path = [
                Seg::Key("steps"),
                Seg::Index(i),
                Seg::Key("expect"),
                Seg::Key("headers"),
                Seg::Key(header),
            ];
            if !is_token(header) {
                return Err(self.error(
                    &header_path,
                    None,
                    format!("`{header}` is not a header name"),
                ));
            }
            if let Some((earlier, _)) = e.headers[..h]
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(header))
            {
                return Err(self.error(
                    &header_path,
                    None,
                    format!("`{header}` repeats `{earlier}` (header names ignore case); list both matchers under one key"),
                ));
            }
            for (j, m) in matchers.iter().enumerate() {
                let mut path = header_path.to_vec();
                if matchers.len() > 1 {
                    path.push(Seg::Index(j));
                }
                let key = |k: &'static str| {
                    let mut p = path.clone();
                    p.push(Seg::Key(k));
                    p
                };
                self.matcher(&path, m)?;
                if let Some(re) = &m.regex {
                    self.template_refs(&key("regex"), re, known, &[])?;
                    let pattern = template::placeholders(re)
                        .map(|ps| {
                            let mut out = String::new();
                            let mut last = 0;
                            for p in ps {
                                out.push_str(&re[last..p.start]);
                                out.push_str(&regex::escape(&p.name));
                                last = p.end;
                            }
                            out.push_str(&re[last..]);
                            out
                        })
                        .unwrap_or_else(|_| re.clone());
                    if let Err(err) = regex::Regex::new(&pattern) {
                        return Err(self.error(
                            &key("regex"),
                            None,
                            format!("bad regex: {}", one_line(&err.to_string())),
                        ));
                    }
                }
                if let Some(eq) = &m.equals {
                    self.template_refs(&key("equals"), eq, known, &[])?;
                }
                for (pname, pm) in &m.param {
                    let mut ppath = key("param");
                    ppath.push(Seg::Key(pname));
                    if !is_token(pname) {
                        return Err(self.error(
                            &ppath,
                            None,
                            format!("`{pname}` is not a parameter name"),
                        ));
                    }
                    let empty = pm.equals.is_none() && pm.present.is_none() && pm.capture.is_none();
                    if empty {
                        return Err(self.error(
                            &ppath,
                            None,
                            format!("the matcher of `;{pname}` checks nothing"),
                        ));
                    }
                    if pm.present == Some(false) && (pm.equals.is_some() || pm.capture.is_some()) {
                        return Err(self.error(
                            &ppath,
                            None,
                            format!("`;{pname}` cannot be absent and have a value"),
                        ));
                    }
                    if let Some(eq) = &pm.equals {
                        self.template_refs(&ppath, eq, known, &[])?;
                    }
                    if let Some(c) = &pm.capture {
                        let mut cpath = ppath.clone();
                        cpath.push(Seg::Key("capture"));
                        capture(&cpath, c)?;
                    }
                }
                if let Some(c) = &m.capture {
                    capture(&key("capture"), c)?;
                }
            }
        }
        Ok(captures)
    }

    /// Checks that a header matcher's keys make sense together.
    fn matcher(&self, path: &[Seg<'_>], m: &HeaderMatcher) -> Check {
        let fail = |message: &str| Err(self.error(path, None, message.to_owned()));
        let checks_value =
            m.equals.is_some() || m.regex.is_some() || !m.param.is_empty() || m.capture.is_some();
        if !checks_value && m.present.is_none() && m.absent.is_none() && m.count.is_none() {
            return fail("this matcher checks nothing");
        }
        if m.present.is_some() && m.absent.is_some() {
            return fail("give `present` or `absent`, not both");
        }
        let must_be_absent = m.present == Some(false) || m.absent == Some(true);
        if must_be_absent && (checks_value || m.index.is_some() || m.count.is_some_and(|c| c > 0)) {
            return fail("a header that must be absent has no value to check");
        }
        if m.count.is_some() && m.index.is_some() {
            return fail("`count` counts every value; drop `index`");
        }
        if m.count.is_some() && m.capture.is_some() {
            return fail("`capture` with `count` is ambiguous; capture in a separate matcher");
        }
        Ok(())
    }
}

fn known_algorithm(name: &str) -> bool {
    ALGORITHMS.iter().any(|a| a.eq_ignore_ascii_case(name))
}

/// The regex crate's errors are multi-line drawings; an error message wants one line.
fn one_line(text: &str) -> String {
    let last = text
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or(text);
    last.trim().trim_start_matches("error: ").to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 3665 §2.1, as in the language's reference example.
    const REGISTER: &str = r#"name: "RFC 3665 §2.1 Successful New Registration"
description: |
  Bob registers; the registrar challenges (401), Bob retries with credentials.
seed: 7
network:
  latency_ms: 20
hosts:
  bob:
    ua:
      address: 192.0.2.201:5061
  ss2:
    element:
      address: 192.0.2.222:5061
      domains: [biloxi.example.com]
      host_names: [ss2.biloxi.example.com]
      realm: atlanta.example.com
      auth: { register: true, algorithms: [MD5], nonce_lifetime_s: 300 }
      users:
        - { name: bob, password: zanzibar, aors: ["sip:bob@biloxi.example.com"] }
      registrar: { default_expires: 3600, min_expires: 60, max_expires: 7200, bindings_per_aor_max: 10 }
      timers: { t1_ms: 500, t2_ms: 4000, t4_ms: 5000 }
vars:
  call_id: "1j9FpLxk3uxtm8tn@biloxi.example.com"
  branch1: { random: branch }
  tag1: { random: tag }
  cseq: 1
steps:
  - send:
      from: bob
      to: ss2
      message: |
        REGISTER sips:ss2.biloxi.example.com SIP/2.0
        Via: SIP/2.0/UDP client.biloxi.example.com:5061;branch={{branch1}}
        From: Bob <sips:bob@biloxi.example.com>;tag={{tag1}}
        Call-ID: {{call_id}}
        CSeq: {{ cseq }} REGISTER
        Content-Length: {{content_length}}
  - expect:
      at: bob
      from: ss2
      status: 401
      reason: Unauthorized
      timeout_ms: 2000
      headers:
        Call-ID: "{{call_id}}"
        To: { param: { tag: { capture: to_tag } } }
        WWW-Authenticate: { regex: 'nonce="([^"]+)"', capture: nonce }
        Contact:
          - { index: 0, equals: "<sips:bob@client.biloxi.example.com>;expires=3600" }
          - { count: 2 }
        Authorization: { absent: true }
        Expires: { present: true }
        Max-Forwards: 70
  - send:
      from: bob
      to: ss2
      auth:
        username: bob
        password: zanzibar
        realm: atlanta.example.com
        nonce: "{{nonce}}"
        uri: "sips:ss2.biloxi.example.com"
        qop: auth
        nc: "00000001"
        cnonce: "0a4f113b"
      message: |
        REGISTER sips:ss2.biloxi.example.com SIP/2.0
        To: Bob <sips:bob@biloxi.example.com>;tag={{to_tag}}
        Authorization: Digest response="{{response}}"
        Content-Length: 0
  - wait_ms: 1000
"#;

    fn parse(text: &str) -> Result<Scenario, ScenarioError> {
        parse_scenario("t.yaml", text)
    }

    fn err(text: &str) -> String {
        parse(text).unwrap_err().to_string()
    }

    #[test]
    fn parses_the_reference_example() {
        let s = parse(REGISTER).unwrap();
        assert_eq!(s.name, "RFC 3665 §2.1 Successful New Registration");
        assert_eq!(s.seed(), 7);
        assert_eq!(s.network.latency(), Duration::from_millis(20));
        let names: Vec<&str> = s.hosts.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["bob", "ss2"]);
        let Host::Element(ss2) = s.host("ss2").unwrap() else {
            panic!("ss2 is an element")
        };
        assert_eq!(ss2.address, "192.0.2.222:5061".parse().unwrap());
        assert_eq!(ss2.domains, ["biloxi.example.com"]);
        assert_eq!(
            ss2.auth,
            Some(AuthSpec {
                register: true,
                algorithms: vec!["MD5".into()],
                nonce_lifetime_s: Some(300)
            })
        );
        assert_eq!(ss2.users[0].aors, ["sip:bob@biloxi.example.com"]);
        assert_eq!(
            ss2.registrar,
            Some(RegistrarSpec {
                default_expires: Some(3600),
                min_expires: Some(60),
                max_expires: Some(7200),
                bindings_per_aor_max: Some(10),
                aors_max: None,
            })
        );
        assert_eq!(ss2.timers.as_ref().unwrap().t2_ms, Some(4000));
        assert_eq!(
            s.vars,
            vec![
                (
                    "call_id".into(),
                    VarDef::Literal("1j9FpLxk3uxtm8tn@biloxi.example.com".into())
                ),
                (
                    "branch1".into(),
                    VarDef::Random {
                        random: RandomKind::Branch
                    }
                ),
                (
                    "tag1".into(),
                    VarDef::Random {
                        random: RandomKind::Tag
                    }
                ),
                ("cseq".into(), VarDef::Literal("1".into())),
            ]
        );
        assert_eq!(s.steps.len(), 4);
        assert_eq!(
            s.steps.iter().map(Step::position).collect::<Vec<_>>(),
            [
                Position {
                    line: 28,
                    column: 3
                },
                Position {
                    line: 38,
                    column: 3
                },
                Position {
                    line: 54,
                    column: 3
                },
                Position {
                    line: 71,
                    column: 3
                },
            ]
        );
        assert_eq!(
            s.step_error(1, "timed out").to_string(),
            "t.yaml:38:3: timed out"
        );
        assert_eq!(s.steps[3].kind, StepKind::WaitMs(1000));
        assert_eq!((s.steps[3].line, s.steps[3].column), (71, 3));
    }

    #[test]
    fn parses_expect_headers_in_order_with_shorthands() {
        let s = parse(REGISTER).unwrap();
        let StepKind::Expect(e) = &s.steps[1].kind else {
            panic!("step 2 is an expect")
        };
        assert_eq!((e.status, e.method.as_deref()), (Some(401), None));
        assert_eq!(e.timeout(), Duration::from_millis(2000));
        let names: Vec<&str> = e.headers.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "Call-ID",
                "To",
                "WWW-Authenticate",
                "Contact",
                "Authorization",
                "Expires",
                "Max-Forwards"
            ]
        );
        let m = |i: usize| &e.headers[i].1;
        assert_eq!(
            m(0),
            &[HeaderMatcher {
                equals: Some("{{call_id}}".into()),
                ..Default::default()
            }]
        );
        assert_eq!(
            m(1),
            &[HeaderMatcher {
                param: vec![(
                    "tag".into(),
                    ParamMatcher {
                        capture: Some("to_tag".into()),
                        ..Default::default()
                    }
                )],
                ..Default::default()
            }]
        );
        assert_eq!(m(2)[0].regex.as_deref(), Some(r#"nonce="([^"]+)""#));
        assert_eq!(m(2)[0].capture.as_deref(), Some("nonce"));
        assert_eq!(m(3).len(), 2);
        assert_eq!(m(3)[0].index, Some(0));
        assert_eq!(m(3)[1].count, Some(2));
        assert_eq!(m(4)[0].absent, Some(true));
        assert_eq!(m(5)[0].present, Some(true));
        // Unquoted numbers keep their text.
        assert_eq!(m(6)[0].equals.as_deref(), Some("70"));
        let StepKind::Send(send) = &s.steps[2].kind else {
            panic!("step 3 is a send")
        };
        let Some(AuthSteps::One(auth)) = send.auth.as_ref() else {
            panic!("one auth block")
        };
        assert_eq!(
            (auth.algorithm.as_deref(), auth.algorithm_name()),
            (None, "MD5")
        );
        assert_eq!(auth.nc.as_deref(), Some("00000001"));
    }

    #[test]
    fn defaults_and_empty_sections() {
        let s = parse(
            "name: n\nhosts:\n  a: { ua: { address: 10.0.0.1:5060 } }\nvars:\nsteps:\n  - expect: { at: a, method: OPTIONS, headers: }\n",
        )
        .unwrap();
        assert_eq!(s.seed(), DEFAULT_SEED);
        assert_eq!(s.network.latency_ms, DEFAULT_LATENCY_MS);
        assert!(s.vars.is_empty());
        let StepKind::Expect(e) = &s.steps[0].kind else {
            panic!()
        };
        assert_eq!(e.timeout(), Duration::from_millis(DEFAULT_TIMEOUT_MS));
        assert!(e.headers.is_empty());
    }

    #[test]
    fn shorthand_forms_deserialise_on_their_own() {
        let m: HeaderMatcher = serde_yaml::from_str("abc").unwrap();
        assert_eq!(m.equals.as_deref(), Some("abc"));
        let p: ParamMatcher = serde_yaml::from_str("{ present: false }").unwrap();
        assert_eq!(p.present, Some(false));
        let v: VarDef = serde_yaml::from_str("{ random: call_id }").unwrap();
        assert_eq!(
            v,
            VarDef::Random {
                random: RandomKind::CallId
            }
        );
        let e = serde_yaml::from_str::<HeaderMatcher>("1.5").unwrap_err();
        assert!(e.to_string().contains("quote it"), "{e}");
    }

    /// The reference example with one line replaced.
    fn with(from: &str, to: &str) -> String {
        assert!(REGISTER.contains(from), "{from}");
        REGISTER.replacen(from, to, 1)
    }

    #[test]
    fn unknown_key_in_the_third_step() {
        let text = with(
            "      auth:\n        username",
            "      statsu: 200\n      auth:\n        username",
        );
        assert_eq!(
            err(&text),
            "t.yaml:57:7: steps[2].send: unknown field `statsu`, expected one of `from`, `to`, `message`, `auth`, `retransmit`"
        );
        let text = with("      reason: Unauthorized", "      statsu: 401");
        assert!(
            err(&text).starts_with("t.yaml:42:7: steps[1].expect: unknown field `statsu`"),
            "{}",
            err(&text)
        );
    }

    #[test]
    fn unknown_keys_everywhere_are_errors() {
        for (from, to, at) in [
            ("  latency_ms: 20", "  latency: 20", "t.yaml:6:3:"),
            (
                "      address: 192.0.2.201:5061",
                "      adress: 192.0.2.201:5061",
                "t.yaml:10:7:",
            ),
            ("nonce_lifetime_s: 300", "nonce_life: 300", "t.yaml:17:50:"),
            ("{ count: 2 }", "{ cuont: 2 }", "t.yaml:50:15:"),
            ("{ capture: to_tag }", "{ captur: to_tag }", "t.yaml:46:31:"),
            (
                "{ random: branch }",
                "{ random: branch, x: 1 }",
                "t.yaml:24:",
            ),
            ("  - wait_ms: 1000", "  - wait: 1000", "t.yaml:71:5:"),
            ("seed: 7", "sede: 7", "t.yaml:4:1:"),
        ] {
            let e = err(&with(from, to));
            assert!(e.starts_with(at), "{to}: {e}");
        }
    }

    #[test]
    fn syntax_errors_and_step_shapes() {
        let e = err(&with(
            "      to: ss2\n      message",
            "      to: ss2\n\tmessage",
        ));
        assert_eq!(
            e,
            "t.yaml:31:1: found a tab character that violates indentation, while scanning a plain scalar at line 30 column 11"
        );
        let e = err(&with(
            "  - wait_ms: 1000",
            "  - wait_ms: 1000\n    send: {}",
        ));
        assert_eq!(
            e,
            "t.yaml:72:5: steps[3]: `send` next to `wait_ms`: a step has exactly one key; start another `- ` item"
        );
        let e = err(&with("  - wait_ms: 1000", "  - {}"));
        assert_eq!(
            e,
            "t.yaml:71:5: steps[3]: an empty step; expected one of `send`, `expect`, `wait_ms`, `reply`, `ack`, `crash`, `restart`, `restart_with_bindings`, `partition`, `heal`, `hold`, `release`, `drop`, `duplicate`, `delay`"
        );
        let e = err(&with("    ua:\n", "    uac:\n"));
        assert_eq!(
            e,
            "t.yaml:9:5: hosts.bob: unknown variant `uac`, expected `ua` or `element`"
        );
        let e = err(&with("  - wait_ms: 1000", "  - sleep"));
        assert!(
            e.starts_with("t.yaml:71:5: steps[3]: invalid type: string \"sleep\""),
            "{e}"
        );
    }

    #[test]
    fn bad_values_are_errors() {
        for (from, to, message) in [
            (
                "{ random: branch }",
                "{ random: uuid }",
                "unknown variant `uuid`",
            ),
            ("      status: 401", "      status: 99999", "invalid value"),
            (
                "address: 192.0.2.201:5061",
                "address: bob.example.com",
                "invalid socket address",
            ),
            ("  - wait_ms: 1000", "  - wait_ms: soon", "invalid type"),
            ("Max-Forwards: 70", "Max-Forwards: 7.0", "quote it"),
            (
                "Max-Forwards: 70",
                "Max-Forwards: []",
                "an empty list of matchers",
            ),
        ] {
            let e = err(&with(from, to));
            assert!(e.contains(message), "{to}: {e}");
        }
    }

    #[test]
    fn unknown_host_points_at_the_name() {
        let e = err(&with(
            "      at: bob\n      from: ss2",
            "      at: carol\n      from: ss2",
        ));
        assert_eq!(e, "t.yaml:39:11: unknown host `carol` (hosts: bob, ss2)");
    }

    #[test]
    fn host_kinds_are_checked() {
        let e = err(&with(
            "      at: bob\n      from: ss2",
            "      at: ss2\n      from: bob",
        ));
        assert_eq!(
            e,
            "t.yaml:39:11: `ss2` is an element; only a ua can be scripted here"
        );
        let e = err(&with(
            "      from: bob\n      to: ss2\n      message",
            "      from: ss2\n      to: bob\n      message",
        ));
        assert_eq!(
            e,
            "t.yaml:29:13: `ss2` is an element; only a ua can be scripted here"
        );
        let e = err(&with(
            "      to: ss2\n      message",
            "      to: bob\n      message",
        ));
        assert_eq!(e, "t.yaml:30:11: `bob` sends to itself");
    }

    #[test]
    fn bad_regex_points_at_its_key() {
        let e = err(&with(
            r#"{ regex: 'nonce="([^"]+)"'"#,
            r#"{ regex: 'nonce="([^"]+"'"#,
        ));
        assert!(e.starts_with("t.yaml:47:29: bad regex: "), "{e}");
        assert!(e.contains("unclosed group"), "{e}");
    }

    #[test]
    fn variable_used_before_capture() {
        // Moving the authenticated send before the expect that captures the nonce.
        let first = REGISTER.find("  - send:").unwrap();
        let expect = REGISTER.find("  - expect:").unwrap();
        let second = REGISTER[expect..].find("  - send:").unwrap() + expect;
        let wait = REGISTER.find("  - wait_ms").unwrap();
        let text = format!(
            "{}{}{}{}",
            &REGISTER[..first],
            &REGISTER[second..wait],
            &REGISTER[first..second],
            &REGISTER[wait..]
        );
        assert_eq!(
            err(&text),
            "t.yaml:35:17: undefined variable `nonce` (not a var, nor captured by an earlier step)"
        );
    }

    #[test]
    fn undefined_variable_inside_a_message_points_into_it() {
        let e = err(&with(
            "CSeq: {{ cseq }} REGISTER",
            "CSeq: {{ cseqq }} REGISTER",
        ));
        assert_eq!(
            e,
            "t.yaml:36:15: undefined variable `cseqq` (not a var, nor captured by an earlier step)"
        );
        let e = err(&with(
            "Content-Length: 0",
            "Content-Length: {{response}}{{x}}",
        ));
        assert!(e.starts_with("t.yaml:70:37: undefined variable `x`"), "{e}");
        let e = err(&with(
            "Content-Length: {{content_length}}",
            "Content-Length: {{response}}",
        ));
        assert_eq!(
            e,
            "t.yaml:37:25: undefined variable `response` (`response` needs `auth:` in this send)"
        );
        let e = err(&with(
            "Call-ID: \"{{call_id}}\"",
            "Call-ID: \"{{content_length}}\"",
        ));
        assert_eq!(
            e,
            "t.yaml:45:19: undefined variable `content_length` (only a send's message can use it)"
        );
        let e = err(&with("Call-ID: {{call_id}}", "Call-ID: {{call-id}}"));
        assert!(e.starts_with("t.yaml:35:18: malformed placeholder"), "{e}");
    }

    #[test]
    fn status_and_method_exactly_one() {
        let e = err(&with(
            "      status: 401",
            "      status: 401\n      method: REGISTER",
        ));
        assert_eq!(e, "t.yaml:42:7: give either `status` or `method`, not both");
        let e = err(&with("      status: 401\n", ""));
        assert_eq!(
            e,
            "t.yaml:38:5: give `status` (a response) or `method` (a request)"
        );
        let e = err(&with("      status: 401", "      status: 42"));
        assert_eq!(e, "t.yaml:41:7: status 42 is not between 100 and 699");
    }

    #[test]
    fn duplicates_are_errors() {
        let e = err(&with(
            "  tag1: { random: tag }",
            "  tag1: { random: tag }\n  call_id: x",
        ));
        assert_eq!(e, "t.yaml:26:3: vars: duplicate key `call_id`");
        let e = err(&with(
            "      address: 192.0.2.222:5061",
            "      address: 192.0.2.201:5061",
        ));
        assert_eq!(
            e,
            "t.yaml:13:7: address 192.0.2.201:5061 is already used by host `bob`"
        );
        let e = err(&with(
            "        Expires: { present: true }",
            "        call-id: { present: true }",
        ));
        assert_eq!(
            e,
            "t.yaml:52:9: `call-id` repeats `Call-ID` (header names ignore case); list both matchers under one key"
        );
        let e = err(&with("        Max-Forwards: 70", "        Expires: 70"));
        assert!(
            e.starts_with("t.yaml:53:9: steps[1].expect.headers: duplicate key `Expires`"),
            "{e}"
        );
    }

    #[test]
    fn names_and_captures_are_checked() {
        let e = err(&with("  cseq: 1", "  response: 1"));
        assert_eq!(
            e,
            "t.yaml:26:3: `response` is built in; choose another name"
        );
        let e = err(&with("  cseq: 1", "  2cseq: 1"));
        assert!(e.starts_with("t.yaml:26:3: variable name `2cseq`"), "{e}");
        let e = err(&with("capture: nonce", "capture: call_id"));
        assert_eq!(
            e,
            "t.yaml:47:64: `call_id` is a var; capture into another name"
        );
        let e = err(&with("capture: nonce", "capture: to_tag"));
        assert_eq!(e, "t.yaml:47:64: `to_tag` is captured twice in this step");
    }

    #[test]
    fn matcher_combinations_are_checked() {
        for (to, message) in [
            ("Expires: {}", "this matcher checks nothing"),
            ("Expires: { present: true, absent: false }", "not both"),
            ("Expires: { absent: true, equals: x }", "must be absent"),
            ("Expires: { index: 1, count: 1 }", "drop `index`"),
            ("Expires: { count: 1, capture: e }", "ambiguous"),
            ("Expires: { param: { x: {} } }", "checks nothing"),
            (
                "Expires: { param: { x: { present: false, equals: y } } }",
                "cannot be absent",
            ),
        ] {
            let e = err(&with("Expires: { present: true }", to));
            assert!(e.starts_with("t.yaml:52:"), "{to}: {e}");
            assert!(e.contains(message), "{to}: {e}");
        }
    }

    #[test]
    fn auth_fields_are_checked() {
        for (from, to, expected) in [
            ("        qop: auth\n", "", "t.yaml:63:9: nc and cnonce are only used with qop"),
            ("        nc: \"00000001\"\n", "", "t.yaml:63:9: with qop, give both nc and cnonce"),
            ("nc: \"00000001\"", "nc: \"1\"", "t.yaml:64:14: nc `1` must be 8 hex digits"),
            ("qop: auth\n", "qop: auth-int\n", "t.yaml:63:14: qop `auth-int` is not supported (only `auth`)"),
            (
                "        qop: auth",
                "        algorithm: SHA-1\n        qop: auth",
                "t.yaml:63:20: unknown digest algorithm `SHA-1` (known: MD5, MD5-sess, SHA-256, SHA-256-sess, SHA-512-256, SHA-512-256-sess)",
            ),
        ] {
            assert_eq!(err(&with(from, to)), expected, "{to}");
        }
    }

    /// RFC 3665 §3.3: one send answers two challenges, each response in its own variable.
    #[test]
    fn a_list_of_auth_blocks_fills_one_variable_each() {
        const TWO: &str = "name: t
hosts:
  alice: { ua: { address: 192.0.2.101:5060 } }
  p1: { element: { address: 192.0.2.111:5060, domains: [atlanta.example.com] } }
steps:
  - send:
      from: alice
      to: p1
      auth:
        - { var: r1, username: a, password: p, realm: one, nonce: n1, uri: \"sip:b@h\" }
        - { var: r2, username: a, password: p, realm: two, nonce: n2, uri: \"sip:b@h\" }
      message: |
        INVITE sip:b@h SIP/2.0
        Proxy-Authorization: Digest response=\"{{r1}}\"
        Proxy-Authorization: Digest response=\"{{r2}}\"
";
        let s = parse(TWO).unwrap();
        let StepKind::Send(send) = &s.steps[0].kind else {
            panic!("a send")
        };
        let vars: Vec<_> = send
            .auth
            .iter()
            .flat_map(AuthSteps::iter)
            .map(|(j, a)| (j, a.var_name().to_owned()))
            .collect();
        assert_eq!(vars, [(Some(0), "r1".into()), (Some(1), "r2".into())]);
        // Without a var, both would be `response`: the second is refused where it stands.
        let e = err(&TWO.replace("var: r1, ", "").replace("var: r2, ", ""));
        assert!(e.starts_with("t.yaml:11:"), "{e}");
        assert!(e.contains("`response` is already a variable here"), "{e}");
        // A response variable is only defined in its own send.
        let e = err(&TWO.replace("var: r2, ", "var: r1, "));
        assert!(e.contains("`r1` is already a variable here"), "{e}");
        let e = err(&TWO.replace("{{r2}}", "{{r3}}"));
        assert!(e.contains("undefined variable `r3`"), "{e}");
    }

    #[test]
    fn jitter_links_and_fault_steps_are_checked() {
        let hosts = "hosts:\n  a: { ua: { address: 192.0.2.1:5060 } }\n  p: { element: { address: 192.0.2.2:5060, domains: [x] } }\n";
        let ok = format!(
            "name: t\nnetwork:\n  jitter_ms: [0, 40]\n  links:\n    - {{ from: a, to: p, loss_percent: 10, jitter_ms: [5, 10] }}\n{hosts}steps:\n  - drop: {{ message: INVITE, from: a, nth: 2 }}\n  - duplicate: {{ message: \"180\" }}\n  - delay: {{ to: a, ms: 300 }}\n"
        );
        let s = parse(&ok).unwrap();
        assert_eq!(s.network.jitter_ms, Some((0, 40)));
        assert_eq!(s.network.links[0].jitter_ms, Some((5, 10)));
        assert!(matches!(&s.steps[0].kind, StepKind::Drop(f) if f.nth == Some(2)));
        assert!(matches!(&s.steps[2].kind, StepKind::Delay(f) if f.ms == Some(300)));
        for (bad, why) in [
            ("jitter_ms: [0, 40]", "jitter_ms: [40, 0]"),
            ("to: a, ms: 300", "to: a"),
            ("message: \"180\"", "message: \"180\", ms: 5"),
            ("from: a, nth: 2", "from: nobody"),
            ("nth: 2", "nth: 0"),
            ("message: INVITE", "message: \"IN VITE\""),
        ]
        .map(|(from, to)| (ok.replace(from, to), to))
        {
            assert!(parse(&bad).is_err(), "accepted {why}");
        }
        assert!(err(&ok.replace("jitter_ms: [0, 40]", "jitter_ms: [40, 0]")).contains("40 > 0"));
        assert!(err(&ok.replace("to: a, ms: 300", "to: a")).contains("`delay` needs `ms`"));
    }

    #[test]
    fn network_faults_are_percents() {
        let text =
            "name: t\nnetwork: { loss_percent: 20, duplicate_percent: 5 }\nhosts: {}\nsteps: []\n";
        let s = parse(text).unwrap();
        assert_eq!(
            (s.network.loss_percent, s.network.duplicate_percent),
            (20, 5)
        );
        let e = err(&text.replace("20", "150"));
        assert!(e.starts_with("t.yaml:2:"), "{e}");
        assert!(
            e.contains("loss_percent is a percent: 0 to 100, not 150"),
            "{e}"
        );
    }

    #[test]
    fn fault_steps_name_the_right_hosts() {
        const BASE: &str = "name: t
hosts:
  alice: { ua: { address: 192.0.2.101:5060 } }
  p1: { element: { address: 192.0.2.111:5060, domains: [atlanta.example.com] } }
steps:
  - STEP
";
        let ok = |step: &str| parse(&BASE.replace("STEP", step)).map(|s| s.steps[0].kind.clone());
        assert_eq!(ok("crash: p1").unwrap(), StepKind::Crash("p1".into()));
        assert_eq!(
            ok("restart_with_bindings: p1").unwrap(),
            StepKind::RestartWithBindings("p1".into())
        );
        assert_eq!(
            ok("hold: [alice, p1]").unwrap(),
            StepKind::Hold(vec!["alice".into(), "p1".into()])
        );
        assert_eq!(ok("restart: p1").unwrap(), StepKind::Restart("p1".into()));
        assert_eq!(
            ok("partition: [alice, p1]").unwrap(),
            StepKind::Partition(vec!["alice".into(), "p1".into()])
        );
        assert_eq!(
            ok("heal: [p1, alice]").unwrap(),
            StepKind::Heal(vec!["p1".into(), "alice".into()])
        );
        for (step, message) in [
            ("crash: alice", "`alice` is a ua; only an element can crash"),
            ("restart: nobody", "unknown host `nobody`"),
            ("partition: [alice]", "`partition` takes two hosts: [a, b]"),
            ("heal: [alice, p1, p1]", "`heal` takes two hosts"),
            (
                "partition: [p1, p1]",
                "`partition` needs two different hosts",
            ),
            ("partition: [alice, ghost]", "unknown host `ghost`"),
        ] {
            let e = err(&BASE.replace("STEP", step));
            assert!(e.starts_with("t.yaml:6:"), "{step}: {e}");
            assert!(e.contains(message), "{step}: {e}");
        }
    }

    #[test]
    fn only_requests_that_start_a_transaction_are_retransmitted() {
        const SEND: &str = "name: t
hosts:
  alice: { ua: { address: 192.0.2.101:5060 } }
  p1: { element: { address: 192.0.2.111:5060, domains: [atlanta.example.com] } }
steps:
  - send:
      from: alice
      to: p1
      retransmit: true
      message: |
        START
";
        let with = |start: &str| SEND.replace("START", start);
        let s = parse(&with("INVITE sip:b@h SIP/2.0")).unwrap();
        let StepKind::Send(send) = &s.steps[0].kind else {
            panic!("a send")
        };
        assert_eq!(send.retransmit, Some(true));
        let e = err(&with("ACK sip:b@h SIP/2.0"));
        assert!(e.contains("not an ACK"), "{e}");
        let e = err(&with("SIP/2.0 200 OK"));
        assert!(e.contains("not a response"), "{e}");
    }

    #[test]
    fn element_settings_are_checked() {
        let e = err(&with("algorithms: [MD5]", "algorithms: [MD5, SHA-1]"));
        assert!(
            e.starts_with("t.yaml:17:49: unknown digest algorithm `SHA-1`"),
            "{e}"
        );
        let e = err(&with("min_expires: 60", "min_expires: 6000"));
        assert_eq!(
            e,
            "t.yaml:20:20: default_expires (3600) is less than min_expires (6000)"
        );
        let e = err(&with("t1_ms: 500", "t1_ms: 0"));
        assert_eq!(e, "t.yaml:21:17: t1_ms must be more than 0");
        let e = err(&with(
            "aors: [\"sip:bob@biloxi.example.com\"]",
            "aors: [\"bob@biloxi.example.com\"]",
        ));
        assert_eq!(
            e,
            "t.yaml:19:52: address of record `bob@biloxi.example.com` must be a sip: or sips: URI"
        );
    }

    #[test]
    fn abuse_settings_parse_and_are_checked() {
        let e = parse_element(
            "e.yaml",
            "address: 127.0.0.1:5060
domains: [example.com]
proxy: { authenticate: true, relay: none }
registrar: { aors_max: 10 }
limits:
  message_bytes_max: 4096
  tcp_connections_max: 8
  source_rate: { per_second: 50, burst: 100, over: drop, exempt: [10.0.0.0/8, \"::1\"] }
",
        )
        .unwrap();
        let p = e.proxy.as_ref().unwrap();
        assert_eq!(
            (p.authenticate, p.relay),
            (Some(true), Some(RelaySpec::None))
        );
        let l = e.limits.as_ref().unwrap();
        assert_eq!(l.tcp_connections_max, Some(8));
        let r = l.source_rate.as_ref().unwrap();
        assert_eq!((r.per_second, r.over), (Some(50), Some(OverSpec::Drop)));
        let bad = |text: &str| parse_element("e.yaml", text).unwrap_err().to_string();
        let base = "address: 127.0.0.1:5060\ndomains: [example.com]\n";
        assert_eq!(
            bad(&format!(
                "{base}limits: {{ source_rate: {{ exempt: [10.0.0.0/40] }} }}\n"
            )),
            "e.yaml:3:35: `10.0.0.0/40` is not an IP address or network (ADDRESS/PREFIX)"
        );
        assert_eq!(
            bad(&format!("{base}limits: {{ transactions_max: 0 }}\n")),
            "e.yaml:3:11: transactions_max must be more than 0"
        );
        assert!(bad(&format!("{base}proxy: {{ relay: closed }}\n"))
            .contains("unknown variant `closed`"));
        assert!(
            bad(&format!("{base}proxy: {{ authenticate_invite: true }}\n"))
                .contains("unknown field `authenticate_invite`")
        );
    }

    /// Every YAML example of the reference parses: whole scenarios as they are, fragments
    /// inside a small scenario that defines what they refer to.
    #[test]
    fn documentation_examples_parse() {
        const DOC: &str = include_str!("../../docs/scenarios.md");
        const PRE: &str = "name: d
hosts:
  bob: { ua: { address: 192.0.2.201:5061 } }
  ss2: { element: { address: 192.0.2.222:5061, domains: [biloxi.example.com] } }
vars:
  call_id: c
  branch1: b
  tag1: t
  proxy_host: p
  other_nonce: n
";
        // Steps that answer a challenge use the nonce an earlier step captured.
        const CHALLENGE: &str = "  - expect:
      at: bob
      status: 401
      headers:
        WWW-Authenticate: { capture: nonce }
";
        let mut checked = 0;
        for block in DOC.split("```yaml\n").skip(1) {
            let block = &block[..block.find("```").expect("closed fence")];
            let text = if block.contains("\nsteps:") {
                block.to_owned()
            } else if block.starts_with("  - ") {
                format!("{PRE}steps:\n{CHALLENGE}{block}")
            } else if block.starts_with("        ") {
                format!("{PRE}steps:\n  - expect:\n      at: bob\n      status: 200\n      headers:\n{block}")
            } else if block.starts_with("      message:") {
                format!("{PRE}steps:\n  - send:\n      from: bob\n      to: ss2\n{block}")
            } else if block.starts_with("      ") {
                format!("name: d\nhosts:\n  e:\n    element:\n      address: 192.0.2.1:5060\n      domains: [x]\n{block}steps: []\n")
            } else if block.starts_with("hosts:") {
                format!("name: d\n{block}steps: []\n")
            } else if block.starts_with("name:") {
                format!("{block}hosts: {{}}\nsteps: []\n")
            } else if block.starts_with("network:") {
                format!("{PRE}{block}steps: []\n")
            } else {
                format!("name: d\nhosts: {{}}\n{block}steps: []\n")
            };
            if let Err(e) = parse_scenario("doc", &text) {
                panic!("{e}\n{text}");
            }
            checked += 1;
        }
        assert!(checked >= 25, "only {checked} examples found");
    }
}
