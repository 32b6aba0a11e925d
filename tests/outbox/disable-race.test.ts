// Races between the business path and an ADMIN disabling or deleting an endpoint, on real
// connections. The business path takes no lock that an ADMIN editing an endpoint takes
// (the subscriber query reads the webhooks without FOR SHARE), so a disable never waits
// for a business transaction; a delivery that transaction commits after the disable still
// ends cancelled, at the next claim that looks at its endpoint, and is never claimed.
// A delete in progress is waited for (the delivery's foreign key needs the row), and a
// write that waited leaves out the endpoint the delete removed rather than fail.
import type pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { superuser } from "../support/world.ts";
import { claim, createCompany, createWebhook, impatientSession } from "../support/outbox.ts";

let setup: pg.Client;
let business: pg.Client;
let admin: pg.Client;
let companyId: string;
let adminId: string;

beforeAll(async () => {
  setup = await superuser();
  business = await superuser();
  admin = await impatientSession(1000);
  companyId = await createCompany(setup, "Race Inc");
  adminId = (await setup.query<{ id: string }>("select tests.create_user('admin@race.test', $1, 'ADMIN') as id", [companyId])).rows[0]!.id;
});
afterAll(async () => {
  await business?.query("rollback").catch(() => {});
  await setup?.query("delete from public.companies where id = $1", [companyId]);
  await setup?.query("delete from auth.users where id = $1", [adminId]);
  await Promise.all([setup?.end(), business?.end(), admin?.end()]);
});

/** The ADMIN's statement, as PostgREST runs it: their role and claims, in one transaction. */
async function asAdmin(sql: string, params: unknown[]) {
  await admin.query("begin");
  try {
    await admin.query("select tests.authenticate_as($1)", [adminId]);
    const result = await admin.query(sql, params);
    await admin.query("commit");
    return result;
  } catch (error) {
    await admin.query("rollback");
    throw error;
  }
}

const deliveriesOf = async (webhookId: string) =>
  (await setup.query("select id, state, last_error from public.webhook_deliveries where webhook_id = $1", [webhookId])).rows;

describe("disabling an endpoint while a business transaction fans out to it", () => {
  it("does not wait for that transaction, and what it commits ends cancelled, never claimed", async () => {
    const webhookId = await createWebhook(setup, companyId, "PROCESS_CREATED", "https://race.example/disable");
    await business.query("begin");
    await business.query("insert into public.processes (company_id, name) values ($1, 'In flight')", [companyId]);

    // The ADMIN's session gives up after 1 s of waiting on a lock: the disable must not need to.
    const disabled = await asAdmin("update public.webhooks set is_active = false where id = $1 returning is_active", [webhookId]);
    expect(disabled.rows).toEqual([{ is_active: false }]);

    await business.query("commit");
    const [committed] = await deliveriesOf(webhookId);
    expect(committed).toMatchObject({ state: "pending" }); // committed after the disable's cancel ran

    const claimed = await claim(setup, "race-check");
    expect(claimed.filter((c) => c.webhook_id === webhookId)).toEqual([]);
    expect(await deliveriesOf(webhookId)).toEqual([
      { id: committed.id, state: "cancelled", last_error: "endpoint disabled: disabled by an admin" },
    ]);
    expect((await claim(setup, "race-check-2")).filter((c) => c.delivery_id === committed.id)).toEqual([]);
  });
});

describe("deleting an endpoint while a business transaction fans out to it", () => {
  it("cancels what that transaction commits (the delete waits for it: its delivery references the row)", async () => {
    const webhookId = await createWebhook(setup, companyId, "PROCESS_CREATED", "https://race.example/delete");
    await business.query("begin");
    await business.query("insert into public.processes (company_id, name) values ($1, 'In flight too')", [companyId]);
    const delivery = (await business.query("select id from public.webhook_deliveries where webhook_id = $1", [webhookId])).rows[0].id;

    const deleting = (async () => {
      await admin.query("set lock_timeout = 0");
      try {
        return await asAdmin("delete from public.webhooks where id = $1 returning id", [webhookId]);
      } finally {
        await admin.query("set lock_timeout = 1000");
      }
    })();
    await new Promise((r) => setTimeout(r, 200));
    await business.query("commit");
    expect((await deleting).rowCount).toBe(1);

    const claimed = await claim(setup, "race-check-3");
    expect(claimed.filter((c) => c.delivery_id === delivery)).toEqual([]);
    const { rows } = await setup.query("select state, webhook_id, last_error from public.webhook_deliveries where id = $1", [delivery]);
    expect(rows).toEqual([{ state: "cancelled", webhook_id: webhookId, last_error: "endpoint deleted" }]);
  });
});

describe("a business transaction fanning out to an endpoint an ADMIN is deleting (not committed)", () => {
  it("waits for the delete, then commits, with deliveries to the endpoints that remain", async () => {
    const doomed = await createWebhook(setup, companyId, "PROCESS_CREATED", "https://race.example/doomed");
    const kept = await createWebhook(setup, companyId, "PROCESS_CREATED", "https://race.example/kept");
    await admin.query("begin");
    try {
      await admin.query("select tests.authenticate_as($1)", [adminId]);
      await admin.query("delete from public.webhooks where id = $1", [doomed]);

      let settled = false;
      const write = business
        .query("insert into public.processes (company_id, name) values ($1, 'Written during a delete') returning id", [companyId])
        .then((r) => r.rows[0].id as string, (e: Error) => e)
        .finally(() => (settled = true));
      await new Promise((r) => setTimeout(r, 200));
      expect(settled).toBe(false); // it waits for the delete, as the delivery's foreign key requires
      await admin.query("commit");

      // Before 20261129160300 it failed here: the delivery to the deleted endpoint broke the foreign key.
      const processId = await write;
      expect(processId).not.toBeInstanceOf(Error);
      const { rows } = await setup.query(
        `select d.webhook_id from public.webhook_deliveries d join public.webhook_events e on e.id = d.event_id
          where e.payload -> 'data' ->> 'process_id' = $1`,
        [processId],
      );
      expect(rows).toEqual([{ webhook_id: kept }]);
    } finally {
      await admin.query("rollback").catch(() => {});
    }
  });
});
