//! JSON text in the exact shape peers produce.
//!
//! [`write()`] matches JavaScript's `JSON.stringify`: no spaces, numbers as
//! `Number.prototype.toString` prints them, binary as a Node.js `Buffer`
//! (`{"type":"Buffer","data":[...]}`), timestamps as `Date.prototype.toJSON`
//! strings. [`write_python`] matches Python's `json.dumps` defaults
//! (`", "` / `": "` separators, `ensure_ascii`, `repr` floats).
//!
//! [`parse`] reads any JSON document into a [`Value`] (nesting limited to 128 levels).

use std::io::Write as _;

use crate::error::DecodeError;
use crate::value::Value;

/// Parses a JSON document.
pub fn parse(input: &[u8]) -> Result<Value, DecodeError> {
    serde_json::from_slice(input).map_err(|e| DecodeError::Json(e.to_string()))
}

/// Serializes like `JSON.stringify`.
pub fn to_string(v: &Value) -> String {
    let mut out = Vec::with_capacity(64);
    write(v, &mut out);
    // only valid UTF-8 is ever written
    String::from_utf8(out).unwrap_or_default()
}

/// Serializes like `JSON.stringify`, appending to `out`.
pub fn write(v: &Value, out: &mut Vec<u8>) {
    write_styled(v, out, Style::JavaScript);
}

/// Serializes like Python's `json.dumps` with its defaults.
pub fn to_string_python(v: &Value) -> String {
    let mut out = Vec::with_capacity(64);
    write_styled(v, &mut out, Style::Python);
    String::from_utf8(out).unwrap_or_default()
}

/// Serializes like Python's `json.dumps`, appending to `out`.
pub fn write_python(v: &Value, out: &mut Vec<u8>) {
    write_styled(v, out, Style::Python);
}

#[derive(Clone, Copy, PartialEq)]
enum Style {
    JavaScript,
    Python,
}

fn write_styled(v: &Value, out: &mut Vec<u8>, style: Style) {
    let (comma, colon): (&[u8], &[u8]) = match style {
        Style::JavaScript => (b",", b":"),
        Style::Python => (b", ", b": "),
    };
    match v {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Value::UInt(u) => {
            let _ = write!(out, "{u}");
        }
        Value::Float(f) => match style {
            Style::JavaScript if f.is_finite() => out.extend_from_slice(js_number(*f).as_bytes()),
            Style::JavaScript => out.extend_from_slice(b"null"),
            Style::Python => out.extend_from_slice(python_float(*f).as_bytes()),
        },
        Value::Str(s) => write_string(s, out, style),
        Value::Binary(b) => {
            // Buffer.prototype.toJSON
            out.extend_from_slice(b"{\"type\"");
            out.extend_from_slice(colon);
            out.extend_from_slice(b"\"Buffer\"");
            out.extend_from_slice(comma);
            out.extend_from_slice(b"\"data\"");
            out.extend_from_slice(colon);
            out.push(b'[');
            for (i, byte) in b.iter().enumerate() {
                if i > 0 {
                    out.extend_from_slice(comma);
                }
                let _ = write!(out, "{byte}");
            }
            out.extend_from_slice(b"]}");
        }
        Value::Array(a) => {
            out.push(b'[');
            for (i, item) in a.iter().enumerate() {
                if i > 0 {
                    out.extend_from_slice(comma);
                }
                write_styled(item, out, style);
            }
            out.push(b']');
        }
        Value::Map(m) => {
            out.push(b'{');
            for (i, (k, item)) in m.iter().enumerate() {
                if i > 0 {
                    out.extend_from_slice(comma);
                }
                write_string(k, out, style);
                out.extend_from_slice(colon);
                write_styled(item, out, style);
            }
            out.push(b'}');
        }
        Value::Timestamp(t) => write_string(&t.to_iso8601(), out, style),
        Value::Ext(ty, data) => {
            // notepack decodes unknown extensions to [type, Buffer]
            let as_js = Value::Array(vec![Value::Int(i64::from(*ty)), Value::Binary(data.clone())]);
            write_styled(&as_js, out, style);
        }
    }
}

