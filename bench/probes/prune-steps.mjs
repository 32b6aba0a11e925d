#!/usr/bin/env node
// Probe: retention steps on a large history. N succeeded deliveries (each with its event and
// one attempt) completed 31 days ago, loaded as the retention scenario loads them
// (bench/lib/retention.mjs), then private.prune_webhook_history_step() until its sweep is
// back at page 0. Reports the steps and their median and longest time. Migration
// 20261201090000_retention_steps_wait_for_nobody.sql (each row locked SKIP LOCKED, a
// delivery with its event): 2.45 s a step of 100,000 here, 1.9 s before it.
// Usage: node bench/probes/prune-steps.mjs [N]   (default 1,000,000; a throwaway cluster, port 54364)
import { cleanupAll, connect, createFixtures, startDatabase } from '../lib/harness.mjs';
import { loadHistory } from '../lib/retention.mjs';

const n = Number(process.argv[2] ?? 1_000_000);
const cluster = await startDatabase({ dir: 'bench/.out/probe-prune-db', port: 54364 });
try {
  const db = await connect(cluster.url);
  const fixtures = await createFixtures(db, 9);
  const company = fixtures.companies.one.id;
  const { rows: [{ id: hook }] } = await db.query('select id from public.webhooks where company_id = $1 limit 1', [company]);
  await loadHistory(db, company, hook, n);
  await db.query('update private.webhook_prune_cursor set next_page = 0, sweep_started_at = null');
  const times = [];
  let pruned = 0;
  do {
    const t0 = performance.now();
    pruned += (await db.query('select private.prune_webhook_history_step() as n')).rows[0].n;
    times.push(performance.now() - t0);
  } while (Number((await db.query('select next_page from private.webhook_prune_cursor')).rows[0].next_page) !== 0);
  times.sort((a, b) => a - b);
  console.log(`${pruned} pruned in ${times.length} steps: median ${Math.round(times[times.length >> 1])} ms, longest ${Math.round(times.at(-1))} ms`);
  await db.end();
} finally {
  await cleanupAll();
}
