// End to end: the SSRF policy holds in the running dispatcher. Forbidden targets are
// blocked (one attempt, delivery failed, never retried) and never contacted, even when a
// real server listens there; redirects are failures and are never followed.
import assert from "node:assert/strict";
import {
  attemptsOf,
  createProcess,
  deliveriesOf,
  e2eTest,
  reviseProcess,
  settledDeliveries,
  sleep,
} from "../_test/e2e.ts";

e2eTest("blocked targets: metadata, loopback off the allowlist, IPv4-mapped loopback; never contacted", async (t) => {
  // A real server on a loopback port that is NOT in WEBHOOK_ALLOWED_TARGETS.
  const forbidden = t.receiver();
  const allowed = t.receiver();
  const company = await t.company();
  const targets = {
    metadata: { url: "http://169.254.169.254/latest/meta-data", reason: /link-local/ },
    loopback: { url: `http://127.0.0.1:${forbidden.port}/hook`, reason: /127\.0\.0\.1 is loopback/ },
    mapped: { url: `http://[::ffff:127.0.0.1]:${forbidden.port}/hook`, reason: /IPv4-mapped IPv6 of 127\.0\.0\.1/ },
  };
  const hooks = Object.fromEntries(
    await Promise.all(Object.entries(targets).map(async ([name, { url }]) => [name, await t.webhook(company, url)])),
  ) as Record<keyof typeof targets, string>;
  const control = await t.webhook(company, `${allowed.origin}/hook`);
  const processId = await createProcess(t.sql, company, "Laser marking");
  await reviseProcess(t.sql, processId, "Laser marking, 2D code");

  await t.dispatcher({ allowedTargets: [allowed.target] });
  for (const [name, { reason }] of Object.entries(targets)) {
    const [delivery] = await settledDeliveries(t.sql, hooks[name as keyof typeof targets]);
    assert.equal(delivery.state, "failed", `${name}: a blocked delivery ends failed`);
    assert.equal(delivery.attempt_count, 1, `${name}: a policy refusal is not retried`);
    assert.equal(delivery.last_status, null);
    const attempts = await attemptsOf(t.sql, delivery.id);
    assert.deepEqual(attempts.map((a) => [a.outcome, a.status]), [["blocked", null]], name);
    assert.match(attempts[0].error!, /^target refused: /, name);
    assert.match(attempts[0].error!, reason, name);
  }
  // The allowlisted receiver of the same event gets it: the policy is per target.
  const [ok] = await settledDeliveries(t.sql, control);
  assert.equal(ok.state, "succeeded");
  assert.equal(allowed.requests.length, 1);

  // Nothing reached the forbidden server, and nothing was retried later.
  await sleep(600);
  assert.equal(forbidden.requests.length, 0);
  for (const hook of Object.values(hooks)) {
    const [d] = await deliveriesOf(t.sql, hook);
    assert.equal(d.attempt_count, 1);
  }
});

e2eTest("a 302 is a failed attempt: the redirect is never followed, even to an allowlisted target", async (t) => {
  const destination = t.receiver();
  const redirector = t.receiver(() =>
    new Response(null, { status: 302, headers: { location: `${destination.origin}/landing` } })
  );
  const company = await t.company();
  const hook = await t.webhook(company, `${redirector.origin}/moved`);
  const processId = await createProcess(t.sql, company, "Visual inspection");
  await reviseProcess(t.sql, processId, "Visual inspection, 10x");

  await t.dispatcher({ allowedTargets: [redirector.target, destination.target] });
  const [delivery] = await settledDeliveries(t.sql, hook);
  // A redirect is an ordinary failure: retried per the schedule (3 attempts), then failed.
  assert.equal(delivery.state, "failed");
  assert.equal(delivery.attempt_count, 3);
  assert.equal(delivery.last_status, 302);
  const attempts = await attemptsOf(t.sql, delivery.id);
  assert.deepEqual(attempts.map((a) => [a.outcome, a.status]), [["failed", 302], ["failed", 302], ["failed", 302]]);
  assert.match(attempts[0].error!, new RegExp(`redirect 302 to ${destination.origin}/landing not followed`));
  assert.equal(redirector.requests.length, 3);
  assert.deepEqual(redirector.webhookIds(), [delivery.id]);

  await sleep(300);
  assert.equal(destination.requests.length, 0);
});
