//! The stream side of [`Mode::Streams`](crate::Mode::Streams): appending entries (XADD
//! with `MAXLEN ~`) and one reader task per subscribed stream (XREAD BLOCK COUNT from the
//! last id it processed).
//!
//! **Resume, not loss.** A reader starts at the stream's end as it stood when the first
//! subscriber of that stream subscribed, and from then on remembers the id of the last
//! entry it handed on. When its connection breaks it reconnects with core's [`Backoff`]
//! and reads on after that id, so what was appended meanwhile is delivered once, in
//! order, as long as the stream still holds it.
//!
//! **Saying what was lost.** After every reconnection, and whenever a read came back full
//! (the reader is behind), it asks `XINFO STREAM` how many entries were ever added and
//! which is the first one kept. Entries appended after the last one read that are no
//! longer in the stream were trimmed unread: they are counted
//! ([`TransportStats::trimmed_unread`](socketio_adapter_core::TransportStats)) and
//! warned about (one line per 10 s). A stream that was deleted or recreated is read from
//! its start.
//!
//! Bounded: every XREAD has `COUNT`, every XADD `MAXLEN ~`, and nothing reads a range.
//! Each reader holds its own connection (XREAD BLOCK holds a connection for up to
//! `block_ms`), as the Node.js adapter does.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use redis::aio::MultiplexedConnection;
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::{AsyncConnectionConfig, Client, Cmd, Value};
use socketio_adapter_core::throttle::Throttle;
use socketio_adapter_core::transport::entry;
use socketio_adapter_core::{Channel, EventSender, Stat, Subscribers, Supervisor};
use tokio::sync::watch;
use tokio::task::AbortHandle;
use tracing::{info, warn};

use crate::error::RedisTransportError;
use crate::options::StreamOptions;

/// How a reader opens its connection.
pub(crate) enum ReaderConnector {
    Single { client: Box<Client>, config: AsyncConnectionConfig },
    Cluster(Box<ClusterClient>),
}

enum ReaderConn {
    Single(MultiplexedConnection),
    Cluster(ClusterConnection),
}

impl ReaderConnector {
    async fn open(&self) -> Result<ReaderConn, redis::RedisError> {
        match self {
            ReaderConnector::Single { client, config } => {
                client.get_multiplexed_async_connection_with_config(config).await.map(ReaderConn::Single)
            }
            ReaderConnector::Cluster(client) => client.get_async_connection().await.map(ReaderConn::Cluster),
        }
    }
}

impl ReaderConn {
    async fn query(&mut self, cmd: &Cmd) -> Result<Value, redis::RedisError> {
        match self {
            ReaderConn::Single(c) => cmd.query_async(c).await,
            ReaderConn::Cluster(c) => cmd.query_async(c).await,
        }
    }

    /// `CLIENT ID` (standalone only), for tests that kill this connection.
    async fn client_id(&mut self) -> Option<i64> {
        match self {
            ReaderConn::Single(c) => redis::cmd("CLIENT").arg("ID").query_async(c).await.ok(),
            ReaderConn::Cluster(_) => None,
        }
    }
}

/// A stream entry id `ms-seq`.
type EntryId = (u64, u64);

fn parse_id(raw: &[u8]) -> Option<EntryId> {
    let text = std::str::from_utf8(raw).ok()?;
    let (ms, seq) = text.split_once('-')?;
    Some((ms.parse().ok()?, seq.parse().ok()?))
}

fn show_id(id: EntryId) -> String {
    format!("{}-{}", id.0, id.1)
}

/// Where a reader is: the last entry it handed on, and how many entries the stream had
/// ever received up to it (`None` when Redis does not say: before 7.0).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Position {
    last: EntryId,
    added: Option<u64>,
}

/// What `XINFO STREAM` says (the fields this module uses).
#[derive(Debug, Default, PartialEq, Eq)]
struct StreamInfo {
    length: u64,
    last_generated: EntryId,
    entries_added: Option<u64>,
    first_entry: Option<EntryId>,
}

