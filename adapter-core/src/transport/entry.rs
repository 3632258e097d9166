//! The frame of a stream entry between a dialect and a transport that stores entries
//! (Redis Streams): the entry's field-value pairs, in order, as one byte string.
//!
//! A dialect whose broker keeps messages as entries of named fields (`XADD key * f1 v1
//! f2 v2`) encodes them with [`encode`]; the transport turns the frame into the
//! command's arguments with [`decode`], and frames what it reads back the same way. The
//! transport never looks inside a value. Frame: for each field then each value, a 4-byte
//! big-endian length and the bytes.

use bytes::Bytes;

/// Frames `pairs` (field, value) in order.
pub fn encode<'a>(pairs: impl IntoIterator<Item = (&'a [u8], &'a [u8])>) -> Bytes {
    let mut out = Vec::with_capacity(128);
    for (field, value) in pairs {
        for part in [field, value] {
            // an entry's fields are small; a part over 4 GiB cannot reach Redis either
            let len = u32::try_from(part.len()).unwrap_or(u32::MAX);
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(&part[..len as usize]);
        }
    }
    Bytes::from(out)
}

/// The (field, value) pairs of a frame, or `None` when it is not one (truncated, or a
/// field without its value).
pub fn decode(frame: &[u8]) -> Option<Vec<(&[u8], &[u8])>> {
    let mut parts = Vec::new();
    let mut rest = frame;
    while !rest.is_empty() {
        let (len, tail) = rest.split_first_chunk::<4>()?;
        let len = usize::try_from(u32::from_be_bytes(*len)).ok()?;
        if tail.len() < len {
            return None;
        }
        let (part, tail) = tail.split_at(len);
        parts.push(part);
        rest = tail;
    }
    if parts.len() % 2 != 0 {
        return None;
    }
    Some(parts.chunks(2).map(|p| (p[0], p[1])).collect())
}

#[cfg(test)]
mod tests {
    use super::{decode, encode};

    #[test]
    fn frames_round_trip_and_bad_frames_are_refused() {
        let pairs: Vec<(&[u8], &[u8])> = vec![(b"uid", b"abc"), (b"nsp", b"/"), (b"data", b"")];
        let frame = encode(pairs.clone());
        assert_eq!(decode(&frame), Some(pairs));
        assert_eq!(decode(&[]), Some(vec![]));
        assert_eq!(decode(&frame[..frame.len() - 1]), None, "truncated");
        assert_eq!(decode(&encode([(&b"a"[..], &b"b"[..])])[..9]), None, "a field without its value");
        assert_eq!(decode(&[0, 0, 0, 9, 1]), None, "length beyond the end");
    }
}
