//! The decode path allocates nothing: a counting global allocator watches
//! this thread while every captured request is decoded, its headers walked
//! and looked up, and its body streamed in small reads.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use scgi_proto::{Decoder, HeadWriter, Step, encode_request};

struct Counting;

thread_local! {
    static WATCHING: Cell<bool> = const { Cell::new(false) };
    static COUNT: Cell<usize> = const { Cell::new(0) };
}

fn note() {
    // `try_with`: the allocator can run during thread teardown.
    let _ = WATCHING.try_with(|w| {
        if w.get() {
            let _ = COUNT.try_with(|c| c.set(c.get() + 1));
        }
    });
}

// SAFETY: forwards every call unchanged to the system allocator; the
// counting touches only const-initialised thread-locals, which never
// allocate.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note();
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note();
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Runs `f` and returns how many allocations it made on this thread.
fn allocations(f: impl FnOnce()) -> usize {
    COUNT.with(|c| c.set(0));
    WATCHING.with(|w| w.set(true));
    f();
    WATCHING.with(|w| w.set(false));
    COUNT.with(Cell::get)
}

/// Decodes `input` in `read`-byte pieces through a fixed buffer, the way a
/// server with a preallocated read buffer would, and touches every header.
fn decode(input: &[u8], read: usize, buf: &mut [u8]) -> (usize, u64) {
    let mut decoder = Decoder::new();
    let (mut start, mut end, mut fed) = (0, 0, 0);
    let mut checksum = 0usize;
    let mut body = 0u64;
    loop {
        match decoder.decode(&buf[start..end]).expect("valid capture") {
            Step::Partial { .. } => {
                if fed == input.len() {
                    assert!(decoder.finish().is_ok());
                    return (checksum, body);
                }
                if start > 0 {
                    buf.copy_within(start..end, 0);
                    end -= start;
                    start = 0;
                }
                let n = read.min(input.len() - fed).min(buf.len() - end);
                buf[end..end + n].copy_from_slice(&input[fed..fed + n]);
                end += n;
                fed += n;
            }
            Step::Head(head) => {
                let headers = head.headers(&buf[start..end]);
                for h in headers.iter() {
                    checksum += h.name().len() + h.value().len();
                }
                checksum += headers.get("REQUEST_METHOD").map_or(0, <[u8]>::len);
                checksum += headers.get_all("HTTP_COOKIE").count();
                checksum += headers.path().map_or(0, <[u8]>::len);
                checksum += usize::from(headers.https());
                checksum += headers.http("User-Agent").map_or(0, <[u8]>::len);
                start += head.wire_len();
            }
            Step::Body(n) => {
                body += n as u64;
                start += n;
            }
            Step::End => return (checksum, body),
        }
    }
}

#[test]
fn decoding_every_capture_allocates_nothing() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/corpus");
    let mut inputs = Vec::new();
    for fe in std::fs::read_dir(dir).unwrap() {
        let fe = fe.unwrap().path();
        if fe.is_dir() {
            for f in std::fs::read_dir(fe).unwrap() {
                let f = f.unwrap().path();
                if f.extension().is_some_and(|e| e == "scgi") {
                    inputs.push(std::fs::read(f).unwrap());
                }
            }
        }
    }
    assert!(inputs.len() > 150);
    let mut buf = vec![0u8; 70 * 1024];
    let mut total = (0, 0);
    let n = allocations(|| {
        for input in &inputs {
            for read in [1, 7, 4096, usize::MAX] {
                let (c, b) = decode(input, read, &mut buf);
                total.0 += c;
                total.1 += b;
            }
        }
    });
    assert_eq!(n, 0, "the decode path allocated {n} times");
    // The work was done: headers were seen and bodies streamed.
    assert!(total.0 > 100_000 && total.1 > 4 * 1024 * 1024, "{total:?}");
}

#[test]
fn writers_allocate_nothing() {
    let mut buf = [0u8; 512];
    let n = allocations(|| {
        let mut w = HeadWriter::new(&mut buf, 200).unwrap();
        w.header("Content-Type", "text/plain").unwrap();
        w.finish().unwrap();
        encode_request(&mut buf, 5, &[("REQUEST_METHOD", "POST")]).unwrap();
    });
    assert_eq!(n, 0);
}

#[test]
fn the_counter_sees_allocations() {
    // Guards the two tests above against a counter that never counts.
    let n = allocations(|| {
        std::hint::black_box(vec![1u8; 16]);
    });
    assert_eq!(n, 1);
}
