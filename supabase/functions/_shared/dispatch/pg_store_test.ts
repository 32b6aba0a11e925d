// The Postgres store against a real database with the migrations applied (npm test sets
// DB_URL); without one every test fails and says so, rather than passing unrun. Each test works on its own company and cleans it up.
import assert from "node:assert/strict";
import postgres from "postgres";
import { CLAIM_LIMITS, type DeliveryResult, type DeliveryStore } from "./store.ts";
import { connectDatabase, createPgStore } from "./pg_store.ts";

function dbUrl(): string {
  const url = Deno.env.get("DB_URL");
  if (!url) {
    throw new Error("DB_URL is not set: these tests need a database with the migrations (npm test provides one)");
  }
  return url;
}

/** Claims everything due, gives back what is not this test's webhook's, returns the rest. */
async function claimOurs(store: DeliveryStore, webhookId: string) {
  const claimed = await store.claim(1000, 60);
  // Anything else due in a shared test database goes straight back.
  await store.release(claimed.filter((d) => d.webhook_id !== webhookId).map((d) => d.delivery_id));
  return claimed.filter((d) => d.webhook_id === webhookId);
}

async function withCompany(fn: (sql: postgres.Sql, companyId: string, webhookId: string) => Promise<void>) {
  const sql = connectDatabase(dbUrl(), 2);
  const [company] = await sql`insert into public.companies (name) values ('pg_store test') returning id`;
  try {
    // 127.0.0.1 is a plain-http URL; the local seed allows it, a fresh database may not.
    await sql`update private.webhook_settings set allow_plain_http = true`;
    const [webhook] = await sql`
      insert into public.webhooks (company_id, trigger_type, url)
      values (${company.id}, 'PROCESS_REVISED', 'http://127.0.0.1:9/hook') returning id`;
    await fn(sql, company.id, webhook.id);
  } finally {
    await sql`delete from public.companies where id = ${company.id}`;
    await sql.end();
  }
}

Deno.test({
  name: "pg_store: claim, then record a batch of results in one call",
  async fn() {
    await withCompany(async (sql, companyId, webhookId) => {
      await sql`select private.enqueue_webhook_event(${companyId}, 'PROCESS_REVISED', '{"n": 1}'::jsonb)`;
      await sql`select private.enqueue_webhook_event(${companyId}, 'PROCESS_REVISED', '{"n": 2}'::jsonb)`;
      const workerId = `pg-store-test-${crypto.randomUUID().slice(0, 8)}`;
      const store = createPgStore(sql, { workerId, disableAfterHours: 120 });

      const ours = await claimOurs(store, webhookId);
      assert.equal(ours.length, 2);
      for (const d of ours) {
        assert.equal(d.attempt_number, 1);
        assert.match(d.secrets[0], /^whsec_/);
        const body = typeof d.payload === "string" ? JSON.parse(d.payload) : d.payload;
        assert.equal(body.type, "PROCESS_REVISED");
        assert.equal(body.company_id, companyId);
      }

      const [ok, failed] = ours;
      const results: DeliveryResult[] = [
        {
          delivery_id: ok.delivery_id,
          attempt_number: 1,
          outcome: "succeeded",
          status: 200,
          duration_ms: 3,
          response_body: "ok",
          error: null,
          next_attempt_at: null,
          gone: false,
        },
        {
          delivery_id: failed.delivery_id,
          attempt_number: 1,
          outcome: "failed",
          status: 500,
          duration_ms: 4,
          response_body: "boom",
          error: "HTTP 500",
          next_attempt_at: new Date(Date.now() + 60_000).toISOString(),
          gone: false,
        },
      ];
      await store.record(results);

      const rows = await sql`
        select d.id, d.state, d.last_status, d.lease_owner, count(a.id)::int as attempts
          from public.webhook_deliveries d left join public.webhook_delivery_attempts a on a.delivery_id = d.id
         where d.company_id = ${companyId} group by d.id`;
      const byId = new Map(rows.map((r) => [r.id, r]));
      assert.equal(byId.get(ok.delivery_id)!.state, "succeeded");
      assert.equal(byId.get(failed.delivery_id)!.state, "pending");
      assert.equal(byId.get(failed.delivery_id)!.last_status, 500);
      for (const r of rows) {
        assert.equal(r.attempts, 1);
        assert.equal(r.lease_owner, null);
      }
    });
  },
});

Deno.test({
  name: "pg_store: release gives a lease back, due again at once",
  async fn() {
    await withCompany(async (sql, companyId, webhookId) => {
      await sql`select private.enqueue_webhook_event(${companyId}, 'PROCESS_REVISED', '{}'::jsonb)`;
      const store = createPgStore(sql, {
        workerId: `pg-store-test-${crypto.randomUUID().slice(0, 8)}`,
        disableAfterHours: 120,
      });
      const claimed = await store.claim(1000, 60);
      await store.release(claimed.map((d) => d.delivery_id));
      assert.equal(claimed.filter((d) => d.webhook_id === webhookId).length, 1);
      const [row] = await sql`
        select state, attempt_count, lease_owner, next_attempt_at <= now() as due
          from public.webhook_deliveries where company_id = ${companyId}`;
      assert.deepEqual({ ...row }, { state: "pending", attempt_count: 0, lease_owner: null, due: true });
    });
  },
});

