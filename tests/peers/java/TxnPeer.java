// The Apache Kafka Java client as a transactions peer for the lab (tests/lab/test_transactions.py).
//   read  BOOTSTRAP TOPIC            prints every value a read_committed consumer reads, one per line
//   write BOOTSTRAP TOPIC TXNS N K   writes TXNS transactions of N records ("java-t-r"); every K-th
//                                    is written in full and then aborted
// Run as a single-file program: java -cp "$KASIO_LAB_LIBS/*" TxnPeer.java ...

import java.time.Duration;
import java.util.*;
import org.apache.kafka.clients.consumer.*;
import org.apache.kafka.clients.producer.*;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.*;

public class TxnPeer {
    public static void main(String[] args) throws Exception {
        if (args[0].equals("read")) {
            read(args[1], args[2]);
        } else {
            write(args[1], args[2], Integer.parseInt(args[3]), Integer.parseInt(args[4]), Integer.parseInt(args[5]));
        }
    }

    static void read(String bootstrap, String topic) {
        Properties p = new Properties();
        p.put("bootstrap.servers", bootstrap);
        p.put("isolation.level", "read_committed");
        p.put("key.deserializer", StringDeserializer.class.getName());
        p.put("value.deserializer", StringDeserializer.class.getName());
        try (KafkaConsumer<String, String> c = new KafkaConsumer<>(p)) {
            List<TopicPartition> parts = new ArrayList<>();
            c.partitionsFor(topic).forEach(i -> parts.add(new TopicPartition(topic, i.partition())));
            c.assign(parts);
            c.seekToBeginning(parts);
            // With read_committed, the end offsets are the last stable offsets.
            Map<TopicPartition, Long> ends = c.endOffsets(parts);
            long deadline = System.currentTimeMillis() + 60_000;
            while (parts.stream().anyMatch(tp -> c.position(tp) < ends.get(tp))) {
                if (System.currentTimeMillis() > deadline) throw new IllegalStateException("stalled");
                for (ConsumerRecord<String, String> r : c.poll(Duration.ofMillis(500))) {
                    System.out.println(r.value());
                }
            }
        }
    }

    static void write(String bootstrap, String topic, int txns, int n, int abortEvery) {
        Properties p = new Properties();
        p.put("bootstrap.servers", bootstrap);
        p.put("transactional.id", "java-peer-" + topic);
        p.put("key.serializer", StringSerializer.class.getName());
        p.put("value.serializer", StringSerializer.class.getName());
        try (KafkaProducer<String, String> producer = new KafkaProducer<>(p)) {
            producer.initTransactions();
            for (int t = 0; t < txns; t++) {
                producer.beginTransaction();
                for (int r = 0; r < n; r++) {
                    String v = "java-" + t + "-" + r;
                    producer.send(new ProducerRecord<>(topic, v, v));
                }
                if (abortEvery > 0 && t % abortEvery == abortEvery - 1) {
                    producer.flush();
                    producer.abortTransaction();
                    System.out.println("aborted " + t);
                } else {
                    producer.commitTransaction();
                    System.out.println("committed " + t);
                }
            }
        }
    }
}
