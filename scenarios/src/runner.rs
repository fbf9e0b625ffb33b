//! Plays a scenario, step by step, and judges it.
//!
//! The runner is the director of the scripted UAs. The step logic (send, expect, reply, ack,
//! digest answers, retransmissions) is written once, over a `Wire`: the UAs' sockets and a
//! clock. [`run_file`] plays it in the simulator, where the wire is the [`World`] advanced one
//! tick at a time; [`crate::drive`] plays it over real UDP sockets against a real proxy.
//! A `send` step queues bytes on a UA's socket; an `expect` step steps until the UA has
//! received a message (or the step's timeout passes) and checks it; a `wait` step steps.
//! After the last step the wire runs on for a while so that a message nobody expected is
//! caught, not lost.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use trapezoid_core::auth::{compute_response, Algorithm};
use trapezoid_core::config::{IpNet, OverLimit, Relay, Timers, User};
use trapezoid_core::ids::Ids;
use trapezoid_core::message::{HeaderName, Limits, Message};
use trapezoid_core::Config;
use trapezoid_sim::{LinkFaults, Received, Ua, World, WorldConfig};

use crate::error::{Position, ScenarioError};
use crate::ladder::{self, Line};
use crate::matcher::{self, MessageView};
use crate::model::{
    self, AuthSteps, ElementHost, ExpectStep, Host, OverSpec, RandomKind, RelaySpec, ReplyStep,
    Scenario, SendStep, VarDef,
};
use crate::template;

/// How long the world runs after the last step, to catch unexpected messages.
pub const SETTLE: Duration = Duration::from_millis(500);

/// Options of one run.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// Overrides the file's seed.
    pub seed: Option<u64>,
    /// Overrides the file's `network.loss_percent`.
    pub loss_percent: Option<u8>,
    /// Overrides the file's `network.duplicate_percent`.
    pub duplicate_percent: Option<u8>,
}

/// Why a run failed, with everything needed to understand and replay it.
#[derive(Clone, Debug)]
pub struct Failure {
    /// 1-based index of the failing step (0: after the last step).
    pub step: usize,
    /// Line of that step in the file.
    pub line: usize,
    /// What went wrong: a header-aware diff when a message arrived.
    pub report: String,
}

/// The result of playing one scenario.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// The scenario's `name`.
    pub name: String,
    /// The file it came from.
    pub file: String,
    /// The seed it ran with.
    pub seed: u64,
    /// Messages on the wire.
    pub messages: usize,
    /// Time at the end: virtual in the simulator, wall-clock time under `drive`.
    pub sim_time: Duration,
    /// Every message sent, in order.
    pub lines: Vec<Line>,
    /// The scenario's host names, in the order of its `hosts:`.
    pub hosts: Vec<String>,
    /// `None` when every step passed.
    pub failure: Option<Failure>,
    /// The command that replays this run.
    pub replay: String,
}

impl Outcome {
    /// Whether every step passed.
    pub fn passed(&self) -> bool {
        self.failure.is_none()
    }

    /// The ladder and every message in full: what golden snapshots keep.
    pub fn transcript(&self) -> String {
        ladder::transcript(&self.name, self.seed, &self.lines)
    }

    /// The command that replays this run.
    pub fn replay_command(&self) -> String {
        self.replay.clone()
    }

    /// The failure report: the ladder up to the failure, the diff, the file and line, the
    /// seed and the replay command.
    pub fn report(&self) -> Option<String> {
        let f = self.failure.as_ref()?;
        let step = if f.step == 0 {
            "after the last step".to_owned()
        } else {
            format!("step {}", f.step)
        };
        Some(format!(
            "{}:{}: {step} failed\n\nladder up to the failure:\n{}\n{}\n\nseed {} — replay with: {}\n",
            self.file,
            f.line,
            ladder::ladder(&self.lines),
            f.report.trim_end(),
            self.seed,
            self.replay_command()
        ))
    }
}

/// Parses and plays the scenario in `path`.
pub fn run_file(path: &Path, options: &RunOptions) -> Result<Outcome, ScenarioError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path)
        .map_err(|e| ScenarioError::new(&file, Position::START, format!("cannot read: {e}")))?;
    run_text(&file, &text, options)
}

/// Parses and plays a scenario given as text (`file` names it in messages).
pub fn run_text(file: &str, text: &str, options: &RunOptions) -> Result<Outcome, ScenarioError> {
    let scenario = model::parse_scenario(file, text)?;
    Ok(play(file, &scenario, options))
}

