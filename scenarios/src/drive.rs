//! `trapezoid drive`: the scripted UAs of a scenario over real UDP sockets, against a real
//! proxy (the *target*), checked by the same step logic as the simulator.
//!
//! Each element of the scenario is a target: one target for all of them ([`Targets::All`]),
//! or one per element ([`Targets::Each`], a proxy per element of a flow through several).
//! What a UA sends "to" an element goes to that element's target, and what comes from a
//! target counts as coming from the element it plays (from whichever of them the step's
//! `from:` names, when one target plays several). Each UA gets its own UDP socket on the
//! local address, on a port the operating system picks; no scenario address (192.0.2.x) is
//! ever bound or sent to.
//!
//! Messages name hosts, so the scenario's addresses are rewritten on the way out and mapped
//! back on the way in ([`Mapping`]). Only the places where SIP routes are rewritten: the
//! Request-URI and the URIs of Contact, Route and Record-Route, the sent-by and `received`
//! of Via. Out, in a message a UA sends:
//!
//! - the top Via of a request is where its responses must come (RFC 3261 §18.1.1): its
//!   sent-by gets the UA's real port, keeping a host name (so that the target notes
//!   `received`, §18.2.1, as the simulated element would) or becoming the real address when
//!   it is the UA's scenario IP;
//! - a UA's scenario IP, or one of its `host_names`, in a URI becomes the UA's real address
//!   (the target must reach it, and has no name for it);
//! - an element's scenario IP becomes its target's address; an element's host name keeps its
//!   name and gets its target's port (the target recognises itself by name and port, §16.4);
//! - served domains, other names, From, To, Call-ID, digest credentials and bodies (SDP)
//!   are left as written.
//!
//! In, before an `expect` checks a message, every text the outgoing rewrite produced is turned
//! back into what the scenario wrote (a `received` naming a UA's real IP becomes its scenario
//! IP), a UA's real address becomes its scenario address, a target's address becomes the
//! scenario address of the element it plays (the one the step expects, when it plays
//! several), an element host name on its target's port loses that port, and the `received`
//! and `rport` a target notes on an element's Via name the element's scenario address.
//! Anything else the target writes is compared as it is: an expectation that cannot hold
//! against a real proxy (its own host names, its tags) fails with the diff and the address
//! map. Replies and ACKs are built from the real messages.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::io::ErrorKind;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::path::Path;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use regex::{Captures, Regex};
use trapezoid_sim::Received;

use crate::error::{Position, ScenarioError};
use crate::ladder::Line;
use crate::model::{self, Host, Scenario, StepKind};
use crate::runner::{self, Outcome, Wire, TICK};

/// Longest a `wait_ms` or an `expect`'s `timeout_ms` may be under `drive`: it is real time.
pub const WAIT_MAX: Duration = Duration::from_secs(60);

/// Most datagrams one UA may hold unread before the run stops (a flooding target).
pub const INBOX_MAX: usize = 1024;

/// Largest UDP payload.
const DATAGRAM_MAX: usize = 65_535;

/// Where the elements of a scenario really are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Targets {
    /// One proxy under test plays every element of the scenario.
    All(SocketAddr),
    /// Each element, by its name among the scenario's hosts, is its own proxy under test:
    /// every element of the scenario must be in the map, and nothing else.
    Each(BTreeMap<String, SocketAddr>),
}

impl Targets {
    /// Where the element `name` is (nothing for a name an [`Targets::Each`] map lacks).
    pub fn of(&self, name: &str) -> Option<SocketAddr> {
        match self {
            Targets::All(a) => Some(*a),
            Targets::Each(m) => m.get(name).copied(),
        }
    }

    /// The `--target` flags that say the same.
    pub fn flags(&self) -> String {
        match self {
            Targets::All(a) => format!("--target {a}"),
            Targets::Each(m) => m
                .iter()
                .map(|(n, a)| format!("--target {n}={a}"))
                .collect::<Vec<_>>()
                .join(" "),
        }
    }
}

/// Where and how to drive a scenario.
#[derive(Clone, Debug)]
pub struct DriveOptions {
    /// The proxy or proxies under test, and which elements of the scenario they play.
    pub targets: Targets,
    /// The local address the UAs' sockets are bound on (ports chosen by the system).
    pub local: IpAddr,
    /// Overrides the file's seed (random variables, ACK branches).
    pub seed: Option<u64>,
}

impl DriveOptions {
    /// Against `target` playing every element, from 127.0.0.1, with the file's seed.
    pub fn new(target: SocketAddr) -> Self {
        DriveOptions {
            targets: Targets::All(target),
            local: IpAddr::V4(Ipv4Addr::LOCALHOST),
            seed: None,
        }
    }

    /// Against one target per element (`(element name, address)`), from 127.0.0.1, with the
    /// file's seed.
    pub fn each<N: Into<String>>(targets: impl IntoIterator<Item = (N, SocketAddr)>) -> Self {
        DriveOptions {
            targets: Targets::Each(targets.into_iter().map(|(n, a)| (n.into(), a)).collect()),
            local: IpAddr::V4(Ipv4Addr::LOCALHOST),
            seed: None,
        }
    }
}

/// Why a scenario was not driven.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DriveError {
    /// The file is not a valid scenario.
    Invalid(ScenarioError),
    /// A valid scenario that cannot run against a real target (a fault step, a wait longer
    /// than [`WAIT_MAX`]).
    Refused(ScenarioError),
    /// The targets do not fit the scenario: an element without one, or one for a host that
    /// is not an element.
    Targets(String),
    /// A socket could not be opened.
    Io(String),
}

impl fmt::Display for DriveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DriveError::Invalid(e) | DriveError::Refused(e) => write!(f, "{e}"),
            DriveError::Io(e) | DriveError::Targets(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for DriveError {}

/// Parses the scenario in `path` and drives it against the target.
pub fn drive_file(path: &Path, options: &DriveOptions) -> Result<Outcome, DriveError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| {
        DriveError::Invalid(ScenarioError::new(
            &file,
            Position::START,
            format!("cannot read: {e}"),
        ))
    })?;
    drive_text(&file, &text, options)
}