fn text_of(v: &Value) -> Option<&[u8]> {
    match v {
        Value::BulkString(b) => Some(b),
        Value::SimpleString(s) => Some(s.as_bytes()),
        _ => None,
    }
}

fn int_of(v: &Value) -> Option<u64> {
    match v {
        Value::Int(n) => u64::try_from(*n).ok(),
        other => std::str::from_utf8(text_of(other)?).ok()?.parse().ok(),
    }
}

impl StreamInfo {
    /// From a RESP2 flat array or a RESP3 map; `None` for another shape.
    fn parse(reply: &Value) -> Option<StreamInfo> {
        let pairs: Vec<(&Value, &Value)> = match reply {
            Value::Array(items) if items.len() % 2 == 0 => items.chunks(2).map(|p| (&p[0], &p[1])).collect(),
            Value::Map(pairs) => pairs.iter().map(|(k, v)| (k, v)).collect(),
            _ => return None,
        };
        let mut info = StreamInfo::default();
        for (k, v) in pairs {
            match text_of(k)? {
                b"length" => info.length = int_of(v)?,
                b"last-generated-id" => info.last_generated = parse_id(text_of(v)?)?,
                b"entries-added" => info.entries_added = int_of(v),
                b"first-entry" => {
                    info.first_entry = match v {
                        Value::Array(e) => e.first().and_then(text_of).and_then(parse_id),
                        _ => None,
                    }
                }
                _ => {}
            }
        }
        Some(info)
    }
}

/// The entries of an XREAD reply on one stream: (id, flat field-value list). `None` for
/// a reply of another shape.
fn xread_entries(reply: Value) -> Option<Vec<(EntryId, Vec<Value>)>> {
    let per_stream: Vec<Value> = match reply {
        Value::Nil => return Some(Vec::new()),
        Value::Array(streams) => {
            streams.into_iter().filter_map(|s| if let Value::Array(mut kv) = s { kv.pop() } else { None }).collect()
        }
        Value::Map(streams) => streams.into_iter().map(|(_, v)| v).collect(),
        _ => return None,
    };
    let mut out = Vec::new();
    for entries in per_stream {
        let Value::Array(entries) = entries else { return None };
        for e in entries {
            let Value::Array(mut e) = e else { return None };
            if e.len() != 2 {
                return None;
            }
            let fields = match e.pop() {
                Some(Value::Array(f)) => f,
                Some(Value::Map(m)) => m.into_iter().flat_map(|(k, v)| [k, v]).collect(),
                _ => return None,
            };
            let id = e.pop().as_ref().and_then(text_of).and_then(parse_id)?;
            out.push((id, fields));
        }
    }
    Some(out)
}

/// The stream side of one transport.
pub(crate) struct Streams {
    opts: StreamOptions,
    connector: ReaderConnector,
    /// Who reads which stream (separate from the pub/sub channels the supervisor restores).
    subscribers: Subscribers,
    /// Counters and the backoff policy, shared with the pub/sub side.
    sup: Arc<Supervisor>,
    readers: tokio::sync::Mutex<HashMap<String, Reader>>,
    shutdown: watch::Receiver<bool>,
    gap_warning: Throttle,
    error_warning: Throttle,
}

struct Reader {
    task: AbortHandle,
    client_id: Option<i64>,
}

impl Drop for Streams {
    fn drop(&mut self) {
        for r in self.readers.get_mut().values() {
            r.task.abort();
        }
    }
}

impl Streams {
    pub(crate) fn new(
        opts: StreamOptions,
        connector: ReaderConnector,
        sup: Arc<Supervisor>,
        shutdown: watch::Receiver<bool>,
    ) -> Arc<Self> {
        Arc::new(Streams {
            opts,
            connector,
            subscribers: Subscribers::new(),
            sup,
            readers: tokio::sync::Mutex::new(HashMap::new()),
            shutdown,
            gap_warning: Throttle::default(),
            error_warning: Throttle::default(),
        })
    }

