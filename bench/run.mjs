#!/usr/bin/env node
// `npm run bench`: the delivery engine benchmark. See the top of bench/RESULTS.md for what
// is measured and how; this file is the procedure.
//
//   npm run bench                 3 runs of each measurement with the default knobs
//   npm run bench -- --sweep      first, one throughput run per knob set in SWEEP
//
// Knobs: BENCH_RUNS (3), BENCH_DB_PORT (54352), BENCH_EVENTS_1 (20000),
// BENCH_EVENTS_5 (5000), BENCH_LATENCY_SECONDS (15), BENCH_PGBENCH_SECONDS (10),
// and WEBHOOK_* for the dispatcher (defaults below).
import fs from 'node:fs';
import path from 'node:path';
import { ROOT } from '../scripts/lib/env.mjs';
import { run } from '../scripts/lib/run.mjs';
import {
  cleanupAll, clearOutbox, connect, createFixtures, describeTuning, enqueueMany, enqueueOne, expectedDeliveryIds,
  loadAverage, log, machineInfo, machineMd, mdTable, median, now, percentile, poll, round, startDatabase,
  startOurDispatcher, startReceiver, steadyLoad, useSteadyStateStatistics, WORKER_TUNING,
} from './lib/harness.mjs';

const num = (name, fallback) => Number(process.env[name] ?? fallback);
const RUNS = num('BENCH_RUNS', 3);
const DB_PORT = num('BENCH_DB_PORT', 54352);
const EVENTS_1 = num('BENCH_EVENTS_1', 20_000);
const EVENTS_5 = num('BENCH_EVENTS_5', 5_000);
const LATENCY_RATE = 100;
const LATENCY_SECONDS = num('BENCH_LATENCY_SECONDS', 15);
const PGBENCH_SECONDS = num('BENCH_PGBENCH_SECONDS', 10);
const SWEEP = process.argv.includes('--sweep');

// The knobs the measured runs use; WEBHOOK_* in the environment override them.
const KNOBS = {
  WEBHOOK_BATCH_SIZE: process.env.WEBHOOK_BATCH_SIZE ?? 50,
  WEBHOOK_CONCURRENCY: process.env.WEBHOOK_CONCURRENCY ?? 50,
  WEBHOOK_ENDPOINT_CONCURRENCY: process.env.WEBHOOK_ENDPOINT_CONCURRENCY ?? 10,
};
const SWEEP_KNOBS = [
  { WEBHOOK_BATCH_SIZE: 50, WEBHOOK_CONCURRENCY: 50, WEBHOOK_ENDPOINT_CONCURRENCY: 10 },
  { WEBHOOK_BATCH_SIZE: 100, WEBHOOK_CONCURRENCY: 100, WEBHOOK_ENDPOINT_CONCURRENCY: 25 },
  { WEBHOOK_BATCH_SIZE: 200, WEBHOOK_CONCURRENCY: 100, WEBHOOK_ENDPOINT_CONCURRENCY: 50 },
];
const PLAIN_WORKER = { v8Flags: '', env: {} };
const STALE_EVENTS = num('BENCH_STALE_EVENTS', 5_000);
const knobLabel = (k) => `batch ${k.WEBHOOK_BATCH_SIZE} / conc ${k.WEBHOOK_CONCURRENCY} / per-endpoint ${k.WEBHOOK_ENDPOINT_CONCURRENCY}`;

const TARGETS = { throughput: 1500, p50: 20, p99: 100, rss: 128, enqueueRatio: 3 };

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
  await db.query(`update public.webhook_deliveries set state = 'succeeded', next_attempt_at = null, completed_at = now()`);
}

