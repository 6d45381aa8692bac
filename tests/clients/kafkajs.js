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
    const c = kafka.consumer({ groupId: "g3", sessionTimeout: 10000, heartbeatInterval: 500 });
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

const scenarios = {
  "produce-consume": produceConsume,
  "group-member-leaves": groupMemberLeaves,
};

scenarios[process.argv[2]]()
  .then(() => process.exit(0))
  .catch((e) => {
    console.error(e && e.stack ? e.stack : e);
    process.exit(1);
  });
