// Plumbing for the dispatcher's end-to-end tests (webhook-dispatcher/*_test.ts): a real
// database (DB_URL), the real dispatcher (a subprocess started by its `worker` or `serve`
// task, see tasks.mjs) and real HTTP receivers on 127.0.0.1. Nothing is mocked.
//
// `npm test` provides DB_URL: a fresh database with the migrations, the seed
// (allow_plain_http = true) and supabase/tests/helpers/setup.sql applied. By hand:
//   createdb, then psql -v ON_ERROR_STOP=1 -f each of scripts/bootstrap/supabase-platform.sql,
//   supabase/migrations/*.sql (in order), supabase/seed.sql, supabase/tests/helpers/setup.sql;
//   cd supabase/functions && DB_URL=postgresql://... deno test -A webhook-dispatcher/
//
// Isolation: every test makes its own company, webhooks and receivers. A dispatcher claims
// due work of every company, so tests assert only on their own rows, and leave nothing
// pending behind (the company is deleted on success; on failure its webhooks are disabled,
// which cancels their pending deliveries, and the rows stay for inspection). Other
// companies' due deliveries are fine (a test's dispatcher attempts them too, and fails
// or blocks them), but two runs must not share one database at the same time.

import assert from "node:assert/strict";
import postgres from "postgres";
import { Webhook } from "standardwebhooks";
import { readTask } from "../tasks.mjs";
import { gate, type ReceivedRequest, type Receiver, type ReceiverHandler, startReceiver } from "./receiver.ts";
import { CHILD_DENO_FLAGS } from "./runtime.ts";

export type { ReceivedRequest, Receiver };

const FUNCTIONS_DIR = decodeURIComponent(new URL("../", import.meta.url).pathname);

/**
 * Short enough for fast tests, and consistent with config.ts: the lease covers the
 * timeout, the 5 s safety margin and 1 s to start sending (the shortest it accepts).
 * Retries after 0.2 s (±20 % jitter), 3 attempts in all.
 */
export const FAST_DISPATCHER_ENV: Readonly<Record<string, string>> = {
  WEBHOOK_RETRY_SCHEDULE: "0.2,0.2",
  WEBHOOK_TIMEOUT_MS: "2000",
  WEBHOOK_LEASE_SECONDS: "8",
};

/** The database of these tests; a missing DB_URL is a failure, never a silent skip. */
export function requireDbUrl(): string {
  const url = Deno.env.get("DB_URL")?.trim();
  if (!url) {
    throw new Error(
      "DB_URL is not set: the webhook-dispatcher end-to-end tests need a Postgres database with the " +
        "migrations, seed and supabase/tests/helpers/setup.sql applied, as superuser. `npm test` provides one; " +
        "see _test/e2e.ts to set one up by hand.",
    );
  }
  return url;
}

// ---------------------------------------------------------------------------------------
// Waiting
// ---------------------------------------------------------------------------------------

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    }
  });
}

/** Polls `probe` until it returns something truthy, which it returns; throws after `timeoutMs`. */
export async function waitFor<T>(
  what: string,
  probe: () => T | Promise<T>,
  { timeoutMs = 10_000, intervalMs = 25 }: { timeoutMs?: number; intervalMs?: number } = {},
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(intervalMs);
  }
}

// ---------------------------------------------------------------------------------------
// Database
// ---------------------------------------------------------------------------------------

export interface DeliveryRow {
  id: string;
  event_id: string;
  webhook_id: string;
  state: "pending" | "succeeded" | "failed" | "cancelled";
  attempt_count: number;
  next_attempt_at: Date | null;
  lease_owner: string | null;
  lease_expires_at: Date | null;
  last_status: number | null;
  last_error: string | null;
  completed_at: Date | null;
}

export interface AttemptRow {
  delivery_id: string;
  attempt_number: number;
  outcome: "succeeded" | "failed" | "blocked";
  status: number | null;
  duration_ms: number | null;
  response_body: string | null;
  error: string | null;
  worker: string | null;
  /** When it was recorded (the database's clock). */
  created_at: Date;
}

