import assert from "node:assert/strict";
import {
  ConfigError,
  MIN_TOKEN_LENGTH,
  parseConfig,
  type ParseConfigOptions,
  START_WINDOW_MS,
  WALL_CLOCK_MARGIN_MS,
} from "./config.ts";
import { LOCALHOST_CERT } from "../../_test/tls.ts";
import { DEFAULT_RETRY_SCHEDULE_SECONDS } from "../delivery/retry.ts";

function problemsOf(env: Record<string, string>, options?: ParseConfigOptions): readonly string[] {
  try {
    parseConfig(env, options);
  } catch (e) {
    if (e instanceof ConfigError) return e.problems;
    throw e;
  }
  assert.fail("expected a ConfigError");
}

const outOfRange = (name: string, min: number, max: number, got: string) =>
  `${name} must be an integer between ${min} and ${max}, got '${got}'`;

Deno.test("config: an empty environment gives the documented defaults", () => {
  const config = parseConfig({});
  assert.equal(config.dbUrl, undefined);
  assert.equal(config.timeoutMs, 15_000);
  assert.equal(config.batchSize, 50);
  assert.equal(config.concurrency, 500);
  assert.equal(config.leaseSeconds, 120);
  assert.deepEqual(config.retrySchedule, DEFAULT_RETRY_SCHEDULE_SECONDS);
  assert.deepEqual(config.retrySchedule, [5, 300, 1800, 7200, 18000, 36000, 36000]);
  assert.equal(config.disableAfterHours, 120);
  assert.equal(config.allowedTargets.size, 0);
  assert.match(config.workerId, /^dispatcher-[0-9a-f]{8}$/);
  assert.equal(config.httpBudgetMs, 100_000);
});

Deno.test("config: the HTTP-mode budget is checked like the other knobs", () => {
  assert.equal(parseConfig({ WEBHOOK_HTTP_BUDGET_MS: "30000" }).httpBudgetMs, 30_000);
  assert.throws(
    () => parseConfig({ WEBHOOK_HTTP_BUDGET_MS: "soon" }),
    /WEBHOOK_HTTP_BUDGET_MS must be an integer between 1000 and 3600000, got 'soon'/,
  );
});

Deno.test("config: every knob is read", () => {
  const config = parseConfig({
    SUPABASE_DB_URL: "postgresql://postgres:pw@127.0.0.1:54322/postgres",
    SUPABASE_SERVICE_ROLE_KEY: "service-key",
    WEBHOOK_ALLOWED_TARGETS: "127.0.0.1:8080",
    WEBHOOK_TIMEOUT_MS: "2000",
    WEBHOOK_BATCH_SIZE: "7",
    WEBHOOK_CONCURRENCY: "8",
    WEBHOOK_LEASE_SECONDS: "30",
    WEBHOOK_RETRY_SCHEDULE: " 0.5, 0 ,2",
    WEBHOOK_DISABLE_AFTER_HOURS: "1.5",
    WEBHOOK_WORKER_ID: "worker-a",
  });
  assert.equal(config.dbUrl, "postgresql://postgres:pw@127.0.0.1:54322/postgres");
  assert.deepEqual(config.wakeUpKeys, ["service-key"]);
  assert.deepEqual([...config.allowedTargets], ["127.0.0.1:8080"]);
  assert.equal(config.timeoutMs, 2000);
  assert.equal(config.batchSize, 7);
  assert.equal(config.concurrency, 8);
  assert.equal(config.leaseSeconds, 30);
  assert.deepEqual(config.retrySchedule, [0.5, 0, 2]);
  assert.equal(config.disableAfterHours, 1.5);
  assert.equal(config.workerId, "worker-a");
});

Deno.test("config: empty strings count as unset", () => {
  const config = parseConfig({ WEBHOOK_TIMEOUT_MS: "", WEBHOOK_RETRY_SCHEDULE: " ", SUPABASE_DB_URL: "" });
  assert.equal(config.timeoutMs, 15_000);
  assert.deepEqual(config.retrySchedule, DEFAULT_RETRY_SCHEDULE_SECONDS);
  assert.equal(config.dbUrl, undefined);
});

