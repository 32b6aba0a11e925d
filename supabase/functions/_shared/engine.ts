// Dispatch core: claim due deliveries, send them concurrently under the
// limiter, and record every attempt. It knows the database only through the
// DeliveryStore interface (pg_store.ts in production, an in-memory double in
// tests), and takes clock and randomness as parameters so tests control them.
//
// At-least-once: results are recorded in one store call per batch after the
// sends. If the dispatcher dies before that call, the leases expire and
// another dispatcher sends again; receivers deduplicate on webhook-id.

import { type DispatcherConfig, LEASE_SAFETY_MARGIN_MS, LEASE_START_WINDOW_MS } from "./config.ts";
import { Limiter } from "./limiter.ts";
import { nextRetryDelaySeconds } from "./retry.ts";
import { type AttemptResult, type Outcome, sendWebhook } from "./send.ts";
import { signWebhook } from "./sign.ts";
import type { Resolver } from "./ssrf.ts";

/** A row of private.claim_due_deliveries. */
export interface ClaimedDelivery {
  delivery_id: string;
  event_id: string;
  webhook_id: string;
  company_id: string;
  url: string;
  /** The full JSON body; a string is sent verbatim, anything else is JSON-encoded. */
  payload: unknown;
  /** The attempt about to be made, 1-based. */
  attempt_number: number;
  /** Current secret first, then a rotated-out one still inside its overlap. */
  secrets: string[];
  event_created_at: string | Date;
}

/** An element of the `results` array of private.record_delivery_results. */
export interface DeliveryResult {
  delivery_id: string;
  attempt_number: number;
  outcome: Outcome;
  status: number | null;
  duration_ms: number;
  response_body: string | null;
  error: string | null;
  /** ISO timestamp of the next attempt; null on a failure means retries are exhausted. */
  next_attempt_at: string | null;
  /** HTTP 410: the SQL side disables the endpoint. */
  gone: boolean;
}

export interface DeliveryStore {
  /** Leases up to `batchSize` due deliveries for `leaseSeconds`. */
  claim(batchSize: number, leaseSeconds: number): Promise<ClaimedDelivery[]>;
  /** Records the attempts of one batch and ends their leases. */
  record(results: DeliveryResult[]): Promise<void>;
  /** Gives leases back unattempted (shutdown, or too little lease or budget left). */
  release(deliveryIds: string[]): Promise<void>;
}

export type EngineConfig = Pick<
  DispatcherConfig,
  | "allowedTargets"
  | "timeoutMs"
  | "batchSize"
  | "concurrency"
  | "endpointConcurrency"
  | "leaseSeconds"
  | "retrySchedule"
>;

export interface EngineDeps {
  store: DeliveryStore;
  config: EngineConfig;
  clock?: () => Date;
  random?: () => number;
  /** DNS resolver for the SSRF check; Deno.resolveDns by default. */
  resolve?: Resolver;
  /** What the per-key concurrency cap groups by; the endpoint (webhook id) by default. */
  limiterKey?: (delivery: ClaimedDelivery) => string;
}

/**
 * claimed = succeeded + retried + failed + blocked + released.
 * `retried`: the attempt failed and another is scheduled; `failed`: it failed
 * and none is (schedule exhausted, or HTTP 410); `released`: handed back
 * unattempted.
 */
export interface DrainCounts {
  claimed: number;
  succeeded: number;
  failed: number;
  retried: number;
  blocked: number;
  released: number;
}

export interface DrainOptions {
  /** Stop claiming, and start no attempt, that could end later than this from now. */
  budgetMs: number;
  /** Graceful shutdown: unstarted attempts are released instead of sent. */
  signal?: AbortSignal;
}

export function emptyCounts(): DrainCounts {
  return { claimed: 0, succeeded: 0, failed: 0, retried: 0, blocked: 0, released: 0 };
}

export class DispatchEngine {
  readonly #store: DeliveryStore;
  readonly #config: EngineConfig;
  readonly #clock: () => Date;
  readonly #random: () => number;
  readonly #resolve: Resolver | undefined;
  readonly #limiterKey: (delivery: ClaimedDelivery) => string;
  // One limiter per engine, so overlapping drains (HTTP mode wake-ups) share the caps.
  readonly #limiter: Limiter;

  constructor(deps: EngineDeps) {
    const { leaseSeconds, timeoutMs } = deps.config;
    // Same rule parseConfig enforces, for configs built by hand: with a
    // shorter lease no attempt could ever start, and drain would spin.
    if (leaseSeconds * 1000 < timeoutMs + LEASE_SAFETY_MARGIN_MS + LEASE_START_WINDOW_MS) {
      throw new RangeError(
        `leaseSeconds (${leaseSeconds}) must cover timeoutMs (${timeoutMs}) plus ${LEASE_SAFETY_MARGIN_MS} ms ` +
          `and ${LEASE_START_WINDOW_MS} ms to start sending`,
      );
    }
    this.#store = deps.store;
    this.#config = deps.config;
    this.#clock = deps.clock ?? (() => new Date());
    this.#random = deps.random ?? Math.random;
    this.#resolve = deps.resolve;
    this.#limiterKey = deps.limiterKey ?? ((d) => d.webhook_id);
    this.#limiter = new Limiter({ global: deps.config.concurrency, perKey: deps.config.endpointConcurrency });
  }

