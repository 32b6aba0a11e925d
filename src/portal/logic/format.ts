// Words and numbers as the portal shows them.
import type { DeliveryOrder, EndpointHealth, Webhook } from "../../client.ts";

export function formatTime(iso: string | null | undefined): string {
  if (!iso) return "—";
  // Postgres's 'infinity': a delivery held back (its turn has not come), never a real time.
  if (iso === "infinity") return "not scheduled";
  const time = new Date(iso);
  return Number.isNaN(time.getTime()) ? iso : time.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "medium" });
}

export function formatHour(start: Date): string {
  return start.toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit" });
}

export function formatRate(rate: number | null | undefined): string {
  if (rate === null || rate === undefined) return "—";
  const percent = Number(rate) * 100;
  return `${percent === 100 || percent === 0 ? percent.toFixed(0) : percent.toFixed(1)} %`;
}

export function formatDuration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return "—";
  return ms < 1000 ? `${ms} ms` : `${(ms / 1000).toFixed(2)} s`;
}

/** A time said briefly: the clock time alone when it is today (local), else the date too. */
export function formatMoment(iso: string | null | undefined, now: Date = new Date()): string {
  if (!iso) return "—";
  const time = new Date(iso);
  if (Number.isNaN(time.getTime())) return iso;
  const sameDay = time.toDateString() === now.toDateString();
  return sameDay
    ? time.toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit", second: "2-digit" })
    : time.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}

/** What public.webhook_endpoint_health says about an endpoint (the columns the portal shows). */
export type HealthFacts = Pick<
  EndpointHealth,
  "state" | "consecutive_failures" | "failing_since" | "circuit_opened_at" | "next_probe_at" | "last_status" | "last_error" | "last_attempt_at"
>;

export interface EndpointStateText {
  /** Short label, the health view's state in words. "Active" only while the health is not known. */
  label: "Healthy" | "Failing" | "Circuit open" | "Disabled" | "Active";
  /** One sentence of detail, or null. */
  detail: string | null;
  tone: "ok" | "warn" | "bad" | "info";
}

const plural = (n: number, one: string, many: string) => `${n} ${n === 1 ? one : many}`;

/**
 * An endpoint's state in plain words, from its webhook row (active, why it was disabled)
 * and its row of public.webhook_endpoint_health (failing, circuit open, next probe).
 */
export function endpointState(
  webhook: Pick<Webhook, "is_active" | "disabled_reason" | "disabled_at">,
  health: HealthFacts | null | undefined,
  now: Date = new Date(),
): EndpointStateText {
  const at = (iso: string | null) => formatMoment(iso, now);
  if (!webhook.is_active || health?.state === "disabled") {
    const reason = webhook.disabled_reason ?? "no reason given";
    return { label: "Disabled", detail: `${reason}${webhook.disabled_at ? ` (since ${at(webhook.disabled_at)})` : ""}`, tone: "bad" };
  }
  if (!health) return { label: "Active", detail: null, tone: "info" };
  switch (health.state) {
    case "circuit_open": {
      const probe = health.next_probe_at;
      const next = probe === null ? "" : Date.parse(probe) > now.getTime() ? ` — next probe at ${at(probe)}` : ` — probe due since ${at(probe)}`;
      return {
        label: "Circuit open",
        detail: `Circuit open since ${at(health.circuit_opened_at)}${next} (deliveries wait without spending attempts)`,
        tone: "bad",
      };
    }
    case "failing":
      return {
        label: "Failing",
        detail: `Failing since ${at(health.failing_since)}${health.consecutive_failures > 0 ? ` — ${plural(health.consecutive_failures, "consecutive failure", "consecutive failures")}` : ""}`,
        tone: "warn",
      };
    default:
      return { label: "Healthy", detail: null, tone: "ok" };
  }
}

/** The last attempt of an endpoint: its HTTP status (or "no response"), and the error when it says more than the status. */
export function lastOutcome(health: Pick<HealthFacts, "last_status" | "last_error" | "last_attempt_at"> | null | undefined): { status: string; error: string | null } {
  if (!health || health.last_attempt_at === null) return { status: "—", error: null };
  const status = health.last_status === null ? "no response" : String(health.last_status);
  const error = health.last_error && health.last_error !== `HTTP ${health.last_status}` ? health.last_error : null;
  return { status, error };
}

/** How many requests an endpoint may have in flight now (public.webhook_endpoint_health.concurrency). */
export function concurrencyText(health: Pick<EndpointHealth, "concurrency"> | null | undefined): string {
  if (!health || health.concurrency === null) return "—";
  return `up to ${plural(health.concurrency, "request", "requests")} at once`;
}

/** Why that number moves, in a sentence. */
export const CONCURRENCY_RULE =
  "One more after each success, up to the deployment's limit or the endpoint's own if lower; halved when the endpoint times out, does not answer, or answers 5xx or 429.";

/** The endpoint's own limit (public.webhooks.max_concurrent_requests), in a sentence. */
export function limitText(limit: number): string {
  return `Limit set for this endpoint: ${plural(limit, "request", "requests")} at once.`;
}

/** The endpoint's own rate (public.webhooks.max_requests_per_second), in a sentence. */
export function rateText(rate: number): string {
  return `Rate set for this endpoint: ${plural(rate, "request", "requests")} per second at most, on average.`;
}

/** Said while the endpoint's own limits hold deliveries back (webhook_endpoint_health.held_back_by_own_limits). */
export const HELD_BACK_BY_OWN_LIMITS =
  "Deliveries are waiting for these limits now: without them they would go out at once.";

/** Said while the endpoint waits for its company's share of requests (webhook_endpoint_health.waiting_for_company_share). */
export const WAITING_FOR_COMPANY_SHARE =
  "Deliveries are waiting for your company's share of requests in flight: your other endpoints hold it now (often ones that do not answer). They go as soon as a request of theirs ends.";

/** How an endpoint receives its deliveries, in a sentence (public.webhooks.delivery_order). */
export const DELIVERY_ORDERS: Record<DeliveryOrder, { label: string; promise: string }> = {
  parallel: {
    label: "Parallel",
    promise: "Deliveries go out side by side, up to the endpoint's limit; a retry can arrive after a newer event.",
  },
  ordered: {
    label: "Ordered",
    promise:
      "Each process's events arrive one at a time, in the order they were committed: the next is not sent until the previous one has succeeded, failed for good or been cancelled.",
  },
};

/** The first 8 characters of a delivery id: enough to tell deliveries apart on one screen. */
export function shortId(id: string): string {
  return id.slice(0, 8);
}

/** A datetime-local input's value for an instant, in the browser's time zone. */
export function toLocalInput(date: Date): string {
  const pad = (n: number) => String(n).padStart(2, "0");
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T${pad(date.getHours())}:${pad(date.getMinutes())}`;
}

/** The instant of a datetime-local input's value (browser time zone), or null when empty or invalid. */
export function fromLocalInput(value: string): Date | null {
  if (!value) return null;
  const time = new Date(value);
  return Number.isNaN(time.getTime()) ? null : time;
}

/**
 * Where a delivery went, for the log: its endpoint's url. "(endpoint deleted)" when its id
 * was cleared (endpoints deleted before 20261130120000) or, once the company's endpoints are
 * known (`urls` not null), when none of them has it: a delete leaves the log's ids alone.
 */
export function endpointLabel(webhookId: string | null, urls: ReadonlyMap<string, string> | null): string {
  if (webhookId === null) return "(endpoint deleted)";
  return urls?.get(webhookId) ?? (urls === null ? webhookId : "(endpoint deleted)");
}
