//! Errors that point into the scenario file, and the small locator that finds where a key lives.
//!
//! serde_yaml reports a position for syntax and type errors, but the checks that need the
//! whole scenario (an unknown host, a variable used before it is captured) run after
//! deserialisation, when positions are gone. serde_yaml 0.9 has no spanned values, so those
//! checks find their position again by scanning the text: [`locate`] walks the block structure
//! of the YAML (keys and `- ` items by indentation) along a path such as
//! `steps[2].expect.at`. It only needs to be good enough to put the cursor on the right line;
//! when it cannot follow the path (flow style, odd layouts) it stops at the deepest thing it
//! found, so an error always has a usable position.

use std::fmt;

/// A place in the scenario file, 1-based like editors and compilers show it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Position {
    /// Line, from 1.
    pub line: usize,
    /// Column in characters, from 1.
    pub column: usize,
}

impl Position {
    /// The start of the file: where an error goes when nothing better is known.
    pub const START: Position = Position { line: 1, column: 1 };
}

impl Default for Position {
    fn default() -> Self {
        Position::START
    }
}

/// Something wrong with a scenario, at a place in its file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScenarioError {
    /// The file name as given to the parser (shown as is).
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// What is wrong, without the position.
    pub message: String,
}

impl ScenarioError {
    /// An error at `at` in `file`.
    pub fn new(file: &str, at: Position, message: impl Into<String>) -> Self {
        ScenarioError {
            file: file.to_owned(),
            line: at.line,
            column: at.column,
            message: message.into(),
        }
    }

    /// Converts a serde_yaml error, moving its position out of the message (serde_yaml appends
    /// ` at line L column C`, which would repeat what the `FILE:LINE:COLUMN:` prefix says).
    pub fn from_yaml(file: &str, err: &serde_yaml::Error) -> Self {
        let text = err.to_string();
        match err.location() {
            Some(loc) => {
                let suffix = format!(" at line {} column {}", loc.line(), loc.column());
                let message = text.replacen(&suffix, "", 1);
                let at = Position {
                    line: loc.line().max(1),
                    column: loc.column().max(1),
                };
                ScenarioError::new(file, at, message)
            }
            None => ScenarioError::new(file, Position::START, text),
        }
    }

    /// Where the error is.
    pub fn position(&self) -> Position {
        Position {
            line: self.line,
            column: self.column,
        }
    }
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file, self.line, self.column, self.message
        )
    }
}

impl std::error::Error for ScenarioError {}

/// One step of a path into the YAML document.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Seg<'a> {
    /// A mapping key.
    Key(&'a str),
    /// The n-th (0-based) item of a sequence.
    Index(usize),
}

/// One structural token of a line: a `- ` sequence marker or the start of a node (usually a
/// `key:`). A line `  - send:` gives two: the dash at column 2 and `send:` at column 4, which
/// is what makes items and their keys nest by column alone.
#[derive(Clone, Copy, Debug)]
struct Entry {
    /// 0-based line.
    line: usize,
    /// 0-based byte offset in the line (indentation is ASCII spaces, so bytes are fine here).
    col: usize,
    dash: bool,
}

/// The block-structure entries of `lines`, skipping blank lines, comments and the content of
/// block scalars (a message template may well contain lines that look like `- x` or `at: y`).
fn scan(lines: &[&str]) -> Vec<Entry> {
    let mut entries = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        let indent = line.len() - line.trim_start_matches(' ').len();
        let mut rest = &line[indent..];
        let is_marker = indent == 0 && (rest.starts_with("---") || rest.starts_with("..."));
        if rest.trim().is_empty() || rest.starts_with('#') || is_marker {
            i += 1;
            continue;
        }
        let mut col = indent;
        loop {
            if rest == "-" || rest.starts_with("- ") {
                entries.push(Entry {
                    line: i,
                    col,
                    dash: true,
                });
                let after = &rest[1..];
                let trimmed = after.trim_start_matches(' ');
                col += 1 + after.len() - trimmed.len();
                rest = trimmed;
                if rest.is_empty() || rest.starts_with('#') {
                    break;
                }
            } else {
                entries.push(Entry {
                    line: i,
                    col,
                    dash: false,
                });
                break;
            }
        }
        i += 1;
        if opens_block_scalar(rest) {
            // Block scalar content is indented past its parent node (or blank).
            while i < lines.len() {
                let l = lines[i];
                let ind = l.len() - l.trim_start_matches(' ').len();
                if l.trim().is_empty() || ind > col {
                    i += 1;
                } else {
                    break;
                }
            }
        }
    }
    entries
}

