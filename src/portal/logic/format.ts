// Words and numbers as the portal shows them.
import type { EndpointStats, Webhook } from "../../client.ts";

export function formatTime(iso: string | null | undefined): string {
  if (!iso) return "—";
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

export interface EndpointState {
  /** Short label: Active, Failing, Disabled. */
  label: "Active" | "Failing" | "Disabled";
  /** One line of detail, or null. */
  detail: string | null;
  tone: "ok" | "warn" | "bad";
}

export function endpointState(webhook: Pick<Webhook, "is_active" | "disabled_reason" | "disabled_at" | "failing_since">): EndpointState {
  if (!webhook.is_active) {
    const reason = webhook.disabled_reason ?? "no reason given";
    return { label: "Disabled", detail: `${reason}${webhook.disabled_at ? ` (since ${formatTime(webhook.disabled_at)})` : ""}`, tone: "bad" };
  }
  if (webhook.failing_since) {
    return { label: "Failing", detail: `failing since ${formatTime(webhook.failing_since)}`, tone: "warn" };
  }
  return { label: "Active", detail: null, tone: "ok" };
}

export function lastStatus(stats: Pick<EndpointStats, "last_status" | "last_attempt_at"> | undefined): string {
  if (!stats || stats.last_attempt_at === null) return "—";
  return stats.last_status === null ? "no response" : String(stats.last_status);
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
