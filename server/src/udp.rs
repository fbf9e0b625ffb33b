//! A UDP listener read and written in batches: `recvmmsg` takes every datagram waiting (up
//! to [`BATCH`]) in one system call, and what the element sends while it works through
//! them waits in an outbox that one `sendmmsg` empties before the next read or wait.
//!
//! Why: on loopback at 10,000 REGISTER/s, a `sendto` per answer was a third of `serve`'s CPU,
//! most of it waking the peer once per datagram; the reader task, its queue and a `recvfrom`
//! per datagram cost more. Kamailio, too, pays a system call per datagram each way.
//!
//! The order of datagrams is kept both ways (one socket, one queue each), and an answer
//! waits at most for the rest of the batch it was caused by.

use std::collections::VecDeque;
use std::io::{self, IoSlice, IoSliceMut};
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::Mutex;

use nix::errno::Errno;
use nix::sys::socket::{recvmmsg, sendmmsg, MsgFlags, MultiHeaders, SockaddrStorage};
use tokio::io::Interest;
use tokio::net::UdpSocket;

use crate::DATAGRAM_BYTES_MAX;

/// Datagrams per system call, in and out. At 32 a burst of requests costs one `recvmmsg`;
/// the receive slots take 32 × 64 KiB.
pub const BATCH: usize = 32;

/// One bound UDP socket with its receive slots and its outbox.
pub struct UdpPort {
    local: SocketAddr,
    socket: UdpSocket,
    inbox: Mutex<Inbox>,
    outbox: Mutex<VecDeque<(SocketAddr, Vec<u8>)>>,
}

/// Datagrams received and not yet taken.
struct Inbox {
    /// [`BATCH`] buffers of the largest datagram each, so nothing is cut short.
    slots: Vec<Box<[u8]>>,
    /// Filled slots in arrival order: slot, length, sender.
    ready: VecDeque<(usize, usize, SocketAddr)>,
}

impl UdpPort {
    /// Wraps a bound, non-blocking socket.
    pub fn new(socket: UdpSocket) -> io::Result<Self> {
        Ok(UdpPort {
            local: socket.local_addr()?,
            socket,
            inbox: Mutex::new(Inbox {
                slots: (0..BATCH)
                    .map(|_| vec![0u8; DATAGRAM_BYTES_MAX].into_boxed_slice())
                    .collect(),
                ready: VecDeque::with_capacity(BATCH),
            }),
            outbox: Mutex::new(VecDeque::new()),
        })
    }

    /// The address it is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Copies the oldest datagram received into `buf`: its length (cut to `buf`) and sender.
    pub fn take(&self, buf: &mut [u8]) -> Option<(usize, SocketAddr)> {
        let mut inbox = lock(&self.inbox);
        let (slot, len, from) = inbox.ready.pop_front()?;
        let len = len.min(buf.len());
        buf[..len].copy_from_slice(&inbox.slots[slot][..len]);
        Some((len, from))
    }

    /// Whether datagrams received are waiting to be taken.
    pub fn has_ready(&self) -> bool {
        !lock(&self.inbox).ready.is_empty()
    }

