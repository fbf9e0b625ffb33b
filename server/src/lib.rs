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

use trapezoid_core::time::Instant;
use trapezoid_core::{Datagram, Event, Input, InputKind, Output, Proxy, Transport};

/// Largest UDP payload (RFC 768 length field less headers; IPv4 max).
pub const DATAGRAM_BYTES_MAX: usize = 65_535;

/// The network an element runs on: datagram sockets for now (streams come with TCP).
pub trait Network {
    /// Sends one datagram.
    fn send_to(&self, bytes: &[u8], to: SocketAddr) -> impl Future<Output = io::Result<()>>;
    /// Receives one datagram into `buf`.
    fn recv_from(&self, buf: &mut [u8]) -> impl Future<Output = io::Result<(usize, SocketAddr)>>;
    /// The address it is bound to.
    fn local_addr(&self) -> SocketAddr;
}

/// Direction of a datagram seen by the [`Tap`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Received by the element.
    In,
    /// Sent by the element.
    Out,
}

/// Sees every datagram in and out, and every core event (trace, logs, pcap).
pub trait Tap {
    /// A datagram passed the socket. `now` is the loop's clock.
    fn datagram(
        &mut self,
        now: Instant,
        dir: Direction,
        local: SocketAddr,
        remote: SocketAddr,
        bytes: &[u8],
    );
    /// The core reported an event.
    fn event(&mut self, _now: Instant, _event: &Event) {}
}

/// A tap that sees nothing.
pub struct NoTap;

impl Tap for NoTap {
    fn datagram(&mut self, _: Instant, _: Direction, _: SocketAddr, _: SocketAddr, _: &[u8]) {}
}

/// Runs the element until the network fails. `now` for the core is the time since the loop
/// started, read from `tokio::time`.
pub async fn run<N: Network, T: Tap>(net: &N, proxy: &mut Proxy, tap: &mut T) -> io::Result<()> {
    let origin = tokio::time::Instant::now();
    let local = net.local_addr();
    let mut buf = vec![0u8; DATAGRAM_BYTES_MAX];
    let mut deadline = drain(net, proxy, tap, origin).await?;
    loop {
        let received = match deadline {
            Some(at) => {
                let wake = origin + at.since_origin();
                tokio::time::timeout_at(wake, net.recv_from(&mut buf))
                    .await
                    .ok()
            }
            None => Some(net.recv_from(&mut buf).await),
        };
        let now = since(origin);
        let kind = match received {
            Some(Ok((n, remote))) => {
                let bytes = &buf[..n];
                tap.datagram(now, Direction::In, local, remote, bytes);
                InputKind::Datagram(Datagram {
                    local,
                    remote,
                    transport: Transport::Udp,
                    bytes,
                })
            }
            // ICMP errors surface as recv errors on some platforms; they say nothing about the
            // next datagram, so the loop goes on.
            Some(Err(e)) if is_transient(&e) => continue,
            Some(Err(e)) => return Err(e),
            None => InputKind::Timeout,
        };
        proxy.handle_input(Input { now, kind });
        deadline = drain(net, proxy, tap, origin).await?;
    }
}

/// str0m's rule: after every input, drain the outputs up to the next deadline.
async fn drain<N: Network, T: Tap>(
    net: &N,
    proxy: &mut Proxy,
    tap: &mut T,
    origin: tokio::time::Instant,
) -> io::Result<Option<Instant>> {
    loop {
        match proxy.poll_output() {
            Output::Transmit(t) => {
                tap.datagram(since(origin), Direction::Out, t.local, t.remote, &t.bytes);
                if let Err(e) = net.send_to(&t.bytes, t.remote).await {
                    if !is_transient(&e) {
                        return Err(e);
                    }
                }
            }
            Output::Event(e) => tap.event(since(origin), &e),
            Output::Timeout(at) => return Ok(at),
        }
    }
}

fn since(origin: tokio::time::Instant) -> Instant {
    Instant::from_duration(origin.elapsed())
}

fn is_transient(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::HostUnreachable
            | io::ErrorKind::NetworkUnreachable
            | io::ErrorKind::WouldBlock
    )
}

/// A real UDP socket.
pub struct UdpNetwork {
    socket: tokio::net::UdpSocket,
    local: SocketAddr,
}

impl UdpNetwork {
    /// Binds `addr`.
    pub async fn bind(addr: SocketAddr) -> io::Result<Self> {
        let socket = tokio::net::UdpSocket::bind(addr).await?;
        let local = socket.local_addr()?;
        Ok(UdpNetwork { socket, local })
    }
}

impl Network for UdpNetwork {
    async fn send_to(&self, bytes: &[u8], to: SocketAddr) -> io::Result<()> {
        self.socket.send_to(bytes, to).await.map(|_| ())
    }

    async fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.socket.recv_from(buf).await
    }

    fn local_addr(&self) -> SocketAddr {
        self.local
    }
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
        let net = UdpNetwork::bind("127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let server_addr = net.local_addr();
        let mut cfg = Config::new("127.0.0.1");
        cfg.local_addrs = vec![server_addr];
        let client = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let caddr = client.local_addr().unwrap();
        let register = format!(
            "REGISTER sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {caddr};branch=z9hG4bKloop1\r\n\
             Max-Forwards: 70\r\nFrom: <sip:alice@127.0.0.1>;tag=a1\r\nTo: <sip:alice@127.0.0.1>\r\n\
             Call-ID: loop1\r\nCSeq: 1 REGISTER\r\nContact: <sip:alice@{caddr}>\r\n\
             Content-Length: 0\r\n\r\n"
        );
        let mut proxy = Proxy::new(cfg);
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
        // The loop runs until the client has its answer; `biased` keeps the poll order fixed.
        let answer = tokio::time::timeout(WAIT_MAX, async {
            tokio::select! {
                biased;
                r = run(&net, &mut proxy, &mut tap) => panic!("run loop ended: {r:?}"),
                a = talk => a,
            }
        })
        .await
        .expect("an answer within the bound");
        assert!(answer.starts_with("SIP/2.0 200 OK\r\n"), "{answer}");
        assert!(answer.contains(&format!("Contact: <sip:alice@{caddr}>;expires=3600")));
        assert_eq!(tap.0.len(), 2);
        assert_eq!(tap.0[0].0, Direction::In);
        assert_eq!(tap.0[1].0, Direction::Out);
        assert_eq!(proxy.registrar().location().binding_count(), 1);
    }
}
