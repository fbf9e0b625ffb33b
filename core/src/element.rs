//! The element: the one object a driver talks to. It owns the transaction layer, the
//! registrar and the authenticator, and turns datagrams into answers.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use smallvec::SmallVec;

use crate::auth::{self, DigestVerifier, NonceManager, Verdict};
use crate::config::{Config, OverLimit};
use crate::ids::{Ids, Tag};
use crate::keymap::KeyMap;
use crate::message::{build, HeaderName, Message, Method, ParseError, ParseErrorKind, Uri};
use crate::proxy::{ContextId, Locator, ResponseContext};
use crate::rate::{Admission, SourceTable};
use crate::registrar::{Authentication, Authorize, Binding, Flow, Identity, Registrar, Reply};
use crate::shared::{Shared, SharedState};
use crate::time::Instant;
use crate::transaction::completed::CompletedServers;
use crate::transaction::{
    Effect, Effects, InviteClient, InviteServer, NonInviteClient, NonInviteServer, TxKey,
};
use crate::{Datagram, Event, Input, InputKind, Output, Transmit, Transport};

/// The two server machines behind one table.
#[derive(Debug)]
pub(crate) enum ServerMachine {
    NonInvite(NonInviteServer),
    Invite(InviteServer),
}

/// A server transaction with where its responses go.
#[derive(Debug)]
pub(crate) struct ServerTx {
    pub(crate) machine: ServerMachine,
    pub(crate) local: SocketAddr,
    /// The request's source address (for `received`/`rport` in responses built here).
    pub(crate) remote: SocketAddr,
    /// Where responses go (§18.2.2).
    pub(crate) target: SocketAddr,
    pub(crate) transport: Transport,
    /// The response context when the request was proxied.
    pub(crate) context: Option<ContextId>,
    /// When the request arrived (for the duration in the log line).
    pub(crate) started: Instant,
}

/// The two client machines behind one table.
#[derive(Debug)]
pub(crate) enum ClientMachine {
    Invite(InviteClient),
    NonInvite(NonInviteClient),
}

/// A client transaction (§17.1) and the branch it serves.
#[derive(Debug)]
pub(crate) struct ClientTx {
    pub(crate) machine: ClientMachine,
    /// The INVITE it sent, shared with its machine, until a final response arrives. Parsed
    /// again only when a CANCEL or a non-2xx ACK is built from it (§9.1, §17.1.1.3): most
    /// branches never need it, so the forward path does not pay. `None` for other methods,
    /// from which nothing is built.
    pub(crate) request: Option<std::sync::Arc<[u8]>>,
    pub(crate) local: SocketAddr,
    pub(crate) remote: SocketAddr,
    pub(crate) transport: Transport,
    /// Context and branch index; `None` for a CANCEL the proxy sent on its own.
    pub(crate) branch_of: Option<(ContextId, usize)>,
}

pub(crate) use crate::transaction::ClientKey;

/// What a deadline in the timer index belongs to.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum TimerRef {
    Server(TxKey),
    Client(ClientKey),
    /// Timer C of a branch (§16.8).
    TimerC(ContextId, usize),
    /// A DNS lookup that may not take longer (RFC 3263).
    Lookup(crate::Query),
}

/// The SIP element: registrar, location service and transaction-stateful proxy.
///
/// Methods come in three groups, as in quinn-proto's `Connection`: getters borrow,
/// [`Proxy::handle_input`] mutates, [`Proxy::poll_output`] drains.
#[derive(Debug)]
pub struct Proxy {
    pub(crate) config: Config,
    pub(crate) ids: Ids,
    /// Shared with the element's other workers, if any ([`crate::shared`]).
    pub(crate) nonces: Shared<NonceManager>,
    pub(crate) registrar: Registrar,
    /// Which worker of the element this is, written into the branches of the requests it
    /// forwards so that their responses find it ([`crate::shared::worker_of`]); `None` for
    /// an element that is one worker, whose branches carry no tag.
    pub(crate) worker: Option<u16>,
    pub(crate) locator: Locator,
    /// Salt of the loop-detection hash (§16.6 step 8), from the seed.
    pub(crate) loop_salt: u64,
    /// Transactions by key, looked up on every message ([`KeyMap`]); a slot holds a pointer,
    /// not the transaction, so the table's spare capacity stays small.
    pub(crate) servers: KeyMap<TxKey, Box<ServerTx>>,
    pub(crate) clients: KeyMap<ClientKey, Box<ClientTx>>,
    /// Non-INVITE server transactions in the Completed state over an unreliable transport,
    /// taken out of `servers` when they send their final response: they only wait for Timer
    /// J, which ends them in the order they completed ([`CompletedServers`]).
    pub(crate) completed: CompletedServers,
    /// Response contexts by id, looked up several times per response; boxed, so that the
    /// table moves pointers when it grows, not contexts.
    pub(crate) contexts: KeyMap<ContextId, Box<ResponseContext>>,
    pub(crate) next_context: ContextId,
    /// Every pending deadline. Entries may be stale (a machine moved on): a popped entry
    /// only makes the owner look at the clock, which is harmless when nothing is due.
    pub(crate) timers: BTreeSet<(Instant, TimerRef)>,
    pub(crate) queue: VecDeque<Output>,
    /// Text put together for one message and spliced into it (the Via and Record-Route of a
    /// forwarded request), kept from one message to the next: once grown, building them
    /// allocates nothing.
    pub(crate) scratch: String,
    /// Buffers of messages the element is done with, for the next parse.
    pub(crate) spare: crate::message::Spare,
    pub(crate) now: Instant,
    /// RFC 3263 lookups waiting for the driver, and its answers.
    pub(crate) dns: crate::proxy::dns::Dns,
    /// The configured users by name (a lookup per request must not scan the list).
    pub(crate) users: UserIndex,
    /// New requests per source address ([`crate::config::SourceRate`]), shared with the
    /// element's other workers, if any.
    pub(crate) sources: Shared<SourceTable>,
}

