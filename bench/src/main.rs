//! `sio-bench`: the Rust side of the benchmark harness (`scripts/bench.sh` drives it
//! through `bench/suite.py`). Every command prints one JSON line.
//!
//! ```text
//! sio-bench publish --url redis://..?prefix=P --n 100000 --depth 512      # our emitter library
//! sio-bench raw --url redis://.. --prefix P --n 100000 --depth 512        # the raw broker client, same bytes
//! sio-bench deliver --server http://127.0.0.1:3000 --sender ours:redis://..?prefix=P --clients 100 \
//!           --mode burst --n 20000 | --mode paced --rate 1000 --secs 5      # fan-out and latency
//! sio-bench sxr-server --port 3001 --redis redis://.. --prefix P          # socketioxide + socketioxide-redis
//! sio-bench ingest | rooms ...                                            # the adapter without websockets
//! ```
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod client;
mod emit;
mod local;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::serve::ListenerExt;
use clap::{Parser, Subcommand};
use serde_json::{Value as Json, json};

use client::{Caller, ClientOptions, Clients};
use emit::Sender;

// As in sio-node and sio: glibc's allocator contends between threads (futex waits took a
// third of an emitter run's profile); mimalloc does not.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Wall clock in ms (the latency clock: senders and clients run on one machine).
pub fn now_ms() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64() * 1000.0).unwrap_or(0.0)
}

#[derive(Parser, Debug)]
#[command(name = "sio-bench", about = "Benchmark commands of the harness (see scripts/bench.sh)")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

/// What a publish-rate command sends.
#[derive(clap::Args, Debug)]
struct Load {
    #[arg(long, default_value = "bench")]
    room: String,
    #[arg(long, default_value_t = 100_000)]
    n: u64,
    /// Publishes in flight.
    #[arg(long, default_value_t = 512)]
    depth: usize,
    /// Text padding that makes the encoded message about 100 bytes.
    #[arg(long, default_value_t = 40)]
    pad: usize,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Emit rate of our emitter library: n emits to a room, `depth` in flight.
    Publish {
        #[arg(long)]
        url: String,
        #[command(flatten)]
        load: Load,
    },
    /// The raw broker client publishing the bytes our emitter would (same connection
    /// count and depth): redis://, kafka://host:port/topic, amqp://..#exchange/key.
    Raw {
        #[arg(long)]
        url: String,
        #[arg(long, default_value = "bench")]
        prefix: String,
        #[command(flatten)]
        load: Load,
    },
    /// Clients on one server, a sender into the cluster: deliveries, loss, latency, CPU.
    Deliver {
        /// `http://host:port` of the server the clients connect to.
        #[arg(long)]
        server: String,
        /// `ours:URL` (our emitter) or `sxr:REDIS_URL:PREFIX` (a socketioxide-redis node).
        #[arg(long)]
        sender: String,
        #[arg(long, default_value_t = 10)]
        clients: usize,
        #[arg(long, default_value = "bench")]
        room: String,
        /// `burst` (n emits, depth in flight) or `paced` (rate per second for secs).
        #[arg(long, default_value = "burst")]
        mode: String,
        #[arg(long, default_value_t = 20_000)]
        n: u64,
        #[arg(long, default_value_t = 256)]
        depth: usize,
        #[arg(long, default_value_t = 1000)]
        rate: u64,
        #[arg(long, default_value_t = 5.0)]
        secs: f64,
        #[arg(long, default_value_t = 40)]
        pad: usize,
        /// Pid of the server process, for its CPU time.
        #[arg(long)]
        server_pid: Option<u32>,
        /// Measured runs on the same clients, after a short warm-up (the last is printed).
        #[arg(long, default_value_t = 1)]
        runs: usize,
    },
    /// A socketioxide server on socketioxide-redis (the Rust alternative) with the `join`
    /// contract event.
    SxrServer {
        #[arg(long)]
        port: u16,
        #[arg(long, default_value = "redis://127.0.0.1:6379")]
        redis: String,
        #[arg(long, default_value = "socket.io")]
        prefix: String,
        #[arg(long, default_value_t = 1024)]
        max_buffer_size: usize,
    },
    /// Across 3 nodes: a client's broadcast to clients on every node, and the round trips
    /// of `fetch_sockets` and `server_side_emit` with acks (contract events).
    Cross {
        /// `http://host:port` of each node, comma-separated (the caller is on the first).
        #[arg(long, value_delimiter = ',')]
        servers: Vec<String>,
        #[arg(long, default_value_t = 10)]
        clients_per_node: usize,
        #[arg(long, default_value_t = 2_000)]
        n: u64,
        #[arg(long, default_value_t = 32)]
        depth: usize,
        #[arg(long, default_value_t = 200)]
        calls: u64,
        #[arg(long, default_value_t = 40)]
        pad: usize,
    },
    /// Adapter ingest without websockets: broadcasts decoded and resolved to local sockets.
    Ingest {
        #[arg(long, default_value_t = 10_000)]
        sockets: usize,
        #[arg(long, default_value_t = 1_000)]
        rooms: usize,
        #[arg(long, default_value_t = 200_000)]
        n: u64,
    },
    /// The room index: memory per membership, or broadcast cost as rooms grow.
    Rooms {
        /// `memory` or `broadcast`.
        #[arg(long)]
        mode: String,
        #[arg(long, default_value_t = 100_000)]
        sockets: usize,
        #[arg(long, default_value_t = 10)]
        rooms_per_socket: usize,
        #[arg(long, default_value_t = 10_000)]
        rooms: usize,
        #[arg(long, default_value_t = 10)]
        hot: usize,
        #[arg(long, default_value_t = 2_000)]
        iterations: u64,
    },
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("sio-bench: {e}");
            return std::process::ExitCode::from(1);
        }
    };
    match rt.block_on(run(cli.cmd)) {
        Ok(out) => {
            if !out.is_null() {
                println!("{out}");
            }
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("sio-bench: {e}");
            std::process::ExitCode::from(1)
        }
    }
}

