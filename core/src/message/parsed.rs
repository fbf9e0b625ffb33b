//! Typed views of a message parsed once, on first use, and kept as spans into its head
//! (Kamailio's `hdr_field.parsed`, filled by the first `parse_*` that needs it).
//!
//! A proxy reads the top Via, the To and From tags and the Request-URI several times per
//! request (validation, transaction matching, loop detection, routing, the 100 Trying, the
//! forwarded copy); parsing each once makes every later read a few loads. The views borrow
//! from the message, so the cache keeps where their pieces are, not the views themselves.

use std::borrow::Cow;
use std::cell::OnceCell;
use std::net::IpAddr;

use crate::message::{NameAddr, Params, ParseError, SipUri, Uri, Via};

/// Where a piece of a view sits in the head. A piece that is not in the head (the empty
/// text of absent params) is empty, which reads back the same.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Span {
    start: usize,
    end: usize,
}

impl Span {
    /// The span of `s` in `head`; empty when `s` is not a slice of it.
    pub(crate) fn of(head: &str, s: &str) -> Span {
        offset_in(head, s).map_or(Span::default(), |start| Span {
            start,
            end: start + s.len(),
        })
    }

    pub(crate) fn get(self, head: &str) -> &str {
        head.get(self.start..self.end).unwrap_or("")
    }

    /// The same piece of a copy of the text at `from` placed at `to`. An empty span stays
    /// as it is: it reads back empty wherever it is.
    fn moved(self, from: usize, to: usize) -> Span {
        if self.start == self.end {
            return self;
        }
        match self.start.checked_sub(from) {
            Some(at) => Span {
                start: at + to,
                end: self.end - self.start + at + to,
            },
            None => Span::default(),
        }
    }
}

/// Offset of `s`, a slice of `head`, in `head`.
pub(crate) fn offset_in(head: &str, s: &str) -> Option<usize> {
    let base = head.as_ptr() as usize;
    let p = s.as_ptr() as usize;
    (p >= base && p + s.len() <= base + head.len()).then(|| p - base)
}

/// The views cached on a [`crate::message::Message`], each filled on first use.
#[derive(Clone, Debug, Default)]
pub(crate) struct Parsed {
    pub(crate) top_via: OnceCell<Option<ViaSpans>>,
    pub(crate) from: OnceCell<Option<NameAddrSpans>>,
    pub(crate) to: OnceCell<Option<NameAddrSpans>>,
    pub(crate) request_uri: OnceCell<Option<Result<UriSpans, ParseError>>>,
    /// The URIs of From and To, read by validation, the registrar (the AOR) and the proxy.
    pub(crate) from_uri: OnceCell<Option<Result<UriSpans, ParseError>>>,
    pub(crate) to_uri: OnceCell<Option<Result<UriSpans, ParseError>>>,
}

/// [`Parsed`], boxed: a message is moved several times on its way through the element.
/// Allocated when a view is first asked for (a message that is only parsed, a stray
/// response or a dropped datagram, never needs the views), unless the parse was given a
/// spare one ([`crate::message::Spare`]). Derived data: two messages with the same bytes
/// are equal whatever their caches hold.
#[derive(Clone, Debug, Default)]
pub(crate) struct LazyParsed(OnceCell<Box<Parsed>>);

impl LazyParsed {
    /// A cache in `spare` (an emptied one, [`crate::message::Spare`]) or, without one,
    /// allocated on first use.
    pub(crate) fn with(spare: Option<Box<Parsed>>) -> Self {
        LazyParsed(spare.map_or_else(OnceCell::new, OnceCell::from))
    }

    pub(crate) fn get(&self) -> &Parsed {
        self.0.get_or_init(Box::default)
    }

    /// The cache, if it was ever allocated.
    pub(crate) fn into_inner(self) -> Option<Box<Parsed>> {
        self.0.into_inner()
    }
}

