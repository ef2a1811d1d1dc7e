//! Protobuf for the CLI, which has no compiled message types: a registered `.proto`
//! schema (and the files it imports, its references) is compiled when first met, and
//! records are read and written as dynamic messages, JSON in and out (Protobuf's JSON
//! mapping, as Confluent's console tools print).

use kasio::registry::Schema;
use kasio::serde::wire;
use prost::Message;
use prost_reflect::{DescriptorPool, DynamicMessage, MessageDescriptor};
use protox::file::{ChainFileResolver, File, FileResolver, GoogleFileResolver};
use serde_json::Value;
use std::sync::Arc;

/// The name the registered schema is compiled under; its imports keep their own.
const MAIN: &str = "kasio-registered-schema.proto";

/// A registered `.proto` schema, compiled.
#[derive(Debug)]
pub(crate) struct Proto {
    pool: DescriptorPool,
}

/// Serves the schema and its imports by name, and Google's well-known types.
struct Files(Vec<(String, String)>);

impl FileResolver for Files {
    fn open_file(&self, name: &str) -> Result<File, protox::Error> {
        let Some((_, text)) = self.0.iter().find(|(n, _)| n == name) else {
            return Err(protox::Error::file_not_found(name));
        };
        file(name, text)
    }
}

/// A file from its schema text: `.proto` source, or (as some serializers register it)
/// a base64 `FileDescriptorProto`.
fn file(name: &str, text: &str) -> Result<File, protox::Error> {
    match File::from_source(name, text) {
        Ok(file) => Ok(file),
        Err(parse) => {
            use base64::Engine;
            let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(text.trim()) else {
                return Err(parse);
            };
            let mut proto =
                prost_types::FileDescriptorProto::decode(bytes.as_slice()).map_err(|_| parse)?;
            proto.name = Some(name.to_string());
            Ok(File::from_file_descriptor_proto(proto))
        }
    }
}

impl Proto {
    /// Compiles `schema`, importing `imports` (by the names its references give).
    pub(crate) fn compile(
        schema: &Schema,
        imports: &[(String, Arc<Schema>)],
    ) -> Result<Self, String> {
        let mut files = vec![(MAIN.to_string(), schema.text.clone())];
        files.extend(imports.iter().map(|(n, s)| (n.clone(), s.text.clone())));
        let mut resolver = ChainFileResolver::new();
        resolver.add(Files(files));
        resolver.add(GoogleFileResolver::new());
        let mut compiler = protox::Compiler::with_file_resolver(resolver);
        compiler
            .include_imports(true)
            .open_file(MAIN)
            .map_err(|e| format!("the .proto schema does not compile: {e}"))?;
        Ok(Self {
            pool: compiler.descriptor_pool(),
        })
    }

    /// The message at `path` (Confluent's message indexes: top-level, then nested).
    fn message(&self, path: &[i32]) -> Result<MessageDescriptor, String> {
        let missing = || format!("the schema has no message at index path {path:?}");
        let file = self.pool.get_file_by_name(MAIN).ok_or_else(missing)?;
        let (first, rest) = path.split_first().ok_or_else(missing)?;
        let index = usize::try_from(*first).map_err(|_| missing())?;
        let mut message = file.messages().nth(index).ok_or_else(missing)?;
        for i in rest {
            let i = usize::try_from(*i).map_err(|_| missing())?;
            let child = message.child_messages().nth(i);
            message = child.ok_or_else(missing)?;
        }
        Ok(message)
    }

    /// The index path of the file's message named `name` (its full name, or its name
    /// within the package), or of its first message.
    pub(crate) fn path_of(&self, name: Option<&str>) -> Result<Vec<i32>, String> {
        let file = self
            .pool
            .get_file_by_name(MAIN)
            .ok_or("no schema compiled")?;
        let Some(name) = name else {
            return match file.messages().len() {
                0 => Err("the schema declares no message".into()),
                _ => Ok(vec![0]),
            };
        };
        fn find(
            messages: impl Iterator<Item = MessageDescriptor>,
            name: &str,
            package: &str,
            path: &mut Vec<i32>,
        ) -> bool {
            for (i, m) in messages.enumerate() {
                path.push(i32::try_from(i).unwrap_or(i32::MAX));
                let short = m
                    .full_name()
                    .strip_prefix(package)
                    .and_then(|s| s.strip_prefix('.'));
                if m.full_name() == name
                    || short == Some(name)
                    || find(m.child_messages(), name, package, path)
                {
                    return true;
                }
                path.pop();
            }
            false
        }
        let mut path = Vec::new();
        if find(file.messages(), name, file.package_name(), &mut path) {
            Ok(path)
        } else {
            Err(format!("the schema declares no message {name}"))
        }
    }

