import assert from "node:assert/strict";
import { Webhook } from "standardwebhooks";
import { DispatchEngine, type DrainCounts, emptyCounts, type EngineConfig } from "./engine.ts";
import {
  type ClaimedDelivery,
  type DeliveryResult,
  type DeliveryStore,
  type IdleMark,
  PartlyRecorded,
} from "./store.ts";
import { gate, newSecret, startReceiver } from "../../_test/receiver.ts";

// ---------------------------------------------------------------------------
// An in-memory DeliveryStore: a test double of our own interface that mimics
// the SQL contract (due = pending, next_attempt_at <= now, lease free or
// expired; attempt_number = attempts so far + 1).

interface StoredDelivery {
  row: Omit<ClaimedDelivery, "attempt_number">;
  state: "pending" | "succeeded" | "failed";
  nextAttemptAt: number;
  leasedUntil: number | null;
  attempts: DeliveryResult[];
}

class MemoryStore implements DeliveryStore {
  readonly deliveries = new Map<string, StoredDelivery>();
  readonly recordCalls: DeliveryResult[][] = [];
  readonly releaseCalls: string[][] = [];
  /** Every store call in order, for the idle protocol's tests. */
  readonly log: string[] = [];
  claimCalls = 0;
  nextDueAtCalls = 0;
  failRecord = false;
  /** Writes the first result of a record call, then fails as the database would mid-way. */
  partlyRecord = false;
  /** The database's per-endpoint cap (private.webhook_settings.endpoint_concurrency). */
  endpointCap = Number.POSITIVE_INFINITY;
  /** What transactions_ended answers; a test flips it to say "they committed". */
  transactionsInProgress = false;
  /** Every record call waits for this first (a slow database, in the coalescing test). */
  recordGate: Promise<void> = Promise.resolve();
  /** Runs inside transactionsEnded, before it answers: what a committing transaction does then. */
  onTransactionsEnded: () => void = () => {};

  constructor(private readonly clock: () => Date) {}

  add(row: Partial<ClaimedDelivery> & { url: string }): string {
    const id = crypto.randomUUID();
    this.deliveries.set(id, {
      row: {
        delivery_id: id,
        event_id: crypto.randomUUID(),
        webhook_id: row.webhook_id ?? "webhook-1",
        company_id: "company-1",
        url: row.url,
        payload: row.payload ?? { type: "PROCESS_REVISED", data: { n: this.deliveries.size } },
        secrets: row.secrets ?? [SECRET],
        event_created_at: this.clock().toISOString(),
      },
      state: "pending",
      nextAttemptAt: this.clock().getTime(),
      leasedUntil: null,
      attempts: [],
    });
    return id;
  }

  get(id: string): StoredDelivery {
    return this.deliveries.get(id)!;
  }

