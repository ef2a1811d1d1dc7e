"""Real peer clients against kasio-mock over TCP: librdkafka (confluent-kafka) and
kafka-python produce to it and consume back, every message checked (count, order per
partition, keys, headers). Groups, transactions and idempotence come with the APIs that
serve them; the consumers here assign partitions."""

import subprocess
import time
import uuid
from pathlib import Path

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

ROOT = Path(__file__).resolve().parents[2]


class Mock:
    """The kasio-mock binary: its bootstrap address, and its fault commands on stdin."""

    def __init__(self, brokers):
        subprocess.run(["cargo", "build", "-q", "-p", "kasio-mock", "--bin", "kasio-mock"], cwd=ROOT, check=True)
        self.proc = subprocess.Popen([str(ROOT / "target/debug/kasio-mock"), str(brokers)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.bootstrap = self.proc.stdout.readline().strip()
        assert self.bootstrap, "kasio-mock printed no address"

    def command(self, line):
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        answer = self.proc.stdout.readline().strip()
        assert answer == "ok", f"{line}: {answer}"

    def stop(self):
        self.proc.stdin.close()
        self.proc.wait(10)


@pytest.fixture(scope="module", params=[1, 3], ids=["1-broker", "3-brokers"])
def mock_cluster(request):
    m = Mock(request.param)
    yield m
    m.stop()


@pytest.fixture
def mock(mock_cluster):
    return mock_cluster.bootstrap


def create(bootstrap, partitions):
    name = f"mock-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for f in admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)]).values():
        f.result(10)
    return name


def consume_all(bootstrap, name, partitions, expected):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "unused", "enable.auto.commit": False})
    c.assign([TopicPartition(name, p, OFFSET_BEGINNING) for p in range(partitions)])
    got = {}
    deadline = time.time() + 60
    while sum(len(v) for v in got.values()) < expected and time.time() < deadline:
        m = c.poll(1.0)
        if m is None:
            continue
        assert not m.error(), m.error()
        got.setdefault(m.partition(), []).append(m)
    c.close()
    return got


def test_librdkafka_produces_and_consumes_every_record(mock):
    name = create(mock, 6)
    p = Producer({"bootstrap.servers": mock, "acks": "all", "linger.ms": 5, "compression.type": "lz4"})
    n = 5000
    for i in range(n):
        p.produce(name, key=f"key-{i % 50}", value=f"value-{i}", headers=[("seq", str(i).encode())])
    assert p.flush(30) == 0
    got = consume_all(mock, name, 6, n)
    assert sum(len(v) for v in got.values()) == n
    for partition, msgs in got.items():
        seqs = [int(dict(m.headers())["seq"]) for m in msgs]
        assert seqs == sorted(seqs), f"partition {partition} out of order"
        assert [m.offset() for m in msgs] == list(range(len(msgs)))
        for m in msgs:
            i = int(dict(m.headers())["seq"])
            assert (m.key(), m.value()) == (f"key-{i % 50}".encode(), f"value-{i}".encode())
    # librdkafka's partitioner put each key on one partition.
    by_key = {}
    for partition, msgs in got.items():
        for m in msgs:
            by_key.setdefault(m.key(), set()).add(partition)
    assert all(len(ps) == 1 for ps in by_key.values())


def test_kafka_python_round_trips(mock):
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition as KTP
    name = create(mock, 1)
    # Idempotence needs InitProducerId, which the mock does not serve yet.
    p = KafkaProducer(bootstrap_servers=mock, acks="all", compression_type="gzip", enable_idempotence=False)
    for i in range(500):
        p.send(name, key=f"k{i}".encode(), value=f"v{i}".encode(), headers=[("h", str(i).encode())])
    p.flush(30)
    p.close()
    c = KafkaConsumer(bootstrap_servers=mock, consumer_timeout_ms=5000, enable_auto_commit=False)
    c.assign([KTP(name, 0)])
    c.seek_to_beginning()
    got = [(m.offset, m.key.decode(), m.value.decode(), m.headers[0][1].decode()) for m in c]
    c.close()
    assert got == [(i, f"k{i}", f"v{i}", str(i)) for i in range(500)]


def test_librdkafka_delivers_exactly_once_through_injected_faults():
    # Leader errors, a dropped connection, slow responses and a leader move, with
    # idempotence on: every record arrives once, in order per partition. (A lost response is
    # covered by the model tests: librdkafka fails such messages once message.timeout.ms
    # passes rather than retrying them.)
    m = Mock(3)
    try:
        name = create(m.bootstrap, 3)
        p = Producer({"bootstrap.servers": m.bootstrap, "enable.idempotence": True, "linger.ms": 2,
                      "message.timeout.ms": 60000, "retry.backoff.ms": 50})
        n = 6000
        faults = {1000: "fail Produce 3 NOT_LEADER_OR_FOLLOWER", 2000: "drop 1", 3000: "delay Produce 2 300",
                  4000: "fail Produce 2 NOT_ENOUGH_REPLICAS", 5000: f"move {name} 0 3"}
        errors = []
        for i in range(n):
            if i in faults:
                m.command(faults[i])
            p.produce(name, key=f"k{i % 30}", value=str(i),
                      on_delivery=lambda err, msg: errors.append(err) if err else None)
            p.poll(0)
        assert p.flush(60) == 0
        assert errors == []
        got = consume_all(m.bootstrap, name, 3, n)
        values = [int(msg.value()) for msgs in got.values() for msg in msgs]
        assert len(values) == n, f"{len(values)} records for {n} produced"
        assert sorted(values) == list(range(n)), "lost or duplicated records"
        for msgs in got.values():
            seq = [int(msg.value()) for msg in msgs]
            assert seq == sorted(seq), "a partition is out of order"
    finally:
        m.stop()


def test_admin_operations_through_librdkafka(mock):
    from confluent_kafka.admin import NewPartitions
    admin = AdminClient({"bootstrap.servers": mock})
    name = create(mock, 2)
    for f in admin.create_partitions([NewPartitions(name, 5)]).values():
        f.result(10)
    assert len(admin.list_topics(name, timeout=10).topics[name].partitions) == 5
    cluster = admin.describe_cluster().result(10)
    assert cluster.cluster_id == "kasio-mock" and len(cluster.nodes) >= 1
    for f in admin.delete_topics([name]).values():
        f.result(10)
    assert name not in admin.list_topics(timeout=10).topics
