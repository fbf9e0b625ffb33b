//! RFC 3261 §17.2.2: non-INVITE server transactions in the Completed state over an unreliable
//! transport, kept by the layer in the order their Timer J fires.
//!
//! In that state a transaction only answers a retransmitted request with the response it
//! stored, and ends when Timer J fires, 64*T1 (32 s) after it entered the state. At a
//! registrar nearly every transaction is a REGISTER that completes at once and then waits out
//! those 32 s: 320,000 of them at 10,000 REGISTER/s, long out of the cache when their timer
//! fires. In the element's transaction table each one held a boxed machine, a shared key, a
//! response buffer and a timer entry, and ending one touched all of them again: several cache
//! misses and three frees of cold memory for every REGISTER.
//!
//! Every one of them waits the same 64*T1, so they end in the order they completed: a queue,
//! not a timer index. Each one's key and response are appended to chunks of bytes in that
//! order, and its addresses and deadline to segments of fixed-size entries; ending one
//! advances the head of the queue and takes its sequence number out of the index, and a
//! chunk or segment whose transactions have all ended is reused. Nothing is allocated or
//! freed per transaction once the queue has reached its size.
//!
//! Nothing here is one large contiguous array, because growing one stalls the element: with
//! the entries in one `VecDeque`, half a million of them doubled to 117 MB (a copy and page
//! faults of tens of milliseconds) while REGISTERs at 80,000/s overflowed the socket. For the
//! same reason the index keeps each key's hash beside its sequence number: growing the table
//! rehashes from the table alone, without a cache miss per entry.
//!
//! The index is a hash table hashed with the element's seed like every other table
//! ([`crate::keymap`]), and never iterated: whatever reaches the wire is found by key or
//! taken in order from the head of the queue.

// The index is a hashbrown table (clippy.toml bans it elsewhere): it is looked up and
// changed by key only, never iterated, which is what the ban protects.
#![allow(clippy::disallowed_types)]

use std::collections::VecDeque;
use std::hash::BuildHasher;
use std::net::SocketAddr;

use foldhash::fast::FixedState;
use hashbrown::HashTable;

use super::TxKey;
use crate::time::Instant;
use crate::Transport;

/// Bytes per chunk: about 130 REGISTER responses with their keys. A transaction larger than
/// that gets a chunk of its own size.
const CHUNK: usize = 64 * 1024;

/// Entries per segment (56 KiB of them).
const SEGMENT: u64 = 512;

/// Chunks and segments kept for reuse once their transactions have ended: a queue that
/// shrinks gives memory back beyond these.
const SPARE: usize = 4;

/// Buffers of one capacity (chunks, or segments) whose transactions have all ended, kept
/// for the next ones.
#[derive(Debug)]
struct Spare<T> {
    capacity: usize,
    free: Vec<Vec<T>>,
}

impl<T> Spare<T> {
    fn new(capacity: usize) -> Self {
        Spare {
            capacity,
            free: Vec::new(),
        }
    }

    /// An empty buffer of the capacity, reused if one is kept.
    fn take(&mut self) -> Vec<T> {
        self.free
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(self.capacity))
    }

    /// Keeps `buffer` for reuse, unless it has another capacity (a chunk made for one large
    /// response) or enough are kept.
    fn give(&mut self, mut buffer: Vec<T>) {
        if buffer.capacity() == self.capacity && self.free.len() < SPARE {
            buffer.clear();
            self.free.push(buffer);
        }
    }
}

/// One completed transaction: where its bytes are and where its retransmissions go.
#[derive(Clone, Copy, Debug)]
struct Entry {
    /// When Timer J fires.
    timer_j: Instant,
    /// Hash of the key, so that ending the transaction finds its index slot without reading
    /// the key again.
    hash: u64,
    local: SocketAddr,
    target: SocketAddr,
    transport: Transport,
    /// Sequence number of the chunk holding the key, then the response.
    chunk: u64,
    offset: u32,
    key_len: u32,
    response_len: u32,
}