/// The element's users by name, and every address of record one of them lists.
#[derive(Debug, Default)]
pub(crate) struct UserIndex {
    by_name: BTreeMap<String, usize>,
    aors: BTreeSet<String>,
}

impl UserIndex {
    fn new(users: &[crate::config::User]) -> Self {
        let mut index = UserIndex::default();
        for (i, u) in users.iter().enumerate() {
            // The first entry for a name wins, as a scan would find it.
            index.by_name.entry(u.name.clone()).or_insert(i);
            index.aors.extend(u.aors.iter().cloned());
        }
        index
    }

    /// The user called `name`.
    pub(crate) fn get<'a>(
        &self,
        users: &'a [crate::config::User],
        name: &str,
    ) -> Option<&'a crate::config::User> {
        self.by_name.get(name).and_then(|i| users.get(*i))
    }

    /// Whether some user lists `aor`, exactly as written.
    pub(crate) fn lists_aor(&self, aor: &str) -> bool {
        self.aors.contains(aor)
    }
}

impl Proxy {
    /// A new element. Everything random derives from `config.seed`.
    pub fn new(config: Config) -> Self {
        let mut ids = Ids::new(config.seed);
        let shared = SharedState::with_secret(&config, ids.secret());
        Self::assemble(config, ids, shared, None)
    }

    /// Worker `index` of an element whose workers share `shared` ([`SharedState::new`] of
    /// the same `config`): see [`crate::shared`].
    /// Every worker gets the same `config`; its identifiers come from its own stream of
    /// `config.seed`, and the branches it writes name it.
    pub fn worker(config: Config, shared: SharedState, index: u16) -> Self {
        // Worker 0 draws what a single element draws; the others, streams of their own.
        let seed = config.seed ^ u64::from(index).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let mut ids = Ids::new(seed);
        // Drawn as `new` draws the nonce secret, so worker 0's identifiers are a single
        // element's; the nonces themselves are the shared ones.
        let _ = ids.secret();
        Self::assemble(config, ids, shared, Some(index))
    }

    /// What this element shares with workers made by [`Proxy::worker`].
    pub fn shared(&self) -> SharedState {
        SharedState {
            location: self.registrar.shared_location(),
            nonces: self.nonces.clone(),
            sources: self.sources.clone(),
        }
    }

    fn assemble(config: Config, ids: Ids, shared: SharedState, worker: Option<u16>) -> Self {
        let identity = Identity {
            domains: config
                .domains
                .iter()
                .map(|d| d.to_ascii_lowercase())
                .collect(),
            host_names: config
                .host_names
                .iter()
                .map(|d| d.to_ascii_lowercase())
                .collect(),
            local_addrs: config.local_addrs.clone(),
        };
        let locator = Locator {
            domains: identity.domains.clone(),
            host_names: identity.host_names.clone(),
            local_addrs: identity.local_addrs.clone(),
            hosts: config.hosts.clone(),
        };
        // Derived from the seed without drawing from the RNG, so the IDs an element puts
        // on the wire do not depend on whether it ever proxies. The same for every worker:
        // a request that loops back may reach another one (§16.3 step 4).
        let loop_salt = config.seed.rotate_left(17) ^ 0x5bd1_e995_1f12_3bb5;
        // Likewise the hash tables' key: peers cannot pick colliding keys unless they know
        // the seed, and the simulator replays the same tables.
        let table_seed = table_seed(config.seed);
        let users = UserIndex::new(&config.auth.users);
        Proxy {
            registrar: Registrar::with_location(
                config.registrar.clone(),
                identity,
                shared.location,
            ),
            locator,
            loop_salt,
            config,
            ids,
            nonces: shared.nonces,
            worker,
            servers: KeyMap::with_seed(table_seed),
            clients: KeyMap::with_seed(table_seed),
            completed: CompletedServers::with_seed(table_seed),
            contexts: KeyMap::with_seed(table_seed),
            next_context: 0,
            timers: BTreeSet::new(),
            dns: Default::default(),
            users,
            sources: shared.sources,
            queue: VecDeque::new(),
            scratch: String::new(),
            spare: Default::default(),
            now: Instant::ZERO,
        }
    }

