//! The `Authorization` / `Proxy-Authorization` grammar (RFC 3261 §25.1 `credentials`,
//! RFC 2617 §3.2.2) and the `WWW-Authenticate` / `Proxy-Authenticate` value we send
//! (RFC 3261 §20.44, §20.27; RFC 7616 §3.3).
//!
//! The parser is our own and small: it reads only what Digest needs and is liberal where
//! clients differ (case of names, quoting of token values, empty list elements), strict
//! where the digest depends on it (every value exactly as sent, once unquoted).

use std::fmt;

use super::Algorithm;

/// A parsed `Authorization` / `Proxy-Authorization` value with the Digest scheme
/// (RFC 3261 §25.1 `digest-response`, RFC 2617 §3.2.2, RFC 7616 §3.4).
///
/// Every field is the value as the client sent it, unquoted and with quoted-pairs resolved:
/// these are the exact strings the client hashed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DigestCredentials {
    /// `username`: the user in `realm`.
    pub username: String,
    /// `realm`: which protection domain the credentials are for (RFC 3261 §22.1: the realm
    /// alone defines it). Case-sensitive (RFC 2617 §1.2).
    pub realm: String,
    /// `nonce`: echoed from the challenge; empty when the client has not been challenged
    /// yet (RFC 8760 §2.7).
    pub nonce: String,
    /// `uri` (the digest-uri): the raw string the client hashed into A2. Not normalised, and
    /// not checked against the Request-URI here (RFC 3261 §22.4 item 6 leaves that to the
    /// server's policy).
    pub uri: String,
    /// `response`: the request-digest, hex (RFC 8760 §2.7: 32 or 64 digits, or empty).
    pub response: String,
    /// `algorithm` as sent; absent means MD5 (RFC 7616 §3.3).
    pub algorithm: Option<String>,
    /// `cnonce`: required with `qop` (RFC 2617 §3.2.2).
    pub cnonce: Option<String>,
    /// `opaque`: echoed from the challenge.
    pub opaque: Option<String>,
    /// `qop` as sent (`auth`, `auth-int`, ...); absent means the RFC 2069 form.
    pub qop: Option<String>,
    /// `nc`, the nonce count: 8 hex digits as sent (RFC 2617 §3.2.2), hashed verbatim.
    pub nc: Option<String>,
}

/// Why a credentials value could not be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CredentialsError {
    /// Another auth-scheme (RFC 3261 §25.1 `other-response`, e.g. RFC 4475 §3.1.2.13
    /// `NoOneKnowsThisScheme`): not malformed, just not ours to check; answered with a
    /// Digest challenge.
    NotDigest,
    /// Broken syntax; the text says what (for logs and the 400's reason).
    Malformed(&'static str),
    /// A parameter the Digest grammar requires is absent (RFC 2617 §3.2.2:
    /// `username`, `realm`, `nonce`, `uri`, `response`).
    MissingParam(&'static str),
}

impl CredentialsError {
    /// A short English reason, fit for a 400 reason phrase or a log line.
    pub fn reason(&self) -> &'static str {
        match self {
            CredentialsError::NotDigest => "not Digest credentials",
            CredentialsError::Malformed(why) => why,
            CredentialsError::MissingParam(name) => match *name {
                "username" => "missing username parameter",
                "realm" => "missing realm parameter",
                "nonce" => "missing nonce parameter",
                "uri" => "missing uri parameter",
                "response" => "missing response parameter",
                _ => "missing parameter",
            },
        }
    }
}

impl fmt::Display for CredentialsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CredentialsError::MissingParam(name) => write!(f, "missing {name} parameter"),
            other => f.write_str(other.reason()),
        }
    }
}

impl std::error::Error for CredentialsError {}

