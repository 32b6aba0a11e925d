// End to end: concurrent dispatchers share the outbox without double sends, and one slow
// endpoint cannot hold up the others.
import assert from "node:assert/strict";
import { deliveriesOf, e2eTest, enqueueEvents, sleep, waitFor } from "../_test/e2e.ts";
import { gate } from "../_test/receiver.ts";

e2eTest("two workers, 200 deliveries to one receiver: each arrives exactly once, all succeed", async (t) => {
  // 20 ms per request keeps both workers busy at the same time.
  const receiver = t.receiver(async () => {
    await sleep(20, t.ending);
    return new Response("ok");
  });
  const company = await t.company();
  const hook = await t.webhook(company, `${receiver.origin}/bulk`);
  // Each worker takes 5 requests at once, the endpoint 10 or more: one worker alone cannot
  // use the endpoint's concurrency, so the first to fill its slots hands the rest off (a NOTIFY).
  const env = { WEBHOOK_CONCURRENCY: "5" };
  const workers = await Promise.all([
    t.dispatcher({ allowedTargets: [receiver.target], env }),
    t.dispatcher({ allowedTargets: [receiver.target], env }),
  ]);

  // One commit, one NOTIFY: both workers wake and claim disjoint batches (SKIP LOCKED).
  await enqueueEvents(t.sql, company, 200);
  const delivered = await waitFor("200 deliveries to succeed", async () => {
    const rows = await deliveriesOf(t.sql, hook);
    return rows.length === 200 && rows.every((d) => d.state === "succeeded") ? rows : null;
  }, { timeoutMs: 30_000 });

  assert.equal(receiver.requests.length, 200, "no delivery was sent twice");
  assert.deepEqual(new Set(receiver.webhookIds()), new Set(delivered.map((d) => d.id)));
  assert.ok(delivered.every((d) => d.attempt_count === 1 && d.lease_owner === null));
  const perWorker = await t.sql`
    select a.worker, count(*)::int as attempts, count(*) filter (where a.outcome = 'succeeded')::int as ok
      from public.webhook_delivery_attempts a
     where a.company_id = ${company}
     group by a.worker`;
  const counts = Object.fromEntries(perWorker.map((r) => [r.worker, r.attempts]));
  assert.equal(perWorker.reduce((n, r) => n + r.ok, 0), 200);
  for (const w of workers) {
    assert.ok(counts[w.workerId] > 0, `worker ${w.workerId} did nothing: ${JSON.stringify(counts)}`);
  }
});

e2eTest("per-endpoint cap: a slow endpoint's backlog does not delay a fast endpoint", async (t) => {
  const ENDPOINT_CAP = 4;
  let slowInFlight = 0;
  let slowMaxInFlight = 0;
  // The slow endpoint holds every request until the fast one has all of its 30, then takes
  // 6 s more. Should a claim make the fast deliveries wait for slow slots, nothing moves
  // until the slow attempts time out (20 s), and the first wait below fails.
  const fastDone = gate();
  const slow = t.receiver(async () => {
    slowMaxInFlight = Math.max(slowMaxInFlight, ++slowInFlight);
    await Promise.race([fastDone.opened, sleep(60_000, t.ending)]);
    await sleep(6_000, t.ending);
    slowInFlight--;
    return new Response("finally");
  });
  const fast = t.receiver(() => {
    if (fast.requests.length === 30) fastDone.open();
    return new Response("ok");
  });
  const company = await t.company();
  const slowHook = await t.webhook(company, `${slow.origin}/slow`);
  const fastHook = await t.webhook(company, `${fast.origin}/fast`);
  // 30 events, each to both endpoints: 30 + 30 deliveries.
  await enqueueEvents(t.sql, company, 30);

  // Without the per-endpoint cap the slow endpoint's 30 would take all 12 global slots.
  // The database caps each endpoint (endpoint_concurrency), so a claim never gives the slow
  // one more than its 4, and the fast ones take the free slots at once.
  await t.settings({ endpoint_concurrency: ENDPOINT_CAP });
  await t.dispatcher({
    allowedTargets: [slow.target, fast.target],
    env: {
      WEBHOOK_CONCURRENCY: "12",
      WEBHOOK_BATCH_SIZE: "100",
      WEBHOOK_TIMEOUT_MS: "20000",
      WEBHOOK_LEASE_SECONDS: "30",
    },
  });
  await waitFor(
    "the fast endpoint to receive all 30 while the slow one holds its requests",
    () => fast.requests.length === 30,
    { timeoutMs: 15_000 },
  );

  // Recorded as they end, while the slow backlog stays pending.
  await waitFor(
    "the fast deliveries to be recorded",
    async () => (await deliveriesOf(t.sql, fastHook)).every((d) => d.state === "succeeded"),
    { timeoutMs: 20_000 },
  );
  const slowDeliveries = await deliveriesOf(t.sql, slowHook);
  const slowPending = slowDeliveries.filter((d) => d.state === "pending").length;
  assert.ok(slowPending >= 30 - 2 * ENDPOINT_CAP, `only ${slowPending} slow deliveries still pending`);
  assert.equal(fast.requests.length, 30, "no fast delivery was sent twice");
  assert.equal(slowMaxInFlight, ENDPOINT_CAP, "the slow endpoint got exactly its cap of parallel requests");
});
