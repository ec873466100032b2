//! Decodes one benchmark input N times, for an instruction count that the
//! load of a shared machine does not move (criterion's timings do):
//!
//! ```sh
//! cargo build --profile bench -p benches-peers --example icount
//! valgrind --tool=cachegrind --cache-sim=no --cachegrind-out-file=/dev/null \
//!     target/release/examples/icount nginx_get_root decode 10001
//! ```
//!
//! Arguments: an input name (a benchmark group, e.g. `apache_get_root`),
//! `decode` or `walk`, and a count. Instructions per request: the count at
//! N + 1 minus the count at 1, over N.

use std::hint::black_box;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [name, what, count] = &args[..] else {
        return ExitCode::from(2);
    };
    let Some(input) = benches_peers::inputs()
        .into_iter()
        .find(|i| &i.name == name)
    else {
        return ExitCode::from(2);
    };
    let contender = match what.as_str() {
        "decode" => benches_peers::scgi_proto,
        "walk" => benches_peers::scgi_proto_walk,
        _ => return ExitCode::from(2),
    };
    let Ok(count) = count.parse::<usize>() else {
        return ExitCode::from(2);
    };
    let mut headers = 0;
    for _ in 0..count {
        headers += contender(black_box(&input.scgi)).headers;
    }
    black_box(headers);
    ExitCode::SUCCESS
}