/// A stable 64-bit mix (FNV-1a) so each element gets its own seed derived from the run's.
pub(crate) fn mix(seed: u64, name: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ seed;
    for b in name.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// The simulated network's DNS: every host's names, and every element's domains (a domain
/// resolves to the element serving it, as its SRV record would).
fn host_table(scenario: &Scenario) -> Vec<(String, SocketAddr)> {
    let mut table: Vec<(String, SocketAddr)> = Vec::new();
    let mut add = |name: &str, addr: SocketAddr| {
        if !table.iter().any(|(n, _)| n.eq_ignore_ascii_case(name)) {
            table.push((name.to_ascii_lowercase(), addr));
        }
    };
    for (_, host) in &scenario.hosts {
        match host {
            Host::Ua(u) => u.host_names.iter().for_each(|n| add(n, u.address)),
            Host::Element(e) => e
                .host_names
                .iter()
                .chain(&e.domains)
                .for_each(|n| add(n, e.address)),
        }
    }
    table
}

/// The core configuration an element host describes; `seed` and `name` seed its IDs.
pub fn element_config(name: &str, e: &ElementHost, seed: u64) -> Config {
    let mut c = Config::new(e.domains.first().map(String::as_str).unwrap_or("localhost"));
    c.seed = mix(seed, name);
    c.domains = e.domains.iter().map(|d| d.to_ascii_lowercase()).collect();
    c.host_names = e.host_names.clone();
    c.local_addrs = vec![e.address];
    c.auth.realm = e.realm.clone();
    c.auth.users = e
        .users
        .iter()
        .map(|u| User {
            name: u.name.clone(),
            password: u.password.clone(),
            aors: u.aors.clone(),
        })
        .collect();
    if let Some(a) = &e.auth {
        c.auth.register = a.register;
        if !a.algorithms.is_empty() {
            c.auth.algorithms = a
                .algorithms
                .iter()
                .filter_map(|s| Algorithm::parse(s))
                .collect();
        }
        if let Some(s) = a.nonce_lifetime_s {
            c.auth.nonce_lifetime = Duration::from_secs(s);
        }
    }
    if let Some(r) = &e.registrar {
        let d = &mut c.registrar;
        d.default_expires = r.default_expires.unwrap_or(d.default_expires);
        d.min_expires = r.min_expires.unwrap_or(d.min_expires);
        d.max_expires = r.max_expires.unwrap_or(d.max_expires);
        d.bindings_per_aor_max = r.bindings_per_aor_max.unwrap_or(d.bindings_per_aor_max);
        d.aors_max = r.aors_max.unwrap_or(d.aors_max);
    }
    if let Some(p) = &e.proxy {
        let d = &mut c.proxy;
        d.record_route = p.record_route.unwrap_or(d.record_route);
        d.authenticate = p.authenticate.unwrap_or(d.authenticate);
        d.redirect = p.redirect.unwrap_or(d.redirect);
        if let Some(r) = p.relay {
            d.relay = match r {
                RelaySpec::Open => Relay::Open,
                RelaySpec::Local => Relay::Local,
                RelaySpec::None => Relay::None,
            };
        }
        if let Some(s) = p.timer_c_s {
            d.timer_c = Duration::from_secs(s);
        }
    }
    if let Some(l) = &e.limits {
        let d = &mut c.limits;
        d.message.message_bytes_max = l.message_bytes_max.unwrap_or(d.message.message_bytes_max);
        d.message.headers_max = l.headers_max.unwrap_or(d.message.headers_max);
        d.transactions_max = l.transactions_max.unwrap_or(d.transactions_max);
        if let Some(r) = &l.source_rate {
            let d = &mut d.source_rate;
            d.per_second = r.per_second.unwrap_or(d.per_second);
            d.burst = r.burst.unwrap_or(d.burst);
            d.sources_max = r.sources_max.unwrap_or(d.sources_max);
            let retry_after_s = match d.over {
                OverLimit::Reject { retry_after_s } => retry_after_s,
                OverLimit::Drop => 5,
            };
            let retry_after_s = r.retry_after_s.unwrap_or(retry_after_s);
            d.over = match r.over {
                Some(OverSpec::Drop) => OverLimit::Drop,
                Some(OverSpec::Reject) => OverLimit::Reject { retry_after_s },
                None => match d.over {
                    OverLimit::Drop => OverLimit::Drop,
                    OverLimit::Reject { .. } => OverLimit::Reject { retry_after_s },
                },
            };
            if let Some(exempt) = &r.exempt {
                // Checked when the file was read (model::check_element).
                d.exempt = exempt.iter().filter_map(|n| IpNet::parse(n)).collect();
            }
        }
    }
    if let Some(t) = &e.timers {
        let d = Timers::default();
        c.timers = Timers {
            t1: t.t1_ms.map(Duration::from_millis).unwrap_or(d.t1),
            t2: t.t2_ms.map(Duration::from_millis).unwrap_or(d.t2),
            t4: t.t4_ms.map(Duration::from_millis).unwrap_or(d.t4),
        };
    }
    c
}

/// A received message seen through the scenario language's [`MessageView`].
struct View<'a> {
    msg: &'a Message,
}

