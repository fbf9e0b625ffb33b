//! The tutorial in docs/scenarios.md ("Writing a flow from scratch") builds
//! `scenarios/examples/tutorial_busy_then_retry.yaml` in pieces: put together they must be
//! that file, which `goldens.rs` plays against its snapshot, and the ladder the tutorial
//! shows must be the one the file gives.

use trapezoid_scenarios::{run_file, RunOptions};

const DOC: &str = include_str!("../docs/scenarios.md");
const FILE: &str = include_str!("../scenarios/examples/tutorial_busy_then_retry.yaml");

/// The tutorial section, up to the next `## ` heading.
fn tutorial() -> &'static str {
    let start = DOC
        .find("\n## Writing a flow from scratch\n")
        .expect("the tutorial section");
    let rest = &DOC[start + 1..];
    let end = rest[3..].find("\n## ").map_or(rest.len(), |i| i + 4);
    &rest[..end]
}

/// The bodies of the code blocks fenced with one of `fences`, in order.
fn blocks<'a>(text: &'a str, fences: &[&str]) -> Vec<&'a str> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("```") {
        let after = &rest[i + 3..];
        let eol = after.find('\n').unwrap();
        let lang = &after[..eol];
        let body = &after[eol + 1..];
        let end = body.find("```").expect("a closed fence");
        if fences.contains(&lang) {
            out.push(&body[..end]);
        }
        rest = &body[end + 3..];
    }
    out
}

#[test]
fn the_tutorial_pieces_make_the_example_file() {
    let pieces = blocks(tutorial(), &["yaml", "yml"]);
    assert_eq!(pieces.len(), 3, "three pieces of the scenario");
    assert_eq!(pieces.concat(), FILE);
}

#[test]
fn the_tutorial_shows_the_ladder_the_file_gives() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scenarios/examples/tutorial_busy_then_retry.yaml");
    let outcome = run_file(&path, &RunOptions::default()).unwrap();
    assert!(outcome.passed());
    let transcript = outcome.transcript();
    let ladder = transcript.split("\n\n--- F1 ").next().unwrap();
    let shown = blocks(tutorial(), &[""]);
    assert!(
        shown.iter().any(|b| b.trim_end() == ladder.trim_end()),
        "the tutorial's ladder is not the file's:\n{ladder}"
    );
}
