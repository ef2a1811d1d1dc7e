"""Share groups (KIP-932) on the real broker: kasio's share consumer on tokio, smol and
blocking threads (the `share_worker` example), the Java client's KafkaShareConsumer
(tests/peers/java/ShareWorker.java) and librdkafka's ShareConsumer
(tests/peers/python/share_worker.py) in one group. Every member settles each record by
the same rule and prints a line per decision and per acknowledgement the broker
answered; the checks read those lines."""

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter, defaultdict, deque
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
WORKER = ROOT / "target" / "release" / "examples" / "share_worker"
JAVA_WORKER = ROOT / "tests" / "peers" / "java" / "ShareWorker.java"
PY_WORKER = ROOT / "tests" / "peers" / "python" / "share_worker.py"


def bootstrap():
    b = os.environ.get("KASIO_LAB_PLAINTEXT")
    if not b:
        pytest.fail("KASIO_LAB_PLAINTEXT is not set: start the broker with scripts/kafka up")
    return b.split(",")[0]


def topic_with(n, partitions=2):
    from confluent_kafka.admin import AdminClient, NewTopic
    name = f"share-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": bootstrap()})
    admin.create_topics([NewTopic(name, partitions, 1)])[name].result(30)
    fill(name, n, partitions)
    return name


def fill(name, n, partitions):
    """Values 0..n, round robin over the partitions."""
    from confluent_kafka import Producer
    p = Producer({"bootstrap.servers": bootstrap(), "linger.ms": 20, "enable.idempotence": True})
    for i in range(n):
        while True:
            try:
                p.produce(name, value=str(i).encode(), partition=i % partitions)
                break
            except BufferError:
                p.poll(0.1)
    assert p.flush(60) == 0


