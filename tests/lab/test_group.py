"""kasio consumers in a consumer group on the real broker (KIP-848, the `consumer` group
protocol): two members share the partitions, giving up what the coordinator moves only
after committing it, so together they read every record exactly once; the group's
commits are what librdkafka sees; a later member resumes from them. Runs the release
build of the `group_consumer` example, which scripts/test builds before the lab."""

import os
import subprocess
import tempfile
import uuid
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

ROOT = Path(__file__).resolve().parents[2]
MEMBER = ROOT / "target" / "release" / "examples" / "group_consumer"
PARTITIONS = 6


def bootstrap():
    addr = os.environ.get("KASIO_LAB_PLAINTEXT")
    if not addr:
        pytest.fail("KASIO_LAB_PLAINTEXT is not set: start the lab with scripts/kafka up")
    return addr


def produce(topic, start, end):
    p = Producer({"bootstrap.servers": bootstrap(), "linger.ms": 5,
                  "queue.buffering.max.messages": 1_000_000})
    for i in range(start, end):
        p.produce(topic, key=f"k{i % 13}", value=f"v{i}")
        if i % 10_000 == 0:
            p.poll(0)
    assert p.flush(60) == 0


def member(topic, group):
    """Starts a member writing to files: with pipes, a member whose output nobody reads
    would block, miss heartbeats and be expired from the group (and rightly so)."""
    assert MEMBER.exists(), f"build it first: cargo build --release -p kasio-tokio --examples ({MEMBER})"
    out = tempfile.TemporaryFile(mode="w+")
    err = tempfile.TemporaryFile(mode="w+")
    # Idle longer than two heartbeat intervals (5 s each): partitions a member gives up
    # reach the others at their next heartbeats.
    proc = subprocess.Popen([str(MEMBER), bootstrap(), topic, group, "12000"],
                            stdout=out, stderr=err, text=True)
    return proc, out, err


def finish(member):
    proc, out, err = member
    proc.wait(timeout=120)
    out.seek(0)
    err.seek(0)
    stdout, stderr = out.read(), err.read()
    assert proc.returncode == 0, stderr[-2000:]
    return [line.split(" ", 3) for line in stdout.splitlines()], stderr


def test_two_members_share_a_topic_exactly_once_and_a_third_resumes():
    topic = f"kasio-group-{uuid.uuid4().hex[:6]}"
    group = f"kasio-members-{uuid.uuid4().hex[:6]}"
    admin = AdminClient({"bootstrap.servers": bootstrap()})
    admin.create_topics([NewTopic(topic, PARTITIONS, 1)])[topic].result(30)
    produce(topic, 0, 300_000)

    a, b = member(topic, group), member(topic, group)
    (rows_a, err_a), (rows_b, err_b) = finish(a), finish(b)
    assert "assigned" in err_a and "assigned" in err_b, (err_a, err_b)
    values = [r[3] for r in rows_a + rows_b]
    assert len(values) == 300_000, ("every record once: none lost, none read twice", err_a, err_b)
    assert set(values) == {f"v{i}" for i in range(300_000)}
    for rows in (rows_a, rows_b):
        for part in range(PARTITIONS):
            offsets = [int(r[1]) for r in rows if int(r[0]) == part]
            assert offsets == sorted(offsets), f"partition {part} in order"

    c = Consumer({"bootstrap.servers": bootstrap(), "group.id": group})
    ends = {}
    for part in range(PARTITIONS):
        _, high = c.get_watermark_offsets(TopicPartition(topic, part), timeout=30)
        ends[part] = high
    committed = c.committed([TopicPartition(topic, q) for q in range(PARTITIONS)], timeout=30)
    c.close()
    assert {tp.partition: tp.offset for tp in committed} == ends

    produce(topic, 300_000, 300_100)
    rows_c, _ = finish(member(topic, group))
    assert sorted(r[3] for r in rows_c) == sorted(f"v{i}" for i in range(300_000, 300_100))
