//! Nonces: issued without state, checked without state, and replay-protected with a
//! bounded map (RFC 7616 §3.3 `nonce`, §5.4 "Limited-Use Nonce Values", §5.5 "Replay
//! Attacks"; RFC 2617 §3.2.1, §4.5).
//!
//! A nonce is the lower-case hex of 40 bytes:
//!
//! ```text
//! issued (8 bytes, big-endian ms since the driver's origin) | random (16 bytes) | tag (16 bytes)
//! tag = first 16 bytes of SHA-256(secret | issued | random)
//! ```
//!
//! The first 24 bytes are the *payload*. The tag lets us tell our nonces from forged or
//! garbled ones, and read their age, without remembering having issued them: a 401 costs
//! no memory, so a flood of unauthenticated requests cannot fill any table. (RFC 7616 §3.3
//! suggests the same shape: a timestamp plus a hash over it and a secret.) A plain keyed
//! hash is enough here, no HMAC needed: the length extension that makes
//! `H(secret | message)` weak only forges tags for *longer* messages, and a payload has one
//! fixed length.
//!
//! State is kept only once a client has authenticated with a nonce: the highest nonce count
//! (`nc`) accepted for it, so that the same or a lower count is refused as a replay
//! (RFC 7616 §5.5). That map is purged of expired nonces and capped; a nonce pushed out by
//! the cap counts as stale from then on, so the cap can only cost a client one extra
//! round trip, never let a replay through.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use sha2::{Digest, Sha256};

use super::digest::{constant_time_eq, to_hex};
use crate::time::Instant;

const ISSUED_LEN: usize = 8;
const RANDOM_LEN: usize = 16;
const PAYLOAD_LEN: usize = ISSUED_LEN + RANDOM_LEN;
/// 128 bits: guessing a valid tag is as hard as guessing the random part of a nonce.
const TAG_LEN: usize = 16;
const NONCE_LEN: usize = PAYLOAD_LEN + TAG_LEN;

/// The issue time followed by the random bytes. Ordered as bytes, payloads sort by issue
/// time first (big-endian), which makes "oldest" the first key of a `BTreeMap`.
pub(crate) type Payload = [u8; PAYLOAD_LEN];

/// How long nonces live and how many the replay table may remember.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NonceConfig {
    /// How long after it is issued a nonce is accepted; after that it is stale and the
    /// client is challenged again with `stale=TRUE` (RFC 7616 §3.3). It bounds how long a
    /// captured nonce is worth anything. Default 300 s.
    pub lifetime: Duration,
    /// How many nonces the replay table may remember at once. When it is full the oldest
    /// is forgotten, and from then on counts as stale. Default 100 000.
    pub tracked_max: usize,
}

impl Default for NonceConfig {
    fn default() -> Self {
        NonceConfig {
            lifetime: Duration::from_secs(300),
            tracked_max: 100_000,
        }
    }
}

/// What [`NonceManager::check`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NonceCheck {
    /// Ours, live, and (when `nc` was given) the count is higher than any accepted before.
    Valid,
    /// Ours and well-formed, but expired, forgotten by the replay table, or from another
    /// run of the driver (issued "in the future"). The client knows nothing is wrong with
    /// its password: challenge again with `stale=TRUE` (RFC 7616 §3.3).
    Stale,
    /// Ours and live, but `nc` is not higher than the highest count accepted for this
    /// nonce (RFC 7616 §5.5: a replay, or a client reusing a count).
    Replayed,
    /// Not a nonce we issued (wrong length, not hex, bad tag: forged, garbled, or issued
    /// under another secret), or an `nc` that is not 8 hex digits.
    Invalid,
}

