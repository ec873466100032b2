//! `cargo fuzz run decode`: see `scgi_fuzz::decode`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| scgi_fuzz::decode(data));
