//! Avro in Confluent's framing: the writer's schema id, then the Avro datum.
//!
//! [`AvroSerializer`] writes any serde type (or an [`apache_avro::types::Value`]) with a
//! schema registered under an id; [`AvroDeserializer`] reads with the writer's schema,
//! found by the id in front of each record through a [`SchemaSource`] (a registry
//! client's cache), and optionally resolves it to a reader schema of its own, so a
//! consumer on a newer schema reads older records.

use crate::{
    Context, DeserializeError, Deserializer, SchemaSource, SerializeError, Serializer,
    source::PerId,
    wire::{self, SchemaRef},
};
use apache_avro::{
    Schema as AvroSchema, from_value, reader::datum::GenericDatumReader, schema::Name,
    types::Value, writer::datum::GenericDatumWriter,
};
use kasio_registry::{Schema, SchemaType};
use serde::{Serialize, de::DeserializeOwned};
use std::{marker::PhantomData, sync::Arc};

/// An Avro schema, parsed with the named types it imports.
pub(crate) struct Parsed {
    pub(crate) main: AvroSchema,
    pub(crate) named: Vec<AvroSchema>,
}

impl Parsed {
    /// Every schema, imported ones first: the order Avro's name resolution reads them in.
    pub(crate) fn all(&self) -> Vec<&AvroSchema> {
        self.named.iter().chain([&self.main]).collect()
    }
}

// A writer or reader resolves its schema's names when built, which allocates: built once
// beside the schema it borrows, rather than once per record.
self_cell::self_cell!(
    /// An Avro schema and a datum writer built for it.
    struct Writer {
        owner: Parsed,
        #[not_covariant]
        dependent: GenericDatumWriter,
    }
);

self_cell::self_cell!(
    /// A writer's Avro schema and a datum reader built for it.
    pub(crate) struct Reader {
        owner: Parsed,
        #[not_covariant]
        dependent: GenericDatumReader,
    }
);

fn writer(schema: Parsed) -> Result<Writer, String> {
    Writer::try_new(schema, |p| {
        GenericDatumWriter::builder(&p.main)
            .schemata(p.all())?
            .build()
    })
    .map_err(|e| e.to_string())
}

fn reader(schema: Parsed) -> Result<Reader, String> {
    Reader::try_new(schema, |p| {
        GenericDatumReader::builder(&p.main)
            .writer_schemata(p.all())?
            .build()
    })
    .map_err(|e| e.to_string())
}

/// Parses an Avro schema's text, with the texts of the schemas it imports (Avro names
/// them by full name, so the names the references give are not needed).
fn parse<'a>(
    schema: &Schema,
    imports: impl IntoIterator<Item = &'a Schema>,
) -> Result<Parsed, String> {
    let avro = |s: &Schema| {
        if s.schema_type == SchemaType::Avro {
            Ok(())
        } else {
            Err(format!("a {} schema, not Avro", s.schema_type.name()))
        }
    };
    avro(schema)?;
    let mut texts = Vec::new();
    for imported in imports {
        avro(imported).map_err(|e| format!("an import is {}", &e[2..]))?;
        texts.push(imported.text.as_str());
    }
    if texts.is_empty() {
        if !schema.references.is_empty() {
            return Err(
                "the schema has references: give the schemas it imports (importing)".into(),
            );
        }
        let main = AvroSchema::parse_str(&schema.text).map_err(|e| e.to_string())?;
        return Ok(Parsed {
            main,
            named: Vec::new(),
        });
    }
    let (main, named) =
        AvroSchema::parse_str_with_list(&schema.text, texts).map_err(|e| e.to_string())?;
    Ok(Parsed {
        main,
        named: dependencies_first(named),
    })
}

