// Dispatch core: claim due deliveries, send them, record every attempt. It knows the
// database only through the DeliveryStore interface (pg_store.ts), and takes clock and
// randomness as parameters so tests control them.
//
// One loop per process, one database call at a time. The loop never waits on its slowest
// request: each step records whatever attempts have finished since the last one and, in
// the same call, claims as much as it has free slots for (up to `concurrency` requests in
// flight, all endpoints together), and starts every claimed delivery at once. Recording
// is what frees an endpoint's slot in the database, so recording and claiming in one round
// trip keeps a busy endpoint's slots filled. Per-endpoint caps, the circuit breaker and
// ordered keys are the database's: a claim never returns more than an endpoint may take,
// so nothing claimed waits in this process and no lease runs out in a queue.
//
// Results that are ready while attempts the last step started are still in flight wait
// for them a little (at most as long as the last round trip took) and go out together. A
// round trip costs about the same for one result as for ten, and the slots are busy until
// it ends: written at once, the results of attempts that end just after it would each wait
// for a round trip of their own, and an endpoint's slots would split into halves taking
// turns. Only that last wave is waited for: older attempts still out are slow ones (a
// hanging endpoint), which nothing should wait on.
//
// Going to sleep follows the outbox's wake-up protocol (see the scheduling migration):
// when a claim finds nothing, the loop clears the heartbeat (goingIdle), waits until the
// transactions that were in progress have ended, and claims once more; only then does
// it sleep. A transaction that saw the heartbeat skipped its NOTIFY/pg_net wake-up, and
// that last claim is what picks its deliveries up.
//
// At-least-once: results are recorded after the sends. If the dispatcher dies before
// that, the leases expire and another dispatcher sends again; receivers deduplicate on
// webhook-id. If only a database call fails (an outage), the loop stops and what it had
// not written yet stays with the engine: the next run or drain writes it first (the
// database ignores a result whose lease was lost meanwhile, and logs its attempt).

import { type DispatcherConfig, LEASE_SAFETY_MARGIN_MS, oneAttemptMs } from "./config.ts";
import { nextRetryDelaySeconds } from "../delivery/retry.ts";
import { type AttemptResult, sendWebhook } from "../delivery/send.ts";
import { signWebhook } from "../delivery/sign.ts";
import {
  type ClaimedDelivery,
  type DeliveryResult,
  type DeliveryStore,
  type IdleMark,
  PartlyRecorded,
} from "./store.ts";

export type EngineConfig = Pick<
  DispatcherConfig,
  "allowedTargets" | "timeoutMs" | "batchSize" | "concurrency" | "leaseSeconds" | "retrySchedule"
>;

/** Told about every attempt, e.g. for metrics. Must not throw. */
export interface EngineObserver {
  attempted(result: DeliveryResult): void;
}

export interface EngineDeps {
  store: DeliveryStore;
  config: EngineConfig;
  clock?: () => Date;
  random?: () => number;
  observer?: EngineObserver;
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
  /** Claim nothing, and start no attempt, that could end later than this from now. */
  budgetMs: number;
  /** Stops claiming; attempts in flight finish and are recorded. */
  signal?: AbortSignal;
  /** Claims at most this many deliveries in this drain (HTTP mode: bounds one wake-up's CPU). */
  maxDeliveries?: number;
}

export interface RunOptions {
  /** Stops the loop: attempts in flight finish and are recorded. */
  signal: AbortSignal;
  /** Longest sleep when nothing is announced (a safety net; NOTIFY and timers do the work). */
  maxIdleMs?: number;
}

export function emptyCounts(): DrainCounts {
  return { claimed: 0, succeeded: 0, failed: 0, retried: 0, blocked: 0, released: 0 };
}

/** After a claim finds nothing while attempts are in flight, how long to keep looking
 * (their records free slots) before going through the idle protocol. */
const BUSY_GRACE_MS = 250;
/** How often to look again meanwhile, and while waiting for in-progress transactions. */
const POLL_MS = 20;
/** The longest that ready results wait for the last wave of attempts to join them (see above). */
const GATHER_MAX_MS = 20;

interface Loop {
  deadline: number;
  /** Deliveries this loop may still claim. */
  maxDeliveries: number;
  signal: AbortSignal | undefined;
  /** Stop once idle (HTTP mode) rather than sleep (worker mode). */
  untilIdle: boolean;
  maxIdleMs: number;
  counts: DrainCounts;
  done: Promise<DrainCounts>;
}

