//! The trace recorder: every datagram, with sim time, sender, receiver and bytes.

use std::cell::RefCell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

/// Whether an entry records a send or an arrival.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TraceKind {
    /// Left the sender's socket.
    Sent,
    /// Reached the receiver's socket.
    Received,
}

/// One datagram event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceEntry {
    /// Sim time.
    pub at: Duration,
    /// Send or arrival.
    pub kind: TraceKind,
    /// Sender.
    pub from: SocketAddr,
    /// Receiver.
    pub to: SocketAddr,
    /// Bytes.
    pub bytes: Vec<u8>,
}

/// A shared, append-only list of [`TraceEntry`] (single-threaded: the simulation is).
#[derive(Clone, Debug, Default)]
pub struct Trace(Rc<RefCell<Vec<TraceEntry>>>);

impl Trace {
    /// Appends an entry.
    pub fn record(
        &self,
        at: Duration,
        kind: TraceKind,
        from: SocketAddr,
        to: SocketAddr,
        bytes: &[u8],
    ) {
        self.0.borrow_mut().push(TraceEntry {
            at,
            kind,
            from,
            to,
            bytes: bytes.to_vec(),
        });
    }

    /// A copy of every entry.
    pub fn entries(&self) -> Vec<TraceEntry> {
        self.0.borrow().clone()
    }

    /// Only the sends: one per message on the wire, the ladder's lines.
    pub fn sent(&self) -> Vec<TraceEntry> {
        self.0
            .borrow()
            .iter()
            .filter(|e| e.kind == TraceKind::Sent)
            .cloned()
            .collect()
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.0.borrow().len()
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.0.borrow().is_empty()
    }
}
