// Prints __transaction_state values with the tagged fields Kafka 4.x adds to the flexible
// version 1 (previous and next producer id, next producer epoch, client transaction
// version), serialized by Apache Kafka 4's own classes: "<name> <key hex> <value hex>".
// Appended to transaction-log-records.txt by generate-transaction-log-records.sh.

import java.util.HashSet;
import java.util.List;

import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.protocol.MessageUtil;
import org.apache.kafka.coordinator.transaction.TransactionLog;
import org.apache.kafka.coordinator.transaction.TransactionState;
import org.apache.kafka.coordinator.transaction.TxnTransitMetadata;
import org.apache.kafka.coordinator.transaction.generated.TransactionLogValue;
import org.apache.kafka.server.common.TransactionVersion;

public class TransactionLogRecordsTagged {
    private static String hex(byte[] bytes) {
        if (bytes == null) return "null";
        StringBuilder sb = new StringBuilder();
        for (byte b : bytes) sb.append(String.format("%02x", b));
        return sb.toString();
    }

    public static void main(String[] args) {
        HashSet<TopicPartition> one = new HashSet<>();
        one.add(new TopicPartition("orders", 1));
        // A TV2 commit whose epoch overflowed: the next producer id is recorded.
        TxnTransitMetadata prepare = new TxnTransitMetadata(2000L, 1999L, 3000L, (short) 5, (short) 4, 60000,
            TransactionState.PREPARE_COMMIT, one, 100L, 200L, TransactionVersion.TV_2);
        System.out.println("prepare_commit_tv2_v1 " + hex(TransactionLog.keyToBytes("txn-3")) + " "
            + hex(TransactionLog.valueToBytes(prepare, TransactionVersion.TV_2)));
        TxnTransitMetadata complete = new TxnTransitMetadata(3000L, 2000L, -1L, (short) 0, (short) 5, 60000,
            TransactionState.COMPLETE_COMMIT, new HashSet<>(), 100L, 300L, TransactionVersion.TV_2);
        System.out.println("complete_commit_tv2_v1 " + hex(TransactionLog.keyToBytes("txn-3")) + " "
            + hex(TransactionLog.valueToBytes(complete, TransactionVersion.TV_2)));
        TxnTransitMetadata tv0 = new TxnTransitMetadata(2000L, -1L, -1L, (short) 5, (short) -1, 60000,
            TransactionState.EMPTY, new HashSet<>(), -1L, 200L, TransactionVersion.TV_0);
        System.out.println("empty_tv0_written_by_kafka4 " + hex(TransactionLog.keyToBytes("txn-3")) + " "
            + hex(TransactionLog.valueToBytes(tv0, TransactionVersion.TV_0)));

        TransactionLogValue all = new TransactionLogValue()
            .setProducerId(2000L)
            .setPreviousProducerId(1999L)
            .setNextProducerId(3000L)
            .setProducerEpoch((short) 5)
            .setNextProducerEpoch((short) 0)
            .setTransactionTimeoutMs(60000)
            .setTransactionStatus((byte) 1)
            .setTransactionPartitions(List.of(new TransactionLogValue.PartitionsSchema()
                .setTopic("orders").setPartitionIds(List.of(1, 3))))
            .setTransactionLastUpdateTimestampMs(200L)
            .setTransactionStartTimestampMs(100L)
            .setClientTransactionVersion((short) 2);
        System.out.println("ongoing_all_tags_v1 " + hex(TransactionLog.keyToBytes("txn-3")) + " "
            + hex(MessageUtil.toVersionPrefixedBytes((short) 1, all)));
    }
}
