//! Sequence diagrams of a run: one column per host, one arrow per message, as plain text for
//! a terminal, as Mermaid, or as a standalone SVG. Each renderer is a pure function of the
//! messages and the host names (the scenario's order); a message from or to a name that is
//! not among them gets a column of its own at the right.

use std::fmt::Write;
use std::str::FromStr;

use crate::ladder::{seconds, Line};

/// The kinds of diagram `trapezoid run --ladder` draws.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Columns of characters, for a terminal.
    Text,
    /// A Mermaid `sequenceDiagram`.
    Mermaid,
    /// A standalone SVG image.
    Svg,
}

impl FromStr for Format {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "text" => Ok(Format::Text),
            "mermaid" => Ok(Format::Mermaid),
            "svg" => Ok(Format::Svg),
            _ => Err(format!("`{s}`: expected text, mermaid or svg")),
        }
    }
}

/// The diagram of `lines` in `format`, with a column for each of `hosts`, in order.
pub fn render(format: Format, lines: &[Line], hosts: &[String]) -> String {
    match format {
        Format::Text => text(lines, hosts),
        Format::Mermaid => mermaid(lines, hosts),
        Format::Svg => svg(lines, hosts),
    }
}

/// The columns: `hosts`, then any other name the messages use, in order of appearance.
fn columns(lines: &[Line], hosts: &[String]) -> Vec<String> {
    let mut cols: Vec<String> = hosts.to_vec();
    for l in lines {
        for name in [&l.from, &l.to] {
            if !cols.contains(name) {
                cols.push(name.clone());
            }
        }
    }
    cols
}

/// Column of `name` (present: [`columns`] collected every name).
fn column(cols: &[String], name: &str) -> usize {
    cols.iter().position(|c| c == name).unwrap_or(0)
}

/// A message's start line with control characters shown as `\xNN`.
fn label(line: &Line) -> String {
    let mut out = String::new();
    for c in line.first_line().chars() {
        if c.is_control() {
            let _ = write!(out, "\\x{:02x}", c as u32);
        } else {
            out.push(c);
        }
    }
    out
}

/// The terminal diagram: host names on top, a lifeline (`|`) under each; per message a row
/// with its number, sim time and start line, then a row with the arrow
/// (`|------>|`, or `|---x   |` for a message that never arrived, also marked `(lost)`).
pub fn text(lines: &[Line], hosts: &[String]) -> String {
    let cols = columns(lines, hosts);
    let name_w = cols.iter().map(|c| c.chars().count()).max().unwrap_or(0);
    let spacing = (name_w + 3).max(16);
    let num_w = format!("F{}", lines.len()).len();
    let time_w = lines.iter().map(|l| seconds(l.at).len()).max().unwrap_or(5);
    let prefix = num_w + 1 + time_w + 2;
    let half = name_w / 2 + 1;
    let x = |i: usize| prefix + half + i * spacing;
    let width = x(cols.len().saturating_sub(1)) + half + 1;

    let lifelines = || {
        let mut row = vec![' '; width];
        for i in 0..cols.len() {
            row[x(i)] = '|';
        }
        row
    };
    let put = |row: &mut Vec<char>, at: usize, s: &str| {
        for (k, c) in s.chars().enumerate() {
            if at + k >= row.len() {
                row.resize(at + k + 1, ' ');
            }
            row[at + k] = c;
        }
    };
    let mut out = String::new();
    let mut emit = |row: Vec<char>| {
        let s: String = row.into_iter().collect();
        out.push_str(s.trim_end());
        out.push('\n');
    };

    let mut names = vec![' '; width];
    for (i, c) in cols.iter().enumerate() {
        let n = c.chars().count();
        put(&mut names, x(i) + 1 - n.div_ceil(2).max(1), c);
    }
    emit(names);
    emit(lifelines());
    for (n, l) in lines.iter().enumerate() {
        let (a, b) = (column(&cols, &l.from), column(&cols, &l.to));
        let mut head = lifelines();
        put(
            &mut head,
            0,
            &format!(
                "{:<num_w$} {:>time_w$}",
                format!("F{}", n + 1),
                seconds(l.at)
            ),
        );
        let lost = if l.lost { "  (lost)" } else { "" };
        put(&mut head, x(a.min(b)) + 3, &format!("{}{lost}", label(l)));
        emit(head);

        let mut arrow = lifelines();
        let (xa, xb) = (x(a), x(b));
        if a == b {
            put(&mut arrow, xa + 1, if l.lost { "-x'" } else { "<-'" });
        } else if a < b {
            let end = if l.lost { xb - 4 } else { xb - 1 };
            for cell in &mut arrow[xa + 1..end] {
                *cell = '-';
            }
            arrow[end] = if l.lost { 'x' } else { '>' };
        } else {
            let end = if l.lost { xb + 4 } else { xb + 1 };
            for cell in &mut arrow[end + 1..xa] {
                *cell = '-';
            }
            arrow[end] = if l.lost { 'x' } else { '<' };
        }
        emit(arrow);
    }
    out
}

