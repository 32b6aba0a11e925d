// End to end: one tenant's broken endpoints never slow another tenant. Real dispatcher
// processes, real receivers, the real database; every scenario holds its broken receivers
// open until the healthy tenant's deliveries have arrived, so "arrived while the neighbour
// was still hanging" is what is asserted, not a wall-clock figure (those are in npm run bench).
import assert from "node:assert/strict";
import postgres from "postgres";
import {
  attemptsOf,
  createProcess,
  deliveriesOf,
  e2eTest,
  enqueueEvents,
  reviseProcess,
  settledDeliveries,
  sleep,
  waitFor,
} from "../_test/e2e.ts";
import { gate } from "../_test/receiver.ts";

/** Resolves true when `condition` opens within `ms`, false otherwise (never hangs a test). */
async function within(ms: number, condition: Promise<void>): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  const result = await Promise.race([condition.then(() => true), late]);
  clearTimeout(timer);
  return result;
}

/** A receiver that holds every request until `released` opens (or the test ends). */
function hanging(t: Parameters<Parameters<typeof e2eTest>[1]>[0], released: Promise<void>) {
  return t.receiver(async () => {
    await Promise.race([released, sleep(120_000, t.ending)]);
    return new Response("late");
  });
}

e2eTest("a request hanging at one tenant does not delay another tenant's deliveries", async (t) => {
  const release = gate();
  const stuck = hanging(t, release.opened);
  const healthyDone = gate();
  const healthy = t.receiver(() => {
    if (healthy.requests.length === 20) healthyDone.open();
    return new Response("ok");
  });
  const slowCompany = await t.company();
  await t.webhook(slowCompany, `${stuck.origin}/erp`);
  const company = await t.company();
  await t.webhook(company, `${healthy.origin}/mes`);
  await t.dispatcher({
    allowedTargets: [stuck.target, healthy.target],
    env: { WEBHOOK_TIMEOUT_MS: "30000", WEBHOOK_LEASE_SECONDS: "60" },
  });

  const slowProcess = await createProcess(t.sql, slowCompany, "Anodizing");
  await reviseProcess(t.sql, slowProcess, "Anodizing v2");
  await waitFor("the slow tenant's request to be in flight", () => stuck.requests.length === 1);

  // Twenty revisions, each its own transaction, while that request hangs.
  const process = await createProcess(t.sql, company, "Final assembly");
  for (let i = 2; i <= 21; i++) await reviseProcess(t.sql, process, `Final assembly v${i}`);

  // The hanging request cannot end before `release` (its timeout is 30 s): whatever
  // arrives before that arrived while it hung.
  const arrived = await within(10_000, healthyDone.opened);
  release.open();
  assert.equal(arrived, true, `only ${healthy.requests.length} of 20 arrived while the other tenant's request hung`);
});

e2eTest("twenty dead endpoints and a slow one at one tenant: another tenant's 100 deliveries all arrive", async (t) => {
  const release = gate();
  const dead = hanging(t, release.opened);
  const slow = t.receiver(async () => {
    await sleep(3_000, t.ending);
    return new Response("slow");
  });
  const healthyDone = gate();
  const healthy = t.receiver(() => {
    if (healthy.requests.length === 100) healthyDone.open();
    return new Response("ok");
  });
  const neighbour = await t.company();
  for (let i = 0; i < 20; i++) await t.webhook(neighbour, `${dead.origin}/dead-${i}`);
  await t.webhook(neighbour, `${slow.origin}/slow`);
  const company = await t.company();
  await t.webhook(company, `${healthy.origin}/mes`);
  await t.dispatcher({
    allowedTargets: [dead.target, slow.target, healthy.target],
    env: { WEBHOOK_TIMEOUT_MS: "30000", WEBHOOK_LEASE_SECONDS: "60" },
  });

  // 20 revisions to every neighbour endpoint: 420 deliveries, 200 of them to hang at once
  // (20 endpoints x the 10 an endpoint starts with: one that never answers earns no more)
  // and the rest queued behind them.
  const neighbourProcess = await createProcess(t.sql, neighbour, "Plating");
  for (let i = 2; i <= 21; i++) await reviseProcess(t.sql, neighbourProcess, `Plating v${i}`);
  await waitFor("the dead endpoints to hold 200 requests", () => dead.requests.length >= 200, { timeoutMs: 15_000 });

  const process = await createProcess(t.sql, company, "Inspection");
  for (let i = 2; i <= 101; i++) await reviseProcess(t.sql, process, `Inspection v${i}`);

  const arrived = await within(15_000, healthyDone.opened);
  const deadStillHanging = dead.requests.length;
  release.open();
  assert.equal(arrived, true, `only ${healthy.requests.length} of 100 arrived beside the dead endpoints`);
  assert.equal(deadStillHanging, 200, "the dead endpoints never got more than the start, and still hung meanwhile");
});

