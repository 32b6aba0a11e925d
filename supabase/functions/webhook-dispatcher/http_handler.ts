// HTTP mode, as Supabase Edge Functions run it: woken by pg_net (on commit) and pg_cron
// (retries), it drains due deliveries until none are left or its time budget runs out,
// and answers with counts. Kept apart from Deno.serve so tests call it directly.
//
// The Edge Runtime's limits are the worker's, not the request's: its wall clock counts
// from the worker's boot across every request it serves, and it can shut the worker down
// at any moment (wall clock, CPU, memory), announcing it with `beforeunload`. So each
// drain's budget is what is left of the worker's life, a drain claims at most
// WEBHOOK_HTTP_MAX_DELIVERIES, one drain runs at a time, and the shutdown signal stops
// claiming while what finished is recorded. A drain the database failed leaves the results
// of the attempts it made unwritten; on the Edge Runtime they are written before the next
// drain starts, retried here (under waitUntil) while the database is away, since no next
// wake-up may reach this worker.
import { type DispatcherConfig, oneAttemptMs, workerLifeMs } from "../_shared/dispatch/config.ts";
import type { DispatchEngine, DrainCounts } from "../_shared/dispatch/engine.ts";

export interface HttpHandlerDeps {
  engine: Pick<DispatchEngine, "drain" | "extend" | "poke" | "unwritten">;
  config: Pick<
    DispatcherConfig,
    "wakeUpKeys" | "httpBudgetMs" | "timeoutMs" | "wallClockMs" | "httpMaxDeliveries"
  >;
  /**
   * Milliseconds since the worker booted, where the runtime limits a worker's life: in the
   * Edge Runtime, performance.now() (counted from the isolate's start). Absent for a plain
   * Deno process (the local stack's HTTP mode), which lives as long as it runs.
   */
  age?: () => number;
  /** Aborted when the runtime is about to shut the worker down (see abortOnUnload). */
  shutdown?: AbortSignal;
  /**
   * Supabase's EdgeRuntime.waitUntil where it exists: the drain then outlives the request,
   * which answers 202 at once (pg_net gives up waiting after a few seconds, and its
   * disconnect must not cut a drain short). Without it the drain runs inline and the
   * response carries the counts.
   */
  waitUntil?: (work: Promise<unknown>) => void;
  log?: (message: string) => void;
}

const json = (status: number, body: unknown, headers: Record<string, string> = {}) =>
  new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json", ...headers } });

const encoder = new TextEncoder();
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** How long after a failed drain its unwritten results are retried here (see writeLeftovers). */
const LEFTOVER_RETRY_MS = 60_000;

/**
 * Whether `given` is one of `keys`, in time that depends on neither where a key differs
 * nor which key matched. No key, or an empty token, never matches.
 */
export function acceptedKey(given: string, keys: readonly string[]): boolean {
  const a = encoder.encode(given);
  let match = 0;
  for (const key of keys) {
    const b = encoder.encode(key);
    let diff = a.length ^ b.length;
    for (let i = 0; i < Math.max(a.length, b.length); i++) diff |= (a[i] ?? 0) ^ (b[i] ?? 0);
    match |= diff === 0 && b.length > 0 ? 1 : 0;
  }
  return match === 1 && a.length > 0;
}

/** Why a wake-up did not drain; the answer is 503 (pg_net keeps it for operators to see). */
type Refusal = { refused: string };