fn rate(n: u64, d: Duration) -> Json {
    json!({"n": n, "secs": d.as_secs_f64(), "rate": n as f64 / d.as_secs_f64().max(1e-9)})
}

async fn run(cmd: Cmd) -> Result<Json, String> {
    match cmd {
        Cmd::Publish { url, load: Load { room, n, depth, pad } } => {
            let sender = Sender::ours(&url).await?;
            let pad = "x".repeat(pad);
            Ok(rate(n, sender.burst(&room, n, depth, &pad).await?))
        }
        Cmd::Raw { url, prefix, load: Load { room, n, depth, pad } } => {
            raw(&url, &prefix, &room, n, depth, &"x".repeat(pad)).await
        }
        Cmd::Deliver { server, sender, clients, room, mode, n, depth, rate, secs, pad, server_pid, runs } => {
            let sender = match sender.split_once(':') {
                Some(("ours", url)) => Sender::ours(url).await?,
                Some(("sxr", rest)) => {
                    let (url, prefix) = rest.rsplit_once(':').ok_or("--sender sxr:REDIS_URL:PREFIX")?;
                    Sender::sxr(url, prefix).await?
                }
                _ => return Err(format!("--sender {sender}: ours:URL or sxr:REDIS_URL:PREFIX")),
            };
            let opts = ClientOptions { url: server, room: room.clone(), event: "m".into(), sample_every: 1 };
            let c = Clients::connect(clients, &opts).await?;
            let pad = "x".repeat(pad);
            // a short warm-up on the same clients, then the measured runs (the last is printed)
            let warm = ((n / 10).max(10), depth, rate, secs.min(1.0));
            let mut last = deliver(&c, &sender, &room, &mode, warm, &pad, None).await?;
            for _ in 0..runs.max(1) {
                if last["lost"].as_u64() != Some(0) {
                    break;
                }
                c.reset();
                last = deliver(&c, &sender, &room, &mode, (n, depth, rate, secs), &pad, server_pid).await?;
            }
            Ok(last)
        }
        Cmd::SxrServer { port, redis, prefix, max_buffer_size } => {
            let (layer, _io) = emit::sxr_io(&redis, &prefix, max_buffer_size).await?;
            let app = axum::Router::new().layer(layer);
            // TCP_NODELAY like sio-node and Node.js servers, so that the comparison is of the
            // adapters and not of a socket option.
            let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
                .await
                .map_err(|e| format!("listen on {port}: {e}"))?
                .tap_io(|tcp| {
                    let _ = tcp.set_nodelay(true);
                });
            println!("{}", json!({"ready": true, "pid": std::process::id()}));
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = tokio::signal::ctrl_c().await;
                })
                .await
                .map_err(|e| e.to_string())?;
            Ok(Json::Null)
        }
        Cmd::Cross { servers, clients_per_node, n, depth, calls, pad } => {
            cross(&servers, clients_per_node, n, depth, calls, &"x".repeat(pad)).await
        }
        Cmd::Ingest { sockets, rooms, n } => local::ingest(sockets, rooms, n).await,
        Cmd::Rooms { mode, sockets, rooms_per_socket, rooms, hot, iterations } => match mode.as_str() {
            "memory" => Ok(local::rooms_memory(sockets, rooms_per_socket, rooms)),
            "broadcast" => Ok(local::rooms_broadcast(rooms, hot, iterations)),
            other => Err(format!("--mode {other}: memory or broadcast")),
        },
    }
}

