"""Priority delivery on the real broker: `kasio produce --priority` fills a topic's level
topics, librdkafka writes critical records straight to `<topic>.p.critical`, and the
`priority_worker` example (a `PriorityConsumer` "processing" each record for a while, or
with `mode=share` a `PriorityShareConsumer` on a share group) hands them out. Critical
records sent into a normal backlog (100,000 records in a group, 20,000 in a share group)
all come out before that backlog drains, and with the starvation guard at 10% low keeps
its share while high has a backlog. Runs the release builds, which scripts/test builds
first."""

import json
import subprocess

import pytest
import time
from collections import Counter
from pathlib import Path

from confluent_kafka import Producer
from test_admin import bootstrap, name
from test_cli import run

ROOT = Path(__file__).resolve().parents[2]
WORKER = ROOT / "target" / "release" / "examples" / "priority_worker"


def levels(partitions=2):
    t = name("prio")
    r = run("priority", "create", t, "-p", str(partitions))
    assert r.returncode == 0, r.stderr
    return t


def fill(t, level, n):
    lines = "".join(f"{level}-{i}\n" for i in range(n))
    r = run("produce", t, "--priority", level, stdin=lines)
    assert r.returncode == 0, r.stderr


def worker(t, group, out, *extra):
    assert WORKER.exists(), f"build it first: cargo build --release -p kasio --all-features --examples ({WORKER})"
    return subprocess.Popen([str(WORKER), bootstrap(), group, t, *extra], stdout=open(out, "w"),
                            stderr=open(out.with_suffix(".err"), "w"))


def lines(out):
    """(level, value, record timestamp, handed out at) per record, in hand-out order."""
    rows = []
    for line in out.read_text().splitlines():
        level, value, ts, at = line.split()
        rows.append((level, value, int(ts), int(at)))
    return rows


def percentile(sorted_values, q):
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


def handed_out_once(rows, expected):
    counts = Counter(value for _, value, _, _ in rows)
    twice = [v for v, c in counts.items() if c > 1]
    assert twice == [], f"{len(twice)} handed out twice, e.g. {twice[:5]}"
    assert Counter(level for level, _, _, _ in rows) == expected


# A share group hands out one record at a time: a smaller backlog keeps the run short.
SIZES = {"group": 100_000, "share": 20_000}


@pytest.mark.parametrize("mode", ["group", "share"])
def test_critical_records_overtake_a_normal_backlog(tmp_path, mode):
    t = levels()
    backlog = SIZES[mode]
    fill(t, "normal", backlog)
    group = name("prio-workers")
    out = tmp_path / "worker.out"
    w = worker(t, group, out, "work=40", "idle=5000", f"mode={mode}")
    # Once the worker is into the backlog, librdkafka sends the critical records.
    deadline = time.time() + 60
    while (not out.exists() or out.stat().st_size < backlog * 2) and time.time() < deadline:
        time.sleep(0.05)
    p = Producer({"bootstrap.servers": bootstrap(), "linger.ms": 5})
    for i in range(1_000):
        p.produce(f"{t}.p.critical", value=f"critical-{i}".encode())
        if i % 100 == 99:
            p.poll(0)
            time.sleep(0.05)
    assert p.flush(30) == 0
    assert w.wait(120) == 0, out.with_suffix(".err").read_text()
    rows = lines(out)
    handed_out_once(rows, {"normal": backlog, "critical": 1_000})
    last_critical = max(i for i, r in enumerate(rows) if r[0] == "critical")
    last_normal = max(i for i, r in enumerate(rows) if r[0] == "normal")
    first_critical = min(i for i, r in enumerate(rows) if r[0] == "critical")
    assert last_critical < last_normal, (last_critical, last_normal)
    wait = {level: sorted(at - ts for lv, _, ts, at in rows if lv == level) for level in ("critical", "normal")}
    c, n = wait["critical"], wait["normal"]
    print(f"\npriority ({mode}): 1,000 critical into a backlog of {backlog:,} normal: the first handed out after "
          f"{first_critical} records, the last after {last_critical} (normal drained at {last_normal}); "
          f"critical latency p50 {percentile(c, 0.5)} ms, p99 {percentile(c, 0.99)} ms, max {c[-1]} ms; "
          f"normal p50 {percentile(n, 0.5)} ms, p99 {percentile(n, 0.99)} ms, max {n[-1]} ms")
    r = run("--json", "priority", "stats", t, "-g", group, *(["--share"] if mode == "share" else []))
    assert r.returncode == 0, r.stderr
    stats = json.loads(r.stdout)
    assert len(stats) == 4 and all(s["backlog"] == 0 for s in stats), r.stdout


@pytest.mark.parametrize("mode", ["group", "share"])
def test_the_guard_keeps_low_at_its_share_while_high_has_a_backlog(tmp_path, mode):
    t = levels()
    high, low_n = (50_000, 20_000) if mode == "group" else (10_000, 4_000)
    fill(t, "high", high)
    fill(t, "low", low_n)
    out = tmp_path / "worker.out"
    w = worker(t, name("prio-workers"), out, "work=20", "idle=5000", "share=0.1", f"mode={mode}")
    assert w.wait(120) == 0, out.with_suffix(".err").read_text()
    rows = lines(out)
    handed_out_once(rows, {"high": high, "low": low_n})
    last_high = max(i for i, r in enumerate(rows) if r[0] == "high")
    low = sum(1 for r in rows[:last_high] if r[0] == "low")
    share = low / last_high
    print(f"\npriority ({mode}): while high had a backlog ({last_high} records handed out), low got {share:.3f} of them")
    # Batches of up to 500 records make the share lumpy by one batch at most.
    assert share >= 0.1 - 500 / last_high, share
