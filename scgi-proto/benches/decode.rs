//! Placeholder; the decoder benchmarks land with the benchmark suite.
fn main() {}