Deno.test("config: a bad retry schedule is named with the offending value", () => {
  // Past 30 days a delay stops being a date the engine can compute (9999999999999999 s).
  for (const bad of ["x", "0,5,-1", "0,,5", "1e3", "5s", "5,2592001", "9999999999999999"]) {
    assert.deepEqual(problemsOf({ WEBHOOK_RETRY_SCHEDULE: bad }), [
      `WEBHOOK_RETRY_SCHEDULE must be a comma-separated list of seconds between 0 and 2592000 (30 days; ` +
      `the delays after each failed attempt), got '${bad}'`,
    ]);
  }
  assert.deepEqual(parseConfig({ WEBHOOK_RETRY_SCHEDULE: "2592000" }).retrySchedule, [2592000]);
});

Deno.test("config: integers are checked for form and range", () => {
  assert.deepEqual(problemsOf({ WEBHOOK_BATCH_SIZE: "0" }), [outOfRange("WEBHOOK_BATCH_SIZE", 1, 1000, "0")]);
  assert.deepEqual(problemsOf({ WEBHOOK_CONCURRENCY: "1.5" }), [outOfRange("WEBHOOK_CONCURRENCY", 1, 5000, "1.5")]);
  // "Never" written as a huge number would overflow the database's interval at every record.
  for (const bad of ["0", "87601", "9999999999"]) {
    assert.deepEqual(problemsOf({ WEBHOOK_DISABLE_AFTER_HOURS: bad }), [
      `WEBHOOK_DISABLE_AFTER_HOURS must be a positive number of hours, at most 87600 (ten years), got '${bad}'`,
    ]);
  }
  assert.equal(parseConfig({ WEBHOOK_DISABLE_AFTER_HOURS: "87600" }).disableAfterHours, 87600);
});

Deno.test("config: PORT (HTTP mode outside Supabase) is checked like the other ports", () => {
  assert.equal(parseConfig({}).port, undefined);
  assert.equal(parseConfig({ PORT: "54324" }).port, 54324);
  assert.equal(parseConfig({ PORT: "0" }).port, 0, "any free port (the end-to-end tests)");
  assert.deepEqual(problemsOf({ PORT: "abc" }), [outOfRange("PORT", 0, 65535, "abc")]);
});

Deno.test("config: every problem is reported at once", () => {
  const problems = problemsOf({
    WEBHOOK_TIMEOUT_MS: "soon",
    WEBHOOK_RETRY_SCHEDULE: "x",
    WEBHOOK_ALLOWED_TARGETS: "localhost",
  });
  assert.equal(problems.length, 3);
  // Rules across settings are listed with the rest.
  assert.deepEqual(
    problemsOf({ WEBHOOK_TIMEOUT_MS: "120000", WEBHOOK_LEASE_SECONDS: "60", WEBHOOK_BATCH_SIZE: "5000" }).map((p) =>
      p.split(" ")[0]
    ),
    ["WEBHOOK_BATCH_SIZE", "WEBHOOK_LEASE_SECONDS", "WEBHOOK_HTTP_BUDGET_MS"],
  );
  assert.throws(() => parseConfig({ WEBHOOK_TIMEOUT_MS: "soon", WEBHOOK_RETRY_SCHEDULE: "x" }), (e: Error) => {
    assert.ok(e instanceof ConfigError);
    assert.match(
      e.message,
      /invalid dispatcher configuration:\n {2}- WEBHOOK_TIMEOUT_MS.*\n {2}- WEBHOOK_RETRY_SCHEDULE/,
    );
    return true;
  });
});

