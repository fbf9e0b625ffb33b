//! # trapezoid-sim: the simulated network
//!
//! A [`World`] is a turmoil simulation with a fixed seed, a fixed epoch, a 1 ms tick and a
//! fixed per-link latency (goldens must not churn). Elements run the real core through the
//! real run loop of `trapezoid-server` over turmoil sockets; scripted UAs are hosts whose
//! sockets are driven from outside, one tick at a time, by whoever holds the [`World`]
//! (the scenario runner). Every datagram sent or received is recorded in the [`Trace`].
//!
//! The simulator knows hosts and datagrams, not YAML.

pub mod faults;
pub mod trace;

use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, UNIX_EPOCH};

use trapezoid_core::registrar::Binding;
use trapezoid_core::time::Instant;
use trapezoid_core::{Config, Event, Proxy, Transmit, Transport};
use trapezoid_server::dns::TableResolver;
use trapezoid_server::{Arrival, Direction, Driver, Network, Tap};

pub use faults::{Action, Faults, LinkFaults, Rule};
pub use trace::{Trace, TraceEntry, TraceKind};

/// The simulation's wall-clock origin: fixed, so nothing depends on when a run happens.
/// (2003-12-01, the month RFC 3665 was published.)
pub const EPOCH_SECS: u64 = 1_070_236_800;

/// Longest a simulation may run in virtual time.
pub const DURATION_MAX: Duration = Duration::from_secs(6 * 3600);

/// A datagram a scripted UA received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Received {
    /// Sim time of arrival.
    pub at: Duration,
    /// Sender.
    pub from: SocketAddr,
    /// Bytes.
    pub bytes: Vec<u8>,
}

#[derive(Default)]
struct UaState {
    outbox: RefCell<VecDeque<(SocketAddr, Vec<u8>)>>,
    inbox: RefCell<VecDeque<Received>>,
    /// Wakes the UA's host when the outbox is filled, so that an idle UA costs nothing per
    /// tick.
    filled: tokio::sync::Notify,
}

/// A handle on a scripted UA's socket.
#[derive(Clone)]
pub struct Ua {
    addr: SocketAddr,
    state: Rc<UaState>,
}

impl Ua {
    /// Its address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Queues a datagram; the host sends it on the next tick.
    pub fn send(&self, to: SocketAddr, bytes: Vec<u8>) {
        self.state.outbox.borrow_mut().push_back((to, bytes));
        self.state.filled.notify_one();
    }

    /// Takes the oldest received datagram matching `pred`, leaving others in order.
    pub fn take_where(&self, mut pred: impl FnMut(&Received) -> bool) -> Option<Received> {
        let mut inbox = self.state.inbox.borrow_mut();
        let i = inbox.iter().position(&mut pred)?;
        inbox.remove(i)
    }

    /// Datagrams received and not yet taken.
    pub fn pending(&self) -> Vec<Received> {
        self.state.inbox.borrow().iter().cloned().collect()
    }

    /// Whether its outbox is empty (everything queued has gone out).
    pub fn idle(&self) -> bool {
        self.state.outbox.borrow().is_empty()
    }
}

/// Puts one datagram on the wire as the fault layer decides: each copy at once or after its
/// extra delay (a task of the sending host, so a crash loses what it had not sent yet).
async fn send_with_faults(
    socket: &Rc<turmoil::net::UdpSocket>,
    faults: &RefCell<Faults>,
    from: SocketAddr,
    to: SocketAddr,
    bytes: &[u8],
) -> std::io::Result<()> {
    // The trace has recorded the send already; a lost copy never arrives.
    let delays = faults.borrow_mut().fate(from.ip(), to.ip(), bytes);
    for delay in delays {
        if delay.is_zero() {
            socket.send_to(bytes, to).await?;
        } else {
            let socket = socket.clone();
            let bytes = bytes.to_vec();
            tokio::task::spawn_local(async move {
                tokio::time::sleep(delay).await;
                let _ = socket.send_to(&bytes, to).await;
            });
        }
    }
    Ok(())
}

/// turmoil UDP as a [`Network`] for the run loop.
pub struct SimNetwork {
    socket: Rc<turmoil::net::UdpSocket>,
    local: SocketAddr,
    faults: Rc<RefCell<Faults>>,
}

impl Network for SimNetwork {
    async fn send(&self, t: Transmit) -> std::io::Result<()> {
        send_with_faults(&self.socket, &self.faults, self.local, t.remote, &t.bytes).await
    }

