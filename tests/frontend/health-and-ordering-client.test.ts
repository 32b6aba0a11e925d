// The client module's view of endpoint health and ordered delivery, through supabase-js,
// the real gateway and PostgREST: an ADMIN reads their endpoints' health (and nobody
// else's), sets delivery_order, sees which delivery an ordered one waits for, and cancels
// a pending delivery (an ended one is refused, kind "already_ended"). Also whether the
// health view embeds into webhooks (select=*,webhook_endpoint_health(*)). And an endpoint's
// own cap (max_concurrent_requests): set, refused out of range, and claims held to it; and
// the health's held_back_by_own_limits while its own rate makes deliveries wait, and its
// waiting_for_company_share while the company's share of requests is taken.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type pg from "pg";
import { createWebhooksClient, type WebhooksClient } from "../../src/index.ts";
import { createWorld, superuser } from "../support/world.ts";

let db: pg.Client;
let world: Awaited<ReturnType<typeof createWorld>>;
let admin: WebhooksClient;
let adminB: WebhooksClient;
let member: WebhooksClient;

beforeAll(async () => {
  db = await superuser();
  world = await createWorld(db);
  admin = createWebhooksClient(world.adminA.client);
  adminB = createWebhooksClient(world.adminB.client);
  member = createWebhooksClient(world.memberA.client);
});
afterAll(async () => db?.end());

/** The dispatcher's side, as the real engine calls it: claim what is due, record one result each. */
async function dispatch(webhookId: string, outcome: { status: number | null; nextAttemptAt?: Date | null }) {
  const claimed = (await db.query("select delivery_id, attempt_number from private.claim_due_deliveries('client-test', 1000, 60) where webhook_id = $1", [webhookId])).rows;
  const results = claimed.map((c) => ({
    delivery_id: c.delivery_id,
    attempt_number: c.attempt_number,
    outcome: outcome.status !== null && outcome.status < 300 ? "succeeded" : "failed",
    status: outcome.status,
    duration_ms: 3,
    error: outcome.status === null ? "timed out after 15000 ms" : null,
    next_attempt_at: outcome.nextAttemptAt === undefined ? new Date(Date.now() + 60_000).toISOString() : outcome.nextAttemptAt?.toISOString() ?? null,
  }));
  await db.query("select private.record_delivery_results('client-test', $1, interval '5 days')", [JSON.stringify(results)]);
  return claimed.map((c) => c.delivery_id as string);
}

