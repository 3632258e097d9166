//! `sio-node`: a socketioxide + axum Socket.IO server wired to the cluster adapters.
//!
//! ```text
//! sio-node --port 3000 [--host 127.0.0.1] [--adapter URL] [--id NAME]
//! ```
//!
//! Without `--adapter` it is a single node (in-process transport); with `redis://`,
//! `rediss://`, `kafka://` (feature `kafka`), `amqp://` or `amqps://` (feature `amqp`) it
//! joins that cluster. Namespaces `/` and `/admin` answer the contract
//! events described in the README (`join`, `leave`, `emit`, `emit_with_ack`,
//! `fetch_sockets`, `all_rooms`, `server_count`, `sockets_join`, `sockets_leave`,
//! `disconnect_sockets`, `server_side_emit`), each through its ack callback, plus
//! `server_events` (the server-side events this node received, for checking delivery) and
//! `cluster_view` (what the live cluster page at `GET /cluster` shows).
//! `GET /health` (liveness) answers at once from local state, whatever the broker does:
//! the node's name and the other nodes it knows. `GET /ready` (readiness) is 200 `ready`
//! while the transport is connected and every namespace's subscription proves that it
//! receives (the health check), else 503 with a one-line reason. `GET /metrics` serves
//! the engines' and the transport's metrics in the Prometheus text format (the library's
//! `socketio_adapter_core::metrics`). `GET /stats` gives the engine's counters per
//! namespace as JSON (among them `dropped_deliveries`: see `--slow-socket-policy`).
//! Arguments keep their type across the cluster, binary attachments included.
#![allow(clippy::print_stderr)]

use std::collections::VecDeque;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use axum::serve::ListenerExt;
use clap::Parser;
use futures_util::StreamExt;
use serde_json::{Value as Json, json};
use socketio_adapter_core::dialect::{Dialect, NodeClusterDialect};
use socketio_adapter_core::metrics;
use socketio_adapter_core::socketioxide::{ClusterHandle, SioAdapter, SioState, SlowSocketPolicy};
use socketio_adapter_core::{
    Args as EventArgs, BroadcastOptions, ClusterConfig, ClusterCore, EventPacket, Room, Transport, Value, error_chain,
};
use socketioxide::SocketIo;
use socketioxide::adapter::Emitter;
use socketioxide::extract::{AckSender, Event, SocketRef, TryData};
use socketioxide::handler::ConnectHandler;

type Adapter<T> = SioAdapter<Emitter, T>;

// glibc's allocator contends between the runtime's threads under fan-out; mimalloc does not.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A Socket.IO node of the cluster demo.
#[derive(Parser, Debug)]
#[command(name = "sio-node", version, about)]
struct Args {
    /// Port to listen on.
    #[arg(long, default_value_t = 3000)]
    port: u16,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Cluster to join: redis://, rediss://, kafka://, amqp://, amqps:// (with the transport's options).
    #[arg(long, env = "SIO_ADAPTER")]
    adapter: Option<String>,
    /// Wire protocol of the cluster, overriding the URL's `dialect=`: node-redis,
    /// node-cluster, node-streams (Redis Streams) or python (python-socketio /
    /// Flask-SocketIO, with python-socketio's own layout on every broker).
    #[arg(long)]
    dialect: Option<String>,
    /// The python dialect's message-queue channel, overriding the URL's `channel=`
    /// (python-socketio: socketio, Flask-SocketIO: flask-socketio).
    #[arg(long)]
    channel: Option<String>,
    /// The node's name in answers and on the page (default node-PORT).
    #[arg(long)]
    id: Option<String>,
    /// Directory holding socket.io-client/dist/socket.io.min.js (from npm).
    #[arg(long, env = "SIO_NODE_MODULES", default_value = ".cache/node/node_modules")]
    node_modules: PathBuf,
    /// Packets each client's send buffer holds (socketioxide's `max_buffer_size`).
    #[arg(long, default_value_t = 1024)]
    max_buffer_size: usize,
    /// How long a broadcast waits for a client whose send buffer is full before the
    /// slow-socket policy applies to it (it stopped reading).
    #[arg(long, default_value_t = 5000)]
    slow_socket_timeout_ms: u64,
    /// What happens to a client that stopped reading: `drop` its deliveries (counted) or
    /// `disconnect` it.
    #[arg(long, default_value = "drop", value_parser = ["drop", "disconnect"])]
    slow_socket_policy: String,
    /// Only for the regression test of the connect race: register the event handlers in
    /// the connect handler, as socketioxide's examples do, which loses an event a client
    /// sends right after `connect` about once in a few hundred connections.
    #[arg(long, hide = true)]
    handlers_in_connect_handler: bool,
    /// Log lines on stderr (filtered by RUST_LOG): text, or json (one object per line, the
    /// cluster's events with their `node`, `nsp` and `broker` fields).
    #[arg(long, default_value = "text", value_parser = |s: &str| s.parse::<socketio_emitter::LogFormat>())]
    log_format: socketio_emitter::LogFormat,
}