  #leased(now: number, webhookId: string): number {
    return [...this.deliveries.values()].filter((d) =>
      d.row.webhook_id === webhookId && d.state === "pending" && (d.leasedUntil ?? 0) > now
    ).length;
  }

  claim(batchSize: number, leaseSeconds: number): Promise<ClaimedDelivery[]> {
    this.claimCalls++;
    this.log.push("claim");
    const now = this.clock().getTime();
    const due: StoredDelivery[] = [];
    for (const d of this.deliveries.values()) {
      if (due.length === batchSize) break;
      if (d.state !== "pending" || d.nextAttemptAt > now || (d.leasedUntil ?? 0) > now) continue;
      if (this.#leased(now, d.row.webhook_id) >= this.endpointCap) continue;
      d.leasedUntil = now + leaseSeconds * 1000;
      due.push(d);
    }
    return Promise.resolve(due.map((d) => ({ ...d.row, attempt_number: d.attempts.length + 1 })));
  }

  async record(
    results: DeliveryResult[],
    then?: { batchSize: number; leaseSeconds: number },
  ): Promise<ClaimedDelivery[]> {
    this.log.push("record");
    await this.recordGate;
    if (this.failRecord) throw new Error("connection reset");
    this.recordCalls.push(results);
    const written = this.partlyRecord ? results.slice(0, 1) : results;
    if (this.partlyRecord && results.length > 1) {
      this.#write(written);
      throw new PartlyRecorded("connection reset mid-way", results.slice(1));
    }
    this.#write(written);
    return then ? await this.claim(then.batchSize, then.leaseSeconds) : [];
  }

  #write(results: DeliveryResult[]): void {
    for (const r of results) {
      const d = this.get(r.delivery_id);
      d.attempts.push(r);
      d.leasedUntil = null;
      if (r.outcome === "succeeded") d.state = "succeeded";
      else if (r.next_attempt_at === null) d.state = "failed";
      else d.nextAttemptAt = Date.parse(r.next_attempt_at);
    }
  }

  release(deliveryIds: string[]): Promise<void> {
    this.log.push("release");
    this.releaseCalls.push(deliveryIds);
    for (const id of deliveryIds) this.get(id).leasedUntil = null;
    return Promise.resolve();
  }

  goingIdle(): Promise<IdleMark> {
    this.log.push("goingIdle");
    return Promise.resolve({ transactions: this.transactionsInProgress ? ["742"] : [] });
  }

  transactionsEnded(mark: IdleMark): Promise<boolean> {
    this.log.push("transactionsEnded");
    this.onTransactionsEnded();
    return Promise.resolve(mark.transactions.length === 0 || !this.transactionsInProgress);
  }

  handOff(): Promise<void> {
    this.log.push("handOff");
    return Promise.resolve();
  }

  nextDueAt(): Promise<Date | null> {
    this.nextDueAtCalls++;
    const pending = [...this.deliveries.values()].filter((d) => d.state === "pending");
    if (pending.length === 0) return Promise.resolve(null);
    return Promise.resolve(new Date(Math.min(...pending.map((d) => Math.max(d.nextAttemptAt, d.leasedUntil ?? 0)))));
  }
}

// ---------------------------------------------------------------------------

const SECRET = newSecret();

/** A clock that stands still unless a test moves it. */
function frozenClock(start = Date.now()) {
  let now = start;
  return {
    now: () => new Date(now),
    advance: (ms: number) => void (now += ms),
  };
}

/** A receiver handler that answers 200 after `ms` have passed on the test clock. */
function taking(clock: ReturnType<typeof frozenClock>, ms: number) {
  return () => {
    clock.advance(ms);
    return new Response("ok");
  };
}

/** An engine on the test clock; the store lets its one endpoint have one request at a time. */
function oneAtATime(store: MemoryStore, clock: ReturnType<typeof frozenClock>, target: string, overrides = {}) {
  store.endpointCap = 1;
  return new DispatchEngine({
    store,
    config: config([target], { timeoutMs: 2_000, ...overrides }),
    clock: clock.now,
  });
}

function config(allowedTargets: string[], overrides: Partial<EngineConfig> = {}): EngineConfig {
  return {
    allowedTargets: new Set(allowedTargets),
    timeoutMs: 2_000,
    batchSize: 10,
    concurrency: 10,
    leaseSeconds: 60,
    retrySchedule: [5, 300],
    ...overrides,
  };
}

const noJitter = () => 0.5;

/** Drain counts: the ones given, zero for the rest. */
const tally = (some: Partial<DrainCounts>): DrainCounts => ({ ...emptyCounts(), ...some });

/** Long enough never to be what stops a drain in these tests; they stop when nothing is due. */
const BUDGET = { budgetMs: 3_600_000 };

/** Resolves `fallbackMs` later unless `condition` came true first; says which. */
async function within(fallbackMs: number, condition: Promise<void>): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), fallbackMs)));
  const result = await Promise.race([condition.then(() => true), late]);
  clearTimeout(timer);
  return result;
}

