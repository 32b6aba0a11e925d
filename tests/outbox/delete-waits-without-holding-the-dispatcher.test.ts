// An ADMIN's delete that waits for another transaction holds up no dispatcher (migration
// 20261130150000). A delete of an endpoint waits for whatever holds its webhooks row: an
// ADMIN RPC's FOR KEY SHARE (test, redeliver, replay) or another ADMIN's edit, until that
// transaction ends; until 20261130210000, also every business write fanning out to it,
// for as long as the write lasted (an import can take minutes). Before 20261130150000, the
// delete locked every endpoint of its company first, so a record carrying a result for
// another endpoint of that company waited as long too, and with it every tenant whose
// results were in the same record call. Here a long transaction writes and holds the
// endpoint's row, and the record must complete while it is still open; the dispatcher's
// session gives up on any lock wait after a second (55P03), so a record that waits fails
// the test instead of hanging it.
import type pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { superuser } from "../support/world.ts";
import { claim, createCompany, createWebhook, impatientSession, succeed, untilWaitingForALock } from "../support/outbox.ts";

let setup: pg.Client;
let business: pg.Client;
let admin: pg.Client;
let dispatcher: pg.Client;
let companyId: string;

beforeAll(async () => {
  [setup, business, admin] = await Promise.all([superuser(), superuser(), superuser()]);
  dispatcher = await impatientSession(1000);
});
afterAll(async () => {
  await Promise.all([business, admin, dispatcher].map((s) => s?.query("rollback").catch(() => {})));
  if (companyId) await setup?.query("delete from public.companies where id = $1", [companyId]);
  await Promise.all([setup, business, admin, dispatcher].map((s) => s?.end()));
});

describe("an ADMIN's delete waiting for a long write", () => {
  it("does not make a record for another endpoint of the company wait", async () => {
    companyId = await createCompany(setup, "Long Imports GmbH");
    const adminId = (await setup.query("select tests.create_user($1, $2, 'ADMIN') as id", [`import-admin-${Date.now()}@example.com`, companyId])).rows[0].id;
    const doomed = await createWebhook(setup, companyId, "PROCESS_CREATED", "https://doomed.imports.example/hook");
    const busy = await createWebhook(setup, companyId, "PROCESS_CREATED", "https://busy.imports.example/hook");
    await setup.query("select private.enqueue_webhook_event($1, 'PROCESS_CREATED', '{\"n\": 1}')", [companyId]);
    const inFlight = (await claim(dispatcher, "import-dispatcher")).filter((c) => c.webhook_id === busy);
    expect(inFlight).toHaveLength(1);

    // A long transaction: it fans out to both endpoints, holds the doomed endpoint's row as
    // an ADMIN RPC does (FOR KEY SHARE, private.require_active), and stays open.
    await business.query("begin");
    await business.query("select private.enqueue_webhook_event($1, 'PROCESS_CREATED', '{\"n\": 2}')", [companyId]);
    await business.query("select 1 from public.webhooks where id = $1 for key share", [doomed]);

    // The ADMIN deletes one endpoint, as PostgREST runs it: it waits for that transaction.
    const adminPid = (await admin.query("select pg_backend_pid() as pid")).rows[0].pid;
    await admin.query("begin");
    await admin.query(
      "select set_config('request.jwt.claims', $1, true), set_config('role', 'authenticated', true)",
      [JSON.stringify({ sub: adminId, role: "authenticated", aud: "authenticated" })],
    );
    const deleted = admin.query("delete from public.webhooks where id = $1", [doomed]).then((r) => r.rowCount, (e: Error) => e.message);
    await untilWaitingForALock(setup, adminPid, 2000, "the delete never waited for the open transaction");

    // Meanwhile the dispatcher records the other endpoint's result.
    const recorded = await succeed(dispatcher, "import-dispatcher", inFlight).catch((e: Error) => e.message);
    expect(recorded, "the record completed while the delete was waiting").toBe(1);

    // That transaction commits; the delete goes through and cancels what it created for the endpoint.
    await business.query("commit");
    expect(await deleted).toBe(1);
    await admin.query("commit");
    const { rows } = await setup.query(
      "select state::text, count(*)::int as n from public.webhook_deliveries where webhook_id = $1 group by 1 order by 1",
      [doomed],
    );
    expect(rows).toEqual([{ state: "cancelled", n: 2 }]);
    const endpointRows = await setup.query("select 1 from private.webhook_endpoints where webhook_id = $1", [doomed]);
    expect(endpointRows.rowCount, "the endpoint's scheduling row went with it").toBe(0);
  });
});
