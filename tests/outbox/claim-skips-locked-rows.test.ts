// Claims never wait for each other or for anyone holding a row: on real connections, a
// claim skips a delivery row another session holds and returns the other due rows, and
// skips an endpoint another open claim holds and serves the other endpoints. "Without
// waiting" is enforced: the claiming session has a lock_timeout, so a claim that would
// wait fails (55P03) instead of passing slowly.
import type pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { superuser } from "../support/world.ts";
import { claim, createCompany, createWebhook, impatientSession } from "../support/outbox.ts";

let setup: pg.Client;
let holder: pg.Client;
let claimer: pg.Client;
let companyId: string;

beforeAll(async () => {
  setup = await superuser();
  holder = await superuser();
  claimer = await impatientSession(300);
  companyId = await createCompany(setup, "Skip Locked Inc");
});
afterAll(async () => {
  await holder?.query("rollback").catch(() => {});
  await setup?.query("delete from public.companies where id = $1", [companyId]);
  await Promise.all([setup?.end(), holder?.end(), claimer?.end()]);
});

async function enqueue(triggerType: string, n: number): Promise<string[]> {
  const events = await setup.query<{ id: string }>(
    "select private.enqueue_webhook_event($1, $2, jsonb_build_object('n', n)) as id from generate_series(1, $3::integer) n",
    [companyId, triggerType, n],
  );
  const { rows } = await setup.query<{ id: string }>("select id from public.webhook_deliveries where event_id = any ($1::uuid[])", [
    events.rows.map((e) => e.id),
  ]);
  return rows.map((r) => r.id);
}

describe("a claim facing rows another session holds", () => {
  it("skips a delivery row another connection has locked and returns the other due rows, without waiting", async () => {
    const hook = await createWebhook(setup, companyId, "PROCESS_CREATED", "https://skip.example/rows");
    const [held, ...others] = await enqueue("PROCESS_CREATED", 3);

    await holder.query("begin");
    await holder.query("select 1 from public.webhook_deliveries where id = $1 for update", [held]);
    try {
      const claimed = (await claim(claimer, "skipper")).filter((c) => c.webhook_id === hook);
      expect(new Set(claimed.map((c) => c.delivery_id))).toEqual(new Set(others));
    } finally {
      await holder.query("rollback");
    }
    // Once the lock is gone, the skipped row is claimed (it was never lost).
    const later = (await claim(claimer, "skipper")).filter((c) => c.webhook_id === hook);
    expect(later.map((c) => c.delivery_id)).toEqual([held]);
  });

  it("skips an endpoint another open claim holds and serves the other endpoints, without waiting", async () => {
    const busy = await createWebhook(setup, companyId, "PROCESS_REVISED", "https://skip.example/busy");
    const free = await createWebhook(setup, companyId, "PROCESS_DELETED", "https://skip.example/free");
    const busyDeliveries = await enqueue("PROCESS_REVISED", 2);
    const freeDeliveries = await enqueue("PROCESS_DELETED", 2);

    // Another dispatcher's claim, still open, holding only the busy endpoint.
    await holder.query("begin");
    await holder.query("select 1 from private.webhook_endpoints where webhook_id = $1 for update", [busy]);
    try {
      const claimed = await claim(claimer, "second-dispatcher");
      expect(claimed.filter((c) => c.webhook_id === busy)).toEqual([]);
      expect(new Set(claimed.filter((c) => c.webhook_id === free).map((c) => c.delivery_id))).toEqual(new Set(freeDeliveries));
    } finally {
      await holder.query("rollback");
    }
    const later = (await claim(claimer, "second-dispatcher")).filter((c) => c.webhook_id === busy);
    expect(new Set(later.map((c) => c.delivery_id))).toEqual(new Set(busyDeliveries));
  });

  it("two claims running at once take disjoint work and neither waits", async () => {
    const hooks: string[] = [];
    for (let i = 0; i < 4; i++) hooks.push(await createWebhook(setup, companyId, "WEBHOOK_TEST", `https://skip.example/both-${i}`));
    const all = await enqueue("WEBHOOK_TEST", 5); // 4 endpoints x 5

    // The first claim stays open (its transaction holds what it took) while the second runs.
    await holder.query("begin");
    const first = (await claim(holder, "first")).filter((c) => hooks.includes(c.webhook_id));
    let second: Awaited<ReturnType<typeof claim>> = [];
    try {
      second = (await claim(claimer, "second")).filter((c) => hooks.includes(c.webhook_id));
    } finally {
      await holder.query("commit");
    }
    const firstIds = first.map((c) => c.delivery_id);
    const secondIds = second.map((c) => c.delivery_id);
    expect(firstIds.filter((id) => secondIds.includes(id))).toEqual([]);
    expect(firstIds.length).toBe(all.length); // the first took everything; the second skipped it all
    expect(secondIds).toEqual([]);
  });
});
