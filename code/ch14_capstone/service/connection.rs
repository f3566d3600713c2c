//! Connections a handler can drop. One of the service's faults is a connection closed without
//! an answer, the way a crashing server or a proxy loses it. A handler cannot do that through
//! axum: whatever it returns is a response. So the listener hands axum its connections wrapped
//! in `Connection`, and each handler gets a `DropHandle` to it (as `ConnectInfo`): once dropped,
//! the connection fails its next write, so hyper closes it instead of sending the response; and
//! it resets the TCP connection (SO_LINGER 0) so the client sees "connection reset by peer".

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use axum::extract::connect_info::Connected;
use axum::serve::{IncomingStream, Listener};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

/// A TCP listener whose connections handlers can drop.
pub struct DroppingListener(pub TcpListener);

/// One accepted connection, and whether a handler asked to drop it.
pub struct Connection {
    stream: TcpStream,
    dropped: Arc<AtomicBool>,
}

/// What a handler holds to drop its connection.
#[derive(Clone)]
pub struct DropHandle(Arc<AtomicBool>);

impl DropHandle {
    /// Makes the connection fail instead of sending the answer the handler returns next.
    pub fn drop_connection(&self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

impl Listener for DroppingListener {
    type Io = Connection;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Connection, SocketAddr) {
        // axum's own accept loop: it logs and retries errors such as too many open files.
        let (stream, address) = Listener::accept(&mut self.0).await;
        let dropped = Arc::new(AtomicBool::new(false));
        (Connection { stream, dropped }, address)
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.local_addr()
    }
}

impl Connected<IncomingStream<'_, DroppingListener>> for DropHandle {
    fn connect_info(stream: IncomingStream<'_, DroppingListener>) -> DropHandle {
        DropHandle(Arc::clone(&stream.io().dropped))
    }
}

impl Connection {
    /// The error that ends a dropped connection; SO_LINGER 0 makes its close a reset.
    fn check(&self) -> io::Result<()> {
        if !self.dropped.load(Ordering::Relaxed) {
            return Ok(());
        }
        let _ = self.stream.set_zero_linger();
        Err(io::ErrorKind::ConnectionAborted.into())
    }
}

impl AsyncRead for Connection {
    fn poll_read(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buffer: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.check()?;
        Pin::new(&mut self.stream).poll_read(context, buffer)
    }
}

impl AsyncWrite for Connection {
    fn poll_write(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buffer: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.check()?;
        Pin::new(&mut self.stream).poll_write(context, buffer)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buffers: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.check()?;
        Pin::new(&mut self.stream).poll_write_vectored(context, buffers)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.check()?;
        Pin::new(&mut self.stream).poll_flush(context)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.check()?;
        Pin::new(&mut self.stream).poll_shutdown(context)
    }
}
