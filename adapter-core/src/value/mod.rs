//! Values (this module) are the leaf of the crate: the JSON and MessagePack modules
//! read and write them, and their serde conversion (`from_serialize`) and `Display`
//! (JSON text) are implemented there, so nothing here depends on an encoding.
//!
//! The argument value model shared by every dialect.
//!
//! [`Value`] carries everything JSON and MessagePack can: maps (in insertion order),
//! arrays, strings, integers over the whole `i64` and `u64` range, floats, booleans,
//! null, binary, MessagePack timestamps and other extension types.
//!
//! Integers are canonical: every integer that fits in an `i64` is [`Value::Int`];
//! [`Value::UInt`] only holds values above `i64::MAX`. Use the `From` impls or
//! [`Value::from_serialize`] to build values, so equal numbers compare equal.

use std::fmt;

use bytes::Bytes;

mod serde_impls;

/// How deeply arrays and maps may nest: the decoders refuse deeper input (a peer cannot
/// exhaust the stack with a crafted message).
pub const MAX_DEPTH: usize = 128;

/// A value could not be converted from or to a Rust type.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ValueError {
    /// The Rust value could not be serialized.
    #[error("cannot convert to an argument value: {0}")]
    Serialize(String),
    /// The argument value does not fit the Rust type.
    #[error("cannot convert an argument value: {0}")]
    Deserialize(String),
}

/// A dynamically typed argument value.
#[derive(Clone, PartialEq, Default)]
pub enum Value {
    /// `null` (JSON), `nil` (MessagePack), `None` / `()` (Rust).
    #[default]
    Null,
    /// A boolean.
    Bool(bool),
    /// An integer in the `i64` range (canonical form for every integer that fits).
    Int(i64),
    /// An integer above `i64::MAX`.
    UInt(u64),
    /// A floating point number (always encoded as float64 on the wire).
    Float(f64),
    /// A UTF-8 string.
    Str(String),
    /// Raw bytes (MessagePack `bin`, a Socket.IO binary attachment).
    Binary(Bytes),
    /// An ordered list.
    Array(Vec<Value>),
    /// A map with string keys, in insertion order.
    Map(Map),
    /// A MessagePack timestamp (extension type -1), what Node.js sends for a `Date`.
    Timestamp(Timestamp),
    /// Any other MessagePack extension type, kept as is.
    Ext(i8, Bytes),
}

impl Value {
    /// The string, if this is a [`Value::Str`].
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The boolean, if this is a [`Value::Bool`].
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// The value as `u64`, if it is a non-negative integer (or an integral float in range).
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            Value::Int(i) => u64::try_from(i).ok(),
            Value::UInt(u) => Some(u),
            Value::Float(f) if f.fract() == 0.0 && (0.0..18_446_744_073_709_551_616.0).contains(&f) => Some(f as u64),
            _ => None,
        }
    }

    /// The value as `i64`, if it is an integer in range (or an integral float in range).
    pub fn as_i64(&self) -> Option<i64> {
        match *self {
            Value::Int(i) => Some(i),
            Value::UInt(u) => i64::try_from(u).ok(),
            Value::Float(f)
                if f.fract() == 0.0 && (-9_223_372_036_854_775_808.0..9_223_372_036_854_775_808.0).contains(&f) =>
            {
                Some(f as i64)
            }
            _ => None,
        }
    }

    /// The value as `f64`, if it is a number.
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Value::Int(i) => Some(i as f64),
            Value::UInt(u) => Some(u as f64),
            Value::Float(f) => Some(f),
            _ => None,
        }
    }

    /// The items, if this is a [`Value::Array`].
    pub fn as_array(&self) -> Option<&[Value]> {
        match self {
            Value::Array(a) => Some(a),
            _ => None,
        }
    }

    /// The map, if this is a [`Value::Map`].
    pub fn as_map(&self) -> Option<&Map> {
        match self {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }

    /// The bytes, if this is a [`Value::Binary`].
    pub fn as_binary(&self) -> Option<&Bytes> {
        match self {
            Value::Binary(b) => Some(b),
            _ => None,
        }
    }

    /// Looks a key up, if this is a map.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.as_map().and_then(|m| m.get(key))
    }

    /// `true` for [`Value::Null`].
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// `true` if this value or anything nested in it is [`Value::Binary`].
    pub fn has_binary(&self) -> bool {
        match self {
            Value::Binary(_) => true,
            Value::Array(a) => a.iter().any(Value::has_binary),
            Value::Map(m) => m.values().any(Value::has_binary),
            _ => false,
        }
    }

    /// A short name of the variant, for error messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "boolean",
            Value::Int(_) | Value::UInt(_) => "integer",
            Value::Float(_) => "float",
            Value::Str(_) => "string",
            Value::Binary(_) => "binary",
            Value::Array(_) => "array",
            Value::Map(_) => "map",
            Value::Timestamp(_) => "timestamp",
            Value::Ext(..) => "extension",
        }
    }
}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => f.write_str("null"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Int(i) => write!(f, "{i}"),
            Value::UInt(u) => write!(f, "{u}"),
            Value::Float(x) => write!(f, "{x:?}"),
            Value::Str(s) => write!(f, "{s:?}"),
            Value::Binary(b) => write!(f, "<binary {} bytes>", b.len()),
            Value::Array(a) => f.debug_list().entries(a).finish(),
            Value::Map(m) => f.debug_map().entries(m.iter()).finish(),
            Value::Timestamp(t) => write!(f, "{}", t.to_iso8601()),
            Value::Ext(t, b) => write!(f, "<ext {t} {} bytes>", b.len()),
        }
    }
}

