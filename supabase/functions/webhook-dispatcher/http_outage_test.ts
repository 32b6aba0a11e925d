// A database outage in HTTP mode, as hosted Supabase runs it (EdgeRuntime.waitUntil): the
// results a drain could not write are written once the database is back, before the
// runtime can end the worker (http_handler.ts, writeLeftovers). And as the local stack runs
// it (a plain Deno process): stopped meanwhile, it writes them before it exits
// (worker.ts, writeBeforeExit). Apart from
// db_outage_test.ts (worker mode), so that it runs on Deno 2.1 too, the level hosted
// Supabase runs.
import assert from "node:assert/strict";
import { assertDeliveredOnce, deliveriesOf, e2eTest, oneHeldDelivery, settledDeliveries, waitFor } from "../_test/e2e.ts";
import { proxyFor } from "../_test/pg_proxy.ts";

e2eTest(
  "HTTP mode on the Edge Runtime: results a drain could not write (the database went away) are written once it is back, with no further wake-up",
  async (t) => {
    const { proxy, url } = proxyFor();
    try {
      const { answer, receiver, hook } = await oneHeldDelivery(t);

      const key = `sb_secret_${crypto.randomUUID()}`;
      const fn = await t.dispatcher({
        mode: "http",
        edgeRuntime: true,
        allowedTargets: [receiver.target],
        env: { SUPABASE_DB_URL: url, SUPABASE_SECRET_KEYS: JSON.stringify({ default: key }) },
      });
      const woken = await fetch(fn.origin, { method: "POST", headers: { authorization: `Bearer ${key}` } });
      assert.equal(woken.status, 202);
      await woken.body?.cancel();
      await waitFor("the delivery to reach the receiver", () => receiver.requests.length === 1);

      // The database goes away while the request is out; the receiver answers during the
      // outage, so the drain cannot write the result and fails.
      const outage = proxy.refuse(3_000);
      answer.open();
      await waitFor("the drain to fail", () => /drain failed/.test(fn.output()), { timeoutMs: 20_000 });
      const [during] = await deliveriesOf(t.sql, hook);
      assert.equal(during.state, "pending", "nothing written while the database is away");
      await outage;

      // Back: the result is written without another wake-up, long before the lease would
      // have run out (and the delivery been sent again).
      await settledDeliveries(t.sql, hook, { timeoutMs: 15_000 }).catch((e) => {
        throw new Error(`${e.message}\n${fn.output()}`);
      });
      await assertDeliveredOnce(t.sql, hook, receiver, fn.output());
    } finally {
      proxy.close();
    }
  },
);

e2eTest(
  "HTTP mode as a plain Deno process (the local stack): stopped while the database is away, it writes what a failed drain delivered once it is back, then exits",
  async (t) => {
    const { proxy, url } = proxyFor();
    try {
      const { answer, receiver, hook } = await oneHeldDelivery(t);

      const key = `sb_secret_${crypto.randomUUID()}`;
      const fn = await t.dispatcher({
        mode: "http",
        allowedTargets: [receiver.target],
        env: { SUPABASE_DB_URL: url, SUPABASE_SECRET_KEYS: JSON.stringify({ default: key }) },
      });
      // Answered inline, once the drain ends: not awaited here.
      const woken = fetch(fn.origin, { method: "POST", headers: { authorization: `Bearer ${key}` } })
        .then(async (r) => (await r.body?.cancel(), r.status));
      await waitFor("the delivery to reach the receiver", () => receiver.requests.length === 1);

      // The database goes away while the request is out, the drain fails to write its
      // result, and the process is told to stop.
      const outage = proxy.refuse(5_000); // long enough to look while it lasts, on a slow machine too
      answer.open();
      assert.equal(await woken, 500, "the drain failed: it could not write the result");
      fn.kill("SIGTERM");
      const [during] = await deliveriesOf(t.sql, hook);
      assert.equal(during.state, "pending", "nothing written while the database is away");
      await outage;

      const status = await fn.exited;
      assert.equal(status.code, 0, fn.output());
      await assertDeliveredOnce(t.sql, hook, receiver, fn.output());
    } finally {
      proxy.close();
    }
  },
);
