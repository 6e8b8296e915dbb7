#!/usr/bin/env bash
# Writes server.properties from the environment, formats the KRaft storage on first start
# (a restart keeps the data and the cluster id), then runs the broker as PID 1.
#
#   KAFKA_NODE_ID          this node's id (1, 2, 3)
#   KAFKA_PORT             client listener on 127.0.0.1 (default 9092)
#   KAFKA_CONTROLLER_PORT  controller listener on 127.0.0.1 (default 9093)
#   KAFKA_VOTERS           the static controller quorum: 1@127.0.0.1:19192,2@127.0.0.1:19193,...
#   KAFKA_CLUSTER_ID       the same on every node (base64url of 16 bytes)
#   KAFKA_REPLICATION      replication factor of internal and default topics (default 1)
#   KAFKA_MIN_ISR          min.insync.replicas (default 1)
#   KAFKA_HEAP_OPTS        JVM heap (default -Xms256m -Xmx384m)
set -euo pipefail

: "${KAFKA_NODE_ID:?KAFKA_NODE_ID is required}"
: "${KAFKA_CLUSTER_ID:?KAFKA_CLUSTER_ID is required (the same on every node)}"
port=${KAFKA_PORT:-9092}
controller_port=${KAFKA_CONTROLLER_PORT:-9093}
voters=${KAFKA_VOTERS:-$KAFKA_NODE_ID@127.0.0.1:$controller_port}
rf=${KAFKA_REPLICATION:-1}
min_isr=${KAFKA_MIN_ISR:-1}
data=/var/lib/kafka

cat >"$data/server.properties" <<PROPS
node.id=$KAFKA_NODE_ID
process.roles=broker,controller
controller.quorum.voters=$voters
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$controller_port
advertised.listeners=PLAINTEXT://127.0.0.1:$port
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
log.dirs=$data/kraft
num.partitions=1
auto.create.topics.enable=false
default.replication.factor=$rf
min.insync.replicas=$min_isr
offsets.topic.replication.factor=$rf
transaction.state.log.replication.factor=$rf
transaction.state.log.min.isr=$min_isr
share.coordinator.state.topic.replication.factor=$rf
share.coordinator.state.topic.min.isr=$min_isr
group.initial.rebalance.delay.ms=0
PROPS

java_cmd=(java ${KAFKA_HEAP_OPTS:--Xms256m -Xmx384m} -XX:+UseG1GC -Djava.awt.headless=true
    -Dlog4j2.configurationFile=/opt/kafka/log4j2.properties -cp '/opt/kafka/libs/*')

if [ ! -f "$data/kraft/meta.properties" ]; then
    echo "formatting KRaft storage (node $KAFKA_NODE_ID, cluster $KAFKA_CLUSTER_ID)"
    # One argument, --cluster-id=ID: an id may begin with "-" (base64url, 1 in 64), which as
    # a separate argument the tool takes for an option (a chaos run failed so).
    "${java_cmd[@]}" kafka.tools.StorageTool format --cluster-id="$KAFKA_CLUSTER_ID" -c "$data/server.properties"
fi
exec "${java_cmd[@]}" kafka.Kafka "$data/server.properties"
