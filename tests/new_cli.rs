//! `trapezoid new`: the scaffolded file passes `check` as written, a copy made with `--from`
//! passes under its new name, and an existing file is never overwritten.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn bin(dir: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_trapezoid"));
    c.current_dir(dir);
    c
}

/// A fresh folder of its own for each test.
fn temp_dir(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("trapezoid-new-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn check(dir: &Path, file: &str) -> Output {
    bin(dir).args(["check", file]).output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn the_template_passes_at_once_under_its_name() {
    let dir = temp_dir("template");
    let out = bin(&dir).args(["new", "my_flow"]).output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let file = dir.join("my_flow.yaml");
    let written = std::fs::read_to_string(&file).unwrap();
    assert!(written.contains("\nname: \"my_flow\"\n"), "{written}");
    let out = check(&dir, "my_flow.yaml");
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.starts_with("pass  my_flow.yaml  my_flow  "),
        "{stdout}"
    );
    assert!(stdout.ends_with("1 passed, 0 failed\n"), "{stdout}");

    // A NAME ending in .yaml is the path itself.
    let out = bin(&dir).args(["new", "sub.yaml"]).output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(check(&dir, "sub.yaml").status.success());
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_copy_of_an_rfc3665_flow_passes_under_its_new_name() {
    let dir = temp_dir("from");
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("rfc3665/3_2_session_establishment_through_two_proxies.yaml");
    let out = bin(&dir)
        .args(["new", "two_proxies.yaml", "--from"])
        .arg(&src)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let original = std::fs::read_to_string(&src).unwrap();
    let copy = std::fs::read_to_string(dir.join("two_proxies.yaml")).unwrap();
    // Only the name line differs.
    let changed: Vec<_> = original
        .lines()
        .zip(copy.lines())
        .filter(|(a, b)| a != b)
        .collect();
    assert_eq!(
        changed,
        [(
            "name: \"RFC 3665 §3.2 Session Establishment Through Two Proxies\"",
            "name: \"two_proxies\""
        )]
    );
    assert_eq!(original.lines().count(), copy.lines().count());
    let out = check(&dir, "two_proxies.yaml");
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("  two_proxies  "), "{stdout}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn an_existing_file_is_never_overwritten() {
    let dir = temp_dir("exists");
    std::fs::write(dir.join("taken.yaml"), "mine\n").unwrap();
    for args in [
        &["new", "taken"][..],
        &["new", "taken.yaml"],
        &[
            "new",
            "taken",
            "--from",
            concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/rfc3665/2_1_successful_new_registration.yaml"
            ),
        ],
    ] {
        let out = bin(&dir).args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = text(&out.stderr);
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.contains("taken.yaml already exists"), "{stderr}");
        assert!(out.stdout.is_empty());
    }
    assert_eq!(
        std::fs::read_to_string(dir.join("taken.yaml")).unwrap(),
        "mine\n"
    );

    // A missing --from is one line and exit 2 too, and writes nothing.
    let out = bin(&dir)
        .args(["new", "other", "--from", "missing.yaml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(text(&out.stderr).lines().count(), 1);
    assert!(!dir.join("other.yaml").exists());
    std::fs::remove_dir_all(&dir).ok();
}
