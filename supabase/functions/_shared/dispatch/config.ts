// Dispatcher configuration, parsed from an env record passed in by the caller
// (Deno.env.toObject() in production, a literal object in tests), so parsing
// is a pure function and every knob is testable without touching the process.
//
// Every problem is collected and reported at once: an operator fixing a
// deployment should not have to redeploy once per typo.

import { DEFAULT_RETRY_SCHEDULE_SECONDS } from "../delivery/retry.ts";
import { targetKey } from "../delivery/ssrf.ts";
import { databaseTlsProblem } from "./pg_tls.ts";
import { CLAIM_LIMITS } from "./store.ts";

// The settings' rules live here and only here: parseConfig enforces them, and the
// engine and the modes receive values that already satisfy them.

/** Time kept in reserve at the end of a lease: covers recording the results
 * and a little clock skew between the dispatcher and the database. */
export const LEASE_SAFETY_MARGIN_MS = 5_000;

/** What a lease or a drain budget must leave, beyond one request (and, for a lease,
 * the margin), for a claimed batch's attempts to start. The engine starts no send that
 * could outlive the lease or the budget, and both are running from before the claim
 * returns: with no window at all, every claimed row would be released unsent and
 * claimed again, in a loop. */
export const START_WINDOW_MS = 1_000;

/** Requests in flight per dispatcher by default (WEBHOOK_CONCURRENCY). */
const DEFAULT_CONCURRENCY = 500;

/** HTTP mode keeps this much of the worker's wall clock (WEBHOOK_WALL_CLOCK_MS) unused:
 * it covers recording the last results and the runtime's boot before our code runs. */
export const WALL_CLOCK_MARGIN_MS = 5_000;

/** A WEBHOOK_DISPATCHER_TOKEN shorter than this is refused: it guards the wake-ups. */
export const MIN_TOKEN_LENGTH = 32;

/** The longest WEBHOOK_DISABLE_AFTER_HOURS (ten years: "never", in practice) and retry
 * delay (30 days) accepted: past them, the times computed from them stop being dates. */
const MAX_DISABLE_AFTER_HOURS = 87_600;
const MAX_RETRY_DELAY_SECONDS = 30 * 86_400;

/** What one attempt needs of a lease or a budget: its full timeout, and time to start. */
export function oneAttemptMs(config: Pick<DispatcherConfig, "timeoutMs">): number {
  return config.timeoutMs + START_WINDOW_MS;
}

/** HTTP mode in the Edge Runtime: how long after its boot the worker may still be working. */
export function workerLifeMs(config: Pick<DispatcherConfig, "wallClockMs">): number {
  return config.wallClockMs - WALL_CLOCK_MARGIN_MS;
}

export interface DispatcherConfig {
  /** WEBHOOK_DB_URL, else SUPABASE_DB_URL; only the Postgres-backed store needs it. */
  readonly dbUrl: string | undefined;
  /** Normalized `host:port` keys (see targetKey in ssrf.ts) exempt from the SSRF policy. */
  readonly allowedTargets: ReadonlySet<string>;
  readonly timeoutMs: number;
  /** Within CLAIM_LIMITS.batchSize. */
  readonly batchSize: number;
  /** Requests in flight in this dispatcher, all endpoints together. Mostly sockets that
   * wait on slow receivers, hence hundreds; each endpoint's own cap is the database's
   * (private.webhook_settings.endpoint_concurrency), which holds across dispatchers. */
  readonly concurrency: number;
  /** Within CLAIM_LIMITS.leaseSeconds, and covers the timeout, the safety margin and the start window. */
  readonly leaseSeconds: number;
  /** Element i is the delay in seconds after attempt i+1 fails; attempts = length + 1 (see retry.ts). */
  readonly retrySchedule: readonly number[];
  /** An endpoint failing continuously for this long gets disabled (by the SQL side). */
  readonly disableAfterHours: number;
  /** Identifies this dispatcher in leases; WEBHOOK_WORKER_ID or a random one. */
  readonly workerId: string;
  /** Worker mode: where to serve Prometheus metrics (GET /metrics); off when undefined. */
  readonly metrics: { hostname: string; port: number } | undefined;
  /** HTTP mode outside the Edge Runtime (local stack, tests): PORT, the port to listen on
   * (127.0.0.1); undefined: the runtime's default. Supabase picks the port itself. */
  readonly port: number | undefined;
  /** HTTP mode: how long one drain may keep claiming, at most (the worker's wall clock,
   * WEBHOOK_WALL_CLOCK_MS, may leave less). Covers one attempt (checked unless the mode
   * is `worker`). */
  readonly httpBudgetMs: number;
  // Hosted Supabase: who may wake HTTP mode, how long its worker lives, how it connects.
  /** The bearer tokens HTTP mode accepts: WEBHOOK_DISPATCHER_TOKEN, every value of
   * SUPABASE_SECRET_KEYS, SUPABASE_SERVICE_ROLE_KEY. Required in HTTP mode. */
  readonly wakeUpKeys: readonly string[];
  /** HTTP mode: the worker's wall-clock allowance, counted from its boot across every
   * request it serves (Supabase: 150 s free, 400 s paid). Covers WALL_CLOCK_MARGIN_MS,
   * the timeout and the start window. */
  readonly wallClockMs: number;
  /** HTTP mode: deliveries one drain may claim, which bounds the CPU one wake-up uses. */
  readonly httpMaxDeliveries: number;
  /** WEBHOOK_DB_CA_CERT: PEM of the CA a remote database's certificate must chain to;
   * absent, the runtime's trust store decides (pg_tls.ts). */
  readonly dbCaCert: string | undefined;
}

