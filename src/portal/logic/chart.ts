// Deliveries per hour by outcome, for the last `hours` hours, as the chart draws them: one
// bucket per hour (empty hours included, oldest first), the endpoints' rows summed.
import type { HourlyOutcomes } from "../../client.ts";

export const OUTCOMES = ["succeeded", "retrying", "pending", "failed", "cancelled"] as const;
export type Outcome = (typeof OUTCOMES)[number];

export const OUTCOME_LABELS: Record<Outcome, string> = {
  succeeded: "Succeeded",
  retrying: "Retrying",
  pending: "Not attempted yet",
  failed: "Failed",
  cancelled: "Cancelled",
};

export interface HourBucket {
  /** Start of the hour (UTC-aligned). */
  start: Date;
  counts: Record<Outcome, number>;
  total: number;
}

const HOUR = 3_600_000;

/** Start of the hour `now` is in. */
export function hourStart(now: Date): Date {
  return new Date(Math.floor(now.getTime() / HOUR) * HOUR);
}

/** Where the window of `hours` buckets ending with the current hour begins (ask the database from here). */
export function windowStart(now: Date, hours = 24): Date {
  return new Date(hourStart(now).getTime() - (hours - 1) * HOUR);
}

export function hourlyBuckets(rows: readonly Pick<HourlyOutcomes, "hour" | Outcome>[], now: Date, hours = 24): HourBucket[] {
  const first = windowStart(now, hours).getTime();
  const buckets: HourBucket[] = Array.from({ length: hours }, (_, i) => ({
    start: new Date(first + i * HOUR),
    counts: { succeeded: 0, retrying: 0, pending: 0, failed: 0, cancelled: 0 },
    total: 0,
  }));
  for (const row of rows) {
    const index = Math.floor((Date.parse(row.hour) - first) / HOUR);
    const bucket = buckets[index];
    if (!bucket) continue; // outside the window (or not a time)
    for (const outcome of OUTCOMES) {
      const n = Number(row[outcome]) || 0;
      bucket.counts[outcome] += n;
      bucket.total += n;
    }
  }
  return buckets;
}

/** A round top for the y axis (1, 2, 5 x 10^n), at least 1, at least the largest bucket. */
export function niceMax(buckets: readonly HourBucket[]): number {
  const max = Math.max(1, ...buckets.map((b) => b.total));
  const magnitude = 10 ** Math.floor(Math.log10(max));
  for (const step of [1, 2, 5, 10]) {
    if (step * magnitude >= max) return step * magnitude;
  }
  return 10 * magnitude;
}

/** Stacked segments of one bar, bottom up, as fractions of `max`. */
export function stack(bucket: HourBucket, max: number): { outcome: Outcome; from: number; to: number }[] {
  const segments: { outcome: Outcome; from: number; to: number }[] = [];
  let at = 0;
  for (const outcome of OUTCOMES) {
    const n = bucket.counts[outcome];
    if (n === 0) continue;
    segments.push({ outcome, from: at / max, to: (at + n) / max });
    at += n;
  }
  return segments;
}

/** One sentence for screen readers and tooltips. */
export function describeBucket(bucket: HourBucket, formatHour: (d: Date) => string): string {
  const parts = OUTCOMES.filter((o) => bucket.counts[o] > 0).map((o) => `${bucket.counts[o]} ${OUTCOME_LABELS[o].toLowerCase()}`);
  return `${formatHour(bucket.start)}: ${parts.length ? parts.join(", ") : "no deliveries"}`;
}
