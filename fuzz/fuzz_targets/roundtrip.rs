//! `cargo fuzz run roundtrip`: see `scgi_fuzz::roundtrip_input`.
#![no_main]

libfuzzer_sys::fuzz_target!(|input: scgi_fuzz::RoundtripInput| scgi_fuzz::roundtrip_input(&input));
