"""kasio's blocking examples (kasio-blocking: threads and std::net) against the real
broker, checked by librdkafka (confluent-kafka): what `blocking_producer` writes the peer
reads back, what the peer writes `blocking_consumer` prints, and `blocking_admin_demo`
tours the admin API. Runs the release builds, which scripts/test makes before the lab."""

import os
import subprocess
import uuid
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "target" / "release" / "examples"


def bootstrap():
    addr = os.environ.get("KASIO_LAB_PLAINTEXT")
    if not addr:
        pytest.fail("KASIO_LAB_PLAINTEXT is not set: start the lab with scripts/kafka up")
    return addr


def example(name):
    path = EXAMPLES / name
    assert path.exists(), f"build it first: cargo build --release -p kasio --all-features --examples ({path})"
    return str(path)


def topic(partitions):
    name = f"blocking-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": bootstrap()})
    admin.create_topics([NewTopic(name, partitions, 1)])[name].result(30)
    return name


def test_what_the_blocking_producer_writes_librdkafka_reads():
    t = topic(1)
    run = subprocess.run([example("blocking_producer"), bootstrap(), t],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr[-2000:]
    assert [line.split(" -> ")[0] for line in run.stdout.splitlines()] == [f"key-{i}" for i in range(10)]
    peer = Consumer({"bootstrap.servers": bootstrap(), "group.id": f"g-{t}", "enable.auto.commit": False})
    peer.assign([TopicPartition(t, 0, 0)])
    got = []
    while len(got) < 10:
        m = peer.poll(10)
        assert m is not None, f"librdkafka read only {len(got)} records"
        assert m.error() is None, m.error()
        got.append((m.key().decode(), m.value().decode()))
    peer.close()
    assert got == [(f"key-{i}", f"hello {i}") for i in range(10)]


def test_the_blocking_consumer_prints_what_librdkafka_wrote():
    t = topic(3)
    # Idempotent, so the peer's retries (a new topic's leader is not always ready for its
    # first requests) cannot reorder what it writes, which the check below relies on.
    peer = Producer({"bootstrap.servers": bootstrap(), "enable.idempotence": True})
    for i in range(3000):
        peer.produce(t, key=f"k{i}", value=f"v{i}", partition=i % 3)
    peer.flush(30)
    run = subprocess.run([example("blocking_consumer"), bootstrap(), t, "3"],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr[-2000:]
    rows = [line.split(" ", 3) for line in run.stdout.splitlines()]
    assert len(rows) == 3000
    for p in range(3):
        mine = [(int(o), k, v) for (pp, o, k, v) in rows if int(pp) == p]
        assert mine == [(n, f"k{i}", f"v{i}") for n, i in enumerate(range(p, 3000, 3))]


def test_the_blocking_admin_demo_runs_against_kafka():
    run = subprocess.run([example("blocking_admin_demo")], env={**os.environ, "KASIO_BOOTSTRAP": bootstrap()},
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "config retention.ms = Some(\"3600000\")" in run.stdout
    assert "after reset to latest, total lag 0" in run.stdout