impl MessageView for View<'_> {
    fn start_line(&self) -> String {
        let text = String::from_utf8_lossy(self.msg.as_bytes());
        text.lines().next().unwrap_or("").trim_end().to_owned()
    }
    fn status(&self) -> Option<u16> {
        self.msg.status()
    }
    fn method(&self) -> Option<String> {
        self.msg.method().map(|m| m.as_str().to_owned())
    }
    fn reason(&self) -> Option<String> {
        self.msg.reason().map(str::to_owned)
    }
    fn header_values(&self, name: &str) -> Vec<String> {
        self.msg
            .values(&HeaderName::parse(name))
            .map(str::to_owned)
            .collect()
    }
    fn header_param(&self, value: &str, name: &str) -> Option<Option<String>> {
        header_param(value, name)
    }
}

/// A `;name=value` param of a header value: after the `>` of a name-addr, else after the
/// first `;` (Via, addr-spec). For credentials and challenges (`Digest a=b, c="d"`) the
/// comma-separated auth params.
fn header_param(value: &str, name: &str) -> Option<Option<String>> {
    let (params, sep) = if let Some(rest) = value.strip_prefix("Digest ") {
        (rest, ',')
    } else if let Some(i) = value.rfind('>') {
        (&value[i + 1..], ';')
    } else {
        match value.find(';') {
            Some(i) => (&value[i..], ';'),
            None => return None,
        }
    };
    for p in params.split(sep) {
        let p = p.trim();
        let (k, v) = match p.split_once('=') {
            Some((k, v)) => (k.trim(), Some(v.trim().trim_matches('"').to_owned())),
            None => (p, None),
        };
        if k.eq_ignore_ascii_case(name) {
            return Some(v);
        }
    }
    None
}

/// The scripted UAs' side of the network, and its clock: what the step logic needs from the
/// simulator or from real sockets. Addresses are the wire's own: scenario addresses in the
/// simulator, real ones under `drive`.
pub(crate) trait Wire {
    /// Time since the run started.
    fn now(&self) -> Duration;
    /// Lets time pass: one tick of the simulator, or one short poll of real sockets.
    fn step(&mut self) -> Result<(), String>;
    /// Where datagrams to the host `name` go, and where datagrams from it come from.
    fn addr_of(&self, name: &str) -> Option<SocketAddr>;
    /// Queues a datagram on UA `ua`'s socket; it is on the wire once [`Wire::idle`].
    fn queue(&mut self, ua: &str, to: SocketAddr, bytes: Vec<u8>) -> Result<(), String>;
    /// Whether everything `ua` queued has gone out.
    fn idle(&self, ua: &str) -> bool;
    /// Datagrams `ua` received and no step took yet, oldest first.
    fn pending(&self, ua: &str) -> Vec<Received>;
    /// Takes the oldest datagram at `ua` that `pred` accepts, leaving the others in order.
    fn take_where(&mut self, ua: &str, pred: &mut dyn FnMut(&Received) -> bool)
        -> Option<Received>;
    /// Where a SIP URI leads (the host part resolved the way this network resolves names).
    fn resolve(&self, uri: &str) -> Option<SocketAddr>;
    /// The bytes as the scenario should read them when `at` checks them, expecting them
    /// from the host `from`: unchanged in the simulator, real addresses mapped back to the
    /// scenario's under `drive`.
    fn view(&self, at: &str, from: Option<&str>, bytes: &[u8]) -> Vec<u8>;
    /// A crash, restart, partition or heal, at once.
    fn fault(&mut self, kind: &model::StepKind) -> Result<(), String>;
    /// Every message sent so far, for the ladder.
    fn lines(&self) -> Vec<Line>;
    /// The host name of an address of this wire, or the address itself.
    fn name_of(&self, addr: SocketAddr) -> String;
    /// What a failure report adds to explain the wire (the address map under `drive`).
    fn legend(&self) -> String {
        String::new()
    }
}

/// The simulator as a [`Wire`]: scripted UAs are turmoil hosts whose sockets the runner fills
/// between ticks; the scenario's host table is the network's DNS.
struct SimWire {
    world: World,
    uas: BTreeMap<String, Ua>,
    addrs: BTreeMap<String, SocketAddr>,
    /// The simulated DNS (see [`host_table`]).
    hosts: Vec<(String, SocketAddr)>,
}

impl SimWire {
    fn ua(&self, name: &str) -> Result<&Ua, String> {
        self.uas.get(name).ok_or(format!("{name} is not a UA"))
    }

    fn addrs_of(&self, hosts: &[impl AsRef<str>]) -> Result<Vec<SocketAddr>, String> {
        hosts
            .iter()
            .map(|h| {
                let h = h.as_ref();
                self.addrs
                    .get(h)
                    .copied()
                    .ok_or(format!("unknown host {h}"))
            })
            .collect()
    }
}