Deno.test({
  name:
    "pg_store: a response body Postgres cannot store (NUL, half an emoji) is cleaned, and the batch is still recorded",
  async fn() {
    await withCompany(async (sql, companyId, webhookId) => {
      for (let n = 0; n < 3; n++) {
        await sql`select private.enqueue_webhook_event(${companyId}, 'PROCESS_REVISED', ${
          JSON.stringify({ n })
        }::text::jsonb)`;
      }
      const workerId = `pg-store-test-${crypto.randomUUID().slice(0, 8)}`;
      const store = createPgStore(sql, { workerId, disableAfterHours: 120 });
      const ours = await claimOurs(store, webhookId);
      assert.equal(ours.length, 3);

      const halfEmoji = "a".repeat(4095) + "😀".slice(0, 1); // what a 4096-unit cut can leave
      const bodies = ["\u0000", halfEmoji, "fine"];
      await store.record(ours.map((d, i) => ({
        delivery_id: d.delivery_id,
        attempt_number: 1,
        outcome: "succeeded" as const,
        status: 200,
        duration_ms: 1,
        response_body: bodies[i],
        error: null,
        next_attempt_at: null,
        gone: false,
      })));

      const rows = await sql`
        select d.state, a.response_body
          from public.webhook_deliveries d
          join public.webhook_delivery_attempts a on a.delivery_id = d.id
         where d.webhook_id = ${webhookId}
         order by a.response_body`;
      assert.deepEqual(rows.map((r) => r.state), ["succeeded", "succeeded", "succeeded"]);
      assert.deepEqual(rows.map((r) => r.response_body).sort(), ["", "a".repeat(4095) + "\uFFFD", "fine"].sort());
    });
  },
});

Deno.test({
  name: "pg_store: the claim accepts exactly CLAIM_LIMITS, the bounds config.ts holds the settings to",
  async fn() {
    const sql = connectDatabase(dbUrl(), 1);
    const store = createPgStore(sql, {
      workerId: `pg-store-test-${crypto.randomUUID().slice(0, 8)}`,
      disableAfterHours: 120,
    });
    const outcome = async (batchSize: number, leaseSeconds: number) => {
      try {
        // Whatever an accepted claim leased (due work of other tests) goes straight back.
        await store.release((await store.claim(batchSize, leaseSeconds)).map((d) => d.delivery_id));
        return "accepted";
      } catch (e) {
        const { code, message } = e as { code?: string; message: string };
        return `${code}: ${message}`;
      }
    };
    try {
      const { batchSize, leaseSeconds } = CLAIM_LIMITS;
      const batchRange = `batch_size must be between ${batchSize.min} and ${batchSize.max}`;
      const leaseRange = `lease_seconds must be between ${leaseSeconds.min} and ${leaseSeconds.max}`;
      assert.equal(await outcome(batchSize.min, leaseSeconds.min), "accepted");
      assert.equal(await outcome(batchSize.max, leaseSeconds.max), "accepted");
      assert.equal(
        await outcome(batchSize.min - 1, leaseSeconds.max),
        `22023: ${batchRange}, got ${batchSize.min - 1}`,
      );
      assert.equal(
        await outcome(batchSize.max + 1, leaseSeconds.max),
        `22023: ${batchRange}, got ${batchSize.max + 1}`,
      );
      assert.equal(
        await outcome(batchSize.max, leaseSeconds.min - 1),
        `22023: ${leaseRange}, got ${leaseSeconds.min - 1}`,
      );
      assert.equal(
        await outcome(batchSize.max, leaseSeconds.max + 1),
        `22023: ${leaseRange}, got ${leaseSeconds.max + 1}`,
      );
    } finally {
      await sql.end();
    }
  },
});

Deno.test("pg_store: a lost connection is retried within a second, however many attempts failed", async () => {
  // What lets a worker resume about a second after Postgres is back (db_outage_test.ts):
  // postgres.js's own backoff grows to 20 s and delays the LISTEN connection too.
  const sql = connectDatabase("postgresql://nobody@127.0.0.1:9/none");
  try {
    const backoff = sql.options.backoff as (attempt: number) => number;
    const delays = Array.from({ length: 40 }, (_, attempt) => backoff(attempt));
    assert.ok(delays.every((seconds) => seconds > 0 && seconds <= 1), `backoff (s): ${delays.join(", ")}`);
    assert.ok(backoff(0) < 0.1, "the first retry comes at once");
  } finally {
    await sql.end();
  }
});