#[derive(Clone)]
struct App<T: Transport> {
    id: String,
    io: SocketIo<Adapter<T>>,
    cluster: ClusterHandle<T>,
    node_modules: PathBuf,
    /// The last server-side events received from other nodes (bounded).
    server_events: Arc<Mutex<VecDeque<Value>>>,
    /// What `GET /metrics` serves.
    metrics: Arc<prometheus_client::registry::Registry>,
}

/// How many received server-side events `server_events` remembers.
const SERVER_EVENTS_KEPT: usize = 1000;

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    // colour codes only for a terminal: log files and collectors get plain text (or JSON)
    socketio_emitter::init_logs(args.log_format, &["RUST_LOG"], "info,socketioxide=warn");
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("sio-node: cannot start the runtime: {e}");
            return std::process::ExitCode::from(1);
        }
    };
    match rt.block_on(run(args)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sio-node: {e}");
            std::process::ExitCode::from(1)
        }
    }
}

async fn run(args: Args) -> Result<(), String> {
    let id = args.id.clone().unwrap_or_else(|| format!("node-{}", args.port));
    // every argument is checked before anything connects: a host name or address as typed
    // (`localhost`, `::1`, `0.0.0.0`), resolved now
    let addr = listen_addr(&args.host, args.port).await?;
    match args.adapter.as_deref() {
        None => {
            let hub = socketio_adapter_core::memory::MemoryHub::new();
            let config = ClusterConfig::default().with_request_timeout(Duration::from_secs(3));
            serve(args, id, addr, hub.transport(), Arc::new(NodeClusterDialect::default()), config).await
        }
        Some(url) => {
            // the same dispatcher as the emitter and `sio`: one URL grammar, one place
            let mut opts = socketio_emitter::AnyOptions::parse(url).map_err(|e| format!("--adapter: {e}"))?;
            if args.dialect.is_some() || args.channel.is_some() {
                let dialect = match &args.dialect {
                    Some(d) => Some(d.parse().map_err(|e| format!("--dialect: {e}"))?),
                    None => opts.shared().dialect,
                };
                let channel = args.channel.clone().or_else(|| opts.shared().channel.clone());
                opts.set_dialect(dialect, channel).map_err(|e| format!("--dialect: {e}"))?;
            }
            let transport = opts.connect().await.map_err(|e| error_chain(&e))?;
            serve(args, id, addr, transport, opts.dialect(), opts.cluster_config()).await
        }
    }
}

/// The address to listen on: `host` as an IP address (v4 or v6, brackets allowed) or a
/// name, resolved (the first address it resolves to).
async fn listen_addr(host: &str, port: u16) -> Result<SocketAddr, String> {
    let bare = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    if let Ok(ip) = bare.parse::<std::net::IpAddr>() {
        return Ok(SocketAddr::new(ip, port));
    }
    let mut addrs =
        tokio::net::lookup_host((bare, port)).await.map_err(|e| format!("--host {host:?}: cannot resolve it: {e}"))?;
    addrs.next().ok_or_else(|| format!("--host {host:?}: resolves to no address"))
}

