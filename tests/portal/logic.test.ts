// The portal's logic that is not rendering: routes, keyset paging, chart buckets, the
// mapping of database errors to form fields, and the headers shown as sent.
import fs from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { toWebhooksError, URL_RULES, WebhooksError } from "../../src/errors.ts";
import { describeBucket, hourlyBuckets, niceMax, stack, windowStart } from "../../src/portal/logic/chart.ts";
import { cancelDeliveryError, endpointFormError } from "../../src/portal/logic/form-errors.ts";
import { concurrencyText, DELIVERY_ORDERS, endpointLabel, endpointState, formatMoment, formatRate, formatTime, fromLocalInput, lastOutcome, limitText, rateText, toLocalInput } from "../../src/portal/logic/format.ts";
import { headersAsSent } from "../../src/portal/logic/headers.ts";
import { currentCursor, FIRST_PAGE, hasNewer, newer, older, pageNumber } from "../../src/portal/logic/pager.ts";
import { pathToRoute, routeToPath, type Route } from "../../src/portal/logic/route.ts";

const ID = "3a7f2c91-6e4d-4b8a-b0c5-1d9e8f7a6b52";

describe("routes", () => {
  it("round-trip through their path", () => {
    const routes: Route[] = [
      { page: "endpoints" },
      { page: "new-endpoint" },
      { page: "endpoint", id: ID },
      { page: "delivery", id: ID },
      { page: "event-types" },
      { page: "deliveries", filter: {} },
      { page: "deliveries", filter: { webhookId: ID, state: "failed", triggerType: "WEBHOOK_TEST", since: "2026-11-28T10:00:00.000Z", until: "2026-11-29T10:00:00.000Z" } },
    ];
    for (const route of routes) {
      const [path, query = ""] = routeToPath(route).split("?");
      expect(pathToRoute(path!, query)).toEqual(route);
    }
  });

  it("send anything else to not-found, and drop filter values that are not valid", () => {
    expect(pathToRoute("/endpoints/not-a-uuid")).toEqual({ page: "not-found" });
    expect(pathToRoute("/deliveries/1 or 1=1")).toEqual({ page: "not-found" });
    expect(pathToRoute("/somewhere")).toEqual({ page: "not-found" });
    expect(pathToRoute("/endpoints/%E0")).toEqual({ page: "not-found" }); // a malformed escape, not a crash
    expect(pathToRoute("/endpoints/x/y/z")).toEqual({ page: "not-found" });
    expect(pathToRoute("/deliveries", "state=exploded&endpoint=x&type=lower_case&since=yesterday")).toEqual({ page: "deliveries", filter: {} });
    expect(pathToRoute("/endpoints/" + ID.toUpperCase())).toEqual({ page: "endpoint", id: ID });
    expect(pathToRoute("")).toEqual({ page: "endpoints" });
  });
});

describe("keyset paging", () => {
  it("walks older with the cursors it was given and back newer, never past the first page", () => {
    let pager = FIRST_PAGE;
    expect(currentCursor(pager)).toBeUndefined();
    expect(hasNewer(pager)).toBe(false);
    expect(newer(pager)).toBe(pager);
    pager = older(pager, "c1");
    pager = older(pager, "c2");
    expect(currentCursor(pager)).toBe("c2");
    expect(pageNumber(pager)).toBe(3);
    expect(older(pager, null)).toBe(pager); // the last page has no older one
    pager = newer(pager);
    expect(currentCursor(pager)).toBe("c1");
    pager = newer(pager);
    expect(currentCursor(pager)).toBeUndefined();
    expect(pageNumber(pager)).toBe(1);
  });
});

