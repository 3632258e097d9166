//! Shared pieces of the cross-crate suites: a recording stand-in for a server's sockets,
//! the cluster-logic conformance suite every transport runs against its real broker, and
//! helpers to run the Node.js peers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr, missing_docs)]

pub mod conformance;
pub mod counter;
pub mod node;
pub mod python;
pub mod rabbitmq;
pub mod recorder;
pub mod sio_node;
pub mod wire;

pub use socketio_adapter_core::conformance_suite;

/// Reads a required environment variable set by `scripts/services.sh env`, with a clear
/// message when the suite is run without the services.
pub fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run the tests with scripts/test.sh (it starts the services and exports it)")
    })
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

/// A private redis-server (no persistence unless `args` ask for it) that can be stopped
/// and started again on the same port, for tests that restart Redis.
#[allow(missing_debug_implementations)]
pub struct PrivateRedis {
    /// Its port.
    pub port: u16,
    child: Option<tokio::process::Child>,
}

impl PrivateRedis {
    /// On `port`, without persistence.
    pub async fn start(port: u16) -> PrivateRedis {
        Self::start_with(port, &["--port", &port.to_string()]).await
    }

    /// With these arguments (given after the defaults `--bind 127.0.0.1 --save ""
    /// --appendonly no`, so they can override them).
    pub async fn start_with(port: u16, args: &[&str]) -> PrivateRedis {
        let child = tokio::process::Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(args)
            .stdout(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("redis-server (Debian package redis-server)");
        node::wait_for_port(port, std::time::Duration::from_secs(15), "redis-server").await;
        PrivateRedis { port, child: Some(child) }
    }

    /// Kills it (SIGKILL: what it had not persisted is gone).
    pub async fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().await.expect("kill redis-server");
        }
    }
}
