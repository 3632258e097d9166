//! The python dialect against 2 real python-socketio servers (`AsyncRedisManager`) with
//! real `socket.io-client` clients: the library and `sio --dialect python` deliver to
//! exactly the right clients; what python-socketio cannot do is a clear error.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use serde_json::json;
use socketio_cluster_tests::conformance::{prefix, run};
use socketio_cluster_tests::env;
use socketio_cluster_tests::node::NodePeer;
use socketio_cluster_tests::python::PythonServer;
use socketio_emitter::{ConnectOptions, DialectKind, Emitter};
use tokio::process::Command;

const WAIT: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emits_reach_python_socketio_servers() {
    run(async {
        let channel = prefix("python");
        let servers = [
            PythonServer::start(&env("REDIS_URL"), &channel, "P0").await,
            PythonServer::start(&env("REDIS_URL"), &channel, "P1").await,
        ];
        let (p0, p1) = (servers[0].port, servers[1].port);
        let mut c = NodePeer::start("clients", json!({"name": "clients", "server": false})).await;
        let ids = c
            .call(
                "clients",
                json!({"clients": [
                    {"name": "a", "port": p0, "rooms": ["red"]},
                    {"name": "b", "port": p0, "rooms": ["red", "blue"]},
                    {"name": "c", "port": p1, "rooms": ["blue"]},
                    {"name": "d", "port": p1, "rooms": []},
                    {"name": "x", "port": p1, "nsp": "/admin", "rooms": []},
                ]}),
            )
            .await;
        let id = |n: &str| ids[n].as_str().unwrap().to_owned();
        let io = Emitter::connect_with(
            &env("REDIS_URL"),
            ConnectOptions::default().dialect(DialectKind::Python).channel(&channel),
        )
        .await
        .unwrap();
        // python-socketio has no way to count its servers: an error naming it
        let e = io.server_count().await.unwrap_err();
        assert!(e.to_string().contains("python"), "{e}");

        io.emit("e_all", ("text", 42, json!({"k": [true, null]}))).await.unwrap();
        c.wait_got("e_all", &["a", "b", "c", "d"], WAIT).await;
        let got = c.received("e_all").await;
        assert_eq!(got[0].1, vec![json!("text"), json!(42), json!({"k": [true, null]})], "arguments");
        io.emit("e_bin", (bytes::Bytes::from_static(&[1, 2, 255]),)).await.unwrap();
        io.to("red").emit("e_red", ()).await.unwrap();
        io.to("red").to("blue").emit("e_two", ()).await.unwrap();
        io.except(id("a")).emit("e_skip", ()).await.unwrap();
        io.of("/admin").emit("e_admin", "adm").await.unwrap();
        c.wait_got("e_bin", &["a", "b", "c", "d"], WAIT).await;
        let got = c.received("e_bin").await;
        assert_eq!(got[0].1, vec![json!({"$bin": "AQL/"})], "binary argument");
        c.wait_got("e_red", &["a", "b"], WAIT).await;
        c.wait_got("e_two", &["a", "b", "c"], WAIT).await;
        c.wait_got("e_skip", &["b", "c", "d"], WAIT).await;
        c.wait_got("e_admin", &["x"], WAIT).await;

        // one socket id into / out of rooms, then a disconnect
        // python-socketio handles the channel's messages in order: no wait needed
        io.to(id("d")).sockets_join(["green", "pink"]).await.unwrap();
        io.to("pink").emit("e_pink", ()).await.unwrap();
        c.wait_got("e_pink", &["d"], WAIT).await;
        io.to("green").emit("e_green", ()).await.unwrap();
        c.wait_got("e_green", &["d"], WAIT).await;
        io.to(id("d")).sockets_leave(["green"]).await.unwrap();
        io.to("green").emit("e_green2", ()).await.unwrap();
        io.emit("zz", ()).await.unwrap();
        c.wait_got("zz", &["a", "b", "c", "d"], WAIT).await;
        assert!(c.got("e_green2").await.is_empty(), "d left green");

        // the CLI speaks it too
        let out = Command::new(env!("CARGO_BIN_EXE_sio"))
            .args(["--url", &env("REDIS_URL"), "--dialect", "python", "--channel", &channel])
            .args(["emit", "--to", "blue", "e_cli", "1", "=two"])
            .output()
            .await
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        c.wait_got("e_cli", &["b", "c"], WAIT).await;
        assert_eq!(c.received("e_cli").await[0].1, vec![json!(1), json!("two")]);
        // the URL alone selects the dialect and channel; what the protocol cannot carry
        // is a one-line error naming it
        let url = format!("{}?dialect=python&channel={channel}", env("REDIS_URL"));
        let out =
            Command::new(env!("CARGO_BIN_EXE_sio")).args(["--url", &url, "emit", "e_url"]).output().await.unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        c.wait_got("e_url", &["a", "b", "c", "d"], WAIT).await;
        for command in [&["count"][..], &["sockets"], &["rooms"], &["servers"], &["server-emit", "x"]] {
            let out =
                Command::new(env!("CARGO_BIN_EXE_sio")).args(["--url", &url]).args(command).output().await.unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{command:?}: {stderr}");
            assert!(stderr.contains("python protocol cannot carry"), "{command:?}: {stderr}");
            assert_eq!(stderr.trim().lines().count(), 1, "{command:?}: one line: {stderr}");
        }

        // what python-socketio cannot do
        let e = io.fetch_sockets().await.unwrap_err();
        assert!(e.to_string().contains("python"), "{e}");
        let e = io.emit_with_ack("q", ()).await.unwrap_err();
        assert!(e.to_string().contains("python"), "{e}");
        let e = io.disconnect_sockets(false).await.unwrap_err();
        assert!(e.to_string().contains("one socket id"), "{e}");
        let e = io.to(id("a")).to(id("b")).sockets_join(["r"]).await.unwrap_err();
        assert!(e.to_string().contains("one socket id"), "{e}");

        io.to(id("d")).disconnect_sockets(false).await.unwrap();
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let d = c.call("disconnected", json!({})).await;
            if d["d"] == json!(true) {
                assert_eq!((d["a"].clone(), d["c"].clone()), (json!(false), json!(false)));
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "disconnect: {d}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        c.stop().await;
    })
    .await
}
