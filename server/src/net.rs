//! Real sockets for the run loop: UDP sockets and TCP listeners and connections behind one
//! [`Network`]. The loop reads and writes UDP itself, in batches ([`crate::udp`]); reader
//! tasks put whole messages framed from TCP streams on a queue that it also takes from. A
//! stream is framed here by Content-Length (RFC 3261 §18.3) with the core's own framing
//! code.
//!
//! Connection reuse (RFC 3261 §18.2.2, RFC 5626 §5): a message for an address with an open
//! connection goes on that connection, whichever side opened it; otherwise a new one is
//! opened in the background and the message waits for it.

use std::collections::BTreeMap;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TryRecvError;
use trapezoid_core::message::{self, Limits, Message, ParseErrorKind};
use trapezoid_core::{Transmit, Transport};

use crate::udp::{lock, UdpPort};
use crate::{Arrival, Network, DATAGRAM_BYTES_MAX};

/// One address to listen on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Listen {
    /// UDP or TCP.
    pub transport: Transport,
    /// The address (port 0: any free port, see [`RealNetwork::local_addrs`]).
    pub addr: SocketAddr,
}

/// Bounds on the stream side ("put a limit on everything").
#[derive(Clone, Copy, Debug)]
pub struct StreamLimits {
    /// Open TCP connections at most; an accept beyond it is closed at once.
    pub connections_max: usize,
    /// A connection with no traffic for this long is closed.
    pub idle: Duration,
    /// How long an outgoing connection may take to open.
    pub connect: Duration,
    /// Largest message framed from a stream (the core's limit applies too).
    pub message_bytes_max: usize,
}

impl Default for StreamLimits {
    fn default() -> Self {
        StreamLimits {
            connections_max: 1024,
            // RFC 5626 §4.4.1 keep-alives come every 95-120 s on a stream; allow two misses.
            idle: Duration::from_secs(300),
            connect: Duration::from_secs(2),
            message_bytes_max: DATAGRAM_BYTES_MAX,
        }
    }
}

/// Messages framed from streams waiting for the loop, at most this many (then the
/// connections' readers wait: backpressure).
const QUEUE_MAX: usize = 4096;

struct Incoming {
    bytes: Vec<u8>,
    local: SocketAddr,
    remote: SocketAddr,
    transport: Transport,
}

/// The write side of one open connection.
struct Connection {
    writer: mpsc::UnboundedSender<Vec<u8>>,
}

type Connections = Arc<Mutex<BTreeMap<SocketAddr, Connection>>>;

/// UDP sockets and TCP listeners, bound and serving.
pub struct RealNetwork {
    rx: Mutex<mpsc::Receiver<Incoming>>,
    tx: mpsc::Sender<Incoming>,
    /// This network's worker and the queues into every worker's loop, when the element
    /// runs as several ([`bind_workers`]); `None` for a single one, which hands nothing over.
    workers: Option<(u16, Arc<[mpsc::Sender<Incoming>]>)>,
    /// Messages received here and handed over to the worker their branch names.
    handed_over: AtomicU64,
    udp: Vec<UdpPort>,
    /// The UDP port whose batch is being taken (the others are read after it).
    udp_next: Mutex<usize>,
    tcp_local: Vec<SocketAddr>,
    connections: Connections,
    limits: StreamLimits,
}

impl RealNetwork {
    /// Binds every address and starts the TCP listeners' tasks (on the current tokio runtime).
    pub async fn bind(listens: &[Listen], limits: StreamLimits) -> io::Result<Self> {
        let (tx, rx) = mpsc::channel(QUEUE_MAX);
        let connections: Connections = Arc::default();
        let mut udp = Vec::new();
        let mut tcp_local = Vec::new();
        for l in listens {
            match l.transport {
                Transport::Udp => udp.push(UdpPort::new(bind_udp(l.addr)?)?),
                Transport::Tcp => {
                    let listener = TcpListener::bind(l.addr).await?;
                    tcp_local.push(listen(listener, &tx, &connections, limits)?);
                }
            }
        }
        Ok(RealNetwork {
            rx: Mutex::new(rx),
            tx,
            workers: None,
            handed_over: AtomicU64::new(0),
            udp,
            udp_next: Mutex::new(0),
            tcp_local,
            connections,
            limits,
        })
    }

