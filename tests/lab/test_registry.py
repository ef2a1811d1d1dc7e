"""Confluent's Schema Registry framing between kasio and confluent-kafka, through a real
registry (Apicurio Registry's Confluent-compatible API, scripts/registry): what
confluent-kafka's JSON Schema serializer writes, kasio's `wire` and JSON codec read to the
same schema id and value; what kasio frames with the registered id, confluent-kafka's
deserializer (which fetches the schema by that id and validates against it) reads to the
same value. Runs the release example `registry_framing`, which scripts/test builds."""

import json
import os
import subprocess
import time
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


# Protobuf: confluent-kafka's ProtobufSerializer and ProtobufDeserializer against kasio's
# prost codec (the `registry_protobuf` example). The message classes are built from a
# descriptor here, so no protoc is needed; the file is the example's shop.proto.
PROTOBUF_EXAMPLE = ROOT / "target" / "release" / "examples" / "registry_protobuf"


def shop_classes():
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
    field = descriptor_pb2.FieldDescriptorProto
    file = descriptor_pb2.FileDescriptorProto(name="shop.proto", package="kasio.lab", syntax="proto3")
    header = file.message_type.add(name="Header")
    header.field.add(name="source", number=1, type=field.TYPE_STRING, label=field.LABEL_OPTIONAL)
    order = file.message_type.add(name="Order")
    order.field.add(name="id", number=1, type=field.TYPE_INT64, label=field.LABEL_OPTIONAL)
    order.field.add(name="item", number=2, type=field.TYPE_STRING, label=field.LABEL_OPTIONAL)
    order.field.add(name="lines", number=3, type=field.TYPE_MESSAGE, label=field.LABEL_REPEATED,
                    type_name=".kasio.lab.Order.Line")
    line = order.nested_type.add(name="Line")
    line.field.add(name="sku", number=1, type=field.TYPE_STRING, label=field.LABEL_OPTIONAL)
    line.field.add(name="qty", number=2, type=field.TYPE_UINT32, label=field.LABEL_OPTIONAL)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    find = lambda name: message_factory.GetMessageClass(pool.FindMessageTypeByName(name))  # noqa: E731
    return {"kasio.lab.Order": find("kasio.lab.Order"), "kasio.lab.Order.Line": find("kasio.lab.Order.Line")}


PROTOBUF_VALUES = [
    ("kasio.lab.Order", [1], {"id": 7, "item": "tea", "lines": [{"sku": "a", "qty": 2}]}),
    ("kasio.lab.Order", [1], {"id": -(2**62), "item": "caf\u00e9 \U0001f375", "lines": []}),
    ("kasio.lab.Order.Line", [1, 0], {"sku": "b", "qty": 2**32 - 1}),
]


def as_message(cls, value):
    from google.protobuf import json_format
    return json_format.ParseDict(value, cls())


def as_value(message, like):
    """The message's fields as the example prints them (every field, defaults too)."""
    from google.protobuf import json_format
    out = json_format.MessageToDict(message, preserving_proto_field_name=True,
                                    always_print_fields_with_no_presence=True)
    # JSON mapping writes 64-bit integers as strings.
    return {k: (int(v) if isinstance(like.get(k), int) else v) for k, v in out.items()}


@pytest.mark.parametrize("message,path,value", PROTOBUF_VALUES)
def test_protobuf_kasio_reads_what_confluent_kafka_writes(message, path, value):
    from confluent_kafka.schema_registry.protobuf import ProtobufSerializer
    sr = registry()
    cls = shop_classes()[message]
    topic = f"protobuf-{uuid.uuid4().hex[:8]}"
    ctx = SerializationContext(topic, MessageField.VALUE)
    theirs = ProtobufSerializer(cls, sr, {"use.deprecated.format": False})(as_message(cls, value), ctx)
    schema_id = sr.get_latest_version(f"{topic}-value").schema_id
    read = json.loads(kasio("read", message, theirs.hex(), example=PROTOBUF_EXAMPLE).stdout)
    assert read == {"schema_id": schema_id, "path": path, "value": as_value(as_message(cls, value), value)}


