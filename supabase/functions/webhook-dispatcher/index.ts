// webhook-dispatcher: delivers the outbox's pending webhooks, signed, with retries.
//
//   HTTP mode (default; how Supabase Edge Functions run it):
//     POST with `Authorization: Bearer <key>` drains due deliveries (keys: README
//     "Dispatcher configuration").
//   Worker mode (local and self-hosted): `deno task worker` in supabase/functions (index.ts --worker)
//     LISTENs and delivers continuously until SIGTERM/SIGINT.
//
// Configuration is environment only; see README "Dispatcher configuration".
import { ConfigError, type DispatcherConfig, parseConfig } from "../_shared/dispatch/config.ts";
import { DispatchEngine } from "../_shared/dispatch/engine.ts";
import { DispatcherMetrics } from "../_shared/dispatch/metrics.ts";
import { connectDatabase, createPgStore } from "../_shared/dispatch/pg_store.ts";
import { abortOnUnload, createHttpHandler } from "./http_handler.ts";
import { serveMetrics } from "./metrics_server.ts";
import { startWorker, writeBeforeExit } from "./worker.ts";

const mode = Deno.args.includes("--worker") ? "worker" : "http";

const config = loadConfig();
if (config instanceof ConfigError) refuseEveryRequest();
else if (mode === "worker") runWorker(config);
else serveHttp(config);

/** The configuration; a bad one stops the process (exit 2) with every problem listed. */
function loadConfig(): DispatcherConfig | ConfigError {
  try {
    return parseConfig(Deno.env.toObject(), { mode });
  } catch (error) {
    if (error instanceof ConfigError) {
      const invalid: ConfigError = error;
      console.error(invalid.message);
      Deno.exit(2);
      // Still here: the Edge Runtime, where Deno.exit does nothing.
      return invalid;
    }
    throw error;
  }
}

/** The Edge Runtime keeps a function whose configuration is invalid: it refuses every
 * request (503; the problems were logged once, above) instead of running half-configured. */
function refuseEveryRequest() {
  // The configuration is not to be trusted, PORT included: a port only if it is one.
  const port = /^\d{1,5}$/.test(Deno.env.get("PORT") ?? "") ? Number(Deno.env.get("PORT")) : undefined;
  serve(() =>
    new Response(JSON.stringify({ error: "the dispatcher's configuration is invalid; its log says why" }), {
      status: 503,
      headers: { "content-type": "application/json" },
    }), port);
}

/** The database pool and the engine over it; the metrics see every attempt. */
function connect(config: DispatcherConfig) {
  // The claim loop makes one call at a time; /metrics may read while it does. (LISTEN
  // has a connection of its own, outside the pool.)
  const sql = connectDatabase(config.dbUrl!, 2, { caCert: config.dbCaCert });
  const metrics = new DispatcherMetrics();
  const engine = new DispatchEngine({
    store: createPgStore(sql, { workerId: config.workerId, disableAfterHours: config.disableAfterHours }),
    config,
    observer: metrics,
  });
  return { sql, engine, metrics };
}

function runWorker(config: DispatcherConfig) {
  const { sql, engine, metrics } = connect(config);
  const log = (m: string) => console.log(`[${config.workerId}] ${m}`);
  // Metrics first: an address it cannot listen on stops the process before it claims.
  const metricsServer = config.metrics && serveMetrics({ engine, metrics, sql, ...config.metrics, log });
  if (config.metrics) log(`metrics on http://${config.metrics.hostname}:${config.metrics.port}/metrics`);
  const worker = startWorker({ engine, sql, log });
  worker.done.catch((error) => {
    console.error(`[${config.workerId}] the worker stopped: ${error instanceof Error ? error.message : error}`);
    Deno.exit(1);
  });
  console.log(`[${config.workerId}] webhook dispatcher worker started`);
  const shutdown = async () => {
    console.log(`[${config.workerId}] stopping: finishing in-flight attempts`);
    await worker.stop();
    await metricsServer?.shutdown();
    await sql.end({ timeout: 5 });
    console.log(`[${config.workerId}] stopped`);
    Deno.exit(0);
  };
  Deno.addSignalListener("SIGTERM", shutdown);
  Deno.addSignalListener("SIGINT", shutdown);
}

function serveHttp(config: DispatcherConfig) {
  const { sql, engine } = connect(config);
  // deno-lint-ignore no-explicit-any
  const edgeRuntime = (globalThis as any).EdgeRuntime as { waitUntil(p: Promise<unknown>): void } | undefined;
  const waitUntil = edgeRuntime ? (work: Promise<unknown>) => edgeRuntime.waitUntil(work) : undefined;
  // The Edge Runtime limits a worker's life from its boot: each drain gets what is left.
  const age = edgeRuntime ? () => performance.now() : undefined;
  // The runtime announces the worker's end (wall clock, CPU, memory): stop claiming.
  const shutdown = new AbortController();
  abortOnUnload(shutdown, (m) => console.log(`[${config.workerId}] ${m}`));
  const server = serve(createHttpHandler({ engine, config, age, shutdown: shutdown.signal, waitUntil }), config.port);
  if (edgeRuntime) return;
  // A plain Deno process (the local stack): SIGTERM/SIGINT stop claiming, let the drain
  // finish what is in flight and record it, then exit; what a failed drain left unwritten
  // (the database away) is written first, if the database comes back soon enough.
  const stop = async () => {
    const log = (m: string) => console.log(`[${config.workerId}] ${m}`);
    log("stopping: finishing in-flight attempts");
    shutdown.abort();
    await server.shutdown();
    await engine.idle();
    await writeBeforeExit(engine, () => engine.drain({ budgetMs: 0, maxDeliveries: 0, signal: shutdown.signal }), log);
    await sql.end({ timeout: 5 });
    console.log(`[${config.workerId}] stopped`);
    Deno.exit(0);
  };
  Deno.addSignalListener("SIGTERM", stop);
  Deno.addSignalListener("SIGINT", stop);
}

function serve(handler: (request: Request) => Response | Promise<Response>, port?: number) {
  // Supabase picks the port itself; locally and in tests PORT chooses it.
  if (port !== undefined) return Deno.serve({ port, hostname: "127.0.0.1" }, handler);
  return Deno.serve(handler);
}
