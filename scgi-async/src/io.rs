//! The I/O traits of the ecosystems, for [`Request`] and [`Upgraded`]:
//! tokio's (feature `tokio`) and `futures-io`'s (feature `futures-io`).
//! They live here because a runtime crate may implement neither for a type
//! of this crate (the orphan rule). Both sets forward to the same poll
//! functions; shutting a request's writer down (or closing it) only
//! flushes, since the server ends the connection itself, while an
//! upgraded connection's shuts down the socket's sending side.

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::request::{Request, Upgraded};
use crate::rt::Runtime;

/// `AsyncWrite` (tokio's or `futures-io`'s: they differ in the name of
/// the method that ends the writer) for [`Request`] and [`Upgraded`].
macro_rules! async_write {
    ($trait:path, $close:ident) => {
        impl<R: Runtime> $trait for Request<R> {
            fn poll_write(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                data: &[u8],
            ) -> Poll<io::Result<usize>> {
                self.get_mut().poll_write(cx, data)
            }

            fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                self.get_mut().poll_flush(cx)
            }

            fn $close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                self.get_mut().poll_flush(cx)
            }
        }

        impl<R: Runtime> $trait for Upgraded<R> {
            fn poll_write(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                data: &[u8],
            ) -> Poll<io::Result<usize>> {
                self.get_mut()
                    .poll_write_vectored(cx, &[IoSlice::new(data)])
            }

            fn poll_write_vectored(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                bufs: &[IoSlice<'_>],
            ) -> Poll<io::Result<usize>> {
                self.get_mut().poll_write_vectored(cx, bufs)
            }

            fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
                Poll::Ready(Ok(()))
            }

            fn $close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
                Poll::Ready(self.shutdown_write())
            }
        }
    };
}

#[cfg(feature = "tokio")]
mod tokio_io {
    use super::*;
    use tokio::io::{AsyncRead, ReadBuf};

    macro_rules! async_read {
        ($($ty:ident),*) => {$(
            impl<R: Runtime> AsyncRead for $ty<R> {
                fn poll_read(
                    self: Pin<&mut Self>,
                    cx: &mut Context<'_>,
                    dst: &mut ReadBuf<'_>,
                ) -> Poll<io::Result<()>> {
                    let this = self.get_mut();
                    let limit = this.read_limit(dst.remaining());
                    // Bytes `dst` has not initialized yet are zeroed first
                    // (safe code cannot hand them out).
                    let buf = dst.initialize_unfilled_to(limit);
                    let n = std::task::ready!(this.poll_read(cx, buf))?;
                    dst.advance(n);
                    Poll::Ready(Ok(()))
                }
            }
        )*};
    }

    async_read!(Request, Upgraded);
    async_write!(tokio::io::AsyncWrite, poll_shutdown);
}

#[cfg(feature = "futures-io")]
mod futures_io_impls {
    use super::*;
    use futures_io::AsyncRead;

    macro_rules! async_read {
        ($($ty:ident),*) => {$(
            impl<R: Runtime> AsyncRead for $ty<R> {
                fn poll_read(
                    self: Pin<&mut Self>,
                    cx: &mut Context<'_>,
                    dst: &mut [u8],
                ) -> Poll<io::Result<usize>> {
                    self.get_mut().poll_read(cx, dst)
                }
            }
        )*};
    }

    async_read!(Request, Upgraded);
    async_write!(futures_io::AsyncWrite, poll_close);
}
