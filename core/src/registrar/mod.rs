//! The registrar (RFC 3261 §10.3): every step of REGISTER processing, in the RFC's order,
//! over the [`Location`] service. Processing is atomic (§10.3 step 7: "either all binding
//! changes are made or none"): the new binding list is computed first and stored last.

pub mod location;

use std::borrow::Cow;
use std::net::SocketAddr;
use std::sync::MutexGuard;

use smallvec::SmallVec;

use crate::config::RegistrarConfig;
use crate::message::{AorSink, HeaderName, Message, NameAddr, SipUri, Uri};
use crate::shared::Shared;
use crate::time::Instant;
use crate::Event;

pub use location::{Binding, Flow, Location};

/// The answer the registrar wants sent, before it becomes bytes. Reason phrases and header
/// names are nearly always fixed text: borrowed, they cost no allocation per response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    /// Status code.
    pub status: u16,
    /// Reason phrase.
    pub reason: Cow<'static, str>,
    /// Headers after the ones copied from the request, in order.
    pub headers: Vec<(Cow<'static, str>, String)>,
}

impl Reply {
    /// A reply with the RFC's default reason phrase.
    pub fn new(status: u16) -> Self {
        Reply::with_reason(status, crate::message::reason_phrase(status))
    }

    /// A reply with a reason phrase of our own (names the problem for whoever reads the trace).
    pub fn with_reason(status: u16, reason: impl Into<Cow<'static, str>>) -> Self {
        Reply {
            status,
            reason: reason.into(),
            headers: Vec::new(),
        }
    }

    /// Adds a header.
    pub fn header(mut self, name: impl Into<Cow<'static, str>>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }
}

/// The outcome of authentication (§10.3 step 3), supplied by the element.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Authentication {
    /// The domain does not ask for credentials.
    NotRequired,
    /// The request carries valid credentials of this user.
    User(String),
    /// Answer with this (401 challenge, 400 for malformed credentials).
    Reply(Reply),
}

/// Who may register which AOR (§10.3 step 4).
pub trait Authorize {
    /// Whether `user` may modify the bindings of `aor`.
    fn may_register(&self, user: &str, aor: &str) -> bool;
}

/// Facts about the element that the registrar checks requests against.
#[derive(Clone, Debug, Default)]
pub struct Identity {
    /// Served domains, lower-case.
    pub domains: Vec<String>,
    /// Names of the element itself, lower-case.
    pub host_names: Vec<String>,
    /// Addresses the element listens on.
    pub local_addrs: Vec<SocketAddr>,
}

impl Identity {
    /// Whether `host` is one of the served domains.
    pub fn serves(&self, host: &str) -> bool {
        self.domains.iter().any(|d| d.eq_ignore_ascii_case(host))
    }

    /// Whether binding `contact` to `aor` would send every request for the AOR straight back
    /// here: the Contact is the AOR itself, or names this element by one of its own names
    /// or addresses. A Contact for another AOR of a served domain is call forwarding, and one
    /// carrying escaped headers (RFC 4475 §3.3.14: `?Route=...`) is routed elsewhere first;
    /// both are accepted.
    pub fn loops_back(&self, contact: &SipUri<'_>, aor: &str) -> bool {
        if contact.headers.is_some() {
            return false;
        }
        // The AOR itself as its contact: only when it also names our port (an IP-address
        // domain has its phones at the same address on other ports).
        let port_ours = contact.port.is_none()
            || self.local_addrs.is_empty()
            || self
                .local_addrs
                .iter()
                .any(|a| Some(a.port()) == contact.port);
        if port_ours && contact.aor_is(aor) {
            return true;
        }
        !self.serves(contact.host) && self.is_self(contact.host, contact.port)
    }

    /// §10.3 step 5 and §16.5: the address of record of a URI in a served domain, without
    /// the port when it is one of ours, so that `sip:bob@127.0.0.1:5060` and
    /// `sip:bob@127.0.0.1` are the same user of the domain `127.0.0.1`.
    pub fn canonical_aor(&self, uri: &SipUri<'_>) -> String {
        let mut aor = String::new();
        self.write_canonical_aor(uri, &mut aor);
        aor
    }

    /// [`Identity::canonical_aor`] written to `out`.
    pub fn write_canonical_aor(&self, uri: &SipUri<'_>, out: &mut impl AorSink) {
        match uri.port {
            Some(p) if self.local_addrs.iter().any(|a| a.port() == p) => {
                let mut u = uri.clone();
                u.port = None;
                u.write_aor(out)
            }
            _ => uri.write_aor(out),
        }
    }

