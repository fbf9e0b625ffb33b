//! RFC 3261 §16.3-§16.6 and §16.10: what the proxy does with a request.

use std::net::SocketAddr;

use smallvec::SmallVec;

use super::dns::{Parked, Parking};
use super::route::strip_brackets;
use super::{branch_mut, loop_hash, Branch, BranchState, ContextId, ResponseContext, Target};
use crate::config::Relay;
use crate::element::{ClientKey, ClientMachine, ClientTx, TimerRef};
use crate::message::edit::RequestEdits;
use crate::message::{HeaderName, Message, Method, SipUri, Uri};
use crate::registrar::{Binding, Reply};
use crate::transaction::{Effect, Effects, InviteClient, NonInviteClient, TxKey};
use crate::{Datagram, Output, Proxy, Transmit, Transport};

/// Option tags this proxy understands in Proxy-Require (§16.3 step 5): none yet.
const PROXY_EXTENSIONS: &[&str] = &[];

/// Max-Forwards given to a request that has none (§16.6 step 3).
const MAX_FORWARDS_DEFAULT: u32 = 70;

/// The outcome of route preprocessing and target determination for one request. Borrows
/// from the request: nothing here outlives its processing.
struct Routing<'a> {
    /// Edits from §16.4 (Route popped, Request-URI restored).
    pop_route: bool,
    pop_last_route: bool,
    /// The Request-URI after §16.4, as written and typed.
    request_uri: &'a str,
    request_uri_parsed: Result<Uri<'a>, crate::message::ParseError>,
    /// The first Route left after §16.4, if any (the next hop of a loose route), without
    /// its brackets.
    next_route: Option<&'a str>,
    /// The request's credentials checked (§22.3); see [`Proxy::no_binding`].
    authenticated: bool,
}

/// A target set (§16.5): one target nearly always, kept on the stack.
type Targets = smallvec::SmallVec<[Target; 1]>;

impl Proxy {
    /// Appends the host:port this element writes in its Via sent-by and Record-Route: its
    /// first host name, else the address `local` (an IPv6 one in brackets); the port unless
    /// it is 5060. Written in place: every forwarded request needs it twice.
    pub(crate) fn write_advertised(&self, local: SocketAddr, out: &mut String) {
        let mut digits = [0; 20];
        match (self.config.host_names.first(), local.ip()) {
            (Some(host), _) => out.push_str(host),
            (None, std::net::IpAddr::V4(v4)) => {
                out.push_str(crate::message::dotted_quad(v4, &mut [0; 15]));
            }
            (None, std::net::IpAddr::V6(v6)) => {
                use std::fmt::Write;
                // Writing into a String cannot fail.
                let _ = write!(out, "[{v6}]");
            }
        }
        if local.port() != 5060 {
            out.push(':');
            out.push_str(crate::message::decimal(
                u64::from(local.port()),
                &mut digits,
            ));
        }
    }

    /// Appends to `out` the Via this element puts on a request it forwards (RFC 3261 §16.6
    /// step 8): `SIP/2.0/<transport> <sent-by>;branch=<the parts of the branch, in order>`.
    fn write_via(
        &self,
        transport: Transport,
        local: SocketAddr,
        branch: &[&str],
        out: &mut String,
    ) {
        out.push_str("SIP/2.0/");
        out.push_str(transport.as_str());
        out.push(' ');
        self.write_advertised(local, out);
        out.push_str(";branch=");
        for part in branch {
            out.push_str(part);
        }
    }