def prepare(group, lock_ms):
    assert WORKER.exists(), f"build it first: cargo build --release -p kasio --all-features --examples ({WORKER})"
    run = subprocess.run([str(WORKER), bootstrap(), group, "unused", "prepare", "prepare", f"lock={lock_ms}"],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr


def start(kind, group, topic, out, *extra, idle=20000, release=100, reject=100):
    if kind in ("tokio", "smol", "blocking"):
        cmd = [str(WORKER), bootstrap(), group, topic, kind, f"release={release}", f"reject={reject}",
               f"idle={idle}", *extra]
    elif kind == "java":
        cmd = ["java", "-Xmx512m", "-cp", f"{os.environ['KASIO_LAB_LIBS']}/*", str(JAVA_WORKER), bootstrap(), group,
               topic, str(idle), str(release), str(reject)]
    else:
        cmd = [sys.executable, str(PY_WORKER), bootstrap(), group, topic, str(idle), str(release), str(reject)]
    err = open(out.with_suffix(".err"), "w")
    return subprocess.Popen(cmd, stdout=open(out, "w"), stderr=err)


def read(out):
    """The member's decisions by (partition, offset), and what the broker confirmed:
    (partition, offset, decision, ok), each confirmation matched to the member's oldest
    unconfirmed decision for that offset."""
    decisions, pending, confirmed, renewed = [], defaultdict(deque), [], []
    for line in Path(out).read_text().splitlines():
        d = json.loads(line)
        if "renewed" in d:
            renewed.append(d)
        elif "ok" in d:
            for o in d["offsets"]:
                if pending[(d["p"], o)]:
                    confirmed.append((d["p"], o, pending[(d["p"], o)].popleft(), d["ok"]))
        else:
            decisions.append(d)
            pending[(d["p"], d["o"])].append(d)
    unconfirmed = [d for q in pending.values() for d in q]
    read.renewed = renewed
    return decisions, confirmed, unconfirmed


def decided(out):
    try:
        return sum(1 for line in Path(out).read_text().splitlines() if '"a":' in line)
    except FileNotFoundError:
        return 0


def test_kasio_java_and_librdkafka_share_one_group_with_release_reject_and_a_member_killed(tmp_path):
    n = 200_000
    topic = topic_with(0)
    group = f"{topic}-workers"
    prepare(group, 5000)
    members = ["tokio", "smol", "blocking", "java", "librdkafka"]
    outs = {m: tmp_path / f"{m}.jsonl" for m in members}
    # The member killed midway works slowly (1 ms a record), so it is killed holding
    # records acquired and not yet settled.
    procs = {m: start(m, group, topic, outs[m], *(["work=1"] if m == "smol" else []), idle=30000)
             for m in members}
    # Records come once every member holds its partitions: the first member of a new
    # group is assigned nothing until the broker has set up the group's share
    # partitions, and learns of them a heartbeat (5 s) later.
    time.sleep(12)
    fill(topic, n, 2)
    # The smol member is killed (no close, no leave) once it has settled some records.
    deadline = time.time() + 120
    while decided(outs["smol"]) < 2000 and time.time() < deadline and procs["smol"].poll() is None:
        time.sleep(0.05)
    procs["smol"].send_signal(signal.SIGKILL)
    for m, p in procs.items():
        p.wait(timeout=300)
        if m != "smol":
            assert p.returncode == 0, f"{m}: {outs[m].with_suffix('.err').read_text()[-3000:]}"
    accepted, rejected, released = Counter(), Counter(), Counter()
    accept_counts, seen, per_member, killed_unconfirmed = {}, defaultdict(list), {}, []

    def count(d):
        if d["a"] == "accept":
            accepted[d["i"]] += 1
            accept_counts[d["i"]] = d["n"]
        elif d["a"] == "reject":
            rejected[d["i"]] += 1
        else:
            released[d["i"]] += 1

    for m in members:
        decisions, confirmed, unconfirmed = read(outs[m])
        per_member[m] = len(decisions)
        for d in decisions:
            seen[d["i"]].append((m, d["n"], d["a"]))
        for _, _, d, ok in confirmed:
            if ok:
                count(d)
        if m == "smol":
            killed_unconfirmed = unconfirmed
    # The killed member's last acknowledgements may have reached the broker with no
    # answer read: taken if no other member was handed the record after it.
    for d in killed_unconfirmed:
        if not any(m != "smol" and c > d["n"] for m, c, _ in seen[d["i"]]):
            count(d)
    print(per_member, {"released": sum(released.values()), "rejected": sum(rejected.values())})
    assert all(per_member[m] > 0 for m in members), per_member
    for i in range(n):
        if i % 100 == 1:
            assert rejected[i] == 1 and accepted[i] == 0, (i, seen[i])
            # Never delivered again once a reject was taken.
            assert len([s for s in seen[i] if s[0] != "smol"]) <= 1, (i, seen[i])
        else:
            assert accepted[i] == 1, (i, seen[i])
    for i in range(0, n, 100):
        # Released on their first delivery, accepted on a later one.
        assert accept_counts[i] >= 2, (i, seen[i])
    # Every release a member that lived through the run made was answered. (Records the
    # killed member held undecided come back after their lock with no release: the
    # delivery count checked above covers them.)
    first_elsewhere = [i for i in range(0, n, 100)
                       if any(m != "smol" and c == 1 for m, c, _ in seen[i])]
    unanswered = [i for i in first_elsewhere if released[i] == 0]
    assert not unanswered, [(i, seen[i]) for i in unanswered[:5]]
    # What the killed member held unsettled (decided and unanswered, or still in its
    # buffer) came back to the others once its locks ran out.
    again = [i for i in range(n) if i % 100 > 1 and any(c >= 2 for _, c, _ in seen[i])]
    assert again, "nothing the killed member held came back"
    print({"redelivered_after_the_kill": len(again)})


def test_renew_keeps_a_record_past_its_lock(tmp_path):
    # One record: a second one fetched with it would wait in the member, its lock running.
    topic = topic_with(1, partitions=1)
    group = f"{topic}-renew"
    prepare(group, 2000)
    out = tmp_path / "renew.jsonl"
    # Each record is worked on for 5 s, three lock durations, renewing every 0.5 s.
    p = start("tokio", group, topic, out, "work=5000", "renew=500", idle=8000, release=0, reject=0)
    p.wait(timeout=120)
    assert p.returncode == 0, out.with_suffix(".err").read_text()
    decisions, confirmed, _ = read(out)
    # Delivered once (the lock never ran out), renewed every half second, and the accept
    # was taken.
    assert [(d["i"], d["n"]) for d in decisions] == [(0, 1)], decisions
    assert [(d["i"], ok) for _, _, d, ok in confirmed] == [(0, True)]
    assert len(read.renewed) >= 8 and all(r["renewed"] for r in read.renewed), read.renewed


def test_nack_holds_a_record_renewing_it_then_releases_it(tmp_path):
    topic = topic_with(1, partitions=1)
    group = f"{topic}-nack"
    prepare(group, 2000)
    out = tmp_path / "nack.jsonl"
    # Released 5 s after the decision, under a 2 s lock renewed meanwhile: delivered
    # again once, after the delay (a lock that ran out would have made it 3).
    p = start("tokio", group, topic, out, "nack=5000", idle=12000, release=1, reject=0)
    p.wait(timeout=120)
    assert p.returncode == 0, out.with_suffix(".err").read_text()
    decisions, confirmed, _ = read(out)
    assert [(d["n"], d["a"]) for d in decisions] == [(1, "release"), (2, "accept")], decisions
    assert [ok for _, _, _, ok in confirmed] == [True, True], confirmed
    assert len(read.renewed) >= 3 and all(r["renewed"] for r in read.renewed), read.renewed


def test_a_lock_that_runs_out_redelivers(tmp_path):
    topic = topic_with(1, partitions=1)
    group = f"{topic}-expiry"
    prepare(group, 1000)
    out = tmp_path / "slow.jsonl"
    # Worked on for 3 s under a 1 s lock, without renewing: the record is delivered again
    # (to this member, the only one, while it works) and an accept made after a lock ran
    # out is refused. The broker tells deliveries to one member apart by nothing but
    # time, so which accept is taken depends on when each delivery's lock ran out.
    p = start("blocking", group, topic, out, "work=3000", idle=6000, release=0, reject=0)
    p.wait(timeout=120)
    assert p.returncode == 0, out.with_suffix(".err").read_text()
    decisions, confirmed, _ = read(out)
    assert [d["n"] for d in decisions][:2] == [1, 2], decisions
    oks = [ok for _, _, d, ok in confirmed]
    assert False in oks and True in oks, confirmed


def cli(*args):
    from test_admin import KASIO
    assert KASIO.exists(), f"build it first: cargo build --release -p kasio-cli ({KASIO})"
    run = subprocess.run([str(KASIO), "-b", bootstrap(), *args], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    return run.stdout


def test_cli_share_consume_and_share_groups_in_kasio_groups():
    topic = topic_with(100)
    group = f"{topic}-cli"
    # Ten rejected: never delivered again.
    out = cli("--json", "share", "consume", topic, "-g", group, "--from-beginning", "--ack", "reject", "-c", "10")
    rejected = [json.loads(line) for line in out.splitlines()]
    assert len(rejected) == 10 and all(r["delivery_count"] == 1 and r["ack"] == "reject" for r in rejected)
    listed = json.loads(cli("--json", "groups", "list"))
    assert {"group": group, "type": "share"}.items() <= next(g for g in listed if g["group"] == group).items()
    described = json.loads(cli("--json", "groups", "describe", group))
    assert described[0]["type"] == "share", described
    lag = json.loads(cli("--json", "groups", "lag", group))
    assert sorted(row["partition"] for row in lag) == [0, 1], lag
    assert sum(row["lag"] for row in lag) == 90, lag
    # The other ninety, accepted, each once.
    out = cli("--json", "share", "consume", topic, "-g", group, "--ack", "accept", "-e")
    accepted = [json.loads(line) for line in out.splitlines()]
    values = sorted(int(r["value"]) for r in accepted)
    assert values == sorted(set(range(100)) - {int(r["value"]) for r in rejected}), values
    lag = json.loads(cli("--json", "groups", "lag", group))
    assert sum(row["lag"] for row in lag) == 0, lag


def create_topic(name, partitions=1, config=None):
    from confluent_kafka.admin import AdminClient, NewTopic
    admin = AdminClient({"bootstrap.servers": bootstrap()})
    admin.create_topics([NewTopic(name, partitions, 1, config=config or {})])[name].result(30)


def letters(topic):
    """The dead letters in `topic`, read back by librdkafka: (key, value, headers)."""
    from confluent_kafka import Consumer, TopicPartition
    c = Consumer({"bootstrap.servers": bootstrap(), "group.id": f"read-{uuid.uuid4().hex[:6]}",
                  "enable.partition.eof": True, "enable.auto.commit": False})
    c.assign([TopicPartition(topic, 0, 0)])
    out = []
    deadline = time.time() + 30
    while time.time() < deadline:
        m = c.poll(1.0)
        if m is None:
            continue
        if m.error():
            if m.error().code() == -191:  # end of partition
                break
            raise AssertionError(m.error())
        out.append((m.key(), m.value(), {k: (v or b"").decode() for k, v in (m.headers() or [])}))
    c.close()
    return out


def test_reject_with_a_reason_goes_to_the_brokers_dead_letter_topic_or_else_the_clients(tmp_path):
    # Twenty records with a key and a header of their own, over two partitions.
    from confluent_kafka import Producer
    topic = f"share-{uuid.uuid4().hex[:8]}"
    create_topic(topic, 2)
    p = Producer({"bootstrap.servers": bootstrap()})
    for i in range(20):
        p.produce(topic, key=f"k{i}".encode(), value=str(i).encode(), partition=i % 2, headers=[("trace", b"t1")])
    assert p.flush(30) == 0
    mine = f"{topic}.dlt"
    create_topic(mine)
    # A group without a broker dead-letter topic: kasio writes each letter with the reason,
    # then rejects the record, which never comes back.
    group = f"{topic}-client"
    out = cli("--json", "share", "consume", topic, "-g", group, "--from-beginning", "--ack", "reject",
              "--dead-letter", mine, "--reason", "not a job", "-c", "20")
    rows = [json.loads(line) for line in out.splitlines()]
    assert len(rows) == 20 and all(r["dead_letter"].startswith(f"client:{mine}:") for r in rows), rows
    got = letters(mine)
    assert len(got) == 20, got
    by_value = {v.decode(): (k, h) for k, v, h in got}
    for r in rows:
        key, headers = by_value[r["value"]]
        assert key == r["key"].encode()
        assert headers == {"trace": "t1", "__dlq.errors.topic": topic, "__dlq.errors.partition": str(r["partition"]),
                           "__dlq.errors.offset": str(r["offset"]), "__dlq.errors.group": group,
                           "__dlq.errors.delivery.count": "1", "__dlq.errors.message": "not a job"}, headers
    assert cli("share", "consume", topic, "-g", group, "-e").strip() == "", "rejected records never come back"
    # A group whose broker writes dead letters (KIP-1191, share.version 2): the broker's
    # topic gets them, the client's none.
    broker_dlq = f"dlq.{topic}"
    create_topic(broker_dlq, config={"errors.deadletterqueue.group.enable": "true"})
    group = f"{topic}-broker"
    cli("configs", "alter", "--group", group, "--set", f"errors.deadletterqueue.topic.name={broker_dlq}",
        "--set", "errors.deadletterqueue.copy.record.enable=true")
    out = cli("--json", "share", "consume", topic, "-g", group, "--from-beginning", "--ack", "reject",
              "--dead-letter", mine, "-c", "20")
    rows = [json.loads(line) for line in out.splitlines()]
    assert len(rows) == 20 and all(r["dead_letter"] == f"broker:{broker_dlq}" for r in rows), rows
    deadline = time.time() + 30
    while True:
        got = letters(broker_dlq)
        if len(got) >= 20 or time.time() > deadline:
            break
        time.sleep(1)
    assert sorted(int(v) for _, v, _ in got) == list(range(20)), got
    assert all(h["__dlq.errors.group"] == group for _, _, h in got), got
    assert len(letters(mine)) == 20, "the client wrote nothing more"
