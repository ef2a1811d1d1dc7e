"""kasio's tokio producer against the real broker: 1,000,000 keyed records over 12
partitions for each codec, acks=all and idempotent, read back by librdkafka
(confluent-kafka). Every record once, per-partition order kept, keys, headers and
timestamps intact, and every key on the partition the Java client picks (murmur2).
Run by scripts/test with the lab up; scripts/test builds the example first."""

import json
import os
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from kafka.partitioner.default import murmur2

ROOT = Path(__file__).resolve().parents[2]
PRODUCER = ROOT / "target" / "release" / "examples" / "async_producer"
COUNT = int(os.environ.get("KASIO_LAB_RECORDS", "1000000"))
KEYS = 10_000
PARTITIONS = 12


def bootstrap():
    addr = os.environ.get("KASIO_LAB_PLAINTEXT")
    if not addr:
        pytest.fail("KASIO_LAB_PLAINTEXT is not set: start the lab with scripts/kafka up")
    return addr


def create_topic(name):
    admin = AdminClient({"bootstrap.servers": bootstrap()})
    fs = admin.create_topics([NewTopic(name, PARTITIONS, 1)])
    fs[name].result(30)


def java_partition(key: bytes) -> int:
    return (murmur2(key) & 0x7FFFFFFF) % PARTITIONS


@pytest.mark.parametrize("codec", ["none", "gzip", "snappy", "lz4", "zstd"])
def test_million_keyed_records_per_codec(codec):
    assert PRODUCER.exists(), f"build it first: cargo build --release -p kasio --all-features --examples ({PRODUCER})"
    name = f"kasio-produce-{codec}-{uuid.uuid4().hex[:6]}"
    create_topic(name)
    started_ms = int(time.time() * 1000)
    run = subprocess.run(
        [str(PRODUCER), "--bootstrap", bootstrap(), "--topic", name, "--count", str(COUNT),
         "--keys", str(KEYS), "--size", "100", "--compression", codec,
         "-X", "acks=all", "-X", "enable.idempotence=true"],
        capture_output=True, text=True, timeout=300,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    summary = json.loads(run.stdout.strip().splitlines()[-1])
    assert summary["records"] == COUNT and summary["failed"] == 0
    finished_ms = int(time.time() * 1000)
    print(f"{codec}: {summary['records_per_second']:.0f} records/s")

    expected = {k: java_partition(f"key-{k}".encode()) for k in range(KEYS)}
    seen = bytearray(COUNT)
    last = [-1] * PARTITIONS
    c = Consumer({"bootstrap.servers": bootstrap(), "group.id": f"verify-{name}",
                  "enable.auto.commit": False, "auto.offset.reset": "earliest",
                  "isolation.level": "read_committed"})
    c.assign([TopicPartition(name, p, 0) for p in range(PARTITIONS)])
    got = 0
    deadline = time.time() + 240
    while got < COUNT and time.time() < deadline:
        for m in c.consume(10_000, 1.0):
            assert m.error() is None, m.error()
            i = int(m.value().split(b".", 1)[0])
            assert len(m.value()) == 100
            assert not seen[i], f"record {i} read twice"
            seen[i] = 1
            p = m.partition()
            assert i > last[p], f"partition {p}: record {i} after {last[p]}"
            last[p] = i
            assert m.key() == f"key-{i % KEYS}".encode()
            assert p == expected[i % KEYS], f"key-{i % KEYS} on {p}, Java picks {expected[i % KEYS]}"
            assert m.headers() == [("i", str(i).encode())]
            ts_type, ts = m.timestamp()
            assert ts_type == 1 and started_ms - 1000 <= ts <= finished_ms + 1000, ts
            got += 1
    c.close()
    assert got == COUNT, f"read {got} of {COUNT}"
    assert all(seen)
