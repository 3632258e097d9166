//! The subcommands: argument parsing, `emit --stdin` and `tail`.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use socketio_adapter_core::cluster::Listener;
use socketio_adapter_core::{AdapterError, Channel, error_chain};
use socketio_emitter::{Args, Emitter, EmitterError, Value};

use crate::cli::{Cli, Command, Target, connect_options};
use crate::output::{Failure, incomplete, out_line, print_acks, to_json, usage};

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

pub(crate) async fn run(cli: Cli) -> Result<(), Failure> {
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
    // every command but the endless ones ends by connect bound + timeout, whatever the
    // broker does (a stalled broker accepts connections and answers nothing)
    let (connect_bound, timeout) = (Duration::from_millis(cli.connect_timeout), Duration::from_millis(cli.timeout));
    if let Command::Doctor { window_ms, event, json } = &cli.command {
        let window = Duration::from_millis(*window_ms);
        return crate::doctor::doctor(&cli.url, options, &cli.nsp, event, timeout, window, *json).await;
    }
    let deadline = tokio::time::Instant::now() + connect_bound + timeout;
    let io = match tokio::time::timeout(connect_bound, Emitter::connect_with(&cli.url, options)).await {
        Ok(connected) => connected?.of(cli.nsp.clone()),
        Err(_) => {
            let url = socketio_adapter_core::transport::redact_url(&cli.url);
            return Err(Failure {
                code: 1,
                message: format!("cannot connect to {url} within {} ms (--connect-timeout)", cli.connect_timeout),
            });
        }
    };
    let endless =
        matches!(cli.command, Command::Tail | Command::Emit { stdin: true, .. } | Command::Stats { watch: true, .. });
    let command = command(&cli, &io, parsed, timeout);
    if endless {
        return command.await;
    }
    match tokio::time::timeout_at(deadline, command).await {
        Ok(done) => done,
        Err(_) => Err(Failure {
            code: 1,
            message: format!(
                "no answer from the broker within {} ms (--connect-timeout {} + --timeout {})",
                cli.connect_timeout + cli.timeout,
                cli.connect_timeout,
                cli.timeout
            ),
        }),
    }
}

/// Runs the command on a connected emitter.
async fn command(cli: &Cli, io: &Emitter, parsed: Vec<Value>, timeout: Duration) -> Result<(), Failure> {
    let io = io.clone();
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
            for r in rooms {
                out_line(r)?;
            }
            incomplete("all rooms", got.shortfall.as_ref())
        }
        Command::Sockets { target: t } => {
            let got = target(&io, t).fetch_sockets().await?;
            for s in &got.value {
                let rooms: Vec<&str> = s.rooms.iter().map(|r| r.as_str()).collect();
                out_line(serde_json::json!({"id": s.id, "rooms": rooms}))?;
            }
            incomplete("fetch sockets", got.shortfall.as_ref())
        }
        Command::Count { target: t } => {
            let got = target(&io, t).fetch_sockets().await?;
            out_line(got.value.len())?;
            incomplete("fetch sockets", got.shortfall.as_ref())
        }
        Command::Servers => out_line(io.server_count().await?),
        Command::Tail => tail(&io).await,
        Command::Stats { watch, json, interval_ms } => {
            crate::stats::stats(&io, *watch, *json, Duration::from_millis(*interval_ms)).await
        }
        Command::Doctor { .. } => unreachable!("handled before connecting"),
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

/// What the reading thread of `--stdin` hands over, in input order.
enum Input {
    /// Line `n`, parsed (or why it is not an emit object).
    Line(usize, Result<Line, String>),
    /// Standard input failed after line `n`.
    Failed(usize, std::io::Error),
}

