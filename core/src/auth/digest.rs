//! The request-digest (RFC 2617 §3.2.2.1, RFC 7616 §3.4.1) and the helpers around it.

use md5::Md5;
use sha2::{Digest, Sha256};

use super::Algorithm;

/// The `response` a client computes (RFC 2617 §3.2.2.1, RFC 7616 §3.4.1), as lower-case hex
/// (RFC 8760 §2.2: 32 digits for MD5, 64 for SHA-256):
///
/// ```text
/// A1 = username ":" realm ":" password                       (§3.4.2, non-session)
/// A2 = method ":" digest-uri                                 (§3.4.3, qop=auth or absent)
/// qop present: H( H(A1) ":" nonce ":" nc ":" cnonce ":" qop ":" H(A2) )
/// qop absent:  H( H(A1) ":" nonce ":" H(A2) )                (RFC 2069 form, RFC 2617 §3.2.2.1)
/// ```
///
/// Every string goes in exactly as it appears in the request, once unquoted: the digest-uri
/// in particular is the raw `uri=` value, never a re-serialised URI, since the client hashed
/// the characters it sent (a re-serialised `transport=tcp` → `transport=TCP` breaks valid
/// credentials). `qop` is likewise hashed as sent. With `qop` given, a missing `nc` or
/// `cnonce` is hashed as the empty string; the verifier refuses such credentials before it
/// gets here.
#[allow(clippy::too_many_arguments)] // one argument per field of the RFC's formula
pub fn compute_response(
    alg: Algorithm,
    username: &str,
    realm: &str,
    password: &str,
    method: &str,
    digest_uri: &str,
    nonce: &str,
    qop: Option<&str>,
    nc: Option<&str>,
    cnonce: Option<&str>,
) -> String {
    let ha1 = hash_joined(alg, &[username, realm, password]);
    let ha2 = hash_joined(alg, &[method, digest_uri]);
    match qop {
        Some(qop) => hash_joined(
            alg,
            &[
                &ha1,
                nonce,
                nc.unwrap_or(""),
                cnonce.unwrap_or(""),
                qop,
                &ha2,
            ],
        ),
        None => hash_joined(alg, &[&ha1, nonce, &ha2]),
    }
}

/// `H(parts[0] ":" parts[1] ":" ...)` as lower-case hex: every hash in RFC 7616 §3.4.1 is
/// over colon-joined strings, so joining while hashing saves building the string.
fn hash_joined(alg: Algorithm, parts: &[&str]) -> String {
    match alg {
        Algorithm::Md5 => hash_joined_with::<Md5>(parts),
        Algorithm::Sha256 => hash_joined_with::<Sha256>(parts),
    }
}

fn hash_joined_with<D: Digest>(parts: &[&str]) -> String {
    let mut hasher = D::new();
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            hasher.update(b":");
        }
        hasher.update(part.as_bytes());
    }
    to_hex(&hasher.finalize())
}

/// Lower-case hex, the digest representation of RFC 8760 §2.2.
pub(crate) fn to_hex(bytes: &[u8]) -> String {
    let mut out = vec![0; bytes.len() * 2];
    hex_into(bytes, &mut out);
    // Hex digits are ASCII: the conversion cannot fail.
    String::from_utf8(out).unwrap_or_default()
}

