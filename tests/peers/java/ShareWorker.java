// A share-group member on the Java client (KafkaShareConsumer), for the lab's share
// tests: it settles each record by the same rule as kasio's `share_worker` example and
// prints the same JSON lines (a decision per record, and each acknowledgement the broker
// confirmed or refused). Run as a single source file:
//   java -cp "$KASIO_LAB_LIBS/*" ShareWorker.java BOOTSTRAP GROUP TOPIC IDLE_MS RELEASE REJECT
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.stream.Collectors;
import org.apache.kafka.clients.consumer.AcknowledgeType;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaShareConsumer;
import org.apache.kafka.common.TopicIdPartition;

public class ShareWorker {
    public static void main(String[] args) {
        String bootstrap = args[0], group = args[1], topic = args[2];
        long idle = Long.parseLong(args[3]), release = Long.parseLong(args[4]), reject = Long.parseLong(args[5]);
        Properties props = new Properties();
        props.put("bootstrap.servers", bootstrap);
        props.put("group.id", group);
        props.put("share.acknowledgement.mode", "explicit");
        props.put("key.deserializer", "org.apache.kafka.common.serialization.ByteArrayDeserializer");
        props.put("value.deserializer", "org.apache.kafka.common.serialization.StringDeserializer");
        try (KafkaShareConsumer<byte[], String> consumer = new KafkaShareConsumer<>(props)) {
            consumer.setAcknowledgementCommitCallback((Map<TopicIdPartition, Set<Long>> offsets, Exception e) -> {
                for (Map.Entry<TopicIdPartition, Set<Long>> entry : offsets.entrySet()) {
                    String list = entry.getValue().stream().sorted().map(String::valueOf).collect(Collectors.joining(","));
                    System.out.println("{\"ok\":" + (e == null) + ",\"p\":" + entry.getKey().partition()
                        + ",\"offsets\":[" + list + "]}");
                }
            });
            consumer.subscribe(List.of(topic));
            long last = System.currentTimeMillis();
            while (System.currentTimeMillis() - last < idle) {
                ConsumerRecords<byte[], String> records = consumer.poll(Duration.ofMillis(500));
                for (ConsumerRecord<byte[], String> r : records) {
                    long i = Long.parseLong(r.value().trim());
                    short n = r.deliveryCount().orElse((short) 1);
                    AcknowledgeType kind = AcknowledgeType.ACCEPT;
                    String name = "accept";
                    if (reject > 0 && i % reject == 1) {
                        kind = AcknowledgeType.REJECT;
                        name = "reject";
                    } else if (release > 0 && i % release == 0 && n == 1) {
                        kind = AcknowledgeType.RELEASE;
                        name = "release";
                    }
                    consumer.acknowledge(r, kind);
                    System.out.println("{\"p\":" + r.partition() + ",\"o\":" + r.offset() + ",\"i\":" + i
                        + ",\"n\":" + n + ",\"a\":\"" + name + "\"}");
                    last = System.currentTimeMillis();
                }
            }
            consumer.commitSync();
        }
    }
}
