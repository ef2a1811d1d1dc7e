"""kasio's transactional producer against the real broker (KIP-890's second transaction
protocol, or the first when the lab is formatted with KASIO_LAB_TRANSACTION_VERSION=1),
judged by librdkafka (confluent-kafka) reading with isolation.level=read_committed: committed transactions are
seen whole on both topics, aborted ones never; read_uncommitted sees both. A second
producer with the same transactional.id fences the first. Runs the release build of the
`transactional_producer` example, which scripts/test builds before the lab."""

import os
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

ROOT = Path(__file__).resolve().parents[2]
PRODUCER = ROOT / "target" / "release" / "examples" / "transactional_producer"


def bootstrap():
    addr = os.environ.get("KASIO_LAB_PLAINTEXT")
    if not addr:
        pytest.fail("KASIO_LAB_PLAINTEXT is not set: start the lab with scripts/kafka up")
    return addr


def topics(*partitions):
    names = [f"txn-{uuid.uuid4().hex[:8]}" for _ in partitions]
    admin = AdminClient({"bootstrap.servers": bootstrap()})
    futures = admin.create_topics([NewTopic(n, p, 1) for n, p in zip(names, partitions)])
    for f in futures.values():
        f.result(30)
    return names


def produce(*args, transactional_id=None):
    assert PRODUCER.exists(), f"build it first: cargo build --release -p kasio --all-features --examples ({PRODUCER})"
    env = {**os.environ, "KASIO_TRANSACTIONAL_ID": transactional_id or f"lab-{uuid.uuid4().hex[:8]}"}
    return subprocess.run([str(PRODUCER), bootstrap(), *map(str, args)], env=env,
                          capture_output=True, text=True, timeout=120)


def read(topic, partitions, isolation):
    """Every value in `topic`, as librdkafka reads it with `isolation`."""
    c = Consumer({"bootstrap.servers": bootstrap(), "group.id": f"g-{uuid.uuid4().hex[:8]}",
                  "isolation.level": isolation, "enable.auto.commit": False,
                  "enable.partition.eof": True})
    c.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    values, ends = [], set()
    while len(ends) < partitions:
        m = c.poll(10)
        assert m is not None, f"librdkafka stalled reading {topic}"
        if m.error():
            if m.error().code() == -191:  # _PARTITION_EOF
                ends.add(m.partition())
                continue
            raise AssertionError(m.error())
        values.append(m.value().decode())
    c.close()
    return sorted(values)


def test_committed_transactions_are_seen_whole_and_aborted_ones_never():
    first, second = topics(3, 2)
    run = produce(first, second, 9, 200, 3)
    assert run.returncode == 0, run.stderr[-2000:]
    lines = run.stdout.splitlines()
    # Kafka 4.4 finalizes transaction.version 2 on a new cluster; the test command also
    # formats one at 1 (KASIO_LAB_TRANSACTION_VERSION) and runs this file again.
    expected = os.environ.get("KASIO_LAB_TRANSACTION_VERSION", "2")
    assert f"transaction protocol {expected}" in lines, lines[:1]
    committed = [int(l.split()[1]) for l in lines if l.startswith("committed")]
    aborted = [int(l.split()[1]) for l in lines if l.startswith("aborted")]
    assert aborted == [2, 5, 8] and committed == [0, 1, 3, 4, 6, 7], lines
    want = sorted(f"txn-{t}-{r}" for t in committed for r in range(200))
    everything = sorted(f"txn-{t}-{r}" for t in range(9) for r in range(200))
    for topic, partitions in ((first, 3), (second, 2)):
        assert read(topic, partitions, "read_committed") == want, topic
        assert read(topic, partitions, "read_uncommitted") == everything, topic


