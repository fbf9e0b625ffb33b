//! One-call verification of a request's credentials (RFC 3261 §22.2, §22.3;
//! RFC 2617 §3.2.2; RFC 7616 §3.4).

use super::digest::{compute_response, constant_time_eq};
use super::header::{parse_credentials, CredentialsError, DigestCredentials};
use super::nonce::{parse_nc, NonceCheck, NonceManager};
use super::Algorithm;
use crate::time::Instant;

/// What to do with a request after looking at its credentials.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The credentials are valid for `username`; the nonce count has been recorded.
    /// Whether that user may do what the request asks (e.g. register the To AOR,
    /// RFC 3261 §10.3 step 4) is the caller's decision.
    Ok {
        /// The authenticated user, as sent in `username`.
        username: String,
    },
    /// Answer 401 (registrar, UAS) or 407 (proxy) with a fresh nonce, `stale=TRUE` when
    /// `stale` (RFC 3261 §22.2, §22.3; RFC 7616 §3.3).
    Challenge {
        /// The client proved it knows the password, but the nonce is no longer accepted:
        /// it may retry with the new nonce without asking its user again.
        stale: bool,
    },
    /// The credentials are malformed: answer 400 Bad Request (RFC 3261 §21.4.1: "malformed
    /// syntax"). The text says why, for the reason phrase or the log.
    BadRequest(&'static str),
}

/// The policy of one protection domain: the realm we challenge for, the algorithms we
/// offer, and whether the RFC 2069 form (no qop, so no replay protection) is refused.
#[derive(Clone, Copy, Debug)]
pub struct DigestVerifier<'a> {
    /// Our realm (RFC 3261 §22.1: it alone defines the protection domain). Credentials for
    /// another realm are not ours to consume (§22.3).
    pub realm: &'a str,
    /// The algorithms we offer and accept, in order of preference (RFC 8760 §2.3).
    pub algorithms: &'a [Algorithm],
    /// Refuse credentials without `qop=auth`. RFC 3261 §22.4 requires servers to accept
    /// the RFC 2069 form, but only `qop` brings the nonce count and so replay protection;
    /// RFC 8760 §2.6 item 8 makes clients send `qop` whenever the challenge had one.
    pub qop_required: bool,
}