@pytest.mark.parametrize("message,path,value", PROTOBUF_VALUES)
def test_protobuf_confluent_kafka_reads_what_kasio_writes(message, path, value):
    from confluent_kafka.schema_registry.protobuf import ProtobufDeserializer, ProtobufSerializer
    sr = registry()
    url = os.environ["KASIO_REGISTRY_URL"]
    cls = shop_classes()[message]
    topic = f"protobuf-{uuid.uuid4().hex[:8]}"
    ctx = SerializationContext(topic, MessageField.VALUE)
    ours = bytes.fromhex(kasio("write", url, topic, message, json.dumps(value), example=PROTOBUF_EXAMPLE).stdout.strip())
    # kasio registered the .proto text itself; the registry parsed and kept it.
    latest = sr.get_latest_version(f"{topic}-value")
    assert latest.schema.schema_type == "PROTOBUF" and "message Order" in latest.schema.schema_str
    assert ours[1:5] == latest.schema_id.to_bytes(4, "big")
    de = ProtobufDeserializer(cls, {"use.deprecated.format": False})
    assert de(ours, ctx) == as_message(cls, value)
    # The same path and message bytes as confluent-kafka's serializer writes (registered
    # under a subject of its own: asked for kasio's version with ?format=serialized, this
    # registry answers the descriptor's raw bytes where confluent-kafka expects base64).
    other = SerializationContext(f"{topic}-theirs", MessageField.VALUE)
    theirs = ProtobufSerializer(cls, sr, {"use.deprecated.format": False})(as_message(cls, value), other)
    assert ours[0] == theirs[0] and ours[5:] == theirs[5:]


def test_protobuf_bad_frames_are_typed_errors():
    run = kasio("read", "kasio.lab.Order", "000000000100", ok=False, example=PROTOBUF_EXAMPLE)
    assert run.returncode == 2 and "message path [0] where [1] was expected" in run.stderr, run.stderr
    run = kasio("read", "kasio.lab.Order", "0000000001021212ff", ok=False, example=PROTOBUF_EXAMPLE)
    assert run.returncode == 2 and "not the Protobuf expected" in run.stderr, run.stderr


# JSON Schema with validation on both sides: confluent-kafka's JSONSerializer and
# JSONDeserializer against kasio's JsonSchemaSerializer and validating
# JsonSchemaDeserializer (the `registry_json_schema` example).
JSON_SCHEMA_EXAMPLE = ROOT / "target" / "release" / "examples" / "registry_json_schema"


def json_schema_kasio(*args, ok=True):
    return kasio(*args, ok=ok, example=JSON_SCHEMA_EXAMPLE)


def test_json_schema_both_ways_validated():
    sr = registry()
    url = os.environ["KASIO_REGISTRY_URL"]
    topic = f"jsonschema-{uuid.uuid4().hex[:8]}"
    ctx = SerializationContext(topic, MessageField.VALUE)
    ser = JSONSerializer(SCHEMA, sr)
    de = JSONDeserializer(SCHEMA, schema_registry_client=sr)
    for value in VALUES:
        theirs = ser(value, ctx)
        schema_id = sr.get_latest_version(f"{topic}-value").schema_id
        read = json.loads(json_schema_kasio("read", url, theirs.hex()).stdout)
        assert read == {"schema_id": schema_id, "value": value}
        ours = bytes.fromhex(json_schema_kasio("write", url, topic, SCHEMA, json.dumps(value)).stdout.strip())
        # The same schema: kasio's registration found confluent-kafka's id.
        assert ours[:5] == theirs[:5]
        assert de(ours, ctx) == value


