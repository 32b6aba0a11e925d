#!/usr/bin/env node
// `npm run bench:peers`: our dispatcher against two peer deliverers built on job queues
// (graphile-worker, pg-boss) and the raw HTTP ceiling (autocannon), on one Postgres and one
// receiver. See the top of bench/RESULTS-peers.md for the method; this is the procedure.
//
// Knobs: BENCH_PEERS_ROUNDS (3), BENCH_PEERS_DB_PORT (54353), BENCH_PEERS_EVENTS_1 (5000),
// BENCH_PEERS_EVENTS_5 (1000), BENCH_PEERS_LATENCY_SECONDS (10), BENCH_PEERS_SKIP_TUNING=1
// (use the first candidate of each system).
import fs from 'node:fs';
import path from 'node:path';
import autocannon from 'autocannon';
import PgBoss from 'pg-boss';
import { runMigrations } from 'graphile-worker';
import { Webhook } from 'standardwebhooks';
import { ROOT } from '../../scripts/lib/env.mjs';
import {
  cleanupAll, clearOutbox, connect, createFixtures, describeTuning, enqueueMany, enqueueOne, expectedDeliveryIds,
  loadAverage, log, machineInfo, machineMd, mdTable, median, now, OUTBOX_TABLES, percentile, poll, round,
  startDatabase, startOurDispatcher, startProcess, startReceiver, steadyLoad,
} from '../lib/harness.mjs';

const num = (name, fallback) => Number(process.env[name] ?? fallback);
const ROUNDS = num('BENCH_PEERS_ROUNDS', 3);
const DB_PORT = num('BENCH_PEERS_DB_PORT', 54353);
const EVENTS_1 = num('BENCH_PEERS_EVENTS_1', 5_000);
const EVENTS_5 = num('BENCH_PEERS_EVENTS_5', 1_000);
const LATENCY_RATE = 100;
const LATENCY_SECONDS = num('BENCH_PEERS_LATENCY_SECONDS', 10);
const SKIP_TUNING = process.env.BENCH_PEERS_SKIP_TUNING === '1';
const CEILING_SECONDS = 4;
const QUEUE = 'deliver_webhook';
const PEERS_DIR = path.join(ROOT, 'bench', 'peers');

let cluster, db, receiver, fixtures, boss;

// ---------------------------------------------------------------------------------------
// The systems. Each: candidate configs (tuned below), how to start its delivering process,
// how the application enqueues (many events in one transaction, or one), and how many of
// its jobs are still unfinished.
// ---------------------------------------------------------------------------------------

const outstandingDeliveries = async () =>
  (await db.query(`select count(*)::int as n from public.webhook_deliveries where state = 'pending'`)).rows[0].n;

const ours = {
  name: 'ours',
  // The per-endpoint cap is a database setting (private.webhook_settings.endpoint_concurrency,
  // what an endpoint may earn from the start of 10), set by start() for the candidate; the
  // others are the dispatcher's environment. The last two are the engine's defaults (500
  // sockets, cap 50) with batches of 50 and of 100.
  candidates: [
    { WEBHOOK_BATCH_SIZE: 50, WEBHOOK_CONCURRENCY: 50, endpointCap: 10 },
    { WEBHOOK_BATCH_SIZE: 100, WEBHOOK_CONCURRENCY: 100, endpointCap: 25 },
    { WEBHOOK_BATCH_SIZE: 200, WEBHOOK_CONCURRENCY: 100, endpointCap: 50 },
    { WEBHOOK_BATCH_SIZE: 50, WEBHOOK_CONCURRENCY: 500, endpointCap: 50 },
    { WEBHOOK_BATCH_SIZE: 100, WEBHOOK_CONCURRENCY: 500, endpointCap: 50 },
  ],
  label: (c) => `batch ${c.WEBHOOK_BATCH_SIZE}, concurrency ${c.WEBHOOK_CONCURRENCY}, per endpoint ${c.endpointCap}`,
  /** In-flight requests it allows toward `endpoints` endpoints: the ceiling's connections. */
  inFlight: (c, endpoints) => Math.min(c.WEBHOOK_CONCURRENCY, endpoints * c.endpointCap),
  async start({ endpointCap, ...knobs }) {
    await db.query('update private.webhook_settings set endpoint_concurrency = $1', [endpointCap]);
    return startOurDispatcher({ dbUrl: cluster.url, receiverPort: receiver.port, knobs, client: db });
  },
  enqueueMany: (company, n) => enqueueMany(db, company.id, n, fixtures.snapshot),
  enqueueOne: (company, seq) => enqueueOne(db, company.id, seq, fixtures.snapshot),
  outstanding: outstandingDeliveries,
  async activate() {},
  async deactivate() {},
};

