// The cap on an endpoint's requests in flight (private.webhook_settings.endpoint_concurrency)
// holds across dispatchers: it is counted in the database at every claim, under the
// endpoint's row lock, so two claimers on two connections never have more than the cap of
// one endpoint's deliveries leased at once, whether their claims overlap in time or
// interleave with results freeing slots. The same holds for an endpoint's own, lower cap
// (public.webhooks.max_concurrent_requests).
import type pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { superuser } from "../support/world.ts";
import { claim, createCompany, createWebhook, type Claimed, impatientSession, sleep, succeed } from "../support/outbox.ts";

const CAP = 3;
let setup: pg.Client;
let dispatchers: pg.Client[];
let companyId: string;
let capBefore: number;

beforeAll(async () => {
  setup = await superuser();
  dispatchers = [await impatientSession(2000), await impatientSession(2000)];
  companyId = await createCompany(setup, "Capped Inc");
  capBefore = (await setup.query("select endpoint_concurrency from private.webhook_settings")).rows[0].endpoint_concurrency;
  await setup.query("update private.webhook_settings set endpoint_concurrency = $1", [CAP]);
});
afterAll(async () => {
  await setup?.query("update private.webhook_settings set endpoint_concurrency = $1", [capBefore]);
  await setup?.query("delete from public.companies where id = $1", [companyId]);
  await Promise.all([setup?.end(), ...(dispatchers ?? []).map((d) => d.end())]);
});

const inFlight = async (webhookId: string) =>
  (await setup.query<{ n: number }>(
    "select count(*)::int as n from public.webhook_deliveries where webhook_id = $1 and state = 'pending' and lease_owner is not null and lease_expires_at > now()",
    [webhookId],
  )).rows[0]!.n;

describe("two dispatchers claiming one endpoint", () => {
  // Each claim runs in a transaction that stays open 300 ms after it, so they overlap.
  const overlappingClaims = async (hook: string) => {
    const claimOpen = async (db: pg.Client, worker: string) => {
      await db.query("begin");
      try {
        const rows = (await claim(db, worker)).filter((c) => c.webhook_id === hook);
        await db.query("select pg_sleep(0.3)");
        await db.query("commit");
        return rows;
      } catch (error) {
        await db.query("rollback");
        throw error;
      }
    };
    const [a, b] = await Promise.all([claimOpen(dispatchers[0]!, "dispatcher-a"), claimOpen(dispatchers[1]!, "dispatcher-b")]);
    return a.length + b.length;
  };

  it("overlapping claims (both transactions open at once) never lease more than the cap", async () => {
    const hook = await createWebhook(setup, companyId, "PROCESS_CREATED", "https://capped.example/overlap");
    await setup.query("select count(private.enqueue_webhook_event($1, 'PROCESS_CREATED', jsonb_build_object('n', n))) from generate_series(1, 20) n", [companyId]);
    expect(await overlappingClaims(hook)).toBe(CAP);
    expect(await inFlight(hook)).toBe(CAP);
  });

  it("an endpoint's own cap (webhooks.max_concurrent_requests), lower than the deployment's, holds the same way", async () => {
    const hook = await createWebhook(setup, companyId, "PROCESS_DELETED", "https://capped.example/own-cap");
    await setup.query("update public.webhooks set max_concurrent_requests = 2 where id = $1", [hook]);
    await setup.query("select count(private.enqueue_webhook_event($1, 'PROCESS_DELETED', jsonb_build_object('n', n))) from generate_series(1, 20) n", [companyId]);
    expect(await overlappingClaims(hook)).toBe(2);
    expect(await inFlight(hook)).toBe(2);
  });

  it("claims interleaved with results freeing slots stay at or under the cap, and everything is delivered", async () => {
    const hook = await createWebhook(setup, companyId, "PROCESS_REVISED", "https://capped.example/interleaved");
    await setup.query("select count(private.enqueue_webhook_event($1, 'PROCESS_REVISED', jsonb_build_object('n', n))) from generate_series(1, 40) n", [companyId]);

    let maxSeen = 0;
    const delivered = new Set<string>();
    const run = async (db: pg.Client, worker: string) => {
      const mine: Claimed[] = [];
      for (let round = 0; round < 200 && delivered.size < 40; round++) {
        mine.push(...(await claim(db, worker)).filter((c) => c.webhook_id === hook));
        maxSeen = Math.max(maxSeen, await inFlight(hook));
        await sleep(Math.random() * 10);
        const done = mine.splice(0, Math.ceil(mine.length / 2));
        if (done.length) {
          await succeed(db, worker, done);
          for (const c of done) delivered.add(c.delivery_id);
        }
      }
      await succeed(db, worker, mine);
      for (const c of mine) delivered.add(c.delivery_id);
    };
    await Promise.all([run(dispatchers[0]!, "dispatcher-a"), run(dispatchers[1]!, "dispatcher-b")]);

    expect(maxSeen).toBeGreaterThan(0);
    expect(maxSeen).toBeLessThanOrEqual(CAP);
    expect(delivered.size).toBe(40);
    const { rows } = await setup.query("select state, count(*)::int as n from public.webhook_deliveries where webhook_id = $1 group by 1", [hook]);
    expect(rows).toEqual([{ state: "succeeded", n: 40 }]);
  });
});
