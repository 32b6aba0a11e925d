// Everyone who is not an active ADMIN of company A: ADMIN of B, MEMBER of A, deactivated
// ADMIN of A, a signed-in user with no Serial profile, and anon. They see none of A's
// rows, every write and RPC fails with a permission error, and the database (checked as
// superuser afterwards) is unchanged.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type pg from "pg";
import { createWebhooksClient } from "../../src/index.ts";
import { createWorld, superuser, type Actor } from "../support/world.ts";

let db: pg.Client;
let world: Awaited<ReturnType<typeof createWorld>>;
let hookId: string;
let deliveryId: string;
let snapshot: string;

async function snapshotOfA() {
  const { rows } = await db.query(
    `select jsonb_build_object(
       'webhooks', (select jsonb_agg(to_jsonb(w) order by w.id) from public.webhooks w where w.company_id = $1),
       'deliveries', (select jsonb_agg(to_jsonb(d) - 'updated_at' order by d.id) from public.webhook_deliveries d where d.company_id = $1),
       'secret', (select jsonb_agg(to_jsonb(s) order by s.webhook_id) from private.webhook_secrets s join public.webhooks w on w.id = s.webhook_id where w.company_id = $1)
     )::text as state`,
    [world.companyA],
  );
  return rows[0].state as string;
}

beforeAll(async () => {
  db = await superuser();
  world = await createWorld(db);
  const adminA = createWebhooksClient(world.adminA.client);
  const hook = await adminA.createWebhook({ companyId: world.companyA, triggerType: "PROCESS_REVISED", url: "https://hooks.acme.test/private" });
  hookId = hook.id;
  deliveryId = await adminA.sendTest(hook.id);
  snapshot = await snapshotOfA();
});
afterAll(async () => db?.end());

const outsiders = (): Actor[] => [world.adminB, world.memberA, world.inactiveAdminA, world.noProfile, world.anon];
const outsiderNames = ["admin-b", "member-a", "inactive-admin-a", "no-profile", "anon"];

describe.each(outsiderNames)("%s", (name) => {
  const actor = () => outsiders().find((a) => a.name === name)!;
  const permissionKinds = ["permission_denied", "unauthenticated"];

  it("sees none of company A's webhooks, events, deliveries or attempts", async () => {
    const client = actor().client;
    for (const table of ["webhooks", "webhook_events", "webhook_deliveries", "webhook_delivery_attempts"] as const) {
      const { data, error } = await client.from(table).select("*").eq("company_id", world.companyA);
      if (name === "anon") {
        // anon has no grant at all on these tables: PostgREST answers 401 permission denied.
        expect(error?.code).toBe("42501");
      } else {
        expect(error).toBeNull();
        expect(data).toEqual([]);
      }
    }
  });

  it("cannot create a webhook in company A", async () => {
    const api = createWebhooksClient(actor().client);
    const attempt = api.createWebhook({ companyId: world.companyA, triggerType: "PROCESS_CREATED", url: "https://evil.test/steal" });
    await expect(attempt).rejects.toMatchObject({ kind: expect.toSatisfy((k: string) => permissionKinds.includes(k)) });
  });

  it("cannot update, disable or delete company A's webhook", async () => {
    const api = createWebhooksClient(actor().client);
    // RLS hides the row: the update/delete matches nothing, which the client reports as not found
    // (anon has no privilege at all and gets a permission error).
    const expected = name === "anon" ? permissionKinds : ["not_found"];
    const isExpected = expect.toSatisfy((k: string) => expected.includes(k));
    await expect(api.updateWebhook(hookId, { url: "https://evil.test/steal" })).rejects.toMatchObject({ kind: isExpected });
    await expect(api.disableWebhook(hookId)).rejects.toMatchObject({ kind: isExpected });
    await expect(api.deleteWebhook(hookId)).rejects.toMatchObject({ kind: isExpected });
  });

  it("cannot call any admin RPC on company A's objects", async () => {
    const api = createWebhooksClient(actor().client);
    const isPermission = { kind: expect.toSatisfy((k: string) => permissionKinds.includes(k)), code: "42501" };
    await expect(api.sendTest(hookId)).rejects.toMatchObject(isPermission);
    await expect(api.redeliver(deliveryId)).rejects.toMatchObject(isPermission);
    await expect(api.replay(hookId, new Date(Date.now() - 60_000))).rejects.toMatchObject(isPermission);
    await expect(api.revealSecret(hookId)).rejects.toMatchObject(isPermission);
    await expect(api.rotateSecret(hookId)).rejects.toMatchObject(isPermission);
  });

  it("changed nothing in company A", async () => {
    expect(await snapshotOfA()).toBe(snapshot);
  });
});