    /// The addresses bound, UDP then TCP, with the ports the system chose for port 0.
    pub fn local_addrs(&self) -> Vec<(Transport, SocketAddr)> {
        self.udp
            .iter()
            .map(|u| (Transport::Udp, u.local_addr()))
            .chain(self.tcp_local.iter().map(|a| (Transport::Tcp, *a)))
            .collect()
    }

    /// Messages this worker received and handed over to another ([`bind_workers`]).
    pub fn handed_over(&self) -> u64 {
        self.handed_over.load(Ordering::Relaxed)
    }

    /// Hands `bytes` over to the worker its top Via's branch names, when that is another
    /// worker of the element: a response to a request that worker forwarded (the next hop's
    /// address may hash to any worker's socket). Whether it did. The arrival goes with it,
    /// so the other worker sees the message as received here. Its queue full, the message is
    /// dropped as a lossy network would drop it: the next hop retransmits over UDP.
    fn hand_over(&self, bytes: &[u8], a: &Arrival) -> bool {
        let Some((me, workers)) = &self.workers else {
            return false;
        };
        let Some(to) = trapezoid_core::worker_of(bytes).filter(|w| w != me) else {
            return false;
        };
        let Some(queue) = workers.get(usize::from(to)) else {
            return false;
        };
        let m = Incoming {
            bytes: bytes.to_vec(),
            local: a.local,
            remote: a.remote,
            transport: a.transport,
        };
        match queue.try_send(m) {
            Ok(()) => {
                self.handed_over.fetch_add(1, Ordering::Relaxed);
            }
            Err(_) => {
                tracing::debug!(remote = %a.remote, worker = to, "hand-over queue full; dropped");
            }
        }
        true
    }

    /// Open TCP connections.
    pub fn connection_count(&self) -> usize {
        self.connections.lock().map_or(0, |c| c.len())
    }

    fn udp_port(&self, local: SocketAddr, to: SocketAddr) -> Option<&UdpPort> {
        self.udp
            .iter()
            .find(|u| u.local_addr() == local)
            .or_else(|| {
                self.udp
                    .iter()
                    .find(|u| u.local_addr().is_ipv4() == to.is_ipv4())
            })
    }

    /// A datagram already read, the oldest batch first.
    fn take_udp(&self, buf: &mut [u8]) -> Option<Arrival> {
        let mut next = lock(&self.udp_next);
        while *next < self.udp.len() {
            let port = &self.udp[*next];
            if let Some((len, remote)) = port.take(buf) {
                return Some(Arrival {
                    local: port.local_addr(),
                    remote,
                    transport: Transport::Udp,
                    len,
                });
            }
            *next += 1;
        }
        None
    }

    /// Reads a batch from every UDP socket that has datagrams, without waiting: whether any
    /// came. A socket error that concerns one peer (an ICMP report) is passed over.
    fn receive_udp(&self) -> io::Result<bool> {
        let mut any = false;
        for port in &self.udp {
            match port.receive_batch() {
                Ok(n) => any |= n > 0,
                Err(e) if crate::is_transient(&e) => any |= port.has_ready(),
                Err(e) => {
                    tracing::error!(local = %port.local_addr(), error = %e, "UDP socket failed");
                    return Err(e);
                }
            }
        }
        *lock(&self.udp_next) = 0;
        Ok(any)
    }

    /// Sends every queued datagram.
    async fn flush_udp(&self) -> io::Result<()> {
        for port in &self.udp {
            port.flush().await?;
        }
        Ok(())
    }
}

