//! Text renderings of a run: the ladder (one line per message) and the full transcript that
//! golden snapshots keep. The format is documented in `golden/README.md`.

use std::fmt::Write;
use std::net::SocketAddr;
use std::time::Duration;

/// One message on the wire, as the ladder shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Line {
    /// Sim time it was sent.
    pub at: Duration,
    /// Sender's host name.
    pub from: String,
    /// Receiver's host name.
    pub to: String,
    /// Sender's address (the socket it left from).
    pub from_addr: SocketAddr,
    /// Receiver's address (where it was sent to).
    pub to_addr: SocketAddr,
    /// The bytes.
    pub bytes: Vec<u8>,
    /// It never arrived (its receiver had crashed, or the link was cut).
    pub lost: bool,
}

impl Line {
    /// The start line of the message (request or status line).
    pub fn first_line(&self) -> String {
        let text = String::from_utf8_lossy(&self.bytes);
        text.lines().next().unwrap_or("").trim_end().to_owned()
    }
}

/// `12.345`: seconds and milliseconds of sim time.
pub fn seconds(at: Duration) -> String {
    let ms = at.as_millis();
    format!("{}.{:03}", ms / 1000, ms % 1000)
}

/// The ladder: `  0.011  bob -> ss2   REGISTER sips:... SIP/2.0`, names padded to align.
pub fn ladder(lines: &[Line]) -> String {
    let width = lines
        .iter()
        .map(|l| l.from.len().max(l.to.len()))
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    for (i, l) in lines.iter().enumerate() {
        let _ = writeln!(
            out,
            "F{:<3} {:>8}  {:>w$} -> {:<w$}  {}{}",
            i + 1,
            seconds(l.at),
            l.from,
            l.to,
            l.first_line(),
            if l.lost { "  (lost)" } else { "" },
            w = width
        );
    }
    out
}

/// The ladder followed by every message in full (CRLF shown as a line break; a body that is
/// not UTF-8 is shown as escaped bytes).
pub fn transcript(title: &str, seed: u64, lines: &[Line]) -> String {
    let mut out = format!("# {title}\n# seed {seed}\n\n{}", ladder(lines));
    for (i, l) in lines.iter().enumerate() {
        let _ = writeln!(
            out,
            "\n--- F{} {} {} -> {}{} ---",
            i + 1,
            seconds(l.at),
            l.from,
            l.to,
            if l.lost { " (lost)" } else { "" }
        );
        out.push_str(&printable(&l.bytes));
    }
    out
}

/// Message bytes as text: CRLF → LF, other control bytes and invalid UTF-8 escaped.
pub fn printable(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut out = String::with_capacity(bytes.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' | '\t' => out.push(c),
            c if c.is_control() => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => out.push(c),
        }
    }
    if !out.ends_with('\n') {
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ladder_aligns_names_and_shows_first_lines() {
        let lines = vec![
            Line {
                at: Duration::from_millis(1),
                from: "bob".into(),
                to: "ss2".into(),
                from_addr: "192.0.2.201:5060".parse().unwrap(),
                to_addr: "192.0.2.222:5060".parse().unwrap(),
                bytes: b"REGISTER sip:x SIP/2.0\r\nCSeq: 1 REGISTER\r\n\r\n".to_vec(),
                lost: false,
            },
            Line {
                at: Duration::from_millis(12),
                from: "ss2".into(),
                to: "bob".into(),
                from_addr: "192.0.2.222:5060".parse().unwrap(),
                to_addr: "192.0.2.201:5060".parse().unwrap(),
                bytes: b"SIP/2.0 200 OK\r\n\r\n".to_vec(),
                lost: false,
            },
        ];
        assert_eq!(
            ladder(&lines),
            "F1      0.001  bob -> ss2  REGISTER sip:x SIP/2.0\n\
             F2      0.012  ss2 -> bob  SIP/2.0 200 OK\n"
        );
        let mut lines = lines;
        lines[0].lost = true;
        assert!(ladder(&lines)
            .starts_with("F1      0.001  bob -> ss2  REGISTER sip:x SIP/2.0  (lost)\n"));
    }

    #[test]
    fn printable_turns_crlf_into_lf_and_escapes_nul() {
        assert_eq!(printable(b"a\r\nb\x00c\r\n"), "a\nb\\x00c\n");
    }
}
