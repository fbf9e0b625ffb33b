//! `;name=value` parameters: header params (RFC 3261 §25.1 `generic-param`, Via `via-params`,
//! `contact-params`, `from-param`/`to-param`) and SIP URI params (§19.1.1 `uri-parameters`).

use crate::message::syntax::{
    is_escaped_text, is_quoted_string, is_token, is_token_char, is_unreserved, is_wsp, trim_lws,
};

/// The parameters after the first `;` of a value, parsed lazily and without copying.
///
/// Values keep their quotes (`+sip.instance="<urn:uuid:...>"` gives `"\"<urn:uuid:...>\""`)
/// so that they can be written back as received. Empty parameters (`;;`) are skipped here;
/// `Message::validate` rejects them (RFC 4475 §3.1.2.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Params<'a>(&'a str);

/// One parameter and where it sits in the text [`Params`] was made from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Param<'a> {
    pub(crate) name: &'a str,
    pub(crate) value: Option<&'a str>,
    /// Byte range of the whole trimmed `name[=value]` in the params text.
    pub(crate) start: usize,
    pub(crate) end: usize,
}

impl<'a> Params<'a> {
    /// Params from the text after the first `;` (`branch=z9hG4bK1;rport`).
    pub fn new(text: &'a str) -> Params<'a> {
        Params(text)
    }

    /// The text the params were made from.
    pub fn as_str(&self) -> &'a str {
        self.0
    }

    /// Whether there is no parameter at all.
    pub fn is_empty(&self) -> bool {
        self.iter().next().is_none()
    }

    /// The value of the first parameter named `name` (case-insensitive, RFC 3261 §7.3.1):
    /// `None` when absent, `Some(None)` when present without a value (`;lr`, `;rport`).
    pub fn get(&self, name: &str) -> Option<Option<&'a str>> {
        self.iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// Every parameter in order, as `(name, value)`.
    pub fn iter(&self) -> impl Iterator<Item = (&'a str, Option<&'a str>)> + 'a {
        self.spans()
            .filter(|p| !p.name.is_empty())
            .map(|p| (p.name, p.value))
    }

    /// Every `;`-separated element with its position, empty ones included.
    pub(crate) fn spans(&self) -> ParamSpans<'a> {
        ParamSpans {
            text: self.0,
            pos: 0,
            done: false,
        }
    }

    /// RFC 3261 §25.1 `generic-param` syntax for header params: a token name, and a value that
    /// is a token, a host (IPv6 in or out of brackets for `received`/`maddr`) or a quoted-string.
    /// `;;` and `;name=` fail.
    pub(crate) fn check_header_params(&self) -> bool {
        self.check_plain_header_params()
            .unwrap_or_else(|| self.check_header_params_by_element())
    }

    /// [`Params::check_header_params`] in one pass over the bytes, for the params nearly every
    /// message has (`tag=…`, `branch=…;rport`, `lr`): `None` when the text holds anything
    /// but token characters, `;`, `=` and the `:`/`[`/`]` of an IPv6 value (white space, a
    /// quoted-string), which the element-by-element check handles.
    fn check_plain_header_params(&self) -> Option<bool> {
        let text = self.0.as_bytes();
        if text.is_empty() {
            return Some(true);
        }
        // The current element: its name's length, and whether it has an `=` and how many
        // bytes of value follow it.
        let (mut name, mut equals, mut value) = (0usize, false, 0usize);
        for &b in text {
            match b {
                b';' => {
                    if name == 0 || (equals && value == 0) {
                        return Some(false);
                    }
                    (name, equals, value) = (0, false, 0);
                }
                b'=' if !equals => {
                    if name == 0 {
                        return Some(false);
                    }
                    equals = true;
                }
                b'=' => return Some(false),
                _ if is_token_char(b) => {
                    if equals {
                        value += 1;
                    } else {
                        name += 1;
                    }
                }
                b':' | b'[' | b']' if equals => value += 1,
                b':' | b'[' | b']' => return Some(false),
                _ => return None,
            }
        }
        Some(name > 0 && (!equals || value > 0))
    }

    /// [`Params::check_header_params`] element by element, for any text.
    fn check_header_params_by_element(&self) -> bool {
        self.spans().all(|p| {
            is_token(p.name)
                && p.value.is_none_or(|v| {
                    if v.starts_with('"') {
                        is_quoted_string(v)
                    } else {
                        !v.is_empty()
                            && v.bytes()
                                .all(|b| is_token_char(b) || matches!(b, b':' | b'[' | b']'))
                    }
                })
        })
    }

    /// RFC 3261 §19.1.1/§25.1 `uri-parameter` syntax: `pname["=" pvalue]` with both made of
    /// `paramchar` (unreserved, escaped, `[ ] / : & + $`).
    pub(crate) fn check_uri_params(&self) -> bool {
        let paramchar =
            |b: u8| is_unreserved(b) || matches!(b, b'[' | b']' | b'/' | b':' | b'&' | b'+' | b'$');
        // No LWS at all inside a URI (the span iterator would trim it).
        !self.0.contains([' ', '\t'])
            && self.spans().all(|p| {
                !p.name.is_empty()
                    && is_escaped_text(p.name, paramchar)
                    && p.value
                        .is_none_or(|v| !v.is_empty() && is_escaped_text(v, paramchar))
            })
    }
}