    /// Whether `channel` is one of the streams (else a pub/sub channel).
    pub(crate) fn is_stream(&self, channel: &str) -> bool {
        self.opts.layout.contains(channel)
    }

    /// `XADD key MAXLEN ~ maxlen * field value ...` for an entry frame.
    pub(crate) fn xadd(&self, key: &str, frame: &[u8]) -> Result<Cmd, RedisTransportError> {
        let pairs = entry::decode(frame).ok_or_else(|| RedisTransportError::Reply {
            op: format!("XADD {key}"),
            reply: "the dialect's payload is not an entry frame".into(),
        })?;
        let mut cmd = redis::cmd("XADD");
        cmd.arg(key).arg("MAXLEN").arg("~").arg(self.opts.maxlen).arg("*");
        for (field, value) in pairs {
            cmd.arg(field).arg(value);
        }
        Ok(cmd)
    }

    /// Delivers the entries of stream `key` to `sink`, from the stream's end on.
    pub(crate) async fn subscribe(self: &Arc<Self>, key: &str, sink: &EventSender) -> Result<(), RedisTransportError> {
        let channel = Channel::Exact(key.to_owned());
        let mut readers = self.readers.lock().await;
        if !readers.contains_key(key) {
            let op = || format!("start reading stream {key}");
            let mut conn = self.connector.open().await.map_err(|e| RedisTransportError::command(op(), e))?;
            let position = match xinfo(&mut conn, key).await.map_err(|e| RedisTransportError::command(op(), e))? {
                Some(info) => Position { last: info.last_generated, added: info.entries_added },
                None => Position { last: (0, 0), added: Some(0) },
            };
            let client_id = conn.client_id().await;
            let task = tokio::spawn(Arc::clone(self).read(key.to_owned(), conn, position));
            readers.insert(key.to_owned(), Reader { task: task.abort_handle(), client_id });
        }
        self.subscribers.add(&channel, sink);
        Ok(())
    }

    /// Stops delivering stream `key` to `sink`; the reader stops with the last sink.
    pub(crate) async fn unsubscribe(&self, key: &str, sink: &EventSender) {
        let mut readers = self.readers.lock().await;
        if self.subscribers.remove(&Channel::Exact(key.to_owned()), sink)
            && let Some(r) = readers.remove(key)
        {
            r.task.abort();
        }
    }

    /// The `CLIENT ID`s of the reader connections (standalone Redis), for tests.
    pub(crate) async fn reader_client_ids(&self) -> Vec<i64> {
        self.readers.lock().await.values().filter_map(|r| r.client_id).collect()
    }

