//! `sio stats`: the namespace's traffic per second, by message type, and the cluster size.
//!
//! The messages are those on the namespace's broadcast channels (the listener's: every
//! message of the ClusterAdapter protocol's main channel, heartbeats and requests
//! included; the broadcasts of the classic Redis protocol), counted as they arrive;
//! answers travel on other channels and are not seen. The cluster size is the server
//! count (the broker's, or the nodes heard by heartbeats), asked once per interval.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::json;
use socketio_adapter_core::cluster::Listener;
use socketio_adapter_core::{AdapterError, error_chain};
use socketio_emitter::Emitter;

use crate::output::{Failure, out_line, usage};

/// One interval's counts.
#[derive(Default)]
struct Sample {
    messages: u64,
    bytes: u64,
    by_type: BTreeMap<&'static str, u64>,
    undecodable: u64,
    other_namespaces: u64,
}

pub(crate) async fn stats(io: &Emitter, watch: bool, json: bool, interval: Duration) -> Result<(), Failure> {
    let mut listener =
        Listener::start(io.transport().clone(), io.dialect().clone(), io.namespace()).await.map_err(|e| match e {
            AdapterError::Config(m) => usage(m),
            e => Failure { code: 1, message: error_chain(&e) },
        })?;
    let core = io.cluster()?;
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    let mut sample = Sample::default();
    let result = loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break Ok(()),
            seen = listener.next_message() => match seen {
                None => break Err(Failure { code: 1, message: "the transport went away".into() }),
                Some((bytes, decoded)) => {
                    sample.bytes += bytes as u64;
                    match decoded {
                        Ok(m) if m.nsp == io.namespace() => {
                            sample.messages += 1;
                            *sample.by_type.entry(m.body.name()).or_default() += 1;
                        }
                        Ok(_) => sample.other_namespaces += 1,
                        Err(_) => sample.undecodable += 1,
                    }
                }
            },
            _ = tick.tick() => {
                let servers = core.server_count().await.map_err(|e| error_chain(&e));
                if let Err(f) = print(&std::mem::take(&mut sample), servers, interval, json) {
                    break Err(f);
                }
                if !watch {
                    break Ok(());
                }
            }
        }
    };
    let _ = listener.close().await;
    result
}

fn print(s: &Sample, servers: Result<usize, String>, interval: Duration, json: bool) -> Result<(), Failure> {
    let per_s = |n: u64| (n as f64 / interval.as_secs_f64() * 10.0).round() / 10.0;
    if json {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs_f64();
        let by_type: serde_json::Map<String, serde_json::Value> =
            s.by_type.iter().map(|(k, v)| ((*k).to_owned(), json!(per_s(*v)))).collect();
        let mut line = json!({
            "time": (now * 1000.0).round() / 1000.0, "interval_ms": interval.as_millis() as u64,
            "messages_per_s": per_s(s.messages), "bytes_per_s": per_s(s.bytes), "by_type_per_s": by_type,
            "undecodable": s.undecodable, "other_namespaces": s.other_namespaces,
        });
        match servers {
            Ok(n) => line["servers"] = json!(n),
            Err(e) => line["servers_error"] = json!(e),
        }
        return out_line(line);
    }
    let types: Vec<String> = s.by_type.iter().map(|(k, v)| format!("{k} {}", per_s(*v))).collect();
    let servers = servers.map_or_else(|e| format!("? ({e})"), |n| n.to_string());
    let mut line = format!("servers {servers}  messages/s {}  bytes/s {}", per_s(s.messages), per_s(s.bytes));
    if !types.is_empty() {
        line.push_str(&format!("  ({})", types.join(", ")));
    }
    if s.undecodable > 0 {
        line.push_str(&format!("  undecodable {}", s.undecodable));
    }
    out_line(line)
}