    /// Whether `host[:port]` designates this element (a served domain, one of its names or
    /// addresses). A Contact that does would make every request to that user loop back here.
    pub fn is_self(&self, host: &str, port: Option<u16>) -> bool {
        if let Some(ip) = crate::message::host_ip(host) {
            let (ip, port) = (ip.to_canonical(), port.unwrap_or(5060));
            return self
                .local_addrs
                .iter()
                .any(|a| a.ip().to_canonical() == ip && a.port() == port);
        }
        let by_name =
            self.serves(host) || self.host_names.iter().any(|n| n.eq_ignore_ascii_case(host));
        let port_ok = port.is_none()
            || self.local_addrs.is_empty()
            || self.local_addrs.iter().any(|a| Some(a.port()) == port);
        by_name && port_ok
    }
}

/// The registrar: policy plus the location service.
#[derive(Debug)]
pub struct Registrar {
    config: RegistrarConfig,
    identity: Identity,
    /// Shared with the element's other workers, if any ([`crate::shared`]).
    location: Shared<Location>,
    /// The AOR of the REGISTER being processed, written here: kept from one to the next,
    /// so that computing it allocates nothing once grown.
    aor: String,
}

/// Option tags the registrar understands in Require (§10.3 step 2). None yet: RFC 3327 Path
/// and RFC 5626 outbound come later.
const SUPPORTED_EXTENSIONS: &[&str] = &[];

/// The Contact header field of a REGISTER (§10.3 step 6), read once.
enum ContactField<'a> {
    /// `*`, among `count` Contact values in all (it must be the only one).
    Star { count: usize },
    /// The changes, in request order; none for a query (§10.3 step 8). Nearly every
    /// REGISTER has one Contact: kept inline.
    List(SmallVec<[ContactChange<'a>; 1]>),
}

/// One Contact of the request, checked and ready to apply (§10.3 step 7).
struct ContactChange<'a> {
    uri: &'a str,
    params: Vec<(&'a str, Option<&'a str>)>,
    q: Option<u16>,
    expires: u32,
}

impl Registrar {
    /// A registrar with an empty location service, whose table is keyed by `seed`
    /// ([`crate::keymap`]).
    pub fn new(config: RegistrarConfig, identity: Identity, seed: u64) -> Self {
        Self::with_location(config, identity, Shared::new(Location::with_seed(seed)))
    }

    /// A registrar over `location`, which other registrars may share ([`crate::shared`]).
    pub fn with_location(
        config: RegistrarConfig,
        identity: Identity,
        location: Shared<Location>,
    ) -> Self {
        Registrar {
            config,
            identity,
            location,
            aor: String::new(),
        }
    }

    /// The location service, for another registrar to share.
    pub(crate) fn shared_location(&self) -> Shared<Location> {
        self.location.clone()
    }

