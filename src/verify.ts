import { Webhook, WebhookVerificationError } from "standardwebhooks";

/** The JSON body of every Serial webhook. */
export interface WebhookPayload<Data = Record<string, unknown>> {
  /** The trigger type, e.g. PROCESS_REVISED. */
  type: string;
  /** When the event happened (ISO 8601, UTC). */
  timestamp: string;
  company_id: string;
  data: Data;
}

export { WebhookVerificationError };

/**
 * Verifies a received webhook (Standard Webhooks: webhook-id, webhook-timestamp,
 * webhook-signature) against the endpoint's `whsec_...` secret and returns the parsed
 * payload. Throws WebhookVerificationError when the signature is wrong, the timestamp
 * is more than 5 minutes away, or a header is missing. Pass the raw body, unparsed.
 */
export function verifyWebhook<Data = Record<string, unknown>>(
  body: string | Buffer,
  headers: Record<string, string | string[] | undefined> | Headers,
  secret: string,
): WebhookPayload<Data> {
  const flat: Record<string, string> = {};
  const entries = headers instanceof Headers ? headers.entries() : Object.entries(headers);
  for (const [name, value] of entries) {
    if (value !== undefined) flat[name.toLowerCase()] = Array.isArray(value) ? value.join(", ") : value;
  }
  const text = typeof body === "string" ? body : body.toString("utf8");
  return new Webhook(secret).verify(text, flat) as WebhookPayload<Data>;
}
