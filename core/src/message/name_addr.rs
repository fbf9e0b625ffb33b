//! `name-addr` / `addr-spec` values with header parameters: From, To, Contact, Route,
//! Record-Route (RFC 3261 §20.10, §20.20, §20.39, §25.1).

use crate::message::params::Params;
use crate::message::syntax::{
    is_quoted_string, is_token_char, is_wsp, quoted_string_end, split_at_byte, trim_lws,
};
use crate::message::{ParseError, ParseErrorKind};

/// An address with its header parameters: `"Display" <uri>;tag=x` or `uri;tag=x`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NameAddr<'a> {
    /// The display name as written: a quoted-string keeps its quotes and escapes
    /// (`"J Rosenberg \\\""`), a token display name is the tokens (`caller`, `A. Bell`).
    pub display_name: Option<&'a str>,
    /// The URI, without the `<>`.
    pub uri: &'a str,
    /// The header parameters after `>` (or after the addr-spec): `tag`, `expires`, `q`...
    pub params: Params<'a>,
    /// The whole value, trimmed.
    pub raw: &'a str,
}

/// The Contact header field of a request (RFC 3261 §20.10).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Contacts<'a> {
    /// `Contact: *` (§10.2.2, only valid with `Expires: 0` in a REGISTER).
    Star,
    /// Every Contact value in order (empty when there is no Contact).
    List(Vec<NameAddr<'a>>),
}

fn bad(reason: &'static str) -> ParseError {
    ParseError::new(ParseErrorKind::BadValue, 400, reason)
}

/// RFC 3261 §25.1 `scheme`, checked here so that `Bell, Alexander <...>` (RFC 4475
/// §3.1.2.15) is not mistaken for an addr-spec.
fn has_scheme(uri: &str) -> bool {
    match split_at_byte(uri, b':') {
        Some((scheme, rest)) => {
            let mut b = scheme.bytes();
            !rest.is_empty()
                && b.next().is_some_and(|c| c.is_ascii_alphabetic())
                && b.all(|c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'-' | b'.'))
        }
        None => false,
    }
}

impl<'a> NameAddr<'a> {
    /// Parses `(name-addr / addr-spec) *(SEMI param)` (RFC 3261 §25.1 `from-spec`,
    /// `contact-param`, `rec-route`...).
    ///
    /// Accepts a token display name directly followed by `<` (RFC 4475 §3.1.1.6: a known
    /// erratum of the grammar). Rejects an unterminated quoted display name (§3.1.2.6), white
    /// space inside `<>` (§3.1.2.14, which allows rejecting), a display name made of non-tokens
    /// that is not quoted (§3.1.2.15), and an addr-spec holding `,` or `?` outside `<>`
    /// (RFC 3261 §20.10, RFC 4475 §3.1.2.13).
    pub fn parse(s: &'a str) -> Result<NameAddr<'a>, ParseError> {
        let raw = trim_lws(s);
        let b = raw.as_bytes();
        let laquot = match b.first() {
            None => return Err(bad("Empty Address")),
            Some(b'"') => {
                let end = quoted_string_end(b).ok_or(bad("Unterminated Quoted Display Name"))?;
                if !is_quoted_string(raw.get(..end).unwrap_or("")) {
                    return Err(bad("Bad Quoted Display Name"));
                }
                let gap = b.get(end..).unwrap_or(&[]);
                let lt = end + gap.iter().take_while(|c| is_wsp(**c)).count();
                if b.get(lt) != Some(&b'<') {
                    return Err(bad("Display Name Without <URI>"));
                }
                Some((Some(raw.get(..end).unwrap_or("")), lt))
            }
            Some(b'<') => Some((None, 0)),
            Some(_) => {
                // `*(token LWS)` then `<`, or else this is an addr-spec.
                let i = b
                    .iter()
                    .take_while(|c| is_token_char(**c) || is_wsp(**c))
                    .count();
                if b.get(i) == Some(&b'<') {
                    Some((Some(trim_lws(raw.get(..i).unwrap_or(""))), i))
                } else {
                    None
                }
            }
        };
        let (display_name, uri, after) = match laquot {
            Some((display_name, lt)) => {
                let inner = raw.get(lt + 1..).unwrap_or("");
                let gt = inner
                    .bytes()
                    .position(|c| c == b'>')
                    .ok_or(bad("Missing > In Address"))?;
                let uri = inner.get(..gt).unwrap_or("");
                if uri.bytes().any(is_wsp) {
                    return Err(bad("White Space Inside <URI>"));
                }
                (display_name, uri, inner.get(gt + 1..).unwrap_or(""))
            }
            None => {
                let end = b
                    .iter()
                    .position(|c| *c == b';' || is_wsp(*c))
                    .unwrap_or(b.len());
                let uri = raw.get(..end).unwrap_or("");
                if uri.contains([',', '?']) {
                    return Err(bad("URI With , Or ? Must Be In <>"));
                }
                (None, uri, raw.get(end..).unwrap_or(""))
            }
        };
        if !has_scheme(uri) {
            return Err(bad("Bad Address URI"));
        }
        let after = trim_lws(after);
        let params = match after.strip_prefix(';') {
            Some(p) => Params::new(p),
            None if after.is_empty() => Params::default(),
            None => return Err(bad("Junk After Address")),
        };
        Ok(NameAddr {
            display_name,
            uri,
            params,
            raw,
        })
    }

    /// The `tag` parameter (RFC 3261 §19.3), when it has a value.
    pub fn tag(&self) -> Option<&'a str> {
        self.params.get("tag").flatten()
    }

