// Database outages the worker must ride out, through a TCP proxy between the dispatcher
// and the test database (so the outage is exact and needs no server restart): a
// connection dropped while postgres.js sets it up must not kill the process, and the
// worker resumes on its own once the database answers again, losing nothing; stopped
// during an outage, it writes what it delivered once the database is back. How soon
// it resumes is the reconnect backoff's business (capped at a second, pg_store_test.ts),
// not a stopwatch's: a bound on wall time flakes on a loaded machine.
import assert from "node:assert/strict";
import {
  assertDeliveredOnce, createProcess, deliveriesOf, e2eTest, enqueueEvents, oneHeldDelivery, reviseProcess, settledDeliveries, waitFor,
} from "../_test/e2e.ts";
import { proxyFor } from "../_test/pg_proxy.ts";

e2eTest(
  "a pool connection lost while it is set up (postgres.js array-types query) does not kill the worker",
  async (t) => {
    const { proxy, url } = proxyFor();
    try {
      const receiver = t.receiver();
      const company = await t.company();
      const hook = await t.webhook(company, `${receiver.origin}/hook`);
      const processId = await createProcess(t.sql, company, "Reflow");
      await reviseProcess(t.sql, processId, "Reflow, profile B");

      // The worker's first pool connection starts up, then is dropped while it fetches
      // array types; its reconnect is refused for 3 s (a server restarting).
      proxy.killTypesQueryThenRefuseMs = 3_000;
      const worker = await t.dispatcher({ allowedTargets: [receiver.target], env: { SUPABASE_DB_URL: url } });
      let exited = false;
      worker.exited.then(() => (exited = true));

      const [delivery] = await settledDeliveries(t.sql, hook, { timeoutMs: 30_000 }).catch((e) => {
        throw new Error(`${e.message}; worker exited: ${exited}\n${worker.output()}`);
      });
      assert.equal(delivery.state, "succeeded");
      assert.equal(exited, false, `the worker died:\n${worker.output()}`);
    } finally {
      proxy.close();
    }
  },
);

e2eTest("after a 6 s database outage the worker resumes on its own and loses nothing", async (t) => {
  const { proxy, url } = proxyFor();
  try {
    const receiver = t.receiver();
    const company = await t.company();
    const hook = await t.webhook(company, `${receiver.origin}/hook`);
    const worker = await t.dispatcher({ allowedTargets: [receiver.target], env: { SUPABASE_DB_URL: url } });
    let exited = false;
    worker.exited.then(() => (exited = true));
    await enqueueEvents(t.sql, company, 1);
    // Delivered and recorded: the outage must not catch its result in flight.
    await settledDeliveries(t.sql, hook);

    await proxy.refuse(6_000);
    // The database is reachable again; a new event commits (and NOTIFYs).
    await enqueueEvents(t.sql, company, 1);
    const deliveries = await settledDeliveries(t.sql, hook, { expected: 2, timeoutMs: 30_000 }).catch((e) => {
      throw new Error(`${e.message}; worker exited: ${exited}\n${worker.output()}`);
    });
    assert.equal(exited, false, `the worker died:\n${worker.output()}`);
    assert.deepEqual(deliveries.map((d) => [d.state, d.attempt_count]), [["succeeded", 1], ["succeeded", 1]]);
    assert.equal(receiver.requests.length, 2, "each delivered once");
    assert.deepEqual(new Set(receiver.webhookIds()), new Set(deliveries.map((d) => d.id)));
  } finally {
    proxy.close();
  }
});

e2eTest("stopped (SIGTERM) while the database is away, the worker writes what it delivered once it is back, then exits", async (t) => {
  const { proxy, url } = proxyFor();
  try {
    const { answer, receiver, hook } = await oneHeldDelivery(t);
    const worker = await t.dispatcher({ allowedTargets: [receiver.target], env: { SUPABASE_DB_URL: url } });
    await waitFor("the delivery to reach the receiver", () => receiver.requests.length === 1);

    // The database goes away while the request is out; the receiver answers during the
    // outage, so the result cannot be written; then the worker is told to stop.
    const outage = proxy.refuse(5_000); // long enough to look while it lasts, on a slow machine too
    answer.open();
    await waitFor("the write to fail", () => /dispatcher error/.test(worker.output()), { timeoutMs: 20_000 });
    worker.kill("SIGTERM");
    const [during] = await deliveriesOf(t.sql, hook);
    assert.equal(during.state, "pending", "nothing written while the database is away");
    await outage;

    const status = await worker.exited;
    assert.equal(status.code, 0, worker.output());
    // Written before it exited: no lease left to run out, nothing to send again.
    await assertDeliveredOnce(t.sql, hook, receiver, worker.output());
  } finally {
    proxy.close();
  }
});
