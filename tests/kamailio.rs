//! The RFC 3665 §2 registration flows, driven over loopback against Kamailio (Debian
//! `kamailio`) set up like their element (`tests/kamailio/registrar.cfg`): the same files
//! that the simulator plays against the core hold against a registrar nobody here wrote.
//! Each flow gets a fresh Kamailio on its own port, bounded in time. Without `kamailio` the
//! test says so and passes, except when `CI` is set: CI installs it.

use std::net::{SocketAddr, UdpSocket};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use trapezoid_scenarios::{drive_file, DriveOptions};

mod common;

const CONFIG: &str = include_str!("kamailio/registrar.cfg");

fn kamailio() -> Option<PathBuf> {
    common::peer("kamailio", "kamailio")
}

/// A Kamailio process group, killed when dropped. Kamailio forks its workers: killing only
/// the main process would leave them serving the port with the old bindings, so the whole
/// group goes.
struct Kamailio(Child);

impl Drop for Kamailio {
    fn drop(&mut self) {
        let group = format!("-{}", self.0.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(bin: &Path, dir: &Path, port: u16) -> Kamailio {
    let db = dir.join("db");
    std::fs::create_dir_all(&db).unwrap();
    for table in ["version", "subscriber"] {
        let src = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/kamailio/db")
            .join(table);
        std::fs::copy(src, db.join(table)).unwrap();
    }
    let cfg = dir.join("registrar.cfg");
    std::fs::write(
        &cfg,
        CONFIG
            .replace("__PORT__", &port.to_string())
            .replace("__DB__", &db.display().to_string()),
    )
    .unwrap();
    let log = std::fs::File::create(dir.join("kamailio.log")).unwrap();
    // -DD: stay in the foreground; -E: log to stderr; -Y: its runtime files here, not in
    // /run/kamailio (which need not exist).
    let child = Command::new(bin)
        .process_group(0)
        .args(["-DD", "-E", "-f"])
        .arg(&cfg)
        .arg("-Y")
        .arg(dir)
        .arg("-P")
        .arg(dir.join("kamailio.pid"))
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let k = Kamailio(child);
    wait_ready(port);
    k
}

/// Until an OPTIONS gets any answer (the config answers 404 to everything but REGISTER).
fn wait_ready(port: u16) {
    common::wait_for_answer(port, |_| true);
}

#[test]
fn the_registration_flows_hold_against_kamailio() {
    let Some(bin) = kamailio() else { return };
    let flows = [
        "2_1_successful_new_registration.yaml",
        "2_2_update_of_contact_list.yaml",
        "2_3_request_for_current_contact_list.yaml",
        "2_4_cancellation_of_registration.yaml",
        "2_5_unsuccessful_registration.yaml",
    ];
    for (i, flow) in flows.iter().enumerate() {
        let port = 25900 + i as u16;
        let dir =
            std::env::temp_dir().join(format!("trapezoid-kamailio-{}-{i}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let k = start(&bin, &dir, port);
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("rfc3665")
            .join(flow);
        let target = SocketAddr::from(([127, 0, 0, 1], port));
        let outcome =
            drive_file(&path, &DriveOptions::new(target)).unwrap_or_else(|e| panic!("{e}"));
        drop(k);
        // Its workers went with it: the port is free again.
        assert!(
            port_free(port),
            "a Kamailio worker outlived the test on port {port}"
        );
        if let Some(report) = outcome.report() {
            let log = std::fs::read_to_string(dir.join("kamailio.log")).unwrap_or_default();
            panic!(
                "{flow} against Kamailio:\n{report}\n--- kamailio.log (tail)\n{}",
                tail(&log)
            );
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}

fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

/// Whether UDP `port` on 127.0.0.1 can be bound (nothing listens there), within a second.
fn port_free(port: u16) -> bool {
    let deadline = Instant::now() + Duration::from_secs(1);
    loop {
        if UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
