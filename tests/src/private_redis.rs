//! A private `redis-server` for fault tests (stop, restart, SIGSTOP): never the shared one,
//! which other suites use.

use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

use crate::node::wait_for_port;

/// A private redis-server on 127.0.0.1 that can be stopped, started again on the same
/// port, and signalled; killed on drop.
#[derive(Debug)]
pub struct PrivateRedis {
    /// Its port.
    pub port: u16,
    child: Option<Child>,
}

impl PrivateRedis {
    /// Starts one on `port` (plain TCP).
    pub async fn start(port: u16) -> PrivateRedis {
        Self::start_with(port, &["--port", &port.to_string()]).await
    }

    /// Starts one with `args` (which must make it listen on `port`), without persistence
    /// unless `args` ask for it: they come after the defaults `--bind 127.0.0.1 --save ""
    /// --appendonly no`, so they can override them.
    pub async fn start_with(port: u16, args: &[&str]) -> PrivateRedis {
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(args)
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("redis-server (Debian package redis-server)");
        wait_for_port(port, Duration::from_secs(15), "redis-server").await;
        PrivateRedis { port, child: Some(child) }
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Sends `signal` (a `kill -s` name: `STOP`, `CONT`, ...) to the server.
    pub async fn signal(&self, signal: &str) {
        let pid = self.child.as_ref().and_then(Child::id).expect("redis-server is running");
        crate::send_signal(pid, signal);
    }

    /// Kills the server (the port stays this one's, for [`PrivateRedis::start`] again).
    pub async fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().await.expect("kill redis-server");
        }
    }
}
