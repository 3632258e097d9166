//! `sio`: emit into a Socket.IO cluster and inspect it from a shell.
//!
//! Exit status: 0 success, 1 a broker or cluster failure (unreachable, timeout), 2 bad
//! usage or input. Errors are one line on stderr with their cause chain.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use base64::Engine;
use clap::{Args as ClapArgs, Parser, Subcommand};
use socketio_adapter_core::cluster::Listener;
use socketio_adapter_core::{AdapterError, Channel};
use socketio_emitter::{Args, ConnectOptions, DialectKind, Emitter, EmitterError, Value};
use tokio::io::AsyncBufReadExt;

const EXAMPLES: &str = "\
ARG is a JSON value ('42', '{\"a\":1}', '\"text\"'), =TEXT for a plain string, or @FILE for
binary read from a file (@- reads standard input).

examples:
  sio emit chat '{\"user\":\"ops\",\"text\":\"deploy done\"}'
  sio emit --to room1 --except muted alert =\"disk full\"
  sio emit upload @report.pdf
  sio emit --ack --timeout 3000 question =ready?
  sio --nsp /admin sockets --to ops
  printf '%s\\n' '{\"event\":\"tick\",\"args\":[1]}' | sio emit --stdin";

/// Emit into a Socket.IO cluster and inspect it.
#[derive(Parser, Debug)]
#[command(
    name = "sio",
    version,
    about = "Emit into a Socket.IO cluster (Node.js, Rust or Python servers) and inspect it: rooms, sockets, servers, traffic",
    after_help = EXAMPLES
)]
struct Cli {
    /// Broker URL: redis://, rediss://, kafka://, amqp://, amqps:// (with the servers' options).
    #[arg(long, env = "SIO_URL", default_value = "redis://127.0.0.1:6379", global = true)]
    url: String,
    /// Namespace.
    #[arg(long, default_value = "/", global = true)]
    nsp: String,
    /// Wire protocol: auto (from the URL), node (redis-adapter classic), cluster (sharded
    /// Redis, Kafka, AMQP) or python.
    #[arg(long, default_value = "auto", global = true)]
    dialect: String,
    /// Channel prefix [default: socket.io, or the URL's prefix option].
    #[arg(long, global = true)]
    prefix: Option<String>,
    /// Message-queue channel of the python dialect.
    #[arg(long, default_value = "socketio", global = true)]
    channel: String,
    /// Timeout of requests and acks, in milliseconds.
    #[arg(long, default_value_t = 5000, global = true)]
    timeout: u64,
    #[command(subcommand)]
    command: Command,
}

#[derive(ClapArgs, Debug, Default)]
struct Target {
    /// Only sockets in this room (repeatable; a socket id is a room).
    #[arg(long = "to", value_name = "ROOM")]
    to: Vec<String>,
    /// Leave out sockets in this room (repeatable).
    #[arg(long = "except", value_name = "ROOM")]
    except: Vec<String>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Send an event to clients.
    Emit {
        #[command(flatten)]
        target: Target,
        /// Drop the event for clients not ready to receive it.
        #[arg(long)]
        volatile: bool,
        /// Ask the servers not to compress the packet.
        #[arg(long)]
        no_compress: bool,
        /// Wait for the clients' acks and print them as JSON lines.
        #[arg(long, conflicts_with = "stdin")]
        ack: bool,
        /// Read newline-delimited JSON objects {"event", "args", "to", "except", "nsp",
        /// "volatile"} from standard input, one emit per line, pipelined.
        #[arg(long)]
        stdin: bool,
        /// Event name.
        #[arg(required_unless_present = "stdin")]
        event: Option<String>,
        /// Arguments (see below).
        #[arg(allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Make the targeted sockets join rooms.
    Join {
        /// Rooms to join.
        #[arg(required = true)]
        rooms: Vec<String>,
        #[command(flatten)]
        target: Target,
    },
    /// Make the targeted sockets leave rooms.
    Leave {
        /// Rooms to leave.
        #[arg(required = true)]
        rooms: Vec<String>,
        #[command(flatten)]
        target: Target,
    },
    /// Disconnect the targeted sockets.
    Disconnect {
        #[command(flatten)]
        target: Target,
        /// Also close the underlying connection.
        #[arg(long)]
        close: bool,
    },
    /// Send an event to the servers (serverSideEmit).
    ServerEmit {
        /// Wait for the servers' acks and print them as JSON lines.
        #[arg(long)]
        ack: bool,
        /// Event name.
        event: String,
        /// Arguments.
        #[arg(allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Print every room of the cluster, one per line.
    Rooms,
    /// Print id and rooms of the targeted sockets across the cluster, as JSON lines.
    Sockets {
        #[command(flatten)]
        target: Target,
    },
    /// Print the number of targeted sockets across the cluster.
    Count {
        #[command(flatten)]
        target: Target,
    },
    /// Print the number of servers.
    Servers,
    /// Print the broadcasts of the namespace as JSON lines until interrupted.
    Tail,
}

/// A failure with its exit status.
struct Failure {
    code: u8,
    message: String,
}

fn usage(message: impl Into<String>) -> Failure {
    Failure { code: 2, message: message.into() }
}

/// The message with its cause chain on one line.
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let s = c.to_string();
        if !out.contains(&s) {
            out.push_str(": ");
            out.push_str(&s);
        }
        cur = c.source();
    }
    out.replace('\n', " ")
}

