//! Redis Cluster helpers for fault tests: a private 6-node cluster (3 masters, 3
//! replicas) that can be stalled, killed and resharded without disturbing the shared one,
//! and the topology reads and slot moves those tests share (also usable on the shared
//! cluster).

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::process::Command;

use crate::node::free_port;
use crate::private_redis::PrivateRedis;

/// What a command to one cluster node may take before the helpers give up on it (a
/// stalled or killed node).
const NODE_COMMAND_TIMEOUT: Duration = Duration::from_secs(2);

/// One line of `CLUSTER NODES`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterNode {
    /// Its node id.
    pub id: String,
    /// `host:port`.
    pub addr: String,
    /// Its client port.
    pub port: u16,
    /// A master (else a replica).
    pub master: bool,
    /// Marked failing (`fail` or `fail?`) by the node asked.
    pub failing: bool,
    /// A replica's master id.
    pub master_id: Option<String>,
    /// The slot ranges it serves (masters), inclusive.
    pub slots: Vec<(u16, u16)>,
}

impl ClusterNode {
    /// Whether it serves `slot`.
    pub fn owns(&self, slot: u16) -> bool {
        self.slots.iter().any(|&(lo, hi)| (lo..=hi).contains(&slot))
    }
}

/// Parses the reply of `CLUSTER NODES`.
pub fn parse_cluster_nodes(text: &str) -> Vec<ClusterNode> {
    text.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 8 {
                return None;
            }
            let addr = f[1].split('@').next()?.to_owned();
            let port = addr.rsplit_once(':')?.1.parse().ok()?;
            let flags: Vec<&str> = f[2].split(',').collect();
            let slots = f[8..]
                .iter()
                .filter_map(|range| {
                    // "[slot->-id]" entries are migrations in progress: not served yet
                    let (lo, hi) = range.split_once('-').unwrap_or((range, range));
                    Some((lo.parse().ok()?, hi.parse().ok()?))
                })
                .collect();
            Some(ClusterNode {
                id: f[0].to_owned(),
                addr,
                port,
                master: flags.contains(&"master"),
                failing: flags.iter().any(|f| *f == "fail" || *f == "fail?"),
                master_id: (f[3] != "-").then(|| f[3].to_owned()),
                slots,
            })
        })
        .collect()
}

/// A connection to one node (`host:port`), bounded by [`NODE_COMMAND_TIMEOUT`].
async fn connect(addr: &str) -> Result<redis::aio::MultiplexedConnection, String> {
    let client = redis::Client::open(format!("redis://{addr}")).map_err(|e| format!("{addr}: {e}"))?;
    let config = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Some(NODE_COMMAND_TIMEOUT))
        .set_response_timeout(Some(NODE_COMMAND_TIMEOUT));
    client.get_multiplexed_async_connection_with_config(&config).await.map_err(|e| format!("{addr}: {e}"))
}

/// Runs `args` on the node at `addr`, bounded by `NODE_COMMAND_TIMEOUT` (2 s).
pub async fn node_command<T: redis::FromRedisValue>(addr: &str, args: &[&str]) -> Result<T, String> {
    let mut c = connect(addr).await?;
    let mut cmd = redis::cmd(args[0]);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    tokio::time::timeout(NODE_COMMAND_TIMEOUT, cmd.query_async(&mut c))
        .await
        .map_err(|_| format!("{addr}: {args:?}: no answer in {NODE_COMMAND_TIMEOUT:?}"))?
        .map_err(|e| format!("{addr}: {args:?}: {e}"))
}

/// The topology as the node at `addr` sees it (`CLUSTER NODES`).
pub async fn cluster_nodes(addr: &str) -> Result<Vec<ClusterNode>, String> {
    node_command::<String>(addr, &["CLUSTER", "NODES"]).await.map(|t| parse_cluster_nodes(&t))
}

/// The hash slot of `key` (a channel name too: sharded channels hash like keys).
pub async fn keyslot(addr: &str, key: &str) -> u16 {
    node_command(addr, &["CLUSTER", "KEYSLOT", key]).await.expect("CLUSTER KEYSLOT")
}