Deno.test("config: the lease must outlast one request plus the safety margin and the start window", () => {
  assert.deepEqual(problemsOf({ WEBHOOK_LEASE_SECONDS: "10", WEBHOOK_TIMEOUT_MS: "15000" }), [
    "WEBHOOK_LEASE_SECONDS (10) must cover WEBHOOK_TIMEOUT_MS (15000 ms) plus a 5 s safety margin " +
    "and 1 s to start sending: at least 21",
  ]);
  // Exactly one request plus the margin leaves no time to start one: the engine would
  // release every claimed row unsent and claim it again, forever.
  assert.equal(problemsOf({ WEBHOOK_LEASE_SECONDS: "20", WEBHOOK_TIMEOUT_MS: "15000" }).length, 1);
  assert.equal(parseConfig({ WEBHOOK_LEASE_SECONDS: "21", WEBHOOK_TIMEOUT_MS: "15000" }).leaseSeconds, 21);
  // A timeout that is not a whole second: the lease rounds up.
  assert.equal(problemsOf({ WEBHOOK_LEASE_SECONDS: "7", WEBHOOK_TIMEOUT_MS: "1001" }).length, 1);
  assert.equal(parseConfig({ WEBHOOK_LEASE_SECONDS: "7", WEBHOOK_TIMEOUT_MS: "1000" }).leaseSeconds, 7);
});

Deno.test("config: the lease stays within what the claim accepts (1 to 3600 s)", () => {
  assert.equal(parseConfig({ WEBHOOK_LEASE_SECONDS: "3600" }).leaseSeconds, 3600);
  for (const bad of ["3601", "86400", "0"]) {
    assert.deepEqual(problemsOf({ WEBHOOK_LEASE_SECONDS: bad }), [outOfRange("WEBHOOK_LEASE_SECONDS", 1, 3600, bad)]);
  }
  // The longest timeout still fits under the claim's longest lease.
  const slow = parseConfig({
    WEBHOOK_TIMEOUT_MS: "600000",
    WEBHOOK_LEASE_SECONDS: "606",
    WEBHOOK_HTTP_BUDGET_MS: "601000",
    WEBHOOK_WALL_CLOCK_MS: "606000",
  });
  assert.deepEqual([slow.timeoutMs, slow.leaseSeconds], [600_000, 606]);
});

Deno.test("config: the batch size stays within what the claim accepts (1 to 1000)", () => {
  assert.equal(parseConfig({ WEBHOOK_BATCH_SIZE: "1" }).batchSize, 1);
  assert.equal(parseConfig({ WEBHOOK_BATCH_SIZE: "1000" }).batchSize, 1000);
  assert.deepEqual(problemsOf({ WEBHOOK_BATCH_SIZE: "1001" }), [
    outOfRange("WEBHOOK_BATCH_SIZE", 1, 1000, "1001"),
  ]);
});

Deno.test("config: the HTTP-mode budget covers one attempt and the start window; worker mode does not use it", () => {
  const env = { WEBHOOK_TIMEOUT_MS: "15000", WEBHOOK_LEASE_SECONDS: "21" };
  assert.equal(parseConfig({ ...env, WEBHOOK_HTTP_BUDGET_MS: "16000" }).httpBudgetMs, 16_000);
  const short = { ...env, WEBHOOK_HTTP_BUDGET_MS: "15999" };
  const problem =
    "WEBHOOK_HTTP_BUDGET_MS (15999 ms) must cover WEBHOOK_TIMEOUT_MS (15000 ms) plus 1 s to start sending: " +
    "at least 16000";
  assert.deepEqual(problemsOf(short), [problem]);
  const http = { ...short, SUPABASE_DB_URL: "postgres://x/db", SUPABASE_SERVICE_ROLE_KEY: "service-key" };
  assert.deepEqual(problemsOf(http, { mode: "http" }), [problem]);
  assert.equal(parseConfig({ ...short, SUPABASE_DB_URL: "postgres://x/db" }, { mode: "worker" }).httpBudgetMs, 15_999);
  // A timeout above the default budget needs a longer budget, not a silent spin.
  assert.deepEqual(problemsOf({ WEBHOOK_TIMEOUT_MS: "120000", WEBHOOK_LEASE_SECONDS: "126" }), [
    "WEBHOOK_HTTP_BUDGET_MS (100000 ms) must cover WEBHOOK_TIMEOUT_MS (120000 ms) plus 1 s to start sending: " +
    "at least 121000",
  ]);
});

