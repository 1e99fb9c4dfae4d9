//! JSON shapes shared by the endpoints: `number[] | number[][]` arrays (parsed straight
//! into one row-major buffer), params objects, reductions, and their OpenAPI schemas.
//! With each endpoint's request and response types in its submodule, the only place
//! that knows JSON names.

pub mod gradient;
pub mod landscape;
pub mod loss;
pub mod train;

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{SerializeSeq, Serializer};
use serde::{Deserialize, Serialize};
use utoipa::openapi::schema::{
    AdditionalProperties, ArrayBuilder, ObjectBuilder, OneOfBuilder, Schema, Type,
};
use utoipa::openapi::{RefOr, schema::SchemaType};
use utoipa::{PartialSchema, ToSchema};

use crate::compute::{Array, LossValue, ParamValue, Params, Reduction};

/// The elements of a JSON array too long for one core: `items` printed by `write` in
/// chunks of `chunk`, the chunks on every core (rayon), returned in order. Join them with
/// [`extend_joined`]; the bytes are those of printing the items one after another.
pub(crate) fn par_array_parts<T: Sync>(
    items: &[T],
    chunk: usize,
    bytes_per_item: usize,
    write: impl Fn(&T, &mut Vec<u8>) + Sync,
) -> Vec<Vec<u8>> {
    use rayon::prelude::*;
    items
        .par_chunks(chunk.max(1))
        .map(|chunk| {
            let mut out = Vec::with_capacity(bytes_per_item * chunk.len());
            for (j, item) in chunk.iter().enumerate() {
                if j > 0 {
                    out.push(b',');
                }
                write(item, &mut out);
            }
            out
        })
        .collect()
}

/// The bytes [`extend_joined`] appends for `parts` (for one allocation of the answer).
pub(crate) fn joined_len(parts: &[Vec<u8>]) -> usize {
    parts.iter().map(|p| p.len() + 1).sum()
}

/// Appends the parts of [`par_array_parts`] to `out`, comma-separated.
pub(crate) fn extend_joined(out: &mut Vec<u8>, parts: &[Vec<u8>]) {
    for (j, part) in parts.iter().enumerate() {
        if j > 0 {
            out.push(b',');
        }
        out.extend_from_slice(part);
    }
}

fn number_schema() -> ObjectBuilder {
    ObjectBuilder::new().schema_type(SchemaType::Type(Type::Number))
}

fn flat_schema() -> ArrayBuilder {
    ArrayBuilder::new()
        .items(number_schema())
        .min_items(Some(1))
}

fn matrix_schema() -> ArrayBuilder {
    ArrayBuilder::new().items(flat_schema()).min_items(Some(1))
}

// ---------------------------------------------------------------------------------
// number[] | number[][]

/// `number[]` or `number[][]` (rows = samples, all rows the same non-zero length),
/// parsed straight into one row-major f64 buffer.
#[derive(Clone, Debug, PartialEq)]
pub struct NumArray(pub Array);

impl PartialSchema for NumArray {
    fn schema() -> RefOr<Schema> {
        OneOfBuilder::new()
            .item(flat_schema())
            .item(matrix_schema())
            .description(Some(
                "A flat array [n] or a matrix [[..], ..] (rows = samples, all rows the same non-zero length).",
            ))
            .into()
    }
}

impl ToSchema for NumArray {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("NumberArray")
    }
}

enum First {
    Number,
    Row(usize),
}

/// The first element decides: a number (flat) or a row (matrix).
struct FirstSeed<'a>(&'a mut Vec<f64>);

