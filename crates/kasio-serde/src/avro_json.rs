//! Avro values to and from JSON by a schema, for tools that know no types (the CLI):
//! JSON lines in, Avro on the wire, JSON lines out.
//!
//! The JSON is what a person writes, not Avro's JSON encoding: a union takes the plain
//! value (the first branch it fits) or Avro's `{"type": value}` form; bytes and fixed are
//! strings of code points 0 to 255 (Avro's JSON form) or arrays of numbers; a decimal is a
//! string or a number (`"12.50"`), and comes back as a string.

use apache_avro::{
    Decimal, Schema as AvroSchema,
    schema::{InnerDecimalSchema, Name, ResolvedSchema},
    types::Value,
};
use serde_json::Value as Json;
use std::collections::HashMap;

/// How deep a value may nest before it is refused (a recursive schema would otherwise
/// follow a hostile JSON document as deep as it goes).
const MAX_DEPTH: usize = 128;

/// The named types of a schema, for following references.
struct Names<'s>(HashMap<Name, &'s AvroSchema>);

impl<'s> Names<'s> {
    fn of(schemata: Vec<&'s AvroSchema>) -> Result<Self, String> {
        let resolved = ResolvedSchema::try_from(schemata).map_err(|e| e.to_string())?;
        Ok(Self(
            resolved
                .get_names()
                .iter()
                .map(|(n, s)| (n.clone(), *s))
                .collect(),
        ))
    }

    fn deref<'a>(&'a self, schema: &'a AvroSchema) -> Result<&'a AvroSchema, String> {
        match schema {
            AvroSchema::Ref { name } => self
                .0
                .get(name)
                .copied()
                .ok_or_else(|| format!("no type named {}", name.fullname(None))),
            other => Ok(other),
        }
    }
}

/// The Avro value `json` stands for under `schema`.
///
/// ```
/// use kasio_serde::{apache_avro::{Schema, types::Value}, avro_from_json};
/// let schema = Schema::parse_str(r#"{"type":"record","name":"R","fields":[
///     {"name":"id","type":"long"},{"name":"note","type":["null","string"]}]}"#)?;
/// let value = avro_from_json(&serde_json::json!({"id": 7, "note": "hi"}), &schema)?;
/// assert_eq!(value, Value::Record(vec![
///     ("id".into(), Value::Long(7)),
///     ("note".into(), Value::Union(1, Box::new(Value::String("hi".into())))),
/// ]));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
/// What does not fit, and where (`at .lines[2].sku: ...`).
pub fn avro_from_json(json: &Json, schema: &AvroSchema) -> Result<Value, String> {
    let names = Names::of(vec![schema])?;
    to_avro(json, schema, &names, &mut String::new(), 0)
}

/// `value`, written with `schema`, as JSON; see the module's text.
///
/// # Errors
/// A value that does not fit the schema, or a float that JSON cannot hold (NaN).
pub fn avro_to_json(value: &Value, schema: &AvroSchema) -> Result<Json, String> {
    let names = Names::of(vec![schema])?;
    to_json(value, schema, &names, 0)
}

/// As [`avro_from_json`], for a schema parsed with the named types it imports.
pub(crate) fn from_json_in(json: &Json, schema: &crate::avro::Parsed) -> Result<Value, String> {
    let names = Names::of(schema.all())?;
    to_avro(json, &schema.main, &names, &mut String::new(), 0)
}

/// As [`avro_to_json`], for a schema parsed with the named types it imports.
pub(crate) fn to_json_in(value: &Value, schema: &crate::avro::Parsed) -> Result<Json, String> {
    let names = Names::of(schema.all())?;
    to_json(value, &schema.main, &names, 0)
}

