//! State that the workers of one element share, and the worker tag of the branches they
//! write.
//!
//! One element may run as several workers, each a [`Proxy`] on its own thread with its own
//! socket (`SO_REUSEPORT`: the kernel picks the worker by the sender's address). Transactions
//! stay with the worker that has them: retransmissions, CANCEL and ACK of a request come
//! from the same address and reach the same worker. What must not depend on which worker a
//! request reaches is shared:
//!
//! - the location service (RFC 3261 §10.3, §16.5): a binding registered through one worker
//!   routes an INVITE that reaches another;
//! - the nonces (RFC 7616 §3.3, §5.5): a nonce issued by one worker verifies on another, and
//!   the highest nonce count accepted for it is one number, so a replay is refused whichever
//!   worker it reaches;
//! - the request rate per source address: the buckets are per IP address, and the kernel
//!   spreads the ports of one address over the workers.
//!
//! A single element holds the same state behind the same locks, never contended: one code
//! path for both.
//!
//! The responses to a request a worker forwarded come from the next hop's address, which
//! the kernel may hand to another worker. The branch (§16.6 step 8) therefore names the
//! worker that holds the client transaction: see [`worker_of`].
//!
//! [`Proxy`]: crate::Proxy

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::auth::{NonceConfig, NonceManager};
use crate::element::table_seed;
use crate::ids::{Ids, MAGIC_COOKIE};
use crate::proxy::LOOP_HASH_LEN;
use crate::rate::SourceTable;
use crate::registrar::Location;
use crate::Config;

/// One piece of shared state behind its lock.
pub struct Shared<T>(Arc<Mutex<T>>);

impl<T> Shared<T> {
    /// `value`, shareable.
    pub fn new(value: T) -> Self {
        Shared(Arc::new(Mutex::new(value)))
    }

    /// The value, locked until the guard is dropped. A worker that panicked while holding
    /// the lock leaves a poisoned mutex; what it guards is still taken, as one update per
    /// lock leaves it consistent, and network input must not bring the others down.
    pub fn lock(&self) -> MutexGuard<'_, T> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl<T> Clone for Shared<T> {
    fn clone(&self) -> Self {
        Shared(Arc::clone(&self.0))
    }
}

impl<T: fmt::Debug> fmt::Debug for Shared<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.try_lock() {
            Ok(v) => v.fmt(f),
            Err(_) => f.write_str("Shared(<locked>)"),
        }
    }
}

/// What the workers of one element share; see the module documentation.
#[derive(Clone, Debug)]
pub struct SharedState {
    pub(crate) location: Shared<Location>,
    pub(crate) nonces: Shared<NonceManager>,
    pub(crate) sources: Shared<SourceTable>,
}

impl SharedState {
    /// The state of a new element configured by `config`: no bindings, no nonce used yet,
    /// the nonce secret drawn first from `config.seed` as [`Proxy::new`] draws it.
    ///
    /// [`Proxy::new`]: crate::Proxy::new
    pub fn new(config: &Config) -> Self {
        Self::with_secret(config, Ids::new(config.seed).secret())
    }

    pub(crate) fn with_secret(config: &Config, secret: [u8; 32]) -> Self {
        SharedState {
            location: Shared::new(Location::with_seed(table_seed(config.seed))),
            nonces: Shared::new(NonceManager::new(
                secret,
                NonceConfig {
                    lifetime: config.auth.nonce_lifetime,
                    ..NonceConfig::default()
                },
            )),
            sources: Shared::new(SourceTable::new(config.limits.source_rate.clone())),
        }
    }
}

/// The worker that wrote `branch`, when it is one of ours written by a worker: the magic
/// cookie (§8.1.1.7), the 16 characters of the loop-detection hash (§16.6 step 8), then
/// `w`, the worker's number and `.`. The hash keeps its place right after the cookie, where
/// loop detection reads it.
pub fn branch_worker(branch: &[u8]) -> Option<u16> {
    let rest = branch.strip_prefix(MAGIC_COOKIE.as_bytes())?;
    let rest = rest.get(LOOP_HASH_LEN..)?.strip_prefix(b"w")?;
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 || digits > 5 || rest.get(digits) != Some(&b'.') {
        return None;
    }
    let mut n: u32 = 0;
    for d in &rest[..digits] {
        n = n * 10 + u32::from(d - b'0');
    }
    u16::try_from(n).ok()
}

/// The worker a response belongs to, read from its top Via's branch without parsing the
/// message: `None` for a request, a response without Via or branch, or a branch that is not
/// one of ours (the receiving worker then takes it, as a single element would). Looks at
/// the first Via header line only, up to the first comma; a top Via that a next hop folded
/// or rewrote with spaces around `;` or `=` goes to the receiving worker too.
pub fn worker_of(message: &[u8]) -> Option<u16> {
    if !message.starts_with(b"SIP/2.0 ") {
        return None;
    }
    // Headers end at the first empty line; a body is never looked at.
    for line in message.split(|b| *b == b'\n').skip(1) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            return None;
        }
        let Some(colon) = line.iter().position(|b| *b == b':') else {
            continue;
        };
        let name = line[..colon].trim_ascii();
        if !(name.eq_ignore_ascii_case(b"via") || name.eq_ignore_ascii_case(b"v")) {
            continue;
        }
        let value = &line[colon + 1..];
        let first = value.split(|b| *b == b',').next().unwrap_or(value);
        return branch_param(first).and_then(branch_worker);
    }
    None
}