const graphile = {
  name: 'graphile-worker',
  candidates: [
    { PEER_CONCURRENCY: 10, PEER_LOCAL_QUEUE: -1, PEER_BATCH_DELAY: -1 },
    { PEER_CONCURRENCY: 25, PEER_LOCAL_QUEUE: 50, PEER_BATCH_DELAY: 0 },
    { PEER_CONCURRENCY: 50, PEER_LOCAL_QUEUE: 100, PEER_BATCH_DELAY: 0 },
    { PEER_CONCURRENCY: 100, PEER_LOCAL_QUEUE: 200, PEER_BATCH_DELAY: 0 },
  ],
  label: (c) => `concurrency ${c.PEER_CONCURRENCY}, localQueue ${c.PEER_LOCAL_QUEUE > 1 ? c.PEER_LOCAL_QUEUE : 'off'}, ` +
    `complete/fail batch delay ${c.PEER_BATCH_DELAY >= 0 ? `${c.PEER_BATCH_DELAY} ms` : 'off'}`,
  start: (c) => startPeer('graphile-worker', c),
  enqueueMany: (company, n) =>
    enqueueMany(db, company.id, n, fixtures.snapshot, { analyze: [...OUTBOX_TABLES, 'graphile_worker._private_jobs'] }),
  enqueueOne: (company, seq) => enqueueOne(db, company.id, seq, fixtures.snapshot),
  outstanding: async () => (await db.query('select count(*)::int as n from graphile_worker.jobs')).rows[0].n,
  activate: () => db.query('alter table public.webhook_deliveries enable trigger bench_graphile_add_job'),
  deactivate: () => db.query('alter table public.webhook_deliveries disable trigger bench_graphile_add_job'),
};

const pgBoss = {
  name: 'pg-boss',
  candidates: [
    { PEER_WORKERS: 2, PEER_BATCH: 50 },
    { PEER_WORKERS: 4, PEER_BATCH: 100 },
    { PEER_WORKERS: 8, PEER_BATCH: 100 },
    { PEER_WORKERS: 16, PEER_BATCH: 100 },
    { PEER_WORKERS: 8, PEER_BATCH: 250 },
  ],
  label: (c) => `${c.PEER_WORKERS} work() loop(s), batchSize ${c.PEER_BATCH}, polling 0.5 s`,
  start: (c) => startPeer('pg-boss', c),
  // The application's outbox write: the event and its jobs in one transaction.
  enqueueMany: (company, n) =>
    inTransaction(async (tx) => {
      await enqueueMany(tx, company.id, n, fixtures.snapshot, { analyze: false });
      await insertBossJobs(tx, 'd.created_at = now()');
      await tx.query(`analyze ${[...OUTBOX_TABLES, 'pgboss.job'].join(', ')}`);
    }),
  enqueueOne: (company, seq) =>
    inTransaction(async (tx) => {
      const eventId = await enqueueOne(tx, company.id, seq, fixtures.snapshot);
      await insertBossJobs(tx, 'd.event_id = $1', [eventId]);
    }),
  outstanding: async () =>
    (await db.query(`select count(*)::int as n from pgboss.job where name = $1 and state < 'completed'`, [QUEUE])).rows[0].n,
  async activate() {},
  async deactivate() {},
};

async function inTransaction(fn) {
  await db.query('begin');
  try {
    await fn(db);
    await db.query('commit');
  } catch (e) {
    await db.query('rollback');
    throw e;
  }
}

/** One pg-boss job per delivery matching `where`, inserted on the caller's transaction. */
async function insertBossJobs(tx, where, params = []) {
  const { rows } = await tx.query(
    `select d.id as delivery_id, d.webhook_id, w.url, e.payload as body
       from public.webhook_deliveries d
       join public.webhooks w on w.id = d.webhook_id
       join public.webhook_events e on e.id = d.event_id
      where ${where}`,
    params,
  );
  const jobs = rows.map((data) => ({ name: QUEUE, data, retryLimit: 8, retryDelay: 5, retryBackoff: true }));
  await boss.insert(jobs, { db: { executeSql: (text, values) => tx.query(text, values) } });
}