impl Network for RealNetwork {
    async fn send(&self, t: Transmit) -> io::Result<()> {
        match t.transport {
            Transport::Udp => {
                let Some(port) = self.udp_port(t.local, t.remote) else {
                    return Err(io::Error::new(
                        io::ErrorKind::NetworkUnreachable,
                        "no UDP socket for this address family",
                    ));
                };
                // It leaves when the batch is done (see `Network::ready`): the run loop lets
                // the tap make the batch durable first.
                port.queue(t.remote, t.bytes);
                Ok(())
            }
            Transport::Tcp => {
                let mut conns = self
                    .connections
                    .lock()
                    .map_err(|_| io::Error::other("connection table poisoned"))?;
                let bytes = match conns.get(&t.remote) {
                    Some(c) => match c.writer.send(t.bytes) {
                        Ok(()) => return Ok(()),
                        Err(mpsc::error::SendError(bytes)) => bytes,
                    },
                    None => t.bytes,
                };
                conns.remove(&t.remote);
                if conns.len() >= self.limits.connections_max {
                    return Err(io::Error::new(
                        io::ErrorKind::WouldBlock,
                        "too many TCP connections",
                    ));
                }
                // Open one in the background; the message waits in its queue.
                let (writer, queue) = mpsc::unbounded_channel();
                let _ = writer.send(bytes);
                conns.insert(t.remote, Connection { writer });
                tokio::spawn(connect(
                    t.remote,
                    queue,
                    self.tx.clone(),
                    self.connections.clone(),
                    self.limits,
                ));
                Ok(())
            }
        }
    }

    /// Takes the next datagram of the batch read last; when the batch is used up, sends
    /// what the element queued meanwhile, then reads the next batch and the stream queue,
    /// waiting only when nothing at all is there.
    async fn recv(&self, buf: &mut [u8]) -> io::Result<Arrival> {
        loop {
            if let Some(a) = self.take_udp(buf) {
                if self.hand_over(&buf[..a.len], &a) {
                    continue;
                }
                return Ok(a);
            }
            self.flush_udp().await?;
            // A stream message first, then UDP: neither starves the other.
            let m = lock(&self.rx).try_recv();
            match m {
                Ok(m) if self.hand_over(&m.bytes, &m.arrival()) => continue,
                Ok(m) => return Ok(arrival(m, buf)),
                Err(TryRecvError::Disconnected) => {
                    return Err(io::Error::other("every reader has stopped"))
                }
                Err(TryRecvError::Empty) => {}
            }
            if self.receive_udp()? {
                continue;
            }
            let woke = std::future::poll_fn(|cx| {
                if let Poll::Ready(m) = lock(&self.rx).poll_recv(cx) {
                    return Poll::Ready(m);
                }
                // Registered with every socket, so any of them wakes the loop.
                let mut readable = false;
                for port in &self.udp {
                    readable |= port.poll_readable(cx).is_ready();
                }
                if readable {
                    Poll::Ready(None)
                } else {
                    Poll::Pending
                }
            })
            .await;
            if let Some(m) = woke {
                if self.hand_over(&m.bytes, &m.arrival()) {
                    continue;
                }
                return Ok(arrival(m, buf));
            }
        }
    }

    async fn flush(&self) -> io::Result<()> {
        self.flush_udp().await
    }

    fn ready(&self) -> bool {
        self.udp.iter().any(UdpPort::has_ready)
    }
}

impl Incoming {
    /// Where it came from, for a hand-over (the length is that of its bytes).
    fn arrival(&self) -> Arrival {
        Arrival {
            local: self.local,
            remote: self.remote,
            transport: self.transport,
            len: self.bytes.len(),
        }
    }
}

fn arrival(m: Incoming, buf: &mut [u8]) -> Arrival {
    let len = m.bytes.len().min(buf.len());
    buf[..len].copy_from_slice(&m.bytes[..len]);
    Arrival {
        local: m.local,
        remote: m.remote,
        transport: m.transport,
        len,
    }
}

/// Starts accepting on `listener` (a task on the current runtime): messages read from its
/// connections go to `tx`. Its local address.
fn listen(
    listener: TcpListener,
    tx: &mpsc::Sender<Incoming>,
    connections: &Connections,
    limits: StreamLimits,
) -> io::Result<SocketAddr> {
    let local = listener.local_addr()?;
    tokio::spawn(accept(
        listener,
        local,
        tx.clone(),
        connections.clone(),
        limits,
    ));
    Ok(local)
}