/// The value of the `branch` parameter in one Via value, written `;branch=` (any case).
fn branch_param(via: &[u8]) -> Option<&[u8]> {
    const PARAM: &[u8] = b";branch=";
    let at = via
        .windows(PARAM.len())
        .position(|w| w.eq_ignore_ascii_case(PARAM))?;
    let value = &via[at + PARAM.len()..];
    let end = value
        .iter()
        .position(|b| matches!(b, b';' | b' ' | b'\t' | b','))
        .unwrap_or(value.len());
    Some(&value[..end])
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Network input: whatever arrives, the read answers and never panics.
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = worker_of(&bytes);
            let _ = branch_worker(&bytes);
        }

        /// A response whose top Via carries a tagged branch, whatever follows the tag.
        #[test]
        fn any_tagged_branch_is_read_back(worker in any::<u16>(), rest in "[0-9a-z.]{0,12}") {
            let via = format!("Via: SIP/2.0/UDP p;branch=z9hG4bK0123456789abcdefw{worker}.{rest};rport");
            prop_assert_eq!(worker_of(&response(&via)), Some(worker));
        }
    }

    fn response(via: &str) -> Vec<u8> {
        format!(
            "SIP/2.0 180 Ringing\r\n{via}\r\nTo: <sip:b@h>;tag=1\r\nCall-ID: x\r\n\
             CSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
        )
        .into_bytes()
    }

    #[test]
    fn a_tagged_branch_names_its_worker() {
        let branch = b"z9hG4bK0123456789abcdefw3.1";
        assert_eq!(branch_worker(branch), Some(3));
        assert_eq!(branch_worker(b"z9hG4bK0123456789abcdefw12.1.2"), Some(12));
        let r = response(
            "Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK0123456789abcdefw1.1;received=x, \
             SIP/2.0/UDP c;branch=z9hG4bK0123456789abcdefw0.1",
        );
        assert_eq!(worker_of(&r), Some(1));
        // Compact form and any case of the parameter name.
        let r = response("v: SIP/2.0/UDP p;BRANCH=z9hG4bK0123456789abcdefw0.2");
        assert_eq!(worker_of(&r), Some(0));
    }

    #[test]
    fn untagged_foreign_absent_or_malformed_branches_name_no_worker() {
        for via in [
            // A single element's branch, as the golden snapshots pin it.
            "Via: SIP/2.0/UDP p;branch=z9hG4bK0123456789abcdef.1",
            "Via: SIP/2.0/UDP p;branch=z9hG4bKnashds7",
            "Via: SIP/2.0/UDP p;branch=1234",
            "Via: SIP/2.0/UDP p",
            "Via: SIP/2.0/UDP p;branch=",
            "Via: SIP/2.0/UDP p;branch=z9hG4bK0123456789abcdefw",
            "Via: SIP/2.0/UDP p;branch=z9hG4bK0123456789abcdefw.1",
            "Via: SIP/2.0/UDP p;branch=z9hG4bK0123456789abcdefwx.1",
            "Via: SIP/2.0/UDP p;branch=z9hG4bK0123456789abcdefw7",
            "Via: SIP/2.0/UDP p;branch=z9hG4bK0123456789abcdefw99999.1",
            "Via: SIP/2.0/UDP p;branch=z9hG4bK0123456789abcdefw123456.1",
            "Via: SIP/2.0/UDP p;branch=z9hG4bK01w1.1",
            // The tag of a second Via is not ours to read.
            "Via: SIP/2.0/UDP p, SIP/2.0/UDP q;branch=z9hG4bK0123456789abcdefw1.1",
            "X-Via: SIP/2.0/UDP p;branch=z9hG4bK0123456789abcdefw1.1",
        ] {
            assert_eq!(worker_of(&response(via)), None, "{via}");
        }
        // A request is never handed over: its top Via is the sender's.
        let request = b"INVITE sip:b@h SIP/2.0\r\nVia: SIP/2.0/UDP p;branch=z9hG4bK0123456789abcdefw1.1\r\n\r\n";
        assert_eq!(worker_of(request), None);
        // The body is not read, nor anything that is not a header.
        let body = b"SIP/2.0 200 OK\r\nCSeq: 1 INVITE\r\n\r\nVia: SIP/2.0/UDP p;branch=z9hG4bK0123456789abcdefw1.1\r\n";
        assert_eq!(worker_of(body), None);
        for junk in [
            &b""[..],
            b"SIP/2.0 ",
            b"SIP/2.0 200\n",
            b"SIP/2.0 200\r\nVia",
            b"\xff\xfe",
        ] {
            assert_eq!(worker_of(junk), None);
        }
    }
}
