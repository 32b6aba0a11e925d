// HTTP mode's handler as a unit: who may wake it, the budget each drain gets from the
// worker's remaining life, one drain at a time, the shutdown signal. The engine is a
// recording stand-in here (what drain() does is engine_test.ts's and the end-to-end tests'
// concern); the configuration is parsed from an environment like production's.
import assert from "node:assert/strict";
import { MIN_TOKEN_LENGTH, parseConfig, WALL_CLOCK_MARGIN_MS } from "../_shared/dispatch/config.ts";
import { type DrainCounts, type DrainOptions, emptyCounts } from "../_shared/dispatch/engine.ts";
import { gate } from "../_test/receiver.ts";
import { abortOnUnload, acceptedKey, createHttpHandler, type HttpHandlerDeps } from "./http_handler.ts";

const LEGACY = "eyJhbGciOiJIUzI1NiJ9.legacy-service-role.sig";
const SECRET = "sb_secret_default0000000000000000";
const SECRET_2 = "sb_secret_rotated0000000000000000";
const TOKEN = "d".repeat(MIN_TOKEN_LENGTH);

/**
 * An engine that records each drain's options and answers with `counts`, or waits on
 * `hold`; and records what a wake-up while a drain ran did to it: an extension, or a poke.
 */
function recordingEngine(hold?: Promise<void>) {
  const drains: DrainOptions[] = [];
  const extensions: { budgetMs: number; maxDeliveries: number }[] = [];
  const pokes = { count: 0 };
  let n = 0;
  return {
    drains,
    extensions,
    pokes,
    engine: {
      async drain(options: DrainOptions): Promise<DrainCounts> {
        drains.push(options);
        const claimed = ++n;
        await hold;
        return { ...emptyCounts(), claimed, succeeded: claimed };
      },
      extend(options: { budgetMs: number; maxDeliveries: number }) {
        extensions.push(options);
      },
      poke() {
        pokes.count++;
      },
      unwritten: 0,
    },
  };
}

function handlerFor(env: Record<string, string>, deps: Partial<HttpHandlerDeps> = {}) {
  const config = parseConfig({ SUPABASE_DB_URL: "postgres://x/db", ...env }, { mode: "http" });
  const recorded = recordingEngine();
  const handler = createHttpHandler({ engine: recorded.engine, config, log: () => {}, ...deps });
  return { handler, drains: recorded.drains };
}

const wake = (authorization?: string, method = "POST") =>
  new Request("http://dispatcher.test/", {
    method,
    headers: authorization === undefined ? {} : { authorization },
    body: method === "POST" ? '{"reason":"deliveries"}' : undefined,
  });

Deno.test("wake-ups: each configured key is accepted, and nothing else, whichever keys are configured", async () => {
  const envs: [string, Record<string, string>, string[]][] = [
    ["legacy key only", { SUPABASE_SERVICE_ROLE_KEY: LEGACY }, [LEGACY]],
    ["new secret keys only", { SUPABASE_SECRET_KEYS: JSON.stringify({ default: SECRET, rotated: SECRET_2 }) }, [
      SECRET,
      SECRET_2,
    ]],
    ["dispatcher token only", { WEBHOOK_DISPATCHER_TOKEN: TOKEN }, [TOKEN]],
    ["all three", {
      SUPABASE_SERVICE_ROLE_KEY: LEGACY,
      SUPABASE_SECRET_KEYS: JSON.stringify({ default: SECRET }),
      WEBHOOK_DISPATCHER_TOKEN: TOKEN,
    }, [LEGACY, SECRET, TOKEN]],
  ];
  const presented: [string, string | undefined][] = [
    ["the legacy key", `Bearer ${LEGACY}`],
    ["a new secret key", `Bearer ${SECRET}`],
    ["the second secret key", `Bearer ${SECRET_2}`],
    ["the dispatcher token", `Bearer ${TOKEN}`],
    ["the token, lower-case scheme and padded", `bearer   ${TOKEN}  `],
    ["no header", undefined],
    ["an empty bearer", "Bearer "],
    ["a wrong key", "Bearer sb_secret_wrong0000000000000000000"],
    ["a key with one character more", `Bearer ${SECRET}x`],
    ["a key cut short", `Bearer ${SECRET.slice(0, -1)}`],
    ["a key, not as a bearer", `Basic ${SECRET}`],
  ];
  for (const [setup, env, accepted] of envs) {
    for (const [what, authorization] of presented) {
      const { handler, drains } = handlerFor(env);
      const response = await handler(wake(authorization));
      const token = authorization?.replace(/^bearer\s+/i, "").trim();
      const expected = accepted.includes(token ?? "") && /^bearer /i.test(authorization ?? "") ? 200 : 401;
      assert.equal(response.status, expected, `${setup}, ${what}`);
      assert.equal(drains.length, expected === 200 ? 1 : 0, `${setup}, ${what}: drains`);
      if (expected === 401) assert.deepEqual(await response.json(), { error: "unauthorized" });
      else await response.body?.cancel();
    }
  }
});

