"""The three-node lab (scripts/kafka cluster): a topic with replication factor 3 is created and
used, and survives one broker being killed and restarted."""

import json
import os
import subprocess
import time
import uuid
from pathlib import Path

from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

ROOT = Path(__file__).resolve().parents[2]


def test_replication_factor_three_survives_a_broker_restart():
    bootstrap = os.environ["KASIO_LAB_PLAINTEXT"]
    assert os.environ.get("KASIO_LAB_NODES") == "3", "run with scripts/kafka cluster"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    assert len(admin.list_topics(timeout=10).brokers) == 3
    name = f"rf3-{uuid.uuid4().hex[:8]}"
    for f in admin.create_topics([NewTopic(name, num_partitions=6, replication_factor=3,
                                           config={"min.insync.replicas": "2"})]).values():
        f.result(30)
    meta = admin.list_topics(name, timeout=10).topics[name]
    assert all(len(p.replicas) == 3 for p in meta.partitions.values())

    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True})
    for i in range(2000):
        p.produce(name, key=str(i), value=f"before-{i}")
    assert p.flush(30) == 0

    subprocess.run([str(ROOT / "scripts" / "kafka"), "kill", "2"], check=True)
    for i in range(2000):
        p.produce(name, key=str(i), value=f"during-{i}")
    assert p.flush(60) == 0
    subprocess.run([str(ROOT / "scripts" / "kafka"), "restart", "2"], check=True)

    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"g-{name}", "auto.offset.reset": "earliest"})
    c.subscribe([name])
    values = set()
    deadline = time.time() + 90
    while len(values) < 4000 and time.time() < deadline:
        m = c.poll(1.0)
        if m is not None and not m.error():
            values.add(m.value().decode())
    c.close()
    assert len(values) == 4000


def test_admin_routes_to_brokers_leaders_and_coordinators():
    """kasio's admin client on three brokers: broker configs come from the broker named,
    partition work goes to each leader, group work to each group's coordinator."""
    from test_admin import consume_some, kafka_consumer_groups, kasio, produce

    assert os.environ.get("KASIO_LAB_NODES") == "3", "run with scripts/kafka cluster"
    for broker in (1, 2, 3):
        configs = {c["name"]: c["value"] for c in kasio("configs", "describe", "--broker", str(broker))}
        assert configs["node.id"] == str(broker)

    name = f"admin-rf3-{uuid.uuid4().hex[:6]}"
    [r] = kasio("topics", "create", name, "-p", "6", "-r", "3")
    assert "error" not in r
    deadline = time.time() + 30
    while True:
        # Until every broker has the new topic, the one asked may not know it yet.
        run = kasio("topics", "describe", name, ok=False)
        [d] = json.loads(run.stdout) if run.stdout.strip() else [{}]
        if run.returncode == 0 and "partitions" in d and all(len(p["isr"]) == 3 for p in d["partitions"]):
            break
        assert time.time() < deadline, (run.stdout, run.stderr)
        time.sleep(0.5)
    assert {p["leader"] for p in d["partitions"]} == {1, 2, 3}

    produce(name, 1200, acks="all")
    latest = {o["partition"]: o["offset"] for o in kasio("topics", "offsets", name)}
    assert sum(latest.values()) == 1200
    kasio("topics", "delete-records", name, "0", "5")
    assert {o["partition"]: o["offset"] for o in kasio("topics", "offsets", name, "--at", "earliest")}[0] == 5

    # Groups land on different coordinators; each one's lag is what Kafka's tool says.
    for i in range(3):
        group = f"{name}-g{i}"
        consume_some(name, group, 100 * (i + 1))
        lag = {(x["topic"], x["partition"]): (x["committed"], x["end"], x["lag"]) for x in kasio("groups", "lag", group)}
        assert lag == kafka_consumer_groups(group)
        assert sum(v[0] for v in lag.values()) >= 100 * (i + 1)


def test_a_million_records_copied_exactly_once_through_kills_and_a_broker_restart():
    """consume-transform-produce with kasio (`exactly_once_copy`) on three brokers: while a
    peer writes 1,000,000 records, the copier is killed (SIGKILL) and started again 20
    times, and broker 2 is killed and restarted; librdkafka reading the output with
    read_committed finds every input record exactly once."""
    import random
    import threading
    bootstrap = os.environ["KASIO_LAB_PLAINTEXT"]
    assert os.environ.get("KASIO_LAB_NODES") == "3", "run with scripts/kafka cluster"
    copier = ROOT / "target" / "release" / "examples" / "exactly_once_copy"
    assert copier.exists(), f"build it first: cargo build --release -p kasio --all-features --examples ({copier})"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    source, sink = f"eos-in-{uuid.uuid4().hex[:6]}", f"eos-out-{uuid.uuid4().hex[:6]}"
    for f in admin.create_topics([NewTopic(source, 12, 3, config={"min.insync.replicas": "2"}),
                                  NewTopic(sink, 6, 3, config={"min.insync.replicas": "2"})]).values():
        f.result(30)
    n = 1_000_000
    written = threading.Event()

    def feed():
        p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True,
                      "linger.ms": 20})
        for i in range(n):
            while True:
                try:
                    p.produce(source, key=f"k{i % 997}", value=f"v{i}")
                    break
                except BufferError:
                    p.poll(0.05)
            if i % 20000 == 0:
                p.poll(0)
                time.sleep(0.5)  # spread the input over the kills
        assert p.flush(120) == 0
        written.set()

    feeder = threading.Thread(target=feed)
    feeder.start()
    env = {**os.environ, "KASIO_TRANSACTIONAL_ID": f"copier-{source}",
           "KASIO_GROUP_INSTANCE_ID": f"copier-{source}"}
    args = [str(copier), bootstrap, source, sink, f"copy-{source}", "8000"]
    kafka = str(ROOT / "scripts" / "kafka")
    rng = random.Random(7)
    killed = 0
    for round in range(20):
        if round == 6:
            subprocess.run([kafka, "kill", "2"], check=True)
        if round == 12:
            subprocess.run([kafka, "restart", "2"], check=True)
        proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(rng.uniform(1.0, 3.0))
        if proc.poll() is None:
            proc.kill()
            killed += 1
        proc.wait(10)
    feeder.join(300)
    assert written.is_set(), "the peer could not write the input"
    final = subprocess.run(args, env=env, capture_output=True, text=True, timeout=600)
    assert final.returncode == 0, final.stderr[-2000:]
    assert killed == 20, f"only {killed} kills landed while the copier ran"
    # The killed copiers did part of the work: the last one copied only the rest.
    last = int(final.stdout.split("copied ")[1].split()[0])
    assert last < n, final.stdout

    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"check-{sink}", "isolation.level": "read_committed",
                  "auto.offset.reset": "earliest", "enable.auto.commit": False})
    c.subscribe([sink])
    seen = bytearray(n)
    total, dup = 0, 0
    deadline = time.time() + 240
    while total < n and time.time() < deadline:
        for m in c.consume(10000, 1.0):
            if m.error():
                continue
            i = int(m.value()[1:])
            assert m.value().startswith(b"V")
            dup += seen[i]
            seen[i] = 1
            total += 1
    # Anything more would be a duplicate.
    for m in c.consume(10000, 3.0):
        if not m.error():
            total += 1
            dup += 1
    c.close()
    assert dup == 0, f"{dup} records copied twice"
    assert total == n and all(seen), f"{total} of {n} records copied"
