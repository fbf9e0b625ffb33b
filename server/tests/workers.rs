//! Two workers of one element over real loopback sockets (`bind_workers`): Bob registers
//! through one, Alice calls him through the other, and the call completes. The sockets are
//! chosen so that Alice's requests and Bob's answers reach different workers: each of
//! Bob's responses arrives at a worker that does not hold the transaction, and is handed
//! over to the one the branch names.

use std::net::{SocketAddr, UdpSocket};
use std::sync::mpsc as std_mpsc;
use std::thread::JoinHandle;

use trapezoid_core::time::Instant;
use trapezoid_core::{Config, Proxy, SharedState, Transport};
use trapezoid_server::net::{bind_workers, Listen, RealNetwork};
use trapezoid_server::{Direction, Driver, NoResolver, Tap};

mod ua;
use ua::{answer, first_line, header, recv, recv_past_trying, socket, WAIT_MAX};

/// Sockets tried at most to find one the kernel gives to the other worker: each has an even
/// chance, so 64 all landing on one worker would take a broken hash.
const PROBES_MAX: usize = 64;

/// Reports which worker received each message, by sender.
struct Seen {
    worker: u16,
    to: std_mpsc::Sender<(u16, SocketAddr)>,
}

impl Tap for Seen {
    fn datagram(&mut self, _: Instant, d: Direction, _: SocketAddr, remote: SocketAddr, _: &[u8]) {
        if d == Direction::In {
            let _ = self.to.send((self.worker, remote));
        }
    }
}

struct Element {
    /// The UDP address; the TCP one, if any, is `tcp`.
    addr: SocketAddr,
    tcp: Option<SocketAddr>,
    stop: tokio::sync::watch::Sender<bool>,
    threads: Vec<JoinHandle<u64>>,
    seen: std_mpsc::Receiver<(u16, SocketAddr)>,
}

impl Element {
    /// Two workers on one loopback UDP port, each on its own thread and runtime.
    fn start() -> Element {
        Self::start_on(&[Transport::Udp])
    }

    /// Two workers listening on a loopback port of each of `transports` (UDP first).
    fn start_on(transports: &[Transport]) -> Element {
        let listens: Vec<Listen> = transports
            .iter()
            .map(|&transport| Listen {
                transport,
                addr: "127.0.0.1:0".parse().unwrap(),
            })
            .collect();
        let sockets = bind_workers(&listens, 2).unwrap();
        let bound = sockets[0].local_addrs().unwrap();
        let addr = bound[0].1;
        let mut config = Config::new("127.0.0.1");
        config.seed = 7;
        config.local_addrs = bound.iter().map(|(_, a)| *a).collect();
        let shared = SharedState::new(&config);
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let (seen_tx, seen) = std_mpsc::channel();
        let origin = tokio::time::Instant::now();
        let threads = (0u16..)
            .zip(sockets)
            .map(|(i, sockets)| {
                let mut proxy = Proxy::worker(config.clone(), shared.clone(), i);
                let mut stopped = stopped.clone();
                let mut tap = Seen {
                    worker: i,
                    to: seen_tx.clone(),
                };
                std::thread::spawn(move || {
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .unwrap();
                    rt.block_on(async {
                        let net = RealNetwork::for_worker(sockets, Default::default()).unwrap();
                        let mut driver =
                            Driver::with_origin(&net, &mut proxy, &mut tap, NoResolver, origin);
                        let stop = async move {
                            let _ = stopped.wait_for(|s| *s).await;
                        };
                        driver.run_until(stop).await.unwrap();
                        net.handed_over()
                    })
                })
            })
            .collect();
        Element {
            addr,
            tcp: bound
                .iter()
                .find(|(t, _)| *t == Transport::Tcp)
                .map(|(_, a)| *a),
            stop,
            threads,
            seen,
        }
    }

    /// The worker that received the last message from `from` (the tap reports a message
    /// before the element answers it).
    fn worker_of(&self, from: SocketAddr) -> u16 {
        loop {
            let (worker, remote) = self.seen.recv_timeout(WAIT_MAX).expect("a message seen");
            if remote == from {
                return worker;
            }
        }
    }

    /// A socket the kernel gives to `worker` (an OPTIONS from it tells which one got it).
    fn socket_on(&self, worker: u16) -> (UdpSocket, SocketAddr) {
        for n in 0..PROBES_MAX {
            let (s, a) = socket();
            let options = format!(
                "OPTIONS sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {a};branch=z9hG4bKprobe{n}\r\n\
                 Max-Forwards: 70\r\nFrom: <sip:alice@127.0.0.1>;tag=p{n}\r\nTo: <sip:127.0.0.1>\r\n\
                 Call-ID: probe{n}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
            );
            s.send_to(options.as_bytes(), self.addr).unwrap();
            assert_eq!(first_line(&recv(&s)), "SIP/2.0 200 OK");
            if self.worker_of(a) == worker {
                return (s, a);
            }
        }
        panic!("no socket reached worker {worker}");
    }

