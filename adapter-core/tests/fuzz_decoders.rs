//! No decoder may panic on network input: every dialect gets at least 100 000 random and
//! mutated inputs per run (mutations of real captured messages and of encodings of
//! every message type), on every channel kind it listens to.
//!
//! The seed is printed; set `FUZZ_SEED` to replay a run, `FUZZ_ITERATIONS` to run more.
#![allow(clippy::print_stderr)]

mod common;

use std::panic::{AssertUnwindSafe, catch_unwind};

use common::{fixture_docs, unhex};
use socketio_adapter_core::dialect::{
    Dialect, NodeClusterDialect, NodeRedisDialect, NodeStreamsDialect, PythonDialect, StreamLayout,
};
use socketio_adapter_core::{
    Body, BroadcastOptions, EventPacket, Map, Message, SocketInfo, Timestamp, Value, json, msgpack,
};

fn captured() -> Vec<Vec<u8>> {
    captured_in("node")
}

/// Every captured message (`messages[].hex`) of the fixture files under
/// `tests/fixtures/<dir>`, recursively.
fn captured_in(dir: &str) -> Vec<Vec<u8>> {
    fixture_docs(dir)
        .iter()
        .flat_map(|(_, doc)| doc["messages"].as_array().expect("messages"))
        .map(|m| unhex(m["hex"].as_str().expect("hex")))
        .collect()
}

fn rich_value() -> Value {
    let mut m = Map::new();
    m.insert("s", "é\u{1}\"");
    m.insert("i", Value::Int(-1_234_567_890_123));
    m.insert("u", Value::UInt(u64::MAX));
    m.insert("f", 1.5e300);
    m.insert("b", Value::Binary(bytes::Bytes::from_static(&[0, 255, 7])));
    m.insert("t", Value::Timestamp(Timestamp { seconds: 1 << 35, nanos: 5 }));
    m.insert("a", Value::Array(vec![Value::Null, true.into(), Value::Ext(7, bytes::Bytes::from_static(b"x"))]));
    Value::Map(m)
}

fn every_body() -> Vec<Body> {
    let packet = EventPacket::new("ev", vec![rich_value(), 1.into()]);
    let opts = BroadcastOptions::all().to("r1").to(42).except("x").volatile().compress(false);
    let socket = SocketInfo {
        id: "s1".into(),
        rooms: vec!["s1".into(), "r1".into()],
        handshake: rich_value(),
        data: Value::Null,
    };
    let id = || "req1".to_owned();
    vec![
        Body::InitialHeartbeat,
        Body::Heartbeat,
        Body::AdapterClose,
        Body::Broadcast { packet: packet.clone(), opts: opts.clone() },
        Body::BroadcastWithAck { request_id: id(), packet: packet.clone(), opts: opts.clone() },
        Body::SocketsJoin { opts: opts.clone(), rooms: vec!["a".into()] },
        Body::SocketsLeave { opts: opts.clone(), rooms: vec!["a".into()] },
        Body::DisconnectSockets { opts: opts.clone(), close: true },
        Body::FetchSockets { request_id: id(), opts: opts.clone() },
        Body::AllRooms { request_id: id() },
        Body::ServerSideEmit { request_id: Some(id()), packet: packet.clone() },
        Body::ServerSideEmit { request_id: None, packet },
        Body::FetchSocketsResponse { request_id: id(), sockets: vec![socket] },
        Body::AllRoomsResponse { request_id: id(), rooms: vec!["r1".into()] },
        Body::ServerSideEmitResponse { request_id: id(), value: rich_value() },
        Body::BroadcastClientCount { request_id: id(), count: 3 },
        Body::BroadcastAck { request_id: id(), value: rich_value() },
    ]
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        // splitmix64
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const INTERESTING: &[u8] = &[
    0x00, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc1, 0xc4, 0xc7, 0xc9, 0xcb, 0xcf, 0xd4, 0xd7, 0xd8, 0xd9,
    0xdb, 0xdc, 0xdd, 0xde, 0xdf, 0xff, b'{', b'}', b'[', b']', b'"', b':', b',', b'\\',
];

fn mutate(rng: &mut Rng, corpus: &[Vec<u8>]) -> Vec<u8> {
    if rng.below(8) == 0 {
        let len = rng.below(48);
        return (0..len).map(|_| rng.next() as u8).collect();
    }
    let mut input = corpus[rng.below(corpus.len())].clone();
    for _ in 0..=rng.below(4) {
        match rng.below(7) {
            0 if !input.is_empty() => {
                let i = rng.below(input.len());
                input[i] ^= 1 << rng.below(8);
            }
            1 if !input.is_empty() => {
                let i = rng.below(input.len());
                input[i] = INTERESTING[rng.below(INTERESTING.len())];
            }
            2 => {
                let i = rng.below(input.len() + 1);
                input.insert(i, INTERESTING[rng.below(INTERESTING.len())]);
            }
            3 if !input.is_empty() => {
                let i = rng.below(input.len());
                input.remove(i);
            }
            4 => {
                let cut = rng.below(input.len() + 1);
                input.truncate(cut);
            }
            5 => {
                let other = &corpus[rng.below(corpus.len())];
                let at = rng.below(input.len() + 1);
                let from = rng.below(other.len() + 1);
                input.splice(at..at, other[from..].iter().copied());
            }
            _ if input.len() > 2 => {
                // overwrite a length-like byte with a huge value
                let i = rng.below(input.len() - 1);
                input[i] = 0xff;
                input[i + 1] = 0xff;
            }
            _ => {}
        }
    }
    input
}

fn run(name: &str, dialect: &dyn Dialect, channels: &[&str], corpus: &[Vec<u8>], iterations: usize, seed: u64) {
    let mut rng = Rng(seed);
    let (mut ok, mut err) = (0usize, 0usize);
    for i in 0..iterations {
        let input = mutate(&mut rng, corpus);
        let channel = channels[rng.below(channels.len())];
        let result = catch_unwind(AssertUnwindSafe(|| {
            let _ = msgpack::decode(&input);
            let _ = json::parse(&input);
            dialect.decode(channel, &input).is_ok()
        }));
        match result {
            Ok(true) => ok += 1,
            Ok(false) => err += 1,
            Err(_) => {
                panic!("{name} decoder panicked: seed {seed}, iteration {i}, channel {channel}, input {:02x?}", input)
            }
        }
    }
    eprintln!("{name}: {iterations} inputs, {ok} decoded, {err} rejected (seed {seed})");
    // both paths exercised: the mutations stay close enough to be accepted sometimes
    assert!(ok > iterations / 500, "{name}: too few inputs accepted ({ok})");
    assert!(err > iterations / 500, "{name}: too few inputs rejected ({err})");
}

fn params() -> (usize, u64) {
    let iterations = std::env::var("FUZZ_ITERATIONS").ok().and_then(|v| v.parse().ok()).unwrap_or(100_000);
    let seed = std::env::var("FUZZ_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(1)
    });
    (iterations.max(100_000), seed)
}