/// A MessagePack timestamp: seconds since the Unix epoch plus nanoseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Timestamp {
    /// Whole seconds since 1970-01-01T00:00:00Z (may be negative).
    pub seconds: i64,
    /// Nanoseconds within the second, `0..1_000_000_000`.
    pub nanos: u32,
}

impl Timestamp {
    /// Builds a timestamp from milliseconds since the epoch, as a JavaScript `Date` holds.
    pub fn from_millis(ms: i64) -> Self {
        let seconds = ms.div_euclid(1000);
        let nanos = (ms.rem_euclid(1000) as u32) * 1_000_000;
        Timestamp { seconds, nanos }
    }

    /// Milliseconds since the epoch (truncating sub-millisecond precision).
    pub fn as_millis(&self) -> i64 {
        self.seconds.saturating_mul(1000).saturating_add(i64::from(self.nanos / 1_000_000))
    }

    /// The ISO-8601 form `Date.prototype.toJSON` produces: `YYYY-MM-DDTHH:mm:ss.sssZ`.
    pub fn to_iso8601(&self) -> String {
        let days = self.seconds.div_euclid(86_400);
        let secs_of_day = self.seconds.rem_euclid(86_400);
        let (y, m, d) = civil_from_days(days);
        let (hh, mm, ss) = (secs_of_day / 3600, (secs_of_day % 3600) / 60, secs_of_day % 60);
        let ms = self.nanos / 1_000_000;
        if (0..=9999).contains(&y) {
            format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}.{ms:03}Z")
        } else {
            let sign = if y < 0 { '-' } else { '+' };
            format!("{sign}{:06}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}.{ms:03}Z", y.unsigned_abs())
        }
    }
}

/// Howard Hinnant's days-to-civil algorithm.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// An insertion-ordered map with string keys.
///
/// Lookups are linear: wire maps have a handful of keys, and keeping the order is
/// what makes re-encoded messages byte-identical to the Node.js ones.
#[derive(Clone, Default, PartialEq)]
pub struct Map(Vec<(String, Value)>);

impl Map {
    /// An empty map.
    pub fn new() -> Self {
        Map(Vec::new())
    }

    /// An empty map with room for `n` entries.
    pub fn with_capacity(n: usize) -> Self {
        Map(Vec::with_capacity(n))
    }

    /// Inserts a key, replacing (in place) the value of an existing equal key.
    pub fn insert(&mut self, key: impl Into<String>, value: impl Into<Value>) -> &mut Self {
        let key = key.into();
        let value = value.into();
        match self.0.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => self.0.push((key, value)),
        }
        self
    }

    /// Appends without checking for duplicates (decoders keep what the wire says).
    pub(crate) fn push_raw(&mut self, key: String, value: Value) {
        self.0.push((key, value));
    }

    /// The value of a key.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// Removes a key and returns its value.
    pub fn remove(&mut self, key: &str) -> Option<Value> {
        let idx = self.0.iter().position(|(k, _)| k == key)?;
        Some(self.0.remove(idx).1)
    }

    /// `true` if the key is present.
    pub fn contains_key(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// `true` when empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Entries in order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&String, &Value)> {
        self.0.iter().map(|(k, v)| (k, v))
    }

    /// Values in order.
    pub fn values(&self) -> impl ExactSizeIterator<Item = &Value> {
        self.0.iter().map(|(_, v)| v)
    }
}

impl fmt::Debug for Map {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl IntoIterator for Map {
    type Item = (String, Value);
    type IntoIter = std::vec::IntoIter<(String, Value)>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl<K: Into<String>, V: Into<Value>> FromIterator<(K, V)> for Map {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let mut m = Map::new();
        for (k, v) in iter {
            m.insert(k, v);
        }
        m
    }
}

macro_rules! from_int {
    ($($t:ty),*) => {$(
        impl From<$t> for Value {
            fn from(v: $t) -> Self { Value::Int(i64::from(v)) }
        }
    )*};
}
from_int!(i8, i16, i32, i64, u8, u16, u32);

impl From<u64> for Value {
    fn from(v: u64) -> Self {
        match i64::try_from(v) {
            Ok(i) => Value::Int(i),
            Err(_) => Value::UInt(v),
        }
    }
}

impl From<usize> for Value {
    fn from(v: usize) -> Self {
        Value::from(v as u64)
    }
}

impl From<f64> for Value {
    fn from(v: f64) -> Self {
        Value::Float(v)
    }
}

impl From<f32> for Value {
    fn from(v: f32) -> Self {
        Value::Float(f64::from(v))
    }
}

impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Value::Bool(v)
    }
}

impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::Str(v.to_owned())
    }
}

impl From<String> for Value {
    fn from(v: String) -> Self {
        Value::Str(v)
    }
}

impl From<Bytes> for Value {
    fn from(v: Bytes) -> Self {
        Value::Binary(v)
    }
}

impl From<Vec<Value>> for Value {
    fn from(v: Vec<Value>) -> Self {
        Value::Array(v)
    }
}

impl From<Map> for Value {
    fn from(v: Map) -> Self {
        Value::Map(v)
    }
}

impl From<Timestamp> for Value {
    fn from(v: Timestamp) -> Self {
        Value::Timestamp(v)
    }
}

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Self {
        v.map_or(Value::Null, Into::into)
    }
}

impl From<serde_json::Value> for Value {
    fn from(v: serde_json::Value) -> Self {
        match v {
            serde_json::Value::Null => Value::Null,
            serde_json::Value::Bool(b) => Value::Bool(b),
            serde_json::Value::Number(n) => {
                if let Some(i) = n.as_i64() {
                    Value::Int(i)
                } else if let Some(u) = n.as_u64() {
                    Value::from(u)
                } else {
                    Value::Float(n.as_f64().unwrap_or(f64::NAN))
                }
            }
            serde_json::Value::String(s) => Value::Str(s),
            serde_json::Value::Array(a) => Value::Array(a.into_iter().map(Value::from).collect()),
            serde_json::Value::Object(o) => {
                let mut m = Map::with_capacity(o.len());
                for (k, v) in o {
                    m.push_raw(k, Value::from(v));
                }
                Value::Map(m)
            }
        }
    }
}

/// Event arguments built at run time (owned `Vec<Value>` or a borrowed slice), serialized
/// as a tuple: Socket.IO serializers spread a tuple after the event name, so each value is
/// one argument (a `Vec` would be a single array argument).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Args<V: AsRef<[Value]> = Vec<Value>>(pub V);

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};

    use super::*;

    #[test]
    fn integers_are_canonical() {
        assert_eq!(Value::from(5u64), Value::Int(5));
        assert_eq!(Value::from(u64::MAX), Value::UInt(u64::MAX));
        assert_eq!(Value::from(-3i32), Value::Int(-3));
        let json: Value =
            serde_json::from_str("[1, 18446744073709551615, -9223372036854775808, 1.5]").expect("valid json");
        assert_eq!(
            json,
            Value::Array(vec![Value::Int(1), Value::UInt(u64::MAX), Value::Int(i64::MIN), Value::Float(1.5)])
        );
    }

    #[test]
    fn serialize_roundtrip_through_serde() {
        #[derive(Serialize, Deserialize, Debug, PartialEq)]
        struct Msg {
            a: u32,
            b: Vec<String>,
            c: Option<f64>,
            #[serde(with = "bytes_as_bin")]
            d: Vec<u8>,
        }
        mod bytes_as_bin {
            use serde::{Deserialize, Deserializer, Serializer};
            pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
                s.serialize_bytes(v)
            }
            pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
                Ok(bytes::Bytes::deserialize(d)?.to_vec())
            }
        }
        let msg = Msg { a: 7, b: vec!["x".into()], c: Some(2.5), d: vec![1, 2, 3] };
        let v = Value::from_serialize(&msg).expect("serializable");
        assert_eq!(v.get("a"), Some(&Value::Int(7)));
        assert_eq!(v.get("d"), Some(&Value::Binary(Bytes::from_static(&[1, 2, 3]))));
        let back: Msg = v.deserialize_into().expect("deserializable");
        assert_eq!(back, msg);
        // a tuple is several values
        let t = Value::from_serialize(&("a", 1, true)).expect("tuple");
        assert_eq!(t, Value::Array(vec!["a".into(), 1.into(), true.into()]));
    }

    #[test]
    fn timestamps_format_like_javascript() {
        // new Date('2000-06-13T00:00:00.000Z').getTime() == 960854400000
        assert_eq!(Timestamp::from_millis(960_854_400_000).to_iso8601(), "2000-06-13T00:00:00.000Z");
        assert_eq!(Timestamp::from_millis(-1).to_iso8601(), "1969-12-31T23:59:59.999Z");
        assert_eq!(Timestamp::from_millis(1_795_342_241_694).as_millis(), 1_795_342_241_694);
    }

    #[test]
    fn map_keeps_insertion_order_and_replaces_in_place() {
        let mut m = Map::new();
        m.insert("b", 1).insert("a", 2).insert("b", 3);
        let keys: Vec<_> = m.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["b", "a"]);
        assert_eq!(m.get("b"), Some(&Value::Int(3)));
    }
}
