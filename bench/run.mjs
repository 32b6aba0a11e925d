#!/usr/bin/env node
// `npm run bench`: the delivery engine benchmark. See the top of bench/RESULTS.md for what
// is measured and how; this file is the procedure, the scenarios' own in bench/lib/.
//
//   npm run bench                          every scenario, BENCH_RUNS runs each (~10-12 min)
//   npm run bench -- --only=claim,ordered  just these scenarios (results to bench/.out/)
//   npm run bench -- --sweep               first, one throughput run per knob set in SWEEP
//
// Scenarios: throughput (1 and 5 endpoints, with the dispatcher's peak RSS; `rss` is an
// alias), latency, stale, isolation, ordered, business (with the enqueue cost; `enqueue`
// is an alias), claim, retention. A full run writes bench/RESULTS.md; --only writes
// bench/.out/RESULTS-<scenarios>.md, so iterating never overwrites the committed results.
//
// Knobs: BENCH_RUNS (3), BENCH_DB_PORT (54352), BENCH_EVENTS_1 (20000),
// BENCH_EVENTS_5 (5000), BENCH_LATENCY_SECONDS (15), BENCH_PGBENCH_SECONDS (10),
// BENCH_STALE_EVENTS (5000), BENCH_ISOLATION_EVENTS (5000), BENCH_CLAIMS (100 per round),
// BENCH_CLAIM_ROUNDS (5 per case),
// BENCH_CLAIM_BIG_BACKLOG (1000000), BENCH_CLAIM_MAX_ENDPOINTS (100000),
// BENCH_ORDERED_EVENTS (5000), BENCH_ORDERED_LATENCY_SECONDS (10),
// BENCH_RETENTION_DELIVERIES (300000), and WEBHOOK_* for the
// dispatcher (unset: the engine's own defaults).
import fs from 'node:fs';
import path from 'node:path';
import { ROOT } from '../scripts/lib/env.mjs';
import {
  cleanupAll, clearOutbox, connect, createFixtures, describeTuning, enqueueMany, enqueueOne, expectedDeliveryIds,
  loadAverage, log, machineInfo, machineMd, mdTable, median, now, OUT_DIR, percentile, poll, round, startDatabase,
  startOurDispatcher, startReceiver, steadyLoad, useSteadyStateStatistics, WORKER_TUNING,
} from './lib/harness.mjs';
import { isolationReport, isolationRun, setupIsolation } from './lib/isolation.mjs';
import { claimCostReport, claimCostScenario } from './lib/claim-cost.mjs';
import { businessReport, businessRun, settlePending, setupBusiness } from './lib/business.mjs';
import { orderedReport, orderedRun, setupOrdered } from './lib/ordered.mjs';
import { retentionReport, retentionScenario } from './lib/retention.mjs';

const num = (name, fallback) => Number(process.env[name] ?? fallback);
const RUNS = num('BENCH_RUNS', 3);
const DB_PORT = num('BENCH_DB_PORT', 54352);
const EVENTS_1 = num('BENCH_EVENTS_1', 20_000);
const EVENTS_5 = num('BENCH_EVENTS_5', 5_000);
const LATENCY_RATE = 100;
const LATENCY_SECONDS = num('BENCH_LATENCY_SECONDS', 15);
const SWEEP = process.argv.includes('--sweep');

const SCENARIOS = ['throughput', 'latency', 'stale', 'isolation', 'ordered', 'business', 'claim', 'retention'];
const ALIASES = { rss: 'throughput', enqueue: 'business' };
function selectedScenarios() {
  const arg = process.argv.find((a) => a.startsWith('--only='));
  if (!arg) return { only: null, chosen: new Set(SCENARIOS) };
  const chosen = new Set();
  for (const id of arg.slice('--only='.length).split(',').map((s) => s.trim()).filter(Boolean)) {
    const scenario = ALIASES[id] ?? id;
    if (!SCENARIOS.includes(scenario)) {
      throw new Error(`unknown scenario "${id}"; scenarios: ${SCENARIOS.join(', ')} (aliases: ${Object.keys(ALIASES).join(', ')})`);
    }
    chosen.add(scenario);
  }
  return { only: [...chosen], chosen };
}
const { only: ONLY, chosen: CHOSEN } = selectedScenarios();

