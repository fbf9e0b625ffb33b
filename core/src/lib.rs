//! # trapezoid-core: a sans-IO SIP registrar, location service and proxy
//!
//! The core does no I/O. It reads no clock, opens no socket, spawns no thread and draws no
//! randomness except from the RNG seeded in [`Config`]. A driver (the run loop in
//! `trapezoid-server`, over real sockets or inside the turmoil simulator) feeds it inputs and
//! drains its outputs:
//!
//! ```
//! use trapezoid_core::{Config, Input, InputKind, Output, Proxy, Transport, Datagram, time::Instant};
//! let mut proxy = Proxy::new(Config::new("biloxi.example.com"));
//! let bytes = b"OPTIONS sip:biloxi.example.com SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.201:5060;branch=z9hG4bKa\r\n\
//! To: <sip:biloxi.example.com>\r\nFrom: <sip:bob@biloxi.example.com>;tag=1\r\nCall-ID: c1\r\n\
//! CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n";
//! proxy.handle_input(Input {
//!     now: Instant::ZERO,
//!     kind: InputKind::Datagram(Datagram {
//!         local: "192.0.2.222:5060".parse().unwrap(),
//!         remote: "192.0.2.201:5060".parse().unwrap(),
//!         transport: Transport::Udp,
//!         bytes,
//!     }),
//! });
//! // Drain after every input (str0m's rule): transmits and events, then the next deadline.
//! loop {
//!     match proxy.poll_output() {
//!         Output::Transmit(t) => assert!(t.bytes.starts_with(b"SIP/2.0 200 OK")),
//!         Output::Event(_) => {}
//!         Output::Timeout(_) => break,
//!     }
//! }
//! ```
//!
//! Contract:
//! - `now` rides on every [`Input`] and never goes backwards;
//! - after every `handle_input` the driver calls [`Proxy::poll_output`] until it returns
//!   [`Output::Timeout`], whose instant (if any) is when to feed [`InputKind::Timeout`] next;
//! - network input is data, never an error and never a panic: bad bytes become an answer
//!   (400, 416, 420, 483, ...) when there is enough to answer, or an [`Event::Dropped`].

#![warn(missing_docs)]

pub mod auth;
pub mod config;
mod element;
pub mod ids;
pub mod keymap;
pub mod message;
pub mod proxy;
mod rate;
pub mod registrar;
pub mod shared;
pub mod time;
pub mod transaction;

#[cfg(test)]
mod tests;

use std::fmt;
use std::net::SocketAddr;

pub use config::Config;
pub use element::Proxy;
pub use shared::{worker_of, SharedState};
use time::Instant;

/// One input to the core, stamped with the driver's current time.
#[derive(Debug)]
pub struct Input<'a> {
    /// The driver's clock when the input happened.
    pub now: Instant,
    /// What happened.
    pub kind: InputKind<'a>,
}

/// What happened.
#[derive(Debug)]
pub enum InputKind<'a> {
    /// A datagram arrived.
    Datagram(Datagram<'a>),
    /// The deadline the core last asked for (or a later one) has come.
    Timeout,
    /// The answer to an [`Event::Resolve`].
    Resolved(Resolution),
}

/// RFC 3263 §4: a name the proxy needs as an address to send a request on: the host of a
/// Route value or of a Request-URI in a domain it does not serve.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Query {
    /// The host name (never an IP literal: those need no lookup).
    pub name: String,
    /// The URI's explicit port. Without one the driver looks up SRV records first
    /// (`_sip._udp.name`, `_sip._tcp.name`), then A/AAAA with port 5060 (§4.2).
    pub port: Option<u16>,
    /// The transport the request will use (from the URI's `transport` parameter).
    pub transport: Transport,
}

/// The driver's answer to a [`Query`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolution {
    /// What was asked.
    pub query: Query,
    /// Addresses in the order to try them (SRV priority and weight applied); empty when the
    /// name does not exist or has no usable record.
    pub addrs: Vec<SocketAddr>,
}

/// A received datagram.
#[derive(Debug, Clone, Copy)]
pub struct Datagram<'a> {
    /// The address it arrived on.
    pub local: SocketAddr,
    /// The address it came from.
    pub remote: SocketAddr,
    /// The transport it came over.
    pub transport: Transport,
    /// Its bytes.
    pub bytes: &'a [u8],
}

/// SIP transports (RFC 3261 §18).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Transport {
    /// Unreliable: the transaction layer retransmits (§17.1.1.2).
    Udp,
    /// Reliable stream.
    Tcp,
}

impl Transport {
    /// The Via transport token (RFC 3261 §20.42).
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
        }
    }

    /// Whether the transport itself retransmits (changes Timers J and K to zero, §17.2.2).
    pub fn is_reliable(self) -> bool {
        !matches!(self, Transport::Udp)
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the core wants the driver to do next.
#[derive(Debug)]
pub enum Output {
    /// Send bytes.
    Transmit(Transmit),
    /// Something happened that the driver may log, persist or answer.
    Event(Event),
    /// Nothing more to do now; feed [`InputKind::Timeout`] at this instant (`None`: no timer
    /// is pending, wait for network input only).
    Timeout(Option<Instant>),
}

/// Bytes to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// Transport to send over.
    pub transport: Transport,
    /// The local address to send from (the one the request came in on).
    pub local: SocketAddr,
    /// Destination.
    pub remote: SocketAddr,
    /// The datagram.
    pub bytes: Vec<u8>,
}

/// Things the driver may want to know about.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A datagram was dropped without an answer.
    Dropped {
        /// Where it came from.
        remote: SocketAddr,
        /// Why (for the log).
        reason: String,
    },
    /// A source address went over its request rate ([`config::SourceRate`]): its new
    /// requests get the configured answer (503 or nothing) until its bucket refills. Once
    /// per episode, not once per request, so that a flood does not flood the log too.
    SourceLimited {
        /// The address.
        source: std::net::IpAddr,
    },
    /// A binding was added or refreshed (RFC 3261 §10.3 step 7).
    Registered {
        /// The address-of-record.
        aor: String,
        /// The Contact URI bound to it.
        contact: String,
        /// Seconds until it expires.
        expires: u32,
    },
    /// A binding was removed by a REGISTER (`expires=0` or `Contact: *`).
    Unregistered {
        /// The address-of-record.
        aor: String,
        /// The Contact URI that was bound.
        contact: String,
    },
    /// A binding's expiry passed with no refresh.
    BindingExpired {
        /// The address-of-record.
        aor: String,
        /// The Contact URI that was bound.
        contact: String,
    },
    /// The proxy needs `Query` resolved (RFC 3263): answer with [`InputKind::Resolved`].
    /// The request waits meanwhile; without an answer it fails with 504 after a few seconds.
    Resolve(Query),
    /// A server transaction finished: one line per transaction for the log.
    TransactionCompleted {
        /// The request method.
        method: String,
        /// The final status sent.
        status: u16,
        /// From URI of the request.
        from: String,
        /// To URI of the request.
        to: String,
        /// From the request's arrival to its final response.
        elapsed: std::time::Duration,
    },
}