fn to_avro(
    json: &Json,
    schema: &AvroSchema,
    names: &Names<'_>,
    at: &mut String,
    depth: usize,
) -> Result<Value, String> {
    if depth > MAX_DEPTH {
        return Err(format!("at {at}: nested deeper than {MAX_DEPTH}"));
    }
    let schema = names.deref(schema)?;
    let int = |at: &str| json.as_i64().ok_or_else(|| misfit(at, json, "an integer"));
    Ok(match schema {
        AvroSchema::Null if json.is_null() => Value::Null,
        AvroSchema::Null => return Err(misfit(at, json, "null")),
        AvroSchema::Boolean => Value::Boolean(
            json.as_bool()
                .ok_or_else(|| misfit(at, json, "a boolean"))?,
        ),
        AvroSchema::Int => {
            Value::Int(i32::try_from(int(at)?).map_err(|_| misfit(at, json, "a 32-bit integer"))?)
        }
        AvroSchema::Long => Value::Long(int(at)?),
        #[expect(clippy::cast_possible_truncation, reason = "Avro's float is 32 bits")]
        AvroSchema::Float => {
            Value::Float(json.as_f64().ok_or_else(|| misfit(at, json, "a number"))? as f32)
        }
        AvroSchema::Double => {
            Value::Double(json.as_f64().ok_or_else(|| misfit(at, json, "a number"))?)
        }
        AvroSchema::String | AvroSchema::Uuid(_) => Value::String(
            json.as_str()
                .ok_or_else(|| misfit(at, json, "a string"))?
                .to_owned(),
        ),
        AvroSchema::Bytes => Value::Bytes(bytes(json).ok_or_else(|| misfit(at, json, "bytes"))?),
        AvroSchema::Fixed(f) => {
            let b = bytes(json).filter(|b| b.len() == f.size);
            Value::Fixed(
                f.size,
                b.ok_or_else(|| misfit(at, json, &format!("{} bytes", f.size)))?,
            )
        }
        AvroSchema::Enum(e) => {
            let symbol = json.as_str().ok_or_else(|| misfit(at, json, "a symbol"))?;
            let index = e
                .symbols
                .iter()
                .position(|s| s == symbol)
                .ok_or_else(|| misfit(at, json, &format!("one of {:?}", e.symbols)))?;
            Value::Enum(u32::try_from(index).unwrap_or(u32::MAX), symbol.to_owned())
        }
        AvroSchema::Date => {
            Value::Date(i32::try_from(int(at)?).map_err(|_| misfit(at, json, "a day"))?)
        }
        AvroSchema::TimeMillis => {
            Value::TimeMillis(i32::try_from(int(at)?).map_err(|_| misfit(at, json, "a time"))?)
        }
        AvroSchema::TimeMicros => Value::TimeMicros(int(at)?),
        AvroSchema::TimestampMillis => Value::TimestampMillis(int(at)?),
        AvroSchema::TimestampMicros => Value::TimestampMicros(int(at)?),
        AvroSchema::TimestampNanos => Value::TimestampNanos(int(at)?),
        AvroSchema::LocalTimestampMillis => Value::LocalTimestampMillis(int(at)?),
        AvroSchema::LocalTimestampMicros => Value::LocalTimestampMicros(int(at)?),
        AvroSchema::LocalTimestampNanos => Value::LocalTimestampNanos(int(at)?),
        AvroSchema::Decimal(d) => {
            let text = match json {
                Json::String(s) => s.clone(),
                Json::Number(n) => n.to_string(),
                _ => return Err(misfit(at, json, "a decimal")),
            };
            let unscaled = unscaled(&text, d.scale).ok_or_else(|| {
                misfit(
                    at,
                    json,
                    &format!("a decimal with at most {} places", d.scale),
                )
            })?;
            let mut b = twos_complement(unscaled);
            if let InnerDecimalSchema::Fixed(f) = &d.inner {
                if b.len() > f.size {
                    return Err(misfit(
                        at,
                        json,
                        &format!("a decimal that fits {} bytes", f.size),
                    ));
                }
                let fill = if unscaled < 0 { 0xff } else { 0 };
                let mut wide = vec![fill; f.size - b.len()];
                wide.append(&mut b);
                b = wide;
            }
            Value::Decimal(Decimal::from(b))
        }
        AvroSchema::Array(a) => {
            let items = json
                .as_array()
                .ok_or_else(|| misfit(at, json, "an array"))?;
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                let len = at.len();
                at.push_str(&format!("[{i}]"));
                out.push(to_avro(item, &a.items, names, at, depth + 1)?);
                at.truncate(len);
            }
            Value::Array(out)
        }
        AvroSchema::Map(m) => {
            let entries = json
                .as_object()
                .ok_or_else(|| misfit(at, json, "an object"))?;
            let mut out = HashMap::with_capacity(entries.len());
            for (k, v) in entries {
                let len = at.len();
                at.push_str(&format!("[{k:?}]"));
                out.insert(k.clone(), to_avro(v, &m.types, names, at, depth + 1)?);
                at.truncate(len);
            }
            Value::Map(out)
        }
        AvroSchema::Record(r) => {
            let fields = json
                .as_object()
                .ok_or_else(|| misfit(at, json, "an object"))?;
            let mut out = Vec::with_capacity(r.fields.len());
            for field in &r.fields {
                let len = at.len();
                at.push('.');
                at.push_str(&field.name);
                let value = match (fields.get(&field.name), &field.default) {
                    (Some(v), _) | (None, Some(v)) => v,
                    (None, None) => return Err(format!("at {at}: missing, and no default")),
                };
                out.push((
                    field.name.clone(),
                    to_avro(value, &field.schema, names, at, depth + 1)?,
                ));
                at.truncate(len);
            }
            Value::Record(out)
        }
        AvroSchema::Union(u) => {
            let branches = u.variants();
            // Avro's JSON form names the branch: {"string": "x"}.
            if let Some((key, inner)) = json
                .as_object()
                .filter(|o| o.len() == 1)
                .and_then(|o| o.iter().next())
                && let Some(i) = branches.iter().position(|b| branch_name(b) == *key)
            {
                let v = to_avro(inner, &branches[i], names, at, depth + 1)?;
                return Ok(Value::Union(
                    u32::try_from(i).unwrap_or(u32::MAX),
                    Box::new(v),
                ));
            }
            for (i, branch) in branches.iter().enumerate() {
                if let Ok(v) = to_avro(json, branch, names, at, depth + 1) {
                    return Ok(Value::Union(
                        u32::try_from(i).unwrap_or(u32::MAX),
                        Box::new(v),
                    ));
                }
            }
            return Err(misfit(at, json, "a value of one of the union's branches"));
        }
        other => {
            return Err(misfit(
                at,
                json,
                &format!("a value of a supported type ({other:?} is not)"),
            ));
        }
    })
}