/// The named types a schema defines and the names it refers to.
fn names(schema: &AvroSchema, defined: &mut Vec<Name>, used: &mut Vec<Name>) {
    match schema {
        AvroSchema::Ref { name } => used.push(name.clone()),
        AvroSchema::Array(a) => names(&a.items, defined, used),
        AvroSchema::Map(m) => names(&m.types, defined, used),
        AvroSchema::Union(u) => {
            for s in u.variants() {
                names(s, defined, used);
            }
        }
        AvroSchema::Record(r) => {
            defined.push(r.name.clone());
            for f in &r.fields {
                names(&f.schema, defined, used);
            }
        }
        other => defined.extend(other.name().cloned()),
    }
}

/// `schemata` ordered so each comes after those defining the names it refers to (Avro's
/// name resolution reads them in order); a cycle keeps the given order.
fn dependencies_first(mut schemata: Vec<AvroSchema>) -> Vec<AvroSchema> {
    let mut ordered = Vec::with_capacity(schemata.len());
    let mut known: Vec<Name> = Vec::new();
    while !schemata.is_empty() {
        let ready = schemata.iter().position(|s| {
            let (mut defined, mut used) = (Vec::new(), Vec::new());
            names(s, &mut defined, &mut used);
            used.iter()
                .all(|n| defined.contains(n) || known.contains(n))
        });
        let next = schemata.remove(ready.unwrap_or(0));
        let mut used = Vec::new();
        names(&next, &mut known, &mut used);
        ordered.push(next);
    }
    ordered
}

/// Writes values with the Avro schema registered under an id, framed for the registry.
///
/// ```
/// use kasio_registry::Schema;
/// use kasio_serde::{AvroSerializer, Context, Serializer};
/// #[derive(serde::Serialize)]
/// struct Order { id: i64, note: Option<String> }
/// let schema = Schema::avro(r#"{"type":"record","name":"Order","fields":[
///     {"name":"id","type":"long"},{"name":"note","type":["null","string"]}]}"#);
/// let codec = AvroSerializer::<Order>::new(42, &schema)?;
/// let mut out = Vec::new();
/// codec.serialize(&Order { id: 1, note: None }, &Context::value("orders"), &mut out)?;
/// assert_eq!(out, [0, 0, 0, 0, 42, 2, 0]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct AvroSerializer<T: ?Sized> {
    id: u32,
    writer: Writer,
    kind: PhantomData<fn(&T)>,
}

impl<T: ?Sized> std::fmt::Debug for AvroSerializer<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AvroSerializer")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl<T: ?Sized> AvroSerializer<T> {
    /// A serializer writing with `schema`, registered under `id`.
    ///
    /// # Errors
    /// [`SerializeError::Schema`] if `schema` is not an Avro schema that parses.
    pub fn new(id: u32, schema: &Schema) -> Result<Self, SerializeError> {
        Self::importing(id, schema, &[])
    }

    /// A serializer writing with `schema`, registered under `id`, which imports the
    /// named types of `imports` (what its references name, with those names).
    ///
    /// ```
    /// use kasio_registry::{Schema, SchemaReference};
    /// use kasio_serde::{AvroValueSerializer, Context, Serializer, apache_avro::types::Value};
    /// let money = Schema::avro(r#"{"type":"record","name":"Money","namespace":"shop","fields":[
    ///     {"name":"cents","type":"long"}]}"#);
    /// let order = Schema::avro(r#"{"type":"record","name":"Order","namespace":"shop","fields":[
    ///     {"name":"total","type":"Money"}]}"#)
    ///     .reference(SchemaReference { name: "shop.Money".into(), subject: "money".into(), version: 1 });
    /// let codec = AvroValueSerializer::importing(9, &order, &[("shop.Money", &money)])?;
    /// let total = Value::Record(vec![("cents".into(), Value::Long(250))]);
    /// let mut out = Vec::new();
    /// codec.serialize(&Value::Record(vec![("total".into(), total)]), &Context::value("orders"), &mut out)?;
    /// assert_eq!(out, [0, 0, 0, 0, 9, 0xf4, 0x03]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`SerializeError::Schema`] if `schema` and `imports` are not Avro schemas that
    /// parse together.
    pub fn importing(
        id: u32,
        schema: &Schema,
        imports: &[(&str, &Schema)],
    ) -> Result<Self, SerializeError> {
        let schema =
            parse(schema, imports.iter().map(|(_, s)| *s)).map_err(SerializeError::Schema)?;
        Ok(Self {
            id,
            writer: writer(schema).map_err(SerializeError::Schema)?,
            kind: PhantomData,
        })
    }

    /// The schema id written in front of each value.
    #[must_use]
    pub fn id(&self) -> u32 {
        self.id
    }

    /// The fully qualified name of the schema's record (or enum or fixed), which the
    /// record-based [`SubjectNameStrategy`](crate::SubjectNameStrategy)s name subjects by.
    ///
    /// ```
    /// use kasio_registry::Schema;
    /// use kasio_serde::AvroValueSerializer;
    /// let schema = Schema::avro(r#"{"type":"record","name":"Order","namespace":"shop","fields":[]}"#);
    /// assert_eq!(AvroValueSerializer::new(1, &schema)?.record_name().as_deref(), Some("shop.Order"));
    /// # Ok::<(), kasio_serde::SerializeError>(())
    /// ```
    #[must_use]
    pub fn record_name(&self) -> Option<String> {
        self.writer
            .borrow_owner()
            .main
            .name()
            .map(|n| n.fullname(None))
    }

    fn write(
        &self,
        out: &mut Vec<u8>,
        write: impl FnOnce(&GenericDatumWriter<'_>, &mut Vec<u8>) -> apache_avro::AvroResult<usize>,
    ) -> Result<(), SerializeError> {
        let start = out.len();
        wire::frame(self.id, out);
        self.writer
            .with_dependent(|_, writer| write(writer, out))
            .map_err(|e| {
                // Leave the buffer as it was: the caller may write the next value into it.
                out.truncate(start);
                SerializeError::Avro(e.to_string())
            })?;
        Ok(())
    }
}

