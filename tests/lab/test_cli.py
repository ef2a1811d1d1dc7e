"""The `kasio` binary's data commands against the real broker: what it produces from
standard input librdkafka reads back exactly, what librdkafka writes it prints exactly, its
group commits are what Kafka's own tool reports, and its quick start and perf tools run.
Runs the release build, which scripts/test builds before the lab."""

import json
import subprocess
import time

from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import NewTopic
from test_admin import KASIO, bootstrap, kafka_consumer_groups, name, peer_admin


def run(*args, stdin=None, timeout=120):
    assert KASIO.exists(), f"build it first: cargo build --release -p kasio-cli ({KASIO})"
    return subprocess.run([str(KASIO), "-b", bootstrap(), *args], input=stdin,
                          capture_output=True, text=True, timeout=timeout)


def topic(partitions):
    t = name("cli")
    peer_admin().create_topics([NewTopic(t, partitions, 1)])[t].result(30)
    return t


def test_lines_produced_from_stdin_are_what_librdkafka_reads():
    t = topic(3)
    lines = "".join(f"k{i % 7}\tvalue {i}\n" for i in range(20_000))
    r = run("produce", t, "-K", "\t", "-H", "via=kasio", stdin=lines)
    assert r.returncode == 0, r.stderr
    c = Consumer({"bootstrap.servers": bootstrap(), "group.id": name("reader"), "auto.offset.reset": "earliest"})
    c.subscribe([t])
    got = {}
    deadline = time.time() + 60
    while len(got) < 20_000 and time.time() < deadline:
        m = c.poll(0.5)
        if m is None or m.error():
            continue
        i = int(m.value().decode().split()[1])
        assert i not in got, f"record {i} twice"
        got[i] = (m.key().decode(), dict(m.headers() or []))
    c.close()
    assert len(got) == 20_000
    for i, (key, headers) in got.items():
        assert key == f"k{i % 7}" and headers == {"via": b"kasio"}


def test_what_librdkafka_writes_kasio_prints_exactly():
    t = topic(4)
    p = Producer({"bootstrap.servers": bootstrap(), "compression.type": "zstd"})
    sent = {}
    for i in range(12_000):
        p.produce(t, key=f"key-{i}", value=f"v{i}", headers=[("n", str(i).encode())],
                  on_delivery=lambda err, m: sent.__setitem__((m.partition(), m.offset()), m.key().decode()))
    assert p.flush(30) == 0
    r = run("--json", "consume", t, "-o", "beginning", "-e")
    assert r.returncode == 0, r.stderr
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert len(rows) == 12_000
    for row in rows:
        assert sent[(row["partition"], row["offset"])] == row["key"]
        n = row["key"].split("-")[1]
        assert row["value"] == f"v{n}" and row["headers"] == {"n": n}


def test_group_consumption_commits_what_it_printed():
    t, g = topic(2), name("cli-group")
    Producer({"bootstrap.servers": bootstrap()}).produce(t, value=b"warm-up")
    p = Producer({"bootstrap.servers": bootstrap()})
    for i in range(3000):
        p.produce(t, key=str(i), value=str(i))
    assert p.flush(30) == 0
    first = run("consume", t, "-g", g, "-o", "beginning", "-c", "1000")
    assert first.returncode == 0, first.stderr
    assert len(first.stdout.splitlines()) == 1000
    committed = sum(row[0] for row in kafka_consumer_groups(g).values() if row[0] is not None)
    assert committed == 1000
    rest = run("consume", t, "-g", g, "-o", "beginning", "-e")
    assert rest.returncode == 0, rest.stderr
    total = kafka_consumer_groups(g)
    assert all(row[2] == 0 for row in total.values()), total
    seen = first.stdout.splitlines() + rest.stdout.splitlines()
    assert sorted(int(v) for v in seen if v != "warm-up") == list(range(3000))


def test_quickstart_and_perf_against_kafka():
    r = run("--json", "quickstart", "--records", "200000", timeout=180)
    assert r.returncode == 0, r.stderr
    v = json.loads(r.stdout)
    assert v["verified"] is True and v["records"] == 200_000

    t = topic(3)
    r = run("--json", "perf", "produce", t, "--records", "50000", "--record-size", "200")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["records"] == 50_000
    r = run("--json", "perf", "consume", t, "--records", "50000")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["bytes"] == 50_000 * 200


def test_an_unknown_topic_is_one_line():
    r = run("consume", name("missing"), "-e")
    assert r.returncode == 1
    assert r.stderr.count("\n") == 1 and "UNKNOWN_TOPIC_OR_PARTITION" in r.stderr
    r = run("produce", name("missing"), stdin="x\n")
    assert r.returncode == 1 and r.stderr.startswith("kasio: topic ")