Deno.test("engine: drain sends deliveries concurrently, signed, and records every attempt", async () => {
  const previous = newSecret();
  const allArrived = gate();
  let arrived = 0;
  await using receiver = startReceiver(async (req) => {
    // Answer only once all three are in flight: a sequential engine would
    // time out here instead of succeeding.
    if (++arrived === 3) allArrived.open();
    await allArrived.opened;
    try {
      new Webhook(previous).verify(req.body, Object.fromEntries(req.headers));
      return new Response("verified");
    } catch (e) {
      return new Response(String(e), { status: 400 });
    }
  });
  const store = new MemoryStore(() => new Date());
  const ids = [1, 2, 3].map((n) =>
    store.add({
      url: `${receiver.origin}/hook/${n}`,
      payload: { type: "PROCESS_REVISED", data: { n } },
      secrets: [SECRET, previous],
    })
  );
  const engine = new DispatchEngine({ store, config: config([receiver.target]), random: noJitter });

  const counts = await engine.drain(BUDGET);

  assert.deepEqual(counts, tally({ claimed: 3, succeeded: 3 }));
  assert.deepEqual(engine.totals, counts);
  assert.equal(store.recordCalls.flat().length, 3, "every attempt recorded once");
  for (const [i, id] of ids.entries()) {
    const d = store.get(id);
    assert.equal(d.state, "succeeded");
    assert.deepEqual({ ...d.attempts[0], duration_ms: 0 }, {
      delivery_id: id,
      attempt_number: 1,
      outcome: "succeeded",
      status: 200,
      duration_ms: 0,
      response_body: "verified",
      error: null,
      next_attempt_at: null,
      gone: false,
    });
    const request = receiver.requests.find((r) => r.path === `/hook/${i + 1}`)!;
    assert.equal(request.headers.get("webhook-id"), id, "webhook-id is the delivery id");
    assert.equal(request.body, JSON.stringify({ type: "PROCESS_REVISED", data: { n: i + 1 } }));
  }
});

Deno.test("engine: a failing delivery follows the retry schedule until it is exhausted", async () => {
  await using receiver = startReceiver(() => new Response("nope", { status: 500 }));
  const clock = frozenClock();
  const store = new MemoryStore(clock.now);
  const id = store.add({ url: receiver.origin });
  const engine = new DispatchEngine({ store, config: config([receiver.target]), clock: clock.now, random: noJitter });

  assert.deepEqual(await engine.drain(BUDGET), tally({ claimed: 1, retried: 1 }));
  assert.equal(store.get(id).attempts[0].next_attempt_at, new Date(clock.now().getTime() + 5_000).toISOString());
  assert.equal(store.get(id).attempts[0].error, "HTTP 500");

  assert.equal((await engine.drain(BUDGET)).claimed, 0, "not due before its next_attempt_at");
  clock.advance(5_000);
  assert.equal((await engine.drain(BUDGET)).retried, 1);
  assert.equal(store.get(id).attempts[1].next_attempt_at, new Date(clock.now().getTime() + 300_000).toISOString());

  clock.advance(300_000);
  assert.deepEqual(await engine.drain(BUDGET), tally({ claimed: 1, failed: 1 }));
  const d = store.get(id);
  assert.equal(d.state, "failed");
  assert.deepEqual(d.attempts.map((a) => [a.attempt_number, a.next_attempt_at === null]), [[1, false], [2, false], [
    3,
    true,
  ]]);
  assert.deepEqual(receiver.requests.map((r) => r.headers.get("webhook-id")), [id, id, id], "stable across retries");
});

Deno.test("engine: Retry-After pushes the next attempt later than the schedule", async () => {
  await using receiver = startReceiver(() => new Response("busy", { status: 503, headers: { "retry-after": "600" } }));
  const clock = frozenClock();
  const store = new MemoryStore(clock.now);
  const id = store.add({ url: receiver.origin });
  const engine = new DispatchEngine({ store, config: config([receiver.target]), clock: clock.now, random: noJitter });
  await engine.drain(BUDGET);
  assert.equal(store.get(id).attempts[0].next_attempt_at, new Date(clock.now().getTime() + 600_000).toISOString());
});

Deno.test("engine: 410 Gone is recorded as gone and not retried", async () => {
  await using receiver = startReceiver(() => new Response("gone", { status: 410 }));
  const store = new MemoryStore(() => new Date());
  const id = store.add({ url: receiver.origin });
  const engine = new DispatchEngine({ store, config: config([receiver.target]) });
  assert.deepEqual(await engine.drain(BUDGET), tally({ claimed: 1, failed: 1 }));
  const [attempt] = store.get(id).attempts;
  assert.equal(attempt.gone, true);
  assert.equal(attempt.next_attempt_at, null);
});

