export { createWebhooksClient } from "./client.ts";
export type {
  AttemptOutcome,
  DeliveryFilter,
  DeliveryListItem,
  DeliveryOrder,
  DeliveryState,
  DeliveryWithAttempts,
  EndpointHealth,
  EndpointState,
  EndpointStats,
  HourlyOutcomes,
  NewWebhook,
  Page,
  Webhook,
  WebhookChanges,
  WebhookDelivery,
  WebhookDeliveryAttempt,
  WebhookEvent,
  WebhooksClient,
  WebhookTriggerType,
  WebhookWithHealth,
} from "./client.ts";
export { toWebhooksError, URL_RULES, WebhooksError } from "./errors.ts";
export type { WebhooksErrorKind } from "./errors.ts";
export { verifyWebhook, WebhookVerificationError } from "./verify.ts";
export type { WebhookPayload } from "./verify.ts";
export type { Database, Json } from "./database.types.ts";
