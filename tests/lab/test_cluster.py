"""The three-node lab (scripts/kafka cluster): a topic with replication factor 3 is created and
used, and survives one broker being killed and restarted."""

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
        [d] = kasio("topics", "describe", name)
        if "partitions" in d and all(len(p["isr"]) == 3 for p in d["partitions"]):
            break
        assert time.time() < deadline, d
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
