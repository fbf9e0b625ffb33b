//! `trapezoid new`: scaffolds a scenario file that passes as soon as it is written.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// The scenario written without `--from`: one registration against an element, with
/// comments that point at the next steps. `@NAME@` becomes the scenario's name.
const TEMPLATE: &str = r#"# A scenario: the hosts, then the steps. Reference: docs/scenarios.md.
# `trapezoid run FILE` plays it and prints the ladder; `trapezoid check FILE` says pass or FAIL.
name: @NAME@
description: |
  Alice registers with a registrar that does not ask for credentials; the
  200 OK lists her binding with its expiry (RFC 3261 §10.3).
seed: 1
hosts:
  # A scripted phone: it sends what `send` steps say and receives what `expect` steps check.
  alice:
    ua: { address: 192.0.2.101:5060, host_names: [alice-pc.atlanta.example.com] }
  # The element under test: the Trapezoid core, here a registrar for one domain.
  registrar:
    element:
      address: 192.0.2.10:5060
      domains: [atlanta.example.com]
vars:
  # Drawn from the seed: the same seed gives the same values.
  call_id: { random: call_id }
  branch: { random: branch }
  tag: { random: tag }
steps:
  # Line ends become CRLF; {{content_length}} is the length of the body (none here).
  - send:
      from: alice
      to: registrar
      message: |
        REGISTER sip:atlanta.example.com SIP/2.0
        Via: SIP/2.0/UDP alice-pc.atlanta.example.com:5060;branch={{branch}}
        Max-Forwards: 70
        From: Alice <sip:alice@atlanta.example.com>;tag={{tag}}
        To: Alice <sip:alice@atlanta.example.com>
        Call-ID: {{call_id}}
        CSeq: 1 REGISTER
        Contact: <sip:alice@alice-pc.atlanta.example.com>
        Expires: 3600
        Content-Length: {{content_length}}
  # Headers are parsed and compared, not searched as text.
  - expect:
      at: alice
      from: registrar
      status: 200
      headers:
        Call-ID: "{{call_id}}"
        CSeq: 1 REGISTER
        To: { param: { tag: { present: true } } }
        Contact: "<sip:alice@alice-pc.atlanta.example.com>;expires=3600"
  # Next: `wait_ms: 1000` lets virtual time pass; a second REGISTER with CSeq 2 refreshes
  # the binding; a `ua` for Bob and an INVITE make a call.
"#;

/// The file `name` names: `NAME.yaml`, or `name` itself when it ends in `.yaml`.
fn target(name: &str) -> PathBuf {
    if name.ends_with(".yaml") {
        PathBuf::from(name)
    } else {
        PathBuf::from(format!("{name}.yaml"))
    }
}

/// A YAML double-quoted string.
fn quoted(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `text` with its top-level `name:` replaced by `name` (a block scalar's lines too);
/// comments, order and everything else stay as they were.
fn renamed(text: &str, name: &str) -> Option<String> {
    let mut out = String::with_capacity(text.len());
    let mut lines = text.split_inclusive('\n').peekable();
    let mut done = false;
    while let Some(line) = lines.next() {
        let Some(value) = line.strip_prefix("name:").filter(|_| !done) else {
            out.push_str(line);
            continue;
        };
        done = true;
        let eol = if line.ends_with("\r\n") {
            "\r\n"
        } else if line.ends_with('\n') {
            "\n"
        } else {
            ""
        };
        out.push_str(&format!("name: {}{eol}", quoted(name)));
        // A `|` or `>` value goes on in the more indented lines that follow.
        if value.trim_start().starts_with(['|', '>']) {
            while lines
                .peek()
                .is_some_and(|l| l.starts_with([' ', '\t']) || l.trim().is_empty())
            {
                lines.next();
            }
        }
    }
    done.then_some(out)
}

/// Writes the scenario; exit code 2 with one line on stderr when it cannot.
pub fn new(name: &str, from: Option<&Path>) -> ExitCode {
    match scaffold(name, from) {
        Ok(path) => {
            println!(
                "wrote {}; play it with: trapezoid run {}",
                path.display(),
                path.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

fn scaffold(name: &str, from: Option<&Path>) -> Result<PathBuf, String> {
    let path = target(name);
    let title = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .filter(|s| !s.is_empty())
        .ok_or_else(|| format!("`{name}`: no file name to write"))?;
    let text = match from {
        None => TEMPLATE.replace("@NAME@", &quoted(&title)),
        Some(src) => {
            let text = std::fs::read_to_string(src)
                .map_err(|e| format!("{}: cannot read it ({e})", src.display()))?;
            renamed(&text, &title)
                .ok_or_else(|| format!("{}: no top-level `name:` line", src.display()))?
        }
    };
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => {
                format!("{} already exists; not overwriting it", path.display())
            }
            _ => format!("{}: cannot create it ({e})", path.display()),
        })?;
    file.write_all(text.as_bytes())
        .map_err(|e| format!("{}: cannot write it ({e})", path.display()))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_end_in_yaml_once() {
        assert_eq!(target("flow"), PathBuf::from("flow.yaml"));
        assert_eq!(target("dir/flow.yaml"), PathBuf::from("dir/flow.yaml"));
    }

    #[test]
    fn only_the_top_level_name_is_renamed() {
        let text = "# c\nname: \"Old\"\nhosts:\n  a:\n    name: keep\nname: second\n";
        assert_eq!(
            renamed(text, "new \"one\"").unwrap(),
            "# c\nname: \"new \\\"one\\\"\"\nhosts:\n  a:\n    name: keep\nname: second\n"
        );
        let block = "name: |\n  Old\n  title\nseed: 1\n";
        assert_eq!(renamed(block, "x").unwrap(), "name: \"x\"\nseed: 1\n");
        assert_eq!(renamed("seed: 1\n", "x"), None);
    }
}