    async fn read(self: Arc<Self>, key: String, conn: ReaderConn, mut position: Position) {
        let mut conn = Some(conn);
        let mut failed = 0u32;
        let mut shutdown = self.shutdown.clone();
        let channel = Channel::Exact(key.clone());
        loop {
            let Some(c) = conn.as_mut() else {
                failed += 1;
                let delay = self.sup.backoff().delay(failed);
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = shutdown.changed() => return,
                }
                match self.connector.open().await {
                    Ok(mut c) => {
                        self.sup.counters().bump(Stat::Reconnects);
                        info!(stream = %key, after = %show_id(position.last), attempts = failed,
                              "stream reader reconnected; resuming after the last entry read");
                        failed = 0;
                        let client_id = c.client_id().await;
                        if let Some(r) = self.readers.lock().await.get_mut(&key) {
                            r.client_id = client_id;
                        }
                        self.check_gap(&mut c, &key, &mut position).await;
                        conn = Some(c);
                    }
                    Err(e) => self.warn_error(&key, "reconnect", &e),
                }
                continue;
            };
            let mut cmd = redis::cmd("XREAD");
            cmd.arg("COUNT")
                .arg(self.opts.read_count)
                .arg("BLOCK")
                .arg(u64::try_from(self.opts.block.as_millis()).unwrap_or(u64::MAX))
                .arg("STREAMS")
                .arg(&key)
                .arg(show_id(position.last));
            let reply = tokio::select! {
                r = c.query(&cmd) => r,
                _ = shutdown.changed() => return,
            };
            let entries = match reply.map(xread_entries) {
                Ok(Some(entries)) => entries,
                Ok(None) => {
                    // not a stream reply: nothing can be handed on; start over on a new connection
                    self.warn_error(&key, "read", &"XREAD reply of an unexpected shape");
                    conn = None;
                    continue;
                }
                Err(e) => {
                    self.warn_error(&key, "read", &e);
                    conn = None;
                    continue;
                }
            };
            let full = entries.len() as u64 >= self.opts.read_count;
            for (id, fields) in entries {
                let parts: Vec<&[u8]> = fields.iter().map(|v| text_of(v).unwrap_or_default()).collect();
                let frame: Bytes = entry::encode(parts.chunks(2).filter(|p| p.len() == 2).map(|p| (p[0], p[1])));
                let n = self.subscribers.deliver_to(&channel, &key, &frame).await;
                self.sup.counters().add(Stat::Delivered, n);
                position.last = id;
                position.added = position.added.map(|a| a + 1);
            }
            if full && let Some(c) = conn.as_mut() {
                // behind by a whole read: did trimming overtake this reader?
                self.check_gap(c, &key, &mut position).await;
            }
        }
    }

    /// Counts and reports the entries appended after `position` that the stream no
    /// longer holds, and moves `position` past them.
    async fn check_gap(&self, conn: &mut ReaderConn, key: &str, position: &mut Position) {
        let info = match xinfo(conn, key).await {
            Ok(info) => info,
            Err(e) => return self.warn_error(key, "inspect", &e),
        };
        let (next, lost) = gap(*position, info.as_ref());
        if lost != Some(0) {
            let counted = lost.unwrap_or(1);
            let total = self.sup.counters().add(Stat::TrimmedUnread, counted) + counted;
            if let Some(held_back) = self.gap_warning.check() {
                match lost {
                    Some(n) => warn!(stream = %key, lost = n, total, held_back, after = %show_id(position.last),
                        "stream entries were trimmed before this node read them: up to this many messages lost \
                         (raise maxlen, or find why the node fell behind; one line per 10 s)"),
                    None => warn!(stream = %key, total, held_back, after = %show_id(position.last),
                        "the stream was deleted, reset, or trimmed past this node's position: an unknown number \
                         of messages may be lost (one line per 10 s)"),
                }
            }
        }
        *position = next;
    }

    fn warn_error(&self, key: &str, what: &str, e: &dyn std::fmt::Display) {
        if let Some(held_back) = self.error_warning.check() {
            warn!(stream = %key, error = %e, held_back, "stream {what} failed; retrying (one line per 10 s)");
        }
    }
}

/// `XINFO STREAM key`; `None` when the stream does not exist.
async fn xinfo(conn: &mut ReaderConn, key: &str) -> Result<Option<StreamInfo>, redis::RedisError> {
    let mut cmd = redis::cmd("XINFO");
    cmd.arg("STREAM").arg(key);
    match conn.query(&cmd).await {
        Ok(reply) => StreamInfo::parse(&reply).map(Some).ok_or_else(|| {
            redis::RedisError::from(std::io::Error::other(format!("XINFO STREAM {key}: unexpected reply")))
        }),
        Err(e) if e.to_string().contains("no such key") => Ok(None),
        Err(e) => Err(e),
    }
}

