//! Decodes one benchmark input N times with one contender, for an
//! instruction count that the load of a shared machine does not move
//! (criterion's timings do):
//!
//! ```sh
//! cargo build --profile bench -p benches-peers --example icount
//! valgrind --tool=cachegrind --cache-sim=no --cachegrind-out-file=/dev/null \
//!     target/release/examples/icount nginx_get_root decode 10001
//! ```
//!
//! Arguments: an input name (a benchmark group, e.g. `apache_get_root`), a
//! contender and a count. Contenders: `decode` (scgi-proto), `walk`
//! (scgi-proto + walk), `scgi` (`scgi` 0.3), `tokio-scgi`, `async-scgi`.
//! Instructions per request: the count at N + 1 minus the count at 1,
//! over N. `bench/peers-icount.sh` runs every input and contender.

use std::hint::black_box;
use std::process::ExitCode;

use bytes::BytesMut;

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
    let Ok(count) = count.parse::<usize>() else {
        return ExitCode::from(2);
    };
    let contender: fn(&[u8]) -> benches_peers::Summary = match what.as_str() {
        "decode" => benches_peers::scgi_proto,
        "walk" => benches_peers::scgi_proto_walk,
        "scgi" => benches_peers::scgi_crate,
        "async-scgi" => benches_peers::async_scgi,
        "tokio-scgi" => {
            // As in the criterion benchmark, the `BytesMut` (the socket
            // read's copy) is made outside the measured work: all copies
            // first, so the count at N + 1 minus 1 still includes them;
            // `tokio-scgi-copy` counts the copies alone to subtract.
            let bufs: Vec<BytesMut> = (0..count)
                .map(|_| BytesMut::from(&input.scgi[..]))
                .collect();
            let mut headers = 0;
            for buf in bufs {
                headers += benches_peers::tokio_scgi(black_box(buf)).headers;
            }
            black_box(headers);
            return ExitCode::SUCCESS;
        }
        "tokio-scgi-copy" => {
            let bufs: Vec<BytesMut> = (0..count)
                .map(|_| BytesMut::from(&input.scgi[..]))
                .collect();
            for buf in bufs {
                drop(black_box(buf));
            }
            return ExitCode::SUCCESS;
        }
        _ => return ExitCode::from(2),
    };
    let mut headers = 0;
    for _ in 0..count {
        headers += contender(black_box(&input.scgi)).headers;
    }
    black_box(headers);
    ExitCode::SUCCESS
}