async fn raw(url: &str, prefix: &str, room: &str, n: u64, depth: usize, pad: &str) -> Result<Json, String> {
    let (channel, payload) = emit::sample_message(prefix, room, pad);
    let bytes = payload.len();
    let took = if url.starts_with("redis://") {
        emit::raw_redis(url, &channel, payload, n, depth).await?
    } else if let Some(rest) = url.strip_prefix("kafka://") {
        #[cfg(feature = "kafka")]
        {
            let (brokers, topic) = rest.split_once('/').ok_or("kafka://host:port/topic")?;
            emit::raw_kafka(brokers, topic, payload, n, depth).await?
        }
        #[cfg(not(feature = "kafka"))]
        return Err(format!("{rest}: built without feature kafka"));
    } else if url.starts_with("amqp://") {
        #[cfg(feature = "amqp")]
        {
            let (conn, target) = url.split_once('#').ok_or("amqp://...#exchange/key")?;
            let (exchange, key) = target.split_once('/').ok_or("amqp://...#exchange/key")?;
            emit::raw_amqp(conn, exchange, key, payload, n, depth).await?
        }
        #[cfg(not(feature = "amqp"))]
        return Err("built without feature amqp".into());
    } else {
        return Err(format!("--url {url}: redis://, kafka:// or amqp://"));
    };
    let mut out = rate(n, took);
    out["bytes"] = json!(bytes);
    Ok(out)
}

