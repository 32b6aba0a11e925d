// On hosted Supabase a webhook url on port 25 or 587 is refused by the database
// (webhooks_url_port_blocked); through supabase-js and PostgREST the client module turns
// that into an invalid_url error that names the rule. Off hosted Supabase the port is fine.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type pg from "pg";
import { createWebhooksClient, type WebhooksClient } from "../../src/index.ts";
import { createWorld, superuser } from "../support/world.ts";

let db: pg.Client;
let world: Awaited<ReturnType<typeof createWorld>>;
let admin: WebhooksClient;

beforeAll(async () => {
  db = await superuser();
  world = await createWorld(db);
  admin = createWebhooksClient(world.adminA.client);
});
afterAll(async () => {
  await db?.query("update private.webhook_settings set hosted = false");
  await db?.end();
});

describe("webhook urls on ports hosted Supabase blocks", () => {
  it("hosted: port 25 and 587 are an invalid_url that names the rule, and nothing is created", async () => {
    await db.query("update private.webhook_settings set hosted = true");
    for (const url of ["https://mail.acme.test:25/in", "https://mail.acme.test:587/in"]) {
      const attempt = admin.createWebhook({ companyId: world.companyA, triggerType: "PROCESS_REVISED", url });
      await expect(attempt).rejects.toMatchObject({
        kind: "invalid_url",
        code: "23514",
        constraint: "webhooks_url_port_blocked",
        message: "create webhook: url must not use port 25 or 587 (hosted Supabase blocks them outbound)",
      });
    }
    const rows = await db.query("select 1 from public.webhooks where company_id = $1", [world.companyA]);
    expect(rows.rowCount).toBe(0);
  });

  it("not hosted: port 25 is an ordinary port", async () => {
    await db.query("update private.webhook_settings set hosted = false");
    const hook = await admin.createWebhook({ companyId: world.companyA, triggerType: "PROCESS_REVISED", url: "https://mail.acme.test:25/in" });
    expect(hook.url).toBe("https://mail.acme.test:25/in");
  });
});
