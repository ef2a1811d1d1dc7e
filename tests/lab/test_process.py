"""The processing layer on the real broker: librdkafka writes keyed messages, and the
`process_worker` example (a `Runner` whose processor fails some records on their first
try and some on every try) processes them in several processes of one group. Every
message ends processed or in the dead-letter topic with headers naming its origin, error
and tries, even with a worker killed midway; workers stopped by SIGTERM commit what they
processed, so their restart processes nothing twice; `kasio dlt replay` sends dead letters
back to their topic once. Runs the release builds, which scripts/test builds first."""

import signal
import struct
import subprocess
import time
from collections import Counter
from pathlib import Path

from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import NewTopic
import pytest
from test_admin import KASIO, bootstrap, name, peer_admin
from test_cli import run

ROOT = Path(__file__).resolve().parents[2]
WORKER = ROOT / "target" / "release" / "examples" / "process_worker"


def topics(partitions):
    t = name("proc")
    created = peer_admin().create_topics([NewTopic(t, partitions, 1), NewTopic(f"{t}.dlt", 1, 1)])
    for f in created.values():
        f.result(30)
    return t


def fill(t, n):
    p = Producer({"bootstrap.servers": bootstrap(), "linger.ms": 20})
    for i in range(n):
        p.produce(t, key=f"k{i % 1000}", value=f"m-{i}")
        if i % 10_000 == 0:
            p.poll(0)
    assert p.flush(60) == 0


def worker(t, group, out, *extra):
    assert WORKER.exists(), f"build it first: cargo build --release -p kasio --all-features --examples ({WORKER})"
    return subprocess.Popen([str(WORKER), bootstrap(), group, t, *extra], stdout=open(out, "w"),
                            stderr=open(out.with_suffix(".err"), "w"))


def processed(outs):
    """Counter of message values printed OK over the workers' outputs."""
    c = Counter()
    for out in outs:
        for line in out.read_text().splitlines():
            parts = line.split()
            if len(parts) == 4 and parts[0] == "OK":
                c[parts[1]] += 1
    return c


def wait_for(outs, n, timeout):
    deadline = time.time() + timeout
    while sum(processed(outs).values()) < n and time.time() < deadline:
        time.sleep(0.2)


def dead_letters(t, n, timeout=60):
    c = Consumer({"bootstrap.servers": bootstrap(), "group.id": name("dlt-reader"),
                  "auto.offset.reset": "earliest", "enable.auto.commit": False})
    c.subscribe([f"{t}.dlt"])
    got = []
    deadline = time.time() + timeout
    while len(got) < n and time.time() < deadline:
        for m in c.consume(1000, 0.5):
            if not m.error():
                got.append(m)
    # Nothing more arrives: what is there is all.
    for m in c.consume(1000, 2):
        if not m.error():
            got.append(m)
    c.close()
    return got


