//! The senders of the benchmark: our emitter library (any URL), a raw broker client
//! publishing the same bytes, and a socketioxide node with `socketioxide-redis` (whose
//! wire format nobody else speaks, so its fan-out is driven by one of its own nodes).

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use socketio_adapter_core::dialect::{Dialect, NodeRedisDialect};
use socketio_adapter_core::{Body, BroadcastOptions, EventPacket, Message, Value};
use socketio_emitter::Emitter;
use socketioxide::SocketIo;
use socketioxide::extract::SocketRef;
use socketioxide_redis::{RedisAdapter, RedisAdapterConfig, RedisAdapterCtr};

use crate::now_ms;

/// socketioxide with the socketioxide-redis adapter.
pub type SxrAdapter = RedisAdapter<socketioxide::adapter::Emitter>;

/// Something that emits `("m", seq, t_ms, pad)` to a room.
#[derive(Clone)]
pub enum Sender {
    /// Our emitter library.
    Ours(Emitter),
    /// A socketioxide node on socketioxide-redis (no clients of its own).
    Sxr(SocketIo<SxrAdapter>),
}

impl std::fmt::Debug for Sender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Sender::Ours(_) => "Sender::Ours",
            Sender::Sxr(_) => "Sender::Sxr",
        })
    }
}

impl Sender {
    /// Our emitter on `url` (the URL grammar of the emitter: `redis://..?prefix=..`).
    pub async fn ours(url: &str) -> Result<Sender, String> {
        Emitter::connect(url).await.map(Sender::Ours).map_err(|e| format!("emitter {url}: {e}"))
    }

    /// A socketioxide-redis node on `redis` with key prefix `prefix`.
    pub async fn sxr(redis_url: &str, prefix: &str) -> Result<Sender, String> {
        let io = sxr_io(redis_url, prefix, 1024).await?.1;
        Ok(Sender::Sxr(io))
    }

    /// Emits message `seq` to `room`.
    pub async fn emit(&self, room: &str, seq: u64, pad: &str) -> Result<(), String> {
        let args = (seq, now_ms(), pad);
        match self {
            Sender::Ours(io) => io.to(room).emit("m", args).await.map_err(|e| e.to_string()),
            Sender::Sxr(io) => io.to(room.to_owned()).emit("m", &args).await.map_err(|e| e.to_string()),
        }
    }

    /// `n` emits, `depth` in flight, in order; returns the time it took.
    pub async fn burst(&self, room: &str, n: u64, depth: usize, pad: &str) -> Result<Duration, String> {
        let started = Instant::now();
        let mut results = futures_util::stream::iter(0..n).map(|i| self.emit(room, i, pad)).buffered(depth.max(1));
        while let Some(r) = results.next().await {
            r?;
        }
        Ok(started.elapsed())
    }

