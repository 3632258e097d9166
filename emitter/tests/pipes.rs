//! `sio` in a pipeline: a reader that goes away ends every command quietly with status
//! 0 (no panic, no error line), the `emit --stdin` summary is not data, and `--dialect`
//! says its choices. Against the real Redis (`REDIS_URL`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Stdio;
use std::time::Duration;

use socketio_cluster_tests::conformance::{prefix, run};
use socketio_cluster_tests::env;
use socketio_emitter::Emitter;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

fn sio() -> Command {
    Command::new(env!("CARGO_BIN_EXE_sio"))
}

/// `sio tail | head -1`: after the first line the reader is gone; with traffic going on
/// the next write fails and tail ends with status 0 and nothing on stderr (it used to run
/// until killed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tail_ends_quietly_when_its_reader_goes_away() {
    run(async {
        let url = format!("{}?prefix={}", env("REDIS_URL"), prefix("pipe-tail"));
        let mut child = sio()
            .args(["--url", &url, "tail"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let io = Emitter::connect(&url).await.unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let sender = tokio::spawn(async move {
            for i in 0..600u32 {
                let _ = io.emit("tick", i).await;
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        });
        let first = tokio::time::timeout(Duration::from_secs(5), lines.next_line()).await;
        let first = first.expect("a first line within 5 s").unwrap().expect("a line");
        assert!(first.contains("\"tick\""), "{first}");
        drop(lines); // the reader goes away, like `head -1`
        let status = tokio::time::timeout(Duration::from_secs(5), child.wait()).await;
        let status = status.expect("tail ended within 5 s of its reader going away").unwrap();
        sender.abort();
        let mut stderr = String::new();
        tokio::io::AsyncReadExt::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).await.unwrap();
        assert_eq!(status.code(), Some(0), "stderr: {stderr}");
        assert!(!stderr.contains("panicked") && !stderr.contains("sio: cannot"), "{stderr}");
    })
    .await
}

/// Commands that print a result (`servers`, `rooms`, `count`) exit 0 without a word
/// when stdout is already closed (they panicked with status 101 before).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn printing_into_a_closed_pipe_is_not_a_panic() {
    run(async {
        let url = format!("{}?prefix={}&request_timeout_ms=300", env("REDIS_URL"), prefix("pipe-print"));
        for cmd in ["servers", "rooms", "count"] {
            let mut child =
                sio().args(["--url", &url, cmd]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
            drop(child.stdout.take()); // closed before the command prints
            let out = child.wait_with_output().await.unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(0), "{cmd}: {stderr}");
            assert!(stderr.is_empty(), "{cmd}: {stderr}");
        }
    })
    .await
}

/// `--dialect` lists its choices in `--help` and in the error for a wrong one.
#[tokio::test]
async fn dialect_choices_are_listed() {
    let help = sio().arg("--help").output().await.unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    for d in ["node-redis", "node-cluster", "node-streams", "python", "auto"] {
        assert!(help.contains(d), "--help lacks {d}: {help}");
    }
    let bad = sio().args(["--dialect", "nodejs", "servers"]).output().await.unwrap();
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert_eq!(bad.status.code(), Some(2), "{stderr}");
    for d in ["node-redis", "node-cluster", "node-streams", "python"] {
        assert!(stderr.contains(d), "the error lacks {d}: {stderr}");
    }
}

/// `sio` honours `RUST_LOG` (as well as `SIO_LOG`) and writes no colour codes into a pipe.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_honour_rust_log_without_colour_codes() {
    let url = format!("{}?prefix={}", env("REDIS_URL"), prefix("pipe-log"));
    let out = sio().args(["--url", &url, "servers"]).env("RUST_LOG", "info").output().await.unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("INFO"), "RUST_LOG=info shows info lines (the default is errors only): {stderr}");
    assert!(!stderr.contains('\u{1b}'), "colour codes in a pipe: {stderr}");
}

/// `sio --log-format json`: every log line is one JSON object (here the transport's
/// "connected" line with its broker); the command's own output stays on stdout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_are_one_object_per_line() {
    let url = format!("{}?prefix={}", env("REDIS_URL"), prefix("pipe-json"));
    let out =
        sio().args(["--url", &url, "--log-format", "json", "servers"]).env("SIO_LOG", "info").output().await.unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "0", "no servers on a fresh prefix");
    let lines: Vec<serde_json::Value> = stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}")))
        .collect();
    let connected = lines
        .iter()
        .find(|j| j["message"] == "Redis transport connected")
        .unwrap_or_else(|| panic!("no connected line: {stderr}"));
    assert_eq!(connected["level"], "INFO");
    assert!(connected["broker"].as_str().is_some_and(|b| b.starts_with("redis ")), "{connected}");
    let bad = sio().args(["--url", &url, "--log-format", "xml", "servers"]).output().await.unwrap();
    assert_eq!(bad.status.code(), Some(2), "a bad log format is a usage error");
}
