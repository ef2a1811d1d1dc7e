// Prints Kafka's error codes as a table for kasio-codegen: code, name, retriable, message.
// Run by scripts/extract-error-codes against the kafka-clients jar.
import org.apache.kafka.common.errors.RetriableException;
import org.apache.kafka.common.protocol.Errors;

public class ErrorCodes {
    public static void main(String[] args) {
        System.out.println("code\tname\tretriable\tmessage");
        for (Errors e : Errors.values()) {
            boolean retriable = e.exception() instanceof RetriableException;
            String message = e.message() == null ? "" : e.message().replace('\t', ' ').replace('\n', ' ');
            System.out.println(e.code() + "\t" + e.name() + "\t" + retriable + "\t" + message);
        }
    }
}
