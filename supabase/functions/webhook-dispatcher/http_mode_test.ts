// End to end: HTTP mode, the way Supabase runs the function. index.ts without --worker
// listens on PORT; only a configured key (README "Dispatcher configuration") makes it drain,
// and without one it refuses everything, also where Deno.exit does nothing.
import assert from "node:assert/strict";
import {
  createProcess,
  deliveriesOf,
  e2eTest,
  enqueueEvents,
  reviseProcess,
  settledDeliveries,
  sleep,
  verifySignature,
  waitFor,
  webhookSecret,
} from "../_test/e2e.ts";
import { gate } from "../_test/receiver.ts";

e2eTest(
  "HTTP mode: 401 without a configured key (nothing echoed, nothing sent); a new secret key drains and counts, the legacy key too",
  async (t) => {
    const receiver = t.receiver();
    const company = await t.company();
    const hook = await t.webhook(company, `${receiver.origin}/hook`);
    const processId = await createProcess(t.sql, company, "Soldering");
    for (const name of ["Soldering v2", "Soldering v3", "Soldering v4"]) await reviseProcess(t.sql, processId, name);

    // As Supabase gives them to functions: the new keys as JSON, the legacy one alone.
    const serviceKey = `sb_secret_${crypto.randomUUID()}`;
    const legacyKey = `e2e-legacy-service-role-key-${crypto.randomUUID()}`;
    const fn = await t.dispatcher({
      mode: "http",
      allowedTargets: [receiver.target],
      env: { SUPABASE_SECRET_KEYS: JSON.stringify({ default: serviceKey }), SUPABASE_SERVICE_ROLE_KEY: legacyKey },
    });

    // A marker in every part of the request a careless handler could reflect.
    const marker = `marker-${crypto.randomUUID()}`;
    const refused: [string, Record<string, string>][] = [
      ["no bearer", {}],
      ["a wrong bearer", { authorization: `Bearer ${marker}` }],
      ["the key with a prefix", { authorization: `Bearer x${serviceKey}` }],
      ["the key, not as a bearer", { authorization: `Basic ${serviceKey}` }],
      ["the key as apikey only", { apikey: serviceKey }],
    ];
    for (const [what, headers] of refused) {
      const response = await fetch(`${fn.origin}/?probe=${marker}`, {
        method: "POST",
        headers: { ...headers, "content-type": "application/json", "x-probe": marker },
        body: JSON.stringify({ reason: marker }),
      });
      const text = await response.text();
      assert.equal(response.status, 401, what);
      assert.deepEqual(JSON.parse(text), { error: "unauthorized" }, what);
      assert.ok(!text.includes(marker), `${what}: the 401 echoes the request`);
    }

    // Authorized, but not a POST: nothing happens either.
    const get = await fetch(fn.origin, { headers: { authorization: `Bearer ${serviceKey}` } });
    assert.equal(get.status, 405);
    await get.body?.cancel();

    // HTTP mode only sends when asked.
    await sleep(300);
    assert.equal(receiver.requests.length, 0);
    assert.deepEqual((await deliveriesOf(t.sql, hook)).map((d) => d.state), ["pending", "pending", "pending"]);

    const response = await fetch(fn.origin, {
      method: "POST",
      headers: { authorization: `Bearer ${serviceKey}`, "content-type": "application/json" },
      body: JSON.stringify({ reason: "deliveries" }),
    });
    assert.equal(response.status, 200);
    const counts = await response.json();
    // Other companies' due work may be drained too: at least ours.
    assert.ok(counts.claimed >= 3 && counts.succeeded >= 3, JSON.stringify(counts));
    assert.equal(
      counts.claimed,
      counts.succeeded + counts.retried + counts.failed + counts.blocked + counts.released,
      JSON.stringify(counts),
    );
    assert.equal(typeof counts.duration_ms, "number");

    // Delivered before the response came back.
    const delivered = await deliveriesOf(t.sql, hook);
    assert.deepEqual(delivered.map((d) => [d.state, d.attempt_count]), [
      ["succeeded", 1],
      ["succeeded", 1],
      ["succeeded", 1],
    ]);
    assert.equal(receiver.requests.length, 3);
    assert.deepEqual(new Set(receiver.webhookIds()), new Set(delivered.map((d) => d.id)));
    const secret = await webhookSecret(t.sql, hook);
    for (const r of receiver.requests) verifySignature(secret, r);

    // A second wake-up, with the legacy key, finds nothing of ours to send again.
    const again = await fetch(fn.origin, { method: "POST", headers: { authorization: `Bearer ${legacyKey}` } });
    assert.equal(again.status, 200);
    await again.body?.cancel();
    assert.equal(receiver.requests.length, 3);
  },
);

