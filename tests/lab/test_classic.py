"""kasio's consumer with the classic group protocol (`group.protocol=classic`) on the real
broker, in one group with librdkafka's classic consumer: as the leader that assigns
(range, computed as the Java client does) and as a follower, with every record read and
the group's commits what Kafka's own tool reports; and with cooperative-sticky, each
leading in turn, the partitions moving incrementally. Runs the release build of the `kasio`
binary, which scripts/test builds before the lab."""

import json
import subprocess
import tempfile
import threading
import time

import pytest

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


class CooperativePeer(Peer):
    """A librdkafka member with cooperative-sticky: its callbacks carry only the
    partitions added or given up (librdkafka assigns incrementally after them)."""

    def __init__(self, topic, group):
        self.seen = set()
        self.partitions = set()
        self.revoked_total = 0
        self.stop = False
        self.consumer = Consumer({"bootstrap.servers": bootstrap(), "group.id": group,
                                  "auto.offset.reset": "earliest",
                                  "partition.assignment.strategy": "cooperative-sticky",
                                  "session.timeout.ms": 6000, "heartbeat.interval.ms": 1000})
        self.consumer.subscribe([topic], on_assign=self.assigned, on_revoke=self.revoked)
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def assigned(self, _, parts):
        self.partitions |= {p.partition for p in parts}

    def revoked(self, _, parts):
        self.revoked_total += len(parts)
        self.partitions -= {p.partition for p in parts}


@pytest.mark.parametrize("kasio_leads", [False, True])
def test_kasio_and_librdkafka_share_a_cooperative_sticky_group(kasio_leads):
    """kasio and librdkafka in one classic group with cooperative-sticky: the second
    member to join takes half the partitions while the first keeps the other half
    throughout (it gives up three, never all six), whichever of them leads and assigns,
    and together they read every record."""
    t, g = name("coop"), name("coop-group")
    peer_admin().create_topics([NewTopic(t, 6, 1)])[t].result(30)
    produce(t, 0, 6000)
    args = [str(KASIO), "-b", bootstrap(), "consume", t, "-g", g, "-o", "beginning", *CLASSIC,
            "-X", "partition.assignment.strategy=cooperative-sticky"]
    kasio_member, peer = None, None
    # A file, not a pipe: a member blocked on a full pipe would miss its heartbeats.
    out_file = tempfile.TemporaryFile(mode="w+")

    def split_evenly():
        described = kasio("groups", "describe", g, ok=False)
        try:
            [d] = json.loads(described.stdout)
        except ValueError:
            return None
        counts = [sum(len(a["partitions"]) for a in m["assignment"]) for m in d.get("members", [])]
        return d if d.get("state") == "Stable" and sorted(counts) == [3, 3] else None

    try:
        if kasio_leads:
            kasio_member = subprocess.Popen(args, stdout=out_file, stderr=subprocess.DEVNULL, text=True)
            deadline = time.time() + 60
            while not kasio("groups", "describe", g, ok=False).stdout.count('"Stable"'):
                assert time.time() < deadline, "kasio never formed the group"
                time.sleep(0.3)
            peer = CooperativePeer(t, g)
        else:
            peer = CooperativePeer(t, g)
            peer.wait(lambda: len(peer.partitions) == 6 and len(peer.seen) == 6000)
            kasio_member = subprocess.Popen(args, stdout=out_file, stderr=subprocess.DEVNULL, text=True)
        deadline = time.time() + 90
        while (d := split_evenly()) is None:
            assert time.time() < deadline, kasio("groups", "describe", g, ok=False).stdout
            time.sleep(0.3)
        assert d["type"] == "classic" and d["assignor"] == "cooperative-sticky", d
        peer.wait(lambda: len(peer.partitions) == 3)
        if not kasio_leads:
            assert peer.revoked_total == 3, "the first member kept half throughout"
        produce(t, 6000, 6000)
        peer.wait(lambda: any(v >= 6000 for v in peer.seen))
        time.sleep(3)
        kasio_member.kill()
        kasio_member.wait(30)
        out_file.seek(0)
        printed = {int(v) for v in out_file.read().split()}
        peer.wait(lambda: set(range(12000)) <= peer.seen | printed)
    finally:
        if kasio_member and kasio_member.poll() is None:
            kasio_member.kill()
        if peer:
            peer.stop = True
            peer.thread.join(30)
