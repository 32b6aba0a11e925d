// The business path (issue 9): what webhooks cost the writes that cause them.
// - 20 writers (pgbench, 20 clients) revising processes of one company with 3 subscribed
//   endpoints while the dispatcher runs and delivers, as a ratio to the same writers on a
//   company with no subscriber (dispatcher running too, with nothing to do). Target >= 0.5.
// - Enqueue cost: 2 writers, a company with 5 subscribers vs one with none, dispatcher not
//   running (the pending deliveries pile up). Target <= 2.5x.
// Both on an outbox holding a history of delivered rows (see seedOutboxHistory in run.mjs).
import path from 'node:path';
import { ROOT } from '../../scripts/lib/env.mjs';
import { run } from '../../scripts/lib/run.mjs';
import { createCompany, log, mdTable, median, now, poll, round, startOurDispatcher } from './harness.mjs';

const num = (name, fallback) => Number(process.env[name] ?? fallback);
export const BUSINESS = {
  seconds: num('BENCH_PGBENCH_SECONDS', 10),
  writers: 20,
  subscribers: 3,
  enqueueWriters: 2,
  enqueueSubscribers: 5,
};
export const BUSINESS_TARGETS = { writersRatio: 0.5, enqueueRatio: 2.5 };

export async function setupBusiness({ db, receiver }) {
  // set_no 0 (no subscriber) and 5 exist in the fixtures; 3 is this scenario's.
  return createCompany(db, receiver.port, 'three', { endpoints: BUSINESS.subscribers, processes: 100, setNo: BUSINESS.subscribers });
}

/** pgbench revising set_no's processes (bench/pgbench/revise-process.sql) with `clients` writers. */
export async function pgbench({ cluster, db }, setNo, clients, seconds = BUSINESS.seconds) {
  await db.query('vacuum analyze public.processes, public.webhook_deliveries, public.webhook_events');
  const res = await run(
    cluster.pg.bin('pgbench'),
    ['-n', '-f', path.join(ROOT, 'bench', 'pgbench', 'revise-process.sql'), '-D', `set_no=${setNo}`,
      '-c', String(clients), '-j', String(Math.min(clients, 2)), '-T', String(seconds),
      '-h', '127.0.0.1', '-p', String(cluster.port), '-U', 'postgres', 'postgres'],
    { capture: true, env: { ...process.env, PGPASSWORD: 'postgres' } },
  );
  const tps = Number(/tps = ([\d.]+) \(without initial connection time\)/.exec(res.stdout)?.[1]);
  if (res.code !== 0 || !Number.isFinite(tps)) throw new Error(`pgbench failed:\n${res.stdout}\n${res.stderr}`);
  const { rows: [{ n }] } = await db.query(`select count(*)::int as n from public.webhook_deliveries where state = 'pending'`);
  return { tps: round(tps, 0), pending: n };
}

/** Pending deliveries become history (delivered), so the next measurement starts level. */
export async function settlePending(db) {
  await db.query(`update public.webhook_deliveries
                     set state = 'succeeded', next_attempt_at = null, completed_at = now(),
                         lease_owner = null, lease_expires_at = null
                   where state = 'pending'`);
  await db.query(`truncate private.webhook_endpoint_signals;
                  update private.webhook_endpoints set ready_at = null where ready_at is not null`);
}

export async function businessRun(ctx) {
  const { db, receiver, cluster, knobs } = ctx;
  await receiver.call('reset');
  const dispatcher = await startOurDispatcher({ dbUrl: cluster.url, receiverPort: receiver.port, knobs, client: db });
  let none, three, drainMs;
  try {
    none = await pgbench(ctx, 0, BUSINESS.writers);
    three = await pgbench(ctx, BUSINESS.subscribers, BUSINESS.writers);
    // What the dispatcher had not delivered when the writers stopped, and how long it took.
    const t0 = now();
    await poll(async () => (await db.query(`select count(*)::int as n from public.webhook_deliveries where state = 'pending'`)).rows[0].n === 0, 120_000, 100);
    drainMs = round(now() - t0, 0);
  } finally {
    await dispatcher.stop();
  }
  const { unique: delivered } = await receiver.call('countPaths', { prefix: '/hook/three-' });
  await settlePending(db);

  // No dispatcher runs from here on. The one just stopped noted seconds ago that it LISTENs,
  // and writes NOTIFY while that note is under 15 s old (private.dispatcher_is_listening):
  // the part of this measurement that met it would pay a NOTIFY per write, the other not.
  // Cleared, as it is 15 s after the last dispatcher stops.
  await db.query(`select setval('private.webhook_listener_heartbeat', 0)`);
  const zero = await pgbench(ctx, 0, BUSINESS.enqueueWriters);
  const five = await pgbench(ctx, BUSINESS.enqueueSubscribers, BUSINESS.enqueueWriters);
  await settlePending(db);
  // A diagnostic, no target: the same 20 writers and 3 subscribers with the dispatcher
  // stopped, i.e. what the enqueue alone costs them, without deliveries competing for CPU.
  // The heartbeat says a dispatcher is awake (as it is while one delivers), so that no
  // write sends a wake-up: with nobody awake each one would NOTIFY, by design.
  await db.query(`select setval('private.webhook_dispatcher_heartbeat', (extract(epoch from clock_timestamp()) * 1000)::bigint + 3600000)`);
  let threeAlone;
  try {
    threeAlone = await pgbench(ctx, BUSINESS.subscribers, BUSINESS.writers);
  } finally {
    await db.query(`select setval('private.webhook_dispatcher_heartbeat', 0)`);
  }
  await settlePending(db);

  const result = {
    tpsNone: none.tps,
    tpsThree: three.tps,
    writersRatio: round(three.tps / none.tps, 2),
    pendingAfterThree: three.pending,
    drainAfterMs: drainMs,
    delivered,
    tpsZero: zero.tps,
    tpsFive: five.tps,
    enqueueRatio: round(zero.tps / five.tps, 2),
    pendingAfterFive: five.pending,
    tpsThreeAlone: threeAlone.tps,
    aloneRatio: round(threeAlone.tps / none.tps, 2),
  };
  log(`  business: ${BUSINESS.writers} writers ${result.tpsNone} TPS with no subscriber, ${result.tpsThree} with ${BUSINESS.subscribers}` +
      ` and the dispatcher (${result.writersRatio}x; ${result.pendingAfterThree} undelivered at the end, ${drainMs} ms to deliver);` +
      ` ${BUSINESS.enqueueWriters} writers ${result.tpsZero} vs ${result.tpsFive} TPS with ${BUSINESS.enqueueSubscribers} (${result.enqueueRatio}x);` +
      ` ${BUSINESS.writers} writers, ${BUSINESS.subscribers} subscribers, dispatcher stopped: ${result.tpsThreeAlone} TPS (${result.aloneRatio}x)`);
  return result;
}