/// CPU seconds (user + system) of a process, from /proc.
fn cpu_secs(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // fields after the command (which may hold spaces) in parentheses
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

fn percentile(sorted: &[u32], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let i = ((p / 100.0) * sorted.len() as f64) as usize;
    Some(f64::from(sorted[i.min(sorted.len() - 1)]) / 1000.0)
}

async fn deliver(
    c: &Clients,
    sender: &Sender,
    room: &str,
    mode: &str,
    (n, depth, rate, secs): (u64, usize, u64, f64),
    pad: &str,
    server_pid: Option<u32>,
) -> Result<Json, String> {
    let k = c.counters.len() as u64;
    let (cpu_me, cpu_server) = (cpu_secs(std::process::id()), server_pid.and_then(cpu_secs));
    let started = std::time::Instant::now();
    let sent = match mode {
        "burst" => {
            sender.burst(room, n, depth, pad).await?;
            n
        }
        "paced" => sender.paced(room, rate, secs, pad).await?,
        other => return Err(format!("--mode {other}: burst or paced")),
    };
    let expected = sent * k;
    let received = c.wait_for(expected, Duration::from_secs(5)).await;
    // the run ends at the last delivery, not after the idle wait of a short count
    let took = if received >= expected { started.elapsed() } else { started.elapsed() - Duration::from_secs(5) };
    let (out_of_order, dups) = c.disorder();
    let lat = c.latencies();
    let cpu = |before: Option<f64>, pid: Option<u32>| Some(pid.and_then(cpu_secs)? - before?);
    Ok(json!({
        "clients": k, "mode": mode, "sent": sent, "expected": expected, "received": received,
        "lost": expected.saturating_sub(received), "out_of_order": out_of_order, "dups": dups,
        "secs": took.as_secs_f64(),
        "msgs_per_s": sent as f64 / took.as_secs_f64(),
        "deliveries_per_s": received as f64 / took.as_secs_f64(),
        "p50_ms": percentile(&lat, 50.0), "p99_ms": percentile(&lat, 99.0), "p999_ms": percentile(&lat, 99.9),
        "client_cpu_s": cpu(cpu_me, Some(std::process::id())),
        "server_cpu_s": cpu(cpu_server, server_pid),
    }))
}

/// Sorted round-trip times in µs of `calls` sequential calls, each checked by `ok`.
async fn round_trips(
    caller: &Caller,
    event: &str,
    data: &Json,
    calls: u64,
    ok: impl Fn(&Json) -> bool,
) -> Result<Vec<u32>, String> {
    let mut rtt = Vec::with_capacity(calls as usize);
    for _ in 0..calls {
        let t = std::time::Instant::now();
        let reply = caller.call(event, data.clone()).await?;
        rtt.push(t.elapsed().as_micros().min(u128::from(u32::MAX)) as u32);
        if !ok(&reply) {
            return Err(format!("{event}: unexpected answer {reply}"));
        }
    }
    rtt.sort_unstable();
    Ok(rtt)
}

async fn cross(servers: &[String], k: usize, n: u64, depth: usize, calls: u64, pad: &str) -> Result<Json, String> {
    use futures_util::StreamExt;
    let mut all = Vec::new();
    for url in servers {
        let opts = ClientOptions { url: url.clone(), room: "bench".into(), event: "m".into(), sample_every: 1 };
        all.push(Clients::connect(k, &opts).await?);
    }
    let first = servers.first().ok_or("--servers: at least one")?;
    let caller = Caller::connect(first).await?;
    let emit = |seq: u64| {
        let caller = caller.clone();
        let data = json!({"to": ["bench"], "event": "m", "args": [seq, now_ms(), pad]});
        async move { caller.call("emit", data).await }
    };
    for seq in 0..50 {
        emit(seq).await?;
    }
    let nodes = all.len() as u64;
    let want_warm = 50 * k as u64 * nodes;
    for c in &all {
        c.wait_for(want_warm / nodes, Duration::from_secs(5)).await;
        c.reset();
    }
    let started = std::time::Instant::now();
    let mut acks = futures_util::stream::iter(0..n).map(emit).buffered(depth.max(1));
    while let Some(r) = acks.next().await {
        r?;
    }
    let mut received = 0;
    for c in &all {
        received += c.wait_for(n * k as u64, Duration::from_secs(5)).await;
    }
    let took = started.elapsed();
    let expected = n * k as u64 * nodes;
    let mut lat: Vec<u32> = all.iter().flat_map(Clients::latencies).collect();
    lat.sort_unstable();
    let disorder = all.iter().map(Clients::disorder).fold((0, 0), |a, d| (a.0 + d.0, a.1 + d.1));
    let sockets = k * servers.len();
    let fetch = round_trips(&caller, "fetch_sockets", &json!({"to": ["bench"]}), calls, |r| {
        r["sockets"].as_array().map(Vec::len) == Some(sockets)
    })
    .await?;
    let others = servers.len() - 1;
    let ping = json!({"event": "ping", "args": [], "ack": true});
    let sse = round_trips(&caller, "server_side_emit", &ping, calls, |r| {
        r["responses"].as_array().map(Vec::len) == Some(others)
    })
    .await?;
    Ok(json!({
        "nodes": nodes, "clients": sockets, "sent": n, "expected": expected, "received": received,
        "lost": expected.saturating_sub(received), "out_of_order": disorder.0, "dups": disorder.1,
        "deliveries_per_s": received as f64 / took.as_secs_f64(),
        "p50_ms": percentile(&lat, 50.0), "p99_ms": percentile(&lat, 99.0),
        "fetch_sockets_p50_ms": percentile(&fetch, 50.0), "fetch_sockets_p99_ms": percentile(&fetch, 99.0),
        "server_side_emit_p50_ms": percentile(&sse, 50.0), "server_side_emit_p99_ms": percentile(&sse, 99.0),
    }))
}
