"""Confluent's Schema Registry framing between kasio and confluent-kafka, through a real
registry (Apicurio Registry's Confluent-compatible API, scripts/registry): what
confluent-kafka's JSON Schema serializer writes, kasio's `wire` and JSON codec read to the
same schema id and value; what kasio frames with the registered id, confluent-kafka's
deserializer (which fetches the schema by that id and validates against it) reads to the
same value. Runs the release example `registry_framing`, which scripts/test builds."""

import json
import os
import subprocess
import uuid
from pathlib import Path

import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.json_schema import JSONDeserializer, JSONSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "target" / "release" / "examples" / "registry_framing"
SCHEMA = json.dumps({
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "item": {"type": "string"},
        "tags": {"type": "array", "items": {"type": "string"}},
        "price": {"type": "number"},
    },
    "required": ["id", "item"],
})
VALUES = [
    {"id": 7, "item": "tea"},
    {"id": -1, "item": "caf\u00e9 \U0001f375", "tags": ["hot", ""], "price": 2.5},
    {"id": 2**53, "item": "", "tags": []},
]


def registry():
    url = os.environ.get("KASIO_REGISTRY_URL")
    if not url:
        pytest.fail("KASIO_REGISTRY_URL is not set: start it with scripts/registry up")
    # A timeout (seconds) so a request the registry leaves unanswered is retried rather
    # than waited for forever: the registry has been seen to keep a reused connection
    # silent after a 404 (confluent-kafka's associations lookup).
    return SchemaRegistryClient({"url": url, "timeout": 10})


def kasio(*args, ok=True, example=EXAMPLE):
    assert example.exists(), f"build it first: cargo build --release -p kasio --all-features --examples ({example})"
    run = subprocess.run([str(example), *args], capture_output=True, text=True, timeout=60)
    if ok:
        assert run.returncode == 0, run.stderr
    return run


def test_kasio_reads_what_confluent_kafka_writes_and_back():
    sr = registry()
    topic = f"orders-{uuid.uuid4().hex[:8]}"
    ctx = SerializationContext(topic, MessageField.VALUE)
    ser = JSONSerializer(SCHEMA, sr)
    de = JSONDeserializer(SCHEMA, schema_registry_client=sr)
    for value in VALUES:
        theirs = ser(value, ctx)
        schema_id = sr.get_latest_version(f"{topic}-value").schema_id
        read = json.loads(kasio("read", theirs.hex()).stdout)
        assert read == {"schema_id": schema_id, "value": value}
        ours = bytes.fromhex(kasio("write", str(schema_id), json.dumps(value)).stdout.strip())
        assert de(ours, ctx) == value
        # Both frame the same header; the JSON text may order keys differently.
        assert ours[:5] == theirs[:5]
        assert json.loads(ours[5:]) == json.loads(theirs[5:])


def test_a_value_that_breaks_the_schema_is_refused_by_confluent_kafka_as_kasio_framed_it():
    sr = registry()
    topic = f"orders-{uuid.uuid4().hex[:8]}"
    ctx = SerializationContext(topic, MessageField.VALUE)
    JSONSerializer(SCHEMA, sr)({"id": 1, "item": "x"}, ctx)
    schema_id = sr.get_latest_version(f"{topic}-value").schema_id
    ours = bytes.fromhex(kasio("write", str(schema_id), '{"id": "not a number"}').stdout.strip())
    with pytest.raises(Exception, match="not of type|is a required property|validat"):
        JSONDeserializer(SCHEMA, schema_registry_client=sr)(ours, ctx)


@pytest.mark.parametrize("frame,error", [
    ("0200000001", "magic byte 0x02"),
    ("000000", "3 bytes, shorter than the 5-byte header"),
    ("0100000001", "5 bytes, shorter than the 17-byte header"),
    ("00000000017b", "not the JSON expected"),
])
def test_bad_frames_are_typed_errors(frame, error):
    run = kasio("read", frame, ok=False)
    assert run.returncode == 2
    assert error in run.stderr, run.stderr


# Avro: confluent-kafka's AvroSerializer and AvroDeserializer (fastavro) against kasio's
# Avro codec and registry client (the `registry_avro` example, on the blocking runtime).
AVRO_EXAMPLE = ROOT / "target" / "release" / "examples" / "registry_avro"
ORDER = json.dumps({
    "type": "record", "name": "Order", "namespace": "kasio.lab",
    "fields": [
        {"name": "id", "type": "long"},
        {"name": "item", "type": "string"},
        {"name": "note", "type": ["null", "string"], "default": None},
        {"name": "tags", "type": {"type": "map", "values": "int"}},
        {"name": "price", "type": {"type": "bytes", "logicalType": "decimal", "precision": 9, "scale": 2}},
    ],
})
ORDERS = [
    {"id": 1, "item": "tea", "note": None, "tags": {}, "price": "0.00"},
    {"id": -(2**40), "item": "caf\u00e9 \U0001f375", "note": "oat milk", "tags": {"hot": 1, "big": -3}, "price": "12.50"},
    {"id": 2**62, "item": "", "note": "", "tags": {"a": 2**31 - 1}, "price": "-9999999.99"},
]


def avro_kasio(*args, ok=True):
    return kasio(*args, ok=ok, example=AVRO_EXAMPLE)


def as_python(order):
    from decimal import Decimal
    return {**order, "price": Decimal(order["price"])}


def test_avro_both_ways_with_a_union_a_map_and_a_decimal():
    from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
    sr = registry()
    url = os.environ["KASIO_REGISTRY_URL"]
    topic = f"avro-{uuid.uuid4().hex[:8]}"
    ctx = SerializationContext(topic, MessageField.VALUE)
    ser = AvroSerializer(sr, ORDER)
    de = AvroDeserializer(sr)
    for order in ORDERS:
        theirs = ser(as_python(order), ctx)
        read = json.loads(avro_kasio("read", url, theirs.hex()).stdout)
        schema_id = sr.get_latest_version(f"{topic}-value").schema_id
        assert read == {"schema_id": schema_id, "value": order}
        ours = bytes.fromhex(avro_kasio("write", url, topic, json.dumps(order)).stdout.strip())
        # Registered once: kasio found confluent-kafka's schema under the same id.
        assert ours[:5] == theirs[:5]
        assert de(ours, ctx) == as_python(order)
        if len(order["tags"]) <= 1:
            # A map's entries may come in any order; otherwise the datum is the same.
            assert ours == theirs, "the same datum, byte for byte"


def test_avro_unknown_ids_and_bad_data_are_typed_errors():
    url = os.environ["KASIO_REGISTRY_URL"]
    run = avro_kasio("read", url, "00" + "7fffff00" + "02", ok=False)
    assert run.returncode == 2 and "404" in run.stderr, run.stderr
    run = avro_kasio("read", "http://127.0.0.1:1", "0000000001", ok=False)
    assert run.returncode == 2 and "unreachable" in run.stderr, run.stderr
