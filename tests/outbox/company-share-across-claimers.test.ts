// A company's share of the requests in flight (private.webhook_settings.company_concurrency)
// holds across dispatchers: it is counted over the company's unexpired leases at every
// claim, under a transaction lock of the company that a second claim skips rather than waits
// for. So two claimers on two connections, serving different endpoints of one company (whose
// row locks do not keep them apart), never have more than the share leased at once, whether
// their claims overlap in time or interleave with results freeing slots; and another
// company's deliveries are claimed meanwhile. A result written while a claim has the
// company in hand is kept and recorded by the next claim; a release gives its deliveries back
// at once (20261205090200). (Counted in one session:
// supabase/tests/scheduling/company-share-of-requests.test.sql; 20261204090000.)
import type pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { superuser } from "../support/world.ts";
import { claim, createCompany, createWebhook, type Claimed, impatientSession, sleep, succeed } from "../support/outbox.ts";

const SHARE = 4;
let setup: pg.Client;
let dispatchers: pg.Client[];
let companyId: string;
let otherCompanyId: string;
let shareBefore: number;

beforeAll(async () => {
  setup = await superuser();
  dispatchers = [await impatientSession(2000), await impatientSession(2000)];
  companyId = await createCompany(setup, "Many Endpoints Inc");
  otherCompanyId = await createCompany(setup, "Neighbour Ltd");
  shareBefore = (await setup.query("select company_concurrency from private.webhook_settings")).rows[0].company_concurrency;
  await setup.query("update private.webhook_settings set company_concurrency = $1", [SHARE]);
});
afterAll(async () => {
  await setup?.query("update private.webhook_settings set company_concurrency = $1", [shareBefore]);
  await setup?.query("delete from public.companies where id = any ($1)", [[companyId, otherCompanyId]]);
  await Promise.all([setup?.end(), ...(dispatchers ?? []).map((d) => d.end())]);
});

const inFlight = async (company: string) =>
  (await setup.query<{ n: number }>("select private.company_in_flight($1) as n", [company])).rows[0]!.n;

/** Two endpoints of the company for `trigger`, 20 events: 40 due deliveries, 20 of them possible at once. */
async function twoEndpointsWithBacklog(trigger: string, company = companyId) {
  const hooks = [
    await createWebhook(setup, company, trigger, `https://share.example/${trigger.toLowerCase()}-1`),
    await createWebhook(setup, company, trigger, `https://share.example/${trigger.toLowerCase()}-2`),
  ];
  await setup.query(
    "select count(private.enqueue_webhook_event($1, $2, jsonb_build_object('n', n))) from generate_series(1, 20) n",
    [company, trigger],
  );
  return hooks;
}

