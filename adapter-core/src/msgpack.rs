//! MessagePack with the rules of notepack.io 3, the dialect of `@socket.io/redis-adapter`
//! 8.x and `@socket.io/redis-emitter` 5.x.
//!
//! Encoding:
//! - strings as `fixstr`/`str8`/`str16`/`str32` (never `bin`);
//! - integers in the smallest form: non-negative as positive fixint, `uint8..uint64`,
//!   negative as negative fixint, `int8..int64`;
//! - floats always as `float64`;
//! - binary as `bin8/16/32`, maps in insertion order;
//! - timestamps as extension type -1 (`timestamp32/64/96`).
//!
//! Decoding accepts every MessagePack type plus notepack 2's legacy extensions
//! (`fixext1` type 0 = undefined, `fixext8` type 0 = Date in milliseconds, other type 0
//! = binary). The decoder never panics: lengths are checked against the input,
//! nesting is limited to [`MAX_DEPTH`] and trailing bytes are an error.

use bytes::Bytes;

use crate::error::DecodeError;
use crate::value::{Map, Timestamp, Value, ValueError};

/// Maximum nesting of arrays and maps accepted by the decoder.
pub use crate::value::MAX_DEPTH;

/// Encodes a value, appending to `out`.
pub fn encode(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Null => out.push(0xc0),
        Value::Bool(false) => out.push(0xc2),
        Value::Bool(true) => out.push(0xc3),
        Value::Int(i) => write_int(*i, out),
        Value::UInt(u) => write_uint(*u, out),
        Value::Float(f) => {
            out.push(0xcb);
            out.extend_from_slice(&f.to_be_bytes());
        }
        Value::Str(s) => write_str(s, out),
        Value::Binary(b) => write_bin(b, out),
        Value::Array(a) => {
            write_array_len(a.len(), out);
            for v in a {
                encode(v, out);
            }
        }
        Value::Map(m) => {
            write_map_len(m.len(), out);
            for (k, v) in m.iter() {
                write_str(k, out);
                encode(v, out);
            }
        }
        Value::Timestamp(t) => write_timestamp(*t, out),
        Value::Ext(ty, data) => write_ext(*ty, data, out),
    }
}

/// Encodes a value into a new buffer.
pub fn encode_to_vec(value: &Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    encode(value, &mut out);
    out
}

/// Writes a string.
pub fn write_str(s: &str, out: &mut Vec<u8>) {
    let len = s.len();
    if len < 32 {
        out.push(0xa0 | len as u8);
    } else if len < 0x100 {
        out.extend_from_slice(&[0xd9, len as u8]);
    } else if len < 0x1_0000 {
        out.push(0xda);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(0xdb);
        out.extend_from_slice(&(len as u32).to_be_bytes());
    }
    out.extend_from_slice(s.as_bytes());
}

fn write_bin(b: &[u8], out: &mut Vec<u8>) {
    let len = b.len();
    if len < 0x100 {
        out.extend_from_slice(&[0xc4, len as u8]);
    } else if len < 0x1_0000 {
        out.push(0xc5);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(0xc6);
        out.extend_from_slice(&(len as u32).to_be_bytes());
    }
    out.extend_from_slice(b);
}

/// Writes an unsigned integer in its smallest form.
pub fn write_uint(u: u64, out: &mut Vec<u8>) {
    if u < 0x80 {
        out.push(u as u8);
    } else if u < 0x100 {
        out.extend_from_slice(&[0xcc, u as u8]);
    } else if u < 0x1_0000 {
        out.push(0xcd);
        out.extend_from_slice(&(u as u16).to_be_bytes());
    } else if u < 0x1_0000_0000 {
        out.push(0xce);
        out.extend_from_slice(&(u as u32).to_be_bytes());
    } else {
        out.push(0xcf);
        out.extend_from_slice(&u.to_be_bytes());
    }
}

/// Writes a signed integer in its smallest form (non-negative values as unsigned).
pub fn write_int(i: i64, out: &mut Vec<u8>) {
    if i >= 0 {
        write_uint(i as u64, out);
    } else if i >= -32 {
        out.push(i as i8 as u8);
    } else if i >= -0x80 {
        out.extend_from_slice(&[0xd0, i as i8 as u8]);
    } else if i >= -0x8000 {
        out.push(0xd1);
        out.extend_from_slice(&(i as i16).to_be_bytes());
    } else if i >= -0x8000_0000 {
        out.push(0xd2);
        out.extend_from_slice(&(i as i32).to_be_bytes());
    } else {
        out.push(0xd3);
        out.extend_from_slice(&i.to_be_bytes());
    }
}