/// What `json` at `at` should have been.
fn misfit(at: &str, json: &Json, what: &str) -> String {
    let at = if at.is_empty() { "." } else { at };
    format!("at {at}: {what}, not {json}")
}

/// The name Avro's JSON encoding gives a union branch.
fn branch_name(schema: &AvroSchema) -> String {
    match schema {
        AvroSchema::Record(r) => r.name.fullname(None),
        AvroSchema::Enum(e) => e.name.fullname(None),
        AvroSchema::Fixed(f) => f.name.fullname(None),
        AvroSchema::Ref { name } => name.fullname(None),
        AvroSchema::Null => "null".into(),
        AvroSchema::Boolean => "boolean".into(),
        AvroSchema::Int => "int".into(),
        AvroSchema::Long => "long".into(),
        AvroSchema::Float => "float".into(),
        AvroSchema::Double => "double".into(),
        AvroSchema::Bytes => "bytes".into(),
        AvroSchema::String => "string".into(),
        AvroSchema::Array(_) => "array".into(),
        AvroSchema::Map(_) => "map".into(),
        _ => String::new(),
    }
}

/// A string of code points 0 to 255, or an array of bytes.
fn bytes(json: &Json) -> Option<Vec<u8>> {
    match json {
        Json::String(s) => s.chars().map(|c| u8::try_from(u32::from(c)).ok()).collect(),
        Json::Array(items) => items
            .iter()
            .map(|b| b.as_u64().and_then(|b| u8::try_from(b).ok()))
            .collect(),
        _ => None,
    }
}

