//! # trapezoid-server: the one run loop
//!
//! [`run`] drives a [`trapezoid_core::Proxy`] over anything that implements [`Network`]:
//! real tokio sockets here ([`UdpNetwork`]), turmoil sockets in the simulator. So the code
//! that is simulated is the code that is deployed.
//!
//! Time comes only from `tokio::time` (virtual under turmoil, monotonic in production). The
//! loop waits on one future at a time, `timeout_at(deadline, recv)`, so no `select!` draws
//! randomness, and every datagram in or out passes one [`Tap`].

use std::future::Future;
use std::io;
use std::net::SocketAddr;

use tokio::sync::mpsc;
use trapezoid_core::time::Instant;
use trapezoid_core::{
    Datagram, Event, Input, InputKind, Output, Proxy, Query, Resolution, Transmit, Transport,
};

pub mod dns;
pub mod net;
pub mod store;
pub mod udp;

/// Largest UDP payload (RFC 768 length field less headers; IPv4 max).
pub const DATAGRAM_BYTES_MAX: usize = 65_535;

/// Where one message came from: the address it arrived on, its sender and transport.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Arrival {
    /// The local address it arrived on.
    pub local: SocketAddr,
    /// The sender (for a stream: the connection's remote end).
    pub remote: SocketAddr,
    /// UDP, or a stream the network has already framed into messages.
    pub transport: Transport,
    /// How many bytes of the buffer it filled.
    pub len: usize,
}

/// The network an element runs on. It delivers whole SIP messages: a datagram, or one
/// message framed out of a stream by Content-Length (RFC 3261 §18.3).
pub trait Network {
    /// Sends one message the way the core asked: from `t.local`, over `t.transport`, to
    /// `t.remote` (on a stream, the open connection to it or a new one). A network may hold
    /// it back to send it with others, at the latest when [`Network::recv`] is about to wait
    /// or at [`Network::flush`].
    fn send(&self, t: Transmit) -> impl Future<Output = io::Result<()>>;
    /// Receives the next message into `buf`.
    fn recv(&self, buf: &mut [u8]) -> impl Future<Output = io::Result<Arrival>>;
    /// Sends whatever [`Network::send`] held back.
    fn flush(&self) -> impl Future<Output = io::Result<()>> {
        std::future::ready(Ok(()))
    }
    /// Whether [`Network::recv`] has a message to return at once, without first sending
    /// what it holds back: the run loop then takes it before anything may leave.
    fn ready(&self) -> bool {
        false
    }
}

/// Direction of a message seen by the [`Tap`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Received by the element.
    In,
    /// Sent by the element.
    Out,
}

/// Sees every message in and out, and every core event (trace, logs, pcap, storage).
pub trait Tap {
    /// A message passed the network. `now` is the loop's clock.
    fn datagram(
        &mut self,
        now: Instant,
        dir: Direction,
        local: SocketAddr,
        remote: SocketAddr,
        bytes: &[u8],
    );
    /// The core reported an event. `proxy` is the element as it is after the input that
    /// caused it (a binding event can read the location service). It comes before the
    /// transmits the same input produced after it: a binding is stored before the 200 to
    /// its REGISTER leaves.
    fn event(&mut self, _now: Instant, _event: &Event, _proxy: &Proxy) {}
    /// The core has nothing more to say for now (every output of the last input is out):
    /// `proxy` can be looked at in a settled state, e.g. for its live counts.
    fn drained(&mut self, _now: Instant, _proxy: &Proxy) {}
    /// The messages sent so far (the network may have held them back to send them
    /// together) are about to leave: whatever must be durable before they do, is made so
    /// now (one commit for a whole batch of REGISTERs).
    fn flush(&mut self, _now: Instant) {}
}

/// A tap that sees nothing.
pub struct NoTap;

impl Tap for NoTap {
    fn datagram(&mut self, _: Instant, _: Direction, _: SocketAddr, _: SocketAddr, _: &[u8]) {}
}

/// Answers the core's RFC 3263 questions ([`Event::Resolve`]).
pub trait Resolver {
    /// Starts a lookup. The answer goes to `answers`, at once (a table) or later (a task).
    fn resolve(&mut self, query: Query, answers: &mpsc::UnboundedSender<Resolution>);
}

