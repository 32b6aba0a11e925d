import assert from "node:assert/strict";
import { Webhook } from "standardwebhooks";
import { DispatchEngine, type DrainCounts, emptyCounts, type EngineConfig } from "./engine.ts";
import type { ClaimedDelivery, DeliveryResult, DeliveryStore } from "./store.ts";
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
  claimCalls = 0;
  failRecord = false;

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

  claim(batchSize: number, leaseSeconds: number): Promise<ClaimedDelivery[]> {
    this.claimCalls++;
    const now = this.clock().getTime();
    const due = [...this.deliveries.values()]
      .filter((d) => d.state === "pending" && d.nextAttemptAt <= now && (d.leasedUntil ?? 0) <= now)
      .slice(0, batchSize);
    for (const d of due) d.leasedUntil = now + leaseSeconds * 1000;
    return Promise.resolve(due.map((d) => ({ ...d.row, attempt_number: d.attempts.length + 1 })));
  }

  record(results: DeliveryResult[]): Promise<void> {
    if (this.failRecord) return Promise.reject(new Error("connection reset"));
    this.recordCalls.push(results);
    for (const r of results) {
      const d = this.get(r.delivery_id);
      d.attempts.push(r);
      d.leasedUntil = null;
      if (r.outcome === "succeeded") d.state = "succeeded";
      else if (r.next_attempt_at === null) d.state = "failed";
      else d.nextAttemptAt = Date.parse(r.next_attempt_at);
    }
    return Promise.resolve();
  }

  release(deliveryIds: string[]): Promise<void> {
    this.releaseCalls.push(deliveryIds);
    for (const id of deliveryIds) this.get(id).leasedUntil = null;
    return Promise.resolve();
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

/** An engine on the test clock whose one endpoint takes one request at a time. */
function oneAtATime(store: MemoryStore, clock: ReturnType<typeof frozenClock>, target: string, overrides = {}) {
  return new DispatchEngine({
    store,
    config: config([target], { endpointConcurrency: 1, timeoutMs: 2_000, ...overrides }),
    clock: clock.now,
  });
}

function config(allowedTargets: string[], overrides: Partial<EngineConfig> = {}): EngineConfig {
  return {
    allowedTargets: new Set(allowedTargets),
    timeoutMs: 2_000,
    batchSize: 10,
    concurrency: 10,
    endpointConcurrency: 10,
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

Deno.test("engine: drain sends a batch concurrently, signed, and records it in one call", async () => {
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
  assert.equal(store.recordCalls.length, 1, "one record call per batch");
  assert.equal(store.claimCalls, 2, "the batch, then an empty claim: nothing more was due");
  assert.equal(store.recordCalls[0].length, 3);
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

Deno.test("engine: drain loops over batches until nothing is due", async () => {
  await using receiver = startReceiver();
  const store = new MemoryStore(() => new Date());
  for (let i = 0; i < 7; i++) store.add({ url: receiver.origin, webhook_id: `webhook-${i % 2}` });
  const engine = new DispatchEngine({ store, config: config([receiver.target], { batchSize: 3 }) });

  const counts = await engine.drain({ budgetMs: 30_000 });

  assert.deepEqual(counts, tally({ claimed: 7, succeeded: 7 }));
  assert.deepEqual(store.recordCalls.map((batch) => batch.length), [3, 3, 1]);
  assert.equal(store.claimCalls, 4, "three batches and one empty claim");
  assert.equal(receiver.requests.length, 7);
});

Deno.test("engine: drain claims the next batch while the previous one is still sending", async () => {
  // The second request of the first batch is held until a second claim has
  // happened: a drain that waited for its whole batch before claiming again
  // would never get there (the fallback then fails the test instead of hanging).
  const secondClaim = gate();
  await using receiver = startReceiver(async () => {
    if (receiver.requests.length === 2) await secondClaim.opened;
    return new Response("ok");
  });
  const store = new MemoryStore(() => new Date());
  const claim = store.claim.bind(store);
  store.claim = (batchSize, leaseSeconds) => {
    if (store.claimCalls === 1) secondClaim.open();
    return claim(batchSize, leaseSeconds);
  };
  for (let i = 0; i < 4; i++) store.add({ url: receiver.origin });
  const engine = new DispatchEngine({
    store,
    config: config([receiver.target], { batchSize: 2, endpointConcurrency: 1 }),
  });

  let pipelined = true;
  const fallback = setTimeout(() => {
    pipelined = false;
    secondClaim.open();
  }, 5_000);
  const counts = await engine.drain({ budgetMs: 30_000 });
  clearTimeout(fallback);
  assert.equal(pipelined, true, "the second batch was claimed only after the first one finished");
  assert.deepEqual(counts, tally({ claimed: 4, succeeded: 4 }));
  assert.equal(receiver.requests.length, 4);
  assert.deepEqual(store.recordCalls.flat().map((r) => r.outcome), Array(4).fill("succeeded"));
});

Deno.test("engine: a failed record call stops drain from claiming more, and surfaces", async () => {
  await using receiver = startReceiver();
  const store = new MemoryStore(() => new Date());
  for (let i = 0; i < 6; i++) store.add({ url: receiver.origin });
  store.failRecord = true;
  const engine = new DispatchEngine({ store, config: config([receiver.target], { batchSize: 1 }) });
  await assert.rejects(engine.drain({ budgetMs: 30_000 }), /connection reset/);
  assert.ok(store.claimCalls < 6, `claimed ${store.claimCalls} batches after the store failed`);
});

Deno.test("engine: attempts that could outlive their lease are released, not sent", async () => {
  const clock = frozenClock();
  // The first request takes 54 s on the test clock. The rows still waiting for the
  // endpoint's only slot would then end (2 s timeout) past the usable lease (60 s less
  // the 5 s margin), though well inside the drain's budget: they must not be sent.
  await using receiver = startReceiver(taking(clock, 54_000));
  const store = new MemoryStore(clock.now);
  const ids = [1, 2, 3, 4].map(() => store.add({ url: receiver.origin }));
  // Stop once they are handed back, rather than claim them again under a new lease.
  const stop = new AbortController();
  const release = store.release.bind(store);
  store.release = (deliveryIds) => {
    stop.abort();
    return release(deliveryIds);
  };
  const engine = oneAtATime(store, clock, receiver.target, { leaseSeconds: 60 });

  assert.deepEqual(
    await engine.drain({ ...BUDGET, signal: stop.signal }),
    tally({ claimed: 4, succeeded: 1, released: 3 }),
  );
  assert.equal(receiver.requests.length, 1);
  assert.deepEqual(store.releaseCalls, [ids.slice(1)], "released in one call");
  for (const id of ids.slice(1)) {
    assert.deepEqual([store.get(id).state, store.get(id).leasedUntil, store.get(id).attempts.length], [
      "pending",
      null,
      0,
    ]);
  }
});

Deno.test("engine: drain keeps to its budget, releasing what it cannot start", async () => {
  const clock = frozenClock();
  await using receiver = startReceiver(taking(clock, 9_000));
  const store = new MemoryStore(clock.now);
  for (let i = 0; i < 3; i++) store.add({ url: receiver.origin });
  const engine = oneAtATime(store, clock, receiver.target);

  // 9 s used by the first request + a 2 s timeout would end past the 10 s budget.
  const counts = await engine.drain({ budgetMs: 10_000 });
  assert.deepEqual(counts, tally({ claimed: 3, succeeded: 1, released: 2 }));
  assert.equal(store.claimCalls, 1, "no new claim once the budget cannot fit an attempt");

  assert.deepEqual(await engine.drain({ budgetMs: 1_000 }), tally({}));
  assert.equal(store.claimCalls, 1, "a budget shorter than the timeout claims nothing");
});

Deno.test("engine: an aborted drain starts nothing new and releases unstarted attempts", async () => {
  const stop = new AbortController();
  await using receiver = startReceiver(() => {
    stop.abort();
    return new Response("ok");
  });
  const store = new MemoryStore(() => new Date());
  for (let i = 0; i < 3; i++) store.add({ url: receiver.origin });
  const engine = new DispatchEngine({ store, config: config([receiver.target], { endpointConcurrency: 1 }) });

  const counts = await engine.drain({ budgetMs: 30_000, signal: stop.signal });
  assert.deepEqual(counts, tally({ claimed: 3, succeeded: 1, released: 2 }));
  assert.equal(store.claimCalls, 1);

  const before = store.claimCalls;
  await engine.drain({ budgetMs: 30_000, signal: AbortSignal.abort() });
  assert.equal(store.claimCalls, before, "an already aborted drain does not claim");
});

Deno.test("engine: one slow endpoint does not hold up another in the same batch", async () => {
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
  for (let i = 0; i < 6; i++) store.add({ url: slow.origin, webhook_id: "slow" });
  for (let i = 0; i < 2; i++) store.add({ url: fast.origin, webhook_id: "fast" });
  const engine = new DispatchEngine({
    store,
    config: config([slow.target, fast.target], { concurrency: 4, endpointConcurrency: 2, timeoutMs: 10_000 }),
  });

  const drained = engine.drain(BUDGET);
  // Both fast deliveries must arrive while the slow endpoint still holds its
  // slots. Should they be starved, this fallback unblocks the test so it
  // fails instead of hanging.
  let starved = false;
  const fallback = setTimeout(() => {
    starved = true;
    releaseSlow.open();
  }, 5_000);
  await fastDone.opened;
  clearTimeout(fallback);
  assert.equal(starved, false, "the fast endpoint waited for the slow one");
  assert.ok(slow.requests.length <= 2, "the slow endpoint never had more than its 2 slots");
  releaseSlow.open();
  assert.equal((await drained).succeeded, 8);
});

Deno.test("engine: a row that cannot be signed fails alone, the batch goes on", async () => {
  await using receiver = startReceiver();
  const clock = frozenClock();
  const store = new MemoryStore(clock.now);
  const bad = store.add({ url: receiver.origin, secrets: ["whsec_%%%not-base64%%%"] });
  const good = store.add({ url: receiver.origin });
  const engine = new DispatchEngine({ store, config: config([receiver.target]), clock: clock.now, random: noJitter });

  assert.deepEqual(await engine.drain(BUDGET), tally({ claimed: 2, succeeded: 1, retried: 1 }));
  assert.match(store.get(bad).attempts[0].error!, /^dispatcher error: /);
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

Deno.test("engine: a failed record call surfaces; the leases are left to expire", async () => {
  await using receiver = startReceiver();
  const store = new MemoryStore(() => new Date());
  const id = store.add({ url: receiver.origin });
  store.failRecord = true;
  const engine = new DispatchEngine({ store, config: config([receiver.target]) });
  await assert.rejects(engine.drain(BUDGET), /connection reset/);
  assert.notEqual(store.get(id).leasedUntil, null, "still leased: another dispatcher retries after expiry");
  assert.deepEqual(store.releaseCalls, []);
});

Deno.test("engine: a bad budget is refused up front", async () => {
  // (A lease too short for one attempt never reaches the engine: parseConfig refuses it, config_test.ts.)
  const store = new MemoryStore(() => new Date());
  const engine = new DispatchEngine({ store, config: config([]) });
  await assert.rejects(engine.drain({ budgetMs: Number("soon") }), /budgetMs must be a non-negative number, got NaN/);
  assert.equal(store.claimCalls, 0);
});