/// Writes an array header.
pub fn write_array_len(len: usize, out: &mut Vec<u8>) {
    if len < 16 {
        out.push(0x90 | len as u8);
    } else if len < 0x1_0000 {
        out.push(0xdc);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(0xdd);
        out.extend_from_slice(&(len as u32).to_be_bytes());
    }
}

/// Writes a map header.
pub fn write_map_len(len: usize, out: &mut Vec<u8>) {
    if len < 16 {
        out.push(0x80 | len as u8);
    } else if len < 0x1_0000 {
        out.push(0xde);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(0xdf);
        out.extend_from_slice(&(len as u32).to_be_bytes());
    }
}

fn write_timestamp(t: Timestamp, out: &mut Vec<u8>) {
    if t.seconds >= 0 && t.seconds < (1 << 34) {
        if t.nanos == 0 && t.seconds < (1 << 32) {
            out.extend_from_slice(&[0xd6, 0xff]);
            out.extend_from_slice(&(t.seconds as u32).to_be_bytes());
        } else {
            let v = (u64::from(t.nanos) << 34) | t.seconds as u64;
            out.extend_from_slice(&[0xd7, 0xff]);
            out.extend_from_slice(&v.to_be_bytes());
        }
    } else {
        out.extend_from_slice(&[0xc7, 12, 0xff]);
        out.extend_from_slice(&t.nanos.to_be_bytes());
        out.extend_from_slice(&t.seconds.to_be_bytes());
    }
}

fn write_ext(ty: i8, data: &[u8], out: &mut Vec<u8>) {
    let len = data.len();
    match len {
        1 => out.push(0xd4),
        2 => out.push(0xd5),
        4 => out.push(0xd6),
        8 => out.push(0xd7),
        16 => out.push(0xd8),
        _ if len < 0x100 => out.extend_from_slice(&[0xc7, len as u8]),
        _ if len < 0x1_0000 => {
            out.push(0xc8);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            out.push(0xc9);
            out.extend_from_slice(&(len as u32).to_be_bytes());
        }
    }
    out.push(ty as u8);
    out.extend_from_slice(data);
}

/// Decodes exactly one value that spans the whole input.
pub fn decode(input: &[u8]) -> Result<Value, DecodeError> {
    let mut d = Decoder { buf: input, pos: 0 };
    let v = d.value(0)?;
    if d.pos != input.len() {
        return Err(DecodeError::TrailingBytes(input.len() - d.pos));
    }
    Ok(v)
}