export function createHttpHandler(
  { engine, config, age, shutdown, waitUntil, log = console.log }: HttpHandlerDeps,
) {
  const minBudgetMs = oneAttemptMs(config);
  const lifeMs = workerLifeMs(config);

  /** The budget a drain starting now may use, or why it may not start. */
  const budget = (): number | Refusal => {
    if (shutdown?.aborted) return { refused: "the worker is shutting down" };
    const budgetMs = Math.min(config.httpBudgetMs, age ? lifeMs - age() : Infinity);
    if (budgetMs < minBudgetMs) {
      return {
        refused:
          "the worker is too close to its wall-clock limit to start an attempt; a fresh one takes the next wake-up",
      };
    }
    return budgetMs;
  };

  // One drain at a time: wake-ups arriving while one runs share the next one, which
  // starts when it ends (so nothing committed meanwhile waits for the retry tick). The
  // running one looks at once too: it may be waiting only on requests that hang at another
  // tenant's endpoint (up to WEBHOOK_TIMEOUT_MS), and the new work must not wait for those.
  // Where drains run under waitUntil (the Edge Runtime: each wake-up is answered at once,
  // and the worker's life bounds the budget), it also gets what a new drain would (the
  // budget from now, WEBHOOK_HTTP_MAX_DELIVERIES more), in case it is past what it could
  // start. A drain answered inline is not extended: its answer must come.
  let running: Promise<unknown> | null = null;
  let queued: Promise<DrainCounts | Refusal> | null = null;
  // A failed drain's leftovers are being written (see writeLeftovers): wake-ups only poke.
  let writingLeftovers = false;
  const start = (): Promise<DrainCounts | Refusal> => {
    const budgetMs = budget();
    const drain = typeof budgetMs !== "number"
      ? Promise.resolve(budgetMs)
      : engine.drain({ budgetMs, signal: shutdown, maxDeliveries: config.httpMaxDeliveries });
    // Under waitUntil, the next drain waits for a failed one's leftovers to be written (or
    // given up on), and so does the promise the runtime keeps the worker for (below).
    const settled = drain.catch(() => (waitUntil ? writeLeftovers().catch(() => {}) : undefined));
    running = settled;
    settled.then(() => {
      if (running === settled) running = null;
    });
    return drain;
  };
  const requestDrain = (): Promise<DrainCounts | Refusal> => {
    if (running === null) return start();
    const more = waitUntil && !writingLeftovers ? budget() : null;
    if (typeof more === "number") engine.extend({ budgetMs: more, maxDeliveries: config.httpMaxDeliveries });
    else engine.poke();
    queued ??= running.then(() => {
      queued = null;
      return start();
    });
    return queued;
  };

  /**
   * A drain the database failed keeps the results of the attempts it made in the engine,
   * for the next drain to write first. The Edge Runtime may end this worker before another
   * wake-up reaches it, and the attempts would be missing from the log (their deliveries
   * sent again once their leases ran out). So there they are written now, under waitUntil:
   * retried with a growing pause while the database is away, for at most
   * LEFTOVER_RETRY_MS; after that the next drain writes them first. The retries claim
   * nothing (no deliveries allowed, and no wake-up extends them) and take the shutdown
   * signal, under which a drain still writes what it holds. A plain Deno process (answers
   * inline) lives on: its next drain writes them, and its wake-ups wait for nothing.
   */
  async function writeLeftovers(): Promise<void> {
    writingLeftovers = true;
    try {
      const until = Date.now() + LEFTOVER_RETRY_MS;
      for (let wait = 250; engine.unwritten > 0 && Date.now() < until; wait = Math.min(wait * 2, 4_000)) {
        await sleep(wait);
        try {
          await engine.drain({ budgetMs: 0, maxDeliveries: 0, signal: shutdown });
        } catch (error) {
          log(`writing the results a failed drain left failed (${error}); retrying`);
        }
      }
    } finally {
      writingLeftovers = false;
    }
  }

  return async (request: Request): Promise<Response> => {
    const bearer = /^Bearer\s+(.+)$/i.exec(request.headers.get("authorization") ?? "")?.[1]?.trim() ?? "";
    // Nothing from the request is echoed back, authorized or not.
    if (!acceptedKey(bearer, config.wakeUpKeys)) return json(401, { error: "unauthorized" });
    if (request.method !== "POST") return json(405, { error: "use POST" });

    const started = Date.now();
    // The body (pg_net sends a small JSON reason) is not needed: the outbox is the truth.
    await request.body?.cancel();
    const now = budget();
    if (typeof now !== "number") return json(503, { error: now.refused });
    if (waitUntil) {
      waitUntil(requestDrain().catch((error) => log(`drain failed: ${error}`)).then(() => running));
      return json(202, { accepted: true });
    }
    const outcome = await requestDrain();
    if ("refused" in outcome) return json(503, { error: outcome.refused });
    return json(200, { ...outcome, duration_ms: Date.now() - started });
  };
}

/**
 * Aborts `controller` when the runtime announces the worker's end (`beforeunload`; the Edge
 * Runtime's event carries the reason in `detail.reason`). Returns the remover.
 */
export function abortOnUnload(controller: AbortController, log: (message: string) => void = console.log): () => void {
  const listener = (event: Event) => {
    if (controller.signal.aborted) return;
    const reason = (event as CustomEvent<{ reason?: string }>).detail?.reason;
    log(`shutting down${reason ? ` (${reason})` : ""}: no more claims; attempts in flight finish and are recorded`);
    controller.abort();
  };
  addEventListener("beforeunload", listener);
  return () => removeEventListener("beforeunload", listener);
}
