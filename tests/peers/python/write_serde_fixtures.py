"""Writes Confluent's Schema Registry framing as confluent-kafka's own serializers write
it (its SchemaId, the class its Avro, Protobuf and JSON Schema serializers frame with):
one line per case, `schema type message_indexes hex`, for kasio-serde's wire format test
to match byte for byte. `schema` is a numeric id (magic byte 0, in front of the payload)
or `guid:` and a GUID's hex (magic byte 1, as in the schema-id record headers)."""

import io
import sys
from pathlib import Path

from confluent_kafka.schema_registry.common.serde import SchemaId

CASES = [
    (1, "AVRO", None),
    (256, "JSON", None),
    (4294967295, "AVRO", None),
    (7, "PROTOBUF", [0]),
    (7, "PROTOBUF", [1]),
    (42, "PROTOBUF", [2, 0, 3]),
    (42, "PROTOBUF", [64]),
    (100000, "PROTOBUF", [0, 1, 300, 70000]),
    ("3f0a6b3c-1d2e-4f50-8a9b-0c1d2e3f4a5b", "AVRO", None),
    ("00000000-0000-0000-0000-000000000001", "PROTOBUF", [0]),
    ("ffffffff-ffff-ffff-ffff-ffffffffffff", "PROTOBUF", [3, 1]),
]


def main():
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    lines = []
    for schema, kind, indexes in CASES:
        back = SchemaId(kind)
        if isinstance(schema, int):
            framed = SchemaId(kind, schema_id=schema, message_indexes=indexes).id_to_bytes()
            back.from_bytes(io.BytesIO(framed))
            assert back.id == schema, back.id
            name = str(schema)
        else:
            framed = SchemaId(kind, guid=schema, message_indexes=indexes).guid_to_bytes()
            back.from_bytes(io.BytesIO(framed))
            assert str(back.guid) == schema, back.guid
            name = "guid:" + schema.replace("-", "")
        # confluent-kafka reads back what it wrote.
        assert back.message_indexes == (indexes if kind == "PROTOBUF" else None), back.message_indexes
        path = "-" if indexes is None else ",".join(str(i) for i in indexes)
        lines.append(f"{name} {kind} {path} {framed.hex()}")
    (out / "schema-ids.txt").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