impl Wire for SimWire {
    fn now(&self) -> Duration {
        self.world.now()
    }

    fn step(&mut self) -> Result<(), String> {
        self.world.step()
    }

    fn addr_of(&self, name: &str) -> Option<SocketAddr> {
        self.addrs.get(name).copied()
    }

    fn queue(&mut self, ua: &str, to: SocketAddr, bytes: Vec<u8>) -> Result<(), String> {
        self.ua(ua)?.send(to, bytes);
        Ok(())
    }

    fn idle(&self, ua: &str) -> bool {
        self.uas.get(ua).is_none_or(Ua::idle)
    }

    fn pending(&self, ua: &str) -> Vec<Received> {
        self.uas.get(ua).map(Ua::pending).unwrap_or_default()
    }

    fn take_where(
        &mut self,
        ua: &str,
        pred: &mut dyn FnMut(&Received) -> bool,
    ) -> Option<Received> {
        self.uas.get(ua)?.take_where(pred)
    }

    /// The host of a SIP URI, looked up in the scenario's host table or taken as an IP.
    fn resolve(&self, uri: &str) -> Option<SocketAddr> {
        match trapezoid_core::message::Uri::parse(uri).ok()? {
            trapezoid_core::message::Uri::Sip(u) => {
                let port = u.port.unwrap_or(5060);
                if let Ok(ip) = u.host.trim_matches(['[', ']']).parse::<std::net::IpAddr>() {
                    return Some(SocketAddr::new(ip, port));
                }
                self.hosts
                    .iter()
                    .find(|(n, _)| n.eq_ignore_ascii_case(u.host))
                    .map(|(_, a)| *a)
            }
            _ => None,
        }
    }

    fn view(&self, _: &str, _: Option<&str>, bytes: &[u8]) -> Vec<u8> {
        bytes.to_vec()
    }

    fn fault(&mut self, kind: &model::StepKind) -> Result<(), String> {
        match kind {
            model::StepKind::Crash(h) => {
                let a = self.addrs_of(&[h])?;
                self.world.crash(a[0]);
            }
            model::StepKind::Restart(h) => {
                let a = self.addrs_of(&[h])?;
                self.world.restart(a[0]);
            }
            model::StepKind::Partition(p) => {
                let a = self.addrs_of(p)?;
                self.world.partition(a[0], a[1]);
            }
            model::StepKind::Heal(p) => {
                let a = self.addrs_of(p)?;
                self.world.heal(a[0], a[1]);
            }
            _ => return Err("not a fault".into()),
        }
        Ok(())
    }

    fn lines(&self) -> Vec<Line> {
        self.world
            .trace()
            .sent_with_fate()
            .into_iter()
            .map(|(e, delivered)| Line {
                at: e.at,
                from: self.world.name_of(e.from),
                to: self.world.name_of(e.to),
                from_addr: e.from,
                to_addr: e.to,
                bytes: e.bytes,
                lost: !delivered,
            })
            .collect()
    }

    fn name_of(&self, addr: SocketAddr) -> String {
        self.world.name_of(addr)
    }
}

/// The step logic, over any [`Wire`].
pub(crate) struct Run<W: Wire> {
    pub(crate) wire: W,
    vars: BTreeMap<String, String>,
    /// The last INVITE each UA sent, and where to.
    invites: BTreeMap<String, (Message, SocketAddr)>,
    /// The last response each UA received.
    responses: BTreeMap<String, Message>,
    /// Branches for the ACKs `ack:` builds.
    ids: Ids,
    /// The requests each UA received, latest last (what `reply:` answers), and where they
    /// came from.
    requests: BTreeMap<String, Vec<(Message, SocketAddr)>>,
    /// Requests sent with `retransmit: true` whose client transaction is still waiting.
    retransmissions: Vec<Retransmission>,
    /// Every message an `expect` took, by receiver and sender: a later copy of the same bytes
    /// (a retransmission, or a datagram the network duplicated) is the same message, and an
    /// `expect` matches a message once however many copies arrive.
    taken: BTreeSet<(String, SocketAddr, Vec<u8>)>,
}

/// RFC 3261 §17.1.1.2 / §17.1.2.2 over UDP for a scripted UA's request: when to send it
/// again, and until when.
struct Retransmission {
    ua: String,
    to: SocketAddr,
    bytes: Vec<u8>,
    /// Top Via branch and CSeq method: what a response to it carries (§17.1.3).
    branch: String,
    method: String,
    next: Duration,
    interval: Duration,
    /// Timer B or F: 64*T1 after the first send.
    deadline: Duration,
}

