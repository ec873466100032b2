//! `cargo fuzz run decode_split`: see `scgi_fuzz::decode_split`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| scgi_fuzz::decode_split(data));
