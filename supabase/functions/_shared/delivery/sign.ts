// Standard Webhooks signing (https://www.standardwebhooks.com), delegated to
// the reference `standardwebhooks` library so our signatures are byte-for-byte
// what every receiver-side verifier computes.

import { Webhook } from "standardwebhooks";

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
  const signatures = unique.map((secret) => new Webhook(secret).sign(msgId, timestamp, body));
  return {
    "webhook-id": msgId,
    "webhook-timestamp": String(Math.floor(timestamp.getTime() / 1000)),
    // Space-separated `v1,<base64>` entries, as the spec prescribes for multiple signatures.
    "webhook-signature": signatures.join(" "),
  };
}
