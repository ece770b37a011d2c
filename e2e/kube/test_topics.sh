# Topic and ConsumerGroup against the cluster's own brokers: the operator (in its pod)
# reaches them through the bootstrap Service; Kafka's own tools on the host check what the
# brokers hold. Sourced by run.sh after test_cluster.sh (cluster demo is Ready).

section "Topic"
kubectl apply -f - >/dev/null <<YAML
apiVersion: strata.dev/v1alpha1
kind: Topic
metadata: {name: orders, namespace: $NS}
spec: {clusterRef: demo, partitions: 3, replicationFactor: 1, config: {retention.ms: "3600000"}}
YAML
eventually "Topic becomes Ready (CreateTopics)" equals "True 3" \
  jsonpath kt orders "$NS" '{.status.conditions[?(@.type=="Ready")].status} {.status.partitions}'
# A broker's metadata cache may show a new topic a moment after CreateTopics returns.
eventually "status.topicId is the brokers' topic id" bash -c \
  "[[ -n \"\$(kubectl -n $NS get kt orders -o jsonpath='{.status.topicId}')\" ]] && describe_topic orders | grep -q \"TopicId: \$(kubectl -n $NS get kt orders -o jsonpath='{.status.topicId}')\""
eventually "Kafka has the topic with 3 partitions and its config" bash -c "describe_topic orders | grep -q 'PartitionCount: 3.*retention.ms=3600000'"
kc patch kt orders --type=merge -p '{"spec":{"partitions":5,"config":{"retention.ms":"7200000","max.message.bytes":"2000000"}}}' >/dev/null
eventually "growing partitions reaches Kafka (CreatePartitions)" bash -c "describe_topic orders | grep -q 'PartitionCount: 5'"
eventually "config changes reach Kafka (IncrementalAlterConfigs)" bash -c \
  "describe_topic orders | grep 'PartitionCount' | grep 'max.message.bytes=2000000' | grep -q 'retention.ms=7200000'"
kc patch kt orders --type=merge -p '{"spec":{"partitions":2}}' >/dev/null
eventually "shrinking is refused with a clear condition" equals "False PartitionShrinkRefused" \
  jsonpath kt orders "$NS" '{.status.conditions[?(@.type=="Ready")].status} {.status.conditions[?(@.type=="Ready")].reason}'
check "Kafka still has 5 partitions" bash -c "describe_topic orders | grep -q 'PartitionCount: 5'"
kc patch kt orders --type=json -p '[{"op":"replace","path":"/spec/partitions","value":5},{"op":"remove","path":"/spec/config/max.message.bytes"}]' >/dev/null
eventually "a config key removed from the spec is reverted in Kafka" bash -c \
  "describe_topic orders | grep 'PartitionCount' | grep -v max.message.bytes | grep -q 'retention.ms=7200000'"
kubectl apply -f - >/dev/null <<YAML
apiVersion: strata.dev/v1alpha1
kind: Topic
metadata: {name: lost, namespace: $NS}
spec: {clusterRef: nowhere, partitions: 1, replicationFactor: 1}
YAML
eventually "a Topic whose cluster does not exist says so" equals ClusterNotFound \
  jsonpath kt lost "$NS" '{.status.conditions[?(@.type=="Ready")].reason}'

section "ConsumerGroup"
# A consumer group with committed offsets: 10 records produced and consumed. Records go
# round robin, so the consumer reads (and commits) every partition and the 7 records
# below land on partitions the group has committed: lag is reported for those only, as
# Kafka's tools do. (With the default sticky partitioner they could all land on a
# partition whose position the consumer had not yet resolved when it stopped.)
ROUND_ROBIN="partitioner.class=org.apache.kafka.clients.producer.RoundRobinPartitioner"
kafka_tool org.apache.kafka.tools.ProducerPerformance --topic orders --num-records 10 --record-size 20 \
  --throughput -1 --producer-props "bootstrap.servers=$BOOTSTRAP" "$ROUND_ROBIN" >"$WORK/produce1.log" 2>&1
kafka_tool org.apache.kafka.tools.consumer.ConsoleConsumer --bootstrap-server "$BOOTSTRAP" \
  --topic orders --group billing --from-beginning --max-messages 10 --timeout-ms 60000 >"$WORK/consume.log" 2>&1 || true
kubectl apply -f - >/dev/null <<YAML
apiVersion: strata.dev/v1alpha1
kind: ConsumerGroup
metadata: {name: billing, namespace: $NS}
spec: {clusterRef: demo, groupId: billing}
YAML
eventually "ConsumerGroup reports state Empty, 0 members, lag 0" equals "Empty 0 0" \
  jsonpath kcg billing "$NS" '{.status.state} {.status.members} {.status.lag[0].totalLag}'
kafka_tool org.apache.kafka.tools.ProducerPerformance --topic orders --num-records 7 --record-size 20 \
  --throughput -1 --producer-props "bootstrap.servers=$BOOTSTRAP" "$ROUND_ROBIN" >"$WORK/produce2.log" 2>&1
kc annotate kcg billing strata.dev/poke=1 --overwrite >/dev/null
eventually "lag follows new records (7)" equals 7 jsonpath kcg billing "$NS" '{.status.lag[0].totalLag}'
kc patch kcg billing --type=merge -p '{"spec":{"resetOffsets":{"to":"earliest","topics":["orders"]}}}' >/dev/null
eventually "resetOffsets to earliest is carried out" equals "True 17" \
  jsonpath kcg billing "$NS" '{.status.conditions[?(@.type=="OffsetsReset")].status} {.status.lag[0].totalLag}'
check "Kafka's own tool sees the reset offsets" bash -c \
  "kafka_tool org.apache.kafka.tools.consumer.group.ConsumerGroupCommand --bootstrap-server $BOOTSTRAP --describe --group billing 2>/dev/null | awk '\$2==\"orders\"{n++; sum+=\$4} END{exit !(n==5 && sum==0)}'"

kc delete kt orders --wait=false >/dev/null
eventually "deleting the Topic deletes the Kafka topic (DeleteTopics)" bash -c \
  "! kafka_tool org.apache.kafka.tools.TopicCommand --bootstrap-server $BOOTSTRAP --list | grep -qx orders"
eventually "the Topic resource is gone once Kafka deleted it" absent kt orders -n "$NS"