/// RFC 3261 defaults for the scripted UAs' client transactions (§17.1.1.1).
const UA_T1: Duration = Duration::from_millis(500);
const UA_T2: Duration = Duration::from_secs(4);

/// The simulator's tick (under `drive`, the poll interval of the real sockets).
pub(crate) const TICK: Duration = Duration::from_millis(1);

impl Retransmission {
    /// Whether `r` is a response to this request; a final one, or any one for an INVITE
    /// (a provisional stops Timer A, §17.1.1.2; a non-INVITE goes on at T2, §17.1.2.2).
    fn answered_by(&self, r: &Received) -> Option<bool> {
        let m = Message::parse(&r.bytes, &Limits::default()).ok()?;
        let status = m.status()?;
        let branch = m.top_via().and_then(|v| v.branch().map(str::to_owned));
        let method = m.cseq().map(|c| c.method.to_owned());
        if branch.as_deref() != Some(self.branch.as_str())
            || method.as_deref() != Some(&self.method)
        {
            return None;
        }
        Some(status >= 200 || self.method == "INVITE")
    }
}

impl<W: Wire> Run<W> {
    fn lookup(&self, name: &str) -> Option<String> {
        self.vars.get(name).cloned()
    }

    /// One step of the wire, then the scripted UAs' retransmission timers.
    fn step(&mut self) -> Result<(), String> {
        self.wire.step()?;
        let now = self.wire.now();
        let mut i = 0;
        while i < self.retransmissions.len() {
            let r = &mut self.retransmissions[i];
            let heard: Vec<bool> = self
                .wire
                .pending(&r.ua)
                .iter()
                .filter_map(|p| r.answered_by(p))
                .collect();
            if heard.contains(&true) || now >= r.deadline {
                self.retransmissions.remove(i);
                continue;
            }
            if !heard.is_empty() {
                // A non-INVITE in Proceeding: Timer E at T2 from now on.
                r.interval = UA_T2;
            }
            // Queued now, it leaves on the next tick: exactly when the timer fires.
            if now + TICK >= r.next {
                self.wire.queue(&r.ua, r.to, r.bytes.clone())?;
                r.interval = if r.method == "INVITE" {
                    r.interval * 2
                } else {
                    (r.interval * 2).min(UA_T2)
                };
                r.next = now + TICK + r.interval;
            }
            i += 1;
        }
        Ok(())
    }

    fn tick_for(&mut self, d: Duration) -> Result<(), String> {
        let until = self.wire.now() + d;
        while self.wire.now() < until {
            self.step()?;
        }
        Ok(())
    }

    /// Queues a datagram and steps until it has left.
    fn send_now(&mut self, ua: &str, to: SocketAddr, bytes: Vec<u8>) -> Result<(), String> {
        self.wire.queue(ua, to, bytes)?;
        while !self.wire.idle(ua) {
            self.step()?;
        }
        Ok(())
    }

    fn send(&mut self, s: &SendStep) -> Result<(), String> {
        for (_, a) in s.auth.iter().flat_map(AuthSteps::iter) {
            let lookup = |n: &str| self.lookup(n);
            let r = |t: &str| template::substitute(t, &lookup);
            let alg_name = a.algorithm_name();
            let alg = Algorithm::parse(alg_name).ok_or(format!("unknown algorithm {alg_name}"))?;
            let method = s.message.split_whitespace().next().unwrap_or("").to_owned();
            let qop = a.qop.as_deref().map(r).transpose()?;
            let nc = a.nc.as_deref().map(r).transpose()?;
            let cnonce = a.cnonce.as_deref().map(r).transpose()?;
            let response = compute_response(
                alg,
                &r(&a.username)?,
                &r(&a.realm)?,
                &r(&a.password)?,
                &method,
                &r(&a.uri)?,
                &r(&a.nonce)?,
                qop.as_deref(),
                nc.as_deref(),
                cnonce.as_deref(),
            );
            self.vars.insert(a.var_name().to_owned(), response);
        }
        let lookup = |n: &str| self.lookup(n);
        let bytes = template::render(&s.message, &lookup)?;
        let to = self
            .wire
            .addr_of(&s.to)
            .ok_or(format!("unknown host {}", s.to))?;
        if let Ok(m) = Message::parse(&bytes, &Limits::default()) {
            if m.method().is_some_and(|x| x.as_str() == "INVITE") {
                self.invites.insert(s.from.clone(), (m, to));
            }
        }
        let retransmission = if s.retransmit {
            let m = Message::parse(&bytes, &Limits::default())
                .map_err(|e| format!("a message to retransmit must parse: {}", e.reason))?;
            let branch = m.top_via().and_then(|v| v.branch().map(str::to_owned));
            let method = m.cseq().map(|c| c.method.to_owned());
            let (Some(branch), Some(method)) = (branch, method) else {
                return Err("a message to retransmit needs a Via branch and a CSeq".into());
            };
            Some(Retransmission {
                ua: s.from.clone(),
                to,
                bytes: bytes.clone(),
                branch,
                method,
                next: Duration::ZERO,
                interval: UA_T1,
                deadline: Duration::ZERO,
            })
        } else {
            None
        };
        self.wire.queue(&s.from, to, bytes)?;
        // The UA sends on the next tick.
        let sent_at = self.wire.now() + TICK;
        if let Some(mut r) = retransmission {
            r.next = sent_at + UA_T1;
            r.deadline = sent_at + UA_T1 * 64;
            self.retransmissions.push(r);
        }
        // One tick puts it on the wire.
        while !self.wire.idle(&s.from) {
            self.step()?;
        }
        Ok(())
    }