function startPeer(name, config) {
  return startProcess({
    name,
    cmd: process.execPath,
    args: [path.join(PEERS_DIR, `${name}.mjs`)],
    cwd: ROOT,
    env: { DATABASE_URL: cluster.url, ...Object.fromEntries(Object.entries(config).map(([k, v]) => [k, String(v)])) },
    ready: /^ready$/m,
  });
}

async function installPeers() {
  await runMigrations({ connectionString: cluster.url });
  await db.query(`
    create function bench.tg_webhook_deliveries__graphile_add_job()
    returns trigger language plpgsql set search_path = '' as $$
    begin
      perform graphile_worker.add_job('deliver_webhook',
        json_build_object('delivery_id', new.id, 'webhook_id', new.webhook_id,
                          'url', (select w.url from public.webhooks w where w.id = new.webhook_id),
                          'body', (select e.payload from public.webhook_events e where e.id = new.event_id)),
        max_attempts => 8);
      return null;
    end $$;
    create trigger bench_graphile_add_job after insert on public.webhook_deliveries
      for each row execute function bench.tg_webhook_deliveries__graphile_add_job();
    alter table public.webhook_deliveries disable trigger bench_graphile_add_job;
  `);
  boss = new PgBoss({ connectionString: cluster.url, max: 2, supervise: false, schedule: false });
  boss.on('error', (e) => console.error(`pg-boss: ${e.message}`));
  await boss.start();
  await boss.createQueue(QUEUE);
}

async function resetState() {
  await clearOutbox(db);
  await db.query('delete from graphile_worker._private_jobs');
  await db.query('delete from pgboss.job where name = $1', [QUEUE]);
  await db.query('delete from pgboss.archive where name = $1', [QUEUE]);
  await receiver.call('reset');
}

// ---------------------------------------------------------------------------------------
// Measurements
// ---------------------------------------------------------------------------------------

async function throughput(system, config, company, events) {
  await resetState();
  await system.activate();
  const proc = await system.start(config);
  try {
    const t0 = now();
    await system.enqueueMany(company, events);
    const committed = now();
    const expected = events * company.endpoints;
    await receiver.waitFor(expected, 180_000);
    await poll(async () => (await system.outstanding()) === 0, 60_000);
    const done = now();
    const rssMb = proc.peakRssMb();
    await proc.stop();
    const stats = await receiver.call('stats');
    const { lost } = await receiver.call('check', { expected: await expectedDeliveryIds(db) });
    return {
      perSec: round(expected / ((done - committed) / 1000), 0),
      enqueueMs: round(committed - t0, 0),
      rssMb,
      lost,
      duplicates: stats.duplicates,
      badSignatures: stats.badSignatures,
      load: loadAverage(),
    };
  } finally {
    await proc.stop();
    await system.deactivate();
  }
}

async function latency(system, config) {
  await resetState();
  await system.activate();
  const company = fixtures.companies.one;
  const proc = await system.start(config);
  try {
    const enqueue = (seq) => system.enqueueOne(company, seq);
    await steadyLoad({ count: 50, rate: LATENCY_RATE, enqueue, firstSeq: 1 });
    await receiver.waitFor(50, 15_000);
    await receiver.call('reset');
    const count = LATENCY_RATE * LATENCY_SECONDS;
    const committedAt = await steadyLoad({ count, rate: LATENCY_RATE, enqueue, firstSeq: 1001, maxMs: LATENCY_SECONDS * 2000 });
    await receiver.waitFor(committedAt.size, 30_000);
    const stats = await receiver.call('stats');
    const { rows } = await db.query(
      `select d.id from public.webhook_deliveries d join public.webhook_events e on e.id = d.event_id
        where (e.payload -> 'data' ->> 'seq')::int > 1000`,
    );
    const { lost } = await receiver.call('check', { expected: rows.map((r) => r.id) });
    return {
      p50: round(percentile(stats.latencies, 50), 1),
      p95: round(percentile(stats.latencies, 95), 1),
      p99: round(percentile(stats.latencies, 99), 1),
      rssMb: proc.peakRssMb(),
      lost,
      duplicates: stats.duplicates,
    };
  } finally {
    await proc.stop();
    await system.deactivate();
  }
}

