// Retry schedule, modelled on Svix: a fixed list of delays with jitter, so a
// receiver that is down for hours still gets its messages within a day, and
// thousands of deliveries failing together do not retry in lock-step.

/**
 * The retry schedule: element i is the delay in seconds after attempt i+1 fails,
 * before attempt i+2. A delivery gets at most `schedule.length + 1` attempts (the
 * first is sent as soon as it is due). Default: 8 attempts over ~27.5 h.
 */
export const DEFAULT_RETRY_SCHEDULE_SECONDS: readonly number[] = Object.freeze([
  5,
  5 * 60,
  30 * 60,
  2 * 3600,
  5 * 3600,
  10 * 3600,
  10 * 3600,
]);

/** Each scheduled delay is spread uniformly over ±20 %. */
const JITTER_FRACTION = 0.2;

/**
 * Upper bound on how long a receiver's Retry-After can push the next attempt.
 * A receiver asking for more than a day is more likely broken than busy, and
 * honouring an arbitrary value would let it park a delivery forever.
 */
export const MAX_RETRY_AFTER_SECONDS = 24 * 3600;

export interface RetryOptions {
  /** Parsed Retry-After of the failed response, if any. */
  retryAfterSeconds?: number | null;
  /** Returns [0, 1); injectable so tests are deterministic. */
  random?: () => number;
}

/**
 * Delay in seconds before the next attempt after attempt `attemptNumber`
 * (1-based) failed: `schedule[attemptNumber - 1]`, jittered; null once the
 * schedule is exhausted (attempt `schedule.length + 1` was the last).
 *
 * Retry-After policy: the delay is max(jittered schedule delay, Retry-After
 * capped at MAX_RETRY_AFTER_SECONDS). Retry-After can only push an attempt
 * later, never sooner: the schedule is our back-off promise to every receiver,
 * and a receiver saying "retry in 1 s" after its third failure should not
 * reset that. It also never adds attempts: exhaustion is decided by the
 * schedule alone.
 */
export function nextRetryDelaySeconds(
  attemptNumber: number,
  schedule: readonly number[],
  options: RetryOptions = {},
): number | null {
  if (!Number.isInteger(attemptNumber) || attemptNumber < 1) {
    throw new RangeError(`attemptNumber must be a positive integer, got ${attemptNumber}`);
  }
  if (attemptNumber > schedule.length) return null;
  const random = options.random ?? Math.random;
  const base = schedule[attemptNumber - 1];
  const jittered = base * (1 + JITTER_FRACTION * (2 * random() - 1));
  const retryAfter = options.retryAfterSeconds;
  if (retryAfter == null || !(retryAfter >= 0)) return jittered;
  return Math.max(jittered, Math.min(retryAfter, MAX_RETRY_AFTER_SECONDS));
}

/**
 * Parses a Retry-After header (RFC 9110 §10.2.3): either delay-seconds or an
 * HTTP-date. Returns seconds from `now` (0 for a date in the past), or null
 * when absent or unparseable — a malformed header is ignored, not an error.
 */
export function parseRetryAfter(header: string | null, now: Date): number | null {
  if (header === null) return null;
  const value = header.trim();
  if (/^\d+$/.test(value)) return Number(value);
  // Date.parse accepts IMF-fixdate and the obsolete RFC 850/asctime forms, but
  // also bare numbers like "1.5" or "-3"; demand a letter so only dates pass.
  if (!/[a-z]/i.test(value)) return null;
  const at = Date.parse(value);
  if (Number.isNaN(at)) return null;
  return Math.max(0, (at - now.getTime()) / 1000);
}
