//! The element: the one object a driver talks to. It owns the transaction layer, the
//! registrar and the authenticator, and turns datagrams into answers.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use crate::auth::{self, DigestVerifier, NonceConfig, NonceManager, Verdict};
use crate::config::Config;
use crate::ids::Ids;
use crate::message::{build, HeaderName, Message, Method, ParseError, ParseErrorKind};
use crate::registrar::{Authentication, Authorize, Flow, Identity, Registrar, Reply};
use crate::time::Instant;
use crate::transaction::non_invite_server::Action;
use crate::transaction::{NonInviteServer, TxKey};
use crate::{Datagram, Event, Input, InputKind, Output, Transmit, Transport};

/// A server transaction with where its responses go.
#[derive(Debug)]
struct ServerTx {
    state: NonInviteServer,
    local: SocketAddr,
    target: SocketAddr,
    transport: Transport,
}

/// The SIP element (registrar today; proxy and redirect server build on it).
///
/// Methods come in three groups, as in quinn-proto's `Connection`: getters borrow,
/// [`Proxy::handle_input`] mutates, [`Proxy::poll_output`] drains.
#[derive(Debug)]
pub struct Proxy {
    config: Config,
    ids: Ids,
    nonces: NonceManager,
    registrar: Registrar,
    transactions: BTreeMap<TxKey, ServerTx>,
    /// (deadline, key): Timer J of every Completed transaction.
    timers: BTreeSet<(Instant, TxKey)>,
    queue: VecDeque<Output>,
    now: Instant,
}

