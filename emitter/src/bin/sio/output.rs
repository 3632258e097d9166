//! What `sio` prints and how it fails: JSON lines on stdout, one error line with its
//! cause chain and an exit status.

use std::io::Write;

use base64::Engine;
use socketio_adapter_core::error_chain;
use socketio_emitter::{EmitterError, Value};

/// A failure with its exit status.
pub(crate) struct Failure {
    pub(crate) code: u8,
    pub(crate) message: String,
}

impl Failure {
    /// Standard output's reader went away (`sio tail | head -1`): the command ends quietly
    /// with status 0, as Unix filters do.
    pub(crate) fn reader_gone() -> Failure {
        Failure { code: 0, message: String::new() }
    }
}

pub(crate) fn usage(message: impl Into<String>) -> Failure {
    Failure { code: 2, message: message.into() }
}

impl From<EmitterError> for Failure {
    fn from(e: EmitterError) -> Self {
        Failure { code: if e.is_broker_failure() { 1 } else { 2 }, message: error_chain(&e) }
    }
}

/// A value as JSON for output: binary as `{"$bin": base64}`.
pub(crate) fn to_json(v: &Value) -> serde_json::Value {
    use serde_json::Value as J;
    match v {
        Value::Binary(b) | Value::Ext(_, b) => {
            serde_json::json!({ "$bin": base64::engine::general_purpose::STANDARD.encode(b) })
        }
        Value::Array(a) => J::Array(a.iter().map(to_json).collect()),
        Value::Map(m) => J::Object(m.iter().map(|(k, v)| (k.clone(), to_json(v))).collect()),
        other => serde_json::to_value(other).unwrap_or(J::Null),
    }
}

/// Writes one line to standard output, flushed. A closed pipe is
/// [`Failure::reader_gone`]; any other write error is a failure (status 1).
pub(crate) fn out_line(line: impl std::fmt::Display) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}").and_then(|()| out.flush()).map_err(|e| match e.kind() {
        std::io::ErrorKind::BrokenPipe => Failure::reader_gone(),
        _ => Failure { code: 1, message: format!("cannot write to standard output: {e}") },
    })
}

/// Each ack as a JSON line, then a failure if some were missing.
pub(crate) fn print_acks(what: &str, got: &socketio_emitter::Gathered<Vec<Value>>) -> Result<(), Failure> {
    for v in &got.value {
        out_line(to_json(v))?;
    }
    incomplete(what, got.shortfall.as_ref())
}

pub(crate) fn incomplete(what: &str, shortfall: Option<&socketio_emitter::Shortfall>) -> Result<(), Failure> {
    match shortfall {
        None => Ok(()),
        Some(s) => Err(Failure { code: 1, message: format!("{what}: {s}") }),
    }
}