/// Issues and checks nonces (RFC 7616 §3.3, §5.4, §5.5). See the module documentation for
/// the format and the replay table.
pub struct NonceManager {
    /// Keys the tags. Must be secret and random; the same secret across restarts keeps
    /// nonces readable, but their times are relative to the driver's origin, so those of
    /// an earlier run read as stale or expired anyway.
    secret: [u8; 32],
    config: NonceConfig,
    /// The highest `nc` accepted for each nonce that has been used with one, keyed by
    /// payload, so the first entry is the oldest (purged and evicted first).
    highest_nc: BTreeMap<Payload, u32>,
    /// The greatest payload ever evicted to respect `tracked_max`. An untracked nonce at or
    /// below it may have been evicted, and we cannot tell which, so it counts as stale:
    /// otherwise eviction would reset its count and let old `nc`s be replayed.
    evicted_through: Option<Payload>,
}

impl fmt::Debug for NonceManager {
    // By hand, to keep the secret out of logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NonceManager")
            .field("config", &self.config)
            .field("tracked", &self.highest_nc.len())
            .finish_non_exhaustive()
    }
}

impl NonceManager {
    /// A manager whose tags are keyed by `secret` (draw it from the seeded RNG, or from
    /// configuration to keep nonces valid across a restart).
    pub fn new(secret: [u8; 32], config: NonceConfig) -> Self {
        NonceManager {
            secret,
            config,
            highest_nc: BTreeMap::new(),
            evicted_through: None,
        }
    }

    /// The configuration in force.
    pub fn config(&self) -> NonceConfig {
        self.config
    }

    /// How many nonces the replay table remembers now (at most `tracked_max`).
    pub fn tracked(&self) -> usize {
        self.highest_nc.len()
    }

    /// A fresh nonce: 80 lower-case hex digits, safe inside a quoted-string. Keeps no state.
    /// Any RNG will do, `dyn` ones included; only the random part of the nonce comes
    /// from it.
    pub fn issue<R: rand_core::RngCore + ?Sized>(&mut self, now: Instant, rng: &mut R) -> String {
        let mut payload: Payload = [0; PAYLOAD_LEN];
        payload[..ISSUED_LEN].copy_from_slice(&millis(now).to_be_bytes());
        rng.fill_bytes(&mut payload[ISSUED_LEN..]);
        let mut bytes = [0; NONCE_LEN];
        bytes[..PAYLOAD_LEN].copy_from_slice(&payload);
        bytes[PAYLOAD_LEN..].copy_from_slice(&self.tag(&payload));
        to_hex(&bytes)
    }

    /// Checks `nonce` and, when `nc` is given, that the count is higher than any accepted
    /// for this nonce. Changes nothing: the count is recorded only by [`commit`], once the
    /// response has been verified, so that a wrong password does not burn a count.
    ///
    /// Without `nc` (the RFC 2069 form, no qop) there is no replay protection: such
    /// clients legitimately reuse a nonce for every request until it expires.
    ///
    /// [`commit`]: NonceManager::commit
    pub fn check(&self, nonce: &str, nc: Option<&str>, now: Instant) -> NonceCheck {
        self.check_decoded(nonce, nc, now).0
    }

    /// [`NonceManager::check`], with the payload it decoded for a later
    /// [`NonceManager::commit_payload`]: decoding hashes (the tag), and one verification
    /// needs it once.
    pub(crate) fn check_decoded(
        &self,
        nonce: &str,
        nc: Option<&str>,
        now: Instant,
    ) -> (NonceCheck, Option<Payload>) {
        match self.decode(nonce) {
            Some(payload) => (self.check_payload(&payload, nc, now), Some(payload)),
            None => (NonceCheck::Invalid, None),
        }
    }

    /// [`NonceManager::check`] of a nonce already decoded.
    fn check_payload(&self, payload: &Payload, nc: Option<&str>, now: Instant) -> NonceCheck {
        if !self.is_live(payload, now) {
            return NonceCheck::Stale;
        }
        let highest = match self.highest_nc.get(payload) {
            Some(&n) => n,
            None if self.was_evicted(payload) => return NonceCheck::Stale,
            None => 0,
        };
        match nc.map(parse_nc) {
            None => NonceCheck::Valid,
            Some(None) => NonceCheck::Invalid,
            // nc starts at 1 (RFC 2617 §3.2.2), so 0 never passes: it is "not higher than 0".
            Some(Some(n)) if n <= highest => NonceCheck::Replayed,
            Some(Some(_)) => NonceCheck::Valid,
        }
    }

