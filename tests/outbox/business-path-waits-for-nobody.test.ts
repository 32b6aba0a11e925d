// The business path waits for nobody: a process write that fans out to subscribed
// endpoints only reads the webhooks (no FOR SHARE) and inserts its event, deliveries and
// signals, so it completes while a dispatcher holds the endpoint and delivery rows (an
// open claim, an open record) and while an ADMIN holds the webhook row (an uncommitted
// edit). The writing session has a lock_timeout: a write that would wait fails instead.
import type pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { superuser } from "../support/world.ts";
import { claim, createCompany, createWebhook, impatientSession } from "../support/outbox.ts";

let setup: pg.Client;
let other: pg.Client;
let business: pg.Client;
let companyId: string;
let hook: string;

beforeAll(async () => {
  setup = await superuser();
  other = await superuser();
  business = await impatientSession(300);
  companyId = await createCompany(setup, "Busy Inc");
  hook = await createWebhook(setup, companyId, "PROCESS_CREATED", "https://busy.example/hook");
  await createWebhook(setup, companyId, "PROCESS_CREATED", "https://busy.example/second");
});
afterAll(async () => {
  await other?.query("rollback").catch(() => {});
  await setup?.query("delete from public.companies where id = $1", [companyId]);
  await Promise.all([setup?.end(), other?.end(), business?.end()]);
});

/** A subscribed process write in its own transaction; returns the deliveries it made. */
async function businessWrite(name: string): Promise<number> {
  await business.query("begin");
  try {
    const { rows } = await business.query<{ id: string }>("insert into public.processes (company_id, name) values ($1, $2) returning id", [companyId, name]);
    const made = await business.query<{ n: number }>(
      "select count(*)::int as n from public.webhook_deliveries d join public.webhook_events e on e.id = d.event_id where e.payload -> 'data' ->> 'process_id' = $1",
      [rows[0]!.id],
    );
    await business.query("commit");
    return made.rows[0]!.n;
  } catch (error) {
    await business.query("rollback");
    throw error;
  }
}

describe("a business write fanning out to an endpoint", () => {
  it("completes while a dispatcher's claim holds the endpoint and its deliveries", async () => {
    await businessWrite("Before");
    await other.query("begin");
    try {
      const claimed = (await claim(other, "holding-dispatcher")).filter((c) => c.webhook_id === hook);
      expect(claimed.length).toBeGreaterThan(0);
      await other.query("select 1 from private.webhook_endpoints where webhook_id = $1 for update", [hook]);
      expect(await businessWrite("During a claim")).toBe(2);
    } finally {
      await other.query("commit");
    }
  });

  it("completes while a dispatcher records results (endpoint rows and deliveries updated, not committed)", async () => {
    const claimed = (await claim(setup, "recording-dispatcher")).filter((c) => c.webhook_id === hook);
    expect(claimed.length).toBeGreaterThan(0);
    await other.query("begin");
    try {
      const results = claimed.map((c) => ({ delivery_id: c.delivery_id, attempt_number: c.attempt_number, outcome: "failed", status: 503, duration_ms: 1, next_attempt_at: new Date(Date.now() + 60_000).toISOString() }));
      await other.query("select private.record_delivery_results('recording-dispatcher', $1, interval '5 days')", [JSON.stringify(results)]);
      expect(await businessWrite("During a record")).toBe(2);
    } finally {
      await other.query("commit");
    }
  });

  it("completes while an ADMIN holds the webhook row (an edit not yet committed)", async () => {
    await other.query("begin");
    try {
      await other.query("update public.webhooks set description = 'being edited' where id = $1", [hook]);
      expect(await businessWrite("During an edit")).toBe(2);
    } finally {
      await other.query("rollback");
    }
  });

  it("completes while an ADMIN changes the endpoint's url (not committed)", async () => {
    // The columns of a plain unique constraint are key columns: changing them would lock
    // the row FOR UPDATE, which waits for (and blocks) the foreign-key check of every
    // delivery inserted for it.
    await other.query("begin");
    try {
      await other.query("update public.webhooks set url = 'https://busy.example/moved' where id = $1", [hook]);
      expect(await businessWrite("During a url change")).toBe(2);
    } finally {
      await other.query("rollback");
    }
  });

  it("completes while an ADMIN disables another endpoint of the company (not committed)", async () => {
    const third = await createWebhook(setup, companyId, "PROCESS_CREATED", "https://busy.example/third");
    await other.query("begin");
    try {
      await other.query("update public.webhooks set is_active = false where id = $1", [third]);
      expect(await businessWrite("During a disable")).toBe(3); // the disable is not committed: still subscribed
    } finally {
      await other.query("rollback");
    }
  });
});