impl From<EmitterError> for Failure {
    fn from(e: EmitterError) -> Self {
        Failure { code: if e.is_broker_failure() { 1 } else { 2 }, message: chain(&e) }
    }
}

// glibc's allocator contends between the runtime's threads on `emit --stdin`; mimalloc does not.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("SIO_LOG").unwrap_or_else(|_| "error".into()))
        .with_writer(std::io::stderr)
        .init();
    let rt = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("sio: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match rt.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("sio: {}", f.message);
            ExitCode::from(f.code)
        }
    }
}

fn connect_options(cli: &Cli) -> Result<ConnectOptions, Failure> {
    let mut opts = ConnectOptions::default().request_timeout(Duration::from_millis(cli.timeout));
    match cli.dialect.as_str() {
        "auto" => {}
        d => opts = opts.dialect(d.parse::<DialectKind>().map_err(|e| usage(format!("--dialect: {e}")))?),
    }
    if opts.dialect == Some(DialectKind::Python) {
        opts = opts.channel(cli.channel.clone());
    }
    if let Some(p) = &cli.prefix {
        opts = opts.prefix(p.clone());
    }
    Ok(opts)
}

/// Parses one command-line argument: JSON, `=text` or `@file`.
async fn parse_arg(i: usize, s: &str) -> Result<Value, Failure> {
    if let Some(text) = s.strip_prefix('=') {
        return Ok(Value::Str(text.to_owned()));
    }
    if let Some(path) = s.strip_prefix('@') {
        let bytes = if path == "-" {
            let mut buf = Vec::new();
            tokio::io::AsyncReadExt::read_to_end(&mut tokio::io::stdin(), &mut buf)
                .await
                .map_err(|e| usage(format!("argument {i} (@-): cannot read standard input: {e}")))?;
            buf
        } else {
            tokio::fs::read(path).await.map_err(|e| usage(format!("argument {i} ({s}): cannot read {path}: {e}")))?
        };
        return Ok(Value::Binary(bytes.into()));
    }
    serde_json::from_str::<Value>(s).map_err(|e| {
        let shown: String = s.chars().take(40).collect();
        usage(format!("argument {i} ({shown:?}) is not JSON: {e} (use =TEXT for a plain string, @FILE for binary)"))
    })
}

async fn parse_args(args: &[String]) -> Result<Vec<Value>, Failure> {
    let mut out = Vec::with_capacity(args.len());
    for (i, a) in args.iter().enumerate() {
        out.push(parse_arg(i + 1, a).await?);
    }
    Ok(out)
}

fn target(e: &Emitter, t: &Target) -> Emitter {
    rooms(e, &t.to, &t.except)
}

/// `e` to every room of `to`, except those of `except`.
fn rooms(e: &Emitter, to: &[String], except: &[String]) -> Emitter {
    let mut e = e.clone();
    for r in to {
        e = e.to(r.as_str());
    }
    for r in except {
        e = e.except(r.as_str());
    }
    e
}

/// A value as JSON for output: binary as `{"$bin": base64}`.
fn to_json(v: &Value) -> serde_json::Value {
    use serde_json::Value as J;
    match v {
        Value::Binary(b) | Value::Ext(_, b) => {
            serde_json::json!({ "$bin": base64::engine::general_purpose::STANDARD.encode(b) })
        }
        Value::Array(a) => J::Array(a.iter().map(to_json).collect()),
        Value::Map(m) => J::Object(m.iter().map(|(k, v)| (k.clone(), to_json(v))).collect()),
        other => serde_json::to_value(other).unwrap_or(J::Null),
    }
}

fn print_line(j: &serde_json::Value) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{j}");
}