Deno.test("wake-ups: with no key at all every request is refused, an empty bearer included", async () => {
  // parseConfig refuses HTTP mode without a key (index.ts then refuses every request);
  // the handler holds the same line on its own.
  const { engine, drains } = recordingEngine();
  const config = { ...parseConfig({}), wakeUpKeys: [] };
  const handler = createHttpHandler({ engine, config, log: () => {} });
  for (const authorization of [undefined, "Bearer ", "Bearer undefined", "Bearer null", 'Bearer ""']) {
    const response = await handler(wake(authorization));
    assert.equal(response.status, 401, String(authorization));
    await response.body?.cancel();
  }
  assert.equal(drains.length, 0);
  assert.equal(acceptedKey("", [""]), false, "an empty configured key matches nothing");
  assert.equal(acceptedKey("a", ["b", "a", "c"]), true);
});

Deno.test("wake-ups: an authorized GET does nothing", async () => {
  const { handler, drains } = handlerFor({ SUPABASE_SERVICE_ROLE_KEY: LEGACY });
  const response = await handler(wake(`Bearer ${LEGACY}`, "GET"));
  assert.equal(response.status, 405);
  await response.body?.cancel();
  assert.equal(drains.length, 0);
});

Deno.test("budget: each drain gets what is left of the worker's wall clock, never more than the HTTP budget", async () => {
  const env = {
    SUPABASE_SERVICE_ROLE_KEY: LEGACY,
    WEBHOOK_TIMEOUT_MS: "2000",
    WEBHOOK_LEASE_SECONDS: "8",
    WEBHOOK_WALL_CLOCK_MS: "20000",
    WEBHOOK_HTTP_BUDGET_MS: "10000",
    WEBHOOK_HTTP_MAX_DELIVERIES: "250",
  };
  let age = 0;
  const { handler, drains } = handlerFor(env, { age: () => age });
  const life = 20_000 - WALL_CLOCK_MARGIN_MS;
  const cases: [number, number | null][] = [
    [0, 10_000], // a young worker: the HTTP budget
    [6_000, life - 6_000], // less left than the HTTP budget
    [life - 3_000, 3_000], // exactly one attempt (2 s) and the start window (1 s)
    [life - 2_999, null], // less: refused, nothing claimed
    [30_000, null], // past its end
  ];
  for (const [at, budgetMs] of cases) {
    age = at;
    const before = drains.length;
    const response = await handler(wake(`Bearer ${LEGACY}`));
    if (budgetMs === null) {
      assert.equal(response.status, 503, `age ${at}`);
      assert.match((await response.json()).error, /too close to its wall-clock limit/);
      assert.equal(drains.length, before, `age ${at}: a drain started`);
    } else {
      assert.equal(response.status, 200, `age ${at}`);
      await response.body?.cancel();
      assert.equal(drains.at(-1)?.budgetMs, budgetMs, `age ${at}`);
      // The cap on the work of one wake-up goes with every drain.
      assert.equal(drains.at(-1)?.maxDeliveries, 250);
    }
  }
  // A plain Deno process (the local stack's HTTP mode) has no worker life to run out of.
  const plain = handlerFor(env);
  const response = await plain.handler(wake(`Bearer ${LEGACY}`));
  assert.equal(response.status, 200);
  await response.body?.cancel();
  assert.equal(plain.drains[0].budgetMs, 10_000);
});

Deno.test("budget: with EdgeRuntime.waitUntil the answer is 202 at once, and a worker too old answers 503", async () => {
  let age = 0;
  const work: Promise<unknown>[] = [];
  const release = gate();
  const { engine, drains } = recordingEngine(release.opened);
  const config = parseConfig({ SUPABASE_SERVICE_ROLE_KEY: LEGACY, WEBHOOK_WALL_CLOCK_MS: "150000" });
  const handler = createHttpHandler({ engine, config, age: () => age, waitUntil: (p) => work.push(p), log: () => {} });
  const accepted = await handler(wake(`Bearer ${LEGACY}`));
  assert.equal(accepted.status, 202);
  assert.deepEqual(await accepted.json(), { accepted: true });
  assert.equal(work.length, 1);
  release.open();
  await Promise.all(work);
  assert.equal(drains.length, 1);

  age = 150_000 - WALL_CLOCK_MARGIN_MS - 15_000; // the default timeout is 15 s: no room to start one
  const refused = await handler(wake(`Bearer ${LEGACY}`));
  assert.equal(refused.status, 503);
  await refused.body?.cancel();
  assert.equal(work.length, 1, "a drain was handed to waitUntil");
});