    /// Reads every datagram waiting, up to [`BATCH`], without waiting; `Ok(0)` when none is.
    /// Call only when every earlier datagram has been taken (the slots are reused).
    pub fn receive_batch(&self) -> io::Result<usize> {
        let mut inbox = lock(&self.inbox);
        debug_assert!(inbox.ready.is_empty());
        let Inbox { slots, ready } = &mut *inbox;
        ready.clear();
        let fd = self.socket.as_raw_fd();
        let got = self.socket.try_io(Interest::READABLE, || {
            let mut headers = MultiHeaders::<SockaddrStorage>::preallocate(slots.len(), None);
            let mut iovs: Vec<[IoSliceMut<'_>; 1]> = slots
                .iter_mut()
                .map(|s| [IoSliceMut::new(&mut s[..])])
                .collect();
            let results = recvmmsg(
                fd,
                &mut headers,
                iovs.iter_mut(),
                MsgFlags::MSG_DONTWAIT,
                None,
            )
            .map_err(io::Error::from)?;
            let mut got = Vec::with_capacity(BATCH);
            for (slot, r) in results.enumerate() {
                // A datagram without a usable sender cannot be answered: skip it.
                if let Some(from) = r.address.as_ref().and_then(socket_addr) {
                    got.push((slot, r.bytes, from));
                }
            }
            Ok(got)
        });
        match got {
            Ok(got) => {
                let n = got.len();
                ready.extend(got);
                Ok(n)
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(0),
            Err(e) => Err(e),
        }
    }

    /// Waits until the socket may have a datagram to read.
    pub fn poll_readable(&self, cx: &mut std::task::Context<'_>) -> std::task::Poll<()> {
        self.socket.poll_recv_ready(cx).map(|_| ())
    }

    /// Puts a datagram in the outbox; it leaves at the next [`UdpPort::flush`].
    pub fn queue(&self, to: SocketAddr, bytes: Vec<u8>) {
        lock(&self.outbox).push_back((to, bytes));
    }

    /// Datagrams in the outbox.
    pub fn queued(&self) -> usize {
        lock(&self.outbox).len()
    }

    /// Sends the outbox, [`BATCH`] datagrams per `sendmmsg`, waiting while the socket's send
    /// buffer is full. A datagram the system refuses for its own sake (no route, a port
    /// known to be closed) is dropped, as a `sendto` error was before; the rest still go.
    pub async fn flush(&self) -> io::Result<()> {
        loop {
            let sent = self.socket.try_io(Interest::WRITABLE, || {
                let outbox = lock(&self.outbox);
                if outbox.is_empty() {
                    return Ok(0);
                }
                let n = outbox.len().min(BATCH);
                let slices: Vec<[IoSlice<'_>; 1]> = outbox
                    .iter()
                    .take(n)
                    .map(|(_, b)| [IoSlice::new(b)])
                    .collect();
                let addrs: Vec<Option<SockaddrStorage>> = outbox
                    .iter()
                    .take(n)
                    .map(|(a, _)| Some(SockaddrStorage::from(*a)))
                    .collect();
                let mut headers = MultiHeaders::<SockaddrStorage>::preallocate(n, None);
                let results = sendmmsg(
                    self.socket.as_raw_fd(),
                    &mut headers,
                    &slices,
                    &addrs,
                    [],
                    MsgFlags::empty(),
                )
                .map_err(io::Error::from)?;
                Ok(results.count())
            });
            match sent {
                Ok(0) if self.queued() == 0 => return Ok(()),
                Ok(n) => {
                    // n == 0 with datagrams queued does not happen (sendmmsg reports an
                    // error instead); drop one so a wrong count cannot loop forever.
                    lock(&self.outbox).drain(..n.max(1));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.socket.writable().await?;
                }
                Err(e) if crate::is_transient(&e) || refused_for_the_datagram(&e) => {
                    let dropped = lock(&self.outbox).pop_front();
                    if let Some((to, _)) = dropped {
                        tracing::debug!(%to, error = %e, "datagram not sent");
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }
}

/// Errors `sendmmsg` reports for the first datagram of a batch that concern that datagram
/// (its address or size), not the socket, or that a lossy network would also cause (no
/// buffer for it in the kernel: retransmission recovers, as from a loss on the wire).
fn refused_for_the_datagram(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error().map(Errno::from_raw),
        Some(
            Errno::EINVAL
                | Errno::EAFNOSUPPORT
                | Errno::EMSGSIZE
                | Errno::EACCES
                | Errno::EPERM
                | Errno::ENOBUFS
        )
    )
}

fn socket_addr(s: &SockaddrStorage) -> Option<SocketAddr> {
    if let Some(v4) = s.as_sockaddr_in() {
        return Some(SocketAddr::from(*v4));
    }
    s.as_sockaddr_in6().map(|v6| SocketAddr::from(*v6))
}

/// Locks one of the network's mutexes. They are never held across an await and guard plain
/// queues, so a poisoned one still holds consistent data.
pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
