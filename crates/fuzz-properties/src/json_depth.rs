//! Arbitrary bytes through the JSON shape scan (`palisade_validate::json`):
//! never a panic (10 000 levels included: the scan does not recurse); on
//! every input it agrees with `serde_json` — a document `serde_json` reads
//! whose shape is within the limits is accepted, and an accepted document is
//! one `serde_json` reads, within the limits, to the same value; a document
//! over a limit is refused as a limit (422), never as syntax.
//!
//! The first byte picks the limits (depth 1..=16, keys and elements
//! 1..=32), so every limit is reached by short inputs; the rest is the
//! document.

use std::fmt;

use palisade_validate::json::{self, JsonErrorKind, JsonLimits};
use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

/// The shape of a document as `serde_json` reads it: nesting depth, the
/// most keys in one object (duplicates counted, as they are sent) and the
/// most elements in one array.
#[derive(Clone, Copy, Default)]
struct Shape {
    depth: usize,
    keys: usize,
    len: usize,
}

impl Shape {
    fn merge(&mut self, child: Shape) {
        self.depth = self.depth.max(child.depth);
        self.keys = self.keys.max(child.keys);
        self.len = self.len.max(child.len);
    }

    fn within(&self, limits: &JsonLimits) -> bool {
        self.depth <= limits.max_depth()
            && self.keys <= limits.max_object_keys()
            && self.len <= limits.max_array_len()
    }
}

impl<'de> Deserialize<'de> for Shape {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Shape, D::Error> {
        deserializer.deserialize_any(ShapeVisitor)
    }
}

struct ShapeVisitor;

impl<'de> Visitor<'de> for ShapeVisitor {
    type Value = Shape;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<Shape, E> {
        Ok(Shape::default())
    }
    fn visit_i64<E>(self, _: i64) -> Result<Shape, E> {
        Ok(Shape::default())
    }
    fn visit_u64<E>(self, _: u64) -> Result<Shape, E> {
        Ok(Shape::default())
    }
    fn visit_f64<E>(self, _: f64) -> Result<Shape, E> {
        Ok(Shape::default())
    }
    fn visit_str<E>(self, _: &str) -> Result<Shape, E> {
        Ok(Shape::default())
    }
    fn visit_unit<E>(self) -> Result<Shape, E> {
        Ok(Shape::default())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Shape, A::Error> {
        let mut shape = Shape::default();
        let mut len = 0;
        while let Some(child) = seq.next_element::<Shape>()? {
            len += 1;
            shape.merge(child);
        }
        shape.depth += 1;
        shape.len = shape.len.max(len);
        Ok(shape)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Shape, A::Error> {
        let mut shape = Shape::default();
        let mut keys = 0;
        while let Some((_, child)) = map.next_entry::<String, Shape>()? {
            keys += 1;
            shape.merge(child);
        }
        shape.depth += 1;
        shape.keys = shape.keys.max(keys);
        Ok(shape)
    }
}

/// The property: panics when it does not hold.
pub fn run(data: &[u8]) {
    let Some((&selector, document)) = data.split_first() else {
        return;
    };
    let limits = JsonLimits::builder()
        .max_depth(1 + usize::from(selector % 16))
        .max_object_keys(1 + usize::from(selector / 16 % 8) * 4)
        .max_array_len(1 + usize::from(selector / 128) * 31)
        .build()
        .expect("limits within the hard maxima");
    let scanned = json::scan(document, &limits);
    let value = serde_json::from_slice::<serde_json::Value>(document);
    let shape = serde_json::from_slice::<Shape>(document);
    match (&scanned, &value, &shape) {
        (Ok(()), Ok(value), Ok(shape)) => {
            assert!(shape.within(&limits), "accepted over the limits");
            let parsed: serde_json::Value =
                json::from_slice(document, &limits).expect("scanned, so it deserialises");
            assert_eq!(&parsed, value);
        }
        (Ok(()), Err(error), _) | (Ok(()), _, Err(error)) => {
            // serde_json's float reader is not correctly rounded at the top
            // of the f64 range; the scan's (std's) is. Nothing else may differ.
            assert!(
                error.to_string().contains("number out of range"),
                "scan accepted what serde_json refuses: {error}"
            );
        }
        (Err(refused), Ok(_), Ok(shape)) => {
            if shape.within(&limits) {
                panic!("refused a well-formed document within the limits: {refused}");
            }
            assert_ne!(
                refused.kind(),
                JsonErrorKind::Syntax,
                "over a limit is not syntax"
            );
        }
        // Both refuse (serde_json's own recursion limit included).
        (Err(_), _, _) => {}
    }
}
