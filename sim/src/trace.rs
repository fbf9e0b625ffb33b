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

    /// The sends, each with whether it arrived. An arrival is matched to the latest send
    /// before it with the same sender, receiver and bytes that has no arrival yet: identical
    /// datagrams are retransmissions, and the one that got through is the one sent last (the
    /// earlier ones were lost on the way, to a crashed host or across a cut link).
    pub fn sent_with_fate(&self) -> Vec<(TraceEntry, bool)> {
        let entries = self.0.borrow();
        let mut delivered = vec![false; entries.len()];
        let mut waiting: Vec<usize> = Vec::new();
        for (i, e) in entries.iter().enumerate() {
            match e.kind {
                TraceKind::Sent => waiting.push(i),
                TraceKind::Received => {
                    let same = |j: &usize| {
                        let s = &entries[*j];
                        s.from == e.from && s.to == e.to && s.bytes == e.bytes
                    };
                    if let Some(k) = waiting.iter().rposition(same) {
                        delivered[waiting.remove(k)] = true;
                    }
                }
            }
        }
        entries
            .iter()
            .enumerate()
            .filter(|(_, e)| e.kind == TraceKind::Sent)
            .map(|(i, e)| (e.clone(), delivered[i]))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: u64) -> Duration {
        Duration::from_millis(ms)
    }

    #[test]
    fn the_last_of_identical_sends_is_the_one_that_arrived() {
        let a: SocketAddr = "192.0.2.1:5060".parse().unwrap();
        let b: SocketAddr = "192.0.2.2:5060".parse().unwrap();
        let t = Trace::default();
        t.record(at(0), TraceKind::Sent, a, b, b"REGISTER");
        t.record(at(500), TraceKind::Sent, a, b, b"REGISTER");
        t.record(at(510), TraceKind::Received, a, b, b"REGISTER");
        t.record(at(520), TraceKind::Sent, b, a, b"200");
        t.record(at(530), TraceKind::Sent, b, a, b"200");
        t.record(at(540), TraceKind::Received, b, a, b"200");
        let fate: Vec<_> = t
            .sent_with_fate()
            .into_iter()
            .map(|(e, ok)| (e.at, ok))
            .collect();
        assert_eq!(
            fate,
            [
                (at(0), false),
                (at(500), true),
                (at(520), false),
                (at(530), true)
            ]
        );
    }
}