Deno.test("config: the per-endpoint cap is the database's; the old knob is refused with the fix", () => {
  assert.deepEqual(problemsOf({ WEBHOOK_ENDPOINT_CONCURRENCY: "10" }), [
    "WEBHOOK_ENDPOINT_CONCURRENCY is gone: each endpoint's cap is private.webhook_settings.endpoint_concurrency, " +
    "which holds across all dispatchers (update it in SQL and unset the variable)",
  ]);
  assert.equal(parseConfig({ WEBHOOK_ENDPOINT_CONCURRENCY: "" }).concurrency, 500, "set but empty counts as unset");
  assert.equal(parseConfig({ WEBHOOK_CONCURRENCY: "5000" }).concurrency, 5_000);
  assert.deepEqual(problemsOf({ WEBHOOK_CONCURRENCY: "5001" }), [outOfRange("WEBHOOK_CONCURRENCY", 1, 5000, "5001")]);
});

Deno.test("config: a value that fails its own check is reported once, not judged again by the rules using it", () => {
  assert.deepEqual(
    problemsOf({ WEBHOOK_TIMEOUT_MS: "soon", WEBHOOK_LEASE_SECONDS: "7", WEBHOOK_HTTP_BUDGET_MS: "1000" }),
    [
      outOfRange("WEBHOOK_TIMEOUT_MS", 100, 600000, "soon"),
    ],
  );
  assert.deepEqual(
    problemsOf({
      WEBHOOK_TIMEOUT_MS: "200000",
      WEBHOOK_LEASE_SECONDS: "99999",
      WEBHOOK_HTTP_BUDGET_MS: "x",
      WEBHOOK_WALL_CLOCK_MS: "400000",
    }),
    [
      outOfRange("WEBHOOK_LEASE_SECONDS", 1, 3600, "99999"),
      outOfRange("WEBHOOK_HTTP_BUDGET_MS", 1000, 3600000, "x"),
    ],
  );
});

Deno.test("config: SUPABASE_DB_URL is required to run a mode, and must be a postgres URL", () => {
  assert.throws(() => parseConfig({}, { mode: "worker" }), /SUPABASE_DB_URL is required/);
  assert.throws(() => parseConfig({}, { mode: "http" }), /SUPABASE_DB_URL is required/);
  assert.deepEqual(problemsOf({ SUPABASE_DB_URL: "mysql://x" }), [
    "SUPABASE_DB_URL must start with postgres:// or postgresql://",
  ]);
  assert.equal(parseConfig({ SUPABASE_DB_URL: "postgres://x/db" }, { mode: "worker" }).dbUrl, "postgres://x/db");
});

Deno.test("config: allowed targets are normalized like the URLs they must match", () => {
  const config = parseConfig({
    WEBHOOK_ALLOWED_TARGETS: "127.1:8080, LOCALHOST.:3000,[0:0:0:0:0:0:0:1]:9000 ,hooks.example.com:80,,",
  });
  assert.deepEqual([...config.allowedTargets].sort(), [
    "127.0.0.1:8080",
    "[::1]:9000",
    "hooks.example.com:80",
    "localhost:3000",
  ]);
});

Deno.test("config: allowed targets must be exactly host:port", () => {
  for (const bad of ["localhost", "http://localhost:80", "localhost:80/path", "user@localhost:80", "[::1]", "a b:1"]) {
    assert.deepEqual(problemsOf({ WEBHOOK_ALLOWED_TARGETS: bad }), [
      `WEBHOOK_ALLOWED_TARGETS entries must be host:port (e.g. 127.0.0.1:8080 or [::1]:8080), got '${bad}'`,
    ]);
  }
});

Deno.test("config: worker metrics are off unless a port is given; the port and hostname are checked", () => {
  assert.equal(parseConfig({}).metrics, undefined);
  assert.deepEqual(parseConfig({ WEBHOOK_METRICS_PORT: "9464" }).metrics, { hostname: "127.0.0.1", port: 9464 });
  assert.deepEqual(
    parseConfig({ WEBHOOK_METRICS_PORT: "9464", WEBHOOK_METRICS_HOSTNAME: "0.0.0.0" }).metrics,
    { hostname: "0.0.0.0", port: 9464 },
  );
  assert.deepEqual(problemsOf({ WEBHOOK_METRICS_PORT: "0" }), [outOfRange("WEBHOOK_METRICS_PORT", 1, 65535, "0")]);
});

