//! The element's `handle_input` on arbitrary datagrams: see `trapezoid_fuzz::handle_input`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| trapezoid_fuzz::handle_input(data));
