// What the client module adds for the portal, through supabase-js, the real gateway and
// PostgREST: keyset pages of the deliveries log (exact at timestamp ties), the trigger-type
// filter, per-endpoint stats, hourly outcomes, the replay dry run and the access check;
// and that outsiders get nothing from any of them.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type pg from "pg";
import { createWebhooksClient, type DeliveryListItem, type WebhooksClient } from "../../src/index.ts";
import { encodeDeliveryCursor } from "../../src/cursor.ts";
import { clientWithToken, createWorld, signToken, superuser, userClaims } from "../support/world.ts";

let db: pg.Client;
let world: Awaited<ReturnType<typeof createWorld>>;
let admin: WebhooksClient;
let hookA: string;
let hookB: string;
let testIds: string[];

beforeAll(async () => {
  db = await superuser();
  world = await createWorld(db);
  admin = createWebhooksClient(world.adminA.client);
  hookA = (await admin.createWebhook({ companyId: world.companyA, triggerType: "PROCESS_CREATED", url: "https://hooks.acme.test/log" })).id;
  hookB = (await createWebhooksClient(world.adminB.client).createWebhook({ companyId: world.companyB, triggerType: "PROCESS_CREATED", url: "https://hooks.bolt.test/log" })).id;
  // 7 events fanned out in ONE statement (they share created_at, so only the id orders
  // them), 5 test events one by one, and B's own rows beside them.
  await db.query(
    `select private.enqueue_webhook_event($1, 'PROCESS_CREATED', jsonb_build_object('n', g)) from generate_series(1, 7) g`,
    [world.companyA],
  );
  testIds = [];
  for (let i = 0; i < 5; i++) testIds.push(await admin.sendTest(hookA));
  await db.query(`select private.enqueue_webhook_event($1, 'PROCESS_CREATED', '{}') from generate_series(1, 3)`, [world.companyB]);
});
afterAll(async () => db?.end());

async function allPages(client: WebhooksClient, filter: Parameters<WebhooksClient["listDeliveries"]>[0]) {
  const seen: DeliveryListItem[] = [];
  let after: string | undefined;
  for (let guard = 0; guard < 50; guard++) {
    const page = await client.listDeliveries({ ...filter, after, count: false });
    expect(page.total).toBeNull();
    if (after) expect(page.nextOffset).toBeNull(); // a keyset page has no offset
    seen.push(...page.items);
    if (!page.nextCursor) return seen;
    after = page.nextCursor;
  }
  throw new Error("pagination did not end");
}