async function pgbenchRun(setNo) {
  await db.query('vacuum analyze public.processes, public.webhook_deliveries, public.webhook_events');
  const res = await run(
    cluster.pg.bin('pgbench'),
    ['-n', '-f', path.join(ROOT, 'bench', 'pgbench', 'revise-process.sql'), '-D', `set_no=${setNo}`,
      '-c', '2', '-j', '2', '-T', String(PGBENCH_SECONDS), '-h', '127.0.0.1', '-p', String(cluster.port), '-U', 'postgres', 'postgres'],
    { capture: true, env: { ...process.env, PGPASSWORD: 'postgres' } },
  );
  const tps = Number(/tps = ([\d.]+) \(without initial connection time\)/.exec(res.stdout)?.[1]);
  if (res.code !== 0 || !Number.isFinite(tps)) throw new Error(`pgbench failed:\n${res.stdout}\n${res.stderr}`);
  const { rows: [{ n }] } = await db.query(`select count(*)::int as n from public.webhook_deliveries where state = 'pending'`);
  return { tps: round(tps, 0), deliveries: n };
}

async function main() {
  const started = new Date();
  log(`fresh cluster on 127.0.0.1:${DB_PORT} (.local/bench-db)`);
  cluster = await startDatabase({ dir: '.local/bench-db', port: DB_PORT });
  db = await connect(cluster.url);
  receiver = await startReceiver();
  fixtures = await createFixtures(db, receiver.port);
  await receiver.call('secrets', { secrets: fixtures.secrets });
  const { one, five } = fixtures.companies;

  const sweep = [];
  if (SWEEP) {
    const variants = [
      ...SWEEP_KNOBS.map((knobs) => ({ knobs, tuning: WORKER_TUNING })),
      { knobs: KNOBS, tuning: PLAIN_WORKER },
    ];
    for (const { knobs, tuning } of variants) {
      const label = `${knobLabel(knobs)}${tuning === PLAIN_WORKER ? ', plain worker (no V8 flag, no malloc setting)' : ''}`;
      log(`sweep: ${label}`);
      const a = await throughputRun(one, EVENTS_1, knobs, { tuning });
      const b = await throughputRun(five, EVENTS_5, knobs, { tuning });
      log(`  1 endpoint ${a.perSec}/s (RSS ${a.rssMb} MB), 5 endpoints ${b.perSec}/s (RSS ${b.rssMb} MB)`);
      sweep.push({ label, one: a, five: b });
    }
  }

  const runs = [];
  for (let r = 1; r <= RUNS; r++) {
    log(`run ${r}/${RUNS} (${knobLabel(KNOBS)})`);
    const tp1 = await throughputRun(one, EVENTS_1, KNOBS);
    log(`  throughput, 1 endpoint: ${tp1.perSec}/s, drain ${tp1.drainMs} ms, RSS ${tp1.rssMb} MB, lost ${tp1.lost}, dup ${tp1.duplicates}`);
    const tp5 = await throughputRun(five, EVENTS_5, KNOBS);
    log(`  throughput, 5 endpoints: ${tp5.perSec}/s, drain ${tp5.drainMs} ms, RSS ${tp5.rssMb} MB, lost ${tp5.lost}, dup ${tp5.duplicates}`);
    const lat = await latencyRun(KNOBS);
    log(`  latency at ${lat.offeredRate}/s: p50 ${lat.p50} ms, p95 ${lat.p95} ms, p99 ${lat.p99} ms, lost ${lat.lost}`);
    runs.push({ tp1, tp5, lat });
  }

  // The SQL finding: the same backlog, but with the statistics a production table has.
  log(`stale statistics: ${STALE_EVENTS} events to 1 endpoint, outbox statistics from a table of delivered rows`);
  const stale = await throughputRun(one, STALE_EVENTS, KNOBS, { staleStatistics: true });
  log(`  ${stale.perSec}/s, drain ${stale.drainMs} ms`);

  const pgbench = [];
  await seedOutboxHistory();
  for (let r = 1; r <= RUNS; r++) {
    const zero = await pgbenchRun(0);
    const five5 = await pgbenchRun(5);
    log(`pgbench ${r}/${RUNS}: 0 webhooks ${zero.tps} TPS, 5 webhooks ${five5.tps} TPS`);
    pgbench.push({ zero, five: five5 });
  }

  const report = await writeReport({ started, sweep, runs, pgbench, stale });
  console.log(`\n${report.summary}\n\nwrote bench/RESULTS.md`);
}