// The knobs the measured runs use: WEBHOOK_* set in the environment, otherwise the
// engine's own defaults (nothing is passed). The per-endpoint cap is the database's
// (private.webhook_settings.endpoint_concurrency) and is reported with the results.
const KNOB_NAMES = ['WEBHOOK_BATCH_SIZE', 'WEBHOOK_CONCURRENCY', 'WEBHOOK_TIMEOUT_MS', 'WEBHOOK_LEASE_SECONDS'];
const KNOBS = Object.fromEntries(KNOB_NAMES.filter((k) => process.env[k]).map((k) => [k, process.env[k]]));
// Each sweep set: dispatcher knobs, and the per-endpoint cap, a database setting
// (private.webhook_settings.endpoint_concurrency, set for the set's runs).
const SWEEP_KNOBS = [
  { knobs: { WEBHOOK_BATCH_SIZE: 50, WEBHOOK_CONCURRENCY: 50 }, endpointCap: 10 },
  { knobs: { WEBHOOK_BATCH_SIZE: 100, WEBHOOK_CONCURRENCY: 100 }, endpointCap: 25 },
  { knobs: { WEBHOOK_BATCH_SIZE: 200, WEBHOOK_CONCURRENCY: 200 }, endpointCap: 50 },
];
const PLAIN_WORKER = { v8Flags: '', env: {} };
const STALE_EVENTS = num('BENCH_STALE_EVENTS', 5_000);
const knobLabel = (k) => (Object.keys(k).length === 0
  ? "the engine's defaults (no WEBHOOK_* set)"
  : Object.entries(k).map(([name, v]) => `${name}=${v}`).join(', '));

const TARGETS = { throughput: 1500, p50: 20, p99: 100, rss: 128 };
// Issue 9: "no regression over 10 % in today's figures" (bench/RESULTS.md before it).
const BEFORE = { tp1: 4292, tp5: 4094, p50: 1.7, rss: 101 };

let cluster, db, receiver, fixtures;

async function throughputRun(company, events, knobs, { tuning = WORKER_TUNING, staleStatistics = false } = {}) {
  await clearOutbox(db);
  if (staleStatistics) await useSteadyStateStatistics(db, company.id, fixtures.snapshot);
  await receiver.call('reset');
  const dispatcher = await startOurDispatcher({ dbUrl: cluster.url, receiverPort: receiver.port, knobs, client: db, tuning });
  try {
    const t0 = now();
    await enqueueMany(db, company.id, events, fixtures.snapshot, staleStatistics ? { analyze: false } : {});
    const committed = now();
    const expected = events * company.endpoints;
    await receiver.waitFor(expected, 240_000);
    // Done = every attempt recorded (no pending delivery left), not just sent.
    await poll(async () => (await db.query(
      `select count(*)::int as n from public.webhook_deliveries where state = 'pending'`,
    )).rows[0].n === 0, 60_000);
    const done = now();
    const rssMb = dispatcher.peakRssMb();
    await dispatcher.stop();
    const stats = await receiver.call('stats');
    const { lost, unexpected } = await receiver.call('check', { expected: await expectedDeliveryIds(db) });
    const { rows: [states] } = await db.query(
      `select count(*) filter (where state = 'succeeded')::int as succeeded,
              count(*) filter (where state <> 'succeeded')::int as other,
              (select count(*)::int from public.webhook_delivery_attempts) as attempts
         from public.webhook_deliveries`,
    );
    return {
      deliveries: expected,
      enqueueMs: round(committed - t0, 0),
      drainMs: round(done - committed, 0),
      perSec: round(expected / ((done - committed) / 1000), 0),
      receivedPerSec: round(expected / ((stats.lastAt - committed) / 1000), 0),
      rssMb,
      lost,
      unexpected,
      duplicates: stats.duplicates,
      badSignatures: stats.badSignatures,
      verified: stats.verified,
      load: loadAverage(),
      ...states,
    };
  } finally {
    await dispatcher.stop();
  }
}

