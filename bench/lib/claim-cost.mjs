// Claim cost (issue 9): ms per claim of 50, by SQL against the real
// private.claim_due_deliveries, in outbox states built with set-based SQL:
// - 10,000 and 1,000,000 due deliveries on one endpoint (nothing else pending);
// - 100 due deliveries on one endpoint while 10 / 1,000 / 10,000 / 100,000 other endpoints
//   each hold one delivery whose retry is due in an hour.
// Target: the largest case's median within 1.5x of the smallest's.
//
// Each case is built in a database of its own (a copy of the bench's: schema, fixtures,
// settings), and the cases are measured together, one claim of each in turn: every case
// meets the same moments of the shared machine. Measured one case after another, the same
// state read 2.2 ms in one round and 4.2 ms in the next (bench/RESULTS.md at fd02c24), more
// than the cases differ, and the ratio followed whichever case met a slow minute.
//
// Each claim runs in its own transaction, rolled back: the next claim meets the same state
// (the same 50 rows are due again), and a claim does all of its work before the rollback,
// which is not timed. endpoint_concurrency and endpoint_concurrency_start are raised to
// 1000 so that one endpoint can give 50.
// Two clocks per claim: the database's (clock_timestamp() around the call, inside it: what
// the claim costs Postgres, the figure the target is about) and the client's (that plus a
// round trip on 127.0.0.1 and Node).
import pg from 'pg';
import { createCompany, log, mdTable, median, now, percentile, round, sleep } from './harness.mjs';

const num = (name, fallback) => Number(process.env[name] ?? fallback);
export const CLAIM = {
  batch: 50,
  claimsPerRound: num('BENCH_CLAIMS', 100),
  /** A round stops early after this long (a slow claim should not stall the bench). */
  roundMaxMs: 60_000,
  warmup: 5,
  /** Rounds, spread over time (roundGapMs apart), each starting with a VACUUM and a
   * CHECKPOINT (the rolled-back claims leave dead row versions behind). */
  rounds: num('BENCH_CLAIM_ROUNDS', 5),
  roundGapMs: 1_000,
  pendingCases: [10_000, num('BENCH_CLAIM_BIG_BACKLOG', 1_000_000)],
  // 10, 1,000, 10,000 and BENCH_CLAIM_MAX_ENDPOINTS (100,000) waiting endpoints, ascending.
  endpointCases: [...new Set([10, 1_000, 10_000, num('BENCH_CLAIM_MAX_ENDPOINTS', 100_000)])]
    .filter((n) => n <= num('BENCH_CLAIM_MAX_ENDPOINTS', 100_000)).sort((a, b) => a - b),
  dueOnMeasured: 100,
};
export const CLAIM_TARGETS = { ratio: 1.5 };

/** One claim of CLAIM.batch, timed by the database around the call (this session only). */
const TIMED_CLAIM = `create or replace function pg_temp.timed_claim(batch integer, out n integer, out ms double precision)
  language plpgsql as $$
declare
  t0 timestamptz := clock_timestamp();
begin
  select count(*)::int into n from private.claim_due_deliveries('bench-claim', batch, 60);
  ms := extract(epoch from clock_timestamp() - t0) * 1000;
end $$`;

/** Every table a case's build writes: vacuumed before each round (see CLAIM.rounds). */
const VACUUM = `vacuum analyze public.webhook_deliveries, private.webhook_endpoints, private.webhook_endpoint_signals,
                              public.webhooks, private.webhook_secrets, public.webhook_events`;

/**
 * Shared buffers one claim touches (hit + read, its nested statements included): the work
 * it does, which no other load on the machine changes. Rolled back like the timed ones.
 */
async function claimBuffers(client) {
  await client.query('begin');
  try {
    const { rows: [row] } = await client.query(
      `explain (analyze, buffers, format json) select count(*) from private.claim_due_deliveries('bench-claim', $1, 60)`,
      [CLAIM.batch],
    );
    const plan = row['QUERY PLAN'][0].Plan;
    return plan['Shared Hit Blocks'] + plan['Shared Read Blocks'];
  } finally {
    await client.query('rollback');
  }
}