def test_json_schema_values_the_schema_refuses_are_typed_errors_on_both_sides():
    sr = registry()
    url = os.environ["KASIO_REGISTRY_URL"]
    topic = f"jsonschema-{uuid.uuid4().hex[:8]}"
    bad = {"id": "seven", "item": "tea"}
    run = json_schema_kasio("write", url, topic, SCHEMA, json.dumps(bad), ok=False)
    assert run.returncode == 2 and "not allowed by its JSON Schema: at /id" in run.stderr, run.stderr
    # Framed without validation under the registered id (as a careless producer would),
    # kasio's validating reader refuses it; so does confluent-kafka's.
    ctx = SerializationContext(topic, MessageField.VALUE)
    JSONSerializer(SCHEMA, sr)({"id": 1, "item": "x"}, ctx)
    schema_id = sr.get_latest_version(f"{topic}-value").schema_id
    unchecked = kasio("write", str(schema_id), json.dumps(bad)).stdout.strip()
    run = json_schema_kasio("read", url, unchecked, ok=False)
    assert run.returncode == 2 and "not allowed by its JSON Schema: at /id" in run.stderr, run.stderr
    with pytest.raises(Exception, match="not of type"):
        JSONDeserializer(SCHEMA, schema_registry_client=sr)(bytes.fromhex(unchecked), ctx)


# The typed handles through the real broker and registry: 1,000,000 Avro records of a
# 10-field schema, half written with version 1 and half with a BACKWARD-compatible
# version 2, read by 4 consumers of one group with version 2 as their reader schema.
FANOUT_EXAMPLE = ROOT / "target" / "release" / "examples" / "typed_avro_fanout"


def test_typed_consumers_read_a_million_records_with_one_registry_request_per_schema_id():
    bootstrap = os.environ.get("KASIO_LAB_PLAINTEXT")
    if not bootstrap:
        pytest.fail("KASIO_LAB_PLAINTEXT is not set: start the broker with scripts/kafka up")
    url = os.environ["KASIO_REGISTRY_URL"]
    topic = f"fanout-{uuid.uuid4().hex[:8]}"
    assert FANOUT_EXAMPLE.exists(), "build it first: cargo build --release -p kasio --all-features --examples"
    run = subprocess.run([str(FANOUT_EXAMPLE), bootstrap, url, topic, "1000000", "4"],
                         capture_output=True, text=True, timeout=480)
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout)
    print(out)
    assert out["distinct"] == 1_000_000
    # The first half were written before the field existed: they read with its default.
    assert out["defaulted"] == 500_000
    assert len(set(out["schema_ids"])) == 2
    # One request per schema id, for 4 consumers and a million records.
    assert out["registry_requests"] == 2


# The CLI's formats: JSON lines in, Avro (or JSON Schema) on the wire through the
# registry, JSON lines out, as kcat's `-s avro -r URL`; confluent-kafka reads and writes
# the same records.
def cli(*args, stdin=None):
    from test_admin import KASIO
    bootstrap = os.environ.get("KASIO_LAB_PLAINTEXT")
    if not bootstrap:
        pytest.fail("KASIO_LAB_PLAINTEXT is not set: start the broker with scripts/kafka up")
    assert KASIO.exists(), f"build it first: cargo build --release -p kasio-cli ({KASIO})"
    return subprocess.run([str(KASIO), "-b", bootstrap, *args], input=stdin,
                          capture_output=True, text=True, timeout=120)


def cli_topic():
    from test_admin import name, peer_admin
    from confluent_kafka.admin import NewTopic
    t = name("cli-avro")
    peer_admin().create_topics([NewTopic(t, 1, 1)])[t].result(30)
    return t


