"""The tour examples, a first user's program (admin, produce, group consume with awaited
commits, pause and resume, every record checked and the group's committed offsets
summed) on tokio, smol and threads, and `hand_loop` (kasio's core driven by a loop of its
own over mio, no async runtime), against the real broker; what `hand_loop` wrote is read
back by librdkafka too. Runs the release builds, which scripts/test makes before the lab."""

import os
import subprocess
from pathlib import Path

import uuid

import pytest
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "target" / "release" / "examples"


def bootstrap():
    addr = os.environ.get("KASIO_LAB_PLAINTEXT")
    if not addr:
        pytest.fail("KASIO_LAB_PLAINTEXT is not set: start the lab with scripts/kafka up")
    return addr


@pytest.mark.parametrize("name", ["tour", "tour_smol", "tour_blocking"])
def test_the_tour_runs_on_every_runtime(name):
    path = EXAMPLES / name
    assert path.exists(), f"build it first: cargo build --release -p kasio --all-features --examples ({path})"
    run = subprocess.run([str(path), "100000"], env={**os.environ, "KASIO_BOOTSTRAP": bootstrap()},
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "100000 records produced and read exactly once, all committed" in run.stdout, run.stdout


def test_hand_loop_drives_the_core_against_the_broker():
    path = EXAMPLES / "hand_loop"
    assert path.exists(), f"build it first: cargo build --release -p kasio --all-features --examples ({path})"
    topic = f"hand-loop-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": bootstrap()})
    admin.create_topics([NewTopic(topic, 3, 1)])[topic].result(30)
    run = subprocess.run([str(path), topic, "3", "100000"], env={**os.environ, "KASIO_BOOTSTRAP": bootstrap()},
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "100000 records produced and read back, each once" in run.stdout, run.stdout
    # The peer reads the same records.
    c = Consumer({"bootstrap.servers": bootstrap(), "group.id": f"peer-{topic}", "enable.auto.commit": False})
    c.assign([TopicPartition(topic, p, 0) for p in range(3)])
    values = set()
    while len(values) < 100000:
        msgs = c.consume(10000, timeout=10)
        assert msgs, f"librdkafka read {len(values)} of 100000"
        for m in msgs:
            assert m.error() is None, m.error()
            values.add(int(m.value()))
    c.close()
    assert values == set(range(100000))
    admin.delete_topics([topic])[topic].result(30)
