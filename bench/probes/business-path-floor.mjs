#!/usr/bin/env node
// Probe: how far the business-path target (issue 9: 20 writers, 3 subscribers, at least 0.5x
// the TPS of the same writers with no subscriber) is reachable while each write creates its
// event and deliveries itself (DESIGN.md's atomic outbox). The same pgbench as `npm run bench`
// (bench/pgbench/revise-process.sql, 20 clients), no dispatcher running and its heartbeat set
// (no write sends a wake-up), a ratio per pair of runs (none, then 3), median of the pairs, for:
// 1. the outbox as built;
// 2. the pkeys only: every other index of webhook_deliveries and webhook_events dropped, their
//    foreign keys dropped, the signal trigger disabled: the floor of any narrower delivery row;
// 3. the event row only (the floor of a fan-out after commit): 2, and insert_webhook_event
//    stops before it inserts the deliveries.
// 2 and 3 break the outbox: measurements, never a design. The bench's own ratio is with the
// dispatcher delivering on the same two cores, about 0.87x of the stopped one (bench/RESULTS.md:
// the "diagnostic" row).
// Usage: node bench/probes/business-path-floor.mjs [pairs]   (a throwaway cluster, port 54366)
import { pgbench } from '../lib/business.mjs';
import { cleanupAll, connect, createCompany, createFixtures, median, startDatabase } from '../lib/harness.mjs';

const pairs = Number(process.argv[2] ?? 3);
const SECONDS = 5;
const cluster = await startDatabase({ dir: 'bench/.out/probe-business-db', port: 54366 });
try {
  const db = await connect(cluster.url);
  await createFixtures(db, 9);
  await createCompany(db, 9, 'three', { endpoints: 3, processes: 100, setNo: 3 });
  await db.query(`select setval('private.webhook_dispatcher_heartbeat', (extract(epoch from clock_timestamp()) * 1000)::bigint + 36000000)`);

  const measure = async (label) => {
    const ratios = [];
    for (let i = 0; i < pairs; i++) {
      const { tps: none } = await pgbench({ cluster, db }, 0, 20, SECONDS);
      const { tps: three } = await pgbench({ cluster, db }, 3, 20, SECONDS);
      ratios.push(three / none);
      console.log(`  ${label}: none ${Math.round(none)} TPS, 3 subscribers ${Math.round(three)} TPS, ${(three / none).toFixed(2)}x`);
    }
    console.log(`${label}: median ${median(ratios).toFixed(2)}x`);
  };

  await measure('1. as built');

  const { rows: indexes } = await db.query(
    `select format('%I.%I', n.nspname, c.relname) as name
       from pg_index i join pg_class c on c.oid = i.indexrelid join pg_namespace n on n.oid = c.relnamespace
      where i.indrelid in ('public.webhook_deliveries'::regclass, 'public.webhook_events'::regclass) and not i.indisprimary`,
  );
  for (const { name } of indexes) await db.query(`drop index ${name}`);
  const { rows: fks } = await db.query(
    `select format('alter table %s drop constraint %I', conrelid::regclass, conname) as sql
       from pg_constraint
      where contype = 'f' and conrelid in ('public.webhook_deliveries'::regclass, 'public.webhook_events'::regclass)`,
  );
  for (const { sql } of fks) await db.query(sql);
  await db.query('alter table public.webhook_deliveries disable trigger wake_dispatchers');
  await measure(`2. pkeys only (${indexes.length} indexes, ${fks.length} foreign keys and the signal trigger gone)`);

  const { rows: [{ def }] } = await db.query(
    `select pg_get_functiondef('private.insert_webhook_event(uuid, text, jsonb, uuid[])'::regprocedure) as def`,
  );
  const fanOut = /^\s*perform private\.insert_deliveries\(.*$/m;
  if (!fanOut.test(def)) throw new Error('insert_webhook_event no longer calls insert_deliveries: update this probe');
  await db.query(def.replace(fanOut, '  -- (probe: no deliveries)'));
  await measure('3. the event row only');
  await db.end();
} finally {
  await cleanupAll();
}
