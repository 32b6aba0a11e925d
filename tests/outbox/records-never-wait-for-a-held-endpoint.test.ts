// A record never waits for an endpoint's row (20261203090000). The dispatcher makes one
// database call at a time, carrying every tenant's results: while someone else holds one
// endpoint's row (an ADMIN's or a backend's uncommitted change to it, a delete), the record
// writes every other result at once and keeps that endpoint's for later; the next claim
// after the row is free records them, as the worker that sent them. The dispatcher's
// session has a lock_timeout, so a wait fails the test (55P03) rather than slowing it.
import type pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { superuser } from "../support/world.ts";
import { type Claimed, claim, createCompany, createWebhook, impatientSession, succeed } from "../support/outbox.ts";

let setup: pg.Client;
let holder: pg.Client;
let dispatcher: pg.Client;
let heldCompany: string;
let otherCompany: string;

beforeAll(async () => {
  setup = await superuser();
  holder = await superuser();
  dispatcher = await impatientSession(300);
  heldCompany = await createCompany(setup, "Held Endpoint Inc");
  otherCompany = await createCompany(setup, "Other Tenant Inc");
});
afterAll(async () => {
  await holder?.query("rollback").catch(() => {});
  await setup?.query("delete from public.companies where id = any ($1::uuid[])", [[heldCompany, otherCompany]]);
  await Promise.all([setup?.end(), holder?.end(), dispatcher?.end()]);
});

async function enqueue(companyId: string, triggerType: string, n: number): Promise<void> {
  await setup.query(
    "select count(private.enqueue_webhook_event($1, $2, jsonb_build_object('n', n))) from generate_series(1, $3::integer) n",
    [companyId, triggerType, n],
  );
}

/** Two endpoints of two tenants, two deliveries each, all claimed by `worker`. */
async function twoTenantsClaimed(worker: string, tag: string) {
  const held = await createWebhook(setup, heldCompany, "PROCESS_CREATED", `https://held.example/${tag}`);
  const other = await createWebhook(setup, otherCompany, "PROCESS_CREATED", `https://other.example/${tag}`);
  await enqueue(heldCompany, "PROCESS_CREATED", 2);
  await enqueue(otherCompany, "PROCESS_CREATED", 2);
  const claimed = (await claim(dispatcher, worker)).filter((c) => c.webhook_id === held || c.webhook_id === other);
  expect(claimed).toHaveLength(4);
  return { held, other, claimed, ofHeld: claimed.filter((c) => c.webhook_id === held), ofOther: claimed.filter((c) => c.webhook_id === other) };
}

/** A backend's change to the endpoint, not committed: its trigger holds the endpoint's row. */
async function holdEndpointRow(webhookId: string): Promise<void> {
  await holder.query("begin");
  await holder.query("update public.webhooks set max_concurrent_requests = 7 where id = $1", [webhookId]);
  // Premise: the row is held (a third session cannot take it).
  await setup.query("begin");
  try {
    await expect(setup.query("select 1 from private.webhook_endpoints where webhook_id = $1 for update nowait", [webhookId]))
      .rejects.toMatchObject({ code: "55P03" });
  } finally {
    await setup.query("rollback");
  }
}

async function deliveries(ids: string[]) {
  return (await setup.query<{ id: string; state: string; lease_owner: string | null }>(
    "select id, state::text, lease_owner from public.webhook_deliveries where id = any ($1::uuid[]) order by id",
    [ids],
  )).rows;
}

async function attempts(ids: string[]) {
  return (await setup.query<{ delivery_id: string; attempt_number: number; worker: string }>(
    "select delivery_id, attempt_number, worker from public.webhook_delivery_attempts where delivery_id = any ($1::uuid[]) order by delivery_id",
    [ids],
  )).rows;
}

async function kept(webhookId: string) {
  return (await setup.query<{ delivery_id: string; worker: string }>(
    "select delivery_id, worker from private.webhook_deferred_results where webhook_id = $1 order by delivery_id",
    [webhookId],
  )).rows;
}

const ids = (cs: Claimed[]) => cs.map((c) => c.delivery_id);