/** The case's state, in its own database: see the top of this file. */
async function buildCase(client, receiverPort, spec) {
  await client.query(`truncate public.webhook_delivery_attempts, public.webhook_deliveries, public.webhook_events,
                               private.webhook_endpoint_signals;
                      update private.webhook_endpoints set ready_at = null where ready_at is not null`);
  const company = await createCompany(client, receiverPort, 'claim', { endpoints: 1 });
  const measured = company.webhooks[0].id;
  const { rows: [{ id: eventId }] } = await client.query(
    `insert into public.webhook_events (company_id, trigger_type, payload)
     values ($1, 'PROCESS_REVISED', jsonb_build_object('type', 'PROCESS_REVISED', 'data', jsonb_build_object('bench', 'claim cost')))
     returning id`,
    [company.id],
  );
  // Due deliveries on the measured endpoint, oldest first a day ago, 1 ms apart.
  const dueOnMeasured = spec.kind === 'pending' ? spec.size : CLAIM.dueOnMeasured;
  await client.query(
    `insert into public.webhook_deliveries (company_id, event_id, webhook_id, next_attempt_at)
     select $1, $2, $3, now() - interval '1 day' + g * interval '1 millisecond'
       from generate_series(1, $4::int) g`,
    [company.id, eventId, measured, dueOnMeasured],
  );
  await client.query(
    `update private.webhook_endpoints e
        set ready_at = (select min(d.next_attempt_at) from public.webhook_deliveries d
                         where d.webhook_id = e.webhook_id and d.state = 'pending')
      where e.webhook_id = $1`,
    [measured],
  );
  if (spec.kind === 'endpoints') {
    // New endpoints (their secrets and endpoint rows come from the webhooks triggers),
    // each with one delivery that failed once and is retried in an hour.
    await client.query(
      `insert into public.webhooks (company_id, trigger_type, url)
       select $1, 'PROCESS_REVISED', 'http://127.0.0.1:' || $2::int || '/hook/waiting-' || g
         from generate_series(1, $3::int) g`,
      [company.id, receiverPort, spec.size],
    );
    await client.query(
      `insert into public.webhook_deliveries (company_id, event_id, webhook_id, attempt_count, next_attempt_at, last_status, last_error)
       select $1, $2, w.id, 1, now() + interval '1 hour', 503, 'bench: retry in an hour'
         from public.webhooks w
        where w.company_id = $1 and w.id <> $3`,
      [company.id, eventId, measured],
    );
    await client.query(
      `update private.webhook_endpoints e
          set ready_at = now() + interval '1 hour', consecutive_failures = 1, failing_since = now(),
              last_status = 503, last_attempt_at = now()
        where e.company_id = $1 and e.webhook_id <> $2`,
      [company.id, measured],
    );
  }
  await client.query('truncate private.webhook_endpoint_signals');
}

/** All cases together, one claim of each in turn (the order turned by one each round). */
async function measureInterleaved(cases) {
  for (const c of cases) {
    await c.client.query(TIMED_CLAIM);
    c.rounds = [];
  }
  for (let r = 0; r < CLAIM.rounds; r++) {
    if (r > 0) await sleep(CLAIM.roundGapMs);
    for (const c of cases) await c.client.query(VACUUM);
    // Then a checkpoint, so that the pages the builds and the vacuums dirtied are not being
    // written out while the round runs.
    await cases[0].client.query('checkpoint');
    const order = cases.map((_, i) => cases[(i + r) % cases.length]);
    for (const c of cases) {
      c.times = [];
      c.clientTimes = [];
    }
    const started = now();
    for (let i = 0; i < CLAIM.warmup + CLAIM.claimsPerRound && now() - started < CLAIM.roundMaxMs; i++) {
      for (const c of order) {
        await c.client.query('begin');
        const t0 = now();
        const { rows: [{ n, ms }] } = await c.client.query('select n, ms from pg_temp.timed_claim($1)', [CLAIM.batch]);
        const clientMs = now() - t0;
        await c.client.query('rollback');
        if (n !== CLAIM.batch) throw new Error(`claim cost (${c.label}): a claim returned ${n} deliveries, not ${CLAIM.batch}`);
        if (i >= CLAIM.warmup) {
          c.times.push(ms);
          c.clientTimes.push(clientMs);
        }
      }
    }
    for (const c of cases) {
      c.rounds.push({
        median: round(median(c.times), 2),
        p90: round(percentile(c.times, 90), 2),
        clientMedian: round(median(c.clientTimes), 2),
        claims: c.times.length,
      });
    }
  }
  return Promise.all(cases.map(async (c) => {
    const result = {
      kind: c.kind,
      size: c.size,
      label: c.label,
      rounds: c.rounds,
      median: round(median(c.rounds.map((x) => x.median)), 2),
      clientMedian: round(median(c.rounds.map((x) => x.clientMedian)), 2),
      buffers: await claimBuffers(c.client),
    };
    log(`  claim of ${CLAIM.batch}, ${c.label}: ${result.median} ms in the database, ${result.clientMedian} ms at the client, ` +
        `${result.buffers} buffers (rounds ${c.rounds.map((x) => x.median).join(' / ')})`);
    return result;
  }));
}

