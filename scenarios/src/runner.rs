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
use trapezoid_sim::{Action, LinkFaults, Received, Rule, Ua, World, WorldConfig};

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
    /// Overrides the file's `network.jitter_ms`: extra delay `[min, max]` in milliseconds.
    pub jitter_ms: Option<(u64, u64)>,
    /// A fault schedule: the nth datagram of the run (1-based, every sender counted, in the
    /// order they are sent) is dropped or duplicated. What a property test shrinks a failure
    /// to.
    pub schedule: Vec<(u32, Scheduled)>,
}

/// What a [`RunOptions::schedule`] entry does to its datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scheduled {
    /// `--drop-datagram N`
    Drop,
    /// `--dup-datagram N`
    Duplicate,
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
    /// On a faulty network, a run whose script could not go on because a transaction timed
    /// out the way RFC 3261 says it must (a 408, or Timer B/F at a UA): what timed out. Such a
    /// run passes when the invariants hold; the step it stopped at is in `stopped_at`.
    pub ended_by_timeout: Option<String>,
    /// The step (1-based) a run that ended by a timeout stopped at.
    pub stopped_at: Option<usize>,
    /// Expected provisional responses the faults lost for good (see `expect`).
    pub provisionals_lost: usize,
}

impl Outcome {
    /// Whether every step passed.
    pub fn passed(&self) -> bool {
        self.failure.is_none()
    }

    /// What the faults did that a passing run allows: a transaction that timed out and
    /// stopped the script, provisional responses lost for good.
    pub fn note(&self) -> Option<String> {
        let mut notes = Vec::new();
        if let Some(why) = &self.ended_by_timeout {
            notes.push(format!(
                "ended by an RFC 3261 timeout at step {}: {why}",
                self.stopped_at.unwrap_or(0)
            ));
        }
        if self.provisionals_lost > 0 {
            notes.push(format!(
                "{} expected provisional responses were lost for good (RFC 3261 sends them once)",
                self.provisionals_lost
            ));
        }
        (!notes.is_empty()).then(|| notes.join("\n"))
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
        Some(format!(
            "{}\n\nladder up to the failure:\n{}\n{}\n\nseed {} — replay with: {}\n",
            self.headline()?,
            ladder::ladder(&self.lines),
            f.report.trim_end(),
            self.seed,
            self.replay_command()
        ))
    }