    /// Stops both workers: how many messages each handed over.
    fn stop(self) -> Vec<u64> {
        self.stop.send(true).unwrap();
        self.threads
            .into_iter()
            .map(|t| t.join().unwrap())
            .collect()
    }
}

/// The worker a branch names (`w<n>.` after the cookie and the 16-character hash).
fn tagged_worker(request: &str) -> Option<u16> {
    let via = header(request, "Via")[0];
    let branch = via.split(";branch=").nth(1)?.split(';').next()?;
    trapezoid_core::shared::branch_worker(branch.as_bytes())
}

#[test]
fn a_call_completes_when_caller_and_callee_reach_different_workers() {
    let element = Element::start();
    let proxy = element.addr;

    // Bob registers; the worker that took it is noted.
    let (bob, b) = socket();
    let register = format!(
        "REGISTER sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {b};branch=z9hG4bKreg1\r\n\
         Max-Forwards: 70\r\nFrom: <sip:bob@127.0.0.1>;tag=r1\r\nTo: <sip:bob@127.0.0.1>\r\n\
         Call-ID: reg1\r\nCSeq: 1 REGISTER\r\nContact: <sip:bob@{b}>\r\nContent-Length: 0\r\n\r\n"
    );
    bob.send_to(register.as_bytes(), proxy).unwrap();
    let ok = recv(&bob);
    assert_eq!(first_line(&ok), "SIP/2.0 200 OK", "{ok}");
    assert_eq!(
        header(&ok, "Contact"),
        [format!("<sip:bob@{b}>;expires=3600")]
    );
    let bobs_worker = element.worker_of(b);

    // Alice: a socket the kernel gives to the other worker.
    let alices_worker = 1 - bobs_worker;
    let (alice, a) = element.socket_on(alices_worker);

    // The INVITE reaches Alice's worker, which finds Bob's binding and names itself in the
    // branch.
    let invite = format!(
        "INVITE sip:bob@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {a};branch=z9hG4bKinv1\r\n\
         Max-Forwards: 70\r\nFrom: <sip:alice@127.0.0.1>;tag=a1\r\nTo: <sip:bob@127.0.0.1>\r\n\
         Call-ID: call1\r\nCSeq: 1 INVITE\r\nContact: <sip:alice@{a}>\r\nContent-Length: 0\r\n\r\n"
    );
    alice.send_to(invite.as_bytes(), proxy).unwrap();
    let at_bob = recv(&bob);
    assert_eq!(first_line(&at_bob), format!("INVITE sip:bob@{b} SIP/2.0"));
    assert_eq!(tagged_worker(&at_bob), Some(alices_worker), "{at_bob}");
    assert_eq!(header(&at_bob, "Via").len(), 2, "{at_bob}");
    let record_route = header(&at_bob, "Record-Route");
    assert_eq!(record_route, [format!("<sip:{proxy};lr>")], "{at_bob}");

    // Bob's answers reach Bob's worker, which hands them over.
    let contact = format!("Contact: <sip:bob@{b}>\r\n");
    bob.send_to(answer(&at_bob, "180 Ringing", "b1", "").as_bytes(), proxy)
        .unwrap();
    let ringing = recv_past_trying(&alice);
    assert_eq!(first_line(&ringing), "SIP/2.0 180 Ringing", "{ringing}");
    assert_eq!(
        header(&ringing, "Via"),
        [format!("SIP/2.0/UDP {a};branch=z9hG4bKinv1")]
    );
    bob.send_to(answer(&at_bob, "200 OK", "b1", &contact).as_bytes(), proxy)
        .unwrap();
    let ok = recv_past_trying(&alice);
    assert_eq!(first_line(&ok), "SIP/2.0 200 OK", "{ok}");
    assert_eq!(header(&ok, "To"), ["<sip:bob@127.0.0.1>;tag=b1"]);
    assert_eq!(header(&ok, "CSeq"), ["1 INVITE"]);
    assert_eq!(header(&ok, "Record-Route"), record_route);

    // ACK and BYE along the route set.
    // An in-dialog request from Alice, forwarded to Bob along the Record-Route.
    let along_route = |method: &str, cseq: u32, branch: &str| {
        let request = format!(
            "{method} sip:bob@{b} SIP/2.0\r\nVia: SIP/2.0/UDP {a};branch={branch}\r\n\
             Route: {}\r\nMax-Forwards: 70\r\nFrom: <sip:alice@127.0.0.1>;tag=a1\r\n\
             To: <sip:bob@127.0.0.1>;tag=b1\r\nCall-ID: call1\r\nCSeq: {cseq} {method}\r\n\
             Content-Length: 0\r\n\r\n",
            record_route[0]
        );
        alice.send_to(request.as_bytes(), proxy).unwrap();
        let forwarded = recv(&bob);
        assert_eq!(
            first_line(&forwarded),
            format!("{method} sip:bob@{b} SIP/2.0"),
            "{forwarded}"
        );
        forwarded
    };
    along_route("ACK", 1, "z9hG4bKack1");
    let bye = along_route("BYE", 2, "z9hG4bKbye1");
    assert_eq!(tagged_worker(&bye), Some(alices_worker), "{bye}");
    bob.send_to(answer(&bye, "200 OK", "b1", "").as_bytes(), proxy)
        .unwrap();
    let ok = recv_past_trying(&alice);
    assert_eq!(first_line(&ok), "SIP/2.0 200 OK", "{ok}");
    assert_eq!(header(&ok, "CSeq"), ["2 BYE"]);

    // 180, 200 to the INVITE and 200 to the BYE: handed over by Bob's worker only.
    let handed_over = element.stop();
    assert_eq!(handed_over[usize::from(bobs_worker)], 3, "{handed_over:?}");
    assert_eq!(
        handed_over[usize::from(alices_worker)],
        0,
        "{handed_over:?}"
    );
}