    /// The configuration it runs with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The registrar and its location service.
    pub fn registrar(&self) -> &Registrar {
        &self.registrar
    }

    /// Live transactions, server and client (for leak checks: zero once the network is
    /// quiet).
    pub fn transaction_count(&self) -> usize {
        self.servers.len() + self.completed.len() + self.clients.len()
    }

    /// Live response contexts (§16.7): zero once every proxied request is answered.
    pub fn context_count(&self) -> usize {
        self.contexts.len()
    }

    /// Puts back bindings kept from an earlier run (a database), before the first input:
    /// they replace what `aor` has. Their `expires_at` count from this element's clock,
    /// which starts at zero. Expired ones are dropped at the next input.
    pub fn restore_bindings(&mut self, aor: &str, bindings: Vec<Binding>) {
        self.registrar.restore(aor, bindings);
    }

    /// Feeds one input. Never fails: bad network input becomes an answer or an event.
    pub fn handle_input(&mut self, input: Input<'_>) {
        // Time never goes backwards, even if a driver's clock does.
        self.now = self.now.max(input.now);
        match input.kind {
            InputKind::Datagram(d) => self.handle_datagram(d),
            InputKind::Timeout => {}
            InputKind::Resolved(r) => self.handle_resolved(r),
        }
        self.handle_timers();
    }

    /// The next output. Call until it returns [`Output::Timeout`].
    pub fn poll_output(&mut self) -> Output {
        if let Some(o) = self.queue.pop_front() {
            return o;
        }
        let next = [
            self.timers.first().map(|(at, _)| *at),
            self.completed.next_deadline(),
            self.registrar.next_expiry(),
        ]
        .into_iter()
        .flatten()
        .min();
        Output::Timeout(next)
    }

    fn handle_timers(&mut self) {
        while let Some((at, what)) = self.timers.first().cloned() {
            if at > self.now {
                break;
            }
            self.timers.pop_first();
            match what {
                TimerRef::Server(key) => self.server_timeout(&key),
                TimerRef::Client(key) => self.client_timeout(&key),
                TimerRef::TimerC(ctx, i) => self.timer_c(ctx, i),
                TimerRef::Lookup(q) => self.lookup_timeout(&q),
            }
        }
        self.completed.expire(self.now);
        // Only when a binding is due: nothing else can have expired.
        if self
            .registrar
            .next_expiry()
            .is_some_and(|at| at <= self.now)
        {
            let expired = self.registrar.purge(self.now);
            if self.config.reports.bindings {
                for e in expired {
                    self.queue.push_back(Output::Event(e));
                }
            }
        }
    }

    pub(crate) fn schedule(&mut self, at: Option<Instant>, what: TimerRef) {
        if let Some(at) = at {
            self.timers.insert((at, what));
        }
    }

    fn server_timeout(&mut self, key: &TxKey) {
        let now = self.now;
        let Some(tx) = self.servers.get_mut(key) else {
            return;
        };
        let effects = match &mut tx.machine {
            ServerMachine::NonInvite(m) => m.on_timeout(now),
            ServerMachine::Invite(m) => m.on_timeout(now),
        };
        self.server_effects(key, effects);
    }

    /// Carries out what a server transaction asked for.
    pub(crate) fn server_effects(&mut self, key: &TxKey, effects: Effects) {
        let Some(tx) = self.servers.get(key) else {
            return;
        };
        let (queue, timers, completed) = (&mut self.queue, &mut self.timers, &mut self.completed);
        if carry_out(queue, timers, completed, key, tx, effects) {
            self.servers.remove(key);
        }
    }

    pub(crate) fn drop_datagram(&mut self, remote: SocketAddr, reason: impl Into<String>) {
        self.queue.push_back(Output::Event(Event::Dropped {
            remote,
            reason: reason.into(),
        }));
    }