// ---------------------------------------------------------------------------------------
// Hosted Supabase: wake-up keys, the worker's wall clock, the work per wake-up, the database
// ---------------------------------------------------------------------------------------

const DB = { SUPABASE_DB_URL: "postgres://x/db" };
const TOKEN = "t".repeat(MIN_TOKEN_LENGTH);
const keysOf = (env: Record<string, string>, mode: "http" | "worker" = "http") =>
  parseConfig({ ...DB, ...env }, { mode }).wakeUpKeys;

Deno.test("config: HTTP mode accepts the new secret keys, the legacy service role key and a dispatcher token", () => {
  assert.deepEqual(keysOf({ SUPABASE_SERVICE_ROLE_KEY: "legacy" }), ["legacy"]);
  assert.deepEqual(keysOf({ SUPABASE_SECRET_KEYS: '{"default":"sb_secret_a"}' }), ["sb_secret_a"]);
  // Every named key is accepted (a project can have several); blank and non-string values are not keys.
  assert.deepEqual(
    keysOf({ SUPABASE_SECRET_KEYS: '{"default":"sb_secret_a","ci":" sb_secret_b ","old":"","n":1,"o":null}' }),
    ["sb_secret_a", "sb_secret_b"],
  );
  assert.deepEqual(keysOf({ WEBHOOK_DISPATCHER_TOKEN: TOKEN }), [TOKEN]);
  assert.deepEqual(
    keysOf({
      WEBHOOK_DISPATCHER_TOKEN: TOKEN,
      SUPABASE_SECRET_KEYS: '{"default":"sb_secret_a"}',
      SUPABASE_SERVICE_ROLE_KEY: "legacy",
    }),
    [TOKEN, "sb_secret_a", "legacy"],
  );
});

Deno.test("config: HTTP mode without a key, or with one it cannot read, refuses to start, quoting no key", () => {
  const none = "HTTP mode needs a key to accept wake-ups: SUPABASE_SECRET_KEYS or SUPABASE_SERVICE_ROLE_KEY " +
    `(Supabase sets them), or WEBHOOK_DISPATCHER_TOKEN (at least ${MIN_TOKEN_LENGTH} characters); ` +
    "without one it refuses every request";
  const unreadable = 'SUPABASE_SECRET_KEYS must be a JSON object of named keys ({"default":"sb_secret_..."}) with ' +
    "at least one key; it could not be read as one";
  const short = `WEBHOOK_DISPATCHER_TOKEN must be at least ${MIN_TOKEN_LENGTH} characters long`;
  const cases: [string, Record<string, string>, string[]][] = [
    ["no key at all", {}, [none]],
    ["every key empty", { SUPABASE_SERVICE_ROLE_KEY: "", SUPABASE_SECRET_KEYS: " ", WEBHOOK_DISPATCHER_TOKEN: "" }, [
      none,
    ]],
    ["malformed JSON", { SUPABASE_SECRET_KEYS: '{"default":"sb_secret_leak' }, [unreadable]],
    ["a bare key instead of JSON", { SUPABASE_SECRET_KEYS: "sb_secret_leak" }, [unreadable]],
    ["a JSON array", { SUPABASE_SECRET_KEYS: '["sb_secret_leak"]' }, [unreadable]],
    ["an object with no key", { SUPABASE_SECRET_KEYS: '{"default":""}' }, [unreadable]],
    ["a short token", { WEBHOOK_DISPATCHER_TOKEN: "leak" }, [short]],
    // An unreadable value is a problem even next to a good key: it is not guessed at.
    ["malformed JSON beside the legacy key", {
      SUPABASE_SECRET_KEYS: "{",
      SUPABASE_SERVICE_ROLE_KEY: "legacy",
    }, [unreadable]],
  ];
  for (const [what, env, expected] of cases) {
    const problems = problemsOf({ ...DB, ...env }, { mode: "http" });
    assert.deepEqual(problems, expected, what);
    assert.ok(!problems.join().includes("leak"), `${what}: a problem quotes the key`);
  }
  // Worker mode takes no wake-ups: neither a missing nor an unreadable key stops it.
  assert.deepEqual(keysOf({}, "worker"), []);
  assert.deepEqual(keysOf({ SUPABASE_SECRET_KEYS: "{", WEBHOOK_DISPATCHER_TOKEN: "x" }, "worker"), []);
});

