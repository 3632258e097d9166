//! JSON as the Node.js peer speaks it (`{"$bin": base64}` for binary) <-> [`Value`].

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value as Json, json};
use socketio_adapter_core::{Map, Value};

/// The peer's JSON form of a value.
pub fn to_json(v: &Value) -> Json {
    match v {
        Value::Null => Json::Null,
        Value::Bool(b) => json!(b),
        Value::Int(i) => json!(i),
        Value::UInt(u) => json!(u),
        Value::Float(f) => json!(f),
        Value::Str(s) => json!(s),
        Value::Binary(b) => json!({"$bin": STANDARD.encode(b)}),
        Value::Array(a) => Json::Array(a.iter().map(to_json).collect()),
        Value::Map(m) => Json::Object(m.iter().map(|(k, v)| (k.clone(), to_json(v))).collect()),
        Value::Timestamp(t) => json!(t.to_iso8601()),
        Value::Ext(tag, b) => json!({"$ext": tag, "$bin": STANDARD.encode(b)}),
    }
}

/// A value from the peer's JSON form.
pub fn from_json(j: &Json) -> Value {
    match j {
        Json::Null => Value::Null,
        Json::Bool(b) => Value::Bool(*b),
        Json::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::Int(i)
            } else if let Some(u) = n.as_u64() {
                Value::UInt(u)
            } else {
                Value::Float(n.as_f64().unwrap_or(f64::NAN))
            }
        }
        Json::String(s) => Value::Str(s.clone()),
        Json::Array(a) => Value::Array(a.iter().map(from_json).collect()),
        Json::Object(o) => {
            if let (1, Some(Json::String(b))) = (o.len(), o.get("$bin")) {
                return Value::Binary(STANDARD.decode(b).expect("base64").into());
            }
            let mut m = Map::new();
            for (k, v) in o {
                m.insert(k.clone(), from_json(v));
            }
            Value::Map(m)
        }
    }
}