async function latencyRun(knobs) {
  await clearOutbox(db);
  await receiver.call('reset');
  const company = fixtures.companies.one;
  const dispatcher = await startOurDispatcher({ dbUrl: cluster.url, receiverPort: receiver.port, knobs, client: db });
  try {
    const enqueue = (seq) => enqueueOne(db, company.id, seq, fixtures.snapshot);
    // Warm-up (not measured): connections open, code paths compiled.
    await steadyLoad({ count: 50, rate: LATENCY_RATE, enqueue, firstSeq: 1 });
    await receiver.waitFor(50, 10_000);
    await receiver.call('reset');

    const count = LATENCY_RATE * LATENCY_SECONDS;
    const started = now();
    const committedAt = await steadyLoad({ count, rate: LATENCY_RATE, enqueue, firstSeq: 1001, maxMs: LATENCY_SECONDS * 2000 });
    const offeredRate = committedAt.size / ((now() - started) / 1000);
    await receiver.waitFor(committedAt.size, 30_000);
    const rssMb = dispatcher.peakRssMb();
    const stats = await receiver.call('stats');
    const { rows } = await db.query(
      `select d.id from public.webhook_deliveries d join public.webhook_events e on e.id = d.event_id
        where (e.payload -> 'data' ->> 'seq')::int > 1000`,
    );
    const { lost } = await receiver.call('check', { expected: rows.map((r) => r.id) });
    const client = stats.receivedAtBySeq.map(([seq, at]) => at - committedAt.get(seq)).filter(Number.isFinite);
    return {
      events: committedAt.size,
      offeredRate: round(offeredRate, 1),
      p50: round(percentile(stats.latencies, 50), 1),
      p95: round(percentile(stats.latencies, 95), 1),
      p99: round(percentile(stats.latencies, 99), 1),
      max: round(Math.max(...stats.latencies), 1),
      clientP50: round(percentile(client, 50), 1),
      clientP99: round(percentile(client, 99), 1),
      rssMb,
      lost,
      duplicates: stats.duplicates,
      load: loadAverage(),
    };
  } finally {
    await dispatcher.stop();
  }
}

/**
 * pgbench runs against an outbox with history (20000 delivered events, analyzed), as a
 * production one has. Right after a TRUNCATE the 5-webhook case measured 970-1430 TPS
 * instead of ~2250 while the empty tables and their indexes grew (and autovacuum chased
 * them); that is a property of an empty table, not of the enqueue.
 */
async function seedOutboxHistory() {
  await clearOutbox(db);
  await enqueueMany(db, fixtures.companies.one.id, 20_000, fixtures.snapshot, { analyze: false });
  await settlePending(db);
}

