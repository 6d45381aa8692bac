#!/usr/bin/env python3
"""Real Kafka clients against the example server (`examples/kafka_server`), scenario by scenario.

Run by `.ci/run` after it installs the clients (a venv with confluent-kafka, kafka-python and
aiokafka; kafkajs with npm). Each scenario starts a fresh server on a free 127.0.0.1 port with a
fresh data directory, runs one client, and checks what the client saw against what was sent.

    python3 tests/clients/run.py --server target/release/examples/kafka_server \
        [--node-modules DIR] [--only NAME ...]

Exit status 0 when every scenario passed; each result is printed on its own line.
"""

import argparse
import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """The example server as a child process, restartable on the same directory and port."""

    def __init__(self, binary, extra=()):
        self.binary = binary
        self.dir = tempfile.mkdtemp(prefix="topiclog-clients-")
        self.port = free_port()
        self.extra = list(extra)
        self.proc = None

    @property
    def bootstrap(self):
        return f"127.0.0.1:{self.port}"

    def start(self):
        self.log = open(os.path.join(self.dir, "..", os.path.basename(self.dir) + ".log"), "ab")
        self.proc = subprocess.Popen(
            [self.binary, "--dir", os.path.join(self.dir, "data"), "--listen", self.bootstrap]
            + self.extra,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return self
            except OSError:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"server exited with {self.proc.returncode}")
                time.sleep(0.05)
        raise RuntimeError("server did not listen within 30 s")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def restart(self):
        self.stop()
        return self.start()

    def close(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def expect(cond, what):
    if not cond:
        raise AssertionError(what)


# ---- confluent-kafka (librdkafka) --------------------------------------------------------


def confluent_produce_consume(server):
    from confluent_kafka import Consumer, Producer
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": server.bootstrap})
    admin.create_topics([NewTopic("orders", 3, 1)])["orders"].result(10)
    p = Producer({"bootstrap.servers": server.bootstrap})  # defaults: idempotent since 2.x
    sent = [(f"k{i % 7}", f"v{i}") for i in range(200)]
    errors = []
    for k, v in sent:
        p.produce("orders", v.encode(), k.encode(), on_delivery=lambda e, m: e and errors.append(e))
    expect(p.flush(20) == 0, "producer flushed everything")
    expect(not errors, f"delivery errors: {errors[:3]}")
    c = Consumer(
        {"bootstrap.servers": server.bootstrap, "group.id": "g1", "auto.offset.reset": "earliest"}
    )
    c.subscribe(["orders"])
    got = []
    deadline = time.time() + 30
    while len(got) < len(sent) and time.time() < deadline:
        m = c.poll(1.0)
        if m is not None and m.error() is None:
            got.append((m.key().decode(), m.value().decode()))
    c.commit(asynchronous=False)
    c.close()
    expect(sorted(got) == sorted(sent), f"read {len(got)} of {len(sent)}")


# ---- kafka-python ------------------------------------------------------------------------


def kafka_python_produce_consume(server):
    from kafka import KafkaConsumer, KafkaProducer
    from kafka.admin import KafkaAdminClient, NewTopic

    admin = KafkaAdminClient(bootstrap_servers=server.bootstrap)
    admin.create_topics([NewTopic("orders", 3, 1)])
    admin.close()
    p = KafkaProducer(bootstrap_servers=server.bootstrap)  # defaults: not idempotent
    sent = [(f"k{i % 7}", f"v{i}") for i in range(200)]
    futures = [p.send("orders", key=k.encode(), value=v.encode()) for k, v in sent]
    for f in futures:
        f.get(timeout=20)
    p.close()
    c = KafkaConsumer(
        "orders",
        bootstrap_servers=server.bootstrap,
        group_id="g1",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    got = []
    deadline = time.time() + 30
    while len(got) < len(sent) and time.time() < deadline:
        for records in c.poll(timeout_ms=1000).values():
            got.extend((r.key.decode(), r.value.decode()) for r in records)
    c.commit()
    c.close()
    expect(sorted(got) == sorted(sent), f"read {len(got)} of {len(sent)}")


# ---- aiokafka ----------------------------------------------------------------------------


def aiokafka_produce_consume(server):
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    sent = [(f"k{i % 7}", f"v{i}") for i in range(200)]

    async def run():
        admin = AIOKafkaAdminClient(bootstrap_servers=server.bootstrap)
        await admin.start()
        await admin.create_topics([NewTopic("orders", 3, 1)])
        await admin.close()
        p = AIOKafkaProducer(bootstrap_servers=server.bootstrap)  # defaults: not idempotent
        await p.start()
        try:
            for k, v in sent:
                await p.send_and_wait("orders", v.encode(), key=k.encode())
        finally:
            await p.stop()
        c = AIOKafkaConsumer(
            "orders",
            bootstrap_servers=server.bootstrap,
            group_id="g1",
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        await c.start()
        got = []
        try:
            deadline = time.time() + 30
            while len(got) < len(sent) and time.time() < deadline:
                batches = await c.getmany(timeout_ms=1000)
                for records in batches.values():
                    got.extend((r.key.decode(), r.value.decode()) for r in records)
            await c.commit()
        finally:
            await c.stop()
        return got

    got = asyncio.run(run())
    expect(sorted(got) == sorted(sent), f"read {len(got)} of {len(sent)}")


# ---- a 3-member group, one member leaving ------------------------------------------------
#
# Three members share a 6-partition topic; one reads its share and leaves; the other two take
# its partitions over and, with what the leaver committed, everything is read.


def produce_plain(server, topic, partitions, n):
    """Creates `topic` and writes n keyed records with kafka-python (checked by the scenarios)."""
    from kafka import KafkaProducer
    from kafka.admin import KafkaAdminClient, NewTopic

    admin = KafkaAdminClient(bootstrap_servers=server.bootstrap)
    admin.create_topics([NewTopic(topic, partitions, 1)])
    admin.close()
    p = KafkaProducer(bootstrap_servers=server.bootstrap)
    sent = {f"v{i}" for i in range(n)}
    for f in [p.send(topic, key=f"k{i}".encode(), value=f"v{i}".encode()) for i in range(n)]:
        f.get(timeout=20)
    p.close()
    return sent


def confluent_group_member_leaves(server):
    from confluent_kafka import Consumer

    sent = produce_plain(server, "events", 6, 600)

    def member():
        return Consumer(
            {
                "bootstrap.servers": server.bootstrap,
                "group.id": "g3",
                "auto.offset.reset": "earliest",
                "enable.auto.commit": False,
                "session.timeout.ms": 10000,
                "heartbeat.interval.ms": 500,
            }
        )

    members = [member() for _ in range(3)]
    for m in members:
        m.subscribe(["events"])
    got = set()
    # Everyone polls until all three hold partitions.
    deadline = time.time() + 30
    while time.time() < deadline and not all(m.assignment() for m in members):
        for m in members:
            msg = m.poll(0.1)
            if msg is not None and msg.error() is None:
                got.add(msg.value().decode())
    expect(all(m.assignment() for m in members), "all three members got partitions")
    leaver = members.pop()
    for _ in range(20):
        msg = leaver.poll(0.1)
        if msg is not None and msg.error() is None:
            got.add(msg.value().decode())
    leaver.commit(asynchronous=False)
    leaver.close()
    deadline = time.time() + 60
    while time.time() < deadline and (got != sent or sum(len(m.assignment()) for m in members) != 6):
        for m in members:
            msg = m.poll(0.1)
            if msg is not None and msg.error() is None:
                got.add(msg.value().decode())
    covered = sum(len(m.assignment()) for m in members)
    for m in members:
        m.close()
    expect(got == sent, f"read {len(got)} of {len(sent)}")
    expect(covered == 6, f"the two left hold {covered} of 6 partitions")


def kafka_python_group_member_leaves(server):
    import threading

    from kafka import KafkaConsumer

    sent = produce_plain(server, "events", 6, 600)
    got = set()
    lock = threading.Lock()
    stop = [threading.Event() for _ in range(3)]
    held = [0, 0, 0]
    errors = []

    def member(i):
        # One thread per member, as an application runs them: each polls on its own.
        try:
            c = KafkaConsumer(
                "events",
                bootstrap_servers=server.bootstrap,
                group_id="g3",
                auto_offset_reset="earliest",
                enable_auto_commit=False,
                session_timeout_ms=10000,
                heartbeat_interval_ms=500,
            )
            while not stop[i].is_set():
                for records in c.poll(timeout_ms=100).values():
                    with lock:
                        got.update(r.value.decode() for r in records)
                held[i] = len(c.assignment())
            c.commit()
            c.close()
        except Exception as e:  # noqa: BLE001 - reported by the scenario
            errors.append(e)

    threads = [threading.Thread(target=member, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    try:
        deadline = time.time() + 30
        while time.time() < deadline and not all(held):
            time.sleep(0.1)
        expect(all(held), f"all three members got partitions: {held}; member errors: {errors}")
        stop[2].set()
        threads[2].join(30)
        held[2] = 0
        deadline = time.time() + 60
        while time.time() < deadline and (got != sent or held[0] + held[1] != 6):
            time.sleep(0.1)
    finally:
        for e in stop:
            e.set()
        for t in threads:
            t.join(30)
    expect(not errors, f"member errors: {errors}")
    expect(got == sent, f"read {len(got)} of {len(sent)}")
    expect(held[0] + held[1] == 6, f"the two left hold {held[0] + held[1]} of 6 partitions")


def aiokafka_group_member_leaves(server):
    from aiokafka import AIOKafkaConsumer

    sent = produce_plain(server, "events", 6, 600)

    async def run():
        members = [
            AIOKafkaConsumer(
                "events",
                bootstrap_servers=server.bootstrap,
                group_id="g3",
                auto_offset_reset="earliest",
                enable_auto_commit=False,
                session_timeout_ms=10000,
                heartbeat_interval_ms=500,
            )
            for _ in range(3)
        ]
        for m in members:
            await m.start()
        got = set()

        async def poll(m):
            for records in (await m.getmany(timeout_ms=100)).values():
                got.update(r.value.decode() for r in records)

        deadline = time.time() + 30
        while time.time() < deadline and not all(m.assignment() for m in members):
            for m in members:
                await poll(m)
        expect(all(m.assignment() for m in members), "all three members got partitions")
        leaver = members.pop()
        await poll(leaver)
        await leaver.commit()
        await leaver.stop()
        deadline = time.time() + 60
        while time.time() < deadline and (
            got != sent or sum(len(m.assignment()) for m in members) != 6
        ):
            for m in members:
                await poll(m)
        covered = sum(len(m.assignment()) for m in members)
        for m in members:
            await m.stop()
        return got, covered

    got, covered = asyncio.run(run())
    expect(got == sent, f"read {len(got)} of {len(sent)}")
    expect(covered == 6, f"the two left hold {covered} of 6 partitions")


# ---- a server restart with live members --------------------------------------------------
#
# A member reads, the server restarts under it, and the member's next commit succeeds: the group
# keeps its members across the restart (Kafka keeps them in the group metadata record).


def kafka_python_restart_keeps_members(server):
    from kafka import KafkaConsumer

    sent = produce_plain(server, "events", 2, 200)
    c = KafkaConsumer(
        "events",
        bootstrap_servers=server.bootstrap,
        group_id="gr",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        session_timeout_ms=30000,
        heartbeat_interval_ms=1000,
        max_poll_records=50,
    )
    got = set()
    deadline = time.time() + 30
    while time.time() < deadline and not got:
        for records in c.poll(timeout_ms=200).values():
            got.update(r.value.decode() for r in records)
    expect(got, "read before the restart")
    server.restart()
    c.commit()  # raised CommitFailedError when the restart forgot the member
    deadline = time.time() + 30
    while time.time() < deadline and got != sent:
        for records in c.poll(timeout_ms=200).values():
            got.update(r.value.decode() for r in records)
    c.commit()
    c.close()
    expect(got == sent, f"read {len(got)} of {len(sent)}")


def confluent_restart_keeps_members(server):
    from confluent_kafka import Consumer

    sent = produce_plain(server, "events", 2, 200)
    c = Consumer(
        {
            "bootstrap.servers": server.bootstrap,
            "group.id": "gr",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "session.timeout.ms": 30000,
        }
    )
    c.subscribe(["events"])
    got = set()
    deadline = time.time() + 30
    while time.time() < deadline and not got:
        m = c.poll(0.2)
        if m is not None and m.error() is None:
            got.add(m.value().decode())
    expect(got, "read before the restart")
    server.restart()
    deadline = time.time() + 30
    while time.time() < deadline and got != sent:
        m = c.poll(0.2)
        if m is not None and m.error() is None:
            got.add(m.value().decode())
    committed = c.commit(asynchronous=False)
    expect(all(tp.error is None for tp in committed), f"commit after the restart: {committed}")
    c.close()
    expect(got == sent, f"read {len(got)} of {len(sent)}")


def aiokafka_restart_keeps_members(server):
    from aiokafka import AIOKafkaConsumer

    sent = produce_plain(server, "events", 2, 200)

    async def run():
        c = AIOKafkaConsumer(
            "events",
            bootstrap_servers=server.bootstrap,
            group_id="gr",
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            session_timeout_ms=30000,
            heartbeat_interval_ms=1000,
            max_poll_records=50,
        )
        await c.start()
        got = set()
        try:
            deadline = time.time() + 30
            while time.time() < deadline and not got:
                for records in (await c.getmany(timeout_ms=200)).values():
                    got.update(r.value.decode() for r in records)
            expect(got, "read before the restart")
            server.restart()
            deadline = time.time() + 30
            while time.time() < deadline and got != sent:
                for records in (await c.getmany(timeout_ms=200)).values():
                    got.update(r.value.decode() for r in records)
            await c.commit()  # fails with CommitFailedError if the member was forgotten
        finally:
            await c.stop()
        return got

    got = asyncio.run(run())
    expect(got == sent, f"read {len(got)} of {len(sent)}")


# ---- admin APIs as tools call them ----------------------------------------------------------


def produce_timestamps(server, topic):
    """`topic` with 2 partitions; partition 0 gets 10 records whose largest timestamp is at
    offset 6 (timestamps are not in offset order). Returns that offset."""
    from kafka import KafkaProducer
    from kafka.admin import KafkaAdminClient, NewTopic

    admin = KafkaAdminClient(bootstrap_servers=server.bootstrap)
    admin.create_topics([NewTopic(topic, 2, 1)])
    admin.close()
    p = KafkaProducer(bootstrap_servers=server.bootstrap)
    base = 1_700_000_000_000
    for i in range(10):
        ts = base + (1_000_000 if i == 6 else i)
        p.send(topic, key=b"k", value=f"v{i}".encode(), partition=0, timestamp_ms=ts).get(20)
    p.close()
    return 6


def confluent_admin(server):
    from confluent_kafka import Consumer, KafkaException, TopicPartition
    from confluent_kafka.admin import (
        AdminClient,
        AlterConfigOpType,
        ConfigEntry,
        ConfigResource,
        NewPartitions,
        OffsetSpec,
        ResourceType,
    )

    max_ts_offset = produce_timestamps(server, "orders")
    admin = AdminClient({"bootstrap.servers": server.bootstrap})
    c = Consumer(
        {"bootstrap.servers": server.bootstrap, "group.id": "g1", "auto.offset.reset": "earliest"}
    )
    c.subscribe(["orders"])
    read = 0
    deadline = time.time() + 30
    while read < 10 and time.time() < deadline:
        m = c.poll(0.5)
        read += m is not None and m.error() is None
    c.commit(asynchronous=False)

    groups = admin.list_consumer_groups().result(10)
    expect([g.group_id for g in groups.valid] == ["g1"], f"list_consumer_groups: {groups.valid}")
    expect(not groups.errors, f"list_consumer_groups errors: {groups.errors}")
    d = admin.describe_consumer_groups(["g1"])["g1"].result(10)
    expect(len(d.members) == 1, f"describe_consumer_groups: {d}")
    try:
        admin.delete_consumer_groups(["g1"])["g1"].result(10)
        raise AssertionError("a group with a member was deleted")
    except KafkaException as e:
        expect(e.args[0].name() == "NON_EMPTY_GROUP", f"delete of a live group: {e}")
    c.close()
    admin.delete_consumer_groups(["g1"])["g1"].result(10)
    expect(not admin.list_consumer_groups().result(10).valid, "g1 deleted")

    topic = ConfigResource(ResourceType.TOPIC, "orders")
    configs = admin.describe_configs([topic])[topic].result(10)
    expect("retention.ms" in configs, f"describe_configs: {sorted(configs)[:5]}")
    broker = ConfigResource(ResourceType.BROKER, "0")
    expect(admin.describe_configs([broker])[broker].result(10), "broker configs")
    change = ConfigResource(
        ResourceType.TOPIC,
        "orders",
        incremental_configs=[
            ConfigEntry("retention.ms", "3600000", incremental_operation=AlterConfigOpType.SET)
        ],
    )
    admin.incremental_alter_configs([change])[change].result(10)
    configs = admin.describe_configs([topic])[topic].result(10)
    expect(configs["retention.ms"].value == "3600000", "retention.ms altered")

    admin.create_partitions([NewPartitions("orders", 4)])["orders"].result(10)
    expect(len(admin.list_topics(timeout=10).topics["orders"].partitions) == 4, "4 partitions")
    try:
        admin.create_partitions([NewPartitions("orders", 3)])["orders"].result(10)
        raise AssertionError("partitions decreased")
    except KafkaException as e:
        expect(e.args[0].name() == "INVALID_PARTITIONS", f"decrease: {e}")

    tp = TopicPartition("orders", 0, 3)
    deleted = admin.delete_records([tp])[tp].result(10)
    expect(deleted.low_watermark == 3, f"delete_records: {deleted}")
    tp = TopicPartition("orders", 0, 100)
    try:
        admin.delete_records([tp])[tp].result(10)
        raise AssertionError("records deleted past the end")
    except KafkaException as e:
        expect(e.args[0].name() == "OFFSET_OUT_OF_RANGE", f"past the end: {e}")

    cluster = admin.describe_cluster().result(10)
    expect(len(cluster.nodes) == 1, f"describe_cluster: {cluster}")
    tp = TopicPartition("orders", 0)
    got = admin.list_offsets({tp: OffsetSpec.max_timestamp()})[tp].result(10)
    expect(got.offset == max_ts_offset, f"max timestamp offset {got.offset}")


def errname(e):
    """A kafka-python per-item error as a name, whichever form the version returns it in."""
    if isinstance(e, str):
        name = e
    else:
        name = e.__name__ if isinstance(e, type) else type(e).__name__
    return "NoError" if name in ("OK", "NoError") else name


def kafka_python_admin(server):
    from kafka import KafkaConsumer, TopicPartition
    from kafka.admin import KafkaAdminClient

    produce_timestamps(server, "orders")
    admin = KafkaAdminClient(bootstrap_servers=server.bootstrap)
    c = KafkaConsumer(
        "orders",
        bootstrap_servers=server.bootstrap,
        group_id="g1",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    read = 0
    deadline = time.time() + 30
    while read < 10 and time.time() < deadline:
        read += sum(len(r) for r in c.poll(timeout_ms=500).values())
    c.commit()
    groups = admin.list_groups()
    expect([g["group_id"] for g in groups] == ["g1"], f"list_groups: {groups}")
    offsets = admin.list_group_offsets("g1")["g1"]
    expect(offsets[TopicPartition("orders", 0)].offset == 10, f"list_group_offsets: {offsets}")
    # Per partition, as Kafka answers OffsetDelete: the topic is subscribed by a live member.
    result = admin.delete_group_offsets("g1", [TopicPartition("orders", 0)])
    expect(
        errname(result[TopicPartition("orders", 0)]) == "GroupSubscribedToTopicError",
        f"delete_group_offsets of a subscribed topic: {result}",
    )
    result = dict(admin.delete_groups(["g1"]))
    expect(errname(result["g1"]) == "NonEmptyGroupError", f"delete_groups of a live group: {result}")
    c.close()
    result = admin.delete_group_offsets("g1", [TopicPartition("orders", 0)])
    expect(errname(result[TopicPartition("orders", 0)]) == "NoError", f"delete_group_offsets: {result}")
    offsets = admin.list_group_offsets("g1").get("g1", {})
    expect(TopicPartition("orders", 0) not in offsets or offsets[TopicPartition("orders", 0)].offset == -1,
           f"after delete_group_offsets: {offsets}")
    result = dict(admin.delete_groups(["g1"]))
    expect(errname(result["g1"]) == "NoError", f"delete_groups: {result}")
    expect(not admin.list_groups(), "g1 deleted")
    admin.close()


# ---- transactions --------------------------------------------------------------------------


CLI = None  # the `topiclog` binary (--cli), for an in-process read_committed consumer


def make_topics(server, *topics):
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": server.bootstrap})
    for name, n in topics:
        admin.create_topics([NewTopic(name, n, 1)])[name].result(10)


def confluent_read(server, topic, level, expected_count=None, group=None, seconds=20):
    """Every value of `topic` a confluent-kafka consumer at `level` reads, sorted."""
    from confluent_kafka import Consumer

    c = Consumer(
        {
            "bootstrap.servers": server.bootstrap,
            "group.id": group or f"read-{topic}-{level}-{time.time()}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "isolation.level": level,
        }
    )
    c.subscribe([topic])
    got = []
    deadline = time.time() + seconds
    idle = 0
    while time.time() < deadline:
        m = c.poll(0.5)
        if m is None:
            idle += 1
            if expected_count is None and idle >= 4 and got:
                break
            if expected_count is not None and len(got) >= expected_count and idle >= 2:
                break
            continue
        idle = 0
        if m.error() is None:
            got.append(m.value().decode())
    c.close()
    return sorted(got)


def kafka_python_read(server, topic, level, expected_count):
    from kafka import KafkaConsumer

    c = KafkaConsumer(
        topic,
        bootstrap_servers=server.bootstrap,
        group_id=f"kp-{topic}-{level}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        isolation_level=level,
    )
    got = []
    deadline = time.time() + 20
    idle = 0
    while time.time() < deadline:
        polled = c.poll(timeout_ms=500)
        if not polled:
            idle += 1
            if len(got) >= expected_count and idle >= 2:
                break
            continue
        idle = 0
        for records in polled.values():
            got.extend(r.value.decode() for r in records)
    c.close()
    return sorted(got)


def cli_read(server, topic, level):
    """The same through an in-process `Consumer` (the topiclog tool, opened read-only beside
    the running server)."""
    out = subprocess.run(
        [CLI, "--dir", os.path.join(server.dir, "data"), "consume", topic, "--from-beginning",
         "--timeout-ms", "500", "--isolation-level", level],
        capture_output=True, text=True, timeout=60,
    )
    expect(out.returncode == 0, f"topiclog consume failed: {out.stderr}")
    return sorted(line for line in out.stdout.splitlines() if line)


def confluent_transactions(server):
    """Commit and abort over two topics; read_committed and read_uncommitted readers of
    confluent-kafka, kafka-python and the library see what their level allows."""
    from confluent_kafka import Producer

    make_topics(server, ("tx-a", 3), ("tx-b", 1))
    p = Producer({"bootstrap.servers": server.bootstrap, "transactional.id": "tx-1"})
    p.init_transactions(10)
    committed, aborted = [], []
    for t in range(6):
        p.begin_transaction()
        values = [f"t{t}-{i}" for i in range(7)]
        for i, v in enumerate(values):
            p.produce("tx-a" if i % 2 else "tx-b", v.encode(), f"k{i}".encode())
        if t % 3 == 2:
            # Sent first: an abort purges what the client has not sent yet, and these are to
            # be stored, and skipped by read_committed readers.
            expect(p.flush(10) == 0, "the aborted records were sent")
            p.abort_transaction(10)
            aborted += values
        else:
            p.commit_transaction(10)
            committed += values
    # One more left open: read_committed readers stop before it.
    p.begin_transaction()
    p.produce("tx-b", b"open", b"k")
    p.flush(10)
    want_a = sorted(v for v in committed if int(v.split("-")[1]) % 2)
    want_b = sorted(v for v in committed if not int(v.split("-")[1]) % 2)
    all_a = sorted(v for v in committed + aborted if int(v.split("-")[1]) % 2)
    all_b = sorted(v for v in committed + aborted if not int(v.split("-")[1]) % 2) + ["open"]
    got = confluent_read(server, "tx-a", "read_committed", len(want_a))
    expect(got == want_a, f"confluent read_committed tx-a: {got} != {want_a}")
    got = confluent_read(server, "tx-b", "read_committed", len(want_b))
    expect(got == want_b, f"confluent read_committed tx-b: {got} != {want_b}")
    got = confluent_read(server, "tx-b", "read_uncommitted", len(all_b))
    expect(got == sorted(all_b), f"confluent read_uncommitted tx-b: {got}")
    got = kafka_python_read(server, "tx-a", "read_committed", len(want_a))
    expect(got == want_a, f"kafka-python read_committed tx-a: {got} != {want_a}")
    got = kafka_python_read(server, "tx-a", "read_uncommitted", len(all_a))
    expect(got == all_a, f"kafka-python read_uncommitted tx-a: {got}")
    if CLI:
        for topic, want in (("tx-a", want_a), ("tx-b", want_b)):
            got = cli_read(server, topic, "read_committed")
            expect(got == want, f"in-process read_committed {topic}: {got} != {want}")
        got = cli_read(server, "tx-b", "read_uncommitted")
        expect(got == sorted(all_b), f"in-process read_uncommitted tx-b: {got}")
    p.commit_transaction(10)
    got = confluent_read(server, "tx-b", "read_committed", len(want_b) + 1)
    expect(got == sorted(want_b + ["open"]), f"after the last commit: {got}")


def confluent_consume_transform_produce(server):
    """A group consumer's input, transformed and produced in transactions together with the
    consumer's offsets (send_offsets_to_transaction): the output and the committed offsets
    agree; an aborted round leaves neither."""
    from confluent_kafka import Consumer, Producer, TopicPartition

    make_topics(server, ("dst", 1))
    produce_plain(server, "src", 2, 40)
    c = Consumer(
        {
            "bootstrap.servers": server.bootstrap,
            "group.id": "ctp",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
        }
    )
    c.subscribe(["src"])
    p = Producer({"bootstrap.servers": server.bootstrap, "transactional.id": "ctp-1"})
    p.init_transactions(10)
    seen = 0
    rounds = 0
    deadline = time.time() + 60
    while seen < 40 and time.time() < deadline:
        msgs = [m for m in c.consume(10, 1.0) if m.error() is None]
        if not msgs:
            continue
        p.begin_transaction()
        for m in msgs:
            p.produce("dst", m.value().upper(), m.key())
        p.send_offsets_to_transaction(c.position(c.assignment()), c.consumer_group_metadata(), 10)
        rounds += 1
        if rounds == 2:
            # Aborted: its output never shows and its offsets are not committed; the consumer
            # goes back to its last committed offsets and reads those records again.
            p.abort_transaction(10)
            for tp in c.committed(c.assignment(), 10):
                c.seek(TopicPartition(tp.topic, tp.partition, tp.offset if tp.offset >= 0 else 0))
            continue
        p.commit_transaction(10)
        seen += len(msgs)
    committed = c.committed([TopicPartition("src", 0), TopicPartition("src", 1)], 10)
    c.close()
    expect(seen == 40, f"transformed {seen} of 40")
    total = sum(tp.offset for tp in committed if tp.offset > 0)
    expect(total == 40, f"committed offsets {[(tp.partition, tp.offset) for tp in committed]}")
    got = confluent_read(server, "dst", "read_committed", 40)
    expect(len(got) == 40 and len(set(got)) == 40, f"dst holds {len(got)} ({len(set(got))} distinct)")
    expect(all(v == v.upper() for v in got), "transformed")


def aiokafka_transactions(server):
    """aiokafka's transactional producer commits and aborts; its read_committed consumer sees the
    committed records only."""
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    async def run():
        admin = AIOKafkaAdminClient(bootstrap_servers=server.bootstrap)
        await admin.start()
        await admin.create_topics([NewTopic("at", 2, 1)])
        await admin.close()
        p = AIOKafkaProducer(bootstrap_servers=server.bootstrap, transactional_id="aio-1")
        await p.start()
        async with p.transaction():
            await p.send_and_wait("at", b"c1", partition=0)
            await p.send_and_wait("at", b"c2", partition=1)
        await p.begin_transaction()
        await p.send_and_wait("at", b"x1", partition=0)
        await p.abort_transaction()
        await p.stop()
        c = AIOKafkaConsumer(
            "at",
            bootstrap_servers=server.bootstrap,
            group_id="aio-read",
            auto_offset_reset="earliest",
            isolation_level="read_committed",
        )
        await c.start()
        got = []
        loop = asyncio.get_event_loop()
        deadline = loop.time() + 20
        idle = 0
        while loop.time() < deadline:
            batch = await c.getmany(timeout_ms=500)
            if not batch:
                idle += 1
                if len(got) >= 2 and idle >= 2:
                    break
                continue
            idle = 0
            for msgs in batch.values():
                got.extend(m.value.decode() for m in msgs)
        await c.stop()
        return sorted(got)

    got = asyncio.run(run())
    expect(got == ["c1", "c2"], f"aiokafka read_committed saw {got}")


KILLED_PRODUCER = """
import sys, time
from confluent_kafka import Producer
p = Producer({"bootstrap.servers": sys.argv[1], "transactional.id": sys.argv[2],
              "transaction.timeout.ms": int(sys.argv[3])})
p.init_transactions(10)
p.begin_transaction()
for i in range(5):
    p.produce("killed", f"zombie-{i}".encode())
p.flush(10)
print("sent", flush=True)
time.sleep(600)
"""


def confluent_killed_producer(server):
    """A producer killed mid-transaction: its records never reach read_committed readers,
    whether its successor's init_transactions fences it or the transaction timeout aborts it."""
    from confluent_kafka import Producer

    make_topics(server, ("killed", 1))
    for how in ("successor", "timeout"):
        txn_id = f"kill-{how}"
        child = subprocess.Popen(
            [sys.executable, "-c", KILLED_PRODUCER, server.bootstrap, txn_id,
             "1000" if how == "timeout" else "60000"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        line = child.stdout.readline()
        expect(line.strip() == "sent", f"the child said {line!r}")
        child.kill()
        child.wait()
        if how == "timeout":
            # The log's background thread aborts it after transaction.timeout.ms.
            p = Producer({"bootstrap.servers": server.bootstrap, "transactional.id": "other"})
            p.init_transactions(10)
        else:
            p = Producer({"bootstrap.servers": server.bootstrap, "transactional.id": txn_id})
            p.init_transactions(10)  # fences the killed one and aborts its transaction
        p.begin_transaction()
        p.produce("killed", f"after-{how}".encode())
        p.commit_transaction(10)
    got = confluent_read(server, "killed", "read_committed", 2, seconds=30)
    expect(got == ["after-successor", "after-timeout"], f"read_committed saw {got}")
    got = confluent_read(server, "killed", "read_uncommitted", 12, seconds=30)
    expect(len(got) == 12, f"read_uncommitted saw {len(got)} of 12 data records")


def kafka_python_old_protocol_fails_fast(server):
    from kafka import KafkaProducer
    from kafka.errors import KafkaError

    produce_plain(server, "orders", 1, 1)
    # Pinned to 0.10.1: Produce v2 with the old message format, which is not stored here.
    p = KafkaProducer(bootstrap_servers=server.bootstrap, api_version=(0, 10, 1), retries=0)
    started = time.time()
    try:
        p.send("orders", b"v").get(timeout=20)
        raise AssertionError("an old-format record was stored")
    except KafkaError as e:
        expect(
            "UnsupportedVersion" in type(e).__name__ or "UnsupportedVersion" in repr(e),
            f"answered UNSUPPORTED_VERSION: {e!r}",
        )
    finally:
        p.close(timeout=5)
    expect(time.time() - started < 10, f"failed in {time.time() - started:.1f} s")


# ---- kafkajs (node) ----------------------------------------------------------------------


def kafkajs(scenario, restart=False):
    def run(server, node_modules):
        env = dict(os.environ, NODE_PATH=node_modules, BOOTSTRAP=server.bootstrap)
        proc = subprocess.Popen(
            ["node", os.path.join(HERE, "kafkajs.js"), scenario],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        output = []
        if restart:
            # The script says when it wants the server restarted, and waits to hear it was.
            for line in proc.stdout:
                output.append(line)
                if line.strip() == "RESTART":
                    server.restart()
                    proc.stdin.write("restarted\n")
                    proc.stdin.flush()
                    break
        try:
            rest, _ = proc.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            proc.kill()
            rest, _ = proc.communicate()
        output.append(rest)
        if proc.returncode != 0:
            raise AssertionError("".join(output)[-3000:])

    run.needs_node = True
    return run


SCENARIOS = {
    "confluent-kafka: default producer, group consumer": confluent_produce_consume,
    "kafka-python: default producer, group consumer": kafka_python_produce_consume,
    "aiokafka: default producer, group consumer": aiokafka_produce_consume,
    "kafkajs: default producer, group consumer": kafkajs("produce-consume"),
    "confluent-kafka: 3-member group, one member leaves": confluent_group_member_leaves,
    "kafka-python: 3-member group, one member leaves": kafka_python_group_member_leaves,
    "aiokafka: 3-member group, one member leaves": aiokafka_group_member_leaves,
    "kafkajs: 3-member group, one member leaves": kafkajs("group-member-leaves"),
    "kafka-python: server restart with a live member": kafka_python_restart_keeps_members,
    "confluent-kafka: server restart with a live member": confluent_restart_keeps_members,
    "aiokafka: server restart with a live member": aiokafka_restart_keeps_members,
    "kafkajs: server restart with a live member": kafkajs("restart", restart=True),
    "confluent-kafka: admin APIs": confluent_admin,
    "kafka-python: admin APIs": kafka_python_admin,
    "kafkajs: admin APIs": kafkajs("admin"),
    "confluent-kafka: transactions commit and abort, read by three clients": confluent_transactions,
    "confluent-kafka: consume-transform-produce with send_offsets_to_transaction": confluent_consume_transform_produce,
    "confluent-kafka: a producer killed mid-transaction": confluent_killed_producer,
    "aiokafka: transactions commit and abort, read_committed consumer": aiokafka_transactions,
    "kafkajs: transactions commit and abort, read_committed consumer": kafkajs("transactions"),
    "kafka-python pinned to 0.10.1: produce fails fast": kafka_python_old_protocol_fails_fast,
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", required=True)
    ap.add_argument("--node-modules")
    ap.add_argument("--only", nargs="*")
    ap.add_argument("--cli", help="the topiclog binary, for an in-process read_committed consumer")
    args = ap.parse_args()
    global CLI
    CLI = args.cli
    failed = 0
    for name, scenario in SCENARIOS.items():
        if args.only and not any(o in name for o in args.only):
            continue
        tries = RETRIED.get(name, 1)
        for attempt in range(1, tries + 1):
            if run_scenario(args, name, scenario, last=attempt == tries):
                break
        else:
            failed += 1
    print(f"{failed} failed" if failed else "all passed")
    sys.exit(1 if failed else 0)


# Scenarios known to fail now and then on a slow machine, run once more (on a new server)
# before they count as failed; the first failure is printed all the same. kafka-python's
# three-member group: on a starved CPU (reproduced pinned to one core beside busy loops,
# about 1 run in 12) one member holds no partition for 30 s. Its debug log shows the client,
# not the server: a poll's 100 ms ran out during a join, the SyncGroup response (error 0,
# its assignment) arrived afterwards, and the member never applied it or heartbeated again.
# The server then expired it after its 10 s session timeout and gave its partitions to the
# other two, as Kafka does. kafka-python fixed a race of this kind in 2025 (a join completed
# after the poll's timeout left heartbeats off); this one remains in 3.0.12. A longer poll
# timeout is no cure: the scenario then reads stale assignments and commits mid-rebalance.
RETRIED = {"kafka-python: 3-member group, one member leaves": 2}


def run_scenario(args, name, scenario, last):
    """Runs one scenario on a new server; whether it passed (a failure is printed)."""
    server = Server(args.server).start()
    started = time.time()
    try:
        try:
            if getattr(scenario, "needs_node", False):
                scenario(server, args.node_modules or "node_modules")
            else:
                scenario(server)
            print(f"ok    {name} ({time.time() - started:.1f} s)", flush=True)
            return True
        except Exception:  # noqa: BLE001 - every failure is reported, then the next runs
            word = "FAIL " if last else "RETRY"
            print(f"{word} {name} ({time.time() - started:.1f} s)", flush=True)
            traceback.print_exc()
            log = os.path.join(server.dir, "..", os.path.basename(server.dir) + ".log")
            if os.path.exists(log):
                print("server output (last lines):")
                print(open(log, errors="replace").read()[-2000:])
            return False
    finally:
        server.close()


if __name__ == "__main__":
    main()
