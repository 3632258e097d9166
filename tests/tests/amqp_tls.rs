//! `amqps://` against a private RabbitMQ node with a TLS-only listener whose certificate
//! a private CA signed (made here with `openssl`): connects with `tls_ca_file`, moves a
//! message, and without the CA fails with a certificate error. Needs `rabbitmq-server`
//! and `openssl` on the machine (`scripts/services.sh up rabbitmq` installs RabbitMQ);
//! the node runs on free ports and is stopped at the end, also when the test fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use socketio_adapter_amqp::{AmqpOptions, AmqpTransport};
use socketio_adapter_core::{Channel, Transport, TransportEvent};
use socketio_cluster_tests::rabbitmq::{PrivateRabbitMq, find};

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(out.status.success(), "{cmd:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// Makes a CA and a server certificate in `dir`; the config of a TLS-only listener.
fn tls_config(dir: &Path, port: u16) -> String {
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
    format!(
        "listeners.tcp = none\nlisteners.ssl.default = 127.0.0.1:{port}\nssl_options.cacertfile = {}\n\
         ssl_options.certfile = {}\nssl_options.keyfile = {}\nssl_options.verify = verify_none\n\
         ssl_options.fail_if_no_peer_cert = false\n",
        d("ca.pem"),
        d("server.pem"),
        d("server.key")
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amqps_with_a_private_ca() {
    let node = tokio::task::block_in_place(|| PrivateRabbitMq::start("amqps", tls_config));
    let port = node.port;
    let ca = node.dir.join("ca.pem").display().to_string();

    let url = format!("amqps://guest:guest@localhost:{port}/%2f?prefix=tls&tls_ca_file={ca}");
    let opts = AmqpOptions::parse(&url).expect("url");
    // the TLS listener may accept TCP before the broker is ready for AMQP
    let deadline = Instant::now() + Duration::from_secs(30);
    let transport = loop {
        match AmqpTransport::connect(&opts).await {
            Ok(t) => break t,
            Err(e) => assert!(Instant::now() < deadline, "amqps connect: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let publisher = AmqpTransport::connect(&opts).await.expect("second amqps connection");
    let (tx, mut rx) = tokio::sync::mpsc::channel(4);
    transport.subscribe(&[Channel::Exact("tls#/#".into())], tx).await.expect("subscribe");
    publisher.publish("tls#/#", "over TLS".into()).await.expect("publish");
    let got = tokio::time::timeout(Duration::from_secs(5), rx.recv()).await.expect("in time").expect("event");
    assert_eq!(got, TransportEvent::Message { channel: "tls#/#".into(), payload: "over TLS".into() });

    // without the private CA the server certificate is not trusted
    let untrusted = format!("amqps://guest:guest@localhost:{port}/%2f?prefix=tls&connect_timeout_ms=3000");
    let err = AmqpTransport::connect_url(&untrusted).await.expect_err("untrusted certificate").to_string();
    assert!(err.to_lowercase().contains("certificate") || err.contains("UnknownIssuer"), "{err}");
}