async function writeReport({ started, sweep, runs, pgbench, stale }) {
  const m = await machineInfo(cluster);
  const med = (f) => median(runs.map(f));
  const medians = {
    tp1: med((r) => r.tp1.perSec),
    tp5: med((r) => r.tp5.perSec),
    rss: Math.max(...runs.flatMap((r) => [r.tp1.rssMb, r.tp5.rssMb])),
    rssMed: med((r) => Math.max(r.tp1.rssMb, r.tp5.rssMb)),
    p50: med((r) => r.lat.p50),
    p95: med((r) => r.lat.p95),
    p99: med((r) => r.lat.p99),
    tpsZero: median(pgbench.map((p) => p.zero.tps)),
    tpsFive: median(pgbench.map((p) => p.five.tps)),
  };
  const ratio = round(medians.tpsZero / medians.tpsFive, 2);
  const lost = runs.reduce((s, r) => s + r.tp1.lost + r.tp5.lost + r.lat.lost, 0);
  const dups = runs.reduce((s, r) => s + r.tp1.duplicates + r.tp5.duplicates + r.lat.duplicates, 0);
  const bad = runs.reduce((s, r) => s + r.tp1.badSignatures + r.tp5.badSignatures, 0);
  const ok = (b) => (b ? 'met' : '**missed**');
  const mediansTable = mdTable([
    ['measure', 'median', 'target', ''],
    [`throughput, ${EVENTS_1} events to 1 endpoint`, `${medians.tp1} deliveries/s`, `>= ${TARGETS.throughput}/s`, ok(medians.tp1 >= TARGETS.throughput)],
    [`throughput, ${EVENTS_5} events to 5 endpoints`, `${medians.tp5} deliveries/s`, `>= ${TARGETS.throughput}/s`, ok(medians.tp5 >= TARGETS.throughput)],
    [`latency p50 at ${LATENCY_RATE} events/s`, `${medians.p50} ms`, `<= ${TARGETS.p50} ms`, ok(medians.p50 <= TARGETS.p50)],
    ['latency p95', `${medians.p95} ms`, '', ''],
    ['latency p99', `${medians.p99} ms`, `<= ${TARGETS.p99} ms`, ok(medians.p99 <= TARGETS.p99)],
    ['dispatcher peak RSS (VmHWM), worst run', `${medians.rss} MB`, `<= ${TARGETS.rss} MB`, ok(medians.rss <= TARGETS.rss)],
    ['pgbench TPS, 0 webhooks', `${medians.tpsZero}`, '', ''],
    ['pgbench TPS, 5 webhooks', `${medians.tpsFive}`, '', ''],
    ['enqueue cost ratio (TPS 0 / TPS 5)', `${ratio}x`, `<= ${TARGETS.enqueueRatio}x`, ok(ratio <= TARGETS.enqueueRatio)],
    ['lost / duplicated / bad signatures, all runs', `${lost} / ${dups} / ${bad}`, '0 lost', ok(lost === 0)],
  ]);
  const runsTable = mdTable([
    ['run', '1 endpoint /s', 'drain ms', 'RSS MB', '5 endpoints /s', 'drain ms', 'RSS MB', 'p50 ms', 'p95 ms', 'p99 ms', 'max ms', 'client-side p50 / p99 ms', 'lost', 'dup', 'load avg'],
    ...runs.map((r, i) => [
      i + 1, r.tp1.perSec, r.tp1.drainMs, r.tp1.rssMb, r.tp5.perSec, r.tp5.drainMs, r.tp5.rssMb,
      r.lat.p50, r.lat.p95, r.lat.p99, r.lat.max, `${r.lat.clientP50} / ${r.lat.clientP99}`,
      r.tp1.lost + r.tp5.lost + r.lat.lost, r.tp1.duplicates + r.tp5.duplicates + r.lat.duplicates,
      `${r.tp1.load} / ${r.tp5.load} / ${r.lat.load}`,
    ]),
  ]);
  const pgbenchTable = mdTable([
    ['run', 'TPS, 0 webhooks', 'TPS, 5 webhooks', 'ratio', 'pending deliveries after the 5-webhook run (cumulative)'],
    ...pgbench.map((p, i) => [i + 1, p.zero.tps, p.five.tps, round(p.zero.tps / p.five.tps, 2), p.five.deliveries]),
  ]);
  const sweepTable = sweep.length === 0 ? '' : `
## Knob sweep (one throughput run each)

${mdTable([
    ['knobs', '1 endpoint /s', 'RSS MB', '5 endpoints /s', 'RSS MB'],
    ...sweep.map((s) => [s.label, s.one.perSec, s.one.rssMb, s.five.perSec, s.five.rssMb]),
  ])}
`;
  const md = `# Delivery engine benchmark

Written by \`npm run bench${SWEEP ? ' -- --sweep' : ''}\` (bench/run.mjs), started ${started.toISOString()}.

## Machine

${machineMd(m)}
- PostgreSQL is a fresh throwaway cluster (.local/bench-db, port ${DB_PORT}) with \`fsync\`,
  \`synchronous_commit\` and \`full_page_writes\` off (cluster.mjs \`fast\`): the numbers are about
  CPU work, not this VM's disk. The machine is shared with other work, so expect noise.

## Method

- **Dispatcher**: the real worker, a fresh process per measurement, started (cwd
  supabase/functions) as \`${describeTuning()}\`, knobs ${knobLabel(KNOBS)}.
  The V8 flag and the malloc setting are process settings, not code (bench/lib/harness.mjs
  WORKER_TUNING says why); ${SWEEP ? 'the sweep below has a run without them' : '`npm run bench -- --sweep` adds a run without them'}.
- **Receiver**: a Node http server (bench/lib/receiver.mjs) in its own process, 200 at once,
  records every webhook-id (duplicates, lost = expected delivery ids never received) and
  verifies every 50th signature with \`standardwebhooks\`.
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
- **Enqueue cost**: pgbench (bench/pgbench/revise-process.sql, 2 clients, ${PGBENCH_SECONDS} s per run)
  renames a random one of 100 processes, so update_process_revision bumps the revision and
  the trigger enqueues PROCESS_REVISED, once for a company with 0 subscribed webhooks and once
  for a company with 5, alternating; the dispatcher is not running. The outbox holds a history
  of 20000 delivered events and is VACUUM ANALYZEd before each run (right after a TRUNCATE the
  5-webhook case measured 970-1430 TPS instead of ~2250 while the empty tables grew: a
  property of an empty table, not of the enqueue). Ratio = TPS(0) / TPS(5).

## Stale statistics (a regression check on the claim, one run)

${STALE_EVENTS} events to 1 endpoint, same knobs, but the outbox statistics are those of a table
of delivered rows (\`next_attempt_at\` null in every analyzed row, the production steady
state) and nothing re-analyzes before the drain: **${stale.perSec} deliveries/s** (drain ${stale.drainMs} ms),
against a median of ${med((r) => r.tp1.perSec)}/s above. Before claim_due_deliveries locked its picks
by primary key, the planner's "about one due row" estimate made every claim rescan the due
rows and this run drained at ~175/s (bench/README.md has the numbers).

## Medians of ${RUNS} runs

${mediansTable}

## Each run

${runsTable}

### pgbench

${pgbenchTable}
${sweepTable}`;
  fs.writeFileSync(path.join(ROOT, 'bench', 'RESULTS.md'), md);
  return { summary: mediansTable };
}

main()
  .catch((e) => {
    console.error(e);
    process.exitCode = 1;
  })
  .finally(() => cleanupAll());