/// Reads one message from a stream: the head, then Content-Length bytes of body.
fn read_message(stream: &mut std::net::TcpStream, pending: &mut Vec<u8>) -> String {
    use std::io::Read;
    loop {
        if let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&pending[..end + 4]).into_owned();
            let body: usize = header(&head, "Content-Length")
                .first()
                .map_or(0, |v| v.trim().parse().unwrap());
            if pending.len() >= end + 4 + body {
                let m: Vec<u8> = pending.drain(..end + 4 + body).collect();
                return String::from_utf8_lossy(&m).into_owned();
            }
        }
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).expect("a message within the bound");
        assert!(n > 0, "connection closed");
        pending.extend_from_slice(&chunk[..n]);
    }
}

/// TCP is accepted by the first worker; Bob registers over it, so his binding's connection
/// is that worker's. Alice's INVITE reaches the second worker over UDP, which sends it over
/// Bob's connection; Bob's answers come back on it, to the first worker, which hands them to
/// the second.
#[test]
fn answers_on_a_connection_another_worker_accepted_reach_the_worker_that_forwarded() {
    use std::io::Write;
    let element = Element::start_on(&[Transport::Udp, Transport::Tcp]);
    let proxy = element.addr;
    let tcp = element.tcp.expect("a TCP listener");
    let mut bob = std::net::TcpStream::connect(tcp).unwrap();
    bob.set_read_timeout(Some(WAIT_MAX)).unwrap();
    let b = bob.local_addr().unwrap();
    let mut pending = Vec::new();
    let register = format!(
        "REGISTER sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP {b};branch=z9hG4bKtreg\r\n\
         Max-Forwards: 70\r\nFrom: <sip:bob@127.0.0.1>;tag=r1\r\nTo: <sip:bob@127.0.0.1>\r\n\
         Call-ID: treg\r\nCSeq: 1 REGISTER\r\nContact: <sip:bob@{b};transport=tcp>\r\n\
         Content-Length: 0\r\n\r\n"
    );
    bob.write_all(register.as_bytes()).unwrap();
    let ok = read_message(&mut bob, &mut pending);
    assert_eq!(first_line(&ok), "SIP/2.0 200 OK", "{ok}");
    assert_eq!(element.worker_of(b), 0);

    let (alice, a) = element.socket_on(1);
    let invite = format!(
        "INVITE sip:bob@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {a};branch=z9hG4bKtinv\r\n\
         Max-Forwards: 70\r\nFrom: <sip:alice@127.0.0.1>;tag=a1\r\nTo: <sip:bob@127.0.0.1>\r\n\
         Call-ID: tcall\r\nCSeq: 1 INVITE\r\nContact: <sip:alice@{a}>\r\nContent-Length: 0\r\n\r\n"
    );
    alice.send_to(invite.as_bytes(), proxy).unwrap();
    let at_bob = read_message(&mut bob, &mut pending);
    assert_eq!(
        first_line(&at_bob),
        format!("INVITE sip:bob@{b};transport=tcp SIP/2.0"),
        "{at_bob}"
    );
    assert!(
        header(&at_bob, "Via")[0].starts_with("SIP/2.0/TCP "),
        "{at_bob}"
    );
    assert_eq!(tagged_worker(&at_bob), Some(1), "{at_bob}");

    bob.write_all(answer(&at_bob, "180 Ringing", "b1", "").as_bytes())
        .unwrap();
    let ringing = recv_past_trying(&alice);
    assert_eq!(first_line(&ringing), "SIP/2.0 180 Ringing", "{ringing}");
    let contact = format!("Contact: <sip:bob@{b};transport=tcp>\r\n");
    bob.write_all(answer(&at_bob, "200 OK", "b1", &contact).as_bytes())
        .unwrap();
    let ok = recv_past_trying(&alice);
    assert_eq!(first_line(&ok), "SIP/2.0 200 OK", "{ok}");
    assert_eq!(header(&ok, "To"), ["<sip:bob@127.0.0.1>;tag=b1"]);

    let handed_over = element.stop();
    assert_eq!(handed_over, [2, 0]);
}