async fn serve<T: Transport>(
    args: Args,
    id: String,
    addr: SocketAddr,
    transport: T,
    dialect: Arc<dyn Dialect>,
    config: ClusterConfig,
) -> Result<(), String> {
    let node = id.clone();
    let server_events = Arc::new(Mutex::new(VecDeque::new()));
    let events = server_events.clone();
    let state = SioState::new(transport, dialect, config);
    let handle = state.handle();
    let state = state.on_server_side_emit(move |nsp, packet, ack| {
        if packet.event == "ping"
            && let Some(ack) = ack
        {
            // the node's name and its local sockets (the cluster page's "sockets per server")
            let sockets = handle.namespace(nsp).map_or(0, |core| core.stats().local_sockets);
            ack.send(map([("node", Value::from(node.clone())), ("sockets", Value::from(sockets as u64))]));
            return;
        }
        let mut m = socketio_adapter_core::Map::new();
        m.insert("nsp", nsp);
        m.insert("event", packet.event.clone());
        m.insert("args", Value::Array(packet.args.clone()));
        let mut events = events.lock().unwrap_or_else(|e| e.into_inner());
        if events.len() == SERVER_EVENTS_KEPT {
            events.pop_front();
        }
        events.push_back(Value::Map(m));
    });
    let policy = match args.slow_socket_policy.as_str() {
        "disconnect" => SlowSocketPolicy::Disconnect,
        _ => SlowSocketPolicy::Drop,
    };
    let state = state.with_slow_socket(Duration::from_millis(args.slow_socket_timeout_ms), policy);
    let cluster = state.handle();
    let (layer, io) =
        SocketIo::builder().max_buffer_size(args.max_buffer_size).with_adapter::<Adapter<T>>(state).build_layer();
    let mut registry = prometheus_client::registry::Registry::default();
    metrics::ClusterMetrics::of_handle(cluster.clone()).register(&mut registry);
    let app = App {
        id: id.clone(),
        io: io.clone(),
        cluster,
        node_modules: args.node_modules.clone(),
        server_events,
        metrics: Arc::new(registry),
    };
    for nsp in NAMESPACES {
        let a = app.clone();
        // The handlers go in place in a connect middleware: socketioxide awaits middlewares
        // before it sends CONNECT to the client, but spawns the connect handler after, so
        // handlers registered there can miss an event the client sends at once.
        let register = move |s: SocketRef<Adapter<T>>| {
            let a = a.clone();
            async move {
                on_connect(a, s);
                Ok::<(), Infallible>(())
            }
        };
        let joined = if args.handlers_in_connect_handler {
            io.ns(nsp, move |s: SocketRef<Adapter<T>>| async move {
                let _ = register(s).await;
            })
            .await
        } else {
            io.ns(nsp, (async || {}).with(register)).await
        };
        joined.map_err(|e| format!("namespace {nsp} could not join the cluster: {e}"))?;
    }
    let http = Router::new()
        .route("/", get(|| async { Html(include_str!("../static/index.html")) }))
        .route("/cluster", get(|| async { Html(include_str!("../static/cluster.html")) }))
        .route(
            "/socket.io.min.js",
            get({
                let a = app.clone();
                move || client_js(a.node_modules.clone())
            }),
        )
        .route(
            "/health",
            get({
                let a = app.clone();
                move || health(a.clone())
            }),
        )
        .route(
            "/ready",
            get({
                let a = app.clone();
                move || ready(a.clone())
            }),
        )
        .route(
            "/metrics",
            get({
                let a = app.clone();
                move || async move { ([(header::CONTENT_TYPE, metrics::CONTENT_TYPE)], metrics::render(&a.metrics)) }
            }),
        )
        .route(
            "/stats",
            get({
                let a = app.clone();
                move || stats(a.clone())
            }),
        )
        .layer(layer);
    // Nagle's algorithm would hold a websocket frame back while an earlier one is unacknowledged:
    // several broadcasts in one millisecond then reach a client up to tens of milliseconds late.
    // Node.js servers disable it on every connection by default; so do we.
    let listener =
        tokio::net::TcpListener::bind(addr).await.map_err(|e| format!("cannot listen on {addr}: {e}"))?.tap_io(|tcp| {
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::debug!("cannot set TCP_NODELAY on a connection: {e}");
            }
        });
    // the engines' node ids (the `node` of the cluster's log lines) under this node's name
    let nodes: Vec<String> =
        app.cluster.namespaces().iter().map(|c| format!("{}={}", c.namespace(), c.node_id())).collect();
    tracing::info!(name = %id, %addr, nodes = %nodes.join(" "), "sio-node listening");
    if args.log_format == socketio_emitter::LogFormat::Text {
        eprintln!("sio-node {id} listening on http://{addr}/");
    }
    // Graceful shutdown on SIGTERM or Ctrl-C: stop accepting, tell the cluster this node is
    // leaving (other nodes stop waiting for it at once instead of after the heartbeat
    // timeout), disconnect the clients, and exit within SHUTDOWN_BOUND whatever is still open.
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = axum::serve(listener, http)
        .with_graceful_shutdown(async {
            let _ = stopped.await;
        })
        .into_future();
    tokio::pin!(server);
    tokio::select! {
        r = &mut server => return r.map_err(|e| e.to_string()),
        () = shutdown_signal() => {}
    }
    tracing::info!(name = %id, "shutting down: leaving the cluster, disconnecting clients");
    let _ = stop.send(());
    let leaving = async {
        for nsp in NAMESPACES {
            if let Some(core) = app.cluster.namespace(nsp) {
                let _ = core.close().await;
            }
        }
        app.io.close().await;
        server.await
    };
    match tokio::time::timeout(SHUTDOWN_BOUND, leaving).await {
        Ok(r) => r.map_err(|e| e.to_string()),
        Err(_) => {
            tracing::warn!("shutdown: connections still open after {SHUTDOWN_BOUND:?}; exiting anyway");
            Ok(())
        }
    }
}