Deno.test("config: the worker's wall clock covers the margin and one attempt in HTTP mode", () => {
  assert.equal(parseConfig({}).wallClockMs, 150_000);
  assert.equal(parseConfig({}).httpMaxDeliveries, 1_000);
  const env = { WEBHOOK_TIMEOUT_MS: "2000", WEBHOOK_LEASE_SECONDS: "8", WEBHOOK_HTTP_BUDGET_MS: "3000" };
  const least = WALL_CLOCK_MARGIN_MS + 2000 + START_WINDOW_MS;
  assert.equal(parseConfig({ ...env, WEBHOOK_WALL_CLOCK_MS: String(least) }).wallClockMs, least);
  assert.deepEqual(problemsOf({ ...env, WEBHOOK_WALL_CLOCK_MS: String(least - 1) }), [
    `WEBHOOK_WALL_CLOCK_MS (${least - 1} ms) must cover a 5 s margin, WEBHOOK_TIMEOUT_MS (2000 ms) and 1 s to ` +
    `start sending: at least ${least}`,
  ]);
  assert.equal(
    parseConfig({ ...DB, ...env, WEBHOOK_WALL_CLOCK_MS: "1000" }, { mode: "worker" }).wallClockMs,
    1000,
    "worker mode does not use it",
  );
  assert.deepEqual(problemsOf({ WEBHOOK_WALL_CLOCK_MS: "150s", WEBHOOK_HTTP_MAX_DELIVERIES: "0" }), [
    outOfRange("WEBHOOK_WALL_CLOCK_MS", 1000, 3600000, "150s"),
    outOfRange("WEBHOOK_HTTP_MAX_DELIVERIES", 1, 100000, "0"),
  ]);
  assert.equal(parseConfig({ WEBHOOK_WALL_CLOCK_MS: "400000" }).wallClockMs, 400_000);
  assert.equal(parseConfig({ WEBHOOK_HTTP_MAX_DELIVERIES: "250" }).httpMaxDeliveries, 250);
});

Deno.test("config: WEBHOOK_DB_URL overrides SUPABASE_DB_URL; WEBHOOK_DB_CA_CERT must be a PEM", () => {
  const pooler = "postgresql://postgres.ref:pw@aws-0-eu-central-1.pooler.supabase.com:6543/postgres";
  assert.equal(parseConfig({ ...DB, WEBHOOK_DB_URL: pooler }, { mode: "worker" }).dbUrl, pooler);
  assert.equal(parseConfig({ WEBHOOK_DB_URL: pooler }, { mode: "worker" }).dbUrl, pooler);
  assert.equal(parseConfig({ ...DB, WEBHOOK_DB_URL: " " }, { mode: "worker" }).dbUrl, DB.SUPABASE_DB_URL);
  assert.deepEqual(problemsOf({ ...DB, WEBHOOK_DB_URL: "mysql://x" }), [
    "WEBHOOK_DB_URL must start with postgres:// or postgresql://",
  ]);
  assert.equal(parseConfig({}).dbCaCert, undefined);
  assert.equal(parseConfig({ WEBHOOK_DB_CA_CERT: LOCALHOST_CERT }).dbCaCert, LOCALHOST_CERT);
  assert.deepEqual(problemsOf({ WEBHOOK_DB_CA_CERT: "/etc/ssl/supabase.crt" }), [
    "WEBHOOK_DB_CA_CERT must be a PEM certificate (-----BEGIN CERTIFICATE----- ...)",
  ]);
});
