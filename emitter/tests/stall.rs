//! A stalled broker (a private Redis stopped with SIGSTOP: it accepts connections and
//! answers nothing) never holds `sio` longer than --connect-timeout plus --timeout: it
//! exits 1 with a one-line error. Once the broker resumes, the same command works.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::time::{Duration, Instant};

use socketio_cluster_tests::node::free_port;
use socketio_cluster_tests::private_redis::PrivateRedis;
use tokio::process::Command;

async fn sio(args: &[&str]) -> (std::process::Output, Duration) {
    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_sio")).args(args).output().await.unwrap();
    (out, started.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_broker_bounds_every_command() {
    let redis = PrivateRedis::start(free_port()).await;
    let url = redis.url();
    let (out, _) = sio(&["--url", &url, "servers"]).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    redis.signal("STOP").await;
    for (args, bound) in [
        (vec!["--url", &url, "--timeout", "2000", "count"], Duration::from_millis(3000 + 2000)),
        (
            vec!["--url", &url, "--timeout", "1000", "--connect-timeout", "500", "emit", "x"],
            Duration::from_millis(1500),
        ),
        (vec!["--url", &url, "--timeout", "1000", "--connect-timeout", "500", "servers"], Duration::from_millis(1500)),
    ] {
        let (out, took) = sio(&args).await;
        let stderr = String::from_utf8_lossy(&out.stderr);
        println!("{args:?}: exit {:?} after {took:?}: {}", out.status.code(), stderr.trim());
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "{args:?}: one line: {stderr}");
        assert!(stderr.contains("ms (--connect-timeout") || stderr.contains("within"), "{args:?}: {stderr}");
        // the stated bound, plus what starting a process takes
        assert!(took < bound + Duration::from_millis(700), "{args:?} took {took:?}, bound {bound:?}");
    }
    redis.signal("CONT").await;
    let (out, _) = sio(&["--url", &url, "--timeout", "2000", "count"]).await;
    assert!(out.status.success(), "after SIGCONT: {}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "0");
}