/// How long a shutdown may wait for open connections after the signal.
const SHUTDOWN_BOUND: Duration = Duration::from_secs(5);

/// SIGTERM (what orchestrators send) or Ctrl-C.
async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::warn!("cannot listen for SIGTERM: {e}");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = term => {}
    }
}

async fn client_js(dir: PathBuf) -> impl IntoResponse {
    let path = dir.join("socket.io-client/dist/socket.io.min.js");
    match tokio::fs::read(&path).await {
        Ok(body) => (StatusCode::OK, [(header::CONTENT_TYPE, "application/javascript")], body).into_response(),
        Err(e) => {
            (StatusCode::NOT_FOUND, format!("{}: {e} (npm install socket.io-client)", path.display())).into_response()
        }
    }
}

/// The namespaces every node serves.
const NAMESPACES: [&str; 2] = ["/", "/admin"];

/// Liveness: answered from local state only (never waits for the broker, so a stalled
/// broker does not make a probe kill a healthy process). `known_nodes`: the other nodes
/// of namespace `/` heard from (heartbeats, or recent traffic when the broker counts).
async fn health<T: Transport>(app: App<T>) -> impl IntoResponse {
    let known = app.cluster.namespace("/").map_or(0, |core| core.stats().known_nodes);
    axum::Json(json!({"node": app.id, "known_nodes": known}))
}

/// Readiness: 200 while every namespace is ready (transport connected, subscription
/// proven), else 503 with the first reason on one line.
async fn ready<T: Transport>(app: App<T>) -> impl IntoResponse {
    for nsp in NAMESPACES {
        let verdict = match app.cluster.namespace(nsp) {
            Some(core) => core.readiness().map_err(|e| e.to_string()),
            None => Err("not started".to_owned()),
        };
        if let Err(why) = verdict {
            return (StatusCode::SERVICE_UNAVAILABLE, format!("not ready: namespace {nsp}: {why}\n"));
        }
    }
    (StatusCode::OK, "ready\n".to_owned())
}

/// The cluster engine's counters per namespace, from local state only.
async fn stats<T: Transport>(app: App<T>) -> impl IntoResponse {
    let mut out = serde_json::Map::new();
    for nsp in NAMESPACES {
        if let Some(core) = app.cluster.namespace(nsp) {
            let mut entry = serde_json::to_value(core.stats()).unwrap_or(Json::Null);
            if let Json::Object(m) = &mut entry {
                // the engine's id: what other nodes and requesters name it by
                m.insert("uid".into(), Json::from(core.node_id()));
            }
            out.insert(nsp.to_owned(), entry);
        }
    }
    axum::Json(json!({"node": app.id, "namespaces": out}))
}

fn strings(v: &Json) -> Vec<String> {
    match v {
        Json::String(s) => vec![s.clone()],
        Json::Array(a) => a.iter().filter_map(|x| x.as_str().map(str::to_owned)).collect(),
        _ => Vec::new(),
    }
}

fn opts_of(d: &Json) -> BroadcastOptions {
    let mut o = BroadcastOptions::all();
    for r in strings(&d["to"]) {
        o = o.to(r);
    }
    for r in strings(&d["except"]) {
        o = o.except(r);
    }
    o
}

