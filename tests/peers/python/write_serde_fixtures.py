"""Writes Confluent's Schema Registry framing as confluent-kafka's own serializers write
it (its SchemaId, the class its Avro, Protobuf and JSON Schema serializers frame with):
one line per case, `schema_id type message_indexes hex`, for kasio-serde's wire format
test to match byte for byte."""

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
]


def main():
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    lines = []
    for schema_id, kind, indexes in CASES:
        framed = SchemaId(kind, schema_id=schema_id, message_indexes=indexes).id_to_bytes()
        # And confluent-kafka reads back what it wrote.
        import io
        back = SchemaId(kind)
        back.from_bytes(io.BytesIO(framed))
        assert back.id == schema_id and back.message_indexes == indexes, (back.id, back.message_indexes)
        path = "-" if indexes is None else ",".join(str(i) for i in indexes)
        lines.append(f"{schema_id} {kind} {path} {framed.hex()}")
    (out / "schema-ids.txt").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
