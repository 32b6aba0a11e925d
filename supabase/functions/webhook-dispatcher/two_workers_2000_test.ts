// End to end, at volume: two dispatcher processes share 2,000 deliveries (400 processes
// created in one transaction, each announced to 5 endpoints). SKIP LOCKED leases must keep
// them apart: no webhook-id is ever sent twice, let alone twice at the same moment.
import assert from "node:assert/strict";
import { e2eTest, sleep, waitFor } from "../_test/e2e.ts";

const PROCESSES = 400;
const ENDPOINTS = 5;
const TOTAL = PROCESSES * ENDPOINTS;

e2eTest("two workers, 2,000 deliveries to 5 endpoints: each webhook-id arrives once, never in parallel", async (t) => {
  // Per webhook-id: requests in flight right now, the most ever in flight at once, requests received.
  const inFlight = new Map<string, number>();
  const maxInFlight = new Map<string, number>();
  const received = new Map<string, number>();
  const receiver = t.receiver(async (request) => {
    const id = request.headers.get("webhook-id") ?? "(none)";
    received.set(id, (received.get(id) ?? 0) + 1);
    const now = (inFlight.get(id) ?? 0) + 1;
    inFlight.set(id, now);
    maxInFlight.set(id, Math.max(maxInFlight.get(id) ?? 0, now));
    try {
      // 5-20 ms: long enough for many requests of both workers to overlap.
      await sleep(5 + Math.random() * 15, t.ending);
    } finally {
      inFlight.set(id, inFlight.get(id)! - 1);
    }
    return new Response("ok");
  });

  const company = await t.company();
  const hooks: string[] = [];
  for (let i = 0; i < ENDPOINTS; i++) {
    hooks.push(await t.webhook(company, `${receiver.origin}/line-${i}`, "PROCESS_CREATED"));
  }
  // 20 requests at once per worker, 5 x 10 for the endpoints: neither worker alone can use
  // every endpoint's cap, so both stay busy (the first to fill its slots hands off).
  const env = { WEBHOOK_CONCURRENCY: "20" };
  const workers = await Promise.all([
    t.dispatcher({ allowedTargets: [receiver.target], env }),
    t.dispatcher({ allowedTargets: [receiver.target], env }),
  ]);

  // One transaction: 400 PROCESS_CREATED events, 2,000 deliveries, one NOTIFY for both workers.
  await t.sql`
    insert into public.processes (company_id, name)
    select ${company}, 'Station ' || g from generate_series(1, ${PROCESSES}::int) g`;
  const deliveries = await t.sql<{ id: string; webhook_id: string }[]>`
    select id, webhook_id from public.webhook_deliveries where company_id = ${company}`;
  assert.equal(deliveries.length, TOTAL);

  const settled = await waitFor(`${TOTAL} deliveries to settle`, async () => {
    const [row] = await t.sql`
      select count(*) filter (where state = 'pending')::int as pending,
             count(*) filter (where state = 'succeeded')::int as succeeded,
             count(*)::int as total
        from public.webhook_deliveries
       where company_id = ${company}`;
    return row.pending === 0 ? row : null;
  }, { timeoutMs: 25_000, intervalMs: 100 });
  assert.deepEqual(settled, { pending: 0, succeeded: TOTAL, total: TOTAL }, "every delivery succeeded");

  // Every delivery arrived, exactly once, and never overlapped with itself.
  assert.equal(receiver.requests.length, TOTAL, "as many requests as deliveries");
  assert.deepEqual(new Set(received.keys()), new Set(deliveries.map((d) => d.id)));
  const twice = [...received].filter(([, n]) => n > 1);
  assert.deepEqual(twice, [], "webhook-ids received more than once");
  assert.equal(Math.max(...maxInFlight.values()), 1, "a webhook-id was in flight twice at the same moment");
  // Each endpoint got exactly its own 400.
  const perPath = new Map<string, number>();
  for (const r of receiver.requests) perPath.set(r.path, (perPath.get(r.path) ?? 0) + 1);
  assert.deepEqual(
    [...perPath].sort(),
    hooks.map((_, i) => [`/line-${i}`, PROCESSES]),
  );

  // One succeeded attempt each; both workers took a share.
  const [attempts] = await t.sql`
    select count(*)::int as attempts,
           count(distinct delivery_id)::int as deliveries,
           count(*) filter (where outcome = 'succeeded')::int as succeeded
      from public.webhook_delivery_attempts
     where company_id = ${company}`;
  assert.deepEqual(attempts, { attempts: TOTAL, deliveries: TOTAL, succeeded: TOTAL });
  const [{ max_attempt_count }] = await t.sql`
    select max(attempt_count)::int as max_attempt_count from public.webhook_deliveries where company_id = ${company}`;
  assert.equal(max_attempt_count, 1, "no delivery needed a second attempt");
  const perWorker = await t.sql<{ worker: string; n: number }[]>`
    select worker, count(*)::int as n
      from public.webhook_delivery_attempts
     where company_id = ${company}
     group by worker`;
  const counts = Object.fromEntries(perWorker.map((r) => [r.worker, r.n]));
  for (const w of workers) {
    assert.ok(counts[w.workerId] > 0, `worker ${w.workerId} did nothing: ${JSON.stringify(counts)}`);
  }
  assert.equal(Object.keys(counts).length, 2, `attempts by workers other than ours: ${JSON.stringify(counts)}`);
});
