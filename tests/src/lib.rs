//! Shared pieces of the cross-crate suites: a recording stand-in for a server's sockets,
//! the cluster-logic conformance suite every transport runs against its real broker, and
//! helpers to run the Node.js peers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr, missing_docs)]

pub mod conformance;
pub mod counter;
pub mod node;
pub mod private_redis;
pub mod python;
pub mod rabbitmq;
pub mod recorder;
pub mod redis_cluster;
pub mod sio_node;
pub mod stall;
pub mod tansu;
pub mod tls;
pub mod wire;

pub use socketio_adapter_core::conformance_suite;

/// Reads a required environment variable set by `scripts/services.sh env`, with a clear
/// message when the suite is run without the services.
pub fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run the tests with scripts/test.sh (it starts the services and exports it)")
    })
}

/// Sends `signal` (a `kill -s` name: `STOP`, `CONT`, `KILL`, ...) to process `pid`;
/// panics if `kill` fails. The one way the suites stall, resume and kill the processes
/// they start (brokers, `sio-node`).
pub fn send_signal(pid: u32, signal: &str) {
    let ok = std::process::Command::new("kill").args(["-s", signal, &pid.to_string()]).status().expect("run kill");
    assert!(ok.success(), "kill -s {signal} {pid}");
}

/// The 3-master Redis Cluster as one URL of this project's grammar
/// (`redis://host:port,host:port,...`), from `REDIS_CLUSTER_URLS`.
pub fn redis_cluster_url() -> String {
    let urls = env("REDIS_CLUSTER_URLS");
    let hosts: Vec<&str> = urls.split(',').map(|u| u.trim_start_matches("redis://")).collect();
    format!("redis://{}", hosts.join(","))
}

/// A Redis ACL user on the test Redis (`REDIS_URL`) with every permission and
/// `password`, named `<tag>-<random>`; [`AclUser::delete`] removes it.
#[allow(missing_debug_implementations)]
pub struct AclUser {
    /// The user name.
    pub name: String,
    /// An administrative connection (the default user).
    pub admin: redis::aio::MultiplexedConnection,
}

impl AclUser {
    /// Creates the user.
    pub async fn create(tag: &str, password: &str) -> AclUser {
        let name = format!("{tag}-{:08x}", fastrand::u32(..));
        let client = redis::Client::open(env("REDIS_URL")).expect("REDIS_URL");
        let mut admin = client.get_multiplexed_async_connection().await.expect("connect to REDIS_URL");
        let _: () = redis::cmd("ACL")
            .arg(&["SETUSER", &name, "on", &format!(">{password}"), "~*", "&*", "+@all"])
            .query_async(&mut admin)
            .await
            .expect("ACL SETUSER");
        AclUser { name, admin }
    }

    /// `host:port` of the test Redis, for building URLs with this user.
    pub fn host() -> String {
        env("REDIS_URL").trim_start_matches("redis://").to_owned()
    }

    /// Deletes the user.
    pub async fn delete(mut self) {
        let _: () =
            redis::cmd("ACL").arg(&["DELUSER", &self.name]).query_async(&mut self.admin).await.expect("ACL DELUSER");
    }
}