/// Parses a scenario given as text (`file` names it in messages) and drives it.
pub fn drive_text(file: &str, text: &str, options: &DriveOptions) -> Result<Outcome, DriveError> {
    let scenario = model::parse_scenario(file, text).map_err(DriveError::Invalid)?;
    if let Some(e) = refusal(&scenario) {
        return Err(DriveError::Refused(e));
    }
    check_targets(file, &scenario, &options.targets).map_err(DriveError::Targets)?;
    let seed = options.seed.unwrap_or_else(|| scenario.seed());
    let wire = RealWire::open(&scenario, options).map_err(DriveError::Io)?;
    let mut replay = format!("trapezoid drive {file} {}", options.targets.flags());
    if options.local != IpAddr::V4(Ipv4Addr::LOCALHOST) {
        replay.push_str(&format!(" --local {}", options.local));
    }
    replay.push_str(&format!(" --seed {seed}"));
    Ok(runner::play_on(file, &scenario, seed, wire, replay, false))
}

/// With a target per element: every element has one, and nothing else does.
fn check_targets(file: &str, scenario: &Scenario, targets: &Targets) -> Result<(), String> {
    let Targets::Each(map) = targets else {
        return Ok(());
    };
    let elements: Vec<&str> = scenario
        .hosts
        .iter()
        .filter(|(_, h)| matches!(h, Host::Element(_)))
        .map(|(n, _)| n.as_str())
        .collect();
    let list = if elements.is_empty() {
        "it has none".to_owned()
    } else {
        format!("its elements are {}", elements.join(", "))
    };
    if let Some(n) = map.keys().find(|n| !elements.contains(&n.as_str())) {
        return Err(format!(
            "{file}: a target for `{n}`, which is not an element of the scenario ({list})"
        ));
    }
    if let Some(n) = elements.iter().find(|n| !map.contains_key(**n)) {
        return Err(format!(
            "{file}: no target for the element `{n}`: with a target per element, every element needs one ({list})"
        ));
    }
    Ok(())
}

/// The first step a real target cannot play, as an error at that step: faults need the
/// simulator, and waits are real time, bounded by [`WAIT_MAX`].
pub fn refusal(scenario: &Scenario) -> Option<ScenarioError> {
    let max = WAIT_MAX.as_millis();
    for (i, step) in scenario.steps.iter().enumerate() {
        let message = match &step.kind {
            StepKind::Crash(h) => Some(format!("`crash: {h}`: {FAULTS}")),
            StepKind::Restart(h) => Some(format!("`restart: {h}`: {FAULTS}")),
            StepKind::Partition(p) => Some(format!("`partition: [{}]`: {FAULTS}", p.join(", "))),
            StepKind::Heal(p) => Some(format!("`heal: [{}]`: {FAULTS}", p.join(", "))),
            StepKind::RestartWithBindings(h) => {
                Some(format!("`restart_with_bindings: {h}`: {FAULTS}"))
            }
            StepKind::Hold(p) => Some(format!("`hold: [{}]`: {FAULTS}", p.join(", "))),
            StepKind::Release(p) => Some(format!("`release: [{}]`: {FAULTS}", p.join(", "))),
            StepKind::Drop(_) => Some(format!("`drop:`: {FAULTS}")),
            StepKind::Duplicate(_) => Some(format!("`duplicate:`: {FAULTS}")),
            StepKind::Delay(_) => Some(format!("`delay:`: {FAULTS}")),
            StepKind::WaitMs(ms) if u128::from(*ms) > max => Some(format!(
                "`wait_ms: {ms}` is real time under drive, which waits {max} ms at most"
            )),
            StepKind::Expect(e) if e.timeout().as_millis() > max => Some(format!(
                "`timeout_ms: {}` is real time under drive, which waits {max} ms at most",
                e.timeout().as_millis()
            )),
            _ => None,
        };
        if let Some(m) = message {
            return Some(scenario.step_error(i, m));
        }
    }
    None
}

const FAULTS: &str = "drive cannot crash, restart or cut off a real target; fault steps run only in the simulator (trapezoid run)";

/// Which rewriting a piece of a message gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Field {
    /// The Request-URI of a request.
    RequestUri,
    /// A Via value: sent-by and params.
    Via,
    /// A header of name-addrs: Contact, Route, Record-Route.
    Uris,
}

/// The journal keeps URI hosts and Via sent-bys apart: the same UA is `127.0.0.1:40000` in
/// a URI but `client.example.com:40000` in its Via.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Uri,
    Via,
}

/// A host of the scenario and where it really is.
#[derive(Clone, Debug)]
struct Peer {
    name: String,
    /// Its address in the scenario.
    scenario: SocketAddr,
    /// Its `host_names`, lower-case.
    names: Vec<String>,
    /// Its `domains` (elements), lower-case.
    domains: Vec<String>,
    /// Its real address: the UA's socket, or an element's target.
    real: SocketAddr,
}

impl Peer {
    fn has_name(&self, host: &str) -> bool {
        self.names.iter().any(|n| n.eq_ignore_ascii_case(host))
    }
}

/// An element for [`Mapping::new`]: its name, scenario address, host names, domains, and
/// target.
pub type MappedElement = (String, SocketAddr, Vec<String>, Vec<String>, SocketAddr);

/// The address map between a scenario and the real sockets, both ways (see the module
/// documentation for what is rewritten).
#[derive(Clone, Debug)]
pub struct Mapping {
    uas: Vec<Peer>,
    elements: Vec<Peer>,
    /// Every text the outgoing rewrite produced, with what the scenario had written there and
    /// the UA it stands for: what the incoming rewrite turns back. The latest wins.
    journal: BTreeMap<(Kind, String), (String, Option<usize>)>,
}

fn uri_regex() -> &'static Regex {
    static R: OnceLock<Regex> = OnceLock::new();
    R.get_or_init(|| {
        Regex::new(
            r#"(?i)\b(sips?):((?:[^@\s<>;,"?]+@)?)(\[[0-9a-f:.]+\]|[a-z0-9][a-z0-9.\-]*)(?::([0-9]{1,5}))?"#,
        )
        .expect("URI pattern")
    })
}