impl PartialEq for LazyParsed {
    fn eq(&self, _: &LazyParsed) -> bool {
        true
    }
}

impl Eq for LazyParsed {}

/// A [`Via`] as spans. The protocol is owned only when LWS had to be removed from it.
#[derive(Clone, Debug)]
pub(crate) struct ViaSpans {
    protocol: Result<Span, String>,
    transport: Span,
    host: Span,
    port: Option<u16>,
    params: Span,
    raw: Span,
    /// [`Via::rport`], read once: every request's answer and forwarded copy need it.
    pub(crate) rport: Option<Option<u16>>,
    /// [`Via::branch`]: the transaction key of every request and response.
    branch: Option<Span>,
    /// [`Via::host_ip`], read on first use: a request's answer and forwarded copy need it
    /// (whether `received` is owed), a response never does, and its top Via is this
    /// element's own, an IP literal whenever no host name is configured.
    host_ip: OnceCell<Option<IpAddr>>,
    /// Whether the params hold no `received` and at most one `rport`, so that filling them
    /// in (the answer's and the forwarded copy's top Via) is a copy with `=port` inserted
    /// and `;received=` appended, without another walk.
    pub(crate) plain: bool,
    /// Where that `=port` goes in the head: just past the name of a valueless `rport`.
    rport_fill_at: Option<usize>,
}

impl ViaSpans {
    pub(crate) fn new(head: &str, v: &Via<'_>) -> ViaSpans {
        // One walk of the params for all: `branch` and `rport` are the first of their
        // name, as `Params::get` finds them.
        let (mut branch, mut rport, mut rports, mut received) = (None, None, 0, false);
        let mut rport_fill_at = None;
        for (name, value) in v.params.iter() {
            if name.eq_ignore_ascii_case("branch") {
                if branch.is_none() {
                    branch = Some(value.map(|b| Span::of(head, b)));
                }
            } else if name.eq_ignore_ascii_case("rport") {
                rports += 1;
                if rport.is_none() {
                    rport = Some(value.and_then(crate::message::syntax::parse_port));
                    if value.is_none() {
                        rport_fill_at = offset_in(head, name).map(|at| at + name.len());
                    }
                }
            } else if name.eq_ignore_ascii_case("received") {
                received = true;
            }
        }
        ViaSpans {
            protocol: match &v.protocol {
                Cow::Borrowed(p) => Ok(Span::of(head, p)),
                Cow::Owned(p) => Err(p.clone()),
            },
            transport: Span::of(head, v.transport),
            host: Span::of(head, v.host),
            port: v.port,
            params: Span::of(head, v.params.as_str()),
            raw: Span::of(head, v.raw),
            rport,
            branch: branch.flatten(),
            host_ip: OnceCell::new(),
            plain: !received && rports <= 1,
            rport_fill_at,
        }
    }

    /// The offset in the head where a valueless `rport`'s value goes, when there is one.
    pub(crate) fn rport_fill_at(&self) -> Option<usize> {
        self.rport_fill_at
    }

    /// [`Via::host_ip`] from the cache.
    pub(crate) fn host_ip(&self, head: &str) -> Option<IpAddr> {
        *self
            .host_ip
            .get_or_init(|| crate::message::uri::host_ip(self.host.get(head)))
    }

    /// [`Via::branch`] from the cache.
    pub(crate) fn branch<'a>(&self, head: &'a str) -> Option<&'a str> {
        self.branch.map(|b| b.get(head))
    }

    pub(crate) fn view<'a>(&'a self, head: &'a str) -> Via<'a> {
        Via {
            protocol: match &self.protocol {
                Ok(p) => Cow::Borrowed(p.get(head)),
                Err(p) => Cow::Borrowed(p.as_str()),
            },
            transport: self.transport.get(head),
            host: self.host.get(head),
            port: self.port,
            params: Params::new(self.params.get(head)),
            raw: self.raw.get(head),
        }
    }
}

