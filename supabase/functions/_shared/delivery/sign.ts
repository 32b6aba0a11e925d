// Standard Webhooks signing (https://www.standardwebhooks.com): the signature is
// base64(HMAC-SHA256(secret, `${msgId}.${timestamp}.${body}`)), computed with the runtime's
// HMAC (node:crypto, native code) rather than the reference `standardwebhooks` library's
// pure-JS SHA-256, which costs twice as much CPU per delivery (sign_bench.ts; bench/README.md,
// "Signing"): CPU an Edge Function's limit counts. sign_test.ts holds every signature to what
// that library verifies, byte for byte.

import { Buffer } from "node:buffer";
import { createHmac } from "node:crypto";

export interface SignInput {
  /** Stable across retries of one delivery, so receivers can deduplicate. */
  msgId: string;
  /** When this attempt is sent; receivers reject stale timestamps (5 min by default). */
  timestamp: Date;
  /** The exact bytes that go on the wire: signing a re-serialization would break verification. */
  body: string;
  /**
   * `whsec_...` secrets, current first. During a rotation overlap there are two
   * and we sign with both, so receivers on either secret keep verifying.
   */
  secrets: readonly string[];
}

export interface SignatureHeaders {
  "webhook-id": string;
  "webhook-timestamp": string;
  "webhook-signature": string;
}

export function signWebhook({ msgId, timestamp, body, secrets }: SignInput): SignatureHeaders {
  const unique = [...new Set(secrets.filter((s) => s !== ""))];
  if (unique.length === 0) throw new Error("cannot sign a webhook without a secret");
  const seconds = String(Math.floor(timestamp.getTime() / 1000));
  const content = `${msgId}.${seconds}.${body}`;
  const signatures = unique.map((secret) =>
    `v1,${createHmac("sha256", keyOf(secret)).update(content).digest("base64")}`
  );
  return {
    "webhook-id": msgId,
    "webhook-timestamp": seconds,
    // Space-separated `v1,<base64>` entries, as the spec prescribes for multiple signatures.
    "webhook-signature": signatures.join(" "),
  };
}

const PREFIX = "whsec_";
// Padded or not, as the library decodes it; a lone last character (length 1 mod 4) is no
// base64 (the library dropped it, and signed with a shorter key).
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}(?:==)?|[A-Za-z0-9+/]{3}=?)?$/;
/** Decoded keys by secret: one endpoint's deliveries share theirs. Emptied when full. */
const keys = new Map<string, Buffer>();
const MAX_KEYS = 1_000;

/**
 * The key bytes of a secret, as the reference library reads it: the base64 after an
 * optional `whsec_`. Anything else is an error (Buffer would skip bad characters and sign
 * with a key nobody holds); the engine records it as the attempt's failure.
 */
function keyOf(secret: string): Buffer {
  let key = keys.get(secret);
  if (key !== undefined) return key;
  const encoded = secret.startsWith(PREFIX) ? secret.slice(PREFIX.length) : secret;
  if (encoded === "" || !BASE64.test(encoded)) {
    throw new Error("the endpoint's secret is not base64 after its whsec_ prefix");
  }
  key = Buffer.from(encoded, "base64");
  if (keys.size >= MAX_KEYS) keys.clear();
  keys.set(secret, key);
  return key;
}