/// "12.5" at scale 2 is 1250; more places than the scale, or more than 38 digits, is not
/// a decimal here.
fn unscaled(text: &str, scale: usize) -> Option<i128> {
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (whole, places) = digits.split_once('.').unwrap_or((digits, ""));
    if places.len() > scale
        || whole.is_empty() && places.is_empty()
        || !whole
            .chars()
            .chain(places.chars())
            .all(|c| c.is_ascii_digit())
        || whole.len() + scale > 38
    {
        return None;
    }
    let padded = format!("{whole}{places:0<scale$}");
    let n: i128 = if padded.is_empty() {
        0
    } else {
        padded.parse().ok()?
    };
    Some(if negative { -n } else { n })
}

/// The shortest big-endian two's complement of `n`, as Java's `BigInteger` writes it.
fn twos_complement(n: i128) -> Vec<u8> {
    let bytes = n.to_be_bytes();
    let skip = bytes
        .windows(2)
        .take_while(|w| (w[0] == 0 && w[1] & 0x80 == 0) || (w[0] == 0xff && w[1] & 0x80 != 0))
        .count();
    bytes[skip..].to_vec()
}

fn to_json(
    value: &Value,
    schema: &AvroSchema,
    names: &Names<'_>,
    depth: usize,
) -> Result<Json, String> {
    if depth > MAX_DEPTH {
        return Err(format!("nested deeper than {MAX_DEPTH}"));
    }
    let schema = names.deref(schema)?;
    let number = |f: f64| {
        serde_json::Number::from_f64(f)
            .map(Json::Number)
            .ok_or_else(|| format!("{f} has no JSON form"))
    };
    Ok(match (value, schema) {
        (Value::Union(i, inner), AvroSchema::Union(u)) => {
            let branch = usize::try_from(*i)
                .ok()
                .and_then(|i| u.variants().get(i))
                .ok_or_else(|| format!("union branch {i} does not exist"))?;
            to_json(inner, branch, names, depth + 1)?
        }
        (Value::Record(fields), AvroSchema::Record(r)) => {
            let mut out = serde_json::Map::with_capacity(fields.len());
            for ((name, v), field) in fields.iter().zip(&r.fields) {
                out.insert(name.clone(), to_json(v, &field.schema, names, depth + 1)?);
            }
            Json::Object(out)
        }
        (Value::Array(items), AvroSchema::Array(a)) => Json::Array(
            items
                .iter()
                .map(|v| to_json(v, &a.items, names, depth + 1))
                .collect::<Result<_, _>>()?,
        ),
        (Value::Map(entries), AvroSchema::Map(m)) => {
            // Sorted, so the same map always prints the same way.
            let mut keys: Vec<_> = entries.keys().collect();
            keys.sort();
            let mut out = serde_json::Map::with_capacity(entries.len());
            for k in keys {
                out.insert(k.clone(), to_json(&entries[k], &m.types, names, depth + 1)?);
            }
            Json::Object(out)
        }
        (Value::Decimal(d), AvroSchema::Decimal(s)) => {
            let b = Vec::<u8>::try_from(d).map_err(|e| e.to_string())?;
            if b.len() > 16 {
                return Err("a decimal wider than 128 bits".into());
            }
            let fill = if b.first().is_some_and(|b| b & 0x80 != 0) {
                0xff
            } else {
                0
            };
            let mut wide = [fill; 16];
            wide[16 - b.len()..].copy_from_slice(&b);
            Json::String(decimal_text(i128::from_be_bytes(wide), s.scale))
        }
        (Value::Bytes(b) | Value::Fixed(_, b), _) => {
            Json::String(b.iter().map(|&b| char::from(b)).collect())
        }
        (Value::Float(f), _) => number(f64::from(*f))?,
        (Value::Double(f), _) => number(*f)?,
        (other, _) => Json::try_from(other.clone()).map_err(|e| e.to_string())?,
    })
}