impl<T: Serialize> Serializer<T> for AvroSerializer<T> {
    fn serialize(
        &self,
        value: &T,
        _: &Context<'_>,
        out: &mut Vec<u8>,
    ) -> Result<(), SerializeError> {
        self.write(out, |writer, out| writer.write_ser(out, value))
    }
}

/// The type parameter of the Avro codecs for generic [`apache_avro::types::Value`]s
/// (which are not serde types): [`AvroValueSerializer`], [`AvroValueDeserializer`].
#[derive(Debug, Clone, Copy)]
pub enum Generic {}

/// Writes generic Avro values.
pub type AvroValueSerializer = AvroSerializer<Generic>;

/// Reads generic Avro values: what a tool that knows no types (the CLI) reads.
pub type AvroValueDeserializer = AvroDeserializer<Generic>;

impl AvroSerializer<Generic> {
    /// Writes `json` as the Avro value it stands for under the schema (unions as their
    /// value, decimals as text; see [`avro_from_json`](crate::avro_from_json)): what a
    /// tool that reads JSON lines (the CLI) writes.
    ///
    /// ```
    /// use kasio_registry::Schema;
    /// use kasio_serde::{AvroValueSerializer, Context};
    /// let schema = Schema::avro(r#"{"type":"record","name":"R","fields":[{"name":"n","type":["null","int"]}]}"#);
    /// let codec = AvroValueSerializer::new(1, &schema)?;
    /// let mut out = Vec::new();
    /// codec.serialize_json(&serde_json::json!({"n": 3}), &Context::value("t"), &mut out)?;
    /// assert_eq!(out, [0, 0, 0, 0, 1, 2, 6]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`SerializeError::Avro`] for JSON that does not fit the schema, saying where.
    pub fn serialize_json(
        &self,
        json: &serde_json::Value,
        _: &Context<'_>,
        out: &mut Vec<u8>,
    ) -> Result<(), SerializeError> {
        let value = crate::avro_json::from_json_in(json, self.writer.borrow_owner())
            .map_err(SerializeError::Avro)?;
        self.write(out, |writer, out| writer.write_value_ref(out, &value))
    }
}