impl Proxy {
    /// A new element. Everything random derives from `config.seed`.
    pub fn new(config: Config) -> Self {
        let mut ids = Ids::new(config.seed);
        let nonces = NonceManager::new(
            ids.secret(),
            NonceConfig {
                lifetime: config.auth.nonce_lifetime,
                ..NonceConfig::default()
            },
        );
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
        Proxy {
            registrar: Registrar::new(config.registrar.clone(), identity),
            config,
            ids,
            nonces,
            transactions: BTreeMap::new(),
            timers: BTreeSet::new(),
            queue: VecDeque::new(),
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

    /// Live server transactions (for leak checks: zero once the network is quiet).
    pub fn transaction_count(&self) -> usize {
        self.transactions.len()
    }

    /// Feeds one input. Never fails: bad network input becomes an answer or an event.
    pub fn handle_input(&mut self, input: Input<'_>) {
        // Time never goes backwards, even if a driver's clock does.
        self.now = self.now.max(input.now);
        match input.kind {
            InputKind::Datagram(d) => self.handle_datagram(d),
            InputKind::Timeout => {}
        }
        self.handle_timers();
    }

    /// The next output. Call until it returns [`Output::Timeout`].
    pub fn poll_output(&mut self) -> Output {
        if let Some(o) = self.queue.pop_front() {
            return o;
        }
        let tx = self.timers.first().map(|(at, _)| *at);
        let binding = self.registrar.next_expiry();
        let next = match (tx, binding) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        Output::Timeout(next)
    }

    fn handle_timers(&mut self) {
        while let Some((at, key)) = self.timers.first().cloned() {
            if at > self.now {
                break;
            }
            self.timers.pop_first();
            if let Some(tx) = self.transactions.get_mut(&key) {
                tx.state.on_timeout(self.now);
                if tx.state.is_terminated() {
                    self.transactions.remove(&key);
                }
            }
        }
        for e in self.registrar.purge(self.now) {
            self.queue.push_back(Output::Event(e));
        }
    }

    fn drop_datagram(&mut self, remote: SocketAddr, reason: impl Into<String>) {
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
        let msg = match Message::parse(d.bytes, &self.config.limits.message) {
            Ok(m) => m,
            Err(e) => return self.drop_datagram(d.remote, format!("unparsable: {}", e.reason)),
        };
        if !msg.is_request() {
            // No client transactions yet: a stray response has nowhere to go (§18.1.2).
            return self.drop_datagram(d.remote, "response matches no client transaction");
        }
        if let Err(e) = msg.validate() {
            return self.reject(&msg, &d, e);
        }
        let Some(method) = msg.method().cloned() else {
            return self.drop_datagram(d.remote, "request without a method");
        };
        if method == Method::Ack {
            // §17.2.1: an ACK for a non-2xx belongs to an INVITE server transaction; there are
            // none yet, so nothing waits for it.
            return self.drop_datagram(d.remote, "ACK matches no transaction");
        }
        let Some(key) = TxKey::of_request(&msg) else {
            return self.drop_datagram(d.remote, "request without a usable Via");
        };
        if let Some(tx) = self.transactions.get(&key) {
            // §17.2.2: a retransmission; the transaction answers with what it stored.
            if let Action::Send(bytes) = tx.state.on_request_retransmission() {
                let t = Transmit {
                    transport: tx.transport,
                    local: tx.local,
                    remote: tx.target,
                    bytes,
                };
                self.queue.push_back(Output::Transmit(t));
            }
            return;
        }
        if self.transactions.len() >= self.config.limits.transactions_max {
            let reply = Reply::with_reason(503, "Too Many Transactions");
            return self.send_stateless(&msg, &d, reply);
        }
        self.transactions.insert(
            key.clone(),
            ServerTx {
                state: NonInviteServer::new(),
                local: d.local,
                target: response_target(&msg, d.remote, d.transport),
                transport: d.transport,
            },
        );
        let reply = if method == Method::Register {
            self.handle_register(&msg, &d)
        } else if let Some(reply) = uas_checks(&msg) {
            reply
        } else if method == Method::Options {
            options_reply()
        } else {
            // Transaction-stateful proxying of the other methods comes with the proxy core.
            Reply::new(501).header("Allow", ALLOW)
        };
        self.respond(&key, &msg, &d, reply);
    }

    fn handle_register(&mut self, msg: &Message, d: &Datagram<'_>) -> Reply {
        let now = self.now;
        let mut events = Vec::new();
        let realm = self.realm();
        let users = &self.config.auth.users;
        let auth_on = self.config.auth.register;
        let algorithms = &self.config.auth.algorithms;
        let nonces = &mut self.nonces;
        let ids = &mut self.ids;
        let mut authenticate = || {
            if !auth_on {
                return Authentication::NotRequired;
            }
            let verifier = DigestVerifier {
                realm: &realm,
                algorithms,
                qop_required: true,
            };
            let verdict = verifier.verify_any(
                nonces,
                now,
                "REGISTER",
                msg.values(&HeaderName::Authorization),
                |u| {
                    users
                        .iter()
                        .find(|x| x.name == u)
                        .map(|x| x.password.clone())
                },
            );
            match verdict {
                Verdict::Ok { username } => Authentication::User(username),
                Verdict::BadRequest(why) => Authentication::Reply(Reply::with_reason(400, why)),
                Verdict::Challenge { stale } => {
                    let nonce = nonces.issue(now, ids.rng());
                    let mut reply = Reply::new(401);
                    for value in auth::challenges(algorithms, &realm, &nonce, None, stale) {
                        reply = reply.header("WWW-Authenticate", value);
                    }
                    Authentication::Reply(reply)
                }
            }
        };
        let authorize = UserTable {
            users,
            domains: &self.config.domains,
        };
        let reply = self.registrar.register(
            msg,
            now,
            Flow {
                remote: d.remote,
                transport: d.transport,
            },
            &mut authenticate,
            &authorize,
            &mut events,
        );
        for e in events {
            self.queue.push_back(Output::Event(e));
        }
        reply
    }

    fn realm(&self) -> String {
        self.config
            .auth
            .realm
            .clone()
            .or_else(|| self.config.domains.first().cloned())
            .unwrap_or_default()
    }

    /// Builds the response bytes for `reply` (§8.2.6): To tag, `received`/`rport` on the top
    /// Via (§18.2.1, RFC 3581 §4).
    fn build(&mut self, msg: &Message, d: &Datagram<'_>, reply: &Reply) -> Vec<u8> {
        let needs_tag = reply.status != 100 && msg.to().is_some_and(|t| t.tag().is_none());
        let tag = needs_tag.then(|| self.ids.tag());
        let via = msg.top_via();
        let rport_asked = via.as_ref().is_some_and(|v| v.rport() == Some(None));
        let sent_by_is_source = via.as_ref().is_some_and(|v| {
            v.host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<IpAddr>()
                .ok()
                == Some(d.remote.ip())
        });
        let received = (rport_asked || !sent_by_is_source).then_some(d.remote.ip());
        let rport = rport_asked.then_some(d.remote.port());
        let headers: Vec<(&str, &str)> = reply
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        build::response(
            msg,
            reply.status,
            &reply.reason,
            tag.as_deref(),
            received,
            rport,
            &headers,
            b"",
        )
    }

    fn respond(&mut self, key: &TxKey, msg: &Message, d: &Datagram<'_>, reply: Reply) {
        let bytes = self.build(msg, d, &reply);
        let timer_j = if d.transport.is_reliable() {
            Duration::ZERO
        } else {
            self.config.timers.t1 * 64
        };
        let now = self.now;
        let Some(tx) = self.transactions.get_mut(key) else {
            return;
        };
        if let Action::Send(bytes) = tx.state.on_tu_response(reply.status, bytes, now, timer_j) {
            let t = Transmit {
                transport: tx.transport,
                local: tx.local,
                remote: tx.target,
                bytes,
            };
            self.queue.push_back(Output::Transmit(t));
        }
        if let Some(at) = tx.state.deadline() {
            self.timers.insert((at, key.clone()));
        }
        if reply.status >= 200 {
            self.queue
                .push_back(Output::Event(Event::TransactionCompleted {
                    method: msg
                        .method()
                        .map(|m| m.as_str().to_owned())
                        .unwrap_or_default(),
                    status: reply.status,
                    from: msg.from().map(|f| f.uri.to_owned()).unwrap_or_default(),
                    to: msg.to().map(|t| t.uri.to_owned()).unwrap_or_default(),
                }));
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
            reply.reason = crate::message::reason_phrase(505).to_owned();
        }
        self.send_stateless(msg, d, reply);
    }

    fn send_stateless(&mut self, msg: &Message, d: &Datagram<'_>, reply: Reply) {
        let bytes = self.build(msg, d, &reply);
        self.queue.push_back(Output::Transmit(Transmit {
            transport: d.transport,
            local: d.local,
            remote: response_target(msg, d.remote, d.transport),
            bytes,
        }));
    }
}

/// RFC 3261 §8.2.2: what a UAS checks before looking at the method's own rules: the
/// Request-URI scheme (§8.2.2.1, 416) and the extensions in Require (§8.2.2.3, 420). The
/// registrar does the same as steps 1 and 2 of §10.3, in its own order.
fn uas_checks(msg: &Message) -> Option<Reply> {
    match msg.request_uri().map(crate::message::Uri::parse) {
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

/// Methods the element answers today.
const ALLOW: &str = "REGISTER, OPTIONS";

/// §11.2: OPTIONS addressed to the element itself.
fn options_reply() -> Reply {
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
        Some(v) if v.rport().is_some() => remote,
        Some(v) => SocketAddr::new(remote.ip(), v.port.unwrap_or(5060)),
        None => remote,
    }
}

/// §10.3 step 4: a user may register `sip:USER@DOMAIN` for every served domain, and the AORs
/// the configuration lists for it.
struct UserTable<'a> {
    users: &'a [crate::config::User],
    domains: &'a [String],
}

impl Authorize for UserTable<'_> {
    fn may_register(&self, user: &str, aor: &str) -> bool {
        let Some(u) = self.users.iter().find(|u| u.name == user) else {
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