export class DispatchEngine {
  readonly #store: DeliveryStore;
  readonly #config: EngineConfig;
  readonly #clock: () => Date;
  readonly #random: () => number;
  readonly #observer: EngineObserver | undefined;
  #inFlight = 0;
  // The attempts the latest step started (a wave), and how many of them are in flight.
  #wave = 0;
  #waveInFlight = 0;
  readonly #totals = emptyCounts();
  #loop: Loop | null = null;
  // Results of finished attempts, and claimed rows given back unstarted, not yet written.
  #results: DeliveryResult[] = [];
  #released: string[] = [];
  // Something changed: an attempt ended, or new work was announced.
  #changed = false;
  // Whether a claim could find something: new work was announced, a claim came back full,
  // or a timer ran out. An attempt ending is not a reason: its record claims anyway.
  #mayHaveWork = true;
  #wake: () => void = () => {};

  /** `deps.config` comes from parseConfig, whose rules (lease, budgets, claim bounds) it satisfies. */
  constructor(deps: EngineDeps) {
    this.#store = deps.store;
    this.#config = deps.config;
    this.#clock = deps.clock ?? (() => new Date());
    this.#random = deps.random ?? Math.random;
    this.#observer = deps.observer;
  }

  /** Requests in flight right now. */
  get inFlight(): number {
    return this.#inFlight;
  }

  /** Results and releases a failed database call left unwritten: the next drain or run writes them first. */
  get unwritten(): number {
    return this.#results.length + this.#released.length;
  }

  /** Every delivery this engine claimed, and how each ended, since it was made. */
  get totals(): Readonly<DrainCounts> {
    return this.#totals;
  }

  /** Resolves when no loop runs (at once if none does), however the running one ends. */
  idle(): Promise<void> {
    return this.#loop === null ? Promise.resolve() : this.#loop.done.then(() => {}, () => {});
  }

  /** New work may be due (a NOTIFY, an HTTP wake-up): look now. */
  poke(): void {
    this.#mayHaveWork = true;
    this.#changed = true;
    this.#wake();
  }

  /**
   * HTTP mode: a wake-up that arrives while a drain runs gives that drain what a drain
   * starting now would get (`budgetMs` from now, `maxDeliveries` more than it has claimed),
   * and pokes it. The running drain may be past what it may start, its only requests in
   * flight hanging at one tenant's endpoint: new work must not wait for those to end.
   * Nothing happens to a worker-mode loop but the poke.
   */
  extend({ budgetMs, maxDeliveries }: { budgetMs: number; maxDeliveries: number }): void {
    const loop = this.#loop;
    if (loop !== null && loop.untilIdle && budgetMs >= 0 && maxDeliveries >= 0) {
      loop.deadline = Math.max(loop.deadline, this.#now() + budgetMs);
      loop.maxDeliveries = Math.max(loop.maxDeliveries, loop.counts.claimed + maxDeliveries);
    }
    this.poke();
  }

  /**
   * HTTP mode: delivers until nothing is due and nothing is in flight, or the budget
   * ends. One loop per process: the HTTP handler starts a drain only when the last one
   * has ended (and extends the running one meanwhile).
   */
  drain({ budgetMs, signal, maxDeliveries = Number.POSITIVE_INFINITY }: DrainOptions): Promise<DrainCounts> {
    // A NaN budget (a garbled env knob upstream) would silently do nothing.
    if (!(budgetMs >= 0)) throw new RangeError(`budgetMs must be a non-negative number, got ${budgetMs}`);
    if (!(maxDeliveries >= 0)) {
      throw new RangeError(`maxDeliveries must be a non-negative number, got ${maxDeliveries}`);
    }
    if (this.#loop !== null) throw new Error("the dispatch loop is already running");
    return this.#start({ deadline: this.#now() + budgetMs, maxDeliveries, signal, untilIdle: true, maxIdleMs: 0 });
  }

  /** Worker mode: delivers until the signal fires, sleeping while nothing is due. */
  run({ signal, maxIdleMs = 30_000 }: RunOptions): Promise<DrainCounts> {
    if (this.#loop !== null) throw new Error("the dispatch loop is already running");
    return this.#start({
      deadline: Number.POSITIVE_INFINITY,
      maxDeliveries: Number.POSITIVE_INFINITY,
      signal,
      untilIdle: false,
      maxIdleMs,
    });
  }

  #start(options: Omit<Loop, "counts" | "done">): Promise<DrainCounts> {
    const loop = { ...options, counts: emptyCounts() } as Loop;
    loop.done = this.#run(loop).finally(() => (this.#loop = null));
    this.#loop = loop;
    return loop.done;
  }

