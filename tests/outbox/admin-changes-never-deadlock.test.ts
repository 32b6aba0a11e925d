// An ADMIN's change to their endpoints never deadlocks with a dispatcher recording for them
// (migration 20261129160200). A record locks the endpoints of its results in id order; here
// the dispatcher's session holds the first of them, as the record's first statement does
// (the test cannot pause inside the record, so it takes that lock itself). The ADMIN, signed
// in as PostgREST signs them in, then changes the endpoints in one statement that reaches
// them in the opposite order (the larger id first: an index scan by url, the larger id
// having the smaller url), or deletes the one the dispatcher holds. The record then completes, and so does the
// ADMIN's statement. Before the migration, every case here ended "deadlock detected" for the
// ADMIN after a second: the triggers locked each endpoint in the statement's order, and a
// delete held the webhooks row that the record's foreign-key check needed.
import type pg from "pg";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { superuser } from "../support/world.ts";
import { claim, type Claimed, createCompany, createWebhook, succeed, untilWaitingForALock } from "../support/outbox.ts";

let setup: pg.Client;
let admin: pg.Client;
let dispatcher: pg.Client;
let companyId: string;
let adminId: string;
let first: string; // the smaller id: what the dispatcher holds
let second: string; // the larger: what the ADMIN's statement reaches first
let claimed: Claimed[];
let adminPid: number;

beforeAll(async () => {
  setup = await superuser();
  admin = await superuser();
  dispatcher = await superuser();
  adminPid = (await admin.query("select pg_backend_pid() as pid")).rows[0].pid;
});
afterAll(async () => {
  await Promise.all([admin?.query("rollback").catch(() => {}), dispatcher?.query("rollback").catch(() => {})]);
  if (companyId) await setup?.query("delete from public.companies where id = $1", [companyId]);
  await Promise.all([setup?.end(), admin?.end(), dispatcher?.end()]);
});

beforeEach(async () => {
  if (companyId) await setup.query("delete from public.companies where id = $1", [companyId]);
  companyId = await createCompany(setup, "Bulk Edits Inc");
  adminId = (await setup.query("select tests.create_user($1, $2, 'ADMIN') as id", [`bulk-admin-${Date.now()}@example.com`, companyId])).rows[0].id;
  const a = await createWebhook(setup, companyId, "PROCESS_CREATED", "https://one.bulk.example/hook");
  const b = await createWebhook(setup, companyId, "PROCESS_CREATED", "https://two.bulk.example/hook");
  [first, second] = a < b ? [a, b] : [b, a];
  // The larger id gets the smaller url: a scan of the (company, trigger type, url) index
  // then reaches it first. (Physical order is no premise: an update may reuse an earlier slot.)
  await setup.query("update public.webhooks set url = 'https://a.bulk.example/hook' where id = $1", [second]);
  await setup.query("update public.webhooks set url = 'https://b.bulk.example/hook' where id = $1", [first]);
  await setup.query("select private.enqueue_webhook_event($1, 'PROCESS_CREATED', '{\"n\": 1}')", [companyId]);
  claimed = (await claim(dispatcher, "bulk-dispatcher")).filter((c) => c.webhook_id === first || c.webhook_id === second);
  expect(claimed).toHaveLength(2);
});

/** The ADMIN's statement, in an open transaction, visiting rows in url order (an index scan). */
async function startAsAdmin(sql: string): Promise<{ done: Promise<string> }> {
  await admin.query("begin");
  await admin.query("set local enable_seqscan = off; set local enable_bitmapscan = off");
  const order = await admin.query("select id from public.webhooks where company_id = $1", [companyId]);
  expect(order.rows.map((r) => r.id)).toEqual([second, first]); // the premise: the larger id comes first
  await admin.query(
    "select set_config('request.jwt.claims', $1, true), set_config('role', 'authenticated', true)",
    [JSON.stringify({ sub: adminId, role: "authenticated", aud: "authenticated" })],
  );
  const params = sql.includes("$2") ? [companyId, first] : [companyId];
  // Wrapped: an async function returning the promise itself would wait for it.
  return { done: admin.query(sql, params).then(() => "done", (e: Error) => e.message) };
}

/** The dispatcher holds `first` (as a record does after its first lock), the ADMIN runs `sql`, the record completes. */
async function raceRecordWith(sql: string): Promise<{ recorded: number; adminResult: string }> {
  try {
    await dispatcher.query("begin");
    await dispatcher.query("select 1 from private.webhook_endpoints where webhook_id = $1 for update", [first]);
    const adminStatement = await startAsAdmin(sql);
    await untilWaitingForALock(setup, adminPid, 2000, "the ADMIN's statement never waited for the dispatcher's lock");
    const recorded = await succeed(dispatcher, "bulk-dispatcher", claimed);
    await dispatcher.query("commit");
    const adminResult = await adminStatement.done;
    await admin.query(adminResult === "done" ? "commit" : "rollback");
    return { recorded, adminResult };
  } finally {
    // A failed step must not leave locks for the next case.
    await Promise.all([dispatcher.query("rollback").catch(() => {}), admin.query("rollback").catch(() => {})]);
  }
}

const states = async () =>
  (await setup.query("select state from public.webhook_deliveries where id = any ($1) order by id", [claimed.map((c) => c.delivery_id)])).rows.map((r) => r.state);

describe("an ADMIN's statement racing a record for the same endpoints", () => {
  it("disabling both: the record completes, then the disable", async () => {
    const r = await raceRecordWith("update public.webhooks set is_active = false where company_id = $1");
    expect(r).toEqual({ recorded: 2, adminResult: "done" });
    expect(await states()).toEqual(["succeeded", "succeeded"]);
    const hooks = await setup.query("select bool_or(is_active) as any_active from public.webhooks where company_id = $1", [companyId]);
    expect(hooks.rows[0].any_active).toBe(false);
  });

  it("a new url for both: the record completes, then the fresh start", async () => {
    const r = await raceRecordWith("update public.webhooks set url = url || '?v=2' where company_id = $1");
    expect(r).toEqual({ recorded: 2, adminResult: "done" });
    const ends = await setup.query(
      "select count(*)::int as n from private.webhook_endpoints where company_id = $1 and receiver_since is not null and last_success_at is null",
      [companyId],
    );
    expect(ends.rows[0].n).toBe(2); // the record's successes came first; the new receivers start afresh after them
  });

  it("deleting both: the record completes, then the delete", async () => {
    const r = await raceRecordWith("delete from public.webhooks where company_id = $1");
    expect(r).toEqual({ recorded: 2, adminResult: "done" });
    expect(await states()).toEqual(["succeeded", "succeeded"]);
    const left = await setup.query("select count(*)::int as n from public.webhooks where company_id = $1", [companyId]);
    expect(left.rows[0].n).toBe(0);
  });

  it("deleting the one the record holds: the record completes, then the delete", async () => {
    const r = await raceRecordWith("delete from public.webhooks where company_id = $1 and id = $2");
    expect(r).toEqual({ recorded: 2, adminResult: "done" });
    expect(await states()).toEqual(["succeeded", "succeeded"]);
    const left = await setup.query("select array_agg(id) as ids from public.webhooks where company_id = $1", [companyId]);
    expect(left.rows[0].ids).toEqual([second]);
  });
});
