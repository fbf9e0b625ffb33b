//! Message templates: `{{ name }}` substitution and the text → wire conversion.
//!
//! A template is written as a YAML block, so it has LF line endings and no way to type the
//! CRLFs SIP needs, nor a reliable Content-Length. [`render`] supplies both: every line ending
//! becomes CRLF, the header part always ends with the empty line, and `{{content_length}}` is
//! the byte length of the rendered body.

use std::fmt;

/// Built-in: byte length of the rendered body.
pub const CONTENT_LENGTH: &str = "content_length";
/// Built-in: the digest response of a send with `auth:`.
pub const RESPONSE: &str = "response";

/// A `{{ name }}` in a template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Placeholder {
    /// The variable name, without the braces and spaces.
    pub name: String,
    /// Byte offset of the opening `{{`.
    pub start: usize,
    /// Byte offset just past the closing `}}`.
    pub end: usize,
}

/// A malformed placeholder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyntaxError {
    /// Byte offset of the offending `{{`.
    pub offset: usize,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// Every placeholder of `text`, in order. A `{{` must open a placeholder: a name of letters,
/// digits and `_` (spaces or tabs around it allowed) closed by `}}` on the same line. Being
/// strict here turns a typo such as `{{call-id}}` into an error instead of literal text on the
/// wire.
pub fn placeholders(text: &str) -> Result<Vec<Placeholder>, SyntaxError> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(i) = text[from..].find("{{") {
        let p = placeholder_at(text, from + i)?;
        from = p.end;
        out.push(p);
    }
    Ok(out)
}

/// The placeholder whose `{{` is at byte `start`.
fn placeholder_at(text: &str, start: usize) -> Result<Placeholder, SyntaxError> {
    let inner_start = start + 2;
    let line_end = text[inner_start..]
        .find('\n')
        .map_or(text.len(), |n| inner_start + n);
    let Some(close) = text[inner_start..line_end].find("}}") else {
        return Err(SyntaxError {
            offset: start,
            message: "`{{` is not closed by `}}` on the same line".to_owned(),
        });
    };
    let inner = &text[inner_start..inner_start + close];
    let name = inner.trim_matches([' ', '\t']);
    if !crate::model::is_identifier(name) {
        return Err(SyntaxError {
            offset: start,
            message: format!(
                "malformed placeholder `{{{{{inner}}}}}`: a name is letters, digits and `_`"
            ),
        });
    }
    Ok(Placeholder {
        name: name.to_owned(),
        start,
        end: inner_start + close + 2,
    })
}

/// The distinct variable names `template` uses, in order of first use. Malformed placeholders
/// are skipped here; [`placeholders`] reports them.
pub fn variables(template: &str) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    let mut from = 0;
    while let Some(i) = template[from..].find("{{") {
        match placeholder_at(template, from + i) {
            Ok(p) => {
                from = p.end;
                if !names.contains(&p.name) {
                    names.push(p.name);
                }
            }
            Err(e) => from = e.offset + 2,
        }
    }
    names
}

/// Replaces every placeholder of `text` with its value; no line-ending changes. For one-line
/// strings such as an expected header value.
pub fn substitute(text: &str, vars: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for p in placeholders(text).map_err(|e| e.message)? {
        out.push_str(&text[last..p.start]);
        match vars(&p.name) {
            Some(value) => out.push_str(&value),
            None => return Err(format!("undefined variable `{}`", p.name)),
        }
        last = p.end;
    }
    out.push_str(&text[last..]);
    Ok(out)
}