describe("chart buckets", () => {
  const now = new Date("2026-11-29T13:25:00Z");
  const row = (hour: string, counts: Partial<Record<"succeeded" | "failed" | "retrying" | "pending" | "cancelled", number>>) => ({
    hour,
    succeeded: 0, failed: 0, retrying: 0, pending: 0, cancelled: 0,
    ...counts,
  });

  it("has 24 hourly buckets ending with the current hour, empty hours included, endpoints summed", () => {
    expect(windowStart(now).toISOString()).toBe("2026-11-28T14:00:00.000Z");
    const buckets = hourlyBuckets(
      [
        row("2026-11-29T13:00:00+00:00", { succeeded: 3, failed: 1 }),
        row("2026-11-29T13:00:00+00:00", { succeeded: 2 }), // another endpoint, same hour
        row("2026-11-28T14:00:00+00:00", { cancelled: 1 }), // the oldest bucket
        row("2026-11-28T13:00:00+00:00", { succeeded: 99 }), // before the window
        row("2026-11-29T14:00:00+00:00", { succeeded: 99 }), // after it
      ],
      now,
    );
    expect(buckets).toHaveLength(24);
    expect(buckets[0]!.start.toISOString()).toBe("2026-11-28T14:00:00.000Z");
    expect(buckets[23]!.start.toISOString()).toBe("2026-11-29T13:00:00.000Z");
    expect(buckets[23]!.counts).toEqual({ succeeded: 5, retrying: 0, pending: 0, failed: 1, cancelled: 0 });
    expect(buckets[23]!.total).toBe(6);
    expect(buckets[0]!.total).toBe(1);
    expect(buckets.reduce((n, b) => n + b.total, 0)).toBe(7);
  });

  it("scales to a round maximum and stacks outcomes bottom up", () => {
    const buckets = hourlyBuckets([row("2026-11-29T13:00:00Z", { succeeded: 30, failed: 7 })], now);
    expect(niceMax(buckets)).toBe(50);
    expect(niceMax(hourlyBuckets([], now))).toBe(1);
    expect(niceMax(hourlyBuckets([row("2026-11-29T13:00:00Z", { succeeded: 100 })], now))).toBe(100);
    expect(stack(buckets[23]!, 50)).toEqual([
      { outcome: "succeeded", from: 0, to: 0.6 },
      { outcome: "failed", from: 0.6, to: 0.74 },
    ]);
    expect(describeBucket(buckets[23]!, () => "13:00")).toBe("13:00: 30 succeeded, 7 failed");
    expect(describeBucket(buckets[0]!, () => "14:00")).toBe("14:00: no deliveries");
  });
});

describe("errors of the endpoint form", () => {
  it("puts each URL rule next to the URL, in the client's words", () => {
    for (const [constraint, rule] of Object.entries(URL_RULES)) {
      const error = toWebhooksError({ code: "23514", message: `new row for relation "webhooks" violates check constraint "${constraint}"` }, "create webhook");
      expect(endpointFormError(error)).toEqual({ field: "url", message: `${rule.charAt(0).toUpperCase()}${rule.slice(1)}.` });
    }
  });

  it("finds https_required in the trigger's message (PostgREST does not pass the constraint on)", () => {
    const error = toWebhooksError({ code: "23514", message: "webhook url must use https (webhooks_url_https_required): http://x.test" });
    expect(endpointFormError(error)).toEqual({ field: "url", message: "Url must use https:// on this deployment." });
  });

  it("places duplicates, unknown trigger types and long descriptions next to their field", () => {
    expect(endpointFormError(toWebhooksError({ code: "23505", message: 'duplicate key value violates unique constraint "webhooks_company_trigger_url_key"' })).field).toBe("url");
    expect(endpointFormError(toWebhooksError({ code: "23503", message: 'insert or update on table "webhooks" violates foreign key constraint "webhooks_trigger_type_fkey"' })).field).toBe("triggerType");
    expect(endpointFormError(toWebhooksError({ code: "23514", message: 'new row for relation "webhooks" violates check constraint "webhooks_description_length"' })))
      .toEqual({ field: "description", message: "Description must be at most 500 characters." });
  });

  it("places a delivery order the database refuses next to the choice", () => {
    const error = toWebhooksError({ code: "23514", message: 'new row for relation "webhooks" violates check constraint "webhooks_delivery_order_valid"' });
    expect(endpointFormError(error)).toEqual({ field: "deliveryOrder", message: "Delivery order must be parallel or ordered." });
  });

  it("places a rate the database refuses next to its field", () => {
    const error = toWebhooksError({ code: "23514", message: 'new row for relation "webhooks" violates check constraint "webhooks_max_requests_per_second_range"' });
    expect(endpointFormError(error)).toEqual({
      field: "maxRequestsPerSecond",
      message: "Most requests per second must be a whole number from 1 to 10,000, or empty for no limit.",
    });
  });

  it("places a limit of requests at once the database refuses next to its field", () => {
    const error = toWebhooksError({ code: "23514", message: 'new row for relation "webhooks" violates check constraint "webhooks_max_concurrent_requests_range"' });
    expect(endpointFormError(error)).toEqual({
      field: "maxConcurrentRequests",
      message: "Most requests at once must be a whole number from 1 to 1000, or empty for the deployment's limit.",
    });
  });

  it("says everything else for the whole form, without guessing a field", () => {
    expect(endpointFormError(toWebhooksError({ code: "42501", message: "new row violates row-level security policy" }))).toMatchObject({ field: null });
    expect(endpointFormError(new WebhooksError("unknown", "create webhook: boom"))).toEqual({ field: null, message: "create webhook: boom" });
    expect(endpointFormError(new Error("network down"))).toEqual({ field: null, message: "network down" });
  });
});