impl DigestVerifier<'_> {
    /// Verifies one `Authorization` / `Proxy-Authorization` value.
    ///
    /// `method` is the request method as hashed into A2. `password_of(username)` looks a
    /// user up.
    ///
    /// ACK and CANCEL should not come here: RFC 3261 §22.1 says servers MUST NOT challenge
    /// them, and an ACK repeats its INVITE's credentials, `nc` included, which would read
    /// as a replay once the INVITE's count is committed.
    ///
    /// The steps, in order:
    /// 1. parse: another scheme → `Challenge`; malformed → `BadRequest`;
    /// 2. `realm` must be ours, else `Challenge` (we challenge for ours);
    /// 3. with `qop`, `nc` (8 hex digits) and `cnonce` must be present, else `BadRequest`
    ///    (RFC 2617 §3.2.2: they MUST accompany qop);
    /// 4. `algorithm` (absent = MD5) must be one we offer, else `Challenge`;
    /// 5. `qop` must be `auth` (no `auth-int`), or absent when `qop_required` is off,
    ///    else `Challenge`;
    /// 6. the nonce: not ours or a replayed `nc` → `Challenge`;
    /// 7. the response, compared in constant time (an unknown user is hashed against an
    ///    empty password, so it takes as long as a wrong password): wrong → `Challenge`;
    ///    right but the nonce was stale → `Challenge { stale: true }`; right → the `nc` is
    ///    committed and the verdict is `Ok`.
    ///
    /// A stale nonce gets `stale=TRUE` only with a right response, as RFC 2617 §3.2.1 and
    /// RFC 7616 §3.3 ask: `stale=TRUE` tells the client its password was right, which must
    /// not be said of a wrong one.
    ///
    /// The digest uses the raw `uri` parameter as sent. RFC 2617 §3.2.2.5 says the server
    /// SHOULD check that it names the same resource as the Request-URI; RFC 3261 §22.4 item
    /// 6 relaxes that for SIP, so it is left to the caller, who can read `uri` with
    /// [`parse_credentials`] and call [`verify_credentials`](Self::verify_credentials).
    pub fn verify(
        &self,
        nonces: &mut NonceManager,
        now: Instant,
        method: &str,
        header_value: &str,
        password_of: impl Fn(&str) -> Option<String>,
    ) -> Verdict {
        match parse_credentials(header_value) {
            Ok(credentials) => {
                self.verify_credentials(nonces, now, method, &credentials, password_of)
            }
            Err(CredentialsError::NotDigest) => Verdict::Challenge { stale: false },
            Err(e) => Verdict::BadRequest(e.reason()),
        }
    }

    /// Verifies a request that may carry several `Authorization` / `Proxy-Authorization`
    /// values, e.g. one per proxy on the path (RFC 3261 §22.3: a proxy uses the one with
    /// its realm and MUST NOT consume the others). The first Digest value for our realm is
    /// verified as [`verify`](Self::verify) does. With none: `BadRequest` if some value was
    /// malformed (it may have been meant for us), else `Challenge` (this covers a request
    /// with no credentials at all).
    pub fn verify_any<'h>(
        &self,
        nonces: &mut NonceManager,
        now: Instant,
        method: &str,
        header_values: impl IntoIterator<Item = &'h str>,
        password_of: impl Fn(&str) -> Option<String>,
    ) -> Verdict {
        let mut malformed = None;
        for value in header_values {
            match parse_credentials(value) {
                Ok(credentials) if credentials.realm == self.realm => {
                    return self.verify_credentials(nonces, now, method, &credentials, password_of);
                }
                Ok(_) | Err(CredentialsError::NotDigest) => {}
                Err(e) => {
                    malformed.get_or_insert(e.reason());
                }
            }
        }
        match malformed {
            Some(why) => Verdict::BadRequest(why),
            None => Verdict::Challenge { stale: false },
        }
    }

    /// [`verify`](Self::verify) for credentials the caller has already parsed (to read
    /// `uri` or `realm` first, say).
    pub fn verify_credentials(
        &self,
        nonces: &mut NonceManager,
        now: Instant,
        method: &str,
        credentials: &DigestCredentials,
        password_of: impl Fn(&str) -> Option<String>,
    ) -> Verdict {
        const CHALLENGE: Verdict = Verdict::Challenge { stale: false };
        let c = credentials;

        if c.realm != self.realm {
            return CHALLENGE;
        }

        // With qop, nc and cnonce are hashed into the response, so they must be there and
        // nc must be a count (RFC 2617 §3.2.2). Without qop they mean nothing and are
        // ignored: the response does not cover them.
        let qop_fields = match &c.qop {
            Some(qop) => {
                let Some(nc) = c.nc.as_deref() else {
                    return Verdict::BadRequest("qop without nc");
                };
                if parse_nc(nc).is_none() {
                    return Verdict::BadRequest("nc is not 8 hex digits");
                }
                let Some(cnonce) = c.cnonce.as_deref() else {
                    return Verdict::BadRequest("qop without cnonce");
                };
                Some((qop.as_str(), nc, cnonce))
            }
            None => None,
        };

        let algorithm = match c.algorithm.as_deref() {
            None => Some(Algorithm::Md5),
            Some(name) => Algorithm::parse(name),
        };
        let Some(algorithm) = algorithm.filter(|a| self.algorithms.contains(a)) else {
            return CHALLENGE;
        };

        match qop_fields {
            // qop is a token, compared case-insensitively as clients vary; it is hashed
            // as sent all the same.
            Some((qop, _, _)) if !qop.eq_ignore_ascii_case("auth") => return CHALLENGE,
            None if self.qop_required => return CHALLENGE,
            _ => {}
        }

        let nc = qop_fields.map(|(_, nc, _)| nc);
        let (nonce_check, payload) = nonces.check_decoded(&c.nonce, nc, now);
        if matches!(nonce_check, NonceCheck::Invalid | NonceCheck::Replayed) {
            return CHALLENGE;
        }

        let password = password_of(&c.username);
        let expected = compute_response(
            algorithm,
            &c.username,
            &c.realm,
            password.as_deref().unwrap_or(""),
            method,
            &c.uri,
            &c.nonce,
            qop_fields.map(|(qop, _, _)| qop),
            nc,
            qop_fields.map(|(_, _, cnonce)| cnonce),
        );
        // The RFCs want lower-case hex; some clients send upper case, which means the same.
        let response = c.response.to_ascii_lowercase();
        let digest_matches = constant_time_eq(expected.as_bytes(), response.as_bytes());
        if password.is_none() || !digest_matches {
            return CHALLENGE;
        }
        if nonce_check == NonceCheck::Stale {
            return Verdict::Challenge { stale: true };
        }
        if let Some(payload) = payload {
            nonces.commit_payload(payload, nc, now);
        }
        Verdict::Ok {
            username: c.username.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{challenge, NonceConfig};
    use proptest::prelude::*;
    use rand_chacha::ChaCha8Rng;
    use rand_core::SeedableRng;

    const REALM: &str = "atlanta.example.com";
    const URI: &str = "sips:ss2.biloxi.example.com";

    const BOTH: &[Algorithm] = &[Algorithm::Sha256, Algorithm::Md5];

    fn verifier(algorithms: &[Algorithm]) -> DigestVerifier<'_> {
        DigestVerifier {
            realm: REALM,
            algorithms,
            qop_required: true,
        }
    }

    fn users(name: &str) -> Option<String> {
        (name == "bob").then(|| "zanzibar".to_string())
    }

    fn at(secs: u64) -> Instant {
        Instant::from_millis(secs * 1000)
    }

    fn setup() -> (NonceManager, String) {
        let mut nonces = NonceManager::new([3; 32], NonceConfig::default());
        let nonce = nonces.issue(at(0), &mut ChaCha8Rng::seed_from_u64(9));
        (nonces, nonce)
    }

    /// What a well-behaved UAC sends back: the Authorization value for these inputs.
    #[allow(clippy::too_many_arguments)]
    fn authorization(
        alg: Algorithm,
        username: &str,
        realm: &str,
        password: &str,
        method: &str,
        nonce: &str,
        nc: &str,
        algorithm_param: bool,
    ) -> String {
        let response = compute_response(
            alg,
            username,
            realm,
            password,
            method,
            URI,
            nonce,
            Some("auth"),
            Some(nc),
            Some("0a4f113b"),
        );
        let algorithm = if algorithm_param {
            format!(", algorithm={}", alg.as_str())
        } else {
            String::new()
        };
        format!(
            "Digest username=\"{username}\", realm=\"{realm}\", nonce=\"{nonce}\", \
             uri=\"{URI}\", response=\"{response}\"{algorithm}, qop=auth, nc={nc}, \
             cnonce=\"0a4f113b\""
        )
    }

    fn bob(alg: Algorithm, nonce: &str, nc: &str) -> String {
        authorization(alg, "bob", REALM, "zanzibar", "REGISTER", nonce, nc, true)
    }

    fn ok() -> Verdict {
        Verdict::Ok {
            username: "bob".into(),
        }
    }

    const CHALLENGE: Verdict = Verdict::Challenge { stale: false };

    #[test]
    fn round_trip_md5() {
        let (mut nonces, nonce) = setup();
        let header = bob(Algorithm::Md5, &nonce, "00000001");
        let v = verifier(BOTH).verify(&mut nonces, at(1), "REGISTER", &header, users);
        assert_eq!(v, ok());
        assert_eq!(nonces.tracked(), 1);
    }

    #[test]
    fn round_trip_sha256() {
        let (mut nonces, nonce) = setup();
        let header = bob(Algorithm::Sha256, &nonce, "00000001");
        let v = verifier(BOTH).verify(&mut nonces, at(1), "REGISTER", &header, users);
        assert_eq!(v, ok());
    }

    /// A full exchange: no credentials → challenge; the client answers the challenge it
    /// was sent, reading realm and nonce back out of it.
    #[test]
    fn round_trip_through_the_challenge_header() {
        let (mut nonces, _) = setup();
        let v = verifier(BOTH).verify_any(&mut nonces, at(0), "REGISTER", [], users);
        assert_eq!(v, CHALLENGE);
        let nonce = nonces.issue(at(0), &mut ChaCha8Rng::seed_from_u64(1));
        let www = challenge(Algorithm::Sha256, REALM, &nonce, None, false);
        assert!(www.contains(&format!("nonce=\"{nonce}\"")));
        let header = bob(Algorithm::Sha256, &nonce, "00000001");
        let v = verifier(BOTH).verify_any(&mut nonces, at(2), "REGISTER", [header.as_str()], users);
        assert_eq!(v, ok());
    }

    #[test]
    fn absent_algorithm_means_md5() {
        let (mut nonces, nonce) = setup();
        let header = authorization(
            Algorithm::Md5,
            "bob",
            REALM,
            "zanzibar",
            "REGISTER",
            &nonce,
            "00000001",
            false,
        );
        let v = verifier(BOTH).verify(&mut nonces, at(1), "REGISTER", &header, users);
        assert_eq!(v, ok());
        let (mut nonces, nonce) = setup();
        let header = authorization(
            Algorithm::Md5,
            "bob",
            REALM,
            "zanzibar",
            "REGISTER",
            &nonce,
            "00000001",
            false,
        );
        let sha_only = verifier(&[Algorithm::Sha256]);
        let v = sha_only.verify(&mut nonces, at(1), "REGISTER", &header, users);
        assert_eq!(v, CHALLENGE);
    }

    #[test]
    fn algorithm_we_do_not_offer_is_challenged() {
        let (mut nonces, nonce) = setup();
        let header = bob(Algorithm::Sha256, &nonce, "00000001");
        let md5_only = verifier(&[Algorithm::Md5]);
        let v = md5_only.verify(&mut nonces, at(1), "REGISTER", &header, users);
        assert_eq!(v, CHALLENGE);
        let sess = bob(Algorithm::Md5, &nonce, "00000001").replace("MD5", "MD5-sess");
        let v = verifier(BOTH).verify(&mut nonces, at(1), "REGISTER", &sess, users);
        assert_eq!(v, CHALLENGE);
    }

    #[test]
    fn wrong_realm_is_challenged() {
        let (mut nonces, nonce) = setup();
        let header = authorization(
            Algorithm::Md5,
            "bob",
            "biloxi.example.com",
            "zanzibar",
            "REGISTER",
            &nonce,
            "00000001",
            true,
        );
        let v = verifier(BOTH).verify(&mut nonces, at(1), "REGISTER", &header, users);
        assert_eq!(v, CHALLENGE);
        // Realms are case-sensitive (RFC 2617 §1.2).
        let header = header.replace("biloxi.example.com\"", "ATLANTA.example.com\"");
        let v = verifier(BOTH).verify(&mut nonces, at(1), "REGISTER", &header, users);
        assert_eq!(v, CHALLENGE);
    }

    #[test]
    fn wrong_password_is_challenged_and_burns_no_count() {
        let (mut nonces, nonce) = setup();
        let wrong = authorization(
            Algorithm::Md5,
            "bob",
            REALM,
            "guess",
            "REGISTER",
            &nonce,
            "00000001",
            true,
        );
        let v = verifier(BOTH).verify(&mut nonces, at(1), "REGISTER", &wrong, users);
        assert_eq!(v, CHALLENGE);
        assert_eq!(nonces.tracked(), 0);
        // The same nc with the right password still works.
        let right = bob(Algorithm::Md5, &nonce, "00000001");
        let v = verifier(BOTH).verify(&mut nonces, at(1), "REGISTER", &right, users);
        assert_eq!(v, ok());
    }

    #[test]
    fn wrong_method_is_challenged() {
        let (mut nonces, nonce) = setup();
        let header = bob(Algorithm::Md5, &nonce, "00000001");
        let v = verifier(BOTH).verify(&mut nonces, at(1), "INVITE", &header, users);
        assert_eq!(v, CHALLENGE);
    }

    #[test]
    fn unknown_user_is_challenged() {
        let (mut nonces, nonce) = setup();
        let header = authorization(
            Algorithm::Md5,
            "mallory",
            REALM,
            "",
            "REGISTER",
            &nonce,
            "00000001",
            true,
        );
        let v = verifier(BOTH).verify(&mut nonces, at(1), "REGISTER", &header, users);
        assert_eq!(v, CHALLENGE);
    }

    #[test]
    fn stale_nonce_with_right_password_gets_stale_true() {
        let (mut nonces, nonce) = setup();
        let header = bob(Algorithm::Md5, &nonce, "00000001");
        let v = verifier(BOTH).verify(&mut nonces, at(300), "REGISTER", &header, users);
        assert_eq!(v, Verdict::Challenge { stale: true });
        assert_eq!(nonces.tracked(), 0);
    }

    #[test]
    fn stale_nonce_with_wrong_password_gets_stale_false() {
        let (mut nonces, nonce) = setup();
        let header = authorization(
            Algorithm::Md5,
            "bob",
            REALM,
            "guess",
            "REGISTER",
            &nonce,
            "00000001",
            true,
        );
        let v = verifier(BOTH).verify(&mut nonces, at(300), "REGISTER", &header, users);
        assert_eq!(v, CHALLENGE);
    }

    #[test]
    fn replayed_nc_is_challenged_and_the_next_nc_accepted() {
        let (mut nonces, nonce) = setup();
        let first = bob(Algorithm::Md5, &nonce, "00000001");
        let v = verifier(BOTH).verify(&mut nonces, at(1), "REGISTER", &first, users);
        assert_eq!(v, ok());
        let v = verifier(BOTH).verify(&mut nonces, at(2), "REGISTER", &first, users);
        assert_eq!(v, CHALLENGE);
        let second = bob(Algorithm::Md5, &nonce, "00000002");
        let v = verifier(BOTH).verify(&mut nonces, at(3), "REGISTER", &second, users);
        assert_eq!(v, ok());
    }

    #[test]
    fn forged_nonce_is_challenged() {
        let (mut nonces, _) = setup();
        let header = bob(
            Algorithm::Md5,
            "dcd98b7102dd2f0e8b11d0f600bfb0c093",
            "00000001",
        );
        let v = verifier(BOTH).verify(&mut nonces, at(1), "REGISTER", &header, users);
        assert_eq!(v, CHALLENGE);
    }

    /// RFC 8760 §2.7: a client may send empty nonce and response before any challenge.
    #[test]
    fn credentials_before_a_challenge_are_challenged() {
        let (mut nonces, _) = setup();
        let header = format!(
            "Digest username=\"bob\", realm=\"{REALM}\", nonce=\"\", uri=\"{URI}\", response=\"\""
        );
        let v = verifier(BOTH).verify(&mut nonces, at(1), "REGISTER", &header, users);
        assert_eq!(v, CHALLENGE);
    }

    #[test]
    fn rfc2069_form_depends_on_qop_required() {
        let (mut nonces, nonce) = setup();
        let response = compute_response(
            Algorithm::Md5,
            "bob",
            REALM,
            "zanzibar",
            "REGISTER",
            URI,
            &nonce,
            None,
            None,
            None,
        );
        let header = format!(
            "Digest username=\"bob\", realm=\"{REALM}\", nonce=\"{nonce}\", uri=\"{URI}\", \
             response=\"{response}\""
        );
        let v = verifier(BOTH).verify(&mut nonces, at(1), "REGISTER", &header, users);
        assert_eq!(v, CHALLENGE);
        let lenient = DigestVerifier {
            qop_required: false,
            ..verifier(BOTH)
        };
        let v = lenient.verify(&mut nonces, at(1), "REGISTER", &header, users);
        assert_eq!(v, ok());
        // RFC 2069 clients reuse the nonce until it expires; nothing is tracked.
        let v = lenient.verify(&mut nonces, at(2), "REGISTER", &header, users);
        assert_eq!(v, ok());
        assert_eq!(nonces.tracked(), 0);
    }

    #[test]
    fn auth_int_is_challenged() {
        let (mut nonces, nonce) = setup();
        let header = bob(Algorithm::Md5, &nonce, "00000001").replace("qop=auth", "qop=auth-int");
        let v = verifier(BOTH).verify(&mut nonces, at(1), "REGISTER", &header, users);
        assert_eq!(v, CHALLENGE);
    }

    #[test]
    fn upper_case_response_and_qop_are_accepted() {
        let (mut nonces, nonce) = setup();
        let response = compute_response(
            Algorithm::Md5,
            "bob",
            REALM,
            "zanzibar",
            "REGISTER",
            URI,
            &nonce,
            Some("AUTH"),
            Some("00000001"),
            Some("c"),
        );
        let header = format!(
            "Digest username=\"bob\", realm=\"{REALM}\", nonce=\"{nonce}\", uri=\"{URI}\", \
             response=\"{}\", qop=AUTH, nc=00000001, cnonce=\"c\"",
            response.to_ascii_uppercase()
        );
        let v = verifier(BOTH).verify(&mut nonces, at(1), "REGISTER", &header, users);
        assert_eq!(v, ok());
    }

    #[test]
    fn raw_uri_is_what_gets_hashed() {
        let (mut nonces, nonce) = setup();
        let uri = "sip:Bob@atlanta.example.com;transport=tcp";
        let response = compute_response(
            Algorithm::Md5,
            "bob",
            REALM,
            "zanzibar",
            "REGISTER",
            uri,
            &nonce,
            Some("auth"),
            Some("00000001"),
            Some("c"),
        );
        let header = format!(
            "Digest username=\"bob\", realm=\"{REALM}\", nonce=\"{nonce}\", uri=\"{uri}\", \
             response=\"{response}\", qop=auth, nc=00000001, cnonce=\"c\""
        );
        let v = verifier(BOTH).verify(&mut nonces, at(1), "REGISTER", &header, users);
        assert_eq!(v, ok());
    }

    #[test]
    fn malformed_credentials_are_bad_requests() {
        let (mut nonces, nonce) = setup();
        let good = bob(Algorithm::Md5, &nonce, "00000001");
        let cases = [
            (
                good.replace("nc=00000001", "nc=1"),
                "nc is not 8 hex digits",
            ),
            (good.replace(", nc=00000001", ""), "qop without nc"),
            (
                good.replace(", cnonce=\"0a4f113b\"", ""),
                "qop without cnonce",
            ),
            (
                good.replace("username=\"bob\", ", ""),
                "missing username parameter",
            ),
            (format!("{good}, nc=00000002"), "duplicate parameter"),
            (
                "Digest username=\"bob".to_string(),
                "unterminated quoted-string",
            ),
        ];
        for (header, why) in cases {
            let v = verifier(BOTH).verify(&mut nonces, at(1), "REGISTER", &header, users);
            assert_eq!(v, Verdict::BadRequest(why), "{header}");
        }
    }

    #[test]
    fn other_schemes_are_challenged() {
        let (mut nonces, _) = setup();
        let v = verifier(BOTH).verify(
            &mut nonces,
            at(1),
            "REGISTER",
            "NoOneKnowsThisScheme opaque-data=here",
            users,
        );
        assert_eq!(v, CHALLENGE);
    }

    /// RFC 3261 §22.3: with credentials for several proxies, each uses its own realm's.
    #[test]
    fn verify_any_picks_our_realm() {
        let (mut nonces, nonce) = setup();
        let theirs = authorization(
            Algorithm::Md5,
            "bob",
            "biloxi.example.com",
            "other",
            "INVITE",
            &nonce,
            "00000001",
            true,
        );
        let ours = authorization(
            Algorithm::Md5,
            "bob",
            REALM,
            "zanzibar",
            "INVITE",
            &nonce,
            "00000001",
            true,
        );
        let values = ["Basic QWxhZGRpbg==", theirs.as_str(), ours.as_str()];
        let v = verifier(BOTH).verify_any(&mut nonces, at(1), "INVITE", values, users);
        assert_eq!(v, ok());
        let v = verifier(BOTH).verify_any(&mut nonces, at(1), "INVITE", [theirs.as_str()], users);
        assert_eq!(v, CHALLENGE);
        let v = verifier(BOTH).verify_any(
            &mut nonces,
            at(1),
            "INVITE",
            [theirs.as_str(), "Digest ,,="],
            users,
        );
        assert_eq!(v, Verdict::BadRequest("expected a parameter name"));
    }

    proptest! {
        #[test]
        fn arbitrary_headers_never_panic_or_authenticate(value in any::<String>()) {
            let (mut nonces, _) = setup();
            let v = verifier(BOTH).verify(&mut nonces, at(1), "REGISTER", &value, users);
            let authenticated = matches!(v, Verdict::Ok { .. });
            prop_assert!(!authenticated, "{:?} gave {:?}", value, v);
        }
    }
}
