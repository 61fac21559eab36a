//! A counting TCP proxy in front of PostgreSQL: it forwards bytes unchanged and counts the
//! protocol messages that end a round trip (frontend `Query`/`Sync`, backend `ReadyForQuery`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use anyhow::{Context, Result};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Message counts seen by one proxy (all its connections).
#[derive(Debug, Default)]
pub struct Counters {
    /// Frontend simple-query messages (`Q`).
    pub queries: AtomicU64,
    /// Frontend `Sync` messages (`S`): the end of one extended-protocol round trip.
    pub syncs: AtomicU64,
    /// Backend `ReadyForQuery` messages (`Z`): the server's answer to each round trip.
    pub ready: AtomicU64,
}

/// A snapshot of [`Counters`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// See [`Counters::queries`].
    pub queries: u64,
    /// See [`Counters::syncs`].
    pub syncs: u64,
    /// See [`Counters::ready`].
    pub ready: u64,
}

impl Counters {
    /// The current counts.
    pub fn snapshot(&self) -> Counts {
        Counts {
            queries: self.queries.load(Ordering::Relaxed),
            syncs: self.syncs.load(Ordering::Relaxed),
            ready: self.ready.load(Ordering::Relaxed),
        }
    }
}

impl std::ops::Sub for Counts {
    type Output = Counts;
    fn sub(self, other: Counts) -> Counts {
        Counts {
            queries: self.queries - other.queries,
            syncs: self.syncs - other.syncs,
            ready: self.ready - other.ready,
        }
    }
}

/// Splits a byte stream into protocol messages and counts the interesting tags.
struct MessageParser {
    buffer: Vec<u8>,
    /// The frontend's first message (startup, or an SSL/GSS request) has no tag byte.
    untyped_first: bool,
}

impl MessageParser {
    fn new(untyped_first: bool) -> Self {
        Self {
            buffer: Vec::new(),
            untyped_first,
        }
    }

    fn feed(&mut self, bytes: &[u8], mut on_tag: impl FnMut(u8)) {
        self.buffer.extend_from_slice(bytes);
        let mut at = 0;
        loop {
            let rest = &self.buffer[at..];
            if self.untyped_first {
                if rest.len() < 8 {
                    break;
                }
                let len = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
                if rest.len() < len {
                    break;
                }
                let code = u32::from_be_bytes([rest[4], rest[5], rest[6], rest[7]]);
                // SSLRequest / GSSENCRequest are followed by another untyped startup message.
                self.untyped_first = code == 80_877_103 || code == 80_877_104;
                at += len.max(8);
                continue;
            }
            if rest.len() < 5 {
                break;
            }
            let len = u32::from_be_bytes([rest[1], rest[2], rest[3], rest[4]]) as usize;
            if rest.len() < 1 + len {
                break;
            }
            on_tag(rest[0]);
            at += 1 + len.max(4);
        }
        self.buffer.drain(..at);
    }
}

/// Starts a proxy on 127.0.0.1 (a free port) forwarding to `upstream` (`host:port`).
/// Connect through it with `sslmode=disable`. Returns the local port and the counters.
pub async fn start(upstream: String) -> Result<(u16, Arc<Counters>)> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let counters = Arc::new(Counters::default());
    let shared = Arc::clone(&counters);
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let upstream = upstream.clone();
            let counters = Arc::clone(&shared);
            tokio::spawn(async move {
                if let Err(err) = relay(client, &upstream, counters).await {
                    eprintln!("proxy connection ended: {err:#}");
                }
            });
        }
    });
    Ok((port, counters))
}

async fn relay(client: TcpStream, upstream: &str, counters: Arc<Counters>) -> Result<()> {
    let server = TcpStream::connect(upstream)
        .await
        .with_context(|| format!("proxy connecting to {upstream}"))?;
    client.set_nodelay(true)?;
    server.set_nodelay(true)?;
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let up_counters = Arc::clone(&counters);
    let upstream_task = tokio::spawn(async move {
        let mut parser = MessageParser::new(true);
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = client_read.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            parser.feed(&buf[..n], |tag| match tag {
                b'Q' => {
                    up_counters.queries.fetch_add(1, Ordering::Relaxed);
                }
                b'S' => {
                    up_counters.syncs.fetch_add(1, Ordering::Relaxed);
                }
                _ => {}
            });
            server_write.write_all(&buf[..n]).await?;
        }
        server_write.shutdown().await?;
        Ok::<(), std::io::Error>(())
    });
    let mut parser = MessageParser::new(false);
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = server_read.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        parser.feed(&buf[..n], |tag| {
            if tag == b'Z' {
                counters.ready.fetch_add(1, Ordering::Relaxed);
            }
        });
        client_write.write_all(&buf[..n]).await?;
    }
    upstream_task.abort();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parser_counts_tags_across_split_reads() {
        let mut startup = vec![0, 0, 0, 9, 0, 3, 0, 0, 0];
        startup.extend_from_slice(b"Q\0\0\0\x05x");
        startup.extend_from_slice(b"S\0\0\0\x04");
        let mut parser = MessageParser::new(true);
        let mut tags = Vec::new();
        for byte in &startup {
            parser.feed(std::slice::from_ref(byte), |tag| tags.push(tag));
        }
        assert_eq!(tags, vec![b'Q', b'S']);
    }
}
