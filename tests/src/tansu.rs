//! A private tansu (the Kafka-protocol broker `scripts/services.sh` installs) for fault
//! tests (kill and restart, SIGSTOP, topics deleted under the nodes, authentication):
//! never the shared one, which other suites use.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

use crate::node::wait_for_port;

/// The tansu binary `scripts/services.sh` installs (or `$TANSU_BIN`).
pub fn tansu_bin() -> PathBuf {
    std::env::var_os("TANSU_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.cache/bin/tansu"))
}

/// A private tansu on 127.0.0.1 with memory storage (a restart loses every topic), that
/// can be killed, started again on the same port, and signalled; killed on drop.
#[derive(Debug)]
pub struct PrivateTansu {
    /// Its port.
    pub port: u16,
    extra: Vec<String>,
    child: Option<Child>,
}

impl PrivateTansu {
    /// Starts one on `port` and waits until it accepts connections.
    pub async fn start(port: u16) -> PrivateTansu {
        Self::start_with(port, &[]).await
    }

    /// Like [`PrivateTansu::start`], with more `tansu broker` arguments (kept for
    /// [`PrivateTansu::restart`]), e.g. `--authentication`.
    pub async fn start_with(port: u16, extra: &[&str]) -> PrivateTansu {
        let mut t = PrivateTansu { port, extra: extra.iter().map(|s| (*s).to_owned()).collect(), child: None };
        t.restart().await;
        t
    }

    /// Starts it (again) on its port, with the arguments it was first started with.
    pub async fn restart(&mut self) {
        self.stop().await;
        let bin = tansu_bin();
        assert!(bin.exists(), "{} is missing: run scripts/services.sh up kafka", bin.display());
        let url = self.listener();
        let child = Command::new(&bin)
            .args(["broker", "--listener-url", &url, "--advertised-listener-url", &url])
            .args(["--storage-engine", "memory://tansu/", "--silent"])
            .args(&self.extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start tansu");
        self.child = Some(child);
        wait_for_port(self.port, Duration::from_secs(30), "tansu").await;
    }

    /// `127.0.0.1:<port>`, the bootstrap broker of a `kafka://` URL.
    pub fn brokers(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `tcp://127.0.0.1:<port>`, tansu's own spelling (listener, `--broker` of its CLI).
    pub fn listener(&self) -> String {
        format!("tcp://127.0.0.1:{}", self.port)
    }

    /// Sends `signal` (a `kill -s` name: `STOP`, `CONT`, ...) to the broker.
    pub async fn signal(&self, signal: &str) {
        let pid = self.child.as_ref().and_then(Child::id).expect("tansu is running");
        crate::send_signal(pid, signal);
    }

    /// Kills the broker (the port stays this one's, for [`PrivateTansu::restart`]).
    pub async fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().await.expect("kill tansu");
        }
    }

    /// Runs tansu's own admin CLI against this broker (`tansu <args> --broker <listener>`),
    /// e.g. `["topic", "delete", "t"]`; its output, or why it failed.
    pub async fn admin(&self, args: &[&str]) -> Result<String, String> {
        let out = Command::new(tansu_bin())
            .args(args)
            .args(["--broker", &self.listener()])
            .stdin(Stdio::null())
            .output()
            .await
            .expect("run tansu");
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        if out.status.success() { Ok(text(&out.stdout)) } else { Err(text(&out.stderr)) }
    }
}
