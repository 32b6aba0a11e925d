// End to end: business writes NOTIFY only while a worker says that it listens (migration
// 20261129150100), and a worker loses nothing to the writes that did not NOTIFY. It says so
// when its LISTEN is in place and every 5 s, and looks for work right after each time; a
// write that read "nobody listens" is therefore delivered by the next look, not after the
// worker's 30 s safety-net sleep.
import assert from "node:assert/strict";
import { createProcess, deliveriesOf, e2eTest, sleep, waitFor } from "../_test/e2e.ts";

e2eTest("a write that read 'nobody listens' (no NOTIFY) is delivered after the worker's next note", async (t) => {
  const receiver = t.receiver();
  const company = await t.company();
  const hook = await t.webhook(company, `${receiver.origin}/erp`);
  const processId = await createProcess(t.sql, company, "Wave soldering");
  await t.dispatcher({ allowedTargets: [receiver.target] });

  // Right after one of its periodic notes, once the look that follows it is over: the
  // worker sleeps (up to 30 s), and its next note is about 5 s away.
  const heartbeat = async () =>
    (await t.sql<{ v: string }[]>`select last_value::text as v from private.webhook_listener_heartbeat`)[0].v;
  const before = await heartbeat();
  await waitFor("a periodic note of the worker's", async () => (await heartbeat()) !== before, { timeoutMs: 7_000 });
  await sleep(500);

  // As if its notes had stopped for more than 15 s: this write skips its NOTIFY.
  const started = performance.now();
  await t.sql.begin(async (tx) => {
    await tx`select setval('private.webhook_listener_heartbeat', 0)`;
    await tx`update public.processes set name = 'Wave soldering, lead-free' where id = ${processId}`;
    // Read after the trigger: "nobody listens" now means it read that too (only a note
    // changes the value, and only towards "listens").
    const [{ listening }] = await tx<{ listening: boolean }[]>`select private.dispatcher_is_listening() as listening`;
    assert.equal(listening, false, "the write must have read 'nobody listens'");
  });
  const [delivery] = await deliveriesOf(t.sql, hook);

  await waitFor(
    "the delivery that no NOTIFY announced (without the look after each note, the worker sleeps 30 s)",
    () => receiver.webhookIds().includes(delivery.id),
    { timeoutMs: 9_000 },
  );
  const waitedMs = performance.now() - started;
  // Not at once (no NOTIFY woke it), and not after its 30 s sleep: at its next note.
  assert.ok(waitedMs > 2_000 && waitedMs < 9_000, `delivered after ${Math.round(waitedMs)} ms`);
  const [{ listening }] = await t.sql<{ listening: boolean }[]>`select private.dispatcher_is_listening() as listening`;
  assert.equal(listening, true, "the worker's next note says it listens again");
});
