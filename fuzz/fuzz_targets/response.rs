//! `cargo fuzz run response`: see `scgi_fuzz::response`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| scgi_fuzz::response(data));