fn via_regex() -> &'static Regex {
    static R: OnceLock<Regex> = OnceLock::new();
    R.get_or_init(|| {
        Regex::new(r"(?i)(SIP\s*/\s*2\.0\s*/\s*[a-z0-9]+\s+)(\[[0-9a-f:.]+\]|[a-z0-9][a-z0-9.\-]*)(?::([0-9]{1,5}))?([^,]*)")
            .expect("Via pattern")
    })
}

fn via_param_regex() -> &'static Regex {
    static R: OnceLock<Regex> = OnceLock::new();
    R.get_or_init(|| {
        Regex::new(r"(?i)(;\s*(received|rport)\s*=\s*)([^;,\s]+)").expect("Via param pattern")
    })
}

fn ip_of(host: &str) -> Option<IpAddr> {
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .ok()
}

fn host_port(host: &str, port: Option<u16>) -> String {
    match port {
        Some(p) => format!("{host}:{p}"),
        None => host.to_owned(),
    }
}

/// RFC 3261 §19.1.2: the port a URI without one means.
fn default_port(scheme: &str) -> u16 {
    if scheme.eq_ignore_ascii_case("sips") {
        5061
    } else {
        5060
    }
}

/// Applies `f` to the rewritable parts of a message: the Request-URI, and the values of Via,
/// Contact, Route and Record-Route (compact forms and continuation lines included). The rest
/// of the header section, and the body, are copied as they are.
fn edit(bytes: &[u8], mut f: impl FnMut(Field, &str) -> String) -> Vec<u8> {
    let split = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(bytes.len());
    let (head, body) = bytes.split_at(split);
    let Ok(head) = std::str::from_utf8(head) else {
        return bytes.to_vec();
    };
    let mut out = String::with_capacity(head.len() + 64);
    let mut lines = head.split("\r\n");
    let start = lines.next().unwrap_or("");
    let mut parts = start.splitn(3, ' ');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(method), Some(uri), Some(version)) if !start.starts_with("SIP/") => {
            out.push_str(method);
            out.push(' ');
            out.push_str(&f(Field::RequestUri, uri));
            out.push(' ');
            out.push_str(version);
        }
        _ => out.push_str(start),
    }
    let mut field = None;
    for line in lines {
        out.push_str("\r\n");
        if line.starts_with([' ', '\t']) {
            match field {
                Some(k) => out.push_str(&f(k, line)),
                None => out.push_str(line),
            }
            continue;
        }
        match line.split_once(':') {
            Some((name, value)) => {
                field = match name.trim().to_ascii_lowercase().as_str() {
                    "via" | "v" => Some(Field::Via),
                    "contact" | "m" | "route" | "record-route" => Some(Field::Uris),
                    _ => None,
                };
                out.push_str(name);
                out.push(':');
                match field {
                    Some(k) => out.push_str(&f(k, value)),
                    None => out.push_str(value),
                }
            }
            None => {
                field = None;
                out.push_str(line);
            }
        }
    }
    let mut out = out.into_bytes();
    out.extend_from_slice(body);
    out
}

impl Mapping {
    /// A map for UAs `(name, scenario address, host names, real address)` and elements
    /// `(name, scenario address, host names, domains, target)`; several elements may have
    /// the same target.
    pub fn new(
        uas: &[(String, SocketAddr, Vec<String>, SocketAddr)],
        elements: &[MappedElement],
    ) -> Self {
        let lower = |v: &[String]| v.iter().map(|n| n.to_ascii_lowercase()).collect();
        Mapping {
            uas: uas
                .iter()
                .map(|(name, scenario, names, real)| Peer {
                    name: name.clone(),
                    scenario: *scenario,
                    names: lower(names),
                    domains: Vec::new(),
                    real: *real,
                })
                .collect(),
            elements: elements
                .iter()
                .map(|(name, scenario, names, domains, target)| Peer {
                    name: name.clone(),
                    scenario: *scenario,
                    names: lower(names),
                    domains: lower(domains),
                    real: *target,
                })
                .collect(),
            journal: BTreeMap::new(),
        }
    }

    fn ua_index(&self, name: &str) -> Option<usize> {
        self.uas.iter().position(|u| u.name == name)
    }

    fn element_index(&self, name: &str) -> Option<usize> {
        self.elements.iter().position(|e| e.name == name)
    }

    /// Whether `addr` is a target.
    fn is_target(&self, addr: SocketAddr) -> bool {
        self.elements.iter().any(|e| e.real == addr)
    }

    /// The element the target at `addr` plays: `expected` if it plays that one, else the
    /// first it plays.
    fn played_by(&self, addr: SocketAddr, expected: Option<usize>) -> Option<usize> {
        expected
            .filter(|e| self.elements[*e].real == addr)
            .or_else(|| self.elements.iter().position(|e| e.real == addr))
    }

    /// The element a host name on a real port names: one of its host names on its target's
    /// port.
    fn named(&self, host: &str, port: u16) -> Option<usize> {
        self.elements
            .iter()
            .position(|e| e.has_name(host) && e.real.port() == port)
    }

