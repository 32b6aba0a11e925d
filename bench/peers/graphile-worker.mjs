// Peer deliverer on graphile-worker: jobs are added in the database by an AFTER INSERT
// trigger on public.webhook_deliveries calling graphile_worker.add_job (run.mjs installs
// it), and this process runs them with the library's runner.
//
// Knobs (env): PEER_CONCURRENCY (concurrentJobs), PEER_LOCAL_QUEUE (localQueue.size;
// <= 1 = off), PEER_BATCH_DELAY (completeJobBatchDelay and failJobBatchDelay in ms;
// -1 = off), the library's documented performance settings.
import { Logger, run } from 'graphile-worker';
import { announceReady, makeDeliverer } from './deliver.mjs';

const connectionString = process.env.DATABASE_URL;
const concurrency = Number(process.env.PEER_CONCURRENCY ?? 10);
const localQueueSize = Number(process.env.PEER_LOCAL_QUEUE ?? -1);
const batchDelay = Number(process.env.PEER_BATCH_DELAY ?? -1);

const { deliver, close } = makeDeliverer(connectionString);
// Warnings and errors only: the default logger writes a line per job, which at a few
// thousand jobs a second costs real CPU that no production setup would spend.
const logger = new Logger(() => (level, message) => {
  if (level === 'error' || level === 'warning') console.error(`[${level}] ${message}`);
});

const runner = await run({
  connectionString,
  concurrency,
  logger,
  noHandleSignals: true,
  // The documented recommendation: pool of max(10, concurrency + 2).
  maxPoolSize: Math.max(10, concurrency + 2),
  taskList: { deliver_webhook: (payload) => deliver(payload) },
  preset: {
    worker: {
      ...(localQueueSize > 1 ? { localQueue: { size: localQueueSize } } : {}),
      completeJobBatchDelay: batchDelay,
      failJobBatchDelay: batchDelay,
    },
  },
});

announceReady(async () => {
  await runner.stop();
  await close();
});