e2eTest(
  "HTTP mode without a usable key, where Deno.exit does nothing: every request refused, the reason logged once",
  async (t) => {
    const receiver = t.receiver();
    const company = await t.company();
    const hook = await t.webhook(company, `${receiver.origin}/hook`);
    const processId = await createProcess(t.sql, company, "Potting");
    await reviseProcess(t.sql, processId, "Potting, 2 parts");

    for (
      const [what, env] of [
        ["no key", {}],
        ["an empty key", { SUPABASE_SERVICE_ROLE_KEY: "", SUPABASE_SECRET_KEYS: "" }],
        ["unreadable secret keys", { SUPABASE_SECRET_KEYS: '{"default":' }],
      ] as [string, Record<string, string>][]
    ) {
      const fn = await t.dispatcher({ mode: "http", allowedTargets: [receiver.target], env, edgeRuntime: true });
      for (const authorization of [undefined, "Bearer ", "Bearer undefined", `Bearer ${'{"default":'}`]) {
        const response = await fetch(fn.origin, {
          method: "POST",
          headers: authorization === undefined ? {} : { authorization },
        });
        assert.equal(response.status, 503, `${what}, ${authorization}`);
        assert.deepEqual(await response.json(), {
          error: "the dispatcher's configuration is invalid; its log says why",
        });
      }
      const output = fn.output();
      assert.match(output, /Deno\.exit\(2\) ignored/, what);
      assert.equal(output.match(/invalid dispatcher configuration:/g)?.length, 1, `${what}: logged once\n${output}`);
      assert.match(
        output,
        what === "unreadable secret keys" ? /- SUPABASE_SECRET_KEYS must be/ : /- HTTP mode needs a key/,
      );
      await fn.stop();
    }
    assert.equal(receiver.requests.length, 0);
    assert.deepEqual((await deliveriesOf(t.sql, hook)).map((d) => [d.state, d.attempt_count]), [["pending", 0]]);
  },
);

e2eTest(
  "HTTP mode with EdgeRuntime.waitUntil: a wake-up is answered 202 at once, and the drain delivers after",
  async (t) => {
    const release = gate();
    const receiver = t.receiver(async () => {
      await Promise.race([release.opened, sleep(10_000, t.ending)]);
      return new Response("ok");
    });
    const company = await t.company();
    const hook = await t.webhook(company, `${receiver.origin}/hook`);
    const processId = await createProcess(t.sql, company, "Conformal coating");
    await reviseProcess(t.sql, processId, "Conformal coating, spray");

    const key = `sb_secret_${crypto.randomUUID()}`;
    const fn = await t.dispatcher({
      mode: "http",
      allowedTargets: [receiver.target],
      env: { SUPABASE_SECRET_KEYS: JSON.stringify({ default: key }) },
      edgeRuntime: true,
    });
    const response = await fetch(fn.origin, { method: "POST", headers: { authorization: `Bearer ${key}` } });
    assert.equal(response.status, 202);
    assert.deepEqual(await response.json(), { accepted: true });
    // The receiver is still holding the request the drain sent: the answer did not wait for it.
    await waitFor("the delivery to reach the receiver", () => receiver.requests.length === 1);
    assert.deepEqual((await deliveriesOf(t.sql, hook)).map((d) => d.state), ["pending"]);
    release.open();
    const [delivery] = await settledDeliveries(t.sql, hook);
    assert.equal(delivery.state, "succeeded");
  },
);

e2eTest(
  "HTTP mode in a plain Deno process: SIGTERM lets the running drain finish and record its attempt, then exit 0",
  async (t) => {
    const sigtermTaken = gate();
    const receiver = t.receiver(async () => {
      await Promise.race([sigtermTaken.opened, sleep(60_000, t.ending)]);
      return new Response("ok");
    });
    const company = await t.company();
    const hook = await t.webhook(company, `${receiver.origin}/hook`);
    const processId = await createProcess(t.sql, company, "Potting");
    await reviseProcess(t.sql, processId, "Potting v2");

    const token = `e2e-dispatcher-token-${crypto.randomUUID()}`;
    const fn = await t.dispatcher({
      mode: "http",
      allowedTargets: [receiver.target],
      env: { WEBHOOK_DISPATCHER_TOKEN: token },
    });
    const wakeUp = fetch(fn.origin, { method: "POST", headers: { authorization: `Bearer ${token}` } });
    await waitFor("the attempt to reach the receiver", () => receiver.requests.length === 1);

    fn.kill("SIGTERM");
    await waitFor("the function to take the SIGTERM", () => /stopping: finishing in-flight attempts/.test(fn.output()));
    sigtermTaken.open();
    const answer = await wakeUp;
    assert.equal(answer.status, 200, "the wake-up in progress is answered");
    assert.equal((await answer.json()).succeeded, 1);
    const status = await fn.exited;
    assert.equal(status.code, 0, `exit status ${JSON.stringify(status)}\n${fn.output()}`);
    assert.match(fn.output(), /stopped/);

    const [delivery] = await deliveriesOf(t.sql, hook);
    assert.equal(delivery.state, "succeeded", "the attempt in flight was recorded before the exit");
    assert.equal(delivery.lease_owner, null);
  },
);