fn write_string(s: &str, out: &mut Vec<u8>, style: Style) {
    out.push(b'"');
    for c in s.chars() {
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\r' => out.extend_from_slice(b"\\r"),
            '\t' => out.extend_from_slice(b"\\t"),
            '\u{08}' => out.extend_from_slice(b"\\b"),
            '\u{0c}' => out.extend_from_slice(b"\\f"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            // `ensure_ascii` escapes everything outside ' '..='~', DEL included
            c if style == Style::Python && (!c.is_ascii() || c == '\u{7f}') => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
            c => {
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
    out.push(b'"');
}

/// Shortest round-trip decimal digits and the decimal point position `n`
/// (the value is `0.d1d2...dk * 10^n`), for a finite, non-zero, positive float.
///
/// The digits are Ryū's: the shortest that read back as `f`, and of those the closest
/// to `f`, ties to even — what both JavaScript (`Number::toString`) and Python (`repr`,
/// David Gay's shortest mode) print. Rust's own `{:e}` rounds such ties away from zero
/// (`863703680224238.25` prints `...238.3` where the peers print `...238.2`).
fn digits_and_point(f: f64) -> (String, i32) {
    let mut buf = ryu::Buffer::new();
    // "1.2345e-7", "1e16", "0.001" or "123.0"
    let s = buf.format_finite(f);
    let (mantissa, exp) = s.split_once('e').unwrap_or((s, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let all = format!("{int}{frac}");
    let leading = all.len() - all.trim_start_matches('0').len();
    let digits = all.trim_start_matches('0').trim_end_matches('0');
    if digits.is_empty() {
        return ("0".to_owned(), 1);
    }
    (digits.to_owned(), int.len() as i32 + exp - leading as i32)
}

/// Formats a finite number like JavaScript's `Number.prototype.toString()`.
pub fn js_number(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "Infinity".into() } else { "-Infinity".into() };
    }
    if f == 0.0 {
        return "0".into();
    }
    let sign = if f < 0.0 { "-" } else { "" };
    let (digits, n) = digits_and_point(f.abs());
    let k = digits.len() as i32;
    let body = if k <= n && n <= 21 {
        format!("{digits}{}", "0".repeat((n - k) as usize))
    } else if 0 < n && n <= 21 {
        format!("{}.{}", &digits[..n as usize], &digits[n as usize..])
    } else if -6 < n && n <= 0 {
        format!("0.{}{digits}", "0".repeat((-n) as usize))
    } else {
        let e = n - 1;
        let esign = if e < 0 { '-' } else { '+' };
        if k == 1 {
            format!("{digits}e{esign}{}", e.abs())
        } else {
            format!("{}.{}e{esign}{}", &digits[..1], &digits[1..], e.abs())
        }
    };
    format!("{sign}{body}")
}

/// Formats a float like Python's `repr(float)` (what `json.dumps` writes).
pub fn python_float(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "Infinity".into() } else { "-Infinity".into() };
    }
    if f == 0.0 {
        return if f.is_sign_negative() { "-0.0".into() } else { "0.0".into() };
    }
    let sign = if f < 0.0 { "-" } else { "" };
    let (digits, n) = digits_and_point(f.abs());
    let k = digits.len() as i32;
    let body = if !(-3..=16).contains(&n) {
        let e = n - 1;
        let esign = if e < 0 { '-' } else { '+' };
        let mant = if k == 1 { digits.clone() } else { format!("{}.{}", &digits[..1], &digits[1..]) };
        format!("{mant}e{esign}{:02}", e.abs())
    } else if n <= 0 {
        format!("0.{}{digits}", "0".repeat((-n) as usize))
    } else if k <= n {
        format!("{digits}{}.0", "0".repeat((n - k) as usize))
    } else {
        format!("{}.{}", &digits[..n as usize], &digits[n as usize..])
    };
    format!("{sign}{body}")
}

/// Renders the value as JSON text the way `JSON.stringify` would (binary as a Node
/// `Buffer` object, timestamps as ISO-8601 strings).
impl std::fmt::Display for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&to_string(self))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::Map;

    #[test]
    fn numbers_format_like_javascript() {
        let cases = [
            (1.5, "1.5"),
            (2.0, "2"),
            (-0.25, "-0.25"),
            (1e21, "1e+21"),
            (1e20, "100000000000000000000"),
            (123_456_789_012_345_680_000.0, "123456789012345680000"),
            (1e-7, "1e-7"),
            (1.5e-7, "1.5e-7"),
            (0.000_001, "0.000001"),
            (0.1, "0.1"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
            (5e-324, "5e-324"),
        ];
        for (f, want) in cases {
            assert_eq!(js_number(f), want, "{f}");
        }
    }

    #[test]
    fn numbers_format_like_python() {
        let cases = [
            (1.5, "1.5"),
            (2.0, "2.0"),
            (1e16, "1e+16"),
            (1e15, "1000000000000000.0"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (1.5e-7, "1.5e-07"),
            (-0.0, "-0.0"),
            (123.456, "123.456"),
        ];
        for (f, want) in cases {
            assert_eq!(python_float(f), want, "{f}");
        }
    }

    #[test]
    fn strings_and_structure() {
        let mut m = Map::new();
        m.insert("a", "é\"\n\u{1}");
        m.insert("b", Value::Array(vec![Value::Null, true.into(), 3.into()]));
        m.insert("c", Value::Binary(bytes::Bytes::from_static(&[1, 2])));
        let v = Value::Map(m);
        assert_eq!(to_string(&v), r#"{"a":"é\"\n\u0001","b":[null,true,3],"c":{"type":"Buffer","data":[1,2]}}"#);
        assert_eq!(
            to_string_python(&v),
            r#"{"a": "\u00e9\"\n\u0001", "b": [null, true, 3], "c": {"type": "Buffer", "data": [1, 2]}}"#
        );
        assert_eq!(to_string_python(&Value::from("😀")), r#""\ud83d\ude00""#);
        assert_eq!(parse(to_string(&v).as_bytes()).expect("parses").get("b"), v.get("b"));
    }

    #[test]
    fn python_escapes_del_like_ensure_ascii() {
        // json.dumps("a\x7fb~") == '"a\\u007fb~"'; JSON.stringify leaves DEL as it is
        let v = Value::from("a\u{7f}b~");
        assert_eq!(to_string_python(&v), r#""a\u007fb~""#);
        assert_eq!(to_string(&v), "\"a\u{7f}b~\"");
    }

    #[test]
    fn float_ties_round_to_even_like_the_peers() {
        // 863703680224238.25 exactly: both "...238.2" and "...238.3" read back as it;
        // node's String(x) and python's repr(x) pick the even digit
        assert_eq!(js_number(863_703_680_224_238.2), "863703680224238.2");
        assert_eq!(python_float(863_703_680_224_238.2), "863703680224238.2");
        assert_eq!(js_number(-0.0), "0");
        assert_eq!(js_number(0.1 + 0.2), "0.30000000000000004");
        assert_eq!(python_float(1e22), "1e+22");
        assert_eq!(python_float(9_999_999_999_999_998.0), "9999999999999998.0");
    }
}
