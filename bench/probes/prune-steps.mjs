#!/usr/bin/env node
// Probe: retention steps on a large history. N succeeded deliveries (each with its event and
// one attempt) completed 31 days ago, then private.prune_webhook_history_step() until its
// sweep is back at page 0. Reports the steps and their median and longest time. Migration
// 20261201090000_retention_steps_wait_for_nobody.sql (each row locked SKIP LOCKED, a
// delivery with its event): 2.45 s a step of 100,000 here, 1.9 s before it.
// Usage: node bench/probes/prune-steps.mjs [N]   (default 1,000,000; a throwaway cluster, port 54364)
import { cleanupAll, connect, createFixtures, startDatabase } from '../lib/harness.mjs';

const n = Number(process.argv[2] ?? 1_000_000);
const cluster = await startDatabase({ dir: 'bench/.out/probe-prune-db', port: 54364 });
try {
  const db = await connect(cluster.url);
  const fixtures = await createFixtures(db, 9);
  const company = fixtures.companies.one.id;
  const { rows: [{ id: hook }] } = await db.query('select id from public.webhooks where company_id = $1 limit 1', [company]);
  await db.query(
    `insert into public.webhook_events (company_id, trigger_type, payload, created_at)
     select $1, 'PROCESS_REVISED', '{"n": 1}', now() - interval '31 days' from generate_series(1, $2::int)`,
    [company, n],
  );
  await db.query(
    `insert into public.webhook_deliveries (company_id, event_id, webhook_id, state, attempt_count, next_attempt_at, completed_at, created_at)
     select $1, e.id, $2, 'succeeded', 1, null, e.created_at, e.created_at from public.webhook_events e`,
    [company, hook],
  );
  await db.query(
    `insert into public.webhook_delivery_attempts (delivery_id, company_id, attempt_number, outcome, status, duration_ms, created_at)
     select d.id, d.company_id, 1, 'succeeded', 200, 5, d.created_at from public.webhook_deliveries d`,
  );
  await db.query('vacuum analyze');
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
