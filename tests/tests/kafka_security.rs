//! Kafka TLS and SASL against a private tansu (issue #16), within what the test broker
//! can do.
//!
//! tansu 0.6.0 (the version `scripts/services.sh` installs) has no TLS listener: `--cert`
//! and `--key` are one clap argument group, so they cannot both be given, and its broker
//! builds a TLS acceptor it never uses (the accepted TCP stream is served as is). So
//! `security_protocol=ssl` is tested as configuration (the librdkafka properties a URL
//! produces, unit tests in adapter-kafka's `options.rs`) and here against the plaintext
//! broker: connecting fails within a bound with one clear error.
//!
//! With `--authentication` tansu requires SASL before any request but ApiVersions and
//! offers SCRAM-SHA-256/512 and OAUTHBEARER (refused by its validation), not PLAIN. Its
//! SCRAM users live in its storage and are created by AlterUserScramCredentials, a request
//! that itself needs an authenticated connection: on a fresh broker no user can ever log
//! in, so the right-credentials case cannot run against it. Wrong credentials (SCRAM as a
//! user the broker does not know), a mechanism it does not offer (PLAIN) and none at all
//! are tested, through the transport and through `sio-node`: one clear error within a
//! bound, no retry storm in the logs, the password nowhere.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::time::{Duration, Instant};

use socketio_adapter_kafka::KafkaTransport;
use socketio_cluster_tests::conformance::prefix;
use socketio_cluster_tests::node::free_port;
use socketio_cluster_tests::sio_node::workspace_bin;
use socketio_cluster_tests::tansu::PrivateTansu;
use socketio_cluster_tests::tls::PrivateCa;

/// How long connecting may wait for the broker (`connect_timeout_ms`).
const CONNECT_TIMEOUT_MS: u64 = 2000;
/// A refused connection ends within the connect timeout and this margin (client set-up
/// and tear-down).
const ERROR_BOUND: Duration = Duration::from_millis(CONNECT_TIMEOUT_MS + 3000);
/// librdkafka's warnings while it gives up: one per failed attempt at most, with the
/// backoff of the transport (50 ms doubling to 1 s) a handful within the connect timeout.
const MAX_WARNINGS: usize = 30;
const PASSWORD: &str = "hunter2-kafka";

fn url(broker: &PrivateTansu, userinfo: &str, query: &str) -> String {
    format!(
        "kafka://{userinfo}{}?prefix={}&connect_timeout_ms={CONNECT_TIMEOUT_MS}{query}",
        broker.brokers(),
        prefix("sec")
    )
}

/// Connects a transport to `url`, which must fail: the error, and how long it took.
async fn refused(url: &str) -> (String, Duration) {
    let t = Instant::now();
    let result = tokio::time::timeout(ERROR_BOUND * 2, KafkaTransport::connect_url(url)).await;
    let took = t.elapsed();
    let err = match result {
        Err(_) => panic!("connecting to {url} still hangs after {:?}", ERROR_BOUND * 2),
        Ok(Ok(_)) => panic!("connecting to {url} succeeded"),
        Ok(Err(e)) => e.to_string(),
    };
    (err, took)
}

/// Runs `sio-node` on `url`, which must exit with an error: its stderr lines, and how long
/// it ran.
async fn node_refused(url: &str) -> (Vec<String>, Duration) {
    let t = Instant::now();
    let out = tokio::time::timeout(
        ERROR_BOUND * 2,
        tokio::process::Command::new(workspace_bin("sio-node"))
            .args(["--port", &free_port().to_string(), "--adapter", url, "--log-format", "json"])
            .env("RUST_LOG", "info")
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .unwrap_or_else(|_| panic!("sio-node on {url} still runs after {:?}", ERROR_BOUND * 2))
    .expect("run sio-node");
    let took = t.elapsed();
    assert!(!out.status.success(), "sio-node on {url} started");
    let lines = String::from_utf8_lossy(&out.stderr).lines().map(str::to_owned).collect();
    (lines, took)
}

/// The checks every refusal passes: bounded, one clear line, no password, no storm.
fn check(what: &str, (err, took): &(String, Duration), (lines, node_took): &(Vec<String>, Duration), want: &[&str]) {
    let warnings = lines.iter().filter(|l| l.contains(r#""level":"WARN""#)).count();
    println!("{what}: the transport failed in {took:?}: {err}");
    println!("{what}: sio-node exited after {node_took:?}, {} log lines, {warnings} warnings", lines.len());
    for l in lines {
        println!("    {l}");
    }
    assert!(*took < ERROR_BOUND, "{what}: the transport took {took:?}");
    assert!(*node_took < ERROR_BOUND, "{what}: sio-node took {node_took:?}");
    assert!(!err.contains('\n'), "{what}: one line: {err}");
    let lower = err.to_lowercase();
    assert!(want.iter().any(|w| lower.contains(w)), "{what}: the error says none of {want:?}: {err}");
    let last = lines.last().expect("sio-node says why it exits");
    assert!(last.starts_with("sio-node: "), "{what}: the last line is the error: {last}");
    assert!(want.iter().any(|w| last.to_lowercase().contains(w)), "{what}: {last}");
    assert!(!err.contains(PASSWORD) && lines.iter().all(|l| !l.contains(PASSWORD)), "{what}: the password leaked");
    assert!(warnings <= MAX_WARNINGS, "{what}: {warnings} warnings while giving up");
}

/// `security_protocol=ssl` against a plaintext listener (tansu has no TLS one): the TLS
/// handshake cannot complete; connecting fails within its timeout, saying so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssl_to_a_plaintext_broker_fails_clearly_within_a_bound() {
    let broker = PrivateTansu::start(free_port()).await;
    let tls = PrivateCa::generate();
    let url = url(&broker, "", &format!("&security_protocol=ssl&ssl_ca_location={}", tls.ca().display()));
    let transport = refused(&url).await;
    let node = node_refused(&url).await;
    check("ssl to plaintext", &transport, &node, &["ssl", "tls", "handshake"]);
}

/// A broker that requires SASL (`tansu --authentication`): SCRAM as a user it does not
/// know, PLAIN (not offered) and no credentials each end in one clear error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_or_missing_sasl_credentials_fail_clearly_within_a_bound() {
    let broker = PrivateTansu::start_with(free_port(), &["--authentication"]).await;
    let cases = [
        (
            "SCRAM-SHA-256, unknown user",
            url(&broker, &format!("nobody:{PASSWORD}@"), "&sasl_mechanism=SCRAM-SHA-256"),
            &["authentication", "sasl"][..],
        ),
        ("PLAIN, not offered", url(&broker, &format!("app:{PASSWORD}@"), ""), &["mechanism", "sasl"][..]),
        ("no credentials", url(&broker, "", ""), &["authenticat", "sasl", "transport"][..]),
    ];
    for (what, url, want) in cases {
        let transport = refused(&url).await;
        let node = node_refused(&url).await;
        check(what, &transport, &node, want);
    }
}