/// Parses `Digest username="bob", realm="..", ...` (RFC 3261 §25.1 `credentials`).
///
/// - The scheme is case-insensitive (RFC 2617 §1.2); another scheme is
///   [`CredentialsError::NotDigest`], whatever follows it.
/// - Parameters are comma-separated with optional whitespace around `=` and `,`
///   (RFC 3261 §25.1 `EQUAL`, `COMMA`); empty list elements (`a=1,,b=2`) are skipped, as
///   RFC 7230 §7 asks of list parsers.
/// - Names are case-insensitive; each may appear once (RFC 7235 §2.1), so a duplicate is an
///   error even for a parameter we ignore: two `response`s could otherwise be read two ways.
/// - Values are quoted-strings with backslash escapes, or bare tokens. The grammar quotes
///   some parameters and not others (`algorithm`, `qop`, `nc` are bare; `uri` is quoted,
///   RFC 3261 §22.4 item 2); clients get this wrong both ways, so either form is accepted
///   for every parameter.
/// - Unknown parameters are ignored (RFC 3261 §25.1 `auth-param`).
///
/// The value is expected unfolded (RFC 3261 §7.3.1: the message layer turns a folded line
/// into a single SP); a line break left inside a quoted-string is refused rather than
/// guessed at. Never panics.
pub fn parse_credentials(value: &str) -> Result<DigestCredentials, CredentialsError> {
    use CredentialsError::{Malformed, MissingParam};

    let mut cursor = Cursor {
        bytes: value.as_bytes(),
        pos: 0,
    };
    cursor.skip_lws();
    let scheme = cursor.token();
    if scheme.is_empty() {
        return Err(Malformed("missing auth-scheme"));
    }
    if !scheme.eq_ignore_ascii_case(b"Digest") {
        return Err(CredentialsError::NotDigest);
    }
    // `"Digest" LWS digest-response`: the scheme must end at whitespace, not run into a
    // parameter (`Digestusername=...` would otherwise read as scheme `Digestusername`, but
    // `Digest,` must not pass either).
    if !cursor.at_end() && !cursor.skip_lws() {
        return Err(Malformed("expected whitespace after auth-scheme"));
    }

    let mut fields = Fields::default();
    // Names seen so far, for duplicates: the known ones as bits, the others as written
    // (compared ignoring case). No allocation for a well-formed value.
    let mut seen_known = 0u16;
    let mut seen_other: Vec<&[u8]> = Vec::new();
    loop {
        cursor.skip_lws();
        if cursor.at_end() {
            break;
        }
        if cursor.eat(b',') {
            continue;
        }
        let name = cursor.token();
        if name.is_empty() {
            return Err(Malformed("expected a parameter name"));
        }
        cursor.skip_lws();
        if !cursor.eat(b'=') {
            return Err(Malformed("expected '=' after a parameter name"));
        }
        cursor.skip_lws();
        let value = if cursor.peek() == Some(b'"') {
            cursor.quoted_string()?
        } else {
            let bare = cursor.bare_value();
            if bare.is_empty() {
                return Err(Malformed("expected a parameter value"));
            }
            // Bare values are visible ASCII only, so this cannot fail; no unwrap all the same.
            String::from_utf8(bare.to_vec()).map_err(|_| Malformed("invalid parameter value"))?
        };
        let duplicate = match fields.slot(name) {
            Some((bit, slot)) => {
                *slot = Some(value);
                let again = seen_known & bit != 0;
                seen_known |= bit;
                again
            }
            None => {
                let again = seen_other.iter().any(|n| n.eq_ignore_ascii_case(name));
                seen_other.push(name);
                again
            }
        };
        if duplicate {
            return Err(Malformed("duplicate parameter"));
        }
        cursor.skip_lws();
        if cursor.at_end() {
            break;
        }
        if !cursor.eat(b',') {
            return Err(Malformed("expected ',' between parameters"));
        }
    }

    Ok(DigestCredentials {
        username: fields.username.ok_or(MissingParam("username"))?,
        realm: fields.realm.ok_or(MissingParam("realm"))?,
        nonce: fields.nonce.ok_or(MissingParam("nonce"))?,
        uri: fields.uri.ok_or(MissingParam("uri"))?,
        response: fields.response.ok_or(MissingParam("response"))?,
        algorithm: fields.algorithm,
        cnonce: fields.cnonce,
        opaque: fields.opaque,
        qop: fields.qop,
        nc: fields.nc,
    })
}