/// Whether a node's text ends in a block scalar indicator (`key: |`, `- >-`, `key: |2 # c`).
fn opens_block_scalar(rest: &str) -> bool {
    let no_comment = match rest.find(" #") {
        Some(i) => &rest[..i],
        None => rest,
    };
    let t = no_comment.trim_end();
    let token = t.rsplit(' ').next().unwrap_or("");
    let mut chars = token.chars();
    let indicator = matches!(chars.next(), Some('|' | '>'))
        && chars.all(|c| c.is_ascii_digit() || c == '+' || c == '-');
    if !indicator {
        return false;
    }
    let before = t[..t.len() - token.len()].trim_end();
    before.is_empty() || before.ends_with(':')
}

/// If `text` starts with the mapping key `key` (plain or quoted) and its colon, the byte length
/// through the colon.
fn key_prefix(text: &str, key: &str) -> Option<usize> {
    for quote in ["", "\"", "'"] {
        let Some(after_open) = text.strip_prefix(quote) else {
            continue;
        };
        let Some(after_key) = after_open.strip_prefix(key) else {
            continue;
        };
        let Some(after_close) = after_key.strip_prefix(quote) else {
            continue;
        };
        if let Some(after_colon) = after_close.strip_prefix(':') {
            if after_colon.is_empty() || after_colon.starts_with([' ', '\t']) {
                return Some(text.len() - after_colon.len());
            }
        }
    }
    None
}

/// Byte offset → 1-based character column.
fn column_of(line: &str, byte: usize) -> usize {
    line[..byte.min(line.len())].chars().count() + 1
}