Deno.test("one drain at a time: wake-ups during a drain poke it, and share the next one, which starts when it ends", async () => {
  const release = gate();
  const { engine, drains, extensions, pokes } = recordingEngine(release.opened);
  const config = parseConfig({ SUPABASE_SERVICE_ROLE_KEY: LEGACY, WEBHOOK_HTTP_MAX_DELIVERIES: "7" });
  const handler = createHttpHandler({ engine, config, log: () => {} });
  const first = handler(wake(`Bearer ${LEGACY}`));
  await new Promise((r) => setTimeout(r, 10));
  assert.equal(pokes.count, 0, "a drain that starts for the wake-up needs no poke");
  const more = [handler(wake(`Bearer ${LEGACY}`)), handler(wake(`Bearer ${LEGACY}`))];
  await new Promise((r) => setTimeout(r, 10));
  assert.equal(drains.length, 1, "a second drain started while the first ran");
  // The running drain may wait on a hanging request: it looks now. Answered inline, it is
  // not extended (its answer must come).
  assert.equal(pokes.count, 2, "the running drain was not told of the wake-ups");
  assert.equal(extensions.length, 0, "a drain answered inline was extended");
  release.open();
  const [a, b, c] = await Promise.all([first, ...more]);
  assert.equal(drains.length, 2);
  assert.equal((await a.json()).claimed, 1);
  // Both later wake-ups were answered by the second drain.
  assert.equal((await b.json()).claimed, 2);
  assert.equal((await c.json()).claimed, 2);
  // Idle again: the next wake-up starts a drain of its own.
  const d = await handler(wake(`Bearer ${LEGACY}`));
  assert.equal((await d.json()).claimed, 3);
});

Deno.test("shutdown: beforeunload aborts the drains' signal, and later wake-ups are refused", async () => {
  const { engine, drains } = recordingEngine();
  const config = parseConfig({ SUPABASE_SERVICE_ROLE_KEY: LEGACY });
  const controller = new AbortController();
  const logged: string[] = [];
  const remove = abortOnUnload(controller, (m) => logged.push(m));
  try {
    const handler = createHttpHandler({ engine, config, shutdown: controller.signal, log: () => {} });
    const before = await handler(wake(`Bearer ${LEGACY}`));
    assert.equal(before.status, 200);
    await before.body?.cancel();
    assert.equal(drains[0].signal, controller.signal, "the drain is not given the shutdown signal");
    assert.equal(drains[0].signal?.aborted, false);

    // What the Edge Runtime dispatches before it ends the worker.
    dispatchEvent(new CustomEvent("beforeunload", { detail: { reason: "WallClockTime" } }));
    assert.equal(controller.signal.aborted, true);
    assert.deepEqual(logged, [
      "shutting down (WallClockTime): no more claims; attempts in flight finish and are recorded",
    ]);

    const after = await handler(wake(`Bearer ${LEGACY}`));
    assert.equal(after.status, 503);
    assert.deepEqual(await after.json(), { error: "the worker is shutting down" });
    assert.equal(drains.length, 1);
  } finally {
    remove();
  }
});

Deno.test("with EdgeRuntime.waitUntil, a wake-up during a drain extends it: the budget from now, and the deliveries' allowance", async () => {
  const release = gate();
  const { engine, drains, extensions, pokes } = recordingEngine(release.opened);
  const config = parseConfig({ SUPABASE_SERVICE_ROLE_KEY: LEGACY, WEBHOOK_HTTP_MAX_DELIVERIES: "7" });
  const work: Promise<unknown>[] = [];
  const handler = createHttpHandler({ engine, config, log: () => {}, waitUntil: (p) => work.push(p) });
  assert.equal((await handler(wake(`Bearer ${LEGACY}`))).status, 202);
  assert.equal((await handler(wake(`Bearer ${LEGACY}`))).status, 202);
  assert.equal(drains.length, 1);
  // The running drain may be past what it could start, waiting on a hanging request: it
  // gets what a new drain would, now.
  assert.deepEqual(extensions, [{ budgetMs: config.httpBudgetMs, maxDeliveries: 7 }]);
  assert.equal(pokes.count, 0);
  release.open();
  await Promise.all(work);
});