describe("errors of cancelling a delivery", () => {
  it("says a delivery that has already ended has nothing to cancel, with what the database suggests instead", () => {
    const ended = toWebhooksError(
      { code: "55000", message: "delivery 3a7f2c91 has already ended", hint: "Only pending deliveries can be cancelled; redeliver it to send it again." },
      "cancel delivery 3a7f2c91",
    );
    expect(ended.kind).toBe("already_ended");
    expect(cancelDeliveryError(ended)).toBe("This delivery has already ended, so there is nothing to cancel. Only pending deliveries can be cancelled; redeliver it to send it again.");
  });

  it("says a delivery that is not yours cannot be cancelled, without telling whether it exists", () => {
    const hidden = toWebhooksError({ code: "42501", message: "delivery x does not exist or you are not an active ADMIN of its company" });
    expect(cancelDeliveryError(hidden)).toBe("You cannot cancel this delivery: it does not exist or is not yours to manage.");
    expect(cancelDeliveryError(new Error("network down"))).toBe("network down");
  });
});

describe("headers as sent", () => {
  it("derives webhook-id and webhook-timestamp and never shows a signature", () => {
    const headers = headersAsSent({ id: ID }, { created_at: "2026-11-29T13:00:10.500Z", duration_ms: 1200 });
    const byName = Object.fromEntries(headers.map((h) => [h.name, h.value]));
    expect(byName).toEqual({
      "content-type": "application/json",
      "user-agent": "Serial-Webhooks/1.0",
      "webhook-id": ID,
      "webhook-timestamp": String(Math.floor(Date.parse("2026-11-29T13:00:09.300Z") / 1000)),
      "webhook-signature": "v1,<redacted>",
    });
    expect(headersAsSent({ id: ID }, null).find((h) => h.name === "webhook-timestamp")!.value).toMatch(/not|set when/);
  });

  it("shows the user-agent the dispatcher really sends (its constant, in the function's source)", () => {
    const send = fs.readFileSync(path.join(import.meta.dirname, "../../supabase/functions/_shared/delivery/send.ts"), "utf8");
    const sent = /export const USER_AGENT = "([^"]+)";/.exec(send)?.[1];
    expect(sent).toBeDefined();
    expect(headersAsSent({ id: ID }, null).find((h) => h.name === "user-agent")!.value).toBe(sent);
  });
});