export async function createProcess(sql: postgres.Sql, companyId: string, name: string): Promise<string> {
  const [row] = await sql`insert into public.processes (company_id, name) values (${companyId}, ${name}) returning id`;
  return row.id;
}

/** A definition change: update_process_revision bumps the revision and PROCESS_REVISED fires. */
export async function reviseProcess(sql: postgres.Sql, processId: string, name: string): Promise<void> {
  await sql`update public.processes set name = ${name} where id = ${processId}`;
}

/** `count` events of `triggerType` in one transaction, each fanned out to the company's subscribers. */
export async function enqueueEvents(
  sql: postgres.Sql,
  companyId: string,
  count: number,
  triggerType = "PROCESS_REVISED",
): Promise<void> {
  await sql`
    select private.enqueue_webhook_event(${companyId}, ${triggerType}, jsonb_build_object('n', g))
      from generate_series(1, ${count}::int) g`;
}

export async function deliveriesOf(sql: postgres.Sql, webhookId: string): Promise<DeliveryRow[]> {
  return [
    ...await sql<DeliveryRow[]>`
      select id, event_id, webhook_id, state, attempt_count, next_attempt_at, lease_owner, lease_expires_at,
             last_status, last_error, completed_at
        from public.webhook_deliveries
       where webhook_id = ${webhookId}
       order by created_at, id`,
  ];
}

export async function deliveryById(sql: postgres.Sql, deliveryId: string): Promise<DeliveryRow> {
  const [row] = await sql<DeliveryRow[]>`
    select id, event_id, webhook_id, state, attempt_count, next_attempt_at, lease_owner, lease_expires_at,
           last_status, last_error, completed_at
      from public.webhook_deliveries
     where id = ${deliveryId}`;
  if (!row) throw new Error(`delivery ${deliveryId} does not exist`);
  return row;
}

export async function attemptsOf(sql: postgres.Sql, deliveryId: string): Promise<AttemptRow[]> {
  return [
    ...await sql<AttemptRow[]>`
      select delivery_id, attempt_number, outcome, status, duration_ms, response_body, error, worker, created_at
        from public.webhook_delivery_attempts
       where delivery_id = ${deliveryId}
       order by attempt_number, id`,
  ];
}

/**
 * A new company's endpoint with one delivery enqueued, at a receiver that holds every
 * request until `answer.open()` (or the test ends): an attempt that stays out while the
 * test does something (the outage tests).
 */
export async function oneHeldDelivery(t: E2E): Promise<{ answer: ReturnType<typeof gate>; receiver: TimedReceiver; hook: string }> {
  const answer = gate();
  const receiver = t.receiver(async () => {
    await Promise.race([answer.opened, sleep(20_000, t.ending)]);
    return new Response("ok");
  });
  const company = await t.company();
  const hook = await t.webhook(company, `${receiver.origin}/hook`);
  await enqueueEvents(t.sql, company, 1);
  return { answer, receiver, hook };
}

/**
 * The webhook's one delivery succeeded at its first attempt, that attempt is logged once,
 * and the receiver got it once: what a database outage must not change (db_outage_test.ts,
 * http_outage_test.ts). `context` (a dispatcher's output) goes into the first failure.
 */
export async function assertDeliveredOnce(sql: postgres.Sql, webhookId: string, receiver: Receiver, context = ""): Promise<void> {
  const [delivery] = await deliveriesOf(sql, webhookId);
  assert.deepEqual([delivery?.state, delivery?.attempt_count], ["succeeded", 1], context);
  const attempts = await attemptsOf(sql, delivery!.id);
  assert.deepEqual(attempts.map((a) => [a.attempt_number, a.outcome, a.status]), [[1, "succeeded", 200]]);
  assert.equal(receiver.requests.length, 1, "sent once");
}