/// Writes `bytes` as lower-case hex into `out`, two digits per byte, as far as `out` goes.
pub(crate) fn hex_into(bytes: &[u8], out: &mut [u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for (&b, pair) in bytes.iter().zip(out.chunks_exact_mut(2)) {
        pair[0] = DIGITS[usize::from(b >> 4)];
        pair[1] = DIGITS[usize::from(b & 0x0f)];
    }
}

/// Equality whose running time depends only on the lengths, so that comparing a response
/// or a nonce tag byte by byte does not tell an attacker how many leading bytes were right
/// (RFC 7616 §5.2 leaves timing attacks to implementations). The lengths are public: they
/// follow from the algorithm.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    // Keeps the optimiser from turning the fold back into an early-exit comparison.
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 2617 §3.5: the one worked example of the original RFC (MD5, qop=auth).
    #[test]
    fn rfc2617_section_3_5_example() {
        let response = compute_response(
            Algorithm::Md5,
            "Mufasa",
            "testrealm@host.com",
            "Circle Of Life",
            "GET",
            "/dir/index.html",
            "dcd98b7102dd2f0e8b11d0f600bfb0c093",
            Some("auth"),
            Some("00000001"),
            Some("0a4f113b"),
        );
        assert_eq!(response, "6629fae49393a05397450978507c4ef1");
    }

    /// RFC 7616 §3.9.1 with MD5. Note the password there is "Circle of Life" (lower-case
    /// "of"), unlike RFC 2617's "Circle Of Life".
    #[test]
    fn rfc7616_section_3_9_1_md5() {
        let response = compute_response(
            Algorithm::Md5,
            "Mufasa",
            "http-auth@example.org",
            "Circle of Life",
            "GET",
            "/dir/index.html",
            "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
            Some("auth"),
            Some("00000001"),
            Some("f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ"),
        );
        assert_eq!(response, "8ca523f5e9506fed4657c9700eebdbec");
    }

    /// RFC 7616 §3.9.1 with SHA-256: same inputs, 64 hex digits (RFC 8760 §2.2).
    #[test]
    fn rfc7616_section_3_9_1_sha256() {
        let response = compute_response(
            Algorithm::Sha256,
            "Mufasa",
            "http-auth@example.org",
            "Circle of Life",
            "GET",
            "/dir/index.html",
            "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
            Some("auth"),
            Some("00000001"),
            Some("f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ"),
        );
        assert_eq!(
            response,
            "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"
        );
    }

    /// The RFC 2069 form (no qop) is `H(H(A1):nonce:H(A2))`, checked here against the
    /// formula spelled out by hand with the RFC 2617 §3.5 inputs.
    #[test]
    fn rfc2069_form_without_qop() {
        let ha1 = hash_joined(
            Algorithm::Md5,
            &["Mufasa", "testrealm@host.com", "Circle Of Life"],
        );
        let ha2 = hash_joined(Algorithm::Md5, &["GET", "/dir/index.html"]);
        let expected = hash_joined(
            Algorithm::Md5,
            &[&ha1, "dcd98b7102dd2f0e8b11d0f600bfb0c093", &ha2],
        );
        let response = compute_response(
            Algorithm::Md5,
            "Mufasa",
            "testrealm@host.com",
            "Circle Of Life",
            "GET",
            "/dir/index.html",
            "dcd98b7102dd2f0e8b11d0f600bfb0c093",
            None,
            None,
            None,
        );
        assert_eq!(response, expected);
        assert_eq!(ha1, "939e7578ed9e3c518a452acee763bce9");
        assert_eq!(ha2, "39aff3a2bab6126f332b942af96d3366");
    }

    /// The values the scenario flows use: bob REGISTERs to a sips: registrar. Both were
    /// cross-checked with an independent implementation (Python's hashlib).
    #[test]
    fn sip_register_example_values() {
        let with = |alg| {
            compute_response(
                alg,
                "bob",
                "atlanta.example.com",
                "zanzibar",
                "REGISTER",
                "sips:ss2.biloxi.example.com",
                "abc",
                Some("auth"),
                Some("00000001"),
                Some("xyz"),
            )
        };
        assert_eq!(with(Algorithm::Md5), "e446b0e4cd7eca9ecb4e766c93b6a13e");
        assert_eq!(
            with(Algorithm::Sha256),
            "4642fefe8ebd0f3e989cc092da9c80c6961ea7e0a7cbf182767d8802b3e005c2"
        );
    }

    #[test]
    fn hex_is_lower_case() {
        assert_eq!(to_hex(&[0x00, 0x0f, 0xa0, 0xff]), "000fa0ff");
        assert_eq!(to_hex(&[]), "");
    }

    #[test]
    fn constant_time_eq_compares_contents_and_lengths() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(constant_time_eq(b"", b""));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
