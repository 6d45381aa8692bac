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

const scenarios = { "produce-consume": produceConsume };

scenarios[process.argv[2]]()
  .then(() => process.exit(0))
  .catch((e) => {
    console.error(e && e.stack ? e.stack : e);
    process.exit(1);
  });