    fn expect(&mut self, e: &ExpectStep) -> Result<(), String> {
        let from = match &e.from {
            Some(f) => Some(self.wire.addr_of(f).ok_or(format!("unknown host {f}"))?),
            None => None,
        };
        let timeout = e.timeout();
        let deadline = self.wire.now() + timeout;
        let got: Received = loop {
            // Copies of messages already taken are set aside first.
            let taken = &self.taken;
            let at = e.at.clone();
            while self
                .wire
                .take_where(&e.at, &mut |r| {
                    taken.contains(&(at.clone(), r.from, r.bytes.clone()))
                })
                .is_some()
            {}
            if let Some(r) = self
                .wire
                .take_where(&e.at, &mut |r| from.is_none_or(|f| f == r.from))
            {
                self.taken.insert((e.at.clone(), r.from, r.bytes.clone()));
                break r;
            }
            if self.wire.now() >= deadline {
                return Err(format!(
                    "{}\nnothing arrived at {} within {} ms{}",
                    matcher::expectation(e),
                    e.at,
                    timeout.as_millis(),
                    self.wire.legend()
                ));
            }
            self.step()?;
        };
        // A response taken here is no longer pending, so its request's timers learn of it now.
        self.retransmissions
            .retain(|r| r.answered_by(&got) != Some(true));
        for r in &mut self.retransmissions {
            if r.answered_by(&got) == Some(false) {
                r.interval = UA_T2;
            }
        }
        let msg = match Message::parse(&got.bytes, &Limits::default()) {
            Ok(m) => m,
            Err(err) => {
                return Err(format!(
                    "{}\nan unparsable message arrived ({}):\n{}",
                    matcher::expectation(e),
                    err.reason,
                    ladder::printable(&got.bytes)
                ))
            }
        };
        // What the checks read: the same message with the wire's addresses mapped back to the
        // scenario's (the same bytes in the simulator). Replies and ACKs use the real one.
        let seen = self.wire.view(&e.at, e.from.as_deref(), msg.as_bytes());
        let view = if seen == msg.as_bytes() {
            msg.clone()
        } else {
            Message::parse(&seen, &Limits::default()).unwrap_or_else(|_| msg.clone())
        };
        let lookup = |n: &str| self.lookup(n);
        match matcher::check(e, &View { msg: &view }, &lookup) {
            Ok(captures) => {
                for (k, v) in captures {
                    self.vars.insert(k, v);
                }
                if !msg.is_request() {
                    self.responses.insert(e.at.clone(), msg.clone());
                }
                if msg.is_request() {
                    self.requests
                        .entry(e.at.clone())
                        .or_default()
                        .push((msg, got.from));
                }
                Ok(())
            }
            Err(mismatches) => Err(format!(
                "{}{}",
                matcher::diff_report(e, &ladder::printable(view.as_bytes()), &mismatches),
                self.wire.legend()
            )),
        }
    }
}

