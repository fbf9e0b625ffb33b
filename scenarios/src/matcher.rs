//! Checking a received message against an `expect` step, and showing what differed.
//!
//! The language only sees a message through [`MessageView`], so it does not depend on the
//! core's parser: the runner implements the trait over whatever parsed message it has, and
//! the tests here over a few lines of text.

use std::fmt;

use crate::model::{ExpectStep, HeaderMatcher, ParamMatcher};
use crate::template;

/// What the matchers need to know about a received message.
pub trait MessageView {
    /// The request or status line, without its line ending.
    fn start_line(&self) -> String;
    /// The status code of a response; `None` for a request.
    fn status(&self) -> Option<u16>;
    /// The method of a request; `None` for a response.
    fn method(&self) -> Option<String>;
    /// The reason phrase of a response; `None` for a request.
    fn reason(&self) -> Option<String>;
    /// All values of a header, in order, comma lists already split (name is case-insensitive,
    /// compact forms resolved by the implementor).
    fn header_values(&self, name: &str) -> Vec<String>;
    /// A param of a value (`;name=value` after the URI/`>`), None = absent, Some(None) =
    /// present without value.
    fn header_param(&self, value: &str, name: &str) -> Option<Option<String>>;
}

/// One failed check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mismatch {
    /// The header the check was on, as the scenario spells it; `None` for the start line.
    pub header: Option<String>,
    /// What the scenario asked for, e.g. `abc`, `[1] abc`, `~/nonce="([^"]+)"/`, `(present)`,
    /// `(2 values)`, `;tag=x`, `status 200`.
    pub expected: String,
    /// What arrived, in the same notation: the value (`(absent)` when there is none), the
    /// count, the parameter, or the start line.
    pub actual: String,
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(h) = &self.header {
            write!(f, "{h}: ")?;
        }
        write!(f, "expected {}, got {}", self.expected, self.actual)
    }
}

