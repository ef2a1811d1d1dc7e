// Writes golden fixtures with the Apache Kafka Java client (kafka-clients), for kasio's
// fixture tests. Run by tests/peers/write-fixtures; output goes to tests/fixtures/java.
//
// Records follow one pattern every peer writes: record i (0-based) has timestamp
// 1700000000000 + i, key "key-i" (null when i % 4 == 0), value "value-i" repeated i + 1
// times, and one header "h" = "v-i".
import java.io.FileOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

import org.apache.kafka.common.Uuid;
import org.apache.kafka.common.compress.Compression;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.header.internals.RecordHeader;
import org.apache.kafka.common.message.ApiVersionsRequestData;
import org.apache.kafka.common.message.ApiVersionsResponseData;
import org.apache.kafka.common.message.MetadataRequestData;
import org.apache.kafka.common.message.MetadataResponseData;
import org.apache.kafka.common.message.ProduceRequestData;
import org.apache.kafka.common.message.RequestHeaderData;
import org.apache.kafka.common.message.ResponseHeaderData;
import org.apache.kafka.common.protocol.ApiKeys;
import org.apache.kafka.common.protocol.ApiMessage;
import org.apache.kafka.common.protocol.Message;
import org.apache.kafka.common.protocol.MessageUtil;
import org.apache.kafka.common.record.internal.ControlRecordType;
import org.apache.kafka.common.record.internal.EndTransactionMarker;
import org.apache.kafka.common.record.internal.MemoryRecords;
import org.apache.kafka.common.record.internal.MemoryRecordsBuilder;
import org.apache.kafka.common.record.internal.RecordBatch;
import org.apache.kafka.common.record.internal.SimpleRecord;
import org.apache.kafka.common.record.TimestampType;

public class WriteFixtures {
    static String dir;

    static byte[] utf8(String s) {
        return s == null ? null : s.getBytes(StandardCharsets.UTF_8);
    }

    static SimpleRecord record(int i) {
        String key = i % 4 == 0 ? null : "key-" + i;
        String value = ("value-" + i).repeat(i + 1);
        Header[] headers = { new RecordHeader("h", utf8("v-" + i)) };
        return new SimpleRecord(1700000000000L + i, utf8(key), utf8(value), headers);
    }

    static MemoryRecords batch(Compression c, int n, long pid, short epoch, int seq, boolean txn) {
        ByteBuffer buf = ByteBuffer.allocate(1 << 20);
        MemoryRecordsBuilder b = MemoryRecords.builder(buf, RecordBatch.MAGIC_VALUE_V2, c, TimestampType.CREATE_TIME,
            0L, RecordBatch.NO_TIMESTAMP, pid, epoch, seq, txn, RecordBatch.NO_PARTITION_LEADER_EPOCH);
        for (int i = 0; i < n; i++) b.append(record(i));
        return b.build();
    }

    static void write(String name, ByteBuffer buf) throws IOException {
        byte[] bytes = new byte[buf.remaining()];
        buf.duplicate().get(bytes);
        try (FileOutputStream out = new FileOutputStream(dir + "/" + name)) {
            out.write(bytes);
        }
    }

    static ByteBuffer concat(ByteBuffer a, ByteBuffer b) {
        ByteBuffer out = ByteBuffer.allocate(a.remaining() + b.remaining());
        out.put(a.duplicate()).put(b.duplicate()).flip();
        return out;
    }

    static ByteBuffer request(ApiMessage body, short version, int correlationId) {
        ApiKeys key = ApiKeys.forId(body.apiKey());
        RequestHeaderData h = new RequestHeaderData().setRequestApiKey(key.id).setRequestApiVersion(version)
            .setCorrelationId(correlationId).setClientId("java-peer");
        return concat(MessageUtil.toByteBufferAccessor(h, key.requestHeaderVersion(version)).buffer(),
                      MessageUtil.toByteBufferAccessor(body, version).buffer());
    }

    static ByteBuffer response(ApiMessage body, short version, int correlationId) {
        ApiKeys key = ApiKeys.forId(body.apiKey());
        ResponseHeaderData h = new ResponseHeaderData().setCorrelationId(correlationId);
        return concat(MessageUtil.toByteBufferAccessor(h, key.responseHeaderVersion(version)).buffer(),
                      MessageUtil.toByteBufferAccessor(body, version).buffer());
    }

