//! What an emitter holds at the broker: one connection for plain emits, no subscription;
//! requests add a subscriber on the response channels only, never on the channel Node.js
//! servers count servers with.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use socketio_cluster_tests::conformance::{prefix, run};
use socketio_emitter::Emitter;

/// `CLIENT LIST` lines of connections authenticated as `user`.
async fn clients_of(admin: &mut redis::aio::MultiplexedConnection, user: &str) -> Vec<String> {
    let list: String = redis::cmd("CLIENT").arg("LIST").query_async(admin).await.unwrap();
    list.lines().filter(|l| l.split(' ').any(|f| f == format!("user={user}"))).map(str::to_owned).collect()
}

fn field<'a>(line: &'a str, name: &str) -> &'a str {
    line.split(' ').find_map(|f| f.strip_prefix(&format!("{name}="))).unwrap_or("")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_connection_for_emits_and_no_server_channel_for_requests() {
    run(async {
        let mut acl = socketio_cluster_tests::AclUser::create("sio-emitter", "pw").await;
        let (user, host) = (acl.name.clone(), socketio_cluster_tests::AclUser::host());
        let prefix = prefix("conn");
        let io = Emitter::connect(&format!("redis://{user}:pw@{host}?prefix={prefix}&request_timeout_ms=500"))
            .await
            .unwrap();
        let views = [io.clone(), io.to("r1"), io.of("/admin").except("r2")];
        for (i, v) in views.iter().enumerate() {
            v.emit("tick", (i,)).await.unwrap();
            v.sockets_join(["x"]).await.unwrap();
        }
        let conns = clients_of(&mut acl.admin, &user).await;
        assert_eq!(conns.len(), 1, "plain emits use one connection: {conns:?}");
        for f in ["sub", "psub", "ssub"] {
            assert_eq!(field(&conns[0], f), "0", "no subscription: {}", conns[0]);
        }

        // a request subscribes to the response channels, not to the request channel
        assert_eq!(io.fetch_sockets().await.unwrap().value.len(), 0);
        let conns = clients_of(&mut acl.admin, &user).await;
        assert_eq!(conns.len(), 2, "publisher + subscriber: {conns:?}");
        let numsub: Vec<redis::Value> = redis::cmd("PUBSUB")
            .arg(&["NUMSUB", &format!("{prefix}-request#/#"), &format!("{prefix}-response#/#")])
            .query_async(&mut acl.admin)
            .await
            .unwrap();
        assert_eq!(numsub[1], redis::Value::Int(0), "never on the request channel");
        assert_eq!(numsub[3], redis::Value::Int(1), "on the response channel");
        io.close().await.unwrap();
        drop((io, views));
        acl.delete().await;
    })
    .await
}

/// Issue 19: a password is URL user-info, percent-decoded only. `a+b&c` used to be read
/// as a form value (`a b`) and Redis answered "Password authentication failed".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_with_plus_and_ampersand_authenticates() {
    run(async {
        let mut acl = socketio_cluster_tests::AclUser::create("sio-plus", "a+b&c").await;
        let (user, host) = (acl.name.clone(), socketio_cluster_tests::AclUser::host());
        let url = format!("redis://{user}:a+b&c@{host}?prefix={}&request_timeout_ms=500", prefix("plus"));
        let outcome = async {
            use socketio_adapter_core::Transport;
            let opts = socketio_adapter_redis::RedisOptions::parse(&url).map_err(|e| e.to_string())?;
            let transport = socketio_adapter_redis::RedisTransport::connect(&opts).await.map_err(|e| e.to_string())?;
            transport.publish("plus-check", "x".into()).await.map_err(|e| e.to_string())?;
            let io = Emitter::connect(&url).await.map_err(|e| format!("{e}: {:?}", std::error::Error::source(&e)))?;
            io.emit("tick", ()).await.map_err(|e| e.to_string())?;
            let servers = io.server_count().await.map_err(|e| e.to_string())?;
            io.close().await.map_err(|e| e.to_string())?;
            let conns = clients_of(&mut acl.admin, &user).await;
            Ok::<_, String>((servers, conns.len()))
        }
        .await;
        acl.delete().await;
        let (servers, _) = outcome.unwrap();
        assert_eq!(servers, 0, "no server on this prefix");
    })
    .await
}