impl<R: Resolver + ?Sized> Resolver for Box<R> {
    fn resolve(&mut self, query: Query, answers: &mpsc::UnboundedSender<Resolution>) {
        (**self).resolve(query, answers);
    }
}

/// A resolver that knows no name: every lookup fails at once.
pub struct NoResolver;

impl Resolver for NoResolver {
    fn resolve(&mut self, query: Query, answers: &mpsc::UnboundedSender<Resolution>) {
        let _ = answers.send(Resolution {
            query,
            addrs: Vec::new(),
        });
    }
}

/// Runs the element until the network fails, resolving no names. `now` for the core is the
/// time since the loop started, read from `tokio::time`.
pub async fn run<N: Network, T: Tap>(net: &N, proxy: &mut Proxy, tap: &mut T) -> io::Result<()> {
    Driver::new(net, proxy, tap, NoResolver)
        .run_until(std::future::pending::<()>())
        .await
}

/// The run loop with its clock: [`Driver::run_until`] may be called again after it returns
/// (a graceful shutdown keeps serving until the transactions end) and time goes on.
pub struct Driver<'a, N, T, R> {
    net: &'a N,
    proxy: &'a mut Proxy,
    tap: &'a mut T,
    resolver: R,
    answers_tx: mpsc::UnboundedSender<Resolution>,
    answers: mpsc::UnboundedReceiver<Resolution>,
    origin: tokio::time::Instant,
    buf: Vec<u8>,
}

impl<'a, N: Network, T: Tap, R: Resolver> Driver<'a, N, T, R> {
    /// A loop whose clock (the core's `now`) starts at zero now.
    pub fn new(net: &'a N, proxy: &'a mut Proxy, tap: &'a mut T, resolver: R) -> Self {
        Self::with_origin(net, proxy, tap, resolver, tokio::time::Instant::now())
    }

    /// A loop whose clock starts at zero at `origin`: the workers of one element share one
    /// clock, as they share bindings and nonces whose times count from it.
    pub fn with_origin(
        net: &'a N,
        proxy: &'a mut Proxy,
        tap: &'a mut T,
        resolver: R,
        origin: tokio::time::Instant,
    ) -> Self {
        let (answers_tx, answers) = mpsc::unbounded_channel();
        Driver {
            net,
            proxy,
            tap,
            resolver,
            answers_tx,
            answers,
            origin,
            buf: vec![0u8; DATAGRAM_BYTES_MAX],
        }
    }

    /// The element.
    pub fn proxy(&self) -> &Proxy {
        self.proxy
    }

    /// Serves until `stop` completes or the network fails. `stop` is polled first, so
    /// which one wins does not depend on a random draw.
    pub async fn run_until(&mut self, stop: impl Future<Output = ()>) -> io::Result<()> {
        tokio::pin!(stop);
        let mut deadline = self.drain().await?;
        loop {
            // Answers already in (a table answers at once) go in before anything else.
            if let Ok(r) = self.answers.try_recv() {
                let now = since(self.origin);
                self.proxy.handle_input(Input {
                    now,
                    kind: InputKind::Resolved(r),
                });
                deadline = self.drain().await?;
                continue;
            }
            if !self.net.ready() {
                self.tap.flush(since(self.origin));
            }
            let net = self.net;
            let origin = self.origin;
            let buf = &mut self.buf;
            let answers = &mut self.answers;
            let wait = async {
                match deadline {
                    Some(at) => {
                        let wake = origin + at.since_origin();
                        tokio::time::timeout_at(wake, net.recv(buf)).await.ok()
                    }
                    None => Some(net.recv(buf).await),
                }
            };
            let woke = tokio::select! {
                biased;
                () = &mut stop => {
                    self.tap.flush(since(self.origin));
                    return self.net.flush().await;
                }
                Some(r) = answers.recv() => Wake::Answer(r),
                r = wait => Wake::Network(r),
            };
            let now = since(self.origin);
            let received = match woke {
                Wake::Answer(r) => {
                    self.proxy.handle_input(Input {
                        now,
                        kind: InputKind::Resolved(r),
                    });
                    deadline = self.drain().await?;
                    continue;
                }
                Wake::Network(r) => r,
            };
            let kind = match received {
                Some(Ok(a)) => {
                    let bytes = &self.buf[..a.len];
                    self.tap
                        .datagram(now, Direction::In, a.local, a.remote, bytes);
                    InputKind::Datagram(Datagram {
                        local: a.local,
                        remote: a.remote,
                        transport: a.transport,
                        bytes,
                    })
                }
                // ICMP errors surface as recv errors on some platforms; they say nothing
                // about the next datagram, so the loop goes on.
                Some(Err(e)) if is_transient(&e) => continue,
                Some(Err(e)) => return Err(e),
                None => InputKind::Timeout,
            };
            self.proxy.handle_input(Input { now, kind });
            deadline = self.drain().await?;
        }
    }

