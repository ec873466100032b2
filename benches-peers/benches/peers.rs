//! scgi-proto against every peer, on the same requests, in one run.
//!
//! Run: `cargo bench -p benches-peers -- --warm-up-time 1 --measurement-time 3`
//! (one group per input; filter with a group name, e.g. `nginx_get_root`).
//! Every SCGI contender and floor reports bytes per second of the whole
//! SCGI request; `httparse` of its own HTTP/1.1 text. `benches-peers/table.py`
//! turns the results into the table in BENCHMARKS.md.
#![allow(missing_docs)] // criterion's macros generate undocumented items

use benches_peers::{
    async_scgi, count_nuls, httparse_request, inputs, naive_split, scgi_crate, scgi_proto,
    scgi_proto_walk, tokio_scgi,
};
use bytes::BytesMut;
use criterion::{BatchSize, Criterion, Throughput, black_box, criterion_group, criterion_main};

fn peers(c: &mut Criterion) {
    for input in inputs() {
        let mut g = c.benchmark_group(&input.name);
        let wire = &input.scgi[..];
        let block = input.block();

        g.throughput(Throughput::Bytes(wire.len() as u64));
        g.bench_function("scgi-proto", |b| b.iter(|| scgi_proto(black_box(wire))));
        g.bench_function("scgi-proto + walk", |b| {
            b.iter(|| scgi_proto_walk(black_box(wire)));
        });
        g.bench_function("scgi 0.3", |b| b.iter(|| scgi_crate(black_box(wire))));
        // The codec takes ownership of a `BytesMut`; filling it is the
        // socket read's work, so it is done outside the timed routine.
        g.bench_function("tokio-scgi 0.2", |b| {
            b.iter_batched(|| BytesMut::from(wire), tokio_scgi, BatchSize::SmallInput);
        });
        g.bench_function("async-scgi 1.0", |b| b.iter(|| async_scgi(black_box(wire))));
        let mut pairs = Vec::with_capacity(input.scgi_headers);
        g.bench_function("floor: naive split", |b| {
            b.iter(|| naive_split(black_box(block), &mut pairs));
        });
        g.bench_function("floor: count NULs", |b| {
            b.iter(|| count_nuls(black_box(block)))
        });

        let http = &input.http[..];
        let mut fields = vec![httparse::EMPTY_HEADER; input.http_headers];
        g.throughput(Throughput::Bytes(http.len() as u64));
        g.bench_function("httparse (HTTP/1.1)", |b| {
            b.iter(|| httparse_request(black_box(http), &mut fields));
        });
        g.finish();
    }
}

criterion_group!(benches, peers);
criterion_main!(benches);
