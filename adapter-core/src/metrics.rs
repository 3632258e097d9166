//! Prometheus metrics of the cluster engines and their transport (feature `metrics`),
//! with [prometheus-client](https://docs.rs/prometheus-client).
//!
//! [`ClusterMetrics`] is a prometheus-client [`Collector`]: it reads the engines'
//! [`Stats`], [`RoundTrips`] and readiness, and the
//! transport's [`TransportStats`] and connection state, on each
//! scrape (nothing is counted twice, nothing waits for the broker). Register it in your
//! application's registry next to your own metrics, and serve [`render`]'s text:
//!
//! ```
//! use prometheus_client::registry::Registry;
//! use socketio_adapter_core::metrics::{self, ClusterMetrics};
//! use socketio_adapter_core::{ClusterCore, Transport};
//!
//! /// The body of a `GET /metrics` answer (its `Content-Type`: `metrics::CONTENT_TYPE`).
//! fn scrape<T: Transport>(cores: Vec<ClusterCore<T>>) -> String {
//!     let mut registry = Registry::default(); // yours, with your own metrics
//!     ClusterMetrics::of_cores(cores).register(&mut registry);
//!     metrics::render(&registry)
//! }
//! ```
//!
//! With the socketioxide bridge, [`ClusterMetrics::of_handle`] takes the `ClusterHandle`
//! of the `SioState` (`state.handle()`) and reads every namespace socketioxide created,
//! on each scrape (that is what `sio-node`'s `GET /metrics` serves).
//!
//! [`ClusterMetrics::of_cores`] takes the [`ClusterCore`]s (one per namespace) of one
//! transport.
//!
//! # Metrics
//!
//! Per namespace (label `namespace`), counters (`_total` in the exposition):
//! `socketio_cluster_published`, `_publish_errors`, `_received`, `_undecodable`,
//! `_pickled`, `_oversized`, `_other_namespace`, `_dropped_responses`, `_dropped_deliveries`, `_incomplete_requests`, `_evicted_nodes`,
//! `_resubscriptions`, `_room_channels_refused`; gauges: `socketio_cluster_pending_requests`, `_known_nodes`,
//! `_room_channels`, `_room_channels_pending`, `_local_sockets`, `_local_rooms`, `_ready`
//! (1 or 0, see [`ClusterCore::readiness`]); a histogram:
//! `socketio_cluster_request_duration_seconds` (see [`RoundTrips`]).
//!
//! Of the transport (label `transport`: `redis`, `kafka`, `amqp`): the gauge
//! `socketio_cluster_transport_connected` (1 or 0) and the counters
//! `socketio_cluster_transport_reconnects`, `_delivered`, `_dropped`, `_replays_dropped`,
//! `_foreign_dropped`, `_publish_errors`, `_trimmed_unread` (see [`TransportStats`]).
//!
//! The text is OpenMetrics 1.0 (what prometheus-client writes; Prometheus reads it),
//! ending with `# EOF`.

use std::fmt;
use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

use crate::cluster::{ClusterCore, ROUND_TRIP_BUCKETS, RoundTrips, Stats};
use crate::transport::{Transport, TransportStats};

/// The `Content-Type` of [`render`]'s text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The registry's metrics in the text exposition format.
pub fn render(registry: &Registry) -> String {
    let mut out = String::new();
    // writing into a String fails only if a collector fails, and ours do not
    if let Err(e) = prometheus_client::encoding::text::encode(&mut out, registry) {
        tracing::warn!(error = %e, "metrics: encoding failed");
    }
    out
}

/// One namespace's engine, read on a scrape.
struct Sample {
    nsp: String,
    stats: Stats,
    round_trips: RoundTrips,
    ready: bool,
}

/// The transport, read on a scrape.
struct TransportSample {
    name: &'static str,
    stats: TransportStats,
    connected: bool,
}

type Source = dyn Fn() -> (Vec<Sample>, Option<TransportSample>) + Send + Sync;

/// The cluster's metrics as a prometheus-client [`Collector`]; see the
/// [module docs](self) for the names.
#[derive(Clone)]
pub struct ClusterMetrics {
    source: Arc<Source>,
}

impl fmt::Debug for ClusterMetrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClusterMetrics").finish_non_exhaustive()
    }
}

fn sample<T: Transport>(core: &ClusterCore<T>) -> Sample {
    Sample {
        nsp: core.namespace().to_owned(),
        stats: core.stats(),
        round_trips: core.round_trips(),
        ready: core.readiness().is_ok(),
    }
}

fn transport_sample<T: Transport>(t: &T) -> TransportSample {
    TransportSample { name: t.name(), stats: t.stats(), connected: t.is_connected() }
}