async fn accept(
    listener: TcpListener,
    local: SocketAddr,
    tx: mpsc::Sender<Incoming>,
    connections: Connections,
    limits: StreamLimits,
) {
    loop {
        let (stream, remote) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(%local, error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let (writer, queue) = mpsc::unbounded_channel();
        {
            let Ok(mut conns) = connections.lock() else {
                return;
            };
            if conns.len() >= limits.connections_max {
                tracing::warn!(%remote, max = limits.connections_max, "too many TCP connections; closed");
                continue;
            }
            conns.insert(remote, Connection { writer });
        }
        tokio::spawn(serve_stream(
            stream,
            local,
            remote,
            queue,
            tx.clone(),
            connections.clone(),
            limits,
        ));
    }
}

async fn connect(
    remote: SocketAddr,
    queue: mpsc::UnboundedReceiver<Vec<u8>>,
    tx: mpsc::Sender<Incoming>,
    connections: Connections,
    limits: StreamLimits,
) {
    let stream = match tokio::time::timeout(limits.connect, TcpStream::connect(remote)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            tracing::warn!(%remote, error = %e, "TCP connect failed; its messages are dropped");
            forget(&connections, remote);
            return;
        }
        Err(_) => {
            tracing::warn!(%remote, "TCP connect timed out; its messages are dropped");
            forget(&connections, remote);
            return;
        }
    };
    let local = match stream.local_addr() {
        Ok(a) => a,
        Err(_) => {
            forget(&connections, remote);
            return;
        }
    };
    serve_stream(stream, local, remote, queue, tx, connections, limits).await;
}

fn forget(connections: &Connections, remote: SocketAddr) {
    if let Ok(mut c) = connections.lock() {
        c.remove(&remote);
    }
}

/// One connection: a writer task draining its queue, and this reader framing messages.
async fn serve_stream(
    stream: TcpStream,
    local: SocketAddr,
    remote: SocketAddr,
    mut queue: mpsc::UnboundedReceiver<Vec<u8>>,
    tx: mpsc::Sender<Incoming>,
    connections: Connections,
    limits: StreamLimits,
) {
    let _ = stream.set_nodelay(true);
    let (mut rd, mut wr) = stream.into_split();
    let writer = tokio::spawn(async move {
        while let Some(bytes) = queue.recv().await {
            if wr.write_all(&bytes).await.is_err() {
                break;
            }
        }
        let _ = wr.shutdown().await;
    });
    let reply = |bytes: Vec<u8>| {
        if let Ok(c) = connections.lock() {
            if let Some(c) = c.get(&remote) {
                let _ = c.writer.send(bytes);
            }
        }
    };
    let parse_limits = Limits {
        message_bytes_max: limits.message_bytes_max,
        ..Limits::default()
    };
    let mut buf: Vec<u8> = Vec::with_capacity(4096);
    let mut chunk = vec![0u8; 16 * 1024];
    'read: loop {
        let n = match tokio::time::timeout(limits.idle, rd.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => n,
            Err(_) => {
                tracing::debug!(%remote, "TCP connection idle; closed");
                break;
            }
        };
        buf.extend_from_slice(&chunk[..n]);
        loop {
            match Message::parse_stream(&buf, &parse_limits) {
                Ok((_, used)) => {
                    let bytes: Vec<u8> = buf.drain(..used).collect();
                    let m = Incoming {
                        bytes,
                        local,
                        remote,
                        transport: Transport::Tcp,
                    };
                    if tx.send(m).await.is_err() {
                        break 'read;
                    }
                }
                Err(e) if e.kind == ParseErrorKind::Empty => {
                    // RFC 5626 §3.5.1: a double CRLF is a ping, answered by one CRLF.
                    if let Some(at) = find(&buf, b"\r\n\r\n") {
                        buf.drain(..at + 4);
                        reply(b"\r\n".to_vec());
                    } else if buf.iter().all(|b| *b == b'\r' || *b == b'\n') && buf.len() > 4 {
                        buf.clear();
                    }
                    if buf.is_empty() || !buf.iter().all(|b| *b == b'\r' || *b == b'\n') {
                        break;
                    }
                }
                Err(e) if e.kind == ParseErrorKind::Truncated => break,
                Err(e) => {
                    // No Content-Length, or one that cannot be trusted, or too large: the
                    // next message's start is unknown (RFC 4475 §3.1.2.3, §3.3.9). Answer a
                    // request if it can be answered, then close.
                    if let Some(r) = stream_error_response(&buf, e.status, e.reason) {
                        reply(r);
                    }
                    tracing::info!(%remote, reason = %e.reason, "unframeable stream; closed");
                    break 'read;
                }
            }
        }
    }
    forget(&connections, remote);
    let _ = writer.await;
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The response to a request whose stream framing failed, when what arrived parses as a
/// request at all: 400 for a missing or bad Content-Length (RFC 3261 §18.3 makes it
/// mandatory on a stream), 513 for a message over the limit.
fn stream_error_response(buf: &[u8], status: u16, reason: &str) -> Option<Vec<u8>> {
    let head_end = find(buf, b"\r\n\r\n").map_or(buf.len(), |i| i + 4);
    let msg = Message::parse(&buf[..head_end], &Limits::default()).ok()?;
    if !msg.is_request()
        || msg.top_via().is_none()
        || msg.method().map(|m| m.as_str()) == Some("ACK")
    {
        return None;
    }
    let status = if status >= 400 { status } else { 400 };
    Some(message::response(
        &msg,
        status,
        reason,
        None,
        None,
        None,
        &[],
        b"",
    ))
}