    /// A message the UA `sender` sends, with the scenario's addresses replaced by real ones.
    pub fn outgoing(&mut self, sender: &str, bytes: &[u8]) -> Vec<u8> {
        let Some(s) = self.ua_index(sender) else {
            return bytes.to_vec();
        };
        let request = !bytes.starts_with(b"SIP/");
        let mut vias = 0;
        edit(bytes, |field, text| match field {
            Field::Via => via_regex()
                .replace_all(text, |c: &Captures<'_>| {
                    let top = request && vias == 0;
                    vias += 1;
                    let (host, port) = (&c[2], c.get(3).and_then(|p| p.as_str().parse().ok()));
                    let mapped = self.out_via(s, top, host, port);
                    let sent_by = self.journal_entry(Kind::Via, host, port, mapped);
                    let params = via_param_regex().replace_all(&c[4], |p: &Captures<'_>| {
                        let value = match ip_of(&p[3]) {
                            Some(ip) if p[2].eq_ignore_ascii_case("received") => {
                                self.out_ip(ip).unwrap_or_else(|| p[3].to_owned())
                            }
                            _ => p[3].to_owned(),
                        };
                        format!("{}{value}", &p[1])
                    });
                    format!("{}{sent_by}{params}", &c[1])
                })
                .into_owned(),
            Field::RequestUri | Field::Uris => uri_regex()
                .replace_all(text, |c: &Captures<'_>| {
                    let (host, port) = (&c[3], c.get(4).and_then(|p| p.as_str().parse().ok()));
                    let mapped = self.general(Kind::Uri, host, port);
                    let host_port = self.journal_entry(Kind::Uri, host, port, mapped);
                    format!("{}:{}{host_port}", &c[1], &c[2])
                })
                .into_owned(),
        })
    }

    /// Records an outgoing replacement and returns the text to write.
    fn journal_entry(
        &mut self,
        kind: Kind,
        host: &str,
        port: Option<u16>,
        mapped: Option<(String, Option<usize>)>,
    ) -> String {
        let original = host_port(host, port);
        match mapped {
            Some((real, owner)) => {
                // Only a UA's: an element's own names and address read back as the element
                // would write them (see [`Mapping::back`]).
                if owner.is_some() {
                    self.journal
                        .insert((kind, real.to_ascii_lowercase()), (original, owner));
                }
                real
            }
            None => original,
        }
    }

    /// The real IP standing for a scenario IP (a UA's: the local address; an element's: its
    /// target's).
    fn out_ip(&self, ip: IpAddr) -> Option<String> {
        self.uas
            .iter()
            .chain(&self.elements)
            .find(|p| p.scenario.ip() == ip)
            .map(|p| p.real.ip().to_string())
    }

    /// The sent-by of a Via in a message UA `s` sends.
    fn out_via(
        &self,
        s: usize,
        top: bool,
        host: &str,
        port: Option<u16>,
    ) -> Option<(String, Option<usize>)> {
        if top {
            // §18.1.1: the top Via of a request names where its responses go: this socket.
            let me = &self.uas[s];
            match ip_of(host) {
                Some(ip) if ip == me.scenario.ip() => {
                    return Some((me.real.to_string(), Some(s)));
                }
                None => return Some((format!("{host}:{}", me.real.port()), Some(s))),
                Some(_) => {}
            }
        }
        self.general(Kind::Via, host, port)
    }

    /// A host of the scenario anywhere in a URI or a Via: a UA's IP or name becomes where the
    /// UA really is, an element's IP its target, an element's name its target's port.
    fn general(
        &self,
        kind: Kind,
        host: &str,
        port: Option<u16>,
    ) -> Option<(String, Option<usize>)> {
        if let Some(ip) = ip_of(host) {
            if let Some(v) = self.uas.iter().position(|u| u.scenario.ip() == ip) {
                return Some((self.uas[v].real.to_string(), Some(v)));
            }
            return self
                .elements
                .iter()
                .find(|e| e.scenario.ip() == ip)
                .map(|e| (e.real.to_string(), None));
        }
        let at = |p: u16| port.is_none_or(|x| x == p);
        if let Some(v) = self
            .uas
            .iter()
            .position(|u| u.has_name(host) && at(u.scenario.port()))
        {
            let real = self.uas[v].real;
            // The target has no name for a UA: URIs carry its address. A Via keeps the name
            // (the target then notes `received`, as the simulated element would).
            return Some(match kind {
                Kind::Uri => (real.to_string(), Some(v)),
                Kind::Via => (format!("{host}:{}", real.port()), Some(v)),
            });
        }
        self.elements
            .iter()
            .find(|e| e.has_name(host) && at(e.scenario.port()))
            .map(|e| (format!("{host}:{}", e.real.port()), None))
    }

    /// A message that arrived, as the scenario reads it: real addresses mapped back.
    /// `element` is the element the step expects it from: a target that plays several
    /// elements reads as that one.
    pub fn incoming(&self, element: Option<&str>, bytes: &[u8]) -> Vec<u8> {
        let element = element.and_then(|e| self.element_index(e));
        edit(bytes, |field, text| match field {
            Field::Via => via_regex()
                .replace_all(text, |c: &Captures<'_>| {
                    let (host, port) = (&c[2], c.get(3).and_then(|p| p.as_str().parse().ok()));
                    let (sent_by, owner) = self
                        .back(Kind::Via, element, host, port, "sip")
                        .unwrap_or_else(|| (host_port(host, port), None));
                    let params = match owner {
                        Some(v) => self.back_params(&self.uas[v], &c[4]),
                        None => match self.via_element(element, host, port) {
                            Some(e) => self.back_params(&self.elements[e], &c[4]),
                            None => c[4].to_owned(),
                        },
                    };
                    format!("{}{sent_by}{params}", &c[1])
                })
                .into_owned(),
            Field::RequestUri | Field::Uris => uri_regex()
                .replace_all(text, |c: &Captures<'_>| {
                    let (host, port) = (&c[3], c.get(4).and_then(|p| p.as_str().parse().ok()));
                    let host_port = self
                        .back(Kind::Uri, element, host, port, &c[1])
                        .map_or_else(|| host_port(host, port), |(h, _)| h);
                    format!("{}:{}{host_port}", &c[1], &c[2])
                })
                .into_owned(),
        })
    }

    /// What the scenario wrote for a real host and port, and the UA it stands for.
    fn back(
        &self,
        kind: Kind,
        element: Option<usize>,
        host: &str,
        port: Option<u16>,
        scheme: &str,
    ) -> Option<(String, Option<usize>)> {
        let text = host_port(host, port).to_ascii_lowercase();
        if let Some((original, owner)) = self.journal.get(&(kind, text)) {
            return Some((original.clone(), *owner));
        }
        let default = default_port(scheme);
        let p = port.unwrap_or(default);
        if let Some(ip) = ip_of(host) {
            let real = SocketAddr::new(ip, p);
            if let Some(v) = self.uas.iter().position(|u| u.real == real) {
                return Some((self.uas[v].scenario.to_string(), Some(v)));
            }
            return self
                .played_by(real, element)
                .map(|e| (self.elements[e].scenario.to_string(), None));
        }
        if let Some(e) = self.named(host, p) {
            let e = &self.elements[e];
            let port = (e.scenario.port() != default).then_some(e.scenario.port());
            return Some((host_port(host, port), None));
        }
        let v = self
            .uas
            .iter()
            .position(|u| u.has_name(host) && u.real.port() == p)?;
        Some((host_port(host, Some(self.uas[v].scenario.port())), Some(v)))
    }

    /// The element whose Via has the real sent-by `host` and `port`: its target's address, or
    /// one of its names on its target's port.
    fn via_element(&self, expected: Option<usize>, host: &str, port: Option<u16>) -> Option<usize> {
        let p = port.unwrap_or(5060);
        match ip_of(host) {
            Some(ip) => self.played_by(SocketAddr::new(ip, p), expected),
            None => self.named(host, p),
        }
    }

    /// `received` and `rport` of a host's own Via (a UA's, or an element's that its next hop
    /// noted): its real IP and port become the scenario's.
    fn back_params(&self, peer: &Peer, params: &str) -> String {
        via_param_regex()
            .replace_all(params, |p: &Captures<'_>| {
                let value = if p[2].eq_ignore_ascii_case("received") {
                    match ip_of(&p[3]) {
                        Some(ip) if ip == peer.real.ip() => peer.scenario.ip().to_string(),
                        _ => p[3].to_owned(),
                    }
                } else if p[3].parse::<u16>().ok() == Some(peer.real.port()) {
                    peer.scenario.port().to_string()
                } else {
                    p[3].to_owned()
                };
                format!("{}{value}", &p[1])
            })
            .into_owned()
    }

    /// Where a URI leads: its target for an element's address, name or domain; a UA's socket
    /// for its real address, scenario address or name; nothing else.
    fn resolve(&self, uri: &str) -> Option<SocketAddr> {
        let trapezoid_core::message::Uri::Sip(u) =
            trapezoid_core::message::Uri::parse(uri.trim()).ok()?
        else {
            return None;
        };
        let default = if u.secure { 5061 } else { 5060 };
        let port = u.port.unwrap_or(default);
        if let Some(ip) = ip_of(u.host) {
            let at = SocketAddr::new(ip, port);
            if self.is_target(at) {
                return Some(at);
            }
            if let Some(ua) = self
                .uas
                .iter()
                .find(|ua| ua.real == at || ua.scenario.ip() == ip)
            {
                return Some(ua.real);
            }
            return self
                .elements
                .iter()
                .find(|e| e.scenario.ip() == ip)
                .map(|e| e.real);
        }
        let host = u.host.to_ascii_lowercase();
        if let Some(e) = self
            .elements
            .iter()
            .find(|e| e.has_name(&host) || e.domains.contains(&host))
        {
            return Some(e.real);
        }
        self.uas
            .iter()
            .find(|ua| ua.has_name(&host))
            .map(|ua| ua.real)
    }

    /// The address map, for failure reports.
    fn legend(&self) -> String {
        let width = self
            .uas
            .iter()
            .chain(&self.elements)
            .map(|p| p.name.len())
            .max()
            .unwrap_or(0);
        let mut out = String::from(
            "\n\naddresses: drive checked the message with the real addresses mapped back to the scenario's",
        );
        for u in &self.uas {
            out.push_str(&format!(
                "\n  {:<width$}  {}  is  {} (its socket)",
                u.name, u.scenario, u.real
            ));
        }
        let one = self
            .elements
            .iter()
            .all(|e| e.real == self.elements[0].real);
        let whose = if one { "the" } else { "its" };
        for e in &self.elements {
            out.push_str(&format!(
                "\n  {:<width$}  {}  is  {} ({whose} target; its host names keep their names, on {whose} target's port)",
                e.name, e.scenario, e.real
            ));
        }
        out.push('\n');
        out
    }
}

