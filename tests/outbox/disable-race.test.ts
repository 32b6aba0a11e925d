// Races between the business path and an ADMIN disabling or deleting an endpoint, on real
// connections. The business path takes no lock that an ADMIN editing an endpoint takes
// (the subscriber query reads the webhooks without FOR SHARE), so a disable never waits
// for a business transaction; a delivery that transaction commits after the disable still
// ends cancelled, at the next claim that looks at its endpoint, and is never claimed.
// Nor does a write wait for a delete in progress (20261130210000): it commits at once, and
// what it created for the deleted endpoint ends cancelled at the next claim, never sent
// (or is delivered, if the delete rolls back); a delete of several endpoints, whatever
// order it locks them in, cannot deadlock with it.
import type pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { superuser } from "../support/world.ts";
import { claim, createCompany, createWebhook, impatientSession, sleep, untilWaitingForALock } from "../support/outbox.ts";

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
  // The delete does not wait for the write (the write locks nothing since 20261130210000),
  // so its cancel may run before the write commits: the claim that reads the delivery's
  // signal finds the endpoint gone and leaves a cancellation, which the next claim carries
  // out. Never sent either way.
  it("cancels what that transaction commits, never sending it", async () => {
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

    const claimed = [...(await claim(setup, "race-check-3")), ...(await claim(setup, "race-check-3"))];
    expect(claimed.filter((c) => c.delivery_id === delivery)).toEqual([]);
    const { rows } = await setup.query("select state, webhook_id, last_error from public.webhook_deliveries where id = $1", [delivery]);
    expect(rows).toEqual([{ state: "cancelled", webhook_id: webhookId, last_error: "endpoint deleted" }]);
  });
});

