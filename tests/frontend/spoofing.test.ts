// An ADMIN of company A trying to reach past their company or past the rules: a webhook
// for company B, moving a webhook to B, bad URLs, unknown trigger types. Clear errors,
// and no row changes anywhere.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type pg from "pg";
import { createWebhooksClient, type WebhooksClient } from "../../src/index.ts";
import { createWorld, superuser } from "../support/world.ts";

let db: pg.Client;
let world: Awaited<ReturnType<typeof createWorld>>;
let admin: WebhooksClient;
let hookId: string;

const countAll = async () =>
  Number((await db.query("select count(*) from public.webhooks where company_id in ($1, $2)", [world.companyA, world.companyB])).rows[0].count);

beforeAll(async () => {
  db = await superuser();
  world = await createWorld(db);
  admin = createWebhooksClient(world.adminA.client);
  hookId = (await admin.createWebhook({ companyId: world.companyA, triggerType: "PROCESS_CREATED", url: "https://hooks.acme.test/mine" })).id;
});
afterAll(async () => db?.end());

describe("spoofing and bad input through the API", () => {
  it("refuses a webhook for another company", async () => {
    const before = await countAll();
    await expect(
      admin.createWebhook({ companyId: world.companyB, triggerType: "PROCESS_CREATED", url: "https://evil.test/b" }),
    ).rejects.toMatchObject({ kind: "permission_denied", code: "42501", message: expect.stringMatching(/row-level security/) });
    expect(await countAll()).toBe(before);
  });

  it("refuses to move a webhook to another company", async () => {
    const { error } = await world.adminA.client.from("webhooks").update({ company_id: world.companyB }).eq("id", hookId);
    expect(error?.code).toBe("42501");
    const row = await db.query("select company_id from public.webhooks where id = $1", [hookId]);
    expect(row.rows[0].company_id).toBe(world.companyA);
  });

  it.each([
    ["ftp://hooks.acme.test/x", "webhooks_url_scheme"],
    ["hooks.acme.test/x", "webhooks_url_scheme"],
    ["https://user:pw@hooks.acme.test/x", "webhooks_url_no_credentials"],
    ["https://hooks.acme.test/x#frag", "webhooks_url_no_fragment"],
    [`https://hooks.acme.test/${"a".repeat(2040)}`, "webhooks_url_length"],
    ["https://hooks acme.test/x", "webhooks_url_wellformed"],
  ])("refuses the bad url %s with a readable invalid_url error", async (url, constraint) => {
    const before = await countAll();
    const attempt = admin.createWebhook({ companyId: world.companyA, triggerType: "PROCESS_REVISED", url });
    await expect(attempt).rejects.toMatchObject({ kind: "invalid_url", constraint });
    // In the database's words: the comment on the constraint that refused it.
    const { rows: [{ rule }] } = await db.query(
      "select obj_description(oid, 'pg_constraint') as rule from pg_constraint where conrelid = 'public.webhooks'::regclass and conname = $1",
      [constraint],
    );
    expect(rule).toMatch(/^url must/);
    await expect(attempt).rejects.toThrow(`create webhook: ${rule}`);
    expect(await countAll()).toBe(before);
  });

  it("refuses an unknown trigger type, distinguishably", async () => {
    const before = await countAll();
    await expect(
      admin.createWebhook({ companyId: world.companyA, triggerType: "PROCESS_EXPLODED", url: "https://hooks.acme.test/x" }),
    ).rejects.toMatchObject({ kind: "unknown_trigger_type", code: "23503" });
    await expect(admin.updateWebhook(hookId, { triggerType: "NOPE" })).rejects.toMatchObject({ kind: "unknown_trigger_type" });
    expect(await countAll()).toBe(before);
  });

  it("refuses a duplicate", async () => {
    await expect(
      admin.createWebhook({ companyId: world.companyA, triggerType: "PROCESS_CREATED", url: "https://hooks.acme.test/mine" }),
    ).rejects.toMatchObject({ kind: "duplicate", code: "23505" });
  });

  it("refuses to write the bookkeeping columns the database owns", async () => {
    const { error } = await world.adminA.client.from("webhooks").update({ disabled_reason: "x", disabled_at: new Date().toISOString() }).eq("id", hookId);
    expect(error?.code).toBe("42501");
  });

  it("refuses to write the endpoint health the dispatcher keeps", async () => {
    const health = world.adminA.client.from("webhook_endpoint_health") as unknown as {
      update(row: Record<string, unknown>): { eq(column: string, value: string): PromiseLike<{ error: { code: string } | null }> };
    };
    const { error } = await health.update({ consecutive_failures: 0, failing_since: null }).eq("webhook_id", hookId);
    expect(error?.code).toBe("55000"); // cannot update view "webhook_endpoint_health": it is read-only
  });
});