    /// Where a failed run failed: `FILE:LINE: step N failed`.
    pub fn headline(&self) -> Option<String> {
        let f = self.failure.as_ref()?;
        let step = if f.step == 0 {
            "after the last step".to_owned()
        } else {
            format!("step {}", f.step)
        };
        Some(format!("{}:{}: {step} failed", self.file, f.line))
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
    /// A crash, restart, partition or heal, at once; or a scripted fault rule from now on.
    fn fault(&mut self, kind: &model::StepKind) -> Result<(), String>;
    /// Whether every element has forgotten every request (no transaction, no response
    /// context); `None` where the wire cannot see inside its elements.
    fn quiet(&self) -> Option<bool> {
        None
    }
    /// What the finished run broke of RFC 3261's transaction rules, seen from outside.
    fn invariants(&self) -> Vec<String> {
        Vec::new()
    }
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
    /// Each element's address and timers, for the invariants.
    elements: Vec<crate::invariants::ElementTimers>,
}

impl SimWire {
    fn rule(&mut self, f: &model::FaultStep, action: Action) -> Result<(), String> {
        let from = match &f.from {
            Some(h) => Some(self.addrs_of(&[h])?[0].ip()),
            None => None,
        };
        let to = match &f.to {
            Some(h) => Some(self.addrs_of(&[h])?[0].ip()),
            None => None,
        };
        self.world.add_fault_rule(Rule {
            from,
            to,
            message: f.message.clone(),
            nth: f.nth,
            action,
        });
        Ok(())
    }

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
            model::StepKind::RestartWithBindings(h) => {
                let a = self.addrs_of(&[h])?;
                self.world.restart_with_bindings(a[0]);
            }
            model::StepKind::Hold(p) => {
                let a = self.addrs_of(p)?;
                self.world.hold(a[0], a[1]);
            }
            model::StepKind::Release(p) => {
                let a = self.addrs_of(p)?;
                self.world.release(a[0], a[1]);
            }
            model::StepKind::Drop(f) => self.rule(f, Action::Drop)?,
            model::StepKind::Duplicate(f) => self.rule(f, Action::Duplicate)?,
            model::StepKind::Delay(f) => self.rule(
                f,
                Action::Delay(Duration::from_millis(f.ms.unwrap_or_default())),
            )?,
            _ => return Err("not a fault".into()),
        }
        Ok(())
    }

    fn quiet(&self) -> Option<bool> {
        let states = self.world.element_states();
        Some(
            states
                .values()
                .all(|s| s.transactions == 0 && s.contexts == 0),
        )
    }

    fn invariants(&self) -> Vec<String> {
        let mut out = crate::invariants::check(&self.world.trace().entries(), &self.elements);
        for (addr, s) in self.world.element_states() {
            if s.transactions > 0 || s.contexts > 0 {
                out.push(format!(
                    "{} still holds {} transactions and {} response contexts once the network is quiet",
                    self.world.name_of(addr),
                    s.transactions,
                    s.contexts
                ));
            }
        }
        out
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
    /// The last response each UA received, and where it came from.
    responses: BTreeMap<String, (Message, SocketAddr)>,
    /// Branches for the ACKs `ack:` builds.
    ids: Ids,
    /// The requests each UA received, latest last (what `reply:` answers), and where they
    /// came from.
    requests: BTreeMap<String, Vec<(Message, SocketAddr)>>,
    /// Requests sent with `retransmit: true` whose client transaction is still waiting.
    retransmissions: Vec<Retransmission>,
    /// Every message an `expect` took, by receiver: a later copy (a retransmission, or a
    /// datagram the network duplicated) is the same message, and an `expect` matches a
    /// message once however many copies arrive.
    taken: BTreeSet<(String, CopyKey)>,
    /// The scripted UAs, by name.
    uas: Vec<String>,
    /// Whether the network has faults: expectations then allow what faults do (see
    /// [`Run::expect`]) and the run ends with the invariants.
    faulty: bool,
    /// The last response each UA sent to a request it took, by the request: sent again when
    /// the request comes again (RFC 3261 §17.2.1, §17.2.2).
    answers: BTreeMap<(String, CopyKey), (SocketAddr, Vec<u8>)>,
    /// The ACK each UA sent for a final response, by the response: sent again when the
    /// response comes again (§17.1.1.2 for a non-2xx, §13.2.2.4 for a 2xx).
    acks: BTreeMap<(String, CopyKey), (SocketAddr, Vec<u8>)>,
    /// Final responses to INVITEs, sent again until their ACK arrives.
    finals: Vec<FinalRetransmission>,
    /// Expectations of provisional responses passed over because of the faults.
    pub(crate) passed_over: usize,
    /// What timed out the way RFC 3261 says (a 408 arrived, or a UA's client transaction
    /// reached Timer B/F unanswered).
    timeouts: Vec<String>,
}

/// What makes two datagrams copies of one message. On a clean network a copy has the same
/// bytes from the same sender. Under faults a proxy may rebuild what it sends again (the ACK
/// for each copy of a 2xx gets its own branch), so a copy is the same kind of message of the
/// same transaction from the same sender.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum CopyKey {
    Bytes(SocketAddr, Vec<u8>),
    Fields(SocketAddr, String),
}

/// The transaction fields of a message (RFC 3261 §17.1.3, §17.2.3): method or status,
/// Call-ID, CSeq, top Via branch (not for an ACK, whose branch a proxy may choose anew for
/// each copy) and To tag.
fn transaction_fields(bytes: &[u8]) -> Option<String> {
    let m = Message::parse(bytes, &Limits::default()).ok()?;
    let cseq = m.cseq()?;
    let call_id = m.call_id()?;
    let to_tag = m.to().and_then(|t| t.tag().map(str::to_owned));
    let kind = match (m.status(), m.method()) {
        (Some(status), _) => status.to_string(),
        (None, Some(method)) => method.as_str().to_owned(),
        _ => return None,
    };
    let branch = if kind == "ACK" {
        None
    } else {
        m.top_via().and_then(|v| v.branch().map(str::to_owned))
    };
    Some(format!(
        "{kind} {call_id} {} {} {} {}",
        cseq.seq,
        cseq.method,
        branch.unwrap_or_default(),
        to_tag.unwrap_or_default()
    ))
}

