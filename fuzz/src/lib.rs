//! The checks behind the `cargo fuzz` targets of `scgi-proto`.
//!
//! Each target in `fuzz_targets/` is one line that calls a function here, so
//! the same checks also run on stable as ordinary tests: `cargo test -p
//! scgi-fuzz` replays every file under `seeds/<target>/` and
//! `regressions/<target>/` through them.
//!
//! | target | function | input |
//! | --- | --- | --- |
//! | `decode` | [`decode`] | raw request bytes |
//! | `decode_split` | [`decode_split`] | a piece-size header, then raw request bytes (see [`decode_split`]) |
//! | `roundtrip` | [`roundtrip`] | a [`RoundtripInput`] built by `arbitrary` |
//! | `response` | [`response`] | a mode byte, then raw response bytes or a writer case (see [`response`]) |
//!
//! A failed check panics, which libFuzzer reports as a crash.

mod pieces;
mod request;
mod response;
mod roundtrip;

pub use request::{decode, decode_split};
pub use response::response;
pub use roundtrip::{RoundtripInput, roundtrip, roundtrip_input};

#[cfg(test)]
mod tests {
    use std::path::Path;

    /// Runs `check` on every file in `<crate>/<dir>/<target>/`; returns how
    /// many there were. A failing file is named in the panic message.
    fn replay(dir: &str, target: &str, check: fn(&[u8])) -> usize {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir).join(target);
        let Ok(entries) = std::fs::read_dir(&path) else {
            return 0;
        };
        let mut files: Vec<_> = entries.map(|e| e.expect("readable dir").path()).collect();
        files.sort();
        for file in &files {
            let bytes = std::fs::read(file).expect("readable seed");
            if std::panic::catch_unwind(|| check(&bytes)).is_err() {
                panic!("{target}: check failed on {}", file.display());
            }
        }
        files.len()
    }

    fn replay_all(target: &str, check: fn(&[u8])) {
        let seeds = replay("seeds", target, check);
        replay("regressions", target, check);
        assert!(seeds > 0, "no seeds for {target}: run fuzz/seed.sh");
    }

    #[test]
    fn decode_seeds() {
        replay_all("decode", super::decode);
    }

    #[test]
    fn decode_split_seeds() {
        replay_all("decode_split", super::decode_split);
    }

    #[test]
    fn roundtrip_seeds() {
        replay_all("roundtrip", super::roundtrip);
    }

    #[test]
    fn response_seeds() {
        replay_all("response", super::response);
    }
}