    fn handle_datagram(&mut self, d: Datagram<'_>) {
        // RFC 5626 §3.5.1 keep-alives (CRLF) on a datagram transport: nothing to answer.
        if d.bytes.iter().all(|b| *b == b'\r' || *b == b'\n') {
            return;
        }
        let msg = match Message::parse_into(d.bytes, &self.config.limits.message, &mut self.spare) {
            Ok(m) => m,
            Err(e) => return self.unparsable(&d, e),
        };
        if !msg.is_request() {
            if let Err(e) = msg.validate_response() {
                return self.drop_datagram(d.remote, format!("invalid response: {}", e.reason));
            }
            return self.handle_response(msg, &d);
        }
        // The rate of new requests per source. A retransmission is answered from its
        // transaction, as cheaply as a refusal would be, and a client on a lossy link
        // must not be punished for retransmitting.
        let key = TxKey::of_request(&msg);
        let retransmission = key
            .as_ref()
            .is_some_and(|k| self.servers.contains_key(k) || self.completed.contains(k));
        if !retransmission {
            let admission = self.sources.lock().admit(d.remote.ip(), self.now);
            if let Admission::Over { first } = admission {
                return self.over_rate(&msg, &d, first);
            }
        }
        if let Err(e) = msg.validate() {
            return self.reject(&msg, &d, e);
        }
        let Some(method) = msg.method().cloned() else {
            return self.drop_datagram(d.remote, "request without a method");
        };
        let Some(key) = key else {
            return self.drop_datagram(d.remote, "request without a usable Via");
        };
        if method == Method::Ack {
            return self.handle_ack(msg, &d, &key);
        }
        if retransmission {
            return self.retransmission(&key);
        }
        if self.transaction_count() >= self.config.limits.transactions_max {
            let reply = Reply::with_reason(503, "Too Many Transactions");
            return self.send_stateless(&msg, &d, reply);
        }
        let machine = if method == Method::Invite {
            ServerMachine::Invite(InviteServer::new(
                self.config.timers,
                d.transport.is_reliable(),
            ))
        } else {
            ServerMachine::NonInvite(NonInviteServer::new())
        };
        self.servers.insert(
            key.clone(),
            Box::new(ServerTx {
                machine,
                local: d.local,
                remote: d.remote,
                target: response_target(&msg, d.remote, d.transport),
                transport: d.transport,
                context: None,
                started: self.now,
            }),
        );
        if method == Method::Cancel {
            return self.handle_cancel(&msg, &key);
        }
        // Requests for this element as a UAS: REGISTER for a served domain, and requests
        // whose Request-URI names the element or a served domain without a user (OPTIONS
        // pings, §11). Everything else is proxied (§16), including a request whose
        // Request-URI is our Record-Route URI, put there by a strict router with the remote
        // target as the last Route value (§16.4): it is routed, not answered.
        let for_me = match msg.request_uri_parsed() {
            Some(Ok(Uri::Sip(u))) => {
                let ours = self.locator.serves_uri(&u) || self.locator.is_me(&u);
                let strict_routed = self.locator.is_me(&u)
                    && msg
                        .values(&HeaderName::Route)
                        .last()
                        .is_some_and(|r| !self.names_me(r));
                ours && (method == Method::Register || u.user.is_none() && !strict_routed)
            }
            _ => !self.config.proxy.enabled,
        };
        if for_me || !self.config.proxy.enabled {
            let reply = if method == Method::Register {
                self.handle_register(&msg, &d)
            } else if let Some(reply) = uas_checks(&msg) {
                reply
            } else if method == Method::Options {
                options_reply()
            } else {
                Reply::new(405).header("Allow", ALLOW)
            };
            self.respond(&key, &msg, reply);
            return self.spare.recycle(msg);
        }
        self.proxy_request(msg, &d, key);
    }

    /// §17.2.1, §17.2.2: a retransmitted request; its transaction answers with what it sent.
    fn retransmission(&mut self, key: &TxKey) {
        let Some(tx) = self.servers.get(key) else {
            if let Some(stored) = self.completed.get(key) {
                self.queue.push_back(Output::Transmit(Transmit {
                    transport: stored.transport,
                    local: stored.local,
                    remote: stored.target,
                    bytes: stored.response.to_vec(),
                }));
            }
            return;
        };
        let effects = match &tx.machine {
            ServerMachine::NonInvite(m) => m.on_request_retransmission().into_effects(),
            ServerMachine::Invite(m) => m.on_request_retransmission(),
        };
        self.server_effects(key, effects);
    }

    /// RFC 3261 §17.2.1 / §16: an ACK. For a non-2xx final it matches the INVITE server
    /// transaction, which absorbs it; an ACK for a 2xx is a request of its own that the proxy
    /// forwards statelessly along the route set (§16.11 does not apply: ACK never gets a
    /// response).
    fn handle_ack(&mut self, msg: Message, d: &Datagram<'_>, key: &TxKey) {
        let now = self.now;
        if let Some(tx) = self.servers.get_mut(key) {
            if let ServerMachine::Invite(m) = &mut tx.machine {
                let effects = m.on_ack(now);
                let absorbed = effects.contains(&Effect::Absorb);
                self.server_effects(key, effects);
                if absorbed {
                    return;
                }
            }
        }
        if self.config.proxy.enabled {
            self.forward_ack(msg, d);
        } else {
            self.drop_datagram(d.remote, "ACK matches no transaction");
        }
    }

    /// Whether a Route value (`<uri>` or a bare URI) names this element.
    fn names_me(&self, route: &str) -> bool {
        match Uri::parse(crate::proxy::route::strip_brackets(route)) {
            Ok(Uri::Sip(u)) => self.locator.is_me(&u),
            _ => false,
        }
    }

    /// The realm of this element's challenges.
    pub(crate) fn realm(&self) -> String {
        realm(&self.config)
    }