/// Whether a 408 is among the messages waiting at a UA: a transaction ended by a timeout.
fn timed_out_408(waiting: &[Received]) -> bool {
    waiting.iter().any(|r| r.bytes.starts_with(b"SIP/2.0 408 "))
}

/// RFC 3261 §13.3.1.4 (2xx) and §17.2.1 Timer G (non-2xx): a scripted UAS sends its final
/// response to an INVITE again, at T1 doubling up to T2, until the ACK arrives or 64*T1 pass.
struct FinalRetransmission {
    ua: String,
    to: SocketAddr,
    bytes: Vec<u8>,
    /// The INVITE's Call-ID and CSeq number: what its ACK carries.
    call_id: String,
    cseq: u32,
    next: Duration,
    interval: Duration,
    deadline: Duration,
}

impl FinalRetransmission {
    fn acked_by(&self, bytes: &[u8]) -> bool {
        let Ok(m) = Message::parse(bytes, &Limits::default()) else {
            return false;
        };
        m.method().is_some_and(|x| x.as_str() == "ACK")
            && m.call_id() == Some(self.call_id.as_str())
            && m.cseq().map(|c| c.seq) == Some(self.cseq)
    }
}

/// How long an expectation waits at least on a faulty network: a message may need every
/// retransmission up to Timer B/F (64*T1) to get through.
const FAULTY_TIMEOUT: Duration = Duration::from_secs(33);