/// A [`NameAddr`] as spans.
#[derive(Clone, Debug)]
pub(crate) struct NameAddrSpans {
    display_name: Option<Span>,
    uri: Span,
    params: Span,
    raw: Span,
    /// The first `tag` param (`Some(None)`: without a value): To and From tags are read
    /// for matching, loop detection and dialog state on every request.
    tag: Option<Option<Span>>,
}

impl NameAddrSpans {
    pub(crate) fn new(head: &str, a: &NameAddr<'_>) -> NameAddrSpans {
        NameAddrSpans {
            display_name: a.display_name.map(|d| Span::of(head, d)),
            uri: Span::of(head, a.uri),
            params: Span::of(head, a.params.as_str()),
            raw: Span::of(head, a.raw),
            tag: a.params.get("tag").map(|t| t.map(|t| Span::of(head, t))),
        }
    }

    /// The `tag` param from the cache: `None` absent, `Some(None)` without a value.
    pub(crate) fn tag<'a>(&self, head: &'a str) -> Option<Option<&'a str>> {
        self.tag.map(|t| t.map(|t| t.get(head)))
    }

    pub(crate) fn view<'a>(&self, head: &'a str) -> NameAddr<'a> {
        NameAddr {
            display_name: self.display_name.map(|d| d.get(head)),
            uri: self.uri.get(head),
            params: Params::new(self.params.get(head)),
            raw: self.raw.get(head),
        }
    }
}

/// A [`Uri`] as spans.
#[derive(Clone, Debug)]
pub(crate) enum UriSpans {
    Sip {
        secure: bool,
        user: Option<Span>,
        password: Option<Span>,
        host: Span,
        port: Option<u16>,
        params: Span,
        headers: Option<Span>,
    },
    Other {
        scheme: Span,
        rest: Span,
    },
}

impl UriSpans {
    pub(crate) fn new(head: &str, u: &Uri<'_>) -> UriSpans {
        let span = |s: &str| Span::of(head, s);
        match u {
            Uri::Sip(u) => UriSpans::Sip {
                secure: u.secure,
                user: u.user.map(span),
                password: u.password.map(span),
                host: span(u.host),
                port: u.port,
                params: span(u.params.as_str()),
                headers: u.headers.map(span),
            },
            Uri::Other { scheme, rest } => UriSpans::Other {
                scheme: span(scheme),
                rest: span(rest),
            },
        }
    }

    /// The spans of the same URI text copied from offset `from` of the head to offset `to`
    /// (a To that repeats the From, as in every REGISTER): parsing is a function of the
    /// text, so the copy's parse is this one moved.
    pub(crate) fn moved(&self, from: usize, to: usize) -> UriSpans {
        let m = |s: Span| s.moved(from, to);
        match self {
            UriSpans::Sip {
                secure,
                user,
                password,
                host,
                port,
                params,
                headers,
            } => UriSpans::Sip {
                secure: *secure,
                user: user.map(m),
                password: password.map(m),
                host: m(*host),
                port: *port,
                params: m(*params),
                headers: headers.map(m),
            },
            UriSpans::Other { scheme, rest } => UriSpans::Other {
                scheme: m(*scheme),
                rest: m(*rest),
            },
        }
    }

    pub(crate) fn view<'a>(&self, head: &'a str) -> Uri<'a> {
        match self {
            UriSpans::Sip {
                secure,
                user,
                password,
                host,
                port,
                params,
                headers,
            } => Uri::Sip(SipUri {
                secure: *secure,
                user: user.map(|s| s.get(head)),
                password: password.map(|s| s.get(head)),
                host: host.get(head),
                port: *port,
                params: Params::new(params.get(head)),
                headers: headers.map(|s| s.get(head)),
            }),
            UriSpans::Other { scheme, rest } => Uri::Other {
                scheme: scheme.get(head),
                rest: rest.get(head),
            },
        }
    }
}