export function businessReport(runs) {
  const ok = (b) => (b ? 'met' : '**missed**');
  const med = (f) => median(runs.map(f));
  const writersRatio = med((r) => r.writersRatio);
  const enqueueRatio = med((r) => r.enqueueRatio);
  const rows = [
    [`business: ${BUSINESS.writers} writers, TPS with no subscriber`, `${med((r) => r.tpsNone)}`, '', ''],
    [`business: ${BUSINESS.writers} writers, TPS with ${BUSINESS.subscribers} subscribers, dispatcher delivering`, `${med((r) => r.tpsThree)}`, '', ''],
    [`business: ${BUSINESS.subscribers} subscribers / none (${BUSINESS.writers} writers)`, `${writersRatio}x`,
      `>= ${BUSINESS_TARGETS.writersRatio}x`, ok(writersRatio >= BUSINESS_TARGETS.writersRatio)],
    [`diagnostic: ${BUSINESS.writers} writers, ${BUSINESS.subscribers} subscribers, dispatcher stopped / no subscriber`,
      `${med((r) => r.aloneRatio)}x (${med((r) => r.tpsThreeAlone)} TPS)`, '', ''],
    [`enqueue cost: ${BUSINESS.enqueueWriters} writers, TPS with no subscriber`, `${med((r) => r.tpsZero)}`, '', ''],
    [`enqueue cost: ${BUSINESS.enqueueWriters} writers, TPS with ${BUSINESS.enqueueSubscribers} subscribers`, `${med((r) => r.tpsFive)}`, '', ''],
    [`enqueue cost ratio (TPS none / TPS ${BUSINESS.enqueueSubscribers})`, `${enqueueRatio}x`,
      `<= ${BUSINESS_TARGETS.enqueueRatio}x`, ok(enqueueRatio <= BUSINESS_TARGETS.enqueueRatio)],
  ];
  const section = `## Business path (issue 9)

Method. pgbench (bench/pgbench/revise-process.sql, ${BUSINESS.seconds} s per run) renames a random one of 100
processes of one company, so update_process_revision bumps the revision and the trigger
enqueues PROCESS_REVISED to every subscribed endpoint. The outbox holds a history of 20000
delivered events; VACUUM ANALYZE before each pgbench run.
- **${BUSINESS.writers} writers** (\`-c ${BUSINESS.writers} -j 2\`), dispatcher running: a company with no subscriber,
  then one with ${BUSINESS.subscribers} subscribed endpoints (the dispatcher delivers while they write; after the run
  the time until nothing is pending is noted). Ratio = TPS(${BUSINESS.subscribers}) / TPS(none).
- **Enqueue cost**, ${BUSINESS.enqueueWriters} writers, dispatcher not running: a company with no subscriber, then one
  with ${BUSINESS.enqueueSubscribers}. Ratio = TPS(none) / TPS(${BUSINESS.enqueueSubscribers}). The stopped dispatcher's note that it listens
  is cleared first (as it is 15 s after the last one stops): until then every write NOTIFYs.
- **Diagnostic** (no target): the ${BUSINESS.writers} writers and ${BUSINESS.subscribers} subscribers again with the dispatcher
  stopped (its heartbeat set, so that no write sends a wake-up), over the same no-subscriber
  TPS: the writers' own cost of enqueueing, without the deliveries (dispatcher, receiver,
  claims and records) competing with them for the two cores.
Between the parts the pending deliveries are marked delivered (they join the history).

${mdTable([
    ['run', `${BUSINESS.writers} writers: TPS none`, `TPS ${BUSINESS.subscribers} subs`, 'ratio', 'undelivered at the end / ms to deliver them', `${BUSINESS.enqueueWriters} writers: TPS none`, `TPS ${BUSINESS.enqueueSubscribers} subs`, 'ratio', `${BUSINESS.writers} writers, ${BUSINESS.subscribers} subs, dispatcher stopped: TPS (/ none)`],
    ...runs.map((r, i) => [
      i + 1, r.tpsNone, r.tpsThree, r.writersRatio, `${r.pendingAfterThree} / ${r.drainAfterMs}`, r.tpsZero, r.tpsFive, r.enqueueRatio,
      `${r.tpsThreeAlone} (${r.aloneRatio}x)`,
    ]),
  ])}
`;
  return { rows, section };
}
