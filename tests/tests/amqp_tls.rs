//! `amqps://` against a private RabbitMQ node with a TLS-only listener whose certificate
//! a private CA signed (made here with `openssl`): connects with `tls_ca_file`, moves a
//! message, and without the CA fails with a certificate error. Needs `rabbitmq-server`
//! and `openssl` on the machine (`scripts/services.sh up rabbitmq` installs RabbitMQ);
//! the node runs on free ports and is stopped at the end, also when the test fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::time::{Duration, Instant};

use socketio_adapter_amqp::{AmqpOptions, AmqpTransport};
use socketio_adapter_core::{Channel, Transport, TransportEvent};
use socketio_cluster_tests::rabbitmq::PrivateRabbitMq;
use socketio_cluster_tests::tls::PrivateCa;

/// Makes a CA and a server certificate in `dir`; the config of a TLS-only listener.
fn tls_config(dir: &Path, port: u16) -> String {
    let tls = PrivateCa::generate_in(dir);
    format!(
        "listeners.tcp = none\nlisteners.ssl.default = 127.0.0.1:{port}\nssl_options.cacertfile = {}\n\
         ssl_options.certfile = {}\nssl_options.keyfile = {}\nssl_options.verify = verify_none\n\
         ssl_options.fail_if_no_peer_cert = false\n",
        tls.ca().display(),
        tls.server_cert().display(),
        tls.server_key().display()
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