export type Env = Readonly<Record<string, string | undefined>>;

export class ConfigError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(`invalid dispatcher configuration:\n  - ${problems.join("\n  - ")}`);
    this.name = "ConfigError";
  }
}

export interface ParseConfigOptions {
  /** The mode about to run: it needs the database, and only HTTP mode uses (so checks)
   * WEBHOOK_HTTP_BUDGET_MS. Without a mode (unit tests) the URL is optional and every
   * budget is checked. */
  mode?: "worker" | "http";
}

/** Throws ConfigError listing every problem found. */
export function parseConfig(env: Env, options: ParseConfigOptions = {}): DispatcherConfig {
  const problems: string[] = [];
  // Empty strings count as unset: env files and CI matrices often export `X=`.
  const get = (name: string): string | undefined => {
    const value = env[name]?.trim();
    return value === undefined || value === "" ? undefined : value;
  };

  // A value that fails its own check is reported once; the rules combining it with
  // other values are then skipped rather than judged on its fallback.
  const invalid = new Set<string>();
  const int = (name: string, fallback: number, min: number, max: number): number => {
    const raw = get(name);
    if (raw === undefined) return fallback;
    if (!/^\d+$/.test(raw) || Number(raw) < min || Number(raw) > max) {
      problems.push(`${name} must be an integer between ${min} and ${max}, got '${raw}'`);
      invalid.add(name);
      return fallback;
    }
    return Number(raw);
  };
  const allValid = (...names: string[]) => names.every((name) => !invalid.has(name));

  // WEBHOOK_DB_URL overrides the URL Supabase sets (whose name functions cannot set).
  const dbUrlName = get("WEBHOOK_DB_URL") !== undefined ? "WEBHOOK_DB_URL" : "SUPABASE_DB_URL";
  const dbUrl = get(dbUrlName);
  if (options.mode !== undefined && dbUrl === undefined) {
    problems.push("SUPABASE_DB_URL is required (a postgres:// connection string; WEBHOOK_DB_URL overrides it)");
  } else if (dbUrl !== undefined && !/^postgres(ql)?:\/\//.test(dbUrl)) {
    problems.push(`${dbUrlName} must start with postgres:// or postgresql://`);
  } else if (dbUrl !== undefined) {
    const tlsProblem = databaseTlsProblem(dbUrlName, dbUrl);
    if (tlsProblem !== null) problems.push(tlsProblem);
  }

  const timeoutMs = int("WEBHOOK_TIMEOUT_MS", 15_000, 100, 600_000);
  const batchSize = int("WEBHOOK_BATCH_SIZE", 50, CLAIM_LIMITS.batchSize.min, CLAIM_LIMITS.batchSize.max);
  const concurrency = int("WEBHOOK_CONCURRENCY", DEFAULT_CONCURRENCY, 1, 5_000);
  if (get("WEBHOOK_ENDPOINT_CONCURRENCY") !== undefined) {
    problems.push(
      "WEBHOOK_ENDPOINT_CONCURRENCY is gone: each endpoint's cap is private.webhook_settings.endpoint_concurrency, " +
        "which holds across all dispatchers (update it in SQL and unset the variable)",
    );
  }
  const leaseSeconds = int("WEBHOOK_LEASE_SECONDS", 120, CLAIM_LIMITS.leaseSeconds.min, CLAIM_LIMITS.leaseSeconds.max);
  const httpBudgetMs = int("WEBHOOK_HTTP_BUDGET_MS", 100_000, 1_000, 3_600_000);

  // One attempt must fit in the lease with the margin to spare and time to start it:
  // the engine refuses to start a send that might outlive its lease.
  const attemptMs = oneAttemptMs({ timeoutMs });
  if (
    allValid("WEBHOOK_TIMEOUT_MS", "WEBHOOK_LEASE_SECONDS") &&
    leaseSeconds * 1000 < attemptMs + LEASE_SAFETY_MARGIN_MS
  ) {
    problems.push(
      `WEBHOOK_LEASE_SECONDS (${leaseSeconds}) must cover WEBHOOK_TIMEOUT_MS (${timeoutMs} ms) ` +
        `plus a ${LEASE_SAFETY_MARGIN_MS / 1000} s safety margin and ${START_WINDOW_MS / 1000} s to start sending: ` +
        `at least ${Math.ceil((attemptMs + LEASE_SAFETY_MARGIN_MS) / 1000)}`,
    );
  }
  // A budget shorter than one attempt claims nothing, and the dispatcher would spin.
  if (
    options.mode !== "worker" && allValid("WEBHOOK_TIMEOUT_MS", "WEBHOOK_HTTP_BUDGET_MS") &&
    httpBudgetMs < attemptMs
  ) {
    problems.push(
      `WEBHOOK_HTTP_BUDGET_MS (${httpBudgetMs} ms) must cover WEBHOOK_TIMEOUT_MS (${timeoutMs} ms) ` +
        `plus ${START_WINDOW_MS / 1000} s to start sending: at least ${attemptMs}`,
    );
  }

  const metricsPort = get("WEBHOOK_METRICS_PORT") === undefined ? undefined : int("WEBHOOK_METRICS_PORT", 0, 1, 65_535);
  const metrics = metricsPort === undefined || invalid.has("WEBHOOK_METRICS_PORT")
    ? undefined
    : { hostname: get("WEBHOOK_METRICS_HOSTNAME") ?? "127.0.0.1", port: metricsPort };
  const port = get("PORT") === undefined ? undefined : int("PORT", 0, 0, 65_535); // 0: any free port

  // Hosted Supabase: wake-up keys, the worker's wall clock, the work per wake-up, TLS.
  const keyProblems = problems.length;
  const wakeUpKeys = parseWakeUpKeys(get, options.mode !== "worker", problems);
  // Unless a key was set but unreadable (reported just above), say that none is set.
  if (options.mode === "http" && wakeUpKeys.length === 0 && problems.length === keyProblems) {
    problems.push(
      "HTTP mode needs a key to accept wake-ups: SUPABASE_SECRET_KEYS or SUPABASE_SERVICE_ROLE_KEY (Supabase " +
        `sets them), or WEBHOOK_DISPATCHER_TOKEN (at least ${MIN_TOKEN_LENGTH} characters); without one it refuses every request`,
    );
  }
  const wallClockMs = int("WEBHOOK_WALL_CLOCK_MS", 150_000, 1_000, 3_600_000);
  if (
    options.mode !== "worker" && allValid("WEBHOOK_TIMEOUT_MS", "WEBHOOK_WALL_CLOCK_MS") &&
    workerLifeMs({ wallClockMs }) < attemptMs
  ) {
    problems.push(
      `WEBHOOK_WALL_CLOCK_MS (${wallClockMs} ms) must cover a ${WALL_CLOCK_MARGIN_MS / 1000} s margin, ` +
        `WEBHOOK_TIMEOUT_MS (${timeoutMs} ms) and ${START_WINDOW_MS / 1000} s to start sending: ` +
        `at least ${WALL_CLOCK_MARGIN_MS + attemptMs}`,
    );
  }
  const httpMaxDeliveries = int("WEBHOOK_HTTP_MAX_DELIVERIES", 1_000, 1, 100_000);
  const dbCaCert = get("WEBHOOK_DB_CA_CERT");
  if (dbCaCert !== undefined && !dbCaCert.includes("-----BEGIN CERTIFICATE-----")) {
    problems.push("WEBHOOK_DB_CA_CERT must be a PEM certificate (-----BEGIN CERTIFICATE----- ...)");
  }

  const config: DispatcherConfig = {
    dbUrl,
    allowedTargets: parseAllowedTargets(get("WEBHOOK_ALLOWED_TARGETS"), problems),
    timeoutMs,
    batchSize,
    concurrency,
    leaseSeconds,
    retrySchedule: parseRetrySchedule(get("WEBHOOK_RETRY_SCHEDULE"), problems),
    disableAfterHours: parseDisableAfterHours(get("WEBHOOK_DISABLE_AFTER_HOURS"), problems),
    workerId: get("WEBHOOK_WORKER_ID") ?? `dispatcher-${crypto.randomUUID().slice(0, 8)}`,
    httpBudgetMs,
    metrics,
    port,
    wakeUpKeys,
    wallClockMs,
    httpMaxDeliveries,
    dbCaCert,
  };
  if (problems.length > 0) throw new ConfigError(problems);
  return config;
}