/// Generic values, checked against the schema before they are written.
impl Serializer<Value> for AvroSerializer<Generic> {
    fn serialize(
        &self,
        value: &Value,
        _: &Context<'_>,
        out: &mut Vec<u8>,
    ) -> Result<(), SerializeError> {
        self.write(out, |writer, out| writer.write_value_ref(out, value))
    }
}

/// Reads Confluent-framed Avro into a `T` (any serde type, or
/// [`apache_avro::types::Value`]).
///
/// Writer schemas come from a [`SchemaSource`] and are parsed once per id. With a reader
/// schema ([`with_reader_schema`](Self::with_reader_schema)) each record is resolved from
/// its writer's schema to the reader's by Avro's rules (fields added with defaults,
/// fields removed, promoted types), as Java's `specific.avro.reader` does.
///
/// ```
/// use kasio_registry::Schema;
/// use kasio_serde::{AvroDeserializer, Context, Deserializer, DeserializeError};
/// use std::sync::Arc;
/// let string = Arc::new(Schema::avro(r#""string""#));
/// let codec = AvroDeserializer::<String>::new(move |id| (id == 3).then(|| string.clone()));
/// let ctx = Context::value("names").at(0, 10);
/// assert_eq!(codec.deserialize(&[0, 0, 0, 0, 3, 4, b'h', b'i'], &ctx)?, "hi");
/// assert_eq!(codec.deserialize(&[0, 0, 0, 0, 4, 0], &ctx), Err(DeserializeError::UnknownSchema { id: 4 }));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct AvroDeserializer<T> {
    source: Box<dyn SchemaSource>,
    reader: Option<Parsed>,
    parsed: PerId<Reader>,
    kind: PhantomData<fn() -> T>,
}

impl<T> std::fmt::Debug for AvroDeserializer<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AvroDeserializer")
            .field("reader_schema", &self.reader.is_some())
            .finish_non_exhaustive()
    }
}

impl<T> AvroDeserializer<T> {
    /// A deserializer finding writer schemas in `source`.
    pub fn new(source: impl SchemaSource + 'static) -> Self {
        Self {
            source: Box::new(source),
            reader: None,
            parsed: PerId::default(),
            kind: PhantomData,
        }
    }

    /// The same, resolving every record to `schema`.
    ///
    /// # Errors
    /// [`DeserializeError::Schema`] if `schema` is not an Avro schema that parses.
    pub fn with_reader_schema(self, schema: &Schema) -> Result<Self, DeserializeError> {
        self.with_reader_schema_importing(schema, &[])
    }

    /// The same, resolving every record to `schema`, which imports the named types of
    /// `imports`.
    ///
    /// # Errors
    /// [`DeserializeError::Schema`] if `schema` and `imports` are not Avro schemas that
    /// parse together.
    pub fn with_reader_schema_importing(
        mut self,
        schema: &Schema,
        imports: &[(&str, &Schema)],
    ) -> Result<Self, DeserializeError> {
        self.reader =
            Some(parse(schema, imports.iter().map(|(_, s)| *s)).map_err(DeserializeError::Schema)?);
        Ok(self)
    }

    fn writer_schema(&self, id: u32) -> Result<Arc<Reader>, DeserializeError> {
        self.parsed
            .get(self.source.as_ref(), id, |schema, imports| {
                parse(schema, imports.iter().map(|(_, s)| &**s)).and_then(reader)
            })
    }

    /// The writer's schema for framed `data`, and the datum after the frame.
    fn writer_of<'d>(&self, data: &'d [u8]) -> Result<(Arc<Reader>, &'d [u8]), DeserializeError> {
        let framed = wire::parse(data)?;
        let SchemaRef::Id(id) = framed.schema else {
            return Err(DeserializeError::Schema(
                "a schema named by GUID; ids only so far".into(),
            ));
        };
        Ok((self.writer_schema(id)?, framed.payload))
    }

    fn value(&self, data: &[u8]) -> Result<Value, DeserializeError> {
        let (writer, mut payload) = self.writer_of(data)?;
        let avro = |e: apache_avro::Error| DeserializeError::Avro(e.to_string());
        let mut value = writer
            .with_dependent(|_, r| r.read_value(&mut payload))
            .map_err(avro)?;
        let Some(reader) = &self.reader else {
            return Ok(value);
        };
        // apache-avro 0.22 refuses to resolve a bytes-backed decimal shorter than its
        // precision could need, yet writers (Java's BigInteger, fastavro) write the
        // shortest two's complement: widen every decimal for the resolution, then
        // shorten it back.
        decimals(&mut value, widen);
        let mut value = value
            .resolve_schemata(&reader.main, reader.all())
            .map_err(avro)?;
        decimals(&mut value, shorten);
        Ok(value)
    }
}

