"""kasio consumers in a consumer group on the real broker (KIP-848, the `consumer` group
protocol): two members share the partitions, giving up what the coordinator moves only
after committing it, so together they read every record exactly once; the group's
commits are what librdkafka sees; a later member resumes from them. Runs the release
build of the `group_consumer` example, which scripts/test builds before the lab."""

import os
import subprocess
import tempfile
import threading
import time
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
    assert MEMBER.exists(), f"build it first: cargo build --release -p kasio --all-features --examples ({MEMBER})"
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


def ownership(stderr, end_ms):
    """Each partition's ownership intervals from a member's `assigned at T: [..]`,
    `revoked at T: [..]` and `lost at T: [..]` lines; what it still owns ends at end_ms."""
    owned, intervals = {}, []
    for line in stderr.splitlines():
        for word in ("assigned", "revoked", "lost"):
            if line.startswith(f"{word} at "):
                at, parts = line[len(word) + 4:].split(": ", 1)
                at = int(at)
                for p in (int(x) for x in parts.strip("[]").split(",") if x.strip()):
                    if word == "assigned":
                        owned[p] = at
                    elif p in owned:
                        intervals.append((p, owned.pop(p), at))
    intervals += [(p, since, end_ms) for p, since in owned.items()]
    return intervals


@pytest.mark.parametrize("protocol", ["classic-cooperative-sticky", "consumer"])
def test_three_members_through_a_kill_and_a_join_read_everything_and_never_share(protocol):
    """Three members over 12 partitions while 1,000,000 records are written; one is
    killed and one added midway. Committing after writing, together they read every
    record at least once, and no partition is ever owned by two members at once, as
    their rebalance events tell it (a killed member owns nothing after its death)."""
    n, parts = 1_000_000, 12
    topic = f"kasio-three-{uuid.uuid4().hex[:6]}"
    group = f"kasio-three-{uuid.uuid4().hex[:6]}"
    admin = AdminClient({"bootstrap.servers": bootstrap()})
    admin.create_topics([NewTopic(topic, parts, 1)])[topic].result(30)
    props = ["enable.auto.commit=false"]
    if protocol.startswith("classic"):
        props += ["group.protocol=classic", "partition.assignment.strategy=cooperative-sticky",
                  "session.timeout.ms=6000", "heartbeat.interval.ms=1000"]

    written = threading.Event()

    def write():
        p = Producer({"bootstrap.servers": bootstrap(), "linger.ms": 5,
                      "queue.buffering.max.messages": 1_000_000})
        for i in range(n):
            p.produce(topic, key=f"k{i % 97}", value=f"v{i}")
            if i % 50_000 == 49_999:
                p.flush(60)
                time.sleep(0.4)
        assert p.flush(60) == 0
        written.set()

    def start():
        out = tempfile.NamedTemporaryFile(mode="w+", delete=False)
        err = tempfile.NamedTemporaryFile(mode="w+", delete=False)
        proc = subprocess.Popen([str(MEMBER), bootstrap(), topic, group, "25000", *props],
                                stdout=out, stderr=err, text=True)
        return proc, out, err

    writer = threading.Thread(target=write, daemon=True)
    members = [start() for _ in range(3)]
    writer.start()
    deadline = time.time() + 120
    while sum(os.path.getsize(m[1].name) for m in members) < 2_000_000:
        assert time.time() < deadline, "the members read too little"
        time.sleep(0.2)
    victim = members[0][0]
    victim.kill()
    victim.wait(10)
    killed_at = int(time.time() * 1000)
    members.append(start())
    writer.join(300)
    assert written.is_set(), "the peer could not write"

    values, intervals, logs = set(), [], []
    for i, (proc, out, err) in enumerate(members):
        if i > 0:
            proc.wait(timeout=300)
            assert proc.returncode == 0, Path(err.name).read_text()[-2000:]
        end = killed_at if i == 0 else int(time.time() * 1000)
        text = Path(out.name).read_text()
        # A killed member's last line may be cut short.
        values.update(line.split(" ", 3)[3] for line in text.splitlines() if line.count(" ") >= 3)
        logs.append(Path(err.name).read_text())
        intervals += [(p, a, b, i) for p, a, b in ownership(logs[-1], end)]
        for f in (out, err):
            f.close()
            os.unlink(f.name)
    missing = n - len(values & {f"v{i}" for i in range(n)})
    assert missing == 0, f"{missing} records never read"
    for p in range(parts):
        mine = sorted((a, b, who) for q, a, b, who in intervals if q == p)
        assert mine, f"partition {p} never assigned"
        for (a1, b1, w1), (a2, b2, w2) in zip(mine, mine[1:]):
            assert b1 <= a2, (f"partition {p}: member {w1} until {b1}, member {w2} from {a2}; their logs:\n"
                              + "\n".join(f"{w}: {line}" for w in (w1, w2) for line in logs[w].splitlines()))


