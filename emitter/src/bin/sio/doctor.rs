//! `sio doctor`: checks a cluster from outside, one verdict per check.
//!
//! 1. `broker`: the broker is reachable with these credentials (and TLS when asked);
//! 2. `servers`: the servers counted (by the broker, or by heartbeats) against those that
//!    answer a request every adapter answers by itself (`fetch_sockets` for a room nobody
//!    is in), naming the nodes that disagree where the protocol names them;
//! 3. `round-trip`: a server-side emit with an ack (`--event`, default `ping`) through
//!    every server's application, timed per node, naming those that did not answer. A
//!    server that answered the request of check 2 but not the emit is alive without a
//!    handler for the event: a warning, not a failure (a Node.js or Python application
//!    that does not handle `ping`);
//! 4. `foreign-traffic`: messages on the namespace's broadcast channels that this dialect
//!    cannot decode (another dialect, another version, the same prefix);
//! 5. `heartbeats`: when servers announce themselves, how long ago each was last heard
//!    (at the end of the window, before the round trip).
//!
//! A fresh observer knows the nodes of a heartbeat cluster by what it hears: a node that
//! stalled before the window is not heard (the live nodes evict it after their heartbeat
//! timeout), one that stalls during it is named by the round trip and the heartbeats.

use std::time::Duration;

use serde_json::{Value as Json, json};
use socketio_adapter_core::cluster::{Listener, Probe, ProbeAnswer};
use socketio_adapter_core::{AdapterError, ClusterCore, Transport, Value, error_chain};
use socketio_emitter::{AnyTransport, ConnectOptions, Emitter};

use crate::output::{Failure, out_line, to_json};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Verdict {
    Ok,
    Warn,
    Fail,
    Skip,
}

impl Verdict {
    fn as_str(self) -> &'static str {
        match self {
            Verdict::Ok => "ok",
            Verdict::Warn => "warn",
            Verdict::Fail => "FAIL",
            Verdict::Skip => "skip",
        }
    }
}

struct Check {
    name: &'static str,
    verdict: Verdict,
    detail: String,
    data: Json,
}

fn check(name: &'static str, verdict: Verdict, detail: impl Into<String>, data: Json) -> Check {
    Check { name, verdict, detail: detail.into(), data }
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 10_000.0).round() / 10.0
}

/// What the listener heard during the window.
#[derive(Default)]
struct Traffic {
    decoded: u64,
    undecodable: u64,
    sample: Option<String>,
}

pub(crate) async fn doctor(
    url: &str,
    options: ConnectOptions,
    nsp: &str,
    event: &str,
    timeout: Duration,
    window: Duration,
    json: bool,
) -> Result<(), Failure> {
    let mut checks = Vec::new();
    let io = match Emitter::connect_with(url, options).await {
        Ok(io) => io.of(nsp.to_owned()),
        Err(e) => {
            let redacted = socketio_adapter_core::transport::redact_url(url);
            checks.push(check("broker", Verdict::Fail, format!("{redacted}: {}", error_chain(&e)), json!({})));
            return report(&redacted, nsp, "-", &checks, json);
        }
    };
    let broker = io.transport().describe();
    let dialect = io.dialect().name();
    checks.push(check("broker", Verdict::Ok, format!("reachable: {broker}"), json!({"broker": broker})));
    let core = match io.cluster() {
        Ok(core) => core,
        Err(e) => {
            checks.push(check("servers", Verdict::Fail, error_chain(&e), json!({})));
            return report(&broker, nsp, dialect, &checks, json);
        }
    };

    // listen to the namespace's broadcasts while the requester hears heartbeats
    let listener = Listener::start(io.transport().clone(), io.dialect().clone(), nsp).await;
    if let Err(e) = core.start().await {
        checks.push(check("servers", Verdict::Fail, error_chain(&e), json!({})));
        return report(&broker, nsp, dialect, &checks, json);
    }
    let (traffic, listened) = match listener {
        Ok(mut listener) => {
            let mut traffic = Traffic::default();
            let _ = tokio::time::timeout(window, async {
                while let Some(heard) = listener.next().await {
                    match heard {
                        Ok(_) => traffic.decoded += 1,
                        Err(bad) => {
                            traffic.undecodable += 1;
                            traffic.sample.get_or_insert_with(|| bad.to_string());
                        }
                    }
                }
            })
            .await;
            let channels: Vec<String> = listener.channels().iter().map(|c| c.as_str().to_owned()).collect();
            let _ = listener.close().await;
            (Some(traffic), Ok(channels))
        }
        Err(e) => {
            tokio::time::sleep(window).await;
            (None, Err(e))
        }
    };

    // before the round trip, whose answers refresh every node that answers
    let heard = core.known_nodes();
    let (probe, pinged) = tokio::join!(core.probe(timeout), core.probe_event(event, timeout));
    let counted = core.server_count().await;
    let probe = probe.map_err(|e| error_chain(&e));
    checks.push(servers(&core, counted, &probe));
    checks.push(round_trip(event, &probe, pinged, timeout));
    checks.push(foreign(traffic, listened, dialect, window));
    checks.push(heartbeats(&core, &heard));
    report(&broker, nsp, dialect, &checks, json)
}