e2eTest("a company's many dead endpoints hold no more than its share of a dispatcher's sockets: another tenant's deliveries all arrive", async (t) => {
  // Six endpoints that never answer would hold 60 requests (10 each, the start), more than
  // this dispatcher's 40 sockets: until 20261204090000 they held all 40 for a whole timeout,
  // and nobody else was sent anything. The company's share (company_concurrency, 15 here)
  // bounds its endpoints together.
  const release = gate();
  const dead = hanging(t, release.opened);
  const healthyDone = gate();
  const healthy = t.receiver(() => {
    if (healthy.requests.length === 20) healthyDone.open();
    return new Response("ok");
  });
  const neighbour = await t.company();
  for (let i = 0; i < 6; i++) await t.webhook(neighbour, `${dead.origin}/dead-${i}`);
  const company = await t.company();
  await t.webhook(company, `${healthy.origin}/mes`);
  await t.settings({ company_concurrency: 15 });
  await t.dispatcher({
    allowedTargets: [dead.target, healthy.target],
    env: { WEBHOOK_CONCURRENCY: "40", WEBHOOK_TIMEOUT_MS: "30000", WEBHOOK_LEASE_SECONDS: "60" },
  });

  // 10 revisions to each dead endpoint: 60 deliveries.
  const neighbourProcess = await createProcess(t.sql, neighbour, "Plating");
  for (let i = 2; i <= 11; i++) await reviseProcess(t.sql, neighbourProcess, `Plating v${i}`);
  await waitFor("the dead endpoints to hold the company's 15", () => dead.requests.length >= 15, { timeoutMs: 15_000 });

  const process = await createProcess(t.sql, company, "Inspection");
  for (let i = 2; i <= 21; i++) await reviseProcess(t.sql, process, `Inspection v${i}`);

  const arrived = await within(10_000, healthyDone.opened);
  const deadHolding = dead.requests.length;
  release.open();
  assert.equal(arrived, true, `only ${healthy.requests.length} of 20 arrived beside the dead endpoints`);
  assert.equal(deadHolding, 15, "the dead endpoints never held more than the company's share");
});

e2eTest("endpoints that answer slowly but always hold every socket of a dispatcher: another tenant's delivery takes the next freed slot, not the end of their backlog", async (t) => {
  // Slow successes earn concurrency, so one tenant's slow endpoints with a backlog fill a
  // dispatcher's sockets (WEBHOOK_CONCURRENCY, 8 here). Slots then free one at a time and
  // each claim asks for as many endpoints as slots freed: the longest waiting. A record used
  // to make a backlogged endpoint ready again from its oldest delivery, the front of the line,
  // so every freed slot went back to that tenant until its backlog had drained (20261201090400).
  let answered = 0;
  let seen = 0;
  const slow = t.receiver(async () => {
    // 300 to 900 ms, staggered: the slots free one by one.
    await sleep(300 + (seen++ % 7) * 100, t.ending);
    answered++;
    return new Response("ok");
  });
  const arrivedGate = gate();
  const healthy = t.receiver(() => {
    arrivedGate.open();
    return new Response("ok");
  });
  const neighbour = await t.company();
  for (let i = 0; i < 4; i++) await t.webhook(neighbour, `${slow.origin}/slow-${i}`);
  const company = await t.company();
  await t.webhook(company, `${healthy.origin}/mes`);
  await t.dispatcher({ allowedTargets: [slow.target, healthy.target], env: { WEBHOOK_CONCURRENCY: "8" } });

  // 160 deliveries (40 events to 4 endpoints): about 12 s of the slow tenant's work.
  await enqueueEvents(t.sql, neighbour, 40);
  await waitFor("the slow tenant to hold every socket", () => slow.requests.length >= 8);
  await sleep(1_000);

  const process = await createProcess(t.sql, company, "Inspection");
  await reviseProcess(t.sql, process, "Inspection v2");
  // Measured here: about 0.2 s; 4.3 s before (once 68 of the 160 had been answered).
  const arrived = await within(2_000, arrivedGate.opened);
  assert.equal(arrived, true, `the other tenant's delivery waited over 2 s (${answered} of the slow tenant's 160 answered meanwhile)`);
});

