//! The serializer for a value anywhere but directly inside a sequence, and
//! the compound serializers for maps and structs.

use serde::ser::{self, Serialize};

use crate::Error;
use crate::bulk::wire_of;
use crate::encoder::{Digests, Encoder, UNORDERED, primitive_methods, tag};
use crate::seq::Seq;

/// Writes one value into the encoder.
pub(crate) struct Ser<'a> {
    enc: &'a mut Encoder,
    /// Set inside the `unordered` marker: a sequence is written as a set.
    unordered: bool,
}

impl<'a> Ser<'a> {
    pub(crate) fn new(enc: &'a mut Encoder) -> Ser<'a> {
        Ser {
            enc,
            unordered: false,
        }
    }

    #[inline(always)]
    fn primitive<const N: usize>(self, tag: u8, bytes: [u8; N]) -> Result<(), Error> {
        self.enc.write_tagged(tag, bytes);
        Ok(())
    }
}

/// Writes one value: an ndarray array in bulk (feature `ndarray`), anything
/// else through its `Serialize`. Every place a value enters the encoder
/// goes through here, so an array is recognised wherever it is.
#[inline(always)]
pub(crate) fn write_value<T: Serialize + ?Sized>(
    enc: &mut Encoder,
    value: &T,
) -> Result<(), Error> {
    #[cfg(feature = "ndarray")]
    if crate::array::may_be_array::<T>()
        && let Some(result) = crate::array::write(enc, value)
    {
        return result;
    }
    value.serialize(Ser::new(enc))
}

/// Whether `I` is a set type whose serde impl hands over its elements in an
/// arbitrary order. serde's data model has no set kind (sets serialize as
/// sequences), so the standard set types are recognised by name.
pub(crate) fn is_set_type<I>() -> bool {
    let name = std::any::type_name::<I>();
    let name = name
        .trim_start_matches(['&', ' '])
        .trim_start_matches("mut ");
    let path = name.split('<').next().unwrap_or(name);
    let last = path.rsplit("::").next().unwrap_or(path);
    matches!(last, "HashSet" | "BTreeSet" | "IndexSet")
}

impl<'a> ser::Serializer for Ser<'a> {
    type Ok = ();
    type Error = Error;
    type SerializeSeq = Seq<'a>;
    type SerializeTuple = Seq<'a>;
    type SerializeTupleStruct = Seq<'a>;
    type SerializeTupleVariant = Seq<'a>;
    type SerializeMap = Map<'a>;
    type SerializeStruct = Fields<'a>;
    type SerializeStructVariant = Fields<'a>;

    fn is_human_readable(&self) -> bool {
        false
    }

    primitive_methods!();

    fn serialize_str(self, v: &str) -> Result<(), Error> {
        self.enc.write_tag(tag::STR);
        self.enc.write_len(v.len());
        self.enc.write(v.as_bytes());
        Ok(())
    }

    fn serialize_bytes(self, v: &[u8]) -> Result<(), Error> {
        self.enc.write_tag(tag::BYTES);
        self.enc.write_len(v.len());
        self.enc.write(v);
        Ok(())
    }

    fn serialize_none(self) -> Result<(), Error> {
        self.enc.write_tag(tag::NONE);
        Ok(())
    }

    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), Error> {
        self.enc.write_tag(tag::SOME);
        write_value(self.enc, value)
    }

    fn serialize_unit(self) -> Result<(), Error> {
        self.enc.write_tag(tag::UNIT);
        Ok(())
    }

    fn serialize_unit_struct(self, name: &'static str) -> Result<(), Error> {
        self.enc.write_tag(tag::UNIT_STRUCT);
        self.enc.write_name(name);
        Ok(())
    }

    fn serialize_unit_variant(
        self,
        name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<(), Error> {
        self.enc.write_tag(tag::UNIT_VARIANT);
        self.enc.write_name(name);
        self.enc.write_name(variant);
        Ok(())
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        if name == UNORDERED {
            return value.serialize(Ser {
                enc: self.enc,
                unordered: true,
            });
        }
        self.enc.write_tag(tag::NEWTYPE_STRUCT);
        self.enc.write_name(name);
        write_value(self.enc, value)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        _index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        self.enc.write_tag(tag::NEWTYPE_VARIANT);
        self.enc.write_name(name);
        self.enc.write_name(variant);
        write_value(self.enc, value)
    }

    fn serialize_seq(self, _len: Option<usize>) -> Result<Seq<'a>, Error> {
        Ok(if self.unordered {
            Seq::set(self.enc)
        } else {
            Seq::ordered(self.enc, tag::SEQ, None)
        })
    }