async function main() {
  const started = new Date();
  log(`scenarios: ${[...CHOSEN].join(', ')}; ${RUNS} runs; fresh cluster on 127.0.0.1:${DB_PORT} (.local/bench-db)`);
  cluster = await startDatabase({ dir: '.local/bench-db', port: DB_PORT });
  db = await connect(cluster.url);
  receiver = await startReceiver();
  fixtures = await createFixtures(db, receiver.port);
  const ctx = { cluster, db, receiver, fixtures, knobs: KNOBS, runs: RUNS };
  const setups = {};
  if (CHOSEN.has('isolation')) setups.isolation = await setupIsolation(ctx);
  if (CHOSEN.has('ordered')) setups.ordered = await setupOrdered(ctx);
  if (CHOSEN.has('business')) setups.business = await setupBusiness(ctx);
  const { rows: secretRows } = await db.query(
    `select regexp_replace(w.url, '^http://[^/]+', '') as path, s.secret
       from public.webhooks w join private.webhook_secrets s on s.webhook_id = w.id`,
  );
  await receiver.call('secrets', { secrets: Object.fromEntries(secretRows.map((r) => [r.path, r.secret])) });
  const { one, five } = fixtures.companies;
  const { rows: [settings] } = await db.query('select * from private.webhook_settings');

  const sweep = [];
  if (SWEEP) {
    const variants = [
      ...SWEEP_KNOBS.map((v) => ({ ...v, tuning: WORKER_TUNING })),
      { knobs: KNOBS, endpointCap: settings.endpoint_concurrency, tuning: PLAIN_WORKER },
    ];
    for (const { knobs, endpointCap, tuning } of variants) {
      const label = `${knobLabel(knobs)}, endpoint_concurrency ${endpointCap}` +
        `${tuning === PLAIN_WORKER ? ', plain worker (no V8 flag, no malloc setting)' : ''}`;
      log(`sweep: ${label}`);
      await db.query('update private.webhook_settings set endpoint_concurrency = $1', [endpointCap]);
      const a = await throughputRun(one, EVENTS_1, knobs, { tuning });
      const b = await throughputRun(five, EVENTS_5, knobs, { tuning });
      log(`  1 endpoint ${a.perSec}/s (RSS ${a.rssMb} MB), 5 endpoints ${b.perSec}/s (RSS ${b.rssMb} MB)`);
      sweep.push({ label, one: a, five: b });
    }
    await db.query('update private.webhook_settings set endpoint_concurrency = $1', [settings.endpoint_concurrency]);
  }

  const results = { runs: [], isolation: [], ordered: [], business: [] };
  for (let r = 1; r <= RUNS; r++) {
    log(`run ${r}/${RUNS} (${knobLabel(KNOBS)})`);
    const delivery = {};
    if (CHOSEN.has('throughput')) {
      delivery.tp1 = await throughputRun(one, EVENTS_1, KNOBS);
      log(`  throughput, 1 endpoint: ${delivery.tp1.perSec}/s, drain ${delivery.tp1.drainMs} ms, RSS ${delivery.tp1.rssMb} MB, lost ${delivery.tp1.lost}, dup ${delivery.tp1.duplicates}`);
      delivery.tp5 = await throughputRun(five, EVENTS_5, KNOBS);
      log(`  throughput, 5 endpoints: ${delivery.tp5.perSec}/s, drain ${delivery.tp5.drainMs} ms, RSS ${delivery.tp5.rssMb} MB, lost ${delivery.tp5.lost}, dup ${delivery.tp5.duplicates}`);
    }
    if (CHOSEN.has('latency')) {
      delivery.lat = await latencyRun(KNOBS);
      log(`  latency at ${delivery.lat.offeredRate}/s: p50 ${delivery.lat.p50} ms, p95 ${delivery.lat.p95} ms, p99 ${delivery.lat.p99} ms, lost ${delivery.lat.lost}`);
    }
    results.runs.push(delivery);
    if (CHOSEN.has('isolation')) results.isolation.push(await isolationRun(ctx, setups.isolation));
    if (CHOSEN.has('ordered')) results.ordered.push(await orderedRun(ctx, setups.ordered));
  }

  // The SQL finding: the same backlog, but with the statistics a production table has.
  if (CHOSEN.has('stale')) {
    log(`stale statistics: ${STALE_EVENTS} events to 1 endpoint, outbox statistics from a table of delivered rows`);
    results.stale = await throughputRun(one, STALE_EVENTS, KNOBS, { staleStatistics: true });
    log(`  ${results.stale.perSec}/s, drain ${results.stale.drainMs} ms`);
  }

  if (CHOSEN.has('business')) {
    await seedOutboxHistory();
    for (let r = 1; r <= RUNS; r++) {
      log(`business path ${r}/${RUNS}`);
      results.business.push(await businessRun(ctx));
    }
  }

  if (CHOSEN.has('claim')) {
    log('claim cost');
    await clearOutbox(db);
    results.claim = await claimCostScenario(ctx);
  }

  if (CHOSEN.has('retention')) {
    log('retention');
    results.retention = await retentionScenario(ctx);
  }

  const report = await writeReport({ started, sweep, settings, ...results });
  console.log(`\n${report.summary}\n\nwrote ${path.relative(ROOT, report.file)}`);
}