/// Renders a message template into wire bytes.
///
/// - The first empty (or whitespace-only) line separates the header part from the body.
/// - Each header line ends in CRLF, then the empty line CRLF follows. A template without an
///   empty line is a message without a body.
/// - The body keeps its text, each `\n` becoming CRLF: a YAML `|` block ends its last line
///   with a line break, so the last body line ends in CRLF; `|-` drops it.
/// - `{{content_length}}` is the byte length of the rendered body (the body may not use it);
///   every other name comes from `vars`.
pub fn render(template: &str, vars: &dyn Fn(&str) -> Option<String>) -> Result<Vec<u8>, String> {
    let text = template.replace("\r\n", "\n");
    let mut head: Vec<&str> = Vec::new();
    let mut body: &str = "";
    let mut rest = text.as_str();
    while !rest.is_empty() {
        let (line, after) = match rest.find('\n') {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, ""),
        };
        if line.trim().is_empty() {
            body = after;
            break;
        }
        head.push(line);
        rest = after;
    }
    if head.is_empty() {
        return Err("the message has no start line".to_owned());
    }

    let body = body.replace('\n', "\r\n");
    let body_vars = |name: &str| {
        if name == CONTENT_LENGTH {
            None
        } else {
            vars(name)
        }
    };
    let body = substitute(&body, &body_vars).map_err(|e| {
        if e.contains(CONTENT_LENGTH) {
            "the body cannot use `content_length`".to_owned()
        } else {
            e
        }
    })?;
    let length = body.len().to_string();
    let head_vars = |name: &str| {
        if name == CONTENT_LENGTH {
            Some(length.clone())
        } else {
            vars(name)
        }
    };

    let mut out = String::new();
    for line in head {
        out.push_str(&substitute(line, &head_vars)?);
        out.push_str("\r\n");
    }
    out.push_str("\r\n");
    out.push_str(&body);
    Ok(out.into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(name: &str) -> Option<String> {
        match name {
            "call_id" => Some("a84b4c76e66710@pc33.atlanta.example.com".into()),
            "tag" => Some("9fxced76sl".into()),
            "ip" => Some("192.0.2.101".into()),
            _ => None,
        }
    }

    fn text(bytes: Vec<u8>) -> String {
        String::from_utf8(bytes).unwrap()
    }

    #[test]
    fn message_without_body_gets_the_empty_line() {
        let t =
            "OPTIONS sip:ss1 SIP/2.0\nCall-ID: {{call_id}}\nContent-Length: {{content_length}}\n";
        assert_eq!(
            text(render(t, &vars).unwrap()),
            "OPTIONS sip:ss1 SIP/2.0\r\nCall-ID: a84b4c76e66710@pc33.atlanta.example.com\r\nContent-Length: 0\r\n\r\n"
        );
        // Same without the trailing newline, or with an explicit empty line.
        let expected = render(t, &vars).unwrap();
        assert_eq!(render(t.trim_end(), &vars).unwrap(), expected);
        assert_eq!(render(&format!("{t}\n"), &vars).unwrap(), expected);
    }

    #[test]
    fn sdp_body_and_its_content_length() {
        let t = "\
INVITE sip:bob@biloxi.example.com SIP/2.0
From: Alice <sip:alice@atlanta.example.com>;tag={{ tag }}
Content-Type: application/sdp
Content-Length: {{content_length}}

v=0
o=alice 2890844526 2890844526 IN IP4 {{ip}}
s=-
c=IN IP4 {{ip}}
t=0 0
m=audio 49172 RTP/AVP 0
a=rtpmap:0 PCMU/8000
";
        let body = "v=0\r\n\
o=alice 2890844526 2890844526 IN IP4 192.0.2.101\r\n\
s=-\r\n\
c=IN IP4 192.0.2.101\r\n\
t=0 0\r\n\
m=audio 49172 RTP/AVP 0\r\n\
a=rtpmap:0 PCMU/8000\r\n";
        assert_eq!(body.len(), 136);
        let expected = format!(
            "INVITE sip:bob@biloxi.example.com SIP/2.0\r\n\
From: Alice <sip:alice@atlanta.example.com>;tag=9fxced76sl\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 136\r\n\
\r\n{body}"
        );
        assert_eq!(text(render(t, &vars).unwrap()), expected);
        // CRLF input gives the same bytes.
        assert_eq!(
            text(render(&t.replace('\n', "\r\n"), &vars).unwrap()),
            expected
        );
    }

    #[test]
    fn body_without_final_line_break_keeps_it_off() {
        let t = "MESSAGE sip:b SIP/2.0\nContent-Length: {{content_length}}\n\nhi\nthere";
        assert_eq!(
            text(render(t, &vars).unwrap()),
            "MESSAGE sip:b SIP/2.0\r\nContent-Length: 9\r\n\r\nhi\r\nthere"
        );
    }

    #[test]
    fn whitespace_only_line_separates_the_body() {
        let t = "MESSAGE sip:b SIP/2.0\nContent-Length: {{content_length}}\n  \nx\n";
        assert_eq!(
            text(render(t, &vars).unwrap()),
            "MESSAGE sip:b SIP/2.0\r\nContent-Length: 3\r\n\r\nx\r\n"
        );
    }

    #[test]
    fn render_errors() {
        assert_eq!(
            render("A\nB: {{nope}}\n", &vars).unwrap_err(),
            "undefined variable `nope`"
        );
        assert_eq!(
            render("A\n\n{{ nope }}\n", &vars).unwrap_err(),
            "undefined variable `nope`"
        );
        assert_eq!(
            render("A\n\nlen {{content_length}}\n", &vars).unwrap_err(),
            "the body cannot use `content_length`"
        );
        assert_eq!(
            render("\nA\n", &vars).unwrap_err(),
            "the message has no start line"
        );
        assert_eq!(
            render("A {{tag\n", &vars).unwrap_err(),
            "`{{` is not closed by `}}` on the same line"
        );
    }

    #[test]
    fn values_are_inserted_verbatim() {
        let v = |_: &str| Some("a{{b}}\nc".to_owned());
        assert_eq!(
            text(render("X {{v}}\n", &v).unwrap()),
            "X a{{b}}\nc\r\n\r\n"
        );
    }

    #[test]
    fn placeholders_with_offsets_and_spaces() {
        let t = "a {{x}} b {{ y_2 }}{{\tx\t}}";
        assert_eq!(
            placeholders(t).unwrap(),
            vec![
                Placeholder {
                    name: "x".into(),
                    start: 2,
                    end: 7
                },
                Placeholder {
                    name: "y_2".into(),
                    start: 10,
                    end: 19
                },
                Placeholder {
                    name: "x".into(),
                    start: 19,
                    end: 26
                },
            ]
        );
        assert_eq!(variables(t), ["x", "y_2"]);
    }

    #[test]
    fn malformed_placeholders() {
        let e = placeholders("ok {{a}} then {{call-id}}").unwrap_err();
        assert_eq!(e.offset, 14);
        assert_eq!(
            e.message,
            "malformed placeholder `{{call-id}}`: a name is letters, digits and `_`"
        );
        assert_eq!(placeholders("{{}}").unwrap_err().offset, 0);
        assert_eq!(placeholders("x {{a\n}}").unwrap_err().offset, 2);
        // `variables` skips the bad ones and keeps the rest.
        assert_eq!(variables("{{a}} {{b-c}} {{d}} {{"), ["a", "d"]);
    }

    #[test]
    fn substitute_leaves_line_endings_alone() {
        assert_eq!(
            substitute("<{{ tag }}>\n", &vars).unwrap(),
            "<9fxced76sl>\n"
        );
        assert_eq!(
            substitute("{{zz}}", &vars).unwrap_err(),
            "undefined variable `zz`"
        );
    }
}
