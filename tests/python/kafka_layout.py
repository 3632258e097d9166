"""Does on Kafka what python-socketio's KafkaManager does, minus its str-value defect, for
the Flask-SocketIO suite (tests/tests/flask_interop.rs): topic = channel, no consumer
group (every reader gets every record, from the latest offset), JSON bytes as values.

    kafka_layout.py produce BROKERS TOPIC MESSAGES_JSON [PARTITION]
        sends each message of the list as json.dumps(message).encode() (no key, like
        KafkaManager; all into PARTITION when given, for an order), flushes, prints "ok"
    kafka_layout.py produce-each-partition BROKERS TOPIC MESSAGE_JSON
        sends the message into every partition of the topic (a barrier: records of one
        partition are read in order, of several in no order), prints "ok N" (N partitions)
    kafka_layout.py consume BROKERS TOPIC
        KafkaConsumer(TOPIC, bootstrap_servers=BROKERS) like KafkaManager; prints "ready"
        once it reads from the end of every partition, then each record's value as one
        JSON line {"value": TEXT}; stops when stdin closes
"""
import json
import sys
import threading
import os

from kafka import KafkaConsumer, KafkaProducer

mode, brokers, topic = sys.argv[1], sys.argv[2].split(","), sys.argv[3]

if mode == "produce":
    producer = KafkaProducer(bootstrap_servers=brokers)
    partition = int(sys.argv[5]) if len(sys.argv) > 5 else None
    for message in json.loads(sys.argv[4]):
        producer.send(topic, value=json.dumps(message).encode(), partition=partition)
    producer.flush()
    print("ok", flush=True)
elif mode == "produce-each-partition":
    producer = KafkaProducer(bootstrap_servers=brokers)
    value = json.dumps(json.loads(sys.argv[4])).encode()
    partitions = sorted(producer.partitions_for(topic))
    for partition in partitions:
        producer.send(topic, value=value, partition=partition)
    producer.flush()
    print(f"ok {len(partitions)}", flush=True)
elif mode == "consume":
    # the test closes stdin to stop us
    threading.Thread(target=lambda: (sys.stdin.read(), os._exit(0)), daemon=True).start()
    consumer = KafkaConsumer(topic, bootstrap_servers=brokers)
    while not consumer.assignment():
        consumer.poll(timeout_ms=100)
    for tp in consumer.assignment():
        consumer.position(tp)  # resolves "latest" now: later records are ours
    print("ready", flush=True)
    for record in consumer:
        print(json.dumps({"value": record.value.decode()}), flush=True)
else:
    sys.exit(f"unknown mode {mode}")