def test_the_async_consumer_example_processes_everything_and_commits_it():
    """The `async_consumer` example: a group member reading a stream and committing by
    hand after processing, whose commits librdkafka then sees at the topic's end."""
    topic = f"kasio-async-{uuid.uuid4().hex[:6]}"
    group = f"kasio-async-{uuid.uuid4().hex[:6]}"
    admin = AdminClient({"bootstrap.servers": bootstrap()})
    admin.create_topics([NewTopic(topic, PARTITIONS, 1)])[topic].result(30)
    produce(topic, 0, 50_000)
    example = ROOT / "target" / "release" / "examples" / "async_consumer"
    run = subprocess.run([str(example), bootstrap(), topic, group, "6000"],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "processed 50000 records" in run.stdout, run.stdout
    c = Consumer({"bootstrap.servers": bootstrap(), "group.id": group})
    committed = c.committed([TopicPartition(topic, q) for q in range(PARTITIONS)], timeout=30)
    ends = {q: c.get_watermark_offsets(TopicPartition(topic, q), timeout=30)[1] for q in range(PARTITIONS)}
    c.close()
    assert {tp.partition: tp.offset for tp in committed} == ends


@pytest.mark.parametrize("protocol", ["classic", "classic-cooperative-sticky", "consumer"])
def test_async_consumers_commit_before_each_revocation_and_read_everything_exactly_once(protocol):
    """Two `async_consumer` members (manual commit after processing, revocations held):
    the second joins while records are being written, and both leave when idle. Each
    commits what it processed of a partition before giving it up, so through every
    rebalance, together they process each record exactly once (without the hold, the
    next owner re-reads whatever was processed since the last periodic commit)."""
    n = 300_000
    topic = f"kasio-held-{uuid.uuid4().hex[:6]}"
    group = f"kasio-held-{uuid.uuid4().hex[:6]}"
    admin = AdminClient({"bootstrap.servers": bootstrap()})
    admin.create_topics([NewTopic(topic, PARTITIONS, 1)])[topic].result(30)
    props = {"classic": ["group.protocol=classic", "partition.assignment.strategy=range"],
             "classic-cooperative-sticky": ["group.protocol=classic",
                                            "partition.assignment.strategy=cooperative-sticky"],
             "consumer": ["group.protocol=consumer"]}[protocol]
    example = ROOT / "target" / "release" / "examples" / "async_consumer"

    def start():
        out = tempfile.TemporaryFile(mode="w+")
        err = tempfile.TemporaryFile(mode="w+")
        proc = subprocess.Popen([str(example), bootstrap(), topic, group, "15000", *props],
                                stdout=out, stderr=err, text=True)
        return proc, out, err

    first = start()
    p = Producer({"bootstrap.servers": bootstrap(), "linger.ms": 5, "enable.idempotence": True,
                  "queue.buffering.max.messages": 1_000_000})
    second = None
    for i in range(n):
        p.produce(topic, key=f"k{i % 13}", value=f"v{i}")
        if i % 20_000 == 19_999:
            p.flush(60)
            time.sleep(0.5)
        if i == n // 3:
            second = start()
    assert p.flush(60) == 0
    total = 0
    for proc, out, err in (first, second):
        proc.wait(timeout=180)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
        assert proc.returncode == 0, stderr[-2000:]
        got = [int(line.split()[1]) for line in stdout.splitlines() if line.startswith("processed")]
        assert got, stdout
        assert got[0] > 0, f"each member processed some records: {stdout}"
        total += got[0]
    assert total == n, f"{total} records processed for {n} written: every record exactly once"