/// `CLUSTER SETSLOT <slot> NODE <owner>` on every master of `masters` (`(id, host:port)`):
/// moves an empty slot (pub/sub tests store no keys) to `owner`; Redis 7 then sends the
/// shard channels' subscribers on the old owner an unrequested `SUNSUBSCRIBE`.
pub async fn assign_slot(masters: &[(String, String)], slot: u16, owner: &str) {
    // the new owner first, then the others, as redis-cli --cluster does
    let mut order: Vec<&(String, String)> = masters.iter().filter(|(id, _)| id == owner).collect();
    order.extend(masters.iter().filter(|(id, _)| id != owner));
    let slot = slot.to_string();
    for (_, addr) in order {
        let _: () = node_command(addr, &["CLUSTER", "SETSLOT", &slot, "NODE", owner])
            .await
            .unwrap_or_else(|e| panic!("CLUSTER SETSLOT: {e}"));
    }
}

/// `(id, host:port)` of every master of `nodes` that is not failing.
pub fn live_masters(nodes: &[ClusterNode]) -> Vec<(String, String)> {
    nodes.iter().filter(|n| n.master && !n.failing).map(|n| (n.id.clone(), n.addr.clone())).collect()
}

/// A private Redis Cluster on 127.0.0.1: 3 masters with one replica each, on free ports,
/// its files in a temporary directory; every process is killed on drop.
#[derive(Debug)]
pub struct PrivateCluster {
    /// The six servers, in creation order (`redis-cli --cluster create` makes the first
    /// three masters).
    pub servers: Vec<PrivateRedis>,
    /// `cluster-node-timeout`: how long a master may be unreachable before its replica
    /// takes over.
    pub node_timeout: Duration,
    dir: PathBuf,
}

