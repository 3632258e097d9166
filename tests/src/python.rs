//! Runs python-socketio servers (`tests/python/server.py`) for the interop suites.

use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

use crate::env;
use crate::node::{free_port, wait_for_port};

/// A python-socketio `AsyncServer` on `url`'s message queue (`redis://`: `AsyncRedisManager`,
/// `amqp://`: `AsyncAioPikaManager`) with manager channel `channel`, listening on a free
/// port; killed on drop. See the script's docstring for the events its clients can send.
#[derive(Debug)]
pub struct PythonServer {
    /// Its Socket.IO port on 127.0.0.1.
    pub port: u16,
    _child: Child,
}

impl PythonServer {
    /// Starts the server (`SIO_PYTHON`) and waits until it listens.
    pub async fn start(url: &str, channel: &str, name: &str) -> PythonServer {
        let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("python/server.py");
        let port = free_port();
        let child = Command::new(env("SIO_PYTHON"))
            .arg(script)
            .args([&port.to_string(), url, channel, name])
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start the python-socketio server");
        wait_for_port(port, Duration::from_secs(20), &format!("python server {name}")).await;
        PythonServer { port, _child: child }
    }
}
