// Ordered delivery (issue 10): what the promise costs.
// - Throughput: N process revisions spread over 100 processes (the ordering keys), committed
//   in one transaction, drained by an ordered endpoint, as a ratio to a parallel endpoint
//   draining the same revisions (another company, same count, same processes' shape), each
//   on a fresh dispatcher in the same run. Target >= 0.5.
// - Latency: 100 revisions/s over 100 processes of one company with a parallel and an
//   ordered endpoint (each event goes to both); p50 commit-to-receipt of the ordered
//   endpoint as a ratio to the parallel one's. Target <= 2x.
// The receiver checks that each process's revisions reach the ordered endpoint in order.
//
// Events are made by the business path itself (UPDATE public.processes), so the ordering
// key is the one the enqueue wiring gives. Until that wiring exists, bench.key_ordered_deliveries
// stands in for it (process id as key, revision as sequence) and the report says so.
import {
  clearOutbox, createCompany, log, mdTable, median, now, OUTBOX_TABLES, percentile, poll, round, sleep, startOurDispatcher,
} from './harness.mjs';

const num = (name, fallback) => Number(process.env[name] ?? fallback);
export const ORDERED = {
  events: num('BENCH_ORDERED_EVENTS', 5_000),
  keys: 100,
  rate: 100,
  latencySeconds: num('BENCH_ORDERED_LATENCY_SECONDS', 10),
  warmup: 50,
};
export const ORDERED_TARGETS = { throughputRatio: 0.5, p50Ratio: 2 };

export async function setupOrdered({ db, receiver }) {
  await db.query(`
    -- Stands in for the enqueue wiring while it is not on this branch: deliveries to ordered
    -- endpoints made by this transaction get their process as ordering key and its revision
    -- as sequence. Returns how many it keyed (0 once enqueue sets the keys itself).
    create or replace function bench.key_ordered_deliveries() returns integer
    language sql as $$
      with keyed as (
        update public.webhook_deliveries d
           set ordering_key = e.payload -> 'data' ->> 'process_id',
               ordering_seq = (e.payload -> 'data' ->> 'revision')::bigint
          from public.webhook_events e, public.webhooks w
         where w.delivery_order = 'ordered'
           and d.webhook_id = w.id
           and d.created_at = now()
           and d.ordering_key is null
           and e.id = d.event_id
        returning 1)
      select count(*)::integer from keyed
    $$;

    -- n revisions, round-robin over the company's processes, in the caller's transaction.
    create or replace function bench.revise_processes(company uuid, n integer) returns integer
    language plpgsql as $$
    declare
      ids uuid[] := array(select p.id from public.processes p where p.company_id = company order by p.id);
    begin
      for i in 0 .. n - 1 loop
        update public.processes set name = 'Final assembly station rev ' || i || ' ' || random()
         where id = ids[1 + i % cardinality(ids)];
      end loop;
      return bench.key_ordered_deliveries();
    end;
    $$;

    -- One revision (one transaction when called alone); its new revision number.
    create or replace function bench.revise_one(process uuid, out revision bigint, out keyed integer)
    language plpgsql as $$
    begin
      update public.processes p set name = 'Final assembly station ' || random()
       where p.id = process
      returning p.revision into revision;
      keyed := bench.key_ordered_deliveries();
    end;
    $$;
  `);
  const par = await createCompany(db, receiver.port, 'par', { endpoints: 1, processes: ORDERED.keys });
  const ord = await createCompany(db, receiver.port, 'ord', { endpoints: 1, processes: ORDERED.keys, order: 'ordered' });
  const mix = await createCompany(db, receiver.port, 'mix', { endpoints: 2, processes: ORDERED.keys });
  await db.query(`update public.webhooks set delivery_order = 'ordered' where id = $1`, [mix.webhooks[1].id]);
  return { par, ord, mix };
}