describe("a business transaction fanning out to an endpoint an ADMIN is deleting (not committed)", () => {
  /** The deliveries of the event a write of `processId` created, by endpoint. */
  const deliveriesOfProcess = async (processId: string) =>
    (await setup.query(
      `select d.webhook_id, d.state, d.last_error, d.attempt_count from public.webhook_deliveries d
         join public.webhook_events e on e.id = d.event_id
        where e.payload -> 'data' ->> 'process_id' = $1 order by d.webhook_id`,
      [processId],
    )).rows;

  it("never waits for the delete; what it created for the deleted endpoint ends cancelled, never sent", async () => {
    const company = await createCompany(setup, "Delete Race Inc");
    const admin2 = (await setup.query<{ id: string }>("select tests.create_user('admin@delete-race.test', $1, 'ADMIN') as id", [company])).rows[0]!.id;
    const doomed = await createWebhook(setup, company, "PROCESS_CREATED", "https://race.example/doomed");
    const kept = await createWebhook(setup, company, "PROCESS_CREATED", "https://race.example/kept");
    await admin.query("begin");
    try {
      await admin.query("select tests.authenticate_as($1)", [admin2]);
      await admin.query("delete from public.webhooks where id = $1", [doomed]);

      // The write completes while the delete is still open (the session's default lock wait is forever).
      const processId = (await business.query("insert into public.processes (company_id, name) values ($1, 'Written during a delete') returning id", [company])).rows[0].id as string;
      await admin.query("commit");

      const claimed = [...(await claim(setup, "race-check-4")), ...(await claim(setup, "race-check-4"))];
      expect(claimed.filter((c) => c.webhook_id === doomed)).toEqual([]);
      expect(claimed.filter((c) => c.webhook_id === kept)).toHaveLength(1);
      const rows = await deliveriesOfProcess(processId);
      expect(rows).toEqual(
        [
          { webhook_id: doomed, state: "cancelled", last_error: "endpoint deleted", attempt_count: 0 },
          { webhook_id: kept, state: "pending", last_error: null, attempt_count: 1 },
        ].sort((a, b) => a.webhook_id.localeCompare(b.webhook_id)),
      );
    } finally {
      await admin.query("rollback").catch(() => {});
      await setup.query("delete from public.companies where id = $1", [company]);
      await setup.query("delete from auth.users where id = $1", [admin2]);
    }
  });

  it("if the delete rolls back, the endpoint gets its delivery", async () => {
    const company = await createCompany(setup, "Delete Undone Inc");
    const hook = await createWebhook(setup, company, "PROCESS_CREATED", "https://race.example/undone");
    await admin.query("begin");
    try {
      await admin.query("delete from public.webhooks where id = $1", [hook]);
      const processId = (await business.query("insert into public.processes (company_id, name) values ($1, 'Written during an undone delete') returning id", [company])).rows[0].id as string;
      await admin.query("rollback");

      const claimed = await claim(setup, "race-check-5");
      expect(claimed.filter((c) => c.webhook_id === hook)).toHaveLength(1);
      expect(await deliveriesOfProcess(processId)).toEqual([{ webhook_id: hook, state: "pending", last_error: null, attempt_count: 1 }]);
    } finally {
      await admin.query("rollback").catch(() => {});
      await setup.query("delete from public.companies where id = $1", [company]);
    }
  });

  // A delete of several endpoints locks them in the order its scan reaches them. Here it
  // reaches the larger id first (an index scan by url, the larger id having the smaller
  // url), takes it, and waits for the smaller, which a third session holds FOR SHARE (a
  // lock a write's FOR KEY SHARE would not conflict with). Before 20261130210000, a write
  // then took the smaller id's key share and waited for the larger; when the third session
  // let go, the delete waited for the write: "deadlock detected" a second later.
  it("a write between a multi-endpoint delete's two locks neither waits nor deadlocks", async () => {
    const company = await createCompany(setup, "Bulk Delete Inc");
    const holder = await superuser();
    try {
      const a = await createWebhook(setup, company, "PROCESS_CREATED", "https://one.bulk-delete.example/hook");
      const b = await createWebhook(setup, company, "PROCESS_CREATED", "https://two.bulk-delete.example/hook");
      const [first, second] = a < b ? [a, b] : [b, a];
      await setup.query("update public.webhooks set url = 'https://a.bulk-delete.example/hook' where id = $1", [second]);
      await setup.query("update public.webhooks set url = 'https://b.bulk-delete.example/hook' where id = $1", [first]);

      await holder.query("begin");
      await holder.query("select 1 from public.webhooks where id = $1 for share", [first]);
      await admin.query("begin");
      await admin.query("set local lock_timeout = 0; set local enable_seqscan = off; set local enable_bitmapscan = off");
      const order = await admin.query("select id from public.webhooks where company_id = $1", [company]);
      expect(order.rows.map((r) => r.id)).toEqual([second, first]); // the premise: the larger id comes first
      const adminPid = (await admin.query("select pg_backend_pid() as pid")).rows[0].pid;
      const deleting = admin.query("delete from public.webhooks where company_id = $1", [company]).then((r) => r.rowCount, (e: Error) => e.message);
      await untilWaitingForALock(setup, adminPid, 2000, "the delete never waited for the first endpoint");

      let settled = false;
      const write = business
        .query("insert into public.processes (company_id, name) values ($1, 'Written between two locks') returning id", [company])
        .then((r) => r.rows[0].id as string, (e: Error) => e)
        .finally(() => (settled = true));
      for (let waited = 0; !settled && waited < 3000; waited += 20) await sleep(20);
      expect(settled, "the write completed while the delete held an endpoint it fans out to").toBe(true);
      const processId = await write;
      expect(processId).not.toBeInstanceOf(Error);

      await holder.query("commit");
      expect(await deleting).toBe(2);
      await admin.query("commit");
      await claim(setup, "race-check-6");
      await claim(setup, "race-check-6");
      expect((await deliveriesOfProcess(processId as string)).map((d) => [d.state, d.last_error, d.attempt_count])).toEqual([
        ["cancelled", "endpoint deleted", 0],
        ["cancelled", "endpoint deleted", 0],
      ]);
    } finally {
      await Promise.all([holder.query("rollback").catch(() => {}), admin.query("rollback").catch(() => {})]);
      await holder.end();
      await setup.query("delete from public.companies where id = $1", [company]);
    }
  });
});