describe("formatting", () => {
  const now = new Date("2026-11-29T14:05:00Z");
  const active = { is_active: true, disabled_reason: null, disabled_at: null };
  const health = {
    state: "healthy", consecutive_failures: 0, failing_since: null, circuit_opened_at: null, next_probe_at: null,
    last_status: 200, last_error: null, last_attempt_at: "2026-11-29T14:00:00Z",
  } as const;
  const at = (iso: string) => formatMoment(iso, now);

  it("says an endpoint is healthy, or failing since when and how many times in a row", () => {
    expect(endpointState(active, health, now)).toEqual({ label: "Healthy", detail: null, tone: "ok" });
    const failing = { ...health, state: "failing", consecutive_failures: 3, failing_since: "2026-11-29T14:02:00Z", last_status: 503 } as const;
    expect(endpointState(active, failing, now)).toEqual({ label: "Failing", detail: `Failing since ${at("2026-11-29T14:02:00Z")} — 3 consecutive failures`, tone: "warn" });
    expect(endpointState(active, { ...failing, consecutive_failures: 1 }, now).detail).toMatch(/— 1 consecutive failure$/);
    // A 4xx ends the run (the endpoint is up) but not the failing streak.
    expect(endpointState(active, { ...failing, consecutive_failures: 0 }, now).detail).toBe(`Failing since ${at("2026-11-29T14:02:00Z")}`);
  });

  it("says since when a circuit is open, when the next probe goes, and that deliveries wait without spending attempts", () => {
    const open = {
      ...health, state: "circuit_open", consecutive_failures: 10, failing_since: "2026-11-29T13:50:00Z",
      circuit_opened_at: "2026-11-29T14:02:00Z", next_probe_at: "2026-11-29T14:12:00Z", last_status: 503,
    } as const;
    expect(endpointState(active, open, now)).toEqual({
      label: "Circuit open",
      detail: `Circuit open since ${at("2026-11-29T14:02:00Z")} — next probe at ${at("2026-11-29T14:12:00Z")} (deliveries wait without spending attempts)`,
      tone: "bad",
    });
    // The probe's time has come (it goes with the next due delivery, or is under way).
    expect(endpointState(active, { ...open, next_probe_at: "2026-11-29T14:04:00Z" }, now).detail).toContain(`— probe due since ${at("2026-11-29T14:04:00Z")} (`);
  });

  it("says a disabled endpoint is disabled, with the reason and since when, whatever its health says", () => {
    const disabled = { is_active: false, disabled_reason: "the endpoint answered 410 Gone", disabled_at: "2026-11-29T14:01:00Z" };
    expect(endpointState(disabled, { ...health, state: "disabled" }, now)).toEqual({
      label: "Disabled", detail: `the endpoint answered 410 Gone (since ${at("2026-11-29T14:01:00Z")})`, tone: "bad",
    });
    expect(endpointState({ ...disabled, disabled_reason: null, disabled_at: null }, undefined, now).detail).toBe("no reason given");
    // Health not loaded yet: active, nothing more claimed.
    expect(endpointState(active, undefined, now)).toEqual({ label: "Active", detail: null, tone: "info" });
  });

  it("says times of today by the clock alone, other days with their date", () => {
    expect(formatMoment("2026-11-29T09:30:15Z", now)).toBe(new Date("2026-11-29T09:30:15Z").toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit", second: "2-digit" }));
    expect(formatMoment("2026-11-27T09:30:15Z", now)).toContain("2026");
    expect(formatMoment(null, now)).toBe("—");
    expect(formatTime("infinity")).toBe("not scheduled");
  });

  it("says the last attempt's status, and its error only when that says more", () => {
    expect(lastOutcome({ last_status: null, last_error: null, last_attempt_at: null })).toEqual({ status: "—", error: null });
    expect(lastOutcome({ last_status: 503, last_error: "HTTP 503", last_attempt_at: "2026-11-29T14:00:00Z" })).toEqual({ status: "503", error: null });
    expect(lastOutcome({ last_status: null, last_error: "connection refused", last_attempt_at: "2026-11-29T14:00:00Z" })).toEqual({ status: "no response", error: "connection refused" });
    expect(lastOutcome(undefined)).toEqual({ status: "—", error: null });
  });

  it("names a delivery's endpoint by its url, and says a deleted one is deleted once the endpoints are known", () => {
    const urls = new Map([[ID, "https://erp.example.com/hook"]]);
    expect(endpointLabel(ID, urls)).toBe("https://erp.example.com/hook");
    expect(endpointLabel("00000000-0000-4000-8000-000000000000", urls)).toBe("(endpoint deleted)"); // a delete keeps the id
    expect(endpointLabel(null, urls)).toBe("(endpoint deleted)"); // deleted before 20261130120000
    expect(endpointLabel(ID, null)).toBe(ID); // the endpoints are still loading
  });

  it("says how many requests an endpoint may send at once", () => {
    expect(concurrencyText({ concurrency: 10 })).toBe("up to 10 requests at once");
    expect(concurrencyText({ concurrency: 1 })).toBe("up to 1 request at once");
    expect(concurrencyText({ concurrency: null })).toBe("—");
    expect(concurrencyText(null)).toBe("—");
    expect(limitText(5)).toBe("Limit set for this endpoint: 5 requests at once.");
    expect(limitText(1)).toBe("Limit set for this endpoint: 1 request at once.");
    expect(rateText(20)).toBe("Rate set for this endpoint: 20 requests per second at most, on average.");
  });

  it("says in one sentence what each delivery order promises", () => {
    expect(DELIVERY_ORDERS.ordered.promise).toMatch(/one at a time, in the order they were committed/);
    expect(Object.keys(DELIVERY_ORDERS)).toEqual(["parallel", "ordered"]);
  });

  it("writes rates and local times the inputs read back", () => {
    expect(formatRate(null)).toBe("—");
    expect(formatRate(1)).toBe("100 %");
    expect(formatRate(0.9016)).toBe("90.2 %");
    const local = new Date(2026, 10, 29, 13, 5);
    expect(fromLocalInput(toLocalInput(local))!.getTime()).toBe(local.getTime());
    expect(fromLocalInput("")).toBeNull();
  });
});