  async #run(loop: Loop): Promise<DrainCounts> {
    const { batchSize, concurrency } = this.#config;
    const attempts = new Set<Promise<void>>();
    const abort = () => this.poke();
    loop.signal?.addEventListener("abort", abort);
    let quietSince: number | null = null;
    let lastClaimFound = true;
    let handedOff = false;
    // How long the last step took, and until when ready results wait for the last wave of
    // attempts. Real time, not the engine's clock: it measures the database, it schedules nothing.
    let lastStepMs = 0;
    let gatherUntil: number | null = null;
    // Transactions that were in progress when the heartbeat was cleared; null while awake.
    let idle: { mark: IdleMark; settled: boolean } | null = null;
    try {
      while (!loop.signal?.aborted) {
        this.#changed = false;
        const left = loop.maxDeliveries - loop.counts.claimed;
        const canStart = this.#now() + oneAttemptMs(this.#config) <= loop.deadline && left > 0;
        const free = concurrency - this.#inFlight;
        const writing = this.#results.length > 0 || this.#released.length > 0;
        // A claim of its own only when it could find something; while going idle the
        // protocol's looks always claim.
        const looking = writing || this.#mayHaveWork || idle !== null;
        const wanted = canStart && free > 0 && looking ? Math.min(batchSize, free, left) : 0;
        if (writing && this.#waveInFlight > 0) {
          gatherUntil ??= performance.now() + Math.min(lastStepMs, GATHER_MAX_MS);
          if (performance.now() < gatherUntil) {
            await this.#waitForChange(gatherUntil - performance.now());
            continue;
          }
        }
        gatherUntil = null;
        if (wanted > 0 || writing) {
          const stepStart = performance.now();
          const rows = await this.#step(wanted, loop, attempts);
          lastStepMs = performance.now() - stepStart;
          if (wanted > 0) {
            lastClaimFound = rows > 0;
            // Came back short: nothing more is due now (until something announces it).
            if (rows < wanted) this.#mayHaveWork = false;
          }
          if (rows > 0) {
            quietSince = null;
            idle = null; // a claim that finds work sets the heartbeat again
            // Every slot (or this drain's share) taken and more is probably due: let
            // another dispatcher, or another invocation of the function, have it.
            if (rows === wanted && (rows === free || rows === left) && !handedOff) {
              handedOff = true;
              await this.#store.handOff();
            }
            continue;
          }
          if (wanted === 0) continue; // only wrote: look at what changed meanwhile
        }
        // Attempts that ended meanwhile are recorded (and their slots refilled) first.
        if (this.#results.length > 0 || this.#released.length > 0) continue;
        if (free > 0) handedOff = false;
        if (!canStart && this.#inFlight === 0) break; // budget (time or deliveries) spent

        // Nothing to claim now. Attempts in flight free slots when they are recorded:
        // keep looking a little while, awake, before going idle.
        quietSince ??= this.#now();
        if (this.#inFlight > 0 && idle === null && this.#now() - quietSince < BUSY_GRACE_MS) {
          await this.#waitForChange(POLL_MS);
          continue;
        }
        if (idle === null) idle = { mark: await this.#store.goingIdle(), settled: false };
        if (!idle.settled) {
          // Look again until every transaction that may have seen us awake has ended.
          idle.settled = await this.#store.transactionsEnded(idle.mark);
          if (!idle.settled) await this.#waitForChange(POLL_MS);
          continue;
        }
        // Idle, and nothing was missed: any later delivery wakes us (NOTIFY, HTTP), and
        // scheduled work by its time. Then look again.
        if (loop.untilIdle && this.#inFlight === 0) {
          // A drain stops here unless the database says work is due now that the last
          // claim did not return: a cancellation a disable or delete left to the claims
          // (a chunk per claim, returning nothing), or an endpoint another dispatcher held.
          // Left to the next wake-up, that could be a minute per chunk on Supabase; so it
          // looks again shortly, within its budget.
          const next = await this.#store.nextDueAt();
          if (next === null || next.getTime() > this.#now()) break;
          await this.#waitForChange(POLL_MS);
          this.#mayHaveWork = true;
          continue;
        }
        await this.#waitForChange(await this.#sleepMs(loop, lastClaimFound));
        // Woken by an attempt ending or new work: a fresh idle protocol before sleeping again.
        if (this.#changed) idle = null;
        else this.#mayHaveWork = true; // the timer: something may be due now
      }
      // Stopping: what is in flight finishes, and everything is written.
      await Promise.all(attempts);
      while (this.#results.length > 0 || this.#released.length > 0) await this.#step(0, loop, attempts);
    } finally {
      loop.signal?.removeEventListener("abort", abort);
      // Whatever stopped the loop, what was sent is kept for recording. A failed write
      // stops the loop; what it did not write stays in #results/#released for the next.
      await Promise.allSettled(attempts);
    }
    return loop.counts;
  }

  /**
   * One database round trip: records the results and releases gathered so far, then
   * claims up to `limit` deliveries (in the same call) and starts them all. Returns how
   * many it claimed.
   */
  async #step(limit: number, loop: Loop, attempts: Set<Promise<void>>): Promise<number> {
    const { leaseSeconds, timeoutMs } = this.#config;
    let results = this.#results;
    let released = this.#released;
    this.#results = [];
    this.#released = [];
    let rows: ClaimedDelivery[];
    let leaseEnd: number;
    try {
      if (released.length > 0) await this.#store.release(released);
      released = [];
      if (loop.signal?.aborted) limit = 0; // stopping meanwhile: write, claim nothing
      // Read the clock before claiming: the lease starts no earlier than this.
      leaseEnd = this.#now() + leaseSeconds * 1000 - LEASE_SAFETY_MARGIN_MS;
      rows = results.length > 0
        ? await this.#store.record(results, limit > 0 ? { batchSize: limit, leaseSeconds } : undefined)
        : limit > 0
        ? await this.#store.claim(limit, leaseSeconds)
        : [];
      results = [];
    } catch (error) {
      if (error instanceof PartlyRecorded) results = error.unrecorded;
      throw error;
    } finally {
      // What a failed call did not write (all it carried, or what PartlyRecorded names)
      // stays, ahead of what finished meanwhile. A release that went through is not repeated.
      this.#results = results.concat(this.#results);
      this.#released = released.concat(this.#released);
    }
    loop.counts.claimed += rows.length;
    this.#totals.claimed += rows.length;
    // The latest moment an attempt may start and still end (after its full timeout)
    // inside both the lease and the budget.
    const startBy = Math.min(leaseEnd, loop.deadline) - timeoutMs;
    // What this step starts is the new wave; the last one's stragglers are no longer waited for.
    if (rows.length > 0) {
      this.#wave++;
      this.#waveInFlight = 0;
    }
    const wave = this.#wave;
    for (const row of rows) {
      if (loop.signal?.aborted || this.#now() > startBy) {
        loop.counts.released++;
        this.#totals.released++;
        this.#released.push(row.delivery_id);
        continue;
      }
      this.#inFlight++;
      this.#waveInFlight++;
      const attempt = this.#attempt(row).then((result) => {
        this.#inFlight--;
        if (wave === this.#wave) this.#waveInFlight--;
        this.#count(loop.counts, result);
        this.#count(this.#totals, result);
        this.#observer?.attempted(result);
        this.#results.push(result);
        attempts.delete(attempt);
        this.#changed = true; // to be recorded, and its slot claimed again, by the next step
        this.#wake();
      });
      attempts.add(attempt);
    }
    return rows.length;
  }

  /** Until what could be due next; attempts ending and new work wake the loop earlier. */
  async #sleepMs(loop: Loop, lastClaimFound: boolean): Promise<number> {
    if (loop.untilIdle) return this.#config.timeoutMs; // attempts in flight: one ends by then
    // Every slot taken: nothing can be claimed before an attempt ends, and an ending attempt
    // wakes the loop. Asking the database what is due would answer "now" while a backlog
    // waits, and the loop would ask again at once, round trip after round trip, for as
    // long as the slowest request hangs.
    if (this.#inFlight >= this.#config.concurrency) return this.#config.timeoutMs;
    const next = await this.#store.nextDueAt();
    if (next === null) return loop.maxIdleMs;
    // Something due that the last claim could not take (another dispatcher holds that
    // endpoint): look again shortly rather than at once.
    const floor = lastClaimFound ? 0 : POLL_MS;
    return Math.max(floor, Math.min(next.getTime() - this.#now(), loop.maxIdleMs));
  }

  #waitForChange(ms: number): Promise<void> {
    if (this.#changed) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const timer = setTimeout(done, ms);
      this.#wake = done;
      function done() {
        clearTimeout(timer);
        resolve();
      }
    });
  }

  #count(counts: DrainCounts, r: DeliveryResult): void {
    if (r.outcome === "succeeded") counts.succeeded++;
    else if (r.outcome === "blocked") counts.blocked++;
    else if (r.next_attempt_at !== null) counts.retried++;
    else counts.failed++;
  }

  /** One attempt for one claimed row; never throws. */
  async #attempt(row: ClaimedDelivery): Promise<DeliveryResult> {
    let attempt: AttemptResult;
    try {
      const body = typeof row.payload === "string" ? row.payload : JSON.stringify(row.payload);
      // Signed at send time, so the timestamp is fresh for the receiver's replay window.
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