impl<'de> DeserializeSeed<'de> for FirstSeed<'_> {
    type Value = First;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<First, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for FirstSeed<'_> {
    type Value = First;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a number or an array of numbers")
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<First, E> {
        self.0.push(v);
        Ok(First::Number)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<First, E> {
        self.visit_f64(v as f64)
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<First, E> {
        self.visit_f64(v as f64)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<First, A::Error> {
        RowSeed(self.0).visit_seq(seq).map(First::Row)
    }
}

/// One row, appended to the shared buffer; yields its length.
struct RowSeed<'a>(&'a mut Vec<f64>);

impl<'de> DeserializeSeed<'de> for RowSeed<'_> {
    type Value = usize;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<usize, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for RowSeed<'_> {
    type Value = usize;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of numbers (a row)")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<usize, A::Error> {
        let mut n = 0;
        while let Some(x) = seq.next_element::<f64>()? {
            self.0.push(x);
            n += 1;
        }
        Ok(n)
    }
}

struct ArrayVisitor;

impl<'de> Visitor<'de> for ArrayVisitor {
    type Value = NumArray;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of numbers or an array of rows of numbers")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<NumArray, A::Error> {
        // no size hint from the parsers: room for a small array up front, doubling after
        let mut data = Vec::with_capacity(seq.size_hint().unwrap_or(16));
        let first = match seq.next_element_seed(FirstSeed(&mut data))? {
            None => return Ok(NumArray(Array::flat(data))),
            Some(f) => f,
        };
        match first {
            First::Number => {
                while let Some(x) = seq.next_element::<f64>()? {
                    data.push(x);
                }
                Ok(NumArray(Array::flat(data)))
            }
            First::Row(cols) => {
                if cols == 0 {
                    return Err(de::Error::custom("rows must not be empty"));
                }
                let mut rows = 1;
                while let Some(n) = seq.next_element_seed(RowSeed(&mut data))? {
                    if n != cols {
                        return Err(de::Error::custom(format!(
                            "row {rows} has {n} numbers; every row must have {cols} (the length of row 0)"
                        )));
                    }
                    rows += 1;
                }
                Array::matrix(data, rows, cols)
                    .map(NumArray)
                    .ok_or_else(|| de::Error::custom("inconsistent matrix"))
            }
        }
    }
}

impl<'de> Deserialize<'de> for NumArray {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_seq(ArrayVisitor)
    }
}

/// Serialises an [`Array`] as `number[]` or `number[][]`.
pub struct ArrayOut<'a>(pub &'a Array);

impl Serialize for ArrayOut<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.0.is_matrix() {
            let mut seq = s.serialize_seq(Some(self.0.rows()))?;
            for row in self.0.row_iter() {
                seq.serialize_element(row)?;
            }
            seq.end()
        } else {
            self.0.data().serialize(s)
        }
    }
}

impl PartialSchema for ArrayOut<'_> {
    fn schema() -> RefOr<Schema> {
        NumArray::schema()
    }
}

impl ToSchema for ArrayOut<'_> {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("NumberArray")
    }
}

// ---------------------------------------------------------------------------------
// loss: number | number[] | number[][]

/// The loss: a number (`mean`, `sum`) or the terms (`none`).
pub struct LossOut<'a>(pub &'a LossValue);

impl Serialize for LossOut<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            LossValue::Scalar(x) => s.serialize_f64(*x),
            LossValue::Terms(a) => ArrayOut(a).serialize(s),
        }
    }
}

impl PartialSchema for LossOut<'_> {
    fn schema() -> RefOr<Schema> {
        OneOfBuilder::new()
            .item(number_schema())
            .item(ArrayBuilder::new().items(number_schema()))
            .item(ArrayBuilder::new().items(ArrayBuilder::new().items(number_schema())))
            .description(Some(
                "The reduced loss (mean, sum), or the terms (none): elementwise kinds shaped like predictions, per-row kinds a flat array of length m.",
            ))
            .into()
    }
}

impl ToSchema for LossOut<'_> {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("LossValue")
    }
}

// ---------------------------------------------------------------------------------
// reduction

/// `mean` (default) | `sum` | `none`.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ReductionDto {
    /// Σ s·l / Σ s (the default).
    #[default]
    Mean,
    /// Σ s·l.
    Sum,
    /// The terms s·l, unreduced.
    None,
}