/**
 * Every key a wake-up may carry as its bearer token. SUPABASE_SECRET_KEYS is what Supabase
 * gives functions for the new `sb_secret_...` keys: a JSON object of name -> key
 * (`{"default":"sb_secret_..."}`), any of which is accepted. A value that cannot be read is
 * reported (when `check`), never guessed at; its keys are not accepted. Problems never
 * quote a key.
 */
function parseWakeUpKeys(
  get: (name: string) => string | undefined,
  check: boolean,
  problems: string[],
): readonly string[] {
  const keys: string[] = [];
  const token = get("WEBHOOK_DISPATCHER_TOKEN");
  if (token !== undefined) {
    if (token.length >= MIN_TOKEN_LENGTH) keys.push(token);
    else if (check) problems.push(`WEBHOOK_DISPATCHER_TOKEN must be at least ${MIN_TOKEN_LENGTH} characters long`);
  }
  const secretKeys = get("SUPABASE_SECRET_KEYS");
  if (secretKeys !== undefined) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(secretKeys);
    } catch {
      parsed = undefined;
    }
    const values = parsed !== null && typeof parsed === "object" && !Array.isArray(parsed)
      ? Object.values(parsed).filter((v): v is string => typeof v === "string" && v.trim() !== "").map((v) => v.trim())
      : [];
    if (values.length > 0) keys.push(...values);
    else if (check) {
      problems.push(
        `SUPABASE_SECRET_KEYS must be a JSON object of named keys ({"default":"sb_secret_..."}) with at least one key; ` +
          `it could not be read as one`,
      );
    }
  }
  const serviceRoleKey = get("SUPABASE_SERVICE_ROLE_KEY");
  if (serviceRoleKey !== undefined) keys.push(serviceRoleKey);
  return Object.freeze([...new Set(keys)]);
}

