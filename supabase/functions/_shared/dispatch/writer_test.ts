import assert from "node:assert/strict";
import { gate } from "../../_test/receiver.ts";
import type { DeliveryResult, DeliveryStore } from "./store.ts";
import { ResultWriter } from "./writer.ts";

function succeeded(deliveryId: string): DeliveryResult {
  return {
    delivery_id: deliveryId,
    attempt_number: 1,
    outcome: "succeeded",
    status: 200,
    duration_ms: 1,
    response_body: "ok",
    error: null,
    next_attempt_at: null,
    gone: false,
  };
}

/** A store that logs its writes in order; the first record call waits for `firstRecord`. */
function loggingStore(firstRecord: Promise<void>, failRecord = false) {
  const calls: string[] = [];
  const store: DeliveryStore = {
    claim: () => Promise.reject(new Error("the writer never claims")),
    async record(results) {
      calls.push(`record ${results.map((r) => r.delivery_id).join(" ")}`);
      if (calls.length === 1) await firstRecord;
      if (failRecord) throw new Error("connection reset");
    },
    release(deliveryIds) {
      calls.push(`release ${deliveryIds.join(" ")}`);
      return Promise.resolve();
    },
    goingIdle: () => Promise.reject(new Error("the writer never goes idle")),
    transactionsEnded: () => Promise.reject(new Error("the writer never goes idle")),
    handOff: () => Promise.reject(new Error("the writer never hands off")),
    nextDueAt: () => Promise.reject(new Error("the writer never schedules")),
  };
  return { store, calls };
}

Deno.test("writer: results that finish while a record call is in flight go out together in the next", async () => {
  const firstRecord = gate();
  const { store, calls } = loggingStore(firstRecord.opened);
  const writer = new ResultWriter(store);

  writer.write([succeeded("a"), succeeded("b"), succeeded("c")], []);
  // Two more batches finish while the first record call is still in flight.
  writer.write([succeeded("d")], ["x"]);
  writer.write([succeeded("e"), succeeded("f")], ["y"]);
  writer.write([], []);
  firstRecord.open();
  await writer.settled();

  assert.deepEqual(calls, ["record a b c", "record d e f", "release x y"]);
});

Deno.test("writer: after a failed store call nothing more is written, and settled() reports it", async () => {
  const firstRecord = gate();
  const { store, calls } = loggingStore(firstRecord.opened, true);
  const writer = new ResultWriter(store);

  writer.write([succeeded("a")], ["x"]);
  writer.write([succeeded("b")], []);
  firstRecord.open();
  await assert.rejects(writer.settled(), /connection reset/);
  assert.equal(writer.failed, true);
  // Neither the release of the failed call nor the next batch is written: those leases
  // expire and another dispatcher retries them.
  writer.write([succeeded("c")], ["z"]);
  await assert.rejects(writer.settled(), /connection reset/);
  assert.deepEqual(calls, ["record a"]);
});