/** Waits until none of the webhook's deliveries is pending, and returns them. */
export function settledDeliveries(
  sql: postgres.Sql,
  webhookId: string,
  { expected = 1, timeoutMs = 10_000 }: { expected?: number; timeoutMs?: number } = {},
): Promise<DeliveryRow[]> {
  return waitFor(`${expected} settled deliveries of webhook ${webhookId}`, async () => {
    const rows = await deliveriesOf(sql, webhookId);
    return rows.length === expected && rows.every((d) => d.state !== "pending") ? rows : null;
  }, { timeoutMs });
}

/** Runs `fn` in a transaction acting as the service role, the way PostgREST does. */
export function asServiceRole<T>(sql: postgres.Sql, fn: (tx: postgres.TransactionSql) => Promise<T>): Promise<T> {
  return sql.begin(async (tx) => {
    await tx`select tests.authenticate_as_service_role()`;
    return await fn(tx);
  }) as Promise<T>;
}

/** The current secret, through the admin RPC (as the service role). */
export function webhookSecret(sql: postgres.Sql, webhookId: string): Promise<string> {
  return asServiceRole(sql, async (tx) => (await tx`select public.get_webhook_secret(${webhookId}) as s`)[0].s);
}

export function rotateWebhookSecret(sql: postgres.Sql, webhookId: string): Promise<string> {
  return asServiceRole(sql, async (tx) => (await tx`select public.rotate_webhook_secret(${webhookId}) as s`)[0].s);
}

// ---------------------------------------------------------------------------------------
// Receivers and signatures
// ---------------------------------------------------------------------------------------

/** Verifies a received request with `standardwebhooks`; returns the parsed body or throws. */
export function verifySignature(secret: string, request: ReceivedRequest): unknown {
  return new Webhook(secret).verify(request.body, {
    "webhook-id": request.headers.get("webhook-id") ?? "",
    "webhook-timestamp": request.headers.get("webhook-timestamp") ?? "",
    "webhook-signature": request.headers.get("webhook-signature") ?? "",
  });
}

export interface TimedReceiver extends Receiver {
  /** Date.now() when each request arrived, index-aligned with `requests`. */
  arrivals: number[];
  /** Distinct webhook-id headers received. */
  webhookIds(): string[];
}

// ---------------------------------------------------------------------------------------
// Dispatcher processes
// ---------------------------------------------------------------------------------------

export interface DispatcherOptions {
  /** `worker` runs the `worker` task of deno.json; `http` the `serve` task, on a free port. */
  mode?: "worker" | "http";
  /** Exact host:port of the receivers the SSRF policy should let through. */
  allowedTargets: string[];
  /** Extra environment (WEBHOOK_* knobs); FAST_DISPATCHER_ENV is applied first. */
  env?: Record<string, string>;
  /** HTTP mode as the Edge Runtime runs it (_test/edge_runtime.ts): Deno.exit does nothing,
   * EdgeRuntime.waitUntil exists. */
  edgeRuntime?: boolean;
}

export interface Dispatcher {
  workerId: string;
  pid: number;
  /** HTTP mode only: `http://127.0.0.1:<port>`. */
  origin: string;
  /** Everything printed so far (stdout and stderr interleaved). */
  output(): string;
  kill(signal: Deno.Signal): void;
  /** Settles when the process has exited and its output is fully read. */
  exited: Promise<Deno.CommandStatus>;
  /** SIGTERM, then SIGKILL if it has not exited within `graceMs`. */
  stop(graceMs?: number): Promise<Deno.CommandStatus>;
}

