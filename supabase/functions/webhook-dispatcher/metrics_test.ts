// End to end: a worker started with WEBHOOK_METRICS_PORT serves Prometheus text at
// /metrics: what it delivered, how long attempts took, and the outbox's health.
import assert from "node:assert/strict";
import { createProcess, e2eTest, reviseProcess, settledDeliveries, waitFor } from "../_test/e2e.ts";

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}

e2eTest("worker /metrics: attempts by outcome, a duration histogram, in flight, and the outbox's lag", async (t) => {
  let calls = 0;
  // The first attempt fails (retried at once), every later one succeeds.
  const receiver = t.receiver(() => (++calls === 1 ? new Response("no", { status: 500 }) : new Response("ok")));
  const company = await t.company();
  const hook = await t.webhook(company, `${receiver.origin}/hook`);
  const port = freePort();
  await t.dispatcher({ allowedTargets: [receiver.target], env: { WEBHOOK_METRICS_PORT: String(port) } });
  const process = await createProcess(t.sql, company, "Milling");
  await reviseProcess(t.sql, process, "Milling v2");
  await reviseProcess(t.sql, process, "Milling v3");
  await settledDeliveries(t.sql, hook, { expected: 2 });

  const metrics = `http://127.0.0.1:${port}/metrics`;
  const text = await waitFor("the counters to include the retried attempt", async () => {
    const body = await (await fetch(metrics)).text();
    return /webhook_deliveries_attempted_total\{outcome="succeeded"\} 2\n/.test(body) ? body : null;
  });
  assert.match(text, /webhook_deliveries_attempted_total\{outcome="retried"\} 1\n/);
  assert.match(text, /webhook_attempt_duration_seconds_count 3\n/);
  assert.match(text, /webhook_attempt_duration_seconds_bucket\{le="\+Inf"\} 3\n/);
  assert.match(text, /webhook_requests_in_flight 0\n/);
  assert.match(text, /webhook_outbox_up 1\n/);
  assert.match(text, /webhook_delivery_lag_seconds \d+(\.\d+)?\n/);
  assert.match(text, /webhook_endpoints\{state="healthy"\} \d+\n/);
  // Read beside the health, from private.webhook_cancellations_in_progress(): none here.
  assert.match(text, /webhook_cancellations_in_progress 0\n/);
  assert.match(text, /webhook_cancellation_age_seconds 0\n/);
  assert.match(text, /webhook_deliveries_being_cancelled 0\n/);
  // And from private.webhook_results_waiting(): none kept here.
  assert.match(text, /webhook_results_waiting 0\n/);
  assert.match(text, /webhook_result_wait_age_seconds 0\n/);
  // And from private.webhook_company_shares(): no company at its share here.
  assert.match(text, /webhook_companies_at_share 0\n/);
  assert.match(text, /webhook_endpoints_waiting_for_company_share 0\n/);

  const response = await fetch(metrics);
  assert.equal(response.headers.get("content-type"), "text/plain; version=0.0.4; charset=utf-8");
  await response.body?.cancel();
  const elsewhere = await fetch(`http://127.0.0.1:${port}/`);
  assert.equal(elsewhere.status, 404);
  await elsewhere.body?.cancel();
  const post = await fetch(metrics, { method: "POST" });
  assert.equal(post.status, 405);
  await post.body?.cancel();
});