impl<W: Wire> Run<W> {
    /// `ack:`: RFC 3261 §17.1.1.3 (non-2xx) or §13.2.2.4 (2xx).
    fn ack(&mut self, a: &model::AckStep) -> Result<(), String> {
        let (invite, sent_to) = self
            .invites
            .get(&a.from)
            .cloned()
            .ok_or(format!("{} has sent no INVITE to acknowledge", a.from))?;
        let response = self.responses.get(&a.from).cloned().ok_or(format!(
            "{} has received no response to acknowledge",
            a.from
        ))?;
        let status = response.status().unwrap_or(0);
        let (bytes, to) = if status >= 300 {
            let ack = invite
                .ack_for(&response)
                .ok_or("cannot build the ACK from the INVITE")?;
            (ack, sent_to)
        } else {
            let contact = response
                .contacts()
                .ok()
                .and_then(|c| match c {
                    trapezoid_core::message::Contacts::List(l) => {
                        l.first().map(|n| n.uri.to_owned())
                    }
                    _ => None,
                })
                .ok_or("the 2xx has no Contact (remote target)")?;
            let routes: Vec<&str> = response.values(&HeaderName::RecordRoute).collect();
            let route_set: Vec<&str> = routes.iter().rev().copied().collect();
            let via = invite.values(&HeaderName::Via).next().unwrap_or("");
            let branch = self.ids.branch();
            let via = match via.find(";branch=") {
                Some(i) => {
                    let rest = &via[i + 8..];
                    let end = rest.find(';').map_or(via.len(), |j| i + 8 + j);
                    format!("{};branch={branch}{}", &via[..i], &via[end..])
                }
                None => format!("{via};branch={branch}"),
            };
            let mut text = format!("ACK {contact} SIP/2.0\r\nVia: {via}\r\nMax-Forwards: 70\r\n");
            if !route_set.is_empty() {
                text.push_str(&format!("Route: {}\r\n", route_set.join(", ")));
            }
            text.push_str(&format!(
                "From: {}\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: {} ACK\r\nContent-Length: 0\r\n\r\n",
                invite.value(&HeaderName::From).unwrap_or(""),
                response.value(&HeaderName::To).unwrap_or(""),
                invite.call_id().unwrap_or(""),
                invite.cseq().map(|c| c.seq).unwrap_or(1),
            ));
            let first_hop = route_set
                .first()
                .map(|r| {
                    r.trim_start_matches('<')
                        .split('>')
                        .next()
                        .unwrap_or(r)
                        .to_owned()
                })
                .unwrap_or(contact);
            let to = self
                .wire
                .resolve(&first_hop)
                .ok_or(format!("no host in the scenario answers to {first_hop}"))?;
            (text.into_bytes(), to)
        };
        self.send_now(&a.from, to, bytes)
    }

    /// `reply:`: RFC 3261 §8.2.6 for the UA's last received request.
    fn reply(&mut self, r: &ReplyStep) -> Result<(), String> {
        let (req, from) = self
            .requests
            .get(&r.from)
            .and_then(|list| {
                list.iter().rev().find(|(m, _)| match &r.request {
                    Some(method) => m.method().is_some_and(|x| x.as_str() == method),
                    None => true,
                })
            })
            .cloned()
            .ok_or(format!(
                "{} has received no such request to reply to",
                r.from
            ))?;
        let lookup = |n: &str| self.lookup(n);
        let to_tag = r
            .to_tag
            .as_deref()
            .map(|t| template::substitute(t, &lookup))
            .transpose()?;
        let mut extra: Vec<(String, String)> = Vec::new();
        // §12.1.1: a UAS copies Record-Route into responses that create a dialog.
        if (101..300).contains(&r.status) {
            for rr in req.values(&HeaderName::RecordRoute) {
                extra.push(("Record-Route".to_owned(), rr.to_owned()));
            }
        }
        if let Some(h) = &r.headers {
            for line in template::substitute(h, &lookup)?.lines() {
                let line = line.trim_end();
                if line.is_empty() {
                    continue;
                }
                let (name, value) = line
                    .split_once(':')
                    .ok_or(format!("reply header line without a colon: {line}"))?;
                extra.push((name.trim().to_owned(), value.trim().to_owned()));
            }
        }
        let body = match &r.body {
            Some(b) => {
                let text = template::substitute(b, &lookup)?;
                text.replace("\r\n", "\n")
                    .replace('\n', "\r\n")
                    .into_bytes()
            }
            None => Vec::new(),
        };
        let extra_refs: Vec<(&str, &str)> = extra
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        let reason = r
            .reason
            .clone()
            .unwrap_or_else(|| trapezoid_core::message::reason_phrase(r.status).to_owned());
        // §18.2.1: the UAS's transport notes where the request really came from.
        let sent_by_is_source = req.top_via().is_some_and(|v| {
            v.host
                .trim_matches(['[', ']'])
                .parse::<std::net::IpAddr>()
                .ok()
                == Some(from.ip())
        });
        let received = (!sent_by_is_source).then_some(from.ip());
        let bytes = trapezoid_core::message::response(
            &req,
            r.status,
            &reason,
            to_tag.as_deref(),
            received,
            None,
            &extra_refs,
            &body,
        );
        self.send_now(&r.from, from, bytes)
    }
}