Deno.test("with waitUntil, a drain the database failed: its leftovers are retried, claiming nothing, under waitUntil, before the next drain", async () => {
  const config = parseConfig({ SUPABASE_SERVICE_ROLE_KEY: LEGACY, SUPABASE_DB_URL: "postgres://x/db" }, {
    mode: "http",
  });
  const drains: DrainOptions[] = [];
  const extensions: unknown[] = [];
  let pokes = 0;
  const secondRetry = gate();
  // The first drain fails with one result unwritten; so does the first retry; the second
  // retry waits (a slow write), then writes it.
  const engine = {
    unwritten: 0,
    async drain(options: DrainOptions): Promise<DrainCounts> {
      drains.push(options);
      if (drains.length === 1) {
        engine.unwritten = 1;
        throw new Error("connection refused");
      }
      if (drains.length === 2) throw new Error("connection refused");
      if (drains.length === 3) {
        await secondRetry.opened;
        engine.unwritten = 0;
      }
      return { ...emptyCounts(), claimed: drains.length };
    },
    extend(options: unknown) {
      extensions.push(options);
    },
    poke() {
      pokes++;
    },
  };
  const logged: string[] = [];
  const kept: Promise<unknown>[] = [];
  const shutdown = new AbortController();
  const handler = createHttpHandler({
    engine,
    config,
    log: (m) => logged.push(m),
    waitUntil: (work) => void kept.push(work),
    shutdown: shutdown.signal,
  });
  assert.equal((await handler(wake(`Bearer ${LEGACY}`))).status, 202);
  let allKept = false;
  const keptSettled = (async () => {
    while (kept.length > 0) await kept.shift();
    allKept = true;
  })();
  await waitUntilTrue(() => drains.length === 3);
  // A wake-up during the slow retry: it pokes, and extends nothing (the retry must not claim).
  assert.equal((await handler(wake(`Bearer ${LEGACY}`))).status, 202);
  assert.deepEqual(extensions, [], "a wake-up extended the retry: it would claim");
  assert.ok(pokes >= 1);
  assert.equal(allKept, false, "waitUntil let go of the worker before the leftovers were written");
  assert.equal(drains.length, 3, "the next drain started before the leftovers were written");
  secondRetry.open();
  await keptSettled;
  assert.equal(engine.unwritten, 0);
  assert.equal(drains.length, 4, "two retries, then the drain of the wake-up that came meanwhile");
  assert.deepEqual(
    drains.slice(1, 3).map((d) => [d.budgetMs, d.maxDeliveries, d.signal === shutdown.signal]),
    [[0, 0, true], [0, 0, true]],
    "the retries claim nothing, and take the shutdown signal",
  );
  assert.equal(drains[3].maxDeliveries, config.httpMaxDeliveries);
  assert.equal(logged.filter((m) => /failed drain left failed/.test(m)).length, 1, "the failed retry is logged");
});

Deno.test("answered inline, a drain the database failed is not retried: the next drain writes its leftovers", async () => {
  const config = parseConfig({ SUPABASE_SERVICE_ROLE_KEY: LEGACY, SUPABASE_DB_URL: "postgres://x/db" }, {
    mode: "http",
  });
  const drains: DrainOptions[] = [];
  const engine = {
    unwritten: 0,
    drain(options: DrainOptions): Promise<DrainCounts> {
      drains.push(options);
      if (drains.length === 1) {
        engine.unwritten = 1;
        return Promise.reject(new Error("connection refused"));
      }
      engine.unwritten = 0;
      return Promise.resolve({ ...emptyCounts(), claimed: drains.length });
    },
    extend() {},
    poke() {},
  };
  const handler = createHttpHandler({ engine, config, log: () => {} });
  const failed = await handler(wake(`Bearer ${LEGACY}`)).catch((e) => e);
  assert.match(String(failed), /connection refused/, "the wake-up that ran the failed drain hears of it");
  await new Promise((r) => setTimeout(r, 400));
  assert.equal(drains.length, 1, "retried without waitUntil");
  const next = await handler(wake(`Bearer ${LEGACY}`));
  assert.equal((await next.json()).claimed, 2, "the next wake-up's drain starts at once");
  assert.equal(drains[1].maxDeliveries, config.httpMaxDeliveries);
});

async function waitUntilTrue(check: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error("timed out");
    await new Promise((r) => setTimeout(r, 5));
  }
}