    public static void main(String[] args) throws Exception {
        dir = args[0];
        String[] names = { "none", "gzip", "snappy", "lz4", "zstd" };
        Compression[] codecs = { Compression.NONE, Compression.gzip().build(), Compression.snappy().build(),
            Compression.lz4().build(), Compression.zstd().build() };
        for (int c = 0; c < codecs.length; c++) {
            write("batch-" + names[c] + ".bin", batch(codecs[c], 10, 1234L, (short) 5, 10, false).buffer());
        }
        write("batch-transactional-zstd.bin", batch(codecs[4], 3, 99L, (short) 1, 0, true).buffer());
        write("control-commit.bin", MemoryRecords.withEndTransactionMarker(0L, 1700000000000L, RecordBatch.NO_PARTITION_LEADER_EPOCH,
            99L, (short) 1, new EndTransactionMarker(ControlRecordType.COMMIT, 7)).buffer());

        // Requests: header then body, as a broker reads a frame after its size.
        write("request-api-versions-v4.bin", request(new ApiVersionsRequestData()
            .setClientSoftwareName("java-peer").setClientSoftwareVersion("4.4.0"), (short) 4, 1));
        MetadataRequestData md = new MetadataRequestData().setAllowAutoTopicCreation(false);
        md.topics().add(new MetadataRequestData.MetadataRequestTopic().setName("orders")
            .setTopicId(new Uuid(0x0123456789abcdefL, 0x0fedcba987654321L)));
        md.topics().add(new MetadataRequestData.MetadataRequestTopic().setName("payments"));
        write("request-metadata-v12.bin", request(md, (short) 12, 2));
        ProduceRequestData pd = new ProduceRequestData().setAcks((short) -1).setTimeoutMs(30000);
        ProduceRequestData.TopicProduceData tpd = new ProduceRequestData.TopicProduceData().setName("orders");
        tpd.partitionData().add(new ProduceRequestData.PartitionProduceData().setIndex(3)
            .setRecords(batch(codecs[3], 10, 1234L, (short) 5, 10, false)));
        pd.topicData().add(tpd);
        write("request-produce-v11.bin", request(pd, (short) 11, 3));

        // Responses: header then body, as a client reads a frame after its size.
        ApiVersionsResponseData av = new ApiVersionsResponseData().setErrorCode((short) 0).setThrottleTimeMs(0)
            .setFinalizedFeaturesEpoch(42);
        av.apiKeys().add(new ApiVersionsResponseData.ApiVersion().setApiKey((short) 0).setMinVersion((short) 3).setMaxVersion((short) 12));
        av.apiKeys().add(new ApiVersionsResponseData.ApiVersion().setApiKey((short) 3).setMinVersion((short) 0).setMaxVersion((short) 13));
        av.supportedFeatures().add(new ApiVersionsResponseData.SupportedFeatureKey().setName("transaction.version")
            .setMinVersion((short) 0).setMaxVersion((short) 2));
        av.finalizedFeatures().add(new ApiVersionsResponseData.FinalizedFeatureKey().setName("transaction.version")
            .setMinVersionLevel((short) 2).setMaxVersionLevel((short) 2));
        write("response-api-versions-v3.bin", response(av, (short) 3, 1));
        MetadataResponseData mr = new MetadataResponseData().setClusterId("kasio-cluster").setControllerId(1);
        mr.brokers().add(new MetadataResponseData.MetadataResponseBroker().setNodeId(1).setHost("127.0.0.1").setPort(9092).setRack("r1"));
        MetadataResponseData.MetadataResponseTopic t = new MetadataResponseData.MetadataResponseTopic().setName("orders")
            .setTopicId(new Uuid(0x0123456789abcdefL, 0x0fedcba987654321L));
        for (int p = 0; p < 3; p++) {
            t.partitions().add(new MetadataResponseData.MetadataResponsePartition().setPartitionIndex(p).setLeaderId(1)
                .setLeaderEpoch(p).setReplicaNodes(List.of(1)).setIsrNodes(List.of(1)));
        }
        mr.topics().add(t);
        write("response-metadata-v12.bin", response(mr, (short) 12, 2));
    }
}