e2eTest("two dispatchers together never exceed an endpoint's cap", async (t) => {
  let inFlight = 0;
  let most = 0;
  const receiver = t.receiver(async () => {
    most = Math.max(most, ++inFlight);
    await sleep(30, t.ending);
    inFlight--;
    return new Response("ok");
  });
  const company = await t.company();
  const hook = await t.webhook(company, `${receiver.origin}/hook`);
  await t.settings({ endpoint_concurrency: 3 });
  // Each worker alone could send 10 at once: the cap is the database's, across both.
  const env = { WEBHOOK_CONCURRENCY: "10" };
  await Promise.all([
    t.dispatcher({ allowedTargets: [receiver.target], env }),
    t.dispatcher({ allowedTargets: [receiver.target], env }),
  ]);
  const process = await createProcess(t.sql, company, "Welding");
  await t.sql.begin(async (tx) => {
    for (let i = 2; i <= 61; i++) await tx`update public.processes set name = ${`Welding v${i}`} where id = ${process}`;
  });
  await waitFor("60 deliveries to succeed", async () => {
    const rows = await deliveriesOf(t.sql, hook);
    return rows.length === 60 && rows.every((d) => d.state === "succeeded");
  }, { timeoutMs: 30_000 });
  assert.equal(most, 3, "3 requests at most at once, and the cap was reached");
  assert.equal(receiver.requests.length, 60);
});

e2eTest("an ADMIN's cap on their endpoint holds across two dispatchers, and binds no other tenant", async (t) => {
  /** A receiver that counts the requests it holds at once (each for 30 ms). */
  const counting = () => {
    const seen = { inFlight: 0, most: 0 };
    const receiver = t.receiver(async () => {
      seen.most = Math.max(seen.most, ++seen.inFlight);
      await sleep(30, t.ending);
      seen.inFlight--;
      return new Response("ok");
    });
    return { receiver, seen };
  };
  const erp = counting();
  const mes = counting();
  const fragile = await t.company();
  const erpHook = await t.webhook(fragile, `${erp.receiver.origin}/erp`);
  await t.sql`update public.webhooks set max_concurrent_requests = 2 where id = ${erpHook}`;
  const neighbour = await t.company();
  const mesHook = await t.webhook(neighbour, `${mes.receiver.origin}/mes`);
  // Each worker alone could send 10 at once to each: the caps are the database's.
  const env = { WEBHOOK_CONCURRENCY: "10" };
  const targets = [erp.receiver.target, mes.receiver.target];
  await Promise.all([t.dispatcher({ allowedTargets: targets, env }), t.dispatcher({ allowedTargets: targets, env })]);

  for (const company of [fragile, neighbour]) {
    const process = await createProcess(t.sql, company, "Welding");
    await t.sql.begin(async (tx) => {
      for (let i = 2; i <= 41; i++) await tx`update public.processes set name = ${`Welding v${i}`} where id = ${process}`;
    });
  }
  await waitFor("80 deliveries to succeed", async () => {
    const rows = [...(await deliveriesOf(t.sql, erpHook)), ...(await deliveriesOf(t.sql, mesHook))];
    return rows.length === 80 && rows.every((d) => d.state === "succeeded");
  }, { timeoutMs: 30_000 });
  assert.equal(erp.seen.most, 2, "the capped endpoint had 2 requests at most at once, and reached them");
  assert.ok(mes.seen.most > 2, `the other tenant's endpoint is not held to it (most at once: ${mes.seen.most})`);
  assert.equal(erp.receiver.requests.length + mes.receiver.requests.length, 80);
});

