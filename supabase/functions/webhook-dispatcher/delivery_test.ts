// End to end: a process revision in Postgres reaches a real HTTP receiver through a real
// dispatcher process, signed, retried and logged as the README promises. The body is the
// payload's stored text, byte for byte (numbers too big for JavaScript included).
import assert from "node:assert/strict";
import { newSecret } from "../_test/receiver.ts";
import {
  attemptsOf,
  createProcess,
  deliveriesOf,
  deliveryById,
  e2eTest,
  reviseProcess,
  rotateWebhookSecret,
  settledDeliveries,
  sleep,
  verifySignature,
  waitFor,
  webhookSecret,
} from "../_test/e2e.ts";

e2eTest("a process revision is POSTed once, signed, and logged as one successful attempt", async (t) => {
  const receiver = t.receiver();
  const company = await t.company();
  const webhookId = await t.webhook(company, `${receiver.origin}/hooks/serial?source=e2e`);
  const processId = await createProcess(t.sql, company, "Final assembly");
  await reviseProcess(t.sql, processId, "Final assembly, torque 12 Nm");
  // Creating the process fired PROCESS_CREATED, to which nobody here subscribed.
  const [pending] = await deliveriesOf(t.sql, webhookId);
  assert.deepEqual(pending.state, "pending");

  const worker = await t.dispatcher({ allowedTargets: [receiver.target] });
  const [delivery] = await settledDeliveries(t.sql, webhookId);

  assert.deepEqual(delivery.state, "succeeded");
  assert.deepEqual(delivery.attempt_count, 1);
  assert.deepEqual(delivery.last_status, 200);
  assert.deepEqual(delivery.lease_owner, null);
  assert(delivery.completed_at instanceof Date);

  assert.deepEqual(receiver.requests.length, 1);
  const request = receiver.requests[0];
  assert.deepEqual(request.method, "POST");
  assert.deepEqual(request.path, "/hooks/serial?source=e2e");
  assert.deepEqual(request.headers.get("content-type"), "application/json");
  assert.deepEqual(request.headers.get("webhook-id"), delivery.id);
  const timestamp = Number(request.headers.get("webhook-timestamp"));
  assert(Math.abs(timestamp - Date.now() / 1000) < 60, `webhook-timestamp ${timestamp} is not now`);

  // The body is the event payload, byte for byte as the database stores it, and what was signed.
  const [event] = await t.sql`select trigger_type, payload, payload::text as text from public.webhook_events where id = ${delivery.event_id}`;
  assert.equal(request.body, event.text);
  const body = JSON.parse(request.body);
  assert.deepEqual(body, event.payload);
  assert.deepEqual(body.type, "PROCESS_REVISED");
  assert.deepEqual(body.company_id, company);
  assert.deepEqual(body.data.process_id, processId);
  assert.deepEqual(body.data.revision, 2);
  assert.deepEqual(body.data.previous_revision, 1);
  assert.deepEqual(body.data.changed_fields, ["name"]);
  assert.deepEqual(body.data.process.name, "Final assembly, torque 12 Nm");
  assert.deepEqual(body.data.previous.name, "Final assembly");

  const secret = await webhookSecret(t.sql, webhookId);
  assert.match(secret, /^whsec_/);
  assert.deepEqual(request.headers.get("webhook-signature")!.split(" ").length, 1);
  assert.deepEqual(verifySignature(secret, request), body);
  assert.throws(() => verifySignature(newSecret(), request));

  const attempts = await attemptsOf(t.sql, delivery.id);
  assert.deepEqual(attempts.length, 1);
  const [attempt] = attempts;
  assert.deepEqual(attempt.attempt_number, 1);
  assert.deepEqual(attempt.outcome, "succeeded");
  assert.deepEqual(attempt.status, 200);
  assert.deepEqual(attempt.response_body, "ok");
  assert.deepEqual(attempt.error, null);
  assert.deepEqual(attempt.worker, worker.workerId);
  assert(typeof attempt.duration_ms === "number" && attempt.duration_ms >= 0, "duration_ms is recorded");
});

e2eTest("numbers a JavaScript number cannot hold reach the receiver digit for digit", async (t) => {
  // The dispatcher sends the stored text; it never parses the payload into JavaScript
  // numbers (a 64-bit id above 2^53, a decimal with more than 17 digits, 1e400).
  const receiver = t.receiver();
  const company = await t.company();
  const hook = await t.webhook(company, `${receiver.origin}/numbers`, "WEBHOOK_TEST");
  const data = '{"id": 9007199254740993, "torque_nm": 12.000000000000000000001, "limit": 1e400}';
  const [{ event }] = await t.sql`select private.enqueue_webhook_event(${company}, 'WEBHOOK_TEST', ${data}::text::jsonb) as event`;
  await t.dispatcher({ allowedTargets: [receiver.target] });
  await waitFor("the delivery", () => receiver.requests.length === 1);

  const [{ text }] = await t.sql`select payload::text as text from public.webhook_events where id = ${event}`;
  const body = receiver.requests[0].body;
  assert.equal(body, text);
  assert.match(body, /"id": 9007199254740993[,}]/);
  assert.match(body, /"torque_nm": 12\.000000000000000000001[,}]/);
  assert.match(body, /"limit": 1(0{400})[,}]/);
  verifySignature(await webhookSecret(t.sql, hook), receiver.requests[0]);
});