async function spawnDispatcher(tag: string, dbUrl: string, options: DispatcherOptions): Promise<Dispatcher> {
  const mode = options.mode ?? "worker";
  const workerId = `e2e-${tag}-${crypto.randomUUID().slice(0, 6)}`;
  // A clean environment: no WEBHOOK_*, SUPABASE_* or PORT from the developer's shell.
  const inherited = Object.fromEntries(
    Object.entries(Deno.env.toObject()).filter(([k]) => !/^(WEBHOOK_|SUPABASE_|PORT$)/.test(k)),
  );
  // The start command `npm start` and the benchmarks use too, so a missing permission or
  // setting fails here as well.
  const task = readTask(mode === "worker" ? "worker" : "serve");
  const env: Record<string, string> = {
    ...inherited,
    ...task.env,
    NO_COLOR: "1",
    SUPABASE_DB_URL: dbUrl,
    WEBHOOK_WORKER_ID: workerId,
    WEBHOOK_ALLOWED_TARGETS: options.allowedTargets.join(","),
    ...FAST_DISPATCHER_ENV,
    ...(mode === "http" ? { PORT: "0" } : {}),
    ...options.env,
  };
  const [subcommand, ...flags] = task.args;
  const entry = "webhook-dispatcher/index.ts";
  if (options.edgeRuntime) {
    if (mode !== "http" || flags.at(-1) !== entry) {
      throw new Error(`edgeRuntime needs the serve task, ending in ${entry}`);
    }
    flags[flags.length - 1] = "_test/edge_runtime.ts";
  }
  const child = new Deno.Command(Deno.execPath(), {
    args: [subcommand, ...CHILD_DENO_FLAGS, ...flags],
    cwd: FUNCTIONS_DIR,
    env,
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();

  let text = "";
  const pump = async (stream: ReadableStream<Uint8Array>) => {
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) text += chunk;
  };
  const pumps = Promise.all([pump(child.stdout), pump(child.stderr)]);
  const exited = Promise.all([child.status, pumps]).then(([status]) => status);
  let exitCode: number | null = null;
  exited.then((status) => (exitCode = status.code));

  const ready = mode === "worker" ? /worker started/ : /Listening on (http:\/\/127\.0\.0\.1:\d+)\//;
  const match = await waitFor(
    `the ${mode} dispatcher to start`,
    () => {
      if (exitCode !== null) {
        throw new Error(`the dispatcher exited with code ${exitCode} before it was ready:\n${text}`);
      }
      return ready.exec(text);
    },
    { timeoutMs: 30_000 },
  );

  const dispatcher: Dispatcher = {
    workerId,
    pid: child.pid,
    origin: mode === "http" ? match[1] : "",
    output: () => text,
    kill(signal) {
      if (exitCode === null) child.kill(signal);
    },
    exited,
    async stop(graceMs = 10_000) {
      dispatcher.kill("SIGTERM");
      const timer = setTimeout(() => dispatcher.kill("SIGKILL"), graceMs);
      try {
        return await exited;
      } finally {
        clearTimeout(timer);
      }
    },
  };
  return dispatcher;
}

// ---------------------------------------------------------------------------------------
// The test wrapper
// ---------------------------------------------------------------------------------------

export interface E2E {
  sql: postgres.Sql;
  /** Unique per test run; used in names. */
  tag: string;
  /** A company of this test (deleted afterwards). */
  company(): Promise<string>;
  /** A webhook of `companyId` (PROCESS_REVISED unless told otherwise). */
  webhook(companyId: string, url: string, triggerType?: string): Promise<string>;
  /** A receiver on 127.0.0.1 (closed afterwards); answers 200 "ok" by default. */
  receiver(handler?: ReceiverHandler): TimedReceiver;
  /** Starts a dispatcher process and waits until it is ready (stopped afterwards). */
  dispatcher(options: DispatcherOptions): Promise<Dispatcher>;
  /** Aborted when the test ends, before receivers close: handlers that hang wait on it. */
  ending: AbortSignal;
  /**
   * Sets scheduling settings every dispatcher shares (private.webhook_settings, e.g.
   * endpoint_concurrency or the circuit knobs) for this test; restored when it ends.
   * The e2e files run one at a time, so no other test sees them.
   */
  settings(values: Record<string, number | boolean>): Promise<void>;
}

/** A database a test brings along instead of DB_URL (e.g. a cluster it may restart). */
export interface E2EDatabase {
  url: string;
  /** Called last, after the dispatchers, receivers and connections are closed. */
  close(failed: boolean): Promise<void>;
}

export interface E2EOptions {
  /** Sets up the test's own database (prepared like DB_URL's); DB_URL when absent. */
  database?: () => Promise<E2EDatabase>;
}

/**
 * Deno.test for an end-to-end scenario. The op and resource sanitizers are off: a killed
 * subprocess or a receiver connection a dispatcher dropped finishes closing on Deno's side
 * after the test body; every resource here is still closed explicitly in the cleanup.
 */
export function e2eTest(name: string, fn: (t: E2E) => Promise<void>, options: E2EOptions = {}): void {
  Deno.test({
    name,
    sanitizeOps: false,
    sanitizeResources: false,
    async fn() {
      const database = options.database ? await options.database() : { url: requireDbUrl(), close: async () => {} };
      const dbUrl = database.url;
      const tag = name.toLowerCase().replace(/[^a-z0-9]+/g, "-").slice(0, 24).replace(/-$/, "");
      const sql = postgres(dbUrl, { max: 4, onnotice: () => {} });
      const ending = new AbortController();
      const companies: string[] = [];
      const receivers: Receiver[] = [];
      const dispatchers: Dispatcher[] = [];
      let savedSettings: Record<string, unknown> | null = null;
      const t: E2E = {
        sql,
        tag,
        ending: ending.signal,
        async company() {
          const [row] = await sql`select tests.create_company(${`e2e ${name} ${crypto.randomUUID()}`}) as id`;
          companies.push(row.id);
          return row.id;
        },
        async webhook(companyId, url, triggerType = "PROCESS_REVISED") {
          const [row] = await sql`select tests.create_webhook(${companyId}, ${triggerType}, ${url}) as id`;
          return row.id;
        },
        receiver(handler = () => new Response("ok")) {
          const arrivals: number[] = [];
          const receiver = startReceiver((request) => {
            arrivals.push(Date.now());
            return handler(request);
          });
          receivers.push(receiver);
          return {
            ...receiver,
            arrivals,
            webhookIds: () => [...new Set(receiver.requests.map((r) => r.headers.get("webhook-id") ?? ""))],
          };
        },
        async dispatcher(options) {
          const d = await spawnDispatcher(tag, dbUrl, options);
          dispatchers.push(d);
          return d;
        },
        async settings(values) {
          if (savedSettings === null) {
            const [row] = await sql`select * from private.webhook_settings`;
            savedSettings = Object.fromEntries(Object.keys(values).map((k) => [k, row[k]]));
          }
          for (const [key, value] of Object.entries(values)) {
            if (!(key in savedSettings)) {
              const [row] = await sql`select * from private.webhook_settings`;
              savedSettings[key] = row[key];
            }
            await sql`update private.webhook_settings set ${sql({ [key]: value })}`;
          }
        },
      };

      let failed = false;
      try {
        await fn(t);
      } catch (error) {
        failed = true;
        for (const d of dispatchers) console.error(`--- output of dispatcher ${d.workerId} ---\n${d.output()}`);
        throw error;
      } finally {
        try {
          ending.abort();
          await Promise.all(dispatchers.map((d) => d.stop()));
          if (savedSettings !== null) await sql`update private.webhook_settings set ${sql(savedSettings)}`;
          await Promise.all(receivers.map((r) => r.close()));
          const ours = sql.array(companies);
          if (failed) {
            // Keep the rows for inspection, but let nothing of ours stay due for later tests.
            await sql`update public.webhooks set is_active = false where company_id = any (${ours}::uuid[])`;
            console.error(`rows kept for inspection: companies ${companies.join(", ")}`);
          } else {
            await sql`delete from public.companies where id = any (${ours}::uuid[])`;
          }
          await sql.end({ timeout: 5 });
        } finally {
          await database.close(failed);
        }
      }
    },
  });
}