    async fn recv(&self, buf: &mut [u8]) -> std::io::Result<Arrival> {
        let (len, remote) = self.socket.recv_from(buf).await?;
        Ok(Arrival {
            local: self.local,
            remote,
            transport: Transport::Udp,
            len,
        })
    }
}

/// One scripted UA's socket: sends what the director queues, keeps what arrives.
async fn ua_socket(
    addr: SocketAddr,
    socket: Rc<turmoil::net::UdpSocket>,
    state: Rc<UaState>,
    trace: Trace,
    faults: Rc<RefCell<Faults>>,
) -> std::io::Result<()> {
    let mut buf = vec![0u8; trapezoid_server::DATAGRAM_BYTES_MAX];
    loop {
        loop {
            // Pop first: the borrow must not live across the await.
            let next = state.outbox.borrow_mut().pop_front();
            let Some((to, bytes)) = next else { break };
            trace.record(sim_now(), TraceKind::Sent, addr, to, &bytes);
            send_with_faults(&socket, &faults, addr, to, &bytes).await?;
        }
        // Wake on a datagram, or when the director (between ticks) fills the outbox: it
        // goes out on the next tick, as it would with a UA polling every tick.
        let received = tokio::select! {
            biased;
            r = socket.recv_from(&mut buf) => Some(r),
            () = state.filled.notified() => None,
        };
        if let Some(Ok((n, from))) = received {
            let bytes = buf[..n].to_vec();
            trace.record(sim_now(), TraceKind::Received, from, addr, &bytes);
            state.inbox.borrow_mut().push_back(Received {
                at: sim_now(),
                from,
                bytes,
            });
        }
    }
}

/// Sim time as the trace records it: one clock for every host, restarts included.
fn sim_now() -> Duration {
    turmoil::sim_elapsed().unwrap_or_default()
}

/// An element's stored bindings, by AOR, each with when it lapses in sim time: what a
/// registrar with a database (`serve --db`) finds again after a crash.
type Store = BTreeMap<String, Vec<(Binding, Duration)>>;

/// An element's store, and whether its next start reads it back.
type StoredBindings = (Rc<RefCell<Store>>, Rc<std::cell::Cell<bool>>);

struct SimTap {
    trace: Trace,
    events: Rc<RefCell<Vec<(Duration, Event)>>>,
    /// Where the element writes its bindings, as `serve` writes them to SQLite.
    store: Rc<RefCell<Store>>,
    /// This element's live state, as of its last drained input.
    state: Rc<RefCell<BTreeMap<SocketAddr, ElementState>>>,
    addr: SocketAddr,
}

/// What an element holds, as its core counts it: when both are zero it has forgotten every
/// request it saw (RFC 3261 §17: every transaction ends).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ElementState {
    /// Live transactions, client and server.
    pub transactions: usize,
    /// Live proxy response contexts (§16).
    pub contexts: usize,
}

impl Tap for SimTap {
    fn datagram(
        &mut self,
        _: Instant,
        dir: Direction,
        local: SocketAddr,
        remote: SocketAddr,
        bytes: &[u8],
    ) {
        let (kind, from, to) = match dir {
            Direction::In => (TraceKind::Received, remote, local),
            Direction::Out => (TraceKind::Sent, local, remote),
        };
        self.trace.record(sim_now(), kind, from, to, bytes);
    }

    fn event(&mut self, now: Instant, event: &Event, proxy: &Proxy) {
        self.events.borrow_mut().push((sim_now(), event.clone()));
        if let Event::Registered { aor, .. }
        | Event::Unregistered { aor, .. }
        | Event::BindingExpired { aor, .. } = event
        {
            let at = sim_now();
            let bindings: Vec<(Binding, Duration)> = proxy
                .registrar()
                .location()
                .bindings(aor, now)
                .into_iter()
                .map(|b| (b.clone(), at + b.expires_at.saturating_since(now)))
                .collect();
            let mut store = self.store.borrow_mut();
            if bindings.is_empty() {
                store.remove(aor);
            } else {
                store.insert(aor.clone(), bindings);
            }
        }
    }

    fn drained(&mut self, _: Instant, proxy: &Proxy) {
        self.state.borrow_mut().insert(
            self.addr,
            ElementState {
                transactions: proxy.transaction_count(),
                contexts: proxy.context_count(),
            },
        );
    }
}

/// Settings of a world.
#[derive(Clone, Debug)]
pub struct WorldConfig {
    /// turmoil's RNG seed.
    pub seed: u64,
    /// One-way latency of every link (fixed, so runs are identical for every seed).
    pub latency: Duration,
}