    /// Records `nc` as the highest count accepted for `nonce`, after a successful
    /// verification. Also forgets expired nonces, and the oldest ones beyond
    /// `tracked_max`. Does nothing for a nonce or count that [`check`] would not call
    /// valid, nor without `nc`.
    ///
    /// [`check`]: NonceManager::check
    pub fn commit(&mut self, nonce: &str, nc: Option<&str>, now: Instant) {
        if let Some(payload) = self.decode(nonce) {
            self.commit_payload(payload, nc, now);
        }
    }

    /// [`NonceManager::commit`] of a nonce already decoded (by
    /// [`NonceManager::check_decoded`]).
    pub(crate) fn commit_payload(&mut self, payload: Payload, nc: Option<&str>, now: Instant) {
        self.purge(now);
        if self.check_payload(&payload, nc, now) != NonceCheck::Valid {
            return;
        }
        let Some(n) = nc.and_then(parse_nc) else {
            return;
        };
        self.highest_nc.insert(payload, n);
        while self.highest_nc.len() > self.config.tracked_max {
            let Some((evicted, _)) = self.highest_nc.pop_first() else {
                break;
            };
            self.evicted_through = Some(self.evicted_through.map_or(evicted, |w| w.max(evicted)));
        }
    }

    /// Forgets the nonces that have expired: they read as stale by their time alone.
    fn purge(&mut self, now: Instant) {
        while let Some((payload, _)) = self.highest_nc.first_key_value() {
            if self.is_live(payload, now) {
                break;
            }
            self.highest_nc.pop_first();
        }
    }

    /// Whether a nonce issued at the payload's time is still accepted at `now`: issued no
    /// later than `now` and less than `lifetime` ago.
    fn is_live(&self, payload: &Payload, now: Instant) -> bool {
        let issued = issued_millis(payload);
        let now = millis(now);
        let lifetime = u64::try_from(self.config.lifetime.as_millis()).unwrap_or(u64::MAX);
        issued <= now && now - issued < lifetime
    }

    fn was_evicted(&self, payload: &Payload) -> bool {
        self.evicted_through.is_some_and(|w| *payload <= w)
    }

    fn tag(&self, payload: &Payload) -> [u8; TAG_LEN] {
        let mut hasher = Sha256::new();
        hasher.update(self.secret);
        hasher.update(payload);
        let full = hasher.finalize();
        let mut tag = [0; TAG_LEN];
        tag.copy_from_slice(&full[..TAG_LEN]);
        tag
    }

    /// The payload of a nonce we issued, or `None` when it is not one.
    fn decode(&self, nonce: &str) -> Option<Payload> {
        let hex = nonce.as_bytes();
        if hex.len() != NONCE_LEN * 2 {
            return None;
        }
        let mut bytes = [0u8; NONCE_LEN];
        for (byte, pair) in bytes.iter_mut().zip(hex.chunks_exact(2)) {
            *byte = (hex_value(pair[0])? << 4) | hex_value(pair[1])?;
        }
        let (payload, tag) = bytes.split_at(PAYLOAD_LEN);
        let payload: Payload = payload.try_into().ok()?;
        constant_time_eq(&self.tag(&payload), tag).then_some(payload)
    }
}

/// A lower-case hex digit's value. Upper case is refused: we issue lower case, and a nonce
/// must come back exactly as sent, since it is hashed into the response.
fn hex_value(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        _ => None,
    }
}

/// `nc-value = 8LHEX` (RFC 2617 §3.2.2). Upper-case digits are accepted: some clients send
/// them, and the count means the same.
pub(crate) fn parse_nc(nc: &str) -> Option<u32> {
    if nc.len() != 8 || !nc.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u32::from_str_radix(nc, 16).ok()
}