impl PrivateCluster {
    /// Starts six `redis-server` in cluster mode with `node_timeout`, creates the
    /// cluster and waits until every node says `cluster_state:ok` and every replica is in
    /// sync with its master.
    pub async fn start(node_timeout: Duration) -> PrivateCluster {
        let dir = std::env::temp_dir().join(format!("sio-cluster-{:08x}", fastrand::u32(..)));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let dir_arg = dir.to_str().expect("utf-8 temp dir").to_owned();
        let timeout = node_timeout.as_millis().to_string();
        let mut servers = Vec::new();
        for _ in 0..6 {
            // the bus port on its own free port: port + 10000 may be out of range or taken
            let (port, bus) = (free_port(), free_port());
            let (port_s, bus_s, conf) = (port.to_string(), bus.to_string(), format!("nodes-{port}.conf"));
            let args = [
                "--port",
                &port_s,
                "--cluster-enabled",
                "yes",
                "--cluster-port",
                &bus_s,
                "--cluster-config-file",
                &conf,
                "--cluster-node-timeout",
                &timeout,
                // a replica always may take over, however long its master was gone
                "--cluster-replica-validity-factor",
                "0",
                "--dir",
                &dir_arg,
            ];
            servers.push(PrivateRedis::start_with(port, &args).await);
        }
        let cluster = PrivateCluster { servers, node_timeout, dir };
        let addrs: Vec<String> = cluster.servers.iter().map(|s| format!("127.0.0.1:{}", s.port)).collect();
        let create = Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(&addrs)
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .stdin(Stdio::null())
            .output();
        let out = tokio::time::timeout(Duration::from_secs(60), create)
            .await
            .expect("redis-cli --cluster create within 60 s")
            .expect("redis-cli (Debian package redis-tools)");
        assert!(
            out.status.success(),
            "redis-cli --cluster create: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        cluster.wait_healthy(Duration::from_secs(30)).await;
        cluster
    }

    /// Waits until every running node says `cluster_state:ok` and sees 3 masters, each
    /// with a replica whose link to it is up.
    pub async fn wait_healthy(&self, within: Duration) {
        let start = Instant::now();
        loop {
            match self.healthy().await {
                Ok(()) => return,
                Err(e) => assert!(start.elapsed() < within, "private cluster not healthy after {within:?}: {e}"),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn healthy(&self) -> Result<(), String> {
        for s in &self.servers {
            let addr = format!("127.0.0.1:{}", s.port);
            let info: String = node_command(&addr, &["CLUSTER", "INFO"]).await?;
            if !info.contains("cluster_state:ok") {
                return Err(format!("{addr}: not cluster_state:ok"));
            }
            let nodes = cluster_nodes(&addr).await?;
            let masters: Vec<&ClusterNode> = nodes.iter().filter(|n| n.master && !n.failing).collect();
            if masters.len() != 3 || masters.iter().any(|m| m.slots.is_empty()) {
                return Err(format!("{addr}: sees {} masters serving slots", masters.len()));
            }
            if nodes.iter().filter(|n| !n.master && !n.failing).count() != 3 {
                return Err(format!("{addr}: not 3 replicas"));
            }
            if !nodes.iter().find(|n| n.port == s.port).is_some_and(|me| me.master) {
                let repl: String = node_command(&addr, &["INFO", "replication"]).await?;
                if !repl.contains("master_link_status:up") {
                    return Err(format!("{addr}: replica not in sync"));
                }
            }
        }
        Ok(())
    }

    /// The seed URL of this project's grammar: every node, `redis://h:p,h:p,...`.
    pub fn url(&self) -> String {
        let hosts: Vec<String> = self.servers.iter().map(|s| format!("127.0.0.1:{}", s.port)).collect();
        format!("redis://{}", hosts.join(","))
    }

    /// The topology as the first node that answers sees it.
    pub async fn nodes(&self) -> Vec<ClusterNode> {
        let mut last = String::new();
        for s in &self.servers {
            match cluster_nodes(&format!("127.0.0.1:{}", s.port)).await {
                Ok(nodes) => return nodes,
                Err(e) => last = e,
            }
        }
        panic!("no node of the private cluster answers CLUSTER NODES: {last}")
    }

    /// The hash slot of `key` (or channel).
    pub async fn keyslot(&self, key: &str) -> u16 {
        for s in &self.servers {
            if let Ok(slot) = node_command(&format!("127.0.0.1:{}", s.port), &["CLUSTER", "KEYSLOT", key]).await {
                return slot;
            }
        }
        panic!("no node of the private cluster answers CLUSTER KEYSLOT")
    }

    /// The master serving `channel`'s slot.
    pub async fn owner_of(&self, channel: &str) -> ClusterNode {
        let slot = self.keyslot(channel).await;
        self.nodes()
            .await
            .into_iter()
            .find(|n| n.master && !n.failing && n.owns(slot))
            .unwrap_or_else(|| panic!("no master serves slot {slot} ({channel})"))
    }

    /// The server process listening on `port`.
    pub fn server(&self, port: u16) -> &PrivateRedis {
        self.servers.iter().find(|s| s.port == port).unwrap_or_else(|| panic!("no private cluster node on {port}"))
    }

    /// Sends `signal` (`STOP`, `CONT`, ...) to the node on `port`.
    pub async fn signal(&self, port: u16, signal: &str) {
        self.server(port).signal(signal).await;
    }

    /// Kills the node on `port` (SIGKILL).
    pub async fn kill(&mut self, port: u16) {
        let server = self.servers.iter_mut().find(|s| s.port == port).expect("a node on that port");
        server.stop().await;
    }

    /// Waits until a live node sees another master serving every slot `old` (a killed or
    /// stalled master, by id) served: its replica was promoted. The new master, and how
    /// long the wait took.
    pub async fn wait_promoted(&self, old: &ClusterNode, within: Duration) -> (ClusterNode, Duration) {
        let start = Instant::now();
        let slot = old.slots.first().expect("a master with slots").0;
        loop {
            for s in self.servers.iter().filter(|s| s.port != old.port) {
                if let Ok(nodes) = cluster_nodes(&format!("127.0.0.1:{}", s.port)).await
                    && let Some(new) = nodes.into_iter().find(|n| n.master && !n.failing && n.owns(slot))
                    && new.id != old.id
                {
                    return (new, start.elapsed());
                }
            }
            assert!(start.elapsed() < within, "no replica of {} promoted within {within:?}", old.addr);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for PrivateCluster {
    fn drop(&mut self) {
        // the servers are killed by their own drop (kill_on_drop), SIGSTOPped ones too
        self.servers.clear();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