/// Checks the expect step (status/method/reason and every header matcher in order) against
/// `msg`, rendering `{{vars}}` inside expected strings with `vars`; on success returns the
/// captures (name, value) in order.
///
/// Every check runs even after one fails, so the report shows everything that differs. In a
/// `regex`, a variable's value is inserted as literal text (escaped). `at` and `from` are not
/// checked here: which host received the message from whom is the runner's knowledge.
pub fn check(
    step: &ExpectStep,
    msg: &dyn MessageView,
    vars: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<(String, String)>, Vec<Mismatch>> {
    let mut out = Outcome::default();
    let start = msg.start_line();
    if let Some(status) = step.status {
        if msg.status() != Some(status) {
            out.miss(None, format!("status {status}"), start.clone());
        }
    }
    if let Some(method) = &step.method {
        if msg.method().as_deref() != Some(method.as_str()) {
            out.miss(None, format!("method {method}"), start.clone());
        }
    }
    if let Some(reason) = &step.reason {
        match template::substitute(reason, vars) {
            Ok(want) if msg.reason().as_deref() == Some(want.as_str()) => {}
            Ok(want) => out.miss(None, format!("reason {want}"), start.clone()),
            Err(e) => out.miss(None, format!("reason ({e})"), start.clone()),
        }
    }
    for (name, matchers) in &step.headers {
        let values = msg.header_values(name);
        for m in matchers {
            check_header(&mut out, name, m, &values, msg, vars);
        }
    }
    if out.mismatches.is_empty() {
        Ok(out.captures)
    } else {
        Err(out.mismatches)
    }
}

#[derive(Default)]
struct Outcome {
    captures: Vec<(String, String)>,
    mismatches: Vec<Mismatch>,
}

impl Outcome {
    fn miss(&mut self, header: Option<&str>, expected: String, actual: String) {
        self.mismatches.push(Mismatch {
            header: header.map(str::to_owned),
            expected,
            actual,
        });
    }
}

fn values_text(n: usize) -> String {
    if n == 1 {
        "(1 value)".to_owned()
    } else {
        format!("({n} values)")
    }
}

fn check_header(
    out: &mut Outcome,
    name: &str,
    m: &HeaderMatcher,
    values: &[String],
    msg: &dyn MessageView,
    vars: &dyn Fn(&str) -> Option<String>,
) {
    let header = Some(name);
    let failures_before = out.mismatches.len();
    let joined = values.join(", ");
    // The value that equals/regex/capture look at.
    let target: Option<&str> = match m.index {
        Some(i) => values.get(i).map(String::as_str),
        None if values.is_empty() => None,
        None => Some(joined.as_str()),
    };
    let label = |s: &str| match m.index {
        Some(i) => format!("[{i}] {s}"),
        None => s.to_owned(),
    };
    let actual = match (m.index, target) {
        (Some(i), Some(v)) => format!("[{i}] {v}"),
        (Some(i), None) => format!("(no value [{i}])"),
        (None, Some(v)) => v.to_owned(),
        (None, None) => "(absent)".to_owned(),
    };

    let want_present = m.present.or(m.absent.map(|a| !a));
    match want_present {
        // With an index, "present" means that value exists.
        Some(true) if target.is_none() => {
            out.miss(header, label("(present)"), actual.clone());
        }
        Some(false) if !values.is_empty() => {
            out.miss(header, "(absent)".into(), joined.clone());
        }
        _ => {}
    }
    if let Some(n) = m.count {
        if values.len() != n {
            out.miss(header, values_text(n), values_text(values.len()));
        }
    }
    if let Some(eq) = &m.equals {
        match template::substitute(eq, vars) {
            Ok(want) if target == Some(want.as_str()) => {}
            Ok(want) => out.miss(header, label(&want), actual.clone()),
            Err(e) => out.miss(header, label(&format!("({e})")), actual.clone()),
        }
    }
    let mut regex_value = None;
    if let Some(re) = &m.regex {
        match build_regex(re, vars) {
            Ok(rx) => match target.and_then(|t| rx.captures(t)) {
                Some(c) => {
                    // Group 1 when the regex has one, else the whole match.
                    let text = if rx.captures_len() > 1 {
                        c.get(1).map_or("", |g| g.as_str())
                    } else {
                        c.get(0).map_or("", |g| g.as_str())
                    };
                    regex_value = Some(text.to_owned());
                }
                None => out.miss(
                    header,
                    label(&format!("~/{}/", rx.as_str())),
                    actual.clone(),
                ),
            },
            Err(e) => out.miss(header, label(&format!("~/{re}/ ({e})")), actual.clone()),
        }
    }
    if !m.param.is_empty() {
        let i = m.index.unwrap_or(0);
        let prefix = match m.index {
            Some(i) => format!("[{i}] "),
            None => String::new(),
        };
        for (pname, pm) in &m.param {
            check_param(out, name, &prefix, values.get(i), pname, pm, msg, vars);
        }
    }
    if let Some(c) = &m.capture {
        let value = match &m.regex {
            Some(_) => regex_value,
            None => target.map(str::to_owned),
        };
        match value {
            Some(v) => out.captures.push((c.clone(), v)),
            // Nothing to capture: say so, unless a check above already explained why.
            None if out.mismatches.len() == failures_before => {
                out.miss(header, label("(present)"), actual.clone());
            }
            None => {}
        }
    }
}

#[allow(clippy::too_many_arguments)] // one call site; a struct would only rename the list
fn check_param(
    out: &mut Outcome,
    header: &str,
    prefix: &str,
    value: Option<&String>,
    pname: &str,
    pm: &ParamMatcher,
    msg: &dyn MessageView,
    vars: &dyn Fn(&str) -> Option<String>,
) {
    let header = Some(header);
    let want = pm.equals.as_ref().map(|e| template::substitute(e, vars));
    let expected = match (&want, pm.present) {
        (Some(Ok(w)), _) => format!("{prefix};{pname}={w}"),
        (Some(Err(e)), _) => format!("{prefix};{pname}= ({e})"),
        (None, Some(false)) => format!("{prefix};{pname} (absent)"),
        (None, _) => format!("{prefix};{pname} (present)"),
    };
    let Some(value) = value else {
        let missing = if prefix.is_empty() {
            "(absent)".to_owned()
        } else {
            format!("(no value {})", prefix.trim_end())
        };
        out.miss(header, expected, missing);
        return;
    };
    let got = msg.header_param(value, pname);
    let shown = match &got {
        None => format!("{prefix}(no ;{pname})"),
        Some(None) => format!("{prefix};{pname}"),
        Some(Some(v)) => format!("{prefix};{pname}={v}"),
    };
    let failed = match (&want, pm.present) {
        (Some(Ok(w)), _) => got.as_ref().and_then(|v| v.as_deref()) != Some(w.as_str()),
        (Some(Err(_)), _) => true,
        (None, Some(p)) => got.is_some() != p,
        (None, None) => got.is_none(),
    };
    if failed {
        out.miss(header, expected, shown);
    } else if let Some(c) = &pm.capture {
        out.captures
            .push((c.clone(), got.flatten().unwrap_or_default()));
    }
}

/// The regex with each `{{var}}` replaced by its value as literal text.
fn build_regex(re: &str, vars: &dyn Fn(&str) -> Option<String>) -> Result<regex::Regex, String> {
    let escaped = |name: &str| vars(name).map(|v| regex::escape(&v));
    let pattern = template::substitute(re, &escaped)?;
    regex::Regex::new(&pattern).map_err(|e| e.to_string())
}

/// RFC 3261 §7.3.3 compact forms (and the common extension ones), to find a header's lines
/// in the report whichever form the message used.
const COMPACT: &[(&str, &str)] = &[
    ("a", "accept-contact"),
    ("b", "referred-by"),
    ("c", "content-type"),
    ("d", "request-disposition"),
    ("e", "content-encoding"),
    ("f", "from"),
    ("i", "call-id"),
    ("j", "reject-contact"),
    ("k", "supported"),
    ("l", "content-length"),
    ("m", "contact"),
    ("o", "event"),
    ("r", "refer-to"),
    ("s", "subject"),
    ("t", "to"),
    ("u", "allow-events"),
    ("v", "via"),
    ("x", "session-expires"),
    ("y", "identity"),
];

/// Lower-case full name of a header name (compact forms expanded).
fn canonical(name: &str) -> String {
    let lower = name.trim().to_ascii_lowercase();
    COMPACT
        .iter()
        .find(|(c, _)| *c == lower)
        .map_or(lower, |(_, full)| (*full).to_owned())
}

/// A readable report of a failed expect: the expectation, then the received message with each
/// line prefixed by two spaces, except where something differed: `- ` lines say what was
/// expected and `+ ` lines show what arrived. Start-line mismatches sit on the start line;
/// header mismatches sit on that header's lines (all of them, however the header was spelt);
/// a `- ` line with no `+ ` after it, at the end of the headers, is a header that did not
/// arrive at all.
pub fn diff_report(expected: &ExpectStep, msg_text: &str, mismatches: &[Mismatch]) -> String {
    let mut out = expectation(expected);
    out.push('\n');
    if msg_text.is_empty() {
        return out;
    }
    let mut lines: Vec<&str> = msg_text
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .collect();
    if msg_text.ends_with('\n') {
        lines.pop();
    }
    let line = |out: &mut String, mark: &str, text: &str| {
        if mark == "  " && text.is_empty() {
            out.push('\n');
        } else {
            out.push_str(mark);
            out.push_str(text);
            out.push('\n');
        }
    };

    let Some((start, rest)) = lines.split_first() else {
        return out;
    };
    let start_misses: Vec<&Mismatch> = mismatches.iter().filter(|m| m.header.is_none()).collect();
    for m in &start_misses {
        line(&mut out, "- ", &m.expected);
    }
    line(
        &mut out,
        if start_misses.is_empty() { "  " } else { "+ " },
        start,
    );

    // Group header lines with their continuation lines.
    let end = rest.iter().position(|l| l.is_empty()).unwrap_or(rest.len());
    let mut groups: Vec<(String, Vec<&str>)> = Vec::new();
    for l in &rest[..end] {
        match groups.last_mut() {
            Some((_, group)) if l.starts_with([' ', '\t']) => group.push(l),
            _ => {
                let name = l.split(':').next().unwrap_or("");
                groups.push((canonical(name), vec![l]));
            }
        }
    }
    let mut shown: Vec<String> = Vec::new();
    for (canon, group) in &groups {
        let misses: Vec<&Mismatch> = mismatches
            .iter()
            .filter(|m| m.header.as_deref().is_some_and(|h| canonical(h) == *canon))
            .collect();
        if misses.is_empty() {
            for l in group {
                line(&mut out, "  ", l);
            }
            continue;
        }
        if !shown.contains(canon) {
            for m in misses {
                let h = m.header.as_deref().unwrap_or_default();
                line(&mut out, "- ", &format!("{h}: {}", m.expected));
            }
            shown.push(canon.clone());
        }
        for l in group {
            line(&mut out, "+ ", l);
        }
    }
    for m in mismatches {
        if let Some(h) = &m.header {
            if !groups.iter().any(|(canon, _)| *canon == canonical(h)) {
                line(&mut out, "- ", &format!("{h}: {}", m.expected));
            }
        }
    }
    for l in &rest[end..] {
        line(&mut out, "  ", l);
    }
    out
}

/// One line saying what an expect step waits for: `expected 200 OK from ss2 at bob`.
pub fn expectation(step: &ExpectStep) -> String {
    let mut s = String::from("expected ");
    match (step.status, &step.method) {
        (Some(status), _) => s.push_str(&status.to_string()),
        (None, Some(method)) => s.push_str(method),
        (None, None) => s.push_str("a message"),
    }
    if let Some(reason) = &step.reason {
        s.push(' ');
        s.push_str(reason);
    }
    if let Some(from) = &step.from {
        s.push_str(" from ");
        s.push_str(from);
    }
    s.push_str(" at ");
    s.push_str(&step.at);
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{parse_scenario, StepKind};

    /// A minimal message view over SIP text: enough for these tests, not a SIP parser.
    struct Text(String);

    impl Text {
        fn new(lines: &[&str]) -> Text {
            Text(lines.join("\r\n") + "\r\n")
        }

        fn headers(&self) -> Vec<(String, String)> {
            let mut out: Vec<(String, String)> = Vec::new();
            for l in self.0.split("\r\n").skip(1).take_while(|l| !l.is_empty()) {
                if l.starts_with([' ', '\t']) {
                    if let Some(last) = out.last_mut() {
                        last.1.push(' ');
                        last.1.push_str(l.trim());
                    }
                } else if let Some((n, v)) = l.split_once(':') {
                    out.push((canonical(n), v.trim().to_owned()));
                }
            }
            out
        }
    }

    /// Splits at commas outside quotes and `<>`.
    fn split_commas(v: &str) -> Vec<String> {
        let (mut out, mut cur, mut quoted, mut angle) = (Vec::new(), String::new(), false, false);
        for c in v.chars() {
            match c {
                '"' => quoted = !quoted,
                '<' if !quoted => angle = true,
                '>' if !quoted => angle = false,
                ',' if !quoted && !angle => {
                    out.push(cur.trim().to_owned());
                    cur.clear();
                    continue;
                }
                _ => {}
            }
            cur.push(c);
        }
        out.push(cur.trim().to_owned());
        out
    }

    impl MessageView for Text {
        fn start_line(&self) -> String {
            self.0.split("\r\n").next().unwrap_or("").to_owned()
        }
        fn status(&self) -> Option<u16> {
            let rest = self.start_line().strip_prefix("SIP/2.0 ")?.to_owned();
            rest.split(' ').next()?.parse().ok()
        }
        fn method(&self) -> Option<String> {
            let s = self.start_line();
            (!s.starts_with("SIP/")).then(|| s.split(' ').next().unwrap_or("").to_owned())
        }
        fn reason(&self) -> Option<String> {
            let s = self.start_line();
            let rest = s.strip_prefix("SIP/2.0 ")?;
            Some(rest.split_once(' ').map_or("", |(_, r)| r).to_owned())
        }
        fn header_values(&self, name: &str) -> Vec<String> {
            let canon = canonical(name);
            self.headers()
                .into_iter()
                .filter(|(n, _)| *n == canon)
                .flat_map(|(_, v)| split_commas(&v))
                .collect()
        }
        fn header_param(&self, value: &str, name: &str) -> Option<Option<String>> {
            let params = match value.find('>') {
                Some(i) => &value[i + 1..],
                None => value.find(';').map_or("", |i| &value[i..]),
            };
            params.split(';').skip(1).find_map(|p| {
                let (k, v) = match p.split_once('=') {
                    Some((k, v)) => (k, Some(v.trim().to_owned())),
                    None => (p, None),
                };
                k.trim().eq_ignore_ascii_case(name).then_some(v)
            })
        }
    }

    const F2: &[&str] = &[
        "SIP/2.0 401 Unauthorized",
        "Via: SIP/2.0/UDP client.biloxi.example.com:5061;branch=z9hG4bKnashds7",
        " ;received=192.0.2.201",
        "From: Bob <sips:bob@biloxi.example.com>;tag=a73kszlfl",
        "To: Bob <sips:bob@biloxi.example.com>;tag=1410948204;lr",
        "i: 1j9FpLxk3uxtm8tn@biloxi.example.com",
        "CSeq: 1 REGISTER",
        "WWW-Authenticate: Digest realm=\"atlanta.example.com\", qop=\"auth\",",
        "  nonce=\"ea9c8e88df84f1cec4341ae6cbe5a359\", opaque=\"\", stale=FALSE, algorithm=MD5",
        "Contact: <sips:bob@client.biloxi.example.com>;expires=3600",
        "Contact: <sips:bob@other.biloxi.example.com>;expires=60",
        "Content-Length: 0",
        "",
    ];

    /// The expect step of a scenario whose only step is `expect` with these extra lines.
    fn expect(extra: &str) -> ExpectStep {
        let text = format!(
            "name: t\nhosts:\n  bob: {{ ua: {{ address: 192.0.2.201:5061 }} }}\n  ss2: {{ ua: {{ address: 192.0.2.222:5061 }} }}\nvars:\n  call_id: 1j9FpLxk3uxtm8tn@biloxi.example.com\n  dot: .\nsteps:\n  - expect:\n      at: bob\n      from: ss2\n{extra}"
        );
        let s = parse_scenario("t.yaml", &text).unwrap_or_else(|e| panic!("{e}"));
        match s.steps.into_iter().next().map(|s| s.kind) {
            Some(StepKind::Expect(e)) => e,
            other => panic!("{other:?}"),
        }
    }

    fn vars(name: &str) -> Option<String> {
        match name {
            "call_id" => Some("1j9FpLxk3uxtm8tn@biloxi.example.com".into()),
            "dot" => Some(".".into()),
            _ => None,
        }
    }

    fn mismatch(header: &str, expected: &str, actual: &str) -> Mismatch {
        Mismatch {
            header: Some(header.into()).filter(|h: &String| !h.is_empty()),
            expected: expected.into(),
            actual: actual.into(),
        }
    }

    #[test]
    fn everything_matching_returns_captures_in_order() {
        let step = expect(
            r#"      status: 401
      reason: Unauthorized
      headers:
        Call-ID: "{{call_id}}"
        To: { param: { tag: { capture: to_tag }, lr: { present: true, capture: lr } } }
        WWW-Authenticate: { regex: 'nonce="([^"]+)"', capture: nonce }
        Contact:
          - { index: 1, equals: "<sips:bob@other.biloxi.example.com>;expires=60", capture: second }
          - { count: 2 }
          - { param: { expires: 3600 } }
          - { index: 1, param: { expires: { capture: exp } } }
        Via: { regex: 'received=192\.0\.2\.\d+', capture: via }
        Authorization: { absent: true }
        Expires: { present: false }
        Content-Length: 0
        CSeq: { capture: cseq }
"#,
        );
        let msg = Text::new(F2);
        assert_eq!(
            check(&step, &msg, &vars).unwrap(),
            vec![
                ("to_tag".into(), "1410948204".into()),
                ("lr".into(), "".into()),
                ("nonce".into(), "ea9c8e88df84f1cec4341ae6cbe5a359".into()),
                (
                    "second".into(),
                    "<sips:bob@other.biloxi.example.com>;expires=60".into()
                ),
                ("exp".into(), "60".into()),
                ("via".into(), "received=192.0.2.201".into()),
                ("cseq".into(), "1 REGISTER".into()),
            ]
        );
    }

    #[test]
    fn joined_values_and_requests() {
        let step = expect(
            "      method: REGISTER\n      headers:\n        Contact: \"<sip:a>, <sip:b>;q=0.5\"\n        Route: { count: 0 }\n",
        );
        let msg = Text::new(&[
            "REGISTER sip:ss2 SIP/2.0",
            "m: <sip:a>",
            "Contact: <sip:b>;q=0.5",
            "",
        ]);
        assert_eq!(check(&step, &msg, &vars), Ok(vec![]));
    }

    #[test]
    fn every_mismatch_is_collected() {
        let step = expect(
            r#"      status: 200
      reason: OK
      headers:
        Call-ID: other@biloxi.example.com
        To: { param: { tag: 12345, foo: { present: true } } }
        WWW-Authenticate: { regex: 'nonce="x{{dot}}y"' }
        Contact:
          - { index: 0, equals: "<sips:bob@client.biloxi.example.com>;expires=7200" }
          - { index: 5, capture: c5 }
          - { count: 1 }
        CSeq: { absent: true }
        Expires: { present: true }
        Route: { capture: route }
        Server: { index: 0, param: { x: y } }
        From: { index: 1, present: true }
"#,
        );
        let msg = Text::new(F2);
        assert_eq!(
            check(&step, &msg, &vars).unwrap_err(),
            vec![
                mismatch("", "status 200", "SIP/2.0 401 Unauthorized"),
                mismatch("", "reason OK", "SIP/2.0 401 Unauthorized"),
                mismatch(
                    "Call-ID",
                    "other@biloxi.example.com",
                    "1j9FpLxk3uxtm8tn@biloxi.example.com"
                ),
                mismatch("To", ";tag=12345", ";tag=1410948204"),
                mismatch("To", ";foo (present)", "(no ;foo)"),
                mismatch(
                    "WWW-Authenticate",
                    r#"~/nonce="x\.y"/"#,
                    r#"Digest realm="atlanta.example.com", qop="auth", nonce="ea9c8e88df84f1cec4341ae6cbe5a359", opaque="", stale=FALSE, algorithm=MD5"#,
                ),
                mismatch(
                    "Contact",
                    "[0] <sips:bob@client.biloxi.example.com>;expires=7200",
                    "[0] <sips:bob@client.biloxi.example.com>;expires=3600",
                ),
                mismatch("Contact", "[5] (present)", "(no value [5])"),
                mismatch("Contact", "(1 value)", "(2 values)"),
                mismatch("CSeq", "(absent)", "1 REGISTER"),
                mismatch("Expires", "(present)", "(absent)"),
                mismatch("Route", "(present)", "(absent)"),
                mismatch("Server", "[0] ;x=y", "(no value [0])"),
                mismatch("From", "[1] (present)", "(no value [1])"),
            ]
        );
    }

    #[test]
    fn undefined_variables_at_run_time_are_mismatches() {
        let step = expect("      status: 401\n      headers:\n        CSeq: \"{{call_id}}\"\n");
        let none = |_: &str| None;
        assert_eq!(
            check(&step, &Text::new(F2), &none).unwrap_err(),
            vec![mismatch(
                "CSeq",
                "(undefined variable `call_id`)",
                "1 REGISTER"
            )]
        );
    }

    #[test]
    fn mismatch_display() {
        assert_eq!(
            mismatch("To", ";tag=1", ";tag=2").to_string(),
            "To: expected ;tag=1, got ;tag=2"
        );
        assert_eq!(
            mismatch("", "status 200", "SIP/2.0 486 Busy Here").to_string(),
            "expected status 200, got SIP/2.0 486 Busy Here"
        );
    }

    #[test]
    fn report_marks_the_lines_that_differ() {
        let step = expect(
            r#"      status: 200
      headers:
        Call-ID: other@biloxi.example.com
        Via: { regex: 'rport' }
        Contact: { count: 1 }
        Expires: { present: true }
"#,
        );
        let mut lines = F2.to_vec();
        lines.extend(["v=0", "s=-"]);
        let text = Text::new(&lines);
        let mismatches = check(&step, &text, &vars).unwrap_err();
        let report = diff_report(&step, &text.0, &mismatches);
        assert_eq!(
            report,
            r#"expected 200 from ss2 at bob
- status 200
+ SIP/2.0 401 Unauthorized
- Via: ~/rport/
+ Via: SIP/2.0/UDP client.biloxi.example.com:5061;branch=z9hG4bKnashds7
+  ;received=192.0.2.201
  From: Bob <sips:bob@biloxi.example.com>;tag=a73kszlfl
  To: Bob <sips:bob@biloxi.example.com>;tag=1410948204;lr
- Call-ID: other@biloxi.example.com
+ i: 1j9FpLxk3uxtm8tn@biloxi.example.com
  CSeq: 1 REGISTER
  WWW-Authenticate: Digest realm="atlanta.example.com", qop="auth",
    nonce="ea9c8e88df84f1cec4341ae6cbe5a359", opaque="", stale=FALSE, algorithm=MD5
- Contact: (1 value)
+ Contact: <sips:bob@client.biloxi.example.com>;expires=3600
+ Contact: <sips:bob@other.biloxi.example.com>;expires=60
  Content-Length: 0
- Expires: (present)

  v=0
  s=-
"#
        );
    }

    #[test]
    fn report_without_mismatches() {
        let step = expect("      method: INVITE\n");
        let report = diff_report(&step, "BYE sip:bob SIP/2.0\r\nCSeq: 2 BYE\r\n\r\n", &[]);
        assert_eq!(
            report,
            "expected INVITE from ss2 at bob\n  BYE sip:bob SIP/2.0\n  CSeq: 2 BYE\n\n"
        );
        assert_eq!(
            diff_report(&step, "", &[]),
            "expected INVITE from ss2 at bob\n"
        );
        let step = expect("      status: 180\n      reason: Ringing\n");
        assert_eq!(
            diff_report(&step, "SIP/2.0 180 Ringing\r\n", &[]),
            "expected 180 Ringing from ss2 at bob\n  SIP/2.0 180 Ringing\n"
        );
    }
}