    /// §22.3: checks the request's credentials (Proxy-Authorization when `proxy`).
    /// `Ok(user)`: valid; `Err(reply)`: the 401/407 challenge, or a 400 for malformed
    /// credentials, to send.
    pub(crate) fn authenticate(&mut self, msg: &Message, proxy: bool) -> Result<String, Reply> {
        authenticate(
            &self.config,
            &self.users,
            &mut self.nonces.lock(),
            &mut self.ids,
            self.now,
            msg,
            proxy,
        )
    }

    fn handle_register(&mut self, msg: &Message, d: &Datagram<'_>) -> Reply {
        let now = self.now;
        let (config, index, nonces, ids, queue) = (
            &self.config,
            &self.users,
            &self.nonces,
            &mut self.ids,
            &mut self.queue,
        );
        // Called by the registrar at §10.3 step 3, after the domain and Require checks, so a
        // request it refuses anyway is not challenged.
        let mut authenticate = || {
            if !config.auth.register {
                return Authentication::NotRequired;
            }
            // Locked for the whole check: a count is checked and recorded at once, so the
            // same count cannot pass on two workers (RFC 7616 §5.5).
            match authenticate(config, index, &mut nonces.lock(), ids, now, msg, false) {
                Ok(user) => Authentication::User(user),
                Err(reply) => Authentication::Reply(reply),
            }
        };
        let authorize = UserTable {
            users: &config.auth.users,
            index,
            domains: &config.domains,
        };
        self.registrar.register(
            msg,
            now,
            Flow {
                remote: d.remote,
                transport: d.transport,
            },
            &mut authenticate,
            &authorize,
            // Straight to the queue, ahead of the response: no list of them in between.
            config
                .reports
                .bindings
                .then_some(&mut |e| queue.push_back(Output::Event(e))),
        )
    }

    /// Builds the response bytes for `reply` (§8.2.6): To tag, `received`/`rport` on the top
    /// Via (§18.2.1, RFC 3581 §4) for a request that came from `remote`.
    pub(crate) fn build(&mut self, msg: &Message, remote: SocketAddr, reply: &Reply) -> Vec<u8> {
        let needs_tag = reply.status != 100 && msg.to().is_some() && msg.to_tag().is_none();
        let tag = needs_tag.then(|| self.ids.tag());
        let (received, rport) = via_params(msg, remote);
        let headers: SmallVec<[(&str, &str); 8]> = reply
            .headers
            .iter()
            .map(|(n, v)| (n.as_ref(), v.as_str()))
            .collect();
        build::response(
            msg,
            reply.status,
            &reply.reason,
            tag.as_ref().map(Tag::as_str),
            received,
            rport,
            &headers,
            b"",
        )
    }

    /// The TU's response to the request of server transaction `key`, built here.
    pub(crate) fn respond(&mut self, key: &TxKey, msg: &Message, reply: Reply) {
        let Some(remote) = self.servers.get(key).map(|t| t.remote) else {
            return;
        };
        self.respond_to(key, msg, reply, remote);
    }

    /// [`Proxy::respond`] for a request that came from `remote` (the transaction's own
    /// source, known to the caller that created it: one table lookup fewer).
    pub(crate) fn respond_to(
        &mut self,
        key: &TxKey,
        msg: &Message,
        reply: Reply,
        remote: SocketAddr,
    ) {
        let bytes = self.build(msg, remote, &reply);
        self.send_response(key, msg, reply.status, bytes);
    }

    /// Hands response bytes to server transaction `key` (§17.2.1, §17.2.2), which sends
    /// and stores them.
    pub(crate) fn send_response(
        &mut self,
        key: &TxKey,
        msg: &Message,
        status: u16,
        bytes: Vec<u8>,
    ) {
        let report = self.completion_report(msg, status);
        self.hand_response(key, status, bytes, report);
    }

    /// What [`Event::TransactionCompleted`] says of request `msg` answered with `status`
    /// (method, From URI, To URI), when that event is due: a final status, and reports on.
    /// Taken before the response is handed over, so that the request can stay where it is.
    pub(crate) fn completion_report(
        &self,
        msg: &Message,
        status: u16,
    ) -> Option<(String, String, String)> {
        (status >= 200 && self.config.reports.transactions).then(|| {
            (
                msg.method()
                    .map(|m| m.as_str().to_owned())
                    .unwrap_or_default(),
                msg.from().map(|f| f.uri.to_owned()).unwrap_or_default(),
                msg.to().map(|t| t.uri.to_owned()).unwrap_or_default(),
            )
        })
    }

