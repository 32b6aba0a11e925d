// The ADMIN RPCs that create deliveries (send a test, redeliver, replay) racing another
// ADMIN's delete of their endpoint (migration 20261130100100). Both ADMINs signed in as
// PostgREST signs them in, each in its own session:
// - the delete first, uncommitted: the RPC waits for it, then answers that the endpoint does
//   not exist, and creates nothing. Before the migration it failed on the deliveries'
//   foreign key ('violates foreign key constraint "webhook_deliveries_webhook_id_fkey"').
// - the RPC first, uncommitted: the delete waits for it, then cancels what it created (this
//   held before the migration too: the deliveries' foreign-key check took the same lock).
import type pg from "pg";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { superuser } from "../support/world.ts";
import { createCompany, createWebhook, untilWaitingForALock } from "../support/outbox.ts";

let setup: pg.Client;
let rpcAdmin: pg.Client;
let deleteAdmin: pg.Client;
let companyId: string;
let adminId: string;
let hook: string;
let earlier: string; // a failed delivery of the endpoint: what redeliver and replay send again

beforeAll(async () => {
  [setup, rpcAdmin, deleteAdmin] = await Promise.all([superuser(), superuser(), superuser()]);
});
afterAll(async () => {
  await Promise.all([rpcAdmin?.query("rollback").catch(() => {}), deleteAdmin?.query("rollback").catch(() => {})]);
  if (companyId) await setup?.query("delete from public.companies where id = $1", [companyId]);
  await Promise.all([setup?.end(), rpcAdmin?.end(), deleteAdmin?.end()]);
});

// A case that failed midway leaves its transactions open: end them before the next.
afterEach(async () => {
  await Promise.all([rpcAdmin.query("rollback"), deleteAdmin.query("rollback")]);
});

beforeEach(async () => {
  if (companyId) await setup.query("delete from public.companies where id = $1", [companyId]);
  companyId = await createCompany(setup, "Racing Admins Inc");
  adminId = (await setup.query("select tests.create_user($1, $2, 'ADMIN') as id", [`racing-admin-${Date.now()}@example.com`, companyId])).rows[0].id;
  hook = await createWebhook(setup, companyId, "PROCESS_CREATED", "https://racing.example/hook");
  await setup.query("select private.enqueue_webhook_event($1, 'PROCESS_CREATED', '{\"n\": 1}')", [companyId]);
  earlier = (await setup.query(
    `update public.webhook_deliveries
        set state = 'failed', next_attempt_at = null, completed_at = now(), last_error = 'HTTP 500'
      where webhook_id = $1 returning id`,
    [hook],
  )).rows[0].id;
});

/** Opens a transaction signed in as the company's ADMIN (authenticated, with their claims). */
async function signIn(session: pg.Client): Promise<void> {
  await session.query("begin");
  await session.query(
    "select set_config('request.jwt.claims', $1, true), set_config('role', 'authenticated', true)",
    [JSON.stringify({ sub: adminId, role: "authenticated", aud: "authenticated" })],
  );
}

/** Runs `sql` in `session` without waiting for it; the result is "done" or the error's message. */
function start(session: pg.Client, sql: string, params: unknown[]): { done: Promise<string> } {
  // Wrapped: an async function returning the promise itself would wait for it.
  return { done: session.query(sql, params).then(() => "done", (e: Error) => e.message) };
}

/** The other ADMIN's statement waits for this one's lock: the race's premise. */
function untilWaiting(session: pg.Client): Promise<void> {
  const pid = (session as unknown as { processID: number }).processID;
  return untilWaitingForALock(setup, pid, 3000, "the statement never waited for the other ADMIN's lock");
}

const rpcs: [string, string, () => unknown[]][] = [
  ["send_test_webhook", "select public.send_test_webhook($1)", () => [hook]],
  ["redeliver_webhook_delivery", "select public.redeliver_webhook_delivery($1)", () => [earlier]],
  ["replay_webhook_deliveries", "select public.replay_webhook_deliveries($1, now() - interval '1 hour')", () => [hook]],
];

describe("an ADMIN RPC racing another ADMIN's delete of its endpoint", () => {
  for (const [name, sql, params] of rpcs) {
    it(`${name} after a delete in progress: waits, then "does not exist", and creates nothing`, async () => {
      await signIn(deleteAdmin);
      await deleteAdmin.query("delete from public.webhooks where id = $1", [hook]);

      await signIn(rpcAdmin);
      const rpc = start(rpcAdmin, sql, params());
      await untilWaiting(rpcAdmin);
      await deleteAdmin.query("commit");

      expect(await rpc.done).toMatch(/^webhook [0-9a-f-]+ does not exist or you are not an active ADMIN of its company$/);
      await rpcAdmin.query("rollback");
      const { rows } = await setup.query(
        "select count(*)::int as n from public.webhook_deliveries where company_id = $1 and id <> $2",
        [companyId, earlier],
      );
      expect(rows[0].n).toBe(0);
    });
  }

  it("a delete after send_test_webhook in progress: waits for it, then cancels the test delivery", async () => {
    await signIn(rpcAdmin);
    const delivery = (await rpcAdmin.query("select public.send_test_webhook($1) as id", [hook])).rows[0].id;

    await signIn(deleteAdmin);
    const deletion = start(deleteAdmin, "delete from public.webhooks where id = $1", [hook]);
    await untilWaiting(deleteAdmin);
    await rpcAdmin.query("commit");
    expect(await deletion.done).toBe("done");
    await deleteAdmin.query("commit");

    const { rows } = await setup.query("select state, webhook_id from public.webhook_deliveries where id = $1", [delivery]);
    expect(rows).toEqual([{ state: "cancelled", webhook_id: hook }]);
  });
});
