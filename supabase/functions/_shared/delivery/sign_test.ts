import assert from "node:assert/strict";
import { Webhook, WebhookVerificationError } from "standardwebhooks";
import { signWebhook } from "./sign.ts";
import { newSecret } from "../../_test/receiver.ts";

const body = JSON.stringify({ type: "PROCESS_REVISED", timestamp: "2026-01-01T00:00:00.000Z", data: { id: 1 } });
const msgId = "8a1f6c2e-4a9e-4f7d-9c59-2f0d7c1b9e11";

Deno.test("sign: headers are Standard Webhooks headers the reference library verifies", () => {
  const secret = newSecret();
  const now = new Date();
  const headers = signWebhook({ msgId, timestamp: now, body, secrets: [secret] });
  assert.equal(headers["webhook-id"], msgId);
  assert.equal(headers["webhook-timestamp"], String(Math.floor(now.getTime() / 1000)));
  assert.match(headers["webhook-signature"], /^v1,[A-Za-z0-9+/]+=*$/);
  assert.deepEqual(new Webhook(secret).verify(body, { ...headers }), JSON.parse(body));
});

Deno.test("sign: during a rotation both secrets sign and either one verifies", () => {
  const current = newSecret();
  const previous = newSecret();
  const headers = signWebhook({ msgId, timestamp: new Date(), body, secrets: [current, previous] });
  const entries = headers["webhook-signature"].split(" ");
  assert.equal(entries.length, 2);
  assert.ok(entries.every((e) => e.startsWith("v1,")));
  for (const secret of [current, previous]) {
    assert.deepEqual(new Webhook(secret).verify(body, { ...headers }), JSON.parse(body));
  }
  assert.throws(() => new Webhook(newSecret()).verify(body, { ...headers }), WebhookVerificationError);
});

Deno.test("sign: a tampered body, id or timestamp does not verify", () => {
  const secret = newSecret();
  const headers = signWebhook({ msgId, timestamp: new Date(), body, secrets: [secret] });
  const verifier = new Webhook(secret);
  assert.throws(() => verifier.verify(body.replace('"id":1', '"id":2'), { ...headers }), /No matching signature/);
  assert.throws(() => verifier.verify(body, { ...headers, "webhook-id": "other" }), /No matching signature/);
  const earlier = String(Number(headers["webhook-timestamp"]) - 1);
  assert.throws(() => verifier.verify(body, { ...headers, "webhook-timestamp": earlier }), /No matching signature/);
});

Deno.test("sign: duplicate secrets sign once; no secret is an error", () => {
  const secret = newSecret();
  const headers = signWebhook({ msgId, timestamp: new Date(), body, secrets: [secret, secret, ""] });
  assert.equal(headers["webhook-signature"].split(" ").length, 1);
  assert.throws(() => signWebhook({ msgId, timestamp: new Date(), body, secrets: [] }), /without a secret/);
  assert.throws(() => signWebhook({ msgId, timestamp: new Date(), body, secrets: [""] }), /without a secret/);
});

Deno.test("sign: a secret that is not base64 after whsec_ is an error, never a signature with a guessed key", () => {
  for (const bad of ["whsec_not base64!", "whsec_", "whsec_abcde", "whsec_YWJj=ZGVm", "whsec_YWJjZA="]) {
    assert.throws(
      () => signWebhook({ msgId, timestamp: new Date(), body, secrets: [bad] }),
      /not base64 after its whsec_ prefix/,
      bad,
    );
  }
});

Deno.test("sign: the same secret signs the same way on every call (decoded keys are reused)", () => {
  const secret = newSecret();
  const at = new Date();
  const first = signWebhook({ msgId, timestamp: at, body, secrets: [secret] });
  const again = signWebhook({ msgId, timestamp: at, body, secrets: [secret] });
  assert.deepEqual(again, first);
  // A secret without the prefix is its base64 alone, as the reference library reads it.
  const bare = secret.slice("whsec_".length);
  assert.deepEqual(signWebhook({ msgId, timestamp: at, body, secrets: [bare] }), first);
  assert.deepEqual(new Webhook(bare).verify(body, { ...first }), JSON.parse(body));
});

Deno.test("sign: an unpadded secret signs as the reference library reads it", () => {
  const at = new Date();
  for (const bytes of [31, 32]) { // base64 ending in = and in ==, without them
    const raw = btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(bytes))));
    const unpadded = `whsec_${raw.replace(/=+$/, "")}`;
    const headers = signWebhook({ msgId, timestamp: at, body, secrets: [unpadded] });
    assert.deepEqual(headers, signWebhook({ msgId, timestamp: at, body, secrets: [`whsec_${raw}`] }));
    assert.deepEqual(new Webhook(unpadded).verify(body, { ...headers }), JSON.parse(body));
  }
});
