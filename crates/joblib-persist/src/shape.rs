//! Capturing the shape of an ndarray array as it is serialized, so that
//! `inspect` can report it for the block holding the array's data.

use serde::ser::{self, Impossible, Serialize};

use crate::error::Inner;

type Result<T> = std::result::Result<T, Inner>;

/// Collects the unsigned integers of an ndarray `dim` (a tuple or sequence
/// of `usize`); anything else makes it give up.
pub(crate) struct ShapeCapture<'d> {
    pub(crate) dims: &'d mut Vec<u64>,
}

impl<'d> ser::Serializer for ShapeCapture<'d> {
    type Ok = ();
    type Error = Inner;
    type SerializeSeq = Self;
    type SerializeTuple = Self;
    type SerializeTupleStruct = Impossible<(), Inner>;
    type SerializeTupleVariant = Impossible<(), Inner>;
    type SerializeMap = Impossible<(), Inner>;
    type SerializeStruct = Impossible<(), Inner>;
    type SerializeStructVariant = Impossible<(), Inner>;

    fn serialize_u64(self, v: u64) -> Result<()> {
        self.dims.push(v);
        Ok(())
    }
    fn serialize_u32(self, v: u32) -> Result<()> {
        self.serialize_u64(u64::from(v))
    }
    fn serialize_seq(self, _len: Option<usize>) -> Result<Self> {
        Ok(self)
    }
    fn serialize_tuple(self, _len: usize) -> Result<Self> {
        Ok(self)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(self, _: &'static str, v: &T) -> Result<()> {
        v.serialize(self)
    }
    fn serialize_bool(self, _: bool) -> Result<()> {
        Err(no_shape())
    }
    fn serialize_i8(self, _: i8) -> Result<()> {
        Err(no_shape())
    }
    fn serialize_i16(self, _: i16) -> Result<()> {
        Err(no_shape())
    }
    fn serialize_i32(self, _: i32) -> Result<()> {
        Err(no_shape())
    }
    fn serialize_i64(self, _: i64) -> Result<()> {
        Err(no_shape())
    }
    fn serialize_u8(self, _: u8) -> Result<()> {
        Err(no_shape())
    }
    fn serialize_u16(self, _: u16) -> Result<()> {
        Err(no_shape())
    }
    fn serialize_f32(self, _: f32) -> Result<()> {
        Err(no_shape())
    }
    fn serialize_f64(self, _: f64) -> Result<()> {
        Err(no_shape())
    }
    fn serialize_char(self, _: char) -> Result<()> {
        Err(no_shape())
    }
    fn serialize_str(self, _: &str) -> Result<()> {
        Err(no_shape())
    }
    fn serialize_bytes(self, _: &[u8]) -> Result<()> {
        Err(no_shape())
    }
    fn serialize_none(self) -> Result<()> {
        Err(no_shape())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, _: &T) -> Result<()> {
        Err(no_shape())
    }
    fn serialize_unit(self) -> Result<()> {
        Err(no_shape())
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<()> {
        Err(no_shape())
    }
    fn serialize_unit_variant(self, _: &'static str, _: u32, _: &'static str) -> Result<()> {
        Err(no_shape())
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<()> {
        Err(no_shape())
    }
    fn serialize_tuple_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleStruct> {
        Err(no_shape())
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant> {
        Err(no_shape())
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap> {
        Err(no_shape())
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Self::SerializeStruct> {
        Err(no_shape())
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant> {
        Err(no_shape())
    }
}

impl<'d> ser::SerializeSeq for ShapeCapture<'d> {
    type Ok = ();
    type Error = Inner;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<()> {
        v.serialize(ShapeCapture { dims: self.dims })
    }
    fn end(self) -> Result<()> {
        Ok(())
    }
}

impl<'d> ser::SerializeTuple for ShapeCapture<'d> {
    type Ok = ();
    type Error = Inner;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<()> {
        v.serialize(ShapeCapture { dims: self.dims })
    }
    fn end(self) -> Result<()> {
        Ok(())
    }
}

fn no_shape() -> Inner {
    Inner::Message("not a shape".into())
}