/// Text that Mermaid shows as written: the characters that would end or split a statement
/// (`;`, `#`, `:`), angle brackets and ampersands as entity codes, control characters as
/// `\xNN`.
fn mermaid_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '#' => out.push_str("#35;"),
            ';' => out.push_str("#59;"),
            ':' => out.push_str("#58;"),
            '<' => out.push_str("#lt;"),
            '>' => out.push_str("#gt;"),
            '&' => out.push_str("#amp;"),
            '"' => out.push_str("#quot;"),
            c if c.is_control() => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

/// A Mermaid `sequenceDiagram`: a participant per host (`h1`, `h2`, ... shown under their
/// names), numbered messages labelled with sim time and start line; `->>` for a message that
/// arrived, `-x` for one that was lost.
pub fn mermaid(lines: &[Line], hosts: &[String]) -> String {
    let cols = columns(lines, hosts);
    let mut out = String::from("sequenceDiagram\n    autonumber\n");
    for (i, c) in cols.iter().enumerate() {
        let _ = writeln!(out, "    participant h{} as {}", i + 1, mermaid_escape(c));
    }
    for l in lines {
        let (a, b) = (column(&cols, &l.from) + 1, column(&cols, &l.to) + 1);
        let arrow = if l.lost { "-x" } else { "->>" };
        let lost = if l.lost { " (lost)" } else { "" };
        let text = format!("{} {}{lost}", seconds(l.at), label(l));
        let _ = writeln!(out, "    h{a}{arrow}h{b}: {}", mermaid_escape(&text));
    }
    out
}

/// Text for XML character data and attribute values.
fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// Width of one character of the SVG's 12 px monospace font (an estimate: the viewer picks
/// the font).
const CHAR_W: f64 = 7.3;
const MARGIN: f64 = 10.0;
const TOP: f64 = 60.0;
const ROW: f64 = 36.0;