/// One datagram sent or received, for the ladder.
struct Logged {
    at: Duration,
    from: SocketAddr,
    to: SocketAddr,
    bytes: Vec<u8>,
}

/// Real UDP sockets and the wall clock as a [`Wire`].
struct RealWire {
    start: Instant,
    map: Mapping,
    /// One socket per UA, in the order of `map.uas`.
    sockets: Vec<UdpSocket>,
    inboxes: Vec<VecDeque<Received>>,
    log: Vec<Logged>,
    buf: Vec<u8>,
}

impl RealWire {
    /// Binds one socket per UA on `options.local` (ports chosen by the system).
    fn open(scenario: &Scenario, options: &DriveOptions) -> Result<Self, String> {
        let mut uas = Vec::new();
        let mut elements = Vec::new();
        let mut sockets = Vec::new();
        for (name, host) in &scenario.hosts {
            match host {
                Host::Ua(u) => {
                    let socket =
                        UdpSocket::bind(SocketAddr::new(options.local, 0)).map_err(|e| {
                            format!("cannot bind a socket for {name} on {}: {e}", options.local)
                        })?;
                    socket
                        .set_nonblocking(true)
                        .map_err(|e| format!("socket of {name}: {e}"))?;
                    let real = socket
                        .local_addr()
                        .map_err(|e| format!("socket of {name}: {e}"))?;
                    uas.push((name.clone(), u.address, u.host_names.clone(), real));
                    sockets.push(socket);
                }
                Host::Element(e) => {
                    let target = options
                        .targets
                        .of(name)
                        .ok_or_else(|| format!("no target for the element {name}"))?;
                    elements.push((
                        name.clone(),
                        e.address,
                        e.host_names.clone(),
                        e.domains.clone(),
                        target,
                    ));
                }
            }
        }
        Ok(RealWire {
            start: Instant::now(),
            map: Mapping::new(&uas, &elements),
            inboxes: sockets.iter().map(|_| VecDeque::new()).collect(),
            sockets,
            log: Vec::new(),
            buf: vec![0; DATAGRAM_MAX],
        })
    }

