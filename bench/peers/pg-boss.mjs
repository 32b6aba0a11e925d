// Peer deliverer on pg-boss 10: jobs are inserted by the application in the same
// transaction as the event (boss.insert(jobs, { db }), see run.mjs), and this process
// works them.
//
// pg-boss 10 has no per-worker concurrency knob: a worker fetches up to `batchSize` jobs,
// runs its handler, and polls again (at most every pollingIntervalSeconds, minimum 0.5 s,
// unless a fetch comes back busy); several `work()` calls run several such loops. So the
// knobs are PEER_WORKERS (work() calls) and PEER_BATCH (batchSize). The handler sends a
// batch concurrently and fails only the jobs whose delivery failed, so each is retried
// on its own (the rest are completed when the handler returns).
import PgBoss from 'pg-boss';
import { announceReady, makeDeliverer } from './deliver.mjs';

export const QUEUE = 'deliver_webhook';
const connectionString = process.env.DATABASE_URL;
const workers = Number(process.env.PEER_WORKERS ?? 1);
const batchSize = Number(process.env.PEER_BATCH ?? 10);

const { deliver, close } = makeDeliverer(connectionString);
const boss = new PgBoss({ connectionString, max: Math.max(4, workers + 2), schedule: false });
boss.on('error', (e) => console.error(`[error] ${e.message}`));
await boss.start();

for (let i = 0; i < workers; i++) {
  await boss.work(QUEUE, { batchSize, pollingIntervalSeconds: 0.5 }, async (jobs) => {
    const outcomes = await Promise.allSettled(jobs.map((job) => deliver(job.data)));
    const failed = jobs.filter((_, k) => outcomes[k].status === 'rejected').map((job) => job.id);
    if (failed.length > 0) await boss.fail(QUEUE, failed);
  });
}

announceReady(async () => {
  await boss.stop({ graceful: true, wait: true, timeout: 5_000 });
  await close();
});