    /// §16.4: drops a Route value naming this proxy; undoes a strict router's rewrite.
    fn route_preprocess<'a>(&self, msg: &'a Message) -> Routing<'a> {
        // Route sets are short: kept inline.
        let mut routes: SmallVec<[&str; 4]> = msg.values(&HeaderName::Route).collect();
        let mut request_uri = msg.request_uri().unwrap_or("");
        let mut request_uri_parsed = msg
            .request_uri_parsed()
            .unwrap_or_else(|| Uri::parse(request_uri));
        let mut pop_last_route = false;
        // A strict router before us put our Record-Route URI into the Request-URI and the
        // real target at the end of Route.
        if let Ok(Uri::Sip(u)) = &request_uri_parsed {
            if self.locator.is_me(u) && u.user.is_none() {
                if let Some(last) = routes.pop() {
                    request_uri = strip_brackets(last);
                    request_uri_parsed = Uri::parse(request_uri);
                    pop_last_route = true;
                }
            }
        }
        let mut pop_route = false;
        if let Some(first) = routes.first() {
            if let Ok(Uri::Sip(u)) = Uri::parse(strip_brackets(first)) {
                if self.locator.is_me(&u) {
                    pop_route = true;
                    routes.remove(0);
                }
            }
        }
        Routing {
            pop_route,
            pop_last_route,
            request_uri,
            request_uri_parsed,
            next_route: routes.first().map(|r| strip_brackets(r)),
            authenticated: false,
        }
    }

    /// Whether forwarding `msg` along `routing` would relay it: it goes to neither this
    /// element nor a served domain, and is not inside a dialog that was record-routed
    /// here (a request with a To tag that came with this element's Route). See
    /// [`crate::config::Relay`].
    fn relays(&self, msg: &Message, routing: &Routing<'_>) -> bool {
        let in_dialog = msg.to_tag().is_some();
        if in_dialog && (routing.pop_route || routing.pop_last_route) {
            return false;
        }
        let next = match routing.next_route {
            Some(route) => Uri::parse(route),
            None => routing.request_uri_parsed.clone(),
        };
        match next {
            Ok(Uri::Sip(u)) => !(self.locator.serves_uri(&u) || self.locator.is_me(&u)),
            // Not a SIP URI: §16.5 refuses it (416) without forwarding anything.
            _ => false,
        }
    }

    /// Whether the From header names a user of a served domain (Kamailio's
    /// `from_uri==myself`): all there is to go by without authentication.
    fn caller_is_local(&self, msg: &Message) -> bool {
        match msg.from_uri() {
            Some(Ok(Uri::Sip(u))) => {
                self.registrar.identity().serves(u.host) || self.locator.is_me(&u)
            }
            _ => false,
        }
    }

    /// One target reached through `via` (a Route value or the Request-URI itself): see
    /// [`Proxy::through_sip`]; `fail` when it is not a SIP URI or has no address.
    fn through(&self, via: &str, request_uri: &str, fail: Reply) -> Result<Target, Reply> {
        let Ok(Uri::Sip(u)) = Uri::parse(strip_brackets(via)) else {
            return Err(fail);
        };
        self.through_sip(&u, request_uri).ok_or(fail)
    }

    /// One target reached through the SIP URI `via`: its address from an IP literal, the
    /// static table or an earlier DNS answer; else a lookup to wait for (RFC 3263), or
    /// `None` when lookups are off.
    fn through_sip(&self, via: &SipUri<'_>, request_uri: &str) -> Option<Target> {
        let transport = transport_of(via);
        let target = |next_hop| Target {
            uri: request_uri.to_owned(),
            next_hop,
            q: 1000,
            transport,
            lookup: None,
        };
        if let Some(addr) = self.locator.resolve(via) {
            return Some(target(addr));
        }
        let host = via.params.get("maddr").flatten().unwrap_or(via.host);
        let query = crate::Query {
            name: host.to_ascii_lowercase(),
            port: via.port,
            transport,
        };
        if let Some(addr) = self.dns.cached(&query, self.now) {
            return Some(target(addr));
        }
        if self.config.proxy.dns {
            let mut t = target(SocketAddr::from(([0, 0, 0, 0], 0)));
            t.lookup = Some(query);
            Some(t)
        } else {
            None
        }
    }

    /// §16.5 for one binding: its Contact's address (literal, static table, an earlier DNS
    /// answer or a lookup to make), or, when names are not looked up, the address its
    /// REGISTER came from.
    fn binding_target(&self, b: &Binding) -> Option<Target> {
        let Ok(Uri::Sip(contact)) = Uri::parse(b.contact()) else {
            return None;
        };
        let q = b.q.unwrap_or(1000);
        // Registered over a stream: back over that connection (the network reuses it while
        // it is open), whatever the Contact says.
        if b.flow.transport.is_reliable() {
            return Some(Target {
                uri: b.contact().to_owned(),
                next_hop: b.flow.remote,
                q,
                transport: b.flow.transport,
                lookup: None,
            });
        }
        match self.through_sip(&contact, b.contact()) {
            Some(mut t) => {
                t.q = q;
                Some(t)
            }
            None => Some(Target {
                uri: b.contact().to_owned(),
                next_hop: b.flow.remote,
                q,
                transport: transport_of(&contact),
                lookup: None,
            }),
        }
    }

    /// §16.5: the target set. `Err` is the response when there is none, or the lookup the
    /// target waits for. The address of record to look up is written into `aor` (the
    /// element's scratch text, so that the lookup allocates nothing).
    fn targets(&self, routing: &Routing<'_>, aor: &mut String) -> Result<Targets, Reply> {
        if let Some(route) = routing.next_route {
            let fail = Reply::with_reason(503, "Next Hop Not Resolvable");
            return self
                .through(route, routing.request_uri, fail)
                .map(|t| smallvec::smallvec![t]);
        }
        let uri = match &routing.request_uri_parsed {
            Ok(Uri::Sip(u)) => u,
            Ok(Uri::Other { .. }) => return Err(Reply::with_reason(416, "Unsupported URI Scheme")),
            Err(_) => return Err(Reply::with_reason(400, "Bad Request-URI")),
        };
        if self.locator.serves_uri(uri) {
            // §16.5: a domain we are responsible for: the location service decides.
            aor.clear();
            self.registrar.identity().write_canonical_aor(uri, aor);
            let aor: &str = aor;
            let location = self.registrar.location();
            let mut targets: Targets = location
                .alive(aor, self.now)
                .filter_map(|b| self.binding_target(b))
                .collect();
            drop(location);
            if targets.is_empty() {
                return Err(self.no_binding(uri, aor, routing.authenticated));
            }
            targets.truncate(self.config.proxy.branches_max);
            return Ok(targets);
        }
        // Another domain: where it lives (static table, then RFC 3263).
        let fail = Reply::with_reason(404, "Domain Not Found");
        self.through_sip(uri, routing.request_uri)
            .map(|t| smallvec::smallvec![t])
            .ok_or(fail)
    }

    /// §16.3-§16.6 for a request with a fresh server transaction `key`.
    pub(crate) fn proxy_request(&mut self, msg: Message, d: &Datagram<'_>, key: TxKey) {
        let invite = msg.method() == Some(&Method::Invite);
        // §16.3 step 3: Max-Forwards. An OPTIONS that may go no further is a probe of this
        // hop: "the element MAY act as the final recipient and respond per Section 11", which
        // is what keep-alive and monitoring pings expect. Anything else gets 483.
        if msg.max_forwards() == Some(0) {
            let reply = if msg.method() == Some(&Method::Options) {
                crate::element::options_reply()
            } else {
                Reply::new(483)
            };
            return self.respond(&key, &msg, reply);
        }
        // §16.3 step 4: a loop is a request that comes back unchanged. Our branches carry the
        // hash of what a loop leaves unchanged (§16.6 step 8).
        let hash = loop_hash(&msg, self.loop_salt);
        // A loop brings the hash back in a Via branch, so the Vias are read one by one only
        // when a Via line holds it somewhere: most requests never come back.
        let may_loop = msg
            .headers()
            .iter()
            .filter(|h| h.name == HeaderName::Via)
            .any(|h| h.value(&msg).contains(hash.as_str()));
        // Every Via parses (validated); the top one is parsed already. The branch is
        // looked at first: it differs for every request that is not a loop.
        let looped = may_loop
            && msg
                .top_via()
                .into_iter()
                .chain(
                    msg.values(&HeaderName::Via)
                        .skip(1)
                        .filter_map(|v| crate::message::Via::parse(v).ok()),
                )
                .any(|v| {
                    v.branch().is_some_and(|b| {
                        let at = crate::ids::MAGIC_COOKIE.len();
                        b.get(at..at + super::LOOP_HASH_LEN) == Some(hash.as_str())
                    }) && match v.port {
                        Some(p) if p != 5060 => format!("{}:{p}", v.host),
                        _ => v.host.to_string(),
                    }
                    .eq_ignore_ascii_case(&{
                        let mut me = String::new();
                        self.write_advertised(d.local, &mut me);
                        me
                    })
                });
        if looped {
            return self.respond(&key, &msg, Reply::new(482));
        }
        // §16.3 step 5: Proxy-Require.
        let unsupported: Vec<&str> = msg
            .values(&HeaderName::ProxyRequire)
            .filter(|t| !PROXY_EXTENSIONS.iter().any(|s| s.eq_ignore_ascii_case(t)))
            .collect();
        if !unsupported.is_empty() {
            let reply = Reply::new(420).header("Unsupported", unsupported.join(", "));
            return self.respond(&key, &msg, reply);
        }
        let mut routing = self.route_preprocess(&msg);
        // No open relay (config::Relay): refused outright when no one may relay; for local
        // users only, the credentials below decide, or else the From header. A redirect
        // server forwards nothing, so it relays nothing.
        let relays = !self.config.proxy.redirect && self.relays(&msg, &routing);
        let relay = self.config.proxy.relay;
        if relays && relay == Relay::None {
            return self.respond(&key, &msg, relaying_denied());
        }
        // §16.3 step 6 / §22.3: Proxy-Authorization, for requests outside a dialog (and
        // relays) when configured. Before the target set is looked at, so that the answer
        // is the same challenge whether the user exists or not.
        let initial = msg.to().is_some() && msg.to_tag().is_none();
        let authenticate = self.config.proxy.authenticate;
        let mut consumed = Vec::new();
        if authenticate && (initial || relays && relay == Relay::Local) {
            if let Err(reply) = self.authenticate(&msg, true) {
                return self.respond(&key, &msg, reply);
            }
            routing.authenticated = true;
            // §22.3: credentials for our realm are ours to consume; those for other realms
            // travel on to the proxies that asked for them. A lone Proxy-Authorization is
            // the one just verified, for our realm: it is not parsed again.
            let mut lines = msg
                .headers()
                .iter()
                .filter(|h| h.name == HeaderName::ProxyAuthorization);
            consumed = match (lines.next(), lines.next()) {
                (Some(only), None) => vec![only.line_range()],
                _ => {
                    let realm = self.realm();
                    msg.headers()
                        .iter()
                        .filter(|h| h.name == HeaderName::ProxyAuthorization)
                        .filter(|h| {
                            crate::auth::parse_credentials(h.value(&msg))
                                .is_ok_and(|c| c.realm == realm)
                        })
                        .map(|h| h.line_range())
                        .collect()
                }
            };
        }
        if relays && relay == Relay::Local && !authenticate && !self.caller_is_local(&msg) {
            return self.respond(&key, &msg, relaying_denied());
        }
        // §8.3: a redirect server answers with where to go instead of going there.
        if self.config.proxy.redirect {
            let reply = self.redirect_reply(&msg, routing.authenticated);
            return self.respond(&key, &msg, reply);
        }
        // §16.2: a stateful proxy answers an INVITE with 100 Trying at once, so the caller
        // stops retransmitting (§17.2.1: within 200 ms).
        if invite {
            self.respond_to(&key, &msg, Reply::new(100), d.remote);
        }
        let mut aor = std::mem::take(&mut self.scratch);
        let targets = self.targets(&routing, &mut aor);
        self.scratch = aor;
        let targets = match targets {
            Ok(t) => t,
            Err(reply) => return self.respond(&key, &msg, reply),
        };
        // §16.6 and RFC 3261 §16.6 note on q: the highest q group in parallel, the rest in
        // sequence when all of the group fail.
        // The first group stays in the target list itself: with one q-value (nearly always)
        // nothing more is allocated.
        let mut first = targets;
        first.sort_by_key(|t| std::cmp::Reverse(t.q));
        let first_len = first
            .first()
            .map_or(0, |f| first.iter().take_while(|t| t.q == f.q).count());
        let mut groups: std::collections::VecDeque<Vec<Target>> = Default::default();
        for t in first.drain(first_len..) {
            match groups.back_mut() {
                Some(g) if g[0].q == t.q => g.push(t),
                _ => groups.push_back(vec![t]),
            }
        }
        let routing_pop = (routing.pop_route, routing.pop_last_route);
        let id: ContextId = self.next_context;
        self.next_context += 1;
        let record_route = self.config.proxy.record_route
            && initial
            && matches!(
                msg.method(),
                Some(Method::Invite | Method::Subscribe | Method::Refer)
            );
        if let Some(tx) = self.servers.get_mut(&key) {
            tx.context = Some(id);
        }
        self.contexts.insert(
            id,
            Box::new(ResponseContext {
                request: msg,
                upstream: key,
                invite,
                branches: smallvec::SmallVec::new(),
                later: groups,
                candidates: Vec::new(),
                final_sent: false,
                cancelled: false,
                created: self.now,
                hash,
                routing_pop,
                record_route,
                consumed,
                local: d.local,
                remote: d.remote,
                lookups: 0,
            }),
        );
        for t in first {
            self.fork(id, t);
        }
    }

    /// RFC 3263: `parked` waits for `query`; the first to wait asks the driver. Whether it
    /// could wait (false: too many lookups pending).
    fn park(&mut self, query: crate::Query, parked: Parked) -> bool {
        match self.dns.park(query.clone(), parked) {
            Parking::Ask => {
                self.queue
                    .push_back(Output::Event(crate::Event::Resolve(query.clone())));
                let at = self.now + super::dns::LOOKUP_TIMEOUT;
                self.schedule(Some(at), TimerRef::Lookup(query));
                true
            }
            Parking::Joined => true,
            Parking::Full => false,
        }
    }

    /// The driver answered `r` (RFC 3263): the requests that waited for it go on, to the
    /// first address, or fail: 404 when the name has no address (§21.4.5, as for a domain
    /// that does not exist).
    pub(crate) fn handle_resolved(&mut self, r: crate::Resolution) {
        for p in self.dns.answer(&r.query, &r.addrs, self.now) {
            self.resume(p, r.addrs.first().copied());
        }
    }

    /// No answer in time: RFC 3261 §21.5.5, 504 Server Time-out.
    pub(crate) fn lookup_timeout(&mut self, query: &crate::Query) {
        for p in self.dns.answer(query, &[], self.now) {
            self.lookup_failed(p, 504);
        }
    }

    /// A target whose name could not be resolved is a failed branch: `status` becomes a
    /// candidate for §16.7 step 6 (404: no such domain; 504: the DNS did not answer).
    fn lookup_failed(&mut self, p: Parked, status: u16) {
        if p.ack.is_some() {
            return;
        }
        let Some(ctx) = self.contexts.get_mut(&p.context) else {
            return;
        };
        ctx.lookups = ctx.lookups.saturating_sub(1);
        ctx.candidates.push(super::Candidate {
            status,
            bytes: None,
            challenges: Vec::new(),
        });
        self.finish_if_done(p.context);
    }

    fn resume(&mut self, p: Parked, addr: Option<std::net::SocketAddr>) {
        if let Some((bytes, local)) = p.ack {
            // An ACK has no answer to give when its next hop has no address: it is lost,
            // and the UAS retransmits its 2xx until the caller's next ACK (§13.3.1.4).
            if let Some(remote) = addr {
                self.queue.push_back(Output::Transmit(Transmit {
                    transport: p.transport,
                    local,
                    remote,
                    bytes,
                }));
            }
            return;
        }
        let Some(next_hop) = addr else {
            return self.lookup_failed(p, 404);
        };
        let Some(ctx) = self.contexts.get_mut(&p.context) else {
            return;
        };
        ctx.lookups = ctx.lookups.saturating_sub(1);
        // Cancelled or answered meanwhile: the branch is not worth starting.
        if ctx.cancelled || ctx.final_sent {
            return self.finish_if_done(p.context);
        }
        self.fork(
            p.context,
            Target {
                uri: p.uri,
                next_hop,
                q: 1000,
                transport: p.transport,
                lookup: None,
            },
        );
    }

    /// §16.6: one copy of the context's request to `target`, through a new client
    /// transaction.
    pub(crate) fn fork(&mut self, id: ContextId, target: Target) {
        if let Some(query) = target.lookup {
            let parked = Parked {
                context: id,
                uri: target.uri,
                transport: target.transport,
                ack: None,
            };
            if let Some(ctx) = self.contexts.get_mut(&id) {
                ctx.lookups += 1;
            }
            if !self.park(query, parked.clone()) {
                self.lookup_failed(parked, 503);
            }
            return;
        }
        let Some(ctx) = self.contexts.get(&id) else {
            return;
        };
        let index = ctx.branches.len();
        let method = ctx.request.method().map_or("", |m| m.as_str());
        // §16.6 step 8: unique across space and time. Two server transactions can share a
        // loop hash (requests that differ only in their Via); a live client transaction
        // must not be replaced, so a taken branch gets one more suffix.
        let mut digits = [0; 20];
        let mut worker_digits = [0; 20];
        // A worker of several names itself after the hash (`crate::shared::branch_worker`):
        // the responses come from the next hop, which the kernel may hand to another worker.
        let worker = match self.worker {
            Some(w) => [
                "w",
                crate::message::decimal(u64::from(w), &mut worker_digits),
            ],
            None => ["", ""],
        };
        let stem = [
            crate::ids::MAGIC_COOKIE,
            ctx.hash.as_str(),
            worker[0],
            worker[1],
            ".",
            crate::message::decimal(index as u64 + 1, &mut digits),
        ];
        // The key holds the branch: the branch's only copy.
        let mut key = ClientKey::of_parts(&stem, method);
        let mut n = 1;
        let mut suffix_digits = [0; 20];
        while self.clients.contains_key(&key) {
            n += 1;
            let suffix = crate::message::decimal(n, &mut suffix_digits);
            let [a, b, c, d, e, f] = stem;
            key = ClientKey::of_parts(&[a, b, c, d, e, f, ".", suffix], method);
        }
        // The Via and the Record-Route value, side by side in the element's scratch text.
        // The branch from its parts, unless it took a suffix: reading it back out of the key
        // is a search.
        let suffixed;
        let branch: &[&str] = if n == 1 {
            &stem
        } else {
            suffixed = [key.branch()];
            &suffixed
        };
        let mut text = std::mem::take(&mut self.scratch);
        text.clear();
        self.write_via(target.transport, ctx.local, branch, &mut text);
        let via_end = text.len();
        if ctx.record_route {
            text.push_str("<sip:");
            self.write_advertised(ctx.local, &mut text);
            text.push_str(";lr>");
        }
        let (via, rr) = text.split_at(via_end);
        let (received, rport) = crate::element::via_params(&ctx.request, ctx.remote);
        let max_forwards = ctx
            .request
            .max_forwards()
            .map_or(MAX_FORWARDS_DEFAULT, |m| m.saturating_sub(1));
        let new_uri =
            (target.uri != ctx.request.request_uri().unwrap_or("")).then_some(target.uri.as_str());
        let bytes = ctx.request.forward_request(&RequestEdits {
            request_uri: new_uri,
            max_forwards: Some(max_forwards),
            record_route: ctx.record_route.then_some(rr),
            pop_route: ctx.routing_pop.0,
            pop_last_route: ctx.routing_pop.1,
            via: Some(via),
            received,
            rport,
            remove_lines: &ctx.consumed,
        });
        self.scratch = text;
        let invite = ctx.invite;
        let local = ctx.local;
        let now = self.now;
        let timer_c = invite.then(|| now + self.config.proxy.timer_c);
        if let Some(ctx) = self.contexts.get_mut(&id) {
            ctx.branches.push(Branch {
                key: key.clone(),
                target: target.uri,
                state: BranchState::Trying,
                timer_c,
                // A new branch: its entry goes in at its deadline.
                timer_c_entry: timer_c,
                cancelled: false,
            });
        }
        self.schedule(timer_c, TimerRef::TimerC(id, index));
        let reliable = target.transport.is_reliable();
        let (machine, effects, request) = if invite {
            let (m, e) = InviteClient::new(bytes, self.config.timers, reliable, now);
            let request = m.request().cloned();
            (ClientMachine::Invite(m), e, request)
        } else {
            let (m, e) = NonInviteClient::new(bytes, self.config.timers, reliable, now);
            (ClientMachine::NonInvite(m), e, None)
        };
        self.clients.insert(
            key.clone(),
            Box::new(ClientTx {
                machine,
                request,
                local,
                remote: target.next_hop,
                transport: target.transport,
                branch_of: Some((id, index)),
            }),
        );
        self.client_effects(&key, effects, None);
    }

    /// §16.10: a CANCEL. It gets its own 200 (the CANCEL's server transaction), then every
    /// pending branch of the INVITE it names is cancelled; the INVITE's final response (a
    /// 487 from downstream) comes back through the response context.
    pub(crate) fn handle_cancel(&mut self, msg: &Message, key: &TxKey) {
        let invite_key = key.with_method("INVITE");
        let context = self.servers.get(&invite_key).and_then(|t| t.context);
        let Some(id) = context else {
            // §16.10 would forward it statelessly; with no INVITE transaction here there is
            // nothing it could cancel, and §9.2's answer for that is 481.
            return self.respond(key, msg, Reply::new(481));
        };
        self.respond(key, msg, Reply::new(200));
        let pending: Vec<usize> = match self.contexts.get_mut(&id) {
            Some(ctx) => {
                ctx.cancelled = true;
                ctx.later.clear();
                (0..ctx.branches.len())
                    .filter(|i| !ctx.branches[*i].is_done())
                    .collect()
            }
            None => Vec::new(),
        };
        for i in pending {
            self.cancel_branch(id, i);
        }
        self.finish_if_done(id);
    }

    /// §9.1 / §16.10: CANCEL one branch: now if it has had a provisional response, else as
    /// soon as it has one.
    pub(crate) fn cancel_branch(&mut self, id: ContextId, index: usize) {
        let Some(branch) = branch_mut(&mut self.contexts, id, index) else {
            return;
        };
        let first_time = !branch.cancelled;
        branch.cancelled = true;
        let key = branch.key.clone();
        let Some(tx) = self.clients.get(&key) else {
            return;
        };
        let allowed = matches!(&tx.machine, ClientMachine::Invite(m) if m.cancel_allowed());
        if !allowed || !first_time && self.clients.contains_key(&key.with_method("CANCEL")) {
            return;
        }
        let Some(Ok(invite)) = tx
            .request
            .as_deref()
            .map(|r| Message::parse(r, &self.config.limits.message))
        else {
            return;
        };
        let Some(cancel) = invite.cancel() else {
            return;
        };
        let (local, remote, transport) = (tx.local, tx.remote, tx.transport);
        let (m, effects) = NonInviteClient::new(
            cancel,
            self.config.timers,
            transport.is_reliable(),
            self.now,
        );
        // §9.1: a final response should follow the CANCEL within 64*T1, else the INVITE is
        // taken as cancelled. Timer C, reset to that (§16.8 "any value it chooses"), looks.
        let timer_c = self.now + self.config.timers.t1 * 64;
        self.set_timer_c(id, index, Some(timer_c));
        let ckey = key.with_method("CANCEL");
        self.clients.insert(
            ckey.clone(),
            Box::new(ClientTx {
                machine: ClientMachine::NonInvite(m),
                request: None,
                local,
                remote,
                transport,
                branch_of: None,
            }),
        );
        self.client_effects(&ckey, effects, None);
    }

    /// An ACK for a 2xx (or one that matches nothing): forwarded statelessly along its route
    /// (§16.4-§16.6 without a transaction; an ACK gets no response).
    pub(crate) fn forward_ack(&mut self, msg: Message, d: &Datagram<'_>) {
        if msg.max_forwards() == Some(0) {
            return self.drop_ack(d, "ACK with Max-Forwards 0");
        }
        let routing = self.route_preprocess(&msg);
        // An ACK cannot be challenged (§22.1): when it would relay, only the From header
        // can vouch for it.
        if self.relays(&msg, &routing)
            && match self.config.proxy.relay {
                Relay::Open => false,
                Relay::Local => !self.caller_is_local(&msg),
                Relay::None => true,
            }
        {
            return self.drop_ack(d, "ACK not relayed: relaying denied");
        }
        // The ACK's next hop may be a name nobody asked about yet (the callee's Contact):
        // it then waits for the answer like a request would, without a context.
        let mut aor = std::mem::take(&mut self.scratch);
        let targets = self.targets(&routing, &mut aor);
        self.scratch = aor;
        let target = match targets {
            Ok(mut t) if !t.is_empty() => t.remove(0),
            _ => return self.drop_ack(d, "ACK with no target"),
        };
        let hash = loop_hash(&msg, self.loop_salt);
        let mut via = std::mem::take(&mut self.scratch);
        via.clear();
        self.write_via(
            target.transport,
            d.local,
            &[crate::ids::MAGIC_COOKIE, hash.as_str(), ".0"],
            &mut via,
        );
        let (received, rport) = crate::element::via_params(&msg, d.remote);
        let max_forwards = msg.max_forwards().map_or(MAX_FORWARDS_DEFAULT, |m| m - 1);
        let new_uri =
            (target.uri != msg.request_uri().unwrap_or("")).then_some(target.uri.as_str());
        let bytes = msg.forward_request(&RequestEdits {
            request_uri: new_uri,
            max_forwards: Some(max_forwards),
            record_route: None,
            pop_route: routing.pop_route,
            pop_last_route: routing.pop_last_route,
            via: Some(&via),
            received,
            rport,
            remove_lines: &[],
        });
        self.scratch = via;
        if let Some(query) = target.lookup {
            let parked = Parked {
                context: 0,
                uri: target.uri,
                transport: target.transport,
                ack: Some((bytes, d.local)),
            };
            if !self.park(query, parked) {
                self.drop_ack(d, "ACK dropped: too many DNS lookups pending");
            }
            return;
        }
        self.queue.push_back(Output::Transmit(Transmit {
            transport: target.transport,
            local: d.local,
            remote: target.next_hop,
            bytes,
        }));
    }

    fn drop_ack(&mut self, d: &Datagram<'_>, why: &str) {
        self.queue.push_back(Output::Event(crate::Event::Dropped {
            remote: d.remote,
            reason: why.to_owned(),
        }));
    }

    /// Carries out what a client transaction asked for. `response` is the message that
    /// produced the effects and where it came from (for [`Effect::PassToTu`]).
    pub(crate) fn client_effects(
        &mut self,
        key: &crate::element::ClientKey,
        effects: Effects,
        response: Option<(&Message, std::net::SocketAddr)>,
    ) {
        let Some(tx) = self.clients.get(key) else {
            return;
        };
        let (transport, local, remote, branch_of) =
            (tx.transport, tx.local, tx.remote, tx.branch_of);
        let mut terminated = false;
        for e in effects {
            match e {
                Effect::Send(bytes) => self.queue.push_back(Output::Transmit(Transmit {
                    transport,
                    local,
                    remote,
                    bytes,
                })),
                Effect::PassToTu => {
                    if let (Some((id, i)), Some((r, from))) = (branch_of, response) {
                        self.branch_response(id, i, r, from);
                    }
                }
                Effect::TimedOut | Effect::TransportError => {
                    if let Some((id, i)) = branch_of {
                        self.branch_failed(id, i);
                    }
                }
                Effect::Terminated => terminated = true,
                Effect::Absorb | Effect::NoAck => {}
            }
        }
        if terminated {
            self.clients.remove(key);
        } else if let Some(tx) = self.clients.get_mut(key) {
            let (at, awaiting_final) = match &tx.machine {
                ClientMachine::Invite(m) => (m.deadline(), m.awaiting_final()),
                ClientMachine::NonInvite(m) => (m.deadline(), m.awaiting_final()),
            };
            // The request is kept for the CANCEL and the non-2xx ACK built from it (§9.1,
            // §17.1.1.3); once a final response has come, neither can be owed.
            if !awaiting_final {
                tx.request = None;
            }
            // No key copy for a transaction without a deadline.
            if let Some(at) = at {
                self.timers.insert((at, TimerRef::Client(key.clone())));
            }
        }
    }
}

/// 403 for a request this element will not relay (Kamailio says "Not relaying").
fn relaying_denied() -> Reply {
    Reply::with_reason(403, "Relaying Denied")
}

/// The transport a URI asks for (RFC 3263 §4.1: an explicit `transport` parameter); UDP
/// otherwise. (`sips:` would need TLS, which this element does not speak yet.)
fn transport_of(uri: &SipUri<'_>) -> Transport {
    match uri.params.get("transport").flatten() {
        Some(t) if t.eq_ignore_ascii_case("tcp") => Transport::Tcp,
        _ => Transport::Udp,
    }
}