impl<T: DeserializeOwned> Deserializer<T> for AvroDeserializer<T> {
    fn deserialize(&self, data: &[u8], _: &Context<'_>) -> Result<T, DeserializeError> {
        let avro = |e: apache_avro::Error| DeserializeError::Avro(e.to_string());
        if self.reader.is_some() {
            // apache-avro cannot yet resolve while deserializing into a type (it panics
            // if asked), so a resolving read goes through a generic value.
            let value = self.value(data)?;
            return from_value(&value).map_err(avro);
        }
        let (writer, mut payload) = self.writer_of(data)?;
        writer
            .with_dependent(|_, r| r.read_deser(&mut payload))
            .map_err(avro)
    }
}

/// Applies `f` to every decimal's two's-complement bytes in `value`.
fn decimals(value: &mut Value, f: fn(Vec<u8>) -> Vec<u8>) {
    match value {
        Value::Decimal(d) => {
            let bytes: Vec<u8> = Vec::<u8>::try_from(&*d).unwrap_or_default();
            *d = apache_avro::Decimal::from(f(bytes));
        }
        Value::Record(fields) => fields.iter_mut().for_each(|(_, v)| decimals(v, f)),
        Value::Array(items) => items.iter_mut().for_each(|v| decimals(v, f)),
        Value::Map(entries) => entries.values_mut().for_each(|v| decimals(v, f)),
        Value::Union(_, inner) => decimals(inner, f),
        _ => {}
    }
}

/// Wide enough for any precision apache-avro checks (77 digits).
const WIDE_DECIMAL: usize = 32;

fn widen(bytes: Vec<u8>) -> Vec<u8> {
    if bytes.len() >= WIDE_DECIMAL {
        return bytes;
    }
    let sign = if bytes.first().is_some_and(|b| b & 0x80 != 0) {
        0xff
    } else {
        0
    };
    let mut wide = vec![sign; WIDE_DECIMAL - bytes.len()];
    wide.extend_from_slice(&bytes);
    wide
}

fn shorten(bytes: Vec<u8>) -> Vec<u8> {
    let redundant = bytes
        .windows(2)
        .take_while(|w| (w[0] == 0 && w[1] & 0x80 == 0) || (w[0] == 0xff && w[1] & 0x80 != 0))
        .count();
    bytes[redundant..].to_vec()
}

impl AvroDeserializer<Generic> {
    /// The record as JSON, by its schema (the reader's, else the writer's): unions as
    /// their value, decimals as text; see [`avro_to_json`](crate::avro_to_json). What a
    /// tool that prints records (the CLI) reads.
    ///
    /// # Errors
    /// As [`Deserializer::deserialize`], and [`DeserializeError::Avro`] for a value JSON
    /// cannot hold.
    pub fn deserialize_json(
        &self,
        data: &[u8],
        _: &Context<'_>,
    ) -> Result<serde_json::Value, DeserializeError> {
        let value = self.value(data)?;
        let json = |schema: &Parsed| {
            crate::avro_json::to_json_in(&value, schema).map_err(DeserializeError::Avro)
        };
        match &self.reader {
            Some(reader) => json(reader),
            None => {
                let (writer, _) = self.writer_of(data)?;
                json(writer.borrow_owner())
            }
        }
    }
}

impl Deserializer<Value> for AvroDeserializer<Generic> {
    fn deserialize(&self, data: &[u8], _: &Context<'_>) -> Result<Value, DeserializeError> {
        self.value(data)
    }
}