def test_cli_avro_json_lines_in_and_out_beside_confluent_kafka():
    from confluent_kafka import Consumer, Producer
    from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
    url = os.environ["KASIO_REGISTRY_URL"]
    t = cli_topic()
    ctx = SerializationContext(t, MessageField.VALUE)
    lines = "".join(json.dumps({"key": f"k{i}", "value": order}) + "\n" for i, order in enumerate(ORDERS))
    run = cli("produce", t, "--json-input", "--value-format", "avro", "--schema-registry", url,
              "--value-schema", ORDER, stdin=lines)
    assert run.returncode == 0, run.stderr
    # confluent-kafka's AvroSerializer writes one more, under the schema kasio registered.
    theirs = {"id": 99, "item": "from confluent-kafka", "note": None, "tags": {"x": 1}, "price": "1.05"}
    p = Producer({"bootstrap.servers": os.environ["KASIO_LAB_PLAINTEXT"].split(",")[0]})
    p.produce(t, key=b"k99", value=AvroSerializer(registry(), ORDER)(as_python(theirs), ctx))
    p.flush(30)
    run = cli("--json", "consume", t, "-o", "beginning", "-e", "--value-format", "avro",
              "--schema-registry", url)
    assert run.returncode == 0, run.stderr
    read = [json.loads(line) for line in run.stdout.splitlines()]
    assert [r["key"] for r in read] == ["k0", "k1", "k2", "k99"]
    assert [r["value"] for r in read] == [*ORDERS, theirs]
    # confluent-kafka's AvroDeserializer reads what the CLI wrote.
    c = Consumer({"bootstrap.servers": os.environ["KASIO_LAB_PLAINTEXT"].split(",")[0],
                  "group.id": f"{t}-reader", "auto.offset.reset": "earliest"})
    c.subscribe([t])
    de = AvroDeserializer(registry())
    got = []
    deadline = time.time() + 60
    while len(got) < 4 and time.time() < deadline:
        m = c.poll(0.5)
        if m is not None and not m.error():
            got.append(de(m.value(), ctx))
    c.close()
    assert got == [as_python(o) for o in [*ORDERS, theirs]]
    # Plain lines work too, and the text format prints the value as JSON.
    run = cli("produce", t, "--value-format", "avro", "--schema-registry", url,
              stdin=json.dumps(ORDERS[0]) + "\n")
    assert run.returncode == 0, run.stderr
    run = cli("consume", t, "-o", "4", "-e", "--value-format", "avro", "--schema-registry", url)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout) == ORDERS[0]


def test_cli_refuses_what_the_schema_does_not_allow_and_names_bad_records():
    url = os.environ["KASIO_REGISTRY_URL"]
    t = cli_topic()
    run = cli("produce", t, "--value-format", "json-schema", "--schema-registry", url,
              "--value-schema", SCHEMA, stdin='{"id": 1, "item": "tea"}\n{"id": "x", "item": "tea"}\n')
    assert run.returncode != 0 and "line 2: value of" in run.stderr and "at /id" in run.stderr, run.stderr
    run = cli("--json", "consume", t, "-o", "beginning", "-e", "--value-format", "json-schema",
              "--schema-registry", url)
    assert run.returncode == 0, run.stderr
    assert [json.loads(line)["value"] for line in run.stdout.splitlines()] == [{"id": 1, "item": "tea"}]
    # Not Avro: a typed error naming the record, after what came before it.
    run = cli("produce", t, stdin="plain text\n")
    assert run.returncode == 0, run.stderr
    run = cli("consume", t, "-o", "beginning", "-e", "--value-format", "avro", "--schema-registry", url)
    assert run.returncode != 0, run.stdout
    assert f"value of {t}-0@0" in run.stderr and "a JSON schema, not Avro" in run.stderr, run.stderr
    run = cli("consume", t, "-o", "1", "-e", "--value-format", "avro", "--schema-registry", url)
    assert run.returncode != 0, run.stdout
    assert f"value of {t}-0@1" in run.stderr and "magic byte" in run.stderr, run.stderr
    run = cli("consume", t, "-o", "beginning", "-e", "--value-format", "protobuf", "--schema-registry", url)
    assert run.returncode != 0 and f"value of {t}-0@0" in run.stderr and "compile" in run.stderr, run.stderr


