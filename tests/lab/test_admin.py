"""kasio's admin client, through the `kasio` command-line tool's JSON output, against the
real broker: every operation is checked by reading the broker's state back with a peer
(librdkafka through confluent-kafka, and Kafka's own kafka-consumer-groups tool).
Runs the release build of the `kasio` binary, which scripts/test builds before the lab."""

import json
import os
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic

ROOT = Path(__file__).resolve().parents[2]
KASIO = ROOT / "target" / "release" / "kasio"


def bootstrap():
    addr = os.environ.get("KASIO_LAB_PLAINTEXT")
    if not addr:
        pytest.fail("KASIO_LAB_PLAINTEXT is not set: start the lab with scripts/kafka up")
    return addr


def kasio(*args, ok=True, timeout=60):
    assert KASIO.exists(), f"build it first: cargo build --release -p kasio-cli ({KASIO})"
    run = subprocess.run([str(KASIO), "-b", bootstrap(), "--json", *args],
                         capture_output=True, text=True, timeout=timeout)
    if ok:
        assert run.returncode == 0, f"kasio {' '.join(args)}: {run.stderr}"
        return json.loads(run.stdout)
    return run


def name(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


_PEER = []


def peer_admin():
    """One librdkafka admin client for the module: a client dropped while its futures are
    pending fails them with _DESTROY."""
    if not _PEER:
        _PEER.append(AdminClient({"bootstrap.servers": bootstrap()}))
    return _PEER[0]


def eventually(check, seconds=15):
    """KRaft brokers apply metadata changes asynchronously: wait until `check` holds."""
    deadline = time.time() + seconds
    while True:
        try:
            result = check()
            if result:
                return result
        except AssertionError:
            if time.time() > deadline:
                raise
        if time.time() > deadline:
            pytest.fail(f"not true after {seconds} s: {check.__doc__ or check}")
        time.sleep(0.2)


def produce(topic, n, **conf):
    p = Producer({"bootstrap.servers": bootstrap(), "linger.ms": 5, **conf})
    for i in range(n):
        p.produce(topic, key=f"k{i % 17}", value=f"v{i}")
    assert p.flush(30) == 0


def test_cluster_matches_what_librdkafka_sees():
    c = kasio("cluster")
    md = peer_admin().list_topics(timeout=10)
    assert c["cluster_id"] == md.cluster_id
    assert sorted(b["id"] for b in c["brokers"]) == sorted(md.brokers)
    assert c["controller"] in md.brokers
    apis = kasio("api-versions", str(c["brokers"][0]["id"]))
    produce_api = next(a for a in apis if a["name"] == "Produce")
    assert produce_api["max"] >= 12


def test_topic_lifecycle_is_what_the_broker_holds():
    t = name("admin-topic")
    [r] = kasio("topics", "create", t, "-p", "2", "-r", "1", "-c", "retention.ms=3600000")
    assert "error" not in r and r["name"] == t
    again = kasio("topics", "create", t, "-p", "2", ok=False)
    assert again.returncode != 0 and "TOPIC_ALREADY_EXISTS" in again.stdout

    md = eventually(lambda: peer_admin().list_topics(t, timeout=10).topics[t].error is None and
                    peer_admin().list_topics(t, timeout=10))
    assert len(md.topics[t].partitions) == 2
    assert t in [x["name"] for x in kasio("topics", "list")]
    assert "__consumer_offsets" not in [x["name"] for x in kasio("topics", "list")]
    [d] = kasio("topics", "describe", t)
    assert [p["partition"] for p in d["partitions"]] == [0, 1]
    for p in d["partitions"]:
        assert p["leader"] == md.topics[t].partitions[p["partition"]].leader
        assert p["isr"] == list(md.topics[t].partitions[p["partition"]].isrs)

    # Configs: the alteration is what both kasio and librdkafka describe afterwards.
    res = ConfigResource("topic", t)
    kasio("configs", "alter", "--topic", t, "--set", "retention.ms=7200000", "--set", "cleanup.policy=compact")

    def altered():
        mine = {c["name"]: c["value"] for c in kasio("configs", "describe", "--topic", t)}
        theirs = peer_admin().describe_configs([res])[res].result(10)
        return (mine["retention.ms"] == "7200000" and mine["cleanup.policy"] == "compact" and
                theirs["retention.ms"].value == "7200000" and theirs["cleanup.policy"].value == "compact")
    eventually(altered)
    kasio("configs", "alter", "--topic", t, "--delete", "cleanup.policy")
    eventually(lambda: peer_admin().describe_configs([res])[res].result(10)["cleanup.policy"].value == "delete")

    # More partitions.
    kasio("topics", "add-partitions", t, "5")
    eventually(lambda: len(peer_admin().list_topics(t, timeout=10).topics[t].partitions) == 5)

    # Offsets and deleted records, against librdkafka's watermarks.
    produce(t, 500)
    c = Consumer({"bootstrap.servers": bootstrap(), "group.id": name("wm")})
    latest = {o["partition"]: o["offset"] for o in kasio("topics", "offsets", t, "--at", "latest")}
    for p in range(5):
        assert latest[p] == c.get_watermark_offsets(TopicPartition(t, p), timeout=10)[1]
    busiest = max(latest, key=latest.get)
    [dr] = kasio("topics", "delete-records", t, str(busiest), "10")
    assert dr["low_watermark"] == 10
    assert c.get_watermark_offsets(TopicPartition(t, busiest), timeout=10)[0] == 10
    earliest = {o["partition"]: o["offset"] for o in kasio("topics", "offsets", t, "--at", "earliest")}
    assert earliest[busiest] == 10
    c.close()

    [r] = kasio("topics", "delete", t)
    assert "error" not in r
    eventually(lambda: t not in peer_admin().list_topics(timeout=10).topics)
    missing = kasio("topics", "describe", t, ok=False)
    assert missing.returncode != 0 and "UNKNOWN_TOPIC_OR_PARTITION" in missing.stdout


def consume_some(topic, group, n, **conf):
    """A librdkafka group member reads `n` records and commits; the first offset it read
    per partition."""
    c = Consumer({"bootstrap.servers": bootstrap(), "group.id": group, "auto.offset.reset": "earliest",
                  "enable.auto.commit": False, **conf})
    c.subscribe([topic])
    first = {}
    got = 0
    deadline = time.time() + 60
    while got < n and time.time() < deadline:
        m = c.poll(0.5)
        if m is None or m.error():
            continue
        first.setdefault(m.partition(), m.offset())
        got += 1
    assert got == n, f"read {got} of {n}"
    c.commit(asynchronous=False)
    c.close()
    return first


def kafka_consumer_groups(group):
    """Kafka's own tool: (topic, partition) -> (current offset, log end offset, lag)."""
    libs = os.environ["KASIO_LAB_LIBS"]
    run = subprocess.run(["java", "-cp", f"{libs}/*", "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand",
                          "--bootstrap-server", bootstrap(), "--describe", "--group", group],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    rows = {}
    for line in run.stdout.splitlines():
        cols = line.split()
        if len(cols) >= 6 and cols[0] == group and cols[2].isdigit():
            rows[(cols[1], int(cols[2]))] = tuple(int(x) if x.lstrip("-").isdigit() else None for x in cols[3:6])
    return rows


def test_group_lag_matches_kafka_consumer_groups_and_resets_move_a_peer():
    t, g = name("admin-lag"), name("admin-group")
    peer_admin().create_topics([NewTopic(t, 3, 1)])[t].result(30)
    produce(t, 900)
    consume_some(t, g, 400)

    lag = {(x["topic"], x["partition"]): (x["committed"], x["end"], x["lag"]) for x in kasio("groups", "lag", g)}
    theirs = kafka_consumer_groups(g)
    assert lag and lag == theirs, (lag, theirs)

    [listed] = [x for x in kasio("groups", "list") if x["group"] == g]
    assert listed["state"] == "Empty" and listed["type"] == "classic"
    [d] = kasio("groups", "describe", g)
    assert d["state"] == "Empty" and d["type"] == "classic" and d["members"] == []

    # Reset to the beginning: a peer joining the group starts at offset 0 everywhere.
    reset = kasio("groups", "reset", g, "--to", "earliest")
    assert {r["offset"] for r in reset} == {0}
    assert all(lag_row[0] == 0 for lag_row in kafka_consumer_groups(g).values())
    first = consume_some(t, g, 30)
    assert set(first.values()) == {0}, first

    # Committed offsets as the group holds them; then to the end: no lag.
    offsets = {(x["topic"], x["partition"]): x["offset"] for x in kasio("groups", "offsets", g)}
    assert offsets == {k: v[0] for k, v in kafka_consumer_groups(g).items() if v[0] is not None}
    reset = kasio("groups", "reset", g, "--to", "latest")
    assert all(row[2] == 0 for row in kafka_consumer_groups(g).values())
    assert {(r["topic"], r["partition"]): r["offset"] for r in reset} == \
        {k: v[1] for k, v in kafka_consumer_groups(g).items()}

    # Reset one partition to an offset; delete another's committed offset.
    kasio("groups", "reset", g, "--to", "offset:7", "--partition", f"{t}:1")
    committed = {x["partition"]: x["committed"] for x in kasio("groups", "lag", g)}
    assert committed[1] == 7
    kasio("groups", "delete-offsets", g, f"{t}:2")
    assert 2 not in {x["partition"] for x in kasio("groups", "lag", g)}
    assert (t, 1) in kafka_consumer_groups(g) and kafka_consumer_groups(g)[(t, 1)][0] == 7

    [r] = kasio("groups", "delete", g)
    assert r["error"] is None
    assert g not in [x["group"] for x in kasio("groups", "list")]
    gone = kasio("groups", "describe", g, ok=False)
    assert gone.returncode != 0 and "GROUP_ID_NOT_FOUND" in gone.stdout


def test_a_kip848_group_is_described_with_its_members():
    t, g = name("admin-848"), name("admin-848-group")
    peer_admin().create_topics([NewTopic(t, 4, 1)])[t].result(30)
    produce(t, 100)
    c = Consumer({"bootstrap.servers": bootstrap(), "group.id": g, "group.protocol": "consumer",
                  "auto.offset.reset": "earliest", "client.id": "peer-848"})
    c.subscribe([t])
    try:
        def described():
            c.poll(0.2)
            [d] = kasio("groups", "describe", g)
            assigned = sorted(p for m in d.get("members", []) for a in m["assignment"] for p in a["partitions"])
            return d if d.get("type") == "consumer" and assigned == [0, 1, 2, 3] else None
        d = eventually(described, 45)
        assert d["state"] == "Stable"
        [m] = d["members"]
        assert m["client_id"] == "peer-848"
        assert [a["topic"] for a in m["assignment"]] == [t]
    finally:
        c.close()


def test_an_acl_refuses_a_user_until_it_is_deleted():
    t = name("admin-acl")
    peer_admin().create_topics([NewTopic(t, 1, 1)])[t].result(30)
    user_conf = {"bootstrap.servers": os.environ["KASIO_LAB_SASL_PLAINTEXT"], "security.protocol": "SASL_PLAINTEXT",
                 "sasl.mechanism": "PLAIN", "sasl.username": os.environ["KASIO_LAB_USER"],
                 "sasl.password": os.environ["KASIO_LAB_PASSWORD"]}
    principal = f"User:{os.environ['KASIO_LAB_USER']}"

    def alice_writes():
        errors = []
        p = Producer({**user_conf, "message.timeout.ms": 10000})
        p.produce(t, value=b"x", on_delivery=lambda err, msg: errors.append(err))
        p.flush(15)
        return errors[0]

    assert alice_writes() is None
    [r] = kasio("acls", "create", "--topic", t, "--principal", principal, "--operation", "write", "--permission", "deny")
    assert r["error"] is None
    # The broker answers from its copy of the metadata log, which takes the new ACL a moment later.
    listed = eventually(lambda: kasio("acls", "list", "--topic", t))
    assert listed == [{"resource_type": "Topic", "name": t, "pattern": "Literal", "principal": principal,
                       "host": "*", "operation": "Write", "permission": "Deny"}]
    err = eventually(alice_writes)
    assert err.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    deleted = kasio("acls", "delete", "--topic", t, "--principal", principal)
    assert len(deleted) == 1
    eventually(lambda: kasio("acls", "list", "--topic", t) == [])
    eventually(lambda: alice_writes() is None)


def test_scram_credentials_set_by_kasio_authenticate_a_peer():
    user, password = name("user"), "s3cret-" + uuid.uuid4().hex[:8]
    [r] = kasio("scram", "set", user, "--mechanism", "SCRAM-SHA-512", "--iterations", "4096", "--password", password)
    assert r["error"] is None
    # Credentials, like ACLs, reach the broker that describes them through its metadata log.
    described = eventually(lambda: (r := kasio("scram", "describe", user, ok=False)).returncode == 0 and r)
    [d] = json.loads(described.stdout)
    assert d["credentials"] == [{"mechanism": "SCRAM-SHA-512", "iterations": 4096}]

    def authenticates(pw):
        a = AdminClient({"bootstrap.servers": os.environ["KASIO_LAB_SASL_PLAINTEXT"],
                         "security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": "SCRAM-SHA-512",
                         "sasl.username": user, "sasl.password": pw, "log_level": 0})
        try:
            a.list_topics(timeout=5)
            return True
        except Exception:
            return False

    eventually(lambda: authenticates(password))
    assert not authenticates("wrong")
    kasio("scram", "delete", user, "--mechanism", "SCRAM-SHA-512")
    gone = eventually(lambda: (r := kasio("scram", "describe", user, ok=False)).returncode != 0 and r)
    [d] = json.loads(gone.stdout)
    assert d["error"]["code"] == "RESOURCE_NOT_FOUND"


def test_client_quotas_are_set_described_and_removed():
    user = name("quota-user")
    kasio("quotas", "alter", "--user", user, "--set", "producer_byte_rate=1048576", "--set", "consumer_byte_rate=2048")
    entry = eventually(lambda: kasio("quotas", "describe", "--user", user))
    assert entry == [{"entity": {"user": user},
                      "values": {"producer_byte_rate": 1048576.0, "consumer_byte_rate": 2048.0}}]
    kasio("quotas", "alter", "--user", user, "--remove", "producer_byte_rate")
    eventually(lambda: kasio("quotas", "describe", "--user", user) ==
               [{"entity": {"user": user}, "values": {"consumer_byte_rate": 2048.0}}])


def test_errors_are_one_line_and_exit_non_zero():
    bad_key = kasio("-X", "no.such.key=1", "cluster", ok=False)
    assert bad_key.returncode != 0 and bad_key.stderr.strip() == "kasio: unknown configuration key `no.such.key`"
    run = subprocess.run([str(KASIO), "-b", "127.0.0.1:1", "-X", "default.api.timeout.ms=2000", "cluster"],
                         capture_output=True, text=True, timeout=30)
    assert run.returncode != 0
    assert run.stderr.count("\n") == 1 and run.stderr.startswith("kasio: no broker could be reached (127.0.0.1:1")
    assert "panicked" not in run.stderr


def test_the_admin_demo_example_runs_against_kafka():
    demo = ROOT / "target" / "release" / "examples" / "admin_demo"
    assert demo.exists(), f"build it first: cargo build --release -p kasio --all-features --examples ({demo})"
    run = subprocess.run([str(demo)], env={**os.environ, "KASIO_BOOTSTRAP": bootstrap()},
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "config retention.ms = Some(\"3600000\")" in run.stdout
    assert "after reset to latest, total lag 0" in run.stdout


def test_topics_by_assignment_validation_id_and_internal_flag():
    t = name("admin-assign")
    [r] = kasio("topics", "create", t, "-p", "3", "--validate-only")
    assert "error" not in r
    time.sleep(1)
    assert t not in peer_admin().list_topics(timeout=10).topics, "validate-only created the topic"

    broker = str(kasio("cluster")["brokers"][0]["id"])
    kasio("topics", "create", t, "--replica-assignment", f"{broker},{broker}")
    md = eventually(lambda: t in peer_admin().list_topics(timeout=10).topics and peer_admin().list_topics(t, timeout=10))
    assert sorted(md.topics[t].partitions) == [0, 1]
    [d] = kasio("topics", "describe", t)
    assert [p["replicas"] for p in d["partitions"]] == [[int(broker)], [int(broker)]]

    internal = {x["name"]: x["internal"] for x in kasio("topics", "list", "--internal")}
    assert internal.get("__consumer_offsets") is True and internal[t] is False

    [listed] = [x for x in kasio("topics", "list") if x["name"] == t]
    [r] = kasio("topics", "delete", "--by-id", listed["id"])
    assert "error" not in r
    eventually(lambda: t not in peer_admin().list_topics(timeout=10).topics)


def test_offsets_by_timestamp_and_group_reset_to_a_timestamp():
    t, g = name("admin-ts"), name("admin-ts-group")
    peer_admin().create_topics([NewTopic(t, 1, 1)])[t].result(30)
    base = int(time.time() * 1000) - 60_000
    p = Producer({"bootstrap.servers": bootstrap()})
    for i in range(10):
        p.produce(t, value=f"v{i}", timestamp=base + i * 1000)
    assert p.flush(30) == 0

    [o] = kasio("topics", "offsets", t, "--at", str(base + 5500))
    assert o["offset"] == 6 and o["timestamp"] == base + 6000
    [o] = kasio("topics", "offsets", t, "--at", "max-timestamp")
    assert o["offset"] == 9 and o["timestamp"] == base + 9000
    [o] = kasio("topics", "offsets", t, "--at", str(base + 60_000))
    assert o["offset"] == -1

    [r] = kasio("groups", "reset", g, "--to", str(base + 3000), "--partition", f"{t}:0")
    assert r["offset"] == 3
    assert kafka_consumer_groups(g)[(t, 0)][0] == 3
    first = consume_some(t, g, 2)
    assert first == {0: 3}


def test_a_broker_config_is_altered_and_restored():
    broker = str(kasio("cluster")["brokers"][0]["id"])

    def value():
        return {c["name"]: c for c in kasio("configs", "describe", "--broker", broker)}["log.cleaner.threads"]

    kasio("configs", "alter", "--broker", broker, "--set", "log.cleaner.threads=2")
    c = eventually(lambda: value()["value"] == "2" and value())
    assert c["source"] == "DynamicBroker"
    kasio("configs", "alter", "--broker", broker, "--delete", "log.cleaner.threads")
    eventually(lambda: value()["source"] != "DynamicBroker")


def test_a_classic_group_member_is_described_with_its_assignment():
    t, g = name("admin-classic"), name("admin-classic-group")
    peer_admin().create_topics([NewTopic(t, 2, 1)])[t].result(30)
    c = Consumer({"bootstrap.servers": bootstrap(), "group.id": g, "client.id": "peer-classic",
                  "partition.assignment.strategy": "range"})
    c.subscribe([t])
    try:
        def described():
            c.poll(0.2)
            [d] = kasio("groups", "describe", g)
            members = d.get("members") or []
            return d if d.get("state") == "Stable" and members and members[0]["assignment"] else None
        d = eventually(described, 45)
        assert d["type"] == "classic" and d["assignor"] == "range"
        [m] = d["members"]
        assert m["client_id"] == "peer-classic"
        assert m["assignment"] == [{"topic": t, "partitions": [0, 1]}]
    finally:
        c.close()
