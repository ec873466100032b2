//! Backend addresses (`host:port`, `[v6]:port`, `unix:/path`) and the
//! connections made to them.

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
#[cfg(unix)]
use tokio::net::UnixStream;

/// Where a backend listens: the address string every scgi-rs server binds
/// (`scgi_net::ListenAddr`), here the one the commands connect to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum BackendAddr {
    /// `host:port` or `[v6]:port`, resolved at each connect (every
    /// resolved address is tried in turn).
    Tcp(String),
    /// A Unix socket path.
    #[cfg(unix)]
    Unix(PathBuf),
}

impl BackendAddr {
    /// Parses `host:port`, `[v6]:port` or `unix:/path`.
    ///
    /// `scgi_net::ListenAddr::parse` takes any other non-empty string for a
    /// TCP address and leaves it to the resolver; a command line deserves a
    /// clearer word than "invalid socket address syntax" at connect time,
    /// so a TCP address must be `host:port` with a numeric port here, and a
    /// URL (`http://...`, `tcp://...`) is named as such.
    pub(crate) fn parse(s: &str) -> Result<BackendAddr, String> {
        const FORMS: &str = "give host:port, [v6]:port or unix:/path";
        let parsed = scgi_net::ListenAddr::parse(s).map_err(|e| format!("{e}"))?;
        match parsed {
            scgi_net::ListenAddr::Tcp(tcp) => {
                if let Some((scheme, _)) = tcp.split_once("://") {
                    return Err(format!(
                        "unknown address form `{s}` (a `{scheme}://` URL): {FORMS}"
                    ));
                }
                let Some((host, port)) = tcp.rsplit_once(':') else {
                    return Err(format!("unknown address form `{s}` (no port): {FORMS}"));
                };
                if port.parse::<u16>().is_err() {
                    return Err(format!(
                        "unknown address form `{s}` (`{port}` is not a port number): {FORMS}"
                    ));
                }
                let bracketed = host.starts_with('[') || host.ends_with(']');
                if host.is_empty()
                    || (bracketed && !(host.starts_with('[') && host.ends_with(']')))
                    || (!bracketed && host.contains(':'))
                    || host.chars().any(|c| c.is_whitespace() || c == '/')
                {
                    return Err(format!(
                        "unknown address form `{s}` (bad host `{host}`; IPv6 goes in brackets): {FORMS}"
                    ));
                }
                Ok(BackendAddr::Tcp(tcp.to_owned()))
            }
            #[cfg(unix)]
            scgi_net::ListenAddr::Unix(path) => Ok(BackendAddr::Unix(path.to_owned())),
            other => Err(format!("{}", other.unsupported())),
        }
    }

    /// Opens a connection.
    pub(crate) async fn connect(&self) -> io::Result<Stream> {
        match self {
            BackendAddr::Tcp(a) => {
                let s = TcpStream::connect(a.as_str()).await?;
                // Requests and heads go out in one write each; Nagle would
                // only delay the next one.
                s.set_nodelay(true)?;
                Ok(Stream::Tcp(s))
            }
            #[cfg(unix)]
            BackendAddr::Unix(p) => Ok(Stream::Unix(UnixStream::connect(p).await?)),
        }
    }
}

impl fmt::Display for BackendAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BackendAddr::Tcp(a) => f.write_str(a),
            #[cfg(unix)]
            BackendAddr::Unix(p) => write!(f, "unix:{}", p.display()),
        }
    }
}

/// A connection to a backend, TCP or Unix.
#[derive(Debug)]
pub(crate) enum Stream {
    /// TCP.
    Tcp(TcpStream),
    /// A Unix socket.
    #[cfg(unix)]
    Unix(UnixStream),
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            #[cfg(unix)]
            Stream::Unix(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_write(cx, buf),
            #[cfg(unix)]
            Stream::Unix(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_flush(cx),
            #[cfg(unix)]
            Stream::Unix(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            #[cfg(unix)]
            Stream::Unix(s) => Pin::new(s).poll_shutdown(cx),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            #[cfg(unix)]
            Stream::Unix(s) => Pin::new(s).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Stream::Tcp(s) => s.is_write_vectored(),
            #[cfg(unix)]
            Stream::Unix(s) => s.is_write_vectored(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::BackendAddr;

    #[test]
    fn forms() {
        assert_eq!(
            BackendAddr::parse("127.0.0.1:4000"),
            Ok(BackendAddr::Tcp("127.0.0.1:4000".into()))
        );
        assert_eq!(
            BackendAddr::parse("localhost:4000"),
            Ok(BackendAddr::Tcp("localhost:4000".into()))
        );
        assert_eq!(
            BackendAddr::parse("[::1]:4000"),
            Ok(BackendAddr::Tcp("[::1]:4000".into()))
        );
        #[cfg(unix)]
        assert_eq!(
            BackendAddr::parse("unix:/run/app.sock"),
            Ok(BackendAddr::Unix("/run/app.sock".into()))
        );
        for bad in [
            "",
            "unix:",
            "localhost",
            "http://127.0.0.1:4000",
            "127.0.0.1:http",
            "127.0.0.1:99999",
            "::1:4000",
            "[::1:4000",
            ":4000",
        ] {
            let e = BackendAddr::parse(bad).expect_err(bad);
            assert!(!e.is_empty(), "{bad}");
        }
    }
}