export async function claimCostScenario({ cluster, db, receiver }) {
  const { rows: [saved] } = await db.query('select endpoint_concurrency, endpoint_concurrency_start from private.webhook_settings');
  const { rows: [{ template }] } = await db.query('select current_database() as template');
  const specs = [
    ...CLAIM.pendingCases.map((rows) => ({ kind: 'pending', size: rows, label: `${rows} due deliveries on one endpoint` })),
    ...CLAIM.endpointCases.map((n) => ({
      kind: 'endpoints', size: n, label: `${CLAIM.dueOnMeasured} due on one endpoint, ${n} endpoints with a retry in an hour`,
    })),
  ];
  const cases = [];
  try {
    // Set before the copies are made: every case's database has it.
    await db.query('update private.webhook_settings set endpoint_concurrency = 1000, endpoint_concurrency_start = 1000');
    for (const [i, spec] of specs.entries()) {
      const name = `bench_claim_${i + 1}`;
      const t0 = now();
      await db.query(`drop database if exists ${name}`);
      // A copy needs its template to have no other session: the bench's own is the only one.
      await db.query(`create database ${name} template ${template}`);
      const url = new URL(cluster.url);
      url.pathname = `/${name}`;
      const client = new pg.Client({ connectionString: url.toString(), application_name: `bench-claim-${i + 1}` });
      await client.connect();
      cases.push({ ...spec, name, client });
      await buildCase(client, receiver.port, spec);
      log(`  built ${spec.label} (database ${name}) in ${round((now() - t0) / 1000, 1)} s`);
    }
    const measured = await measureInterleaved(cases);
    const medians = measured.map((c) => c.median);
    return { cases: measured, ratio: round(Math.max(...medians) / Math.min(...medians), 2) };
  } finally {
    await db.query('update private.webhook_settings set endpoint_concurrency = $1, endpoint_concurrency_start = $2',
      [saved.endpoint_concurrency, saved.endpoint_concurrency_start]);
    for (const c of cases) {
      await c.client.end().catch(() => {});
      await db.query(`drop database if exists ${c.name}`);
    }
  }
}

export function claimCostReport(result) {
  const ok = (b) => (b ? 'met' : '**missed**');
  const smallest = Math.min(...result.cases.map((c) => c.median));
  const rows = [
    ...result.cases.map((c) => [`claim of ${CLAIM.batch}: ${c.label}`, `${c.median} ms (client ${c.clientMedian} ms; ${c.buffers} buffers)`, '', '']),
    ['claim cost, largest / smallest case', `${result.ratio}x`, `<= ${CLAIM_TARGETS.ratio}x`, ok(result.ratio <= CLAIM_TARGETS.ratio)],
  ];
  const section = `## Claim cost (issue 9)

Method. \`select count(*) from private.claim_due_deliveries('bench-claim', ${CLAIM.batch}, 60)\`, timed by the
database (\`clock_timestamp()\` around the call, in a session-local function) and by the client (plus one
round trip on 127.0.0.1 and Node: "client"), each claim in its own transaction that is then
**rolled back** (not timed): every claim meets the same state and does all of its work (the
leases, the endpoint's ready_at, the signing secrets, the payloads) before the rollback.
\`private.webhook_settings.endpoint_concurrency\` and \`endpoint_concurrency_start\` are 1000 during the
scenario so that one endpoint can give ${CLAIM.batch}; every claim is checked to return ${CLAIM.batch}. States are built with set-based SQL: deliveries
inserted directly (one shared event), \`private.webhook_endpoints.ready_at\` set as the outbox would
(the measured endpoint: its oldest due delivery; the waiting ones: their retry in an hour), and the
signals the inserts left deleted. **Each case is built in a database of its own** (a copy of the
bench's, made with CREATE DATABASE ... TEMPLATE) and the cases are measured together, one claim of
each in turn (the order turned by one each round): every case meets the same moments of the
shared machine, whose speed drifts by more than the cases differ (one case measured alone read
2.2 ms in one round and 4.2 ms in the next). ${CLAIM.rounds} rounds, ${CLAIM.roundGapMs / 1000} s apart, of ${CLAIM.claimsPerRound} claims of each case after
${CLAIM.warmup} warm-up claims, a VACUUM ANALYZE of every table the builds wrote (the rolled-back claims leave
dead row versions) and a CHECKPOINT before each round; a case's figure is the median of its
rounds' medians. **Ratio** = the largest case's figure / the smallest's, on the database's clock
(the client's adds a round trip on 127.0.0.1). **Buffers per claim** (shared
hit + read, from one more claim under \`EXPLAIN (ANALYZE, BUFFERS)\`, nested statements
included) is the work itself, which other load on the machine does not change.

${mdTable([
    ['case', ...Array.from({ length: CLAIM.rounds }, (_, i) => `round ${i + 1}: median / p90 ms (claims)`), 'median ms', 'x smallest', 'client median ms', 'buffers per claim'],
    ...result.cases.map((c) => [
      c.label, ...c.rounds.map((r) => `${r.median} / ${r.p90} (${r.claims})`), c.median, round(c.median / smallest, 2), c.clientMedian, c.buffers,
    ]),
  ])}
`;
  return { rows, section };
}