describe("the deliveries log, keyset pages", () => {
  it("walks every row exactly once, newest first, also across rows that share a timestamp", async () => {
    const { rows } = await db.query<{ id: string }>(
      "select id from public.webhook_deliveries where webhook_id = $1 order by created_at desc, id desc",
      [hookA],
    );
    expect(rows).toHaveLength(12);
    const tied = await db.query("select count(distinct created_at)::int as n from public.webhook_deliveries where webhook_id = $1 and event_id in (select id from public.webhook_events where trigger_type = 'PROCESS_CREATED')", [hookA]);
    expect(tied.rows[0].n).toBe(1); // the 7 fan-out rows really share one created_at

    for (const limit of [1, 2, 3, 5, 50]) {
      const seen = await allPages(admin, { webhookId: hookA, limit, companyId: world.companyA });
      expect(seen.map((d) => d.id), `limit ${limit}`).toEqual(rows.map((r) => r.id));
    }
  });

  it("filters by trigger type and carries each row's trigger type", async () => {
    const tests = await allPages(admin, { webhookId: hookA, triggerType: "WEBHOOK_TEST", limit: 2 });
    expect(new Set(tests.map((d) => d.id))).toEqual(new Set(testIds));
    expect(new Set(tests.map((d) => d.trigger_type))).toEqual(new Set(["WEBHOOK_TEST"]));
    const created = await admin.listDeliveries({ webhookId: hookA, triggerType: "PROCESS_CREATED" });
    expect(created.total).toBe(7);
    expect(created.items.every((d) => d.trigger_type === "PROCESS_CREATED")).toBe(true);
  });

  it("still counts and offsets when asked to (the existing behaviour)", async () => {
    const page = await admin.listDeliveries({ webhookId: hookA, limit: 5, offset: 5 });
    expect(page).toMatchObject({ total: 12, nextOffset: 10 });
    expect(page.nextCursor).toEqual(expect.any(String));
  });

  it("refuses a cursor it did not make, and after together with offset", async () => {
    await expect(admin.listDeliveries({ after: "bm90IGEgY3Vyc29y" })).rejects.toMatchObject({ kind: "invalid_input" });
    await expect(admin.listDeliveries({ after: "x);drop--" })).rejects.toMatchObject({ kind: "invalid_input" });
    const cursor = encodeDeliveryCursor({ created_at: new Date().toISOString(), id: testIds[0]! });
    await expect(admin.listDeliveries({ after: cursor, offset: 2 })).rejects.toMatchObject({ kind: "invalid_input" });
  });

  it("gives another company's ADMIN nothing, whatever they pass (ids, company, cursor)", async () => {
    const adminB = createWebhooksClient(world.adminB.client);
    const cursor = encodeDeliveryCursor({ created_at: new Date(Date.now() + 60_000).toISOString(), id: testIds[0]! });
    const page = await adminB.listDeliveries({ webhookId: hookA, companyId: world.companyA, after: cursor });
    expect(page.items).toEqual([]);
    const own = await adminB.listDeliveries({});
    expect(own.items.length).toBe(3);
    expect(own.items.every((d) => d.company_id === world.companyB)).toBe(true);
  });
});

describe("stats, hourly outcomes, the replay dry run", () => {
  it("counts the company's endpoints' deliveries of the last 24 h", async () => {
    const stats = await admin.endpointStats();
    const mine = stats.find((s) => s.webhook_id === hookA);
    expect(mine).toMatchObject({ deliveries: 12, pending: 12, succeeded: 0, success_rate: null });
    expect(stats.some((s) => s.webhook_id === hookB)).toBe(false);

    const hours = await admin.deliveriesPerHour({ webhookId: hookA });
    expect(hours.reduce((n, h) => n + h.pending, 0)).toBe(12);
    expect(await admin.deliveriesPerHour({ webhookId: hookB })).toEqual([]);
  });

  it("counts what a replay would resend, and refuses another company's endpoint", async () => {
    await db.query("update public.webhook_deliveries set state = 'failed', next_attempt_at = null, completed_at = now() where id = any($1)", [testIds.slice(0, 2)]);
    expect(await admin.countReplayable(hookA, new Date(Date.now() - 3600_000))).toBe(2);
    await expect(createWebhooksClient(world.adminB.client).countReplayable(hookA, new Date(Date.now() - 3600_000)))
      .rejects.toMatchObject({ kind: "permission_denied" });
  });
});

describe("the access check", () => {
  it("answers the company for an ADMIN, null for the rest, and unauthenticated without a valid token", async () => {
    expect(await admin.adminCompanyId()).toBe(world.companyA);
    expect(await createWebhooksClient(world.adminB.client).adminCompanyId()).toBe(world.companyB);
    expect(await createWebhooksClient(world.memberA.client).adminCompanyId()).toBeNull();
    expect(await createWebhooksClient(world.inactiveAdminA.client).adminCompanyId()).toBeNull();
    expect(await createWebhooksClient(world.noProfile.client).adminCompanyId()).toBeNull();
    await expect(createWebhooksClient(world.anon.client).adminCompanyId()).rejects.toMatchObject({ kind: "unauthenticated" });
    const expired = clientWithToken(await signToken(userClaims(world.adminA.userId!), { expiresIn: -60 }));
    await expect(createWebhooksClient(expired).adminCompanyId()).rejects.toMatchObject({ kind: "unauthenticated" });
  });
});