/// Reads and parses standard input on a thread of its own, in batches, so that parsing
/// runs beside the emits instead of between them (`--stdin` is a bulk path).
fn read_stdin() -> tokio::sync::mpsc::Receiver<Vec<Input>> {
    use std::io::BufRead;
    const BATCH: usize = 256;
    let (tx, rx) = tokio::sync::mpsc::channel::<Vec<Input>>(8);
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin().lock();
        let (mut buf, mut batch, mut n) = (String::new(), Vec::with_capacity(BATCH), 0usize);
        loop {
            buf.clear();
            match stdin.read_line(&mut buf) {
                Ok(0) => break,
                Ok(_) => {
                    n += 1;
                    if buf.trim().is_empty() {
                        continue;
                    }
                    batch.push(Input::Line(n, serde_json::from_str(&buf).map_err(|e| e.to_string())));
                }
                Err(e) => {
                    batch.push(Input::Failed(n, e));
                    break;
                }
            }
            if batch.len() == BATCH
                && tx.blocking_send(std::mem::replace(&mut batch, Vec::with_capacity(BATCH))).is_err()
            {
                return;
            }
        }
        let _ = tx.blocking_send(batch);
    });
    rx
}

async fn emit_stdin(io: &Emitter) -> Result<(), Failure> {
    use futures_util::StreamExt;
    use futures_util::stream::FuturesUnordered;

    let started = Instant::now();
    let progress = std::io::stderr().is_terminal();
    let mut input = read_stdin();
    let mut queued = std::collections::VecDeque::<Input>::new();
    // Emits run on this task, first polled in line order: the broker receives them in
    // input order while up to IN_FLIGHT wait for their acknowledgement.
    let mut in_flight = FuturesUnordered::new();
    let (mut sent, mut bad, mut failed, mut read) = (0usize, 0usize, 0usize, 0usize);
    let mut last_progress = Instant::now();
    let (mut eof, mut shown) = (false, false);
    let settle = |r: Result<(), (usize, EmitterError)>, sent: &mut usize, bad: &mut usize, failed: &mut usize| match r {
        Ok(()) => *sent += 1,
        Err((line, e)) => {
            eprintln!("sio: line {line}: {}", error_chain(&e));
            if e.is_broker_failure() {
                *failed += 1;
            } else {
                *bad += 1;
            }
        }
    };
    while !eof || !queued.is_empty() || !in_flight.is_empty() {
        // on a terminal: a progress line as soon as the first line is read, then every 200 ms
        if progress && ((read > 0 && !shown) || last_progress.elapsed() > Duration::from_millis(200)) {
            (last_progress, shown) = (Instant::now(), true);
            eprint!("\rsio: {sent} sent, {} in flight", in_flight.len());
        }
        // start what fits, in input order
        while in_flight.len() < IN_FLIGHT {
            let Some(item) = queued.pop_front() else { break };
            read += 1;
            let (n, parsed) = match item {
                Input::Line(n, Ok(parsed)) => (n, parsed),
                Input::Line(n, Err(e)) => {
                    eprintln!("sio: line {n}: not an emit object: {e}");
                    bad += 1;
                    continue;
                }
                Input::Failed(n, e) => return Err(usage(format!("cannot read standard input after line {n}: {e}"))),
            };
            let nsp = match &parsed.nsp {
                Some(nsp) => io.of(nsp.clone()),
                None => io.clone(),
            };
            let mut e = rooms(&nsp, parsed.to.list(), parsed.except.list());
            if parsed.volatile {
                e = e.volatile();
            }
            in_flight.push(async move { e.emit_values(&parsed.event, parsed.args).await.map_err(|err| (n, err)) });
        }
        tokio::select! {
            biased;
            Some(r) = in_flight.next(), if !in_flight.is_empty() => settle(r, &mut sent, &mut bad, &mut failed),
            batch = input.recv(), if !eof && queued.is_empty() => match batch {
                Some(batch) => queued.extend(batch),
                None => eof = true,
            },
        }
    }
    if progress {
        eprint!("\r\x1b[K");
    }
    let secs = started.elapsed().as_secs_f64();
    // on stderr: stdout stays data
    eprintln!(
        "sio: sent {sent} events in {secs:.3} s ({:.0}/s); {bad} bad, {failed} failed",
        sent as f64 / secs.max(1e-9)
    );
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
            e => Failure { code: 1, message: error_chain(&e) },
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
                if let Err(f) = out_line(&line) {
                    let _ = listener.close().await;
                    return Err(f);
                }
            }
        }
    }
    let _ = listener.close().await;
    Ok(())
}