/// What a retransmitted request gets: the stored response, sent from `local` to `target`.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Stored<'a> {
    pub(crate) response: &'a [u8],
    pub(crate) local: SocketAddr,
    pub(crate) target: SocketAddr,
    pub(crate) transport: Transport,
}

/// Completed non-INVITE server transactions over an unreliable transport, in the order they
/// end (see the module's doc).
#[derive(Debug)]
pub(crate) struct CompletedServers {
    /// Entry number `n` is `segments[n / SEGMENT - first_segment][n % SEGMENT]`. A segment
    /// stays until the last of its entries has ended.
    segments: VecDeque<Vec<Entry>>,
    first_segment: u64,
    /// Numbers of the oldest live entry and of the next one.
    head: u64,
    next: u64,
    chunks: VecDeque<Vec<u8>>,
    /// Sequence number of `chunks[0]`.
    first_chunk: u64,
    spare_chunks: Spare<u8>,
    spare_segments: Spare<Entry>,
    /// (hash of the key, entry number) of every live entry.
    index: HashTable<(u64, u64)>,
    hasher: FixedState,
}

impl CompletedServers {
    /// An empty queue whose index is keyed by `seed`.
    pub(crate) fn with_seed(seed: u64) -> Self {
        CompletedServers {
            segments: VecDeque::new(),
            first_segment: 0,
            head: 0,
            next: 0,
            chunks: VecDeque::new(),
            first_chunk: 0,
            spare_chunks: Spare::new(CHUNK),
            spare_segments: Spare::new(SEGMENT as usize),
            index: HashTable::new(),
            hasher: FixedState::with_seed(seed),
        }
    }

    /// Number of transactions in the Completed state here.
    pub(crate) fn len(&self) -> usize {
        // No more than the segments hold, which fit in memory.
        (self.next - self.head) as usize
    }

