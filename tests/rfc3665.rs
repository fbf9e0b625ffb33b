//! Every RFC 3665 flow in `rfc3665/` runs in the simulator, passes every step, and produces
//! exactly the trace its golden snapshot in `golden/` holds.

use trapezoid_scenarios::{run_file, RunOptions};

#[test]
fn rfc3665_flows_pass_and_match_their_goldens() {
    let mut count = 0;
    insta::glob!("../rfc3665", "*.yaml", |path| {
        count += 1;
        let outcome = run_file(path, &RunOptions::default()).unwrap_or_else(|e| panic!("{e}"));
        if let Some(report) = outcome.report() {
            panic!("{report}");
        }
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        let mut settings = insta::Settings::clone_current();
        settings.set_snapshot_path(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("golden/rfc3665"),
        );
        settings.set_prepend_module_to_snapshot(false);
        settings.set_input_file(path);
        settings.set_omit_expression(true);
        settings.remove_snapshot_suffix();
        settings.bind(|| insta::assert_snapshot!(name, outcome.transcript()));
    });
    assert!(
        count >= 5,
        "expected the five registration flows, found {count}"
    );
}
