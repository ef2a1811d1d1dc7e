"""Real peer clients against kasio-mock over TCP: librdkafka (confluent-kafka) and
kafka-python produce to it and consume back, every message checked (count, order per
partition, keys, headers); librdkafka and kafka-python also consume in a classic consumer
group, committing, and a later member resumes from the commits."""

import subprocess
import time
import uuid
from pathlib import Path

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

ROOT = Path(__file__).resolve().parents[2]


class Mock:
    """The kasio-mock binary: its bootstrap address, and its fault commands on stdin."""

    def __init__(self, brokers, users=()):
        subprocess.run(["cargo", "build", "-q", "-p", "kasio-mock", "--bin", "kasio-mock"], cwd=ROOT, check=True)
        self.proc = subprocess.Popen([str(ROOT / "target/debug/kasio-mock"), str(brokers), *users],
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


def test_librdkafka_rides_out_a_broker_restart_and_a_half_closed_connection():
    """A broker stopped (its partitions leaderless) and started again with its data, then
    every connection to another broker half-closed: librdkafka's idempotent producer
    delivers every record once, in order per partition."""
    m = Mock(3)
    try:
        name = create(m.bootstrap, 3)
        p = Producer({"bootstrap.servers": m.bootstrap, "enable.idempotence": True, "linger.ms": 2,
                      "message.timeout.ms": 60000, "retry.backoff.ms": 50, "request.timeout.ms": 3000,
                      "socket.timeout.ms": 3000})
        n = 3000
        errors = []
        for i in range(n):
            if i == 1000:
                m.command("stop 2")
            if i == 1500:
                time.sleep(2)
                m.command("start 2")
            if i == 2000:
                m.command("halfclose 3")
            p.produce(name, key=f"k{i % 30}", value=str(i),
                      on_delivery=lambda err, msg: errors.append(err) if err else None)
            p.poll(0)
        assert p.flush(60) == 0
        assert errors == []
        got = consume_all(m.bootstrap, name, 3, n)
        values = [int(msg.value()) for msgs in got.values() for msg in msgs]
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


def group_read(bootstrap, name, group, expected, members=2):
    """`members` librdkafka consumers in one classic group read the topic together,
    committing as they go; returns what each read."""
    consumers = [Consumer({"bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "earliest",
                           "enable.auto.commit": False, "session.timeout.ms": 6000,
                           "heartbeat.interval.ms": 500}) for _ in range(members)]
    for c in consumers:
        c.subscribe([name])
    got = [[] for _ in consumers]
    deadline = time.time() + 90
    while sum(len(g) for g in got) < expected and time.time() < deadline:
        for i, c in enumerate(consumers):
            m = c.poll(0.1)
            if m is None or m.error():
                continue
            got[i].append(m)
            c.commit(m, asynchronous=False)
    for c in consumers:
        c.close()
    return got


def test_librdkafka_consumes_in_a_group_and_commits(mock):
    name = create(mock, 6)
    p = Producer({"bootstrap.servers": mock, "linger.ms": 5})
    # Each record is committed on its own (so a rebalance repeats nothing): a few hundred.
    for i in range(600):
        p.produce(name, key=f"k{i % 30}", value=f"v{i}", headers=[("seq", str(i).encode())])
    assert p.flush(30) == 0
    group = f"g-{uuid.uuid4().hex[:6]}"
    got = group_read(mock, name, group, 600)
    everything = [m for g in got for m in g]
    assert sorted(int(m.value()[1:]) for m in everything) == list(range(600)), "each record once"
    for m in everything:
        seq = int(dict(m.headers())["seq"])
        assert m.key() == f"k{seq % 30}".encode() and m.value() == f"v{seq}".encode()
    for member in got:
        by_partition = {}
        for m in member:
            by_partition.setdefault(m.partition(), []).append(m.offset())
        assert all(offs == sorted(offs) for offs in by_partition.values()), "per-partition order"
    assert all(got), "both members read part of the stream"
    # The commits hold: the group starts where it stopped.
    for i in range(600, 700):
        p.produce(name, key=f"k{i % 30}", value=f"v{i}", headers=[("seq", str(i).encode())])
    assert p.flush(30) == 0
    rest = [m for g in group_read(mock, name, group, 100, members=1) for m in g]
    assert sorted(int(m.value()[1:]) for m in rest) == list(range(600, 700))


def test_kafka_python_consumes_in_a_group(mock):
    from kafka import KafkaConsumer, KafkaProducer
    name = create(mock, 3)
    p = KafkaProducer(bootstrap_servers=mock)
    for i in range(600):
        p.send(name, key=f"k{i}".encode(), value=f"v{i}".encode())
    p.flush(30)
    p.close()
    c = KafkaConsumer(name, bootstrap_servers=mock, group_id=f"kp-{uuid.uuid4().hex[:6]}",
                      auto_offset_reset="earliest", enable_auto_commit=False, consumer_timeout_ms=15000)
    got = []
    for m in c:
        got.append(m)
        if len(got) == 600:
            break
    c.commit()
    committed = sum(c.committed(tp) or 0 for tp in c.assignment())
    c.close()
    assert sorted(int(m.value[1:]) for m in got) == list(range(600))
    assert committed == 600


def test_librdkafka_runs_transactions_and_read_committed_sees_only_commits(mock):
    """A transactional librdkafka producer commits, aborts, and commits again with a group's
    offsets in the transaction: a read_committed consumer reads exactly the committed
    records, read_uncommitted every record, and the offsets land only with the commit."""
    name = create(mock, 2)
    group = f"txn-{uuid.uuid4().hex[:6]}"
    p = Producer({"bootstrap.servers": mock, "transactional.id": f"tx-{uuid.uuid4().hex[:6]}",
                  "linger.ms": 2})
    p.init_transactions(30)
    p.begin_transaction()
    for i in range(100):
        p.produce(name, key=f"k{i}", value=f"committed-{i}")
    p.commit_transaction(30)
    p.begin_transaction()
    for i in range(50):
        p.produce(name, key=f"k{i}", value=f"aborted-{i}")
    p.flush(30)
    p.abort_transaction(30)
    # Offsets sent in a transaction: held until it commits.
    c = Consumer({"bootstrap.servers": mock, "group.id": group, "enable.auto.commit": False})
    p.begin_transaction()
    for i in range(30):
        p.produce(name, key=f"x{i}", value=f"committed-late-{i}")
    p.send_offsets_to_transaction([TopicPartition(name, 0, 7)], c.consumer_group_metadata(), 30)
    p.commit_transaction(30)
    committed = c.committed([TopicPartition(name, 0)], 10)
    c.close()
    assert committed[0].offset == 7

    def read(isolation, expected):
        r = Consumer({"bootstrap.servers": mock, "group.id": "unused", "isolation.level": isolation,
                      "enable.auto.commit": False})
        r.assign([TopicPartition(name, part, OFFSET_BEGINNING) for part in range(2)])
        values = []
        deadline = time.time() + 20
        while time.time() < deadline and len(values) < expected:
            m = r.poll(0.5)
            if m is not None and not m.error():
                values.append(m.value().decode())
        # Nothing more should come.
        extra = r.poll(1.0)
        r.close()
        if extra is not None and not extra.error():
            values.append(extra.value().decode())
        return values

    committed_only = read("read_committed", 130)
    assert len(committed_only) == 130, len(committed_only)
    assert not any(v.startswith("aborted") for v in committed_only)
    everything = read("read_uncommitted", 180)
    assert len(everything) == 180 and sum(v.startswith("aborted") for v in everything) == 50


def test_librdkafka_authenticates_with_sasl_against_the_mock():
    """The mock as a SASL listener: librdkafka logs in with PLAIN, SCRAM-SHA-256 and
    SCRAM-SHA-512 and round-trips records; a wrong password is refused."""
    m = Mock(2, ["alice:alice-secret"])
    try:
        name = create_sasl(m.bootstrap, "PLAIN", "alice-secret")
        for mechanism in ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"):
            conf = {"bootstrap.servers": m.bootstrap, "security.protocol": "SASL_PLAINTEXT",
                    "sasl.mechanism": mechanism, "sasl.username": "alice", "sasl.password": "alice-secret"}
            p = Producer(conf)
            for i in range(100):
                p.produce(name, value=f"{mechanism}-{i}")
            assert p.flush(30) == 0, mechanism
        c = Consumer({"bootstrap.servers": m.bootstrap, "security.protocol": "SASL_PLAINTEXT",
                      "sasl.mechanism": "SCRAM-SHA-512", "sasl.username": "alice",
                      "sasl.password": "alice-secret", "group.id": "unused", "enable.auto.commit": False})
        c.assign([TopicPartition(name, 0, OFFSET_BEGINNING)])
        got = []
        deadline = time.time() + 30
        while len(got) < 300 and time.time() < deadline:
            msg = c.poll(0.5)
            if msg is not None and not msg.error():
                got.append(msg.value().decode())
        c.close()
        assert len(got) == 300
        bad = AdminClient({"bootstrap.servers": m.bootstrap, "security.protocol": "SASL_PLAINTEXT",
                           "sasl.mechanism": "SCRAM-SHA-256", "sasl.username": "alice",
                           "sasl.password": "wrong", "log_level": 0})
        with pytest.raises(Exception):
            bad.list_topics(timeout=5)
    finally:
        m.stop()


def create_sasl(bootstrap, mechanism, password):
    name = f"mock-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": bootstrap, "security.protocol": "SASL_PLAINTEXT",
                         "sasl.mechanism": mechanism, "sasl.username": "alice", "sasl.password": password})
    for f in admin.create_topics([NewTopic(name, num_partitions=1, replication_factor=1)]).values():
        f.result(10)
    return name