Deno.test("engine: a blocked target is recorded without a request and not retried", async () => {
  await using receiver = startReceiver();
  const store = new MemoryStore(() => new Date());
  const id = store.add({ url: `${receiver.origin}/internal` });
  const engine = new DispatchEngine({ store, config: config([]) }); // nothing allowlisted
  assert.deepEqual(await engine.drain(BUDGET), tally({ claimed: 1, blocked: 1 }));
  const [attempt] = store.get(id).attempts;
  assert.equal(attempt.outcome, "blocked");
  assert.equal(attempt.error, "target refused: 127.0.0.1 is loopback");
  assert.equal(attempt.next_attempt_at, null);
  assert.equal(receiver.requests.length, 0);
});

Deno.test("engine: drain claims batch after batch until nothing is due", async () => {
  await using receiver = startReceiver();
  const store = new MemoryStore(() => new Date());
  for (let i = 0; i < 7; i++) store.add({ url: receiver.origin, webhook_id: `webhook-${i % 2}` });
  const engine = new DispatchEngine({ store, config: config([receiver.target], { batchSize: 3 }) });

  const counts = await engine.drain({ budgetMs: 30_000 });

  assert.deepEqual(counts, tally({ claimed: 7, succeeded: 7 }));
  assert.equal(store.recordCalls.flat().length, 7);
  assert.equal(receiver.requests.length, 7);
});

Deno.test("engine: the loop never waits on its slowest request: new work is claimed while it hangs", async () => {
  // One request hangs (a receiver that takes its time). Work that becomes due meanwhile,
  // for another endpoint, must go out at once, not when the slow one ends.
  const releaseSlow = gate();
  await using slow = startReceiver(async () => {
    await releaseSlow.opened;
    return new Response("slow");
  });
  const fastArrived = gate();
  await using fast = startReceiver(() => {
    if (fast.requests.length === 20) fastArrived.open();
    return new Response("fast");
  });
  const store = new MemoryStore(() => new Date());
  store.add({ url: slow.origin, webhook_id: "slow" });
  const engine = new DispatchEngine({
    store,
    config: config([slow.target, fast.target], { timeoutMs: 20_000, leaseSeconds: 60 }),
  });
  const drained = engine.drain(BUDGET);
  await within(
    5_000,
    new Promise((resolve) => {
      const check = setInterval(() => slow.requests.length === 1 && (clearInterval(check), resolve()), 5);
    }),
  );
  // The slow request is in flight; now 20 deliveries for another endpoint commit.
  for (let i = 0; i < 20; i++) store.add({ url: fast.origin, webhook_id: "fast" });
  engine.poke(); // what a NOTIFY or an HTTP wake-up does

  const inTime = await within(5_000, fastArrived.opened);
  releaseSlow.open();
  assert.equal(inTime, true, "the 20 deliveries waited for the slow request");
  assert.deepEqual(await drained, tally({ claimed: 21, succeeded: 21 }));
});

Deno.test("engine: results that finish while a record call is in flight go out together in the next", async () => {
  const slowRecord = gate();
  await using receiver = startReceiver();
  const store = new MemoryStore(() => new Date());
  store.endpointCap = 1; // one at a time: each result is written as its attempt ends
  for (let i = 0; i < 5; i++) store.add({ url: receiver.origin, webhook_id: `webhook-${i}` });
  store.endpointCap = Number.POSITIVE_INFINITY;
  // The first record call hangs until all five have been answered.
  let firstCall = true;
  const record = store.record.bind(store);
  store.record = async (results, then) => {
    if (firstCall) {
      firstCall = false;
      await slowRecord.opened;
    }
    return await record(results, then);
  };
  const engine = new DispatchEngine({ store, config: config([receiver.target], { batchSize: 1 }) });
  const drained = engine.drain(BUDGET);
  await within(
    5_000,
    new Promise((resolve) => {
      const check = setInterval(() => receiver.requests.length === 5 && (clearInterval(check), resolve()), 5);
    }),
  );
  slowRecord.open();
  assert.deepEqual(await drained, tally({ claimed: 5, succeeded: 5 }));
  assert.ok(store.recordCalls.length < 5, `${store.recordCalls.length} record calls for 5 results: none coalesced`);
  assert.equal(store.recordCalls.flat().length, 5, "each result recorded once");
});

/** Makes every claim (and so every step) of `store` take `ms` longer: a round trip that costs something. */
function slowClaims(store: MemoryStore, ms: number): void {
  const claim = store.claim.bind(store);
  store.claim = async (batchSize, leaseSeconds) => {
    await new Promise((resolve) => setTimeout(resolve, ms));
    return await claim(batchSize, leaseSeconds);
  };
}

