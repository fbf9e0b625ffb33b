//! Character classes and small scanners of the RFC 3261 §25.1 basic rules.
//!
//! Everything here works on bytes and never indexes past the end: network input reaches it
//! unchecked.

/// The table of a character class (`[bool; 256]`, indexed by the byte), built at compile
/// time from the `const fn` that defines the class: the parser tests classes byte by byte,
/// and a load is cheaper than the chain of comparisons the definition reads as.
macro_rules! class_table {
    ($class:ident) => {{
        let mut table = [false; 256];
        let mut b = 0;
        while b < table.len() {
            // `b` is below 256, so the cast keeps it whole.
            table[b] = $class(b as u8);
            b += 1;
        }
        table
    }};
}
pub(crate) use class_table;

/// RFC 3261 §25.1 `token` character: `alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" /
/// "`" / "'" / "~"`.
const fn token_char(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~'
        )
}

static TOKEN_CHARS: [bool; 256] = class_table!(token_char);

/// RFC 3261 §25.1 `token` character (see `token_char`).
pub(crate) fn is_token_char(b: u8) -> bool {
    // 256 entries: every byte has one.
    TOKEN_CHARS[usize::from(b)]
}

/// RFC 3261 §25.1 `token`: one or more token characters.
pub(crate) fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_token_char)
}

/// RFC 3261 §25.1 `word` character (Call-ID): token characters plus
/// `( ) < > : \ " / [ ] ? { }`.
const fn word_char(b: u8) -> bool {
    token_char(b)
        || matches!(
            b,
            b'(' | b')'
                | b'<'
                | b'>'
                | b':'
                | b'\\'
                | b'"'
                | b'/'
                | b'['
                | b']'
                | b'?'
                | b'{'
                | b'}'
        )
}

static WORD_CHARS: [bool; 256] = class_table!(word_char);

/// RFC 3261 §25.1 `word` character (see `word_char`).
pub(crate) fn is_word_char(b: u8) -> bool {
    // 256 entries: every byte has one.
    WORD_CHARS[usize::from(b)]
}

/// RFC 3261 §25.1 `WSP`: SP or HTAB. After unfolding (§7.3.1) this is all the linear white
/// space a header value can contain.
pub(crate) fn is_wsp(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// `s` split around its first `sep` (an ASCII byte), which is left out: `str::split_once`
/// without the char machinery, for the short texts of header values and URIs.
pub(crate) fn split_at_byte(s: &str, sep: u8) -> Option<(&str, &str)> {
    let i = s.bytes().position(|b| b == sep)?;
    Some((s.get(..i)?, s.get(i + 1..)?))
}

/// Trims the SP/HTAB that `LWS`/`SWS` allow around separators.
pub(crate) fn trim_lws(s: &str) -> &str {
    // Bytewise: cheaper than `str::trim_matches`, which decodes chars.
    let b = s.as_bytes();
    let start = b.iter().position(|c| !is_wsp(*c)).unwrap_or(b.len());
    let end = b.iter().rposition(|c| !is_wsp(*c)).map_or(start, |i| i + 1);
    s.get(start..end).unwrap_or("")
}

/// RFC 3261 §25.1 `unreserved`: `alphanum / mark`.
pub(crate) const fn unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'_' | b'.' | b'!' | b'~' | b'*' | b'\'' | b'(' | b')'
        )
}

static UNRESERVED_CHARS: [bool; 256] = class_table!(unreserved);

/// RFC 3261 §25.1 `unreserved` (see `unreserved`).
pub(crate) fn is_unreserved(b: u8) -> bool {
    // 256 entries: every byte has one.
    UNRESERVED_CHARS[usize::from(b)]
}

/// Value of one hex digit.
pub(crate) fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Checks that every `%` in `s` starts an RFC 3261 §25.1 `escaped` (`"%" HEXDIG HEXDIG`) and
/// that every other byte satisfies `allowed`.
pub(crate) fn is_escaped_text(s: &str, allowed: impl Fn(u8) -> bool) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        if c == b'%' {
            let hi = b.get(i + 1).copied().and_then(hex_value);
            let lo = b.get(i + 2).copied().and_then(hex_value);
            if hi.is_none() || lo.is_none() {
                return false;
            }
            i += 3;
        } else if allowed(c) {
            i += 1;
        } else {
            return false;
        }
    }
    true
}