    /// When the next Timer J fires.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.oldest().map(|e| e.timer_j)
    }

    /// A transaction that has just sent its final `response` and waits for Timer J at
    /// `timer_j`. The key must not be here already (the layer matches a request here before
    /// it creates a transaction), and `timer_j` must not be earlier than the last one's: the
    /// layer gives every transaction the same 64*T1 and time does not go backwards. Were it
    /// earlier, the transaction would end with the one before it, late by the difference.
    pub(crate) fn insert(
        &mut self,
        key: &TxKey,
        response: &[u8],
        timer_j: Instant,
        (local, target, transport): (SocketAddr, SocketAddr, Transport),
    ) {
        debug_assert!(self.newest().is_none_or(|e| e.timer_j <= timer_j));
        let key = key.text().as_bytes();
        let (chunk, offset) = self.append(key, response);
        let hash = self.hasher.hash_one(key);
        let seq = self.next;
        if seq.is_multiple_of(SEGMENT) {
            let segment = self.spare_segments.take();
            self.segments.push_back(segment);
        }
        let segment = self
            .segments
            .back_mut()
            .expect("a segment was just ensured");
        segment.push(Entry {
            timer_j,
            hash,
            local,
            target,
            transport,
            chunk,
            offset,
            // Datagrams are limited far below 4 GiB by the message limits.
            key_len: key.len() as u32,
            response_len: response.len() as u32,
        });
        self.next += 1;
        self.index.insert_unique(hash, (hash, seq), |slot| slot.0);
    }

    /// The stored response of the transaction under `key`, if it is here.
    pub(crate) fn get(&self, key: &TxKey) -> Option<Stored<'_>> {
        let key = key.text().as_bytes();
        let hash = self.hasher.hash_one(key);
        let (_, seq) = self.index.find(hash, |(h, seq)| {
            *h == hash && {
                let e = self.entry(*seq);
                self.bytes(e, 0, e.key_len) == key
            }
        })?;
        let e = self.entry(*seq);
        Some(Stored {
            response: self.bytes(e, e.key_len, e.response_len),
            local: e.local,
            target: e.target,
            transport: e.transport,
        })
    }

    /// Whether the transaction under `key` is here.
    pub(crate) fn contains(&self, key: &TxKey) -> bool {
        self.get(key).is_some()
    }

    /// Timer J fires for every transaction due at `now`: they end, oldest first.
    pub(crate) fn expire(&mut self, now: Instant) {
        let mut ended = false;
        while let Some(e) = self.oldest().copied() {
            if e.timer_j > now {
                break;
            }
            let seq = self.head;
            if let Ok(slot) = self.index.find_entry(e.hash, |(_, s)| *s == seq) {
                slot.remove();
            }
            self.head += 1;
            // A full segment whose entries have all ended goes; the one being filled stays.
            if self.head.is_multiple_of(SEGMENT) {
                if let Some(segment) = self.segments.pop_front() {
                    self.first_segment += 1;
                    self.spare_segments.give(segment);
                }
            }
            ended = true;
        }
        if ended {
            self.release_chunks();
        }
    }

    /// Gives the chunks no transaction uses any more to the spares (or back to the
    /// allocator).
    fn release_chunks(&mut self) {
        let keep_from = match self.oldest() {
            Some(e) => e.chunk,
            None => self.first_chunk + self.chunks.len() as u64,
        };
        while self.first_chunk < keep_from {
            let Some(chunk) = self.chunks.pop_front() else {
                break;
            };
            self.first_chunk += 1;
            self.spare_chunks.give(chunk);
        }
    }

    /// Appends the key and the response; where they start.
    fn append(&mut self, key: &[u8], response: &[u8]) -> (u64, u32) {
        let need = key.len() + response.len();
        let fits = self
            .chunks
            .back()
            .is_some_and(|c| c.capacity() - c.len() >= need);
        if !fits {
            let chunk = if need <= CHUNK {
                self.spare_chunks.take()
            } else {
                Vec::with_capacity(need)
            };
            self.chunks.push_back(chunk);
        }
        let seq = self.first_chunk + self.chunks.len() as u64 - 1;
        let chunk = self.chunks.back_mut().expect("a chunk was just ensured");
        let offset = chunk.len() as u32;
        chunk.extend_from_slice(key);
        chunk.extend_from_slice(response);
        (seq, offset)
    }

    /// Entry number `seq`, which is live (from `head` to before `next`).
    fn entry(&self, seq: u64) -> &Entry {
        let segment = &self.segments[(seq / SEGMENT - self.first_segment) as usize];
        &segment[(seq % SEGMENT) as usize]
    }

    fn oldest(&self) -> Option<&Entry> {
        (self.head < self.next).then(|| self.entry(self.head))
    }

    fn newest(&self) -> Option<&Entry> {
        (self.head < self.next).then(|| self.entry(self.next - 1))
    }

    /// `len` bytes at `from` past the start of entry `e`'s bytes.
    fn bytes(&self, e: &Entry, from: u32, len: u32) -> &[u8] {
        let chunk = &self.chunks[(e.chunk - self.first_chunk) as usize];
        let start = (e.offset + from) as usize;
        &chunk[start..start + len as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn key(branch: &str) -> TxKey {
        TxKey::rfc3261_sent_by(branch, "client.atlanta.example.com", "5060", "REGISTER")
    }

    fn addrs() -> (SocketAddr, SocketAddr, Transport) {
        (
            "127.0.0.1:5060".parse().unwrap(),
            "127.0.0.2:5070".parse().unwrap(),
            Transport::Udp,
        )
    }

    fn at(ms: u64) -> Instant {
        Instant::from_millis(ms)
    }

    #[test]
    fn answers_by_key_until_timer_j() {
        let mut c = CompletedServers::with_seed(3);
        c.insert(&key("z9hG4bKa"), b"SIP/2.0 200 OK a", at(32_000), addrs());
        c.insert(&key("z9hG4bKb"), b"SIP/2.0 200 OK b", at(32_500), addrs());
        assert_eq!(c.len(), 2);
        let a = c.get(&key("z9hG4bKa")).expect("stored");
        assert_eq!(a.response, b"SIP/2.0 200 OK a");
        assert_eq!((a.local, a.target, a.transport), addrs());
        assert_eq!(
            c.get(&key("z9hG4bKb")).map(|s| s.response),
            Some(&b"SIP/2.0 200 OK b"[..])
        );
        assert!(!c.contains(&key("z9hG4bKc")));
        // The same branch for another method is another transaction (§17.2.3).
        let other = key("z9hG4bKa").with_method("OPTIONS");
        assert!(!c.contains(&other));
        assert_eq!(c.next_deadline(), Some(at(32_000)));

        c.expire(at(31_999));
        assert_eq!(c.len(), 2);
        c.expire(at(32_000));
        assert_eq!(c.len(), 1);
        assert!(!c.contains(&key("z9hG4bKa")));
        assert!(c.contains(&key("z9hG4bKb")));
        assert_eq!(c.next_deadline(), Some(at(32_500)));
        c.expire(at(40_000));
        assert_eq!(c.len(), 0);
        assert_eq!(c.next_deadline(), None);
        assert!(!c.contains(&key("z9hG4bKb")));
    }

    #[test]
    fn a_key_can_come_back_after_its_transaction_ended() {
        let mut c = CompletedServers::with_seed(0);
        c.insert(&key("z9hG4bKa"), b"first", at(1), addrs());
        c.expire(at(1));
        c.insert(&key("z9hG4bKa"), b"second", at(2), addrs());
        assert_eq!(
            c.get(&key("z9hG4bKa")).map(|s| s.response),
            Some(&b"second"[..])
        );
    }

    /// Many chunks' worth, ending in waves: every response stays readable until its own
    /// Timer J, chunks are reused, and one larger than a chunk gets its own.
    #[test]
    fn chunks_are_reused_and_every_response_stays_whole() {
        let mut c = CompletedServers::with_seed(9);
        let response = |i: u64| {
            format!(
                "SIP/2.0 200 OK\r\nCSeq: {i} REGISTER\r\n{}",
                "x".repeat((i % 700) as usize)
            )
        };
        let big = vec![b'b'; CHUNK + 10];
        let mut live = VecDeque::new();
        for i in 0..5_000u64 {
            let now = at(i);
            c.expire(now);
            while live.front().is_some_and(|j| j + 32_000 / 10 <= i) {
                live.pop_front();
            }
            let body = if i == 2_500 {
                big.clone()
            } else {
                response(i).into_bytes()
            };
            c.insert(
                &key(&format!("z9hG4bK{i}")),
                &body,
                now + Duration::from_millis(32_000 / 10),
                addrs(),
            );
            live.push_back(i);
            if i % 97 == 0 {
                for j in &live {
                    let got = c.get(&key(&format!("z9hG4bK{j}"))).expect("live").response;
                    let want = if *j == 2_500 {
                        big.clone()
                    } else {
                        response(*j).into_bytes()
                    };
                    assert_eq!(got, &want[..], "transaction {j} at {i}");
                }
            }
            assert_eq!(c.len(), live.len(), "at {i}");
        }
        // Memory follows the live transactions: no more chunks than their bytes fill, plus
        // the head chunk (partly ended), the tail chunk (partly filled) and what is left
        // unused at each chunk's end.
        let live_bytes: usize = live
            .iter()
            .map(|j| key(&format!("z9hG4bK{j}")).text().len() + response(*j).len())
            .sum();
        assert!(
            c.chunks.len() <= live_bytes / CHUNK + 3,
            "{} chunks for {} transactions of {live_bytes} bytes",
            c.chunks.len(),
            c.len()
        );
        assert!(c.spare_chunks.free.len() <= SPARE);
        // Entries are held by segments the same way.
        assert!(
            c.segments.len() as u64 <= c.len() as u64 / SEGMENT + 2,
            "{} segments for {} transactions",
            c.segments.len(),
            c.len()
        );
        assert!(c.spare_segments.free.len() <= SPARE);
        c.expire(at(1_000_000));
        assert_eq!(c.len(), 0);
        assert!(c.chunks.is_empty());
        assert!(c.segments.len() <= 1, "only the one being filled");
        assert!(!c.contains(&key("z9hG4bK4999")));
    }
}