impl ClusterMetrics {
    /// The metrics of `cores`: the engines of one application's namespaces, over one
    /// transport (its metrics are read from the first).
    pub fn of_cores<T: Transport>(cores: impl IntoIterator<Item = ClusterCore<T>>) -> Self {
        let cores: Vec<ClusterCore<T>> = cores.into_iter().collect();
        ClusterMetrics {
            source: Arc::new(move || {
                let transport = cores.first().map(|c| transport_sample(c.transport()));
                (cores.iter().map(sample).collect(), transport)
            }),
        }
    }

    /// The metrics of every namespace socketioxide created (read on each scrape, so
    /// namespaces created later appear) and of their shared transport.
    #[cfg(feature = "socketioxide")]
    pub fn of_handle<T: Transport>(handle: crate::socketioxide::ClusterHandle<T>) -> Self {
        ClusterMetrics {
            source: Arc::new(move || {
                let cores = handle.namespaces();
                let transport = cores.first().map(|c| transport_sample(c.transport()));
                (cores.iter().map(sample).collect(), transport)
            }),
        }
    }

    /// Registers these metrics in `registry` (read on each of its encodings).
    pub fn register(self, registry: &mut Registry) {
        registry.register_collector(Box::new(self));
    }
}

type Labels<'a> = [(&'static str, &'a str); 1];

/// A metric's name, help and how to read it.
type Described<V> = (&'static str, &'static str, V);
type StatReader = fn(&Stats) -> u64;
type GaugeReader = fn(&Sample) -> i64;

/// Writes one metric family: `name`, `help`, one value per label set.
fn family<'a, M: EncodeMetric>(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    metric_type: MetricType,
    values: impl IntoIterator<Item = (Labels<'a>, M)>,
) -> fmt::Result {
    let mut metric = encoder.encode_descriptor(name, help, None, metric_type)?;
    for (labels, value) in values {
        value.encode(metric.encode_family(&labels)?)?;
    }
    Ok(())
}

impl Collector for ClusterMetrics {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> fmt::Result {
        let (samples, transport) = (self.source)();
        let counters: [Described<StatReader>; 13] = [
            ("socketio_cluster_published", "Messages published.", |s| s.published),
            ("socketio_cluster_publish_errors", "Publishes that failed.", |s| s.publish_errors),
            ("socketio_cluster_received", "Messages received from the transport.", |s| s.received),
            ("socketio_cluster_undecodable", "Received messages dropped as undecodable.", |s| s.undecodable),
            ("socketio_cluster_pickled", "Of the undecodable, pickled python-socketio messages.", |s| s.pickled),
            ("socketio_cluster_oversized", "Received messages dropped over the maximum message size.", |s| s.oversized),
            (
                "socketio_cluster_other_namespace",
                "Received messages of another namespace on this namespace's channels, dropped.",
                |s| s.other_namespace,
            ),
            ("socketio_cluster_dropped_responses", "Responses dropped: their request's queue was full.", |s| {
                s.dropped_responses
            }),
            (
                "socketio_cluster_dropped_deliveries",
                "Deliveries to local sockets dropped by the slow-socket policy.",
                |s| s.dropped_deliveries,
            ),
            ("socketio_cluster_incomplete_requests", "Requests completed without every answer.", |s| {
                s.incomplete_requests
            }),
            ("socketio_cluster_evicted_nodes", "Nodes evicted after going silent.", |s| s.evicted_nodes),
            ("socketio_cluster_resubscriptions", "Deaf subscriptions detected and repaired.", |s| s.resubscriptions),
            (
                "socketio_cluster_room_channels_refused",
                "Rooms that got no per-room channel: the namespace had reached max_room_channels.",
                |s| s.room_channels_refused,
            ),
        ];
        for (name, help, get) in counters {
            family(
                &mut encoder,
                name,
                help,
                MetricType::Counter,
                samples.iter().map(|s| (by_nsp(s), ConstCounter::new(get(&s.stats)))),
            )?;
        }
        let gauges: [Described<GaugeReader>; 7] = [
            ("socketio_cluster_pending_requests", "Requests waiting for answers.", |s| gauge(s.stats.pending_requests)),
            ("socketio_cluster_known_nodes", "Other nodes known alive or seen recently.", |s| {
                gauge(s.stats.known_nodes)
            }),
            ("socketio_cluster_room_channels", "Per-room channels subscribed.", |s| gauge(s.stats.room_channels)),
            ("socketio_cluster_room_channels_pending", "Per-room (un)subscriptions not yet applied.", |s| {
                gauge(s.stats.room_channels_pending)
            }),
            ("socketio_cluster_local_sockets", "Local sockets.", |s| gauge(s.stats.local_sockets)),
            ("socketio_cluster_local_rooms", "Local rooms with members (socket ids included).", |s| {
                gauge(s.stats.local_rooms)
            }),
            ("socketio_cluster_ready", "1 while connected and hearing itself through the broker.", |s| {
                i64::from(s.ready)
            }),
        ];
        for (name, help, get) in gauges {
            family(
                &mut encoder,
                name,
                help,
                MetricType::Gauge,
                samples.iter().map(|s| (by_nsp(s), ConstGauge::new(get(s)))),
            )?;
        }
        {
            let mut histogram = encoder.encode_descriptor(
                "socketio_cluster_request_duration_seconds",
                "Cluster requests from publishing to their last answer or timeout.",
                None,
                MetricType::Histogram,
            )?;
            for s in &samples {
                let rt = &s.round_trips;
                let buckets: Vec<(f64, u64)> =
                    ROUND_TRIP_BUCKETS.iter().copied().chain([f64::MAX]).zip(rt.buckets.iter().copied()).collect();
                histogram.encode_family(&by_nsp(s))?.encode_histogram::<prometheus_client::encoding::NoLabelSet>(
                    rt.sum.as_secs_f64(),
                    rt.count,
                    &buckets,
                    None,
                )?;
            }
        }
        let Some(t) = transport else { return Ok(()) };
        let labels = [("transport", t.name)];
        family(
            &mut encoder,
            "socketio_cluster_transport_connected",
            "1 while the transport's connection is up as far as it knows.",
            MetricType::Gauge,
            [(labels, ConstGauge::new(i64::from(t.connected)))],
        )?;
        let transport_counters: [Described<u64>; 7] = [
            (
                "socketio_cluster_transport_reconnects",
                "Connections or subscriptions re-established.",
                t.stats.reconnects,
            ),
            ("socketio_cluster_transport_delivered", "Messages handed to subscribers.", t.stats.delivered),
            ("socketio_cluster_transport_dropped", "Messages dropped: the subscriber queue was full.", t.stats.dropped),
            ("socketio_cluster_transport_replays_dropped", "Replayed records dropped.", t.stats.replays_dropped),
            ("socketio_cluster_transport_foreign_dropped", "Foreign records dropped.", t.stats.foreign_dropped),
            ("socketio_cluster_transport_publish_errors", "Publishes that failed.", t.stats.publish_errors),
            (
                "socketio_cluster_transport_trimmed_unread",
                "Stream entries trimmed before this node read them (may be lost).",
                t.stats.trimmed_unread,
            ),
        ];
        for (name, help, value) in transport_counters {
            family(&mut encoder, name, help, MetricType::Counter, [(labels, ConstCounter::new(value))])?;
        }
        Ok(())
    }
}

