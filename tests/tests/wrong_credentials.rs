//! Wrong credentials, at the process level: `sio-node` and `sio` started with a wrong
//! password on Redis (an ACL user of a private `redis-server`) and on RabbitMQ (the guest
//! user of a private node) exit non-zero promptly with one clear line on stderr, the
//! password never appears in their output (also at `RUST_LOG=trace`), and the broker saw
//! only a few connection attempts: Redis's `ACL LOG` (refused logins) and `INFO stats`
//! (connections), RabbitMQ's log (refused logins). The figures are printed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::process::Stdio;
use std::time::{Duration, Instant};

use socketio_cluster_tests::node::free_port;
use socketio_cluster_tests::private_redis::PrivateRedis;
use socketio_cluster_tests::rabbitmq::PrivateRabbitMq;
use socketio_cluster_tests::sio_node::workspace_bin;

/// The wrong password every process is given.
const WRONG: &str = "Wr0ng-pa55word-9c41";
/// "Promptly": a refused login is not retried, so far below the connect bounds.
const PROMPT: Duration = Duration::from_secs(5);
/// "A few": what the broker may see per process (one is expected).
const FEW: u64 = 2;

/// The three processes a user would start, with `url`.
fn commands(url: &str) -> Vec<(&'static str, Vec<String>)> {
    let port = free_port().to_string();
    let own = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    vec![
        ("sio-node", own(&["--port", &port, "--adapter", url])),
        ("sio", own(&["--url", url, "count"])),
        ("sio", own(&["--url", url, "emit", "tick", "1"])),
    ]
}

/// Runs `bin args` with the default log filter (`rust_log`: none) or `RUST_LOG`; checks
/// that it fails promptly, with one line, without the password. Returns its line.
async fn refused(bin: &str, args: &[String], rust_log: Option<&str>) -> String {
    let mut cmd = tokio::process::Command::new(workspace_bin(bin));
    cmd.args(args).env_remove("SIO_LOG").env_remove("RUST_LOG").stdout(Stdio::piped()).stderr(Stdio::piped());
    if let Some(filter) = rust_log {
        cmd.env("RUST_LOG", filter);
    }
    cmd.kill_on_drop(true);
    let t = Instant::now();
    let out = tokio::time::timeout(Duration::from_secs(30), cmd.output())
        .await
        .unwrap_or_else(|_| panic!("{bin} {args:?} still runs after 30 s"))
        .expect("run");
    let took = t.elapsed();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let what = if bin == "sio" { format!("sio {}", args[2]) } else { bin.to_owned() };
    assert!(!out.status.success(), "{what}: exits non-zero: {stderr}");
    assert!(took < PROMPT, "{what}: took {took:?}");
    for text in [&stdout, &stderr] {
        assert!(!text.contains(WRONG), "{what}: the password in its output: {text}");
    }
    if rust_log.is_none() {
        assert_eq!(stdout, "", "{what}: nothing on stdout");
        assert_eq!(stderr.trim().lines().count(), 1, "{what}: one line: {stderr}");
        println!("{what}: exit {} after {took:?}: {}", out.status, stderr.trim());
    } else {
        println!("{what} at RUST_LOG={}: {} lines, no password", rust_log.unwrap_or(""), stderr.lines().count());
    }
    stderr.trim().to_owned()
}

/// Refused logins in Redis's ACL LOG (the sum of the auth entries' counts).
async fn acl_auth_failures(admin: &mut redis::aio::MultiplexedConnection) -> u64 {
    let entries: Vec<Vec<redis::Value>> = redis::cmd("ACL").arg("LOG").query_async(admin).await.expect("ACL LOG");
    let text = |v: &redis::Value| redis::from_redis_value_ref::<String>(v).unwrap_or_default();
    entries
        .iter()
        .filter(|e| e.chunks(2).any(|kv| text(&kv[0]) == "reason" && text(&kv[1]) == "auth"))
        .map(|e| {
            e.chunks(2)
                .find(|kv| text(&kv[0]) == "count")
                .and_then(|kv| redis::from_redis_value_ref::<u64>(&kv[1]).ok())
                .unwrap_or(0)
        })
        .sum()
}

async fn connections_received(admin: &mut redis::aio::MultiplexedConnection) -> u64 {
    let info: String = redis::cmd("INFO").arg("stats").query_async(admin).await.expect("INFO");
    info.lines()
        .find_map(|l| l.strip_prefix("total_connections_received:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("total_connections_received")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_redis_password() {
    let port = free_port();
    let p = port.to_string();
    // the default user stays open for the test's own connection; `app` is the one to use
    let redis =
        PrivateRedis::start_with(port, &["--port", &p, "--user", "app", "on", ">right-secret", "~*", "&*", "+@all"])
            .await;
    let client = redis::Client::open(redis.url()).expect("client");
    let mut admin = client.get_multiplexed_async_connection().await.expect("admin connection");
    let url = format!("redis://app:{WRONG}@127.0.0.1:{port}");
    for (bin, args) in commands(&url) {
        let _: () = redis::cmd("ACL").arg("LOG").arg("RESET").query_async(&mut admin).await.expect("ACL LOG RESET");
        let before = connections_received(&mut admin).await;
        let line = refused(bin, &args, None).await;
        assert!(line.contains("authentication failed"), "{bin}: says why: {line}");
        let connections = connections_received(&mut admin).await - before;
        let failures = acl_auth_failures(&mut admin).await;
        println!("  Redis saw {connections} connection(s), {failures} refused login(s)");
        assert!(
            failures <= FEW && connections <= FEW,
            "{bin}: a retry storm: {connections} connections, {failures} refused"
        );
        assert!(failures >= 1, "{bin}: it did try to log in");
        refused(bin, &args, Some("trace")).await;
    }
}

/// Refused logins in a RabbitMQ node's log files.
fn rabbit_refused_logins(node: &PrivateRabbitMq) -> u64 {
    let mut n = 0;
    for entry in std::fs::read_dir(node.dir.join("log")).expect("the node's log directory").flatten() {
        let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
        n += text.lines().filter(|l| l.contains("login refused") || l.contains("invalid credentials")).count();
    }
    n as u64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_rabbitmq_password() {
    let node = tokio::task::block_in_place(|| PrivateRabbitMq::start_plain("creds"));
    let url = format!("amqp://guest:{WRONG}@127.0.0.1:{}/%2f", node.port);
    for (bin, args) in commands(&url) {
        let before = rabbit_refused_logins(&node);
        let line = refused(bin, &args, None).await;
        assert!(line.contains("ACCESS_REFUSED"), "{bin}: says why: {line}");
        // the broker writes its log line a moment after it closed the connection
        tokio::time::sleep(Duration::from_millis(500)).await;
        let failures = rabbit_refused_logins(&node) - before;
        println!("  RabbitMQ logged {failures} refused login(s)");
        assert!((1..=FEW).contains(&failures), "{bin}: {failures} refused logins");
        refused(bin, &args, Some("trace")).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