e2eTest("an ADMIN's rate on their endpoint holds across two dispatchers, and slows no other tenant", async (t) => {
  const arrivals: number[] = [];
  const erp = t.receiver(() => {
    arrivals.push(performance.now());
    return new Response("ok");
  });
  const mes = t.receiver(() => new Response("ok"));
  const limited = await t.company();
  const erpHook = await t.webhook(limited, `${erp.origin}/erp`);
  await t.sql`update public.webhooks set max_requests_per_second = 20 where id = ${erpHook}`;
  const neighbour = await t.company();
  await t.webhook(neighbour, `${mes.origin}/mes`);
  const targets = [erp.target, mes.target];
  await Promise.all([t.dispatcher({ allowedTargets: targets }), t.dispatcher({ allowedTargets: targets })]);

  const started = performance.now();
  for (const company of [limited, neighbour]) {
    const process = await createProcess(t.sql, company, "Painting");
    await t.sql.begin(async (tx) => {
      for (let i = 2; i <= 41; i++) await tx`update public.processes set name = ${`Painting v${i}`} where id = ${process}`;
    });
  }
  await waitFor("the neighbour's 40 deliveries", () => mes.requests.length === 40, { timeoutMs: 10_000 });
  const neighbourMs = performance.now() - started;
  await waitFor("the limited endpoint's 40 deliveries", () => arrivals.length === 40, { timeoutMs: 15_000 });

  // 40 at 20 a second, from a bucket of 2: about 1.9 s, however many dispatchers claim.
  const spanMs = arrivals[39]! - arrivals[0]!;
  assert.ok(spanMs >= 1_700, `40 requests at 20 a second took ${Math.round(spanMs)} ms`);
  const busiestSecond = Math.max(...arrivals.map((a) => arrivals.filter((b) => b >= a && b < a + 1_000).length));
  assert.ok(busiestSecond <= 22, `no second sees more than 20 and a tenth: the busiest saw ${busiestSecond}`);
  assert.ok(neighbourMs < spanMs, `the other tenant's 40 (${Math.round(neighbourMs)} ms) did not wait for the limited endpoint`);
});

e2eTest("an endpoint earns its concurrency: from the start up to the cap, and back at a sign of trouble", async (t) => {
  let inFlight = 0;
  let most = 0;
  let answered = 0;
  let mostBeforeAnAnswer = 0;
  let trouble = false;
  const receiver = t.receiver(async () => {
    most = Math.max(most, ++inFlight);
    if (answered === 0) mostBeforeAnAnswer = Math.max(mostBeforeAnAnswer, inFlight);
    await sleep(30, t.ending);
    inFlight--;
    answered++;
    return trouble ? new Response("busy", { status: 503 }) : new Response("ok");
  });
  const company = await t.company();
  const hook = await t.webhook(company, `${receiver.origin}/erp`);
  await t.settings({ endpoint_concurrency: 8, endpoint_concurrency_start: 2, circuit_failure_threshold: 1000 });
  await t.dispatcher({ allowedTargets: [receiver.target] });
  const earned = async () =>
    (await t.sql<{ n: number | null }[]>`
      select concurrency_limit as n from private.webhook_endpoints where webhook_id = ${hook}`)[0].n;

  const process = await createProcess(t.sql, company, "Milling");
  await t.sql.begin(async (tx) => {
    for (let i = 2; i <= 81; i++) await tx`update public.processes set name = ${`Milling v${i}`} where id = ${process}`;
  });
  await waitFor("80 deliveries to succeed", async () => {
    const rows = await deliveriesOf(t.sql, hook);
    return rows.length === 80 && rows.every((d) => d.state === "succeeded");
  }, { timeoutMs: 30_000 });
  assert.equal(mostBeforeAnAnswer, 2, "2 at once until the endpoint had answered: the start");
  assert.equal(most, 8, "then up to the cap of 8, never more");
  assert.equal(await earned(), 8);

  // Now it answers 503: every recorded batch with one halves it, down to the start.
  trouble = true;
  await t.sql.begin(async (tx) => {
    for (let i = 82; i <= 91; i++) await tx`update public.processes set name = ${`Milling v${i}`} where id = ${process}`;
  });
  await waitFor("its concurrency to fall back to the start", async () => (await earned()) === 2, { timeoutMs: 15_000 });
});