/// Puts a socket's event handlers in place (from a connect middleware: see `serve`).
fn on_connect<T: Transport>(app: App<T>, socket: SocketRef<Adapter<T>>) {
    // every socket is in the room of its own id, as in Node.js
    socket.join(socket.id.to_string());
    let nsp = socket.ns().to_owned();
    for event in [
        "join",
        "leave",
        "emit",
        "emit_with_ack",
        "fetch_sockets",
        "all_rooms",
        "server_count",
        "sockets_join",
        "sockets_leave",
        "disconnect_sockets",
        "server_side_emit",
        "server_events",
        "whoami",
        "cluster_view",
    ] {
        let app = app.clone();
        let nsp = nsp.clone();
        // `Value` (not JSON) so that binary attachments in `args` stay binary; `TryData` so
        // that an event sent without an argument still reaches the handler (`Data` would
        // reject it and leave the caller without an answer)
        socket.on(
            event,
            move |s: SocketRef<Adapter<T>>, TryData(raw): TryData<Value>, ack: AckSender<Adapter<T>>| async move {
                let raw = raw.unwrap_or(Value::Null);
                let d = serde_json::to_value(&raw).unwrap_or(Json::Null);
                let reply = match handle(&app, &nsp, &s, event, d, &raw).await {
                    Ok(v) => v,
                    Err(e) => json_value(json!({"error": e})),
                };
                let _ = ack.send(&reply);
            },
        );
    }
    // an event the contract does not know gets an error, never silence
    socket.on_fallback(|Event(event): Event, ack: AckSender<Adapter<T>>| async move {
        let _ = ack.send(&json_value(json!({ "error": format!("unknown event {event}") })));
    });
}

async fn handle<T: Transport>(
    app: &App<T>,
    nsp: &str,
    s: &SocketRef<Adapter<T>>,
    event: &str,
    d: Json,
    raw: &Value,
) -> Result<Value, String> {
    let ok = json_value(json!({"ok": true}));
    let args = || raw.get("args").and_then(Value::as_array).map(<[Value]>::to_vec).unwrap_or_default();
    let op = || app.io.of(nsp).ok_or_else(|| format!("no namespace {nsp}"));
    let core = || app.cluster.namespace(nsp).ok_or_else(|| format!("namespace {nsp} is not in the cluster"));
    let target = |d: &Json| {
        let mut o = op()?;
        let to = strings(&d["to"]);
        if !to.is_empty() {
            o = o.to(to);
        }
        let except = strings(&d["except"]);
        if !except.is_empty() {
            o = o.except(except);
        }
        Ok::<_, String>(o)
    };
    match event {
        "whoami" => Ok(json_value(json!({"node": app.id, "sid": s.id.to_string()}))),
        "cluster_view" => cluster_view(app, &core()?).await,
        "join" => {
            let rooms = strings(&d);
            if rooms.is_empty() {
                return Err("join: a room or a list of rooms".into());
            }
            s.join(rooms);
            // the ack promises that broadcasts to these rooms reach this node from now on
            if !app.cluster.sync_rooms(nsp).await {
                return Err("join: the broker did not confirm the room subscription in time".into());
            }
            Ok(ok)
        }
        "leave" => {
            let rooms = strings(&d);
            if rooms.is_empty() {
                return Err("leave: a room".into());
            }
            s.leave(rooms);
            Ok(ok)
        }
        "emit" => {
            let name = d["event"].as_str().ok_or("emit: missing event")?.to_owned();
            let args = args();
            let mut o = target(&d)?;
            if d["volatile"].as_bool() == Some(true) {
                o = o.volatile();
            }
            o.emit(&name, &EventArgs(args)).await.map_err(|e| error_chain(&e))?;
            Ok(ok)
        }
        "emit_with_ack" => {
            let name = d["event"].as_str().ok_or("emit_with_ack: missing event")?.to_owned();
            let args = args();
            let timeout = Duration::from_millis(d["timeout_ms"].as_u64().unwrap_or(2000));
            let stream = target(&d)?
                .timeout(timeout)
                .emit_with_ack::<_, Value>(&name, &EventArgs(args))
                .await
                .map_err(|e| error_chain(&e))?;
            let responses: Vec<Value> = stream.filter_map(|(_, r)| async move { r.ok() }).collect().await;
            Ok(map([("responses", Value::Array(responses))]))
        }
        "fetch_sockets" => {
            let got = core()?.fetch_sockets(opts_of(&d)).await.map_err(|e| error_chain(&e))?;
            let sockets: Vec<Json> = got
                .value
                .iter()
                .map(|s| json!({"id": s.id, "rooms": s.rooms.iter().map(Room::as_str).collect::<Vec<_>>()}))
                .collect();
            Ok(json_value(json!({"sockets": sockets, "complete": got.is_complete()})))
        }
        "all_rooms" => {
            let rooms = op()?.rooms().await.map_err(|e| error_chain(&e))?;
            Ok(json_value(json!({"rooms": rooms})))
        }
        "server_count" => {
            let count = core()?.server_count().await.map_err(|e| error_chain(&e))?;
            Ok(json_value(json!({ "count": count })))
        }
        "sockets_join" => {
            target(&d)?.join(strings(&d["rooms"])).await.map_err(|e| error_chain(&e))?;
            Ok(ok)
        }
        "sockets_leave" => {
            target(&d)?.leave(strings(&d["rooms"])).await.map_err(|e| error_chain(&e))?;
            Ok(ok)
        }
        "disconnect_sockets" => {
            // a bare call would disconnect every socket of the cluster, the caller included
            if !d.is_object() {
                return Err("disconnect_sockets: an object {to, except, close} ({} for every socket)".into());
            }
            let close = d["close"].as_bool().unwrap_or(false);
            core()?.disconnect_sockets(opts_of(&d), close).await.map_err(|e| e.to_string())?;
            Ok(ok)
        }
        "server_side_emit" => {
            let name = d["event"].as_str().ok_or("server_side_emit: missing event")?.to_owned();
            let packet = EventPacket::new(name, args());
            let core: ClusterCore<T> = core()?;
            if d["ack"].as_bool() == Some(true) {
                let got = core.server_side_emit_with_ack(packet, None).await.map_err(|e| e.to_string())?;
                Ok(map([("responses", Value::Array(got.value))]))
            } else {
                core.server_side_emit(packet).await.map_err(|e| e.to_string())?;
                Ok(ok)
            }
        }
        "server_events" => {
            let events = app.server_events.lock().unwrap_or_else(|e| e.into_inner());
            let events = events.iter().filter(|e| e.get("nsp").and_then(Value::as_str) == Some(nsp)).cloned().collect();
            Ok(map([("events", Value::Array(events))]))
        }
        other => Err(format!("unknown event {other}")),
    }
}

