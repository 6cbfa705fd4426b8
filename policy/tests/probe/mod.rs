//! Every field of oci-spec's types, found by deserializing them from a probe that offers each struct all the
//! fields it asks for (serde hands a struct's field names to its deserializer). What the probe finds is the
//! field list the gate's classification (`strict_policy::fields`) must cover: a field oci-spec gains in an
//! upgrade fails this test, not a node.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, DeserializeSeed, IntoDeserializer, Visitor};

/// A leaf's JSON kind, for building a spec that sets it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Leaf {
    String,
    Integer,
    Bool,
    /// An enum's variant, written as its name.
    Variant(&'static str),
    /// An object or array below which nothing was probed (an empty struct).
    Empty,
}

/// Field path (`process.capabilities.bounding[]`, `annotations.*`) → the leaf kind, or None for objects
/// and arrays that hold fields of their own.
pub type Fields = BTreeMap<String, Option<Leaf>>;

#[derive(Debug)]
pub struct ProbeError(String);

impl fmt::Display for ProbeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ProbeError {}

impl de::Error for ProbeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        ProbeError(msg.to_string())
    }
}

/// Every field path of `T`.
pub fn fields_of<T: de::DeserializeOwned>() -> Result<Fields, ProbeError> {
    let found = RefCell::new(Fields::new());
    T::deserialize(Probe {
        path: String::new(),
        found: &found,
        depth: 0,
    })?;
    Ok(found.into_inner())
}

struct Probe<'a> {
    path: String,
    found: &'a RefCell<Fields>,
    depth: usize,
}

impl<'a> Probe<'a> {
    fn child(&self, segment: &str) -> Probe<'a> {
        let path = if self.path.is_empty() || segment.starts_with('[') {
            format!("{}{segment}", self.path)
        } else {
            format!("{}.{segment}", self.path)
        };
        Probe {
            path,
            found: self.found,
            depth: self.depth + 1,
        }
    }

    fn record(&self, leaf: Option<Leaf>) {
        if !self.path.is_empty() {
            let mut found = self.found.borrow_mut();
            let entry = found.entry(self.path.clone()).or_insert(leaf);
            if leaf.is_none() {
                *entry = None;
            }
        }
    }

    /// A string the field's own deserializer accepts: oci-spec validates two kinds of string while
    /// reading (capabilities by name, CPU lists for exec affinity).
    fn string(&self) -> &'static str {
        if self.path.ends_with(".initial") || self.path.ends_with(".final") {
            "0"
        } else {
            "CAP_CHOWN"
        }
    }
}

macro_rules! unsigned {
    ($($method:ident),*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ProbeError> {
            self.record(Some(Leaf::Integer));
            visitor.visit_u64(0)
        }
    )*};
}

macro_rules! signed {
    ($($method:ident),*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ProbeError> {
            self.record(Some(Leaf::Integer));
            visitor.visit_i64(0)
        }
    )*};
}

impl<'de> de::Deserializer<'de> for Probe<'_> {
    type Error = ProbeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ProbeError> {
        self.deserialize_str(visitor)
    }

    unsigned!(
        deserialize_u8,
        deserialize_u16,
        deserialize_u32,
        deserialize_u64
    );
    signed!(
        deserialize_i8,
        deserialize_i16,
        deserialize_i32,
        deserialize_i64
    );

    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ProbeError> {
        self.record(Some(Leaf::Integer));
        visitor.visit_f64(0.0)
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ProbeError> {
        self.deserialize_f32(visitor)
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ProbeError> {
        self.record(Some(Leaf::Bool));
        visitor.visit_bool(false)
    }

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ProbeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ProbeError> {
        self.record(Some(Leaf::String));
        visitor.visit_str(self.string())
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ProbeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ProbeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ProbeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ProbeError> {
        visitor.visit_some(self)
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ProbeError> {
        self.record(Some(Leaf::Empty));
        visitor.visit_unit()
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, ProbeError> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, ProbeError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ProbeError> {
        self.record(None);
        visitor.visit_seq(One {
            probe: Some(self.child("[]")),
        })
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, ProbeError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, ProbeError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ProbeError> {
        self.record(None);
        visitor.visit_map(Entries {
            keys: &["key"],
            next: 0,
            probe: self,
            any_key: true,
        })
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, ProbeError> {
        if self.depth > 32 {
            return Err(ProbeError(format!("{}: too deep", self.path)));
        }
        self.record(if fields.is_empty() {
            Some(Leaf::Empty)
        } else {
            None
        });
        visitor.visit_map(Entries {
            keys: fields,
            next: 0,
            probe: self,
            any_key: false,
        })
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, ProbeError> {
        let variant = variants
            .first()
            .ok_or_else(|| ProbeError(format!("{}: an enum without variants", self.path)))?;
        self.record(Some(Leaf::Variant(variant)));
        visitor.visit_enum(variant.into_deserializer())
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ProbeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ProbeError> {
        visitor.visit_unit()
    }
}

/// A sequence of one element.
struct One<'a> {
    probe: Option<Probe<'a>>,
}

impl<'de> de::SeqAccess<'de> for One<'_> {
    type Error = ProbeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, ProbeError> {
        match self.probe.take() {
            Some(probe) => seed.deserialize(probe).map(Some),
            None => Ok(None),
        }
    }
}

/// A struct's fields, each once, or a map's one entry (`*`).
struct Entries<'a> {
    keys: &'static [&'static str],
    next: usize,
    probe: Probe<'a>,
    any_key: bool,
}

impl<'de> de::MapAccess<'de> for Entries<'_> {
    type Error = ProbeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, ProbeError> {
        let Some(key) = self.keys.get(self.next) else {
            return Ok(None);
        };
        let key = if self.any_key {
            // A map's key: the probe, so that a key of an enum or validated type gets a valid value.
            seed.deserialize(Probe {
                path: String::new(),
                found: &RefCell::new(Fields::new()),
                depth: self.probe.depth + 1,
            })?
        } else {
            seed.deserialize(de::value::StrDeserializer::<ProbeError>::new(key))?
        };
        Ok(Some(key))
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, ProbeError> {
        let key = self.keys[self.next];
        self.next += 1;
        let child = self.probe.child(if self.any_key { "*" } else { key });
        seed.deserialize(child)
    }
}
