#![cfg(feature = "std")]
//! The response head writer, the request encoder and the response parser.

use scgi_proto::{
    Decoder, EncodeError, HeadWriter, ResponseError, ResponseHead, ResponseParser, ResponseStep,
    Step, encode_request, encode_request_to_vec, encoded_request_len, reason_phrase,
    status_ok_text_content, write_response_head, write_status_ok_text_content,
};

fn head(status: u16, headers: &[(&str, &str)]) -> Result<Vec<u8>, EncodeError> {
    ResponseHead::new(status).headers(headers).to_vec()
}

// ---- response head writer ----

#[test]
fn spec_answer() {
    let mut out = Vec::new();
    write_status_ok_text_content(&mut out, "text/plain").unwrap();
    out.extend_from_slice(b"42");
    assert_eq!(out, b"Status: 200 OK\r\nContent-Type: text/plain\r\n\r\n42");
}

#[test]
fn status_ok_text_content_into_buffer() {
    let mut buf = [0u8; 64];
    let n = status_ok_text_content(&mut buf, "text/html").unwrap();
    assert_eq!(
        &buf[..n],
        b"Status: 200 OK\r\nContent-Type: text/html\r\n\r\n"
    );
}

#[test]
fn canonical_and_custom_reasons() {
    assert_eq!(head(404, &[]).unwrap(), b"Status: 404 Not Found\r\n\r\n");
    assert_eq!(
        head(413, &[]).unwrap(),
        b"Status: 413 Content Too Large\r\n\r\n"
    );
    assert_eq!(
        head(431, &[]).unwrap(),
        b"Status: 431 Request Header Fields Too Large\r\n\r\n"
    );
    assert_eq!(
        head(101, &[]).unwrap(),
        b"Status: 101 Switching Protocols\r\n\r\n"
    );
    assert_eq!(head(299, &[]).unwrap(), b"Status: 299 Success\r\n\r\n");
    assert_eq!(head(599, &[]).unwrap(), b"Status: 599 Server Error\r\n\r\n");
    assert_eq!(
        ResponseHead::new(200).reason("Fine").to_vec().unwrap(),
        b"Status: 200 Fine\r\n\r\n"
    );
    assert_eq!(reason_phrase(418), Some("I'm a teapot"));
    assert_eq!(head(418, &[]).unwrap(), b"Status: 418 I'm a teapot\r\n\r\n");
    assert_eq!(head(499, &[]).unwrap(), b"Status: 499 Client Error\r\n\r\n");
    assert_eq!(reason_phrase(503), Some("Service Unavailable"));
}

#[test]
fn refuses_interim_and_out_of_range_statuses() {
    for code in [0, 99, 100, 102, 103, 199, 600, 999, u16::MAX] {
        assert_eq!(
            head(code, &[]),
            Err(EncodeError::InvalidStatus { code }),
            "{code}"
        );
    }
}

#[test]
fn refuses_response_splitting() {
    let cases: &[(&str, &str, EncodeError)] = &[
        (
            "X",
            "a\r\nSet-Cookie: evil=1",
            EncodeError::InvalidValue { index: 0 },
        ),
        ("X", "a\nb", EncodeError::InvalidValue { index: 0 }),
        ("X", "a\rb", EncodeError::InvalidValue { index: 0 }),
        ("X", "a\0b", EncodeError::InvalidValue { index: 0 }),
        ("X\r\nY", "v", EncodeError::InvalidName { index: 0 }),
        ("X Y", "v", EncodeError::InvalidName { index: 0 }),
        ("X:Y", "v", EncodeError::InvalidName { index: 0 }),
        ("", "v", EncodeError::InvalidName { index: 0 }),
        ("Status", "500 Oops", EncodeError::ReservedName { index: 0 }),
        ("status", "500 Oops", EncodeError::ReservedName { index: 0 }),
    ];
    for (name, value, e) in cases {
        assert_eq!(head(200, &[(name, value)]), Err(*e), "{name:?}: {value:?}");
    }
    assert_eq!(
        head(200, &[("A", "ok"), ("B", "x\ny")]),
        Err(EncodeError::InvalidValue { index: 1 })
    );
    assert_eq!(
        ResponseHead::new(200).reason("OK\r\nX: y").to_vec(),
        Err(EncodeError::InvalidReason)
    );
}

/// Values take exactly the bytes RFC 9110's field-value and
/// `http::HeaderValue` take: HTAB, SP, visible ASCII, obs-text; every other
/// control byte (VT, DEL, ...) is refused, as CR, LF and NUL are.
#[test]
fn values_refuse_every_control_byte_but_tab() {
    for b in 0..=255u8 {
        let value = [b'a', b, b'z'];
        let mut buf = [0u8; 64];
        let mut w = HeadWriter::new(&mut buf, 200).unwrap();
        let accepted = w.header("X-Test", value).is_ok();
        let expected = b == b'\t' || (b >= b' ' && b != 0x7f);
        assert_eq!(accepted, expected, "byte {b:#04x}");
        #[cfg(feature = "http")]
        assert_eq!(
            accepted,
            http::HeaderValue::from_bytes(&value).is_ok(),
            "byte {b:#04x} against http::HeaderValue"
        );
    }
}

