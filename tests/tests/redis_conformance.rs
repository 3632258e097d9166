//! The conformance suite (every cluster operation across 3 nodes) over real Redis and a
//! real 3-master Redis Cluster, in classic and sharded mode.

use std::sync::Arc;

use socketio_adapter_core::dialect::Dialect;
use socketio_adapter_redis::{RedisOptions, RedisTransport};
use socketio_cluster_tests::conformance::Backend;
use socketio_cluster_tests::{conformance_suite, env, redis_cluster_url};

/// Redis reached through a URL (without prefix: each case adds its own).
struct Redis {
    name: &'static str,
    /// `standalone` or `cluster`
    cluster: bool,
    query: &'static str,
}

impl Redis {
    fn url(&self, prefix: &str) -> String {
        let base = if self.cluster { redis_cluster_url() } else { env("REDIS_URL") };
        format!("{base}?prefix={prefix}&request_timeout_ms=3000{}", self.query)
    }
}

impl Backend for Redis {
    type T = RedisTransport;

    fn name(&self) -> String {
        self.name.to_owned()
    }

    fn dialect(&self, prefix: &str) -> Arc<dyn Dialect> {
        RedisOptions::parse(&self.url(prefix)).expect("url").dialect()
    }

    async fn connect(&self, prefix: &str) -> RedisTransport {
        RedisTransport::connect_url(&self.url(prefix)).await.expect("connect to Redis")
    }
}

conformance_suite!(classic, super::Redis { name: "classic", cluster: false, query: "" });
conformance_suite!(
    classic_specific_responses,
    super::Redis { name: "classic-specific", cluster: false, query: "&specific_response_channel=true" }
);
conformance_suite!(
    sharded_static,
    super::Redis { name: "sharded-static", cluster: false, query: "&mode=sharded&subscription_mode=static" }
);
conformance_suite!(
    sharded_dynamic,
    super::Redis { name: "sharded-dynamic", cluster: false, query: "&mode=sharded&subscription_mode=dynamic" }
);
conformance_suite!(
    cluster_sharded_dynamic,
    super::Redis { name: "cluster-sharded", cluster: true, query: "&mode=sharded&subscription_mode=dynamic" }
);
conformance_suite!(
    cluster_sharded_private,
    super::Redis { name: "cluster-private", cluster: true, query: "&mode=sharded&subscription_mode=dynamic-private" }
);
conformance_suite!(cluster_classic, super::Redis { name: "cluster-classic", cluster: true, query: "" });

/// The least-privilege ACL user of the conformance cases: for each case's prefix, the
/// rule [`socketio_adapter_redis::acl_rule`] documents (for the namespaces the suite
/// uses), added on every Redis the suites use (standalone and each cluster master).
const LEAST_USER: &str = "sio-least-privilege";
const LEAST_PASSWORD: &str = "least-pw";
const SUITE_NAMESPACES: [&str; 7] = ["/", "/admin", "/nx", "/n*", "/n?", "/n[x]", "/n\\x"];

fn allow_prefix(url: &str) {
    let opts = RedisOptions::parse(url).expect("options");
    let rule = socketio_adapter_redis::acl_rule(&opts, &SUITE_NAMESPACES);
    let mut admins = vec![env("REDIS_URL")];
    admins.extend(env("REDIS_CLUSTER_URLS").split(',').map(str::to_owned));
    for admin in admins {
        let mut conn = redis::Client::open(admin.as_str()).expect("client").get_connection().expect("connect");
        let mut cmd = redis::cmd("ACL");
        cmd.arg("SETUSER").arg(LEAST_USER).arg("on").arg(format!(">{LEAST_PASSWORD}"));
        // the cases run in parallel: add this prefix's channels to the others'
        for part in rule.split(' ').filter(|p| *p != "resetchannels") {
            cmd.arg(part);
        }
        let _: () = cmd.query(&mut conn).unwrap_or_else(|e| panic!("ACL SETUSER on {admin}: {e}"));
    }
}

/// [`Redis`] as the least-privilege user: every operation of the suite must work with
/// the documented ACL rule and nothing more.
struct LeastPrivilege(Redis);

impl LeastPrivilege {
    fn url(&self, prefix: &str) -> String {
        allow_prefix(&self.0.url(prefix));
        // one user-info for every host of a cluster URL
        self.0.url(prefix).replacen("redis://", &format!("redis://{LEAST_USER}:{LEAST_PASSWORD}@"), 1)
    }
}

impl Backend for LeastPrivilege {
    type T = RedisTransport;

    fn name(&self) -> String {
        format!("{} (least privilege)", self.0.name)
    }

    fn dialect(&self, prefix: &str) -> Arc<dyn Dialect> {
        RedisOptions::parse(&self.url(prefix)).expect("url").dialect()
    }

    async fn connect(&self, prefix: &str) -> RedisTransport {
        RedisTransport::connect_url(&self.url(prefix)).await.expect("connect to Redis as the least-privilege user")
    }
}

conformance_suite!(
    least_privilege_classic,
    super::LeastPrivilege(super::Redis { name: "classic", cluster: false, query: "" })
);
conformance_suite!(
    least_privilege_sharded,
    super::LeastPrivilege(super::Redis { name: "sharded", cluster: false, query: "&mode=sharded" })
);
conformance_suite!(
    least_privilege_cluster_sharded,
    super::LeastPrivilege(super::Redis { name: "cluster-sharded", cluster: true, query: "&mode=sharded" })
);

