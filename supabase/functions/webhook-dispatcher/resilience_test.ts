// End to end: dispatcher processes die or are stopped mid-batch, and nothing is lost.
import assert from "node:assert/strict";
import {
  attemptsOf,
  createProcess,
  deliveriesOf,
  deliveryById,
  e2eTest,
  FAST_DISPATCHER_ENV,
  reviseProcess,
  settledDeliveries,
  sleep,
  verifySignature,
  waitFor,
  webhookSecret,
} from "../_test/e2e.ts";
import { gate } from "../_test/receiver.ts";

e2eTest("a dispatcher killed mid-attempt loses nothing: after its lease expires another one delivers", async (t) => {
  // The first request hangs (until the test ends); later ones are answered at once.
  const receiver = t.receiver(async () => {
    if (receiver.requests.length === 1) await sleepUntilEnd();
    return new Response("ok");
  });
  const sleepUntilEnd = () => sleep(60_000, t.ending);
  const company = await t.company();
  const hook = await t.webhook(company, `${receiver.origin}/hook`);
  const processId = await createProcess(t.sql, company, "Burn-in");
  await reviseProcess(t.sql, processId, "Burn-in, 48 h");
  const [{ id: deliveryId }] = await deliveriesOf(t.sql, hook);

  const first = await t.dispatcher({ allowedTargets: [receiver.target] });
  await waitFor("the first attempt to reach the receiver", () => receiver.requests.length === 1);
  // Well inside the 2 s attempt timeout: the first dispatcher never gets to record anything.
  first.kill("SIGKILL");
  const status = await first.exited;
  assert.equal(status.signal, "SIGKILL");

  const leased = await deliveryById(t.sql, deliveryId);
  assert.equal(leased.state, "pending");
  assert.equal(leased.lease_owner, first.workerId);
  assert.equal(leased.attempt_count, 1);
  assert.deepEqual(await attemptsOf(t.sql, deliveryId), []);
  const leaseExpiresAt = leased.lease_expires_at!.getTime();

  // Started at once: it must leave the live lease alone, then take the delivery when it expires.
  const second = await t.dispatcher({ allowedTargets: [receiver.target] });
  const lease = Number(FAST_DISPATCHER_ENV.WEBHOOK_LEASE_SECONDS) * 1000;
  const [delivery] = await settledDeliveries(t.sql, hook, { timeoutMs: lease + 5_000 });

  assert.equal(delivery.state, "succeeded");
  assert.equal(delivery.attempt_count, 2);
  assert.equal(receiver.requests.length, 2);
  assert.deepEqual(receiver.webhookIds(), [deliveryId]);
  verifySignature(await webhookSecret(t.sql, hook), receiver.requests[1]);
  // The second send came only after the first lease ran out (one machine, one clock).
  const early = leaseExpiresAt - receiver.arrivals[1];
  assert.ok(early <= 250, `redelivered ${early} ms before the first lease expired`);
  // The lost attempt left no row (it was never recorded); the second one did.
  const attempts = await attemptsOf(t.sql, deliveryId);
  assert.deepEqual(attempts.map((a) => [a.attempt_number, a.outcome, a.status, a.worker]), [
    [2, "succeeded", 200, second.workerId],
  ]);
});

e2eTest(
  "SIGTERM: the in-flight attempt finishes and is recorded, nothing stays leased, exit 0, a later worker delivers",
  async (t) => {
    // The first request is held until the worker has taken the SIGTERM, so it is surely
    // in flight then, whatever the machine's load.
    const sigtermTaken = gate();
    const receiver = t.receiver(async () => {
      if (receiver.requests.length === 1) await Promise.race([sigtermTaken.opened, sleep(60_000, t.ending)]);
      return new Response("ok");
    });
    const company = await t.company();
    const hook = await t.webhook(company, `${receiver.origin}/hook`);
    const processId = await createProcess(t.sql, company, "Packing");
    for (const name of ["Packing v2", "Packing v3", "Packing v4"]) await reviseProcess(t.sql, processId, name);

    // One request at a time to this endpoint.
    await t.settings({ endpoint_concurrency: 1 });
    const first = await t.dispatcher({ allowedTargets: [receiver.target] });
    await waitFor("the first attempt to reach the receiver", () => receiver.requests.length === 1);
    const leasedBefore = await deliveriesOf(t.sql, hook);
    assert.deepEqual(
      leasedBefore.map((d) => d.lease_owner).sort(),
      [first.workerId, null, null].sort(),
      "the endpoint's cap of 1: one leased, two waiting in the database",
    );

    first.kill("SIGTERM");
    // It says so before it stops claiming and starting attempts (index.ts, shutdown).
    await waitFor(
      "the worker to take the SIGTERM",
      () => /stopping: finishing in-flight attempts/.test(first.output()),
    );
    sigtermTaken.open();
    const status = await first.exited;
    assert.equal(status.code, 0, `exit status ${JSON.stringify(status)}\n${first.output()}`);
    assert.match(first.output(), /stopped/);
    assert.equal(receiver.requests.length, 1);

    const [inFlightId] = receiver.webhookIds();
    const after = await deliveriesOf(t.sql, hook);
    for (const d of after) {
      if (d.id === inFlightId) {
        assert.equal(d.state, "succeeded", "the in-flight attempt finished and was recorded");
        assert.equal(d.attempt_count, 1);
      } else {
        assert.equal(d.state, "pending");
        assert.equal(d.lease_owner, null, "never leased to the stopping worker");
        assert.equal(d.attempt_count, 0, "no attempt counted");
        assert.ok(d.next_attempt_at!.getTime() <= Date.now() + 1_000, "still due at once");
      }
    }
    const [{ count }] = await t.sql`
    select count(*)::int as count from public.webhook_deliveries where lease_owner = ${first.workerId}`;
    assert.equal(count, 0, "nothing of any company stays leased to the stopped worker");

    const second = await t.dispatcher({ allowedTargets: [receiver.target] });
    const delivered = await settledDeliveries(t.sql, hook, { expected: 3 });
    assert.deepEqual(delivered.map((d) => d.state), ["succeeded", "succeeded", "succeeded"]);
    assert.equal(receiver.requests.length, 3);
    assert.deepEqual(new Set(receiver.webhookIds()), new Set(delivered.map((d) => d.id)));
    for (const d of delivered) {
      const attempts = await attemptsOf(t.sql, d.id);
      assert.deepEqual(attempts.map((a) => [a.attempt_number, a.outcome, a.worker]), [
        [1, "succeeded", d.id === inFlightId ? first.workerId : second.workerId],
      ]);
    }
  },
);
