//! A private RabbitMQ node on free ports, for tests that restart a broker or need a
//! special listener (TLS) without disturbing the shared one. Needs `rabbitmq-server` on
//! the machine (`scripts/services.sh up rabbitmq` installs it) and root, as the scripts.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::node::free_port;

/// `name` in the usual sbin/bin directories.
pub fn find(name: &str) -> PathBuf {
    for dir in ["/usr/sbin", "/sbin", "/usr/local/sbin", "/usr/bin", "/usr/local/bin"] {
        let p = Path::new(dir).join(name);
        if p.exists() {
            return p;
        }
    }
    panic!("{name} not found: install RabbitMQ (scripts/services.sh up rabbitmq)");
}

/// A private RabbitMQ node; stopped (and its directory removed) on drop, also when the
/// test fails.
#[derive(Debug)]
pub struct PrivateRabbitMq {
    /// Its Erlang node name (for `rabbitmqctl -n`).
    pub name: String,
    /// The AMQP (or AMQPS) port on 127.0.0.1.
    pub port: u16,
    /// Its directory (config, data, logs; files the caller wrote there).
    pub dir: PathBuf,
    child: Child,
}

impl PrivateRabbitMq {
    /// Starts a node named after `label` whose listener `config` (rabbitmq.conf lines)
    /// describes; `prepare` may write files (certificates) into the node's directory
    /// first and returns the config. Blocks until the node accepts connections and has
    /// started (up to 60 s); call it through `tokio::task::block_in_place`.
    pub fn start(label: &str, prepare: impl FnOnce(&Path, u16) -> String) -> Self {
        let port = free_port();
        let dir = std::env::temp_dir().join(format!("sio-{label}-{port}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("mkdir");
        let config = prepare(&dir, port);
        std::fs::write(dir.join("rabbitmq.conf"), config).expect("write rabbitmq.conf");
        // run as root, rabbitmq-server switches to the rabbitmq user, which must own the files
        let _ = Command::new("chown").args(["-R", "rabbitmq:rabbitmq", &dir.display().to_string()]).output();
        let d = |f: &str| dir.join(f).display().to_string();
        let name = format!("sio-{label}-{port}@localhost");
        let child = Command::new(find("rabbitmq-server"))
            .env("RABBITMQ_NODENAME", &name)
            .env("RABBITMQ_NODE_PORT", free_port().to_string())
            .env("RABBITMQ_DIST_PORT", free_port().to_string())
            .env("RABBITMQ_CONFIG_FILE", d("rabbitmq"))
            .env("RABBITMQ_MNESIA_BASE", d("mnesia"))
            .env("RABBITMQ_LOG_BASE", d("log"))
            .env("RABBITMQ_ENABLED_PLUGINS_FILE", d("enabled_plugins"))
            .env("RABBITMQ_PID_FILE", d("node.pid"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start rabbitmq-server");
        let node = PrivateRabbitMq { name, port, dir, child };
        let deadline = Instant::now() + Duration::from_secs(60);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "the private RabbitMQ node did not listen on {port} within 60 s");
            std::thread::sleep(Duration::from_millis(100));
        }
        node.ctl(&["await_startup"]).expect("await_startup");
        node
    }

    /// A node with a plain AMQP listener.
    pub fn start_plain(label: &str) -> Self {
        Self::start(label, |_, port| format!("listeners.tcp.default = 127.0.0.1:{port}\n"))
    }

    /// `amqp://guest:guest@127.0.0.1:<port>/%2f`
    pub fn url(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:{}/%2f", self.port)
    }

    /// `rabbitmqctl -n <this node> args...`
    pub fn ctl(&self, args: &[&str]) -> Result<String, String> {
        let out = Command::new(find("rabbitmqctl"))
            .args(["-n", &self.name])
            .args(args)
            .output()
            .map_err(|e| format!("rabbitmqctl {args:?}: {e}"))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(format!("rabbitmqctl {args:?}: {}", String::from_utf8_lossy(&out.stderr)))
        }
    }

    /// The OS process id of the node's Erlang VM (`beam.smp`), from its pid file.
    pub fn vm_pid(&self) -> u32 {
        let text = std::fs::read_to_string(self.dir.join("node.pid")).expect("read the node's pid file");
        text.trim().parse().unwrap_or_else(|e| panic!("pid file {text:?}: {e}"))
    }

    /// Sends `signal` (a `kill -s` name: `STOP`, `CONT`, ...) to the node's Erlang VM.
    pub fn signal(&self, signal: &str) {
        let pid = self.vm_pid();
        crate::send_signal(pid, signal);
    }

    /// The names of its queues.
    pub fn queues(&self) -> Vec<String> {
        let out = self.ctl(&["list_queues", "-q", "--no-table-headers", "name"]).expect("list_queues");
        out.lines().map(|l| l.trim().to_owned()).filter(|l| !l.is_empty()).collect()
    }
}

impl Drop for PrivateRabbitMq {
    fn drop(&mut self) {
        if let Err(e) = self.ctl(&["stop"]) {
            eprintln!("stopping the private RabbitMQ node: {e}");
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `rabbitmqctl ARGS` against the shared broker (`RABBITMQCTL` overrides the command line,
/// e.g. `docker exec rabbitmq rabbitmqctl`); its stdout, or its stderr as the error.
pub fn shared_ctl(args: &[&str]) -> Result<String, String> {
    let mut cmd = match std::env::var("RABBITMQCTL") {
        Ok(line) => {
            let mut words = line.split_whitespace();
            let mut cmd = std::process::Command::new(words.next().unwrap_or("rabbitmqctl"));
            cmd.args(words);
            cmd
        }
        Err(_) => {
            let found = ["/usr/sbin/rabbitmqctl", "/sbin/rabbitmqctl", "/usr/local/sbin/rabbitmqctl"]
                .into_iter()
                .find(|p| std::path::Path::new(p).exists());
            std::process::Command::new(found.unwrap_or("rabbitmqctl"))
        }
    };
    let out = cmd.args(args).output().map_err(|e| format!("rabbitmqctl {args:?}: {e} (is RabbitMQ local?)"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!("rabbitmqctl {args:?}: {}", String::from_utf8_lossy(&out.stderr)))
    }
}