describe("endpoint health through the client", () => {
  it("an ADMIN reads the health of their endpoints: healthy, then failing since the first failure", async () => {
    const hook = await admin.createWebhook({ companyId: world.companyA, triggerType: "WEBHOOK_TEST", url: "https://hooks.acme.test/health" });
    expect(await admin.getEndpointHealth(hook.id)).toMatchObject({
      webhook_id: hook.id, company_id: world.companyA, state: "healthy", consecutive_failures: 0, failing_since: null, circuit_opened_at: null,
    });

    await admin.sendTest(hook.id);
    await dispatch(hook.id, { status: 503 });
    const failing = await admin.getEndpointHealth(hook.id);
    expect(failing).toMatchObject({ state: "failing", consecutive_failures: 1, last_status: 503 });
    expect(Date.parse(failing.failing_since!)).toBeGreaterThan(Date.now() - 60_000);

    expect((await admin.listEndpointHealth({ state: "failing" })).map((h) => h.webhook_id)).toContain(hook.id);
    expect((await admin.listEndpointHealth({ state: "healthy" })).map((h) => h.webhook_id)).not.toContain(hook.id);

    await admin.disableWebhook(hook.id);
    expect((await admin.getEndpointHealth(hook.id)).state).toBe("disabled");
    await admin.enableWebhook(hook.id);
    expect(await admin.getEndpointHealth(hook.id)).toMatchObject({ state: "healthy", consecutive_failures: 0, failing_since: null });
  });

  it("an open circuit shows since when and the next probe", async () => {
    const hook = await admin.createWebhook({ companyId: world.companyA, triggerType: "PROCESS_DELETED", url: "https://hooks.acme.test/circuit" });
    await db.query(
      "update private.webhook_endpoints set consecutive_failures = 10, failing_since = now() - interval '1 hour', circuit_opened_at = now(), probe_interval_seconds = 10, next_probe_at = now() + interval '10 seconds' where webhook_id = $1",
      [hook.id],
    );
    const health = await admin.getEndpointHealth(hook.id);
    expect(health.state).toBe("circuit_open");
    expect(Date.parse(health.next_probe_at!) - Date.parse(health.circuit_opened_at!)).toBe(10_000);
  });

  it("nobody else sees it", async () => {
    const hook = await admin.createWebhook({ companyId: world.companyA, triggerType: "PROCESS_CREATED", url: "https://hooks.acme.test/private-health" });
    await expect(adminB.getEndpointHealth(hook.id)).rejects.toMatchObject({ kind: "not_found" });
    expect((await adminB.listEndpointHealth()).map((h) => h.company_id).filter((c) => c !== world.companyB)).toEqual([]);
    expect(await member.listEndpointHealth()).toEqual([]);
    const { error } = await world.anon.client.from("webhook_endpoint_health").select("*");
    expect(error?.code).toBe("42501");
  });

  it("PostgREST embeds the health in webhooks: select=*,webhook_endpoint_health(*)", async () => {
    const hook = await admin.createWebhook({ companyId: world.companyA, triggerType: "PROCESS_REVISED", url: "https://hooks.acme.test/embedded" });
    const { data, error } = await world.adminA.client.from("webhooks").select("*, webhook_endpoint_health(*)").eq("id", hook.id).single();
    expect(error).toBeNull();
    expect(data!.webhook_endpoint_health).toMatchObject({ webhook_id: hook.id, state: "healthy" });
  });
});

describe("endpoints listed with their health", () => {
  it("listWebhooksWithHealth gives each of your endpoints with its own health, and nobody else's", async () => {
    const hook = await admin.createWebhook({ companyId: world.companyA, triggerType: "WEBHOOK_TEST", url: "https://hooks.acme.test/listed-with-health" });
    await admin.sendTest(hook.id);
    await dispatch(hook.id, { status: 503 });
    const listed = await admin.listWebhooksWithHealth();
    expect(listed.find((w) => w.id === hook.id)).toMatchObject({
      url: "https://hooks.acme.test/listed-with-health",
      health: { webhook_id: hook.id, state: "failing", consecutive_failures: 1, last_status: 503 },
    });
    expect(listed.every((w) => w.company_id === world.companyA && w.health?.webhook_id === w.id)).toBe(true);
    expect((await adminB.listWebhooksWithHealth()).filter((w) => w.company_id !== world.companyB)).toEqual([]);
    expect(await member.listWebhooksWithHealth()).toEqual([]);
  });
});