  /** Claims and processes one batch. */
  drainOnce(): Promise<DrainCounts> {
    return this.#runBatch(Number.POSITIVE_INFINITY);
  }

  /** Processes batches until nothing is due, the budget runs out, or the signal fires. */
  async drain({ budgetMs, signal }: DrainOptions): Promise<DrainCounts> {
    // A NaN budget (a garbled env knob upstream) would silently do nothing.
    if (!(budgetMs >= 0)) throw new RangeError(`budgetMs must be a non-negative number, got ${budgetMs}`);
    const deadline = this.#now() + budgetMs;
    const total = emptyCounts();
    // Claim only while at least one attempt could still finish in budget:
    // claiming rows we would immediately release just churns leases.
    while (!signal?.aborted && this.#now() + this.#config.timeoutMs <= deadline) {
      const counts = await this.#runBatch(deadline, signal);
      for (const k of Object.keys(total) as (keyof DrainCounts)[]) total[k] += counts[k];
      if (counts.claimed === 0) break;
    }
    return total;
  }

  async #runBatch(deadline: number, signal?: AbortSignal): Promise<DrainCounts> {
    const { batchSize, leaseSeconds, timeoutMs } = this.#config;
    // Read the clock before claiming: the lease starts no earlier than this.
    const leaseEnd = this.#now() + leaseSeconds * 1000 - LEASE_SAFETY_MARGIN_MS;
    const rows = await this.#store.claim(batchSize, leaseSeconds);
    const counts = emptyCounts();
    if (rows.length === 0) return counts;
    counts.claimed = rows.length;

    // The latest moment an attempt may start and still end (after its full
    // timeout) inside both the lease and the drain budget. Rows whose limiter
    // slot comes later are released: sending them after the lease ran out
    // would race another dispatcher that already re-claimed them.
    const startBy = Math.min(leaseEnd, deadline) - timeoutMs;
    const outcomes = await Promise.all(
      rows.map((row) =>
        this.#limiter.run(this.#limiterKey(row), async () => {
          if (signal?.aborted || this.#now() > startBy) return null;
          return await this.#attempt(row);
        })
      ),
    );

    const results: DeliveryResult[] = [];
    const released: string[] = [];
    outcomes.forEach((result, i) => {
      if (result === null) released.push(rows[i].delivery_id);
      else results.push(result);
    });
    if (results.length > 0) await this.#store.record(results);
    if (released.length > 0) await this.#store.release(released);

    counts.released = released.length;
    for (const r of results) {
      if (r.outcome === "succeeded") counts.succeeded++;
      else if (r.outcome === "blocked") counts.blocked++;
      else if (r.next_attempt_at !== null) counts.retried++;
      else counts.failed++;
    }
    return counts;
  }

  /** One attempt for one claimed row; never throws. */
  async #attempt(row: ClaimedDelivery): Promise<DeliveryResult> {
    let attempt: AttemptResult;
    try {
      const body = typeof row.payload === "string" ? row.payload : JSON.stringify(row.payload);
      // Signed at send time, after any wait for a limiter slot, so the
      // timestamp is fresh for the receiver's replay window.
      const headers = signWebhook({ msgId: row.delivery_id, timestamp: this.#clock(), body, secrets: row.secrets });
      attempt = await sendWebhook(
        { url: row.url, body, headers: { ...headers } },
        { allowedTargets: this.#config.allowedTargets, timeoutMs: this.#config.timeoutMs, resolve: this.#resolve },
      );
    } catch (e) {
      // Only our own bugs or a malformed row (bad secret) land here; record
      // them as a failed attempt rather than losing the batch.
      attempt = {
        outcome: "failed",
        status: null,
        duration_ms: 0,
        response_body: null,
        error: `dispatcher error: ${e instanceof Error ? e.message : String(e)}`,
        retry_after_seconds: null,
        gone: false,
      };
    }
    return {
      delivery_id: row.delivery_id,
      attempt_number: row.attempt_number,
      outcome: attempt.outcome,
      status: attempt.status,
      duration_ms: attempt.duration_ms,
      response_body: attempt.response_body,
      error: attempt.error,
      next_attempt_at: this.#nextAttemptAt(row.attempt_number, attempt),
      gone: attempt.gone,
    };
  }

  /**
   * Only plain failures are retried. Success is final; a blocked target is a
   * policy decision that retrying cannot change; 410 Gone means the receiver
   * asked us to stop.
   */
  #nextAttemptAt(attemptNumber: number, attempt: AttemptResult): string | null {
    if (attempt.outcome !== "failed" || attempt.gone) return null;
    const delay = nextRetryDelaySeconds(attemptNumber, this.#config.retrySchedule, {
      retryAfterSeconds: attempt.retry_after_seconds,
      random: this.#random,
    });
    return delay === null ? null : new Date(this.#now() + delay * 1000).toISOString();
  }

  #now(): number {
    return this.#clock().getTime();
  }
}