#[test]
fn refused_head_writes_nothing() {
    let mut out = Vec::new();
    let e = write_response_head(&mut out, 200, &[("X", "a\r\nb")]).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
    assert!(out.is_empty());
}

#[test]
fn buffer_too_small_reports_required_size() {
    let full = head(200, &[("Content-Type", "text/plain")]).unwrap();
    for size in 0..full.len() {
        let mut buf = vec![0u8; size];
        let got = ResponseHead::new(200)
            .headers(&[("Content-Type", "text/plain")])
            .encode(&mut buf);
        assert_eq!(
            got,
            Err(EncodeError::BufferTooSmall {
                required: full.len()
            })
        );
    }
    let mut small = [0u8; 4];
    let mut w = HeadWriter::new(&mut small, 200).unwrap();
    w.header("A", "b").unwrap();
    assert_eq!(
        w.finish(),
        Err(EncodeError::BufferTooSmall { required: 24 })
    );
}

/// Counts `write` calls, to prove a head goes out in one.
struct Writes(Vec<Vec<u8>>);
impl std::io::Write for Writes {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.push(buf.to_vec());
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn head_goes_out_in_one_write_small_and_large() {
    let big = "v".repeat(5000);
    for headers in [
        vec![("A", "b")],
        vec![("Set-Cookie", big.as_str()), ("X", "y")],
    ] {
        let mut w = Writes(Vec::new());
        write_response_head(&mut w, 200, &headers).unwrap();
        assert_eq!(w.0.len(), 1);
        assert_eq!(w.0[0], head(200, &headers).unwrap());
    }
}

#[test]
fn encoded_len_matches() {
    let h = ResponseHead::new(503).headers(&[("Retry-After", "5")]);
    assert_eq!(h.encoded_len().unwrap(), h.to_vec().unwrap().len());
}

// ---- request encoder ----

#[test]
fn encoder_writes_the_spec_example() {
    let wire = encode_request_to_vec(
        &[("REQUEST_METHOD", "POST"), ("REQUEST_URI", "/deepthought")],
        b"What is the answer to life?",
    )
    .unwrap();
    assert_eq!(
        wire,
        &b"70:CONTENT_LENGTH\x0027\x00SCGI\x001\x00REQUEST_METHOD\x00POST\x00REQUEST_URI\x00/deepthought\x00,What is the answer to life?"[..]
    );
}

#[test]
fn encoder_refusals() {
    let e = |h: &[(&[u8], &[u8])]| encode_request_to_vec(h, b"").unwrap_err();
    assert_eq!(e(&[(b"", b"v")]), EncodeError::InvalidName { index: 0 });
    assert_eq!(e(&[(b"A\0B", b"v")]), EncodeError::InvalidName { index: 0 });
    assert_eq!(e(&[(b"A", b"v\0")]), EncodeError::InvalidValue { index: 0 });
    assert_eq!(
        e(&[(b"CONTENT_LENGTH", b"5")]),
        EncodeError::ReservedName { index: 0 }
    );
    assert_eq!(
        e(&[(b"A", b"1"), (b"SCGI", b"1")]),
        EncodeError::ReservedName { index: 1 }
    );
    assert_eq!(
        e(&[(b"A", b"1"), (b"B", b"2"), (b"A", b"3")]),
        EncodeError::DuplicateName { index: 2 }
    );
}

#[test]
fn encoder_accepts_bytes_a_response_writer_would_not() {
    // SCGI values are raw bytes: CR, LF and non-UTF-8 are fine.
    let wire = encode_request_to_vec(&[(&b"X"[..], &b"a\r\nb\xff"[..])], b"").unwrap();
    let mut d = Decoder::new();
    let Ok(Step::Head(h)) = d.decode(&wire) else {
        panic!()
    };
    assert_eq!(h.headers(&wire).get("X"), Some(&b"a\r\nb\xff"[..]));
}

#[test]
fn encoder_buffer_too_small() {
    let headers = [("REQUEST_METHOD", "GET")];
    let need = encoded_request_len(0, &headers).unwrap();
    assert_eq!(need, 47);
    let mut buf = vec![0u8; need - 1];
    assert_eq!(
        encode_request(&mut buf, 0, &headers),
        Err(EncodeError::BufferTooSmall { required: need })
    );
    let mut buf = vec![0u8; need];
    assert_eq!(encode_request(&mut buf, 0, &headers), Ok(need));
}

// ---- response parser ----

fn parse(input: &[u8]) -> Result<ResponseStep, ResponseError> {
    ResponseParser::new().parse(input)
}

fn complete(input: &[u8]) -> scgi_proto::ParsedResponse {
    match parse(input) {
        Ok(ResponseStep::Complete(p)) => p,
        other => panic!("expected a complete head, got {other:?}"),
    }
}

#[test]
fn parses_status_header_and_body_offset() {
    let input =
        b"Status: 201 Created\r\nLocation: /x\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\n\r\nbody";
    let p = complete(input);
    let v = p.view(input);
    assert_eq!(v.status(), 201);
    assert!(v.explicit_status());
    assert_eq!(v.reason(), b"Created");
    assert_eq!(v.len(), 3);
    let cookies: Vec<&[u8]> = v.get_all("set-cookie").collect();
    assert_eq!(cookies, [&b"a=1"[..], b"b=2"]);
    assert_eq!(&input[p.head_len()..], b"body");
    let names: Vec<&str> = v.headers().map(|(n, _)| n).collect();
    assert_eq!(names, ["Location", "Set-Cookie", "Set-Cookie"]);
}

#[test]
fn parses_http_status_line_and_bare_lf() {
    let input = b"HTTP/1.1 404 Not Found\nContent-Length:  3 \n\nabc";
    let v = complete(input).view(input);
    assert_eq!(v.status(), 404);
    assert_eq!(v.reason(), b"Not Found");
    assert_eq!(v.content_length(), Some(3));
    assert_eq!(v.get("Content-Length"), Some(&b"3"[..]));
}

#[test]
fn default_statuses() {
    let input = b"Content-Type: text/plain\r\n\r\n";
    let v = complete(input).view(input);
    assert_eq!((v.status(), v.explicit_status()), (200, false));
    let input = b"Location: http://elsewhere/\r\n\r\n";
    assert_eq!(complete(input).status(), 302);
    let input = b"Status: 204\r\n\r\n";
    let v = complete(input).view(input);
    assert_eq!((v.status(), v.reason()), (204, &b""[..]));
}

#[test]
fn incremental_byte_by_byte() {
    let input = b"Status: 200 OK\r\nA: b\r\n\r\nrest";
    let mut p = ResponseParser::new();
    for end in 0..input.len() {
        match p.parse(&input[..end]).unwrap() {
            ResponseStep::Partial => assert!(end < 24),
            ResponseStep::Complete(done) => {
                assert_eq!(end, 24);
                assert_eq!(done.head_len(), 24);
                return;
            }
        }
    }
    panic!("never completed");
}

#[test]
fn parser_refusals() {
    let cases: &[(&[u8], ResponseError)] = &[
        (b"HTTP/2 200 OK\r\n\r\n", ResponseError::InvalidStatusLine),
        (b"HTTP/1.1 20 OK\r\n\r\n", ResponseError::InvalidStatusLine),
        (b"HTTP/1.1 200OK\r\n\r\n", ResponseError::InvalidStatusLine),
        (
            b"Status: abc\r\n\r\n",
            ResponseError::InvalidStatus { line: 0 },
        ),
        (
            b"Status: 099 Low\r\n\r\n",
            ResponseError::InvalidStatus { line: 0 },
        ),
        (
            b"Status: 200 OK\r\nStatus: 500 No\r\n\r\n",
            ResponseError::DuplicateStatus { line: 1 },
        ),
        (
            b"HTTP/1.0 200 OK\r\nStatus: 500 No\r\n\r\n",
            ResponseError::DuplicateStatus { line: 1 },
        ),
        (
            b"No colon here\r\n\r\n",
            ResponseError::InvalidHeader { line: 0 },
        ),
        (
            b"A: b\r\n folded\r\n\r\n",
            ResponseError::InvalidHeader { line: 1 },
        ),
        (b"A: b\rc\r\n\r\n", ResponseError::InvalidHeader { line: 0 }),
        (b"A: b\0\r\n\r\n", ResponseError::InvalidHeader { line: 0 }),
        (
            b"Bad Name: b\r\n\r\n",
            ResponseError::InvalidHeader { line: 0 },
        ),
    ];
    for (input, e) in cases {
        let mut p = ResponseParser::new();
        assert_eq!(
            p.parse(input),
            Err(*e),
            "{:?}",
            input.escape_ascii().to_string()
        );
        assert_eq!(p.parse(input), Err(*e), "sticky");
    }
}

#[test]
fn parser_size_limit() {
    let mut p = ResponseParser::with_max_head(16);
    assert_eq!(p.parse(b"A: b\r\n"), Ok(ResponseStep::Partial));
    assert_eq!(
        p.parse(b"A: b\r\nC: dddddddddddddd\r\n\r\n"),
        Err(ResponseError::HeadTooLarge { limit: 16 })
    );
}

#[test]
fn writer_output_reads_back_identically() {
    let headers = [
        ("Content-Type", "text/html; charset=utf-8"),
        ("Set-Cookie", "a=1; Path=/"),
        ("Set-Cookie", "b=2"),
        ("X-Empty", ""),
    ];
    for status in [101, 200, 204, 301, 404, 431, 503] {
        let wire = head(status, &headers).unwrap();
        let p = complete(&wire);
        let v = p.view(&wire);
        assert_eq!(p.head_len(), wire.len());
        assert_eq!(v.status(), status);
        assert_eq!(v.reason(), reason_phrase(status).unwrap().as_bytes());
        let got: Vec<(&str, &[u8])> = v.headers().collect();
        let want: Vec<(&str, &[u8])> = headers.iter().map(|(n, v)| (*n, v.as_bytes())).collect();
        assert_eq!(got, want);
    }
}

// ---- error responses ----

#[test]
fn error_response_frames_its_body() {
    for (status, detail) in [
        (400, "header #3 has an empty name"),
        (413, "body too large"),
        (431, ""),
        (500, "handler failed: ünïcode"),
    ] {
        let wire = scgi_proto::error_response(status, &detail).unwrap();
        let p = complete(&wire);
        let v = p.view(&wire);
        assert_eq!(v.status(), status);
        assert_eq!(
            v.get("Content-Type"),
            Some(&b"text/plain; charset=utf-8"[..])
        );
        let body = &wire[p.head_len()..];
        assert_eq!(v.content_length(), Some(body.len() as u64));
        let reason = reason_phrase(status).unwrap();
        assert_eq!(body, format!("{status} {reason}\n{detail}\n").as_bytes());
    }
}

#[test]
fn error_response_into_small_buffer_and_bad_status() {
    let full = scgi_proto::error_response(400, &"x").unwrap();
    let mut buf = vec![0u8; full.len() - 1];
    assert_eq!(
        scgi_proto::encode_error_response(&mut buf, 400, &"x"),
        Err(EncodeError::BufferTooSmall {
            required: full.len()
        })
    );
    assert_eq!(
        scgi_proto::error_response(100, &"x"),
        Err(EncodeError::InvalidStatus { code: 100 })
    );
}

// ---- whole responses: append_head and Framing ----

#[test]
fn append_head_takes_owned_pairs_and_frames() {
    let mut out = b"kept".to_vec();
    let owned = vec![
        ("Content-Type".to_string(), "text/plain".to_string()),
        ("X-Id".to_string(), 7.to_string()),
    ];
    scgi_proto::append_head(&mut out, 200, owned, Some(12)).unwrap();
    assert_eq!(
        out,
        b"keptStatus: 200 OK\r\nContent-Type: text/plain\r\nX-Id: 7\r\nContent-Length: 12\r\n\r\n"
    );
    let wire = &out[4..];
    let p = complete(wire);
    assert_eq!(p.view(wire).content_length(), Some(12));
}

#[test]
fn append_head_refuses_as_the_writer_does_and_appends_nothing() {
    let cases: &[(&[(&str, &str)], EncodeError)] = &[
        (&[("X", "a\r\nb")], EncodeError::InvalidValue { index: 0 }),
        (&[("Bad Name", "v")], EncodeError::InvalidName { index: 0 }),
        (
            &[("A", "1"), ("Status", "500")],
            EncodeError::ReservedName { index: 1 },
        ),
        (
            &[("content-length", "3")],
            EncodeError::ReservedName { index: 0 },
        ),
        (
            &[("Transfer-Encoding", "chunked")],
            EncodeError::ReservedName { index: 0 },
        ),
    ];
    for (headers, error) in cases {
        let mut out = b"kept".to_vec();
        assert_eq!(
            scgi_proto::append_head(&mut out, 200, headers.iter().copied(), None),
            Err(*error)
        );
        assert_eq!(out, b"kept");
    }
    let mut out = Vec::new();
    assert_eq!(
        scgi_proto::append_head(&mut out, 100, [("A", "b")], None),
        Err(EncodeError::InvalidStatus { code: 100 })
    );
    assert!(out.is_empty());
}

#[test]
fn framing_drops_bodies_for_head_and_bodiless_statuses() {
    use scgi_proto::Framing;
    for status in [101, 204, 304] {
        for head in [false, true] {
            assert_eq!(
                Framing::new(status, head, 9),
                Framing {
                    content_length: None,
                    send_body: false
                }
            );
        }
    }
    for status in [200, 201, 302, 404, 500] {
        assert_eq!(
            Framing::new(status, false, 9),
            Framing {
                content_length: Some(9),
                send_body: true
            }
        );
        assert_eq!(
            Framing::new(status, true, 9),
            Framing {
                content_length: Some(9),
                send_body: false
            }
        );
    }
}