    /// str0m's rule: after every input, drain the outputs up to the next deadline. The
    /// clock is read once: every output belongs to the same instant (sending only queues or
    /// takes microseconds).
    async fn drain(&mut self) -> io::Result<Option<Instant>> {
        let now = since(self.origin);
        loop {
            match self.proxy.poll_output() {
                Output::Transmit(t) => {
                    self.tap
                        .datagram(now, Direction::Out, t.local, t.remote, &t.bytes);
                    if let Err(e) = self.net.send(t).await {
                        if !is_transient(&e) {
                            return Err(e);
                        }
                    }
                }
                Output::Event(e) => {
                    self.tap.event(now, &e, self.proxy);
                    if let Event::Resolve(q) = e {
                        self.resolver.resolve(q, &self.answers_tx);
                    }
                }
                Output::Timeout(at) => {
                    self.tap.drained(now, self.proxy);
                    return Ok(at);
                }
            }
        }
    }
}

/// What ended a wait of the run loop.
enum Wake {
    Answer(Resolution),
    /// A message (or an error), or `None`: the deadline passed.
    Network(Option<io::Result<Arrival>>),
}

fn since(origin: tokio::time::Instant) -> Instant {
    Instant::from_duration(origin.elapsed())
}

/// Errors that concern one peer, not the socket: the loop logs nothing and goes on.
pub fn is_transient(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::NotConnected
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::HostUnreachable
            | io::ErrorKind::NetworkUnreachable
            | io::ErrorKind::WouldBlock
            | io::ErrorKind::TimedOut
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use trapezoid_core::Config;

    /// How long the real-socket test waits at most for an answer (it normally takes well
    /// under a millisecond; the bound only keeps a broken build from hanging).
    const WAIT_MAX: Duration = Duration::from_secs(5);

    struct Recorder(Vec<(Direction, Vec<u8>)>);
    impl Tap for Recorder {
        fn datagram(&mut self, _: Instant, d: Direction, _: SocketAddr, _: SocketAddr, b: &[u8]) {
            self.0.push((d, b.to_vec()));
        }
    }

    /// The same loop over real loopback sockets: a REGISTER gets its 200 OK, and the tap saw
    /// both datagrams.
    #[tokio::test]
    async fn run_loop_answers_register_over_loopback_udp() {
        let (net, mut proxy, server_addr) = element(Transport::Udp).await;
        let client = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let caddr = client.local_addr().unwrap();
        let register = format!(
            "REGISTER sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {caddr};branch=z9hG4bKloop1\r\n\
             Max-Forwards: 70\r\nFrom: <sip:alice@127.0.0.1>;tag=a1\r\nTo: <sip:alice@127.0.0.1>\r\n\
             Call-ID: loop1\r\nCSeq: 1 REGISTER\r\nContact: <sip:alice@{caddr}>\r\n\
             Content-Length: 0\r\n\r\n"
        );
        let mut tap = Recorder(Vec::new());
        let talk = async {
            client
                .send_to(register.as_bytes(), server_addr)
                .await
                .unwrap();
            let mut buf = vec![0u8; 4096];
            let (n, _) = client.recv_from(&mut buf).await.unwrap();
            String::from_utf8_lossy(&buf[..n]).into_owned()
        };
        let answer = serve_while(&net, &mut proxy, &mut tap, talk).await;
        assert!(answer.starts_with("SIP/2.0 200 OK\r\n"), "{answer}");
        assert!(answer.contains(&format!("Contact: <sip:alice@{caddr}>;expires=3600")));
        assert_eq!(tap.0.len(), 2);
        assert_eq!(tap.0[0].0, Direction::In);
        assert_eq!(tap.0[1].0, Direction::Out);
        assert_eq!(proxy.registrar().location().binding_count(), 1);
    }

    /// Runs the loop over `net`, seen by `tap`, until `talk` is done (or the bound passes).
    /// `biased` keeps the poll order fixed.
    async fn serve_while<T: Tap, F: Future>(
        net: &net::RealNetwork,
        proxy: &mut Proxy,
        tap: &mut T,
        talk: F,
    ) -> F::Output {
        tokio::time::timeout(WAIT_MAX, async {
            tokio::select! {
                biased;
                r = run(net, proxy, tap) => panic!("run loop ended: {r:?}"),
                a = talk => a,
            }
        })
        .await
        .expect("answers within the bound")
    }

    /// An element listening on one loopback port of `transport`, and that address.
    async fn element(transport: Transport) -> (net::RealNetwork, Proxy, SocketAddr) {
        let listen = net::Listen {
            transport,
            addr: "127.0.0.1:0".parse().unwrap(),
        };
        let net = net::RealNetwork::bind(&[listen], Default::default())
            .await
            .unwrap();
        let server_addr = net.local_addrs()[0].1;
        let mut cfg = Config::new("127.0.0.1");
        cfg.local_addrs = vec![server_addr];
        (net, Proxy::new(cfg), server_addr)
    }

    /// A burst of requests larger than a receive batch, all waiting in the socket before the
    /// loop reads: each gets its answer once, in the order sent (batches are taken in order
    /// and the outbox keeps it).
    #[tokio::test]
    async fn a_burst_over_several_batches_is_answered_in_order() {
        const BURST: usize = udp::BATCH * 3 + 5;
        let (net, mut proxy, server_addr) = element(Transport::Udp).await;
        let client = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let caddr = client.local_addr().unwrap();
        for n in 0..BURST {
            let register = format!(
                "REGISTER sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {caddr};branch=z9hG4bKburst{n}\r\n\
                 Max-Forwards: 70\r\nFrom: <sip:u{n}@127.0.0.1>;tag=b{n}\r\nTo: <sip:u{n}@127.0.0.1>\r\n\
                 Call-ID: burst{n}\r\nCSeq: 1 REGISTER\r\nContact: <sip:u{n}@{caddr}>\r\n\
                 Content-Length: 0\r\n\r\n"
            );
            client
                .send_to(register.as_bytes(), server_addr)
                .await
                .unwrap();
        }
        let talk = async {
            let mut got = Vec::new();
            let mut buf = vec![0u8; 4096];
            while got.len() < BURST {
                let (n, _) = client.recv_from(&mut buf).await.unwrap();
                let text = String::from_utf8_lossy(&buf[..n]).into_owned();
                assert!(text.starts_with("SIP/2.0 200 OK\r\n"), "{text}");
                let call_id = text
                    .lines()
                    .find_map(|l| l.strip_prefix("Call-ID: "))
                    .unwrap()
                    .to_owned();
                got.push(call_id);
            }
            got
        };
        let got = serve_while(&net, &mut proxy, &mut NoTap, talk).await;
        let sent: Vec<String> = (0..BURST).map(|n| format!("burst{n}")).collect();
        assert_eq!(got, sent);
        assert_eq!(proxy.registrar().location().binding_count(), BURST);
    }

    /// A datagram the system refuses (an IPv6 destination on the IPv4 socket: a contact
    /// registered as [::1]) is dropped from the outbox and the rest of the batch still
    /// leaves: the OPTIONS sent right after the INVITE is answered.
    #[tokio::test]
    async fn a_refused_datagram_does_not_hold_up_the_batch() {
        let (net, mut proxy, server_addr) = element(Transport::Udp).await;
        let client = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let caddr = client.local_addr().unwrap();
        let register = format!(
            "REGISTER sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {caddr};branch=z9hG4bKv6reg\r\n\
             Max-Forwards: 70\r\nFrom: <sip:bob@127.0.0.1>;tag=r\r\nTo: <sip:bob@127.0.0.1>\r\n\
             Call-ID: v6reg\r\nCSeq: 1 REGISTER\r\nContact: <sip:bob@[::1]:9>\r\n\
             Content-Length: 0\r\n\r\n"
        );
        let invite = format!(
            "INVITE sip:bob@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {caddr};branch=z9hG4bKv6inv\r\n\
             Max-Forwards: 70\r\nFrom: <sip:alice@127.0.0.1>;tag=a\r\nTo: <sip:bob@127.0.0.1>\r\n\
             Call-ID: v6inv\r\nCSeq: 1 INVITE\r\nContact: <sip:alice@{caddr}>\r\n\
             Content-Length: 0\r\n\r\n"
        );
        let options = format!(
            "OPTIONS sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {caddr};branch=z9hG4bKv6opt\r\n\
             Max-Forwards: 70\r\nFrom: <sip:alice@127.0.0.1>;tag=o\r\nTo: <sip:127.0.0.1>\r\n\
             Call-ID: v6opt\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
        );
        for m in [&register, &invite, &options] {
            client.send_to(m.as_bytes(), server_addr).await.unwrap();
        }
        let talk = async {
            let mut firsts = Vec::new();
            let mut buf = vec![0u8; 4096];
            while !firsts.iter().any(|l: &String| l.contains("v6opt")) {
                let (n, _) = client.recv_from(&mut buf).await.unwrap();
                let text = String::from_utf8_lossy(&buf[..n]).into_owned();
                let call_id = text.lines().find(|l| l.starts_with("Call-ID: ")).unwrap();
                firsts.push(format!("{} {call_id}", text.lines().next().unwrap()));
            }
            firsts
        };
        let firsts = serve_while(&net, &mut proxy, &mut NoTap, talk).await;
        assert_eq!(
            firsts,
            [
                "SIP/2.0 200 OK Call-ID: v6reg",
                "SIP/2.0 100 Trying Call-ID: v6inv",
                "SIP/2.0 200 OK Call-ID: v6opt"
            ]
        );
    }

    fn register(from: SocketAddr, n: u32, transport: &str, content_length: bool) -> String {
        let cl = if content_length {
            "Content-Length: 0\r\n"
        } else {
            ""
        };
        format!(
            "REGISTER sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/{transport} {from};branch=z9hG4bKtcp{n}\r\n\
             Max-Forwards: 70\r\nFrom: <sip:bob@127.0.0.1>;tag=b1\r\nTo: <sip:bob@127.0.0.1>\r\n\
             Call-ID: tcp1\r\nCSeq: {n} REGISTER\r\nContact: <sip:bob@{from};transport=tcp>\r\n\
             {cl}\r\n"
        )
    }

    /// RFC 3261 §18.3 over a real TCP connection: two requests in one segment are framed
    /// by Content-Length and both answered on the same connection; a CRLF CRLF ping gets
    /// its CRLF pong (RFC 5626 §3.5.1); a request without Content-Length gets a 400 and
    /// the connection is closed.
    #[tokio::test]
    async fn tcp_is_framed_answered_on_its_connection_and_closed_when_unframeable() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (net, mut proxy, server_addr) = element(Transport::Tcp).await;
        let mut tap = Recorder(Vec::new());
        let talk = async {
            let mut c = tokio::net::TcpStream::connect(server_addr).await.unwrap();
            let me = c.local_addr().unwrap();
            let two = format!(
                "{}{}",
                register(me, 1, "TCP", true),
                register(me, 2, "TCP", true)
            );
            c.write_all(two.as_bytes()).await.unwrap();
            let mut got = String::new();
            let mut buf = vec![0u8; 8192];
            while got.matches("SIP/2.0 200 OK").count() < 2 {
                let n = c.read(&mut buf).await.unwrap();
                assert!(n > 0, "closed early: {got}");
                got.push_str(&String::from_utf8_lossy(&buf[..n]));
            }
            c.write_all(b"\r\n\r\n").await.unwrap();
            let n = c.read(&mut buf).await.unwrap();
            let pong = buf[..n].to_vec();
            c.write_all(register(me, 3, "TCP", false).as_bytes())
                .await
                .unwrap();
            let mut rest = Vec::new();
            c.read_to_end(&mut rest).await.unwrap();
            (got, pong, String::from_utf8_lossy(&rest).into_owned())
        };
        let (got, pong, rest) = serve_while(&net, &mut proxy, &mut tap, talk).await;
        assert!(
            got.contains("CSeq: 1 REGISTER") && got.contains("CSeq: 2 REGISTER"),
            "{got}"
        );
        assert_eq!(pong, b"\r\n");
        assert!(rest.starts_with("SIP/2.0 400 "), "{rest}");
        assert!(rest.contains("CSeq: 3 REGISTER"), "{rest}");
        assert_eq!(net.connection_count(), 0);
    }
}
