// Prints __transaction_state records as Apache Kafka 3.9's own transaction coordinator
// serializes them (kafka.coordinator.transaction.TransactionLog, the code that writes the
// log), one per line: "<name> <key hex> <value hex or null>", and the partition Kafka
// picks for some transactional ids: "partition_for <id> <partitions> <partition>".
// The Rust tests in src/tests/encoding.rs decode this output and encode it again
// (transaction-log-records.txt); regenerate it with generate-transaction-log-records.sh.

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import kafka.coordinator.transaction.TransactionLog$;
import kafka.coordinator.transaction.TransactionState;
import kafka.coordinator.transaction.TxnTransitMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.protocol.MessageUtil;
import org.apache.kafka.common.utils.Utils;
import org.apache.kafka.coordinator.transaction.generated.TransactionLogValue;

public class TransactionLogRecords {
    private static String hex(byte[] bytes) {
        if (bytes == null) return "null";
        StringBuilder sb = new StringBuilder();
        for (byte b : bytes) sb.append(String.format("%02x", b));
        return sb.toString();
    }

    /** Partitions in insertion order: Scala's small immutable sets keep it. */
    private static scala.collection.immutable.Set<TopicPartition> partitions(TopicPartition... tps) {
        scala.collection.immutable.Set<TopicPartition> set = scala.collection.immutable.Set$.MODULE$.empty();
        for (TopicPartition tp : tps) set = set.incl(tp);
        return set;
    }

    private static void print(String name, String transactionalId, TransactionState state, long producerId,
                              short epoch, int timeoutMs, scala.collection.immutable.Set<TopicPartition> tps,
                              long startMs, long updateMs, boolean flexible) {
        TxnTransitMetadata metadata = TxnTransitMetadata.apply(producerId, -1L, epoch, (short) -1, timeoutMs,
            state, tps, startMs, updateMs);
        System.out.println(name + " " + hex(TransactionLog$.MODULE$.keyToBytes(transactionalId)) + " "
            + hex(TransactionLog$.MODULE$.valueToBytes(metadata, flexible)));
    }

    /** Several topics: built from the generated schema class so the topic order is fixed. */
    private static void printMultiTopic(String name, String transactionalId, short version) {
        List<TransactionLogValue.PartitionsSchema> topics = new ArrayList<>();
        topics.add(new TransactionLogValue.PartitionsSchema().setTopic("a").setPartitionIds(Arrays.asList(0, 1)));
        topics.add(new TransactionLogValue.PartitionsSchema().setTopic("b").setPartitionIds(Arrays.asList(7)));
        TransactionLogValue value = new TransactionLogValue()
            .setProducerId(4000L)
            .setProducerEpoch((short) 12)
            .setTransactionTimeoutMs(900000)
            .setTransactionStatus((byte) 2)
            .setTransactionPartitions(topics)
            .setTransactionLastUpdateTimestampMs(5000L)
            .setTransactionStartTimestampMs(4000L);
        System.out.println(name + " " + hex(TransactionLog$.MODULE$.keyToBytes(transactionalId)) + " "
            + hex(MessageUtil.toVersionPrefixedBytes(version, value)));
    }

    public static void main(String[] args) {
        print("empty_v0", "txn-1", kafka.coordinator.transaction.Empty$.MODULE$, 1000L, (short) 0, 60000,
            partitions(), -1L, 1234L, false);
        print("ongoing_v0", "txn-1", kafka.coordinator.transaction.Ongoing$.MODULE$, 1000L, (short) 3, 60000,
            partitions(new TopicPartition("orders", 0), new TopicPartition("orders", 2)), 1000L, 1200L, false);
        print("prepare_commit_v0", "txn-1", kafka.coordinator.transaction.PrepareCommit$.MODULE$, 1000L, (short) 3, 60000,
            partitions(new TopicPartition("orders", 0), new TopicPartition("orders", 2)), 1000L, 1300L, false);
        print("prepare_abort_v0", "txn-1", kafka.coordinator.transaction.PrepareAbort$.MODULE$, 1000L, (short) 4, 60000,
            partitions(new TopicPartition("__consumer_offsets", 17)), 1000L, 1400L, false);
        print("complete_commit_v0", "txn-1", kafka.coordinator.transaction.CompleteCommit$.MODULE$, 1000L, (short) 3, 60000,
            partitions(), 1000L, 1500L, false);
        print("complete_abort_v0", "txn-1", kafka.coordinator.transaction.CompleteAbort$.MODULE$, 1000L, (short) 4, 60000,
            partitions(), 1000L, 1600L, false);
        print("empty_unicode_id_v0", "trans\u00e4ktion", kafka.coordinator.transaction.Empty$.MODULE$, 9007199254740993L,
            (short) 32766, 900000, partitions(), -1L, 1700000000000L, false);
        print("empty_v1", "txn-1", kafka.coordinator.transaction.Empty$.MODULE$, 1000L, (short) 0, 60000,
            partitions(), -1L, 1234L, true);
        print("ongoing_v1", "txn-1", kafka.coordinator.transaction.Ongoing$.MODULE$, 1000L, (short) 3, 60000,
            partitions(new TopicPartition("orders", 0), new TopicPartition("orders", 2)), 1000L, 1200L, true);
        print("complete_abort_v1", "txn-1", kafka.coordinator.transaction.CompleteAbort$.MODULE$, 1000L, (short) 4, 60000,
            partitions(), 1000L, 1600L, true);
        printMultiTopic("prepare_commit_two_topics_v0", "txn-2", (short) 0);
        printMultiTopic("prepare_commit_two_topics_v1", "txn-2", (short) 1);
        System.out.println("tombstone " + hex(TransactionLog$.MODULE$.keyToBytes("txn-1")) + " null");

        for (String id : new String[] {"txn-1", "my-transactional-id", "", "polygenelubricants", "\u00e9t\u00e9", "producer-7"}) {
            for (int n : new int[] {1, 50, 7}) {
                // "partition_for <quoted id> <n> <partition>": ids are printed as hex to survive spaces.
                System.out.println("partition_for " + hex(id.getBytes(java.nio.charset.StandardCharsets.UTF_8)).replaceAll("^$", "-")
                    + " " + n + " " + (Utils.abs(id.hashCode()) % n));
            }
        }
    }
}