/// A user whose rule lacks the prefix's channels gets one clear error naming the
/// permission, at start, not a retry loop.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_without_the_channels_gets_a_clear_error() {
    use socketio_adapter_core::{Adapter, ClusterAdapter};
    use socketio_cluster_tests::conformance::run;
    use socketio_cluster_tests::recorder::Recorder;
    run(async {
        let user = format!("sio-test-nochan-{:08x}", fastrand::u32(..));
        let admin = redis::Client::open(env("REDIS_URL")).expect("client");
        let mut admin = admin.get_multiplexed_async_connection().await.expect("connect");
        let mut cmd = redis::cmd("ACL");
        cmd.arg("SETUSER").arg(&user).arg("on").arg(">pw").arg("resetchannels").arg("&elsewhere*");
        for part in socketio_adapter_redis::ACL_COMMANDS.split(' ') {
            cmd.arg(part);
        }
        let _: () = cmd.query_async(&mut admin).await.expect("ACL SETUSER");
        let host = env("REDIS_URL").trim_start_matches("redis://").to_owned();
        let prefix = socketio_cluster_tests::conformance::prefix("nochan");
        for mode in ["classic", "sharded"] {
            let opts =
                RedisOptions::parse(&format!("redis://{user}:pw@{host}?prefix={prefix}&mode={mode}")).expect("url");
            let transport = RedisTransport::connect(&opts).await.expect("connecting needs no channel");
            let adapter =
                ClusterAdapter::new(transport, opts.dialect(), "/", Recorder::new("A"), opts.cluster_config())
                    .expect("config");
            let e = adapter.init().await.expect_err("no rights on the channels");
            let e = socketio_adapter_core::error_chain(&e);
            let chain = e.to_lowercase();
            assert!(chain.contains("noperm") || chain.contains("no permissions"), "{mode}: {e}");
            assert!(!e.contains("pw@"), "{mode}: password shown: {e}");
        }
        let _: i64 = redis::cmd("ACL").arg(&["DELUSER", &user]).query_async(&mut admin).await.expect("ACL DELUSER");
    })
    .await
}

/// Two nodes on these transports count each other and a broadcast crosses between them.
async fn two_nodes_talk(opts: &RedisOptions, transports: [RedisTransport; 2]) {
    use socketio_adapter_core::{Adapter, BroadcastOptions, ClusterAdapter, EventPacket};
    use socketio_cluster_tests::conformance::eventually;
    use socketio_cluster_tests::recorder::{Recorder, sid};
    let mut nodes = Vec::new();
    for (transport, name) in transports.into_iter().zip(["A", "B"]) {
        let rec = Recorder::new(name);
        let adapter =
            ClusterAdapter::new(transport, opts.dialect(), "/", rec.clone(), opts.cluster_config()).expect("config");
        adapter.init().await.expect("init");
        nodes.push((adapter, rec));
    }
    nodes[1].0.add_all(&sid("b1"), &[]);
    assert_eq!(nodes[0].0.server_count().await.expect("count"), 2);
    nodes[0].0.broadcast(EventPacket::new("hi", vec![]), BroadcastOptions::all()).await.expect("broadcast");
    eventually("delivery", std::time::Duration::from_secs(5), || nodes[1].1.got("hi") == ["b1"]).await;
}

/// A transport built from an application's existing `redis::Client` (with a database
/// number in its URL) works like one built from a URL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn from_existing_client() {
    use socketio_cluster_tests::conformance::run;
    run(async {
        let prefix = socketio_cluster_tests::conformance::prefix("client");
        let client = redis::Client::open(format!("{}/3", env("REDIS_URL"))).expect("client");
        let opts = RedisOptions::parse(&format!("redis://unused?prefix={prefix}")).expect("options");
        let a = RedisTransport::from_client(&client, opts.clone()).await.expect("connect");
        let b = RedisTransport::from_client(&client, opts.clone()).await.expect("connect");
        two_nodes_talk(&opts, [a, b]).await;
    })
    .await
}

/// `user:password@` (an ACL user) and `/db` from the URL; a wrong password is a clear
/// error that does not show the password.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acl_user_and_database_from_url() {
    use socketio_cluster_tests::conformance::run;
    run(async {
        let user = format!("sio-test-{:08x}", fastrand::u32(..));
        let admin = redis::Client::open(env("REDIS_URL")).expect("client");
        let mut admin = admin.get_multiplexed_async_connection().await.expect("connect");
        let _: () = redis::cmd("ACL")
            .arg(&["SETUSER", &user, "on", ">s3cret-pw", "~*", "&*", "+@all"])
            .query_async(&mut admin)
            .await
            .expect("ACL SETUSER");
        let host = env("REDIS_URL").trim_start_matches("redis://").to_owned();
        let prefix = socketio_cluster_tests::conformance::prefix("acl");
        let url = format!("redis://{user}:s3cret-pw@{host}/5?prefix={prefix}");
        let opts = RedisOptions::parse(&url).expect("options");
        let a = RedisTransport::connect(&opts).await.expect("connect as the ACL user");
        let b = RedisTransport::connect(&opts).await.expect("connect as the ACL user");
        two_nodes_talk(&opts, [a, b]).await;

        let bad = format!("redis://{user}:wrong-pw@{host}?prefix={prefix}");
        let err = RedisTransport::connect_url(&bad).await.expect_err("wrong password").to_string();
        assert!(!err.contains("wrong-pw"), "password shown: {err}");
        assert!(err.to_lowercase().contains("wrongpass") || err.contains("auth"), "{err}");
        let _: i64 = redis::cmd("ACL").arg(&["DELUSER", &user]).query_async(&mut admin).await.expect("ACL DELUSER");
    })
    .await
}