    /// Emits at `rate` per second for `secs`; returns how many were sent. Emits start on
    /// schedule whatever the broker's publish latency (up to 1024 in flight, in order), so
    /// the offered rate is the rate asked for.
    pub async fn paced(&self, room: &str, rate: u64, secs: f64, pad: &str) -> Result<u64, String> {
        let total = (rate as f64 * secs) as u64;
        let started = Instant::now();
        let mut sent = 0u64;
        let mut in_flight = futures_util::stream::FuturesOrdered::new();
        let mut tick = tokio::time::interval(Duration::from_millis(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        while sent < total || !in_flight.is_empty() {
            tokio::select! {
                Some(r) = in_flight.next(), if !in_flight.is_empty() => r?,
                _ = tick.tick(), if sent < total => {
                    let due = ((started.elapsed().as_secs_f64() * rate as f64) as u64).min(total);
                    while sent < due && in_flight.len() < 1024 {
                        in_flight.push_back(self.emit(room, sent, pad));
                        sent += 1;
                    }
                }
            }
        }
        Ok(sent)
    }
}

/// A socketioxide server on socketioxide-redis: `(layer, io)` with namespace `/` joined.
/// Clients call `join` (data: a room) with an ack; handlers go in place in a connect
/// middleware.
pub async fn sxr_io(
    redis_url: &str,
    prefix: &str,
    max_buffer: usize,
) -> Result<(socketioxide::layer::SocketIoLayer<SxrAdapter>, SocketIo<SxrAdapter>), String> {
    use socketioxide::extract::{AckSender, Data};
    use socketioxide::handler::ConnectHandler;
    let sep = if redis_url.contains('?') { '&' } else { '?' };
    let client = redis::Client::open(format!("{redis_url}{sep}protocol=resp3")).map_err(|e| e.to_string())?;
    let config = RedisAdapterConfig::new().with_prefix(prefix.to_owned());
    let ctr = RedisAdapterCtr::new_with_redis_config(&client, config).await.map_err(|e| e.to_string())?;
    let (layer, io) = SocketIo::builder().max_buffer_size(max_buffer).with_adapter::<SxrAdapter>(ctr).build_layer();
    let handlers = async |s: SocketRef<SxrAdapter>| -> Result<(), std::convert::Infallible> {
        s.on("join", async |s: SocketRef<SxrAdapter>, Data(room): Data<String>, ack: AckSender<SxrAdapter>| {
            s.join(room);
            let _ = ack.send("ok");
        });
        Ok(())
    };
    io.ns("/", (async || {}).with(handlers)).await.map_err(|e| e.to_string())?;
    Ok((layer, io))
}

/// The bytes our emitter publishes for `("m", seq, t, pad)` to `room` (node-redis
/// dialect), and their channel: what the raw clients publish, so that both move the same
/// bytes.
pub fn sample_message(prefix: &str, room: &str, pad: &str) -> (String, bytes::Bytes) {
    let dialect = NodeRedisDialect::new(prefix);
    let args = vec![Value::from(0u64), Value::from(now_ms()), Value::from(pad)];
    let body = Body::Broadcast { packet: EventPacket::new("m", args), opts: BroadcastOptions::default().to(room) };
    let out = dialect.encode(&Message::new(None, "/".to_owned(), body)).unwrap_or_else(|e| panic!("encode: {e}"));
    (out.channel, out.payload)
}

/// A raw broker publisher of fixed bytes, with `depth` publishes in flight.
pub async fn raw_publish<F, Fut>(n: u64, depth: usize, publish: F) -> Result<Duration, String>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    let started = Instant::now();
    let mut results = futures_util::stream::iter(0..n).map(|_| publish()).buffered(depth.max(1));
    while let Some(r) = results.next().await {
        r?;
    }
    Ok(started.elapsed())
}

/// Raw redis-rs: `PUBLISH channel payload` on one multiplexed connection.
pub async fn raw_redis(
    url: &str,
    channel: &str,
    payload: bytes::Bytes,
    n: u64,
    depth: usize,
) -> Result<Duration, String> {
    let client = redis::Client::open(url).map_err(|e| e.to_string())?;
    let config = redis::AsyncConnectionConfig::new().set_pipeline_buffer_size(1024);
    let conn = client.get_multiplexed_async_connection_with_config(&config).await.map_err(|e| e.to_string())?;
    let channel: Arc<str> = Arc::from(channel);
    raw_publish(n, depth, || {
        let mut conn = conn.clone();
        let channel = Arc::clone(&channel);
        let payload = payload.clone();
        async move {
            redis::cmd("PUBLISH")
                .arg(&*channel)
                .arg(payload.as_ref())
                .query_async::<redis::Value>(&mut conn)
                .await
                .map(drop)
                .map_err(|e| e.to_string())
        }
    })
    .await
}

#[cfg(feature = "kafka")]
/// Raw rdkafka: records of fixed bytes on `topic`, acknowledged by the broker.
pub async fn raw_kafka(
    brokers: &str,
    topic: &str,
    payload: bytes::Bytes,
    n: u64,
    depth: usize,
) -> Result<Duration, String> {
    use rdkafka::ClientConfig;
    use rdkafka::producer::{FutureProducer, FutureRecord};
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        // as the Kafka transport configures its producer
        .set("linger.ms", "1")
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .set("queue.buffering.max.messages", "100000")
        .create()
        .map_err(|e| e.to_string())?;
    let topic: Arc<str> = Arc::from(topic);
    raw_publish(n, depth, || {
        let producer = producer.clone();
        let topic = Arc::clone(&topic);
        let payload = payload.clone();
        async move {
            // keyed by namespace, as the transport does (one partition, in order)
            let record = FutureRecord::<str, [u8]>::to(&topic).key("/").payload(payload.as_ref());
            producer.send(record, Duration::from_secs(10)).await.map(drop).map_err(|(e, _)| e.to_string())
        }
    })
    .await
}

#[cfg(feature = "amqp")]
/// Raw lapin: messages of fixed bytes to a direct exchange, with publisher confirms.
pub async fn raw_amqp(
    url: &str,
    exchange: &str,
    key: &str,
    payload: bytes::Bytes,
    n: u64,
    depth: usize,
) -> Result<Duration, String> {
    use lapin::options::{BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions};
    use lapin::types::FieldTable;
    use lapin::{BasicProperties, Connection, ConnectionProperties, ExchangeKind};
    let conn = Connection::connect(url, ConnectionProperties::default()).await.map_err(|e| e.to_string())?;
    let channel = conn.create_channel().await.map_err(|e| e.to_string())?;
    channel.confirm_select(ConfirmSelectOptions::default()).await.map_err(|e| e.to_string())?;
    let opts = ExchangeDeclareOptions { durable: false, auto_delete: false, ..Default::default() };
    channel
        .exchange_declare(exchange.into(), ExchangeKind::Direct, opts, FieldTable::default())
        .await
        .map_err(|e| e.to_string())?;
    raw_publish(n, depth, || {
        let channel = channel.clone();
        let payload = payload.clone();
        async move {
            let confirm = channel
                .basic_publish(
                    exchange.into(),
                    key.into(),
                    BasicPublishOptions::default(),
                    payload.as_ref(),
                    BasicProperties::default(),
                )
                .await
                .map_err(|e| e.to_string())?;
            confirm.await.map(drop).map_err(|e| e.to_string())
        }
    })
    .await
}
