// End to end: the settings' rules (config.ts) as an operator meets them. Settings that
// contradict each other stop the dispatcher at start with every problem listed; settings
// that agree are honoured by both modes, including a timeout longer than a minute.
import assert from "node:assert/strict";
import { createProcess, e2eTest, reviseProcess, settledDeliveries } from "../_test/e2e.ts";

e2eTest("contradicting settings stop the dispatcher at start, exit 2, every problem listed at once", async (t) => {
  // A lease the claim would refuse forever, and a timeout longer than HTTP mode's budget.
  const env = { WEBHOOK_LEASE_SECONDS: "86400", WEBHOOK_TIMEOUT_MS: "120000", SUPABASE_SERVICE_ROLE_KEY: "key" };
  for (const mode of ["http", "worker"] as const) {
    const failure = await t.dispatcher({ mode, allowedTargets: [], env }).then(
      (d) => assert.fail(`the ${mode} dispatcher started:\n${d.output()}`),
      (e: Error) => e.message,
    );
    assert.match(failure, /exited with code 2 before it was ready/);
    assert.match(failure, /invalid dispatcher configuration:/);
    assert.match(failure, /- WEBHOOK_LEASE_SECONDS must be an integer between 1 and 3600, got '86400'/);
    // Only HTTP mode has a per-request budget to check.
    const budget = /- WEBHOOK_HTTP_BUDGET_MS \(100000 ms\) must cover WEBHOOK_TIMEOUT_MS \(120000 ms\)/;
    if (mode === "http") assert.match(failure, budget);
    else assert.doesNotMatch(failure, budget);
  }
});

e2eTest("a timeout longer than a minute is accepted (the lease covers it), and the worker delivers", async (t) => {
  const receiver = t.receiver();
  const company = await t.company();
  const hook = await t.webhook(company, `${receiver.origin}/hook`);
  const processId = await createProcess(t.sql, company, "X-ray inspection");
  await reviseProcess(t.sql, processId, "X-ray inspection, 3D");

  await t.dispatcher({
    allowedTargets: [receiver.target],
    env: { WEBHOOK_TIMEOUT_MS: "90000", WEBHOOK_LEASE_SECONDS: "96" },
  });
  const [delivery] = await settledDeliveries(t.sql, hook, { timeoutMs: 20_000 });
  assert.equal(delivery.state, "succeeded");
  assert.equal(receiver.requests.length, 1);
});