def draw(value):
    """The worker's FNV-1a hash of a value, from which it draws the value's fate."""
    h = 0xcbf29ce484222325
    for b in value.encode():
        h = ((h ^ b) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return h


def bad_values(n, permille, shift=0):
    """The values the worker's processor fails on every try: permanently (`bad`, shift
    0) or retriably (`flaky`, shift 32), as the example draws them."""
    return {f"m-{i}" for i in range(n) if (draw(f"m-{i}") >> shift) % 1000 < permille}


MESSAGES = 100_000


def test_every_message_ends_processed_or_dead_lettered_with_a_worker_killed(tmp_path):
    t = topics(8)
    fill(t, MESSAGES)
    group = name("proc-workers")
    outs = [tmp_path / f"w{i}.out" for i in range(4)]
    # A killed worker's partitions go to the others after its session times out (10 s);
    # the others wait longer than that for records before they stop.
    args = ("workers=1", "work=300", "fail=5", "bad=5", "ordering=key", "idle=20000", "session=10000")
    ws = [worker(t, group, out, *args) for out in outs]
    # Midway, one worker dies without a word; the others take its partitions over.
    wait_for(outs, MESSAGES * 0.4, 120)
    ws[1].send_signal(signal.SIGKILL)
    ws[1].wait()
    for w in ws[0:1] + ws[2:]:
        assert w.wait(300) == 0, (tmp_path / "w0.err").read_text()
    done = processed(outs)
    bad = bad_values(MESSAGES, 5)
    letters = dead_letters(t, len(bad))
    dead = Counter(m.value().decode() for m in letters)
    everything = {f"m-{i}" for i in range(MESSAGES)}
    missing = everything - set(done) - set(dead)
    assert not missing, f"{len(missing)} lost, e.g. {sorted(missing)[:5]}"
    assert set(dead) == bad, f"dead-lettered {len(dead)}, expected {len(bad)}"
    assert not (set(done) & bad)
    for m in letters[:50]:
        h = dict(m.headers())
        assert h["__dlq.errors.topic"].decode() == t
        assert h["__dlq.errors.message"].decode() == "the record cannot be processed"
        assert int(h["__dlq.errors.delivery.count"]) == 1
        assert h["__dlq.errors.group"].decode() == group
        assert "io::error" in h["__dlq.errors.exception.class.name"].decode()
        # Spring's binary and Connect's text forms name the same origin.
        offset = int(h["__dlq.errors.offset"])
        assert struct.unpack(">q", h["kafka_dlt-original-offset"])[0] == offset
        assert struct.unpack(">i", h["kafka_dlt-original-partition"])[0] == int(h["__dlq.errors.partition"])
        assert int(h["__connect.errors.offset"]) == offset
        assert m.key().decode().startswith("k")
    twice = sum(n - 1 for n in done.values() if n > 1)
    # Only what the killed worker processed after its last commit comes again.
    assert twice < MESSAGES * 0.05, twice
    print(f"\nprocessed {len(done)} messages ({twice} again after the kill), "
          f"dead-lettered {len(dead)} (of {len(bad)}), lost 0")

    # The dead letters go back to their topic, once however often the replay runs.
    r = run("--json", "dlt", "replay", f"{t}.dlt", "-g", f"{group}-replay")
    assert r.returncode == 0, r.stderr
    assert f'"records":{len(letters)}' in r.stdout.replace(" ", ""), r.stdout
    r = run("--json", "dlt", "replay", f"{t}.dlt", "-g", f"{group}-replay")
    assert r.returncode == 0, r.stderr
    assert '"records":0' in r.stdout.replace(" ", ""), r.stdout
    c = Consumer({"bootstrap.servers": bootstrap(), "group.id": name("replayed"),
                  "auto.offset.reset": "earliest"})
    c.subscribe([t])
    values = Counter()
    deadline = time.time() + 60
    while sum(values.values()) < MESSAGES + len(letters) and time.time() < deadline:
        for m in c.consume(5000, 0.5):
            if m.error():
                continue
            values[m.value().decode()] += 1
            keys = [k for k, _ in (m.headers() or [])]
            assert not [k for k in keys if k.startswith(("__dlq", "__connect", "kafka_dlt"))], keys
    c.close()
    assert sum(values.values()) == MESSAGES + len(letters)
    assert all(values[v] == 1 + dead[v] for v in bad)


@pytest.mark.parametrize("via", ["topic", "tiers"])
def test_retries_through_a_retry_topic_leave_the_partition_moving(via, tmp_path):
    """Non-blocking retries (`processing.retry.topic`): a record failing retriably is
    written to `TOPIC.retry` with its tries, due time and origin, its partition moves on,
    and it is tried again from there (the member waiting out its due time, or the retry
    topic's delay tiers and `kasio delay relay` bringing it when due); one failing every
    try reaches the dead-letter topic after three tries, its headers naming the topic,
    partition and offset it came from."""
    n = 20_000
    t = topics(6)
    created = peer_admin().create_topics([NewTopic(f"{t}.retry", 3, 1)])
    for f in created.values():
        f.result(30)
    fill(t, n)
    group = name("proc-retry")
    outs = [tmp_path / f"r{i}.out" for i in range(2)]
    args = ("workers=2", "fail=5", "bad=5", "flaky=5", f"retry={via}", "ordering=key", "idle=8000")
    relay = None
    if via == "tiers":
        r = run("delay", "create", f"{t}.retry")
        assert r.returncode == 0, r.stderr
        relay = subprocess.Popen([str(KASIO), "-b", bootstrap(), "delay", "relay", f"{t}.retry",
                                  "-g", f"relay-{t}"], stdout=subprocess.DEVNULL,
                                 stderr=open(tmp_path / "relay.err", "w"))
        # Waits past the shortest tier (1 s), so the copies go through the tiers.
        args += ("backoff=1500",)
    ws = [worker(t, group, out, *args) for out in outs]
    for w, out in zip(ws, outs):
        assert w.wait(300) == 0, out.with_suffix(".err").read_text()
    if relay:
        relay.send_signal(signal.SIGTERM)
        assert relay.wait(30) == 0, (tmp_path / "relay.err").read_text()
        relayed = (tmp_path / "relay.err").read_text()
        assert "relayed:" in relayed and "relayed: 0 delivered" not in relayed, relayed
        print("\n" + next(line for line in relayed.splitlines() if "relayed:" in line), end="")
    done = processed(outs)
    bad, flaky = bad_values(n, 5), bad_values(n, 5, 32) - bad_values(n, 5)
    letters = dead_letters(t, len(bad | flaky))
    dead = Counter(m.value().decode() for m in letters)
    assert set(dead) == bad | flaky, f"dead-lettered {len(dead)}, expected {len(bad | flaky)}"
    assert all(c == 1 for c in dead.values())
    assert set(done) | set(dead) == {f"m-{i}" for i in range(n)}
    twice = [v for v, c in done.items() if c > 1]
    assert not twice, f"{len(twice)} processed twice"
    origins = {}
    for m in letters:
        h = dict(m.headers())
        value = m.value().decode()
        assert h["__dlq.errors.topic"].decode() == t, h
        tries = int(h["__dlq.errors.delivery.count"])
        assert tries == (3 if value in flaky else 1), (value, tries)
        origins[(int(h["__dlq.errors.partition"]), int(h["__dlq.errors.offset"]))] = value
    # The origin named is where the value was first written.
    c = Consumer({"bootstrap.servers": bootstrap(), "group.id": name("origin"),
                  "auto.offset.reset": "earliest"})
    c.subscribe([t])
    seen = 0
    deadline = time.time() + 60
    while seen < n and time.time() < deadline:
        for m in c.consume(5000, 0.5):
            if m.error():
                continue
            seen += 1
            at = (m.partition(), m.offset())
            if at in origins:
                assert origins[at] == m.value().decode()
    c.close()
    print(f"\n{n} messages, retries through {t}.retry ({via}): {len(done)} processed, none twice; "
          f"{len(dead)} dead-lettered ({len(flaky)} after three tries, origins checked)")


def test_a_blocking_processor_on_threads_processes_everything_once(tmp_path):
    """A `BlockingProcessor` whose work blocks its thread for 2 ms (`OnThreads`, 16
    threads per member), unordered, 5% failing their first try: every message processed
    once, none twice, in far less time than one thread would take."""
    n = 6_000
    t = topics(4)
    fill(t, n)
    out = tmp_path / "b.out"
    started = time.time()
    w = worker(t, name("proc-blocking"), out, "workers=2", "blocking=16", "work=2000", "fail=5",
               "ordering=unordered", "idle=3000")
    assert w.wait(300) == 0, out.with_suffix(".err").read_text()
    took = time.time() - started
    done = processed([out])
    assert len(done) == n, f"{n - len(done)} never processed"
    twice = [v for v, c in done.items() if c > 1]
    assert not twice, f"{len(twice)} processed twice"
    # One thread would take n * 2 ms = 12 s of work alone, plus the 3 s idle wait.
    assert took < 12, took
    print(f"\n{n} messages through a blocking processor on 2 x 16 threads in {took:.1f} s "
          f"(3 s of it the idle wait), none twice")


def test_workers_stopped_by_sigterm_commit_so_a_restart_processes_nothing_twice(tmp_path):
    n = 30_000
    t = topics(6)
    fill(t, n)
    group = name("proc-stop")
    first = [tmp_path / f"a{i}.out" for i in range(3)]
    args = ("workers=1", "work=1000", "ordering=key", "idle=5000")
    ws = [worker(t, group, out, *args) for out in first]
    wait_for(first, n * 0.3, 120)
    for w in ws:
        w.send_signal(signal.SIGTERM)
    for w, out in zip(ws, first):
        assert w.wait(60) == 0, out.with_suffix(".err").read_text()
    before = processed(first)
    assert 0 < sum(before.values()) < n
    second = [tmp_path / f"b{i}.out" for i in range(3)]
    ws = [worker(t, group, out, *args) for out in second]
    for w, out in zip(ws, second):
        assert w.wait(300) == 0, out.with_suffix(".err").read_text()
    after = processed(second)
    both = before + after
    twice = [v for v, c in both.items() if c > 1]
    assert not twice, f"{len(twice)} processed twice, e.g. {twice[:5]}"
    assert len(both) == n, f"{n - len(both)} never processed"
    print(f"\nstopped after {sum(before.values())} of {n}; the restart processed "
          f"{sum(after.values())}; none twice")


PUBLISHER = ROOT / "target" / "release" / "examples" / "publisher"


def read_all(topic, n, timeout=120):
    """Every record of `topic` as (value, headers, partition, offset), reading until `n`
    came and a little longer (duplicates would follow)."""
    c = Consumer({"bootstrap.servers": bootstrap(), "group.id": name("pub-reader"),
                  "auto.offset.reset": "earliest", "enable.auto.commit": False})
    c.subscribe([topic])
    got = []
    deadline = time.time() + timeout
    while len(got) < n and time.time() < deadline:
        got += [m for m in c.consume(5000, 0.5) if not m.error()]
    got += [m for m in c.consume(5000, 2) if not m.error()]
    c.close()
    return got


def test_published_messages_end_delivered_or_dead_lettered_through_a_broker_stop(tmp_path):
    """The `publisher` example sends 200,000 messages at 20,000 a second while the broker
    is killed 3 s in and restarted 10 s later: every message id ends delivered (librdkafka
    finds it at the partition and offset reported) or dead-lettered (in `TOPIC.dlt` with
    its failure and tries), none unfinished, and the process's memory stays within what
    `publisher.max.unfinished` and the tracking caps allow."""
    assert PUBLISHER.exists(), f"build it first: cargo build --release -p kasio --all-features --examples ({PUBLISHER})"
    n = 200_000
    t = topics(6)
    out, err = tmp_path / "pub.out", tmp_path / "pub.err"
    p = subprocess.Popen([str(PUBLISHER), bootstrap(), t, str(n), "20000",
                          "delivery.timeout.ms=5000", "request.timeout.ms=2000",
                          "publisher.max.unfinished=20000", "publisher.tracking.max.finished=20000",
                          # The example reads the status stream: room for a slow moment.
                          "publisher.tracking.max.changes=250000"],
                         stdout=open(out, "w"), stderr=open(err, "w"))
    kafka = str(ROOT / "scripts" / "kafka")
    time.sleep(3)
    stopped = time.time()
    subprocess.run([kafka, "kill", "1"], check=True)
    time.sleep(10)
    subprocess.run([kafka, "restart", "1"], check=True)
    outage = time.time() - stopped
    assert p.wait(300) == 0, err.read_text()[-2000:]
    ends = {}
    summary = ""
    for line in out.read_text().splitlines():
        parts = line.split()
        if parts[0] == "END":
            ends[parts[1]] = (parts[2], parts[3], parts[4], parts[5], parts[6])
        elif parts[0] == "SUMMARY":
            summary = dict(kv.split("=") for kv in parts[1:])
    assert len(ends) == n, f"{len(ends)} ids for {n} messages"
    states = Counter(e[1] for e in ends.values())
    assert set(states) <= {"delivered", "dead-lettered"}, states
    assert summary["flushed"] == "true" and int(summary["retried"]) > 0, summary
    # The status stream told every end, the same as the notices.
    assert int(summary["tracked"]) == n and summary["tracking_missed"] == "0", summary
    assert summary["disagree"] == "0", summary

    records = read_all(t, states["delivered"])
    at = {}
    copies = Counter()
    for m in records:
        mid = dict(m.headers())["kasio.message.id"].decode()
        copies[mid] += 1
        at[(m.partition(), m.offset())] = (mid, m.value().decode())
    for mid, (value, state, _, partition, offset) in ends.items():
        if state == "delivered":
            assert at.get((int(partition), int(offset))) == (mid, value), (mid, partition, offset)
    letters = read_all(f"{t}.dlt", states["dead-lettered"])
    dead = {}
    for m in letters:
        h = dict(m.headers())
        dead[h["kasio.message.id"].decode()] = h
        assert h["__dlq.errors.topic"].decode() == t
        # Three tries, unless the broker refused it outright (then at once).
        assert 1 <= int(h["__dlq.errors.delivery.count"]) <= 3, h
        assert h["__dlq.errors.exception.class.name"] and h["__dlq.errors.message"], h
    expected = {mid for mid, e in ends.items() if e[1] == "dead-lettered"}
    assert expected <= set(dead), f"{len(expected - set(dead))} dead letters missing"
    # A try that timed out may have been written all the same, and so be written again.
    again = sum(c - 1 for c in copies.values() if c > 1)
    peak = int(summary["peak_rss_kib"])
    assert peak < 300 * 1024, summary
    print(f"\n{n} messages through a {outage:.1f} s outage (kill to restarted): "
          f"{states['delivered']} delivered, {states['dead-lettered']} dead-lettered, "
          f"{summary['retried']} retries, {again} written twice by a retry; peak RSS "
          f"{peak // 1024} MiB, {summary['remembered']} statuses remembered at the end; the status "
          f"stream told {summary['tracked']} ends, {summary['disagree']} unlike the notices")
