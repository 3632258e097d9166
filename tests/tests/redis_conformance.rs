//! The conformance suite (every cluster operation across 3 nodes) over real Redis and a
//! real 3-master Redis Cluster, in classic and sharded mode.

use std::sync::Arc;

use socketio_adapter_core::codec::Codec;
use socketio_adapter_redis::{RedisOptions, RedisTransport};
use socketio_cluster_tests::conformance::Backend;
use socketio_cluster_tests::{conformance_suite, env};

/// Redis reached through a URL (without prefix: each case adds its own).
struct Redis {
    name: &'static str,
    /// `standalone` or `cluster`
    cluster: bool,
    query: &'static str,
}

impl Redis {
    fn url(&self, prefix: &str) -> String {
        let base = if self.cluster {
            let urls = env("REDIS_CLUSTER_URLS");
            let hosts: Vec<&str> = urls.split(',').map(|u| u.trim_start_matches("redis://")).collect();
            format!("redis://{}", hosts.join(","))
        } else {
            env("REDIS_URL")
        };
        format!("{base}?prefix={prefix}&request_timeout_ms=3000{}", self.query)
    }
}

impl Backend for Redis {
    type T = RedisTransport;

    fn name(&self) -> String {
        self.name.to_owned()
    }

    fn codec(&self, prefix: &str) -> Arc<dyn Codec> {
        RedisOptions::parse(&self.url(prefix)).expect("url").codec()
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