e2eTest("after a secret rotation the delivery carries two signatures, old and new both verify", async (t) => {
  const receiver = t.receiver();
  const company = await t.company();
  const webhookId = await t.webhook(company, `${receiver.origin}/rotated`);
  const processId = await createProcess(t.sql, company, "Potting");
  const oldSecret = await webhookSecret(t.sql, webhookId);
  const newSecret_ = await rotateWebhookSecret(t.sql, webhookId);
  assert.notEqual(newSecret_, oldSecret);
  assert.deepEqual(await webhookSecret(t.sql, webhookId), newSecret_);

  await reviseProcess(t.sql, processId, "Potting, 2-part epoxy");
  await t.dispatcher({ allowedTargets: [receiver.target] });
  const [delivery] = await settledDeliveries(t.sql, webhookId);
  assert.deepEqual(delivery.state, "succeeded");

  assert.deepEqual(receiver.requests.length, 1);
  const [request] = receiver.requests;
  const signatures = request.headers.get("webhook-signature")!.split(" ");
  assert.deepEqual(signatures.length, 2);
  for (const s of signatures) assert.match(s, /^v1,[A-Za-z0-9+/]+=*$/);
  // A receiver still configured with the old secret and one already on the new both accept it.
  assert.deepEqual(verifySignature(oldSecret, request), JSON.parse(request.body));
  assert.deepEqual(verifySignature(newSecret_, request), JSON.parse(request.body));
  assert.throws(() => verifySignature(newSecret(), request));
});

e2eTest("retries: same webhook-id each time; exhausted schedule fails; Retry-After pushes later, capped", async (t) => {
  // 500, 500, then 200.
  let flakyCount = 0;
  const flaky = t.receiver(() => new Response(null, { status: ++flakyCount <= 2 ? 500 : 200 }));
  const down = t.receiver(() => new Response("still down", { status: 500 }));
  // 503 asking for 1 s, then 200.
  let politeCount = 0;
  const polite = t.receiver(() =>
    ++politeCount === 1 ? new Response(null, { status: 503, headers: { "retry-after": "1" } }) : new Response("ok")
  );
  // Asks for 11.6 days: capped at 24 h (MAX_RETRY_AFTER_SECONDS).
  const greedy = t.receiver(() => new Response(null, { status: 503, headers: { "retry-after": "999999" } }));

  const company = await t.company();
  const flakyHook = await t.webhook(company, `${flaky.origin}/flaky`);
  const downHook = await t.webhook(company, `${down.origin}/down`);
  const politeHook = await t.webhook(company, `${polite.origin}/polite`);
  const greedyHook = await t.webhook(company, `${greedy.origin}/greedy`);
  const processId = await createProcess(t.sql, company, "Leak test");
  await reviseProcess(t.sql, processId, "Leak test, 2 bar");

  await t.dispatcher({ allowedTargets: [flaky.target, down.target, polite.target, greedy.target] });
  const [flakyDelivery] = await settledDeliveries(t.sql, flakyHook);
  const [downDelivery] = await settledDeliveries(t.sql, downHook);
  const [politeDelivery] = await settledDeliveries(t.sql, politeHook);

  // 500, 500, 200: three attempts of one delivery, one webhook-id.
  assert.deepEqual(flakyDelivery.state, "succeeded");
  assert.deepEqual(flakyDelivery.attempt_count, 3);
  assert.deepEqual(flaky.requests.length, 3);
  assert.deepEqual(flaky.webhookIds(), [flakyDelivery.id]);
  const flakySecret = await webhookSecret(t.sql, flakyHook);
  for (const r of flaky.requests) verifySignature(flakySecret, r);
  const flakyAttempts = await attemptsOf(t.sql, flakyDelivery.id);
  assert.deepEqual(flakyAttempts.map((a) => [a.attempt_number, a.outcome, a.status]), [
    [1, "failed", 500],
    [2, "failed", 500],
    [3, "succeeded", 200],
  ]);
  // The schedule says 0.2 s (±20 % jitter) between attempts.
  for (let i = 1; i < 3; i++) {
    const gap = flaky.arrivals[i] - flaky.arrivals[i - 1];
    assert(gap >= 150, `retry ${i} came ${gap.toFixed(0)} ms after the previous attempt, sooner than scheduled`);
  }

  // Always 500: failed once the schedule (3 attempts) is exhausted, and nothing more is sent.
  assert.deepEqual(downDelivery.state, "failed");
  assert.deepEqual(downDelivery.attempt_count, 3);
  assert.deepEqual(downDelivery.last_status, 500);
  assert.deepEqual(downDelivery.last_error, "HTTP 500");
  assert.deepEqual(downDelivery.next_attempt_at, null);
  const downAttempts = await attemptsOf(t.sql, downDelivery.id);
  assert.deepEqual(downAttempts.map((a) => [a.attempt_number, a.outcome, a.status]), [
    [1, "failed", 500],
    [2, "failed", 500],
    [3, "failed", 500],
  ]);
  assert.deepEqual(downAttempts[0].response_body, "still down");
  assert.deepEqual(down.webhookIds(), [downDelivery.id]);

  // Retry-After: 1 beats the 0.2 s schedule (how much later exactly: engine_test.ts, on a
  // test clock; here only that it waited).
  assert.deepEqual(politeDelivery.state, "succeeded");
  assert.deepEqual(politeDelivery.attempt_count, 2);
  const politeGap = polite.arrivals[1] - polite.arrivals[0];
  assert(politeGap >= 950, `Retry-After: 1 was not honoured: retried after ${politeGap.toFixed(0)} ms`);

  // Retry-After: 999999 is capped at 24 hours.
  const [greedyDelivery] = await deliveriesOf(t.sql, greedyHook);
  assert.deepEqual(greedyDelivery.state, "pending");
  assert.deepEqual(greedyDelivery.attempt_count, 1);
  assert.deepEqual(greedyDelivery.lease_owner, null);
  const hoursAhead = (greedyDelivery.next_attempt_at!.getTime() - Date.now()) / 3_600_000;
  assert(hoursAhead > 23.9 && hoursAhead <= 24.01, `next attempt ${hoursAhead.toFixed(3)} h ahead, not 24 h`);

  // Settled means settled: no stray attempt afterwards.
  await sleep(500);
  assert.deepEqual(down.requests.length, 3);
  assert.deepEqual(flaky.requests.length, 3);
  assert.deepEqual(greedy.requests.length, 1);
});