describe("two dispatchers claiming the endpoints of one company", () => {
  it("a claim overlapping another one that has the company in hand takes none of its deliveries, and another company's are claimed meanwhile", async () => {
    // Eight endpoints, one due delivery each. The first claim meets four of them (a third
    // session holds the other four's rows meanwhile) and takes the share; the second, on
    // another connection while the first is open, meets the other four, whose rows are
    // free by then, and must not count the same free slots again.
    const hooks: string[] = [];
    for (let i = 0; i < 8; i++) hooks.push(await createWebhook(setup, companyId, "PROCESS_CREATED", `https://share.example/overlap-${i}`));
    await setup.query("select private.enqueue_webhook_event($1, 'PROCESS_CREATED', '{}')", [companyId]);
    const otherHooks = await twoEndpointsWithBacklog("PROCESS_CREATED", otherCompanyId);

    const [first, second] = dispatchers as [pg.Client, pg.Client];
    const holder = await superuser();
    try {
      await holder.query("begin");
      await holder.query("select 1 from private.webhook_endpoints where webhook_id = any ($1) for update", [hooks.slice(4)]);
      await first.query("begin");
      const a = await claim(first, "dispatcher-a");
      await holder.query("commit");
      await second.query("begin");
      const b = await claim(second, "dispatcher-b");
      expect(a.filter((c) => hooks.slice(0, 4).includes(c.webhook_id)).length, "the first claim takes the share").toBe(SHARE);
      expect(b.filter((c) => hooks.includes(c.webhook_id)), "the second takes none of it").toEqual([]);
      expect([...a, ...b].filter((c) => otherHooks.includes(c.webhook_id)).length, "the other company gets its own share").toBe(SHARE);
      await first.query("commit");
      await second.query("commit");
    } finally {
      await Promise.all([holder.query("rollback"), first.query("rollback"), second.query("rollback")]);
      await holder.end();
    }
    expect(await inFlight(companyId)).toBe(SHARE);
    expect(await inFlight(otherCompanyId)).toBe(SHARE);
  });

  it("claims interleaved with results freeing slots stay at or under the share, and everything is delivered", async () => {
    const hooks = await twoEndpointsWithBacklog("PROCESS_REVISED");
    let maxSeen = 0;
    const delivered = new Set<string>();
    const run = async (db: pg.Client, worker: string) => {
      const mine: Claimed[] = [];
      for (let round = 0; round < 300 && delivered.size < 40; round++) {
        mine.push(...(await claim(db, worker)).filter((c) => hooks.includes(c.webhook_id)));
        maxSeen = Math.max(maxSeen, await inFlight(companyId));
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
    // What the first test left in flight is done first, so the share is all this test's.
    await setup.query(
      `update public.webhook_deliveries set state = 'succeeded', next_attempt_at = null, completed_at = now(),
              lease_owner = null, lease_expires_at = null
        where company_id = $1 and state = 'pending'
          and webhook_id not in (select unnest($2::uuid[]))`,
      [companyId, hooks],
    );
    await Promise.all([run(dispatchers[0]!, "dispatcher-a"), run(dispatchers[1]!, "dispatcher-b")]);
    // A result written while the other session's claim had the company in hand was kept;
    // the next claim records it (as the dispatchers' next round trip would).
    await setup.query("select private.record_deferred_results()");

    expect(maxSeen).toBeGreaterThan(0);
    expect(maxSeen).toBeLessThanOrEqual(SHARE);
    expect(delivered.size).toBe(40);
    const { rows } = await setup.query(
      "select state, count(*)::int as n from public.webhook_deliveries where webhook_id = any ($1) group by 1",
      [hooks],
    );
    expect(rows).toEqual([{ state: "succeeded", n: 40 }]);
  });

  it("a result that would free a slot while a claim is turning the company's endpoints away is kept, and the next claim records it and serves them", async () => {
    // Lost otherwise: the claim's waiting row is not committed when the slot is freed, so
    // the record would wake nobody, and the endpoint would wait until the lease it was
    // turned away behind ran out (60 s here).
    await setup.query("update private.webhook_settings set company_concurrency = 1");
    const company = await createCompany(setup, "Race Ltd");
    try {
      const first = await createWebhook(setup, company, "PROCESS_CREATED", "https://share.example/race-first");
      const second = await createWebhook(setup, company, "PROCESS_DELETED", "https://share.example/race-second");
      await setup.query("select private.enqueue_webhook_event($1, 'PROCESS_CREATED', '{}')", [company]);
      const [inFlightOne] = (await claim(setup, "dispatcher-c")).filter((c) => c.webhook_id === first);
      expect(inFlightOne).toBeDefined();
      expect(await inFlight(company)).toBe(1);
      await setup.query("select private.enqueue_webhook_event($1, 'PROCESS_DELETED', '{}')", [company]);

      // A claim turns the second endpoint away (the share is taken) and stays open. (It does
      // not hold the first one's row: that one has nothing due.)
      const claimer = dispatchers[0]!;
      await claimer.query("begin");
      const turnedAway = (await claim(claimer, "dispatcher-a")).filter((c) => c.webhook_id === first || c.webhook_id === second);
      expect(turnedAway).toEqual([]);
      // Meanwhile the result of the request in flight is written: not waiting (lock_timeout 2 s), kept.
      const recorder = dispatchers[1]!;
      expect(await succeed(recorder, "dispatcher-c", [inFlightOne!])).toBe(0);
      const kept = await setup.query("select delivery_id from private.webhook_deferred_results where webhook_id = $1", [first]);
      expect(kept.rows).toEqual([{ delivery_id: inFlightOne!.delivery_id }]);
      await claimer.query("commit");

      // The next claim records it, which frees the slot and wakes the endpoint turned away.
      const next = (await claim(recorder, "dispatcher-b")).filter((c) => c.webhook_id === first || c.webhook_id === second);
      expect(next.map((c) => c.webhook_id)).toEqual([second]);
      const { rows } = await setup.query(
        "select d.state, (select count(*)::int from public.webhook_delivery_attempts a where a.delivery_id = d.id) as attempts from public.webhook_deliveries d where d.id = $1",
        [inFlightOne!.delivery_id],
      );
      expect(rows).toEqual([{ state: "succeeded", attempts: 1 }]);
    } finally {
      await dispatchers[0]!.query("rollback");  // a claim left open by a failed expectation
      await setup.query("update private.webhook_settings set company_concurrency = $1", [SHARE]);
      await setup.query("delete from public.companies where id = $1", [company]);
    }
  });

  it("companies whose ids share a 32-bit hash do not hold each other up", async () => {
    // hashtext() of these two ids is the same (-1990401182); the claim lock's key was that
    // hash until 20261205090000, and a claim of one then skipped the other.
    const [x, y] = ["020e73ef-2a66-4fd7-86cc-4de1e6fda0a8", "62c40af8-4195-41d9-9a86-533fe1594398"];
    const { rows: [hashes] } = await setup.query("select hashtext($1) = hashtext($2) as same", [x, y]);
    expect(hashes.same).toBe(true);
    await setup.query("insert into public.companies (id, name) values ($1, 'Hash X'), ($2, 'Hash Y')", [x, y]);
    try {
      const hookX = await createWebhook(setup, x, "PROCESS_CREATED", "https://share.example/hash-x");
      const hookY = await createWebhook(setup, y, "PROCESS_CREATED", "https://share.example/hash-y");
      await setup.query("select private.enqueue_webhook_event($1, 'PROCESS_CREATED', '{}') from generate_series(1, 2)", [x]);
      // One dispatcher's claim has company X in hand and stays open.
      const claimer = dispatchers[0]!;
      await claimer.query("begin");
      expect((await claim(claimer, "dispatcher-a")).filter((c) => c.webhook_id === hookX)).toHaveLength(2);
      // Company Y's deliveries, made meanwhile, go to the other dispatcher's claim.
      await setup.query("select private.enqueue_webhook_event($1, 'PROCESS_CREATED', '{}') from generate_series(1, 2)", [y]);
      expect((await claim(dispatchers[1]!, "dispatcher-b")).filter((c) => c.webhook_id === hookY)).toHaveLength(2);
      await claimer.query("commit");
    } finally {
      await dispatchers[0]!.query("rollback");  // a claim left open by a failed expectation
      await setup.query("delete from public.companies where id = any ($1)", [[x, y]]);
    }
  });

  it("a release gives back the deliveries of a company a claim has in hand, without waiting", async () => {
    // Skipped before 20261205090200: they waited out their lease unsent.
    const company = await createCompany(setup, "Release Ltd");
    try {
      const stopping = await createWebhook(setup, company, "PROCESS_CREATED", "https://share.example/release-stopping");
      const busy = await createWebhook(setup, company, "PROCESS_DELETED", "https://share.example/release-busy");
      await setup.query("select private.enqueue_webhook_event($1, 'PROCESS_CREATED', '{}') from generate_series(1, 2)", [company]);
      const mine = (await claim(setup, "dispatcher-c")).filter((c) => c.webhook_id === stopping);
      expect(mine).toHaveLength(2);
      await setup.query("select private.enqueue_webhook_event($1, 'PROCESS_DELETED', '{}')", [company]);

      // Another dispatcher's claim has the company in hand (it leased the other endpoint's
      // delivery) and stays open.
      const claimer = dispatchers[0]!;
      await claimer.query("begin");
      const theirs = (await claim(claimer, "dispatcher-a")).filter((c) => c.webhook_id === busy);
      expect(theirs).toHaveLength(1);

      // The stopping dispatcher gives its two back: not waiting (lock_timeout 2 s), both released.
      const releaser = dispatchers[1]!;
      const { rows: [{ n }] } = await releaser.query("select private.release_deliveries('dispatcher-c', $1::uuid[]) as n",
        [mine.map((c) => c.delivery_id)]);
      expect(n).toBe(2);
      const { rows } = await setup.query(
        "select lease_owner, attempt_count, next_attempt_at <= now() as due from public.webhook_deliveries where id = any ($1)",
        [mine.map((c) => c.delivery_id)],
      );
      expect(rows).toEqual([{ lease_owner: null, attempt_count: 0, due: true }, { lease_owner: null, attempt_count: 0, due: true }]);
      await claimer.query("commit");
    } finally {
      await dispatchers[0]!.query("rollback");  // a claim left open by a failed expectation
      await setup.query("delete from public.companies where id = $1", [company]);
    }
  });
});
