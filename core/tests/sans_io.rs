//! The core stays sans-IO and deterministic: no clock reads, no sockets, no async runtime,
//! no OS or thread RNG. clippy.toml bans the std calls; this test also catches them in
//! code clippy does not see (macros, cfg'd out code) and in the dependency list.

use std::path::Path;

const FORBIDDEN: &[&str] = &[
    "Instant::now",
    "SystemTime",
    "thread_rng",
    "rand::rng(",
    "OsRng",
    "getrandom",
    "tokio",
    "std::net::UdpSocket",
    "std::net::TcpStream",
    "std::thread",
];

fn scan(dir: &Path, hits: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            scan(&path, hits);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(&path).unwrap();
            for (i, line) in text.lines().enumerate() {
                let code = line.split("//").next().unwrap_or("");
                for f in FORBIDDEN {
                    if code.contains(f) {
                        hits.push(format!("{}:{}: {f}", path.display(), i + 1));
                    }
                }
            }
        }
    }
}

#[test]
fn core_sources_read_no_clock_socket_or_global_rng() {
    let mut hits = Vec::new();
    scan(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut hits,
    );
    assert!(
        hits.is_empty(),
        "the core must stay sans-IO:\n{}",
        hits.join("\n")
    );
}

#[test]
fn core_depends_on_no_runtime_or_os_rng() {
    let manifest =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml")).unwrap();
    let deps = manifest
        .split("[dependencies]")
        .nth(1)
        .unwrap()
        .split("\n[")
        .next()
        .unwrap();
    for name in [
        "tokio",
        "getrandom",
        "rand ",
        "rand=",
        "async-std",
        "mio",
        "socket2",
    ] {
        assert!(!deps.contains(name), "core must not depend on {name}");
    }
}