fn decimal_text(unscaled: i128, scale: usize) -> String {
    let sign = if unscaled < 0 { "-" } else { "" };
    let digits = unscaled.unsigned_abs().to_string();
    if scale == 0 {
        return format!("{sign}{digits}");
    }
    let digits = format!("{digits:0>width$}", width = scale + 1);
    let (whole, places) = digits.split_at(digits.len() - scale);
    format!("{sign}{whole}.{places}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ORDER: &str = r#"{"type":"record","name":"Order","namespace":"shop","fields":[
        {"name":"id","type":"long"},
        {"name":"note","type":["null","string"],"default":null},
        {"name":"tags","type":{"type":"map","values":"int"}},
        {"name":"price","type":{"type":"bytes","logicalType":"decimal","precision":9,"scale":2}},
        {"name":"kind","type":{"type":"enum","name":"Kind","symbols":["A","B"]}},
        {"name":"weight","type":"float"},
        {"name":"next","type":["null","Order"],"default":null}
    ]}"#;

    #[test]
    fn round_trips_through_avro() {
        let schema = AvroSchema::parse_str(ORDER).unwrap();
        let json = json!({"id": 7, "note": "hi", "tags": {"a": 1, "b": -2}, "price": "-12.50",
            "kind": "B", "weight": 1.5, "next": {"id": 8, "note": null, "tags": {},
            "price": "0.05", "kind": "A", "weight": 2, "next": null}});
        let value = avro_from_json(&json, &schema).unwrap();
        assert!(value.validate(&schema));
        assert_eq!(
            avro_to_json(&value, &schema).unwrap(),
            json!({"id": 7, "note": "hi",
            "tags": {"a": 1, "b": -2}, "price": "-12.50", "kind": "B", "weight": 1.5,
            "next": {"id": 8, "note": null, "tags": {}, "price": "0.05", "kind": "A",
            "weight": 2.0, "next": null}})
        );
        // Avro's own JSON form of a union branch, and a default.
        let tagged = json!({"id": 1, "note": {"string": "x"}, "tags": {}, "price": 3,
            "kind": "A", "weight": 0});
        let value = avro_from_json(&tagged, &schema).unwrap();
        assert_eq!(avro_to_json(&value, &schema).unwrap()["note"], "x");
        assert_eq!(avro_to_json(&value, &schema).unwrap()["price"], "3.00");
    }

    #[test]
    fn what_does_not_fit_is_named() {
        let schema = AvroSchema::parse_str(ORDER).unwrap();
        let err = |j: Json| avro_from_json(&j, &schema).unwrap_err();
        assert!(err(json!({"id": "x"})).starts_with("at .id: an integer"));
        assert!(
            err(json!({"id": 1, "tags": {}, "price": "1.234", "kind": "A", "weight": 1}))
                .starts_with("at .price: a decimal with at most 2 places")
        );
        assert!(
            err(json!({"id": 1, "tags": {"k": 1.5}})).starts_with("at .tags[\"k\"]: an integer")
        );
        assert_eq!(err(json!({"id": 1})), "at .tags: missing, and no default");
        // A chain deeper than the cap.
        let mut deep = json!(null);
        for _ in 0..200 {
            deep =
                json!({"id": 1, "tags": {}, "price": "0", "kind": "A", "weight": 0, "next": deep});
        }
        assert!(err(deep).starts_with("at .next.next"));
    }

    #[test]
    fn decimals() {
        assert_eq!(unscaled("12.5", 2), Some(1250));
        assert_eq!(unscaled("-0.01", 2), Some(-1));
        assert_eq!(unscaled("7", 0), Some(7));
        assert_eq!(unscaled("1.234", 2), None);
        assert_eq!(unscaled("1e3", 2), None);
        assert_eq!(unscaled("", 2), None);
        assert_eq!(twos_complement(-1), [0xff]);
        assert_eq!(twos_complement(128), [0, 128]);
        assert_eq!(decimal_text(-1, 2), "-0.01");
        assert_eq!(decimal_text(1250, 2), "12.50");
    }
}