/**
 * autocannon POSTing one signed delivery body over `connections` for CEILING_SECONDS. (Its
 * `amount` mode only stops on a 1 s tick, which caps a short run's rate; a fixed duration
 * and the receiver's own count do not.)
 */
async function ceiling(connections) {
  await receiver.call('reset');
  const { snapshot, companies } = fixtures;
  const body = JSON.stringify({ type: 'PROCESS_REVISED', timestamp: new Date().toISOString(), company_id: companies.one.id,
    data: { seq: 1, process: snapshot } });
  const id = crypto.randomUUID();
  const ts = new Date();
  const headers = {
    'content-type': 'application/json',
    'webhook-id': id,
    'webhook-timestamp': String(Math.floor(ts.getTime() / 1000)),
    'webhook-signature': new Webhook(companies.one.webhooks[0].secret).sign(id, ts, body),
  };
  let n = 0;
  const result = await autocannon({
    url: `http://127.0.0.1:${receiver.port}/ceiling`,
    // A fresh webhook-id per request, so the receiver does a delivery's bookkeeping.
    requests: [{
      method: 'POST',
      body,
      headers,
      setupRequest: (req) => ({ ...req, headers: { ...headers, 'webhook-id': `${id}-${n++}` } }),
    }],
    connections,
    duration: CEILING_SECONDS,
    timeout: 15,
  });
  const { ceilingHits } = await receiver.call('count');
  return { perSec: round(ceilingHits / result.duration, 0), errors: result.errors + result.non2xx };
}

// ---------------------------------------------------------------------------------------

async function main() {
  const started = new Date();
  log(`one cluster on 127.0.0.1:${DB_PORT} (.local/bench-peers-db), one receiver`);
  cluster = await startDatabase({ dir: '.local/bench-peers-db', port: DB_PORT });
  db = await connect(cluster.url);
  receiver = await startReceiver();
  fixtures = await createFixtures(db, receiver.port);
  await receiver.call('secrets', { secrets: fixtures.secrets });
  await installPeers();
  const { one, five } = fixtures.companies;
  const systems = [ours, graphile, pgBoss];

  // Tuning: one throughput run per candidate, each system keeps its best (sum of both).
  const tuning = [];
  const best = new Map();
  for (const system of systems) {
    let top = null;
    for (const config of SKIP_TUNING ? system.candidates.slice(0, 1) : system.candidates) {
      const a = await throughput(system, config, one, EVENTS_1);
      const b = await throughput(system, config, five, EVENTS_5);
      log(`tuning ${system.name} (${system.label(config)}): ${a.perSec}/s and ${b.perSec}/s`);
      tuning.push({ system: system.name, label: system.label(config), one: a.perSec, five: b.perSec, lost: a.lost + b.lost });
      if (!top || a.perSec + b.perSec > top.score) top = { config, score: a.perSec + b.perSec };
    }
    best.set(system.name, top.config);
  }

  // Rounds, rotating the order so no system always runs first (cold caches) or last.
  const order = [...systems, { name: 'ceiling' }];
  const results = new Map(order.map((s) => [s.name, []]));
  for (let r = 0; r < ROUNDS; r++) {
    const rotated = order.map((_, i) => order[(i + r) % order.length]);
    log(`round ${r + 1}/${ROUNDS}: ${rotated.map((s) => s.name).join(', ')}`);
    for (const system of rotated) {
      if (system.name === 'ceiling') {
        const c = best.get('ours');
        const a = await ceiling(ours.inFlight(c, 1));
        const b = await ceiling(ours.inFlight(c, 5));
        log(`  ceiling: ${a.perSec}/s (${ours.inFlight(c, 1)} connections), ${b.perSec}/s (${ours.inFlight(c, 5)} connections)`);
        results.get('ceiling').push({ one: a, five: b });
        continue;
      }
      const config = best.get(system.name);
      const a = await throughput(system, config, one, EVENTS_1);
      const b = await throughput(system, config, five, EVENTS_5);
      const l = await latency(system, config);
      log(`  ${system.name}: ${a.perSec}/s, ${b.perSec}/s, p50 ${l.p50} ms, p99 ${l.p99} ms, RSS ${Math.max(a.rssMb, b.rssMb)} MB, lost ${a.lost + b.lost + l.lost}, dup ${a.duplicates + b.duplicates + l.duplicates}`);
      results.get(system.name).push({ one: a, five: b, lat: l });
    }
  }

  const md = await report({ started, tuning, best, results });
  fs.writeFileSync(path.join(ROOT, 'bench', 'RESULTS-peers.md'), md.full);
  console.log(`\n${md.table}\n\n${md.targets}\n\nwrote bench/RESULTS-peers.md`);
}