/// A simulated network of elements and scripted UAs.
pub struct World {
    sim: turmoil::Sim<'static>,
    trace: Trace,
    events: Rc<RefCell<Vec<(Duration, Event)>>>,
    names: BTreeMap<SocketAddr, String>,
    faults: Rc<RefCell<Faults>>,
    state: Rc<RefCell<BTreeMap<SocketAddr, ElementState>>>,
    /// Each element's stored bindings, and whether its next start reads them back.
    stores: BTreeMap<SocketAddr, StoredBindings>,
}

impl World {
    /// An empty world.
    pub fn new(config: &WorldConfig) -> Self {
        let sim = turmoil::Builder::new()
            .rng_seed(config.seed)
            .epoch(UNIX_EPOCH + Duration::from_secs(EPOCH_SECS))
            .tick_duration(Duration::from_millis(1))
            .simulation_duration(DURATION_MAX)
            .min_message_latency(config.latency)
            .max_message_latency(config.latency)
            .udp_capacity(4096)
            .build();
        World {
            sim,
            trace: Trace::default(),
            events: Rc::default(),
            names: BTreeMap::new(),
            faults: Rc::new(RefCell::new(Faults::new(config.seed))),
            state: Rc::default(),
            stores: BTreeMap::new(),
        }
    }

    /// Adds an element running the core with `config` on `addr`; `names` answers its DNS questions (RFC 3263), as the scenario's host table.
    pub fn add_element(
        &mut self,
        name: &str,
        addr: SocketAddr,
        config: Config,
        names: Vec<(String, SocketAddr)>,
    ) {
        self.names.insert(addr, name.to_owned());
        let trace = self.trace.clone();
        let events = self.events.clone();
        let faults = self.faults.clone();
        let state = self.state.clone();
        let store: Rc<RefCell<Store>> = Rc::default();
        let keep = Rc::new(std::cell::Cell::new(false));
        self.stores.insert(addr, (store.clone(), keep.clone()));
        self.sim.host(addr.ip(), move || {
            let config = config.clone();
            let names = names.clone();
            let faults = faults.clone();
            // A restart reads the stored bindings back only when asked to
            // (`World::restart_with_bindings`); otherwise it starts empty.
            let restored: Vec<(String, Vec<Binding>)> = if keep.replace(false) {
                let now = sim_now();
                store
                    .borrow()
                    .iter()
                    .map(|(aor, list)| {
                        let live = list
                            .iter()
                            .filter(|(_, at)| *at > now)
                            .map(|(b, at)| {
                                let mut b = b.clone();
                                b.expires_at = Instant::from_duration(*at - now);
                                b
                            })
                            .collect();
                        (aor.clone(), live)
                    })
                    .collect()
            } else {
                store.borrow_mut().clear();
                Vec::new()
            };
            let mut tap = SimTap {
                trace: trace.clone(),
                events: events.clone(),
                store: store.clone(),
                state: state.clone(),
                addr,
            };
            async move {
                let socket =
                    Rc::new(turmoil::net::UdpSocket::bind(("0.0.0.0", addr.port())).await?);
                let net = SimNetwork {
                    socket,
                    local: addr,
                    faults: faults.clone(),
                };
                // RFC 3263 questions are answered from the scenario's host table, at once.
                let resolver = TableResolver {
                    table: names.clone(),
                };
                let mut proxy = Proxy::new(config);
                for (aor, bindings) in restored {
                    proxy.restore_bindings(&aor, bindings);
                }
                Driver::new(&net, &mut proxy, &mut tap, resolver)
                    .run_until(std::future::pending::<()>())
                    .await?;
                Ok(())
            }
        });
    }

    /// Adds a scripted UA on `addr`.
    pub fn add_ua(&mut self, name: &str, addr: SocketAddr) -> Ua {
        self.add_uas(&[(name, addr)]).remove(0)
    }