    fn index(&self, ua: &str) -> Result<usize, String> {
        self.map.ua_index(ua).ok_or(format!("{ua} is not a UA"))
    }
}

impl Wire for RealWire {
    fn now(&self) -> Duration {
        self.start.elapsed()
    }

    fn step(&mut self) -> Result<(), String> {
        let mut got = false;
        for i in 0..self.sockets.len() {
            // Bounded: a socket that keeps reporting errors does not hold the loop.
            for _ in 0..INBOX_MAX {
                match self.sockets[i].recv_from(&mut self.buf) {
                    Ok((n, from)) => {
                        got = true;
                        let at = self.now();
                        let bytes = self.buf[..n].to_vec();
                        let to = self.map.uas[i].real;
                        // A datagram between two UAs is in the log once, as sent.
                        if !self.map.uas.iter().any(|u| u.real == from) {
                            self.log.push(Logged {
                                at,
                                from,
                                to,
                                bytes: bytes.clone(),
                            });
                        }
                        self.inboxes[i].push_back(Received { at, from, bytes });
                        if self.inboxes[i].len() > INBOX_MAX {
                            return Err(format!(
                                "more than {INBOX_MAX} datagrams wait at {}: drive stops",
                                self.map.uas[i].name
                            ));
                        }
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    // An ICMP error for an earlier send: nothing to read.
                    Err(e)
                        if matches!(
                            e.kind(),
                            ErrorKind::ConnectionRefused | ErrorKind::ConnectionReset
                        ) => {}
                    Err(e) => return Err(format!("receiving at {}: {e}", self.map.uas[i].name)),
                }
            }
        }
        if !got {
            std::thread::sleep(TICK);
        }
        Ok(())
    }

    fn addr_of(&self, name: &str) -> Option<SocketAddr> {
        if let Some(i) = self.map.ua_index(name) {
            return Some(self.map.uas[i].real);
        }
        self.map
            .element_index(name)
            .map(|e| self.map.elements[e].real)
    }

    fn queue(&mut self, ua: &str, to: SocketAddr, bytes: Vec<u8>) -> Result<(), String> {
        let i = self.index(ua)?;
        // Only the targets and our own sockets are ever sent to.
        if !self.map.is_target(to) && !self.map.uas.iter().any(|u| u.real == to) {
            return Err(format!(
                "drive sends only to its targets or to its own UAs, not to {to}"
            ));
        }
        let bytes = self.map.outgoing(ua, &bytes);
        self.sockets[i]
            .send_to(&bytes, to)
            .map_err(|e| format!("{ua} cannot send to {to}: {e}"))?;
        self.log.push(Logged {
            at: self.now(),
            from: self.map.uas[i].real,
            to,
            bytes,
        });
        Ok(())
    }

    fn idle(&self, _: &str) -> bool {
        // A real socket sends at once.
        true
    }

    fn pending(&self, ua: &str) -> Vec<Received> {
        match self.map.ua_index(ua) {
            Some(i) => self.inboxes[i].iter().cloned().collect(),
            None => Vec::new(),
        }
    }

    fn take_where(
        &mut self,
        ua: &str,
        pred: &mut dyn FnMut(&Received) -> bool,
    ) -> Option<Received> {
        let i = self.map.ua_index(ua)?;
        let at = self.inboxes[i].iter().position(pred)?;
        self.inboxes[i].remove(at)
    }

    fn resolve(&self, uri: &str) -> Option<SocketAddr> {
        self.map.resolve(uri)
    }

    fn view(&self, _: &str, from: Option<&str>, bytes: &[u8]) -> Vec<u8> {
        self.map.incoming(from, bytes)
    }

    fn fault(&mut self, _: &StepKind) -> Result<(), String> {
        Err(FAULTS.to_owned())
    }

    fn lines(&self) -> Vec<Line> {
        self.log
            .iter()
            .map(|l| Line {
                at: l.at,
                from: self.name_of(l.from),
                to: self.name_of(l.to),
                from_addr: l.from,
                to_addr: l.to,
                bytes: l.bytes.clone(),
                lost: false,
            })
            .collect()
    }

    fn name_of(&self, addr: SocketAddr) -> String {
        // A target under the names of the elements it plays (`proxy1/proxy2` for one that
        // plays two).
        let played: Vec<&str> = self
            .map
            .elements
            .iter()
            .filter(|e| e.real == addr)
            .map(|e| e.name.as_str())
            .collect();
        if !played.is_empty() {
            return played.join("/");
        }
        self.map
            .uas
            .iter()
            .find(|u| u.real == addr)
            .map_or_else(|| addr.to_string(), |u| u.name.clone())
    }

    fn legend(&self) -> String {
        self.map.legend()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    /// Bob of RFC 3665 §2 (no host names) and §3 (Alice with a host name), one registrar.
    fn mapping() -> Mapping {
        Mapping::new(
            &[
                (
                    "bob".into(),
                    addr("192.0.2.201:5061"),
                    vec![],
                    addr("127.0.0.1:40001"),
                ),
                (
                    "alice".into(),
                    addr("192.0.2.101:5060"),
                    vec!["client.atlanta.example.com".into()],
                    addr("127.0.0.1:40002"),
                ),
            ],
            &[(
                "ss2".into(),
                addr("192.0.2.222:5061"),
                vec!["ss2.biloxi.example.com".into()],
                vec!["biloxi.example.com".into()],
                addr("127.0.0.1:25061"),
            )],
        )
    }

    fn text(b: Vec<u8>) -> String {
        String::from_utf8(b).unwrap()
    }

    const REGISTER: &str = "REGISTER sips:ss2.biloxi.example.com SIP/2.0\r\n\
        Via: SIP/2.0/UDP client.biloxi.example.com:5061;branch=z9hG4bKnashds7\r\n\
        Call-ID: reg@client.biloxi.example.com\r\n\
        Contact: <sips:bob@client.biloxi.example.com>\r\n\
        Authorization: Digest username=\"bob\", uri=\"sips:ss2.biloxi.example.com\"\r\n\
        Content-Length: 0\r\n\r\n";

    #[test]
    fn a_request_names_the_real_socket_in_its_top_via_and_the_target_by_port() {
        let mut m = mapping();
        let out = text(m.outgoing("bob", REGISTER.as_bytes()));
        assert_eq!(
            out,
            "REGISTER sips:ss2.biloxi.example.com:25061 SIP/2.0\r\n\
             Via: SIP/2.0/UDP client.biloxi.example.com:40001;branch=z9hG4bKnashds7\r\n\
             Call-ID: reg@client.biloxi.example.com\r\n\
             Contact: <sips:bob@client.biloxi.example.com>\r\n\
             Authorization: Digest username=\"bob\", uri=\"sips:ss2.biloxi.example.com\"\r\n\
             Content-Length: 0\r\n\r\n"
        );
    }

    #[test]
    fn the_answer_reads_as_in_the_simulator() {
        let mut m = mapping();
        m.outgoing("bob", REGISTER.as_bytes());
        let answer = "SIP/2.0 200 OK\r\n\
            Via: SIP/2.0/UDP client.biloxi.example.com:40001;branch=z9hG4bKnashds7;received=127.0.0.1\r\n\
            Contact: <sips:bob@client.biloxi.example.com>;expires=3600\r\n\
            Content-Length: 0\r\n\r\n";
        assert_eq!(
            text(m.incoming(Some("ss2"), answer.as_bytes())),
            "SIP/2.0 200 OK\r\n\
             Via: SIP/2.0/UDP client.biloxi.example.com:5061;branch=z9hG4bKnashds7;received=192.0.2.201\r\n\
             Contact: <sips:bob@client.biloxi.example.com>;expires=3600\r\n\
             Content-Length: 0\r\n\r\n"
        );
    }

    #[test]
    fn host_names_and_ips_of_uas_become_real_addresses_in_uris_and_back() {
        let mut m = mapping();
        let invite = "INVITE sip:bob@biloxi.example.com SIP/2.0\r\n\
            v: SIP/2.0/UDP 192.0.2.101:5060;branch=z9hG4bK1\r\n\
            Route: <sip:ss2.biloxi.example.com;lr>,\r\n <sip:192.0.2.222:5061;lr>\r\n\
            m: <sip:alice@client.atlanta.example.com>\r\n\
            Content-Length: 20\r\n\r\n\
            c=IN IP4 192.0.2.101";
        let out = text(m.outgoing("alice", invite.as_bytes()));
        assert_eq!(
            out,
            "INVITE sip:bob@biloxi.example.com SIP/2.0\r\n\
             v: SIP/2.0/UDP 127.0.0.1:40002;branch=z9hG4bK1\r\n\
             Route: <sip:ss2.biloxi.example.com:25061;lr>,\r\n <sip:127.0.0.1:25061;lr>\r\n\
             m: <sip:alice@127.0.0.1:40002>\r\n\
             Content-Length: 20\r\n\r\n\
             c=IN IP4 192.0.2.101"
        );
        // The same message relayed by the target to bob: every address as the scenario had it.
        let relayed = "INVITE sip:bob@127.0.0.1:40001 SIP/2.0\r\n\
            Via: SIP/2.0/UDP ss2.biloxi.example.com:25061;branch=z9hG4bK2\r\n\
            Via: SIP/2.0/UDP 127.0.0.1:40002;branch=z9hG4bK1\r\n\
            Record-Route: <sip:ss2.biloxi.example.com:25061;lr>\r\n\
            Contact: <sip:alice@127.0.0.1:40002>\r\n\r\n";
        assert_eq!(
            text(m.incoming(Some("ss2"), relayed.as_bytes())),
            "INVITE sip:bob@192.0.2.201:5061 SIP/2.0\r\n\
             Via: SIP/2.0/UDP ss2.biloxi.example.com:5061;branch=z9hG4bK2\r\n\
             Via: SIP/2.0/UDP 192.0.2.101:5060;branch=z9hG4bK1\r\n\
             Record-Route: <sip:ss2.biloxi.example.com:5061;lr>\r\n\
             Contact: <sip:alice@client.atlanta.example.com>\r\n\r\n"
        );
    }

    #[test]
    fn the_target_address_reads_as_the_element_the_step_names() {
        let m = mapping();
        let rr = "SIP/2.0 180 Ringing\r\nRecord-Route: <sip:127.0.0.1:25061;lr>\r\n\r\n";
        assert_eq!(
            text(m.incoming(Some("ss2"), rr.as_bytes())),
            "SIP/2.0 180 Ringing\r\nRecord-Route: <sip:192.0.2.222:5061;lr>\r\n\r\n"
        );
    }

    #[test]
    fn only_the_target_and_own_sockets_resolve() {
        let m = mapping();
        assert_eq!(
            m.resolve("sip:ss2.biloxi.example.com:25061;lr"),
            Some(addr("127.0.0.1:25061"))
        );
        assert_eq!(
            m.resolve("sip:bob@127.0.0.1:40001"),
            Some(addr("127.0.0.1:40001"))
        );
        assert_eq!(
            m.resolve("sip:alice@client.atlanta.example.com"),
            Some(addr("127.0.0.1:40002"))
        );
        assert_eq!(m.resolve("sip:carol@192.0.2.99"), None);
        assert_eq!(m.resolve("sip:carol@chicago.example.com"), None);
    }

    /// RFC 3665 §3.2: Alice behind proxy1, Bob behind proxy2, each proxy its own target.
    fn two_proxies() -> Mapping {
        Mapping::new(
            &[
                (
                    "alice".into(),
                    addr("192.0.2.101:5060"),
                    vec!["client.atlanta.example.com".into()],
                    addr("127.0.0.1:40002"),
                ),
                (
                    "bob".into(),
                    addr("192.0.2.201:5060"),
                    vec!["client.biloxi.example.com".into()],
                    addr("127.0.0.1:40001"),
                ),
            ],
            &[
                (
                    "proxy1".into(),
                    addr("192.0.2.111:5060"),
                    vec!["ss1.atlanta.example.com".into()],
                    vec!["atlanta.example.com".into()],
                    addr("127.0.0.1:25071"),
                ),
                (
                    "proxy2".into(),
                    addr("192.0.2.222:5060"),
                    vec!["ss2.biloxi.example.com".into()],
                    vec!["biloxi.example.com".into()],
                    addr("127.0.0.1:25072"),
                ),
            ],
        )
    }

    #[test]
    fn each_element_is_its_own_target_out_and_back() {
        let mut m = two_proxies();
        let ack = "ACK sip:bob@client.biloxi.example.com SIP/2.0\r\n\
            Via: SIP/2.0/UDP client.atlanta.example.com:5060;branch=z9hG4bK74b76\r\n\
            Route: <sip:ss1.atlanta.example.com;lr>,\r\n <sip:ss2.biloxi.example.com;lr>,\r\n <sip:192.0.2.222;lr>\r\n\
            Content-Length: 0\r\n\r\n";
        assert_eq!(
            text(m.outgoing("alice", ack.as_bytes())),
            "ACK sip:bob@127.0.0.1:40001 SIP/2.0\r\n\
             Via: SIP/2.0/UDP client.atlanta.example.com:40002;branch=z9hG4bK74b76\r\n\
             Route: <sip:ss1.atlanta.example.com:25071;lr>,\r\n <sip:ss2.biloxi.example.com:25072;lr>,\r\n <sip:127.0.0.1:25072;lr>\r\n\
             Content-Length: 0\r\n\r\n"
        );
        // What proxy2 relays to Bob: both proxies' Vias (proxy2 noted where proxy1's came
        // from) and Record-Routes read as the scenario's, whichever element the step names.
        let relayed = "INVITE sip:bob@127.0.0.1:40001 SIP/2.0\r\n\
            Via: SIP/2.0/UDP ss2.biloxi.example.com:25072;branch=z9hG4bK2\r\n\
            Via: SIP/2.0/UDP ss1.atlanta.example.com:25071;branch=z9hG4bK1;received=127.0.0.1;rport=25071\r\n\
            Record-Route: <sip:ss2.biloxi.example.com:25072;lr>, <sip:127.0.0.1:25071;lr>\r\n\r\n";
        let expected = "INVITE sip:bob@client.biloxi.example.com SIP/2.0\r\n\
            Via: SIP/2.0/UDP ss2.biloxi.example.com;branch=z9hG4bK2\r\n\
            Via: SIP/2.0/UDP ss1.atlanta.example.com;branch=z9hG4bK1;received=192.0.2.111;rport=5060\r\n\
            Record-Route: <sip:ss2.biloxi.example.com;lr>, <sip:192.0.2.111:5060;lr>\r\n\r\n";
        for from in [Some("proxy2"), Some("proxy1"), None] {
            assert_eq!(text(m.incoming(from, relayed.as_bytes())), expected);
        }
        // A name on the other proxy's port is not that proxy.
        let wrong =
            "SIP/2.0 180 Ringing\r\nRecord-Route: <sip:ss1.atlanta.example.com:25072;lr>\r\n\r\n";
        assert_eq!(text(m.incoming(Some("proxy1"), wrong.as_bytes())), wrong);
    }

    #[test]
    fn each_element_name_address_and_domain_resolves_to_its_target() {
        let m = two_proxies();
        for (uri, to) in [
            ("sip:ss1.atlanta.example.com;lr", "127.0.0.1:25071"),
            ("sip:bob@atlanta.example.com", "127.0.0.1:25071"),
            ("sip:192.0.2.111", "127.0.0.1:25071"),
            ("sip:ss2.biloxi.example.com:25072;lr", "127.0.0.1:25072"),
            ("sip:bob@biloxi.example.com", "127.0.0.1:25072"),
            ("sip:127.0.0.1:25072;lr", "127.0.0.1:25072"),
        ] {
            assert_eq!(m.resolve(uri), Some(addr(to)), "{uri}");
        }
    }

    #[test]
    fn a_target_per_element_needs_every_element_and_only_them() {
        let scenario = "name: x\nhosts:\n  a: { ua: { address: 192.0.2.1:5060 } }\n  \
             p: { element: { address: 192.0.2.2:5060, domains: [d] } }\n  \
             q: { element: { address: 192.0.2.3:5060, domains: [e] } }\nsteps:\n  - wait_ms: 1\n";
        let drive = |targets: &[(&str, &str)]| {
            let options = DriveOptions::each(targets.iter().map(|(n, a)| (*n, addr(a))));
            match drive_text("f.yaml", scenario, &options) {
                Err(DriveError::Targets(e)) => e,
                other => panic!("{other:?}"),
            }
        };
        assert_eq!(
            drive(&[("p", "127.0.0.1:9")]),
            "f.yaml: no target for the element `q`: with a target per element, every element needs one (its elements are p, q)"
        );
        assert_eq!(
            drive(&[("p", "127.0.0.1:9"), ("q", "127.0.0.1:9"), ("a", "127.0.0.1:9")]),
            "f.yaml: a target for `a`, which is not an element of the scenario (its elements are p, q)"
        );
    }

    #[test]
    fn faults_and_long_waits_are_refused_with_their_step() {
        let scenario = |steps: &str| {
            format!(
                "name: x\nhosts:\n  a: {{ ua: {{ address: 192.0.2.1:5060 }} }}\n  \
                 p: {{ element: {{ address: 192.0.2.2:5060, domains: [d] }} }}\nsteps:\n{steps}"
            )
        };
        let target = DriveOptions::new(addr("127.0.0.1:9"));
        let refused = |steps: &str| match drive_text("f.yaml", &scenario(steps), &target) {
            Err(DriveError::Refused(e)) => e.to_string(),
            other => panic!("{other:?}"),
        };
        let e = refused("  - wait_ms: 10\n  - crash: p\n");
        assert!(e.starts_with("f.yaml:7:"), "{e}");
        assert!(e.contains("`crash: p`: drive cannot crash"), "{e}");
        let e = refused("  - partition: [a, p]\n");
        assert!(e.contains("`partition: [a, p]`"), "{e}");
        let e = refused("  - wait_ms: 3600000\n");
        assert!(e.contains("waits 60000 ms at most"), "{e}");
    }
}