impl From<ReductionDto> for Reduction {
    fn from(r: ReductionDto) -> Self {
        match r {
            ReductionDto::Mean => Reduction::Mean,
            ReductionDto::Sum => Reduction::Sum,
            ReductionDto::None => Reduction::None,
        }
    }
}

// ---------------------------------------------------------------------------------
// params: {"name": number | bool | number[]}

/// A params object: each value a number, a boolean or an array of numbers. Which names
/// a kind takes, and their ranges, is the compute core's to check (422 naming
/// `/params/name`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ParamsDto(pub Params);

impl PartialSchema for ParamsDto {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .additional_properties(Some(AdditionalProperties::RefOr(RefOr::T(Schema::OneOf(
                OneOfBuilder::new()
                    .item(number_schema())
                    .item(ObjectBuilder::new().schema_type(SchemaType::Type(Type::Boolean)))
                    .item(ArrayBuilder::new().items(number_schema()))
                    .build(),
            )))))
            .description(Some(
                "Parameters of the kind (see GET /losses for names, defaults and ranges); unknown names are a 422.",
            ))
            .into()
    }
}

impl ToSchema for ParamsDto {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("Params")
    }
}

struct ParamValueDto(ParamValue);

impl<'de> Deserialize<'de> for ParamValueDto {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ParamValueDto;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a number, a boolean or an array of numbers")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
                Ok(ParamValueDto(ParamValue::Bool(v)))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                Ok(ParamValueDto(ParamValue::Number(v)))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                self.visit_f64(v as f64)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                self.visit_f64(v as f64)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut v = Vec::new();
                while let Some(x) = seq.next_element::<f64>()? {
                    v.push(x);
                }
                Ok(ParamValueDto(ParamValue::Numbers(v)))
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for ParamsDto {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ParamsDto;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object of parameters")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ParamsDto, A::Error> {
                let mut entries: Vec<(String, ParamValue)> = Vec::new();
                while let Some(name) = map.next_key::<String>()? {
                    let ParamValueDto(v) = map.next_value()?;
                    if entries.iter().any(|(n, _)| *n == name) {
                        return Err(de::Error::custom(format!("duplicate parameter {name:?}")));
                    }
                    entries.push((name, v));
                }
                Ok(ParamsDto(Params::new(entries)))
            }
        }
        d.deserialize_map(V)
    }
}

/// A number, or an array (`init.weights`, `init.bias`).
#[derive(Clone, Debug, PartialEq)]
pub enum NumberOrArray {
    /// A number (broadcast).
    Number(f64),
    /// An array (flat or matrix).
    Array(Array),
}

impl<'de> Deserialize<'de> for NumberOrArray {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = NumberOrArray;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a number, an array of numbers or an array of rows")
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                Ok(NumberOrArray::Number(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                self.visit_f64(v as f64)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                self.visit_f64(v as f64)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
                ArrayVisitor
                    .visit_seq(seq)
                    .map(|a| NumberOrArray::Array(a.0))
            }
        }
        d.deserialize_any(V)
    }
}

impl PartialSchema for NumberOrArray {
    fn schema() -> RefOr<Schema> {
        OneOfBuilder::new()
            .item(number_schema())
            .item(flat_schema())
            .item(matrix_schema())
            .description(Some("A number (broadcast), a flat array or a matrix."))
            .into()
    }
}

impl ToSchema for NumberOrArray {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("NumberOrArray")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flat_and_matrix_arrays_parse_into_one_buffer() {
        let a: NumArray = serde_json::from_str("[1, 2.5, -3e-2]").unwrap();
        assert_eq!(a.0, Array::flat(vec![1.0, 2.5, -0.03]));
        let m: NumArray = serde_json::from_str("[[1, 2], [3, 4], [5, 6]]").unwrap();
        assert_eq!(
            m.0,
            Array::matrix(vec![1., 2., 3., 4., 5., 6.], 3, 2).unwrap()
        );
    }

