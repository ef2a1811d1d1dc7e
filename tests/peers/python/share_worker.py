"""A share-group member on librdkafka (confluent-kafka's ShareConsumer), for the lab's
share tests: it settles each record by the same rule as kasio's `share_worker` example and
prints the same JSON lines.

python share_worker.py BOOTSTRAP GROUP TOPIC IDLE_MS RELEASE REJECT"""

import json
import sys
import time

from confluent_kafka import AcknowledgeType, ShareConsumer


def main():
    bootstrap, group, topic = sys.argv[1:4]
    idle, release, reject = (int(a) for a in sys.argv[4:7])
    consumer = ShareConsumer({"bootstrap.servers": bootstrap, "group.id": group,
                              "share.acknowledgement.mode": "explicit"})

    def confirmed(offsets, error):
        for tp, settled in offsets.items():
            print(json.dumps({"ok": error is None, "p": tp.partition, "offsets": sorted(settled)}), flush=True)

    consumer.set_acknowledgement_commit_callback(confirmed)
    consumer.subscribe([topic])
    last = time.time()
    while time.time() - last < idle / 1000:
        for m in consumer.poll(0.5):
            if m.error():
                continue
            i, n = int(m.value()), m.delivery_count() or 1
            if reject and i % reject == 1:
                kind, name = AcknowledgeType.REJECT, "reject"
            elif release and i % release == 0 and n == 1:
                kind, name = AcknowledgeType.RELEASE, "release"
            else:
                kind, name = AcknowledgeType.ACCEPT, "accept"
            consumer.acknowledge(m, kind)
            print(json.dumps({"p": m.partition(), "o": m.offset(), "i": i, "n": n, "a": name}), flush=True)
            last = time.time()
    consumer.commit_sync()
    consumer.close()


if __name__ == "__main__":
    main()
