// Prints __consumer_offsets records as Apache Kafka's own group coordinator serializes
// them, one per line: "<name> <key hex> <value hex or null>". The Rust tests in
// src/offsets_topic.rs compare Strata's encoding with this output
// (kafka-records.txt); regenerate it with generate-kafka-records.sh.

import java.util.HashMap;
import java.util.Map;
import java.util.Optional;
import java.util.OptionalInt;
import java.util.OptionalLong;
import java.util.function.Supplier;

import org.apache.kafka.common.Uuid;
import org.apache.kafka.common.message.JoinGroupRequestData;
import org.apache.kafka.common.utils.LogContext;
import org.apache.kafka.common.utils.Time;
import org.apache.kafka.coordinator.common.runtime.CoordinatorRecord;
import org.apache.kafka.coordinator.group.GroupCoordinatorRecordHelpers;
import org.apache.kafka.coordinator.group.GroupCoordinatorRecordSerde;
import org.apache.kafka.coordinator.group.OffsetAndMetadata;
import org.apache.kafka.coordinator.group.classic.ClassicGroup;
import org.apache.kafka.coordinator.group.classic.ClassicGroupMember;
import org.apache.kafka.coordinator.group.classic.ClassicGroupState;

public class KafkaRecords {
    private static final GroupCoordinatorRecordSerde SERDE = new GroupCoordinatorRecordSerde();

    /** A clock stopped at 1234 ms, so state timestamps are reproducible. */
    private static final Time STOPPED_CLOCK = new Time() {
        public long milliseconds() { return 1234L; }
        public long nanoseconds() { return 1234L * 1_000_000L; }
        public void sleep(long ms) { }
        public void waitObject(Object o, Supplier<Boolean> condition, long deadline) { }
    };

    private static String hex(byte[] bytes) {
        if (bytes == null) return "null";
        StringBuilder sb = new StringBuilder();
        for (byte b : bytes) sb.append(String.format("%02x", b));
        return sb.toString();
    }

    private static void print(String name, CoordinatorRecord record) {
        System.out.println(name + " " + hex(SERDE.serializeKey(record)) + " " + hex(SERDE.serializeValue(record)));
    }

    private static OffsetAndMetadata offset(long offset, OptionalInt epoch, String metadata, long commitMs, OptionalLong expireMs) {
        return new OffsetAndMetadata(offset, epoch, metadata, commitMs, expireMs, Uuid.ZERO_UUID);
    }

    /** Newer clients commit by topic id (OffsetCommit v10); Kafka then adds it as a tagged field. */
    private static final Uuid TOPIC_ID = new Uuid(0x0102030405060708L, 0x090a0b0c0d0e0f10L);

    public static void main(String[] args) {
        print("offset_commit", GroupCoordinatorRecordHelpers.newOffsetCommitRecord(
            "g", "t", 3, offset(42L, OptionalInt.of(7), "m", 1000L, OptionalLong.empty())));
        print("offset_commit_no_epoch", GroupCoordinatorRecordHelpers.newOffsetCommitRecord(
            "g", "t", 3, offset(42L, OptionalInt.empty(), "", 1000L, OptionalLong.empty())));
        print("offset_commit_topic_id", GroupCoordinatorRecordHelpers.newOffsetCommitRecord(
            "g", "t", 3, new OffsetAndMetadata(42L, OptionalInt.of(7), "m", 1000L, OptionalLong.empty(), TOPIC_ID)));
        print("offset_commit_expiry", GroupCoordinatorRecordHelpers.newOffsetCommitRecord(
            "g", "t", 3, offset(5L, OptionalInt.empty(), "", 10L, OptionalLong.of(20L))));
        print("offset_commit_tombstone", GroupCoordinatorRecordHelpers.newOffsetCommitTombstoneRecord("g", "t", 3));
        print("group_metadata_tombstone", GroupCoordinatorRecordHelpers.newGroupMetadataTombstoneRecord("grp"));

        // One static member in generation 1 of a consumer group using "range".
        ClassicGroup group = new ClassicGroup(new LogContext(), "grp", ClassicGroupState.EMPTY, STOPPED_CLOCK);
        JoinGroupRequestData.JoinGroupRequestProtocolCollection protocols =
            new JoinGroupRequestData.JoinGroupRequestProtocolCollection();
        protocols.add(new JoinGroupRequestData.JoinGroupRequestProtocol().setName("range").setMetadata(new byte[] {1, 2}));
        group.add(new ClassicGroupMember("m1", Optional.of("i1"), "c", "/127.0.0.1", 300_000, 45_000, "consumer", protocols));
        group.transitionTo(ClassicGroupState.PREPARING_REBALANCE);
        group.initNextGeneration();
        Map<String, byte[]> assignment = new HashMap<>();
        assignment.put("m1", new byte[] {3});
        print("group_metadata", GroupCoordinatorRecordHelpers.newGroupMetadataRecord(group, assignment));

        ClassicGroup empty = new ClassicGroup(new LogContext(), "grp", ClassicGroupState.EMPTY, STOPPED_CLOCK);
        print("empty_group_metadata", GroupCoordinatorRecordHelpers.newEmptyGroupMetadataRecord(empty));
    }
}
