"""kasio's consumer with the classic group protocol (`group.protocol=classic`) on the real
broker, in one group with librdkafka's classic consumer: as the leader that assigns
(range, computed as the Java client does) and as a follower, with every record read and
the group's commits what Kafka's own tool reports. Runs the release build of the `kasio`
binary, which scripts/test builds before the lab."""

import json
import subprocess
import threading
import time

from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import NewTopic
from test_admin import KASIO, bootstrap, kafka_consumer_groups, kasio, name, peer_admin

CLASSIC = ["-X", "group.protocol=classic", "-X", "session.timeout.ms=6000", "-X", "heartbeat.interval.ms=1000"]


def produce(topic, start, count):
    p = Producer({"bootstrap.servers": bootstrap()})
    for i in range(start, start + count):
        p.produce(topic, key=str(i), value=str(i))
    assert p.flush(30) == 0


class Peer:
    """A librdkafka classic member that records what it reads and when it is assigned."""

    def __init__(self, topic, group):
        self.seen = set()
        self.partitions = set()
        self.stop = False
        self.consumer = Consumer({"bootstrap.servers": bootstrap(), "group.id": group,
                                  "auto.offset.reset": "earliest", "partition.assignment.strategy": "range",
                                  "session.timeout.ms": 6000, "heartbeat.interval.ms": 1000})
        self.consumer.subscribe([topic], on_assign=self.assigned, on_revoke=self.revoked)
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def assigned(self, _, parts):
        self.partitions = {p.partition for p in parts}

    def revoked(self, _, parts):
        self.partitions = set()

    def run(self):
        while not self.stop:
            m = self.consumer.poll(0.2)
            if m is not None and not m.error():
                self.seen.add(int(m.value()))
        self.consumer.close()

    def wait(self, check, seconds=60):
        deadline = time.time() + seconds
        while not check():
            assert time.time() < deadline, f"peer: partitions {self.partitions}, {len(self.seen)} seen"
            time.sleep(0.2)


def test_kasio_follows_a_librdkafka_leader():
    t, g = name("classic-follow"), name("classic-follow-group")
    peer_admin().create_topics([NewTopic(t, 4, 1)])[t].result(30)
    produce(t, 0, 4000)
    peer = Peer(t, g)
    try:
        peer.wait(lambda: len(peer.seen) == 4000 and len(peer.partitions) == 4)
        produce(t, 4000, 2000)
        # kasio joins: the group rebalances, kasio reads to the end of what it is given,
        # commits and leaves; the peer takes everything back.
        r = subprocess.run([str(KASIO), "-b", bootstrap(), "consume", t, "-g", g, "-o", "beginning", "-e",
                            *CLASSIC], capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        produce(t, 6000, 1000)
        peer.wait(lambda: len(peer.partitions) == 4 and set(range(7000)) <= peer.seen | {int(v) for v in r.stdout.split()})
    finally:
        peer.stop = True
        peer.thread.join(30)


def test_kasio_leads_and_assigns_to_librdkafka():
    t, g = name("classic-lead"), name("classic-lead-group")
    peer_admin().create_topics([NewTopic(t, 4, 1)])[t].result(30)
    produce(t, 0, 4000)
    kasio_member = subprocess.Popen([str(KASIO), "-b", bootstrap(), "consume", t, "-g", g, "-o", "beginning",
                                     *CLASSIC], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peer = None
    try:
        deadline = time.time() + 60
        while True:
            described = kasio("groups", "describe", g, ok=False)
            try:
                [d] = json.loads(described.stdout)
            except ValueError:
                d = {}
            if d.get("state") == "Stable" and d.get("members"):
                break
            assert time.time() < deadline, described.stdout + described.stderr
            time.sleep(0.3)
        assert d["type"] == "classic" and d["assignor"] == "range"
        # The peer joins; kasio, the leader, assigns it its range.
        peer = Peer(t, g)
        peer.wait(lambda: len(peer.partitions) == 2)
        [d] = kasio("groups", "describe", g)
        owned = sorted(p for m in d["members"] for a in m["assignment"] for p in a["partitions"])
        assert owned == [0, 1, 2, 3] and len(d["members"]) == 2, d
        produce(t, 4000, 2000)
        peer.wait(lambda: any(v >= 4000 for v in peer.seen))
        # kasio dies without leaving: after its session timeout the peer takes its
        # partitions from kasio's last commit, so nothing is lost.
        kasio_member.kill()
        out, _ = kasio_member.communicate(timeout=30)
        printed = {int(v) for v in out.split()}
        peer.wait(lambda: len(peer.partitions) == 4 and set(range(6000)) <= peer.seen | printed)
    finally:
        if kasio_member.poll() is None:
            kasio_member.kill()
        if peer:
            peer.stop = True
            peer.thread.join(30)
    assert kafka_consumer_groups(g), "the group committed nothing"