    /// A framed record's payload (after the schema id) as JSON.
    pub(crate) fn decode(&self, payload: &[u8]) -> Result<Value, String> {
        let (path, body) = wire::read_message_path(payload).map_err(|e| e.to_string())?;
        let message = self.message(&path)?;
        let name = message.full_name().to_string();
        let decoded =
            DynamicMessage::decode(message, body).map_err(|e| format!("not a {name}: {e}"))?;
        serde_json::to_value(&decoded).map_err(|e| format!("{name} as JSON: {e}"))
    }

    /// `json` as the message at `path`, framed under schema `id`.
    pub(crate) fn encode(&self, id: u32, path: &[i32], json: &Value) -> Result<Vec<u8>, String> {
        let message = self.message(path)?;
        let name = message.full_name().to_string();
        let dynamic =
            DynamicMessage::deserialize(message, json).map_err(|e| format!("not a {name}: {e}"))?;
        let mut out = Vec::with_capacity(16 + dynamic.encoded_len());
        wire::frame(id, &mut out);
        wire::write_message_path(path, &mut out);
        dynamic
            .encode(&mut out)
            .map_err(|e| format!("encoding {name}: {e}"))?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use kasio::registry::SchemaReference;

    const SHOP: &str = r#"syntax = "proto3";
package shop;
import "money.proto";
import "google/protobuf/timestamp.proto";
message Header { string id = 1; }
message Order {
  message Line { string sku = 1; int32 qty = 2; }
  int64 id = 1;
  repeated Line lines = 2;
  shop.Money total = 3;
  google.protobuf.Timestamp at = 4;
}
"#;
    const MONEY: &str = r#"syntax = "proto3";
package shop;
message Money { int64 cents = 1; string currency = 2; }
"#;

    fn shop() -> Proto {
        let schema = Schema::protobuf(SHOP).reference(SchemaReference {
            name: "money.proto".into(),
            subject: "money".into(),
            version: 1,
        });
        let imports = [("money.proto".to_string(), Arc::new(Schema::protobuf(MONEY)))];
        Proto::compile(&schema, &imports).unwrap()
    }

    #[test]
    fn a_nested_message_with_imports_round_trips_as_json() {
        let proto = shop();
        assert_eq!(proto.path_of(None).unwrap(), [0]);
        assert_eq!(proto.path_of(Some("shop.Order")).unwrap(), [1]);
        assert_eq!(proto.path_of(Some("Order.Line")).unwrap(), [1, 0]);
        let order = serde_json::json!({"id": "7", "lines": [{"sku": "tea", "qty": 2}],
            "total": {"cents": "250", "currency": "EUR"}, "at": "2026-12-07T06:00:00Z"});
        let bytes = proto.encode(9, &[1], &order).unwrap();
        assert_eq!(bytes[..6], [0, 0, 0, 0, 9, 2]);
        assert_eq!(bytes[6], 2, "index 1, zigzag");
        let framed = wire::parse(&bytes).unwrap();
        assert_eq!(proto.decode(framed.payload).unwrap(), order);
        let line = proto
            .encode(9, &[1, 0], &serde_json::json!({"sku": "x"}))
            .unwrap();
        let framed = wire::parse(&line).unwrap();
        assert_eq!(
            proto.decode(framed.payload).unwrap(),
            serde_json::json!({"sku": "x"})
        );
    }

    #[test]
    fn bad_input_is_an_error() {
        let proto = shop();
        assert!(proto.path_of(Some("Nope")).is_err());
        assert!(
            proto
                .encode(1, &[1], &serde_json::json!({"id": "x"}))
                .is_err()
        );
        assert!(proto.encode(1, &[5], &serde_json::json!({})).is_err());
        assert!(proto.decode(&[4, 2, 2]).is_err(), "no message at [1, 1]");
        assert!(proto.decode(&[0, 0xff, 0xff]).is_err());
        let missing_import = Schema::protobuf(SHOP);
        assert!(
            Proto::compile(&missing_import, &[])
                .unwrap_err()
                .contains("money.proto")
        );
        assert!(Proto::compile(&Schema::protobuf("message {"), &[]).is_err());
    }

    #[test]
    fn a_schema_registered_as_a_base64_descriptor_compiles() {
        use base64::Engine;
        let proto = shop();
        let file = proto.pool.get_file_by_name(MAIN).unwrap();
        let mut descriptor = file.file_descriptor_proto().clone();
        descriptor.dependency.retain(|d| d != "money.proto");
        descriptor.message_type.truncate(1);
        let text = base64::engine::general_purpose::STANDARD.encode(descriptor.encode_to_vec());
        let compiled = Proto::compile(&Schema::protobuf(text), &[]).unwrap();
        assert_eq!(compiled.path_of(Some("shop.Header")).unwrap(), [0]);
    }
}