fn missing(probe: &Probe) -> Vec<String> {
    probe.shortfall.as_ref().map(|s| s.missing_nodes.clone()).unwrap_or_default()
}

fn answer_json(a: &ProbeAnswer) -> Json {
    let mut j = json!({"node": a.node, "ms": ms(a.took)});
    if let (Some(v), Some(j)) = (&a.value, j.as_object_mut()) {
        j.insert("ack".to_owned(), to_json(v));
    }
    j
}

fn named(answers: &[ProbeAnswer]) -> String {
    if answers.is_empty() {
        return "none".to_owned();
    }
    let named: Vec<String> = answers
        .iter()
        .map(|a| {
            let node = a.node.as_deref().unwrap_or("(unnamed)");
            // a heartbeat protocol names the node by its id; sio-node's ack adds its name
            match a.value.as_ref().and_then(|v| v.get("node")).and_then(Value::as_str) {
                Some(name) if name != node => format!("{node} ({name}) {} ms", ms(a.took)),
                _ => format!("{node} {} ms", ms(a.took)),
            }
        })
        .collect();
    named.join(", ")
}

/// The servers counted against those that answer the request every adapter answers.
fn servers(
    core: &ClusterCore<AnyTransport>,
    counted: Result<usize, AdapterError>,
    probe: &Result<Probe, String>,
) -> Check {
    let by = if core.counts_by_heartbeats() { "heartbeats" } else { "the broker" };
    let probe = match probe {
        Ok(p) => p,
        Err(why) => return check("servers", Verdict::Fail, format!("cannot ask the servers: {why}"), json!({})),
    };
    let missing = missing(probe);
    let answered = probe.answers.len();
    match counted {
        Err(e) => check("servers", Verdict::Fail, format!("cannot count: {}", error_chain(&e)), json!({})),
        Ok(0) => check(
            "servers",
            Verdict::Warn,
            format!("no server counted by {by}: an empty cluster, or another prefix, dialect or mode"),
            json!({"counted": 0, "answering": answered, "counted_by": by}),
        ),
        Ok(n) => {
            let verdict = if n == answered { Verdict::Ok } else { Verdict::Fail };
            let mut detail = format!("{n} counted by {by}, {answered} answering");
            if !missing.is_empty() {
                detail.push_str(&format!("; not answering: {}", missing.join(", ")));
            } else if n != answered {
                detail.push_str(" (this protocol does not name the silent ones)");
            }
            let answers: Vec<Json> = probe.answers.iter().map(answer_json).collect();
            check(
                "servers",
                verdict,
                detail,
                json!({"counted": n, "answering": answered, "counted_by": by, "disagreeing": missing, "answers": answers}),
            )
        }
    }
}

/// The server-side emit with an ack through every server, judged against the request of
/// the `servers` check: a server that answers that request but not the emit is alive
/// without a handler for `event`.
fn round_trip(
    event: &str,
    probe: &Result<Probe, String>,
    pinged: Result<Probe, AdapterError>,
    timeout: Duration,
) -> Check {
    let pinged = match pinged {
        Ok(p) => p,
        Err(e) => return check("round-trip", Verdict::Fail, error_chain(&e), json!({"event": event})),
    };
    let missing = missing(&pinged);
    let answered = pinged.answers.len();
    let answers: Vec<Json> = pinged.answers.iter().map(answer_json).collect();
    let data = json!({"event": event, "expected": pinged.expected, "answers": answers, "missing": missing});
    let Some(short) = &pinged.shortfall else {
        if answered == 0 {
            return check("round-trip", Verdict::Skip, "no server to ask", data);
        }
        let detail = format!("{answered} of {} answered `{event}`: {}", pinged.expected, named(&pinged.answers));
        return check("round-trip", Verdict::Ok, detail, data);
    };
    let mut detail =
        format!("{} of {} answered `{event}` within {} ms", short.received, short.expected, timeout.as_millis());
    if !pinged.answers.is_empty() {
        detail.push_str(&format!(": {}", named(&pinged.answers)));
    }
    if !missing.is_empty() {
        detail.push_str(&format!("; no answer from {}", missing.join(", ")));
    }
    // every server answered the adapter's own request: the silent ones are alive
    let alive = probe.as_ref().is_ok_and(|p| p.shortfall.is_none() && p.answers.len() == short.expected);
    let verdict = if alive {
        detail.push_str(&format!("; every server answered the adapter's request: alive, without a `{event}` handler"));
        Verdict::Warn
    } else {
        Verdict::Fail
    };
    check("round-trip", verdict, detail, data)
}

