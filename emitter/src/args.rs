//! Event arguments from any `Serialize` value: a tuple is several arguments, `()` none,
//! anything else exactly one.

use serde::Serialize;
use serde::ser::{self, Impossible};
use socketio_adapter_core::{Value, ValueError};

/// Converts `args` into the argument list of an event.
pub(crate) fn to_args<A: Serialize + ?Sized>(args: &A) -> Result<Vec<Value>, ValueError> {
    let shape = match args.serialize(Probe) {
        Err(Stop(shape)) => shape,
        Ok(never) => match never {},
    };
    match shape {
        Shape::Unit => Ok(Vec::new()),
        Shape::Tuple => match Value::from_serialize(args)? {
            Value::Array(items) => Ok(items),
            other => Ok(vec![other]),
        },
        Shape::Other => Ok(vec![Value::from_serialize(args)?]),
    }
}

#[derive(Debug, Clone, Copy)]
enum Shape {
    Unit,
    Tuple,
    Other,
}

/// Stops at the outermost value and reports its shape.
#[derive(Debug)]
struct Stop(Shape);

impl std::fmt::Display for Stop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

impl std::error::Error for Stop {}

impl ser::Error for Stop {
    fn custom<T: std::fmt::Display>(_: T) -> Self {
        Stop(Shape::Other)
    }
}

enum Never {}

struct Probe;

macro_rules! other {
    ($($name:ident($($t:ty),*);)*) => {
        $(fn $name(self, $(_: $t),*) -> Result<Never, Stop> { Err(Stop(Shape::Other)) })*
    };
}

impl ser::Serializer for Probe {
    type Ok = Never;
    type Error = Stop;
    type SerializeSeq = Impossible<Never, Stop>;
    type SerializeTuple = Impossible<Never, Stop>;
    type SerializeTupleStruct = Impossible<Never, Stop>;
    type SerializeTupleVariant = Impossible<Never, Stop>;
    type SerializeMap = Impossible<Never, Stop>;
    type SerializeStruct = Impossible<Never, Stop>;
    type SerializeStructVariant = Impossible<Never, Stop>;

    other! {
        serialize_bool(bool); serialize_i8(i8); serialize_i16(i16); serialize_i32(i32); serialize_i64(i64);
        serialize_u8(u8); serialize_u16(u16); serialize_u32(u32); serialize_u64(u64);
        serialize_f32(f32); serialize_f64(f64); serialize_char(char); serialize_str(&str);
        serialize_bytes(&[u8]); serialize_none(); serialize_unit_struct(&'static str);
        serialize_unit_variant(&'static str, u32, &'static str);
    }

    fn serialize_unit(self) -> Result<Never, Stop> {
        Err(Stop(Shape::Unit))
    }
    fn serialize_some<T: ?Sized + Serialize>(self, _: &T) -> Result<Never, Stop> {
        Err(Stop(Shape::Other))
    }
    fn serialize_newtype_struct<T: ?Sized + Serialize>(self, _: &'static str, _: &T) -> Result<Never, Stop> {
        Err(Stop(Shape::Other))
    }
    fn serialize_newtype_variant<T: ?Sized + Serialize>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<Never, Stop> {
        Err(Stop(Shape::Other))
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, Stop> {
        Err(Stop(Shape::Other))
    }
    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, Stop> {
        Err(Stop(Shape::Tuple))
    }
    fn serialize_tuple_struct(self, _: &'static str, _: usize) -> Result<Self::SerializeTupleStruct, Stop> {
        Err(Stop(Shape::Other))
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, Stop> {
        Err(Stop(Shape::Other))
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, Stop> {
        Err(Stop(Shape::Other))
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Self::SerializeStruct, Stop> {
        Err(Stop(Shape::Other))
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, Stop> {
        Err(Stop(Shape::Other))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn tuples_spread_everything_else_is_one_argument() {
        assert_eq!(to_args(&()).unwrap(), Vec::<Value>::new());
        assert_eq!(to_args(&(1, "two")).unwrap(), vec![Value::from(1i64), Value::from("two")]);
        assert_eq!(to_args(&"one").unwrap(), vec![Value::from("one")]);
        // a Vec is one argument (an array), as in Node.js `emit("ev", [1, 2])`
        assert_eq!(to_args(&vec![1, 2]).unwrap(), vec![Value::Array(vec![Value::from(1i64), Value::from(2i64)])]);
        assert_eq!(to_args(&(vec![1],)).unwrap(), vec![Value::Array(vec![Value::from(1i64)])]);
        let bin = to_args(&(bytes::Bytes::from_static(b"\x01\x02"),)).unwrap();
        assert_eq!(bin, vec![Value::Binary(bytes::Bytes::from_static(b"\x01\x02"))]);
        assert_eq!(to_args(&Option::<i32>::None).unwrap(), vec![Value::Null]);
        // a value list built at run time spreads too
        let list = vec![Value::from(1i64), Value::from("x")];
        assert_eq!(to_args(&crate::Args(list.clone())).unwrap(), list);
    }
}
