// The headers a delivery attempt was sent with. The dispatcher does not store them, so they
// are derived from what it stores: webhook-id is the delivery id, content-type and
// user-agent are constant (supabase/functions/_shared/delivery/send.ts; tests/portal/logic.test.ts holds the two to the same value), and webhook-timestamp is
// the second the attempt was signed, which is just before it was sent: the attempt's
// recorded time minus its duration, give or take a second. The signature is never shown.
import type { WebhookDelivery, WebhookDeliveryAttempt } from "../../client.ts";

export interface SentHeader {
  name: string;
  value: string;
  /** Why the value is what it is (shown beside it). */
  note: string;
}

export const USER_AGENT = "Serial-Webhooks/1.0";

export function headersAsSent(delivery: Pick<WebhookDelivery, "id">, attempt: Pick<WebhookDeliveryAttempt, "created_at" | "duration_ms"> | null): SentHeader[] {
  const headers: SentHeader[] = [
    { name: "content-type", value: "application/json", note: "always" },
    { name: "user-agent", value: USER_AGENT, note: "always" },
    { name: "webhook-id", value: delivery.id, note: "the delivery id, the same on every retry" },
  ];
  if (attempt) {
    const sentAt = Date.parse(attempt.created_at) - (attempt.duration_ms ?? 0);
    headers.push({
      name: "webhook-timestamp",
      value: String(Math.floor(sentAt / 1000)),
      note: "derived: when this attempt was recorded minus its duration (within a second of the signed value)",
    });
  } else {
    headers.push({ name: "webhook-timestamp", value: "(set when an attempt is sent)", note: "not sent yet" });
  }
  headers.push({
    name: "webhook-signature",
    value: "v1,<redacted>",
    note: "HMAC-SHA256 with the endpoint's secret; two entries during the 24 h after a rotation",
  });
  return headers;
}
