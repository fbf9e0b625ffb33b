//! The work behind the core's bench figures, counted in instructions, which unlike time do
//! not move with the machine or its load: `bench/instructions.sh` runs this under callgrind
//! (valgrind), counting only inside `Proxy::handle_input`, at two sizes and prints the
//! difference per message.
//!
//! `instructions CASE N` feeds N of a case to one element with Bob registered, from the
//! same messages as `benches/core.rs`:
//! - `invite`: N INVITEs to Bob, each forwarded with its 100 Trying;
//! - `ringing`, `answered`: the same, each followed by Bob's 180 (or 200) relayed upstream;
//! - `register`: N REGISTERs, each a new binding.
//!
//! Time moves one microsecond per message, so no timer fires: a case is that message's path
//! and nothing else. Each output is checked, so that a limit's 503 cannot stand in for the
//! work.

use std::time::Duration;

use trapezoid_core::time::Instant;

#[path = "../benches/support/mod.rs"]
mod support;

use support::*;

fn main() {
    let mut args = std::env::args().skip(1);
    let case = args.next().unwrap_or_default();
    let n: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(10_000);
    let mut p = with_bob();
    for i in 1..=n {
        let now = Instant::ZERO + Duration::from_micros(i);
        match case.as_str() {
            "register" => {
                let out = feed(&mut p, now, BOB, register(i, 1, None).as_bytes());
                expect(&out, &["SIP/2.0 200 "]);
            }
            "invite" | "ringing" | "answered" => {
                let out = feed(&mut p, now, ALICE, invite(i).as_bytes());
                expect(&out, &["SIP/2.0 100 ", "INVITE "]);
                let (code, reason, line) = match case.as_str() {
                    "ringing" => (180, "Ringing", "SIP/2.0 180 "),
                    "answered" => (200, "OK", "SIP/2.0 200 "),
                    _ => continue,
                };
                let response = answer(&out[1], code, reason, "314159");
                expect(&feed(&mut p, now, BOB, &response), &[line]);
            }
            _ => {
                eprintln!("usage: instructions invite|ringing|answered|register N");
                std::process::exit(2);
            }
        }
    }
}
