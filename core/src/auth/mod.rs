//! HTTP Digest authentication as SIP uses it (RFC 3261 §22, RFC 2617, RFC 7616, RFC 8760).
//!
//! The pieces, in the order a registrar or proxy meets them:
//! - [`parse_credentials`] reads an `Authorization` / `Proxy-Authorization` value
//!   (RFC 3261 §20.7, §20.28) into [`DigestCredentials`];
//! - [`NonceManager`] issues nonces and checks them: expiry (`stale=TRUE`), forgery, and
//!   replay of the nonce count (RFC 7616 §3.3, §5.4, §5.5);
//! - [`compute_response`] is the request-digest (RFC 2617 §3.2.2.1, RFC 7616 §3.4.1);
//! - [`DigestVerifier`] runs all of that for one request and returns a [`Verdict`];
//! - [`challenge`] / [`challenges`] build the `WWW-Authenticate` / `Proxy-Authenticate`
//!   value of the 401/407 (RFC 3261 §20.44, §20.27).
//!
//! Everything here is deterministic: time arrives as `now`, randomness from an RNG the caller
//! passes, and nothing iterates a hash map.
//!
//! Supported: `algorithm` MD5 and SHA-256 (RFC 8760 §2.1), `qop=auth` and the RFC 2069 form
//! without qop (RFC 3261 §22.4 requires servers to accept it). Not supported, and so
//! answered with a fresh challenge: the `-sess` algorithms, SHA-512-256, `qop=auth-int`,
//! `userhash` (RFC 7616 §3.4.4).

mod digest;
mod header;
mod nonce;
mod verifier;

pub use digest::compute_response;
pub(crate) use digest::hex_into;
pub use header::{challenge, challenges, parse_credentials, CredentialsError, DigestCredentials};
pub use nonce::{NonceCheck, NonceConfig, NonceManager};
pub use verifier::{DigestVerifier, Verdict};

use std::fmt;

/// A digest hash algorithm from the IANA "Hash Algorithms for HTTP Digest Authentication"
/// registry (RFC 7616 §3.3, §6.1; RFC 8760 §2.1).
///
/// Only the non-session variants: `MD5-sess` and `SHA-256-sess` hash the cnonce into A1
/// (RFC 7616 §3.4.2), which nothing in SIP needs, so they parse as unknown and the client
/// is challenged again with what we offer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Algorithm {
    /// `MD5`: the RFC 2617 default, assumed when `algorithm` is absent.
    Md5,
    /// `SHA-256` (RFC 7616 §3.3, RFC 8760 §2.1).
    Sha256,
}

impl Algorithm {
    /// Parses an `algorithm` value (RFC 8760 §2.7). Case is ignored: the RFCs spell the
    /// names in capitals but do not say whether case matters, and some clients send `md5`.
    /// Anything else, including the `-sess` variants, is `None`.
    pub fn parse(s: &str) -> Option<Self> {
        if s.eq_ignore_ascii_case("MD5") {
            Some(Algorithm::Md5)
        } else if s.eq_ignore_ascii_case("SHA-256") {
            Some(Algorithm::Sha256)
        } else {
            None
        }
    }

    /// The registry name, as sent in a challenge.
    pub fn as_str(&self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Sha256 => "SHA-256",
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn algorithm_names_round_trip_case_insensitively() {
        assert_eq!(Algorithm::parse("MD5"), Some(Algorithm::Md5));
        assert_eq!(Algorithm::parse("md5"), Some(Algorithm::Md5));
        assert_eq!(Algorithm::parse("sha-256"), Some(Algorithm::Sha256));
        assert_eq!(Algorithm::parse("SHA-256"), Some(Algorithm::Sha256));
        for a in [Algorithm::Md5, Algorithm::Sha256] {
            assert_eq!(Algorithm::parse(a.as_str()), Some(a));
        }
    }

    #[test]
    fn session_and_unknown_algorithms_do_not_parse() {
        for s in [
            "MD5-sess",
            "SHA-256-sess",
            "SHA-512-256",
            "SHA256",
            "",
            " MD5",
        ] {
            assert_eq!(Algorithm::parse(s), None, "{s:?}");
        }
    }
}
