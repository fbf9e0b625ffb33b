//! Every random identifier the element puts on the wire, drawn from one RNG seeded from
//! [`crate::Config::seed`], in the order the element needs them. Same seed, same bytes.

use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};

/// RFC 3261 §8.1.1.7: branches of RFC 3261 elements start with this magic cookie.
pub const MAGIC_COOKIE: &str = "z9hG4bK";

const ALPHABET: &[u8; 32] = b"0123456789abcdefghijklmnopqrstuv";

/// Characters in a tag from [`Ids::tag`].
const TAG_LEN: usize = 10;

/// A tag from [`Ids::tag`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tag([u8; TAG_LEN]);

impl Tag {
    /// The tag's text.
    pub fn as_str(&self) -> &str {
        // Drawn from ALPHABET, which is ASCII: the check cannot fail.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

/// The element's seeded source of identifiers.
#[derive(Clone, Debug)]
pub struct Ids {
    rng: ChaCha8Rng,
}

impl Ids {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Ids {
            rng: ChaCha8Rng::seed_from_u64(seed),
        }
    }

    /// `n` characters of a lower-case base-32 alphabet (5 bits of entropy each).
    pub fn token(&mut self, n: usize) -> String {
        (0..n)
            .map(|_| ALPHABET[(self.rng.next_u32() & 31) as usize] as char)
            .collect()
    }

    /// A To/From tag (RFC 3261 §19.3: at least 32 bits of randomness; this has 50). The
    /// same characters [`Ids::token`] would draw, kept on the stack: a response that adds a
    /// To tag copies it into its bytes and needs it no longer.
    pub fn tag(&mut self) -> Tag {
        let mut tag = Tag([0; TAG_LEN]);
        for c in &mut tag.0 {
            *c = ALPHABET[(self.rng.next_u32() & 31) as usize];
        }
        tag
    }

    /// A branch unique across space and time (§8.1.1.7), magic cookie first; 80 random bits.
    pub fn branch(&mut self) -> String {
        format!("{MAGIC_COOKIE}{}", self.token(16))
    }

    /// A Call-ID (§8.1.1.4); the caller appends `@host` when it wants one.
    pub fn call_id(&mut self) -> String {
        self.token(20)
    }

    /// The RNG itself, for modules that take `impl RngCore` (nonces).
    pub fn rng(&mut self) -> &mut ChaCha8Rng {
        &mut self.rng
    }

    /// 32 random bytes (the nonce secret).
    pub fn secret(&mut self) -> [u8; 32] {
        let mut s = [0u8; 32];
        self.rng.fill_bytes(&mut s);
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_ids_other_seed_other_ids() {
        let (mut a, mut b, mut c) = (Ids::new(7), Ids::new(7), Ids::new(8));
        let sa: Vec<String> = (0..4).map(|_| a.branch()).collect();
        let sb: Vec<String> = (0..4).map(|_| b.branch()).collect();
        let sc: Vec<String> = (0..4).map(|_| c.branch()).collect();
        assert_eq!(sa, sb);
        assert_ne!(sa, sc);
        assert!(sa.iter().all(|b| b.starts_with("z9hG4bK") && b.len() == 23));
    }
}