def test_librdkafka_sees_throttling_refused_connections_and_lost_responses():
    m = Mock(1)
    try:
        name = create(m.bootstrap, 1)
        throttled = []
        p = Producer({"bootstrap.servers": m.bootstrap, "enable.idempotence": True, "linger.ms": 2,
                      "request.timeout.ms": 2000, "message.timeout.ms": 60000,
                      "throttle_cb": lambda ev: throttled.append(ev.throttle_time)})
        # Throttled: librdkafka reports the broker's throttle time.
        m.command("throttle Produce 1 400")
        p.produce(name, value=b"throttled")
        assert p.flush(30) == 0
        for _ in range(10):
            p.poll(0.1)
        assert throttled and abs(throttled[0] - 0.4) < 0.01, throttled
        # Refused: new connections fail until the broker accepts again; nothing is lost.
        m.command("refuse 1")
        m.command("drop 1")
        for i in range(50):
            p.produce(name, value=f"during-{i}".encode())
        p.poll(1.0)
        m.command("accept 1")
        assert p.flush(30) == 0
        # A lost response: the request was carried out but never answered. librdkafka does
        # not send it again; it reports the records timed out once message.timeout.ms
        # passes (they are in the log all the same, once: the "unknown outcome" case).
        lost = Producer({"bootstrap.servers": m.bootstrap, "enable.idempotence": True, "linger.ms": 2,
                         "request.timeout.ms": 1000, "message.timeout.ms": 3000})
        lost.produce(name, value=b"warm")
        assert lost.flush(10) == 0
        m.command("blackhole Produce 1")
        errors = []
        for i in range(20):
            lost.produce(name, value=f"lost-{i}".encode(), on_delivery=lambda err, msg: errors.append(err))
        assert lost.flush(30) == 0
        assert len(errors) == 20 and all(e is not None and e.code() == KafkaError._MSG_TIMED_OUT for e in errors)
        got = consume_all(m.bootstrap, name, 1, 72)
        values = [msg.value().decode() for msgs in got.values() for msg in msgs]
        assert sorted(values) == sorted(["throttled", "warm"] + [f"during-{i}" for i in range(50)]
                                        + [f"lost-{i}" for i in range(20)])
    finally:
        m.stop()


def test_kafka_python_runs_transactions_and_reads_committed(mock):
    from kafka import KafkaConsumer, KafkaProducer
    from kafka.structs import TopicPartition as KTopicPartition
    name = create(mock, 2)
    p = KafkaProducer(bootstrap_servers=mock, transactional_id=f"kp-tx-{uuid.uuid4().hex[:6]}")
    p.init_transactions()
    p.begin_transaction()
    for i in range(40):
        p.send(name, key=f"k{i}".encode(), value=f"committed-{i}".encode())
    p.commit_transaction()
    p.begin_transaction()
    for i in range(25):
        p.send(name, key=f"k{i}".encode(), value=f"aborted-{i}".encode())
    p.flush()
    p.abort_transaction()
    p.close()
    c = KafkaConsumer(bootstrap_servers=mock, isolation_level="read_committed", enable_auto_commit=False,
                      consumer_timeout_ms=5000, auto_offset_reset="earliest")
    c.assign([KTopicPartition(name, 0), KTopicPartition(name, 1)])
    c.seek_to_beginning()
    values = [m.value.decode() for m in c]
    c.close()
    assert sorted(values) == sorted(f"committed-{i}" for i in range(40)), values[:5]