Deno.test("engine: a result waits briefly for the rest of its wave and goes out with it", async () => {
  // Two attempts started by one step end a few ms apart. Written at once, the first would
  // take a round trip of its own and the second wait for it; gathered, one call writes both.
  let answered = 0;
  await using receiver = startReceiver(async () => {
    if (answered++ > 0) await new Promise((resolve) => setTimeout(resolve, 5));
    return new Response("ok");
  });
  const store = new MemoryStore(() => new Date());
  slowClaims(store, 30);
  for (let i = 0; i < 2; i++) store.add({ url: receiver.origin });
  const engine = new DispatchEngine({ store, config: config([receiver.target]) });
  assert.deepEqual(await engine.drain(BUDGET), tally({ claimed: 2, succeeded: 2 }));
  assert.deepEqual(store.recordCalls.map((c) => c.length), [2], "both results in one call");
});

Deno.test("engine: results do not wait for a hanging attempt", async () => {
  // The slow request is in the same wave as three fast ones: their results wait at most
  // about one round trip for it, then are written while it still hangs.
  const releaseSlow = gate();
  await using slow = startReceiver(async () => {
    await releaseSlow.opened;
    return new Response("slow");
  });
  await using fast = startReceiver();
  const store = new MemoryStore(() => new Date());
  slowClaims(store, 30);
  store.add({ url: slow.origin, webhook_id: "slow" });
  const fastIds = [0, 1, 2].map(() => store.add({ url: fast.origin, webhook_id: "fast" }));
  const engine = new DispatchEngine({
    store,
    config: config([slow.target, fast.target], { timeoutMs: 20_000, leaseSeconds: 60 }),
  });
  const drained = engine.drain(BUDGET);
  const recorded = await within(
    2_000,
    new Promise((resolve) => {
      const check = setInterval(
        () => fastIds.every((id) => store.get(id).state === "succeeded") && (clearInterval(check), resolve()),
        5,
      );
    }),
  );
  releaseSlow.open();
  assert.equal(recorded, true, "the fast results waited for the hanging request");
  assert.deepEqual(await drained, tally({ claimed: 4, succeeded: 4 }));
});

Deno.test("engine: one round trip records what finished and claims what is due", async () => {
  await using receiver = startReceiver();
  const store = new MemoryStore(() => new Date());
  store.endpointCap = 2; // the database frees a slot only when an attempt is recorded
  for (let i = 0; i < 6; i++) store.add({ url: receiver.origin });
  const engine = new DispatchEngine({ store, config: config([receiver.target]) });
  assert.deepEqual(await engine.drain(BUDGET), tally({ claimed: 6, succeeded: 6 }));
  const firstRecord = store.log.indexOf("record");
  // After the first claim, the slots were refilled by the record calls themselves.
  const claimsBetweenRecords = store.log.slice(firstRecord).filter((c, i, log) =>
    c === "claim" && log[i - 1] === "record"
  );
  assert.ok(claimsBetweenRecords.length >= 2, `record then claim in one call: ${store.log.join(" ")}`);
});

Deno.test("engine: never more requests in flight than the global cap", async () => {
  let inFlight = 0;
  let most = 0;
  await using receiver = startReceiver(async () => {
    most = Math.max(most, ++inFlight);
    await new Promise((resolve) => setTimeout(resolve, 20));
    inFlight--;
    return new Response("ok");
  });
  const store = new MemoryStore(() => new Date());
  for (let i = 0; i < 30; i++) store.add({ url: receiver.origin, webhook_id: `webhook-${i}` });
  const engine = new DispatchEngine({ store, config: config([receiver.target], { concurrency: 4, batchSize: 10 }) });
  assert.deepEqual(await engine.drain(BUDGET), tally({ claimed: 30, succeeded: 30 }));
  assert.equal(most, 4, "4 requests at most at once, and the cap was used");
});

