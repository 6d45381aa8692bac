// kafkajs scenarios against the example server; run by tests/clients/run.py with BOOTSTRAP set.
const { Kafka, logLevel } = require("kafkajs");

const kafka = new Kafka({
  clientId: "topiclog-ci",
  brokers: [process.env.BOOTSTRAP],
  logLevel: logLevel.ERROR,
});

function expect(cond, what) {
  if (!cond) throw new Error(what);
}

async function produceConsume() {
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic: "orders", numPartitions: 3 }] });
  await admin.disconnect();
  const producer = kafka.producer(); // defaults: not idempotent, acks -1
  await producer.connect();
  const sent = [];
  for (let i = 0; i < 200; i++) sent.push({ key: `k${i % 7}`, value: `v${i}` });
  for (let i = 0; i < sent.length; i += 20) {
    await producer.send({ topic: "orders", messages: sent.slice(i, i + 20) });
  }
  await producer.disconnect();
  const consumer = kafka.consumer({ groupId: "g1" });
  await consumer.connect();
  await consumer.subscribe({ topic: "orders", fromBeginning: true });
  const got = [];
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`read ${got.length} of ${sent.length}`)), 60000);
    consumer
      .run({
        eachMessage: async ({ message }) => {
          got.push(`${message.key}=${message.value}`);
          if (got.length === sent.length) {
            clearTimeout(timer);
            resolve();
          }
        },
      })
      .catch(reject);
  });
  await consumer.disconnect();
  const want = sent.map((m) => `${m.key}=${m.value}`).sort();
  expect(JSON.stringify(got.sort()) === JSON.stringify(want), `read ${got.length} of ${sent.length}`);
}

// Three members share a 6-partition topic; one leaves after it read; the other two take its
// partitions over and, with what the leaver committed, everything is read.
async function groupMemberLeaves() {
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic: "events", numPartitions: 6 }] });
  await admin.disconnect();
  const producer = kafka.producer();
  await producer.connect();
  const sent = new Set();
  const messages = [];
  for (let i = 0; i < 600; i++) {
    messages.push({ key: `k${i}`, value: `v${i}` });
    sent.add(`v${i}`);
  }
  for (let i = 0; i < messages.length; i += 50) {
    await producer.send({ topic: "events", messages: messages.slice(i, i + 50) });
  }
  await producer.disconnect();
  const got = new Set();
  const assigned = new Map();
  const members = [0, 1, 2].map((i) => {
    // A short fetch wait: kafkajs heartbeats (and so learns of a rebalance) between fetches.
    const c = kafka.consumer({
      groupId: "g3",
      sessionTimeout: 10000,
      heartbeatInterval: 500,
      maxWaitTimeInMs: 500,
    });
    c.on(c.events.GROUP_JOIN, (e) => assigned.set(i, (e.payload.memberAssignment.events || []).length));
    return c;
  });
  for (const c of members) {
    await c.connect();
    await c.subscribe({ topic: "events", fromBeginning: true });
  }
  for (const c of members) {
    await c.run({ eachMessage: async ({ message }) => { got.add(`${message.value}`); } });
  }
  const wait = async (cond, ms, what) => {
    const until = Date.now() + ms;
    while (!cond()) {
      if (Date.now() > until) throw new Error(what());
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  await wait(() => [0, 1, 2].every((i) => (assigned.get(i) || 0) > 0), 30000,
    () => `assignments ${JSON.stringify([...assigned])}`);
  await members[2].disconnect(); // commits what it read, leaves the group
  assigned.delete(2);
  await wait(() => got.size === sent.size, 60000, () => `read ${got.size} of ${sent.size}`);
  await wait(() => (assigned.get(0) || 0) + (assigned.get(1) || 0) === 6, 30000,
    () => `the two left hold ${JSON.stringify([...assigned])}`);
  await members[0].disconnect();
  await members[1].disconnect();
}

// Admin calls lag monitors and offset tools make: groups, offsets, configs, partitions,
// records, cluster.
async function admin() {
  const a = kafka.admin();
  await a.connect();
  await a.createTopics({ topics: [{ topic: "orders", numPartitions: 2 }] });
  const producer = kafka.producer();
  await producer.connect();
  await producer.send({
    topic: "orders",
    messages: Array.from({ length: 10 }, (_, i) => ({ key: "k", value: `v${i}`, partition: 0 })),
  });
  await producer.disconnect();
  const c = kafka.consumer({ groupId: "g1", maxWaitTimeInMs: 500 });
  await c.connect();
  await c.subscribe({ topic: "orders", fromBeginning: true });
  let read = 0;
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`read ${read} of 10`)), 30000);
    c.run({
      eachMessage: async () => {
        read += 1;
        if (read === 10) {
          clearTimeout(timer);
          resolve();
        }
      },
    }).catch(reject);
  });
  await c.disconnect(); // commits and leaves

  const groups = await a.listGroups();
  expect(groups.groups.map((g) => g.groupId).join() === "g1", `listGroups ${JSON.stringify(groups)}`);
  const described = await a.describeGroups(["g1"]);
  expect(described.groups[0].groupId === "g1", `describeGroups ${JSON.stringify(described)}`);
  let offsets = await a.fetchOffsets({ groupId: "g1", topics: ["orders"] });
  const p0 = () => offsets[0].partitions.find((p) => p.partition === 0).offset;
  expect(p0() === "10", `fetchOffsets ${JSON.stringify(offsets)}`);
  await a.setOffsets({ groupId: "g1", topic: "orders", partitions: [{ partition: 0, offset: "4" }] });
  offsets = await a.fetchOffsets({ groupId: "g1", topics: ["orders"] });
  expect(p0() === "4", `after setOffsets ${JSON.stringify(offsets)}`);
  // kafkajs commits Kafka's "earliest" marker (-2) itself; a broker stores it as given.
  await a.resetOffsets({ groupId: "g1", topic: "orders", earliest: true });
  offsets = await a.fetchOffsets({ groupId: "g1", topics: ["orders"] });
  expect(p0() === "-2", `after resetOffsets ${JSON.stringify(offsets)}`);

  const configs = await a.describeConfigs({
    includeSynonyms: false,
    resources: [{ type: 2, name: "orders" }, { type: 4, name: "0" }],
  });
  const topicEntries = configs.resources.find((r) => r.resourceType === 2).configEntries;
  expect(topicEntries.some((e) => e.configName === "retention.ms"), "topic configs");
  await a.alterConfigs({
    validateOnly: false,
    resources: [{ type: 2, name: "orders", configEntries: [{ name: "retention.ms", value: "3600000" }] }],
  });
  const after = await a.describeConfigs({ includeSynonyms: false, resources: [{ type: 2, name: "orders" }] });
  const retention = after.resources[0].configEntries.find((e) => e.configName === "retention.ms");
  expect(retention && retention.configValue === "3600000", `alterConfigs ${JSON.stringify(retention)}`);

  await a.createPartitions({ topicPartitions: [{ topic: "orders", count: 4 }] });
  const meta = await a.fetchTopicMetadata({ topics: ["orders"] });
  expect(meta.topics[0].partitions.length === 4, "createPartitions");
  await a.deleteTopicRecords({ topic: "orders", partitions: [{ partition: 0, offset: "3" }] });
  const lows = await a.fetchTopicOffsets("orders");
  expect(lows.find((p) => p.partition === 0).low === "3", `deleteTopicRecords ${JSON.stringify(lows)}`);
  const cluster = await a.describeCluster();
  expect(cluster.brokers.length === 1, `describeCluster ${JSON.stringify(cluster)}`);
  await a.deleteGroups(["g1"]);
  const left = await a.listGroups();
  expect(left.groups.length === 0, `after deleteGroups ${JSON.stringify(left)}`);
  await a.disconnect();
}

