import assert from "node:assert/strict";
import { emptyCounts } from "./engine.ts";
import { DispatcherMetrics, DURATION_BUCKETS_SECONDS } from "./metrics.ts";
import type { DeliveryResult } from "./store.ts";

const result = (duration_ms: number, outcome: DeliveryResult["outcome"] = "succeeded"): DeliveryResult => ({
  delivery_id: crypto.randomUUID(),
  attempt_number: 1,
  outcome,
  status: 200,
  duration_ms,
  response_body: "",
  error: null,
  next_attempt_at: null,
  gone: false,
});

/** `name{labels} value` lines of a Prometheus text page, as a map. */
function samples(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const at = line.lastIndexOf(" ");
    out.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return out;
}

Deno.test("metrics: attempt durations land in cumulative buckets, with sum and count", () => {
  const m = new DispatcherMetrics();
  for (const ms of [3, 40, 40, 700, 120_000]) m.attempted(result(ms));
  const s = samples(m.render({ totals: emptyCounts(), inFlight: 0, health: null }));
  const bucket = (le: string) => s.get(`webhook_attempt_duration_seconds_bucket{le="${le}"}`);
  assert.equal(bucket("0.01"), 1);
  assert.equal(bucket("0.05"), 3);
  assert.equal(bucket("0.5"), 3);
  assert.equal(bucket("1"), 4);
  assert.equal(bucket("60"), 4, "two minutes is above the largest bucket");
  assert.equal(bucket("+Inf"), 5);
  assert.equal(s.get("webhook_attempt_duration_seconds_count"), 5);
  assert.equal(s.get("webhook_attempt_duration_seconds_sum"), 120.783);
  assert.equal(DURATION_BUCKETS_SECONDS.length + 1, [...s.keys()].filter((k) => k.includes("_bucket")).length);
});

Deno.test("metrics: outcomes, in flight, and the outbox's health when the database answered", () => {
  const m = new DispatcherMetrics();
  const totals = { ...emptyCounts(), claimed: 9, succeeded: 5, retried: 2, failed: 1, blocked: 1 };
  const text = m.render({
    totals,
    inFlight: 7,
    health: {
      lag_seconds: 12.5,
      due_deliveries: 30,
      in_flight_deliveries: 7,
      scheduled_deliveries_estimate: 400,
      signals: 2,
      endpoints_healthy: 10,
      endpoints_failing: 2,
      endpoints_circuit_open: 1,
      endpoints_disabled: 3,
      wakeup_failures: null,
      cancellations_in_progress: 2,
      oldest_cancellation_age_seconds: 3.25,
      deliveries_being_cancelled: 4200,
      results_waiting_for_held_endpoints: 3,
      oldest_waiting_result_age_seconds: 61.5,
      companies_at_share: 1,
      endpoints_waiting_for_company_share: 4,
    },
  });
  const s = samples(text);
  assert.equal(s.get('webhook_deliveries_attempted_total{outcome="succeeded"}'), 5);
  assert.equal(s.get('webhook_deliveries_attempted_total{outcome="retried"}'), 2);
  assert.equal(s.get('webhook_deliveries_attempted_total{outcome="failed"}'), 1);
  assert.equal(s.get('webhook_deliveries_attempted_total{outcome="blocked"}'), 1);
  assert.equal(s.get("webhook_requests_in_flight"), 7);
  assert.equal(s.get("webhook_outbox_up"), 1);
  assert.equal(s.get("webhook_delivery_lag_seconds"), 12.5);
  assert.equal(s.get('webhook_deliveries_pending{state="due"}'), 30);
  assert.equal(s.get('webhook_endpoints{state="circuit_open"}'), 1);
  assert.equal(s.has("webhook_wakeup_failures"), false, "no pg_net, no such gauge");
  assert.equal(s.get("webhook_cancellations_in_progress"), 2);
  assert.equal(s.get("webhook_cancellation_age_seconds"), 3.25);
  assert.equal(s.get("webhook_deliveries_being_cancelled"), 4200);
  assert.equal(s.get("webhook_results_waiting"), 3);
  assert.equal(s.get("webhook_result_wait_age_seconds"), 61.5);
  assert.equal(s.get("webhook_companies_at_share"), 1);
  assert.equal(s.get("webhook_endpoints_waiting_for_company_share"), 4);
  assert.match(text, /# TYPE webhook_attempt_duration_seconds histogram/);
  assert.ok(text.endsWith("\n"));
});

Deno.test("metrics: without the database's answer, only what this dispatcher knows, and up = 0", () => {
  const s = samples(new DispatcherMetrics().render({ totals: emptyCounts(), inFlight: 0, health: null }));
  assert.equal(s.get("webhook_outbox_up"), 0);
  assert.equal(s.has("webhook_delivery_lag_seconds"), false);
});