describe("an endpoint's own cap through the client", () => {
  it("an ADMIN caps an endpoint's requests in flight; claims and the health view follow", async () => {
    const hook = await admin.createWebhook({ companyId: world.companyA, triggerType: "WEBHOOK_TEST", url: "https://hooks.acme.test/capped", maxConcurrentRequests: 3 });
    expect(hook.max_concurrent_requests).toBe(3);
    expect((await admin.getEndpointHealth(hook.id)).concurrency).toBe(3);
    for (let i = 0; i < 5; i++) await admin.sendTest(hook.id);
    const claimed = await db.query("select 1 from private.claim_due_deliveries('client-test', 1000, 60) where webhook_id = $1", [hook.id]);
    expect(claimed.rowCount).toBe(3);

    await expect(admin.updateWebhook(hook.id, { maxConcurrentRequests: 0 })).rejects.toMatchObject({
      kind: "invalid_input", code: "23514", constraint: "webhooks_max_concurrent_requests_range",
    });
    await expect(adminB.updateWebhook(hook.id, { maxConcurrentRequests: 1 })).rejects.toMatchObject({ kind: "not_found" });
    await expect(member.updateWebhook(hook.id, { maxConcurrentRequests: 1 })).rejects.toMatchObject({ kind: "not_found" });
    expect((await admin.getWebhook(hook.id)).max_concurrent_requests).toBe(3);

    expect((await admin.updateWebhook(hook.id, { maxConcurrentRequests: null })).max_concurrent_requests).toBeNull();
    expect((await admin.getEndpointHealth(hook.id)).concurrency).toBe(10);
  });

  it("an ADMIN limits an endpoint's request rate; claims follow, and nobody else can change it", async () => {
    const hook = await admin.createWebhook({ companyId: world.companyA, triggerType: "WEBHOOK_TEST", url: "https://hooks.acme.test/rated", maxRequestsPerSecond: 20 });
    expect(hook.max_requests_per_second).toBe(20);
    for (let i = 0; i < 5; i++) await admin.sendTest(hook.id);
    const claimed = await db.query("select 1 from private.claim_due_deliveries('client-test', 1000, 60) where webhook_id = $1", [hook.id]);
    expect(claimed.rowCount, "a tenth of a second of 20 a second").toBe(2);

    await expect(admin.updateWebhook(hook.id, { maxRequestsPerSecond: 10_001 })).rejects.toMatchObject({
      kind: "invalid_input", code: "23514", constraint: "webhooks_max_requests_per_second_range",
    });
    await expect(adminB.updateWebhook(hook.id, { maxRequestsPerSecond: 1 })).rejects.toMatchObject({ kind: "not_found" });
    expect((await admin.getWebhook(hook.id)).max_requests_per_second).toBe(20);
    expect((await admin.updateWebhook(hook.id, { maxRequestsPerSecond: null })).max_requests_per_second).toBeNull();
  });

  it("the health says when the endpoint's own limit holds deliveries back, to its ADMIN only", async () => {
    const hook = await admin.createWebhook({ companyId: world.companyA, triggerType: "WEBHOOK_TEST", url: "https://hooks.acme.test/slow-erp", maxRequestsPerSecond: 1 });
    for (let i = 0; i < 3; i++) await admin.sendTest(hook.id);
    expect((await admin.getEndpointHealth(hook.id)).held_back_by_own_limits, "a full bucket: nothing waits yet").toBe(false);
    const claimed = await db.query("select 1 from private.claim_due_deliveries('client-test', 1000, 60) where webhook_id = $1", [hook.id]);
    expect(claimed.rowCount, "a bucket of one").toBe(1);
    // The next token comes in a second: until then the other two wait for the ADMIN's rate.
    expect((await admin.getEndpointHealth(hook.id)).held_back_by_own_limits).toBe(true);
    await expect(adminB.getEndpointHealth(hook.id)).rejects.toMatchObject({ kind: "not_found" });
    await admin.updateWebhook(hook.id, { maxRequestsPerSecond: null });
    expect((await admin.getEndpointHealth(hook.id)).held_back_by_own_limits, "without the rate they may go now").toBe(false);
  });

  it("the health says when an endpoint waits for its company's share of requests, to its ADMIN only", async () => {
    const { rows: [{ company_concurrency: shareBefore }] } = await db.query("select company_concurrency from private.webhook_settings");
    // A share of one, and nothing else of the company pending (earlier tests leave deliveries
    // leased and due): the first endpoint's request is the company's only one.
    await db.query(
      `update public.webhook_deliveries set state = 'cancelled', next_attempt_at = null, completed_at = now(),
              lease_owner = null, lease_expires_at = null
        where company_id = $1 and state = 'pending'`,
      [world.companyA],
    );
    await db.query("update private.webhook_settings set company_concurrency = 1");
    try {
      const busy = await admin.createWebhook({ companyId: world.companyA, triggerType: "WEBHOOK_TEST", url: "https://hooks.acme.test/holds-the-share" });
      const hook = await admin.createWebhook({ companyId: world.companyA, triggerType: "WEBHOOK_TEST", url: "https://hooks.acme.test/waits-for-the-share" });
      await admin.sendTest(busy.id);
      const taken = await db.query("select webhook_id from private.claim_due_deliveries('client-test', 1000, 60) where webhook_id = $1", [busy.id]);
      expect(taken.rowCount, "the share of one goes to the first endpoint").toBe(1);
      await admin.sendTest(hook.id);
      expect((await admin.getEndpointHealth(hook.id)).waiting_for_company_share, "not turned away yet").toBe(false);
      const none = await db.query("select 1 from private.claim_due_deliveries('client-test', 1000, 60) where webhook_id = $1", [hook.id]);
      expect(none.rowCount, "the company's share is taken").toBe(0);
      expect((await admin.getEndpointHealth(hook.id)).waiting_for_company_share).toBe(true);
      expect((await admin.getEndpointHealth(busy.id)).waiting_for_company_share, "the endpoint holding it does not wait").toBe(false);
      await expect(adminB.getEndpointHealth(hook.id)).rejects.toMatchObject({ kind: "not_found" });
    } finally {
      await db.query("update private.webhook_settings set company_concurrency = $1", [shareBefore]);
    }
  });
});