    /// Who this registrar is: its domains, names and addresses.
    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// The location service (for lookups and tests), locked while the guard lives: hold
    /// it only for a lookup, other workers of the element wait for it.
    pub fn location(&self) -> MutexGuard<'_, Location> {
        self.location.lock()
    }

    /// Replaces the bindings of `aor` with ones kept from an earlier run.
    pub fn restore(&mut self, aor: &str, bindings: Vec<Binding>) {
        self.location.lock().set(aor, bindings);
    }

    /// Removes expired bindings; one event each.
    pub fn purge(&mut self, now: Instant) -> Vec<Event> {
        // Under the lock, so each binding is purged, and reported, by one worker only.
        self.location
            .lock()
            .purge(now)
            .into_iter()
            .map(|(aor, contact)| Event::BindingExpired { aor, contact })
            .collect()
    }

    /// The next binding expiry.
    pub fn next_expiry(&self) -> Option<Instant> {
        self.location.lock().next_expiry()
    }

    /// RFC 3261 §10.3: processes a REGISTER. `authenticate` runs at step 3, only if steps 1-2
    /// passed, so that a request for a foreign domain is not challenged. `events`, when
    /// given, hears of every binding added, refreshed with a new CSeq, or removed.
    pub fn register(
        &mut self,
        req: &Message,
        now: Instant,
        flow: Flow,
        authenticate: &mut dyn FnMut() -> Authentication,
        authorize: &dyn Authorize,
        mut events: Option<&mut dyn FnMut(Event)>,
    ) -> Reply {
        // Step 1: the Request-URI names a domain this registrar serves (or the registrar
        // itself, as in RFC 3665 §2 where it is `sips:ss2.biloxi.example.com`). The element
        // has parsed it already to route the request here: the cached view is reused.
        let ruri = match req.request_uri_parsed() {
            Some(Ok(Uri::Sip(u))) => u,
            Some(Ok(Uri::Other { .. })) => {
                return Reply::with_reason(416, "Unsupported URI Scheme")
            }
            _ => return Reply::with_reason(400, "Bad Request-URI"),
        };
        if !(self.identity.serves(ruri.host) || self.identity.is_self(ruri.host, ruri.port)) {
            return Reply::with_reason(404, "Domain Not Served Here");
        }

        // Step 2: Require.
        let unsupported: Vec<&str> = req
            .values(&HeaderName::Require)
            .filter(|tag| {
                !SUPPORTED_EXTENSIONS
                    .iter()
                    .any(|s| s.eq_ignore_ascii_case(tag))
            })
            .collect();
        if !unsupported.is_empty() {
            return Reply::new(420).header("Unsupported", unsupported.join(", "));
        }

        // Step 3: authentication.
        let user = match authenticate() {
            Authentication::NotRequired => None,
            Authentication::User(u) => Some(u),
            Authentication::Reply(r) => return r,
        };

        // Step 5 comes before 4 here because step 4 needs the AOR: the To URI, canonical.
        // Validation has parsed it already; the message keeps the parsed view.
        let aor_uri = match req.to_uri() {
            Some(Ok(Uri::Sip(u))) => u,
            None => return Reply::with_reason(400, "Missing To"),
            // An AOR is a SIP or SIPS URI (§10.2); RFC 4475 §3.3.4 expects 400.
            Some(_) => return Reply::with_reason(400, "To Is Not A SIP URI"),
        };
        if !self.identity.serves(aor_uri.host) {
            return Reply::with_reason(404, "Not Found");
        }
        // Written into the registrar's kept text, which the success path below puts back
        // (a refusal only costs the next REGISTER an allocation).
        let mut aor = std::mem::take(&mut self.aor);
        aor.clear();
        self.identity.write_canonical_aor(&aor_uri, &mut aor);

        // Step 4: authorization.
        if let Some(user) = &user {
            if !authorize.may_register(user, &aor) {
                return Reply::with_reason(403, "Forbidden");
            }
        }

        // Step 6: Contact.
        let header_expires = req.expires();
        let field = match self.contact_field(req, &aor, header_expires) {
            Ok(f) => f,
            Err(r) => return r,
        };
        let call_id = req.call_id().unwrap_or_default();
        let cseq = req.cseq().map(|c| c.seq).unwrap_or(0);
        // The AOR is looked up once: `stored` also tells whether it has an entry at all, and
        // the bindings alive at `now` are read from it in place. Locked from the lookup to
        // the update: step 7 is atomic for other workers too.
        let mut location = self.location.lock();
        let stored = location.stored(&aor);
        let current = stored
            .unwrap_or_default()
            .iter()
            .filter(move |b| b.expires_at > now);

        let new_list: Vec<Binding> = match field {
            ContactField::Star { count } => {
                // §10.3 step 6: `*` only with Expires: 0 and as the only Contact.
                if header_expires != Some(0) {
                    return Reply::with_reason(400, "Wildcard Contact Needs Expires 0");
                }
                if count != 1 {
                    return Reply::with_reason(400, "Wildcard Contact Must Be Alone");
                }
                for b in current.clone() {
                    if b.call_id() == call_id && cseq <= b.cseq {
                        return Reply::with_reason(400, "CSeq Out Of Order");
                    }
                }
                if let Some(events) = events.as_mut() {
                    for b in current {
                        events(Event::Unregistered {
                            aor: aor.clone(),
                            contact: b.contact().to_owned(),
                        });
                    }
                }
                Vec::new()
            }
            ContactField::List(changes) if changes.is_empty() => current.cloned().collect(),
            ContactField::List(changes) => {
                let mut next: Vec<Binding> =
                    Vec::with_capacity(current.clone().count() + changes.len());
                next.extend(current.clone().cloned());
                for ch in changes {
                    let existing = next.iter().position(|b| same_contact(b.contact(), ch.uri));
                    if let Some(i) = existing {
                        let b = &next[i];
                        if b.call_id() == call_id && cseq <= b.cseq {
                            // §10.3 step 7: the update MUST be aborted and the request fails.
                            return Reply::with_reason(400, "CSeq Out Of Order");
                        }
                    }
                    match (existing, ch.expires) {
                        (Some(i), 0) => {
                            next.remove(i);
                        }
                        (None, 0) => {}
                        (existing, expires) => {
                            let binding = Binding::new(
                                ch.uri,
                                ch.params,
                                ch.q,
                                now + std::time::Duration::from_secs(u64::from(expires)),
                                call_id,
                                cseq,
                                flow,
                            );
                            match existing {
                                Some(i) => next[i] = binding,
                                None => next.push(binding),
                            }
                        }
                    }
                }
                if next.len() > self.config.bindings_per_aor_max {
                    return Reply::with_reason(403, "Too Many Contacts");
                }
                // A new AOR (no entry, not even of expired bindings) needs room.
                if stored.is_none()
                    && !next.is_empty()
                    && location.aor_count() >= self.config.aors_max
                {
                    return Reply::with_reason(503, "Location Service Full");
                }
                if let Some(events) = events.as_mut() {
                    for b in current.clone() {
                        if !next.iter().any(|n| n.contact() == b.contact()) {
                            events(Event::Unregistered {
                                aor: aor.clone(),
                                contact: b.contact().to_owned(),
                            });
                        }
                    }
                    for n in &next {
                        let refreshed = current.clone().any(|b| {
                            b.contact() == n.contact()
                                && b.cseq == n.cseq
                                && b.call_id() == n.call_id()
                        });
                        if !refreshed {
                            events(Event::Registered {
                                aor: aor.clone(),
                                contact: n.contact().to_owned(),
                                expires: n.remaining_secs(now),
                            });
                        }
                    }
                }
                next
            }
        };

        // Step 8: 200 OK listing every current binding: the new list, all of it alive (a
        // binding written now expires at least a second from now), in the order stored.
        let mut reply = Reply::new(200);
        reply.headers.reserve_exact(new_list.len());
        for b in &new_list {
            reply = reply.header("Contact", b.contact_value(now));
        }
        location.set(&aor, new_list);
        drop(location);
        self.aor = aor;
        reply
    }

    /// Reads the Contact header field of a REGISTER once (§10.3 steps 6 and 7): a `*`
    /// anywhere makes it a wildcard; otherwise the first value that does not parse, then the
    /// first Contact refused, in request order, decides the answer. The checks change
    /// nothing, so running them on values a later `*` overrides is harmless.
    fn contact_field<'a>(
        &self,
        req: &'a Message,
        aor: &str,
        header_expires: Option<u32>,
    ) -> Result<ContactField<'a>, Reply> {
        let mut count = 0;
        let mut star = false;
        let mut unparsable = None;
        let mut refused = None;
        let mut changes = SmallVec::new();
        for value in req.values(&HeaderName::Contact) {
            count += 1;
            if value == "*" {
                star = true;
            } else if !star && unparsable.is_none() {
                match NameAddr::parse(value) {
                    Err(e) => unparsable = Some(e),
                    Ok(c) if refused.is_none() => {
                        match self.contact_change(&c, aor, header_expires) {
                            Ok(ch) => changes.push(ch),
                            Err(r) => refused = Some(r),
                        }
                    }
                    Ok(_) => {}
                }
            }
        }
        if star {
            return Ok(ContactField::Star { count });
        }
        if let Some(e) = unparsable {
            return Err(Reply::with_reason(400, e.reason));
        }
        match refused {
            Some(r) => Err(r),
            None => Ok(ContactField::List(changes)),
        }
    }

    /// Checks one Contact of the request and works out its expiry (§10.3 step 7).
    fn contact_change<'a>(
        &self,
        c: &NameAddr<'a>,
        aor: &str,
        header_expires: Option<u32>,
    ) -> Result<ContactChange<'a>, Reply> {
        let uri = match Uri::parse(c.uri) {
            Ok(u) => u,
            Err(e) => return Err(Reply::with_reason(400, e.reason)),
        };
        if let Uri::Sip(sip) = &uri {
            if self.identity.loops_back(sip, aor) {
                return Err(Reply::with_reason(403, "Contact Points At This Registrar"));
            }
        }
        let mut q = None;
        let mut expires_param = None;
        let mut params = Vec::new();
        for (name, value) in c.params.iter() {
            if name.eq_ignore_ascii_case("q") {
                match value.and_then(location::parse_q) {
                    Some(v) => q = Some(v),
                    None => return Err(Reply::with_reason(400, "Bad q-value")),
                }
            } else if name.eq_ignore_ascii_case("expires") {
                match value.and_then(|v| v.parse::<u32>().ok()) {
                    Some(v) => expires_param = Some(v),
                    None => return Err(Reply::with_reason(400, "Bad Contact Expires")),
                }
            } else {
                params.push((name, value));
            }
        }
        let requested = expires_param
            .or(header_expires)
            .unwrap_or(self.config.default_expires);
        if requested != 0 && requested < self.config.min_expires {
            return Err(Reply::new(423).header("Min-Expires", self.config.min_expires.to_string()));
        }
        Ok(ContactChange {
            uri: c.uri,
            params,
            q,
            expires: requested.min(self.config.max_expires),
        })
    }
}

/// §10.3 step 7 compares Contact URIs with the rules of §19.1.4; non-SIP URIs (the
/// `mailto:` of RFC 3665 §2.2) compare as strings. A refresh repeats its Contact byte for
/// byte, and a URI is equivalent to itself: equal strings need no parsing.
fn same_contact(a: &str, b: &str) -> bool {
    if a == b {
        return true;
    }
    match (Uri::parse(a), Uri::parse(b)) {
        (Ok(Uri::Sip(x)), Ok(Uri::Sip(y))) => x.equivalent(&y),
        _ => a == b,
    }
}