fn foreign(
    traffic: Option<Traffic>,
    listened: Result<Vec<String>, AdapterError>,
    dialect: &str,
    window: Duration,
) -> Check {
    let (traffic, channels) = match (traffic, listened) {
        (Some(t), Ok(c)) => (t, c),
        (_, Err(e)) => {
            return check("foreign-traffic", Verdict::Skip, format!("cannot listen: {}", error_chain(&e)), json!({}));
        }
        (None, Ok(_)) => return check("foreign-traffic", Verdict::Skip, "not listened", json!({})),
    };
    let data = json!({
        "channels": channels, "decoded": traffic.decoded, "undecodable": traffic.undecodable,
        "sample": traffic.sample, "window_ms": window.as_millis() as u64,
    });
    if traffic.undecodable == 0 {
        return check(
            "foreign-traffic",
            Verdict::Ok,
            format!("{} broadcasts heard in {} ms, none foreign", traffic.decoded, window.as_millis()),
            data,
        );
    }
    check(
        "foreign-traffic",
        Verdict::Fail,
        format!(
            "{} of {} messages on {} are not {dialect} (another dialect or version on the same prefix?), e.g. {}",
            traffic.undecodable,
            traffic.undecodable + traffic.decoded,
            channels.join(", "),
            traffic.sample.unwrap_or_default()
        ),
        data,
    )
}

fn heartbeats(core: &ClusterCore<AnyTransport>, nodes: &[(String, Duration)]) -> Check {
    if !core.counts_by_heartbeats() {
        return check("heartbeats", Verdict::Skip, "the broker counts the servers: no heartbeats to read", json!({}));
    }
    let interval = core.config().heartbeat_interval();
    let late: Vec<&(String, Duration)> = nodes.iter().filter(|(_, age)| *age > interval * 2).collect();
    let list: Vec<String> = nodes.iter().map(|(n, age)| format!("{n} {} ms ago", ms(*age))).collect();
    let data = json!({
        "interval_ms": interval.as_millis() as u64,
        "nodes": nodes.iter().map(|(n, age)| json!({"node": n, "last_heard_ms": ms(*age)})).collect::<Vec<_>>(),
    });
    if nodes.is_empty() {
        return check("heartbeats", Verdict::Warn, "no node heard", data);
    }
    let verdict = if late.is_empty() { Verdict::Ok } else { Verdict::Fail };
    let mut detail = format!("last heard: {}", list.join(", "));
    if !late.is_empty() {
        let names: Vec<&str> = late.iter().map(|(n, _)| n.as_str()).collect();
        detail.push_str(&format!("; silent for over 2 heartbeat periods: {}", names.join(", ")));
    }
    check("heartbeats", verdict, detail, data)
}

/// Prints the checks; fails (status 1) if one failed.
fn report(broker: &str, nsp: &str, dialect: &str, checks: &[Check], json: bool) -> Result<(), Failure> {
    let failed: Vec<&str> = checks.iter().filter(|c| c.verdict == Verdict::Fail).map(|c| c.name).collect();
    if json {
        let list: Vec<Json> = checks
            .iter()
            .map(|c| {
                let mut j = json!({"check": c.name, "verdict": c.verdict.as_str().to_lowercase(), "detail": c.detail});
                if let (Some(j), Json::Object(data)) = (j.as_object_mut(), &c.data) {
                    j.extend(data.clone());
                }
                j
            })
            .collect();
        out_line(json!({
            "broker": broker, "namespace": nsp, "dialect": dialect, "ok": failed.is_empty(), "checks": list,
        }))?;
    } else {
        out_line(format!("sio doctor: {broker}, namespace {nsp}, dialect {dialect}"))?;
        for c in checks {
            out_line(format!("{:<5} {:<16} {}", c.verdict.as_str(), c.name, c.detail))?;
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(Failure { code: 1, message: format!("doctor: failed: {}", failed.join(", ")) })
    }
}
