//! Thousands of connections open at once, each served by its own task.
//!
//! Every handler waits at a barrier until all the requests have reached
//! their handlers, so the connections are provably open concurrently; then
//! each answers with its own id. Bounded in count (3 000, fewer if the
//! file descriptor limit is lower) and in time.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use scgi_test_support::Reply;
use scgi_tokio::{Addr, Config, Request, Server, TcpOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Barrier;

const WANTED: usize = 3000;

/// The test's whole budget: far above what it needs, so that only a hang
/// trips it.
const BUDGET: Duration = Duration::from_secs(180);

/// The soft and hard `RLIMIT_NOFILE`, read from /proc (no unsafe code).
fn nofile_limits() -> Option<(u64, u64)> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    let mut fields = line["Max open files".len()..].split_whitespace();
    let parse = |f: Option<&str>| match f {
        Some("unlimited") => Some(u64::MAX),
        Some(n) => n.parse().ok(),
        None => None,
    };
    Some((parse(fields.next())?, parse(fields.next())?))
}

/// How many connections this process can hold open at once: each one is
/// two descriptors here (client and server side). Raises the soft limit to
/// the hard one first if that is needed and `prlimit` is at hand.
fn connection_count() -> usize {
    let needed = (WANTED * 2 + 256) as u64;
    let Some((soft, hard)) = nofile_limits() else {
        return 400;
    };
    let mut soft = soft;
    if soft < needed && hard > soft {
        let raised = std::process::Command::new("prlimit")
            .arg(format!("--pid={}", std::process::id()))
            .arg(format!("--nofile={hard}:{hard}"))
            .status();
        if raised.is_ok_and(|s| s.success()) {
            soft = nofile_limits().map_or(soft, |(s, _)| s);
        }
    }
    let fit = usize::try_from(soft.saturating_sub(256) / 2).unwrap_or(WANTED);
    WANTED.min(fit)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousands_of_concurrent_connections() {
    let n = connection_count();
    assert!(n >= 100, "too few file descriptors to test anything");
    let server = Server::bind_tcp_with("127.0.0.1:0", &TcpOptions::DEFAULT.with_backlog(4096))
        .expect("bind")
        .with_config(
            Config::default()
                .with_max_connections(n)
                .with_head_timeout(BUDGET)
                .with_body_timeout(BUDGET)
                .with_write_timeout(BUDGET),
        );
    let Addr::Tcp(addr) = *server.local_addr() else {
        unreachable!("bound on TCP")
    };
    let handle = server.shutdown_handle();
    let all_in = Arc::new(Barrier::new(n));
    let serving = tokio::spawn(server.run(move |mut req: Request| {
        let all_in = Arc::clone(&all_in);
        async move {
            let id = req.headers().get("HTTP_X_ID").unwrap_or(b"?").to_vec();
            all_in.wait().await;
            req.write_status_ok_text_content("text/plain").await?;
            req.write_all(&id).await
        }
    }));

    let clients: Vec<_> = (0..n)
        .map(|i| {
            tokio::spawn(async move {
                let id = i.to_string();
                let wire = scgi_tokio::scgi_proto::encode_request_to_vec(
                    &[
                        ("REQUEST_METHOD", "GET"),
                        ("REQUEST_URI", "/"),
                        ("HTTP_X_ID", id.as_str()),
                    ],
                    b"",
                )
                .expect("encode");
                let mut c = tokio::net::TcpStream::connect(addr).await?;
                c.write_all(&wire).await?;
                let mut raw = Vec::new();
                c.read_to_end(&mut raw).await?;
                let reply = Reply::parse(&raw);
                assert_eq!(reply.status, 200);
                assert_eq!(reply.body, id.as_bytes(), "another request's answer");
                Ok::<(), io::Error>(())
            })
        })
        .collect();

    tokio::time::timeout(BUDGET, async {
        for (i, client) in clients.into_iter().enumerate() {
            client
                .await
                .expect("client task")
                .unwrap_or_else(|e| panic!("client {i} of {n}: {e}"));
        }
    })
    .await
    .expect("the connections were not all served in time");
    assert!(handle.close().await, "connections left open");
    serving.await.expect("server task").expect("run");
}
