// An active ADMIN of company A, through supabase-js, the real gateway and PostgREST,
// using the typed client module: full CRUD, delivery log, every admin RPC.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type pg from "pg";
import { createWebhooksClient, WebhooksError, type WebhooksClient } from "../../src/index.ts";
import { createWorld, superuser } from "../support/world.ts";

let db: pg.Client;
let world: Awaited<ReturnType<typeof createWorld>>;
let admin: WebhooksClient;

beforeAll(async () => {
  db = await superuser();
  world = await createWorld(db);
  admin = createWebhooksClient(world.adminA.client);
});
afterAll(async () => db?.end());

describe("ADMIN of company A", () => {
  it("creates, reads, updates, disables, enables and deletes a webhook", async () => {
    const created = await admin.createWebhook({
      companyId: world.companyA,
      triggerType: "PROCESS_REVISED",
      url: "https://hooks.acme.test/serial",
      description: "ERP sync",
    });
    expect(created).toMatchObject({ company_id: world.companyA, trigger_type: "PROCESS_REVISED", is_active: true });

    expect((await admin.listWebhooks()).map((w) => w.id)).toContain(created.id);
    expect(await admin.getWebhook(created.id)).toMatchObject({ description: "ERP sync" });

    const updated = await admin.updateWebhook(created.id, { url: "https://hooks.acme.test/v2", triggerType: "PROCESS_CREATED" });
    expect(updated).toMatchObject({ url: "https://hooks.acme.test/v2", trigger_type: "PROCESS_CREATED" });

    const disabled = await admin.disableWebhook(created.id);
    expect(disabled).toMatchObject({ is_active: false, disabled_reason: "disabled by an admin" });
    expect(await admin.listWebhooks({ isActive: false })).toHaveLength(1);
    const enabled = await admin.enableWebhook(created.id);
    expect(enabled).toMatchObject({ is_active: true, disabled_reason: null });

    await admin.deleteWebhook(created.id);
    const left = await db.query("select 1 from public.webhooks where id = $1", [created.id]);
    expect(left.rowCount).toBe(0);
    await expect(admin.getWebhook(created.id)).rejects.toMatchObject({ kind: "not_found" });
  });

  it("lists the trigger types", async () => {
    const names = (await admin.listTriggerTypes()).map((t) => t.name);
    expect(names).toEqual(expect.arrayContaining(["PROCESS_CREATED", "PROCESS_REVISED", "PROCESS_DELETED", "WEBHOOK_TEST"]));
  });

  it("sends a test event, sees the delivery and its attempts, redelivers, replays, reveals and rotates the secret", async () => {
    const hook = await admin.createWebhook({ companyId: world.companyA, triggerType: "PROCESS_CREATED", url: "https://hooks.acme.test/test" });

    const secret = await admin.revealSecret(hook.id);
    expect(secret).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
    const rotated = await admin.rotateSecret(hook.id);
    expect(rotated).toMatch(/^whsec_/);
    expect(rotated).not.toBe(secret);
    expect(await admin.revealSecret(hook.id)).toBe(rotated);

    const deliveryId = await admin.sendTest(hook.id);
    // The real dispatcher API records a failed, exhausted attempt (no dispatcher runs here).
    // A claim serves the longest-waiting endpoints first: deliveries earlier suites left due
    // come before this new endpoint's, so the claim is as large as a claim may be.
    const claimed = await db.query("select delivery_id from private.claim_due_deliveries('vitest', 1000, 60) where delivery_id = $1", [deliveryId]);
    expect(claimed.rowCount).toBe(1);
    await db.query(
      `select private.record_delivery_results('vitest', jsonb_build_array(jsonb_build_object(
         'delivery_id', $1::uuid, 'attempt_number', 1, 'outcome', 'failed', 'status', 500,
         'duration_ms', 12, 'response_body', 'boom', 'error', 'HTTP 500', 'next_attempt_at', null)), interval '5 days')`,
      [deliveryId],
    );

    const delivery = await admin.getDelivery(deliveryId);
    expect(delivery).toMatchObject({ id: deliveryId, state: "failed", webhook_id: hook.id, attempt_count: 1 });
    expect(delivery.event.trigger_type).toBe("WEBHOOK_TEST");
    expect(delivery.attempts).toHaveLength(1);
    expect(delivery.attempts[0]).toMatchObject({ status: 500, outcome: "failed", response_body: "boom" });

    const page = await admin.listDeliveries({ webhookId: hook.id, state: "failed" });
    expect(page).toMatchObject({ total: 1, nextOffset: null });
    expect(page.items[0]!.id).toBe(deliveryId);

    const again = await admin.redeliver(deliveryId);
    expect(again).not.toBe(deliveryId);
    const redelivered = await db.query("select state, redelivery_of from public.webhook_deliveries where id = $1", [again]);
    expect(redelivered.rows[0]).toEqual({ state: "pending", redelivery_of: deliveryId });

    // The redelivery is still pending, so the failed event is not lost: nothing to replay.
    expect(await admin.replay(hook.id, new Date(Date.now() - 3600_000))).toBe(0);
    await db.query("update public.webhook_deliveries set state = 'cancelled', next_attempt_at = null, completed_at = now() where id = $1", [again]);
    expect(await admin.replay(hook.id, new Date(Date.now() - 3600_000))).toBe(1);
  });

  it("pages through deliveries with filters", async () => {
    const hook = await admin.createWebhook({ companyId: world.companyA, triggerType: "WEBHOOK_TEST", url: "https://hooks.acme.test/paging" });
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push(await admin.sendTest(hook.id));

    const first = await admin.listDeliveries({ webhookId: hook.id, limit: 2 });
    expect(first.total).toBe(5);
    expect(first.items).toHaveLength(2);
    expect(first.nextOffset).toBe(2);
    const second = await admin.listDeliveries({ webhookId: hook.id, limit: 2, offset: 2 });
    const third = await admin.listDeliveries({ webhookId: hook.id, limit: 2, offset: 4 });
    expect(third.nextOffset).toBeNull();
    const seen = [...first.items, ...second.items, ...third.items].map((d) => d.id);
    expect(new Set(seen)).toEqual(new Set(ids));

    const future = await admin.listDeliveries({ webhookId: hook.id, since: new Date(Date.now() + 3600_000) });
    expect(future.total).toBe(0);
    const past = await admin.listDeliveries({ webhookId: hook.id, until: new Date(Date.now() + 3600_000), state: "pending" });
    expect(past.total).toBe(5);
    await expect(admin.listDeliveries({ limit: 0 })).rejects.toBeInstanceOf(WebhooksError);
    // A page of 1000 plus the look-ahead row would pass PostgREST's max_rows: never a silent last page.
    await expect(admin.listDeliveries({ limit: 501 })).rejects.toMatchObject({
      kind: "invalid_input",
      message: "list deliveries: limit must be an integer from 1 to 500, got 501",
    });
    expect((await admin.listDeliveries({ webhookId: hook.id, limit: 500 })).items.length).toBe(5);
    // Every failure is a WebhooksError, a bad date too.
    await expect(admin.listDeliveries({ since: new Date("not a date") })).rejects.toMatchObject({
      kind: "invalid_input",
      message: "list deliveries: since must be a valid date, got an Invalid Date",
    });
  });
});