    /// A header parameter by name (case-insensitive): `Some(None)` when present without a
    /// value.
    pub fn param(&self, name: &str) -> Option<Option<&'a str>> {
        self.params.get(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn na(s: &str) -> NameAddr<'_> {
        NameAddr::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn forms() {
        let a = na(r#""Alice \"A\" Smith" <sip:alice@atlanta.example.com>;tag=1928301774"#);
        assert_eq!(a.display_name, Some(r#""Alice \"A\" Smith""#));
        assert_eq!(a.uri, "sip:alice@atlanta.example.com");
        assert_eq!(a.tag(), Some("1928301774"));

        let a = na("sip:bob@biloxi.example.com ;   tag    = 1918181833n");
        assert_eq!(a.display_name, None);
        assert_eq!(a.uri, "sip:bob@biloxi.example.com");
        assert_eq!(a.tag(), Some("1918181833n"));

        let a = na("caller<sip:caller@example.com>;tag=323");
        assert_eq!(a.display_name, Some("caller"));
        assert_eq!(a.uri, "sip:caller@example.com");

        let a = na("A. Bell <sip:a.g.bell@example.com>;tag=qweoiqpe");
        assert_eq!(a.display_name, Some("A. Bell"));

        let a = na("<sip:c@h;transport=tcp>;expires=60;+sip.instance=\"<urn:uuid:1>\";lr");
        assert_eq!(a.uri, "sip:c@h;transport=tcp");
        assert_eq!(a.param("EXPIRES"), Some(Some("60")));
        assert_eq!(a.param("+sip.instance"), Some(Some("\"<urn:uuid:1>\"")));
        assert_eq!(a.param("lr"), Some(None));
        assert_eq!(a.tag(), None);

        let a = na("sip:c@h;+sip.instance=\"<urn:uuid:1>\"");
        assert_eq!(a.uri, "sip:c@h");
        assert_eq!(a.param("+sip.instance"), Some(Some("\"<urn:uuid:1>\"")));

        let a = na("<sip:[2001:db8::1]:5060>");
        assert_eq!(a.uri, "sip:[2001:db8::1]:5060");
        assert_eq!(na("\"\" <sip:x@y>").display_name, Some("\"\""));
    }

    #[test]
    fn torture_rejections() {
        for bad in [
            r#""Mr. J. User <sip:j.user@example.com>"#,
            "\"Watson, Thomas\" < sip:t.watson@example.org >",
            "Bell, Alexander <sip:a.g.bell@example.com>;tag=43",
            "sip:user@example.com?Route=%3Csip:sip.example.com%3E",
            "<sip:a@b",
            "<sip:a@b> junk",
            "\"x\" sip:a@b",
            "",
            "<>",
            "nothing",
        ] {
            assert!(NameAddr::parse(bad).is_err(), "{bad}");
        }
    }
}