async function writeReport({ started, sweep, settings, runs, stale, isolation, ordered, business, claim, retention }) {
  const m = await machineInfo(cluster);
  const ok = (b) => (b ? 'met' : '**missed**');
  const within = (value, before, higherIsBetter) => {
    const limit = higherIsBetter ? before * 0.9 : before * 1.1;
    return `${before} (${ok(higherIsBetter ? value >= limit : value <= limit)})`;
  };
  const med = (f) => median(runs.map(f));
  const rows = [];
  const sections = [];
  const has = (k) => runs.length > 0 && runs[0][k] !== undefined;

  if (has('tp1')) {
    const tp1 = med((r) => r.tp1.perSec);
    const tp5 = med((r) => r.tp5.perSec);
    const rss = Math.max(...runs.flatMap((r) => [r.tp1.rssMb, r.tp5.rssMb]));
    rows.push(
      [`throughput, ${EVENTS_1} events to 1 endpoint`, `${tp1} deliveries/s`, `>= ${TARGETS.throughput}/s`, ok(tp1 >= TARGETS.throughput), within(tp1, BEFORE.tp1, true)],
      [`throughput, ${EVENTS_5} events to 5 endpoints`, `${tp5} deliveries/s`, `>= ${TARGETS.throughput}/s`, ok(tp5 >= TARGETS.throughput), within(tp5, BEFORE.tp5, true)],
      ['dispatcher peak RSS (VmHWM), worst throughput run', `${rss} MB`, `<= ${TARGETS.rss} MB`, ok(rss <= TARGETS.rss), within(rss, BEFORE.rss, false)],
    );
  }
  if (has('lat')) {
    const p50 = med((r) => r.lat.p50);
    const p99 = med((r) => r.lat.p99);
    rows.push(
      [`latency p50 at ${LATENCY_RATE} events/s`, `${p50} ms`, `<= ${TARGETS.p50} ms`, ok(p50 <= TARGETS.p50), within(p50, BEFORE.p50, false)],
      ['latency p95', `${med((r) => r.lat.p95)} ms`, '', '', ''],
      ['latency p99', `${p99} ms`, `<= ${TARGETS.p99} ms`, ok(p99 <= TARGETS.p99), ''],
    );
  }
  if (has('tp1') || has('lat')) {
    const parts = runs.flatMap((r) => [r.tp1, r.tp5, r.lat].filter(Boolean));
    const lost = parts.reduce((s, x) => s + x.lost, 0);
    const dups = parts.reduce((s, x) => s + x.duplicates, 0);
    const bad = parts.reduce((s, x) => s + (x.badSignatures ?? 0), 0);
    rows.push(['lost / duplicated / bad signatures, delivery runs', `${lost} / ${dups} / ${bad}`, '0 lost', ok(lost === 0), '']);
    sections.push(deliverySection(runs));
  }
  if (stale) sections.push(staleSection(stale, has('tp1') ? med((r) => r.tp1.perSec) : null));
  for (const [list, report] of [[isolation, isolationReport], [ordered, orderedReport], [business, businessReport]]) {
    if (list.length === 0) continue;
    const out = report(list);
    rows.push(...out.rows.map((row) => [...row, '']));
    sections.push(out.section);
  }
  if (claim) {
    const out = claimCostReport(claim);
    rows.push(...out.rows.map((row) => [...row, '']));
    sections.push(out.section);
  }
  if (retention) {
    const out = retentionReport(retention);
    rows.push(...out.rows.map((row) => [...row, '']));
    sections.push(out.section);
  }

  const mediansTable = mdTable([['measure', `median of ${RUNS}`, 'target', '', 'before (no regression over 10 %)'], ...rows]);
  const scope = ONLY ? `\`npm run bench -- --only=${ONLY.join(',')}\`` : `\`npm run bench${SWEEP ? ' -- --sweep' : ''}\``;
  const md = `# Delivery engine benchmark

Written by ${scope} (bench/run.mjs), started ${started.toISOString()}.

## Machine

${machineMd(m)}
- PostgreSQL is a fresh throwaway cluster (.local/bench-db, port ${DB_PORT}) with \`fsync\`,
  \`synchronous_commit\` and \`full_page_writes\` off (cluster.mjs \`fast\`): the numbers are about
  CPU work, not this VM's disk. The machine is shared with other work, so expect noise.

## Common method

- **Dispatcher**: the real worker, a fresh process per measurement, started (cwd
  supabase/functions) as \`${describeTuning()}\`, knobs: ${knobLabel(KNOBS)}.
  Per endpoint, in the database (private.webhook_settings): each starts at
  endpoint_concurrency_start ${settings.endpoint_concurrency_start ?? 'n/a'} requests in flight and earns one more per success up to
  endpoint_concurrency ${settings.endpoint_concurrency ?? 'n/a'} (the README's "Each endpoint earns its concurrency").
  The V8 flag and the malloc setting are process settings, not code (bench/lib/harness.mjs
  WORKER_TUNING says why); ${SWEEP ? 'the sweep below has a run without them' : '`npm run bench -- --sweep` adds a run without them'}.
- **Receiver**: a Node http server (bench/lib/receiver.mjs) in its own process, 200 at once
  unless a scenario gives a path another behaviour (hold the request, answer late, fail);
  records every webhook-id (duplicates, lost = expected delivery ids never received) and
  verifies every 50th signature with \`standardwebhooks\`.
- Ratios are measured within one run (same machine state), then the median of the runs' ratios.

## Medians of ${RUNS} runs

${mediansTable}

${sections.join('\n')}${sweepSection(sweep)}`;
  const file = ONLY
    ? path.join(OUT_DIR, `RESULTS-${ONLY.join('-')}.md`)
    : path.join(ROOT, 'bench', 'RESULTS.md');
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, md);
  return { summary: mediansTable, file };
}

