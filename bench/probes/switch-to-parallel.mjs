#!/usr/bin/env node
// Probe: how long switching an ordered endpoint to parallel holds the ADMIN's statement
// (and the endpoint's row, which the dispatchers' records wait for). One ordered endpoint
// with N pending deliveries over 1,000 keys, all but each key's first parked, then
// `update webhooks set delivery_order = 'parallel'`. Migration
// 20261201090300_switching_to_parallel_releases_in_steps.sql: 4.3 s for 100,000 and 22 s
// for 500,000 before it; cancel_batch_size (200) now, the claims doing the rest.
// Usage: node bench/probes/switch-to-parallel.mjs [N,N,...]   (a throwaway cluster, port 54365)
import { cleanupAll, connect, createFixtures, startDatabase } from '../lib/harness.mjs';

const sizes = (process.argv[2] ?? '100000').split(',').map(Number);
const cluster = await startDatabase({ dir: 'bench/.out/probe-switch-db', port: 54365 });
try {
  const db = await connect(cluster.url);
  const fixtures = await createFixtures(db, 9);
  const company = fixtures.companies.one.id;
  const { rows: [{ id: hook }] } = await db.query('select id from public.webhooks where company_id = $1 limit 1', [company]);
  for (const n of sizes) {
    await db.query(`update public.webhooks set delivery_order = 'ordered' where id = $1`, [hook]);
    await db.query('delete from public.webhook_deliveries');
    await db.query('delete from public.webhook_events');
    await db.query(
      `insert into public.webhook_events (company_id, trigger_type, payload, ordering_key)
       select $1, 'PROCESS_REVISED', jsonb_build_object('n', g), 'p' || (g % 1000) from generate_series(1, $2::int) g`,
      [company, n],
    );
    await db.query(
      `insert into public.webhook_deliveries (company_id, event_id, webhook_id, next_attempt_at, ordering_key, ordering_seq)
       select e.company_id, e.id, $1,
              case when row_number() over (partition by e.ordering_key order by e.created_at, e.id) = 1 then now() else 'infinity' end,
              e.ordering_key, nextval('private.webhook_delivery_ordering_seq')
         from public.webhook_events e`,
      [hook],
    );
    await db.query('delete from private.webhook_endpoint_signals');
    await db.query('vacuum analyze public.webhook_deliveries');
    const t0 = performance.now();
    await db.query(`update public.webhooks set delivery_order = 'parallel' where id = $1`, [hook]);
    const { rows: [left] } = await db.query(
      `select count(*)::int as keyed from public.webhook_deliveries where webhook_id = $1 and ordering_key is not null`, [hook]);
    console.log(`${n} pending ordered deliveries: the switch's statement took ${Math.round(performance.now() - t0)} ms; ${left.keyed} left to the claims`);
  }
  await db.end();
} finally {
  await cleanupAll();
}
