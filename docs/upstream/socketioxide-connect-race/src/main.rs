//! Minimal reproduction: the first event a client emits in its `connect` listener is
//! sometimes dropped when the event handler is registered in the connect handler.
//!
//! Usage: socketioxide-connect-race [--port 3000] [--mode handler|middleware]
use std::convert::Infallible;

use socketioxide::{
    SocketIo,
    extract::{AckSender, SocketRef},
    handler::ConnectHandler,
};

fn register(s: &SocketRef) {
    s.on("join", async |ack: AckSender| {
        ack.send("ok").ok();
    });
}

/// `handler` mode: the usual way, register the event handlers in the connect handler.
async fn register_in_handler(s: SocketRef) {
    register(&s);
}

/// `middleware` mode: the workaround, register them in a connect middleware, which is
/// awaited before the CONNECT packet is sent to the client.
async fn register_in_middleware(s: SocketRef) -> Result<(), Infallible> {
    register(&s);
    Ok(())
}

async fn noop(_: SocketRef) {}

#[tokio::main]
async fn main() {
    let (mut port, mut mode) = (3000u16, String::from("handler"));
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next()) {
            ("--port", Some(p)) => port = p.parse().expect("invalid --port"),
            ("--mode", Some(m)) => mode = m,
            _ => panic!("usage: socketioxide-connect-race [--port P] [--mode handler|middleware]"),
        }
    }

    let (layer, io) = SocketIo::new_layer();
    match mode.as_str() {
        "handler" => io.ns("/", register_in_handler),
        "middleware" => io.ns("/", noop.with(register_in_middleware)),
        _ => panic!("--mode must be `handler` or `middleware`"),
    }

    let app = axum::Router::new().layer(layer);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.unwrap();
    println!("listening on 127.0.0.1:{port} (mode: {mode})");
    axum::serve(listener, app).await.unwrap();
}