/// Where to read on from `at` given what the stream holds now, and how many entries
/// appended after `at` were trimmed unread (`Some(0)`: none; `None`: some, how many is
/// unknown).
fn gap(at: Position, info: Option<&StreamInfo>) -> (Position, Option<u64>) {
    let start = Position { last: (0, 0), added: Some(0) };
    let Some(info) = info else {
        // deleted: whatever comes is new
        return (start, if at.last == (0, 0) { Some(0) } else { None });
    };
    if info.last_generated < at.last || info.entries_added.zip(at.added).is_some_and(|(e, a)| e < a) {
        // recreated: read it whole; what it already trimmed is lost too
        let trimmed = info.entries_added.map(|e| e.saturating_sub(info.length));
        let next = Position { last: (0, 0), added: trimmed };
        return (next, None);
    }
    match info.first_entry {
        // the stream still holds the last entry read, or older ones: nothing trimmed past it
        Some(first) if first <= at.last => (at, Some(0)),
        // everything kept is newer: those added after `at` and not kept were trimmed
        _ => match (info.entries_added, at.added) {
            (Some(added), Some(seen)) => {
                let lost = added.saturating_sub(seen).saturating_sub(info.length);
                // continue after the last trimmed entry: the first kept one is next
                (Position { last: at.last, added: Some(added.saturating_sub(info.length)) }, Some(lost))
            }
            // Redis before 7.0 does not count: some were trimmed unless the first kept is next
            _ => {
                let nothing_between = match info.first_entry {
                    Some(first) => first == (at.last.0, at.last.1 + 1),
                    None => info.last_generated == at.last,
                };
                (at, if nothing_between { Some(0) } else { None })
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(length: u64, last: EntryId, added: u64, first: Option<EntryId>) -> StreamInfo {
        StreamInfo { length, last_generated: last, entries_added: Some(added), first_entry: first }
    }

    #[test]
    fn gaps_are_counted_exactly() {
        let at = Position { last: (100, 0), added: Some(50) };
        // nothing trimmed past the reader: the stream still holds its last entry
        assert_eq!(gap(at, Some(&info(60, (200, 0), 80, Some((90, 0))))), (at, Some(0)));
        // 30 added since, 20 kept: 10 trimmed unread
        let (next, lost) = gap(at, Some(&info(20, (200, 0), 80, Some((150, 0)))));
        assert_eq!(lost, Some(10));
        assert_eq!(next, Position { last: (100, 0), added: Some(60) });
        // the reader's own entry trimmed, but everything after it kept: nothing lost
        assert_eq!(gap(at, Some(&info(30, (200, 0), 80, Some((101, 0))))).1, Some(0));
        // emptied by trimming after 5 more
        assert_eq!(gap(at, Some(&info(0, (200, 0), 55, None))).1, Some(5));
        // deleted, then recreated with 3 entries of which 1 was trimmed
        let (next, lost) = gap(at, Some(&info(2, (50, 0), 3, Some((40, 0)))));
        assert_eq!((next.last, lost), ((0, 0), None));
        // deleted and not recreated
        assert_eq!(gap(at, None), (Position { last: (0, 0), added: Some(0) }, None));
    }

    #[test]
    fn replies_of_both_protocols_parse() {
        let bulk = |s: &str| Value::BulkString(s.as_bytes().to_vec());
        let resp2 = Value::Array(vec![
            bulk("length"),
            Value::Int(2),
            bulk("last-generated-id"),
            bulk("7-1"),
            bulk("entries-added"),
            Value::Int(9),
            bulk("first-entry"),
            Value::Array(vec![bulk("5-0"), Value::Array(vec![bulk("uid"), bulk("x")])]),
        ]);
        let want = StreamInfo { length: 2, last_generated: (7, 1), entries_added: Some(9), first_entry: Some((5, 0)) };
        assert_eq!(StreamInfo::parse(&resp2), Some(want));
        let read = Value::Array(vec![Value::Array(vec![
            bulk("s"),
            Value::Array(vec![Value::Array(vec![bulk("1-0"), Value::Array(vec![bulk("uid"), bulk("a")])])]),
        ])]);
        let entries = xread_entries(read).expect("parses");
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].0, (1, 0));
        assert_eq!(xread_entries(Value::Nil), Some(vec![]));
        assert_eq!(xread_entries(Value::Int(3)), None);
    }
}
