import assert from "node:assert/strict";
import {
  DEFAULT_RETRY_SCHEDULE_SECONDS as SCHEDULE,
  MAX_RETRY_AFTER_SECONDS,
  nextRetryDelaySeconds,
  parseRetryAfter,
} from "./retry.ts";

const middle = () => 0.5; // no jitter: 1 + 0.2 * (2 * 0.5 - 1) = 1

Deno.test("retry: after attempt n fails the next delay is schedule[n - 1]", () => {
  assert.deepEqual(SCHEDULE, [5, 300, 1800, 7200, 18000, 36000, 36000]);
  const delays = [1, 2, 3, 4, 5, 6, 7].map((n) => nextRetryDelaySeconds(n, SCHEDULE, { random: middle }));
  assert.deepEqual(delays, [5, 300, 1800, 7200, 18000, 36000, 36000]);
});

Deno.test("retry: a schedule of n delays allows n + 1 attempts", () => {
  assert.equal(nextRetryDelaySeconds(7, SCHEDULE, { random: middle }), 36000, "attempt 8 is the last");
  assert.equal(nextRetryDelaySeconds(8, SCHEDULE), null);
  assert.equal(nextRetryDelaySeconds(9, SCHEDULE), null);
  assert.equal(nextRetryDelaySeconds(1, [2], { random: middle }), 2, "one delay: a second attempt");
  assert.equal(nextRetryDelaySeconds(2, [2]), null, "and no third");
  assert.equal(nextRetryDelaySeconds(1, []), null, "no delays: a single attempt");
});

Deno.test("retry: jitter spreads each delay over ±20 %", () => {
  assert.equal(nextRetryDelaySeconds(2, SCHEDULE, { random: () => 0 }), 240);
  assert.equal(nextRetryDelaySeconds(2, SCHEDULE, { random: () => 0.999999 }), 300 * (1 + 0.2 * (2 * 0.999999 - 1)));
  for (let i = 0; i < 1000; i++) {
    const d = nextRetryDelaySeconds(3, SCHEDULE)!;
    assert.ok(d >= 1440 && d < 2160, `${d} outside 1800 ±20 %`);
  }
  assert.equal(nextRetryDelaySeconds(1, [0, 0], { random: () => 0.9 }), 0, "zero stays zero");
});

Deno.test("retry: Retry-After can push the next attempt later, never sooner", () => {
  assert.equal(nextRetryDelaySeconds(1, SCHEDULE, { random: middle, retryAfterSeconds: 120 }), 120);
  assert.equal(nextRetryDelaySeconds(2, SCHEDULE, { random: middle, retryAfterSeconds: 1 }), 300);
  assert.equal(nextRetryDelaySeconds(1, SCHEDULE, { random: middle, retryAfterSeconds: null }), 5);
});

Deno.test("retry: Retry-After is capped at a day and adds no attempts", () => {
  assert.equal(MAX_RETRY_AFTER_SECONDS, 86400);
  assert.equal(nextRetryDelaySeconds(1, SCHEDULE, { random: middle, retryAfterSeconds: 10 * 86400 }), 86400);
  assert.equal(nextRetryDelaySeconds(8, SCHEDULE, { retryAfterSeconds: 60 }), null);
});

Deno.test("retry: attempt numbers are 1-based integers", () => {
  assert.throws(() => nextRetryDelaySeconds(0, SCHEDULE), RangeError);
  assert.throws(() => nextRetryDelaySeconds(1.5, SCHEDULE), RangeError);
});

Deno.test("retry: Retry-After parses delay-seconds and HTTP dates", () => {
  const now = new Date("2026-01-01T00:00:00Z");
  assert.equal(parseRetryAfter("120", now), 120);
  assert.equal(parseRetryAfter(" 0 ", now), 0);
  assert.equal(parseRetryAfter("Thu, 01 Jan 2026 00:02:30 GMT", now), 150);
  assert.equal(parseRetryAfter("Thursday, 01-Jan-26 00:00:10 GMT", now), 10, "obsolete RFC 850 form");
  assert.equal(parseRetryAfter("Wed, 31 Dec 2025 23:00:00 GMT", now), 0, "a past date means now");
});

Deno.test("retry: a malformed Retry-After is ignored", () => {
  const now = new Date();
  for (const bad of [null, "", "soon", "-5", "1.5", "12abc!"]) {
    assert.equal(parseRetryAfter(bad, now), null, `${bad}`);
  }
});