/// Each ack as a JSON line, then a failure if some were missing.
fn print_acks(what: &str, got: &socketio_emitter::Gathered<Vec<Value>>) -> Result<(), Failure> {
    for v in &got.value {
        print_line(&to_json(v));
    }
    incomplete(what, got.shortfall.as_ref())
}

fn incomplete(what: &str, shortfall: Option<&socketio_emitter::Shortfall>) -> Result<(), Failure> {
    match shortfall {
        None => Ok(()),
        Some(s) => Err(Failure { code: 1, message: format!("{what}: {s}") }),
    }
}

async fn run(cli: Cli) -> Result<(), Failure> {
    let options = connect_options(&cli)?;
    if let Command::Emit { stdin: false, event: Some(event), .. } | Command::ServerEmit { event, .. } = &cli.command
        && socketio_emitter::RESERVED_EVENTS.contains(&event.as_str())
    {
        return Err(EmitterError::ReservedEvent(event.clone()).into());
    }
    // parse arguments before connecting: bad input never waits for a broker
    let parsed = match &cli.command {
        Command::Emit { stdin: false, args, .. } | Command::ServerEmit { args, .. } => parse_args(args).await?,
        _ => Vec::new(),
    };
    let io = Emitter::connect_with(&cli.url, options).await?.of(cli.nsp.clone());
    let timeout = Duration::from_millis(cli.timeout);
    match &cli.command {
        Command::Emit { stdin: true, .. } => emit_stdin(&io).await,
        Command::Emit { target: t, volatile, no_compress, ack, event, .. } => {
            let event = event.as_deref().unwrap_or_default();
            let mut e = target(&io, t);
            if *volatile {
                e = e.volatile();
            }
            if *no_compress {
                e = e.compress(false);
            }
            if *ack {
                print_acks("emit with ack", &e.timeout(timeout).emit_with_ack(event, Args(parsed)).await?)
            } else {
                e.emit_values(event, parsed).await?;
                Ok(())
            }
        }
        Command::Join { rooms, target: t } => Ok(target(&io, t).sockets_join(rooms.iter().map(String::as_str)).await?),
        Command::Leave { rooms, target: t } => {
            Ok(target(&io, t).sockets_leave(rooms.iter().map(String::as_str)).await?)
        }
        Command::Disconnect { target: t, close } => Ok(target(&io, t).disconnect_sockets(*close).await?),
        Command::ServerEmit { ack, event, .. } => {
            if *ack {
                let got = io.timeout(timeout).server_side_emit_with_ack(event, Args(parsed)).await?;
                print_acks("server-side emit with ack", &got)
            } else {
                Ok(io.server_side_emit(event, Args(parsed)).await?)
            }
        }
        Command::Rooms => {
            let got = io.all_rooms().await?;
            let mut rooms: Vec<String> = got.value.iter().map(|r| r.as_str().to_owned()).collect();
            rooms.sort();
            let mut out = std::io::stdout().lock();
            for r in rooms {
                let _ = writeln!(out, "{r}");
            }
            incomplete("all rooms", got.shortfall.as_ref())
        }
        Command::Sockets { target: t } => {
            let got = target(&io, t).fetch_sockets().await?;
            for s in &got.value {
                let rooms: Vec<&str> = s.rooms.iter().map(|r| r.as_str()).collect();
                print_line(&serde_json::json!({"id": s.id, "rooms": rooms}));
            }
            incomplete("fetch sockets", got.shortfall.as_ref())
        }
        Command::Count { target: t } => {
            let got = target(&io, t).fetch_sockets().await?;
            println!("{}", got.value.len());
            incomplete("fetch sockets", got.shortfall.as_ref())
        }
        Command::Servers => {
            println!("{}", io.server_count().await?);
            Ok(())
        }
        Command::Tail => tail(&io).await,
    }
}

/// One line of `emit --stdin`.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    event: String,
    #[serde(default)]
    args: Vec<Value>,
    #[serde(default)]
    to: Rooms,
    #[serde(default)]
    except: Rooms,
    nsp: Option<String>,
    #[serde(default)]
    volatile: bool,
}

/// A room or a list of rooms.
#[derive(serde::Deserialize, Default)]
#[serde(untagged)]
enum Rooms {
    #[default]
    None,
    One(String),
    Many(Vec<String>),
}

impl Rooms {
    fn list(&self) -> &[String] {
        match self {
            Rooms::None => &[],
            Rooms::One(r) => std::slice::from_ref(r),
            Rooms::Many(v) => v,
        }
    }
}

/// How many emits of `--stdin` are in flight at once.
const IN_FLIGHT: usize = 512;

