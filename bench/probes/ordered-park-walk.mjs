#!/usr/bin/env node
// Probe: the claim's walk through a failing ordered backlog. One ordered endpoint with
// 1,000 deliveries over 10 keys; three claimers in turn record what they claimed (a third
// failing, retried 20 ms later) and claim 8 more, until nothing is pending. Each claim parks
// the deliveries it finds due behind their key's delivery in flight, so it makes many
// passes. Reports the record-and-claim steps and their mean time. With the release of
// stalled keys once per endpoint (20261201090200, as fixed in c9760ad): 3.7-3.9 ms a step
// here, as before it (3.7); run at every pass it took 5.3 ms and could run for minutes.
// Usage: node bench/probes/ordered-park-walk.mjs   (a throwaway cluster, port 54366)
import { cleanupAll, connect, createFixtures, startDatabase } from '../lib/harness.mjs';

const cluster = await startDatabase({ dir: 'bench/.out/probe-ordered-db', port: 54366 });
try {
  const db = await connect(cluster.url);
  const fixtures = await createFixtures(db, 9);
  const company = fixtures.companies.one.id;
  const { rows: [{ id: hook }] } = await db.query('select id from public.webhooks where company_id = $1 limit 1', [company]);
  await db.query(`update public.webhooks set delivery_order = 'ordered' where id = $1`, [hook]);
  await db.query('update private.webhook_settings set circuit_failure_threshold = 1000');
  await db.query(
    `insert into public.webhook_events (company_id, trigger_type, payload, ordering_key)
     select $1, 'PROCESS_REVISED', jsonb_build_object('n', g), 'p' || (g % 10) from generate_series(1, 1000) g`,
    [company],
  );
  await db.query(
    `insert into public.webhook_deliveries (company_id, event_id, webhook_id, next_attempt_at, ordering_key, ordering_seq)
     select e.company_id, e.id, $1, now(), e.ordering_key, nextval('private.webhook_delivery_ordering_seq')
       from public.webhook_events e order by (e.payload ->> 'n')::int`,
    [hook],
  );
  await db.query('update private.webhook_endpoints set ready_at = now() where webhook_id = $1', [hook]);
  await db.query(`set statement_timeout = '10s'`);
  const claimers = ['probe-1', 'probe-2', 'probe-3'].map((worker) => ({ worker, rows: [] }));
  let steps = 0;
  const t0 = performance.now();
  for (let pending = 1; pending > 0;) {
    for (const claimer of claimers) {
      const results = claimer.rows.map((r) => {
        const ok = Math.random() >= 1 / 3;
        return {
          delivery_id: r.delivery_id, attempt_number: r.attempt_number, outcome: ok ? 'succeeded' : 'failed',
          status: ok ? 200 : 503, duration_ms: 1, next_attempt_at: ok ? null : new Date(Date.now() + 20).toISOString(),
        };
      });
      claimer.rows = (await db.query(
        `select * from private.record_and_claim($1, $2::jsonb, interval '5 days', 8, 8)`,
        [claimer.worker, JSON.stringify(results)],
      )).rows;
      steps++;
    }
    pending = (await db.query(`select count(*)::int as n from public.webhook_deliveries where state = 'pending'`)).rows[0].n;
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  const ms = performance.now() - t0;
  console.log(`all delivered: ${steps} record-and-claim steps, ${Math.round(ms)} ms, ${(ms / steps).toFixed(1)} ms a step`);
  await db.end();
} finally {
  await cleanupAll();
}