Deno.test("engine: with every slot taken, the worker loop waits for an attempt to end, not asking the store again and again", async () => {
  const release = gate();
  await using receiver = startReceiver(async () => {
    await release.opened;
    return new Response("ok");
  });
  const store = new MemoryStore(() => new Date());
  for (let i = 0; i < 4; i++) store.add({ url: receiver.origin, webhook_id: `webhook-${i}` });
  const engine = new DispatchEngine({ store, config: config([receiver.target], { concurrency: 2, timeoutMs: 10_000 }) });
  const stop = new AbortController();
  const running = engine.run({ signal: stop.signal, maxIdleMs: 60_000 });
  // Two requests hang, two deliveries are due behind them, past the 250 ms the loop stays
  // awake and through its idle protocol.
  await new Promise((resolve) => setTimeout(resolve, 700));
  const asked = store.nextDueAtCalls;
  assert.equal(receiver.requests.length, 2, "the two slots are taken, the others wait");
  release.open();
  const done = await within(5_000, new Promise((resolve) => {
    const check = setInterval(() => [...store.deliveries.values()].every((d) => d.state === "succeeded") && (clearInterval(check), resolve()), 5);
  }));
  stop.abort();
  await running;
  assert.equal(done, true, "the waiting deliveries went once the slots were free");
  assert.ok(asked <= 2, `asked the store what is due ${asked} times while every slot was taken`);
});

Deno.test("engine: an endpoint at the store's cap does not hold up another", async () => {
  const releaseSlow = gate();
  await using slow = startReceiver(async () => {
    await releaseSlow.opened;
    return new Response("slow");
  });
  const fastDone = gate();
  await using fast = startReceiver((req) => {
    if (fast.requests.length === 2) fastDone.open();
    return new Response(req.path);
  });
  const store = new MemoryStore(() => new Date());
  store.endpointCap = 2;
  for (let i = 0; i < 6; i++) store.add({ url: slow.origin, webhook_id: "slow" });
  for (let i = 0; i < 2; i++) store.add({ url: fast.origin, webhook_id: "fast" });
  const engine = new DispatchEngine({
    store,
    config: config([slow.target, fast.target], { concurrency: 4, timeoutMs: 10_000 }),
  });

  const drained = engine.drain(BUDGET);
  // Both fast deliveries must arrive while the slow endpoint still holds its
  // slots. Should they be starved, the fallback unblocks the test so it
  // fails instead of hanging.
  const inTime = await within(5_000, fastDone.opened);
  assert.ok(slow.requests.length <= 2, "the slow endpoint never had more than its 2 slots");
  releaseSlow.open();
  assert.equal(inTime, true, "the fast endpoint waited for the slow one");
  assert.equal((await drained).succeeded, 8);
});

Deno.test("engine: before it stops, it looks again once the transactions that saw it awake have ended", async () => {
  // A business transaction that read the heartbeat as awake skipped its wake-up. The loop
  // must not stop while such a transaction is in progress, and must claim again after it
  // ended: that claim is the only thing that picks up what it committed. Here it commits
  // right between the loop's claims and its question, the worst moment.
  await using receiver = startReceiver();
  const store = new MemoryStore(() => new Date());
  store.transactionsInProgress = true;
  let id = "";
  let asked = 0;
  store.onTransactionsEnded = () => {
    if (++asked === 3) {
      id = store.add({ url: receiver.origin }); // what that transaction committed...
      store.transactionsInProgress = false; // ...as it ended
    }
  };
  const engine = new DispatchEngine({ store, config: config([receiver.target]) });

  assert.deepEqual(await engine.drain(BUDGET), tally({ claimed: 1, succeeded: 1 }));
  assert.equal(store.get(id).state, "succeeded");
  assert.ok(store.log.indexOf("goingIdle") > 0, "the heartbeat was cleared before stopping");
  assert.deepEqual(store.log.slice(-2), ["transactionsEnded", "claim"], "the last word is a claim, after they ended");
});

Deno.test("engine: the worker loop sleeps until poked, then delivers", async () => {
  await using receiver = startReceiver();
  const store = new MemoryStore(() => new Date());
  const engine = new DispatchEngine({ store, config: config([receiver.target]) });
  const stop = new AbortController();
  const running = engine.run({ signal: stop.signal, maxIdleMs: 60_000 });
  await new Promise((resolve) => setTimeout(resolve, 100));
  const claimsAsleep = store.claimCalls;
  await new Promise((resolve) => setTimeout(resolve, 200));
  assert.equal(store.claimCalls, claimsAsleep, "asleep: no claims while nothing is due");

  const id = store.add({ url: receiver.origin });
  engine.poke();
  const delivered = await within(
    2_000,
    new Promise((resolve) => {
      const check = setInterval(() => store.get(id).state === "succeeded" && (clearInterval(check), resolve()), 5);
    }),
  );
  stop.abort();
  assert.deepEqual(await running, tally({ claimed: 1, succeeded: 1 }));
  assert.equal(delivered, true, "delivered after the poke");
});

