"""Writes golden fixtures with kafka-python, for kasio's fixture tests.

Run by tests/peers/write-fixtures. Records follow the pattern every peer writes: record i
(0-based) has timestamp 1700000000000 + i, key "key-i" (None when i % 4 == 0), value
"value-i" repeated i + 1 times, and one header "h" = "v-i". Legacy (v0/v1) message sets
carry no headers.
"""
import sys
import uuid

from kafka.protocol.metadata import ApiVersionsRequest, MetadataRequest, MetadataResponse
from kafka.record.default_records import DefaultRecordBatchBuilder
from kafka.record.legacy_records import LegacyRecordBatchBuilder

CODECS = {"none": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}
TOPIC_ID = uuid.UUID(int=0x0123456789ABCDEF0FEDCBA987654321)


def pattern(i):
    key = None if i % 4 == 0 else f"key-{i}".encode()
    value = (f"value-{i}" * (i + 1)).encode()
    return 1700000000000 + i, key, value


def write(out, name, data):
    with open(f"{out}/{name}", "wb") as f:
        f.write(bytes(data))


def main(out):
    for name, codec in CODECS.items():
        b = DefaultRecordBatchBuilder(
            magic=2, compression_type=codec, is_transactional=False,
            producer_id=1234, producer_epoch=5, base_sequence=10, batch_size=1 << 20)
        for i in range(10):
            ts, key, value = pattern(i)
            b.append(i, timestamp=ts, key=key, value=value, headers=[("h", f"v-{i}".encode())])
        write(out, f"batch-{name}.bin", b.build())

    for magic in (0, 1):
        for name in ("none", "gzip", "snappy", "lz4"):
            if magic == 0 and name == "lz4":
                continue  # v0 LZ4 used a broken frame checksum that Kafka itself rejects since 0.10
            b = LegacyRecordBatchBuilder(magic=magic, compression_type=CODECS[name], batch_size=1 << 20)
            for i in range(10):
                ts, key, value = pattern(i)
                b.append(i, timestamp=ts if magic else None, key=key, value=value)
            write(out, f"legacy-v{magic}-{name}.bin", b.build())

    req = ApiVersionsRequest[4](client_software_name="kafka-python", client_software_version="3.0.12")
    req.with_header(correlation_id=1, client_id="kafka-python")
    write(out, "request-api-versions-v4.bin", req.encode(header=True))

    topic = MetadataRequest.MetadataRequestTopic
    req = MetadataRequest[12](
        topics=[topic(topic_id=TOPIC_ID, name="orders"), topic(topic_id=uuid.UUID(int=0), name="payments")],
        allow_auto_topic_creation=False)
    req.with_header(correlation_id=2, client_id="kafka-python")
    write(out, "request-metadata-v12.bin", req.encode(header=True))

    R = MetadataResponse
    partitions = [
        R.MetadataResponseTopic.MetadataResponsePartition(
            error_code=0, partition_index=p, leader_id=1, leader_epoch=p,
            replica_nodes=[1], isr_nodes=[1], offline_replicas=[])
        for p in range(3)
    ]
    resp = R[12](
        throttle_time_ms=0,
        brokers=[R.MetadataResponseBroker(node_id=1, host="127.0.0.1", port=9092, rack="r1")],
        cluster_id="kasio-cluster", controller_id=1,
        topics=[R.MetadataResponseTopic(error_code=0, name="orders", topic_id=TOPIC_ID, is_internal=False,
                                        partitions=partitions)])
    resp.with_header(correlation_id=2)
    write(out, "response-metadata-v12.bin", resp.encode(header=True))


if __name__ == "__main__":
    main(sys.argv[1])
