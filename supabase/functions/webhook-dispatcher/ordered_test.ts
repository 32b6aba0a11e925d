// End to end: an endpoint that asks for ordered delivery gets each process's events one at
// a time, in commit order, whatever the receiver and the dispatchers do; a parallel
// endpoint on the same events does not (which shows the test can fail).
import assert from "node:assert/strict";
import { createProcess, deliveriesOf, e2eTest, sleep, waitFor } from "../_test/e2e.ts";
import { gate } from "../_test/receiver.ts";

const PROCESSES = 10;
const REVISIONS = 100; // per process: 1,000 in all

interface Arrival {
  processId: string;
  revision: number;
  ok: boolean;
}

/** The revisions of each process in the order the receiver accepted them (2xx answers). */
function acceptedOrder(arrivals: Arrival[]): Map<string, number[]> {
  const byProcess = new Map<string, number[]>();
  for (const a of arrivals) {
    if (!a.ok) continue;
    byProcess.set(a.processId, [...(byProcess.get(a.processId) ?? []), a.revision]);
  }
  return byProcess;
}

e2eTest(
  "ordered endpoint: 1,000 revisions of 10 processes arrive in revision order per process; parallel does not",
  async (t) => {
    // Fails about a third of requests at random and answers after 0-15 ms.
    const arrivals = { ordered: [] as Arrival[], parallel: [] as Arrival[] };
    let inFlightPerKey = 0;
    const keysInFlight = new Map<string, number>();
    const receiver = t.receiver(async (request) => {
      const mode = request.path.endsWith("/ordered") ? "ordered" : "parallel";
      const body = JSON.parse(request.body);
      const processId = body.data.process_id as string;
      const key = `${mode}:${processId}`;
      keysInFlight.set(key, (keysInFlight.get(key) ?? 0) + 1);
      if (mode === "ordered") inFlightPerKey = Math.max(inFlightPerKey, keysInFlight.get(key)!);
      await sleep(Math.random() * 15, t.ending);
      keysInFlight.set(key, keysInFlight.get(key)! - 1);
      const ok = Math.random() >= 1 / 3;
      arrivals[mode].push({ processId, revision: body.data.revision, ok });
      return ok ? new Response("ok") : new Response("flaky", { status: 503 });
    });
    const company = await t.company();
    const ordered = await t.webhook(company, `${receiver.origin}/ordered`);
    const parallel = await t.webhook(company, `${receiver.origin}/parallel`);
    await t.sql`update public.webhooks set delivery_order = 'ordered' where id = ${ordered}`;
    // The flaky receiver must not open the circuit; retries are quick and many.
    await t.settings({ circuit_failure_threshold: 1000 });
    const env = { WEBHOOK_RETRY_SCHEDULE: Array(30).fill("0.02").join(","), WEBHOOK_CONCURRENCY: "8" };
    await Promise.all([0, 1, 2].map(() => t.dispatcher({ allowedTargets: [receiver.target], env })));

    const processes: string[] = [];
    for (let p = 0; p < PROCESSES; p++) processes.push(await createProcess(t.sql, company, `Station ${p}`));
    // Revisions interleaved across processes, each its own transaction, committed while the
    // dispatchers deliver.
    for (let r = 2; r <= REVISIONS + 1; r++) {
      await Promise.all(
        processes.map((id, p) => t.sql`update public.processes set name = ${`Station ${p} v${r}`} where id = ${id}`),
      );
    }

    for (const hook of [ordered, parallel]) {
      await waitFor(`the ${hook === ordered ? "ordered" : "parallel"} endpoint's deliveries to succeed`, async () => {
        const rows = await deliveriesOf(t.sql, hook);
        return rows.length === PROCESSES * REVISIONS && rows.every((d) => d.state === "succeeded");
      }, { timeoutMs: 90_000, intervalMs: 250 });
    }

    const orderedAccepted = acceptedOrder(arrivals.ordered);
    for (const id of processes) {
      const revisions = orderedAccepted.get(id) ?? [];
      const expected = Array.from({ length: REVISIONS }, (_, i) => i + 2);
      assert.deepEqual(revisions, expected, `process ${id}: accepted in revision order, each once`);
    }
    assert.equal(inFlightPerKey, 1, "never two deliveries of one process in flight at the ordered endpoint");

    const parallelAccepted = acceptedOrder(arrivals.parallel);
    const inversions = [...parallelAccepted.values()].reduce(
      (n, revs) => n + revs.filter((rev, i) => i > 0 && rev < revs[i - 1]).length,
      0,
    );
    assert.ok(inversions > 0, "the parallel endpoint got some revisions out of order (so this test can fail)");
  },
);

e2eTest("ordered endpoint: a dispatcher killed mid-delivery loses nothing and breaks no order", async (t) => {
  const firstHeld = gate();
  const seen: number[] = [];
  const receiver = t.receiver(async (request) => {
    const revision = JSON.parse(request.body).data.revision as number;
    seen.push(revision);
    // The very first request hangs: its dispatcher is killed while it is in flight.
    if (seen.length === 1) await Promise.race([firstHeld.opened, sleep(60_000, t.ending)]);
    return new Response("ok");
  });
  const company = await t.company();
  const hook = await t.webhook(company, `${receiver.origin}/ordered`);
  await t.sql`update public.webhooks set delivery_order = 'ordered' where id = ${hook}`;
  const process = await createProcess(t.sql, company, "Painting");
  for (let r = 2; r <= 6; r++) {
    await t.sql`update public.processes set name = ${`Painting v${r}`} where id = ${process}`;
  }

  const first = await t.dispatcher({ allowedTargets: [receiver.target] });
  await waitFor("revision 2 to be in flight", () => seen.length === 1);
  await sleep(300); // anything else it would wrongly send goes out now
  assert.deepEqual(seen, [2], "nothing behind revision 2 was sent while it was in flight");
  first.kill("SIGKILL");
  await first.exited;

  // The lease runs out (8 s); another dispatcher sends revision 2 again, then the rest.
  await t.dispatcher({ allowedTargets: [receiver.target] });
  const rows = await waitFor("all five to succeed", async () => {
    const all = await deliveriesOf(t.sql, hook);
    return all.length === 5 && all.every((d) => d.state === "succeeded") ? all : null;
  }, { timeoutMs: 30_000 });
  firstHeld.open();
  assert.deepEqual(seen, [2, 2, 3, 4, 5, 6], "revision 2 again (same webhook-id), then 3 to 6 in order");
  assert.equal(rows.find((d) => d.attempt_count === 2) !== undefined, true, "the killed attempt was counted");
});