Deno.test("engine: one loop at a time: a drain while another runs is refused", async () => {
  const release = gate();
  await using receiver = startReceiver(async () => {
    await release.opened;
    return new Response("ok");
  });
  const store = new MemoryStore(() => new Date());
  store.add({ url: receiver.origin });
  const engine = new DispatchEngine({ store, config: config([receiver.target]) });
  const first = engine.drain(BUDGET);
  assert.throws(() => engine.drain(BUDGET), /the dispatch loop is already running/);
  release.open();
  assert.deepEqual(await first, tally({ claimed: 1, succeeded: 1 }));
  assert.equal(receiver.requests.length, 1);
});

Deno.test("engine: a failed record call stops drain from claiming more, and surfaces", async () => {
  await using receiver = startReceiver();
  const store = new MemoryStore(() => new Date());
  for (let i = 0; i < 6; i++) store.add({ url: receiver.origin });
  store.failRecord = true;
  store.endpointCap = 1;
  const engine = new DispatchEngine({ store, config: config([receiver.target], { batchSize: 1 }) });
  await assert.rejects(engine.drain({ budgetMs: 30_000 }), /connection reset/);
  assert.ok(store.claimCalls < 6, `claimed ${store.claimCalls} batches after the store failed`);
});

Deno.test("engine: attempts that could outlive their lease are released, not sent", async () => {
  const clock = frozenClock();
  await using receiver = startReceiver();
  const store = new MemoryStore(clock.now);
  const ids = [1, 2, 3].map(() => store.add({ url: receiver.origin }));
  // The claim itself takes 54 s on the test clock (a database under duress): attempts
  // with a 2 s timeout would then end past the usable lease (60 s less the 5 s margin).
  const claim = store.claim.bind(store);
  let first = true;
  store.claim = async (batchSize, leaseSeconds) => {
    const rows = await claim(batchSize, leaseSeconds);
    if (first) clock.advance(54_000);
    first = false;
    return rows;
  };
  const stop = new AbortController();
  const release = store.release.bind(store);
  store.release = (deliveryIds) => {
    stop.abort(); // stop once they are handed back, rather than claim them again
    return release(deliveryIds);
  };
  const engine = new DispatchEngine({
    store,
    config: config([receiver.target], { leaseSeconds: 60 }),
    clock: clock.now,
  });

  assert.deepEqual(await engine.drain({ ...BUDGET, signal: stop.signal }), tally({ claimed: 3, released: 3 }));
  assert.equal(receiver.requests.length, 0);
  assert.deepEqual(store.releaseCalls, [ids], "released in one call");
  for (const id of ids) {
    assert.deepEqual([store.get(id).state, store.get(id).leasedUntil, store.get(id).attempts.length], [
      "pending",
      null,
      0,
    ]);
  }
});

Deno.test("engine: drain keeps to its budget", async () => {
  const clock = frozenClock();
  await using receiver = startReceiver(taking(clock, 9_000));
  const store = new MemoryStore(clock.now);
  for (let i = 0; i < 3; i++) store.add({ url: receiver.origin });
  const engine = oneAtATime(store, clock, receiver.target);

  // Claims made once the test clock is past the first request's 9 s.
  const start = clock.now().getTime();
  let lateClaims = 0;
  const claim = store.claim.bind(store);
  store.claim = (batchSize, leaseSeconds) => {
    if (clock.now().getTime() - start >= 9_000) lateClaims++;
    return claim(batchSize, leaseSeconds);
  };
  // 9 s used by the first request + a 2 s timeout would end past the 10 s budget.
  const counts = await engine.drain({ budgetMs: 10_000 });
  assert.deepEqual(counts, tally({ claimed: 1, succeeded: 1 }));
  assert.equal(lateClaims, 0, "no new claim once the budget cannot fit an attempt");

  const before = store.claimCalls;
  assert.deepEqual(await engine.drain({ budgetMs: 1_000 }), tally({}));
  assert.equal(store.claimCalls, before, "a budget shorter than the timeout claims nothing");
});