function deliverySection(runs) {
  const has = (k) => runs[0][k] !== undefined;
  const cols = ['run'];
  if (has('tp1')) cols.push('1 endpoint /s', 'drain ms', 'RSS MB', '5 endpoints /s', 'drain ms', 'RSS MB');
  if (has('lat')) cols.push('p50 ms', 'p95 ms', 'p99 ms', 'max ms', 'client-side p50 / p99 ms');
  cols.push('lost', 'dup', 'load avg');
  const table = mdTable([
    cols,
    ...runs.map((r, i) => {
      const parts = [r.tp1, r.tp5, r.lat].filter(Boolean);
      return [
        i + 1,
        ...(has('tp1') ? [r.tp1.perSec, r.tp1.drainMs, r.tp1.rssMb, r.tp5.perSec, r.tp5.drainMs, r.tp5.rssMb] : []),
        ...(has('lat') ? [r.lat.p50, r.lat.p95, r.lat.p99, r.lat.max, `${r.lat.clientP50} / ${r.lat.clientP99}`] : []),
        parts.reduce((s, x) => s + x.lost, 0), parts.reduce((s, x) => s + x.duplicates, 0),
        parts.map((x) => x.load).join(' / '),
      ];
    }),
  ]);
  return `## Throughput, latency, memory

Method.
- **Throughput**: ${EVENTS_1} events to 1 endpoint, and ${EVENTS_5} events to 5 endpoints
  (${EVENTS_5 * 5} deliveries), each committed in one transaction while the (idle, listening)
  dispatcher waits. The clock starts when that COMMIT returns and stops when every delivery
  is recorded in the database (no \`pending\` row left); deliveries / that time. The
  enqueuing transaction ANALYZEs the outbox tables before it commits: see "Stale statistics".
- **Latency**: one event per transaction at a steady ${LATENCY_RATE}/s (open loop) for
  ${LATENCY_SECONDS} s to 1 endpoint, after 50 warm-up events. Each event's \`data.sent_at\` is
  \`clock_timestamp()\` (epoch ms) evaluated by Postgres inside the enqueuing statement, i.e.
  just before its commit; the receiver subtracts it from its arrival time (same machine,
  same clock). That slightly over-states latency (it includes the commit). Cross-check:
  "client-side" uses the time the loader saw COMMIT return instead.
- **Peak RSS**: \`VmHWM\` from /proc/<deno pid>/status at the end of each throughput run.

${table}
`;
}

function staleSection(stale, tp1) {
  return `## Stale statistics (a regression check on the claim, one run)

${STALE_EVENTS} events to 1 endpoint, same knobs, but the outbox statistics are those of a table
of delivered rows (\`next_attempt_at\` null in every analyzed row, the production steady
state) and nothing re-analyzes before the drain: **${stale.perSec} deliveries/s** (drain ${stale.drainMs} ms)${tp1 === null ? '' : `,
against a median of ${tp1}/s above`}. Before claim_due_deliveries locked its picks
by primary key, the planner's "about one due row" estimate made every claim rescan the due
rows and this run drained at ~175/s (bench/README.md has the numbers).
`;
}

function sweepSection(sweep) {
  if (sweep.length === 0) return '';
  return `
## Knob sweep (one throughput run each)

${mdTable([
    ['knobs', '1 endpoint /s', 'RSS MB', '5 endpoints /s', 'RSS MB'],
    ...sweep.map((s) => [s.label, s.one.perSec, s.one.rssMb, s.five.perSec, s.five.rssMb]),
  ])}
`;
}

main()
  .catch((e) => {
    console.error(e);
    process.exitCode = 1;
  })
  .finally(() => cleanupAll());
