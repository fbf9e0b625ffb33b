//! Every RFC 3665 flow in `rfc3665/` and every example in `scenarios/examples/` runs in the
//! simulator, passes every step, and produces exactly the trace its golden snapshot in
//! `golden/` holds.

use trapezoid_scenarios::{run_file, RunOptions};

fn pass_and_match(path: &std::path::Path, golden: &str) {
    let outcome = run_file(path, &RunOptions::default()).unwrap_or_else(|e| panic!("{e}"));
    if let Some(report) = outcome.report() {
        panic!("{report}");
    }
    let name = path.file_stem().unwrap().to_string_lossy().into_owned();
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(golden));
    settings.set_prepend_module_to_snapshot(false);
    settings.set_input_file(path);
    settings.set_omit_expression(true);
    settings.remove_snapshot_suffix();
    settings.bind(|| insta::assert_snapshot!(name, outcome.transcript()));
}

#[test]
fn example_scenarios_pass_and_match_their_goldens() {
    let mut count = 0;
    insta::glob!("../scenarios/examples", "*.yaml", |path| {
        count += 1;
        pass_and_match(path, "golden/examples");
    });
    assert!(count >= 3, "expected the example scenarios, found {count}");
}

#[test]
fn rfc3665_flows_pass_and_match_their_goldens() {
    let mut count = 0;
    insta::glob!("../rfc3665", "*.yaml", |path| {
        count += 1;
        pass_and_match(path, "golden/rfc3665");
    });
    assert!(count >= 11, "expected the RFC 3665 flows, found {count}");
}