    #[test]
    fn ragged_rows_and_mixed_elements_are_rejected() {
        assert!(serde_json::from_str::<NumArray>("[[1, 2], [3]]").is_err());
        assert!(serde_json::from_str::<NumArray>("[[1, 2], 3]").is_err());
        assert!(serde_json::from_str::<NumArray>("[1, [2]]").is_err());
        assert!(serde_json::from_str::<NumArray>("[[]]").is_err());
    }

    #[test]
    fn arrays_serialise_in_their_shape() {
        let m = Array::matrix(vec![1., 2., 3., 4.], 2, 2).unwrap();
        assert_eq!(
            serde_json::to_string(&ArrayOut(&m)).unwrap(),
            "[[1.0,2.0],[3.0,4.0]]"
        );
        let f = Array::flat(vec![0.1]);
        assert_eq!(serde_json::to_string(&ArrayOut(&f)).unwrap(), "[0.1]");
    }
}

// ---------------------------------------------------------------------------------
// names checked against the compute core's lists

/// A loss kind in a body (`"loss": "bce"`): unknown → 422 at the field listing the kinds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct KindDto(pub crate::compute::LossKind);

impl<'de> Deserialize<'de> for KindDto {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        crate::compute::LossKind::parse(&s)
            .map(KindDto)
            .ok_or_else(|| {
                de::Error::custom(format!(
                    "unknown loss kind {s:?}; valid: {}",
                    crate::compute::LossKind::names()
                ))
            })
    }
}

impl PartialSchema for KindDto {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(SchemaType::Type(Type::String))
            .enum_values(Some(crate::compute::LossKind::ALL.map(|k| k.name())))
            .description(Some("A loss kind (GET /losses)."))
            .into()
    }
}

impl ToSchema for KindDto {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("LossKind")
    }
}

/// An activation name; the compute core checks it (422 at `/activation` listing them).
#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct ActivationName(pub String);

impl PartialSchema for ActivationName {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(SchemaType::Type(Type::String))
            .enum_values(Some(
                crate::compute::activation::ACTIVATIONS
                    .iter()
                    .map(|a| a.name),
            ))
            .description(Some("An activation (default identity)."))
            .into()
    }
}

impl ToSchema for ActivationName {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("Activation")
    }
}

// ---------------------------------------------------------------------------------
// objects only

/// Deserialises `T` from a JSON object only. serde's derived structs also accept an
/// array of their fields in order (`"init": [1, 0]`), which the schema does not allow;
/// every request object goes through here so such bodies are 422s.
pub fn map_only<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<T, D::Error> {
    struct V<T>(std::marker::PhantomData<T>);
    impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
        type Value = T;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("an object")
        }
        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
            T::deserialize(de::value::MapAccessDeserializer::new(map))
        }
    }
    d.deserialize_map(V(std::marker::PhantomData))
}

/// [`map_only`] for an optional object: `null` (or absent, with `#[serde(default)]`) is
/// `None`; an array is refused like any other non-object, where serde's derived structs
/// would read it positionally.
pub fn map_or_null<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<T>, D::Error> {
    struct V<T>(std::marker::PhantomData<T>);
    impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
        type Value = Option<T>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("an object or null")
        }
        fn visit_none<E: de::Error>(self) -> Result<Option<T>, E> {
            Ok(None)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Option<T>, E> {
            Ok(None)
        }
        fn visit_some<D2: Deserializer<'de>>(self, d: D2) -> Result<Option<T>, D2::Error> {
            map_only(d).map(Some)
        }
    }
    d.deserialize_option(V(std::marker::PhantomData))
}

/// A request body: `T` from a JSON object only (see [`map_only`]).
pub struct MapOnly<T>(pub T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for MapOnly<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        map_only(d).map(MapOnly)
    }
}
