//! Decoder and writer benchmarks on captured requests.
//!
//! Run: `cargo bench -p scgi-proto --bench decode`. Each group reports
//! bytes per second of the request (head, or head and body).
#![allow(missing_docs)] // criterion's macros generate undocumented items

use criterion::{BenchmarkId, Criterion, Throughput, black_box, criterion_group, criterion_main};
use scgi_proto::{Decoder, ResponseHead, Step};

fn capture(case: &str) -> Vec<u8> {
    let path = format!(
        "{}/tests/data/corpus/{case}.scgi",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(path).expect("capture")
}

/// Decodes a whole request from one buffer; returns a value derived from
/// every header so nothing is optimised away.
fn decode_whole(input: &[u8]) -> usize {
    let mut d = Decoder::new();
    let mut at = 0;
    let mut acc = 0;
    loop {
        match d.decode(&input[at..]) {
            Ok(Step::Head(h)) => {
                acc += h.header_count();
                at += h.wire_len();
            }
            Ok(Step::Body(n)) => at += n,
            Ok(Step::End) => return acc,
            Ok(Step::Partial { .. }) | Err(_) => unreachable!("complete, valid input"),
        }
    }
}

fn bench_decode(c: &mut Criterion) {
    let mut g = c.benchmark_group("decode");
    for case in [
        "nginx/get_root",
        "apache/get_root",
        "lighttpd/get_root",
        "nginx/many_headers",
        "nginx/long_header",
        "apache/post_form",
    ] {
        let input = capture(case);
        g.throughput(Throughput::Bytes(input.len() as u64));
        g.bench_with_input(BenchmarkId::from_parameter(case), &input, |b, input| {
            b.iter(|| decode_whole(black_box(input)));
        });
    }
    g.finish();
}

fn bench_lookup(c: &mut Criterion) {
    let input = capture("nginx/get_query");
    let mut d = Decoder::new();
    let Ok(Step::Head(head)) = d.decode(&input) else {
        unreachable!()
    };
    let mut g = c.benchmark_group("headers");
    g.bench_function("get_last_of_17", |b| {
        b.iter(|| black_box(head.headers(black_box(&input))).get("HTTP_ACCEPT"));
    });
    g.bench_function("http_user_agent", |b| {
        b.iter(|| black_box(head.headers(black_box(&input))).http("User-Agent"));
    });
    g.bench_function("iterate_all", |b| {
        b.iter(|| black_box(head.headers(black_box(&input))).iter().count());
    });
    g.finish();
}

fn bench_write(c: &mut Criterion) {
    let mut g = c.benchmark_group("write");
    let mut buf = [0u8; 256];
    g.bench_function("status_ok_text_content", |b| {
        b.iter(|| scgi_proto::status_ok_text_content(black_box(&mut buf), "text/html"));
    });
    let head = ResponseHead::new(302).headers(&[
        ("Location", "/somewhere/else"),
        ("Set-Cookie", "session=abc; Path=/; HttpOnly"),
        ("Content-Type", "text/html; charset=utf-8"),
    ]);
    g.bench_function("three_headers", |b| {
        b.iter(|| black_box(head).encode(black_box(&mut buf)));
    });
    g.finish();
}

criterion_group!(benches, bench_decode, bench_lookup, bench_write);
criterion_main!(benches);
