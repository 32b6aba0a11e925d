// The database's answer to a create or edit, placed next to the field it is about and said
// in plain words. The words for URL rules are the client's (URL_RULES, src/errors.ts), so
// the portal and the API say the same thing.
import { URL_RULES, WebhooksError } from "../../errors.ts";

export type EndpointField = "url" | "triggerType" | "description" | "deliveryOrder" | "maxConcurrentRequests" | "maxRequestsPerSecond";

/** What the form says when the limit is not a whole number from 1 to 1000 (or empty). */
export const MAX_CONCURRENT_REQUESTS_RULE =
  "Most requests at once must be a whole number from 1 to 1000, or empty for the deployment's limit.";

/** What the form says when the rate is not a whole number from 1 to 10,000 (or empty). */
export const MAX_REQUESTS_PER_SECOND_RULE =
  "Most requests per second must be a whole number from 1 to 10,000, or empty for no limit.";

export interface FormError {
  /** The field to show it next to; null for the form as a whole. */
  field: EndpointField | null;
  message: string;
}

function capitalize(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

export function endpointFormError(error: unknown): FormError {
  if (!(error instanceof WebhooksError)) {
    return { field: null, message: error instanceof Error ? error.message : String(error) };
  }
  const rule = error.constraint ? URL_RULES[error.constraint] : undefined;
  switch (error.kind) {
    case "invalid_url":
      return { field: "url", message: `${capitalize(rule ?? "the URL is not valid")}.` };
    case "duplicate":
      return { field: "url", message: "This URL already receives this trigger type: an endpoint can be registered once per trigger type." };
    case "unknown_trigger_type":
      return { field: "triggerType", message: "Unknown trigger type: pick one from the list." };
    case "permission_denied":
    case "not_found":
      return { field: null, message: "You cannot change this endpoint: it does not exist or is not yours to manage." };
    case "unauthenticated":
      return { field: null, message: "You are signed out. Sign in again to save." };
    default:
      break;
  }
  if (error.constraint === "webhooks_description_length") {
    return { field: "description", message: "Description must be at most 500 characters." };
  }
  if (error.constraint === "webhooks_delivery_order_valid") {
    return { field: "deliveryOrder", message: "Delivery order must be parallel or ordered." };
  }
  if (error.constraint === "webhooks_max_concurrent_requests_range") {
    return { field: "maxConcurrentRequests", message: MAX_CONCURRENT_REQUESTS_RULE };
  }
  if (error.constraint === "webhooks_max_requests_per_second_range") {
    return { field: "maxRequestsPerSecond", message: MAX_REQUESTS_PER_SECOND_RULE };
  }
  if (error.code === "23502" && /"url"/.test(error.message)) return { field: "url", message: "URL is required." };
  return { field: null, message: error.message };
}

/**
 * The database's answer to cancelling a delivery, in plain words: cancel_webhook_delivery
 * refuses one that has already ended (55000, kind "already_ended"), and says with its hint
 * what to do instead.
 */
export function cancelDeliveryError(error: unknown): string {
  if (error instanceof WebhooksError) {
    switch (error.kind) {
      case "already_ended":
        return `This delivery has already ended, so there is nothing to cancel. ${error.hint ?? "Only pending deliveries can be cancelled; redeliver it to send it again."}`;
      case "permission_denied":
      case "not_found":
        return "You cannot cancel this delivery: it does not exist or is not yours to manage.";
      case "unauthenticated":
        return "You are signed out. Sign in again to cancel.";
      default:
        break;
    }
  }
  return error instanceof Error ? error.message : String(error);
}