/// Longest the run waits, after the last step on a faulty network, for every element to
/// forget every request: Timer C and a final transaction's 64*T1, with room to spare.
const QUIET_MAX: Duration = Duration::from_secs(240);

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

    fn copy_key(&self, from: SocketAddr, bytes: &[u8]) -> CopyKey {
        if self.faulty {
            if let Some(k) = transaction_fields(bytes) {
                return CopyKey::Fields(from, k);
            }
        }
        CopyKey::Bytes(from, bytes.to_vec())
    }

    /// Sets aside the copies of messages already taken that arrived at the UAs, and does what
    /// a UA's transaction layer does with them: the last answer to a request again, the ACK
    /// of a final response again. Final responses to INVITEs go again on their timers.
    fn transaction_layer(&mut self) -> Result<(), String> {
        for ua in self.uas.clone() {
            let pending = self.wire.pending(&ua);
            for r in pending {
                let key = (ua.clone(), self.copy_key(r.from, &r.bytes));
                if !self.taken.contains(&key) {
                    continue;
                }
                self.wire
                    .take_where(&ua, &mut |p| p.from == r.from && p.bytes == r.bytes);
                self.finals
                    .retain(|f| !(f.ua == ua && f.acked_by(&r.bytes)));
                for again in [self.answers.get(&key), self.acks.get(&key)]
                    .into_iter()
                    .flatten()
                    .cloned()
                    .collect::<Vec<_>>()
                {
                    self.wire.queue(&ua, again.0, again.1)?;
                }
            }
        }
        let now = self.wire.now();
        let mut i = 0;
        while i < self.finals.len() {
            let f = &self.finals[i];
            let acked = self
                .wire
                .pending(&f.ua)
                .iter()
                .any(|p| f.acked_by(&p.bytes));
            if acked || now >= f.deadline {
                if !acked {
                    // §13.3.1.4: the dialog is confirmed but the session should end; the
                    // scripted UA stops here (it sends no BYE of its own).
                    let status = String::from_utf8_lossy(f.bytes.get(8..11).unwrap_or_default())
                        .into_owned();
                    self.timeouts.push(format!(
                        "{}'s {status} to an INVITE got no ACK within 64*T1",
                        f.ua
                    ));
                }
                self.finals.remove(i);
                continue;
            }
            if now + TICK >= f.next {
                let (ua, to, bytes) = (f.ua.clone(), f.to, f.bytes.clone());
                self.wire.queue(&ua, to, bytes)?;
                let f = &mut self.finals[i];
                f.interval = (f.interval * 2).min(UA_T2);
                f.next = now + TICK + f.interval;
            }
            i += 1;
        }
        Ok(())
    }

    /// One step of the wire, then the scripted UAs' transaction layer and retransmission
    /// timers.
    fn step(&mut self) -> Result<(), String> {
        self.wire.step()?;
        self.transaction_layer()?;
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
                if !heard.contains(&true) {
                    self.timeouts.push(format!(
                        "{}'s {} got no final response by Timer {} (64*T1)",
                        r.ua,
                        r.method,
                        if r.method == "INVITE" { "B" } else { "F" }
                    ));
                }
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

    /// Whether a transaction of the run timed out the way RFC 3261 says: a 408 arrived at a
    /// UA (an element's Timer B/F or C, §16.7 step 6, §16.8), or a UA's own client transaction
    /// reached Timer B/F unanswered.
    fn timed_out(&self) -> Option<String> {
        for ua in &self.uas {
            let got_408 = self
                .wire
                .pending(ua)
                .iter()
                .filter_map(|r| Message::parse(&r.bytes, &Limits::default()).ok())
                .chain(self.responses.get(ua).map(|(m, _)| m.clone()))
                .find(|m| m.status() == Some(408));
            if let Some(m) = got_408 {
                let cseq = m.cseq().map(|c| format!("{} {}", c.seq, c.method));
                return Some(format!(
                    "{ua} got 408 {} ({})",
                    m.reason().unwrap_or_default(),
                    cseq.unwrap_or_default()
                ));
            }
        }
        self.timeouts.first().cloned()
    }

    /// A script that stopped leaves final responses to INVITEs unacknowledged: the UAs'
    /// transactions acknowledge each non-2xx one (§17.1.1.3), as the `ack:` step would.
    fn acknowledge_abandoned(&mut self) -> Result<(), String> {
        for ua in self.uas.clone() {
            let Some((invite, to)) = self.invites.get(&ua).cloned() else {
                continue;
            };
            for r in self.wire.pending(&ua) {
                let Ok(m) = Message::parse(&r.bytes, &Limits::default()) else {
                    continue;
                };
                let final_to_invite = m.status().is_some_and(|s| s >= 300)
                    && m.cseq().is_some_and(|c| c.method == "INVITE")
                    && m.call_id() == invite.call_id();
                if !final_to_invite {
                    continue;
                }
                if let Some(ack) = invite.ack_for(&m) {
                    self.wire
                        .take_where(&ua, &mut |p| p.from == r.from && p.bytes == r.bytes);
                    let key = self.copy_key(r.from, &r.bytes);
                    self.taken.insert((ua.clone(), key.clone()));
                    self.acks.insert((ua.clone(), key), (to, ack.clone()));
                    self.wire.queue(&ua, to, ack)?;
                }
            }
        }
        Ok(())
    }

    /// Steps until the elements hold nothing and the UAs send nothing more, at most
    /// [`QUIET_MAX`].
    fn settle_quiet(&mut self) -> Result<(), String> {
        let until = self.wire.now() + QUIET_MAX;
        while self.wire.now() < until {
            if self.wire.quiet() == Some(true)
                && self.retransmissions.is_empty()
                && self.finals.is_empty()
            {
                return Ok(());
            }
            self.step()?;
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

    /// A scripted ACK (`send:` or `ack:`) acknowledges the UA's last response when their
    /// Call-ID and CSeq number agree: every later copy of that response gets the same ACK.
    fn note_ack(&mut self, ua: &str, to: SocketAddr, bytes: &[u8]) {
        let Ok(ack) = Message::parse(bytes, &Limits::default()) else {
            return;
        };
        if ack.method().is_none_or(|m| m.as_str() != "ACK") {
            return;
        }
        let Some((response, from)) = self.responses.get(ua) else {
            return;
        };
        let same = response.call_id() == ack.call_id()
            && response.cseq().map(|c| c.seq) == ack.cseq().map(|c| c.seq);
        if same {
            let key = self.copy_key(*from, response.as_bytes());
            self.acks.insert((ua.to_owned(), key), (to, bytes.to_vec()));
        }
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
        // Every request that starts a client transaction goes again on its timers, unless the
        // step says not to; one that cannot (no branch, unparsable: a test of bad input) is
        // sent once unless the step insists.
        let retransmission = if s.retransmit != Some(false) {
            let insist = s.retransmit == Some(true);
            let parsed = Message::parse(&bytes, &Limits::default());
            let m = match parsed {
                Ok(m) => Some(m),
                Err(e) if insist => {
                    return Err(format!("a message to retransmit must parse: {}", e.reason))
                }
                Err(_) => None,
            };
            let starts_transaction = m
                .as_ref()
                .is_some_and(|m| m.is_request() && m.method().is_some_and(|x| x.as_str() != "ACK"));
            let branch = m
                .as_ref()
                .and_then(|m| m.top_via().and_then(|v| v.branch().map(str::to_owned)));
            let method = m
                .as_ref()
                .and_then(|m| m.cseq().map(|c| c.method.to_owned()));
            match (starts_transaction, branch, method) {
                (true, Some(branch), Some(method)) => Some((branch, method)),
                _ if insist => {
                    return Err("a message to retransmit needs a Via branch and a CSeq".into())
                }
                _ => None,
            }
        } else {
            None
        };
        let retransmission = if let Some((branch, method)) = retransmission {
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
        self.note_ack(&s.from, to, &bytes);
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

    /// The message as the expectation reads it (the wire's addresses mapped back to the
    /// scenario's under `drive`), and what its checks capture; or why it does not match.
    fn judge(
        &self,
        e: &ExpectStep,
        got: &Received,
    ) -> Result<(Message, Vec<(String, String)>), String> {
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
        // Replies and ACKs use the real message; the checks read the mapped one.
        let seen = self.wire.view(&e.at, e.from.as_deref(), msg.as_bytes());
        let view = if seen == msg.as_bytes() {
            msg.clone()
        } else {
            Message::parse(&seen, &Limits::default()).unwrap_or_else(|_| msg.clone())
        };
        let lookup = |n: &str| self.lookup(n);
        match matcher::check(e, &View { msg: &view }, &lookup) {
            Ok(captures) => Ok((msg, captures)),
            Err(mismatches) => Err(format!(
                "{}{}",
                matcher::diff_report(e, &ladder::printable(view.as_bytes()), &mismatches),
                self.wire.legend()
            )),
        }
    }

    /// `expect:`. On a clean network the next message to arrive at the UA (from the sender, if
    /// named) must match. On a faulty network messages may come late, out of order or never,
    /// as RFC 3261 allows: the expectation takes the first waiting message that matches, waits
    /// at least [`FAULTY_TIMEOUT`], and an expected provisional response, which nobody sends
    /// again (§17.2.1), is passed over once a response with a higher status has arrived or
    /// its time is up.
    fn expect(&mut self, e: &ExpectStep) -> Result<(), String> {
        let from = match &e.from {
            Some(f) => Some(self.wire.addr_of(f).ok_or(format!("unknown host {f}"))?),
            None => None,
        };
        let provisional = e.status.is_some_and(|s| s < 200);
        let mut timeout = e.timeout();
        // A lost provisional response is lost for good: waiting for Timer B would only stall
        // the script while the other side's timers run out.
        if self.faulty && !provisional {
            timeout = timeout.max(FAULTY_TIMEOUT);
        }
        let deadline = self.wire.now() + timeout;
        let (got, judged) = loop {
            // Copies of messages already taken are set aside first.
            self.transaction_layer()?;
            let candidates: Vec<Received> = self
                .wire
                .pending(&e.at)
                .into_iter()
                .filter(|r| from.is_none_or(|f| f == r.from))
                .collect();
            let pick = if self.faulty {
                let matching = candidates
                    .iter()
                    .find_map(|r| self.judge(e, r).ok().map(|j| (r.clone(), Ok(j))));
                if matching.is_none() && provisional {
                    let overtaken = candidates.iter().any(|r| {
                        Message::parse(&r.bytes, &Limits::default())
                            .ok()
                            .and_then(|m| m.status())
                            .is_some_and(|s| Some(s) > e.status)
                    });
                    if overtaken || self.wire.now() >= deadline {
                        self.passed_over += 1;
                        return Ok(());
                    }
                }
                match matching {
                    Some(m) => Some(m),
                    // Out of time, or a 408 that ends the transaction: the first candidate
                    // explains what arrived instead, and stays where it is (it may be the 408
                    // that ends the run).
                    None if self.wire.now() >= deadline || timed_out_408(&candidates) => {
                        if let Some(Err(report)) = candidates.first().map(|r| self.judge(e, r)) {
                            return Err(report);
                        }
                        None
                    }
                    None => None,
                }
            } else {
                candidates.first().map(|r| (r.clone(), self.judge(e, r)))
            };
            if let Some((r, judged)) = pick {
                self.wire
                    .take_where(&e.at, &mut |p| p.from == r.from && p.bytes == r.bytes);
                let key = self.copy_key(r.from, &r.bytes);
                self.taken.insert((e.at.clone(), key));
                break (r, judged);
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
        // A response taken here is no longer pending, so its request's timers learn of it now;
        // an ACK taken here ends its final response's retransmissions.
        self.retransmissions
            .retain(|r| r.answered_by(&got) != Some(true));
        for r in &mut self.retransmissions {
            if r.answered_by(&got) == Some(false) {
                r.interval = UA_T2;
            }
        }
        self.finals
            .retain(|f| !(f.ua == e.at && f.acked_by(&got.bytes)));
        let (msg, captures) = judged?;
        for (k, v) in captures {
            self.vars.insert(k, v);
        }
        if msg.is_request() {
            self.requests
                .entry(e.at.clone())
                .or_default()
                .push((msg, got.from));
        } else {
            self.responses.insert(e.at.clone(), (msg, got.from));
        }
        Ok(())
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
        let (response, _) = self.responses.get(&a.from).cloned().ok_or(format!(
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
        self.note_ack(&a.from, to, &bytes);
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
        let invite = req.method().is_some_and(|m| m.as_str() == "INVITE");
        let key = (r.from.clone(), self.copy_key(from, req.as_bytes()));
        if invite && r.status >= 200 {
            // §13.3.1.4 / Timer G: the final response goes again until the ACK comes. A
            // copy of the INVITE after a 2xx is absorbed (RFC 6026 §7.1, Accepted).
            let now = self.wire.now() + TICK;
            self.finals.push(FinalRetransmission {
                ua: r.from.clone(),
                to: from,
                bytes: bytes.clone(),
                call_id: req.call_id().unwrap_or_default().to_owned(),
                cseq: req.cseq().map(|c| c.seq).unwrap_or_default(),
                next: now + UA_T1,
                interval: UA_T1,
                deadline: now + UA_T1 * 64,
            });
            if r.status < 300 {
                self.answers.remove(&key);
            } else {
                self.answers.insert(key, (from, bytes.clone()));
            }
        } else {
            self.answers.insert(key, (from, bytes.clone()));
        }
        self.send_now(&r.from, from, bytes)
    }
}

fn percent(p: u8) -> f64 {
    f64::from(p.min(100)) / 100.0
}

fn jitter(ms: Option<(u64, u64)>) -> (Duration, Duration) {
    let (min, max) = ms.unwrap_or_default();
    (Duration::from_millis(min), Duration::from_millis(max))
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
        elements: Vec::new(),
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
                wire.elements.push(crate::invariants::ElementTimers {
                    name: name.clone(),
                    addr: e.address,
                    t1: config.timers.t1,
                    t2: config.timers.t2,
                });
                wire.world
                    .add_element(name, e.address, config, wire.hosts.clone());
            }
        }
    }
    let net = &scenario.network;
    let loss = options.loss_percent.unwrap_or(net.loss_percent);
    let duplicate = options.duplicate_percent.unwrap_or(net.duplicate_percent);
    let jitter_ms = options.jitter_ms.or(net.jitter_ms);
    let every_link = LinkFaults {
        loss: percent(loss),
        duplicate: percent(duplicate),
        jitter: jitter(jitter_ms),
    };
    let mut faulty = every_link != LinkFaults::default();
    if faulty {
        wire.world.set_faults(every_link);
    }
    for l in &net.links {
        let (Some(from), Some(to)) = (wire.addrs.get(&l.from), wire.addrs.get(&l.to)) else {
            continue;
        };
        let f = LinkFaults {
            loss: percent(l.loss_percent),
            duplicate: percent(l.duplicate_percent),
            jitter: jitter(l.jitter_ms),
        };
        faulty |= f != LinkFaults::default();
        wire.world.set_link_faults(*from, *to, f);
    }
    for (nth, what) in &options.schedule {
        wire.world.add_fault_rule(Rule {
            from: None,
            to: None,
            message: None,
            nth: Some(*nth),
            action: match what {
                Scheduled::Drop => Action::Drop,
                Scheduled::Duplicate => Action::Duplicate,
            },
        });
        faulty = true;
    }
    faulty |= scenario.steps.iter().any(|s| {
        matches!(
            s.kind,
            model::StepKind::Drop(_) | model::StepKind::Duplicate(_) | model::StepKind::Delay(_)
        )
    });
    let mut replay = format!("trapezoid run {file} --seed {seed}");
    // The faults are part of what replays the run (from the file or from the flags).
    if options.loss_percent.is_some() {
        replay.push_str(&format!(" --loss {loss}"));
    }
    if options.duplicate_percent.is_some() {
        replay.push_str(&format!(" --dup {duplicate}"));
    }
    if let Some((min, max)) = options.jitter_ms {
        replay.push_str(&format!(" --jitter {min}..{max}ms"));
    }
    for (nth, what) in &options.schedule {
        let flag = match what {
            Scheduled::Drop => "drop",
            Scheduled::Duplicate => "dup",
        };
        replay.push_str(&format!(" --{flag}-datagram {nth}"));
    }
    play_on(file, scenario, seed, wire, replay, faulty)
}

/// Plays the steps of `scenario` over `wire`, then lets it run for [`SETTLE`] and fails the
/// run on a message a UA received that no step expected.
pub(crate) fn play_on<W: Wire>(
    file: &str,
    scenario: &Scenario,
    seed: u64,
    wire: W,
    replay: String,
    faulty: bool,
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
        uas: scenario
            .hosts
            .iter()
            .filter(|(_, h)| matches!(h, Host::Ua(_)))
            .map(|(n, _)| n.clone())
            .collect(),
        faulty,
        answers: BTreeMap::new(),
        acks: BTreeMap::new(),
        finals: Vec::new(),
        passed_over: 0,
        timeouts: Vec::new(),
    };
    // Random variables come from their own stream, so adding one does not shift the IDs
    // the elements draw.
    let mut ids = Ids::new(mix(seed, "vars"));
    for (name, def) in &scenario.vars {
        let value = match def {
            VarDef::Literal(s) => s.clone(),
            VarDef::Random { random } => match random {
                RandomKind::Branch => ids.branch(),
                RandomKind::Tag => ids.tag().as_str().to_owned(),
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
            | model::StepKind::Heal(_)
            | model::StepKind::RestartWithBindings(_)
            | model::StepKind::Hold(_)
            | model::StepKind::Release(_)
            | model::StepKind::Drop(_)
            | model::StepKind::Duplicate(_)
            | model::StepKind::Delay(_)) => run.wire.fault(kind),
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
    // On a faulty network a transaction may time out as RFC 3261 says it must; the script
    // then cannot go on, and the run ends there, still held to the invariants.
    let mut ended_by_timeout = None;
    let mut stopped_at = None;
    if faulty && failure.is_some() {
        if let Some(why) = run.timed_out() {
            stopped_at = failure.take().map(|f| f.step);
            ended_by_timeout = Some(why);
            run.acknowledge_abandoned().unwrap_or_else(|e| {
                failure = Some(Failure {
                    step: 0,
                    line: 0,
                    report: e,
                })
            });
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
        // On a faulty network the run goes on until every element has forgotten every
        // request, and then RFC 3261's transaction rules are checked on what happened.
        if failure.is_none() && faulty && run.wire.quiet().is_some() {
            if let Err(report) = run.settle_quiet() {
                failure = Some(Failure {
                    step: 0,
                    line: last_line,
                    report,
                });
            }
            let broken = run.wire.invariants();
            if failure.is_none() && !broken.is_empty() {
                failure = Some(Failure {
                    step: 0,
                    line: last_line,
                    report: format!("invariants broken:\n  {}\n", broken.join("\n  ")),
                });
            }
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
                if run
                    .taken
                    .contains(&(name.clone(), run.copy_key(r.from, &r.bytes)))
                {
                    continue;
                }
                // Under faults a provisional response may come after the final one, and a
                // UA's transaction ignores it (§17.1.1.2).
                if faulty
                    && Message::parse(&r.bytes, &Limits::default())
                        .ok()
                        .and_then(|m| m.status())
                        .is_some_and(|s| s < 200)
                {
                    continue;
                }
                unexpected.push_str(&format!(
                    "unexpected message at {name} from {}:\n{}",
                    run.wire.name_of(r.from),
                    ladder::printable(&r.bytes)
                ));
            }
        }
        if failure.is_none() && ended_by_timeout.is_none() && !unexpected.is_empty() {
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
        ended_by_timeout,
        stopped_at,
        provisionals_lost: run.passed_over,
    }
}