/// The parameters Digest knows, filled as they are read.
#[derive(Default)]
struct Fields {
    username: Option<String>,
    realm: Option<String>,
    nonce: Option<String>,
    uri: Option<String>,
    response: Option<String>,
    algorithm: Option<String>,
    cnonce: Option<String>,
    opaque: Option<String>,
    qop: Option<String>,
    nc: Option<String>,
}

impl Fields {
    /// Where a parameter goes (names ignore case), with a bit of its own for telling
    /// duplicates; `None` for parameters we ignore.
    fn slot(&mut self, name: &[u8]) -> Option<(u16, &mut Option<String>)> {
        let slots = [
            (&b"username"[..], &mut self.username),
            (b"realm", &mut self.realm),
            (b"nonce", &mut self.nonce),
            (b"uri", &mut self.uri),
            (b"response", &mut self.response),
            (b"algorithm", &mut self.algorithm),
            (b"cnonce", &mut self.cnonce),
            (b"opaque", &mut self.opaque),
            (b"qop", &mut self.qop),
            (b"nc", &mut self.nc),
        ];
        slots
            .into_iter()
            .zip(0..)
            .find(|((known, _), _)| known.eq_ignore_ascii_case(name))
            .map(|((_, slot), i)| (1 << i, slot))
    }
}

/// A byte cursor over the header value. It only ever stops at ASCII bytes, so every slice
/// it hands out of the (UTF-8) input is itself valid UTF-8 where that matters.
struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn at_end(&self) -> bool {
        self.pos >= self.bytes.len()
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn bump(&mut self) -> Option<u8> {
        let b = self.peek()?;
        self.pos += 1;
        Some(b)
    }

    fn eat(&mut self, want: u8) -> bool {
        if self.peek() == Some(want) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    /// Skips LWS (RFC 3261 §25.1; CR and LF included so that a still-folded value reads
    /// as the single SP folding stands for). Returns whether anything was skipped.
    fn skip_lws(&mut self) -> bool {
        let start = self.pos;
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\r' | b'\n')) {
            self.pos += 1;
        }
        self.pos > start
    }

    /// The longest run of token characters (possibly empty).
    fn token(&mut self) -> &'a [u8] {
        self.take_while(is_token_char)
    }

    /// An unquoted value: a token, widened to any visible ASCII but the delimiters (`"`,
    /// `,`, `\`), so that an unquoted `uri=sip:bob@host` or base64 nonce still reads.
    fn bare_value(&mut self) -> &'a [u8] {
        self.take_while(|b| b.is_ascii_graphic() && !matches!(b, b'"' | b',' | b'\\'))
    }

    fn take_while(&mut self, keep: impl Fn(u8) -> bool) -> &'a [u8] {
        let start = self.pos;
        while self.peek().is_some_and(&keep) {
            self.pos += 1;
        }
        &self.bytes[start..self.pos]
    }

    /// A quoted-string starting at the opening quote (RFC 3261 §25.1), returned unquoted
    /// with each quoted-pair `\x` resolved to `x`.
    fn quoted_string(&mut self) -> Result<String, CredentialsError> {
        use CredentialsError::Malformed;
        // Most values have no quoted-pair: they are copied in one piece, once their end is
        // found. A backslash sends the value through the byte-by-byte path below.
        let start = self.pos + 1;
        let plain = self.bytes.get(start..).and_then(|rest| {
            // Up to the closing quote; anything the byte-by-byte path treats specially (a
            // quoted-pair, a line break, another control) stops the scan there.
            let len = rest
                .iter()
                .position(|&b| b == b'"' || b == b'\\' || (b < 0x20 && b != b'\t') || b == 0x7f)?;
            (rest[len] == b'"').then_some(&rest[..len])
        });
        if let Some(text) = plain {
            self.pos = start + text.len() + 1;
            return std::str::from_utf8(text)
                .map(str::to_owned)
                .map_err(|_| Malformed("invalid UTF-8 in quoted-string"));
        }
        self.bump(); // the opening DQUOTE
        let mut out = Vec::new();
        loop {
            match self.bump() {
                None => return Err(Malformed("unterminated quoted-string")),
                Some(b'"') => break,
                Some(b'\\') => match self.bump() {
                    None => return Err(Malformed("unterminated quoted-string")),
                    // quoted-pair excludes CR and LF (RFC 3261 §25.1).
                    Some(b'\r' | b'\n') => {
                        return Err(Malformed("line break in quoted-string"));
                    }
                    Some(b) => out.push(b),
                },
                Some(b'\r' | b'\n') => return Err(Malformed("line break in quoted-string")),
                // qdtext excludes the controls other than HTAB (RFC 3261 §25.1).
                Some(b) if b != b'\t' && (b < 0x20 || b == 0x7f) => {
                    return Err(Malformed("control character in quoted-string"));
                }
                Some(b) => out.push(b),
            }
        }
        // Only ASCII bytes were dropped (the quotes and escaping backslashes), so the rest of
        // the UTF-8 input is still UTF-8; checked rather than assumed.
        String::from_utf8(out).map_err(|_| Malformed("invalid UTF-8 in quoted-string"))
    }
}

