//! A quick timing of scgi-proto + walk and `scgi` 0.3 on every input: the
//! fastest of REPS runs of a batch of calls, in ns per call, and the ratio.
//! On a shared machine the fastest run is a steadier figure than
//! criterion's mean (another process's load only ever slows a run down),
//! so it suits comparing builds in turns; criterion's benchmark
//! (`benches/peers.rs`) remains the reported one.
//!
//! ```sh
//! cargo build --profile bench -p benches-peers --example timeit
//! target/release/examples/timeit 100            # REPS = 100, every input
//! target/release/examples/timeit 100 get_root   # inputs whose name has `get_root`
//! ```

use std::hint::black_box;
use std::io::Write;
use std::time::Instant;

use benches_peers::Summary;

/// The fastest of `reps` runs of `iters` calls, in ns per call.
fn fastest(f: fn(&[u8]) -> Summary, wire: &[u8], iters: usize, reps: usize) -> f64 {
    let mut best = f64::MAX;
    for _ in 0..reps {
        let t = Instant::now();
        for _ in 0..iters {
            black_box(f(black_box(wire)));
        }
        best = best.min(t.elapsed().as_nanos() as f64 / iters as f64);
    }
    best
}

fn main() {
    let mut args = std::env::args().skip(1);
    let reps: usize = args.next().map_or(30, |s| s.parse().expect("REPS"));
    let only = args.next();
    let mut out = std::io::stdout().lock();
    for input in benches_peers::inputs() {
        if only.as_deref().is_some_and(|o| !input.name.contains(o)) {
            continue;
        }
        let wire = &input.scgi[..];
        // About 2 MB of input per run.
        let iters = (2_000_000 / wire.len()).clamp(20, 20_000);
        let walk = fastest(benches_peers::scgi_proto_walk, wire, iters, reps);
        let scgi = fastest(benches_peers::scgi_crate, wire, (iters / 10).max(5), reps);
        writeln!(
            out,
            "{:20} walk {walk:9.1} scgi {scgi:9.1} ratio {:5.2}",
            input.name,
            scgi / walk
        )
        .expect("stdout");
    }
}
