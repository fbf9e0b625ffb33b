//! The RFC 5118 archive (`tests/data/rfc5118/`) as datagrams.
//!
//! The archive's files are not wire-format SIP (see the README next to them): their lines
//! end with a bare LF, and two have no empty line after the header section. RFC 3261 §7
//! wants CRLF ("CRLF ... MUST be used"), and §7.5 the empty line. So each file becomes a
//! datagram by:
//!
//! 1. turning every LF not already preceded by CR into CRLF, in the body too (SDP lines end
//!    with CRLF as well, RFC 4566 §5);
//! 2. appending CRLF when no empty line ends the header section.
//!
//! Nothing else changes, the Content-Length values included, so three files keep a
//! Content-Length that does not match their body, and the tests apply RFC 3261 §18.3 to
//! them as to any datagram: `ipv6-in-sdp` (268 for a 251-octet body) is "Content-Length
//! Larger Than Message", a 400; `mult-ip-in-sdp` (181 for 189) and `ipv4-mapped-ipv6`
//! (236 for 245) lose their last octets ("additional bytes in the transport packet beyond
//! the end of the body ... MUST be discarded"). [`fix_content_length`] gives the message
//! the RFC meant, for a test that wants to see it processed.

use std::path::PathBuf;

/// The RFC's message names, in the order of its sections.
pub const FILES: [&str; 12] = [
    "ipv6-good",
    "ipv6-bad",
    "port-ambiguous",
    "port-unambiguous",
    "via-received-param-with-delim",
    "via-received-param-no-delim",
    "ipv6-in-sdp",
    "mult-ip-in-header",
    "mult-ip-in-sdp",
    "ipv4-mapped-ipv6",
    "ipv6-bug-abnf-3-colons",
    "ipv6-correct-abnf-2-colons",
];

/// `tests/data/rfc5118/`.
pub fn dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/rfc5118"))
}

/// The file as published.
pub fn published(name: &str) -> Vec<u8> {
    let path = dir().join(format!("{name}.dat"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The file as a datagram: CRLF line endings and an empty line after the header section.
pub fn datagram(name: &str) -> Vec<u8> {
    wire_format(&published(name))
}

/// LF to CRLF, then the empty line if it is missing (see the module's doc).
pub fn wire_format(published: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(published.len() + 64);
    let mut previous = 0u8;
    for &b in published {
        if b == b'\n' && previous != b'\r' {
            out.push(b'\r');
        }
        out.push(b);
        previous = b;
    }
    if !out.windows(4).any(|w| w == b"\r\n\r\n") {
        if !out.ends_with(b"\r\n") {
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// A datagram with its Content-Length set to the length of its body: what the RFC's
/// authors meant, where the published value is wrong.
pub fn fix_content_length(datagram: &[u8]) -> Vec<u8> {
    let end = datagram
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a header section")
        + 4;
    let (head, body) = datagram.split_at(end);
    let head = std::str::from_utf8(head).expect("an ASCII header section");
    let mut out = String::with_capacity(head.len());
    for line in head.split_inclusive("\r\n") {
        match line.split_once(':') {
            Some((name, _)) if name.trim().eq_ignore_ascii_case("Content-Length") => {
                out.push_str(&format!("Content-Length: {}\r\n", body.len()));
            }
            _ => out.push_str(line),
        }
    }
    let mut out = out.into_bytes();
    out.extend_from_slice(body);
    out
}

/// The file names found in [`dir`], sorted, without `.dat`.
pub fn files_on_disk() -> Vec<String> {
    super::dat_files(dir())
}
