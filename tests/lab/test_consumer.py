"""kasio's tokio consumer against the real broker, reading what librdkafka
(confluent-kafka) wrote: every record in per-partition order, and with read_committed
only committed transactions. Runs the release build of the `simple_consumer` example,
which scripts/test builds before the lab."""

import os
import subprocess
import uuid
from pathlib import Path

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

ROOT = Path(__file__).resolve().parents[2]
CONSUMER = ROOT / "target" / "release" / "examples" / "simple_consumer"


def bootstrap():
    addr = os.environ.get("KASIO_LAB_PLAINTEXT")
    if not addr:
        pytest.fail("KASIO_LAB_PLAINTEXT is not set: start the lab with scripts/kafka up")
    return addr


def create_topic(name, partitions):
    admin = AdminClient({"bootstrap.servers": bootstrap()})
    admin.create_topics([NewTopic(name, partitions, 1)])[name].result(30)


def kasio_read(topic, partitions, isolation="read_uncommitted"):
    assert CONSUMER.exists(), f"build it first: cargo build --release -p kasio --all-features --examples ({CONSUMER})"
    run = subprocess.run([str(CONSUMER), bootstrap(), topic, str(partitions), isolation],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    rows = []
    for line in run.stdout.splitlines():
        p, offset, key, value = line.split(" ", 3)
        rows.append((int(p), int(offset), key, value))
    return rows


def test_reads_every_record_librdkafka_wrote_in_order():
    name = f"kasio-consume-{uuid.uuid4().hex[:6]}"
    create_topic(name, 3)
    produced = {0: [], 1: [], 2: []}

    def on_delivery(err, msg):
        assert err is None, err
        produced[msg.partition()].append((msg.offset(), msg.key().decode(), msg.value().decode()))

    p = Producer({"bootstrap.servers": bootstrap(), "enable.idempotence": True,
                  "compression.type": "lz4", "linger.ms": 5})
    for i in range(30_000):
        p.produce(name, key=f"k{i % 50}", value=f"v{i}", on_delivery=on_delivery)
        if i % 10_000 == 0:
            p.poll(0)
    assert p.flush(60) == 0
    rows = kasio_read(name, 3)
    assert len(rows) == 30_000
    for part in range(3):
        mine = [(o, k, v) for (q, o, k, v) in rows if q == part]
        assert mine == sorted(produced[part]), f"partition {part}"


def test_read_committed_and_uncommitted_views():
    name = f"kasio-txn-{uuid.uuid4().hex[:6]}"
    create_topic(name, 1)
    p = Producer({"bootstrap.servers": bootstrap(), "transactional.id": f"tx-{name}"})
    p.init_transactions(30)
    for txn, commit in (("c1", True), ("a1", False), ("c2", True), ("a2", False), ("c3", True)):
        p.begin_transaction()
        for i in range(100):
            p.produce(name, key="k", value=f"{txn}-{i}")
        # Written before the abort: librdkafka drops what is still queued when it aborts.
        assert p.flush(30) == 0
        if commit:
            p.commit_transaction(30)
        else:
            p.abort_transaction(30)
    committed = [v for (_, _, _, v) in kasio_read(name, 1, "read_committed")]
    assert committed == [f"{t}-{i}" for t in ("c1", "c2", "c3") for i in range(100)]
    everything = [v for (_, _, _, v) in kasio_read(name, 1, "read_uncommitted")]
    assert everything == [f"{t}-{i}" for t in ("c1", "a1", "c2", "a2", "c3") for i in range(100)]


def test_commits_are_what_librdkafka_sees_and_where_kasio_resumes():
    from confluent_kafka import Consumer, TopicPartition

    name = f"kasio-commit-{uuid.uuid4().hex[:6]}"
    group = f"kasio-group-{uuid.uuid4().hex[:6]}"
    create_topic(name, 2)
    p = Producer({"bootstrap.servers": bootstrap(), "enable.idempotence": True})
    for i in range(1000):
        p.produce(name, key=f"k{i % 7}", value=f"v{i}")
    assert p.flush(30) == 0
    first = kasio_read_group(name, 2, group)
    assert len(first) == 1000
    c = Consumer({"bootstrap.servers": bootstrap(), "group.id": group, "enable.auto.commit": False})
    committed = c.committed([TopicPartition(name, 0), TopicPartition(name, 1)], timeout=30)
    c.close()
    ends = {q: max(o for (pp, o, _, _) in first if pp == q) + 1 for q in (0, 1)}
    assert {tp.partition: tp.offset for tp in committed} == ends
    for i in range(1000, 1100):
        p.produce(name, key=f"k{i % 7}", value=f"v{i}")
    assert p.flush(30) == 0
    second = kasio_read_group(name, 2, group)
    assert sorted(v for (_, _, _, v) in second) == sorted(f"v{i}" for i in range(1000, 1100))


def kasio_read_group(topic, partitions, group):
    assert CONSUMER.exists()
    run = subprocess.run([str(CONSUMER), bootstrap(), topic, str(partitions), "read_uncommitted", group],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    rows = []
    for line in run.stdout.splitlines():
        p, offset, key, value = line.split(" ", 3)
        rows.append((int(p), int(offset), key, value))
    return rows