e2eTest(
  "circuit breaker: opens after the threshold, probes one at a time, closes, and the backlog is delivered in full",
  async (t) => {
    // Down (503) until `up` opens; counts concurrent requests once the circuit is open.
    let down = true;
    let inFlight = 0;
    let mostWhileOpen = 0;
    let circuitOpen = false;
    const receiver = t.receiver(async () => {
      inFlight++;
      if (circuitOpen) mostWhileOpen = Math.max(mostWhileOpen, inFlight);
      await sleep(20, t.ending);
      inFlight--;
      return down ? new Response("down", { status: 503 }) : new Response("up");
    });
    const company = await t.company();
    const hook = await t.webhook(company, `${receiver.origin}/erp`);
    await t.settings({
      endpoint_concurrency: 5,
      circuit_failure_threshold: 3,
      circuit_probe_min_seconds: 1,
      circuit_probe_max_seconds: 2,
    });
    await t.dispatcher({
      allowedTargets: [receiver.target],
      // Many quick retries: without the circuit each delivery would spend them in seconds.
      env: { WEBHOOK_RETRY_SCHEDULE: Array(20).fill("0.05").join(",") },
    });
    const process = await createProcess(t.sql, company, "Curing");
    await t.sql.begin(async (tx) => {
      for (let i = 2; i <= 21; i++) {
        await tx`update public.processes set name = ${`Curing v${i}`} where id = ${process}`;
      }
    });

    const health = () =>
      t.sql`select * from public.webhook_endpoint_health where webhook_id = ${hook}`.then((r) => r[0]);
    const opened = await waitFor("the circuit to open", async () => {
      const h = await health();
      return h.state === "circuit_open" ? h : null;
    }, { timeoutMs: 10_000 });
    circuitOpen = true;
    assert.ok(opened.consecutive_failures >= 3, `opened after ${opened.consecutive_failures} consecutive failures`);
    assert.ok(opened.failing_since !== null && opened.next_probe_at !== null);
    const requestsAtOpen = receiver.requests.length;

    // Open for ~3.5 s: probes at 1 s, then 2 s (the maximum) apart; nothing else goes.
    await sleep(3_500, t.ending);
    const probes = receiver.requests.length - requestsAtOpen;
    assert.ok(probes >= 1 && probes <= 3, `${probes} requests while open: only probes, growing apart`);
    const attempted = await t.sql<{ n: number }[]>`
    select count(*)::int as n from public.webhook_deliveries where webhook_id = ${hook} and attempt_count > 0`;
    assert.ok(attempted[0].n <= requestsAtOpen + probes, "held deliveries spent no attempts");

    // The window measured is while it was open and down; now it comes back.
    circuitOpen = false;
    down = false;
    await waitFor("all 20 to succeed", async () => {
      const rows = await deliveriesOf(t.sql, hook);
      return rows.length === 20 && rows.every((d) => d.state === "succeeded");
    }, { timeoutMs: 15_000 });
    const closed = await health();
    assert.equal(closed.state, "healthy");
    assert.equal(closed.consecutive_failures, 0);
    assert.equal(closed.failing_since, null);
    assert.equal(mostWhileOpen, 1, "one probe at a time while the circuit was open");
    const [{ attempts }] = await t.sql`
    select count(*)::int as attempts from public.webhook_delivery_attempts a
      join public.webhook_deliveries d on d.id = a.delivery_id where d.webhook_id = ${hook}`;
    assert.equal(attempts, receiver.requests.length, "every request is in the attempt log");
  },
);

e2eTest("a new url is a new receiver: the circuit the old one opened closes, and what it held goes at once", async (t) => {
  const old = t.receiver(() => new Response("down", { status: 503 }));
  const fresh = t.receiver(() => new Response("ok"));
  const company = await t.company();
  const hook = await t.webhook(company, `${old.origin}/erp`);
  // The next probe would be ten minutes away: only the url change can release the backlog.
  await t.settings({ circuit_failure_threshold: 2, circuit_probe_min_seconds: 600, circuit_probe_max_seconds: 600 });
  await t.dispatcher({
    allowedTargets: [old.target, fresh.target],
    env: { WEBHOOK_RETRY_SCHEDULE: Array(20).fill("0.05").join(",") },
  });
  const process = await createProcess(t.sql, company, "Etching");
  await t.sql.begin(async (tx) => {
    for (let i = 2; i <= 11; i++) await tx`update public.processes set name = ${`Etching v${i}`} where id = ${process}`;
  });
  await waitFor("the circuit to open", async () =>
    (await t.sql`select state from public.webhook_endpoint_health where webhook_id = ${hook}`)[0].state === "circuit_open",
    { timeoutMs: 10_000 });
  await sleep(500, t.ending); // the dispatcher has nothing due for ten minutes: it sleeps

  await t.sql`update public.webhooks set url = ${`${fresh.origin}/erp`} where id = ${hook}`;
  // Well inside the sleeping dispatcher's 30 s safety timer: the url change woke it.
  await waitFor("all 10 to reach the new receiver", async () => {
    const rows = await deliveriesOf(t.sql, hook);
    return rows.length === 10 && rows.every((d) => d.state === "succeeded");
  }, { timeoutMs: 5_000 });
  assert.equal(fresh.requests.length, 10);
  const [health] = await t.sql`select state, consecutive_failures from public.webhook_endpoint_health where webhook_id = ${hook}`;
  assert.deepEqual({ ...health }, { state: "healthy", consecutive_failures: 0 });
});