/// What a UDP listener asks the kernel to buffer. The system default (about 208 KiB on Linux)
/// holds a few hundred datagrams: at tens of thousands of requests per second a burst
/// overflows it and datagrams are dropped while the loop still has CPU to spare (measured by
/// bench/run.sh; Kamailio asks for more too). The kernel caps the request at its
/// `net.core.rmem_max`; what it grants is logged.
pub const UDP_RECEIVE_BUFFER_BYTES: usize = 4 << 20;

/// A UDP listener with a large receive buffer ([`UDP_RECEIVE_BUFFER_BYTES`]).
fn bind_udp(addr: SocketAddr) -> io::Result<UdpSocket> {
    UdpSocket::from_std(udp_socket(addr, false)?)
}

/// A bound, non-blocking UDP socket with a large receive buffer; with `reuse_port`, one of
/// several bound to the same address, among which the kernel spreads the senders.
fn udp_socket(addr: SocketAddr, reuse_port: bool) -> io::Result<std::net::UdpSocket> {
    let s = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::DGRAM,
        Some(socket2::Protocol::UDP),
    )?;
    // Best effort: a smaller buffer still works, it only drops sooner under load.
    if let Err(e) = s.set_recv_buffer_size(UDP_RECEIVE_BUFFER_BYTES) {
        tracing::warn!(%addr, error = %e, "could not enlarge the UDP receive buffer");
    }
    if let Ok(granted) = s.recv_buffer_size() {
        tracing::debug!(%addr, bytes = granted, "UDP receive buffer");
    }
    if reuse_port {
        s.set_reuse_port(true)?;
    }
    s.set_nonblocking(true)?;
    s.bind(&addr.into())?;
    Ok(s.into())
}

/// What one worker of an element serves with: its UDP sockets (one per UDP address, bound
/// with `SO_REUSEPORT` beside the other workers' ones), the TCP listeners (the first worker
/// only), its queue, and what all workers share. Made by [`bind_workers`] on any thread, then
/// turned into the worker's [`RealNetwork`] by [`RealNetwork::for_worker`] on its own runtime.
pub struct WorkerSockets {
    index: u16,
    udp: Vec<std::net::UdpSocket>,
    tcp: Vec<std::net::TcpListener>,
    rx: mpsc::Receiver<Incoming>,
    workers: Arc<[mpsc::Sender<Incoming>]>,
    connections: Connections,
}

