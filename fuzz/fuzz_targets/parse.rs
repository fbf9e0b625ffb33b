//! `Message::parse`, `parse_stream`, `validate` and the typed views: see `trapezoid_fuzz::parse`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| trapezoid_fuzz::parse(data));