/// Finds where `path` is in the YAML `text`, then (if given) the first occurrence of `needle`
/// after it and within the node, e.g. the value `carol` of `at: carol`, or `{{nonce}}` inside
/// a message. Keys inside flow mappings (`{ regex: ... }`) are found by a text search within
/// the node. Anything that cannot be found leaves the position at the deepest node that was.
pub fn locate(text: &str, path: &[Seg<'_>], needle: Option<&str>) -> Position {
    let lines: Vec<&str> = text.lines().collect();
    let entries = scan(&lines);
    // The current node: entries [lo, hi) are its children, lines [from.0, end_line) its text,
    // and `from` is where searches within it start (just after its `key:` or `- `).
    let (mut lo, mut hi) = (0, entries.len());
    let mut end_line = lines.len();
    let mut from = (0usize, 0usize);
    let mut found: Option<(usize, usize)> = None;
    let mut rest = path;

    while let Some((seg, tail)) = rest.split_first() {
        let Some(first) = entries.get(lo).filter(|_| lo < hi) else {
            break;
        };
        let col = first.col;
        let siblings = (lo..hi).filter(|&k| entries[k].col == col);
        let hit = match *seg {
            Seg::Key(key) => siblings
                .filter(|&k| !entries[k].dash)
                .find_map(|k| key_prefix(&lines[entries[k].line][col..], key).map(|n| (k, n))),
            Seg::Index(n) => siblings.filter(|&k| entries[k].dash).nth(n).map(|k| (k, 1)),
        };
        let Some((k, len)) = hit else {
            break;
        };
        let e = entries[k];
        // A key's children are the more indented entries after it, plus `- ` items at its own
        // column (YAML lets a sequence sit at the same indentation as its key).
        let mut next = k + 1;
        while next < hi
            && (entries[next].col > e.col
                || (!e.dash && entries[next].col == e.col && entries[next].dash))
        {
            next += 1;
        }
        if next < hi {
            end_line = entries[next].line;
        }
        lo = k + 1;
        hi = next;
        from = (e.line, e.col + len);
        found = Some((e.line, e.col));
        rest = tail;
    }

    // Whatever is left is inside a flow collection or a scalar: search for the keys as text.
    for seg in rest {
        if let Seg::Key(key) = seg {
            let pattern = format!("{key}:");
            if let Some((l, c)) = search(&lines, from, end_line, &pattern, true) {
                found = Some((l, c));
                from = (l, c + pattern.len());
            }
        }
    }
    if let Some(needle) = needle {
        if let Some(at) = search(&lines, from, end_line, needle, false) {
            found = Some(at);
        }
    }
    match found {
        Some((l, c)) => Position {
            line: l + 1,
            column: column_of(lines[l], c),
        },
        None => Position::START,
    }
}

/// The first occurrence of `pattern` at or after `from` and before line `end_line`. With
/// `word`, the match must not continue an identifier on its left (so `at:` does not match
/// inside `format:`).
fn search(
    lines: &[&str],
    from: (usize, usize),
    end_line: usize,
    pattern: &str,
    word: bool,
) -> Option<(usize, usize)> {
    let end_line = end_line.max(from.0 + 1).min(lines.len());
    for (l, line) in lines.iter().enumerate().take(end_line).skip(from.0) {
        let start = if l == from.0 {
            from.1.min(line.len())
        } else {
            0
        };
        let mut offset = start;
        while let Some(i) = line.get(offset..).and_then(|s| s.find(pattern)) {
            let at = offset + i;
            let boundary = line[..at]
                .chars()
                .next_back()
                .is_none_or(|c| !(c.is_alphanumeric() || c == '_' || c == '-'));
            if !word || boundary {
                return Some((l, at));
            }
            offset = at + pattern.len();
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use Seg::{Index, Key};

    const DOC: &str = "\
name: x
hosts:
  bob:
    ua: { address: 192.0.2.1:5060 }
steps:
- send:
    from: bob
    message: |
      - not an item
      at: not a key
- expect:
    at: carol
    headers:
      To: { param: { tag: { capture: to_tag } } }
      Contact:
        - { index: 0, equals: x }
        - { count: 2 }
";

    fn at(line: usize, column: usize) -> Position {
        Position { line, column }
    }

    #[test]
    fn display_is_file_line_column_message() {
        let e = ScenarioError::new("a.yaml", at(3, 7), "unknown host `carol`");
        assert_eq!(e.to_string(), "a.yaml:3:7: unknown host `carol`");
    }

    #[test]
    fn yaml_errors_keep_their_position_once() {
        let err = serde_yaml::from_str::<u32>("\n\n  x").unwrap_err();
        let e = ScenarioError::from_yaml("f.yaml", &err);
        assert_eq!(
            e.to_string(),
            "f.yaml:3:3: invalid type: string \"x\", expected u32"
        );
        let err = serde_yaml::from_str::<serde_yaml::Value>("a: [b\n").unwrap_err();
        let e = ScenarioError::from_yaml("f.yaml", &err);
        assert_eq!((e.line, e.column), (2, 1));
        assert!(!e.message.contains("at line 2 column 1"), "{}", e.message);
    }

    #[test]
    fn finds_items_and_keys_by_indentation() {
        assert_eq!(locate(DOC, &[Key("steps")], None), at(5, 1));
        assert_eq!(locate(DOC, &[Key("steps"), Index(0)], None), at(6, 1));
        assert_eq!(locate(DOC, &[Key("steps"), Index(1)], None), at(11, 1));
        assert_eq!(
            locate(
                DOC,
                &[Key("steps"), Index(1), Key("expect"), Key("at")],
                None
            ),
            at(12, 5)
        );
        assert_eq!(locate(DOC, &[Key("hosts"), Key("bob")], None), at(3, 3));
    }

    #[test]
    fn block_scalar_content_is_not_structure() {
        // The message's `- not an item` must not count as the second step.
        assert_eq!(
            locate(DOC, &[Key("steps"), Index(1), Key("expect")], None),
            at(11, 3)
        );
    }

    #[test]
    fn needle_points_at_the_value() {
        let path = [Key("steps"), Index(1), Key("expect"), Key("at")];
        assert_eq!(locate(DOC, &path, Some("carol")), at(12, 9));
        let path = [Key("steps"), Index(0), Key("send"), Key("message")];
        assert_eq!(locate(DOC, &path, Some("at: not")), at(10, 7));
    }

    #[test]
    fn flow_keys_are_found_as_text() {
        let path = [
            Key("steps"),
            Index(1),
            Key("expect"),
            Key("headers"),
            Key("To"),
            Key("param"),
            Key("tag"),
            Key("capture"),
        ];
        assert_eq!(locate(DOC, &path, None), at(14, 29));
        let path = [
            Key("steps"),
            Index(1),
            Key("expect"),
            Key("headers"),
            Key("Contact"),
            Index(1),
            Key("count"),
        ];
        assert_eq!(locate(DOC, &path, None), at(17, 13));
    }

    #[test]
    fn missing_paths_stop_at_the_deepest_node_found() {
        let path = [Key("steps"), Index(1), Key("expect"), Key("nope")];
        assert_eq!(locate(DOC, &path, None), at(11, 3));
        assert_eq!(locate(DOC, &[Key("nope")], None), Position::START);
        assert_eq!(locate("", &[Key("steps"), Index(3)], None), Position::START);
    }

    #[test]
    fn quoted_keys_and_indented_sequences() {
        let doc = "steps:\n  - \"send\":\n      from: a\n  - wait_ms: 5\n";
        assert_eq!(locate(doc, &[Key("steps"), Index(1)], None), at(4, 3));
        let path = [Key("steps"), Index(0), Key("send"), Key("from")];
        assert_eq!(locate(doc, &path, None), at(3, 7));
    }
}