fn millis(t: Instant) -> u64 {
    u64::try_from(t.since_origin().as_millis()).unwrap_or(u64::MAX)
}

fn issued_millis(payload: &Payload) -> u64 {
    let mut issued = [0u8; ISSUED_LEN];
    issued.copy_from_slice(&payload[..ISSUED_LEN]);
    u64::from_be_bytes(issued)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand_chacha::ChaCha8Rng;
    use rand_core::SeedableRng;

    const SECRET: [u8; 32] = [7; 32];

    fn manager() -> NonceManager {
        NonceManager::new(SECRET, NonceConfig::default())
    }

    fn at(secs: u64) -> Instant {
        Instant::from_millis(secs * 1000)
    }

    fn rng() -> ChaCha8Rng {
        ChaCha8Rng::seed_from_u64(1)
    }

    #[test]
    fn issued_nonces_are_printable_hex_and_differ() {
        let mut m = manager();
        let mut rng = rng();
        let a = m.issue(at(1), &mut rng);
        let b = m.issue(at(1), &mut rng);
        assert_eq!(a.len(), 80);
        assert!(a.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')));
        assert_ne!(a, b);
        assert_eq!(m.tracked(), 0, "issuing keeps no state");
    }

    #[test]
    fn same_seed_same_nonces() {
        let issue = || {
            let mut m = manager();
            let mut rng = rng();
            (m.issue(at(5), &mut rng), m.issue(at(6), &mut rng))
        };
        assert_eq!(issue(), issue());
    }

    #[test]
    fn issue_then_check_round_trips() {
        let mut m = manager();
        let nonce = m.issue(at(10), &mut rng());
        assert_eq!(m.check(&nonce, None, at(10)), NonceCheck::Valid);
        assert_eq!(m.check(&nonce, Some("00000001"), at(10)), NonceCheck::Valid);
        assert_eq!(
            m.check(&nonce, Some("00000001"), at(309)),
            NonceCheck::Valid
        );
    }

    #[test]
    fn nonce_is_stale_after_its_lifetime() {
        let mut m = manager();
        let nonce = m.issue(at(10), &mut rng());
        assert_eq!(
            m.check(&nonce, None, Instant::from_millis(309_999)),
            NonceCheck::Valid
        );
        assert_eq!(m.check(&nonce, None, at(310)), NonceCheck::Stale);
        assert_eq!(
            m.check(&nonce, Some("00000001"), at(4000)),
            NonceCheck::Stale
        );
    }

    #[test]
    fn lifetime_comes_from_config() {
        let mut m = NonceManager::new(
            SECRET,
            NonceConfig {
                lifetime: Duration::from_secs(30),
                tracked_max: 10,
            },
        );
        let nonce = m.issue(at(0), &mut rng());
        assert_eq!(m.check(&nonce, None, at(29)), NonceCheck::Valid);
        assert_eq!(m.check(&nonce, None, at(30)), NonceCheck::Stale);
    }

    #[test]
    fn nonce_from_the_future_is_stale() {
        // E.g. issued by an earlier run of the driver with the same secret.
        let mut m = manager();
        let nonce = m.issue(at(100), &mut rng());
        assert_eq!(m.check(&nonce, None, at(99)), NonceCheck::Stale);
    }

    #[test]
    fn forged_or_garbled_nonces_are_invalid() {
        let mut m = manager();
        let nonce = m.issue(at(1), &mut rng());
        let flip = |i: usize| {
            let mut b = nonce.clone().into_bytes();
            b[i] = if b[i] == b'0' { b'1' } else { b'0' };
            String::from_utf8(b).unwrap_or_default()
        };
        // A later issue time with the old tag: the classic way to extend a nonce's life.
        assert_eq!(m.check(&flip(15), None, at(1)), NonceCheck::Invalid);
        // The random part and the tag itself.
        assert_eq!(m.check(&flip(30), None, at(1)), NonceCheck::Invalid);
        assert_eq!(m.check(&flip(79), None, at(1)), NonceCheck::Invalid);
        assert_eq!(
            m.check(&nonce.to_ascii_uppercase(), None, at(1)),
            NonceCheck::Invalid
        );
        assert_eq!(m.check(&nonce[..78], None, at(1)), NonceCheck::Invalid);
        assert_eq!(
            m.check(&format!("{nonce}00"), None, at(1)),
            NonceCheck::Invalid
        );
        for junk in [
            "",
            "abc",
            "dcd98b7102dd2f0e8b11d0f600bfb0c093",
            &"zz".repeat(40),
        ] {
            assert_eq!(m.check(junk, None, at(1)), NonceCheck::Invalid, "{junk}");
        }
        let other = NonceManager::new([8; 32], NonceConfig::default());
        assert_eq!(other.check(&nonce, None, at(1)), NonceCheck::Invalid);
    }

    #[test]
    fn malformed_nc_is_invalid() {
        let mut m = manager();
        let nonce = m.issue(at(1), &mut rng());
        for nc in [
            "1",
            "0000001",
            "000000001",
            "0000000g",
            "+0000001",
            "",
            " 0000001",
        ] {
            assert_eq!(
                m.check(&nonce, Some(nc), at(1)),
                NonceCheck::Invalid,
                "{nc:?}"
            );
        }
        assert_eq!(m.check(&nonce, Some("0000000A"), at(1)), NonceCheck::Valid);
    }

    #[test]
    fn replay_of_the_same_nc_is_refused_and_higher_is_accepted() {
        let mut m = manager();
        let nonce = m.issue(at(1), &mut rng());
        assert_eq!(m.check(&nonce, Some("00000001"), at(2)), NonceCheck::Valid);
        m.commit(&nonce, Some("00000001"), at(2));
        assert_eq!(m.tracked(), 1);
        assert_eq!(
            m.check(&nonce, Some("00000001"), at(3)),
            NonceCheck::Replayed
        );
        assert_eq!(
            m.check(&nonce, Some("00000000"), at(3)),
            NonceCheck::Replayed
        );
        assert_eq!(m.check(&nonce, Some("00000002"), at(3)), NonceCheck::Valid);
        // Counts may skip (a request lost on the way), and compare as numbers.
        m.commit(&nonce, Some("0000000a"), at(3));
        assert_eq!(
            m.check(&nonce, Some("00000009"), at(4)),
            NonceCheck::Replayed
        );
        assert_eq!(
            m.check(&nonce, Some("0000000A"), at(4)),
            NonceCheck::Replayed
        );
        assert_eq!(m.check(&nonce, Some("0000000b"), at(4)), NonceCheck::Valid);
    }

    #[test]
    fn nc_zero_is_never_valid() {
        let mut m = manager();
        let nonce = m.issue(at(1), &mut rng());
        assert_eq!(
            m.check(&nonce, Some("00000000"), at(1)),
            NonceCheck::Replayed
        );
    }

    #[test]
    fn check_alone_records_nothing() {
        // The verifier checks before it knows whether the password is right; a failed
        // attempt must not use up the count.
        let mut m = manager();
        let nonce = m.issue(at(1), &mut rng());
        for _ in 0..3 {
            assert_eq!(m.check(&nonce, Some("00000001"), at(2)), NonceCheck::Valid);
        }
        assert_eq!(m.tracked(), 0);
    }

    #[test]
    fn commit_never_lowers_or_records_invalid_counts() {
        let mut m = manager();
        let nonce = m.issue(at(1), &mut rng());
        m.commit(&nonce, Some("00000005"), at(1));
        m.commit(&nonce, Some("00000003"), at(1));
        assert_eq!(
            m.check(&nonce, Some("00000005"), at(1)),
            NonceCheck::Replayed
        );
        assert_eq!(m.check(&nonce, Some("00000006"), at(1)), NonceCheck::Valid);
        m.commit(&nonce, None, at(1));
        m.commit(&nonce, Some("zz"), at(1));
        m.commit("garbage", Some("00000009"), at(1));
        assert_eq!(m.tracked(), 1);
        assert_eq!(m.check(&nonce, Some("00000006"), at(1)), NonceCheck::Valid);
    }

    #[test]
    fn expired_entries_are_purged() {
        let mut m = manager();
        let mut rng = rng();
        let old = m.issue(at(0), &mut rng);
        m.commit(&old, Some("00000001"), at(0));
        let new = m.issue(at(200), &mut rng);
        m.commit(&new, Some("00000001"), at(200));
        assert_eq!(m.tracked(), 2);
        m.commit(&new, Some("00000002"), at(301));
        assert_eq!(m.tracked(), 1);
        assert_eq!(m.check(&old, Some("00000002"), at(301)), NonceCheck::Stale);
    }

    #[test]
    fn replay_table_is_bounded_and_evicted_nonces_are_stale() {
        let mut m = NonceManager::new(
            SECRET,
            NonceConfig {
                lifetime: Duration::from_secs(300),
                tracked_max: 3,
            },
        );
        let mut rng = rng();
        let nonces: Vec<String> = (0..5).map(|i| m.issue(at(i), &mut rng)).collect();
        for (i, n) in nonces.iter().enumerate() {
            m.commit(n, Some("00000001"), at(10 + i as u64));
            assert!(m.tracked() <= 3);
        }
        assert_eq!(m.tracked(), 3);
        // The two oldest were evicted: stale, never "count starts over", so the replay of
        // nc=1 is refused.
        for n in &nonces[..2] {
            assert_eq!(m.check(n, Some("00000001"), at(20)), NonceCheck::Stale);
            assert_eq!(m.check(n, Some("00000002"), at(20)), NonceCheck::Stale);
        }
        for n in &nonces[2..] {
            assert_eq!(m.check(n, Some("00000001"), at(20)), NonceCheck::Replayed);
            assert_eq!(m.check(n, Some("00000002"), at(20)), NonceCheck::Valid);
        }
        // A nonce issued after the evictions is unaffected.
        let fresh = m.issue(at(21), &mut rng);
        assert_eq!(m.check(&fresh, Some("00000001"), at(21)), NonceCheck::Valid);
    }

    #[test]
    fn zero_capacity_makes_every_nonce_single_use() {
        let mut m = NonceManager::new(
            SECRET,
            NonceConfig {
                lifetime: Duration::from_secs(300),
                tracked_max: 0,
            },
        );
        let nonce = m.issue(at(1), &mut rng());
        m.commit(&nonce, Some("00000001"), at(1));
        assert_eq!(m.tracked(), 0);
        assert_eq!(m.check(&nonce, Some("00000002"), at(1)), NonceCheck::Stale);
    }

    #[test]
    fn debug_does_not_show_the_secret() {
        let text = format!("{:?}", manager());
        assert!(text.contains("NonceManager"));
        assert!(!text.contains("[7, 7"), "{text}");
    }

    proptest! {
        #[test]
        fn arbitrary_nonces_and_counts_never_panic(
            nonce in any::<String>(),
            nc in proptest::option::of(any::<String>()),
            ms in any::<u64>(),
        ) {
            let mut m = manager();
            let now = Instant::from_millis(ms);
            let _ = m.check(&nonce, nc.as_deref(), now);
            m.commit(&nonce, nc.as_deref(), now);
        }

        #[test]
        fn hex_shaped_forgeries_are_invalid(nonce in "[0-9a-f]{80}") {
            prop_assert_eq!(manager().check(&nonce, None, at(0)), NonceCheck::Invalid);
        }

        #[test]
        fn extreme_times_do_not_overflow(issued in any::<u64>(), now in any::<u64>()) {
            let mut m = manager();
            let nonce = m.issue(Instant::from_millis(issued), &mut rng());
            let _ = m.check(&nonce, Some("00000001"), Instant::from_millis(now));
            m.commit(&nonce, Some("00000001"), Instant::from_millis(now));
        }
    }
}