SHOP_PROTO = """syntax = "proto3";
package kasio.lab;
message Header { string source = 1; }
message Order {
  int64 id = 1;
  string item = 2;
  repeated Line lines = 3;
  message Line { string sku = 1; uint32 qty = 2; }
}
"""


def cli_read(t, fmt, n=None):
    url = os.environ["KASIO_REGISTRY_URL"]
    run = cli("--json", "consume", t, "-o", "beginning", "-e", "--value-format", fmt, "--schema-registry", url)
    assert run.returncode == 0, run.stderr
    read = [json.loads(line)["value"] for line in run.stdout.splitlines()]
    assert n is None or len(read) == n, read
    return read


def cli_write(t, fmt, values, *args, ok=True):
    url = os.environ["KASIO_REGISTRY_URL"]
    run = cli("produce", t, "--value-format", fmt, "--schema-registry", url, *args,
              stdin="".join(json.dumps(v) + "\n" for v in values))
    assert not ok or run.returncode == 0, run.stderr
    return run


def test_cli_protobuf_json_lines_both_ways_beside_confluent_kafka():
    from google.protobuf import json_format
    from confluent_kafka.schema_registry.protobuf import ProtobufDeserializer, ProtobufSerializer
    classes = shop_classes()
    order, line = classes["kasio.lab.Order"], classes["kasio.lab.Order.Line"]
    conf = {"use.deprecated.format": False}
    # confluent-kafka writes an Order (index [1]) and a nested Line ([1, 0]); the CLI
    # prints them in Protobuf's JSON mapping, as json_format does.
    t = cli_topic()
    theirs = [as_message(order, PROTOBUF_VALUES[0][2]), as_message(line, PROTOBUF_VALUES[2][2])]
    peer_write(t, theirs[:1], ProtobufSerializer(order, registry(), conf))
    peer_write(t, theirs[1:], ProtobufSerializer(line, registry(), conf))
    assert cli_read(t, "protobuf", 2) == [json_format.MessageToDict(m) for m in theirs]
    # The CLI writes a Line with the subject's latest schema (confluent-kafka's), then an
    # Order with the .proto text it registers itself; confluent-kafka reads both.
    new_line = {"sku": "c", "qty": 3}
    cli_write(t, "protobuf", [new_line], "--value-message", "Order.Line")
    assert peer_read(t, 3, ProtobufDeserializer(line, conf))[2] == as_message(line, new_line)
    ours = cli_topic()
    values = [{"id": "-9", "item": "caf\u00e9", "lines": [{"sku": "a", "qty": 1}]}, {"item": "only"}]
    cli_write(ours, "protobuf", values, "--value-schema", SHOP_PROTO, "--value-message", "kasio.lab.Order")
    assert peer_read(ours, 2, ProtobufDeserializer(order, conf)) == [as_message(order, v) for v in values]
    assert cli_read(ours, "protobuf", 2) == values
    # JSON the message does not allow is refused, naming the line.
    run = cli_write(ours, "protobuf", [{"id": "x"}], "--value-message", "kasio.lab.Order", ok=False)
    assert run.returncode != 0 and "line 1" in run.stderr and "kasio.lab.Order" in run.stderr, run.stderr
    run = cli_write(ours, "protobuf", [{}], "--value-message", "Nope", ok=False)
    assert run.returncode != 0 and "no message Nope" in run.stderr, run.stderr