e2eTest(
  "HTTP mode: one wake-up finishes a large cancellation a disable left to the claims, not a chunk of it",
  async (t) => {
    // cancel_batch_size 100: the disable cancels 100 of 3,000 and leaves 2,900 to the
    // claims, a chunk each (20261130140000). Such a claim returns nothing, so a drain that
    // stopped at the first empty claim did two chunks per wake-up, one wake-up a minute on
    // Supabase (the cron): 200,000 would have taken hours.
    await t.settings({ cancel_batch_size: 100 });
    const receiver = t.receiver();
    const company = await t.company();
    const hook = await t.webhook(company, `${receiver.origin}/hook`);
    await enqueueEvents(t.sql, company, 3_000);
    await t.sql`update public.webhooks set is_active = false where id = ${hook}`;
    assert.equal((await deliveriesOf(t.sql, hook)).filter((d) => d.state === "pending").length, 2_900);

    const key = `sb_secret_${crypto.randomUUID()}`;
    const fn = await t.dispatcher({
      mode: "http",
      allowedTargets: [receiver.target],
      env: { SUPABASE_SECRET_KEYS: JSON.stringify({ default: key }) },
    });
    const response = await fetch(fn.origin, { method: "POST", headers: { authorization: `Bearer ${key}` } });
    assert.equal(response.status, 200);
    await response.body?.cancel();

    const states = (await deliveriesOf(t.sql, hook)).map((d) => d.state);
    assert.equal(states.filter((s) => s === "cancelled").length, 3_000, "all cancelled by the one drain");
    assert.equal((await t.sql`select count(*)::int as n from private.webhook_cancellations`)[0].n, 0);
    assert.equal(receiver.requests.length, 0, "and none sent");
  },
);

/**
 * The drain sends company A's delivery, whose receiver hangs, and waits on it. Company B then
 * commits, and pg_net's wake-up reaches the same worker: it used to queue behind the running
 * drain, so B's delivery waited until A's request ended (the 15 s timeout). `env` sets the
 * dispatcher's knobs beyond the deployment's default timeout and lease.
 */
async function newWorkBesideAHangingRequest(t: Parameters<Parameters<typeof e2eTest>[1]>[0], env: Record<string, string>) {
  const release = gate();
  const hanging = t.receiver(async () => {
    await Promise.race([release.opened, sleep(15_000, t.ending)]);
    return new Response("ok");
  });
  const healthy = t.receiver();
  const companyA = await t.company();
  const companyB = await t.company();
  await t.webhook(companyA, `${hanging.origin}/hook`);
  const hookB = await t.webhook(companyB, `${healthy.origin}/hook`);

  const key = `sb_secret_${crypto.randomUUID()}`;
  const fn = await t.dispatcher({
    mode: "http",
    allowedTargets: [hanging.target, healthy.target],
    // The deployment's default request timeout and lease (the tests' 2 s would end the hang early).
    env: { SUPABASE_SECRET_KEYS: JSON.stringify({ default: key }), WEBHOOK_TIMEOUT_MS: "15000", WEBHOOK_LEASE_SECONDS: "30", ...env },
    edgeRuntime: true,
  });
  const wakeUp = async () => {
    const response = await fetch(fn.origin, { method: "POST", headers: { authorization: `Bearer ${key}` } });
    assert.equal(response.status, 202);
    await response.body?.cancel();
  };

  const processA = await createProcess(t.sql, companyA, "Wave soldering");
  await reviseProcess(t.sql, processA, "Wave soldering, lead-free");
  await wakeUp();
  await waitFor("A's delivery to reach its receiver", () => hanging.requests.length === 1);
  // Past the drain's short busy look (250 ms): it now waits for A's request to end.
  await sleep(500);

  const processB = await createProcess(t.sql, companyB, "Reflow");
  await reviseProcess(t.sql, processB, "Reflow, nitrogen");
  const committed = performance.now();
  await wakeUp();
  await waitFor("B's delivery to succeed", async () => {
    const deliveries = await deliveriesOf(t.sql, hookB);
    return deliveries.length > 0 && deliveries.every((d) => d.state === "succeeded");
  }, { timeoutMs: 5_000 });
  const tookMs = performance.now() - committed;
  assert.ok(tookMs < 1_000, `B's delivery took ${Math.round(tookMs)} ms while A's request hung`);
  assert.equal(hanging.requests.length, 1, "A's request is still the one in flight");
  release.open();
}

e2eTest(
  "HTTP mode: a request hanging at one tenant's endpoint does not hold back another tenant's new delivery; its wake-up is taken by the running drain at once",
  (t) => newWorkBesideAHangingRequest(t, {}),
);

e2eTest(
  "HTTP mode: nor when the running drain has claimed all a wake-up may (WEBHOOK_HTTP_MAX_DELIVERIES): the next wake-up extends it",
  // One delivery per wake-up: the drain that sent A's may claim nothing more.
  (t) => newWorkBesideAHangingRequest(t, { WEBHOOK_HTTP_MAX_DELIVERIES: "1" }),
);