/// Parses `1*DIGIT` into a `u32`; `None` for an empty string, any non-digit (no sign, unlike
/// `str::parse`) or a value above 2^32-1. Leading zeros are fine (RFC 4475 §3.1.1.1 `0068`).
pub(crate) fn parse_u32(s: &str) -> Option<u32> {
    if s.is_empty() {
        return None;
    }
    let mut n: u32 = 0;
    for b in s.bytes() {
        let d = b.checked_sub(b'0').filter(|d| *d <= 9)?;
        n = n.checked_mul(10)?.checked_add(u32::from(d))?;
    }
    Some(n)
}

/// Parses `1*DIGIT` into a `usize` (Content-Length), with the same rules as [`parse_u32`].
pub(crate) fn parse_usize(s: &[u8]) -> Option<usize> {
    if s.is_empty() {
        return None;
    }
    let mut n: usize = 0;
    for &b in s {
        let d = b.checked_sub(b'0').filter(|d| *d <= 9)?;
        n = n.checked_mul(10)?.checked_add(usize::from(d))?;
    }
    Some(n)
}

/// `n` in decimal without leading zeros, written into `buf` (a u64 has at most 20 digits):
/// what `n.to_string()` gives, without allocating.
pub fn decimal(n: u64, buf: &mut [u8; 20]) -> &str {
    let mut at = buf.len();
    let mut rest = n;
    for slot in buf.iter_mut().rev() {
        // `rest % 10` is below 10, so the cast keeps it whole.
        *slot = b'0' + (rest % 10) as u8;
        at -= 1;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    std::str::from_utf8(buf.get(at..).unwrap_or(&[])).unwrap_or("")
}

/// `ip` in dotted decimal, written into `buf` (15 bytes hold the longest): what
/// `ip.to_string()` gives, without allocating or the formatting machinery. Most sources and
/// local addresses are IPv4, and one is written into every response (`received`) and every
/// forwarded request (Via, Record-Route), and `serve --db` writes one per stored binding.
pub fn dotted_quad(ip: std::net::Ipv4Addr, buf: &mut [u8; 15]) -> &str {
    let mut len = 0;
    let mut put = |b: u8| {
        if let Some(slot) = buf.get_mut(len) {
            *slot = b;
            len += 1;
        }
    };
    for (i, octet) in ip.octets().into_iter().enumerate() {
        if i > 0 {
            put(b'.');
        }
        // At most three digits, written directly: `decimal` is for any u64.
        if octet >= 100 {
            put(b'0' + octet / 100);
        }
        if octet >= 10 {
            put(b'0' + octet / 10 % 10);
        }
        put(b'0' + octet % 10);
    }
    std::str::from_utf8(buf.get(..len).unwrap_or(&[])).unwrap_or("")
}

/// Parses a port (`1*DIGIT`, RFC 3261 §25.1) that fits in 16 bits.
pub(crate) fn parse_port(s: &str) -> Option<u16> {
    parse_u32(s).and_then(|n| u16::try_from(n).ok())
}

/// Given `b` starting with a DQUOTE, returns the index just past the closing DQUOTE of the
/// RFC 3261 §25.1 `quoted-string`, honouring `quoted-pair` (a backslash escapes the next
/// octet). `None` when the string is unterminated (RFC 4475 §3.1.2.6 quotbal).
pub(crate) fn quoted_string_end(b: &[u8]) -> Option<usize> {
    if b.first() != Some(&b'"') {
        return None;
    }
    let mut i = 1;
    while let Some(&c) = b.get(i) {
        match c {
            b'\\' => i += 2,
            b'"' => return Some(i + 1),
            // §25.1 qdtext excludes CR and LF; after unfolding none are left in a header.
            b'\r' | b'\n' => return None,
            _ => i += 1,
        }
    }
    None
}

/// Checks an RFC 3261 §25.1 `quoted-string` body (between the quotes) for what qdtext and
/// quoted-pair allow: no raw control characters other than HTAB, and a quoted-pair only
/// escapes `%x00-09 / %x0B-0C / %x0E-7F` (RFC 4475 §3.1.1.2 escapes NUL, BEL and DEL).
pub(crate) fn is_quoted_string(s: &str) -> bool {
    let b = s.as_bytes();
    if quoted_string_end(b) != Some(b.len()) {
        return false;
    }
    let inner = b.get(1..b.len().saturating_sub(1)).unwrap_or(&[]);
    let mut i = 0;
    while let Some(&c) = inner.get(i) {
        if c == b'\\' {
            match inner.get(i + 1) {
                Some(&e) if e <= 0x7f && e != b'\r' && e != b'\n' => i += 2,
                _ => return false,
            }
        } else if c < 0x20 && c != b'\t' || c == 0x7f {
            return false;
        } else {
            i += 1;
        }
    }
    true
}

/// Byte index of the first `sep` in `s` that is outside a quoted-string (and, when `angle`,
/// outside `<...>`).
pub(crate) fn find_unquoted(s: &str, sep: u8, angle: bool) -> Option<usize> {
    let b = s.as_bytes();
    // Most values hold no quote or `<` before the separator, if any: find the first byte
    // that matters, and walk quotes and brackets only from there.
    let mut i = if angle {
        memchr::memchr3(sep, b'"', b'<', b)
    } else {
        memchr::memchr2(sep, b'"', b)
    }?;
    if b.get(i) == Some(&sep) {
        return Some(i);
    }
    let mut in_quotes = false;
    let mut in_angle = false;
    while let Some(&c) = b.get(i) {
        if in_quotes {
            match c {
                b'\\' => i += 1,
                b'"' => in_quotes = false,
                _ => {}
            }
        } else {
            match c {
                b'"' => in_quotes = true,
                b'<' if angle => in_angle = true,
                b'>' if angle => in_angle = false,
                _ if c == sep && !in_angle => return Some(i),
                _ => {}
            }
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_reject_signs_and_overflow() {
        assert_eq!(parse_u32("0068"), Some(68));
        assert_eq!(parse_u32("4294967295"), Some(u32::MAX));
        assert_eq!(parse_u32("4294967296"), None);
        assert_eq!(parse_u32("+1"), None);
        assert_eq!(parse_u32(""), None);
        assert_eq!(parse_usize(b"-999"), None);
        assert_eq!(parse_port("65536"), None);
        assert_eq!(parse_port("5060"), Some(5060));
    }

    #[test]
    fn decimals_are_to_string() {
        for n in [0, 7, 10, 70, 4_294_967_295, 1_000_000_000, u64::MAX] {
            assert_eq!(decimal(n, &mut [0; 20]), n.to_string());
        }
    }

    #[test]
    fn dotted_quads_are_to_string() {
        for ip in [
            "0.0.0.0",
            "127.0.0.1",
            "192.0.2.4",
            "10.20.100.255",
            "255.255.255.255",
        ] {
            let ip: std::net::Ipv4Addr = ip.parse().unwrap();
            assert_eq!(dotted_quad(ip, &mut [0; 15]), ip.to_string());
        }
    }

    #[test]
    fn quoted_strings() {
        assert_eq!(quoted_string_end(br#""a\"b" <x>"#), Some(6));
        assert_eq!(quoted_string_end(br#""J Rosenberg \\\""  <"#), Some(18));
        assert_eq!(quoted_string_end(br#""unterminated <sip:x>"#), None);
        assert_eq!(quoted_string_end(b"\"ends in backslash\\"), None);
        assert!(is_quoted_string("\"BEL:\\\x07 NUL:\\\x00\""));
        assert!(!is_quoted_string("\"raw\x07bel\""));
        assert!(is_quoted_string("\"Разработчик\""));
    }

    #[test]
    fn unquoted_search_skips_quotes_and_angles() {
        assert_eq!(
            find_unquoted(r#""a,b" <sip:x;a=1,2>, c"#, b',', true),
            Some(19)
        );
        assert_eq!(find_unquoted(r#"a="x;y";b"#, b';', false), Some(7));
        assert_eq!(find_unquoted("none", b',', true), None);
    }
}