    /// [`Proxy::send_response`] with the event's fields taken already.
    pub(crate) fn hand_response(
        &mut self,
        key: &TxKey,
        status: u16,
        bytes: Vec<u8>,
        report: Option<(String, String, String)>,
    ) {
        let now = self.now;
        // One lookup for the machine and its effects: this runs for every response sent.
        let Some(tx) = self.servers.get_mut(key) else {
            return;
        };
        let elapsed = now.saturating_since(tx.started);
        let effects = match &mut tx.machine {
            ServerMachine::NonInvite(m) => {
                let timer_j = if tx.transport.is_reliable() {
                    Duration::ZERO
                } else {
                    self.config.timers.t1 * 64
                };
                m.on_tu_response(status, bytes, now, timer_j).into_effects()
            }
            ServerMachine::Invite(m) => m.on_tu_response(status, bytes, now),
        };
        let (queue, timers, completed) = (&mut self.queue, &mut self.timers, &mut self.completed);
        if carry_out(queue, timers, completed, key, tx, effects) {
            self.servers.remove(key);
        }
        if let Some((method, from, to)) = report {
            self.queue
                .push_back(Output::Event(Event::TransactionCompleted {
                    method,
                    status,
                    from,
                    to,
                    elapsed,
                }));
        }
    }

    /// A datagram the parser refused. One over the size or header limit still has a head
    /// that may be answered: RFC 3261 §21.5.7 513 Message Too Large (§18.1.1: "a server
    /// ... MUST respond with 513 if it receives a message larger than it can handle"), or
    /// 400 Too Many Headers. The head is parsed alone, within the limits, for its Via; a
    /// datagram whose Via lies beyond them, or that is no request, is dropped.
    fn unparsable(&mut self, d: &Datagram<'_>, e: ParseError) {
        let reason = format!("unparsable: {}", e.reason);
        if !matches!(
            e.kind,
            ParseErrorKind::TooLarge | ParseErrorKind::TooManyHeaders
        ) {
            return self.drop_datagram(d.remote, reason);
        }
        let limits = self.config.limits.message;
        let head = head_within(d.bytes, &limits);
        let msg = match Message::parse(head, &limits) {
            Ok(m) if m.is_request() => m,
            _ => return self.drop_datagram(d.remote, reason),
        };
        if msg.top_via().is_none() || msg.method() == Some(&Method::Ack) {
            return self.drop_datagram(d.remote, reason);
        }
        self.drop_datagram(d.remote, format!("{reason}; answered {}", e.status));
        self.send_stateless(&msg, d, Reply::with_reason(e.status, e.reason));
    }

    /// A new request from a source over its rate: 503 with Retry-After (an ACK, which gets
    /// no answer, is dropped) or nothing, as configured. `first`: the source was within its
    /// limit until now, which is worth one event.
    fn over_rate(&mut self, msg: &Message, d: &Datagram<'_>, first: bool) {
        if first {
            self.queue.push_back(Output::Event(Event::SourceLimited {
                source: d.remote.ip(),
            }));
        }
        let answerable = msg.top_via().is_some() && msg.method() != Some(&Method::Ack);
        if let (OverLimit::Reject { retry_after_s }, true) =
            (self.config.limits.source_rate.over, answerable)
        {
            let reply = Reply::with_reason(503, "Rate Limit Exceeded")
                .header("Retry-After", retry_after_s.to_string());
            self.send_stateless(msg, d, reply);
        }
    }

    /// A request that failed validation gets the RFC's answer without a transaction: a
    /// retransmission of it fails the same way and gets the same status.
    fn reject(&mut self, msg: &Message, d: &Datagram<'_>, e: ParseError) {
        if msg.top_via().is_none() || msg.method() == Some(&Method::Ack) {
            return self.drop_datagram(d.remote, format!("invalid, cannot answer: {}", e.reason));
        }
        // RFC 4475 §3.1.2.18: for an unknown method whose CSeq names another, "Any element
        // receiving this [request] should respond with a 501 Not Implemented. A 400 Bad
        // Request is also acceptable, but choosing a 501 (particularly at proxies) has
        // better future-proof characteristics." It matches RFC 3261 §8.2, which inspects the
        // method (§8.2.1) before the header fields. A known method keeps the 400 of RFC 4475
        // §3.1.2.17, so that it does not change once the proxy core handles that method.
        if e.kind == ParseErrorKind::MethodMismatch
            && matches!(msg.method(), Some(Method::Extension(_)))
        {
            return self.send_stateless(msg, d, Reply::new(501).header("Allow", ALLOW));
        }
        let mut reply = Reply::with_reason(e.status, e.reason);
        if e.status == 505 {
            reply.reason = crate::message::reason_phrase(505).into();
        }
        self.send_stateless(msg, d, reply);
    }

    fn send_stateless(&mut self, msg: &Message, d: &Datagram<'_>, reply: Reply) {
        let bytes = self.build(msg, d.remote, &reply);
        self.queue.push_back(Output::Transmit(Transmit {
            transport: d.transport,
            local: d.local,
            remote: response_target(msg, d.remote, d.transport),
            bytes,
        }));
    }
}