/// `token` characters (RFC 3261 §25.1).
fn is_token_char(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~'
        )
}

/// The value of a `WWW-Authenticate` (401) or `Proxy-Authenticate` (407) header
/// (RFC 3261 §20.44, §20.27; RFC 7616 §3.3):
///
/// `Digest realm="R", qop="auth", nonce="N", opaque="O", stale=TRUE, algorithm=MD5`
///
/// - `realm` first, then a fixed order, so the same inputs give the same bytes;
/// - `qop="auth"` always: RFC 3261 §22.4 item 8 and RFC 8760 §2.6 item 8 say a server MUST
///   send qop;
/// - `opaque` only when given; `stale=TRUE` only when stale (RFC 7616 §3.3: absent means
///   false);
/// - `algorithm` always, even MD5, so a client never has to guess the default.
///
/// realm, nonce and opaque are quoted, with `"` and `\` escaped as quoted-pairs; control
/// characters, which a quoted-string cannot carry and which would break the header line,
/// are left out.
pub fn challenge(
    alg: Algorithm,
    realm: &str,
    nonce: &str,
    opaque: Option<&str>,
    stale: bool,
) -> String {
    let mut out = String::with_capacity(64 + realm.len() + nonce.len());
    out.push_str("Digest realm=");
    push_quoted(&mut out, realm);
    out.push_str(", qop=\"auth\", nonce=");
    push_quoted(&mut out, nonce);
    if let Some(opaque) = opaque {
        out.push_str(", opaque=");
        push_quoted(&mut out, opaque);
    }
    if stale {
        out.push_str(", stale=TRUE");
    }
    out.push_str(", algorithm=");
    out.push_str(alg.as_str());
    out
}

/// One [`challenge`] per algorithm, in the order given, which should be the server's
/// preference (RFC 8760 §2.3, RFC 7616 §3.7: one header per algorithm, most preferred
/// first; §3.7 keeps MD5 only for backward compatibility, so SHA-256 usually leads). Each
/// becomes its own header line.
pub fn challenges(
    algorithms: &[Algorithm],
    realm: &str,
    nonce: &str,
    opaque: Option<&str>,
    stale: bool,
) -> Vec<String> {
    algorithms
        .iter()
        .map(|&alg| challenge(alg, realm, nonce, opaque, stale))
        .collect()
}

