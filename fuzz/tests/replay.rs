//! Replays, through the targets' own bodies, what the fuzzer starts from and what it found:
//! every RFC 4475 message, the generated seeds, and the regression inputs in
//! `fuzz/regressions/TARGET/`. Runs on stable: `cargo test --manifest-path fuzz/Cargo.toml`.

use std::path::{Path, PathBuf};

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

#[test]
fn rfc4475_messages_pass_both_targets() {
    let dir = root().join("../tests/data/rfc4475");
    let all = files(&dir);
    assert_eq!(all.len(), 50, "{}", dir.display());
    for f in all {
        let data = std::fs::read(&f).unwrap();
        trapezoid_fuzz::parse(&data);
        trapezoid_fuzz::handle_input(&data);
    }
}

#[test]
fn regressions_pass() {
    for (target, run) in [
        ("parse", trapezoid_fuzz::parse as fn(&[u8])),
        ("handle_input", trapezoid_fuzz::handle_input),
    ] {
        for f in files(&root().join("regressions").join(target)) {
            println!("{}", f.display());
            run(&std::fs::read(&f).unwrap());
        }
    }
}

/// The seed files are what the generator makes now (`WRITE_SEEDS=1` rewrites them), and
/// each passes the target.
#[test]
fn seeds_are_current_and_pass() {
    let dir = root().join("seeds/handle_input");
    let write = std::env::var_os("WRITE_SEEDS").is_some();
    if write {
        std::fs::create_dir_all(&dir).unwrap();
    }
    for (name, input) in trapezoid_fuzz::seeds::seeds() {
        trapezoid_fuzz::handle_input(&input);
        let path = dir.join(name);
        if write {
            std::fs::write(&path, &input).unwrap();
        } else {
            let stored = std::fs::read(&path).unwrap_or_default();
            assert!(
                stored == input,
                "{} is stale: run with WRITE_SEEDS=1",
                path.display()
            );
        }
    }
}
