// What the two-session outbox suites (tests/outbox/) share: sessions that refuse to wait on
// a lock, a company with its endpoints, the dispatcher's claim, and the heartbeat.
import pg from "pg";
import { superuser } from "./world.ts";

/**
 * A superuser session that gives up on any lock wait after `lockTimeoutMs`: a statement
 * that would wait for another session fails with 55P03 (lock_not_available) instead, so a
 * test can state "completes without waiting" and fail if it does not.
 */
export async function impatientSession(lockTimeoutMs = 300): Promise<pg.Client> {
  const client = await superuser();
  await client.query(`set lock_timeout = ${Number(lockTimeoutMs)}`);
  return client;
}

export async function createCompany(db: pg.Client, name: string): Promise<string> {
  return (await db.query<{ id: string }>("insert into public.companies (name) values ($1) returning id", [name])).rows[0]!.id;
}

export async function createWebhook(db: pg.Client, companyId: string, triggerType: string, url: string): Promise<string> {
  return (
    await db.query<{ id: string }>("insert into public.webhooks (company_id, trigger_type, url) values ($1, $2, $3) returning id", [companyId, triggerType, url])
  ).rows[0]!.id;
}

export interface Claimed {
  delivery_id: string;
  webhook_id: string;
  event_id: string;
  attempt_number: number;
}

/** private.claim_due_deliveries as the dispatcher calls it. Other suites' leftovers may come back too: filter by endpoint. */
export async function claim(db: pg.Client, worker: string, batchSize = 1000, leaseSeconds = 60): Promise<Claimed[]> {
  return (
    await db.query<Claimed>(
      "select delivery_id, webhook_id, event_id, attempt_number from private.claim_due_deliveries($1, $2, $3)",
      [worker, batchSize, leaseSeconds],
    )
  ).rows;
}

/** Records a success for each claimed delivery (the dispatcher's call). */
export async function succeed(db: pg.Client, worker: string, claimed: Claimed[]): Promise<number> {
  const results = claimed.map((c) => ({ delivery_id: c.delivery_id, attempt_number: c.attempt_number, outcome: "succeeded", status: 200, duration_ms: 1 }));
  return (await db.query<{ n: number }>("select private.record_delivery_results($1, $2, interval '5 days') as n", [worker, JSON.stringify(results)])).rows[0]!.n;
}

/** No dispatcher is awake: the next business commit wakes them itself. */
export async function noDispatcherAwake(db: pg.Client): Promise<void> {
  await db.query("select setval('private.webhook_dispatcher_heartbeat', 0)");
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Resolves once the session whose backend is `pid` waits for a lock, as `observer` sees in
 * pg_stat_activity; throws `failure` if it has not within `timeoutMs`. A race test's premise:
 * the second statement really waits for the first one's lock.
 */
export async function untilWaitingForALock(observer: pg.Client, pid: number, timeoutMs: number, failure: string): Promise<void> {
  for (const end = Date.now() + timeoutMs; Date.now() < end; await sleep(10)) {
    const { rows } = await observer.query("select 1 from pg_stat_activity where pid = $1 and wait_event_type = 'Lock'", [pid]);
    if (rows.length > 0) return;
  }
  throw new Error(failure);
}
