// End to end: HTTP mode, the way Supabase runs the function. index.ts without --worker
// listens on PORT; only the service role key may make it drain.
import assert from "node:assert/strict";
import {
  createProcess,
  deliveriesOf,
  e2eTest,
  reviseProcess,
  sleep,
  verifySignature,
  webhookSecret,
} from "../_test/e2e.ts";

e2eTest(
  "HTTP mode: 401 without the service key (nothing echoed, nothing sent); with it, drains and counts",
  async (t) => {
    const receiver = t.receiver();
    const company = await t.company();
    const hook = await t.webhook(company, `${receiver.origin}/hook`);
    const processId = await createProcess(t.sql, company, "Soldering");
    for (const name of ["Soldering v2", "Soldering v3", "Soldering v4"]) await reviseProcess(t.sql, processId, name);

    const serviceKey = `e2e-service-key-${crypto.randomUUID()}`;
    const fn = await t.dispatcher({
      mode: "http",
      allowedTargets: [receiver.target],
      env: { SUPABASE_SERVICE_ROLE_KEY: serviceKey },
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

    // A second wake-up finds nothing of ours to send again.
    const again = await fetch(fn.origin, { method: "POST", headers: { authorization: `Bearer ${serviceKey}` } });
    assert.equal(again.status, 200);
    await again.body?.cancel();
    assert.equal(receiver.requests.length, 3);
  },
);
