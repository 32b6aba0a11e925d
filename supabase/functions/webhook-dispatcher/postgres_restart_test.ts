// End to end: Postgres goes away under a running worker, twice (a fast shutdown, then an
// immediate one, i.e. a crash), while deliveries are pending and in flight. Nothing is
// lost: the worker survives, every delivery arrives at least once and ends succeeded.
// And Postgres down when the worker starts: it waits for it, then delivers.
//
// It restarts a server, so it brings its own (_test/cluster.ts), prepared like DB_URL's
// (bootstrap, migrations, seed, test helpers), deleted after.
//
// Each outage is short and starts while the worker is delivering over connections it has
// already set up. How the pool reconnects after failed connects, and why it never runs
// postgres.js's internal fetch_types query (porsager/postgres#1192), is pg_store.ts's;
// db_outage_test.ts and pg_store_test.ts test those.
import assert from "node:assert/strict";
import postgres from "postgres";
import { type Cluster, createCluster } from "../_test/cluster.ts";
import { deliveriesOf, e2eTest, enqueueEvents, sleep, waitFor } from "../_test/e2e.ts";

const LOG_ERROR = /dispatcher error \(retrying in 1 s\)/g;

// ---------------------------------------------------------------------------------------
// The test
// ---------------------------------------------------------------------------------------

let cluster: Cluster;

e2eTest(
  "Postgres restarted (fast, then crash) under a running worker: it survives, every delivery arrives and succeeds",
  async (t) => {
    // Per webhook-id: how many times it arrived.
    const received = new Map<string, number>();
    const receiver = t.receiver(async (request) => {
      const id = request.headers.get("webhook-id") ?? "(none)";
      received.set(id, (received.get(id) ?? 0) + 1);
      await sleep(20, t.ending);
      return new Response("ok");
    });
    const company = await t.company();
    const hook = await t.webhook(company, `${receiver.origin}/hook`);
    // The test's own client across the outages: postgres.js waits up to 20 s between
    // reconnects by default (see below), far longer than the test needs to wait.
    const db = postgres(cluster.url, { max: 2, backoff: () => 0.1, onnotice: () => {} });

    // Slow on purpose (2 requests at a time, 10 per batch: ~100 a second) so each outage
    // lands in the middle of the work, with a batch in flight.
    await t.settings({ endpoint_concurrency: 2 });
    const worker = await t.dispatcher({
      allowedTargets: [receiver.target],
      env: { WEBHOOK_BATCH_SIZE: "10" },
    });
    let workerExited = false;
    worker.exited.then(() => (workerExited = true));
    const errorsLogged = () => worker.output().match(LOG_ERROR)?.length ?? 0;

    try {
      /** Stops the server once `afterRequests` requests arrived, keeps it down until the worker
       * has failed to reach it, and starts it again. Returns how many deliveries had arrived.
       * Short outages: every failed connect makes postgres.js wait longer before the next. */
      const outage = async (mode: "fast" | "immediate", afterRequests: number) => {
        await waitFor(`${afterRequests} requests`, () => receiver.requests.length >= afterRequests, {
          timeoutMs: 15_000,
        });
        const before = errorsLogged();
        await cluster.stop(mode);
        const arrivedWhileUp = received.size;
        await waitFor(`the worker to log a failed attempt (${mode} shutdown)`, () => errorsLogged() > before, {
          timeoutMs: 10_000,
        });
        await cluster.start();
        return arrivedWhileUp;
      };

      // 150 events, then the first outage a third of the way through.
      await enqueueEvents(db, company, 150);
      const firstStop = await outage("fast", 50);
      assert.ok(firstStop < 150, "all 150 had arrived when the server went down: nothing was pending");

      // 100 more, committed after the restart; a crash once the worker is back at work.
      await enqueueEvents(db, company, 100);
      const secondStop = await outage("immediate", receiver.requests.length + 40);
      assert.ok(secondStop < 250, "all 250 had arrived when the server crashed: nothing was pending");

      // Batches whose results were lost come back when their lease (8 s) runs out.
      const delivered = await waitFor("all 250 deliveries to succeed", async () => {
        const rows = await deliveriesOf(db, hook);
        return rows.length === 250 && rows.every((d) => d.state === "succeeded") ? rows : null;
      }, { timeoutMs: 40_000, intervalMs: 100 });

      // The same process did all of it: it logged the outages and kept going.
      assert.equal(workerExited, false, "the worker exited");
      assert.ok(errorsLogged() >= 2, "the worker did not log its failed attempts");

      // Every delivery arrived at least once; more than once only when it was claimed again
      // (its first result lost with the server), and never more often than it was claimed.
      const rows = await db<{ id: string; attempt_count: number; succeeded: number }[]>`
        select d.id, d.attempt_count,
               (select count(*)::int from public.webhook_delivery_attempts a
                 where a.delivery_id = d.id and a.outcome = 'succeeded') as succeeded
          from public.webhook_deliveries d
         where d.webhook_id = ${hook}`;
      assert.deepEqual(new Set(received.keys()), new Set(delivered.map((d) => d.id)));
      for (const d of rows) {
        const n = received.get(d.id) ?? 0;
        assert.ok(n >= 1 && n <= d.attempt_count, `delivery ${d.id} arrived ${n} times in ${d.attempt_count} claims`);
        assert.ok(d.succeeded >= 1, `delivery ${d.id} has no succeeded attempt on record`);
      }

      // Its LISTEN comes back too (once postgres.js reconnects it), and a commit wakes it
      // again. With nothing due it polls only every 5 s. Twice, so as not to be lucky: the
      // second commit comes 0.5 s after the first one's delivery, when the worker has just
      // gone idle, so a poll would find it ~4.5 s later and a NOTIFY within milliseconds.
      // The bound sits between the two, far from both, so a loaded machine does not fail it.
      await waitFor("the worker to LISTEN again", async () => {
        const [{ n }] = await db`
          select count(*)::int as n from pg_stat_activity
           where application_name = 'webhook-dispatcher' and query ilike 'listen%'`;
        return n === 1;
      }, { timeoutMs: 30_000, intervalMs: 100 });
      for (let i = 0; i < 2; i++) {
        await sleep(500);
        const before = receiver.requests.length;
        await enqueueEvents(db, company, 1);
        const committed = Date.now();
        await waitFor("the new delivery", () => receiver.requests.length > before, { timeoutMs: 8_000 });
        const latency = Date.now() - committed;
        assert.ok(
          latency < 3_000,
          `a commit after the restarts took ${latency} ms to arrive: no NOTIFY woke the worker`,
        );
      }
      assert.equal(workerExited, false, "the worker exited");
    } finally {
      await db.end({ timeout: 5 });
    }
  },
  {
    async database() {
      cluster = await createCluster();
      return cluster;
    },
  },
);