/// What the cluster page shows, from the cluster operations only: every server with its
/// local sockets (a server-side emit `ping` with acks, plus this node), the rooms with
/// their members (`fetch_sockets`, socket-id rooms left out) and this node's cluster
/// message counter (published + received; the page turns it into a rate).
async fn cluster_view<T: Transport>(app: &App<T>, core: &ClusterCore<T>) -> Result<Value, String> {
    let stats = core.stats();
    let pings = core.server_side_emit_with_ack(EventPacket::new("ping", vec![]), None);
    let sockets = core.fetch_sockets(BroadcastOptions::all());
    let (pings, sockets) = tokio::join!(pings, sockets);
    let (pings, sockets) = (pings.map_err(|e| e.to_string())?, sockets.map_err(|e| e.to_string())?);
    let mut servers = vec![json!({"node": app.id, "sockets": stats.local_sockets})];
    servers.extend(pings.value.iter().map(|v| serde_json::to_value(v).unwrap_or(Json::Null)));
    servers.sort_by(|a, b| a["node"].as_str().cmp(&b["node"].as_str()));
    let mut rooms = std::collections::BTreeMap::<&str, u64>::new();
    for s in &sockets.value {
        for r in s.rooms.iter().map(Room::as_str).filter(|r| *r != s.id) {
            *rooms.entry(r).or_default() += 1;
        }
    }
    let rooms: Vec<Json> = rooms.into_iter().map(|(room, members)| json!({"room": room, "members": members})).collect();
    Ok(json_value(json!({
        "node": app.id,
        "servers": servers,
        "rooms": rooms,
        "messages": stats.published + stats.received,
        "complete": pings.shortfall.is_none() && sockets.shortfall.is_none(),
    })))
}

/// A reply built as JSON (it has no binary).
fn json_value(j: Json) -> Value {
    Value::from_serialize(&j).unwrap_or(Value::Null)
}

fn map<const N: usize>(entries: [(&str, Value); N]) -> Value {
    let mut m = socketio_adapter_core::Map::new();
    for (k, v) in entries {
        m.insert(k, v);
    }
    Value::Map(m)
}