    fn serialize_tuple(self, _len: usize) -> Result<Seq<'a>, Error> {
        Ok(if self.unordered {
            Seq::set(self.enc)
        } else {
            Seq::ordered(self.enc, tag::TUPLE, None)
        })
    }

    fn serialize_tuple_struct(self, name: &'static str, _len: usize) -> Result<Seq<'a>, Error> {
        Ok(Seq::ordered(
            self.enc,
            tag::TUPLE_STRUCT,
            Some((name, None)),
        ))
    }

    fn serialize_tuple_variant(
        self,
        name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Seq<'a>, Error> {
        Ok(Seq::ordered(
            self.enc,
            tag::TUPLE_VARIANT,
            Some((name, Some(variant))),
        ))
    }

    fn serialize_map(self, len: Option<usize>) -> Result<Map<'a>, Error> {
        let digests = self.enc.digests(len.unwrap_or(0));
        Ok(Map {
            enc: self.enc,
            digests,
        })
    }

    fn serialize_struct(self, name: &'static str, _len: usize) -> Result<Fields<'a>, Error> {
        self.enc.write_tag(tag::STRUCT);
        self.enc.write_name(name);
        Ok(Fields { enc: self.enc })
    }

    fn serialize_struct_variant(
        self,
        name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Fields<'a>, Error> {
        self.enc.write_tag(tag::STRUCT_VARIANT);
        self.enc.write_name(name);
        self.enc.write_name(variant);
        Ok(Fields { enc: self.enc })
    }

    #[inline]
    fn collect_seq<I>(self, iter: I) -> Result<(), Error>
    where
        I: IntoIterator,
        I::Item: Serialize,
    {
        let unordered = self.unordered || is_set_type::<I>();
        if !unordered && let Some(kind) = wire_of::<I::Item>() {
            // A `Vec` or slice of primitives: filled a chunk at a time.
            let mut seq = Seq::ordered(self.enc, tag::SEQ, None);
            seq.push_wire(kind, iter.into_iter())?;
            return seq.finish();
        }
        let mut seq = if unordered {
            Seq::set(self.enc)
        } else {
            Seq::ordered(self.enc, tag::SEQ, None)
        };
        // This loop is where a large Vec is hashed: `seq` is a local here, so
        // its run cursor can live in a register.
        iter.into_iter()
            .try_for_each(|item| ser::SerializeSeq::serialize_element(&mut seq, &item))?;
        ser::SerializeSeq::end(seq)
    }
}

/// Maps of every kind: each entry is hashed on its own.
pub(crate) struct Map<'a> {
    enc: &'a mut Encoder,
    digests: Digests,
}

impl ser::SerializeMap for Map<'_> {
    type Ok = ();
    type Error = Error;

    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), Error> {
        self.enc.begin_entry();
        write_value(self.enc, key)
    }

    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        write_value(self.enc, value)?;
        let digest = self.enc.end_entry();
        self.digests.push(digest);
        Ok(())
    }

    fn end(self) -> Result<(), Error> {
        self.enc.write_unordered(tag::MAP, self.digests);
        Ok(())
    }
}

/// Structs and struct variants: `FIELD, name, value` per field, then `END`.
pub(crate) struct Fields<'a> {
    enc: &'a mut Encoder,
}

impl Fields<'_> {
    fn field<T: Serialize + ?Sized>(&mut self, key: &'static str, value: &T) -> Result<(), Error> {
        self.enc.write_tag(tag::FIELD);
        self.enc.write_name(key);
        write_value(self.enc, value)
    }

    /// A field whose value is a sequence that `elements` fills.
    #[cfg_attr(not(feature = "ndarray"), allow(dead_code))]
    pub(crate) fn field_with(
        &mut self,
        key: &'static str,
        elements: impl FnOnce(&mut Seq<'_>) -> Result<(), Error>,
    ) -> Result<(), Error> {
        self.enc.write_tag(tag::FIELD);
        self.enc.write_name(key);
        let mut seq = Seq::ordered(&mut *self.enc, tag::SEQ, None);
        elements(&mut seq)?;
        seq.finish()
    }
}

impl ser::SerializeStruct for Fields<'_> {
    type Ok = ();
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        self.field(key, value)
    }
    fn end(self) -> Result<(), Error> {
        self.enc.write_tag(tag::END);
        Ok(())
    }
}

impl ser::SerializeStructVariant for Fields<'_> {
    type Ok = ();
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        self.field(key, value)
    }
    fn end(self) -> Result<(), Error> {
        self.enc.write_tag(tag::END);
        Ok(())
    }
}