/// Carries out the `effects` of server transaction `tx` (under `key`): sends go out towards
/// its peer and its next deadline joins the timers. Whether the caller forgets it: it
/// terminated, or it is a non-INVITE one that has just completed over an unreliable
/// transport, which waits for Timer J in `completed` instead.
fn carry_out(
    queue: &mut VecDeque<Output>,
    timers: &mut BTreeSet<(Instant, TimerRef)>,
    completed: &mut CompletedServers,
    key: &TxKey,
    tx: &ServerTx,
    effects: Effects,
) -> bool {
    let (transport, local, target) = (tx.transport, tx.local, tx.target);
    let mut terminated = false;
    for e in effects {
        match e {
            Effect::Send(bytes) => queue.push_back(Output::Transmit(Transmit {
                transport,
                local,
                remote: target,
                bytes,
            })),
            Effect::Terminated => terminated = true,
            _ => {}
        }
    }
    if terminated {
        return true;
    }
    // The machine has moved already: carrying out its effects does not change it.
    let deadline = match &tx.machine {
        ServerMachine::NonInvite(NonInviteServer::Completed { response, timer_j })
            if !transport.is_reliable() =>
        {
            completed.insert(key, response, *timer_j, (local, target, transport));
            return true;
        }
        ServerMachine::NonInvite(m) => m.deadline(),
        ServerMachine::Invite(m) => m.deadline(),
    };
    if let Some(at) = deadline {
        timers.insert((at, TimerRef::Server(key.clone())));
    }
    false
}

/// Takes the entry of `what` at `at` out of the timer index, when its owner moved that
/// deadline or no longer needs it. Left there, the entry would only make the owner look at
/// the clock when it passes, but it would hold memory until then (Timer C: 3 minutes).
pub(crate) fn unschedule(
    timers: &mut BTreeSet<(Instant, TimerRef)>,
    at: Option<Instant>,
    what: TimerRef,
) {
    if let Some(at) = at {
        timers.remove(&(at, what));
    }
}

/// The start of a datagram that a limit refused: the start line and the header lines that
/// fit in both limits, without the body. What it leaves out (the rest of the headers) can
/// only make a request invalid, never valid, and the answer is an error anyway.
fn head_within<'a>(bytes: &'a [u8], limits: &crate::message::Limits) -> &'a [u8] {
    let window = &bytes[..bytes.len().min(limits.message_bytes_max)];
    let mut end = 0;
    // The start line, then at most `headers_max` lines, each ending in LF.
    for _ in 0..=limits.headers_max {
        match window[end..].iter().position(|b| *b == b'\n') {
            // An empty line ends the head.
            Some(0) => break,
            Some(1) if window[end] == b'\r' => break,
            Some(i) => end += i + 1,
            None => break,
        }
    }
    &window[..end]
}

/// The key of the element's hash tables, from its seed ([`KeyMap`]).
pub(crate) fn table_seed(seed: u64) -> u64 {
    seed.rotate_left(41) ^ 0x9e37_79b9_7f4a_7c15
}

/// The realm of the element's challenges: configured, else the first served domain (§22.1).
fn realm(config: &Config) -> String {
    config
        .auth
        .realm
        .clone()
        .or_else(|| config.domains.first().cloned())
        .unwrap_or_default()
}

/// §22.3 over the element's users and nonces; see [`Proxy::authenticate`].
fn authenticate(
    config: &Config,
    index: &UserIndex,
    nonces: &mut NonceManager,
    ids: &mut Ids,
    now: Instant,
    msg: &Message,
    proxy: bool,
) -> Result<String, Reply> {
    let realm = realm(config);
    let users = &config.auth.users;
    let algorithms = &config.auth.algorithms;
    let verifier = DigestVerifier {
        realm: &realm,
        algorithms,
        qop_required: true,
    };
    let (credentials, status, challenge_header) = if proxy {
        (HeaderName::ProxyAuthorization, 407, "Proxy-Authenticate")
    } else {
        (HeaderName::Authorization, 401, "WWW-Authenticate")
    };
    let method = msg
        .method()
        .map(|m| m.as_str().to_owned())
        .unwrap_or_default();
    let verdict = verifier.verify_any(nonces, now, &method, msg.values(&credentials), |u| {
        index.get(users, u).map(|x| x.password.clone())
    });
    match verdict {
        Verdict::Ok { username } => Ok(username),
        Verdict::BadRequest(why) => Err(Reply::with_reason(400, why)),
        Verdict::Challenge { stale } => {
            let nonce = nonces.issue(now, ids.rng());
            let mut reply = Reply::new(status);
            for value in auth::challenges(algorithms, &realm, &nonce, None, stale) {
                reply = reply.header(challenge_header, value);
            }
            Err(reply)
        }
    }
}

/// RFC 3261 §8.2.2: what a UAS checks before looking at the method's own rules: the
/// Request-URI scheme (§8.2.2.1, 416) and the extensions in Require (§8.2.2.3, 420). The
/// registrar does the same as steps 1 and 2 of §10.3, in its own order.
fn uas_checks(msg: &Message) -> Option<Reply> {
    match msg.request_uri_parsed() {
        Some(Ok(crate::message::Uri::Sip(_))) => {}
        Some(Ok(crate::message::Uri::Other { .. })) => {
            return Some(Reply::with_reason(416, "Unsupported URI Scheme"))
        }
        _ => return Some(Reply::with_reason(400, "Bad Request-URI")),
    }
    let unsupported: Vec<&str> = msg.values(&HeaderName::Require).collect();
    if !unsupported.is_empty() && msg.method() != Some(&Method::Cancel) {
        return Some(Reply::new(420).header("Unsupported", unsupported.join(", ")));
    }
    None
}