def test_a_second_producer_with_the_same_id_fences_the_first():
    (topic,) = topics(1)
    tid = f"lab-fence-{uuid.uuid4().hex[:8]}"
    # The first producer keeps committing; the second one's init fences it mid-way.
    first = subprocess.Popen([str(PRODUCER), bootstrap(), topic, topic, "400", "50", "0"],
                             env={**os.environ, "KASIO_TRANSACTIONAL_ID": tid},
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(3)
    second = produce(topic, topic, 1, 10, 0, transactional_id=tid)
    assert second.returncode == 0, second.stderr[-2000:]
    out, err = first.communicate(timeout=120)
    assert first.returncode != 0, "the fenced producer went on"
    # The broker says so as PRODUCER_FENCED, INVALID_PRODUCER_EPOCH or, when its EndTxn
    # meets the transaction the newer producer already aborted, INVALID_TXN_STATE.
    assert any(w in err for w in ("ProducerFenced", "InvalidProducerEpoch", "InvalidTxnState")), err
    # What the fenced one committed stays whole, its open transaction is gone, and the
    # newer producer's transaction is there: each record twice (the topic given twice).
    done = [l for l in out.splitlines() if l.startswith("committed")]
    assert 0 < len(done) < 400, out[-500:]
    values = read(topic, 1, "read_committed")
    assert len(values) == 2 * 50 * len(done) + 2 * 10, (len(values), len(done))


COPIER = ROOT / "target" / "release" / "examples" / "exactly_once_copy"


def test_a_copier_killed_and_restarted_copies_every_record_exactly_once():
    """consume-transform-produce with kasio (`exactly_once_copy`): the copier is killed
    (SIGKILL, mid-transaction) and started again three times under the same
    transactional.id; librdkafka reading the output with read_committed finds every input
    record exactly once."""
    assert COPIER.exists(), f"build it first: cargo build --release -p kasio --all-features --examples ({COPIER})"
    from confluent_kafka import Producer
    source, sink = topics(6, 3)
    n = 30000
    peer = Producer({"bootstrap.servers": bootstrap(), "linger.ms": 5})
    for i in range(n):
        peer.produce(source, key=f"k{i}", value=f"v{i}")
        if i % 10000 == 0:
            peer.poll(0)
    assert peer.flush(60) == 0
    env = {**os.environ, "KASIO_TRANSACTIONAL_ID": f"copier-{source}"}
    group = f"copy-{source}"
    killed = 0
    for delay in (1.5, 2.5, 3.5):
        proc = subprocess.Popen([str(COPIER), bootstrap(), source, sink, group, "4000"], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        time.sleep(delay)
        if proc.poll() is None:
            proc.kill()
            killed += 1
        proc.wait(10)
    final = subprocess.run([str(COPIER), bootstrap(), source, sink, group, "4000"], env=env,
                           capture_output=True, text=True, timeout=180)
    assert final.returncode == 0, final.stderr[-2000:]
    assert killed >= 2, "the copier finished before it could be killed: make the input larger"
    got = read(sink, 3, "read_committed")
    want = sorted(f"V{i}" for i in range(n))
    assert len(got) == n and got == want, (len(got), len(set(got)))


JAVA_PEER = ROOT / "tests" / "peers" / "java" / "TxnPeer.java"
CONSUMER = ROOT / "target" / "release" / "examples" / "simple_consumer"


def java(*args):
    libs = os.environ.get("KASIO_LAB_LIBS")
    if not libs:
        pytest.fail("KASIO_LAB_LIBS is not set: start the lab with scripts/kafka up")
    return subprocess.run(["java", "-cp", f"{libs}/*", str(JAVA_PEER), *map(str, args)],
                          capture_output=True, text=True, timeout=180)


def test_the_java_client_reads_kasio_transactions_and_kasio_reads_the_java_clients():
    """Both ways with the Apache Kafka Java client: what kasio commits the Java client reads
    with read_committed, and never what kasio aborted; what the Java client commits kasio
    reads with read_committed, and never what it aborted."""
    (mine, theirs) = topics(3, 3)
    run = produce(mine, mine, 6, 100, 3)
    assert run.returncode == 0, run.stderr[-2000:]
    got = java("read", bootstrap(), mine)
    assert got.returncode == 0, got.stderr[-2000:]
    want = sorted(f"txn-{t}-{r}" for t in (0, 1, 3, 4) for r in range(100) for _ in range(2))
    assert sorted(got.stdout.split()) == want

    wrote = java("write", bootstrap(), theirs, 6, 100, 3)
    assert wrote.returncode == 0, wrote.stderr[-2000:]
    assert CONSUMER.exists(), f"build it first: cargo build --release -p kasio --all-features --examples ({CONSUMER})"
    read = subprocess.run([str(CONSUMER), bootstrap(), theirs, "3", "read_committed"],
                          capture_output=True, text=True, timeout=120)
    assert read.returncode == 0, read.stderr[-2000:]
    values = sorted(line.split(" ", 3)[3] for line in read.stdout.splitlines())
    assert values == sorted(f"java-{t}-{r}" for t in (0, 1, 3, 4) for r in range(100))