e2eTest(
  "Postgres down when the worker starts: it keeps trying, and delivers once the server is up",
  async (t) => {
    const receiver = t.receiver();
    const company = await t.company();
    const hook = await t.webhook(company, `${receiver.origin}/hook`);
    await cluster.stop("fast");

    const worker = await t.dispatcher({ allowedTargets: [receiver.target] });
    let workerExited = false;
    worker.exited.then(() => (workerExited = true));
    await waitFor(
      "the worker to log, twice, that it cannot reach the database",
      () => (worker.output().match(LOG_ERROR)?.length ?? 0) >= 2,
      { timeoutMs: 15_000 },
    );
    assert.equal(workerExited, false, "the worker exited instead of waiting for the database");

    await cluster.start();
    const db = postgres(cluster.url, { max: 1, onnotice: () => {} });
    try {
      await enqueueEvents(db, company, 3);
      await waitFor("the 3 deliveries to succeed", async () => {
        const rows = await deliveriesOf(db, hook);
        return rows.length === 3 && rows.every((d) => d.state === "succeeded");
      }, { timeoutMs: 30_000, intervalMs: 100 });
      assert.equal(receiver.requests.length, 3);
      // And it listens: the LISTEN that failed at start was made once the server was back.
      await waitFor("the worker to LISTEN", async () => {
        const [{ n }] = await db`
          select count(*)::int as n from pg_stat_activity
           where application_name = 'webhook-dispatcher' and query ilike 'listen%'`;
        return n === 1;
      }, { timeoutMs: 15_000, intervalMs: 100 });
      assert.equal(workerExited, false, "the worker exited");
    } finally {
      await db.end({ timeout: 5 });
    }
  },
  {
    async database() {
      cluster = await createCluster();
      return cluster;
    },
  },
);