// A member reads, the server restarts under it (the runner restarts it when told), and the
// member's next commit succeeds.
async function restart() {
  const a = kafka.admin();
  await a.connect();
  await a.createTopics({ topics: [{ topic: "events", numPartitions: 2 }] });
  await a.disconnect();
  const producer = kafka.producer();
  await producer.connect();
  const sent = Array.from({ length: 200 }, (_, i) => ({ key: `k${i}`, value: `v${i}` }));
  await producer.send({ topic: "events", messages: sent });
  await producer.disconnect();
  const c = kafka.consumer({ groupId: "gr", sessionTimeout: 30000, heartbeatInterval: 1000 });
  await c.connect();
  await c.subscribe({ topic: "events", fromBeginning: true });
  const got = new Set();
  let restarted = false;
  const waitForRestart = () =>
    new Promise((resolve) => {
      console.log("RESTART");
      process.stdin.once("data", () => resolve());
    });
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`read ${got.size} of ${sent.length}`)), 60000);
    c.run({
      autoCommit: false,
      eachMessage: async ({ topic, partition, message }) => {
        if (!restarted) {
          restarted = true;
          await waitForRestart();
        }
        got.add(`${message.value}`);
        await c.commitOffsets([
          { topic, partition, offset: (BigInt(message.offset) + 1n).toString() },
        ]);
        if (got.size === sent.length) {
          clearTimeout(timer);
          resolve();
        }
      },
    }).catch(reject);
  });
  await c.disconnect();
}

// A transactional producer commits and aborts; a read_committed consumer (kafkajs's
// default) sees the committed records only.
async function transactions() {
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic: "kt", numPartitions: 2 }] });
  await admin.disconnect();
  const producer = kafka.producer({
    transactionalId: "kjs-1",
    idempotent: true,
    maxInFlightRequests: 1,
  });
  await producer.connect();
  let t = await producer.transaction();
  await t.send({ topic: "kt", messages: [{ key: "a", value: "c1" }, { key: "b", value: "c2" }] });
  await t.commit();
  t = await producer.transaction();
  await t.send({ topic: "kt", messages: [{ key: "a", value: "x1" }] });
  await t.abort();
  t = await producer.transaction();
  await t.send({ topic: "kt", messages: [{ key: "b", value: "c3" }] });
  await t.commit();
  await producer.disconnect();
  const consumer = kafka.consumer({ groupId: "kjs-read", readUncommitted: false });
  await consumer.connect();
  await consumer.subscribe({ topic: "kt", fromBeginning: true });
  const got = [];
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`read ${got}`)), 60000);
    consumer
      .run({
        eachMessage: async ({ message }) => {
          got.push(message.value.toString());
          if (got.length >= 3) {
            clearTimeout(timer);
            resolve();
          }
        },
      })
      .catch(reject);
  });
  // Anything more (the aborted record) would show within a second.
  await new Promise((r) => setTimeout(r, 1000));
  await consumer.disconnect();
  got.sort();
  expect(JSON.stringify(got) === JSON.stringify(["c1", "c2", "c3"]), `read_committed saw ${got}`);
}

const scenarios = {
  restart,
  admin,
  transactions,
  "produce-consume": produceConsume,
  "group-member-leaves": groupMemberLeaves,
};

scenarios[process.argv[2]]()
  .then(() => process.exit(0))
  .catch((e) => {
    console.error(e && e.stack ? e.stack : e);
    process.exit(1);
  });