Deno.test("engine: an aborted drain starts nothing new; what is in flight finishes and is recorded", async () => {
  const stop = new AbortController();
  let claimsAtAbort = 0;
  await using receiver = startReceiver(() => {
    stop.abort();
    claimsAtAbort = store.claimCalls;
    return new Response("ok");
  });
  const store = new MemoryStore(() => new Date());
  for (let i = 0; i < 3; i++) store.add({ url: receiver.origin });
  store.endpointCap = 1;
  const engine = new DispatchEngine({ store, config: config([receiver.target]) });

  const counts = await engine.drain({ budgetMs: 30_000, signal: stop.signal });
  assert.deepEqual(counts, tally({ claimed: 1, succeeded: 1 }));
  assert.equal(store.claimCalls, claimsAtAbort, "no claim after the signal");
  assert.equal(store.recordCalls.flat().length, 1, "the attempt in flight was recorded");

  const before = store.claimCalls;
  await engine.drain({ budgetMs: 30_000, signal: AbortSignal.abort() });
  assert.equal(store.claimCalls, before, "an already aborted drain does not claim");
});

Deno.test("engine: a row that cannot be signed fails alone, the others go on", async () => {
  await using receiver = startReceiver();
  const clock = frozenClock();
  const store = new MemoryStore(clock.now);
  const bad = store.add({ url: receiver.origin, secrets: ["whsec_%%%not-base64%%%"] });
  const good = store.add({ url: receiver.origin });
  const engine = new DispatchEngine({ store, config: config([receiver.target]), clock: clock.now, random: noJitter });

  assert.deepEqual(await engine.drain(BUDGET), tally({ claimed: 2, succeeded: 1, retried: 1 }));
  assert.match(store.get(bad).attempts[0].error!, /^dispatcher error: the endpoint's secret is not base64/);
  assert.equal(store.get(good).state, "succeeded");
  assert.equal(receiver.requests.length, 1);
});

Deno.test("engine: a string payload is sent verbatim", async () => {
  await using receiver = startReceiver();
  const store = new MemoryStore(() => new Date());
  const raw = '{ "type": "WEBHOOK_TEST",  "data": {"b": 1, "a": 2} }';
  store.add({ url: receiver.origin, payload: raw });
  await new DispatchEngine({ store, config: config([receiver.target]) }).drain(BUDGET);
  assert.equal(receiver.requests[0].body, raw);
  new Webhook(SECRET).verify(raw, Object.fromEntries(receiver.requests[0].headers));
});

Deno.test("engine: results a failed record call carried are written by the next drain, each once", async () => {
  await using receiver = startReceiver();
  const store = new MemoryStore(() => new Date());
  const ids = [0, 1, 2].map(() => store.add({ url: receiver.origin }));
  store.failRecord = true;
  const engine = new DispatchEngine({ store, config: config([receiver.target]) });
  await assert.rejects(engine.drain(BUDGET), /connection reset/);
  assert.equal(receiver.requests.length, 3, "all three were sent");
  assert.ok(ids.every((id) => store.get(id).leasedUntil !== null), "nothing recorded yet: still leased");

  // The database comes back, but the next call fails after writing one result.
  store.failRecord = false;
  store.partlyRecord = true;
  await assert.rejects(engine.drain(BUDGET), PartlyRecorded);
  assert.deepEqual(
    store.recordCalls.map((c) => c.length),
    [3],
    "the next drain wrote the three results first, in one call",
  );
  store.partlyRecord = false;
  await engine.drain(BUDGET);
  for (const id of ids) {
    assert.equal(store.get(id).state, "succeeded");
    assert.equal(store.get(id).attempts.length, 1, "each attempt recorded once");
  }
  assert.equal(receiver.requests.length, 3, "and none sent again");
  assert.deepEqual(store.releaseCalls, []);
});

Deno.test("engine: a bad budget is refused up front", () => {
  // (A lease too short for one attempt never reaches the engine: parseConfig refuses it, config_test.ts.)
  const store = new MemoryStore(() => new Date());
  const engine = new DispatchEngine({ store, config: config([]) });
  assert.throws(() => engine.drain({ budgetMs: Number("soon") }), /budgetMs must be a non-negative number, got NaN/);
  assert.equal(store.claimCalls, 0);
});
