// End to end: a receiver that does not answer within WEBHOOK_TIMEOUT_MS costs one failed
// attempt (no status, the timeout named), and the delivery is retried under the same
// webhook-id until the receiver answers.
import assert from "node:assert/strict";
import {
  attemptsOf,
  createProcess,
  deliveriesOf,
  deliveryById,
  e2eTest,
  reviseProcess,
  settledDeliveries,
  sleep,
  verifySignature,
  waitFor,
  webhookSecret,
} from "../_test/e2e.ts";

const TIMEOUT_MS = 1_000;
/** The shortest lease config.ts accepts: the timeout, the 5 s margin and 1 s to start. */
const LEASE_SECONDS = TIMEOUT_MS / 1000 + 6;
/** 2 s (±20 %) before attempt 2: long enough to catch the delivery pending in between, even
 * on a loaded machine. */
const RETRY_DELAY_MS = 2_000;

e2eTest(
  "a receiver that never answers in time: failed attempt, no status, retried under the same webhook-id",
  async (t) => {
    // The first request hangs far past the timeout (until the test ends); the second is answered at once.
    let calls = 0;
    const receiver = t.receiver(async () => {
      if (++calls === 1) await sleep(60_000, t.ending);
      return new Response("ok");
    });
    const company = await t.company();
    const hook = await t.webhook(company, `${receiver.origin}/slow-erp`);
    const processId = await createProcess(t.sql, company, "Conformal coating");
    await reviseProcess(t.sql, processId, "Conformal coating, 2 layers");
    const [{ id: deliveryId }] = await deliveriesOf(t.sql, hook);

    const worker = await t.dispatcher({
      allowedTargets: [receiver.target],
      env: {
        WEBHOOK_TIMEOUT_MS: String(TIMEOUT_MS),
        WEBHOOK_LEASE_SECONDS: String(LEASE_SECONDS),
        WEBHOOK_RETRY_SCHEDULE: `${RETRY_DELAY_MS / 1000},${RETRY_DELAY_MS / 1000}`,
      },
    });

    // Attempt 1 is recorded once the timeout fires, while the receiver is still holding the
    // request. The delivery is read right with it, before attempt 2 is due.
    const [first, between] = await waitFor(
      "attempt 1 to be recorded",
      async () => {
        const attempts = await attemptsOf(t.sql, deliveryId);
        return attempts.length > 0 ? [attempts[0], await deliveryById(t.sql, deliveryId)] as const : null;
      },
      { timeoutMs: TIMEOUT_MS + 5_000 },
    );
    assert.equal(first.attempt_number, 1);
    assert.equal(first.outcome, "failed");
    assert.equal(first.status, null, "no response arrived, so no status");
    assert.equal(first.response_body, null);
    assert.match(first.error ?? "", /timed out after 1000 ms/);
    assert.equal(first.worker, worker.workerId);
    // Cut by the timeout, not by the receiver (which holds the request for a minute).
    assert.ok(
      first.duration_ms! >= TIMEOUT_MS - 50 && first.duration_ms! < 60_000,
      `attempt 1 took ${first.duration_ms} ms, not about the ${TIMEOUT_MS} ms timeout`,
    );

    // Between the attempts: pending, lease given back, the timeout as last error, the retry
    // scheduled after the delay (measured from the recording, on the database's clock).
    assert.equal(between.state, "pending");
    assert.equal(between.attempt_count, 1);
    assert.equal(between.lease_owner, null);
    assert.equal(between.last_status, null);
    assert.match(between.last_error ?? "", /timed out after 1000 ms/);
    const scheduledIn = between.next_attempt_at!.getTime() - first.created_at.getTime();
    assert.ok(
      scheduledIn > 0 && scheduledIn <= RETRY_DELAY_MS * 1.2 + 50,
      `attempt 2 was scheduled ${scheduledIn} ms after attempt 1 was recorded`,
    );

    const [delivery] = await settledDeliveries(t.sql, hook, { timeoutMs: RETRY_DELAY_MS * 1.2 + 5_000 });
    assert.equal(delivery.state, "succeeded");
    assert.equal(delivery.attempt_count, 2);
    assert.equal(delivery.last_status, 200);
    assert.equal(delivery.last_error, null);

    // Two requests, one webhook-id; each signed at its own send time, both verify.
    assert.equal(receiver.requests.length, 2);
    assert.deepEqual(receiver.webhookIds(), [deliveryId]);
    const secret = await webhookSecret(t.sql, hook);
    for (const r of receiver.requests) {
      verifySignature(secret, r);
    }
    assert.equal(receiver.requests[0].body, receiver.requests[1].body, "a retry sends the same body");
    // Attempt 2 waited for the timeout and then the retry delay (1.6 s at the least, with
    // jitter); the slack covers attempt 1's own way to the receiver.
    const gap = receiver.arrivals[1] - receiver.arrivals[0];
    assert.ok(gap >= TIMEOUT_MS + RETRY_DELAY_MS * 0.8 - 300, `attempt 2 came ${gap} ms after attempt 1`);

    const attempts = await attemptsOf(t.sql, deliveryId);
    assert.deepEqual(attempts.map((a) => [a.attempt_number, a.outcome, a.status, a.worker]), [
      [1, "failed", null, worker.workerId],
      [2, "succeeded", 200, worker.workerId],
    ]);

    // The hung request, still open on the receiver's side, causes nothing more.
    await sleep(300);
    assert.equal(receiver.requests.length, 2);
  },
);
