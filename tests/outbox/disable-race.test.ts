// Races between the business path and an admin disabling an endpoint, on two real
// connections: a delivery created by a transaction that commits after the disable must
// end cancelled, never pending for a disabled endpoint.
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { superuser } from "../support/world.ts";

let setup: pg.Client;
let business: pg.Client;
let admin: pg.Client;
let companyId: string;
let webhookId: string;

beforeAll(async () => {
  setup = await superuser();
  business = await superuser();
  admin = await superuser();
  companyId = (await setup.query("insert into public.companies (name) values ('Race Inc') returning id")).rows[0].id;
  webhookId = (
    await setup.query("insert into public.webhooks (company_id, trigger_type, url) values ($1, 'PROCESS_CREATED', 'https://race.example/hook') returning id", [companyId])
  ).rows[0].id;
});
afterAll(async () => {
  await business?.query("rollback").catch(() => {});
  await setup?.query("delete from public.companies where id = $1", [companyId]);
  await Promise.all([setup?.end(), business?.end(), admin?.end()]);
});

describe("disabling an endpoint while a business transaction fans out to it", () => {
  it("waits for that transaction and cancels what it created", async () => {
    await business.query("begin");
    await business.query("insert into public.processes (company_id, name) values ($1, 'In flight')", [companyId]);

    // The admin's disable must wait for the business transaction (it holds the endpoint FOR SHARE).
    let disabled = false;
    const disabling = admin.query("update public.webhooks set is_active = false where id = $1", [webhookId]).then(() => (disabled = true));
    await new Promise((r) => setTimeout(r, 300));
    expect(disabled).toBe(false);

    await business.query("commit");
    await disabling;

    const { rows } = await setup.query("select state, last_error from public.webhook_deliveries where webhook_id = $1", [webhookId]);
    expect(rows).toEqual([{ state: "cancelled", last_error: "endpoint disabled: disabled by an admin" }]);
    const claimed = await setup.query("select count(*)::int as n from private.claim_due_deliveries('race-check', 1000, 60) where webhook_id = $1", [webhookId]);
    expect(claimed.rows[0].n).toBe(0);
  });
});