async function drain(ctx, company) {
  const { db, receiver, cluster, knobs } = ctx;
  await clearOutbox(db);
  await receiver.call('reset');
  const dispatcher = await startOurDispatcher({ dbUrl: cluster.url, receiverPort: receiver.port, knobs, client: db });
  try {
    await db.query('begin');
    let keyed;
    try {
      keyed = (await db.query('select bench.revise_processes($1, $2) as keyed', [company.id, ORDERED.events])).rows[0].keyed;
      await db.query(`analyze ${OUTBOX_TABLES.join(', ')}`);
      await db.query('commit');
    } catch (e) {
      await db.query('rollback');
      throw e;
    }
    const committed = now();
    const prefix = `/hook/${company.key}-`;
    const arrived = await receiver.waitForPaths(prefix, ORDERED.events, 240_000);
    await poll(async () => (await db.query(
      `select count(*)::int as n from public.webhook_deliveries where state = 'pending'`,
    )).rows[0].n === 0, 60_000);
    const done = now();
    const got = await receiver.call('countPaths', { prefix });
    const stats = await receiver.call('stats');
    return {
      perSec: round(ORDERED.events / ((done - committed) / 1000), 0),
      drainMs: round(done - committed, 0),
      arrived,
      outOfOrder: got.outOfOrder,
      duplicates: stats.duplicates,
      keyedByBench: keyed,
    };
  } finally {
    await dispatcher.stop();
  }
}

async function latency(ctx, mix) {
  const { db, receiver, cluster, knobs } = ctx;
  await clearOutbox(db);
  await receiver.call('reset');
  const dispatcher = await startOurDispatcher({ dbUrl: cluster.url, receiverPort: receiver.port, knobs, client: db });
  try {
    const committedAt = new Map(); // `${process}:${revision}` -> commit returned
    let keyed = 0;
    const load = async (count, maxMs) => {
      const start = now();
      for (let i = 0; i < count && now() - start < maxMs; i++) {
        const wait = start + (i * 1000) / ORDERED.rate - now();
        if (wait > 0) await sleep(wait);
        const pid = mix.processIds[i % mix.processIds.length];
        const { rows: [r] } = await db.query('select revision, keyed from bench.revise_one($1)', [pid]);
        committedAt.set(`${pid}:${r.revision}`, now());
        keyed += r.keyed;
      }
    };
    await load(ORDERED.warmup, 10_000);
    await receiver.waitFor(ORDERED.warmup * 2, 10_000);
    await receiver.call('reset');
    committedAt.clear();
    const count = ORDERED.rate * ORDERED.latencySeconds;
    const t0 = now();
    await load(count, ORDERED.latencySeconds * 2000);
    const offered = round(committedAt.size / ((now() - t0) / 1000), 1);
    await receiver.waitFor(committedAt.size * 2, 30_000);
    const perPath = async (p) => {
      const { arrivals } = await receiver.call('arrivals', { path: p });
      return arrivals.map(([pid, rev, at]) => at - committedAt.get(`${pid}:${rev}`)).filter(Number.isFinite);
    };
    const par = await perPath(mix.webhooks[0].path);
    const ord = await perPath(mix.webhooks[1].path);
    const { paths } = await receiver.call('stats');
    return {
      offered,
      events: committedAt.size,
      parP50: round(percentile(par, 50), 1),
      parP99: round(percentile(par, 99), 1),
      ordP50: round(percentile(ord, 50), 1),
      ordP99: round(percentile(ord, 99), 1),
      parReceived: par.length,
      ordReceived: ord.length,
      latOutOfOrder: paths[mix.webhooks[1].path]?.outOfOrder ?? 0,
      keyedByBench: keyed,
    };
  } finally {
    await dispatcher.stop();
  }
}