struct Decoder<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Decoder<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let end = self.pos.checked_add(n).ok_or(DecodeError::UnexpectedEof)?;
        let s = self.buf.get(self.pos..end).ok_or(DecodeError::UnexpectedEof)?;
        self.pos = end;
        Ok(s)
    }

    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }

    fn be<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let s = self.take(N)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    fn len8(&mut self) -> Result<usize, DecodeError> {
        Ok(usize::from(self.u8()?))
    }
    fn len16(&mut self) -> Result<usize, DecodeError> {
        Ok(usize::from(u16::from_be_bytes(self.be()?)))
    }
    fn len32(&mut self) -> Result<usize, DecodeError> {
        Ok(u32::from_be_bytes(self.be()?) as usize)
    }

    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn str(&mut self, len: usize) -> Result<Value, DecodeError> {
        let s = self.take(len)?;
        Ok(Value::Str(String::from_utf8_lossy(s).into_owned()))
    }

    fn bin(&mut self, len: usize) -> Result<Value, DecodeError> {
        Ok(Value::Binary(Bytes::copy_from_slice(self.take(len)?)))
    }

    fn array(&mut self, len: usize, depth: usize) -> Result<Value, DecodeError> {
        // every element takes at least one byte: never trust the header for allocation
        if len > self.remaining() {
            return Err(DecodeError::UnexpectedEof);
        }
        let mut out = Vec::with_capacity(len);
        for _ in 0..len {
            out.push(self.value(depth + 1)?);
        }
        Ok(Value::Array(out))
    }

    fn map(&mut self, len: usize, depth: usize) -> Result<Value, DecodeError> {
        if len.saturating_mul(2) > self.remaining() {
            return Err(DecodeError::UnexpectedEof);
        }
        let mut m = Map::with_capacity(len);
        for _ in 0..len {
            let key = match self.value(depth + 1)? {
                Value::Str(s) => s,
                Value::Int(i) => i.to_string(),
                Value::UInt(u) => u.to_string(),
                Value::Float(f) => crate::json::js_number(f),
                Value::Bool(b) => b.to_string(),
                Value::Null => "null".to_owned(),
                other => return Err(DecodeError::InvalidKey(other.kind())),
            };
            let v = self.value(depth + 1)?;
            m.push_raw(key, v);
        }
        Ok(Value::Map(m))
    }

    fn ext(&mut self, len: usize) -> Result<Value, DecodeError> {
        let ty = self.u8()? as i8;
        let data = self.take(len)?;
        Ok(match (ty, len) {
            (-1, 4) => {
                let s = u32::from_be_bytes([data[0], data[1], data[2], data[3]]);
                Value::Timestamp(Timestamp { seconds: i64::from(s), nanos: 0 })
            }
            (-1, 8) => {
                let mut a = [0u8; 8];
                a.copy_from_slice(data);
                let v = u64::from_be_bytes(a);
                let nanos = (v >> 34) as u32;
                if nanos >= 1_000_000_000 {
                    return Err(DecodeError::InvalidTimestamp);
                }
                Value::Timestamp(Timestamp { seconds: (v & ((1 << 34) - 1)) as i64, nanos })
            }
            (-1, 12) => {
                let nanos = u32::from_be_bytes([data[0], data[1], data[2], data[3]]);
                let mut s = [0u8; 8];
                s.copy_from_slice(&data[4..12]);
                if nanos >= 1_000_000_000 {
                    return Err(DecodeError::InvalidTimestamp);
                }
                Value::Timestamp(Timestamp { seconds: i64::from_be_bytes(s), nanos })
            }
            (-1, _) => return Err(DecodeError::InvalidTimestamp),
            // notepack 2.x: undefined
            (0, 1) => Value::Null,
            // notepack 2.x: Date as int64 milliseconds
            (0, 8) => {
                let mut a = [0u8; 8];
                a.copy_from_slice(data);
                Value::Timestamp(Timestamp::from_millis(i64::from_be_bytes(a)))
            }
            // notepack 2.x: ArrayBuffer
            (0, _) => Value::Binary(Bytes::copy_from_slice(data)),
            _ => Value::Ext(ty, Bytes::copy_from_slice(data)),
        })
    }

    fn value(&mut self, depth: usize) -> Result<Value, DecodeError> {
        if depth > MAX_DEPTH {
            return Err(DecodeError::TooDeep);
        }
        let b = self.u8()?;
        Ok(match b {
            0x00..=0x7f => Value::Int(i64::from(b)),
            0x80..=0x8f => return self.map(usize::from(b & 0x0f), depth),
            0x90..=0x9f => return self.array(usize::from(b & 0x0f), depth),
            0xa0..=0xbf => return self.str(usize::from(b & 0x1f)),
            0xc0 => Value::Null,
            0xc1 => return Err(DecodeError::InvalidMarker(b)),
            0xc2 => Value::Bool(false),
            0xc3 => Value::Bool(true),
            0xc4 => {
                let n = self.len8()?;
                return self.bin(n);
            }
            0xc5 => {
                let n = self.len16()?;
                return self.bin(n);
            }
            0xc6 => {
                let n = self.len32()?;
                return self.bin(n);
            }
            0xc7 => {
                let n = self.len8()?;
                return self.ext(n);
            }
            0xc8 => {
                let n = self.len16()?;
                return self.ext(n);
            }
            0xc9 => {
                let n = self.len32()?;
                return self.ext(n);
            }
            0xca => Value::Float(f64::from(f32::from_be_bytes(self.be()?))),
            0xcb => Value::Float(f64::from_be_bytes(self.be()?)),
            0xcc => Value::Int(i64::from(self.u8()?)),
            0xcd => Value::Int(i64::from(u16::from_be_bytes(self.be()?))),
            0xce => Value::Int(i64::from(u32::from_be_bytes(self.be()?))),
            0xcf => Value::from(u64::from_be_bytes(self.be()?)),
            0xd0 => Value::Int(i64::from(self.u8()? as i8)),
            0xd1 => Value::Int(i64::from(i16::from_be_bytes(self.be()?))),
            0xd2 => Value::Int(i64::from(i32::from_be_bytes(self.be()?))),
            0xd3 => Value::Int(i64::from_be_bytes(self.be()?)),
            0xd4 => return self.ext(1),
            0xd5 => return self.ext(2),
            0xd6 => return self.ext(4),
            0xd7 => return self.ext(8),
            0xd8 => return self.ext(16),
            0xd9 => {
                let n = self.len8()?;
                return self.str(n);
            }
            0xda => {
                let n = self.len16()?;
                return self.str(n);
            }
            0xdb => {
                let n = self.len32()?;
                return self.str(n);
            }
            0xdc => {
                let n = self.len16()?;
                return self.array(n, depth);
            }
            0xdd => {
                let n = self.len32()?;
                return self.array(n, depth);
            }
            0xde => {
                let n = self.len16()?;
                return self.map(n, depth);
            }
            0xdf => {
                let n = self.len32()?;
                return self.map(n, depth);
            }
            0xe0..=0xff => Value::Int(i64::from(b as i8)),
        })
    }
}

