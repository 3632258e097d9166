//! `amqps://` against a private RabbitMQ node with a TLS-only listener whose certificate
//! a private CA signed (made here with `openssl`): connects with `tls_ca_file`, moves a
//! message, and without the CA fails with a certificate error. Needs `rabbitmq-server`
//! and `openssl` on the machine (`scripts/services.sh up rabbitmq` installs RabbitMQ);
//! the node runs on free ports and is stopped at the end, also when the test fails.
#![cfg(feature = "tls")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use socketio_adapter_amqp::{AmqpOptions, AmqpTransport};
use socketio_adapter_core::{Channel, Transport, TransportEvent};

fn find(name: &str) -> PathBuf {
    for dir in ["/usr/sbin", "/sbin", "/usr/local/sbin", "/usr/bin", "/usr/local/bin"] {
        let p = Path::new(dir).join(name);
        if p.exists() {
            return p;
        }
    }
    panic!("{name} not found: install RabbitMQ (scripts/services.sh up rabbitmq) and openssl");
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(out.status.success(), "{cmd:?}: {}", String::from_utf8_lossy(&out.stderr));
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A private RabbitMQ node; stopped (and its directory removed) on drop.
struct PrivateNode {
    name: String,
    dir: PathBuf,
    child: Child,
}

impl Drop for PrivateNode {
    fn drop(&mut self) {
        let _ = Command::new(find("rabbitmqctl")).args(["-n", &self.name, "stop"]).output();
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn start_tls_node(dir: &Path, port: u16) -> PrivateNode {
    let openssl = find("openssl");
    let d = |f: &str| dir.join(f).display().to_string();
    run(Command::new(&openssl).args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2"]).args([
        "-keyout",
        &d("ca.key"),
        "-out",
        &d("ca.pem"),
        "-subj",
        "/CN=socketio-adapter-amqp test CA",
    ]));
    run(Command::new(&openssl).args(["req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost"]).args([
        "-keyout",
        &d("server.key"),
        "-out",
        &d("server.csr"),
    ]));
    std::fs::write(dir.join("ext.cnf"), "subjectAltName=DNS:localhost,IP:127.0.0.1\n").unwrap();
    run(Command::new(&openssl).args(["x509", "-req", "-days", "2", "-CAcreateserial"]).args([
        "-in",
        &d("server.csr"),
        "-CA",
        &d("ca.pem"),
        "-CAkey",
        &d("ca.key"),
        "-out",
        &d("server.pem"),
        "-extfile",
        &d("ext.cnf"),
    ]));
    std::fs::write(
        dir.join("rabbitmq.conf"),
        format!(
            "listeners.tcp = none\nlisteners.ssl.default = 127.0.0.1:{port}\nssl_options.cacertfile = {}\n\
             ssl_options.certfile = {}\nssl_options.keyfile = {}\nssl_options.verify = verify_none\n\
             ssl_options.fail_if_no_peer_cert = false\n",
            d("ca.pem"),
            d("server.pem"),
            d("server.key")
        ),
    )
    .unwrap();
    // run as root, rabbitmq-server switches to the rabbitmq user, which must own the files
    let _ = Command::new("chown").args(["-R", "rabbitmq:rabbitmq", &dir.display().to_string()]).output();
    let name = format!("sio-amqps-{port}@localhost");
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
    let node = PrivateNode { name, dir: dir.to_owned(), child };
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "the private RabbitMQ node did not listen on {port} within 60 s");
        std::thread::sleep(Duration::from_millis(100));
    }
    node
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amqps_with_a_private_ca() {
    let port = free_port();
    let dir = std::env::temp_dir().join(format!("sio-amqps-{port}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let _node = tokio::task::block_in_place(|| start_tls_node(&dir, port));
    let ca = dir.join("ca.pem").display().to_string();

    let url = format!("amqps://guest:guest@localhost:{port}/%2f?prefix=tls&tls_ca_file={ca}");
    let opts = AmqpOptions::parse(&url).expect("url");
    // the TLS listener may accept TCP before the broker is ready for AMQP
    let deadline = Instant::now() + Duration::from_secs(30);
    let node = loop {
        match AmqpTransport::connect(&opts).await {
            Ok(t) => break t,
            Err(e) => assert!(Instant::now() < deadline, "amqps connect: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let publisher = AmqpTransport::connect(&opts).await.expect("second amqps connection");
    let (tx, mut rx) = tokio::sync::mpsc::channel(4);
    node.subscribe(&[Channel::Exact("tls#/#".into())], tx).await.expect("subscribe");
    publisher.publish("tls#/#", "over TLS".into()).await.expect("publish");
    let got = tokio::time::timeout(Duration::from_secs(5), rx.recv()).await.expect("in time").expect("event");
    assert_eq!(got, TransportEvent::Message { channel: "tls#/#".into(), payload: "over TLS".into() });

    // without the private CA the server certificate is not trusted
    let untrusted = format!("amqps://guest:guest@localhost:{port}/%2f?prefix=tls&connect_timeout_ms=3000");
    let err = AmqpTransport::connect_url(&untrusted).await.expect_err("untrusted certificate").to_string();
    assert!(err.to_lowercase().contains("certificate") || err.contains("UnknownIssuer"), "{err}");
}
