// pg_net wake-ups of the edge function are coalesced across transactions: a burst of
// committing transactions wakes the function once per interval, not once each (two taking
// the slot at the same instant: one wins, the other skips without waiting); and none at all
// while a dispatcher is awake. pg_net does not exist on plain Postgres, so a
// `net.http_post` with pg_net's signature records the calls (committed, like pg_net's queue).
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { superuser } from "../support/world.ts";

const WRITERS = 10;
const PER_WRITER = 100;

let setup: pg.Client;
let writers: pg.Client[];
let companyId: string;

const calls = async () => Number((await setup.query("select count(*) from net.calls")).rows[0]!.count);

beforeAll(async () => {
  setup = await superuser();
  writers = await Promise.all(Array.from({ length: WRITERS }, () => superuser()));
  await setup.query(`
    create schema if not exists net;
    create table if not exists net.calls (url text, at timestamptz default clock_timestamp());
    create or replace function net.http_post(url text, headers jsonb, body jsonb, timeout_milliseconds integer)
    returns bigint language sql as $$ insert into net.calls (url) values (url); select 1::bigint $$;
    update private.webhook_settings
       set dispatcher_url = 'https://project.supabase.co/functions/v1/webhook-dispatcher',
           dispatcher_key = 'service-key',
           wakeup_interval_ms = 60000;
    select setval('private.webhook_dispatcher_heartbeat', 0);
    select setval('private.webhook_wakeup_requested', 0);`);
  companyId = (await setup.query("insert into public.companies (name) values ('Burst Inc') returning id")).rows[0].id;
  await setup.query(
    "insert into public.webhooks (company_id, trigger_type, url) values ($1, 'PROCESS_CREATED', 'https://burst.example/hook')",
    [companyId],
  );
});

afterAll(async () => {
  await setup?.query(`
    update private.webhook_settings set dispatcher_url = null, dispatcher_key = null, wakeup_interval_ms = 1000;
    select setval('private.webhook_wakeup_requested', 0);
    drop schema if exists net cascade;`);
  await setup?.query("delete from public.companies where id = $1", [companyId]);
  await Promise.all([setup?.end(), ...(writers ?? []).map((w) => w.end())]);
});

describe("pg_net wake-ups", () => {
  it("a burst of 1,000 committing transactions wakes the function once in the interval", async () => {
    await Promise.all(writers.map(async (db, w) => {
      for (let i = 0; i < PER_WRITER; i++) {
        await db.query("insert into public.processes (company_id, name) values ($1, $2)", [companyId, `w${w}-${i}`]);
      }
    }));
    const { rows } = await setup.query("select count(*)::int as n from public.webhook_deliveries where company_id = $1", [
      companyId,
    ]);
    expect(rows[0]!.n).toBe(WRITERS * PER_WRITER);
    expect(await calls()).toBe(1);
  });

  it("once the interval has passed, the next commit wakes it again", async () => {
    const before = await calls();
    await setup.query("select setval('private.webhook_wakeup_requested', 0)"); // the interval passed
    await writers[0]!.query("insert into public.processes (company_id, name) values ($1, 'later')", [companyId]);
    expect(await calls()).toBe(before + 1);
  });

  it("two transactions taking the slot at the same instant: one wakes the function, the other skips without waiting", async () => {
    const [a, b] = writers;
    await setup.query("select setval('private.webhook_wakeup_requested', 0)");
    await a!.query("begin");
    try {
      expect((await a!.query("select private.claim_wakeup_slot() as taken")).rows[0].taken).toBe(true);
      // As if b had read the stamp before a set it: the instant the old read-then-set lost.
      await setup.query("select setval('private.webhook_wakeup_requested', 0)");
      const started = Date.now();
      expect((await b!.query("select private.claim_wakeup_slot() as taken")).rows[0].taken).toBe(false);
      expect(Date.now() - started).toBeLessThan(1_000); // it did not wait for a's transaction
    } finally {
      await a!.query("rollback");
    }
  });

  it("while a dispatcher is awake, commits wake nobody", async () => {
    const before = await calls();
    await setup.query("select setval('private.webhook_wakeup_requested', 0)");
    await setup.query("select private.note_dispatcher_awake()"); // what a claim that found work does
    await writers[0]!.query("insert into public.processes (company_id, name) values ($1, 'while awake')", [companyId]);
    expect(await calls()).toBe(before);
    await setup.query("select setval('private.webhook_dispatcher_heartbeat', 0)");
  });
});