describe("ordered delivery through the client", () => {
  it("an ADMIN creates an ordered webhook and switches it back to parallel", async () => {
    const hook = await admin.createWebhook({ companyId: world.companyA, triggerType: "PROCESS_REVISED", url: "https://hooks.acme.test/ordered", deliveryOrder: "ordered" });
    expect(hook.delivery_order).toBe("ordered");
    expect((await admin.updateWebhook(hook.id, { deliveryOrder: "parallel" })).delivery_order).toBe("parallel");
    await expect(admin.updateWebhook(hook.id, { deliveryOrder: "fifo" as never })).rejects.toMatchObject({ kind: "invalid_input", code: "23514" });
    expect((await admin.createWebhook({ companyId: world.companyA, triggerType: "PROCESS_REVISED", url: "https://hooks.acme.test/default" })).delivery_order).toBe("parallel");
  });

  it("lists which delivery each one waits for, and cancels the head to unblock its key", async () => {
    const hook = await admin.createWebhook({ companyId: world.companyA, triggerType: "PROCESS_CREATED", url: "https://hooks.acme.test/ordered-tests", deliveryOrder: "ordered" });
    // Three test events: no process, so they share the endpoint's own key and go one at a time.
    const first = await admin.sendTest(hook.id);
    const second = await admin.sendTest(hook.id);
    const third = await admin.sendTest(hook.id);

    const page = await admin.listDeliveries({ webhookId: hook.id });
    const waits = Object.fromEntries(page.items.map((d) => [d.id, d.waiting_for]));
    expect(waits).toEqual({ [first]: null, [second]: first, [third]: first });
    expect((await admin.getDelivery(third)).waiting_for).toBe(first);

    // The head keeps failing: the ADMIN cancels it, the next one goes.
    await dispatch(hook.id, { status: 500 });
    expect(await admin.cancelDelivery(first)).toBe(first);
    expect(await admin.getDelivery(first)).toMatchObject({ state: "cancelled", last_error: "cancelled by an admin" });
    expect((await admin.getDelivery(third)).waiting_for).toBe(second);
    expect(await dispatch(hook.id, { status: 200 })).toEqual([second]);

    await expect(admin.cancelDelivery(first)).rejects.toMatchObject({ kind: "already_ended", code: "55000" });
    await expect(admin.cancelDelivery(second)).rejects.toMatchObject({ kind: "already_ended" });
    await expect(adminB.cancelDelivery(third)).rejects.toMatchObject({ kind: "permission_denied", code: "42501" });
    expect((await admin.getDelivery(third)).state).toBe("pending");
  });
});
