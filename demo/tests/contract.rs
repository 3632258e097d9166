//! The sio-node contract answers every event, with or without arguments, and an event it
//! does not know gets an error ack: a real `socket.io-client` calls each one with no
//! argument at all (socketioxide's `Data` extractor used to reject the missing argument,
//! log "first element not found" and never call the handler, so the caller waited forever).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{Value as Json, json};
use socketio_cluster_tests::conformance::prefix;
use socketio_cluster_tests::env;
use socketio_cluster_tests::node::script;
use socketio_cluster_tests::sio_node::SioNode;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_is_answered_without_arguments() {
    let url = format!("{}?prefix={}", env("REDIS_URL"), prefix("contract"));
    let node = SioNode::start_with(std::path::Path::new(env!("CARGO_BIN_EXE_sio-node")), "A", &url, &[]).await;
    let events = [
        "whoami",
        "server_count",
        "all_rooms",
        "fetch_sockets",
        "server_events",
        "join",
        "leave",
        "emit",
        "emit_with_ack",
        "sockets_join",
        "sockets_leave",
        "disconnect_sockets",
        "server_side_emit",
        "no_such_event",
    ];
    let config = json!({"url": format!("http://127.0.0.1:{}", node.port), "events": events, "timeout_ms": 3000});
    let out = script("contract.js", &config).output().await.expect("run node contract.js");
    assert!(out.status.success(), "contract.js failed: {:?}", out.status);
    let got: Json = serde_json::from_slice(&out.stdout).expect("contract.js output");
    for e in events {
        assert_ne!(got[e], json!("timeout"), "{e} was never answered: {got}");
        assert!(got[e].is_object(), "{e}: {got}");
    }
    // what the queries say without arguments
    assert_eq!(got["whoami"]["node"], json!("A"), "{got}");
    assert_eq!(got["server_count"]["count"], json!(1), "{got}");
    assert!(got["all_rooms"]["rooms"].as_array().unwrap().iter().any(|r| r == &got["whoami"]["sid"]), "{got}");
    assert_eq!(got["fetch_sockets"]["sockets"].as_array().map(Vec::len), Some(1), "{got}");
    // the ones that need an argument say which, and an unknown event is an error
    assert!(got["join"]["error"].as_str().unwrap().contains("room"), "{got}");
    assert!(got["emit"]["error"].as_str().unwrap().contains("event"), "{got}");
    assert!(got["disconnect_sockets"]["error"].as_str().unwrap().contains("every socket"), "{got}");
    assert_eq!(got["no_such_event"]["error"], json!("unknown event no_such_event"), "{got}");
}

/// Logs written to a file or a pipe carry no colour codes (`sio`: emitter/tests/pipes.rs).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_to_a_pipe_have_no_colour_codes() {
    use tokio::io::AsyncBufReadExt;
    let url = format!("{}?prefix={}", env("REDIS_URL"), prefix("plainlog"));
    let port = socketio_cluster_tests::node::free_port();
    let mut node = tokio::process::Command::new(env!("CARGO_BIN_EXE_sio-node"))
        .args(["--port", &port.to_string(), "--adapter", &url, "--id", "plain"])
        .env("RUST_LOG", "info")
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(node.stderr.take().unwrap()).lines();
    let mut seen = Vec::new();
    while let Ok(Ok(Some(line))) = tokio::time::timeout(std::time::Duration::from_secs(10), lines.next_line()).await {
        let done = line.contains("listening");
        seen.push(line);
        if done {
            break;
        }
    }
    assert!(seen.iter().any(|l| l.contains("INFO")), "no info log line: {seen:?}");
    assert!(seen.iter().all(|l| !l.contains('\u{1b}')), "colour codes in a pipe: {seen:?}");
    let _ = node.kill().await;
}

/// `--host` takes what a user types (`localhost`, `::1`), and a host that does not resolve
/// is refused before anything connects (here: before trying a broker nobody listens on).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hosts_as_typed_and_bad_ones_before_connecting() {
    for host in ["localhost", "::1"] {
        let port = socketio_cluster_tests::node::free_port();
        let mut node = tokio::process::Command::new(env!("CARGO_BIN_EXE_sio-node"))
            .args(["--host", host, "--port", &port.to_string(), "--id", "h"])
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let target = if host == "::1" { format!("[::1]:{port}") } else { format!("localhost:{port}") };
        let mut up = false;
        for _ in 0..100 {
            if let Ok(mut s) = tokio::net::TcpStream::connect(&target).await {
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                s.write_all(b"GET /health HTTP/1.0\r\n\r\n").await.unwrap();
                let mut body = String::new();
                let _ = s.read_to_string(&mut body).await;
                up = body.contains("\"node\":\"h\"");
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        let _ = node.kill().await;
        assert!(up, "sio-node --host {host} did not serve /health");
    }
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_sio-node"))
        .args(["--host", "no-such-host.invalid", "--port", "1", "--adapter", "redis://127.0.0.1:1"])
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("--host \"no-such-host.invalid\""), "refused for its host, not the broker: {stderr}");
}