/// Iterator over the `;`-separated elements of a params text.
pub(crate) struct ParamSpans<'a> {
    text: &'a str,
    pos: usize,
    done: bool,
}

impl<'a> Iterator for ParamSpans<'a> {
    type Item = Param<'a>;

    fn next(&mut self) -> Option<Param<'a>> {
        if self.done {
            return None;
        }
        let b = self.text.as_bytes();
        let elem_start = self.pos;
        // One pass to the end of the element: the first `;` outside a quoted-string ends it,
        // the first `=` outside one splits it (`x="a;b=c"` is one param).
        let mut i = elem_start;
        let mut equals = None;
        // Skip to each byte that matters (`;`, `=`, `"`); inside a quoted-string only its
        // end and quoted-pairs matter.
        while let Some(k) = b.get(i..).and_then(|rest| {
            rest.iter()
                .position(|&c| c == b';' || c == b'=' || c == b'"')
        }) {
            i += k;
            match b.get(i) {
                Some(b';') => break,
                Some(b'=') => {
                    equals = equals.or(Some(i));
                    i += 1;
                }
                _ => {
                    i += 1;
                    while let Some(&c) = b.get(i) {
                        i += 1;
                        match c {
                            // quoted-pair: the next octet is taken as it is.
                            b'\\' => i += 1,
                            b'"' => break,
                            _ => {}
                        }
                    }
                }
            }
        }
        if i < b.len() && b.get(i) != Some(&b';') {
            i = b.len();
        }
        let elem_end = i.min(b.len());
        if i < b.len() {
            self.pos = i + 1;
        } else {
            self.done = true;
        }
        let elem = self.text.get(elem_start..elem_end).unwrap_or("");
        let trimmed = trim_lws(elem);
        // Empty text has no params at all, not one empty param.
        if self.done && elem_start == 0 && trimmed.is_empty() {
            return None;
        }
        let start = elem_start + elem.bytes().take_while(|b| is_wsp(*b)).count();
        let (name, value) = match equals {
            Some(e) => (
                trim_lws(self.text.get(elem_start..e).unwrap_or("")),
                Some(trim_lws(self.text.get(e + 1..elem_end).unwrap_or(""))),
            ),
            None => (trimmed, None),
        };
        Some(Param {
            name,
            value,
            start,
            end: start + trimmed.len(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(5000))]

        /// The one-pass check decides exactly as the element-by-element one wherever it
        /// decides at all.
        #[test]
        fn the_plain_check_agrees_with_the_full_one(text in "[a-c09;=:\\[\\]\\.\\-!\" \t]{0,16}") {
            let p = Params::new(&text);
            if let Some(fast) = p.check_plain_header_params() {
                prop_assert_eq!(fast, p.check_header_params_by_element(), "{:?}", text);
            }
        }
    }

    #[test]
    fn values_with_and_without_equals() {
        let p = Params::new("branch=z9hG4bK1;rport;received=192.0.2.1;LR");
        assert_eq!(p.get("BRANCH"), Some(Some("z9hG4bK1")));
        assert_eq!(p.get("rport"), Some(None));
        assert_eq!(p.get("lr"), Some(None));
        assert_eq!(p.get("maddr"), None);
        assert_eq!(p.iter().count(), 4);
        assert!(p.check_header_params());
    }

    #[test]
    fn lws_around_separators_and_quoted_values() {
        let p = Params::new("    tag = 98asjd8 ;  x=\"a;b=c\"  ");
        assert_eq!(p.get("tag"), Some(Some("98asjd8")));
        assert_eq!(p.get("x"), Some(Some("\"a;b=c\"")));
        assert!(p.check_header_params());
        let spans: Vec<_> = p.spans().collect();
        assert_eq!(&p.as_str()[spans[0].start..spans[0].end], "tag = 98asjd8");
    }

    #[test]
    fn empty_params_are_skipped_but_fail_the_check() {
        let p = Params::new(";;");
        assert!(p.is_empty());
        assert!(!p.check_header_params());
        assert!(!Params::new("a=").check_header_params());
        assert!(Params::new("").check_header_params());
        assert!(Params::new("received=2001:db8::9").check_header_params());
        assert!(!Params::new("x=\"open").check_header_params());
    }

    #[test]
    fn uri_params() {
        assert!(Params::new("%6C%72;n%61me=v%61lue%25%34%31").check_uri_params());
        assert!(Params::new("lr;maddr=[2001:db8::1]").check_uri_params());
        assert!(!Params::new("lr;;x").check_uri_params());
        assert!(!Params::new(" lr").check_uri_params());
        assert!(!Params::new("a=%4").check_uri_params());
    }
}