fn push_quoted(out: &mut String, value: &str) {
    out.push('"');
    // A value with nothing to escape or drop (a realm, one of our nonces) goes in whole.
    let plain = value
        .bytes()
        .all(|b| b == b'\t' || ((0x20..0x7f).contains(&b) && b != b'"' && b != b'\\'));
    if plain {
        out.push_str(value);
        out.push('"');
        return;
    }
    for c in value.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() && c != '\t' => {}
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const RFC2617_EXAMPLE: &str = r#"Digest username="Mufasa",
                 realm="testrealm@host.com",
                 nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093",
                 uri="/dir/index.html",
                 qop=auth,
                 nc=00000001,
                 cnonce="0a4f113b",
                 response="6629fae49393a05397450978507c4ef1",
                 opaque="5ccc069c403ebaf9f0171e9517f40e41""#;

    fn creds(value: &str) -> DigestCredentials {
        match parse_credentials(value) {
            Ok(c) => c,
            Err(e) => panic!("{value:?}: {e}"),
        }
    }

    /// RFC 2617 §3.5, as printed (line breaks and indentation are the folded LWS).
    #[test]
    fn parses_the_rfc2617_example() {
        let c = creds(RFC2617_EXAMPLE);
        assert_eq!(
            c,
            DigestCredentials {
                username: "Mufasa".into(),
                realm: "testrealm@host.com".into(),
                nonce: "dcd98b7102dd2f0e8b11d0f600bfb0c093".into(),
                uri: "/dir/index.html".into(),
                response: "6629fae49393a05397450978507c4ef1".into(),
                algorithm: None,
                cnonce: Some("0a4f113b".into()),
                opaque: Some("5ccc069c403ebaf9f0171e9517f40e41".into()),
                qop: Some("auth".into()),
                nc: Some("00000001".into()),
            }
        );
    }

    /// RFC 3665 §2.1 style REGISTER credentials, with the scheme in another case and
    /// unquoted algorithm.
    #[test]
    fn parses_sip_register_credentials() {
        let c = creds(
            "digest username=\"bob\", realm=\"atlanta.example.com\", \
             nonce=\"ea9c8e88df84f1cec4341ae6cbe5a359\", opaque=\"\", \
             uri=\"sips:ss2.biloxi.example.com\", \
             response=\"dfe56131d1958046689d83306477ecc\", algorithm=MD5",
        );
        assert_eq!(c.username, "bob");
        assert_eq!(c.uri, "sips:ss2.biloxi.example.com");
        assert_eq!(c.algorithm.as_deref(), Some("MD5"));
        assert_eq!(c.opaque.as_deref(), Some(""));
        assert_eq!(c.qop, None);
        assert_eq!(c.nc, None);
    }

    #[test]
    fn escaped_quotes_and_backslashes_are_unescaped() {
        let c = creds(
            r#"Digest username="a\"b\\c", realm="r\,x", nonce="n", uri="sip:h", response="0""#,
        );
        assert_eq!(c.username, r#"a"b\c"#);
        assert_eq!(c.realm, "r,x");
    }

    #[test]
    fn commas_and_equals_inside_quotes_are_data() {
        let c =
            creds(r#"Digest username="x, y=z", realm="r", nonce="n", uri="sip:a,b", response="0""#);
        assert_eq!(c.username, "x, y=z");
        assert_eq!(c.uri, "sip:a,b");
    }

    #[test]
    fn whitespace_around_equals_and_commas() {
        let c = creds(
            "Digest   username = \"bob\"\t,realm=\"r\" ,  nonce =\"n\",uri= \"sip:h\" ,\r\n response=\"0\"  ",
        );
        assert_eq!(c.username, "bob");
        assert_eq!(c.realm, "r");
        assert_eq!(c.nonce, "n");
        assert_eq!(c.uri, "sip:h");
        assert_eq!(c.response, "0");
    }

    #[test]
    fn parameter_order_does_not_matter() {
        let a = creds(RFC2617_EXAMPLE);
        let b = creds(
            r#"Digest response="6629fae49393a05397450978507c4ef1", opaque="5ccc069c403ebaf9f0171e9517f40e41", cnonce="0a4f113b", nc=00000001, qop=auth, uri="/dir/index.html", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", realm="testrealm@host.com", username="Mufasa""#,
        );
        assert_eq!(a, b);
    }

    #[test]
    fn token_params_may_be_quoted_and_names_any_case() {
        let c = creds(
            r#"Digest USERNAME="bob", Realm="r", nonce="n", uri="sip:h", response="0", algorithm="SHA-256", qop="auth", NC="0000000a", cnonce="c""#,
        );
        assert_eq!(c.username, "bob");
        assert_eq!(c.algorithm.as_deref(), Some("SHA-256"));
        assert_eq!(c.qop.as_deref(), Some("auth"));
        assert_eq!(c.nc.as_deref(), Some("0000000a"));
    }

    #[test]
    fn unquoted_uri_is_accepted() {
        let c =
            creds("Digest username=bob, realm=r, nonce=n, uri=sip:bob@h;transport=tcp, response=0");
        assert_eq!(c.uri, "sip:bob@h;transport=tcp");
    }

    #[test]
    fn raw_uri_is_kept_exactly() {
        // rsip's mistake: it re-serialises `transport=tcp` as `transport=TCP`.
        let c = creds(
            r#"Digest username="bob", realm="r", nonce="n", uri="sip:Bob@H;transport=tcp", response="0""#,
        );
        assert_eq!(c.uri, "sip:Bob@H;transport=tcp");
    }

    #[test]
    fn unknown_params_are_ignored_and_empty_elements_skipped() {
        let c = creds(
            r#"Digest username="bob",, realm="r", userhash=false, x-foo="bar", nonce="n", uri="sip:h", response="0","#,
        );
        assert_eq!(c.username, "bob");
    }

    #[test]
    fn empty_values_before_a_challenge_are_accepted() {
        // RFC 8760 §2.7: empty nonce and response when no challenge was received yet.
        let c = creds(r#"Digest username="bob", realm="r", nonce="", uri="sip:h", response="""#);
        assert_eq!(c.nonce, "");
        assert_eq!(c.response, "");
    }

    #[test]
    fn non_ascii_in_quoted_strings_is_kept() {
        let c =
            creds(r#"Digest username="jöhn", realm="r€", nonce="n", uri="sip:h", response="0""#);
        assert_eq!(c.username, "jöhn");
        assert_eq!(c.realm, "r€");
    }

    #[test]
    fn duplicate_params_are_rejected() {
        for value in [
            r#"Digest username="a", username="b", realm="r", nonce="n", uri="u", response="0""#,
            r#"Digest username="a", realm="r", nonce="n", uri="u", response="0", Response="1""#,
            r#"Digest username="a", realm="r", nonce="n", uri="u", response="0", foo=1, FOO=2"#,
        ] {
            assert_eq!(
                parse_credentials(value),
                Err(CredentialsError::Malformed("duplicate parameter")),
                "{value}"
            );
        }
    }

    #[test]
    fn other_schemes_are_not_digest() {
        for value in [
            // RFC 4475 §3.1.2.13 (regaut01).
            "NoOneKnowsThisScheme opaque-data=here",
            "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==",
            "Bearer abc",
            "Digestive username=\"bob\"",
        ] {
            assert_eq!(
                parse_credentials(value),
                Err(CredentialsError::NotDigest),
                "{value}"
            );
        }
    }

    #[test]
    fn missing_required_params_are_named() {
        let cases = [
            (
                r#"Digest realm="r", nonce="n", uri="u", response="0""#,
                "username",
            ),
            (
                r#"Digest username="a", nonce="n", uri="u", response="0""#,
                "realm",
            ),
            (
                r#"Digest username="a", realm="r", uri="u", response="0""#,
                "nonce",
            ),
            (
                r#"Digest username="a", realm="r", nonce="n", response="0""#,
                "uri",
            ),
            (
                r#"Digest username="a", realm="r", nonce="n", uri="u""#,
                "response",
            ),
            ("Digest", "username"),
            ("Digest   ", "username"),
        ];
        for (value, name) in cases {
            assert_eq!(
                parse_credentials(value),
                Err(CredentialsError::MissingParam(name)),
                "{value}"
            );
        }
    }

    #[test]
    fn garbage_is_malformed() {
        for value in [
            "",
            "   ",
            "\"Digest\" username=\"a\"",
            "Digest,username=\"a\"",
            "Digest username",
            "Digest username=",
            "Digest username=\"a",
            "Digest username=\"a\\",
            "Digest username=\"a\" realm=\"r\"",
            "Digest =\"a\"",
            "Digest username=\"a\"\"b\"",
            "Digest username=\"a\rb\"",
            "Digest username=\"a\u{0}b\"",
            "Digest username=\"a\\\nb\"",
            "Digest username=a\"b\"",
            "Digest username=\u{e9}",
        ] {
            assert!(
                matches!(
                    parse_credentials(value),
                    Err(CredentialsError::Malformed(_))
                ),
                "{value:?} gave {:?}",
                parse_credentials(value)
            );
        }
    }

    #[test]
    fn error_reasons_are_readable() {
        assert_eq!(
            CredentialsError::MissingParam("uri").reason(),
            "missing uri parameter"
        );
        assert_eq!(
            CredentialsError::MissingParam("uri").to_string(),
            "missing uri parameter"
        );
        assert_eq!(CredentialsError::Malformed("x").to_string(), "x");
    }

    #[test]
    fn challenge_has_a_fixed_shape() {
        assert_eq!(
            challenge(Algorithm::Md5, "atlanta.example.com", "abc", None, false),
            r#"Digest realm="atlanta.example.com", qop="auth", nonce="abc", algorithm=MD5"#
        );
        assert_eq!(
            challenge(Algorithm::Sha256, "r", "n", Some("o"), true),
            r#"Digest realm="r", qop="auth", nonce="n", opaque="o", stale=TRUE, algorithm=SHA-256"#
        );
    }

    #[test]
    fn challenge_escapes_what_a_quoted_string_cannot_hold() {
        assert_eq!(
            challenge(Algorithm::Md5, "a\"b\\c\r\nd", "n", None, false),
            r#"Digest realm="a\"b\\cd", qop="auth", nonce="n", algorithm=MD5"#
        );
    }

    #[test]
    fn challenges_follow_the_preference_order() {
        let all = challenges(&[Algorithm::Sha256, Algorithm::Md5], "r", "n", None, false);
        assert_eq!(all.len(), 2);
        assert!(all[0].ends_with("algorithm=SHA-256"));
        assert!(all[1].ends_with("algorithm=MD5"));
    }

    /// A client echoing our challenge's realm and nonce produces credentials that read back
    /// to the same strings, escapes included.
    #[test]
    fn challenge_values_round_trip_through_credentials() {
        let realm = r#"we "quote" \ things"#;
        let ch = challenge(Algorithm::Md5, realm, "n0nce", Some("op"), false);
        let realm_part = ch
            .strip_prefix("Digest realm=")
            .and_then(|s| s.split(", qop=").next())
            .unwrap_or_default();
        let c = creds(&format!(
            "Digest username=\"u\", realm={realm_part}, nonce=\"n0nce\", uri=\"sip:h\", response=\"0\""
        ));
        assert_eq!(c.realm, realm);
    }

    fn quote(s: &str) -> String {
        let mut out = String::new();
        push_quoted(&mut out, s);
        out
    }

    proptest! {
        #[test]
        fn arbitrary_strings_never_panic(s in any::<String>()) {
            let _ = parse_credentials(&s);
        }

        #[test]
        fn arbitrary_digest_tails_never_panic(s in r#"[ -~\t\r\n"\\,=]{0,80}"#) {
            let _ = parse_credentials(&format!("Digest {s}"));
            let _ = parse_credentials(&format!("Digest username=\"{s}"));
        }

        /// Whatever the field values (no controls, which quoted-strings cannot carry),
        /// quoting them and parsing gives them back.
        #[test]
        fn quoted_values_round_trip(
            username in "[^\\p{Cc}]{0,20}",
            realm in "[^\\p{Cc}]{0,20}",
            uri in "[^\\p{Cc}]{0,20}",
            nonce in "[!-~]{0,20}",
        ) {
            let value = format!(
                "Digest username={}, realm={}, nonce={}, uri={}, response=\"00\"",
                quote(&username), quote(&realm), quote(&nonce), quote(&uri)
            );
            let c = parse_credentials(&value);
            prop_assert!(c.is_ok(), "{:?} -> {:?}", value, c);
            let c = c.unwrap_or_else(|_| unreachable!());
            prop_assert_eq!(c.username, username);
            prop_assert_eq!(c.realm, realm);
            prop_assert_eq!(c.uri, uri);
            prop_assert_eq!(c.nonce, nonce);
        }
    }
}