fn by_nsp(s: &Sample) -> Labels<'_> {
    [("namespace", s.nsp.as_str())]
}

fn gauge(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

#[cfg(all(test, feature = "memory"))]
mod tests {
    use std::sync::Arc;

    use prometheus_client::registry::Registry;

    use super::{ClusterMetrics, render};
    use crate::dialect::NodeRedisDialect;
    use crate::memory::MemoryHub;
    use crate::{Adapter, BroadcastOptions, ClusterAdapter, ClusterConfig};

    #[tokio::test]
    async fn a_scrape_reads_the_engines_and_the_transport() {
        let hub = MemoryHub::counting();
        let recorder = crate::testing::Recorder::new("A");
        let node = ClusterAdapter::new(
            hub.transport(),
            Arc::new(NodeRedisDialect::default()),
            "/",
            recorder,
            ClusterConfig::default(),
        )
        .expect("adapter");
        node.init().await.expect("init");
        node.add_all("s1", &["r".into()]);
        node.broadcast(crate::EventPacket::new("e", vec![]), BroadcastOptions::all()).await.expect("broadcast");
        let mut registry = Registry::default();
        ClusterMetrics::of_cores([node.core().clone()]).register(&mut registry);
        let text = render(&registry);
        for line in [
            "# TYPE socketio_cluster_published counter",
            "socketio_cluster_published_total{namespace=\"/\"} 1",
            "socketio_cluster_local_sockets{namespace=\"/\"} 1",
            "socketio_cluster_local_rooms{namespace=\"/\"} 2",
            "socketio_cluster_ready{namespace=\"/\"} 1",
            "# TYPE socketio_cluster_request_duration_seconds histogram",
            "socketio_cluster_request_duration_seconds_count{namespace=\"/\"} 0",
            "socketio_cluster_request_duration_seconds_bucket{le=\"+Inf\",namespace=\"/\"} 0",
            "socketio_cluster_transport_connected{transport=\"memory\"} 1",
            "socketio_cluster_transport_reconnects_total{transport=\"memory\"} 0",
            "# EOF",
        ] {
            assert!(text.lines().any(|l| l == line), "{line:?} missing in\n{text}");
        }
    }
}