/// §18.2.1 and RFC 3581 §4: the `received` and `rport` a server transport notes on the top
/// Via of a request from `remote`: `received` when the sent-by is not the source address or
/// the client asked for rport; `rport` when asked. An IPv4-mapped IPv6 address (RFC 4291
/// §2.5.5.2, RFC 5118 §4.9) is the IPv4 address it maps: a dual-stack socket reports an
/// IPv4 peer as `::ffff:192.0.2.10`, and a sent-by of `[::ffff:192.0.2.10]` arrives over
/// IPv4 from `192.0.2.10`; neither differs from the source.
pub(crate) fn via_params(msg: &Message, remote: SocketAddr) -> (Option<IpAddr>, Option<u16>) {
    let rport_asked = msg.top_via_rport() == Some(None);
    let sent_by_is_source = msg
        .top_via_host_ip()
        .is_some_and(|ip| ip.to_canonical() == remote.ip().to_canonical());
    let received = (rport_asked || !sent_by_is_source).then_some(remote.ip());
    (received, rport_asked.then_some(remote.port()))
}

/// Methods the element answers today.
const ALLOW: &str = "INVITE, ACK, CANCEL, BYE, REGISTER, OPTIONS";

/// §11.2: OPTIONS addressed to the element itself.
pub(crate) fn options_reply() -> Reply {
    Reply::new(200)
        .header("Allow", ALLOW)
        .header("Accept", "application/sdp")
}

/// §18.2.2 and RFC 3581 §4: where responses to this request go. Over UDP, to the source
/// address (`received`), at the source port when the client asked for `rport`, else at the
/// sent-by port. Over a stream, back to the source.
fn response_target(msg: &Message, remote: SocketAddr, transport: Transport) -> SocketAddr {
    if transport.is_reliable() {
        return remote;
    }
    match msg.top_via() {
        Some(_) if msg.top_via_rport().is_some() => remote,
        Some(v) => SocketAddr::new(remote.ip(), v.port.unwrap_or(5060)),
        None => remote,
    }
}

/// §10.3 step 4: a user may register `sip:USER@DOMAIN` for every served domain, and the AORs
/// the configuration lists for it.
struct UserTable<'a> {
    users: &'a [crate::config::User],
    index: &'a UserIndex,
    domains: &'a [String],
}

impl Authorize for UserTable<'_> {
    fn may_register(&self, user: &str, aor: &str) -> bool {
        let Some(u) = self.index.get(self.users, user) else {
            return false;
        };
        // User parts are case-sensitive (§19.1.4); `aor` has its host lower-cased already.
        let own = |scheme: &str| {
            self.domains
                .iter()
                .any(|d| aor == format!("{scheme}:{user}@{}", d.to_ascii_lowercase()))
        };
        own("sip") || own("sips") || u.aors.iter().any(|a| a.eq_ignore_ascii_case(aor))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(via: &str) -> Message {
        let text = format!(
            "OPTIONS sip:example.com SIP/2.0\r\nVia: {via}\r\nMax-Forwards: 70\r\n\
             From: <sip:a@example.com>;tag=1\r\nTo: <sip:example.com>\r\nCall-ID: c\r\n\
             CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
        );
        Message::parse(text.as_bytes(), &Default::default()).unwrap()
    }

    /// §18.2.1 with RFC 5118 §4.9: an IPv4-mapped address is the IPv4 address.
    #[test]
    fn received_only_when_the_source_differs() {
        let cases = [
            (
                "SIP/2.0/UDP [::ffff:192.0.2.10]:19823",
                "192.0.2.10:19823",
                None,
            ),
            ("SIP/2.0/UDP 192.0.2.10", "[::ffff:192.0.2.10]:5060", None),
            ("SIP/2.0/UDP [2001:db8::9:1]", "[2001:db8::9:1]:5060", None),
            (
                "SIP/2.0/UDP [2001:DB8:0::9:1]",
                "[2001:db8::9:1]:5060",
                None,
            ),
            (
                "SIP/2.0/UDP [2001:db8::9:1]",
                "[2001:db8::9:255]:5060",
                Some("2001:db8::9:255"),
            ),
            (
                "SIP/2.0/UDP lab1.east.example.com",
                "[2001:db8::9:1]:5060",
                Some("2001:db8::9:1"),
            ),
        ];
        for (via, remote, received) in cases {
            let (r, rport) = via_params(&request(via), remote.parse().unwrap());
            assert_eq!(
                r,
                received.map(|ip| ip.parse().unwrap()),
                "{via} from {remote}"
            );
            assert_eq!(rport, None);
        }
    }
}