describe("a record while another session holds one endpoint's row", () => {
  it("records every other result at once, keeps the held endpoint's, and the next claim after the holder ends records them", async () => {
    const { held, claimed, ofHeld, ofOther } = await twoTenantsClaimed("recorder", "keep");
    await holdEndpointRow(held);
    try {
      // Without waiting (lock_timeout 300 ms): the other tenant's two move now.
      expect(await succeed(dispatcher, "recorder", claimed)).toBe(2);
      expect((await deliveries(ids(ofOther))).map((d) => d.state)).toEqual(["succeeded", "succeeded"]);
      expect(await attempts(ids(ofOther))).toHaveLength(2);
      // The held endpoint's: still in flight, not logged yet, kept once each.
      expect(await deliveries(ids(ofHeld))).toEqual(
        [...ofHeld].sort((a, b) => a.delivery_id.localeCompare(b.delivery_id)).map((c) => ({ id: c.delivery_id, state: "pending", lease_owner: "recorder" })),
      );
      expect(await attempts(ids(ofHeld))).toEqual([]);
      expect((await kept(held)).map((k) => k.worker)).toEqual(["recorder", "recorder"]);

      // Written again (a connection lost the answer): still kept once, nothing moves twice.
      expect(await succeed(dispatcher, "recorder", claimed)).toBe(0);
      expect(await kept(held)).toHaveLength(2);

      // A claim while the row is still held: neither waits nor takes the kept ones.
      expect((await claim(dispatcher, "another-worker")).filter((c) => c.webhook_id === held)).toEqual([]);
      expect(await kept(held)).toHaveLength(2);
    } finally {
      await holder.query("commit");
    }

    // The holder is gone: a claim (any worker's) records them first, as "recorder".
    expect((await claim(dispatcher, "another-worker")).filter((c) => c.webhook_id === held)).toEqual([]);
    expect((await deliveries(ids(ofHeld))).map((d) => d.state)).toEqual(["succeeded", "succeeded"]);
    expect((await attempts(ids(ofHeld))).map((a) => [a.attempt_number, a.worker])).toEqual([[1, "recorder"], [1, "recorder"]]);
    expect(await kept(held)).toEqual([]);
    // The holder's change went through.
    const cap = await setup.query("select max_concurrent_requests from public.webhooks where id = $1", [held]);
    expect(cap.rows[0].max_concurrent_requests).toBe(7);
  });

  it("a kept result is recorded before the claim that comes for its delivery once the lease ran out: it is not sent again", async () => {
    const { held, claimed, ofHeld } = await twoTenantsClaimed("late-recorder", "lease");
    await holdEndpointRow(held);
    try {
      await succeed(dispatcher, "late-recorder", claimed);
      expect(await kept(held)).toHaveLength(2);
    } finally {
      await holder.query("rollback");
    }
    // The leases ran out meanwhile: due again, as a claim would see them.
    await setup.query(
      "update public.webhook_deliveries set lease_expires_at = now() - interval '1 second', next_attempt_at = now() - interval '1 second' where id = any ($1::uuid[])",
      [ids(ofHeld)],
    );
    const again = (await claim(dispatcher, "second-worker")).filter((c) => c.webhook_id === held);
    expect(again).toEqual([]);
    expect((await deliveries(ids(ofHeld))).map((d) => d.state)).toEqual(["succeeded", "succeeded"]);
    expect(await attempts(ids(ofHeld))).toHaveLength(2);
  });

  it("a result kept while the endpoint was being deleted is logged once the delete commits", async () => {
    const { held, claimed, ofHeld } = await twoTenantsClaimed("deleting-recorder", "delete");
    await holder.query("begin");
    await holder.query("delete from public.webhooks where id = $1", [held]);
    try {
      expect(await succeed(dispatcher, "deleting-recorder", claimed)).toBe(2);
      expect(await kept(held)).toHaveLength(2);
    } finally {
      await holder.query("commit");
    }
    await claim(dispatcher, "after-delete");
    expect(await kept(held)).toEqual([]);
    // The attempts happened and are logged; the delete had cancelled the deliveries.
    expect(await attempts(ids(ofHeld))).toHaveLength(2);
    expect((await deliveries(ids(ofHeld))).map((d) => d.state)).toEqual(["cancelled", "cancelled"]);
  });

  it("a release skips the held endpoint's deliveries (their leases run out) and releases the others, without waiting", async () => {
    const { held, ofHeld, ofOther } = await twoTenantsClaimed("releaser", "release");
    await holdEndpointRow(held);
    try {
      const released = await dispatcher.query("select private.release_deliveries('releaser', $1::uuid[]) as n", [[...ids(ofHeld), ...ids(ofOther)]]);
      expect(released.rows[0].n).toBe(2);
      expect((await deliveries(ids(ofOther))).map((d) => d.lease_owner)).toEqual([null, null]);
      expect((await deliveries(ids(ofHeld))).map((d) => d.lease_owner)).toEqual(["releaser", "releaser"]);
    } finally {
      await holder.query("rollback");
    }
  });
});
