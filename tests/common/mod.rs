//! A `trapezoid serve` process for the real-socket tests: started with a fixed seed and no
//! DNS (scenarios name example.com hosts: no query may leave the machine), ready once it
//! answers an OPTIONS, killed when dropped.

// Each test binary compiles this module and uses only part of it.
#![allow(dead_code)]

pub mod rfc5118;
pub mod torture;

use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The names of the `.dat` files in `dir` (a torture archive), without `.dat`, sorted.
pub fn dat_files(dir: impl AsRef<Path>) -> Vec<String> {
    let mut files: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            e.file_name()
                .to_str()?
                .strip_suffix(".dat")
                .map(str::to_owned)
        })
        .collect();
    files.sort();
    files
}

/// The scenario files (`.yaml`) directly in `dir`, sorted.
pub fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    files
}

/// A running `trapezoid serve`.
pub struct Serve {
    child: Child,
    /// Its UDP port on 127.0.0.1.
    pub port: u16,
}

impl Serve {
    /// Starts `trapezoid serve --seed 1 --no-dns ARGS`, logging (RUST_LOG=debug: every
    /// datagram and event) into `dir/serve-PORT.log`; `port` is the UDP
    /// port on 127.0.0.1 the arguments make it listen on.
    pub fn start(port: u16, args: &[&str], dir: &Path) -> Serve {
        let log = dir.join(format!("serve-{port}.log"));
        let child = Command::new(env!("CARGO_BIN_EXE_trapezoid"))
            .args(["serve", "--seed", "1", "--no-dns"])
            .args(args)
            .env("RUST_LOG", "debug")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let serve = Serve { child, port };
        serve.wait_ready();
        serve
    }

    /// Until an OPTIONS to the element gets its 200 (bounded).
    fn wait_ready(&self) {
        wait_for_answer(self.port, |answer| answer.starts_with(b"SIP/2.0 200"));
    }

    /// Asks it to stop (SIGTERM) and waits for it to exit (bounded): its exit code, `None`
    /// if it had to be killed.
    pub fn terminate(mut self) -> Option<i32> {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        None
    }

    /// Stops it at once (SIGKILL): no shutdown code runs.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends OPTIONS to 127.0.0.1:`port` until an answer `accept`s (bounded: a peer that never
/// answers fails the test instead of hanging it).
pub fn wait_for_answer(port: u16, accept: impl Fn(&[u8]) -> bool) {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let me = socket.local_addr().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut n = 0;
    while Instant::now() < deadline {
        n += 1;
        let options = format!(
            "OPTIONS sip:127.0.0.1:{port} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKready{n}\r\n\
             Max-Forwards: 70\r\nFrom: <sip:probe@127.0.0.1>;tag=p\r\nTo: <sip:127.0.0.1:{port}>\r\n\
             Call-ID: ready{n}\r\nCSeq: {n} OPTIONS\r\nContent-Length: 0\r\n\r\n"
        );
        let _ = socket.send_to(options.as_bytes(), ("127.0.0.1", port));
        let mut buf = [0u8; 2048];
        if let Ok((len, _)) = socket.recv_from(&mut buf) {
            if accept(&buf[..len]) {
                return;
            }
        }
    }
    panic!("nothing on port {port} answered");
}

/// A real SIP peer's program (`sipp`, `kamailio`, `tshark`), found on PATH or in the
/// system's sbin folders. Without it a test says why it skips, except under CI, which
/// installs every peer (`.ci/run`): there a missing one fails the test.
pub fn peer(program: &str, package: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let found = std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/usr/local/sbin".into()])
        .map(|dir| dir.join(program))
        .find(|p| p.is_file());
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "{program} is not installed, and CI must run this test (apt-get install {package})"
        );
        eprintln!("skipped: {program} is not installed (apt-get install {package})");
    }
    found
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