e2eTest("a backend holding one tenant's endpoint row in an open transaction: every other tenant's deliveries flow meanwhile, and the held endpoint's results are recorded once it ends", async (t) => {
  // The held tenant's requests are out when the hold begins, and answer during it: their
  // results reach the database while nobody may lock that endpoint's row (20261203090000).
  const answer = gate();
  let answered = 0;
  const held = t.receiver(async () => {
    await Promise.race([answer.opened, sleep(60_000, t.ending)]);
    answered++;
    return new Response("ok");
  });
  const healthyDone = gate();
  const healthy = t.receiver(() => {
    if (healthy.requests.length === 20) healthyDone.open();
    return new Response("ok");
  });
  const heldCompany = await t.company();
  const heldHook = await t.webhook(heldCompany, `${held.origin}/erp`);
  const company = await t.company();
  await t.webhook(company, `${healthy.origin}/mes`);
  await t.dispatcher({
    allowedTargets: [held.target, healthy.target],
    env: { WEBHOOK_TIMEOUT_MS: "30000", WEBHOOK_LEASE_SECONDS: "60" },
  });
  await enqueueEvents(t.sql, heldCompany, 5);
  await waitFor("the held tenant's 5 requests to be in flight", () => held.requests.length === 5);

  // A backend's change to that endpoint, left open: its trigger holds the endpoint's row.
  const backend = postgres(Deno.env.get("DB_URL")!, { max: 1, onnotice: () => {} });
  try {
    await backend.unsafe("begin");
    await backend`update public.webhooks set max_concurrent_requests = 20 where id = ${heldHook}`;
    answer.open();
    await waitFor("the held endpoint's 5 requests to be answered", () => answered === 5);

    // Another tenant's 20 revisions, each its own transaction, while the row is held.
    const process = await createProcess(t.sql, company, "Final assembly");
    for (let i = 2; i <= 21; i++) await reviseProcess(t.sql, process, `Final assembly v${i}`);
    const arrived = await within(10_000, healthyDone.opened);
    assert.equal(arrived, true, `only ${healthy.requests.length} of 20 arrived while another tenant's endpoint row was held`);
    // The held endpoint's results were kept, not waited on: still in flight while held.
    const kept = await t.sql`select count(*)::int as n from private.webhook_deferred_results where webhook_id = ${heldHook}`;
    assert.equal(kept[0].n, 5, "the held endpoint's results are kept");
    assert.ok((await deliveriesOf(t.sql, heldHook)).every((d) => d.state === "pending"), "still in flight while held");
  } finally {
    await backend.unsafe("commit").catch(() => {});
    await backend.end();
  }

  // Once the backend commits, the next claim records the kept results: each delivered once.
  const rows = await settledDeliveries(t.sql, heldHook, { expected: 5, timeoutMs: 15_000 });
  assert.deepEqual(rows.map((d) => [d.state, d.attempt_count]), Array(5).fill(["succeeded", 1]));
  for (const d of rows) assert.equal((await attemptsOf(t.sql, d.id)).length, 1, "each attempt logged once");
  assert.equal(held.requests.length, 5, "none sent again");
});