async fn emit_stdin(io: &Emitter) -> Result<(), Failure> {
    use futures_util::StreamExt;
    use futures_util::stream::FuturesUnordered;

    let started = Instant::now();
    let progress = std::io::stderr().is_terminal();
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    // Emits run on this task, first polled in line order: the broker receives them in
    // input order while up to IN_FLIGHT wait for their acknowledgement.
    let mut in_flight = FuturesUnordered::new();
    let (mut sent, mut bad, mut failed, mut n) = (0usize, 0usize, 0usize, 0usize);
    let mut last_progress = Instant::now();
    let mut eof = false;
    let settle = |r: Result<(), (usize, EmitterError)>, sent: &mut usize, bad: &mut usize, failed: &mut usize| match r {
        Ok(()) => *sent += 1,
        Err((line, e)) => {
            eprintln!("sio: line {line}: {}", chain(&e));
            if e.is_broker_failure() {
                *failed += 1;
            } else {
                *bad += 1;
            }
        }
    };
    while !eof || !in_flight.is_empty() {
        // on a terminal: a progress line as soon as the first line is read, then every 200 ms
        if progress && ((n == 1 && sent == 0) || last_progress.elapsed() > Duration::from_millis(200)) {
            last_progress = Instant::now();
            eprint!("\rsio: {sent} sent, {} in flight", in_flight.len());
        }
        tokio::select! {
            biased;
            Some(r) = in_flight.next(), if !in_flight.is_empty() => settle(r, &mut sent, &mut bad, &mut failed),
            line = lines.next_line(), if !eof && in_flight.len() < IN_FLIGHT => {
                let line = match line {
                    Ok(Some(line)) => line,
                    Ok(None) => {
                        eof = true;
                        continue;
                    }
                    Err(e) => return Err(usage(format!("cannot read standard input after line {n}: {e}"))),
                };
                n += 1;
                if line.trim().is_empty() {
                    continue;
                }
                let parsed: Line = match serde_json::from_str(&line) {
                    Ok(l) => l,
                    Err(e) => {
                        eprintln!("sio: line {n}: not an emit object: {e}");
                        bad += 1;
                        continue;
                    }
                };
                let nsp = match &parsed.nsp {
                    Some(nsp) => io.of(nsp.clone()),
                    None => io.clone(),
                };
                let mut e = rooms(&nsp, parsed.to.list(), parsed.except.list());
                if parsed.volatile {
                    e = e.volatile();
                }
                let line_no = n;
                in_flight.push(async move {
                    e.emit_values(&parsed.event, parsed.args).await.map_err(|err| (line_no, err))
                });
            }
        }
    }
    if progress {
        eprint!("\r\x1b[K");
    }
    let secs = started.elapsed().as_secs_f64();
    println!("sent {sent} events in {secs:.3} s ({:.0}/s); {bad} bad, {failed} failed", sent as f64 / secs.max(1e-9));
    match (bad, failed) {
        (0, 0) => Ok(()),
        (_, 0) => Err(usage(format!("{bad} line(s) were not sent (bad input)"))),
        _ => Err(Failure { code: 1, message: format!("{failed} emit(s) failed, {bad} bad line(s)") }),
    }
}

async fn tail(io: &Emitter) -> Result<(), Failure> {
    let mut listener =
        Listener::start(io.transport().clone(), io.dialect().clone(), io.namespace()).await.map_err(|e| match e {
            AdapterError::Config(m) => usage(m),
            e => Failure { code: 1, message: chain(&e) },
        })?;
    eprintln!(
        "sio: listening to {} (Ctrl-C to stop)",
        listener.channels().iter().map(Channel::as_str).collect::<Vec<_>>().join(", ")
    );
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            heard = listener.next() => {
                let heard = match heard {
                    None => break,
                    Some(Ok(h)) => h,
                    Some(Err(bad)) => {
                        eprintln!("sio: dropped an {bad}");
                        continue;
                    }
                };
                let rooms: Vec<&str> = heard.opts.rooms.iter().map(|r| r.as_str()).collect();
                let except: Vec<&str> = heard.opts.except.iter().map(|r| r.as_str()).collect();
                let mut line = serde_json::json!({
                    "nsp": heard.nsp, "event": heard.packet.event,
                    "args": heard.packet.args.iter().map(to_json).collect::<Vec<_>>(),
                    "rooms": rooms, "except": except,
                });
                if heard.opts.flags.volatile {
                    line["volatile"] = true.into();
                }
                if heard.with_ack {
                    line["ack"] = true.into();
                }
                if let Some(uid) = &heard.from {
                    line["from"] = uid.clone().into();
                }
                print_line(&line);
            }
        }
    }
    let _ = listener.close().await;
    Ok(())
}