export async function orderedRun(ctx, setup) {
  const par = await drain(ctx, setup.par);
  const ord = await drain(ctx, setup.ord);
  const lat = await latency(ctx, setup.mix);
  const run = {
    parPerSec: par.perSec,
    parDrainMs: par.drainMs,
    parOutOfOrder: par.outOfOrder,
    ordPerSec: ord.perSec,
    ordDrainMs: ord.drainMs,
    ordOutOfOrder: ord.outOfOrder,
    ordArrived: ord.arrived,
    throughputRatio: round(ord.perSec / par.perSec, 2),
    ...lat,
    p50Ratio: round(lat.ordP50 / lat.parP50, 2),
    keysByBench: ord.keyedByBench > 0 || lat.keyedByBench > 0,
  };
  log(`  ordered: parallel ${run.parPerSec}/s, ordered ${run.ordPerSec}/s (${run.throughputRatio}x, ` +
      `${run.ordOutOfOrder} out of order; parallel ${run.parOutOfOrder}); latency p50 at ${run.offered}/s: ` +
      `parallel ${run.parP50} ms, ordered ${run.ordP50} ms (${run.p50Ratio}x)` +
      `${run.keysByBench ? '; ordering keys set by the bench, not by enqueue' : ''}`);
  return run;
}

export function orderedReport(runs) {
  const ok = (b) => (b ? 'met' : '**missed**');
  const med = (f) => median(runs.map(f));
  const tRatio = med((r) => r.throughputRatio);
  const lRatio = med((r) => r.p50Ratio);
  const outOfOrder = runs.reduce((s, r) => s + r.ordOutOfOrder + r.latOutOfOrder, 0);
  const byBench = runs.some((r) => r.keysByBench);
  const rows = [
    [`ordered: throughput, ${ORDERED.events} revisions over ${ORDERED.keys} processes, ordered / parallel`, `${tRatio}x`,
      `>= ${ORDERED_TARGETS.throughputRatio}x`, ok(tRatio >= ORDERED_TARGETS.throughputRatio)],
    [`ordered: latency p50 at ${ORDERED.rate} revisions/s, ordered / parallel`, `${lRatio}x`,
      `<= ${ORDERED_TARGETS.p50Ratio}x`, ok(lRatio <= ORDERED_TARGETS.p50Ratio)],
    ['ordered: revisions received out of order by the ordered endpoints, all runs', `${outOfOrder}`, '0', ok(outOfOrder === 0)],
  ];
  const section = `## Ordered delivery (issue 10)

Method. Events come from the business path: \`UPDATE public.processes\` renames one of ${ORDERED.keys}
processes (bench.revise_processes / bench.revise_one), so each PROCESS_REVISED event's ordering
key is its process. ${byBench
    ? '**On this run the enqueue did not set ordering keys** (the wiring is not on this branch): ' +
      '`bench.key_ordered_deliveries()` set them in the enqueuing transaction (process id as key, ' +
      'revision as sequence), which is what the claim rules read.'
    : 'The ordering keys were set by the enqueue itself (`bench.key_ordered_deliveries()` found none to set).'}
- **Throughput**: ${ORDERED.events} revisions (${ORDERED.events / ORDERED.keys} per process) in one transaction to a company
  whose one endpoint is ordered, and the same to a company whose one endpoint is parallel,
  each on a fresh dispatcher; from COMMIT until the receiver has them all and none is pending.
  Ratio = ordered /s / parallel /s.
- **Latency**: one revision per transaction at ${ORDERED.rate}/s (open loop, round-robin over the ${ORDERED.keys}
  processes) for ${ORDERED.latencySeconds} s after ${ORDERED.warmup} warm-up revisions, to a company with one parallel and one
  ordered endpoint (every event goes to both). Latency = receipt - the moment the loader saw
  COMMIT return, per (process, revision). Ratio = ordered p50 / parallel p50.
- The receiver counts, per endpoint, revisions of a process received after a later one
  (out of order).

${mdTable([
    ['run', 'parallel /s', 'ordered /s', 'ratio', 'out of order: ordered / parallel', 'offered /s', 'p50 parallel / ordered ms', 'p99 parallel / ordered ms', 'p50 ratio', 'latency: out of order (ordered)'],
    ...runs.map((r, i) => [
      i + 1, r.parPerSec, `${r.ordPerSec}${r.ordArrived ? '' : ' (unfinished)'}`, r.throughputRatio,
      `${r.ordOutOfOrder} / ${r.parOutOfOrder}`, r.offered, `${r.parP50} / ${r.ordP50}`, `${r.parP99} / ${r.ordP99}`,
      r.p50Ratio, r.latOutOfOrder,
    ]),
  ])}
`;
  return { rows, section };
}
