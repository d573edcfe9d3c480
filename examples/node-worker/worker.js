// A Node.js worker on amqplib, as a service outside Go would be written:
// bench cannot see into it and measures it from the outside (black-box,
// scenarios/examples/node-worker.yaml).
//
// It takes JSON jobs {"tid": ..., "order": N, "sku": ...} from QUEUE,
// works WORK_MS per job, and publishes {"tid", "order"} to the fanout
// exchange EVENT when a job is done, waits for the broker's confirm, and
// only then acks: a crash between the two repeats a completion (a
// duplicate), never loses one. A job for the sku POISON fails for good: it
// publishes to FAILED_EVENT and is dead-lettered into QUEUE.dead.
//
// Environment: AMQP_URL (bench sets it), QUEUE, EVENT, FAILED_EVENT,
// PREFETCH, WORK_MS, POISON.
'use strict';

const amqp = require('amqplib');

const env = (name, def) => process.env[name] || def;
const url = env('AMQP_URL', 'amqp://guest:guest@127.0.0.1:5672/');
const queue = env('QUEUE', 'shop.order.process');
const dead = queue + '.dead';
const event = env('EVENT', 'order.processed');
const failedEvent = env('FAILED_EVENT', 'order.failed');
const prefetch = Number(env('PREFETCH', '10'));
const workMs = Number(env('WORK_MS', '5'));
const poison = env('POISON', 'poison');

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function main() {
  const conn = await amqp.connect(url);
  conn.on('error', (err) => console.error('connection error:', err.message));
  const ch = await conn.createConfirmChannel();

  // The worker owns its topology.
  await ch.assertExchange(event, 'fanout', { durable: true });
  await ch.assertExchange(failedEvent, 'fanout', { durable: true });
  await ch.assertQueue(dead, { durable: true });
  await ch.assertQueue(queue, {
    durable: true,
    deadLetterExchange: '',
    deadLetterRoutingKey: dead,
  });
  await ch.prefetch(prefetch);

  const publish = (exchange, body) =>
    new Promise((resolve, reject) => {
      ch.publish(exchange, '', Buffer.from(JSON.stringify(body)), { contentType: 'application/json', persistent: true },
        (err) => (err ? reject(err) : resolve()));
    });

  let inFlight = 0;
  const handle = async (msg) => {
    inFlight++;
    try {
      let job;
      try {
        job = JSON.parse(msg.content.toString());
      } catch (err) {
        ch.nack(msg, false, false); // malformed: straight to the dead queue
        return;
      }
      await sleep(workMs);
      if (job.sku === poison) {
        await publish(failedEvent, { tid: job.tid, order: job.order, error: 'poisoned sku' });
        ch.nack(msg, false, false);
        return;
      }
      await publish(event, { tid: job.tid, order: job.order });
      ch.ack(msg);
    } catch (err) {
      console.error('job failed:', err.message);
      ch.nack(msg, false, true);
    } finally {
      inFlight--;
    }
  };

  const { consumerTag } = await ch.consume(queue, (msg) => {
    if (msg !== null) handle(msg);
  });
  console.log(`node worker ready: consuming ${queue} (prefetch ${prefetch}, pid ${process.pid})`);

  // Graceful stop: no new jobs, finish those in hand, close.
  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    await ch.cancel(consumerTag);
    while (inFlight > 0) await sleep(10);
    await ch.close();
    await conn.close();
    console.log('node worker stopped');
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main().catch((err) => {
  console.error('node worker:', err.message);
  process.exit(1);
});