/// A standalone SVG: a box with the host's name on top of a vertical lifeline per host; per
/// message a horizontal arrow, its start line above it, its number and sim time at the left.
/// A message that never arrived is a dashed red arrow that stops short, ending in a cross.
/// Sized to its content; no external resources.
pub fn svg(lines: &[Line], hosts: &[String]) -> String {
    let cols = columns(lines, hosts);
    let text_w = |s: &str| s.chars().count() as f64 * CHAR_W;
    let name_w = cols.iter().map(|c| text_w(c)).fold(0.0, f64::max);
    let spacing = (name_w + 30.0).max(150.0);
    let stamps: Vec<String> = lines
        .iter()
        .enumerate()
        .map(|(n, l)| format!("F{} {}", n + 1, seconds(l.at)))
        .collect();
    let stamp_w = stamps.iter().map(|s| text_w(s)).fold(0.0, f64::max);
    let left = MARGIN + stamp_w + 15.0;
    let x = |i: usize| left + spacing / 2.0 + i as f64 * spacing;
    let y = |n: usize| TOP + 30.0 + n as f64 * ROW;
    let bottom = y(lines.len()) - ROW + 20.0;
    let height = bottom + MARGIN;
    let labels: Vec<String> = lines
        .iter()
        .map(|l| format!("{}{}", label(l), if l.lost { " (lost)" } else { "" }))
        .collect();
    let mut width = x(cols.len().saturating_sub(1)) + spacing / 2.0 + MARGIN;
    for (l, text) in lines.iter().zip(&labels) {
        let a = column(&cols, &l.from).min(column(&cols, &l.to));
        width = width.max(x(a) + 8.0 + text_w(text) + MARGIN);
    }

    let mut out = String::new();
    let _ = writeln!(out, r#"<?xml version="1.0" encoding="UTF-8"?>"#);
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0}" height="{height:.0}" viewBox="0 0 {width:.0} {height:.0}" font-family="monospace" font-size="12">"#
    );
    out.push_str(concat!(
        "<defs>\n",
        r##"<marker id="head" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="8" markerHeight="8" orient="auto-start-reverse">"##,
        r##"<path d="M0,0 L10,5 L0,10 z" fill="#222"/></marker>"##,
        "\n</defs>\n",
    ));
    let _ = writeln!(
        out,
        r##"<rect x="0" y="0" width="{width:.0}" height="{height:.0}" fill="#fff"/>"##
    );
    for (i, c) in cols.iter().enumerate() {
        let (cx, w) = (x(i), text_w(c) + 16.0);
        let _ = writeln!(
            out,
            r##"<line class="lifeline" x1="{cx:.1}" y1="{:.1}" x2="{cx:.1}" y2="{bottom:.1}" stroke="#888"/>"##,
            TOP - 4.0
        );
        let _ = writeln!(
            out,
            r##"<rect x="{:.1}" y="{:.1}" width="{w:.1}" height="26" rx="4" fill="#eef" stroke="#446"/>"##,
            cx - w / 2.0,
            TOP - 30.0
        );
        let _ = writeln!(
            out,
            r#"<text class="host" x="{cx:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            TOP - 13.0,
            xml_escape(c)
        );
    }
    for (n, l) in lines.iter().enumerate() {
        let (a, b) = (column(&cols, &l.from), column(&cols, &l.to));
        let (xa, xb, yy) = (x(a), x(b), y(n));
        let _ = writeln!(
            out,
            r##"<text class="time" x="{MARGIN:.1}" y="{:.1}" fill="#555">{}</text>"##,
            yy + 4.0,
            xml_escape(&stamps[n])
        );
        let _ = writeln!(
            out,
            r#"<text class="label" x="{:.1}" y="{:.1}">{}</text>"#,
            xa.min(xb) + 8.0,
            yy - 6.0,
            xml_escape(&labels[n])
        );
        let style = if l.lost {
            r##"stroke="#c00" stroke-dasharray="5,3""##
        } else {
            r##"stroke="#222" marker-end="url(#head)""##
        };
        if a == b {
            let _ = writeln!(
                out,
                r#"<path class="arrow" d="M{xa:.1},{yy:.1} h30 v10 h-30" fill="none" {style}/>"#,
            );
            continue;
        }
        // A lost message stops short of its receiver and ends in a cross.
        let end = if l.lost { xa + (xb - xa) * 0.7 } else { xb };
        let _ = writeln!(
            out,
            r#"<line class="arrow" x1="{xa:.1}" y1="{yy:.1}" x2="{end:.1}" y2="{yy:.1}" {style}/>"#,
        );
        if l.lost {
            let _ = writeln!(
                out,
                r##"<path class="cross" d="M{:.1},{:.1} l10,10 m0,-10 l-10,10" stroke="#c00" stroke-width="2"/>"##,
                end - 5.0,
                yy - 5.0
            );
        }
    }
    out.push_str("</svg>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn line(ms: u64, from: &str, to: &str, first: &str, lost: bool) -> Line {
        Line {
            at: Duration::from_millis(ms),
            from: from.into(),
            to: to.into(),
            from_addr: "192.0.2.1:5060".parse().unwrap(),
            to_addr: "192.0.2.2:5060".parse().unwrap(),
            bytes: format!("{first}\r\nCSeq: 1 INVITE\r\n\r\n").into_bytes(),
            lost,
        }
    }

    fn hosts() -> Vec<String> {
        ["alice", "proxy1", "bob"].map(String::from).to_vec()
    }

    fn call() -> Vec<Line> {
        vec![
            line(
                1,
                "alice",
                "proxy1",
                "INVITE sip:bob@biloxi.example.com SIP/2.0",
                false,
            ),
            line(11, "proxy1", "alice", "SIP/2.0 100 Trying", false),
            line(
                11,
                "proxy1",
                "bob",
                "INVITE sip:bob@192.0.2.4 SIP/2.0",
                true,
            ),
            line(
                1511,
                "bob",
                "alice",
                "SIP/2.0 486 Busy; #1 <now> & \"so\"",
                false,
            ),
        ]
    }

    #[test]
    fn text_has_a_column_per_host_and_an_arrow_per_message() {
        let d = text(&call(), &hosts());
        let rows: Vec<&str> = d.lines().collect();
        assert_eq!(rows[0].split_whitespace().collect::<Vec<_>>(), hosts());
        assert_eq!(rows[1].matches('|').count(), 3, "{d}");
        // A header row then an arrow row per message.
        assert_eq!(rows.len(), 2 + 2 * call().len(), "{d}");
        let bars: Vec<usize> = rows[1].match_indices('|').map(|(i, _)| i).collect();
        // Each name is centred over its lifeline.
        for (name, bar) in hosts().iter().zip(&bars) {
            let start = rows[0].find(name.as_str()).unwrap();
            assert!(start <= *bar && *bar < start + name.len(), "{d}");
        }
        assert!(rows[2].starts_with("F1 0.001"), "{d}");
        assert!(rows[2].contains("INVITE sip:bob@biloxi.example.com SIP/2.0"));
        assert_eq!(
            &rows[3][bars[0]..=bars[1]],
            format!("|{}>|", "-".repeat(bars[1] - bars[0] - 2))
        );
        assert_eq!(
            &rows[5][bars[0]..=bars[1]],
            format!("|<{}|", "-".repeat(bars[1] - bars[0] - 2))
        );
        // Lost: marked, and the arrow stops short with an x.
        assert!(rows[6].ends_with("(lost)"), "{d}");
        assert!(
            rows[7][bars[1]..=bars[2]]
                .trim_end_matches([' ', '|'])
                .ends_with("-x"),
            "{d}"
        );
        // Arrows cross the lifelines between their ends.
        assert!(rows[9][bars[0]..=bars[2]].starts_with("|<---"), "{d}");
        assert!(!rows[9][bars[0] + 1..bars[2]].contains('|'), "{d}");
        assert!(rows[8].starts_with("F4 1.511"), "{d}");
    }

    #[test]
    fn text_adds_a_column_for_an_unknown_name() {
        let lines = vec![line(
            0,
            "alice",
            "192.0.2.9:5060",
            "OPTIONS sip:x SIP/2.0",
            false,
        )];
        let d = text(&lines, &hosts());
        assert_eq!(d.lines().nth(1).unwrap().matches('|').count(), 4, "{d}");
        assert!(d.lines().next().unwrap().ends_with("192.0.2.9:5060"), "{d}");
    }

    #[test]
    fn mermaid_has_a_participant_per_host_and_an_arrow_per_message() {
        let d = mermaid(&call(), &hosts());
        let rows: Vec<&str> = d.lines().collect();
        assert_eq!(rows[0], "sequenceDiagram");
        let participants: Vec<&str> = rows
            .iter()
            .filter(|r| r.trim_start().starts_with("participant "))
            .copied()
            .collect();
        assert_eq!(
            participants,
            [
                "    participant h1 as alice",
                "    participant h2 as proxy1",
                "    participant h3 as bob"
            ]
        );
        let arrows: Vec<&str> = rows.iter().filter(|r| r.contains(": ")).copied().collect();
        assert_eq!(arrows.len(), call().len());
        assert_eq!(
            arrows[0],
            "    h1->>h2: 0.001 INVITE sip#58;bob@biloxi.example.com SIP/2.0"
        );
        assert_eq!(arrows[1], "    h2->>h1: 0.011 SIP/2.0 100 Trying");
        assert_eq!(
            arrows[2],
            "    h2-xh3: 0.011 INVITE sip#58;bob@192.0.2.4 SIP/2.0 (lost)"
        );
        assert_eq!(
            arrows[3],
            "    h3->>h1: 1.511 SIP/2.0 486 Busy#59; #35;1 #lt;now#gt; #amp; #quot;so#quot;"
        );
        // Past the statement's own `: `, no raw character Mermaid would read as syntax.
        for a in arrows {
            let text = a.split_once(": ").unwrap().1;
            let bare = text
                .replace("#35;", "")
                .replace("#59;", "")
                .replace("#58;", "");
            let bare = ["#lt;", "#gt;", "#amp;", "#quot;"]
                .iter()
                .fold(bare, |s, e| s.replace(e, ""));
            assert!(!bare.contains([';', '#', ':', '<', '>', '"']), "{a}");
        }
    }

    #[test]
    fn svg_is_well_formed_with_a_lifeline_per_host_and_an_arrow_per_message() {
        let d = svg(&call(), &hosts());
        let doc = roxmltree::Document::parse(&d).expect("well-formed XML");
        let root = doc.root_element();
        assert_eq!(root.tag_name().name(), "svg");
        assert_eq!(
            root.tag_name().namespace(),
            Some("http://www.w3.org/2000/svg")
        );
        let class = |c: &str| {
            doc.descendants()
                .filter(|n| n.attribute("class") == Some(c))
                .collect::<Vec<_>>()
        };
        assert_eq!(class("lifeline").len(), 3);
        let names: Vec<&str> = class("host").iter().filter_map(|n| n.text()).collect();
        assert_eq!(names, hosts());
        assert_eq!(class("arrow").len(), call().len());
        assert_eq!(class("cross").len(), 1);
        let labels: Vec<&str> = class("label").iter().filter_map(|n| n.text()).collect();
        assert_eq!(labels[3], "SIP/2.0 486 Busy; #1 <now> & \"so\"");
        assert_eq!(labels[2], "INVITE sip:bob@192.0.2.4 SIP/2.0 (lost)");
        let times: Vec<&str> = class("time").iter().filter_map(|n| n.text()).collect();
        assert_eq!(times, ["F1 0.001", "F2 0.011", "F3 0.011", "F4 1.511"]);
        // No external resources: the only URL is the document's own marker.
        for n in doc.descendants() {
            for a in n.attributes() {
                assert!(!a.value().contains("http") || a.name() == "xmlns", "{a:?}");
                assert!(!a.value().contains("url(") || a.value() == "url(#head)");
            }
        }
        // Sized to content: every x is inside the width.
        let width: f64 = root.attribute("width").unwrap().parse().unwrap();
        let height: f64 = root.attribute("height").unwrap().parse().unwrap();
        for n in doc.descendants() {
            for attr in ["x", "x1", "x2"] {
                if let Some(v) = n.attribute(attr) {
                    assert!(v.parse::<f64>().unwrap() <= width, "{attr}={v}");
                }
            }
            if let Some(v) = n.attribute("y2") {
                assert!(v.parse::<f64>().unwrap() <= height);
            }
        }
        let longest = labels.iter().map(|l| l.len()).max().unwrap() as f64;
        assert!(width > longest * CHAR_W);
    }

    #[test]
    fn svg_escapes_control_characters_and_handles_no_messages() {
        let mut l = line(0, "alice", "bob", "OPTIONS sip:x SIP/2.0", false);
        l.bytes = b"OPT\x01IONS sip:x SIP/2.0\r\n\r\n".to_vec();
        let d = svg(&[l], &hosts());
        roxmltree::Document::parse(&d).expect("well-formed XML");
        assert!(d.contains(r"OPT\x01IONS"));
        let empty = svg(&[], &hosts());
        roxmltree::Document::parse(&empty).expect("well-formed XML");
        assert_eq!(text(&[], &hosts()).lines().count(), 2);
        assert_eq!(mermaid(&[], &hosts()).lines().count(), 5);
    }

    #[test]
    fn formats_parse_from_their_names() {
        assert_eq!("text".parse(), Ok(Format::Text));
        assert_eq!("mermaid".parse(), Ok(Format::Mermaid));
        assert_eq!("svg".parse(), Ok(Format::Svg));
        assert!("png".parse::<Format>().is_err());
    }
}