e2eTest("410 Gone disables the endpoint with a reason and cancels its other pending deliveries", async (t) => {
  const gone = t.receiver(() => new Response("this endpoint was removed", { status: 410 }));
  const healthy = t.receiver();
  const company = await t.company();
  const goneHook = await t.webhook(company, `${gone.origin}/old-integration`);
  const healthyHook = await t.webhook(company, `${healthy.origin}/current`);
  const processId = await createProcess(t.sql, company, "Calibration");
  await reviseProcess(t.sql, processId, "Calibration v2");
  await reviseProcess(t.sql, processId, "Calibration v3");
  // The second delivery to the gone endpoint is not due yet: still pending when the first gets 410.
  const [first, second] = await deliveriesOf(t.sql, goneHook);
  await t.sql`update public.webhook_deliveries set next_attempt_at = now() + interval '1 hour' where id = ${second.id}`;

  await t.dispatcher({ allowedTargets: [gone.target, healthy.target] });
  const webhook = await waitFor("the endpoint to be disabled", async () => {
    const [w] = await t.sql`select is_active, disabled_reason, disabled_at from public.webhooks where id = ${goneHook}`;
    return w.is_active ? null : w;
  });
  assert.deepEqual(webhook.disabled_reason, "the endpoint answered 410 Gone");
  assert(webhook.disabled_at instanceof Date);

  const closed = await deliveryById(t.sql, first.id);
  assert.deepEqual(closed.state, "failed");
  assert.deepEqual(closed.attempt_count, 1);
  assert.deepEqual(closed.last_status, 410);
  const attempts = await attemptsOf(t.sql, first.id);
  assert.deepEqual(attempts.map((a) => [a.outcome, a.status, a.response_body]), [
    ["failed", 410, "this endpoint was removed"],
  ]);

  const cancelled = await deliveryById(t.sql, second.id);
  assert.deepEqual(cancelled.state, "cancelled");
  assert.deepEqual(cancelled.attempt_count, 0);
  assert.deepEqual(cancelled.last_error, "endpoint disabled: the endpoint answered 410 Gone");
  assert.deepEqual(await attemptsOf(t.sql, second.id), []);
  assert.deepEqual(gone.requests.length, 1);

  // The company's other endpoint is untouched.
  const healthyDeliveries = await settledDeliveries(t.sql, healthyHook, { expected: 2 });
  assert.deepEqual(healthyDeliveries.map((d) => d.state), ["succeeded", "succeeded"]);
  const [h] = await t.sql`select is_active from public.webhooks where id = ${healthyHook}`;
  assert.deepEqual(h.is_active, true);
});