function parseRetrySchedule(raw: string | undefined, problems: string[]): readonly number[] {
  if (raw === undefined) return DEFAULT_RETRY_SCHEDULE_SECONDS;
  const parts = raw.split(",").map((s) => s.trim());
  // Fractions of a second are allowed (a receiver's own tests retry fast).
  const ok = parts.every((p) => /^\d+(\.\d+)?$/.test(p) && Number(p) <= MAX_RETRY_DELAY_SECONDS);
  if (!ok) {
    problems.push(
      `WEBHOOK_RETRY_SCHEDULE must be a comma-separated list of seconds between 0 and ${MAX_RETRY_DELAY_SECONDS} ` +
        `(30 days; the delays after each failed attempt), got '${raw}'`,
    );
    return DEFAULT_RETRY_SCHEDULE_SECONDS;
  }
  return Object.freeze(parts.map(Number));
}

function parseDisableAfterHours(raw: string | undefined, problems: string[]): number {
  if (raw === undefined) return 120;
  if (!/^\d+(\.\d+)?$/.test(raw) || Number(raw) <= 0 || Number(raw) > MAX_DISABLE_AFTER_HOURS) {
    problems.push(
      `WEBHOOK_DISABLE_AFTER_HOURS must be a positive number of hours, at most ${MAX_DISABLE_AFTER_HOURS} (ten years), got '${raw}'`,
    );
    return 120;
  }
  return Number(raw);
}

/**
 * Parses `host:port,host:port`. Hosts go through the WHATWG URL parser so an
 * entry matches however the webhook URL spells the same host (`127.1`,
 * upper case, trailing dot). The port is mandatory: the allowlist exempts one
 * exact service, never a whole machine.
 */
function parseAllowedTargets(raw: string | undefined, problems: string[]): ReadonlySet<string> {
  const targets = new Set<string>();
  if (raw === undefined) return targets;
  for (const entry of raw.split(",").map((s) => s.trim()).filter((s) => s !== "")) {
    const key = allowedTargetKey(entry);
    if (key === null) {
      problems.push(
        `WEBHOOK_ALLOWED_TARGETS entries must be host:port (e.g. 127.0.0.1:8080 or [::1]:8080), got '${entry}'`,
      );
    } else {
      targets.add(key);
    }
  }
  return targets;
}

function allowedTargetKey(entry: string): string | null {
  // Reject anything that is more than host:port before URL parsing would
  // silently drop it (a scheme, a path, credentials).
  if (/[/@?#\s]/.test(entry) || !/:\d+$/.test(entry)) return null;
  let url: URL;
  try {
    url = new URL(`http://${entry}`);
  } catch {
    return null;
  }
  return targetKey(url);
}
