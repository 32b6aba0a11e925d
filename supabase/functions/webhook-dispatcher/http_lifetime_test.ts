// End to end: HTTP mode lives inside an Edge Runtime worker whose wall clock counts from its
// boot, across every request, and which the runtime may end at any moment after announcing
// it (beforeunload). No attempt starts that could end after the worker's life
// (WEBHOOK_WALL_CLOCK_MS less the margin); the shutdown event stops claiming, and what
// finished is recorded.
import assert from "node:assert/strict";
import { parseConfig, WALL_CLOCK_MARGIN_MS } from "../_shared/dispatch/config.ts";
import { DispatchEngine } from "../_shared/dispatch/engine.ts";
import { connectDatabase, createPgStore } from "../_shared/dispatch/pg_store.ts";
import {
  attemptsOf,
  deliveriesOf,
  e2eTest,
  enqueueEvents,
  FAST_DISPATCHER_ENV,
  requireDbUrl,
  sleep,
  waitFor,
} from "../_test/e2e.ts";
import { gate } from "../_test/receiver.ts";
import { abortOnUnload, createHttpHandler } from "./http_handler.ts";

const KEY = `sb_secret_${crypto.randomUUID()}`;
const wake = (origin: string) => fetch(origin, { method: "POST", headers: { authorization: `Bearer ${KEY}` } });

e2eTest(
  "a short worker wall clock: no attempt starts that could end after it; later wake-ups are refused",
  async (t) => {
    const timeoutMs = 500;
    const wallClockMs = 11_000;
    const receiver = t.receiver(async () => {
      await sleep(400, t.ending);
      return new Response("ok");
    });
    const company = await t.company();
    const hook = await t.webhook(company, `${receiver.origin}/hook`);

    // As the Edge Runtime runs it: a plain Deno process has no wall clock of its own.
    const fn = await t.dispatcher({
      mode: "http",
      edgeRuntime: true,
      allowedTargets: [receiver.target],
      env: {
        SUPABASE_SECRET_KEYS: JSON.stringify({ default: KEY }),
        WEBHOOK_TIMEOUT_MS: String(timeoutMs),
        WEBHOOK_WALL_CLOCK_MS: String(wallClockMs),
        WEBHOOK_LEASE_SECONDS: "30",
        // One attempt at a time, 400 ms each: 20 take 8 s, longer than the worker lives.
        WEBHOOK_CONCURRENCY: "1",
      },
    });
    // The worker booted before it said it was ready: its life ends no later than this.
    const lifeEndsBy = Date.now() + wallClockMs - WALL_CLOCK_MARGIN_MS;
    await enqueueEvents(t.sql, company, 20);

    const response = await wake(fn.origin);
    assert.equal(response.status, 202);
    await response.body?.cancel();
    // The drain runs on after the answer; by the end of the worker's life it has ended.
    await sleep(Math.max(0, lifeEndsBy + 500 - Date.now()));
    const rows = await waitFor("the drain to hand back what it did not attempt", async () => {
      const rows = await deliveriesOf(t.sql, hook);
      return rows.every((d) => d.lease_owner === null) ? rows : null;
    });
    const sent = rows.filter((d) => d.state === "succeeded");
    assert.ok(sent.length >= 1, "nothing was sent while the worker was young");
    assert.ok(sent.length < 20, "every delivery was sent: the drain ignored the worker's wall clock");
    assert.equal(receiver.requests.length, sent.length);
    // Each attempt started early enough to end, timeout included, within the worker's life
    // (100 ms allowed for the request to travel to the receiver).
    for (const arrival of receiver.arrivals) {
      assert.ok(
        arrival + timeoutMs <= lifeEndsBy + 100,
        `an attempt started ${arrival + timeoutMs - lifeEndsBy} ms late`,
      );
    }
    // What was not attempted was handed back, untouched.
    for (const d of rows.filter((d) => d.state !== "succeeded")) {
      assert.deepEqual([d.state, d.attempt_count], ["pending", 0]);
    }

    // No room is left for one more attempt: the worker says so and sends nothing.
    const late = await wake(fn.origin);
    assert.equal(late.status, 503);
    assert.match((await late.json()).error, /too close to its wall-clock limit/);
    assert.equal(receiver.requests.length, sent.length);
  },
);

e2eTest(
  "beforeunload stops claiming: the attempt in flight finishes and is recorded, nothing else is claimed",
  async (t) => {
    const release = gate();
    const receiver = t.receiver(async () => {
      await Promise.race([release.opened, sleep(10_000, t.ending)]);
      return new Response("ok");
    });
    const company = await t.company();
    const hook = await t.webhook(company, `${receiver.origin}/hook`);
    await enqueueEvents(t.sql, company, 4);

    // The function's own parts, in this process, so the test can dispatch the runtime's event.
    const config = parseConfig({
      ...FAST_DISPATCHER_ENV,
      SUPABASE_DB_URL: requireDbUrl(),
      SUPABASE_SECRET_KEYS: JSON.stringify({ default: KEY }),
      WEBHOOK_ALLOWED_TARGETS: receiver.target,
      WEBHOOK_WORKER_ID: `e2e-unload-${crypto.randomUUID().slice(0, 6)}`,
      // One delivery claimed at a time, so what is claimed after the event shows.
      WEBHOOK_BATCH_SIZE: "1",
      WEBHOOK_CONCURRENCY: "1",
    }, { mode: "http" });
    const sql = connectDatabase(config.dbUrl!);
    const engine = new DispatchEngine({
      store: createPgStore(sql, { workerId: config.workerId, disableAfterHours: config.disableAfterHours }),
      config,
    });
    const shutdown = new AbortController();
    const logged: string[] = [];
    const stopListening = abortOnUnload(shutdown, (m) => logged.push(m));
    const handler = createHttpHandler({ engine, config, shutdown: shutdown.signal, log: () => {} });
    const post = () =>
      handler(new Request("http://dispatcher.test/", { method: "POST", headers: { authorization: `Bearer ${KEY}` } }));
    try {
      const draining = post();
      await waitFor("the first attempt to reach the receiver", () => receiver.requests.length === 1);
      dispatchEvent(new CustomEvent("beforeunload", { detail: { reason: "CPUTime" } }));
      release.open();
      const response = await draining;
      assert.equal(response.status, 200);
      await response.body?.cancel();
      assert.deepEqual(logged, [
        "shutting down (CPUTime): no more claims; attempts in flight finish and are recorded",
      ]);

      const rows = await deliveriesOf(t.sql, hook);
      const [sent, ...rest] = [...rows].sort((a, b) => b.attempt_count - a.attempt_count);
      assert.equal(receiver.requests.length, 1);
      assert.equal(sent.state, "succeeded");
      assert.deepEqual((await attemptsOf(t.sql, sent.id)).map((a) => [a.outcome, a.status]), [["succeeded", 200]]);
      assert.deepEqual(rest.map((d) => [d.state, d.attempt_count, d.lease_owner]), [
        ["pending", 0, null],
        ["pending", 0, null],
        ["pending", 0, null],
      ]);

      const after = await post();
      assert.equal(after.status, 503);
      await after.body?.cancel();
      assert.equal(receiver.requests.length, 1);
    } finally {
      stopListening();
      release.open();
      await sql.end({ timeout: 5 });
    }
  },
);