fn corpus_for(dialect: &dyn Dialect, extra: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
    let mut corpus = extra;
    for body in every_body() {
        let mut msg = Message::new(Some("0123456789abcdef".into()), "/", body);
        msg.reply_to = Some("fedcba9876543210".into());
        if let Ok(out) = dialect.encode(&msg) {
            corpus.push(out.payload.to_vec());
        }
    }
    corpus
}

#[test]
fn node_redis_decoder_never_panics() {
    let dialect = NodeRedisDialect::default();
    let corpus = corpus_for(&dialect, captured());
    let channels = ["socket.io#/#", "socket.io#/#r1#", "socket.io-request#/#", "socket.io-response#/#", "x"];
    let (n, seed) = params();
    run("node-redis", &dialect, &channels, &corpus, n, seed);
}

#[test]
fn node_cluster_decoder_never_panics() {
    let dialect = NodeClusterDialect::default();
    let corpus = corpus_for(&dialect, Vec::new());
    assert!(corpus.len() >= 14, "every ClusterAdapter message type is in the corpus");
    let channels = ["socket.io#/#", "socket.io#/#0123456789abcdef#", "socket.io#/#room#"];
    let (n, seed) = params();
    run("node-cluster", &dialect, &channels, &corpus, n, seed);
}

#[test]
fn node_streams_decoder_never_panics() {
    let layout = StreamLayout::new("socket.io", 1).expect("layout");
    let dialect = NodeStreamsDialect::new("socket.io", layout);
    let corpus = corpus_for(&dialect, Vec::new());
    assert!(corpus.len() >= 14, "every ClusterAdapter message type is in the corpus");
    let channels = ["socket.io", "socket.io#/#", "socket.io#/#0123456789abcdef#"];
    let (n, seed) = params();
    run("node-streams", &dialect, &channels, &corpus, n, seed);
}

#[test]
fn python_decoder_never_panics() {
    let dialect = PythonDialect::default();
    // python-socketio's captures (JSON and pickled) and our encodings, callbacks included
    let corpus = corpus_for(&dialect, captured_in("python"));
    assert!(corpus.len() >= 40, "the python captures are in the corpus");
    let (n, seed) = params();
    run("python", &dialect, &["socketio"], &corpus, n, seed);
}