impl Value {
    /// Converts any serializable value into a [`Value`].
    ///
    /// Structs and maps become [`Value::Map`], tuples and sequences [`Value::Array`],
    /// `bytes::Bytes` and `serde_bytes` values [`Value::Binary`] (a plain `Vec<u8>`
    /// serializes as an array of numbers, as with serde_json).
    pub fn from_serialize<T: serde::Serialize + ?Sized>(value: &T) -> Result<Value, ValueError> {
        let bytes = rmp_serde::to_vec_named(value).map_err(|e| ValueError::Serialize(e.to_string()))?;
        decode(&bytes).map_err(|e| ValueError::Serialize(e.to_string()))
    }

    /// Converts this value into any deserializable type.
    pub fn deserialize_into<T: serde::de::DeserializeOwned>(&self) -> Result<T, ValueError> {
        let bytes = encode_to_vec(self);
        rmp_serde::from_slice(&bytes).map_err(|e| ValueError::Deserialize(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    #[test]
    fn integers_use_the_smallest_form() {
        let cases: &[(Value, &str)] = &[
            (Value::Int(0), "00"),
            (Value::Int(127), "7f"),
            (Value::Int(128), "cc80"),
            (Value::Int(256), "cd0100"),
            (Value::Int(65_536), "ce00010000"),
            (Value::Int(1_099_511_627_776), "cf0000010000000000"),
            (Value::Int(-1), "ff"),
            (Value::Int(-7), "f9"),
            (Value::Int(-33), "d0df"),
            (Value::Int(-129), "d1ff7f"),
            (Value::Int(-32_769), "d2ffff7fff"),
            (Value::Int(i64::MIN), "d38000000000000000"),
            (Value::UInt(u64::MAX), "cfffffffffffffffff"),
            (Value::Float(1.5), "cb3ff8000000000000"),
        ];
        for (v, want) in cases {
            assert_eq!(hex(&encode_to_vec(v)), *want, "{v:?}");
            assert_eq!(&decode(&encode_to_vec(v)).expect("decodes"), v);
        }
    }

    #[test]
    fn timestamps_match_notepack() {
        // new Date('2000-06-13T00:00:00.000Z') -> d6 ff 39 45 79 80
        let t = Value::Timestamp(Timestamp::from_millis(960_854_400_000));
        assert_eq!(hex(&encode_to_vec(&t)), "d6ff39457980");
        assert_eq!(decode(&encode_to_vec(&t)).expect("decodes"), t);
        for ms in [1_795_342_241_694_i64, -1, 0, 17_179_869_184_000] {
            let t = Value::Timestamp(Timestamp::from_millis(ms));
            assert_eq!(decode(&encode_to_vec(&t)).expect("decodes"), t, "{ms}");
        }
        // notepack 2 legacy: d7 00 <int64 ms>, d4 00 00 = undefined
        let mut legacy = vec![0xd7, 0x00];
        legacy.extend_from_slice(&960_854_400_000_i64.to_be_bytes());
        assert_eq!(decode(&legacy).expect("decodes"), Value::Timestamp(Timestamp::from_millis(960_854_400_000)));
        assert_eq!(decode(&[0xd4, 0x00, 0x00]).expect("decodes"), Value::Null);
    }

    #[test]
    fn rejects_bad_input_without_panicking() {
        assert!(matches!(decode(&[]), Err(DecodeError::UnexpectedEof)));
        assert!(matches!(decode(&[0xc1]), Err(DecodeError::InvalidMarker(0xc1))));
        assert!(matches!(decode(&[0xdd, 0xff, 0xff, 0xff, 0xff]), Err(DecodeError::UnexpectedEof)));
        assert!(matches!(decode(&[0xc0, 0xc0]), Err(DecodeError::TrailingBytes(1))));
        let deep = vec![0x91; 10_000];
        assert!(matches!(decode(&deep), Err(DecodeError::TooDeep)));
        // non-string keys become strings as in JavaScript
        let v = decode(&[0x81, 0x2a, 0xc3]).expect("decodes");
        assert_eq!(v.get("42"), Some(&Value::Bool(true)));
    }
}