    /// Adds scripted UAs that share one host (one IP address, each UA on its own port), as
    /// SIPp runs many UAs in one process. turmoil's per-tick cost grows with the number of
    /// hosts, so a load of many UAs is much faster this way.
    ///
    /// # Panics
    /// If the addresses are not all on one IP, or a port repeats.
    pub fn add_uas(&mut self, uas: &[(&str, SocketAddr)]) -> Vec<Ua> {
        let ip = uas.first().expect("at least one UA").1.ip();
        assert!(uas.iter().all(|(_, a)| a.ip() == ip), "one host, one IP");
        let mut handles = Vec::new();
        for (name, addr) in uas {
            assert!(
                !handles.iter().any(|u: &Ua| u.addr == *addr),
                "{addr} twice"
            );
            self.names.insert(*addr, (*name).to_owned());
            handles.push(Ua {
                addr: *addr,
                state: Rc::new(UaState::default()),
            });
        }
        let trace = self.trace.clone();
        let faults = self.faults.clone();
        let sockets: Vec<(SocketAddr, Rc<UaState>)> =
            handles.iter().map(|u| (u.addr, u.state.clone())).collect();
        self.sim.client(ip, async move {
            let mut tasks = Vec::new();
            for (addr, state) in sockets {
                let socket =
                    Rc::new(turmoil::net::UdpSocket::bind(("0.0.0.0", addr.port())).await?);
                tasks.push(tokio::task::spawn_local(ua_socket(
                    addr,
                    socket,
                    state,
                    trace.clone(),
                    faults.clone(),
                )));
            }
            for t in tasks {
                t.await??;
            }
            Ok(())
        });
        handles
    }

    /// Faults for every link without faults of its own (loss, duplication).
    pub fn set_faults(&mut self, f: LinkFaults) {
        self.faults.borrow_mut().set_every_link(f);
    }

    /// Faults for datagrams from `from` to `to` (one direction).
    pub fn set_link_faults(&mut self, from: SocketAddr, to: SocketAddr, f: LinkFaults) {
        self.faults.borrow_mut().set_link(from.ip(), to.ip(), f);
    }

    /// Adds a scripted fault rule (see [`Rule`]); it sees the datagrams sent from now on.
    pub fn add_fault_rule(&mut self, rule: Rule) {
        self.faults.borrow_mut().add_rule(rule);
    }

    /// What each running element holds, by address, as of its last drained input.
    pub fn element_states(&self) -> BTreeMap<SocketAddr, ElementState> {
        self.state.borrow().clone()
    }

    /// Crashes the element on `addr`: its software stops, its state is lost and datagrams
    /// sent to it are dropped until [`World::restart`].
    pub fn crash(&mut self, addr: SocketAddr) {
        self.sim.crash(addr.ip());
        // A crashed element holds nothing; a restarted one reports when it has started.
        self.state.borrow_mut().remove(&addr);
    }

    /// Starts the element on `addr` again from scratch (a fresh core with its config).
    pub fn restart(&mut self, addr: SocketAddr) {
        self.sim.bounce(addr.ip());
    }

    /// Starts the element on `addr` again with the bindings it had stored, as a registrar
    /// with a database does after a crash (`serve --db`); bindings that lapsed meanwhile are
    /// gone. Its transactions and nonces are lost all the same.
    pub fn restart_with_bindings(&mut self, addr: SocketAddr) {
        if let Some((_, keep)) = self.stores.get(&addr) {
            keep.set(true);
        }
        self.sim.bounce(addr.ip());
    }

    /// Holds the datagrams between two hosts (both ways) in the network until
    /// [`World::release`]: they are delayed, not lost.
    pub fn hold(&mut self, a: SocketAddr, b: SocketAddr) {
        self.sim.hold(a.ip(), b.ip());
    }

    /// Delivers what [`World::hold`] kept, and lets datagrams through again.
    pub fn release(&mut self, a: SocketAddr, b: SocketAddr) {
        self.sim.release(a.ip(), b.ip());
    }

    /// Cuts the link between two hosts both ways: datagrams on it, and those in flight, are
    /// lost until [`World::heal`].
    pub fn partition(&mut self, a: SocketAddr, b: SocketAddr) {
        self.sim.partition(a.ip(), b.ip());
    }

    /// Restores the link between two hosts.
    pub fn heal(&mut self, a: SocketAddr, b: SocketAddr) {
        self.sim.repair(a.ip(), b.ip());
    }

    /// Advances one tick (1 ms).
    pub fn step(&mut self) -> Result<(), String> {
        self.sim.step().map(|_| ()).map_err(|e| e.to_string())
    }

    /// Sim time since the start.
    pub fn now(&self) -> Duration {
        self.sim.elapsed()
    }

    /// The name of the host at `addr`, or the address itself.
    pub fn name_of(&self, addr: SocketAddr) -> String {
        self.names
            .get(&addr)
            .cloned()
            .or_else(|| {
                self.names
                    .iter()
                    .find(|(a, _)| a.ip() == addr.ip())
                    .map(|(_, n)| n.clone())
            })
            .unwrap_or_else(|| addr.to_string())
    }

    /// Every datagram so far.
    pub fn trace(&self) -> &Trace {
        &self.trace
    }

    /// Every core event so far, with its sim time.
    pub fn events(&self) -> Vec<(Duration, Event)> {
        self.events.borrow().clone()
    }
}
