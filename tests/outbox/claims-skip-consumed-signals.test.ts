// A claim does not walk the signals earlier claims consumed (migration
// 20261130130000_claims_skip_consumed_signals.sql). A signal deleted by a claim stays in
// the table and its indexes until VACUUM. The claim's delete of its endpoints' signals
// (private.consume_endpoint_signals) is planned without bitmap scans: the first plain index
// scan that meets a dead entry marks it, and later claims skip it without visiting the
// heap. A bitmap scan marks nothing, so every claim went through all of them again.
//
// Measured in buffers (the pages a statement touched, as EXPLAIN counts them, nested
// statements included), not time. Autovacuum is off for the table during the test: a
// VACUUM between the claims would clean the dead signals up whatever the plan. An entry is
// marked dead only once no open snapshot can see its row: nothing else in the test database
// may hold a transaction open meanwhile (the vitest files run one after another).
import type pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { superuser } from "../support/world.ts";
import { createCompany, createWebhook, sleep } from "../support/outbox.ts";

let db: pg.Client;
let companyId: string;
let hook: string;

beforeAll(async () => {
  db = await superuser();
  await db.query("alter table private.webhook_endpoint_signals set (autovacuum_enabled = false)");
  companyId = await createCompany(db, "Bulk Importer Ltd");
  hook = await createWebhook(db, companyId, "PROCESS_CREATED", "https://bulk.example/hook");
});
afterAll(async () => {
  await db?.query("alter table private.webhook_endpoint_signals reset (autovacuum_enabled)");
  if (companyId) await db?.query("delete from public.companies where id = $1", [companyId]);
  await db?.end();
});

async function waitForNoOlderSnapshot(): Promise<void> {
  for (const end = Date.now() + 30_000; Date.now() < end; await sleep(50)) {
    const { rows } = await db.query(
      `select count(*)::int as n from pg_stat_activity
        where datname = current_database() and pid <> pg_backend_pid()
          and (backend_xmin is not null or backend_xid is not null)`,
    );
    if (rows[0].n === 0) return;
  }
}

/** Buffers the claim's signal delete touches for `hook`, in a transaction then rolled back. */
async function buffersOfConsume(): Promise<number> {
  await db.query("begin");
  try {
    const { rows } = await db.query(
      `explain (analyze, buffers, format json)
       select private.consume_endpoint_signals(array[$1::uuid], array[$1::uuid])`,
      [hook],
    );
    const plan = rows[0]["QUERY PLAN"][0].Plan;
    return plan["Shared Hit Blocks"] + plan["Shared Read Blocks"];
  } finally {
    await db.query("rollback");
  }
}

describe("the claim's delete of consumed signals", () => {
  it("skips the ones an earlier claim consumed, once one scan has met them", async () => {
    // One transaction created 20,000 deliveries for the endpoint in separate statements (a
    // bulk import): 20,000 signals. Statistics see them, as they would by the next claim.
    await db.query(
      "insert into private.webhook_endpoint_signals (webhook_id) select $1 from generate_series(1, 20000)",
      [hook],
    );
    await db.query("analyze private.webhook_endpoint_signals");
    // A claim consumes them all (and commits).
    await db.query("select private.consume_endpoint_signals(array[$1::uuid], array[$1::uuid])", [hook]);
    // New work for the endpoint: one signal, and the next claims look at it.
    await db.query("insert into private.webhook_endpoint_signals (webhook_id) values ($1)", [hook]);
    // The premise: no other session of this database holds a snapshot from before the
    // consume (an autovacuum ANALYZE of a table earlier files filled does, for seconds; the
    // first scan could not mark the dead signals then). Wait for them to finish, at most 30 s.
    await waitForNoOlderSnapshot();

    const first = await buffersOfConsume();
    const later = await buffersOfConsume();

    // 20,000 dead signals fill about 130 heap pages: a scan that visits them touches well
    // over 100 buffers, every time. One that skips them reads the index's leaf pages only.
    expect(first, "the first scan after the claim meets the dead signals").toBeGreaterThan(100);
    expect(later, `later scans skip them (the first touched ${first} buffers)`).toBeLessThan(first / 4);
  });
});
