// Dispatch core: claim due deliveries, send them concurrently under the
// limiter, and record every attempt. It knows the database only through the
// DeliveryStore interface (pg_store.ts in production, an in-memory double in
// tests), and takes clock and randomness as parameters so tests control them.
//
// drain() is pipelined: while one claimed batch is still sending, the next is
// claimed, and results are recorded as batches finish, by one writer that
// coalesces whatever finished while its previous call was in flight. Waiting
// for a whole batch (its slowest send, then the record call) before claiming
// again left the HTTP slots idle most of the time.
//
// At-least-once: results are recorded after the sends. If the dispatcher dies
// before that, the leases expire and another dispatcher sends again;
// receivers deduplicate on webhook-id.

import { type DispatcherConfig, LEASE_SAFETY_MARGIN_MS } from "./config.ts";
import { Limiter } from "./limiter.ts";
import { nextRetryDelaySeconds } from "../delivery/retry.ts";
import { type AttemptResult, sendWebhook } from "../delivery/send.ts";
import { signWebhook } from "../delivery/sign.ts";
import type { ClaimedDelivery, DeliveryResult, DeliveryStore } from "./store.ts";
import { ResultWriter } from "./writer.ts";

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
  maxDeliveries?: number; // claims at most this many deliveries in this drain (HTTP mode: bounds one wake-up's CPU)
}

export function emptyCounts(): DrainCounts {
  return { claimed: 0, succeeded: 0, failed: 0, retried: 0, blocked: 0, released: 0 };
}

export class DispatchEngine {
  readonly #store: DeliveryStore;
  readonly #config: EngineConfig;
  readonly #clock: () => Date;
  readonly #random: () => number;
  // One limiter per engine, so overlapping drains (HTTP mode wake-ups) share the caps.
  readonly #limiter: Limiter;

  /** `deps.config` comes from parseConfig, whose rules (lease, budgets, claim bounds) it satisfies. */
  constructor(deps: EngineDeps) {
    this.#store = deps.store;
    this.#config = deps.config;
    this.#clock = deps.clock ?? (() => new Date());
    this.#random = deps.random ?? Math.random;
    this.#limiter = new Limiter({ global: deps.config.concurrency, perKey: deps.config.endpointConcurrency });
  }

  /** Processes batches until nothing is due, the budget runs out, or the signal fires. */
  async drain({ budgetMs, signal }: DrainOptions): Promise<DrainCounts> {
    // A NaN budget (a garbled env knob upstream) would silently do nothing.
    if (!(budgetMs >= 0)) throw new RangeError(`budgetMs must be a non-negative number, got ${budgetMs}`);
    const { batchSize, timeoutMs } = this.#config;
    const deadline = this.#now() + budgetMs;
    const total = emptyCounts();
    const writer = new ResultWriter(this.#store);
    const batches = new Set<Promise<void>>();
    // Claimed rows not yet attempted (or given up); a settled row wakes the loop.
    let unsettled = 0;
    let wake = () => {};
    const rows = {
      claimed: (n: number) => void (unsettled += n),
      settled: () => {
        unsettled--;
        wake();
      },
    };
    let backlog = true;
    // Claim only while at least one attempt could still finish in budget:
    // claiming rows we would immediately release just churns leases.
    while (!signal?.aborted && !writer.failed && this.#now() + timeoutMs <= deadline) {
      // After a full batch more is probably due: claim the next one as soon as
      // fewer than a batch of rows is left unsettled, so at most about two
      // batches are leased at once. After a short batch nothing more was due:
      // let everything settle first, then look again.
      if (unsettled >= (backlog ? batchSize : 1)) {
        await new Promise<void>((resolve) => (wake = resolve));
        continue;
      }
      const { size, done } = await this.#claimBatch(deadline, signal, writer, rows);
      if (size === 0) break;
      backlog = size >= batchSize;
      const counted = done.then((counts) => {
        for (const k of Object.keys(total) as (keyof DrainCounts)[]) total[k] += counts[k];
        batches.delete(counted);
      });
      batches.add(counted);
    }
    await Promise.all(batches);
    await writer.settled();
    return total;
  }

  /**
   * Claims one batch and starts its attempts under the limiter. `done` settles
   * once every row has been attempted or given up and its results are handed
   * to the writer; it never rejects.
   */
  async #claimBatch(
    deadline: number,
    signal: AbortSignal | undefined,
    writer: ResultWriter,
    rows: { claimed(n: number): void; settled(): void },
  ): Promise<{ size: number; done: Promise<DrainCounts> }> {
    const { batchSize, leaseSeconds, timeoutMs } = this.#config;
    // Read the clock before claiming: the lease starts no earlier than this.
    const leaseEnd = this.#now() + leaseSeconds * 1000 - LEASE_SAFETY_MARGIN_MS;
    const claimed = await this.#store.claim(batchSize, leaseSeconds);
    rows.claimed(claimed.length);

    // The latest moment an attempt may start and still end (after its full
    // timeout) inside both the lease and the drain budget. Rows whose limiter
    // slot comes later are released: sending them after the lease ran out
    // would race another dispatcher that already re-claimed them.
    const startBy = Math.min(leaseEnd, deadline) - timeoutMs;
    const done = Promise.all(
      claimed.map((row) =>
        // The per-endpoint cap groups by webhook: one slow receiver holds only its own slots.
        this.#limiter.run(row.webhook_id, async () => {
          if (signal?.aborted || this.#now() > startBy) return null;
          return await this.#attempt(row);
        }).finally(rows.settled)
      ),
    ).then((outcomes) => {
      const counts = emptyCounts();
      counts.claimed = claimed.length;
      const results: DeliveryResult[] = [];
      const released: string[] = [];
      outcomes.forEach((result, i) => {
        if (result === null) released.push(claimed[i].delivery_id);
        else results.push(result);
      });
      writer.write(results, released);

      counts.released = released.length;
      for (const r of results) {
        if (r.outcome === "succeeded") counts.succeeded++;
        else if (r.outcome === "blocked") counts.blocked++;
        else if (r.next_attempt_at !== null) counts.retried++;
        else counts.failed++;
      }
      return counts;
    });
    return { size: claimed.length, done };
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
        { allowedTargets: this.#config.allowedTargets, timeoutMs: this.#config.timeoutMs },
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