# Schemas with references: the writer's schema imports another registered under its own
# subject; confluent-kafka's serializers write with it and the CLI reads it, and the CLI
# writes with the subject's latest version (and its imports) for them to read.
def test_cli_reads_and_writes_avro_json_schema_and_protobuf_with_references():
    from confluent_kafka.schema_registry import Schema, SchemaReference
    from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
    from confluent_kafka.schema_registry.protobuf import ProtobufDeserializer, ProtobufSerializer
    from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message_factory
    sr = registry()
    u = uuid.uuid4().hex[:8]
    use_latest = {"auto.register.schemas": False, "use.latest.version": True}

    # Avro: Order's total is a Money, registered apart.
    money = json.dumps({"type": "record", "name": "Money", "namespace": "kasio.lab", "fields": [
        {"name": "cents", "type": "long"}, {"name": "currency", "type": "string"}]})
    order = json.dumps({"type": "record", "name": "Order", "namespace": "kasio.lab", "fields": [
        {"name": "id", "type": "long"}, {"name": "total", "type": "kasio.lab.Money"},
        {"name": "refund", "type": ["null", "kasio.lab.Money"], "default": None}]})
    sr.register_schema(f"money-{u}", Schema(money, "AVRO"))
    t = cli_topic()
    refs = [SchemaReference("kasio.lab.Money", f"money-{u}", 1)]
    sr.register_schema(f"{t}-value", Schema(order, "AVRO", refs))
    orders = [{"id": 1, "total": {"cents": 250, "currency": "EUR"}, "refund": None},
              {"id": 2, "total": {"cents": 5, "currency": "USD"}, "refund": {"cents": 5, "currency": "USD"}}]
    peer_write(t, orders[:1], AvroSerializer(sr, Schema(order, "AVRO", refs), conf=use_latest))
    cli_write(t, "avro", orders[1:])
    assert cli_read(t, "avro", 2) == orders
    assert peer_read(t, 2, AvroDeserializer(sr)) == orders

    # JSON Schema: a customer's address is a $ref to address.json.
    address = json.dumps({"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]})
    customer = json.dumps({"type": "object", "properties": {"name": {"type": "string"},
                           "address": {"$ref": "address.json"}}, "required": ["name", "address"]})
    sr.register_schema(f"address-{u}", Schema(address, "JSON"))
    t = cli_topic()
    refs = [SchemaReference("address.json", f"address-{u}", 1)]
    sr.register_schema(f"{t}-value", Schema(customer, "JSON", refs))
    customers = [{"name": "Ada", "address": {"city": "London"}}, {"name": "Alan", "address": {"city": "Wilmslow"}}]
    peer_write(t, customers[:1], JSONSerializer(Schema(customer, "JSON", refs), sr, conf=use_latest))
    cli_write(t, "json-schema", customers[1:])
    run = cli_write(t, "json-schema", [{"name": "Bob", "address": {}}], ok=False)
    assert run.returncode != 0 and "at /address" in run.stderr, run.stderr
    assert cli_read(t, "json-schema", 2) == customers
    assert peer_read(t, 2, JSONDeserializer(None, schema_registry_client=sr)) == customers

    # Protobuf: shop_{u}.proto imports money_{u}.proto; confluent-kafka registers the
    # import under its file name and references it.
    field = descriptor_pb2.FieldDescriptorProto
    money_file = descriptor_pb2.FileDescriptorProto(name=f"money_{u}.proto", package="kasio.refs", syntax="proto3")
    m = money_file.message_type.add(name="Money")
    m.field.add(name="cents", number=1, type=field.TYPE_INT64, label=field.LABEL_OPTIONAL)
    m.field.add(name="currency", number=2, type=field.TYPE_STRING, label=field.LABEL_OPTIONAL)
    shop_file = descriptor_pb2.FileDescriptorProto(name=f"shop_{u}.proto", package="kasio.refs", syntax="proto3",
                                                   dependency=[money_file.name])
    o = shop_file.message_type.add(name="Order")
    o.field.add(name="id", number=1, type=field.TYPE_INT64, label=field.LABEL_OPTIONAL)
    o.field.add(name="total", number=2, type=field.TYPE_MESSAGE, label=field.LABEL_OPTIONAL,
                type_name=".kasio.refs.Money")
    pool = descriptor_pool.DescriptorPool()
    pool.Add(money_file)
    pool.Add(shop_file)
    cls = message_factory.GetMessageClass(pool.FindMessageTypeByName("kasio.refs.Order"))
    t = cli_topic()
    conf = {"use.deprecated.format": False}
    theirs = json_format.ParseDict({"id": "3", "total": {"cents": "99", "currency": "EUR"}}, cls())
    peer_write(t, [theirs], ProtobufSerializer(cls, sr, conf))
    latest = sr.get_latest_version(f"{t}-value")
    assert [r.name for r in latest.schema.references] == [money_file.name]
    ours = {"id": "4", "total": {"cents": "1", "currency": "USD"}}
    cli_write(t, "protobuf", [ours])
    assert cli_read(t, "protobuf", 2) == [json_format.MessageToDict(theirs), ours]
    assert peer_read(t, 2, ProtobufDeserializer(cls, conf))[1] == json_format.ParseDict(ours, cls())


# Protobuf and JSON Schema through the broker: kasio's typed producer and consumer (the
# examples' produce and consume) beside confluent-kafka's producer and consumer.
def lab_bootstrap():
    bootstrap = os.environ.get("KASIO_LAB_PLAINTEXT")
    if not bootstrap:
        pytest.fail("KASIO_LAB_PLAINTEXT is not set: start the broker with scripts/kafka up")
    return bootstrap.split(",")[0]


def peer_read(topic, n, deserialize):
    from confluent_kafka import Consumer
    c = Consumer({"bootstrap.servers": lab_bootstrap(), "group.id": f"{topic}-peer",
                  "auto.offset.reset": "earliest"})
    c.subscribe([topic])
    got, deadline = [], time.time() + 60
    while len(got) < n and time.time() < deadline:
        m = c.poll(0.5)
        if m is not None and not m.error():
            got.append(deserialize(m.value(), SerializationContext(topic, MessageField.VALUE)))
    c.close()
    return got


def peer_write(topic, values, serialize):
    from confluent_kafka import Producer
    p = Producer({"bootstrap.servers": lab_bootstrap()})
    for v in values:
        p.produce(topic, partition=0, value=serialize(v, SerializationContext(topic, MessageField.VALUE)))
    assert p.flush(30) == 0


@pytest.mark.parametrize("message,path,value", PROTOBUF_VALUES)
def test_protobuf_both_ways_through_the_broker(message, path, value):
    from confluent_kafka.schema_registry.protobuf import ProtobufDeserializer, ProtobufSerializer
    url = os.environ["KASIO_REGISTRY_URL"]
    cls = shop_classes()[message]
    ours = cli_topic()
    run = kasio("produce", lab_bootstrap(), url, ours, message, json.dumps(value), example=PROTOBUF_EXAMPLE)
    assert peer_read(ours, 1, ProtobufDeserializer(cls, {"use.deprecated.format": False})) == [as_message(cls, value)]
    theirs = cli_topic()
    peer_write(theirs, [as_message(cls, value)], ProtobufSerializer(cls, registry(), {"use.deprecated.format": False}))
    run = kasio("consume", lab_bootstrap(), theirs, message, "1", example=PROTOBUF_EXAMPLE)
    assert json.loads(run.stdout) == as_value(as_message(cls, value), value)


def test_json_schema_both_ways_through_the_broker():
    url = os.environ["KASIO_REGISTRY_URL"]
    ours = cli_topic()
    json_schema_kasio("produce", lab_bootstrap(), url, ours, SCHEMA, *map(json.dumps, VALUES))
    de = JSONDeserializer(SCHEMA, schema_registry_client=registry())
    assert peer_read(ours, len(VALUES), de) == VALUES
    theirs = cli_topic()
    peer_write(theirs, VALUES, JSONSerializer(SCHEMA, registry()))
    run = json_schema_kasio("consume", lab_bootstrap(), url, theirs, str(len(VALUES)))
    assert [json.loads(line) for line in run.stdout.splitlines()] == VALUES
