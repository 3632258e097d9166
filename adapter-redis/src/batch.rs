//! Publishes coalesced into pipelines on a standalone Redis connection.
//!
//! Every `publish` queues its command and waits for its own reply; one writer task takes
//! whatever is queued (up to [`MAX_BATCH`]), sends it as one pipeline and hands each
//! caller its reply. While a pipeline is in flight the next one fills up, so a lone
//! publish costs one round trip, as before, and many concurrent publishes cost one round
//! trip per batch instead of one client-library request each (redis-rs' per-request
//! overhead bounded a raw redis-rs loop at about 290k publishes/s here; Redis itself takes
//! over 1M/s in pipelines). Order is kept: the queue is FIFO and the batches go out one
//! after the other on one connection.

use std::time::Duration;

use bytes::Bytes;
use redis::aio::ConnectionManager;
use tokio::sync::{mpsc, oneshot};

/// The most commands in one pipeline.
pub(crate) const MAX_BATCH: usize = 512;
/// Publishes queued for the writer, at most (callers wait for room beyond).
const QUEUE: usize = 4096;

type Reply = Result<(), redis::RedisError>;

struct Queued {
    cmd: redis::Cmd,
    reply: oneshot::Sender<Reply>,
}

/// The handle publishes go through; the writer task ends when every handle is dropped.
#[derive(Clone, Debug)]
pub(crate) struct Batcher {
    tx: mpsc::Sender<Queued>,
}

impl Batcher {
    /// Starts the writer over `conn`; each pipeline gets `timeout` to answer.
    pub(crate) fn start(conn: ConnectionManager, timeout: Duration) -> Batcher {
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(writer(conn, rx, timeout));
        Batcher { tx }
    }

    /// Queues `verb channel payload` and waits for its reply.
    pub(crate) async fn publish(&self, verb: &'static str, channel: &str, payload: Bytes) -> Reply {
        let mut cmd = redis::cmd(verb);
        cmd.arg(channel).arg(payload.as_ref());
        self.command(cmd).await
    }

    /// Queues any command whose reply is only checked for an error (XADD) and waits for it.
    pub(crate) async fn command(&self, cmd: redis::Cmd) -> Reply {
        let (reply, rx) = oneshot::channel();
        let queued = Queued { cmd, reply };
        // unconstrained by tokio's cooperative budget: publishes first polled in order are
        // queued in order (see `RedisTransport::query`)
        if tokio::task::unconstrained(self.tx.send(queued)).await.is_err() {
            return Err(gone());
        }
        rx.await.unwrap_or_else(|_| Err(gone()))
    }
}

fn gone() -> redis::RedisError {
    redis::RedisError::from(std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the publisher task stopped"))
}

async fn writer(mut conn: ConnectionManager, mut rx: mpsc::Receiver<Queued>, timeout: Duration) {
    let mut batch: Vec<Queued> = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let mut pipe = redis::pipe();
        for q in &mut batch {
            pipe.add_command(std::mem::replace(&mut q.cmd, redis::Cmd::new()));
        }
        let result = match tokio::time::timeout(timeout, pipe.query_async::<Vec<redis::Value>>(&mut conn)).await {
            Ok(r) => r,
            Err(_) => {
                Err(redis::RedisError::from(std::io::Error::new(std::io::ErrorKind::TimedOut, "no reply in time")))
            }
        };
        match result {
            Ok(replies) => {
                for (q, reply) in batch.drain(..).zip(replies.into_iter().map(Some).chain(std::iter::repeat(None))) {
                    let r = match reply {
                        Some(redis::Value::ServerError(e)) => Err(redis::RedisError::from(e)),
                        Some(_) => Ok(()),
                        None => Err(redis::RedisError::from(std::io::Error::other("missing reply in a pipeline"))),
                    };
                    let _ = q.reply.send(r);
                }
            }
            Err(e) => {
                for q in batch.drain(..) {
                    let _ = q.reply.send(Err(e.clone()));
                }
            }
        }
    }
}
