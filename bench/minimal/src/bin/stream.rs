//! A streamed SCGI echo straight to a backend, without nginx (nginx stops
//! sending a request body once the response head arrives, so a full-duplex
//! echo larger than the socket buffers stalls behind it).
//!
//! ```text
//! cargo run --release -p bench-minimal --bin stream -- HOST:PORT|unix:PATH BYTES
//! ```
//!
//! Sends a POST of BYTES bytes to `/echo` from one thread while another
//! reads the response, checks that the body comes back byte for byte, and
//! prints `status body_bytes seconds`.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::time::Instant;

fn byte(i: u64) -> u8 {
    (i.wrapping_mul(2_654_435_761) >> 13) as u8
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (addr, bytes) = match (args.next(), args.next()) {
        (Some(a), Some(b)) => (a, b.parse::<u64>()?),
        _ => return Err("usage: stream HOST:PORT|unix:PATH BYTES".into()),
    };
    let (mut reader, mut writer): (Box<dyn Read + Send>, Box<dyn Write + Send>) =
        match addr.strip_prefix("unix:") {
            Some(path) => {
                let s = UnixStream::connect(path)?;
                (Box::new(s.try_clone()?), Box::new(s))
            }
            None => {
                let s = TcpStream::connect(&addr)?;
                s.set_nodelay(true)?;
                (Box::new(s.try_clone()?), Box::new(s))
            }
        };
    let mut head = Vec::new();
    for (n, v) in [
        ("CONTENT_LENGTH", bytes.to_string().as_str()),
        ("SCGI", "1"),
        ("REQUEST_METHOD", "POST"),
        ("REQUEST_URI", "/echo"),
        ("CONTENT_TYPE", "application/octet-stream"),
    ] {
        head.extend_from_slice(n.as_bytes());
        head.push(0);
        head.extend_from_slice(v.as_bytes());
        head.push(0);
    }
    let start = Instant::now();
    let sender = std::thread::spawn(move || -> std::io::Result<()> {
        writer.write_all(format!("{}:", head.len()).as_bytes())?;
        writer.write_all(&head)?;
        writer.write_all(b",")?;
        let mut buf = vec![0u8; 64 * 1024];
        let mut sent = 0u64;
        while sent < bytes {
            let n = (bytes - sent).min(buf.len() as u64) as usize;
            for (i, b) in buf[..n].iter_mut().enumerate() {
                *b = byte(sent + i as u64);
            }
            writer.write_all(&buf[..n])?;
            sent += n as u64;
        }
        Ok(())
    });
    let mut buf = vec![0u8; 64 * 1024];
    let mut response = Vec::new();
    let body_start = loop {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            return Err("closed before the response head".into());
        }
        response.extend_from_slice(&buf[..n]);
        if let Some(i) = response.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let status = String::from_utf8_lossy(&response[..body_start])
        .lines()
        .find_map(|l| {
            l.strip_prefix("Status: ")
                .map(|s| s.split(' ').next().unwrap_or("").to_owned())
        })
        .unwrap_or_else(|| "200".to_owned());
    let mut got = 0u64;
    let check = |piece: &[u8], got: &mut u64| -> Result<(), String> {
        for (i, &b) in piece.iter().enumerate() {
            if b != byte(*got + i as u64) {
                return Err(format!("byte {} differs", *got + i as u64));
            }
        }
        *got += piece.len() as u64;
        Ok(())
    };
    check(&response[body_start..], &mut got)?;
    loop {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            break;
        }
        check(&buf[..n], &mut got)?;
    }
    let secs = start.elapsed().as_secs_f64();
    sender.join().map_err(|_| "sender panicked")??;
    writeln!(std::io::stdout(), "{status} {got} {secs:.3}")?;
    Ok(())
}