e2eTest("an ADMIN disables an endpoint without waiting for 20 writers loading its company", async (t) => {
  const receiver = t.receiver();
  const company = await t.company();
  const hook = await t.webhook(company, `${receiver.origin}/hook`);
  await t.webhook(company, `${receiver.origin}/other`);
  const admin =
    (await t.sql`select tests.create_user(${`admin-${crypto.randomUUID()}@e2e.test`}, ${company}, 'ADMIN') as id`)[0]
      .id;
  await t.dispatcher({ allowedTargets: [receiver.target] });
  const processes: string[] = [];
  for (let i = 0; i < 20; i++) processes.push(await createProcess(t.sql, company, `Line ${i}`));

  // 20 writers, each its own connection, revising as fast as they can until told to stop.
  const stop = new AbortController();
  const writers = processes.map(async (id, i) => {
    const db = postgres(Deno.env.get("DB_URL")!, { max: 1, onnotice: () => {} });
    let n = 0;
    try {
      while (!stop.signal.aborted) await db`update public.processes set name = ${`Line ${i} v${++n}`} where id = ${id}`;
    } finally {
      await db.end();
    }
    return n;
  });
  await waitFor("the writers to be creating deliveries", async () => (await deliveriesOf(t.sql, hook)).length > 100);

  // The ADMIN's disable, through the same path PostgREST takes, refusing to wait more
  // than a second for any lock (it fails with 55P03 if it has to).
  await t.sql.begin(async (tx) => {
    await tx`set local lock_timeout = '1s'`;
    await tx`select tests.authenticate_as(${admin})`;
    await tx`update public.webhooks set is_active = false where id = ${hook}`;
  });
  await sleep(300);
  stop.abort();
  const revisions = (await Promise.all(writers)).reduce((a, b) => a + b, 0);

  // Everything the writers created for it ends cancelled (at the disable, or at the next
  // claim for what committed after it), and nothing stays pending.
  const rows = await waitFor("no pending delivery left for the disabled endpoint", async () => {
    const all = await deliveriesOf(t.sql, hook);
    return all.every((d) => d.state !== "pending") ? all : null;
  }, { timeoutMs: 15_000 });
  assert.ok(rows.some((d) => d.state === "cancelled"), "deliveries created around the disable were cancelled");
  assert.ok(revisions > 100, `the writers kept writing (${revisions} revisions)`);
});

e2eTest("an endpoint that answers 410 with a large backlog: its cancel goes in chunks, another tenant's deliveries flow, every one ends", async (t) => {
  // cancel_batch_size 100: the disable cancels 100 in the dispatcher's own record call,
  // and the dispatcher's claims cancel the other 2,900 or so, 100 at a time (20261130140000).
  await t.settings({ cancel_batch_size: 100 });
  const gone = t.receiver(() => new Response("gone", { status: 410 }));
  const healthyDone = gate();
  const healthy = t.receiver(() => {
    if (healthy.requests.length === 20) healthyDone.open();
    return new Response("ok");
  });
  const retired = await t.company();
  const hook = await t.webhook(retired, `${gone.origin}/retired`);
  await enqueueEvents(t.sql, retired, 3_000);
  const company = await t.company();
  await t.webhook(company, `${healthy.origin}/mes`);
  // A lease with room to start (as the other scenarios here): on a loaded machine the
  // fast settings' one second between claim and send can pass, and the claimed rows are
  // handed back unsent.
  await t.dispatcher({
    allowedTargets: [gone.target, healthy.target],
    env: { WEBHOOK_TIMEOUT_MS: "30000", WEBHOOK_LEASE_SECONDS: "60" },
  });

  await waitFor("the 410 to disable the endpoint", async () =>
    (await t.sql`select is_active from public.webhooks where id = ${hook}`)[0].is_active === false);
  const process = await createProcess(t.sql, company, "Final assembly");
  for (let i = 2; i <= 21; i++) await reviseProcess(t.sql, process, `Final assembly v${i}`);
  assert.equal(await within(10_000, healthyDone.opened), true, `only ${healthy.requests.length} of 20 arrived`);

  // The dispatcher finishes the cancellation by itself, awake or not (next_dispatch_at
  // counts it as work due now; its idle sleep is 30 s, longer than this wait).
  const rows = await waitFor("no pending delivery left for the retired endpoint", async () => {
    const all = await deliveriesOf(t.sql, hook);
    return all.every((d) => d.state !== "pending") ? all : null;
  }, { timeoutMs: 20_000 });
  const failed = rows.filter((d) => d.state === "failed");
  const cancelled = rows.filter((d) => d.state === "cancelled");
  assert.equal(rows.length, 3_000);
  assert.equal(failed.length + cancelled.length, 3_000, "every delivery ended failed (answered 410) or cancelled");
  assert.ok(failed.length >= 1 && failed.length <= 50, `${failed.length} were sent before the 410 disabled the endpoint`);
  assert.equal(gone.requests.length, failed.length, "no cancelled delivery was sent");
  assert.ok(
    cancelled.every((d) => d.last_error === "endpoint disabled: the endpoint answered 410 Gone"),
    "each cancelled one says why",
  );
  assert.equal((await t.sql`select count(*)::int as n from private.webhook_cancellations`)[0].n, 0, "no cancellation is left");
});