fn play(file: &str, scenario: &Scenario, options: &RunOptions) -> Outcome {
    let seed = options.seed.unwrap_or_else(|| scenario.seed());
    let mut wire = SimWire {
        world: World::new(&WorldConfig {
            seed,
            latency: scenario.network.latency(),
        }),
        uas: BTreeMap::new(),
        addrs: BTreeMap::new(),
        hosts: host_table(scenario),
    };
    for (name, host) in &scenario.hosts {
        match host {
            Host::Ua(u) => {
                wire.addrs.insert(name.clone(), u.address);
                let ua = wire.world.add_ua(name, u.address);
                wire.uas.insert(name.clone(), ua);
            }
            Host::Element(e) => {
                wire.addrs.insert(name.clone(), e.address);
                // Names are found the way a deployed element finds them: by asking its
                // driver (RFC 3263), which answers from the scenario's host table.
                let mut config = element_config(name, e, seed);
                config.proxy.dns = true;
                wire.world
                    .add_element(name, e.address, config, wire.hosts.clone());
            }
        }
    }
    let loss = options
        .loss_percent
        .unwrap_or(scenario.network.loss_percent);
    let duplicate = options
        .duplicate_percent
        .unwrap_or(scenario.network.duplicate_percent);
    if loss > 0 || duplicate > 0 {
        wire.world.set_faults(LinkFaults {
            loss: f64::from(loss.min(100)) / 100.0,
            duplicate: f64::from(duplicate.min(100)) / 100.0,
        });
    }
    let mut replay = format!("trapezoid run {file} --seed {seed}");
    // The faults are part of what replays the run (from the file or from the flags).
    if options.loss_percent.is_some() {
        replay.push_str(&format!(" --loss {loss}"));
    }
    if options.duplicate_percent.is_some() {
        replay.push_str(&format!(" --dup {duplicate}"));
    }
    play_on(file, scenario, seed, wire, replay)
}

/// Plays the steps of `scenario` over `wire`, then lets it run for [`SETTLE`] and fails the
/// run on a message a UA received that no step expected.
pub(crate) fn play_on<W: Wire>(
    file: &str,
    scenario: &Scenario,
    seed: u64,
    wire: W,
    replay: String,
) -> Outcome {
    let mut run = Run {
        wire,
        vars: BTreeMap::new(),
        requests: BTreeMap::new(),
        invites: BTreeMap::new(),
        responses: BTreeMap::new(),
        ids: Ids::new(mix(seed, "acks")),
        retransmissions: Vec::new(),
        taken: BTreeSet::new(),
    };
    // Random variables come from their own stream, so adding one does not shift the IDs
    // the elements draw.
    let mut ids = Ids::new(mix(seed, "vars"));
    for (name, def) in &scenario.vars {
        let value = match def {
            VarDef::Literal(s) => s.clone(),
            VarDef::Random { random } => match random {
                RandomKind::Branch => ids.branch(),
                RandomKind::Tag => ids.tag(),
                RandomKind::CallId => ids.call_id(),
                RandomKind::Token => ids.token(16),
            },
        };
        run.vars.insert(name.clone(), value);
    }
    let mut failure = None;
    for (i, step) in scenario.steps.iter().enumerate() {
        let result = match &step.kind {
            model::StepKind::Send(s) => run.send(s),
            model::StepKind::Expect(e) => run.expect(e),
            model::StepKind::WaitMs(ms) => run.tick_for(Duration::from_millis(*ms)),
            model::StepKind::Reply(r) => run.reply(r),
            model::StepKind::Ack(a) => run.ack(a),
            kind @ (model::StepKind::Crash(_)
            | model::StepKind::Restart(_)
            | model::StepKind::Partition(_)
            | model::StepKind::Heal(_)) => run.wire.fault(kind),
        };
        if let Err(report) = result {
            failure = Some(Failure {
                step: i + 1,
                line: step.line,
                report,
            });
            break;
        }
    }
    // A failure after the last step points at the last step.
    let last_line = scenario.steps.last().map_or(1, |s| s.line);
    if failure.is_none() {
        if let Err(report) = run.tick_for(SETTLE) {
            failure = Some(Failure {
                step: 0,
                line: last_line,
                report,
            });
        }
        // By name, as the simulator has always listed them.
        let uas: std::collections::BTreeSet<&String> = scenario
            .hosts
            .iter()
            .filter(|(_, h)| matches!(h, Host::Ua(u) if !u.silent))
            .map(|(n, _)| n)
            .collect();
        let mut unexpected = String::new();
        for name in uas {
            for r in run.wire.pending(name) {
                // A copy of a message a step took was not unexpected.
                if run.taken.contains(&(name.clone(), r.from, r.bytes.clone())) {
                    continue;
                }
                unexpected.push_str(&format!(
                    "unexpected message at {name} from {}:\n{}",
                    run.wire.name_of(r.from),
                    ladder::printable(&r.bytes)
                ));
            }
        }
        if failure.is_none() && !unexpected.is_empty() {
            failure = Some(Failure {
                step: 0,
                line: last_line,
                report: unexpected,
            });
        }
    }
    let lines = run.wire.lines();
    Outcome {
        name: scenario.name.clone(),
        file: file.to_owned(),
        seed,
        messages: lines.len(),
        sim_time: run.wire.now(),
        lines,
        hosts: scenario.hosts.iter().map(|(n, _)| n.clone()).collect(),
        failure,
        replay,
    }
}