impl WorkerSockets {
    /// The addresses bound, UDP then TCP (the same for every worker, but TCP is listened
    /// on by the first only).
    pub fn local_addrs(&self) -> io::Result<Vec<(Transport, SocketAddr)>> {
        let mut addrs = Vec::new();
        for u in &self.udp {
            addrs.push((Transport::Udp, u.local_addr()?));
        }
        for t in &self.tcp {
            addrs.push((Transport::Tcp, t.local_addr()?));
        }
        Ok(addrs)
    }
}

/// Binds the sockets of `count` workers serving `listens` together.
///
/// - UDP: each worker gets its own socket on each address, all bound with `SO_REUSEPORT`.
///   The kernel picks the socket by a hash of the sender's address and port, so every
///   request of one sender, its retransmissions, CANCEL and ACK, reaches the same worker,
///   and a datagram sent from any of the sockets leaves from the element's address and
///   port, as the Via it wrote says (RFC 3261 §18.2.1). Port 0 becomes the port the first
///   socket got, for all of them.
/// - TCP: the first worker listens and accepts; every worker can send over any connection
///   (one table), and the messages read from a connection go to the worker that accepted or
///   opened it. A response on a connection another worker opened finds its worker as a UDP
///   one does (its branch).
pub fn bind_workers(listens: &[Listen], count: u16) -> io::Result<Vec<WorkerSockets>> {
    let count = count.max(1);
    let (txs, rxs): (Vec<_>, Vec<_>) = (0..count).map(|_| mpsc::channel(QUEUE_MAX)).unzip();
    let workers: Arc<[mpsc::Sender<Incoming>]> = txs.into();
    let connections: Connections = Arc::default();
    let mut udp: Vec<Vec<std::net::UdpSocket>> = (0..count).map(|_| Vec::new()).collect();
    let mut tcp = Vec::new();
    for l in listens {
        match l.transport {
            Transport::Udp => {
                let first = udp_socket(l.addr, true)?;
                let addr = first.local_addr()?;
                udp[0].push(first);
                for sockets in udp.iter_mut().skip(1) {
                    sockets.push(udp_socket(addr, true)?);
                }
            }
            Transport::Tcp => {
                let listener = std::net::TcpListener::bind(l.addr)?;
                listener.set_nonblocking(true)?;
                tcp.push(listener);
            }
        }
    }
    let mut tcp = Some(tcp);
    Ok(rxs
        .into_iter()
        .zip(udp)
        .zip(0..)
        .map(|((rx, udp), index)| WorkerSockets {
            index,
            udp,
            tcp: tcp.take().unwrap_or_default(),
            rx,
            workers: workers.clone(),
            connections: connections.clone(),
        })
        .collect())
}

impl RealNetwork {
    /// The network of one worker ([`bind_workers`]); starts its TCP listeners' tasks, so it
    /// is made on the runtime the worker runs on.
    pub fn for_worker(sockets: WorkerSockets, limits: StreamLimits) -> io::Result<Self> {
        let WorkerSockets {
            index,
            udp,
            tcp,
            rx,
            workers,
            connections,
        } = sockets;
        let tx = workers
            .get(usize::from(index))
            .cloned()
            .ok_or_else(|| io::Error::other("no queue for this worker"))?;
        let mut ports = Vec::with_capacity(udp.len());
        for u in udp {
            ports.push(UdpPort::new(UdpSocket::from_std(u)?)?);
        }
        let mut tcp_local = Vec::new();
        for l in tcp {
            let listener = TcpListener::from_std(l)?;
            tcp_local.push(listen(listener, &tx, &connections, limits)?);
        }
        Ok(RealNetwork {
            rx: Mutex::new(rx),
            tx,
            workers: Some((index, workers)),
            handed_over: AtomicU64::new(0),
            udp: ports,
            udp_next: Mutex::new(0),
            tcp_local,
            connections,
            limits,
        })
    }
}