async function report({ started, tuning, best, results }) {
  const m = await machineInfo(cluster);
  const med = (name, f) => median(results.get(name).map(f));
  const row = (name) => {
    const runs = results.get(name);
    if (name === 'ceiling') {
      return { one: med(name, (r) => r.one.perSec), five: med(name, (r) => r.five.perSec) };
    }
    return {
      one: med(name, (r) => r.one.perSec),
      five: med(name, (r) => r.five.perSec),
      p50: med(name, (r) => r.lat.p50),
      p95: med(name, (r) => r.lat.p95),
      p99: med(name, (r) => r.lat.p99),
      rss: med(name, (r) => Math.max(r.one.rssMb, r.five.rssMb, r.lat.rssMb)),
      lost: runs.reduce((s, r) => s + r.one.lost + r.five.lost + r.lat.lost, 0),
      dup: runs.reduce((s, r) => s + r.one.duplicates + r.five.duplicates + r.lat.duplicates, 0),
      bad: runs.reduce((s, r) => s + r.one.badSignatures + r.five.badSignatures, 0),
    };
  };
  const o = row('ours');
  const rows = { ours: o, 'graphile-worker': row('graphile-worker'), 'pg-boss': row('pg-boss'), ceiling: row('ceiling') };
  const ratio = (x, y) => (y > 0 ? `${round(x / y, 2)}x` : 'n/a');
  const table = mdTable([
    ['system', `1 endpoint /s (${EVENTS_1} events)`, 'ours ÷ it', `5 endpoints /s (${EVENTS_5}×5)`, 'ours ÷ it',
      'p50 ms', 'p95 ms', 'p99 ms', 'peak RSS MB', 'lost', 'dup', 'bad sig'],
    ...Object.entries(rows).map(([name, r]) => name === 'ceiling'
      ? [`raw HTTP ceiling (autocannon)`, r.one, ratio(o.one, r.one), r.five, ratio(o.five, r.five), '-', '-', '-', '-', '-', '-', '-']
      : [name, r.one, name === 'ours' ? '' : ratio(o.one, r.one), r.five, name === 'ours' ? '' : ratio(o.five, r.five),
        r.p50, r.p95, r.p99, r.rss, r.lost, r.dup, r.bad]),
  ]);
  const g = rows['graphile-worker'];
  const b = rows['pg-boss'];
  const c = rows.ceiling;
  const bestPeerP50 = Math.min(g.p50, b.p50);
  const ok = (x) => (x ? 'met' : '**missed**');
  const targets = mdTable([
    ['target', 'measured', ''],
    ['throughput >= 1.5x graphile-worker (1 / 5 endpoints)', `${ratio(o.one, g.one)} / ${ratio(o.five, g.five)}`, ok(o.one >= 1.5 * g.one && o.five >= 1.5 * g.five)],
    ['throughput >= 1.5x pg-boss (1 / 5 endpoints)', `${ratio(o.one, b.one)} / ${ratio(o.five, b.five)}`, ok(o.one >= 1.5 * b.one && o.five >= 1.5 * b.five)],
    ['throughput >= 50% of the raw HTTP ceiling (1 / 5 endpoints)', `${round((100 * o.one) / c.one, 0)}% / ${round((100 * o.five) / c.five, 0)}%`, ok(o.one >= 0.5 * c.one && o.five >= 0.5 * c.five)],
    ["p50 latency <= best peer's", `${o.p50} ms vs ${bestPeerP50} ms`, ok(o.p50 <= bestPeerP50)],
    ['zero lost, every system', `${o.lost} / ${g.lost} / ${b.lost}`, ok(o.lost + g.lost + b.lost === 0)],
  ]);
  const tuningTable = mdTable([
    ['system', 'config', '1 endpoint /s', '5 endpoints /s', 'lost', 'kept'],
    ...tuning.map((t) => {
      const sys = [ours, graphile, pgBoss].find((s) => s.name === t.system);
      return [t.system, t.label, t.one, t.five, t.lost, sys.label(best.get(t.system)) === t.label ? 'best' : ''];
    }),
  ]);
  const each = [...results.entries()].map(([name, runs]) => `- ${name}: ` + runs.map((r, i) => name === 'ceiling'
    ? `round ${i + 1}: ${r.one.perSec}/s, ${r.five.perSec}/s`
    : `round ${i + 1}: ${r.one.perSec}/s, ${r.five.perSec}/s, p50/p95/p99 ${r.lat.p50}/${r.lat.p95}/${r.lat.p99} ms, RSS ${Math.max(r.one.rssMb, r.five.rssMb, r.lat.rssMb)} MB`).join('; ')).join('\n');
  const versions = ['graphile-worker', 'pg-boss', 'autocannon', 'standardwebhooks', 'pg']
    .map((p) => `${p} ${JSON.parse(fs.readFileSync(path.join(ROOT, 'node_modules', p, 'package.json'), 'utf8')).version}`)
    .join(', ');
  const full = `# Ours vs peer deliverers

Written by \`npm run bench:peers\` (bench/peers/run.mjs), started ${started.toISOString()}.

## Machine and versions

${machineMd(m)}
- ${versions} (graphile-worker 0.18 and pg-boss 11+ need Node 22; these are the newest on Node 20)
- One fresh cluster (.local/bench-peers-db, port ${DB_PORT}, fsync/synchronous_commit/full_page_writes off),
  one receiver process (bench/lib/receiver.mjs), shared by every system. The machine is shared
  with other work: expect noise; medians of ${ROUNDS} rounds, order rotated each round.

## What each system is

- **ours**: \`${describeTuning()}\` (cwd supabase/functions; claim batches, send, record batches).
- **graphile-worker** (bench/peers/graphile-worker.mjs): an AFTER INSERT trigger on
  public.webhook_deliveries calls \`graphile_worker.add_job\` with the delivery id, webhook id,
  URL and body, in the business transaction; the runner's task signs and POSTs.
- **pg-boss** (bench/peers/pg-boss.mjs): the application inserts one job per delivery with
  \`boss.insert(jobs, { db })\` in the business transaction; \`work()\` handlers sign and POST a
  batch concurrently, \`boss.fail\` the failed ones (retried by the library), the rest complete.
- Peers' tasks (bench/peers/deliver.mjs) sign with \`standardwebhooks\` and the endpoint's
  whsec_ secrets (cached a minute), POST with a 15 s timeout; failures throw so the library retries.
- **raw HTTP ceiling**: autocannon POSTing one signed body to the same receiver for ${CEILING_SECONDS} s
  over as many connections as ours keeps in flight (its per-endpoint cap x endpoints, within
  its global cap); requests the receiver answered / seconds.

## Method

- Throughput: commit ${EVENTS_1} events for 1 endpoint (then ${EVENTS_5} events for 5 endpoints,
  ${EVENTS_5 * 5} deliveries) in one transaction (which ANALYZEs the outbox tables and the system's
  job table before it commits, the same for every system) while the delivering process idles; time from
  COMMIT returning until every delivery arrived and the system reports nothing outstanding
  (ours: no pending delivery; graphile-worker: no job; pg-boss: no job before \`completed\`).
  Scaled down from \`npm run bench\` (20000 / 5000x5) to keep this command near 10 minutes.
- Latency: one event per transaction at ${LATENCY_RATE}/s for ${LATENCY_SECONDS} s to 1 endpoint, after 50
  warm-up events; \`data.sent_at\` = \`clock_timestamp()\` in the enqueuing statement, subtracted
  from the receiver's arrival time. For pg-boss the job insert follows in the same
  transaction, so its figures include that extra round trip (~1 ms).
- Peak RSS: VmHWM of the delivering process (deno or node), fresh process per measurement,
  median over rounds of the worst of its three measurements.
- Lost: delivery ids in the database never received; dup: webhook-ids received twice.
- Tuning: each system's candidates below got one throughput run each; the best (sum of both
  scenarios) is used for the rounds.

## Medians of ${ROUNDS} rounds

${table}

## Targets

${targets}

## Tuning

${tuningTable}

## Each round

${each}
`;
  return { full, table, targets };
}

main()
  .catch((e) => {
    console.error(e);
    process.exitCode = 1;
  })
  .finally(async () => {
    await boss?.stop({ graceful: false, wait: false }).catch(() => {});
    await cleanupAll();
  });
